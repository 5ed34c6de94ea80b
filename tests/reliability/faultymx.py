#!/usr/bin/env python3
"""faultymx: a scriptable, misbehaving SMTP server for danerelay's
reliability suite. Loopback only.

    faultymx.py --conf FILE --state DIR [--cert PEM --key PEM] [--port 25]

FILE has one line per listening address:  ADDR  STEP[,STEP...]
The n-th connection to ADDR plays the n-th STEP; the last STEP repeats for
every later connection. A STEP is "ok" (a correct server: STARTTLS offered
when a certificate was given), "notls" (correct, no STARTTLS), or
STAGE:ACTION, where the fault hits at STAGE and the stages before it behave:

  STAGE   connect banner ehlo starttls tls mail rcpt data body dot quit
  ACTION  a reply code (421, 451, 554, ...): that reply instead of success
          (at banner/ehlo also for HELO; 421 closes the connection)
          stall   : no reply at all; read and discard until the peer leaves
          reset   : TCP RST (SO_LINGER 0) at that point
          close   : clean close (FIN) without a reply
          garbage : (tls only) 220 to STARTTLS, then non-TLS bytes

`body:reset` resets after the first chunk of content; `tls:reset` replies
220 to STARTTLS and then resets instead of the handshake; `tls:stall`
never answers the ClientHello. `STEP*N` repeats a STEP N times.

SIGHUP re-reads FILE: new addresses are bound, dropped ones closed (their
port then refuses connections), changed ones restart their step counter.
After every (re)load DIR/generation holds the number of loads done.

Results, one line each, flushed at once, in DIR/events.log:
  conn ADDR N STEP                     a connection was accepted
  fault ADDR N STAGE ACTION            the fault was played
  accepted ADDR MSGID RCPT[,RCPT...] TIME BODYSHA
                                       250 was sent for the final "."
                                       (TIME: epoch seconds; BODYSHA: first
                                       16 hex of SHA-256 of the body)
  partial ADDR N                       a transaction ended without 250
Accepted messages are also stored as DIR/mail/ADDR/N-K.eml.
"""

import argparse
import hashlib
import asyncio
import os
import re
import signal
import socket
import ssl
import struct
import sys
import time

STAGES = ("connect", "banner", "ehlo", "starttls", "tls", "mail", "rcpt",
          "data", "body", "dot", "quit")


def parse_steps(text):
    steps = []
    for raw in text.split(","):
        raw = raw.strip()
        if not raw:
            continue
        count = 1
        m = re.fullmatch(r"(.*)\*(\d+)", raw)
        if m:
            raw, count = m.group(1), int(m.group(2))
        if raw in ("ok", "notls"):
            step = (raw, None, None)
        else:
            stage, _, action = raw.partition(":")
            if stage not in STAGES or not action:
                raise ValueError(f"bad step {raw!r}")
            if not (action in ("stall", "reset", "close", "garbage")
                    or re.fullmatch(r"[245]\d\d", action)):
                raise ValueError(f"bad action in {raw!r}")
            step = (raw, stage, action)
        steps.extend([step] * count)
    if not steps:
        raise ValueError("no steps")
    return steps


class Fault(Exception):
    pass


