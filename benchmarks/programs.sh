#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/programs.sh - real programs under glibc, jemalloc, tcmalloc, mimalloc and
# slabcache (LD_PRELOAD), in one run: wall time (bash's EPOCHREALTIME around the run, 1 ms
# resolution; /usr/bin/time's %e has 10 ms, 3-9% of the shortest programs) and peak RSS
# (/usr/bin/time -f %M).
#
#   bash benchmarks/programs.sh [--quick] [--reps N] [--so PATH] [--only a,b] [--out DIR]
#
# The workloads are those of tests/programs (tests/programs/programs.sh), same input for every
# allocator, and two more: "gs" (ghostscript rendering a generated PDF at 30 dpi, the md5 of
# the pages as output; benchmarks/suite/make_pdf.sh) and "espresso" (the logic-minimiser
# workload of benchmarks/suite, its check line as output).  Each run's output is checked
# against glibc's (a mismatch is marked "!").  Each (program, allocator) pair runs --reps
# times (default 3, --quick: 1), interleaved across allocators, and the median wall time and
# median peak RSS are kept.  Peak RSS is the largest of the process tree (wait4 rusage).
# Also measured: "malloc16", a C program holding 4M live 16-byte mallocs (reports RSS
# growth / live bytes, the density goal).
# Writes a markdown report, DIR/benchmarks-programs.md (default DIR: a new directory under
# $TMPDIR; `--out docs` regenerates the project's page), with ratios to glibc and to the
# best peer, the geometric means, and the goals checked, and prints it.  --only takes names
# from the list above and malloc16 (which always runs); an unknown name, or nothing left to
# run, is an error (status 2, 1).  To time a program of your own: benchmarks/compare.sh.
# Peers: Debian packages libjemalloc2, libtcmalloc-minimal4, libmimalloc2.0 (installed
# quietly if missing); time from the `time` package, gs from `ghostscript`.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
quick=0 reps="" so="" only="" out=""
args="$*"
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --reps) reps=$2; shift ;;
        --so) so=$2; shift ;;
        --only) only=$2; shift ;;
        --out) out=$2; shift ;;
        -h | --help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "programs.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ -n $reps ]] || { ((quick)) && reps=1 || reps=3; }
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "programs.sh: --reps needs a positive number, got '$reps'" >&2; exit 2; }

# shellcheck source=tests/programs/programs.sh
source "$repo/tests/programs/programs.sh"
# Two more programs of benchmarks/suite (defined below, once the input exists).
PROGRAMS+=(gs espresso)
PROGRAM_TOOL[gs]=gs
if [[ -n $only ]]; then
    IFS=, read -r -a wanted <<<"$only"
    for p in "${wanted[@]}"; do
        [[ " ${PROGRAMS[*]} malloc16 " == *" $p "* ]] || {
            echo "programs.sh: --only: unknown program '$p' (known: ${PROGRAMS[*]} malloc16;" \
                "for a program of your own: bash benchmarks/compare.sh -- CMD ARGS...)" >&2
            exit 2
        }
    done
fi
if [[ -z $out ]]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/slabcache-programs.XXXXXX")
elif ! mkdir -p "$out" 2>/dev/null || [[ ! -d $out ]]; then
    echo "programs.sh: --out: cannot create directory $out" >&2
    exit 2
fi
report=$out/benchmarks-programs.md

