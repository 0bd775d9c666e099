/* SPDX-License-Identifier: MIT */
/* slab/slab_internal.h - the structures of the slab layer and how they relate.
 *
 *   struct kmem_cache ──lists──> struct slab (a buddy block: header + bitmap, then slots)
 *         │  └─depot──> struct magazine (full / empty lists, behind depot_lock)
 *         └─id──> slot `id` of every thread's struct slab_tcache (loaded + previous magazine)
 *
 * A slab is a naturally aligned buddy block of 2^slab_order pages (tag BUDDY_TAG_SLAB), so
 * the slab of an object is `obj & ~(slab_bytes - 1)`.  Layout of a slab:
 *
 *   +--------------------+-----------+--------+--------+-----+--------+-----------+
 *   | struct slab header | bitmap[]  | colour | slot 0 | ... | slot n-1 | leftover |
 *   +--------------------+-----------+--------+--------+-----+--------+-----------+
 *   ^ block head                      ^ objs (aligned to cache->align)
 *
 * Counting invariants (checked by kmem_cache_validate):
 *   slab->inuse        = number of set bits in slab->bitmap (slots held by callers or cached)
 *   slab on full list    <=> inuse == objs_per_slab
 *   slab on partial list <=> 0 < inuse < objs_per_slab
 *   slab on empty list   <=> inuse == 0
 *   cache->nr_slabs    = nr_full + nr_partial + nr_empty
 *   sum(slab->inuse)   = active objects (callers) + cached objects (magazines and depot)
 *   every pointer in a magazine is an in-use slot of that magazine's cache
 *
 * Lock order (outermost first; a function named *_locked says which it needs):
 *   1. slab_caches_lock   - the list of caches and the cache id map
 *   2. slab_tcache_lock   - the registry of per-thread caches
 *   3. cache->depot_lock  - the cache's depot of magazines
 *   4. cache->lock        - the cache's slab lists, slab headers and bitmaps, slow counters
 *   5. buddy lock (buddy/), then the heap locks (heap/)
 * Per-thread magazines take no lock: only their thread touches them, except under
 * slab_tcache_lock at cache destroy, thread exit and in a fork child (documented there).
 */
#ifndef SLABCACHE_SLAB_SLAB_INTERNAL_H
#define SLABCACHE_SLAB_SLAB_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buddy/buddy.h"
#include "slab/debug_internal.h"
#include "slab/slab.h"

#if defined(__GNUC__)
#define SLAB_LIKELY(x) __builtin_expect(!!(x), 1)
#define SLAB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SLAB_LIKELY(x) (x)
#define SLAB_UNLIKELY(x) (x)
#endif

/* ---------------------------------------------------------------- constants */
#define SLAB_MAGIC 0x534c4142u          /* "SLAB" in a live slab header */
#define KMEM_CACHE_MAGIC 0x4b4d4341u    /* "KMCA" in a live cache */
#define SLAB_DEFAULT_ALIGN 8
#define SLAB_CACHELINE 64
#define SLAB_MAX_CACHES 1024            /* caches with magazines (ids); more work without */
/* Ids [0, SLAB_FIXED_IDS) are given only to caches that ask for one
 * (slab_cache_create_fixed_id): the kmalloc classes take id = class index, so malloc's fast
 * path finds its magazine entry from the class index alone, without loading the cache. */
#define SLAB_FIXED_IDS 128
#define SLAB_NO_ID UINT32_MAX
#define SLAB_PREFERRED_MAX_ORDER 5      /* slabs up to 128 KiB unless objects need more */
#define SLAB_MIN_OBJECTS 8              /* grow past the preferred order until this many fit */
#define SLAB_DEFAULT_MAX_EMPTY 4        /* empty slabs kept per cache */
#define SLAB_FIRST_REFILL 4             /* a thread's first refill from the slabs (doubles) */
#define SLAB_KNOWN_FLAGS                                                                    \
    (SLAB_HWCACHE_ALIGN | SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_PANIC |      \
     SLAB_NO_MAGAZINE | SLAB_CONSISTENCY_CHECKS)

enum slab_list { SLAB_LIST_NONE = 0, SLAB_LIST_FULL, SLAB_LIST_PARTIAL, SLAB_LIST_EMPTY };

