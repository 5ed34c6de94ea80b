#!/usr/bin/env bash
# Generate the test PKI for tests/unit/tlsa (committed outputs; rerun only to
# change fixtures). Validity dates are fixed, and the tests pin verification
# time to 2025-06-01T00:00:00Z (TLSA_TEST_TIME), so the fixtures never expire.
#
#   root      CN=danerelay test root        (self-signed, 2024..2044)
#   int       CN=danerelay test intermediate (signed by root)
#   leaf      SAN mx.example.net             (signed by int)
#   expired   SAN mx.example.net, 2020..2021 (signed by int)
#   other     SAN other.example.org          (signed by int)
#   wild      SAN *.example.net              (signed by int)
#   partial   SAN m*.example.net             (signed by int; invalid wildcard, RFC 7672 3.2.3)
#   root2     CN=danerelay unrelated root    (self-signed; trusts nothing here)
# Keys are EC P-256. Usage: gen-certs.sh [outdir]
set -euo pipefail
out=${1:-$(cd "$(dirname "$0")" && pwd)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p db
: > db/index
echo 1000 > db/serial
cat > ca.cnf <<'CNF'
[ ca ]
default_ca = testca
[ testca ]
database = db/index
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_leaf ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:${ENV::SAN}
CNF
export SAN=unused
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
csr() { openssl req -new -config ca.cnf -key "$1.key" -subj "/CN=$2" -out "$1.csr"; }
selfsign() {
  key "$1"; csr "$1" "$2"
  openssl ca -batch -config ca.cnf -selfsign -keyfile "$1.key" -in "$1.csr" -out "$1.pem" \
    -extensions v3_ca -startdate 20240101000000Z -enddate 20440101000000Z -notext 2>/dev/null
}
sign() { # name cn issuer ext start end [san]
  key "$1"; csr "$1" "$2"
  SAN=${7:-unused} openssl ca -batch -config ca.cnf -cert "$3.pem" -keyfile "$3.key" \
    -in "$1.csr" -out "$1.pem" -extensions "$4" -startdate "$5" -enddate "$6" -notext 2>/dev/null
}
selfsign root "danerelay test root"
selfsign root2 "danerelay unrelated root"
sign int "danerelay test intermediate" root v3_ca 20240101000000Z 20440101000000Z
sign leaf mx.example.net int v3_leaf 20240101000000Z 20440101000000Z mx.example.net
sign expired mx.example.net int v3_leaf 20200101000000Z 20210101000000Z mx.example.net
sign other other.example.org int v3_leaf 20240101000000Z 20440101000000Z other.example.org
sign wild "*.example.net" int v3_leaf 20240101000000Z 20440101000000Z '*.example.net'
sign partial "m*.example.net" int v3_leaf 20240101000000Z 20440101000000Z 'm*.example.net'
for n in root root2 int leaf expired other wild partial; do
  openssl x509 -in "$n.pem" -out "$out/$n.pem"
  cp "$n.key" "$out/$n.key"
done
echo "wrote test PKI to $out"
