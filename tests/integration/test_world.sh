#!/usr/bin/env bash
# Integration test of the test world itself: DNSSEC status of
# every fixture through libunbound, the MX instances' certificates against the
# TLSA records the resolver returns (OpenSSL's own DANE check), SMTP and
# STARTTLS behaviour, Maildir delivery, the upstream MTA's relayhost, and a
# teardown that leaves no process behind.
#
#   test_world.sh DNSCHECK         (env: WORLD_SH, INTEGRATION_LIB)
set -uo pipefail
export DNSCHECK=${1:?usage: test_world.sh DNSCHECK}
: "${INTEGRATION_LIB:=$(dirname "$0")/lib.sh}"
: "${WORLD_SH:=$(dirname "$0")/../world/world.sh}"
# shellcheck source=lib.sh
source "$INTEGRATION_LIB"

require_root
t0=$SECONDS
# shellcheck disable=SC2119  # world_up takes extra world.sh options; none here
world_up
ok "world up ($((SECONDS - t0))s)"
T=$WORLD_TLD

# --- DNS through libunbound ----------------------------------------------------

# expect_dns NAME TYPE STATUS RCODE [ANSWER-ERE]
expect_dns() {
  local name=$1 type=$2 st=$3 rc=$4 want=${5:-} out
  if ! out=$(dns "$name" "$type" 2>&1); then
    not_ok "dns $name $type: dnscheck failed"; diag "$out"; return
  fi
  if grep -qx "status=$st" <<< "$out" && grep -qx "rcode=$rc" <<< "$out" &&
     { [ -z "$want" ] || grep -qE "^answer=\"$want\"\$" <<< "$out"; }; then
    ok "dns $name $type is $st $rc${want:+ (${want//\\/})}"
  else
    not_ok "dns $name $type: want $st $rc${want:+ $want}"; diag "$out"
  fi
}

expect_dns "$WORLD_SELFTEST_NAME" "$WORLD_SELFTEST_TYPE" secure NOERROR '127\.0\.0\.1'
expect_dns . SOA secure NOERROR
expect_dns "$WORLD_NXDOMAIN" A secure NXDOMAIN

for f in DANE_EE DANE_TA MISMATCH NOTLS EXPIRED SENDER TLSA_BOGUS TLSA_SERVFAIL; do
  d=WORLD_D_$f; mx=WORLD_D_${f}_MX
  expect_dns "${!d}" MX secure NOERROR "10 ${!mx//./\\.}\\."
  expect_dns "${!mx}" A secure NOERROR "127\\.${WORLD_NET:-0}\\.[0-9]+\\.[0-9]+"
done
for f in DANE_EE MISMATCH NOTLS EXPIRED SENDER; do
  mx=WORLD_D_${f}_MX
  expect_dns "_25._tcp.${!mx}" TLSA secure NOERROR '3 1 1 [0-9a-f]{64}'
done
expect_dns "_25._tcp.$WORLD_D_DANE_TA_MX" TLSA secure NOERROR '2 0 1 [0-9a-f]{64}'
expect_dns "$WORLD_D_TWOMX" MX secure NOERROR "10 mx1\\.twomx\\.$T\\."
expect_dns "$WORLD_D_TWOMX" MX secure NOERROR "20 mx2\\.twomx\\.$T\\."
expect_dns "_25._tcp.mx1.twomx.$T" TLSA secure NOERROR '3 1 1 [0-9a-f]{64}'
expect_dns "_25._tcp.mx2.twomx.$T" TLSA secure NOERROR '3 1 1 [0-9a-f]{64}'
expect_dns "$WORLD_D_NULLMX" MX secure NOERROR '0 \.'
expect_dns "$WORLD_D_NOMX" MX secure NOERROR
expect_dns "$WORLD_D_NOMX" A secure NOERROR "127\\.${WORLD_NET:-0}\\.10\\.1"
expect_dns "_25._tcp.$WORLD_D_NOMX" TLSA secure NOERROR '3 1 1 [0-9a-f]{64}'
# Unsigned child of a signed parent (NSEC proves no DS).
expect_dns "$WORLD_D_INSECURE" MX insecure NOERROR "10 mx\\.insecure\\.$T\\."
expect_dns "$WORLD_D_INSECURE_MX" A insecure NOERROR
expect_dns "_25._tcp.$WORLD_D_INSECURE_MX" TLSA insecure NOERROR
# Bogus zones: data present, rcode NOERROR, only the flag says bogus.
expect_dns "$WORLD_D_BOGUS_SIG" MX bogus NOERROR
expect_dns "_25._tcp.$WORLD_D_BOGUS_SIG_MX" TLSA bogus NOERROR
expect_dns "$WORLD_D_BOGUS_DS" MX bogus NOERROR
expect_dns "$WORLD_D_BOGUS_DS_MX" A bogus NOERROR
expect_dns "_25._tcp.$WORLD_D_TLSA_BOGUS_MX" TLSA bogus NOERROR
expect_dns "_25._tcp.$WORLD_D_TLSA_SERVFAIL_MX" TLSA insecure SERVFAIL

