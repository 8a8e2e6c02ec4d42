#!/usr/bin/env bash
# Builds estca's Debian package (README "Install as a service"):
#
#   packaging/build-deb.sh                 # release build; prints the path of the .deb
#   packaging/build-deb.sh --profile dev   # the debug binary `cargo test` built (CI's check)
#
# Needs cargo-deb (`cargo install cargo-deb --locked`). It builds the `estca` binary only,
# generates into target/packaging/ what the package carries beside the files of the
# repository (Cargo.toml, [package.metadata.deb]): the man page and the bash, zsh and fish
# completions, from that binary's `estca man` and `estca completions SHELL`, and the unit with
# ExecStart=/usr/bin/estca (systemd/estca.service names /usr/local/bin/estca, where the
# manual installation puts it). Then `cargo deb` packs them into target/debian/.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
fast=()
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=${2:?--profile needs a value}; shift 2 ;;
    --fast) fast=(--fast); shift ;;
    *) echo "usage: $0 [--profile release|dev|PROFILE] [--fast]" >&2; exit 2 ;;
  esac
done
command -v cargo-deb >/dev/null 2>&1 || { echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2; exit 1; }

cargo build --locked --profile "$profile" --package estca --bin estca
target_dir=$(cargo metadata --locked --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
case $profile in dev) profile_dir=debug ;; *) profile_dir=$profile ;; esac
estca=$target_dir/$profile_dir/estca
[ -x "$estca" ] || { echo "$estca was not built" >&2; exit 1; }

out=target/packaging
rm -rf "$out"
mkdir -p "$out"
"$estca" man >"$out/estca.1"
"$estca" completions bash >"$out/estca.bash"
"$estca" completions zsh >"$out/_estca"
"$estca" completions fish >"$out/estca.fish"
sed 's|^ExecStart=/usr/local/bin/estca |ExecStart=/usr/bin/estca |' systemd/estca.service >"$out/estca.service"
grep -q '^ExecStart=/usr/bin/estca ' "$out/estca.service" || { echo "systemd/estca.service has no ExecStart=/usr/local/bin/estca line to rewrite" >&2; exit 1; }

# cargo-deb warns that the dev profile is meant for checks, not releases: so it is used.
cargo deb --no-build --locked --package estca --profile "$profile" "${fast[@]}" --output target/debian/
