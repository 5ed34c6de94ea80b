#!/usr/bin/env bash
# Run shellcheck on every shell script in the tree: tracked *.sh files, files whose
# first line is a sh/bash shebang, and the bash completion. Options come from
# .shellcheckrc (follow `source` to files beside the script). A finding is
# fixed, or disabled on its line with a one-line reason where the code is
# right. Exits 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

if ! command -v shellcheck >/dev/null; then
  echo "check-shell: shellcheck not found (scripts/deps.sh test installs it)" >&2
  exit 1
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t tracked < <(git ls-files)
else
  mapfile -t tracked < <(find . -type f -not -path './build*' -not -path './.git/*' | sed 's|^\./||' | sort)
fi
scripts=()
completions=()
for f in "${tracked[@]}"; do
  [ -f "$f" ] || continue
  case $f in
    *.bash-completion) completions+=("$f"); continue ;;
    *.sh) scripts+=("$f"); continue ;;
  esac
  first=$(head -n 1 "$f" 2>/dev/null | tr -d '\0') || true
  case $first in
    '#!'*/sh|'#!'*/bash|'#!'*/env\ sh|'#!'*/env\ bash|'#!'*/sh\ *|'#!'*/bash\ *) scripts+=("$f") ;;
  esac
done

rc=0
shellcheck -f gcc "${scripts[@]}" || rc=1
if [ ${#completions[@]} -gt 0 ]; then
  shellcheck -f gcc -s bash "${completions[@]}" || rc=1
fi
n=$((${#scripts[@]} + ${#completions[@]}))
if [ $rc = 0 ]; then
  echo "ok - $n shell scripts pass shellcheck"
else
  echo "check-shell: findings above (shellcheck, $n scripts checked)" >&2
fi
exit $rc
