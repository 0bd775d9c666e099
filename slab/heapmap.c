/* SPDX-License-Identifier: MIT */
/* slab/heapmap.c - the heap map (FastMM's GetMemoryMap) and an object dump (MDX dumpMemory).
 *
 * The text map gives each block's resident pages (mincore(2), taken with the snapshot; called
 * directly, not through the heap's OS table, because it only reads residency) and
 * ends with where the resident memory is: slabs (against the bytes of the objects they hold),
 * large blocks and free blocks.  That is the question a peak-RSS comparison with another
 * allocator asks (docs/limits.md, section 4).
 *
 * A map is taken in two steps so that no allocator lock is held while stdio runs (stdio may
 * call malloc, which may be us): under cache_list_lock and the buddy and heap locks, every
 * extent of the radix map is copied into a snapshot from heap_meta_alloc (its page map, and
 * for each slab head the owning cache's index and the slab's use); then, with no lock held,
 * the snapshot is printed as text or as an SVG picture with one cell per 4 KiB page.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/fmt.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define MAP_NO_ASAN __attribute__((no_sanitize_address))
#else
#define MAP_NO_ASAN
#endif

#define MAP_MAX_CACHES 256
#define MAP_SVG_COLS 64     /* pages per row: 256 KiB */
#define MAP_SVG_CELL 8      /* pixels */

struct map_extent {
    uintptr_t base;
    size_t size;
    uint8_t source, kind;
    uint16_t tag;
    struct buddy_page pages[BUDDY_PAGES_PER_EXTENT];
    uint16_t cache_idx[BUDDY_PAGES_PER_EXTENT]; /* slab heads: 1 + index in caches[]; else 0 */
    uint32_t inuse[BUDDY_PAGES_PER_EXTENT];     /* slab heads: objects in use */
    unsigned char res[BUDDY_PAGES_PER_EXTENT];  /* mincore(2): bit 0 = page resident */
    bool res_known;                             /* mincore succeeded */
    size_t whole_resident;                      /* resident pages of a huge (whole) extent */
};

struct map_cache {
    const struct kmem_cache *cache;
    char name[KMEM_CACHE_NAME_MAX];
    uint32_t objs_per_slab, object_size;
};

struct map_snapshot {
    size_t nr_ext, cap_ext, nr_caches;
    size_t meta_bytes;
    struct map_cache caches[MAP_MAX_CACHES];
    struct map_extent ext[];
};

static size_t map_cache_index(struct map_snapshot *sn, const struct kmem_cache *c)
{
    for (size_t i = 0; i < sn->nr_caches; i++)
        if (sn->caches[i].cache == c)
            return i + 1;
    return 0;
}

static void snap_extent(struct heap_extent *e, void *arg)
{
    struct map_snapshot *sn = arg;
    if (sn->nr_ext == sn->cap_ext)
        return;
    struct map_extent *m = &sn->ext[sn->nr_ext++];
    m->base = e->base;
    m->size = e->size;
    m->source = e->source;
    m->kind = e->kind;
    m->tag = e->tag;
    m->whole_resident = 0;
    if (e->kind == HEAP_KIND_WHOLE) {
        /* A huge block: its resident pages count with the other blocks', in chunks of a
         * page map's worth (the block may span many extents' worth of pages). */
        for (size_t off = 0; off < e->size; off += BUDDY_PAGES_PER_EXTENT << BUDDY_PAGE_SHIFT) {
            size_t len = e->size - off < (BUDDY_PAGES_PER_EXTENT << BUDDY_PAGE_SHIFT)
                             ? e->size - off
                             : BUDDY_PAGES_PER_EXTENT << BUDDY_PAGE_SHIFT;
            if (mincore((void *)(e->base + off), len, m->res) != 0)
                break;
            for (size_t p = 0; p < len >> BUDDY_PAGE_SHIFT; p++)
                m->whole_resident += m->res[p] & 1;
        }
        return;
    }
    if (e->kind != HEAP_KIND_SPLIT || !e->owner)
        return;
    /* The buddy extent record starts with its page map (buddy.c). */
    memcpy(m->pages, e->owner, sizeof m->pages);
    size_t npages = e->size >> BUDDY_PAGE_SHIFT;
    if (npages > BUDDY_PAGES_PER_EXTENT)
        npages = BUDDY_PAGES_PER_EXTENT;
    m->res_known = mincore((void *)e->base, npages << BUDDY_PAGE_SHIFT, m->res) == 0;
    for (size_t p = 0; p < BUDDY_PAGES_PER_EXTENT; p++) {
        if (m->pages[p].state != BUDDY_PAGE_ALLOC_HEAD || m->pages[p].tag != BUDDY_TAG_SLAB)
            continue;
        const struct slab *s = (const struct slab *)(m->base + (p << BUDDY_PAGE_SHIFT));
        struct kmem_cache *owner = slab_owner(s);
        if (!owner)
            continue;
        m->cache_idx[p] = (uint16_t)map_cache_index(sn, owner);
        m->inuse[p] = s->inuse;
    }
}

