/* SPDX-License-Identifier: MIT */
/* slab/leak.c - leak reports by reachability (at exit with SLABCACHE_LEAKS, or on demand),
 * the listing of every live block, and expected leaks.
 *
 * Blocks are every allocation a caller holds: small objects (an in-use slot of a slab without
 * its free mark: objects in magazines and depots carry it, fastpath.h), large buddy blocks
 * and huge mappings of the kmalloc front.
 * They are classified as valgrind's memcheck and LeakSanitizer do, by a conservative mark
 * from the roots:
 *   roots            the writable segments (data, bss) of every loaded module
 *                    (dl_iterate_phdr), the calling thread's stack from the report's entry
 *                    point up and its callee-saved registers (spilled there), its TLS blocks
 *                    and thread descriptor; registered expected leaks; and the free slots
 *                    of caches with a constructor (they keep their constructed state, which
 *                    may hold pointers);
 *   still reachable  a block that a root, or a reachable block, points into (any aligned
 *                    word that falls inside it: interior pointers count);
 *   indirectly lost  not reachable, but pointed into by another lost block;
 *   definitely lost  the rest: the first block of each lost structure (of a cycle of lost
 *                    blocks, the first one found, as memcheck's "clique leader").
 * Reports list definitely and indirectly lost blocks by default, still reachable ones on
 * request (libc's stdio buffers are reachable from libc's data), and every block with its
 * state at the highest verbosity (MemServer's close listing).
 *
 * Without malloc: the blocks are gathered into an array from heap_meta_alloc, sorted by
 * address (a pointer is found by binary search), and marked with an explicit stack of block
 * indices in the same kind of memory (each block is pushed at most once per phase, so it
 * never overflows).  Groups are kept in a static open-addressing table.
 *
 * Locks: leak_lock (lock 1 of types.h) serialises reports and guards the tables here.  The
 * blocks are gathered one cache at a time under its locks, then under the buddy lock; the
 * roots are listed with no allocator lock held (dl_iterate_phdr takes the loader's lock,
 * whose holder may be inside malloc); the mark reads live blocks with the buddy and heap
 * locks held (buddy_lock_all), so none of them can be released or unmapped meanwhile, and
 * reads the roots through process_vm_readv on the process itself, which fails instead of
 * faulting on a module unloaded since.  Threads other than the caller keep running: a block
 * that only their stacks or registers point to is reported as lost (LeakSanitizer stops
 * them; this report does not).
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "heap/options.h"
#include "slab/debug.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#define LEAK_NO_SANITIZE __attribute__((noinline, no_sanitize_address, no_sanitize_thread))
#else
#define LEAK_NO_SANITIZE __attribute__((noinline, no_sanitize("address", "thread")))
#endif

#define LEAK_GROUPS 1024u        /* power of two */
#define LEAK_FIRST_ADDRS 4
#define LEAK_GROUPS_SHOWN 40
#define LEAK_MAX_CACHES 2048u    /* caches named in a report; more share one name */
#define LEAK_MAX_ROOTS 4096u     /* root ranges (segments, TLS blocks, the stack) */
#define LEAK_TCB_BYTES 2304u     /* the thread descriptor at the thread pointer (glibc) */
#define LEAK_READ_CHUNK 4096u
#define LEAK_NO_CACHE 0xffffu

enum leak_kind { LK_SMALL = 0, LK_LARGE = 1, LK_HUGE = 2 };
enum leak_state { LS_UNSEEN = 0, LS_REACHABLE, LS_INDIRECT, LS_DEFINITE };
#define LF_EXPECTED 1u /* registered expected leak: a root, never reported */
#define LF_ROOT 2u     /* free constructed slot: scanned, never reported */

struct leak_block {
    uintptr_t start;
    size_t size;      /* bytes: the object size, the block's bytes */
    const void *site; /* allocation site (caches with U), else NULL */
    uint16_t cache;   /* index in leak_caches (small), else LEAK_NO_CACHE */
    uint8_t kind;     /* enum leak_kind */
    uint8_t state;    /* enum leak_state */
    uint8_t flags;    /* LF_* */
};

struct leak_cache {
    char name[KMEM_CACHE_NAME_MAX];
    uint32_t object_size;
};

