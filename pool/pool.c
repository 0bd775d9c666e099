/* SPDX-License-Identifier: MIT */
/* pool/pool.c - the life of a kmem_pool, its blocks and its thread caches.
 *
 * Structures, per-slot bits, invariants and the lock order: internal.h.  Long form:
 * docs/pools.md.
 *
 * Size classes.  33 classes (8, 16 to 128 in steps of 16, then four per doubling up to
 * KMEM_POOL_SMALL_MAX), each a private kmem_cache without magazines whose slabs carry the
 * pool's POOL_BITMAPS extra per-slot bitmaps.  A class's cache is made on its first use.
 * Larger blocks are buddy blocks (tag BUDDY_TAG_POOL) in an open-addressed table per pool.
 *
 * Why no magazines: a cache with magazines takes one of SLAB_MAX_CACHES magazine-table ids,
 * and a program may have hundreds of pools alive and create thousands.  The pool keeps its
 * own per-thread caching instead: a thread has POOL_TLS_WAYS ways (direct-mapped by the
 * pool's serial number), each caching free blocks per class for one pool.  A way is checked
 * by (pool, serial): a destroyed pool's serial is 0 and a new pool gets a new one, so a way
 * left behind by a destroyed pool is never used and never needs to be reached by destroy,
 * which therefore touches no other thread.  Pool structures are type-stable (recycled as
 * pools, never unmapped), so the owner of a stale way may lock its old pool to see whether
 * it still has the way registered (pool->tcs) before giving its blocks back.
 *
 * Destroy is proportional to slabs: slab_reset_all empties each class cache at once, and
 * the cache (with POOL_KEEP_SLABS empty slabs) goes to a per-class recycle list for the next
 * pool, so a program that makes a pool per request does not create a cache per request.
 *
 * Pools with a cap (exact counts) or with the FILL / CHECK flags have no thread caches:
 * every allocation and free takes pool->lock.
 *
 * Double frees: a slot that is back in its slab has its in-use bit clear; a block sitting in
 * a thread cache carries the free mark (pool_free_mark) in its first word.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buddy/buddy.h"
#include "heap/options.h"
#include "heap/fmt.h"
#include "pool/internal.h"

#define pool_assert_locked(p) heap_mutex_assert_held(&(p)->lock)
#define TCL(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define TCS(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

const uint32_t pool_class_size[POOL_NCLASSES] = {
    8,    16,   32,   48,   64,   80,   96,   112,  128,  160,  192,  224,  256,  320,  384,  448, 512,
    640,  768,  896,  1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
};
_Static_assert(KMEM_POOL_SMALL_MAX == 8192, "the class table ends at KMEM_POOL_SMALL_MAX");

/* Blocks a thread caches per class: POOL_TC_MAX, fewer for large classes (about 64 KiB). */
static inline uint32_t tc_cap(unsigned ci)
{
    uint32_t n = 65536u / pool_class_size[ci];
    return n > POOL_TC_MAX ? POOL_TC_MAX : n < 8 ? 8 : n;
}

/* Blocks a refill takes: half the cache, at most a bitmap word's worth. */
static inline uint32_t tc_refill(unsigned ci)
{
    uint32_t n = tc_cap(ci) / 2;
    return n > POOL_REFILL_MAX ? POOL_REFILL_MAX : n;
}

uintptr_t pool_secret;
__thread struct pool_tls *pool_tls_active __attribute__((tls_model("initial-exec")));
static __thread struct pool_tls *pool_tls_table; /* the thread's table, even while inactive */
/* The calling thread's id for owner caches: the address of its pool_thread_marker, NULL
 * until first needed and while a finalizer runs (no thread cache there). */
static __thread char pool_thread_marker;
__thread const void *pool_my_id __attribute__((tls_model("initial-exec")));
/* Destroyed pools this thread keeps for its next creates, caches attached. */
static __thread struct kmem_pool *pool_stash;
static __thread unsigned pool_stash_n;
static __thread bool pool_key_set;
/* Pools this thread created lately (it owns their `own` cache), for kmem_cache_thread_flush
 * and thread exit; older ones keep their owner cache until destroyed. */
#define POOL_OWNED_RING 16
static __thread struct {
    struct kmem_pool *pool;
    uint64_t serial;
} pool_owned[POOL_OWNED_RING];
static __thread unsigned pool_owned_next;

static struct heap_mutex pool_global_lock = HEAP_MUTEX_INITIALIZER;
static struct kmem_pool *free_pools;               /* pool_global_lock */
static size_t free_pools_with_caches;              /* pool_global_lock */
static struct pool_tls *free_tables;               /* pool_global_lock */
HEAP_LARGE_BSS static struct kmem_cache *recycled[POOL_NCLASSES][POOL_RECYCLE_MAX];
static unsigned nrecycled[POOL_NCLASSES];
static uint64_t next_serial = 1;                   /* atomic */
static pthread_key_t tls_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#define POOL_KNOWN_CONFIG_FLAGS                                                             \
    (KMEM_POOL_FILL_ON_ALLOC | KMEM_POOL_FILL_ON_FREE | KMEM_POOL_CHECK_EVERY_CALL |      \
     KMEM_POOL_NO_THREAD)
#define POOL_KNOWN_BLOCK_FLAGS                                                              \
    (KM_ZERO | KM_NOFAIL | KMEM_POOL_COLLECTIBLE | KMEM_POOL_INTERCEPT_FREE)

/* ---------------------------------------------------------------- reports */

void pool_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    heap_fmt_vline(fmt, ap);
    va_end(ap);
    report_misuse();
}

bool pool_is_live(const struct kmem_pool *pool)
{
    return pool && ((uintptr_t)pool & 7) == 0 &&
           __atomic_load_n(&pool->magic, __ATOMIC_ACQUIRE) == POOL_MAGIC;
}

static bool check_live(const struct kmem_pool *pool, const char *op)
{
    if (SLAB_LIKELY(pool_is_live(pool)))
        return true;
    if (pool)
        pool_report("%s: %p is not a live pool (destroyed?)", op, (const void *)pool);
    errno = EINVAL;
    return false;
}

/* ---------------------------------------------------------------- thread caches */

static void tc_unlink_locked(struct kmem_pool *pool, struct pool_tc *e)
{
    pool_assert_locked(pool);
    if (e->prev)
        e->prev->next = e->next;
    else
        pool->tcs = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->next = e->prev = NULL;
    e->linked = false;
}

/* Give a batch of free slots of class ci back to their slabs (no pool lock needed: only the
 * cache's).  Debug caches get their per-object hooks. */
static void slots_to_slabs(struct kmem_cache *c, void **objs, size_t n)
{
    if (!n)
        return;
    if (SLAB_UNLIKELY(c->debug)) {
        for (size_t i = 0; i < n; i++)
            slab_free_one(c, objs[i], NULL);
        return;
    }
    slab_free_batch_with_count(c, objs, n, NULL, NULL);
    __atomic_fetch_add(&c->frees, n, __ATOMIC_RELAXED);
}

void pool_tc_totals(const struct pool_tc *e, size_t *out_blocks, size_t *out_bytes,
                    size_t *cached_blocks, size_t *cached_bytes)
{
    size_t ob = 0, oby = 0, cb = 0, cby = 0;
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        const struct pool_tc_class *k = &e->cls[ci];
        size_t out = pool_tc_out(k, ci), cached = pool_tc_cached(k, ci);
        ob += out;
        oby += out * pool_class_size[ci];
        cb += cached;
        cby += cached * pool_class_size[ci];
    }
    *out_blocks = ob;
    *out_bytes = oby;
    if (cached_blocks)
        *cached_blocks = cb;
    if (cached_bytes)
        *cached_bytes = cby;
}

/* Blocks of a thread cache's stack back to their slabs: their free marks are cleared first
 * (a block in a slab never carries the pool's mark). */
