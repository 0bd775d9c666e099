/* SPDX-License-Identifier: MIT */
/* slab/kmalloc_internal.h - kmalloc internals shared by kmalloc.c, malloc.c and the tests.
 *
 * Not part of the public API (the .so does not export these names).  The class geometry is
 * described at the top of slab/kmalloc.c.
 */
#ifndef SLABCACHE_SLAB_KMALLOC_INTERNAL_H
#define SLABCACHE_SLAB_KMALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slab/kmalloc.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `caller` arguments: the program's call site, recorded by debug caches (SLAB_STORE_USER);
 * entry points pass __builtin_return_address(0). */

#define KMALLOC_NR_CLASSES 83u                    /* kmalloc-8 .. kmalloc-32768 */
#define KMALLOC_MAX_CACHE_SIZE ((size_t)32768)    /* largest size served by a class */
#define KMALLOC_TABLE_MAX 1024u                   /* byte-table class lookup up to here */
/* An internal allocation flag beside KM_ZERO: zero only the bytes asked for (calloc).
 * Without it a KM_ZERO large block is zeroed whole, as the kernel's kzalloc (see
 * kmalloc_realloc). */
#define KMALLOC_ZERO_ASKED 0x80000000u
/* Another: a large block that realloc moves to grow, placed with room to grow in place again
 * (twice its pages when such a stretch is free: buddy_alloc_run_room). */
#define KMALLOC_GROWING 0x40000000u

/* The class caches, each NULL until its class is first used (kmalloc_class_cache). */
extern struct kmem_cache *kmalloc_caches[KMALLOC_NR_CLASSES];

/* Build the class tables (idempotent, thread-safe, re-entrant from its own thread).  The
 * caches themselves are created lazily, by the first allocation of each class. */
void kmalloc_init(void);
bool kmalloc_ready(void);
/* The cache of class `index`, created now if needed (NULL before kmalloc_init has finished,
 * or when creation failed: the class is then served as large blocks). */
struct kmem_cache *kmalloc_class_cache(unsigned index);
/* Class index for 0 <= size <= KMALLOC_MAX_CACHE_SIZE, and the size of a class. */
unsigned kmalloc_class_index(size_t size);
size_t kmalloc_class_size(unsigned index);

/* Everything off the fast path: init, alignment > 8, large blocks. */
void *kmalloc_slow(size_t size, size_t align, unsigned int flags, const void *caller);
/* kfree / malloc_usable_size with the operation named in reports. */
void kmalloc_free_op(void *p, const char *op, const void *caller);
size_t kmalloc_usable_size_op(const void *p, const char *op);
/* realloc core; malloc_classes = true keeps results 16-byte aligned (malloc semantics); op
 * is the entry point the program called (realloc, reallocarray, krealloc), for reports. */
void *kmalloc_realloc(void *p, size_t size, unsigned int flags, bool malloc_classes,
                      const char *op, const void *caller);
/* malloc semantics: 16-byte aligned results, malloc(0) = a unique 16-byte block. */
void *kmalloc_for_malloc(size_t size, unsigned int flags, const void *caller);
void *kmalloc_for_malloc_aligned(size_t align, size_t size, const void *caller);

/* ---------------------------------------------------------------- inline fast paths
 * malloc and free inline these: one class-table load and the magazine pop, or the hinted
 * cache, the always-on check and the magazine push, with no call in between. */

/* malloc's class for 0 <= size <= KMALLOC_TABLE_MAX: kmalloc_index16[(size + 15) / 16],
 * the class of the size rounded up to 16 (16 for size 0).  A constant table, so it is right
 * before initialisation too (kmalloc_caches[] is NULL until then). */
extern const uint8_t kmalloc_index16[KMALLOC_TABLE_MAX / 16 + 1];

