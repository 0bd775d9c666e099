/* SPDX-License-Identifier: MIT */
/* slab/debug.c - debug options of kmem_caches: SLABCACHE_DEBUG, SLABCACHE_FAIL, poison,
 * red zones, call-site tracking, tracing, memory-checker annotations.
 *
 * Options (from the option table, heap/options.h; parsed once, at the first cache creation,
 * without allocating; docs/debugging.md):
 *   SLABCACHE_DEBUG=FLAGS[,CACHE...][;FLAGS[,CACHE...]...]   slub_debug syntax (below)
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
#include "heap/options.h"
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
/* What O drops from a cache whose minimum slab order they would raise (SLUB's
 * DEBUG_METADATA_FLAGS: the options that keep bytes beside or in place of the object). */
#define DBG_METADATA (SLAB_DBG_REDZONE | SLAB_DBG_POISON | SLAB_DBG_USER)
/* A: a mark in the parsed flags, never in cache->debug: SLABCACHE_FAIL may fail this cache. */
#define DBG_MARK_FAIL 0x100u
#define DBG_LETTERS "F Z P U T A O -"
#define DBG_COMPLAINTS_MAX 8 /* lines about one SLABCACHE_DEBUG value */
#define DBG_SHOWN_MAX 64     /* bytes of a value or block quoted in a report */
#define DBG_SITE_MAX 200

/* ---------------------------------------------------------------- options
 *
 * SLABCACHE_DEBUG follows the kernel's slub_debug (Documentation/mm/slub.rst, mm/slub.c):
 *   value  = block [';' block]...          empty blocks (";;") are skipped
 *   block  = FLAGS [',' CACHE [',' CACHE]...]
 *   FLAGS  = letters, any case: F Z P U T (the debug options), A (SLABCACHE_FAIL may fail
 *            the cache: the kernel's failslab mark), O (drop Z, P and U from a cache whose
 *            minimum slab order they would raise), '-' (clear the letters before it);
 *            no letters before a ',' means FZPU
 *   CACHE  = a cache name; '*' matches any run of characters ("kmalloc-*", as the kernel's
 *            trailing '*'; a '*' elsewhere works here too)
 * A block without names sets the flags of every cache that no block names (the last such
 * block wins; none: no flags); a cache named by a block gets the flags of the first block
 * that names it, and only those.  An empty value means FZPU for every cache (the kernel's
 * bare slub_debug).  What cannot be parsed is reported once, at the first cache creation,
 * naming the variable, the block and what is accepted; the rest still applies.
 */

static struct heap_mutex opts_lock = HEAP_MUTEX_INITIALIZER; /* a leaf (types.h) */
#define opts_assert_locked() heap_mutex_assert_held(&opts_lock)
static struct {
    bool parsed;
    const char *debug;       /* SLABCACHE_DEBUG (the option table's copy), NULL = unset */
    unsigned global;         /* flags of the caches no block names */
    bool higher_order_off;   /* O in some block */
    bool any_fail_mark;      /* A in some block */
    unsigned complaints;     /* lines written about SLABCACHE_DEBUG */
    bool fail_on;
    uint64_t fail_every, fail_threshold, fail_seed;
    const char *fail_names;  /* SLABCACHE_FAIL when it has cache= entries, else NULL */
} opts;

struct dbg_block {
    const char *start, *end; /* the block's text */
    unsigned flags;          /* SLAB_DBG_* letters and DBG_MARK_FAIL */
    const char *names;       /* after the ',' up to end; NULL: no names */
    bool higher_order_off;
};

