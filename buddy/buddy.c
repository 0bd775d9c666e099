/* SPDX-License-Identifier: MIT */
/* buddy/buddy.c - binary buddy allocator of 4 KiB pages over 4 MiB heap extents.
 *
 * GEOMETRY AND FORMULAS
 *   Each buddy extent is one heap extent of HEAP_EXTENT_SIZE (4 MiB = 1024 pages), aligned to
 *   its size.  Pages are numbered 0..1023 inside their extent; a block of order k is 2^k pages
 *   and starts at a page index that is a multiple of 2^k.  Then, for a block at index b:
 *     buddy of b at order k:            b ^ (1 << k)          (buddy_of_if_free_locked)
 *     parent (merged) block:            b & ~(1 << k)  ==  min(b, buddy)
 *     head of the block holding page p: p & ~((1 << k) - 1)   (k read from page p's entry)
 *     address of page p:                extent base + (p << 12)
 *     bit of block b in order k's map:  b >> k   (word fmap_off(k) + (b >> k) / 64)
 *   The whole extent is the only block of order BUDDY_MAX_ORDER; it has no buddy.
 *
 * OUT OF BAND, ALL OF IT
 *   Nothing is ever written into free memory and nothing read from it: a write after free or
 *   an overflow into a free block changes no metadata.  Per extent (struct buddy_extent, from
 *   heap_meta_alloc):
 *     pages[1024]       page map: order, state, tag of every page (below)
 *     avail[k]          per order k, 1024 >> k bits: bit b >> k set iff a free block of order k
 *                       starts at b and can be allocated (37 words for the 11 orders)
 *     avail_dirty[k]    the subset of avail[k] whose block has a dirty page
 *     sum[k]            bit w set iff word w of avail[k] is nonzero (the FastMM two-level
 *                       search: one ctz on sum, one on the word); sum_dirty likewise
 *     orders            bit k set iff sum[k] != 0; dirty_orders likewise
 *     dirty[16]         per page: may be resident (set when its block is allocated, cleared
 *                       when a purge of its free block succeeds); clear = reads as zero
 *     freepg[16]        per page: lies in a free block that can be allocated
 *     recent[2][16]     per page: freed in epoch `epoch` / in epoch - 1 (the decay's clock)
 *     busy[16]          per head: a free block a purge has taken off for a moment
 *   and per order k a list of the extents whose orders has bit k (buddy.olist[k]), so
 *   allocation finds a block in O(orders): the first extent of a list, two ctz.
 *
 * PAGE STATES (struct buddy_page, one per page)
 *
 *     state        order           tag     where the page is
 *     FREE_HEAD    of the block    0       first page of a free block (avail bit, or busy)
 *     FREE_TAIL    of the block    0       any other page of a free block
 *     ALLOC_HEAD   of the block    owner   first page of an allocated block (buddy_free arg)
 *     ALLOC_TAIL   of the block    owner   any other page of an allocated block
 *
 *   A run (buddy_alloc_run: n pages anywhere in an extent, no alignment) has order
 *   BUDDY_ORDER_RUN on all its pages; link[] holds n at its head and, at each other page,
 *   the distance back to the head (its pages cannot find the head by alignment).
 *   Every page carries its block's order, so buddy_lookup() finds the head from any page in
 *   O(1), and a FREE_TAIL page passed to buddy_free() is recognised as a double free even after
 *   its block was merged into a larger one.  Entries are written under the lock and read with
 *   relaxed atomic loads by buddy_lookup(), which takes no lock: its callers only ask about
 *   their own live blocks, whose entries do not change while the block is live.
 *
 * ALLOCATION PREFERS RESIDENT MEMORY
 *   alloc(k) looks first for a free block with a dirty page: for j = k..10, the first extent
 *   of olist[j] if its dirty_orders has bit j (a free moves its extent to the front of the
 *   list of the freed block's order, so the front extent holds the most recently freed
 *   memory); then for any free block, smallest order first.  Within an extent, a dirty block
 *   before a clean one.  Splitting keeps the half with more dirty pages and frees the other.
 *   So a block freed and allocated again reuses resident pages: no page fault, no purge.
 *
 * FRAGMENTATION
 *   Internal: buddy_alloc_bytes rounds up to 2^k pages (at most just under half wasted);
 *   buddy_alloc callers ask for orders directly.  Runs (kmalloc's large blocks) take exactly
 *   the pages asked for.
 *
 * RUNS: BEST FIT OVER THE FREE PAGE MAP
 *   A run of n pages goes in the smallest stretch of allocatable free pages (freepg) that
 *   holds it, over every extent whose free blocks could hold it (one of order >= k - 2 for
 *   2^(k-1) < n <= 2^k: a stretch that long always contains one), lowest address first among
 *   equals; a new extent when none does.  The free blocks it covers come off the free maps,
 *   and what they had outside the run goes back as the aligned pieces it decomposes into.
 *   Freeing a run (or a shrink's tail) frees its pieces, each merged with its free buddies.
 *   Why not power-of-two blocks: they need aligned holes, so a 2-4 MiB block needs a whole
 *   extent, and the unused upper part of each block is never written by its owner but is by
 *   the next owner of a larger size; large1's model (benchmarks/placement_sim.c) has
 *   power-of-two placement at 9.6 page faults per MiB of churn and best fit over the free
 *   pages at 6.2 (docs/limits.md section 7).
 *   External: free blocks are always fully coalesced (validated), so free memory is never held
 *   as two free buddies of one order; it can still be scattered across extents by long-lived
 *   allocations (one live order-0 page pins its 4 MiB extent).  sqlite's mem5 bound applies:
 *   with requests of at most 2^k pages, a pool of M pages never fails while live memory stays
 *   below M / (2 + k) -- Robson's bound; we grow by whole extents instead of failing.
 *
 * RETURNING MEMORY: DECAY
 *   Time is cut into epochs of the decay time D (clock_now_ms() / D).  A free sets the freed
 *   pages' bits in recent[0] of its extent, after shifting the extent's recent maps to the
 *   current epoch (recent[1] = recent[0] if one epoch passed, both cleared if more).  The
 *   purge candidates of an extent are then dirty & freepg & ~recent[0] & ~recent[1]: free
 *   pages freed two or more epoch starts ago, i.e. between D and 2D ago or longer.  The decay
 *   pass runs from the slow paths (alloc, free, resize, buddy_tick) when the epoch changed
 *   since the last pass, or when the last one stopped at its batch limit.  It takes up to
 *   PURGE_BATCH free blocks holding candidates off the free maps (busy: not allocatable, not
 *   mergeable, still FREE in the page map so a double free is still caught), drops the lock,
 *   madvises their candidate runs (adjacent runs of one extent in one call), retakes the lock,
 *   clears the purged pages' dirty bits and frees the blocks again (merging).  A pass gives
 *   back at most DECAY_PASS_BYTES; the next slow path goes on.  So the system calls per MiB
 *   freed are bounded by the free blocks (one run per block at most, fewer when adjacent), and
 *   a page is purged at most once per free.  buddy_trim() runs the same purge ignoring age.
 *   Whole free extents stay as spares up to spare_limit() (their pages decay like any
 *   others); past it one goes back to the heap at once.
 *
 * RECLAIM BEFORE ENOMEM
 *   When the heap cannot grow, an allocation drops the lock, calls the upper layer's reclaim
 *   callback (buddy_set_reclaim), gives every whole free extent back to the heap (which trims
 *   the break, unmaps, and gives back its own kept extents before it fails), and retries once.
 *
 * HUGE BLOCKS
 *   Requests above 4 MiB (buddy_alloc_bytes) are dedicated heap extents of kind HEAP_KIND_WHOLE
 *   whose heap descriptor holds the tag; buddy_free() of their base gives them back whole;
 *   buddy_resize_huge() grows or shrinks them with mremap (heap_extent_resize).
 *
 * LOCKING
 *   1. buddy.lock (one pthread mutex) protects everything in `buddy` and every field of every
 *      extent record.  A decay pass holds it only to take blocks off and to put them back.
 *   2. The heap's lock is taken inside it (heap_extent_alloc/free, heap_meta_*): order is
 *      buddy -> heap, never the reverse.  heap_purge (madvise) is called without buddy.lock.
 *   Functions named *_locked require buddy.lock held by the caller (asserted in debug builds).
 *   buddy_lookup() takes no lock.  buddy_lock_all()/buddy_unlock_all() bracket fork().
 *
 * Nothing here calls malloc or printf: metadata comes from heap_meta_alloc, and messages are
 * formatted into stack buffers and written with write(2).
 */
#include "buddy/buddy.h"
#include "heap/mutex.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap/options.h"
#include "heap/fmt.h"

#ifdef NDEBUG
static const bool buddy_debug = false;
#else
static const bool buddy_debug = true;
#endif

#define BUDDY_ORDERS (BUDDY_MAX_ORDER + 1)
#define MAP_WORDS (BUDDY_PAGES_PER_EXTENT / 64) /* one bit per page: 16 words */
#define FMAP_WORDS 37                           /* sum over k of max(1, 16 >> k) */
#define PURGE_BATCH 16                      /* free blocks a purge takes off at once */
#define DECAY_PASS_BYTES ((size_t)64 << 20) /* free bytes one decay pass looks at, at most */

_Static_assert(BUDDY_PAGES_PER_EXTENT == 1024, "the free maps are laid out for 1024 pages");

/* First word of order k's free map: orders 0..4 take 16, 8, 4, 2, 1 words, the rest 1 each. */
static inline unsigned fmap_off(unsigned k)
{
    return k <= 4 ? 32u - (32u >> k) : 26u + k;
}

/* ---------------------------------------------------------------- structures */

/* Per-extent record from heap_meta_alloc; the heap extent's `owner` points at it (and thus
 * at its page map, the first member).  Every field but `pages` (read lock-free by
 * buddy_lookup) is under buddy.lock. */
struct buddy_extent {
    struct buddy_page pages[BUDDY_PAGES_PER_EXTENT]; /* page map; must stay first */
    uint64_t avail[FMAP_WORDS];       /* per order: heads of allocatable free blocks */
    uint64_t avail_dirty[FMAP_WORDS]; /* ... of those, blocks with a dirty page */
    uint16_t sum[BUDDY_ORDERS];       /* bit w: word w of order k's avail is nonzero */
    uint16_t sum_dirty[BUDDY_ORDERS]; /* the same over avail_dirty */
    uint16_t orders;                  /* bit k: sum[k] != 0 (the extent is on olist[k]) */
    uint16_t dirty_orders;            /* bit k: sum_dirty[k] != 0 */
    uint64_t dirty[MAP_WORDS];        /* page may be resident */
    uint64_t freepg[MAP_WORDS];       /* page lies in an allocatable free block */
    uint64_t recent[2][MAP_WORDS];    /* page freed in epoch `epoch` / in `epoch` - 1 */
    uint64_t busy[MAP_WORDS];         /* head of a free block taken off by a purge */
    uint64_t freed[MAP_WORDS];        /* head of a block freed since its page was last
                                         allocated (read lock-free by buddy_freed_head) */
    uint64_t epoch;                   /* the epoch recent[0] belongs to */
    struct heap_extent *heap;         /* the 4 MiB heap extent */
    char *base;                       /* == (char *)heap->base */
    struct buddy_extent *next, *prev; /* buddy.extents */
    struct buddy_extent *onext[BUDDY_ORDERS], *oprev[BUDDY_ORDERS]; /* buddy.olist[k] */
    /* Runs only: link[p] at a run's head is its length, at its other pages the distance
     * back to the head; read lock-free by buddy_lookup like `pages`.  Its own metadata
     * block, made with the extent's first run (run_alloc_locked): an extent of buddy blocks
     * alone (slabs) never has one, and the 2 KiB stay off its record's pages. */
    uint16_t *link;
};

