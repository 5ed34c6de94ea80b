#!/usr/bin/env bash
# The outbound knobs of a multi-homed host, seen from the receiving Postfix:
#
#   smtp_bind_address = 127.NET.32.1 (a loopback alias added for the test):
#     mxca's log shows the connection coming from that address, for `serve`
#     and for `probe` alike
#   smtp_helo_name = out.source.drworld: the EHLO name mxca puts in its
#     Received: header (myhostname stays relay.source.drworld)
#   smtp_bind_address = 192.0.2.1 (TEST-NET-1, not local): the bind fails,
#     the attempt is deferred with 4.4.0 and a warning line, and mxca sees
#     no connection at all (no silent fallback to another source address)
#   inet_protocols = ipv6: dane-ee.drworld has only an A record, so probe
#     finds no address to try and connects to nothing
#   a bind address of the wrong family is refused at load, naming the line
#
# TAP on stdout. Needs root; exit 77 otherwise.
# usage: test_outbound_source.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_outbound_source.sh DANERELAY}
HARNESS_NAME=source
RELAY_PORT=${SOURCE_RELAY_PORT:-10026}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

SRC=127.$NET.32.1
R_SRC=${SRC//./\\.}
HELO=out.source.$WORLD_TLD
DOWN=192.0.2.1 # TEST-NET-1 (RFC 5737): never a local address here
MXLOG=$WORLD_MXCA_LOG

# The source address as a second loopback address, the way world.sh adds
# its aliases; removed at exit when this test added it.
ADDED_ALIAS=
if ! ip -4 -o addr show dev lo | grep -qF " $SRC/"; then
  ip addr add "$SRC/8" dev lo && ADDED_ALIAS=1
fi
source_cleanup() {
  [ -z "$ADDED_ALIAS" ] || ip addr del "$SRC/8" dev lo 2>/dev/null || true
  harness_cleanup
}
trap source_cleanup EXIT
if ip -4 -o addr show dev lo | grep -qF " $SRC/"; then
  ok "loopback alias $SRC present"
else
  not_ok "loopback alias $SRC present"
fi
if ip -4 -o addr show | grep -qF " $DOWN/"; then
  echo "1..0 # SKIP $DOWN is a local address on this machine"
  exit 77
fi

write_conf() {  # EXTRA-LINE...
  {
    echo "# Written by tests/integration/test_outbound_source.sh"
    echo "listen = $RELAY_ADDR"
    echo "mynetworks = 127.0.0.1/32, $RELAY_HOST/32"
    echo "spool_dir = $SPOOL"
    echo "myhostname = relay.source.$WORLD_TLD"
    echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
    echo "dns_trust_anchor_file ="
    echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
    echo "smtp_connect_timeout = 5s"
    echo "retry_min = 60s"
    echo "retry_max = 60s"
    local l
    for l in "$@"; do echo "$l"; done
  } > "$CONF"
}

# submit ID RCPT: straight to the relay's listener.
submit() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:]
msg = ("From: <%s>\r\nSubject: source %s\r\nMessage-ID: <%s@source.%s>\r\n\r\nTest %s.\r\n"
       % (sender, mid, mid, tld, mid)).encode()
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.sendmail(sender, [rcpt], msg)
PY
}

within() {  # SECS CMD...: poll CMD for SECS seconds of wall time
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt "$end" ] || return 1
    sleep 0.2
  done
}

mx_connects() {  # ADDR-REGEX: mxca smtpd connections from that client
  grep -cE "/smtpd\[[0-9]+\]: connect from [^ ]*\[$1\]" "$MXLOG" 2>/dev/null
}
connects_since() {  # BEFORE ADDR-REGEX: more connections than BEFORE
  [ "$(mx_connects "$2")" -gt "$1" ]
}

# --- smtp_bind_address and smtp_helo_name, through serve ---------------------
write_conf "smtp_bind_address = $SRC" "smtp_helo_name = $HELO"
if ! start_relay; then
  echo "not ok - danerelay serve starts"
  echo "1..$((n + 1))"
  exit 1
fi
ok "serve starts with smtp_bind_address = $SRC"
before=$(mx_connects '[0-9.]+')
check "message accepted by the relay" submit s1 "u1@$WORLD_D_DANE_EE"
check "delivered to mx.dane-ee over DANE" \
  within 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" s1
