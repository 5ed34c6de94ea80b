#!/usr/bin/env bash
# The metrics endpoint (metrics_listen, GET /metrics) and `danerelay
# metrics` in the test world: a known mix of mail, then both texts are
# parsed with a real Prometheus parser (python3-prometheus-client's
# text_string_to_metric_families) and their counters checked against what
# was sent and against the relay's own delivery lines.
#
#   3 messages to dane-ee.drworld   sent, tls=dane-ee       (success)
#   2 messages to mismatch.drworld  deferred, tlsa-mismatch (RFC 8460
#                                   certificate-host-mismatch), retry in 1h
#   1 message  to insecure.drworld  sent, tls=may
#
# Also: the HTTP answers (200 with the 0.0.4 Content-Type, 404, 405), a
# client outside mynetworks refused (curl --interface from another loopback
# address), the queue gauges after `queue hold`, and the render time and
# size (printed).
#
# Output is TAP on stdout; chatter goes to stderr.
# usage: test_metrics.sh PATH/TO/danerelay
set -uo pipefail

RELAY_BIN=${1:?usage: test_metrics.sh DANERELAY}
HARNESS_NAME=metrics
# Own loopback network and ports: never clashes with the other tests.
export WORLD_NET=${WORLD_NET:-25}
RELAY_PORT=${METRICS_RELAY_PORT:-10037}
# The parser comes from Debian's python3-prometheus-client, installed for
# the system's python3 (which a python3 earlier in PATH may not see).
PARSER_PY=
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import prometheus_client' 2>/dev/null; then PARSER_PY=$p; break; fi
done
if [ -z "$PARSER_PY" ]; then
  echo "1..0 # SKIP python3-prometheus-client missing (scripts/deps.sh test)"
  exit 77
fi
# shellcheck source=relay_harness.sh
source "$(dirname "$0")/relay_harness.sh"

MPORT=${METRICS_PORT:-9325}
MADDR=$RELAY_HOST:$MPORT
# A loopback address outside mynetworks, as the refused client's source.
OUTSIDER=127.$NET.0.99
D_EE=$WORLD_D_DANE_EE D_MM=$WORLD_D_MISMATCH D_IN=$WORLD_D_INSECURE

cat > "$CONF" <<EOF
# Written by tests/integration/test_metrics.sh
listen = $RELAY_ADDR
metrics_listen = $MADDR
mynetworks = 127.0.0.1/32, $RELAY_HOST/32, $WORLD_UPSTREAM_ADDR/32
spool_dir = $SPOOL
myhostname = relay.metrics.$WORLD_TLD
dns_resolver_config = $WORLD_UNBOUND_CONF
dns_trust_anchor_file =
dns_selftest_name = $WORLD_SELFTEST_NAME
tls_security_level = dane
retry_min = 1h
retry_max = 2h
delay_warning_time = 4h
EOF

DR() { "$RELAY_BIN" -c "$CONF" "$@"; }

# send MSGID RCPT: one message straight to the relay over SMTP.
send() {
  python3 - "$RELAY_HOST" "$RELAY_PORT" "$WORLD_SENDER" "$2" "$1" "$WORLD_TLD" <<'PY'
import smtplib, sys
host, port, sender, rcpt, mid, tld = sys.argv[1:7]
s = smtplib.SMTP(host, int(port), timeout=30)
msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: metrics {mid}\r\n"
       f"Message-ID: <{mid}@metrics.{tld}>\r\n\r\nmetrics test\r\n")
s.sendmail(sender, [rcpt], msg)
s.quit()
PY
}

# delivery_lines: how many delivery lines the relay logged.
delivery_lines() { grep -c "event=delivery " "$RLOG" 2>/dev/null || echo 0; }

START=$(date +%s)
if ! start_relay; then
  echo "1..1"
  echo "not ok 1 - danerelay serve starts"
  exit 1
fi
ok "danerelay serve starts with metrics_listen = $MADDR"
check "the started line names metrics_listen" grep -qE "event=started .*metrics_listen=$MADDR" "$RLOG"
check "DNSSEC self-test passes" wait_for 20 grep -q "event=dnssec-selftest status=ok" "$RLOG"

# --- the mix ---------------------------------------------------------------
for i in 1 2 3; do send "ee$i" "u$i@$D_EE"; done
for i in 1 2; do send "mm$i" "u$i@$D_MM"; done
send in1 "u1@$D_IN"
check "all six attempts logged (3 sent dane-ee, 2 deferred mismatch, 1 sent may)" \
  wait_for 60 bash -c "[ \$(grep -c 'event=delivery ' '$RLOG') -ge 6 ]"
check "nothing else was attempted (exactly six delivery lines)" [ "$(delivery_lines)" = 6 ]

# --- HTTP ------------------------------------------------------------------
H=$T/http.head B=$T/http.txt
stats=$(curl -sS -D "$H" -o "$B" -w '%{time_total} %{size_download}' "http://$MADDR/metrics")
echo "# GET /metrics: time_total=${stats% *}s size=${stats#* } bytes" >&2
echo "# GET /metrics: time_total=${stats% *}s size=${stats#* } bytes"
check "GET /metrics: 200" grep -qE '^HTTP/1\.1 200 OK' "$H"
check "GET /metrics: Content-Type text/plain; version=0.0.4; charset=utf-8" \
  grep -qiF 'Content-Type: text/plain; version=0.0.4; charset=utf-8' "$H"
