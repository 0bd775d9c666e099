#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/scripts_test.sh - the benchmark scripts as a user meets them, on tiny inputs:
#   compare.sh: a 16 MiB command (compare_probe), 2 runs: the table has every allocator
#     (peers that are installed), glibc at 1.00x, peak RSS above what the command holds,
#     each column ran under its own malloc (the probe's stderr), the same output; the JSON
#     parses and agrees with the table; the SVG is well-formed with one bar per allocator;
#     bad arguments, a library that cannot be preloaded and a failing command give
#     messages and status 2, 1 and 1;
#   programs.sh and run_all.sh refuse bad arguments (--only myprog: status 2, no empty table);
#   plot.sh reads compact JSON (json.dumps without spaces) and writes the three plots;
#   suite/share.py (suite.sh --share) counts a perf report's samples by allocator.
# Usage (Bazel passes them): scripts_test.sh LIBSLABCACHE_SO COMPARE_PROBE
set -euo pipefail

so=$(readlink -f "$1")
probe=$(readlink -f "$2")
work=${TEST_TMPDIR:-$(mktemp -d)}/scripts
rm -rf "$work"
mkdir -p "$work/tmp"
export TMPDIR=$work/tmp # default output directories land here, not in /tmp
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# expect_status N WHAT CMD...: CMD must exit N and print "SCRIPT: ..." on stderr.
expect_status() {
    local want=$1 what=$2 rc=0 err
    shift 2
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    ((rc == want)) || fail "$what: exit status $rc, expected $want ($err)"
    grep -qE '^[a-z_]+\.sh: ' <<<"$err" || fail "$what: no message on stderr ($err)"
}

step "compare.sh: bad arguments"
expect_status 2 "no command" bash benchmarks/compare.sh --so "$so"
expect_status 2 "--runs 0" bash benchmarks/compare.sh --runs 0 --so "$so" -- true
expect_status 2 "--runs x" bash benchmarks/compare.sh --runs x --so "$so" -- true
expect_status 2 "unknown option" bash benchmarks/compare.sh --frobnicate --so "$so" -- true
expect_status 2 "unknown command" bash benchmarks/compare.sh --so "$so" -- no-such-command-here
expect_status 2 "unknown allocator" bash benchmarks/compare.sh --allocators glibc,ptmalloc9 -- true
expect_status 2 "missing --so" bash benchmarks/compare.sh --so "$work/none.so" -- true
echo "not an ELF file" >"$work/not-a-library.so"
expect_status 1 "a library that cannot be preloaded" bash benchmarks/compare.sh --runs 1 \
    --allocators glibc,slabcache --so "$work/not-a-library.so" -- true
expect_status 1 "a failing command" bash benchmarks/compare.sh --runs 1 --warmup 0 \
    --allocators glibc,slabcache --so "$so" --out "$work/fails" -- sh -c 'exit 3'

step "compare.sh --runs 2 -- compare_probe"
bash benchmarks/compare.sh --runs 2 --warmup 0 --so "$so" --out "$work/cmp" -- "$probe" \
    >"$work/table" 2>"$work/stderr" || fail "compare.sh failed: $(cat "$work/stderr")"
cat "$work/table"
python3 - "$work/cmp" "$work/table" "$so" <<'PY'
import json, os, sys
import xml.etree.ElementTree as ET

out, table, so = sys.argv[1:]
def fail(msg):
    sys.exit(f"FAIL: {msg}")

doc = json.load(open(os.path.join(out, "compare.json")))
names = [a["name"] for a in doc["allocators"]]
want = ["glibc"] + [p for p, lib in (("jemalloc", "libjemalloc.so.2"),
        ("tcmalloc", "libtcmalloc_minimal.so.4"), ("mimalloc", "libmimalloc.so.2"))
        if os.path.exists("/usr/lib/x86_64-linux-gnu/" + lib)] + ["slabcache"]
if names != want:
    fail(f"allocators {names}, expected {want}")
