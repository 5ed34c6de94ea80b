#!/usr/bin/env bash
# The routing monitor in the test world: the first delivery to a domain is
# remembered without a line; after the world's DNS changes, the next
# delivery logs `event=routing-change` with the right kind, and a key
# rollover done in the wrong order gets its hint in the log, `queue show`
# and `report`.
#
#   dane-ee.drworld  MX mx.dane-ee -> mx2.twomx (both mxca)  mx-host-added/-removed
#   dane-ta.drworld  mx.dane-ta A gains 127.NET.10.9 (nothing
#                    listens: refused, then mxca)             address-new
#   expired.drworld  its DS removed from drworld (`world.sh
#                    unds`): MX and A insecure, opportunistic dnssec-downgrade (high)
#   nomx.drworld     A -> mxself: the host presents a new key
#                    while its TLSA still names the mxca key  key-new-unmatched,
#                                                             hint=new-key-before-tlsa
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_routemon.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_routemon.sh DANERELAY}
HARNESS_NAME=routemon
# Own loopback network and relay port: never clashes with the other tests.
export WORLD_NET=${WORLD_NET:-27}
RELAY_PORT=${ROUTEMON_RELAY_PORT:-10047}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

cat > "$CONF" <<EOF
# Written by tests/integration/test_routemon.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.routemon.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
connection_cache_time = 0s
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
EOF

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }

# send MSGID RCPT: one message straight to the relay over SMTP.
send() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: routemon {mid}\r\n"
       f"Message-ID: <{mid}@routemon.{tld}>\r\n\r\nrouting monitor test\r\n")
s.sendmail(sender, [rcpt], msg)
s.quit()
PY
}

# change KIND DOMAIN PATTERN: a routing-change line of that kind for DOMAIN
# whose rest matches the extended regex PATTERN.
change() {
  grep -E "level=warning event=routing-change .*domain=$2 kind=$1 " "$RLOG" 2>/dev/null |
    grep -qE -- "$3"
}

D_EE=$WORLD_D_DANE_EE D_TA=$WORLD_D_DANE_TA D_EXP=$WORLD_D_EXPIRED D_NOMX=$WORLD_D_NOMX
NET=$WORLD_NET

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"
check "the routing monitor loaded its (empty) table" \
  wait_for 10 grep -qE "event=routing-monitor-load status=ok domains=0" "$RLOG"

# --- first sight: delivered, remembered, nothing logged ---------------------
send a1 "u@$D_EE"; send b1 "u@$D_TA"; send c1 "u@$D_EXP"; send d1 "u@$D_NOMX"
check "first: $D_EE delivered (DANE-EE)" wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" a1
check "first: $D_TA delivered (DANE-TA)" wait_for 30 maildir_has "$WORLD_D_DANE_TA_MAILDIR" b1
check "first: $D_EXP delivered (DANE-EE, expiry ignored)" wait_for 30 maildir_has "$WORLD_D_EXPIRED_MAILDIR" c1
check "first: $D_NOMX delivered (DANE-EE)" wait_for 30 maildir_has "$WORLD_D_NOMX_MAILDIR" d1
check "first sight of four domains logs no routing-change" \
  bash -c "! grep -q 'event=routing-change' '$RLOG'"

# --- the world changes ----------------------------------------------------
W=$T/world
check "world: $D_EE MX now mx2.twomx" \
  "$WORLD" rr "$W" "$D_EE" MX 300 "10 mx2.twomx.$WORLD_TLD."
check "world: mx.$D_TA gains the address 127.$NET.10.9" \
  "$WORLD" rr "$W" "mx.$D_TA" A 300 "127.$NET.10.1|127.$NET.10.9"
check "world: the DS of $D_EXP is removed from $WORLD_TLD" "$WORLD" unds "$W" "$D_EXP"
check "world: $D_NOMX now points at mxself (another key, TLSA unchanged)" \
  "$WORLD" rr "$W" "$D_NOMX" A 300 "127.$NET.10.2"
check "dns flush: the relay forgets the old answers" DR dns flush

send a2 "u@$D_EE"; send b2 "u@$D_TA"; send c2 "u@$D_EXP"; send d2 "u@$D_NOMX"

check "MX change: delivered through mx2.twomx" wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" a2
check "MX change: kind=mx-host-added severity=medium host=mx2.twomx, new set named" \
  change mx-host-added "$D_EE" "severity=medium host=mx2\.twomx\.$WORLD_TLD old=\"1 host\" new=\"10 mx2\.twomx\.$WORLD_TLD\""
check "MX change: kind=mx-host-removed severity=low" \
  change mx-host-removed "$D_EE" "severity=low old=\"1 host \(1 removed\)\""

check "address change: delivered" wait_for 30 maildir_has "$WORLD_D_DANE_TA_MAILDIR" b2
check "address change: kind=address-new host=mx.$D_TA new=127.$NET.10.9" \
  change address-new "$D_TA" "severity=medium host=mx\.$D_TA old=\"1 known\" new=127\.$NET\.10\.9"
check "address change: the known address is no change" \
  bash -c "! grep -E 'kind=address-new .*new=127\.$NET\.10\.1( |$)' '$RLOG'"

