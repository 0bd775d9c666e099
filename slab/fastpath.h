/* SPDX-License-Identifier: MIT */
/* slab/fastpath.h - the inline fast paths of the slab layer and the address arithmetic they
 * share: the magazine pop and push (magazine.c has the slow halves), the popped run, and the
 * always-on free check (slab.c has the reporting half).
 *
 * Inline so the cache front (cache.c) and the kmalloc and malloc fronts make no call between
 * the public entry point and the magazine.  magazine_tls_table is never NULL: threads start
 * on an all-empty table whose entries miss on both paths.
 */
#ifndef SLABCACHE_SLAB_FASTPATH_H
#define SLABCACHE_SLAB_FASTPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "heap/heap.h"
#include "slab/types.h"

/* ---------------------------------------------------------------- slabs (slab.c) */

static inline struct slab *slab_of(const struct kmem_cache *c, const void *obj)
{
    return (struct slab *)((uintptr_t)obj & c->slab_mask);
}

/* Extra bitmap k (0 <= k < c->extra_bitmaps) of slab s: c->bitmap_words words, bit i for
 * slot i, right after the in-use bitmap. */
static inline uint64_t *slab_extra_bitmap(const struct kmem_cache *c, struct slab *s,
                                          unsigned k)
{
    return s->bitmap + (size_t)(1 + k) * c->bitmap_words;
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

/* The always-on free check, fast half: obj lies in one of our split extents (buddy
 * extents), the header at the masked address is a live slab of c, obj is exactly a slot
 * start and its bit is set.  Reads only memory known to be ours: the extent map first, and
 * the slab block lies inside the extent because extents and slabs are both naturally
 * aligned.  When it says no, slab_check_free_slow (slab.c) finds out why and reports. */
static inline bool slab_check_free_fast(struct kmem_cache *c, const void *obj)
{
#if defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    /* //slab:slab_unchecked_for_benchmarks only: what the checks cost (benchmarks/check_cost). */
    (void)c;
    (void)obj;
    return true;
#endif
    if (SLAB_LIKELY(heap_is_split_granule(obj))) {
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

/* ---------------------------------------------------------------- magazines (magazine.c) */

extern __thread struct magazine_table *magazine_tls_table
    __attribute__((tls_model("initial-exec")));

/* The calling thread's entry for c (maybe unused: then its window is NULL).  Caches without
 * magazines have their tc_off at the sentinel entry, which is never assigned. */
static inline struct magazine_entry *magazine_entry_of(const struct kmem_cache *c)
{
    return (struct magazine_entry *)((char *)magazine_tls_table + c->tc_off);
}

/* One more in a counter that only the owning thread writes and other threads only read.
 * On x86-64 a single add to memory: its store is one aligned 8-byte write, so a reader sees
 * the old or the new value (the kernel's this_cpu_inc).  Elsewhere, and under TSan (which
 * must see every access), a relaxed load and store. */
static inline void magazine_count_one(size_t *counter)
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
 * cache now) off the fast path.  No counter: allocations are derived (struct
 * magazine_entry).  A bool rather than NULL for a miss, so callers do not test the popped
 * pointer again. */
static inline __attribute__((always_inline)) bool magazine_pop(struct kmem_cache *c, void **obj)
{
    struct magazine_entry *e = magazine_entry_of(c);
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
static inline __attribute__((always_inline)) bool magazine_pop_fixed(uint32_t id, void **obj)
{
    struct magazine_entry *e = &magazine_tls_table->ent[id];
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
static inline const void *magazine_window_top(void **top)
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
 *   - a free of top[0] (magazine_push_popped) just moves top up: the run shrinks by it;
 *   - any other push writes obj at top[0] and NULL at top[1] (objs has a spare word for
 *     top == hi - 1), so the run becomes empty;
 *   - opening the window writes NULL at top[0].
 * So `*top == obj` proves that obj is an in-use slot of c, exactly what the always-on check
 * (slab_check_free_fast) establishes, unless another thread freed obj meanwhile and it went
 * back to its slab (where its bit is cleared and the slab may be released).  Every return to
 * the slabs increments cache->returns; the window records it when it opens, and the run is
 * trusted only while the two are equal.  An object freed by another thread that is still in
 * a magazine keeps its bit set and passes the full check too, so the run accepts nothing
 * the full check would refuse.  A LIFO free (a temporary freed before the next allocation of
 * its cache) then costs a compare instead of the check.  obj != NULL (the run ends at a
 * NULL). */
static inline __attribute__((always_inline)) bool
magazine_entry_push_popped(const struct kmem_cache *c, struct magazine_entry *e, const void *obj)
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
        magazine_count_one(&e->frees);
        return true;
    }
    return false;
#endif
}

/* The same for c's entry of the calling thread (c != NULL). */
static inline __attribute__((always_inline)) bool magazine_push_popped(struct kmem_cache *c,
                                                                       const void *obj)
{
    return magazine_entry_push_popped(c, magazine_entry_of(c), obj);
}

/* Push obj, which passed slab_check_free_fast(c, obj), onto the calling thread's magazine of
 * c, ending the popped run.  False when the slow path must take it: magazine full, no entry
 * yet, or obj already on top (the most common double free, caught as cheaply as glibc's
 * "fasttop" check; an object deeper in a magazine keeps its slab bit set, so the complete
 * check needs SLAB_CONSISTENCY_CHECKS, which has no magazines). */
static inline __attribute__((always_inline)) bool magazine_entry_push(struct magazine_entry *e,
                                                                      void *obj)
{
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(top != __atomic_load_n(&e->hi, __ATOMIC_RELAXED) &&
                    magazine_window_top(top) != obj)) {
        top[0] = obj;
        top[1] = NULL;
        __atomic_store_n(&e->top, top + 1, __ATOMIC_RELAXED);
        magazine_count_one(&e->frees);
        return true;
    }
    return false;
}

static inline __attribute__((always_inline)) bool magazine_push(struct kmem_cache *c, void *obj)
{
    return magazine_entry_push(magazine_entry_of(c), obj);
}

#endif