struct leak_group {
    bool used;
    uint8_t state, kind;
    uint16_t cache;
    size_t key;       /* large and huge: size */
    const void *site;
    size_t count, bytes, size;
    const void *first[LEAK_FIRST_ADDRS];
};

struct leak_root {
    uintptr_t start, end;
};

static struct heap_mutex leak_lock = HEAP_MUTEX_INITIALIZER; /* lock 1 (types.h) */
#define leak_assert_locked() heap_mutex_assert_held(&leak_lock)
/* The tables, after every small variable (HEAP_LARGE_BSS); all under leak_lock. */
HEAP_LARGE_BSS static struct leak_group groups[LEAK_GROUPS];
HEAP_LARGE_BSS static struct leak_cache leak_caches[LEAK_MAX_CACHES];
static size_t nr_leak_caches;                              /* leak_lock */
HEAP_LARGE_BSS static const void *expected[SLABCACHE_EXPECTED_LEAKS_MAX]; /* sorted */
static size_t nr_expected;                                 /* leak_lock */
HEAP_LARGE_BSS static struct leak_root roots[LEAK_MAX_ROOTS];
static size_t nr_roots;                                    /* leak_lock */

/* ---------------------------------------------------------------- fork */

static void leak_fork_lock(void)
{
    heap_mutex_lock(&leak_lock);
}

static void leak_fork_unlock(void)
{
    heap_mutex_unlock(&leak_lock);
}

static const struct heap_fork_entry leak_fork = {
    .rank = SLAB_FORK_RANK_LEAK,
    .lock = leak_fork_lock,
    .unlock = leak_fork_unlock,
    .child = NULL,
};

/* Before leak_lock is first taken: its fork entry, and the fork handlers themselves (a
 * program may register expected leaks before it makes its first cache). */
