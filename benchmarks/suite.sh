#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/suite.sh - the allocator suite: the patterns of mimalloc-bench (our own code, in
# benchmarks/suite/) and ghostscript, under glibc, jemalloc, tcmalloc, mimalloc and slabcache.
#
#   bash benchmarks/suite.sh [--quick] [--rounds N] [--only a,b] [--out DIR] [--docs]
#                            [--so PATH] [--alloc NAME=PATH]... [--allocators a,b] [--list]
#   bash benchmarks/suite.sh --smoke --bindir DIR [--so PATH]     (the Bazel smoke test)
#
# (For one program of your own: benchmarks/compare.sh.)  Builds //slab:libslabcache.so and
# the workloads with --config=opt, then runs every workload under each allocator
# (LD_PRELOAD of Debian's libjemalloc.so.2, libtcmalloc_minimal.so.4,
# libmimalloc.so.2 and slabcache; glibc without a preload), interleaved: in every round each
# workload runs once per allocator, in an order rotated every round.  --rounds N (default
# 3; --quick: 1).  Per run: wall time (bash's EPOCHREALTIME around it), user and sys time,
# peak RSS, faults and context switches (/usr/bin/time), the load average when it started,
# and the workload's check line, which must match glibc's.  Writes DIR/raw.tsv, DIR/meta.json,
# and (benchmarks/suite/report.py) DIR/suite.md, DIR/suite.json and DIR/suite.svg; prints
# suite.md.  DIR defaults to a new directory under $TMPDIR; --docs also copies the results to
# docs/benchmarks-suite-results.md, docs/bench_suite.json and docs/bench_suite.svg.
#   --so PATH          use this libslabcache.so (no build)
#   --alloc NAME=PATH[,VAR=VALUE...]  one more allocator to preload (e.g. a prototype build),
#                      with environment variables for its runs only; repeatable
#   --allocators a,b   run only these (glibc, jemalloc, tcmalloc, mimalloc, slabcache, extras)
#   --only a,b         run only these workloads (--list shows them)
#   --bindir DIR       the workload binaries, or one of them (default: built here)
#   --timeout S        per run (default 900)
#   --profile          instead of timing: for each selected workload and allocator (default:
#                      slabcache), `perf stat` (task clock, faults, context switches), `perf
#                      record` (cpu-clock, DWARF call graphs) with the top symbols by self time
#                      and their callers, and `strace -c -f`, into DIR/profile/
#   --share            instead of timing: every selected workload once under each allocator
#                      with `perf record -e cpu-clock`, and the share of its CPU time spent in
#                      the allocator and in the kernel (benchmarks/suite/share.py): per
#                      workload the best peer's allocator share and the floor (1 - share)
#                      that bounds what any allocator reaches against it; into DIR/share.md
#                      and DIR/share.tsv
#   --smoke            every workload once at tiny sizes, under glibc and (when --so names a
#                      library that exists) slabcache, or --allocators; exit status 1 when any
#                      fails or prints a check line different from glibc's
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
args="$*"
quick=0 rounds="" only="" out="" docs=0 so="" bindir="" smoke=0 list=0 timeout_s=900 profile=0 share=0
allocators_sel=""
extra=()
usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; }
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --only) only=${2:?--only needs names}; shift ;;
        --out) out=${2:?--out needs a directory}; shift ;;
        --docs) docs=1 ;;
        --so) so=${2:?--so needs a path}; shift ;;
        --alloc) extra+=("${2:?--alloc needs NAME=PATH}"); shift ;;
        --allocators) allocators_sel=${2:?--allocators needs names}; shift ;;
        --bindir) bindir=${2:?--bindir needs a directory}; shift ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
        --smoke) smoke=1 ;;
        --profile) profile=1 ;;
        --share) share=1 ;;
        --list) list=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "suite.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
[[ -n $rounds ]] || { ((quick)) && rounds=1 || rounds=3; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "suite.sh: --rounds must be a positive integer" >&2; exit 2; }

n=$(nproc)
((n >= 2)) || n=2

