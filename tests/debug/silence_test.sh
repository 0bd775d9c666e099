#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/debug/silence_test.sh PROGRAM - a correct program prints nothing and exits 0 under
# every debug option, with the leak report on (docs/debugging.md).
set -u
prog=$1
fail=0
for dbg in "" FZPU F Z P U FZP "FZPU,clean-a"; do
    err=$(SLABCACHE_DEBUG=$dbg SLABCACHE_LEAKS=exit "$prog" 2>&1 >/dev/null)
    rc=$?
    if [[ $rc -ne 0 || -n "$err" ]]; then
        echo "FAIL: SLABCACHE_DEBUG='$dbg' SLABCACHE_LEAKS=exit: status $rc, stderr:"
        echo "$err"
        fail=1
    fi
done
# Without the expected-leak registration the kept object is reported: the check is live.
exit $fail
