#!/usr/bin/env bash
# MTA-STS (RFC 8461) in the test world: policies discovered through the
# relay's validating resolver, fetched over HTTPS from the world's policy
# server (tests/world/mtasts_https.py, certificate from the test CA, which
# mta_sts_ca_file names), cached under spool_dir/mta-sts, and applied to
# destinations without DANE. The fixtures are described in world.sh
# (STS_FIXTURES):
#
#   sts-enforce   enforce, MX matches *.sts-enforce  -> sent, tls=sts-enforce
#   sts-testing   testing, self-signed MX            -> sent, tls=sts-testing
#   sts-mismatch  enforce, no mx pattern matches     -> deferred sts-mx-mismatch
#   sts-badcert   enforce, self-signed MX            -> deferred sts-certificate
#   sts-down      TXT but no policy server, no cache -> sent, tls=may (3.3)
#   sts-cached    as sts-down, cached policy         -> sent, tls=sts-enforce
#   sts-id        cached id 1 matches no MX; TXT id 2 -> refetched, sent
#   sts-dane      TLSA + enforce policy naming another MX -> sent, tls=dane-ee
#   sts-bogus     bogus _mta-sts TXT, no cache       -> deferred sts-policy-fetch
#
# In testing mode the MX certificate is checked as enforce would (RFC 8461
# 5): sts-testing's self-signed one is logged sts_testing_failure=
# sts-certificate on the delivery line, reported to TLSRPT and counted.
#
# REQUIRETLS (RFC 8689 4.2.1) under MTA-STS, with a peer that offers
# REQUIRETLS after STARTTLS (a second danerelay on mx.sts-rtls, see
# STS_RTLS_ADDR in world.sh; its own deliveries wait, dane-only):
#   sts-rtls           secure MX, enforce             -> sent, tls=sts-enforce
#   rtls.insecure      insecure MX, enforce           -> sent, tls=sts-enforce
#   rtlstest.insecure  insecure MX, testing           -> bounced 5.7.30
#   sts-enforce        enforce, Postfix (no REQUIRETLS) -> bounced 5.7.30 after TLS
#   sts-mismatch       enforce, MX not in the policy  -> bounced 5.7.30
#   sts-badcert        enforce, self-signed           -> deferred sts-certificate
#
# SIGHUP reads mta_sts_ca_file again: with another CA there, sts-cached's
# MX fails PKIX (a parked connection verified under the old CA is not
# reused); with the test CA back, the message goes.
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_mtasts.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_mtasts.sh DANERELAY}
HARNESS_NAME=mtasts
export WORLD_NET=${WORLD_NET:-16}
RELAY_PORT=${MTASTS_RELAY_PORT:-10037}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

cat > "$CONF" <<EOF
# Written by tests/integration/test_mtasts.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.mtasts.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
mta_sts_ca_file = $T/sts-ca.pem
tls_cert_file = $WORLD_PKI/mx-chain.pem
tls_key_file = $WORLD_PKI/mx.key
connection_cache_time = 60s
mta_sts_timeout = 5s
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
log_level = debug
EOF

cp "$WORLD_CA_CERT" "$T/sts-ca.pem"
chmod 644 "$T/sts-ca.pem"

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }

# The REQUIRETLS peer on mx.sts-rtls: a second danerelay, whose smtpd
# offers REQUIRETLS after STARTTLS; it keeps what it gets (dane-only: the
# world has no TLSA for these domains, so its own deliveries wait).
PEER_SPOOL=$T/peer-spool
PEER_CONF=$T/peer.conf
PEER_LOG=$T/peer.log
PEER_PID=
cat > "$PEER_CONF" <<PEERCONF
# Written by tests/integration/test_mtasts.sh: the REQUIRETLS peer
listen = $WORLD_STS_RTLS_ADDR:25
mynetworks = 127.0.0.0/8
spool_dir = $PEER_SPOOL
myhostname = mx.sts-rtls.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane-only
mta_sts_enable = no
tls_cert_file = $WORLD_PKI/mx-chain.pem
tls_key_file = $WORLD_PKI/mx.key
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
tlsrpt_enable = no
PEERCONF
stop_peer() {
  [ -n "$PEER_PID" ] || return 0
  kill -TERM "$PEER_PID" 2>/dev/null
  wait "$PEER_PID" 2>/dev/null
  PEER_PID=
}
trap 'stop_peer; harness_cleanup' EXIT
"$RELAY_BIN" -c "$PEER_CONF" serve >> "$PEER_LOG" 2>&1 &
PEER_PID=$!