#define LINK_BYTES (BUDDY_PAGES_PER_EXTENT * sizeof(uint16_t))

static struct {
    pthread_mutex_t lock;
    pthread_t owner; /* debug: thread holding lock (valid while `held`) */
    bool held;
    bool noted;      /* debug: in heap/mutex.h's registry of locks */
    struct buddy_extent *olist[BUDDY_ORDERS]; /* extents with a free block of order k */
    struct buddy_extent *otail[BUDDY_ORDERS];
    struct buddy_extent *extents; /* every buddy extent held */
    struct buddy_stats st;        /* counters */
    size_t busy_blocks;           /* free blocks taken off by purges in flight */
    size_t huge_peak[2];          /* most huge bytes live in epoch huge_epoch, and before */
    uint64_t huge_epoch;
} buddy = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The decay's state outside the lock: read by buddy_tick() with relaxed atomics. */
static struct {
    uint64_t pass_epoch; /* epoch of the last pass started */
    bool more;           /* the last pass stopped at DECAY_PASS_BYTES */
    bool running;        /* a thread is running a decay pass */
} decay;

/* ---------------------------------------------------------------- lock */

static void buddy_lock(void)
{
    pthread_mutex_lock(&buddy.lock);
    if (buddy_debug) {
        __atomic_store_n(&buddy.owner, pthread_self(), __ATOMIC_RELAXED);
        __atomic_store_n(&buddy.held, true, __ATOMIC_RELAXED);
        if (!buddy.noted) { /* the fork test enumerates the library's locks */
            buddy.noted = true;
            heap_mutex_note(&buddy.lock);
        }
    }
}

static void buddy_unlock(void)
{
    if (buddy_debug)
        __atomic_store_n(&buddy.held, false, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&buddy.lock);
}

static void buddy_assert_locked(void)
{
    if (buddy_debug) {
        assert(__atomic_load_n(&buddy.held, __ATOMIC_RELAXED));
        assert(pthread_equal(__atomic_load_n(&buddy.owner, __ATOMIC_RELAXED), pthread_self()));
    }
}

/* ---------------------------------------------------------------- page map */

static inline struct buddy_page page_get(const struct buddy_page *pg)
{
    struct buddy_page v;
    __atomic_load(pg, &v, __ATOMIC_RELAXED);
    return v;
}

static inline size_t order_pages(unsigned order)
{
    return (size_t)1 << order;
}

static inline size_t order_bytes(unsigned order)
{
    return BUDDY_PAGE_SIZE << order;
}

static inline void *page_addr(const struct buddy_extent *ext, size_t idx)
{
    return ext->base + (idx << BUDDY_PAGE_SHIFT);
}

static size_t page_index(const struct buddy_extent *ext, const void *p)
{
    return (size_t)((const char *)p - ext->base) >> BUDDY_PAGE_SHIFT;
}

/* Mark the n pages [idx, idx + n) of a block of `order` (n = 2^order, or fewer for an
 * allocated run): the first gets state `head`, the others `tail`.  This is the O(n) part of
 * split and merge: the tail entry is stored two at a time as one 64-bit word.  Plain stores:
 * they race with no lock-free reader, as buddy_lookup() reads only pages of live blocks, and
 * those are written only while their block is not live. */
static void pages_mark_locked(struct buddy_extent *ext, size_t idx, size_t n, unsigned order,
                              unsigned head, unsigned tail, uint16_t tag)
{
    buddy_assert_locked();
    struct buddy_page h = {.order = (uint8_t)order, .state = (uint8_t)head, .tag = tag};
    struct buddy_page t[2] = {{.order = (uint8_t)order, .state = (uint8_t)tail, .tag = tag},
                              {.order = (uint8_t)order, .state = (uint8_t)tail, .tag = tag}};
    struct buddy_page *pg = &ext->pages[idx];
    uint64_t pair;
    memcpy(&pair, t, sizeof pair);
    size_t i = 1;
    for (; i + 1 < n; i += 2)
        memcpy(&pg[i], &pair, sizeof pair);
    if (i < n)
        pg[i] = t[0];
    pg[0] = h;
}

static void block_mark_locked(struct buddy_extent *ext, size_t idx, unsigned order,
                              unsigned head, unsigned tail, uint16_t tag)
{
    pages_mark_locked(ext, idx, order_pages(order), order, head, tail, tag);
}

/* The smallest order whose block holds n pages (1 <= n <= 2^BUDDY_MAX_ORDER). */
static inline unsigned order_for_pages(size_t n)
{
    return n <= 1 ? 0 : (unsigned)(64 - __builtin_clzll((unsigned long long)(n - 1)));
}

/* The largest aligned power-of-two piece that starts at page idx and ends by `end` (the
 * pieces of a run, idx < end <= BUDDY_PAGES_PER_EXTENT): its order. */
static inline unsigned piece_order(size_t idx, size_t end)
{
    unsigned k = idx ? (unsigned)__builtin_ctzll(idx) : BUDDY_MAX_ORDER;
    if (k > BUDDY_MAX_ORDER)
        k = BUDDY_MAX_ORDER;
    while (order_pages(k) > end - idx)
        k--;
    return k;
}

/* The head of the allocated block holding page idx, whose entry is pg (ALLOC_HEAD or
 * ALLOC_TAIL): by alignment for a buddy block, by link[] for a run.  Lock-free like
 * buddy_lookup: a live block's entries do not change. */
static inline size_t block_head(const struct buddy_extent *ext, size_t idx, struct buddy_page pg)
{
    if (pg.order == BUDDY_ORDER_RUN)
        return pg.state == BUDDY_PAGE_ALLOC_HEAD
                   ? idx
                   : idx - __atomic_load_n(&__atomic_load_n(&ext->link, __ATOMIC_ACQUIRE)[idx],
                                           __ATOMIC_RELAXED);
    return idx & ~(order_pages(pg.order) - 1);
}

/* Pages in the allocated block whose head is page idx (entry pg, ALLOC_HEAD). */
static inline size_t alloc_block_pages(const struct buddy_extent *ext, size_t idx,
                                       struct buddy_page pg)
{
    if (pg.order == BUDDY_ORDER_RUN)
        return __atomic_load_n(&__atomic_load_n(&ext->link, __ATOMIC_ACQUIRE)[idx],
                               __ATOMIC_RELAXED);
    return pg.order <= BUDDY_MAX_ORDER ? order_pages(pg.order) : 0;
}

/* ---------------------------------------------------------------- per-page bitmaps
 *
 * Ranges are [idx, idx + n) with n >= 1: blocks (a power of two, aligned), or the pages of a
 * run (buddy_alloc_run) and the pieces around it, which need not be either. */

/* The bits of word w that lie in [idx, idx + n). */
static inline uint64_t range_word_mask(size_t w, size_t idx, size_t n)
{
    size_t lo = w * 64 > idx ? 0 : idx - w * 64;
    size_t hi = idx + n - w * 64 >= 64 ? 64 : idx + n - w * 64;
    uint64_t m = hi == 64 ? ~(uint64_t)0 : (((uint64_t)1 << hi) - 1);
    return m & (~(uint64_t)0 << lo);
}

#define RANGE_FOR_EACH_WORD(w, idx, n) for (size_t w = (idx) / 64; w <= ((idx) + (n)-1) / 64; w++)

static void range_set(uint64_t *map, size_t idx, size_t n)
{
    RANGE_FOR_EACH_WORD(w, idx, n) {
        map[w] |= range_word_mask(w, idx, n);
    }
}

static void range_clear(uint64_t *map, size_t idx, size_t n)
{
    RANGE_FOR_EACH_WORD(w, idx, n) {
        map[w] &= ~range_word_mask(w, idx, n);
    }
}

static size_t range_count(const uint64_t *map, size_t idx, size_t n)
{
    size_t c = 0;
    RANGE_FOR_EACH_WORD(w, idx, n) {
        c += (size_t)__builtin_popcountll(map[w] & range_word_mask(w, idx, n));
    }
    return c;
}

static bool range_any(const uint64_t *map, size_t idx, size_t n)
{
    RANGE_FOR_EACH_WORD(w, idx, n) {
        if (map[w] & range_word_mask(w, idx, n))
            return true;
    }
    return false;
}

static inline bool bit_get(const uint64_t *map, size_t i)
{
    return (map[i / 64] >> (i % 64)) & 1;
}

/* ---------------------------------------------------------------- the decay's clock */

static uint64_t clock_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t (*clock_ms)(void) = clock_real_ms;

void buddy_set_clock_for_tests(uint64_t (*now_ms)(void))
{
    __atomic_store_n(&clock_ms, now_ms ? now_ms : clock_real_ms, __ATOMIC_RELEASE);
}

static uint64_t clock_now_ms(void)
{
    return __atomic_load_n(&clock_ms, __ATOMIC_ACQUIRE)();
}

uint64_t buddy_now_ms(void)
{
    return clock_now_ms();
}

static uint32_t decay_time_ms;
static bool decay_time_set; /* decay_time_ms holds the option (or the setter's value) */