static struct map_snapshot *snapshot_take(size_t *bytes)
{
    size_t cap = heap_for_each_extent(NULL, NULL) + 4;
    *bytes = sizeof(struct map_snapshot) + cap * sizeof(struct map_extent);
    struct map_snapshot *sn = heap_meta_alloc(*bytes);
    if (!sn)
        return NULL;
    sn->cap_ext = cap;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c && sn->nr_caches < MAP_MAX_CACHES;
         c = c->next_cache) {
        struct map_cache *mc = &sn->caches[sn->nr_caches++];
        mc->cache = c;
        memcpy(mc->name, c->name, sizeof mc->name);
        mc->objs_per_slab = c->objs_per_slab;
        mc->object_size = c->object_size;
    }
    buddy_lock_all();
    heap_for_each_extent(snap_extent, sn);
    buddy_unlock_all();
    heap_mutex_unlock(&cache_list_lock);
    struct heap_stats hs;
    heap_get_stats(&hs);
    sn->meta_bytes = hs.meta_bytes;
    return sn;
}

static const char *tag_name(uint16_t tag)
{
    switch (tag) {
    case BUDDY_TAG_SLAB:
        return "slab";
    case BUDDY_TAG_LARGE:
        return "large block (kmalloc)";
    case BUDDY_TAG_USER:
        return "buddy block (user)";
    case BUDDY_TAG_POOL:
        return "large block (kmem_pool)";
    default:
        return "block";
    }
}

/* Pages of the block whose head is page p of the snapshot: 2^order for a buddy block; a run
 * (order BUDDY_ORDER_RUN, any length, no alignment) is its head and the tails after it. */
static size_t block_pages(const struct buddy_page *pages, size_t p, size_t npages)
{
    if (pages[p].order <= BUDDY_MAX_ORDER)
        return (size_t)1 << pages[p].order;
    size_t q = p + 1;
    while (q < npages && pages[q].state == BUDDY_PAGE_ALLOC_TAIL &&
           pages[q].order == BUDDY_ORDER_RUN)
        q++;
    return q - p;
}

/* Resident pages among [p, p + n) of an extent (0 when mincore failed). */
static size_t resident_pages(const struct map_extent *m, size_t p, size_t n)
{
    size_t r = 0;
    if (m->res_known)
        for (size_t i = p; i < p + n; i++)
            r += m->res[i] & 1;
    return r;
}

