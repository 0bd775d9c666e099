/* SPDX-License-Identifier: MIT */
/* benchmarks/cache_bench.c - object-cache workloads: kmem_cache vs malloc peers vs a floor.
 *
 * Every workload runs on 117-byte objects (the tree on ~200-byte inode-like structs), touches
 * the first and last byte of each object it allocates, and reports nanoseconds per object,
 * where one "object" is one allocation plus its free.  kmem_cache gets a fresh cache per run
 * (kmem_cache_create("bench117", 117, 0, 0, NULL)) and is called as its users call it,
 * kmem_cache_alloc(cache, 0) / kmem_cache_free(cache, p); kmalloc (slabcache's
 * general-purpose size classes) and the peers are called through their malloc/free.  Each
 * is one indirect call per operation (bench_alloc_one, BENCH_SPECIALISE).
 *
 *   lifo      alloc+free pairs, the same object over and over
 *   batch     N allocs then N frees; cold = first round after setup, warm = second round
 *   random    N live, shuffled, all freed in random order then all allocated again
 *   mixed     100k live, random replacement (free one at random, allocate its successor)
 *   spsc      one thread allocates, another frees, through a lock-free single-producer ring
 *   bulk64    kmem_cache_alloc_bulk/free_bulk of 64 vs 64 mallocs then 64 frees
 *   scale     thread-local LIFO (depth 16) on 1 and 2 threads; 2T/1T = throughput ratio
 *             (wall clock), and 2T/1T-cpu, the same from each thread's CPU time
 *   tree      balanced binary tree of 1M inode-like structs: build, walk, tear down
 *
 * Usage: cache_bench [--quick] [--reps N] [--only lifo,batch,...] [--json PATH]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchmarks/harness.h"

#define OBJ_SIZE 117

/* ---------------------------------------------------------------- helpers */

static int setup(const struct bench_alloc *a, size_t size, bench_ctor_fn ctor)
{
    return a->setup ? a->setup(size, a->runs_ctor ? ctor : NULL) : 0;
}

static void teardown(const struct bench_alloc *a)
{
    if (a->teardown)
        a->teardown();
}

static void **pointer_array(size_t n)
{
    void **v = calloc(n, sizeof *v);
    if (v == NULL)
        perror("calloc");
    return v;
}

static int alloc_failed(const struct bench_alloc *a, const char *where)
{
    fprintf(stderr, "\n%s: allocation failed in %s\n", a->name, where);
    return -1;
}

/* Every workload's body takes `typed` (bench_alloc_one) and is compiled twice, with typed a
 * constant 0 or 1, so neither kind of allocator pays a test per operation. */
#define INLINE static inline __attribute__((always_inline))
#define BENCH_SPECIALISE(wl)                                                                \
    static int wl(const struct bench_alloc *a, const struct bench_workload *w, double *v)   \
    {                                                                                      \
        return a->cache_alloc != NULL ? wl##_body(a, w, v, 1) : wl##_body(a, w, v, 0);     \
    }

static double ns_per(uint64_t t0, uint64_t t1, size_t n)
{
    return (double)(t1 - t0) / (double)n;
}

/* ---------------------------------------------------------------- a) lifo */

INLINE int wl_lifo_body(const struct bench_alloc *a, const struct bench_workload *w, double *v,
                 int typed)
{
    size_t size = w->object_size, n = w->n;
    if (setup(a, size, NULL) != 0)
        return -1;
    int rc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        void *p = bench_alloc_one(a, typed, size);
        if (p == NULL) {
            rc = alloc_failed(a, "lifo");
            break;
        }
        bench_touch(p, size, (unsigned char)i);
        bench_free_one(a, typed, p);
    }
    uint64_t t1 = bench_now_ns();
    v[0] = ns_per(t0, t1, n);
    teardown(a);
    return rc;
}
BENCH_SPECIALISE(wl_lifo)

/* ---------------------------------------------------------------- b) batch */

