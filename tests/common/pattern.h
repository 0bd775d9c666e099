/* SPDX-License-Identifier: MIT */
// tests/common/pattern.h - the byte pattern the kmalloc and malloc tests write into every
// block they allocate and check before they free or after they move it: position- and
// seed-dependent, so an overlap between two blocks, a lost byte or a stale copy shows.
#ifndef SLABCACHE_TESTS_COMMON_PATTERN_H
#define SLABCACHE_TESTS_COMMON_PATTERN_H

#include <stddef.h>
#include <stdint.h>

inline unsigned char PatternByte(size_t i, uint32_t seed) {
    return (unsigned char)((i * 131u + seed) >> 3 ^ seed);
}

inline void Fill(void *p, size_t n, uint32_t seed) {
    unsigned char *b = static_cast<unsigned char *>(p);
    for (size_t i = 0; i < n; i++) b[i] = PatternByte(i, seed);
}

inline bool Check(const void *p, size_t n, uint32_t seed) {
    const unsigned char *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        if (b[i] != PatternByte(i, seed)) return false;
    return true;
}

#endif