/* ---------------------------------------------------------------- slab */
struct slab {
    uint32_t magic;            /* SLAB_MAGIC while the slab belongs to a cache */
    uint32_t inuse;            /* set bits in bitmap */
    struct kmem_cache *cache;  /* owner */
    struct slab *next, *prev;  /* on one of the cache's lists (cache->lock) */
    char *objs;                /* slot 0 (after the colour offset) */
    uint32_t free_word;        /* no zero bit below this bitmap word */
    uint8_t list;              /* enum slab_list */
    uint8_t unused8[3];
    uint64_t bitmap[];         /* bit i set: slot i is in use (by a caller or a magazine) */
};

struct slab_list_head {
    struct slab *first;
    size_t count;
};

/* ---------------------------------------------------------------- magazines */
struct magazine {
    uint32_t count;            /* objects in objs[0..count) (relaxed atomics: stats read it) */
    uint32_t size;             /* capacity */
    struct magazine *next;     /* on a depot list */
    void *objs[];              /* size + 1 entries: objs[size] ends the popped run (below) */
};

/* ---------------------------------------------------------------- cache */
struct kmem_cache {
    /* read-mostly: geometry, set at create */
    uint32_t magic;
    uint32_t id;               /* index into every thread's magazine table, or SLAB_NO_ID */
    uint32_t object_size;      /* as asked */
    uint32_t slot_size;        /* object_size rounded up to align */
    uint32_t align;
    uint32_t objs_per_slab;
    uint32_t slab_order;       /* slab = 2^slab_order pages */
    uint32_t bitmap_words;
    uint32_t objs_offset;      /* header + bitmap, aligned: offset of slot 0 without colour */
    uint32_t colour_max;       /* largest colour offset (multiple of colour_step) */
    uint32_t colour_step;
    uint32_t mag_size;         /* objects per magazine; 0 = no magazines */
    uint32_t tc_off;           /* byte offset of this cache's entry in struct slab_tcache */
    uint64_t recip;            /* ceil(2^64 / slot_size): see slab_slot_index */
    uintptr_t slab_mask;       /* ~(slab_bytes - 1) */
    size_t slab_bytes;
    unsigned int flags;
    void (*ctor)(void *obj, void *arg);
    void (*dtor)(void *obj, void *arg);
    void (*ctor_simple)(void *obj);
    void *ctor_arg;
    size_t max_objects;        /* 0 = no cap */
    size_t max_empty;
    char name[KMEM_CACHE_NAME_MAX];
    struct kmem_cache *next_cache, *prev_cache; /* slab_caches_lock */

    /* depot (depot_lock) */
    pthread_mutex_t depot_lock;
    struct magazine *depot_full, *depot_empty;
    size_t nr_depot_full, nr_depot_empty;
    size_t depot_max_full;

    /* slab lists and slow-path counters (lock) */
    pthread_mutex_t lock;
    struct slab_list_head full, partial, empty;
    uint32_t colour_next;
    size_t inuse_total;        /* sum of slab->inuse */
    size_t slabs_created, slabs_freed;
    size_t ctor_calls, dtor_calls;
    size_t allocs, frees;      /* counted here for threads without a magazine table, and
                                  folded in from exiting threads' tables */
    size_t alloc_failures;     /* relaxed atomics */
    size_t invalid_frees;      /* relaxed atomics */
    size_t live_capped;        /* objects held by callers when max_objects is set */

    /* debugging (debug.c; set at create, read-only after) */
    uint32_t debug;            /* SLAB_DBG_* bits; nonzero: no magazines */
    uint32_t rz_off, rz_len;   /* red zone [rz_off, rz_off + rz_len) of a slot (Z) */
    uint32_t track_off;        /* struct slab_track of a slot (U) */
    /* fault injection (SLABCACHE_FAIL; cache->lock) */
    uint64_t fail_every;       /* fail every Nth allocation; 0 = off */
    uint64_t fail_threshold;   /* fail when rand32 < threshold; 0 = off */
    uint64_t fail_count;       /* allocations seen */
    uint64_t fail_rng;         /* xorshift64 state */

