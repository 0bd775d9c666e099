/* SPDX-License-Identifier: MIT */
/* benchmarks/binarytrees.c - binary-trees (the Computer Language Benchmarks Game) over pool
 * and malloc allocators, one allocator per process.
 *
 *   binarytrees VARIANT MAX_DEPTH
 *
 * The program of the Benchmarks Game (min depth 4; a stretch tree of MAX_DEPTH + 1; a
 * long-lived tree of MAX_DEPTH; for each depth d = 4, 6, ... MAX_DEPTH, 2^(MAX_DEPTH - d + 4)
 * trees of depth d built top-down, checked and thrown away), single-threaded.  Nodes are two
 * pointers (16 bytes).  How a tree is thrown away is the variant:
 *   kmem_pool   a kmem_pool per tree, kmem_pool_destroy (destroy-all)
 *   apr         an APR pool per tree: a child of one root pool (apr_pool_create /
 *               apr_pool_destroy), so freed blocks stay in the root's allocator
 *   apr-clear   one APR pool per depth, apr_pool_clear per tree (the fastest C entry's way)
 *   talloc      a talloc context per tree, talloc_free of the context
 *   malloc      malloc per node, free per node (the process's malloc: LD_PRELOAD a peer)
 *   kmem_cache  a kmem_cache of nodes, kmem_cache_free per node
 * Prints one line: variant, depth, seconds, peak RSS (KiB), checksum (equal for all), CPU
 * seconds (user + system: on a loaded machine the steadier figure).
 */
#include <apr_pools.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <talloc.h>
#include <time.h>

#include "pool/pool.h"
#include "slab/slab.h"

struct node {
    struct node *l, *r;
};

static long check(const struct node *n)
{
    return n->l ? 1 + check(n->l) + check(n->r) : 1;
}

/* ---------------------------------------------------------------- variants */

enum variant { V_KMEM_POOL, V_APR, V_APR_CLEAR, V_TALLOC, V_MALLOC, V_KMEM_CACHE };
static enum variant variant;
static struct kmem_cache *node_cache;
static apr_pool_t *apr_root;

/* A tree's context: whatever the variant allocates from and throws away at once. */
struct ctx {
    struct kmem_pool *kp;
    apr_pool_t *ap;
    void *tc;
};

static struct node *build(struct ctx *c, int d)
{
    struct node *n;
    switch (variant) {
    case V_KMEM_POOL:
        n = kmem_pool_alloc(c->kp, sizeof *n, 0);
        break;
    case V_APR:
    case V_APR_CLEAR:
        n = apr_palloc(c->ap, sizeof *n);
        break;
    case V_TALLOC:
        n = talloc_size(c->tc, sizeof *n);
        break;
    case V_MALLOC:
        n = malloc(sizeof *n);
        break;
    default:
        n = kmem_cache_alloc(node_cache, 0);
        break;
    }
    if (!n) {
        fprintf(stderr, "binarytrees: out of memory\n");
        exit(1);
    }
    if (d > 0) {
        n->l = build(c, d - 1);
        n->r = build(c, d - 1);
    } else {
        n->l = n->r = NULL;
    }
    return n;
}

static void free_nodes(struct node *n)
{
    if (n->l) {
        free_nodes(n->l);
        free_nodes(n->r);
    }
    if (variant == V_MALLOC)
        free(n);
    else
        kmem_cache_free(node_cache, n);
}

static void ctx_open(struct ctx *c)
{
    switch (variant) {
    case V_KMEM_POOL:
        c->kp = kmem_pool_create("tree", NULL);
        break;
    case V_APR:
        apr_pool_create(&c->ap, apr_root);
        break;
    case V_APR_CLEAR:
        if (!c->ap)
            apr_pool_create_unmanaged_ex(&c->ap, NULL, NULL);
        else
            apr_pool_clear(c->ap);
        break;
    case V_TALLOC:
        c->tc = talloc_new(NULL);
        break;
    default:
        break;
    }
}

/* Throw away a tree (and, for apr-clear, keep the pool for the next one). */
static void ctx_close(struct ctx *c, struct node *root, int last)
{
    switch (variant) {
    case V_KMEM_POOL:
        kmem_pool_destroy(c->kp);
        c->kp = NULL;
        break;
    case V_APR:
        apr_pool_destroy(c->ap);
        c->ap = NULL;
        break;
    case V_APR_CLEAR:
        if (last) {
            apr_pool_destroy(c->ap);
            c->ap = NULL;
        }
        break;
    case V_TALLOC:
        talloc_free(c->tc);
        c->tc = NULL;
        break;
    default:
        free_nodes(root);
        break;
    }
}

int main(int argc, char **argv)
{
    static const char *names[] = {"kmem_pool", "apr", "apr-clear", "talloc", "malloc",
                                  "kmem_cache"};
    if (argc != 3)
        goto usage;
    int found = 0;
    for (int i = 0; i < 6; i++)
        if (strcmp(argv[1], names[i]) == 0) {
            variant = (enum variant)i;
            found = 1;
        }
    int max_depth = atoi(argv[2]);
    if (!found || max_depth < 6 || max_depth > 24)
        goto usage;
    if (variant == V_APR || variant == V_APR_CLEAR) {
        apr_initialize();
        apr_pool_create(&apr_root, NULL);
    }
    if (variant == V_KMEM_CACHE)
        node_cache = kmem_cache_create("node", sizeof(struct node), 0, 0, NULL);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int min_depth = 4;
    long sum = 0;
    {
        struct ctx c = {0};
        ctx_open(&c);
        struct node *t = build(&c, max_depth + 1);
        sum += check(t);
        ctx_close(&c, t, 1);
    }
    struct ctx lc = {0};
    ctx_open(&lc);
    struct node *long_lived = build(&lc, max_depth);
    for (int d = min_depth; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + min_depth), chk = 0;
        struct ctx c = {0};
        for (long i = 0; i < iterations; i++) {
            ctx_open(&c);
            struct node *t = build(&c, d);
            chk += check(t);
            ctx_close(&c, t, i == iterations - 1);
        }
        sum += chk;
    }
    sum += check(long_lived);
    ctx_close(&lc, long_lived, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    printf("%s %d %.4f %ld %ld %.4f\n", names[variant], max_depth, secs, ru.ru_maxrss, sum, cpu);
    if (variant == V_APR || variant == V_APR_CLEAR)
        apr_terminate();
    return 0;
usage:
    fprintf(stderr, "usage: binarytrees kmem_pool|apr|apr-clear|talloc|malloc|kmem_cache "
                    "MAX_DEPTH(6..24)\n");
    return 2;
}
