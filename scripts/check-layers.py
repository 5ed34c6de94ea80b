#!/usr/bin/env python3
"""Fail on a dependency that points up or sideways between layers.

The table is relay/LAYERS. Every `#include "..."` in a C file or header of a
listed folder must name a header of the same folder or of a layer the
folder reaches through the table, and every library named in the
static_library() dependencies of the folder's meson.build (`<layer>_dep`)
likewise. The table itself must be acyclic and every folder under relay/
that holds C sources must be in it. Prints FILE:LINE: why for each
violation and exits 1; exits 0 with one "ok" line otherwise.

Usage: check-layers.py [ROOT]   (ROOT: top of the tree, default: ..)
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
DEP = re.compile(r'\b([a-z0-9]+)_dep\b')


def read_table(path):
    """Returns (uses: folder -> [folders], generated: set, errors)."""
    uses, generated, errors = {}, set(), []
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].split()
            if not line:
                continue
            if line[0] == 'generated':
                generated.update(line[1:])
                continue
            folder, deps = line[0], [d for d in line[1:] if d != '-']
            if folder in uses:
                errors.append(f'{path}:{n}: {folder} listed twice')
            uses[folder] = deps
    for folder, deps in uses.items():
        for d in deps:
            if d not in uses:
                errors.append(f'{path}: {folder} uses {d}, which has no line')
    return uses, generated, errors


def reachable(uses):
    """folder -> set of folders it may use (itself included); None on a cycle."""
    out, state = {}, {}

    def visit(f):
        if state.get(f) == 'busy':
            return False
        if f in out:
            return True
        state[f] = 'busy'
        acc = {f}
        for d in uses.get(f, []):
            if not visit(d):
                return False
            acc |= out[d]
        out[f] = acc
        state[f] = 'done'
        return True

    for f in uses:
        if not visit(f):
            return None, f
    return out, None


def sources(root, folder):
    base = os.path.join(root, folder)
    for name in sorted(os.listdir(base)):
        if name.endswith(('.c', '.h')) and os.path.isfile(os.path.join(base, name)):
            yield name


def meson_deps(text):
    """The `<x>_dep` names inside static_library(...) dependencies."""
    found = []
    for m in re.finditer(r'static_library\(', text):
        depth, i = 1, m.end()
        while i < len(text) and depth > 0:
            depth += {'(': 1, ')': -1}.get(text[i], 0)
            i += 1
        call = text[m.end():i]
        d = re.search(r'dependencies\s*:\s*(\[[^\]]*\]|\w+)', call)
        if d:
            line = text.count('\n', 0, m.start() + d.start()) + 1
            found += [(line, x) for x in DEP.findall(d.group(1))]
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
    root = os.path.normpath(root)
    table = os.path.join(root, 'relay', 'LAYERS')
    uses, generated, errors = read_table(table)
    allowed, cyclic = reachable(uses)
    if allowed is None:
        print(f'{table}: the table has a cycle through {cyclic}', file=sys.stderr)
        return 1

    # Which folder owns each header name; includes are by bare name.
    owner = {}
    for folder in uses:
        if not os.path.isdir(os.path.join(root, folder)):
            errors.append(f'{table}: {folder} is not a folder')
            continue
        for name in sources(root, folder):
            if name.endswith('.h'):
                if name in owner:
                    errors.append(f'{folder}/{name}: header name also in {owner[name]}')
                owner[name] = folder

    relay_dir = os.path.join(root, 'relay')
    for name in sorted(os.listdir(relay_dir)):
        sub = f'relay/{name}'
        if os.path.isdir(os.path.join(root, sub)) and sub not in uses and \
                any(True for _ in sources(root, sub)):
            errors.append(f'{sub}: C sources in a folder that relay/LAYERS does not list')

    # A meson variable <x>_dep names the layer whose last path part is x.
    by_var = {f.rsplit('/', 1)[-1]: f for f in uses}

    for folder in uses:
        if not os.path.isdir(os.path.join(root, folder)):
            continue
        for name in sources(root, folder):
            path = os.path.join(folder, name)
            with open(os.path.join(root, path), encoding='utf-8') as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    if inc in generated:
                        continue
                    target = owner.get(os.path.basename(inc))
                    if target is None:
                        errors.append(f'{path}:{n}: "{inc}" is in no layer of relay/LAYERS')
                    elif target not in allowed[folder]:
                        errors.append(f'{path}:{n}: "{inc}" is in {target}, '
                                      f'which {folder} may not use (relay/LAYERS)')
        build = os.path.join(root, folder, 'meson.build')
        if os.path.isfile(build):
            with open(build, encoding='utf-8') as f:
                text = f.read()
            for line, var in meson_deps(text):
                target = by_var.get(var)
                if target is not None and target not in allowed[folder]:
                    errors.append(f'{folder}/meson.build:{line}: links {var}_dep ({target}), '
                                  f'which {folder} may not use (relay/LAYERS)')

    if errors:
        print('layer violations (relay/LAYERS, STYLE.md section 11):', file=sys.stderr)
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    print(f'ok - layers: {len(uses)} folders, no include or link against the direction')
    return 0


if __name__ == '__main__':
    sys.exit(main())
