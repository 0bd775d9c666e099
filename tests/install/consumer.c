/* SPDX-License-Identifier: MIT */
/* tests/install/consumer.c - a program that uses an installed slabcache the way an outside
 * project would: the umbrella <slabcache.h> and the pool layer's <slabcache/pool.h>, and the
 * library found by its build system (make/Makefile with pkg-config, cmake/CMakeLists.txt
 * with find_package).  Built and run by install_test.sh outside Bazel.  Prints one line,
 * "consumer HOW: slabcache VERSION, ...", and exits 0 only when every check holds. */
#include <slabcache.h>
#include <slabcache/pool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inode {
    unsigned long ino;
    char name[40];
};

#define CONSUMER_OBJECTS 100

static int failed(const char *what)
{
    fprintf(stderr, "consumer: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "?";
    if (strcmp(slabcache_version(), SLABCACHE_VERSION_STRING) != 0)
        return failed("the headers and the library are different releases");
#if SLABCACHE_VERSION < SLABCACHE_VERSION_NUMBER(0, 2, 0)
#error "SLABCACHE_VERSION is older than this test"
#endif

    struct kmem_cache *c = KMEM_CACHE(inode, SLAB_HWCACHE_ALIGN);
    if (!c)
        return failed("KMEM_CACHE failed");
    struct inode *in[CONSUMER_OBJECTS];
    for (unsigned long i = 0; i < CONSUMER_OBJECTS; i++) {
        in[i] = kmem_cache_alloc(c, KM_ZERO);
        if (!in[i] || in[i]->ino != 0)
            return failed("kmem_cache_alloc(KM_ZERO) gave no zeroed object");
        in[i]->ino = i + 1;
        snprintf(in[i]->name, sizeof in[i]->name, "inode-%lu", i);
    }
    struct kmem_cache_stats st;
    if (kmem_cache_get_stats(c, &st) != 0 || st.active_objects != CONSUMER_OBJECTS ||
        strcmp(st.name, "inode") != 0)
        return failed("kmem_cache_get_stats does not count the objects held");
    for (unsigned long i = 0; i < CONSUMER_OBJECTS; i++)
        kmem_cache_free(c, in[i]);

    char *k = kmalloc(100, 0);
    if (!k || ksize(k) < 100)
        return failed("kmalloc/ksize");
    kfree(k);

    /* Linking the library makes malloc slabcache's: ksize() knows the block (a block from
     * glibc's malloc would be reported as foreign, and the process would abort). */
    char *m = malloc(1000);
    if (!m || ksize(m) < 1000)
        return failed("malloc is not slabcache's");
    memset(m, 'x', 1000);
    free(m);

    /* A pool with a cap: blocks past it fail with ENOMEM, destroy frees the rest. */
    struct kmem_pool_config cfg = {0};
    cfg.max_blocks = 2;
    cfg.flags = KMEM_POOL_NO_THREAD;
    struct kmem_pool *pool = kmem_pool_create("consumer", &cfg);
    if (!pool)
        return failed("kmem_pool_create");
    if (!kmem_pool_alloc(pool, 64, KM_ZERO) || !kmem_pool_alloc(pool, 5000, 0) ||
        kmem_pool_alloc(pool, 8, 0))
        return failed("kmem_pool_alloc does not keep its cap of 2 blocks");
    struct kmem_pool_stats ps;
    if (kmem_pool_get_stats(pool, &ps) != 0 || ps.live_blocks != 2 || ps.alloc_failures != 1 ||
        kmem_pool_validate(pool) != 0)
        return failed("kmem_pool_get_stats/validate");
    kmem_pool_destroy(pool);

    static struct slabcache_state state;
    if (slabcache_get_state(&state) != 0 || state.nr_classes == 0 ||
        state.totals.heap_bytes == 0)
        return failed("slabcache_get_state");

    if (slabcache_validate() != 0)
        return failed("slabcache_validate");
    kmem_cache_destroy(c);
    printf("consumer %s: slabcache %s (%d), typed cache, kmalloc, malloc and pool ok\n", how,
           slabcache_version(), SLABCACHE_VERSION);
    return 0;
}
