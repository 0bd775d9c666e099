#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every slabcache test target (cc_test, sh_test, ...) under three
# configurations and prints one final line "N passed, N failed".
#
#   bash tools/test.sh                 opt, asan, tsan over //...
#   bash tools/test.sh --quick         default config (-O0 -g) only
#   bash tools/test.sh [--quick] //heap/... //slab:kmalloc_test
#
# Tests tagged "no_asan" / "no_tsan" are skipped under that config.
# Counts are test targets summed over configs; a target that fails to build
# counts as failed, and so does a config whose build breaks before any test
# runs. Full Bazel logs are kept in $SLABCACHE_TEST_LOGDIR (default: a fresh
# directory under /tmp), printed when something fails.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

configs=(opt asan tsan)
targets=()
for arg in "$@"; do
    case "$arg" in
        --quick) configs=(default) ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) targets+=("$arg") ;;
    esac
done
((${#targets[@]} > 0)) || targets=(//...)

if ! bash tools/setup.sh; then
    echo "test: tools/setup.sh failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# SLABCACHE_BAZEL overrides the Bazel command line, e.g. a private cache:
# SLABCACHE_BAZEL="bazel --output_base=/tmp/ob" bash tools/test.sh
# shellcheck disable=SC2206
bazel_cmd=(${SLABCACHE_BAZEL:-bazel})

logdir=${SLABCACHE_TEST_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/slabcache-test.XXXXXX")}
mkdir -p "$logdir"

# See .bazelrc: gcc's TSan needs mmap randomisation of at most 28 bits.
tsan_extra=()
rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)
if ((rnd_bits > 28)) && setarch "$(uname -m)" -R true 2>/dev/null; then
    tsan_extra=(--run_under="setarch $(uname -m) -R")
fi

total_pass=0
total_fail=0
for config in "${configs[@]}"; do
    flags=(--keep_going --test_summary=short)
    case "$config" in
        default) ;;
        opt) flags+=(--config=opt) ;;
        asan) flags+=(--config=asan --test_tag_filters=-no_asan) ;;
        tsan) flags+=(--config=tsan --test_tag_filters=-no_tsan "${tsan_extra[@]}") ;;
    esac
    log="$logdir/$config.log"
    echo "== $config: bazel test ${flags[*]} ${targets[*]}"
    start=$SECONDS
    "${bazel_cmd[@]}" test "${flags[@]}" -- "${targets[@]}" >"$log" 2>&1
    rc=$?
    # Summary lines look like "//pkg:name   (cached) PASSED in 0.1s",
    # "//pkg:name   FAILED TO BUILD", "//pkg:name   NO STATUS", ...
    results=$(grep -E '^(//|@)[^ ]+ +(\(cached\) )?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|INCOMPLETE)' "$log")
    pass=$(grep -cE ' (\(cached\) )?PASSED( in|$)' <<<"$results")
    fail=$(grep -vcE ' (\(cached\) )?PASSED( in|$)|^$' <<<"$results")
    # 0 = all passed, 3 = some tests failed, 4 = no test targets matched.
    # Anything else (1 build failed, 2 bad flags, ...) without a failed
    # target to show for it counts as one failure for the config.
    if ((rc != 0 && rc != 3 && rc != 4 && fail == 0)); then
        fail=1
        results+=$'\n'"($config: bazel exited with status $rc before running all tests)"
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    echo "   $config: $pass passed, $fail failed ($((SECONDS - start))s)"
    if ((fail > 0)); then
        grep -vE ' (\(cached\) )?PASSED( in|$)|^$' <<<"$results" | sed 's/^/   /'
        grep -E '^ERROR:' "$log" | head -n 15 | sed 's/^/   /'
        echo "   full log: $log"
    fi
done

echo "$total_pass passed, $total_fail failed"
((total_fail == 0 && total_pass > 0))
