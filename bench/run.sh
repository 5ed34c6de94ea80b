#!/usr/bin/env bash
# danerelay benchmarks against Postfix in the test world.
#
#   sudo bench/run.sh [PATH/TO/danerelay]        (make bench [N=...] [QUICK=1] [KILLS=0] ...)
#
# Environment:
#   N=10000          messages per throughput run (4 KiB, SIZE to change)
#   SESSIONS=20      parallel smtp-source sessions (spread over the 10 domains)
#   QUICK=1          N=2000, BACKLOG_N=10000, shorter limit probes
#   BACKLOG_N=100000 deferred messages for the backlog figures (0 skips)
#   BACKLOG_DOMAIN=mismatch.drworld   where they go (TLSA mismatch: deferred)
#   BACKLOG_SYNTH=1  build the backlog with bench/mkbacklog (spool files
#                    written directly, seconds per 100,000); 0: through SMTP,
#                    each message tried once (minutes per 100,000)
#   RUNS="danerelay postfix-default postfix-reuse"   (RUNS= runs none)
#   LIMITS=0         skip the machine-limit probes
#   WORLD_NET=7      second octet of every world address (world.sh)
#   RELAY_PORT=10031 danerelay's listen port
#   BENCH_CONF="k = v;k2 = v2"  more danerelay.conf lines (feature on/off runs)
#   BENCH_DIR=/tmp/danerelay-bench.XXXX (kept when KEEP=1)
#   SLOWLANE=1       after each throughput run, the same relay again with N
#                    more messages of which 10% go to BACKLOG_DOMAIN (TLSA
#                    mismatch: handshake, then defer); reports the 90%'s
#                    end-to-end rate against the clean run and the failing
#                    handshakes the mismatch MX saw per retry round (0 skips)
#   SLOW_RETRY=10    retry_min / minimal_backoff_time of every relay, seconds
#                    (retry_max / maximal_backoff_time twice that)
#   SLOW_WATCH=30    seconds the slow lane is watched after its load (QUICK: 20)
#   THROUGHPUT=1     the throughput runs (and their slow lanes); 0 skips them
#   KILLS=5          crash mode: kill -9 of each relay K times at random
#                    moments under load (Postfix: the master and all its
#                    children), restart; duplicates and lost counted at the
#                    sink (0 skips)
#
# One world (tests/world/world.sh up --bench) is shared by every run: the
# ten bench domains' MX is one TLS sink Postfix (discard transport). Each
# run counts deliveries at that sink, by a per-run tag in the recipient.
#
# Postfix as the DANE relay needs a validating resolver that its libc
# resolver reaches through /etc/resolv.conf: an unbound daemon on
# 127.NET.53.2:53 built from the world's unbound.conf, and a private
# resolv.conf (nameserver that, "options trust-ad") bind-mounted over
# /etc/resolv.conf in a mount namespace of its own (unshare -m) in which the
# Postfix master is started. The system's /etc/resolv.conf is never touched.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
DR=${1:-$TOP/build/danerelay}
DR=$(cd "$(dirname "$DR")" && pwd)/$(basename "$DR")
PY="python3 $HERE/bench.py"

QUICK=${QUICK:-}
if [ -n "$QUICK" ] && [ "$QUICK" != 0 ]; then
  N=${N:-2000}; BACKLOG_N=${BACKLOG_N:-10000}; PROBE=2; IDLE=5; SLOW_WATCH=${SLOW_WATCH:-20}
else
  N=${N:-10000}; BACKLOG_N=${BACKLOG_N:-100000}; PROBE=5; IDLE=20; SLOW_WATCH=${SLOW_WATCH:-30}
fi
THROUGHPUT=${THROUGHPUT:-1}
SLOWLANE=${SLOWLANE:-1}
SLOW_RETRY=${SLOW_RETRY:-10}
KILLS=${KILLS:-5}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
RUNS=${RUNS-danerelay postfix-default postfix-reuse}
BACKLOG_DOMAIN=${BACKLOG_DOMAIN:-mismatch.drworld}
export WORLD_NET=${WORLD_NET:-7}
NET=$WORLD_NET
RELAY_PORT=${RELAY_PORT:-10031}
RELAY_HOST=127.$NET.0.1
PF_ADDR=127.$NET.33.1
UB_ADDR=127.$NET.53.2
SMTP_SOURCE=/usr/sbin/smtp-source
NDOM=10

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the test world needs loopback aliases and port 25)"
[ -x "$DR" ] || die "no danerelay binary at $DR (make build first)"

# Extra packages only the benchmarks need (make test stays lean).
need=()
for p in unbound postfix gcc libssl-dev python3 util-linux iproute2; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    die "apt-get install ${need[*]} failed"
fi

