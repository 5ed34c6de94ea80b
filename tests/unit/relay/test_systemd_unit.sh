#!/usr/bin/env bash
# The systemd unit as installed (meson's configured etc/danerelay.service),
# checked by systemd itself (TAP):
#   - `systemd-analyze verify` reports nothing (syntax, ExecStart
#     executable, man: pages of Documentation= found);
#   - `systemd-analyze security --offline=true` rates the exposure at most
#     MAX_EXPOSURE, both by its --threshold exit status and by the overall
#     figure it prints;
#   - the service contract: Type=notify, reload by SIGHUP, journal
#     identity, its own user, no capabilities.
# Skipped (exit 77) without systemd-analyze, or one too old for --offline.
# Usage: test_systemd_unit.sh UNIT DANERELAY MAN8 MAN5
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
MAX_EXPOSURE=2.0
unit=$1 bin=$(realpath "$2") man8=$3 man5=$4

command -v systemd-analyze >/dev/null || { echo "1..0 # SKIP no systemd-analyze"; exit 77; }
systemd-analyze security --help 2>/dev/null | grep -q -- '--offline' \
  || { echo "1..0 # SKIP systemd-analyze has no --offline"; exit 77; }

tmp=$(mktemp -d /tmp/danerelay-unit-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf "%s\n" "$l" | sed "s/^/# /"; done; }

# verify checks that ExecStart's program exists: point it at the binary just
# built instead of the install location, and change nothing else.
installed=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
[ -n "$installed" ] && ok "ExecStart names $installed" || notok "ExecStart found" "$(cat "$unit")"
sed "s|^ExecStart=$installed |ExecStart=$bin |" "$unit" > "$tmp/danerelay.service"
mkdir -p "$tmp/man/man8" "$tmp/man/man5"
cp "$man8" "$tmp/man/man8/danerelay.8"
cp "$man5" "$tmp/man/man5/danerelay.conf.5"

out=$(cd "$tmp" && MANPATH="$tmp/man" systemd-analyze verify ./danerelay.service 2>&1)
st=$?
[ "$st" = 0 ] && [ -z "$out" ] && ok "systemd-analyze verify: clean" \
  || notok "systemd-analyze verify" "exit $st" "$out"

threshold=$(awk -v m="$MAX_EXPOSURE" 'BEGIN { printf "%d", m * 10 }')
out=$(systemd-analyze security --offline=true --threshold="$threshold" "$tmp/danerelay.service" 2>&1)
st=$?
[ "$st" = 0 ] && ok "security --threshold=$threshold passes" \
  || notok "security --threshold=$threshold" "exit $st" "$(printf '%s\n' "$out" | grep -E '✗|Overall')"
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
  ok "exposure $score <= $MAX_EXPOSURE"
else
  notok "exposure ${score:-?} <= $MAX_EXPOSURE" "$(printf '%s\n' "$out" | grep -E '✗|Overall')"
fi

# The contract the daemon and the documentation rely on.
# shellcheck disable=SC2016  # $MAINPID is unit-file text, expanded by systemd
for want in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'SyslogIdentifier=danerelay' 'SyslogFacility=mail' 'User=danerelay' \
    'CapabilityBoundingSet=' 'UMask=0077' 'WatchdogSec=60s'; do
  grep -qxF -- "$want" "$unit" && ok "unit has $want" || notok "unit has $want"
done
grep -q '^ReadWritePaths=/' "$unit" && ok "ReadWritePaths is absolute" \
  || notok "ReadWritePaths is absolute" "$(grep ReadWritePaths "$unit")"

echo "1..$n"
