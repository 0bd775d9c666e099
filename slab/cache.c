/* SPDX-License-Identifier: MIT */
/* slab/cache.c - the life of a kmem_cache and its front door.
 *
 * Everything a caller of slab.h does to a cache starts here and calls down, never back up:
 * create (the geometry from slab.c, the magazine size from magazine.c, a magazine-table id),
 * destroy, shrink, size and name; kmem_cache_validate and slabcache_validate; the process's
 * init and fork handlers; and the public allocation entry points, whose fast paths are the
 * inline magazine pop and push of fastpath.h:
 *
 *   kmem_cache_alloc   pop from the calling thread's loaded magazine; else
 *                      cache_alloc_slow (live-cache check) -> magazine_alloc_slow (magazine.c)
 *   kmem_cache_free    the popped run (the object this thread popped last: valid without a
 *                      check); else the always-on check (slab_check_free_fast) and the push;
 *                      else magazine_free_slow; a pointer the check refuses goes to
 *                      slab_check_free_slow, which reports it
 *   bulk               the thread's magazine first, then slab_alloc_batch
 *
 * The list of caches (cache_list, under cache_list_lock) is what stats.c, leak.c and
 * heapmap.c walk.  Magazine-table ids: a cache with magazines owns entry `id` of every
 * thread's table; ids below SLAB_FIXED_IDS are given only on request (the kmalloc classes),
 * the others in order.
 *
 * fork(): the library's handlers (heap/mutex.c) take every lock in the order of types.h, each
 * layer's as one registered entry: this file registers the cache locks (2 to 5), the page
 * layers' (6, 7) and debug.c's options lock; leak.c its own.  The parent releases them; the
 * child releases them and retires the thread tables of the threads it does not have
 * (magazine_fork_child).  A single-threaded process takes none (heap/mutex.h says why).
 */
#include "slab/slab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buddy/buddy.h"
#include "heap/fmt.h"
#include "slab/debug.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_ASAN_BUILD 1
#else
#define CACHE_ASAN_BUILD 0
#endif
#define CACHE_REPORT_LEAK_ADDRS 8
/* The depot keeps about this many bytes of objects in full magazines (and at least
 * CACHE_DEPOT_MIN_FULL magazines); past that, a free returns a magazine to the slabs. */
#define CACHE_DEPOT_BYTES ((size_t)1 << 20)
#define CACHE_DEPOT_MIN_FULL 8

struct heap_mutex cache_list_lock = HEAP_MUTEX_INITIALIZER;
struct kmem_cache *cache_list;

#define cache_list_assert_locked() heap_mutex_assert_held(&cache_list_lock)

static int init_state; /* 0 none, 1 running, 2 done (atomic) */

static inline bool is_pow2(size_t x)
{
    return x && !(x & (x - 1));
}

static inline size_t align_up(size_t x, size_t a)
{
    return (x + a - 1) & ~(a - 1);
}

static inline bool cache_is_live(const struct kmem_cache *c)
{
    return c && __atomic_load_n(&c->magic, __ATOMIC_RELAXED) == KMEM_CACHE_MAGIC;
}

/* ---------------------------------------------------------------- init and fork */

/* Locks 2 to 5 of types.h: the cache list, the thread tables, every cache's depot and slab
 * lock. */
static void fork_lock_caches(void)
{
    heap_mutex_lock(&cache_list_lock);
    heap_mutex_lock(&magazine_tables_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache) {
        heap_mutex_lock(&c->depot_lock);
        heap_mutex_lock(&c->lock);
    }
}

static void fork_unlock_caches(void)
{
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache) {
        heap_mutex_unlock(&c->lock);
        heap_mutex_unlock(&c->depot_lock);
    }
    heap_mutex_unlock(&magazine_tables_lock);
    heap_mutex_unlock(&cache_list_lock);
}

static const struct heap_fork_entry fork_caches = {
    .rank = SLAB_FORK_RANK_CACHES,
    .lock = fork_lock_caches,
    .unlock = fork_unlock_caches,
    .child = magazine_fork_child, /* the tables of threads the child does not have */
};