# ---------------------------------------------------------------- workloads
# name | binary | threads | pattern | arguments | smoke arguments.  "N" in threads and
# arguments is the number of cores (at least 2); gs's argument is the document's page count.
WORKLOADS=(
    "malloc-large|malloc_large|1|blocks of 64 KiB-20 MiB, 20 live, one thread|500 20 64 20480|6 4 64 2048"
    "mstressN|mstress|N|power-of-two sizes, short and long lives, blocks migrating between N threads, threads re-created|N 100 25|N 2 2"
    "mstress8|mstress|8|the same with 8 threads|8 10 25|8 1 1"
    "xmalloc-testN|xmalloc_test|2*N|N producer threads allocate 64 B blocks, N consumer threads free them|N 500 64|N 2 64"
    "xmalloc-test8|xmalloc_test|8|the same with 4 + 4 threads|4 250 64|4 1 64"
    "glibc-simple|glibc_simple|1|one thread, runs of 25-1600 malloc then free, 16-64 B|2000000 16|1600 16"
    "glibc-thread|glibc_thread|N|N threads, random-size (4 B-32 KiB, inverse square) malloc/free over a working set|N 16000000|N 20000"
    "larsonN|larson|N|server simulation: random sizes 8-1000 B, threads replace blocks, successors free them|N 8 1000 5000 100 20|N 8 1000 500 2 3"
    "larsonN-sized|larson_sized|N|the same with new[] and sized delete[]|N 8 1000 5000 100 20|N 8 1000 500 2 3"
    "alloc-test1|alloc_test|1|random sizes up to 1 KiB, skewed working set, one thread|1 8000000|1 20000 10 4096"
    "alloc-testN|alloc_test|N|the same on N threads|N 8000000|N 20000 10 4096"
    "rptestN|rptest|N|random sizes 8 B-16 KB, scattered frees, batches freed by another thread|N 4000|N 20 100 10"
    "cfrac|cfrac|1|bignum continued fraction: small short-lived blocks|150000|300"
    "espresso|espresso|1|logic minimiser: tautology recursion over small cube covers|10 16 120|1 8 20"
    "barnes|barnes|1|Barnes-Hut n-body, octree rebuilt every step|8192 8|300 2"
    "cache-scratch1|cache_scratch|1|passive false sharing, one thread|1 1000 8 200000|1 10 8 100"
    "cache-scratchN|cache_scratch|N|passive false sharing, N threads|N 1000 8 200000|N 10 8 100"
    "cache-thrash1|cache_thrash|1|active false sharing, one thread|1 1000 8 200000|1 10 8 100"
    "cache-thrashN|cache_thrash|N|active false sharing, N threads|N 1000 8 200000|N 10 8 100"
    "mleak|mleak|10|10 short-lived threads per round, each leaves a block for another|500 10|3 4"
    "gs|gs|1|ghostscript rendering a generated 100-page PDF at 30 dpi|100|2"
)
declare -A W_BIN W_THREADS W_PAT W_ARGS W_SMOKE
names=()
for spec in "${WORKLOADS[@]}"; do
    IFS='|' read -r name bin threads pat wargs sargs <<<"$spec"
    names+=("$name")
    W_BIN[$name]=$bin W_THREADS[$name]=$threads W_PAT[$name]=$pat W_ARGS[$name]=$wargs
    W_SMOKE[$name]=$sargs
done
if ((list)); then
    for w in "${names[@]}"; do printf '%-15s %s\n' "$w" "${W_PAT[$w]}"; done
    exit 0
fi
selected=()
if [[ -n $only ]]; then
    IFS=',' read -r -a want <<<"$only"
    for w in "${want[@]}"; do
        if [[ -z ${W_BIN[$w]+x} ]]; then
            echo "suite.sh: unknown workload '$w'; known: ${names[*]}" >&2
            exit 2
        fi
    done
    for w in "${names[@]}"; do [[ ",$only," == *",$w,"* ]] && selected+=("$w"); done
else
    selected=("${names[@]}")
fi

