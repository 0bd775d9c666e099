/* SPDX-License-Identifier: MIT */
/* slab/report.c - what happens after a misuse report.
 *
 * Reports run inside malloc, before main and on corrupted heaps, so they are formatted on the
 * stack and written with one write(2) (heap_fmt_line, heap/fmt.h).  What happens after a
 * report of misuse (an invalid or double free, a red zone overwritten, ...) is chosen by
 * SLABCACHE_ON_ERROR (heap/options.h): "abort" (default) or "report" (continue; the offending
 * operation has already been refused, so nothing is corrupted).
 */
#include <stdlib.h>
#include <string.h>

#include "heap/options.h"
#include "slab/internal.h"

#define REPORT_SHOWN_MAX 64 /* bytes of a rejected value quoted */

enum on_error { ON_ERROR_UNREAD = 0, ON_ERROR_ABORT = 1, ON_ERROR_REPORT = 2 };

static int on_error_mode; /* enum on_error (relaxed atomics) */

void report_misuse(void)
{
    int mode = __atomic_load_n(&on_error_mode, __ATOMIC_RELAXED);
    if (mode == ON_ERROR_UNREAD) {
        mode = heap_opt_is(OPT_ON_ERROR, "report") ? ON_ERROR_REPORT : ON_ERROR_ABORT;
        __atomic_store_n(&on_error_mode, mode, __ATOMIC_RELAXED);
    }
    if (mode == ON_ERROR_ABORT) {
        const char *rejected = heap_opt_rejected(OPT_ON_ERROR);
        if (rejected) { /* say why what was set did not count */
            char shown[REPORT_SHOWN_MAX + 1];
            size_t n = 0;
            for (; rejected[n] && n < REPORT_SHOWN_MAX; n++)
                shown[n] = rejected[n] >= ' ' && rejected[n] != 0x7f ? rejected[n] : '?';
            shown[n] = '\0';
            heap_fmt_line("aborting (SLABCACHE_ON_ERROR=%s is neither abort nor report; set "
                          "SLABCACHE_ON_ERROR=report to continue)",
                          shown);
        } else {
            heap_fmt_line("%s", "aborting (set SLABCACHE_ON_ERROR=report to continue)");
        }
        abort();
    }
}

void report_reset_options(void)
{
    heap_opt_reset_for_tests(); /* SLABCACHE_ON_ERROR from the environment */
    __atomic_store_n(&on_error_mode, ON_ERROR_UNREAD, __ATOMIC_RELAXED);
}

void report_set_abort(bool abort_after)
{
    __atomic_store_n(&on_error_mode, abort_after ? ON_ERROR_ABORT : ON_ERROR_REPORT,
                     __ATOMIC_RELAXED);
}
