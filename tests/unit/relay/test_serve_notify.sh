#!/usr/bin/env bash
# `danerelay serve` under a pretend service manager (TAP): a datagram
# socket in the abstract namespace plays systemd's notification socket,
# and every message serve sends through $NOTIFY_SOCKET is read back:
# READY=1 once it listens, a STATUS= with the DNSSEC self-test verdict,
# RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM, with the
# queue count. DNS goes to the closed loopback discard port, so the
# self-test fails after its query timeout and nothing leaves the host.
# Usage: test_serve_notify.sh PATH/TO/danerelay
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d /tmp/danerelay-notify-XXXXXX)
chmod 755 "$tmp"   # serve as root becomes run_user, which needs the spool
"$(dirname "$0")/../../../scripts/ensure-run-user.sh" >/dev/null || exit 1
serve_pid="" listen_pid=""
cleanup() {
  for p in $serve_pid $listen_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }
# wait_msg PATTERN [TRIES]: until a received message matches (0.25 s steps).
wait_msg() { for _ in $(seq "${2:-120}"); do grep -qE -- "$1" "$tmp/msgs" && return 0; sleep 0.25; done; return 1; }

# The manager: one line per datagram, newlines inside shown as "|".
sock="@danerelay-test-notify-$$"
python3 -c "import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\0' + sys.argv[1][1:])
open(sys.argv[2] + '.bound', 'w').close()
with open(sys.argv[2], 'a') as out:
    while True:
        m = s.recv(4096).decode()
        out.write(m.replace('\n', '|') + '\n'); out.flush()" "$sock" "$tmp/msgs" &
listen_pid=$!
for _ in $(seq 40); do [ -e "$tmp/msgs.bound" ] && break; sleep 0.25; done
touch "$tmp/msgs"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%s\n' "spool_dir = $tmp/spool" "myhostname = relay.test" "listen = 127.0.0.1:$port" \
  "dns_forwarders = 127.0.0.1@9" "tls_security_level = may" "shutdown_timeout = 1s" > "$tmp/d.conf"
NOTIFY_SOCKET=$sock "$bin" -c "$tmp/d.conf" serve > "$tmp/serve.log" 2>&1 &
serve_pid=$!

if wait_msg '^READY=1'; then
  first=$(head -n 1 "$tmp/msgs")
  [ "$first" = "READY=1|STATUS=serving, dns self-test pending, 0 queued" ] \
    && ok "first message: READY=1 with STATUS" || notok "first message" "$first"
  python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5).close()" "$port" \
    && ok "listening when READY=1 arrives" || notok "listening at READY=1"
  grep -q 'event=started' "$tmp/serve.log" && ok "started logged" || notok "started logged" "$(cat "$tmp/serve.log")"
else
  notok "READY=1 received" "$(cat "$tmp/msgs")" "$(cat "$tmp/serve.log")"
fi

# A queued message shows in the counts.
python3 -c "import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.sendmail('alice@example.org', ['bob@dane.example'], 'Subject: t\r\n\r\nhello\r\n')
s.quit()" "$port" && ok "message accepted" || notok "message accepted" "$(cat "$tmp/serve.log")"

wait_msg '^STATUS=serving, dns self-test FAILED' 160 \
  && ok "self-test verdict in STATUS" || notok "self-test verdict" "$(cat "$tmp/msgs")" "$(tail -5 "$tmp/serve.log")"

before=$(wc -l < "$tmp/msgs")
kill -HUP "$serve_pid"
if wait_msg '^READY=1\|STATUS=serving, configuration reread' 40; then
  tail -n +"$((before + 1))" "$tmp/msgs" > "$tmp/reload"
  grep -qE '^RELOADING=1\|MONOTONIC_USEC=[0-9]+\|STATUS=reloading, 1 queued$' "$tmp/reload" \
    && ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC" || notok "RELOADING=1" "$(cat "$tmp/reload")"
  [ "$(grep -n '^RELOADING=1' "$tmp/reload" | cut -d: -f1)" -lt "$(grep -n '^READY=1' "$tmp/reload" | cut -d: -f1)" ] \
    && ok "SIGHUP: READY=1 after RELOADING=1" || notok "reload order" "$(cat "$tmp/reload")"
  grep -q '^READY=1|STATUS=serving, configuration reread (see event=reload), 1 queued$' "$tmp/reload" \
    && ok "SIGHUP: queue count after reload" || notok "count after reload" "$(cat "$tmp/reload")"
else
  notok "READY=1 after SIGHUP" "$(cat "$tmp/msgs")"
fi

kill -TERM "$serve_pid"
wait "$serve_pid"; st=$?
serve_pid=
[ "$st" = 0 ] && ok "serve exits 0" || notok "serve exit" "exit $st" "$(tail -5 "$tmp/serve.log")"
wait_msg '^STOPPING=1\|STATUS=stopping, 1 queued$' 20 && ok "SIGTERM: STOPPING=1" || notok "STOPPING=1" "$(cat "$tmp/msgs")"
grep -q 'event=notify' "$tmp/serve.log" && notok "no notify errors logged" "$(grep event=notify "$tmp/serve.log")" \
  || ok "no notify errors logged"

echo "1..$n"
