#!/usr/bin/env bash
# danerelay reliability and hostile-input suite. TAP on stdout.
#
#   test_reliability.sh [--full] PATH/TO/danerelay
#
# Short run (meson test 'reliability', suite integration): a few hundred
# messages and 4 kills; full run (`make test-reliability`): 10,000 messages
# and 8 kills. Both cover, in order:
#   1 crash       kill -9 under load (fsync, DATA, delivery, random), restart
#   3 faulty MX   faultymx.py: refused, reset, 4xx/5xx per stage, stalls, TLS
#   4 faulty DNS  the world's NSD stopped mid-run, then restarted
#   2 disk full   spool on a 2 MB tmpfs: 452 4.3.1, nothing corrupted, recovery
#   5 hostile     smuggling probes, long lines, size, recipients, mynetworks,
#                 connection flood, slow clients
#   7 leaks       descriptor count before/after load; sanitizer reports
#   4b dnschange  TLSA TTL expiry and answers turning bogus mid-queue
#                 (zones re-signed by `world.sh tlsa`); its own relay run
# Privilege dropping (item 6) is a TODO in RELIABILITY.md until `serve`
# handles run_user.
#
# Runs in the world's WORLD_NET (export WORLD_NET=8 to live beside other
# worlds). Needs root; exit 77 otherwise. SECTIONS="crash mx dns disk
# hostile leaks dnschange" (default: all) selects parts.
set -uo pipefail

FULL=0
if [ "${1:-}" = --full ]; then FULL=1; shift; fi
RELAY_BIN=${1:?usage: test_reliability.sh [--full] DANERELAY}
RELAY_BIN=$(cd "$(dirname "$RELAY_BIN")" && pwd)/$(basename "$RELAY_BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
export WORLD_SH=${WORLD_SH:-$HERE/../world/world.sh}
# shellcheck source=../integration/lib.sh
source "${INTEGRATION_LIB:-$HERE/../integration/lib.sh}"
require_root
SECTIONS=${SECTIONS:-crash mx dns disk hostile leaks dnschange}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

CRASH_COUNT=${CRASH_COUNT:-$([ $FULL = 1 ] && echo 10000 || echo 400)}
CRASH_KILLS=${CRASH_KILLS:-$([ $FULL = 1 ] && echo 8 || echo 4)}

# shellcheck disable=SC2119  # world_up takes extra world.sh options; none here
world_up
TMPFS=
rel_cleanup() {
  local rc=$?
  [ -n "$TMPFS" ] && umount "$TMPFS" 2>/dev/null
  (exit $rc)
  _lib_cleanup
}
trap rel_cleanup EXIT

R=$WORLD_STATE/rel
mkdir -p "$R/fm"
RLOG=$WORLD_STATE/relay/relay.log
SERVE_OUT=$WORLD_STATE/relay/serve.out
EVENTS=$R/fm/events.log
FNET=$WORLD_FAULT_NET
DNET=$WORLD_FAULT_DANE_NET
S=$WORLD_SENDER
HOST=$WORLD_RELAY_HOST PORT=$WORLD_RELAY_PORT

# --- faultymx ---------------------------------------------------------------
# fm_conf LINES...: rewrite the plan file (and SIGHUP the running peer).
FM_PID=
fm_conf() {
  printf '%s\n' "$@" > "$R/fm/conf.new"
  mv "$R/fm/conf.new" "$R/fm/conf"
  [ -n "$FM_PID" ] || return 0
  local g
  g=$(cat "$R/fm/generation")
  kill -HUP "$FM_PID"
  wait_file_grep "$R/fm/generation" "^$((g + 1))\$" 10
}
fm_start() {
  start_bg faultymx python3 "$HERE/faultymx.py" --conf "$R/fm/conf" --state "$R/fm" \
    --cert "$WORLD_PKI/mx-chain.pem" --key "$WORLD_PKI/mx.key" --no-store
  FM_PID=${BG_PIDS[-1]}
  wait_file_grep "$R/fm/generation" '^1$' 10
}
# sink_count MSGID: acknowledged ("accepted") copies of MSGID at faultymx.
sink_count() { awk -v m="$1" '$1 == "accepted" && $3 == m { n++ } END { print n + 0 }' "$EVENTS"; }

# --- the relay --------------------------------------------------------------
TIMEOUTS=()
for k in connect helo mail rcpt data_init data_xfer data_done starttls quit; do
  TIMEOUTS+=("smtp_${k}_timeout = 2s")
done
CONF=$R/danerelay.conf
RELAY_RETRY_MIN=1s RELAY_RETRY_MAX=2s relay_write_conf "$CONF" "${TIMEOUTS[@]}" \
  "smtpd_timeout = 3s" "max_connections = 40" "max_connections_per_client = 8" \
  "message_size_limit = 200k" "max_recipients = 100" "connection_cache_time = 0s" \
  "mynetworks = 127.0.0.0/8"  # per-client 8 > crash.py clients (6) + its half-DATA client
# relay_write_conf already wrote mynetworks = 127.0.0.0/8; keep one line.
awk '!($1 == "mynetworks" && seen++)' "$CONF" > "$CONF.t" && mv "$CONF.t" "$CONF"
SPOOL=$WORLD_STATE/relay/spool

# first_line RCPT: the first delivery log line for RCPT.
first_line() { grep -m1 -E "event=delivery .*to=<$1>" "$RLOG"; }
line_has() {  # RCPT ERE: some delivery line for RCPT matches
  grep -E "event=delivery .*to=<$1>" "$RLOG" 2>/dev/null | grep -qE -- "$2"
}
# submit_direct FROM RCPT MSGID [BODY]: one message straight to the relay.
submit_direct() {
  local f rc=0
  f=$(mktemp)
  printf 'From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n%s\r\n' \
    "$1" "$2" "$3" "$3" "${4:-reliability test $3}" > "$f"
  smtp_send "$HOST" "$PORT" "$1" "$2" "$f" >/dev/null || rc=1
  rm -f "$f"
  return $rc
}
# wait_for_cmd SECS CMD...: poll CMD every 0.3 s.
wait_for_cmd() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.3; done
}
sanitizer_clean() {  # FILE: no ASan/LSan/UBSan report in FILE
  ! grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined)" "$1"
}

