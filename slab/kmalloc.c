/* SPDX-License-Identifier: MIT */
/* slab/kmalloc.c - general-purpose allocation over slabcache size classes.
 *
 * SIZE CLASSES (KMALLOC_NR_CLASSES = 83 kmem_caches named "kmalloc-<size>")
 *   8 .. 128 in 8-byte steps (16 classes), then 8 classes per power of two: (2^k, 2^(k+1)]
 *   in steps of 2^(k-3), up to KMALLOC_MAX_CACHE_SIZE (32 KiB).  Above 128 bytes a request
 *   of s bytes gets a class c with c - s < c / 8, so internal waste stays under 12.5%.
 *   One exception: (4096, 4608] is split in 128-byte steps (4224, 4352, 4480, 4608), for
 *   blocks of a page plus a header (a page cache's pages with their headers), which the
 *   coarse class 4608 holds with more waste per slab.  Only this octave: finer classes
 *   elsewhere spread a program's short-lived blocks over more caches, each keeping its own
 *   pages (docs/limits.md has the figures).  The split keeps every class a multiple of its
 *   step, so power-of-two multiples still get classes with lowbit >= their alignment
 *   (kmalloc_aligned, below).
 *   Every class is created with the alignment lowbit(c) (capped at a page): a class whose
 *   size is a multiple of 2^j hands out 2^j-aligned objects, so 16-multiples are 16-aligned
 *   (malloc rounds requests to 16 and uses only those) and power-of-two classes are naturally
 *   aligned (kmalloc_aligned uses class(roundup(size, align)), which always has lowbit >= align).
 *   Lookup is O(1): a byte table indexed by (size + 7) / 8 up to 1 KiB, then clz arithmetic.
 *
 * LARGE OBJECTS
 *   32 KiB < size <= 4 MiB: a run of exactly the pages it needs, placed by best fit
 *   (buddy_alloc_run), tagged BUDDY_TAG_LARGE (the whole run is the object).  Power-of-two
 *   blocks would need aligned holes and leave the upper part of each block unwritten until
 *   a later, larger owner faults it in (docs/limits.md section 7 has the measurements).
 *   Larger: a dedicated extent (buddy_alloc_bytes), unmapped when freed.  Alignments above a
 *   page come from buddy blocks (naturally aligned up to 4 MiB); above 4 MiB from an
 *   over-sized dedicated extent whose first bytes record the offset of the aligned object
 *   (struct kmalloc_huge_hdr).
 *   Freed buddy blocks go back to the OS by the buddy layer's decay (buddy.h): a block freed
 *   and allocated again soon costs no system call and no page fault; one left free is purged
 *   a decay time or two later, from a later slow path.
 *
 * FREE
 *   buddy_lookup(p) reads the page map: tag SLAB -> cache_of_block(head) -> kmem_cache_free
 *   (which validates and reports double or invalid frees); tag LARGE -> the block must start
 *   at p (or be an aligned huge block with a matching header) -> buddy_free.  Anything else
 *   is reported ("slabcache: free: invalid free of 0x... (...)") and report_misuse() decides.
 *
 * REALLOC
 *   In place while the new size fits the usable size and is more than half of it (small
 *   blocks always stay).  A large run also stays when it can grow into the free pages right
 *   after it, or shrink by freeing its last pages (buddy_resize_run; the freed tail decays
 *   like any freed block).  When a block must move to grow, it asks for at least 1.25 x the
 *   old usable size (FastMM's rule), so a run of small growths moves O(log n) times, and
 *   lands where twice its pages are free (KMALLOC_GROWING).  Dedicated extents (above
 *   4 MiB) are resized with mremap (buddy_resize_huge): in place, or their pages move to a
 *   new address; nothing is copied.
 *
 * INITIALISATION
 *   The first allocation (or the constructor in malloc.c) builds the class tables; each class's
 *   cache is created lazily by the first allocation of that class (kmalloc_class_cache), so a
 *   short-lived process pays only for the classes it uses (eager creation of every class
 *   costs page faults in each of them).  A NULL slot in the class
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
#include "slab/debug.h"
#include "slab/kmalloc_internal.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

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
_Static_assert(KMALLOC_TABLE_MAX / 16 + 1 == 65, "kmalloc_index16 lists 65 entries");
const uint8_t kmalloc_index16[KMALLOC_TABLE_MAX / 16 + 1] = {KMI16(0), KMI16(16), KMI16(32),
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
 * create it get the same cache (cache_create_fixed_id), or, for magazine-less (debug)
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
    heap_fmt(name, sizeof name, "kmalloc-%u", class_size[i]);
    size_t align = lowbit(class_size[i]);
    if (align > BUDDY_PAGE_SIZE)
        align = BUDDY_PAGE_SIZE;
    /* No constructor, magazines on: the fast path.  One empty slab kept per class (the
     * magazines and the depot already cache freed objects; more empty slabs only hold RSS). */
    struct kmem_cache_args args = {0};
    args.align = align;
    args.max_empty_slabs = KMALLOC_MAX_EMPTY_SLABS;
    c = cache_create_fixed_id(name, class_size[i], &args, 0, i);
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
        cache_init_once(); /* pthread_atfork inside may re-enter malloc: see kmalloc_slow */
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

