/* SPDX-License-Identifier: MIT */
/* pool/status.c - kmem_pool_validate, statistics, the status dump and the destroy-time list
 * of live blocks.  Nothing here allocates from malloc: text is formatted on the stack
 * (heap/fmt.h) and written after the pool's locks are dropped, or with write(2).
 */
#include <errno.h>
#include <string.h>

#include "buddy/buddy.h"
#include "heap/fmt.h"
#include "pool/internal.h"

#define TCL(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define VFAIL(...)                                                                          \
    do {                                                                                    \
        heap_fmt_line(__VA_ARGS__);                                                         \
        return -1;                                                                          \
    } while (0)

/* ---------------------------------------------------------------- validation */

struct vstate {
    struct kmem_pool *pool;
    bool collecting;       /* a collection may be running: CONDEMNED may be set */
    int rc;
    size_t coll_blocks, coll_bytes;
    size_t slots_inuse[POOL_NCLASSES];
    unsigned ci;
};

static void validate_slab(struct kmem_cache *c, struct slab *s, void *arg)
{
    struct vstate *v = arg;
    if (v->rc)
        return;
    const char *name = v->pool->name;
    uint32_t tail = c->objs_per_slab % 64;
    for (uint32_t w = 0; w < c->bitmap_words; w++) {
        uint64_t inuse = TCL(s->bitmap[w]);
        if (tail && w == c->bitmap_words - 1)
            inuse &= ~(~(uint64_t)0 << tail);
        v->slots_inuse[v->ci] += (size_t)__builtin_popcountll(inuse);
        uint64_t coll = TCL(slab_extra_bitmap(c, s, POOL_BM_COLLECTIBLE)[w]);
        uint64_t icpt = TCL(slab_extra_bitmap(c, s, POOL_BM_INTERCEPT)[w]);
        uint64_t cond = TCL(slab_extra_bitmap(c, s, POOL_BM_CONDEMNED)[w]);
        if ((coll | icpt | cond) & ~inuse) {
            heap_fmt_line("kmem_pool_validate(%s): slab %p word %u: collectible, intercept or "
                          "condemned bits on free slots",
                          name, (void *)s, w);
            v->rc = -1;
            return;
        }
        if (cond & ~coll) {
            heap_fmt_line("kmem_pool_validate(%s): slab %p word %u: condemned slots that are "
                          "not collectible",
                          name, (void *)s, w);
            v->rc = -1;
            return;
        }
        if (cond && !v->collecting) {
            heap_fmt_line("kmem_pool_validate(%s): slab %p word %u: condemned bits outside a "
                          "collection",
                          name, (void *)s, w);
            v->rc = -1;
            return;
        }
        v->coll_blocks += (size_t)__builtin_popcountll(coll);
        v->coll_bytes += (size_t)__builtin_popcountll(coll) * pool_class_size[v->ci];
    }
}

