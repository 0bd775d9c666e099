/* SPDX-License-Identifier: MIT */
/* slab/status.c - the state as text and JSON (slabcache_print_status, SLABCACHE_STATS), and
 * the reports at exit.
 *
 * Every printer formats a line at a time into a stack buffer (heap_fmt) from a copy of the
 * state (state.c), so no allocator lock is held while the line is written: to a FILE
 * (slabcache_print_status; stdio may call malloc, which may be us), or to the report
 * descriptor with write(2) (the exit statistics: stdio may be gone, stderr closed).
 *
 * At start-up one constructor reads SLABCACHE_STATS, SLABCACHE_LEAKS and SLABCACHE_WATCH;
 * if any of them will print at exit it keeps a descriptor for the reports (heap/fmt.h), and
 * it starts the watch.  At exit one destructor prints, in this order: the watch's report,
 * the statistics, the leak report (last, as it may end the process with a status).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "heap/options.h"
#include "slab/internal.h"

#define STATUS_LINE_MAX 512
#define STATUS_JSON_BUF 4096

/* ---------------------------------------------------------------- output */

struct status_out {
    FILE *fp;           /* NULL: the report descriptor */
    const char *prefix; /* before every line ("" for a FILE) */
    bool ok;            /* every write succeeded */
};

static void out_write(struct status_out *o, const char *buf, size_t n)
{
    if (o->fp)
        o->ok &= fwrite(buf, 1, n, o->fp) == n;
    else
        o->ok &= heap_output_write(buf, n);
}

__attribute__((format(printf, 2, 3))) static void out_line(struct status_out *o,
                                                            const char *fmt, ...)
{
    char line[STATUS_LINE_MAX];
    size_t n = heap_fmt(line, sizeof line, "%s", o->prefix);
    va_list ap;
    va_start(ap, fmt);
    n += heap_vfmt(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    out_write(o, line, n);
}

/* "512 B", "3.5 KiB", "12.0 MiB", "1.2 GiB": one decimal, rounded down. */
static const char *fmt_size(char *buf, size_t len, size_t bytes)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    size_t whole = bytes, tenth = 0;
    while (whole >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
        tenth = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        u++;
    }
    if (u == 0)
        heap_fmt(buf, len, "%zu B", bytes);
    else
        heap_fmt(buf, len, "%zu.%zu %s", whole, tenth, unit[u]);
    return buf;
}

/* A percentage with one decimal ("15.2"); heap_fmt has no floating point. */
static const char *fmt_pct(char *buf, size_t len, double pct)
{
    if (!(pct >= 0.0))
        pct = 0.0;
    size_t tenths = (size_t)(pct * 10.0 + 0.5);
    heap_fmt(buf, len, "%zu.%zu", tenths / 10, tenths % 10);
    return buf;
}

/* ---------------------------------------------------------------- text */

static void print_totals(struct status_out *o, const struct slabcache_totals *st)
{
    char a[24], b[24], c[24], d[24], e[24], f[24], g[24], h[24], i[24], j[24], k[8];
    out_line(o,
             "heap %s (sbrk %s, mmap %s), in use %s (%s%%), cached %s, free in slabs %s, "
             "free %s, metadata %s, returned %s, RSS %s",
             fmt_size(a, sizeof a, st->heap_bytes), fmt_size(b, sizeof b, st->sbrk_bytes),
             fmt_size(c, sizeof c, st->mmap_bytes), fmt_size(d, sizeof d, st->in_use_bytes),
             fmt_pct(k, sizeof k, st->efficiency), fmt_size(e, sizeof e, st->cached_bytes),
             fmt_size(f, sizeof f, st->slab_free_bytes), fmt_size(g, sizeof g, st->free_bytes),
             fmt_size(h, sizeof h, st->metadata_bytes), fmt_size(i, sizeof i, st->returned_bytes),
             fmt_size(j, sizeof j, st->rss_bytes));
}

/* Row order: bytes reserved, largest first (insertion sort of indices: qsort may
 * allocate). */
static void order_rows(const struct slabcache_state *st, uint16_t *idx)
{
    for (size_t i = 0; i < st->nr_classes; i++) {
        size_t j = i;
        while (j > 0 && st->classes[idx[j - 1]].bytes_reserved < st->classes[i].bytes_reserved) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = (uint16_t)i;
    }
}