static uint32_t decay_ms(void)
{
    if (__builtin_expect(!__atomic_load_n(&decay_time_set, __ATOMIC_ACQUIRE), 0)) {
        /* SLABCACHE_DECAY_MS (heap/options.h; its default is BUDDY_DECAY_MS_DEFAULT) */
        uint32_t d = (uint32_t)heap_opt_uint(OPT_DECAY_MS);
        __atomic_store_n(&decay_time_ms, d, __ATOMIC_RELAXED); /* racing readers agree */
        __atomic_store_n(&decay_time_set, true, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&decay_time_ms, __ATOMIC_RELAXED);
}

uint32_t buddy_set_decay_ms(uint32_t ms)
{
    uint32_t old = decay_ms();
    __atomic_store_n(&decay_time_ms, ms, __ATOMIC_RELAXED);
    __atomic_store_n(&decay.pass_epoch, UINT64_MAX, __ATOMIC_RELAXED); /* a pass is due */
    return old;
}

/* The current epoch: the clock in units of the decay time (0 = every millisecond is one;
 * never = always epoch 0). */
static uint64_t epoch_now(uint32_t d)
{
    if (d == BUDDY_DECAY_NEVER)
        return 0;
    uint64_t now = clock_now_ms();
    return d ? now / d : now;
}

/* Bring an extent's recent maps to `epoch`: recent[0] belongs to ext->epoch. */
static void recent_shift_locked(struct buddy_extent *ext, uint64_t epoch)
{
    buddy_assert_locked();
    if (ext->epoch == epoch)
        return;
    if (ext->epoch + 1 == epoch)
        memcpy(ext->recent[1], ext->recent[0], sizeof ext->recent[1]);
    else
        memset(ext->recent[1], 0, sizeof ext->recent[1]);
    memset(ext->recent[0], 0, sizeof ext->recent[0]);
    ext->epoch = epoch;
}

/* ---------------------------------------------------------------- extent lookup */

/* The buddy extent record behind a heap extent, or NULL if it is not one of ours. */
static struct buddy_extent *extent_of_heap(const struct heap_extent *he)
{
    if (!he || __atomic_load_n(&he->kind, __ATOMIC_RELAXED) != HEAP_KIND_SPLIT)
        return NULL;
    struct buddy_extent *ext = __atomic_load_n(&he->owner, __ATOMIC_RELAXED);
    if (!ext || ext->heap != he)
        return NULL;
    return ext;
}

static struct buddy_extent *extent_of_addr(const void *p)
{
    return extent_of_heap(heap_extent_lookup(p));
}

/* ---------------------------------------------------------------- free maps */

/* Word and bit of the block at page idx in order k's map. */
static inline size_t fmap_word(unsigned k, size_t idx)
{
    return fmap_off(k) + ((idx >> k) / 64);
}

static inline uint64_t fmap_bit(unsigned k, size_t idx)
{
    return (uint64_t)1 << ((idx >> k) % 64);
}

static void olist_unlink_locked(struct buddy_extent *ext, unsigned k)
{
    buddy_assert_locked();
    if (ext->oprev[k])
        ext->oprev[k]->onext[k] = ext->onext[k];
    else
        buddy.olist[k] = ext->onext[k];
    if (ext->onext[k])
        ext->onext[k]->oprev[k] = ext->oprev[k];
    else
        buddy.otail[k] = ext->oprev[k];
    ext->onext[k] = ext->oprev[k] = NULL;
}

/* Put ext on olist[k]: at the front (it holds the most recently freed memory) or the back. */
static void olist_link_locked(struct buddy_extent *ext, unsigned k, bool front)
{
    buddy_assert_locked();
    if (front) {
        ext->oprev[k] = NULL;
        ext->onext[k] = buddy.olist[k];
        if (buddy.olist[k])
            buddy.olist[k]->oprev[k] = ext;
        else
            buddy.otail[k] = ext;
        buddy.olist[k] = ext;
    } else {
        ext->onext[k] = NULL;
        ext->oprev[k] = buddy.otail[k];
        if (buddy.otail[k])
            buddy.otail[k]->onext[k] = ext;
        else
            buddy.olist[k] = ext;
        buddy.otail[k] = ext;
    }
}

/* Set (on) or clear the bit of block idx of order k in one of the two maps (with its summary
 * word and order mask). */
static void fmap_update(uint64_t *map, uint16_t *sum, uint16_t *orders, unsigned k, size_t idx,
                        bool on)
{
    size_t w = fmap_word(k, idx);
    uint16_t sbit = (uint16_t)(1u << (w - fmap_off(k)));
    if (on) {
        map[w] |= fmap_bit(k, idx);
        sum[k] |= sbit;
        *orders |= (uint16_t)(1u << k);
        return;
    }
    map[w] &= ~fmap_bit(k, idx);
    if (!map[w]) {
        sum[k] &= (uint16_t)~sbit;
        if (!sum[k])
            *orders &= (uint16_t)~(1u << k);
    }
}

/* The first block in order k's map (dirty or not) of an extent whose mask has bit k. */
static size_t fmap_first(const uint64_t *map, const uint16_t *sum, unsigned k)
{
    unsigned w = (unsigned)__builtin_ctz(sum[k]);
    unsigned b = (unsigned)__builtin_ctzll(map[fmap_off(k) + w]);
    return ((size_t)w * 64 + b) << k;
}

/* The one place that finds a buddy.  The buddy of the block at page index `idx` with order
 * `order` is idx ^ (1 << order) (the block and its buddy differ only in that bit; both are
 * aligned to 2^order).  It is mergeable iff its bit is set in the free map of the same order
 * (an allocatable free block of exactly that order starts there): a free block of another
 * order, one a purge holds, an allocated block or a page inside another block never
 * qualifies.  Returns the buddy's page index, or -1 (also for order BUDDY_MAX_ORDER, the whole
 * extent, which has no buddy). */
static long buddy_of_if_free_locked(const struct buddy_extent *ext, size_t idx, unsigned order)
{
    buddy_assert_locked();
    if (order >= BUDDY_MAX_ORDER)
        return -1;
    size_t b = idx ^ order_pages(order);
    if (!(ext->avail[fmap_word(order, b)] & fmap_bit(order, b)))
        return -1;
    assert(ext->pages[b].state == BUDDY_PAGE_FREE_HEAD && ext->pages[b].order == order);
    return (long)b;
}

/* Make [idx, idx + 2^order) an allocatable free block. */
static void free_push_locked(struct buddy_extent *ext, size_t idx, unsigned order)
{
    buddy_assert_locked();
    size_t n = order_pages(order);
    block_mark_locked(ext, idx, order, BUDDY_PAGE_FREE_HEAD, BUDDY_PAGE_FREE_TAIL, 0);
    range_set(ext->freepg, idx, n);
    size_t dirty = range_count(ext->dirty, idx, n);
    bool listed = (ext->orders >> order) & 1;
    fmap_update(ext->avail, ext->sum, &ext->orders, order, idx, true);
    if (dirty)
        fmap_update(ext->avail_dirty, ext->sum_dirty, &ext->dirty_orders, order, idx, true);
    if (!listed)
        olist_link_locked(ext, order, dirty != 0);
    else if (dirty && buddy.olist[order] != ext) {
        olist_unlink_locked(ext, order);
        olist_link_locked(ext, order, true);
    }
    buddy.st.free_blocks[order]++;
    buddy.st.free_bytes += order_bytes(order);
    buddy.st.dirty_free_bytes += dirty << BUDDY_PAGE_SHIFT;
}

/* Take the free block at idx off the free maps.  Its page entries are left for the caller to
 * rewrite (a purge leaves them FREE). */
static void free_remove_locked(struct buddy_extent *ext, size_t idx, unsigned order)
{
    buddy_assert_locked();
    size_t n = order_pages(order);
    fmap_update(ext->avail, ext->sum, &ext->orders, order, idx, false);
    if (ext->avail_dirty[fmap_word(order, idx)] & fmap_bit(order, idx))
        fmap_update(ext->avail_dirty, ext->sum_dirty, &ext->dirty_orders, order, idx, false);
    if (!((ext->orders >> order) & 1))
        olist_unlink_locked(ext, order);
    range_clear(ext->freepg, idx, n);
    buddy.st.free_blocks[order]--;
    buddy.st.free_bytes -= order_bytes(order);
    buddy.st.dirty_free_bytes -= range_count(ext->dirty, idx, n) << BUDDY_PAGE_SHIFT;
}

/* ---------------------------------------------------------------- extents */

static size_t spare_limit(void);

/* Take one more 4 MiB extent from the heap; it enters as a free order-10 block, dirty
 * everywhere if the heap says it may hold old data (`dirty`), else clean (fresh or purged
 * memory reads as zero and is not resident). */
static int extent_grow_locked(void)
{
    buddy_assert_locked();
    struct buddy_extent *ext = heap_meta_alloc(sizeof *ext);
    if (!ext) {
        errno = ENOMEM;
        return -1;
    }
    struct heap_extent *he =
        heap_extent_alloc(HEAP_EXTENT_SIZE, HEAP_KIND_SPLIT, 0, ext, false);
    if (!he) {
        int e = errno;
        heap_meta_free(ext, sizeof *ext);
        errno = e;
        return -1;
    }
    ext->heap = he;
    ext->base = (char *)he->base;
    ext->prev = NULL;
    ext->next = buddy.extents;
    if (ext->next)
        ext->next->prev = ext;
    buddy.extents = ext;
    buddy.st.extents++;
    if (he->dirty)
        memset(ext->dirty, 0xff, sizeof ext->dirty);
    free_push_locked(ext, 0, BUDDY_MAX_ORDER);
    return 0;
}

/* Free an extent's record and its runs' link map (its memory went back to the heap). */
static void extent_record_free(struct buddy_extent *ext)
{
    if (ext->link)
        heap_meta_free(ext->link, LINK_BYTES);
    heap_meta_free(ext, sizeof *ext);
}

/* Give a wholly free extent (already off the free maps) back to the heap. */
static void extent_release_locked(struct buddy_extent *ext)
{
    buddy_assert_locked();
    if (ext->prev)
        ext->prev->next = ext->next;
    else
        buddy.extents = ext->next;
    if (ext->next)
        ext->next->prev = ext->prev;
    buddy.st.extents--;
    heap_extent_free(ext->heap); /* cannot fail for a live extent; the heap reports if it does */
    extent_record_free(ext);
}

/* Give back whole free extents beyond `keep`; returns bytes. */
static size_t trim_extents_locked(size_t keep)
{
    buddy_assert_locked();
    size_t bytes = 0;
    while (buddy.st.free_blocks[BUDDY_MAX_ORDER] > keep) {
        struct buddy_extent *ext = buddy.olist[BUDDY_MAX_ORDER];
        free_remove_locked(ext, 0, BUDDY_MAX_ORDER);
        extent_release_locked(ext);
        bytes += HEAP_EXTENT_SIZE;
    }
    return bytes;
}

/* ---------------------------------------------------------------- alloc, free */

/* Where to take a block of `order` from: an extent and the order j >= order of its free
 * block.  Resident memory first (see ALLOCATION PREFERS RESIDENT MEMORY), then the smallest
 * order.  NULL when no extent has a free block that large. */
static struct buddy_extent *find_block_locked(unsigned order, unsigned *j)
{
    buddy_assert_locked();
    for (unsigned k = order; k <= BUDDY_MAX_ORDER; k++) {
        struct buddy_extent *e = buddy.olist[k];
        if (e && ((e->dirty_orders >> k) & 1)) {
            *j = k;
            return e;
        }
    }
    for (unsigned k = order; k <= BUDDY_MAX_ORDER; k++)
        if (buddy.olist[k]) {
            *j = k;
            return buddy.olist[k];
        }
    return NULL;
}

/* The dirty bits of pages [idx, idx + n) into dmap, page idx at bit 0. */
static void dirty_copy_locked(const struct buddy_extent *ext, size_t idx, size_t n,
                              uint64_t *dmap)
{
    buddy_assert_locked();
    if (idx % 64 == 0 && n >= 64) {
        memcpy(dmap, &ext->dirty[idx / 64], (n + 63) / 64 * 8);
        return;
    }
    memset(dmap, 0, (n + 63) / 64 * 8);
    for (size_t i = 0; i < n; i++)
        if (bit_get(ext->dirty, idx + i))
            dmap[i / 64] |= (uint64_t)1 << (i % 64);
}

/* Pages [idx, idx + n) are allocated again: none is the head of a freed block any more. */
static void freed_clear_locked(struct buddy_extent *ext, size_t idx, size_t n)
{
    buddy_assert_locked();
    RANGE_FOR_EACH_WORD(w, idx, n) {
        uint64_t m = range_word_mask(w, idx, n);
        if (__atomic_load_n(&ext->freed[w], __ATOMIC_RELAXED) & m)
            __atomic_and_fetch(&ext->freed[w], ~m, __ATOMIC_RELAXED);
    }
}

static void reuse_note_locked(struct buddy_extent *ext, size_t idx, size_t n, uint64_t epoch);

/* Pages [idx, idx + n), just taken off the free maps, become allocated in `epoch`: the
 * decay's reuse count sees them, they may be resident from now on (dirty), none is the head
 * of a freed block any more, and they count as allocated bytes.  Every allocation and every
 * growth in place goes through here. */
static void pages_claim_locked(struct buddy_extent *ext, size_t idx, size_t n, uint64_t epoch)
{
    buddy_assert_locked();
    reuse_note_locked(ext, idx, n, epoch);
    range_set(ext->dirty, idx, n);
    freed_clear_locked(ext, idx, n);
    buddy.st.alloc_bytes += n << BUDDY_PAGE_SHIFT;
}

/* Allocate a block of 2^order pages; *clean (if not NULL) says whether none of its pages is
 * dirty (then all of it reads as zero); dmap gets its dirty bits.  NULL with errno ENOMEM
 * when the heap cannot grow. */

static void *block_alloc_locked(unsigned order, uint16_t tag, bool *clean, uint64_t *dmap,
                                uint64_t epoch)
{
    buddy_assert_locked();
    unsigned k;
    struct buddy_extent *ext = find_block_locked(order, &k);
    if (!ext) {
        if (extent_grow_locked() != 0)
            return NULL;
        ext = buddy.extents;
        k = BUDDY_MAX_ORDER;
    }
    size_t idx = (ext->dirty_orders >> k) & 1 ? fmap_first(ext->avail_dirty, ext->sum_dirty, k)
                                              : fmap_first(ext->avail, ext->sum, k);
    free_remove_locked(ext, idx, k);
    while (k > order) { /* keep the half with more resident pages, free the other */
        k--;
        size_t half = order_pages(k);
        size_t lo = range_count(ext->dirty, idx, half);
        size_t hi = range_count(ext->dirty, idx + half, half);
        if (hi > lo) {
            free_push_locked(ext, idx, k);
            idx += half;
        } else {
            free_push_locked(ext, idx + half, k);
        }
        buddy.st.splits++;
    }
    size_t n = order_pages(order);
    if (clean)
        *clean = !range_any(ext->dirty, idx, n);
    if (dmap)
        dirty_copy_locked(ext, idx, n, dmap);
    pages_claim_locked(ext, idx, n, epoch);
    block_mark_locked(ext, idx, order, BUDDY_PAGE_ALLOC_HEAD, BUDDY_PAGE_ALLOC_TAIL, tag);
    buddy.st.allocs++;
    return page_addr(ext, idx);
}

/* Push [idx, end) back as the aligned free pieces it decomposes into (part of a free block a
 * run took the rest of: no piece can merge, its buddy lies inside that block and holds a page
 * of the run). */
static void pieces_push_locked(struct buddy_extent *ext, size_t idx, size_t end)
{
    buddy_assert_locked();
    while (idx < end) {
        unsigned k = piece_order(idx, end);
        free_push_locked(ext, idx, k);
        idx += order_pages(k);
        buddy.st.splits++;
    }
}

/* Take the allocatable free pages [idx, end) off the free maps: the free blocks covering them
 * come off whole, and their parts outside [idx, end) go back as pieces. */
static void pages_take_locked(struct buddy_extent *ext, size_t idx, size_t end)
{
    buddy_assert_locked();
    size_t p = idx;
    while (p < end) {
        unsigned k = ext->pages[p].order;
        size_t head = p & ~(order_pages(k) - 1);
        assert(ext->pages[head].state == BUDDY_PAGE_FREE_HEAD && bit_get(ext->freepg, p));
        free_remove_locked(ext, head, k);
        pieces_push_locked(ext, head, p); /* only the first block can start before idx */
        p = head + order_pages(k);
    }
    pieces_push_locked(ext, end, p); /* the part of the last block past the end */
}

/* Mark [idx, idx + n) as a run tagged `tag`: every page order BUDDY_ORDER_RUN, link[] the
 * length at the head and the distance back to it elsewhere. */
static void run_mark_locked(struct buddy_extent *ext, size_t idx, size_t n, uint16_t tag)
{
    buddy_assert_locked();
    pages_mark_locked(ext, idx, n, BUDDY_ORDER_RUN, BUDDY_PAGE_ALLOC_HEAD, BUDDY_PAGE_ALLOC_TAIL,
                      tag);
    __atomic_store_n(&ext->link[idx], (uint16_t)n, __ATOMIC_RELAXED);
    for (size_t i = 1; i < n; i++)
        __atomic_store_n(&ext->link[idx + i], (uint16_t)i, __ATOMIC_RELAXED);
}

/* The smallest stretch of allocatable free pages in ext that holds n pages, lowest first
 * among equals: its first page, and its length in *len (SIZE_MAX when there is none). */
static size_t run_best_fit_locked(const struct buddy_extent *ext, size_t n, size_t *len)
{
    buddy_assert_locked();
    size_t best = SIZE_MAX;
    *len = SIZE_MAX;
    for (size_t p = 0; p < BUDDY_PAGES_PER_EXTENT;) {
        uint64_t w = ext->freepg[p / 64] >> (p % 64);
        if (!w) { /* no free page in the rest of this word */
            p = (p / 64 + 1) * 64;
            continue;
        }
        p += (size_t)__builtin_ctzll(w); /* first free page of a stretch */
        size_t q = p;
        for (;;) { /* its end: the first page past it that is not free */
            uint64_t r = ~ext->freepg[q / 64] >> (q % 64);
            if (r) {
                q += (size_t)__builtin_ctzll(r);
                break;
            }
            q = (q / 64 + 1) * 64;
            if (q >= BUDDY_PAGES_PER_EXTENT) {
                q = BUDDY_PAGES_PER_EXTENT;
                break;
            }
        }
        if (q - p >= n && q - p < *len) {
            best = p;
            *len = q - p;
            if (q - p == n)
                break;
        }
        p = q;
    }
    return best;
}

/* The best fit for `need` pages over every extent that could hold it: the extent, *idx the
 * stretch's first page; NULL when none can. */
static struct buddy_extent *run_find_locked(size_t need, size_t *idx)
{
    buddy_assert_locked();
    /* A stretch of more than 2^(k-1) pages holds a free block of order k - 2 or more (the
     * aligned pieces it decomposes into): extents without one cannot hold the run. */
    unsigned k = order_for_pages(need);
    uint16_t could = (uint16_t)(0xffffu << (k >= 2 ? k - 2 : 0));
    struct buddy_extent *ext = NULL;
    size_t best_len = SIZE_MAX;
    for (struct buddy_extent *e = buddy.extents; e; e = e->next) {
        if (!(e->orders & could))
            continue;
        size_t len, at = run_best_fit_locked(e, need, &len);
        if (at != SIZE_MAX && len < best_len) {
            ext = e;
            *idx = at;
            best_len = len;
            if (len == need)
                break;
        }
    }
    return ext;
}

/* Allocate a run of n pages (1 <= n <= room <= BUDDY_PAGES_PER_EXTENT) by best fit (RUNS,
 * above) for `room` pages if a stretch that long is free, else for n: the run starts the
 * stretch, so it can grow in place into the rest.  dmap (if not NULL) gets its dirty bits.
 * NULL with errno ENOMEM when the heap cannot grow. */
static void *run_alloc_locked(size_t n, size_t room, uint16_t tag, uint64_t *dmap,
                              uint64_t epoch)
{
    buddy_assert_locked();
    size_t idx = 0;
    struct buddy_extent *ext = room > n ? run_find_locked(room, &idx) : NULL;
    if (!ext)
        ext = run_find_locked(n, &idx);
    if (!ext) {
        if (extent_grow_locked() != 0)
            return NULL;
        ext = buddy.extents;
        idx = 0;
    }
    if (!ext->link) { /* the extent's first run: its link map (nothing taken yet) */
        uint16_t *link = heap_meta_alloc(LINK_BYTES);
        if (!link) {
            errno = ENOMEM;
            return NULL;
        }
        __atomic_store_n(&ext->link, link, __ATOMIC_RELEASE);
    }
    pages_take_locked(ext, idx, idx + n);
    if (dmap)
        dirty_copy_locked(ext, idx, n, dmap);
    pages_claim_locked(ext, idx, n, epoch);
    run_mark_locked(ext, idx, n, tag);
    buddy.st.allocs++;
    buddy.st.run_allocs++;
    return page_addr(ext, idx);
}

/* Free [idx, idx + 2^order) (its pages already off every map): merge while the buddy is
 * free, then keep the block, or give a whole extent beyond the spares back to the heap. */
static void block_return_locked(struct buddy_extent *ext, size_t idx, unsigned order)
{
    buddy_assert_locked();
    long b;
    while ((b = buddy_of_if_free_locked(ext, idx, order)) >= 0) {
        free_remove_locked(ext, (size_t)b, order);
        idx &= (size_t)b; /* the merged block starts at the lower of the two */
        order++;
        buddy.st.merges++;
    }
    if (order == BUDDY_MAX_ORDER && buddy.st.free_blocks[order] >= spare_limit()) {
        extent_release_locked(ext);
        return;
    }
    free_push_locked(ext, idx, order);
}

/* Free the pages [idx, end) of an allocated block (all of it, or the part a shrink gives
 * up): as the aligned pieces they decompose into, each merged with its free buddies.  Any
 * order of pieces ends fully coalesced; the highest go first, so that the lowest, the only
 * one that can complete a wholly free extent (and release it), goes last. */
static void pages_return_locked(struct buddy_extent *ext, size_t idx, size_t end)
{
    buddy_assert_locked();
    size_t piece[2 * BUDDY_ORDERS]; /* pieces grow to the middle of [idx, end), then shrink */
    unsigned porder[2 * BUDDY_ORDERS];
    size_t np = 0;
    for (size_t p = idx; p < end; np++) {
        porder[np] = piece_order(p, end);
        piece[np] = p;
        p += order_pages(porder[np]);
    }
    while (np--)
        block_return_locked(ext, piece[np], porder[np]);
}

/* Free the allocated block whose head is page idx; its pages are freed in `epoch`. */
static void block_free_locked(struct buddy_extent *ext, size_t idx, uint64_t epoch)
{
    buddy_assert_locked();
    size_t n = alloc_block_pages(ext, idx, ext->pages[idx]);
    buddy.st.alloc_bytes -= n << BUDDY_PAGE_SHIFT;
    buddy.st.frees++;
    __atomic_or_fetch(&ext->freed[idx / 64], (uint64_t)1 << (idx % 64), __ATOMIC_RELAXED);
    recent_shift_locked(ext, epoch);
    range_set(ext->recent[0], idx, n);
    pages_return_locked(ext, idx, idx + n);
}

/* ---------------------------------------------------------------- decay and trim */

/* A free block a purge took off, and its pages to purge (within the block). */
struct purge_item {
    struct buddy_extent *ext;
    size_t idx;
    unsigned order;
    uint64_t pages[MAP_WORDS]; /* bit i: page idx + i (blocks of up to 64 pages use word 0) */
};

/* Take up to `max` free blocks with purge candidates off the free maps: candidates are the
 * dirty pages of allocatable free blocks, and unless `all`, only those not freed in the
 * current epoch or the one before.  Returns the number taken. */
static size_t purge_collect_locked(struct purge_item *items, size_t max, uint64_t epoch,
                                   bool all, size_t want)
{
    buddy_assert_locked();
    size_t n = 0, taken = 0;
    for (struct buddy_extent *ext = buddy.extents; ext && n < max && taken < want;
         ext = ext->next) {
        if (!all)
            recent_shift_locked(ext, epoch);
        uint64_t cand[MAP_WORDS];
        bool any = false;
        for (size_t w = 0; w < MAP_WORDS; w++) {
            cand[w] = ext->dirty[w] & ext->freepg[w];
            if (!all)
                cand[w] &= ~(ext->recent[0][w] | ext->recent[1][w]);
            any |= cand[w] != 0;
        }
        for (size_t p = 0; any && p < BUDDY_PAGES_PER_EXTENT && n < max && taken < want;) {
            uint64_t c = cand[p / 64] & (~(uint64_t)0 << (p % 64));
            if (!c) {
                p = (p / 64 + 1) * 64;
                continue;
            }
            p = (p / 64) * 64 + (size_t)__builtin_ctzll(c);
            unsigned order = ext->pages[p].order;
            size_t head = p & ~(order_pages(order) - 1);
            assert(ext->pages[head].state == BUDDY_PAGE_FREE_HEAD);
            struct purge_item *it = &items[n++];
            it->ext = ext;
            it->idx = head;
            it->order = order;
            memset(it->pages, 0, sizeof it->pages);
            size_t np = order_pages(order);
            for (size_t i = 0; i < np; i += 64) { /* copy the block's candidate bits */
                uint64_t m = range_word_mask((head + i) / 64, head + i, np - i < 64 ? np - i : 64);
                it->pages[i / 64] = (cand[(head + i) / 64] & m) >> ((head + i) % 64);
                taken += (size_t)__builtin_popcountll(it->pages[i / 64]) << BUDDY_PAGE_SHIFT;
            }
            free_remove_locked(ext, head, order);
            range_set(ext->busy, head, 1);
            buddy.busy_blocks++;
            p = head + np;
        }
    }
    return n;
}

/* End the run [*run, *run + *len) of purge_items: madvise it.  If that fails, its pages are
 * cleared from the items (they stay dirty) and *failed is set.  Returns bytes purged. */
static size_t purge_flush(struct purge_item *items, size_t n, char **run, size_t *len,
                          size_t *calls, bool *failed)
{
    if (!*run)
        return 0;
    size_t bytes = 0;
    (*calls)++;
    if (heap_purge(*run, *len) == 0) {
        bytes = *len;
    } else {
        *failed = true;
        for (size_t j = 0; j < n; j++)
            for (size_t q = 0; q < order_pages(items[j].order); q++) {
                char *a = page_addr(items[j].ext, items[j].idx + q);
                if (a >= *run && a < *run + *len)
                    items[j].pages[q / 64] &= ~((uint64_t)1 << (q % 64));
            }
    }
    *run = NULL;
    *len = 0;
    return bytes;
}

/* madvise the candidate pages of the items (no lock held), one call per run of adjacent
 * pages of one extent, across items.  Returns bytes purged; *calls counts the calls and
 * *failed says whether one of them failed. */
static size_t purge_items(struct purge_item *items, size_t n, size_t *calls, bool *failed)
{
    char *run = NULL;
    size_t len = 0, bytes = 0;
    const struct buddy_extent *run_ext = NULL;
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < order_pages(items[i].order); p++) {
            if (!bit_get(items[i].pages, p)) {
                bytes += purge_flush(items, i + 1, &run, &len, calls, failed);
                continue;
            }
            char *addr = page_addr(items[i].ext, items[i].idx + p);
            if (run && run_ext == items[i].ext && addr == run + len) {
                len += BUDDY_PAGE_SIZE;
                continue;
            }
            bytes += purge_flush(items, i + 1, &run, &len, calls, failed);
            run = addr;
            len = BUDDY_PAGE_SIZE;
            run_ext = items[i].ext;
        }
    }
    return bytes + purge_flush(items, n, &run, &len, calls, failed);
}

