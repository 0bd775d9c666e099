/* SPDX-License-Identifier: MIT */
/* pool/internal.h - the structures of the pool layer, how they relate, its locks, and the
 * prototypes shared by its files (pool.c: life, blocks, thread caches; gc.c: marks,
 * collection, finalizers, the housekeeping thread; status.c: validation, statistics).
 *
 *   struct kmem_pool ──cls[i]──> struct kmem_cache (private, no magazines, POOL_BITMAPS extra
 *         │                      per-slot bitmaps: mark, collectible, intercept, condemned)
 *         ├──large──> open-addressed table of struct pool_large (blocks > KMEM_POOL_SMALL_MAX)
 *         └──tcs──> struct pool_tc of every thread that uses the pool (a way of its
 *                   struct pool_tls): free blocks per class, counters
 *
 * Per-slot bits (slab_extra_bitmap(c, s, POOL_BM_*)), bit i for slot i:
 *   MARK         set by kmem_pool_mark; cleared for every slot when a cycle begins
 *   COLLECTIBLE  set when a collectible block is handed out (after its address is written:
 *                the sweep guarantee) or made collectible; cleared when it is freed
 *   INTERCEPT    set when an INTERCEPT_FREE block is handed out, cleared when it is freed
 *   CONDEMNED    a cycle's snapshot: COLLECTIBLE when the cycle began; after marking, only
 *                the unmarked ones stay set ("pending": freed or finalized by this cycle,
 *                unless inner_free took the block first)
 * Invariants (kmem_pool_validate): every bit of COLLECTIBLE, INTERCEPT and CONDEMNED is on a
 * slot that is in use at the slab layer and not in a thread cache; CONDEMNED is clear outside
 * a collection; a thread cache holds distinct in-use slots of its class carrying the free
 * mark; live_blocks = in-use slots - cached blocks + large blocks; the same for bytes;
 * collectible counts = bits set.  The bits are written with atomic RMW (lock-free
 * make_collectible and mark); the sweep reads them under cache->lock (slab_walk).
 *
 * Lock order (outermost first), above the slab layer's (slab/types.h):
 *   1. pool->gc_lock          one collection at a time; held across mark and finalizers
 *   2. pool->hk_mutex         the housekeeping thread's requests (with hk_cond)
 *   3. pool->lock             class creation, the large table, counters, tc registry
 *   4. pool_global_lock       free pool structs, recycled caches, free tls tables
 *   then cache_list_lock and the slab layer's locks (cache creation, slab_walk, batches).
 * No pool lock is held while mark or intercept_free runs (gc_lock excepted: the callbacks
 * must not collect, which is checked).
 */
#ifndef SLABCACHE_POOL_INTERNAL_H
#define SLABCACHE_POOL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/mutex.h"
#include "pool/pool.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#define POOL_MAGIC 0x504f4f4cu /* "POOL" in a live pool */
#define POOL_NO_OWNER ((const void *)1)
#define POOL_NCLASSES 33       /* 8, 16..128 step 16, then 4 per doubling to 8192 */
#define POOL_BM_MARK 0
#define POOL_BM_COLLECTIBLE 1
#define POOL_BM_INTERCEPT 2
#define POOL_BM_CONDEMNED 3
#define POOL_BITMAPS 4
#define POOL_TLS_WAYS 8        /* pools a thread caches for at once (direct-mapped) */
#define POOL_TC_MAX 32         /* free blocks a thread caches per class (fewer for big ones) */
#define POOL_REFILL_MAX 64     /* blocks one refill of the stack takes (debug caches) */
#define POOL_RUN_BYTES 32768   /* a run of slots taken at once: about this many bytes (pages
                                  of it that no block reached are never touched) */
#define POOL_RUN_MAX 2048      /* ... and at most this many slots */
#define POOL_THROTTLE_FACTOR 2 /* collectible bytes at this times the threshold while the */
#define POOL_THROTTLE_NS 20000000 /* housekeeping thread collects: an allocating thread
                                     waits up to this long for the cycle to end */
