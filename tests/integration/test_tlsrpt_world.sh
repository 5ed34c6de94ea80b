#!/usr/bin/env bash
# SMTP TLS Reporting (RFC 8460) in the test world: the relay counts every
# outbound TLS session per policy domain, keeps the counts across a kill -9
# and a restart, shows the report it would send, and sends it to the
# domain's rua addresses: by mail through its own queue and by HTTPS POST
# to a receiver with a test-CA certificate.
#
#   dane-ee.drworld   DANE-EE, delivered: successes; TXT with mailto + https
#   mismatch.drworld  TLSA of an unused key: certificate-host-mismatch; same TXT
#   notls.drworld     no STARTTLS: starttls-not-supported; two TLSRPT TXT
#                     records, so no report is sent (RFC 8460 3)
#   tlsa-bogus.drworld  TLSA answer bogus: the host is never connected, a
#                     dnssec-invalid failure under its MX host
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_tlsrpt_world.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_tlsrpt_world.sh DANERELAY}
HARNESS_NAME=tlsrpt
# Own loopback network and relay port: never clashes with the other tests.
export WORLD_NET=${WORLD_NET:-16}
RELAY_PORT=${TLSRPT_RELAY_PORT:-10037}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

cat > "$CONF" <<CONF
# Written by tests/integration/test_tlsrpt_world.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.tlsrpt.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
# One connection per message: each delivery is one TLS session.
connection_cache_time = 0
retry_min = 1h
retry_max = 2h
tlsrpt_organization = danerelay world test
tlsrpt_ca_file = $WORLD_PKI/ca.pem
CONF

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }
TODAY=$(date -u +%F)
D_OK=$WORLD_D_DANE_EE D_BAD=$WORLD_D_MISMATCH D_NOTLS=$WORLD_D_NOTLS
D_TB=$WORLD_D_TLSA_BOGUS
TAB=$'\t'

send() {  # MSGID RCPT
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: tlsrpt {mid}\r\n"
       f"Message-ID: <{mid}@tlsrpt.{tld}>\r\n\r\ntlsrpt test\r\n")
s.sendmail(sender, [rcpt], msg)
s.quit()
PY
}

# show_counts DOMAIN OK FAIL [RESULT MX]: `tlsrpt show` prints a report for
# DOMAIN with these counts (and failure detail).
show_counts() {
  local d=$1; shift
  DR tlsrpt show "$d" > "$T/show.json" 2> "$T/show.err" || { cat "$T/show.err" >&2; return 1; }
  python3 "$HERE/tlsrpt_check.py" "$T/show.json" json "$d" "$@" >&2
}

report_id() {  # DOMAIN: the report-id `tlsrpt show` gives
  DR tlsrpt show "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["report-id"])'
}

HTTPS_OUT=$T/https
mkdir -p "$HTTPS_OUT"
python3 "$HERE/tlsrpt_https.py" "$WORLD_TLSRPT_ADDR" 443 "$WORLD_PKI/mx-chain.pem" \
  "$WORLD_PKI/mx.key" "$HTTPS_OUT" 2> "$T/https.log" &
HTTPS_PID=$!
trap 'kill $HTTPS_PID 2>/dev/null; harness_cleanup' EXIT

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

# --- sessions: two good, one DANE failure, one without STARTTLS ------------
send ok1 "u1@$D_OK"
send ok2 "u2@$D_OK"
send bad1 "u1@$D_BAD"
send notls1 "u1@$D_NOTLS"
send tb1 "u1@$D_TB"
sent_ok() {
  [ "$(grep -cE "event=delivery .*to=<u[12]@$D_OK>.*status=sent" "$RLOG")" = 2 ]
}
check "dane-ee: both messages delivered" wait_for 30 sent_ok
check "mismatch: deferred (TLSA mismatch)" wait_for 30 log_has "u1@$D_BAD" "status=deferred"
check "notls: deferred (no STARTTLS)" wait_for 30 log_has "u1@$D_NOTLS" "status=deferred"
check "tlsa-bogus: deferred (bogus TLSA)" wait_for 30 log_has "u1@$D_TB" "status=deferred"

check "show: dane-ee has 2 successful sessions, 0 failures" \
  wait_for 5 show_counts "$D_OK" 2 0
check "show: mismatch has 1 failure, certificate-host-mismatch at its MX" \
  wait_for 5 show_counts "$D_BAD" 0 1 certificate-host-mismatch "$WORLD_D_MISMATCH_MX"
check "show: notls has 1 failure, starttls-not-supported" \
  wait_for 5 show_counts "$D_NOTLS" 0 1 starttls-not-supported "$WORLD_D_NOTLS_MX"
check "show: tlsa-bogus has 1 failure, dnssec-invalid at its MX (never connected)" \
  wait_for 5 show_counts "$D_TB" 0 1 dnssec-invalid "$WORLD_D_TLSA_BOGUS_MX"
DR tlsrpt show > "$T/all.jsonl"
all_has() {
  python3 - "$T/all.jsonl" "$D_OK" "$D_BAD" <<'PY'
import json, sys
docs = [json.loads(line) for line in open(sys.argv[1])]
ds = {p["policy"]["policy-domain"] for d in docs for p in d["policies"]}
sys.exit(0 if set(sys.argv[2:]) <= ds else 1)
PY
}
check "show without a domain: one JSON report per line, dane-ee and mismatch among them" all_has
ID1=$(report_id "$D_OK")
same_id() { [ -n "$ID1" ] && [ "$(report_id "$D_OK")" = "$ID1" ]; }
check "show: the report-id is stable ($ID1)" same_id

