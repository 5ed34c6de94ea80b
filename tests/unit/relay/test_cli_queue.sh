#!/usr/bin/env bash
# CLI tests for `danerelay queue ...` and `danerelay report` (TAP output).
# Usage: test_cli_queue.sh PATH/TO/danerelay
#
# Part 1 builds a spool by hand in the documented envelope format
# (relay/QUEUE.md) and runs every command with no daemon (changes take the
# spool lock directly). Part 2 starts a real `danerelay serve` on that spool
# (loopback listener on a free port, DNS forwarded to a closed loopback
# port so nothing leaves the host) and changes messages through its control
# socket while it runs; then stops it with SIGTERM.
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d /tmp/danerelay-cliq-XXXXXX)
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
# serve started as root hands the spool to run_user and becomes that user,
# which must exist (as a package would create it) and be able to reach the
# spool inside our temporary directory.
"$(dirname "$0")/../../../scripts/ensure-run-user.sh" >/dev/null || exit 1
chmod 755 "$tmp"
export TZ=UTC
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
# run CMD...: stdout in $out, stderr in $err, status in $st.
run() { out=$("$@" 2>"$tmp/err"); st=$?; err=$(cat "$tmp/err"); }
# expect NAME STATUS STDOUT_SUBSTRING STDERR_SUBSTRING CMD...
expect() {
  local name=$1 want=$2 so=$3 se=$4; shift 4
  run "$@"
  if [ "$st" != "$want" ]; then notok "$name" "exit $st, want $want" "stdout: $out" "stderr: $err"; return; fi
  if [ -n "$so" ] && [[ "$out" != *"$so"* ]]; then notok "$name" "stdout: $out" "want: $so"; return; fi
  if [ -n "$se" ] && [[ "$err" != *"$se"* ]]; then notok "$name" "stderr: $err" "want: $se"; return; fi
  ok "$name"
}
# check NAME PYTHON_EXPR_ON_stdin: JSON checks with python3's json module.
check_json() {
  local name=$1 prog=$2
  if printf '%s\n' "$out" | python3 -c "import json,sys
docs=[json.loads(l) for l in sys.stdin if l.strip()]
$prog" 2>"$tmp/pyerr"; then ok "$name"; else notok "$name" "$(cat "$tmp/pyerr")" "json: $out"; fi
}

spool=$tmp/spool
mkdir -p "$spool/queue" "$spool/tmp"
chmod 700 "$spool"
now=$(date +%s)
us() { echo "$(( $1 * 1000000 ))"; }

# msg ID AGE_SECONDS HOLD SENDER  (recipient lines on stdin)
msg() {
  local id=$1 age=$2 hold=$3 sender=$4
  {
    echo "danerelay-queue 1"
    echo "id $id"
    echo "arrival $(us $((now - age)))"
    echo "size 1000"
    echo "sender $sender"
    echo "client_addr 127.0.0.1"
    echo "client_name localhost"
    echo "helo mta.local"
    echo "ret hdrs"
    echo "body 7bit"
    echo "smtputf8 no"
    echo "hold $hold"
    echo "delay_warned no"
    cat
    echo "end"
  } > "$spool/queue/$id.env"
  printf 'From: Alice <alice@example.org>\r\nTo: bob@dane.example\r\nSubject: quarterly\r\n report\r\nMessage-ID: <%s@example.org>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n' \
    "$id" > "$spool/queue/$id.msg"
}
later=$(us $((now + 3600)))
M1=00064A00000001
M2=00064A00000002
M3=00064A00000003
msg $M1 7200 no alice@example.org <<EOF
rcpt bob@dane.example
r.orcpt rfc822;bob@dane.example
r.notify failure,delay
r.status deferred
r.dsn 4.7.5
r.class tlsa-mismatch
r.reason no%20TLSA%20record%20matched%20the%20server%20certificate
r.attempts 3
r.next_attempt $later
attempt $(us $((now - 300)))
a.mx_host mx.dane.example
a.addr 192.0.2.25
a.dnssec_mx secure
a.dnssec_addr secure
a.dnssec_tlsa secure
a.tlsa 3%201%201%20aabbcc
a.tls dane-ee
a.peer_spki 0123456789abcdef
a.peer_names mx.dane.example
a.matched mismatch
a.reply 454%204.7.5%20TLS%20said%20no
a.dsn 4.7.5
a.status deferred
a.failure_class tlsa-mismatch
a.reason no%20TLSA%20record%20matched%20the%20server%20certificate
rcpt carol@ok.example
r.status sent
r.dsn 2.0.0
EOF
msg $M2 600 no "" <<EOF
rcpt dave@bogus.example
r.status deferred
r.dsn 4.7.5
r.class dnssec-bogus
r.reason DNSSEC%20validation%20failed%20for%20bogus.example%20MX
r.attempts 1
r.next_attempt $later
EOF
msg $M3 60 yes x@example.org <<EOF
rcpt erin@dane.example
r.status deferred
r.dsn 4.7.5
r.class tlsa-mismatch
r.reason no%20TLSA%20record%20matched
r.attempts 1
r.next_attempt $later
EOF

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/d.conf" <<EOF
spool_dir = $spool
myhostname = relay.test
listen = 127.0.0.1:$port
# Nothing listens on the discard port: every lookup fails on loopback, the
# DNSSEC self-test fails after its timeout and DANE deliveries defer.
dns_forwarders = 127.0.0.1@9
report_recipient = postmaster@ops.test
EOF
D=("$bin" -c "$tmp/d.conf")

