/* SPDX-License-Identifier: MIT */
/* heap/heap.c - 4 MiB-aligned extents from the program break, or from mmap.
 *
 * ==== The sbrk protocol ====
 * The break is shared: glibc's malloc, the program or another allocator may move it, up or
 * down, between any two of our calls.  This layer never assumes that two sbrk calls are
 * contiguous and never shrinks the break over memory it does not own.  To grow by `size`
 * (a multiple of HEAP_EXTENT_SIZE), sbrk_try_locked():
 *   1. cur = sbrk(0); pad = align_up(cur, HEAP_EXTENT_SIZE) - cur; incr = pad + size.
 *      If align_up(cur) or cur + incr wraps, or incr exceeds INTPTR_MAX (sbrk would read a
 *      negative increment), make no sbrk call: treat it as sbrk failure (mmap fallback).
 *      A cur that differs from `top` (where we last left the break) is a foreign move
 *      (counted once per break seen).
 *   2. old = sbrk(incr).  (void *)-1: the break cannot move -> mmap fallback (if enabled).
 *   3. old == cur: the region [cur, cur + incr) is ours; the extent is its aligned tail.
 *   4. old != cur: the break moved between 1 and 2 (a foreign move).  [old, old + incr) is
 *      still ours.  If it holds an aligned extent of `size`, use it (the head is lead
 *      padding; the tail past the extent is given back if the break is still at its end).
 *      Otherwise give the region back (only if sbrk(0) is still old + incr) and retry, at
 *      most SBRK_ATTEMPTS times; a region that cannot be given back is `stranded` (counted,
 *      never reused: it is not aligned and someone else's memory sits above it).
 * `top` records where this layer last left the break; 0 before the first growth.
 * Every negative sbrk is preceded by sbrk(0) == expected end.  The window between those two
 * calls cannot be closed with sbrk (glibc's own trim has the same one); if the negative call
 * reports a different old break, we re-grow by the same amount at once and count the move.
 *
 * ==== Extent sources and how each is given back ====
 *   SBRK       trimmed with a negative sbrk when its region ends at `top` and sbrk(0) ==
 *              top; then every free extent that became the top is trimmed too (cascade).
 *              Otherwise purged (madvise MADV_DONTNEED: pages read back as zero, RSS drops)
 *              and kept on the free list: the break cannot have holes, so it is kept
 *              whatever keep_free says.
 *   MMAP       (fallback, or use_sbrk off) purged and kept on the free list while the list
 *              holds at most keep_free bytes, else munmap'd.
 *   dedicated  (huge blocks) always their own mapping of the exact page-rounded size,
 *              munmap'd whole on free; never on the free list.
 * heap_extent_alloc() takes the first free extent large enough (splitting off the unused
 * high part) before it grows the break, so purged extents are reused first.
 *
 * ==== Descriptors and the radix map ====
 * Descriptors come from heap_meta_alloc() and are recycled through `spare`, never freed, so a
 * lock-free heap_extent_lookup() racing with a free reads a stale but mapped descriptor.
 * Live extents are entered in the radix map for every granule they span; free and spare ones
 * are in no entry.  Magic: HEAP_EXTENT_MAGIC live, EXT_FREE_MAGIC on the free list, 0 spare.
 *
 * ==== Locking ====
 *   1. HEAP lock (heap_lock_mutex): the lists, `top`, options, stats, the ops table, radix writes.
 *   2. META lock (meta.c), taken inside the HEAP lock when a descriptor is allocated.
 * Callers above take their own locks before ours.  heap_extent_lookup() takes none.
 * Functions named *_locked expect the HEAP lock held (asserted in debug builds).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/heap_internal.h"

#define EXT_FREE_MAGIC 0x48465245u /* "HFRE": on the free list */
#define EXT_SPARE_MAGIC 0u         /* recycled descriptor */
#define EXT_PARKED_MAGIC 0x48504b44u /* "HPKD": a freed dedicated extent kept mapped */
/* Requests above this fail with ENOMEM before any OS call (half the mappable space). */
#define HEAP_SIZE_MAX ((size_t)1 << (HEAP_ADDR_BITS - 1))
#define HEAP_ADDR_LIMIT ((uintptr_t)1 << HEAP_ADDR_BITS)
#define SBRK_ATTEMPTS 4
#define SBRK_FAILED ((void *)-1)
#define META_ALIGN 64 /* heap_meta_alloc alignment: descriptors are 64-byte aligned */
#define EXT_PROT (PROT_READ | PROT_WRITE)
#define EXT_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS)

/* Outcome of one way of growing. */
enum grow {
    GROW_OK,      /* region obtained */
    GROW_RETRY,   /* lost a race with a foreign sbrk; nothing held */
    GROW_OS_FAIL, /* the OS refused, or the break cannot grow that far: try the fallback */
    GROW_REFUSED, /* the limit: fail the request, no fallback */
};

/* Memory obtained from the OS: [start, start + len) holding the extent [base, base + size). */
struct region {
    uintptr_t start;
    size_t len;
    uintptr_t base;
};

struct heap_mutex heap_lock_mutex = HEAP_MUTEX_INITIALIZER;

static struct {
    bool ready;                 /* opts loaded */
    struct heap_options opts;
    struct heap_extent *live;   /* doubly linked, newest first */
    struct heap_extent *free;   /* doubly linked: purged extents kept for reuse */
    struct heap_extent *spare;  /* recycled descriptors, linked by next */
    struct heap_extent *parked; /* doubly linked, newest first: freed dedicated extents kept
                                 * mapped (not purged) for reuse, stamped in `owner` */
    size_t free_bytes;          /* sum of size over the free list */
    size_t parked_bytes;        /* sum of size over the parked list */
    uintptr_t top;              /* where this layer last left the break; 0 = never */
    uintptr_t foreign_brk;      /* last foreign break counted, so each counts once */
    struct heap_stats st;       /* meta_bytes is filled in by heap_get_stats */
} heap;