/* Zero the first size bytes of a buddy block just allocated: only its dirty pages (`dirty`,
 * buddy_alloc_dirty), with memset.  A page that reads as zero (never used, or purged) is not
 * touched, so it does not become resident. */
static void large_zero_dirty(void *p, size_t size, const uint64_t *dirty)
{
    size_t pages = (size + BUDDY_PAGE_SIZE - 1) / BUDDY_PAGE_SIZE;
    for (size_t i = 0; i < pages;) {
        if (!((dirty[i / 64] >> (i % 64)) & 1)) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < pages && ((dirty[j / 64] >> (j % 64)) & 1))
            j++;
        size_t end = j * BUDDY_PAGE_SIZE < size ? j * BUDDY_PAGE_SIZE : size;
        memset((char *)p + i * BUDDY_PAGE_SIZE, 0, end - i * BUDDY_PAGE_SIZE);
        i = j;
    }
}

/* Zero a dedicated (huge) block just allocated, when it is dirty (reused from the heap's
 * parked extents; a fresh mapping reads as zero): the whole extent for kzalloc, the bytes
 * asked for with KMALLOC_ZERO_ASKED, with memset.  A parked extent's pages are resident, so
 * writing them costs no fault, where a purge (madvise) would cost a system call and then a
 * fault per page for the program's own writes (docs/limits.md, section 6, has the
 * measurements).  The price: pages of the extent its previous owner never touched become
 * resident, as they do in glibc's and jemalloc's calloc of reused memory. */
static void huge_zero(void *p, size_t size, unsigned int flags)
{
    const struct heap_extent *he = heap_extent_lookup(p);
    if (!he || !he->dirty)
        return;
    memset(p, 0, (flags & KMALLOC_ZERO_ASKED) ? size : he->size);
}

/* A block of at least size bytes aligned to align (a power of two, may be 0), from the buddy
 * layer.  Zeroed when flags has KM_ZERO: the whole block, or with KMALLOC_ZERO_ASKED (calloc)
 * only the bytes asked for.  kzalloc zeroes the whole block, as the kernel's does, so that
 * krealloc with KM_ZERO can grow it in place (kmalloc_realloc). */
