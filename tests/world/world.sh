#!/usr/bin/env bash
# The danerelay test world: a private DNSSEC-signed DNS tree served by NSD and
# real Postfix instances (MX servers and an upstream MTA), all on loopback.
#
#   world.sh up DIR [--bench]   build and start everything under state dir DIR,
#                               then write DIR/world.env and DIR/unbound.conf
#   world.sh down DIR           stop every process `up` started for DIR
#   world.sh status DIR         list the world's processes; exit 1 if none runs
#   world.sh tlsa DIR HOST TTL RDATA [ok|expired|badsig]
#                               set the TLSA RRset at _25._tcp.HOST (RDATA
#                               "U S M HEX", or "none" to remove it) with TTL,
#                               re-sign its zone with the zone's key, reload
#                               NSD and wait until it serves the new serial.
#                               expired/badsig: that TLSA RRSIG only is expired
#                               or corrupted (everything else stays secure)
#   world.sh rr DIR OWNER TYPE TTL RDATA|none
#                               replace the TYPE RRset at OWNER (A, AAAA, MX,
#                               TLSA, CNAME, TXT; several records separated
#                               by "|"), re-sign and reload as for tlsa
#   world.sh unds DIR CHILD     remove the DS of zone CHILD from its parent
#                               and re-sign the parent: CHILD turns insecure
#
# Environment at `up`: RELAY_ADDR=host:port (IPv4; where the upstream Postfix
# relays to, default 127.0.0.1:10026), WORLD_DNS_PORT (default 10053).
# Needs root (loopback aliases, Postfix, NSD). See README.md for the layout.
set -euo pipefail
umask 022

TLD=drworld
# WORLD_NET (0..255, default 0) is the second octet of every address, so
# several worlds (CI, benchmarks, reliability runs) can live side by side.
NET=${WORLD_NET:-0}
case $NET in ''|*[!0-9]*) echo "world: WORLD_NET must be 0..255" >&2; exit 2 ;; esac
[ "$NET" -le 255 ] || { echo "world: WORLD_NET must be 0..255" >&2; exit 2; }
DNS_ADDR=127.$NET.53.1
DNS_PORT=${WORLD_DNS_PORT:-10053}
UPSTREAM_ADDR=127.$NET.20.1
# Where tests run an HTTPS receiver of TLS reports (tlsrpt.$TLD); world.sh
# starts nothing there.
TLSRPT_ADDR=127.$NET.31.1
RELAY_ADDR=${RELAY_ADDR:-127.$NET.0.1:10026}

# IDN fixtures (in the $TLD zone, served to mxca): bücher (DANE-EE) and
# café (DANE-TA, certificate naming the next-hop only). A-labels computed
# with `idn2 -N`.
IDN_EE_ULABEL=bücher IDN_EE_ALABEL=xn--bcher-kva
IDN_TA_ULABEL=café IDN_TA_ALABEL=xn--caf-dma

# Fault fixtures (tests/reliability): faultN.$TLD and faultdaneN.$TLD.
FAULT_COUNT=40
FAULT_DANE_COUNT=8

# MX instances: name, address, TLS behaviour.
#   mxca      certificate from the test CA (leaf + CA in the chain)
#   mxself    self-signed certificate
#   mxnotls   no STARTTLS at all
#   mxexpired expired leaf from the test CA (leaf + CA in the chain)
#   mxsink    (--bench) test-CA leaf, discards everything it accepts
declare -A MX_ADDR=(
  [mxca]=127.$NET.10.1 [mxself]=127.$NET.10.2 [mxnotls]=127.$NET.10.3
  [mxexpired]=127.$NET.10.4 [mxsink]=127.$NET.10.5
)

# MTA-STS (RFC 8461) fixtures, all in the $TLD zone (secure, no TLSA unless
# said): "name mx-instance policy-host id". policy-host "up" points
# mta-sts.NAME at the HTTPS server (tests/world/mtasts_https.py, port 443
# of $STS_HTTPS_ADDR, certificate from the test CA, policies in
# DIR/mta-sts/mta-sts.NAME.txt), "dead" at an address where nothing listens.
#   sts-enforce   enforce, mx *.sts-enforce: delivered, verified (mxca)
#   sts-testing   testing: delivered as before (mxself, self-signed)
#   sts-mismatch  enforce, mx "*.$TLD" (one label only: no match) and
#                 mx.elsewhere: refused, sts-mx-mismatch
#   sts-badcert   enforce, MX mxself (self-signed): sts-certificate
#   sts-down      TXT, but no policy server: opportunistic (RFC 8461 3.3)
#   sts-cached    as sts-down, TXT id 2; tests seed a cached policy
#   sts-id        TXT id 2, served policy enforce with its MX; tests seed
#                 an older cached policy (id 1) that matches no MX
#   sts-dane      TLSA 3 1 1 of mxca and an enforce policy naming another
#                 MX: DANE decides alone
#   sts-bogus     the TXT record's RRSIG does not match (bogus)
STS_FIXTURES=(
  "sts-enforce mxca up 1" "sts-testing mxself up 1" "sts-mismatch mxca up 1"
  "sts-badcert mxself up 1" "sts-down mxca dead 1" "sts-cached mxca dead 2"
  "sts-id mxca up 2" "sts-dane mxca up 1" "sts-bogus mxca up 1"
)
STS_HTTPS_ADDR=127.$NET.30.1
STS_DEAD_ADDR=127.$NET.30.2
# REQUIRETLS (RFC 8689) under MTA-STS: mx.sts-rtls.$TLD (secure, no TLSA,
# the mxca key and a test-CA certificate naming it) is at STS_RTLS_ADDR,
# where no Postfix listens: tests start a peer that offers REQUIRETLS
# after STARTTLS there (a second danerelay). Its domains, each with an
# MTA-STS policy naming that host:
#   sts-rtls.$TLD            secure MX RRset, enforce
#   rtls.insecure.$TLD       MX RRset in the unsigned zone, enforce
#   rtlstest.insecure.$TLD   MX RRset in the unsigned zone, testing
STS_RTLS_ADDR=127.$NET.30.3
STS_RTLS_POLICIES=("sts-rtls enforce" "rtls.insecure enforce"
  "rtlstest.insecure testing")

log() { echo "world: $*" >&2; }
dbg() { [ -z "${WORLD_DEBUG:-}" ] || echo "world: [$EPOCHREALTIME] $*" >&2; }
die() { echo "world: error: $*" >&2; exit 1; }

usage() {
  echo "usage: world.sh up DIR [--bench] | down DIR | status DIR" >&2
  echo "       world.sh tlsa DIR HOST TTL RDATA|none [ok|expired|badsig]" >&2
  echo "       world.sh rr DIR OWNER TYPE TTL RDATA|none | unds DIR CHILD" >&2
  exit 2
}

# --- process bookkeeping -----------------------------------------------------
# DIR/run/procs lists "name pid marker" for every daemon `up` started; marker
# is a string that must appear in /proc/PID/cmdline, /proc/PID/environ or
# among its open files, so a recycled pid is never signalled.