/* Allocate all, free all in allocation order; ns per object, or -1 on failure. */
INLINE double batch_round(const struct bench_alloc *a, void **objs, size_t n, size_t size,
                          int typed)
{
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        void *p = bench_alloc_one(a, typed, size);
        if (p == NULL) {
            for (size_t j = 0; j < i; j++)
                bench_free_one(a, typed, objs[j]);
            return -1;
        }
        bench_touch(p, size, (unsigned char)i);
        objs[i] = p;
    }
    for (size_t i = 0; i < n; i++)
        bench_free_one(a, typed, objs[i]);
    uint64_t t1 = bench_now_ns();
    return ns_per(t0, t1, n);
}

INLINE int wl_batch_body(const struct bench_alloc *a, const struct bench_workload *w, double *v,
                 int typed)
{
    size_t size = w->object_size, n = w->live;
    void **objs = pointer_array(n);
    if (objs == NULL || setup(a, size, NULL) != 0) {
        free(objs);
        return -1;
    }
    int rc = 0;
    v[0] = batch_round(a, objs, n, size, typed);
    v[1] = v[0] < 0 ? -1 : batch_round(a, objs, n, size, typed);
    if (v[0] < 0 || v[1] < 0)
        rc = alloc_failed(a, "batch");
    teardown(a);
    free(objs);
    return rc;
}
BENCH_SPECIALISE(wl_batch)

/* ---------------------------------------------------------------- c) random free */

static void shuffle(void **v, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(bench_rand(&s) % (i + 1));
        void *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

INLINE int wl_random_body(const struct bench_alloc *a, const struct bench_workload *w, double *v,
                 int typed)
{
    size_t size = w->object_size, n = w->live;
    void **objs = pointer_array(n);
    if (objs == NULL || setup(a, size, NULL) != 0) {
        free(objs);
        return -1;
    }
    int rc = 0;
    size_t got = 0;
    for (; got < n; got++) {
        objs[got] = bench_alloc_one(a, typed, size);
        if (objs[got] == NULL)
            break;
        bench_touch(objs[got], size, 1);
    }
    if (got < n) {
        rc = alloc_failed(a, "random (fill)");
        goto out;
    }
    shuffle(objs, n, 42);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++)
        bench_free_one(a, typed, objs[i]);
    for (got = 0; got < n; got++) {
        objs[got] = bench_alloc_one(a, typed, size);
        if (objs[got] == NULL)
            break;
        bench_touch(objs[got], size, 2);
    }
    uint64_t t1 = bench_now_ns();
    if (got < n)
        rc = alloc_failed(a, "random (refill)");
    else
        v[0] = ns_per(t0, t1, n);
out:
    for (size_t i = 0; i < got; i++)
        bench_free_one(a, typed, objs[i]);
    teardown(a);
    free(objs);
    return rc;
}
BENCH_SPECIALISE(wl_random)

/* ---------------------------------------------------------------- d) mixed */

INLINE int wl_mixed_body(const struct bench_alloc *a, const struct bench_workload *w, double *v,
                 int typed)
{
    size_t size = w->object_size, live = w->live, n = w->n;
    void **objs = pointer_array(live);
    if (objs == NULL || setup(a, size, NULL) != 0) {
        free(objs);
        return -1;
    }
    int rc = 0;
    size_t got = 0;
    for (; got < live; got++) {
        objs[got] = bench_alloc_one(a, typed, size);
        if (objs[got] == NULL)
            break;
        bench_touch(objs[got], size, 1);
    }
    if (got < live) {
        rc = alloc_failed(a, "mixed (fill)");
        goto out;
    }
    uint64_t s = 7;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(bench_rand(&s) % live);
        bench_free_one(a, typed, objs[k]);
        objs[k] = bench_alloc_one(a, typed, size);
        if (objs[k] == NULL) {
            objs[k] = objs[--got];
            rc = alloc_failed(a, "mixed");
            goto out;
        }
        bench_touch(objs[k], size, (unsigned char)i);
    }
    uint64_t t1 = bench_now_ns();
    v[0] = ns_per(t0, t1, n);
