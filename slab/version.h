/* SPDX-License-Identifier: MIT */
/* slab/version.h - the slabcache release these headers belong to.
 *
 * Semantic versioning.  The shared library's SONAME carries the major number
 * (libslabcache.so.0); while it is 0, a minor release may change the API or the ABI, and
 * CHANGELOG.md says what changed.
 *
 *   #if SLABCACHE_VERSION >= SLABCACHE_VERSION_NUMBER(0, 2, 0)     compile time
 *   strcmp(slabcache_version(), SLABCACHE_VERSION_STRING) == 0      headers match the library
 */
#ifndef SLABCACHE_SLAB_VERSION_H
#define SLABCACHE_SLAB_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define SLABCACHE_VERSION_MAJOR 0
#define SLABCACHE_VERSION_MINOR 2
#define SLABCACHE_VERSION_PATCH 0

/* One number per release that compares in order: 0.2.0 is 200, 1.10.3 is 11003. */
#define SLABCACHE_VERSION_NUMBER(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define SLABCACHE_VERSION                                                                  \
    SLABCACHE_VERSION_NUMBER(SLABCACHE_VERSION_MAJOR, SLABCACHE_VERSION_MINOR,             \
                             SLABCACHE_VERSION_PATCH)
#define SLABCACHE_VERSION_STRING "0.2.0"

/* The release of the library linked or preloaded at run time, "MAJOR.MINOR.PATCH" (a static
 * string; never NULL, never fails). */
const char *slabcache_version(void);

#ifdef __cplusplus
}
#endif
#endif
