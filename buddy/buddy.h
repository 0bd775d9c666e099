/* SPDX-License-Identifier: MIT */
/* buddy/buddy.h - power-of-two page blocks over heap extents.
 *
 * Orders 0..BUDDY_MAX_ORDER over 4 KiB pages: an order-k block is 2^k pages, aligned to its
 * own size (extents are 4 MiB aligned, so every block is naturally aligned).  Per-order free
 * lists, split on alloc, coalesce on free.  Per-page metadata lives out of band, in a page map
 * per extent (struct buddy_page), so:
 *   - buddy of block b (page index within its extent) of order k:  b ^ (1 << k)
 *   - head of the block holding page p, allocated with order k:    p & ~((1 << k) - 1)
 * Requests larger than the largest order are served as whole dedicated extents
 * (BUDDY_ORDER_HUGE) and returned whole to the OS when freed.
 *
 * Every allocated block carries a 16-bit owner tag (BUDDY_TAG_*); the slab layer finds a slab
 * from any interior pointer with buddy_lookup() (the slab header sits at the block head).
 *
 * Thread safety: one lock (BUDDY lock) around every structure; buddy_lookup() takes none.
 * Nothing here calls malloc.
 */
#ifndef SLABCACHE_BUDDY_BUDDY_H
#define SLABCACHE_BUDDY_BUDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "heap/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUDDY_PAGE_SHIFT HEAP_PAGE_SHIFT
#define BUDDY_PAGE_SIZE HEAP_PAGE_SIZE
#define BUDDY_MAX_ORDER (HEAP_EXTENT_SHIFT - HEAP_PAGE_SHIFT) /* 10: 4 MiB blocks */
#define BUDDY_PAGES_PER_EXTENT ((size_t)1 << BUDDY_MAX_ORDER)
#define BUDDY_ORDER_HUGE 0xff /* order reported for dedicated (larger than max) blocks */

/* Owner tags: who allocated the block.  0 is never a valid tag of an allocated block. */
enum buddy_tag {
    BUDDY_TAG_NONE = 0,
    BUDDY_TAG_USER = 1,  /* plain buddy_alloc users, tests */
    BUDDY_TAG_SLAB = 2,  /* a slab: header at the block head (slab/) */
    BUDDY_TAG_LARGE = 3, /* kmalloc large object: whole block is the object (slab/kmalloc) */
};
/* Tags below this have their live bytes counted (buddy_set_purge_scale). */
#define BUDDY_TAG_TRACKED 4

/* Out-of-band state of one page (4 bytes per page, 4 KiB per extent). */
enum buddy_page_state {
    BUDDY_PAGE_FREE_HEAD = 1,  /* first page of a free block of `order` (on a free list) */
    BUDDY_PAGE_FREE_TAIL = 2,  /* other page of a free block */
    BUDDY_PAGE_ALLOC_HEAD = 3, /* first page of an allocated block of `order` */
    BUDDY_PAGE_ALLOC_TAIL = 4, /* other page of an allocated block of `order` */
};
struct buddy_page {
    uint8_t order;  /* order of the block this page belongs to */
    uint8_t state;  /* enum buddy_page_state */
    uint16_t tag;   /* enum buddy_tag (allocated blocks), 0 when free */
};

/* Allocate a block of 2^order pages (order <= BUDDY_MAX_ORDER) tagged `tag`.
 * NULL with errno EINVAL (bad order or tag 0) or ENOMEM. */
void *buddy_alloc(unsigned order, uint16_t tag);
/* buddy_alloc that also says whether the block is clean (*clean = true): carved from a free
 * block that was purged, or from memory never handed out, so that every page but its first
 * reads as zero (the first page holds the free-list node while the block is free, and is
 * never purged).  calloc then zeroes one page instead of the block.  *clean = false means
 * "may hold old data anywhere". */
void *buddy_alloc_clean(unsigned order, uint16_t tag, bool *clean);
/* Allocate at least `bytes`: the smallest order that fits, or a dedicated extent when bytes
 * exceed the largest block.  NULL with errno EINVAL (0 bytes, overflow) or ENOMEM. */