# Rows for RELIABILITY.md: fault | accepted | delivered | duplicated | lost
ROWS=$R/rows.txt
: > "$ROWS"
row() { printf '%s|%s|%s|%s|%s\n' "$@" >> "$ROWS"; }

FAULT_SINKS=("$FNET.1 notls" "$FNET.2 notls" "$FNET.3 notls" "$FNET.4 notls")
fm_conf "${FAULT_SINKS[@]}"
fm_start || { not_ok "faultymx starts"; tap_done; exit 1; }
ok "faultymx listens on $FNET.1-4"

# ============================================================================
# 1. crash: kill -9 under load
# ============================================================================
if want crash; then
  out=$R/crash.json
  python3 "$HERE/crash.py" --relay "$RELAY_BIN" --conf "$CONF" --log "$RLOG" \
    --listen "$HOST:$PORT" --spool "$SPOOL" --sink-events "$EVENTS" --sender "$S" \
    --domains "fault1.$WORLD_TLD,fault2.$WORLD_TLD,fault3.$WORLD_TLD,fault4.$WORLD_TLD" \
    --count "$CRASH_COUNT" --kills "$CRASH_KILLS" --drain $((CRASH_COUNT / 20 + 60)) \
    --out "$out" 2> "$R/crash.err"
  crash_rc=$?
  diag "$(tail -3 "$R/crash.err")"
  j() { python3 -c "import json,sys; d=json.load(open('$out')); print($1)" 2>/dev/null; }
  if [ -f "$out" ]; then
    check "crash: $CRASH_KILLS kill -9 during load, each one restarted" \
      [ "$(j 'len(d["kills"])')" = "$CRASH_KILLS" ]
    check "crash: kills hit fsync, half-way DATA and delivery as intended" \
      [ "$(j 'all(k["caught"] for k in d["kills"])')" = True ]
    check "crash: $CRASH_COUNT messages answered 250" [ "$(j 'd["accepted"] >= d["count"]')" = True ]
    check "crash: every message answered 250 reached the sink (lost = 0)" [ "$(j 'd["lost"]')" = 0 ]
    check "crash: no delivered body differs from what was submitted" [ "$(j 'len(d["corrupt"])')" = 0 ]
    check "crash: a message cut off in DATA by the crash was never delivered" \
      [ "$(j 'len(d["partial_delivered"])')" = 0 ]
    check "crash: every duplicate was a delivery in flight at a kill" \
      [ "$(j 'd["duplicated"] == d["duplicates_explained"]')" = True ]
    echo "# crash: duplicates $(j 'json.dumps(d.get("duplicates", []))' 2>/dev/null)"
    check "crash: the queue is empty at the end" [ "$(j 'd["queue_left"]')" = 0 ]
    check "crash: SIGTERM after the run exits 0" [ "$(j 'd["relay_exit"]')" = 0 ]
    row "kill -9 x$CRASH_KILLS under load (fsync, mid-DATA, delivery, random)" \
      "$(j 'd["accepted"]')" "$(j 'd["delivered"]')" \
      "$(j 'd["duplicated"]') (in flight at a kill)" "$(j 'd["lost"]')"
  else
    not_ok "crash: crash.py produced a result (exit $crash_rc)"
  fi
  check "crash: no sanitizer report from any of the relays" sanitizer_clean "$RLOG.serve.out"
fi

# Everything else runs against one relay.
: >> "$RLOG"
relay_start "$RELAY_BIN" "$CONF" || { not_ok "relay starts"; tap_done; exit 1; }
wait_file_grep "$RLOG" "event=dnssec-selftest status=ok" 20