void heap_lock(void)
{
    heap_mutex_lock(&heap_lock_mutex);
}

void heap_unlock(void)
{
    heap_mutex_unlock(&heap_lock_mutex);
}

bool heap_holds_extents_locked(void)
{
    heap_assert_locked();
    return heap.live || heap.free;
}

static void options_ready_locked(void)
{
    heap_assert_locked();
    if (!heap.ready) {
        heap_options_load(&heap.opts);
        heap.ready = true;
    }
}

/* ---------------------------------------------------------------- arithmetic */

static bool is_aligned(uintptr_t x, size_t align)
{
    return (x & (align - 1)) == 0;
}

/* *out = x rounded up to align (a power of two); false if that overflows. */
static bool round_up(size_t x, size_t align, size_t *out)
{
    if (x > SIZE_MAX - (align - 1))
        return false;
    *out = (x + align - 1) & ~(align - 1);
    return true;
}

/* The size an extent request really needs, or false with errno set (no OS call made). */
static bool request_size(size_t size, bool dedicated, size_t *out)
{
    if (size == 0 || !round_up(size, dedicated ? HEAP_PAGE_SIZE : HEAP_EXTENT_SIZE, out)) {
        errno = EINVAL;
        return false;
    }
    if (*out > HEAP_SIZE_MAX) {
        errno = ENOMEM;
        return false;
    }
    return true;
}

static uintptr_t region_start(const struct heap_extent *e)
{
    return e->base - e->lead;
}

static uintptr_t region_end(const struct heap_extent *e)
{
    return region_start(e) + e->map_size;
}

/* ---------------------------------------------------------------- lists, descriptors */

static void list_push(struct heap_extent **head, struct heap_extent *e)
{
    e->prev = NULL;
    e->next = *head;
    if (*head)
        (*head)->prev = e;
    *head = e;
}

static void list_remove(struct heap_extent **head, struct heap_extent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        *head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->next = e->prev = NULL;
}

static struct heap_extent *desc_get_locked(void)
{
    heap_assert_locked();
    struct heap_extent *e = heap.spare;
    if (e) {
        heap.spare = e->next;
        e->next = NULL;
        return e;
    }
    return heap_meta_alloc(sizeof(struct heap_extent));
}

static void desc_put_locked(struct heap_extent *e)
{
    heap_assert_locked();
    e->magic = EXT_SPARE_MAGIC;
    e->owner = NULL;
    e->prev = NULL;
    e->next = heap.spare;
    heap.spare = e;
}

/* Fill a descriptor from a region (base and size are read by lock-free lookups). */
static void desc_set_region(struct heap_extent *e, const struct region *r, size_t size,
                            enum heap_source src, bool dedicated)
{
    __atomic_store_n(&e->base, r->base, __ATOMIC_RELAXED);
    __atomic_store_n(&e->size, size, __ATOMIC_RELAXED);
    e->lead = (uint32_t)(r->base - r->start);
    e->map_size = r->len;
    e->source = (uint8_t)src;
    e->dedicated = dedicated;
    e->origin = r->start;
    e->dirty = false; /* fresh memory; extent_take_free_locked copies the free extent's */
}

/* ---------------------------------------------------------------- accounting */

static size_t *source_bytes_locked(enum heap_source src)
{
    heap_assert_locked();
    return src == HEAP_SRC_SBRK ? &heap.st.sbrk_bytes : &heap.st.mmap_bytes;
}

static size_t held_locked(void)
{
    heap_assert_locked();
    return heap.st.sbrk_bytes + heap.st.mmap_bytes + heap.st.stranded_bytes;
}

/* May we take `more` bytes from the OS?  Counts the refusal. */
static bool limit_allows_locked(size_t more)
{
    heap_assert_locked();
    size_t limit = heap.opts.limit, held = held_locked();
    if (limit == 0 || (more <= limit && held <= limit - more))
        return true;
    heap.st.limit_failures++;
    return false;
}

/* ---------------------------------------------------------------- the break */

/* A break value found by sbrk(0): count it if someone else put it there. */
static void note_break_locked(uintptr_t brk)
{
    heap_assert_locked();
    if (heap.top && brk != heap.top && brk != heap.foreign_brk) {
        heap.st.foreign_moves++;
        heap.foreign_brk = brk;
    }
}

/* sbrk(0), or 0 when the OS refuses. */
static uintptr_t brk_read_locked(void)
{
    heap_assert_locked();
    void *r = heap_os()->sbrk(0);
    if (r == SBRK_FAILED) {
        heap.st.sbrk_failures++;
        return 0;
    }
    return (uintptr_t)r;
}

/* Shrink the break by len if it still ends at start + len; true if it did. */
static bool brk_give_back_locked(uintptr_t start, size_t len)
{
    heap_assert_locked();
    uintptr_t now = brk_read_locked();
    if (now != start + len || len > (size_t)INTPTR_MAX) {
        note_break_locked(now);
        return false;
    }
    void *r = heap_os()->sbrk(-(intptr_t)len);
    if (r == SBRK_FAILED) {
        heap.st.sbrk_failures++;
        return false;
    }
    if ((uintptr_t)r != now) {
        /* Moved inside the window: that was not our memory; put the break back at once. */
        heap.st.foreign_moves++;
        heap.foreign_brk = (uintptr_t)r;
        if (heap_os()->sbrk((intptr_t)len) == SBRK_FAILED)
            heap.st.sbrk_failures++;
        return false;
    }
    heap.top = start;
    heap.st.trims++;
    heap.st.returned_bytes += len;
    return true;
}

/* We won [old, old + incr) although the break moved before our sbrk (step 4). */
static enum grow sbrk_recover_locked(uintptr_t old, size_t incr, size_t size, struct region *out)
{
    heap_assert_locked();
    uintptr_t end = old + incr;
    uintptr_t base = (old + HEAP_EXTENT_SIZE - 1) & ~(uintptr_t)(HEAP_EXTENT_SIZE - 1);
    if (base >= old && base <= end && size <= end - base) {
        size_t tail = end - (base + size);
        out->start = old;
        out->len = incr;
        out->base = base;
        if (tail && brk_give_back_locked(base + size, tail))
            out->len -= tail;
        return GROW_OK;
    }
    if (!brk_give_back_locked(old, incr))
        heap.st.stranded_bytes += incr;
    return GROW_RETRY;
}

