#!/usr/bin/env bash
# `danerelay tlsa` against the test certificates in
# tests/data/tlsa (TAP). Expected digests are computed here with the
# openssl CLI, independently of the code under test:
#   openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum
# Usage: test_cli_tlsa.sh PATH/TO/danerelay SOURCE_ROOT
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
data=$2/tests/data/tlsa
tmp=$(mktemp -d /tmp/danerelay-tlsa-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
run() { out=$("$@" 2>"$tmp/err"); st=$?; err=$(cat "$tmp/err"); }
spki() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
has_line() { printf '%s\n' "$out" | grep -qxF -- "$1"; }

leaf=$(spki "$data/leaf.pem"); int=$(spki "$data/int.pem"); root=$(spki "$data/root.pem")
cat "$data/leaf.pem" "$data/int.pem" "$data/root.pem" > "$tmp/chain.pem"

run "$bin" tlsa "$data/leaf.pem"
[ "$st" = 0 ] && has_line "_25._tcp.mx.example.com. IN TLSA 3 1 1 $leaf" \
  && ok "leaf: 3 1 1 record with placeholder owner" || notok "leaf record" "exit $st" "$out" "$err"
has_line "; rdata: 3 1 1 $leaf" && ok "leaf: bare rdata" || notok "leaf rdata" "$out"
[ "$(printf '%s\n' "$out" | grep -c 'IN TLSA')" = 1 ] && ok "leaf: exactly one record" || notok "one record" "$out"

run "$bin" tlsa "$tmp/chain.pem"
[ "$st" = 0 ] && [ "$(printf '%s\n' "$out" | grep -c 'IN TLSA')" = 1 ] && has_line "_25._tcp.mx.example.com. IN TLSA 3 1 1 $leaf" \
  && ok "chain file without --chain: leaf only" || notok "chain without --chain" "$out"
has_line "; 2 issuer certificate(s) not shown: add --chain for their 2 1 1 records" \
  && ok "chain file without --chain: says issuers were skipped" || notok "skipped note" "$out"

run "$bin" tlsa --chain "$tmp/chain.pem"
want=$(printf '%s\n' "_25._tcp.mx.example.com. IN TLSA 3 1 1 $leaf" \
  "_25._tcp.mx.example.com. IN TLSA 2 1 1 $int" "_25._tcp.mx.example.com. IN TLSA 2 1 1 $root")
[ "$st" = 0 ] && [ "$(printf '%s\n' "$out" | grep 'IN TLSA')" = "$want" ] \
  && ok "--chain: 3 1 1 leaf then 2 1 1 per issuer, in file order" || notok "--chain records" "$out" "want: $want"
has_line "; rdata: 2 1 1 $int" && has_line "; rdata: 2 1 1 $root" && ok "--chain: bare rdata per issuer" || notok "--chain rdata" "$out"
[[ "$out" == *"; certificate 2 (issuer, DANE-TA): /CN=danerelay test intermediate"* ]] \
  && ok "--chain: names each certificate" || notok "cert comments" "$out"
[ "$leaf" != "$int" ] && [ "$int" != "$root" ] && ok "test certificates have distinct keys" || notok "distinct keys"

run "$bin" tlsa --host mx1.dane.example. --chain "$tmp/chain.pem"
has_line "_25._tcp.mx1.dane.example. IN TLSA 2 1 1 $root" && ok "--host sets the owner (trailing dot accepted)" || notok "--host" "$out"

run "$bin" tlsa - < "$data/other.pem"
has_line "_25._tcp.mx.example.com. IN TLSA 3 1 1 $(spki "$data/other.pem")" && ok "'-' reads standard input" || notok "stdin" "$out" "$err"

# Output is zone-file text: every line is a comment or a TLSA record.
run "$bin" tlsa --chain "$tmp/chain.pem"
bad=$(printf '%s\n' "$out" | grep -vE '^(;|_25\._tcp\.[a-z0-9.-]+\. IN TLSA [23] 1 1 [0-9a-f]{64}$)')
[ -z "$bad" ] && ok "output is zone-file text" || notok "zone-file text" "$bad"

run "$bin" tlsa "$tmp/missing.pem"
[ "$st" = 1 ] && [ -z "$out" ] && [ "$err" = "danerelay tlsa: $tmp/missing.pem: No such file or directory" ] \
  && ok "unreadable file: exit 1, one line" || notok "missing file" "exit $st" "$err"
run "$bin" tlsa "$data/leaf.key"
[ "$st" = 1 ] && [[ "$err" == *"leaf.key: no PEM certificate (-----BEGIN CERTIFICATE-----) found"* ]] \
  && ok "file without a certificate: exit 1" || notok "no cert" "exit $st" "$err"
: > "$tmp/empty.pem"
run "$bin" tlsa "$tmp/empty.pem"
[ "$st" = 1 ] && [[ "$err" == *"no PEM certificate"* ]] && ok "empty file: exit 1" || notok "empty" "exit $st" "$err"
{ echo "-----BEGIN CERTIFICATE-----"; echo "bm90IGEgY2VydGlmaWNhdGU="; echo "-----END CERTIFICATE-----"; } > "$tmp/bad.pem"
run "$bin" tlsa "$tmp/bad.pem"
[ "$st" = 1 ] && [[ "$err" == *"certificate 1 does not parse"* ]] && ok "damaged certificate: exit 1" || notok "damaged" "exit $st" "$err"
run "$bin" tlsa
[ "$st" = 2 ] && [[ "$err" == *"usage: danerelay tlsa"* ]] && ok "no file: usage, exit 2" || notok "usage" "exit $st" "$err"
run "$bin" tlsa --host 'bad host' "$data/leaf.pem"
[ "$st" = 2 ] && ok "bad --host: exit 2" || notok "bad host" "exit $st" "$err"
run "$bin" tlsa --frob "$data/leaf.pem"
[ "$st" = 2 ] && ok "unknown option: exit 2" || notok "unknown option" "exit $st"
echo "1..$n"