# ---------------------------------------------------------------- part 1
expect "list: text" 0 "-Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------" "" "${D[@]}" queue list
first=$(printf '%s\n' "$out" | grep -n "^$M1 " | cut -d: -f1)
last=$(printf '%s\n' "$out" | grep -n "^$M3!" | cut -d: -f1)
[ -n "$first" ] && [ -n "$last" ] && [ "$first" -lt "$last" ] && ok "list: newest last, held flagged with !" \
  || notok "list: newest last, held flagged with !" "$out"
[[ "$out" == *"$M2      1000 "*"MAILER-DAEMON"* ]] && ok "list: null sender as MAILER-DAEMON" || notok "list: null sender" "$out"
[[ "$out" == *"(deferred 4.7.5 tlsa-mismatch, 3 attempts, next in 59m: no TLSA record matched the server certificate)"* ]] \
  && ok "list: status and reason in parentheses" || notok "list: status and reason" "$out"
[ "$(printf '%s\n' "$out" | tail -1)" = "-- 3 Kbytes in 3 Requests." ] && ok "list: footer" || notok "list: footer" "$out"

expect "list --json" 0 "" "" "${D[@]}" queue list --json
check_json "list --json: fields of every message" "
assert len(docs) == 3, len(docs)
assert [d['queue_id'] for d in docs] == ['$M1', '$M2', '$M3']
assert [d['queue_name'] for d in docs] == ['deferred', 'deferred', 'hold']
assert docs[0]['arrival_time'] == $now - 7200 and docs[0]['message_size'] == 1000
assert docs[0]['sender'] == 'alice@example.org' and docs[1]['sender'] == ''
r = docs[0]['recipients'][0]
assert r['address'] == 'bob@dane.example' and r['status'] == 'deferred'
assert r['dsn'] == '4.7.5' and r['failure_class'] == 'tlsa-mismatch'
assert r['reason'] == 'no TLSA record matched the server certificate'
assert r['attempts'] == 3 and r['next_attempt'] == $now + 3600
assert docs[0]['recipients'][1]['status'] == 'sent'
assert set(r) >= {'address','status','dsn','reason','failure_class','attempts','next_attempt'}
"
expect "list --domain" 0 "" "" "${D[@]}" queue list --json --domain DANE.example
check_json "list --domain keeps matching messages and recipients" "
assert [d['queue_id'] for d in docs] == ['$M1', '$M3'], docs
assert [r['address'] for r in docs[0]['recipients']] == ['bob@dane.example']
"
expect "list --class" 0 "" "" "${D[@]}" queue list --json --class dnssec-bogus
check_json "list --class" "assert [d['queue_id'] for d in docs] == ['$M2']"
expect "list --older-than" 0 "" "" "${D[@]}" queue list --json --older-than 30m
check_json "list --older-than 30m" "assert [d['queue_id'] for d in docs] == ['$M1']"
expect "list --older-than 1h text" 0 "-- 1 Kbytes in 1 Request." "" "${D[@]}" queue list --older-than 1h
expect "list: nothing matches" 0 "Mail queue is empty" "" "${D[@]}" queue list --class connect
expect "list: bad duration" 2 "" "bad duration \"soon\"" "${D[@]}" queue list --older-than soon
# The configuration's duration syntax, units w and ms included.
expect "list --older-than 1w (the configuration's w unit)" 0 "Mail queue is empty" "" "${D[@]}" queue list --older-than 1w
expect "list --older-than 250ms" 0 "-- 3 Kbytes in 3 Requests." "" "${D[@]}" queue list --older-than 250ms
expect "list: stray argument" 2 "" "takes no arguments" "${D[@]}" queue list $M1
expect "queue: unknown action" 2 "" 'unknown action "purge"' "${D[@]}" queue purge