static int validate_tc_locked(struct kmem_pool *pool, struct pool_tc *e, void **all,
                              size_t *nall, size_t maxall, size_t *cached, size_t *cached_bytes)
{
    heap_mutex_assert_held(&pool->lock);
    if (TCL(e->pool) != pool || TCL(e->serial) != TCL(pool->serial))
        VFAIL("kmem_pool_validate(%s): thread cache %p registered but set up for pool %p",
              pool->name, (void *)e, (void *)TCL(e->pool));
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        const struct pool_tc_class *k = &e->cls[ci];
        uint32_t n = TCL(k->count);
        if (n > POOL_TC_MAX)
            VFAIL("kmem_pool_validate(%s): thread cache %p holds %u blocks of class %u",
                  pool->name, (void *)e, n, pool_class_size[ci]);
        char *bump = TCL(k->bump), *end = TCL(k->end);
        size_t size = pool_class_size[ci];
        if (bump > end || (size_t)(end - bump) % size || (bump != end && !pool->cls[ci]))
            VFAIL("kmem_pool_validate(%s): thread cache %p has a broken run [%p, %p) in class "
                  "%u",
                  pool->name, (void *)e, (void *)bump, (void *)end, pool_class_size[ci]);
        size_t run = (size_t)(end - bump) / size;
        for (size_t i = 0; i < n + run; i++) {
            void *b = i < n ? TCL(e->objs[ci][i]) : bump + (i - n) * size;
            struct pool_ref ref;
            if (!pool_find_slot(pool, b, &ref) || ref.ci != ci)
                VFAIL("kmem_pool_validate(%s): thread cache %p holds %p, not a slot of class "
                      "%u of this pool",
                      pool->name, (void *)e, b, pool_class_size[ci]);
            if (!ref.at.inuse)
                VFAIL("kmem_pool_validate(%s): thread cache %p holds %p, whose slot is free",
                      pool->name, (void *)e, b);
            if (i < n &&
                __atomic_load_n((const uintptr_t *)b, __ATOMIC_RELAXED) != pool_free_mark(pool, b))
                VFAIL("kmem_pool_validate(%s): cached free block %p lost its free mark "
                      "(written after free?)",
                      pool->name, b);
            if (pool_bit(&ref.at, POOL_BM_COLLECTIBLE) || pool_bit(&ref.at, POOL_BM_INTERCEPT))
                VFAIL("kmem_pool_validate(%s): cached free block %p has pool bits set",
                      pool->name, b);
            if (*nall < maxall)
                all[(*nall)++] = b;
        }
        if (TCL(k->in) - (n + run) > ((size_t)1 << 48))
            VFAIL("kmem_pool_validate(%s): thread cache %p class %u caches %zu blocks but took "
                  "only %zu from the slabs",
                  pool->name, (void *)e, pool_class_size[ci], n + run, TCL(k->in));
        *cached += n + run;
        *cached_bytes += (n + run) * size;
    }
    return 0;
}

static int validate_large_locked(struct kmem_pool *pool, bool collecting, size_t *coll_blocks,
                                 size_t *coll_bytes)
{
    heap_mutex_assert_held(&pool->lock);
    size_t live = 0, bytes = 0, used = 0;
    if (pool->large_cap & (pool->large_cap - 1))
        VFAIL("kmem_pool_validate(%s): large table size %zu is not a power of two", pool->name,
              pool->large_cap);
    for (size_t i = 0; i < pool->large_cap; i++) {
        struct pool_large *lb = &pool->large[i];
        if (!lb->block)
            continue;
        used++;
        if (lb->block == POOL_LARGE_TOMB)
            continue;
        live++;
        bytes += lb->size;
        struct buddy_block_info info;
        if (!buddy_lookup(lb->block, &info) || info.head != lb->block ||
            info.tag != BUDDY_TAG_POOL || info.size != lb->size)
            VFAIL("kmem_pool_validate(%s): large block %p (%zu bytes) is not an allocated "
                  "page block of this size tagged pool",
                  pool->name, lb->block, lb->size);
        if (pool_large_find_locked(pool, lb->block) != lb)
            VFAIL("kmem_pool_validate(%s): large block %p cannot be found by its hash",
                  pool->name, lb->block);
        if ((lb->bits & POOL_LB_CONDEMNED) &&
            (!collecting || !(lb->bits & POOL_LB_COLLECTIBLE)))
            VFAIL("kmem_pool_validate(%s): large block %p condemned outside a collection",
                  pool->name, lb->block);
        if (lb->bits & POOL_LB_COLLECTIBLE) {
            (*coll_blocks)++;
            *coll_bytes += lb->size;
        }
    }
    if (live != pool->large_live || bytes != pool->large_bytes || used != pool->large_used)
        VFAIL("kmem_pool_validate(%s): large table holds %zu blocks (%zu bytes, %zu slots "
              "used), counters say %zu (%zu, %zu)",
              pool->name, live, bytes, used, pool->large_live, pool->large_bytes,
              pool->large_used);
    if (pool->large_cap && pool->large_used >= pool->large_cap)
        VFAIL("kmem_pool_validate(%s): large table full", pool->name);
    return 0;
}

