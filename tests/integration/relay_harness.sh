# shellcheck shell=bash
# relay_harness.sh: what the end-to-end relay tests share (sourced, not run).
#
# The test sets, before sourcing:
#   RELAY_BIN      the danerelay binary (its first argument)
#   HARNESS_NAME   short tag: temp dir /tmp/danerelay-NAME.*, Message-IDs
#                  <ID@NAME.$WORLD_TLD>, chatter prefix
#   RELAY_PORT     the relay's port; WORLD_NET (optional) the world's net
# and after sourcing writes $CONF and calls start_relay.
#
# It skips (exit 77) unless root, brings the test world up in $T/world
# (torn down at exit, with the state kept on failure or E2E_KEEP=1), and
# defines the TAP helpers (ok, not_ok, check), start_relay/stop_relay,
# wait_for, log_has and maildir_has.

RELAY_BIN=$(cd "$(dirname "$RELAY_BIN")" && pwd)/$(basename "$RELAY_BIN")
WORLD=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../world/world.sh

if [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP end-to-end tests need root (loopback aliases, port 25)"
  exit 77
fi

# serve starts as root and drops to run_user (default danerelay), which a
# package would create; so does the harness.
"$(dirname "${BASH_SOURCE[0]}")/../../scripts/ensure-run-user.sh" >/dev/null || exit 1

T=$(mktemp -d "/tmp/danerelay-$HARNESS_NAME.XXXXXX")
chmod 755 "$T"
NET=${WORLD_NET:-0}
RELAY_HOST=127.$NET.0.1
# shellcheck disable=SC2153  # RELAY_PORT is set by the test before sourcing
RELAY_ADDR=$RELAY_HOST:$RELAY_PORT
RLOG=$T/relay.log
# shellcheck disable=SC2034  # read by the tests that source this file
SPOOL=$T/spool
CONF=$T/danerelay.conf
RELAY_PID=

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() {  # DESCRIPTION CMD...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# stop_relay [SIGNAL]: signal serve, wait for it; RELAY_STATUS = its exit.
stop_relay() {
  [ -n "$RELAY_PID" ] || return 0
  kill "-${1:-TERM}" "$RELAY_PID" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  wait "$RELAY_PID" 2>/dev/null
  # shellcheck disable=SC2034  # read by the tests that source this file
  RELAY_STATUS=$?
  RELAY_PID=
}

harness_cleanup() {
  stop_relay KILL
  "$WORLD" down "$T/world" >&2 || true
  if [ "$failed" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
    echo "# state kept in $T (relay log: $RLOG)" >&2
    tail -n 60 "$RLOG" >&2 2>/dev/null
  else
    rm -rf "$T"
  fi
}
trap harness_cleanup EXIT

echo "$HARNESS_NAME: bringing up the world in $T/world" >&2
if ! RELAY_ADDR=$RELAY_ADDR "$WORLD" up "$T/world" >&2; then
  echo "1..1"
  echo "not ok 1 - test world comes up"
  exit 1
fi
# shellcheck disable=SC1091
source "$T/world/world.env"

# start_relay: serve -c $CONF in the background, until it logs event=started.
start_relay() {
  "$RELAY_BIN" -c "$CONF" serve >> "$RLOG" 2>&1 &
  RELAY_PID=$!
  for _ in $(seq 100); do
    grep -q "event=started" "$RLOG" 2>/dev/null && return 0
    kill -0 "$RELAY_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
  local secs=$1; shift
  local _i
  for _i in $(seq $((secs * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# log_has RCPT PATTERN: the relay logged a delivery line for RCPT matching
# the extended regex PATTERN.
log_has() {
  grep -E "event=delivery .*to=<$1>" "$RLOG" 2>/dev/null | grep -qE -- "$2"
}

# maildir_has DIR MSGID: a message with this Message-ID was delivered there.
maildir_has() {
  [ -d "$1" ] || return 1
  grep -rlsF -- "Message-ID: <$2@$HARNESS_NAME.$WORLD_TLD>" "$1" >/dev/null 2>&1
}
