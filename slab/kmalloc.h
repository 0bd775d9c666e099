/* slab/kmalloc.h - general-purpose allocation over slabcache size classes.
 *
 * Small sizes come from size-class kmem_caches (8-byte steps at the bottom, then 1/8 steps so
 * internal waste stays <= 12.5%); larger sizes from buddy blocks (BUDDY_TAG_LARGE); sizes past
 * the largest buddy order from dedicated extents returned to the OS when freed.  kfree finds
 * the slab or block of any pointer in O(1) from the page metadata.
 * Every result is aligned to at least 16 bytes.  Thread-safe.  Docs: docs/api.md.
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
void *krealloc(void *p, size_t size, unsigned int flags);       /* NULL p = kmalloc */
void *kmalloc_aligned(size_t align, size_t size, unsigned int flags); /* align: power of 2 */
void kfree(void *p);                                            /* NULL does nothing */
size_t ksize(const void *p);                                    /* usable size; 0 for NULL */

#ifdef __cplusplus
}
#endif
#endif
