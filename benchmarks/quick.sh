#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The quick benchmark: cache_bench --quick then mem_bench --quick (both well under a minute).
#   bazel run -c opt //benchmarks:quick [-- extra cache_bench options, e.g. --only lifo]
# Bazel passes the two binaries' runfile paths first.
set -euo pipefail
cache_bench=$1
mem_bench=$2
shift 2
"$cache_bench" --quick "$@"
echo
"$mem_bench" --quick
