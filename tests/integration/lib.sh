# shellcheck shell=bash
# Helpers for integration tests in the danerelay test world (bash; source me).
#
#   source "$INTEGRATION_LIB"
#   require_root                 # TAP skip + exit 77 unless root
#   world_up [--bench]           # world.sh up in a fresh temp dir, source world.env,
#                                # and tear it down (world_down) on exit
#   ok DESC / not_ok DESC / check DESC CMD... / diag TEXT / tap_done
#   smtp_send HOST PORT FROM TO FILE   # plain SMTP transaction, FILE = message
#   smtps_send HOST PORT FROM TO FILE  # same after STARTTLS (openssl s_client)
#   submit FROM TO SUBJECT [BODY]      # to the upstream Postfix over SMTP
#   make_message FROM TO SUBJECT [BODY] > FILE
#   ehlo_lines HOST PORT               # the server's EHLO reply lines
#   wait_maildir MAILDIR PATTERN [SECS]  # print the file in MAILDIR/new with PATTERN
#   wait_dir_grep DIR PATTERN [SECS]     # the same for any directory
#   wait_file_grep FILE PATTERN [SECS]   # wait until FILE contains PATTERN (ERE)
#   dns NAME TYPE                      # dnscheck output (needs $DNSCHECK)
#   dns_field NAME TYPE KEY            # one field of it (first line with KEY)
#   start_bg NAME CMD...               # start a helper process, stopped at exit
#   relay_write_conf FILE [LINE...]    # danerelay.conf for this world
#   relay_start DANERELAY CONF / relay_stop [SIG]   # danerelay serve in the background
#
# Conventions: TAP on stdout ("ok N - ..."), chatter on stderr or as "# ...".
# Set KEEP_WORLD=1 to keep the state directory (it is kept anyway on failure).

TAP_N=0
TAP_FAILED=0
WORLD_STATE=
BG_PIDS=()

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
diag() { local l; while IFS= read -r l; do echo "# $l"; done <<< "$*"; }

# check DESC CMD...: one TAP case decided by CMD's exit status; CMD's stdout
# and stderr become "#" comments on failure only.
check() {
  local desc=$1 out; shift
  if out=$("$@" 2>&1); then
    ok "$desc"
  else
    not_ok "$desc"
    [ -n "$out" ] && diag "$out"
  fi
}

tap_done() {
  echo "1..$TAP_N"
  [ "$TAP_FAILED" = 0 ] || { diag "$TAP_FAILED of $TAP_N failed"; return 1; }
}

require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP the test world needs root"
    exit 77
  fi
}

_lib_cleanup() {
  local rc=$? p
  for p in "${BG_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  BG_PIDS=()
  if [ -n "$WORLD_STATE" ]; then
    "$WORLD_SH" down "$WORLD_STATE" >&2 || true
    if [ "${KEEP_WORLD:-0}" = 1 ] || [ "$TAP_FAILED" != 0 ] || [ $rc != 0 ]; then
      echo "# world state kept in $WORLD_STATE" >&2
    else
      rm -rf "$WORLD_STATE"
    fi
  fi
}

world_up() {
  : "${WORLD_SH:?WORLD_SH must name tests/world/world.sh}"
  WORLD_STATE=$(mktemp -d "${TMPDIR:-/tmp}/danerelay-world.XXXXXX")
  trap _lib_cleanup EXIT
  # A signal (meson's timeout sends SIGTERM) must still tear the world down.
  trap 'exit 143' INT TERM HUP
  if ! "$WORLD_SH" up "$WORLD_STATE" "$@" >&2; then
    not_ok "world up"
    tap_done
    exit 1
  fi
  # shellcheck disable=SC1091
  source "$WORLD_STATE/world.env"
  export WORLD_UNBOUND_CONF
}

# world_down: explicit teardown (also done at exit); returns world.sh's status.
world_down() {
  local rc=0
  "$WORLD_SH" down "$WORLD_STATE" >&2 || rc=$?
  return $rc
}

start_bg() {  # NAME CMD...: background helper, killed at exit
  local name=$1; shift
  "$@" &
  BG_PIDS+=($!)
  echo "# started $name (pid $!)" >&2
}

make_message() {  # FROM TO SUBJECT [BODY]
  printf 'From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@danerelay.test>\r\nDate: %s\r\n\r\n%s\r\n' \
    "$1" "$2" "$3" "$3" "$(date -R)" "${4:-test message $3}"
}

# --- a small SMTP client over bash file descriptors ------------------------------