static void stack_to_slabs(struct kmem_cache *c, void **objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *(uintptr_t *)objs[i] = 0;
    slots_to_slabs(c, objs, n);
}

/* The unused part of a class's run back to the slabs, in batches. */
static void run_to_slabs(struct kmem_cache *c, struct pool_tc_class *k, unsigned ci)
{
    void *batch[256];
    char *b = TCL(k->bump), *end = TCL(k->end);
    size_t n = 0, size = pool_class_size[ci];
    for (; b < end; b += size) {
        batch[n++] = b;
        if (n == 256) {
            slots_to_slabs(c, batch, n);
            n = 0;
        }
    }
    slots_to_slabs(c, batch, n);
    TCS(k->bump, NULL);
    TCS(k->end, NULL);
}

/* The owner drops way e: if its pool still has it registered, the cached blocks go back
 * to their slabs and the counters into the pool; otherwise (pool destroyed) they are
 * forgotten.  No lock held. */
static void tc_evict(struct pool_tc *e)
{
    struct kmem_pool *p = TCL(e->pool);
    if (!p)
        return;
    heap_mutex_lock(&p->lock);
    if (e->linked) {
        tc_unlink_locked(p, e);
        __atomic_fetch_add(&p->collectible_blocks, TCL(e->coll_blocks), __ATOMIC_RELAXED);
        __atomic_fetch_add(&p->collectible_bytes, TCL(e->coll_bytes), __ATOMIC_RELAXED);
        size_t out, out_bytes;
        pool_tc_totals(e, &out, &out_bytes, NULL, NULL);
        if (p->live_bytes + TCL(e->peak_net) > p->peak_bytes)
            p->peak_bytes = p->live_bytes + TCL(e->peak_net);
        p->allocs += TCL(e->frees) + out;
        p->frees += TCL(e->frees);
        p->live_blocks += out;
        p->live_bytes += out_bytes;
        for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
            struct pool_tc_class *k = &e->cls[ci];
            uint32_t n = TCL(k->count);
            if (n) {
                TCS(k->count, 0);
                stack_to_slabs(p->cls[ci], e->objs[ci], n);
            }
            if (TCL(k->bump) != TCL(k->end))
                run_to_slabs(p->cls[ci], k, ci);
        }
    }
    heap_mutex_unlock(&p->lock);
    TCS(e->pool, NULL);
    TCS(e->serial, 0);
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        TCS(e->cls[ci].count, 0);
        TCS(e->cls[ci].bump, NULL);
        TCS(e->cls[ci].end, NULL);
        TCS(e->cls[ci].in, 0);
    }
    TCS(e->frees, 0);
    TCS(e->coll_blocks, 0);
    TCS(e->coll_bytes, 0);
    TCS(e->reserved, 0);
    TCS(e->peak_net, 0);
}

static void tls_flush(struct pool_tls *t)
{
    for (unsigned w = 0; w < POOL_TLS_WAYS; w++)
        tc_evict(&t->way[w]);
}

/* Empty the owner caches of the pools this thread created lately and still owns; with
 * `disown`, give up ownership too (thread exit).  Pool structures are type-stable, so a
 * stale entry is only compared (serial, under the pool's lock). */
static void owned_flush(bool disown)
{
    for (unsigned i = 0; i < POOL_OWNED_RING; i++) {
        struct kmem_pool *p = pool_owned[i].pool;
        if (!p)
            continue;
        pool_owned[i].pool = NULL;
        heap_mutex_lock(&p->lock);
        if (__atomic_load_n(&p->serial, __ATOMIC_RELAXED) == pool_owned[i].serial &&
            __atomic_load_n(&p->own_id, __ATOMIC_RELAXED) == (const void *)&pool_thread_marker) {
            struct pool_tc *e = &p->own;
            __atomic_fetch_add(&p->collectible_blocks, TCL(e->coll_blocks), __ATOMIC_RELAXED);
            __atomic_fetch_add(&p->collectible_bytes, TCL(e->coll_bytes), __ATOMIC_RELAXED);
            TCS(e->coll_blocks, 0);
            TCS(e->coll_bytes, 0);
            for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
                struct pool_tc_class *k = &e->cls[ci];
                size_t cached = pool_tc_cached(k, ci);
                if (!cached)
                    continue;
                uint32_t n = TCL(k->count);
                if (n) {
                    TCS(k->count, 0);
                    stack_to_slabs(p->cls[ci], e->objs[ci], n);
                }
                if (TCL(k->bump) != TCL(k->end))
                    run_to_slabs(p->cls[ci], k, ci);
                TCS(k->in, TCL(k->in) - cached);
                TCS(e->reserved, TCL(e->reserved) - cached * pool_class_size[ci]);
            }
            if (disown)
                __atomic_store_n(&p->own_id, POOL_NO_OWNER, __ATOMIC_RELAXED);
        }
        heap_mutex_unlock(&p->lock);
    }
}

/* kmem_cache_thread_flush hook: the calling thread's pool caches, every way and the owner
 * caches of the pools it created lately. */
static void pool_thread_flush(void)
{
    if (pool_tls_table)
        tls_flush(pool_tls_table);
    owned_flush(false);
}

static void pool_struct_put_global(struct kmem_pool *pool);

/* Thread exit: the pool caches of the thread's ways go back, its table and its stash of
 * destroyed pools to the process's lists. */
static void tls_destructor(void *arg)
{
    (void)arg;
    owned_flush(true);
    struct pool_tls *t = pool_tls_table;
    if (t) {
        tls_flush(t);
        pool_tls_active = pool_tls_table = NULL;
        heap_mutex_lock(&pool_global_lock);
        t->next_free = free_tables;
        free_tables = t;
        heap_mutex_unlock(&pool_global_lock);
    }
    while (pool_stash) {
        struct kmem_pool *p = pool_stash;
        pool_stash = p->next_free;
        pool_stash_n--;
        pool_struct_put_global(p);
    }
    pool_key_set = false;
}

static void key_set(void)
{
    if (!pool_key_set) {
        pthread_setspecific(tls_key, &pool_thread_marker);
        pool_key_set = true;
    }
}

static const void *pool_thread_id(void)
{
    if (!pool_my_id && !pool_in_finalizer)
        pool_my_id = &pool_thread_marker;
    return &pool_thread_marker;
}

static void pool_init(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uintptr_t x = (uintptr_t)&ts ^ ((uintptr_t)ts.tv_nsec << 20) ^ (uintptr_t)ts.tv_sec ^
                  (uintptr_t)&pool_secret;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 29;
    pool_secret = x | 1;
    pthread_key_create(&tls_key, tls_destructor);
    magazine_set_thread_flush_hook(pool_thread_flush);
}

/* The calling thread's cache for pool: the owner's, or its matching way; NULL if none. */
static inline __attribute__((always_inline)) struct pool_tc *tc_of(struct kmem_pool *pool)
{
    if (SLAB_LIKELY(__atomic_load_n(&pool->own_id, __ATOMIC_RELAXED) == pool_my_id))
        return &pool->own;
    struct pool_tls *t = pool_tls_active;
    if (SLAB_UNLIKELY(!t))
        return NULL;
    struct pool_tc *e = &t->way[pool->way];
    if (SLAB_LIKELY(TCL(e->pool) == pool &&
                    TCL(e->serial) == __atomic_load_n(&pool->serial, __ATOMIC_RELAXED)))
        return e;
    return NULL;
}

/* Set up the calling thread's way for pool (evicting whatever it held).  NULL when the pool
 * has no thread caches, inside a finalizer (pool_tls_active is NULL there) or out of
 * memory. */