static void leak_init_once(void)
{
    static int done; /* atomic */
    if (SLAB_LIKELY(__atomic_load_n(&done, __ATOMIC_ACQUIRE)))
        return;
    heap_fork_register(&leak_fork); /* idempotent: racing first calls are fine */
    cache_init_once();
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- expected leaks */

void slabcache_register_expected_leak(const void *p)
{
    if (!p)
        return;
    leak_init_once();
    heap_mutex_lock(&leak_lock);
    size_t i = ptrset_lower_bound(expected, nr_expected, p);
    if (!(i < nr_expected && expected[i] == p)) {
        if (nr_expected == SLABCACHE_EXPECTED_LEAKS_MAX) {
            heap_mutex_unlock(&leak_lock);
            heap_fmt_line("slabcache_register_expected_leak(%p): table full (%zu entries); "
                          "ignored",
                          p, (size_t)SLABCACHE_EXPECTED_LEAKS_MAX);
            return;
        }
        memmove(&expected[i + 1], &expected[i], (nr_expected - i) * sizeof expected[0]);
        expected[i] = p;
        nr_expected++;
    }
    heap_mutex_unlock(&leak_lock);
}

void slabcache_unregister_expected_leak(const void *p)
{
    leak_init_once();
    heap_mutex_lock(&leak_lock);
    size_t i = ptrset_lower_bound(expected, nr_expected, p);
    if (i < nr_expected && expected[i] == p) {
        memmove(&expected[i], &expected[i + 1], (nr_expected - i - 1) * sizeof expected[0]);
        nr_expected--;
    }
    heap_mutex_unlock(&leak_lock);
}

/* ---------------------------------------------------------------- gathering the blocks */

struct block_set {
    struct leak_block *b;
    size_t n, cap, bytes; /* bytes: the mapping's size */
    bool overflow;
};

static void set_add(struct block_set *set, const struct leak_block *blk)
{
    if (set->n == set->cap) {
        set->overflow = true;
        return;
    }
    set->b[set->n++] = *blk;
}

/* The cache's index in leak_caches, added if new (leak_lock and cache_list_lock held). */
static uint16_t cache_index_locked(const struct kmem_cache *c)
{
    leak_assert_locked();
    if (nr_leak_caches == LEAK_MAX_CACHES)
        return LEAK_NO_CACHE;
    struct leak_cache *lc = &leak_caches[nr_leak_caches];
    memcpy(lc->name, c->name, sizeof lc->name);
    lc->object_size = c->object_size;
    return (uint16_t)nr_leak_caches++;
}

/* The free mark of a slot holding a caller's data is that data: read it as the scan reads
 * the blocks, without telling the sanitizers (a caller may write it meanwhile). */
LEAK_NO_SANITIZE static bool slot_marked(const struct kmem_cache *c, const void *obj)
{
    return *(const volatile uint64_t *)slab_mark_word(c, obj) == slab_mark_value(obj);
}

/* The live and root blocks of one cache (leak_lock and cache_list_lock held).  A slot is
 * live when its in-use bit is set and, in a cache with free marks (magazines), it does not
 * carry its mark: objects cached in magazines and the depot are marked free. */
static void gather_cache_locked(struct kmem_cache *c, struct block_set *set)
{
    leak_assert_locked();
    heap_mutex_assert_held(&cache_list_lock);
    uint16_t ci = cache_index_locked(c);
    bool constructed = c->ctor || c->ctor_simple;
    heap_mutex_lock(&c->lock);
    const struct slab_list_head *lists[] = {&c->full, &c->partial, &c->empty};
    for (size_t l = 0; l < (constructed ? 3u : 2u); l++) {
        for (struct slab *s = lists[l]->first; s; s = s->next) {
            for (uint32_t i = 0; i < c->objs_per_slab; i++) {
                const void *obj = s->objs + (size_t)i * c->slot_size;
                struct leak_block blk = {(uintptr_t)obj, c->object_size, NULL, ci, LK_SMALL,
                                         LS_UNSEEN, 0};
                bool in_use = (s->bitmap[i / 64] >> (i % 64)) & 1;
                if (!in_use || (c->marks && slot_marked(c, obj))) {
                    if (!constructed)
                        continue;
                    blk.flags = LF_ROOT; /* free, in its constructed state */
                } else if (c->debug & SLAB_DBG_USER) {
                    blk.site = debug_track_of(c, obj)->alloc_site;
                }
                set_add(set, &blk);
            }
        }
    }
    heap_mutex_unlock(&c->lock);
}

static void gather_block(void *head, size_t bytes, unsigned order, uint16_t tag, void *arg)
{
    if (tag != BUDDY_TAG_LARGE)
        return;
    struct leak_block blk = {(uintptr_t)head, bytes, NULL, LEAK_NO_CACHE,
                             order == BUDDY_ORDER_HUGE ? LK_HUGE : LK_LARGE, LS_UNSEEN, 0};
    set_add(arg, &blk);
}

static void count_block(void *head, size_t bytes, unsigned order, uint16_t tag, void *arg)
{
    (void)head;
    (void)bytes;
    (void)order;
    if (tag == BUDDY_TAG_LARGE)
        (*(size_t *)arg)++;
}

/* Heapsort by start address (qsort may allocate). */
static void sift_down(struct leak_block *a, size_t i, size_t n)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && a[l].start > a[m].start)
            m = l;
        if (r < n && a[r].start > a[m].start)
            m = r;
        if (m == i)
            return;
        struct leak_block t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
}

static void sort_blocks(struct leak_block *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        struct leak_block t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static void set_release(struct block_set *set)
{
    if (set->b)
        heap_meta_free(set->b, set->bytes);
    set->b = NULL;
    set->n = set->cap = set->bytes = 0;
}

/* Every live block (and root slot), sorted by address, into set (leak_lock held).  False
 * when memory for the array is short. */
static bool gather_locked(struct block_set *set)
{
    leak_assert_locked();
    size_t want = 0;
    heap_mutex_lock(&cache_list_lock);
    for (struct kmem_cache *c = cache_list; c; c = c->next_cache) {
        heap_mutex_lock(&c->lock);
        want += c->ctor || c->ctor_simple
                    ? (c->full.count + c->partial.count + c->empty.count) * c->objs_per_slab
                    : c->inuse_total;
        heap_mutex_unlock(&c->lock);
    }
    heap_mutex_unlock(&cache_list_lock);
    buddy_for_each_block(count_block, &want);
    for (int attempt = 0; attempt < 4; attempt++) {
        want += want / 8 + 1024;
        set->bytes = want * sizeof(struct leak_block);
        set->b = heap_meta_alloc(set->bytes);
        if (!set->b) {
            set->bytes = 0;
            return false;
        }
        set->cap = want;
        set->n = 0;
        set->overflow = false;
        nr_leak_caches = 0;
        heap_mutex_lock(&cache_list_lock);
        for (struct kmem_cache *c = cache_list; c && !set->overflow; c = c->next_cache)
            gather_cache_locked(c, set);
        heap_mutex_unlock(&cache_list_lock);
        buddy_for_each_block(gather_block, set);
        if (!set->overflow) {
            sort_blocks(set->b, set->n);
            return true;
        }
        set_release(set); /* grew meanwhile: again, bigger */
        want *= 2;
    }
    return false;
}

/* ---------------------------------------------------------------- roots */

static void root_add_locked(uintptr_t start, uintptr_t end)
{
    leak_assert_locked();
    start = (start + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    if (end > start && nr_roots < LEAK_MAX_ROOTS)
        roots[nr_roots++] = (struct leak_root){start, end};
}

/* Writable loaded segments and the calling thread's TLS blocks of every module. */
static int root_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            uintptr_t start = info->dlpi_addr + ph->p_vaddr;
            root_add_locked(start, start + ph->p_memsz);
        } else if (ph->p_type == PT_TLS && info->dlpi_tls_data) {
            uintptr_t start = (uintptr_t)info->dlpi_tls_data;
            root_add_locked(start, start + ph->p_memsz);
        }
    }
    return 0;
}

