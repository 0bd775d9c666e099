/* slab/kmalloc_internal.h - kmalloc internals shared by kmalloc.c, malloc.c and the tests.
 *
 * Not part of the public API (the .so does not export these names).  The class geometry is
 * described at the top of slab/kmalloc.c.
 */
#ifndef SLABCACHE_SLAB_KMALLOC_INTERNAL_H
#define SLABCACHE_SLAB_KMALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "slab/kmalloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `caller` arguments: the program's call site, recorded by debug caches (SLAB_STORE_USER);
 * entry points pass __builtin_return_address(0). */

#define KMALLOC_NR_CLASSES 80u                    /* kmalloc-8 .. kmalloc-32768 */
#define KMALLOC_MAX_CACHE_SIZE ((size_t)32768)    /* largest size served by a class */

/* The class caches, each NULL until its class is first used (kmalloc_class_cache). */
extern struct kmem_cache *kmalloc_caches[KMALLOC_NR_CLASSES];

/* Build the class tables (idempotent, thread-safe, re-entrant from its own thread).  The
 * caches themselves are created lazily, by the first allocation of each class. */
void kmalloc_init(void);
bool kmalloc_ready(void);
/* The cache of class `index`, created now if needed (NULL before kmalloc_init has finished,
 * or when creation failed: the class is then served as large blocks). */
struct kmem_cache *kmalloc_class_cache(unsigned index);
/* Class index for 0 <= size <= KMALLOC_MAX_CACHE_SIZE, and the size of a class. */
unsigned kmalloc_class_index(size_t size);
size_t kmalloc_class_size(unsigned index);

/* Everything off the fast path: init, alignment > 8, large blocks. */
void *kmalloc_slow(size_t size, size_t align, unsigned int flags, const void *caller);
/* kfree / malloc_usable_size with the operation named in reports. */
void kmalloc_free_op(void *p, const char *op, const void *caller);
size_t kmalloc_usable_size_op(const void *p, const char *op);
/* realloc core; malloc_classes = true keeps results 16-byte aligned (malloc semantics). */
void *kmalloc_realloc(void *p, size_t size, unsigned int flags, bool malloc_classes,
                      const void *caller);
/* malloc semantics: 16-byte aligned results, malloc(0) = a unique 16-byte block. */
void *kmalloc_malloc(size_t size, unsigned int flags, const void *caller);
void *kmalloc_malloc_aligned(size_t align, size_t size, const void *caller);

#ifdef __cplusplus
}
#endif
#endif