f=$(grep -rlsF "Message-ID: <s1@source.$WORLD_TLD>" "$WORLD_D_DANE_EE_MAILDIR" | head -1)
check "the receiving Postfix logged the connection from $SRC (smtp_bind_address)" \
  connects_since 0 "$R_SRC"
check "and no connection from any other address meanwhile" \
  [ "$(mx_connects '[0-9.]+')" = "$((before + 1))" ]
check "its Received: header names EHLO $HELO and client [$SRC]" \
  grep -qE "^Received: from ${HELO//./\\.} \([^)]*\[$R_SRC\]\)" "${f:-/dev/null}"
check "the relay logged status=sent from mx.dane-ee" \
  log_has "u1@$WORLD_D_DANE_EE" "tls=dane-ee .*status=sent"

# --- probe honours the same knobs ---------------------------------------------
before=$(mx_connects "$R_SRC")
"$RELAY_BIN" -c "$CONF" probe "$WORLD_D_DANE_EE" > "$T/probe.txt" 2> "$T/probe.err"
rc=$?
check "probe: exit 0, delivery allowed" \
  bash -c "[ $rc = 0 ] && grep -q '^delivery allowed via ' '$T/probe.txt'"
check "probe connected from $SRC too" within 5 connects_since "$before" "$R_SRC"
stop_relay TERM
check "serve stops with exit 0" [ "${RELAY_STATUS:-1}" = 0 ]

# --- a source that cannot be bound: deferred 4.4.0, never another source ------
write_conf "smtp_bind_address = $DOWN" "smtp_helo_name = $HELO"
RLOG=$T/relay-down.log
if start_relay; then ok "serve starts with smtp_bind_address = $DOWN"; else not_ok "serve starts with smtp_bind_address = $DOWN"; fi
before=$(mx_connects '[0-9.]+')
check "message accepted by the relay" submit s2 "u2@$WORLD_D_DANE_EE"
check "deferred with dsn=4.4.0 class=connect naming the source address" \
  within 30 log_has "u2@$WORLD_D_DANE_EE" \
  "dsn=4\.4\.0 .*status=deferred .*class=connect .*cannot bind source address ${DOWN//./\\.}"
check "a warning line says the bind failed" \
  grep -qE "level=warning event=smtp-bind status=failed source=${DOWN//./\\.} " "$RLOG"
check "the receiving Postfix saw no connection at all (no fallback)" \
  [ "$(mx_connects '[0-9.]+')" = "$before" ]
check "and nothing was delivered" \
  bash -c "! grep -rlsF 'Message-ID: <s2@source.$WORLD_TLD>' '$WORLD_D_DANE_EE_MAILDIR' >/dev/null"
"$RELAY_BIN" -c "$CONF" probe "$WORLD_D_DANE_EE" > "$T/probe-down.txt" 2>&1
rc=$?
check "probe with the unbindable source: exit 3 (temporary), the bind named" \
  bash -c "[ $rc = 3 ] && grep -q 'cannot bind source address ${DOWN//./\\.}' '$T/probe-down.txt'"
stop_relay TERM

# --- inet_protocols = ipv6: the IPv4-only MX host is not tried ----------------
write_conf "inet_protocols = ipv6"
before=$(mx_connects '[0-9.]+')
"$RELAY_BIN" -c "$CONF" probe "$WORLD_D_DANE_EE" > "$T/probe-v6.txt" 2>&1
rc=$?
check "inet_protocols = ipv6: probe finds no address (exit 3) and connects nowhere" \
  bash -c "[ $rc = 3 ] && grep -q 'addresses=(none)' '$T/probe-v6.txt'"
check "inet_protocols = ipv6: the receiving Postfix saw no connection" \
  [ "$(mx_connects '[0-9.]+')" = "$before" ]

# --- a bind address of the wrong family is a load error -----------------------
write_conf "smtp_bind_address = ::1"
"$RELAY_BIN" -c "$CONF" config > "$T/bad.out" 2>&1
rc=$?
check "smtp_bind_address = ::1 is refused at load, naming file and line" \
  bash -c "[ $rc != 0 ] && grep -qF '$CONF:12: smtp_bind_address must be an IPv4 address literal' '$T/bad.out'"

echo "1..$n"
[ "$failed" = 0 ]