proc_is_ours() {  # PID MARKER
  local pid=$1 marker=$2
  [ -d "/proc/$pid" ] || return 1
  # NSD rewrites its title, so open files count too (its log file).
  # (Captured first: `grep -q` in a pipeline trips pipefail with SIGPIPE.)
  local info
  info=$({ tr '\0' '\n' < "/proc/$pid/cmdline"; tr '\0' '\n' < "/proc/$pid/environ"
    find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n'; } 2>/dev/null) || true
  grep -qxF -- "$marker" <<< "$info"
}

session_pids() {  # SID: pids of the processes in that session
  ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
}

stop_one() {  # NAME PID MARKER: TERM the daemon and its session, then KILL
  local name=$1 pid=$2 marker=$3 sid i p
  proc_is_ours "$pid" "$marker" || return 0
  sid=$(ps -o sid= -p "$pid" | tr -d ' ')
  # Only a daemon that leads its own session (Postfix master, NSD) has its
  # session swept; otherwise just the pid itself.
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    if [ "$sid" = "$pid" ]; then
      [ -z "$(session_pids "$sid")" ] && return 0
    else
      [ -d "/proc/$pid" ] || return 0
    fi
    sleep 0.1
  done
  log "$name did not stop on SIGTERM; sending SIGKILL"
  if [ "$sid" = "$pid" ]; then
    for p in $(session_pids "$sid"); do kill -KILL "$p" 2>/dev/null || true; done
  else
    kill -KILL "$pid" 2>/dev/null || true
  fi
  sleep 0.2
}

do_down() {
  local dir=$1 name pid marker
  [ -f "$dir/run/procs" ] || return 0
  # Stop in parallel: Postfix masters take up to a second each.
  while read -r name pid marker; do
    stop_one "$name" "$pid" "$marker" &
  done < "$dir/run/procs"
  wait
  # Anything still alive is an error the caller must see.
  local left=0
  while read -r name pid marker; do
    if proc_is_ours "$pid" "$marker"; then
      log "$name (pid $pid) still running"; left=1
    fi
  done < "$dir/run/procs"
  [ $left = 0 ] || return 1
  mv "$dir/run/procs" "$dir/run/procs.stopped"
}

do_status() {
  local dir=$1 name pid marker n=0
  [ -f "$dir/run/procs" ] || { echo "no world running in $dir"; return 1; }
  while read -r name pid marker; do
    if proc_is_ours "$pid" "$marker"; then
      echo "$name pid=$pid running"; n=$((n + 1))
    else
      echo "$name pid=$pid NOT running"
    fi
  done < "$dir/run/procs"
  [ $n -gt 0 ]
}

# --- helpers for `up` ----------------------------------------------------------

add_alias() {  # ADDR: a loopback alias, idempotent
  local have
  have=$(ip -4 -o addr show dev lo)
  grep -qF " $1/" <<< "$have" && return 0
  ip addr add "$1/8" dev lo
}

port_busy() {  # ADDR PORT PROTO(t|u): is something bound there (or on 0.0.0.0)?
  local socks
  socks=$(ss -H -n -l"$3" "sport = :$2" | awk '{ print $4 }')
  grep -qE "^(${1//./\\.}|0\.0\.0\.0|\*|\[::\]):$2\$" <<< "$socks"
}

# SHA-256 of a key's SubjectPublicKeyInfo (TLSA x 1 1) and of a certificate (x 0 1).
spki_sha256() { openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }
cert_sha256() { openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }

gen_pki() {  # DIR/pki: test CA, leaves, self-signed, expired, spare key
  local p=$1/pki
  mkdir -p "$p"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$p/ca.key" -out "$p/ca.pem" -days 3650 \
    -subj "/O=danerelay test world/CN=danerelay world test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

  # Leaf for mxca and mxsink: every MX host name served with this key.
  local san="DNS:mx.dane-ee.$TLD,DNS:mx.dane-ta.$TLD,DNS:mx.mismatch.$TLD"
  san+=",DNS:mx.bogus-sig.$TLD,DNS:mx.bogus-ds.$TLD,DNS:mx2.twomx.$TLD"
  san+=",DNS:mx.sender.$TLD,DNS:mx.tlsa-bogus.$TLD,DNS:mx.tlsa-servfail.$TLD"
  san+=",DNS:nomx.$TLD,DNS:mx.bench.$TLD,DNS:mx.sts-rtls.$TLD"
  # The HTTPS receiver of TLS reports that tests run (RFC 8460 5.2).
  san+=",DNS:tlsrpt.$TLD"
  local fx sname sinst
  for fx in "${STS_FIXTURES[@]}"; do
    read -r sname sinst _ <<< "$fx"
    [ "$sinst" = mxca ] && san+=",DNS:mx.$sname.$TLD"
  done
  # IDN fixture: the A-label next-hop only (not its MX host), so DANE-TA
  # name checks pass only by the next-hop reference identifier.
  san+=",DNS:$IDN_TA_ALABEL.$TLD"
  cat > "$p/leaf.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
EOF
  openssl req -new "${ec[@]}" -keyout "$p/mx.key" -out "$p/mx.csr" \
    -subj "/O=danerelay test world/CN=mx.dane-ee.$TLD" 2>/dev/null
  openssl x509 -req -in "$p/mx.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" \
    -set_serial 0x1001 -days 825 -sha256 -extfile "$p/leaf.ext" \
    -out "$p/mx.pem" 2>/dev/null
  cat "$p/mx.pem" "$p/ca.pem" > "$p/mx-chain.pem"

  # Expired leaf from the same CA, via `openssl ca` for explicit past dates.
  mkdir -p "$p/ca-db"
  : > "$p/ca-db/index.txt"
  echo 2001 > "$p/ca-db/serial"
  cat > "$p/ca.cnf" <<EOF
[ca]
default_ca = world_ca
[world_ca]
dir = $p/ca-db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
organizationName = optional
EOF
  cat > "$p/expired.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:mx.expired.$TLD
EOF
  openssl req -new "${ec[@]}" -keyout "$p/expired.key" -out "$p/expired.csr" \
    -subj "/O=danerelay test world/CN=mx.expired.$TLD" 2>/dev/null
  openssl ca -batch -config "$p/ca.cnf" -cert "$p/ca.pem" -keyfile "$p/ca.key" \
    -in "$p/expired.csr" -out "$p/expired.pem" -notext \
    -startdate 20200101000000Z -enddate 20200201000000Z \
    -extfile "$p/expired.ext" 2>/dev/null
  cat "$p/expired.pem" "$p/ca.pem" > "$p/expired-chain.pem"

  # Self-signed, for the unsigned (insecure) zone and the failing twomx host.
  openssl req -x509 "${ec[@]}" -keyout "$p/self.key" -out "$p/self.pem" -days 3650 \
    -subj "/CN=mx.insecure.$TLD" \
    -addext "subjectAltName=DNS:mx.insecure.$TLD,DNS:mx1.twomx.$TLD" 2>/dev/null

  # The MTA-STS policy server: one test-CA leaf for every mta-sts.* host.
  local ssan=""
  for fx in "${STS_FIXTURES[@]}"; do
    read -r sname _ <<< "$fx"
    ssan+="${ssan:+,}DNS:mta-sts.$sname.$TLD"
  done
  for fx in "${STS_RTLS_POLICIES[@]}"; do
    read -r sname _ <<< "$fx"
    ssan+=",DNS:mta-sts.$sname.$TLD"
  done
  printf '%s\n' "basicConstraints = critical,CA:FALSE" \
    "keyUsage = critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage = serverAuth" "subjectAltName = $ssan" > "$p/sts.ext"
  openssl req -new "${ec[@]}" -keyout "$p/sts.key" -out "$p/sts.csr" \
    -subj "/O=danerelay test world/CN=mta-sts.sts-enforce.$TLD" 2>/dev/null
  openssl x509 -req -in "$p/sts.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" \
    -set_serial 0x1002 -days 825 -sha256 -extfile "$p/sts.ext" \
    -out "$p/sts.pem" 2>/dev/null
  cat "$p/sts.pem" "$p/ca.pem" > "$p/sts-chain.pem"

  # A key no server uses: TLSA records that must never match.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/other.key"

  chmod 600 "$p"/*.key
  H_MX=$(spki_sha256 "$p/mx.key")
  H_EXP=$(spki_sha256 "$p/expired.key")
  H_OTHER=$(spki_sha256 "$p/other.key")
  H_CA=$(cert_sha256 "$p/ca.pem")
}

# --- DNS -------------------------------------------------------------------------

keygen() {  # ZONE KEYDIR: prints the key base path (one CSK, flags 257)
  local base
  base=$(cd "$2" && ldns-keygen -a ECDSAP256SHA256 -k "$1")
  echo "$2/$base"
}

ds_of() {  # KEYBASE: DS record line (SHA-256)
  ldns-key2ds -n -2 "$1.key"
}

zone_head() {  # ORIGIN FILE
  cat > "$2" <<EOF
\$TTL 300
$1 IN SOA ns.$TLD. hostmaster.$TLD. 1 3600 600 86400 60
$1 IN NS ns.$TLD.
EOF
}

sign() {  # ZONEFILE ORIGIN KEYBASE [INCEPTION EXPIRATION]
  local inc=${4:-$(date -u -d '-1 hour' +%Y%m%d%H%M%S)}
  local exp=${5:-$(date -u -d '+30 days' +%Y%m%d%H%M%S)}
  ldns-signzone -i "$inc" -e "$exp" -o "$2" -f "$1.signed" "$1" "$3"
}

gen_dns() {  # DIR BENCH
  local dir=$1 bench=$2 d=$1/dns
  local z=$d/zones k=$d/keys
  mkdir -p "$z" "$k" "$d/xfr"
  local mxca=${MX_ADDR[mxca]} mxself=${MX_ADDR[mxself]}
  local mxnotls=${MX_ADDR[mxnotls]} mxexp=${MX_ADDR[mxexpired]}

  # Child zones of $TLD: "name signing" with signing = ok | unsigned |
  # expired (RRSIGs past their expiration) | badds (parent DS matches no key).
  local children=(
    "dane-ee ok" "dane-ta ok" "mismatch ok" "notls ok" "insecure unsigned"
    "bogus-sig expired" "bogus-ds badds" "nullmx ok" "twomx ok" "expired ok"
    "sender ok" "tlsa-bogus ok" "cname-bogus ok"
  )
  local c name how f
  for c in "${children[@]}"; do
    read -r name how <<< "$c"
    f=$z/$name.$TLD.zone
    zone_head "$name.$TLD." "$f"
    case $name in
      dane-ee|dane-ta|mismatch|notls|insecure|bogus-sig|bogus-ds|sender|tlsa-bogus|expired)
        echo "$name.$TLD. IN MX 10 mx.$name.$TLD." >> "$f" ;;
    esac
    case $name in
      dane-ee|sender|bogus-sig|bogus-ds|tlsa-bogus)
        printf '%s\n' "mx.$name.$TLD. IN A $mxca" \
          "_25._tcp.mx.$name.$TLD. IN TLSA 3 1 1 $H_MX" >> "$f" ;;
      dane-ta)
        printf '%s\n' "mx.$name.$TLD. IN A $mxca" \
          "_25._tcp.mx.$name.$TLD. IN TLSA 2 0 1 $H_CA" >> "$f" ;;
      mismatch)
        printf '%s\n' "mx.$name.$TLD. IN A $mxca" \
          "_25._tcp.mx.$name.$TLD. IN TLSA 3 1 1 $H_OTHER" >> "$f" ;;
      notls)
        printf '%s\n' "mx.$name.$TLD. IN A $mxnotls" \
          "_25._tcp.mx.$name.$TLD. IN TLSA 3 1 1 $H_MX" >> "$f" ;;
      insecure)
        # Unsigned: this TLSA record is insecure and must be ignored (RFC
        # 7672 2.2); it matches no key, so a relay that used it would fail.
        printf '%s\n' "mx.$name.$TLD. IN A $mxself" \
          "_25._tcp.mx.$name.$TLD. IN TLSA 3 1 1 $H_OTHER" >> "$f"
        # REQUIRETLS under MTA-STS with an insecure MX RRset (see
        # STS_RTLS_ADDR): the host itself is in the signed parent.
        local rd
        for rd in rtls rtlstest; do
          printf '%s\n' "$rd.$name.$TLD. IN MX 10 mx.sts-rtls.$TLD." \
            "_mta-sts.$rd.$name.$TLD. IN TXT \"v=STSv1; id=1\"" \
            "mta-sts.$rd.$name.$TLD. IN A $STS_HTTPS_ADDR" >> "$f"
        done ;;
      expired)
        printf '%s\n' "mx.$name.$TLD. IN A $mxexp" \
          "_25._tcp.mx.$name.$TLD. IN TLSA 3 1 1 $H_EXP" >> "$f" ;;
      nullmx)
        echo "$name.$TLD. IN MX 0 ." >> "$f" ;;  # RFC 7505
      cname-bogus)
        # MX hosts whose addresses come through a secure CNAME into the
        # unsigned zone (RFC 7672 2.2.2 C39: the relay then asks the first
        # CNAME alone). A wildcard, because libunbound answers a CNAME
        # query from its cache when an address lookup already brought the
        # CNAME, except a wildcard expansion: so the first-CNAME lookup
        # reaches the server, where tests put a proxy that breaks its
        # RRSIG (tests/integration/test_cname_bogus.sh).
        printf '%s\n' "$name.$TLD. IN MX 10 mx.$name.$TLD." \
          "ok.$name.$TLD. IN MX 10 mxok.$name.$TLD." \
          "*.$name.$TLD. IN CNAME mx.insecure.$TLD." >> "$f" ;;
      twomx)
        printf '%s\n' "$name.$TLD. IN MX 10 mx1.$name.$TLD." \
          "$name.$TLD. IN MX 20 mx2.$name.$TLD." \
          "mx1.$name.$TLD. IN A $mxself" \
          "_25._tcp.mx1.$name.$TLD. IN TLSA 3 1 1 $H_MX" \
          "mx2.$name.$TLD. IN A $mxca" \
          "_25._tcp.mx2.$name.$TLD. IN TLSA 3 1 1 $H_MX" >> "$f" ;;
    esac
    # TLS reporting (RFC 8460 3): dane-ee and mismatch want reports by
    # mail (to the sender domain's Maildir) and over HTTPS; notls publishes
    # two records, which means no reporting at all.
    local rua="rua=mailto:tlsrpt@sender.$TLD,https://tlsrpt.$TLD/report"
    case $name in
      dane-ee|mismatch)
        echo "_smtp._tls.$name.$TLD. IN TXT \"v=TLSRPTv1; $rua\"" >> "$f" ;;
      notls)
        printf '%s\n' "_smtp._tls.$name.$TLD. IN TXT \"v=TLSRPTv1; $rua\"" \
          "_smtp._tls.$name.$TLD. IN TXT \"v=TLSRPTv1; rua=mailto:x@sender.$TLD\"" >> "$f" ;;
    esac
  done

  # The TLD zone: delegations with DS records, plus a few names that need no
  # zone of their own.
  local tldf=$z/$TLD.zone key base
  zone_head "$TLD." "$tldf"
  cat >> "$tldf" <<EOF
ns.$TLD. IN A $DNS_ADDR
selftest.$TLD. IN A 127.0.0.1
selftest.$TLD. IN TXT "danerelay world DNSSEC self-test"
tlsrpt.$TLD. IN A $TLSRPT_ADDR
nomx.$TLD. IN A $mxca
_25._tcp.nomx.$TLD. IN TLSA 3 1 1 $H_MX
; sharedmx: a second domain on insecure's MX host (connection-cache tests).
sharedmx.$TLD. IN MX 10 mx.insecure.$TLD.
tlsa-servfail.$TLD. IN MX 10 mx.tlsa-servfail.$TLD.
; tlsa-servfail: MX and A secure, but the TLSA lookup SERVFAILs at once: its
; name sits below a delegation whose only NS has no address.
mx.tlsa-servfail.$TLD. IN A $mxca
_tcp.mx.tlsa-servfail.$TLD. IN NS ns.unresolvable.$TLD.
$IDN_EE_ALABEL.$TLD. IN MX 10 mx.$IDN_EE_ALABEL.$TLD.
mx.$IDN_EE_ALABEL.$TLD. IN A $mxca
_25._tcp.mx.$IDN_EE_ALABEL.$TLD. IN TLSA 3 1 1 $H_MX
$IDN_TA_ALABEL.$TLD. IN MX 10 mx.$IDN_TA_ALABEL.$TLD.
mx.$IDN_TA_ALABEL.$TLD. IN A $mxca
_25._tcp.mx.$IDN_TA_ALABEL.$TLD. IN TLSA 2 0 1 $H_CA
EOF
  local fx sname sinst shost sid
  for fx in "${STS_FIXTURES[@]}"; do
    read -r sname sinst shost sid <<< "$fx"
    printf '%s\n' "$sname.$TLD. IN MX 10 mx.$sname.$TLD." \
      "mx.$sname.$TLD. IN A ${MX_ADDR[$sinst]}" \
      "_mta-sts.$sname.$TLD. IN TXT \"v=STSv1; id=$sid\"" >> "$tldf"
    if [ "$shost" = up ]; then
      echo "mta-sts.$sname.$TLD. IN A $STS_HTTPS_ADDR" >> "$tldf"
    else
      echo "mta-sts.$sname.$TLD. IN A $STS_DEAD_ADDR" >> "$tldf"
    fi
  done
  echo "_25._tcp.mx.sts-dane.$TLD. IN TLSA 3 1 1 $H_MX" >> "$tldf"
  printf '%s\n' "sts-rtls.$TLD. IN MX 10 mx.sts-rtls.$TLD." \
    "mx.sts-rtls.$TLD. IN A $STS_RTLS_ADDR" \
    "_mta-sts.sts-rtls.$TLD. IN TXT \"v=STSv1; id=1\"" \
    "mta-sts.sts-rtls.$TLD. IN A $STS_HTTPS_ADDR" >> "$tldf"
  gen_sts_policies "$dir"

  if [ "$bench" = 1 ]; then
    local i
    for i in 0 1 2 3 4 5 6 7 8 9; do
      echo "bench$i.$TLD. IN MX 10 mx.bench.$TLD." >> "$tldf"
    done
    printf '%s\n' "mx.bench.$TLD. IN A ${MX_ADDR[mxsink]}" \
      "_25._tcp.mx.bench.$TLD. IN TLSA 3 1 1 $H_MX" >> "$tldf"
  fi

  # Fault fixtures for tests/reliability (faultymx.py listens on these
  # addresses): faultN MX -> 127.NET.11.N, no TLSA (secure denial, so
  # opportunistic TLS); faultdaneN MX -> 127.NET.12.N with TLSA 3 1 1 of the
  # mxca key (a fault peer presenting that key passes DANE).
  local idx
  for idx in $(seq 1 $FAULT_COUNT); do
    printf '%s\n' "fault$idx.$TLD. IN MX 10 mx.fault$idx.$TLD." \
      "mx.fault$idx.$TLD. IN A 127.$NET.11.$idx" >> "$tldf"
  done
  for idx in $(seq 1 $FAULT_DANE_COUNT); do
    printf '%s\n' "faultdane$idx.$TLD. IN MX 10 mx.faultdane$idx.$TLD." \
      "mx.faultdane$idx.$TLD. IN A 127.$NET.12.$idx" \
      "_25._tcp.mx.faultdane$idx.$TLD. IN TLSA 3 1 1 $H_MX" >> "$tldf"
  done

  local past_inc past_exp
  past_inc=$(date -u -d '-60 days' +%Y%m%d%H%M%S)
  past_exp=$(date -u -d '-30 days' +%Y%m%d%H%M%S)
  for c in "${children[@]}"; do
    read -r name how <<< "$c"
    f=$z/$name.$TLD.zone
    echo "$name.$TLD. IN NS ns.$TLD." >> "$tldf"
    case $how in
      unsigned)
        cp "$f" "$f.signed" ;;
      ok)
        key=$(keygen "$name.$TLD." "$k")
        sign "$f" "$name.$TLD." "$key"
        ds_of "$key" >> "$tldf" ;;
      expired)
        key=$(keygen "$name.$TLD." "$k")
        sign "$f" "$name.$TLD." "$key" "$past_inc" "$past_exp"
        ds_of "$key" >> "$tldf" ;;
      badds)
        key=$(keygen "$name.$TLD." "$k")
        sign "$f" "$name.$TLD." "$key"
        base=$(keygen "$name.$TLD." "$k")  # never published in the child
        ds_of "$base" >> "$tldf" ;;
    esac
  done
  # tlsa-bogus: replace the signed TLSA rdata after signing, keeping the old
  # RRSIG, so the TLSA RRset is bogus while MX and A stay secure.
  f=$z/tlsa-bogus.$TLD.zone.signed
  awk -v h="$H_OTHER" '$1 ~ /^_25\._tcp\./ && $4 == "TLSA" { $8 = h } { print }' \
    "$f" > "$f.tmp"
  mv "$f.tmp" "$f"
  grep -q "TLSA.*$H_OTHER" "$f" || die "tlsa-bogus: TLSA rewrite failed"

  key=$(keygen "$TLD." "$k")
  sign "$tldf" "$TLD." "$key"
  # sts-bogus: the TXT rdata changed after signing (old RRSIG kept), so the
  # _mta-sts answer is bogus while MX and A stay secure.
  f=$tldf.signed
  sed -i -E 's/^(_mta-sts\.sts-bogus\.[^[:space:]]+[[:space:]].*TXT[[:space:]]+"v=STSv1; id=)1"/\19"/' "$f"
  grep -qE '^_mta-sts\.sts-bogus\..*TXT.*id=9"' "$f" || die "sts-bogus: TXT rewrite failed"

  # The private root: delegates $TLD, and is the one trust anchor.
  local rootf=$z/root.zone
  zone_head "." "$rootf"
  printf '%s\n' "$TLD. IN NS ns.$TLD." "ns.$TLD. IN A $DNS_ADDR" >> "$rootf"
  ds_of "$key" >> "$rootf"
  key=$(keygen "." "$k")
  sign "$rootf" "." "$key"
  ds_of "$key" > "$dir/trust-anchor.ds"

  {
    cat <<EOF
# NSD for the danerelay test world (generated by world.sh)
server:
    ip-address: $DNS_ADDR@$DNS_PORT
    do-ip6: no
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$z"
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d/xfr"
    pidfile: "$dir/run/nsd.pid"
    logfile: "$dir/log/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
    reuseport: no
remote-control:
    control-enable: no
zone:
    name: "."
    zonefile: "root.zone.signed"
zone:
    name: "$TLD."
    zonefile: "$TLD.zone.signed"
EOF
    for c in "${children[@]}"; do
      read -r name how <<< "$c"
      printf 'zone:\n    name: "%s"\n    zonefile: "%s"\n' \
        "$name.$TLD." "$name.$TLD.zone.signed"
    done
  } > "$d/nsd.conf"
  nsd-checkconf "$d/nsd.conf" || die "nsd.conf rejected"

  cat > "$dir/unbound.conf" <<EOF
# libunbound configuration for the danerelay test world (ub_ctx_config).
# The whole DNS tree, root included, is the world's NSD; nothing leaves
# loopback. Exactly one trust anchor: the private root's DS.
server:
    do-not-query-localhost: no
    do-ip6: no
    trust-anchor-file: "$dir/trust-anchor.ds"
EOF
  # Every served zone is a stub: the zones' NS records say ns.$TLD at
  # $DNS_ADDR, which an iterator would query on port 53, while NSD listens
  # on $DNS_PORT. DS lookups still go to the parent zone, so the chain of
  # trust is validated link by link exactly as with referrals.
  local zn
  for zn in . "$TLD." $(for c in "${children[@]}"; do echo "${c%% *}.$TLD."; done); do
    printf 'stub-zone:\n    name: "%s"\n    stub-addr: %s@%s\n' "$zn" "$DNS_ADDR" "$DNS_PORT"
  done >> "$dir/unbound.conf"
}

# The policies the HTTPS server serves (DIR/mta-sts/mta-sts.NAME.txt, RFC
# 8461 3.2); sts-down and sts-cached have none (their host is dead anyway).
gen_sts_policies() {  # DIR
  local w=$1/mta-sts T=$TLD
  mkdir -p "$w"
  pol() {  # NAME MODE MX...
    local n=$1 m=$2; shift 2
    { echo "version: STSv1"; echo "mode: $m"
      local x; for x in "$@"; do echo "mx: $x"; done
      echo "max_age: 86400"; } > "$w/mta-sts.$n.$T.txt"
  }
  pol sts-enforce enforce "*.sts-enforce.$T"
  pol sts-testing testing "mx.sts-testing.$T"
  pol sts-mismatch enforce "*.$T" "mx.elsewhere.$T"
  pol sts-badcert enforce "mx.sts-badcert.$T"
  pol sts-id enforce "mx.sts-id.$T"
  pol sts-dane enforce "mx.elsewhere.$T"
  pol sts-bogus enforce "mx.sts-bogus.$T"
  local fx sname smode
  for fx in "${STS_RTLS_POLICIES[@]}"; do
    read -r sname smode <<< "$fx"
    pol "$sname" "$smode" "mx.sts-rtls.$T"
  done
}

start_sts_https() {  # DIR: the MTA-STS policy server on $STS_HTTPS_ADDR:443
  local dir=$1 pid i
  setsid python3 "$(dirname "${BASH_SOURCE[0]}")/mtasts_https.py" \
    "$STS_HTTPS_ADDR" 443 "$dir/pki/sts-chain.pem" "$dir/pki/sts.key" \
    "$dir/mta-sts" < /dev/null >> "$dir/log/mtasts-https.log" 2>&1 &
  pid=$!
  echo "mtasts-https $pid $dir/mta-sts" >> "$dir/run/procs"
  for i in $(seq 100); do
    port_busy "$STS_HTTPS_ADDR" 443 t && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  die "MTA-STS HTTPS server did not start (see $dir/log/mtasts-https.log)"
}

start_nsd() {  # DIR
  local dir=$1 i pid
  # NSD daemonizes: the process that stays (xfrd) leads a new session and
  # rewrites the pid file once it has forked, so the pid is read only after
  # NSD answers, and, until then, the launcher's session is remembered so a
  # failure can still stop it.
  nsd -c "$dir/dns/nsd.conf" || die "nsd failed to start (see $dir/log/nsd.log)"
  local ok=0
  for i in $(seq 100); do
    if dig +short +time=1 +tries=1 -p "$DNS_PORT" "@$DNS_ADDR" . SOA 2>/dev/null | grep -q .; then
      ok=1; break
    fi
    sleep 0.05
  done
  pid=$(cat "$dir/run/nsd.pid" 2>/dev/null) || true
  [ -n "$pid" ] && echo "nsd $pid $dir/log/nsd.log" >> "$dir/run/procs"
  [ $ok = 1 ] || die "nsd does not answer on $DNS_ADDR@$DNS_PORT (see $dir/log/nsd.log)"
  proc_is_ours "$pid" "$dir/log/nsd.log" || die "nsd pid file $dir/run/nsd.pid is stale"
}

# --- Postfix ---------------------------------------------------------------------

# One master.cf for every instance: no chroot, smtpd on port 25 of
# inet_interfaces only, the services a relay-free MX and a relaying MTA need.
write_master_cf() {  # FILE
  cat > "$1" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command
25        inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# Common main.cf for an instance NAME listening on ADDR.
write_main_common() {  # DIR NAME ADDR MYHOSTNAME
  local dir=$1 name=$2 addr=$3 host=$4 pd=$1/postfix/$2
  cat <<EOF
# Postfix instance "$name" of the danerelay test world (generated by world.sh)
compatibility_level = 3.6
queue_directory = $pd/queue
data_directory = $pd/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = $addr
inet_protocols = ipv4
smtp_bind_address = $addr
myhostname = $host
mydomain = $TLD
myorigin = \$myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery in the test world
alias_maps =
alias_database =
maillog_file = $dir/log/$name.log
maillog_file_prefixes = $dir
syslog_name = $name
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP $name
# Fast retries: tests wait for the queue, not for backoff timers.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 4s
smtp_connect_timeout = 5s
EOF
}

write_mx_instance() {  # DIR NAME TLSMODE DOMAINS...
  local dir=$1 name=$2 tls=$3; shift 3
  local domains=("$@") pd=$dir/postfix/$name addr=${MX_ADDR[$name]} d
  local md=$dir/maildir/$name
  mkdir -p "$pd/conf" "$pd/queue" "$pd/data" "$md"
  write_master_cf "$pd/conf/master.cf"
  {
    write_main_common "$dir" "$name" "$addr" "$name.$TLD"
    cat <<EOF
# A final destination for its domains only: no relaying, nothing outbound.
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:5.7.1 outbound mail disabled in the test world
notify_classes =
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
EOF
    case $tls in
      ca)      echo "smtpd_tls_security_level = may"
               echo "smtpd_tls_chain_files = $dir/pki/mx.key, $dir/pki/mx-chain.pem" ;;
      self)    echo "smtpd_tls_security_level = may"
               echo "smtpd_tls_chain_files = $dir/pki/self.key, $dir/pki/self.pem" ;;
      expired) echo "smtpd_tls_security_level = may"
               echo "smtpd_tls_chain_files = $dir/pki/expired.key, $dir/pki/expired-chain.pem" ;;
      none)    echo "smtpd_tls_security_level = none" ;;
    esac
    if [ "$name" = mxsink ]; then
      # Benchmark sink: accept anything for its domains, discard it.
      echo "relay_domains = ${domains[*]}"
      echo "relay_transport = discard:benchmark sink"
      echo "relay_recipient_maps ="
    else
      # Virtual mailboxes: one Maildir per domain, any local part accepted.
      echo "virtual_mailbox_domains = ${domains[*]}"
      echo "virtual_mailbox_base = $md"
      echo "virtual_mailbox_maps = regexp:$pd/conf/vmailbox"
      echo "virtual_uid_maps = static:$(id -u nobody)"
      echo "virtual_gid_maps = static:$(id -g nobody)"
      echo "virtual_minimum_uid = 1"
    fi
  } > "$pd/conf/main.cf"
  : > "$pd/conf/vmailbox"
  for d in "${domains[@]}"; do
    # regexp, not a per-user map: the virtual agent refuses $n substitution.
    printf '/@%s$/ %s/\n' "${d//./\\.}" "$d" >> "$pd/conf/vmailbox"
    [ "$name" = mxsink ] || mkdir -p "$md/$d/new" "$md/$d/cur" "$md/$d/tmp"
  done
  chown -R nobody:"$(id -gn nobody)" "$md"
  chown postfix "$pd/data"
}

write_upstream() {  # DIR
  local dir=$1 pd=$1/postfix/upstream rh rp
  rh=${RELAY_ADDR%:*}; rp=${RELAY_ADDR##*:}
  [[ $rh =~ ^[0-9]+(\.[0-9]+){3}$ && $rp =~ ^[0-9]+$ ]] ||
    die "RELAY_ADDR must be IPv4:port, got '$RELAY_ADDR'"
  RELAY_HOST=$rh; RELAY_PORT=$rp
  mkdir -p "$pd/conf" "$pd/queue" "$pd/data"
  write_master_cf "$pd/conf/master.cf"
  {
    write_main_common "$dir" upstream "$UPSTREAM_ADDR" "upstream.$TLD"
    cat <<EOF
# The site MTA under test: everything goes to the relay, in cleartext.
relayhost = [$rh]:$rp
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtp_tls_security_level = none
EOF
  } > "$pd/conf/main.cf"
  chown postfix "$pd/data"
}

# The queue layout `postfix-script check-fatal` would create (via
# post-install), made directly so that `quick-start` can skip those checks:
# they cost about two seconds per instance.
make_queue() {  # QUEUEDIR
  local q=$1 d
  mkdir -p "$q/pid"
  for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    install -d -o postfix -g root -m 700 "$q/$d"
  done
  install -d -o postfix -g postdrop -m 730 "$q/maildrop"
  install -d -o postfix -g postdrop -m 710 "$q/public"
  touch "$q/quick-start"
}

start_postfix() {  # DIR NAME
  local dir=$1 name=$2 conf=$1/postfix/$2/conf pid
  # Postfix re-reads a main.cf modified within the last second, sleeping
  # 300 ms each time; backdate the generated files.
  touch -d '-1 minute' "$conf"/*
  dbg "start $name"; make_queue "$dir/postfix/$name/queue"
  if ! postfix -c "$conf" start >> "$dir/log/$name.start" 2>&1; then
    cat "$dir/log/$name.start" >&2
    [ -f "$dir/log/$name.log" ] && tail -5 "$dir/log/$name.log" >&2
    return 1
  fi
  pid=$(tr -d ' ' < "$dir/postfix/$name/queue/pid/master.pid")
  echo "$name $pid MAIL_CONFIG=$conf" >> "$dir/run/procs"
  dbg "started $name"
}

# --- up --------------------------------------------------------------------------

check_traversable() {  # DIR: postfix and nobody must reach DIR
  local u
  for u in postfix nobody; do
    runuser -u "$u" -- test -x "$1" ||
      die "user $u cannot reach $1: make its parent directories world-searchable (o+x)"
  done
}

env_line() { printf '%s=%q\n' "$1" "$2"; }

sts_domains_of() {  # INSTANCE: the MTA-STS fixture domains it receives
  local fx sname sinst
  for fx in "${STS_FIXTURES[@]}"; do
    read -r sname sinst _ <<< "$fx"
    [ "$sinst" = "$1" ] && echo "$sname.$TLD"
  done
}

write_env() {  # DIR BENCH
  local dir=$1 bench=$2 e=$1/world.env
  local pd=$dir/postfix n
  {
    echo "# danerelay test world (generated by world.sh up; source me)"
    env_line WORLD_DIR "$dir"
    env_line WORLD_NET "$NET"
    env_line WORLD_TLD "$TLD"
    env_line WORLD_DNS_ADDR "$DNS_ADDR"
    env_line WORLD_DNS_PORT "$DNS_PORT"
    env_line WORLD_DNS_SERVER "$DNS_ADDR@$DNS_PORT"
    env_line WORLD_TRUST_ANCHOR "$dir/trust-anchor.ds"
    env_line WORLD_UNBOUND_CONF "$dir/unbound.conf"
    env_line WORLD_SELFTEST_NAME "selftest.$TLD"
    env_line WORLD_SELFTEST_TYPE A
    env_line WORLD_NXDOMAIN "nonexistent.$TLD"
    env_line WORLD_TLSRPT_ADDR "$TLSRPT_ADDR"
    env_line WORLD_TLSRPT_HTTPS "https://tlsrpt.$TLD/report"
    env_line WORLD_TLSRPT_MAILTO "tlsrpt@sender.$TLD"
    env_line WORLD_CA_CERT "$dir/pki/ca.pem"
    env_line WORLD_PKI "$dir/pki"
    env_line WORLD_LOGDIR "$dir/log"

    local insts=(mxca mxself mxnotls mxexpired)
    [ "$bench" = 1 ] && insts+=(mxsink)
    env_line WORLD_MX_INSTANCES "${insts[*]}"
    for n in "${insts[@]}"; do
      local U=${n^^}
      env_line "WORLD_${U}_ADDR" "${MX_ADDR[$n]}"
      env_line "WORLD_${U}_CONF" "$pd/$n/conf"
      env_line "WORLD_${U}_LOG" "$dir/log/$n.log"
      env_line "WORLD_${U}_MAILDIR" "$dir/maildir/$n"
    done
    env_line WORLD_MXCA_TLS "test-CA leaf (chain: leaf, CA)"
    env_line WORLD_MXSELF_TLS "self-signed"
    env_line WORLD_MXNOTLS_TLS "none (no STARTTLS)"
    env_line WORLD_MXEXPIRED_TLS "expired test-CA leaf (chain: leaf, CA)"
    [ "$bench" = 1 ] && env_line WORLD_MXSINK_TLS "test-CA leaf; discards mail"

    # Domains: WORLD_D_<FIXTURE> (domain), _MX (primary MX host), _MAILDIR
    # (where mail for it lands when delivered as designed).
    local md=$dir/maildir
    dom() {  # FIXTURE DOMAIN MXHOST MAILDIR
      env_line "WORLD_D_$1" "$2"
      env_line "WORLD_D_$1_MX" "$3"
      env_line "WORLD_D_$1_MAILDIR" "$4"
    }
    dom DANE_EE    "dane-ee.$TLD"    "mx.dane-ee.$TLD"    "$md/mxca/dane-ee.$TLD"
    dom DANE_TA    "dane-ta.$TLD"    "mx.dane-ta.$TLD"    "$md/mxca/dane-ta.$TLD"
    dom MISMATCH   "mismatch.$TLD"   "mx.mismatch.$TLD"   "$md/mxca/mismatch.$TLD"
    dom NOTLS      "notls.$TLD"      "mx.notls.$TLD"      "$md/mxnotls/notls.$TLD"
    dom INSECURE   "insecure.$TLD"   "mx.insecure.$TLD"   "$md/mxself/insecure.$TLD"
    dom BOGUS_SIG  "bogus-sig.$TLD"  "mx.bogus-sig.$TLD"  "$md/mxca/bogus-sig.$TLD"
    dom BOGUS_DS   "bogus-ds.$TLD"   "mx.bogus-ds.$TLD"   "$md/mxca/bogus-ds.$TLD"
    dom NULLMX     "nullmx.$TLD"     ""                   ""
    dom TWOMX      "twomx.$TLD"      "mx2.twomx.$TLD"     "$md/mxca/twomx.$TLD"
    env_line WORLD_D_TWOMX_MX1 "mx1.twomx.$TLD"
    env_line WORLD_D_TWOMX_MX1_MAILDIR "$md/mxself/twomx.$TLD"
    dom EXPIRED    "expired.$TLD"    "mx.expired.$TLD"    "$md/mxexpired/expired.$TLD"
    dom SENDER     "sender.$TLD"     "mx.sender.$TLD"     "$md/mxca/sender.$TLD"
    dom TLSA_BOGUS "tlsa-bogus.$TLD" "mx.tlsa-bogus.$TLD" "$md/mxca/tlsa-bogus.$TLD"
    dom TLSA_SERVFAIL "tlsa-servfail.$TLD" "mx.tlsa-servfail.$TLD" "$md/mxca/tlsa-servfail.$TLD"
    dom NOMX       "nomx.$TLD"       "nomx.$TLD"          "$md/mxca/nomx.$TLD"
    dom CNAME_BOGUS "cname-bogus.$TLD" "mx.cname-bogus.$TLD" "$md/mxself/cname-bogus.$TLD"
    dom CNAME_OK   "ok.cname-bogus.$TLD" "mxok.cname-bogus.$TLD" "$md/mxself/ok.cname-bogus.$TLD"
    dom SHARED_MX  "sharedmx.$TLD"   "mx.insecure.$TLD"   "$md/mxself/sharedmx.$TLD"
    # IDN: the A-label domain is what DNS serves; mail sent with SMTPUTF8
    # to the UTF-8 address lands in the Maildir of the UTF-8 spelling.
    dom IDN_EE     "$IDN_EE_ALABEL.$TLD" "mx.$IDN_EE_ALABEL.$TLD" "$md/mxca/$IDN_EE_ULABEL.$TLD"
    env_line WORLD_D_IDN_EE_UTF8 "$IDN_EE_ULABEL.$TLD"
    dom IDN_TA     "$IDN_TA_ALABEL.$TLD" "mx.$IDN_TA_ALABEL.$TLD" "$md/mxca/$IDN_TA_ULABEL.$TLD"
    env_line WORLD_D_IDN_TA_UTF8 "$IDN_TA_ULABEL.$TLD"
    # MTA-STS: WORLD_D_STS_<NAME> as above, the policy directory the HTTPS
    # server reads, and its address.
    local fx sname sinst
    for fx in "${STS_FIXTURES[@]}"; do
      read -r sname sinst _ <<< "$fx"
      local F=${sname^^}
      dom "${F//-/_}" "$sname.$TLD" "mx.$sname.$TLD" "$md/$sinst/$sname.$TLD"
    done
    env_line WORLD_STS_DIR "$dir/mta-sts"
    env_line WORLD_STS_HTTPS_ADDR "$STS_HTTPS_ADDR"
    env_line WORLD_STS_DEAD_ADDR "$STS_DEAD_ADDR"
    env_line WORLD_STS_RTLS_ADDR "$STS_RTLS_ADDR"
    if [ "$bench" = 1 ]; then
      env_line WORLD_BENCH_DOMAINS "$(printf "bench%d.$TLD " 0 1 2 3 4 5 6 7 8 9 | sed 's/ $//')"
      env_line WORLD_BENCH_MX "mx.bench.$TLD"
    fi
    env_line WORLD_FAULT_COUNT "$FAULT_COUNT"
    env_line WORLD_FAULT_NET "127.$NET.11"
    env_line WORLD_FAULT_DANE_COUNT "$FAULT_DANE_COUNT"
    env_line WORLD_FAULT_DANE_NET "127.$NET.12"
    env_line WORLD_SENDER_DOMAIN "sender.$TLD"
    env_line WORLD_SENDER "alice@sender.$TLD"
    env_line WORLD_SENDER_MAILDIR "$md/mxca/sender.$TLD"

    env_line WORLD_UPSTREAM_ADDR "$UPSTREAM_ADDR"
    env_line WORLD_UPSTREAM_PORT 25
    env_line WORLD_UPSTREAM_CONF "$pd/upstream/conf"
    env_line WORLD_UPSTREAM_LOG "$dir/log/upstream.log"
    env_line WORLD_UPSTREAM_SENDMAIL "/usr/sbin/sendmail -C $pd/upstream/conf"
    env_line WORLD_RELAY_ADDR "$RELAY_HOST:$RELAY_PORT"
    env_line WORLD_RELAY_HOST "$RELAY_HOST"
    env_line WORLD_RELAY_PORT "$RELAY_PORT"
  } > "$e.tmp"
  mv "$e.tmp" "$e"
}

do_up() {
  local dir=$1 bench=$2 t0 n
  t0=$EPOCHREALTIME
  [ "$(id -u)" = 0 ] || die "must run as root"
  if [ -f "$dir/run/procs" ]; then
    die "$dir already has a running world (world.sh down $dir first)"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  chmod 755 "$dir"
  check_traversable "$dir"
  local insts=(mxca mxself mxnotls mxexpired)
  [ "$bench" = 1 ] && insts+=(mxsink)
  for n in "${insts[@]}"; do add_alias "${MX_ADDR[$n]}"; done
  add_alias "$UPSTREAM_ADDR"
  add_alias "$DNS_ADDR"
  add_alias "$TLSRPT_ADDR"
  add_alias "$STS_HTTPS_ADDR"
  add_alias "$STS_DEAD_ADDR"
  add_alias "$STS_RTLS_ADDR"
  port_busy "$STS_HTTPS_ADDR" 443 t && die "TCP $STS_HTTPS_ADDR:443 is already in use"
  port_busy "$DNS_ADDR" "$DNS_PORT" u && die "UDP $DNS_ADDR:$DNS_PORT is already in use"
  for n in "${insts[@]}"; do
    port_busy "${MX_ADDR[$n]}" 25 t && die "TCP ${MX_ADDR[$n]}:25 is already in use (another world running?)"
  done
  port_busy "$UPSTREAM_ADDR" 25 t && die "TCP $UPSTREAM_ADDR:25 is already in use"

  rm -rf "$dir/run" "$dir/dns" "$dir/pki" "$dir/postfix" "$dir/log" "$dir/maildir" "$dir/mta-sts" \
    "$dir/world.env" "$dir/unbound.conf" "$dir/trust-anchor.ds"
  mkdir -p "$dir/run" "$dir/log" "$dir/maildir"
  : > "$dir/run/procs"

  # From here on, a failure stops whatever was started.
  # shellcheck disable=SC2154  # rc is assigned inside the trap
  trap 'rc=$?; if [ $rc != 0 ]; then log "up failed; stopping what was started"; do_down "'"$dir"'" || true; fi' EXIT
  trap 'exit 130' INT TERM HUP

  dbg pki; gen_pki "$dir"
  dbg dns
  gen_dns "$dir" "$bench" > "$dir/log/dns-gen.log"

  local T=$TLD
  # shellcheck disable=SC2046  # one argument per MTA-STS fixture domain
  write_mx_instance "$dir" mxca ca "dane-ee.$T" "dane-ta.$T" "mismatch.$T" \
    "bogus-sig.$T" "bogus-ds.$T" "twomx.$T" "sender.$T" "tlsa-bogus.$T" \
    "tlsa-servfail.$T" "nomx.$T" "$IDN_EE_ALABEL.$T" "$IDN_TA_ALABEL.$T" \
    "$IDN_EE_ULABEL.$T" "$IDN_TA_ULABEL.$T" \
    $(sts_domains_of mxca)
  # shellcheck disable=SC2046  # one argument per MTA-STS fixture domain
  write_mx_instance "$dir" mxself self "insecure.$T" "twomx.$T" \
    "cname-bogus.$T" "ok.cname-bogus.$T" "sharedmx.$T" $(sts_domains_of mxself)
  write_mx_instance "$dir" mxnotls none "notls.$T"
  write_mx_instance "$dir" mxexpired expired "expired.$T"
  if [ "$bench" = 1 ]; then
    # shellcheck disable=SC2046  # ten separate domain arguments
    write_mx_instance "$dir" mxsink ca $(printf "bench%d.$T " 0 1 2 3 4 5 6 7 8 9)
  fi
  write_upstream "$dir"

  dbg nsd; start_nsd "$dir"
  dbg mta-sts; start_sts_https "$dir"
  dbg postfix
  # One after the other: with the quick-start queue each takes ~50 ms, and
  # starting them in parallel was measured slower.
  for n in "${insts[@]}" upstream; do
    start_postfix "$dir" "$n" || die "Postfix instance $n failed to start (logs in $dir/log)"
  done

  dbg env; write_env "$dir" "$bench"
  trap - EXIT INT TERM HUP
  log "up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s: source $dir/world.env"
}

# --- tlsa: change a TLSA RRset in a running world ----------------------------------
# Additive (tests/reliability dnschange): the unsigned source DIR/dns/zones/
# Z.zone is edited, its SOA serial bumped, the zone re-signed with the key
# whose DNSKEY it already publishes (so the chain of trust is unchanged) and
# NSD sent SIGHUP (NSD re-reads zone files whose mtime changed).

zone_of() {  # DIR NAME: the most specific zone served by NSD holding NAME
  local dir=$1 name=${2%.}. best='' z
  while read -r z; do
    if [ "$z" = . ] || [ "$name" = "$z" ] || [[ $name == *".$z" ]]; then
      [ ${#z} -gt ${#best} ] && best=$z
    fi
  done < <(sed -n 's/^ *name: "\(.*\)"$/\1/p' "$dir/dns/nsd.conf")
  [ -n "$best" ] || die "no zone holds $name"
  echo "$best"
}

zone_key() {  # DIR ZONE SIGNEDFILE: base path of the key the zone publishes
  local k pub
  for k in "$1/dns/keys/K$2+"*.key; do
    [ -f "$k" ] || continue
    pub=$(awk '{ sub(/;.*/, ""); for (i = 7; i <= NF; i++) printf "%s", $i }' "$k")
    if awk '{ sub(/;.*/, "") } $4 == "DNSKEY" { s = ""; for (i = 8; i <= NF; i++) s = s $i; print s }' "$3" |
        grep -qxF -- "$pub"; then
      echo "${k%.key}"; return 0
    fi
  done
  return 1
}

