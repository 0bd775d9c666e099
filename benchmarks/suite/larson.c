/* SPDX-License-Identifier: MIT */
/* larson - a server simulation: threads replace random blocks of random size, and each
 * thread's blocks are freed by the thread that succeeds it.
 *
 *   larson [THREADS=2] [MIN=8] [MAX=1000] [CHUNKS=5000] [ROUNDS=100] [GENERATIONS=20] [SEED=4141]
 *
 * The pattern of Larson and Krishnan's benchmark ("Memory allocation for long-running server
 * applications", ISMM 1998; mimalloc-bench's larsonN, "larson 5 8 1000 5000 100 4141 N"), in
 * our own code and with a fixed amount of work instead of a fixed time.  The main thread
 * allocates THREADS * CHUNKS blocks (sizes uniform in [MIN, MAX)) and replaces a random
 * half of them once; then THREADS threads each own a slice of CHUNKS blocks and make
 * ROUNDS * CHUNKS replacements (free a random block of the slice, allocate a new one, write
 * its first bytes).  A thread that has done its share starts its successor, which takes over
 * the slice, and exits: each generation frees the blocks its predecessor (or the main
 * thread) allocated, and threads start and exit all the time.  GENERATIONS generations per
 * slice.  Every block's first word (its slot and size) is checked before it is freed.
 *
 * Compiled as C++ (larson_sized.cc) it allocates with new[] and frees with the sized
 * operator delete[] (mimalloc-bench's larsonN-sized).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchmarks/suite/suite.h"

#ifdef __cplusplus
#include <new>
#define LARSON_NAME "larson_sized"
static unsigned char *block_alloc(size_t n)
{
    return new unsigned char[n];
}
static void block_free(unsigned char *p, size_t n)
{
    ::operator delete[](p, n);
}
#else
#define LARSON_NAME "larson"
static unsigned char *block_alloc(size_t n)
{
    return (unsigned char *)suite_check_alloc(malloc(n), n);
}
static void block_free(unsigned char *p, size_t n)
{
    (void)n;
    free(p);
}
#endif

struct slice {
    unsigned char **blk;
    uint32_t *len;
    long index;
    long generation;
    struct suite_rng rng;
    unsigned long long ops, checked;
};

static long threads, min_size, max_size, chunks, rounds, generations;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static long slices_done;

static uint64_t block_tag(long slot, size_t n)
{
    return ((uint64_t)slot << 32) ^ (uint64_t)n ^ 0x4c415253ull;
}

static size_t random_size(struct suite_rng *r)
{
    return (size_t)min_size + (size_t)suite_below(r, (uint64_t)(max_size - min_size));
}

static unsigned char *new_block(long slot, size_t n)
{
    unsigned char *p = block_alloc(n);
    uint64_t tag = block_tag(slot, n);
    memcpy(p, &tag, sizeof tag);
    if (n > sizeof tag)
        p[n - 1] = (unsigned char)n;
    return p;
}

static unsigned long long check_and_free(unsigned char *p, long slot, size_t n)
{
    uint64_t tag;
    memcpy(&tag, p, sizeof tag);
    if (tag != block_tag(slot, n) || (n > sizeof tag && p[n - 1] != (unsigned char)n))
        suite_fail(LARSON_NAME ": block %p (slot %ld, %zu bytes) corrupted", (void *)p, slot, n);
    block_free(p, n);
    return 1;
}

static void *exercise(void *varg);

static void start_thread(struct slice *s)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, exercise, s);
    pthread_attr_destroy(&attr);
    if (rc)
        suite_fail("pthread_create: %s", strerror(rc));
}

static void *exercise(void *varg)
{
    struct slice *s = (struct slice *)varg;
    long base = s->index * chunks;
    long n = rounds * chunks;
    for (long i = 0; i < n; i++) {
        long v = (long)suite_below(&s->rng, (uint64_t)chunks);
        s->checked += check_and_free(s->blk[v], base + v, s->len[v]);
        size_t sz = random_size(&s->rng);
        s->blk[v] = new_block(base + v, sz);
        s->len[v] = (uint32_t)sz;
    }
    s->ops += (unsigned long long)n;
    if (++s->generation < generations) {
        start_thread(s); /* the successor takes the slice over; this thread exits */
    } else {
        pthread_mutex_lock(&done_lock);
        slices_done++;
        pthread_cond_signal(&done_cond);
        pthread_mutex_unlock(&done_lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage =
        "[THREADS=2] [MIN=8] [MAX=1000] [CHUNKS=5000] [ROUNDS=100] [GENERATIONS=20] [SEED=4141]";
    threads = suite_arg(argc, argv, 1, 2, 1, 1024, usage);
    min_size = suite_arg(argc, argv, 2, 8, 8, 1L << 24, usage);
    max_size = suite_arg(argc, argv, 3, 1000, 9, 1L << 24, usage);
    chunks = suite_arg(argc, argv, 4, 5000, 1, 1L << 24, usage);
    rounds = suite_arg(argc, argv, 5, 100, 1, 1L << 24, usage);
    generations = suite_arg(argc, argv, 6, 20, 1, 1L << 24, usage);
    long seed = suite_arg(argc, argv, 7, 4141, 0, 1L << 40, usage);
    if (max_size <= min_size)
        suite_fail("MAX (%ld) must be above MIN (%ld)", max_size, min_size);

    double start = suite_now();
    size_t total = (size_t)threads * (size_t)chunks;
    unsigned char **blk = (unsigned char **)suite_check_alloc(calloc(total, sizeof *blk),
                                                              total * sizeof *blk);
    uint32_t *len = (uint32_t *)suite_check_alloc(calloc(total, sizeof *len), total * sizeof *len);
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    /* Warm-up on the main thread: allocate everything, replace a random half. */
    unsigned long long checked = 0;
    for (size_t i = 0; i < total; i++) {
        len[i] = (uint32_t)random_size(&r);
        blk[i] = new_block((long)i, len[i]);
    }
    for (size_t k = 0; k < total / 2; k++) {
        size_t v = (size_t)suite_below(&r, total);
        checked += check_and_free(blk[v], (long)v, len[v]);
        len[v] = (uint32_t)random_size(&r);
        blk[v] = new_block((long)v, len[v]);
    }
    struct slice *s = (struct slice *)suite_check_alloc(calloc((size_t)threads, sizeof *s),
                                                        (size_t)threads * sizeof *s);
    for (long t = 0; t < threads; t++) {
        s[t].blk = blk + t * chunks;
        s[t].len = len + t * chunks;
        s[t].index = t;
        suite_rng_seed(&s[t].rng, suite_rand(&r));
    }
    for (long t = 0; t < threads; t++)
        start_thread(&s[t]);
    pthread_mutex_lock(&done_lock);
    while (slices_done < threads)
        pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);
    unsigned long long ops = 0;
    for (long t = 0; t < threads; t++) {
        ops += s[t].ops;
        checked += s[t].checked;
    }
    for (size_t i = 0; i < total; i++)
        checked += check_and_free(blk[i], (long)i, len[i]);
    free(s);
    free(blk);
    free(len);
    suite_report(start, LARSON_NAME " threads=%ld sizes=[%ld,%ld) chunks=%ld ops=%llu checked=%llu",
                 threads, min_size, max_size, chunks, ops, checked);
    return 0;
}
