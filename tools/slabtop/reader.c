/* SPDX-License-Identifier: MIT */
/* tools/slabtop/reader.c - a running program's slabcache state (reader.h). */
#include "tools/slabtop/reader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SC_MAX_CACHES 4096          /* a longer cache list is a torn read */
#define SC_MAX_TABLES 65536         /* thread tables */
#define SC_MAX_DEPOT 1000000        /* magazines in one depot */
#define SC_MAX_EXTENTS 65536
#define SC_SCAN_LIMIT ((uint64_t)256 << 20) /* bytes searched for the magic */
#define SC_RETRIES 3
#define SC_CACHE_BUF 4096           /* bytes of a struct kmem_cache read at most */

static void msg(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

int sc_read(const struct sc_target *t, uint64_t addr, void *buf, size_t len)
{
    if (!len)
        return 0;
    if (!addr)
        return -1;
    struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(t->pid, &local, 1, &remote, 1, 0);
    return n == (ssize_t)len ? 0 : -1;
}

static uint64_t get_u64(const unsigned char *b, uint32_t off)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static uint32_t get_u32(const unsigned char *b, uint32_t off)
{
    uint32_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static uint16_t get_u16(const unsigned char *b, uint32_t off)
{
    uint16_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- attach */

struct mapping {
    uint64_t start, end, offset;
    char perms[5];
    char path[400];
};

/* The mappings of pid (up to max); -1 when /proc/PID/maps cannot be read. */
static int read_maps(pid_t pid, struct mapping *m, int max)
{
    char name[64];
    snprintf(name, sizeof name, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(name, "r");
    if (!f)
        return -1;
    char line[1024];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        struct mapping *x = &m[n];
        unsigned long long s, e, off;
        char perms[8], dev[32];
        unsigned long long inode;
        int pos = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %31s %llu %n", &s, &e, perms, &off, dev, &inode,
                   &pos) < 6)
            continue;
        x->start = s;
        x->end = e;
        x->offset = off;
        memcpy(x->perms, perms, 4);
        x->perms[4] = '\0';
        x->path[0] = '\0';
        if (pos > 0) {
            snprintf(x->path, sizeof x->path, "%s", line + pos);
            x->path[strcspn(x->path, "\n")] = '\0';
        }
        n++;
    }
    fclose(f);
    return n;
}

/* The value of symbol `want` in ELF file path (its .symtab, else .dynsym), with the file's
 * type and the vaddr of its first PT_LOAD; 0 when not found. */
static uint64_t elf_symbol(const char *path, const char *want, uint16_t *type, uint64_t *load0)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    uint64_t value = 0;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return 0;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *img = malloc(size);
    if (!img || pread(fd, img, size, 0) != (ssize_t)size) {
        free(img);
        close(fd);
        return 0;
    }
    close(fd);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size ||
        eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size)
        goto out;
    *type = eh->e_type;
    *load0 = 0;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD) {
            *load0 = ph[i].p_vaddr - ph[i].p_offset;
            break;
        }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int pass = 0; pass < 2 && !value; pass++) {
        uint32_t want_type = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (int i = 0; i < eh->e_shnum && !value; i++) {
            if (sh[i].sh_type != want_type || sh[i].sh_link >= eh->e_shnum)
                continue;
            const Elf64_Shdr *strs = &sh[sh[i].sh_link];
            if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size)
                continue;
            const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
            size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym);
            const char *names = (const char *)(img + strs->sh_offset);
            for (size_t k = 0; k < nsym; k++) {
                if (sym[k].st_name >= strs->sh_size || sym[k].st_shndx == SHN_UNDEF)
                    continue;
                const char *nm = names + sym[k].st_name;
                if (strnlen(nm, strs->sh_size - sym[k].st_name) ==
                        strs->sh_size - sym[k].st_name)
                    continue;
                if (strcmp(nm, want) == 0) {
                    value = sym[k].st_value;
                    break;
                }
            }
        }
    }