if [[ -z $so ]]; then
    (cd "$repo" && bazel build -c opt //slab:libslabcache.so >&2) || exit 1
    so=$repo/bazel-bin/slab/libslabcache.so
fi
so=$(readlink -f "$so")
(cd "$repo" && bazel build -c opt --noshow_progress //benchmarks/suite:espresso >&2) || exit 1
espresso_bin=$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null)/benchmarks/suite/espresso

programs_install
libdir=/usr/lib/x86_64-linux-gnu
pkgs=()
[[ -e $libdir/libjemalloc.so.2 ]] || pkgs+=(libjemalloc2)
[[ -e $libdir/libtcmalloc_minimal.so.4 ]] || pkgs+=(libtcmalloc-minimal4)
[[ -e $libdir/libmimalloc.so.2 ]] || pkgs+=(libmimalloc2.0)
[[ -x /usr/bin/time ]] || pkgs+=(time)
command -v gs >/dev/null 2>&1 || pkgs+=(ghostscript)
if ((${#pkgs[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1 ||
        echo "programs.sh: could not install ${pkgs[*]}" >&2
fi

allocs=(glibc jemalloc tcmalloc mimalloc slabcache)
declare -A lib=([glibc]="" [jemalloc]=$libdir/libjemalloc.so.2
    [tcmalloc]=$libdir/libtcmalloc_minimal.so.4 [mimalloc]=$libdir/libmimalloc.so.2
    [slabcache]=$so)
for a in "${allocs[@]}"; do
    if [[ -n ${lib[$a]} && ! -e ${lib[$a]} ]]; then
        echo "programs.sh: $a missing (${lib[$a]}), dropped" >&2
        allocs=("${allocs[@]/$a/}")
    fi
done
read -r -a allocs <<<"${allocs[*]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/slabcache-progbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
programs_setup "$work" "$quick"

# malloc16: hold N live 16-byte blocks; print (RSS growth) / (N * 16) as the output.
cat >"$work/malloc16.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* Rss from smaps_rollup: an exact page-table walk.  /proc/self/statm reads the kernel's
 * per-CPU RSS counters without their pending per-CPU deltas (up to ~32 pages per CPU each
 * way), an error of a few tenths of a percent at this size: more than the goal's margin. */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kib = 0;
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Rss: %ld kB", &kib) == 1) break;
        fclose(f);
    }
    return kib;
}
int main(void) {
    const size_t n = 4u << 20;
    void **v = malloc(n * sizeof *v);
    if (!v) return 1;
    for (size_t i = 0; i < n * sizeof *v; i += 4096) /* resident before the first reading */
        ((volatile char *)v)[i] = 1;
    /* The first reading runs stdio and scanf code for the first time: its pages (~250 KiB
     * of libc text) become resident after the kernel has produced the number, so a baseline
     * taken then would charge them to the allocator.  Read once to warm up. */
    (void)rss_kib();
    long before = rss_kib();
    for (size_t i = 0; i < n; i++) { v[i] = malloc(16); memset(v[i], 1, 16); }
    long after = rss_kib();
    printf("%.3f\n", (double)(after - before) * 1024.0 / (double)(n * 16));
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    return 0;
}
EOF
gcc -O2 "$work/malloc16.c" -o "$work/malloc16" || exit 1
prog_malloc16() { "$WORKDIR/malloc16"; }
export WORKDIR=$work
export -f prog_malloc16

# gs and espresso (benchmarks/suite): the document is made once, without a preload.
if command -v gs >/dev/null 2>&1; then
    if ((quick)); then GS_PAGES=30; else GS_PAGES=100; fi
    bash "$here/suite/make_pdf.sh" "$work/doc.pdf" "$GS_PAGES" || echo "programs.sh: make_pdf.sh failed" >&2
fi
if ((quick)); then ESPRESSO_FUNCTIONS=4; else ESPRESSO_FUNCTIONS=10; fi
export ESPRESSO_BIN=$espresso_bin ESPRESSO_FUNCTIONS
prog_gs() {
    gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=ppmraw -r30 -sOutputFile=- "$WORKDIR/doc.pdf" | md5sum
}
prog_espresso() { "$ESPRESSO_BIN" "$ESPRESSO_FUNCTIONS" 16 120 | grep '^check:'; }
export -f prog_gs prog_espresso
PROGRAM_TOOL[espresso]=$espresso_bin

progs=()
for p in "${PROGRAMS[@]}"; do
    [[ -n $only && ",$only," != *",$p,"* ]] && continue
    command -v "${PROGRAM_TOOL[$p]}" >/dev/null 2>&1 || { echo "skip $p" >&2; continue; }
    progs+=("$p")
done
if [[ -n $only && ${#progs[@]} == 0 && ",$only," != *,malloc16,* ]]; then
    echo "programs.sh: nothing to run: the tools of '$only' are missing" >&2
    exit 1
fi

declare -A T R OK D16
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
for p in "${progs[@]}" malloc16; do
    for a in "${allocs[@]}"; do : >"$work/$p.$a.t" && : >"$work/$p.$a.r"; done
    for ((rep = 1; rep <= reps; rep++)); do
        for a in "${allocs[@]}"; do
            d=$work/run/$p.$a.$rep
            mkdir -p "$d"
            t0=$EPOCHREALTIME
            (cd "$d" && LD_PRELOAD=${lib[$a]} /usr/bin/time -f "%M" -o "$d.time" \
                bash -c "prog_$p" >"$d.out" 2>"$d.err")
            t1=$EPOCHREALTIME
            r=$(tail -n 1 "$d.time") # after "Command exited with non-zero status" if any
            t=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.3f", b - a }')
            echo "$t" >>"$work/$p.$a.t"
            echo "$r" >>"$work/$p.$a.r"
            if [[ $p == malloc16 ]]; then
                D16[$a]=$(cat "$d.out")
            elif [[ $a != glibc ]] && ! cmp -s "$d.out" "$work/run/$p.glibc.$rep.out"; then
                OK[$p.$a]="!"
            fi
            echo "$p $a rep $rep: ${t}s ${r} KiB" >&2
        done
    done
    for a in "${allocs[@]}"; do
        T[$p.$a]=$(median <"$work/$p.$a.t")
        R[$p.$a]=$(median <"$work/$p.$a.r")
    done
done

# ---------------------------------------------------------------- report
{
    echo "# Real programs under five allocators"
    echo
    echo "Generated by \`bash benchmarks/programs.sh${args:+ $args}\` on $(date -u +%Y-%m-%d)"
    echo "($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -r),"
    echo "glibc $(ldd --version | head -1 | awk '{ print $NF }'), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg));"
    echo "median of $reps run(s) per cell, interleaved.  Wall time in seconds (bash's EPOCHREALTIME"
    echo "around each run, 1 ms resolution) and peak RSS in MiB (\`/usr/bin/time -f %M\`, largest"
    echo "process of the tree).  Ratios are slabcache / glibc"
    echo "and slabcache / best peer (the fastest, or smallest, of jemalloc, tcmalloc, mimalloc)."
    echo "\"!\" marks output that differed from glibc's.  Workloads: tests/programs/programs.sh"
    echo "($( ((quick)) && echo "--quick sizes" || echo "full sizes"))."
    echo
    if ((${#progs[@]})); then
        printf '| program |'
        for a in "${allocs[@]}"; do printf ' %s s |' "$a"; done
        printf ' vs glibc | vs best peer |'
        for a in "${allocs[@]}"; do printf ' %s MiB |' "$a"; done
        printf ' RSS vs glibc |\n|---|'
        for _ in "${allocs[@]}" x x "${allocs[@]}" x; do printf -- '---:|'; done
        echo
        for p in "${progs[@]}"; do
            printf '| %s |' "$p"
            for a in "${allocs[@]}"; do printf ' %s%s |' "${T[$p.$a]}" "${OK[$p.$a]:-}"; done
            awk -v s="${T[$p.slabcache]}" -v g="${T[$p.glibc]}" -v j="${T[$p.jemalloc]:-}" \
                -v t="${T[$p.tcmalloc]:-}" -v m="${T[$p.mimalloc]:-}" 'BEGIN {
                b = 0; if (j != "") b = j; if (t != "" && (b == 0 || t < b)) b = t; if (m != "" && (b == 0 || m < b)) b = m;
                printf " %.2fx | %s |", (g > 0 ? s / g : 0), (b > 0 ? sprintf("%.2fx", s / b) : "-") }'
            for a in "${allocs[@]}"; do awk -v r="${R[$p.$a]}" 'BEGIN { printf " %.1f |", r / 1024 }'; done
            awk -v s="${R[$p.slabcache]}" -v g="${R[$p.glibc]}" 'BEGIN { printf " %.2fx |\n", s / g }'
        done
        # geometric means
        printf '| **geomean** |'
        for a in "${allocs[@]}"; do
            for p in "${progs[@]}"; do echo "${T[$p.$a]}"; done |
                awk '{ if ($1 > 0) { s += log($1); n++ } } END { printf " %.2f |", n ? exp(s / n) : 0 }'
        done
        for p in "${progs[@]}"; do echo "${T[$p.slabcache]} ${T[$p.glibc]} ${T[$p.jemalloc]:-0} ${T[$p.tcmalloc]:-0} ${T[$p.mimalloc]:-0}"; done |
            awk '{ s = $1; if (s <= 0 || $2 <= 0) next; gl += log(s / $2); b = 0;
                   for (i = 3; i <= 5; i++) if ($i > 0 && (b == 0 || $i < b)) b = $i;
                   if (b > 0) { bp += log(s / b); nb++ } n++ }
                 END { printf " **%.3fx** | **%s** |", exp(gl / n), nb ? sprintf("%.3fx", exp(bp / nb)) : "-" }'
        for a in "${allocs[@]}"; do
            for p in "${progs[@]}"; do echo "${R[$p.$a]}"; done |
                awk '{ if ($1 > 0) { s += log($1 / 1024); n++ } } END { printf " %.1f |", n ? exp(s / n) : 0 }'
        done
        for p in "${progs[@]}"; do echo "${R[$p.slabcache]} ${R[$p.glibc]}"; done |
            awk '{ s += log($1 / $2); n++ } END { printf " **%.3fx** |\n", exp(s / n) }'
        echo
    fi
    echo "16-byte mallocs (malloc16: 4M live blocks, RSS growth / live bytes):"
    for a in "${allocs[@]}"; do printf ' %s %s;' "$a" "${D16[$a]:-?}"; done
    echo
    echo
    if ((${#progs[@]})); then
        echo "## Goals"
        echo
        for p in "${progs[@]}"; do echo "$p ${T[$p.slabcache]} ${T[$p.glibc]} ${T[$p.jemalloc]:-0} ${T[$p.tcmalloc]:-0} ${T[$p.mimalloc]:-0} ${R[$p.slabcache]} ${R[$p.glibc]}"; done |
            awk -v d16="${D16[slabcache]:-99}" '
            { n++; gl += log($2 / $3); b = 0; for (i = 4; i <= 6; i++) if ($i > 0 && (b == 0 || $i < b)) b = $i;
              if (b > 0) { bp += log($2 / b); nb++ }
              if ($2 / $3 > worst) { worst = $2 / $3; wp = $1 }
              if ($7 / $8 > rworst) { rworst = $7 / $8; rp = $1 } }
            END {
              g = exp(gl / n); pb = nb ? exp(bp / nb) : 0;
              printf "| goal | target | measured | met |\n|---|---|---|---|\n";
              printf "| geomean time vs glibc | <= 0.95x | %.3fx | %s |\n", g, g <= 0.95 ? "yes" : "**no**";
              printf "| geomean time vs best peer | <= 1.0x | %.3fx | %s |\n", pb, pb <= 1.0 ? "yes" : "**no**";
              printf "| worst program vs glibc | <= 1.3x | %.2fx (%s) | %s |\n", worst, wp, worst <= 1.3 ? "yes" : "**no**";
              printf "| worst peak RSS vs glibc | <= 1.1x | %.2fx (%s) | %s |\n", rworst, rp, rworst <= 1.1 ? "yes" : "**no**";
              printf "| 16-byte mallocs, bytes per live byte | <= 1.01x | %.3fx | %s |\n", d16, d16 <= 1.01 ? "yes" : "**no**" }'
    fi
} >"$report"
cat "$report"
echo "programs.sh: wrote $report" >&2
