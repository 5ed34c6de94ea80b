#!/usr/bin/env bash
# tls_policy_file in the test world: per-destination levels, the outbound
# connection cache, and how an override of DANE is shown to the operator.
#
#   sharedmx.drworld  `none` (line 2): MX mx.insecure.drworld (mxself), the
#                     same MX host and address as insecure.drworld, whose
#                     level stays the global `dane` (opportunistic TLS there)
#   fault1.drworld    `none` (line 3): MX 127.NET.11.1, nothing listens, so
#                     the message stays deferred for `queue show`
#
# Time-boxed exceptions (until=, reason=):
#   mismatch.drworld  `may until=2020-01-01` (line 4): expired, so DANE is
#                     enforced again and the TLSA mismatch defers (4.7.5);
#                     the expiry is logged once, at warning level
#   dane-ee.drworld   `may until=2099-12-31 reason="..."` (line 5): active;
#                     the delivery line and the warning-level dane-overridden
#                     line carry its reason; report and status list it
#
# A cleartext session made for the `none` destination must never carry the
# next message for the opportunistic one (Postfix folds the TLS level into
# its connection-cache key; so does danerelay). Every delivery decided by a
# policy entry names it (`policy=none policy_entry=FILE:LINE`) in the log,
# in `queue show` (kept in the envelope) and in `probe`.
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_policy_world.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_policy_world.sh DANERELAY}
HARNESS_NAME=policy
# Own loopback network and relay port: never clashes with the other tests.
export WORLD_NET=${WORLD_NET:-14}
RELAY_PORT=${POLICY_RELAY_PORT:-10035}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

POL=$T/tls_policy
D_SH=$WORLD_D_SHARED_MX D_IN=$WORLD_D_INSECURE D_DEAD=fault1.$WORLD_TLD
{
  echo "# Written by tests/integration/test_policy_world.sh"
  echo "$D_SH none"
  echo "$D_DEAD none"
  echo "$WORLD_D_MISMATCH may until=2020-01-01 reason=\"old rollover, ticket 11\""
  echo "$WORLD_D_DANE_EE may until=2099-12-31 reason=\"TLSA rollover broken, ticket 4711\""
} > "$POL"

cat > "$CONF" <<EOF
# Written by tests/integration/test_policy_world.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.policy.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
tls_policy_file = $POL
# Long enough that the session of the first message is still parked when
# the second one is delivered.
connection_cache_time = 60s
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
log_level = debug
EOF

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }

# send MSGID RCPT: one message straight to the relay over SMTP.
send() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: policy {mid}\r\n"
       f"Message-ID: <{mid}@policy.{tld}>\r\n\r\npolicy test\r\n")
s.sendmail(sender, [rcpt], msg)
s.quit()
PY
}

# mx_received_tls MAILDIR MSGID: the MX's Received header says the message
# came over TLS (Postfix smtpd_tls_received_header: "(using TLSv1.3 ...").
mx_received_tls() {
  local f
  f=$(grep -rlsF -- "Message-ID: <$2@$HARNESS_NAME.$WORLD_TLD>" "$1" | head -1)
  [ -n "$f" ] && grep -qE "^[[:space:]]+\(using TLSv" "$f"
}

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts with tls_policy_file $POL"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

# --- the `none` destination first: cleartext, and it says so ---------------
send none1 "u1@$D_SH"
check "none: delivered to the shared MX" \
  wait_for 30 maildir_has "$WORLD_D_SHARED_MX_MAILDIR" none1
check "none: delivery line names the level and the entry (policy=none policy_entry=$POL:2) and tls=none" \
  wait_for 10 log_has "u1@$D_SH" "policy=none policy_entry=$POL:2 .*tls=none .*status=sent"
check "none: the MX received it in cleartext (no TLS in its Received header)" \
  bash -c "f=\$(grep -rlsF 'Message-ID: <none1@policy.$WORLD_TLD>' '$WORLD_D_SHARED_MX_MAILDIR'); [ -n \"\$f\" ] && ! grep -q 'using TLS' \$f"