class Server:
    def __init__(self, args):
        self.args = args
        self.servers = {}      # addr -> asyncio server
        self.plans = {}        # addr -> (text, steps)
        self.counts = {}       # addr -> connections so far
        self.generation = 0
        os.makedirs(args.state, exist_ok=True)
        self.events = open(os.path.join(args.state, "events.log"), "a",
                           buffering=1)
        self.tls = None
        if args.cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(args.cert, args.key)

    def event(self, *words):
        self.events.write(" ".join(str(w) for w in words) + "\n")
        self.events.flush()

    async def load(self):
        wanted = {}
        with open(self.args.conf) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                addr, text = line.split(None, 1)
                if not addr.startswith("127."):
                    raise SystemExit("faultymx: loopback addresses only")
                wanted[addr] = text.strip()
        for addr in list(self.servers):
            if addr not in wanted:
                srv = self.servers.pop(addr)
                srv.close()
                await srv.wait_closed()
                self.plans.pop(addr, None)
        for addr, text in wanted.items():
            if self.plans.get(addr, (None,))[0] != text:
                self.plans[addr] = (text, parse_steps(text))
                self.counts[addr] = 0
            if addr not in self.servers:
                self.servers[addr] = await asyncio.start_server(
                    lambda r, w, a=addr: self.session(a, r, w),
                    addr, self.args.port, reuse_address=True)
        self.generation += 1
        tmp = os.path.join(self.args.state, "generation.tmp")
        with open(tmp, "w") as f:
            f.write(f"{self.generation}\n")
        os.replace(tmp, os.path.join(self.args.state, "generation"))

    # --- the session ------------------------------------------------------

    async def session(self, addr, reader, writer):
        self.counts[addr] += 1
        n = self.counts[addr]
        steps = self.plans[addr][1]
        name, fstage, faction = steps[min(n, len(steps)) - 1]
        self.event("conn", addr, n, name)
        s = Session(self, addr, n, fstage, faction, reader, writer)
        try:
            await s.run()
        except Fault:
            pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError,
                OSError):
            pass
        finally:
            if s.in_txn:
                self.event("partial", addr, n)
            try:
                writer.transport.abort() if s.aborted else writer.close()
            except Exception:
                pass


