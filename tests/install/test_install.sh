#!/usr/bin/env bash
# The Debian package as an administrator meets it (meson suite `install`):
#
#   1. `make deb` (dpkg-buildpackage, DEB_BUILD_OPTIONS=nocheck: the suites
#      run in `make test` itself) on a copy of this tree;
#   2. `dpkg -i`: the user (sysusers.d), the spool 0700 (tmpfiles.d), the
#      unit enabled by deb-systemd-helper, the shlibs dependencies;
#   3. the packaged configuration checked, and read without -c;
#   4. /usr/sbin/danerelay run the way danerelay.service runs it: ExecStart=,
#      User=, Group= and UMask= read from the installed unit, an empty
#      environment, cwd /, no capabilities, $NOTIFY_SOCKET for Type=notify.
#      systemd itself does not run here (CI), so the test starts the process;
#      the configuration file is edited, as an administrator would, to point
#      at the test world (listen, resolver, trust anchor), keeping the
#      packaged spool, binary and user;
#   5. one message from the world's upstream Postfix to a DANE-EE domain:
#      delivered, and the log line on stderr (the journal) says tls=dane-ee;
#   6. `dpkg --purge`: nothing named danerelay or owned by its user is left
#      in /etc, /usr, /lib, /var or /run; the danerelay system user stays,
#      as README.Debian says (Debian leaves system users on purge).
#
# Needs root (exit 77 otherwise). Fails without touching anything when a
# danerelay package is already installed. Leaves the machine as it found
# it, also on failure or timeout: daemon stopped, package purged, world down,
# and the danerelay user removed when the test created it.
#
# usage: test_install.sh SOURCE_ROOT   (TAP on stdout, chatter on stderr)
set -uo pipefail
src=$(realpath "${1:?usage: test_install.sh SOURCE_ROOT}")
export WORLD_SH=${WORLD_SH:-$src/tests/world/world.sh}
# shellcheck source=../integration/lib.sh
source "${INTEGRATION_LIB:-$src/tests/integration/lib.sh}"
if [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP the install test needs root (dpkg -i, the test world)"
  exit 77
fi
if ! command -v dpkg >/dev/null; then
  echo "1..0 # SKIP the install test needs a Debian system (dpkg)"
  exit 77
fi

PKG=danerelay
RUN_USER=danerelay
UNIT=/lib/systemd/system/danerelay.service
CONF=/etc/danerelay/danerelay.conf
SBIN=/usr/sbin/danerelay
SPOOL=/var/spool/danerelay
WANTS=/etc/systemd/system/multi-user.target.wants/danerelay.service
export RELAY_ADDR=127.${WORLD_NET:-0}.0.1:${INSTALL_RELAY_PORT:-10027}
t0=$SECONDS

# What the package may leave behind outside its own file list (dpkg -L,
# checked separately): paths named danerelay, files owned by its user, in
# the trees where maintainer scripts and the service write. Compared before
# and after, so unrelated files never count.
traces() {
  local owned=()
  id "$RUN_USER" >/dev/null 2>&1 && owned=(-o -user "$RUN_USER")
  find -H /etc /var /run -xdev \( -name '*danerelay*' "${owned[@]}" \) \
    -print 2>/dev/null | sort -u
}

status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != not-installed ]; then
  not_ok "no $PKG package before the test (dpkg status: $status; dpkg --purge $PKG to run it)"
  tap_done
  exit 1
fi
user_before=no
id "$RUN_USER" >/dev/null 2>&1 && user_before=yes

T=$(mktemp -d /tmp/danerelay-install.XXXXXX)
# The service user reaches the notify socket in here.
chmod 755 "$T"
INSTALLED=no
DAEMON_PID=
unset before

stop_daemon() {  # SIGNAL: signal serve, wait up to TimeoutStopSec (60s)
  local i
  [ -n "$DAEMON_PID" ] || return 0
  kill "-$1" "$DAEMON_PID" 2>/dev/null
  for i in $(seq 600); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ "$i" -lt 600 ] || kill -KILL "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  DAEMON_STATUS=$?
  DAEMON_PID=
}

install_cleanup() {
  local rc=$?
  stop_daemon KILL
  if [ "$INSTALLED" = yes ]; then
    dpkg --purge "$PKG" >&2 || echo "# cleanup: dpkg --purge $PKG failed" >&2
  fi
  # What a broken purge left (reported above as a failure) goes too.
  if [ -n "${before+set}" ]; then
    comm -13 <(printf '%s\n' "$before") <(traces) | while IFS= read -r p; do
      [ -n "$p" ] && rm -rf -- "$p"
    done
  fi
  if [ "$user_before" = no ] && id "$RUN_USER" >/dev/null 2>&1; then
    userdel "$RUN_USER" >&2 || echo "# cleanup: userdel $RUN_USER failed" >&2
  fi
  if [ "$TAP_FAILED" != 0 ] || [ $rc != 0 ]; then
    echo "# install test files kept in $T (build.log, journal.log)" >&2
  else
    rm -rf "$T"
  fi
  (exit $rc)
  _lib_cleanup
}

