#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/options/preload_test.sh LIBSLABCACHE PROBE OPTIONS_DOC - the option table as a
# program sees it: PROBE (options_probe.c) runs with LIBSLABCACHE preloaded under one
# environment after another.  Rejected values and unknown names are reported once, before
# main; SLABCACHE_VERBOSE=1 lists every variable of the table (OPTIONS_DOC --names) before
# main; and the values the old readers got wrong now do what they say.
set -u
ulimit -c 0 # the abort case must not leave a core file
lib=$(realpath "$1")
probe=$(realpath "$2")
doc=$(realpath "$3")
fail=0
out=${TEST_TMPDIR:-/tmp}/preload.$$

# run ENV... -- ARGS: the probe's stderr in $out, its exit status in $rc.
run() {
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    env -i PATH=/usr/bin:/bin LD_PRELOAD="$lib" "${envs[@]}" "$probe" "$@" 2>"$out" >/dev/null
    rc=$?
}
bad() { echo "FAIL: $*"; echo "--- stderr:"; cat "$out"; echo "---"; fail=1; }
# want_first LINE: the first line of stderr is LINE and it appears once.
want_first() {
    [[ $(head -n 1 "$out") == "$1" ]] || bad "first line is not: $1"
    [[ $(grep -cxF -- "$1" "$out") == 1 ]] || bad "not exactly once: $1"
}
want_line() { grep -qxF -- "$1" "$out" || bad "missing line: $1"; }
want_none() { ! grep -qF -- "$1" "$out" || bad "unexpected: $1"; }
want_rc() { [[ $rc == "$1" ]] || bad "exit status $rc, want $1"; }

# No variables: nothing but the probe's own lines.
run -- ; want_rc 0
[[ $(cat "$out") == $'main\nend' ]] || bad "a clean run printed more than main and end"

# A rejected value: one line, before main, and the default (off: no statistics at exit).
run SLABCACHE_STATS=maybe -- ; want_rc 0
want_first "slabcache: SLABCACHE_STATS=maybe: expected one of off, on, 2, 3, 4, json (off and on also as 0/1, no/yes, false/true); using the default (off)"
want_none "statistics of"
# SLABCACHE_STATS=no used to turn the statistics on.
run SLABCACHE_STATS=no -- ; want_rc 0; want_none "statistics of"
run SLABCACHE_STATS=YES -- ; want_rc 0; want_line "main"
grep -q "^slabcache: \[[0-9]*\] statistics of " "$out" || bad "SLABCACHE_STATS=YES printed no statistics"

# An unknown name, with the suggestion, once, before main.
run SLABCACHE_STAT=1 -- ; want_rc 0
want_first "slabcache: unknown variable SLABCACHE_STAT (did you mean SLABCACHE_STATS?)"
# The scripts' variables are known: silence.
run SLABCACHE_BAZEL=bazel SLABCACHE_TEST_LOGDIR=/tmp -- ; want_rc 0
[[ $(cat "$out") == $'main\nend' ]] || bad "a script's variable was reported"

# SLABCACHE_VERBOSE=1: every variable of the table listed once, all before main.
run SLABCACHE_VERBOSE=1 SLABCACHE_LEAKS=on -- ; want_rc 0
want_first "slabcache: options in effect (SLABCACHE_VERBOSE=1; heap/options.h):"
before_main=$(sed '/^main$/q' "$out")
n=0
while read -r name; do
    n=$((n + 1))
    c=$(grep -cE "^slabcache: option $name(=| unset)" <<<"$before_main")
    [[ $c == 1 ]] || bad "SLABCACHE_VERBOSE=1 lists $name $c times before main"
done < <("$doc" --names)
[[ $n -ge 14 ]] || bad "options_doc --names gave only $n names"
want_line "slabcache: option SLABCACHE_LEAKS=on (environment)"
want_line "slabcache: option SLABCACHE_STATS=off (default)"

# SLABCACHE_ON_ERROR=reprot: reported at start-up, and the abort says why.
run SLABCACHE_ON_ERROR=reprot -- badfree; want_rc 134
want_first "slabcache: SLABCACHE_ON_ERROR=reprot: expected one of abort, report; using the default (abort)"
want_line "slabcache: aborting (SLABCACHE_ON_ERROR=reprot is neither abort nor report; set SLABCACHE_ON_ERROR=report to continue)"
want_none "end"
run SLABCACHE_ON_ERROR=Report -- badfree; want_rc 0; want_line "end"
grep -q "^slabcache: free: invalid free of 0x" "$out" || bad "no report of the invalid free"

# SLABCACHE_LEAKS=Exit used to report and exit 0.
run SLABCACHE_LEAKS=Exit -- leak; want_rc 23
grep -q "^slabcache: leak report (pid [0-9]*): 1 blocks" "$out" || bad "SLABCACHE_LEAKS=Exit: no leak report"
run SLABCACHE_LEAKS=on -- leak; want_rc 0
grep -q "^slabcache: leak report (pid [0-9]*): 1 blocks" "$out" || bad "SLABCACHE_LEAKS=on: no leak report"
run SLABCACHE_LEAKS=on SLABCACHE_LEAK_EXIT_CODE=7 -- leak; want_rc 7
run SLABCACHE_LEAKS=on SLABCACHE_LEAK_EXIT_CODE=300 -- leak; want_rc 0
want_first "slabcache: SLABCACHE_LEAK_EXIT_CODE=300: expected an integer from 1 to 255; using the default (23)"
run SLABCACHE_LEAKS=off -- leak; want_rc 0; want_none "leak report"

# SLABCACHE_SPARE_EXTENTS=lots was ignored and =0 meant 64, silently.
for v in 0 lots; do
    run SLABCACHE_SPARE_EXTENTS=$v -- ; want_rc 0
    want_first "slabcache: SLABCACHE_SPARE_EXTENTS=$v: expected an integer from 1 to 1048576; using the default (64)"
done
run SLABCACHE_HEAP_LIMIT=1x -- ; want_rc 0
want_first "slabcache: SLABCACHE_HEAP_LIMIT=1x: expected a size (a number of bytes, optionally with a k, m or g suffix); using the default (0)"

# SLABCACHE_DEBUG: what it cannot parse is reported when the first caches are made, before main.
run SLABCACHE_DEBUG="Zq,kmalloc-*" -- ; want_rc 0
want_first "slabcache: SLABCACHE_DEBUG=Zq,kmalloc-*: unknown flag 'q' in block \"Zq,kmalloc-*\" (flags: F Z P U T A O -); it is ignored"
# Several problems at once: each its own line, all before main.
run SLABCACHE_STATS=maybe SLABCACHE_SBRKK=0 SLABCACHE_DEBUG="Z,;U" -- ; want_rc 0
before_main=$(sed '/^main$/q' "$out")
[[ $(grep -c '^slabcache: ' <<<"$before_main") == 3 ]] || bad "want three lines before main"

rm -f "$out"
exit $fail
