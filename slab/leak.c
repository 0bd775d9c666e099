/* SPDX-License-Identifier: MIT */
/* slab/leak.c - leak reports (at exit with SLABCACHE_LEAKS, or on demand) and expected leaks.
 *
 * A leak is a slot whose bit is set in its slab and which no magazine or depot holds (objects
 * cached there were freed by the program), minus the pointers registered as expected leaks.
 * Leaks are grouped without malloc: a fixed open-addressing table in static storage keyed by
 * (cache, allocation site) -- the site is known for caches with U (SLAB_STORE_USER), else it
 * is NULL and the group is the cache (one object size).  Cached pointers are copied into a
 * heap_meta_alloc buffer and sorted (ptrset.c), so each slot costs one binary search.
 *
 * Locks: leak_lock serialises reports and guards the expected-leak table; a report takes it
 * first, then cache_list_lock and each cache's locks in the order of types.h.  Functions
 * named *_locked assert their locks in debug builds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "slab/debug.h"
#include "slab/internal.h"

#define LEAK_GROUPS 1024u        /* power of two */
#define LEAK_FIRST_ADDRS 4
#define LEAK_GROUPS_SHOWN 40
#define LEAK_DEFAULT_EXIT_CODE 23

struct leak_group {
    const struct kmem_cache *cache; /* NULL: free entry */
    const void *site;
    size_t count, bytes;
    uint32_t size;
    char name[KMEM_CACHE_NAME_MAX];
    const void *first[LEAK_FIRST_ADDRS];
};

static struct heap_mutex leak_lock = HEAP_MUTEX_INITIALIZER; /* lock 1 (types.h) */
#define leak_assert_locked() heap_mutex_assert_held(&leak_lock)
static struct leak_group groups[LEAK_GROUPS];           /* leak_lock */
static size_t nr_groups, ungrouped;                     /* leak_lock */
static const void *expected[SLABCACHE_EXPECTED_LEAKS_MAX]; /* sorted; leak_lock */
static size_t nr_expected;                              /* leak_lock */

/* ---------------------------------------------------------------- expected leaks */

void slabcache_register_expected_leak(const void *p)
{
    if (!p)
        return;
    heap_mutex_lock(&leak_lock);
    size_t i = ptrset_lower_bound(expected, nr_expected, p);
    if (!(i < nr_expected && expected[i] == p)) {
        if (nr_expected == SLABCACHE_EXPECTED_LEAKS_MAX) {
            heap_mutex_unlock(&leak_lock);
            heap_fmt_line("slabcache_register_expected_leak(%p): table full (%zu entries); "
                          "ignored",
                          p, (size_t)SLABCACHE_EXPECTED_LEAKS_MAX);
            return;
        }
        memmove(&expected[i + 1], &expected[i], (nr_expected - i) * sizeof expected[0]);
        expected[i] = p;
        nr_expected++;
    }
    heap_mutex_unlock(&leak_lock);
}

void slabcache_unregister_expected_leak(const void *p)
{
    heap_mutex_lock(&leak_lock);
    size_t i = ptrset_lower_bound(expected, nr_expected, p);
    if (i < nr_expected && expected[i] == p) {
        memmove(&expected[i], &expected[i + 1], (nr_expected - i - 1) * sizeof expected[0]);
        nr_expected--;
    }
    heap_mutex_unlock(&leak_lock);
}

/* ---------------------------------------------------------------- grouping (leak_lock) */

static void group_add_locked(const struct kmem_cache *c, const void *site, const void *obj)
{
    leak_assert_locked();
    uintptr_t h =
        ((uintptr_t)c >> 6) * 0x9e3779b97f4a7c15ull ^ (uintptr_t)site * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    for (size_t probe = 0; probe < LEAK_GROUPS; probe++) {
        struct leak_group *g = &groups[(h + probe) & (LEAK_GROUPS - 1)];
        if (!g->cache) {
            g->cache = c;
            g->site = site;
            g->size = c->object_size;
            memcpy(g->name, c->name, sizeof g->name);
            nr_groups++;
        } else if (g->cache != c || g->site != site) {
            continue;
        }
        if (g->count < LEAK_FIRST_ADDRS)
            g->first[g->count] = obj;
        g->count++;
        g->bytes += c->object_size;
        return;
    }
    ungrouped++;
}

