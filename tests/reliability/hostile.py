#!/usr/bin/env python3
"""hostile.py: hostile SMTP clients against danerelay's server side.
Each check prints one line "ok - DESC" or "not ok - DESC"
(plus "# detail" lines); test_reliability.sh turns them into TAP.

    hostile.py CHECK HOST PORT [ARGS...]

  smuggle HOST PORT RCPT VICTIM   SMTP smuggling probes (one line per probe);
                                  prints "queued QID" for every 250 it gets
  longline HOST PORT              over-long command line, then the session
                                  (or a new one) still works
  oversize HOST PORT RCPT LIMIT   a message over message_size_limit: 552 5.3.4
  toomany HOST PORT DOMAIN MAX    MAX+1 recipients: the extra one 452/552
  outsider HOST PORT SRCADDR      client outside mynetworks: 554, no MAIL
  flood HOST PORT N OTHERSRC RCPT N connections from one address: those over
                                  the per-client limit get 421 while a
                                  client from OTHERSRC still gets a message
                                  through
  slow HOST PORT TIMEOUT RCPT     an idle client is cut off after about
                                  TIMEOUT seconds while another is served
  burst HOST PORT N RCPT          N pipelined NOOPs, then MAIL and N RCPTs,
                                  in single bursts: every reply arrives
  lockout HOST PORT OUTSRC N INSRC RCPT  N clients outside mynetworks stay
                                  connected: a mynetworks client from INSRC
                                  still gets a message through, and the
                                  outsiders are disconnected before their
                                  idle timer could do it
  drip HOST PORT RCPT             a command, then message content, one byte
                                  at a time faster than the idle timer:
                                  the client is cut off with 421 4.4.2
  nul HOST PORT RCPT              content with a NUL octet gets 5.6.x
  refusals HOST PORT RCPT         a bare LF in content, an oversized
                                  message and an over-long content line,
                                  each refused (the caller checks the log)
  eightbit HOST PORT RCPT MSGID   an 8-bit message without BODY= is queued
"""

import socket
import sys
import threading
import time


def out(ok, desc, detail=""):
    print(("ok - " if ok else "not ok - ") + desc, flush=True)
    for line in detail.splitlines():
        print("# " + line, flush=True)


class C:
    def __init__(self, host, port, src=None, timeout=15):
        self.s = socket.create_connection((host, int(port)), timeout=timeout,
                                          source_address=(src, 0) if src else None)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\n" not in self.buf:
                d = self.s.recv(65536)
                if not d:
                    raise ConnectionError("closed: " + repr(lines))
                self.buf += d
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("latin-1")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return line[:3], lines

    def send(self, raw):
        self.s.sendall(raw if isinstance(raw, bytes) else raw.encode())

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def session(host, port, **kw):
    c = C(host, port, **kw)
    code, _ = c.reply()
    assert code == "220", code
    code, _ = c.cmd("EHLO hostile.test")
    assert code == "250", code
    return c


