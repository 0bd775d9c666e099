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

/* ---------------------------------------------------------------- keys, canaries, marks
 * Two per-process secrets (slab.c: slab_keys_init, before the first slab exists): one for
 * slab header canaries, one for free marks.  A caller's bug can write our metadata's bytes
 * but, without the secret, not a value we accept. */
extern uint64_t slab_keys[2];

static inline uint64_t slab_rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

/* The canary of a slab header at s owned by c with slot 0 at objs. */
static inline uint64_t slab_canary(const struct slab *s, const struct kmem_cache *c,
                                   const char *objs)
{
    return __atomic_load_n(&slab_keys[0], __ATOMIC_RELAXED) ^ (uint64_t)(uintptr_t)s ^
           slab_rotl((uint64_t)(uintptr_t)c, 21) ^ slab_rotl((uint64_t)(uintptr_t)objs, 42);
}

/* The free mark.  Every object of a cache with magazines (c->marks) that is free (cached in
 * a magazine or the depot, or back in its slab below s->touched) holds mark(obj) =
 * slab_keys[1] ^ obj in the word at c->mark_off: the object's first word, or for caches with
 * a constructor (whose free objects stay constructed) a word of its own after the object.
 * Frees write it, every handout to a caller clears it, so a free that finds it is a double
 * free, wherever the first copy went: deep in this or another thread's magazine, in the
 * depot, back in the slab.  The key's low nibble is 5, so the mark's low byte is never 0 for
 * 8-aligned objects (a just-allocated object reads 0 there). */
static inline uint64_t slab_mark_value(const void *obj)
{
    return __atomic_load_n(&slab_keys[1], __ATOMIC_RELAXED) ^ (uint64_t)(uintptr_t)obj;
}

static inline uint64_t *slab_mark_word(const struct kmem_cache *c, const void *obj)
{
    return (uint64_t *)((uintptr_t)obj + c->mark_off);
}

/* Relaxed atomics: a racing double free in another thread may write the same word. */
static inline bool slab_mark_is_set(const struct kmem_cache *c, const void *obj)
{
    return __atomic_load_n(slab_mark_word(c, obj), __ATOMIC_RELAXED) == slab_mark_value(obj);
}

static inline void slab_mark_set(const struct kmem_cache *c, const void *obj)
{
#if !defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    __atomic_store_n(slab_mark_word(c, obj), slab_mark_value(obj), __ATOMIC_RELAXED);
#else
    (void)c;
    (void)obj;
#endif
}

/* A handout to a caller (c->marks): the object is no longer free. */
static inline void slab_mark_clear(const struct kmem_cache *c, void *obj)
{
#if !defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    __atomic_store_n(slab_mark_word(c, obj), 0, __ATOMIC_RELAXED);
#else
    (void)c;
    (void)obj;
#endif
}

/* The cache that owns the slab whose header is at s, when the header's canary vouches for
 * it; NULL for anything else (a damaged header, a block that is not a slab).  s must be
 * memory we own and may read (a block of one of our split extents). */
static inline struct kmem_cache *slab_owner(const struct slab *s)
{
    struct kmem_cache *c = __atomic_load_n(&s->cache, __ATOMIC_RELAXED);
    const char *objs = __atomic_load_n(&s->objs, __ATOMIC_RELAXED);
    if (c && __atomic_load_n(&s->canary, __ATOMIC_RELAXED) == slab_canary(s, c, objs))
        return c;
    return NULL;
}

/* The always-on free check, fast half.  True when obj may be freed to c:
 *   - obj lies in one of our split (buddy) extents: one bit (heap_is_split_granule), so the
 *     header at the masked address is mapped memory we own;
 *   - that header's canary says it is a live slab of c with slot 0 at the objs it holds;
 *   - obj is exactly a slot start (one multiply, slab_slot_index) of a slot that has been
 *     handed out at least once (below s->touched);
 *   - obj does not hold its free mark: it was not freed since it was last handed out.
 * Reads the header's first line and the object's mark word, nothing shared-and-written: the
 * in-use bitmap, which refills and returns under cache->lock keep rewriting, is not read
 * here for caches with marks.  Caches without them (no magazines: debug options, live caps,
 * SLAB_NO_MAGAZINE) read the slot's in-use bit instead.  When it says no,
 * slab_check_free_slow (slab.c) finds out why and reports. */