/* The end of the mapping that holds addr (/proc/self/maps, read without stdio), or addr when
 * it cannot be found. */
static uintptr_t mapping_end(uintptr_t addr)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return addr;
    char buf[4096];
    size_t have = 0;
    uintptr_t end = addr;
    bool found = false;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf;
        char *nl;
        while (!found && (nl = strchr(line, '\n')) != NULL) {
            uintptr_t lo = 0, hi = 0;
            const char *p = line;
            for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
                lo = lo * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
            if (*p == '-')
                for (p++; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
                    hi = hi * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
            if (lo <= addr && addr < hi) {
                end = hi;
                found = true;
            }
            line = nl + 1;
        }
        if (found)
            break;
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than the buffer: skip it */
    }
    close(fd);
    return end;
}

static void roots_list_locked(uintptr_t stack_from)
{
    leak_assert_locked();
    nr_roots = 0;
    dl_iterate_phdr(root_module, NULL);
    root_add_locked(stack_from, mapping_end(stack_from));
    uintptr_t tp = (uintptr_t)pthread_self(); /* glibc: the thread descriptor */
    root_add_locked(tp, tp + LEAK_TCB_BYTES);
}

/* ---------------------------------------------------------------- reading memory */

static int self_read_state; /* 0 untried, 1 process_vm_readv works, -1 it does not */

LEAK_NO_SANITIZE static void copy_words(uintptr_t *dst, const volatile uintptr_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

/* Copy up to len bytes at src into dst, never faulting when process_vm_readv is allowed:
 * returns the bytes copied (0 for memory that is gone). */
static size_t read_self(void *dst, uintptr_t src, size_t len)
{
    if (self_read_state >= 0) {
        struct iovec local = {dst, len}, remote = {(void *)src, len};
        ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (n >= 0) {
            self_read_state = 1;
            return (size_t)n;
        }
        if (self_read_state == 1 || errno == EFAULT)
            return 0;
        self_read_state = -1; /* seccomp, or no such call: read directly */
    }
    copy_words(dst, (const volatile uintptr_t *)src, len / sizeof(uintptr_t));
    return len & ~(sizeof(uintptr_t) - 1);
}

/* ---------------------------------------------------------------- marking */

struct marker {
    struct leak_block *b;
    size_t n;
    uintptr_t lo, hi;  /* [first block's start, last block's end) */
    uint32_t *stack;   /* indices; each block is pushed at most once per phase */
    size_t top;
};

/* The block holding address v, or SIZE_MAX. */
static size_t block_of(const struct marker *m, uintptr_t v)
{
    if (v < m->lo || v >= m->hi)
        return SIZE_MAX;
    size_t lo = 0, hi = m->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->b[mid].start <= v)
            lo = mid;
        else
            hi = mid;
    }
    const struct leak_block *blk = &m->b[lo];
    return v >= blk->start && v - blk->start < blk->size ? lo : SIZE_MAX;
}

/* Phase 1: a word of a root or a reachable block.  Phase 2 (leader != SIZE_MAX): a word of
 * a lost block, found from `leader`: unseen blocks and earlier leaders become indirect. */
