/* SPDX-License-Identifier: MIT */
/* heap/heap.h - the bottom layer of slabcache: 4 MiB-aligned extents of address space.
 *
 * The heap hands out *extents*: runs of memory whose base is aligned to HEAP_EXTENT_SIZE
 * (4 MiB) and whose size is a multiple of the page size.
 * Extents come from the program break (sbrk) by default, or from mmap when the break cannot
 * move (or when the caller asks for a dedicated mapping).  Every extent is registered in a
 * two-level radix map keyed by (address >> HEAP_EXTENT_SHIFT), so any address can be mapped
 * back to its extent descriptor in O(1) (heap_extent_lookup).
 *
 * The heap never assumes it owns the break: other code (glibc malloc, the program) may move it
 * between two of our calls.  See docs/design.md, "heap" (docs/design-heap.md).
 *
 * Thread safety: every function here is thread-safe (the HEAP lock, and inside it the META
 * lock of the metadata memory; they come last in the order of every lock, docs/design.md).
 * heap_extent_lookup() takes no lock.  Nothing in this layer calls malloc, and nothing here
 * knows the layers above: an extent's kind, tag and owner are whatever its owner sets.
 */
#ifndef SLABCACHE_HEAP_HEAP_H
#define SLABCACHE_HEAP_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- geometry */

#define HEAP_PAGE_SHIFT 12
#define HEAP_PAGE_SIZE ((size_t)1 << HEAP_PAGE_SHIFT)
#define HEAP_EXTENT_SHIFT 22 /* 4 MiB */
#define HEAP_EXTENT_SIZE ((size_t)1 << HEAP_EXTENT_SHIFT)
#define HEAP_ADDR_BITS 48 /* user-space addresses handled by the radix map */

/* ---------------------------------------------------------------- static storage */

/* For a zero-initialised static table of a page or more: it goes to the x86-64 large-data
 * section (.lbss), which the linker places after all of .bss, so the small variables that
 * every process writes at start-up share a few pages of libslabcache.so instead of lying
 * between the tables (each page touched costs a short-lived process a page fault).
 * //tests/malloc:startup_footprint_test checks the library's .bss. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HEAP_LARGE_BSS __attribute__((section(".lbss")))
#else
#define HEAP_LARGE_BSS
#endif

/* ---------------------------------------------------------------- OS seam */

/* Every OS call that obtains, returns or purges extent memory goes through this table (os.c).
 * Tests install a fake with heap_set_os_ops() that fails on the Nth call or moves the break
 * behind the heap's back.  Each member has the signature and error convention of the libc
 * function it is named after.  The calls that do not go through it, and why: the heap's own
 * bookkeeping memory (radix leaves, metadata chunks) is mapped with mmap(2) directly
 * (heap_internal.h), and the heap map of the layer above reads residency with mincore(2),
 * which changes nothing. */
struct heap_os_ops {
    void *(*sbrk)(intptr_t increment);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
    int (*munmap)(void *addr, size_t len);
    int (*madvise)(void *addr, size_t len, int advice);
    /* mremap with its optional fifth argument always passed; may be NULL (then
     * heap_extent_resize fails with ENOSYS and callers copy). */
    void *(*mremap)(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);
};

/* Install ops (NULL restores the real OS).  Only legal while the heap holds no extents
 * (at start-up, or after heap_reset_for_tests()). Returns 0, or -1 with errno EBUSY. */
int heap_set_os_ops(const struct heap_os_ops *ops);
/* The real OS operations (for fakes that want to forward). */
extern const struct heap_os_ops heap_os_real;

/* ---------------------------------------------------------------- options */