# The world first: lib.sh's world_up installs its own exit trap, replaced
# here by one that also stops the daemon and purges the package.
# shellcheck disable=SC2119  # the world takes no options here
world_up
trap install_cleanup EXIT
diag "world up in $WORLD_STATE, relay at $RELAY_ADDR"

# --- 1. build ---------------------------------------------------------------------
mkdir "$T/src"
tar -C "$src" --exclude-vcs --exclude=./build --exclude='./build-*' --exclude=./var \
  --exclude='./obj-*' -cf - . | tar -C "$T/src" -xf -
b0=$SECONDS
# make deb's own command and options; no -dbgsym package, it is not installed.
if make -C "$T/src" deb DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym" \
    > "$T/build.log" 2>&1; then
  ok "make deb builds the package ($((SECONDS - b0))s)"
else
  not_ok "make deb builds the package"
  diag "$(tail -30 "$T/build.log")"
  tap_done
  exit 1
fi
deb=$(find "$T" -maxdepth 1 -name "${PKG}_*.deb")
[ "$(wc -w <<< "$deb")" = 1 ] || { not_ok "one .deb built: $deb"; tap_done; exit 1; }
depends=$(dpkg-deb -f "$deb" Depends)
# shlibs:Depends filled in, and sysusers available for postinst.
depends_ok() {
  [[ $depends == *libssl3* && $depends == *libunbound8* && $depends == *libuv1* &&
     $depends == *libidn2-0* && $depends == *dns-root-data* &&
     $depends == *"systemd | systemd-standalone-sysusers"* ]]
}
check "Depends lists the shared libraries and sysusers: $depends" depends_ok

# --- 2. install -------------------------------------------------------------------
before=$(traces)
INSTALLED=yes
check "dpkg -i installs it ($([ -d /run/systemd/system ] && echo "systemd running" || echo "systemd not running"))" \
  dpkg -i "$deb"
if [ -d /run/systemd/system ]; then
  # postinst started the real service; this test runs its own instance.
  systemctl stop danerelay.service >&2 || true
fi
check "postinst created the system user $RUN_USER" id "$RUN_USER"
check "postinst created $SPOOL 0700 $RUN_USER:$RUN_USER" \
  test "$(stat -c '%a %U %G' "$SPOOL" 2>&1)" = "700 $RUN_USER $RUN_USER"
check "deb-systemd-helper enabled the unit ($WANTS)" test -L "$WANTS"
is_conffile() { dpkg-query -W -f='${Conffiles}' "$PKG" | grep -q "^ $1 "; }
check "$CONF is a conffile" is_conffile "$CONF"