static void print_rows(struct status_out *o, const struct slabcache_state *st, bool all)
{
    uint16_t idx[SLABCACHE_STATE_MAX_CLASSES];
    order_rows(st, idx);
    out_line(o, "  class                %10s %14s %10s %14s %6s %12s %12s", "in use",
             "bytes in use", "cached", "reserved", "eff%", "allocs", "frees");
    for (size_t n = 0; n < st->nr_classes; n++) {
        const struct slabcache_class_state *r = &st->classes[idx[n]];
        if (!all && !r->bytes_reserved && !r->allocs)
            continue;
        char name[KMEM_CACHE_NAME_MAX + 2], pct[8], cached[24], allocs[24], frees[24];
        heap_fmt(name, sizeof name, "%s", r->name);
        size_t len = strlen(name);
        for (; len < 20; len++)
            name[len] = ' ';
        name[len] = '\0';
        bool cache = r->kind == SLABCACHE_CLASS_CACHE;
        heap_fmt(cached, sizeof cached, "%zu", r->blocks_cached);
        heap_fmt(allocs, sizeof allocs, "%zu", r->allocs);
        heap_fmt(frees, sizeof frees, "%zu", r->frees);
        out_line(o, "  %s %10zu %14zu %10s %14zu %6s %12s %12s", name, r->blocks_in_use,
                 r->bytes_in_use, cache ? cached : "-", r->bytes_reserved,
                 fmt_pct(pct, sizeof pct, r->efficiency), cache ? allocs : "-",
                 cache ? frees : "-");
    }
    if (st->totals.caches + 12 > SLABCACHE_STATE_MAX_CLASSES &&
        st->nr_classes == SLABCACHE_STATE_MAX_CLASSES)
        out_line(o, "  ... more caches than rows (%zu), counted in the totals",
                 st->totals.caches);
}

static void print_counters(struct status_out *o)
{
    struct buddy_stats bs;
    buddy_get_stats(&bs);
    char info[256];
    buddy_format_buddyinfo(info, sizeof info);
    char *nl = strchr(info, '\n');
    if (nl)
        *nl = '\0';
    out_line(o, "buddy: %zu extents, %zu free bytes, %zu allocs, %zu frees, %zu splits, "
                "%zu merges, %zu failures, %zu invalid frees",
             bs.extents, bs.free_bytes, bs.allocs, bs.frees, bs.splits, bs.merges, bs.failures,
             bs.invalid_frees);
    out_line(o, "buddyinfo: %s", info);
    struct heap_stats hs;
    heap_get_stats(&hs);
    out_line(o, "heap: %zu extents, %zu free extents, %zu trims, %zu foreign break moves, "
                "%zu sbrk failures, %zu mmap failures, %zu refused by the limit, %zu bytes "
                "stranded",
             hs.extents, hs.free_extents, hs.trims, hs.foreign_moves, hs.sbrk_failures,
             hs.mmap_failures, hs.limit_failures, hs.stranded_bytes);
}

/* A line of the heap map, with the prefix of the others. */
static void put_map_line(const char *line, void *arg)
{
    struct status_out *o = arg;
    char copy[STATUS_LINE_MAX];
    size_t n = strnlen(line, sizeof copy - 1);
    memcpy(copy, line, n);
    copy[n && copy[n - 1] == '\n' ? n - 1 : n] = '\0';
    out_line(o, "%s", copy);
}

struct list_ctx {
    struct status_out *o;
    size_t n, bytes;
};

static void list_block(const struct leak_block_info *b, void *arg)
{
    struct list_ctx *l = arg;
    l->n++;
    l->bytes += b->size;
    out_line(l->o, "  %p %zu bytes, %s", b->start, b->size, b->what);
}

/* The text of verbosity 0 to 4 (slab.h).  st: a snapshot with rows. */
static void print_text(struct status_out *o, const struct slabcache_state *st, int verbosity)
{
    print_totals(o, &st->totals);
    if (verbosity < 1)
        return;
    print_rows(o, st, verbosity >= 2);
    if (verbosity < 2)
        return;
    print_counters(o);
    if (verbosity < 3)
        return;
    heapmap_text(put_map_line, o);
    if (verbosity < 4)
        return;
    struct list_ctx l = {o, 0, 0};
    out_line(o, "live blocks:");
    leak_for_each_block(list_block, &l);
    out_line(o, "%zu live blocks, %zu bytes", l.n, l.bytes);
}

/* The state is large (slab.h): one static copy, filled and printed under this lock, which
 * comes before every allocator lock (state_collect takes them). */
static struct heap_mutex status_lock = HEAP_MUTEX_INITIALIZER;
HEAP_LARGE_BSS static struct slabcache_state status_state; /* status_lock */

void slabcache_print_status(FILE *out, int verbosity)
{
    if (!out)
        return;
    struct status_out o = {out, "", true};
    heap_mutex_lock(&status_lock);
    status_state.nr_classes = 0;
    state_collect(&status_state.totals, verbosity >= 1 ? status_state.classes : NULL,
                  SLABCACHE_STATE_MAX_CLASSES, &status_state.nr_classes);
    print_text(&o, &status_state, verbosity);
    heap_mutex_unlock(&status_lock);
    fflush(out);
}

/* ---------------------------------------------------------------- JSON */

struct json_out {
    struct status_out *o;
    char buf[STATUS_JSON_BUF];
    size_t len;
};

static void json_flush(struct json_out *j)
{
    out_write(j->o, j->buf, j->len);
    j->len = 0;
}

