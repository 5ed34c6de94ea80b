#!/usr/bin/env bash
# Install the Debian 12 packages one task needs, when any is missing.
# Idempotent and quiet when everything is present.
#
#   scripts/deps.sh run    build the relay and run it (`make run`): compiler,
#                          libraries, the root trust anchor. No MTA, no DNS
#                          server: safe on a production host.
#   scripts/deps.sh test   everything `run` installs, plus the peers of the
#                          test world (`make test`): NSD, ldns tools, Postfix
#                          (unconfigured), dig, the openssl CLI, groff,
#                          clang-format, clang-tidy, shellcheck, curl and
#                          python3-prometheus-client.
#   scripts/deps.sh deb    the Build-Depends of debian/control and dpkg-dev
#                          (`make deb`).
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(
  gcc make meson ninja-build pkg-config python3
  libssl-dev libuv1-dev libunbound-dev libevent-dev libidn2-dev libcmocka-dev
  # TLS reports (RFC 8460) and MTA-STS policy fetch (RFC 8461): HTTPS with
  # the OpenSSL flavour like the rest, and gzip
  libcurl4-openssl-dev zlib1g-dev
)
run_pkgs=(
  # root trust anchor for full recursion; CA bundle for tls_security_level=verify
  dns-root-data ca-certificates
)
test_pkgs=(
  # test world: authoritative DNS, zone signing, MTAs, loopback addresses
  nsd ldnsutils bind9-dnsutils postfix iproute2 openssl procps
  # man page lint
  groff
  # source checks of make test: format, shell scripts, static analysis
  clang-format clang-tidy shellcheck
  # metrics world test: HTTP client and a real Prometheus text parser
  curl python3-prometheus-client
)

case ${1:-} in
  run) pkgs=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  deb) pkgs=(dpkg-dev) ;;
  *)
    echo "usage: scripts/deps.sh run|test|deb" >&2
    exit 2 ;;
esac

SUDO=
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
fi
need_root() {
  [ -z "$SUDO" ] || command -v sudo >/dev/null || {
    echo "deps: need root or sudo to install: $*" >&2; exit 1; }
}
updated=no
apt_update() {
  [ "$updated" = yes ] || $SUDO apt-get update -qq
  updated=yes
}

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  need_root "${missing[*]}"
  # Postfix is only a test peer here: install it without a system
  # configuration, so the package starts no system-wide MTA on port 25.
  case " ${missing[*]} " in
    *" postfix "*)
      echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections ;;
  esac
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The package's build dependencies come from debian/control itself, so this
# list cannot drift from what dpkg-buildpackage checks.
if [ "$1" = deb ] && ! dpkg-checkbuilddeps >/dev/null 2>&1; then
  echo "deps: installing the Build-Depends of debian/control" >&2
  need_root "the Build-Depends of debian/control"
  apt_update
  $SUDO apt-get build-dep -y -qq --no-install-recommends ./ >/dev/null
fi
exit 0
