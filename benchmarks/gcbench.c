/* SPDX-License-Identifier: MIT */
/* benchmarks/gcbench.c - Boehm's GCBench (Ellis and Kovac's trees, the classic C collector
 * benchmark) over kmem_pool collectible blocks and over the Boehm-Demers-Weiser collector,
 * one collector per process.
 *
 *   gcbench VARIANT [--pauses] [--factor F] [--threshold BYTES]
 *
 * The program of GCBench.c: a stretch tree of depth 18, a long-lived tree of depth 16 and an
 * array of 500,000 doubles kept to the end, then for depths 4, 6, ... 16, 2 * NumIters(d)
 * temporary trees of depth d (half built top-down by Populate, half by MakeTree), each
 * dropped at once.  Nodes are two pointers and two ints (24 bytes).  Variants:
 *   boehm          GC_MALLOC nodes (GCBench's own code), GC_MALLOC_ATOMIC for the array
 *   kmem_pool      collectible blocks; the housekeeping thread collects when the threshold
 *                  is passed, calling a mark callback that walks the roots (long-lived
 *                  tree, the temporary tree being built, the array is not collectible)
 *   kmem_pool-sync the same with KMEM_POOL_NO_THREAD: the mutator calls
 *                  kmem_pool_maybe_collect every 256 allocations (a stop-the-world collector
 *                  like Boehm's)
 *   malloc         malloc, and free of each temporary tree (the process's malloc)
 * kmem_pool builds every tree top-down with kmem_pool_alloc_to straight into the parent's
 * field (MakeTree's children are built into the node allocated first): an address is
 * published before the collector may see the block, which is what the sweep guarantee asks.
 *
 * Prints one line: variant, seconds, peak RSS (KiB), collections, collection time max and
 * total (ms), "cpu" and the CPU seconds of all threads (user + system), and with --pauses the mutator's stalls: the number of allocation calls that
 * took 10 us or more, their 99th percentile and the longest call (us), timed with rdtsc
 * around every allocation (a separate run: the timing costs both collectors alike).
 */
#include <gc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <x86intrin.h>

#include "pool/pool.h"
#include "slab/slab.h"

enum { STRETCH_DEPTH = 18, LONG_LIVED_DEPTH = 16, ARRAY_SIZE = 500000, MIN_DEPTH = 4,
       MAX_DEPTH = 16 };

struct node {
    struct node *left, *right;
    int i, j;
};

enum variant { V_BOEHM, V_POOL, V_POOL_SYNC, V_MALLOC };
static enum variant variant;
static struct kmem_pool *pool;
static int timing; /* --pauses */
static unsigned sync_count;

/* ---------------------------------------------------------------- stalls */

#define STALL_MIN_NS 10000.0
#define MAX_STALLS 100000
static double tsc_ns = 1.0; /* ns per tsc tick, calibrated */
static double stalls[MAX_STALLS];
static size_t nstalls, nstalls_total;
static double longest;

static inline uint64_t tsc(void)
{
    return __rdtsc();
}

