/* SPDX-License-Identifier: MIT */
/* pool/gc.c - mark and sweep of collectible blocks, finalizers, the housekeeping thread.
 *
 * A collection (one at a time per pool: gc_lock):
 *   1. snapshot  for every slab of every class (slab_walk, under the cache's lock), word by
 *                word: MARK &= ~in-use (marks of live slots cleared; on free slots of a
 *                FILL_ON_FREE pool MARK means "holds the free pattern" and is kept),
 *                CONDEMNED = COLLECTIBLE.  Large blocks the same under pool->lock.
 *   2. mark      the program's callback, no pool lock held: it calls kmem_pool_mark.
 *   3. find      CONDEMNED &= ~MARK & COLLECTIBLE per word (survivors' bits cleared); the
 *                garbage words are recorded, INTERCEPT_FREE garbage block by block.
 *   4. finalize  each INTERCEPT_FREE garbage block whose CONDEMNED bit this thread clears
 *                (atomic test-and-clear: a finalizer that inner_frees another garbage block
 *                clears that one's bit first) goes to intercept_free.
 *   5. free      the rest, word by word: the bits this thread clears in CONDEMNED are its
 *                own; COLLECTIBLE cleared, the slots back to their slabs in batches.
 * The sweep guarantee follows from the order of an allocation: the block's address is
 * written to *out before its COLLECTIBLE bit is set (release), and step 1 reads that bit
 * (acquire) before step 2 begins.  A block whose bit step 1 saw had its address written
 * before mark began; any other block is not condemned by this cycle.  Nothing walks free
 * memory, and no bit of a slot in a thread cache is ever set.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "buddy/buddy.h"
#include "heap/fmt.h"
#include "pool/internal.h"

__thread struct kmem_pool *pool_in_mark;
__thread struct kmem_pool *pool_in_finalizer;

uint64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- finalizers */

void pool_run_finalizer(struct kmem_pool *pool, void *block)
{
    struct kmem_pool *saved = pool_in_finalizer;
    struct pool_tls *saved_tls = pool_tls_active;
    const void *saved_id = pool_my_id;
    pool_in_finalizer = pool;
    /* No thread cache inside a finalizer (so its allocations reach the check and are
     * refused): neither the ways nor an owner cache. */
    pool_tls_active = NULL;
    pool_my_id = NULL;
    __atomic_fetch_add(&pool->finalizers_run, 1, __ATOMIC_RELAXED);
    pool->cfg.intercept_free(pool, block, pool->cfg.arg);
    pool_tls_active = saved_tls;
    pool_my_id = saved_id;
    pool_in_finalizer = saved;
}

/* ---------------------------------------------------------------- the housekeeping thread */

static size_t gc_collect(struct kmem_pool *pool);