# The unit's command line, user and umask, from the installed unit.
unit_value() { sed -n "s/^$1=//p" "$UNIT"; }
exec_start=$(unit_value ExecStart)
user=$(unit_value User) group=$(unit_value Group) umask_=$(unit_value UMask)
read -ra cmd <<< "$exec_start"
# One plain ExecStart= (no prefix such as - or +, no quoting): the words
# are then exactly what systemd runs.
if [ "$(grep -c '^ExecStart=' "$UNIT")" = 1 ] && [[ $exec_start != *[\"\'\\\$%]* ]] &&
    [ "${cmd[0]}" = "$SBIN" ] && [ "${cmd[1]}" = -c ] && [ "${cmd[2]}" = "$CONF" ] &&
    [ "${cmd[3]}" = serve ] && [ ${#cmd[@]} = 4 ] && [ "$user" = "$RUN_USER" ] &&
    [ "$group" = "$RUN_USER" ] && [ -n "$umask_" ]; then
  ok "unit runs '$exec_start' as $user:$group, umask $umask_"
else
  not_ok "unit runs $SBIN -c $CONF serve as $RUN_USER"
  diag "ExecStart=$exec_start User=$user Group=$group UMask=$umask_"
fi

# --- 3. the packaged configuration ---------------------------------------------------
CHECK_CMD=(check --no-dns)
check "danerelay ${CHECK_CMD[*]} accepts the packaged $CONF" "$SBIN" -c "$CONF" "${CHECK_CMD[@]}"
default_is() { "$SBIN" --help | grep -qx "configuration: .*, else $1"; }
check "danerelay --help names $CONF as the default" default_is "$CONF"

cp "$CONF" "$T/danerelay.conf.dist"
{
  sed -e "s|^listen = .*|listen = $RELAY_ADDR|" \
      -e "s|^dns_trust_anchor_file = .*|dns_trust_anchor_file = $WORLD_TRUST_ANCHOR|" \
      "$T/danerelay.conf.dist"
  echo
  echo "# The test world (tests/install/test_install.sh)."
  echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
  echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
  echo "myhostname = relay.install.$WORLD_TLD"
  echo "retry_min = 2s"
} > "$CONF"
world_conf_ok() {
  [ "$("$SBIN" -c "$CONF" config spool_dir run_user listen)" = \
    "$(printf 'spool_dir = %s\nrun_user = %s\nlisten = %s' "$SPOOL" "$RUN_USER" "$RELAY_ADDR")" ]
}
check "the world's configuration keeps the packaged spool and user" world_conf_ok
# No default could say this listen address: the file was read.
reads_default() { [ "$(cd / && env -u DANERELAY_CONF "$SBIN" config listen)" = "listen = $RELAY_ADDR" ]; }
check "without -c, danerelay reads $CONF" reads_default

# --- 4. run it as the unit does -----------------------------------------------------
journal=$T/journal.log
notify=$T/notify.log
start_bg "sd_notify listener" python3 "$src/tests/install/notify_listen.py" "$T/notify.sock" "$notify"
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
(
  cd / || exit 1
  umask "$umask_"
  # CapabilityBoundingSet= (empty), NoNewPrivileges=yes, User=, Group=.
  exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET="$T/notify.sock" \
    setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all -- "${cmd[@]}"
) > "$journal" 2>&1 &
DAEMON_PID=$!
if wait_file_grep "$notify" '^READY=1$' 30; then
  ok "Type=notify: READY=1 ($(grep -m1 '^STATUS=' "$notify" || echo "no STATUS="))"
else
  not_ok "Type=notify: READY=1"
  diag "$(tail -20 "$journal")"
fi
check "serve runs as $user" \
  test "$(ps -o user= -p "$DAEMON_PID" 2>&1 | tr -d ' ')" = "$user"

# --- 5. one DANE delivery ---------------------------------------------------------------
rcpt=install@$WORLD_D_DANE_EE
msgid=install-$$-$RANDOM@$WORLD_TLD
# shellcheck disable=SC2086  # WORLD_UPSTREAM_SENDMAIL: program and its -C option
printf 'From: <%s>\nTo: <%s>\nSubject: install test\nMessage-ID: <%s>\n\nThrough the packaged relay.\n' \
  "$WORLD_SENDER" "$rcpt" "$msgid" |
  $WORLD_UPSTREAM_SENDMAIL -i -f "$WORLD_SENDER" -- "$rcpt"
if wait_maildir "$WORLD_D_DANE_EE_MAILDIR" "Message-ID: <$msgid>" 60 >/dev/null; then
  ok "delivered from the upstream Postfix to $WORLD_D_DANE_EE"
else
  not_ok "delivered from the upstream Postfix to $WORLD_D_DANE_EE"
  diag "$(tail -20 "$journal")"
fi
delivery_logged() {
  grep -E "event=delivery .*to=<$rcpt>" "$journal" | grep -F ' tls=dane-ee' | grep -qF ' status=sent'
}
wait_until() {  # CMD...: poll for up to 10s
  local i
  for i in $(seq 100); do "$@" && return 0; sleep 0.1; done
  return 1
}
if wait_until delivery_logged; then
  ok "journal line: $(grep -E "event=delivery .*to=<$rcpt>" "$journal" | grep -oE 'tls=[^ ]+ .*status=[^ ]+' | head -1)"
else
  not_ok "journal line for $rcpt with tls=dane-ee status=sent"
  diag "$(grep -E 'event=delivery' "$journal" | tail -5)"
fi
check "everything in $SPOOL belongs to $RUN_USER" \
  test -z "$(find "$SPOOL" ! -user "$RUN_USER" -print -quit)"

stop_daemon TERM
check "SIGTERM (systemctl stop) ends serve with status 0" test "$DAEMON_STATUS" = 0

# --- 6. purge ---------------------------------------------------------------------------
# Every file and directory the package shipped, except the directories
# other packages share (/usr/share/doc and the like).
shipped=$(dpkg -L "$PKG" | while IFS= read -r p; do
  [ -d "$p" ] && [[ $p != *danerelay* ]] && continue
  printf '%s\n' "$p"
done)
if dpkg --purge "$PKG" > "$T/purge.log" 2>&1; then
  INSTALLED=no
  ok "dpkg --purge $PKG"
else
  not_ok "dpkg --purge $PKG"
  diag "$(cat "$T/purge.log")"
fi
not_installed() {
  local s
  s=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null)
  [ -z "$s" ] || [ "$s" = not-installed ]
}
check "dpkg no longer knows $PKG" not_installed
for p in /etc/danerelay "$SPOOL" "$SBIN" "$UNIT" "$WANTS" \
    /var/lib/systemd/deb-systemd-helper-enabled/danerelay.service \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/danerelay.service; do
  check "purge removed $p" test ! -e "$p" -a ! -L "$p"
done
gone() {  # PATH...: none exists
  local p rc=0
  for p; do
    if [ -e "$p" ] || [ -L "$p" ]; then echo "still there: $p"; rc=1; fi
  done
  return $rc
}
# shellcheck disable=SC2086  # one path a line, none with blanks
check "purge removed all $(wc -l <<< "$shipped") paths the package shipped (dpkg -L)" \
  gone $shipped
left=$(comm -13 <(printf '%s\n' "$before") <(traces))
check "nothing else named danerelay or owned by $RUN_USER is left" test -z "$left"
[ -n "$left" ] && diag "left: $left"
check "the $RUN_USER system user stays (README.Debian: Debian leaves system users on purge)" \
  id "$RUN_USER"
diag "install test: $((SECONDS - t0))s in all"
tap_done