static void *large_alloc(size_t size, size_t align, unsigned int flags)
{
    if (size == 0)
        size = 1;
    magazine_tick(); /* a program busy with large blocks only still reaps idle depots */
    void *p;
    if (size <= kmalloc_largest_order_bytes && align <= kmalloc_largest_order_bytes) {
        /* A run of the pages asked for; an alignment above a page takes a buddy block of
         * the order that has it (aligned to its size). */
        size_t pages = (size + BUDDY_PAGE_SIZE - 1) / BUDDY_PAGE_SIZE;
        int aorder = align > BUDDY_PAGE_SIZE ? buddy_order_for_size(align) : -1;
        if (aorder >= 0 && (size_t)1 << aorder < pages)
            aorder = buddy_order_for_size(size);
        if (aorder >= 0)
            pages = (size_t)1 << aorder;
        uint64_t dirty[BUDDY_PAGES_PER_EXTENT / 64];
        size_t room = (flags & KMALLOC_GROWING) ? 2 * pages : pages;
        p = aorder >= 0 ? buddy_alloc_dirty((unsigned)aorder, BUDDY_TAG_LARGE, dirty)
                        : buddy_alloc_run_room(pages, room, BUDDY_TAG_LARGE,
                                               (flags & KM_ZERO) ? dirty : NULL);
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
        if (flags & KM_ZERO)
            large_zero_dirty(p, (flags & KMALLOC_ZERO_ASKED) ? size : pages * BUDDY_PAGE_SIZE,
                             dirty);
        return p;
    }
    /* Dedicated extents, 4 MiB aligned: fresh mappings read as zero; one reused from the
     * heap's parked extents (heap_extent_park) is dirty and zeroed like a buddy block. */
    if (align <= HEAP_EXTENT_SIZE) {
        p = buddy_alloc_bytes(size, BUDDY_TAG_LARGE);
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
        if (flags & KM_ZERO)
            huge_zero(p, size, flags);
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
    if (flags & KM_ZERO)
        huge_zero(base, total, flags);
    uintptr_t obj = ((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1);
    if (obj != (uintptr_t)base) {
        struct kmalloc_huge_hdr *h = (struct kmalloc_huge_hdr *)base;
        h->magic = KMALLOC_HUGE_MAGIC ^ (uint64_t)(uintptr_t)base;
        h->offset = obj - (uintptr_t)base;
    }
    return (void *)obj;
}

/* Freed large blocks go back to the OS through the buddy layer's decay (buddy.h), not at
 * their free: a purge per freed block costs a system call and the page faults of its reuse in
 * programs that allocate and free large arrays in a loop, and never purging a size freed once
 * (glibc's sliding mmap threshold) keeps every regrown buffer resident (docs/limits.md,
 * section 5, has the measurements).  (large_free: the LARGE branch of kmalloc_free_slow.) */

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

/* realloc of the large block at p to size bytes without a copy: a run grows into the free
 * pages after it or frees its last pages (buddy_resize_run), an aligned buddy block into its
 * free buddies or by freeing its upper halves (buddy_resize; a freed tail decays like any
 * freed block); a dedicated extent that stays past the largest order is remapped
 * (buddy_resize_huge: in place, or its pages move).  The block's (new) address, or NULL (p
 * unchanged) when p is not a whole block or it cannot be resized in place. */
static void *large_resize_in_place(void *p, size_t size)
{
    struct buddy_block_info info;
    if (!buddy_lookup(p, &info) || info.tag != BUDDY_TAG_LARGE || info.head != p)
        return NULL;
    if (info.order == BUDDY_ORDER_HUGE) {
        if (size <= kmalloc_largest_order_bytes)
            return NULL;
        int saved = errno; /* a refused mremap (ENOSYS, ENOMEM) is not the caller's error */
        void *q = buddy_resize_huge(p, size);
        errno = saved;
        return q;
    }
    if (size > kmalloc_largest_order_bytes)
        return NULL; /* past the largest order: a dedicated extent */
    if (info.order == BUDDY_ORDER_RUN)
        return buddy_resize_run(p, (size + BUDDY_PAGE_SIZE - 1) / BUDDY_PAGE_SIZE) == 0 ? p
                                                                                     : NULL;
    return buddy_resize(p, (unsigned)buddy_order_for_size(size)) == 0 ? p : NULL;
}


/* ---------------------------------------------------------------- allocation */

/* class_alloc for a class cache without magazines (debug options): with Z, the red zone
 * starts at the size asked for (debug_kmalloc_resize). */
__attribute__((noinline)) static void *class_alloc_nomag(struct kmem_cache *c, size_t size,
                                                         unsigned int flags,
                                                         const void *caller)
{
    void *obj = cache_alloc_with_caller(c, flags, caller);
    if (obj && (c->debug & SLAB_DBG_KMALLOC_RZ))
        debug_kmalloc_resize(c, obj, size, "kmalloc", caller);
    return obj;
}

/* An object of class cache c for a request of `size` bytes.  Class caches with magazines
 * hold a fixed id; those without (debug options) record the size asked for. */
static inline __attribute__((always_inline)) void *class_alloc(struct kmem_cache *c, size_t size,
                                                               unsigned int flags,
                                                               const void *caller)
{
    if (SLAB_LIKELY(c->id != SLAB_NO_ID))
        return cache_alloc_with_caller(c, flags, caller);
    return class_alloc_nomag(c, size, flags, caller);
}

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
                return class_alloc(c, size, flags, caller);
        }
    }
    /* Large, or a class without a cache (during initialisation, or creation failed). */
    return large_alloc(size, align, flags);
}

