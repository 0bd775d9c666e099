#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/pool_bench.sh - build and run the pool benchmarks (docs/pools.md).
#
#   bash benchmarks/pool_bench.sh [--quick] [--reps N] [--depths 16,18] [--only binarytrees|gcbench]
#                                 [--json PATH]
#
# binary-trees (kmem_pool, APR, talloc, malloc peers, kmem_cache) and GCBench (Boehm GC,
# kmem_pool); needs libapr1-dev, libtalloc-dev, libgc-dev (tools/setup.sh).  Markdown on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bazel build --config=opt //benchmarks:binarytrees //benchmarks:gcbench >&2
exec python3 benchmarks/pool_bench.py bazel-bin/benchmarks/binarytrees bazel-bin/benchmarks/gcbench "$@"
