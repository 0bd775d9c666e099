#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/compare.sh - your own program under glibc, jemalloc, tcmalloc, mimalloc and
# slabcache, in one run.
#
#   bash benchmarks/compare.sh [--runs N] [--warmup N] [--out DIR] [--so PATH]
#                              [--allocators a,b,...] -- CMD ARGS...
#
#   --runs N        measured runs per allocator (default 5), alternating: each run starts the
#                   command once under every allocator, in an order that rotates
#   --warmup N      runs first, not counted (default 1)
#   --out DIR       where compare.json, compare.svg and output/ (the last run's stdout and
#                   stderr per allocator) go; default: a new directory under $TMPDIR
#   --so PATH       the slabcache library to preload (default: build //slab:libslabcache.so
#                   with bazel --config=opt; an installed one: PREFIX/lib/libslabcache.so.0)
#   --allocators    a subset of glibc,jemalloc,tcmalloc,mimalloc,slabcache
#
# Prints a table: wall time (median, min-max), peak RSS of the process tree (median,
# min-max), both as ratios to glibc, user and system time, exit status, and whether the
# output was glibc's; then slabcache against the best of the three peers.  The command's
# stdin is /dev/null (sh -c 'cmd <file' for input).  Peers are Debian packages
# (libjemalloc2, libtcmalloc-minimal4, libmimalloc2.0); a missing one is left out, saying
# so.  Exit status: 2 for bad arguments, 1 when the command failed in some run, else 0.
# The measuring is benchmarks/compare.py.
set -euo pipefail
for arg in "$@"; do
    [[ $arg == -- ]] && break
    if [[ $arg == -h || $arg == --help ]]; then
        awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"
        exit 0
    fi
done
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed (apt-get install python3)" >&2; exit 1; }
exec python3 "$(dirname "${BASH_SOURCE[0]}")/compare.py" "$@"