#define POOL_ACCOUNT_BATCH 65536 /* collectible bytes a thread cache counts before adding
                                    them to the pool's counters */
#define POOL_KEEP_SLABS 1      /* empty slabs a destroyed pool in a thread's stash keeps */
#define POOL_RECYCLE_MAX 16    /* idle caches (no slabs) kept per class for new pools */
#define POOL_STASH_MAX 4       /* destroyed pools a thread keeps, caches attached */
#define POOL_SPARE_WITH_CACHES 64 /* destroyed pools kept process-wide with their caches
                                     (no slabs) */

/* Large-block flags (struct pool_large.bits), the same meaning as the per-slot bits. */
#define POOL_LB_MARK (1u << POOL_BM_MARK)
#define POOL_LB_COLLECTIBLE (1u << POOL_BM_COLLECTIBLE)
#define POOL_LB_INTERCEPT (1u << POOL_BM_INTERCEPT)
#define POOL_LB_CONDEMNED (1u << POOL_BM_CONDEMNED)
#define POOL_LARGE_TOMB ((void *)1) /* a deleted entry of the open-addressed table */

struct pool_large {
    void *block;      /* NULL: empty; POOL_LARGE_TOMB: deleted */
    size_t size;      /* usable bytes (the buddy block's, or the huge extent's) */
    uint32_t bits;    /* POOL_LB_* (pool->lock) */
};

/* One class of a thread cache: free blocks on a stack, and a run of slots never handed out
 * (slab_alloc_run) taken by bumping a pointer.  Counters are derived, not counted on the
 * allocation path: `in` = slots moved in from the slabs minus slots moved back, so the
 * blocks handed out through this class and not freed back into it are in - cached, where
 * cached = count + (end - bump) / size. */
struct pool_tc_class {
    uint32_t count;           /* free blocks in objs[ci][0 .. count) */
    char *bump, *end;         /* the run [bump, end) */
    size_t in;
};

/* One thread's cache for one pool.  Only the owning thread writes it (relaxed atomics, so
 * validation and statistics may read it from another thread), except `linked`, `next` and
 * `prev`, which belong to the pool's registry (pool->lock). */
struct pool_tc {
    struct kmem_pool *pool;   /* the pool it caches for, or NULL */
    uint64_t serial;          /* pool->serial when set up: a destroyed pool never matches */
    struct pool_tc *next, *prev; /* on pool->tcs */
    bool linked;              /* on pool->tcs (pool->lock) */
    size_t frees;             /* blocks freed into this cache */
    size_t coll_blocks;       /* collectible blocks published through this cache and not yet */
    size_t coll_bytes;        /* added to the pool's counters (POOL_ACCOUNT_BATCH) */
    size_t reserved;          /* bytes taken from the slabs into this cache, minus given back */
    size_t peak_net;          /* highest `reserved`: bounds the bytes its callers held */
    struct pool_tc_class cls[POOL_NCLASSES];
    void *objs[POOL_NCLASSES][POOL_TC_MAX];
};
struct pool_tls {
    struct pool_tls *next_free; /* pool_global_lock, when the thread is gone */
    struct pool_tc way[POOL_TLS_WAYS];
};

struct kmem_pool {
    uint32_t magic;             /* POOL_MAGIC while live (atomic) */
    uint32_t way;               /* serial % POOL_TLS_WAYS */
    uint64_t serial;            /* unique per create (atomic): thread caches compare it */
    const void *own_id;         /* the owner thread (pool_thread_id), which uses `own`, or
                                   POOL_NO_OWNER (never a thread's id, nor NULL, which is
                                   a thread's id before its first pool and in finalizers) */
    bool tcache;                /* thread caches on: no caps, no fill or check flags */
    uint64_t cls_used;          /* classes that took slots from their cache in this life */
    struct kmem_pool_config cfg;
    char name[KMEM_POOL_NAME_MAX];
    struct kmem_pool *next_free; /* pool_global_lock */