int kmem_pool_validate(struct kmem_pool *pool)
{
    if (!pool_is_live(pool)) {
        heap_fmt_line("kmem_pool_validate: %p is not a live pool", (void *)pool);
        return -1;
    }
    /* A collection may be running (housekeeping thread, or this thread's own mark or
     * finalizer): then the collectible counts and CONDEMNED bits are in flux. */
    bool own_cycle = pool_in_mark == pool || pool_in_finalizer == pool;
    bool gc_held = !own_cycle && pthread_mutex_trylock(&pool->gc_lock.mutex) == 0;
    bool collecting = !gc_held;
    struct vstate v = {.pool = pool, .collecting = collecting};
    int rc = 0;
    void **all = NULL;
    size_t maxall = 0;
    heap_mutex_lock(&pool->lock);
    for (unsigned ci = 0; ci < POOL_NCLASSES && rc == 0; ci++) {
        struct kmem_cache *c = pool->cls[ci];
        if (!c)
            continue;
        if (c->object_size != pool_class_size[ci] || c->extra_bitmaps != POOL_BITMAPS ||
            c->mag_size) {
            heap_fmt_line("kmem_pool_validate(%s): class %u cache %s has the wrong geometry",
                          pool->name, pool_class_size[ci], c->name);
            rc = -1;
            break;
        }
        if (kmem_cache_validate(c)) {
            rc = -1;
            break;
        }
        v.ci = ci;
        slab_walk(c, validate_slab, &v);
        rc = v.rc;
    }
    size_t cached = 0, cached_bytes = 0, nall = 0, ntc = 0;
    if (rc == 0) {
        for (struct pool_tc *e = pool->tcs; e; e = e->next) {
            if (!e->linked || (e->next && e->next->prev != e)) {
                heap_fmt_line("kmem_pool_validate(%s): thread cache registry broken at %p",
                              pool->name, (void *)e);
                rc = -1;
                break;
            }
            ntc++;
        }
    }
    if (rc == 0 && ntc) {
        for (struct pool_tc *e = pool->tcs; e; e = e->next) {
            size_t ob, oby, cb;
            pool_tc_totals(e, &ob, &oby, &cb, NULL);
            maxall += cb;
        }
        all = heap_meta_alloc(maxall * sizeof *all);
        if (!all)
            maxall = 0;
        for (struct pool_tc *e = pool->tcs; e && rc == 0; e = e->next)
            rc = validate_tc_locked(pool, e, all, &nall, maxall, &cached, &cached_bytes);
        if (rc == 0 && all) {
            ptrset_sort(all, nall);
            for (size_t i = 1; i < nall; i++) {
                if (all[i] == all[i - 1]) {
                    heap_fmt_line("kmem_pool_validate(%s): block %p is cached twice (freed "
                                  "twice)",
                                  pool->name, all[i]);
                    rc = -1;
                    break;
                }
            }
        }
    }
    size_t lcoll = 0, lcoll_bytes = 0;
    if (rc == 0)
        rc = validate_large_locked(pool, collecting, &lcoll, &lcoll_bytes);
    if (rc == 0) {
        size_t live = pool->live_blocks, bytes = pool->live_bytes;
        for (struct pool_tc *e = pool->tcs; e; e = e->next) {
            size_t ob, oby;
            pool_tc_totals(e, &ob, &oby, NULL, NULL);
            live += ob;
            bytes += oby;
        }
        size_t slots = 0, slot_bytes = 0;
        for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
            slots += v.slots_inuse[ci];
            slot_bytes += v.slots_inuse[ci] * pool_class_size[ci];
        }
        if (live != slots - cached + pool->large_live ||
            bytes != slot_bytes - cached_bytes + pool->large_bytes) {
            heap_fmt_line("kmem_pool_validate(%s): counters say %zu live blocks (%zu bytes); "
                          "slabs hold %zu in use, threads cache %zu, %zu large (%zu bytes)",
                          pool->name, live, bytes, slots, cached, pool->large_live,
                          slot_bytes - cached_bytes + pool->large_bytes);
            rc = -1;
        }
    }
    if (rc == 0 && !collecting) {
        size_t cb, cby;
        pool_collectible_locked(pool, &cb, &cby);
        if (cb != v.coll_blocks + lcoll || cby != v.coll_bytes + lcoll_bytes) {
            heap_fmt_line("kmem_pool_validate(%s): %zu collectible blocks (%zu bytes) counted, "
                          "%zu (%zu) have the bit",
                          pool->name, cb, cby, v.coll_blocks + lcoll, v.coll_bytes + lcoll_bytes);
            rc = -1;
        }
        if (pool->cfg.max_blocks && pool->live_blocks > pool->cfg.max_blocks) {
            heap_fmt_line("kmem_pool_validate(%s): %zu live blocks over the cap %zu",
                          pool->name, pool->live_blocks, pool->cfg.max_blocks);
            rc = -1;
        }
        if (pool->cfg.max_bytes && pool->live_bytes > pool->cfg.max_bytes) {
            heap_fmt_line("kmem_pool_validate(%s): %zu live bytes over the cap %zu",
                          pool->name, pool->live_bytes, pool->cfg.max_bytes);
            rc = -1;
        }
    }
    heap_mutex_unlock(&pool->lock);
    if (all)
        heap_meta_free(all, maxall * sizeof *all);
    if (gc_held)
        pthread_mutex_unlock(&pool->gc_lock.mutex);
    return rc;
}

