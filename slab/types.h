/* SPDX-License-Identifier: MIT */
/* slab/types.h - the structures of the slab layer, how they relate, and every lock.
 *
 * Headers of slab/ by role:  types.h (this file: structures, invariants, the lock order),
 * fastpath.h (the inline fast paths), internal.h (prototypes, grouped by the file that
 * defines them), debug.h (debug.c), kmalloc_internal.h (kmalloc.c).  Public: slab.h,
 * kmalloc.h.
 *
 *   struct kmem_cache ──lists──> struct slab (a buddy block: header + bitmaps, then slots)
 *         │  └─depot──> struct magazine (full / empty lists, behind depot_lock)
 *         └─id──> entry `id` of every thread's struct magazine_table (loaded + previous
 *                 magazine, seen through a window: struct magazine_entry)
 *
 * A slab is a naturally aligned buddy block of 2^slab_order pages (tag BUDDY_TAG_SLAB), so
 * the slab of an object is `obj & ~(slab_bytes - 1)`.  Layout of a slab:
 *
 *   +--------------------+-----------+---------------+--------+--------+-----+----------+------+
 *   | struct slab header | bitmap[]  | extra bitmaps | colour | slot 0 | ... | slot n-1 | left |
 *   +--------------------+-----------+---------------+--------+--------+-----+----------+------+
 *   ^ block head          in use      extra_bitmaps x          ^ objs (aligned to cache->align)
 *                                     bitmap_words words
 *
 * The in-use bitmap has a bit per slot (1 = held by a caller or cached in a magazine); bits
 * past the last slot are set, so the word-at-a-time scan never returns them.  A cache created
 * with extra bitmaps (cache_create_with_bitmaps: layers above that keep a bit per slot, such
 * as mark bits) has that many more, each bitmap_words long, zeroed when the slab is made and
 * never touched by this layer again; slab_extra_bitmap() finds them.
 *
 * Counting invariants (checked by kmem_cache_validate):
 *   slab->inuse        = number of set bits in the in-use bitmap, padding bits excluded
 *   slab on full list    <=> inuse == objs_per_slab
 *   slab on partial list <=> 0 < inuse < objs_per_slab
 *   slab on empty list   <=> inuse == 0
 *   no zero bit in the in-use bitmap below slab->free_word; padding bits set; padding bits of
 *   the extra bitmaps clear
 *   cache->inuse_total = sum(slab->inuse) over the three lists
 *   slabs_created - slabs_freed = full.count + partial.count + empty.count
 *   sum(slab->inuse)   = active objects (callers) + cached objects (magazines and depot)
 *   every pointer in a magazine is an in-use slot of that magazine's cache, and no pointer is
 *   cached twice
 *
 * Lock order (outermost first).  A function named *_locked asserts, in debug builds, that its
 * caller holds the lock it needs (heap/mutex.h).  Every lock of slabcache is here:
 *   0. the pool layer's locks         pool->gc_lock, hk_mutex, pool->lock, pool_global_lock,
 *      (pool/internal.h)              in that order, taken before any lock below and never
 *                                     inside one (this layer calls nothing of pool/ but the
 *                                     thread-flush hook, with no lock held)
 *   0. status_lock (status.c),       the state copy of the status printers; a watch sample
 *      watch_lock (watch.c)          and the watch's exit report (never held together, nor
 *                                    with a pool lock)
 *   1. leak_lock (leak.c)            leak reports and the expected-leak table
 *   2. cache_list_lock (cache.c)     the list of caches and the magazine-table id map
 *   3. magazine_tables_lock          the registry of per-thread tables (magazine.c), and any
 *      (magazine.c)                  access to another thread's table: destroy, stats,
 *                                    thread exit, a fork child
 *   4. cache->depot_lock             the cache's depot of magazines
 *   5. cache->lock                   the cache's slab lists, slab headers and bitmaps,
 *                                    colour_next, the slow counters, fault injection
 *   6. the buddy lock (buddy/buddy.c)
 *   7. the HEAP lock (heap/heap.c), then the META lock (heap/meta.c)
 *   8. the option lock (heap/options.c): held only while the option table is read or its
 *      start-up lines written; nothing is taken inside it
 *   -  the debug options lock (debug.c) is taken with no other lock held; only the option
 *      lock is taken inside it.  The report descriptor's spin lock (heap/fmt.c) is a leaf,
 *      taken to open it and, in a fork child, to reopen a per-pid log.
 * The leak report marks blocks holding the buddy and heap locks (buddy_lock_all, 6 and 7)
 * with leak_lock and nothing between: no block can be released while it is read.
 * Slabs are made and released outside cache->lock (the buddy lock is taken alone);
 * constructors and destructors run with no lock held, but for one case: the process-wide
 * shrink (slabcache_reap, malloc_trim) walks the caches with cache_list_lock held, so a
 * destructor run by it must not create or destroy a cache.
 * Giving memory back from inside an allocation (cache.c): the reclaim before ENOMEM (called
 * by the buddy layer with none of its locks held, from a slab being made outside
 * cache->lock or a large block) and the periodic depot reap (from the slow paths of
 * magazine.c, after every lock is released) take locks 2 to 5 in order, so they are safe
 * wherever an allocation may start: with no lock of this layer held, or only locks 0 and 1.
 * Neither runs a destructor (caches with one are skipped: a destructor is the program's code
 * and may wait for a lock the allocating thread holds), nor recurses (a thread flag), nor
 * touches a magazine entry whose window is closed (its thread is in a slow path of that
 * cache further up its own stack).  Per-thread magazines take no lock:
 * only their thread touches them, except under magazine_tables_lock (above).
 *
 * fork(): one prepare handler (heap/mutex.c) takes every lock above, in this order, each
 * file's locks as one entry registered with its rank (heap_fork_register):
 *   SLAB_FORK_RANK_LEAK    lock 1          leak.c
 *   SLAB_FORK_RANK_CACHES  locks 2 to 5    cache.c (every cache's two, in list order)
 *   SLAB_FORK_RANK_PAGES   locks 6 and 7   cache.c (buddy_lock_all)
 *   SLAB_FORK_RANK_LEAF    leaf locks      debug.c (the debug options lock, then lock 8)
 * The parent and the child release them in the reverse order.  A new lock gets a place in
 * the list above and an entry; in debug builds //tests/slab:fork_test finds any lock the
 * handler does not hold at fork time (heap/mutex.h's registry).  A single-threaded process
 * takes none of them (heap/mutex.h: a fork from a signal handler must not wait for a lock
 * the interrupted code holds).
 */
