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
 *   - malloc_usable_size is exact: the class size, or the whole buddy block (with
 *     SLABCACHE_DEBUG=Z on a class, the size asked for: its red zone starts there); an
 *     interior or freed pointer is reported and gets 0;
 *   - free keeps errno (POSIX 2024, glibc 2.33), whatever the system calls under it do;
 *   - free of a pointer from elsewhere: "slabcache: free: invalid free of 0x... (pointer not
 *     from slabcache)", then abort unless SLABCACHE_ON_ERROR=report.
 *
 * Initialisation: a constructor creates the class caches before main (and before the
 * program can start threads); the first allocation does it earlier if another library's
 * constructor allocates first.  The statistics and reports at exit (SLABCACHE_STATS,
 * SLABCACHE_LEAKS) are the slab layer's (slab/status.c).
 *
 * glibc's introspection calls are answered from slabcache's own state (slab/state.c), with
 * glibc's meaning for each field (docs/api.md maps them): mallinfo2, mallinfo, malloc_stats,
 * malloc_info (glibc's XML shape, a <size> per size class), mallopt (glibc's parameters are
 * accepted; those that map act, the others are documented as having no effect) and
 * malloc_trim.
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
#include "heap/options.h"
#include "slab/kmalloc.h"
#include "slab/kmalloc_internal.h"
#include "slab/slab.h"

#define MALLOC_ALIGNMENT 16

__attribute__((constructor)) static void slabcache_malloc_init(void)
{
    kmalloc_init();
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
    return kmalloc_for_malloc(bytes, KM_ZERO | KMALLOC_ZERO_ASKED, __builtin_return_address(0));
}

void *realloc(void *p, size_t size)
{
    if (!p) /* programs that allocate through realloc(NULL, n) get malloc's fast path */
        return kmalloc_for_malloc_inline(size, __builtin_return_address(0));
    return kmalloc_realloc(p, size, 0, true, "realloc", __builtin_return_address(0));
}

void *reallocarray(void *p, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return kmalloc_realloc(p, bytes, 0, true, "reallocarray", __builtin_return_address(0));
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

/* ---------------------------------------------------------------- glibc's introspection */

/* The fields of glibc's mallinfo2, from slabcache's state:
 *   arena     bytes held from the OS for blocks other than huge mappings
 *   ordblks   free buddy blocks          smblks   objects cached in magazines (glibc's fast
 *   hblks     huge mappings              fsmblks  their bytes            bins and tcache)
 *   hblkhd    their bytes                uordblks bytes in use, huge mappings excluded
 *   usmblks   0 (as glibc)               fordblks arena - uordblks
 *   keepcost  wholly free 4 MiB extents kept as spares (what malloc_trim gives back) */
struct mallinfo2 mallinfo2(void)
{
    struct slabcache_totals st;
    state_collect(&st, NULL, 0, NULL);
    struct buddy_stats bs;
    buddy_get_stats(&bs);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.heap_bytes > bs.huge_bytes ? st.heap_bytes - bs.huge_bytes : 0;
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
        mi.ordblks += bs.free_blocks[k];
    mi.hblks = bs.huge_blocks;
    mi.hblkhd = bs.huge_bytes;
    size_t cached_objects = 0;
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        struct kmem_cache *c = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
        struct kmem_cache_stats cs;
        if (c && kmem_cache_get_stats(c, &cs) == 0)
            cached_objects += cs.cached_objects;
    }
    mi.smblks = cached_objects;
    mi.fsmblks = st.cached_bytes;
    mi.uordblks = st.in_use_bytes > bs.huge_bytes ? st.in_use_bytes - bs.huge_bytes : 0;
    if (mi.uordblks > mi.arena)
        mi.uordblks = mi.arena;
    mi.fordblks = mi.arena - mi.uordblks;
    mi.keepcost = bs.free_blocks[BUDDY_MAX_ORDER] * HEAP_EXTENT_SIZE;
    return mi;
}

/* glibc's int version: each field truncated, as glibc does. */
struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m;
    m.arena = (int)m2.arena;
    m.ordblks = (int)m2.ordblks;
    m.smblks = (int)m2.smblks;
    m.hblks = (int)m2.hblks;
    m.hblkhd = (int)m2.hblkhd;
    m.usmblks = (int)m2.usmblks;
    m.fsmblks = (int)m2.fsmblks;
    m.uordblks = (int)m2.uordblks;
    m.fordblks = (int)m2.fordblks;
    m.keepcost = (int)m2.keepcost;
    return m;
}

/* glibc's text on stderr: one "arena" (everything but huge mappings), then the totals. */
void malloc_stats(void)
{
    struct mallinfo2 mi = mallinfo2();
    char buf[512];
    size_t n = heap_fmt(buf, sizeof buf,
                        "Arena 0:\n"
                        "system bytes     = %10zu\n"
                        "in use bytes     = %10zu\n"
                        "Total (incl. mmap):\n"
                        "system bytes     = %10zu\n"
                        "in use bytes     = %10zu\n"
                        "max mmap regions = %10zu\n"
                        "max mmap bytes   = %10zu\n",
                        mi.arena, mi.uordblks, mi.arena + mi.hblkhd, mi.uordblks + mi.hblkhd,
                        mi.hblks, mi.hblkhd);
    fwrite(buf, 1, n, stderr);
}