static struct pool_tc *tc_setup(struct kmem_pool *pool)
{
    if (!pool->tcache || pool_in_finalizer)
        return NULL;
    struct pool_tls *t = pool_tls_table;
    if (!pool_my_id) { /* first use on this thread: maybe the owner after all */
        pool_thread_id();
        if (__atomic_load_n(&pool->own_id, __ATOMIC_RELAXED) == pool_my_id)
            return &pool->own;
    }
    if (!t) {
        heap_mutex_lock(&pool_global_lock);
        t = free_tables;
        if (t)
            free_tables = t->next_free;
        heap_mutex_unlock(&pool_global_lock);
        if (!t && !(t = heap_meta_alloc(sizeof *t)))
            return NULL;
        t->next_free = NULL;
        pool_tls_table = pool_tls_active = t;
        key_set();
    }
    struct pool_tc *e = &t->way[pool->way];
    tc_evict(e);
    heap_mutex_lock(&pool->lock);
    TCS(e->serial, __atomic_load_n(&pool->serial, __ATOMIC_RELAXED));
    TCS(e->pool, pool);
    e->prev = NULL;
    e->next = pool->tcs;
    if (pool->tcs)
        pool->tcs->prev = e;
    pool->tcs = e;
    e->linked = true;
    heap_mutex_unlock(&pool->lock);
    return e;
}

/* ---------------------------------------------------------------- size classes */

static struct kmem_cache *class_cache_create(unsigned ci)
{
    heap_mutex_lock(&pool_global_lock);
    struct kmem_cache *c = nrecycled[ci] ? recycled[ci][--nrecycled[ci]] : NULL;
    heap_mutex_unlock(&pool_global_lock);
    if (c)
        return c;
    char name[KMEM_CACHE_NAME_MAX];
    heap_fmt(name, sizeof name, "kmem_pool-%u", pool_class_size[ci]);
    struct kmem_cache_args args = {0};
    args.align = ci == 0 ? 8 : 16;
    args.max_empty_slabs = 2;
    return cache_create_with_bitmaps_small(name, pool_class_size[ci], &args, SLAB_NO_MAGAZINE,
                                           POOL_BITMAPS);
}

/* A destroyed pool's class cache, emptied: kept for the next pool, or destroyed. */
static void class_cache_retire(unsigned ci, struct kmem_cache *c)
{
    slab_reset_all(c, 0);
    heap_mutex_lock(&pool_global_lock);
    if (nrecycled[ci] < POOL_RECYCLE_MAX) {
        recycled[ci][nrecycled[ci]++] = c;
        c = NULL;
    }
    heap_mutex_unlock(&pool_global_lock);
    if (c)
        kmem_cache_destroy(c); /* empty: silent */
}

/* A free pool structure: the calling thread's stash first, then the process's list, then a
 * new one.  Its class caches (empty) may still be attached from its last life. */
static struct kmem_pool *pool_struct_get(void)
{
    struct kmem_pool *pool = pool_stash;
    if (pool) {
        pool_stash = pool->next_free;
        pool_stash_n--;
        return pool;
    }
    heap_mutex_lock(&pool_global_lock);
    pool = free_pools;
    if (pool) {
        free_pools = pool->next_free;
        for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
            if (pool->cls[ci]) {
                free_pools_with_caches--;
                break;
            }
        }
    }
    heap_mutex_unlock(&pool_global_lock);
    if (pool)
        return pool;
    pool = heap_meta_alloc(sizeof *pool);
    if (pool) {
        /* Initialised once: the structure stays a pool for the life of the process (a
         * stale thread-cache way may lock it; see the top of this file). */
        heap_mutex_init(&pool->lock);
        heap_mutex_init(&pool->gc_lock);
        pthread_mutex_init(&pool->hk_mutex, NULL);
        pthread_cond_init(&pool->hk_cond, NULL);
    }
    return pool;
}

/* A destroyed pool (its caches empty) onto the process's list; only so many keep their
 * caches, the others' caches are recycled per class or destroyed. */
static void pool_struct_put_global(struct kmem_pool *pool)
{
    struct kmem_cache *drop[POOL_NCLASSES];
    bool has = false;
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++)
        has |= pool->cls[ci] != NULL;
    heap_mutex_lock(&pool_global_lock);
    bool keep = has && free_pools_with_caches < POOL_SPARE_WITH_CACHES;
    if (keep)
        free_pools_with_caches++;
    memcpy(drop, pool->cls, sizeof drop);
    if (!keep)
        memset(pool->cls, 0, sizeof pool->cls);
    pool->next_free = free_pools;
    free_pools = pool;
    heap_mutex_unlock(&pool_global_lock);
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        if (!drop[ci])
            continue;
        if (keep)
            slab_release_empty(drop[ci], 0); /* only a thread's stash keeps slabs */
        else
            class_cache_retire(ci, drop[ci]);
    }
}

static struct kmem_cache *class_cache(struct kmem_pool *pool, unsigned ci)
{
    struct kmem_cache *c = __atomic_load_n(&pool->cls[ci], __ATOMIC_ACQUIRE);
    if (SLAB_LIKELY(c != NULL))
        return c;
    heap_mutex_lock(&pool->lock);
    c = pool->cls[ci];
    if (!c) {
        c = class_cache_create(ci);
        if (c)
            __atomic_store_n(&pool->cls[ci], c, __ATOMIC_RELEASE);
    }
    heap_mutex_unlock(&pool->lock);
    return c;
}

bool pool_find_slot(struct kmem_pool *pool, const void *block, struct pool_ref *ref)
{
    if (!slab_lookup_slot(block, &ref->at))
        return false;
    uint32_t size = ref->at.cache->object_size;
    if (size > KMEM_POOL_SMALL_MAX)
        return false;
    unsigned ci = pool_class_of(size);
    if (pool_class_size[ci] != size ||
        __atomic_load_n(&pool->cls[ci], __ATOMIC_ACQUIRE) != ref->at.cache)
        return false;
    ref->large = false;
    ref->ci = ci;
    ref->size = size;
    ref->lb = NULL;
    return true;
}

/* ---------------------------------------------------------------- large blocks */

static inline size_t large_hash(const void *block, size_t cap)
{
    return (size_t)(((uintptr_t)block >> 12) * 0x9e3779b97f4a7c15u >> 20) & (cap - 1);
}

struct pool_large *pool_large_find_locked(struct kmem_pool *pool, const void *block)
{
    pool_assert_locked(pool);
    if (!pool->large_cap || !block || block == POOL_LARGE_TOMB)
        return NULL;
    for (size_t i = large_hash(block, pool->large_cap), n = 0; n < pool->large_cap;
         i = (i + 1) & (pool->large_cap - 1), n++) {
        struct pool_large *lb = &pool->large[i];
        if (lb->block == block)
            return lb;
        if (!lb->block)
            return NULL;
    }
    return NULL;
}

static int large_grow_locked(struct kmem_pool *pool)
{
    pool_assert_locked(pool);
    size_t cap = pool->large_cap ? pool->large_cap * 2 : 16;
    if (pool->large_live * 4 < pool->large_cap)
        cap = pool->large_cap; /* mostly tombstones: rehash in place-size */
    struct pool_large *t = heap_meta_alloc(cap * sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < pool->large_cap; i++) {
        struct pool_large *o = &pool->large[i];
        if (!o->block || o->block == POOL_LARGE_TOMB)
            continue;
        size_t j = large_hash(o->block, cap);
        while (t[j].block)
            j = (j + 1) & (cap - 1);
        t[j] = *o;
    }
    if (pool->large)
        heap_meta_free(pool->large, pool->large_cap * sizeof *pool->large);
    pool->large = t;
    pool->large_cap = cap;
    pool->large_used = pool->large_live;
    return 0;
}

