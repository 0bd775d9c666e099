/* SPDX-License-Identifier: MIT */
/* glibc_thread - per-thread random-size malloc/free over a working set.
 *
 *   glibc_thread [THREADS=2] [ITERATIONS=16000000] [WORKING_SET=1024] [SEED=88]
 *
 * The idea of glibc's benchtests/bench-malloc-thread.c (mimalloc-bench's glibc-thread), in
 * our own code and with a fixed number of iterations per thread instead of a fixed time:
 * each thread owns WORKING_SET slots; an iteration takes the next slot from a fixed random
 * sequence, frees its block and allocates a new one whose size comes from a fixed random
 * sequence with an inverse-square distribution over [4, 32768] bytes (most blocks small, a
 * few up to 32 KiB), then writes every byte of it.  The sequences are drawn once, before
 * the threads start, as glibc's benchmark does.  When a block is freed its first and last
 * bytes are checked.
 */
#include <math.h>

#include "benchmarks/suite/suite.h"

#define NUM_SIZES 8000
#define MIN_SIZE 4
#define MAX_SIZE 32768

static uint32_t block_size[NUM_SIZES];
static uint32_t *offset;
static size_t num_offsets;
static long iterations, working_set;

struct arg {
    unsigned long long bytes, checked;
};

static unsigned char first_byte(size_t n)
{
    return (unsigned char)(n * 7u + 1u);
}

static void *bench_thread(void *varg)
{
    struct arg *a = varg;
    unsigned char **set = suite_check_alloc(calloc((size_t)working_set, sizeof *set),
                                            (size_t)working_set * sizeof *set);
    uint32_t *len = suite_check_alloc(calloc((size_t)working_set, sizeof *len),
                                      (size_t)working_set * sizeof *len);
    size_t oi = 0, si = 0;
    for (long it = 0; it < iterations; it++) {
        size_t i = offset[oi];
        oi = oi + 1 == num_offsets ? 0 : oi + 1;
        if (set[i]) {
            size_t n = len[i];
            if (set[i][0] != first_byte(n) || set[i][n - 1] != (unsigned char)(n - 1))
                suite_fail("glibc_thread: block %p of %zu bytes corrupted", (void *)set[i], n);
            a->checked += n;
            free(set[i]);
        }
        size_t n = block_size[si];
        si = si + 1 == NUM_SIZES ? 0 : si + 1;
        unsigned char *p = suite_check_alloc(malloc(n), n);
        for (size_t k = 0; k < n; k++)
            p[k] = (unsigned char)k;
        p[0] = first_byte(n);
        set[i] = p;
        len[i] = (uint32_t)n;
        a->bytes += n;
    }
    for (long i = 0; i < working_set; i++)
        free(set[i]);
    free(set);
    free(len);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[THREADS=2] [ITERATIONS=16000000 per thread] [WORKING_SET=1024] [SEED=88]";
    long threads = suite_arg(argc, argv, 1, 2, 1, 1024, usage);
    iterations = suite_arg(argc, argv, 2, 16000000, 1, 1L << 40, usage);
    working_set = suite_arg(argc, argv, 3, 1024, 1, 1L << 24, usage);
    long seed = suite_arg(argc, argv, 4, 88, 0, 1L << 40, usage);

    double start = suite_now();
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    /* Inverse square: the density of size s is proportional to s^-2 on [MIN, MAX], so the
     * inverse of the distribution function maps u in [0, 1) to
     * 1 / (1/MIN - u (1/MIN - 1/MAX)). */
    for (size_t i = 0; i < NUM_SIZES; i++) {
        double u = (double)(suite_rand(&r) >> 11) * 0x1p-53;
        double s = 1.0 / (1.0 / MIN_SIZE - u * (1.0 / MIN_SIZE - 1.0 / MAX_SIZE));
        block_size[i] = (uint32_t)s < MIN_SIZE ? MIN_SIZE : (uint32_t)s;
    }
    num_offsets = (size_t)working_set * 4;
    offset = suite_check_alloc(calloc(num_offsets, sizeof *offset), num_offsets * sizeof *offset);
    for (size_t i = 0; i < num_offsets; i++)
        offset[i] = (uint32_t)suite_below(&r, (uint64_t)working_set);

    struct arg *args = suite_check_alloc(calloc((size_t)threads, sizeof *args),
                                         (size_t)threads * sizeof *args);
    suite_run_threads((size_t)threads, bench_thread, args, sizeof *args);
    unsigned long long bytes = 0, checked = 0;
    for (long t = 0; t < threads; t++) {
        bytes += args[t].bytes;
        checked += args[t].checked;
    }
    free(args);
    free(offset);
    suite_report(start, "glibc_thread threads=%ld iterations=%ld bytes=%llu bytes_checked=%llu",
                 threads, iterations, bytes, checked);
    return 0;
}