do_tlsa() {  # DIR HOST TTL RDATA [ok|expired|badsig]
  local dir=$1 host=${2%.}. ttl=$3 rdata=$4 how=${5:-ok}
  [ "$(id -u)" = 0 ] || die "must run as root"
  case $ttl in ''|*[!0-9]*) die "TTL must be a number of seconds" ;; esac
  case $how in ok|expired|badsig) ;; *) usage ;; esac
  [ "$rdata" = none ] || [[ $rdata =~ ^[0-3]\ [01]\ [0-2]\ [0-9A-Fa-f]+$ ]] ||
    die "RDATA must be \"U S M HEX\" or none"
  [ "$rdata" != none ] || [ "$how" = ok ] || die "$how needs a TLSA record"
  local owner=_25._tcp.$host zone f signed key serial
  zone=$(zone_of "$dir" "$host")
  if [ "$zone" = . ]; then f=$dir/dns/zones/root.zone; else f=$dir/dns/zones/${zone%.}.zone; fi
  signed=$f.signed
  if ! [ -f "$f" ] || ! [ -f "$signed" ]; then die "zone files for $zone missing under $dir/dns/zones"; fi
  serial=$(awk '$3 == "SOA" { print $6 + 1; exit }' "$f")
  awk -v o="$owner" -v s="$serial" '
    $3 == "SOA" { $6 = s }
    $1 == o && ($3 == "TLSA" || $4 == "TLSA") { next }
    { print }' "$f" > "$f.tmp"
  [ "$rdata" = none ] || echo "$owner $ttl IN TLSA $rdata" >> "$f.tmp"
  mv "$f.tmp" "$f"
  if key=$(zone_key "$dir" "$zone" "$signed"); then
    sign "$f" "$zone" "$key" > /dev/null
    if [ "$how" != ok ]; then
      # Swap in an RRSIG over this TLSA RRset that no validator accepts:
      # one from a signing 60..30 days ago, or a corrupted signature.
      local bad=$f.bad
      if [ "$how" = expired ]; then
        ldns-signzone -i "$(date -u -d '-60 days' +%Y%m%d%H%M%S)" \
          -e "$(date -u -d '-30 days' +%Y%m%d%H%M%S)" -o "$zone" -f "$bad" "$f" "$key"
      else
        cp "$signed" "$bad"
      fi
      awk -v o="$owner" -v how="$how" -v badf="$bad" '
        BEGIN { while ((getline l < badf) > 0) { split(l, a)
                  if (a[1] == o && a[4] == "RRSIG" && a[5] == "TLSA") sig = l } }
        $1 == o && $4 == "RRSIG" && $5 == "TLSA" {
          if (how == "expired") { print sig; n++; next }
          # badsig: flip one base64 character of the signature
          c = substr($NF, 1, 1); $NF = (c == "A" ? "B" : "A") substr($NF, 2); n++ }
        { print }
        END { if (n != 1) exit 1 }' "$signed" > "$signed.tmp" ||
        die "could not replace the RRSIG over $owner TLSA"
      mv "$signed.tmp" "$signed"; rm -f "$bad"
    fi
  else
    cp "$f" "$signed"   # an unsigned zone
  fi
  nsd_reload "$dir" "$zone" "$signed" "$serial" "tlsa: $owner $ttl $rdata ($how)"
}

