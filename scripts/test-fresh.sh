#!/usr/bin/env bash
# make test-fresh: undo what earlier test runs left on this machine, then run
# `make test` (scripts/test.sh), so that it starts as on a fresh machine.
#
#   test-fresh.sh [--dry-run] [--no-test]
#
#   --dry-run   print what would be undone; change nothing, run no tests
#   --no-test   undo, but do not run make test afterwards
#
# What earlier runs leave, and what is undone, in this order:
#   1. test worlds (tests/world/world.sh) whose state dir under /tmp (or
#      $TMPDIR) still lists running daemons: `world.sh down` stops them;
#   2. any other process started from a test's temporary directory
#      (/tmp/danerelay-*: a `danerelay serve`, faultymx.py, a Postfix or NSD
#      of a world whose state dir is gone), found by its command line,
#      environment, working directory or open files: SIGTERM, then SIGKILL;
#   3. file systems mounted below those directories (the reliability
#      suite's disk-full tmpfs), then the directories themselves;
#   4. loopback aliases: every IPv4 address on lo in 127.0.0.0/8 except
#      127.0.0.1/8 (test worlds add 127.NET.x.y);
#   5. the system user (and group) danerelay, which the tests create as
#      serve's run_user;
#   6. build/, build-asan/, build-fuzz/ and build-results/ in this checkout.
#
# It acts on the whole machine: every test world, alias and process above
# goes, including those of test runs still in progress. Needs root (run
# --dry-run first on a shared machine).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
USER_NAME=danerelay

dry=0 run_tests=1
for a in "$@"; do
  case $a in
    --dry-run) dry=1; run_tests=0 ;;
    --no-test) run_tests=0 ;;
    *) echo "usage: test-fresh.sh [--dry-run] [--no-test]" >&2; exit 2 ;;
  esac
done
if [ $dry = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "test-fresh: needs root (it removes a system user and loopback addresses); try --dry-run" >&2
  exit 1
fi

failed=0
say() { echo "test-fresh: $*" >&2; }
# act DESCRIPTION CMD...: print, and run CMD unless --dry-run.
act() {
  local what=$1; shift
  if [ $dry = 1 ]; then say "would $what"; return 0; fi
  say "$what"
  "$@" || { say "FAILED: $what"; failed=1; return 1; }
}

# Temporary directories of earlier test runs (every test names its own
# /tmp/danerelay-*; lib.sh honours TMPDIR).
tmp_roots=(/tmp)
if [ -n "${TMPDIR:-}" ] && [ "${TMPDIR%/}" != /tmp ] && [ -d "$TMPDIR" ]; then
  tmp_roots+=("${TMPDIR%/}")
fi
stale_dirs=()
for root in "${tmp_roots[@]}"; do
  for d in "$root"/danerelay-*; do
    [ -d "$d" ] && [ ! -L "$d" ] && stale_dirs+=("$d")
  done
done

# Does text (one item a line) name a path inside a stale directory?
names_stale_dir() {
  local d
  for d in "${stale_dirs[@]}"; do
    grep -qF -- "$d" <<< "$1" && return 0
  done
  return 1
}

# --- 1. worlds -------------------------------------------------------------------
for d in "${stale_dirs[@]}"; do
  while IFS= read -r procs; do
    world=${procs%/run/procs}
    act "stop the test world in $world" "$REPO/tests/world/world.sh" down "$world"
  done < <(find "$d" -maxdepth 4 -path '*/run/procs' -type f 2>/dev/null)
done

# --- 2. other processes ----------------------------------------------------------
# This script and its ancestors (make, the caller's shell) are never touched.
declare -A spare=()
p=$$
while [ -n "$p" ] && [ "$p" != 0 ]; do
  spare[$p]=1
  p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
done
stale_pids() {
  local dir pid info
  [ ${#stale_dirs[@]} -gt 0 ] || return 0
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ -n "${spare[$pid]:-}" ] && continue
    info=$({ tr '\0' '\n' < "$dir/cmdline"; tr '\0' '\n' < "$dir/environ"
      readlink "$dir/cwd"; find "$dir/fd" -mindepth 1 -maxdepth 1 -printf '%l\n'; } 2>/dev/null) || true
    [ -n "$info" ] && names_stale_dir "$info" && echo "$pid"
  done
}
mapfile -t pids < <(stale_pids)
if [ ${#pids[@]} -gt 0 ]; then
  for pid in "${pids[@]}"; do
    say "$([ $dry = 1 ] && echo "would stop" || echo "stopping") pid $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)"
  done
  if [ $dry = 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null
    for _ in $(seq 50); do
      left=()
      for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && left+=("$pid"); done
      [ ${#left[@]} -eq 0 ] && break
      sleep 0.1
    done
    [ ${#left[@]} -eq 0 ] || { say "SIGKILL to ${left[*]}"; kill -KILL "${left[@]}" 2>/dev/null; sleep 0.2; }
  fi
fi

# --- 3. mounts and directories ---------------------------------------------------
unmount() { umount "$1" 2>/dev/null || umount -l "$1"; }
for d in "${stale_dirs[@]}"; do
  # Deepest first, so a mount inside a mount comes off before its parent.
  while IFS= read -r m; do
    act "unmount $m" unmount "$m"
  done < <(awk -v d="$d" '{ m = $5; gsub(/\\040/, " ", m) }
      m == d || index(m, d "/") == 1 { print length(m) " " m }' /proc/self/mountinfo |
    sort -rn | cut -d' ' -f2-)
  act "remove $d" rm -rf --one-file-system -- "$d"
done

# --- 4. loopback aliases ---------------------------------------------------------
while read -r _ _ _ cidr _; do
  case $cidr in
    127.0.0.1/8) ;;
    127.*) act "remove loopback address $cidr" ip addr del "$cidr" dev lo ;;
  esac
done < <(ip -4 -o addr show dev lo 2>/dev/null)

# --- 5. the package an interrupted install test left installed ----------------------
if dpkg-query -W -f='${Status}' danerelay 2>/dev/null | grep -qv "not-installed"; then
  act "purge the danerelay package" dpkg --purge danerelay
fi

# --- 6. the run user -------------------------------------------------------------
if id "$USER_NAME" >/dev/null 2>&1; then
  act "remove system user $USER_NAME" userdel "$USER_NAME"
fi
# userdel removes the user's own group (USERGROUPS_ENAB); one left behind
# (or made by adduser --group) goes too.
if [ $dry = 0 ] && getent group "$USER_NAME" >/dev/null 2>&1; then
  act "remove group $USER_NAME" groupdel "$USER_NAME"
fi

# --- 6. build directories --------------------------------------------------------
for b in build build-asan build-fuzz build-results; do
  [ -e "$REPO/$b" ] && act "remove $REPO/$b" rm -rf -- "${REPO:?}/$b"
done

if [ $failed != 0 ]; then
  say "could not undo everything (above); not running make test"
  exit 1
fi
[ $dry = 1 ] && { say "dry run: nothing changed"; exit 0; }
say "machine cleaned"
[ $run_tests = 1 ] || exit 0
say "running make test"
exec "$REPO/scripts/test.sh"
