#!/usr/bin/env bash
# Writes tests/data/backup-v2/: a signed backup (format version 2, backup.ndjson) and the CA
# directory that signed it (certs/), as the backup compatibility tests read them. It was made
# once, with the estca binary of commit 7bdbd74 (before the backup file got serde types of its
# own), and is kept as it was: a backup taken by that release must still restore.
#
# The store holds every kind of record and every shape of each: contracts (one with a
# Japanese name), master and public IDs, a reissued ID (a certificate revoked as superseded),
# a certificate revoked for keyCompromise, an ID locked after wrong passwords and one
# unlocked, applications scoped to a list of contracts and to all, one revoked, the TLS server
# and OCSP signer certificates, and history by the operator, IDs, anonymous callers and estca.
#
#   usage: tests/data/make-backup.sh path/to/estca
set -euo pipefail
estca="$(realpath "$1")"
out="$(realpath "$(dirname "$0")")/backup-v2"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
umask 0077
cat > estca.toml <<TOML
[server]
listen = "127.0.0.1:0"
[store]
path = "$work/data"
[admin]
socket = "$work/data/admin.sock"
[ca]
dir = "$work/certs"
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1
max_failed_attempts = 2
[metrics]
enabled = false
[revocation]
listen = "127.0.0.1:0"
TOML
"$estca" --config estca.toml serve 2> serve.log &
pid=$!
for _ in $(seq 100); do grep -q "estca ready" serve.log 2>/dev/null && break; sleep 0.1; done
port="$(grep -o 'https=127.0.0.1:[0-9]*' serve.log | cut -d: -f2)"
e() { "$estca" --config estca.toml "$@"; }
e contract add 5110 --name "Nozawa Trading Co."
e contract add 7001 --name "大手町エステート株式会社"
echo 'master password 1' | e account add otemat9 --contract 7001 --role master --name "Otemachi Admin" --password-stdin
for id in nozawa1 nozawa2 Kiyo.0012 locked1; do
  echo 'correct horse battery' | e account add "$id" --contract 5110 --role user --name "User $id" --password-stdin
done
enroll() { # id password keyfile
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$3" -subj "/CN=$1" -out "$3.csr" 2>/dev/null
  curl -sS --fail-with-body --cacert certs/root-ca.pem --user "$1:$2" -H 'Content-Type: application/pkcs10' \
    -H 'Accept: application/pem-certificate-chain' --data-binary @"$3.csr" -o "$3.pem" \
    "https://localhost:$port/.well-known/est/simpleenroll"
}
wrong() { # id
  curl -sS -o /dev/null --cacert certs/root-ca.pem --user "$1:wrong password" -H 'Content-Type: application/pkcs10' \
    --data-binary @nozawa1.key.csr "https://localhost:$port/.well-known/est/simpleenroll"
}
enroll otemat9 'master password 1' otemat9.key
enroll nozawa1 'correct horse battery' nozawa1.key
e account reissue nozawa1
enroll nozawa1 'correct horse battery' nozawa1b.key
enroll nozawa2 'correct horse battery' nozawa2.key
e account revoke nozawa2 --reason keyCompromise
wrong Kiyo.0012; wrong Kiyo.0012
wrong locked1; wrong locked1
wrong nobody
e account unlock Kiyo.0012
echo 'a new password 2' | e account passwd nozawa2 --password-stdin
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout app.key -subj "/CN=netbanking" -out app.csr 2>/dev/null
e app add netbanking --contracts 7001,5110 --csr app.csr > app.pem
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout app2.key -subj "/CN=billing" -out app2.csr 2>/dev/null
e app add billing --all --can-create-contracts --csr app2.csr > app2.pem
e app revoke billing > /dev/null
e history --json > /dev/null
e backup "$work/backup.ndjson"
kill -TERM "$pid"; wait "$pid" || true
rm -rf "$out" && mkdir -p "$out" && cp -r certs "$out/" && cp backup.ndjson "$out/"
echo "wrote $out"