check "DS removal: delivered (opportunistic TLS now)" wait_for 30 maildir_has "$WORLD_D_EXPIRED_MAILDIR" c2
check "DS removal: kind=dnssec-downgrade severity=high old=\"MX secure\" new=\"MX insecure\"" \
  change dnssec-downgrade "$D_EXP" "severity=high old=\"MX secure\" new=\"MX insecure\""
check "DS removal: the delivery line names the change (routing_change=dnssec-downgrade)" \
  log_has "u@$D_EXP" "status=sent .*routing_change=dnssec-downgrade"

check "wrong-order rollover: deferred with class=tlsa-mismatch and hint=new-key-before-tlsa" \
  wait_for 30 log_has "u@$D_NOMX" "status=deferred class=tlsa-mismatch hint=new-key-before-tlsa"
check "wrong-order rollover: kind=key-new-unmatched severity=high host=$D_NOMX" \
  change key-new-unmatched "$D_NOMX" "severity=high host=$D_NOMX old=\"first=[0-9a-f]{16}\.\. last=[0-9a-f]{16}\.\.\" new=sha256:[0-9a-f]{64}"
# The same changes, counted (danerelay_routing_changes_total, `danerelay metrics`).
metric_is() { grep -qx "danerelay_routing_changes_total{kind=\"$1\"} $2" <<< "$(DR metrics)"; }
check "metrics: routing changes of kind mx-host-added counted once" metric_is mx-host-added 1
check "metrics: routing changes of kind dnssec-downgrade counted once" metric_is dnssec-downgrade 1
check "wrong-order rollover: nothing reached mxself" \
  bash -c "! grep -rlsF 'Message-ID: <d2@routemon.$WORLD_TLD>' '$WORLD_DIR/maildir/mxself'"

ID=$(DR queue list --json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if any(r["address"].endswith("@'"$D_NOMX"'") for r in m["recipients"]):
        print(m["queue_id"])')
SHOW=$(DR queue show "$ID" 2>&1)
check "queue show: the attempt names the hint and its explanation" \
  grep -qE "hint: +new-key-before-tlsa: the server presents a new key that no TLSA record names" <<< "$SHOW"
check "queue show: the attempt lists the routing changes" \
  grep -qE "routing: +.*key-new-unmatched" <<< "$SHOW"
check "queue show --json: hint field" \
  bash -c "'$RELAY_BIN' -c '$CONF' queue show --json '$ID' | grep -q '\"hint\":\"new-key-before-tlsa\"'"

# The final snapshot is written at shutdown; report reads it.
stop_relay TERM
check "serve stopped cleanly (exit 0)" test "${RELAY_STATUS:-1}" = 0
check "the snapshot was written" test -s "$SPOOL/routing-monitor"
REP=$(DR report 2>&1)
check "report: a section of recent routing changes" \
  grep -q "Recent routing changes (newest first):" <<< "$REP"
check "report: it lists the downgrade of $D_EXP" \
  grep -qE "dnssec-downgrade +high +$D_EXP" <<< "$REP"
check "report: the rollover hint for $D_NOMX" \
  grep -qF "$D_NOMX (new-key-before-tlsa): the server presents a new key" <<< "$REP"
# report --json: the same changes, field for field, as the text lines.
REPJ=$(DR report --json 2>/dev/null)
json_changes_match_text() {
  REP_TEXT=$REP REP_JSON=$REPJ python3 - "$D_EXP" "$D_NOMX" <<'PY'
import calendar, json, os, re, sys, time
d_exp, d_nomx = sys.argv[1:3]
got = json.loads(os.environ["REP_JSON"])["recent_routing_changes"]
text = os.environ["REP_TEXT"].split("Recent routing changes (newest first):\n", 1)[1]
line = re.compile(r'  (\S+) +(\S+) +(\S+) +(\S+)(?: host=(\S+))? old="(.*)" new="(.*)"$')
want = []
for l in text.splitlines():
    m = line.match(l)
    if not m:
        break
    when, kind, sev, dom, host, old, new = m.groups()
    t = calendar.timegm(time.strptime(when, "%Y-%m-%dT%H:%M:%SZ"))
    want.append({"time": t, "kind": kind, "severity": sev, "domain": dom,
                 "host": host or "", "old": old, "new": new})
assert want and got == want, (got, want)
assert any(c["kind"] == "dnssec-downgrade" and c["domain"] == d_exp for c in got)
assert any(c["kind"] == "key-new-unmatched" and c["host"] == d_nomx
           and c["new"].startswith("sha256:") for c in got)
PY
}
check "report --json: recent_routing_changes has the text's changes, field for field" \
  json_changes_match_text

# Restarted: the history is read back, so the same answers are quiet.
mv "$RLOG" "$RLOG.1"
if start_relay; then
  check "restart: the table is loaded (4 domains)" \
    wait_for 10 grep -qE "event=routing-monitor-load status=ok domains=4" "$RLOG"
  send a3 "u@$D_EE"
  check "restart: delivered again" wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" a3
  check "restart: no routing-change for an unchanged domain" \
    bash -c "! grep -q 'event=routing-change' '$RLOG'"
else
  not_ok "restart: serve starts again"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
