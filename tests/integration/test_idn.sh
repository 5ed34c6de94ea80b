#!/usr/bin/env bash
# Internationalised recipient domains end to end (RFC 6531 3.2, RFC 5890):
#
#   upstream Postfix (SMTPUTF8, UTF-8 recipient) -> danerelay -> mxca Postfix
#
#   bücher.drworld  = xn--bcher-kva.drworld: MX, A and TLSA 3 1 1 published
#                     under the A-label only; delivered with tls=dane-ee
#   café.drworld    = xn--caf-dma.drworld: TLSA 2 0 1 (test CA), the
#                     certificate names the A-label next-hop and not the MX
#                     host, so DANE-TA passes only if the next-hop reference
#                     identifier is the A-label (RFC 7672 3.2.2)
#   ⒈x.drworld      U+2488 is DISALLOWED in IDNA2008: bounced once with
#                     5.1.2, a DSN to the sender, nothing left in the queue
#   smtputf8_enable = no: a UTF-8 domain is not converted; bounced 5.6.7
#   `danerelay probe bücher.drworld` shows the DANE verdict for the A-label
#
# TAP on stdout. Needs root; exit 77 otherwise.
# usage: test_idn.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_idn.sh DANERELAY}
HARNESS_NAME=idn
RELAY_PORT=${IDN_RELAY_PORT:-10026}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

write_conf() {  # EXTRA-LINE...
  {
    echo "# Written by tests/integration/test_idn.sh"
    echo "listen = $RELAY_ADDR"
    echo "mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32"
    echo "spool_dir = $SPOOL"
    echo "myhostname = relay.idn.$WORLD_TLD"
    echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
    echo "dns_trust_anchor_file ="
    echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
    echo "tls_security_level = dane"
    echo "smtp_connect_timeout = 5s"
    # Short retries: a recipient wrongly deferred would be retried (and
    # logged again) within the test.
    echo "retry_min = 1s"
    echo "retry_max = 2s"
    echo "log_level = debug"
    local l
    for l in "$@"; do echo "$l"; done
  } > "$CONF"
}

# submit ID RCPT: a message through the upstream Postfix; its sendmail
# detects the UTF-8 recipient and relays with SMTPUTF8 (RFC 6531).
submit() {
  printf 'From: <%s>\nTo: <%s>\nSubject: idn %s\nMessage-ID: <%s@idn.%s>\n\nTest %s.\n' \
    "$WORLD_SENDER" "$2" "$1" "$1" "$WORLD_TLD" "$1" |
    $WORLD_UPSTREAM_SENDMAIL -i -f "$WORLD_SENDER" -- "$2"
}

# submit_direct ID RCPT: the same message straight to the relay's listener,
# MAIL FROM with SMTPUTF8. For recipients the upstream Postfix refuses to
# relay itself (it bounces a disallowed U-label as 5.1.3).
submit_direct() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:]
msg = ("From: <%s>\r\nSubject: idn %s\r\nMessage-ID: <%s@idn.%s>\r\n\r\nTest %s.\r\n"
       % (sender, mid, mid, tld, mid)).encode()
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.sendmail(sender, [rcpt], msg, mail_options=["SMTPUTF8"])
PY
}

# delivery_line PATTERN...: a delivery line of the relay matching every
# extended regex PATTERN (the log escapes UTF-8 bytes as \xHH).
delivery_line() {
  local lines p
  lines=$(grep -E "event=delivery " "$RLOG" 2>/dev/null) || return 1
  for p in "$@"; do
    lines=$(grep -E -- "$p" <<< "$lines") || return 1
  done
}

delivery_count() {  # FIXED-STRING: delivery lines containing it
  grep -E "event=delivery " "$RLOG" 2>/dev/null | grep -cF -- "$1"
}

# dsn_for ID STATUS: the sender got a failed DSN for message ID with STATUS.
dsn_for() {
  local f
  f=$(grep -rlsF "Message-ID: <$1@idn.$WORLD_TLD>" "$WORLD_SENDER_MAILDIR" 2>/dev/null |
    xargs -r grep -lsE '^Action: failed' | head -1)
  [ -n "$f" ] && grep -qE "^Status: ${2//./\\.}" "$f"
}

