#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke test of the benchmark binaries (not a benchmark: one repetition, quick sizes):
# every workload runs for kmem_cache and the floor, the tables and the JSON come out, and
# mem_bench's child processes report.  Peers missing on the machine are allowed.
set -euo pipefail
cache_bench=$1
mem_bench=$2
metadata_cost=$3
out=${TEST_TMPDIR:-$(mktemp -d)}
pass=0
fail=0
check() { # check NAME COMMAND...
    if "${@:2}"; then pass=$((pass + 1)); else echo "FAILED: $1" >&2; fail=$((fail + 1)); fi
}

"$cache_bench" --quick --reps 1 --json "$out/cache.json" >"$out/cache.md" 2>"$out/cache.err"
for w in lifo "batch cold" "batch warm" random mixed spsc bulk64 "scale 1T" "scale 2T/1T" tree; do
    # the kmem_cache column (the first) holds a number for every workload
    check "kmem_cache measured on $w" grep -Eq "^\| $w \| [^|]+ \| [0-9]" "$out/cache.md"
done
check "kmalloc column" grep -q '| kmalloc |' "$out/cache.md"
check "--allocators" "$cache_bench" --quick --reps 1 --only lifo --allocators floor,glibc \
    --json "$out/alloc.json" >/dev/null 2>&1
check "--allocators selects" test "$(grep -c '"workload": ' "$out/alloc.json")" -eq 2
check "targets table" grep -q 'Targets for kmem_cache' "$out/cache.md"
check "json results" grep -q '"allocator": "kmem_cache", "kind": "slab", "median": [0-9]' "$out/cache.json"
check "--only" "$cache_bench" --quick --reps 1 --only lifo --json "$out/lifo.json" >/dev/null 2>&1
check "--only selects" test "$(grep -c '"workload": ' "$out/lifo.json")" -ge 2
check "--only rejects unknown" bash -c "! '$cache_bench' --only nosuch >/dev/null 2>&1"

"$mem_bench" --quick --only 117,4096 --allocators kmem_cache,kmalloc,floor,glibc \
    --json "$out/mem.json" >"$out/mem.md" 2>/dev/null
# kmem_cache, kmalloc, floor, glibc: the first four columns
check "mem 117 B" grep -Eq '^\| 117 \|( [0-9]\.[0-9]{3} \|){4}' "$out/mem.md"
check "mem json" grep -q '"allocator": "kmem_cache", "size": 4096' "$out/mem.json"
check "mem --only sizes" bash -c "! grep -q '\"size\": 16,' '$out/mem.json'"

# metadata_cost exits 1 if a model check refuses a live object; each mode has four rows
# (two sizes, two kinds of caller).
check "metadata_cost runs" bash -c "'$metadata_cost' --quick --reps 1 >'$out/meta.md'"
for m in none header oneline coloured inobject; do
    check "metadata_cost $m" test "$(grep -Ec "^\| [0-9]+ \| $m \| [0-9.]+ \| [0-9.]+x \|$" "$out/meta.md")" -eq 4
done

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
