/* SPDX-License-Identifier: MIT */
/* slab/magazine.c - per-thread magazines and the depot (Bonwick & Adams, USENIX 2001).
 *
 * Each thread has a table (struct magazine_table) with one entry per cache id: a `loaded`
 * and a `previous` magazine (arrays of object pointers; previous is no_magazine, a
 * placeholder, until loaded first fills up).  kmem_cache_alloc pops from `loaded`,
 * kmem_cache_free pushes onto it, both through the entry's window on it (struct
 * magazine_entry; the inline fast paths are in fastpath.h, the entry points in cache.c): no
 * lock, no atomic read-modify-write, no touch of the magazine header, and no touch of the
 * slab beyond the free-time validity check.  Every slow path here closes the window first
 * and opens it again last.  When `loaded` is empty (alloc) or full (free), it is swapped with
 * `previous` if that helps; otherwise the depot (cache->depot_lock) exchanges a whole
 * magazine: a full one for allocation, an empty one for freeing.  Only when the depot has no
 * full magazine does an allocation go to the slab layer, taking SLAB_FIRST_REFILL objects at
 * first and doubling per refill, up to half a magazine (a whole one once the thread has its
 * second), under one cache->lock acquisition; up to the first refill at that cap a refill
 * stops at the first page of the slab not touched yet (but for its first object).  A thread
 * that frees objects allocated by another (producer/consumer) fills magazines that reach the
 * producer through the depot, one lock round trip per magazine.
 *
 * Magazine size by slot size: <= 256 B: 64, <= 1 KiB: 32, <= 4 KiB: 16, else 8 objects
 * (kmem_cache_args.magazine_size overrides).  The depot keeps at most depot_max_full full
 * magazines (about 1 MiB of objects, at least 8 magazines: cache.c); past that, a free
 * returns a magazine's worth of objects to the slabs.
 *
 * Objects in magazines keep their slab bit set: to the slab layer they are "in use".  So:
 *   active_objects (held by callers) = sum(slab->inuse) - cached_objects
 *   cached_objects = objects in every thread's magazines + objects in the depot.
 * Allocation and free counts are kept per thread (relaxed atomics: only the owning thread
 * writes them) and summed by the stats reader; they are folded into the cache when a thread
 * exits.  Stats are exact when no thread is inside the allocator.
 *
 * Thread exit: a pthread key destructor returns the thread's cached objects to their slabs
 * and its magazines to the depot; kmem_cache_thread_flush() does the same on demand.
 * A thread that allocates after its destructor ran works without magazines.
 *
 * The depot's working set (Bonwick & Adams section 3.5, libumem's reap): the depot notes the
 * fewest full and empty magazines it held since the last reap (depot_min_full/_empty, kept
 * by depot_pop_locked); that many sat unused for the whole interval, and the next reap
 * (magazine_depot_reap, called for every cache by cache.c's reaper, which magazine_tick runs
 * once per SLAB_REAP_MS from the slow paths here: never from the fast paths, and without a
 * thread) returns their objects to the slabs and frees them.  The same tick runs the buddy
 * layer's decay (buddy_tick).  kmalloc's large blocks tick too: a program whose only
 * activity after freeing its small objects is large blocks still gets their depots back.
 *
 * kmem_cache_shrink(c) flushes the *calling* thread's magazines of c and the depot; other
 * live threads keep their (at most two) magazines: reaching into them would need a lock on
 * every fast-path operation.  The reap does the same for the thread that runs it, for each
 * cache that thread has not allocated from or freed to since its previous reap
 * (magazine_reap_self): a program that went idle gets its own magazines' slabs back too, and
 * a thread busy with a cache loses at most one refill per reap interval to it.
 *
 * fork(): cache.c's prepare handler takes every lock in the order of types.h; in the child,
 * magazine_fork_child retires the tables of the threads that do not exist there, so their
 * cached objects go back to the slabs.
 *
 * Cross-thread access to a table happens only under magazine_tables_lock (cache destroy,
 * stats, thread exit, fork child); fields read that way are accessed with relaxed atomics.
 * Functions named *_locked assert their locks in debug builds.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "slab/fastpath.h"
#include "slab/internal.h"

#define TC_LOAD(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)
#define TC_STORE(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)

struct heap_mutex magazine_tables_lock = HEAP_MUTEX_INITIALIZER;
#define tables_assert_locked() heap_mutex_assert_held(&magazine_tables_lock)
#define depot_assert_locked(c) heap_mutex_assert_held(&(c)->depot_lock)

static struct magazine_table *table_list;     /* magazine_tables_lock */
/* Tables of exited threads, for reuse (magazine_tables_lock; linked by `next`).  A thread
 * touches only the entries of the caches it uses (a page or two of its table); the retire
 * leaves every entry zero, so reusing a table needs no memset.  Freed to heap_meta_free, a
 * table would come back zeroed by memset, every page of it resident. */
static struct magazine_table *table_free;     /* magazine_tables_lock */
static pthread_key_t table_key;
static int table_key_ready;                   /* atomic */

/* Threads start on an all-empty table (no entry has a cache or a window), so the fast paths
 * need no NULL test: every lookup misses and the slow path creates the thread's own table. */
HEAP_LARGE_BSS struct magazine_table magazine_table_empty;
__thread struct magazine_table *magazine_tls_table __attribute__((tls_model("initial-exec"))) =
    &magazine_table_empty;
