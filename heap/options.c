/* SPDX-License-Identifier: MIT */
/* heap/options.c - heap options from the environment, parsed without allocating.
 *
 * Runs inside the first allocation (possibly before main), so: getenv only (it returns a
 * pointer into environ and allocates nothing), no strtoul locale machinery, no stdio;
 * malformed values are reported with write(2) and ignored. */
#include <stdlib.h>

#include "heap/heap_internal.h"

#define OPT_ENV_LIMIT "SLABCACHE_HEAP_LIMIT"
#define OPT_ENV_SBRK "SLABCACHE_SBRK"
#define OPT_ENV_FALLBACK "SLABCACHE_MMAP_FALLBACK"
#define OPT_ENV_KEEP_FREE "SLABCACHE_HEAP_KEEP_FREE"

#define OPT_KIB_SHIFT 10
#define OPT_MIB_SHIFT 20
#define OPT_GIB_SHIFT 30
#define OPT_DEC_BASE 10u

static int opt_suffix_shift(char c, unsigned *shift)
{
    switch (c) {
    case '\0': *shift = 0; return 0;
    case 'k': case 'K': *shift = OPT_KIB_SHIFT; return 0;
    case 'm': case 'M': *shift = OPT_MIB_SHIFT; return 0;
    case 'g': case 'G': *shift = OPT_GIB_SHIFT; return 0;
    default: return -1;
    }
}

int heap_options_parse_size(const char *s, size_t *out)
{
    size_t v = 0;
    const char *p = s;
    if (!s || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        size_t d = (size_t)(*p - '0');
        if (v > (SIZE_MAX - d) / OPT_DEC_BASE)
            return -1;
        v = v * OPT_DEC_BASE + d;
    }
    unsigned shift;
    if (opt_suffix_shift(*p, &shift) != 0 || (*p && p[1] != '\0'))
        return -1;
    if (shift && v > (SIZE_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

int heap_options_parse_bool(const char *s, bool *out)
{
    if (!s || (s[0] != '0' && s[0] != '1') || s[1] != '\0')
        return -1;
    *out = s[0] == '1';
    return 0;
}

static void opt_report_malformed(const char *name, const char *value)
{
    heap_fmt_line("heap: ignoring malformed %s=%s", name, value);
}

static void opt_env_size(const char *name, size_t *val)
{
    const char *s = getenv(name);
    if (s && heap_options_parse_size(s, val) != 0)
        opt_report_malformed(name, s);
}

static void opt_env_bool(const char *name, bool *val)
{
    const char *s = getenv(name);
    if (s && heap_options_parse_bool(s, val) != 0)
        opt_report_malformed(name, s);
}

void heap_options_load(struct heap_options *out)
{
    out->limit = 0;
    out->use_sbrk = true;
    out->mmap_fallback = true;
    out->keep_free = HEAP_DEFAULT_KEEP_FREE;
    opt_env_size(OPT_ENV_LIMIT, &out->limit);
    opt_env_bool(OPT_ENV_SBRK, &out->use_sbrk);
    opt_env_bool(OPT_ENV_FALLBACK, &out->mmap_fallback);
    opt_env_size(OPT_ENV_KEEP_FREE, &out->keep_free);
}
