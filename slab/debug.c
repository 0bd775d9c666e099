/* SPDX-License-Identifier: MIT */
/* slab/debug.c - debug options of kmem_caches: SLABCACHE_DEBUG, SLABCACHE_FAIL, poison,
 * red zones, call-site tracking, tracing, memory-checker annotations.
 *
 * Options (parsed once, at the first cache creation, without allocating; docs/debugging.md):
 *   SLABCACHE_DEBUG=<letters>[,<cache>[,<cache>...]]   slub_debug syntax
 *     F consistency checks, Z red zones, P poison, U call sites, T trace, - off;
 *     no letters = FZPU; no names = every cache; a name ending in '*' is a prefix.
 *   SLABCACHE_FAIL=every=<N>|prob=<P>[,seed=<S>][,cache=<name>]...
 *
 * A cache gets its debug bits from its SLAB_* flags and the environment at creation; any bit
 * means no magazines, so every operation reaches slab.c, which calls the hooks here under
 * cache->lock.  Hooks never print: they fill a struct debug_problem which slab.c
 * reports (debug_report) after dropping the lock.  Caches with a constructor are never
 * poisoned (as in SLUB): their free objects must keep their constructed state.
 */
#include "slab/debug.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "slab/fastpath.h"
#include "slab/internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define SLAB_HAVE_VALGRIND 1
#endif
#endif
#ifndef SLAB_HAVE_VALGRIND
#define SLAB_HAVE_VALGRIND 0
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLAB_HAVE_ASAN 1
#define SLAB_NO_ASAN __attribute__((no_sanitize_address))
#else
#define SLAB_HAVE_ASAN 0
#define SLAB_NO_ASAN
#endif

#define DBG_ALL_LETTERS (SLAB_DBG_CHECKS | SLAB_DBG_REDZONE | SLAB_DBG_POISON | SLAB_DBG_USER)
#define DBG_SITE_MAX 200

/* ---------------------------------------------------------------- options */

static struct heap_mutex opts_lock = HEAP_MUTEX_INITIALIZER; /* a leaf (types.h) */
#define opts_assert_locked() heap_mutex_assert_held(&opts_lock)
static struct {
    bool parsed;
    unsigned letters;        /* SLABCACHE_DEBUG bits */
    const char *names;       /* after the first ',' (environment memory), NULL = all */
    bool fail_on;
    uint64_t fail_every, fail_threshold, fail_seed;
    const char *fail_names;  /* first "cache=" value, NULL = all */
} opts;

/* Does `name` match one of the comma-separated entries of list (a key=value list when
 * key is given: only key=<name> entries count)?  A trailing '*' matches a prefix. */
static bool name_in_list(const char *list, const char *key, const char *name)
{
    size_t keylen = key ? strlen(key) : 0;
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!key || (len > keylen && strncmp(p, key, keylen) == 0)) {
            const char *v = p + keylen;
            size_t vlen = len - keylen;
            if (vlen && v[vlen - 1] == '*') {
                if (strncmp(name, v, vlen - 1) == 0)
                    return true;
            } else if (vlen == strlen(name) && strncmp(name, v, vlen) == 0) {
                return true;
            }
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* Unsigned decimal at s; *ok false when malformed. */
static uint64_t parse_u64(const char *s, size_t len, bool *ok)
{
    uint64_t v = 0;
    if (len == 0)
        *ok = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            *ok = false;
            return 0;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* SLABCACHE_VALGRIND=0 keeps the normal (magazine) paths under valgrind, for profiling with
 * callgrind or cachegrind rather than checking with memcheck. */
static bool valgrind_opted_out(void)
{
    const char *v = getenv("SLABCACHE_VALGRIND"); /* getenv never allocates */
    return v && v[0] == '0' && v[1] == '\0';
}

/* A probability "0.01", "1", "1e-3" is not accepted: digits, an optional fraction.  Returns
 * it scaled to 2^32. */
static uint64_t parse_prob(const char *s, size_t len, bool *ok)
{
    uint64_t ip = 0, frac = 0, scale = 1;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        ip = ip * 10 + (uint64_t)(s[i] - '0');
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (scale < 1000000000ull) {
                frac = frac * 10 + (uint64_t)(s[i] - '0');
                scale *= 10;
            }
        }
    }
    if (i != len || len == 0 || ip > 1 || (ip == 1 && frac)) {
        *ok = false;
        return 0;
    }
    if (ip == 1)
        return (uint64_t)1 << 32;
    return (frac << 32) / scale;
}