out:
    free(img);
    return value;
}

/* The root at addr checks out: magic, its own address, a version this reader knows. */
static bool root_ok(struct sc_target *t, uint64_t addr)
{
    struct slabcache_introspection r;
    if (sc_read(t, addr, &r, sizeof r) != 0)
        return false;
    if (r.magic[0] != SLABCACHE_ROOT_MAGIC0 || r.magic[1] != SLABCACHE_ROOT_MAGIC1 ||
        r.self != addr || r.version != SLABCACHE_ROOT_VERSION || r.size != sizeof r)
        return false;
    t->root = r;
    t->root_addr = addr;
    return true;
}

/* Search the writable mappings for the root's magic (stripped binaries). */
static bool scan_for_root(struct sc_target *t, const struct mapping *m, int n)
{
    size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    uint64_t budget = SC_SCAN_LIMIT;
    bool found = false;
    for (int i = 0; i < n && !found && budget; i++) {
        if (m[i].perms[0] != 'r' || m[i].perms[1] != 'w' || strstr(m[i].path, "[stack") ||
            strstr(m[i].path, "[vvar") || strstr(m[i].path, "[vsyscall"))
            continue;
        for (uint64_t a = m[i].start; a < m[i].end && !found && budget;) {
            size_t len = m[i].end - a < chunk ? (size_t)(m[i].end - a) : chunk;
            struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)a, len};
            ssize_t got = process_vm_readv(t->pid, &local, 1, &remote, 1, 0);
            if (got <= 0)
                break;
            for (size_t off = 0; off + 16 <= (size_t)got; off += 8)
                if (get_u64(buf, (uint32_t)off) == SLABCACHE_ROOT_MAGIC0 &&
                    get_u64(buf, (uint32_t)off + 8) == SLABCACHE_ROOT_MAGIC1 &&
                    root_ok(t, a + off)) {
                    found = true;
                    break;
                }
            a += (uint64_t)got;
            budget = budget > (uint64_t)got ? budget - (uint64_t)got : 0;
        }
    }
    free(buf);
    return found;
}