/* One attempt at steps 1-4 of the protocol. */
static enum grow sbrk_try_locked(size_t size, struct region *out)
{
    heap_assert_locked();
    uintptr_t cur = brk_read_locked();
    if (!cur)
        return GROW_OS_FAIL;
    note_break_locked(cur);
    if (cur > UINTPTR_MAX - (HEAP_EXTENT_SIZE - 1))
        return GROW_OS_FAIL; /* the break cannot grow: the fallback may still serve */
    uintptr_t base = (cur + HEAP_EXTENT_SIZE - 1) & ~(uintptr_t)(HEAP_EXTENT_SIZE - 1);
    size_t pad = base - cur;
    if (size > (size_t)INTPTR_MAX - pad || size > UINTPTR_MAX - base)
        return GROW_OS_FAIL; /* negative increment or wrap-around */
    size_t incr = pad + size;
    if (!limit_allows_locked(incr))
        return GROW_REFUSED;
    void *r = heap_os()->sbrk((intptr_t)incr);
    if (r == SBRK_FAILED) {
        heap.st.sbrk_failures++;
        return GROW_OS_FAIL;
    }
    uintptr_t old = (uintptr_t)r;
    heap.top = old + incr;
    if (old == cur) {
        *out = (struct region){.start = cur, .len = incr, .base = base};
        return GROW_OK;
    }
    heap.st.foreign_moves++;
    heap.foreign_brk = old;
    return sbrk_recover_locked(old, incr, size, out);
}

static enum grow sbrk_grow_locked(size_t size, struct region *out)
{
    heap_assert_locked();
    for (int i = 0; i < SBRK_ATTEMPTS; i++) {
        enum grow g = sbrk_try_locked(size, out);
        if (g != GROW_RETRY)
            return g;
    }
    return GROW_OS_FAIL; /* lost every race: let the fallback serve it */
}

/* Trim e's region if it is the top of the break and the break is still ours. */
static bool sbrk_trim_locked(struct heap_extent *e)
{
    heap_assert_locked();
    if (!heap.top || region_end(e) != heap.top)
        return false;
    if (!brk_give_back_locked(region_start(e), e->map_size))
        return false;
    heap.st.sbrk_bytes -= e->map_size;
    return true;
}

/* After a trim: free extents that became the top go back too. */
static void sbrk_trim_free_tops_locked(void)
{
    heap_assert_locked();
    struct heap_extent *f = heap.free;
    while (f) {
        if (f->source != HEAP_SRC_SBRK || region_end(f) != heap.top) {
            f = f->next;
            continue;
        }
        if (!sbrk_trim_locked(f))
            return;
        list_remove(&heap.free, f);
        heap.free_bytes -= f->size;
        heap.st.free_extents--;
        desc_put_locked(f);
        f = heap.free; /* the top moved down: look again from the start */
    }
}

/* ---------------------------------------------------------------- mmap */

static void os_unmap_locked(uintptr_t start, size_t len)
{
    heap_assert_locked();
    if (heap_os()->munmap((void *)start, len) == 0)
        heap.st.returned_bytes += len;
}

/* Map `size` bytes at a HEAP_EXTENT_SIZE-aligned base: over-map, unmap head and tail. */
static enum grow mmap_grow_locked(size_t size, struct region *out)
{
    heap_assert_locked();
    size_t len = size + HEAP_EXTENT_SIZE - HEAP_PAGE_SIZE; /* mmap is page aligned */
    if (!limit_allows_locked(size))
        return GROW_REFUSED;
    void *p = heap_os()->mmap(NULL, len, EXT_PROT, EXT_MAP_FLAGS, -1, 0);
    if (p == MAP_FAILED) {
        heap.st.mmap_failures++;
        return GROW_OS_FAIL;
    }
    uintptr_t start = (uintptr_t)p, end = start + len;
    uintptr_t base = (start + HEAP_EXTENT_SIZE - 1) & ~(uintptr_t)(HEAP_EXTENT_SIZE - 1);
    if (base > start && heap_os()->munmap(p, base - start) == 0)
        start = base;
    if (end > base + size && heap_os()->munmap((void *)(base + size), end - base - size) == 0)
        end = base + size;
    *out = (struct region){.start = start, .len = end - start, .base = base};
    return GROW_OK;
}

/* ---------------------------------------------------------------- giving back */

static void free_list_add_locked(struct heap_extent *e)
{
    heap_assert_locked();
    e->magic = EXT_FREE_MAGIC;
    list_push(&heap.free, e);
    heap.free_bytes += e->size;
    heap.st.free_extents++;
}

static void extent_purge_locked(struct heap_extent *e)
{
    heap_assert_locked();
    e->dirty = heap_os()->madvise((void *)e->base, e->size, MADV_DONTNEED) != 0;
    if (!e->dirty)
        heap.st.returned_bytes += e->size;
}

/* Give back an extent that is in no list and no radix entry; see the policy at the top. */
static void extent_retire_locked(struct heap_extent *e)
{
    heap_assert_locked();
    if (e->source == HEAP_SRC_SBRK && sbrk_trim_locked(e)) {
        desc_put_locked(e);
        sbrk_trim_free_tops_locked();
        return;
    }
    if (e->source == HEAP_SRC_SBRK ||
        (!e->dedicated && heap.free_bytes <= heap.opts.keep_free &&
         e->size <= heap.opts.keep_free - heap.free_bytes)) {
        extent_purge_locked(e);
        free_list_add_locked(e);
        return;
    }
    heap.st.mmap_bytes -= e->map_size;
    os_unmap_locked(region_start(e), e->map_size);
    desc_put_locked(e);
}

