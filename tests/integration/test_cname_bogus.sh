#!/usr/bin/env bash
# End-to-end: a bogus first CNAME must stop delivery to that MX host, never
# switch DANE off (RFC 7672 2.1.3 and 2.2.2; checklist C16, C39, C40).
#
#   cname-bogus.$TLD     MX mx.cname-bogus, whose A comes through a secure
#                        (wildcard) CNAME into the unsigned zone: insecure.
#                        The relay then asks the CNAME of mx.cname-bogus
#                        alone (C39). cname_rrsig_proxy.py, between
#                        libunbound and NSD for that zone, breaks the RRSIG
#                        in that answer only: bogus. Expected: deferred
#                        4.7.5 class=dnssec-bogus, nothing delivered to the
#                        host (before the fix: verdict may, delivered over
#                        opportunistic TLS).
#   ok.cname-bogus.$TLD  the same shape through the same proxy, but the
#                        proxy leaves its CNAME alone: delivered with
#                        tls=may (the insecure address answer allows no DANE).
#                        Shows the path works and only the bogus answer
#                        stops the first domain. Sent only once the first
#                        is decided: the control's CNAME answer (the same
#                        wildcard, the same NSEC span) would let libunbound
#                        synthesise mx.cname-bogus's CNAME from its cache
#                        (RFC 8198 aggressive use), and the bogus answer
#                        would never be asked for.
#
# TAP on stdout; chatter on stderr. Needs root; exit 77 otherwise.
# usage: test_cname_bogus.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_cname_bogus.sh DANERELAY}
HARNESS_NAME=cnamebogus
RELAY_PORT=${E2E_RELAY_PORT:-10026}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=relay_harness.sh
source "$HERE/relay_harness.sh"

PROXY_PID=
PROXY_ADDR=127.$NET.53.2
PROXY_LOG=$T/proxy.log
cleanup() {
  if [ -n "$PROXY_PID" ]; then
    kill "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
  fi
  harness_cleanup
}
trap cleanup EXIT

D_BAD=$WORLD_D_CNAME_BOGUS
D_OK=$WORLD_D_CNAME_OK
MX_BAD=$WORLD_D_CNAME_BOGUS_MX

# The world's resolver config with the cname-bogus zone's stub pointed at
# the proxy; every other zone still goes straight to NSD.
UBCONF=$T/unbound-proxied.conf
awk -v zone="\"$D_BAD.\"" -v to="$PROXY_ADDR@$WORLD_DNS_PORT" '
  $1 == "name:" { inzone = ($2 == zone) }
  $1 == "stub-addr:" && inzone { $0 = "    stub-addr: " to; n++ }
  { print }
  END { exit n == 1 ? 0 : 1 }' "$WORLD_UNBOUND_CONF" > "$UBCONF" || {
  echo "1..1"; echo "not ok 1 - the world's unbound.conf has one stub for $D_BAD"; exit 1; }

python3 "$HERE/cname_rrsig_proxy.py" "$PROXY_ADDR" "$WORLD_DNS_PORT" \
  "$WORLD_DNS_ADDR" "$WORLD_DNS_PORT" "$PROXY_LOG" "$MX_BAD" > "$T/proxy.out" 2>&1 &
PROXY_PID=$!
if ! wait_for 10 grep -q '^ready$' "$T/proxy.out"; then
  echo "1..1"; echo "not ok 1 - the corrupting DNS proxy starts"; cat "$T/proxy.out" >&2; exit 1
fi
ok "the corrupting DNS proxy listens on $PROXY_ADDR:$WORLD_DNS_PORT"

cat > "$CONF" <<EOF
# Written by tests/integration/test_cname_bogus.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.cnamebogus.$WORLD_TLD
dns_resolver_config = $UBCONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
retry_min = 1h
retry_max = 2h
log_level = debug
EOF

if ! start_relay; then
  echo "not ok 2 - danerelay serve starts"; echo "1..2"; exit 1
fi
ok "danerelay serve starts"
check "DNSSEC self-test passes under the world's trust anchor" \
  wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

submit() {  # ID RCPT
  {
    printf 'From: <%s>\nTo: <%s>\nSubject: %s %s\n' "$WORLD_SENDER" "$2" "$HARNESS_NAME" "$1"
    printf 'Message-ID: <%s@%s.%s>\n\nTest message %s.\n' "$1" "$HARNESS_NAME" "$WORLD_TLD" "$1"
  } | $WORLD_UPSTREAM_SENDMAIL -i -f "$WORLD_SENDER" -- "$2"
}
submit bad1 "u1@$D_BAD"

# --- bogus first CNAME: the host is skipped, the mail deferred -------------
check "bogus first CNAME: deferred with dsn=4.7.5 class=dnssec-bogus" \
  wait_for 30 log_has "u1@$D_BAD" "dsn=4.7.5 status=deferred class=dnssec-bogus"
check "bogus first CNAME: the decision names the bogus CNAME lookup, no TLS level chosen" \
  grep -qE "event=dane-decision .*mx=$MX_BAD .*verdict=do-not-connect .*CNAME lookup for $MX_BAD is DNSSEC-bogus" "$RLOG"
check "bogus first CNAME: the proxy did break the CNAME answer's RRSIG" \
  grep -qE "^$MX_BAD 5 corrupted=[1-9]" "$PROXY_LOG"
check "bogus first CNAME: nothing delivered to the host" \
  bash -c "! grep -rlsF 'Message-ID: <bad1@' '$WORLD_D_CNAME_BOGUS_MAILDIR' >/dev/null"
check "bogus first CNAME: never sent with opportunistic TLS or in cleartext" \
  bash -c "! grep -E 'event=delivery .*to=<u1@$D_BAD>' '$RLOG' | grep -q 'status=sent'"

# --- control: the same path, CNAME answer untouched -----------------------
submit ok1 "u1@$D_OK"
check "untouched CNAME: delivered to the host behind the CNAME" \
  wait_for 30 maildir_has "$WORLD_D_CNAME_OK_MAILDIR" ok1
check "untouched CNAME: logged status=sent tls=may (insecure addresses, no DANE)" \
  wait_for 10 log_has "u1@$D_OK" "tls=may .*status=sent"

stop_relay TERM
check "SIGTERM exits 0" [ "${RELAY_STATUS:-1}" = 0 ]
echo "1..$n"
[ "$failed" -eq 0 ]
