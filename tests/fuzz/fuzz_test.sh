#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/fuzz/fuzz_test.sh - build the libFuzzer target with clang-14 from the sources (the
# runfiles link back into the source tree) and run it for FUZZ_SECONDS (default 30) over a
# copy of the corpus.  Skips (passes with a note) when clang-14 or its fuzzer runtime is absent.
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
src=$(readlink -f "$here/fuzz_slab.cc")
root=$(cd "$(dirname "$src")/../.." && pwd)
clang=$(command -v clang-14 || command -v clang || true)
clangxx=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z "$clang" ]]; then
    echo "fuzz_test: clang not installed (tools/setup.sh adds clang-14); skipped"
    exit 0
fi
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/fuzz.XXXXXX")
cflags=(-w -g -O1 -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE -I"$root")
objs=()
for f in "$root"/heap/*.c "$root"/buddy/buddy.c "$root"/slab/cache.c "$root"/slab/magazine.c \
         "$root"/slab/slab.c "$root"/slab/debug.c "$root"/slab/report.c "$root"/slab/ptrset.c \
         "$root"/slab/stats.c "$root"/slab/leak.c "$root"/slab/heapmap.c "$root"/slab/kmalloc.c; do
    o="$work/$(basename "$(dirname "$f")")_$(basename "$f" .c).o"
    "$clang" -std=c11 "${cflags[@]}" -c "$f" -o "$o"
    objs+=("$o")
done
"$clangxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address -I"$root" "$src" "${objs[@]}" \
    -o "$work/fuzz_slab" -pthread -ldl -latomic
mkdir -p "$work/corpus"
cp "$root"/tests/fuzz/corpus/* "$work/corpus/" 2>/dev/null || true
ASAN_OPTIONS=detect_leaks=0 "$work/fuzz_slab" -max_total_time="${FUZZ_SECONDS:-30}" \
    -max_len=4096 -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 20
