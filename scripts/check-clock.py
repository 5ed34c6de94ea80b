#!/usr/bin/env python3
"""Fail on a reading of the system's clocks outside relay/base/relay_clock.c.

STYLE.md sections 1 and 11: one clock, passed in. Every layer reads time
from the struct relay_clock its context carries (relay_clock.h), so a test
can drive time with a manual clock; only relay/base/relay_clock.c reads the
system's clocks, and the pure modules smtp/ and tlsa/ read none at all.

A reading is a call of clock_gettime, gettimeofday, time, clock,
timespec_get, ftime, uv_hrtime or uv_now in a C file or header of smtp/,
tlsa/ or relay/ (comments and string literals are skipped). Two files keep
uv_now(), see ALLOWED. Prints FILE:LINE: why for each and exits 1; exits 0
with one "ok" line otherwise.

Usage: check-clock.py [ROOT]   (ROOT: top of the tree, default: ..)
"""
import os
import re
import sys

FOLDERS = ('smtp', 'tlsa', 'relay')
CLOCK_FILE = 'relay/base/relay_clock.c'
READS = re.compile(r'(?<![A-Za-z0-9_.>])(clock_gettime|gettimeofday|time|clock|'
                   r'timespec_get|ftime|uv_hrtime|uv_now)\s*\(')
# file -> {function: why it may stay}
ALLOWED = {
    # Their deadlines are bases for their own uv timers, which libuv runs
    # on the loop's cached monotonic time; reading the same time keeps a
    # timer and its deadline check in agreement. Callers pass durations.
    'relay/net/relay_conn.c': {'uv_now': 'connection deadline, on its uv timer'},
    'relay/dns/relay_dns.c': {'uv_now': 'query deadlines, on its uv timer'},
}
COMMENT_OR_STRING = re.compile(
    r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def blank(m):
    """Keeps the newlines of a comment or literal, so line numbers hold."""
    return re.sub(r'[^\n]', ' ', m.group(0))


def sources(root):
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(('.c', '.h')):
                    path = os.path.join(dirpath, name)
                    yield os.path.relpath(path, root).replace(os.sep, '/'), path


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
    errors = []
    nfiles = 0
    for rel, path in sources(root):
        nfiles += 1
        if rel == CLOCK_FILE:
            continue
        with open(path, encoding='utf-8', errors='replace') as f:
            text = COMMENT_OR_STRING.sub(blank, f.read())
        for n, line in enumerate(text.split('\n'), 1):
            for m in READS.finditer(line):
                fn = m.group(1)
                if fn in ALLOWED.get(rel, {}):
                    continue
                errors.append(f'{rel}:{n}: {fn}() reads the clock: take it from the '
                              f'context (struct relay_clock, relay_clock.h)')
    if errors:
        print('clock read outside relay/base/relay_clock.c (STYLE.md sections 1, 11):',
              file=sys.stderr)
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    print(f'ok - clock: {nfiles} files, the system clocks read only in {CLOCK_FILE}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
