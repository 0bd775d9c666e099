#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/programs/run.sh - real, unmodified programs under LD_PRELOAD=libslabcache.so.
#
#   bash tests/programs/run.sh [--quick] [--strict] [--so PATH] [--only a,b,...] [--keep]
#   bazel test //tests/programs:programs_test          (the --quick run; tagged manual)
#
# Each program runs twice on the same deterministic input, once with glibc's malloc and once
# with slabcache preloaded; its stdout and exit status must be identical, and the preloaded run
# must print no "slabcache:" report on stderr.  Programs (names for --only):
#   python  Python 3: threads, a thread pool, subprocesses, big dicts/lists/strings
#   redis   redis-server under redis-benchmark, then a deterministic data set, BGSAVE (fork),
#           DEBUG RELOAD, DEBUG DIGEST (Debian's redis is linked with jemalloc)
#   sqlite  sqlite3 building and querying a million-row table (200k with --quick)
#   gcc     gcc -O2 compiling a large generated C file (md5 of the object)
#   git     git init/add/commit/log/grep/gc on thousands of files
#   lua     lua5.4: tables, strings, closures, garbage collection
#   gawk    gawk: associative arrays over a generated text
#   xz      xz -T2 compress + decompress (md5 of the compressed stream)
#   zstd    zstd -T2 compress + decompress (md5 of the compressed stream)
# Missing programs are installed with apt-get (quietly) when possible, else skipped (SKIP);
# --strict (what the Bazel test passes) counts a skipped program as a failure.
# Exit status: 0 when nothing failed.  --quick keeps the whole run under 3 minutes.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
quick=0
keep=0
strict=0
so=""
only=""
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --keep) keep=1 ;;
        --strict) strict=1 ;;
        --so) so=$2; shift ;;
        --only) only=$2; shift ;;
        -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ -z $so ]]; then
    so=$repo/bazel-bin/slab/libslabcache.so
    if [[ ! -f $so ]]; then
        (cd "$repo" && bazel build -c opt //slab:libslabcache.so >&2) || exit 1
    fi
fi
so=$(readlink -f "$so")
[[ -f $so ]] || { echo "run.sh: no library at $so" >&2; exit 1; }

# shellcheck source=tests/programs/programs.sh
source "$here/programs.sh"
programs_install

work=$(mktemp -d "${TMPDIR:-/tmp}/slabcache-programs.XXXXXX")
cleanup() {
    ((keep)) || rm -rf "$work"
}
trap cleanup EXIT
programs_setup "$work" "$quick"

# ---------------------------------------------------------------- driver
pass=0 fail=0 skip=0
for p in "${PROGRAMS[@]}"; do
    if [[ -n $only && ",$only," != *",$p,"* ]]; then continue; fi
    if ! command -v "${PROGRAM_TOOL[$p]}" >/dev/null 2>&1; then
        echo "SKIP  $p (${PROGRAM_TOOL[$p]} not installed)"
        skip=$((skip + 1))
        continue
    fi
    for mode in glibc slabcache; do
        d=$work/$mode/$p
        mkdir -p "$d"
        pre=""
        [[ $mode == slabcache ]] && pre=$so
        start=$(date +%s.%N)
        (cd "$d" && LD_PRELOAD=$pre "prog_$p" >"$d.out" 2>"$d.err"; echo "exit $?" >>"$d.out")
        end=$(date +%s.%N)
        printf -v "t_$mode" '%s' "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
    done
    g=$work/glibc/$p s=$work/slabcache/$p
    why=""
    if ! cmp -s "$g.out" "$s.out"; then
        why="output differs"
    elif grep -q 'slabcache:' "$s.err"; then
        why="slabcache reported: $(grep -m1 'slabcache:' "$s.err")"
    elif [[ ! -s $g.out || $(wc -l <"$g.out") -lt 2 ]]; then
        why="no output"
    fi
    if [[ -z $why ]]; then
        echo "PASS  $p (glibc ${t_glibc}s, slabcache ${t_slabcache}s)"
        pass=$((pass + 1))
    else
        echo "FAIL  $p: $why"
        diff "$g.out" "$s.out" | head -20 | sed 's/^/      /'
        sed 's/^/      stderr: /' "$s.err" | tail -5
        fail=$((fail + 1))
    fi
done
echo "programs: $pass passed, $fail failed, $skip skipped"
((keep)) && echo "outputs kept in $work"
((fail == 0)) && ! ((strict && skip))