nsd_reload() {  # DIR ZONE SIGNEDFILE SERIAL MESSAGE: SIGHUP NSD until it serves SERIAL
  local dir=$1 zone=$2 signed=$3 serial=$4 msg=$5 pid i
  pid=$(cat "$dir/run/nsd.pid" 2>/dev/null) || die "no NSD pid file in $dir/run"
  for i in $(seq 60); do
    if [ $((i % 10)) = 1 ]; then
      # mtime is what NSD compares; a re-sign within the same second as
      # the last load could look unchanged, so touch again each round.
      [ "$i" = 1 ] || touch "$signed"
      kill -HUP "$pid" || die "cannot signal NSD (pid $pid)"
    fi
    [ "$(dig +short +time=1 +tries=1 -p "$DNS_PORT" "@$DNS_ADDR" "$zone" SOA 2>/dev/null |
      awk '{ print $3 }')" = "$serial" ] && { log "$msg, $zone serial $serial"; return 0; }
    sleep 0.1
  done
  die "NSD did not load $zone serial $serial"
}

zone_files() {  # DIR ZONE: sets ZF (source) and ZS (signed) for ZONE
  if [ "$2" = . ]; then ZF=$1/dns/zones/root.zone; else ZF=$1/dns/zones/${2%.}.zone; fi
  ZS=$ZF.signed
  if ! [ -f "$ZF" ] || ! [ -f "$ZS" ]; then die "zone files for $2 missing under $1/dns/zones"; fi
}

