/* SPDX-License-Identifier: MIT */
/* slab/slabcache.h - every public slabcache header in one: the release (version.h), object
 * caches (slab.h) and kmalloc (kmalloc.h).  Installed as <slabcache.h>, with the others under
 * <slabcache/...> (tools/install.sh rewrites the include paths).  Reference: docs/api.md,
 * man 3 slabcache. */
#ifndef SLABCACHE_SLAB_SLABCACHE_H
#define SLABCACHE_SLAB_SLABCACHE_H

#include "slab/version.h"
#include "slab/slab.h"
#include "slab/kmalloc.h"

#endif