    /* Returns of objects to the slabs: one more per slab_free_batch_locked (under lock; read
     * relaxed by the free fast path, see "the popped run" below).  A line of its own, so a
     * return on one thread does not evict the read-mostly geometry from the others. */
    uint32_t returns __attribute__((aligned(SLAB_CACHELINE)));
};

/* The track record of a slot (SLAB_DBG_USER caches only). */
static inline struct slab_track *slab_debug_track(const struct kmem_cache *c, const void *obj)
{
    return (struct slab_track *)((uintptr_t)obj + c->track_off);
}

/* ---------------------------------------------------------------- per-thread caches */
/* The loaded magazine is used through a window in the entry: objects in [lo, top), room in
 * [top, hi).  The fast paths touch only the entry (alloc: top == lo means empty; free:
 * top == hi means full) and the slot at top, never the magazine header.  While a magazine
 * is loaded its `count` field is stale; the truth is top - lo.  The slow paths close the
 * window (entry_window_close: count written back, lo = top = hi = NULL, so both fast paths
 * miss), work on magazine counts as before, and open it again (entry_window_open: top and hi
 * stored before lo).  A reader on another thread (stats, destroy, a fork child) therefore
 * takes the loaded magazine's count from top - lo only when lo == loaded->objs, and from
 * loaded->count otherwise: every state the owner passes through reads consistently.
 * An unused entry (and the sentinel) has a NULL window, so it misses on both fast paths.
 *
 * Counting without a counter on the allocation fast path: objects enter a thread's two
 * magazines by frees (counted in `frees`) and by refills from the depot or the slabs, and
 * leave them by allocations and by returns to the depot or the slabs.  The slow paths keep
 * `net_in` = refilled - returned, so
 *     allocs = frees + net_in - (loaded count + previous->count)
 * (all modulo 2^64).  Relaxed atomics: only the owning thread writes; stats read them. */
struct slab_tc_entry {
    void **top;                /* window on the loaded magazine (see above) */
    void **lo;
    void **hi;
    struct kmem_cache *cache;  /* owner of these magazines, NULL if unused */
    struct magazine *loaded, *previous;
    size_t frees;              /* frees by this thread */
    size_t net_in;             /* objects moved into the magazines minus moved out */
    uint32_t refill;           /* objects the next refill from the slabs takes (0: first) */
    uint32_t returns_seen;     /* cache->returns when the window opened (the popped run) */
};
struct slab_tcache {
    struct slab_tcache *next, *prev; /* registry (slab_tcache_lock) */
    pthread_t thread;
    /* ent[SLAB_MAX_CACHES] is a sentinel that is never assigned: caches without magazines
     * point their tc_off at it, so the fast path needs no range check. */
    struct slab_tc_entry ent[SLAB_MAX_CACHES + 1];
};

/* ---------------------------------------------------------------- magazine fast paths
 * Defined here so the kmalloc and malloc fronts inline them (no call between the front and
 * the magazine); the slow paths are in magazine.c.  slab_tls_tcache is never NULL: threads
 * start on an all-empty table whose entries miss on both paths. */
extern __thread struct slab_tcache *slab_tls_tcache __attribute__((tls_model("initial-exec")));

/* The calling thread's entry for c (maybe unused: then its window is NULL).  Caches without
 * magazines have their tc_off at the sentinel entry, which is never assigned. */
static inline struct slab_tc_entry *slab_tc_entry_of(const struct kmem_cache *c)
{
    return (struct slab_tc_entry *)((char *)slab_tls_tcache + c->tc_off);
}

/* One more in a counter that only the owning thread writes and other threads only read.
 * On x86-64 a single add to memory: its store is one aligned 8-byte write, so a reader sees
 * the old or the new value (the kernel's this_cpu_inc).  Elsewhere, and under TSan (which
 * must see every access), a relaxed load and store. */
static inline void slab_count_op(size_t *counter)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(SLABCACHE_PORTABLE_COUNTERS)
    __asm__("addq $1, %0" : "+m"(*counter));
#else
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
#endif
}

/* Pop from the window of the calling thread's magazine of c (c != NULL) into *obj: no lock,
 * no magazine header, no slab.  False when the slow path must serve (empty, no entry yet).
 * The cache test keeps a stale pointer to a destroyed cache (whose id may serve another
 * cache now) off the fast path.  No counter: allocations are derived (struct slab_tc_entry).
 * A bool rather than NULL for a miss, so callers do not test the popped pointer again. */