/* Put purged items back: their purged pages are clean now; the blocks are free again. */
static void purge_return_locked(struct purge_item *items, size_t n)
{
    buddy_assert_locked();
    for (size_t i = 0; i < n; i++) {
        struct purge_item *it = &items[i];
        size_t np = order_pages(it->order);
        for (size_t w = 0; w < (np + 63) / 64; w++) {
            size_t first = it->idx + w * 64;
            it->ext->dirty[first / 64] &= ~(it->pages[w] << (first % 64));
        }
        range_clear(it->ext->busy, it->idx, 1);
        buddy.busy_blocks--;
        /* Items of one extent were taken together and come back in order: the extent
         * cannot become wholly free (and be released) while a later item still holds a
         * block of it. */
        block_return_locked(it->ext, it->idx, it->order);
    }
}

/* The decay's reserve: old free pages (freed before the previous epoch) that allocations
 * took again during the last whole epoch.  A program that keeps reusing its old free memory
 * keeps that much of it resident; one that stopped (or frees and reallocates within an
 * epoch, which never touches old pages) keeps none.  Bytes, under buddy.lock. */
static struct {
    uint64_t epoch; /* the epoch `acc` belongs to */
    size_t acc;     /* old pages reused in it so far */
    size_t prev;    /* ... in the epoch before it, if that was epoch - 1; else 0 */
} reuse;

