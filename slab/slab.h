/* SPDX-License-Identifier: MIT */
/* slab/slab.h - slabcache object caches (kmem_cache), the public API.
 *
 * Typed caches of fixed-size objects in the style of the Linux kernel's kmem_cache and
 * Bonwick's slab allocator: bitmap-headed multi-page slabs from the buddy layer, object
 * caching with constructors and destructors, per-thread magazines with a depot, statistics
 * in /proc/slabinfo form.  Long-form documentation: docs/api.md; design: docs/design.md.
 *
 *   struct inode { ... };
 *   struct kmem_cache *ic = KMEM_CACHE(inode, SLAB_HWCACHE_ALIGN);
 *   struct inode *i = kmem_cache_alloc(ic, 0);
 *   kmem_cache_free(ic, i);
 *   kmem_cache_destroy(ic);
 *
 * Every function is thread-safe.  Errors: NULL/-1 with errno set; misuse (double free, a
 * pointer from elsewhere, the wrong cache) is reported on stderr in a line starting with
 * "slabcache:" and never corrupts the allocator.
 */
#ifndef SLABCACHE_SLAB_SLAB_H
#define SLABCACHE_SLAB_SLAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kmem_cache;

/* ---------------------------------------------------------------- cache flags */
#define SLAB_HWCACHE_ALIGN 0x00002000u /* align slots to the cache line (64 bytes) */
#define SLAB_POISON 0x00000800u        /* fill free objects with 0x6b, check on alloc */
#define SLAB_RED_ZONE 0x00000400u      /* guard bytes after each object, checked on free */
#define SLAB_STORE_USER 0x00010000u    /* record alloc/free call sites, thread and time */
#define SLAB_PANIC 0x00040000u         /* abort() if kmem_cache_create fails */
#define SLAB_NO_MAGAZINE 0x00100000u   /* no per-thread caching: every op goes to the slabs */
#define SLAB_CONSISTENCY_CHECKS 0x00000100u /* full sanity checks on every operation */

/* Allocation flags (the `flags` of kmem_cache_alloc and friends). */
#define KM_ZERO 0x1u     /* zero the object (what kmem_cache_zalloc does) */
#define KM_NOFAIL 0x2u   /* reserved; accepted */

/* ---------------------------------------------------------------- creation */

/* Arguments for kmem_cache_create_args (zero-initialise, then set what you need). */
struct kmem_cache_args {
    size_t align;                             /* power of two; 0 = default (8) */
    void (*ctor)(void *obj, void *arg);       /* run once per slot when its slab is made */
    void (*dtor)(void *obj, void *arg);       /* run once per slot when its slab is freed */
    void *arg;                                /* passed to ctor and dtor */
    size_t max_objects;                       /* cap on live objects; 0 = none (ENOMEM past) */
    unsigned int magazine_size;               /* objects per magazine; 0 = chosen by size;
                                                 at most KMEM_CACHE_MAX_MAGAZINE_SIZE */
    unsigned int max_empty_slabs;             /* empty slabs kept; 0 = default (4) */
};

/* Create a cache of `size`-byte objects.  name: copied (up to KMEM_CACHE_NAME_MAX-1
 * bytes); align: 0 or a power of two; ctor: may be NULL.  NULL with errno EINVAL for a NULL
 * or empty name, a name with a blank or control character (slabinfo's columns are
 * separated by blanks), size 0 or > KMEM_CACHE_MAX_SIZE, a bad alignment, unknown flags or
 * a magazine_size above KMEM_CACHE_MAX_MAGAZINE_SIZE; ENOMEM when out of memory.  With
 * SLAB_PANIC, failure aborts instead. */
struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
                                     unsigned int flags, void (*ctor)(void *obj));
struct kmem_cache *kmem_cache_create_args(const char *name, size_t size,
                                          const struct kmem_cache_args *args, unsigned int flags);
/* A cache for `struct struct_name`, named after it, sized and aligned by the type. */
#define KMEM_CACHE(struct_name, flags)                                                     \
    kmem_cache_create(#struct_name, sizeof(struct struct_name),                            \
                      __alignof__(struct struct_name), (flags), NULL)

