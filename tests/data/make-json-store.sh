#!/usr/bin/env bash
# Writes tests/data/json-store.tar.gz: the data and CA directories of an estca whose store
# holds JSON records (the format before the binary rows), as the migration test reads it.
# It was made once, with the estca binary of commit 0bd9917, and is kept as it was; running
# this script again with a newer estca would write the newer format.
#
#   usage: tests/data/make-json-store.sh path/to/estca
set -euo pipefail
estca="$(realpath "$1")"
out="$(realpath "$(dirname "$0")")/json-store.tar.gz"
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
[metrics]
enabled = false
[revocation]
listen = "off"
TOML
"$estca" --config estca.toml serve 2> serve.log &
pid=$!
for _ in $(seq 100); do grep -q "estca ready" serve.log 2>/dev/null && break; sleep 0.1; done
port="$(grep -o 'https=127.0.0.1:[0-9]*' serve.log | cut -d: -f2)"
e() { "$estca" --config estca.toml "$@"; }
e contract add 5110 --name "Nozawa Trading Co."
e contract add 7001 --name "大手町エステート株式会社"
echo 'master password 1' | e account add otemat9 --contract 7001 --role master --name "Otemachi Admin" --password-stdin
for id in nozawa1 nozawa2 Kiyo.0012; do
  echo 'correct horse battery' | e account add "$id" --contract 5110 --role user --name "User $id" --password-stdin
done
enroll() { # id password keyfile
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$3" -subj "/CN=$1" -out "$3.csr" 2>/dev/null
  curl -sS --fail-with-body --cacert certs/root-ca.pem --user "$1:$2" -H 'Content-Type: application/pkcs10' \
    -H 'Accept: application/pem-certificate-chain' --data-binary @"$3.csr" -o "$3.pem" \
    "https://localhost:$port/.well-known/est/simpleenroll"
}
enroll otemat9 'master password 1' otemat9.key
enroll nozawa1 'correct horse battery' nozawa1.key
e account reissue nozawa1
enroll nozawa1 'correct horse battery' nozawa1b.key
enroll nozawa2 'correct horse battery' nozawa2.key
e account revoke nozawa2 --reason keyCompromise
for _ in 1 2; do
  curl -sS -o /dev/null --cacert certs/root-ca.pem --user 'Kiyo.0012:wrong password' -H 'Content-Type: application/pkcs10' \
    --data-binary @nozawa1.key.csr "https://localhost:$port/.well-known/est/simpleenroll"
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout app.key -subj "/CN=netbanking" -out app.csr 2>/dev/null
e app add netbanking --contracts 7001 --csr app.csr > app.pem
kill -TERM "$pid"; wait "$pid" || true
mkdir -p fixture && cp -r data certs fixture/ && rm -f fixture/data/admin.sock
# nozawa1's current key and certificate chain, so that a test can renew it after migrating.
cp nozawa1b.key fixture/nozawa1.key
cp nozawa1b.key.pem fixture/nozawa1-chain.pem
tar -C fixture -czf "$out" .
echo "wrote $out"
