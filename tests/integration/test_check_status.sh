#!/usr/bin/env bash
# `danerelay check` and `danerelay status` in the test world.
#
# check: a good configuration passes (exit 0, the DNSSEC self-test against
# the world's signed zones included); each broken one is found with its
# line and exit 1: a TLS key root can read but run_user cannot (so the
# check really opens files as run_user), a spool run_user cannot write, a
# listen port taken by another program, a broken trust anchor; a spool
# with mode 0755 is a warning (exit 0); with serve running, its own port
# is a warning "in use (daemon running ...)".
# status: against a running serve with real deferred mail (two TLSA
# mismatches, one bogus zone, one of them held): pid, version, counts by
# queue and failure class, text and JSON (parsed with python3); exit 3
# and a message on stderr once serve is stopped.
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_check_status.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_check_status.sh DANERELAY}
HARNESS_NAME=chk
export WORLD_NET=${WORLD_NET:-16}
RELAY_PORT=${CHECK_RELAY_PORT:-10036}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

RUN_USER=danerelay
write_conf() {  # FILE [EXTRA LINE...]
  local f=$1; shift
  {
    echo "# Written by tests/integration/test_check_status.sh"
    echo "listen = $RELAY_ADDR"
    echo "mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32"
    echo "spool_dir = $SPOOL"
    echo "myhostname = relay.chk.$WORLD_TLD"
    echo "dns_resolver_config = $WORLD_UNBOUND_CONF"
    echo "dns_trust_anchor_file = ${TA:-$WORLD_TRUST_ANCHOR}"
    echo "dns_selftest_name = $WORLD_SELFTEST_NAME"
    echo "tls_ca_file = $WORLD_CA_CERT"
    echo "retry_min = 1h"
    echo "retry_max = 2h"
    printf '%s\n' "$@"
  } > "$f"
  chmod 644 "$f"
}
write_conf "$CONF"
# The spool as the package makes it (tmpfiles.d): run_user's, 0700.
mkdir -m 700 "$SPOOL"
chown "$RUN_USER:" "$SPOOL"

OUT=$T/check.out
# run_check CONF [ARGS...]: check's stdout in $OUT, exit status in $RC.
run_check() {
  local c=$1; shift
  "$RELAY_BIN" -c "$c" check "$@" > "$OUT" 2> "$T/check.err"
  RC=$?
  sed 's/^/# check: /' "$OUT" >&2
}
has() { grep -qE -- "$1" "$OUT"; }
no_errors() { ! grep -q '^error: ' "$OUT"; }
every_line_has_severity() { ! grep -qvE '^(ok|warning|error): [a-z_]+: ' "$OUT"; }

# ---- a good configuration ----
run_check "$CONF"
check "good config: exit 0" [ "$RC" = 0 ]
check "good config: no error line" no_errors
check "good config: every line is 'SEVERITY: SUBJECT: text'" every_line_has_severity
check "good config: files are checked as run_user" has "^ok: config: $CONF: readable by $RUN_USER$"
check "good config: trust anchor parsed" has "^ok: dns_trust_anchor_file: .*: 1 DS and 0 DNSKEY record"
check "good config: listen address bindable" has "^ok: listen: $RELAY_ADDR: can bind$"
check "good config: spool writable by run_user, 0700" has "^ok: spool_dir: $SPOOL: writable by $RUN_USER, mode 0700$"
check "good config: DNSSEC self-test passes (world anchor)" has "^ok: dns_selftest: $WORLD_SELFTEST_NAME: secure$"

# ---- TLS key readable by root only ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$T/in.key" -out "$T/in.pem" -days 30 -subj "/CN=relay.chk" 2>/dev/null
chmod 644 "$T/in.pem"
chmod 600 "$T/in.key"
write_conf "$T/key.conf" "tls_cert_file = $T/in.pem" "tls_key_file = $T/in.key"
run_check "$T/key.conf" --no-dns
check "key unreadable by run_user: exit 1" [ "$RC" = 1 ]
check "key unreadable by run_user: error names the key and the user" \
  has "^error: tls_key_file: $T/in.key: not readable by $RUN_USER: Permission denied$"
check "key unreadable by run_user: certificate is fine" has "^ok: tls_cert_file: $T/in.pem: readable by $RUN_USER$"
check "--no-dns: no self-test line" bash -c "! grep -q dns_selftest '$OUT'"
chmod 640 "$T/in.key"
chgrp "$RUN_USER" "$T/in.key"
run_check "$T/key.conf" --no-dns
check "key readable by run_user's group: exit 0" [ "$RC" = 0 ]
check "key readable: pair loads and matches" has "^ok: tls: tls_cert_file and tls_key_file load and match$"

# ---- the spool ----
chmod 755 "$SPOOL"
run_check "$CONF" --no-dns
check "spool mode 0755: a warning, exit 0" [ "$RC" = 0 ]
check "spool mode 0755: the warning says so" has "^warning: spool_dir: $SPOOL: mode 0755 lets other users"
chown root: "$SPOOL"
chmod 700 "$SPOOL"
run_check "$CONF" --no-dns
check "spool root's 0700: exit 1" [ "$RC" = 1 ]
check "spool root's 0700: not writable by run_user" \
  has "^error: spool_dir: $SPOOL: not writable by $RUN_USER \\(owner root, mode 0700\\)"
chown "$RUN_USER:" "$SPOOL"

# ---- a broken trust anchor ----
printf '; anchors\n. IN DS 20326 8 2 XYZ\n' > "$T/bad.ta"
chmod 644 "$T/bad.ta"
TA=$T/bad.ta write_conf "$T/ta.conf"
run_check "$T/ta.conf" --no-dns
check "broken trust anchor: exit 1" [ "$RC" = 1 ]
check "broken trust anchor: FILE:LINE and why" \
  has "^error: dns_trust_anchor_file: $T/bad.ta:2: DS digest is not hexadecimal$"

