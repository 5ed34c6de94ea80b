#!/usr/bin/env bash
# Hostile clients against a real `danerelay serve` (TAP output): pipelined
# bursts larger than the reply buffer, clients outside mynetworks holding
# connections, slow-drip clients, NUL octets, logged refusals, and the
# envelope flag for 8-bit content. The clients are tests/reliability/
# hostile.py; serve runs on a temporary spool with a loopback listener and
# DNS forwarded to a closed loopback port, so nothing leaves the host and
# every message stays queued.
# Usage: test_cli_smtpd.sh PATH/TO/danerelay SOURCE_ROOT
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
src=$(realpath "$2")
H=$src/tests/reliability/hostile.py
tmp=$(mktemp -d /tmp/danerelay-smtpd-XXXXXX)
serve_pid=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# serve started as root becomes run_user, which must reach the spool.
chmod 755 "$tmp"
"$(dirname "$0")/../../../scripts/ensure-run-user.sh" >/dev/null || exit 1
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
py_checks() {  # "ok - X" / "not ok - X" / "# X" lines from hostile.py
  local l
  while IFS= read -r l; do
    case $l in
      "ok - "*) ok "${l#ok - }" ;;
      "not ok - "*) notok "${l#not ok - }" ;;
      "#"*) echo "$l" ;;
      queued\ *) echo "${l#queued }" >> "$tmp/queued" ;;
    esac
  done
}

# Any 127/8 address is local on Linux: 127.0.0.1 is in mynetworks, the
# outsider's address is not.
INSIDE=127.0.0.1
OUTSIDE=127.0.0.2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
spool=$tmp/spool
log=$tmp/serve.log
# smtpd_timeout is long: anything cut off sooner was cut by a deadline.
cat > "$tmp/d.conf" <<EOC
spool_dir = $spool
myhostname = relay.test
listen = 127.0.0.1:$port
mynetworks = $INSIDE/32
dns_forwarders = 127.0.0.1@9
smtpd_timeout = 4s
smtpd_min_data_rate = 500
smtpd_reject_timeout = 1s
smtpd_reject_connection_limit = 3
max_connections = 4
max_connections_per_client = 20
message_size_limit = 100k
log_level = debug
EOC
"$bin" -c "$tmp/d.conf" serve > "$log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -q "event=started" "$log" 2>/dev/null && break; sleep 0.1; done
grep -q "event=started" "$log" && ok "serve starts" || { notok "serve starts" "$(cat "$log")"; echo "1..$n"; exit 1; }

R=rcpt@dest.test
# (a) RFC 2920: replies keep flowing whatever the size of the burst.
py_checks < <(python3 "$H" burst 127.0.0.1 "$port" 3000 "$R")
py_checks < <(python3 "$H" burst 127.0.0.1 "$port" 10000 "$R")
# (b) outsiders beyond max_connections cannot lock out mynetworks clients
# and are disconnected by smtpd_reject_timeout, not the idle timer.
py_checks < <(python3 "$H" lockout 127.0.0.1 "$port" "$OUTSIDE" 6 "$INSIDE" "$R")
grep -q "event=smtpd-timeout client=$OUTSIDE why=reject limit=deadline" "$log" \
  && ok "outsiders: disconnect logged as a deadline" || notok "outsiders: deadline logged" "$(grep "$OUTSIDE" "$log" | tail -5)"
grep -q "event=smtpd-refused client=$OUTSIDE why=smtpd_reject_connection_limit" "$log" \
  && ok "outsiders over their own limit are refused" || notok "outsider limit" "$(grep "$OUTSIDE" "$log" | tail -5)"
# (b) slow drip: bytes faster than the idle timer do not keep a session.
py_checks < <(python3 "$H" drip 127.0.0.1 "$port" "$R")
grep -q "event=smtpd-timeout client=$INSIDE why=data limit=deadline" "$log" \
  && ok "content drip: cut by the content deadline" || notok "content drip logged" "$(grep smtpd-timeout "$log" | tail -5)"
# (c) NUL octets.
py_checks < <(python3 "$H" nul 127.0.0.1 "$port" "$R")
# (d) each refusal is logged with the client and the reason.
py_checks < <(python3 "$H" refusals 127.0.0.1 "$port" "$R")
py_checks < <(python3 "$H" oversize 127.0.0.1 "$port" "$R" 102400)
for why in "bare CR/LF in content" "line too long" "message too large" "NUL in content"; do
  grep -qE "event=refused client=$INSIDE .*reply=5[0-9][0-9] dsn=5\.[0-9.]+ why=\"$why\"" "$log" \
    && ok "refusal logged: $why" || notok "refusal logged: $why" "$(grep 'event=refused' "$log" | tail -5)"
done
# (f) 8-bit content without BODY=: the envelope says so; BODY stays as
# declared.
: > "$tmp/queued"
py_checks < <(python3 "$H" eightbit 127.0.0.1 "$port" "$R" eightbit@hostile.test)
qid=$(head -1 "$tmp/queued")
envf=$spool/queue/$qid.env
if [ -n "$qid" ] && grep -qx "content_8bit yes" "$envf" 2>/dev/null && grep -qx "body 7bit" "$envf"; then
  ok "8-bit content: envelope has content_8bit yes, body 7bit"
else
  notok "8-bit content: envelope flag" "id: $qid" "$(head -20 "$envf" 2>&1)"
fi
other=$(grep -l "^sender inside@hostile.test$" "$spool"/queue/*.env | head -1)
[ -n "$other" ] && grep -qx "content_8bit no" "$other" && ok "7-bit content: content_8bit no" \
  || notok "7-bit content: content_8bit no" "$(head -20 "$other" 2>&1)"

kill -0 "$serve_pid" 2>/dev/null && ok "serve survived every client" || notok "serve survived" "$(tail -20 "$log")"
kill -TERM "$serve_pid"
wait "$serve_pid"; sst=$?
serve_pid=
[ "$sst" = 0 ] && ok "serve exits 0 on SIGTERM" || notok "serve exit" "status $sst" "$(tail -5 "$log")"
echo "1..$n"
exit $fail
