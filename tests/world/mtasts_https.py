#!/usr/bin/env python3
"""HTTPS server for the test world's MTA-STS policy hosts (RFC 8461 3.3).

Usage: mtasts_https.py ADDR PORT CERT KEY DIR

Serves GET /.well-known/mta-sts.txt for any host name HOST (from the Host
header) as DIR/HOST.txt with 200 and Content-Type text/plain; a missing file
is a 404. Tests change a policy (or remove it) by editing DIR while the
server runs. One certificate (from the world's test CA) names every
mta-sts.* host. Loopback only; requests are logged to stderr.
"""
import http.server
import os
import re
import ssl
import sys

HOST_RE = re.compile(r"^[a-z0-9.-]{1,253}$")


def main():
    addr, port, cert, key, root = sys.argv[1:6]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            path = os.path.join(root, host + ".txt")
            if (self.path != "/.well-known/mta-sts.txt"
                    or not HOST_RE.match(host) or not os.path.isfile(path)):
                self.send_error(404)
                return
            with open(path, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer((addr, int(port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