#ifndef SLABCACHE_SLAB_TYPES_H
#define SLABCACHE_SLAB_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buddy/buddy.h"
#include "heap/mutex.h"
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
/* Ids [0, SLAB_FIXED_IDS) are given only to caches that ask for one (cache_create_fixed_id):
 * the kmalloc classes take id = class index, so malloc's fast path finds its magazine entry
 * from the class index alone, without loading the cache. */
#define SLAB_FIXED_IDS 128
#define SLAB_NO_ID UINT32_MAX
#define SLAB_PREFERRED_MAX_ORDER 5      /* slabs up to 128 KiB unless objects need more */
#define SLAB_MIN_OBJECTS 8              /* grow past the preferred order until this many fit */
#define SLAB_DEFAULT_MAX_EMPTY 4        /* empty slabs kept per cache */
#define SLAB_FIRST_REFILL 4             /* a thread's first refill from the slabs (doubles) */
#define MAGAZINE_REFILL_STEADY 0x80000000u /* magazine_entry.refill: the lean refills are over */
#define SLAB_MAX_EXTRA_BITMAPS 8        /* extra per-slot bitmaps a cache may ask for */
#define SLAB_SMALL_EFFICIENCY 0.90      /* small_slabs: the least slot efficiency accepted */
#define SLAB_KNOWN_FLAGS                                                                    \
    (SLAB_HWCACHE_ALIGN | SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_PANIC |      \
     SLAB_NO_MAGAZINE | SLAB_CONSISTENCY_CHECKS)

/* Ranks of the fork entries (the lock order above; lower is taken first). */
#define SLAB_FORK_RANK_LEAK 10
#define SLAB_FORK_RANK_CACHES 20
#define SLAB_FORK_RANK_PAGES 60
#define SLAB_FORK_RANK_LEAF 90

enum slab_list { SLAB_LIST_NONE = 0, SLAB_LIST_FULL, SLAB_LIST_PARTIAL, SLAB_LIST_EMPTY };

/* ---------------------------------------------------------------- slab (cache->lock) */
/* The header at the start of every slab.  The first 24 bytes are what the lock-free free
 * check reads (fastpath.h): the canary, the object area and the high-water mark of slots
 * ever handed out.  The canary binds the header to its address, its cache and its object
 * area under a per-process secret (slab_canary), so a header that a caller's overflow from
 * the block below (or a stray write) has reached is never trusted: the fast check refuses
 * it, and every slow path checks it, and the ranges of the other fields, before use
 * (slab_trust_locked). */