static void parse_fail_locked(const char *v)
{
    opts_assert_locked();
    bool ok = true;
    opts.fail_seed = 1;
    for (const char *p = v; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            ok = false;
        } else {
            size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
            if (klen == 5 && strncmp(p, "every", 5) == 0)
                opts.fail_every = parse_u64(eq + 1, vlen, &ok);
            else if (klen == 4 && strncmp(p, "prob", 4) == 0)
                opts.fail_threshold = parse_prob(eq + 1, vlen, &ok);
            else if (klen == 4 && strncmp(p, "seed", 4) == 0)
                opts.fail_seed = parse_u64(eq + 1, vlen, &ok);
            else if (klen == 5 && strncmp(p, "cache", 5) == 0)
                opts.fail_names = v; /* name_in_list(v, "cache=", ...) reads them all */
            else
                ok = false;
        }
        p = end ? end + 1 : p + len;
    }
    if (!ok || (!opts.fail_every && !opts.fail_threshold)) {
        heap_fmt_line("SLABCACHE_FAIL=%s: expected every=N or prob=P[,seed=S][,cache=NAME]; "
                      "ignored",
                      v);
        opts.fail_every = opts.fail_threshold = 0;
        opts.fail_names = NULL;
        return;
    }
    opts.fail_on = true;
    if (!opts.fail_seed)
        opts.fail_seed = 1;
}

static void parse_options_locked(void)
{
    opts_assert_locked();
    memset(&opts, 0, sizeof opts);
    opts.parsed = true;
    const char *v = getenv("SLABCACHE_DEBUG"); /* getenv never allocates */
    if (v) {
        const char *comma = strchr(v, ',');
        size_t nletters = comma ? (size_t)(comma - v) : strlen(v);
        opts.names = comma && comma[1] ? comma + 1 : NULL;
        unsigned bits = nletters ? 0 : DBG_ALL_LETTERS;
        for (size_t i = 0; i < nletters; i++) {
            switch (v[i]) {
            case 'F': case 'f': bits |= SLAB_DBG_CHECKS; break;
            case 'Z': case 'z': bits |= SLAB_DBG_REDZONE; break;
            case 'P': case 'p': bits |= SLAB_DBG_POISON; break;
            case 'U': case 'u': bits |= SLAB_DBG_USER; break;
            case 'T': case 't': bits |= SLAB_DBG_TRACE; break;
            case '-': bits = 0; i = nletters; break;
            default: {
                char letter[2] = {v[i], '\0'};
                heap_fmt_line("SLABCACHE_DEBUG: unknown option '%s' ignored (FZPUT or -)", letter);
                break;
            }
            }
        }
        opts.letters = bits;
    }
    const char *f = getenv("SLABCACHE_FAIL");
    if (f && *f)
        parse_fail_locked(f);
}

void debug_reset_options(void)
{
    heap_mutex_lock(&opts_lock);
    opts.parsed = false;
    heap_mutex_unlock(&opts_lock);
}

static inline size_t align_up_sz(size_t x, size_t a)
{
    return (x + a - 1) & ~(a - 1);
}

void debug_setup_cache(struct kmem_cache *c, unsigned int flags, bool has_ctor)
{
    unsigned bits = 0;
    if (flags & SLAB_CONSISTENCY_CHECKS)
        bits |= SLAB_DBG_CHECKS;
    if (flags & SLAB_RED_ZONE)
        bits |= SLAB_DBG_REDZONE;
    if (flags & SLAB_POISON)
        bits |= SLAB_DBG_POISON;
    if (flags & SLAB_STORE_USER)
        bits |= SLAB_DBG_USER;

    heap_mutex_lock(&opts_lock);
    if (!opts.parsed)
        parse_options_locked();
    if (opts.letters && (!opts.names || name_in_list(opts.names, NULL, c->name)))
        bits |= opts.letters;
    if (opts.fail_on && (!opts.fail_names || name_in_list(opts.fail_names, "cache=", c->name))) {
        bits |= SLAB_DBG_FAIL;
        c->fail_every = opts.fail_every;
        c->fail_threshold = opts.fail_threshold;
        c->fail_rng = opts.fail_seed;
        c->fail_count = 0;
    }
    heap_mutex_unlock(&opts_lock);

    if (has_ctor) /* objects keep their constructed state while free: no poison (SLUB) */
        bits &= ~SLAB_DBG_POISON;
    if (SLAB_HAVE_VALGRIND && RUNNING_ON_VALGRIND && !valgrind_opted_out())
        bits |= SLAB_DBG_VALGRIND;
    c->debug = bits;

    /* Layout: [object][red zone][track][padding to align]. */
    size_t off = c->object_size;
    if (bits & SLAB_DBG_REDZONE) {
        size_t end = align_up_sz(off + SLAB_RED_MIN, 8);
        if (!(bits & SLAB_DBG_USER))
            end = align_up_sz(end, c->align);
        c->rz_off = (uint32_t)off;
        c->rz_len = (uint32_t)(end - off);
        off = end;
    }
    if (bits & SLAB_DBG_USER) {
        c->track_off = (uint32_t)align_up_sz(off, 8);
        off = c->track_off + sizeof(struct debug_track);
    }
    c->slot_size = (uint32_t)align_up_sz(off, c->align);
}