#define KMEM_CACHE_NAME_MAX 32
#define KMEM_CACHE_MAX_SIZE ((size_t)1 << 20) /* largest object size: 1 MiB */
/* Largest kmem_cache_args.magazine_size: a magazine of it is 8 KiB of pointers, and a
 * thread holds two per cache (the defaults are 8 to 64 objects). */
#define KMEM_CACHE_MAX_MAGAZINE_SIZE 1024u

/* Destroy: live objects are reported on stderr (name, count, first addresses), then all
 * of the cache's memory is released anyway.  NULL does nothing. */
void kmem_cache_destroy(struct kmem_cache *cache);

/* ---------------------------------------------------------------- objects */

void *kmem_cache_alloc(struct kmem_cache *cache, unsigned int flags); /* NULL + ENOMEM */
void *kmem_cache_zalloc(struct kmem_cache *cache, unsigned int flags);
void kmem_cache_free(struct kmem_cache *cache, void *obj); /* NULL obj does nothing */
/* Allocate nr objects into objs; returns how many (all, or 0 with nothing allocated). */
size_t kmem_cache_alloc_bulk(struct kmem_cache *cache, unsigned int flags, size_t nr,
                             void **objs);
void kmem_cache_free_bulk(struct kmem_cache *cache, size_t nr, void **objs);

/* Drain the depot and the calling thread's magazines, return every empty slab to the buddy
 * layer, and let the buddy layer give wholly free extents back to the OS (buddy_trim).
 * 0 on success, -1 with errno EINVAL for a NULL cache. */
int kmem_cache_shrink(struct kmem_cache *cache);
/* kmem_cache_shrink of every cache at once (the same shrink: the calling thread's magazines,
 * every depot, every empty slab), then every free page purged and every wholly free extent
 * given back (buddy_trim).  Returns the bytes given back to the OS (purged or unmapped);
 * 0 when there was nothing to give.  malloc_trim(0) is slabcache_reap() != 0.  Destructors
 * that run from it must not create or destroy a cache. */
size_t slabcache_reap(void);
/* Flush the calling thread's magazines of every cache (MDX's uncacheThread); call it before
 * a thread exits if it cannot wait for the pthread key destructor. */
void kmem_cache_thread_flush(void);

unsigned int kmem_cache_size(struct kmem_cache *cache); /* the object size asked for */
const char *kmem_cache_name(struct kmem_cache *cache);

/* ---------------------------------------------------------------- statistics */

struct kmem_cache_stats {
    char name[KMEM_CACHE_NAME_MAX];
    size_t object_size;      /* size asked for */
    size_t slot_size;        /* object size rounded up to the alignment (plus debug bytes) */
    size_t align;            /* slot alignment */
    size_t objects_per_slab;
    size_t pages_per_slab;
    size_t active_objects;   /* held by callers */
    size_t total_objects;    /* slots in all slabs */
    size_t active_slabs;     /* slabs with at least one object held or cached */
    size_t total_slabs;
    size_t empty_slabs;      /* slabs with no object in use, kept for reuse */
    size_t cached_objects;   /* freed, but held in per-thread magazines or the depot */
    size_t allocs;           /* successful allocations, cumulative */
    size_t frees;            /* frees, cumulative */
    size_t slabs_created;
    size_t slabs_freed;
    size_t alloc_failures;
    size_t magazine_size;    /* objects per magazine (0: no magazines) */
    size_t depot_full, depot_empty; /* magazines in the depot */
    size_t ctor_calls, dtor_calls;
    size_t invalid_frees;    /* frees refused (double, invalid, wrong cache) */
    unsigned int flags;
};
/* 0 on success, -1 with errno EINVAL for NULL arguments.  Exact when no thread is inside
 * the allocator for this cache. */
