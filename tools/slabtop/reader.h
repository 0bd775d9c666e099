/* SPDX-License-Identifier: MIT */
/* tools/slabtop/reader.h - a running program's slabcache state, read from another process.
 *
 * Attach finds the program's introspection root (slab/introspect.h): the symbol
 * `slabcache_introspection_root` in the ELF symbol tables of the files mapped in
 * /proc/PID/maps (libslabcache.so when preloaded or linked, the executable for a static
 * link), or, in stripped binaries, the root's magic followed by its own address in the
 * writable mappings.  A snapshot then reads the caches, the per-thread magazine tables, the
 * depots and the heap's extents and page maps with process_vm_readv, and the RSS from
 * /proc/PID/statm.  The program is not stopped and takes no lock for us: every magic is
 * checked, every count clamped, every list walk bounded; a snapshot that came out
 * inconsistent (a cache destroyed under the walk) is taken again.
 *
 * Reading another process's memory needs ptrace access to it (same user, and with Yama's
 * ptrace_scope = 1 a parent of it or CAP_SYS_PTRACE): docs/observability.md.
 */
#ifndef SLABCACHE_TOOLS_SLABTOP_READER_H
#define SLABCACHE_TOOLS_SLABTOP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "slab/introspect.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SC_MAX_ROWS 1200
#define SC_NAME_MAX 32

enum sc_row_kind { SC_ROW_CACHE = 0, SC_ROW_LARGE = 1, SC_ROW_HUGE = 2 };

struct sc_row {
    char name[SC_NAME_MAX];
    int kind;                 /* enum sc_row_kind */
    uint64_t addr;            /* the cache's address (a row's identity between snapshots) */
    uint64_t object_size, slot_size, objs_per_slab, pages_per_slab, slab_bytes;
    uint64_t active;          /* objects (blocks) held by callers */
    uint64_t total;           /* slots in the cache's slabs (blocks, for large rows) */
    uint64_t slabs, active_slabs;
    uint64_t cached;          /* freed objects in magazines and the depot */
    uint64_t allocs, frees;   /* cumulative (caches) */
    uint64_t live_bytes;      /* active * object size */
    uint64_t reserved_bytes;  /* slabs * slab bytes; the blocks for large rows */
    bool magazines;
};

struct sc_snapshot {
    double time;              /* CLOCK_MONOTONIC seconds */
    uint64_t heap, sbrk, mmap;            /* live extents */
    uint64_t in_use, cached, free;        /* bytes */
    uint64_t slab_bytes, large_bytes, huge_bytes;
    uint64_t large_blocks, huge_blocks;
    uint64_t rss;
    size_t threads, caches;
    bool inconsistent;        /* still torn after the retries */
    size_t nrows;
    struct sc_row rows[SC_MAX_ROWS];
    bool has_watch;           /* SLABCACHE_WATCH is on in the program */
    struct slabcache_watch_published watch;
};

struct sc_target {
    pid_t pid;
    uint64_t root_addr;
    struct slabcache_introspection root;
    char where[512];          /* the file the root was found in, or "scan" */
    char comm[64];            /* /proc/PID/comm */
};

/* Find the root of pid.  0, or -1 with a message in err. */
int sc_attach(struct sc_target *t, pid_t pid, char *err, size_t errlen);
/* Read the whole state.  0, or -1 with a message in err (the process is gone, or access was
 * refused). */
int sc_snapshot(struct sc_target *t, struct sc_snapshot *s, char *err, size_t errlen);
/* Copy len bytes at addr of t's process; 0 when all were read.  (Exposed for tests.) */
int sc_read(const struct sc_target *t, uint64_t addr, void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
