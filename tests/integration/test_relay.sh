#!/usr/bin/env bash
# End-to-end tests of `danerelay serve` in the test world:
#
#   real upstream Postfix (relayhost = the relay under test)
#     -> danerelay (libunbound with the world's trust anchor)
#     -> real MX Postfix instances (DANE-EE, DANE-TA, mismatch, no STARTTLS,
#        insecure, bogus, null MX, two MX hosts, expired leaf)
#
# Every check reads an outcome a person would look at: the Maildir of the MX
# (delivered or not), the relay's log line for the recipient (status, dsn,
# class, tls) and the relay's spool (deferred recipients keep 4.7.5 and their
# class). Output is TAP on stdout; chatter goes to stderr.
#
# usage: test_relay.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_relay.sh DANERELAY}
HARNESS_NAME=e2e
RELAY_PORT=${E2E_RELAY_PORT:-10026}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"
OUTSIDER=127.$NET.0.99

cat > "$T/danerelay.conf" <<EOF
# Written by tests/integration/test_relay.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.e2e.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
# The test CA is trusted for PKIX (level verify) only: DANE must refuse a
# CA-signed certificate that matches no TLSA record all the same.
tls_ca_file = $WORLD_CA_CERT
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
log_level = debug
# Long enough that the reuse check does not depend on how quickly a loaded
# test machine sends the second message (the default is 2s).
connection_cache_time = 60s
EOF

# A message through the upstream Postfix. submit ID FROM RCPT...
submit() {
  local id=$1 from=$2; shift 2
  {
    printf 'From: <%s>\n' "$from"
    printf 'To: %s\n' "$(printf '<%s> ' "$@")"
    printf 'Subject: e2e %s\n' "$id"
    printf 'Message-ID: <%s@e2e.%s>\n' "$id" "$WORLD_TLD"
    printf '\n'
    printf 'Test message %s.\n' "$id"
    printf '.leading dot stays\n'
  } | $WORLD_UPSTREAM_SENDMAIL -i -f "$from" -- "$@"
}

