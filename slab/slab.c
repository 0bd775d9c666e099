/* SPDX-License-Identifier: MIT */
/* slab/slab.c - the slabs of a kmem_cache: bitmap-headed multi-page blocks.
 *
 * Design (long form in docs/design.md, structures and invariants in types.h):
 *
 * A cache hands out fixed-size slots carved from slabs.  A slab is one naturally aligned
 * buddy block of 2^order pages whose first bytes are a header (owner cache, counters, list
 * links) followed by a bitmap with one bit per slot (1 = in use); the slots follow, shifted by
 * a per-slab colour offset so equal-index objects of different slabs fall on different cache
 * lines (Bonwick's colouring, using the bytes that would be wasted at the end anyway).
 *
 * A cache created with extra bitmaps (cache_create_with_bitmaps) has them right after the
 * in-use bitmap, each as long as it; this file zeroes them when a slab is made, counts them in
 * the geometry and checks their padding bits, and never reads them otherwise.
 *
 * Because the block is aligned to its size, the slab of an object is `obj & slab_mask`: O(1)
 * and no search.  The slot index is `(obj - objs) / slot_size`, computed with a reciprocal
 * multiply; a free checks that the pointer is a slot boundary and that its bit is set, which
 * catches double frees of objects that went back to their slab and interior pointers.
 *
 * Slab states (cache->lock):
 *   | list    | marked by                 | alloc takes from it | on free              |
 *   |---------|---------------------------|---------------------|----------------------|
 *   | full    | inuse == objs_per_slab    | never               | -> partial           |
 *   | partial | 0 < inuse < objs_per_slab | first               | -> empty when 0      |
 *   | empty   | inuse == 0                | when no partial     | beyond max_empty: to |
 *   |         |                           |                     | the buddy layer      |
 * Per-thread magazines and the depot (magazine.c) sit above this: an object in a magazine
 * keeps its bit set, so "in use" at this layer means "held by a caller or cached".
 *
 * Object caching: constructors run once per slot when a slab is created; callers free objects
 * in their constructed state; destructors run once per slot when a slab goes back to the buddy
 * layer.  So ctor_calls == slabs_created * objs_per_slab.
 *
 * Slab geometry: for each order the number of slots n that fit after the header and bitmaps
 * is computed; the cache takes the smallest order whose slot efficiency (n * slot / slab
 * bytes) is within SLAB_EFFICIENCY_SLACK of the best order up to SLAB_PREFERRED_MAX_ORDER
 * (going higher only while fewer than SLAB_MIN_OBJECTS fit): a larger slab wastes less of
 * its end, and pages no object has reached are never touched.
 *
 * Locks: cache->lock protects the three lists, every header and bitmap of the cache's slabs,
 * colour_next and the slow counters; functions named *_locked assert it in debug builds,
 * and the slow paths assert the slab invariants they rely on.  Slabs are made and released
 * outside it (the buddy layer has its own lock); constructors and destructors run with no
 * lock held.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "buddy/buddy.h"
#include "heap/fmt.h"
#include "slab/debug.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#define SLAB_EFFICIENCY_SLACK 0.001

#define slab_assert_locked(c) heap_mutex_assert_held(&(c)->lock)

/* ---------------------------------------------------------------- geometry */

