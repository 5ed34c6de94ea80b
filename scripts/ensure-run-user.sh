#!/usr/bin/env bash
# ensure-run-user.sh [USER]: create the unprivileged system user that
# `danerelay serve` switches to when started as root (run_user, default
# danerelay), as a package's postinst would, unless it exists. Prints
# "created" or "present"; does nothing (prints "not root") for a non-root
# caller, since serve then does not switch users.
#
# Safe to run concurrently (meson runs unit tests in parallel): callers
# take turns under a lock on this script file, because two useradd runs
# that both checked before either wrote would both "create" the user, the
# second overwriting the first's entry, possibly with another uid.
set -uo pipefail
user=${1:-danerelay}
if [ "$(id -u)" != 0 ]; then echo "not root"; exit 0; fi
exec 9< "$0"
flock 9 || { echo "ensure-run-user.sh: cannot lock $0" >&2; exit 1; }
# useradd also fails while something else (adduser, passwd) holds
# /etc/passwd's own lock: retry until the user resolves.
for _ in $(seq 100); do
  if id "$user" >/dev/null 2>&1; then echo "present"; exit 0; fi
  if useradd --system --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$user" 2>/dev/null; then
    echo "created"; exit 0
  fi
  sleep 0.1
done
echo "ensure-run-user.sh: cannot create system user $user" >&2
exit 1
