/* SPDX-License-Identifier: MIT */
/* benchmarks/pool_micro.c - the cost of a pool's life: create, N allocations of 16 bytes,
 * destroy, for N = 1, 8, 64, 512, 4096, kmem_pool against an APR child pool (the two sides of
 * binary-trees' time: per pool and per block).  Alternates the two, three rounds; prints
 * ns per pool and ns per block of each round.
 *
 *   pool_micro
 */
#include <apr_pools.h>
#include <stdio.h>
#include <time.h>

#include "pool/pool.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static volatile void *sink;

int main(void)
{
    apr_initialize();
    apr_pool_t *root;
    apr_pool_create(&root, NULL);
    printf("| blocks | kmem_pool ns/pool | ns/block | APR ns/pool | ns/block |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    for (int round = 0; round < 3; round++) {
        for (int nodes = 1; nodes <= 4096; nodes *= 8) {
            int iters = 2000000 / nodes;
            if (iters > 200000)
                iters = 200000;
            double t0 = now();
            for (int i = 0; i < iters; i++) {
                struct kmem_pool *p = kmem_pool_create("micro", NULL);
                for (int k = 0; k < nodes; k++)
                    sink = kmem_pool_alloc(p, 16, 0);
                kmem_pool_destroy(p);
            }
            double t1 = now();
            for (int i = 0; i < iters; i++) {
                apr_pool_t *p;
                apr_pool_create(&p, root);
                for (int k = 0; k < nodes; k++)
                    sink = apr_palloc(p, 16);
                apr_pool_destroy(p);
            }
            double t2 = now();
            printf("| %d | %.1f | %.2f | %.1f | %.2f |\n", nodes, (t1 - t0) / iters * 1e9,
                   (t1 - t0) / iters / nodes * 1e9, (t2 - t1) / iters * 1e9,
                   (t2 - t1) / iters / nodes * 1e9);
        }
    }
    apr_terminate();
    return 0;
}