static inline bool slab_check_free_fast(struct kmem_cache *c, const void *obj)
{
#if defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
    /* //slab:slab_unchecked_for_benchmarks only: what the checks cost (benchmarks/check_cost). */
    (void)c;
    (void)obj;
    return true;
#endif
    if (SLAB_LIKELY(heap_is_split_granule(obj))) {
        const struct slab *s = slab_of(c, obj);
        const char *objs = __atomic_load_n(&s->objs, __ATOMIC_RELAXED);
        if (SLAB_LIKELY(__atomic_load_n(&s->canary, __ATOMIC_RELAXED) ==
                        slab_canary(s, c, objs))) {
            uint64_t off = (uint64_t)((uintptr_t)obj - (uintptr_t)objs);
            unsigned __int128 prod = (unsigned __int128)off * c->recip;
            uint64_t idx = (uint64_t)(prod >> 64);
            if (SLAB_UNLIKELY(idx >= __atomic_load_n(&s->touched, __ATOMIC_RELAXED) ||
                              idx >= c->objs_per_slab || (uint64_t)prod >= c->recip))
                return false;
            if (SLAB_LIKELY(c->marks))
                return !slab_mark_is_set(c, obj);
            /* No magazines, no marks: the in-use bit says whether the slot is free. */
            return (__atomic_load_n(&s->bitmap[idx / 64], __ATOMIC_RELAXED) >> (idx % 64)) & 1;
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
        slab_mark_clear(c, *obj);
        return true;
    }
    return false;
}

/* Pop from the calling thread's entry `id`, a fixed id (SLAB_FIXED_IDS): only the cache
 * created with that id ever uses the entry, so no cache compare is needed; an unused entry
 * has an empty window (top == lo) and misses.  Fixed ids are the kmalloc classes, which have
 * no constructor: their free mark is the object's first word (cache_create_fixed_id checks). */
static inline __attribute__((always_inline)) bool magazine_pop_fixed(uint32_t id, void **obj)
{
    struct magazine_entry *e = &magazine_tls_table->ent[id];
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(top != __atomic_load_n(&e->lo, __ATOMIC_RELAXED))) {
        __atomic_store_n(&e->top, top - 1, __ATOMIC_RELAXED);
        *obj = top[-1];
#if !defined(SLABCACHE_UNCHECKED_FREE_FOR_BENCHMARKS)
        __atomic_store_n((uint64_t *)*obj, 0, __ATOMIC_RELAXED);
#endif
        return true;
    }
    return false;
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
 * So `*top == obj` proves what the header half of the always-on check establishes (obj is a
 * slot of c that was handed out), unless obj went back to its slab since, freed by another
 * thread (its slab may even be released): every return to the slabs increments
 * cache->returns, the window records it when it opens, and the run is trusted only while
 * the two are equal.  What the run cannot prove is that no other thread freed obj since it
 * was popped here (a double free across threads, the first copy still cached): the free
 * mark says it, and a LIFO free reads only its low byte, which is where the program's
 * latest store to the object most likely went (a wider load of a word the program has just
 * written in part would wait for the store to reach the cache).  A low byte that matches
 * sends the free to the complete check, which compares the whole mark.  A LIFO free (a
 * temporary freed before the next allocation of its cache) then costs two compares, the
 * byte and the mark store, instead of the check.  obj != NULL (the run ends at a NULL). */
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
        uint64_t mark = slab_mark_value(obj);
        uint64_t *word = slab_mark_word(c, obj);
        if (SLAB_LIKELY(__atomic_load_n((const uint8_t *)word, __ATOMIC_RELAXED) !=
                        (uint8_t)mark)) {
            __atomic_store_n(word, mark, __ATOMIC_RELAXED);
            __atomic_store_n(&e->top, top + 1, __ATOMIC_RELAXED);
            magazine_count_one(&e->frees);
            return true;
        }
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
 * c, marking it free and ending the popped run.  False when the slow path must take it:
 * magazine full or no entry yet (caches without magazines point at the sentinel entry,
 * whose window is empty). */
static inline __attribute__((always_inline)) bool
magazine_entry_push(const struct kmem_cache *c, struct magazine_entry *e, void *obj)
{
    void **top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
    if (SLAB_LIKELY(top != __atomic_load_n(&e->hi, __ATOMIC_RELAXED))) {
        slab_mark_set(c, obj);
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
    return magazine_entry_push(c, magazine_entry_of(c), obj);
}

#endif
