/* SPDX-License-Identifier: MIT */
/* slab/introspect.h - the introspection root: what a watcher in another process (tools/slabtop)
 * needs to read a running program's allocator state with process_vm_readv, and nothing more.
 *
 * The library exports one object, `slabcache_introspection_root` (slab/introspect.c): a magic,
 * a layout version, the addresses of the few variables everything hangs from (the list of
 * caches, the list of per-thread magazine tables, the heap's radix root, the watch's published
 * fits) and a table of the sizes and byte offsets of the fields a reader uses in each
 * structure.  A reader finds the root through /proc/PID/maps and the ELF symbol table of the
 * mapped library (or executable, for static links), or, in a stripped binary, by scanning the
 * writable mappings for the magic followed by the root's own address.
 *
 * Why this shape: the program pays nothing for being watched (no shared memory, no thread,
 * no counter on any path; the root is a constant object), takes no lock a watcher could hold,
 * and needs no cooperation beyond having slabcache loaded.  The reader tolerates torn reads
 * of structures that change under it: it checks every magic, bounds every count and list
 * walk, never follows a pointer whose read failed, and retries a snapshot that came out
 * inconsistent.  The offsets decouple the reader from this build's struct layouts: a tool
 * built from another commit reads the fields where this library says they are, and refuses
 * a root whose version it does not know.
 *
 * Only fixed-width types here: the header is shared with tools/slabtop, which does not link
 * the library.  Everything is native-endian, 64-bit pointers.
 */
#ifndef SLABCACHE_SLAB_INTROSPECT_H
#define SLABCACHE_SLAB_INTROSPECT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLABCACHE_ROOT_MAGIC0 0x6568636162616c73ull /* "slabcache" ... */
#define SLABCACHE_ROOT_MAGIC1 0x31746f6f722d2d65ull /* ... "e--root1" */
#define SLABCACHE_ROOT_VERSION 1u
#define SLABCACHE_ROOT_SYMBOL "slabcache_introspection_root"

/* Byte offsets (and sizes where a reader needs them) of the fields read in each structure. */
struct slabcache_root_layout {
    struct {                      /* struct kmem_cache (slab/types.h) */
        uint32_t size, magic, id, object_size, slot_size, objs_per_slab, slab_order, mag_size;
        uint32_t name, name_size, next_cache, flags, slab_bytes;
        uint32_t full_count, partial_count, empty_count, inuse_total;
        uint32_t allocs, frees, depot_full, nr_depot_full, ctor, ctor_simple;
    } cache;
    struct {                      /* struct magazine_table */
        uint32_t size, next, ent;
    } table;
    struct {                      /* struct magazine_entry */
        uint32_t size, top, lo, hi, cache, loaded, previous, frees, net_in;
    } entry;
    struct {                      /* struct magazine */
        uint32_t count, size, next, objs;
    } magazine;
    struct {                      /* struct heap_extent (heap/heap.h) */
        uint32_t size, base, bytes, source, kind, tag, owner, magic;
    } extent;
    struct {                      /* struct buddy_page (buddy/buddy.h): the page map */
        uint32_t size, order, state, tag;
    } page;
};

/* Constants a reader needs to interpret what it reads. */
struct slabcache_root_constants {
    uint32_t cache_magic, extent_magic;
    uint32_t max_caches;          /* entries of a magazine table (the last is a sentinel) */
    uint32_t page_shift, extent_shift, radix_l1_bits, radix_l2_bits;
    uint32_t max_order, pages_per_extent;
    uint32_t tag_slab, tag_large;
    uint32_t page_alloc_head, page_free_head;
    uint32_t kind_split, kind_whole, source_sbrk, source_mmap;
};

struct slabcache_introspection {
    uint64_t magic[2];            /* SLABCACHE_ROOT_MAGIC0, SLABCACHE_ROOT_MAGIC1 */
    uint32_t version;             /* SLABCACHE_ROOT_VERSION */
    uint32_t size;                /* sizeof (struct slabcache_introspection) */
    uint64_t self;                /* the root's own address (confirms a find by scanning) */
    uint64_t cache_list;          /* address of `struct kmem_cache *cache_list` */
    uint64_t table_list;          /* address of the list head of magazine tables (0 until the
                                     first cache is made) */
    uint64_t radix_root;          /* heap_radix_root: struct heap_extent *[1 << l1_bits] */
    uint64_t watch;               /* address of `struct slabcache_watch_published *` (NULL
                                     unless SLABCACHE_WATCH is on) */
    struct slabcache_root_constants k;
    struct slabcache_root_layout l;
};

/* The root itself (slab/introspect.c), exported by libslabcache.so. */
extern struct slabcache_introspection slabcache_introspection_root;

/* The leak-slope watch's fits after its latest sample (slab/watch.c), for slabtop's trend
 * column.  Written by the watch thread without a lock: a reader checks the magic and bounds
 * nr, and may see a row of the previous sample. */
#define SLABCACHE_WATCH_MAGIC 0x6863746177637373ull /* "sscwatch" */
#define SLABCACHE_WATCH_SERIES 192
struct slabcache_watch_fit {
    char name[32];                /* a class, "total" or "rss" */
    double slope_per_min;         /* bytes per minute */
    double confidence;            /* P(slope > 0), 0..1 */
    double last;                  /* the latest sample, bytes */
    uint32_t points;
    uint32_t rising;              /* beyond the noise (never for rss) */
};
struct slabcache_watch_published {
    uint64_t magic;               /* SLABCACHE_WATCH_MAGIC */
    uint32_t nr;                  /* rows of fit[] in use */
    uint32_t unused;
    uint64_t samples;
    double interval_seconds, span_seconds;
    struct slabcache_watch_fit fit[SLABCACHE_WATCH_SERIES];
};

#ifdef __cplusplus
}
#endif
#endif
