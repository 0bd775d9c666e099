/* SPDX-License-Identifier: MIT */
/* pool/pool.h - independent memory pools: destroy-all, caps, mark-and-sweep collectible
 * blocks and finalizers (kmem_pool), the public API.
 *
 * A pool is a private allocator: its own size classes (private slab caches), locks,
 * statistics and housekeeping thread; pools share only the page layer.  Destroying a pool
 * frees every block still allocated in time proportional to its slabs.  Blocks allocated
 * KMEM_POOL_COLLECTIBLE are reclaimed by mark and sweep: the pool calls the program's `mark`
 * callback, which marks every block it still wants (kmem_pool_mark), and frees the others.
 * Blocks allocated KMEM_POOL_INTERCEPT_FREE are finalized through `intercept_free` instead of
 * being freed.  Long form, with the guarantees and a timeline of a collection: docs/pools.md.
 *
 *   struct kmem_pool_config cfg = {0};
 *   cfg.max_blocks = 1000;                        (0: no cap)
 *   struct kmem_pool *p = kmem_pool_create("session", &cfg);
 *   char *buf = kmem_pool_alloc(p, 4096, KM_ZERO);
 *   kmem_pool_destroy(p);                         (frees buf and everything else)
 *
 * Every function is thread-safe.  Errors: NULL/-1 with errno set (EINVAL bad arguments,
 * ENOMEM out of memory or past a cap).  Misuse (a block of another pool, a double free, the
 * free of a collectible block, inner_free outside a finalizer) is reported on stderr in a
 * line starting with "slabcache:" and refused; it never corrupts the pool.  Then abort(),
 * unless SLABCACHE_ON_ERROR=report.
 */
#ifndef SLABCACHE_POOL_POOL_H
#define SLABCACHE_POOL_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "slab/slab.h" /* KM_ZERO */