/* ---------------------------------------------------------------- small helpers */

static uint32_t current_tid(void)
{
    return (uint32_t)gettid();
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* First and last offsets in [0, len) where p differs from the expected byte pattern
 * (expect everywhere, except last_expect at the final byte when last_special). */
SLAB_NO_ASAN static bool find_changed(const unsigned char *p, size_t len, unsigned char expect,
                                      bool last_special, unsigned char last_expect,
                                      size_t *first, size_t *last, unsigned char *found,
                                      unsigned char *expected)
{
    bool any = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char want = (last_special && i == len - 1) ? last_expect : expect;
        if (p[i] != want) {
            if (!any) {
                *first = i;
                *found = p[i];
                *expected = want;
                any = true;
            }
            *last = i;
        }
    }
    return any;
}

static void poison_fill(const struct kmem_cache *c, void *obj)
{
    memset(obj, SLAB_POISON_FREE, c->object_size - 1);
    ((unsigned char *)obj)[c->object_size - 1] = SLAB_POISON_END;
}

static void redzone_fill(const struct kmem_cache *c, void *obj, unsigned char v)
{
    memset((char *)obj + c->rz_off, v, c->rz_len);
}

/* ---------------------------------------------------------------- memory checkers */

void debug_mark_slab_new(struct kmem_cache *c, struct slab *s)
{
    (void)s;
    if (!(c->debug & (SLAB_DBG_VALGRIND | SLAB_DBG_ASAN)))
        return;
    for (uint32_t i = 0; i < c->objs_per_slab; i++) {
        char *obj = s->objs + (size_t)i * c->slot_size;
        (void)obj;
#if SLAB_HAVE_VALGRIND
        if (c->debug & SLAB_DBG_VALGRIND)
            VALGRIND_MAKE_MEM_NOACCESS(obj, c->object_size);
#endif
#if SLAB_HAVE_ASAN
        if (c->debug & SLAB_DBG_ASAN)
            ASAN_POISON_MEMORY_REGION(obj, c->object_size);
#endif
    }
}

void debug_mark_slab_release(struct kmem_cache *c, struct slab *s)
{
    (void)s;
#if SLAB_HAVE_VALGRIND
    if (c->debug & SLAB_DBG_VALGRIND)
        VALGRIND_MAKE_MEM_UNDEFINED(s, c->slab_bytes);
#endif
#if SLAB_HAVE_ASAN
    if (c->debug & SLAB_DBG_ASAN)
        ASAN_UNPOISON_MEMORY_REGION(s, c->slab_bytes);
#endif
    (void)c;
}

void debug_mark_dtor(struct kmem_cache *c, void *obj)
{
    (void)obj;
#if SLAB_HAVE_VALGRIND
    if (c->debug & SLAB_DBG_VALGRIND)
        VALGRIND_MAKE_MEM_DEFINED(obj, c->object_size);
#endif
#if SLAB_HAVE_ASAN
    if (c->debug & SLAB_DBG_ASAN)
        ASAN_UNPOISON_MEMORY_REGION(obj, c->object_size);
#endif
    (void)c;
}