SMTP_IN='' SMTP_OUT='' SMTP_REPLY='' SMTP_CODE=''

# Read one (possibly multiline) reply into SMTP_REPLY / SMTP_CODE.
_smtp_reply() {
  local line
  SMTP_REPLY=
  SMTP_CODE=
  while IFS= read -r -t "${SMTP_TIMEOUT:-15}" line <&"$SMTP_IN"; do
    line=${line%$'\r'}
    SMTP_REPLY+="$line"$'\n'
    if [[ $line =~ ^([0-9]{3})([ ]|$) ]]; then
      SMTP_CODE=${BASH_REMATCH[1]}
      return 0
    fi
  done
  SMTP_CODE=000
  return 1
}

_smtp_cmd() {  # CMD EXPECT-REGEX
  printf '%s\r\n' "$1" >&"$SMTP_OUT"
  _smtp_reply || { echo "no reply to '$1'" >&2; return 1; }
  [[ $SMTP_CODE =~ $2 ]] || { echo "'$1' -> $SMTP_REPLY" >&2; return 1; }
}

# The transaction after the greeting (and after STARTTLS when used).
_smtp_txn() {  # FROM TO FILE
  _smtp_cmd "EHLO client.danerelay.test" '^250$' || return 1
  _smtp_cmd "MAIL FROM:<$1>" '^250$' || return 1
  _smtp_cmd "RCPT TO:<$2>" '^250$' || return 1
  _smtp_cmd "DATA" '^354$' || return 1
  # Dot-stuffing (RFC 5321 4.5.2) and CRLF line ends.
  sed -e 's/\r$//' -e 's/^\./../' -e 's/$/\r/' "$3" >&"$SMTP_OUT"
  _smtp_cmd "." '^250$' || return 1
  echo "${SMTP_REPLY%$'\n'}"
  printf 'QUIT\r\n' >&"$SMTP_OUT"
  _smtp_reply || true
}

smtp_send() {  # HOST PORT FROM TO FILE: prints the final 250 reply
  local fd rc=0
  exec {fd}<>"/dev/tcp/$1/$2" || return 1
  SMTP_IN=$fd SMTP_OUT=$fd
  if _smtp_reply && [ "$SMTP_CODE" = 220 ]; then
    _smtp_txn "$3" "$4" "$5" || rc=1
  else
    echo "greeting: $SMTP_REPLY" >&2; rc=1
  fi
  exec {fd}>&-
  return $rc
}

smtps_send() {  # HOST PORT FROM TO FILE: the same, after STARTTLS
  local rc=0 d pid in out
  d=$(mktemp -d)
  mkfifo "$d/in" "$d/out"
  # s_client reads the greeting and does EHLO + STARTTLS itself.
  timeout "${SMTP_TLS_TIMEOUT:-60}" openssl s_client -quiet -starttls smtp \
    -connect "$1:$2" -name client.danerelay.test < "$d/in" > "$d/out" 2>/dev/null &
  pid=$!
  exec {out}>"$d/in" {in}<"$d/out"
  SMTP_IN=$in SMTP_OUT=$out
  # A fresh TLS session: EHLO again (RFC 3207 4.2).
  _smtp_txn "$3" "$4" "$5" || rc=1
  exec {out}>&- {in}<&-
  wait "$pid" 2>/dev/null || true
  rm -rf "$d"
  return $rc
}

ehlo_lines() {  # HOST PORT
  local fd
  exec {fd}<>"/dev/tcp/$1/$2" || return 1
  SMTP_IN=$fd SMTP_OUT=$fd
  if ! _smtp_reply || [ "$SMTP_CODE" != 220 ]; then exec {fd}>&-; return 1; fi
  printf 'EHLO client.danerelay.test\r\n' >&"$fd"
  _smtp_reply
  echo -n "$SMTP_REPLY"
  printf 'QUIT\r\n' >&"$fd"
  _smtp_reply || true
  exec {fd}>&-
}

submit() {  # FROM TO SUBJECT [BODY]: to the upstream MTA over SMTP
  local f rc=0
  f=$(mktemp)
  make_message "$1" "$2" "$3" "${4:-}" > "$f"
  smtp_send "$WORLD_UPSTREAM_ADDR" "$WORLD_UPSTREAM_PORT" "$1" "$2" "$f" >/dev/null || rc=1
  rm -f "$f"
  return $rc
}

# --- waiting ---------------------------------------------------------------------

