#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/alloc_share.sh - how much of each real program's time the allocator takes.
#
#   bash benchmarks/alloc_share.sh [--quick]      (needs perf; prints a markdown table)
#
# Runs each workload of tests/programs once under glibc's malloc and once with slabcache
# preloaded, under `perf record -e cpu-clock` (the only event this VM offers), and sums the
# self time of the allocator's functions: glibc's malloc family (malloc, free, realloc,
# calloc, memalign and their internals: _int_malloc, _int_free, tcache_*, malloc_consolidate,
# unlink_chunk, sysmalloc, systrim, ...), all of libjemalloc (Debian's redis-server links it,
# so it is redis's malloc without a preload) and everything in libslabcache.so.
#
# The share bounds what any allocator can gain on a program in user time: with glibc's
# allocator at s% of the samples, a free allocator makes it at best (1 - s) as long, unless it
# also saves kernel work (page faults, brk/madvise) or the program's own cache misses.  The
# geometric mean of (1 - s) is the bound for the programs benchmark's geomean goal.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
quick=0
[[ ${1:-} == --quick ]] && quick=1
command -v perf >/dev/null || { echo "alloc_share: perf not found (apt-get install linux-perf)" >&2; exit 1; }
(cd "$repo" && bazel build -c opt --noshow_progress //slab:libslabcache.so >&2) || exit 1
so=$repo/bazel-bin/slab/libslabcache.so
# shellcheck source=../tests/programs/programs.sh
source "$repo/tests/programs/programs.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
programs_install
programs_setup "$work" "$quick" >/dev/null 2>&1

# share DATA KIND: "<allocator %> <kernel %>" from perf's per-symbol sample counts
# (benchmarks/suite/share.py; for KIND glibc the program's own malloc: glibc's malloc
# family, or the jemalloc that Debian's redis links).
share() {
    perf report -i "$1" --stdio --sort dso,sym -F overhead,sample,dso,sym 2>/dev/null |
        python3 "$here/suite/share.py" sample - "$2" "$(basename "$(readlink -f "$so")")" 2>/dev/null |
        awk -F'\t' '{ print $4, $5; found = 1 } END { if (!found) print "0 0" }'
}

printf '| program | own malloc %% | bound (1 - share) | slabcache %% | kernel %% (own malloc) |\n'
printf '|---|---:|---:|---:|---:|\n'
logsum=0
n=0
for p in "${PROGRAMS[@]}"; do
    command -v "${PROGRAM_TOOL[$p]}" >/dev/null 2>&1 || continue
    for a in glibc slabcache; do
        d=$work/$p.$a
        mkdir -p "$d"
        pre=""
        [[ $a == slabcache ]] && pre=$so
        (cd "$d" && LD_PRELOAD=$pre perf record -q -e cpu-clock -F 1999 -o "$work/$p.$a.data" \
            -- bash -c "prog_$p" >/dev/null 2>&1)
    done
    read -r g gk < <(share "$work/$p.glibc.data" glibc)
    read -r s _ < <(share "$work/$p.slabcache.data" slabcache)
    bound=$(python3 -c "print(f'{1 - $g / 100:.3f}')")
    logsum=$(python3 -c "import math; print($logsum + math.log($bound))")
    n=$((n + 1))
    printf '| %s | %s | %s | %s | %s |\n' "$p" "$g" "$bound" "$s" "$gk"
done
python3 -c "import math; print(f'| **geomean bound** | | **{math.exp($logsum / max($n, 1)):.3f}** | | |')"
