/* SPDX-License-Identifier: MIT */
/* tools/peakmap.c - where a process's memory is at its peak RSS (an LD_PRELOAD companion).
 *
 *   bazel build -c opt //slab:libslabcache.so //tools:libpeakmap.so
 *   SLABCACHE_PEAKMAP=/tmp/peak SLABCACHE_PEAKMAP_ONLY=pack-objects \
 *     LD_PRELOAD="$PWD/bazel-bin/slab/libslabcache.so $PWD/bazel-bin/tools/libpeakmap.so" \
 *     git gc -q
 *   cat /tmp/peak.<pid>
 *
 * A thread polls the process's RSS (/proc/self/statm) every half millisecond.  Each time the
 * RSS passes its previous peak by 64 KiB or more, it takes the picture again: slabcache's heap
 * map with every block's resident pages and the resident totals (slabcache_heap_map), the
 * caches' slabinfo, and /proc/self/smaps_rollup.  At exit the last picture, the one at the
 * peak, goes to $SLABCACHE_PEAKMAP.<pid>.  Without slabcache preloaded the file still gets the
 * peak and smaps_rollup, so a run under another malloc can be compared.
 *
 * SLABCACHE_PEAKMAP_ONLY=name limits it to processes whose command name or first argument is
 * `name` (git runs its subcommands as "git pack-objects ...").  The polling thread and the
 * picture's buffer (1 MiB, untouched until used) add to the RSS they measure; compare runs
 * that both preload this library.  docs/limits.md section 4 was measured with it.
 *
 * Both variables come from the option table (heap/options.h), linked in here with its symbols
 * kept local: the library, when preloaded too, reports unknown or malformed variables; this
 * copy reads its two and stays silent.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap/options.h"

#define PICTURE_MAX ((size_t)1 << 20)
#define STEP_KIB 64

static char picture[PICTURE_MAX];
static size_t picture_len;
static long peak_kib;
static pthread_mutex_t picture_lock = PTHREAD_MUTEX_INITIALIZER;

/* Read a small /proc file into buf (NUL-terminated); its length, or -1. */
static ssize_t read_proc(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return n;
}

static long rss_kib(void)
{
    char b[128];
    long size = 0, resident = 0;
    if (read_proc("/proc/self/statm", b, sizeof b) < 0 ||
        sscanf(b, "%ld %ld", &size, &resident) != 2)
        return 0;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void append_file(FILE *out, const char *path)
{
    char b[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0)
        fwrite(b, 1, (size_t)n, out);
    close(fd);
}

static void take_picture(long kib)
{
    void (*heap_map)(FILE *) = (void (*)(FILE *))dlsym(RTLD_DEFAULT, "slabcache_heap_map");
    void (*slabinfo)(FILE *) =
        (void (*)(FILE *))dlsym(RTLD_DEFAULT, "kmem_cache_print_slabinfo");
    pthread_mutex_lock(&picture_lock);
    FILE *out = fmemopen(picture, PICTURE_MAX - 1, "w");
    if (out) {
        fprintf(out, "peak RSS so far: %ld KiB (pid %ld)\n", kib, (long)getpid());
        if (heap_map)
            heap_map(out);
        else
            fputs("(slabcache is not loaded: no heap map)\n", out);
        if (slabinfo)
            slabinfo(out);
        append_file(out, "/proc/self/smaps_rollup");
        long pos = ftell(out);
        fclose(out);
        picture_len = pos > 0 ? (size_t)pos : 0;
    }
    pthread_mutex_unlock(&picture_lock);
}

static void *poll_rss(void *arg)
{
    (void)arg;
    const struct timespec half_ms = {0, 500000};
    for (;;) {
        long kib = rss_kib();
        if (kib >= __atomic_load_n(&peak_kib, __ATOMIC_RELAXED) + STEP_KIB) {
            __atomic_store_n(&peak_kib, kib, __ATOMIC_RELAXED);
            take_picture(kib);
        }
        nanosleep(&half_ms, NULL);
    }
    return NULL;
}

/* Whether this process is the one asked for: its command name or first argument. */
static int wanted(void)
{
    const char *only = heap_opt_string(OPT_PEAKMAP_ONLY);
    if (!only || !*only)
        return 1;
    char cmd[4096];
    ssize_t n = read_proc("/proc/self/cmdline", cmd, sizeof cmd);
    if (n < 0)
        return 0;
    const char *arg0 = cmd, *base = strrchr(arg0, '/');
    base = base ? base + 1 : arg0;
    size_t len0 = strlen(arg0);
    const char *arg1 = (size_t)n > len0 + 1 ? arg0 + len0 + 1 : "";
    return !strcmp(base, only) || !strcmp(arg1, only);
}

__attribute__((constructor)) static void peakmap_start(void)
{
    const char *path = heap_opt_string(OPT_PEAKMAP);
    if (!path || !*path || !wanted())
        return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 << 10);
    if (pthread_create(&t, &attr, poll_rss, NULL) != 0)
        fputs("peakmap: cannot start the polling thread\n", stderr);
    pthread_attr_destroy(&attr);
}

__attribute__((destructor)) static void peakmap_write(void)
{
    const char *path = heap_opt_string(OPT_PEAKMAP);
    if (!path || !*path || !wanted())
        return;
    long kib = rss_kib();
    pthread_mutex_lock(&picture_lock);
    bool none = picture_len == 0;
    pthread_mutex_unlock(&picture_lock);
    if (kib >= __atomic_load_n(&peak_kib, __ATOMIC_RELAXED) + STEP_KIB || none) {
        __atomic_store_n(&peak_kib, kib, __ATOMIC_RELAXED); /* a peak since the last poll */
        take_picture(kib);
    }
    char name[4096];
    snprintf(name, sizeof name, "%s.%ld", path, (long)getpid());
    pthread_mutex_lock(&picture_lock);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < picture_len) {
            ssize_t w = write(fd, picture + off, picture_len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(fd);
    } else {
        fprintf(stderr, "peakmap: cannot write %s\n", name);
    }
    pthread_mutex_unlock(&picture_lock);
}