static void *hk_main(void *arg)
{
    struct kmem_pool *pool = arg;
    pthread_mutex_lock(&pool->hk_mutex);
    for (;;) {
        while (!__atomic_load_n(&pool->hk_requested, __ATOMIC_RELAXED) && !pool->hk_stop)
            pthread_cond_wait(&pool->hk_cond, &pool->hk_mutex); /* shared with throttled
                                                                     allocators: re-check */
        if (pool->hk_stop)
            break;
        pthread_mutex_unlock(&pool->hk_mutex);
        /* A program thread waiting in kmem_pool_collect collects next (the lock is not
         * fair: without this, a busy housekeeping thread could starve it). */
        if (!__atomic_load_n(&pool->gc_waiters, __ATOMIC_ACQUIRE))
            gc_collect(pool);
        pthread_mutex_lock(&pool->hk_mutex);
        pool->hk_cycles++;
        pthread_cond_broadcast(&pool->hk_cond); /* throttled allocators (pool_gc_account) */
        /* Requests stay set during the cycle (allocations then need no lock); another
         * cycle follows only if allocations passed the new threshold meanwhile. */
        bool again = pool_collectible_bytes(pool) >=
                     __atomic_load_n(&pool->threshold, __ATOMIC_RELAXED);
        __atomic_store_n(&pool->hk_requested, again, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&pool->hk_mutex);
    return NULL;
}

static void gc_request(struct kmem_pool *pool)
{
    pthread_mutex_lock(&pool->hk_mutex);
    if (!pool->hk_stop && !__atomic_load_n(&pool->hk_requested, __ATOMIC_RELAXED)) {
        if (!pool->hk_started) {
            /* The thread takes no signal meant for the program. */
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            if (pthread_create(&pool->hk_thread, NULL, hk_main, pool) == 0)
                __atomic_store_n(&pool->hk_started, true, __ATOMIC_RELEASE);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        if (pool->hk_started) {
            __atomic_store_n(&pool->hk_requested, true, __ATOMIC_RELAXED);
            pthread_cond_signal(&pool->hk_cond);
        }
    }
    pthread_mutex_unlock(&pool->hk_mutex);
}

void pool_gc_stop_thread(struct kmem_pool *pool)
{
    if (!__atomic_load_n(&pool->hk_started, __ATOMIC_ACQUIRE))
        return; /* never started: nothing to stop (no one allocates during a destroy) */
    pthread_mutex_lock(&pool->hk_mutex);
    pool->hk_stop = true;
    bool started = pool->hk_started;
    pthread_cond_signal(&pool->hk_cond);
    pthread_mutex_unlock(&pool->hk_mutex);
    if (started)
        pthread_join(pool->hk_thread, NULL);
}

void pool_tc_account_flush(struct kmem_pool *pool, struct pool_tc *e)
{
    size_t blocks = __atomic_load_n(&e->coll_blocks, __ATOMIC_RELAXED);
    size_t bytes = __atomic_load_n(&e->coll_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&e->coll_blocks, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&e->coll_bytes, 0, __ATOMIC_RELAXED);
    if (blocks)
        pool_gc_account(pool, blocks, bytes);
}

void pool_collectible_locked(struct kmem_pool *pool, size_t *blocks, size_t *bytes)
{
    heap_mutex_assert_held(&pool->lock);
    size_t b = __atomic_load_n(&pool->collectible_blocks, __ATOMIC_RELAXED);
    size_t by = __atomic_load_n(&pool->collectible_bytes, __ATOMIC_RELAXED);
    for (struct pool_tc *e = pool->tcs; e; e = e->next) {
        b += __atomic_load_n(&e->coll_blocks, __ATOMIC_RELAXED);
        by += __atomic_load_n(&e->coll_bytes, __ATOMIC_RELAXED);
    }
    *blocks = b;
    *bytes = by;
}

size_t pool_collectible_bytes(struct kmem_pool *pool)
{
    size_t b, by;
    heap_mutex_lock(&pool->lock);
    pool_collectible_locked(pool, &b, &by);
    heap_mutex_unlock(&pool->lock);
    return by;
}

/* Back-pressure: when the program allocates collectible blocks faster than the
 * housekeeping thread reclaims them, an allocating thread waits for the cycle in progress to
 * end, at most POOL_THROTTLE_NS (a bound, not a promise: mark may wait for a lock this
 * thread holds, so the wait must time out). */
static void gc_throttle(struct kmem_pool *pool)
{
    if (pool_in_mark || pool_in_finalizer)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += POOL_THROTTLE_NS;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&pool->hk_mutex);
    uint64_t cycles = pool->hk_cycles;
    while (pool->hk_started && !pool->hk_stop && pool->hk_cycles == cycles &&
           __atomic_load_n(&pool->hk_requested, __ATOMIC_RELAXED)) {
        if (pthread_cond_timedwait(&pool->hk_cond, &pool->hk_mutex, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&pool->hk_mutex);
}

void pool_gc_account(struct kmem_pool *pool, size_t blocks, size_t bytes)
{
    __atomic_fetch_add(&pool->collectible_blocks, blocks, __ATOMIC_RELAXED);
    size_t now = __atomic_add_fetch(&pool->collectible_bytes, bytes, __ATOMIC_RELAXED);
    size_t thr = __atomic_load_n(&pool->threshold, __ATOMIC_RELAXED);
    if (now < thr || (pool->cfg.flags & KMEM_POOL_NO_THREAD))
        return;
    if (!__atomic_load_n(&pool->hk_requested, __ATOMIC_RELAXED))
        gc_request(pool);
    else if (now / POOL_THROTTLE_FACTOR >= thr)
        gc_throttle(pool);
}

/* ---------------------------------------------------------------- growable arrays */

struct gc_vec {
    char *data;
    size_t n, cap, elem;
};

static bool vec_push(struct gc_vec *v, const void *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4096 / v->elem;
        char *d = heap_meta_alloc(cap * v->elem);
        if (!d)
            return false;
        if (v->data) {
            memcpy(d, v->data, v->n * v->elem);
            heap_meta_free(v->data, v->cap * v->elem);
        }
        v->data = d;
        v->cap = cap;
    }
    memcpy(v->data + v->n * v->elem, x, v->elem);
    v->n++;
    return true;
}

static void vec_free(struct gc_vec *v)
{
    if (v->data)
        heap_meta_free(v->data, v->cap * v->elem);
    v->data = NULL;
    v->n = v->cap = 0;
}

/* Garbage of one bitmap word of one slab. */
struct gc_word {
    struct slab *s;
    uint64_t bits;
    uint32_t w;
    uint32_t ci;
};

struct gc_state {
    struct kmem_pool *pool;
    unsigned ci;
    bool oom;               /* a record could not be kept: that garbage waits a cycle */
    struct gc_vec words;    /* struct gc_word: plain garbage */
    struct gc_vec fin;      /* void *: INTERCEPT_FREE garbage, slots and large */
    struct gc_vec large;    /* void *: plain large garbage */
};

/* ---------------------------------------------------------------- the cycle */

static void gc_begin_slab(struct kmem_cache *c, struct slab *s, void *arg)
{
    (void)arg;
    uint64_t *mark = slab_extra_bitmap(c, s, POOL_BM_MARK);
    uint64_t *coll = slab_extra_bitmap(c, s, POOL_BM_COLLECTIBLE);
    uint64_t *cond = slab_extra_bitmap(c, s, POOL_BM_CONDEMNED);
    for (uint32_t w = 0; w < c->bitmap_words; w++) {
        uint64_t inuse = __atomic_load_n(&s->bitmap[w], __ATOMIC_RELAXED);
        if (__atomic_load_n(&mark[w], __ATOMIC_RELAXED) & inuse)
            __atomic_fetch_and(&mark[w], ~inuse, __ATOMIC_RELAXED);
        __atomic_store_n(&cond[w], __atomic_load_n(&coll[w], __ATOMIC_ACQUIRE),
                         __ATOMIC_RELAXED);
    }
}

static void gc_find_slab(struct kmem_cache *c, struct slab *s, void *arg)
{
    struct gc_state *st = arg;
    uint64_t *mark = slab_extra_bitmap(c, s, POOL_BM_MARK);
    uint64_t *coll = slab_extra_bitmap(c, s, POOL_BM_COLLECTIBLE);
    uint64_t *icpt = slab_extra_bitmap(c, s, POOL_BM_INTERCEPT);
    uint64_t *cond = slab_extra_bitmap(c, s, POOL_BM_CONDEMNED);
    for (uint32_t w = 0; w < c->bitmap_words; w++) {
        uint64_t cd = __atomic_load_n(&cond[w], __ATOMIC_RELAXED);
        if (!cd)
            continue;
        uint64_t g = cd & ~__atomic_load_n(&mark[w], __ATOMIC_ACQUIRE) &
                     __atomic_load_n(&coll[w], __ATOMIC_RELAXED);
        if (cd & ~g)
            __atomic_fetch_and(&cond[w], ~(cd & ~g), __ATOMIC_RELAXED);
        if (!g)
            continue;
        uint64_t fin = g & __atomic_load_n(&icpt[w], __ATOMIC_RELAXED);
        struct gc_word rec = {.s = s, .bits = g & ~fin, .w = w, .ci = st->ci};
        if (rec.bits && !vec_push(&st->words, &rec)) {
            st->oom = true;
            __atomic_fetch_and(&cond[w], ~rec.bits, __ATOMIC_RELAXED);
        }
        while (fin) {
            unsigned b = (unsigned)__builtin_ctzll(fin);
            fin &= fin - 1;
            void *block = s->objs + ((size_t)w * 64 + b) * c->slot_size;
            if (!vec_push(&st->fin, &block)) {
                st->oom = true;
                __atomic_fetch_and(&cond[w], ~((uint64_t)1 << b), __ATOMIC_RELAXED);
            }
        }
    }
}

/* Test and clear the CONDEMNED mark of a garbage block: true if this thread cleared it
 * (nobody inner_freed the block first). */
static bool take_condemned(struct kmem_pool *pool, void *block, struct pool_ref *ref)
{
    if (pool_find_slot(pool, block, ref)) {
        uint64_t bit = (uint64_t)1 << (ref->at.idx % 64);
        return __atomic_fetch_and(pool_bm(&ref->at, POOL_BM_CONDEMNED), ~bit,
                                  __ATOMIC_ACQ_REL) &
               bit;
    }
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = pool_large_find_locked(pool, block);
    bool mine = lb && (lb->bits & POOL_LB_CONDEMNED);
    if (mine) {
        lb->bits &= ~POOL_LB_CONDEMNED;
        ref->large = true;
        ref->size = lb->size;
    }
    heap_mutex_unlock(&pool->lock);
    return mine;
}

#define GC_BATCH 256

/* Step 5 for the slots: word by word, the bits this thread takes are freed.  Pools without
 * fill flags over caches without debug state give the words back as words
 * (slab_free_words); the others slot by slot (the free pattern, the debug hooks). */
static void gc_free_words(struct kmem_pool *pool, struct gc_state *st, size_t *swept,
                          size_t *bytes)
{
    struct slab_word_free wbatch[GC_BATCH];
    size_t nw = 0;
    unsigned wci = 0;
    size_t wblocks = 0;
    void *batch[GC_BATCH];
    size_t n = 0;
    unsigned bci = 0;
    const struct gc_word *recs = (const struct gc_word *)st->words.data;
    for (size_t i = 0; i < st->words.n; i++) {
        const struct gc_word *r = &recs[i];
        struct kmem_cache *c = pool->cls[r->ci];
        uint64_t *cond = slab_extra_bitmap(c, r->s, POOL_BM_CONDEMNED);
        uint64_t mine = __atomic_fetch_and(&cond[r->w], ~r->bits, __ATOMIC_ACQ_REL) & r->bits;
        if (!mine)
            continue;
        __atomic_fetch_and(&slab_extra_bitmap(c, r->s, POOL_BM_COLLECTIBLE)[r->w], ~mine,
                           __ATOMIC_RELAXED);
        size_t k = (size_t)__builtin_popcountll(mine), sz = pool_class_size[r->ci];
        __atomic_fetch_sub(&pool->collectible_blocks, k, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&pool->collectible_bytes, k * sz, __ATOMIC_RELAXED);
        *swept += k;
        *bytes += k * sz;
        if (!(pool->cfg.flags & KMEM_POOL_FILL_ON_FREE) && !c->debug) {
            if (nw && (wci != r->ci || nw == GC_BATCH)) {
                pool_release_words(pool, wci, wbatch, nw, wblocks);
                nw = wblocks = 0;
            }
            wci = r->ci;
            wbatch[nw++] = (struct slab_word_free){.slab = r->s, .word = r->w, .bits = mine};
            wblocks += k;
            continue;
        }
        if (n && bci != r->ci) {
            pool_release_slots(pool, bci, batch, n, n * pool_class_size[bci]);
            n = 0;
        }
        bci = r->ci;
        while (mine) {
            unsigned b = (unsigned)__builtin_ctzll(mine);
            mine &= mine - 1;
            batch[n++] = r->s->objs + ((size_t)r->w * 64 + b) * c->slot_size;
            if (n == GC_BATCH) {
                pool_release_slots(pool, bci, batch, n, n * sz);
                n = 0;
            }
        }
    }
    if (n)
        pool_release_slots(pool, bci, batch, n, n * pool_class_size[bci]);
    if (nw)
        pool_release_words(pool, wci, wbatch, nw, wblocks);
}

static size_t gc_collect(struct kmem_pool *pool)
{
    heap_mutex_lock(&pool->gc_lock);
    if (!pool_is_live(pool)) {
        heap_mutex_unlock(&pool->gc_lock);
        return 0;
    }
    uint64_t t0 = pool_now_ns();
    __atomic_store_n(&pool->collecting, 1, __ATOMIC_RELAXED);
    struct gc_state st = {.pool = pool};
    st.words.elem = sizeof(struct gc_word);
    st.fin.elem = st.large.elem = sizeof(void *);

    /* 1. snapshot */
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        struct kmem_cache *c = __atomic_load_n(&pool->cls[ci], __ATOMIC_ACQUIRE);
        if (c)
            slab_walk(c, gc_begin_slab, NULL);
    }
    heap_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->large_cap; i++) {
        struct pool_large *lb = &pool->large[i];
        if (!lb->block || lb->block == POOL_LARGE_TOMB)
            continue;
        lb->bits &= ~(POOL_LB_MARK | POOL_LB_CONDEMNED);
        if (lb->bits & POOL_LB_COLLECTIBLE)
            lb->bits |= POOL_LB_CONDEMNED;
    }
    heap_mutex_unlock(&pool->lock);

    /* 2. mark (this thread's snapshot loads come first; the bits were read with acquire) */
    if (pool->cfg.mark) {
        struct kmem_pool *saved = pool_in_mark;
        pool_in_mark = pool;
        pool->cfg.mark(pool, pool->cfg.arg);
        pool_in_mark = saved;
    }

    /* 3. find */
    for (unsigned ci = 0; ci < POOL_NCLASSES; ci++) {
        struct kmem_cache *c = __atomic_load_n(&pool->cls[ci], __ATOMIC_ACQUIRE);
        st.ci = ci;
        if (c)
            slab_walk(c, gc_find_slab, &st);
    }
    heap_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->large_cap; i++) {
        struct pool_large *lb = &pool->large[i];
        if (!lb->block || lb->block == POOL_LARGE_TOMB || !(lb->bits & POOL_LB_CONDEMNED))
            continue;
        if ((lb->bits & POOL_LB_MARK) || !(lb->bits & POOL_LB_COLLECTIBLE)) {
            lb->bits &= ~POOL_LB_CONDEMNED;
            continue;
        }
        void *block = lb->block;
        if (!vec_push((lb->bits & POOL_LB_INTERCEPT) ? &st.fin : &st.large, &block)) {
            st.oom = true;
            lb->bits &= ~POOL_LB_CONDEMNED;
        }
    }
    heap_mutex_unlock(&pool->lock);

    /* 4. finalize */
    size_t swept = 0, bytes = 0;
    void **fin = (void **)st.fin.data;
    for (size_t i = 0; i < st.fin.n; i++) {
        struct pool_ref ref;
        if (!take_condemned(pool, fin[i], &ref))
            continue;
        swept++;
        bytes += ref.size;
        pool_run_finalizer(pool, fin[i]);
    }

    /* 5. free */
    gc_free_words(pool, &st, &swept, &bytes);
    void **large = (void **)st.large.data;
    for (size_t i = 0; i < st.large.n; i++) {
        struct pool_ref ref = {0};
        if (!take_condemned(pool, large[i], &ref))
            continue;
        swept++;
        bytes += ref.size;
        pool_release_block(pool, large[i], &ref);
    }
    vec_free(&st.words);
    vec_free(&st.fin);
    vec_free(&st.large);

    /* The next threshold: what is left times the factor, never below the configured one. */
    double left = (double)pool_collectible_bytes(pool);
    double next = left * pool->cfg.gc_factor;
    size_t thr = next >= (double)SIZE_MAX ? SIZE_MAX : (size_t)next;
    if (thr < pool->cfg.gc_threshold)
        thr = pool->cfg.gc_threshold;
    __atomic_store_n(&pool->threshold, thr, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->collecting, 0, __ATOMIC_RELAXED);

    uint64_t pause = pool_now_ns() - t0;
    __atomic_fetch_add(&pool->collections, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pool->swept_blocks, swept, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pool->swept_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->last_pause_ns, pause, __ATOMIC_RELAXED);
    if (pause > __atomic_load_n(&pool->max_pause_ns, __ATOMIC_RELAXED))
        __atomic_store_n(&pool->max_pause_ns, pause, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pool->total_gc_ns, pause, __ATOMIC_RELAXED);
    heap_mutex_unlock(&pool->gc_lock);
    return swept;
}

