#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/api/api_doc_test.py - the API reference and the library agree.

    api_doc_test.py LIBSLABCACHE_SO API_MD MAN3 SLAB_H MAX_EMPTY_PROBE

1. Every function libslabcache.so exports (`nm -D --defined-only`, global symbols) has an
   entry in docs/api.md, and every entry names an exported function: both ways, so a new
   export fails here until it is documented, and a documented function that is no longer
   exported fails too.  An entry is a table row whose table has an "errors" column, with
   `name(...)` in its first cell; its errors cell may not be empty.  Each `##` section that
   holds entries also holds an example (a fenced code block).
2. The SYNOPSIS of man page slabcache(3) declares exactly the exported functions.
3. The default of kmem_cache_args.max_empty_slabs is the same in slab.h's comment, in
   api.md, and in the library: MAX_EMPTY_PROBE measures it (empty slabs a cache keeps after
   everything is freed).
Prints every mismatch, then exits 1 if there was one.
"""
import re
import subprocess
import sys

errors = []
C_WORDS = {"void", "int", "char", "unsigned", "const", "struct", "sizeof", "return", "if"}


def error(msg):
    errors.append(msg)
    print("FAIL: " + msg)


def exported(so):
    out = subprocess.run(["nm", "-D", "--defined-only", so], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Upper-case types are global; 'i' is an ifunc, 'u' a unique global.  Lower-case
        # others are local (the version script's `local: *`, TLS of the library itself).
        if len(parts) == 3 and (parts[1].isupper() or parts[1] in "iu"):
            names.add(parts[2])
    return names


def split_row(line):
    # "| a | b `x|y` | c |" -> cells; a "|" inside backticks stays in its cell.
    cells, cur, code = [], "", False
    for ch in line.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
    cells.append(cur.strip())
    return cells


def api_entries(path):
    """{name: section} for every entry, and the checks on rows and sections."""
    entries = {}
    lines = open(path, encoding="utf-8").read().splitlines()
    section, fenced, examples, section_entries = "(top)", False, {}, {}
    header, errors_col = None, None
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = not fenced
            examples[section] = True
            continue
        if fenced:
            continue
        if line.startswith("## "):
            section = line[3:].strip()
            header = None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = split_row(line)
        if header is None:
            header = [c.lower() for c in cells]
            errors_col = header.index("errors") if "errors" in header else None
            continue
        if all(re.fullmatch(r":?-+:?", c) for c in cells) or errors_col is None:
            continue
        names = re.findall(r"`([a-z_][a-z0-9_]*)\(", cells[0])
        if not names:
            continue
        if errors_col >= len(cells) or not cells[errors_col]:
            error(f"{path}:{i}: {', '.join(names)}: the errors cell is empty "
                  "(write 'none' when it cannot fail)")
        for name in names:
            if name in entries:
                error(f"{path}:{i}: {name} has two entries")
            entries[name] = section
            section_entries.setdefault(section, []).append(name)
    for section, names in section_entries.items():
        if not examples.get(section):
            error(f"{path}: section '{section}' ({', '.join(names)}) has no example "
                  "(a fenced code block)")
    return entries


def man_synopsis(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^\.SH SYNOPSIS$(.*?)^\.SH ", text, re.S | re.M)
    if not m:
        error(f"{path}: no SYNOPSIS section")
        return set()
    names = set()
    for line in m.group(1).splitlines():
        if line.startswith('.\\"') or "#define" in line:
            continue
        line = re.sub(r"\\f[BIRP]|\\[-&]|\"", "", line)  # font changes, escapes, quotes
        line = re.sub(r"^\.(BI|BR|IR|RB|RI|B|I)\s+", "", line)
        for name in re.findall(r"\b([a-z_][a-z0-9_]*)\s*\(", line):
            if name not in C_WORDS:  # "void (*fn)(...)", "sizeof(...)"
                names.add(name)
    return names


def max_empty_defaults(api_md, slab_h, probe):
    header = re.search(r"max_empty_slabs;.*0 = default \((\d+)\)", open(slab_h).read())
    doc = re.search(r"`max_empty_slabs` \(empty slabs kept, 0 = (\d+)\)", open(api_md).read())
    measured = subprocess.run([probe], check=True, capture_output=True, text=True).stdout.strip()
    if not header:
        error(f"{slab_h}: no 'max_empty_slabs; ... 0 = default (N)' comment")
    if not doc:
        error(f"{api_md}: no '`max_empty_slabs` (empty slabs kept, 0 = N)'")
    if header and doc and not header.group(1) == doc.group(1) == measured:
        error(f"default max_empty_slabs: slab.h says {header.group(1)}, api.md "
              f"{doc.group(1)}, the library keeps {measured}")
    return measured


def main(argv):
    if len(argv) != 6:
        print(__doc__)
        return 2
    so, api_md, man3, slab_h, probe = argv[1:]
    exports = exported(so)
    if not exports:
        error(f"{so} exports nothing")
    entries = api_entries(api_md)
    for name in sorted(exports - entries.keys()):
        error(f"{name} is exported by libslabcache.so but has no entry in docs/api.md")
    for name in sorted(entries.keys() - exports):
        error(f"{name} has an entry in docs/api.md ({entries[name]}) but libslabcache.so "
              "does not export it")
    synopsis = man_synopsis(man3)
    for name in sorted(exports - synopsis):
        error(f"{name} is exported but missing from the SYNOPSIS of {man3}")
    for name in sorted(synopsis - exports):
        error(f"{name} is in the SYNOPSIS of {man3} but libslabcache.so does not export it")
    default = max_empty_defaults(api_md, slab_h, probe)
    if errors:
        print(f"{len(errors)} problem(s)")
        return 1
    print(f"PASS: {len(exports)} exported functions, each with an entry in docs/api.md and "
          f"in slabcache(3); default max_empty_slabs {default}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