/* Locks 6 and 7: the buddy lock, the heap's and the metadata's. */
static const struct heap_fork_entry fork_pages = {
    .rank = SLAB_FORK_RANK_PAGES,
    .lock = buddy_lock_all,
    .unlock = buddy_unlock_all,
    .child = NULL,
};

static size_t cache_reclaim(size_t want);
static void cache_reap_depots(void);

void cache_init_once(void)
{
    if (SLAB_LIKELY(__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2))
        return;
    int expected = 0;
    if (__atomic_compare_exchange_n(&init_state, &expected, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        slab_keys_init(); /* before the first slab: canaries and free marks use them */
        magazine_init();
        buddy_set_reclaim(cache_reclaim); /* before ENOMEM, the buddy layer asks us first */
        magazine_set_reaper(cache_reap_depots);
        heap_fork_register(&fork_caches);
        heap_fork_register(&fork_pages);
        debug_fork_register();
        /* pthread_atfork may allocate: a re-entrant allocation sees init_state == 1 and goes
         * on without waiting (everything it needs is statically initialised). */
        heap_fork_install();
        __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
    }
}

/* ---------------------------------------------------------------- magazine-table ids */

/* Ids of live caches with magazines (cache_list_lock). */
static uint64_t cache_id_used[SLAB_MAX_CACHES / 64];
_Static_assert(SLAB_FIXED_IDS % 64 == 0 && SLAB_FIXED_IDS < SLAB_MAX_CACHES,
               "fixed ids are whole words of cache_id_used, below the general ones");

/* `want` (a fixed id) if it is free, else the first free general id; SLAB_NO_ID if none. */
static uint32_t cache_id_alloc_locked(uint32_t want)
{
    cache_list_assert_locked();
    if (want != SLAB_NO_ID) {
        if (want >= SLAB_FIXED_IDS || (cache_id_used[want / 64] >> (want % 64)) & 1)
            return SLAB_NO_ID;
        cache_id_used[want / 64] |= (uint64_t)1 << (want % 64);
        return want;
    }
    for (uint32_t w = SLAB_FIXED_IDS / 64; w < SLAB_MAX_CACHES / 64; w++) {
        if (~cache_id_used[w]) {
            unsigned b = (unsigned)__builtin_ctzll(~cache_id_used[w]);
            cache_id_used[w] |= (uint64_t)1 << b;
            return w * 64 + b;
        }
    }
    return SLAB_NO_ID;
}

static void cache_id_free_locked(uint32_t id)
{
    cache_list_assert_locked();
    if (id != SLAB_NO_ID)
        cache_id_used[id / 64] &= ~((uint64_t)1 << (id % 64));
}

/* The live cache holding magazine table id `id`, or NULL. */
static struct kmem_cache *cache_with_id_locked(uint32_t id)
{
    cache_list_assert_locked();
    if (id == SLAB_NO_ID)
        return NULL;
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache)
        if (c->id == id && c->mag_size)
            return c;
    return NULL;
}

/* ---------------------------------------------------------------- create */

static struct kmem_cache *create_fail(const char *name, unsigned int flags, int err)
{
    if (flags & SLAB_PANIC) {
        heap_fmt_line("kmem_cache_create(%s) failed (errno %d) and SLAB_PANIC is set", name,
                      err);
        abort();
    }
    errno = err;
    return NULL;
}

/* A name that /proc/slabinfo can show as one column: not empty, and no blank or control
 * byte (SLUB's names never have one; a space would shift every column after the name, and
 * tools read slabinfo by splitting on blanks).  Refused rather than escaped, so the name a
 * program gave is the name every report and table shows. */