# ============================================================================
# 3. faulty MX
# ============================================================================
# CASE = index | faultymx plan | ERE for the first attempt | final (sent|bounced)
# Index N uses faultN.drworld (127.NET.11.N, opportunistic TLS) or, with a
# "d" prefix, faultdaneN.drworld (127.NET.12.N, DANE-EE). Indices 1-4 are
# the crash sinks; 40 is the refused-connection case (bound later).
MX_CASES=(
  "40|ok|dsn=4\\.4\\.1 status=deferred class=connect .*refused|sent"
  "5|connect:reset,ok|status=deferred class=connect|sent"
  "6|banner:421,ok|dsn=4\\.[0-9.]+ status=deferred class=smtp-4xx|sent"
  "7|banner:554,ok|status=deferred class=smtp-5xx|sent"
  "8|ehlo:421,ok|dsn=4\\.[0-9.]+ status=deferred class=smtp-4xx|sent"
  "9|mail:451,ok|dsn=4\\.[0-9.]+ status=deferred class=smtp-4xx|sent"
  "10|mail:550|dsn=5\\.[0-9.]+ status=bounced class=smtp-5xx|bounced"
  "11|rcpt:450,ok|dsn=4\\.[0-9.]+ status=deferred class=smtp-4xx|sent"
  "12|rcpt:550|dsn=5\\.[0-9.]+ status=bounced class=smtp-5xx|bounced"
  "13|data:451,ok|dsn=4\\.[0-9.]+ status=deferred class=smtp-4xx|sent"
  "14|data:554|dsn=5\\.[0-9.]+ status=bounced class=smtp-5xx|bounced"
  "15|dot:451,ok|dsn=4\\.[0-9.]+ status=deferred class=smtp-4xx|sent"
  "16|dot:554|dsn=5\\.[0-9.]+ status=bounced class=smtp-5xx|bounced"
  "17|body:reset,ok|status=deferred class=connect|sent"
  "18|body:close,ok|status=deferred class=connect|sent"
  "19|banner:stall,ok|status=deferred class=connect .*timeout|sent"
  "20|ehlo:stall,ok|status=deferred class=connect .*timeout|sent"
  "21|mail:stall,ok|status=deferred class=connect .*timeout|sent"
  "22|rcpt:stall,ok|status=deferred class=connect .*timeout|sent"
  "23|data:stall,ok|status=deferred class=connect .*timeout|sent"
  "24|dot:stall,ok|status=deferred class=connect .*timeout|sent"
  "25|body:stall,ok|status=deferred class=connect .*timeout|sent"
  "26|quit:stall|status=sent attempts=1|sent"
  "27|quit:reset|status=sent attempts=1|sent"
  "28|starttls:454|tls=none .*status=sent attempts=1|sent"
  "29|starttls:stall,ok|status=deferred .*timeout|sent"
  "30|tls:garbage,ok|status=deferred class=tls-handshake|sent"
  "31|tls:reset,ok|status=deferred class=tls-handshake|sent"
  "32|tls:stall,ok|status=deferred class=tls-handshake|sent"
  "d1|tls:reset,ok|dsn=4\\.7\\.5 status=deferred class=tls-handshake|sent"
  "d2|tls:garbage,ok|dsn=4\\.7\\.5 status=deferred class=tls-handshake|sent"
  "d3|starttls:454,ok|dsn=4\\.7\\.5 status=deferred class=starttls-missing|sent"
  "d4|notls,ok|dsn=4\\.7\\.5 status=deferred class=starttls-missing|sent"
  "d5|tls:stall,ok|dsn=4\\.7\\.5 status=deferred class=tls-handshake|sent"
)
mx_dom() { case $1 in d*) echo "faultdane${1#d}.$WORLD_TLD" ;; *) echo "fault$1.$WORLD_TLD" ;; esac; }
mx_addr() { case $1 in d*) echo "$DNET.${1#d}" ;; *) echo "$FNET.$1" ;; esac; }
if want mx; then
  plan=("${FAULT_SINKS[@]}")
  for c in "${MX_CASES[@]}"; do
    IFS='|' read -r i steps _ _ <<< "$c"
    [ "$i" = 40 ] && continue   # nothing listens there yet: refused
    plan+=("$(mx_addr "$i") $steps")
  done
  fm_conf "${plan[@]}"
  for c in "${MX_CASES[@]}"; do
    IFS='|' read -r i steps _ _ <<< "$c"
    submit_direct "$S" "u$i@$(mx_dom "$i")" "mx-$i@reliability.test" ||
      not_ok "faulty MX $steps: message accepted by the relay"
  done
  # The refused case: once deferred, start listening there.
  if wait_file_grep "$RLOG" "to=<u40@fault40\\.$WORLD_TLD>" 30; then
    fm_conf "${plan[@]}" "$FNET.40 ok"
  fi
  for c in "${MX_CASES[@]}"; do
    IFS='|' read -r i steps first final <<< "$c"
    [ "$i" = 40 ] && steps="connection refused,ok"
    rcpt="u$i@$(mx_dom "$i")"
    mid="mx-$i@reliability.test"
    wait_file_grep "$RLOG" "to=<$rcpt>.*status=(sent|bounced)" 40
    fl=$(first_line "$rcpt")
    check "faulty MX [$steps]: first attempt: $first" grep -qE -- "$first" <<< "$fl"
    [ -n "$fl" ] || diag "no delivery line for $rcpt"
    grep -qE -- "$first" <<< "$fl" || diag "got: ${fl#*event=delivery }"
    n=$(sink_count "$mid")
    if [ "$final" = sent ]; then
      check "faulty MX [$steps]: then delivered exactly once (sink has $n)" \
        eval "line_has '$rcpt' 'status=sent' && [ $n = 1 ]"
      row "MX $steps ($(mx_dom "$i"))" 1 "$n" "$((n > 1 ? n - 1 : 0))" "$((n == 0 ? 1 : 0))"
    else
      dsn_ok() { wait_dir_grep "$WORLD_SENDER_MAILDIR/new" "Message-ID: <$mid>" 30 >/dev/null; }
      check "faulty MX [$steps]: bounced, nothing at the MX, DSN to the sender" \
        eval "line_has '$rcpt' 'status=bounced' && [ $n = 0 ] && dsn_ok"
      row "MX $steps ($(mx_dom "$i"))" 1 "0 (bounced, DSN)" 0 0
    fi
  done
  fm_conf "${FAULT_SINKS[@]}"