# --- kill -9 and a restart: the counts survive ------------------------------
stop_relay KILL
check "after kill -9: show (from disk, no daemon) still has dane-ee 2/0" \
  show_counts "$D_OK" 2 0
check "after kill -9: mismatch still 0/1" \
  show_counts "$D_BAD" 0 1 certificate-host-mismatch "$WORLD_D_MISMATCH_MX"
if start_relay; then ok "danerelay serve restarts"; else not_ok "danerelay serve restarts"; fi
two_selftests() { [ "$(grep -c 'event=dnssec-selftest status=ok' "$RLOG")" -ge 2 ]; }
check "DNSSEC self-test passes again" wait_for 20 two_selftests
send ok3 "u3@$D_OK"
check "dane-ee: a third message delivered" wait_for 30 log_has "u3@$D_OK" "status=sent"
check "show after the restart: dane-ee counts on from 2 to 3" \
  wait_for 5 show_counts "$D_OK" 3 0
check "show: the report-id is the same after the restart" same_id
no_old_report() { ! DR tlsrpt show --date 2000-01-01 "$D_OK" 2>/dev/null; }
check "show: a day without sessions has no report" no_old_report
mv "$SPOOL/tlsrpt" "$SPOOL/tlsrpt.away"
store_missing_fails() {
  ! DR tlsrpt show 2> "$T/miss.err" && grep -q 'cannot read' "$T/miss.err"
}
check "show: a missing store fails loudly" store_missing_fails
mv "$SPOOL/tlsrpt.away" "$SPOOL/tlsrpt"

# --- sending -----------------------------------------------------------------
DR tlsrpt send --date "$TODAY" --wait 60 > "$T/send.out" 2> "$T/send.err"
echo "--- tlsrpt send" >&2; cat "$T/send.out" "$T/send.err" >&2
check "send: the report to dane-ee went by mail (queued)" \
  grep -qF "$D_OK$TAB$WORLD_TLSRPT_MAILTO${TAB}sent${TAB}1${TAB}queued" "$T/send.out"
check "send: the report to dane-ee was POSTed (HTTP 200)" \
  grep -qF "$D_OK$TAB$WORLD_TLSRPT_HTTPS${TAB}sent${TAB}1${TAB}HTTP status 200" "$T/send.out"
bad_sent() { [ "$(grep -F "$D_BAD$TAB" "$T/send.out" | grep -cF "${TAB}sent$TAB")" = 2 ]; }
check "send: mismatch's reports went by mail and HTTPS" bad_sent
check "send: notls (two TLSRPT records) gets no report (RFC 8460 3)" \
  grep -qF "$D_NOTLS$TAB-${TAB}no-record${TAB}1${TAB}several TLSRPT records" "$T/send.out"

https_report() {  # DOMAIN OK FAIL [RESULT MX]: one POST body is that report
  local m
  for m in "$HTTPS_OUT"/*.meta; do
    [ -e "$m" ] || return 1
    grep -qx "content-type application/tlsrpt+gzip" "$m" || continue
    python3 "$HERE/tlsrpt_check.py" "${m%.meta}.body" gzip "$@" >&2 && return 0
  done
  return 1
}
check "https: dane-ee's report arrived gzip'ed as application/tlsrpt+gzip, 3/0" \
  https_report "$D_OK" 3 0
check "https: mismatch's report: 0/1, certificate-host-mismatch at its MX" \
  https_report "$D_BAD" 0 1 certificate-host-mismatch "$WORLD_D_MISMATCH_MX"
two_posts() { [ "$(find "$HTTPS_OUT" -name '*.meta' | wc -l)" = 2 ]; }
check "https: exactly two POSTs (none for notls)" two_posts

mail_report() {  # DOMAIN OK FAIL [RESULT MX]: a mail in the rua's Maildir
  local f
  for f in "$WORLD_SENDER_MAILDIR"/new/*; do
    [ -e "$f" ] || return 1
    grep -q "^TLS-Report-Domain: $1" "$f" || continue
    python3 "$HERE/tlsrpt_check.py" "$f" mail "$@" >&2 && return 0
  done
  return 1
}
check "mail: dane-ee's report delivered to $WORLD_TLSRPT_MAILTO (RFC 8460 5.3), 3/0" \
  wait_for 30 mail_report "$D_OK" 3 0
check "mail: mismatch's report delivered, 0/1 certificate-host-mismatch" \
  wait_for 30 mail_report "$D_BAD" 0 1 certificate-host-mismatch "$WORLD_D_MISMATCH_MX"

stop_relay TERM
check "relay stops cleanly" [ "${RELAY_STATUS:-1}" = 0 ]
check "the sent state is on disk" \
  grep -qF "$D_OK$TAB$WORLD_TLSRPT_HTTPS${TAB}sent" "$SPOOL/tlsrpt/sent-$TODAY"

echo "1..$n"
[ "$failed" = 0 ]