/* ---------------------------------------------------------------- allocation */

/* First fit on the free list; the front `size` bytes become e, the rest stays free. */
static bool extent_take_free_locked(struct heap_extent *e, size_t size)
{
    heap_assert_locked();
    struct heap_extent *f = heap.free;
    while (f && f->size < size)
        f = f->next;
    if (!f)
        return false;
    struct region r = {.start = region_start(f), .len = f->lead + size, .base = f->base};
    desc_set_region(e, &r, size, (enum heap_source)f->source, false);
    e->dirty = f->dirty;
    heap.free_bytes -= size;
    if (f->size == size) {
        e->map_size = f->map_size; /* keeps any tail */
        list_remove(&heap.free, f);
        heap.st.free_extents--;
        desc_put_locked(f);
        return true;
    }
    f->map_size -= r.len;
    f->lead = 0;
    __atomic_store_n(&f->size, f->size - size, __ATOMIC_RELAXED);
    __atomic_store_n(&f->base, f->base + size, __ATOMIC_RELAXED);
    return true;
}

/* Grow the break, or map, for a non-dedicated extent. */
static bool extent_grow_locked(struct heap_extent *e, size_t size)
{
    heap_assert_locked();
    struct region r;
    enum grow g = GROW_OS_FAIL;
    enum heap_source src = HEAP_SRC_SBRK;
    if (heap.opts.use_sbrk)
        g = sbrk_grow_locked(size, &r);
    if (g == GROW_OS_FAIL && (heap.opts.mmap_fallback || !heap.opts.use_sbrk)) {
        src = HEAP_SRC_MMAP;
        g = mmap_grow_locked(size, &r);
    }
    if (g != GROW_OK)
        return false;
    desc_set_region(e, &r, size, src, false);
    *source_bytes_locked(src) += r.len;
    return true;
}

static bool extent_map_dedicated_locked(struct heap_extent *e, size_t size)
{
    heap_assert_locked();
    struct region r;
    if (mmap_grow_locked(size, &r) != GROW_OK)
        return false;
    desc_set_region(e, &r, size, HEAP_SRC_MMAP, true);
    heap.st.mmap_bytes += r.len;
    return true;
}

static size_t parked_release_locked(uint64_t before);
static bool extent_is_live_locked(const struct heap_extent *e);
static int extent_grow_dedicated_locked(struct heap_extent *e, size_t need);

/* Give back every kept free extent the OS can take back: mapped ones are unmapped, sbrk ones
 * at the top of the break trimmed (with any below them that become the top).  Returns bytes. */
static size_t release_free_locked(void)
{
    heap_assert_locked();
    size_t before = heap.st.returned_bytes;
    struct heap_extent *f = heap.free;
    while (f) {
        struct heap_extent *next = f->next;
        if (f->source == HEAP_SRC_MMAP) {
            list_remove(&heap.free, f);
            heap.free_bytes -= f->size;
            heap.st.free_extents--;
            heap.st.mmap_bytes -= f->map_size;
            os_unmap_locked(region_start(f), f->map_size);
            desc_put_locked(f);
        }
        f = next;
    }
    sbrk_trim_free_tops_locked();
    parked_release_locked(UINT64_MAX);
    return heap.st.returned_bytes - before;
}

/* ---------------------------------------------------------------- parked dedicated extents */

/* A parked extent's stamp lives in `owner` (a parked extent has no owner). */
static uint64_t parked_stamp(const struct heap_extent *e)
{
    return (uint64_t)(uintptr_t)e->owner;
}

static void parked_remove_locked(struct heap_extent *e);

static void parked_unmap_locked(struct heap_extent *e)
{
    heap_assert_locked();
    parked_remove_locked(e);
    heap.st.mmap_bytes -= e->map_size;
    os_unmap_locked(region_start(e), e->map_size);
    desc_put_locked(e);
}

/* Unmap every parked extent whose stamp is below `before` (UINT64_MAX: all).  Bytes. */
static size_t parked_release_locked(uint64_t before)
{
    heap_assert_locked();
    size_t before_bytes = heap.st.returned_bytes;
    for (struct heap_extent *e = heap.parked, *next; e; e = next) {
        next = e->next;
        if (parked_stamp(e) < before)
            parked_unmap_locked(e);
    }
    return heap.st.returned_bytes - before_bytes;
}

/* Bytes a parked extent can hold from its base: its region may reach past `size`. */
static size_t parked_capacity(const struct heap_extent *e)
{
    return region_end(e) - e->base;
}

static void parked_push_locked(struct heap_extent *e, uint64_t stamp)
{
    heap_assert_locked();
    __atomic_store_n(&e->size, parked_capacity(e), __ATOMIC_RELAXED);
    e->magic = EXT_PARKED_MAGIC;
    e->owner = (void *)(uintptr_t)stamp;
    e->dirty = true;
    list_push(&heap.parked, e);
    heap.parked_bytes += e->size;
    heap.st.parked_extents++;
}

static void parked_remove_locked(struct heap_extent *e)
{
    heap_assert_locked();
    list_remove(&heap.parked, e);
    heap.parked_bytes -= e->size;
    heap.st.parked_extents--;
    e->owner = NULL;
}

/* A parked extent for a dedicated request of `need` bytes, off the parked list, not yet
 * published; its pages stay resident (dirty).  The smallest that holds `need`: the part of
 * its region past the next HEAP_EXTENT_SIZE boundary above `need` stays parked as an extent
 * of its own (the split of a span, as tcmalloc's page heap does), the rest up to that boundary
 * stays mapped as the extent's tail.  None large enough: the largest, grown by
 * heap_extent_alloc with mremap (in place, or its pages move), so only the new part faults. */