# peer_has MSGID: the peer queued it, tagged REQUIRETLS (RFC 8689 4.2.1:
# the relay passed REQUIRETLS on).
peer_has() {
  local f
  f=$(grep -rlsF "Message-ID: <$1@mtasts.$WORLD_TLD>" "$PEER_SPOOL" | head -1)
  [ -n "$f" ] || return 1
  grep -qx "requiretls yes" "${f%.*}.env"
}
peer_lacks() { ! grep -rlsF "Message-ID: <$1@mtasts.$WORLD_TLD>" "$PEER_SPOOL" | grep -q .; }

# send_rtls MSGID RCPT: over STARTTLS, MAIL FROM ... REQUIRETLS.
send_rtls() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, ssl, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s.starttls(context=ctx)
s.ehlo("client.mtasts." + tld)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: mtasts {mid}\r\n"
       f"Message-ID: <{mid}@mtasts.{tld}>\r\n\r\nrequiretls test\r\n")
s.sendmail(sender, [rcpt], msg, mail_options=["REQUIRETLS"])
s.quit()
PY
}

# send MSGID RCPT: one message straight to the relay over SMTP.
send() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: mtasts {mid}\r\n"
       f"Message-ID: <{mid}@mtasts.{tld}>\r\n\r\nmta-sts test\r\n")
s.sendmail(sender, [rcpt], msg)
s.quit()
PY
}

# seed DOMAIN ID BODY: a cached policy fetched now, as the relay writes it.
seed() {
  mkdir -p "$SPOOL/mta-sts"
  printf 'id %s\nfetched %s\n\n%s' "$2" "$(date +%s)" "$3" > "$SPOOL/mta-sts/$1"
  chmod 644 "$SPOOL/mta-sts/$1"
}

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"
check "the REQUIRETLS peer on mx.sts-rtls starts" \
  wait_for 10 grep -q "event=started" "$PEER_LOG"

T_=$WORLD_TLD
# Cached policies for the two cache cases, before any mail for them.
seed "sts-cached.$T_" 1 "$(printf 'version: STSv1\nmode: enforce\nmx: mx.sts-cached.%s\nmax_age: 86400\n' "$T_")"
seed "sts-id.$T_" 1 "$(printf 'version: STSv1\nmode: enforce\nmx: mx.nowhere.%s\nmax_age: 86400\n' "$T_")"

for d in enforce testing mismatch badcert down cached id dane bogus; do
  send "$d" "u1@sts-$d.$T_"
done

# --- enforce ------------------------------------------------------------------
check "enforce: delivered to the matching MX (*.sts-enforce)" \
  wait_for 30 maildir_has "$WORLD_D_STS_ENFORCE_MAILDIR" enforce
check "enforce: delivery line says tls=sts-enforce status=sent" \
  wait_for 10 log_has "u1@sts-enforce.$T_" "tls=sts-enforce .*status=sent"
check "enforce: the policy was fetched (event=mta-sts status=fetched mode=enforce policy_id=1)" \
  grep -qE "event=mta-sts domain=sts-enforce.$T_ status=fetched mode=enforce policy_id=1" "$RLOG"
check "enforce: the policy is cached on disk under spool_dir/mta-sts" \
  grep -qx "id 1" "$SPOOL/mta-sts/sts-enforce.$T_"

# The TLS report counts the session under the domain's MTA-STS policy
# (RFC 8460 4.4 policy-type "sts": the policy's lines, its mx patterns).
sts_report() {  # NAME MODE: today's report has one "sts" policy with a success
  DR tlsrpt show "sts-$1.$T_" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
p = r["policies"][0]
pol = p["policy"]
ok = (len(r["policies"]) == 1 and pol["policy-type"] == "sts"
      and pol["policy-domain"] == sys.argv[1]
      and "version: STSv1" in pol["policy-string"]
      and "mode: " + sys.argv[2] in pol["policy-string"]
      and any(s.startswith("mx: ") for s in pol["policy-string"])
      and len(pol.get("mx-host", [])) >= 1
      and p["summary"]["total-successful-session-count"] >= 1)
sys.exit(0 if ok else 1)' "sts-$1.$T_" "$2"
}
check "enforce: tlsrpt show reports policy-type sts with the policy lines and mx patterns" \
  wait_for 5 sts_report enforce enforce
# (grep reads a here-string: with pipefail, grep -q quitting early would
# fail the pipe.)
metric_sent() { grep -qE "^danerelay_deliveries_total\{outcome=\"sent\",tls=\"$1\",class=\"none\"\} [1-9]" <<< "$(DR metrics)"; }
check "enforce: danerelay metrics counts the delivery under tls=sts-enforce" metric_sent sts-enforce