static __thread int tls_table_dead __attribute__((tls_model("initial-exec")));

static void table_thread_exit(void *arg);

/* ---------------------------------------------------------------- init */

void magazine_init(void)
{
    if (pthread_key_create(&table_key, table_thread_exit) == 0)
        __atomic_store_n(&table_key_ready, 1, __ATOMIC_RELEASE);
}

unsigned magazine_default_size(size_t slot)
{
    if (slot <= 256)
        return 64;
    if (slot <= 1024)
        return 32;
    if (slot <= 4096)
        return 16;
    return 8;
}

/* ---------------------------------------------------------------- magazines */

/* The `previous` of an entry until a second magazine is needed: empty, capacity 0, never in
 * a depot and never `loaded`.  A thread's entry starts with one real magazine, because a
 * short-lived program touches a class a few times and never fills half a magazine: a second
 * magazine would only cost a metadata block per class and thread.  entry_make_room replaces
 * it by a real magazine the first time loaded fills up; entry_refill and depot_put never
 * hand it to the depot. */
static struct magazine no_magazine;

static struct magazine *magazine_new(uint32_t size)
{
    /* One word more than `size`: the end of the popped run when the magazine is nearly full
     * (magazine_push writes NULL at top[1], and top can be hi - 1). */
    struct magazine *m = heap_meta_alloc(sizeof *m + ((size_t)size + 1) * sizeof(void *));
    if (m)
        m->size = size;
    return m;
}

static void magazine_delete(struct magazine *m)
{
    if (m)
        heap_meta_free(m, sizeof *m + ((size_t)m->size + 1) * sizeof(void *));
}

/* Return a magazine's objects to the slabs; it is left empty (count zeroed under the cache
 * lock, so a fork sees the objects either in the magazine or in the slabs, never both).
 * `net`: the owning entry's net_in, taken down under the same lock (NULL for the depot's). */
static void magazine_empty_to_slabs(struct kmem_cache *c, struct magazine *m, size_t *net)
{
    uint32_t n = TC_LOAD(m->count);
    if (n)
        slab_free_batch_with_count(c, m->objs, n, &m->count, net);
}

/* ---------------------------------------------------------------- depot (depot_lock) */

/* Pop from one of c's depot lists (list and count are c's full or empty ones). */
static struct magazine *depot_pop_locked(struct kmem_cache *c, struct magazine **list,
                                         size_t *count)
{
    depot_assert_locked(c);
    struct magazine *m = *list;
    if (m) {
        *list = m->next;
        m->next = NULL;
        (*count)--;
        /* The working set: the fewest magazines this list held since the last reap. */
        size_t *min = list == &c->depot_full ? &c->depot_min_full : &c->depot_min_empty;
        if (*count < *min)
            *min = *count;
    }
    return m;
}

static void depot_push_locked(struct kmem_cache *c, struct magazine **list, size_t *count,
                              struct magazine *m)
{
    depot_assert_locked(c);
    assert(m != &no_magazine && m->size == c->mag_size && TC_LOAD(m->count) <= m->size);
    m->next = *list;
    *list = m;
    (*count)++;
}

/* An empty magazine of c's size: from the depot, else new.  NULL when out of memory. */
static struct magazine *depot_get_empty(struct kmem_cache *c)
{
    heap_mutex_lock(&c->depot_lock);
    struct magazine *m = depot_pop_locked(c, &c->depot_empty, &c->nr_depot_empty);
    heap_mutex_unlock(&c->depot_lock);
    return m ? m : magazine_new(c->mag_size);
}

/* Give a magazine (full, partial or empty) to the depot; past the depot's bound its objects
 * go back to the slabs first. */
static void depot_put(struct kmem_cache *c, struct magazine *m)
{
    if (!m || m == &no_magazine)
        return;
    heap_mutex_lock(&c->depot_lock);
    if (TC_LOAD(m->count) && c->nr_depot_full >= c->depot_max_full) {
        heap_mutex_unlock(&c->depot_lock);
        magazine_empty_to_slabs(c, m, NULL);
        heap_mutex_lock(&c->depot_lock);
    }
    if (TC_LOAD(m->count))
        depot_push_locked(c, &c->depot_full, &c->nr_depot_full, m);
    else
        depot_push_locked(c, &c->depot_empty, &c->nr_depot_empty, m);
    heap_mutex_unlock(&c->depot_lock);
}

/* Empty the depot: every magazine's objects back to the slabs, the magazines freed.  The
 * whole drain runs under depot_lock (lock order: depot, then cache), so no magazine holding
 * objects is ever only in a local variable when another thread forks. */
void magazine_depot_drain(struct kmem_cache *c)
{
    heap_mutex_lock(&c->depot_lock);
    while (c->depot_full) {
        struct magazine *m = depot_pop_locked(c, &c->depot_full, &c->nr_depot_full);
        magazine_empty_to_slabs(c, m, NULL);
        magazine_delete(m);
    }
    while (c->depot_empty)
        magazine_delete(depot_pop_locked(c, &c->depot_empty, &c->nr_depot_empty));
    heap_mutex_unlock(&c->depot_lock);
}

