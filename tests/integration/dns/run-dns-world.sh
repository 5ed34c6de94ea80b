#!/usr/bin/env bash
# Bring the test world up, run the relay_dns integration program against its
# DNS, bring the world down. Exit 77 (meson: skipped) when not root, since the
# world needs loopback aliases, NSD and Postfix.
#   run-dns-world.sh PROGRAM WORLD_SH
set -uo pipefail
prog=$1 world=$2

if [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP the test world needs root"
  exit 77
fi

tmp=$(mktemp -d /tmp/danerelay-dns-XXXXXX) || exit 1
chmod 755 "$tmp"
cleanup() {
  "$world" down "$tmp/world" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$world" up "$tmp/world" > "$tmp/up.log" 2>&1; then
  echo "# world.sh up failed:" >&2
  sed 's/^/#   /' "$tmp/up.log" >&2
  exit 1
fi
set -a
# shellcheck disable=SC1091
. "$tmp/world/world.env"
set +a
mkdir -p "$tmp/scratch"
export DNS_TEST_TMPDIR=$tmp/scratch
"$prog"