out:
    for (size_t i = 0; i < got; i++)
        bench_free_one(a, typed, objs[i]);
    teardown(a);
    free(objs);
    return rc;
}
BENCH_SPECIALISE(wl_mixed)

/* ---------------------------------------------------------------- e) spsc */

#define RING_SLOTS 1024u /* power of two */
#define CACHELINE 64

struct spsc {
    _Alignas(CACHELINE) _Atomic size_t head; /* written by the producer */
    _Alignas(CACHELINE) _Atomic size_t tail; /* written by the consumer */
    _Alignas(CACHELINE) _Atomic int go, failed;
    const struct bench_alloc *a;
    size_t n, size;
    size_t consumed;
    unsigned int checksum; /* of the bytes the consumer read: keeps the reads */
    void *slots[RING_SLOTS];
};

static void spin_pause(unsigned int *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        *spins = 0;
        sched_yield(); /* 2 shared cores: let the other side run */
    }
}

static void wait_go(_Atomic int *go)
{
    unsigned int spins = 0;
    while (!atomic_load_explicit(go, memory_order_acquire))
        spin_pause(&spins);
}

INLINE void *spsc_producer_body(struct spsc *r, int typed)
{
    const struct bench_alloc *a = r->a;
    size_t tail_seen = 0, head = 0;
    wait_go(&r->go);
    for (size_t i = 0; i < r->n; i++) {
        void *p = bench_alloc_one(a, typed, r->size);
        if (p == NULL) {
            atomic_store_explicit(&r->failed, 1, memory_order_release);
            break;
        }
        bench_touch(p, r->size, (unsigned char)i);
        unsigned int spins = 0;
        while (head - tail_seen == RING_SLOTS) {
            tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head - tail_seen == RING_SLOTS)
                spin_pause(&spins);
        }
        r->slots[head & (RING_SLOTS - 1)] = p;
        atomic_store_explicit(&r->head, ++head, memory_order_release);
    }
    if (a->thread_exit)
        a->thread_exit();
    return NULL;
}

static void *spsc_producer(void *arg)
{
    struct spsc *r = arg;
    return r->a->cache_alloc != NULL ? spsc_producer_body(r, 1) : spsc_producer_body(r, 0);
}

INLINE void *spsc_consumer_body(struct spsc *r, int typed)
{
    const struct bench_alloc *a = r->a;
    size_t head_seen = 0, tail = 0;
    unsigned int sum = 0;
    wait_go(&r->go);
    while (tail < r->n) {
        unsigned int spins = 0;
        while (head_seen == tail) {
            head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
            if (head_seen != tail)
                break;
            if (atomic_load_explicit(&r->failed, memory_order_acquire)) {
                head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
                if (head_seen == tail)
                    goto done;
                break;
            }
            spin_pause(&spins);
        }
        unsigned char *p = r->slots[tail & (RING_SLOTS - 1)];
        sum += p[0];
        p[r->size - 1] = 0;
        bench_free_one(a, typed, p);
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    }
done:
    r->consumed = tail;
    r->checksum = sum;
    if (a->thread_exit)
        a->thread_exit();
    return NULL;
}

static void *spsc_consumer(void *arg)
{
    struct spsc *r = arg;
    return r->a->cache_alloc != NULL ? spsc_consumer_body(r, 1) : spsc_consumer_body(r, 0);
}

static int wl_spsc(const struct bench_alloc *a, const struct bench_workload *w, double *v)
{
    if (!a->cross_thread_free)
        return 0; /* the floor's lists are per thread: not applicable (reported as "-") */
    struct spsc *r = aligned_alloc(CACHELINE, sizeof *r);
    if (r == NULL)
        return -1;
    memset(r, 0, sizeof *r);
    r->a = a;
    r->n = w->n;
    r->size = w->object_size;
    if (setup(a, r->size, NULL) != 0) {
        free(r);
        return -1;
    }
    pthread_t prod, cons;
    int rc = 0;
    if (pthread_create(&cons, NULL, spsc_consumer, r) != 0) {
        rc = -1;
        goto out;
    }
    if (pthread_create(&prod, NULL, spsc_producer, r) != 0) {
        atomic_store(&r->failed, 1);
        atomic_store(&r->go, 1);
        pthread_join(cons, NULL);
        rc = -1;
        goto out;
    }
    uint64_t t0 = bench_now_ns();
    atomic_store_explicit(&r->go, 1, memory_order_release);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    uint64_t t1 = bench_now_ns();
    if (atomic_load(&r->failed))
        rc = alloc_failed(a, "spsc");
    else
        v[0] = ns_per(t0, t1, r->n);
out:
    teardown(a);
    free(r);
    return rc;
}