/* ---------------------------------------------------------------- public calls */

size_t kmem_pool_collect(struct kmem_pool *pool)
{
    if (!pool_is_live(pool)) {
        if (pool)
            pool_report("kmem_pool_collect: %p is not a live pool", (void *)pool);
        errno = EINVAL;
        return 0;
    }
    if (pool_in_mark || pool_in_finalizer) {
        pool_report("kmem_pool_collect(%s): called from inside a mark or intercept_free "
                    "callback; refused",
                    pool->name);
        return 0;
    }
    __atomic_fetch_add(&pool->gc_waiters, 1, __ATOMIC_ACQ_REL);
    size_t n = gc_collect(pool);
    __atomic_fetch_sub(&pool->gc_waiters, 1, __ATOMIC_ACQ_REL);
    return n;
}

size_t kmem_pool_maybe_collect(struct kmem_pool *pool)
{
    if (pool_is_live(pool) &&
        pool_collectible_bytes(pool) < __atomic_load_n(&pool->threshold, __ATOMIC_RELAXED))
        return 0;
    return kmem_pool_collect(pool);
}

/* A live block of the pool (not free, not in a thread cache), or a report. */
static bool live_slot(struct kmem_pool *pool, const void *block, struct pool_ref *ref,
                      const char *op)
{
    if (!pool_find_slot(pool, block, ref))
        return false;
    if (!ref->at.inuse || *(const uintptr_t *)block == pool_free_mark(pool, block)) {
        pool_report("%s(%s): %p is a free block", op, pool->name, block);
        ref->size = 0;
    }
    return true;
}