void heapmap_text(void (*put)(const char *line, void *arg), void *arg)
{
    size_t bytes;
    struct map_snapshot *sn = snapshot_take(&bytes);
    if (!sn) {
        put("slabcache heap map: out of memory for the snapshot\n", arg);
        return;
    }
    char line[256];
    size_t res_slab = 0, res_large = 0, res_free = 0, slab_obj_bytes = 0;
    put("slabcache heap map (pages of 4 KiB; resident = in RAM now, mincore)\n", arg);
    for (size_t i = 0; i < sn->nr_ext; i++) {
        const struct map_extent *m = &sn->ext[i];
        if (m->kind == HEAP_KIND_SPLIT)
            heap_fmt(line, sizeof line, "extent %p size %zu KiB %s buddy\n", (void *)m->base,
                     m->size >> 10, m->source == HEAP_SRC_SBRK ? "sbrk" : "mmap");
        else
            heap_fmt(line, sizeof line,
                     "extent %p size %zu KiB %s huge (one dedicated block) %zu pages %zu "
                     "resident\n",
                     (void *)m->base, m->size >> 10, m->source == HEAP_SRC_SBRK ? "sbrk" : "mmap",
                     m->size >> BUDDY_PAGE_SHIFT, m->whole_resident);
        put(line, arg);
        res_large += m->whole_resident;
        if (m->kind != HEAP_KIND_SPLIT)
            continue;
        size_t npages = m->size >> BUDDY_PAGE_SHIFT;
        if (npages > BUDDY_PAGES_PER_EXTENT)
            npages = BUDDY_PAGES_PER_EXTENT;
        for (size_t p = 0; p < npages;) {
            const struct buddy_page *pg = &m->pages[p];
            size_t run = block_pages(m->pages, p, npages);
            if (pg->state == BUDDY_PAGE_FREE_HEAD) {
                /* merge consecutive free blocks into one line */
                size_t q = p + run;
                while (q < npages && m->pages[q].state == BUDDY_PAGE_FREE_HEAD)
                    q += block_pages(m->pages, q, npages);
                size_t r = resident_pages(m, p, q - p);
                res_free += r;
                heap_fmt(line, sizeof line, "  %p %4zu pages %4zu resident  free\n",
                         (void *)(m->base + (p << BUDDY_PAGE_SHIFT)), q - p, r);
                p = q;
            } else if (pg->state == BUDDY_PAGE_ALLOC_HEAD) {
                size_t ci = m->cache_idx[p];
                size_t r = resident_pages(m, p, run);
                if (pg->tag == BUDDY_TAG_SLAB && ci) {
                    const struct map_cache *mc = &sn->caches[ci - 1];
                    res_slab += r;
                    slab_obj_bytes += (size_t)m->inuse[p] * mc->object_size;
                    heap_fmt(line, sizeof line,
                             "  %p %4zu pages %4zu resident  slab of cache %s: %u/%u objects "
                             "of %u bytes in use\n",
                             (void *)(m->base + (p << BUDDY_PAGE_SHIFT)), run, r, mc->name,
                             m->inuse[p], mc->objs_per_slab, mc->object_size);
                } else {
                    if (pg->tag == BUDDY_TAG_SLAB)
                        res_slab += r;
                    else
                        res_large += r;
                    heap_fmt(line, sizeof line, "  %p %4zu pages %4zu resident  %s\n",
                             (void *)(m->base + (p << BUDDY_PAGE_SHIFT)), run, r,
                             tag_name(pg->tag));
                }
                p += run;
            } else {
                heap_fmt(line, sizeof line, "  %p   page map entry %u (tail?)\n",
                         (void *)(m->base + (p << BUDDY_PAGE_SHIFT)), (unsigned)pg->state);
                p++;
            }
            put(line, arg);
        }
    }
    heap_fmt(line, sizeof line, "metadata: %zu KiB mapped (cache structs, magazines, page "
                                   "maps)\n",
             sn->meta_bytes >> 10);
    put(line, arg);
    heap_fmt(line, sizeof line,
             "resident: %zu KiB in slabs (holding %zu KiB of objects, cached ones "
             "included), %zu KiB in other blocks, %zu KiB in free blocks\n",
             res_slab * (BUDDY_PAGE_SIZE >> 10), slab_obj_bytes >> 10,
             res_large * (BUDDY_PAGE_SIZE >> 10), res_free * (BUDDY_PAGE_SIZE >> 10));
    put(line, arg);
    heap_meta_free(sn, bytes);
}