static struct heap_extent *parked_take_locked(size_t need)
{
    heap_assert_locked();
    struct heap_extent *best = NULL, *largest = NULL;
    for (struct heap_extent *e = heap.parked; e; e = e->next) {
        size_t c = parked_capacity(e);
        if (c >= need && (!best || c < parked_capacity(best)))
            best = e;
        if (!largest || c > parked_capacity(largest))
            largest = e;
    }
    struct heap_extent *e = best ? best : largest;
    if (!e)
        return NULL;
    uint64_t stamp = parked_stamp(e);
    parked_remove_locked(e);
    heap.st.parked_reuses++;
    uintptr_t cut = e->base + ((need + HEAP_EXTENT_SIZE - 1) & ~(size_t)(HEAP_EXTENT_SIZE - 1));
    uintptr_t end = region_end(e);
    if (best && end > cut) {
        struct heap_extent *t = desc_get_locked();
        if (t) {
            struct region r = {.start = cut, .len = end - cut, .base = cut};
            desc_set_region(t, &r, end - cut, HEAP_SRC_MMAP, true);
            t->origin = e->origin; /* one mapping still: merged again when e is parked */
            parked_push_locked(t, stamp);
            e->map_size -= end - cut;
        } else if (heap_os()->munmap((void *)cut, end - cut) == 0) {
            e->map_size -= end - cut;
            heap.st.mmap_bytes -= end - cut;
            heap.st.returned_bytes += end - cut;
        }
    }
    size_t size = parked_capacity(e) < need ? parked_capacity(e) : need;
    __atomic_store_n(&e->size, size, __ATOMIC_RELAXED);
    e->dirty = true;
    return e;
}

/* Merge e (not on any list) with the parked extents right before and after its region that
 * were cut from the same mapping (parked_take_locked's split): the pieces of one mapping are
 * one region of one kernel mapping again, so a later request as large as the whole is served
 * from resident pages, and mremap can grow it (pieces of different mappings are never
 * merged: mremap cannot span two mappings).  The newer stamp wins.  Returns the extent that
 * holds the merged region (e, or the parked one before it). */
static struct heap_extent *parked_merge_locked(struct heap_extent *e, uint64_t *stamp)
{
    heap_assert_locked();
    for (struct heap_extent *f = heap.parked, *next; f; f = next) {
        next = f->next;
        if (f->origin != e->origin || f->source != e->source)
            continue;
        struct heap_extent *lo, *hi;
        if (region_end(f) == region_start(e))
            lo = f, hi = e;
        else if (region_end(e) == region_start(f))
            lo = e, hi = f;
        else
            continue;
        if (parked_stamp(f) > *stamp)
            *stamp = parked_stamp(f);
        parked_remove_locked(f);
        lo->map_size += hi->map_size;
        heap.st.parked_merges++;
        desc_put_locked(hi);
        e = lo;
        next = heap.parked; /* the merged region may touch another piece */
    }
    return e;
}

int heap_extent_park(struct heap_extent *ext, uint64_t stamp, size_t max_bytes)
{
    heap_lock();
    if (!extent_is_live_locked(ext) || !ext->dedicated) {
        heap_unlock();
        heap_report("heap_extent_park of something that is not a live dedicated extent",
                    (uintptr_t)ext, 0);
        errno = EINVAL;
        return -1;
    }
    heap_radix_set_locked(ext->base, ext->size, NULL);
    list_remove(&heap.live, ext);
    heap.st.extents--;
    size_t cap = parked_capacity(ext);
    if (cap > max_bytes) {
        extent_retire_locked(ext);
        heap_unlock();
        return 0;
    }
    while (heap.parked_bytes > max_bytes - cap) { /* oldest first: the list's tail */
        struct heap_extent *old = heap.parked;
        while (old->next)
            old = old->next;
        parked_unmap_locked(old);
    }
    ext = parked_merge_locked(ext, &stamp);
    parked_push_locked(ext, stamp);
    heap_unlock();
    return 0;
}

size_t heap_parked_release(uint64_t before)
{
    heap_lock();
    size_t bytes = heap.parked ? parked_release_locked(before) : 0;
    heap_unlock();
    return bytes;
}

size_t heap_release_free(void)
{
    heap_lock();
    options_ready_locked();
    size_t bytes = release_free_locked();
    heap_unlock();
    return bytes;
}

/* Enter a filled descriptor in the radix map and the live list. */
static bool extent_publish_locked(struct heap_extent *e, enum heap_kind kind, uint16_t tag,
                                  void *owner)
{
    heap_assert_locked();
    if (heap_radix_prepare_locked(e->base, e->size) != 0)
        return false;
    e->kind = (uint8_t)kind;
    e->tag = tag;
    e->owner = owner;
    e->magic = HEAP_EXTENT_MAGIC;
    list_push(&heap.live, e);
    heap.st.extents++;
    heap_radix_set_locked(e->base, e->size, e);
    return true;
}

struct heap_extent *heap_extent_alloc(size_t size, enum heap_kind kind, uint16_t tag,
                                      void *owner, bool dedicated)
{
    size_t need;
    if (!request_size(size, dedicated, &need))
        return NULL;
    heap_lock();
    options_ready_locked();
    struct heap_extent *e = dedicated && heap.parked ? parked_take_locked(need) : NULL;
    if (e) {
        bool ok = extent_publish_locked(e, kind, tag, owner);
        if (ok && e->size < need && extent_grow_dedicated_locked(e, need) != 0) {
            heap_radix_set_locked(e->base, e->size, NULL);
            list_remove(&heap.live, e);
            heap.st.extents--;
            ok = false;
        }
        if (ok) {
            heap_unlock();
            return e;
        }
        /* Could not publish or grow it: unmap it and map afresh below. */
        heap.st.mmap_bytes -= e->map_size;
        os_unmap_locked(region_start(e), e->map_size);
        desc_put_locked(e);
    }
    e = desc_get_locked();
    bool got = e && (dedicated ? extent_map_dedicated_locked(e, need)
                               : extent_take_free_locked(e, need) || extent_grow_locked(e, need));
    /* Before failing: give back the free extents kept for reuse (they count toward the limit
     * and RLIMIT_DATA) and try once more. */
    if (e && !got && release_free_locked() > 0)
        got = dedicated ? extent_map_dedicated_locked(e, need) : extent_grow_locked(e, need);
    bool ok = got && extent_publish_locked(e, kind, tag, owner);
    if (got && !ok)
        extent_retire_locked(e); /* no radix leaf: give the memory back or keep it free */
    else if (e && !ok)
        desc_put_locked(e);
    heap_unlock();
    if (!ok) {
        errno = ENOMEM;
        return NULL;
    }
    return e;
}

