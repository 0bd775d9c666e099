#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/observe/slabtop_test.sh SLABTOP LIBSLABCACHE_SO OBSERVE_PROGRAM - slabtop against a
# running program, as a user sees it: a small busy server runs with libslabcache.so
# preloaded, slabtop runs in a tmux pane, and the pane's text (capture-pane) must show the
# totals and a row per cache, sorted as asked, changing between refreshes; its keys sort
# by name and quit.  Then the one-shot form (-o), the trend column (the program's
# SLABCACHE_WATCH fits, and slabtop's own fit of its refreshes) on a leaking program, and a
# process without slabcache.
set -u
slabtop=$(realpath "$1") lib=$(realpath "$2") prog=$(realpath "$3")
command -v tmux >/dev/null || { echo "FAIL: tmux is needed (tools/setup.sh installs it)"; exit 1; }
fail=0
die() { echo "FAIL: $*"; fail=1; }

export TMUX_TMPDIR=$(mktemp -d)
session=slabtop$$
out=$(mktemp)
LD_PRELOAD=$lib "$prog" server >"$out" &
server=$!
cleanup() {
    tmux kill-session -t "$session" 2>/dev/null
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    rm -rf "$out" "$TMUX_TMPDIR"
}
trap cleanup EXIT
for _ in $(seq 50); do grep -q ready "$out" && break; sleep 0.1; done
grep -q ready "$out" || { echo "FAIL: the server did not start"; exit 1; }

tmux new-session -d -s "$session" -x 150 -y 45 "$slabtop -p $server -d 0.4"
sleep 2
one=$(tmux capture-pane -t "$session" -p)
sleep 1.5
two=$(tmux capture-pane -t "$session" -p)
echo "$two"
grep -q "slabtop - pid $server (observe_program) - every 0.4 s - sorted by objects (o)" <<<"$two" ||
    die "no title line"
grep -qE "^ Heap: [0-9.]+[KMG]? \(sbrk .*In use: .*Cached: .*Free: .*RSS: [0-9.]+[KMG]" <<<"$two" ||
    die "no totals line"
grep -qE "^ +ACTIVE +TOTAL +USE +OBJ SIZE +SLABS +CACHED +ALLOCS/S +TREND +NAME" <<<"$two" ||
    die "no column titles"
rows=$(grep -E "^ +[0-9]+ +[0-9]+ +[0-9]+% " <<<"$two")
grep -q " kmalloc-64$" <<<"$rows" || die "no kmalloc-64 row"
grep -q " large-64K$" <<<"$rows" || die "no large-64K row (the server's 40000-byte blocks)"
# Sorted by objects (TOTAL), largest first.
sort -k2,2nr -c <<<"$(grep -v large <<<"$rows")" 2>/dev/null || die "rows not sorted by objects"
# Refreshed: the allocation rates (and the clock) move between captures.
[[ "$one" != "$two" ]] || die "the screen did not change between refreshes"
grep -qE "^ +[0-9]+ +[0-9]+ +[0-9]+% +[0-9.]+K? +[0-9]+ +[0-9]+ +[1-9][0-9.]*[KM]? " <<<"$rows" ||
    die "no row with allocations per second"

tmux send-keys -t "$session" n
sleep 1
byname=$(tmux capture-pane -t "$session" -p)
grep -q "sorted by name (n)" <<<"$byname" || die "key n did not sort by name"
names=$(grep -E "^ +[0-9]+ +[0-9]+ +[0-9]+% " <<<"$byname" | awk '{print $NF}')
[[ "$names" == "$(sort <<<"$names")" ]] || die "rows not in name order: $names"

tmux send-keys -t "$session" q
for _ in $(seq 20); do tmux has-session -t "$session" 2>/dev/null || break; sleep 0.1; done
tmux has-session -t "$session" 2>/dev/null && die "q did not quit"

once=$("$slabtop" -o -p "$server" -d 0.3 -s c)
grep -q "sorted by cache size (c)" <<<"$once" || die "-o -s c: $once"
grep -q " kmalloc-" <<<"$once" || die "-o printed no rows"

# The trend column, both ways: from the program's own SLABCACHE_WATCH fits (-o), and from
# slabtop's fit of its own refreshes (a program without the watch, refreshed every 0.1 s).
# The leaking program loses 48 bytes every 480 ms: kmalloc-48 must be rising ("+.../m",
# flagged "!" once the fit is sure) and the only class flagged; the others are flat, except
# the program's 800 KB list of lost blocks, a large-1M row that appears once (a step: may
# slope upwards, never flagged).
SLABCACHE_WATCH=0.25 LD_PRELOAD=$lib "$prog" leak 60 2>/dev/null &
leaker=$!
LD_PRELOAD=$lib "$prog" leak 60 2>/dev/null &
leaker2=$!
trap 'cleanup; kill $leaker $leaker2 2>/dev/null; wait $leaker $leaker2 2>/dev/null' EXIT
tmux new-session -d -s "$session" -x 150 -y 45 "$slabtop -p $leaker2 -d 0.1 -s t"
trend_row='^ +[0-9]+ +[0-9]+ +[0-9]+% +48 +[0-9]+ +[0-9]+ +[0-9.]+[KM]? +\+[0-9.]+[KM]?/m +[0-9]+%! +kmalloc-48$'
flagged=0
for _ in $(seq 20); do
    sleep 2
    watched=$("$slabtop" -o -p "$leaker" -d 0.2 -s t)
    grep -qE "$trend_row" <<<"$watched" && { flagged=1; break; }
done
echo "$watched"
grep -q "^ Trend: the program's SLABCACHE_WATCH fits" <<<"$watched" ||
    die "-o on a program with SLABCACHE_WATCH: no 'Trend:' line"
((flagged)) || die "kmalloc-48 is not rising and flagged in the program's fits"
[[ $(grep -cE '%! +[a-z]' <<<"$watched") == 1 ]] || die "classes other than kmalloc-48 flagged"
grep -qE ' 0/m +kmalloc-(32|64|208)$' <<<"$watched" || die "no flat class beside the rising one"
sleep 3 # 50 refreshes at least, 20 are needed for a fit
own=$(tmux capture-pane -t "$session" -p)
echo "$own"
grep -q "^ Trend: " <<<"$own" && grep -q "SLABCACHE_WATCH fits" <<<"$own" &&
    die "a program without the watch was shown with its fits"
grep -qE '\+[0-9.]+[KM]?/m +[0-9]+%.? +kmalloc-48$' <<<"$own" ||
    die "slabtop's own fit: kmalloc-48 is not rising"
tmux kill-session -t "$session" 2>/dev/null

if "$slabtop" -o -p $$ >/dev/null 2>"$out"; then
    die "slabtop attached to a process without slabcache"
fi
grep -q "has no slabcache introspection root" "$out" || die "no clear message: $(cat "$out")"
exit $fail
