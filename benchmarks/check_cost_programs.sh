#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/check_cost_programs.sh - what slabcache's always-on free checks cost real
# programs: the drop-in malloc as shipped (//slab:libslabcache.so) against the same library
# with the checks compiled out (//slab:libslabcache_unchecked_for_benchmarks.so), preloaded
# alternately into the workloads of tests/programs.
#
#   bash benchmarks/check_cost_programs.sh [--reps N] [--only a,b] [--full]
#
# Default: 7 repetitions of python, sqlite, git, lua, gawk and redis at the --quick sizes
# (gcc, xz and zstd spend almost nothing in malloc; add them with --only).  Wall time of each
# run from bash's EPOCHREALTIME (microseconds); median per program; prints a markdown table
# with checked / unchecked per program and the geometric mean.  benchmarks/check_cost.sh
# measures the same checks on the fast paths alone.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
reps=7 only="python,sqlite,git,lua,gawk,redis" quick=1
while (($#)); do
    case "$1" in
        --reps) reps=$2; shift ;;
        --only) only=$2; shift ;;
        --full) quick=0 ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "check_cost_programs.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

(cd "$repo" && bazel build -c opt --noshow_progress //slab:libslabcache.so \
    //slab:libslabcache_unchecked_for_benchmarks.so >&2) || exit 1
bin=$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null)/slab
declare -A lib=([checked]=$bin/libslabcache.so
    [unchecked]=$bin/libslabcache_unchecked_for_benchmarks.so)

# shellcheck source=tests/programs/programs.sh
source "$repo/tests/programs/programs.sh"
programs_install
work=$(mktemp -d "${TMPDIR:-/tmp}/slabcache-checkcost.XXXXXX")
trap 'rm -rf "$work"' EXIT
programs_setup "$work" "$quick"

progs=()
for p in "${PROGRAMS[@]}"; do
    [[ ",$only," != *",$p,"* ]] && continue
    command -v "${PROGRAM_TOOL[$p]}" >/dev/null 2>&1 || { echo "skip $p" >&2; continue; }
    progs+=("$p")
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
declare -A M
for p in "${progs[@]}"; do
    for v in checked unchecked; do : >"$work/$p.$v"; done
    for ((r = 1; r <= reps; r++)); do
        if ((r % 2)); then order="checked unchecked"; else order="unchecked checked"; fi
        for v in $order; do
            d=$work/run/$p.$v.$r
            mkdir -p "$d"
            t0=$EPOCHREALTIME
            (cd "$d" && LD_PRELOAD=${lib[$v]} bash -c "prog_$p" </dev/null >"$d.out" 2>"$d.err")
            t1=$EPOCHREALTIME
            awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$work/$p.$v"
            printf '\r%s rep %d/%d' "$p" "$r" "$reps" >&2
        done
        cmp -s "$work/run/$p.checked.$r.out" "$work/run/$p.unchecked.$r.out" ||
            echo "check_cost_programs.sh: $p output differs between the two builds" >&2
    done
    for v in checked unchecked; do M[$p.$v]=$(median <"$work/$p.$v"); done
done
printf '\n' >&2

echo "| program | checks on (s) | checks off (s) | on / off |"
echo "|---|---:|---:|---:|"
for p in "${progs[@]}"; do
    echo "$p ${M[$p.checked]} ${M[$p.unchecked]}"
done | awk '{ r = $2 / $3; g += log(r); n++
             printf "| %s | %.3f | %.3f | %.3fx |\n", $1, $2, $3, r }
       END { if (n) printf "| **geomean** | | | **%.3fx** |\n", exp(g / n) }'