check "none: a warning line says DANE was overridden by that entry" \
  grep -qE "level=warning event=dane-overridden .*domain=$D_SH .*policy=none policy_entry=$POL:2" "$RLOG"

# --- then the opportunistic destination on the same MX: over TLS ----------
send may1 "u1@$D_IN"
check "same MX, level dane (opportunistic): delivered" \
  wait_for 30 maildir_has "$WORLD_D_INSECURE_MAILDIR" may1
check "same MX: the relay logged tls=may, on a new connection (no conn_use)" \
  wait_for 10 bash -c "grep -E 'event=delivery .*to=<u1@$D_IN>' '$RLOG' | grep -E 'tls=may .*status=sent' | grep -vq conn_use="
check "same MX: the MX's Received header shows TLS (the cleartext session was not reused)" \
  mx_received_tls "$WORLD_D_INSECURE_MAILDIR" may1
# The key still lets like serve like: a second `none` message rides the
# parked cleartext connection of the first.
send none2 "u2@$D_SH"
check "none again: the cleartext connection of the first \`none\` message is reused (conn_use=2)" \
  wait_for 30 log_has "u2@$D_SH" "tls=none .*status=sent .*conn_use=2"
check "same MX: the global level is not a policy entry (no policy_entry on its line)" \
  bash -c "! grep -E 'event=delivery .*to=<u1@$D_IN>' '$RLOG' | grep -q policy_entry="
check "same MX: no dane-overridden line for the opportunistic destination" \
  bash -c "! grep -E 'event=dane-overridden .*domain=$D_IN ' '$RLOG' | grep -q ."

# --- time-boxed exceptions ---------------------------------------------------
D_MM=$WORLD_D_MISMATCH D_EE=$WORLD_D_DANE_EE
send exp1 "u1@$D_MM"
check "expired exception: DANE is enforced again (TLSA mismatch deferred 4.7.5, no policy entry)" \
  wait_for 30 bash -c "grep -E 'event=delivery .*to=<u1@$D_MM>' '$RLOG' | grep -E 'dsn=4.7.5 status=deferred class=tlsa-mismatch' | grep -vq policy_entry="
check "expired exception: logged at warning level with domain, entry and reason" \
  grep -qE "level=warning event=policy-exception-expired domain=$D_MM policy_entry=$POL:4 policy=may until=2020-01-01 reason=\"old rollover, ticket 11\"" "$RLOG"
send exp2 "u2@$D_MM"
check "expired exception: a second message is deferred the same way" \
  wait_for 30 log_has "u2@$D_MM" "dsn=4.7.5 status=deferred class=tlsa-mismatch"
check "expired exception: the expiry is logged once, not per delivery" \
  bash -c "[ \$(grep -c 'event=policy-exception-expired' '$RLOG') = 1 ]"
send act1 "u1@$D_EE"
check "active exception: delivered under it" \
  wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" act1
check "active exception: the delivery line names the entry, its reason and date" \
  wait_for 10 log_has "u1@$D_EE" "policy=may policy_entry=$POL:5 policy_reason=\"TLSA rollover broken, ticket 4711\" policy_until=2099-12-31 .*status=sent"
check "active exception: dane-overridden at warning level with the reason" \
  grep -qE "level=warning event=dane-overridden .*domain=$D_EE policy=may policy_entry=$POL:5 policy_reason=\"TLSA rollover broken, ticket 4711\"" "$RLOG"
DR status --json > "$T/status.json" 2> "$T/status.err"
# shellcheck disable=SC2016  # $e is a jq variable
check "status --json: lists the active exception (not the expired one) with its days left" \
  jq -e --arg d "$D_EE" --arg e "$POL:5" '.policy_exceptions | length == 1 and .[0].domain == $d and .[0].level == "may" and .[0].until == "2099-12-31" and .[0].entry == $e and .[0].days_left > 25000 and .[0].reason == "TLSA rollover broken, ticket 4711"' "$T/status.json"