fi

# ============================================================================
# 4. faulty DNS: the authoritative server goes away mid-run
# ============================================================================
nsd_pid() { awk '$1 == "nsd" { p = $2 } END { print p }' "$WORLD_DIR/run/procs"; }
if want dns; then
  fm_conf "${FAULT_SINKS[@]}" "$DNET.6 ok" "$DNET.7 ok" "$FNET.33 ok"
  pid=$(nsd_pid)
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  check "DNS: the world's NSD (pid $pid) is stopped" bash -c "! [ -d /proc/$pid ]"
  # Names never looked up before, so nothing is cached.
  submit_direct "$S" "u1@faultdane6.$WORLD_TLD" "dns-1@reliability.test"
  submit_direct "$S" "u1@fault33.$WORLD_TLD" "dns-2@reliability.test"
  check "DNS down: DANE domain deferred (4.4.3 or 4.7.5), nothing sent" \
    wait_file_grep "$RLOG" "to=<u1@faultdane6\\.$WORLD_TLD>.*dsn=4\\.(4\\.3|7\\.5) status=deferred" 60
  check "DNS down: opportunistic domain deferred (4.4.3 or 4.7.5)" \
    wait_file_grep "$RLOG" "to=<u1@fault33\\.$WORLD_TLD>.*dsn=4\\.(4\\.3|7\\.5) status=deferred" 60
  check "DNS down: nothing reached the MX" \
    eval "[ $(sink_count dns-1@reliability.test) = 0 ] && [ $(sink_count dns-2@reliability.test) = 0 ]"
  nsd -c "$WORLD_DIR/dns/nsd.conf"
  for _ in $(seq 50); do
    dig +short +time=1 +tries=1 -p "$WORLD_DNS_PORT" "@$WORLD_DNS_ADDR" . SOA 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  newpid=$(cat "$WORLD_DIR/run/nsd.pid")
  echo "nsd $newpid $WORLD_DIR/log/nsd.log" >> "$WORLD_DIR/run/procs"
  check "DNS back: NSD restarted (pid $newpid)" kill -0 "$newpid"
  submit_direct "$S" "u1@faultdane7.$WORLD_TLD" "dns-3@reliability.test"
  check "DNS back: the deferred DANE message is delivered over DANE-EE" \
    wait_file_grep "$RLOG" "to=<u1@faultdane6\\.$WORLD_TLD>.*tls=dane-ee .*status=sent" 120
  check "DNS back: the deferred opportunistic message is delivered" \
    wait_file_grep "$RLOG" "to=<u1@fault33\\.$WORLD_TLD>.*status=sent" 120
  check "DNS back: a new message is delivered" \
    wait_file_grep "$RLOG" "to=<u1@faultdane7\\.$WORLD_TLD>.*tls=dane-ee .*status=sent" 60
  n1=$(sink_count dns-1@reliability.test) n2=$(sink_count dns-2@reliability.test)
  check "DNS outage: each message delivered exactly once" eval "[ $n1 = 1 ] && [ $n2 = 1 ]"
  row "authoritative DNS stopped, restarted" 3 \
    "$((n1 + n2 + $(sink_count dns-3@reliability.test)))" 0 \
    "$((2 - (n1 > 0) - (n2 > 0)))"
  fm_conf "${FAULT_SINKS[@]}"
fi

# ============================================================================
# 2. disk full: spool on a 2 MB tmpfs
# ============================================================================
if want disk; then
  relay_stop TERM
  TMPFS=$R/tmpfs
  mkdir -p "$TMPFS"
  if mount -t tmpfs -o size=2m,mode=0755 danerelay-rel "$TMPFS"; then
    DCONF=$R/disk.conf
    sed "s|^spool_dir = .*|spool_dir = $TMPFS/spool|" "$CONF" > "$DCONF"
    # The MX defers everything until told otherwise: the queue only grows.
    fm_conf "${FAULT_SINKS[@]}" "$FNET.34 rcpt:451"
    : >> "$RLOG"
    relay_start "$RELAY_BIN" "$DCONF"
    # Fill most of the space behind the relay's back, then submit 40 kB
    # messages until the relay refuses.
    dd if=/dev/zero of="$TMPFS/filler" bs=64k count=24 status=none 2>/dev/null
    python3 - "$HOST" "$PORT" "$S" "fault34.$WORLD_TLD" "$R/disk.txt" <<'PY'