static struct pool_large *large_insert_locked(struct kmem_pool *pool, void *block, size_t size)
{
    pool_assert_locked(pool);
    if ((pool->large_used + 1) * 4 > pool->large_cap * 3 && large_grow_locked(pool))
        return NULL;
    size_t i = large_hash(block, pool->large_cap);
    while (pool->large[i].block && pool->large[i].block != POOL_LARGE_TOMB)
        i = (i + 1) & (pool->large_cap - 1);
    if (!pool->large[i].block)
        pool->large_used++;
    pool->large[i].block = block;
    pool->large[i].size = size;
    pool->large[i].bits = 0;
    pool->large_live++;
    pool->large_bytes += size;
    return &pool->large[i];
}

static void large_remove_locked(struct kmem_pool *pool, struct pool_large *lb)
{
    pool_assert_locked(pool);
    pool->large_live--;
    pool->large_bytes -= lb->size;
    lb->block = POOL_LARGE_TOMB;
    lb->size = 0;
    lb->bits = 0;
}

/* ---------------------------------------------------------------- create, destroy */

struct kmem_pool *kmem_pool_create(const char *name, const struct kmem_pool_config *config)
{
    static const struct kmem_pool_config defaults;
    if (!config)
        config = &defaults;
    if (!name || !*name || (config->flags & ~POOL_KNOWN_CONFIG_FLAGS) ||
        !(config->gc_factor >= 0) || (config->gc_factor > 0 && config->gc_factor < 1)) {
        errno = EINVAL;
        return NULL;
    }
    pthread_once(&init_once, pool_init);
    struct kmem_pool *pool = pool_struct_get();
    if (!pool) {
        errno = ENOMEM;
        return NULL;
    }
    pool->next_free = NULL;
    pool->cfg = *config;
    if (!pool->cfg.gc_threshold)
        pool->cfg.gc_threshold = KMEM_POOL_DEFAULT_GC_THRESHOLD;
    if (pool->cfg.gc_factor == 0)
        pool->cfg.gc_factor = KMEM_POOL_DEFAULT_GC_FACTOR;
    size_t nlen = strnlen(name, KMEM_POOL_NAME_MAX - 1);
    memcpy(pool->name, name, nlen);
    pool->name[nlen] = '\0';
    pool->tcache = !config->max_blocks && !config->max_bytes &&
                   !(config->flags & (KMEM_POOL_FILL_ON_ALLOC | KMEM_POOL_FILL_ON_FREE |
                                      KMEM_POOL_CHECK_EVERY_CALL));
    pool->cls_used = 0;
    pool->large = NULL;
    pool->large_cap = pool->large_used = pool->large_live = pool->large_bytes = 0;
    pool->tcs = NULL;
    pool->live_blocks = pool->live_bytes = pool->allocs = pool->frees = pool->peak_bytes = 0;
    pool->alloc_failures = 0;
    pool->collectible_blocks = pool->collectible_bytes = 0;
    pool->threshold = pool->cfg.gc_threshold;
    pool->collections = pool->swept_blocks = pool->swept_bytes = pool->finalizers_run = 0;
    pool->last_pause_ns = pool->max_pause_ns = pool->total_gc_ns = 0;
    pool->collecting = 0;
    pool->gc_waiters = 0;
    pool->hk_started = pool->hk_stop = pool->hk_requested = false;
    pool->hk_cycles = 0;
    uint64_t serial = __atomic_fetch_add(&next_serial, 1, __ATOMIC_RELAXED);
    pool->way = (uint32_t)(serial % POOL_TLS_WAYS);
    __atomic_store_n(&pool->serial, serial, __ATOMIC_RELAXED);
    /* The creator owns the pool's own cache (registered like a way; nothing to return in
     * it: destroy left it empty). */
    struct pool_tc *own = &pool->own;
    own->frees = own->reserved = own->peak_net = own->coll_blocks = own->coll_bytes = 0;
    TCS(own->pool, pool);
    TCS(own->serial, serial);
    own->prev = own->next = NULL;
    own->linked = pool->tcache;
    if (pool->tcache)
        pool->tcs = own;
    __atomic_store_n(&pool->own_id, pool->tcache ? pool_thread_id() : POOL_NO_OWNER,
                     __ATOMIC_RELAXED);
    if (pool->tcache) {
        unsigned i = pool_owned_next++ % POOL_OWNED_RING;
        pool_owned[i].pool = pool;
        pool_owned[i].serial = serial;
        key_set();
    }
    __atomic_store_n(&pool->magic, POOL_MAGIC, __ATOMIC_RELEASE);
    return pool;
}

const char *kmem_pool_name(struct kmem_pool *pool)
{
    if (!check_live(pool, "kmem_pool_name"))
        return NULL;
    return pool->name;
}

static int leaks_option = -1; /* -1: not read yet */

bool pool_option_leaks(void)
{
    int v = __atomic_load_n(&leaks_option, __ATOMIC_RELAXED);
    if (v < 0) {
        v = !heap_opt_is(OPT_LEAKS, "off"); /* the option table never allocates */
        __atomic_store_n(&leaks_option, v, __ATOMIC_RELAXED);
    }
    return v;
}

void pool_reset_options(void)
{
    __atomic_store_n(&leaks_option, -1, __ATOMIC_RELAXED);
}

void kmem_pool_destroy(struct kmem_pool *pool)
{
    if (!pool)
        return;
    if (!check_live(pool, "kmem_pool_destroy"))
        return;
    if (pool_in_mark == pool || pool_in_finalizer == pool) {
        pool_report("kmem_pool_destroy(%s): called from the pool's own %s callback; refused",
                    pool->name, pool_in_mark == pool ? "mark" : "intercept_free");
        return;
    }
    pool_gc_stop_thread(pool);
    heap_mutex_lock(&pool->gc_lock); /* a collection in progress on another thread ends */
    if (pool_option_leaks())
        pool_list_live(pool);
    heap_mutex_lock(&pool->lock);
    __atomic_store_n(&pool->magic, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&pool->serial, 0, __ATOMIC_RELAXED);
    while (pool->tcs)
        tc_unlink_locked(pool, pool->tcs);
    uint64_t used = pool->cls_used;
    pool->cls_used = 0;
    __atomic_store_n(&pool->own_id, POOL_NO_OWNER, __ATOMIC_RELAXED);
    struct pool_large *large = pool->large;
    size_t large_cap = pool->large_cap;
    pool->large = NULL;
    pool->large_cap = pool->large_used = pool->large_live = pool->large_bytes = 0;
    heap_mutex_unlock(&pool->lock);
    heap_mutex_unlock(&pool->gc_lock);

    /* Every slot back at once: each used class's slabs are emptied (keeping one), and the
     * owner cache forgets what it held. */
    struct pool_tc *own = &pool->own;
    for (uint64_t u = used; u; u &= u - 1) {
        unsigned ci = (unsigned)__builtin_ctzll(u);
        slab_reset_all(pool->cls[ci], POOL_KEEP_SLABS);
        TCS(own->cls[ci].count, 0);
        TCS(own->cls[ci].bump, NULL);
        TCS(own->cls[ci].end, NULL);
        TCS(own->cls[ci].in, 0);
    }
    for (size_t i = 0; i < large_cap; i++)
        if (large[i].block && large[i].block != POOL_LARGE_TOMB)
            buddy_free(large[i].block);
    if (large)
        heap_meta_free(large, large_cap * sizeof *large);
    /* The structure, caches attached, for this thread's next create. */
    if (pool_stash_n < POOL_STASH_MAX) {
        pool->next_free = pool_stash;
        pool_stash = pool;
        pool_stash_n++;
        key_set();
    } else {
        pool_struct_put_global(pool);
    }
}

/* ---------------------------------------------------------------- allocation */

static void count_failure(struct kmem_pool *pool, int err)
{
    __atomic_fetch_add(&pool->alloc_failures, 1, __ATOMIC_RELAXED);
    errno = err;
}

/* Live bytes now: the pool's counters plus every registered thread cache (pool->lock). */
static size_t live_bytes_locked(struct kmem_pool *pool)
{
    pool_assert_locked(pool);
    size_t b = pool->live_bytes;
    for (struct pool_tc *e = pool->tcs; e; e = e->next) {
        size_t out, out_bytes;
        pool_tc_totals(e, &out, &out_bytes, NULL, NULL);
        b += out_bytes;
    }
    return b;
}