static inline __attribute__((always_inline)) bool slab_magazine_pop(struct kmem_cache *c,
                                                                    void **obj)
{
    struct slab_tc_entry *e = slab_tc_entry_of(c);
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(__atomic_load_n(&e->cache, __ATOMIC_RELAXED) == c &&
                    top != __atomic_load_n(&e->lo, __ATOMIC_RELAXED))) {
        __atomic_store_n(&e->top, top - 1, __ATOMIC_RELAXED);
        *obj = top[-1];
        return true;
    }
    return false;
}

/* Pop from the calling thread's entry `id`, a fixed id (SLAB_FIXED_IDS): only the cache
 * created with that id ever uses the entry, so no cache compare is needed; an unused entry
 * has an empty window (top == lo) and misses. */
static inline __attribute__((always_inline)) bool slab_magazine_pop_fixed(uint32_t id,
                                                                          void **obj)
{
    struct slab_tc_entry *e = &slab_tls_tcache->ent[id];
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(top != __atomic_load_n(&e->lo, __ATOMIC_RELAXED))) {
        __atomic_store_n(&e->top, top - 1, __ATOMIC_RELAXED);
        *obj = top[-1];
        return true;
    }
    return false;
}

/* The word just below top: the object on top of the magazine or, when it is empty, the
 * magazine's `next` link, which is never an object address.  Read through an integer so no
 * pointer is formed before the array. */
static inline const void *slab_window_top_obj(void **top)
{
#if defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    (void)top;
    return NULL;
#else
    return *(void *const *)((uintptr_t)top - sizeof(void *));
#endif
}

/* The popped run.  An alloc pops top[-1] and leaves the pointer where it was, so the words
 * at and above top hold the objects this thread popped, most recent first.  The run is
 * top[0], top[1], ... up to the first NULL (or hi), and every word in it is an object of c
 * that this thread popped since the window opened and has not freed since.  Kept so:
 *   - a pop lengthens the run by the object it returns;
 *   - a free of top[0] (slab_magazine_push_popped) just moves top up: the run shrinks by it;
 *   - any other push writes obj at top[0] and NULL at top[1] (objs has a spare word for
 *     top == hi - 1), so the run becomes empty;
 *   - opening the window writes NULL at top[0].
 * So `*top == obj` proves that obj is an in-use slot of c, exactly what the always-on check
 * (slab_check_free_fast) establishes, unless another thread freed obj meanwhile and it went
 * back to its slab (where its bit is cleared and the slab may be released).  Every return to
 * the slabs increments cache->returns; the window records it when it opens, and the run is
 * trusted only while the two are equal.  An object freed by another thread that is still in
 * a magazine keeps its bit set and passes the full check too, so the run accepts nothing
 * the full check would refuse.  LIFO frees (a temporary freed before the next allocation of
 * its cache) then cost a compare instead of the check's ~30 instructions.  obj != NULL (the
 * run ends at a NULL). */
static inline __attribute__((always_inline)) bool
slab_entry_push_popped(const struct kmem_cache *c, struct slab_tc_entry *e, const void *obj)
{
#if defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    /* //slab:slab_unchecked_for_benchmarks: no check to skip; measure the push alone. */
    (void)c;
    (void)e;
    (void)obj;
    return false;
#else
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(top != __atomic_load_n(&e->hi, __ATOMIC_RELAXED) && *top == obj &&
                    __atomic_load_n(&e->returns_seen, __ATOMIC_RELAXED) ==
                        __atomic_load_n(&c->returns, __ATOMIC_RELAXED))) {
        __atomic_store_n(&e->top, top + 1, __ATOMIC_RELAXED);
        slab_count_op(&e->frees);
        return true;
    }
    return false;
#endif
}

/* The same for c's entry of the calling thread (c != NULL). */
static inline __attribute__((always_inline)) bool slab_magazine_push_popped(struct kmem_cache *c,
                                                                            const void *obj)
{
    return slab_entry_push_popped(c, slab_tc_entry_of(c), obj);
}

