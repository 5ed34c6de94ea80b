#!/bin/bash
# Profiles danerelay serve during a danerelay-only QUICK bench (BENCHMARKS.md
# "CPU profile of the queue"): perf record -g on the serve process for SECS
# (30) s from the start of the measured phase (after warm-up), then
# bench/profile-summary.sh. Run from the top of the tree as root:
#   WORLD_NET=24 RELAY_PORT=10124 OUT=/tmp/prof bench/profile.sh build/danerelay
set -u
DR=${1:-build/danerelay}
OUT=${OUT:-/tmp/danerelay-prof}
SECS=${SECS:-30}
mkdir -p "$OUT"
BD=$(mktemp -d /tmp/danerelay-bench.XXXXXX)
BENCH_DIR=$BD RUNS=danerelay BACKLOG_N=0 QUICK=1 N=${N:-4000} \
  bench/run.sh "$DR" > "$OUT/bench.txt" 2> "$OUT/bench.err" &
B=$!
pid=
for _ in $(seq 1200); do
  # the measured phase ("danerelay: N messages, S sessions"), after warm-up
  grep -q "danerelay: [0-9]* messages" "$OUT/bench.err" 2>/dev/null &&
    pid=$(pgrep -f "$BD/danerelay.conf serve" | head -1)
  [ -n "$pid" ] && break
  sleep 0.2
done
[ -n "$pid" ] || { echo "serve not found" >&2; wait $B; exit 1; }
sleep 2
perf record -F 999 -g -p "$pid" -o "$OUT/perf.data" -- sleep "$SECS" > "$OUT/perf.rec.log" 2>&1
wait $B
bench/profile-summary.sh "$OUT/perf.data" > "$OUT/summary.txt"
cp "$BD/results.json" "$BD/log/danerelay.log" "$OUT/" 2>/dev/null
rm -rf "$BD"