static bool extent_is_live_locked(const struct heap_extent *e)
{
    heap_assert_locked();
    return e && is_aligned((uintptr_t)e, META_ALIGN) && e->magic == HEAP_EXTENT_MAGIC &&
           heap_radix_get(e->base) == e;
}

int heap_extent_free(struct heap_extent *ext)
{
    heap_lock();
    if (!extent_is_live_locked(ext)) {
        heap_unlock();
        heap_report("heap_extent_free of something that is not a live extent", (uintptr_t)ext,
                    0);
        errno = EINVAL;
        return -1;
    }
    heap_radix_set_locked(ext->base, ext->size, NULL);
    list_remove(&heap.live, ext);
    heap.st.extents--;
    extent_retire_locked(ext);
    heap_unlock();
    return 0;
}

int heap_purge(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    const struct heap_extent *e = heap_extent_lookup(addr);
    if (!e || len == 0 || !is_aligned(a, HEAP_PAGE_SIZE) || !is_aligned(len, HEAP_PAGE_SIZE) ||
        len > e->base + e->size - a) {
        errno = EINVAL;
        return -1;
    }
    if (heap_os()->madvise(addr, len, MADV_DONTNEED) != 0)
        return -1;
    heap_lock();
    heap.st.returned_bytes += len;
    heap_unlock();
    return 0;
}

/* ---------------------------------------------------------------- resizing dedicated extents */

/* Shrink e to `need` bytes: clear the radix entries of the granules it leaves, then unmap
 * the tail.  A tail the OS will not unmap stays mapped (the extent keeps its size). */
static void extent_shrink_locked(struct heap_extent *e, size_t need)
{
    heap_assert_locked();
    uintptr_t end = region_end(e), cut = e->base + need;
    uintptr_t g = (cut + HEAP_EXTENT_SIZE - 1) & ~(uintptr_t)(HEAP_EXTENT_SIZE - 1);
    if (heap_os()->munmap((void *)cut, end - cut) != 0)
        return;
    if (g < e->base + e->size)
        heap_radix_set_locked(g, e->base + e->size - g, NULL);
    __atomic_store_n(&e->size, need, __ATOMIC_RELAXED);
    e->map_size -= end - cut;
    heap.st.mmap_bytes -= end - cut;
    heap.st.returned_bytes += end - cut;
}

/* Move e's pages to a fresh HEAP_EXTENT_SIZE-aligned range of `need` bytes: reserve it
 * (PROT_NONE, no commit), then mremap MREMAP_FIXED over the reservation.  0 or an errno. */
static int extent_move_locked(struct heap_extent *e, size_t need)
{
    heap_assert_locked();
    size_t len = need + HEAP_EXTENT_SIZE - HEAP_PAGE_SIZE;
    void *r = heap_os()->mmap(NULL, len, PROT_NONE, EXT_MAP_FLAGS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) {
        heap.st.mmap_failures++;
        return ENOMEM;
    }
    uintptr_t start = (uintptr_t)r, end = start + len;
    uintptr_t nb = (start + HEAP_EXTENT_SIZE - 1) & ~(uintptr_t)(HEAP_EXTENT_SIZE - 1);
    if (nb > start && heap_os()->munmap(r, nb - start) == 0)
        start = nb;
    if (end > nb + need && heap_os()->munmap((void *)(nb + need), end - nb - need) == 0)
        end = nb + need;
    if (start != nb || end != nb + need || heap_radix_prepare_locked(nb, need) != 0) {
        heap_os()->munmap((void *)start, end - start);
        return ENOMEM;
    }
    uintptr_t old = e->base, old_start = region_start(e);
    size_t old_size = e->size, old_map = e->map_size, old_len = region_end(e) - old;
    void *m = heap_os()->mremap((void *)old, old_len, need, MREMAP_MAYMOVE | MREMAP_FIXED,
                                (void *)nb);
    if (m == MAP_FAILED) {
        int err = errno == ENOSYS ? ENOSYS : ENOMEM;
        heap_os()->munmap((void *)nb, need);
        return err;
    }
    if (old > old_start) /* alignment padding left before the old base */
        heap_os()->munmap((void *)old_start, old - old_start);
    heap_radix_set_locked(old, old_size, NULL);
    __atomic_store_n(&e->base, nb, __ATOMIC_RELAXED);
    __atomic_store_n(&e->size, need, __ATOMIC_RELAXED);
    e->lead = 0;
    e->map_size = need;
    e->origin = nb;
    heap_radix_set_locked(nb, need, e);
    heap.st.mmap_bytes = heap.st.mmap_bytes - old_map + need;
    heap.st.resize_moves++;
    return 0;
}

/* Grow e to `need` bytes: in place if the address space after it is free, else move. */
static int extent_grow_dedicated_locked(struct heap_extent *e, size_t need)
{
    if (!limit_allows_locked(need - e->size))
        return ENOMEM;
    size_t old_len = region_end(e) - e->base;
    if (need > old_len && heap_radix_prepare_locked(e->base, need) == 0) {
        void *m = heap_os()->mremap((void *)e->base, old_len, need, 0, NULL);
        if (m != MAP_FAILED) {
            e->map_size += need - old_len;
            heap.st.mmap_bytes += need - old_len;
            __atomic_store_n(&e->size, need, __ATOMIC_RELAXED);
            heap_radix_set_locked(e->base, need, e);
            return 0;
        }
        if (errno == ENOSYS)
            return ENOSYS;
    } else if (need <= old_len) { /* a tail the first mapping could not give back */
        __atomic_store_n(&e->size, need, __ATOMIC_RELAXED);
        heap_radix_set_locked(e->base, need, e);
        return 0;
    }
    return extent_move_locked(e, need);
}