struct slab {
    uint64_t canary;           /* slab_canary(s, cache, objs) while the slab is in use */
    char *objs;                /* slot 0 (after the colour offset) */
    uint32_t touched;          /* slots [0, touched) have been taken from the bitmap at least
                                  once (written under cache->lock, read by the free check) */
    uint32_t inuse;            /* set bits in the in-use bitmap */
    struct kmem_cache *cache;  /* owner */
    struct slab *next, *prev;  /* on one of the cache's lists */
    uint64_t bitmap_sum;       /* slab_bitmap_sum() of the in-use bitmap, kept as words
                                  change: a bitmap changed behind the lock's back shows */
    uint32_t free_word;        /* no zero bit below this bitmap word */
    uint8_t list;              /* enum slab_list */
    uint8_t unused8[3];
    uint64_t bitmap[];         /* bit i set: slot i is in use (by a caller or a magazine);
                                  the extra bitmaps follow (slab_extra_bitmap) */
};

struct slab_list_head {
    struct slab *first;
    size_t count;
};

/* ---------------------------------------------------------------- magazines */
struct magazine {
    uint32_t count;            /* objects in objs[0..count) (relaxed atomics: stats read it) */
    uint32_t size;             /* capacity */
    struct magazine *next;     /* on a depot list (depot_lock) */
    void *objs[];              /* size + 1 entries: objs[size] ends the popped run (fastpath.h) */
};

/* ---------------------------------------------------------------- cache */
struct kmem_cache {
    /* read-mostly: geometry, set at create.  The fields the fast paths read come first, on
     * the struct's first cache line. */
    uintptr_t slab_mask;       /* ~(slab_bytes - 1) */
    uint64_t recip;            /* ceil(2^64 / slot_size): see slab_slot_index */
    uint32_t tc_off;           /* byte offset of this cache's entry in struct magazine_table */
    uint32_t objs_per_slab;
    uint32_t mark_off;         /* offset of the free mark in a slot (fastpath.h) */
    uint32_t object_size;      /* as asked */
    uint32_t magic;
    uint32_t id;               /* index into every thread's magazine table, or SLAB_NO_ID */
    uint32_t slot_size;        /* object_size rounded up to align (plus the mark or debug
                                  bytes where a slot needs them) */
    uint32_t align;
    uint32_t slab_order;       /* slab = 2^slab_order pages */
    uint32_t bitmap_words;     /* words of each bitmap of a slab */
    uint32_t objs_offset;      /* header + bitmaps, aligned: offset of slot 0 without colour */
    uint32_t colour_max;       /* largest colour offset (multiple of colour_step) */
    uint32_t colour_step;
    uint32_t mag_size;         /* objects per magazine; 0 = no magazines */
    uint32_t extra_bitmaps;    /* bitmaps per slab after the in-use one (layers above) */
    bool small_slabs;          /* geometry: the smallest slabs that serve well (layers above
                                  that empty the cache often: cache_create_with_bitmaps_small) */
    bool marks;                /* free marks kept (caches with magazines; fastpath.h) */
    size_t slab_bytes;
    unsigned int flags;
    void (*ctor)(void *obj, void *arg);
    void (*dtor)(void *obj, void *arg);
    void (*ctor_simple)(void *obj);
    void *ctor_arg;
    size_t max_objects;        /* 0 = no cap */
    size_t max_empty;
    char name[KMEM_CACHE_NAME_MAX];
    struct kmem_cache *next_cache, *prev_cache; /* cache_list_lock */

    /* depot (depot_lock) */
    struct heap_mutex depot_lock;
    struct magazine *depot_full, *depot_empty;
    size_t nr_depot_full, nr_depot_empty;
    size_t depot_max_full;
    /* The working set (Bonwick & Adams): the fewest full and empty magazines the depot held
     * since the last reap.  That many were not used for a whole reap interval: the next reap
     * (magazine_depot_reap) gives them back. */
    size_t depot_min_full, depot_min_empty;

    /* slab lists and slow-path counters (lock) */
    struct heap_mutex lock;
    struct slab_list_head full, partial, empty;
    uint32_t colour_next;
    size_t inuse_total;        /* sum of slab->inuse */
    size_t slabs_created, slabs_freed;
    size_t slabs_lost;         /* slabs with a damaged header, set aside (never reused) */
    size_t ctor_calls, dtor_calls;
    size_t allocs, frees;      /* counted here for threads without a magazine table, and
                                  folded in from exiting threads' tables */
    size_t alloc_failures;     /* relaxed atomics */
    size_t invalid_frees;      /* relaxed atomics */
    size_t live_capped;        /* objects held by callers when max_objects is set */

