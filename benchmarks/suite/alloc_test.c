/* SPDX-License-Identifier: MIT */
/* alloc_test - random sizes up to 1 KiB in a large, skewed working set, N threads.
 *
 *   alloc_test [THREADS=1] [ITERATIONS=8000000] [MAX_SIZE_EXP=10] [ITEMS=262144] [SEED=41]
 *
 * The pattern of OLogN's allocator tester (mimalloc-bench's alloc-test1 and alloc-testN), in
 * our own code: ITEMS slots split evenly between THREADS threads.  Each thread first fills
 * about half of its slots, then makes ITERATIONS operations: pick a slot with a skewed
 * (power-law) distribution, so a few slots are hot and most are cold; if it holds a block,
 * read every byte of it and free it, else allocate a block and fill every byte.  Sizes are
 * spread over powers of two: half in (4, 8], a quarter in (8, 16], ..., up to
 * 2^MAX_SIZE_EXP bytes.  Before each free the block's first word and last byte are checked;
 * the sum of all bytes read is printed (the same under every allocator).
 */
#include "benchmarks/suite/suite.h"

struct item {
    unsigned char *p;
    uint32_t size;
};

struct arg {
    uint64_t seed;
    unsigned long long sum, ops;
};

static long iterations, max_exp;
static size_t items_per_thread;

/* (2^k, 2^(k+1)] with k = 2 + (number of trailing ones of a random word), capped: a
 * geometric distribution over the powers of two. */
static uint32_t random_size(struct suite_rng *r)
{
    uint64_t x = suite_rand(r);
    unsigned k = 2 + (unsigned)__builtin_ctzll(~x);
    if (k > (unsigned)max_exp - 1)
        k = (unsigned)max_exp - 1;
    return (1u << k) + 1 + (uint32_t)(suite_rand(r) & ((1u << k) - 1));
}

/* A skewed slot: u^3 puts the mass near 0 (half the picks in the first eighth). */
static size_t random_slot(struct suite_rng *r)
{
    double u = (double)(suite_rand(r) >> 11) * 0x1p-53;
    return (size_t)((double)items_per_thread * u * u * u);
}

static void fill(struct item *it, struct suite_rng *r)
{
    uint32_t n = random_size(r);
    unsigned char *p = suite_check_alloc(malloc(n), n);
    memset(p, (unsigned char)n, n);
    uint32_t tag = n ^ 0xa110c8edu;
    memcpy(p, &tag, sizeof tag);
    it->p = p;
    it->size = n;
}

static unsigned long long drain(struct item *it)
{
    uint32_t tag;
    memcpy(&tag, it->p, sizeof tag);
    if (tag != (it->size ^ 0xa110c8edu) || it->p[it->size - 1] != (unsigned char)it->size)
        suite_fail("alloc_test: block %p of %u bytes corrupted", (void *)it->p, it->size);
    unsigned long long s = 0;
    for (uint32_t i = 0; i < it->size; i++)
        s += it->p[i];
    free(it->p);
    it->p = NULL;
    return s;
}

static void *bench_thread(void *varg)
{
    struct arg *a = varg;
    struct suite_rng r;
    suite_rng_seed(&r, a->seed);
    struct item *items = suite_check_alloc(calloc(items_per_thread, sizeof *items),
                                           items_per_thread * sizeof *items);
    for (size_t i = 0; i < items_per_thread; i++)
        if (suite_rand(&r) & 1)
            fill(&items[i], &r);
    for (long k = 0; k < iterations; k++) {
        struct item *it = &items[random_slot(&r)];
        if (it->p)
            a->sum += drain(it);
        else
            fill(it, &r);
    }
    for (size_t i = 0; i < items_per_thread; i++)
        if (items[i].p)
            a->sum += drain(&items[i]);
    free(items);
    a->ops = (unsigned long long)iterations;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[THREADS=1] [ITERATIONS=8000000 per thread] [MAX_SIZE_EXP=10] "
                        "[ITEMS=262144] [SEED=41]";
    long threads = suite_arg(argc, argv, 1, 1, 1, 1024, usage);
    iterations = suite_arg(argc, argv, 2, 8000000, 1, 1L << 40, usage);
    max_exp = suite_arg(argc, argv, 3, 10, 4, 24, usage);
    long items = suite_arg(argc, argv, 4, 262144, 1, 1L << 30, usage);
    long seed = suite_arg(argc, argv, 5, 41, 0, 1L << 40, usage);
    items_per_thread = (size_t)(items / threads) ? (size_t)(items / threads) : 1;

    double start = suite_now();
    struct arg *args = suite_check_alloc(calloc((size_t)threads, sizeof *args),
                                         (size_t)threads * sizeof *args);
    for (long t = 0; t < threads; t++)
        args[t].seed = suite_mix64((uint64_t)seed + (uint64_t)t);
    suite_run_threads((size_t)threads, bench_thread, args, sizeof *args);
    unsigned long long sum = 0, ops = 0;
    for (long t = 0; t < threads; t++) {
        sum += args[t].sum;
        ops += args[t].ops;
    }
    free(args);
    suite_report(start, "alloc_test threads=%ld ops=%llu max_size=%ld byte_sum=%llu", threads,
                 ops, 1L << max_exp, sum);
    return 0;
}
