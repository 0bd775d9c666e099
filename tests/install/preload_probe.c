/* SPDX-License-Identifier: MIT */
/* tests/install/preload_probe.c - built without slabcache; prints which shared object
 * defines the malloc the program calls ("malloc from PATH"), so install_test.sh can see that
 * LD_PRELOAD of the installed library really replaces it (and that without the preload it
 * is libc's). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = malloc(100);
        if (!blocks[i])
            return 1;
        memset(blocks[i], i, 100);
    }
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (!sym || !dladdr(sym, &info) || !info.dli_fname)
        return 2;
    printf("malloc from %s\n", info.dli_fname);
    for (int i = 0; i < 64; i++)
        free(blocks[i]);
    return 0;
}
