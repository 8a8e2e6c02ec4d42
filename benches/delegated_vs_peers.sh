#!/usr/bin/env bash
# The delegated path beside the peers, in one run (issue 13's benchmark): alternately the
# peers of ../shared/peers (cfssl, step-ca, the est-ca crate) under their own load driver,
# then `estca-bench run -s delegated` on each estca backend, N times; then a Markdown table
# of certificates per server CPU-second with the ratios the issue asks for (3.6x step-ca,
# half of est-ca) and the p99.
#
#   cp -r ../shared/peers /tmp/peers && (cd /tmp/peers && ./build.sh)   # once
#   cargo build --release -p estca -p estca-bench
#   benches/delegated_vs_peers.sh [-p PEERS_DIR] [-n ALTERNATIONS] [-c CONNECTIONS]
#                                 [-t SECONDS] [-i IDS] [-b "sled fjall"]
#
# Ratios, not absolute figures, are what compare on a shared machine: each alternation puts
# estca and the peers under the same load minutes apart. The JSON lines (the peers' own, and
# estca-bench's with "target" and "alternation" added) are appended to
# target/delegated-vs-peers.jsonl. The peers' scripts stop every server they start; estca-bench
# stops its daemon.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=/tmp/peers
alternations=3
connections=32
seconds=15
# Enough for a full window at the fastest rate seen (fjall, 7,650 a second on 2 December): a
# window that runs out of IDs ends early and says so ("prepared_work_ran_out").
ids=130000
backends="sled fjall"
while getopts "p:n:c:t:i:b:" opt; do
  case $opt in
    p) peers=$OPTARG ;;
    n) alternations=$OPTARG ;;
    c) connections=$OPTARG ;;
    t) seconds=$OPTARG ;;
    i) ids=$OPTARG ;;
    b) backends=$OPTARG ;;
    *) echo "usage: $0 [-p PEERS_DIR] [-n ALTERNATIONS] [-c CONNECTIONS] [-t SECONDS] [-i IDS] [-b \"sled fjall\"]" >&2; exit 2 ;;
  esac
done

bench=$PWD/target/release/estca-bench
[ -x "$bench" ] || { echo "$bench is missing: cargo build --release -p estca -p estca-bench" >&2; exit 1; }
[ -x "$peers/run-all.sh" ] && [ -x "$peers/bin/loadgen" ] || {
  echo "no built peers in $peers: cp -r ../shared/peers $peers && (cd $peers && ./build.sh), or pass -p" >&2
  exit 1
}
out=$PWD/target/delegated-vs-peers.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lines=$work/lines.jsonl

# tag FILE ALTERNATION [TARGET]: FILE's JSON lines with "alternation" added, to $lines; with
# TARGET, only its last line (estca-bench appends one per run), named TARGET.
tag() {
  python3 - "$@" >>"$lines" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
if len(sys.argv) > 3:
    rows = rows[-1:]
    rows[0]["target"] = sys.argv[3]
for row in rows:
    row["alternation"] = int(sys.argv[2])
    print(json.dumps(row))
EOF
}

for a in $(seq 1 "$alternations"); do
  echo "== alternation $a of $alternations: the peers (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  # run-all.sh's exit status is not its verdict (its EXIT trap ends on a failed test when no
  # peer is left running): what counts is a results file with one line per peer.
  (cd "$peers" && PEERS_LIST="cfssl stepca estca" C=$connections D=$seconds ./run-all.sh) >"$work/peers.log" 2>&1 || true
  results=$(grep -o 'results: [^ ]*' "$work/peers.log" | awk '{print $2}' || true)
  if [ -z "$results" ] || [ "$(grep -c '"ok_per_server_cpu_s"' "$results" 2>/dev/null)" != 3 ]; then
    cat "$work/peers.log" >&2
    echo "the peers' run did not measure all three peers (above)" >&2
    exit 1
  fi
  tag "$results" "$a"
  for backend in $backends; do
    echo "== alternation $a: estca on $backend (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
    rm -f "$work/estca.jsonl"
    "$bench" run -s delegated -c "$connections" -t "$seconds" --ids "$ids" --backend "$backend" --out "$work/estca.jsonl" >&2
    tag "$work/estca.jsonl" "$a" "estca-$backend"
  done
done
cat "$lines" >>"$out"

python3 - "$lines" "$backends" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
backends = sys.argv[2].split()

def per_cpu_s(row):
    if "ok_per_server_cpu_s" in row:
        return row["ok_per_server_cpu_s"]
    return row["ok"] / row["server_cpu_s"]

def p99(row):
    return row["latency_ms"]["p99"] if "latency_ms" in row else row["p99_ms"]

head = ["alternation", "cfssl", "step-ca", "est-ca"]
for b in backends:
    head += [f"estca {b}", f"{b} / step-ca (>= 3.6x)", f"{b} / est-ca (>= 0.5x)", f"{b} p99 ms (< 20)"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for a in sorted({r["alternation"] for r in rows}):
    by = {r["target"]: r for r in rows if r["alternation"] == a}
    cells = [str(a)] + [f"{per_cpu_s(by[t]):,.0f}" for t in ("cfssl", "step-ca", "est-ca")]
    for b in backends:
        e = by[f"estca-{b}"]
        ours = per_cpu_s(e)
        cells += [
            f"{ours:,.0f}",
            f"{ours / per_cpu_s(by['step-ca']):.2f}x",
            f"{ours / per_cpu_s(by['est-ca']):.3f}x",
            f"{p99(e):.1f}",
        ]
    print("| " + " | ".join(cells) + " |")
print("\n(certificates per server CPU-second; JSON lines appended to target/delegated-vs-peers.jsonl)")
EOF