/* ---------------------------------------------------------------- statistics */

void pool_collect_stats(struct kmem_pool *pool, struct kmem_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->name, pool->name, sizeof out->name);
    heap_mutex_lock(&pool->lock);
    size_t live = pool->live_blocks, bytes = pool->live_bytes, allocs = pool->allocs,
           frees = pool->frees, cached = 0;
    for (struct pool_tc *e = pool->tcs; e; e = e->next) {
        size_t ob, oby, cb;
        pool_tc_totals(e, &ob, &oby, &cb, NULL);
        live += ob;
        bytes += oby;
        allocs += TCL(e->frees) + ob;
        frees += TCL(e->frees);
        cached += cb;
    }
    size_t peak = pool->live_bytes;
    for (struct pool_tc *e = pool->tcs; e; e = e->next)
        peak += TCL(e->peak_net);
    if (peak > pool->peak_bytes)
        pool->peak_bytes = peak;
    if (bytes > pool->peak_bytes)
        pool->peak_bytes = bytes;
    out->live_blocks = live;
    out->live_bytes = bytes;
    out->peak_bytes = pool->peak_bytes;
    out->allocs = allocs;
    out->frees = frees;
    out->cached_blocks = cached;
    out->large_blocks = pool->large_live;
    out->large_bytes = pool->large_bytes;
    struct kmem_cache *cls[POOL_NCLASSES];
    memcpy(cls, pool->cls, sizeof cls);
    heap_mutex_unlock(&pool->lock);
    size_t slab_bytes = 0;
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        struct kmem_cache_stats cs;
        if (cls[ci] && kmem_cache_get_stats(cls[ci], &cs) == 0) {
            out->slabs += cs.total_slabs;
            slab_bytes += cs.total_slabs * cs.pages_per_slab * BUDDY_PAGE_SIZE;
        }
    }
    out->size_classes_used =
        (size_t)__builtin_popcountll(__atomic_load_n(&pool->cls_used, __ATOMIC_RELAXED));
    out->footprint_bytes = slab_bytes + out->large_bytes;
    heap_mutex_lock(&pool->lock);
    pool_collectible_locked(pool, &out->collectible_blocks, &out->collectible_bytes);
    heap_mutex_unlock(&pool->lock);
    out->collections = TCL(pool->collections);
    out->swept_blocks = TCL(pool->swept_blocks);
    out->swept_bytes = TCL(pool->swept_bytes);
    out->finalizers_run = TCL(pool->finalizers_run);
    out->gc_threshold = TCL(pool->threshold);
    out->last_pause_ns = TCL(pool->last_pause_ns);
    out->max_pause_ns = TCL(pool->max_pause_ns);
    out->total_gc_ns = TCL(pool->total_gc_ns);
    out->alloc_failures = TCL(pool->alloc_failures);
    out->max_blocks = pool->cfg.max_blocks;
    out->max_bytes = pool->cfg.max_bytes;
    out->flags = pool->cfg.flags;
}