# --- testing ------------------------------------------------------------------
check "testing: delivered to the self-signed MX as before" \
  wait_for 30 maildir_has "$WORLD_D_STS_TESTING_MAILDIR" testing
check "testing: delivery line says tls=sts-testing status=sent" \
  wait_for 10 log_has "u1@sts-testing.$T_" "tls=sts-testing .*status=sent"
check "testing: the self-signed certificate is a would-be failure on the delivery line (sts_testing_failure=sts-certificate)" \
  log_has "u1@sts-testing.$T_" "status=sent .*sts_testing_failure=sts-certificate"
check "testing: logged event=mta-sts-testing would_fail=sts-certificate" \
  grep -qE "event=mta-sts-testing .*domain=sts-testing.$T_ .*would_fail=sts-certificate" "$RLOG"
# The report counts it as a failure of the testing policy (RFC 8460 4.3.1).
sts_testing_report() {
  DR tlsrpt show "sts-testing.$T_" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
p = r["policies"][0]
pol = p["policy"]
ok = (len(r["policies"]) == 1 and pol["policy-type"] == "sts"
      and "mode: testing" in pol["policy-string"]
      and p["summary"]["total-failure-session-count"] >= 1
      and any(d["result-type"] == "certificate-not-trusted"
              for d in p.get("failure-details", [])))
sys.exit(0 if ok else 1)'
}
check "testing: tlsrpt show reports policy-type sts, mode testing, a certificate-not-trusted failure" \
  wait_for 5 sts_testing_report

# --- refusals -------------------------------------------------------------------
check "mx mismatch: deferred class=sts-mx-mismatch (\"*.$T_\" matches one label only)" \
  wait_for 30 log_has "u1@sts-mismatch.$T_" "class=sts-mx-mismatch"
check "mx mismatch: dsn=4.7.5 status=deferred" \
  log_has "u1@sts-mismatch.$T_" "dsn=4.7.5 .*status=deferred"
check "mx mismatch: nothing reached the MX" \
  bash -c "! grep -rlsF 'Message-ID: <mismatch@mtasts.$T_>' '$WORLD_D_STS_MISMATCH_MAILDIR' | grep -q ."
check "bad certificate: deferred class=sts-certificate" \
  wait_for 30 log_has "u1@sts-badcert.$T_" "class=sts-certificate"
check "bad certificate: dsn=4.7.5 status=deferred" \
  log_has "u1@sts-badcert.$T_" "dsn=4.7.5 .*status=deferred"
check "bad certificate: nothing reached the MX" \
  bash -c "! grep -rlsF 'Message-ID: <badcert@mtasts.$T_>' '$WORLD_D_STS_BADCERT_MAILDIR' | grep -q ."
check "bogus TXT, no cache: deferred class=sts-policy-fetch" \
  wait_for 30 log_has "u1@sts-bogus.$T_" "class=sts-policy-fetch"
check "bogus TXT: dsn=4.7.5 status=deferred" \
  log_has "u1@sts-bogus.$T_" "dsn=4.7.5 .*status=deferred"
check "bogus TXT: nothing reached the MX" \
  bash -c "! grep -rlsF 'Message-ID: <bogus@mtasts.$T_>' '$WORLD_D_STS_BOGUS_MAILDIR' | grep -q ."

# --- fetch failures -------------------------------------------------------------
check "policy server down, no cache: delivered opportunistically (RFC 8461 3.3), tls=may" \
  wait_for 30 log_has "u1@sts-down.$T_" "tls=may .*status=sent"
check "policy server down, no cache: logged event=mta-sts status=no-policy" \
  grep -qE "event=mta-sts domain=sts-down.$T_ status=no-policy" "$RLOG"
check "policy server down, cached policy: enforced from the cache, tls=sts-enforce" \
  wait_for 30 log_has "u1@sts-cached.$T_" "tls=sts-enforce .*status=sent"
check "policy server down, cached policy: logged status=refresh-failed-using-cache" \
  grep -qE "event=mta-sts domain=sts-cached.$T_ status=refresh-failed-using-cache" "$RLOG"

# --- id change ------------------------------------------------------------------
check "id change: delivered under the new policy, tls=sts-enforce" \
  wait_for 30 log_has "u1@sts-id.$T_" "tls=sts-enforce .*status=sent"
