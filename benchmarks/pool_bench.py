#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""benchmarks/pool_bench.py - the pool benchmarks of docs/pools.md, measured in one run.

    pool_bench.py BINARYTREES GCBENCH [--quick] [--reps N] [--depths 16,17,...]
                  [--only binarytrees|gcbench] [--variants NAME,...] [--json PATH]

binary-trees (depths 16-21; --quick: 16 and 18): kmem_pool (a pool per tree, destroy-all),
APR (a child pool per tree; and apr-clear, one pool cleared per tree, the fastest C entry's
way), talloc (a context per tree), malloc/free of glibc, jemalloc, tcmalloc and mimalloc (the
peers preloaded with LD_PRELOAD), kmem_cache (a cache of nodes, freed node by node).
GCBench: Boehm GC, kmem_pool-sync (KMEM_POOL_NO_THREAD, collections at the mutator's safe
points), kmem_pool (the housekeeping thread collects), malloc (glibc, explicit frees); then
the same with --pauses for the mutator's stalls.

Every rep runs every variant once, forward on even reps and backward on odd ones; each run is
its own process (peak RSS is the process's).  Reported: median and min-max of the reps, the
ratio of medians to APR (binary-trees) or to Boehm (GCBench), and the load (uptime) before and
after.  Markdown on stdout.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

PEERS = {
    "glibc": None,
    "jemalloc": "libjemalloc.so.2",
    "tcmalloc": "libtcmalloc_minimal.so.4",
    "mimalloc": "libmimalloc.so.2",
}


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(cmd, preload=None):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout.split()


def med(v):
    return statistics.median(v)


def fmt_range(v, scale=1.0, digits=3):
    return (f"{med(v) * scale:.{digits}f} ({min(v) * scale:.{digits}f}-"
            f"{max(v) * scale:.{digits}f})")


def binarytrees(exe, depths, reps, results, only):
    variants = [("kmem_pool", "kmem_pool", None), ("apr", "apr", None),
                ("apr-clear", "apr-clear", None), ("talloc", "talloc", None)]
    variants += [(f"malloc ({p})", "malloc", lib) for p, lib in PEERS.items()]
    variants += [("kmem_cache", "kmem_cache", None)]
    if only:
        variants = [v for v in variants if v[0] in only]
    for depth in depths:
        times = {name: [] for name, _, _ in variants}
        cpu = {name: [] for name, _, _ in variants}
        rss = {name: [] for name, _, _ in variants}
        checks = set()
        for rep in range(reps):
            order = variants if rep % 2 == 0 else list(reversed(variants))
            for name, arg, lib in order:
                f = run([exe, arg, str(depth)], lib)
                times[name].append(float(f[2]))
                rss[name].append(int(f[3]))
                checks.add(f[4])
                cpu[name].append(float(f[5]))
            print(f"binary-trees depth {depth}: rep {rep + 1}/{reps} (load {load()})",
                  file=sys.stderr)
        if len(checks) != 1:
            raise RuntimeError(f"checksums differ at depth {depth}: {checks}")
        results["binarytrees"][depth] = {"time": times, "cpu": cpu, "rss": rss}


def gcbench(exe, reps, results):
    variants = ["boehm", "kmem_pool-sync", "kmem_pool", "malloc"]
    times = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    rss = {v: [] for v in variants}
    gcmax = {v: [] for v in variants}
    gctotal = {v: [] for v in variants}
    ncoll = {v: [] for v in variants}
    stalls = {v: [] for v in variants}
    p99 = {v: [] for v in variants}
    longest = {v: [] for v in variants}
    for rep in range(reps):
        order = variants if rep % 2 == 0 else list(reversed(variants))
        for v in order:
            f = run([exe, v])
            times[v].append(float(f[1]))
            rss[v].append(int(f[2]))
            ncoll[v].append(int(f[3]))
            gcmax[v].append(float(f[4]))
            gctotal[v].append(float(f[5]))
            cpu[v].append(float(f[7]))
        for v in order:
            f = run([exe, v, "--pauses"])
            stalls[v].append(int(f[9]))
            p99[v].append(float(f[11]))
            longest[v].append(float(f[13]))
        print(f"gcbench: rep {rep + 1}/{reps} (load {load()})", file=sys.stderr)
    results["gcbench"] = {"time": times, "cpu": cpu, "rss": rss, "collections": ncoll, "gc_max_ms": gcmax,
                          "gc_total_ms": gctotal, "stalls": stalls, "stall_p99_us": p99,
                          "longest_call_us": longest}


def report(results):
    bt = results["binarytrees"]
    if bt:
        names = list(next(iter(bt.values()))["time"].keys())
        for key, what in (("time", "wall seconds"), ("cpu", "CPU seconds (user + system)")):
            print(f"### binary-trees: {what}, median (min-max), and the ratio of medians to "
                  "APR\n")
            print("| variant | " + " | ".join(f"depth {d}" for d in bt) + " |")
            print("|---|" + "---:|" * len(bt))
            for n in names:
                cells = []
                for d, r in bt.items():
                    t = r[key][n]
                    ratio = f" ({med(t) / med(r[key]['apr']):.2f}x)" if "apr" in r[key] else ""
                    cells.append(f"{fmt_range(t)}{ratio}")
                print(f"| {n} | " + " | ".join(cells) + " |")
            print()
        print("Peak RSS (MiB, median):\n")
        print("| variant | " + " | ".join(f"depth {d}" for d in bt) + " |")
        print("|---|" + "---:|" * len(bt))
        for n in names:
            print(f"| {n} | " + " | ".join(f"{med(r['rss'][n]) / 1024:.1f}" for r in bt.values())
                  + " |")
        print()
    gc = results.get("gcbench")
    if gc:
        print("### GCBench: median (min-max) of the reps\n")
        print("| collector | wall s | vs Boehm | CPU s | vs Boehm | peak RSS MiB | collections "
              "| longest collection ms | collections total ms | mutator stalls >= 10 us | "
              "stall p99 us | longest allocation us |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for v in gc["time"]:
            t, c = gc["time"][v], gc["cpu"][v]
            print(f"| {v} | {fmt_range(t)} | {med(t) / med(gc['time']['boehm']):.2f}x | "
                  f"{fmt_range(c)} | {med(c) / med(gc['cpu']['boehm']):.2f}x | "
                  f"{fmt_range(gc['rss'][v], 1 / 1024, 1)} | {med(gc['collections'][v]):.0f} | "
                  f"{fmt_range(gc['gc_max_ms'][v], 1, 1)} | {med(gc['gc_total_ms'][v]):.0f} | "
                  f"{med(gc['stalls'][v]):.0f} | {fmt_range(gc['stall_p99_us'][v], 1, 0)} | "
                  f"{fmt_range(gc['longest_call_us'][v], 1, 0)} |")
        print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binarytrees")
    ap.add_argument("gcbench")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--depths", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--variants", default="", help="binary-trees variants to run (names as "
                    "in the table, comma-separated); default all")
    a = ap.parse_args()
    reps = a.reps or (3 if a.quick else 5)
    depths = [int(d) for d in a.depths.split(",")] if a.depths else (
        [16, 18] if a.quick else [16, 17, 18, 19, 20, 21])
    results = {"binarytrees": {}, "load_before": load()}
    print(f"Load before: {results['load_before']} ({os.cpu_count()} CPUs); reps {reps}\n")
    if a.only in ("", "binarytrees"):
        only = set(v.strip() for v in a.variants.split(",")) if a.variants else set()
        binarytrees(a.binarytrees, depths, reps, results, only)
    if a.only in ("", "gcbench"):
        gcbench(a.gcbench, reps, results)
    results["load_after"] = load()
    report(results)
    print(f"Load after: {results['load_after']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
