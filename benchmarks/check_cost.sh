#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/check_cost.sh - the cost of slabcache's always-on free-time checks.
#
#   bash benchmarks/check_cost.sh [REPS] [--quick]   (builds with -c opt; default 7 repetitions)
#
# Runs check_cost (checks on, as shipped) and check_cost_unchecked (checks compiled out)
# alternately, REPS times each, and prints a markdown table: median ns per alloc+free of
# each, min-max, and checked / unchecked.  The issue's target is <= 1.10.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
reps=${1:-7}
quick=${2:-}
bazel=${SLABCACHE_BAZEL:-bazel}
$bazel build -c opt --noshow_progress //benchmarks:check_cost //benchmarks:check_cost_unchecked >&2
bin=$($bazel info -c opt bazel-bin 2>/dev/null)/benchmarks
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 0; r < reps; r++)); do
    printf '\r[%d/%d] check_cost' $((r + 1)) "$reps" >&2
    if ((r % 2)); then order="check_cost_unchecked check_cost"; else order="check_cost check_cost_unchecked"; fi
    for b in $order; do "$bin/$b" $quick >>"$out/$b"; done
done
printf '\n' >&2
python3 - "$out/check_cost" "$out/check_cost_unchecked" <<'PY'
import statistics, sys
def load(path):
    d = {}
    for line in open(path):
        name, ns = line.split()
        d.setdefault(name, []).append(float(ns))
    return d
on, off = load(sys.argv[1]), load(sys.argv[2])
print("| workload | checks on (ns) | min-max | checks off (ns) | min-max | on / off |")
print("|---|---:|---:|---:|---:|---:|")
for name in on:
    a, b = statistics.median(on[name]), statistics.median(off[name])
    print(f"| {name} | {a:.2f} | {min(on[name]):.2f}-{max(on[name]):.2f} | {b:.2f} | "
          f"{min(off[name]):.2f}-{max(off[name]):.2f} | {a / b:.2f}x |")
PY
