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
 *   The whole extent is the only block of order BUDDY_MAX_ORDER; it has no buddy.
 *
 * PAGE STATES (struct buddy_page, one per page, out of band in struct buddy_extent.pages)
 *
 *     state        order           tag     where the page is
 *     FREE_HEAD    of the block    0       first page of a free block; on free list [order]
 *     FREE_TAIL    of the block    0       any other page of a free block
 *     ALLOC_HEAD   of the block    owner   first page of an allocated block (buddy_free arg)
 *     ALLOC_TAIL   of the block    owner   any other page of an allocated block
 *
 *   Every page carries its block's order, so buddy_lookup() finds the head from any page in
 *   O(1), and a FREE_TAIL page passed to buddy_free() is recognised as a double free even after
 *   its block was merged into a larger one.  Entries are written under the lock and read with
 *   relaxed atomic loads by buddy_lookup(), which takes no lock: its callers only ask about
 *   their own live blocks, whose entries do not change while the block is live.
 *
 * FREE LISTS
 *   One doubly linked, NULL-terminated list per order; the node (struct buddy_node) lives in
 *   the first bytes of the free block itself, like Linux's page->lru and sqlite mem5's
 *   aiFreelist, and the list heads are in the static `buddy` struct.  A node is mapped back to
 *   its extent with heap_extent_lookup() (O(1) radix map).  Allocation takes the head of the
 *   smallest non-empty list of order >= the request and splits it, pushing the upper halves;
 *   freeing merges with the buddy while the buddy is a free block of the same order.
 *
 * FRAGMENTATION
 *   Internal: a request of n pages gets 2^ceil(log2 n) pages, so at most just under half of a
 *   block is wasted (buddy_alloc_bytes); buddy_alloc callers ask for orders directly.
 *   External: free blocks are always fully coalesced (validated), so free memory is never held
 *   as two free buddies of one order; it can still be scattered across extents by long-lived
 *   allocations (one live order-0 page pins its 4 MiB extent).  Lists are LIFO, which favours
 *   reusing recently freed (cache-warm) blocks over compaction.  sqlite's mem5 bound applies:
 *   with requests of at most 2^k pages, a pool of M pages never fails while live memory stays
 *   below M / (2 + k) -- Robson's bound; we grow by whole extents instead of failing.
 *
 * RETURNING MEMORY
 *   When a free block of order BUDDY_MAX_ORDER (a whole extent) appears on free, at most
 *   spare_limit() such extents (BUDDY_SPARE_EXTENTS_DEFAULT = 64, i.e. 256 MiB, or
 *   SLABCACHE_SPARE_EXTENTS) stay on the top list as spares, so a program that frees a large
 *   working set and builds it again does not fault every page in twice; further ones go back
 *   with heap_extent_free() at once.  buddy_trim(keep) returns spares beyond `keep` and madvises
 *   free blocks of order >= BUDDY_PURGE_MIN_ORDER except their first page (which holds the list
 *   node).  A per-extent bitmap remembers which free heads are purged: splitting a purged
 *   block yields purged halves, allocating or merging clears the bit, so a second trim with
 *   nothing changed makes no system calls.  A fresh extent counts as purged (nothing of it is
 *   resident; the heap says when an extent it hands out may hold old data, `dirty`, and then it
 *   does not).  A purged block reads as zero but for its first page (the list node's page,
 *   never purged; a split writes a node only into the first page of each half), which
 *   buddy_alloc_clean reports to callers that must zero memory (calloc).  The purge budget
 *   (buddy_set_purge_budget; kmalloc sets 1 MiB for its large blocks) runs that purge from
 *   buddy_free once the estimate of resident free memory (bytes of order >= 4 blocks of the
 *   budget's tag freed since the last sweep, minus unpurged memory allocated again) exceeds
 *   it.
 *
 * HUGE BLOCKS
 *   Requests above 4 MiB (buddy_alloc_bytes) are dedicated heap extents of kind HEAP_KIND_WHOLE
 *   whose heap descriptor holds the tag; buddy_free() of their base gives them back whole.
 *
 * LOCKING
 *   1. buddy.lock (one pthread mutex) protects everything in `buddy` (free lists, extent list,
 *      stats) and every page map entry and purged bit.
 *   2. The heap's lock is taken inside it (heap_extent_alloc/free, heap_purge, heap_meta_*):
 *      order is buddy -> heap, never the reverse.
 *   Functions named *_locked require buddy.lock held by the caller (asserted in debug builds).
 *   buddy_lookup() takes no lock.  buddy_lock_all()/buddy_unlock_all() bracket fork().
 *
 * Nothing here calls malloc or printf: metadata comes from heap_meta_alloc, and messages are
 * formatted into stack buffers and written with write(2).
 */
#include "buddy/buddy.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NDEBUG
static const bool buddy_debug = false;
#else
static const bool buddy_debug = true;
#endif

#define BUDDY_ORDERS (BUDDY_MAX_ORDER + 1)
#define BUDDY_BITMAP_WORDS (BUDDY_PAGES_PER_EXTENT / 64)

/* ---------------------------------------------------------------- structures */

/* Free-list node, stored in the first bytes of a free block. */
struct buddy_node {
    struct buddy_node *next, *prev;
};

/* Per-extent record from heap_meta_alloc; the heap extent's `owner` points at it (and thus
 * at its page map, the first member). */
struct buddy_extent {
    struct buddy_page pages[BUDDY_PAGES_PER_EXTENT]; /* page map; must stay first */
    uint64_t purged[BUDDY_BITMAP_WORDS]; /* bit per FREE_HEAD page: block purged by trim */
    struct heap_extent *heap;            /* the 4 MiB heap extent */
    char *base;                          /* == (char *)heap->base */
    struct buddy_extent *next, *prev;    /* buddy.extents */
};

static struct {
    pthread_mutex_t lock;
    pthread_t owner; /* debug: thread holding lock (valid while `held`) */
    bool held;
    struct buddy_node *free[BUDDY_ORDERS]; /* free lists, by order */
    struct buddy_extent *extents;          /* every buddy extent held */
    struct buddy_stats st;                 /* counters; st.free_blocks[k] = len(free[k]) */
    size_t tag_bytes[BUDDY_TAG_TRACKED];   /* bytes of live non-huge blocks, by tag */
} buddy = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Count a block of `bytes` tagged `tag` in (add) or out of buddy.tag_bytes. */
static void tag_bytes_add_locked(uint16_t tag, size_t bytes, bool add)
{
    if (tag < BUDDY_TAG_TRACKED)
        buddy.tag_bytes[tag] = add ? buddy.tag_bytes[tag] + bytes : buddy.tag_bytes[tag] - bytes;
}

/* ---------------------------------------------------------------- messages (no malloc) */

struct buddy_fmt {
    char *buf;
    size_t cap; /* bytes available in buf */
    size_t len; /* bytes that would have been written (snprintf rules) */
};

static void fmt_str(struct buddy_fmt *f, const char *s)
{
    for (; *s; s++, f->len++)
        if (f->len + 1 < f->cap)
            f->buf[f->len] = *s;
}

/* Unsigned v in base 10 or 16, right-aligned in `width` columns. */
static void fmt_uint(struct buddy_fmt *f, uintmax_t v, unsigned base, unsigned width)
{
    char tmp[32];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    for (; width > n; width--)
        fmt_str(f, " ");
    while (n)
        fmt_str(f, (char[2]){tmp[--n], 0});
}

static void fmt_hex(struct buddy_fmt *f, const void *p)
{
    fmt_str(f, "0x");
    fmt_uint(f, (uintptr_t)p, 16, 0);
}

/* NUL-terminate; returns the snprintf-style length. */
static size_t fmt_end(struct buddy_fmt *f)
{
    if (f->cap)
        f->buf[f->len < f->cap ? f->len : f->cap - 1] = '\0';
    return f->len;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void fmt_flush(struct buddy_fmt *f, int fd)
{
    size_t n = fmt_end(f);
    write_all(fd, f->buf, n < f->cap ? n : f->cap - 1);
}

static void fmt_to_file(struct buddy_fmt *f, FILE *out)
{
    size_t n = fmt_end(f);
    fwrite(f->buf, 1, n < f->cap ? n : f->cap - 1, out);
}

/* ---------------------------------------------------------------- lock */

static void buddy_lock(void)
{
    pthread_mutex_lock(&buddy.lock);
    if (buddy_debug) {
        __atomic_store_n(&buddy.owner, pthread_self(), __ATOMIC_RELAXED);
        __atomic_store_n(&buddy.held, true, __ATOMIC_RELAXED);
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

/* Mark every page of block [idx, idx + 2^order): head gets `head`, the others `tail`.
 * This is the O(2^order) part of split and merge: the tail entry is stored two at a time as
 * one 64-bit word.  Plain stores: they race with no lock-free reader, as buddy_lookup() reads
 * only pages of live blocks, and those are written only while their block is not live. */
static void block_mark_locked(struct buddy_extent *ext, size_t idx, unsigned order,
                              unsigned head, unsigned tail, uint16_t tag)
{
    buddy_assert_locked();
    struct buddy_page h = {.order = (uint8_t)order, .state = (uint8_t)head, .tag = tag};
    struct buddy_page t[2] = {{.order = (uint8_t)order, .state = (uint8_t)tail, .tag = tag},
                              {.order = (uint8_t)order, .state = (uint8_t)tail, .tag = tag}};
    struct buddy_page *pg = &ext->pages[idx];
    size_t n = order_pages(order);
    if (n == 1) {
        pg[0] = h;
        return;
    }
    uint64_t pair;
    memcpy(&pair, t, sizeof pair);
    for (size_t i = 0; i < n; i += 2) /* n is even: idx is 2-aligned */
        memcpy(&pg[i], &pair, sizeof pair);
    pg[0] = h;
}

static bool purged_get(const struct buddy_extent *ext, size_t idx)
{
    return (ext->purged[idx / 64] >> (idx % 64)) & 1;
}

static void purged_set(struct buddy_extent *ext, size_t idx, bool on)
{
    uint64_t bit = (uint64_t)1 << (idx % 64);
    if (on)
        ext->purged[idx / 64] |= bit;
    else
        ext->purged[idx / 64] &= ~bit;
}

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

/* The extent of a node taken from a free list.  A node outside every buddy extent means the
 * free lists are corrupt (a write after free): report it and abort rather than hand it out. */
static struct buddy_extent *extent_of_node_locked(const struct buddy_node *n)
{
    buddy_assert_locked();
    struct buddy_extent *ext = extent_of_addr(n);
    if (!ext) {
        char buf[128];
        struct buddy_fmt f = {buf, sizeof buf, 0};
        fmt_str(&f, "slabcache: buddy: corrupt free list: node ");
        fmt_hex(&f, n);
        fmt_str(&f, " is outside every buddy extent\n");
        fmt_flush(&f, STDERR_FILENO);
        abort();
    }
    return ext;
}

static size_t page_index(const struct buddy_extent *ext, const void *p)
{
    return (size_t)((const char *)p - ext->base) >> BUDDY_PAGE_SHIFT;
}

/* The one place that finds a buddy.  The buddy of the block at page index `idx` with order
 * `order` is idx ^ (1 << order) (the block and its buddy differ only in that bit; both are
 * aligned to 2^order).  It is mergeable iff its head page is FREE_HEAD of the same order: a
 * free block of another order, an allocated block, or a page inside some other block never
 * qualifies.  Returns the buddy's page index, or -1 (also for order BUDDY_MAX_ORDER, the whole
 * extent, which has no buddy). */
static long buddy_of_if_free_locked(const struct buddy_extent *ext, size_t idx, unsigned order)
{
    buddy_assert_locked();
    if (order >= BUDDY_MAX_ORDER)
        return -1;
    size_t b = idx ^ order_pages(order);
    struct buddy_page pg = page_get(&ext->pages[b]);
    if (pg.state != BUDDY_PAGE_FREE_HEAD || pg.order != order)
        return -1;
    return (long)b;
}

/* ---------------------------------------------------------------- free lists */

/* Make [idx, idx + 2^order) a free block and push it on free[order]. */
static void free_list_push_locked(struct buddy_extent *ext, size_t idx, unsigned order,
                                  bool purged)
{
    buddy_assert_locked();
    block_mark_locked(ext, idx, order, BUDDY_PAGE_FREE_HEAD, BUDDY_PAGE_FREE_TAIL, 0);
    purged_set(ext, idx, purged);
    struct buddy_node *n = page_addr(ext, idx);
    n->prev = NULL;
    n->next = buddy.free[order];
    if (n->next)
        n->next->prev = n;
    buddy.free[order] = n;
    buddy.st.free_blocks[order]++;
    buddy.st.free_bytes += order_bytes(order);
}

/* Unlink the free block at idx from free[order]; returns whether it was purged.  Its page
 * entries are left for the caller to rewrite. */
static bool free_list_remove_locked(struct buddy_extent *ext, size_t idx, unsigned order)
{
    buddy_assert_locked();
    struct buddy_node *n = page_addr(ext, idx);
    if (n->prev)
        n->prev->next = n->next;
    else
        buddy.free[order] = n->next;
    if (n->next)
        n->next->prev = n->prev;
    buddy.st.free_blocks[order]--;
    buddy.st.free_bytes -= order_bytes(order);
    bool purged = purged_get(ext, idx);
    purged_set(ext, idx, false);
    return purged;
}

/* ---------------------------------------------------------------- extents */

/* Take one more 4 MiB extent from the heap and put it on the top free list. */
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
    /* Marked purged unless the heap says it may hold old data (`dirty`): fresh or purged
     * memory is not resident and reads as zero (the purge budget does not count it, trims
     * skip it, and buddy_alloc_clean reports blocks carved from it as clean). */
    free_list_push_locked(ext, 0, BUDDY_MAX_ORDER, !he->dirty);
    return 0;
}

/* Give a wholly free extent (already off the free lists) back to the heap. */
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
    heap_meta_free(ext, sizeof *ext);
}

/* ---------------------------------------------------------------- alloc, free */

/* buddy.st.unpurged_bytes, an estimate of the free bytes that are still resident: blocks
 * freed since the last purge sweep, minus unpurged free memory allocated again.  It drives
 * the purge budget only; the sweep itself looks at every free block's purged bit. */
static void resident_free_sub_locked(size_t bytes)
{
    size_t *u = &buddy.st.unpurged_bytes;
    *u = *u > bytes ? *u - bytes : 0;
}

/* Allocate a block of 2^order pages; *clean (if not NULL) says whether it was carved from a
 * purged (or fresh) free block: then every page but its first reads as zero. */
static void *block_alloc_locked(unsigned order, uint16_t tag, bool *clean)
{
    buddy_assert_locked();
    unsigned k = order;
    while (k <= BUDDY_MAX_ORDER && !buddy.free[k])
        k++;
    if (k > BUDDY_MAX_ORDER) {
        if (extent_grow_locked() != 0)
            return NULL;
        k = BUDDY_MAX_ORDER;
    }
    struct buddy_node *n = buddy.free[k];
    struct buddy_extent *ext = extent_of_node_locked(n);
    size_t idx = page_index(ext, n);
    bool purged = free_list_remove_locked(ext, idx, k);
    if (clean)
        *clean = purged;
    if (!purged) /* reusing freed memory that may still be resident */
        resident_free_sub_locked(order_bytes(order));
    while (k > order) { /* keep the lower half, free the upper half */
        k--;
        free_list_push_locked(ext, idx + order_pages(k), k, purged);
        buddy.st.splits++;
    }
    block_mark_locked(ext, idx, order, BUDDY_PAGE_ALLOC_HEAD, BUDDY_PAGE_ALLOC_TAIL, tag);
    buddy.st.alloc_bytes += order_bytes(order);
    tag_bytes_add_locked(tag, order_bytes(order), true);
    buddy.st.allocs++;
    return page_addr(ext, idx);
}

static size_t spare_limit(void);
static size_t trim_purge_locked(void);

/* Unpurged free bytes above which a free purges every free block (buddy_set_purge_budget);
 * buddy lock for writes. */
static size_t purge_budget = SIZE_MAX;
static uint16_t purge_budget_tag; /* frees of blocks with this tag count toward it */
/* buddy_set_purge_scale: the budget in force is live bytes of the tag >> purge_scale_shift,
 * at least purge_scale_min and at most purge_budget.  purge_scale_min = SIZE_MAX: no scaling. */
static size_t purge_scale_min = SIZE_MAX;
static unsigned purge_scale_shift;

/* The budget in force: the set budget, or (scaled) a share of the tag's live bytes. */
static size_t purge_budget_now_locked(void)
{
    if (purge_scale_min >= purge_budget || purge_budget_tag >= BUDDY_TAG_TRACKED)
        return purge_budget;
    size_t b = buddy.tag_bytes[purge_budget_tag] >> purge_scale_shift;
    if (b < purge_scale_min)
        b = purge_scale_min;
    return b < purge_budget ? b : purge_budget;
}

/* One sweep when the estimate of resident free memory is over the budget in force. */
static void purge_if_over_budget_locked(void)
{
    if (buddy.st.unpurged_bytes > purge_budget_now_locked()) {
        buddy.st.budget_purges++;
        trim_purge_locked();
    }
}

/* `bytes` of a block tagged `tag` became free (maybe still resident): count them toward the
 * purge budget, and sweep once it is exceeded.  Only the budget's tag counts (kmalloc: large
 * objects): a cache that releases empty slabs keeps their memory resident for its next
 * slabs.  Blocks below BUDDY_PURGE_MIN_ORDER are never purged by themselves. */
static void resident_free_add_locked(size_t bytes, uint16_t tag)
{
    if (tag != purge_budget_tag || bytes < order_bytes(BUDDY_PURGE_MIN_ORDER))
        return;
    buddy.st.unpurged_bytes += bytes;
    purge_if_over_budget_locked();
}

/* Free the allocated block whose head is page idx: merge while the buddy is free. */
static void block_free_locked(struct buddy_extent *ext, size_t idx)
{
    buddy_assert_locked();
    unsigned order = ext->pages[idx].order;
    const uint16_t tag = ext->pages[idx].tag;
    const size_t freed = order_bytes(order);
    buddy.st.alloc_bytes -= freed;
    tag_bytes_add_locked(tag, freed, false);
    buddy.st.frees++;
    long b;
    while ((b = buddy_of_if_free_locked(ext, idx, order)) >= 0) {
        free_list_remove_locked(ext, (size_t)b, order);
        idx &= (size_t)b; /* the merged block starts at the lower of the two */
        order++;
        buddy.st.merges++;
    }
    if (order == BUDDY_MAX_ORDER && buddy.st.free_blocks[order] >= spare_limit()) {
        extent_release_locked(ext);
        return;
    }
    free_list_push_locked(ext, idx, order, false);
    resident_free_add_locked(freed, tag); /* after the push: a sweep may purge it too */
}

void *buddy_alloc_clean(unsigned order, uint16_t tag, bool *clean)
{
    void *p = NULL;
    if (clean)
        *clean = false;
    buddy_lock();
    if (order > BUDDY_MAX_ORDER || tag == BUDDY_TAG_NONE)
        errno = EINVAL;
    else
        p = block_alloc_locked(order, tag, clean);
    if (!p)
        buddy.st.failures++;
    buddy_unlock();
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

static void *huge_alloc(size_t bytes, uint16_t tag)
{
    struct heap_extent *he = heap_extent_alloc(bytes, HEAP_KIND_WHOLE, tag, NULL, true);
    buddy_lock();
    if (he) {
        buddy.st.huge_blocks++;
        buddy.st.huge_bytes += he->size;
        buddy.st.alloc_bytes += he->size;
        buddy.st.allocs++;
    } else {
        buddy.st.failures++;
    }
    buddy_unlock();
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
    char buf[192];
    struct buddy_fmt f = {buf, sizeof buf, 0};
    fmt_str(&f, "slabcache: buddy: invalid free of ");
    fmt_hex(&f, ptr);
    fmt_str(&f, ": ");
    fmt_str(&f, why);
    if (block) {
        fmt_str(&f, " ");
        fmt_hex(&f, block);
    }
    fmt_str(&f, "\n");
    fmt_flush(&f, STDERR_FILENO);
    buddy.st.invalid_frees++;
    errno = EINVAL;
    return -1;
}

static int huge_free_locked(struct heap_extent *he, void *ptr)
{
    buddy_assert_locked();
    if ((uintptr_t)ptr != he->base)
        return invalid_free_locked(ptr, "interior pointer of the huge block at",
                                   (void *)he->base);
    size_t size = he->size;
    if (heap_extent_free(he) != 0)
        return invalid_free_locked(ptr, "heap refused the huge extent", NULL);
    buddy.st.huge_blocks--;
    buddy.st.huge_bytes -= size;
    buddy.st.alloc_bytes -= size;
    buddy.st.frees++;
    return 0;
}

/* Check that ptr is the head of an allocated block of ours, then free it. */
static int checked_free_locked(void *ptr)
{
    buddy_assert_locked();
    if (!ptr)
        return invalid_free_locked(ptr, "NULL pointer", NULL);
    struct heap_extent *he = heap_extent_lookup(ptr);
    if (he && he->kind == HEAP_KIND_WHOLE)
        return huge_free_locked(he, ptr);
    struct buddy_extent *ext = extent_of_heap(he);
    if (!ext)
        return invalid_free_locked(ptr, "not a slabcache buddy block", NULL);
    if ((uintptr_t)ptr & (BUDDY_PAGE_SIZE - 1))
        return invalid_free_locked(ptr, "not page aligned (interior pointer)", NULL);
    size_t idx = page_index(ext, ptr);
    struct buddy_page pg = ext->pages[idx];
    size_t head = idx & ~(order_pages(pg.order) - 1);
    switch (pg.state) {
    case BUDDY_PAGE_ALLOC_HEAD:
        block_free_locked(ext, idx);
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
    buddy_lock();
    int rc = checked_free_locked(ptr);
    buddy_unlock();
    if (rc)
        errno = EINVAL;
    return rc;
}

/* buddy_resize with the lock held: 0, or an errno value with nothing changed. */
static int resize_locked(void *head, unsigned new_order)
{
    buddy_assert_locked();
    struct buddy_extent *ext = extent_of_addr(head);
    if (!ext || new_order > BUDDY_MAX_ORDER || ((uintptr_t)head & (BUDDY_PAGE_SIZE - 1)))
        return EINVAL;
    size_t idx = page_index(ext, head);
    struct buddy_page pg = page_get(&ext->pages[idx]);
    if (pg.state != BUDDY_PAGE_ALLOC_HEAD)
        return EINVAL;
    unsigned order = pg.order;
    if (new_order > order) {
        /* Check every level first, so a refusal changes nothing. */
        for (unsigned k = order; k < new_order; k++)
            if ((idx & order_pages(k)) || buddy_of_if_free_locked(ext, idx, k) < 0)
                return ENOMEM;
        for (unsigned k = order; k < new_order; k++) {
            if (!free_list_remove_locked(ext, idx + order_pages(k), k))
                resident_free_sub_locked(order_bytes(k));
            buddy.st.merges++;
        }
        block_mark_locked(ext, idx, new_order, BUDDY_PAGE_ALLOC_HEAD, BUDDY_PAGE_ALLOC_TAIL,
                          pg.tag);
        buddy.st.alloc_bytes += order_bytes(new_order) - order_bytes(order);
        tag_bytes_add_locked(pg.tag, order_bytes(new_order) - order_bytes(order), true);
    } else if (new_order < order) {
        /* The kept lower part first, then each upper half becomes a free block; its buddy is
         * the (allocated) lower half, so none of them can merge. */
        block_mark_locked(ext, idx, new_order, BUDDY_PAGE_ALLOC_HEAD, BUDDY_PAGE_ALLOC_TAIL,
                          pg.tag);
        for (unsigned k = order; k > new_order;) {
            k--;
            free_list_push_locked(ext, idx + order_pages(k), k, false);
            buddy.st.splits++;
        }
        buddy.st.alloc_bytes -= order_bytes(order) - order_bytes(new_order);
        tag_bytes_add_locked(pg.tag, order_bytes(order) - order_bytes(new_order), false);
        resident_free_add_locked(order_bytes(order) - order_bytes(new_order), pg.tag);
    }
    return 0;
}

int buddy_resize(void *head, unsigned new_order)
{
    buddy_lock();
    int err = resize_locked(head, new_order);
    buddy_unlock();
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
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
        struct buddy_page pg = page_get(&ext->pages[page_index(ext, ptr)]);
        if ((pg.state != BUDDY_PAGE_ALLOC_HEAD && pg.state != BUDDY_PAGE_ALLOC_TAIL) ||
            pg.order > BUDDY_MAX_ORDER)
            return false;
        size_t head = page_index(ext, ptr) & ~(order_pages(pg.order) - 1);
        info.head = page_addr(ext, head);
        info.size = order_bytes(pg.order);
        info.order = pg.order;
        info.tag = pg.tag;
    }
    if (out)
        *out = info;
    return true;
}

/* ---------------------------------------------------------------- trim */

/* Give back whole free extents beyond `keep`; returns bytes. */
static size_t trim_extents_locked(size_t keep)
{
    buddy_assert_locked();
    size_t bytes = 0;
    while (buddy.st.free_blocks[BUDDY_MAX_ORDER] > keep) {
        struct buddy_extent *ext = extent_of_node_locked(buddy.free[BUDDY_MAX_ORDER]);
        free_list_remove_locked(ext, 0, BUDDY_MAX_ORDER);
        extent_release_locked(ext);
        bytes += HEAP_EXTENT_SIZE;
    }
    return bytes;
}

/* madvise every not-yet-purged free block of order >= BUDDY_PURGE_MIN_ORDER but its first
 * page (the list node); returns bytes. */
static size_t trim_purge_locked(void)
{
    buddy_assert_locked();
    buddy.st.unpurged_bytes = 0; /* every free block of a purgeable order is purged below */
    size_t bytes = 0;
    for (unsigned k = BUDDY_PURGE_MIN_ORDER; k <= BUDDY_MAX_ORDER; k++) {
        for (struct buddy_node *n = buddy.free[k]; n; n = n->next) {
            struct buddy_extent *ext = extent_of_node_locked(n);
            size_t idx = page_index(ext, n);
            if (purged_get(ext, idx))
                continue;
            size_t len = order_bytes(k) - BUDDY_PAGE_SIZE;
            if (heap_purge((char *)n + BUDDY_PAGE_SIZE, len) != 0)
                continue;
            purged_set(ext, idx, true);
            bytes += len;
        }
    }
    return bytes;
}

/* ---------------------------------------------------------------- spares */

/* 0 = not read yet; otherwise the limit (buddy lock for writes; relaxed reads). */
static size_t spare_extents;

/* SLABCACHE_SPARE_EXTENTS, parsed without allocating; 0 when absent or malformed. */
static size_t spare_from_env(void)
{
    const char *v = getenv("SLABCACHE_SPARE_EXTENTS");
    size_t n = 0;
    if (!v || !*v)
        return 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (SIZE_MAX - 9) / 10)
            return 0;
        n = n * 10 + (size_t)(*v - '0');
    }
    return *v ? 0 : n;
}

static size_t spare_limit(void)
{
    size_t n = __atomic_load_n(&spare_extents, __ATOMIC_RELAXED);
    if (__builtin_expect(n == 0, 0)) {
        n = spare_from_env();
        if (n == 0)
            n = BUDDY_SPARE_EXTENTS_DEFAULT;
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

size_t buddy_set_purge_budget(size_t bytes, uint16_t tag)
{
    buddy_lock();
    size_t old = purge_budget;
    purge_budget = bytes;
    purge_budget_tag = tag;
    purge_if_over_budget_locked();
    buddy_unlock();
    return old;
}

size_t buddy_set_purge_scale(size_t min_bytes, unsigned shift)
{
    buddy_lock();
    size_t old = purge_scale_min;
    purge_scale_min = min_bytes;
    purge_scale_shift = shift < 63 ? shift : 63;
    purge_if_over_budget_locked();
    buddy_unlock();
    return old;
}

size_t buddy_trim(size_t keep_extents)
{
    buddy_lock();
    size_t bytes = trim_extents_locked(keep_extents);
    bytes += trim_purge_locked();
    buddy_unlock();
    return bytes;
}

/* ---------------------------------------------------------------- stats */

void buddy_get_stats(struct buddy_stats *out)
{
    buddy_lock();
    *out = buddy.st;
    buddy_unlock();
}

static void format_buddyinfo(struct buddy_fmt *f, const struct buddy_stats *st)
{
    fmt_str(f, "Node 0, zone slabcache");
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
        fmt_str(f, " ");
        fmt_uint(f, st->free_blocks[k], 10, 6);
    }
    fmt_str(f, "\n");
}

int buddy_format_buddyinfo(char *buf, size_t len)
{
    struct buddy_stats st;
    buddy_get_stats(&st);
    struct buddy_fmt f = {buf, len, 0};
    format_buddyinfo(&f, &st);
    return (int)fmt_end(&f);
}

void buddy_print_buddyinfo(FILE *out)
{
    char buf[256];
    struct buddy_stats st;
    buddy_get_stats(&st);
    struct buddy_fmt f = {buf, sizeof buf, 0};
    format_buddyinfo(&f, &st);
    fmt_to_file(&f, out);
}

static void fmt_field(struct buddy_fmt *f, const char *name, size_t v)
{
    fmt_str(f, " ");
    fmt_str(f, name);
    fmt_str(f, " ");
    fmt_uint(f, v, 10, 0);
}

void buddy_print_stats(FILE *out)
{
    char buf[1024];
    struct buddy_stats st;
    buddy_get_stats(&st);
    struct buddy_fmt f = {buf, sizeof buf, 0};
    fmt_str(&f, "buddy:");
    fmt_field(&f, "extents", st.extents);
    fmt_field(&f, "huge_blocks", st.huge_blocks);
    fmt_field(&f, "huge_bytes", st.huge_bytes);
    fmt_field(&f, "free_bytes", st.free_bytes);
    fmt_field(&f, "alloc_bytes", st.alloc_bytes);
    fmt_str(&f, "\nbuddy:");
    fmt_field(&f, "allocs", st.allocs);
    fmt_field(&f, "frees", st.frees);
    fmt_field(&f, "splits", st.splits);
    fmt_field(&f, "merges", st.merges);
    fmt_field(&f, "failures", st.failures);
    fmt_field(&f, "invalid_frees", st.invalid_frees);
    fmt_str(&f, "\n");
    format_buddyinfo(&f, &st);
    fmt_to_file(&f, out);
}

/* ---------------------------------------------------------------- validation */

static int validate_fail(const char *what, const void *where, size_t got, size_t want)
{
    char buf[256];
    struct buddy_fmt f = {buf, sizeof buf, 0};
    fmt_str(&f, "slabcache: buddy: validate: ");
    fmt_str(&f, what);
    fmt_str(&f, " at ");
    fmt_hex(&f, where);
    fmt_str(&f, " (got ");
    fmt_uint(&f, got, 10, 0);
    fmt_str(&f, ", want ");
    fmt_uint(&f, want, 10, 0);
    fmt_str(&f, ")\n");
    fmt_flush(&f, STDERR_FILENO);
    return -1;
}

/* Every list node is the FREE_HEAD of a block of the list's order, links are consistent,
 * and the list length matches free_blocks[]. */
static int validate_lists_locked(void)
{
    size_t bound = buddy.st.extents * BUDDY_PAGES_PER_EXTENT;
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
        size_t n = 0;
        struct buddy_node *prev = NULL;
        for (struct buddy_node *p = buddy.free[k]; p; prev = p, p = p->next) {
            struct buddy_extent *ext = extent_of_addr(p);
            if (!ext)
                return validate_fail("free list node outside every buddy extent", p, k, 0);
            if ((uintptr_t)p & (BUDDY_PAGE_SIZE - 1))
                return validate_fail("free list node not page aligned", p, k, 0);
            struct buddy_page pg = ext->pages[page_index(ext, p)];
            if (pg.state != BUDDY_PAGE_FREE_HEAD)
                return validate_fail("free list node is not FREE_HEAD", p, pg.state,
                                     BUDDY_PAGE_FREE_HEAD);
            if (pg.order != k)
                return validate_fail("free list node of the wrong order", p, pg.order, k);
            if (p->prev != prev)
                return validate_fail("free list prev link broken", p, k, 0);
            if (++n > bound)
                return validate_fail("free list longer than the pages held (cycle)", p, n, bound);
        }
        if (n != buddy.st.free_blocks[k])
            return validate_fail("free list length != free_blocks[order]", &buddy.free[k], n,
                                 buddy.st.free_blocks[k]);
    }
    return 0;
}

/* Tails of the block at idx agree with its head; returns -1 after reporting. */
static int validate_tails_locked(const struct buddy_extent *ext, size_t idx,
                                 struct buddy_page head)
{
    unsigned tail = head.state == BUDDY_PAGE_FREE_HEAD ? BUDDY_PAGE_FREE_TAIL
                                                       : BUDDY_PAGE_ALLOC_TAIL;
    for (size_t i = idx + 1; i < idx + order_pages(head.order); i++) {
        struct buddy_page pg = ext->pages[i];
        if (pg.state != tail)
            return validate_fail("tail page state != head's", page_addr(ext, i), pg.state, tail);
        if (pg.order != head.order)
            return validate_fail("tail page order != head's", page_addr(ext, i), pg.order,
                                 head.order);
        if (pg.tag != head.tag)
            return validate_fail("tail page tag != head's", page_addr(ext, i), pg.tag, head.tag);
    }
    return 0;
}

/* Byte totals the validator recomputes from the page maps. */
struct validate_sums {
    size_t nfree, free_bytes, alloc_bytes;
    size_t tag_bytes[BUDDY_TAG_TRACKED]; /* allocated bytes by tag (buddy.tag_bytes) */
};

/* One block's head page at idx; adds its bytes to the sums. */
static int validate_block_locked(const struct buddy_extent *ext, size_t idx,
                                 struct validate_sums *sum)
{
    struct buddy_page pg = ext->pages[idx];
    void *at = page_addr(ext, idx);
    if (pg.state != BUDDY_PAGE_FREE_HEAD && pg.state != BUDDY_PAGE_ALLOC_HEAD)
        return validate_fail("block does not start with a head page", at, pg.state, 0);
    if (pg.order > BUDDY_MAX_ORDER)
        return validate_fail("order out of range", at, pg.order, BUDDY_MAX_ORDER);
    if (idx & (order_pages(pg.order) - 1))
        return validate_fail("block not aligned to its order", at, idx, pg.order);
    if (validate_tails_locked(ext, idx, pg))
        return -1;
    if (pg.state == BUDDY_PAGE_ALLOC_HEAD) {
        if (pg.tag == BUDDY_TAG_NONE)
            return validate_fail("allocated block with tag 0", at, pg.tag, 1);
        if (purged_get(ext, idx))
            return validate_fail("allocated block marked purged", at, 1, 0);
        sum->alloc_bytes += order_bytes(pg.order);
        if (pg.tag < BUDDY_TAG_TRACKED)
            sum->tag_bytes[pg.tag] += order_bytes(pg.order);
        return 0;
    }
    if (pg.tag != BUDDY_TAG_NONE)
        return validate_fail("free block with a tag", at, pg.tag, 0);
    long b = buddy_of_if_free_locked(ext, idx, pg.order);
    if (b >= 0)
        return validate_fail("two free buddies left unmerged", at, (size_t)b, pg.order);
    sum->nfree++;
    sum->free_bytes += order_bytes(pg.order);
    return 0;
}

static int validate_extent_locked(const struct buddy_extent *ext, struct validate_sums *sum)
{
    const struct heap_extent *he = ext->heap;
    if (!he || he != heap_extent_lookup(ext->base) || he->owner != ext ||
        he->kind != HEAP_KIND_SPLIT || (char *)he->base != ext->base ||
        he->size < HEAP_EXTENT_SIZE)
        return validate_fail("extent record does not match its heap extent", ext->base, 0, 0);
    for (size_t i = 0; i < BUDDY_PAGES_PER_EXTENT;) {
        if (validate_block_locked(ext, i, sum))
            return -1;
        i += order_pages(ext->pages[i].order);
    }
    for (size_t i = 0; i < BUDDY_PAGES_PER_EXTENT; i++)
        if (purged_get(ext, i) && ext->pages[i].state != BUDDY_PAGE_FREE_HEAD)
            return validate_fail("purged bit on a page that is not FREE_HEAD", page_addr(ext, i),
                                 ext->pages[i].state, BUDDY_PAGE_FREE_HEAD);
    return 0;
}

static int validate_locked(void)
{
    buddy_assert_locked();
    if (validate_lists_locked())
        return -1;
    size_t extents = 0, listed = 0;
    struct validate_sums sum = {0};
    for (const struct buddy_extent *ext = buddy.extents; ext; ext = ext->next) {
        if (++extents > buddy.st.extents)
            return validate_fail("more extents listed than counted", ext->base, extents,
                                 buddy.st.extents);
        if (ext->next && ext->next->prev != ext)
            return validate_fail("extent list prev link broken", ext->next->base, 0, 0);
        if (validate_extent_locked(ext, &sum))
            return -1;
    }
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
        listed += buddy.st.free_blocks[k];
    if (extents != buddy.st.extents)
        return validate_fail("extent count", NULL, extents, buddy.st.extents);
    if (sum.nfree != listed) /* with the list checks: FREE_HEAD pages <-> list nodes, 1:1 */
        return validate_fail("FREE_HEAD pages != free list nodes", NULL, sum.nfree, listed);
    if (sum.free_bytes != buddy.st.free_bytes)
        return validate_fail("free_bytes", NULL, sum.free_bytes, buddy.st.free_bytes);
    if (sum.alloc_bytes + buddy.st.huge_bytes != buddy.st.alloc_bytes)
        return validate_fail("alloc_bytes", NULL, sum.alloc_bytes + buddy.st.huge_bytes,
                             buddy.st.alloc_bytes);
    for (uint16_t t = 0; t < BUDDY_TAG_TRACKED; t++)
        if (sum.tag_bytes[t] != buddy.tag_bytes[t])
            return validate_fail("live bytes of a tag", NULL, sum.tag_bytes[t], buddy.tag_bytes[t]);
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

/* ---------------------------------------------------------------- reset, fork */

void buddy_reset_for_tests(void)
{
    buddy_lock();
    while (buddy.extents) {
        struct buddy_extent *ext = buddy.extents;
        buddy.extents = ext->next;
        heap_extent_free(ext->heap);
        heap_meta_free(ext, sizeof *ext);
    }
    memset(buddy.free, 0, sizeof buddy.free);
    memset(&buddy.st, 0, sizeof buddy.st);
    memset(buddy.tag_bytes, 0, sizeof buddy.tag_bytes);
    buddy_unlock();
    heap_reset_for_tests(); /* also drops huge extents, which buddy does not list */
}

void buddy_lock_all(void)
{
    buddy_lock();
    heap_lock_all();
}

void buddy_unlock_all(void)
{
    heap_unlock_all();
    buddy_unlock();
}
