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
# Two targets at a time (FUZZ_JOBS): each libFuzzer run is single-threaded,
# and the smoke run is a fixed wall-clock budget per target.
jobs=${FUZZ_JOBS:-2}
out=$(mktemp -d)
names=()
run_one() {  # BIN NAME: one run; its TAP verdict goes to $out/NAME.tap
  local bin=$1 name=$2 corpus work log
  corpus=$(find tests/fuzz -type d -path "*/corpus/$name" | head -1)
  work=$(mktemp -d)
  log="$out/$name.log"
  [ -n "$corpus" ] && cp -r "$corpus"/. "$work"/
  if "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" > "$log" 2>&1; then
    echo "ok - fuzz $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}') execs)" > "$out/$name.tap"
  else
    echo "not ok - fuzz $name" > "$out/$name.tap"
  fi
  rm -rf "$work"
}
for bin in "$dir"/tests/fuzz/fuzz_*; do
  # Only the executables: meson keeps object directories named fuzz_X.p.
  if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
  name=${bin##*/fuzz_}
  names+=("$name")
  echo "=== fuzz $name for ${secs}s" >&2
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  run_one "$bin" "$name" &
done
wait
n=0
for name in "${names[@]}"; do
  n=$((n + 1))
  if [ -s "$out/$name.tap" ]; then
    sed "s/^\(not \)\{0,1\}ok /&$n /" "$out/$name.tap"
  else
    echo "not ok $n - fuzz $name (no result)"
  fi
  case $(cat "$out/$name.tap" 2>/dev/null) in
    ok*) ;;
    *) tail -30 "$out/$name.log" >&2 ;;
  esac
done
rm -rf "$out"