static void peak_update_locked(struct kmem_pool *pool)
{
    size_t b = live_bytes_locked(pool);
    if (b > pool->peak_bytes)
        pool->peak_bytes = b;
}

/* A slot of class ci for a pool with thread caches, when the way missed or was empty. */
static void *tc_alloc_slow(struct kmem_pool *pool, unsigned ci)
{
    struct pool_tc *e = tc_of(pool);
    if (!e)
        e = tc_setup(pool);
    struct kmem_cache *c = class_cache(pool, ci);
    if (!c)
        return NULL;
    if (!(__atomic_load_n(&pool->cls_used, __ATOMIC_RELAXED) & ((uint64_t)1 << ci)))
        __atomic_fetch_or(&pool->cls_used, (uint64_t)1 << ci, __ATOMIC_RELAXED);
    if (!e) { /* no way (inside a finalizer, or out of memory): straight from the slabs */
        void *obj;
        if (slab_alloc_batch(c, &obj, 1, NULL) != 1)
            return NULL;
        *(uintptr_t *)obj = 0;
        heap_mutex_lock(&pool->lock);
        pool->allocs++;
        pool->live_blocks++;
        pool->live_bytes += pool_class_size[ci];
        peak_update_locked(pool);
        heap_mutex_unlock(&pool->lock);
        return obj;
    }
    struct pool_tc_class *k = &e->cls[ci];
    uint32_t n = TCL(k->count);
    void *obj;
    if (n) {
        obj = e->objs[ci][n - 1];
        TCS(k->count, n - 1);
        *(uintptr_t *)obj = 0;
    } else if (TCL(k->bump) != TCL(k->end)) {
        obj = TCL(k->bump);
        TCS(k->bump, (char *)obj + pool_class_size[ci]);
    } else {
        size_t size = pool_class_size[ci], got;
        if (SLAB_LIKELY(!c->debug && c->slot_size == size)) {
            /* A run of fresh slots, handed out by bumping a pointer. */
            size_t want = POOL_RUN_BYTES / size;
            want = want > POOL_RUN_MAX ? POOL_RUN_MAX : want < 4 ? 4 : want;
            void *first;
            got = slab_alloc_run(c, want, &first);
            if (!got)
                return NULL;
            TCS(k->in, TCL(k->in) + got);
            obj = first;
            TCS(k->end, (char *)first + got * size);
            TCS(k->bump, (char *)first + size);
        } else {
            /* Debug caches: objects one by one, so every debug hook runs. */
            got = slab_alloc_batch(c, e->objs[ci], tc_refill(ci), NULL);
            if (!got)
                return NULL;
            TCS(k->in, TCL(k->in) + got);
            for (size_t i = 0, j = got - 1; i < j; i++, j--) {
                void *t = e->objs[ci][i];
                e->objs[ci][i] = e->objs[ci][j];
                e->objs[ci][j] = t;
            }
            for (size_t i = 0; i + 1 < got; i++)
                *(uintptr_t *)e->objs[ci][i] = pool_free_mark(pool, e->objs[ci][i]);
            obj = e->objs[ci][got - 1];
            *(uintptr_t *)obj = 0;
            TCS(k->count, (uint32_t)(got - 1));
        }
        __atomic_fetch_add(&c->allocs, got, __ATOMIC_RELAXED);
        /* The peak without a lock or a sum: bytes reserved by this cache bound what its
         * callers hold (docs/pools.md). */
        size_t r = TCL(e->reserved) + got * size;
        TCS(e->reserved, r);
        if (r > TCL(e->peak_net))
            TCS(e->peak_net, r);
    }
    return obj;
}

/* A write after free in a FILL_ON_FREE pool: the block handed out again no longer holds the
 * free pattern.  The first changed offset is named. */
static void check_free_pattern(struct kmem_pool *pool, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] != KMEM_POOL_FREE_PATTERN) {
            pool_report("kmem_pool_alloc(%s): block %p was written after it was freed (byte "
                        "%zu is %u, the free pattern is %u)",
                        pool->name, (const void *)b, i, (unsigned)b[i],
                        (unsigned)KMEM_POOL_FREE_PATTERN);
            return;
        }
    }
}

/* Would one more block of `size` pass a cap?  pool->lock held. */
static bool over_cap_locked(struct kmem_pool *pool, size_t size)
{
    pool_assert_locked(pool);
    return (pool->cfg.max_blocks && pool->live_blocks + 1 > pool->cfg.max_blocks) ||
           (pool->cfg.max_bytes && pool->live_bytes + size > pool->cfg.max_bytes);
}

/* A slot for a pool without thread caches: caps, fill checks (pool->lock held). */
static void *locked_alloc_slot(struct kmem_pool *pool, unsigned ci, int *err)
{
    pool_assert_locked(pool);
    size_t size = pool_class_size[ci];
    if (over_cap_locked(pool, size)) {
        *err = ENOMEM;
        return NULL;
    }
    struct kmem_cache *c = pool->cls[ci];
    if (!c) {
        c = class_cache_create(ci);
        if (!c) {
            *err = ENOMEM;
            return NULL;
        }
        __atomic_store_n(&pool->cls[ci], c, __ATOMIC_RELEASE);
    }
    if (!(pool->cls_used & ((uint64_t)1 << ci)))
        __atomic_fetch_or(&pool->cls_used, (uint64_t)1 << ci, __ATOMIC_RELAXED);
    void *obj;
    if (slab_alloc_batch(c, &obj, 1, NULL) != 1) {
        *err = ENOMEM;
        return NULL;
    }
    __atomic_fetch_add(&c->allocs, 1, __ATOMIC_RELAXED);
    struct slab_slot at = {.cache = c, .slab = slab_of(c, obj)};
    at.idx = slab_slot_index(c, at.slab, obj);
    /* For a free slot, the MARK bit of a FILL_ON_FREE pool means "holds the free pattern". */
    uint64_t bit = (uint64_t)1 << (at.idx % 64);
    if (__atomic_fetch_and(pool_bm(&at, POOL_BM_MARK), ~bit, __ATOMIC_RELAXED) & bit) {
        if (pool->cfg.flags & KMEM_POOL_FILL_ON_FREE)
            check_free_pattern(pool, obj, size);
    }
    *(uintptr_t *)obj = 0; /* a thread cache's free mark may be left from an earlier owner */
    pool->allocs++;
    pool->live_blocks++;
    pool->live_bytes += size;
    if (pool->live_bytes > pool->peak_bytes)
        pool->peak_bytes = pool->live_bytes;
    return obj;
}

static void *large_alloc(struct kmem_pool *pool, size_t size, size_t align, int *err)
{
    size_t want = size > align ? size : align;
    heap_mutex_lock(&pool->lock);
    bool capped = over_cap_locked(pool, want);
    heap_mutex_unlock(&pool->lock);
    if (capped) {
        *err = ENOMEM;
        return NULL;
    }
    void *b = buddy_alloc_bytes(want, BUDDY_TAG_POOL);
    if (!b) {
        *err = ENOMEM;
        return NULL;
    }
    struct buddy_block_info info;
    size_t usable = buddy_lookup(b, &info) ? info.size : want;
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = NULL;
    if (!over_cap_locked(pool, usable))
        lb = large_insert_locked(pool, b, usable);
    if (lb) {
        pool->allocs++;
        pool->live_blocks++;
        pool->live_bytes += usable;
        peak_update_locked(pool);
    }
    heap_mutex_unlock(&pool->lock);
    if (!lb) {
        buddy_free(b);
        *err = ENOMEM;
        return NULL;
    }
    return b;
}

