#!/usr/bin/env bash
# scripts/check-layers.py against the tree and against copies of it with
# one planted violation each (TAP): the check passes on the tree as it is,
# and fails, naming the file and line, on an include or a meson dependency
# that points up or sideways, on a cycle in relay/LAYERS, and on a folder
# the table does not list.
# Usage: test_check_layers.sh SOURCE_ROOT
set -u
src=$(realpath "$1")
check="$src/scripts/check-layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf "%s\n" "$l" | sed "s/^/# /"; done; }

# fresh: a copy of the folders the table covers.
fresh() {
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree"
  cp -r "$src/relay" "$src/smtp" "$src/tlsa" "$tmp/tree/"
}
# plant FILE LINE_NO TEXT: insert TEXT as line LINE_NO of FILE.
plant() {
  sed -i "$2i $3" "$tmp/tree/$1"
}
# expect_fail NAME PATTERN: the check exits 1 and its report matches PATTERN.
expect_fail() {
  out=$(python3 "$check" "$tmp/tree" 2>&1)
  rc=$?
  if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -qE -- "$2"; then
    ok "$1"
  else
    notok "$1" "exit $rc" "$out"
  fi
}

if out=$(python3 "$check" "$src" 2>&1); then
  ok "the tree passes"
else
  notok "the tree passes" "$out"
fi

fresh
plant relay/queue/relay_dsn.c 3 '#include "relay_deliver.h"'
expect_fail "upward include (queue -> deliver)" \
  '^relay/queue/relay_dsn.c:3: "relay_deliver.h" is in relay/deliver'

fresh
plant relay/smtpd/relay_smtpd.c 2 '#include "relay_control.h"'
expect_fail "sideways include (smtpd -> control)" \
  '^relay/smtpd/relay_smtpd.c:2: "relay_control.h" is in relay/control'

fresh
plant relay/deliver/deliver_int.h 2 '#include "daemon_int.h"'
expect_fail "include of the daemon from below (deliver -> daemon)" \
  '^relay/deliver/deliver_int.h:2: "daemon_int.h" is in relay/daemon'

fresh
plant tlsa/tlsa.h 2 '#include "relay_log.h"'
expect_fail "pure leaf includes relay/ (tlsa -> base)" \
  '^tlsa/tlsa.h:2: "relay_log.h" is in relay/base'

fresh
plant relay/dns/relay_idn.c 2 '#include "no_such_header.h"'
expect_fail "include of a header in no layer" \
  '^relay/dns/relay_idn.c:2: "no_such_header.h" is in no layer'

fresh
sed -i 's/dependencies : \[base_dep\])/dependencies : [base_dep, deliver_dep])/' "$tmp/tree/relay/net/meson.build"
expect_fail "upward link (net library depends on deliver_dep)" \
  '^relay/net/meson.build:[0-9]+: links deliver_dep'

fresh
sed -i 's|^relay/base .*|relay/base        smtp tlsa relay/cli|' "$tmp/tree/relay/LAYERS"
expect_fail "a cycle in the table" 'the table has a cycle'

fresh
mkdir "$tmp/tree/relay/extra"
echo 'int extra;' > "$tmp/tree/relay/extra/extra.c"
expect_fail "a folder the table does not list" '^relay/extra: C sources'

echo "1..$n"
[ "$fails" -eq 0 ]