/* Pages [idx, idx + n) are being allocated in `epoch`: count the dirty ones that were free
 * since before the previous epoch (purge candidates the decay kept, now paying off). */
static void reuse_note_locked(struct buddy_extent *ext, size_t idx, size_t n, uint64_t epoch)
{
    buddy_assert_locked();
    if (reuse.epoch != epoch) {
        reuse.prev = reuse.epoch + 1 == epoch ? reuse.acc : 0;
        reuse.acc = 0;
        reuse.epoch = epoch;
    }
    recent_shift_locked(ext, epoch);
    size_t old = 0;
    RANGE_FOR_EACH_WORD(w, idx, n) {
        old += (size_t)__builtin_popcountll(ext->dirty[w] & range_word_mask(w, idx, n) &
                                            ~(ext->recent[0][w] | ext->recent[1][w]));
    }
    reuse.acc += old << BUDDY_PAGE_SHIFT;
}

/* Dirty free bytes the decay may purge in `epoch`: those above the reserve. */
static size_t purge_excess_locked(uint64_t epoch)
{
    buddy_assert_locked();
    size_t reserve = reuse.epoch == epoch ? reuse.prev : reuse.epoch + 1 == epoch ? reuse.acc : 0;
    buddy.st.decay_reserve = reserve;
    return buddy.st.dirty_free_bytes > reserve ? buddy.st.dirty_free_bytes - reserve : 0;
}

/* One purge: batches of PURGE_BATCH blocks until nothing is left, a madvise fails or
 * `max_bytes` of free blocks were looked at (SIZE_MAX: no limit).  A failed madvise ends
 * the run: its pages stay dirty, so the next batch would take the same blocks again and a
 * run without a limit would never end.  Returns bytes purged; *more says whether it
 * stopped at the limit. */
static size_t purge_run(uint64_t epoch, bool all, size_t max_bytes, bool *more)
{
    struct purge_item items[PURGE_BATCH];
    size_t seen = 0, bytes = 0, calls = 0;
    *more = false;
    for (;;) {
        buddy_lock();
        size_t want = all ? SIZE_MAX : purge_excess_locked(epoch);
        size_t n = want ? purge_collect_locked(items, PURGE_BATCH, epoch, all, want) : 0;
        buddy_unlock();
        if (n == 0)
            break;
        bool failed = false;
        size_t c = 0, b = purge_items(items, n, &c, &failed);
        buddy_lock();
        purge_return_locked(items, n);
        buddy.st.purge_calls += c;
        buddy.st.purged_bytes += b;
        buddy_unlock();
        bytes += b;
        calls += c;
        for (size_t i = 0; i < n; i++)
            seen += order_bytes(items[i].order);
        if (failed)
            break;
        if (seen >= max_bytes) {
            *more = true;
            break;
        }
    }
    if (calls) {
        buddy_lock();
        buddy.st.decay_passes++;
        buddy_unlock();
    }
    return bytes;
}

/* The decay: run a pass if the epoch changed since the last one (or the last one stopped
 * at its limit).  Called without the lock from every slow path; cheap when nothing is due. */
static void decay_maybe(void)
{
    uint32_t d = decay_ms();
    if (d == BUDDY_DECAY_NEVER)
        return;
    uint64_t epoch = epoch_now(d);
    if (d && epoch == __atomic_load_n(&decay.pass_epoch, __ATOMIC_RELAXED) &&
        !__atomic_load_n(&decay.more, __ATOMIC_RELAXED))
        return;
    if (__atomic_exchange_n(&decay.running, true, __ATOMIC_ACQUIRE))
        return; /* another thread is at it */
    __atomic_store_n(&decay.pass_epoch, epoch, __ATOMIC_RELAXED);
    bool more;
    purge_run(epoch, d == 0, DECAY_PASS_BYTES, &more);
    /* Freed huge extents, parked mapped: unmapped two epoch starts after their free, as the
     * buddy's own free pages are purged (never when the decay never runs). */
    if (epoch >= 1)
        heap_parked_release(d == 0 ? UINT64_MAX : epoch - 1);
    __atomic_store_n(&decay.more, more, __ATOMIC_RELAXED);
    __atomic_store_n(&decay.running, false, __ATOMIC_RELEASE);
}

void buddy_tick(void)
{
    decay_maybe();
}

size_t buddy_trim(size_t keep_extents)
{
    buddy_lock();
    size_t bytes = trim_extents_locked(keep_extents);
    buddy_unlock();
    bool more;
    bytes += heap_parked_release(UINT64_MAX);
    return bytes + purge_run(0, true, SIZE_MAX, &more);
}

/* ---------------------------------------------------------------- reclaim */

static buddy_reclaim_fn reclaim_fn;
static __thread bool tls_in_reclaim __attribute__((tls_model("initial-exec")));

buddy_reclaim_fn buddy_set_reclaim(buddy_reclaim_fn fn)
{
    return __atomic_exchange_n(&reclaim_fn, fn, __ATOMIC_ACQ_REL);
}

/* An allocation of `want` bytes found the heap unable to grow: let the upper layer give
 * back what it caches, and give every whole free extent back to the heap (no lock held).
 * False when this thread is reclaiming already (the callback's own allocations do not
 * recurse). */
static bool reclaim(size_t want)
{
    if (tls_in_reclaim)
        return false;
    tls_in_reclaim = true;
    buddy_reclaim_fn fn = __atomic_load_n(&reclaim_fn, __ATOMIC_ACQUIRE);
    if (fn)
        fn(want);
    buddy_lock();
    buddy.st.reclaims++;
    trim_extents_locked(0);
    buddy_unlock();
    heap_parked_release(UINT64_MAX);
    tls_in_reclaim = false;
    return true;
}

/* ---------------------------------------------------------------- public alloc, free */

/* The public allocations: a block of `order`, or (npages != 0) a run of npages pages placed
 * where `room` pages fit if they do. */
static void *alloc_public(unsigned order, size_t npages, size_t room, uint16_t tag,
                          bool *clean, uint64_t *dmap);

void *buddy_alloc_clean(unsigned order, uint16_t tag, bool *clean)
{
    return alloc_public(order, 0, 0, tag, clean, NULL);
}

void *buddy_alloc_dirty(unsigned order, uint16_t tag, uint64_t *dirty)
{
    return alloc_public(order, 0, 0, tag, NULL, dirty);
}

void *buddy_alloc_run_room(size_t pages, size_t room, uint16_t tag, uint64_t *dirty)
{
    if (pages == 0 || pages > BUDDY_PAGES_PER_EXTENT)
        return alloc_public(BUDDY_MAX_ORDER + 1, 0, 0, tag, NULL, NULL); /* counted, EINVAL */
    if (room < pages)
        room = pages;
    if (room > BUDDY_PAGES_PER_EXTENT)
        room = BUDDY_PAGES_PER_EXTENT;
    return alloc_public(0, pages, room, tag, NULL, dirty);
}

void *buddy_alloc_run(size_t pages, uint16_t tag, uint64_t *dirty)
{
    return buddy_alloc_run_room(pages, pages, tag, dirty);
}

static void *alloc_public(unsigned order, size_t npages, size_t room, uint16_t tag,
                          bool *clean, uint64_t *dmap)
{
    void *p = NULL;
    if (clean)
        *clean = false;
    if (order > BUDDY_MAX_ORDER || tag == BUDDY_TAG_NONE) {
        buddy_lock();
        buddy.st.failures++;
        buddy_unlock();
        errno = EINVAL;
        return NULL;
    }
    uint64_t epoch = epoch_now(decay_ms());
    size_t bytes = (npages ? npages : order_pages(order)) << BUDDY_PAGE_SHIFT;
    for (int attempt = 0; attempt < 2 && !p; attempt++) {
        if (attempt && !reclaim(bytes))
            break;
        buddy_lock();
        p = npages ? run_alloc_locked(npages, room, tag, dmap, epoch)
                   : block_alloc_locked(order, tag, clean, dmap, epoch);
        buddy_unlock();
    }
    if (!p) {
        buddy_lock();
        buddy.st.failures++;
        buddy_unlock();
        errno = ENOMEM;
    }
    decay_maybe();
    return p;
}

