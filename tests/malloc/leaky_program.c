/* SPDX-License-Identifier: MIT */
/* tests/malloc/leaky_program.c - a program that leaks five 100-byte mallocs from one function
 * and frees everything else; malloc_test runs it with libslabcache.so preloaded and
 * SLABCACHE_DEBUG=U SLABCACHE_LEAKS=exit and checks that the report names this program's
 * call site (not one inside libslabcache.so). */
#include <stdlib.h>
#include <string.h>

static void *volatile leaky_keep[5];

__attribute__((noinline)) static void leaky_allocate(int i)
{
    leaky_keep[i] = malloc(100);
    memset(leaky_keep[i], i, 100);
}

int main(void)
{
    for (int i = 0; i < 5; i++)
        leaky_allocate(i);
    void *transient = malloc(50);
    free(transient);
    return 0;
}
