/* SPDX-License-Identifier: MIT */
/* slab/report.c - what happens after a misuse report.
 *
 * Reports run inside malloc, before main and on corrupted heaps, so they are formatted on the
 * stack and written with one write(2) (heap_fmt_line, heap/fmt.h).  What happens after a
 * report of misuse (an invalid or double free, a red zone overwritten, ...) is chosen by
 * SLABCACHE_ON_ERROR: "abort" (default) or "report" (continue; the offending operation has
 * already been refused, so nothing is corrupted).
 */
#include <stdlib.h>
#include <string.h>

#include "slab/internal.h"

enum on_error { ON_ERROR_UNREAD = 0, ON_ERROR_ABORT = 1, ON_ERROR_REPORT = 2 };

static int on_error_mode; /* enum on_error (relaxed atomics) */

void report_misuse(void)
{
    int mode = __atomic_load_n(&on_error_mode, __ATOMIC_RELAXED);
    if (mode == ON_ERROR_UNREAD) {
        const char *v = getenv("SLABCACHE_ON_ERROR"); /* getenv never allocates */
        mode = (v && strcmp(v, "report") == 0) ? ON_ERROR_REPORT : ON_ERROR_ABORT;
        __atomic_store_n(&on_error_mode, mode, __ATOMIC_RELAXED);
    }
    if (mode == ON_ERROR_ABORT) {
        heap_fmt_line("%s", "aborting (set SLABCACHE_ON_ERROR=report to continue)");
        abort();
    }
}

void report_reset_options(void)
{
    __atomic_store_n(&on_error_mode, ON_ERROR_UNREAD, __ATOMIC_RELAXED);
}