check "id change: the new policy (id 2) was fetched" \
  grep -qE "event=mta-sts domain=sts-id.$T_ status=fetched mode=enforce policy_id=2" "$RLOG"
check "id change: the cache file now holds id 2" \
  grep -qx "id 2" "$SPOOL/mta-sts/sts-id.$T_"

# --- DANE first -----------------------------------------------------------------
check "DANE and MTA-STS: DANE decides (tls=dane-ee); the policy naming another MX is not applied" \
  wait_for 30 log_has "u1@sts-dane.$T_" "tls=dane-ee .*status=sent"

# Metrics and log agree: every delivery line with class=sts-certificate or
# sts_testing_failure=sts-certificate is one certificate-not-trusted.
cert_lines() { grep -cE "event=delivery .*(class|sts_testing_failure)=sts-certificate" "$RLOG"; }
cert_metric() { sed -nE 's/^danerelay_dane_results_total\{result="certificate-not-trusted"\} ([0-9]+)$/\1/p' <<< "$(DR metrics)"; }
CL=$(cert_lines) CM=$(cert_metric)
check "metrics: certificate-not-trusted counts the testing-mode would-be failure too ($CL lines, $CM counted)" \
  bash -c "[ '$CL' = '$CM' ] && grep -qE 'event=delivery .*sts_testing_failure=sts-certificate' '$RLOG'"

# --- REQUIRETLS under MTA-STS (RFC 8689 4.2.1) -----------------------------------
send_rtls rtls-a "rtls@sts-rtls.$T_"
check "REQUIRETLS, secure MX, enforce policy: sent over PKIX under the policy (tls=sts-enforce)" \
  wait_for 30 log_has "rtls@sts-rtls.$T_" "tls=sts-enforce .*status=sent"
# Its connection is parked now (connection_cache_time 60s); the next
# message goes to the same host under the same verdict, but for another
# domain: a session carries REQUIRETLS only when it was authenticated for
# that very destination (RFC 8689 4.2.1), so it gets one of its own.
send_rtls rtls-b "rtls@rtls.insecure.$T_"
check "REQUIRETLS, insecure MX RRset, enforce policy names the host: sent, tls=sts-enforce" \
  wait_for 30 log_has "rtls@rtls.insecure.$T_" "tls=sts-enforce .*status=sent"
own_conn() {  # RCPT: sent, on a new connection (no conn_use=)
  log_has "$1" "status=sent" && ! log_has "$1" "conn_use="
}
check "REQUIRETLS, insecure MX RRset: on a connection of its own, not sts-rtls's parked one (no conn_use)" \
  own_conn "rtls@rtls.insecure.$T_"
# The connection cache: a REQUIRETLS message for sts-rtls reuses a parked
# connection verified under sts-rtls's own policy.
send_rtls rtls-g "cache@sts-rtls.$T_"
check "cache: a REQUIRETLS message for sts-rtls reuses the connection verified under its policy" \
  wait_for 30 log_has "cache@sts-rtls.$T_" "tls=sts-enforce .*status=sent .*conn_use="

send_rtls rtls-c "rtls@rtlstest.insecure.$T_"
send_rtls rtls-d "rtls@sts-enforce.$T_"
send_rtls rtls-e "rtls@sts-mismatch.$T_"
send_rtls rtls-f "rtls@sts-badcert.$T_"
check "REQUIRETLS, secure MX: the peer got it with REQUIRETLS on MAIL FROM" \
  wait_for 10 peer_has rtls-a
check "REQUIRETLS, insecure MX RRset: the peer got it with REQUIRETLS" \
  wait_for 10 peer_has rtls-b
check "REQUIRETLS, insecure MX RRset, testing policy: bounced 5.7.30 class=requiretls" \
  wait_for 30 log_has "rtls@rtlstest.insecure.$T_" "dsn=5\.7\.30 status=bounced class=requiretls"
check "REQUIRETLS, testing policy: the peer never got it" peer_lacks rtls-c
check "REQUIRETLS, enforce, MX without REQUIRETLS (Postfix): verified under the policy, then bounced 5.7.30" \
  wait_for 30 log_has "rtls@sts-enforce.$T_" "tls=sts-enforce .*dsn=5\.7\.30 status=bounced class=requiretls"
check "REQUIRETLS, enforce, MX matches no mx pattern: bounced 5.7.30, never connected" \
  wait_for 30 log_has "rtls@sts-mismatch.$T_" "tls=none .*dsn=5\.7\.30 status=bounced class=requiretls .*matches no mx"