static void record(uint64_t t0)
{
    double ns = (double)(tsc() - t0) * tsc_ns;
    if (ns > longest)
        longest = ns;
    if (ns >= STALL_MIN_NS) {
        nstalls_total++;
        if (nstalls < MAX_STALLS)
            stalls[nstalls++] = ns;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- roots and marking */

static struct node *long_lived;  /* roots (written with atomic stores by alloc_to) */
static struct node *temp_root;
static double *array;

static struct node *load(struct node *const *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Marks every node reachable from the roots, breadth first through a ring of nodes whose
 * lines are prefetched when they enter it (as Boehm's mark loop prefetches what it pushes),
 * so the walk does not wait for one cache miss per node; a full ring falls back to depth
 * first (trees are at most 19 deep). */
#define MARK_RING 4096
static struct node *mark_ring[MARK_RING];

static void mark_subtree(struct kmem_pool *p, struct node *n)
{
    for (; n; n = load(&n->right)) {
        kmem_pool_mark(p, n);
        mark_subtree(p, load(&n->left));
    }
}

static void mark_roots(struct kmem_pool *p, void *arg)
{
    (void)arg;
    size_t head = 0, tail = 0;
    struct node *r;
    if ((r = load(&long_lived)))
        mark_ring[tail++ % MARK_RING] = r;
    if ((r = load(&temp_root)))
        mark_ring[tail++ % MARK_RING] = r;
    while (head != tail) {
        struct node *n = mark_ring[head++ % MARK_RING];
        kmem_pool_mark(p, n);
        struct node *kids[2] = {load(&n->left), load(&n->right)};
        for (int k = 0; k < 2; k++) {
            if (!kids[k])
                continue;
            if (tail - head < MARK_RING) {
                __builtin_prefetch(kids[k], 0, 3);
                mark_ring[tail++ % MARK_RING] = kids[k];
            } else {
                mark_subtree(p, kids[k]); /* ring full: this subtree depth first */
            }
        }
    }
}

/* ---------------------------------------------------------------- allocation */

static void die(const char *what)
{
    fprintf(stderr, "gcbench: %s failed\n", what);
    exit(1);
}

/* A new node, its address written to *out before it can be collected. */
static struct node *new_node_to(struct node **out)
{
    uint64_t t0 = timing ? tsc() : 0;
    struct node *n;
    switch (variant) {
    case V_BOEHM:
        n = GC_MALLOC(sizeof *n);
        if (!n)
            die("GC_MALLOC");
        *out = n;
        break;
    case V_MALLOC:
        n = calloc(1, sizeof *n);
        if (!n)
            die("calloc");
        *out = n;
        break;
    default:
        if (kmem_pool_alloc_to(pool, sizeof *n, KMEM_POOL_COLLECTIBLE | KM_ZERO, (void **)out))
            die("kmem_pool_alloc_to");
        n = *out;
        if (variant == V_POOL_SYNC && (++sync_count & 255) == 0)
            kmem_pool_maybe_collect(pool);
        break;
    }
    if (timing)
        record(t0);
    return n;
}

static void free_tree(struct node *n)
{
    if (!n)
        return;
    free_tree(n->left);
    free_tree(n->right);
    free(n);
}

/* Drop a temporary tree: garbage for the collectors, freed for malloc. */
static void drop(struct node **root)
{
    if (variant == V_MALLOC)
        free_tree(*root);
    __atomic_store_n(root, NULL, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- GCBench */

static int tree_size(int i)
{
    return (1 << (i + 1)) - 1;
}

static int num_iters(int i)
{
    return 2 * tree_size(STRETCH_DEPTH) / tree_size(i);
}

/* Populate: build the children of n top-down. */
static void populate(int depth, struct node *n)
{
    if (depth <= 0)
        return;
    depth--;
    new_node_to(&n->left);
    new_node_to(&n->right);
    populate(depth, n->left);
    populate(depth, n->right);
}

/* GCBench's MakeTree, bottom-up, for Boehm (the roots of the subtrees being built are on the
 * stack, which Boehm scans). */
static struct node *make_tree_bottom_up(int depth)
{
    if (depth <= 0) {
        struct node *n;
        return new_node_to(&n);
    }
    struct node *l = make_tree_bottom_up(depth - 1);
    struct node *r = make_tree_bottom_up(depth - 1);
    struct node *n;
    new_node_to(&n);
    n->left = l;
    n->right = r;
    return n;
}

/* MakeTree for the pools: the node first, its subtrees built straight into its fields. */
static void make_tree_to(int depth, struct node **out)
{
    struct node *n = new_node_to(out);
    if (depth > 0) {
        make_tree_to(depth - 1, &n->left);
        make_tree_to(depth - 1, &n->right);
    }
}

static void make_tree(int depth, struct node **out)
{
    if (variant == V_BOEHM) {
        struct node *t = make_tree_bottom_up(depth);
        __atomic_store_n(out, t, __ATOMIC_RELEASE);
    } else {
        make_tree_to(depth, out);
    }
}

static void time_construction(int depth)
{
    int iters = num_iters(depth);
    for (int i = 0; i < iters; i++) {
        new_node_to(&temp_root);
        populate(depth, temp_root);
        drop(&temp_root);
    }
    for (int i = 0; i < iters; i++) {
        make_tree(depth, &temp_root);
        drop(&temp_root);
    }
}

static int count_nodes(const struct node *n)
{
    return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Boehm's collections, timed by its event callback. */
static double boehm_start, boehm_max_ms, boehm_total_ms;
static size_t boehm_collections;

static void boehm_event(GC_EventType e)
{
    if (e == GC_EVENT_START) {
        boehm_start = now();
    } else if (e == GC_EVENT_END) {
        double ms = (now() - boehm_start) * 1e3;
        boehm_total_ms += ms;
        if (ms > boehm_max_ms)
            boehm_max_ms = ms;
        boehm_collections++;
    }
}

int main(int argc, char **argv)
{
    static const char *names[] = {"boehm", "kmem_pool", "kmem_pool-sync", "malloc"};
    int found = 0, bad = 0;
    double factor = 0;
    size_t threshold = 0;
    for (int i = 0; argc >= 2 && i < 4; i++)
        if (strcmp(argv[1], names[i]) == 0) {
            variant = (enum variant)i;
            found = 1;
        }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pauses") == 0)
            timing = 1;
        else if (strcmp(argv[i], "--factor") == 0 && i + 1 < argc)
            factor = atof(argv[++i]);
        else if (strcmp(argv[i], "--threshold") == 0 && i + 1 < argc)
            threshold = (size_t)atol(argv[++i]);
        else
            bad = 1;
    }
    if (!found || bad) {
        fprintf(stderr, "usage: gcbench boehm|kmem_pool|kmem_pool-sync|malloc [--pauses] "
                        "[--factor F] [--threshold BYTES]\n");
        return 2;
    }
    if (variant == V_BOEHM) {
        GC_INIT();
        GC_set_on_collection_event(boehm_event);
    } else if (variant != V_MALLOC) {
        struct kmem_pool_config cfg = {0};
        cfg.mark = mark_roots;
        cfg.gc_factor = factor;
        cfg.gc_threshold = threshold;
        if (variant == V_POOL_SYNC)
            cfg.flags = KMEM_POOL_NO_THREAD;
        pool = kmem_pool_create("gcbench", &cfg);
        if (!pool)
            die("kmem_pool_create");
    }
    double c0 = now();
    uint64_t k0 = tsc();
    /* Calibrate the tsc against the clock over 20 ms first (for --pauses). */
    if (timing) {
        while (now() - c0 < 0.02) {
        }
        tsc_ns = (now() - c0) * 1e9 / (double)(tsc() - k0);
    }
    double t0 = now();

    /* Stretch the memory space quickly. */
    make_tree(STRETCH_DEPTH, &temp_root);
    drop(&temp_root);
    /* A long-lived tree and array. */
    new_node_to(&long_lived);
    populate(LONG_LIVED_DEPTH, long_lived);
    size_t abytes = sizeof(double) * ARRAY_SIZE;
    if (variant == V_BOEHM)
        array = GC_MALLOC_ATOMIC(abytes);
    else if (variant == V_MALLOC)
        array = malloc(abytes);
    else
        array = kmem_pool_alloc(pool, abytes, 0); /* not collectible: never marked */
    if (!array)
        die("array");
    for (int i = 0; i < ARRAY_SIZE / 2; i++)
        array[i] = 1.0 / i;
    for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2)
        time_construction(d);
    if (!long_lived || array[1000] != 1.0 / 1000 ||
        count_nodes(long_lived) != tree_size(LONG_LIVED_DEPTH))
        die("the long-lived data");

    double t1 = now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    size_t collections = boehm_collections;
    double gc_max = boehm_max_ms, gc_total = boehm_total_ms;
    if (pool) {
        struct kmem_pool_stats st;
        kmem_pool_get_stats(pool, &st);
        collections = st.collections;
        gc_max = (double)st.max_pause_ns * 1e-6;
        gc_total = (double)st.total_gc_ns * 1e-6;
    }
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    printf("%s %.4f %ld %zu %.2f %.1f cpu %.4f", names[variant], t1 - t0, ru.ru_maxrss,
           collections, gc_max, gc_total, cpu);
    if (timing) {
        qsort(stalls, nstalls, sizeof *stalls, cmp_double);
        double p99 = nstalls ? stalls[(size_t)((double)(nstalls - 1) * 0.99)] : 0;
        printf(" stalls %zu p99 %.0f max %.0f", nstalls_total, p99 * 1e-3, longest * 1e-3);
    }
    printf("\n");
    if (pool)
        kmem_pool_destroy(pool);
    return 0;
}