check "GET /metrics: Connection: close and a Content-Length matching the body" \
  bash -c "grep -qi '^Connection: close' '$H' && grep -qiE \"^Content-Length: \$(stat -c %s '$B')\" '$H'"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$MADDR/other")
check "GET /other: 404" [ "$code" = 404 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$MADDR/metrics")
check "POST /metrics: 405" [ "$code" = 405 ]
code=$(curl -s -o /dev/null -w '%{http_code}' --http1.0 "http://$MADDR/metrics")
check "HTTP/1.0 GET /metrics: 200" [ "$code" = 200 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "http://$MADDR/metrics")
check "a request head over 8 KiB: 431" [ "$code" = 431 ]
# A client that sends its request a byte at a time still gets the text.
drip=$(python3 - "$RELAY_HOST" "$MPORT" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n":
    s.send(bytes([b]))
    time.sleep(0.005)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.split(b"\r\n", 1)[0].decode(), b"danerelay_dane_results_total" in data)
PY
)
check "a request sent a byte at a time: 200 with the text ($drip)" [ "$drip" = "HTTP/1.1 200 OK True" ]
curl -sS --max-time 5 --interface "$OUTSIDER" -o "$T/outsider.txt" "http://$MADDR/metrics" 2> "$T/outsider.err"
st=$?
check "a client outside mynetworks ($OUTSIDER) gets no answer (curl exit $st)" \
  bash -c "[ $st -ne 0 ] && [ ! -s '$T/outsider.txt' ]"
check "the refusal is logged with the client address" \
  wait_for 5 grep -qE "event=metrics client=$OUTSIDER status=refused" "$RLOG"

# --- the CLI over the control socket -----------------------------------------
C=$T/cli.txt
DR metrics > "$C" 2> "$T/cli.err"
check "danerelay metrics: exit 0" [ $? = 0 ]
check "danerelay metrics | grep dane: shows the DANE results" \
  grep -qx 'danerelay_dane_results_total{result="success"} 3' "$C"

# --- parse both with a real parser; check the counters -------------------------
grep -E "event=delivery " "$RLOG" > "$T/deliveries.log"
"$PARSER_PY" - "$B" "$C" "$T/deliveries.log" "$START" <<'PY' > "$T/checks.txt" 2>&1
import re, sys, time
from prometheus_client.parser import text_string_to_metric_families

http_file, cli_file, log_file, start = sys.argv[1:5]
start = int(start)

def parse(path):
    text = open(path, encoding="utf-8").read()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {}
    for f in fams.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return fams, samples

def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc)

http_f, http = parse(http_file)
cli_f, cli = parse(cli_file)

def v(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), None)

def total(samples, name, **labels):
    return sum(val for (n, ls), val in samples.items() if n == name
               and all(dict(ls).get(k) == x for k, x in labels.items()))

want_types = {
    "danerelay_deliveries": "counter",
    "danerelay_dane_results": "counter",
    "danerelay_dns_lookups": "counter",
    "danerelay_tls_handshakes": "counter",
    "danerelay_connection_reuses": "counter",
    "danerelay_queue_messages": "gauge",
    "danerelay_queue_oldest_age_seconds": "gauge",
    "danerelay_dnssec_selftest_ok": "gauge",
    "danerelay_dnssec_selftest_last_success_timestamp_seconds": "gauge",
    "danerelay_routing_changes": "counter",
    "danerelay_delivery_latency_seconds": "histogram",
}
for name, typ in want_types.items():
    f = http_f.get(name)
    check(f is not None and f.type == typ and f.documentation,
          f"family {name}: type {typ} with HELP text")
# The routing monitor's one change: the mismatch MX presents a key that no
# TLSA names and that was never seen before (README "Routing changes").
rc = {s.labels.get("kind"): s.value for s in http_f["danerelay_routing_changes"].samples}
check(rc == {"key-new-unmatched": 1.0},
      f"routing changes: key-new-unmatched == 1 (the mismatch MX), got {rc}")

D = "danerelay_deliveries_total"
check(v(http, D, outcome="sent", tls="dane-ee", **{"class": "none"}) == 3,
      "deliveries sent/dane-ee/none == 3")
check(v(http, D, outcome="sent", tls="may", **{"class": "none"}) == 1,
      "deliveries sent/may/none == 1")
check(total(http, D, outcome="deferred", **{"class": "tlsa-mismatch"}) == 2,
      "deliveries deferred/*/tlsa-mismatch == 2")
check(total(http, D) == 6, "deliveries total == 6")

# The counters say what the delivery lines say, series by series.
from collections import Counter
logged = Counter()
for line in open(log_file):
    st = re.search(r" status=(\S+)", line).group(1)
    tls = re.search(r" tls=(\S+)", line).group(1)
    m = re.search(r" class=(\S+)", line)
    logged[(st, tls, m.group(1) if m else "none")] += 1