void debug_mark_alloc(struct kmem_cache *c, void *obj)
{
    (void)obj;
#if SLAB_HAVE_VALGRIND
    if (c->debug & SLAB_DBG_VALGRIND) {
        VALGRIND_MALLOCLIKE_BLOCK(obj, c->object_size, 0, 0);
        /* Constructed objects (and poison, which the program may inspect) are defined. */
        if (c->ctor || c->ctor_simple)
            VALGRIND_MAKE_MEM_DEFINED(obj, c->object_size);
    }
#endif
#if SLAB_HAVE_ASAN
    if (c->debug & SLAB_DBG_ASAN)
        ASAN_UNPOISON_MEMORY_REGION(obj, c->object_size);
#endif
    (void)c;
}

void debug_mark_free(struct kmem_cache *c, void *obj)
{
    (void)obj;
#if SLAB_HAVE_VALGRIND
    if (c->debug & SLAB_DBG_VALGRIND)
        VALGRIND_FREELIKE_BLOCK(obj, 0); /* marks the object inaccessible */
#endif
#if SLAB_HAVE_ASAN
    if (c->debug & SLAB_DBG_ASAN)
        ASAN_POISON_MEMORY_REGION(obj, c->object_size);
#endif
    (void)c;
}

/* Let our own checks read a free object (valgrind only; ASan readers are SLAB_NO_ASAN). */
static void open_for_check(const struct kmem_cache *c, const void *obj)
{
    (void)c;
    (void)obj;
#if SLAB_HAVE_VALGRIND
    if (c->debug & SLAB_DBG_VALGRIND)
        VALGRIND_MAKE_MEM_DEFINED(obj, c->object_size);
#endif
}

static void close_after_check(const struct kmem_cache *c, const void *obj)
{
    (void)c;
    (void)obj;
#if SLAB_HAVE_VALGRIND
    if (c->debug & SLAB_DBG_VALGRIND)
        VALGRIND_MAKE_MEM_NOACCESS(obj, c->object_size);
#endif
}

/* ---------------------------------------------------------------- hooks */

void debug_init_slab(struct kmem_cache *c, struct slab *s)
{
    if (c->debug & (SLAB_DBG_POISON | SLAB_DBG_REDZONE | SLAB_DBG_USER)) {
        for (uint32_t i = 0; i < c->objs_per_slab; i++) {
            char *obj = s->objs + (size_t)i * c->slot_size;
            if (c->debug & SLAB_DBG_POISON)
                poison_fill(c, obj);
            if (c->debug & SLAB_DBG_REDZONE)
                redzone_fill(c, obj, SLAB_RED_INACTIVE);
            if (c->debug & SLAB_DBG_USER)
                memset(debug_track_of(c, obj), 0, sizeof(struct debug_track));
        }
    }
    debug_mark_slab_new(c, s);
}

bool debug_should_fail_locked(struct kmem_cache *c)
{
    heap_mutex_assert_held(&c->lock);
    c->fail_count++;
    if (c->fail_every && c->fail_count % c->fail_every == 0)
        return true;
    if (c->fail_threshold) {
        uint64_t x = c->fail_rng; /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c->fail_rng = x;
        return (x >> 32) < c->fail_threshold;
    }
    return false;
}

static void problem_track(const struct kmem_cache *c, const void *obj,
                          struct debug_problem *pb)
{
    if (c->debug & SLAB_DBG_USER) {
        pb->have_track = true;
        pb->track = *debug_track_of(c, obj);
    }
}

void debug_alloc_locked(struct kmem_cache *c, void *obj, const void *caller,
                        struct debug_problem *pb)
{
    heap_mutex_assert_held(&c->lock);
    open_for_check(c, obj);
    if (c->debug & SLAB_DBG_POISON) {
        struct debug_problem p = {0};
        if (find_changed(obj, c->object_size, SLAB_POISON_FREE, true, SLAB_POISON_END,
                         &p.first, &p.last, &p.found, &p.expected) &&
            pb->kind == SLAB_DBG_OK) {
            *pb = p;
            pb->kind = SLAB_DBG_USE_AFTER_FREE;
            pb->obj = obj;
            pb->caller = caller;
            pb->op = "alloc";
            problem_track(c, obj, pb);
        }
    }
    if (c->debug & SLAB_DBG_REDZONE) {
        struct debug_problem p = {0};
        if (find_changed((unsigned char *)obj + c->rz_off, c->rz_len, SLAB_RED_INACTIVE, false,
                         0, &p.first, &p.last, &p.found, &p.expected) &&
            pb->kind == SLAB_DBG_OK) {
            *pb = p;
            pb->kind = SLAB_DBG_REDZONE_BAD;
            pb->obj = obj;
            pb->caller = caller;
            pb->op = "alloc";
            problem_track(c, obj, pb);
        }
        redzone_fill(c, obj, SLAB_RED_ACTIVE);
    }
    if (c->debug & SLAB_DBG_USER) {
        struct debug_track *t = debug_track_of(c, obj);
        t->alloc_site = caller;
        t->alloc_tid = current_tid();
        t->alloc_ns = now_ns();
    }
    debug_mark_alloc(c, obj);
}

