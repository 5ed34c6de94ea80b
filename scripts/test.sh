#!/usr/bin/env bash
# make test: source checks (banned functions, format, shellcheck,
# references), gcc build + every suite, clang-tidy (lint), ASan+UBSan
# build + every suite,
# fuzz smoke run (when clang is present), then one closing line
# "N passed, N failed" summed over all of them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

scripts/deps.sh test || exit 1

# Prepare the machine once, before the first suite, and say what changed.
# Suites that need these also do it themselves, so that no suite depends on
# another having run first (meson runs unit tests in parallel, any order).
if [ "$(id -u)" = 0 ]; then
  run_user=$(scripts/ensure-run-user.sh) || exit 1
  echo "test: system user danerelay (serve's run_user): $run_user" >&2
  echo "test: test worlds add loopback addresses 127.${WORLD_NET:-0}.x.y on lo and leave them (make test-fresh removes them)" >&2
else
  echo "test: not root: the integration suites are skipped, serve runs as $(id -un)" >&2
fi

results=build-results
rm -rf "$results"; mkdir -p "$results"
steps="$results/steps.tap"
: > "$steps"
step() {  # step NAME CMD...: run a step, record it as one TAP case
  local name=$1; shift
  echo "=== $name" >&2
  if "$@"; then echo "ok - $name" >> "$steps"; return 0; fi
  echo "not ok - $name" >> "$steps"; return 1
}

logs=()
step "banned functions" scripts/check-banned.sh
step "layers" python3 scripts/check-layers.py
step "clock" python3 scripts/check-clock.py
step "format" scripts/check-format.sh
step "shellcheck" scripts/check-shell.sh
step "references" scripts/check-refs.sh

build_and_test() {  # DIR MESON_ARGS...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    step "configure $dir" meson setup "$dir" "$@" >/dev/null || return 1
  fi
  step "build $dir" ninja -C "$dir" >/dev/null || { ninja -C "$dir" 2>&1 | tail -40 >&2; return 1; }
  local suites=()  # SUITES="--suite unit --suite smtp": words, split here
  read -ra suites <<< "${SUITES:-}"
  meson test -C "$dir" --print-errorlogs --num-processes "${TEST_JOBS:-2}" "${suites[@]}" >&2
  logs+=("$dir/meson-logs/testlog.json")
}

build_and_test build
# After the gcc build: clang-tidy reads its compile_commands.json.
step "lint" scripts/check-lint.sh build
build_and_test build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  --buildtype=debug

if [ "${FUZZ_SMOKE:-1}" = 1 ] && command -v clang >/dev/null; then
  scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-30}" > "$results/fuzz-smoke.tap" || true
  logs+=("$results/fuzz-smoke.tap")
fi

echo >&2
python3 scripts/summarize.py "$steps" "${logs[@]}"