void *buddy_alloc_bytes(size_t bytes, uint16_t tag);
/* The smallest order whose block holds `bytes`, or -1 for 0 and for bytes > 4 MiB. */
int buddy_order_for_size(size_t bytes);
/* Free a block by its head address (the order comes from the page map).  A pointer that is
 * not the head of an allocated block (interior, free, foreign) is reported on stderr
 * ("slabcache: buddy: invalid free of 0x...") and changes nothing: returns -1, errno EINVAL.
 * NULL is refused the same way.  Returns 0 on success. */
int buddy_free(void *ptr);

/* Resize the allocated block whose head is `head` to 2^new_order pages without moving it
 * (realloc of large blocks).  Growing takes the free blocks above it: at each order k from
 * the block's own up to new_order - 1 the block must be the lower half of its parent and its
 * buddy a whole free block of order k (free blocks are always fully coalesced, so that is
 * exactly "the next 2^k pages are free").  Shrinking frees the upper halves.  The tag and the
 * contents of the kept pages are unchanged.  0 on success; -1 with nothing changed and errno
 * ENOMEM (the neighbours are not free) or EINVAL (not the head of an allocated buddy block,
 * a huge block, or new_order > BUDDY_MAX_ORDER). */
int buddy_resize(void *head, unsigned new_order);

/* Where an address lives: the allocated block holding it. */
struct buddy_block_info {
    void *head;     /* first byte of the block */
    size_t size;    /* bytes in the block */
    unsigned order; /* 0..BUDDY_MAX_ORDER, or BUDDY_ORDER_HUGE */
    uint16_t tag;   /* owner tag */
};
/* O(1), lock-free for the caller's own live blocks: fills *out (unless NULL) for any address
 * inside an allocated block and returns true; false for free pages and foreign addresses. */
bool buddy_lookup(const void *ptr, struct buddy_block_info *out);

/* Inline fast path of buddy_lookup for addresses in buddy extents (not huge blocks): the
 * head and tag of the allocated block holding p.  Lock-free like buddy_lookup; false for
 * free pages and foreign addresses.  Relies on the heap extent's `owner` pointing at the
 * extent's page map (struct buddy_page[BUDDY_PAGES_PER_EXTENT], first member of buddy.c's
 * per-extent record). */
static inline bool buddy_block_of(const void *p, void **head, uint16_t *tag)
{
    if (!heap_is_split_granule(p))
        return false;
    struct heap_extent *he = heap_extent_lookup(p);
    if (!he)
        return false;
    const struct buddy_page *pages = (const struct buddy_page *)__atomic_load_n(
        &he->owner, __ATOMIC_RELAXED);
    uintptr_t base = __atomic_load_n(&he->base, __ATOMIC_RELAXED);
    if (!pages)
        return false;
    struct buddy_page pg;
    __atomic_load(&pages[((uintptr_t)p - base) >> BUDDY_PAGE_SHIFT], &pg, __ATOMIC_RELAXED);
    if ((pg.state != BUDDY_PAGE_ALLOC_HEAD && pg.state != BUDDY_PAGE_ALLOC_TAIL) ||
        pg.order > BUDDY_MAX_ORDER)
        return false;
    *head = (void *)((uintptr_t)p & ~((BUDDY_PAGE_SIZE << pg.order) - 1));
    *tag = pg.tag;
    return true;
}

/* Return free memory: whole free extents beyond `keep_extents` go back to the heap (which
 * trims or purges them); free blocks of order >= BUDDY_PURGE_MIN_ORDER inside extents are
 * madvise'd (all but their first page, which holds the free-list links).  Returns bytes
 * given back. */
#define BUDDY_PURGE_MIN_ORDER 4
size_t buddy_trim(size_t keep_extents);
/* Purge budget: when frees of blocks tagged `tag` leave more than `bytes` of free memory
 * that may still be resident (buddy_stats.unpurged_bytes), every free block of order >=
 * BUDDY_PURGE_MIN_ORDER not purged yet is purged as buddy_trim does (spare extents stay).
 * Other tags' frees do not count (released slabs stay resident for the next ones).  Freed
 * memory stays resident, for the next allocation to reuse without page faults, up to the
 * budget; past it, it goes back to the OS in one sweep (glibc gives each freed mmap chunk
 * back at once, mimalloc and jemalloc purge on a timer).  Default SIZE_MAX (never); returns
 * the previous budget. */