expect "show: text" 0 "Queue ID:      $M1" "" "${D[@]}" queue show $M1
for want in "Queue:         deferred" "Sender:        <alice@example.org>" \
    "  Subject:     quarterly report" "  Message-ID:  <$M1@example.org>" \
    "Recipient <bob@dane.example>: deferred 4.7.5 tlsa-mismatch" \
    "      mx:           mx.dane.example [192.0.2.25]" \
    "      dnssec:       mx=secure addr=secure tlsa=secure" \
    "      tlsa seen:    3 1 1 aabbcc" "      peer spki:    0123456789abcdef" \
    "      match:        mismatch" "      reply:        454 4.7.5 TLS said no" \
    "Recipient <carol@ok.example>: sent 2.0.0"; do
  [[ "$out" == *"$want"* ]] && ok "show: $want" || notok "show: $want" "$out"
done
expect "show --json" 0 "" "" "${D[@]}" queue show --json $M1
check_json "show --json: envelope, headers, attempts" "
d = docs[0]
assert d['queue_id'] == '$M1' and d['client_addr'] == '127.0.0.1'
assert d['headers']['subject'] == 'quarterly report', d['headers']
a = d['recipients'][0]['attempt_records'][0]
assert a['mx_host'] == 'mx.dane.example' and a['addr'] == '192.0.2.25'
assert a['dnssec_tlsa'] == 'secure' and a['tlsa'] == '3 1 1 aabbcc'
assert a['peer_spki'] == '0123456789abcdef' and a['matched'] == 'mismatch'
assert a['reply'] == '454 4.7.5 TLS said no' and a['time'] == $now - 300
"
expect "show: unknown id names it" 1 "" "no message 00064A0000FFFF in $spool/queue" "${D[@]}" queue show 00064A0000FFFF
expect "show: not an id" 2 "" 'not a queue id: "nope"' "${D[@]}" queue show nope
expect "show: no id" 2 "" "needs exactly one queue id" "${D[@]}" queue show

expect "report: text" 0 "3 deferred recipients in 3 messages to 2 destinations" "" "${D[@]}" report
[[ "$out" == *"dane.example"*"  tlsa-mismatch"*"bogus.example"*"  dnssec-bogus"* ]] \
  && ok "report: destination x class rows, biggest first" || notok "report: rows" "$out"
[[ "$out" == *"dane.example: 2 deferred recipients in 2 messages (1 held)"* ]] && ok "report: per destination" || notok "report: per destination" "$out"
[[ "$out" == *"tlsa-mismatch: the server's key does not match its TLSA records"* ]] && ok "report: hint" || notok "report: hint" "$out"
[[ "$out" == *"peer spki:  0123456789abcdef"* ]] && ok "report: DANE details" || notok "report: DANE details" "$out"
expect "report --json" 0 "" "" "${D[@]}" report --json
check_json "report --json: buckets and destinations" "
d = docs[0]
assert d['recipients'] == 3 and d['messages'] == 3
assert d['counts']['160m'] == 1 and d['counts']['20m'] == 1 and d['counts']['5m'] == 1, d['counts']
dd = {x['domain']: x for x in d['destinations']}
assert dd['dane.example']['recipients'] == 2 and dd['dane.example']['held'] == 1
assert dd['dane.example']['classes'][0]['failure_class'] == 'tlsa-mismatch'
assert dd['dane.example']['latest']['peer_spki'] == '0123456789abcdef'
assert dd['bogus.example']['classes'][0]['hint'].startswith('DNSSEC validation')
"
expect "report --mail without serve" 1 "" "--mail needs a running serve" "${D[@]}" report --mail

