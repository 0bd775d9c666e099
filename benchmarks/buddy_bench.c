/* SPDX-License-Identifier: MIT */
/* benchmarks/buddy_bench.c - buddy_alloc/buddy_free against mmap/munmap and glibc malloc/free.
 *
 * For every order 0..BUDDY_MAX_ORDER (4 KiB .. 4 MiB) and two workloads:
 *   pair  - allocate one block, touch one byte per page, free it; repeated `pairs` times;
 *   batch - allocate `batch` blocks (touching each page), then free them all;
 * each allocator runs REPS times, the allocators alternating (forward on even repetitions,
 * backward on odd ones) after one untimed warm-up each.  Reported: the median ns per block
 * (one alloc + touch + free) and the ratios buddy/mmap and buddy/malloc; < 1 means buddy is
 * faster.  Touching every page makes mmap pay its real cost (a fault per page); buddy and
 * malloc pay the faults only when their memory is fresh or was given back.
 *
 * Usage: bazel run -c opt //benchmarks:buddy_bench [-- REPS]
 * Output: a markdown table on stdout, progress on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "buddy/buddy.h"

#define MAX_REPS 31

struct bench_ops {
    const char *name;
    void *(*alloc)(unsigned order);
    void (*release)(void *p, unsigned order);
};

static void *buddy_op_alloc(unsigned order)
{
    return buddy_alloc(order, BUDDY_TAG_USER);
}

static void buddy_op_free(void *p, unsigned order)
{
    (void)order;
    buddy_free(p);
}

static void *mmap_op_alloc(unsigned order)
{
    void *p = mmap(NULL, BUDDY_PAGE_SIZE << order, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void mmap_op_free(void *p, unsigned order)
{
    munmap(p, BUDDY_PAGE_SIZE << order);
}

static void *malloc_op_alloc(unsigned order)
{
    return malloc(BUDDY_PAGE_SIZE << order);
}

static void malloc_op_free(void *p, unsigned order)
{
    (void)order;
    free(p);
}

static const struct bench_ops ops[] = {
    {"buddy", buddy_op_alloc, buddy_op_free},
    {"mmap", mmap_op_alloc, mmap_op_free},
    {"malloc", malloc_op_alloc, malloc_op_free},
};
#define NOPS (sizeof ops / sizeof ops[0])

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void touch(void *p, unsigned order)
{
    volatile char *c = p;
    for (size_t i = 0; i < ((size_t)1 << order); i++)
        c[i * BUDDY_PAGE_SIZE] = (char)i;
}

static void *must_alloc(const struct bench_ops *op, unsigned order)
{
    void *p = op->alloc(order);
    if (!p) {
        fprintf(stderr, "buddy_bench: %s: allocation of order %u failed\n", op->name, order);
        exit(1);
    }
    touch(p, order);
    return p;
}

/* ns per block for `n` alloc+touch+free pairs */
static double run_pairs(const struct bench_ops *op, unsigned order, size_t n)
{
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        op->release(must_alloc(op, order), order);
    return (now_ns() - t0) / (double)n;
}

/* ns per block for allocating n blocks, then freeing them all */
static double run_batch(const struct bench_ops *op, unsigned order, size_t n, void **slots)
{
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        slots[i] = must_alloc(op, order);
    for (size_t i = 0; i < n; i++)
        op->release(slots[i], order);
    return (now_ns() - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double measure(const struct bench_ops *op, int batch, unsigned order, size_t n,
                      void **slots)
{
    return batch ? run_batch(op, order, n, slots) : run_pairs(op, order, n);
}

static void bench_row(unsigned order, int batch, int reps, void **slots)
{
    size_t n = batch ? (4096u >> order < 4 ? 4 : 4096u >> order)  /* <= 16 MiB live */
                     : (20000u >> order < 50 ? 50 : 20000u >> order);
    double samples[NOPS][MAX_REPS], med[NOPS];
    for (size_t a = 0; a < NOPS; a++)
        measure(&ops[a], batch, order, n, slots); /* warm-up */
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < NOPS; i++) {
            size_t a = r % 2 ? NOPS - 1 - i : i;
            samples[a][r] = measure(&ops[a], batch, order, n, slots);
        }
    }
    for (size_t a = 0; a < NOPS; a++)
        med[a] = median(samples[a], reps);
    printf("| %2u | %5zu KiB | %-5s | %5zu | %10.0f | %10.0f | %10.0f | %6.2f | %6.2f |\n", order,
           (BUDDY_PAGE_SIZE << order) / 1024, batch ? "batch" : "pair", n, med[0], med[1], med[2],
           med[0] / med[1], med[0] / med[2]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "usage: buddy_bench [REPS (1..%d)]\n", MAX_REPS);
        return 2;
    }
    static void *slots[4096];
    printf("buddy_bench: median ns per block (alloc + touch each page + free), %d reps\n\n",
           reps);
    printf("| order | size | workload | blocks | buddy ns | mmap ns | malloc ns |"
           " buddy/mmap | buddy/malloc |\n");
    printf("|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for (unsigned order = 0; order <= BUDDY_MAX_ORDER; order++) {
        fprintf(stderr, "buddy_bench: order %u\n", order);
        bench_row(order, 0, reps, slots);
        bench_row(order, 1, reps, slots);
    }
    if (buddy_validate() != 0)
        return 1;
    return 0;
}