static bool cache_name_ok(const char *name)
{
    if (!name || !*name)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* Or'ed into cache_create's extra_bitmaps: cache_create_with_bitmaps_small. */
#define CACHE_SMALL_SLABS (1u << 16)

static struct kmem_cache *cache_create(const char *name, size_t size,
                                       const struct kmem_cache_args *args, unsigned int flags,
                                       void (*ctor_simple)(void *), uint32_t want_id,
                                       unsigned extra_bitmaps)
{
    const bool small_slabs = (extra_bitmaps & CACHE_SMALL_SLABS) != 0;
    extra_bitmaps &= ~CACHE_SMALL_SLABS;
    static const struct kmem_cache_args no_args;
    if (!args)
        args = &no_args;
    size_t align = args->align ? args->align : SLAB_DEFAULT_ALIGN;
    if (!cache_name_ok(name) || size == 0 || size > KMEM_CACHE_MAX_SIZE || !is_pow2(align) ||
        align > BUDDY_PAGE_SIZE || (flags & ~SLAB_KNOWN_FLAGS) ||
        args->magazine_size > KMEM_CACHE_MAX_MAGAZINE_SIZE ||
        extra_bitmaps > SLAB_MAX_EXTRA_BITMAPS)
        return create_fail(name ? name : "(null)", flags, EINVAL);
    if (align < SLAB_DEFAULT_ALIGN)
        align = SLAB_DEFAULT_ALIGN;
    if ((flags & SLAB_HWCACHE_ALIGN) && align < SLAB_CACHELINE)
        align = SLAB_CACHELINE;

    cache_init_once();
    struct kmem_cache *c = heap_meta_alloc(sizeof *c);
    if (!c)
        return create_fail(name, flags, ENOMEM);
    size_t nlen = strnlen(name, KMEM_CACHE_NAME_MAX - 1);
    memcpy(c->name, name, nlen);
    c->name[nlen] = '\0';
    c->object_size = (uint32_t)size;
    c->align = (uint32_t)align;
    c->slot_size = (uint32_t)align_up(size, align);
    c->flags = flags;
    /* may grow slot_size; fixed ids are the kmalloc classes */
    debug_setup_cache(c, flags, args->ctor || ctor_simple, want_id != SLAB_NO_ID);
    c->ctor = args->ctor;
    c->dtor = args->dtor;
    c->ctor_arg = args->arg;
    c->ctor_simple = ctor_simple;
    c->max_objects = args->max_objects;
    c->max_empty = args->max_empty_slabs ? args->max_empty_slabs : SLAB_DEFAULT_MAX_EMPTY;
    c->small_slabs = small_slabs;
    c->extra_bitmaps = extra_bitmaps;
    /* Exact live caps and SLAB_NO_MAGAZINE bypass the magazines. */
    bool magazines = !(flags & (SLAB_NO_MAGAZINE | SLAB_CONSISTENCY_CHECKS)) && !c->max_objects &&
                     !c->debug;
    /* The free mark (fastpath.h) of a cache with magazines: the object's first word, or, for a
     * constructor's objects, which stay constructed while free, a word of its own after the
     * object (the slot grows by up to 8 bytes). */
    c->mark_off = 0;
    if (magazines && (args->ctor || ctor_simple)) {
        c->mark_off = (uint32_t)align_up(size, sizeof(uint64_t));
        c->slot_size = (uint32_t)align_up(c->mark_off + sizeof(uint64_t), align);
    }
    if (want_id != SLAB_NO_ID && c->mark_off != 0) { /* magazine_pop_fixed assumes offset 0 */
        heap_meta_free(c, sizeof *c);
        return create_fail(name, flags, EINVAL);
    }
    if (slab_compute_geometry(c) != 0) {
        heap_meta_free(c, sizeof *c);
        return create_fail(name, flags, EINVAL);
    }
    c->mag_size = magazines ? (args->magazine_size ? args->magazine_size
                                                   : magazine_default_size(c->slot_size))
                            : 0;
    c->depot_max_full = CACHE_DEPOT_MIN_FULL +
                        CACHE_DEPOT_BYTES / ((size_t)c->slot_size * (c->mag_size + 1));
    heap_mutex_init(&c->lock);
    heap_mutex_init(&c->depot_lock);
    c->id = SLAB_NO_ID;

    heap_mutex_lock(&cache_list_lock);
    if (c->mag_size && (c->id = cache_id_alloc_locked(want_id)) == SLAB_NO_ID) {
        struct kmem_cache *owner = cache_with_id_locked(want_id);
        if (owner) { /* another thread made this fixed-id cache first: that one it is */
            heap_mutex_unlock(&cache_list_lock);
            heap_mutex_destroy(&c->lock);
            heap_mutex_destroy(&c->depot_lock);
            heap_meta_free(c, sizeof *c); /* magazines on: no debug state was set up */
            return owner;
        }
        c->mag_size = 0; /* out of ids: no magazines */
    }
    c->marks = c->mag_size != 0;
    c->tc_off = (uint32_t)(offsetof(struct magazine_table, ent) +
                           (c->mag_size ? c->id : SLAB_MAX_CACHES) *
                               sizeof(struct magazine_entry));
    if (!c->mag_size && CACHE_ASAN_BUILD)
        c->debug |= SLAB_DBG_ASAN; /* every op reaches the slabs: poison free slots */
    c->next_cache = cache_list;
    c->prev_cache = NULL;
    if (cache_list)
        cache_list->prev_cache = c;
    cache_list = c;
    __atomic_store_n(&c->magic, KMEM_CACHE_MAGIC, __ATOMIC_RELEASE);
    heap_mutex_unlock(&cache_list_lock);
    return c;
}

struct kmem_cache *kmem_cache_create_args(const char *name, size_t size,
                                          const struct kmem_cache_args *args, unsigned int flags)
{
    return cache_create(name, size, args, flags, NULL, SLAB_NO_ID, 0);
}

struct kmem_cache *cache_create_fixed_id(const char *name, size_t size,
                                         const struct kmem_cache_args *args,
                                         unsigned int flags, uint32_t id)
{
    return cache_create(name, size, args, flags, NULL, id, 0);
}

struct kmem_cache *cache_create_with_bitmaps(const char *name, size_t size,
                                             const struct kmem_cache_args *args,
                                             unsigned int flags, unsigned extra)
{
    return cache_create(name, size, args, flags, NULL, SLAB_NO_ID, extra);
}

struct kmem_cache *cache_create_with_bitmaps_small(const char *name, size_t size,
                                                   const struct kmem_cache_args *args,
                                                   unsigned int flags, unsigned extra)
{
    return cache_create(name, size, args, flags, NULL, SLAB_NO_ID,
                        extra > SLAB_MAX_EXTRA_BITMAPS ? extra : extra | CACHE_SMALL_SLABS);
}

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
                                     unsigned int flags, void (*ctor)(void *obj))
{
    struct kmem_cache_args args = {0};
    args.align = align;
    return cache_create(name, size, &args, flags, ctor, SLAB_NO_ID, 0);
}