static inline size_t align_up(size_t x, size_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* The header of a slab of nobjs slots with `bitmaps` bitmaps (the in-use one and the extra
 * ones), each a word per 64 slots. */
static inline size_t header_bytes(size_t nobjs, size_t bitmaps)
{
    return sizeof(struct slab) + bitmaps * ((nobjs + 63) / 64) * sizeof(uint64_t);
}

/* Slots of `slot` bytes (aligned to align) that fit in a slab of `bytes` after the header. */
static size_t slots_that_fit(size_t bytes, size_t slot, size_t align, size_t bitmaps)
{
    if (bytes <= sizeof(struct slab) + bitmaps * sizeof(uint64_t))
        return 0;
    size_t n = (bytes - sizeof(struct slab) - bitmaps * sizeof(uint64_t)) / slot;
    while (n && align_up(header_bytes(n, bitmaps), align) + n * slot > bytes)
        n--;
    return n;
}

int slab_compute_geometry(struct kmem_cache *c)
{
    const size_t slot = c->slot_size, align = c->align, bitmaps = 1 + (size_t)c->extra_bitmaps;
    double eff[BUDDY_MAX_ORDER + 1] = {0};
    double best = 0;
    unsigned last = 0;
    for (unsigned order = 0; order <= BUDDY_MAX_ORDER; order++) {
        size_t bytes = BUDDY_PAGE_SIZE << order;
        size_t n = slots_that_fit(bytes, slot, align, bitmaps);
        if (order > SLAB_PREFERRED_MAX_ORDER && order > 0 &&
            slots_that_fit(BUDDY_PAGE_SIZE << (order - 1), slot, align, bitmaps) >=
                SLAB_MIN_OBJECTS)
            break;
        eff[order] = (double)(n * slot) / (double)bytes;
        if (eff[order] > best)
            best = eff[order];
        last = order;
    }
    if (best <= 0)
        return -1;
    unsigned order = 0;
    while (order < last && eff[order] < best - SLAB_EFFICIENCY_SLACK)
        order++;
    size_t bytes = BUDDY_PAGE_SIZE << order;
    size_t n = slots_that_fit(bytes, slot, align, bitmaps);
    c->slab_order = order;
    c->slab_bytes = bytes;
    c->slab_mask = ~(uintptr_t)(bytes - 1);
    c->objs_per_slab = (uint32_t)n;
    c->bitmap_words = (uint32_t)((n + 63) / 64);
    c->objs_offset = (uint32_t)align_up(header_bytes(n, bitmaps), align);
    c->colour_step = (uint32_t)(align > SLAB_CACHELINE ? align : SLAB_CACHELINE);
    size_t leftover = bytes - c->objs_offset - n * slot;
    c->colour_max = (uint32_t)(leftover / c->colour_step * c->colour_step);
    /* ceil(2^64 / slot) (slot >= SLAB_DEFAULT_ALIGN, so it fits); exact quotients and
     * divisibility for offsets below 2^32, and a slab is at most 4 MiB. */
    _Static_assert((BUDDY_PAGE_SIZE << BUDDY_MAX_ORDER) <= ((size_t)1 << 32),
                   "slab_slot_index needs slab offsets below 2^32");
    c->recip = UINT64_MAX / slot + 1;
    return 0;
}

/* ---------------------------------------------------------------- lists (cache->lock) */

static struct slab_list_head *list_of(struct kmem_cache *c, uint8_t which)
{
    switch (which) {
    case SLAB_LIST_FULL:
        return &c->full;
    case SLAB_LIST_PARTIAL:
        return &c->partial;
    default:
        return &c->empty;
    }
}

static void list_del_locked(struct kmem_cache *c, struct slab *s)
{
    slab_assert_locked(c);
    struct slab_list_head *h = list_of(c, s->list);
    assert(h->count > 0 && (s->prev ? s->prev->next == s : h->first == s));
    if (s->prev)
        s->prev->next = s->next;
    else
        h->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->count--;
    s->next = s->prev = NULL;
    s->list = SLAB_LIST_NONE;
}

static void list_add_locked(struct kmem_cache *c, struct slab *s, uint8_t which)
{
    slab_assert_locked(c);
    assert(s->list == SLAB_LIST_NONE);
    struct slab_list_head *h = list_of(c, which);
    s->prev = NULL;
    s->next = h->first;
    if (h->first)
        h->first->prev = s;
    h->first = s;
    h->count++;
    s->list = which;
}

static uint8_t list_for_inuse(const struct kmem_cache *c, uint32_t inuse)
{
    if (inuse == 0)
        return SLAB_LIST_EMPTY;
    return inuse == c->objs_per_slab ? SLAB_LIST_FULL : SLAB_LIST_PARTIAL;
}

static inline void slab_relist_locked(struct kmem_cache *c, struct slab *s)
{
    slab_assert_locked(c);
    assert(s->inuse <= c->objs_per_slab);
    uint8_t want = list_for_inuse(c, s->inuse);
    if (want != s->list) {
        list_del_locked(c, s);
        list_add_locked(c, s, want);
    }
}

/* ---------------------------------------------------------------- making and freeing slabs */

/* A new slab, constructed, on no list.  No lock held.  NULL with errno ENOMEM. */
static struct slab *slab_create(struct kmem_cache *c)
{
    struct slab *s = buddy_alloc(c->slab_order, BUDDY_TAG_SLAB);
    if (!s)
        return NULL;
    uint32_t colours = c->colour_max / c->colour_step + 1;
    uint32_t colour = __atomic_fetch_add(&c->colour_next, 1, __ATOMIC_RELAXED) % colours;
    s->magic = SLAB_MAGIC;
    s->inuse = 0;
    s->cache = c;
    s->next = s->prev = NULL;
    s->objs = (char *)s + c->objs_offset + (size_t)colour * c->colour_step;
    s->free_word = 0;
    s->list = SLAB_LIST_NONE;
    assert(((uintptr_t)s & ~c->slab_mask) == 0 &&
           (size_t)(s->objs - (char *)s) + (size_t)c->objs_per_slab * c->slot_size <=
               c->slab_bytes);
    /* The in-use bitmap and the extra ones, which follow it (slab_extra_bitmap). */
    memset(s->bitmap, 0, (size_t)(1 + c->extra_bitmaps) * c->bitmap_words * sizeof(uint64_t));
    uint32_t tail = c->objs_per_slab % 64;
    if (tail) /* bits past the last slot read as "in use" so the scan never returns them */
        s->bitmap[c->bitmap_words - 1] = ~(uint64_t)0 << tail;
    if (c->ctor || c->ctor_simple) {
        for (uint32_t i = 0; i < c->objs_per_slab; i++) {
            void *obj = s->objs + (size_t)i * c->slot_size;
            if (c->ctor)
                c->ctor(obj, c->ctor_arg);
            else
                c->ctor_simple(obj);
        }
    }
    if (c->debug)
        debug_init_slab(c, s);
    return s;
}

/* Destruct the free slots of a slab (all of them, when it is empty) and give it back.
 * The slab is on no list; no lock held. */
static void slab_destroy(struct kmem_cache *c, struct slab *s)
{
    if (c->dtor) {
        for (uint32_t i = 0; i < c->objs_per_slab; i++) {
            if (!(s->bitmap[i / 64] & ((uint64_t)1 << (i % 64)))) {
                if (c->debug)
                    debug_mark_dtor(c, s->objs + (size_t)i * c->slot_size);
                c->dtor(s->objs + (size_t)i * c->slot_size, c->ctor_arg);
            }
        }
    }
    if (c->debug)
        debug_mark_slab_release(c, s);
    s->magic = 0;
    s->cache = NULL;
    buddy_free(s);
}

void slab_destroy_chain(struct kmem_cache *c, struct slab *chain)
{
    while (chain) {
        struct slab *next = chain->next;
        slab_destroy(c, chain);
        chain = next;
    }
}

/* Unlink empty slabs beyond `keep` onto a private chain (cache->lock held). */
static struct slab *slab_take_excess_empty_locked(struct kmem_cache *c, size_t keep,
                                                  size_t *dtor_calls)
{
    slab_assert_locked(c);
    struct slab *chain = NULL;
    while (c->empty.count > keep) {
        struct slab *s = c->empty.first;
        list_del_locked(c, s);
        s->next = chain;
        chain = s;
        c->slabs_freed++;
        if (c->dtor)
            *dtor_calls += c->objs_per_slab;
    }
    return chain;
}

void slab_release_empty(struct kmem_cache *c, size_t keep)
{
    size_t dtors = 0;
    heap_mutex_lock(&c->lock);
    struct slab *chain = slab_take_excess_empty_locked(c, keep, &dtors);
    c->dtor_calls += dtors;
    heap_mutex_unlock(&c->lock);
    slab_destroy_chain(c, chain);
}

/* ---------------------------------------------------------------- objects <-> slabs */

/* Take up to n free slots of s (cache->lock held). */
static size_t slab_take_locked(struct kmem_cache *c, struct slab *s, void **objs, size_t n)
{
    slab_assert_locked(c);
    /* Locals for everything the loop reads: the stores into objs[] may alias the header. */
    size_t got = 0;
    uint32_t w = s->free_word, words = c->bitmap_words;
    char *base = s->objs;
    size_t slot = c->slot_size;
    while (got < n && w < words) {
        uint64_t used = s->bitmap[w];
        uint64_t avail = ~used;
        if (!avail) {
            w++;
            continue;
        }
        char *wbase = base + (size_t)w * 64 * slot;
        do {
            unsigned b = (unsigned)__builtin_ctzll(avail);
            avail &= avail - 1;
            objs[got++] = wbase + (size_t)b * slot;
        } while (avail && got < n);
        /* The bits not left in avail: the used ones and the ones just taken.  Lock-free
         * readers (free-time checks) load bitmap words with relaxed atomics. */
        __atomic_store_n(&s->bitmap[w], ~avail, __ATOMIC_RELAXED);
        if (!avail)
            w++;
    }
    s->free_word = w;
    s->inuse += (uint32_t)got;
    assert(s->inuse <= c->objs_per_slab && (got == n || w == words));
    c->inuse_total += got;
    slab_relist_locked(c, s);
    return got;
}

static size_t slab_alloc_batch_locked(struct kmem_cache *c, void **objs, size_t n)
{
    slab_assert_locked(c);
    size_t got = 0;
    while (got < n) {
        struct slab *s = c->partial.first ? c->partial.first : c->empty.first;
        if (!s)
            break;
        got += slab_take_locked(c, s, objs + got, n - got);
    }
    return got;
}

static int validate_slab_locked(struct kmem_cache *c, struct slab *s, uint8_t list,
                                size_t *inuse_sum, bool deep);

/* Debug caches (c->debug != 0): the hooks of debug.c on every object taken (cache->lock
 * held).  The first problem found goes to *pb. */
static void alloc_batch_debug_locked(struct kmem_cache *c, void **objs, size_t got,
                                     const void *caller, struct debug_problem *pb)
{
    slab_assert_locked(c);
    for (size_t i = 0; i < got; i++) {
        debug_alloc_locked(c, objs[i], caller, pb);
        if (c->debug & SLAB_DBG_CHECKS) {
            struct slab *s = slab_of(c, objs[i]);
            size_t sum = 0;
            if (validate_slab_locked(c, s, s->list, &sum, false) && pb->kind == SLAB_DBG_OK) {
                pb->kind = SLAB_DBG_SLAB_BAD;
                pb->obj = objs[i];
                pb->caller = caller;
                pb->op = "alloc";
            }
        }
    }
}

/* A magazine refill is taken from the slabs in ascending slot order, and a magazine is
 * popped from its top: reversed, the program gets the lowest slots first.  In a fresh slab
 * those share the header's page, so a class of which a short-lived program uses a couple of
 * objects costs one page instead of two (the top of half a magazine of 128-byte objects lies
 * on the slab's second page).  It also hands out ascending addresses, which is what a
 * program that allocates a run of objects walks best. */
static void reverse_objs(void **objs, size_t n)
{
    for (size_t i = 0, j = n - 1; i < j; i++, j--) {
        void *t = objs[i];
        objs[i] = objs[j];
        objs[j] = t;
    }
}

/* Up to n objects into objs; *count (may be NULL) follows the objects taken (see
 * slab_alloc_batch_with_count).  Fault injection first, for debug caches. */
static size_t alloc_batch(struct kmem_cache *c, void **objs, size_t n, uint32_t *count,
                          const void *caller)
{
    size_t got = 0;
    bool injected = false;
    struct debug_problem pb = {0};
    heap_mutex_lock(&c->lock);
    if (SLAB_UNLIKELY(c->debug & SLAB_DBG_FAIL) && n && debug_should_fail_locked(c)) {
        injected = true; /* SLABCACHE_FAIL: this allocation fails */
        n = 0;
    }
    for (;;) {
        size_t want = n - got;
        if (c->max_objects) {
            size_t room = c->max_objects > c->live_capped ? c->max_objects - c->live_capped : 0;
            if (want > room)
                want = room;
        }
        if (want == 0)
            break;
        size_t took = slab_alloc_batch_locked(c, objs + got, want);
        got += took;
        if (count)
            __atomic_store_n(count, (uint32_t)got, __ATOMIC_RELAXED);
        if (c->max_objects)
            c->live_capped += took;
        if (took == want)
            continue;
        /* Out of free slots: make a slab without the lock, then retry. */
        heap_mutex_unlock(&c->lock);
        struct slab *s = slab_create(c);
        heap_mutex_lock(&c->lock);
        if (!s)
            break;
        c->slabs_created++;
        if (c->ctor || c->ctor_simple)
            c->ctor_calls += c->objs_per_slab;
        list_add_locked(c, s, SLAB_LIST_EMPTY);
    }
    if (SLAB_UNLIKELY(c->debug) && got)
        alloc_batch_debug_locked(c, objs, got, caller, &pb);
    if (count && got > 1)
        reverse_objs(objs, got); /* under the lock: a fork sees the magazine before or after */
    heap_mutex_unlock(&c->lock);
    if (SLAB_UNLIKELY(c->debug)) {
        if (pb.kind != SLAB_DBG_OK)
            debug_report(c, &pb);
        if (c->debug & SLAB_DBG_TRACE)
            for (size_t i = 0; i < got; i++)
                debug_trace(c, "alloc", objs[i], caller);
        if (injected) {
            errno = ENOMEM;
            return 0;
        }
    }
    if (got < n)
        errno = ENOMEM;
    return got;
}

size_t slab_alloc_batch_with_count(struct kmem_cache *c, void **objs, size_t n,
                                   uint32_t *count)
{
    return alloc_batch(c, objs, n, count, NULL);
}

size_t slab_alloc_batch(struct kmem_cache *c, void **objs, size_t n, const void *caller)
{
    return alloc_batch(c, objs, n, NULL, caller);
}

/* A slot whose bit is already clear came back to its slab a second time: the same object
 * was freed twice while it sat in a magazine below its top, where the always-on check cannot
 * tell a cached object from an allocated one.  Reported, and the caller drops it. */
__attribute__((noinline, cold)) static void double_return_report(struct kmem_cache *c,
                                                                 const void *obj)
{
    __atomic_fetch_add(&c->invalid_frees, 1, __ATOMIC_RELAXED);
    heap_fmt_line("double free of %p in cache %s (freed twice while it sat in a magazine; "
                  "caught when the magazine went back to the slab)",
                  obj, c->name);
    report_misuse();
}

/* Give in-use slots back to their slabs (cache->lock held; objects already validated).
 * Consecutive objects of one slab (a magazine filled in allocation order holds runs of them)
 * share one header update: the bitmap words are cleared one by one, inuse, free_word and
 * the list move once per run.  Before any bit is cleared, cache->returns moves on: every
 * popped run recorded before stops being trusted (magazine_push_popped).  A slot
 * whose bit is already clear is a double free that reached the slab twice: reported and
 * skipped, so inuse keeps counting set bits. */
static void slab_free_batch_locked(struct kmem_cache *c, void *const *objs, size_t n)
{
    slab_assert_locked(c);
    __atomic_store_n(&c->returns, c->returns + 1, __ATOMIC_RELAXED);
    size_t i = 0, total = 0;
    while (i < n) {
        struct slab *s = slab_of(c, objs[i]);
        uint32_t free_word = s->free_word, freed = 0;
        do {
            uint32_t idx = slab_slot_index(c, s, objs[i]);
            uint32_t w = idx / 64;
            uint64_t bit = (uint64_t)1 << (idx % 64), word = s->bitmap[w];
            if (SLAB_UNLIKELY(!(word & bit))) {
                double_return_report(c, objs[i++]);
                continue;
            }
            __atomic_store_n(&s->bitmap[w], word & ~bit, __ATOMIC_RELAXED);
            if (w < free_word)
                free_word = w;
            freed++;
            i++;
        } while (i < n && slab_of(c, objs[i]) == s);
        s->free_word = free_word;
        uint32_t before = s->inuse;
        assert(s->magic == SLAB_MAGIC && s->cache == c && freed <= before);
        s->inuse = before - freed;
        c->inuse_total -= freed;
        /* Only the full -> partial/empty and partial -> empty transitions move the slab. */
        if (SLAB_UNLIKELY(s->inuse == 0 || before == c->objs_per_slab))
            slab_relist_locked(c, s);
        total += freed;
    }
    if (c->max_objects)
        c->live_capped -= total;
}

void slab_free_batch_with_count(struct kmem_cache *c, void *const *objs, size_t n,
                                uint32_t *count)
{
    size_t dtors = 0;
    heap_mutex_lock(&c->lock);
    slab_free_batch_locked(c, objs, n);
    if (count)
        __atomic_store_n(count, 0, __ATOMIC_RELAXED);
    struct slab *chain = slab_take_excess_empty_locked(c, c->max_empty, &dtors);
    c->dtor_calls += dtors;
    heap_mutex_unlock(&c->lock);
    slab_destroy_chain(c, chain);
}

bool slab_free_one(struct kmem_cache *c, void *obj, const void *caller)
{
    if (SLAB_LIKELY(!c->debug)) {
        slab_free_batch_with_count(c, &obj, 1, NULL);
        return true;
    }
    struct debug_problem pb = {0};
    size_t dtors = 0;
    struct slab *chain = NULL;
    heap_mutex_lock(&c->lock);
    bool ok = debug_free_locked(c, obj, caller, &pb);
    if (ok) {
        slab_free_batch_locked(c, &obj, 1);
        if (c->debug & SLAB_DBG_CHECKS) {
            struct slab *s = slab_of(c, obj);
            size_t sum = 0;
            if (validate_slab_locked(c, s, s->list, &sum, false) && pb.kind == SLAB_DBG_OK) {
                pb.kind = SLAB_DBG_SLAB_BAD;
                pb.obj = obj;
                pb.caller = caller;
                pb.op = "free";
            }
        }
        chain = slab_take_excess_empty_locked(c, c->max_empty, &dtors);
        c->dtor_calls += dtors;
    }
    heap_mutex_unlock(&c->lock);
    slab_destroy_chain(c, chain);
    if (ok && (c->debug & SLAB_DBG_TRACE))
        debug_trace(c, "free", obj, caller);
    if (pb.kind != SLAB_DBG_OK)
        debug_report(c, &pb);
    return ok;
}

/* ---------------------------------------------------------------- free-time checks */

static void count_invalid(struct kmem_cache *c)
{
    if (c)
        __atomic_fetch_add(&c->invalid_frees, 1, __ATOMIC_RELAXED);
}

/* Why obj cannot be freed to c: a message, or NULL when it can.  Reads only memory that is
 * known to be ours (the extent map first, then the buddy page map, then the slab header). */
static const char *slab_diagnose(struct kmem_cache *c, const void *obj, struct kmem_cache **owner)
{
    *owner = NULL;
    struct heap_extent *e = heap_extent_lookup(obj);
    if (!e || e->kind != HEAP_KIND_SPLIT)
        return "invalid free (pointer not from slabcache)";
    struct buddy_block_info info;
    if (!buddy_lookup(obj, &info) || info.tag != BUDDY_TAG_SLAB)
        return "invalid free (pointer not in a slab)";
    struct slab *s = (struct slab *)info.head;
    struct kmem_cache *oc = __atomic_load_n(&s->cache, __ATOMIC_RELAXED);
    if (s->magic != SLAB_MAGIC || !oc)
        return "invalid free (slab header damaged)";
    *owner = oc;
    if (oc != c)
        return "wrong cache";
    if (slab_slot_index(c, s, obj) == UINT32_MAX)
        return "invalid free (not the start of an object)";
    return NULL;
}

/* The reporting half of slab_check_free_fast (fastpath.h): find out what is wrong with obj,
 * say so, and refuse.  Also reached when the fast check cannot decide (a pointer into another
 * cache's slab of a different size): then it may find obj valid after all. */
__attribute__((noinline, cold)) bool slab_check_free_slow(struct kmem_cache *c, const void *obj,
                                                          const char *op)
{
    struct kmem_cache *owner;
    const char *why = slab_diagnose(c, obj, &owner);
    if (!why) {
        struct slab *s = slab_of(c, obj);
        uint32_t idx = slab_slot_index(c, s, obj);
        uint64_t word = __atomic_load_n(&s->bitmap[idx / 64], __ATOMIC_RELAXED);
        if (word & ((uint64_t)1 << (idx % 64)))
            return true;
        count_invalid(c);
        heap_fmt_line("%s: double free of %p in cache %s (object is already free)", op, obj,
                      c->name);
        if (c->debug)
            debug_report_track(c, obj);
        report_misuse();
        return false;
    }
    count_invalid(c);
    if (owner && owner != c)
        heap_fmt_line("%s: %s: %p belongs to cache %s, freed to cache %s", op, why, obj,
                      owner->name, c->name);
    else
        heap_fmt_line("%s: %s: %p, cache %s", op, why, obj, c->name);
    report_misuse();
    return false;
}

/* ---------------------------------------------------------------- validation */

#define VFAIL(...)                                                                          \
    do {                                                                                    \
        heap_fmt_line(__VA_ARGS__);                                                         \
        return -1;                                                                          \
    } while (0)

/* deep: also every slot's red zone and poison (debug caches). */
static int validate_slab_locked(struct kmem_cache *c, struct slab *s, uint8_t list,
                                size_t *inuse_sum, bool deep)
{
    slab_assert_locked(c);
    if ((uintptr_t)s & ~c->slab_mask)
        VFAIL("validate %s: slab %p not aligned to %zu", c->name, (void *)s, c->slab_bytes);
    if (s->magic != SLAB_MAGIC || s->cache != c)
        VFAIL("validate %s: slab %p header damaged (magic or cache)", c->name, (void *)s);
    if (s->list != list)
        VFAIL("validate %s: slab %p marked list %u but found on list %u", c->name, (void *)s,
              (unsigned)s->list, (unsigned)list);
    struct buddy_block_info info;
    if (!buddy_lookup(s, &info) || info.head != (void *)s || info.tag != BUDDY_TAG_SLAB ||
        info.order != c->slab_order)
        VFAIL("validate %s: slab %p is not an allocated buddy block of order %u tagged slab",
              c->name, (void *)s, c->slab_order);
    size_t colour = (size_t)(s->objs - (char *)s) - c->objs_offset;
    if ((size_t)(s->objs - (char *)s) < c->objs_offset || colour > c->colour_max ||
        colour % c->colour_step)
        VFAIL("validate %s: slab %p colour offset %zu invalid", c->name, (void *)s, colour);
    size_t bits = 0;
    for (uint32_t w = 0; w < c->bitmap_words; w++) {
        uint64_t word = s->bitmap[w];
        if (w < s->free_word && ~word)
            VFAIL("validate %s: slab %p has a free slot below its free_word hint", c->name,
                  (void *)s);
        bits += (size_t)__builtin_popcountll(word);
    }
    uint32_t tail = c->objs_per_slab % 64;
    if (tail) {
        uint64_t pad = ~(uint64_t)0 << tail;
        if ((s->bitmap[c->bitmap_words - 1] & pad) != pad)
            VFAIL("validate %s: slab %p padding bits cleared", c->name, (void *)s);
        bits -= 64 - tail;
    }
    if (bits != s->inuse)
        VFAIL("validate %s: slab %p bitmap has %zu bits set, inuse says %u", c->name,
              (void *)s, bits, s->inuse);
    /* Extra bitmaps (cache_create_with_bitmaps): slots past the last have no bit to set. */
    for (unsigned k = 0; tail && k < c->extra_bitmaps; k++) {
        if (slab_extra_bitmap(c, s, k)[c->bitmap_words - 1] & (~(uint64_t)0 << tail))
            VFAIL("validate %s: slab %p extra bitmap %u has padding bits set", c->name,
                  (void *)s, k);
    }
    if (list_for_inuse(c, s->inuse) != list)
        VFAIL("validate %s: slab %p with %u in use is on the wrong list", c->name, (void *)s,
              s->inuse);
    if (deep && (c->debug & (SLAB_DBG_REDZONE | SLAB_DBG_POISON))) {
        for (uint32_t i = 0; i < c->objs_per_slab; i++) {
            bool used = (s->bitmap[i / 64] >> (i % 64)) & 1;
            if (debug_validate_slot_locked(c, s->objs + (size_t)i * c->slot_size, used))
                return -1;
        }
    }
    *inuse_sum += s->inuse;
    return 0;
}

static int validate_list_locked(struct kmem_cache *c, struct slab_list_head *h, uint8_t list,
                                size_t *inuse_sum)
{
    slab_assert_locked(c);
    size_t n = 0;
    struct slab *prev = NULL;
    for (struct slab *s = h->first; s; prev = s, s = s->next) {
        if (s->prev != prev)
            VFAIL("validate %s: slab %p back link broken", c->name, (void *)s);
        if (validate_slab_locked(c, s, list, inuse_sum, true))
            return -1;
        if (++n > h->count)
            break;
    }
    if (n != h->count)
        VFAIL("validate %s: list %u holds %zu slabs, count says %zu", c->name, (unsigned)list,
              n, h->count);
    return 0;
}

int slab_validate_cached_obj_locked(struct kmem_cache *c, const void *obj, const char *where)
{
    slab_assert_locked(c);
    struct heap_extent *e = heap_extent_lookup(obj);
    if (!e || e->kind != HEAP_KIND_SPLIT)
        VFAIL("validate %s: %s holds %p, not a slabcache address", c->name, where, obj);
    struct slab *s = slab_of(c, obj);
    if (s->magic != SLAB_MAGIC || s->cache != c)
        VFAIL("validate %s: %s holds %p, not in a slab of this cache", c->name, where, obj);
    uint32_t idx = slab_slot_index(c, s, obj);
    if (idx == UINT32_MAX)
        VFAIL("validate %s: %s holds %p, not a slot start", c->name, where, obj);
    if (!(s->bitmap[idx / 64] & ((uint64_t)1 << (idx % 64))))
        VFAIL("validate %s: %s holds %p but its slot is free", c->name, where, obj);
    return 0;
}

int slab_validate_locked(struct kmem_cache *c)
{
    slab_assert_locked(c);
    size_t inuse = 0;
    if (c->objs_offset < sizeof(struct slab) + (size_t)(1 + c->extra_bitmaps) *
                                                   c->bitmap_words * sizeof(uint64_t) ||
        (size_t)c->bitmap_words * 64 < c->objs_per_slab)
        VFAIL("validate %s: slot 0 at offset %u overlaps the header and its %u bitmaps",
              c->name, c->objs_offset, 1 + c->extra_bitmaps);
    if (validate_list_locked(c, &c->full, SLAB_LIST_FULL, &inuse) ||
        validate_list_locked(c, &c->partial, SLAB_LIST_PARTIAL, &inuse) ||
        validate_list_locked(c, &c->empty, SLAB_LIST_EMPTY, &inuse))
        return -1;
    if (inuse != c->inuse_total)
        VFAIL("validate %s: slabs hold %zu objects, inuse_total says %zu", c->name, inuse,
              c->inuse_total);
    if (c->slabs_created - c->slabs_freed != c->full.count + c->partial.count + c->empty.count)
        VFAIL("validate %s: created-freed = %zu slabs, lists hold %zu", c->name,
              c->slabs_created - c->slabs_freed,
              c->full.count + c->partial.count + c->empty.count);
    if (c->empty.count > c->max_empty)
        VFAIL("validate %s: %zu empty slabs kept, limit %zu", c->name, c->empty.count,
              c->max_empty);
    if (c->max_objects && c->live_capped > c->max_objects)
        VFAIL("validate %s: %zu live objects over the cap %zu", c->name, c->live_capped,
              c->max_objects);
    return 0;
}

/* ---------------------------------------------------------------- walks */

/* Up to `max` addresses of slots still in use (cache->lock held). */
static size_t collect_live_locked(struct kmem_cache *c, void **addrs, size_t max)
{
    slab_assert_locked(c);
    size_t n = 0;
    const struct slab_list_head *lists[] = {&c->full, &c->partial};
    for (size_t l = 0; l < 2; l++) {
        for (struct slab *s = lists[l]->first; s && n < max; s = s->next) {
            for (uint32_t i = 0; i < c->objs_per_slab && n < max; i++)
                if (s->bitmap[i / 64] & ((uint64_t)1 << (i % 64)))
                    addrs[n++] = s->objs + (size_t)i * c->slot_size;
        }
    }
    return n;
}

static struct slab *take_all_slabs_locked(struct kmem_cache *c)
{
    slab_assert_locked(c);
    struct slab *chain = NULL;
    struct slab_list_head *lists[] = {&c->full, &c->partial, &c->empty};
    for (size_t l = 0; l < 3; l++) {
        while (lists[l]->first) {
            struct slab *s = lists[l]->first;
            list_del_locked(c, s);
            s->next = chain;
            chain = s;
        }
    }
    return chain;
}

struct slab *slab_detach_all(struct kmem_cache *c, void **addrs, size_t max, size_t *live,
                             size_t *shown)
{
    heap_mutex_lock(&c->lock);
    *live = c->inuse_total;
    *shown = *live ? collect_live_locked(c, addrs, max) : 0;
    struct slab *chain = take_all_slabs_locked(c);
    heap_mutex_unlock(&c->lock);
    return chain;
}

void slab_walk(struct kmem_cache *c, void (*fn)(struct kmem_cache *c, struct slab *s, void *arg),
               void *arg)
{
    heap_mutex_lock(&c->lock);
    struct slab_list_head *lists[] = {&c->full, &c->partial, &c->empty};
    for (size_t l = 0; l < 3; l++)
        for (struct slab *s = lists[l]->first; s; s = s->next)
            fn(c, s, arg);
    heap_mutex_unlock(&c->lock);
}