int sc_attach(struct sc_target *t, pid_t pid, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->pid = pid;
    char name[64];
    snprintf(name, sizeof name, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(name, "r");
    if (!f) {
        msg(err, errlen, "no process %d (%s)", (int)pid, strerror(errno));
        return -1;
    }
    if (fgets(t->comm, sizeof t->comm, f))
        t->comm[strcspn(t->comm, "\n")] = '\0';
    fclose(f);
    enum { MAX_MAPS = 8192 };
    struct mapping *m = calloc(MAX_MAPS, sizeof *m);
    if (!m) {
        msg(err, errlen, "out of memory");
        return -1;
    }
    int n = read_maps(pid, m, MAX_MAPS);
    if (n < 0) {
        msg(err, errlen, "cannot read /proc/%d/maps: %s", (int)pid, strerror(errno));
        free(m);
        return -1;
    }
    /* A first read shows whether we may read its memory at all. */
    unsigned char probe;
    if (n > 0 && process_vm_readv(pid, &(struct iovec){&probe, 1}, 1,
                                  &(struct iovec){(void *)(uintptr_t)m[0].start, 1}, 1,
                                  0) < 0 &&
        errno == EPERM) {
        msg(err, errlen,
            "not allowed to read the memory of process %d (ptrace access: the same user, and "
            "with /proc/sys/kernel/yama/ptrace_scope = 1 a parent of it, or CAP_SYS_PTRACE; "
            "see docs/observability.md)",
            (int)pid);
        free(m);
        return -1;
    }
    /* Files mapped, libslabcache first, each tried once. */
    bool ok = false;
    for (int pass = 0; pass < 2 && !ok; pass++) {
        for (int i = 0; i < n && !ok; i++) {
            if (m[i].path[0] != '/' || m[i].offset != 0)
                continue;
            bool lib = strstr(m[i].path, "libslabcache") != NULL;
            if ((pass == 0) != lib)
                continue;
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                seen = m[j].offset == 0 && strcmp(m[j].path, m[i].path) == 0;
            if (seen)
                continue;
            char path[512];
            snprintf(path, sizeof path, "/proc/%d/root%s", (int)pid, m[i].path);
            uint16_t type = 0;
            uint64_t load0 = 0;
            uint64_t value = elf_symbol(path, SLABCACHE_ROOT_SYMBOL, &type, &load0);
            if (!value)
                value = elf_symbol(m[i].path, SLABCACHE_ROOT_SYMBOL, &type, &load0);
            if (!value)
                continue;
            uint64_t addr = type == ET_DYN ? m[i].start - load0 + value : value;
            if (root_ok(t, addr)) {
                snprintf(t->where, sizeof t->where, "%s", m[i].path);
                ok = true;
            }
        }
    }
    if (!ok && scan_for_root(t, m, n)) {
        snprintf(t->where, sizeof t->where, "found by scanning (no symbol table)");
        ok = true;
    }
    free(m);
    if (!ok)
        msg(err, errlen,
            "process %d (%s) has no slabcache introspection root: is libslabcache.so "
            "preloaded or linked (version %u of the root)?",
            (int)pid, t->comm, SLABCACHE_ROOT_VERSION);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- snapshot */

static const struct sc_row *row_by_addr(const struct sc_snapshot *s, uint64_t addr)
{
    for (size_t i = 0; i < s->nrows; i++)
        if (s->rows[i].kind == SC_ROW_CACHE && s->rows[i].addr == addr)
            return &s->rows[i];
    return NULL;
}

/* Caches: the list from cache_list.  False when the walk was torn. */
static bool read_caches(struct sc_target *t, struct sc_snapshot *s)
{
    const struct slabcache_root_layout *L = &t->root.l;
    unsigned char buf[SC_CACHE_BUF];
    uint32_t csize = L->cache.size < sizeof buf ? L->cache.size : (uint32_t)sizeof buf;
    uint64_t c = 0;
    if (sc_read(t, t->root.cache_list, &c, sizeof c) != 0)
        return false;
    for (int n = 0; c && n < SC_MAX_CACHES; n++) {
        if (s->nrows >= SC_MAX_ROWS || row_by_addr(s, c))
            return false; /* a loop: the list changed under us */
        if (sc_read(t, c, buf, csize) != 0 || get_u32(buf, L->cache.magic) != t->root.k.cache_magic)
            return false;
        struct sc_row *r = &s->rows[s->nrows++];
        memset(r, 0, sizeof *r);
        r->kind = SC_ROW_CACHE;
        r->addr = c;
        size_t nlen = L->cache.name_size < SC_NAME_MAX ? L->cache.name_size : SC_NAME_MAX;
        memcpy(r->name, buf + L->cache.name, nlen);
        r->name[SC_NAME_MAX - 1] = '\0';
        r->object_size = get_u32(buf, L->cache.object_size);
        r->slot_size = get_u32(buf, L->cache.slot_size);
        r->objs_per_slab = get_u32(buf, L->cache.objs_per_slab);
        uint32_t order = get_u32(buf, L->cache.slab_order);
        r->pages_per_slab = order < 32 ? (uint64_t)1 << order : 0;
        r->slab_bytes = get_u64(buf, L->cache.slab_bytes);
        r->magazines = get_u32(buf, L->cache.mag_size) != 0;
        uint64_t full = get_u64(buf, L->cache.full_count), part = get_u64(buf, L->cache.partial_count),
                 empty = get_u64(buf, L->cache.empty_count);
        r->slabs = full + part + empty;
        r->active_slabs = full + part;
        r->total = r->slabs * r->objs_per_slab;
        r->active = get_u64(buf, L->cache.inuse_total); /* cached objects subtracted below */
        r->allocs = get_u64(buf, L->cache.allocs);
        r->frees = get_u64(buf, L->cache.frees);
        r->reserved_bytes = r->slabs * r->slab_bytes;
        /* The depot's full magazines (each may be partial). */
        uint64_t nfull = get_u64(buf, L->cache.nr_depot_full);
        uint64_t m = get_u64(buf, L->cache.depot_full);
        for (uint64_t k = 0; m && k < nfull + 8 && k < SC_MAX_DEPOT; k++) {
            unsigned char mh[32];
            uint32_t need = L->magazine.next + 8;
            if (need > sizeof mh || sc_read(t, m, mh, need) != 0)
                break;
            r->cached += get_u32(mh, L->magazine.count);
            m = get_u64(mh, L->magazine.next);
        }
        c = get_u64(buf, L->cache.next_cache);
    }
    return c == 0;
}

/* The count of a magazine (its header's), 0 when unreadable. */
static uint64_t magazine_count(struct sc_target *t, uint64_t m)
{
    uint32_t count = 0;
    if (!m || sc_read(t, m + t->root.l.magazine.count, &count, sizeof count) != 0)
        return 0;
    return count;
}

/* Per-thread magazines: cached objects and the counters of every thread's entries. */
static void read_tables(struct sc_target *t, struct sc_snapshot *s)
{
    const struct slabcache_root_layout *L = &t->root.l;
    uint64_t head = 0;
    if (!t->root.table_list || sc_read(t, t->root.table_list, &head, sizeof head) != 0)
        return;
    uint32_t max_id = 0;
    uint32_t *ids = calloc(s->nrows, sizeof *ids);
    if (!ids)
        return;
    for (size_t i = 0; i < s->nrows; i++) {
        unsigned char b[8];
        ids[i] = UINT32_MAX;
        if (!s->rows[i].magazines ||
            sc_read(t, s->rows[i].addr + L->cache.id, b, 4) != 0)
            continue;
        ids[i] = get_u32(b, 0);
        if (ids[i] < t->root.k.max_caches && ids[i] + 1 > max_id)
            max_id = ids[i] + 1;
    }
    size_t ent_bytes = (size_t)max_id * L->entry.size;
    unsigned char *ents = ent_bytes ? malloc(ent_bytes) : NULL;
    uint64_t tc = head;
    for (int n = 0; tc && n < SC_MAX_TABLES; n++) {
        s->threads++;
        if (ents && sc_read(t, tc + L->table.ent, ents, ent_bytes) == 0) {
            for (size_t i = 0; i < s->nrows; i++) {
                if (ids[i] >= max_id)
                    continue;
                const unsigned char *e = ents + (size_t)ids[i] * L->entry.size;
                if (get_u64(e, L->entry.cache) != s->rows[i].addr)
                    continue;
                uint64_t loaded = get_u64(e, L->entry.loaded), prev = get_u64(e, L->entry.previous);
                uint64_t lo = get_u64(e, L->entry.lo), top = get_u64(e, L->entry.top);
                uint64_t in_loaded = loaded && lo == loaded + L->magazine.objs && top >= lo
                                         ? (top - lo) / 8
                                         : magazine_count(t, loaded);
                uint64_t in_prev = prev && prev != loaded ? magazine_count(t, prev) : 0;
                uint64_t cached = in_loaded + in_prev;
                s->rows[i].cached += cached;
                uint64_t frees = get_u64(e, L->entry.frees), net_in = get_u64(e, L->entry.net_in);
                s->rows[i].allocs += frees + net_in - cached;
                s->rows[i].frees += frees;
            }
        }
        if (sc_read(t, tc + L->table.next, &tc, sizeof tc) != 0)
            break;
    }
    free(ents);
    free(ids);
}

struct extent_seen {
    uint64_t *addr;
    size_t n, cap;
};

/* Extents from the radix map; large, huge, slab and free bytes from their page maps. */
static void read_heap(struct sc_target *t, struct sc_snapshot *s, uint64_t *large_by_order,
                      uint64_t *large_bytes_by_order, size_t orders)
{
    const struct slabcache_root_constants *K = &t->root.k;
    const struct slabcache_root_layout *L = &t->root.l;
    size_t l1 = (size_t)1 << K->radix_l1_bits, l2 = (size_t)1 << K->radix_l2_bits;
    if (K->radix_l1_bits > 20 || K->radix_l2_bits > 20)
        return;
    uint64_t *root = malloc(l1 * 8), *leaf = malloc(l2 * 8);
    size_t pmap_bytes = (size_t)K->pages_per_extent * L->page.size;
    unsigned char *pmap = malloc(pmap_bytes);
    struct extent_seen seen = {calloc(SC_MAX_EXTENTS, 8), 0, SC_MAX_EXTENTS};
    if (!root || !leaf || !pmap || !seen.addr || sc_read(t, t->root.radix_root, root, l1 * 8) != 0)
        goto out;
    for (size_t i = 0; i < l1; i++) {
        if (!root[i] || sc_read(t, root[i], leaf, l2 * 8) != 0)
            continue;
        for (size_t j = 0; j < l2; j++) {
            uint64_t e = leaf[j];
            if (!e)
                continue;
            uint64_t granule = (uint64_t)((i << K->radix_l2_bits) | j) << K->extent_shift;
            unsigned char d[256];
            if (L->extent.size > sizeof d || sc_read(t, e, d, L->extent.size) != 0 ||
                get_u32(d, L->extent.magic) != K->extent_magic ||
                get_u64(d, L->extent.base) != granule)
                continue; /* not the extent's first granule, or torn */
            bool dup = false;
            for (size_t k = 0; k < seen.n && !dup; k++)
                dup = seen.addr[k] == e;
            if (dup || seen.n == seen.cap)
                continue;
            seen.addr[seen.n++] = e;
            uint64_t bytes = get_u64(d, L->extent.bytes);
            uint8_t source = d[L->extent.source], kind = d[L->extent.kind];
            uint16_t tag = get_u16(d, L->extent.tag);
            s->heap += bytes;
            if (source == K->source_sbrk)
                s->sbrk += bytes;
            else
                s->mmap += bytes;
            if (kind == K->kind_whole) {
                if (tag == K->tag_large) {
                    s->huge_blocks++;
                    s->huge_bytes += bytes;
                }
                continue;
            }
            uint64_t owner = get_u64(d, L->extent.owner);
            if (kind != K->kind_split || !owner || sc_read(t, owner, pmap, pmap_bytes) != 0)
                continue;
            for (size_t p = 0; p < K->pages_per_extent;) {
                const unsigned char *pg = pmap + p * L->page.size;
                uint8_t order = pg[L->page.order], state = pg[L->page.state];
                uint16_t ptag = get_u16(pg, L->page.tag);
                size_t run = order <= K->max_order ? (size_t)1 << order : 1;
                if (order > K->max_order && state == K->page_alloc_head) {
                    /* A run (any length, no alignment): its head and the pages after it
                     * that carry the same order and are not heads. */
                    while (p + run < K->pages_per_extent) {
                        const unsigned char *q = pmap + (p + run) * L->page.size;
                        if (q[L->page.order] != order || q[L->page.state] == K->page_alloc_head ||
                            q[L->page.state] == K->page_free_head)
                            break;
                        run++;
                    }
                }
                uint64_t block = (uint64_t)run << K->page_shift;
                if (state == K->page_alloc_head) {
                    if (ptag == K->tag_slab) {
                        s->slab_bytes += block;
                    } else if (ptag == K->tag_large) {
                        s->large_blocks++;
                        s->large_bytes += block;
                        unsigned k = 0; /* the power of two of pages that holds it */
                        while (((size_t)1 << k) < run)
                            k++;
                        if (k < orders) {
                            large_by_order[k]++;
                            large_bytes_by_order[k] += block;
                        }
                    }
                } else if (state == K->page_free_head) {
                    s->free += block;
                } else {
                    run = 1; /* a tail met first: torn, step a page */
                }
                p += run;
            }
        }
    }
out:
    free(root);
    free(leaf);
    free(pmap);
    free(seen.addr);
}

static uint64_t read_rss(pid_t pid)
{
    char name[64];
    snprintf(name, sizeof name, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(name, "r");
    if (!f)
        return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    return n == 2 ? res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

int sc_snapshot(struct sc_target *t, struct sc_snapshot *s, char *err, size_t errlen)
{
    /* The root again: its thread-table address is filled in at the program's start-up. */
    struct slabcache_introspection r;
    if (sc_read(t, t->root_addr, &r, sizeof r) != 0 || r.magic[0] != SLABCACHE_ROOT_MAGIC0) {
        msg(err, errlen, "process %d: cannot read its memory any more (%s)", (int)t->pid,
            strerror(errno));
        return -1;
    }
    t->root.table_list = r.table_list;
    bool ok = false;
    for (int attempt = 0; attempt < SC_RETRIES && !ok; attempt++) {
        memset(s, 0, offsetof(struct sc_snapshot, rows));
        s->time = now_seconds();
        ok = read_caches(t, s);
    }
    s->inconsistent = !ok;
    s->caches = s->nrows;
    read_tables(t, s);
    uint64_t large_by_order[64] = {0}, large_bytes_by_order[64] = {0};
    read_heap(t, s, large_by_order, large_bytes_by_order, 64);
    for (size_t i = 0; i < s->nrows; i++) {
        struct sc_row *row = &s->rows[i];
        row->active = row->active > row->cached ? row->active - row->cached : 0;
        row->live_bytes = row->active * row->object_size;
        s->in_use += row->live_bytes;
        s->cached += row->cached * row->slot_size;
    }
    for (unsigned k = 0; k < 64 && s->nrows < SC_MAX_ROWS; k++) {
        if (!large_by_order[k])
            continue;
        struct sc_row *row = &s->rows[s->nrows++];
        memset(row, 0, sizeof *row);
        uint64_t bytes = (uint64_t)1 << (k + t->root.k.page_shift);
        if (bytes >= (1u << 20))
            snprintf(row->name, sizeof row->name, "large-%lluM", (unsigned long long)(bytes >> 20));
        else
            snprintf(row->name, sizeof row->name, "large-%lluK", (unsigned long long)(bytes >> 10));
        row->kind = SC_ROW_LARGE; /* blocks of up to `bytes`, runs of pages included */
        row->object_size = row->slot_size = large_bytes_by_order[k] / large_by_order[k];
        row->active = row->total = large_by_order[k];
        row->live_bytes = row->reserved_bytes = large_bytes_by_order[k];
        row->pages_per_slab = (uint64_t)1 << k;
        row->objs_per_slab = 1;
    }
    if (s->huge_blocks && s->nrows < SC_MAX_ROWS) {
        struct sc_row *row = &s->rows[s->nrows++];
        memset(row, 0, sizeof *row);
        snprintf(row->name, sizeof row->name, "huge");
        row->kind = SC_ROW_HUGE;
        row->active = row->total = s->huge_blocks;
        row->live_bytes = row->reserved_bytes = s->huge_bytes;
        row->object_size = row->slot_size = s->huge_bytes / s->huge_blocks;
        row->objs_per_slab = 1;
    }
    s->in_use += s->large_bytes + s->huge_bytes;
    s->rss = read_rss(t->pid);
    uint64_t wp = 0;
    s->has_watch = false;
    if (r.watch && sc_read(t, r.watch, &wp, sizeof wp) == 0 && wp &&
        sc_read(t, wp, &s->watch, sizeof s->watch) == 0 &&
        s->watch.magic == SLABCACHE_WATCH_MAGIC && s->watch.nr <= SLABCACHE_WATCH_SERIES) {
        s->has_watch = true;
        for (uint32_t i = 0; i < s->watch.nr; i++)
            s->watch.fit[i].name[sizeof s->watch.fit[i].name - 1] = '\0';
    }
    return 0;
}
