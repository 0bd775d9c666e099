/* SPDX-License-Identifier: MIT */
/* tests/options/options_probe.c - a small program for preload_test.sh, run with
 * libslabcache.so preloaded.  It writes "main" when main starts (so the test can tell that
 * the option lines came before it) and "end" before it returns, and with an argument:
 *   leak      leaves one malloc'd block allocated at exit
 *   badfree   frees a pointer that is not from the allocator (a misuse report)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char not_heap[64];
volatile uintptr_t hidden; /* the leaked block's address, hidden: definitely lost */

int main(int argc, char **argv)
{
    (void)!write(2, "main\n", 5);
    const char *what = argc > 1 ? argv[1] : "";
    char *volatile p = malloc(100);
    if (strcmp(what, "leak") == 0) {
        p[0] = 1;
        hidden = (uintptr_t)p ^ UINTPTR_MAX;
        p = NULL;
    } else {
        free(p);
    }
    if (strcmp(what, "badfree") == 0) {
        void *volatile bad = not_heap + 16;
        free(bad);
    }
    (void)!write(2, "end\n", 4);
    return 0;
}