/* Push obj, which passed slab_check_free_fast(c, obj), onto the calling thread's magazine of
 * c, ending the popped run.  False when the slow path must take it: magazine full, no entry
 * yet, or obj already on top (the most common double free, caught as cheaply as glibc's
 * "fasttop" check; an object deeper in a magazine keeps its slab bit set, so the complete
 * check needs SLAB_CONSISTENCY_CHECKS, which has no magazines). */
static inline __attribute__((always_inline)) bool slab_entry_push(struct slab_tc_entry *e,
                                                                  void *obj)
{
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(top != __atomic_load_n(&e->hi, __ATOMIC_RELAXED) &&
                    slab_window_top_obj(top) != obj)) {
        top[0] = obj;
        top[1] = NULL;
        __atomic_store_n(&e->top, top + 1, __ATOMIC_RELAXED);
        slab_count_op(&e->frees);
        return true;
    }
    return false;
}

static inline __attribute__((always_inline)) bool slab_magazine_push(struct kmem_cache *c,
                                                                     void *obj)
{
    return slab_entry_push(slab_tc_entry_of(c), obj);
}

/* The slow halves (magazine.c): allocation, and the free of a validated object. */
void *slab_cache_alloc_slow(struct kmem_cache *c, unsigned int flags, const void *caller);
void slab_cache_free_slow(struct kmem_cache *c, void *obj, const void *caller);

/* ---------------------------------------------------------------- cross-file (slab.c) */
/* kmem_cache_create_args with magazine table id `id` (< SLAB_FIXED_IDS) when the cache has
 * magazines.  If a live cache already holds the id (another thread created it first), that
 * cache is returned and nothing is created: two threads racing to create the same fixed-id
 * cache get one cache, so the loser never ends up without magazines. */
struct kmem_cache *slab_cache_create_fixed_id(const char *name, size_t size,
                                              const struct kmem_cache_args *args,
                                              unsigned int flags, uint32_t id);
extern pthread_mutex_t slab_caches_lock;
extern pthread_mutex_t slab_tcache_lock;
extern struct kmem_cache *slab_caches;

void slab_init_once(void);
/* Return n objects to their slabs (cache->lock taken inside). Objects were validated. */
void slab_free_batch(struct kmem_cache *c, void *const *objs, size_t n);
/* Take up to n objects from the slabs into objs (cache->lock taken inside), publishing the
 * count taken so far into *published (a magazine's count; may be NULL) under cache->lock,
 * so a fork never sees objects taken from the slabs but not counted. */
size_t slab_alloc_batch_published(struct kmem_cache *c, void **objs, size_t n,
                                  uint32_t *published);
/* slab_free_batch that zeroes *published under cache->lock (a magazine's count). */
void slab_free_batch_published(struct kmem_cache *c, void *const *objs, size_t n,
                               uint32_t *published);
/* Magazine-less paths that know the caller (debug hooks, fault injection, tracing):
 * slab_alloc_batch / one free with the caller's return address. */
size_t slab_alloc_batch_from(struct kmem_cache *c, void **objs, size_t n, const void *caller);
bool slab_free_one_from(struct kmem_cache *c, void *obj, const void *caller);
/* Release empty slabs beyond `keep` (cache->lock taken inside). */
void slab_release_empty(struct kmem_cache *c, size_t keep);
/* Check that obj is a slot of cache c currently in use; on failure report ("double free",
 * "invalid free", "wrong cache") and return false.  The out-of-line half, called when the
 * inline slab_check_free_fast (below) says no. */
bool slab_check_free_slow(struct kmem_cache *c, const void *obj, const char *op);

static inline struct slab *slab_of(const struct kmem_cache *c, const void *obj)
{
    return (struct slab *)((uintptr_t)obj & c->slab_mask);
}

/* Slot index of obj in s, or UINT32_MAX if obj is not exactly a slot start.  One 64x64->128
 * multiply by c->recip = ceil(2^64 / slot_size) gives both answers (Lemire, Kaser & Kurz,
 * "Faster remainder by direct computation", 2019): for off < 2^32 the high half is
 * off / slot_size and the low half is below recip exactly when slot_size divides off.
 * An obj below s->objs wraps off to >= 2^63, whose quotient is far past objs_per_slab. */
