/* SPDX-License-Identifier: MIT */
/* heap/heap_internal.h - prototypes shared by the files of the heap layer (not an API).
 *
 * Files and what they own:
 *   heap.c     extents: the live and free lists, sbrk growth and trim, mmap extents, the limit,
 *              stats, heap_validate.  Owns the HEAP lock.
 *   os.c       the table of OS operations (heap_os_real, the installed table).
 *   radix.c    the radix map from 4 MiB granules to descriptors (heap_radix_root).
 *   meta.c     heap_meta_alloc/free: mmap'd metadata chunks.  Owns the META lock.
 *   options.c  the SLABCACHE_* option table's reader (heap/options.h), without allocating.
 *   fmt.c      the formatter of every layer (heap/fmt.h), heap_report.
 *   mutex.h    the lock of every layer (heap/mutex.h): owner recorded in debug builds.
 *
 * Lock order: HEAP lock, then META lock (descriptors are allocated under the HEAP lock), then
 * the option lock (options.c: a leaf, held only while the table is read or announced); they
 * come after every lock of the layers above (docs/design.md, "Lock order").  Functions named
 * *_locked assert in debug builds that the caller holds the lock they name.
 *
 * OS calls: extents (sbrk, mmap, munmap, madvise) go through the ops table (os.c).  Radix
 * leaves and metadata chunks are mapped with mmap(2) directly, and large metadata blocks
 * unmapped with munmap(2), not through the table: they are never part of an extent, and
 * descriptors and leaves must stay readable by lock-free lookups whatever fake a test
 * installs (a fake that fails on demand would otherwise fail the heap's own bookkeeping).
 */
#ifndef SLABCACHE_HEAP_HEAP_INTERNAL_H
#define SLABCACHE_HEAP_HEAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "heap/fmt.h"
#include "heap/heap.h"
#include "heap/mutex.h"
#include "heap/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- heap.c */
/* The HEAP lock (heap.c): the extent lists, options, stats, the ops table, radix writes. */
extern struct heap_mutex heap_lock_mutex;
void heap_lock(void);
void heap_unlock(void);
#define heap_assert_locked() heap_mutex_assert_held(&heap_lock_mutex)
bool heap_holds_extents_locked(void); /* caller holds the HEAP lock */

/* ---------------------------------------------------------------- os.c */
const struct heap_os_ops *heap_os(void);              /* the installed table, counted */
/* Calls made through heap_os() so far, in heap_stats order: sbrk mmap munmap madvise mremap. */
#define HEAP_OS_CALLS 5
void heap_os_calls(size_t out[HEAP_OS_CALLS]);
void heap_os_calls_reset(void);
void heap_os_install_locked(const struct heap_os_ops *ops); /* caller holds HEAP lock */

/* ---------------------------------------------------------------- radix.c */
#define HEAP_RADIX_L1_COUNT ((size_t)1 << HEAP_RADIX_L1_BITS)
#define HEAP_RADIX_L2_COUNT ((size_t)1 << HEAP_RADIX_L2_BITS)
/* Map the leaves covering [base, base + size); 0, or -1 with errno ENOMEM.  Caller holds
 * the HEAP lock (the only writer of the map). */
int heap_radix_prepare_locked(uintptr_t base, size_t size);
/* Point every granule of [base, base + size) at e (NULL to clear); leaves must exist. */
void heap_radix_set_locked(uintptr_t base, size_t size, struct heap_extent *e);
/* Bits set in heap_split_granules (for heap_validate). */
size_t heap_radix_split_bits_locked(void);
/* The entry of the granule holding addr (no range check), for the validator. */
struct heap_extent *heap_radix_get(uintptr_t addr);
/* Non-NULL entries in the whole map (walks every leaf; for the validator). */
size_t heap_radix_count_locked(void);
/* Granules [base, base + size) spans: size > 0. */
static inline size_t heap_radix_granules(uintptr_t base, size_t size)
{
    return (size_t)(((base + size - 1) >> HEAP_EXTENT_SHIFT) - (base >> HEAP_EXTENT_SHIFT)) + 1;
}

/* ---------------------------------------------------------------- meta.c */
size_t heap_meta_mapped_bytes(void);
int heap_meta_validate(void);
void heap_meta_lock(void);
void heap_meta_unlock(void);

/* ---------------------------------------------------------------- options.c */
/* SLABCACHE_HEAP_KEEP_FREE's default in the option table (//tests/options checks they agree). */
#define HEAP_DEFAULT_KEEP_FREE ((size_t)16 << 20)
/* The heap's options from the table (heap/options.h), then heap_opt_announce(). */
void heap_options_load(struct heap_options *out);
/* "123", "64k", "16M", "2g": 0, or -1 (malformed, overflow).  No allocation. */
int heap_options_parse_size(const char *s, size_t *out);
/* 1/0, yes/no, true/false, on/off in any case: 0, or -1. */
int heap_options_parse_bool(const char *s, bool *out);

/* ---------------------------------------------------------------- fmt.c */
/* One line "slabcache: heap: <what> <a> <b>\n" (a and b in hex) to stderr with write(2). */
void heap_report(const char *what, uintptr_t a, uintptr_t b);

#ifdef __cplusplus
}
#endif
#endif
