#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for SECONDS (default 30)
# on a scratch copy of its seed corpus. Prints one TAP case per target.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
secs=${1:-30}
dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false -Db_lundef=false \
    --buildtype=debugoptimized >/dev/null || { echo "not ok - fuzz: configure"; exit 1; }
fi
ninja -C "$dir" >/dev/null || { echo "not ok - fuzz: build"; exit 1; }
shopt -s nullglob
n=0
results_log=$(mktemp)
for bin in "$dir"/tests/fuzz/fuzz_*; do
  # Only the executables: meson keeps object directories named fuzz_X.p.
  if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
  name=${bin##*/fuzz_}
  corpus=$(find tests/fuzz -type d -path "*/corpus/$name" | head -1)
  work=$(mktemp -d)
  [ -n "$corpus" ] && cp -r "$corpus"/. "$work"/
  n=$((n + 1))
  echo "=== fuzz $name for ${secs}s" >&2
  if "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" > "$results_log" 2>&1; then
    echo "ok $n - fuzz $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$results_log" | awk '{print $2}') execs)"
  else
    echo "not ok $n - fuzz $name"
    tail -30 "$results_log" >&2
  fi
  rm -rf "$work"
done
