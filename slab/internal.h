/* SPDX-License-Identifier: MIT */
/* slab/internal.h - prototypes shared by the files of slab/, grouped by the file that
 * defines them (not an API; the structures are in types.h, the inline fast paths in
 * fastpath.h, debug.c's hooks in debug.h).
 *
 * The files are floors: each calls only the ones below it, never back up (checked by
 * //tests/slab:layering_test, which reads the object files' symbols):
 *
 *   stats.c  leak.c  heapmap.c      statistics, leak reports, the heap map: clients of the
 *        \     |     /              cache list
 *          cache.c                  the cache's life and front door: create, destroy,
 *             |                     shrink, validate, init, fork, kmem_cache_alloc/free/bulk
 *         magazine.c                per-thread magazines, the depot, the thread tables
 *             |
 *           slab.c                  slabs: geometry, lists, bitmaps, batches, the free check
 *             |
 *           debug.c                 debug options and hooks (debug.h)
 *             |
 *          report.c                 what happens after a misuse report
 *             |
 *          ptrset.c                 sorted pointer sets (no calls at all)
 *
 * kmalloc.c and malloc.c (//slab:kmalloc) sit above all of them.  Every layer formats with
 * heap/fmt.h and locks with heap/mutex.h.
 */
#ifndef SLABCACHE_SLAB_INTERNAL_H
#define SLABCACHE_SLAB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/fmt.h"
#include "slab/introspect.h"
#include "slab/types.h"

/* ---------------------------------------------------------------- top floors
 * state.c (the memory manager's state), status.c (its printers and the exit reports),
 * watch.c (the leak-slope watch), introspect.c (the root a watcher reads) sit over stats.c,
 * leak.c and heapmap.c. */

/* status.c */
/* SLABCACHE_STATS: off, text at a verbosity (1 to 4) or JSON.  False when malformed (then
 * off; the option table reported it at start-up). */
enum stats_mode { STATS_OFF = 0, STATS_TEXT, STATS_JSON };
struct stats_options {
    enum stats_mode mode;
    int verbosity;
};
bool stats_option(struct stats_options *out);

/* watch.c */
extern struct slabcache_watch_published *watch_published; /* the fits for slabtop, or NULL */
/* SLABCACHE_WATCH=interval[,file=PATH]: the interval in milliseconds (0: off) and the path of
 * the plot written at exit ("" for none).  False when malformed (reported; then off). */
#define WATCH_PATH_MAX 4096
struct watch_options {
    unsigned interval_ms;
    char file[WATCH_PATH_MAX];
};
bool watch_option(struct watch_options *out);
/* Start the sampling thread (at start-up); the exit report and plot. */
void watch_start(const struct watch_options *o);
void watch_at_exit(void);

/* state.c */
/* The state (slab.h) of the process: the totals, and up to max rows (rows may be NULL). */
void state_collect(struct slabcache_totals *t, struct slabcache_class_state *rows, size_t max,
                   size_t *nr_rows);
/* The process's resident set in bytes (/proc/self/statm), 0 when unreadable. */
size_t state_rss_bytes(void);

/* ---------------------------------------------------------------- stats.c, leak.c, heapmap.c */

/* stats.c */
/* s as a JSON string body into buf (quotes, backslashes and control characters escaped; cut
 * to fit len); returns the length written. */
size_t stats_json_escape(char *buf, size_t len, const char *s);

/* heapmap.c */
/* The text of slabcache_heap_map, a line at a time to put(line, arg), with no allocator lock
 * held (put may use stdio). */
void heapmap_text(void (*put)(const char *line, void *arg), void *arg);

/* leak.c */
struct leak_options {
    unsigned kinds;    /* SLABCACHE_LEAK_* to report at exit; 0: none */
    bool exit_status;  /* end the process with exit_code when blocks were lost */
    int exit_code;
};
/* SLABCACHE_LEAKS and SLABCACHE_LEAK_EXIT_CODE from the option table.  False when the value
 * was malformed (then off; the table reported it at start-up). */
