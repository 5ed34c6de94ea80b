#!/usr/bin/env bash
# Operator commands on real deferred mail in the test world:
# `queue list`, `queue show`, `report` (text and JSON, field by
# field) and `queue hold|release|delete|retry` while `danerelay serve` runs.
#
# Real mail is queued over SMTP to the relay and stays deferred:
#   - a TLSA mismatch      (mismatch.drworld: 3 1 1 of an unused key)
#   - a bogus zone         (bogus-sig.drworld: expired RRSIGs)
#   - a dead MX            (fault1.drworld: MX 127.NET.11.1, nothing listens)
# plus one message that is delivered (dane-ee.drworld) and must not be listed.
# retry_min = 1h, so nothing is retried unless a command asks for it.
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_cli_world.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_cli_world.sh DANERELAY}
HARNESS_NAME=cli
# Own loopback network and relay port: never clashes with test_relay.sh.
export WORLD_NET=${WORLD_NET:-12}
RELAY_PORT=${CLI_RELAY_PORT:-10033}
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

cat > "$CONF" <<EOF
# Written by tests/integration/test_cli_world.sh
listen = $RELAY_ADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.cli.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
tls_ca_file = $WORLD_CA_CERT
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
log_level = debug
EOF

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }

log_count() {  # RCPT PATTERN -> number of delivery lines
  grep -E "event=delivery .*to=<$1>" "$RLOG" 2>/dev/null | grep -cE -- "$2"
}

# send MSGID FROM RCPT: one message straight to the relay over SMTP.
send() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$2" "$3" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: cli {mid}\r\n"
       f"Message-ID: <{mid}@cli.{tld}>\r\n\r\n" + ("queued for the cli test\r\n" * 40))
s.sendmail(sender, [rcpt], msg)
s.quit()
PY
}

if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts and listens on $RELAY_ADDR"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

S=$WORLD_SENDER
D_MM=$WORLD_D_MISMATCH D_BS=$WORLD_D_BOGUS_SIG D_EE=$WORLD_D_DANE_EE
D_DEAD=fault1.$WORLD_TLD
R_MM=u1@$D_MM R_BS=u1@$D_BS R_DEAD=u1@$D_DEAD R_EE=u1@$D_EE
R_HR=u3@$D_MM        # held, released, retried
R_DEL=u4@$D_BS       # deleted
START=$(date +%s)

send mm1 "$S" "$R_MM"
send bs1 "$S" "$R_BS"
send dead1 "$S" "$R_DEAD"
send ee1 "$S" "$R_EE"
send hr1 "$S" "$R_HR"
send del1 "$S" "$R_DEL"

check "setup: TLSA mismatch deferred (4.7.5 tlsa-mismatch)" \
  wait_for 30 log_has "$R_MM" "dsn=4.7.5 status=deferred class=tlsa-mismatch"
check "setup: bogus zone deferred (4.7.5 dnssec-bogus)" \
  wait_for 30 log_has "$R_BS" "dsn=4.7.5 status=deferred class=dnssec-bogus"
check "setup: dead MX deferred (4.4.x connect)" \
  wait_for 60 log_has "$R_DEAD" "dsn=4\.4\.[0-9]+ status=deferred class=connect"
check "setup: second mismatch and second bogus message deferred" \
  wait_for 30 bash -c "grep -E 'event=delivery .*to=<($R_HR|$R_DEL)>.*status=deferred' '$RLOG' | wc -l | grep -qx 2"
check "setup: the DANE-EE message is delivered" \
  wait_for 30 maildir_has "$WORLD_D_DANE_EE_MAILDIR" ee1
# Let every deferral reach the envelope (the log line and the envelope
# update are not ordered for an outside reader).
all_deferred_in_spool() {
  [ "$(grep -l '^r.status deferred' "$SPOOL"/queue/*.env 2>/dev/null | wc -l)" = 5 ]
}
check "setup: five envelopes in the spool with a deferred recipient" \
  wait_for 20 all_deferred_in_spool

# --- usage ---------------------------------------------------------------
usage_ok() {
  local u q
  u=$("$RELAY_BIN" --help 2>&1) && q=$("$RELAY_BIN" queue --help 2>&1) || return 1
  grep -q "queue" <<< "$u" && grep -q "report" <<< "$u" &&
    grep -q "queue list" <<< "$q" && grep -q "\-\-older-than" <<< "$q" &&
    grep -q "hold|release|delete|retry" <<< "$q"
}
check "usage: danerelay --help and queue --help name the commands and filters" usage_ok
check "usage: queue list with a bad --older-than is a usage error (exit 2)" \
  bash -c "'$RELAY_BIN' -c '$CONF' queue list --older-than xyz >/dev/null 2>&1; [ \$? = 2 ]"
