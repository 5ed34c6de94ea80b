#!/usr/bin/env bash
# scripts/check-clock.py against the tree and against copies of it with
# one planted clock read each (TAP): the check passes on the tree as it is,
# fails, naming the file and line, on a read of the system's clocks outside
# relay/base/relay_clock.c, and is not fooled by comments, strings or names
# that merely end in "time".
# Usage: test_check_clock.sh SOURCE_ROOT
set -u
src=$(realpath "$1")
check="$src/scripts/check-clock.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf "%s\n" "$l" | sed "s/^/# /"; done; }

fresh() {
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree"
  cp -r "$src/relay" "$src/smtp" "$src/tlsa" "$tmp/tree/"
}
# append FILE TEXT: add TEXT as the last line of FILE.
append() {
  printf '%s\n' "$2" >> "$tmp/tree/$1"
}
lines() { wc -l < "$tmp/tree/$1"; }
expect_fail() {  # NAME PATTERN
  out=$(python3 "$check" "$tmp/tree" 2>&1)
  rc=$?
  if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -qE -- "$2"; then
    ok "$1"
  else
    notok "$1" "exit $rc" "$out"
  fi
}
expect_pass() {  # NAME
  out=$(python3 "$check" "$tmp/tree" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then ok "$1"; else notok "$1" "exit $rc" "$out"; fi
}

if out=$(python3 "$check" "$src" 2>&1); then
  ok "the tree passes"
else
  notok "the tree passes" "$out"
fi

f=relay/deliver/relay_sched.c
fresh
append $f 'static long t1(void) { struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec; }'
expect_fail "clock_gettime in deliver/" "^$f:$(lines $f): clock_gettime\\(\\)"

fresh
append $f 'static long t2(void) { return (long)time(NULL); }'
expect_fail "time(NULL) in deliver/" "^$f:$(lines $f): time\\(\\)"

fresh
append relay/smtpd/relay_smtpd.c 'static uint64_t t3(uv_loop_t *l) { return uv_now(l); }'
expect_fail "uv_now in smtpd/ (sessions take the context clock)" \
  "^relay/smtpd/relay_smtpd.c:$(lines relay/smtpd/relay_smtpd.c): uv_now\\(\\)"

fresh
append relay/daemon/relay_serve.c 'static uint64_t t4(void) { return uv_hrtime(); }'
expect_fail "uv_hrtime in daemon/" "^relay/daemon/relay_serve.c:[0-9]+: uv_hrtime\\(\\)"

fresh
append relay/cli/relay_cli_queue.c 'static void t5(void) { struct timeval tv; gettimeofday(&tv, NULL); }'
expect_fail "gettimeofday in cli/ (it uses relay_clock_system())" \
  "^relay/cli/relay_cli_queue.c:[0-9]+: gettimeofday\\(\\)"

fresh
append tlsa/tlsa_ssl.c 'static long t6(void) { return (long)time(0); }'
expect_fail "time() in a pure module (tlsa/)" "^tlsa/tlsa_ssl.c:[0-9]+: time\\(\\)"

fresh
append relay/deliver/relay_sched.c '/* clock_gettime() and time(NULL) are read in relay_clock.c only */'
append relay/deliver/relay_sched.c 'static const char t7[] = "uv_now(loop)";'
append relay/deliver/relay_sched.c '// gettimeofday(&tv, NULL)'
append relay/deliver/relay_sched.c 'static size_t t8(char *b, const struct tm *tm) { return strftime(b, 9, "%H", tm); }'
append relay/deliver/relay_sched.c 'static void t9(uv_loop_t *l) { uv_update_time(l); }'
expect_pass "comments, strings, strftime and uv_update_time are not reads"

echo "1..$n"
[ "$fails" -eq 0 ]