# Each probe: the payload between the message's first part and "DATA..."
# A vulnerable server treats it as the end of data, so the commands after
# it start a second, smuggled transaction.
PROBES = [
    ("LF.LF", b"\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("CRLF.LF", b"\r\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CR.CRLF", b"\r.\r\n"),
    ("CRLF.CR", b"\r\n.\r"),
    ("CR.LF", b"\r.\n"),
    ("LF.CR", b"\n.\r"),
    ("CRLF.CRLF-after-bare-LF-line", b"bare lf line\n.\r\n"),
    ("NUL.CRLF", b"\r\n\x00.\r\n"),
    ("CRLF.SP.CRLF", b"\r\n. \r\n"),
]


def smuggle(host, port, rcpt, victim):
    for name, sep in PROBES:
        try:
            c = session(host, port)
            c.cmd("MAIL FROM:<probe@hostile.test>")
            c.cmd(f"RCPT TO:<{rcpt}>")
            code, _ = c.cmd("DATA")
            if code != "354":
                out(True, f"smuggle {name}: DATA refused ({code})")
                c.close()
                continue
            mid = f"smuggle-{name}@hostile.test"
            payload = (f"Message-ID: <{mid}>\r\nSubject: probe {name}\r\n\r\n"
                       "first part\r\n").encode()
            payload += sep
            payload += (f"MAIL FROM:<evil@hostile.test>\r\nRCPT TO:<{victim}>\r\n"
                        f"DATA\r\nMessage-ID: <smuggled-{name}@hostile.test>\r\n"
                        "Subject: smuggled\r\n\r\nsmuggled\r\n").encode()
            c.send(payload + b".\r\n")
            replies = []
            c.s.settimeout(3)
            try:
                while True:
                    code, lines = c.reply()
                    replies.append(lines[-1])
            except (socket.timeout, ConnectionError, OSError):
                pass
            c.close()
            queued = [r for r in replies if r.startswith("250") and "queued as" in r]
            for r in queued:
                print("queued " + r.rsplit(" ", 1)[-1], flush=True)
            # Exactly one reply to the end of data, never a reply to the
            # smuggled MAIL/RCPT/DATA (a 2xx or 354 for them would show as
            # further replies). The session may then end with the server's
            # own "421 4.4.2 ... timeout" while the probe waits; that is the
            # idle timeout closing the connection, not a reply to anything
            # the probe sent, so it may only come last.
            if len(replies) == 2 and replies[1].startswith("421 4.4.2"):
                replies = replies[:1]
            ok = len(replies) == 1 and len(queued) <= 1
            out(ok, f"smuggle {name}: one reply to one end-of-data, no second transaction",
                "replies: " + " | ".join(replies))
        except Exception as e:  # noqa: BLE001
            out(False, f"smuggle {name}: probe ran", repr(e))


def longline(host, port):
    c = session(host, port)
    c.send("NOOP " + "x" * 20000 + "\r\n")
    try:
        code, lines = c.reply()
    except ConnectionError as e:
        code, lines = "closed", [str(e)]
    out(code[0] in "5" or code in ("421", "closed"),
        "a 20000-byte command line is refused (5xx or 421), not executed", " ".join(lines)[:300])
    c.close()
    # The server is still up and serves a new client.
    try:
        c = session(host, port)
        code, _ = c.cmd("NOOP")
        out(code == "250", "after an over-long line the server still serves clients")
        c.close()
    except Exception as e:  # noqa: BLE001
        out(False, "after an over-long line the server still serves clients", repr(e))
    # An over-long RCPT address (RFC 5321 4.5.3.1.3: path up to 256 octets).
    try:
        c = session(host, port)
        c.cmd("MAIL FROM:<a@hostile.test>")
        code, lines = c.cmd("RCPT TO:<" + "a" * 5000 + "@x.test>")
        out(code[0] in "45", "a 5000-octet recipient path is refused", lines[-1][:200])
        c.close()
    except Exception as e:  # noqa: BLE001
        out(False, "a 5000-octet recipient path is refused", repr(e))


def oversize(host, port, rcpt, limit):
    limit = int(limit)
    c = session(host, port)
    c.cmd("MAIL FROM:<big@hostile.test>")
    c.cmd(f"RCPT TO:<{rcpt}>")
    code, _ = c.cmd("DATA")
    body = ("Subject: big\r\nMessage-ID: <oversize@hostile.test>\r\n\r\n"
            + ("y" * 76 + "\r\n") * (limit // 78 + 100))
    try:
        c.send(body + ".\r\n")
        code, lines = c.reply()
    except (ConnectionError, OSError) as e:
        code, lines = "closed", [str(e)]
    out(code == "552" and "5.3.4" in lines[-1],
        f"a message over message_size_limit ({limit}) gets 552 5.3.4", lines[-1][:200])
    # SIZE= declared too large is refused at MAIL (RFC 1870).
    try:
        c = session(host, port)
        code, lines = c.cmd(f"MAIL FROM:<big@hostile.test> SIZE={limit * 2}")
        out(code == "552", "MAIL with SIZE= over the limit gets 552", lines[-1][:200])
        c.close()
    except Exception as e:  # noqa: BLE001
        out(False, "MAIL with SIZE= over the limit gets 552", repr(e))


def toomany(host, port, domain, mx):
    mx = int(mx)
    c = session(host, port)
    c.cmd("MAIL FROM:<many@hostile.test>")
    codes = [c.cmd(f"RCPT TO:<r{i}@{domain}>")[0] for i in range(mx + 1)]
    c.cmd("RSET")
    c.close()
    out(all(x == "250" for x in codes[:mx]) and codes[mx] in ("452", "552"),
        f"recipient {mx + 1} over max_recipients={mx} gets 452 (RFC 5321 4.5.3.1.10)",
        f"{codes[:mx].count('250')} of {mx} got 250; extra one: {codes[mx]}")


def outsider(host, port, src):
    try:
        c = C(host, port, src=src)
    except OSError as e:
        out(False, "outsider can connect at all", repr(e))
        return
    try:
        code, lines = c.reply()
        ok1 = code == "554"
        code2 = "closed"
        try:
            code2, _ = c.cmd("EHLO outside.test")
            code2, _ = c.cmd("MAIL FROM:<x@outside.test>")
            code3, _ = c.cmd("RCPT TO:<victim@example.org>")
            code2 = code2 + "/" + code3
        except (ConnectionError, OSError):
            pass
        out(ok1, f"client {src} outside mynetworks gets 554 at the greeting", lines[-1][:200])
        out(not code2.startswith("250") and "/250" not in code2,
            f"client {src} outside mynetworks cannot start a transaction", f"MAIL/RCPT: {code2}")
    finally:
        c.close()


def flood(host, port, n, other, rcpt):
    n = int(n)
    conns, codes = [], []
    for _ in range(n):
        try:
            c = C(host, port, timeout=5)
            code, _ = c.reply()
            codes.append(code)
            conns.append(c)
        except (OSError, ConnectionError):
            codes.append("err")
    served = codes.count("220")
    busy = sum(1 for x in codes if x in ("421", "err"))
    out(busy > 0 and served < n,
        f"{n} connections from one client: those over the limit are refused",
        f"220: {served}, 421/closed: {busy}")
    # Meanwhile a client from another address gets a message through.
    try:
        c = session(host, port, src=other)
        c.cmd("MAIL FROM:<other@hostile.test>")
        c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("DATA")
        code, lines = c.cmd("Message-ID: <flood-other@hostile.test>\r\nSubject: x\r\n\r\nhi\r\n.")
        c.close()
        out(code == "250", "during the flood another client is served (250)", lines[-1][:200])
    except Exception as e:  # noqa: BLE001
        out(False, "during the flood another client is served (250)", repr(e))
    for c in conns:
        c.close()


def slow(host, port, timeout, rcpt):
    timeout = float(timeout)
    idle = session(host, port)
    t0 = time.time()
    # Another client meanwhile.
    try:
        c = session(host, port)
        c.cmd("MAIL FROM:<slow-other@hostile.test>")
        c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("DATA")
        code, _ = c.cmd("Message-ID: <slow-other@hostile.test>\r\nSubject: x\r\n\r\nhi\r\n.")
        c.close()
        out(code == "250", "while a client idles another is served")
    except Exception as e:  # noqa: BLE001
        out(False, "while a client idles another is served", repr(e))
    idle.s.settimeout(timeout * 3 + 10)
    got = ""
    try:
        while True:
            d = idle.s.recv(4096)
            if not d:
                break
            got += d.decode("latin-1")
    except OSError as e:
        got += f"[{e!r}]"
    dt = time.time() - t0
    out(timeout * 0.8 <= dt <= timeout * 3 + 5,
        f"an idle client is cut off after smtpd_timeout ({timeout:g}s)",
        f"closed after {dt:.1f}s; said: {got.strip()[:200]}")
    # RFC 5321 4.5.3.2.7: the server says why before it closes.
    out("421 4.4.2" in got, "the idle client is told 421 4.4.2 before the close",
        f"said: {got.strip()[:200]}")
    # A client that trickles DATA one byte at a time slower than the timeout.
    c = session(host, port)
    c.cmd("MAIL FROM:<trickle@hostile.test>")
    c.cmd(f"RCPT TO:<{rcpt}>")
    c.cmd("DATA")
    t0 = time.time()
    closed = False
    try:
        c.s.settimeout(2)
        for ch in "Subject: slow\r\n\r\n" * 10:
            c.send(ch)
            time.sleep(timeout * 1.5)
            if time.time() - t0 > timeout * 6:
                break
    except OSError:
        closed = True
    if not closed:
        try:
            d = c.s.recv(4096)   # b"" (closed) or a 421 before the close
            closed = d == b"" or d.startswith(b"421")
        except socket.timeout:
            closed = False     # still open after 6 timeouts of trickling
        except OSError:
            closed = True
    c.close()
    out(closed, "a client slower than smtpd_timeout per byte is cut off",
        f"after {time.time() - t0:.1f}s")


def read_replies(c, want, limit):
    """Reads up to `want` final reply lines, waiting at most `limit`
    seconds in all; returns the list of 3-digit codes."""
    codes = []
    end = time.time() + limit
    try:
        while len(codes) < want:
            left = end - time.time()
            if left <= 0:
                break
            c.s.settimeout(left)
            code, _ = c.reply()
            codes.append(code)
    except (socket.timeout, ConnectionError, OSError):
        pass
    return codes


def burst(host, port, n, rcpt):
    """RFC 2920: a pipelined burst gets all its replies, however many."""
    n = int(n)
    dom = rcpt.split("@", 1)[1]
    for name, payload, want in [
        (f"{n} pipelined NOOPs", "NOOP\r\n" * n + "QUIT\r\n", n + 1),
        (f"MAIL and {n} pipelined RCPTs",
         "MAIL FROM:<burst@hostile.test>\r\n"
         + "".join(f"RCPT TO:<b{i}@{dom}>\r\n" for i in range(n))
         + "RSET\r\nQUIT\r\n", n + 3),
    ]:
        try:
            c = session(host, port)
            # The client reads while it sends (RFC 2920 3.1), so the
            # server may apply back-pressure without a deadlock.
            t = threading.Thread(target=lambda: c.send(payload), daemon=True)
            t.start()
            codes = read_replies(c, want, 60)
            t.join(10)
            c.close()
            out(len(codes) == want and codes[-1] == "221",
                f"{name} in one burst: every reply arrives",
                f"{len(codes)} of {want} replies; last: {codes[-1:]}")
        except Exception as e:  # noqa: BLE001
            out(False, f"{name} in one burst: every reply arrives", repr(e))


def lockout(host, port, outsrc, n, insrc, rcpt):
    n = int(n)
    # An idle mynetworks client, connected before the outsiders: its idle
    # timer started first, so only a deadline of their own can close the
    # outsiders while it is still connected.
    idle = session(host, port, src=insrc)
    outsiders = []
    for _ in range(n):
        try:
            c = C(host, port, src=outsrc, timeout=10)
            c.reply()
            outsiders.append(c)
        except (OSError, ConnectionError):
            pass
    try:
        c = session(host, port, src=insrc)
        c.cmd("MAIL FROM:<inside@hostile.test>")
        c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("DATA")
        code, lines = c.cmd("Message-ID: <lockout-inside@hostile.test>\r\nSubject: x\r\n\r\nhi\r\n.")
        c.close()
        out(code == "250", f"{n} connected outsiders do not lock out a mynetworks client",
            lines[-1][:200])
    except Exception as e:  # noqa: BLE001
        out(False, f"{n} connected outsiders do not lock out a mynetworks client", repr(e))
    # Outsiders are disconnected by their own deadline; the caller's
    # smtpd_timeout is far longer than this bounded wait.
    closed = 0
    for c in outsiders:
        c.s.settimeout(20)
        try:
            while c.s.recv(4096):
                pass
            closed += 1
        except OSError:
            pass
        c.close()
    idle.s.setblocking(False)
    try:
        d = idle.s.recv(4096)  # b"" (closed) or the 421 before a close
        idle_open = d != b"" and not d.startswith(b"421")
    except BlockingIOError:
        idle_open = True       # nothing to read, not closed
    except OSError:
        idle_open = False
    idle.close()
    out(len(outsiders) > 0 and closed == len(outsiders) and idle_open,
        "outsiders are disconnected soon after the 554, before an idle mynetworks client",
        f"{closed} of {len(outsiders)} closed by the server; "
        f"idle client connected before them still open: {idle_open}")


def drip(host, port, rcpt):
    for name, setup in [("command", []),
                        ("content", ["MAIL FROM:<drip@hostile.test>", f"RCPT TO:<{rcpt}>",
                                     "DATA"])]:
        try:
            c = session(host, port)
            for line in setup:
                c.cmd(line)
            got = b""
            end = time.time() + 30
            c.s.settimeout(0.3)
            while time.time() < end:
                try:
                    c.send("x")
                except OSError:
                    break
                try:
                    d = c.s.recv(4096)
                    if not d:
                        break
                    got += d
                except socket.timeout:
                    pass
                except OSError:
                    break
            c.close()
            out(b"421 4.4.2" in got,
                f"a client dripping {name} bytes faster than the idle timer is cut off",
                f"said: {got.decode('latin-1').strip()[:200]}")
        except Exception as e:  # noqa: BLE001
            out(False, f"a client dripping {name} bytes is cut off", repr(e))


def content(host, port, rcpt, body, mail_args=""):
    c = session(host, port)
    c.cmd(f"MAIL FROM:<content@hostile.test>{mail_args}")
    c.cmd(f"RCPT TO:<{rcpt}>")
    code, _ = c.cmd("DATA")
    c.send(body + b".\r\n")
    code, lines = c.reply()
    c.cmd("QUIT")
    c.close()
    return code, lines[-1]


def nul(host, port, rcpt):
    code, line = content(host, port, rcpt,
                         b"Subject: nul\r\n\r\nbefore\x00after\r\n")
    out(code[0] == "5" and line[4:7] == "5.6",
        "content with a NUL octet is refused with 5.6.x", line)


def refusals(host, port, rcpt):
    for name, body in [("bare LF", b"Subject: lf\r\n\r\nbare\nlf\r\n"),
                       ("long line", b"Subject: long\r\n\r\n" + b"y" * 2000 + b"\r\n")]:
        code, line = content(host, port, rcpt, body)
        out(code[0] == "5", f"content with a {name} is refused", line)


def eightbit(host, port, rcpt, msgid):
    code, line = content(host, port, rcpt,
                         f"Message-ID: <{msgid}>\r\nSubject: 8bit\r\n\r\n"
                         "caf\u00e9\r\n".encode("utf-8"))
    out(code == "250", "an 8-bit message without BODY= is accepted", line)
    print("queued " + line.rsplit(" ", 1)[-1], flush=True)


def main():
    check, args = sys.argv[1], sys.argv[2:]
    {"smuggle": smuggle, "longline": longline, "oversize": oversize,
     "toomany": toomany, "outsider": outsider, "flood": flood, "slow": slow,
     "burst": burst, "lockout": lockout, "drip": drip, "nul": nul,
     "refusals": refusals, "eightbit": eightbit}[check](*args)


if __name__ == "__main__":
    main()