/* glibc's XML: <sizes> lists the free blocks of each size class (objects cached in
 * magazines and free slots of its slabs), then the free buddy blocks by size; "fast" are the
 * cached objects, "rest" the other free blocks, "mmap" the huge mappings. */
int malloc_info(int options, FILE *fp)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    if (!fp)
        return 0;
    struct slabcache_totals st;
    state_collect(&st, NULL, 0, NULL);
    struct buddy_stats bs;
    buddy_get_stats(&bs);
    char line[256];
    size_t fast_n = 0, fast_b = 0, rest_n = 0, rest_b = 0, from = 1;
    fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        size_t to = kmalloc_class_size(i);
        struct kmem_cache *c = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
        struct kmem_cache_stats cs;
        if (to % MALLOC_ALIGNMENT)
            continue; /* malloc uses the 16-byte multiples only */
        if (c && kmem_cache_get_stats(c, &cs) == 0) {
            size_t used = cs.active_objects + cs.cached_objects;
            size_t slots = cs.total_objects > used ? cs.total_objects - used : 0;
            size_t count = cs.cached_objects + slots;
            fast_n += cs.cached_objects;
            fast_b += cs.cached_objects * cs.object_size;
            rest_n += slots;
            rest_b += slots * cs.object_size;
            if (count) {
                heap_fmt(line, sizeof line,
                         "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
                         from, to, count * cs.object_size, count);
                fputs(line, fp);
            }
        }
        from = to + 1;
    }
    for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
        size_t size = BUDDY_PAGE_SIZE << k;
        if (!bs.free_blocks[k])
            continue;
        rest_n += bs.free_blocks[k];
        rest_b += bs.free_blocks[k] * size;
        heap_fmt(line, sizeof line,
                 "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
                 k ? (size >> 1) + 1 : 1, size, bs.free_blocks[k] * size, bs.free_blocks[k]);
        fputs(line, fp);
    }
    size_t system = st.heap_bytes > bs.huge_bytes ? st.heap_bytes - bs.huge_bytes : 0;
    heap_fmt(line, sizeof line,
             "</sizes>\n<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n"
             "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n",
             fast_n, fast_b, rest_n, rest_b);
    fputs(line, fp);
    heap_fmt(line, sizeof line,
             "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
             "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" "
             "size=\"%zu\"/>\n</heap>\n",
             system, system, system, system);
    fputs(line, fp);
    heap_fmt(line, sizeof line,
             "<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n"
             "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
             "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n",
             fast_n, fast_b, rest_n, rest_b, bs.huge_blocks, bs.huge_bytes);
    fputs(line, fp);
    heap_fmt(line, sizeof line,
             "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
             "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" "
             "size=\"%zu\"/>\n</malloc>\n",
             st.heap_bytes, st.heap_bytes, st.heap_bytes, st.heap_bytes);
    fputs(line, fp);
    return 0;
}

/* glibc's parameters: 1 when accepted, 0 for an unknown parameter or a bad value.
 *   M_TRIM_THRESHOLD  0: freed pages are given back at the next slow path (decay time 0);
 *                     any other size: the default decay time (buddy.h: freed pages are given
 *                     back a decay time after their free, whatever their amount)
 *   M_CHECK_ACTION    bit 2 set: abort after a misuse report (the default); clear: report
 *                     and go on (SLABCACHE_ON_ERROR=report)
 *   M_MXFAST (0 to 160), M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_PERTURB, M_ARENA_TEST,
 *   M_ARENA_MAX: accepted, no effect (no fast bins, no top chunk, blocks above 4 MiB are
 *   always mappings of their own, no arenas: per-thread magazines instead). */
int mallopt(int param, int value)
{
    switch (param) {
    case M_TRIM_THRESHOLD:
        if (value < 0)
            return 0;
        buddy_set_decay_ms(value == 0 ? 0 : (uint32_t)heap_opt_uint(OPT_DECAY_MS));
        return 1;
    case M_CHECK_ACTION:
        report_set_abort((value & 2) != 0);
        return 1;
    case M_MXFAST:
        return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
    case M_TOP_PAD:
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_PERTURB:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
        return 1;
    default:
        return 0;
    }
}

/* Give free memory back: every size class's depot and the calling thread's magazines go
 * back to the slabs, empty slabs to the buddy layer, and free extents to the OS.  1 when
 * memory was returned (glibc's meaning), else 0.  pad is ignored (no top chunk). */
int malloc_trim(size_t pad)
{
    /* glibc's pad keeps that much free memory at the top of the heap: here whole free extents
     * covering pad bytes stay mapped (their pages are still purged). */
    size_t keep = pad / HEAP_EXTENT_SIZE + (pad % HEAP_EXTENT_SIZE != 0);
    return cache_reap_all(keep) != 0;
}