void kmem_pool_mark(struct kmem_pool *pool, const void *block)
{
    if (!pool_is_live(pool)) {
        pool_report("kmem_pool_mark: %p is not a live pool", (const void *)pool);
        return;
    }
    struct pool_ref ref;
    if (SLAB_LIKELY(live_slot(pool, block, &ref, "kmem_pool_mark"))) {
        if (ref.size)
            __atomic_fetch_or(pool_bm(&ref.at, POOL_BM_MARK), (uint64_t)1 << (ref.at.idx % 64),
                              __ATOMIC_RELEASE);
        return;
    }
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = pool_large_find_locked(pool, block);
    if (lb)
        lb->bits |= POOL_LB_MARK;
    heap_mutex_unlock(&pool->lock);
    if (!lb)
        pool_report("kmem_pool_mark(%s): %p is not a block of this pool", pool->name, block);
}

void kmem_pool_mark_bulk(struct kmem_pool *pool, size_t n, void *const *blocks)
{
    if (!blocks)
        return;
    for (size_t i = 0; i < n; i++)
        kmem_pool_mark(pool, blocks[i]);
}

void kmem_pool_make_collectible(struct kmem_pool *pool, void *block)
{
    if (!pool_is_live(pool)) {
        pool_report("kmem_pool_make_collectible: %p is not a live pool", (void *)pool);
        return;
    }
    struct pool_ref ref;
    if (live_slot(pool, block, &ref, "kmem_pool_make_collectible")) {
        if (!ref.size)
            return;
        uint64_t bit = (uint64_t)1 << (ref.at.idx % 64);
        if (__atomic_fetch_or(pool_bm(&ref.at, POOL_BM_COLLECTIBLE), bit, __ATOMIC_RELEASE) &
            bit)
            return; /* already collectible */
        pool_gc_account(pool, 1, ref.size);
        return;
    }
    heap_mutex_lock(&pool->lock);
    struct pool_large *lb = pool_large_find_locked(pool, block);
    size_t size = 0;
    if (lb && !(lb->bits & POOL_LB_COLLECTIBLE)) {
        lb->bits |= POOL_LB_COLLECTIBLE;
        size = lb->size;
    }
    heap_mutex_unlock(&pool->lock);
    if (!lb)
        pool_report("kmem_pool_make_collectible(%s): %p is not a block of this pool",
                    pool->name, block);
    else if (size)
        pool_gc_account(pool, 1, size);
}
