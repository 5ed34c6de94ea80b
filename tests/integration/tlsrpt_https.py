#!/usr/bin/env python3
"""A small HTTPS receiver of TLS reports (RFC 8460 5.2) for the world tests.

usage: tlsrpt_https.py ADDR PORT CERT KEY OUTDIR

Every POST is answered 200 and kept as OUTDIR/N.body (the raw request
body) and OUTDIR/N.meta ("path", "content-type" lines). It runs until it is
killed. Loopback only: the world's addresses.
"""
import http.server
import os
import ssl
import sys

addr, port, cert, key, outdir = sys.argv[1:6]
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        count += 1
        with open(os.path.join(outdir, f"{count}.body"), "wb") as f:
            f.write(body)
        with open(os.path.join(outdir, f"{count}.meta.tmp"), "w") as f:
            f.write(f"path {self.path}\n")
            f.write(f"content-type {self.headers.get('Content-Type', '')}\n")
        os.rename(os.path.join(outdir, f"{count}.meta.tmp"),
                  os.path.join(outdir, f"{count}.meta"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("tlsrpt_https: " + (fmt % args) + "\n")


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.HTTPServer((addr, int(port)), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