D=${BENCH_DIR:-$(mktemp -d /tmp/danerelay-bench.XXXXXX)}
mkdir -p "$D"; chmod 755 "$D"
D=$(cd "$D" && pwd -P)
mkdir -p "$D/bin" "$D/log"
W=$D/world
RESULTS=$D/results.json
RELAY_PID=
log "state in $D"

cleanup() {
  [ -n "$RELAY_PID" ] && kill -KILL "$RELAY_PID" 2>/dev/null
  for i in pfd pfr; do
    [ -f "$D/$i/queue/pid/master.pid" ] && postfix -c "$D/$i/conf" stop >/dev/null 2>&1
  done
  [ -f "$D/unbound.pid" ] && kill "$(cat "$D/unbound.pid")" 2>/dev/null
  "$TOP/tests/world/world.sh" down "$W" >&2 || true
  if [ -z "${KEEP:-}" ] && [ -z "${BENCH_DIR:-}" ]; then rm -rf "$D"; else log "kept $D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

cc -O2 -Wall -Wextra -o "$D/bin/tlsrate" "$HERE/tlsrate.c" -lssl -lcrypto || die "cc tlsrate"
cc -O2 -Wall -Wextra -o "$D/bin/fsyncrate" "$HERE/fsyncrate.c" || die "cc fsyncrate"

RELAY_ADDR=$RELAY_HOST:$RELAY_PORT "$TOP/tests/world/world.sh" up "$W" --bench >&2 || die "world up failed"
set -a; # shellcheck disable=SC1091
source "$W/world.env"; set +a
read -r -a DOMAINS <<< "$WORLD_BENCH_DOMAINS"
SINKLOG=$WORLD_MXSINK_LOG

# --- the validating resolver for Postfix ------------------------------------------
{
  cat <<EOF2
server:
    interface: $UB_ADDR
    port: 53
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "$D"
    pidfile: "$D/unbound.pid"
    logfile: "$D/log/unbound.log"
    use-syslog: no
    num-threads: 1
EOF2
  # server options of the world's libunbound config (trust anchor, no ip6,
  # do-not-query-localhost: no), then its stub zones.
  awk '/^server:/ { s = 1; next } /^[a-z-]+:/ { s = 0 } s' "$WORLD_UNBOUND_CONF"
  sed -n '/^stub-zone:/,$p' "$WORLD_UNBOUND_CONF"
} > "$D/unbound.conf"
unbound-checkconf "$D/unbound.conf" >&2 || die "unbound.conf"
unbound -c "$D/unbound.conf" || die "unbound failed to start"
printf 'nameserver %s\noptions trust-ad\n' "$UB_ADDR" > "$D/resolv.conf"
ok=0
for _ in $(seq 50); do
  dig +time=1 +tries=1 @"$UB_ADDR" "${DOMAINS[0]}" MX | grep -q 'flags:.* ad' && { ok=1; break; }
  sleep 0.1
done
[ $ok = 1 ] || die "unbound on $UB_ADDR does not validate ${DOMAINS[0]} MX"

# --- helpers ------------------------------------------------------------------------
sink_count() {  # TAG: messages with TAG in the recipient discarded by the sink
  grep -cE "to=<[0-9]*$1@[^>]*>.*status=sent \(benchmark sink\)" "$SINKLOG"
}

# load HOST:PORT TAG COUNT SESSIONS: COUNT messages spread over the ten bench
# domains, SESSIONS in total, one smtp-source per domain (all in parallel).
# Prints the wall time in seconds.
load() {
  local dest=$1 tag=$2 count=$3 sess=$4 i pids=() t0 per s
  per=$((count / NDOM)); s=$((sess / NDOM)); [ "$s" -ge 1 ] || s=1
  t0=$EPOCHREALTIME
  for i in $(seq 0 $((NDOM - 1))); do
    local m=$per
    [ "$i" -lt $((count % NDOM)) ] && m=$((m + 1))
    [ "$m" -gt 0 ] || continue
    # -d: keep the session for the next message, as an upstream MTA with a
    # connection cache does; -N: a numbered recipient per message.
    "$SMTP_SOURCE" -d -N -s "$s" -m "$m" -l "$SIZE" -f "load@sender.$WORLD_TLD" \
      -M "load.$WORLD_TLD" -t "$tag@${DOMAINS[$i]}" "$dest" >> "$D/log/smtp-source.log" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc = 0 ] || log "smtp-source reported an error (see $D/log/smtp-source.log)"
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'
}