void *buddy_alloc(unsigned order, uint16_t tag)
{
    return buddy_alloc_clean(order, tag, NULL);
}

int buddy_order_for_size(size_t bytes)
{
    if (bytes == 0 || bytes > HEAP_EXTENT_SIZE)
        return -1;
    size_t pages = (bytes + BUDDY_PAGE_SIZE - 1) >> BUDDY_PAGE_SHIFT;
    int order = 0;
    while (order_pages((unsigned)order) < pages)
        order++;
    return order;
}

/* Note the live huge bytes in the peak of `epoch` (the huge blocks' recent demand). */
static void huge_peak_note_locked(uint64_t epoch)
{
    buddy_assert_locked();
    if (epoch != buddy.huge_epoch) {
        buddy.huge_peak[1] = epoch == buddy.huge_epoch + 1 ? buddy.huge_peak[0] : 0;
        buddy.huge_peak[0] = 0;
        buddy.huge_epoch = epoch;
    }
    if (buddy.st.huge_bytes > buddy.huge_peak[0])
        buddy.huge_peak[0] = buddy.st.huge_bytes;
}

static void *huge_alloc(size_t bytes, uint16_t tag)
{
    struct heap_extent *he = heap_extent_alloc(bytes, HEAP_KIND_WHOLE, tag, NULL, true);
    if (!he && errno == ENOMEM && reclaim(bytes))
        he = heap_extent_alloc(bytes, HEAP_KIND_WHOLE, tag, NULL, true);
    buddy_lock();
    if (he) {
        buddy.st.huge_blocks++;
        buddy.st.huge_bytes += he->size;
        buddy.st.alloc_bytes += he->size;
        buddy.st.allocs++;
        huge_peak_note_locked(epoch_now(decay_ms()));
    } else {
        buddy.st.failures++;
    }
    buddy_unlock();
    if (!he)
        errno = ENOMEM;
    return he ? (void *)he->base : NULL;
}

void *buddy_alloc_bytes(size_t bytes, uint16_t tag)
{
    int order = buddy_order_for_size(bytes);
    if (order >= 0)
        return buddy_alloc((unsigned)order, tag);
    if (bytes == 0 || tag == BUDDY_TAG_NONE || bytes > SIZE_MAX - HEAP_EXTENT_SIZE) {
        buddy_lock();
        buddy.st.failures++;
        buddy_unlock();
        errno = EINVAL;
        return NULL;
    }
    return huge_alloc(bytes, tag);
}

/* Report a refused free (one line, write(2)) and count it. */
static int invalid_free_locked(const void *ptr, const char *why, const void *block)
{
    buddy_assert_locked();
    if (block)
        heap_fmt_line("buddy: invalid free of %p: %s %p", ptr, why, block);
    else
        heap_fmt_line("buddy: invalid free of %p: %s", ptr, why);
    buddy.st.invalid_frees++;
    errno = EINVAL;
    return -1;
}

/* The parked huge extents hold at most the larger of this and the most huge bytes live in
 * this decay epoch and the one before (the huge blocks' recent demand; with no decay, ever):
 * a program that replaces its huge blocks finds its recent footprint resident, and one that
 * stopped using them gets it back by the decay (decay_maybe) or at once by buddy_trim. */
#define HUGE_PARK_MIN_BYTES ((size_t)64 << 20)

static int huge_free_locked(struct heap_extent *he, void *ptr, uint64_t epoch)
{
    buddy_assert_locked();
    if ((uintptr_t)ptr != he->base)
        return invalid_free_locked(ptr, "interior pointer of the huge block at",
                                   (void *)he->base);
    size_t size = he->size;
    uint32_t d = decay_ms();
    huge_peak_note_locked(epoch);
    size_t peak = buddy.huge_peak[0] > buddy.huge_peak[1] ? buddy.huge_peak[0]
                                                          : buddy.huge_peak[1];
    size_t park_max = peak > HUGE_PARK_MIN_BYTES ? peak : HUGE_PARK_MIN_BYTES;
    if ((d == 0 ? heap_extent_free(he) : heap_extent_park(he, epoch, park_max)) != 0)
        return invalid_free_locked(ptr, "heap refused the huge extent", NULL);
    buddy.st.huge_blocks--;
    buddy.st.huge_bytes -= size;
    buddy.st.alloc_bytes -= size;
    buddy.st.frees++;
    return 0;
}

/* Check that ptr is the head of an allocated block of ours, then free it in `epoch`. */
static int checked_free_locked(void *ptr, uint64_t epoch)
{
    buddy_assert_locked();
    if (!ptr)
        return invalid_free_locked(ptr, "NULL pointer", NULL);
    struct heap_extent *he = heap_extent_lookup(ptr);
    if (he && he->kind == HEAP_KIND_WHOLE)
        return huge_free_locked(he, ptr, epoch);
    struct buddy_extent *ext = extent_of_heap(he);
    if (!ext)
        return invalid_free_locked(ptr, "not a slabcache buddy block", NULL);
    if ((uintptr_t)ptr & (BUDDY_PAGE_SIZE - 1))
        return invalid_free_locked(ptr, "not page aligned (interior pointer)", NULL);
    size_t idx = page_index(ext, ptr);
    struct buddy_page pg = ext->pages[idx];
    /* The head of the block holding the page, for the report (a corrupt order: the page). */
    size_t head = pg.order <= BUDDY_MAX_ORDER || pg.order == BUDDY_ORDER_RUN
                      ? block_head(ext, idx, pg)
                      : idx;
    switch (pg.state) {
    case BUDDY_PAGE_ALLOC_HEAD:
        block_free_locked(ext, idx, epoch);
        return 0;
    case BUDDY_PAGE_ALLOC_TAIL:
        return invalid_free_locked(ptr, "interior pointer of the block at", page_addr(ext, head));
    case BUDDY_PAGE_FREE_HEAD:
        return invalid_free_locked(ptr, "double free (block is free)", NULL);
    case BUDDY_PAGE_FREE_TAIL:
        return invalid_free_locked(ptr, "double free (page is inside the free block at",
                                   page_addr(ext, head));
    default:
        return invalid_free_locked(ptr, "corrupt page map entry", NULL);
    }
}

int buddy_free(void *ptr)
{
    uint64_t epoch = epoch_now(decay_ms());
    buddy_lock();
    int rc = checked_free_locked(ptr, epoch);
    buddy_unlock();
    decay_maybe();
    if (rc)
        errno = EINVAL;
    return rc;
}

/* Resize the allocated block whose head is `head` to `npages` pages in place, with the lock
 * held: a buddy block (run false) to a power of two, staying aligned to its new order (so
 * growing past its order needs a head aligned to the new one), or a run (run true) to any
 * length.  Growing takes pages that must all lie in allocatable free blocks right after it.
 * 0, or an errno value with nothing changed. */
static int resize_locked(void *head, size_t npages, bool run, uint64_t epoch)
{
    buddy_assert_locked();
    struct buddy_extent *ext = extent_of_addr(head);
    if (!ext || npages == 0 || ((uintptr_t)head & (BUDDY_PAGE_SIZE - 1)))
        return EINVAL;
    size_t idx = page_index(ext, head);
    struct buddy_page pg = page_get(&ext->pages[idx]);
    if (pg.state != BUDDY_PAGE_ALLOC_HEAD || (pg.order == BUDDY_ORDER_RUN) != run ||
        npages > BUDDY_PAGES_PER_EXTENT - idx)
        return EINVAL;
    size_t n = alloc_block_pages(ext, idx, pg);
    unsigned new_order = run ? BUDDY_ORDER_RUN : order_for_pages(npages);
    if (npages > n) {
        /* Check first, so a refusal changes nothing. */
        if ((!run && (idx & (order_pages(new_order) - 1))) ||
            range_count(ext->freepg, idx + n, npages - n) != npages - n)
            return ENOMEM;
        pages_take_locked(ext, idx + n, idx + npages);
        pages_claim_locked(ext, idx + n, npages - n, epoch);
        buddy.st.merges++;
    } else if (npages < n) {
        /* The pages given up are freed as pieces (merging with the free blocks above them),
         * after the kept part is marked. */
        recent_shift_locked(ext, epoch);
        range_set(ext->recent[0], idx + npages, n - npages);
        buddy.st.alloc_bytes -= (n - npages) << BUDDY_PAGE_SHIFT;
    } else {
        return 0;
    }
    if (run)
        run_mark_locked(ext, idx, npages, pg.tag);
    else
        block_mark_locked(ext, idx, new_order, BUDDY_PAGE_ALLOC_HEAD, BUDDY_PAGE_ALLOC_TAIL,
                          pg.tag);
    if (npages < n)
        pages_return_locked(ext, idx + npages, idx + n);
    return 0;
}

