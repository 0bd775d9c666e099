/* SPDX-License-Identifier: MIT */
/* heap/meta.c - memory for metadata (descriptors, the layers' records), never from malloc.
 *
 * Small requests (<= META_MAX_CLASS) are rounded to a class: multiples of 64 bytes up to
 * 256, then four classes per power of two (320, 384, 448, 512, 640, ...), so a block wastes
 * less than a quarter of its size.  Blocks are carved consecutively from a chunk, so the
 * waste of a class also spreads the touched parts of the blocks over more pages (power-of-two
 * classes wasted up to half; docs/limits.md has the figures).  Blocks are carved by a bump
 * pointer from META_CHUNK_SIZE chunks mapped with mmap(2) directly (not through the ops
 * table: chunks are never unmapped, and descriptors living in them must stay readable by
 * lock-free lookups forever).  Every block is 64-byte aligned because chunks are page
 * aligned and every class is a multiple of 64.
 * Freed blocks go on a LIFO list per class (link in the block's first word) and their
 * requested bytes are zeroed again when handed out (not the whole class: the rest may be
 * pages never touched); fresh chunk memory is already zero.
 * Large requests get their own page-rounded mapping, unmapped by heap_meta_free.
 * The caller passes heap_meta_free() the size it allocated (like munmap).
 * Locking: one META lock, taken after the HEAP lock when both are held; functions named
 * *_locked assert it in debug builds. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/heap_internal.h"

#define META_MIN_SHIFT 6 /* 64 bytes: a cache line */
#define META_MAX_SHIFT 16
#define META_MIN_CLASS ((size_t)1 << META_MIN_SHIFT)
#define META_MAX_CLASS ((size_t)1 << META_MAX_SHIFT)
#define META_LINEAR_CLASSES 4 /* 64, 128, 192, 256 */
#define META_STEPS 4          /* classes per power of two above 256 */
#define META_CLASSES (META_LINEAR_CLASSES + (META_MAX_SHIFT - 8) * META_STEPS)
#define META_CHUNK_SIZE ((size_t)1 << 20)
/* Chunk header: the list of chunks, for the validator.  One class-0 block long. */
#define META_CHUNK_HEADER META_MIN_CLASS

struct meta_block {
    struct meta_block *next;
};
struct meta_chunk {
    struct meta_chunk *next;
};

static struct heap_mutex meta_mutex = HEAP_MUTEX_INITIALIZER;
#define meta_assert_locked() heap_mutex_assert_held(&meta_mutex)
static struct {
    struct meta_block *free[META_CLASSES]; /* per class, LIFO */
    size_t free_count[META_CLASSES];
    struct meta_chunk *chunks;             /* every chunk ever mapped */
    uintptr_t bump, bump_end;              /* unused tail of the newest chunk */
    size_t mapped;                         /* bytes mapped (chunks + large); atomic reads */
} meta;

void heap_meta_lock(void)
{
    heap_mutex_lock(&meta_mutex);
}

void heap_meta_unlock(void)
{
    heap_mutex_unlock(&meta_mutex);
}

size_t heap_meta_mapped_bytes(void)
{
    return __atomic_load_n(&meta.mapped, __ATOMIC_RELAXED);
}

static void meta_add_mapped(size_t bytes, bool add)
{
    if (add)
        __atomic_fetch_add(&meta.mapped, bytes, __ATOMIC_RELAXED);
    else
        __atomic_fetch_sub(&meta.mapped, bytes, __ATOMIC_RELAXED);
}

/* Bytes of class c: 64 * (c + 1) up to 256, then 2^k + j * 2^(k-2) for j = 1..4.  Every
 * class is a multiple of 64, which keeps blocks 64-byte aligned. */
static size_t meta_class_size(unsigned c)
{
    if (c < META_LINEAR_CLASSES)
        return META_MIN_CLASS * (c + 1);
    unsigned k = 8 + (c - META_LINEAR_CLASSES) / META_STEPS;
    size_t j = (c - META_LINEAR_CLASSES) % META_STEPS + 1;
    return ((size_t)1 << k) + (j << (k - 2));
}

/* Class index of a small size (1..META_MAX_CLASS): the smallest class that holds it. */
static unsigned meta_class(size_t size)
{
    unsigned c = 0;
    while (meta_class_size(c) < size)
        c++;
    return c;
}

static void meta_push_locked(void *p, unsigned c)
{
    meta_assert_locked();
    struct meta_block *b = p;
    b->next = meta.free[c];
    meta.free[c] = b;
    meta.free_count[c]++;
}