zone_resign() {  # DIR ZONE: re-sign ZF with the key ZS publishes (or copy an unsigned zone)
  local key
  if key=$(zone_key "$1" "$2" "$ZS"); then
    sign "$ZF" "$2" "$key" > /dev/null
  else
    cp "$ZF" "$ZS"
  fi
}

# --- rr: replace any RRset in a running world ---------------------------------------
do_rr() {  # DIR OWNER TYPE TTL RDATA|none
  local dir=$1 owner=${2%.}. type=$3 ttl=$4 rdata=$5 zone serial
  [ "$(id -u)" = 0 ] || die "must run as root"
  case $ttl in ''|*[!0-9]*) die "TTL must be a number of seconds" ;; esac
  case $type in A|AAAA|MX|TLSA|CNAME|TXT) ;; *) die "type $type not supported" ;; esac
  zone=$(zone_of "$dir" "$owner")
  zone_files "$dir" "$zone"
  serial=$(awk '$3 == "SOA" { print $6 + 1; exit }' "$ZF")
  awk -v o="$owner" -v t="$type" -v s="$serial" '
    $3 == "SOA" { $6 = s }
    $1 == o && ($3 == t || $4 == t) { next }
    { print }' "$ZF" > "$ZF.tmp"
  if [ "$rdata" != none ]; then
    local r
    # Several records: RDATA values separated by "|".
    IFS='|' read -r -a recs <<< "$rdata"
    for r in "${recs[@]}"; do echo "$owner $ttl IN $type $r" >> "$ZF.tmp"; done
  fi
  mv "$ZF.tmp" "$ZF"
  zone_resign "$dir" "$zone"
  nsd_reload "$dir" "$zone" "$ZS" "$serial" "rr: $owner $type $ttl $rdata"
}

