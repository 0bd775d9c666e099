#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/api/options_doc_test.py - the documentation of the environment and the option table
(heap/options.h) agree.

    options_doc_test.py OPTIONS_DOC API_MD MAN7 DOC... -- HEADER...

1. docs/api.md holds, between its "<!-- BEGIN options" and "<!-- END options -->" lines,
   exactly what `OPTIONS_DOC --markdown` prints (the table is generated: a variable added to
   heap/options.h fails here until `bazel run //tools:options_doc -- --update docs/api.md`).
2. Man page slabcache(7) has a .TP entry for every variable of the table, and every .TP
   entry names one: both ways.
3. No document (API_MD, MAN7, each DOC) names a SLABCACHE_* variable that is neither in the
   table, nor a script's variable (`OPTIONS_DOC --script-names`), nor a macro #defined in one
   of the HEADERs (SLABCACHE_VERSION_MAJOR, ...) or a constant of tools/copts.bzl (also
   given as a HEADER): a removed or misspelt variable fails.  Lines that show the report of
   an unknown variable are skipped (their misspelling is the point).
Prints every mismatch, then exits 1 if there was one.
"""
import difflib
import re
import subprocess
import sys

errors = []
NAME = re.compile(r"\bSLABCACHE_[A-Z0-9_]*[A-Z0-9]\b")


def error(msg):
    errors.append(msg)
    print("FAIL: " + msg)


def run(tool, arg):
    return subprocess.run([tool, arg], check=True, capture_output=True, text=True).stdout


def generated_block(path):
    lines = open(path, encoding="utf-8").read().splitlines(keepends=True)
    begin = [i for i, l in enumerate(lines) if l.startswith("<!-- BEGIN options")]
    end = [i for i, l in enumerate(lines) if l.startswith("<!-- END options -->")]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        error(f"{path}: want one '<!-- BEGIN options' line and one '<!-- END options -->' "
              "line after it")
        return None
    return "".join(lines[begin[0]:end[0] + 1])


def man_entries(path):
    """{name: line} of the variable each .TP entry of the man page names."""
    lines = open(path, encoding="utf-8").read().splitlines()
    entries = {}
    for i, line in enumerate(lines[:-1]):
        if line.strip() != ".TP":
            continue
        tag = re.sub(r"\\f[BIRP]|\\[-&e]", "", lines[i + 1])
        m = NAME.search(tag)
        if not m:
            error(f"{path}:{i + 2}: a .TP entry that names no SLABCACHE_* variable: {tag}")
            continue
        entries[m.group(0)] = i + 2
    return entries


def main(argv):
    if len(argv) < 5 or "--" not in argv:
        print(__doc__)
        return 2
    sep = argv.index("--")
    tool, api_md, man7 = argv[1:4]
    docs = [api_md, man7] + argv[4:sep]
    headers = argv[sep + 1:]
    table = run(tool, "--names").split()
    scripts = run(tool, "--script-names").split()
    if len(table) < 10:
        error(f"{tool} --names gave {len(table)} names")

    want = run(tool, "--markdown")
    have = generated_block(api_md)
    if have is not None and have != want:
        error(f"{api_md}: the options table differs from heap/options.h; regenerate it with "
              "`bazel run //tools:options_doc -- --update docs/api.md`:")
        sys.stdout.writelines(difflib.unified_diff(have.splitlines(keepends=True),
                                                   want.splitlines(keepends=True),
                                                   api_md, "generated"))

    entries = man_entries(man7)
    for name in table:
        if name not in entries:
            error(f"{name} is in the option table (heap/options.h) but has no .TP entry in "
                  f"{man7}")
    for name, line in sorted(entries.items()):
        if name not in table:
            error(f"{man7}:{line}: {name} has an entry but is not in the option table "
                  "(heap/options.h)")

    macros = set()
    for h in headers:  # C macros, and the Starlark constants of tools/copts.bzl
        text = open(h).read()
        macros |= set(re.findall(r"#define\s+(SLABCACHE_[A-Z0-9_]+)", text))
        macros |= set(re.findall(r"^(SLABCACHE_[A-Z0-9_]+) =", text, re.M))
        macros |= set(re.findall(r"^\s+(SLABCACHE_[A-Z0-9_]+)\s*(?:=|,)", text, re.M))  # enums
    known = set(table) | set(scripts) | macros
    for doc in docs:
        for i, line in enumerate(open(doc, encoding="utf-8"), 1):
            if "unknown variable" in line:  # the example of a misspelt name
                continue
            for name in NAME.findall(re.sub(r"\\f[BIRP]|\\-", "", line)):
                if name not in known:
                    error(f"{doc}:{i}: {name} is not in the option table (heap/options.h), "
                          "not a script's variable and not a macro of the public headers")
    if errors:
        print(f"{len(errors)} problem(s)")
        return 1
    print(f"PASS: {len(table)} variables, the same in heap/options.h, docs/api.md and "
          f"{man7}; {len(docs)} documents name no other")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
