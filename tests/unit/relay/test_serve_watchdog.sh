#!/usr/bin/env bash
# `danerelay serve` and the service manager's watchdog (TAP), with the same
# pretend manager as test_serve_notify.sh: a datagram socket in the
# abstract namespace behind $NOTIFY_SOCKET. sd_watchdog_enabled(3)'s rules:
#   WATCHDOG_USEC=400000, WATCHDOG_PID unset     WATCHDOG=1 every 200 ms
#   WATCHDOG_USEC=400000, WATCHDOG_PID=serve's   the same
#   WATCHDOG_USEC=400000, WATCHDOG_PID=1         never (another process's)
#   no WATCHDOG_USEC                             never
#   WATCHDOG_USEC=abc                            never, and a warning logged
# and a stopped process (SIGSTOP) sends nothing until it runs again.
# Usage: test_serve_watchdog.sh PATH/TO/danerelay
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d /tmp/danerelay-watchdog-XXXXXX)
chmod 755 "$tmp"   # serve as root becomes run_user, which needs the spool
"$(dirname "$0")/../../../scripts/ensure-run-user.sh" >/dev/null || exit 1
serve_pid="" listen_pid=""
stop_all() {
  for p in $serve_pid $listen_pid; do
    kill -CONT "$p" 2>/dev/null
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  serve_pid="" listen_pid=""
}
cleanup() { stop_all; [ -n "${KEEP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT
T0=$SECONDS
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }

# The manager, for every run: one line per datagram, "NAME: message".
# Each run's serve has its own socket name, so its lines carry it.
python3 -c "import socket, sys, threading
out = open(sys.argv[1], 'a')
lock = threading.Lock()
def recv(name, s):
    while True:
        m = s.recv(4096).decode()
        with lock:
            out.write(name + ': ' + m.replace('\n', '|') + '\n'); out.flush()
threads = []
for name in sys.argv[3:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind('\0danerelay-test-watchdog-' + sys.argv[2] + '-' + name)
    threads.append(threading.Thread(target=recv, args=(name, s), daemon=True))
for t in threads:
    t.start()
open(sys.argv[1] + '.bound', 'w').close()
for t in threads:
    t.join()" "$tmp/msgs" "$$" on-unset on-self off-other off-unset off-bad &
listen_pid=$!
for _ in $(seq 80); do [ -e "$tmp/msgs.bound" ] && break; sleep 0.25; done
touch "$tmp/msgs"

# run NAME ENV-ASSIGNMENT...: serve with the given environment
# (WATCHDOG_PID=self: serve's own pid), until its READY=1.
run() {
  local name=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf '%s\n' "spool_dir = $tmp/spool-$name" "myhostname = relay.test" "listen = 127.0.0.1:$port" \
    "dns_forwarders = 127.0.0.1@9" "tls_security_level = may" "shutdown_timeout = 1s" > "$tmp/$name.conf"
  # exec keeps the pid, so "self" can be written before serve starts.
  # shellcheck disable=SC2016  # $$ and $0 belong to the inner shell
  env NOTIFY_SOCKET="@danerelay-test-watchdog-$$-$name" "$@" bash -c \
    '[ "${WATCHDOG_PID:-}" = self ] && export WATCHDOG_PID=$$; exec "$0" -c "$1" serve' \
    "$bin" "$tmp/$name.conf" > "$tmp/$name.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 80); do grep -q "^$name: READY=1" "$tmp/msgs" && return 0; sleep 0.25; done
  return 1
}
stop_serve() {
  [ -n "$serve_pid" ] || return 0
  kill -CONT "$serve_pid" 2>/dev/null
  kill -TERM "$serve_pid" 2>/dev/null
  wait "$serve_pid" 2>/dev/null
  serve_pid=
}
pings() { grep -c "^$1: WATCHDOG=1\$" "$tmp/msgs"; }
msgs_of() { grep "^$1: " "$tmp/msgs"; }

for v in unset self; do
  if [ $v = unset ]; then run on-$v WATCHDOG_USEC=400000; else run on-$v WATCHDOG_USEC=400000 WATCHDOG_PID=self; fi \
    || notok "serve starts (WATCHDOG_PID $v)" "$(cat "$tmp/on-$v.log")"
  sleep 2
  c=$(pings on-$v)
  # 2 s at 200 ms: about 10; a loaded machine may lose a few.
  [ "$c" -ge 5 ] && ok "WATCHDOG_USEC=400000, WATCHDOG_PID $v: WATCHDOG=1 repeatedly ($c in 2 s)" \
    || notok "WATCHDOG=1 repeatedly (WATCHDOG_PID $v)" "$c pings" "$(msgs_of on-$v)"
  grep -qE 'event=watchdog timeout=0\.400 interval=0\.200( |$)' "$tmp/on-$v.log" \
    && ok "the interval is logged: half the timeout" || notok "watchdog logged" "$(cat "$tmp/on-$v.log")"
  if [ $v = unset ]; then
    # A stopped loop sends nothing; it resumes when the process runs.
    kill -STOP "$serve_pid"; sleep 0.3
    c1=$(pings on-$v); sleep 1; c2=$(pings on-$v)
    kill -CONT "$serve_pid"; sleep 1; c3=$(pings on-$v)
    [ "$c1" = "$c2" ] && [ "$c3" -gt "$c2" ] && ok "no ping while the process is stopped, pings again after" \
      || notok "pings stop with the process" "$c1 $c2 $c3"
  fi
  stop_serve
done

run off-other WATCHDOG_USEC=400000 WATCHDOG_PID=1 || notok "serve starts (WATCHDOG_PID=1)" "$(cat "$tmp/off-other.log")"
sleep 2
[ "$(pings off-other)" = 0 ] && ok "WATCHDOG_PID of another process: no WATCHDOG=1" \
  || notok "no ping for another pid" "$(msgs_of off-other)"
stop_serve

run off-unset || notok "serve starts (no WATCHDOG_USEC)" "$(cat "$tmp/off-unset.log")"
sleep 2
[ "$(pings off-unset)" = 0 ] && ok "without WATCHDOG_USEC: no WATCHDOG=1" \
  || notok "no ping without WATCHDOG_USEC" "$(msgs_of off-unset)"
grep -q 'event=watchdog' "$tmp/off-unset.log" && notok "nothing logged about a watchdog" "$(cat "$tmp/off-unset.log")" \
  || ok "nothing logged about a watchdog"
stop_serve

run off-bad WATCHDOG_USEC=abc || notok "serve starts (WATCHDOG_USEC=abc)" "$(cat "$tmp/off-bad.log")"
sleep 1
[ "$(pings off-bad)" = 0 ] && grep -q 'level=warning event=watchdog' "$tmp/off-bad.log" \
  && ok "malformed WATCHDOG_USEC: no WATCHDOG=1, a warning" \
  || notok "malformed WATCHDOG_USEC" "$(msgs_of off-bad)" "$(cat "$tmp/off-bad.log")"
stop_serve

echo "# took $((SECONDS - T0)) s"
echo "1..$n"