counted = Counter({(dict(ls)["outcome"], dict(ls)["tls"], dict(ls)["class"]): val
                   for (n, ls), val in http.items() if n == D})
check(logged == counted, f"deliveries match the delivery lines: {dict(logged)} vs {dict(counted)}")

R = "danerelay_dane_results_total"
check(v(http, R, result="success") == 3, "dane results: success == 3")
check(v(http, R, result="certificate-host-mismatch") == 2,
      "dane results: certificate-host-mismatch == 2")
check(total(http, R) == 5, "dane results: nothing else (total 5)")
for r in ("starttls-not-supported", "certificate-expired", "certificate-not-trusted",
          "validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required",
          "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"):
    check(v(http, R, result=r) == 0, f"dane results: {r} shown as 0")

N = "danerelay_dns_lookups_total"
check(v(http, N, type="MX", status="secure") >= 2, "dns: MX secure >= 2 (dane-ee, mismatch)")
check(v(http, N, type="MX", status="insecure") >= 1, "dns: MX insecure >= 1 (insecure)")
check(v(http, N, type="TLSA", status="secure") >= 2, "dns: TLSA secure >= 2")
check(total(http, N, status="bogus") == 0, "dns: no bogus answer")
check(v(http, N, type="A", status="secure") >= 1 and v(http, N, type="SOA", status="secure") is not None,
      "dns: A secure counted; the SOA row exists")

T = "danerelay_tls_handshakes_total"
ok_hs, failed_hs = v(http, T, result="ok"), v(http, T, result="failed")
reuses = v(http, "danerelay_connection_reuses_total")
# One failing handshake: after it the mismatch domain is suspended for
# retry_min and its second message is deferred without a connection.
check(failed_hs == 1, f"tls handshakes failed == 1 (mismatch, then suspended), got {failed_hs}")
check(ok_hs + reuses == 4, f"tls handshakes ok + reuses == 4 sent (ok {ok_hs}, reuses {reuses})")

Q = "danerelay_queue_messages"
check(v(http, Q, state="deferred") == 2 and v(http, Q, state="active") == 0
      and v(http, Q, state="hold") == 0, "queue: 2 deferred, 0 active, 0 hold")
age = v(http, "danerelay_queue_oldest_age_seconds")
check(0 < age <= time.time() - start + 1, f"queue: oldest age {age} s within the test")

check(v(http, "danerelay_dnssec_selftest_ok") == 1, "self-test ok == 1")
ts = v(http, "danerelay_dnssec_selftest_last_success_timestamp_seconds")
check(start - 1 <= ts <= time.time() + 1, f"self-test last success {ts} within the test")

L = "danerelay_delivery_latency_seconds"
check(v(http, L + "_count") == 4 and v(http, L + "_bucket", le="+Inf") == 4,
      "latency: count == +Inf bucket == 4 sent")
check(0 < v(http, L + "_sum") < 60, "latency: sum of 4 deliveries between 0 and 60 s")
buckets = sorted(((float(dict(ls)["le"]), val) for (n, ls), val in http.items()
                  if n == L + "_bucket"))
check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])),
      "latency: buckets cumulative")
check(buckets[0][0] == 0.05 and buckets[-2][0] == 3600, "latency: buckets 0.05 .. 3600, +Inf")

# The CLI text is the same text: every counter equal (gauges move with time).
counters = {k: val for k, val in http.items()
            if not k[0].startswith(("danerelay_queue_oldest", "danerelay_dnssec_selftest_last"))}
same = all(cli.get(k) == val for k, val in counters.items()) and set(cli) == set(http)
check(same, "danerelay metrics: the same series and counter values as GET /metrics")
PY
while read -r verdict desc; do
  if [ "$verdict" = PASS ]; then ok "$desc"; elif [ "$verdict" = FAIL ]; then not_ok "$desc"; else
    not_ok "parser: $verdict $desc"; fi
done < "$T/checks.txt"

# --- queue gauges follow `queue hold` ------------------------------------------
ID=$(grep -E "event=delivery .*to=<u1@$D_MM>" "$RLOG" | head -1 | sed -nE 's/.* id=([0-9A-F]{14}) .*/\1/p')
DR queue hold "$ID" > /dev/null 2>&1
check "after queue hold: hold 1, deferred 1" \
  bash -c "curl -s 'http://$MADDR/metrics' | grep -qx 'danerelay_queue_messages{state=\"hold\"} 1' &&
           curl -s 'http://$MADDR/metrics' | grep -qx 'danerelay_queue_messages{state=\"deferred\"} 1'"

stop_relay TERM
check "relay stops cleanly (no handle left open)" [ "${RELAY_STATUS:-1}" = 0 ]
run_metrics_stopped=$(DR metrics 2>&1); st=$?
check "danerelay metrics without a daemon: exit 1 with a clear error" \
  bash -c "[ $st = 1 ] && [[ \"$run_metrics_stopped\" == *'no running serve'* ]]"

echo "1..$n"
[ "$failed" -eq 0 ]