bool leak_option(struct leak_options *out);
/* The exit report; may end the process (_exit) with the status asked for. */
void leak_at_exit(const struct leak_options *o);
/* Every live block (objects, large and huge blocks), in address order, with leak_lock held
 * and no other allocator lock: fn may use stdio. */
struct leak_block_info {
    const void *start;
    size_t size;
    const char *what; /* "cache kmalloc-64 (64 bytes each)", "large blocks of 65536 bytes" */
    const void *site; /* allocation site (caches with U), else NULL */
};
void leak_for_each_block(void (*fn)(const struct leak_block_info *b, void *arg), void *arg);

/* ---------------------------------------------------------------- cache.c */
extern struct heap_mutex cache_list_lock;   /* lock 2 (types.h) */
extern struct kmem_cache *cache_list;       /* live caches, newest first (cache_list_lock) */

/* Once per process, before the first cache: the thread-table key, the fork handlers and the
 * reclaim before ENOMEM (buddy_set_reclaim). */
void cache_init_once(void);
/* The one shrink behind kmem_cache_shrink, slabcache_reap and malloc_trim: the calling
 * thread's magazines and the depot of every cache back to the slabs, every empty slab to the
 * buddy layer, then buddy_trim(keep_extents).  Returns the bytes given back to the OS. */
size_t cache_reap_all(size_t keep_extents);
/* kmem_cache_create_args with magazine table id `id` (< SLAB_FIXED_IDS) when the cache has
 * magazines.  If a live cache already holds the id (another thread created it first), that
 * cache is returned and nothing is created: two threads racing to create the same fixed-id
 * cache get one cache, so the loser never ends up without magazines. */
struct kmem_cache *cache_create_fixed_id(const char *name, size_t size,
                                         const struct kmem_cache_args *args,
                                         unsigned int flags, uint32_t id);
/* kmem_cache_create_args whose slabs carry `extra` more per-slot bitmaps (at most
 * SLAB_MAX_EXTRA_BITMAPS) after the in-use one, for a layer above that keeps a bit per slot:
 * zeroed when a slab is made, never touched by this layer again, found with
 * slab_extra_bitmap() and walked under the cache's lock with slab_walk(). */
struct kmem_cache *cache_create_with_bitmaps(const char *name, size_t size,
                                             const struct kmem_cache_args *args,
                                             unsigned int flags, unsigned extra);
/* cache_create_with_bitmaps with the smallest slabs that still serve well: the lowest order
 * with at least SLAB_MIN_OBJECTS slots and slot efficiency >= SLAB_SMALL_EFFICIENCY (else the
 * usual choice).  For a layer above that empties its caches often (a pool's destroy): each
 * reset and check walks a slab's header and bitmaps, which small slabs keep short. */
struct kmem_cache *cache_create_with_bitmaps_small(const char *name, size_t size,
                                                   const struct kmem_cache_args *args,
                                                   unsigned int flags, unsigned extra);
/* kmem_cache_alloc / kmem_cache_free on behalf of a caller elsewhere (kmalloc, malloc):
 * `caller` is what debug caches record and report as the call site (SLAB_STORE_USER). */
void *cache_alloc_with_caller(struct kmem_cache *c, unsigned int flags, const void *caller);
void cache_free_with_caller(struct kmem_cache *c, void *obj, const void *caller);
/* The same with the entry point the program called (kfree, free, realloc, ...), which every
 * report names. */
void cache_free_op(struct kmem_cache *c, void *obj, const char *op, const void *caller);
#define SLAB_CALLER __builtin_return_address(0)
/* The live cache owning the slab whose buddy block starts at head, or NULL. */
struct kmem_cache *cache_of_block(const void *head);

