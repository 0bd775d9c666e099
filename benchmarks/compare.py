#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""benchmarks/compare.py - one command under glibc, jemalloc, tcmalloc, mimalloc and slabcache.

Run it through benchmarks/compare.sh (its usage is there).  Each run starts the command once
per allocator, the allocator put in with LD_PRELOAD (glibc: none), in an order that rotates
from run to run, so every allocator sees the same machine load on average; warm-up runs go
first and are not counted.  Per run: wall time (a monotonic clock around spawn and wait4),
user and system CPU time and the peak RSS of the process tree (GNU time's %M: wait4's
rusage, the largest of the process and the children it waited for).  Prints a table of medians with min-max and
the ratios to glibc and to the best peer, writes compare.json and compare.svg.
"""
import argparse
import filecmp
import html
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = {
    "jemalloc": (f"{LIBDIR}/libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": (f"{LIBDIR}/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    "mimalloc": (f"{LIBDIR}/libmimalloc.so.2", "libmimalloc2.0"),
}
ALLOCATORS = ["glibc", "jemalloc", "tcmalloc", "mimalloc", "slabcache"]
TIME = "/usr/bin/time"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UsageError(Exception):
    pass


class Broken(Exception):
    """A library that cannot be preloaded (a sanitizer build, a broken file): no numbers."""


def note(msg):
    print(f"compare.sh: {msg}", file=sys.stderr)


def positive_int(text, what, least=1):
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"{what} needs a whole number, got '{text}'")
    if n < least:
        raise UsageError(f"{what} must be at least {least}, got {n}")
    return n


def parse_args(argv):
    p = argparse.ArgumentParser(prog="compare.sh", add_help=True, allow_abbrev=False,
                                usage="bash benchmarks/compare.sh [--runs N] [--warmup N] "
                                "[--out DIR] [--so PATH] [--allocators a,b] -- CMD ARGS...")
    p.add_argument("--runs", default="5")
    p.add_argument("--warmup", default="1")
    p.add_argument("--out")
    p.add_argument("--so")
    p.add_argument("--allocators", default=",".join(ALLOCATORS))
    if "--" in argv:
        i = argv.index("--")
        opts, cmd = argv[:i], argv[i + 1:]
    else:  # the first argument that is not an option starts the command
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            i += 2 if argv[i] in ("--runs", "--warmup", "--out", "--so", "--allocators") else 1
        opts, cmd = argv[:i], argv[i:]

    def fail(message):
        raise UsageError(message)

    p.error = fail
    a = p.parse_args(opts)
    a.runs = positive_int(a.runs, "--runs")
    a.warmup = positive_int(a.warmup, "--warmup", least=0)
    a.allocators = [x for x in a.allocators.split(",") if x]
    for x in a.allocators:
        if x not in ALLOCATORS:
            raise UsageError(f"--allocators: unknown allocator '{x}' (known: {', '.join(ALLOCATORS)})")
    if not a.allocators:
        raise UsageError("--allocators: none given")
    if not cmd:
        raise UsageError("no command: give it after --, e.g. -- python3 -c 'print(1)'")
    if not shutil.which(cmd[0]):
        raise UsageError(f"command not found: {cmd[0]}")
    if not os.access(TIME, os.X_OK):
        raise UsageError(f"{TIME} is needed for the peak RSS (apt-get install time)")
    a.cmd = cmd
    return a


def slabcache_library(so):
    if so:
        if not os.path.isfile(so):
            raise UsageError(f"--so: no file {so}")
        return os.path.abspath(so)
    bazel = os.environ.get("SLABCACHE_BAZEL", "bazel").split()
    build = subprocess.run(bazel + ["build", "--config=opt", "--noshow_progress",
                                    "//slab:libslabcache.so"], cwd=REPO,
                           capture_output=True, text=True)
    if build.returncode != 0:
        sys.stderr.write(build.stderr)
        note("bazel build --config=opt //slab:libslabcache.so failed (or pass --so PATH)")
        sys.exit(1)
    bin_dir = subprocess.run(bazel + ["info", "--config=opt", "bazel-bin"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(bin_dir, "slab", "libslabcache.so")


def is_static_elf(path):
    """True for an ELF executable without an interpreter: LD_PRELOAD cannot reach it."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return False
        out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "INTERP" not in out