# ---- the listen port taken by another program ----
python3 - "$RELAY_HOST" "$RELAY_PORT" "$T/busy.ready" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
open(sys.argv[3], "w").close()
time.sleep(30)
PY
BUSY=$!
wait_for 5 test -e "$T/busy.ready"
run_check "$CONF" --no-dns
kill "$BUSY" 2>/dev/null
wait "$BUSY" 2>/dev/null
check "port in use by another program: exit 1" [ "$RC" = 1 ]
check "port in use by another program: error" \
  has "^error: listen: $RELAY_ADDR: in use by another program"

# ---- no daemon: status exits 3 ----
"$RELAY_BIN" -c "$CONF" status > "$OUT" 2> "$T/status.err"
RC=$?
check "status without serve: exit 3" [ "$RC" = 3 ]
check "status without serve: says so on stderr" grep -q "no daemon answers for spool $SPOOL" "$T/status.err"
check "status without serve: nothing on stdout" test ! -s "$OUT"

# ---- with serve running ----
if ! start_relay; then
  not_ok "danerelay serve starts"
  echo "1..$n"
  exit 1
fi
ok "danerelay serve starts and listens on $RELAY_ADDR"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

run_check "$CONF" --no-dns
check "check with serve running: exit 0" [ "$RC" = 0 ]
check "check with serve running: the daemon is named" has "^warning: daemon: serve pid $RELAY_PID is running on spool $SPOOL$"
check "check with serve running: its port is 'in use (daemon running', a warning" \
  has "^warning: listen: $RELAY_ADDR: in use \\(daemon running: serve pid $RELAY_PID"

send() {  # MSGID RCPT
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid = sys.argv[1:6]
s = smtplib.SMTP(host, int(port), timeout=30)
s.sendmail(sender, [rcpt], f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {mid}\r\n\r\nstatus\r\n")
s.quit()
PY
}
R_MM1=u1@$WORLD_D_MISMATCH R_MM2=u2@$WORLD_D_MISMATCH R_BS=u1@$WORLD_D_BOGUS_SIG
send mm1 "$R_MM1"
send mm2 "$R_MM2"
send bs1 "$R_BS"
check "setup: three recipients deferred" \
  wait_for 30 bash -c "grep -E 'event=delivery .*status=deferred' '$RLOG' | wc -l | grep -qx 3"
ID_BS=$("$RELAY_BIN" -c "$CONF" queue list --json | python3 -c '
import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m["recipients"][0]["address"].startswith("u1@bogus"): print(m["queue_id"])')
hold_it() { "$RELAY_BIN" -c "$CONF" queue hold "$1" >&2; }
check "setup: hold the bogus-zone message" hold_it "$ID_BS"

"$RELAY_BIN" -c "$CONF" status > "$OUT" 2> "$T/status.err"
RC=$?
sed 's/^/# status: /' "$OUT" >&2
VERSION=$("$RELAY_BIN" version | awk '{print $2}')
check "status: exit 0" [ "$RC" = 0 ]
check "status text: pid and version" has "^daemon: pid $RELAY_PID, danerelay $VERSION, started "
check "status text: self-test ok" has "^dns_selftest: ok \\(last result ok at .*: secure\\)$"
check "status text: queue counts" has "^queue: 3 messages \\(0 active, 2 deferred, 1 hold\\), 3 open recipients, 3 deferred$"
check "status text: by failure class" has "^deferred by failure class: dnssec-bogus 1, tlsa-mismatch 2$"
check "status text: nothing in flight" has "^in flight: 0 deliveries \\(0 destinations\\), 0 outbound connections, 0 inbound sessions$"

"$RELAY_BIN" -c "$CONF" status --json > "$OUT" 2> "$T/status.err"
RC=$?
check "status --json: exit 0" [ "$RC" = 0 ]
check "status --json: parses, and every count matches what was queued" \
  python3 - "$OUT" "$RELAY_PID" "$VERSION" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["pid"] == int(sys.argv[2]), s["pid"]
assert s["version"] == sys.argv[3], s["version"]
assert s["uptime_s"] >= 0 and s["started"] > 1600000000, s
assert s["dns_selftest"]["state"] == "ok", s["dns_selftest"]
assert s["dns_selftest"]["last_result"] == "ok", s["dns_selftest"]
assert s["dns_selftest"]["last_time"] >= s["started"], s["dns_selftest"]
q = s["queue"]
want = {"messages": 3, "active": 0, "deferred": 2, "hold": 1, "recipients": 3,
        "deferred_recipients": 3, "unparsable": 0, "corrupt": 0}
for k, v in want.items():
    assert q[k] == v, (k, q[k], v)
assert q["by_failure_class"] == {"tlsa-mismatch": 2, "dnssec-bogus": 1}, q["by_failure_class"]
assert s["deliveries"] == {"messages": 0, "destinations": 0}, s["deliveries"]
assert s["connections"]["inbound"] == 0 and s["connections"]["outbound"] == 0, s["connections"]
assert isinstance(s["connection_cache"], int)
assert s["policy_exceptions"] == [], s["policy_exceptions"]
PY

stop_relay TERM
"$RELAY_BIN" -c "$CONF" status > "$OUT" 2> "$T/status.err"
RC=$?
check "status after serve stopped: exit 3" [ "$RC" = 3 ]
check "status after serve stopped: message on stderr" grep -q "serve is not running" "$T/status.err"

echo "1..$n"
[ "$failed" -eq 0 ]
