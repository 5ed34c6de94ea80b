#!/usr/bin/env python3
"""Measurement helpers for bench/run.sh (stdlib only).

  bench.py cpu PID                  CPU seconds of PID and all its descendants
                                    (utime+stime+cutime+cstime of every live
                                    process in the tree; threads are included
                                    in their process, reaped children in
                                    their parent's cutime/cstime)
  bench.py watch ...                count deliveries at the sink and sample
                                    the memory of a process tree (see --help)
  bench.py lat-danerelay LOG TAG    latency: "queued" (the 250) to "delivery
                                    status=sent" (the sink's 250), per message
  bench.py lat-postfix LOG TAG      latency from Postfix smtp delay= fields
  bench.py wait220 HOST PORT T0 TMO seconds from T0 (epoch) until HOST:PORT
                                    answers with a 220 greeting; T0 may be
                                    @FILE: read from FILE once answered (so
                                    the poller can start before the server
                                    and its own start-up is not counted)
  bench.py crashload ...            submit messages until a stop file
                                    appears, reconnecting across relay
                                    restarts; record which were answered 250
  bench.py dupcount ...             per recipient of a run's tag: delivered
                                    more than once, or answered 250 and never
                                    delivered (see --help)
  bench.py handshakes ...           STARTTLS handshakes an MX instance saw,
                                    per retry round (see --help)
  bench.py table RESULTS.json       print the comparison table
"""
import argparse
import datetime
import json
import os
import re
import smtplib
import socket
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def tree(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0
    rest = s[s.rindex(")") + 2:].split()
    # fields 14..17 (1-based in proc(5)) are utime stime cutime cstime;
    # rest[] starts at field 3.
    return sum(int(x) for x in rest[11:15])


def tree_cpu(root):
    return sum(proc_cpu(p) for p in tree(root)) / HZ


def proc_mem(pid):
    """(rss_kib, pss_kib, hwm_kib) of one process."""
    rss = hwm = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss, hwm


def cmd_cpu(a):
    print(f"{tree_cpu(a.pid):.3f}")


def cmd_watch(a):
    """Poll the sink log for 'status=sent (benchmark sink)' lines whose
    recipient carries the run's tag; sample memory of the relay's tree."""
    pat = re.compile(r"to=<[0-9]*" + re.escape(a.tag) + r"@[^>]*>.*status=sent \(benchmark sink\)")
    pos = a.offset
    count = 0
    t_last = None
    peak_rss = peak_pss = peak_hwm = 0
    t_start = time.time()
    t_progress = t_start
    next_mem = 0.0
    partial = b""
    conns = msgs = 0
    disc = re.compile(r"/smtpd\[\d+\]: disconnect from .* data=(\d+)")
    while True:
        now = time.time()
        if now >= next_mem and a.pid:
            rs = ps = hw = 0
            for p in tree(a.pid):
                r, s, h = proc_mem(p)
                rs += r
                ps += s
                hw = max(hw, h)
            peak_rss = max(peak_rss, rs)
            peak_pss = max(peak_pss, ps)
            peak_hwm = max(peak_hwm, hw)
            next_mem = now + 0.5
        with open(a.log, "rb") as f:
            f.seek(pos)
            data = f.read()
        if data:
            pos += len(data)
            data = partial + data
            lines = data.split(b"\n")
            partial = lines.pop()
            got = 0
            for ln in lines:
                t = ln.decode("utf-8", "replace")
                if pat.search(t):
                    got += 1
                else:
                    m = disc.search(t)
                    if m:
                        conns += 1
                        msgs += int(m.group(1))
            if got:
                count += got
                t_last = time.time()
                t_progress = t_last
        if count >= a.n:
            break
        if time.time() - t_progress > a.stall or time.time() - t_start > a.timeout:
            break
        time.sleep(0.05)
    res = {"delivered": count, "t_last": t_last, "peak_rss_sum_kib": peak_rss,
           "peak_pss_sum_kib": peak_pss, "peak_hwm_max_kib": peak_hwm,
           "sink_conns": conns, "sink_msgs": msgs}
    with open(a.out, "w") as f:
        json.dump(res, f)
    print(json.dumps(res))


def pct(vals, p):
    if not vals:
        return None
    vals = sorted(vals)
    k = min(len(vals) - 1, max(0, int(round(p / 100.0 * len(vals) + 0.5)) - 1))
    return vals[k]


def summary(vals):
    return {"n": len(vals), "p50": pct(vals, 50), "p99": pct(vals, 99),
            "max": max(vals) if vals else None}


def iso(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def cmd_lat_danerelay(a):
    queued = {}
    lat = []
    tagre = re.compile(r"to=<[0-9]*" + re.escape(a.tag) + "@")
    with open(a.log, errors="replace") as f:
        for line in f:
            if " event=queued " in line:
                m = re.search(r" id=([0-9A-Fa-f]+)", line)
                if m:
                    queued[m.group(1)] = iso(line.split(" ", 1)[0])
            elif " event=delivery " in line and " status=sent" in line and tagre.search(line):
                m = re.search(r" id=([0-9A-Fa-f]+)", line)
                if m and m.group(1) in queued:
                    lat.append(iso(line.split(" ", 1)[0]) - queued[m.group(1)])
    print(json.dumps(summary(lat)))


def cmd_lat_postfix(a):
    lat = []
    rx = re.compile(r"/smtp\[\d+\]: \w+: to=<[0-9]*" + re.escape(a.tag) +
                    r"@[^>]*>,.* delay=([0-9.]+),.* status=sent")
    with open(a.log, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m:
                lat.append(float(m.group(1)))
    print(json.dumps(summary(lat)))


def cmd_wait220(a):
    def t0():
        if a.t0.startswith("@"):
            with open(a.t0[1:]) as f:
                return float(f.read())
        return float(a.t0)
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((a.host, a.port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    print(f"{time.time() - t0():.3f}")
                    return
        except OSError:
            pass
        time.sleep(0.01)
    print("timeout")
    sys.exit(1)


def cmd_crashload(a):
    """SESSIONS threads submit one message per transaction, a numbered
    recipient each (SEQ TAG @ one of the domains, round robin), until the
    stop file exists. A message is "accepted" only when the relay answered
    250 to its final dot; a dot whose reply never came (the relay was
    killed) is "unknown"; anything else is refused and not retried. A lost
    connection is reopened (the relay is being restarted)."""
    domains = a.domains.split(",")
    body = ("Subject: crash bench\r\n\r\n" + ("x" * 76 + "\r\n") * max(1, a.size // 78))
    lock = threading.Lock()
    seq = [0]
    acc, unknown = [], []
    refused = [0]
    conn_errors = [0]

    def next_rcpt():
        with lock:
            seq[0] += 1
            n = seq[0]
        return f"{n}{a.tag}@{domains[n % len(domains)]}"

    def worker():
        s = None
        while not os.path.exists(a.stop):
            if s is None:
                try:
                    s = smtplib.SMTP(a.host, a.port, local_hostname="load." + a.helo, timeout=10)
                    s.ehlo()
                except (OSError, smtplib.SMTPException):
                    s = None
                    with lock:
                        conn_errors[0] += 1
                    time.sleep(0.05)
                    continue
            rcpt = next_rcpt()
            stage = "envelope"
            try:
                code, _ = s.mail(a.sender)
                if code != 250:
                    raise smtplib.SMTPResponseException(code, b"mail")
                code, _ = s.rcpt(rcpt)
                if code not in (250, 251):
                    raise smtplib.SMTPResponseException(code, b"rcpt")
                code, _ = s.docmd("DATA")
                if code != 354:
                    raise smtplib.SMTPResponseException(code, b"data")
                stage = "dot"
                s.send(f"To: <{rcpt}>\r\n".encode() + body.encode() + b".\r\n")
                code, _ = s.getreply()
                with lock:
                    if code == 250:
                        acc.append(rcpt)
                    else:
                        refused[0] += 1
                if code != 250:
                    s.rset()
            except smtplib.SMTPResponseException:
                with lock:
                    refused[0] += 1
                try:
                    s.rset()
                except (OSError, smtplib.SMTPException):
                    s = None
            except (OSError, smtplib.SMTPException):
                with lock:
                    if stage == "dot":
                        unknown.append(rcpt)
                    conn_errors[0] += 1
                s = None
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    t0 = time.time()
    th = [threading.Thread(target=worker) for _ in range(a.sessions)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    res = {"accepted": len(acc), "unknown": len(unknown), "refused": refused[0],
           "conn_errors": conn_errors[0], "seconds": time.time() - t0}
    with open(a.out, "w") as f:
        json.dump(dict(res, accepted_rcpts=acc, unknown_rcpts=unknown), f)
    print(json.dumps(res))


def sink_rcpts(log, offset, tag):
    """Recipient -> number of discard lines at the sink, for one tag."""
    pat = re.compile(r"to=<([0-9]*" + re.escape(tag) + r"@[^>]*)>.*status=sent \(benchmark sink\)")
    seen = {}
    with open(log, "rb") as f:
        f.seek(offset)
        for ln in f:
            m = pat.search(ln.decode("utf-8", "replace"))
            if m:
                seen[m.group(1)] = seen.get(m.group(1), 0) + 1
    return seen


def cmd_dupcount(a):
    """Wait (up to --timeout) until every accepted recipient is at the
    sink, then count duplicates (copies beyond the first, of any recipient
    of the tag) and lost (accepted, never delivered)."""
    with open(a.load) as f:
        ld = json.load(f)
    accepted = set(ld["accepted_rcpts"])
    end = time.time() + a.timeout
    while True:
        seen = sink_rcpts(a.log, a.offset, a.tag)
        lost = [r for r in accepted if r not in seen]
        if not lost or time.time() > end:
            break
        time.sleep(0.5)
    time.sleep(a.settle)  # late copies of messages already counted
    seen = sink_rcpts(a.log, a.offset, a.tag)
    lost = sorted(r for r in accepted if r not in seen)
    dups = {r: n - 1 for r, n in seen.items() if n > 1}
    unknown = set(ld["unknown_rcpts"])
    # The relay's own account of each duplicate: two "status=sent" lines
    # mean it recorded the first delivery and still sent again (the record
    # did not reach the spool before the kill); one means the kill came
    # between the dot and the sink's reply (in flight, RFC 1047).
    relay_sent = {}
    if a.relay_log:
        rx = re.compile(r"to=<([0-9]*" + re.escape(a.tag) + r"@[^>]*)>.*status=sent")
        with open(a.relay_log, errors="replace") as f:
            for ln in f:
                m = rx.search(ln)
                if m and m.group(1) in dups:
                    relay_sent[m.group(1)] = relay_sent.get(m.group(1), 0) + 1
    res = {"accepted": len(accepted), "unknown": len(unknown),
           "unknown_delivered": sum(1 for r in unknown if r in seen),
           "delivered": len(seen), "duplicates": sum(dups.values()),
           "duplicated_rcpts": sorted(dups)[:20],
           "dups_in_flight": sum(n for r, n in dups.items() if relay_sent.get(r, 0) <= 1),
           "dups_sent_logged_twice": sum(n for r, n in dups.items() if relay_sent.get(r, 0) > 1), "lost": len(lost), "lost_rcpts": lost[:20],
           "not_accepted_delivered": sum(1 for r in seen if r not in accepted and r not in unknown)}
    print(json.dumps(res))


MONTHS = {m: i + 1 for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def syslog_time(line):
    """Epoch of a Postfix log line ('Mmm dd hh:mm:ss[.frac] ...', local time)."""
    p = line.split()
    if len(p) < 3 or p[0] not in MONTHS:
        return None
    now = time.localtime()
    hms = p[2].split(".")[0].split(":")
    try:
        t = time.mktime((now.tm_year, MONTHS[p[0]], int(p[1]), int(hms[0]), int(hms[1]),
                         int(hms[2]), 0, 0, -1))
        return t + (float("0." + p[2].split(".")[1]) if "." in p[2] else 0.0)
    except (ValueError, IndexError):
        return None


def cmd_handshakes(a):
    """STARTTLS handshakes at an MX instance (Postfix smtpd with
    smtpd_tls_loglevel = 1: one 'TLS connection established' or one
    'SSL_accept error' per attempt) from --t0 on, in rounds of --round
    seconds."""
    pat = re.compile(r"/smtpd\[\d+\]: (\S+ TLS connection established from|SSL_accept error from)")
    times = []
    with open(a.log, "rb") as f:
        f.seek(a.offset)
        for ln in f:
            t = ln.decode("utf-8", "replace")
            if pat.search(t):
                ts = syslog_time(t)
                if ts is not None:
                    times.append(ts)
    n = max(1, int((a.t1 - a.t0) // a.round) + 1)
    rounds = [0] * n
    for ts in times:
        i = int((ts - int(a.t0)) // a.round)
        rounds[min(max(i, 0), n - 1)] += 1
    print(json.dumps({"handshakes": len(times), "rounds": rounds}))


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def cmd_table(a):
    with open(a.results) as f:
        R = json.load(f)
    runs = [r for r in ("danerelay", "postfix-default", "postfix-reuse") if r in R.get("runs", {})]
    rows = [
        ("CPU s / 1000 msgs (relay processes)", "cpu_per_1k", ".2f", "low"),
        ("end-to-end msgs/s (first submit .. last delivery)", "e2e_rate", ".0f", "high"),
        ("acceptance msgs/s (smtp-source wall time)", "accept_rate", ".0f", "high"),
        ("delivered at the sink / sent", "delivered_str", "s", None),
        ("peak RSS MiB (danerelay VmHWM; Postfix peak sum RSS)", "peak_rss_mib", ".1f", "low"),
        ("peak PSS MiB (sum over processes, sampled 0.5 s)", "peak_pss_mib", ".1f", "low"),
        ("messages per sink connection (closed in the run)", "msgs_per_conn", ".1f", "high"),
        ("latency p50 ms (250 -> sink 250)", "lat_p50_ms", ".0f", "low"),
        ("latency p99 ms", "lat_p99_ms", ".0f", "low"),
        ("latency max ms", "lat_max_ms", ".0f", "low"),
        # SLOWLANE: the same relay, N more messages, 10% to a TLSA mismatch.
        ("slow lane: 90% delivered at the sink / sent", "slow_delivered_str", "s", None),
        ("slow lane: 90% end-to-end msgs/s", "slow_e2e_rate", ".0f", "high"),
        ("slow lane: 90% rate / clean rate (target >= 0.90)", "slow_vs_clean", ".2f", "high"),
        ("slow lane: messages to the mismatch domain", "slow_fail_msgs", "d", None),
        ("slow lane: their deferrals logged by the relay", "slow_fail_deferrals", "d", None),
        ("slow lane: handshakes at the mismatch MX", "slow_handshakes", "d", "low"),
        ("slow lane: handshakes per mismatch message", "slow_handshakes_per_msg", ".3f", "low"),
        ("slow lane: handshakes per retry round", "slow_rounds_str", "s", None),
        # KILLS: kill -9 under load, restart, count at the sink.
        ("kill -9: kills under load", "crash_kills", "d", None),
        ("kill -9: messages answered 250", "crash_accepted", "d", None),
        ("kill -9: no reply to the dot (of them delivered)", "crash_unknown", "s", None),
        ("kill -9: duplicates delivered", "crash_dups", "d", "low"),
        ("kill -9: duplicates per kill", "crash_dups_per_kill", ".1f", "low"),
        ("kill -9: of them in flight / relay logged sent twice", "crash_dups_kind", "s", None),
        ("kill -9: lost (answered 250, never delivered)", "crash_lost", "d", "low"),
        ("kill -9: slowest restart to accepting, s", "crash_restart_s", ".2f", "low"),
    ]
    hdr = ["figure"] + runs
    if "danerelay" in runs:
        hdr += [f"dr/{r.replace('postfix-', 'pf-')}" for r in runs if r != "danerelay"]
    out = []
    for label, key, spec, _ in rows:
        if not any(key in R["runs"][r] for r in runs):
            continue  # a mode that was skipped
        line = [label]
        for r in runs:
            v = R["runs"][r].get(key)
            line.append(v if isinstance(v, str) else fmt(v, spec))
        if "danerelay" in runs:
            for r in runs:
                if r == "danerelay":
                    continue
                if spec in ("s", "d") and key not in ("crash_dups", "crash_lost", "slow_handshakes"):
                    line.append("")
                    continue
                rv = ratio(R["runs"]["danerelay"].get(key), R["runs"][r].get(key))
                line.append("" if spec == "s" else fmt(rv, ".2f"))
        out.append(line)
    w = [max(len(str(x[i])) for x in out + [hdr]) for i in range(len(hdr))]
    print(f"N={R['n']} messages of {R['size']} bytes, {R['sessions']} sessions, "
          f"{R['domains']} DANE-EE domains; danerelay {R.get('danerelay_version', '?')}")
    for line in [hdr] + out:
        print("  ".join(str(x).ljust(w[i]) if i == 0 else str(x).rjust(w[i])
                        for i, x in enumerate(line)))
    L = R.get("limits", {})
    if L:
        print("\nmachine limits (same run):")
        for k, v in L.items():
            print(f"  {k}: {v}")
    B = R.get("backlog")
    if B:
        print("\nbacklog (danerelay):")
        for k, v in B.items():
            print(f"  {k}: {v}")


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("cpu"); p.add_argument("pid", type=int); p.set_defaults(f=cmd_cpu)
    p = sp.add_parser("watch")
    p.add_argument("--log", required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--tag", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1200)
    p.add_argument("--stall", type=float, default=60)
    p.add_argument("--out", required=True)
    p.set_defaults(f=cmd_watch)
    p = sp.add_parser("lat-danerelay"); p.add_argument("log"); p.add_argument("tag")
    p.set_defaults(f=cmd_lat_danerelay)
    p = sp.add_parser("lat-postfix"); p.add_argument("log"); p.add_argument("tag")
    p.set_defaults(f=cmd_lat_postfix)
    p = sp.add_parser("wait220"); p.add_argument("host"); p.add_argument("port", type=int)
    p.add_argument("t0"); p.add_argument("timeout", type=float)
    p.set_defaults(f=cmd_wait220)
    p = sp.add_parser("crashload")
    for o in ("host", "tag", "domains", "sender", "helo", "stop", "out"):
        p.add_argument("--" + o, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--size", type=int, default=4096)
    p.set_defaults(f=cmd_crashload)
    p = sp.add_parser("dupcount")
    p.add_argument("--log", required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--tag", required=True)
    p.add_argument("--load", required=True, help="crashload's --out")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--settle", type=float, default=3)
    p.add_argument("--relay-log", help="the relay's log: classify duplicates")
    p.set_defaults(f=cmd_dupcount)
    p = sp.add_parser("handshakes")
    p.add_argument("--log", required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--t1", type=float, required=True)
    p.add_argument("--round", type=float, required=True)
    p.set_defaults(f=cmd_handshakes)
    p = sp.add_parser("table"); p.add_argument("results"); p.set_defaults(f=cmd_table)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
