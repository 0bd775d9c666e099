#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/malloc/startup_footprint_test.sh LIBSLABCACHE - the library's static storage is laid
# out for short-lived processes: every table of a page or more sits in .lbss
# (HEAP_LARGE_BSS, heap/heap.h), after .bss, so the small variables that every process
# writes at its first malloc share a few pages instead of lying between the tables (a page
# fault each).  Checked on the section headers: .bss holds only small variables, and the
# tables are in .lbss.
set -u
lib=$(realpath "$1")
max_bss=$((16 * 1024)) # a few pages: the small variables of every layer
fail=0
sections=$(readelf -SW "$lib") || { echo "FAIL: readelf $lib"; exit 1; }
size_of() { # the size of section $1 in bytes, or nothing
    awk -v s="$1" '{ for (i = 1; i < NF; i++) if ($i == s) { print strtonum("0x" $(i + 4)); exit } }' \
        <<<"$sections"
}
bss=$(size_of .bss)
lbss=$(size_of .lbss)
if [[ -z $bss ]]; then
    echo "FAIL: no .bss in $lib"
    fail=1
elif ((bss > max_bss)); then
    echo "FAIL: .bss is $bss bytes (at most $max_bss): a table of a page or more without HEAP_LARGE_BSS?"
    nm -S --size-sort "$lib" | awk '$3 ~ /^[bB]$/' | tail -5
    fail=1
fi
if [[ -z $lbss ]] || ((lbss < 1024 * 1024)); then
    echo "FAIL: .lbss is '${lbss}' bytes: the tables (the 8 MiB granule map among them) are not in it"
    fail=1
fi
((fail)) || echo "PASS: .bss $bss bytes, .lbss $lbss bytes"
exit $fail