static size_t block_usable(struct kmem_pool *pool, const void *block)
{
    struct pool_ref ref;
    if (pool_find_slot(pool, block, &ref))
        return ref.size;
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = pool_large_find_locked(pool, block);
    size_t n = lb ? lb->size : 0;
    heap_mutex_unlock(&pool->lock);
    return n;
}

/* Set the pool's per-block bits of a block just handed out: the address is already where
 * the caller wanted it (out), so a collectible block becomes visible to the collector only
 * now (release: a sweep that sees the bit sees the address). */
static void publish_block(struct kmem_pool *pool, void *block, unsigned int flags, size_t size)
{
    uint32_t lbits = ((flags & KMEM_POOL_INTERCEPT_FREE) ? POOL_LB_INTERCEPT : 0) |
                     ((flags & KMEM_POOL_COLLECTIBLE) ? POOL_LB_COLLECTIBLE : 0);
    struct pool_ref ref;
    if (pool_find_slot(pool, block, &ref)) {
        uint64_t bit = (uint64_t)1 << (ref.at.idx % 64);
        if (lbits & POOL_LB_INTERCEPT)
            __atomic_fetch_or(pool_bm(&ref.at, POOL_BM_INTERCEPT), bit, __ATOMIC_RELEASE);
        if (lbits & POOL_LB_COLLECTIBLE)
            __atomic_fetch_or(pool_bm(&ref.at, POOL_BM_COLLECTIBLE), bit, __ATOMIC_RELEASE);
    } else {
        heap_mutex_lock(&pool->lock);
        struct pool_large *lb = pool_large_find_locked(pool, block);
        if (lb)
            lb->bits |= lbits;
        heap_mutex_unlock(&pool->lock);
    }
    if (flags & KMEM_POOL_COLLECTIBLE)
        pool_gc_account(pool, 1, size);
}

/* Every allocation but the thread-cache hit: checks, caps (with a collection), classes or
 * large blocks, fill, zero, the address to *out, then the bits. */
static __attribute__((noinline)) void *pool_alloc_slow(struct kmem_pool *pool, size_t size,
                                                       size_t align, unsigned int flags,
                                                       void **out)
{
    if (!check_live(pool, "kmem_pool_alloc"))
        return NULL;
    if ((flags & ~POOL_KNOWN_BLOCK_FLAGS) ||
        ((flags & KMEM_POOL_INTERCEPT_FREE) && !pool->cfg.intercept_free)) {
        count_failure(pool, EINVAL);
        return NULL;
    }
    if (pool_in_finalizer) {
        pool_report("kmem_pool_alloc(%s): allocation inside intercept_free (finalizers must "
                    "not allocate); refused",
                    pool->name);
        count_failure(pool, EINVAL);
        return NULL;
    }
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << 46)) {
        count_failure(pool, ENOMEM);
        return NULL;
    }
    bool small = size <= KMEM_POOL_SMALL_MAX && (align <= 16 || (align <= 8 && size <= 8));
    void *block = NULL;
    size_t bsize = 0;
    int err = ENOMEM;
    for (int attempt = 0; attempt < 2 && !block; attempt++) {
        if (small) {
            unsigned ci = pool_class_of(size);
            if (align > 8 && ci == 0)
                ci = 1;
            bsize = pool_class_size[ci];
            if (pool->tcache) {
                block = tc_alloc_slow(pool, ci);
            } else {
                heap_mutex_lock(&pool->lock);
                block = locked_alloc_slot(pool, ci, &err);
                heap_mutex_unlock(&pool->lock);
            }
        } else {
            block = large_alloc(pool, size, align, &err);
            if (block)
                bsize = block_usable(pool, block);
        }
        /* Past a cap: one collection (on this thread), then try again. */
        if (!block && attempt == 0 && (pool->cfg.max_blocks || pool->cfg.max_bytes) &&
            pool_collectible_bytes(pool) &&
            !(pool->cfg.flags & KMEM_POOL_NO_THREAD) && pool_in_mark != pool)
            kmem_pool_collect(pool);
        else if (!block)
            break;
    }
    if (!block) {
        count_failure(pool, err);
        return NULL;
    }
    if (flags & KM_ZERO)
        memset(block, 0, size);
    else if (pool->cfg.flags & KMEM_POOL_FILL_ON_ALLOC)
        memset(block, KMEM_POOL_ALLOC_PATTERN, bsize);
    if (out)
        __atomic_store_n(out, block, __ATOMIC_RELEASE);
    if (flags & (KMEM_POOL_COLLECTIBLE | KMEM_POOL_INTERCEPT_FREE))
        publish_block(pool, block, flags, bsize);
    if (SLAB_UNLIKELY(pool->cfg.flags & KMEM_POOL_CHECK_EVERY_CALL))
        kmem_pool_validate(pool);
    return block;
}

/* KM_ZERO: blocks up to 64 bytes with inline stores (no call), larger ones with memset. */
static inline __attribute__((always_inline)) void zero_small(void *obj, size_t size)
{
    if (size <= 64) {
        uint64_t *w = obj;
        for (size_t i = 0; i < (size + 7) / 8; i++)
            w[i] = 0;
    } else {
        memset(obj, 0, size);
    }
}

/* Publish a collectible block handed out by thread cache e (its address is already where
 * the caller wanted it): the COLLECTIBLE bit with release, then the counts, added to the
 * pool's every POOL_ACCOUNT_BATCH bytes.  The slab is found by the class cache's mask: no
 * page-map lookup. */
static inline __attribute__((always_inline)) void tc_publish(struct kmem_pool *pool,
                                                             struct pool_tc *e, unsigned ci,
                                                             void *obj)
{
    struct kmem_cache *c = pool->cls[ci];
    struct slab_slot at = {.cache = c, .slab = slab_of(c, obj)};
    at.idx = slab_slot_index(c, at.slab, obj);
    __atomic_fetch_or(pool_bm(&at, POOL_BM_COLLECTIBLE), (uint64_t)1 << (at.idx % 64),
                      __ATOMIC_RELEASE);
    TCS(e->coll_blocks, TCL(e->coll_blocks) + 1);
    size_t bytes = TCL(e->coll_bytes) + pool_class_size[ci];
    TCS(e->coll_bytes, bytes);
    if (SLAB_UNLIKELY(bytes >= POOL_ACCOUNT_BATCH))
        pool_tc_account_flush(pool, e);
}

/* A block of class ci from thread cache e: the stack of freed blocks first (its free mark
 * cleared), then the run (nothing to clear); NULL when both are empty. */
static inline __attribute__((always_inline)) void *tc_pop(struct pool_tc *e, unsigned ci)
{
    struct pool_tc_class *k = &e->cls[ci];
    uint32_t n = TCL(k->count);
    if (SLAB_LIKELY(n != 0)) {
        void *obj = e->objs[ci][n - 1];
        TCS(k->count, n - 1);
        *(uintptr_t *)obj = 0; /* its free mark */
        return obj;
    }
    char *b = TCL(k->bump);
    if (SLAB_LIKELY(b != TCL(k->end))) {
        TCS(k->bump, b + pool_class_size[ci]);
        /* The run's next lines, for writing: the caller's first stores to the blocks after
         * this one then find their lines on the way. */
        __builtin_prefetch(b + 256, 1, 3);
        return b;
    }
    return NULL;
}

__attribute__((noinline)) static void *zero_block(void *obj, size_t size)
{
    zero_small(obj, size);
    return obj;
}

static void *pool_alloc(struct kmem_pool *pool, size_t size, unsigned int flags, void **out);

/* kmem_pool_alloc's other cases: collectible blocks (still a thread-cache hit, published
 * there), then the slow path. */
__attribute__((noinline)) static void *pool_alloc_miss(struct kmem_pool *pool, size_t size,
                                                       unsigned int flags)
{
    return pool_alloc(pool, size, flags, NULL);
}

