/* SPDX-License-Identifier: MIT */
/* slab/stats.c - per-cache statistics: the struct, /proc/slabinfo 2.1 text and JSON.
 *
 * Every printer is a client of kmem_cache_get_stats(): one snapshot per cache, formatted into
 * a stack buffer, then handed to stdio with no allocator lock held (stdio may call malloc,
 * which may be us).  Caches are visited by index under cache_list_lock, one at a time.
 */
#include <errno.h>
#include <string.h>

#include "heap/fmt.h"
#include "slab/internal.h"

#define STATS_LINE_MAX 1024

int kmem_cache_get_stats(struct kmem_cache *c, struct kmem_cache_stats *out)
{
    if (!c || !out || c->magic != KMEM_CACHE_MAGIC) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    size_t allocs, frees, cached;
    magazine_counts(c, &allocs, &frees, &cached);
    memcpy(out->name, c->name, sizeof out->name);
    out->object_size = c->object_size;
    out->slot_size = c->slot_size;
    out->align = c->align;
    out->objects_per_slab = c->objs_per_slab;
    out->pages_per_slab = (size_t)1 << c->slab_order;
    out->magazine_size = c->mag_size;
    out->flags = c->flags;
    out->allocs = allocs;
    out->frees = frees;
    out->cached_objects = cached;
    out->alloc_failures = __atomic_load_n(&c->alloc_failures, __ATOMIC_RELAXED);
    out->invalid_frees = __atomic_load_n(&c->invalid_frees, __ATOMIC_RELAXED);

    heap_mutex_lock(&c->depot_lock);
    out->depot_full = c->nr_depot_full;
    out->depot_empty = c->nr_depot_empty;
    heap_mutex_unlock(&c->depot_lock);

    heap_mutex_lock(&c->lock);
    size_t inuse = c->inuse_total;
    out->total_slabs = c->full.count + c->partial.count + c->empty.count;
    out->active_slabs = c->full.count + c->partial.count;
    out->empty_slabs = c->empty.count;
    out->total_objects = out->total_slabs * c->objs_per_slab;
    out->slabs_created = c->slabs_created;
    out->slabs_freed = c->slabs_freed;
    out->ctor_calls = c->ctor_calls;
    out->dtor_calls = c->dtor_calls;
    heap_mutex_unlock(&c->lock);
    out->active_objects = inuse > cached ? inuse - cached : 0;
    return 0;
}

/* Snapshot of the index-th live cache; false past the end. */
static bool stats_nth(size_t index, struct kmem_cache_stats *st)
{
    bool found = false;
    heap_mutex_lock(&cache_list_lock);
    struct kmem_cache *c = cache_list;
    for (size_t i = 0; c && i < index; i++)
        c = c->next_cache;
    if (c)
        found = kmem_cache_get_stats(c, st) == 0;
    heap_mutex_unlock(&cache_list_lock);
    return found;
}

static size_t pad_field(char *buf, size_t len, size_t pos, size_t width, size_t value)
{
    char num[24];
    size_t n = heap_fmt(num, sizeof num, "%zu", value);
    while (n < width && pos + 1 < len) {
        buf[pos++] = ' ';
        width--;
    }
    return pos + heap_fmt(buf + pos, len - pos, "%s", num);
}

static size_t format_slabinfo_line(char *buf, size_t len, const struct kmem_cache_stats *st)
{
    size_t pos = heap_fmt(buf, len, "%s", st->name);
    size_t name_w = strlen(st->name);
    for (; name_w < 17 && pos + 1 < len; name_w++)
        buf[pos++] = ' ';
    pos = pad_field(buf, len, pos, 7, st->active_objects);
    pos = pad_field(buf, len, pos, 7, st->total_objects);
    pos = pad_field(buf, len, pos, 7, st->slot_size);
    pos = pad_field(buf, len, pos, 5, st->objects_per_slab);
    pos = pad_field(buf, len, pos, 5, st->pages_per_slab);
    pos += heap_fmt(buf + pos, len - pos, "%s", " : tunables");
    pos = pad_field(buf, len, pos, 5, st->magazine_size);
    pos = pad_field(buf, len, pos, 5, st->magazine_size / 2);
    pos = pad_field(buf, len, pos, 5, 0);
    pos += heap_fmt(buf + pos, len - pos, "%s", " : slabdata");
    pos = pad_field(buf, len, pos, 7, st->active_slabs);
    pos = pad_field(buf, len, pos, 7, st->total_slabs);
    pos = pad_field(buf, len, pos, 7, st->cached_objects);
    pos += heap_fmt(buf + pos, len - pos, "%s", "\n");
    return pos < len ? pos : len - 1;
}