static void mark_word(struct marker *m, uintptr_t v, size_t leader)
{
    size_t i = block_of(m, v);
    if (i == SIZE_MAX || i == leader)
        return;
    struct leak_block *blk = &m->b[i];
    if (leader == SIZE_MAX) {
        if (blk->state != LS_UNSEEN)
            return;
        blk->state = LS_REACHABLE;
        m->stack[m->top++] = (uint32_t)i;
    } else if (blk->state == LS_UNSEEN) {
        blk->state = LS_INDIRECT;
        m->stack[m->top++] = (uint32_t)i;
    } else if (blk->state == LS_DEFINITE) {
        blk->state = LS_INDIRECT; /* its own structure was marked when it led */
    }
}

/* The words of a live block (the buddy lock is held: it cannot be released meanwhile). */
LEAK_NO_SANITIZE static void scan_block(struct marker *m, size_t i, size_t leader)
{
    const volatile uintptr_t *w = (const volatile uintptr_t *)m->b[i].start;
    size_t words = m->b[i].size / sizeof(uintptr_t);
    for (size_t k = 0; k < words; k++) {
        uintptr_t v = w[k];
        if (v >= m->lo && v < m->hi)
            mark_word(m, v, leader);
    }
}

static void drain(struct marker *m, size_t leader)
{
    while (m->top)
        scan_block(m, m->stack[--m->top], leader);
}

static void scan_range(struct marker *m, uintptr_t start, uintptr_t end)
{
    uintptr_t buf[LEAK_READ_CHUNK / sizeof(uintptr_t)];
    for (uintptr_t p = start; p < end;) {
        size_t len = end - p < sizeof buf ? (size_t)(end - p) : sizeof buf;
        size_t got = read_self(buf, p, len);
        if (got == 0) { /* unreadable: skip to the next page */
            p = (p | (BUDDY_PAGE_SIZE - 1)) + 1;
            continue;
        }
        for (size_t k = 0; k < got / sizeof(uintptr_t); k++)
            if (buf[k] >= m->lo && buf[k] < m->hi)
                mark_word(m, buf[k], SIZE_MAX);
        drain(m, SIZE_MAX);
        p += got;
    }
}

/* Mark and classify every block of set (leak_lock held, no other allocator lock).  False
 * when memory for the mark stack is short. */
static bool classify_locked(struct block_set *set, uintptr_t stack_from)
{
    leak_assert_locked();
    struct marker m = {set->b, set->n, 0, 0, NULL, 0};
    if (!set->n)
        return true;
    m.lo = set->b[0].start;
    m.hi = set->b[set->n - 1].start + set->b[set->n - 1].size;
    size_t stack_bytes = set->n * sizeof(uint32_t);
    m.stack = heap_meta_alloc(stack_bytes);
    if (!m.stack)
        return false;
    roots_list_locked(stack_from);
    buddy_lock_all(); /* no block released or unmapped while its words are read */
    for (size_t i = 0; i < set->n; i++) {
        struct leak_block *blk = &set->b[i];
        bool expect = blk->kind == LK_SMALL && blk->flags != LF_ROOT &&
                      ptrset_contains(expected, nr_expected, (const void *)blk->start);
        if (expect)
            blk->flags |= LF_EXPECTED;
        if (blk->flags) {
            blk->state = LS_REACHABLE;
            m.stack[m.top++] = (uint32_t)i;
        }
    }
    drain(&m, SIZE_MAX);
    for (size_t r = 0; r < nr_roots; r++)
        scan_range(&m, roots[r].start, roots[r].end);
    /* Lost blocks, in address order: each one not yet seen leads; what it points into,
     * directly or through others, is indirectly lost. */
    for (size_t i = 0; i < set->n; i++) {
        if (set->b[i].state != LS_UNSEEN)
            continue;
        set->b[i].state = LS_DEFINITE;
        m.stack[m.top++] = (uint32_t)i;
        drain(&m, i);
    }
    buddy_unlock_all();
    heap_meta_free(m.stack, stack_bytes);
    return true;
}

/* ---------------------------------------------------------------- reporting (leak_lock) */

static const char *state_name(uint8_t state)
{
    switch (state) {
    case LS_DEFINITE:
        return "definitely lost";
    case LS_INDIRECT:
        return "indirectly lost";
    default:
        return "still reachable";
    }
}