DR status > "$T/status.txt" 2>&1
check "status: the text names the active exception, its days left and reason" \
  grep -qE "^  $D_EE may until 2099-12-31 \([0-9]+ days left\), $POL:5: TLSA rollover broken, ticket 4711$" "$T/status.txt"
DR report --json > "$T/report.json" 2> "$T/report.err"
# shellcheck disable=SC2016  # $d is a jq variable
check "report --json: lists the active exception with its days left" \
  jq -e --arg d "$D_EE" '.policy_exceptions | length == 1 and .[0].domain == $d and .[0].days_left > 25000' "$T/report.json"
DR report > "$T/report.txt" 2>&1
check "report: the text names the exception and its reason" \
  grep -qE "^  $D_EE may until 2099-12-31 \([0-9]+ days left\), $POL:5: TLSA rollover broken, ticket 4711$" "$T/report.txt"

# --- a deferred `none` message: queue show keeps the entry -----------------
send dead1 "u1@$D_DEAD"
check "none, dead MX: deferred, delivery line names policy=none policy_entry=$POL:3" \
  wait_for 60 log_has "u1@$D_DEAD" "policy=none policy_entry=$POL:3 .*status=deferred"
ID_DEAD=$(grep -E "event=delivery .*to=<u1@$D_DEAD>" "$RLOG" | head -1 | sed -nE 's/.* id=([0-9A-F]{14}) .*/\1/p')
check "none, dead MX: the queue id is in the log" [ -n "$ID_DEAD" ]
envelope_has_policy() {
  grep -qxF "a.policy none" "$SPOOL/queue/$ID_DEAD.env" &&
    grep -qxF "a.policy_entry $POL:3" "$SPOOL/queue/$ID_DEAD.env"
}
check "none, dead MX: the envelope records a.policy and a.policy_entry" \
  wait_for 20 envelope_has_policy
stop_relay TERM
check "relay stops cleanly" [ "${RELAY_STATUS:-1}" = 0 ]
SHOW=$T/show.txt
DR queue show "$ID_DEAD" > "$SHOW" 2>&1
echo "--- queue show $ID_DEAD" >&2; cat "$SHOW" >&2
check "queue show (relay stopped, from the envelope): policy none with the entry $POL:3" \
  grep -qE "^ +policy: +none \(tls_policy_file $POL:3[;)]" "$SHOW"
check "queue show: says DANE was overridden by the policy" \
  grep -qE "^ +policy: .*DANE overridden" "$SHOW"
DR queue show --json "$ID_DEAD" > "$T/show.json" 2>&1
# shellcheck disable=SC2016  # $e is a jq variable
check "queue show --json: policy and policy_entry of the attempt" \
  jq -e --arg e "$POL:3" '[.recipients[].attempt_records[] | select(.policy == "none" and .policy_entry == $e)] | length >= 1' "$T/show.json"

# --- probe shows the override ----------------------------------------------
PROBE=$T/probe.txt
DR probe "$D_SH" > "$PROBE" 2>&1
echo "--- probe $D_SH" >&2; cat "$PROBE" >&2
check "probe: policy=none policy_entry=$POL:2 on the domain line" \
  grep -qE "^domain $D_SH policy=none policy_entry=$POL:2 " "$PROBE"
check "probe: says DANE is overridden by the policy entry" \
  grep -qE "DANE overridden by tls_policy_file $POL:2" "$PROBE"
DR probe --json "$D_SH" > "$T/probe.json" 2> "$T/probe-json.err"
# shellcheck disable=SC2016  # $e is a jq variable
check "probe --json: policy none and policy_entry" \
  jq -e --arg e "$POL:2" '.policy == "none" and .policy_entry == $e and .dane_overridden == true' "$T/probe.json"
DR probe "$D_IN" > "$T/probe-in.txt" 2>&1
check "probe of a destination without an entry: policy=dane, no policy_entry" \
  bash -c "grep -qE '^domain $D_IN policy=dane ' '$T/probe-in.txt' && ! grep -q policy_entry= '$T/probe-in.txt'"

echo "1..$n"
[ "$failed" -eq 0 ]
