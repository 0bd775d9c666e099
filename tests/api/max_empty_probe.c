/* SPDX-License-Identifier: MIT */
/* tests/api/max_empty_probe.c - prints how many empty slabs a cache keeps by default
 * (kmem_cache_args.max_empty_slabs = 0): fill twelve slabs of a magazine-less cache, free
 * every object, and read empty_slabs.  api_doc_test.py compares it with the documentation. */
#include <stdio.h>

#include "slab/slab.h"

#define PROBE_SLABS 12
#define PROBE_MAX_OBJECTS 100000

static void *objs[PROBE_MAX_OBJECTS];

int main(void)
{
    struct kmem_cache_args args = {0};
    struct kmem_cache *c = kmem_cache_create_args("max_empty_probe", 256, &args,
                                                  SLAB_NO_MAGAZINE);
    struct kmem_cache_stats st;
    if (!c || kmem_cache_get_stats(c, &st) != 0 || st.objects_per_slab == 0)
        return 1;
    size_t n = st.objects_per_slab * PROBE_SLABS;
    if (n > PROBE_MAX_OBJECTS)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!(objs[i] = kmem_cache_alloc(c, 0)))
            return 1;
    for (size_t i = 0; i < n; i++)
        kmem_cache_free(c, objs[i]);
    if (kmem_cache_get_stats(c, &st) != 0 || st.empty_slabs >= PROBE_SLABS ||
        kmem_cache_validate(c) != 0)
        return 1;
    printf("%zu\n", st.empty_slabs);
    kmem_cache_destroy(c);
    return 0;
}
