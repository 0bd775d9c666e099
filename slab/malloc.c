/* SPDX-License-Identifier: MIT */
/* slab/malloc.c - the drop-in malloc: glibc's allocation interface over kmalloc.
 *
 * Built only into //slab:libslabcache.so (LD_PRELOAD it, or link it) and the static archive
 * //slab:libslabcache.a; never into unit tests.  Semantics follow glibc 2.36 (see
 * docs/api.md, "drop-in malloc"):
 *   - every result is 16-byte aligned: requests map to the 16-byte-multiple classes;
 *   - malloc(0) returns a unique, freeable 16-byte block;
 *   - calloc / reallocarray overflow: NULL, errno ENOMEM;
 *   - realloc(NULL, n) = malloc(n); realloc(p, 0) frees p and returns NULL;
 *   - posix_memalign: EINVAL (returned, errno untouched) unless the alignment is a power of two
 *     multiple of sizeof(void *); aligned_alloc: EINVAL unless a power of two (C17, glibc
 *     2.38); memalign: as glibc, alignments <= 16 are plain malloc, a non-power of two is
 *     rounded up to one, and one above SIZE_MAX / 2 + 1 is EINVAL; valloc/pvalloc: page
 *     aligned, pvalloc rounds the size up to whole pages;
 *   - malloc_usable_size is exact: the class size, or the whole buddy block;
 *   - free of a pointer from elsewhere: "slabcache: free: invalid free of 0x... (pointer not
 *     from slabcache)", then abort unless SLABCACHE_ON_ERROR=report.
 *
 * Initialisation: a constructor creates the class caches before main (and before the
 * program can start threads); the first allocation does it earlier if another library's
 * constructor allocates first.  SLABCACHE_STATS=1 prints /proc/slabinfo-style statistics of
 * every cache to stderr at exit, from a destructor (registered without allocating).
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/heap.h"
#include "slab/kmalloc.h"
#include "slab/kmalloc_internal.h"
#include "slab/slab.h"

#define MALLOC_ALIGNMENT 16

static bool print_stats_at_exit;

__attribute__((constructor)) static void slabcache_malloc_init(void)
{
    kmalloc_init();
    const char *v = getenv("SLABCACHE_STATS"); /* getenv never allocates */
    print_stats_at_exit = v && v[0] && strcmp(v, "0") != 0;
}

__attribute__((destructor)) static void slabcache_malloc_fini(void)
{
    if (print_stats_at_exit)
        kmem_cache_print_slabinfo(stderr);
}

static inline bool is_pow2(size_t x)
{
    return x && !(x & (x - 1));
}

void *malloc(size_t size)
{
    return kmalloc_for_malloc_inline(size, __builtin_return_address(0));
}

void free(void *p)
{
    kmalloc_free_inline(p, "free", __builtin_return_address(0));
}

void *calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return kmalloc_for_malloc(bytes, KM_ZERO, __builtin_return_address(0));
}

void *realloc(void *p, size_t size)
{
    if (!p) /* programs that allocate through realloc(NULL, n) get malloc's fast path */
        return kmalloc_for_malloc_inline(size, __builtin_return_address(0));
    return kmalloc_realloc(p, size, 0, true, __builtin_return_address(0));
}

void *reallocarray(void *p, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return kmalloc_realloc(p, bytes, 0, true, __builtin_return_address(0));
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (!is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = kmalloc_for_malloc_aligned(align, size, __builtin_return_address(0));
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return kmalloc_for_malloc_aligned(align, size, __builtin_return_address(0));
}

void *memalign(size_t align, size_t size)
{
    if (align <= MALLOC_ALIGNMENT)
        return kmalloc_for_malloc(size, 0, __builtin_return_address(0));
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!is_pow2(align)) { /* glibc rounds a non-power of two up */
        size_t a = MALLOC_ALIGNMENT;
        while (a < align)
            a <<= 1;
        align = a;
    }
    return kmalloc_for_malloc_aligned(align, size, __builtin_return_address(0));
}

void *valloc(size_t size)
{
    return kmalloc_for_malloc_aligned(HEAP_PAGE_SIZE, size, __builtin_return_address(0));
}

void *pvalloc(size_t size)
{
    size_t rounded;
    if (__builtin_add_overflow(size, HEAP_PAGE_SIZE - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    rounded &= ~(HEAP_PAGE_SIZE - 1);
    return kmalloc_for_malloc_aligned(HEAP_PAGE_SIZE, rounded ? rounded : HEAP_PAGE_SIZE,
                                      __builtin_return_address(0));
}

size_t malloc_usable_size(void *p)
{
    return kmalloc_usable_size_inline(p, "malloc_usable_size");
}