static void group_add_locked(const struct leak_block *blk)
{
    leak_assert_locked();
    /* Large blocks group by size (runs of pages have any length; aligned buddy blocks are
     * 2^order pages), huge ones too. */
    size_t key = blk->kind == LK_LARGE || blk->kind == LK_HUGE ? blk->size : 0;
    uintptr_t h = ((uintptr_t)blk->cache + 1) * 0x9e3779b97f4a7c15ull ^
                  (uintptr_t)blk->site * 0xff51afd7ed558ccdull ^ key * 0xc2b2ae3d27d4eb4full ^
                  (uintptr_t)(blk->state * 31u + blk->kind);
    h ^= h >> 29;
    for (size_t probe = 0; probe < LEAK_GROUPS; probe++) {
        struct leak_group *g = &groups[(h + probe) & (LEAK_GROUPS - 1)];
        if (!g->used) {
            g->used = true;
            g->state = blk->state;
            g->kind = blk->kind;
            g->cache = blk->cache;
            g->key = key;
            g->site = blk->site;
            g->size = blk->size;
        } else if (g->state != blk->state || g->kind != blk->kind || g->cache != blk->cache ||
                   g->key != key || g->site != blk->site) {
            continue;
        }
        if (g->count < LEAK_FIRST_ADDRS)
            g->first[g->count] = (const void *)blk->start;
        g->count++;
        g->bytes += blk->size;
        return;
    }
}

/* "cache kmalloc-112 (112 bytes each)", "large-4M", "huge blocks of 5246976 bytes". */
static void group_what(char *buf, size_t len, const struct leak_group *g)
{
    if (g->kind == LK_SMALL) {
        const char *name = g->cache < nr_leak_caches ? leak_caches[g->cache].name : "(other)";
        heap_fmt(buf, len, "cache %s (%zu bytes each)", name, g->size);
    } else if (g->kind == LK_LARGE) {
        heap_fmt(buf, len, "large blocks of %zu bytes", g->size);
    } else {
        heap_fmt(buf, len, "huge blocks of %zu bytes", g->size);
    }
}

static bool group_report(const struct leak_group *g)
{
    char addrs[LEAK_FIRST_ADDRS * 20 + 8];
    size_t pos = 0;
    size_t shown = g->count < LEAK_FIRST_ADDRS ? g->count : LEAK_FIRST_ADDRS;
    for (size_t i = 0; i < shown; i++)
        pos += heap_fmt(addrs + pos, sizeof addrs - pos, " %p", g->first[i]);
    const char *more = g->count > shown ? " ..." : "";
    char what[96];
    group_what(what, sizeof what, g);
    if (g->site) {
        char site[200];
        debug_format_site(site, sizeof site, g->site);
        return heap_fmt_line("  %s: %zu blocks (%zu bytes) of %s allocated by %s; first:%s%s",
                             state_name(g->state), g->count, g->bytes, what, site, addrs, more);
    }
    return heap_fmt_line("  %s: %zu blocks (%zu bytes) of %s; first:%s%s",
                         state_name(g->state), g->count, g->bytes, what, addrs, more);
}

struct leak_totals {
    size_t count[4], bytes[4]; /* by enum leak_state */
    size_t expected, groups;
};

/* Group the blocks of the kinds asked for, print the summary and the largest groups.
 * Returns false when a line could not be written. */