int kmem_cache_get_stats(struct kmem_cache *cache, struct kmem_cache_stats *out);
/* Every cache in /proc/slabinfo version 2.1 format. */
void kmem_cache_print_slabinfo(FILE *out);
/* Every cache's stats as one JSON object {"caches":[{...},...]}. */
void kmem_cache_print_json(FILE *out);
/* Call fn for every live cache (under the cache-list lock: fn must not create or destroy
 * caches). */
void kmem_cache_for_each(void (*fn)(struct kmem_cache *cache, void *arg), void *arg);

/* ---------------------------------------------------------------- process state
 * The memory manager's state (FastMM's GetMemoryManagerState): a row per size class (every
 * kmem_cache, the kmalloc classes included) and per block size of large and huge blocks, and
 * the process totals.  Long form: docs/observability.md. */

#define SLABCACHE_STATE_MAX_CLASSES 280 /* cache rows beyond this are summed in the totals */

enum slabcache_class_kind {
    SLABCACHE_CLASS_CACHE = 0, /* a kmem_cache: small objects in slabs */
    SLABCACHE_CLASS_LARGE = 1, /* buddy blocks of one size (4 KiB .. 4 MiB) for kmalloc */
    SLABCACHE_CLASS_HUGE = 2,  /* dedicated mappings above 4 MiB (all sizes in one row) */
};

struct slabcache_class_state {
    char name[KMEM_CACHE_NAME_MAX]; /* cache name, "large-64K", "huge" */
    unsigned int kind;        /* enum slabcache_class_kind */
    size_t object_size;       /* object size; block size for large rows; 0 for huge */
    size_t slot_size;         /* bytes a block takes in its slab (caches), else as above */
    size_t blocks_in_use;     /* held by callers */
    size_t bytes_in_use;      /* blocks_in_use * object_size (huge: their sizes) */
    size_t blocks_cached;     /* freed, kept in magazines and depots (caches only) */
    size_t bytes_cached;      /* blocks_cached * slot_size */
    size_t bytes_reserved;    /* slabs of the cache; the blocks themselves (large, huge) */
    size_t slabs;             /* caches only */
    size_t allocs, frees;     /* cumulative (caches only) */
    double efficiency;        /* percent: bytes_in_use / bytes_reserved (0 when nothing) */
};

/* The process totals.  heap_bytes = in_use_bytes + cached_bytes + slab_free_bytes +
 * free_bytes (up to blocks of buddy_alloc's own users, and races). */
struct slabcache_totals {
    size_t heap_bytes;        /* held from the OS for blocks: sbrk_bytes + mmap_bytes */
    size_t sbrk_bytes;        /* from the program break (with alignment padding) */
    size_t mmap_bytes;        /* mapped (fallback extents, huge blocks) */
    size_t metadata_bytes;    /* mapped for the allocator's own records */
    size_t in_use_bytes;      /* held by callers: objects, large and huge blocks */
    size_t cached_bytes;      /* freed objects kept in magazines and depots */
    size_t slab_free_bytes;   /* the rest of the slabs: free slots, headers, leftovers */
    size_t free_bytes;        /* held from the OS but in no block: free buddy blocks, kept
                                 extents */
    size_t returned_bytes;    /* cumulative: given back to the OS (trimmed, unmapped, purged) */
    size_t rss_bytes;         /* the process's resident set (/proc/self/statm); 0: unknown */
    double efficiency;        /* percent: in_use_bytes / heap_bytes */
    size_t caches;            /* live caches (may exceed the rows filled) */
};

struct slabcache_state {
    struct slabcache_totals totals;
    size_t nr_classes;        /* rows filled in classes[]: caches, then large, then huge */
    struct slabcache_class_state classes[SLABCACHE_STATE_MAX_CLASSES];
};
/* Fill *out (about 40 KB: give it static or heap storage in threads with small stacks).
 * 0, or -1 with errno EINVAL for NULL.  Exact when no thread is inside the allocator. */
int slabcache_get_state(struct slabcache_state *out);

