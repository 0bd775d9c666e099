/* SPDX-License-Identifier: MIT */
/* slab/kmalloc.c - general-purpose allocation over slabcache size classes.
 *
 * SIZE CLASSES (KMALLOC_NR_CLASSES = 83 kmem_caches named "kmalloc-<size>")
 *   8 .. 128 in 8-byte steps (16 classes), then 8 classes per power of two: (2^k, 2^(k+1)]
 *   in steps of 2^(k-3), up to KMALLOC_MAX_CACHE_SIZE (32 KiB).  Above 128 bytes a request
 *   of s bytes gets a class c with c - s < c / 8, so internal waste stays under 12.5%.
 *   One exception: (4096, 4608] is split in 128-byte steps (4224, 4352, 4480, 4608), for
 *   blocks of a page plus a header.  SQLite's page cache allocates 4368 bytes per 4 KiB
 *   page (4096 + its page header + its 8-byte size prefix): kmalloc-4608 holds 7 per 32 KiB
 *   slab, 4681 bytes each (+7%, ~290 KiB of its 4 MiB peak); kmalloc-4480 holds 29 per
 *   128 KiB slab, 4520 bytes each (+3.5%).  Only this octave: finer classes elsewhere spread
 *   a program's short-lived blocks over more caches, each keeping its own pages (SQLite's
 *   9..18 KiB statement buffers cost ~16 KiB per class they touch).  The split keeps every
 *   class a multiple of its step, so power-of-two multiples still get classes with lowbit
 *   >= their alignment (kmalloc_aligned, below).
 *   Every class is created with the alignment lowbit(c) (capped at a page): a class whose
 *   size is a multiple of 2^j hands out 2^j-aligned objects, so 16-multiples are 16-aligned
 *   (malloc rounds requests to 16 and uses only those) and power-of-two classes are naturally
 *   aligned (kmalloc_aligned uses class(roundup(size, align)), which always has lowbit >= align).
 *   Lookup is O(1): a byte table indexed by (size + 7) / 8 up to 1 KiB, then clz arithmetic.
 *
 * LARGE OBJECTS
 *   32 KiB < size <= 4 MiB: a buddy block of the smallest order that holds it, tagged
 *   BUDDY_TAG_LARGE (the whole block is the object).  Larger: a dedicated extent
 *   (buddy_alloc_bytes), unmapped when freed.  Alignments above a page come from buddy blocks
 *   (naturally aligned up to 4 MiB); above 4 MiB from an over-sized dedicated extent whose
 *   first bytes record the offset of the aligned object (struct kmalloc_huge_hdr).
 *   Freed buddy blocks go back to the OS by the buddy layer's decay (buddy.h): a block freed
 *   and allocated again soon costs no system call and no page fault; one left free is purged
 *   a decay time or two later, from a later slow path.
 *
 * FREE
 *   buddy_lookup(p) reads the page map: tag SLAB -> slab_block_cache(head) -> kmem_cache_free
 *   (which validates and reports double or invalid frees); tag LARGE -> the block must start
 *   at p (or be an aligned huge block with a matching header) -> buddy_free.  Anything else
 *   is reported ("slabcache: free: invalid free of 0x... (...)") and slab_misuse() decides.
 *
 * REALLOC
 *   In place while the new size fits the usable size and is more than half of it (small
 *   blocks always stay).  A large buddy block also stays when it can grow into the free
 *   buddies above it, or shrink by freeing its upper halves (buddy_resize; the freed tail
 *   decays like any freed block).  When a block must move to grow, it asks for at least
 *   1.25 x the old usable size (FastMM's rule), so a run of small growths moves O(log n)
 *   times; buddy blocks are powers of two, which leaves the same headroom.  Dedicated extents
 *   (above 4 MiB) are resized with mremap (buddy_resize_huge): in place, or their pages move
 *   to a new address; nothing is copied.
 *
 * INITIALISATION
 *   The first allocation (or the constructor in malloc.c) builds the class tables; each class's
 *   cache is created lazily by the first allocation of that class (kmalloc_class_cache), so a
 *   short-lived process pays only for the classes it uses (git's workload spawns ~4000
 *   processes: eager creation of all 80 cost ~20 page faults each).  A NULL slot in the class
 *   table sends the fast path to kmalloc_slow(), which creates the cache, so the fast path
 *   needs no "initialised?" test.  Allocations made *during* initialisation by the
 *   initialising thread (pthread_atfork may call malloc) are served as whole buddy pages,
 *   which kfree handles like any large block; other threads wait for the first to finish.
 */