class Session:
    def __init__(self, srv, addr, n, stage, action, reader, writer):
        self.srv, self.addr, self.n = srv, addr, n
        self.stage, self.action = stage, action
        self.reader, self.writer = reader, writer
        self.in_txn = False
        self.aborted = False
        self.tls_on = False
        self.nmsg = 0

    async def send(self, text):
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()

    async def line(self):
        data = await asyncio.wait_for(self.reader.readline(), 600)
        if not data:
            raise Fault()
        return data.rstrip(b"\r\n").decode("latin-1")

    def reset(self):
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.aborted = True
        self.writer.transport.abort()
        raise Fault()

    async def stall(self):
        # Say nothing; swallow whatever comes until the peer gives up.
        while await self.reader.read(65536):
            pass
        raise Fault()

    async def fault(self, stage, ok_reply):
        """At STAGE: play the fault if it is this stage's, else ok_reply.
        Returns True when the fault was a reply (the caller decides what
        follows), False when ok_reply was sent."""
        if self.stage != stage:
            if ok_reply is not None:
                await self.send(ok_reply)
            return False
        self.srv.event("fault", self.addr, self.n, stage, self.action)
        if self.action == "stall":
            await self.stall()
        if self.action == "reset":
            self.reset()
        if self.action == "close":
            raise Fault()
        code = self.action
        texts = {"4": "4.3.0 faultymx temporary failure",
                 "5": "5.7.1 faultymx permanent failure",
                 "2": "2.0.0 faultymx"}
        await self.send(f"{code} {texts[code[0]]} at {stage}")
        if code == "421":
            raise Fault()
        return True

    async def run(self):
        if self.stage == "connect":
            await self.fault("connect", None)
        if await self.fault("banner", "220 faultymx.test ESMTP faultymx"):
            # A non-421 banner failure: answer everything with 503/554
            # until QUIT (RFC 5321 3.1).
            while True:
                cmd = await self.line()
                if cmd.upper().startswith("QUIT"):
                    await self.send("221 2.0.0 Bye")
                    return
                await self.send("503 5.5.1 no service")
        rcpts = []
        mail = False
        while True:
            cmd = await self.line()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                if await self.fault("ehlo", None):
                    continue
                if verb == "HELO":
                    await self.send("250 faultymx.test")
                    continue
                ext = ["faultymx.test", "PIPELINING", "SIZE 104857600",
                       "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
                if self.srv.tls and not self.tls_on and self.plan_tls():
                    ext.append("STARTTLS")
                for e in ext[:-1]:
                    await self.send("250-" + e)
                await self.send("250 " + ext[-1])
            elif verb == "STARTTLS":
                if await self.fault("starttls", None):
                    continue
                if self.stage == "tls":
                    self.srv.event("fault", self.addr, self.n, "tls",
                                   self.action)
                    await self.send("220 2.0.0 Ready to start TLS")
                    if self.action == "reset":
                        self.reset()
                    if self.action == "stall":
                        await self.stall()
                    if self.action == "close":
                        raise Fault()
                    if self.action == "garbage":
                        self.writer.write(b"this is not TLS\r\n" * 4)
                        await self.writer.drain()
                        await self.stall()
                    raise Fault()
                await self.send("220 2.0.0 Ready to start TLS")
                await self.writer.start_tls(self.srv.tls)
                self.tls_on = True
                mail, rcpts = False, []
            elif verb == "MAIL":
                if await self.fault("mail", None):
                    continue
                mail, rcpts = True, []
                self.in_txn = True
                await self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                if not mail:
                    await self.send("503 5.5.1 need MAIL")
                    continue
                if await self.fault("rcpt", None):
                    continue
                m = re.search(r"<([^>]*)>", cmd)
                rcpts.append(m.group(1) if m else cmd[8:])
                await self.send("250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    await self.send("554 5.5.1 no valid recipients")
                    continue
                if await self.fault("data", None):
                    continue
                await self.send("354 End data with <CR><LF>.<CR><LF>")
                body = await self.content()
                if await self.fault("dot", None):
                    mail, rcpts, self.in_txn = False, [], False
                    self.srv.event("partial", self.addr, self.n)
                    continue
                self.nmsg += 1
                qid = f"F{self.n}x{self.nmsg}"
                self.store(body, rcpts)
                await self.send(f"250 2.0.0 Ok: queued as {qid}")
                mail, rcpts, self.in_txn = False, [], False
            elif verb == "RSET":
                mail, rcpts = False, []
                await self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                await self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                if await self.fault("quit", None):
                    return
                await self.send("221 2.0.0 Bye")
                return
            else:
                await self.send("502 5.5.2 Error: command not recognized")

    def plan_tls(self):
        steps = self.srv.plans[self.addr][1]
        name = steps[min(self.n, len(steps)) - 1][0]
        return name != "notls"

    async def content(self):
        lines = []
        first = True
        while True:
            data = await asyncio.wait_for(self.reader.readline(), 600)
            if not data:
                raise Fault()
            if first and self.stage == "body":
                first = False
                self.srv.event("fault", self.addr, self.n, "body",
                               self.action)
                if self.action == "reset":
                    self.reset()
                if self.action == "stall":
                    await self.stall()
                raise Fault()
            if data in (b".\r\n", b".\n"):
                return b"".join(lines)
            if data.startswith(b".."):
                data = data[1:]
            lines.append(data)

    def store(self, body, rcpts):
        m = re.search(rb"^Message-ID:\s*<([^>]*)>", body, re.M | re.I)
        msgid = m.group(1).decode("latin-1") if m else "-"
        d = os.path.join(self.srv.args.state, "mail", self.addr)
        if self.srv.args.store:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{self.n}-{self.nmsg}.eml"), "wb") as f:
                f.write(body)
        sep = body.find(b"\r\n\r\n")
        text = body[sep + 4:] if sep >= 0 else b""
        self.srv.event("accepted", self.addr, msgid, ",".join(rcpts),
                       f"{time.time():.6f}",
                       hashlib.sha256(text).hexdigest()[:16])


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--no-store", dest="store", action="store_false")
    args = ap.parse_args()
    srv = Server(args)
    await srv.load()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload_q = asyncio.Queue()
    loop.add_signal_handler(signal.SIGHUP, reload_q.put_nowait, 1)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    async def reloader():
        while True:
            await reload_q.get()
            try:
                await srv.load()
            except Exception as e:  # keep serving the old plan
                print(f"faultymx: reload failed: {e}", file=sys.stderr)

    task = asyncio.create_task(reloader())
    await stop.wait()
    task.cancel()
    for s in srv.servers.values():
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