/* Per-thread hints for free: the last slab freed into for each of KMALLOC_HINTS address
 * buckets (p >> 16, 64 KiB each: together 64 MiB of slabs), in the thread's magazine table
 * (slab/types.h).  A hit names the cache without the page-map walk (granule bit, radix root,
 * leaf, extent, page entry, header: dependent loads).  A thread of a server that holds
 * thousands of blocks of a few dozen classes touches some fifty slabs, so the table is large
 * (16 KiB, touched only where the thread frees).  The hint is only a guess:
 * slab_check_free_fast validates p against the hinted cache (the complete always-on check;
 * its canary test is the hint's validity test), and a slab released and reused since fails
 * it and takes the full path.  Only the size-class caches are hinted: they are never
 * destroyed, so a stale hint names a live cache. */
static inline struct kmalloc_hint *kmalloc_hint_for(const void *p)
{
    return &magazine_tls_table->hints[((uintptr_t)p >> 16) % KMALLOC_HINTS];
}

/* The hinted cache of p when p is a live slot of it (the complete always-on check), else
 * NULL. */
static inline __attribute__((always_inline)) struct kmem_cache *kmalloc_hint_check(const void *p)
{
    const struct kmalloc_hint *h = kmalloc_hint_for(p);
    struct kmem_cache *c = h->cache;
    if (SLAB_LIKELY(c != NULL && ((uintptr_t)p & c->slab_mask) == h->slab &&
                    slab_check_free_fast(c, p)))
        return c;
    return NULL;
}

/* malloc without the call: the 16-byte-multiple classes up to KMALLOC_TABLE_MAX. */
static inline __attribute__((always_inline)) void *kmalloc_for_malloc_inline(size_t size,
                                                                          const void *caller)
{
    if (SLAB_LIKELY(size <= KMALLOC_TABLE_MAX)) {
        /* Class i's cache has magazine table id i (cache_create_fixed_id): the entry
         * comes from the index alone.  Before the class's cache exists, or when it has no
         * magazines (debug), the entry's window is empty and kmalloc_for_malloc takes over. */
        void *obj;
        if (SLAB_LIKELY(magazine_pop_fixed(kmalloc_index16[(size + 15) / 16], &obj)))
            return obj;
    }
    return kmalloc_for_malloc(size, 0, caller);
}

/* ksize / malloc_usable_size: the hinted cache's object size when p passes its check (a
 * live slot; some programs ask for every block they allocate and free), else the page-map
 * walk, which records the hint, handles large blocks, the size asked for in debug classes
 * with Z (never hinted), and reports bad pointers (interior, freed, foreign: 0). */
static inline size_t kmalloc_usable_size_inline(const void *p, const char *op)
{
    struct kmem_cache *c = kmalloc_hint_check(p);
    return SLAB_LIKELY(c != NULL) ? c->object_size : kmalloc_usable_size_op(p, op);
}

/* kfree / free after the hint missed: NULL, the page-map walk, large blocks, reports. */
void kmalloc_free_lookup(void *p, const char *op, const void *caller);

/* kfree / free: the hinted cache's popped run, else the hinted cache checked and pushed;
 * everything else out of line. */
static inline __attribute__((always_inline)) void kmalloc_free_inline(void *p, const char *op,
                                                                      const void *caller)
{
    /* The block this thread allocated last from the hinted class (a LIFO free) needs no
     * check: magazine_push_popped. */
    struct kmem_cache *hc = kmalloc_hint_for(p)->cache;
    if (SLAB_LIKELY(p != NULL && hc != NULL) && SLAB_LIKELY(magazine_push_popped(hc, p)))
        return;
    struct kmem_cache *c = kmalloc_hint_check(p);
    if (SLAB_LIKELY(c != NULL)) {
        if (SLAB_UNLIKELY(!magazine_push(c, p)))
            magazine_free_slow(c, p, caller);
        return;
    }
    kmalloc_free_lookup(p, op, caller);
}

#ifdef __cplusplus
}
#endif
#endif