static int resize_public(void *head, size_t npages, bool run)
{
    uint64_t epoch = epoch_now(decay_ms());
    buddy_lock();
    int err = resize_locked(head, npages, run, epoch);
    buddy_unlock();
    decay_maybe();
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int buddy_resize(void *head, unsigned new_order)
{
    if (new_order > BUDDY_MAX_ORDER) {
        errno = EINVAL;
        return -1;
    }
    return resize_public(head, order_pages(new_order), false);
}

int buddy_resize_run(void *head, size_t pages)
{
    return resize_public(head, pages, true);
}

void *buddy_resize_huge(void *head, size_t bytes)
{
    struct heap_extent *he = heap_extent_lookup(head);
    if (!he || he->kind != HEAP_KIND_WHOLE || he->base != (uintptr_t)head ||
        bytes <= HEAP_EXTENT_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    /* The caller owns the block: nothing else resizes or frees it meanwhile. */
    size_t old = he->size;
    void *p = heap_extent_resize(he, bytes);
    if (!p)
        return NULL;
    buddy_lock();
    buddy.st.huge_bytes = buddy.st.huge_bytes - old + he->size;
    buddy.st.alloc_bytes = buddy.st.alloc_bytes - old + he->size;
    buddy.st.huge_resizes++;
    buddy_unlock();
    return p;
}

/* ---------------------------------------------------------------- lookup (lock-free) */

bool buddy_lookup(const void *ptr, struct buddy_block_info *out)
{
    struct heap_extent *he = heap_extent_lookup(ptr);
    if (!he)
        return false;
    struct buddy_block_info info;
    if (__atomic_load_n(&he->kind, __ATOMIC_RELAXED) == HEAP_KIND_WHOLE) {
        info.head = (void *)__atomic_load_n(&he->base, __ATOMIC_RELAXED);
        info.size = __atomic_load_n(&he->size, __ATOMIC_RELAXED);
        info.order = BUDDY_ORDER_HUGE;
        info.tag = __atomic_load_n(&he->tag, __ATOMIC_RELAXED);
    } else {
        struct buddy_extent *ext = extent_of_heap(he);
        if (!ext)
            return false;
        size_t idx = page_index(ext, ptr);
        struct buddy_page pg = page_get(&ext->pages[idx]);
        if ((pg.state != BUDDY_PAGE_ALLOC_HEAD && pg.state != BUDDY_PAGE_ALLOC_TAIL) ||
            (pg.order > BUDDY_MAX_ORDER && pg.order != BUDDY_ORDER_RUN))
            return false;
        size_t head = block_head(ext, idx, pg);
        info.head = page_addr(ext, head);
        info.size = alloc_block_pages(ext, head, page_get(&ext->pages[head]))
                    << BUDDY_PAGE_SHIFT;
        info.order = pg.order;
        info.tag = pg.tag;
    }
    if (out)
        *out = info;
    return true;
}

bool buddy_freed_head(const void *ptr)
{
    if ((uintptr_t)ptr & (BUDDY_PAGE_SIZE - 1))
        return false;
    struct buddy_extent *ext = extent_of_heap(heap_extent_lookup(ptr));
    if (!ext)
        return false;
    size_t idx = page_index(ext, ptr);
    struct buddy_page pg = page_get(&ext->pages[idx]);
    return (pg.state == BUDDY_PAGE_FREE_HEAD || pg.state == BUDDY_PAGE_FREE_TAIL) &&
           ((__atomic_load_n(&ext->freed[idx / 64], __ATOMIC_RELAXED) >> (idx % 64)) & 1);
}

/* ---------------------------------------------------------------- spares */

/* 0 = not read yet; otherwise the limit (buddy lock for writes; relaxed reads). */
static size_t spare_extents;

static size_t spare_limit(void)
{
    size_t n = __atomic_load_n(&spare_extents, __ATOMIC_RELAXED);
    if (__builtin_expect(n == 0, 0)) {
        /* SLABCACHE_SPARE_EXTENTS: the table's range starts at BUDDY_SPARE_EXTENTS_MIN */
        n = (size_t)heap_opt_uint(OPT_SPARE_EXTENTS);
        if (n < BUDDY_SPARE_EXTENTS_MIN)
            n = BUDDY_SPARE_EXTENTS_MIN;
        __atomic_store_n(&spare_extents, n, __ATOMIC_RELAXED);
    }
    return n;
}

size_t buddy_set_spare_extents(size_t n)
{
    if (n < BUDDY_SPARE_EXTENTS_MIN)
        n = BUDDY_SPARE_EXTENTS_MIN;
    buddy_lock();
    size_t old = spare_limit();
    __atomic_store_n(&spare_extents, n, __ATOMIC_RELAXED);
    trim_extents_locked(n);
    buddy_unlock();
    return old;
}

/* ---------------------------------------------------------------- stats */

void buddy_get_stats(struct buddy_stats *out)
{
    buddy_lock();
    *out = buddy.st;
    buddy_unlock();
}

struct each_huge {
    void (*fn)(void *head, size_t bytes, unsigned order, uint16_t tag, void *arg);
    void *arg;
    size_t n;
};

static void each_huge_extent(struct heap_extent *he, void *arg)
{
    struct each_huge *h = arg;
    if (he->kind != HEAP_KIND_WHOLE || he->tag == BUDDY_TAG_NONE)
        return;
    h->fn((void *)he->base, he->size, BUDDY_ORDER_HUGE, he->tag, h->arg);
    h->n++;
}

size_t buddy_for_each_block(void (*fn)(void *head, size_t bytes, unsigned order, uint16_t tag,
                                       void *arg),
                            void *arg)
{
    size_t n = 0;
    buddy_lock();
    for (const struct buddy_extent *ext = buddy.extents; ext; ext = ext->next) {
        for (size_t p = 0; p < BUDDY_PAGES_PER_EXTENT;) {
            struct buddy_page pg = page_get(&ext->pages[p]);
            if (pg.order > BUDDY_MAX_ORDER &&
                !(pg.order == BUDDY_ORDER_RUN && pg.state == BUDDY_PAGE_ALLOC_HEAD)) {
                /* never (a run's tail is stepped over from its head): the validator's
                 * business */
                p++;
                continue;
            }
            if (pg.state == BUDDY_PAGE_ALLOC_HEAD) {
                fn(page_addr(ext, p), alloc_block_pages(ext, p, pg) << BUDDY_PAGE_SHIFT, pg.order,
                   pg.tag, arg);
                n++;
            }
            size_t len = pg.state == BUDDY_PAGE_ALLOC_HEAD   ? alloc_block_pages(ext, p, pg)
                         : pg.state == BUDDY_PAGE_FREE_HEAD ? order_pages(pg.order)
                                                            : 1;
            p += len ? len : 1;
        }
    }
    struct each_huge h = {fn, arg, 0};
    heap_for_each_extent(each_huge_extent, &h);
    buddy_unlock();
    return n + h.n;
}

/* /proc/buddyinfo's line into buf; returns the length written (heap_fmt: cut at len - 1). */
static size_t format_buddyinfo(char *buf, size_t len, const struct buddy_stats *st)
{
    size_t pos = heap_fmt(buf, len, "%s", "Node 0, zone slabcache");
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
        pos += heap_fmt(buf + pos, len - pos, " %6zu", st->free_blocks[k]);
    return pos + heap_fmt(buf + pos, len - pos, "%s", "\n");
}

int buddy_format_buddyinfo(char *buf, size_t len)
{
    char full[32 + 8 * BUDDY_ORDERS + 8 * 21]; /* room for every count at full width */
    struct buddy_stats st;
    buddy_get_stats(&st);
    size_t n = format_buddyinfo(full, sizeof full, &st);
    if (len) { /* snprintf rules: the full length, whatever fits copied */
        size_t copy = n < len ? n : len - 1;
        memcpy(buf, full, copy);
        buf[copy] = '\0';
    }
    return (int)n;
}

void buddy_print_buddyinfo(FILE *out)
{
    char buf[512];
    struct buddy_stats st;
    buddy_get_stats(&st);
    fwrite(buf, 1, format_buddyinfo(buf, sizeof buf, &st), out);
}

void buddy_print_stats(FILE *out)
{
    char buf[1024];
    struct buddy_stats st;
    buddy_get_stats(&st);
    size_t n = heap_fmt(buf, sizeof buf,
                        "buddy: extents %zu huge_blocks %zu huge_bytes %zu free_bytes %zu "
                        "alloc_bytes %zu\n"
                        "buddy: allocs %zu frees %zu splits %zu merges %zu failures %zu "
                        "invalid_frees %zu\n"
                        "buddy: dirty_free_bytes %zu decay_passes %zu purge_calls %zu "
                        "purged_bytes %zu reclaims %zu huge_resizes %zu\n",
                        (size_t)st.extents, (size_t)st.huge_blocks, (size_t)st.huge_bytes,
                        (size_t)st.free_bytes, (size_t)st.alloc_bytes, (size_t)st.allocs,
                        (size_t)st.frees, (size_t)st.splits, (size_t)st.merges,
                        (size_t)st.failures, (size_t)st.invalid_frees,
                        (size_t)st.dirty_free_bytes, (size_t)st.decay_passes,
                        (size_t)st.purge_calls, (size_t)st.purged_bytes, (size_t)st.reclaims,
                        (size_t)st.huge_resizes);
    n += format_buddyinfo(buf + n, sizeof buf - n, &st);
    fwrite(buf, 1, n, out);
}

/* ---------------------------------------------------------------- validation */

static int validate_fail(const char *what, const void *where, size_t got, size_t want)
{
    heap_fmt_line("buddy: validate: %s at %p (got %zu, want %zu)", what, where, got, want);
    return -1;
}

/* What the validator recomputes from the page maps. */
struct validate_sums {
    size_t nfree[BUDDY_ORDERS]; /* allocatable free blocks by order */
    size_t free_bytes, dirty_free_bytes, alloc_bytes, busy;
};

/* The free maps, summary words and masks the page map implies, for one extent. */
struct validate_maps {
    uint64_t avail[FMAP_WORDS], avail_dirty[FMAP_WORDS], freepg[MAP_WORDS];
};

/* Pages in the block whose head is page idx: 2^order, or the run's length. */
static size_t block_pages_locked(const struct buddy_extent *ext, size_t idx)
{
    buddy_assert_locked();
    struct buddy_page pg = ext->pages[idx];
    if (pg.state == BUDDY_PAGE_ALLOC_HEAD)
        return alloc_block_pages(ext, idx, pg);
    return pg.order <= BUDDY_MAX_ORDER ? order_pages(pg.order) : 1;
}

/* The n - 1 tails of the block at idx agree with its head (a run's also link back to it);
 * returns -1 after reporting. */
static int validate_tails_locked(const struct buddy_extent *ext, size_t idx, size_t n,
                                 struct buddy_page head)
{
    buddy_assert_locked();
    unsigned tail = head.state == BUDDY_PAGE_FREE_HEAD ? BUDDY_PAGE_FREE_TAIL
                                                       : BUDDY_PAGE_ALLOC_TAIL;
    for (size_t i = idx + 1; i < idx + n; i++) {
        struct buddy_page pg = ext->pages[i];
        if (pg.state != tail)
            return validate_fail("tail page state != head's", page_addr(ext, i), pg.state, tail);
        if (pg.order != head.order)
            return validate_fail("tail page order != head's", page_addr(ext, i), pg.order,
                                 head.order);
        if (pg.tag != head.tag)
            return validate_fail("tail page tag != head's", page_addr(ext, i), pg.tag, head.tag);
        if (head.order == BUDDY_ORDER_RUN && ext->link[i] != i - idx)
            return validate_fail("run page does not link back to its head", page_addr(ext, i),
                                 ext->link[i], i - idx);
    }
    return 0;
}

/* One block's head page at idx: checks it, adds it to the sums and to the maps it implies.
 * A buddy block is 2^order pages aligned to its size; a run (allocated only) is link[idx]
 * pages anywhere in the extent. */
static int validate_block_locked(const struct buddy_extent *ext, size_t idx,
                                 struct validate_sums *sum, struct validate_maps *m)
{
    buddy_assert_locked();
    struct buddy_page pg = ext->pages[idx];
    void *at = page_addr(ext, idx);
    if (pg.state != BUDDY_PAGE_FREE_HEAD && pg.state != BUDDY_PAGE_ALLOC_HEAD)
        return validate_fail("block does not start with a head page", at, pg.state, 0);
    bool run = pg.order == BUDDY_ORDER_RUN && pg.state == BUDDY_PAGE_ALLOC_HEAD;
    if (pg.order > BUDDY_MAX_ORDER && !run)
        return validate_fail("order out of range", at, pg.order, BUDDY_MAX_ORDER);
    if (run && !ext->link)
        return validate_fail("run in an extent without a link map", at, 0, 1);
    size_t n = block_pages_locked(ext, idx);
    if (run) {
        if (n == 0 || n > BUDDY_PAGES_PER_EXTENT - idx)
            return validate_fail("run length out of range", at, n,
                                 BUDDY_PAGES_PER_EXTENT - idx);
    } else {
        if (idx & (order_pages(pg.order) - 1))
            return validate_fail("block not aligned to its order", at, idx, pg.order);
        if (n != order_pages(pg.order))
            return validate_fail("block length does not match its order", at, n,
                                 order_pages(pg.order));
    }
    if (validate_tails_locked(ext, idx, n, pg))
        return -1;
    if (pg.state == BUDDY_PAGE_ALLOC_HEAD) {
        if (pg.tag == BUDDY_TAG_NONE)
            return validate_fail("allocated block with tag 0", at, pg.tag, 1);
        if (range_count(ext->dirty, idx, n) != n)
            return validate_fail("allocated block with a page not marked dirty", at,
                                 range_count(ext->dirty, idx, n), n);
        sum->alloc_bytes += n << BUDDY_PAGE_SHIFT;
        return 0;
    }
    if (pg.tag != BUDDY_TAG_NONE)
        return validate_fail("free block with a tag", at, pg.tag, 0);
    /* Unmerged buddies, read from the page map (not from the maps under test). */
    if (pg.order < BUDDY_MAX_ORDER) {
        size_t b = idx ^ n;
        struct buddy_page bp = ext->pages[b];
        if (bp.state == BUDDY_PAGE_FREE_HEAD && bp.order == pg.order && !bit_get(ext->busy, b) &&
            !bit_get(ext->busy, idx))
            return validate_fail("two free buddies left unmerged", at, b, pg.order);
    }
    if (bit_get(ext->busy, idx)) { /* taken off by a purge in flight */
        sum->busy++;
        return 0;
    }
    sum->nfree[pg.order]++;
    sum->free_bytes += order_bytes(pg.order);
    sum->dirty_free_bytes += range_count(ext->dirty, idx, n) << BUDDY_PAGE_SHIFT;
    m->avail[fmap_word(pg.order, idx)] |= fmap_bit(pg.order, idx);
    if (range_any(ext->dirty, idx, n))
        m->avail_dirty[fmap_word(pg.order, idx)] |= fmap_bit(pg.order, idx);
    range_set(m->freepg, idx, n);
    return 0;
}

/* Summary words and the order mask agree with a free map. */
static int validate_summary(const struct buddy_extent *ext, const uint64_t *map,
                            const uint16_t *sum, uint16_t orders, const char *what)
{
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
        unsigned words = k < 4 ? 16u >> k : 1u;
        uint16_t want = 0;
        for (unsigned w = 0; w < words; w++)
            if (map[fmap_off(k) + w])
                want |= (uint16_t)(1u << w);
        if (sum[k] != want)
            return validate_fail(what, ext->base, sum[k], want);
        if (((orders >> k) & 1) != (want != 0))
            return validate_fail(what, ext->base, orders, k);
    }
    return 0;
}

static int validate_extent_locked(const struct buddy_extent *ext, struct validate_sums *sum)
{
    buddy_assert_locked();
    const struct heap_extent *he = ext->heap;
    if (!he || he != heap_extent_lookup(ext->base) || he->owner != ext ||
        he->kind != HEAP_KIND_SPLIT || (char *)he->base != ext->base ||
        he->size < HEAP_EXTENT_SIZE)
        return validate_fail("extent record does not match its heap extent", ext->base, 0, 0);
    struct validate_maps m;
    memset(&m, 0, sizeof m);
    for (size_t i = 0; i < BUDDY_PAGES_PER_EXTENT;) {
        if (validate_block_locked(ext, i, sum, &m))
            return -1;
        i += block_pages_locked(ext, i);
    }
    for (size_t w = 0; w < FMAP_WORDS; w++) {
        if (ext->avail[w] != m.avail[w])
            return validate_fail("free map word does not match the page map", ext->base, w,
                                 (size_t)__builtin_popcountll(ext->avail[w] ^ m.avail[w]));
        if (ext->avail_dirty[w] != m.avail_dirty[w])
            return validate_fail("dirty free map word does not match the dirty pages", ext->base,
                                 w, (size_t)__builtin_popcountll(ext->avail_dirty[w] ^
                                                                 m.avail_dirty[w]));
    }
    for (size_t w = 0; w < MAP_WORDS; w++) {
        if (ext->freepg[w] != m.freepg[w])
            return validate_fail("free page map word does not match the free blocks", ext->base,
                                 w, 0);
        for (uint64_t b = ext->busy[w]; b; b &= b - 1) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(b);
            if (ext->pages[i].state != BUDDY_PAGE_FREE_HEAD)
                return validate_fail("busy bit on a page that is not FREE_HEAD",
                                     page_addr(ext, i), ext->pages[i].state,
                                     BUDDY_PAGE_FREE_HEAD);
        }
    }
    if (validate_summary(ext, ext->avail, ext->sum, ext->orders,
                         "free map summary word or order mask wrong") ||
        validate_summary(ext, ext->avail_dirty, ext->sum_dirty, ext->dirty_orders,
                         "dirty free map summary word or order mask wrong"))
        return -1;
    return 0;
}