size_t buddy_set_purge_budget(size_t bytes, uint16_t tag);
/* Scale the purge budget with the budget tag's live memory: the budget in force is the live
 * bytes of blocks with that tag >> shift, but at least min_bytes and at most the budget set
 * by buddy_set_purge_budget.  A program with little memory of that tag then gives freed
 * blocks back sooner (its peak RSS stays near glibc's, which unmaps each freed mmap chunk),
 * while one with much of it sweeps only after freeing a share of it (the page faults of
 * reusing purged memory are paid once per share).  Default min_bytes SIZE_MAX (the budget
 * as set); returns the previous min_bytes. */
size_t buddy_set_purge_scale(size_t min_bytes, unsigned shift);
/* Whole free extents kept as spares when freeing; a further one that becomes wholly free goes
 * back to the heap at once (so at most this many order-BUDDY_MAX_ORDER blocks are ever free).
 * Retaining freed memory, as jemalloc and mimalloc do, keeps a program that frees and then
 * re-allocates a large working set from paying the page faults twice; buddy_trim() (and so
 * kmem_cache_shrink) gives the spares back.  Default BUDDY_SPARE_EXTENTS_DEFAULT (256 MiB),
 * or SLABCACHE_SPARE_EXTENTS from the environment; at least BUDDY_SPARE_EXTENTS_MIN. */
#define BUDDY_SPARE_EXTENTS_MIN 1
#define BUDDY_SPARE_EXTENTS_DEFAULT 64
/* Set the spare limit (at least BUDDY_SPARE_EXTENTS_MIN); returns the previous one.  Spares
 * beyond a lowered limit are returned at once. */
size_t buddy_set_spare_extents(size_t n);

/* ---------------------------------------------------------------- stats, checks */
struct buddy_stats {
    size_t extents;                          /* buddy extents held */
    size_t huge_blocks, huge_bytes;          /* dedicated extents live */
    size_t free_blocks[BUDDY_MAX_ORDER + 1]; /* blocks on each free list */
    size_t free_bytes;                       /* bytes on all free lists */
    size_t unpurged_bytes;                   /* estimate of free bytes still resident:
                                                blocks of the purge budget's tag freed
                                                since the last sweep, minus such memory
                                                allocated again */
    size_t budget_purges;                    /* purges started by buddy_set_purge_budget's
                                                budget (cumulative) */
    size_t alloc_bytes;                      /* bytes in allocated blocks (incl. huge) */
    size_t allocs, frees;                    /* cumulative calls that succeeded */
    size_t splits, merges;                   /* cumulative */
    size_t failures;                         /* allocations that returned NULL */
    size_t invalid_frees;                    /* buddy_free calls refused */
};
void buddy_get_stats(struct buddy_stats *out);
/* /proc/buddyinfo style: "Node 0, zone   slabcache   n0 n1 ... n10\n" */
void buddy_print_buddyinfo(FILE *out);
int buddy_format_buddyinfo(char *buf, size_t len); /* same text into buf; snprintf rules */
void buddy_print_stats(FILE *out);
/* Walk every extent, page map and free list; check every invariant (free lists hold only
 * FREE_HEAD pages of their order, blocks aligned, no two free buddies of the same order left
 * unmerged, counts match); 0, or -1 after writing the first broken invariant to stderr. */
int buddy_validate(void);
/* Tests only: free everything and forget all extents; also calls heap_reset_for_tests()
 * (which drops the huge extents, not listed by this layer) and zeroes every counter. */
void buddy_reset_for_tests(void);

void buddy_lock_all(void);   /* atfork prepare (takes the buddy lock, then the heap's) */
void buddy_unlock_all(void); /* atfork parent and child */

#ifdef __cplusplus
}
#endif
#endif