/* Every entry point passes its own return address down: debug caches (SLAB_STORE_USER)
 * record the program's call site, not one inside this file. */
static inline __attribute__((always_inline)) void *
kmalloc_with_caller(size_t size, unsigned int flags, const void *caller)
{
    if (SLAB_LIKELY(size <= KMALLOC_MAX_CACHE_SIZE)) {
        unsigned i = class_index_of(size);
        void *obj; /* class i's magazines are entry i (cache_create_fixed_id) */
        if (SLAB_LIKELY(!(flags & KM_ZERO)) && SLAB_LIKELY(magazine_pop_fixed(i, &obj)))
            return obj;
        struct kmem_cache *c = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
        if (SLAB_LIKELY(c != NULL))
            return class_alloc(c, size, flags, caller);
    }
    return kmalloc_slow(size, 0, flags, caller);
}

void *kmalloc(size_t size, unsigned int flags)
{
    return kmalloc_with_caller(size, flags, SLAB_CALLER);
}

void *kzalloc(size_t size, unsigned int flags)
{
    return kmalloc_with_caller(size, flags | KM_ZERO, SLAB_CALLER);
}

void *kcalloc(size_t n, size_t size, unsigned int flags)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return kmalloc_with_caller(bytes, flags | KM_ZERO, SLAB_CALLER);
}

void *kmalloc_aligned(size_t align, size_t size, unsigned int flags)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 8)
        return kmalloc_with_caller(size, flags, SLAB_CALLER);
    return kmalloc_slow(size, align, flags, SLAB_CALLER);
}

/* ---------------------------------------------------------------- misuse reports */

/* The last KMALLOC_FREED_HUGE huge blocks freed (dedicated extents, unmapped when freed).  A
 * second free of one finds no extent any more; this ring is what tells it from a pointer
 * slabcache never handed out.  Lock-free, and only read to word a report: an address mapped
 * again by slabcache is found live before the ring is read; one that someone else maps
 * afterwards and frees to us is reported as a double free of the old block (misuse either
 * way). */
#define KMALLOC_FREED_HUGE 64
static struct {
    uintptr_t addr;
    size_t size;
} freed_huge[KMALLOC_FREED_HUGE];
static unsigned freed_huge_next;

static void freed_huge_note(const void *p, size_t size)
{
    unsigned i = __atomic_fetch_add(&freed_huge_next, 1, __ATOMIC_RELAXED) % KMALLOC_FREED_HUGE;
    __atomic_store_n(&freed_huge[i].addr, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&freed_huge[i].size, size, __ATOMIC_RELAXED);
    __atomic_store_n(&freed_huge[i].addr, (uintptr_t)p, __ATOMIC_RELEASE);
}

