/* SPDX-License-Identifier: MIT */
/* buddy/buddy.h - power-of-two page blocks over heap extents.
 *
 * Orders 0..BUDDY_MAX_ORDER over 4 KiB pages: an order-k block is 2^k pages, aligned to its
 * own size (extents are 4 MiB aligned, so every block is naturally aligned).  Split on alloc,
 * coalesce on free.  All metadata lives out of band (a page map and per-order free bitmaps per
 * extent); nothing is written into free memory and nothing read from it, so a write after free
 * or an overflow into a free block cannot steer an allocation.  Per page:
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
#define BUDDY_ORDER_RUN 0xfe  /* order of every page of a run (buddy_alloc_run), and the order
                                 buddy_lookup reports for one */

/* Owner tags: who allocated the block.  0 is never a valid tag of an allocated block. */
enum buddy_tag {
    BUDDY_TAG_NONE = 0,
    BUDDY_TAG_USER = 1,  /* plain buddy_alloc users, tests */
    BUDDY_TAG_SLAB = 2,  /* a slab: header at the block head (slab/) */
    BUDDY_TAG_LARGE = 3, /* kmalloc large object: whole block is the object (slab/kmalloc) */
    BUDDY_TAG_POOL = 4,  /* a pool's large block: whole block is the block, recorded in its
                            pool's table (pool/); not counted for the purge scale */
};

