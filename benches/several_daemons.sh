#!/usr/bin/env bash
# Issuance rate and server CPU per issuance of 1, 2 and 3 estca daemons sharing one
# PostgreSQL database, beside one daemon on sled, in one run (issue 12's benchmark).
#
#   cargo build --release -p estca -p estca-bench
#   benches/several_daemons.sh [-c CONNECTIONS] [-t SECONDS] [-n "1 2 3"] [-s SCENARIO]
#
# It starts a PostgreSQL server of its own (Debian's binaries, initdb into a temporary
# directory, fsync and synchronous_commit on, loopback only), then for each daemon count a new
# database, that many `estca serve` on ephemeral ports sharing it and one CA, and one
# `estca-bench run` attached to all of them (connections, and each renewal's new connection,
# go to the daemons in turn). It prints one JSON line per measurement (also appended to
# target/several-daemons.jsonl) and a Markdown table. Everything it started is stopped at the
# end, and its directory removed.
set -euo pipefail
cd "$(dirname "$0")/.."

connections=32
seconds=15
counts="1 2 3"
scenario=simplereenroll
while getopts "c:t:n:s:" opt; do
  case $opt in
    c) connections=$OPTARG ;;
    t) seconds=$OPTARG ;;
    n) counts=$OPTARG ;;
    s) scenario=$OPTARG ;;
    *) echo "usage: $0 [-c CONNECTIONS] [-t SECONDS] [-n \"1 2 3\"] [-s SCENARIO]" >&2; exit 2 ;;
  esac
done

estca=$PWD/target/release/estca
bench=$PWD/target/release/estca-bench
for b in "$estca" "$bench"; do
  [ -x "$b" ] || { echo "$b is missing: cargo build --release -p estca -p estca-bench" >&2; exit 1; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2; exit 1; }
out=$PWD/target/several-daemons.jsonl

work=$(mktemp -d /tmp/estca-several-XXXXXX)
chmod 755 "$work"
pids=()
pg_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$pg_pid" ]; then kill -INT "$pg_pid" 2>/dev/null || true; wait "$pg_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# initdb refuses root: as root the cluster is the postgres user's.
as_owner=()
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || owner=nobody
  as_owner=(setpriv --reuid="$(id -u $owner)" --regid="$(id -g $owner)" --clear-groups --)
fi
password="estca-bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mkdir -m 700 "$work/pg" "$work/pgsocket"
printf '%s' "$password" >"$work/pg/pwfile"
if [ ${#as_owner[@]} -gt 0 ]; then chown -R "$owner" "$work/pg" "$work/pgsocket"; fi
"${as_owner[@]}" "$pgbin/initdb" --pgdata "$work/pg/data" --username estca --pwfile "$work/pg/pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C >"$work/initdb.log" 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_owner[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$port" \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories="$work/pgsocket" \
  -c fsync=on -c synchronous_commit=on -c max_connections=300 >"$work/postgres.log" 2>&1 &
pg_pid=$!
for _ in $(seq 100); do
  "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  sleep 0.1
done
"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" || { cat "$work/postgres.log" >&2; exit 1; }
printf '%s' "$password" >"$work/db-password"
chmod 600 "$work/db-password"

# `estca serve` for daemon $2 of database $1 (sled when $1 is empty); the first of each set
# makes the CA, the others use it. Prints nothing; leaves the ready line in $dir/daemon.log.
start_daemon() {
  local database=$1 n=$2 dir=$work/$3-$2
  mkdir -m 700 -p "$dir"
  local store="backend = \"sled\""
  if [ -n "$database" ]; then
    store="backend = \"postgres\"
[store.postgres]
url = \"postgres://estca@127.0.0.1:$port/$database\"
password_file = \"$work/db-password\"
pool_size = 32"
  fi
  cat >"$dir/estca.toml" <<EOF
[server]
listen = "127.0.0.1:0"
max_connections = 4096
max_connections_per_source = 4096
[store]
path = "$dir/data"
$store
[admin]
socket = "$dir/data/admin.sock"
[ca]
dir = "$work/$3-1/certs"
[metrics]
listen = "127.0.0.1:0"
[revocation]
listen = "127.0.0.1:0"
max_connections = 4096
max_connections_per_source = 4096
EOF
  # The ready line is read from the log: its level and format are the defaults, whatever the
  # caller's environment says.
  env -u ESTCA_LOG__LEVEL -u ESTCA_LOG__FORMAT \
    "$estca" serve --config "$dir/estca.toml" >"$dir/daemon.log" 2>&1 &
  pids+=($!)
  echo $! >"$dir/pid"
  for _ in $(seq 300); do
    grep -q "estca ready" "$dir/daemon.log" && return 0
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/daemon.log" >&2
  echo "daemon $n did not start" >&2
  exit 1
}

field() { grep "estca ready" "$1/daemon.log" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# One measurement: $1 = set name, $2 = daemon count, $3 = database ("" for sled).
measure() {
  local set=$1 count=$2 database=$3 https="" pidlist="" extra=()
  for n in $(seq "$count"); do
    start_daemon "$database" "$n" "$set"
    https+="${https:+,}$(field "$work/$set-$n" https)"
    pidlist+="${pidlist:+,}$(cat "$work/$set-$n/pid")"
  done
  if [ -n "$database" ]; then extra=(--database-pid "$pg_pid"); fi
  "$bench" run -s "$scenario" -c "$connections" -t "$seconds" \
    --https "$https" --pid "$pidlist" "${extra[@]}" \
    --admin-socket "$work/$set-1/data/admin.sock" --ca-dir "$work/$set-1/certs" \
    --revocation-http "$(field "$work/$set-1" revocation_http)" \
    --label "store=$( [ -n "$database" ] && echo postgres || echo sled ),daemons=$count" --out "$out"
  for n in $(seq "$count"); do
    local p
    p=$(cat "$work/$set-$n/pid")
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}

lines=$work/lines.jsonl
: >"$lines"
measure sled 1 "" | tee -a "$lines"
for count in $counts; do
  "$pgbin/psql" -q -h "$work/pgsocket" -p "$port" -U estca -d postgres -c "CREATE DATABASE bench$count" >/dev/null
  measure "pg$count" "$count" "bench$count" | tee -a "$lines"
done
python3 - "$lines" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
print("\n| store | daemons | connections | issuances/s | p99 ms | estca CPU ms per issuance | PostgreSQL CPU ms per issuance | issuances per server CPU-second | load avg before/after |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    label = dict(kv.split("=", 1) for kv in r.get("label", "").split(",") if "=" in kv)
    estca = r.get("server_cpu_ms_per_request") or 0
    db = r.get("database_cpu_ms_per_request") or 0
    per_cpu = 1000 / (estca + db) if estca + db else 0
    print(f"| {label.get('store')} | {label.get('daemons')} | {r['connections']} | {r['throughput_per_s']:,.0f} "
          f"| {r['latency_ms']['p99']} | {estca:.3f} | {db:.3f} | {per_cpu:,.0f} "
          f"| {r['load_avg_before']} / {r['load_avg_after']} |")
EOF