/* The fast path of a plain block: a hit in the calling thread's cache.  No stack frame:
 * everything else (collectible blocks, misses, zeroing) is a tail call. */
void *kmem_pool_alloc(struct kmem_pool *pool, size_t size, unsigned int flags)
{
    if (SLAB_LIKELY(pool != NULL && (flags & ~KM_ZERO) == 0 && size - 1 < KMEM_POOL_SMALL_MAX)) {
        struct pool_tc *e = tc_of(pool);
        if (SLAB_LIKELY(e != NULL)) {
            void *obj = tc_pop(e, pool_class_of(size));
            if (SLAB_LIKELY(obj != NULL)) {
                if (SLAB_UNLIKELY(flags & KM_ZERO))
                    return zero_block(obj, size);
                return obj;
            }
        }
    }
    return pool_alloc_miss(pool, size, flags);
}

/* The fast path of kmem_pool_alloc_to and of collectible blocks: the address goes to *out
 * before the block is published (tc_publish). */
static inline __attribute__((always_inline)) void *pool_alloc(struct kmem_pool *pool,
                                                              size_t size, unsigned int flags,
                                                              void **out)
{
    if (SLAB_LIKELY(pool != NULL && (flags & ~(KM_ZERO | KMEM_POOL_COLLECTIBLE)) == 0 &&
                    size - 1 < KMEM_POOL_SMALL_MAX)) {
        struct pool_tc *e = tc_of(pool);
        unsigned ci = pool_class_of(size);
        if (SLAB_LIKELY(e != NULL)) {
            void *obj = tc_pop(e, ci);
            if (SLAB_LIKELY(obj != NULL)) {
                if (flags & KM_ZERO)
                    zero_small(obj, size);
                if (out)
                    __atomic_store_n(out, obj, __ATOMIC_RELEASE);
                if (flags & KMEM_POOL_COLLECTIBLE)
                    tc_publish(pool, e, ci, obj);
                return obj;
            }
        }
    }
    return pool_alloc_slow(pool, size, 0, flags, out);
}

int kmem_pool_alloc_to(struct kmem_pool *pool, size_t size, unsigned int flags, void **out)
{
    if (!out) {
        if (pool_is_live(pool))
            count_failure(pool, EINVAL);
        errno = EINVAL;
        return -1;
    }
    return pool_alloc(pool, size, flags, out) ? 0 : -1;
}

void *kmem_pool_alloc_aligned(struct kmem_pool *pool, size_t align, size_t size,
                              unsigned int flags)
{
    if (!align || (align & (align - 1)) || align > ((size_t)BUDDY_PAGE_SIZE << BUDDY_MAX_ORDER)) {
        if (pool_is_live(pool))
            count_failure(pool, EINVAL);
        errno = EINVAL;
        return NULL;
    }
    return pool_alloc_slow(pool, size, align, flags, NULL);
}

void *kmem_pool_calloc(struct kmem_pool *pool, size_t n, size_t size, unsigned int flags)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        if (pool_is_live(pool))
            count_failure(pool, ENOMEM);
        errno = ENOMEM;
        return NULL;
    }
    return pool_alloc(pool, total, flags | KM_ZERO, NULL);
}

size_t kmem_pool_alloc_bulk(struct kmem_pool *pool, size_t size, unsigned int flags, size_t n,
                            void **out)
{
    if (!out) {
        errno = EINVAL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!pool_alloc(pool, size, flags, &out[i])) {
            int err = errno;
            /* All or nothing.  Collectible blocks already published are freed as such. */
            for (size_t j = 0; j < i; j++)
                pool_inner_free_unchecked(pool, out[j]);
            errno = err;
            return 0;
        }
    }
    return n;
}

char *kmem_pool_strdup(struct kmem_pool *pool, const char *s)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = kmem_pool_alloc(pool, n, 0);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---------------------------------------------------------------- free */

/* Clear a slot's pool bits that a free ends (collectible, intercept, condemned), adjusting
 * the collectible counters; returns the old COLLECTIBLE bit. */
static bool clear_slot_bits(struct kmem_pool *pool, const struct pool_ref *ref)
{
    uint64_t bit = (uint64_t)1 << (ref->at.idx % 64);
    __atomic_fetch_and(pool_bm(&ref->at, POOL_BM_INTERCEPT), ~bit, __ATOMIC_RELAXED);
    __atomic_fetch_and(pool_bm(&ref->at, POOL_BM_CONDEMNED), ~bit, __ATOMIC_RELAXED);
    bool was = __atomic_fetch_and(pool_bm(&ref->at, POOL_BM_COLLECTIBLE), ~bit,
                                  __ATOMIC_RELAXED) &
               bit;
    if (was) {
        __atomic_fetch_sub(&pool->collectible_blocks, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&pool->collectible_bytes, ref->size, __ATOMIC_RELAXED);
    }
    return was;
}

/* A slot freed into a pool without thread caches, or by the collector: fill, free-pattern
 * bit, back to the slab, counters. */
static void slot_release(struct kmem_pool *pool, void *block, const struct pool_ref *ref)
{
    if (pool->cfg.flags & KMEM_POOL_FILL_ON_FREE) {
        memset(block, KMEM_POOL_FREE_PATTERN, ref->size);
        __atomic_fetch_or(pool_bm(&ref->at, POOL_BM_MARK), (uint64_t)1 << (ref->at.idx % 64),
                          __ATOMIC_RELAXED);
    }
    heap_mutex_lock(&pool->lock); /* slab and counters change together for the validator */
    slots_to_slabs(ref->at.cache, &block, 1);
    pool->frees++;
    pool->live_blocks--;
    pool->live_bytes -= ref->size;
    heap_mutex_unlock(&pool->lock);
}

void pool_release_slots(struct kmem_pool *pool, unsigned ci, void **blocks, size_t n,
                        size_t bytes)
{
    if (!n)
        return;
    struct kmem_cache *c = pool->cls[ci];
    if (pool->cfg.flags & KMEM_POOL_FILL_ON_FREE) {
        for (size_t i = 0; i < n; i++) {
            struct pool_ref ref;
            if (pool_find_slot(pool, blocks[i], &ref)) {
                memset(blocks[i], KMEM_POOL_FREE_PATTERN, ref.size);
                __atomic_fetch_or(pool_bm(&ref.at, POOL_BM_MARK),
                                  (uint64_t)1 << (ref.at.idx % 64), __ATOMIC_RELAXED);
            }
        }
    }
    heap_mutex_lock(&pool->lock);
    slots_to_slabs(c, blocks, n);
    pool->frees += n;
    pool->live_blocks -= n;
    pool->live_bytes -= bytes;
    heap_mutex_unlock(&pool->lock);
}

void pool_release_words(struct kmem_pool *pool, unsigned ci, const struct slab_word_free *v,
                        size_t n, size_t blocks)
{
    heap_mutex_lock(&pool->lock);
    size_t freed = slab_free_words(pool->cls[ci], v, n);
    pool->frees += freed;
    pool->live_blocks -= freed;
    pool->live_bytes -= freed * pool_class_size[ci];
    heap_mutex_unlock(&pool->lock);
    (void)blocks;
}

void pool_release_block(struct kmem_pool *pool, void *block, const struct pool_ref *ref)
{
    if (!ref->large) {
        clear_slot_bits(pool, ref);
        slot_release(pool, block, ref);
        return;
    }
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = pool_large_find_locked(pool, block);
    if (!lb) {
        heap_mutex_unlock(&pool->lock);
        return;
    }
    if (lb->bits & POOL_LB_COLLECTIBLE) {
        __atomic_fetch_sub(&pool->collectible_blocks, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&pool->collectible_bytes, lb->size, __ATOMIC_RELAXED);
    }
    pool->frees++;
    pool->live_blocks--;
    pool->live_bytes -= lb->size;
    large_remove_locked(pool, lb);
    heap_mutex_unlock(&pool->lock);
    buddy_free(block);
}