wait_sink() {  # TAG COUNT TIMEOUT
  local i
  for i in $(seq $(($3 * 10))); do
    [ "$(sink_count "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

json_set() {  # PATH.TO.KEY JSON-VALUE
  python3 - "$RESULTS" "$1" "$2" <<'EOP'
import json, sys
f, path, val = sys.argv[1:]
try:
    R = json.load(open(f))
except (OSError, ValueError):
    R = {}
node = R
keys = path.split(".")
for k in keys[:-1]:
    node = node.setdefault(k, {})
try:
    node[keys[-1]] = json.loads(val)
except ValueError:
    node[keys[-1]] = val
json.dump(R, open(f, "w"), indent=1)
EOP
}

ver="$("$DR" version 2>/dev/null | head -1)"
if git -C "$TOP" rev-parse --short HEAD >/dev/null 2>&1; then
  ver="$ver, commit $(git -C "$TOP" rev-parse --short HEAD)"
  git -C "$TOP" diff --quiet HEAD -- relay smtp tlsa 2>/dev/null ||
    ver="$ver+dirty(relay/smtp/tlsa diff sha1 $(git -C "$TOP" diff HEAD -- relay smtp tlsa | sha1sum | cut -c1-10))"
fi
json_set n "$N"; json_set size "$SIZE"; json_set sessions "$SESSIONS"; json_set domains "$NDOM"
json_set danerelay_version "\"$ver\""

# --- machine limits -----------------------------------------------------------------
if [ "${LIMITS:-1}" != 0 ]; then
log "limits: fsync rate"
mkdir -p "$D/fsync"
json_set limits.fsync_per_s "\"$("$D/bin/fsyncrate" "$D/fsync" "$PROBE") (4 KiB file + fsync + rename + dir fsync; file-only: no rename/dir fsync) in $D\""
log "limits: TLS handshakes against the sink"
json_set limits.tls_handshakes_per_s "\"$("$D/bin/tlsrate" "$WORLD_MXSINK_ADDR" 25 4 "$PROBE" handshake) (ECDSA P-256 leaf, TLS 1.3, X25519, 4 clients, no resumption; client and sink share the 2 cores)\""
log "limits: sink fed directly over TLS, one message per connection"
json_set limits.sink_tls_msg_per_conn_per_s "\"$(TLSRATE_RCPT="tlsrate@${DOMAINS[0]}" "$D/bin/tlsrate" "$WORLD_MXSINK_ADDR" 25 "$SESSIONS" "$PROBE" message) (STARTTLS + 1 message + QUIT per connection, $SESSIONS clients)\""
SINKN=$(( N < 5000 ? N : 5000 ))
log "limits: sink fed directly by smtp-source ($SINKN messages, cleartext, sessions kept)"
o=$(stat -c %s "$SINKLOG")
(cd "$D" && $PY watch --log "$SINKLOG" --offset "$o" --tag sinkdirect --n "$SINKN" --out "$D/watch-sink.json" --stall 30 >/dev/null) &
wp=$!
t0=$EPOCHREALTIME
load "$WORLD_MXSINK_ADDR:25" sinkdirect "$SINKN" "$SESSIONS" > /dev/null
wait $wp
json_set limits.sink_direct_msgs_per_s "$(python3 -c "import json;r=json.load(open('$D/watch-sink.json'));print('\"%.0f (%d messages, smtp-source cleartext, %d sessions, first submit .. last discard)\"' % (r['delivered']/(r['t_last']-$t0), r['delivered'], $SESSIONS) if r['t_last'] else '\"n/a\"')")"
fi

# --- relays -------------------------------------------------------------------------
write_danerelay_conf() {  # FILE SPOOL [extra lines...]
  local f=$1 sp=$2; shift 2
  {
    echo "listen = $RELAY_HOST:$RELAY_PORT"
    echo "mynetworks = 127.0.0.0/8"
    echo "spool_dir = $sp"
    echo "myhostname = relay.bench.$WORLD_TLD"
    echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
    echo "dns_trust_anchor_file ="
    echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
    echo "tls_security_level = dane"
    echo "log_level = info"
    echo "max_connections = 1000"
    echo "max_connections_per_client = 1000"
    for l in "$@"; do echo "$l"; done
    # BENCH_CONF: more lines, ';'-separated (e.g. "routing_monitor_enable = no"),
    # to measure what one feature costs.
    local extra
    IFS=';' read -ra extra <<< "${BENCH_CONF:-}"
    for l in "${extra[@]}"; do echo "$l"; done
  } > "$f"
}

start_danerelay() {  # CONF LOG
  # Accepting = the greeting arrives on the listen port. The poller starts
  # first and reads the start time from a file once answered, so that its
  # own start-up (seconds on a loaded machine) is not counted; a serve that
  # reads a large backlog before it listens takes a while.
  rm -f "$D/t0"
  $PY wait220 "$RELAY_HOST" "$RELAY_PORT" "@$D/t0" 300 > "$D/wait220.out" &
  local wp=$!
  sleep 1
  date +%s.%N > "$D/t0"
  "$DR" -c "$1" serve >> "$2" 2>&1 &
  RELAY_PID=$!
  wait "$wp"
  if [ "$(cat "$D/wait220.out")" = timeout ]; then die "danerelay did not start (see $2)"; fi
}

stop_danerelay() {
  [ -n "$RELAY_PID" ] || return 0
  kill -TERM "$RELAY_PID" 2>/dev/null
  for _ in $(seq 400); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$RELAY_PID" 2>/dev/null
  wait "$RELAY_PID" 2>/dev/null
  RELAY_PID=
}

make_pf_queue() {  # QUEUEDIR (the layout post-install makes; see world.sh)
  local q=$1 d
  mkdir -p "$q/pid"
  for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    install -d -o postfix -g root -m 700 "$q/$d"
  done
  install -d -o postfix -g postdrop -m 730 "$q/maildrop"
  install -d -o postfix -g postdrop -m 710 "$q/public"
  touch "$q/quick-start"
}

start_postfix_relay() {  # NAME REUSE(yes|no)
  local name=$1 pd=$D/$1
  mkdir -p "$pd/conf" "$pd/data"
  make_pf_queue "$pd/queue"
  cp "$WORLD_UPSTREAM_CONF/master.cf" "$pd/conf/master.cf"
  # smtp_tls_connection_reuse hands TLS sessions to tlsproxy(8).
  echo "tlsproxy  unix  -       -       n       -       0       tlsproxy" >> "$pd/conf/master.cf"
  cat > "$pd/conf/main.cf" <<EOF2
# Postfix as the DANE relay under test (bench/run.sh). Postfix defaults
# except what the test world and DANE need.
compatibility_level = 3.6
queue_directory = $pd/queue
data_directory = $pd/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = $PF_ADDR
inet_protocols = ipv4
myhostname = $name.bench.$WORLD_TLD
mydomain = $WORLD_TLD
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
maillog_file = $D/log/$name.log
maillog_file_prefixes = $D
syslog_name = $name
biff = no
smtpd_peername_lookup = no
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relay_domains =
# DANE (RFC 7672): DNSSEC-validated MX/A/TLSA through the loopback unbound.
smtp_tls_security_level = dane
smtp_dns_support_level = dnssec
smtp_tls_loglevel = 1
smtp_tls_connection_reuse = $2
# Sub-second delays with their full resolution (latency figures).
delay_logging_resolution_limit = 6
# The slow lane's retry rounds: the same backoff as danerelay's retry_min
# and retry_max; the deferred queue is scanned as often.
minimal_backoff_time = ${SLOW_RETRY}s
maximal_backoff_time = $((SLOW_RETRY * 2))s
queue_run_delay = ${SLOW_RETRY}s
EOF2
  chown postfix "$pd/data"
  touch -d '-1 minute' "$pd/conf"/*
  rm -f "$pd/queue/pid/master.pid"  # left by a kill -9 (crash mode)
  local have
  have=$(ip -4 -o addr show dev lo)
  grep -qF " $PF_ADDR/" <<< "$have" || ip addr add "$PF_ADDR/8" dev lo || die "cannot add $PF_ADDR to lo"
  unshare -m --propagation private sh -c \
    "mount --bind '$D/resolv.conf' /etc/resolv.conf && exec postfix -c '$pd/conf' start" >&2 ||
    die "Postfix $name failed to start"
  RELAY_PID=
  for _ in $(seq 50); do
    [ -s "$pd/queue/pid/master.pid" ] && break; sleep 0.1
  done
  PF_MASTER=$(tr -d ' ' < "$pd/queue/pid/master.pid")
  $PY wait220 "$PF_ADDR" 25 "$(date +%s.%N)" 30 >/dev/null || die "Postfix $name not accepting"
}

# run_one NAME: warm-up, then N measured messages.
run_one() {
  local name=$1 tag dest root rlog warm
  tag=$(echo "$name" | LC_ALL=C tr -dc '[:lower:]')m
  warm=$(echo "$name" | LC_ALL=C tr -dc '[:lower:]')w
  case $name in
    danerelay)
      rlog=$D/log/danerelay.log
      write_danerelay_conf "$D/danerelay.conf" "$D/spool" \
        "retry_min = ${SLOW_RETRY}s" "retry_max = $((SLOW_RETRY * 2))s"
      start_danerelay "$D/danerelay.conf" "$rlog"
      root=$RELAY_PID; dest=$RELAY_HOST:$RELAY_PORT ;;
    postfix-default|postfix-reuse)
      local short=pfd reuse=no
      [ "$name" = postfix-reuse ] && { short=pfr; reuse=yes; }
      start_postfix_relay "$short" "$reuse"
      rlog=$D/log/$short.log
      root=$PF_MASTER; dest=$PF_ADDR:25 ;;
  esac
  log "$name: warm-up (100 messages)"
  load "$dest" "$warm" 100 "$SESSIONS" >/dev/null
  wait_sink "$warm" 100 60 || log "$name: warm-up incomplete: $(sink_count "$warm")/100 at the sink"
  sleep 1
  log "$name: $N messages, $SESSIONS sessions"
  local c0 c1 o t0 acc
  o=$(stat -c %s "$SINKLOG")
  c0=$($PY cpu "$root")
  $PY watch --log "$SINKLOG" --offset "$o" --tag "$tag" --n "$N" --pid "$root" \
    --out "$D/watch-$name.json" --stall 60 > /dev/null &
  local wp=$!
  t0=$(date +%s.%N)
  acc=$(load "$dest" "$tag" "$N" "$SESSIONS")
  wait $wp
  sleep 0.5
  c1=$($PY cpu "$root")
  local lat
  case $name in
    danerelay) lat=$($PY lat-danerelay "$rlog" "$tag") ;;
    *) lat=$($PY lat-postfix "$rlog" "$tag") ;;
  esac
  python3 - "$RESULTS" "$name" "$D/watch-$name.json" "$c0" "$c1" "$t0" "$acc" "$N" "$lat" <<'EOP'
import json, sys
f, name, wf, c0, c1, t0, acc, n, lat = sys.argv[1:]
R = json.load(open(f)); w = json.load(open(wf)); lat = json.loads(lat)
n = int(n); d = w["delivered"]
r = {"delivered": d, "delivered_str": f"{d}/{n}",
     "cpu_s": float(c1) - float(c0),
     "cpu_per_1k": (float(c1) - float(c0)) / d * 1000 if d else None,
     "e2e_rate": d / (w["t_last"] - float(t0)) if w["t_last"] else None,
     "accept_rate": n / float(acc), "accept_s": float(acc),
     "peak_pss_mib": w["peak_pss_sum_kib"] / 1024.0,
     "lat_n": lat["n"], "sink_conns": w["sink_conns"],
     "msgs_per_conn": w["sink_msgs"] / w["sink_conns"] if w["sink_conns"] else None}
r["peak_rss_mib"] = (w["peak_hwm_max_kib"] if name == "danerelay" else w["peak_rss_sum_kib"]) / 1024.0
for k in ("p50", "p99", "max"):
    r[f"lat_{k}_ms"] = lat[k] * 1000 if lat[k] is not None else None
R.setdefault("runs", {})[name] = r
json.dump(R, open(f, "w"), indent=1)
print(json.dumps(r))
EOP
  if [ "$SLOWLANE" != 0 ]; then
    slowlane_one "$name" "$dest" "$rlog"
    case $name in
      danerelay) "$DR" -c "$D/danerelay.conf" queue delete --all >/dev/null ;;
      *) postsuper -c "$D/$short/conf" -d ALL 2>/dev/null ;;
    esac
  fi
  case $name in
    danerelay) stop_danerelay ;;
    *) postfix -c "$D/$short/conf" stop >/dev/null 2>&1 ;;
  esac
}

# slowlane_one NAME DEST RLOG: N messages again through the running relay,
# N/10 of them to BACKLOG_DOMAIN (2 more sessions) while the other 90% go to
# the ten bench domains exactly as in the clean run (SESSIONS sessions).
# The 90%'s end-to-end rate is set against the clean run's; the mismatch
# MX (mxca, which in the bench world serves only that domain) counts the
# handshakes, per round of SLOW_RETRY seconds.
slowlane_one() {
  local name=$1 dest=$2 rlog=$3 base okt ft nf nok fs o ho ro t0 t1 wp fp
  base=$(echo "$name" | LC_ALL=C tr -dc '[:lower:]')
  okt=${base}s; ft=${base}f
  nf=$((N / 10)); nok=$((N - nf)); fs=$((SESSIONS / 10)); [ "$fs" -ge 1 ] || fs=1
  log "$name: slow lane: $nok messages to the bench domains, $nf to $BACKLOG_DOMAIN"
  o=$(stat -c %s "$SINKLOG"); ho=$(stat -c %s "$WORLD_MXCA_LOG"); ro=$(stat -c %s "$rlog")
  $PY watch --log "$SINKLOG" --offset "$o" --tag "$okt" --n "$nok" \
    --out "$D/watch-$name-slow.json" --stall 60 > /dev/null &
  wp=$!
  t0=$(date +%s.%N)
  "$SMTP_SOURCE" -d -N -s "$fs" -m "$nf" -l "$SIZE" -f "load@sender.$WORLD_TLD" \
    -M "load.$WORLD_TLD" -t "$ft@$BACKLOG_DOMAIN" "$dest" >> "$D/log/smtp-source.log" 2>&1 &
  fp=$!
  load "$dest" "$okt" "$nok" "$SESSIONS" > /dev/null
  wait "$fp" || log "$name: slow lane: smtp-source to $BACKLOG_DOMAIN reported an error"
  wait "$wp"
  log "$name: slow lane: watching $BACKLOG_DOMAIN's retries for ${SLOW_WATCH}s"
  sleep "$SLOW_WATCH"
  t1=$(date +%s.%N)
  local hs deferred
  hs=$($PY handshakes --log "$WORLD_MXCA_LOG" --offset "$ho" --t0 "$t0" --t1 "$t1" --round "$SLOW_RETRY")
  # Deferral lines for the failing tag: one per message and attempt.
  deferred=$(tail -c +$((ro + 1)) "$rlog" | grep -cE "to=<[0-9]*$ft@.*status=deferred")
  python3 - "$RESULTS" "$name" "$D/watch-$name-slow.json" "$t0" "$t1" "$nok" "$nf" "$hs" "$deferred" "$SLOW_RETRY" <<'EOP'
import json, sys
f, name, wf, t0, t1, nok, nf, hs, deferred, rnd = sys.argv[1:]
R = json.load(open(f)); w = json.load(open(wf)); hs = json.loads(hs)
r = R["runs"][name]
d = w["delivered"]
r["slow_delivered_str"] = f"{d}/{nok}"
r["slow_e2e_rate"] = d / (w["t_last"] - float(t0)) if w["t_last"] else None
r["slow_vs_clean"] = r["slow_e2e_rate"] / r["e2e_rate"] if r["slow_e2e_rate"] and r.get("e2e_rate") else None
r["slow_fail_msgs"] = int(nf)
r["slow_fail_deferrals"] = int(deferred)
r["slow_handshakes"] = hs["handshakes"]
r["slow_handshakes_per_msg"] = hs["handshakes"] / int(nf) if int(nf) else None
r["slow_rounds_str"] = f"{len(hs['rounds'])} x {rnd}s: " + " ".join(str(x) for x in hs["rounds"])
r["slow_window_s"] = float(t1) - float(t0)
json.dump(R, open(f, "w"), indent=1)
print(json.dumps({k: v for k, v in r.items() if k.startswith("slow_")}))
EOP
}

if [ "$THROUGHPUT" != 0 ]; then
  for r in $RUNS; do
    run_one "$r" >&2
  done
fi

# --- crash: kill -9 under load ------------------------------------------------------
# crash_one NAME: a fresh relay (danerelay: a spool of its own; Postfix: its
# instance of the throughput run, queue empty) under load from bench.py
# crashload (SESSIONS sessions, one message per transaction, to the ten bench
# domains); KILLS times, 1-3 s apart, SIGKILL and restart. Then the load
# stops, the queue is flushed, and the sink is read: copies beyond the first
# of a recipient are duplicates, recipients answered 250 and never delivered
# are lost.
kill_postfix() {  # SHORT: SIGKILL the master and every child at one instant
  local m pids
  m=$(tr -d ' ' < "$D/$1/queue/pid/master.pid")
  # The master is a session and process group leader (setsid) and its
  # children stay in its group: one kill(2) on the group hits them all at
  # once, as SIGKILL hits every thread of danerelay at once. A child that
  # left the group (none should) is found by session id and killed after.
  kill -KILL -- "-$m" 2>/dev/null
  pids=$(ps -e -o pid=,sid= | awk -v s="$m" '$2 == s { print $1 }')
  # shellcheck disable=SC2086  # one pid per word
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
  for _ in $(seq 100); do
    pids=$(ps -e -o pid=,sid= | awk -v s="$m" '$2 == s { print $1 }')
    [ -z "$pids" ] && break
    sleep 0.05
  done
}

crash_one() {
  local name=$1 tag short="" dest conf rlog o lp k t0
  tag=$(echo "$name" | LC_ALL=C tr -dc '[:lower:]')k
  case $name in
    danerelay)
      conf=$D/crash.conf; rlog=$D/log/danerelay-crash.log
      write_danerelay_conf "$conf" "$D/crash-spool" \
        "retry_min = ${SLOW_RETRY}s" "retry_max = $((SLOW_RETRY * 2))s"
      start_danerelay "$conf" "$rlog"
      dest=$RELAY_HOST:$RELAY_PORT ;;
    postfix-default|postfix-reuse)
      local reuse=no; short=pfd
      [ "$name" = postfix-reuse ] && { short=pfr; reuse=yes; }
      start_postfix_relay "$short" "$reuse"
      rlog=$D/log/$short.log; dest=$PF_ADDR:25 ;;
  esac
  log "$name: crash: load, $KILLS x kill -9 and restart"
  o=$(stat -c %s "$SINKLOG")
  rm -f "$D/crash-stop"
  $PY crashload --host "${dest%:*}" --port "${dest##*:}" --tag "$tag" \
    --domains "$(IFS=,; echo "${DOMAINS[*]}")" --sender "load@sender.$WORLD_TLD" \
    --helo "$WORLD_TLD" --sessions "$SESSIONS" --size "$SIZE" --stop "$D/crash-stop" \
    --out "$D/crash-$name.json" > "$D/crash-$name.out" &
  lp=$!
  local restarts=()
  for k in $(seq "$KILLS"); do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + 2 * r / 32767 }')"
    if [ "$name" = danerelay ]; then
      kill -KILL "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null; RELAY_PID=
      start_danerelay "$conf" "$rlog"
      restarts+=("$(cat "$D/wait220.out")")
    else
      kill_postfix "$short"
      t0=$(date +%s.%N)
      start_postfix_relay "$short" "$reuse"
      restarts+=("$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')")
    fi
    log "$name: crash: kill $k, back in ${restarts[-1]} s"
  done
  sleep 2
  touch "$D/crash-stop"
  wait "$lp"
  case $name in
    danerelay) "$DR" -c "$conf" queue retry --all >/dev/null 2>&1 ;;
    *) postqueue -c "$D/$short/conf" -f 2>/dev/null ;;
  esac
  local res
  res=$($PY dupcount --log "$SINKLOG" --offset "$o" --tag "$tag" --load "$D/crash-$name.json" \
    --relay-log "$rlog" --timeout 90)
  python3 - "$RESULTS" "$name" "$D/crash-$name.out" "$res" "$KILLS" "${restarts[*]}" <<'EOP'
import json, sys
f, name, lf, res, kills, rs = sys.argv[1:]
R = json.load(open(f)); ld = json.loads(open(lf).read()); c = json.loads(res)
r = R.setdefault("runs", {}).setdefault(name, {})
k = int(kills)
r["crash_kills"] = k
r["crash_accepted"] = c["accepted"]
r["crash_unknown"] = f"{c['unknown']} ({c['unknown_delivered']} delivered)"
r["crash_dups"] = c["duplicates"]
r["crash_dups_per_kill"] = c["duplicates"] / k if k else None
r["crash_dups_kind"] = f"{c['dups_in_flight']} / {c['dups_sent_logged_twice']}"
r["crash_lost"] = c["lost"]
r["crash_restart_s"] = max(float(x) for x in rs.split()) if rs else None
r["crash_detail"] = dict(c, load=ld)
json.dump(R, open(f, "w"), indent=1)
print(json.dumps(c))
EOP
  case $name in
    danerelay) stop_danerelay ;;
    *) postfix -c "$D/$short/conf" stop >/dev/null 2>&1 ;;
  esac
}

if [ "$KILLS" -gt 0 ]; then
  for r in $RUNS; do
    crash_one "$r" >&2
  done
fi

# --- backlog ------------------------------------------------------------------------
# Times one command: "wall s (user+sys s CPU)" of its process; output to $1.
time_cmd() {  # OUT CMD...
  local out=$1 t; shift
  t=$( { TIMEFORMAT='%R %U %S'; time "$@" > "$out" 2> "$out.err"; } 2>&1 )
  local rc=$?
  awk -v t="$t" -v rc="$rc" 'BEGIN { split(t, a, " "); printf "%.3f s (%.3f s CPU, exit %d)", a[1], a[2] + a[3], rc }'
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Seconds from the start of the serve in $1's log tail to its queue-loaded
# line (the background load; "n/a" for a build without one).
wait_loaded() {  # LOG FROM_LINE
  grep -qa 'queue-loaded' "$DR" || { echo n/a; return; }
  for _ in $(seq 1200); do
    l=$(tail -n +"$2" "$1" | grep -m1 'event=queue-loaded') && {
      sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<< "$l" | awk '{ printf "%.3f", $1 / 1000 }'; return; }
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo n/a
}
if [ "$BACKLOG_N" -gt 0 ]; then
  BL=$D/backlog
  mkdir -p "$BL"
  BLSPOOL=${BACKLOG_SPOOL:-$BL/spool}
  write_danerelay_conf "$BL/danerelay.conf" "$BLSPOOL" "retry_min = 1h" "retry_max = 2h"
  if [ -n "${BACKLOG_SPOOL:-}" ]; then
    # A backlog kept from an earlier run (mkbacklog SPOOL N DOMAIN): the
    # same spool for a before/after pair, used in place.
    json_set backlog.built "\"existing spool $BACKLOG_SPOOL: $(find "$BACKLOG_SPOOL/queue" -name '*.env' | wc -l) envelopes\""
    from=$(( $(wc -l 2>/dev/null < "$BL/relay.log" || echo 0) + 1 ))
    start_danerelay "$BL/danerelay.conf" "$BL/relay.log"
    json_set backlog.first_start_to_accepting_s "$(cat "$D/wait220.out")"
    json_set backlog.first_start_loaded_s "\"$(wait_loaded "$BL/relay.log" "$from")\""
  elif [ "${BACKLOG_SYNTH:-1}" != 0 ]; then
    MKBL=$(dirname "$DR")/bench/mkbacklog
    [ -x "$MKBL" ] || MKBL=$TOP/build/bench/mkbacklog
    [ -x "$MKBL" ] || die "bench/mkbacklog not built (ninja -C build bench/mkbacklog)"
    log "backlog: writing $BACKLOG_N deferred messages to $BACKLOG_DOMAIN ($MKBL)"
    t0=$EPOCHREALTIME
    "$MKBL" "$BLSPOOL" "$BACKLOG_N" "$BACKLOG_DOMAIN" "$SIZE" 3600 || die "mkbacklog failed"
    sync
    json_set backlog.built "\"synthetic, bench/mkbacklog: $BACKLOG_N deferred messages in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s\""
    from=$(( $(wc -l 2>/dev/null < "$BL/relay.log" || echo 0) + 1 ))
    start_danerelay "$BL/danerelay.conf" "$BL/relay.log"
    json_set backlog.first_start_to_accepting_s "$(cat "$D/wait220.out")"
    json_set backlog.first_start_loaded_s "\"$(wait_loaded "$BL/relay.log" "$from")\""
  else
    start_danerelay "$BL/danerelay.conf" "$BL/relay.log"
    log "backlog: $BACKLOG_N messages to $BACKLOG_DOMAIN"
    t0=$EPOCHREALTIME
    "$SMTP_SOURCE" -d -N -s "$SESSIONS" -m "$BACKLOG_N" -l "$SIZE" -f "load@sender.$WORLD_TLD" \
      -t "bl@$BACKLOG_DOMAIN" "$RELAY_HOST:$RELAY_PORT" >> "$D/log/smtp-source.log" 2>&1
    acc=$(awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="$BACKLOG_N" 'BEGIN { printf "%.0f msgs/s (%.1f s for %d)", n / (b - a), b - a, n }')
    json_set backlog.acceptance "\"$acc\""
    # Every recipient tried once and deferred.
    for _ in $(seq 6000); do
      nd=$(grep -c 'event=delivery .*status=deferred' "$BL/relay.log")
      [ "$nd" -ge "$BACKLOG_N" ] && break
      sleep 0.2
    done
    t1=$EPOCHREALTIME
    json_set backlog.all_deferred "\"$nd deferred after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s\""
    sleep 2
  fi
  json_set backlog.rss_mib "$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$RELAY_PID/status")"
  json_set backlog.hwm_mib "$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$RELAY_PID/status")"
  c0=$($PY cpu "$RELAY_PID"); sleep "$IDLE"; c1=$($PY cpu "$RELAY_PID")
  json_set backlog.idle_cpu "\"$(awk -v a="$c0" -v b="$c1" -v s="$IDLE" 'BEGIN { printf "%.3f s over %d s (%.2f%% of a core)", b - a, s, (b - a) * 100 / s }')\""
  # The CLI with serve running, page cache warm (after one untimed read)
  # and cold (dropped just before).
  "$DR" -c "$BL/danerelay.conf" queue list --json > /dev/null 2>&1
  for cache in warm cold; do
    [ "$cache" = cold ] && drop_caches
    t=$(time_cmd "$BL/list.json" "$DR" -c "$BL/danerelay.conf" queue list --json)
    json_set "backlog.queue_list_json_$cache" "\"$t, $(stat -c %s "$BL/list.json") bytes, $(grep -c '"queue_id"' "$BL/list.json") messages\""
    [ "$cache" = cold ] && drop_caches
    t=$(time_cmd "$BL/report.txt" "$DR" -c "$BL/danerelay.conf" report)
    json_set "backlog.report_$cache" "\"$t, $(wc -l < "$BL/report.txt") lines\""
  done
  t0=$EPOCHREALTIME; stop_danerelay
  json_set backlog.stop_s "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
  for cache in warm cold; do
    [ "$cache" = cold ] && drop_caches
    from=$(( $(wc -l < "$BL/relay.log") + 1 ))
    start_danerelay "$BL/danerelay.conf" "$BL/relay.log"
    json_set "backlog.restart_to_accepting_s_$cache" "$(cat "$D/wait220.out")"
    json_set "backlog.restart_loaded_s_$cache" "\"$(wait_loaded "$BL/relay.log" "$from")\""
    sleep 1
    json_set "backlog.rss_after_restart_mib_$cache" "$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$RELAY_PID/status")"
    json_set "backlog.hwm_after_restart_mib_$cache" "$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$RELAY_PID/status")"
    if [ "$cache" = warm ]; then
      c0=$($PY cpu "$RELAY_PID"); sleep "$IDLE"; c1=$($PY cpu "$RELAY_PID")
      json_set backlog.idle_cpu_after_restart "\"$(awk -v a="$c0" -v b="$c1" -v s="$IDLE" 'BEGIN { printf "%.3f s over %d s (%.2f%% of a core)", b - a, s, (b - a) * 100 / s }')\""
    fi
    stop_danerelay
  done
  json_set backlog.spool "\"$(du -sh "$BLSPOOL" | cut -f1) in $(find "$BLSPOOL" -type f | wc -l) files\""
fi

log "results: $RESULTS (kept with KEEP=1 or BENCH_DIR=...)"
echo
$PY table "$RESULTS"
