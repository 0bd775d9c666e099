#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/options/noalloc_test.sh ARCHIVE... - the option reader runs inside the first malloc,
# before main: heap/options.c and the formatter it writes with (heap/fmt.c) may call only the
# functions below, none of which allocates or takes a lock of the allocator.  Read from the
# object files' undefined symbols (nm), so a call to malloc, strdup, printf, strtoul (locale
# machinery) or setenv fails here whatever path reaches it.  Arguments: the outputs of //heap
# (archives are read; shared libraries are skipped).  heap_mutex_note and heap_mutex_forget
# (debug builds' lock registry, heap/mutex.c) only scan a static array.
set -euo pipefail
allowed=" getenv environ memcmp memcpy memmove memset memchr strlen strnlen strchr strcmp
  strncmp strcspn strstr write open close fcntl fstat getpid __errno_location __stack_chk_fail __assert_fail _GLOBAL_OFFSET_TABLE_
  pthread_mutex_lock pthread_mutex_unlock pthread_equal pthread_self heap_mutex_note
  heap_mutex_forget
  heap_fmt heap_vfmt heap_fmt_line heap_fmt_vline "
fail=0
seen=0
for a in "$@"; do
    [[ $a == *.a ]] || continue
    while read -r member name; do
        seen=$((seen + 1))
        case "$name" in
            __asan_* | __tsan_* | __ubsan_* | __sanitizer_* | __msan_*) continue ;; # instrumentation
        esac
        if ! grep -qw -- "$name" <<<"$allowed"; then
            echo "FAIL: $member calls $name, which the option reader must not (it may allocate)"
            fail=1
        fi
    done < <(nm -A "$a" | awk '$(NF - 1) == "U" {
                 n = split($1, parts, ":"); m = parts[n - 1]
                 if (m ~ /^(options|fmt)\./) print m, $NF }')
done
if [[ $seen -eq 0 ]]; then
    echo "FAIL: no undefined symbols of options.o or fmt.o found in: $*"
    exit 1
fi
[[ $fail -eq 0 ]] && echo "PASS: options.o and fmt.o call only: $(tr -s ' \n' ' ' <<<"$allowed")"
exit $fail