/* Bytes of the huge block at p if it was freed lately, else 0. */
static size_t freed_huge_find(const void *p)
{
    for (unsigned i = 0; i < KMALLOC_FREED_HUGE; i++) {
        if (__atomic_load_n(&freed_huge[i].addr, __ATOMIC_ACQUIRE) != (uintptr_t)p)
            continue;
        size_t size = __atomic_load_n(&freed_huge[i].size, __ATOMIC_RELAXED);
        if (__atomic_load_n(&freed_huge[i].addr, __ATOMIC_ACQUIRE) == (uintptr_t)p)
            return size;
    }
    return 0;
}

/* p is not a block that kmalloc can free (freeing) or size (a size query, ksize and
 * malloc_usable_size): say why in one line that names op, the entry point the program
 * called, and the kind of block p points into (large block, huge mapping; small objects are
 * reported by slab_check_free_slow), then report_misuse().  Reads only memory that is ours:
 * the extent map, then the buddy page map.  errno is kept. */
__attribute__((noinline, cold)) static void bad_block_report(const char *op, const void *p,
                                                             bool freeing)
{
    int saved = errno;
    char why[160];
    const char *kind = NULL; /* set: p is a block of this kind that is already free */
    struct heap_extent *e = heap_extent_lookup(p);
    size_t huge;
    if (!e) {
        if ((huge = freed_huge_find(p)) != 0) {
            kind = "huge mapping";
            heap_fmt(why, sizeof why, "%zu bytes, unmapped when it was freed", huge);
        } else {
            heap_fmt(why, sizeof why, "pointer not from slabcache");
        }
    } else if (e->kind != HEAP_KIND_SPLIT) {
        heap_fmt(why, sizeof why, "interior pointer: %zu bytes into huge mapping %p of %zu bytes",
                 (size_t)((uintptr_t)p - e->base), (void *)e->base, e->size);
    } else {
        const struct buddy_page *pages =
            (const struct buddy_page *)__atomic_load_n(&e->owner, __ATOMIC_RELAXED);
        struct buddy_page pg = {0, 0, 0};
        if (pages)
            __atomic_load(&pages[((uintptr_t)p - e->base) >> BUDDY_PAGE_SHIFT], &pg,
                          __ATOMIC_RELAXED);
        size_t block = pg.order <= BUDDY_MAX_ORDER ? BUDDY_PAGE_SIZE << pg.order : 0;
        uintptr_t head = block ? (uintptr_t)p & ~(uintptr_t)(block - 1) : 0;
        struct buddy_block_info info; /* a run's head and size are in the buddy layer's map */
        if (pg.order == BUDDY_ORDER_RUN && buddy_lookup(p, &info)) {
            head = (uintptr_t)info.head;
            block = info.size;
        }
        if (pg.state == BUDDY_PAGE_FREE_HEAD || pg.state == BUDDY_PAGE_FREE_TAIL) {
            if (buddy_freed_head(p)) { /* user pointers are never slab heads: a large block */
                kind = "large block";
                heap_fmt(why, sizeof why, "already free: its pages are free");
            } else {
                heap_fmt(why, sizeof why, "a free page: freed already, or never handed out");
            }
        } else if (pg.tag == BUDDY_TAG_LARGE && block) {
            heap_fmt(why, sizeof why, "interior pointer: %zu bytes into large block %p of %zu "
                     "bytes",
                     (size_t)((uintptr_t)p - head), (void *)head, block);
        } else if (pg.tag == BUDDY_TAG_SLAB) {
            heap_fmt(why, sizeof why, "in a slab whose header is damaged: an overflow from "
                     "the block below?");
        } else {
            heap_fmt(why, sizeof why, "in a page block kmalloc did not hand out");
        }
    }
    if (kind && freeing)
        heap_fmt_line("%s: double free of %s %p (%s)", op, kind, p, why);
    else if (kind)
        heap_fmt_line("%s: %p is a %s that is already free (%s)", op, p, kind, why);
    else if (freeing)
        heap_fmt_line("%s: invalid free of %p (%s)", op, p, why);
    else
        heap_fmt_line("%s: %p is not an allocated block from slabcache (%s)", op, p, why);
    report_misuse();
    errno = saved;
}

/* ---------------------------------------------------------------- free and size */