int kmem_pool_get_stats(struct kmem_pool *pool, struct kmem_pool_stats *out)
{
    if (!pool_is_live(pool) || !out) {
        errno = EINVAL;
        return -1;
    }
    pool_collect_stats(pool, out);
    return 0;
}

/* ---------------------------------------------------------------- live blocks */

/* Up to max live blocks of a class cache (in use at the slab, not in a thread cache). */
struct live_walk {
    struct kmem_pool *pool; /* pool->lock held: its thread caches' runs are skipped */
    unsigned ci;
    void **out;
    size_t n, max, total;
    size_t skip;           /* the first `skip` live blocks are counted, not stored */
};

static void live_slab(struct kmem_cache *c, struct slab *s, void *arg)
{
    struct live_walk *lw = arg;
    for (uint32_t i = 0; i < c->objs_per_slab; i++) {
        if (!((TCL(s->bitmap[i / 64]) >> (i % 64)) & 1))
            continue;
        char *b = s->objs + (size_t)i * c->slot_size;
        if (__atomic_load_n((const uintptr_t *)b, __ATOMIC_RELAXED) == pool_free_mark(lw->pool, b))
            continue;
        bool in_run = false;
        for (struct pool_tc *e = lw->pool->tcs; e && !in_run; e = e->next)
            in_run = b >= TCL(e->cls[lw->ci].bump) && b < TCL(e->cls[lw->ci].end);
        if (in_run)
            continue;
        if (lw->total++ >= lw->skip && lw->n < lw->max)
            lw->out[lw->n++] = b;
    }
}

#define LIST_ADDRS 8

void pool_list_live(struct kmem_pool *pool)
{
    struct kmem_pool_stats st;
    pool_collect_stats(pool, &st);
    if (!st.live_blocks)
        return;
    heap_fmt_line("kmem_pool_destroy(%s): %zu blocks (%zu bytes) still live; freeing them "
                  "with the pool",
                  pool->name, st.live_blocks, st.live_bytes);
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        struct kmem_cache *c = __atomic_load_n(&pool->cls[ci], __ATOMIC_ACQUIRE);
        if (!c)
            continue;
        void *addrs[LIST_ADDRS];
        struct live_walk lw = {.pool = pool, .ci = ci, .out = addrs, .max = LIST_ADDRS};
        heap_mutex_lock(&pool->lock);
        slab_walk(c, live_slab, &lw);
        heap_mutex_unlock(&pool->lock);
        if (!lw.total)
            continue;
        char list[LIST_ADDRS * 20 + 8];
        size_t pos = 0;
        for (size_t i = 0; i < lw.n; i++)
            pos += heap_fmt(list + pos, sizeof list - pos, " %p", addrs[i]);
        heap_fmt_line("  %zu live blocks of %u bytes (first:%s%s)", lw.total,
                      pool_class_size[ci], list, lw.total > lw.n ? " ..." : "");
    }
    heap_mutex_lock(&pool->lock);
    size_t shown = 0;
    for (size_t i = 0; i < pool->large_cap && shown < LIST_ADDRS; i++) {
        struct pool_large *lb = &pool->large[i];
        if (lb->block && lb->block != POOL_LARGE_TOMB) {
            heap_fmt_line("  large block %p of %zu bytes", lb->block, lb->size);
            shown++;
        }
    }
    if (pool->large_live > shown)
        heap_fmt_line("  ... and %zu more large blocks", pool->large_live - shown);
    heap_mutex_unlock(&pool->lock);
}

/* ---------------------------------------------------------------- status dump */

static void put(FILE *out, const char *line, size_t n)
{
    fwrite(line, 1, n, out);
}

