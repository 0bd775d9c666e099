#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/api/lock_assert_test.py FILE... - every function named *_locked asserts, in debug
builds, that its caller holds its lock: within the first lines of its body it calls an
assertion (heap_assert_locked, buddy_assert_locked, heap_mutex_assert_held, assert, ...) or
another *_locked function that does.  A new *_locked function without one fails here, naming
it.  Arguments: the C sources of heap/, buddy/, slab/ and pool/."""
import re
import sys

DEFINITION = re.compile(
    r"^(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w\s\*]*?\b(\w+_locked)\s*\(([^)]*)\)\s*\n\{",
    re.M)
FIRST_LINES = 6


def main(paths):
    checked, missing = 0, []
    for path in paths:
        if not path.endswith(".c"):
            continue
        text = open(path, encoding="utf-8").read()
        for m in DEFINITION.finditer(text):
            checked += 1
            body = "\n".join(text[m.end():].split("\n")[:FIRST_LINES])
            if not re.search(r"assert|\w+_locked\s*\(", body):
                line = text.count("\n", 0, m.start()) + 1
                missing.append(f"{path}:{line}: {m.group(1)} asserts no lock")
    for msg in missing:
        print("FAIL:", msg)
    if checked < 50:
        print(f"FAIL: only {checked} *_locked functions found: wrong arguments?")
        return 1
    if missing:
        return 1
    print(f"PASS: {checked} *_locked functions, each asserts its lock")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
