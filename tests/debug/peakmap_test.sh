#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/debug/peakmap_test.sh LIBSLABCACHE LIBPEAKMAP - tools/libpeakmap.so writes, at exit,
# the heap map, slabinfo and smaps_rollup as they were at the process's peak RSS, and only
# for the process SLABCACHE_PEAKMAP_ONLY names.
set -u
lib=$(realpath "$1")
pm=$(realpath "$2")
out=${TEST_TMPDIR:-/tmp}/peakmap.$$
fail=0
check() { # check FILE TEXT
    grep -qF -- "$2" "$1" || { echo "FAIL: '$2' missing from $1:"; head -40 "$1"; fail=1; }
}
# A dynamically linked program that allocates: awk building a 200 KB string.
run() { LD_PRELOAD="$lib $pm" awk 'BEGIN { for (i = 0; i < 200000; i++) s = s "x"; print length(s) }'; }

rm -f "$out".*
[[ $(SLABCACHE_PEAKMAP=$out run) == 200000 ]] || { echo "FAIL: awk's output changed"; fail=1; }
files=("$out".[0-9]*)
if [[ ${#files[@]} -ne 1 || ! -s ${files[0]} ]]; then
    echo "FAIL: want one picture file, got: ${files[*]}"
    exit 1
fi
f=${files[0]}
check "$f" "peak RSS so far: "
check "$f" "slabcache heap map (pages of 4 KiB; resident = in RAM now, mincore)"
check "$f" " resident  slab of cache kmalloc-"
check "$f" "resident: "
check "$f" "slabinfo - version: 2.1"
check "$f" "Rss:"
# The peak it reports is at least the RSS of a process that held a 200 KB string.
kib=$(sed -n 's/^peak RSS so far: \([0-9]*\) KiB.*/\1/p' "$f")
[[ -n $kib && $kib -gt 200 ]] || { echo "FAIL: peak RSS '$kib' KiB"; fail=1; }

rm -f "$out".*
SLABCACHE_PEAKMAP=$out SLABCACHE_PEAKMAP_ONLY=no-such-program run >/dev/null
if compgen -G "$out.*" >/dev/null; then
    echo "FAIL: SLABCACHE_PEAKMAP_ONLY=no-such-program still wrote $(ls "$out".*)"
    fail=1
fi
SLABCACHE_PEAKMAP=$out SLABCACHE_PEAKMAP_ONLY=awk run >/dev/null
compgen -G "$out.[0-9]*" >/dev/null || { echo "FAIL: SLABCACHE_PEAKMAP_ONLY=awk wrote nothing"; fail=1; }
rm -f "$out".*
exit $fail