def run_once(cmd, lib, out_path, err_path, usage_path):
    """One run under /usr/bin/time: the command is its child, so the peak RSS that time
    reads from wait4 starts from time's few hundred KiB.  A child spawned from this Python
    process would start from Python's (a vfork child shares its parent's memory until exec,
    and the kernel keeps the larger peak across exec)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    argv = [TIME, "-f", "%M %U %S", "-o", usage_path, "--"] + cmd
    if os.path.exists(usage_path):
        os.remove(usage_path)
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(TIME, argv, env, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    # time writes "Command exited with non-zero status N" first when it did: the figures are
    # on the last line.  No figures: time itself died (the preloaded library broke it).
    try:
        rss, user, sys_ = open(usage_path).read().split("\n")[-2].split()
    except (OSError, IndexError, ValueError):
        raise Broken(f"{TIME} itself failed (wait status {status:#x}) with LD_PRELOAD={lib}; "
                     f"its stderr: {open(err_path, errors='replace').read().strip()[-300:]}")
    return {
        "wall_s": (t1 - t0) / 1e9,
        "user_s": float(user),
        "sys_s": float(sys_),
        "peak_rss_kib": int(rss),
        "exit": os.waitstatus_to_exitcode(status),
    }


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "samples": values}


def ratio(a, b):
    return a / b if b else None


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def write_svg(path, title, subtitle, rows):
    """Two bar charts, wall time and peak RSS: medians with min-max whiskers."""
    width, label_w, bar_w, row_h, top = 900, 80, 250, 26, 70
    panel_h = top + row_h * len(rows) + 40
    height = panel_h + 10
    colours = {"glibc": "#888888", "jemalloc": "#4477aa", "tcmalloc": "#228833",
               "mimalloc": "#ccbb44", "slabcache": "#ee6677"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>',
             f'<text x="10" y="38" fill="#444">{html.escape(subtitle)}</text>']
    panels = [("wall time (s), median and min-max; lower is better", "time_s", 1.0,
               "time_vs_glibc", "{:.3f}"),
              ("peak RSS (MiB), median and min-max; lower is better", "peak_rss_kib", 1 / 1024,
               "rss_vs_glibc", "{:.1f}")]
    for k, (heading, key, scale, vs, form) in enumerate(panels):
        x0 = 10 + k * (width // 2)
        parts.append(f'<text x="{x0}" y="{top - 12}" font-weight="bold">{heading}</text>')
        hi = max(r[key]["max"] * scale for r in rows) or 1.0
        for i, r in enumerate(rows):
            y = top + i * row_h
            s = {q: r[key][q] * scale for q in ("median", "min", "max")}
            w = bar_w * s["median"] / hi
            lo_x, hi_x = x0 + label_w + bar_w * s["min"] / hi, x0 + label_w + bar_w * s["max"] / hi
            parts += [
                f'<text x="{x0}" y="{y + 16}">{html.escape(r["name"])}</text>',
                f'<rect x="{x0 + label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colours.get(r["name"], "#999")}"><title>{html.escape(r["name"])}: '
                f'{s["median"]:.3f} ({s["min"]:.3f}-{s["max"]:.3f})</title></rect>',
                f'<line x1="{lo_x:.1f}" x2="{hi_x:.1f}" y1="{y + row_h / 2}" y2="{y + row_h / 2}" '
                'stroke="black"/>',
                f'<line x1="{lo_x:.1f}" x2="{lo_x:.1f}" y1="{y + 8}" y2="{y + row_h - 8}" stroke="black"/>',
                f'<line x1="{hi_x:.1f}" x2="{hi_x:.1f}" y1="{y + 8}" y2="{y + row_h - 8}" stroke="black"/>',
                f'<text x="{x0 + label_w + bar_w + 8}" y="{y + 16}">{form.format(s["median"])}'
                f'{"" if r.get(vs) is None else f" ({r[vs]:.2f}x)"}</text>',
            ]
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main(argv):
    try:
        a = parse_args(argv)
        out = a.out or None
        libs = {"glibc": None}
        for name, (path, package) in PEERS.items():
            if name in a.allocators:
                if os.path.exists(path):
                    libs[name] = path
                else:
                    note(f"{name} left out: {path} missing (apt-get install {package})")
        if "slabcache" in a.allocators:
            libs["slabcache"] = slabcache_library(a.so)
        if out:
            try:
                os.makedirs(out, exist_ok=True)
            except OSError as e:
                raise UsageError(f"--out: cannot create {out}: {e.strerror}")
    except UsageError as e:
        note(str(e))
        note("usage: bash benchmarks/compare.sh [--runs N] [--warmup N] [--out DIR] [--so PATH] "
             "[--allocators a,b] -- CMD ARGS...")
        return 2
    allocs = [x for x in ALLOCATORS if x in a.allocators and x in libs]
    # Each library must load into a trivial program before anything is measured (a
    # sanitizer build of libslabcache.so, for one, kills every uninstrumented program).
    for name in allocs:
        check = subprocess.run(["/bin/true"], env=dict(os.environ, LD_PRELOAD=libs[name] or ""),
                               capture_output=True, text=True)
        if check.returncode != 0 or "cannot be preloaded" in check.stderr:
            note(f"{name}: LD_PRELOAD={libs[name]} breaks /bin/true (status {check.returncode}): "
                 f"{check.stderr.strip()[-300:]}")
            return 1
    if not out:
        out = tempfile.mkdtemp(prefix="slabcache-compare.")
    exe = shutil.which(a.cmd[0])
    if is_static_elf(exe):
        note(f"warning: {exe} is statically linked; LD_PRELOAD does not reach it, every "
             "column measures its own malloc")

    logs = os.path.join(out, "output")
    os.makedirs(logs, exist_ok=True)
    load_before = open("/proc/loadavg").read().split()[:3]
    results = {x: [] for x in allocs}
    same_output = {x: True for x in allocs}
    total = a.warmup + a.runs
    tty = sys.stderr.isatty()
    for run in range(total):
        k = run % len(allocs)
        for name in allocs[k:] + allocs[:k]:
            if tty:
                print(f"\r[{run + 1}/{total}] {name:10s}", end="", file=sys.stderr, flush=True)
            o = os.path.join(logs, f"{name}.{run}.out")
            e = os.path.join(logs, f"{name}.{run}.err")
            try:
                r = run_once(a.cmd, libs[name], o, e, os.path.join(logs, "rusage"))
            except Broken as err:
                note(f"{name}: {err}")
                return 1
            if run >= a.warmup:
                results[name].append(r)
    if tty:
        print("\r" + " " * 30 + "\r", end="", file=sys.stderr)
    load_after = open("/proc/loadavg").read().split()[:3]

    # Output against glibc's, run by run; keep one run's output per allocator, and the
    # stderr of a failed run.
    failed = False
    for name in allocs:
        for run in range(a.warmup, total):
            o = os.path.join(logs, f"{name}.{run}.out")
            g = os.path.join(logs, f"glibc.{run}.out")
            if "glibc" in allocs and name != "glibc" and not filecmp.cmp(o, g, shallow=False):
                same_output[name] = False
        for i, r in enumerate(results[name]):
            if r["exit"] != 0 and not failed:
                failed = True
                err = open(os.path.join(logs, f"{name}.{a.warmup + i}.err"), errors="replace").read()
                note(f"the command exited with status {r['exit']} under {name}; its stderr ends:")
                sys.stderr.write("".join(err.splitlines(True)[-10:]))
    os.remove(os.path.join(logs, "rusage"))
    for f in os.listdir(logs):
        if int(f.split(".")[1]) != total - 1:
            os.remove(os.path.join(logs, f))

    rows = []
    for name in allocs:
        rs = results[name]
        rows.append({
            "name": name,
            "library": libs[name],
            "time_s": summary([r["wall_s"] for r in rs]),
            "peak_rss_kib": summary([r["peak_rss_kib"] for r in rs]),
            "user_s": statistics.median(r["user_s"] for r in rs),
            "sys_s": statistics.median(r["sys_s"] for r in rs),
            "exit_codes": sorted({r["exit"] for r in rs}),
            "output_same_as_glibc": same_output[name] if "glibc" in allocs else None,
        })
    by = {r["name"]: r for r in rows}
    base = by.get("glibc")
    for r in rows:
        r["time_vs_glibc"] = ratio(r["time_s"]["median"], base["time_s"]["median"]) if base else None
        r["rss_vs_glibc"] = (ratio(r["peak_rss_kib"]["median"], base["peak_rss_kib"]["median"])
                             if base else None)
    peers = [by[p] for p in PEERS if p in by]
    best = {}
    if "slabcache" in by and peers:
        s = by["slabcache"]
        ft = min(peers, key=lambda r: r["time_s"]["median"])
        fr = min(peers, key=lambda r: r["peak_rss_kib"]["median"])
        best = {"time": ratio(s["time_s"]["median"], ft["time_s"]["median"]), "time_peer": ft["name"],
                "rss": ratio(s["peak_rss_kib"]["median"], fr["peak_rss_kib"]["median"]),
                "rss_peer": fr["name"]}

    cmdline = shlex.join(a.cmd)
    print(f"`{cmdline}`: {a.runs} run(s) per allocator after {a.warmup} warm-up, alternating; "
          f"load {' '.join(load_before)} before, {' '.join(load_after)} after "
          f"({os.cpu_count()} CPUs)")
    print()
    head = ["allocator", "time s", "min-max", "vs glibc", "peak RSS MiB", "min-max", "vs glibc",
            "user s", "sys s", "exit", "output"]
    table = [head]
    for r in rows:
        t, m = r["time_s"], r["peak_rss_kib"]
        out_mark = "-" if r["output_same_as_glibc"] is None or r["name"] == "glibc" else (
            "same" if r["output_same_as_glibc"] else "DIFFERS")
        table.append([r["name"], f"{t['median']:.3f}", f"{t['min']:.3f}-{t['max']:.3f}",
                      fmt_ratio(r["time_vs_glibc"]), f"{m['median'] / 1024:.1f}",
                      f"{m['min'] / 1024:.1f}-{m['max'] / 1024:.1f}", fmt_ratio(r["rss_vs_glibc"]),
                      f"{r['user_s']:.3f}", f"{r['sys_s']:.3f}",
                      ",".join(str(c) for c in r["exit_codes"]), out_mark])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for j, row in enumerate(table):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("| " + " | ".join(cells) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    if best:
        print()
        print(f"slabcache against the best peer: time {fmt_ratio(best['time'])} ({best['time_peer']}), "
              f"peak RSS {fmt_ratio(best['rss'])} ({best['rss_peer']})")

    busy = max(float(load_before[0]), float(load_after[0]))
    if busy > (os.cpu_count() or 1):
        print()
        print(f"compare.sh: the machine was busy (load {busy:.1f} on {os.cpu_count()} CPUs): wall "
              "times wait for a CPU; the user and sys columns are steadier; repeat when it is idle")

    doc = {
        "command": a.cmd, "runs": a.runs, "warmup": a.warmup,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "allocators": rows, "slabcache_vs_best_peer": best or None,
    }
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    write_svg(os.path.join(out, "compare.svg"), f"{cmdline[:100]}",
              f"{a.runs} run(s) per allocator, alternating; load {' '.join(load_before)}", rows)
    print()
    print(f"compare.sh: wrote {os.path.join(out, 'compare.json')} and compare.svg "
          "(last run's output of each allocator in output/)")
    if failed:
        note("the command failed in some runs (exit column); its numbers mean little")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
