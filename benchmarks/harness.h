/* SPDX-License-Identifier: MIT */
/* benchmarks/harness.h - the benchmark harness: allocators as vtables, timing, reports.
 *
 * Every allocator is called through the same vtable (struct bench_alloc), so each one pays
 * the same indirect call per operation.  The peers are loaded inside this one process with
 * dlopen (glibc through its own malloc/free, jemalloc, tcmalloc, mimalloc); a peer that fails
 * to load is reported as missing, never fatal.  Two non-peers run beside them: kmem_cache (the
 * allocator under test) and "floor", a bare intrusive LIFO free list over a preallocated
 * region (the lower bound any object allocator can reach).
 *
 * Each workload is run `reps` times per allocator; the order of the allocators alternates
 * (forward on even reps, backward on odd ones) so no allocator always runs first or right
 * after another one's teardown.  Reported: median and min-max over the reps, and the ratio of
 * the median to the best PEER's median (the best of glibc, jemalloc, tcmalloc, mimalloc).
 * Output: a markdown table on stdout, JSON with --json PATH, a progress line on stderr.
 */
#ifndef SLABCACHE_BENCHMARKS_HARNESS_H
#define SLABCACHE_BENCHMARKS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------------------------------------------------------------- allocators */

enum bench_kind {
    BENCH_KIND_PEER,  /* counts toward "best peer" */
    BENCH_KIND_SLAB,  /* kmem_cache, the allocator under test */
    BENCH_KIND_FLOOR, /* the bare free list */
};

typedef void (*bench_ctor_fn)(void *obj);

struct kmem_cache;

struct bench_alloc {
    const char *name;
    enum bench_kind kind;
    /* Prepare for objects of `size` bytes.  ctor: NULL, or a constructor the allocator runs
     * itself (only when runs_ctor): the workload then skips its own initialisation.
     * 0 on success.  NULL setup = nothing to do. */
    int (*setup)(size_t size, bench_ctor_fn ctor);
    void (*teardown)(void); /* may be NULL */
    void *(*alloc)(size_t size);
    void (*free)(void *p);
    void *(*realloc)(void *p, size_t size); /* NULL: no realloc (kmem_cache, floor) */
    /* A typed cache is called the way its users call it: cache_alloc(*cache, 0) and
     * cache_free(*cache, p) (kmem_cache_alloc/kmem_cache_free), one indirect call per
     * operation like a peer's malloc/free, rather than through a wrapper that supplies the
     * cache.  NULL = alloc/free.  bench_alloc_one/bench_free_one pick. */
    void *(*cache_alloc)(struct kmem_cache *c, unsigned int flags);
    void (*cache_free)(struct kmem_cache *c, void *p);
    struct kmem_cache *const *cache;
    /* Optional bulk interface: all nr or 0.  NULL = the workload loops over alloc/free. */
    size_t (*alloc_bulk)(size_t size, size_t nr, void **objs);
    void (*free_bulk)(size_t nr, void **objs);
    /* Called by a worker thread before it exits (kmem_cache: flush its magazines). */
    void (*thread_exit)(void);
    int runs_ctor;   /* setup's ctor is honoured (constructed-state caching) */
    int thread_safe; /* may be used from several threads at once (floor: per thread only) */
    int cross_thread_free; /* may free from another thread than the one that allocated */
};

/* One allocation and one free the way the allocator's users make them (see cache_alloc).
 * Workloads take `typed` = (a->cache_alloc != NULL) as a constant of a specialised copy of
 * their loop (BENCH_SPECIALISE in cache_bench.c), so no allocator pays a test per operation. */
static inline __attribute__((always_inline)) void *bench_alloc_one(const struct bench_alloc *a,
                                                                   int typed, size_t size)
{
    return typed ? a->cache_alloc(*a->cache, 0) : a->alloc(size);
}

static inline __attribute__((always_inline)) void bench_free_one(const struct bench_alloc *a,
                                                                 int typed, void *p)
{
    if (typed)
        a->cache_free(*a->cache, p);
    else
        a->free(p);
}

/* Load every allocator available in this process: kmem_cache (unless built with
 * SLABCACHE_BENCH_NO_SLAB), kmalloc (likewise), floor, glibc, jemalloc, tcmalloc, mimalloc.  Missing peers are
 * listed through bench_missing().  Returns the count; *out points at a static array. */
size_t bench_load_allocators(const struct bench_alloc **out);
/* kmem_cache, kmalloc or floor by name, without loading any peer (for a child process whose malloc
 * is already the peer under test); NULL if not built in. */
const struct bench_alloc *bench_builtin_allocator(const char *name);
/* The cache kmem_cache's setup created (NULL when none, or without slab). */
struct kmem_cache *bench_kmem_cache(void);
/* Names of peers that failed to load (NULL-terminated static array) and why. */
const char *const *bench_missing(void);

/* jemalloc dlopens only with glibc.rtld.optional_static_tls raised, which must be in the
 * environment at process start: re-exec with it set when it is not (returns only if it is
 * set already or the exec failed). */
void bench_reexec_with_tunables(char **argv);

/* ---------------------------------------------------------------- timing */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Touch an object the way every workload does: write its first and last byte. */
static inline void bench_touch(void *p, size_t size, unsigned char v)
{
    unsigned char *c = (unsigned char *)p;
    c[0] = v;
    c[size - 1] = v;
}

/* xorshift64*: the one random generator of the benchmarks (deterministic per seed). */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---------------------------------------------------------------- workloads and runs */

/* Direction of a metric: ns per op (lower is better) or a ratio/throughput (higher). */
enum bench_better { BENCH_LOWER, BENCH_HIGHER };

/* One measured value of one repetition.  A workload may produce several metrics per run
 * (batch: cold and warm; scale: 1T, 2T and the ratio); `values` has `nmetrics` entries.
 * Return 0, or -1 if the allocator cannot run this workload (e.g. failed allocation) after
 * writing why to stderr; NAN entries are metrics that do not apply to this allocator. */
struct bench_workload {
    const char *name;           /* for --only and the progress line */
    const char *description;    /* one line for the report */
    size_t nmetrics;
    const char *metric_names[4];
    const char *metric_units[4];
    enum bench_better better[4];
    size_t object_size;
    int (*run)(const struct bench_alloc *a, const struct bench_workload *w, double *values);
    /* Scale of the workload: ops or objects; set by the program from --quick. */
    size_t n;
    size_t live;
};

struct bench_options {
    int quick;
    int reps;
    const char *only;      /* comma-separated workload names (mem_bench: sizes), or NULL */
    const char *allocators; /* comma-separated allocator names, or NULL = all */
    const char *json_path; /* or NULL */
    const char *command;   /* the command line, for the report */
};

/* Parse --quick, --reps N, --only W[,W...], --allocators A[,A...], --json PATH, --help.
 * Exits on bad usage. */
void bench_parse_options(int argc, char **argv, struct bench_options *opt, const char *usage_extra);

/* Is `name` in the comma-separated list `list`?  (NULL = everything.) */
int bench_selected(const char *list, const char *name);

/* Run the workloads (those selected by --only) on every allocator, print the tables.
 * Returns 0, or 1 when --only selected nothing. */
int bench_run_all(struct bench_workload *workloads, size_t nworkloads,
                  const struct bench_options *opt);

/* After bench_run_all: the median of one metric (by workload and metric name) for one
 * allocator (by name, or "best-peer"); NAN when it was not measured. */
double bench_median(const char *workload, const char *metric, const char *allocator);

#endif