    /* debugging (debug.c; set at create, read-only after) */
    uint32_t debug;            /* SLAB_DBG_* bits (debug.h); nonzero: no magazines */
    uint32_t rz_off, rz_len;   /* red zone [rz_off, rz_off + rz_len) of a slot (Z) */
    uint32_t track_off;        /* struct debug_track of a slot (U) */
    uint32_t orig_off;         /* uint32_t size asked for, of a kmalloc class with Z */
    /* fault injection (SLABCACHE_FAIL; cache->lock) */
    uint64_t fail_every;       /* fail every Nth allocation; 0 = off */
    uint64_t fail_threshold;   /* fail when rand32 < threshold; 0 = off */
    uint64_t fail_count;       /* allocations seen */
    uint64_t fail_rng;         /* xorshift64 state */

    /* Returns of objects to the slabs: one more per batch returned (under lock; read relaxed
     * by the free fast path, see "the popped run" in fastpath.h).  A line of its own, so a
     * return on one thread does not evict the read-mostly geometry from the others. */
    uint32_t returns __attribute__((aligned(SLAB_CACHELINE)));
};

/* ---------------------------------------------------------------- per-thread magazines */
/* The loaded magazine is used through a window in the entry: objects in [lo, top), room in
 * [top, hi).  The fast paths touch only the entry (alloc: top == lo means empty; free:
 * top == hi means full) and the slot at top, never the magazine header.  While a magazine
 * is loaded its `count` field is stale; the truth is top - lo.  The slow paths close the
 * window (count written back, lo = top = hi = NULL, so both fast paths miss), work on
 * magazine counts, and open it again (top and hi stored before lo).  A reader on another
 * thread (stats, destroy, a fork child) therefore takes the loaded magazine's count from
 * top - lo only when lo == loaded->objs, and from loaded->count otherwise: every state the
 * owner passes through reads consistently.  An unused entry (and the sentinel) has a NULL
 * window, so it misses on both fast paths.
 *
 * Counting without a counter on the allocation fast path: objects enter a thread's two
 * magazines by frees (counted in `frees`) and by refills from the depot or the slabs, and
 * leave them by allocations and by returns to the depot or the slabs.  The slow paths keep
 * `net_in` = refilled - returned, so
 *     allocs = frees + net_in - (loaded count + previous->count)
 * (all modulo 2^64).  Relaxed atomics: only the owning thread writes; stats read them. */
struct magazine_entry {
    void **top;                /* window on the loaded magazine (see above) */
    void **lo;
    void **hi;
    struct kmem_cache *cache;  /* owner of these magazines, NULL if unused */
    struct magazine *loaded, *previous;
    size_t frees;              /* frees by this thread */
    size_t net_in;             /* objects moved into the magazines minus moved out */
    uint32_t refill;           /* objects the next refill from the slabs takes (0: first), or'ed
                                * with MAGAZINE_REFILL_STEADY once past the lean ones */
    uint32_t returns_seen;     /* cache->returns when the window opened (the popped run) */
    size_t reap_ops;           /* allocs + frees at this thread's last reap of the entry
                                  (magazine_reap_self): unchanged since = idle */
};
/* The kmalloc front's free hints (slab/kmalloc_internal.h has their rule): the last slab
 * freed into for each of KMALLOC_HINTS address buckets.  They live in the thread's table, not
 * in static TLS: glibc zeroes every thread's static TLS at pthread_create, which on a fresh
 * stack faults in every page of it, so there they cost each new thread a page fault per page
 * whether it ever frees or not.  In the table they cost a page only where the thread frees,
 * once per table (tables are reused: a hint left by the table's previous thread is only a
 * guess, checked like any other).  The shared empty table's hints stay zero: they always
 * miss, and nothing records into it. */
#define KMALLOC_HINTS 1024
struct kmalloc_hint {
    uintptr_t slab; /* slab base, or 0 */
    struct kmem_cache *cache;
};
struct magazine_table {
    struct magazine_table *next, *prev; /* registry (magazine_tables_lock) */
    pthread_t thread;
    /* ent[SLAB_MAX_CACHES] is a sentinel that is never assigned: caches without magazines
     * point their tc_off at it, so the fast path needs no range check. */
    struct magazine_entry ent[SLAB_MAX_CACHES + 1];
    struct kmalloc_hint hints[KMALLOC_HINTS]; /* owning thread only */
};

#endif