/* ---------------------------------------------------------------- magazine.c */
extern struct heap_mutex magazine_tables_lock; /* lock 3 (types.h) */
/* The table every thread starts on (and returns to at exit): no entry has a cache or a
 * window, so every fast-path lookup misses; read-only (its hints stay zero). */
extern struct magazine_table magazine_table_empty;

/* The thread-table key (thread exit returns a thread's magazines); cache_init_once. */
void magazine_init(void);
/* Objects per magazine for a slot size (kmem_cache_args.magazine_size overrides). */
unsigned magazine_default_size(size_t slot);
/* An allocation when the inline pop missed: the calling thread's magazines (refilled from
 * the depot or the slabs), or the slabs directly for caches without magazines.  c is live.
 * NULL with errno ENOMEM (counted in alloc_failures). */
void *magazine_alloc_slow(struct kmem_cache *c, const void *caller);
/* The free of an object that passed slab_check_free_fast when the inline push missed
 * (magazine full, entry not set up, obj on top: a double free, reported), or directly to the
 * slabs for caches without magazines.  caller: the call site in the program. */
void magazine_free_slow(struct kmem_cache *c, void *obj, const void *caller);
/* Called first by kmem_cache_thread_flush, for a layer above with per-thread caches of its
 * own (pool/); fn runs with no lock held.  One hook; a second call replaces it. */
void magazine_set_thread_flush_hook(void (*fn)(void));
/* Memory given back on a schedule, from the slow paths here (a depot exchange, a refill from
 * or a return to the slabs) with no lock held, never from the fast paths: the buddy layer's
 * decay (buddy_tick), and once per SLAB_REAP_MS of the buddy clock (buddy_now_ms) one call of
 * `fn`, which reaps every cache's depot (cache.c registers it at init: this file cannot see
 * the list of caches). */
#define SLAB_REAP_MS 250
void magazine_set_reaper(void (*fn)(void));
/* The schedule's tick: cheap (a thread-local countdown, then a coarse clock read) unless a
 * decay pass or a reap is due.  Called with no lock held from the slow paths here and from
 * kmalloc's large-block paths, never from a fast path. */
void magazine_tick(void);
/* Up to n objects popped from the calling thread's loaded magazine of c into objs (bulk
 * allocation); returns how many. */
size_t magazine_alloc_bulk(struct kmem_cache *c, void **objs, size_t n);
/* The calling thread's magazines of c back to the slabs (kept for reuse): shrink. */
void magazine_flush_self(struct kmem_cache *c);
/* The reap's part of the calling thread: when it has neither allocated from nor freed to c
 * since its previous call, its magazines of c go back to the slabs (magazine_flush_self);
 * otherwise the call notes the thread's count.  True when the thread's entry was idle. */
bool magazine_reap_self(struct kmem_cache *c);
/* Every thread's magazines of c back to the slabs and the entries released: destroy. */
void magazine_flush_all_threads(struct kmem_cache *c);
/* Empty the depot of c: objects back to the slabs, magazines freed. */
void magazine_depot_drain(struct kmem_cache *c);
/* The depot's working-set reap: the magazines of c that stayed in the depot for a whole
 * interval since the last reap (its fewest full and empty ones) go back: objects to the
 * slabs, magazines freed.  Returns the objects returned; *idle (unless NULL) says whether no
 * full magazine was taken from the depot in the interval.  depot_lock taken inside. */
size_t magazine_depot_reap(struct kmem_cache *c, bool *idle);
/* Sum of per-thread counters for c and the objects cached (locks taken inside). */
void magazine_counts(struct kmem_cache *c, size_t *allocs, size_t *frees, size_t *cached);
/* Up to max pointers held in magazines and the depot of c (locks taken inside; racy against
 * threads that are running, exact when they are not); returns the total count, which may
 * exceed max. */
size_t magazine_collect_cached(struct kmem_cache *c, void **out, size_t max);
/* kmem_cache_validate of a live cache: takes locks 3 to 5, checks the slabs
 * (slab_validate_locked), the depot and every thread's magazines.  0, or -1 after a report. */
