/* SPDX-License-Identifier: MIT */
/* tests/malloc/leaky_program.c - a program that leaks five 100-byte mallocs from one function
 * and frees everything else; malloc_test runs it with libslabcache.so preloaded and
 * SLABCACHE_DEBUG=U SLABCACHE_LEAKS=exit and checks that the report names this program's
 * call site (not one inside libslabcache.so).  The pointers are dropped before exit and the
 * stack below main is cleared, so the blocks are lost, not reachable. */
#include <stdlib.h>
#include <string.h>

static void *volatile leaky_keep[5];

__attribute__((noinline)) static void leaky_allocate(int i)
{
    leaky_keep[i] = malloc(100);
    memset(leaky_keep[i], i, 100);
}

/* Zero the stack the calls above used, so no stale copy of a pointer stays there. */
__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[16384];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

int main(void)
{
    for (int i = 0; i < 5; i++)
        leaky_allocate(i);
    void *transient = malloc(50);
    free(transient);
    for (int i = 0; i < 5; i++)
        leaky_keep[i] = NULL;
    clear_stack();
    return 0;
}
