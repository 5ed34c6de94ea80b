#!/usr/bin/env bash
# REQUIRETLS (RFC 8689) in the test world.
#
# Inbound: a python3 smtplib client on loopback (a mynetworks client) sees
# no REQUIRETLS before STARTTLS and gets 555 for MAIL ... REQUIRETLS there
# (RFC 8689 2: the option belongs to a session that employs TLS); after
# STARTTLS the EHLO offers REQUIRETLS and the message is accepted and
# tagged (envelope `requiretls yes`, `queue show` text and JSON).
#
# Outbound: the world's Postfix 3.7 MX hosts never offer REQUIRETLS, so a
# REQUIRETLS message to the DANE-EE domain is bounced 5.7.30 (class
# requiretls) after the DANE-verified STARTTLS, never delivered, and the
# DSN returns headers only (RFC 8689 5). A REQUIRETLS message to a DANE
# domain whose MX is unreachable stays deferred (that host may qualify).
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_requiretls.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_requiretls.sh DANERELAY}
HARNESS_NAME=rtls
export WORLD_NET=${WORLD_NET:-16}
RELAY_PORT=${REQUIRETLS_RELAY_PORT:-10039}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

D_EE=$WORLD_D_DANE_EE
D_DEAD=faultdane1.$WORLD_TLD

cat > "$CONF" <<EOF
# Written by tests/integration/test_requiretls.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.$HARNESS_NAME.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
tls_cert_file = $WORLD_PKI/mx-chain.pem
tls_key_file = $WORLD_PKI/mx.key
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
log_level = debug
EOF

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }

# send_rtls MSGID RCPT: the inbound dialogue; exits non-zero at the first
# step that is not as RFC 8689 wants it, saying which on stderr.
send_rtls() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$HARNESS_NAME.$WORLD_TLD" <<'PY'
import smtplib, ssl, sys
host, port, sender, rcpt, mid, dom = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo('client.' + dom)
if s.has_extn('requiretls'):
    sys.exit('REQUIRETLS offered before STARTTLS')
code, _ = s.mail(sender, ['REQUIRETLS'])
if code != 555:
    sys.exit(f'cleartext MAIL ... REQUIRETLS got {code}, want 555')
s.rset()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s.starttls(context=ctx)
s.ehlo('client.' + dom)
if not s.has_extn('requiretls'):
    sys.exit('REQUIRETLS not offered after STARTTLS')
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: requiretls {mid}\r\n"
       f"Message-ID: <{mid}@{dom}>\r\n\r\nSECRET-BODY-{mid}\r\n")
s.sendmail(sender, [rcpt], msg, mail_options=['REQUIRETLS'])
s.quit()
PY
}

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts with tls_cert_file (inbound STARTTLS)"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

# --- inbound, and a DANE MX without REQUIRETLS -----------------------------
check "inbound: no REQUIRETLS before STARTTLS, 555 for it there; offered after STARTTLS, MAIL ... REQUIRETLS accepted" \
  send_rtls ee1 "u1@$D_EE"
check "outbound: DANE-EE MX (Postfix, no REQUIRETLS) refused after verified TLS: bounced 5.7.30 class=requiretls" \
  wait_for 30 log_has "u1@$D_EE" "tls=dane-ee .*dsn=5\\.7\\.30 status=bounced class=requiretls"
not_in_maildir() { ! maildir_has "$@"; }
check "outbound: the DANE-EE MX never got the message" \
  not_in_maildir "$WORLD_D_DANE_EE_MAILDIR" ee1
check "outbound: no delivery line says sent for it" \
  bash -c "! grep -E 'event=delivery .*to=<u1@$D_EE>' '$RLOG' | grep -q status=sent"
dsn_file() {
  grep -rlsF "Message-ID: <ee1@$HARNESS_NAME.$WORLD_TLD>" "$WORLD_SENDER_MAILDIR" 2>/dev/null |
    xargs -r grep -lsE '^Status: 5\.7\.30' | head -1
}
have_dsn() { [ -n "$(dsn_file)" ]; }
check "DSN: the sender gets a failed DSN with 5.7.30" wait_for 40 have_dsn
F=$(dsn_file)
check "DSN: headers only (text/rfc822-headers), the body is not returned (RFC 8689 5)" \
  bash -c "[ -n '$F' ] && grep -q 'text/rfc822-headers' '$F' && ! grep -q 'SECRET-BODY-ee1' '$F'"

# --- a deferred REQUIRETLS message: the tag in the envelope ----------------
check "inbound: a second REQUIRETLS message (unreachable DANE MX) is accepted" \
  send_rtls dead1 "u1@$D_DEAD"
check "outbound: unreachable DANE MX: deferred (connect), not bounced" \
  wait_for 60 log_has "u1@$D_DEAD" "status=deferred class=connect"
ID=$(grep -E "event=delivery .*to=<u1@$D_DEAD>" "$RLOG" | head -1 | sed -nE 's/.* id=([0-9A-F]{14}) .*/\1/p')
check "the queue id is in the log" [ -n "$ID" ]
check "envelope: requiretls yes" grep -qx "requiretls yes" "$SPOOL/queue/$ID.env"
stop_relay TERM
check "relay stops cleanly" [ "${RELAY_STATUS:-1}" = 0 ]
DR queue show "$ID" > "$T/show.txt" 2>&1
echo "--- queue show $ID" >&2; cat "$T/show.txt" >&2
check "queue show: Options line says requiretls=yes" \
  grep -qE "^Options: .*requiretls=yes" "$T/show.txt"
DR queue show --json "$ID" > "$T/show.json" 2>&1
check "queue show --json: \"requiretls\": true" jq -e '.requiretls == true' "$T/show.json"

echo "1..$n"
[ "$failed" -eq 0 ]
