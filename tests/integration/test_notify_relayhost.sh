#!/usr/bin/env bash
# notify_relayhost in the test world: mail danerelay generates itself goes
# to the site MTA (the world's upstream Postfix) instead of through DNS.
#
#   1. A message to nullmx.drworld (MX 0 .) bounces; its DSN is handed to
#      the upstream Postfix over SMTP: the relay logs relay=<upstream>
#      nexthop=[<upstream>]:25 status=sent, the upstream logs from=<> under
#      the queue id it answered, relays it (back through danerelay, as it
#      relays everything) and the DSN lands in the sender's Maildir with
#      the upstream's Received: header.
#   2. With the upstream stopped the DSN stays queued, deferred with
#      class=connect and "connection refused", retried and never dropped;
#      once the upstream is back it is delivered and leaves the queue.
#   3. A DSN queued while notify_relayhost was empty (its own route defers:
#      the sender's domain has a TLSA mismatch) goes to notify_relayhost at
#      its next attempt after a reload that sets it.
#
# TAP on stdout. Needs root; exit 77 otherwise.
# usage: test_notify_relayhost.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_notify_relayhost.sh DANERELAY}
HARNESS_NAME=notify
RELAY_PORT=${NOTIFY_RELAY_PORT:-10026}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

write_conf() {  # EXTRA-LINE...
  {
    echo "# Written by tests/integration/test_notify_relayhost.sh"
    echo "listen = $RELAY_ADDR"
    echo "mynetworks = 127.0.0.0/8"
    echo "spool_dir = $SPOOL"
    echo "myhostname = relay.notify.$WORLD_TLD"
    echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
    echo "dns_trust_anchor_file ="
    echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
    echo "smtp_connect_timeout = 5s"
    echo "retry_min = 1s"
    echo "retry_max = 2s"
    local l
    for l in "$@"; do echo "$l"; done
  } > "$CONF"
}

UP=$WORLD_UPSTREAM_ADDR
NOTIFY_LINE="notify_relayhost = [$UP]:25"
R_UP=${UP//./\\.}

# submit_direct ID FROM RCPT: straight to the relay's listener (phase 2
# runs with the upstream Postfix stopped).
submit_direct() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$2" "$3" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:]
msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: notify %s\r\nMessage-ID: <%s@notify.%s>\r\n\r\nTest %s.\r\n"
       % (sender, rcpt, mid, mid, tld, mid)).encode()
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.sendmail(sender, [rcpt], msg)
PY
}

within() {  # SECS CMD...: poll for at most SECS seconds of wall time
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt "$end" ] || return 1
    sleep 0.2
  done
}

# dsn_qid_after QID: the queue id of the DSN the relay queued when message
# QID bounced (event=dsn names the bounced message; queued-local follows).
dsn_qid_after() {  # QID: the id of the local message queued right after QID's DSN
  awk -v q="$1" '
    $0 ~ ("event=dsn id=" q " ") { seen = 1; next }
    seen && /event=queued-local id=/ { sub(/.*event=queued-local id=/, ""); print $1; exit }
  ' "$RLOG"
}
# in_maildir MAILDIR ID UPQ: the failed DSN for message ID reached MAILDIR,
# carrying the Received: header the upstream Postfix added when it took the
# DSN in under its queue id UPQ.
in_maildir() {
  local f
  f=$(grep -rlsF -- "Message-ID: <$2@notify.$WORLD_TLD>" "$1" 2>/dev/null |
    xargs -r grep -lsE '^Action: failed' | head -1)
  [ -n "$f" ] && [ -n "$3" ] &&
    grep -qE "^[[:space:]]+by upstream\\.$WORLD_TLD \\(Postfix\\) with ESMTP id $3\$" "$f"
}
queued() { [ -e "$SPOOL/queue/$1.env" ]; }
not_queued() { ! queued "$1"; }

write_conf "$NOTIFY_LINE"
if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts with $NOTIFY_LINE"
check "DNSSEC self-test passes" within 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"
check "config prints notify_relayhost" \
  bash -c "'$RELAY_BIN' -c '$CONF' config | grep -qxF 'notify_relayhost = [$UP]:25'"

# --- 1: the DSN goes through the upstream Postfix ----------------------------
printf 'From: <%s>\nTo: <u1@%s>\nSubject: notify n1\nMessage-ID: <n1@notify.%s>\n\nTest n1.\n' \
  "$WORLD_SENDER" "$WORLD_D_NULLMX" "$WORLD_TLD" |
  $WORLD_UPSTREAM_SENDMAIL -i -f "$WORLD_SENDER" -- "u1@$WORLD_D_NULLMX"
check "n1: bounced by the relay (null MX, 5.1.10)" \
  within 30 grep -qE "event=delivery .*to=<u1@$WORLD_D_NULLMX> .*dsn=5\\.1\\.10 status=bounced" "$RLOG"
n1=$(grep -E "event=delivery .*to=<u1@$WORLD_D_NULLMX> " "$RLOG" | head -1 | sed -n 's/.* id=\([0-9A-F]*\) .*/\1/p')
d1=$(dsn_qid_after "$n1")
check "n1: a DSN was queued locally ($d1)" [ -n "$d1" ]
sent_line() {  # QID
  grep -E "event=delivery id=$1 to=<$WORLD_SENDER> relay=$R_UP\\[$R_UP\\]:25 nexthop=\\[$R_UP\\]:25 .*status=sent" "$RLOG"
}
sent() { sent_line "$1" >/dev/null; }
check "n1: the DSN was handed to the upstream Postfix (relay=${UP}[${UP}]:25 nexthop=[${UP}]:25, sent)" \
  within 30 sent "$d1"