rows = {line.split("|")[1].strip(): line for line in open(table) if line.startswith("| ")}
for a in doc["allocators"]:
    n = a["name"]
    if len(a["time_s"]["samples"]) != 2 or len(a["peak_rss_kib"]["samples"]) != 2:
        fail(f"{n}: not 2 samples")
    if not a["time_s"]["min"] <= a["time_s"]["median"] <= a["time_s"]["max"]:
        fail(f"{n}: median outside min-max")
    if a["peak_rss_kib"]["median"] < 16 * 1024:
        fail(f"{n}: peak RSS {a['peak_rss_kib']['median']} KiB, below the 16 MiB the probe holds")
    if a["exit_codes"] != [0]:
        fail(f"{n}: exit codes {a['exit_codes']}")
    if n != "glibc" and a["output_same_as_glibc"] is not True:
        fail(f"{n}: output differs from glibc's")
    err = open(os.path.join(out, "output", f"{n}.1.err")).read()
    lib = a["library"] or "libc.so"
    if f"malloc from " not in err or (os.path.basename(lib) not in err):
        fail(f"{n}: the probe's malloc came from elsewhere: {err.strip()} (wanted {lib})")
    if n not in rows:
        fail(f"{n}: not in the printed table")
    median = f"{a['time_s']['median']:.3f}"
    if median not in rows[n]:
        fail(f"{n}: the table does not show the JSON's median {median}: {rows[n]}")
glibc = doc["allocators"][0]
if glibc["time_vs_glibc"] != 1.0 or "1.00x" not in rows["glibc"]:
    fail("glibc is not 1.00x of itself")
s = doc["allocators"][-1]
if abs(s["time_vs_glibc"] - s["time_s"]["median"] / glibc["time_s"]["median"]) > 1e-9:
    fail("slabcache's ratio to glibc is not median / median")
if doc["slabcache_vs_best_peer"] is None and len(names) > 2:
    fail("no slabcache-against-best-peer line")
svg = ET.parse(os.path.join(out, "compare.svg")).getroot()
bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect")][1:]  # the first is the background
if len(bars) != 2 * len(names):
    fail(f"the SVG has {len(bars)} bars, expected {2 * len(names)}")
print(f"compare.json, the table and compare.svg agree ({len(names)} allocators)")
PY

step "programs.sh and run_all.sh: bad arguments"
expect_status 2 "programs.sh --only myprog" bash benchmarks/programs.sh --so "$so" --only myprog
expect_status 2 "programs.sh --reps 0" bash benchmarks/programs.sh --so "$so" --reps 0
expect_status 2 "programs.sh --bogus" bash benchmarks/programs.sh --bogus
expect_status 2 "run_all.sh --bogus" bash benchmarks/run_all.sh --bogus
expect_status 2 "run_all.sh --reps" bash benchmarks/run_all.sh --reps
expect_status 2 "run_all.sh --reps 0" bash benchmarks/run_all.sh --reps 0

step "plot.sh reads compact JSON"
cat >"$work/cache.json" <<'JSON'
{"machine":{"nproc":2},"results":[{"workload":"lifo","metric":"lifo","unit":"ns/obj","allocator":"kmem_cache","median":2.5,"min":2.4,"max":2.7,"ratio_best_peer":0.8},{"workload":"lifo","metric":"lifo","unit":"ns/obj","allocator":"glibc","median":7.5,"min":7.1,"max":8.0,"ratio_best_peer":2.4},{"workload":"lifo","metric":"lifo","unit":"ns/obj","allocator":"tcmalloc","median":3.1,"min":3.0,"max":3.3,"ratio_best_peer":1.0},{"workload":"batch","metric":"cold","unit":"ns/obj","allocator":"kmem_cache","median":20,"min":19,"max":22,"ratio_best_peer":0.7},{"workload":"batch","metric":"cold","unit":"ns/obj","allocator":"glibc","median":29,"min":28,"max":30,"ratio_best_peer":null}]}
JSON
cat >"$work/mem.json" <<'JSON'
{"live_objects":100000,"results":[{"allocator":"kmem_cache","size":16,"live_ratio":1.01},{"allocator":"glibc","size":16,"live_ratio":2.0},{"allocator":"kmem_cache","size":117,"live_ratio":1.03},{"allocator":"glibc","size":117,"live_ratio":1.09}]}
JSON
bash benchmarks/plot.sh "$work/cache.json" "$work/mem.json" "$work/plots" >/dev/null ||
    fail "plot.sh failed on compact JSON"
