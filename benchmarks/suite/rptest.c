/* SPDX-License-Identifier: MIT */
/* rptest - random sizes up to 16 KB, scattered frees, and batches freed by another thread.
 *
 *   rptest [THREADS=2] [LOOPS=4000] [ALLOCS=1000] [OPS=100] [MIN=8] [MAX=16000] [CROSS=2] [SEED=1]
 *
 * The pattern of rpmalloc's benchmark (mimalloc-bench's rptestN: "rptest N 0 1 2 500 1000 100
 * 8 16000"), in our own code.  Each thread keeps ALLOCS live blocks and runs LOOPS
 * iterations; an iteration frees about OPS blocks at scattered positions and allocates new
 * ones in their place (sizes in [MIN, MAX] with a linear drop-off: small sizes are the most
 * common), writing the block's size into its first word, one byte in every page and its
 * last byte.  Every CROSS iterations the thread also allocates a batch of OPS blocks and
 * hands the batch to the next thread (a lock-free stack per thread), which frees it at its
 * next iteration.  Every block is checked (size word, last byte) when freed.
 */
#include <stdatomic.h>

#include "benchmarks/suite/suite.h"

struct batch {
    struct batch *next;
    size_t count;
    void **ptr;
};

struct arg {
    long index;
    uint64_t seed;
    _Atomic(struct batch *) foreign;
    unsigned long long ops, checked;
    char pad[64];
};

static long threads, loops, allocs, ops, min_size, max_size, cross;
static struct arg *args;
static pthread_barrier_t barrier;

/* Linear drop-off: the smaller of two uniform draws. */
static size_t random_size(struct suite_rng *r)
{
    uint64_t span = (uint64_t)(max_size - min_size + 1);
    uint64_t a = suite_below(r, span), b = suite_below(r, span);
    return (size_t)min_size + (size_t)(a < b ? a : b);
}

static void *new_block(size_t n)
{
    unsigned char *p = suite_check_alloc(malloc(n), n);
    uint32_t v = (uint32_t)n;
    memcpy(p, &v, sizeof v);
    for (size_t page = 4096; page + 1 < n; page += 4096)
        p[page] = 1;
    p[n - 1] = (unsigned char)(n * 13u);
    return p;
}

static void free_block(void *vp)
{
    unsigned char *p = vp;
    uint32_t n;
    memcpy(&n, p, sizeof n);
    if (n < (uint32_t)min_size || n > (uint32_t)max_size || p[n - 1] != (unsigned char)(n * 13u))
        suite_fail("rptest: block %p corrupted (size word %u)", vp, n);
    free(p);
}

static unsigned long long drain_foreign(struct arg *a)
{
    struct batch *b = atomic_exchange(&a->foreign, NULL);
    unsigned long long n = 0;
    while (b) {
        struct batch *next = b->next;
        for (size_t i = 0; i < b->count; i++)
            free_block(b->ptr[i]);
        n += b->count;
        free(b->ptr);
        free(b);
        b = next;
    }
    return n;
}

static void push_foreign(struct arg *to, struct batch *b)
{
    struct batch *head = atomic_load(&to->foreign);
    do
        b->next = head;
    while (!atomic_compare_exchange_weak(&to->foreign, &head, b));
}

/* Primes for scattering positions: the stride must not divide ALLOCS. */
static size_t coprime_stride(size_t n, size_t from)
{
    static const size_t primes[] = {37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
    for (size_t i = from; i < sizeof primes / sizeof *primes; i++)
        if (n % primes[i])
            return primes[i];
    return 1;
}

static void *worker(void *varg)
{
    struct arg *a = varg;
    struct suite_rng r;
    suite_rng_seed(&r, a->seed);
    size_t n = (size_t)allocs;
    void **ptr = suite_check_alloc(calloc(n, sizeof *ptr), n * sizeof *ptr);
    size_t astride = coprime_stride(n, 0), fstride = coprime_stride(n, 3);
    size_t apos = 0, fpos = 0;
    for (size_t i = 0; i < n; i++)
        ptr[i] = new_block(random_size(&r));
    a->ops += n;
    for (long it = 0; it < loops; it++) {
        /* 60-100% of OPS frees, then as many allocations into the holes. */
        size_t k = (size_t)ops * (6 + suite_below(&r, 5)) / 10;
        for (size_t i = 0; i < k; i++) {
            fpos = (fpos + fstride) % n;
            if (ptr[fpos]) {
                free_block(ptr[fpos]);
                a->checked++;
                ptr[fpos] = NULL;
            }
        }
        for (size_t i = 0, done = 0; i < n && done < k; i++) {
            apos = (apos + astride) % n;
            if (!ptr[apos]) {
                ptr[apos] = new_block(random_size(&r));
                done++;
            }
        }
        a->ops += 2 * k;
        if (cross && threads > 1 && it % cross == 0) {
            struct batch *b = suite_check_alloc(malloc(sizeof *b), sizeof *b);
            b->count = (size_t)ops;
            b->ptr = suite_check_alloc(malloc(b->count * sizeof *b->ptr), b->count * sizeof *b->ptr);
            for (size_t i = 0; i < b->count; i++)
                b->ptr[i] = new_block(random_size(&r));
            a->ops += b->count;
            push_foreign(&args[(a->index + 1) % threads], b);
        }
        a->checked += drain_foreign(a);
    }
    pthread_barrier_wait(&barrier); /* no more batches after this */
    a->checked += drain_foreign(a);
    for (size_t i = 0; i < n; i++)
        if (ptr[i]) {
            free_block(ptr[i]);
            a->checked++;
        }
    free(ptr);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[THREADS=2] [LOOPS=4000] [ALLOCS=1000] [OPS=100] [MIN=8] [MAX=16000] "
                        "[CROSS=2] [SEED=1]";
    threads = suite_arg(argc, argv, 1, 2, 1, 1024, usage);
    loops = suite_arg(argc, argv, 2, 4000, 1, 1L << 30, usage);
    allocs = suite_arg(argc, argv, 3, 1000, 1, 1L << 24, usage);
    ops = suite_arg(argc, argv, 4, 100, 1, 1L << 24, usage);
    min_size = suite_arg(argc, argv, 5, 8, 8, 1L << 30, usage);
    max_size = suite_arg(argc, argv, 6, 16000, 8, 1L << 30, usage);
    cross = suite_arg(argc, argv, 7, 2, 0, 1L << 30, usage);
    long seed = suite_arg(argc, argv, 8, 1, 0, 1L << 40, usage);
    if (max_size < min_size)
        suite_fail("MAX (%ld) < MIN (%ld)", max_size, min_size);
    if (ops > allocs)
        suite_fail("OPS (%ld) > ALLOCS (%ld)", ops, allocs);

    double start = suite_now();
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    args = suite_check_alloc(calloc((size_t)threads, sizeof *args), (size_t)threads * sizeof *args);
    for (long t = 0; t < threads; t++) {
        args[t].index = t;
        args[t].seed = suite_mix64((uint64_t)seed * 31u + (uint64_t)t);
    }
    suite_run_threads((size_t)threads, worker, args, sizeof *args);
    unsigned long long total_ops = 0, checked = 0;
    for (long t = 0; t < threads; t++) {
        total_ops += args[t].ops;
        checked += args[t].checked;
    }
    free(args);
    pthread_barrier_destroy(&barrier);
    suite_report(start, "rptest threads=%ld loops=%ld sizes=[%ld,%ld] ops=%llu checked=%llu",
                 threads, loops, min_size, max_size, total_ops, checked);
    return 0;
}
