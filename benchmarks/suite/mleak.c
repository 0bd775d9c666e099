/* SPDX-License-Identifier: MIT */
/* mleak - many short-lived threads, each leaving one small block behind for another.
 *
 *   mleak [ROUNDS=500] [THREADS=10] [SEED=1]
 *
 * The pattern of mimalloc-bench's mleak, in our own code: ROUNDS times, start THREADS
 * threads and wait for them; each thread callocs a 128-byte block, fills it, swaps it into a
 * random one of THREADS * 100 shared slots (an atomic exchange) and frees the block it took
 * out, after checking it.  So nearly every block is freed by a thread other than the one
 * that allocated it, after that thread has exited, and the threads' own start-up and exit
 * costs in the allocator dominate.  An allocator that keeps per-thread memory after the
 * thread is gone grows without bound (the runner reports peak RSS).
 */
#include <stdatomic.h>

#include "benchmarks/suite/suite.h"

#define WORDS 16

static _Atomic(uint64_t *) *slots;
static size_t nslots;
static atomic_ullong checked;

struct arg {
    uint64_t tag;
    size_t slot;
};

static void check_block(const uint64_t *p)
{
    if ((p[0] ^ 0x6d6c65616bull) >= (1ull << 40))
        suite_fail("mleak: block %p has a corrupted tag", (const void *)p);
    for (int i = 1; i < WORDS; i++)
        if (p[i] != suite_word(p[0], (size_t)i))
            suite_fail("mleak: block %p corrupted at word %d", (const void *)p, i);
}

static void *leak(void *varg)
{
    const struct arg *a = varg;
    uint64_t *p = suite_check_alloc(calloc(WORDS, sizeof *p), WORDS * sizeof *p);
    for (int i = 0; i < WORDS; i++)
        if (p[i])
            suite_fail("mleak: calloc returned memory that is not zero");
    p[0] = a->tag ^ 0x6d6c65616bull;
    for (int i = 1; i < WORDS; i++)
        p[i] = suite_word(p[0], (size_t)i);
    uint64_t *q = atomic_exchange(&slots[a->slot], p);
    if (q) {
        check_block(q);
        atomic_fetch_add_explicit(&checked, 1, memory_order_relaxed);
        free(q);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[ROUNDS=500] [THREADS=10] [SEED=1]";
    long rounds = suite_arg(argc, argv, 1, 500, 1, 1L << 30, usage);
    long threads = suite_arg(argc, argv, 2, 10, 1, 1024, usage);
    long seed = suite_arg(argc, argv, 3, 1, 0, 1L << 40, usage);

    double start = suite_now();
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    nslots = (size_t)threads * 100;
    slots = suite_check_alloc(calloc(nslots, sizeof *slots), nslots * sizeof *slots);
    struct arg *args = suite_check_alloc(calloc((size_t)threads, sizeof *args),
                                         (size_t)threads * sizeof *args);
    uint64_t tag = 0;
    for (long n = 0; n < rounds; n++) {
        for (long t = 0; t < threads; t++) {
            args[t].tag = tag++;
            args[t].slot = (size_t)suite_below(&r, nslots);
        }
        suite_run_threads((size_t)threads, leak, args, sizeof *args);
    }
    unsigned long long left = 0;
    for (size_t i = 0; i < nslots; i++) {
        uint64_t *p = atomic_load(&slots[i]);
        if (p) {
            check_block(p);
            left++;
            free(p);
        }
    }
    free(slots);
    free(args);
    unsigned long long c = atomic_load(&checked);
    if (c + left != (unsigned long long)tag)
        suite_fail("mleak: %llu blocks allocated, %llu freed", (unsigned long long)tag, c + left);
    suite_report(start, "mleak rounds=%ld threads=%ld blocks=%llu", rounds, threads,
                 (unsigned long long)tag);
    return 0;
}
