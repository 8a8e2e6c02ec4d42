#!/usr/bin/env bash
# Installs estca's Debian package as an operator would and checks it (CI runs this as root;
# README "Install as a service"):
#
#   sudo packaging/check-deb.sh                  # builds it from the debug binary (--profile dev)
#   sudo packaging/check-deb.sh target/debian/estca_0.1.0-1_amd64.deb
#
# `dpkg -i`; every file where the README says, and nothing else; the user, the group and the
# directories made; the service neither enabled nor started; `systemd-analyze verify` on the
# installed unit; `estca --version`, `estca check-config` (as the daemon's user) and the
# completions from PATH; a second `dpkg -i` (an upgrade) keeping an edited configuration and
# its mode; `estca init` makes a CA in /var/lib/estca; `dpkg -r` keeps the CA
# and the configuration; `dpkg --purge` removes the configuration and still keeps the CA.
# It refuses to run where estca is installed or its directories or user exist, and removes
# everything it made at the end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-deb: FAILED: $*" >&2; exit 1; }
step() { echo "-- $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i)"
if dpkg-query -W -f='${Status}' estca 2>/dev/null | grep -q "installed\|config-files"; then
  fail "the estca package is installed here; this check installs and removes it"
fi
for p in /var/lib/estca /etc/estca; do
  [ ! -e "$p" ] || fail "$p exists; this check would remove it"
done
! getent passwd estca >/dev/null || fail "the user estca exists; this check would remove it"
! getent group estca-admin >/dev/null || fail "the group estca-admin exists; this check would remove it"
command -v systemd-analyze >/dev/null 2>&1 || fail "systemd-analyze is missing (apt-get install systemd)"

cleanup() {
  dpkg --purge estca >/dev/null 2>&1 || true
  rm -rf /var/lib/estca /etc/estca /run/estca /run/estca-check-deb-passphrase
  userdel estca 2>/dev/null || true
  groupdel estca-admin 2>/dev/null || true
}
trap cleanup EXIT

if [ $# -ge 1 ]; then
  deb=$1
else
  step "build the package from the debug binary"
  packaging/build-deb.sh --profile dev --fast
  deb=$(ls -t target/debian/estca_*.deb | head -n 1)
fi
[ -f "$deb" ] || fail "no package at $deb"

step "dpkg -i $deb"
dpkg -i "$deb"

step "the files, and nothing else"
expected=(
  /usr/bin/estca
  /usr/lib/systemd/system/estca.service
  /usr/lib/sysusers.d/estca.conf
  /usr/lib/tmpfiles.d/estca.conf
  /etc/estca/estca.toml
  /usr/share/man/man1/estca.1.gz
  /usr/share/bash-completion/completions/estca
  /usr/share/zsh/vendor-completions/_estca
  /usr/share/fish/vendor_completions.d/estca.fish
  /usr/share/doc/estca/README.md
  /usr/share/doc/estca/LICENSE
  /usr/share/doc/estca/copyright
)
for f in "${expected[@]}"; do
  [ -f "$f" ] || fail "$f is not installed"
  grep -qF "\`$f\`" README.md || fail "$f is installed but README \"Install as a service\" does not name it"
done
# Every regular file the package holds is one of the above (no estca-bench, no stray file).
while read -r f; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  printf '%s\n' "${expected[@]}" | grep -qxF "$f" || fail "the package holds $f, which is not expected"
done < <(dpkg -L estca)
[ "$(command -v estca)" = /usr/bin/estca ] || fail "estca on PATH is $(command -v estca), not /usr/bin/estca"
dpkg-query -W -f='${Conffiles}\n' estca | grep -q '^ /etc/estca/estca.toml ' || fail "/etc/estca/estca.toml is not a conffile"
[ "$(stat -c '%a %U %G' /etc/estca)" = "750 root estca-admin" ] || fail "/etc/estca is $(stat -c '%a %U %G' /etc/estca), not 750 root estca-admin"
[ "$(stat -c '%a %U %G' /etc/estca/estca.toml)" = "640 root estca-admin" ] || fail "/etc/estca/estca.toml is $(stat -c '%a %U %G' /etc/estca/estca.toml), not 640 root estca-admin"
cmp -s config/estca.toml /etc/estca/estca.toml || fail "/etc/estca/estca.toml is not config/estca.toml"
grep -q '^ExecStart=/usr/bin/estca serve ' /usr/lib/systemd/system/estca.service || fail "the installed unit does not start /usr/bin/estca"
gzip -t /usr/share/man/man1/estca.1.gz || fail "the man page is not gzip"
zcat /usr/share/man/man1/estca.1.gz | grep -q '^\.TH estca 1' || fail "the man page is not estca(1)"

step "the user, the group and the directories"
id -nG estca | grep -qw estca-admin || fail "the user estca is not in the group estca-admin"
for d in /var/lib/estca /var/lib/estca/ca; do
  [ "$(stat -c '%a %U %G' "$d")" = "700 estca estca-admin" ] || fail "$d is $(stat -c '%a %U %G' "$d" 2>&1), not 700 estca estca-admin"
done
[ "$(stat -c '%a %U %G' /run/estca)" = "750 estca estca-admin" ] || fail "/run/estca is $(stat -c '%a %U %G' /run/estca 2>&1), not 750 estca estca-admin"

step "the service is neither enabled nor started"
[ ! -e /etc/systemd/system/multi-user.target.wants/estca.service ] || fail "the package enabled estca.service"
if [ -d /run/systemd/system ]; then
  ! systemctl is-active --quiet estca || fail "the package started estca.service"
fi

step "systemd-analyze verify /usr/lib/systemd/system/estca.service"
systemd-analyze verify /usr/lib/systemd/system/estca.service

step "estca from PATH"
estca --version | grep -q '^estca ' || fail "estca --version: $(estca --version 2>&1)"
runuser -u estca -- estca check-config >/dev/null || fail "estca check-config, as the user estca, failed"
bash -c 'source /usr/share/bash-completion/completions/estca && complete -p estca' >/dev/null \
  || fail "the bash completion does not define completion for estca"

step "dpkg -i again (an upgrade) keeps the operator's configuration, its mode and group"
echo "# an operator's edit" >>/etc/estca/estca.toml
chmod 0600 /etc/estca/estca.toml
dpkg -i "$deb" >/dev/null
tail -n 1 /etc/estca/estca.toml | grep -qx "# an operator's edit" || fail "dpkg -i over the installed package replaced the edited /etc/estca/estca.toml"
[ "$(stat -c '%a %U %G' /etc/estca/estca.toml)" = "600 root estca-admin" ] || fail "dpkg -i over the installed package reset /etc/estca/estca.toml to $(stat -c '%a %U %G' /etc/estca/estca.toml)"
chmod 0640 /etc/estca/estca.toml   # for the user estca again

step "estca init as the user estca, then dpkg -r keeps the CA and the configuration"
# As the README does it: a passphrase file only the user estca reads (a scratch one here).
pass=/run/estca-check-deb-passphrase
(umask 077 && echo "check-deb scratch passphrase" >"$pass")
chown estca "$pass"
chmod 0400 "$pass"
runuser -u estca -- env ESTCA_CA__KEY_PASSPHRASE_FILE="$pass" estca init >/dev/null
rm -f "$pass"
before=$(cd /var/lib/estca && find . -type f | sort | xargs sha256sum)
[ -n "$before" ] || fail "estca init wrote nothing under /var/lib/estca"
dpkg -r estca
[ ! -e /usr/bin/estca ] || fail "dpkg -r left /usr/bin/estca"
after=$(cd /var/lib/estca && find . -type f | sort | xargs sha256sum)
[ "$before" = "$after" ] || fail "dpkg -r changed /var/lib/estca"
[ -f /etc/estca/estca.toml ] || fail "dpkg -r removed the configuration (a conffile stays until purge)"
getent passwd estca >/dev/null || fail "dpkg -r removed the user estca"

step "dpkg --purge removes the configuration and keeps the CA"
dpkg --purge estca
[ ! -e /etc/estca/estca.toml ] || fail "dpkg --purge left /etc/estca/estca.toml"
after=$(cd /var/lib/estca && find . -type f | sort | xargs sha256sum)
[ "$before" = "$after" ] || fail "dpkg --purge changed /var/lib/estca"

echo "check-deb: OK ($deb)"