import smtplib, sys
host, port, sender, dom, outf = sys.argv[1:6]
acc, refused, last = [], 0, ""
body = ("z" * 76 + "\r\n") * 500
for i in range(200):
    mid = f"disk{i}@reliability.test"
    try:
        s = smtplib.SMTP(host, int(port), timeout=20)
        s.sendmail(sender, [f"d{i}@{dom}"], f"Message-ID: <{mid}>\r\nSubject: disk {i}\r\n\r\n{body}")
        acc.append(mid)
        s.quit()
    except smtplib.SMTPResponseException as e:
        refused += 1
        last = f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
        if refused >= 3:
            break
    except smtplib.SMTPRecipientsRefused as e:
        refused += 1
        code, msg = list(e.recipients.values())[0]
        last = f"{code} {msg.decode(errors='replace')}"
        if refused >= 3:
            break
with open(outf, "w") as f:
    f.write(f"accepted {len(acc)}\nlast {last}\n")
    for m in acc:
        f.write(f"mid {m}\n")
PY
    acc=$(awk '$1 == "accepted" { print $2 }' "$R/disk.txt")
    last=$(sed -n 's/^last //p' "$R/disk.txt")
    diag "disk full: $acc accepted, then: $last"
    check "disk full: some mail accepted before the spool filled" [ "${acc:-0}" -gt 0 ]
    check "disk full: new mail gets 452 4.3.1" grep -qE "^452 4\\.3\\.1" <<< "$last"
    check "disk full: the relay is still running" kill -0 "$RELAY_PID"
    qn=$(find "$TMPFS/spool/queue" -name '*.env' | wc -l)
    check "disk full: every accepted message is in the queue ($qn of $acc)" [ "$qn" = "$acc" ]
    qlist_ok() {
      local n
      n=$("$RELAY_BIN" queue list -c "$DCONF" --json |
        python3 -c 'import sys, json; print(sum(1 for l in sys.stdin if l.strip() and json.loads(l)))') &&
        [ "$n" = "$acc" ]
    }
    check "disk full: danerelay queue list parses every queued envelope" qlist_ok
    rm -f "$TMPFS/filler"
    check "disk space back: a new message is accepted without a restart" \
      submit_direct "$S" "dnew@fault34.$WORLD_TLD" "disk-new@reliability.test"
    fm_conf "${FAULT_SINKS[@]}" "$FNET.34 ok"
    all_disk_delivered() {
      local m
      while read -r _ m; do [ "$(sink_count "$m")" = 1 ] || return 1; done < <(grep '^mid ' "$R/disk.txt")
      [ "$(sink_count disk-new@reliability.test)" = 1 ]
    }
    check "disk full: every accepted message delivered exactly once after recovery" \
      wait_for_cmd 90 all_disk_delivered
    lostd=0 dupd=0 deliv=0
    while read -r _ m; do
      n=$(sink_count "$m"); deliv=$((deliv + (n > 0))); [ "$n" = 0 ] && lostd=$((lostd + 1))
      [ "$n" -gt 1 ] && dupd=$((dupd + n - 1))
    done < <(grep '^mid ' "$R/disk.txt")
    row "spool on full 2 MB tmpfs, then space freed" "$((acc + 1))" \
      "$((deliv + $(sink_count disk-new@reliability.test)))" "$dupd" "$lostd"
    relay_stop TERM
    umount "$TMPFS" && TMPFS=
  else
    not_ok "disk full: mount a 2 MB tmpfs"
  fi
  fm_conf "${FAULT_SINKS[@]}"
  relay_start "$RELAY_BIN" "$CONF"
fi