# --- certificates against the TLSA records (OpenSSL's DANE verifier) -----------

# dane_verify MXHOST ADDR: the TLSA RRset of MXHOST, fetched through libunbound,
# checked by `openssl s_client` against the server's STARTTLS certificate.
dane_verify() {
  local host=$1 addr=$2 out args=() rr
  out=$(dns "_25._tcp.$host" TLSA) || return 2
  while IFS= read -r rr; do
    rr=${rr#answer=\"}; args+=(-dane_tlsa_rrdata "${rr%\"}")
  done < <(grep '^answer=' <<< "$out")
  [ ${#args[@]} -gt 0 ] || { echo "no TLSA for $host"; return 2; }
  timeout 10 openssl s_client -brief -starttls smtp -connect "$addr:25" \
    -name "$host" -dane_tlsa_domain "$host" "${args[@]}" -verify_return_error \
    < /dev/null 2>&1
}
expect_dane() {  # pass|fail MXHOST ADDR
  local out rc
  out=$(dane_verify "$2" "$3"); rc=$?
  if [ "$1" = pass ] && [ $rc = 0 ] && grep -q 'Verification: OK' <<< "$out"; then
    ok "DANE verification of $2 at $3 passes"
  elif [ "$1" = fail ] && [ $rc = 1 ]; then
    ok "DANE verification of $2 at $3 fails as designed"
  else
    not_ok "DANE verification of $2 at $3: want $1, exit $rc"; diag "$out"
  fi
}
expect_dane pass "$WORLD_D_DANE_EE_MX" "$WORLD_MXCA_ADDR"
expect_dane pass "$WORLD_D_DANE_TA_MX" "$WORLD_MXCA_ADDR"
expect_dane fail "$WORLD_D_MISMATCH_MX" "$WORLD_MXCA_ADDR"
expect_dane pass "$WORLD_D_SENDER_MX" "$WORLD_MXCA_ADDR"
expect_dane pass "$WORLD_D_NOMX" "$WORLD_MXCA_ADDR"
expect_dane fail "$WORLD_D_TWOMX_MX1" "$WORLD_MXSELF_ADDR"
expect_dane pass "$WORLD_D_TWOMX_MX" "$WORLD_MXCA_ADDR"
expect_dane pass "$WORLD_D_EXPIRED_MX" "$WORLD_MXEXPIRED_ADDR"

peer_cert() {  # ADDR: the server's leaf certificate (PEM)
  timeout 10 openssl s_client -starttls smtp -connect "$1:25" < /dev/null 2>/dev/null |
    openssl x509
}
# shellcheck disable=SC2016  # $1 and $2 belong to the inner bash
check "mismatch MX presents a certificate the test CA signed" \
  bash -c 'openssl verify -CAfile "$1" -purpose sslserver <(echo "$2")' _ \
  "$WORLD_CA_CERT" "$(peer_cert "$WORLD_MXCA_ADDR")"
# shellcheck disable=SC2016  # $1 and $2 belong to the inner bash
check "expired MX presents an expired certificate" \
  bash -c '! openssl x509 -noout -checkend 0 <<< "$1"' _ "$(peer_cert "$WORLD_MXEXPIRED_ADDR")"
# shellcheck disable=SC2016  # $1 and $2 belong to the inner bash
check "insecure MX presents a self-signed certificate" \
  bash -c 'openssl verify -CAfile <(echo "$1") -partial_chain <(echo "$1")' _ \
  "$(peer_cert "$WORLD_MXSELF_ADDR")"

# --- SMTP and STARTTLS ----------------------------------------------------------

for n in $WORLD_MX_INSTANCES; do
  U=${n^^}; addrv=WORLD_${U}_ADDR
  caps=$(ehlo_lines "${!addrv}" 25) || { not_ok "$n answers EHLO on ${!addrv}:25"; continue; }
  ok "$n answers EHLO on ${!addrv}:25"
  if [ "$n" = mxnotls ]; then
    if grep -q STARTTLS <<< "$caps"; then not_ok "$n offers no STARTTLS"; diag "$caps"
    else ok "$n offers no STARTTLS"; fi
  else
    if grep -q '^250.STARTTLS' <<< "$caps"; then ok "$n offers STARTTLS"
    else not_ok "$n offers STARTTLS"; diag "$caps"; fi
  fi
done

msg=$(mktemp)
deliver_plain() {  # FIXTURE ADDR
  local d=WORLD_D_$1 md=WORLD_D_$1_MAILDIR subj="plain-$1-$$"
  make_message "$WORLD_SENDER" "user@${!d}" "$subj" > "$msg"
  if ! out=$(smtp_send "$2" 25 "$WORLD_SENDER" "user@${!d}" "$msg" 2>&1); then
    not_ok "SMTP to $2 for ${!d} accepted"; diag "$out"; return
  fi
  if wait_maildir "${!md}" "^Subject: $subj" 20 > /dev/null; then
    ok "message for ${!d} sent to $2 lands in ${!md}"
  else
    not_ok "message for ${!d} sent to $2 lands in ${!md}"
  fi
}
deliver_plain DANE_EE "$WORLD_MXCA_ADDR"
deliver_plain INSECURE "$WORLD_MXSELF_ADDR"
deliver_plain NOTLS "$WORLD_MXNOTLS_ADDR"
deliver_plain EXPIRED "$WORLD_MXEXPIRED_ADDR"
deliver_plain SENDER "$WORLD_MXCA_ADDR"

subj="starttls-$$"
make_message "$WORLD_SENDER" "user@$WORLD_D_DANE_EE" "$subj" > "$msg"
if out=$(smtps_send "$WORLD_MXCA_ADDR" 25 "$WORLD_SENDER" "user@$WORLD_D_DANE_EE" "$msg" 2>&1) &&
   f=$(wait_maildir "$WORLD_D_DANE_EE_MAILDIR" "^Subject: $subj" 20) &&
   grep -q '(using TLSv1' "$f"; then
  ok "message over STARTTLS to mxca lands in its Maildir with a TLS Received header"
else
  not_ok "message over STARTTLS to mxca lands in its Maildir with a TLS Received header"
  diag "$out"
fi

make_message "$WORLD_SENDER" "user@elsewhere.invalid" "relay-$$" > "$msg"
if out=$(smtp_send "$WORLD_MXCA_ADDR" 25 "$WORLD_SENDER" "user@elsewhere.invalid" "$msg" 2>&1); then
  not_ok "an MX refuses to relay for other domains"; diag "$out"
elif grep -q '> 554 5\.7\.1' <<< "$out"; then
  ok "an MX refuses to relay for other domains"
else
  not_ok "an MX refuses to relay for other domains (want 554)"; diag "$out"
fi

# --- the upstream MTA relays to RELAY_ADDR --------------------------------------

sink=$WORLD_STATE/relay-sink
mkdir -p "$sink"; chmod 777 "$sink"
start_bg smtp-sink smtp-sink -u nobody -d "$sink/%Y%m%d%H%M%S." "$WORLD_RELAY_ADDR" 10
sleep 0.3
subj="upstream-smtp-$$"
if submit "$WORLD_SENDER" "user@$WORLD_D_DANE_EE" "$subj" &&
   wait_dir_grep "$sink" "^Subject: $subj" 20 > /dev/null; then
  ok "upstream accepts SMTP on $WORLD_UPSTREAM_ADDR and relays to $WORLD_RELAY_ADDR"
else
  not_ok "upstream accepts SMTP on $WORLD_UPSTREAM_ADDR and relays to $WORLD_RELAY_ADDR"
  diag "$(tail -5 "$WORLD_UPSTREAM_LOG")"
fi
subj="upstream-sendmail-$$"
make_message "$WORLD_SENDER" "user@$WORLD_D_TWOMX" "$subj" |
  $WORLD_UPSTREAM_SENDMAIL -f "$WORLD_SENDER" "user@$WORLD_D_TWOMX"
if wait_dir_grep "$sink" "^Subject: $subj" 20 > /dev/null; then
  ok "upstream sendmail -C submission is relayed to $WORLD_RELAY_ADDR"
else
  not_ok "upstream sendmail -C submission is relayed to $WORLD_RELAY_ADDR"
  diag "$(tail -5 "$WORLD_UPSTREAM_LOG")"
fi
check "upstream log records delivery via relay=$WORLD_RELAY_HOST:$WORLD_RELAY_PORT" \
  grep -qE "relay=$WORLD_RELAY_HOST\\[$WORLD_RELAY_HOST\\]:$WORLD_RELAY_PORT, .*status=sent" \
  "$WORLD_UPSTREAM_LOG"
rm -f "$msg"

# --- teardown --------------------------------------------------------------------

procs=$(cat "$WORLD_STATE/run/procs")
if world_down; then ok "world down"; else not_ok "world down"; fi
left=
while read -r name pid _; do
  [ -d "/proc/$pid" ] && left+=" $name($pid)"
  # Children of each daemon live in its session.
  s=$(ps -e -o sid= | awk -v s="$pid" '$1 == s' | wc -l)
  [ "$s" = 0 ] || left+=" session-of-$name($s)"
done <<< "$procs"
if [ -z "$left" ]; then ok "no world process left after down"
else not_ok "no world process left after down:$left"; fi
busy=$(ss -H -ltn | awk '{ print $4 }' | grep -E "^127\\.${WORLD_NET:-0}\\.(10|20)\\.[0-9]+:25\$" || true)
busy+=$(ss -H -lun | awk '{ print $4 }' | grep -F "$WORLD_DNS_ADDR:$WORLD_DNS_PORT" || true)
if [ -z "$busy" ]; then ok "no world listener left after down"
else not_ok "no world listener left after down"; diag "$busy"; fi

tap_done
