#!/usr/bin/env python3
"""notify_listen.py SOCKET OUT: the service manager's side of sd_notify.

Binds the datagram socket SOCKET (what systemd passes a Type=notify service
in $NOTIFY_SOCKET), lets any user send to it, and appends each message it
receives to OUT, one assignment (READY=1, STATUS=...) per line, flushed at
once so that a test can wait for a line. Runs until killed.
"""
import os
import socket
import sys


def main(sock_path, out_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    # The service runs as its own user (User= in the unit).
    os.chmod(sock_path, 0o666)
    with open(out_path, 'a', encoding='utf-8') as out:
        while True:
            msg = sock.recv(4096).decode('utf-8', 'replace')
            for line in msg.split('\n'):
                if line:
                    out.write(line + '\n')
            out.flush()


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: notify_listen.py SOCKET OUT')
    main(sys.argv[1], sys.argv[2])