struct heap_options {
    size_t limit;         /* cap on bytes held from the OS (sbrk + mmap); 0 = none */
    bool use_sbrk;        /* grow with sbrk (default true); false = mmap only (whatever
                           * mmap_fallback says) */
    bool mmap_fallback;   /* when sbrk fails, map extents instead (default true) */
    size_t keep_free;     /* free extent bytes kept (purged) for reuse; default 16 MiB */
};
/* The options in force: on first use, from the option table (heap/options.h):
 * SLABCACHE_HEAP_LIMIT and SLABCACHE_HEAP_KEEP_FREE (sizes, k/m/g suffix), SLABCACHE_SBRK and
 * SLABCACHE_MMAP_FALLBACK (booleans).  Parsed without allocating; a malformed value is
 * reported on stderr and the default kept.  heap_set_options() replaces them (EINVAL: NULL). */
void heap_get_options(struct heap_options *out);
int heap_set_options(const struct heap_options *opts); /* 0, or -1/EINVAL */

/* ---------------------------------------------------------------- extents */

enum heap_source { HEAP_SRC_SBRK = 1, HEAP_SRC_MMAP = 2 };

/* How the owner uses an extent; set at allocation, read by lookups.
 *   SPLIT  the owner splits it into blocks and reads its per-extent record (`owner`) from any
 *          interior address; its granules are flagged in heap_split_granules, so the test
 *          "is this address in a live split extent" is one load (heap_is_split_granule).
 *   WHOLE  one block, handed out whole (the owner keeps its tag in `tag`). */
enum heap_kind { HEAP_KIND_NONE = 0, HEAP_KIND_SPLIT = 1, HEAP_KIND_WHOLE = 2 };

struct heap_extent {
    uintptr_t base;       /* HEAP_EXTENT_SIZE aligned */
    size_t size;          /* bytes usable from base, multiple of HEAP_PAGE_SIZE */
    uint8_t source;       /* enum heap_source */
    uint8_t kind;         /* enum heap_kind */
    uint16_t tag;         /* the owner's tag */
    uint32_t magic;       /* HEAP_EXTENT_MAGIC while in use */
    void *owner;          /* the owner's per-extent record */
    struct heap_extent *next, *prev; /* heap's lists; owned by the heap */
    size_t map_size;      /* MMAP: bytes mapped (>= size); SBRK: bytes of the break used */
    uint32_t lead;        /* bytes obtained before base (sbrk alignment padding); the OS
                           * region is [base - lead, base - lead + map_size) */
    bool dedicated;       /* own mapping, unmapped whole by heap_extent_free */
    uintptr_t origin;     /* dedicated: start of the mapping its region was cut from (the
                           * parked pieces of one mapping are merged again) */
    bool dirty;           /* may hold old data: a free extent whose purge failed, and an
                           * extent handed out from it.  Otherwise every byte of a newly
                           * handed-out extent reads as zero (fresh or purged memory). */
};
#define HEAP_EXTENT_MAGIC 0x48455854u /* "HEXT" */

/* Allocate an extent of at least `size` bytes (rounded up to the page size; for sbrk
 * extents to HEAP_EXTENT_SIZE), aligned to HEAP_EXTENT_SIZE.  Its memory reads as zero unless
 * the descriptor's `dirty` is set (see struct heap_extent).  `dedicated` = true asks for
 * its own mapping (huge blocks, returned to the OS whole by heap_extent_free).
 * Returns the descriptor, or NULL with errno ENOMEM (limit reached, OS refused) or EINVAL
 * (size 0 or overflowing).  Nothing already handed out is touched on failure. */
struct heap_extent *heap_extent_alloc(size_t size, enum heap_kind kind, uint16_t tag,
                                      void *owner, bool dedicated);
/* Give an extent back: munmap for dedicated ones; for sbrk ones, a negative sbrk when it is
 * the top of the break and the break is still where the heap left it, else madvise
 * (MADV_DONTNEED) and keep it for reuse (the break cannot have holes, so it is kept whatever
 * keep_free says).  Mapped (fallback) extents are purged and kept while the free list holds
 * at most keep_free bytes, else munmap'd.  Returns 0, or -1 with errno EINVAL when `ext` is
 * not a live extent (reported, nothing changed). */
