/* SPDX-License-Identifier: MIT */
/* heap/radix.c - the map from 4 MiB granules to extent descriptors.
 *
 * key = addr >> HEAP_EXTENT_SHIFT (HEAP_RADIX_BITS = 26 bits for 48-bit addresses);
 *   heap_radix_root[key >> HEAP_RADIX_L2_BITS]                    -> leaf (or NULL)
 *   leaf[key & (HEAP_RADIX_L2_COUNT - 1)]                         -> descriptor (or NULL)
 * The root is static (64 KiB of BSS); a leaf (64 KiB) is mmap'd directly (not through the
 * ops table) the first time an extent lands in its 32 GiB of address space, and is never
 * unmapped, so heap_extent_lookup() may read any leaf it finds without a lock.
 * Writers hold the HEAP lock; every store is a release store, matched by the acquire
 * loads in heap_extent_lookup(). */
#include <errno.h>
#include <sys/mman.h>

#include "heap/heap_internal.h"

#define RADIX_LEAF_BYTES (HEAP_RADIX_L2_COUNT * sizeof(struct heap_extent *))

HEAP_LARGE_BSS struct heap_extent **heap_radix_root[(size_t)1 << HEAP_RADIX_L1_BITS];

static uintptr_t radix_key(uintptr_t addr)
{
    return addr >> HEAP_EXTENT_SHIFT;
}

static struct heap_extent **radix_leaf(uintptr_t key)
{
    return __atomic_load_n(&heap_radix_root[key >> HEAP_RADIX_L2_BITS], __ATOMIC_ACQUIRE);
}

static struct heap_extent **radix_slot(uintptr_t key)
{
    struct heap_extent **leaf = radix_leaf(key);
    return leaf ? &leaf[key & (HEAP_RADIX_L2_COUNT - 1)] : NULL;
}

int heap_radix_prepare_locked(uintptr_t base, size_t size)
{
    heap_assert_locked();
    uintptr_t first = radix_key(base), last = radix_key(base + size - 1);
    if (size == 0 || base + size - 1 < base || (last >> HEAP_RADIX_BITS)) {
        errno = ENOMEM; /* outside the addresses the map covers */
        return -1;
    }
    for (uintptr_t l1 = first >> HEAP_RADIX_L2_BITS; l1 <= last >> HEAP_RADIX_L2_BITS; l1++) {
        if (heap_radix_root[l1])
            continue;
        void *leaf = mmap(NULL, RADIX_LEAF_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (leaf == MAP_FAILED) {
            errno = ENOMEM;
            return -1;
        }
        __atomic_store_n(&heap_radix_root[l1], (struct heap_extent **)leaf, __ATOMIC_RELEASE);
    }
    return 0;
}

HEAP_LARGE_BSS uint64_t heap_split_granules[HEAP_SPLIT_GRANULE_WORDS];

void heap_radix_set_locked(uintptr_t base, size_t size, struct heap_extent *e)
{
    heap_assert_locked();
    uintptr_t last = radix_key(base + size - 1);
    bool split = e && e->kind == HEAP_KIND_SPLIT;
    for (uintptr_t key = radix_key(base); key <= last; key++) {
        __atomic_store_n(radix_slot(key), e, __ATOMIC_RELEASE);
        uint64_t bit = (uint64_t)1 << (key % 64);
        if (split)
            __atomic_fetch_or(&heap_split_granules[key / 64], bit, __ATOMIC_RELEASE);
        else
            __atomic_fetch_and(&heap_split_granules[key / 64], ~bit, __ATOMIC_RELEASE);
    }
}

struct heap_extent *heap_radix_get(uintptr_t addr)
{
    uintptr_t key = radix_key(addr);
    if (key >> HEAP_RADIX_BITS)
        return NULL;
    struct heap_extent **slot = radix_slot(key);
    return slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : NULL;
}

size_t heap_radix_count_locked(void)
{
    heap_assert_locked();
    size_t n = 0;
    for (size_t l1 = 0; l1 < HEAP_RADIX_L1_COUNT; l1++) {
        struct heap_extent **leaf = heap_radix_root[l1];
        for (size_t i = 0; leaf && i < HEAP_RADIX_L2_COUNT; i++)
            n += leaf[i] != NULL;
    }
    return n;
}

/* Set bits in the split granule map.  Bits can only be set where a leaf exists (an extent was
 * entered there), so only those stretches of the map are counted. */
size_t heap_radix_split_bits_locked(void)
{
    heap_assert_locked();
    size_t n = 0;
    const size_t words_per_leaf = HEAP_RADIX_L2_COUNT / 64;
    for (size_t l1 = 0; l1 < HEAP_RADIX_L1_COUNT; l1++) {
        if (!heap_radix_root[l1])
            continue;
        for (size_t w = l1 * words_per_leaf; w < (l1 + 1) * words_per_leaf; w++)
            n += (size_t)__builtin_popcountll(
                __atomic_load_n(&heap_split_granules[w], __ATOMIC_RELAXED));
    }
    return n;
}

size_t heap_for_each_extent(void (*fn)(struct heap_extent *e, void *arg), void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < ((size_t)1 << HEAP_RADIX_L1_BITS); i++) {
        struct heap_extent **leaf = __atomic_load_n(&heap_radix_root[i], __ATOMIC_ACQUIRE);
        if (!leaf)
            continue;
        for (size_t j = 0; j < HEAP_RADIX_L2_COUNT; j++) {
            struct heap_extent *e = __atomic_load_n(&leaf[j], __ATOMIC_ACQUIRE);
            uintptr_t granule = ((i << HEAP_RADIX_L2_BITS) | j) << HEAP_EXTENT_SHIFT;
            if (!e || __atomic_load_n(&e->base, __ATOMIC_RELAXED) != granule)
                continue;
            n++;
            if (fn)
                fn(e, arg);
        }
    }
    return n;
}
