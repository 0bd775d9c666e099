/* SPDX-License-Identifier: MIT */
/* malloc_large - large blocks, 64 KiB to 20 MiB, a few live at a time.
 *
 *   malloc_large [ITERATIONS=500] [LIVE=20] [MIN_KIB=64] [MAX_KIB=20480] [SEED=1]
 *
 * The pattern of mimalloc-bench's malloc-large (blocks of several MiB, up to 20 live),
 * widened to sizes from 64 KiB up: each iteration frees a random one of LIVE slots and
 * allocates a block whose size is log-uniform in [MIN_KIB, MAX_KIB] (so every octave from
 * the medium sizes to the huge ones is equally common), then writes one word in each of
 * its pages (a program uses what it allocates; it also faults in whatever the allocator
 * handed back unmapped).  Before a block is freed, every word written is checked: blocks
 * that overlap, or that the allocator wrote into, fail.  Single-threaded.
 */
#include <math.h>

#include "benchmarks/suite/suite.h"

struct slot {
    void *p;
    size_t size;
    uint64_t tag;
};

int main(int argc, char **argv)
{
    const char *usage = "[ITERATIONS=500] [LIVE=20] [MIN_KIB=64] [MAX_KIB=20480] [SEED=1]";
    long iters = suite_arg(argc, argv, 1, 500, 1, 1L << 30, usage);
    long live = suite_arg(argc, argv, 2, 20, 1, 1 << 20, usage);
    long min_kib = suite_arg(argc, argv, 3, 64, 1, 1L << 22, usage);
    long max_kib = suite_arg(argc, argv, 4, 20480, 1, 1L << 22, usage);
    long seed = suite_arg(argc, argv, 5, 1, 0, 1L << 40, usage);
    if (max_kib < min_kib)
        suite_fail("MAX_KIB (%ld) < MIN_KIB (%ld)", max_kib, min_kib);

    double start = suite_now();
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    struct slot *s = suite_check_alloc(calloc((size_t)live, sizeof *s), (size_t)live * sizeof *s);
    const double lo = log((double)min_kib * 1024.0), span = log((double)max_kib / (double)min_kib);
    uint64_t checked = 0, bytes = 0;
    for (long i = 0; i < iters; i++) {
        struct slot *x = &s[suite_below(&r, (uint64_t)live)];
        if (x->p) {
            checked += suite_verify(x->p, x->size, x->tag, 0, "malloc_large");
            free(x->p);
        }
        double u = (double)(suite_rand(&r) >> 11) * 0x1p-53;
        x->size = ((size_t)exp(lo + u * span) + 7) & ~(size_t)7;
        x->tag = (uint64_t)i;
        x->p = suite_check_alloc(malloc(x->size), x->size);
        suite_fill(x->p, x->size, x->tag, 0);
        bytes += x->size;
    }
    for (long i = 0; i < live; i++)
        if (s[i].p) {
            checked += suite_verify(s[i].p, s[i].size, s[i].tag, 0, "malloc_large");
            free(s[i].p);
        }
    free(s);
    suite_report(start, "malloc_large iterations=%ld live=%ld bytes=%llu words_checked=%llu",
                 iters, live, (unsigned long long)bytes, (unsigned long long)checked);
    return 0;
}
