/* SPDX-License-Identifier: MIT */
/* benchmarks/suite/suite.h - shared helpers of the allocator-suite workloads.
 *
 * Every workload is a standalone program that calls only the C (or C++) allocation
 * interface, so any allocator can be put under it with LD_PRELOAD.  Each one:
 *   - takes its sizes on the command line (positional, with defaults; -h prints them);
 *   - checks what it computed, and exits 1 with "FAIL: ..." on stderr when a check fails;
 *   - prints two lines on stdout: "check: ..." (the same under every allocator, so a
 *     runner can compare them) and "time: <seconds>" (its own wall time, main to exit).
 * Nothing here allocates behind the workload's back except stdio.
 */
#ifndef SLABCACHE_BENCHMARKS_SUITE_SUITE_H
#define SLABCACHE_BENCHMARKS_SUITE_SUITE_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic seconds. */
static inline double suite_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A failed check: say what, and exit 1 (the runner marks the cell). */
__attribute__((format(printf, 1, 2), noreturn)) static inline void suite_fail(const char *fmt,
                                                                               ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* The allocation failed: every workload treats NULL as a failure (the sizes are modest). */
static inline void *suite_check_alloc(void *p, size_t size)
{
    if (!p)
        suite_fail("allocation of %zu bytes failed", size);
    return p;
}

/* Positional argument i (1-based) as an integer in [lo, hi], or def when absent.  "-h" or
 * "--help" as the first argument prints usage and exits 0. */
static inline long suite_arg(int argc, char **argv, int i, long def, long lo, long hi,
                             const char *usage)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: %s %s\n", argv[0], usage);
        exit(0);
    }
    if (i >= argc)
        return def;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 10);
    if (errno || end == argv[i] || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: argument %d (%s) must be an integer in [%ld, %ld]\nusage: %s %s\n",
                argv[0], i, argv[i], lo, hi, argv[0], usage);
        exit(2);
    }
    return v;
}

/* The two result lines. */
static inline void suite_report(double start, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void suite_report(double start, const char *fmt, ...)
{
    double t = suite_now() - start;
    va_list ap;
    va_start(ap, fmt);
    fputs("check: ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\ntime: %.6f\n", t);
    fflush(stdout);
}

/* ---------------------------------------------------------------- random numbers */

/* splitmix64: seeds streams (Steele, Lea & Flood 2014). */
static inline uint64_t suite_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* xorshift64* (Vigna 2016): one stream per thread. */
struct suite_rng {
    uint64_t s;
};

static inline void suite_rng_seed(struct suite_rng *r, uint64_t seed)
{
    r->s = suite_mix64(seed) | 1;
}

static inline uint64_t suite_rand(struct suite_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n), n > 0 (multiply-shift; the bias is below 2^-32 for these n). */
static inline uint64_t suite_below(struct suite_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)suite_rand(r) * n) >> 64);
}

/* ---------------------------------------------------------------- block contents */

/* The word stored at word index i of a block whose tag is `tag`: blocks that overlap, or
 * that the allocator overwrote, fail the check. */
static inline uint64_t suite_word(uint64_t tag, size_t i)
{
    return (tag * 0x9e3779b97f4a7c15ull) ^ (uint64_t)i ^ 0x5a5a5a5a5a5a5a5aull;
}

/* Fill a block of n >= 8 bytes: every word when `full`, else the first and the last word
 * and one word per 4 KiB page (which faults every page in, as a program writing the block
 * would). */
static inline void suite_fill(void *p, size_t n, uint64_t tag, int full)
{
    uint64_t *w = (uint64_t *)p;
    size_t words = n / 8;
    if (full) {
        for (size_t i = 0; i < words; i++)
            w[i] = suite_word(tag, i);
        return;
    }
    for (size_t i = 0; i < words; i += 512)
        w[i] = suite_word(tag, i);
    w[words - 1] = suite_word(tag, words - 1);
}

/* Check a block filled by suite_fill with the same arguments; returns the words checked. */
static inline size_t suite_verify(const void *p, size_t n, uint64_t tag, int full,
                                  const char *what)
{
    const uint64_t *w = (const uint64_t *)p;
    size_t words = n / 8, checked = 0;
    size_t step = full ? 1 : 512;
    for (size_t i = 0; i < words; i += step, checked++)
        if (w[i] != suite_word(tag, i))
            suite_fail("%s: block %p of %zu bytes (tag %llu) corrupted at word %zu", what, p, n,
                       (unsigned long long)tag, i);
    if (w[words - 1] != suite_word(tag, words - 1))
        suite_fail("%s: block %p of %zu bytes (tag %llu) corrupted at its last word", what, p,
                   n, (unsigned long long)tag);
    return checked + 1;
}

/* ---------------------------------------------------------------- threads */

/* Start n threads running fn(&args[i * stride]) and join them all. */
static inline void suite_run_threads(size_t n, void *(*fn)(void *), void *args, size_t stride)
{
    pthread_t *t = (pthread_t *)suite_check_alloc(calloc(n, sizeof *t), n * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&t[i], NULL, fn, (char *)args + i * stride);
        if (rc)
            suite_fail("pthread_create: %s", strerror(rc));
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

#endif