check "usage: queue show of a malformed id is a usage error (exit 2)" \
  bash -c "'$RELAY_BIN' -c '$CONF' queue show nothex >/dev/null 2>&1; [ \$? = 2 ]"

# --- queue list --json ---------------------------------------------------
J=$T/list.json
DR queue list --json > "$J" 2> "$T/list.err"
LIST_RC=$?
echo "--- queue list --json" >&2; cat "$J" >&2
check "list --json: exit 0, nothing on stderr" bash -c "[ $LIST_RC = 0 ] && [ ! -s '$T/list.err' ]"

# pyj FILE CODE ARGS...: runs CODE with `objs` (the JSON Lines of FILE),
# `args` and `now`; CODE raises AssertionError (printed) to fail.
pyj() {
  local f=$1 code=$2; shift 2
  python3 - "$f" "$code" "$@" <<'PY'
import json, os, re, sys, time
path, code, args = sys.argv[1], sys.argv[2], sys.argv[3:]
objs = []
with open(path) as fh:
    for line in fh:
        if line.strip():
            objs.append(json.loads(line))
now = time.time()
def by_rcpt(addr):
    m = [o for o in objs if any(r.get("address") == addr for r in o.get("recipients", []))]
    assert len(m) == 1, f"{len(m)} messages for {addr}"
    return m[0]
try:
    exec(code)
except AssertionError as e:
    print(f"check failed: {e}", file=sys.stderr)
    sys.exit(1)
except Exception as e:
    print(f"check error: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
PY
}

check "list --json: every line is one JSON object, five messages" \
  pyj "$J" 'assert len(objs) == 5, len(objs); assert all(isinstance(o, dict) for o in objs)'
check "list --json: the delivered DANE-EE message is absent" \
  pyj "$J" 'assert not any(r["address"] == args[0] for o in objs for r in o["recipients"])' "$R_EE"
check "list --json: newest last (ids and arrival_time ascending)" \
  pyj "$J" 'ids = [o["queue_id"] for o in objs]; assert ids == sorted(ids), ids
a = [o["arrival_time"] for o in objs]; assert a == sorted(a), a'

# msg_fields RCPT DSN_REGEX CLASS: the message object of RCPT, field by field.
MSG_CHECK='
o = by_rcpt(args[0]); spool, start, sender = args[3], int(args[4]), args[5]
assert re.fullmatch(r"[0-9A-Fa-f]{14}", o["queue_id"]), o["queue_id"]
assert o["queue_name"] == "deferred", o["queue_name"]
assert isinstance(o["arrival_time"], int), o["arrival_time"]
assert start - 5 <= o["arrival_time"] <= now + 1, (start, o["arrival_time"], now)
assert isinstance(o["message_size"], int) and o["message_size"] > 0, o["message_size"]
msg = os.path.join(spool, "queue", o["queue_id"] + ".msg")
assert o["message_size"] == os.path.getsize(msg), (o["message_size"], os.path.getsize(msg))
assert o["sender"] == sender, o["sender"]
assert len(o["recipients"]) == 1, o["recipients"]
r = o["recipients"][0]
assert r["address"] == args[0], r
assert r["status"] == "deferred", r["status"]
assert re.fullmatch(args[1], r["dsn"]), r["dsn"]
assert isinstance(r["reason"], str) and r["reason"].strip(), r["reason"]
assert r["failure_class"] == args[2], r["failure_class"]
assert isinstance(r["attempts"], int) and r["attempts"] >= 1, r["attempts"]
assert isinstance(r["next_attempt"], int) and r["next_attempt"] > o["arrival_time"], r["next_attempt"]
# retry_min = 1h: the next attempt is about an hour away
assert r["next_attempt"] >= now + 1800, (r["next_attempt"], now)
'
msg_fields() {
  pyj "$J" "$MSG_CHECK" "$1" "$2" "$3" "$SPOOL" "$START" "$S"
}
check "list --json: TLSA mismatch message: every field (deferred, 4.7.5, tlsa-mismatch, size = spool file)" \
  msg_fields "$R_MM" '4\.7\.5' tlsa-mismatch
check "list --json: bogus zone message: every field (deferred, 4.7.5, dnssec-bogus)" \
  msg_fields "$R_BS" '4\.7\.5' dnssec-bogus
check "list --json: dead MX message: every field (deferred, 4.4.x, connect)" \
  msg_fields "$R_DEAD" '4\.4\.[0-9]{1,3}' connect
check "list --json: the mismatch reason speaks of TLSA" \
  pyj "$J" 'r = by_rcpt(args[0])["recipients"][0]; assert "tlsa" in r["reason"].lower(), r["reason"]' "$R_MM"

id_of() { python3 -c '
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if any(r["address"] == sys.argv[2] for r in o["recipients"]):
        print(o["queue_id"])' "$J" "$1"; }
ID_MM=$(id_of "$R_MM"); ID_BS=$(id_of "$R_BS"); ID_DEAD=$(id_of "$R_DEAD")
ID_HR=$(id_of "$R_HR"); ID_DEL=$(id_of "$R_DEL")
echo "ids: mm=$ID_MM bs=$ID_BS dead=$ID_DEAD hr=$ID_HR del=$ID_DEL" >&2

# list_ids ARGS... -> the sorted queue ids that `queue list --json ARGS` prints
list_ids() {
  DR queue list --json "$@" | python3 -c '
import json, sys
print(" ".join(sorted(json.loads(l)["queue_id"] for l in sys.stdin if l.strip())))'
}
sorted_ids() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
ids_are() {  # "EXPECTED" FILTER ARGS...
  local want=$1; shift
  local got
  got=$(list_ids "$@")
  [ "$got" = "$want" ] || { echo "filter $*: got '$got' want '$want'" >&2; return 1; }
}
check "list --domain $D_MM: exactly the two mismatch messages" \
  ids_are "$(sorted_ids "$ID_MM" "$ID_HR")" --domain "$D_MM"
check "list --domain $D_DEAD: exactly the dead-MX message" \
  ids_are "$ID_DEAD" --domain "$D_DEAD"
check "list --class dnssec-bogus: exactly the two bogus-zone messages" \
  ids_are "$(sorted_ids "$ID_BS" "$ID_DEL")" --class dnssec-bogus
check "list --class connect: exactly the dead-MX message" \
  ids_are "$ID_DEAD" --class connect
check "list --class tlsa-mismatch --domain $D_BS: nothing (filters combine)" \
  ids_are "" --class tlsa-mismatch --domain "$D_BS"
check "list --older-than 1h: nothing is that old" ids_are "" --older-than 1h
sleep 2
check "list --older-than 1s: all five" \
  ids_are "$(sorted_ids "$ID_MM" "$ID_BS" "$ID_DEAD" "$ID_HR" "$ID_DEL")" --older-than 1s

# --- queue list (text) ---------------------------------------------------
TXT=$T/list.txt
DR queue list > "$TXT" 2>&1
echo "--- queue list" >&2; cat "$TXT" >&2
text_list_ok() {
  python3 - "$J" "$TXT" <<'PY'
import json, re, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
txt = open(sys.argv[2]).read()
lines = txt.splitlines()
bad = []
for o in objs:
    qid = o["queue_id"]
    hits = [l for l in lines if l.startswith(qid)]
    if len(hits) != 1:
        bad.append(f"{qid}: {len(hits)} lines"); continue
    f = hits[0][len(qid):].split()
    if str(o["message_size"]) not in f[:2]:
        bad.append(f"{qid}: size {o['message_size']} not on its line: {hits[0]!r}")
    if o["sender"] not in hits[0]:
        bad.append(f"{qid}: sender missing")
    for r in o["recipients"]:
        if r["address"] not in txt:
            bad.append(f"{r['address']} missing")
        if r["reason"][:60] not in txt:
            bad.append(f"reason of {r['address']} missing: {r['reason'][:60]!r}")
        if r["failure_class"] not in txt or r["dsn"] not in txt:
            bad.append(f"class/dsn of {r['address']} missing")
total = sum(o["message_size"] for o in objs)
foot = f"-- {(total + 1023) // 1024} Kbytes in {len(objs)} Requests."
if lines[-1] != foot:
    bad.append(f"footer {lines[-1]!r} != {foot!r}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
check "list text: ids, sizes, senders, recipients, dsn, class and reasons; footer '-- N Kbytes in 5 Requests.'" \
  text_list_ok

# --- queue show ----------------------------------------------------------
SPKI_MX=$(openssl pkey -in "$WORLD_PKI/mx.key" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
SPKI_OTHER=$(openssl pkey -in "$WORLD_PKI/other.key" -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
MXCA_ADDR=127.$NET.10.1
SJ=$T/show.json
DR queue show --json "$ID_MM" > "$SJ" 2>&1
echo "--- queue show --json $ID_MM" >&2; cat "$SJ" >&2
check "show --json: one JSON object for the id, envelope fields" \
  pyj "$SJ" 'assert len(objs) == 1, len(objs); o = objs[0]
assert o["queue_id"] == args[0], o.get("queue_id")
assert o["sender"] == args[1], o.get("sender")
assert o["queue_name"] == "deferred", o.get("queue_name")
assert o["message_size"] > 0
h = o["headers"]; s = json.dumps(h)
assert "cli mm1" in s and "mm1@cli." in s, h' "$ID_MM" "$S"
SHOW_ATTEMPT='
o = objs[0]; r = o["recipients"][0]
assert r["address"] == args[0], r["address"]
att = r["attempt_records"]
assert isinstance(att, list) and len(att) == r["attempts"] >= 1, (len(att), r["attempts"])
a = att[-1]
assert a["mx_host"].rstrip(".") == args[1], a["mx_host"]
assert a["addr"] == args[2], a["addr"]
assert a["dnssec_mx"] == "secure", a["dnssec_mx"]
assert a["dnssec_addr"] == "secure", a["dnssec_addr"]
assert a["dnssec_tlsa"] == "secure", a["dnssec_tlsa"]
# The TLSA record seen: 3 1 1 of the unused key (the data may be shown
# abbreviated, but what is shown must be that record).
m = re.fullmatch(r"3 1 1 ([0-9a-f]{12,64})(\.\.)?", a["tlsa"].lower())
assert m and args[3].startswith(m.group(1)), (a["tlsa"], args[3])
assert not a.get("matched"), a.get("matched")
assert a["failure_class"] == "tlsa-mismatch", a["failure_class"]
assert a["dsn"] == "4.7.5" and a["status"] == "deferred", (a["dsn"], a["status"])
assert "TLSA" in a["reason"], a["reason"]
'
check "show --json: the mismatch attempt: MX host, address, DNSSEC secure x3, the TLSA record seen, no match, 4.7.5, class" \
  pyj "$SJ" "$SHOW_ATTEMPT" "$R_MM" "$WORLD_D_MISMATCH_MX" "$MXCA_ADDR" "$SPKI_OTHER"
# The peer certificate's SPKI SHA-256 and names, also
# (above all) when DANE authentication failed.
SHOW_PEER='
a = objs[0]["recipients"][0]["attempt_records"][-1]
assert re.fullmatch(r"[0-9a-f]{64}", a["peer_spki"].lower()), ("peer_spki", a["peer_spki"])
assert a["peer_spki"].lower() == args[0], (a["peer_spki"], args[0])
assert args[1] in a["peer_names"], ("peer_names", a["peer_names"])
'
check "show --json: the mismatch attempt records the peer SPKI sha256 (64 hex, = the mxca key) and the certificate names" \
  pyj "$SJ" "$SHOW_PEER" "$SPKI_MX" "$WORLD_D_MISMATCH_MX"
ST=$T/show.txt
DR queue show "$ID_MM" > "$ST" 2>&1
echo "--- queue show $ID_MM" >&2; cat "$ST" >&2
show_text_has() {  # WORD...: the text of queue show holds every WORD
  local w
  for w in "$@"; do
    grep -qiF -- "$w" "$ST" || { echo "show text lacks: $w" >&2; return 1; }
  done
}
show_text_ok() {
  show_text_has "$ID_MM" "<$S>" "$R_MM" "$WORLD_D_MISMATCH_MX" "[$MXCA_ADDR]" \
    "3 1 1 ${SPKI_OTHER:0:12}" "tlsa-mismatch" "4.7.5" "mx=secure addr=secure tlsa=secure" \
    "Subject:" "cli mm1" "mm1@cli." || return 1
  grep -qE "^Queue: +deferred" "$ST" || { echo "show text: no 'Queue: deferred'" >&2; return 1; }
}
check "show text: id, sender, recipient, headers, MX host, address, DNSSEC statuses, TLSA seen, class" show_text_ok
check "show text: the mismatch attempt shows the peer SPKI sha256 of the mxca key" \
  show_text_has "$SPKI_MX"
check "show: an unknown id fails with exit 1 and names it" \
  bash -c "out=\$('$RELAY_BIN' -c '$CONF' queue show 00000000000001 2>&1); [ \$? = 1 ] && grep -q 00000000000001 <<< \"\$out\""
DR queue show --json "$ID_DEAD" > "$T/show-dead.json" 2>&1
check "show --json: the dead-MX attempt names the MX host, its address and class connect" \
  pyj "$T/show-dead.json" 'a = objs[0]["recipients"][0]["attempt_records"][-1]
assert a["mx_host"].rstrip(".") == args[0], a["mx_host"]
assert a["addr"] == args[1], a["addr"]
assert a["failure_class"] == "connect", a["failure_class"]' "mx.$D_DEAD" "$WORLD_FAULT_NET.1"

# --- report --------------------------------------------------------------
RJ=$T/report.json
DR report --json > "$RJ" 2>&1
echo "--- report --json" >&2; cat "$RJ" >&2
REPORT_CHECK='
assert len(objs) == 1, len(objs)
rep = objs[0]
assert rep["hostname"] == args[4], rep["hostname"]
assert rep["messages"] == 5 and rep["recipients"] == 5, (rep["messages"], rep["recipients"])
assert rep["counts"]["5m"] == 5 and sum(rep["counts"].values()) == 5, rep["counts"]
assert rep["oldest"]["queue_id"] == args[3], rep["oldest"]
dests = {d["domain"]: d for d in rep["destinations"]}
want = {args[0]: ("tlsa-mismatch", 2), args[1]: ("dnssec-bogus", 2), args[2]: ("connect", 1)}
assert set(dests) == set(want), sorted(dests)
for dom, (cls, cnt) in want.items():
    d = dests[dom]
    assert d["recipients"] == cnt and d["messages"] == cnt and d["held"] == 0, d
    assert d["counts"]["5m"] == cnt and sum(d["counts"].values()) == cnt, d["counts"]
    assert [c["failure_class"] for c in d["classes"]] == [cls], d["classes"]
    c = d["classes"][0]
    assert c["recipients"] == cnt and c["counts"]["5m"] == cnt, c
    assert sum(c["counts"].values()) == cnt, c
    assert c["hint"], c
    assert d["latest"]["failure_class"] == cls and d["latest"]["reason"], d["latest"]
    assert d["latest"]["recipient"].endswith("@" + dom), d["latest"]
mm = dests[args[0]]["classes"][0]
assert "TLSA" in mm["hint"] and "rotated" in mm["hint"], mm["hint"]
'
check "report --json: totals, qshape buckets, oldest, counts per domain x class (mismatch 2, bogus 2, connect 1), hints" \
  pyj "$RJ" "$REPORT_CHECK" "$D_MM" "$D_BS" "$D_DEAD" "$ID_MM" "relay.cli.$WORLD_TLD"
check "report --json: the mismatch destination's latest attempt: MX host, address, DNSSEC, TLSA seen" \
  pyj "$RJ" 'l = [d for d in objs[0]["destinations"] if d["domain"] == args[0]][0]["latest"]
assert l["mx_host"].rstrip(".") == args[1] and l["addr"] == args[2], l
assert (l["dnssec_mx"], l["dnssec_addr"], l["dnssec_tlsa"]) == ("secure",) * 3, l
assert l["tlsa"].lower().startswith("3 1 1 " + args[3][:12]), l["tlsa"]' \
  "$D_MM" "$WORLD_D_MISMATCH_MX" "$MXCA_ADDR" "$SPKI_OTHER"
check "report --json: the mismatch destination's latest attempt carries the peer SPKI sha256" \
  pyj "$RJ" 'l = [d for d in objs[0]["destinations"] if d["domain"] == args[0]][0]["latest"]
assert l["peer_spki"].lower() == args[1], ("peer_spki", l["peer_spki"])' "$D_MM" "$SPKI_MX"
RT=$T/report.txt
DR report > "$RT" 2>&1
echo "--- report" >&2; cat "$RT" >&2
report_text_ok() {
  python3 - "$RT" "$D_MM" "$D_BS" "$D_DEAD" <<'PY'
import re, sys
txt = open(sys.argv[1]).read()
lines = txt.splitlines()
bad = []
def row(name, indent):
    pat = re.compile(r"^" + " " * indent + re.escape(name) + r"\s+(\d+(?:\s+\d+){10})\s*$")
    m = [pat.match(l) for l in lines]
    m = [x for x in m if x]
    return [int(v) for v in m[0].group(1).split()] if len(m) == 1 else None
if "5 deferred recipients in 5 messages to 3 destinations" not in txt:
    bad.append("summary line")
t = row("TOTAL", 0)
if t != [5, 5] + [0] * 9:
    bad.append(f"TOTAL row {t}")
for dom, cls, cnt in ((sys.argv[2], "tlsa-mismatch", 2), (sys.argv[3], "dnssec-bogus", 2),
                      (sys.argv[4], "connect", 1)):
    r = row(dom, 0)
    if r != [cnt, cnt] + [0] * 9:
        bad.append(f"{dom} row {r}")
    i = [k for k, l in enumerate(lines) if l.startswith(dom + " ")]
    if not i or not re.match(r"^  " + cls + r"\s+" + str(cnt) + r"\s+" + str(cnt) + r"\s", lines[i[0] + 1]):
        bad.append(f"{dom}: class row {cls} {cnt} not under the domain row")
hints = txt.split("\nHints:\n", 1)
if len(hints) != 2:
    bad.append("no Hints section")
else:
    h = hints[1].splitlines()
    for cls in ("tlsa-mismatch", "dnssec-bogus", "connect"):
        if sum(1 for l in h if l.startswith(f"  {cls}: ")) != 1:
            bad.append(f"hint line for {cls}")
    if not any(l.startswith("  tlsa-mismatch: the server's key does not match its TLSA records; "
                            "if the key was rotated") for l in h):
        bad.append("tlsa-mismatch hint text")
for b in bad:
    print("report text:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
check "report text: summary, TOTAL, domain x class rows with age buckets, one hint line per class (tlsa-mismatch: key rotated)" \
  report_text_ok
check "report text: the mismatch destination shows MX, DNSSEC and the TLSA seen" \
  bash -c "grep -qF 'mx:         $WORLD_D_MISMATCH_MX [$MXCA_ADDR]' '$RT' && grep -qF 'tlsa seen:  3 1 1 ${SPKI_OTHER:0:12}' '$RT'"

# --- hold / release / retry / delete while serve runs --------------------
json_field() {  # RCPT PYEXPR(o, r) -> printed value from a fresh list --json
  DR queue list --json | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    for r in o["recipients"]:
        if r["address"] == sys.argv[1]:
            print(eval(sys.argv[2]))' "$1" "$2"
}
ATT_HR0=$(json_field "$R_HR" 'r["attempts"]')
ATT_MM0=$(json_field "$R_MM" 'r["attempts"]')
OUT=$(DR queue hold "$ID_HR" 2>&1); RC=$?
echo "--- hold: $OUT" >&2
check "hold: exit 0, names the id and the mode 'via daemon'" \
  bash -c "[ $RC = 0 ] && grep -q '$ID_HR' <<< \"\$1\" && grep -q 'via daemon' <<< \"\$1\"" _ "$OUT"
check "hold: queue_name=hold in list --json" \
  bash -c "[ \"\$1\" = hold ]" _ "$(json_field "$R_HR" 'o["queue_name"]')"
check "hold: text list flags the held message with '!'" \
  bash -c "'$RELAY_BIN' -c '$CONF' queue list | grep -q '^$ID_HR!'"
check "hold: the envelope records hold yes" grep -q '^hold yes' "$SPOOL/queue/$ID_HR.env"
# A retry of everything: the other messages are attempted, the held one not.
OUT=$(DR queue retry --all 2>&1); RC=$?
echo "--- retry --all: $OUT" >&2
check "retry --all: exit 0, via daemon" bash -c "[ $RC = 0 ] && grep -q 'via daemon' <<< \"\$1\"" _ "$OUT"
attempts_above() { [ "$(json_field "$1" 'r["attempts"]')" -gt "$2" ] 2>/dev/null; }
check "retry --all: the mismatch message is attempted again within seconds (attempts+1)" \
  wait_for 30 attempts_above "$R_MM" "$ATT_MM0"
sleep 3
check "hold: the held message was not attempted (attempts unchanged after the retry window)" \
  bash -c "[ \"\$1\" = \"\$2\" ]" _ "$(json_field "$R_HR" 'r["attempts"]')" "$ATT_HR0"
check "hold: still held" bash -c "[ \"\$1\" = hold ]" _ "$(json_field "$R_HR" 'o["queue_name"]')"

OUT=$(DR queue release "$ID_HR" 2>&1); RC=$?
echo "--- release: $OUT" >&2
check "release: exit 0, names the id, via daemon" \
  bash -c "[ $RC = 0 ] && grep -q '$ID_HR' <<< \"\$1\" && grep -q 'via daemon' <<< \"\$1\"" _ "$OUT"
check "release: queue_name back to deferred" \
  bash -c "[ \"\$1\" = deferred ]" _ "$(json_field "$R_HR" 'o["queue_name"]')"
check "release: the envelope records hold no" \
  wait_for 5 grep -q '^hold no' "$SPOOL/queue/$ID_HR.env"
LOGN0=$(log_count "$R_HR" "status=deferred")
OUT=$(DR queue retry "$ID_HR" 2>&1); RC=$?
echo "--- retry: $OUT" >&2
check "retry ID: exit 0, names the id, via daemon" \
  bash -c "[ $RC = 0 ] && grep -q '$ID_HR' <<< \"\$1\" && grep -q 'via daemon' <<< \"\$1\"" _ "$OUT"
check "retry ID: attempts+1 within seconds" wait_for 30 attempts_above "$R_HR" "$ATT_HR0"
check "retry ID: a new delivery log line for the recipient" \
  wait_for 10 bash -c "[ \"\$(grep -E 'event=delivery .*to=<$R_HR>' '$RLOG' | grep -c status=deferred)\" -gt $LOGN0 ]"
check "retry ID: still deferred 4.7.5 tlsa-mismatch, next attempt an hour away" \
  bash -c "[ \"\$1\" = 'deferred 4.7.5 tlsa-mismatch True' ]" _ \
  "$(json_field "$R_HR" 'o["queue_name"] + " " + r["dsn"] + " " + r["failure_class"] + " " + str(r["next_attempt"] > __import__("time").time() + 1800)')"

OUT=$(DR queue delete "$ID_DEL" 2>&1); RC=$?
echo "--- delete: $OUT" >&2
check "delete: exit 0, names the id, via daemon" \
  bash -c "[ $RC = 0 ] && grep -q '$ID_DEL' <<< \"\$1\" && grep -q 'via daemon' <<< \"\$1\"" _ "$OUT"
check "delete: gone from list --json (four left)" \
  bash -c "[ \"\$('$RELAY_BIN' -c '$CONF' queue list --json | grep -c .)\" = 4 ] && ! '$RELAY_BIN' -c '$CONF' queue list --json | grep -q '$ID_DEL'"
check "delete: its files are gone from spool/queue" \
  bash -c "! ls '$SPOOL/queue/' | grep -q '$ID_DEL'"
check "delete: queue show of the deleted id fails (exit 1)" \
  bash -c "'$RELAY_BIN' -c '$CONF' queue show '$ID_DEL' >/dev/null 2>&1; [ \$? = 1 ]"
OUT=$(DR queue hold "$ID_DEL" 2>&1); RC=$?
check "hold of the deleted id: exit 1 and the id named" \
  bash -c "[ $RC = 1 ] && grep -q '$ID_DEL' <<< \"\$1\"" _ "$OUT"
check "serve still runs after the changes" kill -0 "$RELAY_PID"

# --- stopped spool: the same commands, spool locked directly ---------------
stop_relay TERM
OUT=$(DR queue hold "$ID_BS" 2>&1); RC=$?
echo "--- hold (stopped): $OUT" >&2
check "stopped spool: hold works and says 'spool locked directly'" \
  bash -c "[ $RC = 0 ] && grep -q 'spool locked directly' <<< \"\$1\"" _ "$OUT"
check "stopped spool: list --json shows it held, four messages" \
  bash -c "[ \"\$1\" = hold ] && [ \"\$('$RELAY_BIN' -c '$CONF' queue list --json | grep -c .)\" = 4 ]" _ \
  "$(json_field "$R_BS" 'o["queue_name"]')"
check "stopped spool: the spool stays owned by danerelay" \
  bash -c "[ -z \"\$(find '$SPOOL' ! -user danerelay)\" ]"

echo "1..$n"
[ "$failed" -eq 0 ]
