#!/usr/bin/env bash
# `danerelay serve`'s logging, against a real serve on a temporary spool
# (TAP): log_file reopened on SIGHUP after a rotation, stderr lines prefixed
# with their syslog priority when stderr is the journal, and a failing DNSSEC
# self-test logged once. DNS goes to the closed loopback discard port, so
# the self-test fails after the query timeout (10 s) and nothing leaves the
# host.
# Usage: test_cli_log.sh PATH/TO/danerelay
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d /tmp/danerelay-log-XXXXXX)
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# serve as root becomes run_user, which must exist (as a package would
# create it), reach the spool and create files in the log directory.
"$(dirname "$0")/../../../scripts/ensure-run-user.sh" >/dev/null || exit 1
chmod 755 "$tmp"
mkdir "$tmp/log"
[ "$(id -u)" = 0 ] && chown danerelay: "$tmp/log"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
# wait_grep FILE PATTERN [TRIES]: until FILE has PATTERN (0.25 s steps).
wait_grep() { for _ in $(seq "${3:-80}"); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.25; done; return 1; }

L=$tmp/log/relay.log
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%s\n' "spool_dir = $tmp/spool" "myhostname = relay.test" "listen = 127.0.0.1:$port" \
  "dns_forwarders = 127.0.0.1@9" "log_file = $L" "shutdown_timeout = 1s" > "$tmp/d.conf"

# stderr is a file whose device and inode JOURNAL_STREAM names, as systemd
# sets it for StandardError=journal.
: > "$tmp/stderr"
# shellcheck disable=SC2094  # stat reads the inode number only, not the data
JOURNAL_STREAM=$(stat -c '%d:%i' "$tmp/stderr") "$bin" -c "$tmp/d.conf" serve 2>> "$tmp/stderr" &
serve_pid=$!
wait_grep "$L" "event=started" 40 && ok "serve started, log_file written" || notok "serve start" "$(cat "$tmp/stderr")"

# ---- the failing self-test: one line, one name
wait_grep "$L" "event=dnssec-selftest status=failed" 120 \
  && ok "failing self-test logged as event=dnssec-selftest" || notok "self-test failure" "$(cat "$L")"

# ---- rotation: rename, SIGHUP, new lines in a new file at the same path
mv "$L" "$L.1"
kill -HUP "$serve_pid"
if wait_grep "$L" "event=reload" 40; then
  ok "after rename + SIGHUP the reload line is in a new log_file"
else
  notok "after rename + SIGHUP the reload line is in a new log_file" "new: $(cat "$L" 2>&1)" "old: $(tail -3 "$L.1")"
fi
! grep -q "event=reload" "$L.1" && ok "the renamed file got nothing after the SIGHUP" || notok "old file after SIGHUP" "$(tail -3 "$L.1")"
if [ "$(id -u)" = 0 ]; then
  [ "$(stat -c %U "$L.1")" = danerelay ] && [ "$(stat -c %U "$L")" = danerelay ] \
    && ok "log files belong to run_user" || notok "log file owner" "$(ls -l "$tmp/log")"
fi

# The self-test's lines were all written before the rotation, so the old
# file has every line of that event: exactly one.
c=$(grep -c "selftest" "$L.1")
[ "$c" = 1 ] && ok "the self-test failure is one log line" || notok "self-test lines: $c" "$(grep selftest "$L.1")"
c=$(grep -c "selftest" "$tmp/stderr")
[ "$c" = 1 ] && ok "and one line on stderr" || notok "self-test stderr lines: $c" "$(grep selftest "$tmp/stderr")"

# ---- the journal prefix: <N> on stderr only
grep -q '^<3>[^ ]* level=error event=dnssec-selftest status=failed' "$tmp/stderr" \
  && ok "stderr: the self-test failure starts with <3> (err)" || notok "<3> prefix" "$(cat "$tmp/stderr")"
grep -q '^<6>[^ ]* level=info event=started' "$tmp/stderr" \
  && ok "stderr: info lines start with <6>" || notok "<6> prefix" "$(cat "$tmp/stderr")"
bad=$(grep -E -v '^(<3>[^ ]* level=error|<4>[^ ]* level=warning|<6>[^ ]* level=info|<7>[^ ]* level=debug) ' "$tmp/stderr")
[ -z "$bad" ] && ok "stderr: every line has the priority of its level" || notok "stderr prefixes" "$bad"
! grep -q '^<' "$L.1" "$L" && ok "log_file lines carry no prefix" || notok "log_file prefix" "$(head -3 "$L.1")"

# ---- a reopen that fails keeps the old file and says so in it
mv "$L" "$L.2"
mkdir "$L"
kill -HUP "$serve_pid"
wait_grep "$L.2" "event=log-reopen status=failed" 40 \
  && ok "a failed reopen is logged, in the file still open" || notok "failed reopen" "$(tail -3 "$L.2")"
wait_grep "$L.2" "event=reload.*configuration reloaded" 40 \
  && ok "and lines keep going to that file" || notok "lines after failed reopen" "$(tail -3 "$L.2")"

kill -TERM "$serve_pid"; wait "$serve_pid"; sst=$?; serve_pid=
[ "$sst" = 0 ] && ok "SIGTERM: serve exits 0" || notok "serve exit" "status $sst" "$(tail -5 "$tmp/stderr")"
echo "1..$n"