bool debug_free_locked(struct kmem_cache *c, void *obj, const void *caller,
                       struct debug_problem *pb)
{
    heap_mutex_assert_held(&c->lock);
    struct slab *s = slab_of(c, obj);
    uint32_t idx = slab_slot_index(c, s, obj);
    if (idx == UINT32_MAX || !(s->bitmap[idx / 64] & ((uint64_t)1 << (idx % 64)))) {
        pb->kind = SLAB_DBG_DOUBLE_FREE;
        pb->obj = obj;
        pb->caller = caller;
        pb->op = "free";
        problem_track(c, obj, pb);
        return false;
    }
    if (c->debug & SLAB_DBG_REDZONE) {
        if (find_changed((unsigned char *)obj + c->rz_off, c->rz_len, SLAB_RED_ACTIVE, false, 0,
                         &pb->first, &pb->last, &pb->found, &pb->expected)) {
            pb->kind = SLAB_DBG_REDZONE_BAD;
            pb->obj = obj;
            pb->caller = caller;
            pb->op = "free";
            problem_track(c, obj, pb);
        }
        redzone_fill(c, obj, SLAB_RED_INACTIVE); /* restored: the free goes on */
    }
    if (c->debug & SLAB_DBG_POISON)
        poison_fill(c, obj);
    if (c->debug & SLAB_DBG_USER) {
        struct debug_track *t = debug_track_of(c, obj);
        t->free_site = caller;
        t->free_tid = current_tid();
        t->free_ns = now_ns();
    }
    debug_mark_free(c, obj);
    return true;
}