    struct heap_mutex lock;
    struct kmem_cache *cls[POOL_NCLASSES]; /* created on first use (atomic loads) */
    struct pool_large *large;   /* open-addressed, large_cap a power of two */
    size_t large_cap, large_used, large_live, large_bytes;
    struct pool_tc *tcs;        /* registry of thread caches */
    size_t live_blocks, live_bytes; /* blocks handed out by paths other than thread caches,
                                       plus what unlinked caches folded in */
    size_t allocs, frees, peak_bytes;
    size_t alloc_failures;      /* atomic */

    /* collection (atomics unless noted) */
    size_t collectible_blocks, collectible_bytes;
    size_t threshold;           /* collectible bytes that start the next collection */
    size_t collections, swept_blocks, swept_bytes, finalizers_run;
    uint64_t last_pause_ns, max_pause_ns, total_gc_ns;
    struct heap_mutex gc_lock;
    int collecting;             /* a cycle is between its snapshot and its end */
    int gc_waiters;             /* program threads in kmem_pool_collect */

    /* The owner thread's cache (the creator's, or whichever thread has its id later),
     * registered on tcs like a way: the common single-threaded pool finds its cache here
     * without the ways' index. */
    struct pool_tc own;

    /* housekeeping thread */
    pthread_mutex_t hk_mutex;
    pthread_cond_t hk_cond;
    pthread_t hk_thread;
    bool hk_started, hk_stop, hk_requested;
    uint64_t hk_cycles;         /* cycles the thread completed (hk_mutex; hk_cond broadcast) */
};

/* Size classes (pool.c). */
extern const uint32_t pool_class_size[POOL_NCLASSES];
static inline unsigned pool_class_of(size_t size)
{
    if (size <= 128)
        return size <= 8 ? 0 : (unsigned)((size + 15) >> 4);
    unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    unsigned q = (unsigned)((size - 1) >> (lg - 2)); /* 4..7 */
    return 9 + (lg - 7) * 4 + (q - 4);
}

/* The thread caches' free mark: written into the first word of a block when a thread cache
 * takes it back, cleared when it is handed out again or returned to its slab, so a second
 * free of a block sitting in a thread cache is caught.  Keyed by a per-process secret, the
 * address and the pool's serial (a mark left by an earlier pool never matches). */
extern uintptr_t pool_secret;
static inline uintptr_t pool_free_mark(const struct kmem_pool *pool, const void *block)
{
    return pool_secret ^ ((uintptr_t)block * 0x9e3779b97f4a7c15u) ^
           (__atomic_load_n(&pool->serial, __ATOMIC_RELAXED) * 0xc2b2ae3d27d4eb4fu);
}

/* Where a block lives: a slot of one of the pool's classes, or a large block. */
struct pool_ref {
    bool large;
    unsigned ci;             /* class (slots) */
    struct slab_slot at;     /* slots */
    struct pool_large *lb;   /* large (valid under pool->lock only) */
    size_t size;
};

/* Blocks held in a thread-cache class (stack + run) and those handed out through it. */
static inline size_t pool_tc_cached(const struct pool_tc_class *k, unsigned ci)
{
    return __atomic_load_n(&k->count, __ATOMIC_RELAXED) +
           (size_t)(__atomic_load_n(&k->end, __ATOMIC_RELAXED) -
                    __atomic_load_n(&k->bump, __ATOMIC_RELAXED)) /
               pool_class_size[ci];
}
static inline size_t pool_tc_out(const struct pool_tc_class *k, unsigned ci)
{
    return __atomic_load_n(&k->in, __ATOMIC_RELAXED) - pool_tc_cached(k, ci);
}