# ============================================================================
# 5. hostile input
# ============================================================================
py_checks() {  # turn "ok - X" / "not ok - X" / "# X" lines into TAP
  local l
  while IFS= read -r l; do
    case $l in
      "ok - "*) ok "${l#ok - }" ;;
      "not ok - "*) not_ok "${l#not ok - }" ;;
      "#"*) echo "$l" ;;
      queued\ *) echo "${l#queued }" >> "$R/smuggle.qids" ;;
    esac
  done
}
if want hostile; then
  fm_conf "${FAULT_SINKS[@]}" "$FNET.35 ok" "$FNET.36 ok"
  H=$HERE/hostile.py
  : > "$R/smuggle.qids"
  py_checks < <(python3 "$H" smuggle "$HOST" "$PORT" "probe@fault35.$WORLD_TLD" "victim@fault36.$WORLD_TLD")
  nq=$(wc -l < "$R/smuggle.qids")
  check "smuggling: every queued probe delivered, as one message ($nq)" \
    wait_for_cmd 30 eval "[ \$(grep -c '^accepted .* probe@fault35' '$EVENTS') = $nq ]"
  check "smuggling: the smuggled recipient never got anything" \
    bash -c "! grep -q 'victim@fault36' '$EVENTS' && ! grep -q 'to=<victim@fault36' '$RLOG'"
  row "SMTP smuggling probes (11 variants: bare LF/CR dot sequences)" "$nq" \
    "$(grep -c '^accepted .* probe@fault35' "$EVENTS")" 0 0
  py_checks < <(python3 "$H" longline "$HOST" "$PORT")
  py_checks < <(python3 "$H" oversize "$HOST" "$PORT" "big@fault35.$WORLD_TLD" 204800)
  py_checks < <(python3 "$H" toomany "$HOST" "$PORT" "fault35.$WORLD_TLD" 100)
  # RFC 2920 bursts larger than the reply buffer; NUL refused with 5.6.x;
  # every content refusal logged with the client and the reason.
  py_checks < <(python3 "$H" burst "$HOST" "$PORT" 10000 "burst@fault35.$WORLD_TLD")
  py_checks < <(python3 "$H" nul "$HOST" "$PORT" "nul@fault35.$WORLD_TLD")
  py_checks < <(python3 "$H" refusals "$HOST" "$PORT" "refused@fault35.$WORLD_TLD")
  for why in "bare CR/LF in content" "line too long" "message too large" "NUL in content"; do
    check "hostile: refusal logged with client and reason ($why)" \
      grep -qE "event=refused client=[0-9.]+ .*why=\"$why\"" "$RLOG"
  done
  OUTSIDER=127.$WORLD_NET.0.99
  ip addr add "$OUTSIDER/32" dev lo 2>/dev/null
  sed -i "s|^mynetworks = .*|mynetworks = 127.$WORLD_NET.0.1/32, 127.0.0.1/32, 127.$WORLD_NET.0.7/32|" "$CONF"
  relay_stop TERM
  relay_start "$RELAY_BIN" "$CONF"
  py_checks < <(python3 "$H" outsider "$HOST" "$PORT" "$OUTSIDER")
  check "outsider: logged event=reject, nothing queued from it" \
    bash -c "grep -q 'event=reject client=$OUTSIDER' '$RLOG' && ! grep -q 'event=queued .*client=$OUTSIDER' '$RLOG'"
  py_checks < <(python3 "$H" flood "$HOST" "$PORT" 30 "127.$WORLD_NET.0.7" "flood@fault35.$WORLD_TLD")
  py_checks < <(python3 "$H" slow "$HOST" "$PORT" 3 "slow@fault35.$WORLD_TLD")
  check "hostile: the relay survived every probe" kill -0 "$RELAY_PID"
  ip addr del "$OUTSIDER/32" dev lo 2>/dev/null
  fm_conf "${FAULT_SINKS[@]}"
fi