/* ---------------------------------------------------------------- destroy, shrink, queries */

/* Destroy: objects cached in any thread's magazines and in the depot go back to their
 * slabs first, so whatever is still in use is held by a caller: those are reported (count and
 * first addresses), then every slab is released anyway (MemServer/MDX pool semantics).
 * Destructors run for the free slots only: a live object is not in its constructed state. */
void kmem_cache_destroy(struct kmem_cache *c)
{
    if (!c)
        return;
    if (!cache_is_live(c)) {
        heap_fmt_line("kmem_cache_destroy: %p is not a live cache (destroyed twice?)", (void *)c);
        report_misuse();
        return;
    }
    heap_mutex_lock(&cache_list_lock);
    if (c->prev_cache)
        c->prev_cache->next_cache = c->next_cache;
    else
        cache_list = c->next_cache;
    if (c->next_cache)
        c->next_cache->prev_cache = c->prev_cache;
    __atomic_store_n(&c->magic, 0, __ATOMIC_RELEASE);
    heap_mutex_unlock(&cache_list_lock);

    if (c->mag_size) {
        magazine_flush_all_threads(c);
        magazine_depot_drain(c);
    }

    void *addrs[CACHE_REPORT_LEAK_ADDRS];
    size_t live, shown;
    struct slab *chain = slab_detach_all(c, addrs, CACHE_REPORT_LEAK_ADDRS, &live, &shown);
    if (live) {
        char list[CACHE_REPORT_LEAK_ADDRS * 20 + 8];
        size_t pos = 0;
        for (size_t i = 0; i < shown; i++)
            pos += heap_fmt(list + pos, sizeof list - pos, " %p", addrs[i]);
        heap_fmt_line("kmem_cache_destroy(%s): %zu objects still in use (first:%s%s); releasing "
                      "them with the cache",
                      c->name, live, list, live > shown ? " ..." : "");
    }
    slab_destroy_chain(c, chain);

    heap_mutex_lock(&cache_list_lock);
    cache_id_free_locked(c->id);
    heap_mutex_unlock(&cache_list_lock);
    heap_mutex_destroy(&c->lock);
    heap_mutex_destroy(&c->depot_lock);
    heap_meta_free(c, sizeof *c);
}

