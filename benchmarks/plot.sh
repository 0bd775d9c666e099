#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Plots of the benchmark JSON (gnuplot, Debian's gnuplot-nox), as SVG files.
#
#   bash benchmarks/plot.sh CACHE_JSON MEM_JSON [OUTDIR]      (OUTDIR: docs/)
#
#   OUTDIR/bench_lifo.svg    LIFO ns per alloc+free, median with min-max bars
#   OUTDIR/bench_ratio.svg   every workload: median / best peer's median (1 = best peer)
#   OUTDIR/bench_mem.svg     RSS growth / live bytes against object size
#
# cache_bench and mem_bench write one result object per JSON line; awk reads them, so no
# JSON tool is needed.  Either JSON may be "-" to skip its plots.
set -euo pipefail

cache_json=${1:?usage: plot.sh CACHE_JSON MEM_JSON [OUTDIR]}
mem_json=${2:?usage: plot.sh CACHE_JSON MEM_JSON [OUTDIR]}
out=${3:-docs}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# field NAME: the value of "NAME": in the current line (string or number).
awk_lib='
function field(name,   s, i, v) {
    i = index($0, "\"" name "\": ")
    if (i == 0) return ""
    s = substr($0, i + length(name) + 4)
    if (substr(s, 1, 1) == "\"") { s = substr(s, 2); return substr(s, 1, index(s, "\"") - 1) }
    match(s, /^[-0-9.eE+a-z]+/)
    return substr(s, 1, RLENGTH)
}'

style='set terminal svg size 900,480 dynamic font "sans,12" background rgb "white"
set grid ytics
set key outside right top
set border 3
set xtics nomirror
set ytics nomirror
set termoption noenhanced'

if [[ "$cache_json" != "-" ]]; then
    # LIFO: allocator median min max
    awk "$awk_lib"'
        /"workload": "lifo"/ && field("median") != "null" {
            print field("allocator"), field("median"), field("min"), field("max") }' \
        "$cache_json" >"$tmp/lifo.dat"
    gnuplot <<GP
$style
set output "$out/bench_lifo.svg"
set title "LIFO alloc+free of 117-byte objects (median, min-max bars; lower is better)"
set ylabel "ns per alloc+free"
set yrange [0:*]
set style fill solid 0.6 border -1
set boxwidth 0.6
unset key
plot "$tmp/lifo.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
     "" using 0:2:3:4 with yerrorbars lc rgb "black" pt -1
GP
    # Ratio to the best peer: one row per workload metric (ns metrics only), one column per
    # allocator, in the order the allocators first appear.
    awk "$awk_lib"'
        /"workload": / && field("unit") == "ns/obj" {
            w = field("workload"); m = field("metric"); a = field("allocator")
            row = (w == m) ? w : w "-" m
            if (!(row in seen_row)) { seen_row[row] = 1; rows[++nr] = row }
            if (!(a in seen_a)) { seen_a[a] = 1; al[++na] = a }
            r = field("ratio_best_peer"); v[row, a] = (r == "null" || r == "") ? "NaN" : r
        }
        END {
            printf "workload"; for (j = 1; j <= na; j++) printf " %s", al[j]; printf "\n"
            for (i = 1; i <= nr; i++) {
                printf "%s", rows[i]
                for (j = 1; j <= na; j++) printf " %s", ((rows[i], al[j]) in v) ? v[rows[i], al[j]] : "NaN"
                printf "\n"
            }
        }' "$cache_json" >"$tmp/ratio.dat"
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
    awk "$awk_lib"'
        /"allocator": / {
            a = field("allocator"); s = field("size")
            if (!(a in seen_a)) { seen_a[a] = 1; al[++na] = a }
            if (!(s in seen_s)) { seen_s[s] = 1; sz[++ns] = s }
            v[s, a] = field("live_ratio")
        }
        END {
            printf "size"; for (j = 1; j <= na; j++) printf " %s", al[j]; printf "\n"
            for (i = 1; i <= ns; i++) {
                printf "%s", sz[i]
                for (j = 1; j <= na; j++) printf " %s", ((sz[i], al[j]) in v) ? v[sz[i], al[j]] : "NaN"
                printf "\n"
            }
        }' "$mem_json" >"$tmp/mem.dat"
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
