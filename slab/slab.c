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
#include <sys/auxv.h>
#include <time.h>

#include "buddy/buddy.h"
#include "heap/fmt.h"
#include "slab/debug.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#define SLAB_EFFICIENCY_SLACK 0.001

#define slab_assert_locked(c) heap_mutex_assert_held(&(c)->lock)

/* ---------------------------------------------------------------- keys */

uint64_t slab_keys[2];

/* splitmix64: spreads the bits of one input over the output. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void slab_keys_init(void)
{
    /* The kernel's 16 random bytes for this process (glibc already used them for its stack
     * guard and pointer guard: mixed here with the clock and an address, never used raw). */
    uint64_t seed[2] = {0, 0};
    const void *r = (const void *)getauxval(AT_RANDOM);
    if (r)
        memcpy(seed, r, sizeof seed);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t k0 = mix64(seed[0] ^ mix64(t ^ (uint64_t)(uintptr_t)&seed));
    uint64_t k1 = mix64(seed[1] ^ mix64(k0 + t));
    /* Low nibble 5: a mark's low byte is never 0 for an 8-aligned object (fastpath.h). */
    k1 = (k1 & ~(uint64_t)0xf) | 0x5;
    __atomic_store_n(&slab_keys[0], k0, __ATOMIC_RELAXED);
    __atomic_store_n(&slab_keys[1], k1, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- header checks */

/* The weight of bitmap word w in struct slab's bitmap_sum: sum = sum over w of word * weight
 * (mod 2^64).  Odd weights, different per word, so a change to any one word or a swap of two
 * words changes the sum; kept up to date word by word (slab_bitmap_store_locked). */
static inline uint64_t bitmap_weight(uint32_t w)
{
    return (2 * (uint64_t)w + 1) * 0x9e3779b97f4a7c15ull;
}

/* The weighted sum of s's in-use bitmap: a load, a multiply and an add per word. */
static uint64_t bitmap_sum_compute(const struct kmem_cache *c, const struct slab *s)
{
    uint64_t sum = 0;
    for (uint32_t w = 0; w < c->bitmap_words; w++)
        sum += __atomic_load_n(&s->bitmap[w], __ATOMIC_RELAXED) * bitmap_weight(w);
    return sum;
}

/* Store a new value of in-use bitmap word w (cache->lock held): the free check does not read
 * the bitmap any more, but stats and the validator do without the lock, hence the atomic
 * store. */
static inline void slab_bitmap_store_locked(struct kmem_cache *c, struct slab *s, uint32_t w,
                                            uint64_t word)
{
    slab_assert_locked(c);
    s->bitmap_sum += (word - s->bitmap[w]) * bitmap_weight(w);
    __atomic_store_n(&s->bitmap[w], word, __ATOMIC_RELAXED);
}

/* What is wrong with the header of s, a slab of c, or NULL when every field a slow path
 * relies on is in range and the canary vouches for the rest.  `deep` also recomputes the
 * bitmap sum (before slots are taken from s: a bitmap that lost a bit would hand out a live
 * object). */
static const char *slab_header_problem(const struct kmem_cache *c, const struct slab *s,
                                       bool deep)
{
    if (!heap_is_split_granule(s) || ((uintptr_t)s & ~c->slab_mask))
        return "not a slab address";
    if (s->canary != slab_canary(s, c, s->objs) || s->cache != c)
        return "canary";
    size_t off = (size_t)(s->objs - (const char *)s);
    if (off < c->objs_offset || off - c->objs_offset > c->colour_max ||
        (off - c->objs_offset) % c->colour_step)
        return "object area";
    if (s->inuse > c->objs_per_slab || s->touched > c->objs_per_slab ||
        s->free_word > c->bitmap_words || s->list > SLAB_LIST_EMPTY)
        return "counts";
    if (deep && bitmap_sum_compute(c, s) != s->bitmap_sum)
        return "bitmap";
    return NULL;
}

static void slab_rebuild_lists_locked(struct kmem_cache *c, const struct slab *detached);

/* A damaged header (slab_header_problem said `what`): report it, then abort, or with
 * SLABCACHE_ON_ERROR=report rebuild the cache's lists from the buddy page map without the
 * damaged slabs, which are never touched again (their memory stays allocated).  The caller
 * then starts over from the list heads, which are sound again.  `detached`: a sound slab of
 * the cache that the caller holds off the lists (counted, about to be listed), or NULL. */
__attribute__((noinline, cold)) static void slab_damaged_locked(struct kmem_cache *c,
                                                                const struct slab *s,
                                                                const char *what,
                                                                const struct slab *detached)
{
    slab_assert_locked(c);
    __atomic_fetch_add(&c->invalid_frees, 1, __ATOMIC_RELAXED);
    heap_fmt_line("slab %p of cache %s: header damaged (%s; overflow from the block below, or "
                  "a write through a stale pointer?)",
                  (const void *)s, c->name, what);
    report_misuse();
    slab_rebuild_lists_locked(c, detached);
}

/* s is a slab of c whose header may be used (slab_header_problem); false after reporting a
 * damaged one (and, when the program goes on, rebuilding the lists without it). */
static bool slab_trust_locked(struct kmem_cache *c, const struct slab *s, bool deep)
{
    const char *why = slab_header_problem(c, s, deep);
    if (SLAB_LIKELY(!why))
        return true;
    slab_damaged_locked(c, s, why, NULL);
    return false;
}

/* A list link read from a header: NULL, or a slab of c (mapped, aligned, its canary for c).
 * Checked before it is followed, so a forged link never steers a write; the slab's other
 * fields are checked when the slab itself is used. */
static bool slab_link_ok(const struct kmem_cache *c, const struct slab *p)
{
    return !p || (heap_is_split_granule(p) && !((uintptr_t)p & ~c->slab_mask) &&
                  p->canary == slab_canary(p, c, p->objs));
}

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
    if (c->small_slabs) {
        for (unsigned o = 0; o < order; o++) {
            if (eff[o] >= SLAB_SMALL_EFFICIENCY &&
                slots_that_fit(BUDDY_PAGE_SIZE << o, slot, align, bitmaps) >= SLAB_MIN_OBJECTS) {
                order = o;
                break;
            }
        }
    }
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

/* Unlink s, a slab of c whose header was trusted, from its list.  Its links and its
 * neighbours' back links are checked first (safe unlinking): a forged link is reported
 * (slab_damaged_locked) and never written through.  False when s itself turned out damaged
 * (the program goes on: s is on no list and must not be used). */
static bool list_del_locked(struct kmem_cache *c, struct slab *s)
{
    slab_assert_locked(c);
    for (;;) {
        struct slab_list_head *h = list_of(c, s->list);
        struct slab *prev = s->prev, *next = s->next;
        if (SLAB_LIKELY(s->list != SLAB_LIST_NONE && h->count > 0 && slab_link_ok(c, prev) &&
                        slab_link_ok(c, next) && (prev ? prev->next == s : h->first == s) &&
                        (!next || next->prev == s))) {
            if (prev)
                prev->next = next;
            else
                h->first = next;
            if (next)
                next->prev = prev;
            h->count--;
            s->next = s->prev = NULL;
            s->list = SLAB_LIST_NONE;
            return true;
        }
        /* Going on (SLABCACHE_ON_ERROR=report): the lists were rebuilt from the page map,
         * with s on the list its count says if its own header is sound. */
        slab_damaged_locked(c, s, "list links", NULL);
        if (slab_header_problem(c, s, false))
            return false;
    }
}

static void list_add_locked(struct kmem_cache *c, struct slab *s, uint8_t which)
{
    slab_assert_locked(c);
    assert(s->list == SLAB_LIST_NONE);
    struct slab_list_head *h = list_of(c, which);
    while (SLAB_UNLIKELY(!slab_link_ok(c, h->first))) {
        slab_damaged_locked(c, h->first, "list head", s); /* rebuilt: the head is sound */
        h = list_of(c, which);
    }
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
    if (want != s->list && list_del_locked(c, s))
        list_add_locked(c, s, want);
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
    s->inuse = 0;
    s->touched = 0;
    s->cache = c;
    s->next = s->prev = NULL;
    s->objs = (char *)s + c->objs_offset + (size_t)colour * c->colour_step;
    s->free_word = 0;
    s->list = SLAB_LIST_NONE;
    s->canary = slab_canary(s, c, s->objs);
    assert(((uintptr_t)s & ~c->slab_mask) == 0 &&
           (size_t)(s->objs - (char *)s) + (size_t)c->objs_per_slab * c->slot_size <=
               c->slab_bytes);
    /* The in-use bitmap and the extra ones, which follow it (slab_extra_bitmap). */
    memset(s->bitmap, 0, (size_t)(1 + c->extra_bitmaps) * c->bitmap_words * sizeof(uint64_t));
    uint32_t tail = c->objs_per_slab % 64;
    if (tail) /* bits past the last slot read as "in use" so the scan never returns them */
        s->bitmap[c->bitmap_words - 1] = ~(uint64_t)0 << tail;
    s->bitmap_sum = bitmap_sum_compute(c, s);
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
    s->canary = 0;
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
        if (!slab_trust_locked(c, s, false) || !list_del_locked(c, s))
            continue; /* reported; the lists were rebuilt without it */
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

/* Take up to n free slots of s (cache->lock held; s trusted).  Objects leave the slab
 * marked free (c->marks): what goes into a magazine is free, and a handout to a caller
 * clears the mark.  touched moves past the highest slot taken after the marks are written,
 * so the lock-free check never sees a slot below touched without its mark. */
static size_t slab_take_locked(struct kmem_cache *c, struct slab *s, void **objs, size_t n,
                               bool lean)
{
    slab_assert_locked(c);
    /* Locals for everything the loop reads: the stores into objs[] may alias the header. */
    size_t got = 0;
    uint32_t w = s->free_word, words = c->bitmap_words, last = 0;
    char *base = s->objs;
    size_t slot = c->slot_size;
    const bool marks = c->marks;
    /* lean: no slot that starts on a page past both the last touched slot's and the first
     * slot taken now (taking a slot writes its mark, which faults its page in). */
    uintptr_t page_end = UINTPTR_MAX;
    if (lean) {
        const char *seen = s->touched ? base + (size_t)(s->touched - 1) * slot : base;
        page_end = ((uintptr_t)seen | (BUDDY_PAGE_SIZE - 1)) + 1;
    }
    bool clipped = false;
    while (got < n && w < words) {
        uint64_t used = s->bitmap[w];
        uint64_t avail = ~used;
        if (!avail) {
            w++;
            continue;
        }
        char *wbase = base + (size_t)w * 64 * slot;
        uint64_t taken = 0;
        do {
            unsigned b = (unsigned)__builtin_ctzll(avail);
            void *obj = wbase + (size_t)b * slot;
            if ((uintptr_t)obj >= page_end) {
                if (got) {
                    clipped = true;
                    break;
                }
                page_end = ((uintptr_t)obj | (BUDDY_PAGE_SIZE - 1)) + 1;
            }
            avail &= avail - 1;
            taken |= (uint64_t)1 << b;
            if (marks)
                slab_mark_set(c, obj);
            objs[got++] = obj;
            last = w * 64 + b;
        } while (avail && got < n);
        /* The used bits and the ones just taken. */
        slab_bitmap_store_locked(c, s, w, used | taken);
        if (!avail)
            w++;
        if (clipped)
            break;
    }
    s->free_word = w;
    s->inuse += (uint32_t)got;
    assert(s->inuse <= c->objs_per_slab && (got == n || w == words || clipped));
    if (got && last >= s->touched)
        __atomic_store_n(&s->touched, last + 1, __ATOMIC_RELEASE);
    c->inuse_total += got;
    slab_relist_locked(c, s);
    return got;
}

/* Up to n objects from the partial slabs, then the empty ones (cache->lock held).  Each slab
 * is checked before a slot is taken from it: its header and, by its sum, its bitmap. */
static size_t slab_alloc_batch_locked(struct kmem_cache *c, void **objs, size_t n, bool lean)
{
    slab_assert_locked(c);
    size_t got = 0;
    while (got < n && !(lean && got)) { /* lean: one slab's touched pages (slab_take_locked) */
        struct slab *s = c->partial.first ? c->partial.first : c->empty.first;
        if (!s)
            break;
        if (!slab_trust_locked(c, s, true))
            continue; /* reported; the lists were rebuilt without it */
        size_t took = slab_take_locked(c, s, objs + got, n - got, lean);
        if (SLAB_UNLIKELY(took == 0)) { /* a partial or empty slab with no free bit */
            slab_damaged_locked(c, s, "counts", NULL);
            continue;
        }
        got += took;
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
                          size_t *net, bool lean, const void *caller)
{
    size_t got = 0;
    bool injected = false;
    struct debug_problem pb = {0};
    heap_mutex_lock(&c->lock);
    const size_t net0 = net ? __atomic_load_n(net, __ATOMIC_RELAXED) : 0;
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
        size_t took = slab_alloc_batch_locked(c, objs + got, want, lean);
        got += took;
        if (count)
            __atomic_store_n(count, (uint32_t)got, __ATOMIC_RELAXED);
        if (net)
            __atomic_store_n(net, net0 + got, __ATOMIC_RELAXED);
        if (c->max_objects)
            c->live_capped += took;
        if (took == want)
            continue;
        if (lean && got)
            break; /* fewer than asked rather than a page or a slab more */
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
    if (got < n && !(lean && got))
        errno = ENOMEM;
    return got;
}

size_t slab_alloc_batch_with_count(struct kmem_cache *c, void **objs, size_t n,
                                   uint32_t *count, size_t *net, bool lean)
{
    return alloc_batch(c, objs, n, count, net, lean, NULL);
}

size_t slab_alloc_batch(struct kmem_cache *c, void **objs, size_t n, const void *caller)
{
    return alloc_batch(c, objs, n, NULL, NULL, false, caller);
}

/* A slot whose bit is already clear came back to its slab a second time: the same object was
 * freed twice at once by two threads (each found it without its free mark), or its mark was
 * overwritten while it was free.  Reported, and the caller drops it. */
__attribute__((noinline, cold)) static void double_return_report(struct kmem_cache *c,
                                                                 const void *obj)
{
    __atomic_fetch_add(&c->invalid_frees, 1, __ATOMIC_RELAXED);
    heap_fmt_line("double free of %p in cache %s (small object; found when it went back to its "
                  "slab: two frees at once, or a write after free)",
                  obj, c->name);
    report_misuse();
}

/* Give in-use slots back to their slabs (cache->lock held; objects already validated).
 * Consecutive objects of one slab (a magazine filled in allocation order holds runs of them)
 * share one header check and update: the bitmap words are cleared one by one, inuse,
 * free_word and the list move once per run.  Before any bit is cleared, cache->returns moves
 * on: every popped run recorded before stops being trusted (magazine_push_popped).  A slot
 * whose bit is already clear is a double free that reached the slab twice: reported and
 * skipped, so inuse keeps counting set bits.  The objects of a slab whose header turns out
 * damaged are dropped after the report. */
static void slab_free_batch_locked(struct kmem_cache *c, void *const *objs, size_t n)
{
    slab_assert_locked(c);
    __atomic_store_n(&c->returns, c->returns + 1, __ATOMIC_RELAXED);
    size_t i = 0, total = 0;
    while (i < n) {
        struct slab *s = slab_of(c, objs[i]);
        if (SLAB_UNLIKELY(!slab_trust_locked(c, s, false))) {
            do
                i++;
            while (i < n && slab_of(c, objs[i]) == s);
            continue;
        }
        uint32_t free_word = s->free_word, freed = 0;
        do {
            uint32_t idx = slab_slot_index(c, s, objs[i]);
            if (SLAB_UNLIKELY(idx == UINT32_MAX || idx >= s->touched)) {
                double_return_report(c, objs[i++]);
                continue;
            }
            uint32_t w = idx / 64;
            uint64_t bit = (uint64_t)1 << (idx % 64), word = s->bitmap[w];
            if (SLAB_UNLIKELY(!(word & bit))) {
                double_return_report(c, objs[i++]);
                continue;
            }
            slab_bitmap_store_locked(c, s, w, word & ~bit);
            if (w < free_word)
                free_word = w;
            freed++;
            i++;
        } while (i < n && slab_of(c, objs[i]) == s);
        s->free_word = free_word;
        uint32_t before = s->inuse;
        assert(freed <= before);
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
                                uint32_t *count, size_t *net)
{
    size_t dtors = 0;
    heap_mutex_lock(&c->lock);
    slab_free_batch_locked(c, objs, n);
    if (count)
        __atomic_store_n(count, 0, __ATOMIC_RELAXED);
    if (net)
        __atomic_store_n(net, __atomic_load_n(net, __ATOMIC_RELAXED) - n, __ATOMIC_RELAXED);
    struct slab *chain = slab_take_excess_empty_locked(c, c->max_empty, &dtors);
    c->dtor_calls += dtors;
    heap_mutex_unlock(&c->lock);
    slab_destroy_chain(c, chain);
}

size_t slab_free_words(struct kmem_cache *c, const struct slab_word_free *v, size_t n)
{
    assert(!c->mag_size && !c->marks && !c->debug);
    size_t dtors = 0, total = 0;
    heap_mutex_lock(&c->lock);
    __atomic_store_n(&c->returns, c->returns + 1, __ATOMIC_RELAXED);
    const struct slab *trusted = NULL;
    for (size_t i = 0; i < n; i++) {
        struct slab *s = v[i].slab;
        if (s != trusted) {
            if (SLAB_UNLIKELY(!slab_trust_locked(c, s, false))) {
                while (i + 1 < n && v[i + 1].slab == s)
                    i++;
                continue;
            }
            trusted = s;
        }
        uint32_t w = v[i].word;
        uint64_t bits = v[i].bits, word = w < c->bitmap_words ? s->bitmap[w] : 0;
        uint64_t touched = w * (uint64_t)64 >= s->touched ? 0
                           : s->touched - w * (uint64_t)64 >= 64
                               ? ~(uint64_t)0
                               : ((uint64_t)1 << (s->touched - w * 64)) - 1;
        uint64_t bad = bits & ~(word & touched);
        while (SLAB_UNLIKELY(bad)) {
            unsigned b = (unsigned)__builtin_ctzll(bad);
            bad &= bad - 1;
            double_return_report(c, s->objs + ((size_t)w * 64 + b) * c->slot_size);
        }
        bits &= word & touched;
        if (!bits)
            continue;
        uint32_t freed = (uint32_t)__builtin_popcountll(bits), before = s->inuse;
        slab_bitmap_store_locked(c, s, w, word & ~bits);
        if (w < s->free_word)
            s->free_word = w;
        assert(freed <= before);
        s->inuse = before - freed;
        c->inuse_total -= freed;
        if (s->inuse == 0 || before == c->objs_per_slab)
            slab_relist_locked(c, s);
        total += freed;
    }
    if (c->max_objects)
        c->live_capped -= total;
    struct slab *chain = slab_take_excess_empty_locked(c, c->max_empty, &dtors);
    c->dtor_calls += dtors;
    heap_mutex_unlock(&c->lock);
    slab_destroy_chain(c, chain);
    __atomic_fetch_add(&c->frees, total, __ATOMIC_RELAXED);
    return total;
}

bool slab_free_one(struct kmem_cache *c, void *obj, const void *caller)
{
    if (SLAB_LIKELY(!c->debug)) {
        slab_free_batch_with_count(c, &obj, 1, NULL, NULL);
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

/* Why obj cannot be freed to c: a reason, or NULL when it can.  Reads only memory that is
 * known to be ours (the extent map first, then the buddy page map, then the slab header,
 * which only its canary makes believable).  *inside: for "not the start of an object", the
 * object of c that obj points into (NULL when it is past the last slot). */
static const char *slab_diagnose(struct kmem_cache *c, const void *obj, struct kmem_cache **owner,
                                 const char **inside)
{
    *owner = NULL;
    *inside = NULL;
    struct heap_extent *e = heap_extent_lookup(obj);
    if (!e || e->kind != HEAP_KIND_SPLIT)
        return "pointer not from slabcache";
    struct buddy_block_info info;
    if (!buddy_lookup(obj, &info) || info.tag != BUDDY_TAG_SLAB)
        return "pointer not in a slab: a freed page or inside a large block";
    struct slab *s = (struct slab *)info.head;
    struct kmem_cache *oc = slab_owner(s);
    if (!oc)
        return "slab header damaged: overflow from the block below?";
    *owner = oc;
    if (oc != c)
        return "wrong cache";
    uint32_t idx = slab_slot_index(c, s, obj);
    if (idx == UINT32_MAX) {
        size_t off = (size_t)((const char *)obj - s->objs);
        if ((const char *)obj >= s->objs && off / c->slot_size < c->objs_per_slab)
            *inside = s->objs + off / c->slot_size * c->slot_size;
        return "not the start of an object";
    }
    if (idx >= __atomic_load_n(&s->touched, __ATOMIC_ACQUIRE))
        return "a slot never handed out";
    return NULL;
}

/* The reporting half of slab_check_free_fast (fastpath.h), and the check of a size query
 * (ksize, malloc_usable_size: `freeing` false): find out what is wrong with obj, say so
 * naming op (the entry point the program called) and the kind of block, and refuse.  Also
 * reached when the fast check cannot decide (a pointer into another cache's slab of a
 * different size): then it may find obj valid after all.  errno is kept (the report's
 * write(2) may set it; free must not). */
static bool check_obj_slow(struct kmem_cache *c, const void *obj, const char *op, bool freeing)
{
    struct kmem_cache *owner;
    const char *inside;
    const char *why = slab_diagnose(c, obj, &owner, &inside);
    int saved = errno;
    if (!why) {
        bool already_free;
        if (c->marks) {
            already_free = slab_mark_is_set(c, obj);
        } else {
            struct slab *s = slab_of(c, obj);
            uint32_t idx = slab_slot_index(c, s, obj);
            uint64_t word = __atomic_load_n(&s->bitmap[idx / 64], __ATOMIC_RELAXED);
            already_free = !(word & ((uint64_t)1 << (idx % 64)));
        }
        if (!already_free)
            return true;
        count_invalid(c);
        if (freeing)
            heap_fmt_line("%s: double free of small object %p in cache %s (object is already "
                          "free%s)",
                          op, obj, c->name, c->marks ? ": cached, or back in its slab" : "");
        else
            heap_fmt_line("%s: %p is a small object of cache %s that is already free", op, obj,
                          c->name);
        if (c->debug)
            debug_report_track(c, obj);
        report_misuse();
        errno = saved;
        return false;
    }
    count_invalid(c);
    const char *what = freeing ? "invalid free" : "not an allocated block";
    if (owner && owner != c)
        heap_fmt_line("%s: %s: small object %p belongs to cache %s, freed to cache %s", op, why,
                      obj, owner->name, c->name);
    else if (inside)
        heap_fmt_line("%s: %s (%s): %p, %zu bytes into small object %p of cache %s", op, what,
                      why, obj, (size_t)((const char *)obj - inside), (const void *)inside,
                      c->name);
    else
        heap_fmt_line("%s: %s (%s): %p, cache %s", op, what, why, obj, c->name);
    report_misuse();
    errno = saved;
    return false;
}

__attribute__((noinline, cold)) bool slab_check_free_slow(struct kmem_cache *c, const void *obj,
                                                          const char *op)
{
    return check_obj_slow(c, obj, op, true);
}

__attribute__((noinline, cold)) bool slab_check_size_query_slow(struct kmem_cache *c,
                                                                const void *obj, const char *op)
{
    return check_obj_slow(c, obj, op, false);
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
    const char *why = slab_header_problem(c, s, true);
    if (why)
        VFAIL("validate %s: slab %p header damaged (%s)", c->name, (void *)s, why);
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
    /* Extra bitmaps (cache_create_with_bitmaps): slots past the last have no bit to set.
     * Their owner sets the other bits atomically without the cache lock (a pool's marks):
     * the word is read atomically too. */
    for (unsigned k = 0; tail && k < c->extra_bitmaps; k++) {
        if (__atomic_load_n(&slab_extra_bitmap(c, s, k)[c->bitmap_words - 1], __ATOMIC_RELAXED) &
            (~(uint64_t)0 << tail))
            VFAIL("validate %s: slab %p extra bitmap %u has padding bits set", c->name,
                  (void *)s, k);
    }
    if (list_for_inuse(c, s->inuse) != list)
        VFAIL("validate %s: slab %p with %u in use is on the wrong list", c->name, (void *)s,
              s->inuse);
    /* Slots never handed out are free; free slots that were handed out hold their mark. */
    for (uint32_t i = 0; i < c->objs_per_slab; i++) {
        bool used = (s->bitmap[i / 64] >> (i % 64)) & 1;
        if (i >= s->touched && used)
            VFAIL("validate %s: slab %p slot %u is in use but was never handed out (touched "
                  "%u)", c->name, (void *)s, i, s->touched);
        if (deep && c->marks && i < s->touched && !used &&
            !slab_mark_is_set(c, s->objs + (size_t)i * c->slot_size))
            VFAIL("validate %s: free object %p has lost its free mark (a write after free?)",
                  c->name, (void *)(s->objs + (size_t)i * c->slot_size));
    }
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
        const char *why = slab_header_problem(c, s, false);
        if (why) /* checked before its links are followed */
            VFAIL("validate %s: list %u reaches slab %p, header damaged (%s)", c->name,
                  (unsigned)list, (void *)s, why);
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
    if (slab_owner(s) != c)
        VFAIL("validate %s: %s holds %p, not in a slab of this cache", c->name, where, obj);
    uint32_t idx = slab_slot_index(c, s, obj);
    if (idx == UINT32_MAX)
        VFAIL("validate %s: %s holds %p, not a slot start", c->name, where, obj);
    if (idx >= s->touched)
        VFAIL("validate %s: %s holds %p, a slot never handed out", c->name, where, obj);
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

/* ---------------------------------------------------------------- layers above */

bool slab_lookup_slot(const void *p, struct slab_slot *out)
{
    void *head;
    uint16_t tag;
    if (!buddy_block_of(p, &head, &tag) || tag != BUDDY_TAG_SLAB)
        return false;
    struct slab *s = head;
    struct kmem_cache *c = slab_owner(s); /* the canary vouches for the header */
    if (!c || ((uintptr_t)p & c->slab_mask) != (uintptr_t)s)
        return false;
    uint32_t idx = slab_slot_index(c, s, p);
    if (idx == UINT32_MAX)
        return false;
    out->cache = c;
    out->slab = s;
    out->idx = idx;
    out->inuse = idx < __atomic_load_n(&s->touched, __ATOMIC_ACQUIRE) &&
                 ((__atomic_load_n(&s->bitmap[idx / 64], __ATOMIC_RELAXED) >> (idx % 64)) & 1);
    return true;
}

/* A slab on no list back to its state when made, but for the constructor (cache->lock held,
 * s trusted).  Only the words of slots ever handed out (below touched) can have bits: the
 * in-use bitmap and the extra ones are cleared that far. */
static void slab_clear_locked(struct kmem_cache *c, struct slab *s)
{
    slab_assert_locked(c);
    size_t words = ((size_t)s->touched + 63) / 64;
    for (unsigned k = 0; k <= c->extra_bitmaps; k++)
        memset(s->bitmap + (size_t)k * c->bitmap_words, 0, words * sizeof(uint64_t));
    uint32_t tail = c->objs_per_slab % 64;
    if (tail && words == c->bitmap_words) /* the padding bits read as in use */
        s->bitmap[c->bitmap_words - 1] = ~(uint64_t)0 << tail;
    /* All words zero now but the last one's padding bits (set at creation, never cleared):
     * the sum has that word's term only. */
    s->bitmap_sum = tail ? s->bitmap[c->bitmap_words - 1] * bitmap_weight(c->bitmap_words - 1) : 0;
    s->inuse = 0;
    s->free_word = 0;
    __atomic_store_n(&s->touched, 0, __ATOMIC_RELEASE);
}

size_t slab_reset_all(struct kmem_cache *c, size_t keep)
{
    if (c->debug || c->ctor || c->ctor_simple || c->dtor)
        keep = 0;
    if (keep > c->max_empty)
        keep = c->max_empty;
    struct slab *chain = NULL, *kept = NULL;
    size_t nkept = 0, dtors = 0;
    heap_mutex_lock(&c->lock);
    assert(!c->mag_size && !c->marks);
    __atomic_store_n(&c->returns, c->returns + 1, __ATOMIC_RELAXED);
    size_t live = c->inuse_total;
    struct slab_list_head *lists[] = {&c->full, &c->partial, &c->empty};
    for (size_t l = 0; l < 3; l++) {
        while (lists[l]->first) {
            struct slab *s = lists[l]->first;
            if (!slab_trust_locked(c, s, false) || !list_del_locked(c, s))
                continue; /* reported; rebuilt without it */
            if (nkept < keep) {
                slab_clear_locked(c, s);
                s->next = kept;
                kept = s;
                nkept++;
            } else {
                if (c->dtor)
                    dtors += c->objs_per_slab - s->inuse;
                s->next = chain;
                chain = s;
                c->slabs_freed++;
            }
        }
    }
    while (kept) {
        struct slab *next = kept->next;
        list_add_locked(c, kept, SLAB_LIST_EMPTY);
        kept = next;
    }
    c->inuse_total = 0;
    c->live_capped = 0;
    __atomic_fetch_add(&c->frees, live, __ATOMIC_RELAXED);
    c->dtor_calls += dtors;
    heap_mutex_unlock(&c->lock);
    slab_destroy_chain(c, chain);
    return live;
}

/* The run of free slots that starts at s's first free slot, up to max (cache->lock held,
 * s trusted). */
static size_t slab_take_run_locked(struct kmem_cache *c, struct slab *s, size_t max, void **first)
{
    slab_assert_locked(c);
    uint32_t w = s->free_word, words = c->bitmap_words;
    while (w < words && s->bitmap[w] == ~(uint64_t)0)
        w++;
    if (w == words || !max)
        return 0;
    unsigned b = (unsigned)__builtin_ctzll(~s->bitmap[w]);
    *first = s->objs + ((size_t)w * 64 + b) * c->slot_size;
    size_t got = 0;
    uint32_t last = 0;
    for (;;) {
        uint64_t used = s->bitmap[w] >> b; /* bit 0 is free */
        size_t len = used ? (size_t)__builtin_ctzll(used) : 64 - b;
        if (len > max - got)
            len = max - got;
        uint64_t bits = (len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1)) << b;
        slab_bitmap_store_locked(c, s, w, s->bitmap[w] | bits);
        got += len;
        last = w * 64 + b + (uint32_t)len - 1;
        /* Go on into the next word only if the run reached the end of this one. */
        if (b + len < 64 || got == max || ++w == words || (s->bitmap[w] & 1))
            break;
        b = 0;
    }
    while (s->free_word < words && s->bitmap[s->free_word] == ~(uint64_t)0)
        s->free_word++;
    s->inuse += (uint32_t)got;
    assert(s->inuse <= c->objs_per_slab);
    if (last >= s->touched)
        __atomic_store_n(&s->touched, last + 1, __ATOMIC_RELEASE);
    c->inuse_total += got;
    slab_relist_locked(c, s);
    return got;
}

size_t slab_alloc_run(struct kmem_cache *c, size_t max, void **first)
{
    assert(!c->mag_size && !c->marks && !c->debug && !c->max_objects);
    size_t got = 0;
    heap_mutex_lock(&c->lock);
    for (;;) {
        struct slab *s = c->partial.first ? c->partial.first : c->empty.first;
        if (s) {
            if (!slab_trust_locked(c, s, true))
                continue; /* reported; the lists were rebuilt without it */
            got = slab_take_run_locked(c, s, max, first);
            break;
        }
        heap_mutex_unlock(&c->lock);
        s = slab_create(c);
        heap_mutex_lock(&c->lock);
        if (!s)
            break;
        c->slabs_created++;
        if (c->ctor || c->ctor_simple)
            c->ctor_calls += c->objs_per_slab;
        list_add_locked(c, s, SLAB_LIST_EMPTY);
    }
    heap_mutex_unlock(&c->lock);
    if (!got)
        errno = ENOMEM;
    return got;
}

/* ---------------------------------------------------------------- walks */

/* Up to `max` addresses of slots still in use (cache->lock held).  Starts over if a damaged
 * link is found (reported; the lists are rebuilt when the program goes on). */
static size_t collect_live_locked(struct kmem_cache *c, void **addrs, size_t max)
{
    slab_assert_locked(c);
    size_t n;
restart:
    n = 0;
    struct slab_list_head *lists[] = {&c->full, &c->partial};
    for (size_t l = 0; l < 2; l++) {
        for (struct slab *s = lists[l]->first; s && n < max; s = s->next) {
            if (!slab_trust_locked(c, s, false))
                goto restart;
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
            if (!slab_trust_locked(c, s, false) || !list_del_locked(c, s))
                continue; /* reported; rebuilt without it */
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
    for (size_t l = 0; l < 3; l++) {
        for (struct slab *s = lists[l]->first; s; s = s->next) {
            if (!slab_trust_locked(c, s, false)) {
                l = (size_t)-1; /* reported and rebuilt: start over */
                break;
            }
            fn(c, s, arg);
        }
    }
    heap_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------- recovery */

/* The in-use bitmap's set bits that stand for slots equal s->inuse (padding excluded). */
static bool slab_bits_match_inuse(const struct kmem_cache *c, const struct slab *s)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < c->bitmap_words; w++)
        n += (uint32_t)__builtin_popcountll(s->bitmap[w]);
    return n - (c->objs_per_slab % 64 ? 64 - c->objs_per_slab % 64 : 0) == s->inuse;
}

struct rebuild {
    struct kmem_cache *c;
    const struct slab *detached;
    size_t kept, inuse;
};

static void rebuild_extent(struct heap_extent *e, void *arg)
{
    struct rebuild *rb = arg;
    struct kmem_cache *c = rb->c;
    const struct buddy_page *pages = e->kind == HEAP_KIND_SPLIT ? e->owner : NULL;
    if (!pages)
        return;
    for (size_t p = 0; p < BUDDY_PAGES_PER_EXTENT; p += (size_t)1 << c->slab_order) {
        const struct buddy_page pg = pages[p];
        struct slab *s = (struct slab *)(e->base + (p << BUDDY_PAGE_SHIFT));
        /* Slabs being made or released are on no list and come back by themselves. */
        if (pg.state != BUDDY_PAGE_ALLOC_HEAD || pg.tag != BUDDY_TAG_SLAB ||
            pg.order != c->slab_order || slab_header_problem(c, s, true) ||
            !slab_bits_match_inuse(c, s) || s->list == SLAB_LIST_NONE || s == rb->detached)
            continue;
        s->list = SLAB_LIST_NONE;
        list_add_locked(c, s, list_for_inuse(c, s->inuse));
        rb->kept++;
        rb->inuse += s->inuse;
    }
}

/* The cache's lists from the buddy page map (out of band, so what a caller's write cannot
 * reach): every slab block of the cache's order whose header is sound, on the list its count
 * says.  Damaged slabs are left out and never touched again (their memory stays allocated,
 * counted in slabs_lost); their objects in magazines are dropped when they come back.  Slabs
 * on no list are being made (not counted yet) or released (no longer counted), except
 * `detached`, which is counted and which its caller lists. */
static void slab_rebuild_lists_locked(struct kmem_cache *c, const struct slab *detached)
{
    slab_assert_locked(c);
    struct slab_list_head *lists[] = {&c->full, &c->partial, &c->empty};
    for (size_t l = 0; l < 3; l++) {
        lists[l]->first = NULL;
        lists[l]->count = 0;
    }
    struct rebuild rb = {c, detached, detached ? 1 : 0, detached ? detached->inuse : 0};
    buddy_lock_all();
    heap_for_each_extent(rebuild_extent, &rb);
    buddy_unlock_all();
    size_t listed = c->slabs_created - c->slabs_freed;
    if (listed > rb.kept) {
        c->slabs_lost += listed - rb.kept;
        c->slabs_freed += listed - rb.kept;
    }
    c->inuse_total = rb.inuse;
}
