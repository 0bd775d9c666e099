/* SPDX-License-Identifier: MIT */
/* cache_scratch - passive false sharing: each thread frees a block of a line shared with the
 * other threads' blocks, then allocates its own.
 *
 *   cache_scratch [THREADS=2] [ITERATIONS=1000] [SIZE=8] [REPETITIONS=200000]
 *
 * The pattern of Hoard's cache-scratch benchmark (Berger et al., ASPLOS 2000; mimalloc-bench's
 * cache-scratch1 and cache-scratchN), in our own code: the main thread allocates THREADS
 * SIZE-byte blocks back to back (likely on one cache line) and gives one to each thread.  A
 * thread frees the block it was given, then ITERATIONS times allocates a SIZE-byte block,
 * writes and reads every byte of it REPETITIONS / THREADS times, and frees it.  An allocator
 * that hands the freed block straight back to the thread that freed it keeps the threads
 * writing to one line.  The bytes read back are checked and summed.
 */
#include "benchmarks/suite/suite.h"

struct arg {
    unsigned char *given;
    long iterations, size, repetitions;
    unsigned long long sum;
    char pad[64];
};

static void *worker(void *varg)
{
    struct arg *a = varg;
    if (a->given[0] != 0x5c)
        suite_fail("cache_scratch: the block given to a thread was changed");
    free(a->given);
    for (long i = 0; i < a->iterations; i++) {
        volatile unsigned char *obj = suite_check_alloc(malloc((size_t)a->size), (size_t)a->size);
        for (long j = 0; j < a->repetitions; j++)
            for (long k = 0; k < a->size; k++) {
                obj[k] = (unsigned char)(k + j);
                unsigned char c = obj[k];
                if (c != (unsigned char)(k + j))
                    suite_fail("cache_scratch: byte %ld of %p changed under us", k,
                               (const void *)(uintptr_t)obj);
                a->sum += c;
            }
        free((void *)(uintptr_t)obj);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[THREADS=2] [ITERATIONS=1000] [SIZE=8] [REPETITIONS=200000]";
    long threads = suite_arg(argc, argv, 1, 2, 1, 1024, usage);
    long iterations = suite_arg(argc, argv, 2, 1000, 1, 1L << 30, usage);
    long size = suite_arg(argc, argv, 3, 8, 1, 1L << 20, usage);
    long repetitions = suite_arg(argc, argv, 4, 200000, 1, 1L << 40, usage);

    double start = suite_now();
    struct arg *args = suite_check_alloc(calloc((size_t)threads, sizeof *args),
                                         (size_t)threads * sizeof *args);
    for (long t = 0; t < threads; t++) {
        unsigned char *p = suite_check_alloc(malloc((size_t)size), (size_t)size);
        p[0] = 0x5c;
        args[t] = (struct arg){p, iterations, size, repetitions / threads, 0, {0}};
    }
    suite_run_threads((size_t)threads, worker, args, sizeof *args);
    unsigned long long sum = 0;
    for (long t = 0; t < threads; t++)
        sum += args[t].sum;
    free(args);
    suite_report(start, "cache_scratch threads=%ld iterations=%ld size=%ld sum=%llu", threads,
                 iterations, size, sum);
    return 0;
}
