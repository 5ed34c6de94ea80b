#!/usr/bin/env bash
# Static analysis with clang-tidy over every C file meson compiles (from
# BUILD/compile_commands.json) plus bench/*.c, limited to checks that find
# real bugs in this code. Prints FILE:LINE: [check] message for each finding
# and exits 1 on any that scripts/lint-suppressions.txt does not list.
#
#   scripts/check-lint.sh [BUILD]      BUILD defaults to build (set up if absent)
#
# A false positive outside the to-do list is silenced on its line with
# /* NOLINT(check): reason */ or on the line before with NOLINTNEXTLINE.
# Not in the list: bugprone-not-null-terminated-result (this code builds
# length-delimited buffers with memcpy on purpose: 6 findings, all such).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${1:-build}

# The checks, and why each matters here.
checks=(
  # Null dereference, use of uninitialised values, bad shifts, division by
  # zero, calls through null: the parsers and state machines run on
  # network input.
  'clang-analyzer-core.*'
  # malloc/free pairing (leak, double free, use after free), libc API
  # misuse (open flags, zero-size allocation, NULL to string functions):
  # lifetimes across libuv callbacks are where the daemon can go wrong.
  'clang-analyzer-unix.*'
  # calloc/malloc of 0 bytes may return NULL, read as out of memory.
  'clang-analyzer-optin.portability.UnixAPI'
  # sizeof(pointer) where the object was meant, in memcpy/alloc sizes.
  'bugprone-sizeof-expression'
  # memset with swapped or char-truncated arguments (key wiping).
  'bugprone-suspicious-memset-usage'
  # a signed char widened to int: wrong ctype lookups on octets >= 0x80.
  'bugprone-signed-char-misuse'
  # strcmp used as a boolean, the wrong way round.
  'bugprone-suspicious-string-compare'
  # (uint64_t)(a * b) computed in the narrow type first.
  'bugprone-misplaced-widening-cast'
  # a uint8_t loop counter against a wider bound never ends.
  'bugprone-too-small-loop-variable'
  'bugprone-infinite-loop'
  # a missing comma that silently joins two entries of a string table.
  'bugprone-suspicious-missing-comma'
  # integer division in a floating-point context (delays, rates).
  'bugprone-integer-division'
  # sscanf/atoi-style conversions that cannot report errors.
  'cert-err34-c'
  # x == x, a && a: a copy-paste slip in a condition.
  'misc-redundant-expression'
)
checklist=$(IFS=,; echo "-*,${checks[*]}")

for tool in clang-tidy run-clang-tidy; do
  if ! command -v "$tool" >/dev/null; then
    echo "check-lint: $tool not found (scripts/deps.sh test installs clang-tidy)" >&2
    exit 1
  fi
done
if [ ! -f "$build/compile_commands.json" ]; then
  meson setup "$build" >/dev/null || exit 1
fi

out=$build/clang-tidy.log   # the raw output, kept for reading
: > "$out"
hf='/(smtp|tlsa|relay|tests|bench)/'
nice run-clang-tidy -quiet -p "$build" -j "${LINT_JOBS:-2}" -checks="$checklist" \
  -header-filter="$hf" "$PWD/(smtp|tlsa|relay|tests)/" >> "$out" 2>/dev/null || true
for f in bench/*.c; do
  [ -f "$f" ] || continue
  # bench/queuerate.c builds against the queue's headers.
  nice clang-tidy -quiet -checks="$checklist" -header-filter="$hf" "$f" -- -std=gnu17 \
    -Irelay/queue -Irelay/base -Ismtp -Itlsa -I"$build" >> "$out" 2>/dev/null || true
done

# "FILE:LINE:COL: warning: MESSAGE [CHECK]" -> "FILE:LINE: [CHECK] MESSAGE",
# with FILE relative to the source root, each finding once.
findings=$(sed -nE 's/\x1b\[[0-9;]*m//g; s/^(.+):([0-9]+):[0-9]+: (warning|error): (.*) \[([A-Za-z0-9.,-]+)\]$/\1:\2: [\5] \4/p' "$out" |
  sed -E "s|^$PWD/||; s|^([^:]*/)?\\.\\./||" | sort -u)

# Suppressions: "BASENAME CHECK reason"; base names survive moves and
# reformatting, line numbers would not.
supp=scripts/lint-suppressions.txt
left=()
while IFS= read -r line; do
  [ -n "$line" ] || continue
  file=${line%%:*}
  check=$(sed -nE 's/^[^ ]+ \[([^]]+)\].*/\1/p' <<< "$line")
  if [ -f "$supp" ] && grep -qE "^${file##*/}[[:space:]]+${check//./\\.}([[:space:]]|$)" "$supp"; then
    echo "suppressed: $line"
    continue
  fi
  left+=("$line")
done <<< "$findings"

if [ ${#left[@]} -gt 0 ]; then
  printf '%s\n' "${left[@]}"
  echo "check-lint: ${#left[@]} findings" >&2
  exit 1
fi
echo "ok - clang-tidy: no findings (${#checks[@]} checks)"