upq=$(sent_line "$d1" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' | head -1)
check "n1: the upstream Postfix logged it, null sender, under its queue id ($upq)" \
  within 10 grep -qE "\]: $upq: from=<>," "$WORLD_UPSTREAM_LOG"
check "n1: the DSN reached the sender's Maildir through the upstream Postfix" \
  within 40 in_maildir "$WORLD_SENDER_MAILDIR" n1 "$upq"
check "n1: no MX lookup of the sender's domain was needed for the DSN" \
  bash -c "! grep -E 'event=delivery id=$d1 .*relay=mx\\.' '$RLOG' >/dev/null"

# --- 2: the upstream stopped: the DSN waits, then goes ----------------------
postfix -c "$WORLD_UPSTREAM_CONF" stop >/dev/null 2>&1
check "upstream Postfix stopped" within 10 bash -c "! (exec 3<>/dev/tcp/$UP/25) 2>/dev/null"
check "n2: the relay accepts a message to a null-MX domain" \
  submit_direct n2 "$WORLD_SENDER" "u2@$WORLD_D_NULLMX"
check "n2: bounced by the relay" \
  within 30 grep -qE "event=delivery .*to=<u2@$WORLD_D_NULLMX> .*status=bounced" "$RLOG"
n2=$(grep -E "event=delivery .*to=<u2@$WORLD_D_NULLMX> " "$RLOG" | head -1 | sed -n 's/.* id=\([0-9A-F]*\) .*/\1/p')
d2=$(dsn_qid_after "$n2")
check "n2: a DSN was queued locally ($d2)" [ -n "$d2" ]
deferred_twice() {
  [ "$(grep -cE "event=delivery id=$d2 to=<$WORLD_SENDER> relay=$R_UP\\[$R_UP\\]:25 nexthop=\\[$R_UP\\]:25 .*dsn=4\\.4\\.1 status=deferred class=connect .*connection refused" "$RLOG")" -ge 2 ]
}
check "n2: the DSN is deferred (4.4.1, class=connect, connection refused) and retried" \
  within 30 deferred_twice
check "n2: the DSN is still queued" queued "$d2"
J=$T/show.json
"$RELAY_BIN" -c "$CONF" queue show --json "$d2" > "$J" 2>/dev/null
check "n2: queue show --json: origin local, sender <>, failure_class connect" \
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d["recipients"][0]
sys.exit(0 if d["origin"] == "local" and d["sender"] == "" and
         r["failure_class"] == "connect" and r["status"] == "deferred" else 1)' "$J"
check "n2: queue show (text) names the origin" \
  bash -c "'$RELAY_BIN' -c '$CONF' queue show '$d2' | grep -qE '^Origin: +local '"
postfix -c "$WORLD_UPSTREAM_CONF" start >/dev/null 2>&1
check "upstream Postfix started again" within 20 bash -c "(exec 3<>/dev/tcp/$UP/25) 2>/dev/null"
# So that `world.sh down` stops the new master too (world.sh up's format).
up_pid=$(tr -d ' ' < "$(dirname "$WORLD_UPSTREAM_CONF")/queue/pid/master.pid" 2>/dev/null)
[ -n "$up_pid" ] && echo "upstream $up_pid MAIL_CONFIG=$WORLD_UPSTREAM_CONF" >> "$WORLD_DIR/run/procs"
check "n2: the DSN is handed over once the upstream is back" within 30 sent "$d2"
upq2=$(sent_line "$d2" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' | head -1)
check "n2: the DSN left the relay's queue" within 10 not_queued "$d2"
check "n2: the DSN reached the sender's Maildir" \
  within 40 in_maildir "$WORLD_SENDER_MAILDIR" n2 "$upq2"

# --- 3: routing is decided at each attempt ------------------------------
stop_relay TERM
check "serve stops with exit 0" [ "${RELAY_STATUS:-1}" = 0 ]
write_conf
RLOG=$T/relay-2.log
if start_relay; then ok "serve restarts without notify_relayhost"; else not_ok "serve restarts without notify_relayhost"; fi
check "DNSSEC self-test passes again" within 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"
SENDER3=s3@$WORLD_D_MISMATCH
check "n3: the relay accepts a message from $SENDER3 to a null-MX domain" \
  submit_direct n3 "$SENDER3" "u3@$WORLD_D_NULLMX"
check "n3: bounced by the relay" \
  within 30 grep -qE "event=delivery .*to=<u3@$WORLD_D_NULLMX> .*status=bounced" "$RLOG"
n3=$(grep -E "event=delivery .*to=<u3@$WORLD_D_NULLMX> " "$RLOG" | head -1 | sed -n 's/.* id=\([0-9A-F]*\) .*/\1/p')
d3=$(dsn_qid_after "$n3")
check "n3: without notify_relayhost the DSN takes the DNS route and is deferred (TLSA mismatch)" \
  within 30 grep -qE "event=delivery id=$d3 to=<$SENDER3> relay=mx\\..* status=deferred class=tlsa-mismatch" "$RLOG"
write_conf "$NOTIFY_LINE"
kill -HUP "$RELAY_PID"
check "reload takes notify_relayhost" within 10 grep -q "event=reload .*configuration reloaded" "$RLOG"
check "n3: at its next attempt the queued DSN goes to notify_relayhost" \
  within 30 grep -qE "event=delivery id=$d3 to=<$SENDER3> relay=$R_UP\\[$R_UP\\]:25 nexthop=\\[$R_UP\\]:25 .*status=sent" "$RLOG"
check "n3: the DSN left the relay's queue" within 10 not_queued "$d3"
stop_relay TERM
check "serve stops with exit 0 again" [ "${RELAY_STATUS:-1}" = 0 ]

echo "1..$n"
[ "$failed" -eq 0 ]