int magazine_validate(struct kmem_cache *c);
/* fork child, after every lock was released: retire the tables of the threads that do not
 * exist in the child (their cached objects go back to the slabs). */
void magazine_fork_child(void);
/* The address of the list head of thread tables, for the introspection root. */
struct magazine_table **magazine_table_list_address(void);

/* ---------------------------------------------------------------- slab.c */
/* Slab geometry of c from its slot_size, align and extra_bitmaps: order, slots per slab,
 * bitmap words, offset of slot 0, colours, reciprocal.  0, or -1 when nothing fits. */
int slab_compute_geometry(struct kmem_cache *c);
/* The per-process secrets of slab canaries and free marks (slab_keys, fastpath.h); called
 * once, before the first cache is made. */
void slab_keys_init(void);
/* Take up to n objects from the slabs into objs (cache->lock taken inside), recording
 * `caller` in debug caches; returns how many (errno ENOMEM when fewer than n). */
size_t slab_alloc_batch(struct kmem_cache *c, void **objs, size_t n, const void *caller);
/* The same for an array whose owner keeps its length in *count (a magazine): *count is set
 * to the objects taken so far under cache->lock, and *net (when not NULL: the owner's count
 * of objects moved in minus moved out) grows with it, so a fork sees every object either in
 * the array or in its slab, never in neither, and the statistics derived from both agree. */
/* lean: at least one object, and then only what needs no page the slab has not touched yet
 * and no other slab (a thread's first refills of a class: a short-lived program's objects
 * should share pages, not reserve a magazine's worth of them). */
size_t slab_alloc_batch_with_count(struct kmem_cache *c, void **objs, size_t n,
                                   uint32_t *count, size_t *net, bool lean);
/* Return n validated objects to their slabs, zero *count and take n from *net (as above;
 * either may be NULL) under cache->lock; empty slabs beyond max_empty go back to the buddy
 * layer. */
void slab_free_batch_with_count(struct kmem_cache *c, void *const *objs, size_t n,
                                uint32_t *count, size_t *net);
/* One validated object back to its slab from a magazine-less path that knows its caller
 * (debug hooks, fault injection, tracing); false when a debug check refused it (reported). */
bool slab_free_one(struct kmem_cache *c, void *obj, const void *caller);
/* Release empty slabs beyond `keep` (cache->lock taken inside). */
void slab_release_empty(struct kmem_cache *c, size_t keep);
/* Destroy: unlink every slab of c (cache->lock taken inside) and return them as a chain for
 * slab_destroy_chain; *live = slots still in use, the first `max` of them in addrs
 * (*shown). */
struct slab *slab_detach_all(struct kmem_cache *c, void **addrs, size_t max, size_t *live,
                             size_t *shown);
/* Destruct the free slots of every slab of a detached chain and give the slabs back. */
void slab_destroy_chain(struct kmem_cache *c, struct slab *chain);
/* Check that obj is a slot of cache c currently in use; on failure report ("double free",
 * "invalid free", "wrong cache") and return false.  The out-of-line half of
 * slab_check_free_fast (fastpath.h), called when it says no. */
bool slab_check_free_slow(struct kmem_cache *c, const void *obj, const char *op);
/* The same for a size query (ksize, malloc_usable_size): obj must be an object of c held by
 * the program; anything else is reported as "not an allocated block" (or "already free")
 * and false returned. */
bool slab_check_size_query_slow(struct kmem_cache *c, const void *obj, const char *op);
/* Every slab of c and the cache's slab counters (cache->lock held).  0, or -1 after a
 * report. */
int slab_validate_locked(struct kmem_cache *c);
/* obj, found in `where` (a magazine, a popped run), is an in-use slot of c (cache->lock
 * held).  0, or -1 after a report. */