/* Free of a slot to a pool with thread caches: onto the calling thread's way, spilling half
 * of a full class back to the slabs. */
static void tc_free(struct kmem_pool *pool, void *block, const struct pool_ref *ref)
{
    struct pool_tc *e = tc_of(pool);
    if (!e)
        e = tc_setup(pool);
    if (!e) {
        slot_release(pool, block, ref);
        return;
    }
    unsigned ci = ref->ci;
    struct pool_tc_class *k = &e->cls[ci];
    uint32_t n = TCL(k->count), cap = tc_cap(ci);
    if (n == cap) {
        uint32_t give = cap / 2;
        stack_to_slabs(ref->at.cache, e->objs[ci], give);
        memmove(e->objs[ci], e->objs[ci] + give, (n - give) * sizeof(void *));
        n -= give;
        TCS(k->in, TCL(k->in) - give);
        TCS(e->reserved, TCL(e->reserved) - give * pool_class_size[ci]);
    }
    *(uintptr_t *)block = pool_free_mark(pool, block);
    e->objs[ci][n] = block;
    TCS(k->count, n + 1);
    TCS(e->frees, TCL(e->frees) + 1);
}

/* Why block cannot be freed (or marked...) in pool: reported. */
static void report_not_ours(struct kmem_pool *pool, const void *block, const char *op)
{
    struct slab_slot at;
    if (slab_lookup_slot(block, &at))
        pool_report("%s(%s): %p is not a block of this pool (a slot of cache %s: another "
                    "pool's, or not a pool's)",
                    op, pool->name, block, at.cache->name);
    else
        pool_report("%s(%s): %p is not a block of this pool", op, pool->name, block);
}

/* The checks every free does: live slot, not free already, not collectible (unless
 * inner), then the finalizer for INTERCEPT_FREE blocks (unless inner).  Returns true when
 * the caller must release the block. */
static bool free_checks(struct kmem_pool *pool, void *block, struct pool_ref *ref,
                        const char *op, bool inner)
{
    if (pool_find_slot(pool, block, ref)) {
        if (!ref->at.inuse || *(uintptr_t *)block == pool_free_mark(pool, block)) {
            pool_report("%s(%s): double free of %p (the block is already free)", op,
                        pool->name, block);
            return false;
        }
        struct pool_tc *e = tc_of(pool);
        if (e && (char *)block >= TCL(e->cls[ref->ci].bump) &&
            (char *)block < TCL(e->cls[ref->ci].end)) {
            pool_report("%s(%s): %p was never allocated (a free slot of this thread's "
                        "cache)",
                        op, pool->name, block);
            return false;
        }
        if (!inner && pool_bit(&ref->at, POOL_BM_COLLECTIBLE)) {
            pool_report("%s(%s): %p is a collectible block: the collector frees it (never "
                        "kmem_pool_free); refused",
                        op, pool->name, block);
            return false;
        }
        if (!inner && pool_bit(&ref->at, POOL_BM_INTERCEPT)) {
            pool_run_finalizer(pool, block);
            return false;
        }
        return true;
    }
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = pool_large_find_locked(pool, block);
    uint32_t bits = lb ? lb->bits : 0;
    heap_mutex_unlock(&pool->lock);
    if (!lb) {
        report_not_ours(pool, block, op);
        return false;
    }
    ref->large = true;
    ref->size = 0;
    if (!inner && (bits & POOL_LB_COLLECTIBLE)) {
        pool_report("%s(%s): %p is a collectible block: the collector frees it (never "
                    "kmem_pool_free); refused",
                    op, pool->name, block);
        return false;
    }
    if (!inner && (bits & POOL_LB_INTERCEPT)) {
        pool_run_finalizer(pool, block);
        return false;
    }
    return true;
}

void kmem_pool_free(struct kmem_pool *pool, void *block)
{
    if (!block)
        return;
    if (!check_live(pool, "kmem_pool_free"))
        return;
    struct pool_ref ref;
    if (!free_checks(pool, block, &ref, "kmem_pool_free", false))
        return;
    if (!ref.large && pool->tcache)
        tc_free(pool, block, &ref);
    else
        pool_release_block(pool, block, &ref);
    if (SLAB_UNLIKELY(pool->cfg.flags & KMEM_POOL_CHECK_EVERY_CALL))
        kmem_pool_validate(pool);
}

void kmem_pool_free_bulk(struct kmem_pool *pool, size_t n, void **blocks)
{
    if (!blocks)
        return;
    for (size_t i = 0; i < n; i++)
        kmem_pool_free(pool, blocks[i]);
}

/* inner_free's work without the context check (also the bulk allocation's undo). */
void pool_inner_free_unchecked(struct kmem_pool *pool, void *block)
{
    struct pool_ref ref;
    if (!block || !free_checks(pool, block, &ref, "kmem_pool_inner_free", true))
        return;
    pool_release_block(pool, block, &ref);
}

void kmem_pool_inner_free(struct kmem_pool *pool, void *block)
{
    if (!block)
        return;
    if (!check_live(pool, "kmem_pool_inner_free"))
        return;
    if (pool_in_finalizer != pool) {
        pool_report("kmem_pool_inner_free(%s): %p freed outside the pool's intercept_free "
                    "(only a finalizer may call it); refused",
                    pool->name, block);
        return;
    }
    pool_inner_free_unchecked(pool, block);
}

size_t kmem_pool_block_size(struct kmem_pool *pool, const void *block)
{
    if (!check_live(pool, "kmem_pool_block_size"))
        return 0;
    struct pool_ref ref;
    if (pool_find_slot(pool, block, &ref)) {
        if (!ref.at.inuse || *(const uintptr_t *)block == pool_free_mark(pool, block)) {
            pool_report("kmem_pool_block_size(%s): %p is a free block", pool->name, block);
            return 0;
        }
        return ref.size;
    }
    size_t n = block_usable(pool, block);
    if (!n)
        report_not_ours(pool, block, "kmem_pool_block_size");
    return n;
}

void *kmem_pool_realloc(struct kmem_pool *pool, void *block, size_t size)
{
    if (!block)
        return kmem_pool_alloc(pool, size, 0);
    if (!check_live(pool, "kmem_pool_realloc"))
        return NULL;
    if (size == 0) {
        kmem_pool_free(pool, block);
        return NULL;
    }
    struct pool_ref ref;
    size_t old;
    if (pool_find_slot(pool, block, &ref)) {
        if (!ref.at.inuse || *(uintptr_t *)block == pool_free_mark(pool, block)) {
            pool_report("kmem_pool_realloc(%s): %p is a free block", pool->name, block);
            errno = EINVAL;
            return NULL;
        }
        if (pool_bit(&ref.at, POOL_BM_COLLECTIBLE) || pool_bit(&ref.at, POOL_BM_INTERCEPT)) {
            errno = EINVAL;
            return NULL;
        }
        old = ref.size;
        if (size <= old && (size > KMEM_POOL_SMALL_MAX || pool_class_of(size) == ref.ci))
            return block;
    } else {
        heap_mutex_lock(&pool->lock);
        struct pool_large *lb = pool_large_find_locked(pool, block);
        uint32_t bits = lb ? lb->bits : 0;
        old = lb ? lb->size : 0;
        heap_mutex_unlock(&pool->lock);
        if (!lb) {
            report_not_ours(pool, block, "kmem_pool_realloc");
            errno = EINVAL;
            return NULL;
        }
        if (bits & (POOL_LB_COLLECTIBLE | POOL_LB_INTERCEPT)) {
            errno = EINVAL;
            return NULL;
        }
        if (size <= old && size > old / 2)
            return block;
    }
    void *n = kmem_pool_alloc(pool, size, 0);
    if (!n)
        return NULL;
    memcpy(n, block, size < old ? size : old);
    kmem_pool_free(pool, block);
    return n;
}