void kmem_cache_print_slabinfo(FILE *out)
{
    static const char header[] =
        "slabinfo - version: 2.1\n"
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
        " : tunables <limit> <batchcount> <sharedfactor>"
        " : slabdata <active_slabs> <num_slabs> <sharedavail>\n";
    if (!out)
        return;
    fwrite(header, 1, sizeof header - 1, out);
    struct kmem_cache_stats st;
    char line[STATS_LINE_MAX];
    for (size_t i = 0; stats_nth(i, &st); i++) {
        size_t n = format_slabinfo_line(line, sizeof line, &st);
        fwrite(line, 1, n, out);
    }
    fflush(out);
}

size_t stats_json_escape(char *buf, size_t len, const char *s)
{
    size_t pos = 0;
    for (; *s && pos + 7 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)ch;
        } else if (ch < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(buf + pos, "\\u00", 4);
            buf[pos + 4] = hex[ch >> 4];
            buf[pos + 5] = hex[ch & 15];
            pos += 6;
        } else {
            buf[pos++] = (char)ch;
        }
    }
    buf[pos] = '\0';
    return pos;
}

static size_t format_json_cache(char *buf, size_t len, const struct kmem_cache_stats *st)
{
    char name[KMEM_CACHE_NAME_MAX * 6 + 8];
    stats_json_escape(name, sizeof name, st->name);
    const struct {
        const char *key;
        size_t value;
    } fields[] = {
        {"object_size", st->object_size},
        {"slot_size", st->slot_size},
        {"align", st->align},
        {"objects_per_slab", st->objects_per_slab},
        {"pages_per_slab", st->pages_per_slab},
        {"active_objects", st->active_objects},
        {"total_objects", st->total_objects},
        {"active_slabs", st->active_slabs},
        {"total_slabs", st->total_slabs},
        {"empty_slabs", st->empty_slabs},
        {"cached_objects", st->cached_objects},
        {"allocs", st->allocs},
        {"frees", st->frees},
        {"slabs_created", st->slabs_created},
        {"slabs_freed", st->slabs_freed},
        {"alloc_failures", st->alloc_failures},
        {"magazine_size", st->magazine_size},
        {"depot_full", st->depot_full},
        {"depot_empty", st->depot_empty},
        {"ctor_calls", st->ctor_calls},
        {"dtor_calls", st->dtor_calls},
        {"invalid_frees", st->invalid_frees},
        {"flags", st->flags},
    };
    size_t pos = heap_fmt(buf, len, "{\"name\":\"%s\"", name);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        pos += heap_fmt(buf + pos, len - pos, ",\"%s\":%zu", fields[i].key, fields[i].value);
    pos += heap_fmt(buf + pos, len - pos, "%s", "}");
    return pos;
}

void kmem_cache_print_json(FILE *out)
{
    if (!out)
        return;
    fputs("{\"caches\":[", out);
    struct kmem_cache_stats st;
    char line[STATS_LINE_MAX];
    for (size_t i = 0; stats_nth(i, &st); i++) {
        if (i)
            fputc(',', out);
        size_t n = format_json_cache(line, sizeof line, &st);
        fwrite(line, 1, n, out);
    }
    fputs("]}\n", out);
    fflush(out);
}

void kmem_cache_for_each(void (*fn)(struct kmem_cache *cache, void *arg), void *arg)
{
    if (!fn)
        return;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache)
        fn(c, arg);
    heap_mutex_unlock(&cache_list_lock);
}
