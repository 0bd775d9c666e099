#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install prerequisites, build everything optimised, then run
# the demo (//tools:demo) and the quick benchmark (//benchmarks:quick), each
# only if it exists yet.
#
#   sudo bash tools/main.sh            (or as root: bash tools/main.sh)
#
# Exits non-zero if any step fails; later steps still run where they can.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

# SLABCACHE_BAZEL overrides the Bazel command line, e.g. a private cache:
# SLABCACHE_BAZEL="bazel --output_base=/tmp/ob" bash tools/main.sh
# shellcheck disable=SC2206
bazel_cmd=(${SLABCACHE_BAZEL:-bazel})

status=0
banner() { printf '\n==== %s ====\n' "$*"; }

banner "setup: Debian packages (tools/setup.sh)"
if ! bash tools/setup.sh; then
    echo "main: tools/setup.sh failed; run it as root" >&2
    exit 1
fi
echo "ok"

# --noshow_progress and an info filter keep Bazel's own chatter out of the
# way; errors and warnings still show.
quiet=(--noshow_progress "--ui_event_filters=-info,-stdout")

banner "build: bazel build --config=opt //..."
start=$SECONDS
if "${bazel_cmd[@]}" build "${quiet[@]}" --keep_going --config=opt //... 2>&1; then
    echo "ok ($((SECONDS - start))s)"
else
    echo "main: optimised build failed (see errors above)" >&2
    status=1
fi

for target in //tools:demo //benchmarks:quick; do
    banner "run: $target (-c opt)"
    if ! "${bazel_cmd[@]}" query "$target" >/dev/null 2>&1; then
        echo "($target does not exist yet; skipped)"
        continue
    fi
    start=$SECONDS
    if "${bazel_cmd[@]}" run "${quiet[@]}" --config=opt "$target"; then
        echo "ok: $target ($((SECONDS - start))s)"
    else
        echo "main: $target failed" >&2
        status=1
    fi
done

if ((status == 0)); then banner "main: done"; else banner "main: FAILED"; fi
exit "$status"
