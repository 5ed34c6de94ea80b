#!/usr/bin/env bash
# Every reference in the code resolves inside this repository, so nothing
# dangles on a fresh clone:
#   - a checklist row id (C05, I37) cited in a C file is a row of
#     docs/rfc7672-checklist.md, and "checklist departure N" / "checklist
#     note N" is one of its numbered departures;
#   - no source, meson, shell or Python file cites ../shared/ (the planning
#     folder beside the checkout) or an issue-tracker number ("issue 6").
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

checklist=docs/rfc7672-checklist.md
if [ ! -f "$checklist" ]; then
  echo "check-refs: $checklist is missing" >&2
  exit 1
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- '*.c' '*.h' '*meson.build' '*.sh' '*.py' 'Makefile')
else
  mapfile -t files < <(find . -type f \( -name '*.[ch]' -o -name meson.build -o -name '*.sh' \
    -o -name '*.py' -o -name Makefile \) -not -path './build*' | sed 's|^\./||' | sort)
fi
csrc=()
kept=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  # This script names what it looks for.
  [ "$f" = scripts/check-refs.sh ] && continue
  kept+=("$f")
  case $f in
    tests/data/*|*/corpus/*) ;;
    *.c|*.h) csrc+=("$f") ;;
  esac
done
files=("${kept[@]}")

bad=0
report() { echo "$1"; bad=$((bad + 1)); }

# 1. Row ids and departures.
rows=$(grep -oE '^\| [CI][0-9]{2} \|' "$checklist" | tr -d '| ')
ndep=$(sed -n '/^## Where Postfix/,$p' "$checklist" | grep -cE '^[0-9]+\. ')
while IFS=: read -r f l text; do
  for id in $(printf '%s\n' "$text" | grep -owE '[CI][0-9]{2}'); do
    grep -qx "$id" <<< "$rows" || report "$f:$l: $id is not a row of $checklist"
  done
  for n in $(printf '%s\n' "$text" | grep -oiE 'checklist (departure|note) [0-9]+' | grep -oE '[0-9]+$'); do
    if [ "$n" -lt 1 ] || [ "$n" -gt "$ndep" ]; then
      report "$f:$l: checklist departure $n does not exist ($checklist has $ndep)"
    fi
  done
done < <(grep -nHwE '[CI][0-9]{2}|checklist (departure|note) [0-9]+' "${csrc[@]}" || true)

# 2. ../shared/ and issue numbers.
while IFS=: read -r f l text; do
  report "$f:$l: cites ../shared/ (use docs/): $text"
done < <(grep -nHF '../shared/' "${files[@]}" || true)
while IFS=: read -r f l text; do
  report "$f:$l: issue-tracker reference: $text"
done < <(grep -nHiE '\bissues? #?[0-9]+' "${files[@]}" || true)

if [ "$bad" -gt 0 ]; then
  echo "check-refs: $bad dangling references" >&2
  exit 1
fi
echo "ok - references resolve (${#csrc[@]} C files)"
