#!/usr/bin/env python3
"""Sum test cases over every suite and print the closing line.

Inputs are meson testlog.json files and plain TAP files. A test program that
prints TAP ("ok N" / "not ok N") counts one case per line; one that prints no
TAP counts as a single case decided by its result. A program that failed
(non-zero exit, crash, sanitizer report, timeout) without a "not ok" line adds
one failure, so a crash after the last case is never lost.
"""
import json
import re
import sys

TAP = re.compile(r'^(not ok|ok)\b(.*)$')


def tap_counts(text):
    p = f = s = 0
    for line in text.splitlines():
        m = TAP.match(line)
        if not m:
            continue
        if re.search(r'#\s*skip', m.group(2), re.I):
            s += 1
        elif m.group(1) == 'ok':
            p += 1
        else:
            f += 1
    return p, f, s


def main(paths):
    passed = failed = skipped = 0
    failures = []
    for path in paths:
        try:
            fh = open(path, encoding='utf-8', errors='replace')
        except OSError as e:
            print(f'summary: {path}: {e.strerror}', file=sys.stderr)
            failed += 1
            failures.append(path)
            continue
        with fh:
            if path.endswith('.json'):
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    t = json.loads(line)
                    p, f, s = tap_counts(t.get('stdout') or '')
                    result = t.get('result')
                    if result == 'SKIP':
                        skipped += max(1, s)
                        continue
                    if p + f + s == 0:
                        if result == 'OK':
                            p = 1
                        else:
                            f = 1
                    elif result not in ('OK', 'EXPECTEDFAIL') and f == 0:
                        f = 1
                    passed, failed, skipped = passed + p, failed + f, skipped + s
                    if f:
                        failures.append(f"{path.split('/')[0]}: {t.get('name')}")
            else:
                p, f, s = tap_counts(fh.read())
                passed, failed, skipped = passed + p, failed + f, skipped + s
                if f:
                    failures.append(path)
    for name in failures:
        print(f'FAILED: {name}')
    line = f'{passed} passed, {failed} failed'
    if skipped:
        line += f', {skipped} skipped'
    print(line)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
