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
  bench.py table RESULTS.json       print the comparison table
"""
import argparse
import datetime
import json
import os
import re
import socket
import sys
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
    ]
    hdr = ["figure"] + runs
    if "danerelay" in runs:
        hdr += [f"dr/{r.replace('postfix-', 'pf-')}" for r in runs if r != "danerelay"]
    out = []
    for label, key, spec, _ in rows:
        line = [label]
        for r in runs:
            v = R["runs"][r].get(key)
            line.append(v if isinstance(v, str) else fmt(v, spec))
        if "danerelay" in runs:
            for r in runs:
                if r == "danerelay":
                    continue
                if spec == "s":
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
    p = sp.add_parser("table"); p.add_argument("results"); p.set_defaults(f=cmd_table)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