expect "hold (no daemon)" 0 "$M1: held" "" "${D[@]}" queue hold $M1
[[ "$out" == *"hold: 1 ok, 0 failed (spool locked directly)"* ]] && ok "hold: says spool locked directly" || notok "hold mode" "$out"
grep -qx "hold yes" "$spool/queue/$M1.env" && ok "hold written to the envelope" || notok "hold written" "$(cat "$spool/queue/$M1.env")"
expect "list shows the hold" 0 "$M1!" "" "${D[@]}" queue list
expect "hold: unknown id fails and names it" 1 "$M1: already held" "00064A0000FFFF: no such message in the queue" \
  "${D[@]}" queue hold $M1 00064A0000FFFF
expect "release --all" 0 "release: 2 ok, 0 failed (spool locked directly)" "" "${D[@]}" queue release --all
grep -qx "hold no" "$spool/queue/$M3.env" && ok "release written" || notok "release written" "$(cat "$spool/queue/$M3.env")"
expect "retry" 0 "$M2: scheduled for delivery now" "" "${D[@]}" queue retry $M2
grep -qx "r.next_attempt 0" "$spool/queue/$M2.env" && ok "retry: next attempt now" || notok "retry written" "$(cat "$spool/queue/$M2.env")"
expect "delete" 0 "$M2: deleted" "" "${D[@]}" queue delete $M2
[ ! -e "$spool/queue/$M2.env" ] && [ ! -e "$spool/queue/$M2.msg" ] && ok "delete removed both files" || notok "delete files" "$(ls "$spool/queue")"
expect "hold: no id" 2 "" "needs queue ids or --all" "${D[@]}" queue hold
expect "hold: ids and --all" 2 "" "not both" "${D[@]}" queue hold --all $M1
expect "hold: bad id" 2 "" 'not a queue id: "123"' "${D[@]}" queue hold 123
printf 'spool_dir = %s/none\n' "$tmp" > "$tmp/none.conf"
# A queue that was not read is never "empty": one line naming the path and
# the reason, exit 1, nothing on stdout.
# expect_unread NAME STDERR CMD...
expect_unread() {
  local name=$1 se=$2; shift 2
  run "$@"
  if [ "$st" = 1 ] && [ -z "$out" ] && [[ "$err" == *"$se"* ]] &&
      [ "$(printf '%s\n' "$err" | wc -l)" = 1 ]; then ok "$name"
  else notok "$name" "exit $st, want 1" "stdout: $out" "stderr: $err" "want: $se"; fi
}
for c in "queue list" "queue list --json" "report" "report --json" "queue show $M1"; do
  read -ra words <<< "$c"
  expect_unread "$c: spool never used" "cannot read spool directory $tmp/none: No such file or directory" \
    "$bin" -c "$tmp/none.conf" "${words[@]}"
done
expect "hold: spool never used" 1 "" "no queue in $tmp/none" "$bin" -c "$tmp/none.conf" queue hold --all

# A spool the user may not read (serve makes it 0700): tested as nobody,
# since root reads it anyway.
locked=$tmp/locked
mkdir -p "$locked/queue" "$locked/tmp"
cp "$spool/queue/$M1.env" "$spool/queue/$M1.msg" "$locked/queue/"
chmod 700 "$locked"
printf 'spool_dir = %s\n' "$locked" > "$tmp/locked.conf"
chmod 644 "$tmp/locked.conf"
if [ "$(id -u)" = 0 ]; then
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
  as_user=()