static bool report_locked(const struct block_set *set, unsigned kinds, struct leak_totals *t)
{
    leak_assert_locked();
    memset(groups, 0, sizeof groups);
    for (size_t i = 0; i < set->n; i++) {
        const struct leak_block *blk = &set->b[i];
        if (blk->flags & LF_ROOT)
            continue;
        if (blk->flags & LF_EXPECTED) {
            t->expected++;
            continue;
        }
        t->count[blk->state]++;
        t->bytes[blk->state] += blk->size;
        bool want = (blk->state == LS_DEFINITE && (kinds & SLABCACHE_LEAK_DEFINITE)) ||
                    (blk->state == LS_INDIRECT && (kinds & SLABCACHE_LEAK_INDIRECT)) ||
                    (blk->state == LS_REACHABLE && (kinds & SLABCACHE_LEAK_REACHABLE));
        if (want)
            group_add_locked(blk);
    }
    size_t lost = t->count[LS_DEFINITE] + t->count[LS_INDIRECT];
    size_t reported = 0;
    for (size_t i = 0; i < LEAK_GROUPS; i++)
        if (groups[i].used)
            groups[reported++] = groups[i]; /* compact: the first `reported` are groups */
    t->groups = reported;
    bool show_reachable = (kinds & SLABCACHE_LEAK_REACHABLE) && t->count[LS_REACHABLE];
    bool ok = true;
    if (lost || show_reachable || (kinds & SLABCACHE_LEAK_LIST)) {
        ok &= heap_fmt_line(
            "leak report (pid %d): %zu blocks (%zu bytes) lost: %zu definitely (%zu bytes), "
            "%zu indirectly (%zu bytes); %zu still reachable (%zu bytes)%s; %zu expected; "
            "objects cached in magazines are free",
            (int)getpid(), lost, t->bytes[LS_DEFINITE] + t->bytes[LS_INDIRECT],
            t->count[LS_DEFINITE], t->bytes[LS_DEFINITE], t->count[LS_INDIRECT],
            t->bytes[LS_INDIRECT], t->count[LS_REACHABLE], t->bytes[LS_REACHABLE],
            (kinds & SLABCACHE_LEAK_REACHABLE) ? "" : ", not listed", t->expected);
        /* Largest groups first, definitely lost before indirectly lost before reachable:
         * selection, as few are shown. */
        size_t shown = reported < LEAK_GROUPS_SHOWN ? reported : LEAK_GROUPS_SHOWN;
        for (size_t i = 0; i < shown; i++) {
            size_t best = i;
            for (size_t j = i + 1; j < reported; j++) {
                const struct leak_group *a = &groups[j], *b = &groups[best];
                uint8_t ra = a->state == LS_REACHABLE ? 0 : a->state;
                uint8_t rb = b->state == LS_REACHABLE ? 0 : b->state;
                if (ra > rb || (ra == rb && a->bytes > b->bytes))
                    best = j;
            }
            struct leak_group tmp = groups[i];
            groups[i] = groups[best];
            groups[best] = tmp;
            ok &= group_report(&groups[i]);
        }
        if (reported > shown)
            ok &= heap_fmt_line("  ... %zu more groups", reported - shown);
    }
    if (kinds & SLABCACHE_LEAK_LIST) {
        size_t live = 0;
        for (size_t i = 0; i < set->n; i++)
            live += !(set->b[i].flags & LF_ROOT);
        ok &= heap_fmt_line("live blocks (pid %d): %zu", (int)getpid(), live);
        for (size_t i = 0; i < set->n; i++) {
            const struct leak_block *blk = &set->b[i];
            if (blk->flags & LF_ROOT)
                continue;
            char what[96];
            struct leak_group g = {.kind = blk->kind, .cache = blk->cache, .size = blk->size};
            group_what(what, sizeof what, &g);
            ok &= heap_fmt_line("  %p %zu bytes, %s, %s", (const void *)blk->start, blk->size,
                                (blk->flags & LF_EXPECTED) ? "expected leak"
                                                           : state_name(blk->state),
                                what);
        }
    }
    return ok;
}

/* The report; *written = every line reached the output.  Returns the lost blocks.  Never
 * inlined: its locals (and its callees' once inlined) must lie below the entry point's
 * frame, where the scan of the stack starts. */
__attribute__((noinline)) static size_t leak_report_from(unsigned kinds, uintptr_t stack_from,
                                                         bool *written)
{
    struct block_set set = {0};
    struct leak_totals t;
    memset(&t, 0, sizeof t);
    *written = true;
    heap_mutex_lock(&leak_lock);
    /* The previous report's first addresses would be roots (this file's data is scanned). */
    memset(groups, 0, sizeof groups);
    if (!gather_locked(&set) || !classify_locked(&set, stack_from)) {
        heap_mutex_unlock(&leak_lock);
        set_release(&set);
        *written = heap_fmt_line("leak report: out of memory for the list of blocks");
        return 0;
    }
    *written = report_locked(&set, kinds, &t);
    heap_mutex_unlock(&leak_lock);
    set_release(&set);
    return t.count[LS_DEFINITE] + t.count[LS_INDIRECT];
}