int debug_validate_slot_locked(struct kmem_cache *c, const void *obj, bool in_use)
{
    heap_mutex_assert_held(&c->lock);
    size_t first = 0, last = 0;
    unsigned char found = 0, expected = 0;
    if (c->debug & SLAB_DBG_REDZONE) {
        unsigned char want = in_use ? SLAB_RED_ACTIVE : SLAB_RED_INACTIVE;
        if (find_changed((const unsigned char *)obj + c->rz_off, c->rz_len, want, false, 0,
                         &first, &last, &found, &expected)) {
            heap_fmt_line("validate %s: red zone overwritten: %s object %p, red zone bytes "
                          "%zu..%zu past its end changed (0x%zx expected, found 0x%zx)",
                          c->name, in_use ? "allocated" : "free", obj, first, last,
                          (size_t)expected, (size_t)found);
            return -1;
        }
    }
    if (!in_use && (c->debug & SLAB_DBG_POISON)) {
        open_for_check(c, obj);
        bool bad = find_changed(obj, c->object_size, SLAB_POISON_FREE, true, SLAB_POISON_END,
                                &first, &last, &found, &expected);
        close_after_check(c, obj);
        if (bad) {
            heap_fmt_line("validate %s: use after free: free object %p modified at offset "
                          "%zu..%zu (0x%zx expected, found 0x%zx)",
                          c->name, obj, first, last, (size_t)expected, (size_t)found);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- reports */

struct site_search {
    uintptr_t addr;
    uintptr_t base;
    const char *name;
};

size_t debug_format_site(char *buf, size_t len, const void *addr)
{
    if (!addr)
        return heap_fmt(buf, len, "%s", "(unknown)");
    /* dladdr walks the loaded objects under the loader's lock; glibc's _dl_addr does not
     * allocate.  It names exported symbols only: the module+offset part is what addr2line
     * reads (addr2line -e module offset). */
    Dl_info info;
    memset(&info, 0, sizeof info);
    /* The return address points after the call: look up addr - 1 so a call at the very
     * end of a function is attributed to it. */
    const void *look = (const char *)addr - 1;
    size_t pos = heap_fmt(buf, len, "%p", addr);
    if (dladdr(look, &info) && info.dli_fbase) {
        const char *mod = info.dli_fname && *info.dli_fname ? info.dli_fname
                                                            : program_invocation_name;
        pos += heap_fmt(buf + pos, len - pos, " (%s+0x%zx", mod,
                        (size_t)((uintptr_t)addr - (uintptr_t)info.dli_fbase));
        if (info.dli_sname && info.dli_saddr)
            pos += heap_fmt(buf + pos, len - pos, " %s+0x%zx", info.dli_sname,
                            (size_t)((uintptr_t)addr - (uintptr_t)info.dli_saddr));
        pos += heap_fmt(buf + pos, len - pos, "%s", ")");
    }
    return pos;
}

/* CLOCK_MONOTONIC nanoseconds as seconds with 6 decimals ("2605.933305"). */
static void format_seconds(char *buf, size_t len, uint64_t ns)
{
    size_t pos = heap_fmt(buf, len, "%zu.", (size_t)(ns / 1000000000u));
    size_t us = (size_t)(ns % 1000000000u / 1000u);
    for (size_t div = 100000; div && pos + 1 < len; div /= 10)
        buf[pos++] = (char)('0' + us / div % 10);
    buf[pos < len ? pos : len - 1] = '\0';
}

static void track_report(const struct debug_problem *pb)
{
    if (!pb->have_track)
        return;
    char site[DBG_SITE_MAX];
    const struct debug_track *t = &pb->track;
    if (t->alloc_site) {
        debug_format_site(site, sizeof site, t->alloc_site);
        char when[32];
        format_seconds(when, sizeof when, t->alloc_ns);
        heap_fmt_line("  last allocated by %s, thread %u, at %s s", site, t->alloc_tid, when);
    }
    if (t->free_site) {
        debug_format_site(site, sizeof site, t->free_site);
        char when[32];
        format_seconds(when, sizeof when, t->free_ns);
        heap_fmt_line("  last freed by %s, thread %u, at %s s", site, t->free_tid, when);
    }
}

void debug_report_track(struct kmem_cache *c, const void *obj)
{
    if (!(c->debug & SLAB_DBG_USER))
        return;
    struct debug_problem pb = {0};
    problem_track(c, obj, &pb);
    track_report(&pb);
}

void debug_report(struct kmem_cache *c, const struct debug_problem *pb)
{
    char site[DBG_SITE_MAX];
    debug_format_site(site, sizeof site, pb->caller);
    switch (pb->kind) {
    case SLAB_DBG_OK:
        return;
    case SLAB_DBG_USE_AFTER_FREE:
        heap_fmt_line("use after free in cache %s: object %p was modified after it was freed, "
                      "bytes %zu..%zu (0x%zx expected, found 0x%zx at offset %zu); found at "
                      "alloc by %s",
                      c->name, pb->obj, pb->first, pb->last, (size_t)pb->expected,
                      (size_t)pb->found, pb->first, site);
        break;
    case SLAB_DBG_REDZONE_BAD:
        heap_fmt_line("red zone overwritten in cache %s: %s object %p (size %u), red zone bytes "
                      "%zu..%zu past its end changed (0x%zx expected, found 0x%zx); found at %s "
                      "by %s",
                      c->name, pb->op[0] == 'a' ? "free" : "allocated", pb->obj,
                      c->object_size, pb->first, pb->last, (size_t)pb->expected,
                      (size_t)pb->found, pb->op, site);
        break;
    case SLAB_DBG_DOUBLE_FREE:
        __atomic_fetch_add(&c->invalid_frees, 1, __ATOMIC_RELAXED);
        heap_fmt_line("kmem_cache_free: double free of %p in cache %s (object is already free); "
                      "freed again by %s",
                      pb->obj, c->name, site);
        break;
    case SLAB_DBG_SLAB_BAD:
        heap_fmt_line("consistency check failed in cache %s at %s of %p by %s", c->name, pb->op,
                      pb->obj, site);
        break;
    }
    track_report(pb);
    report_misuse();
}

void debug_trace(struct kmem_cache *c, const char *op, const void *obj,
                 const void *caller)
{
    char site[DBG_SITE_MAX];
    debug_format_site(site, sizeof site, caller);
    heap_fmt_line("trace %s %s %p size %u by %s", c->name, op, obj, c->object_size, site);
}
