#!/usr/bin/env bash
# Check the C sources against .clang-format (STYLE.md section 10): prints
# FILE:LINE for every line clang-format would change, exits 1 on any.
#
#   scripts/check-format.sh          check (a step of `make test`)
#   scripts/check-format.sh --fix    rewrite the files in place (`make format`)
#
# The sources are the tracked *.c and *.h files; test data and fuzz corpora
# are not code and are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null; then
  echo "check-format: $clang_format not found (scripts/deps.sh test installs it)" >&2
  exit 1
fi

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r f; do files+=("$f"); done < <(git ls-files -- '*.c' '*.h')
else
  while IFS= read -r f; do files+=("${f#./}"); done < <(find . -name '*.[ch]' -not -path './build*' | sort)
fi
sources=()
for f in "${files[@]}"; do
  case $f in
    tests/data/*|*/corpus/*) continue ;;
  esac
  [ -f "$f" ] && sources+=("$f")
done

if [ "${1:-}" = --fix ]; then
  "$clang_format" -i --style=file "${sources[@]}"
  echo "format: rewrote ${#sources[@]} files where needed"
  exit 0
fi

out=$("$clang_format" --dry-run --style=file "${sources[@]}" 2>&1 || true)
# Each finding starts "FILE:LINE:COL: ... [-Wclang-format-violations]".
offenders=$(printf '%s\n' "$out" | sed -nE 's/^([^: ]+):([0-9]+):[0-9]+: (warning|error): .*clang-format-violations.*/\1:\2/p')
if [ -n "$offenders" ]; then
  printf '%s\n' "$offenders"
  n=$(printf '%s\n' "$offenders" | wc -l)
  nf=$(printf '%s\n' "$offenders" | cut -d: -f1 | sort -u | wc -l)
  echo "check-format: $n places in $nf files differ from .clang-format; run make format" >&2
  exit 1
fi
if printf '%s\n' "$out" | grep -q .; then
  printf '%s\n' "$out" >&2   # clang-format failed for another reason
  exit 1
fi
echo "ok - ${#sources[@]} C files match .clang-format"