check "REQUIRETLS, enforce, certificate not PKIX-valid: deferred sts-certificate" \
  wait_for 30 log_has "rtls@sts-badcert.$T_" "dsn=4\.7\.5 status=deferred class=sts-certificate"

# --- SIGHUP reads mta_sts_ca_file again -----------------------------------------
reloads() { grep -c "event=reload .*mta_sts_ca_file=" "$RLOG"; }
more_reloads() { [ "$(reloads)" -gt "$1" ]; }
# A connection to sts-cached's MX verified under the test CA, parked.
send hup0 "hup0@sts-cached.$T_"
check "SIGHUP: before, sts-cached's MX is verified under the test CA (tls=sts-enforce)" \
  wait_for 30 log_has "hup0@sts-cached.$T_" "tls=sts-enforce .*status=sent"
NR=$(reloads)
cp "$WORLD_PKI/self.pem" "$T/sts-ca.pem"
kill -HUP "$RELAY_PID"
check "SIGHUP: mta_sts_ca_file read again (event=reload mta_sts_ca_file=... status=read)" \
  wait_for 10 more_reloads "$NR"
send hup1 "hup1@sts-cached.$T_"
check "SIGHUP, another CA there: sts-cached's MX fails PKIX now, the parked connection unused (deferred sts-certificate)" \
  wait_for 30 log_has "hup1@sts-cached.$T_" "status=deferred class=sts-certificate"
NR=$(reloads)
cp "$WORLD_CA_CERT" "$T/sts-ca.pem"
kill -HUP "$RELAY_PID"
check "SIGHUP again: the test CA read back" wait_for 10 more_reloads "$NR"
DR queue retry --all > /dev/null 2>&1
check "SIGHUP, the test CA back: the deferred message is sent (tls=sts-enforce)" \
  wait_for 30 log_has "hup1@sts-cached.$T_" "tls=sts-enforce .*status=sent"

# --- the operator's view --------------------------------------------------------
ID_MM=$(grep -E "event=delivery .*to=<u1@sts-mismatch.$T_>" "$RLOG" | head -1 | sed -nE 's/.* id=([0-9A-F]{14}) .*/\1/p')
check "the refused message's queue id is in the log" [ -n "$ID_MM" ]
DR queue list --class sts-mx-mismatch > "$T/list.txt" 2>&1
check "queue list --class sts-mx-mismatch finds it" grep -q "$ID_MM" "$T/list.txt"
# --- probe: the same decision, stopping before MAIL -------------------------
DR probe "sts-enforce.$T_" > "$T/probe-enforce.txt" 2>&1
check "probe sts-enforce: exit 0" [ $? = 0 ]
check "probe sts-enforce: policy line and tls=sts-enforce" \
  bash -c "grep -q '^mta-sts policy mode=enforce id=1' '$T/probe-enforce.txt' && grep -q 'result: ok.* tls=sts-enforce' '$T/probe-enforce.txt'"
DR probe --json "sts-mismatch.$T_" > "$T/probe-mismatch.json" 2> "$T/probe-mismatch.err"
check "probe --json sts-mismatch: exit 1, failure_class sts-mx-mismatch" [ $? = 1 ]
check "probe --json sts-mismatch: mta_sts mode enforce, failure_class sts-mx-mismatch" \
  jq -e '.mta_sts.mode == "enforce" and .failure_class == "sts-mx-mismatch"' "$T/probe-mismatch.json"
DR probe "sts-badcert.$T_" > "$T/probe-badcert.txt" 2>&1
check "probe sts-badcert: refused with class=sts-certificate" \
  grep -q "delivery NOT allowed: class=sts-certificate" "$T/probe-badcert.txt"
DR probe "sts-dane.$T_" > "$T/probe-dane.txt" 2>&1
check "probe sts-dane: DANE decides, no MTA-STS lookup (no mta-sts line)" \
  bash -c "grep -q 'result: ok.* tls=dane-ee' '$T/probe-dane.txt' && ! grep -q '^mta-sts' '$T/probe-dane.txt'"
DR report > "$T/report.txt" 2>&1
check "report: the MTA-STS hints" grep -q "MTA-STS policy (enforce)" "$T/report.txt"
stop_peer
stop_relay TERM
check "relay stops cleanly" [ "${RELAY_STATUS:-1}" = 0 ]
DR queue show "$ID_MM" > "$T/show.txt" 2>&1
check "queue show: the attempt's class is sts-mx-mismatch" grep -q "sts-mx-mismatch" "$T/show.txt"

echo "1..$n"
[ "$failed" -eq 0 ]