__attribute__((format(printf, 2, 3))) static void json_put(struct json_out *j, const char *fmt,
                                                            ...)
{
    char piece[STATUS_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = heap_vfmt(piece, sizeof piece, fmt, ap);
    va_end(ap);
    if (j->len + n > sizeof j->buf)
        json_flush(j);
    memcpy(j->buf + j->len, piece, n);
    j->len += n;
}

/* A JSON string body (stats_json_escape), for use as an argument. */
static const char *json_str(char *buf, size_t len, const char *s)
{
    stats_json_escape(buf, len, s);
    return buf;
}

static void print_json(struct status_out *o, const struct slabcache_state *st)
{
    static const char *const kinds[] = {"cache", "large", "huge"};
    struct json_out j;
    j.o = o;
    j.len = 0;
    char name[KMEM_CACHE_NAME_MAX * 6 + 8], pct[8];
    json_put(&j, "{\"pid\":%d,\"program\":\"%s\",\"totals\":{", (int)getpid(),
             json_str(name, sizeof name, program_invocation_short_name));
    json_put(&j,
             "\"heap_bytes\":%zu,\"sbrk_bytes\":%zu,\"mmap_bytes\":%zu,\"metadata_bytes\":%zu,"
             "\"in_use_bytes\":%zu,\"cached_bytes\":%zu,\"slab_free_bytes\":%zu,"
             "\"free_bytes\":%zu,\"returned_bytes\":%zu,\"rss_bytes\":%zu,\"efficiency\":%s,"
             "\"caches\":%zu},\"classes\":[",
             st->totals.heap_bytes, st->totals.sbrk_bytes, st->totals.mmap_bytes,
             st->totals.metadata_bytes, st->totals.in_use_bytes, st->totals.cached_bytes,
             st->totals.slab_free_bytes, st->totals.free_bytes, st->totals.returned_bytes,
             st->totals.rss_bytes, fmt_pct(pct, sizeof pct, st->totals.efficiency),
             st->totals.caches);
    for (size_t i = 0; i < st->nr_classes; i++) {
        const struct slabcache_class_state *r = &st->classes[i];
        json_put(&j,
                 "%s{\"name\":\"%s\",\"kind\":\"%s\",\"object_size\":%zu,\"slot_size\":%zu,"
                 "\"blocks_in_use\":%zu,\"bytes_in_use\":%zu,\"blocks_cached\":%zu,"
                 "\"bytes_cached\":%zu,\"bytes_reserved\":%zu,\"slabs\":%zu,\"allocs\":%zu,"
                 "\"frees\":%zu,\"efficiency\":%s}",
                 i ? "," : "", json_str(name, sizeof name, r->name),
                 kinds[r->kind < 3 ? r->kind : 0], r->object_size, r->slot_size,
                 r->blocks_in_use, r->bytes_in_use, r->blocks_cached, r->bytes_cached,
                 r->bytes_reserved, r->slabs, r->allocs, r->frees,
                 fmt_pct(pct, sizeof pct, r->efficiency));
    }
    json_put(&j, "]}\n");
    json_flush(&j);
}

/* ---------------------------------------------------------------- options */

/* SLABCACHE_STATS (heap/options.h): off, on (1), 2 to 4 (more detail), json.  A malformed
 * value was reported by the option table at start-up and reads as off. */
bool stats_option(struct stats_options *out)
{
    out->mode = STATS_OFF;
    out->verbosity = 1;
    if (heap_opt_is(OPT_STATS, "off"))
        return heap_opt_source(OPT_STATS) != HEAP_OPT_FROM_REJECTED;
    if (heap_opt_is(OPT_STATS, "json")) {
        out->mode = STATS_JSON;
        return true;
    }
    /* The words are off|on|2|3|4|json: the index of on to 4 is the verbosity. */
    out->mode = STATS_TEXT;
    out->verbosity = (int)heap_opt_choice(OPT_STATS);
    return true;
}

/* ---------------------------------------------------------------- start-up and exit */

/* The options come from the option table (read once, at start-up, which reports malformed
 * values): at start-up they say whether a descriptor must be kept for the reports (and start
 * the watch), at exit what is printed. */
__attribute__((constructor)) static void status_init(void)
{
    struct stats_options so;
    struct leak_options lo;
    struct watch_options w;
    stats_option(&so);
    leak_option(&lo);
    watch_option(&w);
    heap_output_setup(so.mode != STATS_OFF || lo.kinds || w.interval_ms);
    if (w.interval_ms)
        watch_start(&w);
}

static void stats_at_exit(void)
{
    struct stats_options exit_stats;
    stats_option(&exit_stats);
    if (exit_stats.mode == STATS_OFF)
        return;
    char prefix[40];
    heap_fmt(prefix, sizeof prefix, "slabcache: [%d] ", (int)getpid());
    struct status_out o = {NULL, exit_stats.mode == STATS_JSON ? "" : prefix, true};
    heap_mutex_lock(&status_lock);
    slabcache_get_state(&status_state);
    if (exit_stats.mode == STATS_JSON) {
        print_json(&o, &status_state);
    } else {
        out_line(&o, "statistics of %s at exit", program_invocation_short_name);
        print_text(&o, &status_state, exit_stats.verbosity);
    }
    heap_mutex_unlock(&status_lock);
}

__attribute__((destructor)) static void status_fini(void)
{
    watch_at_exit();
    stats_at_exit();
    struct leak_options lo;
    leak_option(&lo);
    leak_at_exit(&lo);
}