#ifdef __cplusplus
extern "C" {
#endif

struct kmem_pool;

/* ---------------------------------------------------------------- configuration */
struct kmem_pool_config {               /* zero-initialise, then set what you need */
    size_t max_blocks;                  /* cap on live blocks (MemServer); 0 = none */
    size_t max_bytes;                   /* cap on live bytes (block sizes); 0 = none */
    unsigned int flags;                 /* KMEM_POOL_* below */
    void (*mark)(struct kmem_pool *pool, void *arg);            /* marks every wanted collectible block */
    void (*intercept_free)(struct kmem_pool *pool, void *block, void *arg); /* finalizer */
    void *arg;                          /* passed to both callbacks */
    size_t gc_threshold;                /* collectible bytes that trigger the first collection; 0 = default */
    double gc_factor;                   /* next threshold = collectible bytes left after a sweep x factor; 0 = default */
};

/* Config flags. */
#define KMEM_POOL_FILL_ON_ALLOC 0x1u    /* fill new blocks with KMEM_POOL_ALLOC_PATTERN */
#define KMEM_POOL_FILL_ON_FREE 0x2u     /* fill freed blocks with KMEM_POOL_FREE_PATTERN; a
                                           block handed out again is checked for it (a write
                                           after free is reported) */
#define KMEM_POOL_CHECK_EVERY_CALL 0x4u /* kmem_pool_validate after every alloc and free
                                           (MDX CHECK_INTEGRITY_EVERY_CALL); slow */
#define KMEM_POOL_NO_THREAD 0x8u        /* no housekeeping thread: collect only in
                                           kmem_pool_collect (and kmem_pool_maybe_collect) */
#define KMEM_POOL_ALLOC_PATTERN 0xa5
#define KMEM_POOL_FREE_PATTERN 0xdd

/* Block flags: the `flags` argument of the alloc calls, with KM_ZERO (slab/slab.h), which
 * zeroes the block, and KM_NOFAIL (accepted, no effect). */
#define KMEM_POOL_COLLECTIBLE 0x100u    /* reclaimed by mark and sweep; never passed to
                                           kmem_pool_free */
#define KMEM_POOL_INTERCEPT_FREE 0x200u /* freeing calls intercept_free instead (needs the
                                           config's intercept_free) */

#define KMEM_POOL_NAME_MAX 32
#define KMEM_POOL_DEFAULT_GC_THRESHOLD ((size_t)4 << 20) /* 4 MiB of collectible blocks */
#define KMEM_POOL_DEFAULT_GC_FACTOR 4.0
/* Blocks up to this size come from the pool's size classes (slabs); larger ones, and blocks
 * aligned to more than 16 bytes, are page blocks recorded in the pool's large-block table. */
#define KMEM_POOL_SMALL_MAX 8192

/* ---------------------------------------------------------------- life */

/* A new pool.  name: copied (up to KMEM_POOL_NAME_MAX - 1 bytes); config may be NULL (all
 * defaults).  NULL with errno EINVAL (NULL or empty name, unknown config flags, a negative
 * or NaN gc_factor, or a factor in (0, 1)), ENOMEM. */
struct kmem_pool *kmem_pool_create(const char *name, const struct kmem_pool_config *config);
/* Frees every block still allocated (no finalizer runs) and the pool, in time proportional
 * to its slabs and large blocks, after stopping its housekeeping thread.  With
 * SLABCACHE_LEAKS set, first lists on stderr what was still live (count and bytes per size
 * class, first addresses).  NULL does nothing; a pool that is not live, or a call from inside
 * this pool's mark or intercept_free, is reported and refused. */
void kmem_pool_destroy(struct kmem_pool *pool);
const char *kmem_pool_name(struct kmem_pool *pool); /* NULL + EINVAL if not live */

/* ---------------------------------------------------------------- blocks */

/* A block of at least `size` bytes (0 is taken as 1), aligned to 16 bytes (8 for blocks of
 * at most 8 bytes).  NULL with errno ENOMEM (out of memory, or past a cap after a collection
 * when collectible blocks exist) or EINVAL (unknown flags, INTERCEPT_FREE without a
 * finalizer, not a live pool).  A COLLECTIBLE block from kmem_pool_alloc may be swept by a
 * collection that runs before the program stores its address where `mark` finds it: use
 * kmem_pool_alloc_to when collections can run concurrently. */
void *kmem_pool_alloc(struct kmem_pool *pool, size_t size, unsigned int flags);
/* The same, writing the block's address to *out before the block becomes visible to the
 * collector: a block whose address was written before a cycle's mark began can be swept by
 * that cycle only if mark does not mark it; one written later survives the cycle.  0, or -1
 * with errno as above (*out unchanged; EINVAL for a NULL out). */
int kmem_pool_alloc_to(struct kmem_pool *pool, size_t size, unsigned int flags, void **out);
/* align: a power of two up to 4 MiB (EINVAL otherwise). */
void *kmem_pool_alloc_aligned(struct kmem_pool *pool, size_t align, size_t size,
                              unsigned int flags);
/* n * size bytes, zeroed; ENOMEM when the product overflows. */
void *kmem_pool_calloc(struct kmem_pool *pool, size_t n, size_t size, unsigned int flags);
/* n blocks of `size` into out: all of them (returns n), or none (returns 0, errno set).
 * COLLECTIBLE blocks are visible to the collector only after their address is in out[]. */
size_t kmem_pool_alloc_bulk(struct kmem_pool *pool, size_t size, unsigned int flags, size_t n,
                            void **out);
/* Resize a block that is neither COLLECTIBLE nor INTERCEPT_FREE (EINVAL for those: nothing
 * changes): like realloc, NULL block allocates, size 0 frees and returns NULL, and on
 * ENOMEM the block is left as it was.  The block may move. */
void *kmem_pool_realloc(struct kmem_pool *pool, void *block, size_t size);
/* A copy of the string s in the pool (NULL + ENOMEM, EINVAL for NULL s). */
char *kmem_pool_strdup(struct kmem_pool *pool, const char *s);

/* Free a block of this pool.  NULL does nothing.  An INTERCEPT_FREE block is not freed:
 * intercept_free(pool, block, arg) is called instead, on this thread.  Reported and refused:
 * a COLLECTIBLE block, a block of another pool or none, a double free. */
void kmem_pool_free(struct kmem_pool *pool, void *block);
void kmem_pool_free_bulk(struct kmem_pool *pool, size_t n, void **blocks);
/* Free a block without calling its finalizer: only inside this pool's intercept_free (on
 * the thread running it), for the block being finalized or any other block of the pool,
 * collectible ones included (a master freeing its attendants).  Elsewhere: reported,
 * refused. */
void kmem_pool_inner_free(struct kmem_pool *pool, void *block);
/* The usable size of a block (its size class, or the large block's size); 0 and a report
 * for a pointer that is no live block of this pool. */
size_t kmem_pool_block_size(struct kmem_pool *pool, const void *block);

/* ---------------------------------------------------------------- collection */

/* Mark a block as wanted for the collection in progress (call from `mark`).  Marking a
 * block that is not collectible is harmless; a pointer that is no live block of this pool
 * is reported.  Lock-free for blocks of the size classes. */
void kmem_pool_mark(struct kmem_pool *pool, const void *block);
void kmem_pool_mark_bulk(struct kmem_pool *pool, size_t n, void *const *blocks);
/* Make a live block collectible (one-way; already collectible: nothing).  Lock-free for
 * blocks of the size classes.  A block made collectible during a cycle's mark survives
 * that cycle. */
void kmem_pool_make_collectible(struct kmem_pool *pool, void *block);
/* One full collection now, on the calling thread (mark, sweep, finalizers of the swept
 * INTERCEPT_FREE blocks): returns the blocks swept (unmarked collectible blocks, freed or
 * handed to their finalizer).  Waits for a collection in progress first.  From inside
 * mark or intercept_free: reported, returns 0. */
size_t kmem_pool_collect(struct kmem_pool *pool);
/* kmem_pool_collect if the collectible bytes have passed the threshold, else 0: the safe
 * point of a KMEM_POOL_NO_THREAD program. */
size_t kmem_pool_maybe_collect(struct kmem_pool *pool);

/* ---------------------------------------------------------------- checks, statistics */

/* Walk every structure of the pool (its size classes' caches and every slab with the
 * pool's bitmaps, the large-block table, every thread cache, the counters) and check every
 * invariant.  0, or -1 after reporting the first broken one.  Exact when no other thread
 * is inside the pool. */
int kmem_pool_validate(struct kmem_pool *pool);

struct kmem_pool_stats {
    char name[KMEM_POOL_NAME_MAX];
    size_t live_blocks;         /* allocated and not freed */
    size_t live_bytes;          /* their block sizes */
    size_t collectible_blocks;  /* live blocks that are collectible */
    size_t collectible_bytes;
    size_t peak_bytes;          /* highest live_bytes seen (see docs/pools.md) */
    size_t allocs, frees;       /* cumulative; swept blocks count as frees */
    size_t collections;         /* completed collections */
    size_t swept_blocks;        /* cumulative: unmarked collectible blocks found */
    size_t swept_bytes;
    size_t finalizers_run;      /* intercept_free calls, cumulative */
    size_t gc_threshold;        /* collectible bytes that start the next collection */
    uint64_t last_pause_ns;     /* duration of the last collection, mark to end of sweep */
    uint64_t max_pause_ns;
    uint64_t total_gc_ns;
    size_t alloc_failures;      /* allocations that returned NULL / -1 */
    /* beyond the contract */
    size_t large_blocks;        /* live blocks above KMEM_POOL_SMALL_MAX (or over-aligned) */
    size_t large_bytes;
    size_t slabs;               /* slabs held by the pool's size classes */
    size_t footprint_bytes;     /* slab bytes + large block bytes: memory the pool holds */
    size_t cached_blocks;       /* free blocks held in threads' caches of this pool */
    size_t size_classes_used;
    size_t max_blocks, max_bytes; /* the caps (0 = none) */
    unsigned int flags;           /* config flags */
};
/* 0, or -1 with errno EINVAL.  Exact when no thread is inside the pool. */
int kmem_pool_get_stats(struct kmem_pool *pool, struct kmem_pool_stats *out);
/* verbosity 0: one summary line; 1: and a line per size class in use; 2: and every large
 * block; 3: and every live block (address, size, flags). */
void kmem_pool_print_status(struct kmem_pool *pool, FILE *out, int verbosity);

#ifdef __cplusplus
}
#endif
#endif