int heap_extent_free(struct heap_extent *ext);
/* Free a live dedicated extent but keep it mapped, with its pages resident, for a later
 * dedicated request (heap_extent_alloc takes the smallest parked extent that is large enough,
 * parks its part past the 4 MiB boundary above the request on its own and hands it out with
 * `dirty` set).  Parked pieces of one mapping that touch are merged again (the newer stamp
 * wins), so a request as large as the whole finds it resident.  `stamp` is the
 * caller's clock (the buddy's decay epoch) for heap_parked_release.  The parked extents hold
 * at most `max_bytes`: the oldest are unmapped to make room, and an extent larger than that is
 * given back at once as heap_extent_free does.  Parked memory is no live extent (lookups do
 * not find it, a second free is refused as with an unmapped one); it counts toward the limit
 * and is unmapped before a request fails for want of memory.  0, or -1/EINVAL (reported) when
 * `ext` is not a live dedicated extent. */
int heap_extent_park(struct heap_extent *ext, uint64_t stamp, size_t max_bytes);
/* Unmap the parked extents stamped below `before` (UINT64_MAX: all).  Returns bytes. */
size_t heap_parked_release(uint64_t before);
/* O(1), lock-free: the live extent containing addr, or NULL.  Two-level radix map over
 * (addr >> HEAP_EXTENT_SHIFT): HEAP_RADIX_L1_BITS index a static root, the rest an mmap'd
 * leaf; an extent is entered in every granule it spans.  Entries are published with release
 * stores and read with acquire loads; a descriptor stays mapped (recycled, never unmapped),
 * so a racing lookup reads a stale but valid descriptor and the range check decides. */
#define HEAP_RADIX_BITS (HEAP_ADDR_BITS - HEAP_EXTENT_SHIFT)
#define HEAP_RADIX_L1_BITS 13
#define HEAP_RADIX_L2_BITS (HEAP_RADIX_BITS - HEAP_RADIX_L1_BITS)
extern struct heap_extent **heap_radix_root[(size_t)1 << HEAP_RADIX_L1_BITS];

static inline struct heap_extent *heap_extent_lookup(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    uintptr_t key = a >> HEAP_EXTENT_SHIFT;
    if (key >> HEAP_RADIX_BITS)
        return NULL;
    struct heap_extent **leaf =
        __atomic_load_n(&heap_radix_root[key >> HEAP_RADIX_L2_BITS], __ATOMIC_ACQUIRE);
    if (!leaf)
        return NULL;
    struct heap_extent *e =
        __atomic_load_n(&leaf[key & (((uintptr_t)1 << HEAP_RADIX_L2_BITS) - 1)], __ATOMIC_ACQUIRE);
    if (!e || a - __atomic_load_n(&e->base, __ATOMIC_RELAXED) >=
                  __atomic_load_n(&e->size, __ATOMIC_RELAXED))
        return NULL;
    return e;
}
/* Call fn (unless NULL) once for every live extent, in address order, without a lock (as
 * heap_extent_lookup: a racing change may or may not be seen); returns how many.  Callers
 * that need a stable picture hold the locks of the layer that owns the extents. */
size_t heap_for_each_extent(void (*fn)(struct heap_extent *e, void *arg), void *arg);
/* One bit per granule: set while the granule belongs to a live extent of kind
 * HEAP_KIND_SPLIT.  heap_is_split_granule() is the one-load ownership test of the free fast
 * paths above (an extent is fully mapped, so any address in it may be read). */
#define HEAP_SPLIT_GRANULE_WORDS (((size_t)1 << HEAP_RADIX_BITS) / 64)
extern uint64_t heap_split_granules[HEAP_SPLIT_GRANULE_WORDS];

static inline bool heap_is_split_granule(const void *addr)
{
    uintptr_t key = (uintptr_t)addr >> HEAP_EXTENT_SHIFT;
    if (key >> HEAP_RADIX_BITS)
        return false;
    return (__atomic_load_n(&heap_split_granules[key / 64], __ATOMIC_ACQUIRE) >> (key % 64)) & 1;
}

