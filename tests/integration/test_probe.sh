#!/usr/bin/env bash
# `danerelay probe DOMAIN [--json]` in the test world:
# the probe runs serve's decision (same config, resolver, policy) against the
# world's signed zones and real Postfix MX instances, and stops before MAIL.
#
#   dane-ee    allowed, tls auth dane-ee, matched 3 1 1, exit 0
#   mismatch   not allowed, tlsa-mismatch, 4.7.5, exit 1 (RFC 7672 3.2, C51)
#   insecure   allowed, verdict may, TLSA not used (RFC 7672 2.2, C22)
#   bogus-sig  not allowed, dnssec-bogus, 4.7.5, no connection (C09)
#   notls      not allowed, starttls-missing, 4.7.5 (C18: never cleartext)
#   none       a tls_policy_file `none` entry: cleartext, EHLO then QUIT
#   no DNS     the resolver's servers on a closed loopback port: the DNSSEC
#              self-test fails (dane) or the lookups fail (may): exit 3
#
# Exit statuses (danerelay(8)): 0 allowed, 1 refused by policy, 2 usage or
# configuration, 3 temporary failure.
# TAP on stdout. Needs root (the world's port-25 instances); exit 77 otherwise.
# usage: test_probe.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_probe.sh DANERELAY}
RELAY_BIN=$(cd "$(dirname "$RELAY_BIN")" && pwd)/$(basename "$RELAY_BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
: "${WORLD_SH:=$HERE/../world/world.sh}"
: "${INTEGRATION_LIB:=$HERE/lib.sh}"
# shellcheck disable=SC1090
source "$INTEGRATION_LIB"
require_root

# Own address block (unless the caller picks one), so this test never
# collides with another world.
export WORLD_NET=${WORLD_NET:-10}
world_up

CONF=$WORLD_STATE/probe.conf
SPOOL=$WORLD_STATE/probe-spool-must-not-exist
cat > "$CONF" <<EOF
# danerelay.conf for test_probe.sh
myhostname = probe.$WORLD_TLD
spool_dir = $SPOOL
run_user =
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s
EOF

OUT=$WORLD_STATE/out
mkdir -p "$OUT"

# probe NAME DOMAIN: runs text and JSON probes; sets RC_T, RC_J.
probe() {
  local name=$1 dom=$2
  "$RELAY_BIN" probe -c "$CONF" "$dom" > "$OUT/$name.txt" 2> "$OUT/$name.err"
  RC_T=$?
  "$RELAY_BIN" probe -c "$CONF" --json "$dom" > "$OUT/$name.json" 2>> "$OUT/$name.err"
  RC_J=$?
  diag "probe $dom: exit $RC_T/$RC_J"
  diag "$(cat "$OUT/$name.txt")"
}

# jqt NAME FILTER: the filter must evaluate to true on NAME's JSON.
jqt() {
  local v
  v=$(jq -e "$2" "$OUT/$1.json" 2>&1) && [ "$v" = true ] && return 0
  echo "jq '$2' gave: $v"
  cat "$OUT/$1.json"
  return 1
}

eq() { [ "$1" = "$2" ] || { echo "expected '$2', got '$1'"; return 1; }; }

# --- usage
"$RELAY_BIN" probe -c "$CONF" > /dev/null 2>&1
check "probe without DOMAIN is a usage error (exit 2)" eq "$?" 2
"$RELAY_BIN" probe -c "$CONF" --bogus x.drworld > /dev/null 2>&1
check "probe with an unknown option is a usage error (exit 2)" eq "$?" 2

# --- dane-ee: allowed, authenticated by DANE-EE(3)
probe dane-ee "$WORLD_D_DANE_EE"
check "dane-ee: exit 0 (text)" eq "$RC_T" 0
check "dane-ee: exit 0 (json)" eq "$RC_J" 0
check "dane-ee: JSON is one valid object" jq -e 'type == "object"' "$OUT/dane-ee.json"
check "dane-ee: allowed, domain echoed" jqt dane-ee ".allowed == true and .domain == \"$WORLD_D_DANE_EE\""
check "dane-ee: MX set is secure" jqt dane-ee '.mx_dnssec == "secure"'
check "dane-ee: host is mx.dane-ee, address secure, $WORLD_MXCA_ADDR" \
  jqt dane-ee "(.hosts | length) == 1 and .hosts[0].name == \"mx.$WORLD_D_DANE_EE\" and .hosts[0].dnssec_addr == \"secure\" and (.hosts[0].addresses | index(\"${WORLD_MXCA_ADDR%:*}\")) != null"
check "dane-ee: secure TLSA 3 1 1 seen" \
  jqt dane-ee '.hosts[0].tlsa[0].dnssec == "secure" and (.hosts[0].tlsa[0].records[0] | startswith("3 1 1 "))'
check "dane-ee: verdict dane, connected, ok" \
  jqt dane-ee '.hosts[0].verdict == "dane" and .hosts[0].connected == true and .hosts[0].ok == true'
check "dane-ee: tls auth dane-ee, trust Verified, depth 0, matched 3 1 1" \
  jqt dane-ee '.hosts[0].tls.auth == "dane-ee" and .hosts[0].tls.trust == "Verified" and .hosts[0].tls.depth == 0 and (.hosts[0].tls.matched | startswith("3 1 1 "))'
check "dane-ee: peer SPKI SHA-256 is 64 hex digits and equals the TLSA data" \
  jqt dane-ee '(.hosts[0].tls.spki_sha256 | test("^[0-9a-f]{64}$")) and (.hosts[0].tlsa[0].records | map(ltrimstr("3 1 1 ")) | index(.[0])) != null and (.hosts[0].tlsa[0].records[0] | ltrimstr("3 1 1 ")) == .hosts[0].tls.spki_sha256'
check "dane-ee: text says allowed via mx.$WORLD_D_DANE_EE" \
  grep -q "^delivery allowed via mx\\.$WORLD_D_DANE_EE\\[" "$OUT/dane-ee.txt"
check "dane-ee: text shows tls=dane-ee" grep -q '^  tls: tls=dane-ee trust=Verified depth=0' "$OUT/dane-ee.txt"
check "dane-ee: text shows the verdict line" grep -q '^  verdict: .*verdict=dane' "$OUT/dane-ee.txt"
# The MX instance saw EHLO, STARTTLS, EHLO, QUIT and never MAIL (Postfix's
# per-session command counts).
check "dane-ee: the MX saw ehlo=2 starttls=1 quit=1 and no MAIL" \
  eval "wait_file_grep '$WORLD_MXCA_LOG' 'disconnect from .* ehlo=2 starttls=1 quit=1 commands=4\$' 10 &&
        ! grep 'disconnect from' '$WORLD_MXCA_LOG' | grep -q 'mail='"

# --- mismatch: CA-signed certificate, TLSA for another key
probe mismatch "$WORLD_D_MISMATCH"
check "mismatch: exit 1 (text)" eq "$RC_T" 1
check "mismatch: exit 1 (json)" eq "$RC_J" 1
check "mismatch: not allowed, class tlsa-mismatch, dsn 4.7.5" \
  jqt mismatch '.allowed == false and .failure_class == "tlsa-mismatch" and .dsn == "4.7.5"'
check "mismatch: verdict dane, connected, TLS not ok" \
  jqt mismatch '.hosts[0].verdict == "dane" and .hosts[0].connected == true and .hosts[0].ok == false and .hosts[0].tls.ok == false and .hosts[0].tls.matched == ""'
check "mismatch: host failure says tlsa-mismatch 4.7.5" \
  jqt mismatch '.hosts[0].failure_class == "tlsa-mismatch" and .hosts[0].dsn == "4.7.5"'
check "mismatch: text gives the reason" \
  grep -q '^delivery NOT allowed: class=tlsa-mismatch dsn=4.7.5' "$OUT/mismatch.txt"

# --- insecure: no DS, TLSA must be ignored, opportunistic TLS
probe insecure "$WORLD_D_INSECURE"
check "insecure: exit 0 (text)" eq "$RC_T" 0
check "insecure: exit 0 (json)" eq "$RC_J" 0
check "insecure: allowed, MX insecure" jqt insecure '.allowed == true and .mx_dnssec == "insecure"'
check "insecure: verdict may, no TLSA looked up, tls may/Untrusted" \
  jqt insecure '.hosts[0].verdict == "may" and (.hosts[0].tlsa | length) == 0 and .hosts[0].tls.auth == "may" and .hosts[0].ok == true'

# --- bogus-sig: expired RRSIGs, nothing may be contacted
probe bogus-sig "$WORLD_D_BOGUS_SIG"
check "bogus-sig: exit 1 (text)" eq "$RC_T" 1
check "bogus-sig: exit 1 (json)" eq "$RC_J" 1
check "bogus-sig: not allowed, dnssec-bogus, 4.7.5, MX bogus" \
  jqt bogus-sig '.allowed == false and .failure_class == "dnssec-bogus" and .dsn == "4.7.5" and .mx_dnssec == "bogus"'
check "bogus-sig: no connection made" \
  jqt bogus-sig '[.hosts[] | select(.connected)] | length == 0'
check "bogus-sig: text gives the reason" \
  grep -q '^delivery NOT allowed: class=dnssec-bogus dsn=4.7.5' "$OUT/bogus-sig.txt"

# --- notls: DANE domain whose MX offers no STARTTLS
probe notls "$WORLD_D_NOTLS"
check "notls: exit 1 (text)" eq "$RC_T" 1
check "notls: exit 1 (json)" eq "$RC_J" 1
check "notls: not allowed, starttls-missing, 4.7.5" \
  jqt notls '.allowed == false and .failure_class == "starttls-missing" and .dsn == "4.7.5"'
check "notls: verdict dane, connected, no TLS, not ok" \
  jqt notls '.hosts[0].verdict == "dane" and .hosts[0].connected == true and .hosts[0].tls == null and .hosts[0].ok == false'

# --- twomx: the first MX fails DANE, the probe moves on as serve does (C19)
probe twomx "$WORLD_D_TWOMX"
check "twomx: exit 0, allowed via the second MX" \
  jqt twomx ".allowed == true and .via == \"$WORLD_D_TWOMX_MX\" and (.hosts | length) == 2"
check "twomx: first MX tried and failed tlsa-mismatch, second ok with dane-ee" \
  jqt twomx '.hosts[0].connected and .hosts[0].ok == false and .hosts[0].failure_class == "tlsa-mismatch" and .hosts[1].ok and .hosts[1].tls.auth == "dane-ee"'

# --- none: a tls_policy_file `none` entry, cleartext without STARTTLS. The
# probe stops once EHLO is done, as the delivery session would be ready for
# MAIL there, and says QUIT.
POL=$WORLD_STATE/probe-tls-policy
echo "$WORLD_D_INSECURE none" > "$POL"
{ cat "$CONF"; echo "tls_policy_file = $POL"; } > "$WORLD_STATE/probe-none.conf"
"$RELAY_BIN" probe -c "$WORLD_STATE/probe-none.conf" --json "$WORLD_D_INSECURE" \
  > "$OUT/none.json" 2> "$OUT/none.err"
RC_N=$?
diag "probe with a none entry: exit $RC_N"
check "none: exit 0" eq "$RC_N" 0
check "none: allowed in cleartext, no TLS tried" \
  jqt none '.allowed == true and .cleartext_allowed == true and .hosts[0].tls == null and .hosts[0].ok == true'
check "none: the MX saw ehlo=1 quit=1 only (no STARTTLS, no MAIL)" \
  wait_file_grep "$WORLD_MXSELF_LOG" 'disconnect from .* ehlo=1 quit=1 commands=2$' 10

# Every session above stopped before MAIL, whatever its outcome.
check "no probe sent MAIL to any MX" \
  bash -c "! cat '$WORLD_MXCA_LOG' '$WORLD_MXSELF_LOG' '$WORLD_MXNOTLS_LOG' | grep 'disconnect from' | grep -q 'mail='"

# --- temporary failures: the world's DNS moved to a closed loopback port
# (discard, 9: nothing listens there), same trust anchor.
NODNS_UB=$WORLD_STATE/unbound-closed.conf
sed -E 's/^( *stub-addr: [0-9.]+)@[0-9]+$/\1@9/' "$WORLD_UNBOUND_CONF" > "$NODNS_UB"
check "no DNS: the resolver file points every zone at port 9" \
  bash -c "grep -q 'stub-addr: .*@9\$' '$NODNS_UB' && ! grep 'stub-addr:' '$NODNS_UB' | grep -qv '@9\$'"
sed "s|^dns_resolver_config = .*|dns_resolver_config = $NODNS_UB|" "$CONF" > "$WORLD_STATE/probe-nodns.conf"
sed 's|^dns_resolver_config = .*|&\ntls_security_level = may|' "$WORLD_STATE/probe-nodns.conf" \
  > "$WORLD_STATE/probe-nodns-may.conf"
"$RELAY_BIN" probe -c "$WORLD_STATE/probe-nodns.conf" --json "$WORLD_D_DANE_EE" \
  > "$OUT/nodns.json" 2> "$OUT/nodns.log"
RC_N=$?
diag "probe with no DNS (dane): exit $RC_N"
check "no DNS, dane: exit 3 (temporary failure)" eq "$RC_N" 3
check "no DNS, dane: not allowed, self-test failing, 4.7.5" \
  jqt nodns '.allowed == false and .failure_class == "dnssec-selftest" and .dsn == "4.7.5"'
"$RELAY_BIN" probe -c "$WORLD_STATE/probe-nodns-may.conf" --json "$WORLD_D_DANE_EE" \
  > "$OUT/nodns-may.json" 2> "$OUT/nodns-may.log"
RC_N=$?
diag "probe with no DNS (may): exit $RC_N"
check "no DNS, may: exit 3 (temporary failure)" eq "$RC_N" 3
check "no DNS, may: not allowed, the MX lookup failed" \
  jqt nodns-may '.allowed == false and .failure_class == "dns-lookup"'

# --- the text output streams: each step is on stdout (a file here, not a
# terminal) as soon as it is known. A server at faultdane1's MX address
# (TLSA 3 1 1: STARTTLS required) greets, answers EHLO and then holds the
# STARTTLS reply until told to go on: meanwhile the DNS lines, the verdict
# and the connect line must already be there, and the final line not yet.
STALL_ADDR=$WORLD_FAULT_DANE_NET.1
rm -f "$OUT/stall.started" "$OUT/stall.release"
start_bg stall-server python3 -c '
import os, socket, sys, time
addr, started, release = sys.argv[1:]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, 25)); ls.listen(1)
open(started + ".listening", "w").close()
c, _ = ls.accept()
f = c.makefile("rb")
c.sendall(b"220 mx.faultdane1 ESMTP stall\r\n")
f.readline()
c.sendall(b"250-mx.faultdane1\r\n250 STARTTLS\r\n")
f.readline()
open(started, "w").close()
end = time.time() + 60
while not os.path.exists(release) and time.time() < end:
    time.sleep(0.05)
