/* SPDX-License-Identifier: MIT */
/* slab/version.c - the release of the running library (slab/version.h). */
#include "slab/version.h"

const char *slabcache_version(void)
{
    return SLABCACHE_VERSION_STRING;
}
