/* SPDX-License-Identifier: MIT */
/* slab/kmalloc.h - general-purpose allocation over slabcache size classes.
 *
 * Small sizes come from size-class kmem_caches (8-byte steps at the bottom, then 1/8 steps so
 * internal waste stays <= 12.5%); larger sizes from buddy blocks (BUDDY_TAG_LARGE); sizes past
 * the largest buddy order from dedicated extents returned to the OS when freed.  kfree finds
 * the slab or block of any pointer in O(1) from the page metadata.
 * Alignment: every class hands out objects aligned to the largest power of two dividing its
 * size (capped at 4 KiB), so kmalloc results are 8-aligned, 16-aligned when the size is a
 * multiple of 16 or above 128 bytes, and naturally aligned for power-of-two sizes; the malloc
 * override (slab/malloc.c) uses only the 16-byte-multiple classes.  kmalloc_aligned takes any
 * power of two.  Thread-safe.  Docs: docs/api.md.
 */
#ifndef SLABCACHE_SLAB_KMALLOC_H
#define SLABCACHE_SLAB_KMALLOC_H

#include <stddef.h>

#include "slab/slab.h"

#ifdef __cplusplus
extern "C" {
#endif

void *kmalloc(size_t size, unsigned int flags);                 /* NULL + ENOMEM; 0 -> unique */
void *kzalloc(size_t size, unsigned int flags);
void *kcalloc(size_t n, size_t size, unsigned int flags);       /* overflow -> NULL + ENOMEM */
void *krealloc(void *p, size_t size, unsigned int flags);       /* NULL p = kmalloc;
                                                                   size 0 frees p, NULL */
void *kmalloc_aligned(size_t align, size_t size, unsigned int flags); /* align: power of 2,
                                                                   else NULL + EINVAL */
void kfree(void *p);                                            /* NULL does nothing */
size_t ksize(const void *p);                                    /* usable size; 0 for NULL */

#ifdef __cplusplus
}
#endif
#endif