wait_dir_grep() {  # DIR PATTERN [SECS]: print the first file in DIR with PATTERN (ERE)
  local d=$1 pat=$2 secs=${3:-30} end f
  end=$((SECONDS + secs))
  while :; do
    f=$(grep -lE -- "$pat" "$d"/* 2>/dev/null) || true
    [ -n "$f" ] && { echo "${f%%$'\n'*}"; return 0; }
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

wait_maildir() {  # MAILDIR PATTERN [SECS]: print the first new message with PATTERN
  wait_dir_grep "$1/new" "$2" "${3:-30}"
}

wait_file_grep() {  # FILE PATTERN [SECS]
  local end=$((SECONDS + ${3:-30}))
  until grep -qE -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

maildir_count() {  # MAILDIR: messages in new/
  find "$1/new" -type f 2>/dev/null | wc -l
}

# --- DNS -------------------------------------------------------------------------

dns() {  # NAME TYPE
  "${DNSCHECK:?DNSCHECK must name the dnscheck program}" -c "$WORLD_UNBOUND_CONF" "$1" "$2"
}

dns_field() {  # NAME TYPE KEY: value of the first KEY= line, unquoted
  local out
  out=$(dns "$1" "$2") || return 1
  out=$(grep -m1 "^$3=" <<< "$out") || return 1
  out=${out#*=}; out=${out#\"}; echo "${out%\"}"
}

# --- danerelay under test (end-to-end tests) ------------------------------

RELAY_PID=

# relay_write_conf FILE [LINE...]: a danerelay.conf for this world: listens
# where the upstream relays to, spool and log under the state dir, resolver
# = the world's unbound.conf with its one trust anchor, fast retries. Extra
# "key = value" LINEs are appended (later keys must not repeat earlier ones,
# so pass only keys not set here, or edit the file).
relay_write_conf() {
  local f=$1; shift
  mkdir -p "$WORLD_STATE/relay/spool"
  {
    echo "# danerelay.conf for the test world (lib.sh relay_write_conf)"
    echo "listen = $WORLD_RELAY_ADDR"
    echo "mynetworks = 127.0.0.0/8"
    echo "myhostname = relay.$WORLD_TLD"
    echo "spool_dir = $WORLD_STATE/relay/spool"
    echo "log_file = $WORLD_STATE/relay/relay.log"
    echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
    echo "dns_trust_anchor_file = $WORLD_TRUST_ANCHOR"
    echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
    echo "retry_min = ${RELAY_RETRY_MIN:-2s}"
    echo "retry_max = ${RELAY_RETRY_MAX:-10s}"
    local l
    for l in "$@"; do echo "$l"; done
  } > "$f"
}

# relay_start DANERELAY CONF: `danerelay serve -c CONF` in the background
# (stdout/stderr to $WORLD_STATE/relay/serve.out), waits until it accepts
# connections on WORLD_RELAY_ADDR. Stopped at exit if still running.
# serve started as root drops to run_user (default danerelay): make sure the
# system user exists, as a package would.
ensure_run_user() {
  "$(dirname "${BASH_SOURCE[0]}")/../../scripts/ensure-run-user.sh" >/dev/null
}

relay_start() {
  local bin=$1 conf=$2 end fd
  [ "$(id -u)" = 0 ] && ensure_run_user
  mkdir -p "$WORLD_STATE/relay"
  "$bin" serve -c "$conf" >> "$WORLD_STATE/relay/serve.out" 2>&1 &
  RELAY_PID=$!
  BG_PIDS+=("$RELAY_PID")
  end=$((SECONDS + ${RELAY_START_TIMEOUT:-10}))
  until exec {fd}<>"/dev/tcp/$WORLD_RELAY_HOST/$WORLD_RELAY_PORT"; do
    if ! kill -0 "$RELAY_PID" 2>/dev/null || [ $SECONDS -ge $end ]; then
      echo "danerelay did not start; serve.out:" >&2
      tail -20 "$WORLD_STATE/relay/serve.out" >&2
      return 1
    fi
    sleep 0.1
  done 2>/dev/null
  exec {fd}>&-
}

# relay_stop [SIGNAL]: signal the relay (default TERM) and wait for it; its
# exit status is returned (128+n when killed by signal n).
relay_stop() {
  local sig=${1:-TERM} rc=0 p keep=()
  [ -n "$RELAY_PID" ] || return 0
  kill -"$sig" "$RELAY_PID" 2>/dev/null || true
  wait "$RELAY_PID" || rc=$?
  for p in "${BG_PIDS[@]}"; do [ "$p" = "$RELAY_PID" ] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
  RELAY_PID=
  return $rc
}