static inline uint32_t slab_slot_index(const struct kmem_cache *c, const struct slab *s,
                                       const void *obj)
{
    uint64_t off = (uint64_t)((uintptr_t)obj - (uintptr_t)s->objs);
    unsigned __int128 prod = (unsigned __int128)off * c->recip;
    uint64_t idx = (uint64_t)(prod >> 64);
    if (idx >= c->objs_per_slab || (uint64_t)prod >= c->recip)
        return UINT32_MAX;
    return (uint32_t)idx;
}

/* The always-on free check, fast half: obj lies in one of our buddy extents, the header at
 * the masked address is a live slab of c, obj is exactly a slot start and its bit is set.
 * Reads only memory known to be ours: the extent map first, and the slab block lies inside
 * the extent because extents and slabs are both naturally aligned. */
static inline bool slab_check_free_fast(struct kmem_cache *c, const void *obj)
{
#if defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    /* //slab:slab_unchecked_for_benchmarks only: what the checks cost (benchmarks/check_cost). */
    (void)c;
    (void)obj;
    return true;
#endif
    if (SLAB_LIKELY(heap_is_buddy_granule(obj))) {
        struct slab *s = slab_of(c, obj);
        if (SLAB_LIKELY(s->magic == SLAB_MAGIC &&
                        __atomic_load_n(&s->cache, __ATOMIC_RELAXED) == c)) {
            uint32_t idx = slab_slot_index(c, s, obj);
            return SLAB_LIKELY(idx != UINT32_MAX &&
                               (__atomic_load_n(&s->bitmap[idx / 64], __ATOMIC_RELAXED) &
                                ((uint64_t)1 << (idx % 64))));
        }
    }
    return false;
}
/* The cache owning the slab whose buddy block starts at head (NULL if not a live slab). */
struct kmem_cache *slab_block_cache(const void *head);
/* Validation pieces (cache->lock held; magazine.c adds the depot and the thread tables). */
int slab_validate_cache_locked(struct kmem_cache *c);
/* obj, found in `where` (a magazine, a popped run), is an in-use slot of c. */
int slab_validate_cached_obj_locked(struct kmem_cache *c, const void *obj, const char *where);

/* ---------------------------------------------------------------- cross-file (magazine.c) */
void slab_tcache_flush_cache_all_threads(struct kmem_cache *c); /* destroy */
void slab_depot_drain(struct kmem_cache *c);
void slab_tcache_flush_self(struct kmem_cache *c);
/* Sum of per-thread counters for c (slab_tcache_lock taken inside). */
void slab_tcache_counts(struct kmem_cache *c, size_t *allocs, size_t *frees, size_t *cached);
void slab_magazine_init(void);
/* Up to max pointers held in magazines and the depot of c (locks taken inside; racy against
 * threads that are running, exact when they are not); returns the total count, which may
 * exceed max. */
size_t slab_tcache_collect_cached(struct kmem_cache *c, void **out, size_t max);
/* Sort pointers by address, in place, without allocating (leak.c). */
void slab_sort_pointers(void **a, size_t n);

/* kmem_cache_alloc / kmem_cache_free on behalf of a caller elsewhere (kmalloc, malloc):
 * `caller` is what debug caches record and report as the call site (SLAB_STORE_USER). */
void *slab_cache_alloc_from(struct kmem_cache *c, unsigned int flags, const void *caller);
void slab_cache_free_from(struct kmem_cache *c, void *obj, const void *caller);
#define SLAB_CALLER __builtin_return_address(0)

/* ---------------------------------------------------------------- report.c */
/* One line on stderr with write(2): "slabcache: " + the formatted text + "\n".
 * Formats: %s, %zu, %u, %d, %p only.  Never allocates. */
void slab_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Called after a misuse report: abort() unless SLABCACHE_ON_ERROR=report. */
void slab_misuse(void);
/* Format into buf (same subset as slab_report); returns the length written. */
size_t slab_format(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t slab_vformat(char *buf, size_t len, const char *fmt, va_list ap);
/* Tests: read SLABCACHE_ON_ERROR again at the next misuse report. */
void slab_report_reset_options(void);

#endif