for f in bench_lifo bench_ratio bench_mem; do
    [[ -s $work/plots/$f.svg ]] || fail "plot.sh wrote no $f.svg"
    python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$work/plots/$f.svg" ||
        fail "$f.svg is not well-formed"
done
grep -q 'tcmalloc' "$work/plots/bench_lifo.svg" || fail "bench_lifo.svg lacks the tcmalloc bar"
grep -q 'batch-cold' "$work/plots/bench_ratio.svg" || fail "bench_ratio.svg lacks batch-cold"
grep -q 'kmem_cache' "$work/plots/bench_mem.svg" && grep -q 'glibc' "$work/plots/bench_mem.svg" ||
    fail "bench_mem.svg lacks an allocator's line"
step "suite/share.py: allocator shares from perf report lines"
# A perf report of 1000 samples: 300 in the preloaded library, 100 in the kernel, 200 in
# libc's malloc functions (counted for glibc only), 400 in the program.
cat >"$work/perf.txt" <<'REPORT'
# Overhead  Samples  Shared Object  Symbol
    30.00%      300  libpeer.so.2.0  [.] mi_free
    10.00%      100  [kernel.kallsyms]  [k] clear_page
    20.00%      200  libc.so.6  [.] _int_malloc
    40.00%      400  workload  [.] main
REPORT
line=$(python3 benchmarks/suite/share.py sample w mimalloc libpeer.so.2.0 <"$work/perf.txt")
[[ $line == $'w\tmimalloc\t1.001\t30.00\t10.00' ]] || fail "share.py sample (peer): '$line'"
line=$(python3 benchmarks/suite/share.py sample w glibc none <"$work/perf.txt")
[[ $line == $'w\tglibc\t1.001\t20.00\t10.00' ]] || fail "share.py sample (glibc): '$line'"
# With no preload, a program's own jemalloc (Debian's redis links it) is its malloc too.
line=$(sed 's/libc.so.6  \[.\] _int_malloc/libjemalloc.so.2  [.] je_malloc/' "$work/perf.txt" |
    python3 benchmarks/suite/share.py sample w glibc none)
[[ $line == $'w\tglibc\t1.001\t20.00\t10.00' ]] || fail "share.py sample (own jemalloc): '$line'"
printf '# h\nw\tmimalloc\t1.0\t40.0\t1.0\nw\ttcmalloc\t2.0\t10.0\t1.0\nw\tslabcache\t1.5\t40.0\t2.0\n' \
    >"$work/share.tsv"
table=$(python3 benchmarks/suite/share.py table "$work/share.tsv" jemalloc,tcmalloc,mimalloc)
# best peer mimalloc (least CPU), floor 1 - 0.40, slabcache's allocator time 1.5 x 0.4 / 0.4
grep -qF '| w | mimalloc (1.00) | 40.0 | 0.600 | 1.50 | 40.0 | 1.50x | 2.0 / 1.0 |' <<<"$table" ||
    fail "share.py table: $table"
grep -qF '**0.600**' <<<"$table" || fail "share.py table: no geomean of the floors: $table"
# 0.6 + 0.4 k = 0.9 at k = 0.75
grep -qF 'takes 0.75x the best' <<<"$table" || fail "share.py table: no k for 0.9x: $table"

echo '{"results": [' >"$work/broken.json"
expect_status 1 "plot.sh on broken JSON" bash benchmarks/plot.sh "$work/broken.json" - "$work/plots"
echo "PASS"