#include "slab/kmalloc.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buddy/buddy.h"
#include "heap/heap.h"
#include "slab/kmalloc_internal.h"
#include "slab/slab_internal.h"

#define KMALLOC_SMALL_STEP_MAX 128u     /* 8-byte steps up to here */
#define KMALLOC_SUBCLASS_SHIFT 3        /* 2^3 = 8 classes per power of two */
#define KMALLOC_SMALL_CLASSES 16u
/* The octave (4 KiB, 8 KiB] splits its first eighth in four (see the top). */
#define KMALLOC_FINE_SHIFT 12u
#define KMALLOC_FINE_CLASSES 4u        /* classes in (4096, 4608] */
#define KMALLOC_FINE_BASE (KMALLOC_SMALL_CLASSES + (KMALLOC_FINE_SHIFT - 7u) * 8u)
_Static_assert(KMALLOC_FINE_BASE + KMALLOC_FINE_CLASSES + 7u + 2u * 8u == KMALLOC_NR_CLASSES,
               "KMALLOC_NR_CLASSES counts the fine classes");
#define KMALLOC_MAX_EMPTY_SLABS 1
#define KMALLOC_PURGE_MIN_BYTES ((size_t)128 << 10) /* glibc's default mmap threshold */
#define KMALLOC_HUGE_MAGIC 0x4b4d484755474531ull /* "KMHUGE1" */

static const size_t kmalloc_largest_order_bytes = BUDDY_PAGE_SIZE << BUDDY_MAX_ORDER;

struct kmem_cache *kmalloc_caches[KMALLOC_NR_CLASSES];
static uint32_t class_size[KMALLOC_NR_CLASSES];
_Static_assert(KMALLOC_NR_CLASSES <= SLAB_FIXED_IDS, "class i's cache takes magazine id i");
static uint8_t size_index[KMALLOC_TABLE_MAX / 8 + 1]; /* (size + 7) / 8 -> class */

/* class_index_compute(s) for a 16-byte multiple 16 <= s <= KMALLOC_TABLE_MAX, as a constant
 * expression (s - 1 lies in (2^k, 2^(k+1)] for k = 7, 8 or 9 above 128); kmalloc_test checks
 * every entry against kmalloc_class_index. */
#define KMI_K(s) ((s) - 1 < 256 ? 7 : (s) - 1 < 512 ? 8 : 9)
#define KMI_CLASS(s)                                                                        \
    ((s) <= KMALLOC_SMALL_STEP_MAX                                                          \
         ? ((s) + 7) / 8 - 1                                                                \
         : KMALLOC_SMALL_CLASSES + (KMI_K(s) - 7) * 8 +                                     \
               (((s) - 1) >> (KMI_K(s) - KMALLOC_SUBCLASS_SHIFT)) - 8)
#define KMI(q) KMI_CLASS((q) ? 16 * (q) : 16)
#define KMI4(q) KMI(q), KMI(q + 1), KMI(q + 2), KMI(q + 3)
#define KMI16(q) KMI4(q), KMI4(q + 4), KMI4(q + 8), KMI4(q + 12)
_Static_assert(KMALLOC_TABLE_MAX / 16 + 1 == 65, "kmalloc_malloc_index lists 65 entries");
const uint8_t kmalloc_malloc_index[KMALLOC_TABLE_MAX / 16 + 1] = {KMI16(0), KMI16(16), KMI16(32),
                                                                  KMI16(48), KMI(64)};

/* Header at the base of a huge block whose object was moved up to honour an alignment
 * above the extent alignment.  Only written when the object does not start at the base. */
struct kmalloc_huge_hdr {
    uint64_t magic;  /* KMALLOC_HUGE_MAGIC ^ base address */
    uint64_t offset; /* object - base */
};

/* 0 = not started, 1 = running, 2 = done. */
static int kmalloc_state;
static __thread int tls_in_init __attribute__((tls_model("initial-exec")));

/* ---------------------------------------------------------------- classes */

static inline unsigned log2_floor(size_t x)
{
    return (unsigned)(sizeof(unsigned long long) * 8 - 1) - (unsigned)__builtin_clzll(x);
}

