/* SPDX-License-Identifier: MIT */
/* tests/debug/clean_program.c - correct use of every kmem_cache call (silence_test.sh runs it
 * under every debug option and expects an empty stderr and status 0). */
#include <stdio.h>
#include <string.h>

#include "slab/slab.h"

static void ctor(void *obj)
{
    memset(obj, 0x11, 48);
}

int main(void)
{
    struct kmem_cache *a = kmem_cache_create("clean-a", 100, 0, 0, NULL);
    struct kmem_cache *b = kmem_cache_create("clean-b", 48, 16, SLAB_HWCACHE_ALIGN, ctor);
    if (!a || !b)
        return 1;
    void *keep[500];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 500; i++) {
            keep[i] = kmem_cache_alloc(i % 2 ? a : b, i % 3 ? 0 : KM_ZERO);
            if (!keep[i])
                return 2;
            memset(keep[i], i, 48);
        }
        for (int i = 0; i < 500; i++)
            kmem_cache_free(i % 2 ? a : b, keep[i]);
    }
    void *bulk[64];
    if (kmem_cache_alloc_bulk(a, 0, 64, bulk) != 64)
        return 3;
    kmem_cache_free_bulk(a, 64, bulk);
    void *expected = kmem_cache_alloc(a, 0); /* kept on purpose */
    slabcache_register_expected_leak(expected);
    if (slabcache_validate() != 0)
        return 4;
    kmem_cache_shrink(a);
    kmem_cache_destroy(b);
    return 0; /* a stays alive: its magazines and the expected leak are not leaks */
}
