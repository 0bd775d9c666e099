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
#include "slab/types.h"

/* ---------------------------------------------------------------- cache.c */
extern struct heap_mutex cache_list_lock;   /* lock 2 (types.h) */
extern struct kmem_cache *cache_list;       /* live caches, newest first (cache_list_lock) */

/* Once per process, before the first cache: the thread-table key and the fork handlers. */
void cache_init_once(void);
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
/* kmem_cache_alloc / kmem_cache_free on behalf of a caller elsewhere (kmalloc, malloc):
 * `caller` is what debug caches record and report as the call site (SLAB_STORE_USER). */
void *cache_alloc_with_caller(struct kmem_cache *c, unsigned int flags, const void *caller);
void cache_free_with_caller(struct kmem_cache *c, void *obj, const void *caller);
#define SLAB_CALLER __builtin_return_address(0)
/* The live cache owning the slab whose buddy block starts at head, or NULL. */
struct kmem_cache *cache_of_block(const void *head);

/* ---------------------------------------------------------------- magazine.c */
extern struct heap_mutex magazine_tables_lock; /* lock 3 (types.h) */

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
/* Up to n objects popped from the calling thread's loaded magazine of c into objs (bulk
 * allocation); returns how many. */
size_t magazine_alloc_bulk(struct kmem_cache *c, void **objs, size_t n);
/* The calling thread's magazines of c back to the slabs (kept for reuse): shrink. */
void magazine_flush_self(struct kmem_cache *c);
/* Every thread's magazines of c back to the slabs and the entries released: destroy. */
void magazine_flush_all_threads(struct kmem_cache *c);
/* Empty the depot of c: objects back to the slabs, magazines freed. */
void magazine_depot_drain(struct kmem_cache *c);
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

/* ---------------------------------------------------------------- slab.c */
/* Slab geometry of c from its slot_size, align and extra_bitmaps: order, slots per slab,
 * bitmap words, offset of slot 0, colours, reciprocal.  0, or -1 when nothing fits. */
int slab_compute_geometry(struct kmem_cache *c);
/* Take up to n objects from the slabs into objs (cache->lock taken inside), recording
 * `caller` in debug caches; returns how many (errno ENOMEM when fewer than n). */
size_t slab_alloc_batch(struct kmem_cache *c, void **objs, size_t n, const void *caller);
/* The same for an array whose owner keeps its length in *count (a magazine): *count is set
 * to the objects taken so far under cache->lock, so a fork sees every object either in the
 * array or in its slab, never in neither. */
size_t slab_alloc_batch_with_count(struct kmem_cache *c, void **objs, size_t n,
                                   uint32_t *count);
/* Return n validated objects to their slabs and zero *count (the array's length, as above)
 * under cache->lock; empty slabs beyond max_empty go back to the buddy layer. */
void slab_free_batch_with_count(struct kmem_cache *c, void *const *objs, size_t n,
                                uint32_t *count);
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
/* Every slab of c and the cache's slab counters (cache->lock held).  0, or -1 after a
 * report. */
int slab_validate_locked(struct kmem_cache *c);
/* obj, found in `where` (a magazine, a popped run), is an in-use slot of c (cache->lock
 * held).  0, or -1 after a report. */
int slab_validate_cached_obj_locked(struct kmem_cache *c, const void *obj, const char *where);
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

/* ---------------------------------------------------------------- ptrset.c */
/* Sets of pointers as arrays sorted by address, without allocating. */
void ptrset_sort(void **a, size_t n); /* in place (heapsort: qsort may allocate) */
/* Index of the first element >= p in the sorted set of n. */
size_t ptrset_lower_bound(const void *const *set, size_t n, const void *p);
bool ptrset_contains(const void *const *set, size_t n, const void *p);

#endif