/* Cut the last n magazines off a depot list (the ones pushed longest ago) as a chain. */
static struct magazine *depot_cut_tail_locked(struct kmem_cache *c, struct magazine **list,
                                              size_t *count, size_t n)
{
    depot_assert_locked(c);
    if (n > *count)
        n = *count;
    if (n == 0)
        return NULL;
    struct magazine **link = list;
    for (size_t keep = *count - n; keep; keep--)
        link = &(*link)->next;
    struct magazine *chain = *link;
    *link = NULL;
    *count -= n;
    return chain;
}

size_t magazine_depot_reap(struct kmem_cache *c, bool *idle)
{
    size_t objs = 0;
    heap_mutex_lock(&c->depot_lock);
    if (idle)
        *idle = c->depot_min_full == c->nr_depot_full;
    struct magazine *full = depot_cut_tail_locked(c, &c->depot_full, &c->nr_depot_full,
                                                  c->depot_min_full);
    struct magazine *empty = depot_cut_tail_locked(c, &c->depot_empty, &c->nr_depot_empty,
                                                   c->depot_min_empty);
    /* The objects go back under depot_lock, like the drain's: a fork never finds a magazine
     * holding objects only in a local variable. */
    for (struct magazine *m = full, *next; m; m = next) {
        next = m->next;
        objs += TC_LOAD(m->count);
        magazine_empty_to_slabs(c, m, NULL);
        magazine_delete(m);
    }
    c->depot_min_full = c->nr_depot_full;
    c->depot_min_empty = c->nr_depot_empty;
    heap_mutex_unlock(&c->depot_lock);
    for (struct magazine *m = empty, *next; m; m = next) {
        next = m->next;
        magazine_delete(m);
    }
    return objs;
}

/* ---------------------------------------------------------------- per-thread tables */

static struct magazine_table *table_create(void)
{
    if (tls_table_dead || !__atomic_load_n(&table_key_ready, __ATOMIC_ACQUIRE))
        return NULL;
    heap_mutex_lock(&magazine_tables_lock);
    struct magazine_table *tc = table_free;
    if (tc) {
        table_free = tc->next;
    } else {
        heap_mutex_unlock(&magazine_tables_lock);
        tc = heap_meta_alloc(sizeof *tc); /* zeroed */
        if (!tc)
            return NULL;
        heap_mutex_lock(&magazine_tables_lock);
    }
    tc->thread = pthread_self();
    tc->prev = NULL;
    tc->next = table_list;
    if (table_list)
        table_list->prev = tc;
    table_list = tc;
    heap_mutex_unlock(&magazine_tables_lock);
    magazine_tls_table = tc;
    pthread_setspecific(table_key, tc);
    return tc;
}

static inline void entry_add_in(struct magazine_entry *e, size_t n)
{
    TC_STORE(e->net_in, TC_LOAD(e->net_in) + n);
}

static inline void entry_add_out(struct magazine_entry *e, size_t n)
{
    TC_STORE(e->net_in, TC_LOAD(e->net_in) - n);
}

static inline size_t magazine_count(const struct magazine *m)
{
    return m ? TC_LOAD(m->count) : 0;
}

/* Objects in e's loaded magazine l, read by any thread (struct magazine_entry): top - lo
 * while the window describes l, l->count otherwise. */
static inline uint32_t entry_loaded_count(const struct magazine_entry *e, const struct magazine *l)
{
    if (!l)
        return 0;
    void **lo = TC_LOAD(e->lo);
    if (lo == l->objs)
        return (uint32_t)(TC_LOAD(e->top) - lo);
    return TC_LOAD(l->count);
}

/* e's previous magazine, or NULL when it is the loaded one too: a fork child can see an
 * entry in the middle of a swap, after `loaded` was stored and before `previous` was. */
static inline struct magazine *entry_previous(const struct magazine_entry *e)
{
    struct magazine *p = TC_LOAD(e->previous);
    return p == TC_LOAD(e->loaded) ? NULL : p;
}

/* Objects in both of e's magazines. */
static inline size_t entry_cached(const struct magazine_entry *e)
{
    return entry_loaded_count(e, TC_LOAD(e->loaded)) + magazine_count(entry_previous(e));
}

/* Allocations this entry served (see struct magazine_entry). */
static size_t entry_allocs(const struct magazine_entry *e)
{
    return TC_LOAD(e->frees) + TC_LOAD(e->net_in) - entry_cached(e);
}

/* Before working on e's magazines: write the loaded count back and close the window (both
 * fast paths then miss).  The owning thread calls it, and so does a retire of another
 * (stopped or gone) thread's entry, which may be caught mid-swap: hence entry_loaded_count
 * rather than top - lo. */
static inline void entry_window_close(struct magazine_entry *e)
{
    struct magazine *l = TC_LOAD(e->loaded);
    if (l && TC_LOAD(e->lo)) {
        TC_STORE(l->count, entry_loaded_count(e, l));
        TC_STORE(e->lo, NULL); /* first: from here readers use loaded->count */
        TC_STORE(e->top, NULL);
        TC_STORE(e->hi, NULL);
    }
}

/* ... and after: open the window on the loaded magazine, lo last, with an empty popped run
 * (fastpath.h) that trusts the returns to the slabs seen so far.  Only the owning
 * thread opens a window (a retire of another thread's entry leaves it closed). */