/* ---------------------------------------------------------------- giving memory back
 *
 * One shrink serves kmem_cache_shrink (one cache), slabcache_reap and malloc_trim (every
 * cache), and the reclaim before ENOMEM (every cache, from inside an allocation):
 * cache_shrink_one.  What it takes is only what the allocator holds: the calling thread's
 * magazines (other threads' are theirs alone: reaching into them would cost a lock on every
 * fast path), the depot, the empty slabs; nothing a caller holds.  Then the buddy layer
 * gives free pages and whole free extents back (buddy_trim), or, for the reclaim, the buddy
 * layer does that itself before it retries.
 *
 * Without being asked, magazine.c's tick (from its slow paths) runs the buddy layer's decay
 * and, once per SLAB_REAP_MS, cache_reap_depots, the depot working-set reap of every cache:
 * magazines that stayed in a depot for a whole interval go back to their slabs, the empty
 * slabs beyond a cache's max_empty to the buddy layer, where the decay purges them.  The
 * reaping thread's own magazines of the caches it left idle go back too, and a cache idle
 * there and in its depot gives back its reserve of empty slabs. */

/* Set while this thread walks the caches (a shrink, the reclaim or the reap): a destructor
 * or a nested allocation that would start another walk finds it and does nothing. */
static __thread bool tls_reaping __attribute__((tls_model("initial-exec")));

/* The shrink of one live cache; inside_alloc: called from inside an allocation (the reclaim),
 * where a destructor must not run (caches with one are left alone).  Returns the bytes of
 * the slabs it gave to the buddy layer. */
static size_t cache_shrink_one(struct kmem_cache *c, bool inside_alloc)
{
    if (inside_alloc && c->dtor)
        return 0;
    size_t before = __atomic_load_n(&c->slabs_freed, __ATOMIC_RELAXED);
    if (c->mag_size) {
        magazine_flush_self(c);
        magazine_depot_drain(c);
    }
    slab_release_empty(c, 0);
    size_t after = __atomic_load_n(&c->slabs_freed, __ATOMIC_RELAXED);
    return (after - before) * c->slab_bytes;
}

/* cache_shrink_one of every cache, with cache_list_lock held so none is destroyed under the
 * walk.  Returns the bytes of slabs given to the buddy layer. */
static size_t caches_shrink_all(bool inside_alloc)
{
    if (tls_reaping)
        return 0;
    tls_reaping = true;
    size_t bytes = 0;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache)
        bytes += cache_shrink_one(c, inside_alloc);
    heap_mutex_unlock(&cache_list_lock);
    tls_reaping = false;
    return bytes;
}

/* buddy_set_reclaim's callback: the heap cannot grow.  The buddy layer calls it with none of
 * its locks held (from a slab being made outside cache->lock, or a large block), then gives
 * every whole free extent back to the heap and retries once. */
static size_t cache_reclaim(size_t want)
{
    (void)want; /* everything the allocator holds goes: a partial shrink would fragment */
    return caches_shrink_all(true);
}

size_t cache_reap_all(size_t keep_extents)
{
    caches_shrink_all(false);
    return buddy_trim(keep_extents);
}

size_t slabcache_reap(void)
{
    return cache_reap_all(0);
}

/* magazine.c's reaper, once per SLAB_REAP_MS from a slow path with no lock held: the depot
 * working-set reap of every cache. */
