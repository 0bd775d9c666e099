#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/observe/slabtop_test.sh SLABTOP LIBSLABCACHE_SO OBSERVE_PROGRAM - slabtop against a
# running program, as a user sees it: a small busy server runs with libslabcache.so
# preloaded, slabtop runs in a tmux pane, and the pane's text (capture-pane) must show the
# totals and a row per cache, sorted as asked, changing between refreshes; its keys sort
# by name and quit.  Then the one-shot form (-o) and a process without slabcache.
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

if "$slabtop" -o -p $$ >/dev/null 2>"$out"; then
    die "slabtop attached to a process without slabcache"
fi
grep -q "has no slabcache introspection root" "$out" || die "no clear message: $(cat "$out")"
exit $fail