static inline void entry_window_open(struct kmem_cache *c, struct magazine_entry *e)
{
    struct magazine *l = e->loaded;
    if (l) {
        assert(l != &no_magazine && TC_LOAD(l->count) <= l->size && l->size == c->mag_size);
        void **top = l->objs + TC_LOAD(l->count);
        *top = NULL; /* objs[size] exists: never out of bounds */
        TC_STORE(e->returns_seen, __atomic_load_n(&c->returns, __ATOMIC_RELAXED));
        TC_STORE(e->top, top);
        TC_STORE(e->hi, l->objs + l->size);
        TC_STORE(e->lo, l->objs);
    }
}

/* Return a magazine's objects to the slabs on behalf of entry e. */
static void entry_magazine_to_slabs(struct kmem_cache *c, struct magazine_entry *e,
                                    struct magazine *m)
{
    size_t n = magazine_count(m);
    if (n) {
        magazine_empty_to_slabs(c, m, &e->net_in);
    }
}

/* Detach one entry: objects back to the slabs, magazines to the depot, counters folded into
 * the cache.  magazine_tables_lock held (stats readers must see the counters exactly once). */
static void entry_retire_locked(struct magazine_entry *e, bool keep_magazines)
{
    tables_assert_locked();
    struct kmem_cache *c = TC_LOAD(e->cache);
    if (!c)
        return;
    struct magazine *l = TC_LOAD(e->loaded), *p = entry_previous(e);
    entry_window_close(e);
    entry_magazine_to_slabs(c, e, l);
    entry_magazine_to_slabs(c, e, p);
    if (keep_magazines) {
        entry_window_open(c, e);
        return;
    }
    __atomic_fetch_add(&c->allocs, entry_allocs(e), __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->frees, TC_LOAD(e->frees), __ATOMIC_RELAXED);
    TC_STORE(e->net_in, 0);
    TC_STORE(e->frees, 0);
    TC_STORE(e->reap_ops, 0);
    TC_STORE(e->refill, 0);
    TC_STORE(e->loaded, NULL);
    TC_STORE(e->previous, NULL);
    TC_STORE(e->cache, NULL);
    depot_put(c, l);
    depot_put(c, p);
}

static void table_retire(struct magazine_table *tc)
{
    heap_mutex_lock(&magazine_tables_lock);
    for (size_t id = 0; id < SLAB_MAX_CACHES; id++)
        entry_retire_locked(&tc->ent[id], false);
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        table_list = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    /* Every entry is zero again (entry_retire_locked): keep the table for the next thread.
     * Its free hints stay: they are guesses that the free path checks anyway. */
    tc->prev = NULL;
    tc->next = table_free;
    table_free = tc;
    heap_mutex_unlock(&magazine_tables_lock);
}

static void table_thread_exit(void *arg)
{
    struct magazine_table *tc = arg;
    magazine_tls_table = &magazine_table_empty;
    tls_table_dead = 1;
    if (tc)
        table_retire(tc);
}

static void (*thread_flush_hook)(void);
static void (*reaper)(void);
static uint64_t reap_last_ms; /* buddy clock at the last reap (atomic) */

void magazine_set_reaper(void (*fn)(void))
{
    __atomic_store_n(&reaper, fn, __ATOMIC_RELEASE);
}

/* A tick on every MAGAZINE_TICK_EVERY-th slow path of a thread, and only when the clock
 * moved since the thread's last one: a clock read would be a visible share of a refill of a
 * few objects, while a program that is active at all still ticks many times a second
 * (docs/design.md has the cost). */
#define MAGAZINE_TICK_EVERY 8
static __thread unsigned tls_tick_skip __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_tick_ms __attribute__((tls_model("initial-exec")));

