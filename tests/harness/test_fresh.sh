#!/usr/bin/env bash
# `make test` on a fresh machine (TAP). Needs root; exit 77 otherwise.
#
#   test_fresh.sh DANERELAY SOURCE_ROOT
#
# Everything happens in private namespaces, so nothing of this machine (its
# users, loopback addresses, /tmp, processes, other test worlds) is seen or
# changed: a mount namespace with an overlay on /etc (without-user.sh) and a
# tmpfs on /tmp, a network namespace with its own lo, a PID namespace.
#
# Part 1: a serve-starting unit test (test_cli_queue.sh) passes on a machine
# where the danerelay user was never created.
# Part 2: scripts/test-fresh.sh, run from a scratch copy of the checkout,
# undoes what an earlier run left: a stale world's daemon, a stale `serve`,
# a tmpfs mounted in a test directory, loopback aliases, the danerelay user,
# build directories; --dry-run changes none of it; then it runs make test
# (a stub here that records what it saw).
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -uo pipefail
if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP needs root (namespaces)"; exit 77; fi
bin=$(realpath "$1")
src=$(realpath "$2")

if [ "${FRESH_INSIDE:-}" != 1 ]; then
  # without-user.sh: the mount namespace with /etc as an overlay, minus the
  # danerelay user; inside it, the network and PID namespaces.
  FRESH_INSIDE=1 exec "$src/tests/harness/without-user.sh" danerelay \
    unshare --mount --net --pid --fork --mount-proc --propagation private "$0" "$bin" "$src"
fi