int slab_validate_cached_obj_locked(struct kmem_cache *c, const void *obj, const char *where);
/* Where an address lives in the slab layer: found by slab_lookup_slot. */
struct slab_slot {
    struct kmem_cache *cache;  /* the slab's cache */
    struct slab *slab;         /* the header */
    uint32_t idx;              /* slot index in the slab */
    bool inuse;                /* its in-use bit (relaxed load: a snapshot) */
};
/* Is p exactly the start of a slot of a live slab?  Reads only memory known to be ours (the
 * granule bit, the buddy page map, then the header it names), takes no lock, and fills *out
 * when the answer is yes.  For layers above that are handed a pointer and must find its
 * cache (a pool's free and mark); the caller still checks that out->cache is one of its own. */
bool slab_lookup_slot(const void *p, struct slab_slot *out);
/* Give every slot of c back at once, in time proportional to the slabs, not the objects:
 * every slab becomes empty (in-use and extra bitmaps cleared); up to `keep` of them (at most
 * max_empty) stay on the empty list for reuse, the others go back to the buddy layer.  For a
 * layer above that frees all of a cache's objects together (a pool's destroy); caches with
 * a constructor or debug state keep none (their slots are not in a state to hand out
 * again).  No magazine or depot may hold objects of c (use caches without magazines).
 * Returns the slots that were in use. */
size_t slab_reset_all(struct kmem_cache *c, size_t keep);
/* Take a run of up to max consecutive free slots of one slab, for a layer above that hands
 * them out by bumping a pointer (a pool's thread caches): *first is the first slot, the
 * others follow at c->slot_size steps.  The run starts at the slab's first free slot and
 * goes on through the free slots after it, across bitmap words.  A slab is made when none
 * has a free slot.  Returns the run's length; 0 (errno ENOMEM) when out of memory.
 * Caches without magazines and debug state only (a bump pointer skips the debug hooks). */
size_t slab_alloc_run(struct kmem_cache *c, size_t max, void **first);
/* Slots of one bitmap word of one slab, for slab_free_words. */
struct slab_word_free {
    struct slab *slab;
    uint32_t word;             /* bitmap word index */
    uint64_t bits;             /* bit i: slot word * 64 + i */
};
/* Give the slots of n words back to their slabs under one cache->lock, a word at a time (a
 * layer above that finds garbage as bitmap words, like a pool's sweep): for a cache without
 * magazines or debug state.  A bit whose slot is not in use (or never handed out) is a
 * double free: reported and skipped; the words of a slab whose header is damaged are
 * dropped after the report.  Empty slabs beyond max_empty go back to the buddy layer.
 * Returns the slots freed. */
size_t slab_free_words(struct kmem_cache *c, const struct slab_word_free *v, size_t n);
/* Call fn for every slab of c (full, partial, then empty list) with cache->lock held: for a
 * layer above that keeps per-slot bitmaps (cache_create_with_bitmaps).  fn must not
 * allocate from or free to c, nor take a lock that comes before cache->lock. */
void slab_walk(struct kmem_cache *c, void (*fn)(struct kmem_cache *c, struct slab *s, void *arg),
               void *arg);

/* ---------------------------------------------------------------- report.c */
/* After a misuse report: abort() unless SLABCACHE_ON_ERROR=report. */
void report_misuse(void);
/* Tests: read SLABCACHE_ON_ERROR again at the next misuse report. */
void report_reset_options(void);
/* What follows a misuse report from now on: abort (true) or go on (mallopt M_CHECK_ACTION). */
void report_set_abort(bool abort_after);

/* ---------------------------------------------------------------- ptrset.c */
/* Sets of pointers as arrays sorted by address, without allocating. */
void ptrset_sort(void **a, size_t n); /* in place (heapsort: qsort may allocate) */
/* Index of the first element >= p in the sorted set of n. */
size_t ptrset_lower_bound(const void *const *set, size_t n, const void *p);
bool ptrset_contains(const void *const *set, size_t n, const void *p);

#endif