/* ---------------------------------------------------------------- f) bulk */

#define BULK 64

INLINE int wl_bulk_body(const struct bench_alloc *a, const struct bench_workload *w, double *v,
                 int typed)
{
    size_t size = w->object_size, rounds = w->n / BULK;
    void *objs[BULK];
    if (setup(a, size, NULL) != 0)
        return -1;
    int rc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t r = 0; r < rounds && rc == 0; r++) {
        if (a->alloc_bulk != NULL) {
            if (a->alloc_bulk(size, BULK, objs) != BULK) {
                rc = alloc_failed(a, "bulk");
                break;
            }
            for (size_t i = 0; i < BULK; i++)
                bench_touch(objs[i], size, (unsigned char)i);
            a->free_bulk(BULK, objs);
        } else {
            size_t i;
            for (i = 0; i < BULK; i++) {
                objs[i] = bench_alloc_one(a, typed, size);
                if (objs[i] == NULL)
                    break;
                bench_touch(objs[i], size, (unsigned char)i);
            }
            if (i < BULK)
                rc = alloc_failed(a, "bulk");
            for (size_t j = 0; j < i; j++)
                bench_free_one(a, typed, objs[j]);
        }
    }
    uint64_t t1 = bench_now_ns();
    v[0] = ns_per(t0, t1, rounds * BULK);
    teardown(a);
    return rc;
}
BENCH_SPECIALISE(wl_bulk)

/* ---------------------------------------------------------------- g) scale */

#define SCALE_DEPTH 16