/* ---------------------------------------------------------------- pool.c */
/* Blocks and bytes handed out through e and not freed back into it (owner or pool->lock). */
void pool_tc_totals(const struct pool_tc *e, size_t *out_blocks, size_t *out_bytes,
                    size_t *cached_blocks, size_t *cached_bytes);
/* SLABCACHE_LEAKS, read once (the option's one reader for this layer); tests re-read. */
bool pool_option_leaks(void);
void pool_reset_options(void);
bool pool_is_live(const struct kmem_pool *pool);
/* Resolve a pointer to a slot of one of the pool's classes (no lock); false otherwise. */
bool pool_find_slot(struct kmem_pool *pool, const void *block, struct pool_ref *ref);
/* The large-block entry for block (pool->lock held), or NULL. */
struct pool_large *pool_large_find_locked(struct kmem_pool *pool, const void *block);
/* Free a validated block of the pool for real (no finalizer): slot or large, counters. */
void pool_release_block(struct kmem_pool *pool, void *block, const struct pool_ref *ref);
/* Sweep support: return n swept slots of class ci to their slabs (bits already cleared). */
void pool_release_slots(struct kmem_pool *pool, unsigned ci, void **blocks, size_t n,
                        size_t bytes);
/* kmem_pool_inner_free without the finalizer-context check. */
void pool_inner_free_unchecked(struct kmem_pool *pool, void *block);
/* The same for words of swept slots (slab_free_words): `blocks` slots in all. */
void pool_release_words(struct kmem_pool *pool, unsigned ci, const struct slab_word_free *v,
                        size_t n, size_t blocks);
/* Misuse report and then report_misuse(). */
void pool_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Per-slot bit helpers (relaxed unless said). */
static inline uint64_t *pool_bm(const struct slab_slot *at, unsigned k)
{
    return slab_extra_bitmap(at->cache, at->slab, k) + at->idx / 64;
}
static inline bool pool_bit(const struct slab_slot *at, unsigned k)
{
    return (__atomic_load_n(pool_bm(at, k), __ATOMIC_ACQUIRE) >> (at->idx % 64)) & 1;
}
/* The calling thread's thread cache, or NULL (gc.c resets it while a finalizer runs). */
extern __thread struct pool_tls *pool_tls_active __attribute__((tls_model("initial-exec")));
/* The calling thread's owner id (NULL before its first pool and inside finalizers). */
extern __thread const void *pool_my_id __attribute__((tls_model("initial-exec")));

/* ---------------------------------------------------------------- gc.c */
/* Thread-local callback context: the pool whose mark / intercept_free runs on this thread. */
extern __thread struct kmem_pool *pool_in_mark;
extern __thread struct kmem_pool *pool_in_finalizer;
/* Collectible bytes grew: start a collection (housekeeping thread) if past the threshold. */
void pool_gc_account(struct kmem_pool *pool, size_t blocks, size_t bytes);
/* A thread cache's pending collectible counts into the pool's (the owner, or pool->lock
 * for an unlinked one), then the threshold check. */
void pool_tc_account_flush(struct kmem_pool *pool, struct pool_tc *e);
/* Collectible blocks and bytes: the pool's counters plus what thread caches have not added
 * yet (pool->lock held / taken). */
void pool_collectible_locked(struct kmem_pool *pool, size_t *blocks, size_t *bytes);
size_t pool_collectible_bytes(struct kmem_pool *pool);
/* Run intercept_free for block on this thread (finalizer context set). */
void pool_run_finalizer(struct kmem_pool *pool, void *block);
/* Stop and join the housekeeping thread (destroy). */
void pool_gc_stop_thread(struct kmem_pool *pool);
uint64_t pool_now_ns(void);

/* ---------------------------------------------------------------- status.c */
/* Statistics of a live pool: fills *out (pool->lock taken inside). */
void pool_collect_stats(struct kmem_pool *pool, struct kmem_pool_stats *out);
/* List the live blocks of a pool being destroyed (SLABCACHE_LEAKS). */
void pool_list_live(struct kmem_pool *pool);

#endif