# ---- inside the namespaces
# The checkout and the build directory may live under /tmp themselves (CI
# clones into `mktemp -d`): keep a handle on the real /tmp, and after the
# tmpfs covers it, bind each of them back at the same path, read-only, so
# that the cleanup under test (which removes /tmp/danerelay-*) can never
# write to them.
exec {realtmp}</tmp || exit 1
keep=()
for d in "$src" "$(dirname "$bin")"; do
  case $d in /tmp/*) ;; *) continue ;; esac
  inside=0
  for k in "${keep[@]}"; do case $d/ in "$k"/*) inside=1 ;; esac; done
  [ $inside = 1 ] || keep+=("$d")
done
mount -t tmpfs -o mode=1777 danerelay-fresh-tmp /tmp || exit 1
for d in "${keep[@]}"; do
  # --no-canonicalize: mount would otherwise resolve the fd's link text
  # ("/tmp") again, now landing in the tmpfs.
  mkdir -p "$d" && mount --no-canonicalize --bind "/proc/self/fd/$realtmp/${d#/tmp/}" "$d" \
    && mount --no-canonicalize -o remount,bind,ro "$d" || exit 1
done
exec {realtmp}<&-
ip link set lo up || exit 1

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }

# ---- part 1: no danerelay user
if id danerelay >/dev/null 2>&1; then
  notok "the danerelay user is absent at the start" "$(id danerelay)"
else
  ok "the danerelay user is absent at the start"
fi
out=$("$src/tests/unit/relay/test_cli_queue.sh" "$bin" 2>&1); st=$?
if [ $st = 0 ] && ! grep -q '^not ok' <<< "$out"; then
  ok "test_cli_queue.sh passes without a danerelay user"
else
  notok "test_cli_queue.sh passes without a danerelay user" "exit $st" "$(grep -A3 '^not ok' <<< "$out" | head -20)"
fi
check "it created the run user itself" bash -c "id danerelay >/dev/null"

# Concurrent callers (meson runs unit tests in parallel) all succeed.
userdel danerelay
pids=()
for i in 1 2 3 4; do "$src/scripts/ensure-run-user.sh" > "/tmp/eru.$i" 2>&1 & pids+=($!); done
all=0
for p in "${pids[@]}"; do wait "$p" || all=1; done
[ $all = 0 ] && [ "$(cat /tmp/eru.* | grep -c '^created$')" = 1 ] \
  && [ "$(grep -c '^danerelay:' /etc/passwd)" = 1 ] \
  && ok "four concurrent ensure-run-user.sh: all succeed, one creates the user" \
  || notok "concurrent ensure-run-user.sh" "$(cat /tmp/eru.*)"

# ---- part 2: what an earlier run leaves behind
repo=/tmp/repo
mkdir -p "$repo/scripts" "$repo/tests/world" "$repo/build" "$repo/build-asan" "$repo/build-fuzz" "$repo/build-results"
cp "$src/scripts/test-fresh.sh" "$repo/scripts/"
cp "$src/tests/world/world.sh" "$repo/tests/world/"
# The stub make test records the machine as it finds it.
cat > "$repo/scripts/test.sh" <<'EOF'
#!/usr/bin/env bash
{ echo "make test ran"; id danerelay 2>&1; ls -d /tmp/danerelay-* 2>&1; ip -4 -o addr show dev lo; } > /tmp/stub-saw
EOF
chmod +x "$repo/scripts/test.sh"

# A world whose test was killed: its state dir lists a running daemon
# (leading its own session, as NSD and Postfix do) by pid and marker.
w=/tmp/danerelay-world.stale
mkdir -p "$w/run" "$w/log"
setsid python3 -c 'import time; time.sleep(600)' "$w/log/daemon.log" >/dev/null 2>&1 &
sleep 0.3
dpid=$(pgrep -f -- "$w/log/daemon.log")
echo "daemon $dpid $w/log/daemon.log" > "$w/run/procs"
# The disk-full tmpfs of a killed reliability run.
mkdir -p "$w/rel/disk"
mount -t tmpfs -o size=1m danerelay-fresh-disk "$w/rel/disk"
# A serve whose test script was killed (it runs as danerelay, so userdel
# fails while it lives).
q=/tmp/danerelay-cliq-stale
mkdir -p "$q"; chmod 755 "$q"
printf '%s\n' "spool_dir = $q/spool" "myhostname = relay.test" "listen = 127.0.0.1:10025" \
  "dns_forwarders = 127.0.0.1@9" "shutdown_timeout = 1s" > "$q/d.conf"
"$bin" -c "$q/d.conf" serve > /tmp/serve.out 2>&1 &
spid=$!
for _ in $(seq 40); do grep -q "event=started" /tmp/serve.out && break; sleep 0.25; done
check "setup: stale serve running as danerelay" grep -q "event=privileges user=danerelay" /tmp/serve.out
ip addr add 127.15.10.1/8 dev lo
ip addr add 127.250.0.9/8 dev lo
# Something that must survive: not a test directory, not in 127/8.
mkdir -p /tmp/danerelay_not_a_test_dir /tmp/other
ip addr add 10.99.0.1/32 dev lo
sleep 30 &
bystander=$!

snapshot() {
  { id danerelay 2>&1; ls -d /tmp/danerelay-* "$repo"/build* 2>&1; ip -4 -o addr show dev lo | awk '{ print $4 }'
    grep danerelay-fresh-disk /proc/self/mountinfo | awk '{ print $5 }'
    for p in "$dpid" "$spid"; do [ -d "/proc/$p" ] && echo "running $p"; done; } 2>&1
}
before=$(snapshot)
dry=$("$repo/scripts/test-fresh.sh" --dry-run 2>&1); st=$?
[ $st = 0 ] && [ "$(snapshot)" = "$before" ] && [ ! -e /tmp/stub-saw ] \
  && ok "--dry-run changes nothing and runs no tests" || notok "--dry-run" "exit $st" "$dry"
for want in "stop the test world in $w" "would stop pid $spid" "remove $w" "remove $q" \
    "remove loopback address 127.15.10.1/8" "remove loopback address 127.250.0.9/8" \
    "remove system user danerelay" "remove $repo/build" "remove $repo/build-results"; do
  grep -qF -- "$want" <<< "$dry" && ok "--dry-run says: $want" || notok "--dry-run says: $want" "$dry"
done
! grep -qE "127\.0\.0\.1/8|10\.99\.0\.1|not_a_test_dir|/tmp/other|pid $bystander" <<< "$dry" \
  && ok "--dry-run names nothing else" || notok "--dry-run names nothing else" "$dry"

out=$("$repo/scripts/test-fresh.sh" 2>&1); st=$?
[ $st = 0 ] && ok "test-fresh exits 0" || notok "test-fresh exits 0" "exit $st" "$out"
check "the stale world's daemon is stopped" test ! -d "/proc/$dpid"
wait "$spid" 2>/dev/null
check "the stale serve is stopped" test ! -d "/proc/$spid"
check "the tmpfs is unmounted" bash -c '! grep -q danerelay-fresh-disk /proc/self/mountinfo'
check "the stale test directories are removed" bash -c '! ls -d /tmp/danerelay-* 2>/dev/null'
addrs=$(ip -4 -o addr show dev lo | awk '{ print $4 }' | sort | tr '\n' ' ')
[ "$addrs" = "10.99.0.1/32 127.0.0.1/8 " ] && ok "127/8 aliases removed; 127.0.0.1/8 and 10.99.0.1 kept" \
  || notok "loopback addresses" "$addrs"
check "the danerelay user is removed" bash -c '! id danerelay 2>/dev/null'
check "its group is removed" bash -c '! getent group danerelay'
check "the build directories are removed" bash -c "! ls -d $repo/build* 2>/dev/null"
check "other directories and processes are untouched" \
  bash -c "[ -d /tmp/danerelay_not_a_test_dir ] && [ -d /tmp/other ] && kill -0 $bystander"
if [ -f /tmp/stub-saw ] && grep -q "make test ran" /tmp/stub-saw && grep -q "no such user" /tmp/stub-saw \
    && grep -q "No such file" /tmp/stub-saw && ! grep -q "127.15.10.1" /tmp/stub-saw; then
  ok "then make test runs, on the cleaned machine"
else
  notok "then make test runs, on the cleaned machine" "$(cat /tmp/stub-saw 2>&1)"
fi
kill "$bystander" 2>/dev/null
echo "1..$n"