void *heap_extent_resize(struct heap_extent *ext, size_t new_size)
{
    size_t need;
    if (new_size == 0 || !round_up(new_size, HEAP_PAGE_SIZE, &need)) {
        errno = EINVAL;
        return NULL;
    }
    if (need > HEAP_SIZE_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    heap_lock();
    options_ready_locked();
    if (!extent_is_live_locked(ext) || !ext->dedicated) {
        heap_unlock();
        errno = EINVAL;
        return NULL;
    }
    int err = 0;
    if (need < ext->size)
        extent_shrink_locked(ext, need);
    else if (need > ext->size)
        err = extent_grow_dedicated_locked(ext, need);
    if (!err)
        heap.st.resizes++;
    void *base = err ? NULL : (void *)ext->base;
    heap_unlock();
    if (err)
        errno = err;
    return base;
}

/* ---------------------------------------------------------------- options, stats */

void heap_get_options(struct heap_options *out)
{
    heap_lock();
    options_ready_locked();
    *out = heap.opts;
    heap_unlock();
}

int heap_set_options(const struct heap_options *opts)
{
    if (!opts) {
        errno = EINVAL;
        return -1;
    }
    heap_lock();
    heap.opts = *opts;
    heap.ready = true;
    heap_unlock();
    return 0;
}

void heap_get_stats(struct heap_stats *out)
{
    heap_lock();
    *out = heap.st;
    heap_unlock();
    out->meta_bytes = heap_meta_mapped_bytes();
    size_t calls[HEAP_OS_CALLS];
    heap_os_calls(calls);
    out->sbrk_calls = calls[0];
    out->mmap_calls = calls[1];
    out->munmap_calls = calls[2];
    out->madvise_calls = calls[3];
    out->mremap_calls = calls[4];
}

static void print_counter(FILE *out, const char *name, size_t value)
{
    char line[128];
    size_t n = heap_fmt(line, sizeof line, "heap: %s %zu\n", name, value);
    fwrite(line, 1, n, out);
}

void heap_print_stats(FILE *out)
{
    struct heap_stats s;
    heap_get_stats(&s);
    print_counter(out, "sbrk_bytes", s.sbrk_bytes);
    print_counter(out, "mmap_bytes", s.mmap_bytes);
    print_counter(out, "meta_bytes", s.meta_bytes);
    print_counter(out, "returned_bytes", s.returned_bytes);
    print_counter(out, "extents", s.extents);
    print_counter(out, "free_extents", s.free_extents);
    print_counter(out, "foreign_moves", s.foreign_moves);
    print_counter(out, "sbrk_failures", s.sbrk_failures);
    print_counter(out, "mmap_failures", s.mmap_failures);
    print_counter(out, "limit_failures", s.limit_failures);
    print_counter(out, "trims", s.trims);
    print_counter(out, "stranded_bytes", s.stranded_bytes);
    print_counter(out, "sbrk_calls", s.sbrk_calls);
    print_counter(out, "mmap_calls", s.mmap_calls);
    print_counter(out, "munmap_calls", s.munmap_calls);
    print_counter(out, "madvise_calls", s.madvise_calls);
    print_counter(out, "mremap_calls", s.mremap_calls);
    print_counter(out, "resizes", s.resizes);
    print_counter(out, "resize_moves", s.resize_moves);
    print_counter(out, "parked_extents", s.parked_extents);
    print_counter(out, "parked_reuses", s.parked_reuses);
    print_counter(out, "parked_merges", s.parked_merges);
}

/* ---------------------------------------------------------------- validation */

struct totals {
    size_t sbrk_bytes, mmap_bytes, free_bytes, parked_bytes, live_granules, split_granules;
};

#define CHECK(cond, what, a, b)                                                                   \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            heap_report(what, (uintptr_t)(a), (uintptr_t)(b));                                    \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)

static int validate_geometry_locked(const struct heap_extent *e)
{
    heap_assert_locked();
    CHECK(is_aligned(e->base, HEAP_EXTENT_SIZE), "extent base not 4 MiB aligned", e, e->base);
    CHECK(e->size && is_aligned(e->size, HEAP_PAGE_SIZE), "extent size not a page multiple", e,
          e->size);
    CHECK(e->source == HEAP_SRC_SBRK || e->source == HEAP_SRC_MMAP, "extent source unknown", e,
          e->source);
    CHECK(!e->dedicated || e->source == HEAP_SRC_MMAP, "dedicated extent not mapped", e,
          e->base);
    CHECK(e->lead <= e->base && e->map_size >= (size_t)e->lead + e->size,
          "extent region does not hold the extent", e, e->map_size);
    CHECK(region_end(e) > region_start(e) && region_end(e) <= HEAP_ADDR_LIMIT,
          "extent region wraps or leaves the address space", e, region_end(e));
    CHECK(e->source != HEAP_SRC_SBRK || region_end(e) <= heap.top,
          "sbrk extent above the recorded top of the break", e, heap.top);
    return 0;
}

/* Every granule of e maps to want (e itself when live, NULL when free), and its bit in the
 * split granule map is set exactly when e is a live split extent. */
static int validate_radix_locked(const struct heap_extent *e, const struct heap_extent *want)
{
    heap_assert_locked();
    bool split = want && want->kind == HEAP_KIND_SPLIT;
    for (uintptr_t g = e->base; g - e->base < e->size; g += HEAP_EXTENT_SIZE) {
        CHECK(heap_radix_get(g) == want, "radix entry does not match the extent", e, g);
        CHECK(heap_is_split_granule((const void *)g) == split,
              "split granule bit does not match the extent", e, g);
    }
    return 0;
}

static int validate_list_locked(const struct heap_extent *head, uint32_t magic, size_t count,
                                struct totals *t)
{
    heap_assert_locked();
    size_t n = 0;
    const struct heap_extent *prev = NULL;
    for (const struct heap_extent *e = head; e; prev = e, e = e->next, n++) {
        CHECK(n < count, "extent list longer than its counter (cycle?)", head, count);
        CHECK(e->magic == magic, "extent magic wrong for its list", e, e->magic);
        CHECK(e->prev == prev, "extent list back link broken", e, e->prev);
        if (validate_geometry_locked(e) ||
            validate_radix_locked(e, magic == HEAP_EXTENT_MAGIC ? e : NULL))
            return -1;
        CHECK(magic == HEAP_EXTENT_MAGIC || (magic == EXT_PARKED_MAGIC) == e->dedicated,
              "dedicated extent on the free list, or a split one parked", e, e->base);
        if (e->source == HEAP_SRC_SBRK)
            t->sbrk_bytes += e->map_size;
        else
            t->mmap_bytes += e->map_size;
        if (magic == HEAP_EXTENT_MAGIC) {
            t->live_granules += heap_radix_granules(e->base, e->size);
            if (e->kind == HEAP_KIND_SPLIT)
                t->split_granules += heap_radix_granules(e->base, e->size);
        } else if (magic == EXT_PARKED_MAGIC) {
            t->parked_bytes += e->size;
        } else {
            t->free_bytes += e->size;
        }
    }
    CHECK(n == count, "extent list shorter than its counter", head, count);
    return 0;
}

static bool regions_overlap(const struct heap_extent *a, const struct heap_extent *b)
{
    return region_start(a) < region_end(b) && region_start(b) < region_end(a);
}

/* No two regions (live or free) overlap: quadratic, for tests. */
static int validate_overlaps_locked(void)
{
    heap_assert_locked();
    struct heap_extent *lists[] = {heap.live, heap.free, heap.parked};
    for (size_t i = 0; i < 3; i++)
        for (const struct heap_extent *a = lists[i]; a; a = a->next)
            for (size_t j = i; j < 3; j++)
                for (const struct heap_extent *b = j == i ? a->next : lists[j]; b; b = b->next)
                    CHECK(!regions_overlap(a, b), "extents overlap", a, b);
    /* Parked pieces of one mapping that touch are merged (parked_merge_locked). */
    for (const struct heap_extent *a = heap.parked; a; a = a->next)
        for (const struct heap_extent *b = heap.parked; b; b = b->next)
            CHECK(a == b || a->origin != b->origin || a->source != b->source ||
                      region_end(a) != region_start(b),
                  "parked pieces of one mapping left unmerged", a, b);
    return 0;
}

static int validate_locked(void)
{
    heap_assert_locked();
    struct totals t = {0};
    if (validate_list_locked(heap.live, HEAP_EXTENT_MAGIC, heap.st.extents, &t) ||
        validate_list_locked(heap.free, EXT_FREE_MAGIC, heap.st.free_extents, &t) ||
        validate_list_locked(heap.parked, EXT_PARKED_MAGIC, heap.st.parked_extents, &t) ||
        validate_overlaps_locked())
        return -1;
    CHECK(t.sbrk_bytes == heap.st.sbrk_bytes, "sbrk_bytes does not match the extents",
          t.sbrk_bytes, heap.st.sbrk_bytes);
    CHECK(t.mmap_bytes == heap.st.mmap_bytes, "mmap_bytes does not match the extents",
          t.mmap_bytes, heap.st.mmap_bytes);
    CHECK(t.free_bytes == heap.free_bytes, "free bytes do not match the free list", t.free_bytes,
          heap.free_bytes);
    CHECK(t.parked_bytes == heap.parked_bytes, "parked bytes do not match the parked list",
          t.parked_bytes, heap.parked_bytes);
    size_t entries = heap_radix_count_locked();
    CHECK(entries == t.live_granules, "radix entries do not match the live extents", entries,
          t.live_granules);
    size_t split_bits = heap_radix_split_bits_locked();
    CHECK(split_bits == t.split_granules, "split granule bits do not match the split extents",
          split_bits, t.split_granules);
    for (const struct heap_extent *s = heap.spare; s; s = s->next)
        CHECK(s->magic == EXT_SPARE_MAGIC, "spare descriptor has a magic", s, s->magic);
    return 0;
}

int heap_validate(void)
{
    if (heap_meta_validate() != 0)
        return -1;
    heap_lock();
    int rc = validate_locked();
    heap_unlock();
    return rc;
}

/* ---------------------------------------------------------------- tests, fork */

void heap_reset_for_tests(void)
{
    heap_lock();
    options_ready_locked();
    while (heap.live) {
        struct heap_extent *e = heap.live;
        heap_radix_set_locked(e->base, e->size, NULL);
        list_remove(&heap.live, e);
        heap.st.extents--;
        extent_retire_locked(e);
    }
    sbrk_trim_free_tops_locked();
    parked_release_locked(UINT64_MAX);
    while (heap.free) {
        struct heap_extent *f = heap.free;
        list_remove(&heap.free, f);
        if (f->source == HEAP_SRC_MMAP)
            heap_os()->munmap((void *)region_start(f), f->map_size);
        desc_put_locked(f); /* sbrk extents below someone else's memory: forgotten, purged */
    }
    heap.free_bytes = 0;
    heap.top = 0;
    heap.foreign_brk = 0;
    memset(&heap.st, 0, sizeof(heap.st));
    heap_os_calls_reset();
    heap_os_install_locked(NULL);
    heap_opt_reset_for_tests(); /* read the environment again */
    heap_options_load(&heap.opts);
    heap_unlock();
}

/* The option lock is not taken here: it is innermost, below the slab layer's debug options
 * lock too (slab/types.h), so that layer's last fork entry takes it (heap_opt_lock). */
void heap_lock_all(void)
{
    heap_lock();
    heap_meta_lock();
}

void heap_unlock_all(void)
{
    heap_meta_unlock();
    heap_unlock();
}
