/* SPDX-License-Identifier: MIT */
/* slab/introspect.c - the introspection root (slab/introspect.h), read by tools/slabtop from
 * another process.
 *
 * A constant object but for one field: the address of the thread-table list head, which
 * magazine.c keeps to itself, is filled in by a constructor (a reader that comes before it
 * sees 0 and counts no thread's cached objects).  Nothing here runs on any allocation path.
 */
#include <stddef.h>

#include "slab/internal.h"
#include "slab/introspect.h"

#define FIELD(type, field) ((uint32_t)offsetof(type, field))

struct slabcache_introspection slabcache_introspection_root = {
    .magic = {SLABCACHE_ROOT_MAGIC0, SLABCACHE_ROOT_MAGIC1},
    .version = SLABCACHE_ROOT_VERSION,
    .size = sizeof(struct slabcache_introspection),
    .self = (uint64_t)(uintptr_t)&slabcache_introspection_root,
    .cache_list = (uint64_t)(uintptr_t)&cache_list,
    .table_list = 0,
    .radix_root = (uint64_t)(uintptr_t)heap_radix_root,
    .watch = (uint64_t)(uintptr_t)&watch_published,
    .k =
        {
            .cache_magic = KMEM_CACHE_MAGIC,
            .extent_magic = HEAP_EXTENT_MAGIC,
            .max_caches = SLAB_MAX_CACHES,
            .page_shift = BUDDY_PAGE_SHIFT,
            .extent_shift = HEAP_EXTENT_SHIFT,
            .radix_l1_bits = HEAP_RADIX_L1_BITS,
            .radix_l2_bits = HEAP_RADIX_L2_BITS,
            .max_order = BUDDY_MAX_ORDER,
            .pages_per_extent = (uint32_t)BUDDY_PAGES_PER_EXTENT,
            .tag_slab = BUDDY_TAG_SLAB,
            .tag_large = BUDDY_TAG_LARGE,
            .page_alloc_head = BUDDY_PAGE_ALLOC_HEAD,
            .page_free_head = BUDDY_PAGE_FREE_HEAD,
            .kind_split = HEAP_KIND_SPLIT,
            .kind_whole = HEAP_KIND_WHOLE,
            .source_sbrk = HEAP_SRC_SBRK,
            .source_mmap = HEAP_SRC_MMAP,
        },
    .l =
        {
            .cache =
                {
                    .size = sizeof(struct kmem_cache),
                    .magic = FIELD(struct kmem_cache, magic),
                    .id = FIELD(struct kmem_cache, id),
                    .object_size = FIELD(struct kmem_cache, object_size),
                    .slot_size = FIELD(struct kmem_cache, slot_size),
                    .objs_per_slab = FIELD(struct kmem_cache, objs_per_slab),
                    .slab_order = FIELD(struct kmem_cache, slab_order),
                    .mag_size = FIELD(struct kmem_cache, mag_size),
                    .name = FIELD(struct kmem_cache, name),
                    .name_size = KMEM_CACHE_NAME_MAX,
                    .next_cache = FIELD(struct kmem_cache, next_cache),
                    .flags = FIELD(struct kmem_cache, flags),
                    .slab_bytes = FIELD(struct kmem_cache, slab_bytes),
                    .full_count = FIELD(struct kmem_cache, full.count),
                    .partial_count = FIELD(struct kmem_cache, partial.count),
                    .empty_count = FIELD(struct kmem_cache, empty.count),
                    .inuse_total = FIELD(struct kmem_cache, inuse_total),
                    .allocs = FIELD(struct kmem_cache, allocs),
                    .frees = FIELD(struct kmem_cache, frees),
                    .depot_full = FIELD(struct kmem_cache, depot_full),
                    .nr_depot_full = FIELD(struct kmem_cache, nr_depot_full),
                    .ctor = FIELD(struct kmem_cache, ctor),
                    .ctor_simple = FIELD(struct kmem_cache, ctor_simple),
                },
            .table =
                {
                    .size = sizeof(struct magazine_table),
                    .next = FIELD(struct magazine_table, next),
                    .ent = FIELD(struct magazine_table, ent),
                },
            .entry =
                {
                    .size = sizeof(struct magazine_entry),
                    .top = FIELD(struct magazine_entry, top),
                    .lo = FIELD(struct magazine_entry, lo),
                    .hi = FIELD(struct magazine_entry, hi),
                    .cache = FIELD(struct magazine_entry, cache),
                    .loaded = FIELD(struct magazine_entry, loaded),
                    .previous = FIELD(struct magazine_entry, previous),
                    .frees = FIELD(struct magazine_entry, frees),
                    .net_in = FIELD(struct magazine_entry, net_in),
                },
            .magazine =
                {
                    .count = FIELD(struct magazine, count),
                    .size = FIELD(struct magazine, size),
                    .next = FIELD(struct magazine, next),
                    .objs = FIELD(struct magazine, objs),
                },
            .extent =
                {
                    .size = sizeof(struct heap_extent),
                    .base = FIELD(struct heap_extent, base),
                    .bytes = FIELD(struct heap_extent, size),
                    .source = FIELD(struct heap_extent, source),
                    .kind = FIELD(struct heap_extent, kind),
                    .tag = FIELD(struct heap_extent, tag),
                    .owner = FIELD(struct heap_extent, owner),
                    .magic = FIELD(struct heap_extent, magic),
                },
            .page =
                {
                    .size = sizeof(struct buddy_page),
                    .order = FIELD(struct buddy_page, order),
                    .state = FIELD(struct buddy_page, state),
                    .tag = FIELD(struct buddy_page, tag),
                },
        },
};

__attribute__((constructor)) static void introspect_init(void)
{
    __atomic_store_n(&slabcache_introspection_root.table_list,
                     (uint64_t)(uintptr_t)magazine_table_list_address(), __ATOMIC_RELEASE);
}