fi
if "${as_user[@]}" test -r "$bin" && "${as_user[@]}" test -r "$tmp/locked.conf" && ! "${as_user[@]}" test -r "$locked/queue"; then
  for c in "queue list" "queue list --json" "report" "report --json" "queue show $M1"; do
    read -ra words <<< "$c"
    expect_unread "$c: spool without read permission" \
      "cannot read queue directory $locked/queue: Permission denied" \
      "${as_user[@]}" "$bin" -c "$tmp/locked.conf" "${words[@]}"
  done
else
  n=$((n + 1)); echo "ok $n - spool without read permission # SKIP cannot run as a user without access"
fi

# Envelopes that do not parse and files in corrupt/ are counted and shown.
damaged=$tmp/damaged
mkdir -p "$damaged/queue" "$damaged/tmp" "$damaged/corrupt"
cp "$spool/queue/$M1.env" "$spool/queue/$M1.msg" "$damaged/queue/"
printf 'danerelay-queue 1\nid 00064A000000DD\nsender' > "$damaged/queue/00064A000000DD.env"
: > "$damaged/queue/00064A000000DD.msg"
: > "$damaged/corrupt/00064A000000CC.env"
: > "$damaged/corrupt/00064A000000CC.msg"
printf 'spool_dir = %s\n' "$damaged" > "$tmp/damaged.conf"
DD=("$bin" -c "$tmp/damaged.conf")
expect "damaged: list shows the good message" 0 "$M1" "" "${DD[@]}" queue list
[ "$(printf '%s\n' "$out" | tail -2)" = "$(printf -- '-- 1 Kbytes in 1 Request.\n-- 1 unparsable envelope in queue/, 2 files in corrupt/.')" ] \
  && ok "damaged: list footer counts the unparsable envelope and corrupt/" || notok "damaged: list footer" "$out"
expect "damaged: list --json warns on stderr" 0 "\"queue_id\":\"$M1\"" \
  "warning: $damaged: 1 unparsable envelope in queue/, 2 files in corrupt/ not shown" "${DD[@]}" queue list --json
expect "damaged: report says what it did not count" 0 \
  "Not counted below: 1 envelope in queue/ that does not parse, 2 files in corrupt/" "" "${DD[@]}" report
expect "damaged: report --json" 0 "" "" "${DD[@]}" report --json
check_json "damaged: report --json counts them" "
d = docs[0]
assert d['unparsable_envelopes'] == 1 and d['corrupt_files'] == 2, d
assert d['recipients'] == 1 and d['messages'] == 1, d
"
rm "$damaged/queue/$M1.env" "$damaged/queue/$M1.msg"
expect "damaged: a queue of unparsable envelopes is not empty" 0 \
  "-- 1 unparsable envelope in queue/, 2 files in corrupt/." "" "${DD[@]}" queue list
[[ "$out" != *"Mail queue is empty"* ]] && ok "damaged: never \"Mail queue is empty\"" || notok "damaged: empty" "$out"

# ---------------------------------------------------------------- part 2
"$bin" -c "$tmp/d.conf" serve > "$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do [ -S "$spool/control" ] && break; sleep 0.1; done
[ -S "$spool/control" ] && ok "serve creates the control socket" || notok "control socket" "$(cat "$tmp/serve.log")"
[ "$(stat -c %a "$spool/control")" = 600 ] && ok "control socket mode 0600" || notok "socket mode" "$(stat -c %a "$spool/control")"

expect "hold via daemon" 0 "$M1: held" "" "${D[@]}" queue hold $M1
[[ "$out" == *"(via daemon pid=$serve_pid)"* ]] && ok "hold: says via daemon" || notok "hold via daemon mode" "$out"
grep -qx "hold yes" "$spool/queue/$M1.env" && ok "daemon wrote the hold" || notok "daemon hold" "$(cat "$spool/queue/$M1.env")"
expect "list while serve runs" 0 "$M1!" "" "${D[@]}" queue list
expect "unknown id via daemon" 1 "hold: 0 ok, 1 failed (via daemon" "00064A0000FFFF: no such message in the queue" \
  "${D[@]}" queue hold 00064A0000FFFF
