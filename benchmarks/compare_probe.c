/* SPDX-License-Identifier: MIT */
/* benchmarks/compare_probe.c - the tiny command scripts_test.sh gives benchmarks/compare.sh:
 * holds 16 MiB of 4 KiB mallocs, all written, then frees them.  stdout is the same under
 * every allocator (a checksum); stderr names the shared object that defines the malloc it
 * called, so the test can see that each column ran under its own allocator. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_BLOCKS 4096
#define PROBE_BLOCK_SIZE 4096

static unsigned char *blocks[PROBE_BLOCKS];

int main(void)
{
    unsigned long sum = 0;
    for (int i = 0; i < PROBE_BLOCKS; i++) {
        blocks[i] = malloc(PROBE_BLOCK_SIZE);
        if (!blocks[i])
            return 1;
        memset(blocks[i], i & 0xff, PROBE_BLOCK_SIZE);
    }
    for (int i = 0; i < PROBE_BLOCKS; i++) {
        sum += blocks[i][i % PROBE_BLOCK_SIZE];
        free(blocks[i]);
    }
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (!sym || !dladdr(sym, &info) || !info.dli_fname)
        return 2;
    printf("checksum %lu\n", sum);
    fprintf(stderr, "malloc from %s\n", info.dli_fname);
    return 0;
}