static void cache_reap_depots(void)
{
    if (tls_reaping)
        return; /* this thread is walking the caches already */
    tls_reaping = true;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache) {
        if (!c->mag_size || c->dtor) /* a destructor may not run inside an allocation */
            continue;
        /* This thread's own magazines of a cache it left idle for an interval, then the
         * depot's working set; a cache idle here and with nothing taken from its depot gives
         * its reserve of empty slabs back as well. */
        bool idle = magazine_reap_self(c), depot_idle;
        magazine_depot_reap(c, &depot_idle);
        if (idle && depot_idle)
            slab_release_empty(c, 0);
    }
    heap_mutex_unlock(&cache_list_lock);
    tls_reaping = false;
}

int kmem_cache_shrink(struct kmem_cache *c)
{
    if (!cache_is_live(c)) {
        errno = EINVAL;
        return -1;
    }
    cache_shrink_one(c, false);
    /* The slabs went to the buddy layer; whole free extents go on to the heap (which trims or
     * purges them), so a shrink after freeing everything gives the memory back to the OS. */
    buddy_trim(0);
    return 0;
}

unsigned int kmem_cache_size(struct kmem_cache *c)
{
    if (!cache_is_live(c)) {
        errno = EINVAL;
        return 0;
    }
    return c->object_size;
}

const char *kmem_cache_name(struct kmem_cache *c)
{
    if (!cache_is_live(c)) {
        errno = EINVAL;
        return NULL;
    }
    return c->name;
}

struct kmem_cache *cache_of_block(const void *head)
{
    struct kmem_cache *c = slab_owner(head);
    return cache_is_live(c) ? c : NULL;
}

/* ---------------------------------------------------------------- validation */

int kmem_cache_validate(struct kmem_cache *c)
{
    if (!c || c->magic != KMEM_CACHE_MAGIC) {
        heap_fmt_line("validate: %p is not a live cache", (void *)c);
        return -1;
    }
    return magazine_validate(c);
}

int slabcache_validate(void)
{
    int rc = 0;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c && rc == 0; c = c->next_cache)
        rc = kmem_cache_validate(c);
    heap_mutex_unlock(&cache_list_lock);
    if (rc == 0)
        rc = buddy_validate();
    if (rc == 0)
        rc = heap_validate();
    return rc;
}

/* ---------------------------------------------------------------- allocation */

/* KM_ZERO out of line, so the fast path needs no stack frame. */
__attribute__((noinline)) static void *zero_object(struct kmem_cache *c, void *obj)
{
    return memset(obj, 0, c->object_size);
}

__attribute__((noinline)) static void *cache_alloc_slow(struct kmem_cache *c, unsigned int flags,
                                                        const void *caller)
{
    if (!c || c->magic != KMEM_CACHE_MAGIC) {
        if (c) {
            heap_fmt_line("kmem_cache_alloc: %p is not a live cache", (void *)c);
            report_misuse();
        }
        errno = EINVAL;
        return NULL;
    }
    void *obj = magazine_alloc_slow(c, caller);
    if (obj && (flags & KM_ZERO))
        memset(obj, 0, c->object_size);
    return obj;
}

static inline __attribute__((always_inline)) void *
cache_alloc(struct kmem_cache *c, unsigned int flags, const void *caller)
{
    void *obj;
    if (SLAB_LIKELY(c != NULL) && SLAB_LIKELY(magazine_pop(c, &obj))) {
        if (SLAB_UNLIKELY(flags & KM_ZERO))
            return zero_object(c, obj);
        return obj;
    }
    return cache_alloc_slow(c, flags, caller);
}

void *kmem_cache_alloc(struct kmem_cache *c, unsigned int flags)
{
    return cache_alloc(c, flags, __builtin_return_address(0));
}

void *cache_alloc_with_caller(struct kmem_cache *c, unsigned int flags, const void *caller)
{
    return cache_alloc(c, flags, caller);
}

void *kmem_cache_zalloc(struct kmem_cache *c, unsigned int flags)
{
    return kmem_cache_alloc(c, flags | KM_ZERO);
}

/* ---------------------------------------------------------------- free */

/* kmem_cache_free when the inline check failed: report, or free if the pointer is valid
 * after all (the fast check only decides the common case).  op: the entry point the caller
 * used, named in the report. */
