/* SPDX-License-Identifier: MIT */
/* benchmarks/check_cost.c - what the always-on free-time checks cost.
 *
 * Built twice: `check_cost` against //slab:slab (the checks on, as shipped) and
 * `check_cost_unchecked` against //slab:slab_unchecked_for_benchmarks (the inline pointer
 * check and the magazine-top double-free check compiled out).  benchmarks/check_cost.sh runs
 * the two alternately and reports checked / unchecked per workload.  One line per workload:
 * "<name> <ns per alloc+free>".  117-byte objects, as the other cache benchmarks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slab/slab.h"

#define OBJ_SIZE 117

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 88172645463325252u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void touch(void *p)
{
    ((volatile unsigned char *)p)[0] = 1;
    ((volatile unsigned char *)p)[OBJ_SIZE - 1] = 2;
}

/* LIFO: alloc + free pairs. */
static double lifo(struct kmem_cache *c, size_t n)
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        void *p = kmem_cache_alloc(c, 0);
        touch(p);
        kmem_cache_free(c, p);
    }
    return (double)(now_ns() - t0) / (double)n;
}

/* Mixed working set: `live` objects, `n` random replacements. */
static double mixed(struct kmem_cache *c, size_t live, size_t n, void **v)
{
    for (size_t i = 0; i < live; i++) {
        v[i] = kmem_cache_alloc(c, 0);
        touch(v[i]);
    }
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(rng() % live);
        kmem_cache_free(c, v[k]);
        v[k] = kmem_cache_alloc(c, 0);
        touch(v[k]);
    }
    double ns = (double)(now_ns() - t0) / (double)n;
    for (size_t i = 0; i < live; i++)
        kmem_cache_free(c, v[i]);
    return ns;
}

/* Random-order free of `live` objects, then allocate them all again. */
static double random_free(struct kmem_cache *c, size_t live, void **v)
{
    for (size_t i = 0; i < live; i++) {
        v[i] = kmem_cache_alloc(c, 0);
        touch(v[i]);
    }
    for (size_t i = live - 1; i > 0; i--) {
        size_t j = (size_t)(rng() % (i + 1));
        void *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < live; i++)
        kmem_cache_free(c, v[i]);
    for (size_t i = 0; i < live; i++) {
        v[i] = kmem_cache_alloc(c, 0);
        touch(v[i]);
    }
    double ns = (double)(now_ns() - t0) / (double)live;
    for (size_t i = 0; i < live; i++)
        kmem_cache_free(c, v[i]);
    return ns;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t scale = quick ? 10 : 1;
    size_t live = 1000000 / scale;
    void **v = calloc(live, sizeof *v);
    struct kmem_cache *c = kmem_cache_create("check_cost", OBJ_SIZE, 0, 0, NULL);
    if (!v || !c) {
        fprintf(stderr, "check_cost: out of memory\n");
        return 1;
    }
    printf("lifo %.3f\n", lifo(c, 20000000 / scale));
    printf("mixed %.3f\n", mixed(c, 100000, 10000000 / scale, v));
    printf("random %.3f\n", random_free(c, live, v));
    kmem_cache_destroy(c);
    free(v);
    return 0;
}