void kmem_pool_print_status(struct kmem_pool *pool, FILE *out, int verbosity)
{
    char line[512];
    size_t n;
    if (!out)
        return;
    if (!pool_is_live(pool)) {
        n = heap_fmt(line, sizeof line, "kmem_pool %p: not a live pool\n", (void *)pool);
        put(out, line, n);
        return;
    }
    struct kmem_pool_stats st;
    pool_collect_stats(pool, &st);
    n = heap_fmt(line, sizeof line,
                 "kmem_pool %s: %zu live blocks (%zu bytes, peak %zu), %zu collectible (%zu "
                 "bytes), %zu large, %zu slabs, footprint %zu bytes; %zu allocs, %zu frees, "
                 "%zu failures; %zu collections swept %zu blocks (%zu bytes), %zu finalizers, "
                 "threshold %zu, pause last %zu max %zu total %zu ns\n",
                 st.name, st.live_blocks, st.live_bytes, st.peak_bytes, st.collectible_blocks,
                 st.collectible_bytes, st.large_blocks, st.slabs, st.footprint_bytes, st.allocs,
                 st.frees, st.alloc_failures, st.collections, st.swept_blocks, st.swept_bytes,
                 st.finalizers_run, st.gc_threshold, (size_t)st.last_pause_ns,
                 (size_t)st.max_pause_ns, (size_t)st.total_gc_ns);
    put(out, line, n);
    if (verbosity < 1)
        return;
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        struct kmem_cache *c = __atomic_load_n(&pool->cls[ci], __ATOMIC_ACQUIRE);
        struct kmem_cache_stats cs;
        if (!c || !((__atomic_load_n(&pool->cls_used, __ATOMIC_RELAXED) >> ci) & 1) ||
            kmem_cache_get_stats(c, &cs) != 0)
            continue;
        n = heap_fmt(line, sizeof line,
                     "  class %5u: %zu slots in use (blocks and thread caches), %zu slabs of "
                     "%zu pages, %zu slots per slab\n",
                     pool_class_size[ci], cs.active_objects, cs.total_slabs, cs.pages_per_slab,
                     cs.objects_per_slab);
        put(out, line, n);
        if (verbosity < 3)
            continue;
        /* Every live block: gathered under the cache lock a page at a time (the walk's
         * order is stable while the pool does not change), printed after. */
        void *addrs[256];
        for (size_t skip = 0;; skip += 256) {
            struct live_walk lw = {.pool = pool, .ci = ci, .out = addrs, .max = 256, .skip = skip};
            heap_mutex_lock(&pool->lock);
            slab_walk(c, live_slab, &lw);
            heap_mutex_unlock(&pool->lock);
            for (size_t i = 0; i < lw.n; i++) {
                struct pool_ref ref;
                bool coll = false, icpt = false;
                if (pool_find_slot(pool, addrs[i], &ref)) {
                    coll = pool_bit(&ref.at, POOL_BM_COLLECTIBLE);
                    icpt = pool_bit(&ref.at, POOL_BM_INTERCEPT);
                }
                n = heap_fmt(line, sizeof line, "    %p %u bytes%s%s\n", addrs[i],
                             pool_class_size[ci], coll ? " collectible" : "",
                             icpt ? " intercept" : "");
                put(out, line, n);
            }
            if (lw.total <= skip + 256)
                break;
        }
    }
    if (verbosity < 2)
        return;
    heap_mutex_lock(&pool->lock);
    size_t cap = pool->large_cap;
    heap_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < cap; i++) {
        heap_mutex_lock(&pool->lock);
        if (i >= pool->large_cap) {
            heap_mutex_unlock(&pool->lock);
            break;
        }
        struct pool_large lb = pool->large[i];
        heap_mutex_unlock(&pool->lock);
        if (!lb.block || lb.block == POOL_LARGE_TOMB)
            continue;
        n = heap_fmt(line, sizeof line, "  large %p %zu bytes%s%s\n", lb.block, lb.size,
                     (lb.bits & POOL_LB_COLLECTIBLE) ? " collectible" : "",
                     (lb.bits & POOL_LB_INTERCEPT) ? " intercept" : "");
        put(out, line, n);
    }
}