struct scale_arg {
    const struct bench_alloc *a;
    _Atomic int *go;
    size_t n, size;
    int failed;
    uint64_t cpu_ns; /* this thread's CPU time for its n objects */
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

INLINE void *scale_worker_body(struct scale_arg *s, int typed)
{
    const struct bench_alloc *a = s->a;
    void *stack[SCALE_DEPTH];
    wait_go(s->go);
    uint64_t c0 = thread_cpu_ns();
    for (size_t r = 0; r < s->n / SCALE_DEPTH; r++) {
        for (size_t i = 0; i < SCALE_DEPTH; i++) {
            stack[i] = bench_alloc_one(a, typed, s->size);
            if (stack[i] == NULL) {
                s->failed = 1;
                for (size_t j = 0; j < i; j++)
                    bench_free_one(a, typed, stack[j]);
                goto out;
            }
            bench_touch(stack[i], s->size, (unsigned char)i);
        }
        for (size_t i = SCALE_DEPTH; i-- > 0;)
            bench_free_one(a, typed, stack[i]);
    }
out:
    s->cpu_ns = thread_cpu_ns() - c0;
    if (a->thread_exit)
        a->thread_exit();
    return NULL;
}

static void *scale_worker(void *arg)
{
    struct scale_arg *s = arg;
    return s->a->cache_alloc != NULL ? scale_worker_body(s, 1) : scale_worker_body(s, 0);
}

/* Wall-clock ns per object with `threads` workers doing n objects each; <0 on failure.
 * *cpu: CPU ns per object summed over the workers' own thread CPU clocks. */
static double scale_run(const struct bench_alloc *a, size_t threads, size_t n, size_t size,
                        double *cpu)
{
    pthread_t tid[2];
    struct scale_arg args[2];
    _Atomic int go = 0;
    size_t started = 0;
    for (size_t t = 0; t < threads; t++) {
        args[t] = (struct scale_arg){.a = a, .go = &go, .n = n, .size = size, .failed = 0};
        if (pthread_create(&tid[t], NULL, scale_worker, &args[t]) != 0)
            break;
        started++;
    }
    uint64_t t0 = bench_now_ns();
    atomic_store_explicit(&go, 1, memory_order_release);
    int failed = started < threads;
    uint64_t cpu_ns = 0;
    for (size_t t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        failed |= args[t].failed;
        cpu_ns += args[t].cpu_ns;
    }
    uint64_t t1 = bench_now_ns();
    size_t objects = threads * (n / SCALE_DEPTH) * SCALE_DEPTH;
    *cpu = ns_per(0, cpu_ns, objects);
    return failed ? -1 : ns_per(t0, t1, objects);
}

static int wl_scale(const struct bench_alloc *a, const struct bench_workload *w, double *v)
{
    if (setup(a, w->object_size, NULL) != 0)
        return -1;
    int rc = 0;
    double cpu1 = 0, cpu2 = 0;
    v[0] = scale_run(a, 1, w->n, w->object_size, &cpu1);
    v[1] = scale_run(a, 2, w->n, w->object_size, &cpu2);
    if (v[0] < 0 || v[1] < 0) {
        rc = alloc_failed(a, "scale");
    } else {
        v[2] = v[0] / v[1]; /* wall-clock throughput(2T) / throughput(1T) */
        /* The same ratio if each thread had a core of its own: 2 x CPU time per object on
         * 1 thread / CPU time per object on 2 threads.  Blind to time spent asleep on a
         * lock, so an upper bound; it shows contention (shared cache lines, spinning) on a
         * machine whose second core is busy with something else. */
        v[3] = 2.0 * cpu1 / cpu2;
    }
    teardown(a);
    return rc;
}

/* ---------------------------------------------------------------- h) tree of inodes */

struct bench_list {
    struct bench_list *next, *prev;
};

/* An inode-like struct of ~200 bytes: a lock and list heads that a constructor sets up
 * once (kmem_cache keeps objects in their constructed state across free/alloc), plus the
 * fields every allocation fills in. */
struct bench_inode {
    uint64_t ino;
    uint32_t mode, uid, gid, nlink;
    uint64_t size;
    int64_t atime, mtime, ctime;
    pthread_mutex_t lock;
    struct bench_list i_list, i_sb_list;
    struct bench_inode *left, *right;
    uint64_t generation;
    uint32_t flags, blkbits;
    void *private_data;
    char name[32];
};

static void inode_ctor(void *obj)
{
    struct bench_inode *ino = obj;
    pthread_mutex_init(&ino->lock, NULL);
    ino->i_list.next = ino->i_list.prev = &ino->i_list;
    ino->i_sb_list.next = ino->i_sb_list.prev = &ino->i_sb_list;
}

struct tree_ctx {
    const struct bench_alloc *a;
    int typed; /* a->cache_alloc != NULL: recursive, so a test per node (~100 ns each) */
    int ctor_by_allocator;
    int failed;
};

static struct bench_inode *tree_build(struct tree_ctx *c, uint64_t lo, uint64_t hi)
{
    if (lo >= hi || c->failed)
        return NULL;
    uint64_t mid = lo + (hi - lo) / 2;
    struct bench_inode *n = bench_alloc_one(c->a, c->typed, sizeof *n);
    if (n == NULL) {
        c->failed = 1;
        return NULL;
    }
    if (!c->ctor_by_allocator)
        inode_ctor(n);
    n->ino = mid;
    n->mode = 0100644;
    n->uid = n->gid = 1000;
    n->nlink = 1;
    n->size = mid * 4096;
    n->atime = n->mtime = n->ctime = (int64_t)mid;
    n->generation = 1;
    n->flags = 0;
    n->blkbits = 12;
    n->private_data = NULL;
    n->name[0] = 'i';
    n->name[sizeof n->name - 1] = '\0';
    n->left = tree_build(c, lo, mid);
    n->right = tree_build(c, mid + 1, hi);
    return n;
}

/* In-order walk: sum of keys, and a check that the constructed fields are intact. */
static uint64_t tree_walk(const struct bench_inode *n, uint64_t *bad)
{
    uint64_t sum = 0;
    while (n != NULL) {
        sum += tree_walk(n->left, bad);
        sum += n->ino;
        if (n->i_list.next != &n->i_list)
            (*bad)++;
        n = n->right;
    }
    return sum;
}

static void tree_free(const struct bench_alloc *a, int typed, struct bench_inode *n)
{
    while (n != NULL) {
        struct bench_inode *r = n->right;
        tree_free(a, typed, n->left);
        bench_free_one(a, typed, n);
        n = r;
    }
}

static int wl_tree(const struct bench_alloc *a, const struct bench_workload *w, double *v)
{
    if (setup(a, sizeof(struct bench_inode), inode_ctor) != 0)
        return -1;
    int typed = a->cache_alloc != NULL;
    struct tree_ctx c = {.a = a, .typed = typed, .ctor_by_allocator = a->runs_ctor, .failed = 0};
    uint64_t bad = 0, n = w->live;
    uint64_t t0 = bench_now_ns();
    struct bench_inode *root = tree_build(&c, 0, n);
    uint64_t sum = tree_walk(root, &bad);
    tree_free(a, typed, root);
    uint64_t t1 = bench_now_ns();
    teardown(a);
    if (c.failed)
        return alloc_failed(a, "tree");
    if (bad != 0 || sum != n * (n - 1) / 2) {
        fprintf(stderr, "\n%s: tree check failed (sum %llu, %llu bad nodes)\n", a->name,
                (unsigned long long)sum, (unsigned long long)bad);
        return -1;
    }
    v[0] = ns_per(t0, t1, n);
    return 0;
}

/* ---------------------------------------------------------------- the table */

#define NS "ns/obj"

static struct bench_workload workloads[] = {
    {.name = "lifo", .description = "alloc+free pairs", .nmetrics = 1,
     .metric_names = {"lifo"}, .metric_units = {NS}, .better = {BENCH_LOWER},
     .object_size = OBJ_SIZE, .run = wl_lifo},
    {.name = "batch", .description = "N allocs then N frees: cold (fresh cache) and warm",
     .nmetrics = 2, .metric_names = {"cold", "warm"}, .metric_units = {NS, NS},
     .better = {BENCH_LOWER, BENCH_LOWER}, .object_size = OBJ_SIZE, .run = wl_batch},
    {.name = "random", .description = "N live, free all in random order, allocate all again",
     .nmetrics = 1, .metric_names = {"random"}, .metric_units = {NS}, .better = {BENCH_LOWER},
     .object_size = OBJ_SIZE, .run = wl_random},
    {.name = "mixed", .description = "100k live, random replacement", .nmetrics = 1,
     .metric_names = {"mixed"}, .metric_units = {NS}, .better = {BENCH_LOWER},
     .object_size = OBJ_SIZE, .run = wl_mixed},
    {.name = "spsc", .description = "producer allocates, consumer frees, SPSC ring",
     .nmetrics = 1, .metric_names = {"spsc"}, .metric_units = {NS}, .better = {BENCH_LOWER},
     .object_size = OBJ_SIZE, .run = wl_spsc},
    {.name = "bulk64", .description = "alloc_bulk/free_bulk of 64 vs 64 mallocs and frees",
     .nmetrics = 1, .metric_names = {"bulk64"}, .metric_units = {NS},
     .better = {BENCH_LOWER}, .object_size = OBJ_SIZE, .run = wl_bulk},
    {.name = "scale", .description = "thread-local LIFO (depth 16) on 1 and 2 threads",
     .nmetrics = 4, .metric_names = {"1T", "2T", "2T/1T", "2T/1T-cpu"},
     .metric_units = {NS, NS, "x", "x"},
     .better = {BENCH_LOWER, BENCH_LOWER, BENCH_HIGHER, BENCH_HIGHER}, .object_size = OBJ_SIZE,
     .run = wl_scale},
    {.name = "tree", .description = "binary tree of inode-like structs", .nmetrics = 1,
     .metric_names = {"tree"}, .metric_units = {NS}, .better = {BENCH_LOWER},
     .object_size = sizeof(struct bench_inode), .run = wl_tree},
};

#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

static void set_scale(int quick)
{
    /*                         full         quick */
    struct {
        const char *name;
        size_t n, live, qn, qlive;
    } scale[] = {
        {"lifo", 10000000, 0, 1000000, 0},
        {"batch", 0, 1000000, 0, 200000},
        {"random", 0, 1000000, 0, 200000},
        {"mixed", 10000000, 100000, 1000000, 100000},
        {"spsc", 2000000, 0, 300000, 0},
        {"bulk64", 10000000, 0, 1000000, 0},
        {"scale", 20000000, 0, 4000000, 0},
        {"tree", 0, 1000000, 0, 200000},
    };
    for (size_t w = 0; w < NWORKLOADS; w++)
        for (size_t s = 0; s < sizeof scale / sizeof scale[0]; s++)
            if (strcmp(workloads[w].name, scale[s].name) == 0) {
                workloads[w].n = quick ? scale[s].qn : scale[s].n;
                workloads[w].live = quick ? scale[s].qlive : scale[s].live;
            }
}

/* The targets kmem_cache is measured against (reported, never enforced). */
static void print_targets(void)
{
    struct {
        const char *what, *workload, *metric, *against;
        double limit;
        int higher;
    } t[] = {
        {"LIFO vs best peer", "lifo", "lifo", "best-peer", 0.8, 0},
        {"batch (cold) vs best peer", "batch", "cold", "best-peer", 0.8, 0},
        {"batch (warm) vs best peer", "batch", "warm", "best-peer", 0.8, 0},
        {"random-free vs best peer", "random", "random", "best-peer", 0.8, 0},
        {"mixed working set vs best peer", "mixed", "mixed", "best-peer", 0.8, 0},
        {"LIFO vs floor", "lifo", "lifo", "floor", 2.0, 0},
        {"1->2 threads (throughput ratio, wall clock)", "scale", "2T/1T", NULL, 1.8, 1},
        {"1->2 threads (from thread CPU time)", "scale", "2T/1T-cpu", NULL, 1.8, 1},
    };
    printf("### Targets for kmem_cache\n\n| target | limit | measured | met |\n|---|---:|---:|---|\n");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double k = bench_median(t[i].workload, t[i].metric, "kmem_cache");
        double r = k;
        if (t[i].against != NULL)
            r = k / bench_median(t[i].workload, t[i].metric, t[i].against);
        if (r != r) {
            printf("| %s | %s %.2fx | not measured | - |\n", t[i].what, t[i].higher ? ">=" : "<=",
                   t[i].limit);
            continue;
        }
        int met = t[i].higher ? r >= t[i].limit : r <= t[i].limit;
        printf("| %s | %s %.2fx | %.2fx | %s |\n", t[i].what, t[i].higher ? ">=" : "<=",
               t[i].limit, r, met ? "yes" : "**no**");
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    struct bench_options opt;
    bench_reexec_with_tunables(argv);
    bench_parse_options(argc, argv, &opt,
                        "workloads: lifo batch random mixed spsc bulk64 scale tree\n");
    set_scale(opt.quick);
    printf("## cache_bench%s: %d repetitions\n\n", opt.quick ? " (quick)" : "", opt.reps);
    printf("| workload | size | objects | what |\n|---|---:|---:|---|\n");
    for (size_t w = 0; w < NWORKLOADS; w++) {
        const struct bench_workload *wl = &workloads[w];
        if (wl->n && wl->live)
            printf("| %s | %zu B | %zu ops, %zu live | %s |\n", wl->name, wl->object_size,
                   wl->n, wl->live, wl->description);
        else
            printf("| %s | %zu B | %zu | %s |\n", wl->name, wl->object_size,
                   wl->n ? wl->n : wl->live, wl->description);
    }
    printf("\n");
    fflush(stdout);
    int rc = bench_run_all(workloads, NWORKLOADS, &opt);
    if (rc == 0)
        print_targets();
    return rc;
}
