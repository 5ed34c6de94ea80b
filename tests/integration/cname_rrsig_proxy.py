#!/usr/bin/env python3
"""A DNS proxy on loopback that breaks the RRSIG over a CNAME RRset, and
only in answers to questions of type CNAME.

    cname_rrsig_proxy.py LISTEN_ADDR PORT UPSTREAM_ADDR UPSTREAM_PORT LOG [QNAME...]

Every UDP and TCP query is passed to the upstream server (the test world's
NSD) unchanged. In a reply whose question has qtype CNAME (and, when QNAMEs
are given, whose question name is one of them), the last octet of the
signature of every answer-section RRSIG covering type CNAME is flipped, so a
validating resolver finds that one RRset bogus while the same CNAME, reached
through an A or AAAA question, stays secure. This is the attack RFC 7672
2.1.3 and 2.2.2 (checklist C16, C40) must survive: a bogus first CNAME
must stop delivery to the host, not switch DANE off.

LOG gets one line per reply, "qname qtype corrupted=N". The proxy prints
"ready" on stdout once both sockets are bound, and runs until killed.
"""
import socket
import struct
import sys
import threading

TYPE_CNAME = 5
TYPE_RRSIG = 46


def skip_name(msg, off):
    """Offset just past the (possibly compressed) name at off."""
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def read_name(msg, off):
    """The name at off as lowercase text without the final dot (question
    names are never compressed in a reply's first question)."""
    labels = []
    while msg[off] != 0:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    return ".".join(labels)


def corrupt(reply, qnames):
    """(possibly altered reply, qname, qtype, RRSIGs flipped)."""
    try:
        qdcount, ancount = struct.unpack("!HH", reply[4:8])
        if qdcount != 1:
            return reply, "?", 0, 0
        qname = read_name(reply, 12)
        off = skip_name(reply, 12)
        qtype = struct.unpack("!H", reply[off:off + 2])[0]
        off += 4
        if qtype != TYPE_CNAME or (qnames and qname not in qnames):
            return reply, qname, qtype, 0
        out = bytearray(reply)
        flipped = 0
        for _ in range(ancount):
            off = skip_name(out, off)
            rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", out[off:off + 10])
            off += 10
            if rtype == TYPE_RRSIG and rdlen > 18:
                covered = struct.unpack("!H", out[off:off + 2])[0]
                if covered == TYPE_CNAME:
                    out[off + rdlen - 1] ^= 0x01
                    flipped += 1
            off += rdlen
        return bytes(out), qname, qtype, flipped
    except (IndexError, struct.error):
        return reply, "?", 0, 0


class Proxy:
    def __init__(self, upstream, log, qnames):
        self.upstream = upstream
        self.qnames = qnames
        self.log = open(log, "a", buffering=1)
        self.lock = threading.Lock()

    def note(self, qname, qtype, flipped):
        with self.lock:
            self.log.write(f"{qname} {qtype} corrupted={flipped}\n")

    def relay(self, query, tcp):
        family = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, family) as s:
            s.settimeout(5)
            s.connect(self.upstream)
            if tcp:
                s.sendall(struct.pack("!H", len(query)) + query)
                n = struct.unpack("!H", recv_exact(s, 2))[0]
                reply = recv_exact(s, n)
            else:
                s.send(query)
                reply = s.recv(65535)
        reply, qname, qtype, flipped = corrupt(reply, self.qnames)
        self.note(qname, qtype, flipped)
        return reply

    def serve_udp(self, sock):
        while True:
            query, peer = sock.recvfrom(65535)
            threading.Thread(target=self.udp_one, args=(sock, query, peer),
                             daemon=True).start()

    def udp_one(self, sock, query, peer):
        try:
            sock.sendto(self.relay(query, False), peer)
        except OSError:
            pass  # the resolver retries

    def serve_tcp(self, sock):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=self.tcp_one, args=(conn,), daemon=True).start()

    def tcp_one(self, conn):
        with conn:
            try:
                while True:
                    head = conn.recv(2)
                    if len(head) < 2:
                        return
                    query = recv_exact(conn, struct.unpack("!H", head)[0])
                    reply = self.relay(query, True)
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, ConnectionError):
                return


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("short read")
        buf += chunk
    return buf


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    addr, port, up_addr, up_port, log = sys.argv[1:6]
    qnames = {q.rstrip(".").lower() for q in sys.argv[6:]}
    proxy = Proxy((up_addr, int(up_port)), log, qnames)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((addr, int(port)))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((addr, int(port)))
    tcp.listen(16)
    threading.Thread(target=proxy.serve_udp, args=(udp,), daemon=True).start()
    threading.Thread(target=proxy.serve_tcp, args=(tcp,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