static void put_file(const char *line, void *arg)
{
    fputs(line, arg);
}

void slabcache_heap_map(FILE *out)
{
    if (!out)
        return;
    heapmap_text(put_file, out);
    fflush(out);
}

/* A distinct colour per cache index (golden-angle hues). */
static void map_cache_colour(size_t idx, char *buf, size_t len)
{
    unsigned hue = (unsigned)((idx * 137) % 360);
    heap_fmt(buf, len, "hsl(%u,65%%,50%%)", hue);
}

void slabcache_heap_map_svg(FILE *out)
{
    if (!out)
        return;
    size_t bytes;
    struct map_snapshot *sn = snapshot_take(&bytes);
    if (!sn)
        return;
    const int cell = MAP_SVG_CELL, cols = MAP_SVG_COLS;
    int rows = 0;
    for (size_t i = 0; i < sn->nr_ext; i++)
        rows += sn->ext[i].kind == HEAP_KIND_SPLIT ? (int)(BUDDY_PAGES_PER_EXTENT / cols) + 2 : 3;
    size_t meta_pages = sn->meta_bytes >> BUDDY_PAGE_SHIFT;
    rows += (int)((meta_pages + (size_t)cols - 1) / (size_t)cols) + 2;
    int legend_rows = (int)sn->nr_caches + 5;
    int width = cols * cell + 320;
    int height = (rows + 1) * cell + 16;
    if (legend_rows * 14 + 20 > height)
        height = legend_rows * 14 + 20;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"monospace\" font-size=\"11\">\n"
            "<title>slabcache heap map: one cell per 4 KiB page</title>\n",
            width, height);
    int y = 4;
    char colour[40];
    for (size_t i = 0; i < sn->nr_ext; i++) {
        const struct map_extent *m = &sn->ext[i];
        fprintf(out, "<text x=\"0\" y=\"%d\">extent %p %zu KiB</text>\n", y + 10,
                (void *)m->base, m->size >> 10);
        y += 2 * cell;
        if (m->kind != HEAP_KIND_SPLIT) { /* a bar below its label */
            fprintf(out, "<rect x=\"0\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#9467bd\">"
                         "<title>huge block, %zu KiB, %zu pages resident</title></rect>\n",
                    y, cols * cell, cell - 1, m->size >> 10, m->whole_resident);
            y += cell;
            continue;
        }
        const char *fill = "#e0e0e0";
        const char *what = "free";
        for (size_t p = 0; p < BUDDY_PAGES_PER_EXTENT; p++) {
            const struct buddy_page *pg = &m->pages[p];
            size_t head = pg->order <= BUDDY_MAX_ORDER ? p & ~(((size_t)1 << pg->order) - 1)
                                                       : BUDDY_PAGES_PER_EXTENT; /* a run */
            if (pg->state == BUDDY_PAGE_FREE_HEAD || pg->state == BUDDY_PAGE_FREE_TAIL) {
                fill = "#e0e0e0";
                what = "free";
            } else if (pg->tag == BUDDY_TAG_SLAB && head < BUDDY_PAGES_PER_EXTENT &&
                       m->cache_idx[head]) {
                map_cache_colour(m->cache_idx[head], colour, sizeof colour);
                fill = colour;
                what = sn->caches[m->cache_idx[head] - 1].name;
            } else if (pg->tag == BUDDY_TAG_LARGE) {
                fill = "#d62728";
                what = "large block";
            } else {
                fill = "#8c564b";
                what = "other block";
            }
            fprintf(out,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                    "<title>%p %s</title></rect>\n",
                    (int)(p % (size_t)cols) * cell, y + (int)(p / (size_t)cols) * cell, cell - 1,
                    cell - 1, fill, (void *)(m->base + (p << BUDDY_PAGE_SHIFT)), what);
        }
        y += (int)(BUDDY_PAGES_PER_EXTENT / (size_t)cols) * cell;
    }
    fprintf(out, "<text x=\"0\" y=\"%d\">metadata %zu KiB</text>\n", y + 10,
            sn->meta_bytes >> 10);
    y += 2 * cell;
    for (size_t p = 0; p < meta_pages; p++)
        fprintf(out,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#1f77b4\"/>\n",
                (int)(p % (size_t)cols) * cell, y + (int)(p / (size_t)cols) * cell, cell - 1,
                cell - 1);
    /* legend */
    int lx = cols * cell + 16, ly = 14;
    const struct {
        const char *fill, *label;
    } fixed[] = {{"#e0e0e0", "free"},
                 {"#d62728", "large block (kmalloc)"},
                 {"#8c564b", "other buddy block"},
                 {"#9467bd", "huge block"},
                 {"#1f77b4", "metadata"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++, ly += 14)
        fprintf(out,
                "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">%s</text>\n",
                lx, ly - 9, fixed[i].fill, lx + 14, ly, fixed[i].label);
    for (size_t i = 0; i < sn->nr_caches; i++, ly += 14) {
        map_cache_colour(i + 1, colour, sizeof colour);
        fprintf(out,
                "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">slab: %s</text>\n",
                lx, ly - 9, colour, lx + 14, ly, sn->caches[i].name);
    }
    fputs("</svg>\n", out);
    fflush(out);
    heap_meta_free(sn, bytes);
}