# ---------------------------------------------------------------- allocators
# drop_alloc NAME: remove NAME from allocs (whole names only).
drop_alloc() {
    local keep=() x
    for x in "${allocs[@]}"; do [[ $x == "$1" ]] || keep+=("$x"); done
    allocs=("${keep[@]}")
}
libdir=/usr/lib/x86_64-linux-gnu
allocs=(glibc jemalloc tcmalloc mimalloc slabcache)
declare -A lib=([glibc]="" [jemalloc]=$libdir/libjemalloc.so.2
    [tcmalloc]=$libdir/libtcmalloc_minimal.so.4 [mimalloc]=$libdir/libmimalloc.so.2 [slabcache]="")
declare -A aenv # allocator -> space-separated VAR=VALUE for its runs
for e in "${extra[@]}"; do
    ename=${e%%=*} rest=${e#*=}
    epath=${rest%%,*}
    if [[ -z $ename || $ename == "$e" || -z $epath || -n ${lib[$ename]+x} ]]; then
        echo "suite.sh: --alloc wants a new NAME=PATH[,VAR=VALUE...], got '$e'" >&2
        exit 2
    fi
    [[ -f $epath ]] || { echo "suite.sh: --alloc $ename: no file $epath" >&2; exit 2; }
    allocs+=("$ename")
    lib[$ename]=$(readlink -f "$epath")
    if [[ $rest == *,* ]]; then
        IFS=',' read -r -a vars <<<"${rest#*,}"
        for v in "${vars[@]}"; do
            [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || { echo "suite.sh: --alloc $ename: '$v' is not VAR=VALUE" >&2; exit 2; }
        done
        aenv[$ename]="${vars[*]}"
    fi
done
# The smoke test checks the workloads and slabcache, not the peers; profiles are slabcache's.
((smoke)) && [[ -z $allocators_sel ]] && allocators_sel=glibc,slabcache
((profile)) && [[ -z $allocators_sel ]] && allocators_sel=slabcache
if [[ -n $allocators_sel ]]; then
    IFS=',' read -r -a want <<<"$allocators_sel"
    for a in "${want[@]}"; do
        [[ -n ${lib[$a]+x} ]] || { echo "suite.sh: unknown allocator '$a'; known: ${allocs[*]}" >&2; exit 2; }
    done
    keep=()
    for a in "${allocs[@]}"; do [[ ",$allocators_sel," == *",$a,"* ]] && keep+=("$a"); done
    allocs=("${keep[@]}")
fi

# ---------------------------------------------------------------- build
if [[ -z $bindir || ( -z $so && $smoke -eq 0 ) ]]; then
    (cd "$repo" && bazel build --config=opt --noshow_progress //slab:libslabcache.so \
        //benchmarks/suite:workloads >&2) || { echo "suite.sh: build failed" >&2; exit 1; }
    bazel_bin=$(cd "$repo" && bazel info --config=opt bazel-bin 2>/dev/null)
    [[ -n $bindir ]] || bindir=$bazel_bin/benchmarks/suite
    [[ -n $so ]] || so=$bazel_bin/slab/libslabcache.so
fi
[[ -f $bindir ]] && bindir=$(dirname "$bindir")
bindir=$(cd "$bindir" && pwd) || { echo "suite.sh: no directory $bindir" >&2; exit 2; }
if [[ -n $so && -f $so ]]; then
    lib[slabcache]=$(readlink -f "$so")
elif ((smoke)); then
    drop_alloc slabcache
    echo "suite.sh: no libslabcache.so (--so '$so'): smoke test under glibc only" >&2
else
    echo "suite.sh: no libslabcache.so at '$so'" >&2
    exit 1
fi
for a in "${allocs[@]}"; do
    if [[ $a != glibc && ! -f ${lib[$a]} ]]; then
        echo "suite.sh: $a not installed (${lib[$a]}): dropped (tools/setup.sh installs the peers)" >&2
        drop_alloc "$a"
    fi
done
[[ -x /usr/bin/time ]] || { echo "suite.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/slabcache-suite.XXXXXX")
trap 'rm -rf "$work"' EXIT

pdf=""
need_pdf() {
    [[ -n $pdf ]] && return 0
    command -v gs >/dev/null || { echo "suite.sh: gs not installed (apt-get install ghostscript)" >&2; return 1; }
    local pages=${W_ARGS[gs]}
    ((smoke)) && pages=${W_SMOKE[gs]}
    pdf=$work/doc.pdf
    env -u LD_PRELOAD bash "$here/suite/make_pdf.sh" "$pdf" "$pages" || { pdf=""; return 1; }
}

# workload_cmd WORKLOAD ARGS DIR: the command line in CMD (false when gs has no document).
workload_cmd() {
    local w=$1 wargs=${2//N/$n} d=$3
    if [[ $w == gs ]]; then
        need_pdf || return 1
        CMD=(gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=ppmraw -r30 -sOutputFile="$d/page.ppm" "$pdf")
    else
        # shellcheck disable=SC2206
        CMD=("$bindir/${W_BIN[$w]}" $wargs)
    fi
}

# run_one WORKLOAD ALLOCATOR ARGS: runs it in a fresh directory; sets R_STATUS, R_LINE
# (the tab-separated measurements) and R_CHECK.
run_one() {
    local w=$1 a=$2 wargs=$3 d
    d=$work/run/$w.$a.$RANDOM$RANDOM
    mkdir -p "$d"
    workload_cmd "$w" "$wargs" "$d" || { R_STATUS=fail R_CHECK="" R_LINE=""; return; }
    local cmd=("${CMD[@]}")
    local load t0 t1 rc
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$EPOCHREALTIME
    local ev=()
    read -r -a ev <<<"${aenv[$a]:-}"
    (cd "$d" && timeout "$timeout_s" /usr/bin/time -f '%U %S %M %R %F %w %c' -o "$d/time" \
        env "${ev[@]}" LD_PRELOAD="${lib[$a]}" "${cmd[@]}" >"$d/out" 2>"$d/err")
    rc=$?
    t1=$EPOCHREALTIME
    local tl
    tl=$(grep -E '^[0-9.]+ [0-9.]+ [0-9]+' "$d/time" | tail -n 1)
    if [[ $w == gs ]]; then
        R_CHECK=$( ((rc == 0)) && [[ -s $d/page.ppm ]] && echo "ppm md5 $(md5sum <"$d/page.ppm" | cut -d' ' -f1)")
    else
        R_CHECK=$(grep -m1 '^check:' "$d/out" | sed 's/^check: //')
    fi
    local internal
    internal=$(grep -m1 '^time:' "$d/out" | awk '{ print $2 }')
    if ((rc == 0)) && [[ -n $R_CHECK && -n $tl ]]; then
        R_STATUS=ok
    else
        R_STATUS=fail
        echo "suite.sh: $w under $a failed (exit $rc): $(grep -m2 -E 'FAIL|slabcache:|rror' "$d/err" | tr '\n' ' ')" >&2
    fi
    local wall
    wall=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.4f", b - a }')
    # shellcheck disable=SC2086
    set -- ${tl:-0 0 0 0 0 0 0}
    R_LINE=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$wall" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$load" "$internal")
    rm -rf "$d"
}

# ---------------------------------------------------------------- smoke test
if ((smoke)); then
    pass=0 fail=0
    for w in "${selected[@]}"; do
        ref=""
        for a in "${allocs[@]}"; do
            run_one "$w" "$a" "${W_SMOKE[$w]}"
            if [[ $R_STATUS != ok ]]; then
                echo "FAILED: $w under $a" >&2
                fail=$((fail + 1))
                continue
            fi
            if [[ $a == glibc ]]; then
                ref=$R_CHECK
            elif [[ -n $ref && $R_CHECK != "$ref" ]]; then
                echo "FAILED: $w under $a: check '$R_CHECK' differs from glibc's '$ref'" >&2
                fail=$((fail + 1))
                continue
            fi
            pass=$((pass + 1))
        done
    done
    echo "suite smoke: $pass passed, $fail failed (${allocs[*]})"
    ((fail == 0))
    exit
fi

# ---------------------------------------------------------------- the run
[[ -n $out ]] || out=$(mktemp -d "${TMPDIR:-/tmp}/slabcache-suite-out.XXXXXX")
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)

# ---------------------------------------------------------------- profiles
if ((profile)); then
    command -v perf >/dev/null || { echo "suite.sh: perf not installed (linux-perf)" >&2; exit 1; }
    command -v strace >/dev/null || { echo "suite.sh: strace not installed" >&2; exit 1; }
    p=$out/profile
    mkdir -p "$p"
    # Hardware counters are not always there (VMs): fall back to the software clock.
    events=task-clock,page-faults,minor-faults,major-faults,context-switches,cpu-migrations
    perf stat -e instructions true >/dev/null 2>&1 && events=instructions,cycles,$events
    for w in "${selected[@]}"; do
        for a in "${allocs[@]}"; do
            d=$work/run/$w.$a.profile
            mkdir -p "$d"
            workload_cmd "$w" "${W_ARGS[$w]}" "$d" || continue
            f=$p/$w.$a
            echo "suite.sh: profiling $w under $a" >&2
            read -r -a ev <<<"${aenv[$a]:-}"
            (cd "$d" && perf stat -e "$events" -o "$f.perfstat" env "${ev[@]}" \
                LD_PRELOAD="${lib[$a]}" "${CMD[@]}" >/dev/null 2>"$f.err")
            (cd "$d" && strace -f -c -o "$f.strace" env "${ev[@]}" LD_PRELOAD="${lib[$a]}" \
                "${CMD[@]}" >/dev/null 2>>"$f.err")
            (cd "$d" && perf record -q -e cpu-clock -F 499 --call-graph dwarf,32768 \
                -o "$d/perf.data" env "${ev[@]}" LD_PRELOAD="${lib[$a]}" "${CMD[@]}" \
                >/dev/null 2>>"$f.err")
            perf report -i "$d/perf.data" --no-children --sort dso,sym --stdio -g none \
                --percent-limit 0.5 2>/dev/null | grep -v '^$' >"$f.self"
            perf report -i "$d/perf.data" --no-children --sort sym --stdio \
                -g caller,0.5,callee,function,percent --percent-limit 3 2>/dev/null |
                grep -v '^$' | head -n 400 >"$f.callers"
            rm -rf "$d"
            {
                echo "== $w under $a: ${CMD[*]}"
                grep -E 'task-clock|faults|switches|migrations|instructions|cycles|elapsed' "$f.perfstat"
                echo "-- system calls (strace -c -f), top 8:"
                sed -n '1,2p;3,10p' "$f.strace" | grep -vE '^-+' || true
                echo "-- self time, top 15 (perf record -e cpu-clock):"
                grep -E '^ +[0-9.]+%' "$f.self" | head -n 15
            } >>"$p/summary.txt"
        done
    done
    cat "$p/summary.txt"
    exit 0
fi
# ---------------------------------------------------------------- allocator shares
if ((share)); then
    command -v perf >/dev/null || { echo "suite.sh: perf not installed (linux-perf)" >&2; exit 1; }
    printf '# workload\tallocator\tcpu_s\talloc_pct\tkernel_pct\n' >"$out/share.tsv"
    for w in "${selected[@]}"; do
        for a in "${allocs[@]}"; do
            d=$work/run/$w.$a.share
            mkdir -p "$d"
            workload_cmd "$w" "${W_ARGS[$w]}" "$d" || continue
            echo "suite.sh: perf record $w under $a" >&2
            read -r -a ev <<<"${aenv[$a]:-}"
            (cd "$d" && perf record -q -e cpu-clock -F 999 -o "$d/perf.data" env "${ev[@]}" \
                LD_PRELOAD="${lib[$a]}" "${CMD[@]}" >/dev/null 2>"$d/err") ||
                { echo "suite.sh: $w under $a failed: $(tail -n 2 "$d/err")" >&2; continue; }
            # Samples by DSO and symbol: the allocator's are those of its library (the one
            # preloaded), or for glibc those of the malloc family in libc.
            perf report -i "$d/perf.data" --stdio --sort dso,sym -F overhead,sample,dso,sym \
                2>/dev/null | python3 "$here/suite/share.py" sample "$w" "$a" \
                "$(basename "$(readlink -f "${lib[$a]:-none}")")" >>"$out/share.tsv"
            rm -rf "$d"
        done
    done
    python3 "$here/suite/share.py" table "$out/share.tsv" jemalloc,tcmalloc,mimalloc >"$out/share.md"
    cat "$out/share.md"
    exit 0
fi
raw=$out/raw.tsv
printf '# round\tworkload\tallocator\tstatus\twall\tuser\tsys\trss_kib\tminflt\tmajflt\tvcs\tivcs\tload\tinternal\tcheck\n' >"$raw"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
date=$(date -u '+%Y-%m-%d %H:%M UTC')
# meta.json (python3 writes it: no hand-made JSON escaping)
{
    for w in "${selected[@]}"; do
        wargs=${W_ARGS[$w]//N/$n}
        if [[ $w == gs ]]; then
            c="gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=ppmraw -r30 -sOutputFile=page.ppm doc.pdf (make_pdf.sh doc.pdf $wargs)"
        else
            c="${W_BIN[$w]} $wargs"
        fi
        th=$(( ${W_THREADS[$w]//N/$n} ))
        printf '%s\t%s\t%s\t%s\n' "$w" "${W_PAT[$w]}" "$c" "$th"
    done
} >"$work/workloads.tsv"
for a in "${allocs[@]}"; do printf '%s\t%s\n' "$a" "${lib[$a]}${aenv[$a]:+ (${aenv[$a]})}"; done >"$work/allocs.tsv"
SUITE_COMMAND="bash benchmarks/suite.sh${args:+ $args}" SUITE_DATE=$date SUITE_ROUNDS=$rounds \
SUITE_N=$n SUITE_LOAD_BEFORE=$load_before \
SUITE_PEERS=$(dpkg-query -W -f='${Package} ${Version}; ' libc6 libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 ghostscript 2>/dev/null | sed 's/; $//') \
python3 - "$work/workloads.tsv" "$work/allocs.tsv" "$out/meta.json" <<'EOF'
import json, os, platform, subprocess, sys
wl = [dict(zip(("name", "pattern", "command", "threads"), l.rstrip("\n").split("\t")))
      for l in open(sys.argv[1]) if l.strip()]
for w in wl:
    w["threads"] = int(w["threads"])
al = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
e = os.environ
meta = {"command": e["SUITE_COMMAND"], "date": e["SUITE_DATE"], "rounds": int(e["SUITE_ROUNDS"]),
        "n": int(e["SUITE_N"]), "nproc": os.cpu_count(), "cpu": cpu,
        "kernel": platform.system() + " " + platform.release(), "peers": e["SUITE_PEERS"],
        "load_before": e["SUITE_LOAD_BEFORE"],
        "workloads": wl, "allocators": [a for a, _ in al],
        "libraries": {a: p for a, p in al}}
json.dump(meta, open(sys.argv[3], "w"), indent=1)
EOF
echo "suite.sh: ${#selected[@]} workloads x ${#allocs[@]} allocators x $rounds round(s) -> $out" >&2
for ((r = 1; r <= rounds; r++)); do
    for w in "${selected[@]}"; do
        # rotate the allocator order every round (and per workload), so no allocator always
        # runs first or right after a particular other one
        k=$(( (r - 1 + ${#w}) % ${#allocs[@]} ))
        order=("${allocs[@]:k}" "${allocs[@]:0:k}")
        for a in "${order[@]}"; do
            run_one "$w" "$a" "${W_ARGS[$w]}"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$a" "$R_STATUS" "$R_LINE" "$R_CHECK" >>"$raw"
            printf 'round %d %-15s %-10s %s %ss\n' "$r" "$w" "$a" "$R_STATUS" "${R_LINE%%$'\t'*}" >&2
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$out/meta.json" "$load_after" <<'EOF'
import json, sys
meta = json.load(open(sys.argv[1]))
meta["load_after"] = sys.argv[2]
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
python3 "$here/suite/report.py" "$out" || exit 1
if ((docs)); then
    cp "$out/suite.md" "$repo/docs/benchmarks-suite-results.md"
    cp "$out/suite.json" "$repo/docs/bench_suite.json"
    cp "$out/suite.svg" "$repo/docs/bench_suite.svg"
    echo "suite.sh: copied to docs/benchmarks-suite-results.md, docs/bench_suite.json, docs/bench_suite.svg" >&2
fi
echo "suite.sh: results in $out" >&2