/* The stack pointer of the caller's frame: the real stack, not the address of a local (under
 * ASan's detect_stack_use_after_return, locals whose address is taken live on a fake stack
 * elsewhere). */
static inline __attribute__((always_inline)) uintptr_t current_sp(void)
{
    uintptr_t sp;
#if defined(__x86_64__)
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#else
    sp = (uintptr_t)__builtin_frame_address(0);
#endif
    return sp;
}

/* The entry points: the callee-saved registers are spilled into this frame, and the stack
 * is scanned from its stack pointer up, so the report's own frames (below) are not roots. */
__attribute__((noinline)) static size_t leak_report_entry(unsigned kinds, bool *written)
{
    __builtin_unwind_init();
    size_t n = leak_report_from(kinds, current_sp(), written);
    __asm__ volatile("" : : "r"(n) : "memory"); /* no tail call: this frame stays */
    return n;
}

size_t slabcache_leak_report_kinds(unsigned kinds)
{
    bool written;
    return leak_report_entry(kinds, &written);
}

size_t slabcache_leak_report(void)
{
    bool written;
    return leak_report_entry(SLABCACHE_LEAK_DEFINITE | SLABCACHE_LEAK_INDIRECT, &written);
}

/* ---------------------------------------------------------------- the listing */

void leak_for_each_block(void (*fn)(const struct leak_block_info *b, void *arg), void *arg)
{
    struct block_set set = {0};
    heap_mutex_lock(&leak_lock);
    bool ok = gather_locked(&set);
    if (ok) {
        for (size_t i = 0; i < set.n; i++) {
            const struct leak_block *blk = &set.b[i];
            if (blk->flags & LF_ROOT)
                continue;
            struct leak_block_info info = {(const void *)blk->start, blk->size, NULL, blk->site};
            char what[96];
            struct leak_group g = {.kind = blk->kind, .cache = blk->cache, .size = blk->size};
            group_what(what, sizeof what, &g);
            info.what = what;
            fn(&info, arg);
        }
    }
    heap_mutex_unlock(&leak_lock);
    set_release(&set);
}

/* ---------------------------------------------------------------- at exit */

/* SLABCACHE_LEAKS (heap/options.h: words separated by commas, in any case).
 *   on (1, yes, true)  report definitely and indirectly lost blocks at exit
 *   reachable          ... and still reachable ones
 *   all, list          ... and list every live block with its size and state
 *   exit               end the process with SLABCACHE_LEAK_EXIT_CODE (23) when blocks were
 *                      lost and the report was written (alone: on,exit)
 *   off (0, no, false) nothing (the default)
 * A malformed value was reported by the option table at start-up and reads as off; setting
 * SLABCACHE_LEAK_EXIT_CODE makes a report exit too. */
bool leak_option(struct leak_options *out)
{
    memset(out, 0, sizeof *out);
    out->exit_code = (int)heap_opt_uint(OPT_LEAK_EXIT_CODE);
    if (heap_opt_is(OPT_LEAKS, "off"))
        return heap_opt_source(OPT_LEAKS) != HEAP_OPT_FROM_REJECTED;
    out->kinds = SLABCACHE_LEAK_DEFINITE | SLABCACHE_LEAK_INDIRECT;
    if (heap_opt_is(OPT_LEAKS, "reachable"))
        out->kinds |= SLABCACHE_LEAK_REACHABLE;
    if (heap_opt_is(OPT_LEAKS, "all") || heap_opt_is(OPT_LEAKS, "list"))
        out->kinds |= SLABCACHE_LEAK_REACHABLE | SLABCACHE_LEAK_LIST;
    out->exit_status = heap_opt_is(OPT_LEAKS, "exit") ||
                       heap_opt_source(OPT_LEAK_EXIT_CODE) == HEAP_OPT_FROM_ENV;
    return true;
}

/* The exit report (the exit-time destructor in status.c calls it last): when blocks were
 * lost, the report was written and a status was asked for, stdio is flushed and the process
 * ends with it. */
void leak_at_exit(const struct leak_options *o)
{
    if (!o->kinds)
        return;
    bool written;
    size_t lost = leak_report_entry(o->kinds, &written);
    if (!lost || !o->exit_status)
        return;
    if (!written) {
        heap_fmt_line("leak report could not be written: exit status left unchanged");
        return;
    }
    fflush(NULL);
    _exit(o->exit_code);
}