__attribute__((noinline, cold)) static void cache_free_checked(struct kmem_cache *c, void *obj,
                                                               const void *caller,
                                                               const char *op)
{
    if (!c) {
        int saved = errno; /* free keeps errno (the report's write may set it) */
        heap_fmt_line("%s: invalid free of %p to a NULL cache", op, obj);
        report_misuse();
        errno = saved;
        return;
    }
    if (slab_check_free_slow(c, obj, op))
        magazine_free_slow(c, obj, caller);
}

/* The free of anything but the popped run's first object: the always-on check, then the
 * push onto e (c's entry, already found).  Out of line, so the LIFO free needs no stack frame
 * (the check's registers made the compiler save one on entry to kmem_cache_free). */
__attribute__((noinline)) static void cache_free_check(struct kmem_cache *c, void *obj,
                                                       const void *caller,
                                                       struct magazine_entry *e,
                                                       const char *op)
{
    if (SLAB_UNLIKELY(!slab_check_free_fast(c, obj))) {
        cache_free_checked(c, obj, caller, op);
        return;
    }
    if (SLAB_UNLIKELY(!magazine_entry_push(c, e, obj)))
        magazine_free_slow(c, obj, caller);
}

static inline __attribute__((always_inline)) void cache_free(struct kmem_cache *c, void *obj,
                                                             const void *caller,
                                                             const char *op)
{
    if (SLAB_UNLIKELY(!obj))
        return;
    if (SLAB_UNLIKELY(!c)) {
        cache_free_checked(c, obj, caller, op);
        return;
    }
    /* The object this thread popped last (a LIFO free): valid without the check. */
    struct magazine_entry *e = magazine_entry_of(c);
    if (SLAB_LIKELY(magazine_entry_push_popped(c, e, obj)))
        return;
    cache_free_check(c, obj, caller, e, op);
}

void kmem_cache_free(struct kmem_cache *c, void *obj)
{
    cache_free(c, obj, __builtin_return_address(0), "kmem_cache_free");
}

void cache_free_with_caller(struct kmem_cache *c, void *obj, const void *caller)
{
    cache_free(c, obj, caller, "kmem_cache_free");
}

void cache_free_op(struct kmem_cache *c, void *obj, const char *op, const void *caller)
{
    cache_free(c, obj, caller, op);
}

/* ---------------------------------------------------------------- bulk */

size_t kmem_cache_alloc_bulk(struct kmem_cache *c, unsigned int flags, size_t nr, void **objs)
{
    if (!c || !objs || c->magic != KMEM_CACHE_MAGIC) {
        errno = EINVAL;
        return 0;
    }
    size_t got = magazine_alloc_bulk(c, objs, nr);
    if (got < nr) {
        size_t more = slab_alloc_batch(c, objs + got, nr - got, __builtin_return_address(0));
        if (c->marks) /* handed out: no longer free */
            for (size_t i = got; i < got + more; i++)
                slab_mark_clear(c, objs[i]);
        __atomic_fetch_add(&c->allocs, more, __ATOMIC_RELAXED);
        got += more;
        if (got < nr) { /* all or nothing */
            kmem_cache_free_bulk(c, got, objs);
            __atomic_fetch_add(&c->alloc_failures, 1, __ATOMIC_RELAXED);
            errno = ENOMEM;
            return 0;
        }
    }
    if (flags & KM_ZERO)
        for (size_t i = 0; i < nr; i++)
            memset(objs[i], 0, c->object_size);
    return nr;
}

void kmem_cache_free_bulk(struct kmem_cache *c, size_t nr, void **objs)
{
    if (!objs)
        return;
    if (c && c->magic == KMEM_CACHE_MAGIC && !c->mag_size) {
        /* Magazine-less (debug) caches: keep the program's call site for the reports. */
        const void *caller = __builtin_return_address(0);
        for (size_t i = 0; i < nr; i++) {
            if (!objs[i])
                continue;
            if (slab_check_free_fast(c, objs[i]))
                magazine_free_slow(c, objs[i], caller);
            else
                cache_free_checked(c, objs[i], caller, "kmem_cache_free_bulk");
        }
        return;
    }
    const void *caller = __builtin_return_address(0);
    for (size_t i = 0; i < nr; i++)
        cache_free(c, objs[i], caller, "kmem_cache_free_bulk");
}
