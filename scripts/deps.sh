#!/usr/bin/env bash
# Install the Debian 12 packages danerelay needs to build, run and test, when
# any is missing. Idempotent and quiet when everything is present.
set -euo pipefail

pkgs=(
  # build
  gcc make meson ninja-build pkg-config python3
  libssl-dev libuv1-dev libunbound-dev libevent-dev libcmocka-dev libidn2-dev
  # run: root trust anchor for full recursion
  dns-root-data ca-certificates
  # test world: authoritative DNS, zone signing, MTAs, loopback addresses
  nsd ldnsutils bind9-dnsutils postfix iproute2 openssl procps
)

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
# Postfix is only a test peer here: install it without a system configuration,
# so the package starts no system-wide MTA on port 25.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