# ============================================================================
# 7. leaks: descriptors and sanitizers
# ============================================================================
if want leaks; then
  fdc() { find "/proc/$RELAY_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
  sleep 1
  before=$(fdc)
  python3 - "$HOST" "$PORT" "$S" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, tld = sys.argv[1:5]
for k in range(10):
    s = smtplib.SMTP(host, int(port), timeout=20)
    for i in range(20):
        n = k * 20 + i
        s.sendmail(sender, [f"l{n}@fault{1 + n % 4}.{tld}"], f"Message-ID: <leak{n}@reliability.test>\r\n\r\nx\r\n")
    s.quit()
PY
  leak_done() { [ "$(awk '$1 == "accepted" && $3 ~ /^leak/' "$EVENTS" | wc -l)" = 200 ]; }
  check "leaks: 200 messages of the load delivered" wait_for_cmd 60 leak_done
  # Let idle sockets and timers wind down, then count again.
  fd_back() { [ "$(fdc)" -le "$before" ]; }
  wait_for_cmd 15 fd_back
  after=$(fdc)
  check "leaks: open descriptors back to $before after the load (now $after)" [ "$after" -le "$before" ]
  relay_stop TERM
  rc=$?
  check "leaks: SIGTERM exits 0" [ "$rc" = 0 ]
  check "leaks: no sanitizer report (ASan/LSan/UBSan) in the relay's output" sanitizer_clean "$SERVE_OUT"
  check "leaks: no open loop handles reported at exit" \
    bash -c "! grep -q 'event loop still had open handles' '$RLOG' '$SERVE_OUT'"
fi

# ============================================================================
# 4b. DNS changes mid-queue: TLSA TTL expiry, answers that
# turn bogus between attempts. The zone edits are `world.sh tlsa` (re-sign
# with the zone's own key, NSD SIGHUP, wait for the new serial). Fixtures:
# fault37..39 (no TLSA at `up`, never looked up before this section; the
# section gives each a TLSA RRset with TTL 2, RRSIG TTL 2 too). retry_min 1s,
# retry_max 2s, so every retry after the TTL has passed must query again.
# ============================================================================
if want dnschange; then
  DC_T0=$SECONDS
  H_MX=$(openssl pkey -in "$WORLD_PKI/mx.key" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
  H_OTHER=$(openssl pkey -in "$WORLD_PKI/other.key" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
  T=$WORLD_TLD
  dc_tlsa() {  # HOST HASH [ok|expired|badsig]: TLSA 3 1 1 HASH, TTL 2
    "$WORLD_SH" tlsa "$WORLD_DIR" "$1" 2 "3 1 1 $2" "${3:-ok}" 2>> "$R/dnschange.err"
  }
  # The world's own resolver config, unchanged (a bogus TLSA answer is not
  # held past the RRset's TTL here: the restore case measures that too).
  # The leaks section may have stopped the relay: (re)start it.
  relay_stop TERM 2>/dev/null
  dc_ok=1
  check "dnschange: TLSA RRsets set with TTL 2 (fault37 mismatching, fault38 matching, fault39 matching)" \
    eval "dc_tlsa mx.fault37.$T $H_OTHER && dc_tlsa mx.fault38.$T $H_MX && dc_tlsa mx.fault39.$T $H_MX" || dc_ok=0
  fm_conf "${FAULT_SINKS[@]}" "$FNET.37 ok" "$FNET.38 ok" "$FNET.39 rcpt:451"
  relay_start "$RELAY_BIN" "$CONF" || dc_ok=0
  wait_file_grep "$RLOG" "event=dnssec-selftest status=ok" 20 >/dev/null
  check "dnschange: relay (re)started" [ $dc_ok = 1 ]
  # Three queues at once: 37 (stale mismatch), 38 (then a new mismatch),
  # 39 (MX 451 first: the message sits in the queue when the zone turns bogus).
  submit_direct "$S" "u1@fault37.$T" "dnsc-1@reliability.test" || not_ok "dnschange: fault37 message accepted"
  submit_direct "$S" "u1@fault38.$T" "dnsc-2@reliability.test" || not_ok "dnschange: fault38 message accepted"
  submit_direct "$S" "u1@fault39.$T" "dnsc-4@reliability.test" || not_ok "dnschange: fault39 message accepted"

  # --- 1. TTL expiry: mismatching TLSA replaced by a matching one ----------
  check "TTL: mismatching TLSA: deferred 4.7.5 class=tlsa-mismatch" \
    wait_file_grep "$RLOG" "to=<u1@fault37\\.$T>.*dsn=4\\.7\\.5 status=deferred class=tlsa-mismatch" 20
  sleep 3   # a few retries against the mismatching RRset
  check "TTL: nothing delivered while the TLSA RRset mismatches" [ "$(sink_count dnsc-1@reliability.test)" = 0 ]
  nmis=$(grep -cE "to=<u1@fault37\\.$T>.*class=tlsa-mismatch" "$RLOG")
  check "TTL: the relay kept retrying ($nmis tlsa-mismatch deferrals so far)" [ "$nmis" -ge 2 ]
  dc_tlsa "mx.fault37.$T" "$H_MX"
  t_change=$SECONDS
  # TTL 2 + retry_max 2 + one attempt: a relay that kept the old RRset past
  # its TTL would still be deferring here.
  check "TTL: after the TTL, the next retry uses the new RRset: sent over DANE-EE" \
    wait_file_grep "$RLOG" "to=<u1@fault37\\.$T>.*tls=dane-ee .*status=sent" 12
  diag "fault37 delivered $((SECONDS - t_change)) s after the zone change"
  n=$(sink_count dnsc-1@reliability.test)
  check "TTL: delivered exactly once (sink has $n)" [ "$n" = 1 ]
  row "TLSA RRset (TTL 2) changed from mismatching to matching mid-queue" 1 "$n" \
    "$((n > 1 ? n - 1 : 0))" "$((n == 0 ? 1 : 0))"

  # --- 1b. reverse: a matching TLSA replaced by a mismatching one ----------
  check "TTL reverse: matching TLSA: first message sent over DANE-EE" \
    wait_file_grep "$RLOG" "to=<u1@fault38\\.$T>.*tls=dane-ee .*status=sent" 20
  dc_tlsa "mx.fault38.$T" "$H_OTHER"
  sleep 3   # past the TTL of the cached matching RRset
  submit_direct "$S" "u2@fault38.$T" "dnsc-3@reliability.test" || not_ok "dnschange: second fault38 message accepted"
  check "TTL reverse: next message refused by DANE: deferred 4.7.5 class=tlsa-mismatch" \
    wait_file_grep "$RLOG" "to=<u2@fault38\\.$T>.*dsn=4\\.7\\.5 status=deferred class=tlsa-mismatch" 15
  check "TTL reverse: no attempt used the stale matching RRset (nothing at the MX)" \
    eval "[ $(sink_count dnsc-3@reliability.test) = 0 ] && ! line_has 'u2@fault38\\.$T' 'status=sent'"
  dc_tlsa "mx.fault38.$T" "$H_MX"
  check "TTL reverse: matching TLSA back: the deferred message sent over DANE-EE" \
    wait_file_grep "$RLOG" "to=<u2@fault38\\.$T>.*tls=dane-ee .*status=sent" 12
  n2=$(sink_count dnsc-2@reliability.test) n3=$(sink_count dnsc-3@reliability.test)
  check "TTL reverse: each message delivered exactly once ($n2, $n3)" eval "[ $n2 = 1 ] && [ $n3 = 1 ]"
  row "TLSA RRset (TTL 2) changed from matching to mismatching, then back" 2 "$((n2 + n3))" \
    "$(( (n2 > 1 ? n2 - 1 : 0) + (n3 > 1 ? n3 - 1 : 0) ))" "$(( (n2 == 0) + (n3 == 0) ))"

  # --- 2. answers that turn bogus between attempts -------------------------
  check "bogus: secure TLSA, MX answers 451: deferred smtp-4xx after a DANE-EE handshake" \
    wait_file_grep "$RLOG" "to=<u1@fault39\\.$T>.*tls=dane-ee .*status=deferred class=smtp-4xx" 20
  # The TLSA RRSIG expires; MX and A stay secure (and cached).
  dc_tlsa "mx.fault39.$T" "$H_MX" expired
  t_bogus=$(wc -l < "$RLOG")
  sleep 3   # the cached secure TLSA RRset's TTL runs out (retries hit the 451)
  fm_conf "${FAULT_SINKS[@]}" "$FNET.37 ok" "$FNET.38 ok" "$FNET.39 ok"
  submit_direct "$S" "u2@fault39.$T" "dnsc-5@reliability.test" || not_ok "dnschange: second fault39 message accepted"
  check "bogus: the queued message defers 4.7.5 class=dnssec-bogus" \
    wait_file_grep "$RLOG" "to=<u1@fault39\\.$T>.*dsn=4\\.7\\.5 status=deferred class=dnssec-bogus" 15
  check "bogus: a new message defers 4.7.5 class=dnssec-bogus" \
    wait_file_grep "$RLOG" "to=<u2@fault39\\.$T>.*dsn=4\\.7\\.5 status=deferred class=dnssec-bogus" 15
  sleep 2.5   # more retries while bogus (the MX would now accept)
  check "bogus: nothing delivered while the TLSA answer is bogus" \
    eval "[ $(sink_count dnsc-4@reliability.test) = 0 ] && [ $(sink_count dnsc-5@reliability.test) = 0 ]"
  nbog=$(tail -n +"$((t_bogus + 1))" "$RLOG" | grep -cE "to=<u[12]@fault39\\.$T>.*class=dnssec-bogus")
  check "bogus: the relay kept retrying ($nbog dnssec-bogus deferrals)" [ "$nbog" -ge 3 ]
  # Second flavour: a corrupted signature instead of an expired one.
  dc_tlsa "mx.fault39.$T" "$H_MX" badsig
  sleep 2.5
  check "bogus (corrupted RRSIG): still nothing delivered" \
    eval "[ $(sink_count dnsc-4@reliability.test) = 0 ] && [ $(sink_count dnsc-5@reliability.test) = 0 ] && ! line_has 'u[12]@fault39\\.$T' 'status=sent'"
  dc_tlsa "mx.fault39.$T" "$H_MX"
  check "bogus: signatures restored: the queued message sent over DANE-EE" \
    wait_file_grep "$RLOG" "to=<u1@fault39\\.$T>.*tls=dane-ee .*status=sent" 15
  check "bogus: signatures restored: the new message sent over DANE-EE" \
    wait_file_grep "$RLOG" "to=<u2@fault39\\.$T>.*tls=dane-ee .*status=sent" 15
  n4=$(sink_count dnsc-4@reliability.test) n5=$(sink_count dnsc-5@reliability.test)
  check "bogus: each message delivered exactly once ($n4, $n5)" eval "[ $n4 = 1 ] && [ $n5 = 1 ]"
  row "TLSA RRSIG expired, then corrupted, mid-queue; then re-signed" 2 "$((n4 + n5))" \
    "$(( (n4 > 1 ? n4 - 1 : 0) + (n5 > 1 ? n5 - 1 : 0) ))" "$(( (n4 == 0) + (n5 == 0) ))"
  relay_stop TERM
  check "dnschange: no sanitizer report in the relay's output" sanitizer_clean "$SERVE_OUT"
  diag "dnschange section took $((SECONDS - DC_T0)) s"
  [ -s "$R/dnschange.err" ] && diag "$(cat "$R/dnschange.err")"
  fm_conf "${FAULT_SINKS[@]}"
fi

relay_stop TERM 2>/dev/null
diag "$(sed 's/^/row: /' "$ROWS")"
[ -n "${RELIABILITY_ROWS:-}" ] && cp "$ROWS" "$RELIABILITY_ROWS"
# Under meson (protocol tap) the TAP lines decide; a non-zero exit would turn
# failures into ERROR there. Standalone (make test-reliability) exit 1 on failure.
tap_done || [ -n "${RELIABILITY_TAP_ONLY:-}" ]