# within SECS CMD...: poll CMD until it succeeds or SECS seconds of wall
# time have passed (the harness's wait_for counts polls, which stretch on a
# loaded machine; a failing run must still end inside meson's timeout).
within() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt "$end" ] || return 1
    sleep 0.2
  done
}

id danerelay >/dev/null 2>&1 ||
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin danerelay

U_EE=$WORLD_D_IDN_EE_UTF8 A_EE=$WORLD_D_IDN_EE
U_TA=$WORLD_D_IDN_TA_UTF8 A_TA=$WORLD_D_IDN_TA
# U+2488 DIGIT ONE FULL STOP: valid UTF-8, DISALLOWED by IDNA2008/UTS #46.
BAD=$'\xe2\x92\x88'x.$WORLD_TLD
# How the relay's log shows a UTF-8 name: bytes >= 0x80 as \xHH.
logform() {
  python3 -c 'import sys; print("".join(chr(b) if b < 128 else "\\x%02x" % b for b in sys.argv[1].encode()))' "$1"
}
L_EE=$(logform "$U_EE") L_BAD=$(logform "$BAD")
# The same as an extended regex: \ and . taken literally.
R_BAD=${L_BAD//\\/\\\\} R_BAD=${R_BAD//./\\.}

write_conf
if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts"
check "DNSSEC self-test passes" within 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

submit ee1 "u1@$U_EE"
submit ta1 "u1@$U_TA"
check "invalid U-label: the relay accepts it over SMTP with SMTPUTF8" submit_direct bad1 "u1@$BAD"

# --- bücher.drworld: looked up as xn--bcher-kva, delivered over DANE-EE ----
check "IDN DANE-EE: delivered to the MX (RCPT in UTF-8, SMTPUTF8)" \
  within 30 maildir_has "$WORLD_D_IDN_EE_MAILDIR" ee1
check "IDN DANE-EE: logged domain=$A_EE with the UTF-8 original, via mx.$A_EE, tls=dane-ee, sent" \
  within 10 delivery_line "domain=$A_EE " "domain_utf8=\"?${L_EE//\\/\\\\}" \
  "relay=mx\\.$A_EE\\[" "tls=dane-ee " "status=sent"
check "IDN DANE-EE: the DANE decision was taken for the A-label domain" \
  grep -qE "event=dane-decision .*domain=$A_EE .*mx=mx\\.$A_EE" "$RLOG"

# --- café.drworld: DANE-TA, name check against the A-label next-hop ----
check "IDN DANE-TA: delivered" within 30 maildir_has "$WORLD_D_IDN_TA_MAILDIR" ta1
check "IDN DANE-TA: logged tls=dane-ta via mx.$A_TA, sent" \
  within 10 delivery_line "domain=$A_TA " "relay=mx\\.$A_TA\\[" "tls=dane-ta " "status=sent"
check "IDN DANE-TA: SNI is the A-label MX host, reference identifiers are A-labels" \
  grep -qE "event=dane-decision .*domain=$A_TA .*sni=mx\\.$A_TA refs=mx\\.$A_TA,$A_TA " "$RLOG"
check "IDN DANE-TA: the certificate matched the A-label next-hop (RFC 7672 3.2.2)" \
  grep -qE "event=tls .*relay=mx\\.$A_TA\\[.*tls=dane-ta .*peername=\\\\?\"$A_TA\\\\?\"" "$RLOG"

# --- invalid U-label: one permanent failure, 5.1.2 ----------------------
check "invalid U-label: bounced with dsn=5.1.2 class=address and the reason" \
  within 30 delivery_line 'domain_utf8=' 'dsn=5\.1\.2 ' 'status=bounced' 'class=address' \
  'why="recipient domain: not a valid domain name \(IDNA2008, UTS #46\): '
check "invalid U-label: the sender gets a failed DSN with Status 5.1.2" \
  within 20 dsn_for bad1 5.1.2
one_bounce() {
  [ "$(delivery_count "$L_BAD")" = 1 ] && delivery_line "$R_BAD" 'attempts=1 ' 'status=bounced'
}
check "invalid U-label: exactly one attempt (attempts=1), never deferred" one_bounce
# Every message of this phase is final (delivered or bounced): an envelope
# left in the queue would be a recipient waiting for a retry.
queue_empty() { ! compgen -G "$SPOOL/queue/*.env" > /dev/null; }
check "invalid U-label: nothing left in the queue (no retries)" within 10 queue_empty

# --- probe: the same conversion, the DANE verdict for the A-label ----------
P=$T/probe
"$RELAY_BIN" probe -c "$CONF" --json "$U_EE" > "$P.ee.json" 2> "$P.ee.err"
rc=$?
check "probe $U_EE: exit 0" [ $rc = 0 ]
# jq prints true for a match; an empty file prints nothing (jq 1.6's -e
# would still exit 0 there, so the output is compared instead).
jq_true() {  # FILE FILTER [jq args...]
  local f=$1 q=$2; shift 2
  [ "$(jq "$@" "$q" "$f" 2>&1)" = true ] || { echo "jq '$q' on:"; cat "$f"; return 1; }
}
# shellcheck disable=SC2016  # $a and $u are jq variables
check "probe $U_EE: domain is the A-label, the UTF-8 form shown, allowed by DANE-EE" \
  jq_true "$P.ee.json" \
  '.domain == $a and .domain_utf8 == $u and .allowed == true and .mx_dnssec == "secure" and .hosts[0].name == "mx." + $a and .hosts[0].verdict == "dane" and .hosts[0].tls.auth == "dane-ee"' \
  --arg a "$A_EE" --arg u "$U_EE"
"$RELAY_BIN" probe -c "$CONF" "$U_TA" > "$P.ta.txt" 2> "$P.ta.err"
rc=$?
check "probe $U_TA (text): exit 0, shows the A-label and tls=dane-ta" \
  bash -c "[ $rc = 0 ] && grep -qxF 'idn $U_TA = $A_TA' '$P.ta.txt' &&
           grep -q '^  tls: tls=dane-ta ' '$P.ta.txt' && grep -q '^delivery allowed via mx\\.$A_TA\\[' '$P.ta.txt'"
"$RELAY_BIN" probe -c "$CONF" "$BAD" > "$P.bad.out" 2> "$P.bad.err"
rc=$?
check "probe $BAD: a usage error (exit 2) that gives the IDNA2008 reason" \
  bash -c "[ $rc = 2 ] && grep -qF 'IDNA2008' '$P.bad.err'"
# stderr holds the relay's debug log lines (log_level = debug), nothing else.
check "probes left no sanitizer report or leaked handle on stderr" \
  bash -c "! grep -Hv '^[0-9-]*T[0-9:.]*Z level=' '$P.ee.err' '$P.ta.err'"

# --- smtputf8_enable = no: no conversion, a permanent 5.6.7 ---------------
stop_relay TERM
check "serve stops with exit 0" [ "${RELAY_STATUS:-1}" = 0 ]
write_conf "smtputf8_enable = no"
RLOG=$T/relay-noutf8.log   # start_relay waits for this run's event=started
if start_relay; then ok "serve restarts with smtputf8_enable = no"; else not_ok "serve restarts with smtputf8_enable = no"; fi
submit off1 "u2@$U_EE"
check "smtputf8_enable = no: a UTF-8 domain bounces with dsn=5.6.7 (no IDNA lookup)" \
  within 30 delivery_line "domain_utf8=\"?${L_EE//\\/\\\\}" 'dsn=5\.6\.7 ' 'status=bounced' 'smtputf8_enable = no'
check "smtputf8_enable = no: the sender gets a failed DSN with Status 5.6.7" \
  within 20 dsn_for off1 5.6.7
check "smtputf8_enable = no: nothing delivered" \
  bash -c "! grep -rlsF 'Message-ID: <off1@' '$WORLD_D_IDN_EE_MAILDIR' >/dev/null"
stop_relay TERM
check "serve stops with exit 0 again" [ "${RELAY_STATUS:-1}" = 0 ]

echo "1..$n"
[ "$failed" -eq 0 ]