/* Out-of-band state of one page (4 bytes per page, 4 KiB per extent). */
enum buddy_page_state {
    BUDDY_PAGE_FREE_HEAD = 1,  /* first page of a free block of `order` */
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
/* buddy_alloc that also says whether the block is clean (*clean = true): none of its pages
 * is dirty (carved from purged or never-used memory), so the whole block reads as zero
 * (nothing is ever written into free memory).  calloc then skips zeroing.  *clean = false
 * means "may hold old data anywhere". */
void *buddy_alloc_clean(unsigned order, uint16_t tag, bool *clean);
/* buddy_alloc, and in `dirty` (BUDDY_PAGES_PER_EXTENT / 64 words; only the first
 * max(1, 2^order / 64) are written) one bit per page of the block, page i at bit i % 64 of
 * word i / 64: set when the page may hold old data, clear when it reads as zero.  calloc
 * then zeroes only the pages that need it. */
void *buddy_alloc_dirty(unsigned order, uint16_t tag, uint64_t *dirty);
/* Allocate a run of exactly `pages` pages (1..BUDDY_PAGES_PER_EXTENT) tagged `tag`, placed
 * by best fit over the free pages of every extent, with no alignment beyond a page
 * (tcmalloc's spans, within an extent): no page of it goes unused, and the holes it needs
 * are as small as the request.  Its pages carry order BUDDY_ORDER_RUN; buddy_lookup() finds
 * its head from any of them (buddy_block_of() does not: it answers only for buddy blocks).
 * `dirty` as for buddy_alloc_dirty, one bit per page of the run (may be NULL).  NULL with
 * errno EINVAL (0 or too many pages, tag 0) or ENOMEM. */
void *buddy_alloc_run(size_t pages, uint16_t tag, uint64_t *dirty);
/* buddy_alloc_run for a block expected to grow (realloc): placed at the start of the best-fit
 * stretch of `room` free pages if there is one (room >= pages, capped at an extent), so that
 * buddy_resize_run can grow it in place; otherwise as buddy_alloc_run. */
void *buddy_alloc_run_room(size_t pages, size_t room, uint16_t tag, uint64_t *dirty);
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
/* Resize the run whose head is `head` to `pages` pages without moving it: growing takes the
 * free pages right after it (all of them must be free), shrinking frees its last pages.  0,
 * or -1 with nothing changed and errno ENOMEM (the pages after it are not free) or EINVAL
 * (not the head of a run, 0 pages, or past the end of its extent).  buddy_resize refuses
 * runs, this refuses buddy blocks. */
int buddy_resize_run(void *head, size_t pages);

/* Where an address lives: the allocated block holding it. */
struct buddy_block_info {
    void *head;     /* first byte of the block */
    size_t size;    /* bytes in the block */
    unsigned order; /* 0..BUDDY_MAX_ORDER, BUDDY_ORDER_RUN or BUDDY_ORDER_HUGE */
    uint16_t tag;   /* owner tag */
};
/* O(1), lock-free for the caller's own live blocks: fills *out (unless NULL) for any address
 * inside an allocated block and returns true; false for free pages and foreign addresses. */
bool buddy_lookup(const void *ptr, struct buddy_block_info *out);

/* Whether ptr is the first byte of a block (a run or a buddy block) that was freed and whose
 * page has not been allocated since: a second free of a freed large block is then reported as
 * a double free rather than as a pointer never handed out.  Lock-free, for reports. */
bool buddy_freed_head(const void *ptr);

/* Inline fast path of buddy_lookup for addresses in buddy extents (not huge blocks): the
 * head and tag of the allocated block holding p.  Lock-free like buddy_lookup; false for
 * free pages, runs and foreign addresses.  Relies on the heap extent's `owner` pointing at
 * the extent's page map (struct buddy_page[BUDDY_PAGES_PER_EXTENT], first member of buddy.c's
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

/* ---------------------------------------------------------------- returning memory
 *
 * Nothing is written into free memory, so the layer knows out of band which pages may be
 * resident ("dirty": every page of an allocated block, until a purge of its free block) and
 * when each page was freed.  Free pages go back to the OS by *decay*: a pass, run from the
 * slow paths of this layer (buddy_alloc*, buddy_free, buddy_resize) and from buddy_tick(), at
 * most once per decay interval, purges (madvise, outside the lock) the dirty pages of free
 * blocks that were freed more than the decay time ago, but keeps as many of them as
 * allocations took from such old free pages in the interval before (a program that keeps
 * reusing its old free memory keeps that much; one that stopped keeps none).  A block freed
 * and allocated again within the decay time costs no system call and no page fault.
 * docs/design-buddy.md has the formulas and the measurements behind the default. */

/* Default decay time in milliseconds; SLABCACHE_DECAY_MS in the environment overrides it
 * (decimal; 0 = purge at the next slow path after the free).  A freed page is purged by
 * the first pass at least one and at most two decay times after its free. */
#define BUDDY_DECAY_MS_DEFAULT 300
#define BUDDY_DECAY_NEVER UINT32_MAX /* no decay: free pages stay until buddy_trim() */
/* Set the decay time (ms; 0 = at the next slow path); returns the previous one. */
uint32_t buddy_set_decay_ms(uint32_t ms);
/* Run a decay pass if one is due: cheap (one coarse clock read) when none is.  Upper layers
 * call it from their slow paths so that a program whose only activity is theirs still gives
 * freed pages back. */
void buddy_tick(void);
/* Tests only: the clock the decay reads, in milliseconds (NULL: CLOCK_MONOTONIC_COARSE). */
void buddy_set_clock_for_tests(uint64_t (*now_ms)(void));
/* The decay's clock in milliseconds (the one buddy_set_clock_for_tests replaces): upper
 * layers time their own idle rules by it, so one test clock drives them all. */
uint64_t buddy_now_ms(void);

/* Give back everything free now: whole free extents beyond `keep_extents` go back to the heap
 * (which trims the break or unmaps), and every dirty page of every other free block is
 * purged, whatever its age.  Returns the bytes given back (extents + purged pages); a second
 * call with nothing freed in between returns 0 and makes no system call. */
size_t buddy_trim(size_t keep_extents);

/* Reclaim before ENOMEM.  When the heap cannot grow (limit, RLIMIT_DATA, sbrk and mmap
 * failing), an allocation of this layer calls `fn` (without any lock of this layer held;
 * `want` = bytes the allocation needs), gives every wholly free extent back to the heap, and
 * retries once before failing with ENOMEM.  `fn` frees memory its layer caches (empty slabs,
 * magazines) and returns the bytes it freed; it must not allocate.  Returns the previous
 * callback (NULL: none). */
typedef size_t (*buddy_reclaim_fn)(size_t want);
buddy_reclaim_fn buddy_set_reclaim(buddy_reclaim_fn fn);

/* Resize a huge (dedicated) block whose base is `head` to at least `bytes` bytes, which must
 * exceed the largest order, without copying: in place, or by moving its pages to a new
 * address (mremap).  Returns the block's (possibly new) head, or NULL with nothing changed and
 * errno ENOMEM (the OS or the limit refused), ENOSYS (no mremap) or EINVAL (not the base of a
 * huge block, or bytes <= 4 MiB). */
void *buddy_resize_huge(void *head, size_t bytes);

/* Whole free extents kept as spares when freeing; a further one that becomes wholly free goes
 * back to the heap at once (so at most this many order-BUDDY_MAX_ORDER blocks are ever free).
 * Spares keep their address space for the next growth; their pages decay like any free
 * block's.  buddy_trim() (and so kmem_cache_shrink) gives the spares back.
 * SLABCACHE_SPARE_EXTENTS (heap/options.h), whose default is BUDDY_SPARE_EXTENTS_DEFAULT
 * (256 MiB of address space) and range starts at BUDDY_SPARE_EXTENTS_MIN (//tests/options
 * checks that the table agrees). */
#define BUDDY_SPARE_EXTENTS_MIN 1
#define BUDDY_SPARE_EXTENTS_DEFAULT 64
/* Set the spare limit (at least BUDDY_SPARE_EXTENTS_MIN); returns the previous one.  Spares
 * beyond a lowered limit are returned at once. */
size_t buddy_set_spare_extents(size_t n);

/* ---------------------------------------------------------------- stats, checks */
struct buddy_stats {
    size_t extents;                          /* buddy extents held */
    size_t huge_blocks, huge_bytes;          /* dedicated extents live */
    size_t free_blocks[BUDDY_MAX_ORDER + 1]; /* free blocks of each order (not counting
                                                blocks a purge has taken off for a moment) */
    size_t free_bytes;                       /* bytes in those blocks */
    size_t dirty_free_bytes;                 /* of free_bytes, pages that may be resident */
    size_t alloc_bytes;                      /* bytes in allocated blocks (incl. huge) */
    size_t allocs, frees;                    /* cumulative calls that succeeded */
    size_t run_allocs;                       /* of the allocs, runs (buddy_alloc_run) */
    size_t splits, merges;                   /* cumulative */
    size_t failures;                         /* allocations that returned NULL */
    size_t invalid_frees;                    /* buddy_free calls refused */
    size_t decay_passes;                     /* decay passes that purged something */
    size_t decay_reserve;                    /* dirty free bytes the last pass kept: old free
                                                pages reused in the epoch before it */
    size_t purge_calls;                      /* madvise calls made by decay and trim */
    size_t purged_bytes;                     /* bytes they purged (cumulative) */
    size_t reclaims;                         /* allocations that ran the reclaim path */
    size_t huge_resizes;                     /* buddy_resize_huge calls that succeeded */
};
void buddy_get_stats(struct buddy_stats *out);
/* Call fn(head, bytes, order, tag, arg) for every allocated block, in address order within
 * each extent, then for every huge block (order BUDDY_ORDER_HUGE), with the buddy lock held:
 * fn must not allocate, call into this layer, or take a lock that comes before the buddy's
 * (slab/types.h).  Returns how many blocks were visited. */
size_t buddy_for_each_block(void (*fn)(void *head, size_t bytes, unsigned order, uint16_t tag,
                                       void *arg),
                            void *arg);
/* /proc/buddyinfo style: "Node 0, zone   slabcache   n0 n1 ... n10\n" */
void buddy_print_buddyinfo(FILE *out);
int buddy_format_buddyinfo(char *buf, size_t len); /* same text into buf; snprintf rules */
void buddy_print_stats(FILE *out);
/* Walk every extent, page map and free list; check every invariant (free lists hold only
 * FREE_HEAD pages of their order, blocks aligned, no two free buddies of the same order left
 * unmerged, counts match); 0, or -1 after writing the first broken invariant to stderr. */
int buddy_validate(void);
/* Tests only: break one invariant buddy_validate() checks, in the first extent (the
 * allocator is unusable until buddy_reset_for_tests()).  0, or -1 when there is nothing to
 * break it on. */
enum buddy_corruption {
    BUDDY_CORRUPT_FREE_MAP = 1, /* a free-map bit without a free block */
    BUDDY_CORRUPT_SUMMARY,      /* a summary word */
    BUDDY_CORRUPT_ORDER_MASK,   /* the mask of orders with free blocks */
    BUDDY_CORRUPT_DIRTY_MAP,    /* a page's dirty bit */
    BUDDY_CORRUPT_FREE_PAGES,   /* a page's free bit */
    BUDDY_CORRUPT_ORDER_LIST,   /* the extent left off the list of one of its orders */
    BUDDY_CORRUPT_PAGE_MAP,     /* a free tail page's order */
    BUDDY_CORRUPT_BUSY,         /* a purge's busy bit */
    BUDDY_CORRUPT_COUNTER,      /* the dirty free bytes counter */
    BUDDY_CORRUPT_RUN,          /* a run page's link to its head */
};
int buddy_corrupt_for_tests(int what);
/* Tests only: free everything and forget all extents; also calls heap_reset_for_tests()
 * (which drops the huge extents, not listed by this layer) and zeroes every counter. */
void buddy_reset_for_tests(void);

void buddy_lock_all(void);   /* atfork prepare (takes the buddy lock, then the heap's) */
void buddy_unlock_all(void); /* atfork parent and child */

#ifdef __cplusplus
}
#endif
#endif