void magazine_tick(void)
{
    if (tls_tick_skip) {
        tls_tick_skip--;
        return;
    }
    tls_tick_skip = MAGAZINE_TICK_EVERY - 1;
    uint64_t now = buddy_now_ms();
    if (now == tls_tick_ms)
        return; /* the (coarse) clock has not moved since: nothing new can be due */
    tls_tick_ms = now;
    buddy_tick();
    void (*fn)(void) = __atomic_load_n(&reaper, __ATOMIC_ACQUIRE);
    if (!fn)
        return;
    uint64_t last = __atomic_load_n(&reap_last_ms, __ATOMIC_RELAXED);
    if (now >= last && now - last < SLAB_REAP_MS) /* a clock set back (tests): reap now */
        return;
    if (__atomic_compare_exchange_n(&reap_last_ms, &last, now, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        fn(); /* one thread per interval */
}

void magazine_set_thread_flush_hook(void (*fn)(void))
{
    __atomic_store_n(&thread_flush_hook, fn, __ATOMIC_RELEASE);
}

void kmem_cache_thread_flush(void)
{
    void (*hook)(void) = __atomic_load_n(&thread_flush_hook, __ATOMIC_ACQUIRE);
    if (hook)
        hook();
    struct magazine_table *tc = magazine_tls_table;
    if (tc == &magazine_table_empty)
        return;
    heap_mutex_lock(&magazine_tables_lock);
    for (size_t id = 0; id < SLAB_MAX_CACHES; id++)
        entry_retire_locked(&tc->ent[id], false);
    heap_mutex_unlock(&magazine_tables_lock);
}

void magazine_flush_self(struct kmem_cache *c)
{
    struct magazine_table *tc = magazine_tls_table;
    if (tc == &magazine_table_empty || c->id >= SLAB_MAX_CACHES ||
        TC_LOAD(tc->ent[c->id].cache) != c)
        return;
    /* A closed window: this thread is inside a slow path of c further up its stack (a
     * reclaim before ENOMEM runs from there), which owns the magazines until it reopens. */
    if (!TC_LOAD(tc->ent[c->id].lo))
        return;
    heap_mutex_lock(&magazine_tables_lock);
    entry_retire_locked(&tc->ent[c->id], true);
    heap_mutex_unlock(&magazine_tables_lock);
}

bool magazine_reap_self(struct kmem_cache *c)
{
    struct magazine_table *tc = magazine_tls_table;
    if (tc == &magazine_table_empty || c->id >= SLAB_MAX_CACHES)
        return false;
    struct magazine_entry *e = &tc->ent[c->id];
    if (TC_LOAD(e->cache) != c || !TC_LOAD(e->lo))
        return false; /* not this thread's, or a slow path of c further up the stack */
    /* Allocations plus frees: a flush moves objects out of the magazines without changing
     * either, so a flushed idle entry stays idle. */
    size_t ops = TC_LOAD(e->frees) + entry_allocs(e);
    if (ops != TC_LOAD(e->reap_ops)) {
        TC_STORE(e->reap_ops, ops);
        return false;
    }
    if (entry_cached(e))
        magazine_flush_self(c);
    return true;
}

void magazine_flush_all_threads(struct kmem_cache *c)
{
    heap_mutex_lock(&magazine_tables_lock);
    for (struct magazine_table *tc = table_list; tc; tc = tc->next) {
        struct magazine_entry *e = &tc->ent[c->id];
        if (TC_LOAD(e->cache) == c)
            entry_retire_locked(e, false);
    }
    heap_mutex_unlock(&magazine_tables_lock);
}

void magazine_counts(struct kmem_cache *c, size_t *allocs, size_t *frees, size_t *cached)
{
    size_t a = 0, f = 0, n = 0;
    heap_mutex_lock(&magazine_tables_lock);
    if (c->id < SLAB_MAX_CACHES) {
        for (struct magazine_table *tc = table_list; tc; tc = tc->next) {
            struct magazine_entry *e = &tc->ent[c->id];
            if (TC_LOAD(e->cache) != c)
                continue;
            a += entry_allocs(e);
            f += TC_LOAD(e->frees);
            n += entry_cached(e);
        }
    }
    /* Folded counts and the depot are read under the same lock, so an exiting thread's
     * objects are counted once: either in its table or in the depot. */
    a += __atomic_load_n(&c->allocs, __ATOMIC_RELAXED);
    f += __atomic_load_n(&c->frees, __ATOMIC_RELAXED);
    heap_mutex_lock(&c->depot_lock);
    for (struct magazine *m = c->depot_full; m; m = m->next)
        n += m->count;
    heap_mutex_unlock(&c->depot_lock);
    heap_mutex_unlock(&magazine_tables_lock);
    *allocs = a;
    *frees = f;
    *cached = n;
}

/* The calling thread's entry for c, set up with a loaded magazine (previous is no_magazine
 * until needed); NULL when c has no magazines or memory for one is short (the caller then
 * uses the slabs directly). */
static struct magazine_entry *entry_for(struct kmem_cache *c)
{
    if (!c->mag_size)
        return NULL;
    struct magazine_table *tc = magazine_tls_table;
    if (tc == &magazine_table_empty && !(tc = table_create()))
        return NULL;
    struct magazine_entry *e = &tc->ent[c->id];
    if (TC_LOAD(e->cache) == c)
        return e;
    struct magazine *l = depot_get_empty(c), *p = &no_magazine;
    if (!l)
        return NULL;
    heap_mutex_lock(&magazine_tables_lock); /* stats readers walk entries under it */
    TC_STORE(e->loaded, l);
    TC_STORE(e->previous, p);
    TC_STORE(e->net_in, 0);
    TC_STORE(e->frees, 0);
    TC_STORE(e->reap_ops, 0);
    TC_STORE(e->refill, 0);
    TC_STORE(e->cache, c);
    entry_window_open(c, e);
    heap_mutex_unlock(&magazine_tables_lock);
    return e;
}

/* ---------------------------------------------------------------- slow paths */

static void *alloc_failed(struct kmem_cache *c)
{
    __atomic_fetch_add(&c->alloc_failures, 1, __ATOMIC_RELAXED);
    errno = ENOMEM;
    return NULL;
}

/* Exchanges keep one invariant for fork (types.h): a magazine that holds objects is
 * always reachable from the entry or the depot.  A swap therefore stores the pointer to the
 * magazine with objects first, and depot exchanges update the entry under depot_lock (which
 * the fork prepare handler takes).  At worst a fork loses an *empty* magazine. */

/* Refill e->loaded: swap with previous, else a full magazine from the depot, else half a
 * magazine from the slabs.  Returns false when nothing could be had. */
static bool entry_refill(struct kmem_cache *c, struct magazine_entry *e)
{
    struct magazine *l = e->loaded, *p = e->previous;
    if (TC_LOAD(p->count)) {
        TC_STORE(e->loaded, p); /* p has the objects: store it first */
        TC_STORE(e->previous, l);
        return true;
    }
    heap_mutex_lock(&c->depot_lock);
    struct magazine *full = depot_pop_locked(c, &c->depot_full, &c->nr_depot_full);
    if (full) {
        if (p != &no_magazine)
            depot_push_locked(c, &c->depot_empty, &c->nr_depot_empty, p);
        TC_STORE(e->loaded, full);
        TC_STORE(e->previous, l);
        entry_add_in(e, TC_LOAD(full->count));
    }
    heap_mutex_unlock(&c->depot_lock);
    magazine_tick(); /* a depot exchange or a slab refill: a slow path, no lock held */
    if (full)
        return true;
    /* From the slabs: a few objects at first (one of page-sized slots), doubling per refill
     * up to a cap.  The cap is half a magazine while the thread has one (the other half
     * takes the frees that follow), a whole one once it has two: previous is empty here (a
     * full one would have been swapped in), so frees have a magazine of room, and a thread
     * allocating in bulk takes one cache->lock per magazine rather than two.  Up to the
     * first refill at the cap the refill is lean (slab_alloc_batch_with_count): it takes no
     * slot on a page the slab has not touched yet, but for its first one.  Objects in a
     * magazine are reserved for its thread, so a thread that uses a class lightly should not
     * push the class's other threads onto fresh pages, and a short-lived process (most of
     * those a shell script starts) should not fault in pages for objects it never asks for.
     * A lean refill may bring fewer objects: a few more refills, each a slow path. */
    uint32_t cap = p != &no_magazine ? l->size : (l->size / 2 ? l->size / 2 : 1);
    const uint32_t steady = e->refill & MAGAZINE_REFILL_STEADY, next = e->refill & ~steady;
    uint32_t want = next                                ? next
                    : c->slot_size >= BUDDY_PAGE_SIZE ? 1
                                                      : SLAB_FIRST_REFILL;
    if (want > cap)
        want = cap;
    const bool lean = !steady; /* up to the first refill at the cap */
    TC_STORE(e->refill, (want < cap ? want * 2 : cap) |
                            (steady || want == cap ? MAGAZINE_REFILL_STEADY : 0));
    size_t got = slab_alloc_batch_with_count(c, l->objs, want, &l->count, &e->net_in, lean);
    return got != 0;
}

/* Make room in e->loaded: swap with an empty previous, else trade the full previous for an
 * empty magazine from the depot (or a new one), else (depot at its bound) return previous's
 * objects to the slabs and swap. */
static void entry_make_room(struct kmem_cache *c, struct magazine_entry *e)
{
    struct magazine *l = e->loaded, *p = e->previous;
    if (p == &no_magazine) {
        /* The entry's second magazine, made now that the first is full. */
        struct magazine *m = depot_get_empty(c);
        if (m) {
            TC_STORE(e->previous, l); /* l is full: store it first */
            TC_STORE(e->loaded, m);
        } else {
            entry_magazine_to_slabs(c, e, l); /* out of memory: make room in l itself */
        }
        return;
    }
    if (TC_LOAD(p->count) == 0) {
        TC_STORE(e->previous, l); /* l is full: store it first */
        TC_STORE(e->loaded, p);
        return;
    }
    magazine_tick(); /* a depot exchange or a return to the slabs: no lock held */
    heap_mutex_lock(&c->depot_lock);
    bool room = c->nr_depot_full < c->depot_max_full;
    struct magazine *empty =
        room ? depot_pop_locked(c, &c->depot_empty, &c->nr_depot_empty) : NULL;
    heap_mutex_unlock(&c->depot_lock);
    if (!empty && room)
        empty = magazine_new(c->mag_size);
    if (empty) {
        heap_mutex_lock(&c->depot_lock);
        depot_push_locked(c, &c->depot_full, &c->nr_depot_full, p);
        TC_STORE(e->previous, l);
        TC_STORE(e->loaded, empty);
        entry_add_out(e, TC_LOAD(p->count));
        heap_mutex_unlock(&c->depot_lock);
        return;
    }
    entry_magazine_to_slabs(c, e, p);
    TC_STORE(e->previous, l);
    TC_STORE(e->loaded, p);
}

void *magazine_alloc_slow(struct kmem_cache *c, const void *caller)
{
    void *obj;
    struct magazine_entry *e = entry_for(c);
    if (e) {
        entry_window_close(e);
        struct magazine *m = e->loaded;
        if (!TC_LOAD(m->count) && !entry_refill(c, e)) {
            entry_window_open(c, e);
            return alloc_failed(c);
        }
        m = e->loaded;
        assert(TC_LOAD(m->count) > 0);
        uint32_t n = TC_LOAD(m->count) - 1;
        obj = m->objs[n];
        TC_STORE(m->count, n); /* no counter: allocs are derived (struct magazine_entry) */
        entry_window_open(c, e);
        m->objs[n] = obj; /* as if popped from the open window: the popped run is obj */
        m->objs[n + 1] = NULL; /* n < size: objs[size] is the spare word */
    } else {
        if (slab_alloc_batch(c, &obj, 1, caller) != 1)
            return alloc_failed(c);
        __atomic_fetch_add(&c->allocs, 1, __ATOMIC_RELAXED);
    }
    if (c->marks) /* handed out: no longer free */
        slab_mark_clear(c, obj);
    return obj;
}

/* The free of an object that passed the always-on check (its free mark included) when the
 * fast path could not push it: magazine full, no entry yet, or no magazines.  It is marked
 * free first (c->marks), wherever it goes.  caller: the return address in the program, for
 * debug caches (which have no magazines). */
/* Keeps errno (free must, POSIX 2024): the depot exchange, a new table or magazine, a slab
 * released to the buddy layer and the debug hooks can all make system calls. */
__attribute__((noinline)) void magazine_free_slow(struct kmem_cache *c, void *obj,
                                                  const void *caller)
{
    int saved = errno;
    if (c->marks)
        slab_mark_set(c, obj);
    struct magazine_entry *e = entry_for(c);
    if (e) {
        entry_window_close(e);
        struct magazine *m = e->loaded;
        uint32_t n = TC_LOAD(m->count);
        if (n == m->size)
            entry_make_room(c, e);
        m = e->loaded;
        m->objs[m->count] = obj;
        TC_STORE(m->count, m->count + 1);
        magazine_count_one(&e->frees);
        entry_window_open(c, e);
        errno = saved;
        return;
    }
    if (slab_free_one(c, obj, caller))
        __atomic_fetch_add(&c->frees, 1, __ATOMIC_RELAXED);
    errno = saved;
}

size_t magazine_alloc_bulk(struct kmem_cache *c, void **objs, size_t n)
{
    size_t got = 0;
    struct magazine_entry *e = entry_for(c);
    if (e) {
        entry_window_close(e);
        struct magazine *m = e->loaded;
        uint32_t cnt = TC_LOAD(m->count);
        while (got < n && cnt) {
            objs[got] = m->objs[--cnt];
            slab_mark_clear(c, objs[got++]); /* handed out: no longer free */
        }
        TC_STORE(m->count, cnt); /* allocs from the magazine are derived */
        entry_window_open(c, e);
    }
    return got;
}

size_t magazine_collect_cached(struct kmem_cache *c, void **out, size_t max)
{
    size_t n = 0;
    heap_mutex_lock(&magazine_tables_lock);
    heap_mutex_lock(&c->depot_lock);
    if (c->id < SLAB_MAX_CACHES) {
        for (struct magazine_table *tc = table_list; tc; tc = tc->next) {
            struct magazine_entry *e = &tc->ent[c->id];
            if (TC_LOAD(e->cache) != c)
                continue;
            struct magazine *mags[2] = {TC_LOAD(e->loaded), entry_previous(e)};
            for (int k = 0; k < 2; k++) {
                uint32_t cnt = k ? magazine_count(mags[k]) : entry_loaded_count(e, mags[k]);
                for (uint32_t i = 0; i < cnt; i++, n++)
                    if (n < max)
                        out[n] = mags[k]->objs[i];
            }
        }
    }
    for (struct magazine *m = c->depot_full; m; m = m->next)
        for (uint32_t i = 0; i < m->count; i++, n++)
            if (n < max)
                out[n] = m->objs[i];
    heap_mutex_unlock(&c->depot_lock);
    heap_mutex_unlock(&magazine_tables_lock);
    return n;
}

/* ---------------------------------------------------------------- validation */

/* The validator holds locks 3 to 5 (types.h). */
#define validator_assert_locked(c)                                                           \
    do {                                                                                    \
        tables_assert_locked();                                                             \
        depot_assert_locked(c);                                                             \
        heap_mutex_assert_held(&(c)->lock);                                                 \
    } while (0)

/* m holds n objects (its count, or the window's for a loaded magazine). */
static int validate_magazine_locked(struct kmem_cache *c, const struct magazine *m, uint32_t n)
{
    validator_assert_locked(c);
    if (n > m->size || m->size != c->mag_size) {
        heap_fmt_line("validate %s: magazine %p holds %u of %u (cache size %u)", c->name,
                      (const void *)m, n, m->size, c->mag_size);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        if (slab_validate_cached_obj_locked(c, m->objs[i], "magazine"))
            return -1;
    return 0;
}

static bool magazine_holds(const struct magazine *m, uint32_t n, const void *obj)
{
    for (uint32_t i = 0; i < n; i++)
        if (m->objs[i] == obj)
            return true;
    return false;
}

/* The calling thread's popped run on its loaded magazine l (fastpath.h), while trusted:
 * distinct in-use slots of c, none of them cached in the entry's own magazines.  Only the
 * owner's entry: another running thread writes its run without a lock. */
static int validate_popped_run_locked(struct kmem_cache *c, const struct magazine_entry *e,
                                      const struct magazine *l, const struct magazine *p)
{
    validator_assert_locked(c);
    if (TC_LOAD(e->returns_seen) != TC_LOAD(c->returns))
        return 0; /* a return to the slabs since the window opened: the run is not used */
    void **top = e->top, **hi = e->hi;
    uint32_t nl = (uint32_t)(top - e->lo);
    for (void **r = top; r < hi && *r; r++) {
        if (slab_validate_cached_obj_locked(c, *r, "popped run"))
            return -1;
        bool dup = false;
        for (void **q = top; q < r; q++)
            dup |= *q == *r;
        if (dup || magazine_holds(l, nl, *r) ||
            (p != &no_magazine && magazine_holds(p, TC_LOAD(p->count), *r))) {
            heap_fmt_line("validate %s: popped run holds %p, which is %s", c->name, *r,
                          dup ? "in the run twice" : "cached in the thread's magazines");
            return -1;
        }
    }
    return 0;
}

/* No object is cached twice among the depot's magazines and the calling thread's (the ones
 * that cannot move while the locks are held; other threads' windows move without them).  A
 * pointer held twice was freed twice while it sat below a magazine's top, where the free-time
 * check cannot see it.  max bounds the objects collected. */
static int validate_cached_once_locked(struct kmem_cache *c, size_t max)
{
    validator_assert_locked(c);
    void **buf = max > 1 ? heap_meta_alloc(max * sizeof(void *)) : NULL;
    if (!buf)
        return 0; /* nothing to compare, or no memory for the check: not an invariant broken */
    size_t n = 0;
    for (struct magazine *m = c->depot_full; m; m = m->next)
        for (uint32_t i = 0; i < m->count && n < max; i++)
            buf[n++] = m->objs[i];
    struct magazine_table *tc = magazine_tls_table;
    if (tc && c->id < SLAB_MAX_CACHES && TC_LOAD(tc->ent[c->id].cache) == c) {
        struct magazine_entry *e = &tc->ent[c->id];
        struct magazine *mags[2] = {TC_LOAD(e->loaded), entry_previous(e)};
        for (int k = 0; k < 2; k++) {
            uint32_t cnt = k ? magazine_count(mags[k]) : entry_loaded_count(e, mags[k]);
            for (uint32_t i = 0; i < cnt && n < max; i++)
                buf[n++] = mags[k]->objs[i];
        }
    }
    ptrset_sort(buf, n);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (buf[i] == buf[i - 1]) {
            heap_fmt_line("validate %s: %p is cached twice (it was freed twice: a double free)",
                          c->name, buf[i]);
            rc = -1;
        }
    heap_meta_free(buf, max * sizeof(void *));
    return rc;
}

int magazine_validate(struct kmem_cache *c)
{
    int rc = 0;
    size_t cached = 0;
    heap_mutex_lock(&magazine_tables_lock);
    heap_mutex_lock(&c->depot_lock);
    heap_mutex_lock(&c->lock);
    rc = slab_validate_locked(c);
    size_t nf = 0, ne = 0;
    for (struct magazine *m = c->depot_full; m && !rc; m = m->next, nf++) {
        rc = validate_magazine_locked(c, m, m->count);
        cached += m->count;
    }
    for (struct magazine *m = c->depot_empty; m && !rc; m = m->next, ne++)
        if (m->count) {
            heap_fmt_line("validate %s: magazine on the empty list holds objects", c->name);
            rc = -1;
        }
    if (!rc && (nf != c->nr_depot_full || ne != c->nr_depot_empty)) {
        heap_fmt_line("validate %s: depot lists hold %zu/%zu magazines, counts say %zu/%zu",
                      c->name, nf, ne, c->nr_depot_full, c->nr_depot_empty);
        rc = -1;
    }
    if (c->id < SLAB_MAX_CACHES) {
        for (struct magazine_table *tc = table_list; tc && !rc; tc = tc->next) {
            struct magazine_entry *e = &tc->ent[c->id];
            if (TC_LOAD(e->cache) != c)
                continue;
            struct magazine *l = TC_LOAD(e->loaded), *p = TC_LOAD(e->previous);
            if (!l || !p || l == p) {
                heap_fmt_line("validate %s: thread entry with bad magazines", c->name);
                rc = -1;
                break;
            }
            if (l == &no_magazine || (p == &no_magazine && TC_LOAD(p->count) != 0)) {
                heap_fmt_line("validate %s: thread entry with the placeholder magazine misused",
                              c->name);
                rc = -1;
                break;
            }
            void **lo = TC_LOAD(e->lo), **top = TC_LOAD(e->top), **hi = TC_LOAD(e->hi);
            if (lo ? (lo != l->objs || hi != l->objs + l->size || top < lo || top > hi)
                   : (top || hi)) {
                heap_fmt_line("validate %s: thread entry window [%p, %p, %p) does not match "
                              "its loaded magazine %p",
                              c->name, (void *)lo, (void *)top, (void *)hi, (void *)l);
                rc = -1;
                break;
            }
            uint32_t nl = entry_loaded_count(e, l);
            rc = validate_magazine_locked(c, l, nl);
            if (!rc && p != &no_magazine)
                rc = validate_magazine_locked(c, p, TC_LOAD(p->count));
            if (!rc && tc == magazine_tls_table && lo)
                rc = validate_popped_run_locked(c, e, l, p);
            cached += nl + TC_LOAD(p->count);
        }
    }
    if (!rc && cached > c->inuse_total) {
        heap_fmt_line("validate %s: %zu objects cached but only %zu slots in use", c->name,
                      cached, c->inuse_total);
        rc = -1;
    }
    if (!rc)
        rc = validate_cached_once_locked(c, cached);
    heap_mutex_unlock(&c->lock);
    heap_mutex_unlock(&c->depot_lock);
    heap_mutex_unlock(&magazine_tables_lock);
    return rc;
}

/* ---------------------------------------------------------------- fork child */

void magazine_fork_child(void)
{
    /* Only the forking thread exists now: retire every other thread's table. */
    struct magazine_table *self = magazine_tls_table; /* the empty table is never listed */
    for (;;) {
        heap_mutex_lock(&magazine_tables_lock);
        struct magazine_table *tc = table_list;
        while (tc && tc == self)
            tc = tc->next;
        heap_mutex_unlock(&magazine_tables_lock);
        if (!tc)
            break;
        table_retire(tc);
    }
}

struct magazine_table **magazine_table_list_address(void)
{
    return &table_list;
}
