/* SPDX-License-Identifier: MIT */
/* slab/state.c - the memory manager's state (FastMM's GetMemoryManagerState): a row per
 * size class and per large-block size, and the process totals.
 *
 * One collector serves slabcache_get_state, the status and exit statistics (status.c),
 * glibc's mallinfo2 and malloc_info (malloc.c) and the leak-slope watch (watch.c).  It takes
 * the locks the per-cache statistics take, one cache at a time (kmem_cache_get_stats), then
 * walks the buddy layer's blocks under its lock (buddy_for_each_block), and reads the heap's
 * counters: each part is exact when no thread is inside the allocator, and the totals are
 * clamped so that a racing change never shows a negative remainder.
 *
 * The totals add up: heap_bytes = in_use + cached + slab_free + free (+ blocks of other
 * owners, buddy_alloc's users, counted in slab_free's stead only when present).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "slab/internal.h"

#define STATE_LARGE_ORDERS (BUDDY_MAX_ORDER + 1)

/* /proc/self/statm's resident pages, in bytes; 0 when unreadable.  open/read: no stdio. */
size_t state_rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = buf;
    while (*p && *p != ' ') /* size */
        p++;
    while (*p == ' ')
        p++;
    size_t pages = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        pages = pages * 10 + (size_t)(*p - '0');
    long page = sysconf(_SC_PAGESIZE);
    return pages * (size_t)(page > 0 ? page : 4096);
}

struct block_sums {
    size_t large_blocks[STATE_LARGE_ORDERS]; /* by the power of two of pages that holds them */
    size_t large_bytes[STATE_LARGE_ORDERS];
    size_t huge_blocks, huge_bytes;
    size_t slab_bytes;  /* blocks tagged slab */
    size_t other_bytes; /* blocks of other owners (buddy_alloc users) */
};

static void sum_block(void *head, size_t bytes, unsigned order, uint16_t tag, void *arg)
{
    (void)head;
    struct block_sums *b = arg;
    if (tag == BUDDY_TAG_SLAB) {
        b->slab_bytes += bytes;
    } else if (tag == BUDDY_TAG_LARGE && order == BUDDY_ORDER_HUGE) {
        b->huge_blocks++;
        b->huge_bytes += bytes;
    } else if (tag == BUDDY_TAG_LARGE) {
        /* Runs of pages (BUDDY_ORDER_RUN) go with the order that holds them. */
        int o = buddy_order_for_size(bytes);
        unsigned k = o < 0 ? STATE_LARGE_ORDERS - 1 : (unsigned)o;
        b->large_blocks[k]++;
        b->large_bytes[k] += bytes;
    } else {
        b->other_bytes += bytes;
    }
}

static double percent(size_t part, size_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* "large-64K", "large-4M": the row name of large blocks of up to 2^order pages. */
static void large_name(char *buf, size_t len, unsigned order)
{
    size_t kib = (BUDDY_PAGE_SIZE << order) >> 10;
    if (kib >= 1024)
        heap_fmt(buf, len, "large-%zuM", kib >> 10);
    else
        heap_fmt(buf, len, "large-%zuK", kib);
}

static void cache_row(struct slabcache_class_state *r, const struct kmem_cache_stats *st,
                      size_t slab_bytes)
{
    memset(r, 0, sizeof *r);
    memcpy(r->name, st->name, sizeof r->name);
    r->kind = SLABCACHE_CLASS_CACHE;
    r->object_size = st->object_size;
    r->slot_size = st->slot_size;
    r->blocks_in_use = st->active_objects;
    r->bytes_in_use = st->active_objects * st->object_size;
    r->blocks_cached = st->cached_objects;
    r->bytes_cached = st->cached_objects * st->slot_size;
    r->slabs = st->total_slabs;
    r->bytes_reserved = st->total_slabs * slab_bytes;
    r->allocs = st->allocs;
    r->frees = st->frees;
    r->efficiency = percent(r->bytes_in_use, r->bytes_reserved);
}

void state_collect(struct slabcache_totals *out, struct slabcache_class_state *rows, size_t max,
                   size_t *nr_rows)
{
    memset(out, 0, sizeof *out);
    size_t nr = 0;
    if (!rows)
        max = 0;
    size_t small_in_use = 0, small_cached = 0;
    struct kmem_cache_stats st;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache) {
        if (kmem_cache_get_stats(c, &st) != 0)
            continue;
        out->caches++;
        small_in_use += st.active_objects * st.object_size;
        small_cached += st.cached_objects * st.slot_size;
        if (nr < max)
            cache_row(&rows[nr++], &st, c->slab_bytes);
    }
    heap_mutex_unlock(&cache_list_lock);

    struct block_sums b;
    memset(&b, 0, sizeof b);
    buddy_for_each_block(sum_block, &b);
    size_t large_bytes = 0;
    for (unsigned k = 0; k < STATE_LARGE_ORDERS; k++) {
        size_t bytes = b.large_bytes[k];
        large_bytes += bytes;
        if (!b.large_blocks[k] || nr >= max)
            continue;
        struct slabcache_class_state *r = &rows[nr++];
        memset(r, 0, sizeof *r);
        large_name(r->name, sizeof r->name, k);
        r->kind = SLABCACHE_CLASS_LARGE;
        r->object_size = r->slot_size = bytes / b.large_blocks[k]; /* the mean */
        r->blocks_in_use = b.large_blocks[k];
        r->bytes_in_use = r->bytes_reserved = bytes;
        r->efficiency = percent(bytes, bytes);
    }
    if (b.huge_blocks && nr < max) {
        struct slabcache_class_state *r = &rows[nr++];
        memset(r, 0, sizeof *r);
        memcpy(r->name, "huge", 5);
        r->kind = SLABCACHE_CLASS_HUGE;
        r->blocks_in_use = b.huge_blocks;
        r->bytes_in_use = r->bytes_reserved = b.huge_bytes;
        r->efficiency = percent(b.huge_bytes, b.huge_bytes);
    }

    struct heap_stats hs;
    heap_get_stats(&hs);
    out->sbrk_bytes = hs.sbrk_bytes;
    out->mmap_bytes = hs.mmap_bytes;
    out->heap_bytes = hs.sbrk_bytes + hs.mmap_bytes;
    out->metadata_bytes = hs.meta_bytes;
    out->returned_bytes = hs.returned_bytes;
    out->in_use_bytes = small_in_use + large_bytes + b.huge_bytes;
    out->cached_bytes = small_cached;
    /* Slabs hold the small objects in use, the cached ones, and the rest. */
    size_t slab_used = small_in_use + small_cached;
    out->slab_free_bytes = b.slab_bytes > slab_used ? b.slab_bytes - slab_used : 0;
    size_t in_blocks = b.slab_bytes + large_bytes + b.huge_bytes + b.other_bytes;
    out->free_bytes = out->heap_bytes > in_blocks ? out->heap_bytes - in_blocks : 0;
    out->rss_bytes = state_rss_bytes();
    out->efficiency = percent(out->in_use_bytes, out->heap_bytes);
    if (nr_rows)
        *nr_rows = nr;
}

int slabcache_get_state(struct slabcache_state *out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    state_collect(&out->totals, out->classes, SLABCACHE_STATE_MAX_CLASSES, &out->nr_classes);
    return 0;
}