/* Class index by arithmetic, for 1 <= size <= KMALLOC_MAX_CACHE_SIZE. */
static unsigned class_index_compute(size_t size)
{
    if (size <= KMALLOC_SMALL_STEP_MAX)
        return (unsigned)((size + 7) / 8) - 1;
    unsigned k = log2_floor(size - 1); /* size in (2^k, 2^(k+1)] */
    unsigned step_shift = k - KMALLOC_SUBCLASS_SHIFT;
    unsigned sub = (unsigned)((size - 1) >> step_shift) - 8; /* 0..7 */
    if (k < KMALLOC_FINE_SHIFT)
        return KMALLOC_SMALL_CLASSES + (k - 7) * 8 + sub;
    if (k > KMALLOC_FINE_SHIFT)
        return KMALLOC_SMALL_CLASSES + (k - 7) * 8 + sub + KMALLOC_FINE_CLASSES - 1;
    /* (4096, 4608] in 128-byte steps, then the other seven eighths */
    if (sub == 0)
        return KMALLOC_FINE_BASE + (unsigned)((size - 1 - ((size_t)1 << k)) >> (step_shift - 2));
    return KMALLOC_FINE_BASE + KMALLOC_FINE_CLASSES - 1 + sub;
}

/* Inlined into kmalloc's fast path: the byte table, the arithmetic out of line. */
static inline __attribute__((always_inline)) unsigned class_index_of(size_t size)
{
    if (size == 0)
        size = 1;
    if (SLAB_LIKELY(size <= KMALLOC_TABLE_MAX))
        return size_index[(size + 7) / 8];
    return class_index_compute(size);
}

unsigned kmalloc_class_index(size_t size)
{
    return class_index_of(size);
}

size_t kmalloc_class_size(unsigned index)
{
    return index < KMALLOC_NR_CLASSES ? class_size[index] : 0;
}

static size_t lowbit(size_t x)
{
    return x & (~x + 1);
}

static void class_tables_init(void)
{
    unsigned i = 0;
    for (; i < KMALLOC_SMALL_CLASSES; i++)
        class_size[i] = (i + 1) * 8;
    for (unsigned k = 7; (size_t)1 << k < KMALLOC_MAX_CACHE_SIZE; k++) {
        size_t octave = (size_t)1 << k;
        if (k == KMALLOC_FINE_SHIFT)
            for (unsigned f = 1; f < KMALLOC_FINE_CLASSES; f++)
                class_size[i++] = (uint32_t)(octave + ((size_t)f << (k - 5)));
        for (unsigned e = 1; e <= 8; e++)
            class_size[i++] = (uint32_t)(octave + ((size_t)e << (k - 3)));
    }
    for (size_t q = 0; q <= KMALLOC_TABLE_MAX / 8; q++)
        size_index[q] = (uint8_t)class_index_compute(q ? q * 8 : 1);
}

/* ---------------------------------------------------------------- init */

/* The cache of class i, created on first use.  Creation is lock-free: threads racing to
 * create it get the same cache (slab_cache_create_fixed_id), or, for magazine-less (debug)
 * caches, the loser of the publish destroys its own (it never held an object).
 * NULL when the cache cannot be made: that class is then served by the large path. */
