#!/usr/bin/env bash
# `danerelay dns flush` against a real `danerelay serve`
# on a temporary spool (TAP). DNS is forwarded to the closed loopback
# discard port, so every lookup times out after the query timeout (10 s)
# and nothing leaves the host; that makes "a lookup in flight" easy to
# hold open: a message to dane.example (level may: no DNSSEC needed once
# the self-test gave its verdict) has its MX lookup outstanding for 10 s.
# Usage: test_cli_dns.sh PATH/TO/danerelay
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d /tmp/danerelay-dns-XXXXXX)
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# serve as root becomes run_user, which must exist (as a package would
# create it) and needs the spool.
"$(dirname "$0")/../../../scripts/ensure-run-user.sh" >/dev/null || exit 1
chmod 755 "$tmp"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
run() { out=$("$@" 2>"$tmp/err"); st=$?; err=$(cat "$tmp/err"); }
# wait_log PATTERN [TRIES]: until serve.log has PATTERN (0.25 s steps).
wait_log() { for _ in $(seq "${2:-120}"); do grep -q -- "$1" "$tmp/serve.log" && return 0; sleep 0.25; done; return 1; }
count() { grep -c -- "$1" "$tmp/serve.log"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%s\n' "spool_dir = $tmp/spool" "myhostname = relay.test" "listen = 127.0.0.1:$port" \
  "dns_forwarders = 127.0.0.1@9" "tls_security_level = may" "shutdown_timeout = 1s" > "$tmp/d.conf"
D=("$bin" -c "$tmp/d.conf")
submit() {
  python3 -c "import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.sendmail('alice@example.org', [sys.argv[2]], 'Subject: t\r\n\r\nhello\r\n')
s.quit()" "$port" "$1"
}
# attempts of recipient $1 in the queue (-1: not queued)
attempts() {
  "${D[@]}" queue list --json | python3 -c "import json,sys
for l in sys.stdin:
    m = json.loads(l)
    for r in m['recipients']:
        if r['address'] == sys.argv[1]: print(r['attempts']); sys.exit(0)
print(-1)" "$1"
}

# ---- no daemon
run "${D[@]}" dns flush
[ "$st" = 1 ] && [ -z "$out" ] && [[ "$err" == *"danerelay dns flush: no running serve for spool $tmp/spool"* ]] \
  && ok "no daemon: exit 1 with a clear error" || notok "no daemon" "exit $st" "$out" "$err"
run "${D[@]}" dns
[ "$st" = 2 ] && [[ "$err" == *"usage: danerelay dns flush"* ]] && ok "dns without flush: usage, exit 2" || notok "usage" "exit $st" "$err"
run "${D[@]}" dns flush a.example b.example
[ "$st" = 2 ] && ok "two names: usage, exit 2" || notok "two names" "exit $st" "$err"

# ---- a running daemon
"${D[@]}" serve > "$tmp/serve.log" 2>&1 &
serve_pid=$!
wait_log "event=started" 40 && ok "serve started" || notok "serve start" "$(cat "$tmp/serve.log")"
submit bob@dane.example && ok "message submitted" || notok "submit"
# The first self-test times out (10 s); then the may-level delivery asks
# for the MX, which stays outstanding for another 10 s.
wait_log "event=dnssec-selftest status=failed" 80 || notok "first self-test" "$(cat "$tmp/serve.log")"
# While the self-test had no verdict the scheduler rescanned once a second
# (relay_sched.c); give it two scans to start the delivery, whose MX lookup
# then stays in flight for the rest of its 10 s.
sleep 2.5
st_before=$(count "event=dnssec-selftest")
run "${D[@]}" dns flush Dane.Example.
[ "$st" = 0 ] && [[ "$out" == "DNS cache flushed (whole cache, asked for dane.example): new resolver context, "[1-9]*" DNS request(s) in flight finish on the old one" ]] \
  && ok "flush NAME: exit 0, says a full flush was done" || notok "flush NAME" "exit $st" "$out" "$err"
grep -q "event=dns-flush status=ok name=dane.example scope=full in_flight=[1-9]" "$tmp/serve.log" \
  && ok "daemon logs event=dns-flush with the name and the requests in flight" || notok "dns-flush log" "$(cat "$tmp/serve.log")"
# The lookup in flight is answered on the old context (timeout -> the
# delivery is deferred and recorded), and only then is the old one closed.
wait_log "event=delivery id=.* to=<bob@dane.example>.*class=dns-lookup attempts=1" 80 \
  && ok "the delivery in flight got its answer from the old context" || notok "in-flight delivery" "$(cat "$tmp/serve.log")"
wait_log "event=dns-flush status=old-context-closed in_flight_at_flush=[1-9]" 20 \
  && ok "old context closed once its requests were done" || notok "old closed" "$(cat "$tmp/serve.log")"
a=$(grep -n "event=delivery id=.*bob@dane.example" "$tmp/serve.log" | head -1 | cut -d: -f1)
b=$(grep -n "old-context-closed" "$tmp/serve.log" | head -1 | cut -d: -f1)
[ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ] && ok "old context closed after the delivery's answer, not before" \
  || notok "order" "delivery line $a, closed line $b"
# The new context runs its own self-test.
for _ in $(seq 80); do [ "$(count "event=dnssec-selftest")" -gt "$st_before" ] && break; sleep 0.25; done
[ "$(count "event=dnssec-selftest")" -gt "$st_before" ] && ok "self-test runs again on the new context" \
  || notok "self-test again" "$(cat "$tmp/serve.log")"
[ "$(attempts bob@dane.example)" = 1 ] && ok "outcome written to the queue" || notok "attempts" "$("${D[@]}" queue list)"

# Deliveries go on with the new context: retry, and a second attempt is made.
run "${D[@]}" queue retry --all
for _ in $(seq 100); do [ "$(attempts bob@dane.example)" = 2 ] && break; sleep 0.25; done
[ "$(attempts bob@dane.example)" = 2 ] && ok "a queued message is attempted again after the flush" \
  || notok "attempt after flush" "$(tail -5 "$tmp/serve.log")"

# A second flush with nothing in flight closes the old context at once.
run "${D[@]}" dns flush
[ "$st" = 0 ] && [ "$out" = "DNS cache flushed: new resolver context, 0 DNS request(s) in flight finish on the old one" ] \
  && ok "flush without NAME" || notok "flush" "exit $st" "$out" "$err"
wait_log "event=dns-flush status=old-context-closed in_flight_at_flush=0" 20 && ok "idle old context closed at once" \
  || notok "idle close" "$(tail -5 "$tmp/serve.log")"
grep -q 'event=dns-flush status=ok name=(all)' "$tmp/serve.log" && ok "flush without NAME logged as (all)" || notok "(all)"
run "${D[@]}" dns flush 'a..b'
[ "$st" = 1 ] && [[ "$err" == *"not a domain name"* ]] && ok "daemon refuses a bad name: exit 1" || notok "bad name" "exit $st" "$out" "$err"

# SIGTERM while a retired context still has a lookup in flight: the
# scheduler aborts the job, that cancels the request, the old context
# closes, and serve exits 0 with no handle left open.
submit carol@dane.example
for _ in $(seq 40); do grep -q "event=queued.*nrcpt" "$tmp/serve.log" && [ "$(attempts carol@dane.example)" != -1 ] && break; sleep 0.25; done
sleep 0.5
run "${D[@]}" dns flush
[[ "$out" == *"new resolver context"* ]] || notok "flush before SIGTERM" "$out" "$err"
kill -TERM "$serve_pid"; wait "$serve_pid"; sst=$?; serve_pid=
[ "$sst" = 0 ] && ok "SIGTERM: serve exits 0" || notok "serve exit" "status $sst" "$(tail -8 "$tmp/serve.log")"
grep -q 'event=stopped why="shutdown complete"' "$tmp/serve.log" && ! grep -q "still had open handles" "$tmp/serve.log" \
  && ok "shutdown complete, no handle left open" || notok "clean shutdown" "$(tail -8 "$tmp/serve.log")"
[ "$(count "event=dns-flush status=ok")" = "$(count "old-context-closed")" ] && ok "every retired context was closed" \
  || notok "retired contexts closed" "$(grep dns-flush "$tmp/serve.log")"
echo "1..$n"