/* kmalloc_free_op without the common case: large blocks, and pointers to report.  Keeps
 * errno (POSIX 2024, glibc 2.33): giving memory back can make system calls (munmap of a
 * huge block, madvise of the purge budget) that fail and set it. */
__attribute__((noinline)) static void kmalloc_free_slow(void *p, const char *op,
                                                        const void *caller)
{
    int saved = errno;
    struct buddy_block_info info;
    if (SLAB_LIKELY(buddy_lookup(p, &info))) {
        if (SLAB_LIKELY(info.tag == BUDDY_TAG_SLAB)) {
            struct kmem_cache *c = cache_of_block(info.head);
            if (SLAB_LIKELY(c != NULL)) {
                cache_free_op(c, p, op, caller); /* validates: double, interior, wrong cache */
                errno = saved;
                return;
            }
        } else if (info.tag == BUDDY_TAG_LARGE) {
            size_t off = large_offset(p, &info);
            if (SLAB_LIKELY(off != SIZE_MAX)) {
                /* Buddy blocks decay (above); dedicated extents are unmapped by
                 * buddy_free itself. */
                if (buddy_free(info.head) == 0 && info.order == BUDDY_ORDER_HUGE)
                    freed_huge_note(p, info.size - off);
                magazine_tick();
                errno = saved;
                return;
            }
        }
    }
    bad_block_report(op, p, true);
    errno = saved;
}

/* Remember that p's slab (at head) belongs to c, for the next free or usable-size query
 * near p, in the thread's own table (a thread still on the shared empty one records
 * nothing).  Only the size-class caches with magazines are hinted: they are never destroyed,
 * so a stale hint always names a live cache, and their objects' usable size is the class
 * size (kmalloc_usable_size_inline); the debug ones (no magazines) report the size asked
 * for. */
static inline void kmalloc_hint_record(const void *p, const void *head, struct kmem_cache *c)
{
    /* A class cache has magazine id = class index (cache_create_fixed_id). */
    if (c->id < KMALLOC_NR_CLASSES &&
        __atomic_load_n(&kmalloc_caches[c->id], __ATOMIC_RELAXED) == c &&
        magazine_tls_table != &magazine_table_empty) {
        struct kmalloc_hint *h = kmalloc_hint_for(p);
        h->slab = (uintptr_t)head;
        h->cache = c;
    }
}

/* The page-map walk: the slab's cache, or NULL. */
static inline struct kmem_cache *page_map_cache(void *p)
{
    void *head;
    uint16_t tag;
    if (SLAB_LIKELY(buddy_block_of(p, &head, &tag) && tag == BUDDY_TAG_SLAB)) {
        struct kmem_cache *c = slab_owner(head);
        if (SLAB_LIKELY(c != NULL)) {
            kmalloc_hint_record(p, head, c);
            return c;
        }
    }
    return NULL;
}

/* After the hint missed (kmalloc_free_inline): the slab's header names the cache and
 * kmem_cache_free's check validates p against it (double, interior, wrong-cache frees),
 * reporting them under the caller's op. */
