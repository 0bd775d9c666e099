/* SPDX-License-Identifier: MIT */
/* tests/malloc/tls_plugin.c - a library dlopen'ed by malloc_test: its general-dynamic TLS
 * block is allocated by ld.so with malloc (slabcache's) on each thread's first access and
 * freed at thread exit. */
long tls_plugin_bump(long by);

static __thread long tls_counter[512]; /* 4 KiB: too big for the static TLS surplus */

long tls_plugin_bump(long by)
{
    tls_counter[by % 512] += by;
    return tls_counter[by % 512];
}
