#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/observe/observe_test.py - what a program run with libslabcache.so preloaded shows:
leak reports by reachability over every kind of block, the statistics at exit (text and
JSON, totals first, the pid), the report descriptor (SLABCACHE_LOG with %p, a program that
closes stderr, the leak status only when the report was written), and glibc's
introspection calls (malloc_info's XML, mallinfo2, mallopt, malloc_stats).

    observe_test.py LIBSLABCACHE_SO OBSERVE_PROGRAM

JSON and XML are checked with Python's parsers.  Each check prints what it ran and failed
on; the script exits 1 when one failed.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

LIB, PROG = (os.path.abspath(a) for a in sys.argv[1:3])
failures = []


def run(env, *args):
    full = dict(os.environ)
    for k in list(full):
        if k.startswith("SLABCACHE_"):
            del full[k]
    full.update(env)
    full["LD_PRELOAD"] = LIB
    p = subprocess.run([PROG, *args], env=full, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def check(cond, what, context=""):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}\n{context}")
    return cond


def test_leaks_by_reachability():
    rc, out, err = run({"SLABCACHE_LEAKS": "reachable,exit"}, "leaks")
    ctx = err
    check(rc == 23, f"leaks: status {rc}, want 23", ctx)
    check(out == "hello\n", f"leaks: stdout {out!r}", ctx)
    m = re.search(r"slabcache: leak report \(pid (\d+)\): 10 blocks \(26255568 bytes\) lost: "
                  r"9 definitely \(26255520 bytes\), 1 indirectly \(48 bytes\); (\d+) still "
                  r"reachable \((\d+) bytes\); 0 expected", err)
    check(m, "leaks: the summary line", ctx)
    for line in [
            "definitely lost: 5 blocks (20971520 bytes) of large blocks of 4194304 bytes",
            "definitely lost: 1 blocks (5242880 bytes) of huge blocks of 5242880 bytes",
            "definitely lost: 1 blocks (40960 bytes) of large blocks of 40960 bytes",
            "definitely lost: 1 blocks (112 bytes) of cache kmalloc-112 (112 bytes each)",
            "definitely lost: 1 blocks (48 bytes) of cache kmalloc-48 (48 bytes each)",
            "indirectly lost: 1 blocks (48 bytes) of cache kmalloc-48 (48 bytes each)",
            "still reachable: 2 blocks (96 bytes) of cache kmalloc-48 (48 bytes each)",
            # stdout's buffer, reachable from libc's data
            "still reachable: 1 blocks (4096 bytes) of cache kmalloc-4096"]:
        check(line in err, f"leaks: no line '{line}'", ctx)
    # By default reachable blocks are counted, not listed; the status stays.
    rc, out, err = run({"SLABCACHE_LEAKS": "exit"}, "leaks")
    check(rc == 23 and "still reachable:" not in err and ", not listed;" in err,
          f"leaks, default kinds: status {rc}", err)
    # The listing: every block with its state.
    rc, out, err = run({"SLABCACHE_LEAKS": "all"}, "leaks")
    check(rc == 0 and re.search(r"live blocks \(pid \d+\): \d+", err) and
          re.search(r"  0x[0-9a-f]+ 5242880 bytes, definitely lost, huge blocks", err),
          f"leaks, listing: status {rc}", err)


def test_printf_is_not_a_leak():
    # malloc; free; printf: stdout's buffer is reachable, so nothing is reported.
    rc, out, err = run({"SLABCACHE_LEAKS": "exit"}, "printf")
    check(rc == 0 and out == "hello\n" and err == "", f"printf: status {rc}, stderr {err!r}")


def test_closed_stderr_still_gets_reports():
    rc, out, err = run({"SLABCACHE_LEAKS": "exit", "SLABCACHE_STATS": "1"}, "close-stderr")
    check(rc == 23, f"close-stderr: status {rc}, want 23", err)
    check("lost: 1 definitely (112 bytes)" in err, "close-stderr: no leak report", err)
    check("statistics of observe_program at exit" in err, "close-stderr: no statistics", err)
    # Unwritten report, unchanged status: the log cannot be written (ENOSPC).
    rc, out, err = run({"SLABCACHE_LEAKS": "exit", "SLABCACHE_LOG": "/dev/full"},
                       "close-stderr")
    check(rc == 0, f"log on /dev/full: status {rc}, want 0 (the report was not written)", err)


def test_log_per_process():
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = run({"SLABCACHE_STATS": "1", "SLABCACHE_LOG": d + "/log.%p"}, "fork")
        check(rc == 0 and err == "", f"fork: status {rc}, stderr {err!r}")
        files = sorted(os.listdir(d))
        check(len(files) == 2, f"fork: log files {files}, want one per process")
        for name in files:
            text = open(os.path.join(d, name)).read()
            pid = name.split(".")[-1]
            check(f"slabcache: [{pid}] statistics of observe_program at exit" in text,
                  f"fork: {name} does not hold the statistics of pid {pid}", text)


def test_stats_json():
    rc, out, err = run({"SLABCACHE_STATS": "json"}, "leaks")
    try:
        doc = json.loads(err)
    except ValueError as e:
        check(False, f"stats json: not JSON ({e})", err)
        return
    check(list(doc)[:3] == ["pid", "program", "totals"], f"stats json: keys {list(doc)}")
    check(doc["program"] == "observe_program", "stats json: program")
    t = doc["totals"]
    rows = doc["classes"]
    kinds = {r["kind"] for r in rows}
    check(kinds == {"cache", "large", "huge"}, f"stats json: kinds {kinds}")
    check(sum(r["bytes_in_use"] for r in rows) == t["in_use_bytes"],
          "stats json: rows' bytes in use do not add up to the total", err)
    check(t["heap_bytes"] == t["sbrk_bytes"] + t["mmap_bytes"], "stats json: heap bytes", err)
    check(t["in_use_bytes"] + t["cached_bytes"] + t["slab_free_bytes"] + t["free_bytes"] ==
          t["heap_bytes"], "stats json: totals do not add up to the heap", err)
    huge = [r for r in rows if r["kind"] == "huge"]
    check(huge and huge[0]["blocks_in_use"] == 1 and huge[0]["bytes_in_use"] == 5 << 20,
          "stats json: the huge block", err)
    large4m = [r for r in rows if r["name"] == "large-4M"]
    check(large4m and large4m[0]["blocks_in_use"] == 5, "stats json: five 4 MiB blocks", err)
    # Off means off; a malformed value says so.
    for value in ("0", "no", "false", "off"):
        rc, out, err = run({"SLABCACHE_STATS": value}, "printf")
        check(err == "", f"SLABCACHE_STATS={value} printed {err!r}")
    # Verbosity 4 at exit: the counters, the heap map and every live block, each line tagged.
    rc, out, err = run({"SLABCACHE_STATS": "4"}, "printf")
    for part in ("] buddyinfo: Node 0", "] slabcache heap map (pages of 4 KiB",
                 "] live blocks:", " bytes, cache kmalloc-4096 (4096 bytes each)"):
        check(part in err, f"SLABCACHE_STATS=4: no '{part}'", err[:3000])
    check(all(line.startswith("slabcache: [") for line in err.splitlines()),
          "SLABCACHE_STATS=4: a line without the tag", err[:3000])
    rc, out, err = run({"SLABCACHE_STATS": "maybe"}, "printf")
    check("slabcache: SLABCACHE_STATS=maybe: expected one of off, on, 2, 3, 4, json" in err, f"malformed: {err!r}")


def test_glibc_introspection():
    rc, out, err = run({}, "introspect")
    check(rc == 0, f"introspect: status {rc}", err)
    xml_text = out[:out.index("</malloc>") + len("</malloc>")]
    root = ET.fromstring(xml_text)
    check(root.tag == "malloc" and root.get("version") == "1", "malloc_info: <malloc>")
    heaps = root.findall("heap")
    check(len(heaps) == 1 and heaps[0].get("nr") == "0", "malloc_info: one <heap nr=0>")
    sizes = heaps[0].find("sizes")
    check(sizes is not None and len(sizes.findall("size")) > 3, "malloc_info: <sizes>")
    for s in sizes.findall("size"):
        vals = [int(s.get(a)) for a in ("from", "to", "total", "count")]
        check(vals[0] <= vals[1] and vals[3] > 0 and vals[2] >= vals[3] * vals[0],
              f"malloc_info: <size {s.attrib}>")
    totals = {t.get("type"): t for t in root.findall("total")}
    check(set(totals) == {"fast", "rest", "mmap"}, f"malloc_info: totals {set(totals)}")
    check(totals["mmap"].get("count") == "1" and int(totals["mmap"].get("size")) >= 6 << 20,
          "malloc_info: the 6 MiB mapping")
    for kind, node in (("system", root), ("aspace", root)):
        check({e.get("type") for e in node.findall(kind)} ==
              ({"current", "max"} if kind == "system" else {"total", "mprotect"}),
              f"malloc_info: <{kind}>")
    m = dict(kv.split("=") for kv in re.search(r"mallinfo2 (.*)", out).group(1).split())
    m = {k: int(v) for k, v in m.items()}
    check(m["hblks"] == 1 and m["hblkhd"] >= 6 << 20, f"mallinfo2: {m}")
    check(m["arena"] == m["uordblks"] + m["fordblks"] and m["uordblks"] >= 131072,
          f"mallinfo2: {m}")
    check("mallopt M_ARENA_MAX=1 M_TRIM_THRESHOLD=1 M_CHECK_ACTION=1 bad=0 malloc_info(1)=-1"
          in out, "mallopt answers", out)
    check(re.search(r"^Arena 0:\nsystem bytes     = +\d+\nin use bytes     = +\d+\n"
                    r"Total \(incl. mmap\):\nsystem bytes     = +\d+\nin use bytes     = +\d+\n"
                    r"max mmap regions = +1\nmax mmap bytes   = +\d+\n", err, re.M),
          "malloc_stats: glibc's text", err)
    check(re.search(r"malloc_trim=[01]", out), "malloc_trim", out)


for test in [test_leaks_by_reachability, test_printf_is_not_a_leak,
             test_closed_stderr_still_gets_reports, test_log_per_process, test_stats_json,
             test_glibc_introspection]:
    print(f"== {test.__name__}")
    try:
        test()
    except Exception as e:  # a failed expectation that broke the rest of this test
        check(False, f"{test.__name__}: {type(e).__name__}: {e}")
print(f"{len(failures)} failed" if failures else "PASS")
sys.exit(1 if failures else 0)