__attribute__((noinline)) void kmalloc_free_lookup(void *p, const char *op, const void *caller)
{
    if (SLAB_UNLIKELY(!p))
        return;
    struct kmem_cache *c = page_map_cache(p);
    if (SLAB_LIKELY(c != NULL)) {
        cache_free_op(c, p, op, caller);
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
    kmalloc_free_inline(p, "kfree", SLAB_CALLER);
}

/* What a size query or realloc needs to know of the block at p, by one page-map lookup:
 * *cp its class cache (NULL for a large block), *cap the bytes it holds, *asked the bytes
 * the program asked for when the cache keeps them (kmalloc classes with Z), else *cap.
 * freeing: p is checked as a free would check it (realloc); otherwise as a size query.
 * False after a report: not ours, an interior pointer, a freed object. */
static bool block_lookup(const void *p, const char *op, bool freeing, struct kmem_cache **cp,
                         size_t *cap, size_t *asked)
{
    struct buddy_block_info info;
    if (SLAB_LIKELY(buddy_lookup(p, &info))) {
        if (SLAB_LIKELY(info.tag == BUDDY_TAG_SLAB)) {
            struct kmem_cache *c = cache_of_block(info.head);
            if (SLAB_LIKELY(c != NULL)) {
                kmalloc_hint_record(p, info.head, c);
                if (!slab_check_free_fast(c, p) &&
                    !(freeing ? slab_check_free_slow(c, p, op)
                              : slab_check_size_query_slow(c, p, op)))
                    return false; /* reported: interior pointer, or an object already free */
                *cp = c;
                *cap = c->object_size;
                *asked = (c->debug & SLAB_DBG_KMALLOC_RZ) ? debug_kmalloc_size(c, p)
                                                          : c->object_size;
                return true;
            }
        } else if (info.tag == BUDDY_TAG_LARGE) {
            size_t off = large_offset(p, &info);
            if (off != SIZE_MAX) {
                *cp = NULL;
                *cap = *asked = info.size - off;
                return true;
            }
        }
    }
    bad_block_report(op, p, freeing);
    return false;
}

size_t kmalloc_usable_size_op(const void *p, const char *op)
{
    struct kmem_cache *c;
    size_t cap, asked;
    return p && block_lookup(p, op, false, &c, &cap, &asked) ? asked : 0;
}

size_t ksize(const void *p)
{
    return kmalloc_usable_size_inline(p, "ksize");
}

/* ---------------------------------------------------------------- realloc */

/* realloc in place: p (of class cache c, or a large block when c is NULL) holds cap bytes,
 * of which the program asked for `old` (less than cap only in debug caches that keep it).
 * A kmalloc class with Z moves its red zone to the new size; krealloc with KM_ZERO, as the
 * kernel's with __GFP_ZERO: the bytes from the size asked for before up to the new size read
 * zero, and so do the spare bytes past the new size (so that a later KM_ZERO grow in place
 * needs no memory of the old size: the kernel's rule, every resize with KM_ZERO). */
static void *realloc_in_place(struct kmem_cache *c, void *p, size_t old, size_t size,
                              size_t cap, unsigned int flags, const char *op,
                              const void *caller)
{
    if (c && (c->debug & SLAB_DBG_KMALLOC_RZ)) {
        debug_kmalloc_resize(c, p, size, op, caller); /* [size, cap) becomes red zone */
        if ((flags & KM_ZERO) && size > old)
            memset((char *)p + old, 0, size - old);
    } else if (flags & KM_ZERO) {
        memset((char *)p + size, 0, cap - size);
    }
    return p;
}

/* realloc moved p's contents into a block sized for `want` > size: a kmalloc class with Z
 * must still take `size` as the size asked for (its red zone starts there). */
static void realloc_keep_asked(void *n, size_t want, size_t size, bool malloc_classes,
                               const char *op, const void *caller)
{
    if (want > KMALLOC_MAX_CACHE_SIZE)
        return;
    unsigned i = malloc_classes && want <= KMALLOC_TABLE_MAX ? kmalloc_index16[(want + 15) / 16]
                                                              : class_index_of(want);
    struct kmem_cache *nc = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
    if (nc && nc->id == SLAB_NO_ID && (nc->debug & SLAB_DBG_KMALLOC_RZ) &&
        heap_is_split_granule(n) && slab_owner(slab_of(nc, n)) == nc)
        debug_kmalloc_resize(nc, n, size, op, caller);
}

void *kmalloc_realloc(void *p, size_t size, unsigned int flags, bool malloc_classes,
                      const char *op, const void *caller)
{
    if (!p)
        return malloc_classes ? kmalloc_for_malloc(size, flags, caller)
                              : kmalloc_with_caller(size, flags, caller);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        kmalloc_free_op(p, op, caller);
        return NULL;
    }
    /* The usable size: the hinted cache when p passes its check (a live slot), else one
     * page-map lookup for slab objects and large blocks alike (block_lookup serves ksize and
     * realloc; a realloc that grows a large block by a byte at a time makes this lookup on
     * every call). */
    size_t cap, old;
    struct kmem_cache *c = kmalloc_hint_check(p);
    if (SLAB_LIKELY(c != NULL))
        cap = old = c->object_size;
    else if (!block_lookup(p, op, true, &c, &cap, &old))
        return NULL; /* reported */
    /* In place when it fits and does not waste more than half (small blocks always). */
    if (size <= cap && (size > cap / 2 || cap <= KMALLOC_SMALL_STEP_MAX))
        return realloc_in_place(c, p, old, size, cap, flags, op, caller);
    /* A large block grows into the free pages after it, gives its last pages back, or is
     * remapped, without a copy. */
    if (cap > KMALLOC_MAX_CACHE_SIZE && size > KMALLOC_MAX_CACHE_SIZE) {
        void *q = large_resize_in_place(p, size);
        if (q) {
            if (flags & KM_ZERO) { /* as realloc_in_place: the new bytes and the spare */
                size_t from = size < cap ? size : cap;
                memset((char *)q + from, 0, kmalloc_usable_size_op(q, op) - from);
            }
            return q;
        }
    }
    /* Growth asks for 1.25 x the old size, so that a run of small growths moves O(log n)
     * times; but not where a red zone marks the exact size (debug caches that keep it). */
    size_t want = size;
    if (size > old && old == cap) {
        size_t grown = old + old / 4;
        if (grown > want && grown > old)
            want = grown;
    }
    int saved = errno;
    /* A large block that grows has room to grow in place after it (kmalloc_internal.h). */
    unsigned int grow = want > KMALLOC_MAX_CACHE_SIZE && size > old ? KMALLOC_GROWING : 0;
    void *n = malloc_classes ? kmalloc_for_malloc(want, grow, caller)
                             : kmalloc_with_caller(want, (flags & ~KM_ZERO) | grow, caller);
    if (!n && want != size)
        n = malloc_classes ? kmalloc_for_malloc(want = size, 0, caller)
                           : kmalloc_with_caller(want = size, flags & ~KM_ZERO, caller);
    if (!n)
        return NULL; /* p untouched, errno ENOMEM */
    errno = saved;
    if (want != size)
        realloc_keep_asked(n, want, size, malloc_classes, op, caller);
    size_t keep = size < old ? size : old;
    memcpy(n, p, keep);
    if (flags & KM_ZERO) {
        /* The new bytes and the new block's spare, except a huge block's: a fresh mapping
         * reads as zero.  ksize of a debug class is the size asked for (its red zone
         * follows). */
        size_t end = want > kmalloc_largest_order_bytes ? size : kmalloc_usable_size_op(n, op);
        if (end > keep)
            memset((char *)n + keep, 0, end - keep);
    }
    kmalloc_free_op(p, op, caller);
    return n;
}

void *krealloc(void *p, size_t size, unsigned int flags)
{
    return kmalloc_realloc(p, size, flags, false, "krealloc", SLAB_CALLER);
}

/* ---------------------------------------------------------------- malloc classes */

void *kmalloc_for_malloc(size_t size, unsigned int flags, const void *caller)
{
    if (SLAB_LIKELY(size <= KMALLOC_TABLE_MAX)) {
        /* 16-byte multiples only: their classes hand out 16-aligned objects. */
        struct kmem_cache *c = __atomic_load_n(
            &kmalloc_caches[kmalloc_index16[(size + 15) / 16]], __ATOMIC_ACQUIRE);
        if (SLAB_LIKELY(c != NULL))
            return class_alloc(c, size, flags, caller);
        return kmalloc_slow(size, 16, flags, caller); /* the class of size rounded to 16 */
    }
    /* Above 128 bytes every class size is a multiple of 16. */
    return kmalloc_with_caller(size, flags, caller);
}

void *kmalloc_for_malloc_aligned(size_t align, size_t size, const void *caller)
{
    if (align <= 16)
        return kmalloc_for_malloc(size, 0, caller);
    return kmalloc_slow(size, align, 0, caller);
}