# --- unds: remove a child zone's DS from its parent (the child turns insecure) -------
do_unds() {  # DIR CHILD
  local dir=$1 child=${2%.}. parent serial
  [ "$(id -u)" = 0 ] || die "must run as root"
  parent=$(zone_of "$dir" "${child#*.}")
  zone_files "$dir" "$parent"
  awk -v o="$child" '$1 == o && ($3 == "DS" || $4 == "DS") { f = 1 } END { exit !f }' "$ZF" ||
    die "no DS for $child in $parent"
  serial=$(awk '$3 == "SOA" { print $6 + 1; exit }' "$ZF")
  awk -v o="$child" -v s="$serial" '
    $3 == "SOA" { $6 = s }
    $1 == o && ($3 == "DS" || $4 == "DS") { next }
    { print }' "$ZF" > "$ZF.tmp"
  mv "$ZF.tmp" "$ZF"
  zone_resign "$dir" "$parent"
  nsd_reload "$dir" "$parent" "$ZS" "$serial" "unds: DS of $child removed from $parent"
}

# --- main --------------------------------------------------------------------------

[ $# -ge 2 ] || usage
cmd=$1; dir=$2; shift 2
if [ "$cmd" = tlsa ] || [ "$cmd" = rr ] || [ "$cmd" = unds ]; then
  case $cmd in
    tlsa) if [ $# -lt 3 ] || [ $# -gt 4 ]; then usage; fi ;;
    rr) [ $# = 4 ] || usage ;;
    unds) [ $# = 1 ] || usage ;;
  esac
  [ -f "$dir/world.env" ] || die "no world in $dir"
  dir=$(cd "$dir" && pwd -P)
  # The running world's NSD address, whatever WORLD_NET says now.
  # shellcheck disable=SC1091  # generated at `up`
  DNS_ADDR=$(. "$dir/world.env" && echo "$WORLD_DNS_ADDR")
  # shellcheck disable=SC1091
  DNS_PORT=$(. "$dir/world.env" && echo "$WORLD_DNS_PORT")
  "do_$cmd" "$dir" "$@"
  exit
fi
bench=0
for a in "$@"; do
  case $a in
    --bench) bench=1 ;;
    *) usage ;;
  esac
done
case $cmd in
  up) do_up "$dir" "$bench" ;;
  down) [ -d "$dir" ] || exit 0; do_down "$(cd "$dir" && pwd -P)" ;;
  status) do_status "$(cd "$dir" && pwd -P)" ;;
  *) usage ;;
esac
