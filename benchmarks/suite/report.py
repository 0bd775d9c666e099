#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""benchmarks/suite/report.py - tables, JSON and a plot from benchmarks/suite.sh's raw runs.

    python3 report.py DIR

Reads DIR/raw.tsv (one line per run) and DIR/meta.json (machine, command, workloads,
allocators), writes DIR/suite.md, DIR/suite.json and DIR/suite.svg, and prints suite.md.

Per workload and allocator: the median wall time over the rounds with its min-max, the
median CPU time (user + sys: less sensitive to other jobs on a loaded machine, blind to
time spent asleep on a lock), the median peak RSS.  "best peer" is the fastest (or
smallest) of jemalloc, tcmalloc and mimalloc in the same run; glibc is reported on its own.
A run that failed is "FAIL"; a check line that differs from glibc's is marked "!".
"""
import json
import math
import os
import statistics
import sys

PEERS = ("jemalloc", "tcmalloc", "mimalloc")
FIELDS = ("round", "workload", "allocator", "status", "wall", "user", "sys", "rss_kib",
          "minflt", "majflt", "vcs", "ivcs", "load", "internal", "check")


def load(d):
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    runs = []
    with open(os.path.join(d, "raw.tsv")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (len(FIELDS) - len(parts))
            r = dict(zip(FIELDS, parts))
            for k in ("wall", "user", "sys", "load", "internal"):
                r[k] = float(r[k]) if r[k] else None
            for k in ("rss_kib", "minflt", "majflt", "vcs", "ivcs", "round"):
                r[k] = int(float(r[k])) if r[k] else None
            runs.append(r)
    return meta, runs


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def fmt_s(x):
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def summarise(meta, runs):
    allocs = meta["allocators"]
    cells = {}
    for w in meta["workloads"]:
        name = w["name"]
        ref = None
        for r in runs:
            if r["workload"] == name and r["allocator"] == "glibc" and r["status"] == "ok":
                ref = r["check"]
                break
        for a in allocs:
            rs = [r for r in runs if r["workload"] == name and r["allocator"] == a]
            ok = [r for r in rs if r["status"] == "ok"]
            c = {"runs": len(rs), "ok": len(ok), "failed": len(rs) - len(ok)}
            if ok:
                walls = [r["wall"] for r in ok]
                c.update(
                    wall=med(walls), wall_min=min(walls), wall_max=max(walls),
                    cpu=med([r["user"] + r["sys"] for r in ok]),
                    user=med([r["user"] for r in ok]), sys=med([r["sys"] for r in ok]),
                    rss_kib=med([r["rss_kib"] for r in ok]),
                    minflt=med([r["minflt"] for r in ok]),
                    vcs=med([r["vcs"] for r in ok]), ivcs=med([r["ivcs"] for r in ok]),
                    check=ok[0]["check"],
                    check_differs=ref is not None and any(r["check"] != ref for r in ok))
            cells[(name, a)] = c
    return cells


def best_peer(cells, name, key):
    vals = [(cells[(name, p)].get(key), p) for p in PEERS if (name, p) in cells]
    vals = [(v, p) for v, p in vals if v is not None]
    return min(vals) if vals else (None, None)


def ratio(a, b):
    return a / b if a is not None and b else None


def build(meta, runs):
    allocs = meta["allocators"]
    subjects = [a for a in allocs if a != "glibc" and a not in PEERS]
    cells = summarise(meta, runs)
    rows = []
    for w in meta["workloads"]:
        name = w["name"]
        bt, bp = best_peer(cells, name, "wall")
        bc, _ = best_peer(cells, name, "cpu")
        br, _ = best_peer(cells, name, "rss_kib")
        g = cells.get((name, "glibc"), {})
        row = {"workload": name, "pattern": w["pattern"], "threads": w["threads"],
               "best_peer": bp, "best_peer_wall": bt, "glibc_wall": g.get("wall"),
               "allocators": {}}
        for a in allocs:
            c = cells[(name, a)]
            row["allocators"][a] = dict(
                c, wall_vs_best=ratio(c.get("wall"), bt), wall_vs_glibc=ratio(c.get("wall"), g.get("wall")),
                cpu_vs_best=ratio(c.get("cpu"), bc), rss_vs_best=ratio(c.get("rss_kib"), br),
                rss_vs_glibc=ratio(c.get("rss_kib"), g.get("rss_kib")))
        rows.append(row)
    geo = {}
    for a in allocs:
        geo[a] = {k: geomean([r["allocators"][a].get(k) for r in rows])
                  for k in ("wall_vs_best", "wall_vs_glibc", "cpu_vs_best", "rss_vs_best", "rss_vs_glibc")}
    # Each allocator against the fastest allocator of the row (all of them), for the plot.
    for a in allocs:
        rel = []
        for r in rows:
            fastest = min((r["allocators"][b].get("wall") for b in allocs
                           if r["allocators"][b].get("wall") is not None), default=None)
            rel.append(ratio(r["allocators"][a].get("wall"), fastest))
        geo[a]["wall_vs_fastest"] = geomean(rel)
    return {"meta": meta, "subjects": subjects, "rows": rows, "geomean": geo}


def markdown(res):
    meta, rows, geo = res["meta"], res["rows"], res["geomean"]
    allocs = meta["allocators"]
    subjects = res["subjects"]
    out = []
    p = out.append
    p("# Allocator suite")
    p("")
    p(f"Generated by `{meta['command']}` on {meta['date']} ({meta['nproc']} cores, {meta['cpu']},")
    p(f"{meta['kernel']}; {meta['peers']}).  Load average before: {meta['load_before']}, "
      f"after: {meta.get('load_after', '?')}.")
    p(f"{meta['rounds']} round(s), allocators interleaved (one run of each per workload and round, "
      "order rotated every round); N = " + str(meta["n"]) + " threads.")
    p("Wall time in seconds (median, min-max); CPU = user + sys (median); peak RSS from wait4 "
      "(`/usr/bin/time -f %M`).  Best peer = the fastest (or smallest) of jemalloc, tcmalloc "
      "and mimalloc in this run.  \"!\" = output check differs from glibc's; FAIL = the run failed.")
    p("")
    for s in subjects:
        p(f"## {s}: summary")
        p("")
        p("| workload | pattern | best peer | " + s + " | vs best | vs glibc | CPU vs best | "
          "RSS MiB | RSS vs best | RSS vs glibc |")
        p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            c = r["allocators"][s]
            mark = "!" if c.get("check_differs") else ""
            if c.get("wall") is None:
                p(f"| {r['workload']} | {r['pattern']} | - | FAIL | - | - | - | - | - | - |")
                continue
            bp = f"{r['best_peer']} {fmt_s(r['best_peer_wall'])}" if r["best_peer"] else "-"
            p(f"| {r['workload']} | {r['pattern']} | {bp} | {fmt_s(c['wall'])}{mark} | "
              f"{fmt_ratio(c['wall_vs_best'])} | {fmt_ratio(c['wall_vs_glibc'])} | "
              f"{fmt_ratio(c['cpu_vs_best'])} | {c['rss_kib'] / 1024:.1f} | "
              f"{fmt_ratio(c['rss_vs_best'])} | {fmt_ratio(c['rss_vs_glibc'])} |")
        g = geo[s]
        p(f"| **geomean** ({len(rows)} rows) | | | | **{fmt_ratio(g['wall_vs_best'])}** | "
          f"**{fmt_ratio(g['wall_vs_glibc'])}** | **{fmt_ratio(g['cpu_vs_best'])}** | | "
          f"**{fmt_ratio(g['rss_vs_best'])}** | **{fmt_ratio(g['rss_vs_glibc'])}** |")
        p("")
    p("## Every allocator")
    p("")
    p("Geometric mean over the rows of each allocator's wall time relative to the fastest "
      "allocator of the row, and of its peak RSS relative to glibc's:")
    p("")
    p("| allocator | time vs fastest | time vs glibc | RSS vs glibc |")
    p("|---|---:|---:|---:|")
    for a in allocs:
        g = geo[a]
        p(f"| {a} | {fmt_ratio(g['wall_vs_fastest'])} | {fmt_ratio(g['wall_vs_glibc'])} | "
          f"{fmt_ratio(g['rss_vs_glibc'])} |")
    p("")
    p("## Per workload")
    p("")
    for r in rows:
        p(f"### {r['workload']}")
        p("")
        p(f"{r['pattern']}.  `{next(w['command'] for w in meta['workloads'] if w['name'] == r['workload'])}`")
        p("")
        p("| allocator | wall s (min-max) | vs best peer | vs glibc | CPU s | user | sys | "
          "peak RSS MiB | RSS vs best | RSS vs glibc | minor faults | ctx sw (vol/invol) |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for a in allocs:
            c = r["allocators"][a]
            if c.get("wall") is None:
                p(f"| {a} | FAIL ({c['failed']} of {c['runs']}) | | | | | | | | | | |")
                continue
            mark = "!" if c.get("check_differs") else ""
            fail = f" ({c['failed']} failed)" if c["failed"] else ""
            p(f"| {a} | {fmt_s(c['wall'])}{mark} ({fmt_s(c['wall_min'])}-{fmt_s(c['wall_max'])}){fail} | "
              f"{fmt_ratio(c['wall_vs_best'])} | {fmt_ratio(c['wall_vs_glibc'])} | "
              f"{fmt_s(c['cpu'])} | {fmt_s(c['user'])} | {fmt_s(c['sys'])} | "
              f"{c['rss_kib'] / 1024:.1f} | {fmt_ratio(c['rss_vs_best'])} | {fmt_ratio(c['rss_vs_glibc'])} | "
              f"{c['minflt']:.0f} | {c['vcs']:.0f}/{c['ivcs']:.0f} |")
        p("")
    return "\n".join(out) + "\n"


COLOURS = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c",
           "mimalloc": "#9467bd", "slabcache": "#d62728"}
EXTRA_COLOURS = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def svg(res):
    """Horizontal bars, log scale: wall time over the row's best peer for glibc, slabcache and
    any extra allocator, and CPU time (user + sys) over the best peer's for the latter (the
    ratio a loaded machine disturbs least)."""
    rows, allocs = res["rows"], res["meta"]["allocators"]
    shown = [a for a in allocs if a not in PEERS]  # peers are >= 1 by definition
    colours = dict(COLOURS)
    for i, a in enumerate(x for x in shown if x not in COLOURS):
        colours[a] = EXTRA_COLOURS[i % len(EXTRA_COLOURS)]
    series = [(a, "wall_vs_best", colours[a], f"{a} wall") for a in shown]
    series += [(a, "cpu_vs_best", colours[a], f"{a} CPU") for a in shown if a != "glibc"]
    vals = [r["allocators"][a].get(k) for r in rows for a, k, _, _ in series]
    vals = [v for v in vals if v]
    lo, hi = min([0.5] + vals), max([2.0] + vals)
    lo, hi = 2 ** math.floor(math.log2(lo)), 2 ** math.ceil(math.log2(hi))
    left, width, bar, gap, top = 170, 560, 6, 6, 46
    group = bar * len(series) + gap
    height = top + group * len(rows) + 40

    def x(v):
        return left + width * (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 30}" height="{height}" '
         'font-family="sans-serif" font-size="11">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="{left}" y="16" font-size="13">Time / best peer (fastest of jemalloc, '
         'tcmalloc, mimalloc), log scale</text>']
    k = lo
    while k <= hi * 1.0001:
        o.append(f'<line x1="{x(k):.1f}" y1="{top - 8}" x2="{x(k):.1f}" y2="{height - 30}" '
                 f'stroke="{"#000" if abs(k - 1) < 1e-9 else "#ddd"}"/>')
        o.append(f'<text x="{x(k):.1f}" y="{height - 16}" text-anchor="middle">{k:g}x</text>')
        k *= 2
    for i, r in enumerate(rows):
        y0 = top + i * group
        o.append(f'<text x="{left - 6}" y="{y0 + group / 2 + 1:.1f}" text-anchor="end">'
                 f'{r["workload"]}</text>')
        for j, (a, key, colour, label) in enumerate(series):
            v = r["allocators"][a].get(key)
            if not v:
                continue
            x0, x1 = x(1.0), x(v)
            opacity = "0.45" if key == "cpu_vs_best" else "1"
            o.append(f'<rect x="{min(x0, x1):.1f}" y="{y0 + j * bar}" width="{abs(x1 - x0):.1f}" '
                     f'height="{bar - 1}" fill="{colour}" fill-opacity="{opacity}"><title>{label} '
                     f'{r["workload"]}: {v:.2f}x</title></rect>')
    for j, (a, key, colour, label) in enumerate(series):
        opacity = "0.45" if key == "cpu_vs_best" else "1"
        o.append(f'<rect x="{left + 10 + j * 120}" y="26" width="10" height="8" fill="{colour}" '
                 f'fill-opacity="{opacity}"/><text x="{left + 24 + j * 120}" y="34">{label}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    d = sys.argv[1]
    meta, runs = load(d)
    res = build(meta, runs)
    md = markdown(res)
    with open(os.path.join(d, "suite.md"), "w") as f:
        f.write(md)
    with open(os.path.join(d, "suite.json"), "w") as f:
        json.dump({"meta": meta, "geomean": res["geomean"], "rows": res["rows"],
                   "runs": runs}, f, indent=1)
    with open(os.path.join(d, "suite.svg"), "w") as f:
        f.write(svg(res))
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
