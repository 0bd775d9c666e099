/* SPDX-License-Identifier: MIT */
/* glibc_simple - single-thread malloc/free of small blocks in runs of 25 to 1600.
 *
 *   glibc_simple [ITERATIONS=2000000] [SIZE=16]
 *
 * The idea of glibc's benchtests/bench-malloc-simple.c (mimalloc-bench's glibc-simple), in
 * our own code: for block sizes SIZE, 2 SIZE and 4 SIZE, and runs of 25, 100, 400 and 1600
 * blocks, allocate a run (writing every int of each block), then free it, ITERATIONS / run
 * times over; first on the main thread, then on a second thread (a fresh thread's first
 * allocations), then on the main thread again after that thread has existed (glibc then
 * takes its locks: SINGLE_THREAD_P is false).  Each block's last int is checked before it
 * is freed.
 */
#include "benchmarks/suite/suite.h"

static const int runs[] = {25, 100, 400, 1600};
#define MAX_RUN 1600

struct arg {
    long iterations;
    size_t size;
    unsigned long long checked;
};

static void one_size(struct arg *a)
{
    int *arr[MAX_RUN];
    size_t ints = a->size / sizeof(int);
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        int n = runs[r];
        for (long j = 0; j < a->iterations / n; j++) {
            for (int i = 0; i < n; i++) {
                arr[i] = suite_check_alloc(malloc(a->size), a->size);
                for (size_t g = 0; g < ints; g++)
                    arr[i][g] = (int)(g + (size_t)i);
            }
            for (int i = 0; i < n; i++) {
                if (arr[i][ints - 1] != (int)(ints - 1 + (size_t)i) || arr[i][0] != i)
                    suite_fail("glibc_simple: block %p of %zu bytes corrupted", (void *)arr[i],
                               a->size);
                a->checked++;
                free(arr[i]);
            }
        }
    }
}

static void *thread_part(void *varg)
{
    one_size(varg);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *usage = "[ITERATIONS=2000000] [SIZE=16]";
    long iterations = suite_arg(argc, argv, 1, 2000000, 1600, 1L << 40, usage);
    long size = suite_arg(argc, argv, 2, 16, 8, 1L << 20, usage);

    double start = suite_now();
    unsigned long long checked = 0;
    for (int k = 0; k < 3; k++) {
        struct arg a = {iterations, (size_t)size << k, 0};
        one_size(&a);                         /* main thread, before any other thread */
        suite_run_threads(1, thread_part, &a, 0); /* a thread of its own */
        one_size(&a);                         /* main thread, after a thread existed */
        checked += a.checked;
    }
    suite_report(start, "glibc_simple iterations=%ld size=%ld blocks_checked=%llu", iterations,
                 size, checked);
    return 0;
}