/* The state as text (MDX's dumpPoolStatus), by verbosity:
 *   0  one line: heap, in use, cached, free, metadata, RSS
 *   1  + a row per class with blocks or allocations, large and huge rows (SLABCACHE_STATS=1)
 *   2  + every class, the buddy and heap counters
 *   3  + the heap map: every extent, slab and block (slabcache_heap_map)
 *   4  + every live block with its size and kind (MemServer's close listing)
 * No allocator lock is held while stdio runs. */
void slabcache_print_status(FILE *out, int verbosity);

/* ---------------------------------------------------------------- checks */

/* Walk every slab, list and bitmap of the cache and check every invariant (counts, list
 * membership, bitmap vs in-use count, magazines hold only in-use slots of this cache, no
 * object cached twice in the depot or the calling thread's magazines: a double free).
 * 0, or -1 after writing the first broken invariant to stderr. */
int kmem_cache_validate(struct kmem_cache *cache);
/* Every cache, then the buddy and heap layers. */
int slabcache_validate(void);

/* ---------------------------------------------------------------- debugging
 * Long form, with real reports and how to read them: docs/debugging.md.  Environment:
 *   SLABCACHE_DEBUG=FZPUT[,cache,...]  per-cache debug options (slub_debug syntax)
 *   SLABCACHE_FAIL=every=N|prob=P[,seed=S][,cache=NAME]  fault injection
 *   SLABCACHE_LEAKS=1|reachable|all[,exit]  leak report at exit (exit: status 23, or
 *                                      SLABCACHE_LEAK_EXIT_CODE, when blocks were lost)
 *   SLABCACHE_ON_ERROR=report          continue after a misuse report instead of abort()
 *   SLABCACHE_STATS=1|json, SLABCACHE_LOG=PATH, SLABCACHE_WATCH=interval[,file=PATH]:
 *                                      docs/observability.md */

/* Leak kinds, by reachability at the time of the report (valgrind's and LeakSanitizer's). */
#define SLABCACHE_LEAK_DEFINITE 0x1u  /* nothing points into the block */
#define SLABCACHE_LEAK_INDIRECT 0x2u  /* only other lost blocks point into it */
#define SLABCACHE_LEAK_REACHABLE 0x4u /* a root (globals, the stack) or a reachable block does */
#define SLABCACHE_LEAK_LIST 0x8u      /* also list every live block with its size and state */
/* Report the blocks of the given kinds on the report descriptor (stderr, or SLABCACHE_LOG),
 * grouped by state and by allocation site (caches with SLAB_STORE_USER / U), cache, or
 * large-block size, largest groups first, with counts, bytes and first addresses.  Every
 * kind of block counts: objects of every cache, large blocks and huge mappings.  Roots are
 * the writable data of every loaded module and the calling thread's stack, registers and
 * TLS; other threads' stacks are not scanned.  Objects cached in magazines are free, and
 * registered expected leaks are left out.  Prints nothing when no block of the kinds asked
 * for exists.  Returns the number of lost (definitely + indirectly) blocks. */
size_t slabcache_leak_report_kinds(unsigned kinds);
/* slabcache_leak_report_kinds(SLABCACHE_LEAK_DEFINITE | SLABCACHE_LEAK_INDIRECT). */
size_t slabcache_leak_report(void);
/* Keep p (an object start) out of leak reports (FastMM's RegisterExpectedMemoryLeak).
 * Up to SLABCACHE_EXPECTED_LEAKS_MAX pointers; past that the call is reported and ignored. */
void slabcache_register_expected_leak(const void *p);
void slabcache_unregister_expected_leak(const void *p);
#define SLABCACHE_EXPECTED_LEAKS_MAX 4096

/* A map of the heap (FastMM's GetMemoryMap): every extent, buddy block and slab with its
 * cache and use, as text; as an SVG picture with one cell per 4 KiB page coloured by use
 * (free, slab of a cache, large block, metadata); hex + ASCII dump of len bytes at p. */
void slabcache_heap_map(FILE *out);
void slabcache_heap_map_svg(FILE *out);
void slabcache_dump(FILE *out, const void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