/* Give the unused tail of the current chunk to the free lists, largest classes first. */
static void meta_retire_bump_locked(void)
{
    meta_assert_locked();
    for (unsigned c = META_CLASSES; c-- > 0;) {
        while (meta.bump_end - meta.bump >= meta_class_size(c)) {
            meta_push_locked((void *)meta.bump, c);
            meta.bump += meta_class_size(c);
        }
    }
}

static int meta_new_chunk_locked(void)
{
    meta_assert_locked();
    void *p = mmap(NULL, META_CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return -1;
    meta_add_mapped(META_CHUNK_SIZE, true);
    meta_retire_bump_locked();
    struct meta_chunk *chunk = p;
    chunk->next = meta.chunks;
    meta.chunks = chunk;
    meta.bump = (uintptr_t)p + META_CHUNK_HEADER;
    meta.bump_end = (uintptr_t)p + META_CHUNK_SIZE;
    return 0;
}

static void *meta_alloc_small(size_t size)
{
    unsigned c = meta_class(size);
    size_t csize = meta_class_size(c);
    void *p = NULL;
    heap_meta_lock();
    if (meta.free[c]) {
        struct meta_block *b = meta.free[c];
        meta.free[c] = b->next;
        meta.free_count[c]--;
        memset(b, 0, size);
        p = b;
    } else if (meta.bump_end - meta.bump >= csize || meta_new_chunk_locked() == 0) {
        p = (void *)meta.bump; /* fresh mmap memory: already zero */
        meta.bump += csize;
    }
    heap_meta_unlock();
    return p;
}

static size_t meta_large_size(size_t size)
{
    return (size + HEAP_PAGE_SIZE - 1) & ~(HEAP_PAGE_SIZE - 1);
}

void *heap_meta_alloc(size_t size)
{
    if (size == 0 || size > SIZE_MAX - HEAP_PAGE_SIZE) {
        errno = size == 0 ? EINVAL : ENOMEM;
        return NULL;
    }
    void *p;
    if (size <= META_MAX_CLASS) {
        p = meta_alloc_small(size);
    } else {
        p = mmap(NULL, meta_large_size(size), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            p = NULL;
        else
            meta_add_mapped(meta_large_size(size), true);
    }
    if (!p)
        errno = ENOMEM;
    return p;
}

void heap_meta_free(void *p, size_t size)
{
    if (!p)
        return;
    if ((uintptr_t)p & (META_MIN_CLASS - 1) || size == 0) {
        heap_report("heap_meta_free of a block that heap_meta_alloc never returned",
                    (uintptr_t)p, size);
        return;
    }
    if (size > META_MAX_CLASS) {
        if (munmap(p, meta_large_size(size)) == 0)
            meta_add_mapped(meta_large_size(size), false);
        return;
    }
    heap_meta_lock();
    meta_push_locked(p, meta_class(size));
    heap_meta_unlock();
}

static bool meta_in_some_chunk_locked(uintptr_t p, size_t len)
{
    meta_assert_locked();
    for (struct meta_chunk *c = meta.chunks; c; c = c->next) {
        uintptr_t lo = (uintptr_t)c + META_CHUNK_HEADER, hi = (uintptr_t)c + META_CHUNK_SIZE;
        if (p >= lo && p <= hi && len <= hi - p)
            return true;
    }
    return false;
}

static int meta_validate_class_locked(unsigned c)
{
    meta_assert_locked();
    size_t n = 0;
    for (struct meta_block *b = meta.free[c]; b; b = b->next, n++) {
        if (n >= meta.free_count[c]) {
            heap_report("meta: free list longer than its count (cycle?)", c, n);
            return -1;
        }
        if ((uintptr_t)b & (META_MIN_CLASS - 1) ||
            !meta_in_some_chunk_locked((uintptr_t)b, meta_class_size(c))) {
            heap_report("meta: free block misaligned or outside every chunk", (uintptr_t)b, c);
            return -1;
        }
    }
    if (n != meta.free_count[c]) {
        heap_report("meta: free list shorter than its count", c, n);
        return -1;
    }
    return 0;
}

int heap_meta_validate(void)
{
    int rc = 0;
    heap_meta_lock();
    if (meta.bump > meta.bump_end)
        heap_report("meta: bump pointer past its chunk", meta.bump, meta.bump_end), rc = -1;
    for (unsigned c = 0; rc == 0 && c < META_CLASSES; c++)
        rc = meta_validate_class_locked(c);
    heap_meta_unlock();
    return rc;
}