# spool_has RCPT TEXT...: the envelope of a queued message naming RCPT holds
# every TEXT (fixed strings).
spool_has() {
  local rcpt=$1; shift
  local f
  for f in "$SPOOL"/queue/*.env; do
    [ -f "$f" ] || continue
    grep -qF -- "$rcpt" "$f" || continue
    local t all=1
    for t in "$@"; do grep -qF -- "$t" "$f" || { all=0; break; }; done
    [ "$all" = 1 ] && return 0
  done
  return 1
}

# mxca logs every SMTP conversation with the relay, so the RFC 6152 checks
# below can read the relay's MAIL FROM parameters. Set before the first
# delivery: a connection the relay keeps in its cache would otherwise be
# served by an smtpd process that predates the setting.
postconf -c "$WORLD_MXCA_CONF" -e "debug_peer_list = 127.0.0.0/8" &&
  postfix -c "$WORLD_MXCA_CONF" reload >/dev/null 2>&1

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts and listens on $RELAY_ADDR"
check "DNSSEC self-test passes under the world's trust anchor" \
  wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"
runs_as_run_user() {
  local uid
  uid=$(id -u danerelay) || return 1
  awk -v u="$uid" '/^Uid:/ { exit !($2 == u && $3 == u && $4 == u && $5 == u) }' \
    "/proc/$RELAY_PID/status"
}
check "privileges: serve started as root runs as run_user danerelay (real, effective, saved)" \
  runs_as_run_user
check "privileges: the spool is owned by danerelay and closed to others (0700)" \
  bash -c "[ \"\$(stat -c '%U %a' '$SPOOL')\" = 'danerelay 700' ]"
check "privileges: logged event=privileges user=danerelay" \
  grep -q "event=privileges user=danerelay" "$RLOG"
# The files of removed messages are renamed into pool/ for reuse: as root's,
# every rename would fail and each message would create and free its files.
check "privileges: spool/pool/ (files kept for reuse) is owned by danerelay" \
  bash -c "[ \"\$(stat -c '%U %a' '$SPOOL/pool')\" = 'danerelay 700' ]"

S=$WORLD_SENDER
D_EE=$WORLD_D_DANE_EE D_TA=$WORLD_D_DANE_TA D_MM=$WORLD_D_MISMATCH
D_NT=$WORLD_D_NOTLS D_IN=$WORLD_D_INSECURE D_BS=$WORLD_D_BOGUS_SIG
D_BD=$WORLD_D_BOGUS_DS D_NM=$WORLD_D_NULLMX D_2M=$WORLD_D_TWOMX
D_EX=$WORLD_D_EXPIRED

submit ee1 "$S" "u1@$D_EE"
submit ta1 "$S" "u1@$D_TA"
submit mm1 "$S" "u1@$D_MM"
submit nt1 "$S" "u1@$D_NT"
submit in1 "$S" "u1@$D_IN"
submit bs1 "$S" "u1@$D_BS"
submit bd1 "$S" "u1@$D_BD"
submit nm1 "$S" "u1@$D_NM"
submit two1 "$S" "u1@$D_2M"
submit ex1 "$S" "u1@$D_EX"
submit split1 "$S" "u2@$D_EE" "u2@$D_MM"
submit tb1 "$S" "u1@$WORLD_D_TLSA_BOGUS"
submit tsf1 "$S" "u1@$WORLD_D_TLSA_SERVFAIL"
submit nomx1 "$S" "u1@$WORLD_D_NOMX"
submit nx1 "$S" "u1@$WORLD_NXDOMAIN"

# --- DANE-EE 3 1 1 match: delivered over DANE-authenticated TLS ----------
check "DANE-EE: message delivered to the MX's Maildir" \
  wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" ee1
check "DANE-EE: logged status=sent tls=dane-ee trust=Verified with the matched record" \
  wait_for 10 log_has "u1@$D_EE" "tls=dane-ee .*trust=Verified .*depth=0 .*tlsa=\"?3 1 1 .*status=sent"

# --- DANE-TA 2 0 1: delivered, chain and name checked --------------------
check "DANE-TA: message delivered" \
  wait_for 30 maildir_has "$WORLD_D_DANE_TA_MAILDIR" ta1
check "DANE-TA: logged tls=dane-ta status=sent" \
  wait_for 10 log_has "u1@$D_TA" "tls=dane-ta .*status=sent"

# --- CA-signed certificate, TLSA mismatch: refused ------------------------
check "TLSA mismatch: deferred with dsn=4.7.5 class=tlsa-mismatch in the log" \
  wait_for 30 log_has "u1@$D_MM" "dsn=4.7.5 status=deferred class=tlsa-mismatch"
check "TLSA mismatch: nothing delivered although a trusted CA signed the certificate" \
  bash -c "! grep -rlsF 'Message-ID: <mm1@' '$WORLD_D_MISMATCH_MAILDIR' >/dev/null"
check "TLSA mismatch: the queue keeps the recipient deferred with 4.7.5 and the class" \
  spool_has "u1@$D_MM" "4.7.5" "tlsa-mismatch" "deferred"

# --- TLSA published, no STARTTLS: deferred, never cleartext ---------------
check "no STARTTLS under DANE: deferred with 4.7.5 class=starttls-missing" \
  wait_for 30 log_has "u1@$D_NT" "dsn=4.7.5 status=deferred class=starttls-missing"
check "no STARTTLS under DANE: no cleartext delivery" \
  bash -c "! grep -rlsF 'Message-ID: <nt1@' '$WORLD_D_NOTLS_MAILDIR' >/dev/null"

# --- unsigned zone: opportunistic TLS -------------------------------------
check "insecure domain: delivered" \
  wait_for 30 maildir_has "$WORLD_D_INSECURE_MAILDIR" in1
check "insecure domain: opportunistic TLS (tls=may), its insecure TLSA ignored" \
  wait_for 10 log_has "u1@$D_IN" "tls=may .*status=sent"

# --- bogus zones: deferred ------------------------------------------------
check "bogus (expired signatures): deferred with 4.7.5 class=dnssec-bogus" \
  wait_for 30 log_has "u1@$D_BS" "dsn=4.7.5 status=deferred class=dnssec-bogus"
check "bogus (DS matches no key): deferred with 4.7.5 class=dnssec-bogus" \
  wait_for 30 log_has "u1@$D_BD" "dsn=4.7.5 status=deferred class=dnssec-bogus"
check "bogus zones: nothing delivered" \
  bash -c "! grep -rlsF -e 'Message-ID: <bs1@' -e 'Message-ID: <bd1@' '$WORLD_MXCA_MAILDIR' >/dev/null"

# --- null MX: bounced, DSN reaches the sender -----------------------------
check "null MX: bounced with dsn=5.1.10" \
  wait_for 30 log_has "u1@$D_NM" "dsn=5.1.10 status=bounced"
dsn_for_nm1() {
  grep -rlsF "Message-ID: <nm1@e2e.$WORLD_TLD>" "$WORLD_SENDER_MAILDIR" 2>/dev/null |
    xargs -r grep -lsE "^Action: failed" 2>/dev/null | grep -q .
}
check "null MX: a failed DSN with the original headers reaches the sender's Maildir" \
  wait_for 30 dsn_for_nm1
dsn_headers_ok() {
  local f
  f=$(grep -rlsF "Message-ID: <nm1@e2e.$WORLD_TLD>" "$WORLD_SENDER_MAILDIR" | head -1)
  [ -n "$f" ] && grep -qE "^Status: 5\.1\.10" "$f" &&
    grep -qE "^Final-Recipient: rfc822; ?u1@$D_NM" "$f" &&
    grep -qiE "^Content-Type: multipart/report; report-type=delivery-status" "$f" &&
    grep -qE "^Return-Path: <>" "$f"
}
check "null MX DSN: multipart/report, Status 5.1.10, Final-Recipient, null return path" \
  dsn_headers_ok

# --- two MX hosts: the first fails DANE, the second delivers --------------
check "two MX: delivered by the second MX" \
  wait_for 30 maildir_has "$WORLD_D_TWOMX_MAILDIR" two1
check "two MX: the first MX (DANE failure) got nothing" \
  bash -c "! grep -rlsF 'Message-ID: <two1@' '$WORLD_D_TWOMX_MX1_MAILDIR' >/dev/null"
check "two MX: logged sent via $WORLD_D_TWOMX_MX with tls=dane-ee" \
  wait_for 10 log_has "u1@$D_2M" "relay=$WORLD_D_TWOMX_MX\\[.*tls=dane-ee .*status=sent"

# --- DANE-EE with an expired leaf: delivered (RFC 7672 3.1.1) -------------
check "expired leaf under DANE-EE: delivered" \
  wait_for 30 maildir_has "$WORLD_D_EXPIRED_MAILDIR" ex1
check "expired leaf under DANE-EE: logged tls=dane-ee status=sent" \
  wait_for 10 log_has "u1@$D_EX" "tls=dane-ee .*status=sent"

# --- one message, two domains: partial delivery ---------------------------
check "two domains: delivered to the good one" \
  wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" split1
check "two domains: deferred for the mismatching one (4.7.5)" \
  wait_for 30 log_has "u2@$D_MM" "dsn=4.7.5 status=deferred class=tlsa-mismatch"
check "two domains: the spool keeps only the deferred recipient open" \
  spool_has "u2@$D_MM" "deferred"

# --- TLSA lookup failures: the host is unreachable (RFC 7672 2.1.2) --------
check "TLSA RRset bogus: deferred with 4.7.5 class=dnssec-bogus, nothing delivered" \
  wait_for 30 log_has "u1@$WORLD_D_TLSA_BOGUS" "dsn=4.7.5 status=deferred class=dnssec-bogus"
check "TLSA lookup SERVFAIL: deferred with 4.7.5 class=tlsa-lookup (never treated as no TLSA)" \
  wait_for 30 log_has "u1@$WORLD_D_TLSA_SERVFAIL" "dsn=4.7.5 status=deferred class=tlsa-lookup"
check "TLSA failures: no delivery to either MX" \
  bash -c "! grep -rlsF -e 'Message-ID: <tb1@' -e 'Message-ID: <tsf1@' '$WORLD_MXCA_MAILDIR' >/dev/null"

# --- no MX record: the implicit MX is the domain itself (RFC 5321 5.1) ----
check "no MX: delivered to the domain's own address with DANE (implicit MX)" \
  wait_for 30 maildir_has "$WORLD_D_NOMX_MAILDIR" nomx1
check "no MX: logged relay=$WORLD_D_NOMX status=sent over authenticated TLS" \
  wait_for 10 log_has "u1@$WORLD_D_NOMX" "relay=$WORLD_D_NOMX\\[.*tls=dane-(ee|ta) .*status=sent"

# --- NXDOMAIN next-hop: bounced (RFC 5321 5.1, checklist I25) -------------
check "NXDOMAIN: bounced with dsn=5.1.2 (secure denial), DSN to the sender" \
  wait_for 30 log_has "u1@$WORLD_NXDOMAIN" "dsn=5.1.2 status=bounced"
check "NXDOMAIN: a failed DSN reaches the sender" \
  wait_for 30 bash -c "grep -rlsF 'Message-ID: <nx1@e2e.$WORLD_TLD>' '$WORLD_SENDER_MAILDIR' | xargs -r grep -lsE '^Action: failed' | grep -q ."

# --- no open relay --------------------------------------------------------
outside_refused() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$OUTSIDER" <<'PY'
import smtplib, sys
try:
    s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), source_address=(sys.argv[3], 0), timeout=10)
except smtplib.SMTPConnectError as e:
    sys.exit(0 if e.smtp_code == 554 else 1)
code, _ = s.ehlo()
code, _ = s.mail('x@outside.example')
s.close()
sys.exit(0 if code == 503 else 1)
PY
}
ip addr add "$OUTSIDER/8" dev lo 2>/dev/null || true
check "client outside mynetworks gets 554 5.7.1 and cannot start a transaction" outside_refused
check "client outside mynetworks: logged event=reject" \
  grep -q "event=reject client=$OUTSIDER" "$RLOG"

# --- kill -9 during a batch, restart: every accepted message delivered ----
batch() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$S" "$D_EE" "$WORLD_TLD" "$1" <<'PY'
import smtplib, sys
host, port, sender, dom, tld, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
s = smtplib.SMTP(host, int(port), timeout=30)
accepted = 0
for i in range(count):
    msg = (f"From: <{sender}>\r\nTo: <k{i}@{dom}>\r\nSubject: kill {i}\r\n"
           f"Message-ID: <kill{i}@e2e.{tld}>\r\n\r\nbatch message {i}\r\n")
    s.sendmail(sender, [f"k{i}@{dom}"], msg)
    accepted += 1
print(accepted)
PY
}
accepted=$(batch 30)
stop_relay KILL
check "kill -9: the relay had answered 250 for all 30 messages" [ "${accepted:-0}" = 30 ]
start_relay
check "kill -9: restart on the same spool" [ -n "$RELAY_PID" ]
all_delivered() {
  local i
  for i in $(seq 0 29); do
    maildir_has "$WORLD_D_DANE_EE_MAILDIR" "kill$i" || return 1
  done
}
check "kill -9: every message answered 250 is delivered after the restart" \
  wait_for 60 all_delivered

# --- connection reuse: a later message rides the verified connection -----
send_one() {  # LOCALPART
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$S" "$1@$D_EE" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, tld = sys.argv[1:6]
s = smtplib.SMTP(host, int(port), timeout=30)
lp = rcpt.split('@')[0]
s.sendmail(sender, [rcpt], f"Subject: {lp}\r\nMessage-ID: <{lp}@e2e.{tld}>\r\n\r\nreuse\r\n")
s.quit()
PY
}
send_one reuse1
wait_for 20 log_has "reuse1@$D_EE" "status=sent" || true
send_one reuse2
check "connection reuse: the next message to the same MX reuses the DANE-verified connection" \
  wait_for 20 log_has "reuse2@$D_EE" "tls=dane-ee trust=Verified .*status=sent .*conn_use=[0-9]+"
check "connection reuse: the reused delivery arrived" \
  wait_for 20 maildir_has "$WORLD_D_DANE_EE_MAILDIR" reuse2

# --- RFC 6152: 8-bit content sent without BODY= goes out as BODY=8BITMIME --
send_body() {  # SENDER LOCALPART TEXT: no BODY= on MAIL FROM
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$1" "$2@$D_EE" "$WORLD_TLD" "$3" <<'PY'
import smtplib, sys
host, port, sender, rcpt, tld, text = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
lp = rcpt.split('@')[0]
s.sendmail(sender, [rcpt], (f"Subject: {lp}\r\nMessage-ID: <{lp}@e2e.{tld}>\r\n\r\n"
                            f"{text}\r\n").encode("utf-8"))
s.quit()
PY
}
E8=eight@e2e.$WORLD_TLD E7=seven@e2e.$WORLD_TLD
send_body "$E8" eight1 "caf$(printf '\xc3\xa9') cr$(printf '\xc3\xa8')me"
send_body "$E7" seven1 "plain ASCII"
check "8-bit: the message without BODY= is delivered" \
  wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" eight1
check "8-bit: relayed with MAIL FROM ... BODY=8BITMIME to the MX offering 8BITMIME" \
  wait_for 10 grep -qE "MAIL FROM:<$E8>.* BODY=8BITMIME" "$WORLD_MXCA_LOG"
check "7-bit: delivered, and its MAIL FROM declares no 8BITMIME" \
  bash -c "grep -rlsF 'Message-ID: <seven1@' '$WORLD_D_DANE_EE_MAILDIR' >/dev/null &&
    grep -qE 'MAIL FROM:<$E7>' '$WORLD_MXCA_LOG' && ! grep -qE 'MAIL FROM:<$E7>.*8BITMIME' '$WORLD_MXCA_LOG'"
# --- a second serve on the same spool refuses -----------------------------
second_refused() {
  local out
  if out=$("$RELAY_BIN" -c "$T/danerelay.conf" serve 2>&1); then
    return 1
  fi
  grep -qi "lock\|running\|another" <<< "$out"
}
check "a second serve on the same spool refuses to start" second_refused

# --- SIGTERM: clean exit --------------------------------------------------
stop_relay TERM
check "SIGTERM: the relay exits 0 after a clean shutdown" [ "${RELAY_STATUS:-1}" = 0 ]
check "SIGTERM: no leaked loop handles reported" \
  bash -c "! grep -q 'event loop still had open handles' '$RLOG'"

# --- phase 2: delay warning, queue lifetime, reload, IPv6 -----------------
# A second relay life on the same spool with short timers: one "delayed"
# DSN per message (RFC 3464 2.3.3, RFC 3461 5.2.5), then, at the end of the
# queue lifetime, a bounce whose DSN keeps the 4.x.x status (I37).
CONF=$T/danerelay2.conf
RLOG=$T/relay2.log
sed -e "s|^listen = .*|listen = $RELAY_ADDR, [::1]:$RELAY_PORT|" \
    -e "s|^mynetworks = .*|&, [::1]/128|" \
    -e "s|^retry_min = .*|retry_min = 1s|" -e "s|^retry_max = .*|retry_max = 2s|" \
    -e "s|^delay_warning_time = .*|delay_warning_time = 1s\nmax_queue_lifetime = 5s|" \
    "$T/danerelay.conf" > "$CONF"
# Inbound STARTTLS with a certificate: the key is read as root, before the
# privilege drop.
printf 'tls_cert_file = %s\ntls_key_file = %s\n' "$WORLD_PKI/mx-chain.pem" "$WORLD_PKI/mx.key" >> "$CONF"
start_relay
check "phase 2: serve restarts with IPv4 and IPv6 listeners" [ -n "$RELAY_PID" ]
send_v6() {
  python3 - "$RELAY_PORT" "$S" "late1@$D_MM" "$WORLD_TLD" <<'PY'
import smtplib, sys
port, sender, rcpt, tld = sys.argv[1:5]
s = smtplib.SMTP('::1', int(port), timeout=30)
s.sendmail(sender, [rcpt], f"Subject: late1\r\nMessage-ID: <late1@e2e.{tld}>\r\n\r\nlate\r\n")
s.quit()
PY
}
check "IPv6: a message is accepted over [::1]" send_v6
send_tls() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$S" "tls1@$D_EE" "$WORLD_TLD" <<'PY'
import smtplib, ssl, sys
host, port, sender, rcpt, tld = sys.argv[1:6]
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo('client.e2e')
if not s.has_extn('starttls'):
    sys.exit(1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s.starttls(context=ctx)
s.ehlo('client.e2e')
if s.has_extn('starttls'):
    sys.exit(1)   # RFC 3207 4.2: not offered again after TLS
s.sendmail(sender, [rcpt], f"Subject: tls1\r\nMessage-ID: <tls1@e2e.{tld}>\r\n\r\nover TLS\r\n")
s.quit()
PY
}
check "inbound STARTTLS: offered with tls_cert_file, a message is accepted over TLS" send_tls
received_esmtps() {
  grep -rlsF "Message-ID: <tls1@e2e.$WORLD_TLD>" "$WORLD_D_DANE_EE_MAILDIR" |
    xargs -r grep -lsE "by relay\.e2e\.$WORLD_TLD \(danerelay\) with ESMTPS id [0-9A-F]{14}" | grep -q .
}
check "inbound STARTTLS: delivered with a Received: ... with ESMTPS id trace line" \
  wait_for 30 received_esmtps
check "IPv6: logged event=queued client=::1" \
  wait_for 10 grep -qE "event=queued .*client=::1" "$RLOG"
dsn_count() {  # MSGID ACTION -> number of DSNs of that action for the message
  grep -rlsF "Message-ID: <$1@e2e.$WORLD_TLD>" "$WORLD_SENDER_MAILDIR" 2>/dev/null |
    xargs -r grep -lsE "^Action: $2" 2>/dev/null | wc -l
}
got_delayed() { [ "$(dsn_count late1 delayed)" -ge 1 ]; }
one_delayed() { [ "$(dsn_count late1 delayed)" -eq 1 ]; }
failed_475() {
  local f
  f=$(grep -rlsF "Message-ID: <late1@e2e.$WORLD_TLD>" "$WORLD_SENDER_MAILDIR" |
    xargs -r grep -lsE '^Action: failed')
  [ -n "$f" ] && grep -qE '^Status: 4\.7\.5' "$f"
}
check "delay warning: the sender gets an Action: delayed DSN" wait_for 30 got_delayed
check "queue lifetime: the recipient bounces (status=bounced, dsn 4.7.5 kept)" \
  wait_for 30 log_has "late1@$D_MM" "dsn=4.7.5 status=bounced"
check "queue lifetime: the sender gets an Action: failed DSN with Status 4.7.5" \
  wait_for 30 failed_475
check "delay warning: exactly one delayed DSN although the message was retried" one_delayed
kill -HUP "$RELAY_PID" 2>/dev/null
check "SIGHUP: the configuration is reloaded" \
  wait_for 10 grep -q "event=reload why=\"configuration reloaded\"" "$RLOG"
stop_relay TERM
check "phase 2: SIGTERM exits 0" [ "${RELAY_STATUS:-1}" = 0 ]

echo "1..$n"
[ "$failed" -eq 0 ]