struct kmem_cache *kmalloc_class_cache(unsigned i)
{
    if (i >= KMALLOC_NR_CLASSES)
        return NULL;
    struct kmem_cache *c = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
    if (SLAB_LIKELY(c != NULL) || !kmalloc_ready())
        return c;
    char name[KMEM_CACHE_NAME_MAX];
    slab_format(name, sizeof name, "kmalloc-%u", class_size[i]);
    size_t align = lowbit(class_size[i]);
    if (align > BUDDY_PAGE_SIZE)
        align = BUDDY_PAGE_SIZE;
    /* No constructor, magazines on: the fast path.  One empty slab kept per class (the
     * magazines and the depot already cache freed objects; more empty slabs only hold RSS). */
    struct kmem_cache_args args = {0};
    args.align = align;
    args.max_empty_slabs = KMALLOC_MAX_EMPTY_SLABS;
    c = slab_cache_create_fixed_id(name, class_size[i], &args, 0, i);
    if (!c)
        return NULL;
    /* Racing creators get the same cache (fixed id i), so the loser of the publish has
     * nothing to destroy; only magazine-less (debug) caches, which hold no id, can differ. */
    struct kmem_cache *won = NULL;
    if (!__atomic_compare_exchange_n(&kmalloc_caches[i], &won, c, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        if (won != c)
            kmem_cache_destroy(c);
        return won;
    }
    return c;
}

void kmalloc_init(void)
{
    if (SLAB_LIKELY(__atomic_load_n(&kmalloc_state, __ATOMIC_ACQUIRE) == 2))
        return;
    int expected = 0;
    if (__atomic_compare_exchange_n(&kmalloc_state, &expected, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        tls_in_init = 1;
        class_tables_init();
        slab_init_once(); /* pthread_atfork inside may re-enter malloc: see kmalloc_slow */
        tls_in_init = 0;
        __atomic_store_n(&kmalloc_state, 2, __ATOMIC_RELEASE);
        return;
    }
    if (tls_in_init)
        return; /* re-entered from our own initialisation */
    while (__atomic_load_n(&kmalloc_state, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
}

bool kmalloc_ready(void)
{
    return __atomic_load_n(&kmalloc_state, __ATOMIC_ACQUIRE) == 2;
}

/* ---------------------------------------------------------------- large blocks */

static inline bool is_pow2(size_t x)
{
    return x && !(x & (x - 1));
}

/* Zero the first size bytes of a buddy block of block_bytes that was just allocated.  A clean
 * block (buddy_alloc_clean: none of its pages resident since it was last purged, or never
 * used) reads as zero already, as glibc's calloc skips memory fresh from the top or from
 * mmap.  A dirty block from KMALLOC_PURGE_MIN_BYTES up (glibc's mmap threshold) is zeroed by
 * purging it (MADV_DONTNEED: its pages read back as zero and are faulted in only when the
 * program touches them), which is what glibc's calloc gets from a fresh mmap.  memset made
 * every page resident: git calls calloc(512 KiB) for hash tables it fills sparsely, and each
 * one cost 512 KiB of peak RSS (git rev-parse: 1 MiB over glibc).  Smaller requests, and a
 * purge that fails, use memset on the requested bytes (the rest stays untouched). */
static void large_zero(void *p, size_t size, size_t block_bytes, bool clean)
{
    if (clean ||
        (block_bytes >= KMALLOC_PURGE_MIN_BYTES && size > BUDDY_PAGE_SIZE &&
         heap_purge(p, block_bytes) == 0))
        return;
    memset(p, 0, size);
}

/* A block of at least size bytes aligned to align (a power of two, may be 0), from the buddy
 * layer.  Zeroed when flags has KM_ZERO. */
static void *large_alloc(size_t size, size_t align, unsigned int flags)
{
    if (size == 0)
        size = 1;
    void *p;
    if (size <= kmalloc_largest_order_bytes && align <= kmalloc_largest_order_bytes) {
        int order = buddy_order_for_size(size);
        int aorder = align > BUDDY_PAGE_SIZE ? buddy_order_for_size(align) : 0;
        if (aorder > order)
            order = aorder;
        bool clean;
        p = buddy_alloc_clean((unsigned)order, BUDDY_TAG_LARGE, &clean);
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
        if (flags & KM_ZERO)
            large_zero(p, size, BUDDY_PAGE_SIZE << order, clean);
        return p;
    }
    /* Dedicated extents: fresh mappings (heap.h), so already zero; 4 MiB aligned. */
    if (align <= HEAP_EXTENT_SIZE) {
        p = buddy_alloc_bytes(size, BUDDY_TAG_LARGE);
        if (!p)
            errno = ENOMEM;
        return p;
    }
    size_t total;
    if (__builtin_add_overflow(size, align, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = buddy_alloc_bytes(total, BUDDY_TAG_LARGE);
    if (!base) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t obj = ((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1);
    if (obj != (uintptr_t)base) {
        struct kmalloc_huge_hdr *h = (struct kmalloc_huge_hdr *)base;
        h->magic = KMALLOC_HUGE_MAGIC ^ (uint64_t)(uintptr_t)base;
        h->offset = obj - (uintptr_t)base;
    }
    return (void *)obj;
}

/* Freed large blocks go back to the OS through the buddy layer's decay (buddy.h): a purge
 * per freed large block cost GCC 11,000 madvise calls and their page faults compiling one
 * file (it allocates and frees 128-512 KiB arrays per function); glibc's sliding mmap
 * threshold (never purge a size freed once) was measured and rejected: SQLite's sorter frees
 * 128 KiB..2 MiB buffers that it regrows, and keeping them all resident took its peak RSS
 * from 9.1 to 11.3 MiB.  docs/design-buddy.md has the decay's figures.  (large_free: the
 * LARGE branch of kmalloc_free_slow.) */

/* Offset of p in the LARGE block described by info, or SIZE_MAX when p is not a valid
 * object start (interior pointer). */
static size_t large_offset(const void *p, const struct buddy_block_info *info)
{
    if (info->head == p)
        return 0;
    if (info->order != BUDDY_ORDER_HUGE)
        return SIZE_MAX;
    const struct kmalloc_huge_hdr *h = info->head;
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)info->head);
    if (h->magic == (KMALLOC_HUGE_MAGIC ^ (uint64_t)(uintptr_t)info->head) && h->offset == off)
        return off;
    return SIZE_MAX;
}

/* realloc of the large block at p to size bytes without a copy: a buddy block grows into
 * free buddies above it or frees its upper halves (buddy_resize; a freed tail decays like any
 * freed block); a dedicated extent that stays past the largest order is remapped
 * (buddy_resize_huge: in place, or its pages move).  The block's (new) address, or NULL (p
 * unchanged) when p is not a whole block or it cannot be resized in place. */
static void *large_resize_in_place(void *p, size_t size)
{
    struct buddy_block_info info;
    if (!buddy_lookup(p, &info) || info.tag != BUDDY_TAG_LARGE || info.head != p)
        return NULL;
    if (info.order == BUDDY_ORDER_HUGE)
        return size > kmalloc_largest_order_bytes ? buddy_resize_huge(p, size) : NULL;
    int order = buddy_order_for_size(size);
    if (order < 0)
        return NULL; /* past the largest order: a dedicated extent */
    return buddy_resize(p, (unsigned)order) == 0 ? p : NULL;
}

/* After an in-place realloc: krealloc with KM_ZERO zeroes the bytes it added. */
static void *realloc_zero_tail(void *p, size_t old, size_t size, unsigned int flags)
{
    if ((flags & KM_ZERO) && size > old)
        memset((char *)p + old, 0, size - old);
    return p;
}

/* ---------------------------------------------------------------- allocation */

void *kmalloc_slow(size_t size, size_t align, unsigned int flags, const void *caller)
{
    kmalloc_init();
    if (size <= KMALLOC_MAX_CACHE_SIZE && align <= BUDDY_PAGE_SIZE) {
        size_t s = size ? size : 1;
        if (align > 1)
            s = (s + align - 1) & ~(align - 1);
        if (s <= KMALLOC_MAX_CACHE_SIZE) {
            struct kmem_cache *c = kmalloc_class_cache(kmalloc_class_index(s));
            if (c)
                return slab_cache_alloc_from(c, flags, caller);
        }
    }
    /* Large, or a class without a cache (during initialisation, or creation failed). */
    return large_alloc(size, align, flags);
}

/* Every entry point passes its own return address down: debug caches (SLAB_STORE_USER)
 * record the program's call site, not one inside this file. */
static inline __attribute__((always_inline)) void *kmalloc_from(size_t size, unsigned int flags,
                                                                const void *caller)
{
    if (SLAB_LIKELY(size <= KMALLOC_MAX_CACHE_SIZE)) {
        unsigned i = class_index_of(size);
        void *obj; /* class i's magazines are entry i (slab_cache_create_fixed_id) */
        if (SLAB_LIKELY(!(flags & KM_ZERO)) && SLAB_LIKELY(slab_magazine_pop_fixed(i, &obj)))
            return obj;
        struct kmem_cache *c = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
        if (SLAB_LIKELY(c != NULL))
            return slab_cache_alloc_from(c, flags, caller);
    }
    return kmalloc_slow(size, 0, flags, caller);
}

void *kmalloc(size_t size, unsigned int flags)
{
    return kmalloc_from(size, flags, SLAB_CALLER);
}

void *kzalloc(size_t size, unsigned int flags)
{
    return kmalloc_from(size, flags | KM_ZERO, SLAB_CALLER);
}

void *kcalloc(size_t n, size_t size, unsigned int flags)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return kmalloc_from(bytes, flags | KM_ZERO, SLAB_CALLER);
}

void *kmalloc_aligned(size_t align, size_t size, unsigned int flags)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 8)
        return kmalloc_from(size, flags, SLAB_CALLER);
    return kmalloc_slow(size, align, flags, SLAB_CALLER);
}

/* ---------------------------------------------------------------- free and size */

static void report_bad_pointer(const char *op, const void *p)
{
    struct heap_extent *e = heap_extent_lookup(p);
    if (!e)
        slab_report("%s: invalid free of %p (pointer not from slabcache)", op, p);
    else
        slab_report("%s: invalid free of %p (not the start of an allocated block: double "
                    "free or interior pointer)",
                    op, p);
    slab_misuse();
}

/* kmalloc_free_op without the common case: large blocks, and pointers to report. */
__attribute__((noinline)) static void kmalloc_free_slow(void *p, const char *op,
                                                        const void *caller)
{
    struct buddy_block_info info;
    if (SLAB_LIKELY(buddy_lookup(p, &info))) {
        if (SLAB_LIKELY(info.tag == BUDDY_TAG_SLAB)) {
            struct kmem_cache *c = slab_block_cache(info.head);
            if (SLAB_LIKELY(c != NULL)) {
                slab_cache_free_from(c, p, caller); /* validates: double, interior, wrong cache */
                return;
            }
        } else if (info.tag == BUDDY_TAG_LARGE) {
            size_t off = large_offset(p, &info);
            if (SLAB_LIKELY(off != SIZE_MAX)) {
                /* Buddy blocks decay (above); dedicated extents are unmapped by
                 * buddy_free itself. */
                buddy_free(info.head);
                return;
            }
        }
    }
    report_bad_pointer(op, p);
}

__thread struct kfree_hint kmalloc_kfree_hints[KFREE_HINTS]
    __attribute__((tls_model("initial-exec")));

/* Remember that p's slab (at head) belongs to c, for the next free or usable-size query
 * near p.  Only the size-class caches are hinted: they are never destroyed, so a stale hint
 * always names a live cache. */
static inline void kfree_hint_record(const void *p, const void *head, struct kmem_cache *c)
{
    if (c->object_size <= KMALLOC_MAX_CACHE_SIZE &&
        __atomic_load_n(&kmalloc_caches[kmalloc_class_index(c->object_size)],
                        __ATOMIC_RELAXED) == c) {
        struct kfree_hint *h = kfree_hint_for(p);
        h->slab = (uintptr_t)head;
        h->cache = c;
    }
}

/* The page-map walk: the slab's cache, or NULL. */
static inline struct kmem_cache *kfree_lookup(void *p)
{
    void *head;
    uint16_t tag;
    if (SLAB_LIKELY(buddy_block_of(p, &head, &tag) && tag == BUDDY_TAG_SLAB)) {
        const struct slab *s = head;
        struct kmem_cache *c = __atomic_load_n(&s->cache, __ATOMIC_RELAXED);
        if (SLAB_LIKELY(s->magic == SLAB_MAGIC && c != NULL)) {
            kfree_hint_record(p, head, c);
            return c;
        }
    }
    return NULL;
}

/* After the hint missed (kmalloc_free_inline): the slab's header names the cache and
 * kmem_cache_free validates p against it (double, interior, wrong-cache frees). */
__attribute__((noinline)) void kmalloc_free_lookup(void *p, const char *op, const void *caller)
{
    if (SLAB_UNLIKELY(!p))
        return;
    struct kmem_cache *c = kfree_lookup(p);
    if (SLAB_LIKELY(c != NULL)) {
        slab_cache_free_from(c, p, caller);
        return;
    }
    kmalloc_free_slow(p, op, caller);
}

void kmalloc_free_op(void *p, const char *op, const void *caller)
{
    kmalloc_free_inline(p, op, caller);
}

void kfree(void *p)
{
    kmalloc_free_inline(p, "free", SLAB_CALLER);
}

/* The usable size of p by one page-map lookup: a slab object's size (the slab is hinted;
 * with `as_free`, p is validated as a free would validate it: realloc), or a large block's
 * bytes from p.  0 after a report (not ours, interior pointer, freed slot). */
static size_t usable_size_lookup(const void *p, const char *op, bool as_free)
{
    struct buddy_block_info info;
    if (SLAB_LIKELY(buddy_lookup(p, &info))) {
        if (SLAB_LIKELY(info.tag == BUDDY_TAG_SLAB)) {
            struct kmem_cache *c = slab_block_cache(info.head);
            if (SLAB_LIKELY(c != NULL)) {
                kfree_hint_record(p, info.head, c);
                if (as_free && !slab_check_free_fast(c, p) && !slab_check_free_slow(c, p, op))
                    return 0; /* reported: interior pointer, or freed back to its slab */
                return c->object_size;
            }
        } else if (info.tag == BUDDY_TAG_LARGE) {
            size_t off = large_offset(p, &info);
            if (off != SIZE_MAX)
                return info.size - off;
        }
    }
    slab_report("%s: %p is not an allocated block from slabcache", op, p);
    slab_misuse();
    return 0;
}

size_t kmalloc_usable_size_op(const void *p, const char *op)
{
    return p ? usable_size_lookup(p, op, false) : 0;
}

size_t ksize(const void *p)
{
    return kmalloc_usable_size_inline(p, "ksize");
}

/* ---------------------------------------------------------------- realloc */

void *kmalloc_realloc(void *p, size_t size, unsigned int flags, bool malloc_classes,
                      const void *caller)
{
    if (!p)
        return malloc_classes ? kmalloc_malloc(size, flags, caller)
                              : kmalloc_from(size, flags, caller);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        kmalloc_free_op(p, "realloc", caller);
        return NULL;
    }
    /* The usable size: the hinted cache when p passes its check (a live slot), else one
     * page-map lookup for slab objects and large blocks alike (large blocks used to take
     * two: growing a 40-200 KB block one byte at a time, as gawk builds strings, went from
     * 10.0-11.1 to 7.9-8.6 ns per realloc under LD_PRELOAD; glibc 6.3, mimalloc 3.6.  A
     * copy of usable_size_lookup inlined here measured 6.9-7.7 ns; one function serves
     * ksize and realloc instead). */
    size_t old;
    struct kmem_cache *hc = kfree_hint_check(p);
    if (SLAB_LIKELY(hc != NULL))
        old = hc->object_size;
    else if ((old = usable_size_lookup(p, "realloc", true)) == 0)
        return NULL; /* reported */
    /* In place when it fits and does not waste more than half (small blocks always). */
    if (size <= old && (size > old / 2 || old <= KMALLOC_SMALL_STEP_MAX))
        return p;
    /* A large block grows into the free blocks above it, gives its upper halves back, or is
     * remapped, without a copy. */
    if (old > KMALLOC_MAX_CACHE_SIZE && size > KMALLOC_MAX_CACHE_SIZE) {
        void *q = large_resize_in_place(p, size);
        if (q)
            return realloc_zero_tail(q, old, size, flags);
    }
    size_t want = size;
    if (size > old) {
        size_t grown = old + old / 4;
        if (grown > want && grown > old)
            want = grown;
    }
    void *n = malloc_classes ? kmalloc_malloc(want, 0, caller)
                             : kmalloc_from(want, flags & ~KM_ZERO, caller);
    if (!n && want != size)
        n = malloc_classes ? kmalloc_malloc(size, 0, caller)
                           : kmalloc_from(size, flags & ~KM_ZERO, caller);
    if (!n)
        return NULL; /* p untouched, errno ENOMEM */
    memcpy(n, p, size < old ? size : old);
    if ((flags & KM_ZERO) && size > old)
        memset((char *)n + old, 0, size - old);
    kmalloc_free_op(p, "realloc", caller);
    return n;
}

void *krealloc(void *p, size_t size, unsigned int flags)
{
    return kmalloc_realloc(p, size, flags, false, SLAB_CALLER);
}

/* ---------------------------------------------------------------- malloc classes */

void *kmalloc_malloc(size_t size, unsigned int flags, const void *caller)
{
    if (SLAB_LIKELY(size <= KMALLOC_TABLE_MAX)) {
        /* 16-byte multiples only: their classes hand out 16-aligned objects. */
        struct kmem_cache *c = __atomic_load_n(
            &kmalloc_caches[kmalloc_malloc_index[(size + 15) / 16]], __ATOMIC_ACQUIRE);
        if (SLAB_LIKELY(c != NULL))
            return slab_cache_alloc_from(c, flags, caller);
        size_t s = size ? (size + 15) & ~(size_t)15 : 16;
        return kmalloc_slow(s, 16, flags, caller);
    }
    /* Above 128 bytes every class size is a multiple of 16. */
    return kmalloc_from(size, flags, caller);
}

void *kmalloc_malloc_aligned(size_t align, size_t size, const void *caller)
{
    if (align <= 16)
        return kmalloc_malloc(size, 0, caller);
    return kmalloc_slow(size, align, 0, caller);
}
