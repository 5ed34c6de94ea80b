#!/usr/bin/env bash
# without-user.sh USER CMD...: run CMD as root in a private mount namespace
# whose /etc is an overlay of the real one with USER and its group removed,
# so CMD sees a machine on which USER was never created. Whatever CMD adds
# to the user database (useradd) stays in the overlay and is gone when CMD
# exits; the real /etc is never written.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: without-user.sh USER CMD..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "without-user.sh: needs root (mount namespace)" >&2; exit 77; }
user=$1; shift
ov=$(mktemp -d /tmp/danerelay-etc.XXXXXX)
trap 'rm -rf "$ov"' EXIT
mkdir "$ov/upper" "$ov/work"
# The inner shell gets the user and the overlay paths as arguments, never
# as text spliced into its program.
# shellcheck disable=SC2016  # the script runs in the inner bash
unshare --mount --propagation private bash -c '
  set -e
  ov=$1 user=$2; shift 2
  mount -t overlay danerelay-etc -o "lowerdir=/etc,upperdir=$ov/upper,workdir=$ov/work" /etc
  for f in passwd group shadow gshadow; do
    [ -f "/etc/$f" ] && sed -i "/^$user:/d" "/etc/$f"
  done
  if id "$user" >/dev/null 2>&1; then
    echo "without-user.sh: $user still resolves (NSS source other than /etc?)" >&2
    exit 1
  fi
  exec "$@"' without-user "$ov" "$user" "$@"