c.close()' "$STALL_ADDR" "$OUT/stall.started" "$OUT/stall.release"
wait_file() { local _i; for _i in $(seq $(($2 * 10))); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
check "stall server listens on $STALL_ADDR:25" wait_file "$OUT/stall.started.listening" 10
"$RELAY_BIN" probe -c "$CONF" "faultdane1.$WORLD_TLD" > "$OUT/stream.txt" 2> "$OUT/stream.err" &
STREAM_PID=$!
check "streaming: the probe reached STARTTLS (the server holds its reply)" \
  wait_file "$OUT/stall.started" 30
sleep 0.5
diag "output while the server stalls:"
diag "$(cat "$OUT/stream.txt")"
has_line() { grep -qE -- "$1" "$OUT/stream.txt" || { echo "no line matching $1"; return 1; }; }
check "streaming: header and MX lines are out before the stall ends" \
  eval "has_line '^domain faultdane1\\.$WORLD_TLD policy=dane ' && has_line '^mx dnssec=secure kind=hosts hosts=1\$'"
check "streaming: the host's addresses, TLSA and verdict are out" \
  eval "has_line '^host 10 mx\\.faultdane1\\.$WORLD_TLD addr_dnssec=secure addresses=${STALL_ADDR//./\\.}\$' &&
        has_line '^  tlsa _25\\._tcp\\.mx\\.faultdane1\\.$WORLD_TLD dnssec=secure answer=data\$' &&
        has_line '^  verdict: .*verdict=dane'"
check "streaming: the connect line is out" has_line "^  connect ${STALL_ADDR//./\\.}:25: connected\$"
check "streaming: no outcome yet" bash -c "! grep -q '^delivery' '$OUT/stream.txt'"
touch "$OUT/stall.release"
wait "$STREAM_PID"
RC_S=$?
diag "$(cat "$OUT/stream.txt")"
check "streaming: after the stall the probe ends, not allowed (exit 3, temporary)" \
  eval "[ $RC_S = 3 ] && has_line '^  result: failed ' && has_line '^delivery NOT allowed: '"
check "streaming: every line appears once" \
  bash -c "[ -z \"\$(sort '$OUT/stream.txt' | uniq -d)\" ]"

# --- clean exits: nothing on stderr (no sanitizer report, no leaked handle)
check "every probe left stderr empty (no ASan/UBSan report, no open handle)" \
  bash -c "! grep -H . '$OUT'/*.err"

# --- the probe never touches the spool
check "probe created no spool directory" test ! -e "$SPOOL"

world_down >&2 || not_ok "world down"
tap_done