/* Resize a live dedicated extent (heap_extent_alloc(..., dedicated = true)) to `new_size`
 * bytes (rounded up to the page size) without copying: shrinking unmaps the tail; growing
 * extends the mapping in place when the address space after it is free, else moves its
 * pages to a new HEAP_EXTENT_SIZE-aligned address (mremap MREMAP_FIXED over a reservation).
 * The descriptor stays the same; its base may change.  Returns the (new) base, or NULL with
 * nothing changed and errno EINVAL (not a live dedicated extent, size 0 or overflowing),
 * ENOMEM (limit, OS refused) or ENOSYS (the ops table has no mremap). */
void *heap_extent_resize(struct heap_extent *ext, size_t new_size);
/* Give back the free extents the heap keeps: unmap the mapped ones, trim the break over
 * the sbrk ones at its top (others stay, purged: the break cannot have holes).  The heap
 * does this itself before it fails an allocation; reclaim paths call it too.  Returns the
 * bytes given back. */
size_t heap_release_free(void);

/* madvise(MADV_DONTNEED) a page-aligned range inside a live extent: the pages read back as
 * zero and stop counting in RSS.  0, or -1 with errno. */
int heap_purge(void *addr, size_t len);

/* ---------------------------------------------------------------- metadata memory */

/* Small internal allocations for metadata (the heap's descriptors, and the records of the
 * layers above) that must never come from malloc.  Backed by mmap'd chunks; zero-filled;
 * aligned to 64 bytes.  Thread-safe.  Freed blocks are recycled by size. */
void *heap_meta_alloc(size_t size);
void heap_meta_free(void *p, size_t size);

/* ---------------------------------------------------------------- stats, checks */

struct heap_stats {
    size_t sbrk_bytes;          /* bytes currently held from the break (incl. padding) */
    size_t mmap_bytes;          /* bytes currently mapped for extents */
    size_t meta_bytes;          /* bytes mapped for metadata */
    size_t returned_bytes;      /* cumulative: trimmed, unmapped or purged */
    size_t extents;             /* live extents */
    size_t free_extents;        /* purged extents kept for reuse */
    size_t foreign_moves;       /* times the break was found moved by someone else */
    size_t sbrk_failures;       /* sbrk calls that failed */
    size_t mmap_failures;       /* mmap calls that failed */
    size_t limit_failures;      /* requests refused by the limit */
    size_t trims;               /* negative sbrk calls made */
    size_t stranded_bytes;      /* break bytes won in a race with a foreign sbrk that could
                                 * neither hold an aligned extent nor be given back */
    /* Cumulative calls through the OS table (heap_set_os_ops), since start-up or the last
     * heap_reset_for_tests(): what the heap costs in system calls (sbrk(0) included). */
    size_t sbrk_calls, mmap_calls, munmap_calls, madvise_calls, mremap_calls;
    size_t resizes;             /* heap_extent_resize calls that succeeded */
    size_t resize_moves;        /* ... of which moved the extent */
    size_t parked_extents;      /* freed dedicated extents kept mapped (heap_extent_park) */
    size_t parked_reuses;       /* dedicated requests served from a parked extent */
    size_t parked_merges;       /* parked pieces of one mapping merged again */
};
void heap_get_stats(struct heap_stats *out);
void heap_print_stats(FILE *out);
/* Walk every structure and check every invariant; returns 0, or -1 after writing the
 * first broken invariant to stderr (with write(2)). */
int heap_validate(void);
/* Tests only: forget everything (extents are released to the OS where possible, through the
 * ops installed at the time), then restore the real OS ops and the default+env options. */
void heap_reset_for_tests(void);

/* ---------------------------------------------------------------- locking (for fork) */
void heap_lock_all(void);   /* atfork prepare */
void heap_unlock_all(void); /* atfork parent and child */

#ifdef __cplusplus
}
#endif
#endif