/* ---------------------------------------------------------------- dump */

MAP_NO_ASAN static void dump_line(char *line, size_t len, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t pos = heap_fmt(line, len, "%p: ", (const void *)p);
    for (size_t i = 0; i < 16; i++) {
        if (pos + 4 >= len)
            break;
        if (i < n) {
            line[pos++] = hex[p[i] >> 4];
            line[pos++] = hex[p[i] & 15];
        } else {
            line[pos++] = ' ';
            line[pos++] = ' ';
        }
        line[pos++] = ' ';
        if (i == 7)
            line[pos++] = ' ';
    }
    line[pos++] = '|';
    for (size_t i = 0; i < n && pos + 3 < len; i++)
        line[pos++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
    line[pos++] = '|';
    line[pos++] = '\n';
    line[pos] = '\0';
}

void slabcache_dump(FILE *out, const void *p, size_t len)
{
    if (!out || !p)
        return;
    char line[160];
    struct buddy_block_info info;
    if (buddy_lookup(p, &info) && info.tag == BUDDY_TAG_SLAB) {
        struct kmem_cache *c = cache_of_block(info.head);
        if (c) {
            const struct slab *s = info.head;
            size_t off = (size_t)((const char *)p - s->objs);
            size_t idx = (const char *)p >= s->objs ? off / c->slot_size : 0;
            bool used = idx < c->objs_per_slab && ((s->bitmap[idx / 64] >> (idx % 64)) & 1);
            heap_fmt(line, sizeof line,
                     "%p: cache %s, slot %zu at %p (+%zu), object size %u, slot size %u, "
                     "%s\n",
                     p, c->name, idx, (void *)(s->objs + idx * c->slot_size),
                     off - idx * c->slot_size, c->object_size, c->slot_size,
                     used ? "in use" : "free");
            fputs(line, out);
        }
    } else if (buddy_lookup(p, &info)) {
        heap_fmt(line, sizeof line, "%p: %s at %p, %zu bytes\n", p, tag_name(info.tag),
                 info.head, info.size);
        fputs(line, out);
    }
    const unsigned char *b = p;
    for (size_t off = 0; off < len; off += 16) {
        dump_line(line, sizeof line, b + off, len - off < 16 ? len - off : 16);
        fputs(line, out);
    }
    fflush(out);
}