/* Group the leaks of one cache; returns how many (cache_list_lock and leak_lock held). */
static size_t group_leaks_of_cache_locked(struct kmem_cache *c, size_t *expected_skipped)
{
    leak_assert_locked();
    heap_mutex_assert_held(&cache_list_lock);
    size_t ncached = c->mag_size ? magazine_collect_cached(c, NULL, 0) : 0;
    size_t cap = ncached ? ncached + 256 : 0; /* room for frees racing with us */
    void **cached = cap ? heap_meta_alloc(cap * sizeof(void *)) : NULL;
    if (cached) {
        ncached = magazine_collect_cached(c, cached, cap);
        if (ncached > cap)
            ncached = cap;
        ptrset_sort(cached, ncached);
    } else {
        ncached = 0;
    }
    size_t leaks = 0;
    heap_mutex_lock(&c->lock);
    const struct slab_list_head *lists[] = {&c->full, &c->partial};
    for (size_t l = 0; l < 2; l++) {
        for (struct slab *s = lists[l]->first; s; s = s->next) {
            for (uint32_t i = 0; i < c->objs_per_slab; i++) {
                if (!((s->bitmap[i / 64] >> (i % 64)) & 1))
                    continue;
                const void *obj = s->objs + (size_t)i * c->slot_size;
                if (ptrset_contains((const void *const *)cached, ncached, obj))
                    continue;
                if (ptrset_contains(expected, nr_expected, obj)) {
                    (*expected_skipped)++;
                    continue;
                }
                const void *site =
                    (c->debug & SLAB_DBG_USER) ? debug_track_of(c, obj)->alloc_site : NULL;
                group_add_locked(c, site, obj);
                leaks++;
            }
        }
    }
    heap_mutex_unlock(&c->lock);
    if (cached)
        heap_meta_free(cached, cap * sizeof(void *));
    return leaks;
}

static void group_report(const struct leak_group *g)
{
    char addrs[LEAK_FIRST_ADDRS * 20 + 8];
    size_t pos = 0;
    size_t shown = g->count < LEAK_FIRST_ADDRS ? g->count : LEAK_FIRST_ADDRS;
    for (size_t i = 0; i < shown; i++)
        pos += heap_fmt(addrs + pos, sizeof addrs - pos, " %p", g->first[i]);
    const char *more = g->count > shown ? " ..." : "";
    if (g->site) {
        char site[200];
        debug_format_site(site, sizeof site, g->site);
        heap_fmt_line("  %zu objects (%zu bytes) of cache %s (%u bytes each) allocated by %s; "
                      "first:%s%s",
                      g->count, g->bytes, g->name, g->size, site, addrs, more);
    } else {
        heap_fmt_line("  %zu objects (%zu bytes) of cache %s (%u bytes each); first:%s%s",
                      g->count, g->bytes, g->name, g->size, addrs, more);
    }
}

size_t slabcache_leak_report(void)
{
    size_t total = 0, bytes = 0, skipped = 0;
    heap_mutex_lock(&leak_lock);
    memset(groups, 0, sizeof groups);
    nr_groups = ungrouped = 0;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache)
        total += group_leaks_of_cache_locked(c, &skipped);
    heap_mutex_unlock(&cache_list_lock);
    if (total) {
        /* Largest groups first: move them to the front, selection style (few are shown). */
        size_t n = 0;
        for (size_t i = 0; i < LEAK_GROUPS; i++)
            if (groups[i].cache) {
                bytes += groups[i].bytes;
                groups[n++] = groups[i];
            }
        heap_fmt_line("leak report: %zu objects (%zu bytes) still allocated, in %zu groups "
                      "(not counted: objects cached in magazines, %zu expected leaks)",
                      total, bytes + 0, n, skipped);
        size_t shown = n < LEAK_GROUPS_SHOWN ? n : LEAK_GROUPS_SHOWN;
        for (size_t i = 0; i < shown; i++) {
            size_t best = i;
            for (size_t j = i + 1; j < n; j++)
                if (groups[j].bytes > groups[best].bytes)
                    best = j;
            struct leak_group t = groups[i];
            groups[i] = groups[best];
            groups[best] = t;
            group_report(&groups[i]);
        }
        if (n > shown || ungrouped)
            heap_fmt_line("  ... %zu more groups, %zu objects not grouped (table full)",
                          n - shown, ungrouped);
    }
    heap_mutex_unlock(&leak_lock);
    return total;
}

/* ---------------------------------------------------------------- at exit */

/* SLABCACHE_LEAKS=1: report at exit.  SLABCACHE_LEAKS=exit, or SLABCACHE_LEAK_EXIT_CODE=N:
 * also end the process with status N (default 23) when leaks were found, for CI.  Runs as a
 * destructor, after main returned or exit() was called: stdio is flushed before _exit. */
__attribute__((destructor)) static void leak_report_at_exit(void)
{
    const char *v = getenv("SLABCACHE_LEAKS");
    if (!v || !*v || strcmp(v, "0") == 0)
        return;
    size_t leaks = slabcache_leak_report();
    const char *code_env = getenv("SLABCACHE_LEAK_EXIT_CODE");
    if (!leaks || (strcmp(v, "exit") != 0 && !(code_env && *code_env)))
        return;
    int code = LEAK_DEFAULT_EXIT_CODE;
    if (code_env && *code_env) {
        int n = 0;
        for (const char *p = code_env; *p >= '0' && *p <= '9' && n < 256; p++)
            n = n * 10 + (*p - '0');
        if (n > 0 && n < 256)
            code = n;
    }
    fflush(NULL);
    _exit(code);
}