/* Does name match the pattern p[0, plen) ('*' = any run of characters)? */
static bool glob_match(const char *p, size_t plen, const char *name)
{
    size_t pi = 0, ni = 0, star = SIZE_MAX, mark = 0;
    while (name[ni]) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = ni;
        } else if (pi < plen && p[pi] == name[ni]) {
            pi++;
            ni++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            ni = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

/* Does name match one of the ','-separated entries of [list, end) (only key=<pattern>
 * entries when key is given)? */
static bool name_in_list(const char *list, const char *end, const char *key, const char *name)
{
    size_t keylen = key ? strlen(key) : 0;
    for (const char *p = list; p && p <= end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (!key || (len >= keylen && strncmp(p, key, keylen) == 0)) {
            if (glob_match(p + keylen, len - keylen, name))
                return true;
        }
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* text[0, len) for a report: at most DBG_SHOWN_MAX bytes, control bytes as '?'. */
static void shown(char *buf, size_t size, const char *text, size_t len)
{
    size_t n = 0;
    for (; n < len && n + 4 < size && n < DBG_SHOWN_MAX; n++)
        buf[n] = (text[n] >= ' ' && text[n] != 0x7f) ? text[n] : '?';
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

/* One line "SLABCACHE_DEBUG=<value>: <what> in block "<block>"<rest>", at most
 * DBG_COMPLAINTS_MAX of them per value. */
static void complain_locked(const struct dbg_block *b, const char *what, const char *rest)
{
    opts_assert_locked();
    if (opts.complaints++ >= DBG_COMPLAINTS_MAX) {
        if (opts.complaints == DBG_COMPLAINTS_MAX + 1)
            heap_fmt_line("%s", "SLABCACHE_DEBUG: further problems not shown");
        return;
    }
    char value[DBG_SHOWN_MAX + 4], block[DBG_SHOWN_MAX + 4];
    shown(value, sizeof value, opts.debug, strlen(opts.debug));
    shown(block, sizeof block, b->start, (size_t)(b->end - b->start));
    heap_fmt_line("SLABCACHE_DEBUG=%s: %s in block \"%s\"%s", value, what, block, rest);
}

/* Parse the block at s (not at a ';'); it ends at the next ';' or the end.  With `report`,
 * complain about what is not understood.  Returns the end of the block. */
static const char *parse_block_locked(const char *s, struct dbg_block *b, bool report)
{
    opts_assert_locked();
    memset(b, 0, sizeof *b);
    b->start = s;
    b->end = s + strcspn(s, ";");
    const char *letters_end = s + strcspn(s, ",;");
    b->names = *letters_end == ',' ? letters_end + 1 : NULL;
    if (letters_end == s) /* ",inode": no letters means all of them */
        b->flags = DBG_ALL_LETTERS;
    char bad = 0;
    unsigned nbad = 0;
    for (const char *p = s; p < letters_end; p++) {
        switch (*p) {
        case 'F': case 'f': b->flags |= SLAB_DBG_CHECKS; break;
        case 'Z': case 'z': b->flags |= SLAB_DBG_REDZONE; break;
        case 'P': case 'p': b->flags |= SLAB_DBG_POISON; break;
        case 'U': case 'u': b->flags |= SLAB_DBG_USER; break;
        case 'T': case 't': b->flags |= SLAB_DBG_TRACE; break;
        case 'A': case 'a': b->flags |= DBG_MARK_FAIL; break;
        case 'O': case 'o': b->higher_order_off = true; break;
        case '-': b->flags = 0; break;
        default:
            if (!nbad++)
                bad = *p;
            break;
        }
    }
    if (!report)
        return b->end;
    if (nbad > 1 && !b->names) {
        /* "SLABCACHE_DEBUG=inode": a cache name where the flags go */
        char hint[DBG_SHOWN_MAX + 96];
        char word[DBG_SHOWN_MAX + 4];
        shown(word, sizeof word, s, (size_t)(letters_end - s));
        heap_fmt(hint, sizeof hint,
                 " (flags: " DBG_LETTERS "; cache names follow the flags after a ',', as in "
                 "\",%s\"); they are ignored",
                 word);
        complain_locked(b, "unknown flags", hint);
    } else if (nbad) {
        char what[48];
        char letter[2] = {bad >= ' ' && bad != 0x7f ? bad : '?', '\0'};
        heap_fmt(what, sizeof what, "unknown flag '%s'", letter);
        complain_locked(b, what, " (flags: " DBG_LETTERS "); it is ignored");
    }
    for (const char *n = b->names; n && n <= b->end;) {
        const char *comma = memchr(n, ',', (size_t)(b->end - n));
        size_t len = comma ? (size_t)(comma - n) : (size_t)(b->end - n);
        if (len == 0) {
            complain_locked(b, "an empty cache name",
                            " (names are separated by ',', blocks by ';'); it is ignored");
        } else if (n[0] == ' ' || n[len - 1] == ' ') {
            char what[DBG_SHOWN_MAX + 32], name[DBG_SHOWN_MAX + 4];
            shown(name, sizeof name, n, len);
            heap_fmt(what, sizeof what, "cache name \"%s\" begins or ends with a space", name);
            complain_locked(b, what, " (no spaces after ','); it matches only a name with them");
        }
        n = comma ? comma + 1 : NULL;
    }
    return b->end;
}

/* The SLABCACHE_DEBUG flags of the cache `name` (SLAB_DBG_* letters and DBG_MARK_FAIL). */
static unsigned env_flags_locked(const char *name)
{
    opts_assert_locked();
    if (!opts.debug)
        return 0;
    for (const char *p = opts.debug;;) {
        while (*p == ';')
            p++;
        if (!*p)
            break;
        struct dbg_block b;
        p = parse_block_locked(p, &b, false);
        if (b.names && name_in_list(b.names, b.end, NULL, name))
            return b.flags;
    }
    return opts.global;
}

static void parse_debug_locked(const char *v)
{
    opts_assert_locked();
    opts.debug = v;
    if (!*v) { /* the bare slub_debug: everything, everywhere */
        opts.global = DBG_ALL_LETTERS;
        return;
    }
    for (const char *p = v;;) {
        while (*p == ';')
            p++;
        if (!*p)
            break;
        struct dbg_block b;
        p = parse_block_locked(p, &b, true);
        if (!b.names)
            opts.global = b.flags;
        opts.higher_order_off |= b.higher_order_off;
        opts.any_fail_mark |= (b.flags & DBG_MARK_FAIL) != 0;
    }
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

/* SLABCACHE_VALGRIND=off keeps the normal (magazine) paths under valgrind, for profiling with
 * callgrind or cachegrind rather than checking with memcheck. */
static bool valgrind_opted_out(void)
{
    return !heap_opt_bool(OPT_VALGRIND);
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
    const char *bad = NULL;
    size_t badlen = 0;
    bool names = false;
    opts.fail_seed = 1;
    for (const char *p = v; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        bool ok = eq != NULL;
        if (ok) {
            size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
            if (klen == 5 && strncmp(p, "every", 5) == 0)
                opts.fail_every = parse_u64(eq + 1, vlen, &ok);
            else if (klen == 4 && strncmp(p, "prob", 4) == 0)
                opts.fail_threshold = parse_prob(eq + 1, vlen, &ok);
            else if (klen == 4 && strncmp(p, "seed", 4) == 0)
                opts.fail_seed = parse_u64(eq + 1, vlen, &ok);
            else if (klen == 5 && strncmp(p, "cache", 5) == 0)
                names = ok = vlen > 0; /* name_in_list(v, ..., "cache=", ...) reads them all */
            else
                ok = false;
        }
        if (!ok && !bad) {
            bad = p;
            badlen = len;
        }
        p = end ? end + 1 : p + len;
    }
    if (bad || (!opts.fail_every && !opts.fail_threshold)) {
        char value[DBG_SHOWN_MAX + 4], token[DBG_SHOWN_MAX + 4], why[DBG_SHOWN_MAX + 32];
        shown(value, sizeof value, v, strlen(v));
        shown(token, sizeof token, bad ? bad : "", badlen);
        if (bad)
            heap_fmt(why, sizeof why, "not \"%s\"", token);
        else
            heap_fmt(why, sizeof why, "%s", "neither every= nor prob= is given");
        heap_fmt_line("SLABCACHE_FAIL=%s: expected every=N or prob=P[,seed=S][,cache=NAME...], "
                      "%s; fault injection is off",
                      value, why);
        opts.fail_every = opts.fail_threshold = 0;
        return;
    }
    opts.fail_on = true;
    opts.fail_names = names ? v : NULL;
    if (!opts.fail_seed)
        opts.fail_seed = 1;
}

static void parse_options_locked(void)
{
    opts_assert_locked();
    memset(&opts, 0, sizeof opts);
    opts.parsed = true;
    heap_opt_announce(); /* the option table's start-up lines come first */
    const char *v = heap_opt_string(OPT_DEBUG);
    if (v)
        parse_debug_locked(v);
    const char *f = heap_opt_string(OPT_FAIL);
    if (f && *f)
        parse_fail_locked(f);
}

/* At start-up (before main), so that what SLABCACHE_DEBUG and SLABCACHE_FAIL cannot parse is
 * reported with the option table's lines even in a program whose first cache comes later. */
__attribute__((constructor)) static void debug_options_at_startup(void)
{
    heap_mutex_lock(&opts_lock);
    if (!opts.parsed)
        parse_options_locked();
    heap_mutex_unlock(&opts_lock);
}

/* Does SLABCACHE_FAIL apply to the cache `name` (marked: A in its SLABCACHE_DEBUG flags)?
 * cache= entries and A marks both select caches; with neither, every cache. */
static bool fail_applies_locked(const char *name, bool marked)
{
    opts_assert_locked();
    if (opts.fail_names)
        return marked || name_in_list(opts.fail_names, opts.fail_names + strlen(opts.fail_names),
                                      "cache=", name);
    return marked || !opts.any_fail_mark;
}

static void opts_fork_lock(void)
{
    heap_mutex_lock(&opts_lock);
    heap_opt_lock();
}

static void opts_fork_unlock(void)
{
    heap_opt_unlock();
    heap_mutex_unlock(&opts_lock);
}

/* The options lock and, inside it, the option table's lock (types.h: parsing takes it under
 * the options lock, so it must come after it here too): taken last by fork's prepare
 * handler. */
static const struct heap_fork_entry opts_fork = {
    .rank = SLAB_FORK_RANK_LEAF,
    .lock = opts_fork_lock,
    .unlock = opts_fork_unlock,
    .child = NULL,
};

void debug_fork_register(void)
{
    heap_fork_register(&opts_fork);
}

void debug_reset_options(void)
{
    heap_mutex_lock(&opts_lock);
    opts.parsed = false;
    heap_opt_reset_for_tests(); /* SLABCACHE_DEBUG and SLABCACHE_FAIL from the environment */
    heap_mutex_unlock(&opts_lock);
}

static inline size_t align_up_sz(size_t x, size_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* Smallest slab order that holds one slot of `slot` bytes after a slab header with one
 * bitmap word: the kernel's "minimum slab order" of a cache, which O protects. */
static unsigned min_slab_order(size_t slot, size_t align)
{
    size_t need = align_up_sz(sizeof(struct slab) + sizeof(uint64_t), align) + slot;
    unsigned order = 0;
    while (order < BUDDY_MAX_ORDER && ((size_t)BUDDY_PAGE_SIZE << order) < need)
        order++;
    return order;
}

/* Layout: [object][red zone][track][orig size][padding to align]; sets the offsets and
 * slot_size. */
static void debug_layout(struct kmem_cache *c, unsigned bits)
{
    size_t off = c->object_size;
    c->rz_off = c->rz_len = c->track_off = c->orig_off = 0;
    if (bits & SLAB_DBG_REDZONE) {
        size_t end = align_up_sz(off + SLAB_RED_MIN, 8);
        if (!(bits & (SLAB_DBG_USER | SLAB_DBG_KMALLOC_RZ)))
            end = align_up_sz(end, c->align);
        c->rz_off = (uint32_t)off;
        c->rz_len = (uint32_t)(end - off);
        off = end;
    }
    if (bits & SLAB_DBG_USER) {
        c->track_off = (uint32_t)align_up_sz(off, 8);
        off = c->track_off + sizeof(struct debug_track);
    }
    if (bits & SLAB_DBG_KMALLOC_RZ) {
        c->orig_off = (uint32_t)align_up_sz(off, sizeof(uint32_t));
        off = c->orig_off + sizeof(uint32_t);
    }
    c->slot_size = (uint32_t)align_up_sz(off, c->align);
}

void debug_setup_cache(struct kmem_cache *c, unsigned int flags, bool has_ctor, bool kmalloc)
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
    unsigned env = env_flags_locked(c->name);
    bits |= env & ~DBG_MARK_FAIL;
    if (opts.fail_on && fail_applies_locked(c->name, (env & DBG_MARK_FAIL) != 0)) {
        bits |= SLAB_DBG_FAIL;
        c->fail_every = opts.fail_every;
        c->fail_threshold = opts.fail_threshold;
        c->fail_rng = opts.fail_seed;
        c->fail_count = 0;
    }
    bool higher_order_off = opts.higher_order_off;
    heap_mutex_unlock(&opts_lock);

    if (has_ctor) /* objects keep their constructed state while free: no poison (SLUB) */
        bits &= ~SLAB_DBG_POISON;
    if (SLAB_HAVE_VALGRIND && RUNNING_ON_VALGRIND && !valgrind_opted_out())
        bits |= SLAB_DBG_VALGRIND;
    if (kmalloc && (bits & SLAB_DBG_REDZONE))
        bits |= SLAB_DBG_KMALLOC_RZ; /* SLUB's orig_size: the red zone starts where asked */
    debug_layout(c, bits);
    if (higher_order_off && (bits & DBG_METADATA) &&
        min_slab_order(c->slot_size, c->align) >
            min_slab_order(align_up_sz(c->object_size, c->align), c->align)) {
        /* O: as SLUB, not at the price of a higher minimum order */
        bits &= ~(DBG_METADATA | SLAB_DBG_KMALLOC_RZ);
        debug_layout(c, bits);
    }
    c->debug = bits;
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

/* The size asked for of an allocated object of a SLAB_DBG_KMALLOC_RZ cache (relaxed: the
 * owner reads it without the lock; it and the validator write and read it under it). */
static uint32_t *orig_size_of(const struct kmem_cache *c, const void *obj)
{
    return (uint32_t *)((uintptr_t)obj + c->orig_off);
}

/* Where the red zone of an allocated object starts: the size asked for (kmalloc classes with
 * Z), else the end of the object.  It runs to rz_off + rz_len (rz_off is object_size). */
static size_t active_rz_start(const struct kmem_cache *c, const void *obj)
{
    if (!(c->debug & SLAB_DBG_KMALLOC_RZ))
        return c->object_size;
    uint32_t orig = __atomic_load_n(orig_size_of(c, obj), __ATOMIC_RELAXED);
    return orig <= c->object_size ? orig : c->object_size;
}

/* The red zone of an allocated object changed?  Offsets in the problem are counted from its
 * start (the end of the object as asked for); pb->size is that size. */
static bool active_rz_changed(const struct kmem_cache *c, const void *obj,
                              struct debug_problem *pb)
{
    size_t start = active_rz_start(c, obj);
    pb->size = start;
    return find_changed((const unsigned char *)obj + start, c->rz_off + c->rz_len - start,
                        SLAB_RED_ACTIVE, false, 0, &pb->first, &pb->last, &pb->found,
                        &pb->expected);
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
            pb->size = c->object_size;
            problem_track(c, obj, pb);
        }
        redzone_fill(c, obj, SLAB_RED_ACTIVE);
        if (c->debug & SLAB_DBG_KMALLOC_RZ) /* the kmalloc front sets the size asked for */
            __atomic_store_n(orig_size_of(c, obj), c->object_size, __ATOMIC_RELAXED);
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
        if (active_rz_changed(c, obj, pb)) {
            pb->kind = SLAB_DBG_REDZONE_BAD;
            pb->obj = obj;
            pb->caller = caller;
            pb->op = "free";
            problem_track(c, obj, pb);
        }
        redzone_fill(c, obj, SLAB_RED_INACTIVE); /* restored: the free goes on */
        if (c->debug & SLAB_DBG_KMALLOC_RZ) /* free: the whole object is the object again */
            __atomic_store_n(orig_size_of(c, obj), c->object_size, __ATOMIC_RELAXED);
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

void debug_kmalloc_resize(struct kmem_cache *c, void *obj, size_t size, const char *op,
                          const void *caller)
{
    if (!(c->debug & SLAB_DBG_KMALLOC_RZ))
        return;
    if (size > c->object_size)
        size = c->object_size;
    struct debug_problem pb = {0};
    heap_mutex_lock(&c->lock);
    if (active_rz_changed(c, obj, &pb)) { /* an overflow before the resize: say so */
        pb.kind = SLAB_DBG_REDZONE_BAD;
        pb.obj = obj;
        pb.caller = caller;
        pb.op = op;
        problem_track(c, obj, &pb);
    }
    memset((char *)obj + size, SLAB_RED_ACTIVE, c->rz_off + c->rz_len - size);
    __atomic_store_n(orig_size_of(c, obj), (uint32_t)size, __ATOMIC_RELAXED);
    heap_mutex_unlock(&c->lock);
    if (pb.kind != SLAB_DBG_OK)
        debug_report(c, &pb);
}

size_t debug_kmalloc_size(const struct kmem_cache *c, const void *obj)
{
    return active_rz_start(c, obj);
}

int debug_validate_slot_locked(struct kmem_cache *c, const void *obj, bool in_use)
{
    heap_mutex_assert_held(&c->lock);
    size_t first = 0, last = 0;
    unsigned char found = 0, expected = 0;
    if (c->debug & SLAB_DBG_REDZONE) {
        struct debug_problem pb = {0};
        bool bad;
        if (in_use) {
            bad = active_rz_changed(c, obj, &pb);
        } else {
            pb.size = c->object_size;
            bad = find_changed((const unsigned char *)obj + c->rz_off, c->rz_len,
                               SLAB_RED_INACTIVE, false, 0, &pb.first, &pb.last, &pb.found,
                               &pb.expected);
        }
        if (bad) {
            heap_fmt_line("validate %s: red zone overwritten: %s object %p (size %zu), red zone "
                          "bytes %zu..%zu past its end changed (0x%zx expected, found 0x%zx)",
                          c->name, in_use ? "allocated" : "free", obj, pb.size, pb.first,
                          pb.last, (size_t)pb.expected, (size_t)pb.found);
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
        heap_fmt_line("red zone overwritten in cache %s: %s object %p (size %zu), red zone "
                      "bytes %zu..%zu past its end changed (0x%zx expected, found 0x%zx); found "
                      "at %s by %s",
                      c->name, pb->op[0] == 'a' ? "free" : "allocated", pb->obj, pb->size,
                      pb->first, pb->last, (size_t)pb->expected, (size_t)pb->found, pb->op,
                      site);
        break;
    case SLAB_DBG_DOUBLE_FREE:
        __atomic_fetch_add(&c->invalid_frees, 1, __ATOMIC_RELAXED);
        heap_fmt_line("kmem_cache_free: double free of small object %p in cache %s (object "
                      "is already free); freed again by %s",
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
