/* SPDX-License-Identifier: MIT */
/* mstress - power-of-two sizes, short and long lives, blocks migrating between threads, and
 * threads that end and are created again.
 *
 *   mstress [THREADS=2] [SCALE=100] [ROUNDS=25] [SEED=1]
 *
 * The pattern of mimalloc's stress test (mimalloc-bench's mstressN), in our own code.  Each
 * round starts THREADS threads; thread t makes 100 * SCALE * (t % 8 + 1) short-lived blocks
 * (a power of two of 1..16 words) and half as many retained ones (1..64 words), all with
 * calloc; 1% of the blocks are 100x larger, a tenth of those 1000x and a hundredth 10000x
 * (up to 5 MiB).  After each allocation a random earlier short-lived block is freed with
 * probability 2/3, and with probability 1/4 a random short-lived block is swapped with one
 * of 1000 shared transfer slots (an atomic exchange): blocks end up freed by other threads,
 * and half of the transfer slots survive into the next round, whose threads free them.
 * Every block is filled word by word at allocation and checked word by word when freed
 * (its first word holds its length).  The words allocated and the words checked must be
 * equal at the end.
 */
#include <stdatomic.h>

#include "benchmarks/suite/suite.h"

#define TRANSFERS 1000
static _Atomic(uint64_t *) transfer[TRANSFERS];
static long scale;
static atomic_ullong words_allocated, words_checked, blocks;

static const uint64_t cookie = 0xbf58476d1ce4e5b9ull;

static uint64_t *alloc_items(size_t items, struct suite_rng *r)
{
    if (suite_below(r, 100) == 0) {
        uint64_t x = suite_below(r, 100);
        items *= x == 0 ? 10000 : x < 10 ? 1000 : 100;
    }
    uint64_t *p = suite_check_alloc(calloc(items, sizeof *p), items * sizeof *p);
    if (p[items - 1] != 0 || p[0] != 0)
        suite_fail("calloc(%zu, 8) returned memory that is not zero", items);
    p[0] = items ^ cookie;
    for (size_t i = 1; i < items; i++)
        p[i] = (items - i) ^ cookie;
    atomic_fetch_add_explicit(&words_allocated, items, memory_order_relaxed);
    atomic_fetch_add_explicit(&blocks, 1, memory_order_relaxed);
    return p;
}

static void free_items(uint64_t *p)
{
    if (!p)
        return;
    size_t items = (size_t)(p[0] ^ cookie);
    if (items == 0 || items > (64u << 20))
        suite_fail("mstress: block %p has a corrupted length word", (void *)p);
    for (size_t i = 1; i < items; i++)
        if ((p[i] ^ cookie) != items - i)
            suite_fail("mstress: block %p of %zu words corrupted at word %zu", (void *)p, items,
                       i);
    atomic_fetch_add_explicit(&words_checked, items, memory_order_relaxed);
    free(p);
}

struct arg {
    long tid;
    uint64_t seed;
};

static void *stress(void *varg)
{
    const struct arg *a = varg;
    struct suite_rng r;
    suite_rng_seed(&r, a->seed);
    size_t allocs = 100 * (size_t)scale * (size_t)(a->tid % 8 + 1);
    size_t retain = allocs / 2;
    size_t data_cap = 0, data_top = 0, retain_top = 0;
    uint64_t **data = NULL;
    uint64_t **retained = suite_check_alloc(calloc(retain ? retain : 1, sizeof *retained),
                                            retain * sizeof *retained);
    while (allocs > 0 || retain > 0) {
        if (retain == 0 || (allocs > 0 && suite_below(&r, 2) == 0)) {
            allocs--;
            if (data_top == data_cap) {
                data_cap += 10000;
                data = suite_check_alloc(realloc(data, data_cap * sizeof *data),
                                         data_cap * sizeof *data);
            }
            data[data_top++] = alloc_items((size_t)1 << suite_below(&r, 5), &r);
        } else {
            retained[retain_top++] = alloc_items((size_t)1 << suite_below(&r, 7), &r);
            retain--;
        }
        if (data_top > 0 && suite_below(&r, 3) < 2) {
            size_t i = suite_below(&r, data_top);
            free_items(data[i]);
            data[i] = NULL;
        }
        if (data_top > 0 && suite_below(&r, 4) == 0) {
            size_t i = suite_below(&r, data_top);
            data[i] = atomic_exchange(&transfer[suite_below(&r, TRANSFERS)], data[i]);
        }
    }
    for (size_t i = 0; i < retain_top; i++)
        free_items(retained[i]);
    for (size_t i = 0; i < data_top; i++)
        free_items(data[i]);
    free(retained);
    free(data);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[THREADS=2] [SCALE=100] [ROUNDS=25] [SEED=1]";
    long threads = suite_arg(argc, argv, 1, 2, 1, 1024, usage);
    scale = suite_arg(argc, argv, 2, 100, 1, 1L << 20, usage);
    long rounds = suite_arg(argc, argv, 3, 25, 1, 1L << 20, usage);
    long seed = suite_arg(argc, argv, 4, 1, 0, 1L << 40, usage);

    double start = suite_now();
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    struct arg *args = suite_check_alloc(calloc((size_t)threads, sizeof *args),
                                         (size_t)threads * sizeof *args);
    for (long n = 0; n < rounds; n++) {
        for (long t = 0; t < threads; t++) {
            args[t].tid = t;
            args[t].seed = suite_mix64((uint64_t)seed * 1000003u + (uint64_t)(n * threads + t));
        }
        suite_run_threads((size_t)threads, stress, args, sizeof *args);
        for (int i = 0; i < TRANSFERS; i++)
            if (n + 1 == rounds || suite_below(&r, 2) == 0)
                free_items(atomic_exchange(&transfer[i], NULL));
    }
    free(args);
    unsigned long long wa = atomic_load(&words_allocated), wc = atomic_load(&words_checked);
    if (wa != wc)
        suite_fail("mstress: %llu words allocated but %llu checked when freed", wa, wc);
    suite_report(start, "mstress threads=%ld scale=%ld rounds=%ld blocks=%llu words=%llu",
                 threads, scale, rounds, (unsigned long long)atomic_load(&blocks), wa);
    return 0;
}