expect "hold --all via daemon" 0 "$M3: held" "" "${D[@]}" queue hold --all
expect "release --all via daemon" 0 "release: 2 ok, 0 failed (via daemon" "" "${D[@]}" queue release --all

# retry = attempt now: the running scheduler tries M3 at once (after its
# DNSSEC self-test gave a verdict), without a restart.
expect "retry via daemon" 0 "$M3: scheduled for delivery now" "" "${D[@]}" queue retry $M3
tried=no
for _ in $(seq 60); do
  run "${D[@]}" queue list --json
  if printf '%s\n' "$out" | python3 -c "import json,sys
d=[json.loads(l) for l in sys.stdin if l.strip()]
m=[x for x in d if x['queue_id']=='$M3'][0]['recipients'][0]
sys.exit(0 if m['attempts'] == 2 else 1)" 2>/dev/null; then tried=yes; break; fi
  sleep 0.5
done
[ $tried = yes ] && ok "retry: the daemon attempted the message" || notok "retry attempted" "$out" "$(tail -5 "$tmp/serve.log")"
check_json "retry: outcome recorded with its class" "
m = [x for x in docs if x['queue_id'] == '$M3'][0]['recipients'][0]
assert m['status'] == 'deferred' and m['failure_class'] == 'dnssec-selftest', m
"

expect "delete via daemon" 0 "$M1: deleted" "" "${D[@]}" queue delete $M1
[ ! -e "$spool/queue/$M1.env" ] && ok "daemon deleted the files" || notok "daemon delete" "$(ls "$spool/queue")"

expect "report --mail via daemon" 0 "report on 1 deferred recipient queued for postmaster@ops.test" "" "${D[@]}" report --mail
rid=
for _ in $(seq 50); do
  rid=$("${D[@]}" queue list --json | python3 -c "import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if d['sender'] == '' and d['recipients'][0]['address'] == 'postmaster@ops.test':
        print(d['queue_id'])" 2>/dev/null)
  [ -n "$rid" ] && break
  sleep 0.1
done
[ -n "$rid" ] && ok "report mail queued with the null sender" || notok "report mail queued" "$("${D[@]}" queue list)"
if [ -n "$rid" ]; then
  expect "report mail: headers" 0 "  Subject:     danerelay: 1 deferred recipient on relay.test" "" "${D[@]}" queue show "$rid"
  [[ "$out" == *"  From:        Mail Delivery System <MAILER-DAEMON@relay.test>"* ]] && ok "report mail: From MAILER-DAEMON" \
    || notok "report mail: From" "$out"
  grep -q "erin@dane.example" "$spool/queue/$rid.msg" && grep -q "dnssec-selftest: this relay's own DNSSEC" "$spool/queue/$rid.msg" \
    && ok "report mail: body is the report" || notok "report mail body" "$(cat "$spool/queue/$rid.msg")"
  if grep -q $'\r$' "$spool/queue/$rid.msg" && ! grep -qv $'\r$' "$spool/queue/$rid.msg"; then ok "report mail: CRLF lines"
  else notok "report mail: CRLF lines"; fi
fi

kill -TERM "$serve_pid"
wait "$serve_pid"; sst=$?
serve_pid=
[ "$sst" = 0 ] && ok "serve exits 0 on SIGTERM" || notok "serve exit" "status $sst" "$(tail -5 "$tmp/serve.log")"
[ ! -e "$spool/control" ] && ok "control socket removed at stop" || notok "socket removed"
expect "after stop: direct mode again" 0 "(spool locked directly)" "" "${D[@]}" queue hold --all
# Root working directly on a spool serve handed to run_user acts as its
# owner, so the daemon can still read what the CLI wrote.
owner=$(stat -c %U "$spool")
if [ "$owner" != "$(id -un)" ]; then
  bad=$(find "$spool/queue" ! -user "$owner" | head -3)
  [ -z "$bad" ] && ok "direct mode as root writes files owned by $owner" || notok "file owners" "$bad"
fi
grep -q "event=control" "$tmp/serve.log" && ok "daemon logged control requests" || notok "control log" "$(cat "$tmp/serve.log")"

echo "1..$n"
exit $fail