/* Each olist[k] holds exactly the extents whose order mask has bit k. */
static int validate_order_lists_locked(void)
{
    buddy_assert_locked();
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
        size_t n = 0, want = 0;
        const struct buddy_extent *prev = NULL;
        for (const struct buddy_extent *e = buddy.olist[k]; e; prev = e, e = e->onext[k]) {
            if (++n > buddy.st.extents)
                return validate_fail("order list longer than the extents (cycle)", e->base, n,
                                     buddy.st.extents);
            if (e->oprev[k] != prev)
                return validate_fail("order list prev link broken", e->base, k, 0);
            if (!((e->orders >> k) & 1))
                return validate_fail("extent on an order list without a free block of it",
                                     e->base, e->orders, k);
        }
        if (buddy.otail[k] != prev)
            return validate_fail("order list tail", prev ? prev->base : NULL, k, 0);
        for (const struct buddy_extent *e = buddy.extents; e; e = e->next)
            want += (e->orders >> k) & 1;
        if (n != want)
            return validate_fail("extents with a free block of an order != its list", NULL, n,
                                 want);
    }
    return 0;
}

static int validate_locked(void)
{
    buddy_assert_locked();
    size_t extents = 0;
    struct validate_sums sum;
    memset(&sum, 0, sizeof sum);
    for (const struct buddy_extent *ext = buddy.extents; ext; ext = ext->next) {
        if (++extents > buddy.st.extents)
            return validate_fail("more extents listed than counted", ext->base, extents,
                                 buddy.st.extents);
        if (ext->next && ext->next->prev != ext)
            return validate_fail("extent list prev link broken", ext->next->base, 0, 0);
        if (validate_extent_locked(ext, &sum))
            return -1;
    }
    if (extents != buddy.st.extents)
        return validate_fail("extent count", NULL, extents, buddy.st.extents);
    if (validate_order_lists_locked())
        return -1;
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
        if (sum.nfree[k] != buddy.st.free_blocks[k])
            return validate_fail("free blocks of an order != free_blocks[order]", NULL,
                                 sum.nfree[k], buddy.st.free_blocks[k]);
    if (sum.busy != buddy.busy_blocks)
        return validate_fail("blocks a purge holds", NULL, sum.busy, buddy.busy_blocks);
    if (sum.free_bytes != buddy.st.free_bytes)
        return validate_fail("free_bytes", NULL, sum.free_bytes, buddy.st.free_bytes);
    if (sum.dirty_free_bytes != buddy.st.dirty_free_bytes)
        return validate_fail("dirty_free_bytes", NULL, sum.dirty_free_bytes,
                             buddy.st.dirty_free_bytes);
    if (sum.alloc_bytes + buddy.st.huge_bytes != buddy.st.alloc_bytes)
        return validate_fail("alloc_bytes", NULL, sum.alloc_bytes + buddy.st.huge_bytes,
                             buddy.st.alloc_bytes);
    if (buddy.st.free_blocks[BUDDY_MAX_ORDER] > spare_limit())
        return validate_fail("more whole free extents than spares", NULL,
                             buddy.st.free_blocks[BUDDY_MAX_ORDER], spare_limit());
    return 0;
}

int buddy_validate(void)
{
    buddy_lock();
    int rc = validate_locked();
    buddy_unlock();
    return rc;
}

/* ---------------------------------------------------------------- tests: corrupt on purpose */

/* Break one invariant the validator checks (tests of the validator only); `what` picks it.
 * Returns 0, or -1 when there is nothing to break it on.  The allocator is unusable after
 * this until buddy_reset_for_tests(). */
int buddy_corrupt_for_tests(int what)
{
    buddy_lock();
    struct buddy_extent *ext = buddy.extents;
    int rc = 0;
    if (!ext) {
        buddy_unlock();
        return -1;
    }
    switch (what) {
    case BUDDY_CORRUPT_FREE_MAP: /* a free-map bit with no free block behind it */
        ext->avail[0] ^= (uint64_t)1 << 63;
        break;
    case BUDDY_CORRUPT_SUMMARY:
        ext->sum[0] ^= 1u << 15;
        break;
    case BUDDY_CORRUPT_ORDER_MASK:
        ext->orders ^= 1u << 3;
        break;
    case BUDDY_CORRUPT_DIRTY_MAP: /* an allocated page marked clean */
    case BUDDY_CORRUPT_BUSY:      /* an allocated block's head marked busy */
        rc = -1;
        for (size_t i = 0; i < BUDDY_PAGES_PER_EXTENT; i++)
            if (ext->pages[i].state == BUDDY_PAGE_ALLOC_HEAD) {
                if (what == BUDDY_CORRUPT_BUSY)
                    range_set(ext->busy, i, 1);
                else
                    range_clear(ext->dirty, i, 1);
                rc = 0;
                break;
            }
        break;
    case BUDDY_CORRUPT_FREE_PAGES:
        ext->freepg[MAP_WORDS - 1] ^= (uint64_t)1 << 63;
        break;
    case BUDDY_CORRUPT_ORDER_LIST: /* drop the extent from the list of one of its orders */
        rc = -1;
        for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
            if ((ext->orders >> k) & 1) {
                olist_unlink_locked(ext, k);
                rc = 0;
                break;
            }
        break;
    case BUDDY_CORRUPT_PAGE_MAP: /* a free tail page claims another order */
        rc = -1;
        for (size_t i = 1; i < BUDDY_PAGES_PER_EXTENT; i++)
            if (ext->pages[i].state == BUDDY_PAGE_FREE_TAIL) {
                ext->pages[i].order ^= 1;
                rc = 0;
                break;
            }
        break;
    case BUDDY_CORRUPT_COUNTER:
        buddy.st.dirty_free_bytes += BUDDY_PAGE_SIZE;
        break;
    case BUDDY_CORRUPT_RUN: /* a run's page links to the wrong head */
        rc = -1;
        for (size_t i = 1; i < BUDDY_PAGES_PER_EXTENT; i++)
            if (ext->pages[i].state == BUDDY_PAGE_ALLOC_TAIL &&
                ext->pages[i].order == BUDDY_ORDER_RUN) {
                ext->link[i]++;
                rc = 0;
                break;
            }
        break;
    default:
        rc = -1;
    }
    buddy_unlock();
    return rc;
}

/* ---------------------------------------------------------------- reset, fork */

void buddy_reset_for_tests(void)
{
    buddy_lock();
    while (buddy.extents) {
        struct buddy_extent *ext = buddy.extents;
        buddy.extents = ext->next;
        heap_extent_free(ext->heap);
        extent_record_free(ext);
    }
    memset(buddy.olist, 0, sizeof buddy.olist);
    memset(buddy.otail, 0, sizeof buddy.otail);
    memset(&buddy.st, 0, sizeof buddy.st);
    memset(&reuse, 0, sizeof reuse);
    buddy.busy_blocks = 0;
    memset(buddy.huge_peak, 0, sizeof buddy.huge_peak);
    buddy.huge_epoch = 0;
    buddy_unlock();
    __atomic_store_n(&decay.pass_epoch, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&decay.more, false, __ATOMIC_RELAXED);
    heap_reset_for_tests(); /* also drops huge extents, which buddy does not list */
}

/* A purge in flight holds free blocks off the maps while it runs without the lock; a child
 * forked then would never get them back.  So wait (lock, look, yield) until none is out:
 * purges are short (one batch) and no new one can take blocks while the lock is held. */
void buddy_lock_all(void)
{
    for (;;) {
        buddy_lock();
        if (buddy.busy_blocks == 0)
            break;
        buddy_unlock();
        sched_yield();
    }
    heap_lock_all();
}

void buddy_unlock_all(void)
{
    /* A pass another thread was running between two batches does not exist in a child:
     * let the next slow path start one (in the parent two passes may then overlap for a
     * moment, which only splits the candidates between them). */
    __atomic_store_n(&decay.running, false, __ATOMIC_RELEASE);
    heap_unlock_all();
    buddy_unlock();
}
