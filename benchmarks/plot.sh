#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Plots of the benchmark JSON (gnuplot, Debian's gnuplot-nox), as SVG files.
#
#   bash benchmarks/plot.sh CACHE_JSON MEM_JSON OUTDIR
#
#   OUTDIR/bench_lifo.svg    LIFO ns per alloc+free, median with min-max bars
#   OUTDIR/bench_ratio.svg   every workload: median / best peer's median (1 = best peer)
#   OUTDIR/bench_mem.svg     RSS growth / live bytes against object size
#
# The JSON is read with python3's json module (any layout: one result per line as the
# benchmarks write it, compact, or pretty-printed).  Either JSON may be "-" to skip its plots.
set -euo pipefail

cache_json=${1:?usage: plot.sh CACHE_JSON MEM_JSON [OUTDIR]}
mem_json=${2:?usage: plot.sh CACHE_JSON MEM_JSON [OUTDIR]}
out=${3:?usage: plot.sh CACHE_JSON MEM_JSON OUTDIR}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# tables DATA_KIND JSON OUT...: the gnuplot data files, written by python3 from the JSON.
#   cache JSON LIFO_DAT RATIO_DAT   LIFO "allocator median min max" rows; per workload metric
#                                   (ns metrics only) the ratio to the best peer, one column
#                                   per allocator in the order they first appear
#   mem JSON MEM_DAT                per object size, each allocator's RSS growth / live bytes
tables() {
    python3 - "$@" <<'PY'
import json, sys

kind, path, outs = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    with open(path) as f:
        doc = json.load(f)
    results = doc["results"]
except (OSError, ValueError, KeyError, TypeError) as e:
    sys.exit(f"plot.sh: {path}: not benchmark JSON ({e})")

def num(v):
    return "NaN" if v is None or v == "" else repr(float(v))

def table(path, first, rows, cols, cell):
    with open(path, "w") as f:
        f.write(" ".join([first] + cols) + "\n")
        for r in rows:
            f.write(" ".join([str(r)] + [cell.get((r, c), "NaN") for c in cols]) + "\n")

if kind == "cache":
    with open(outs[0], "w") as f:
        for r in results:
            if r.get("workload") == "lifo" and r.get("median") is not None:
                f.write(f"{r['allocator']} {num(r['median'])} {num(r['min'])} {num(r['max'])}\n")
    rows, cols, cell = [], [], {}
    for r in results:
        if r.get("unit") != "ns/obj":
            continue
        w, m, a = r["workload"], r["metric"], r["allocator"]
        row = w if w == m else f"{w}-{m}"
        rows += [row] if row not in rows else []
        cols += [a] if a not in cols else []
        cell[(row, a)] = num(r.get("ratio_best_peer"))
    table(outs[1], "workload", rows, cols, cell)
else:
    rows, cols, cell = [], [], {}
    for r in results:
        s, a = r["size"], r["allocator"]
        rows += [s] if s not in rows else []
        cols += [a] if a not in cols else []
        cell[(s, a)] = num(r.get("live_ratio"))
    table(outs[0], "size", rows, cols, cell)
PY
}

style='set terminal svg size 900,480 dynamic font "sans,12" background rgb "white"
set grid ytics
set key outside right top
set border 3
set xtics nomirror
set ytics nomirror
set termoption noenhanced'

if [[ "$cache_json" != "-" ]]; then
    tables cache "$cache_json" "$tmp/lifo.dat" "$tmp/ratio.dat"
    gnuplot <<GP
$style
set output "$out/bench_lifo.svg"
set title "LIFO alloc+free of 117-byte objects (median, min-max bars; lower is better)"
set ylabel "ns per alloc+free"
set yrange [0:*]
set style fill solid 0.6 border -1
set boxwidth 0.6
unset key
plot "$tmp/lifo.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa" notitle, \
     "" using 0:2:3:4 with yerrorbars lc rgb "black" pt -1 notitle
GP
    ncols=$(head -1 "$tmp/ratio.dat" | wc -w)
    gnuplot <<GP
$style
set terminal svg size 1200,520 dynamic font "sans,11" background rgb "white" noenhanced
set output "$out/bench_ratio.svg"
set title "Median time per object / best peer's median (below 1 = faster than every peer)"
set ylabel "ratio to best peer (log scale)"
set logscale y
set ytics (0.125, 0.25, 0.5, 0.8, 1, 1.5, 2, 4, 8)
set yrange [0.1:*]
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb "black" dt 2
plot for [c=2:$ncols] "$tmp/ratio.dat" using c:xtic(1) title columnheader(c)
GP
fi

if [[ "$mem_json" != "-" ]]; then
    tables mem "$mem_json" "$tmp/mem.dat"
    ncols=$(head -1 "$tmp/mem.dat" | wc -w)
    gnuplot <<GP
$style
set output "$out/bench_mem.svg"
set title "RSS growth / live bytes with the objects live (1.00 = no overhead; lower is better)"
set xlabel "object size (bytes, log scale)"
set ylabel "RSS growth / live bytes"
set logscale x 2
set xrange [12:5000]
set yrange [0.95:*]
plot for [c=2:$ncols] "$tmp/mem.dat" using 1:c title columnheader(c) with linespoints lw 2
GP
fi
ls -1 "$out"/bench_*.svg
