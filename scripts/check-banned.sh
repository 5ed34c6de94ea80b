#!/usr/bin/env bash
# Fail on banned functions (STYLE.md section 5) in our C sources.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|strncpy|strncat|alloca|system'
# A call is the name followed by "(", not preceded by an identifier character
# (so snprintf, fgets and strtok_r's cousins do not match).
hits=$(grep -rnE --include='*.c' --include='*.h' "(^|[^A-Za-z0-9_])($banned)[[:space:]]*\(" \
  smtp tlsa relay tests 2>/dev/null | grep -vE '^\S+:[0-9]+:\s*(/\*|\*|//)' || true)
if [ -n "$hits" ]; then
  echo "banned functions used (STYLE.md section 5):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "ok - no banned functions"
