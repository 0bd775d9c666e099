/* SPDX-License-Identifier: MIT */
/* heap/options.c - the one reader of the SLABCACHE_* environment (the table: heap/options.h).
 *
 * Runs inside the first allocation (possibly before main, possibly in a constructor that
 * another library's malloc call reached first), so: getenv and a walk of `environ` only
 * (they return pointers into the environment and allocate nothing), numbers parsed by hand
 * (no strtoul locale machinery), no stdio; reports are formatted on the stack (heap/fmt.h)
 * and written with write(2).  Values are copied into static storage, so a program that later
 * edits its environment (setenv, putenv'd buffers) cannot change an option under a reader.
 *
 * Loading is silent: it records each value and its source.  heap_opt_announce() writes the
 * start-up lines (rejected values, unknown names, the SLABCACHE_VERBOSE listing) once, so a
 * tool that links this file for its own variables does not repeat the library's lines.
 */
#include "heap/options.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "heap/heap_internal.h"
#include "heap/mutex.h"

#define OPT_PREFIX "SLABCACHE_"
#define OPT_PREFIX_LEN (sizeof OPT_PREFIX - 1)
#define OPT_DEC_BASE 10u
#define OPT_KIB_SHIFT 10
#define OPT_MIB_SHIFT 20
#define OPT_GIB_SHIFT 30
#define OPT_SHOWN_MAX 64     /* bytes of a value quoted in a report */
#define OPT_NAME_MAX 64      /* bytes of a name compared for a suggestion */
#define OPT_SUGGEST_EDITS 2  /* a suggestion is at most this many edits away */
#define OPT_LINE_MAX 256     /* the text of one formatted value or range */

static const struct heap_opt_def opt_defs[OPT_COUNT] = {
#define HEAP_OPT_DEF(n, t, d, lo, hi, v, h)                                                       \
    [OPT_##n] = {OPT_PREFIX #n, HEAP_OPT_##t, (uint64_t)(d), (uint64_t)(lo), (uint64_t)(hi), v, h},
    HEAP_OPTION_TABLE(HEAP_OPT_DEF)
#undef HEAP_OPT_DEF
};

const char *const heap_opt_script_names[] = {
#define HEAP_OPT_SCRIPT_NAME(n, h) OPT_PREFIX #n,
    HEAP_OPTION_SCRIPT_TABLE(HEAP_OPT_SCRIPT_NAME)
#undef HEAP_OPT_SCRIPT_NAME
    NULL,
};

const char *const heap_opt_script_help[] = {
#define HEAP_OPT_SCRIPT_HELP(n, h) h,
    HEAP_OPTION_SCRIPT_TABLE(HEAP_OPT_SCRIPT_HELP)
#undef HEAP_OPT_SCRIPT_HELP
    NULL,
};

struct opt_value {
    uint64_t num;      /* BOOL 0/1, SIZE, UINT, CHOICE index (list: bit set) */
    uint8_t source;    /* enum heap_opt_source */
    const char *text;  /* the environment's text (STRING: the value): its opt_text row; read
                        * only when source is FROM_ENV or FROM_REJECTED */
};

/* The copies of the environment's texts, apart from the values: a row is written only for a
 * variable that is set, so a process with no SLABCACHE_* variable touches the small value
 * table alone (every process that mallocs loads the options: a short one should not pay a
 * page per few options). */
HEAP_LARGE_BSS static char opt_text[OPT_COUNT][HEAP_OPT_TEXT_MAX];

/* The option lock guards loading, the values while they are written, and `announced`.
 * Readers take it only until `loaded` is set (release/acquire). */
static struct heap_mutex opt_mutex = HEAP_MUTEX_INITIALIZER;
static struct {
    bool loaded;
    bool announced;
    struct opt_value v[OPT_COUNT];
} opts;

void heap_opt_lock(void)
{
    heap_mutex_lock(&opt_mutex);
}

void heap_opt_unlock(void)
{
    heap_mutex_unlock(&opt_mutex);
}

const struct heap_opt_def *heap_opt_lookup(enum heap_opt id)
{
    return (unsigned)id < OPT_COUNT ? &opt_defs[id] : NULL;
}

/* ---------------------------------------------------------------- parsing (no locale) */

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* a[0, alen) equals the NUL-terminated b, ignoring ASCII case. */
static bool same_word(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen && b[i]; i++)
        if (to_lower(a[i]) != to_lower(b[i]))
            return false;
    return i == alen && b[i] == '\0';
}

static int parse_bool_text(const char *s, bool *out)
{
    static const char *const on[] = {"1", "yes", "true", "on"};
    static const char *const off[] = {"0", "no", "false", "off"};
    size_t len = strlen(s);
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        if (same_word(s, len, on[i])) {
            *out = true;
            return 0;
        }
        if (same_word(s, len, off[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Decimal digits at s (at least one); *end after them.  -1 on overflow or no digit. */
static int parse_decimal(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / OPT_DEC_BASE)
            return -1;
        v = v * OPT_DEC_BASE + d;
    }
    if (p == s)
        return -1;
    *out = v;
    *end = p;
    return 0;
}

static int parse_size_text(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *p;
    if (parse_decimal(s, &v, &p) != 0)
        return -1;
    unsigned shift;
    switch (*p) {
    case '\0': shift = 0; break;
    case 'k': case 'K': shift = OPT_KIB_SHIFT; break;
    case 'm': case 'M': shift = OPT_MIB_SHIFT; break;
    case 'g': case 'G': shift = OPT_GIB_SHIFT; break;
    default: return -1;
    }
    if (shift && (p[1] != '\0' || v > (UINT64_MAX >> shift)))
        return -1;
    *out = v << shift;
    return 0;
}

/* The boolean words stand for "off" and "on" in a CHOICE whose words start with them. */
static bool choice_takes_bools(const struct heap_opt_def *d)
{
    return strncmp(d->values, "off|on|", 7) == 0 || strcmp(d->values, "off|on") == 0;
}

/* Index of the word w[0, wlen) among d's words, or -1. */
static int choice_index(const struct heap_opt_def *d, const char *w, size_t wlen)
{
    int idx = 0;
    for (const char *p = d->values; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == wlen) {
            size_t i = 0;
            while (i < len && to_lower(p[i]) == to_lower(w[i]))
                i++;
            if (i == len)
                return idx;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static bool choice_is_list(const struct heap_opt_def *d)
{
    return d->type == HEAP_OPT_CHOICE && d->min == HEAP_OPT_LIST;
}

/* One word of a CHOICE: its index, or -1. */
static int choice_word(const struct heap_opt_def *d, const char *w, size_t wlen)
{
    int idx = choice_index(d, w, wlen);
    if (idx < 0 && choice_takes_bools(d) && wlen < 8) {
        char one[8];
        memcpy(one, w, wlen);
        one[wlen] = '\0';
        bool b;
        if (parse_bool_text(one, &b) == 0)
            idx = b ? 1 : 0;
    }
    return idx;
}

/* A list CHOICE: the set of the words' indexes as bits; "off" empties the set so far. */
static int parse_list(const struct heap_opt_def *d, const char *text, uint64_t *out)
{
    uint64_t set = 0;
    const char *p = text;
    do {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int idx = choice_word(d, p, len);
        if (idx < 0 || idx >= 64)
            return -1;
        set = idx == 0 ? 0 : set | (1ull << idx);
        p = comma ? comma + 1 : p + len;
        if (comma && !*p)
            return -1;
    } while (*p);
    *out = set;
    return 0;
}

int heap_opt_parse(enum heap_opt id, const char *text, uint64_t *out)
{
    const struct heap_opt_def *d = heap_opt_lookup(id);
    if (!d || !text)
        return -1;
    uint64_t v = 0;
    bool b;
    switch (d->type) {
    case HEAP_OPT_BOOL:
        if (parse_bool_text(text, &b) != 0)
            return -1;
        v = b;
        break;
    case HEAP_OPT_SIZE:
        if (parse_size_text(text, &v) != 0 || v < d->min || v > d->max)
            return -1;
        break;
    case HEAP_OPT_UINT: {
        const char *end;
        if (parse_decimal(text, &v, &end) != 0 || *end || v < d->min || v > d->max)
            return -1;
        break;
    }
    case HEAP_OPT_CHOICE: {
        if (choice_is_list(d)) {
            if (parse_list(d, text, &v) != 0)
                return -1;
            break;
        }
        int idx = choice_word(d, text, strlen(text));
        if (idx < 0)
            return -1;
        v = (uint64_t)idx;
        break;
    }
    case HEAP_OPT_STRING:
        if (strlen(text) >= HEAP_OPT_TEXT_MAX)
            return -1;
        break;
    }
    *out = v;
    return 0;
}

/* The heap's own parsers (heap_internal.h), kept for its callers and tests. */
int heap_options_parse_size(const char *s, size_t *out)
{
    uint64_t v;
    if (!s || parse_size_text(s, &v) != 0 || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

int heap_options_parse_bool(const char *s, bool *out)
{
    return s ? parse_bool_text(s, out) : -1;
}

/* ---------------------------------------------------------------- formatting */

static size_t format_size(char *buf, size_t len, uint64_t v)
{
    static const struct {
        unsigned shift;
        const char *suffix;
    } units[] = {{OPT_GIB_SHIFT, "g"}, {OPT_MIB_SHIFT, "m"}, {OPT_KIB_SHIFT, "k"}};
    for (size_t i = 0; v && i < sizeof units / sizeof units[0]; i++)
        if ((v & (((uint64_t)1 << units[i].shift) - 1)) == 0)
            return heap_fmt(buf, len, "%zu%s", (size_t)(v >> units[i].shift), units[i].suffix);
    return heap_fmt(buf, len, "%zu", (size_t)v);
}

/* The idx-th word of d's words. */
static size_t format_word(char *buf, size_t len, const struct heap_opt_def *d, uint64_t idx)
{
    const char *p = d->values;
    for (uint64_t i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    if (!p || len == 0)
        return heap_fmt(buf, len, "%s", "?");
    size_t n = 0;
    while (p[n] && p[n] != '|' && n + 1 < len) {
        buf[n] = p[n];
        n++;
    }
    buf[n] = '\0';
    return n;
}

size_t heap_opt_format(char *buf, size_t len, enum heap_opt id, uint64_t value)
{
    const struct heap_opt_def *d = heap_opt_lookup(id);
    if (!d)
        return heap_fmt(buf, len, "%s", "?");
    switch (d->type) {
    case HEAP_OPT_BOOL: return heap_fmt(buf, len, "%s", value ? "on" : "off");
    case HEAP_OPT_SIZE: return format_size(buf, len, value);
    case HEAP_OPT_UINT: return heap_fmt(buf, len, "%zu", (size_t)value);
    case HEAP_OPT_CHOICE:
        if (choice_is_list(d)) {
            if (value == 0)
                return format_word(buf, len, d, 0);
            size_t pos = 0;
            for (unsigned i = 1; i < 64 && pos + 1 < len; i++)
                if (value & (1ull << i)) {
                    if (pos)
                        pos += heap_fmt(buf + pos, len - pos, "%s", ",");
                    pos += format_word(buf + pos, len - pos, d, i);
                }
            return pos;
        }
        return format_word(buf, len, d, value);
    case HEAP_OPT_STRING: break;
    }
    return heap_fmt(buf, len, "%s", "unset");
}

size_t heap_opt_format_expected(char *buf, size_t len, enum heap_opt id)
{
    const struct heap_opt_def *d = heap_opt_lookup(id);
    char lo[32], hi[32];
    if (!d)
        return heap_fmt(buf, len, "%s", "?");
    switch (d->type) {
    case HEAP_OPT_BOOL:
        return heap_fmt(buf, len, "%s", "a boolean (1/0, yes/no, true/false, on/off)");
    case HEAP_OPT_SIZE:
        if (d->min == 0 && d->max == UINT64_MAX)
            return heap_fmt(buf, len, "%s",
                            "a size (a number of bytes, optionally with a k, m or g suffix)");
        format_size(lo, sizeof lo, d->min);
        format_size(hi, sizeof hi, d->max);
        return heap_fmt(buf, len,
                        "a size from %s to %s (a number of bytes, optionally with a k, m or g "
                        "suffix)",
                        lo, hi);
    case HEAP_OPT_UINT:
        if (d->min == 0 && d->max == UINT64_MAX)
            return heap_fmt(buf, len, "%s", "a decimal number");
        return heap_fmt(buf, len, "an integer from %zu to %zu", (size_t)d->min,
                        (size_t)d->max);
    case HEAP_OPT_CHOICE: {
        size_t pos = heap_fmt(buf, len, "%s", "one of ");
        for (const char *p = d->values; *p && pos + 1 < len; p++) {
            if (*p == '|')
                pos += heap_fmt(buf + pos, len - pos, "%s", ", ");
            else
                buf[pos++] = *p;
        }
        if (pos < len)
            buf[pos] = '\0';
        if (choice_takes_bools(d))
            pos += heap_fmt(buf + pos, len - pos, "%s",
                            " (off and on also as 0/1, no/yes, false/true)");
        if (choice_is_list(d))
            pos += heap_fmt(buf + pos, len - pos, "%s", ", or several separated by commas");
        return pos;
    }
    case HEAP_OPT_STRING:
        break;
    }
    return heap_fmt(buf, len, "%s (at most %u bytes)", d->values,
                    (unsigned)(HEAP_OPT_TEXT_MAX - 1));
}

/* A value as it may be quoted in a one-line report: control bytes as '?', cut with "...". */
static void shown_text(char *buf, size_t len, const char *s)
{
    size_t n = 0;
    for (; s[n] && n + 1 < len && n < OPT_SHOWN_MAX; n++)
        buf[n] = (s[n] >= ' ' && s[n] != 0x7f) ? s[n] : '?';
    buf[n] = '\0';
    if (s[n] && len > 4) {
        size_t at = n + 3 < len ? n : len - 4;
        memcpy(buf + at, "...", 4);
    }
}

/* ---------------------------------------------------------------- loading */

static void load_one_locked(enum heap_opt id)
{
    heap_mutex_assert_held(&opt_mutex);
    const struct heap_opt_def *d = &opt_defs[id];
    struct opt_value *v = &opts.v[id];
    v->num = d->def;
    v->source = HEAP_OPT_FROM_DEFAULT;
    v->text = "";
    const char *s = getenv(d->name); /* a pointer into the environment: no allocation */
    if (!s || (!*s && d->type != HEAP_OPT_STRING))
        return;
    size_t n = strnlen(s, HEAP_OPT_TEXT_MAX - 1);
    memcpy(opt_text[id], s, n);
    opt_text[id][n] = '\0';
    v->text = opt_text[id];
    uint64_t num;
    if (heap_opt_parse(id, s, &num) == 0) {
        v->num = num;
        v->source = HEAP_OPT_FROM_ENV;
    } else {
        v->source = HEAP_OPT_FROM_REJECTED;
    }
}

static void load(void)
{
    heap_mutex_lock(&opt_mutex);
    if (!__atomic_load_n(&opts.loaded, __ATOMIC_RELAXED)) {
        for (unsigned id = 0; id < OPT_COUNT; id++)
            load_one_locked((enum heap_opt)id);
        __atomic_store_n(&opts.loaded, true, __ATOMIC_RELEASE);
    }
    heap_mutex_unlock(&opt_mutex);
}

static const struct opt_value *value_of(enum heap_opt id, enum heap_opt_type type)
{
    static const struct opt_value none = {.text = ""};
    if ((unsigned)id >= OPT_COUNT || opt_defs[id].type != type) {
        assert(!"option read with the accessor of another type");
        return &none;
    }
    if (!__atomic_load_n(&opts.loaded, __ATOMIC_ACQUIRE))
        load();
    return &opts.v[id];
}

/* A BOOL, or a CHOICE whose words start with "off|on": is it anything but off? */
bool heap_opt_bool(enum heap_opt id)
{
    if ((unsigned)id < OPT_COUNT && opt_defs[id].type == HEAP_OPT_CHOICE &&
        choice_takes_bools(&opt_defs[id]))
        return value_of(id, HEAP_OPT_CHOICE)->num != 0;
    return value_of(id, HEAP_OPT_BOOL)->num != 0;
}

size_t heap_opt_size(enum heap_opt id)
{
    uint64_t v = value_of(id, HEAP_OPT_SIZE)->num;
    return v > SIZE_MAX ? SIZE_MAX : (size_t)v;
}

uint64_t heap_opt_uint(enum heap_opt id)
{
    return value_of(id, HEAP_OPT_UINT)->num;
}

unsigned heap_opt_choice(enum heap_opt id)
{
    return (unsigned)value_of(id, HEAP_OPT_CHOICE)->num;
}

bool heap_opt_is(enum heap_opt id, const char *word)
{
    const struct opt_value *v = value_of(id, HEAP_OPT_CHOICE);
    int idx = word && (unsigned)id < OPT_COUNT ? choice_index(&opt_defs[id], word, strlen(word))
                                               : -1;
    assert(idx >= 0 && "not one of the option's words");
    if (idx >= 0 && choice_is_list(&opt_defs[id])) /* a list: is the word in it ("off": empty) */
        return idx == 0 ? v->num == 0 : (v->num >> idx) & 1;
    return idx >= 0 && v->num == (uint64_t)idx;
}

const char *heap_opt_string(enum heap_opt id)
{
    const struct opt_value *v = value_of(id, HEAP_OPT_STRING);
    return v->source == HEAP_OPT_FROM_ENV ? v->text : NULL;
}

static const struct opt_value *any_value_of(enum heap_opt id)
{
    return (unsigned)id < OPT_COUNT ? value_of(id, opt_defs[id].type) : NULL;
}

enum heap_opt_source heap_opt_source(enum heap_opt id)
{
    const struct opt_value *v = any_value_of(id);
    return v ? (enum heap_opt_source)v->source : HEAP_OPT_FROM_DEFAULT;
}

const char *heap_opt_rejected(enum heap_opt id)
{
    const struct opt_value *v = any_value_of(id);
    return v && v->source == HEAP_OPT_FROM_REJECTED ? v->text : NULL;
}

/* ---------------------------------------------------------------- unknown names */

static bool is_known(const char *name, size_t len)
{
    for (unsigned id = 0; id < OPT_COUNT; id++)
        if (strlen(opt_defs[id].name) == len && memcmp(opt_defs[id].name, name, len) == 0)
            return true;
    for (const char *const *s = heap_opt_script_names; *s; s++)
        if (strlen(*s) == len && memcmp(*s, name, len) == 0)
            return true;
    return false;
}

/* Edits (insert, delete, substitute, swap two neighbours) from a[0, alen) to b, ignoring
 * case: the optimal string alignment distance, three rows on the stack. */
static unsigned edit_distance(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen > OPT_NAME_MAX || blen > OPT_NAME_MAX)
        return UINT32_MAX;
    unsigned rows[3][OPT_NAME_MAX + 1];
    unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= blen; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = (unsigned)i;
        for (size_t j = 1; j <= blen; j++) {
            unsigned cost = to_lower(a[i - 1]) != to_lower(b[j - 1]);
            unsigned best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && to_lower(a[i - 1]) == to_lower(b[j - 2]) &&
                to_lower(a[i - 2]) == to_lower(b[j - 1]) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        unsigned *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[blen];
}

const char *heap_opt_suggest(const char *name, size_t len)
{
    const char *best = NULL;
    unsigned best_d = OPT_SUGGEST_EDITS + 1;
    size_t tail = len > OPT_PREFIX_LEN ? len - OPT_PREFIX_LEN : 0;
    for (unsigned id = 0; id < OPT_COUNT; id++) {
        unsigned d = edit_distance(name, len, opt_defs[id].name);
        if (d < best_d && d < tail) { /* "SLABCACHE_X" is not a near miss of every short name */
            best = opt_defs[id].name;
            best_d = d;
        }
    }
    return best;
}

static void report_unknown_names_locked(void)
{
    heap_mutex_assert_held(&opt_mutex);
    for (char **e = environ; e && *e; e++) {
        const char *s = *e;
        if (strncmp(s, OPT_PREFIX, OPT_PREFIX_LEN) != 0)
            continue;
        const char *eq = strchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        if (is_known(s, len))
            continue;
        char name[OPT_SHOWN_MAX + 4];
        char copy[OPT_SHOWN_MAX + 1];
        size_t n = len < OPT_SHOWN_MAX ? len : OPT_SHOWN_MAX;
        memcpy(copy, s, n);
        copy[n] = '\0';
        shown_text(name, sizeof name, copy);
        const char *near = heap_opt_suggest(s, len);
        if (near)
            heap_fmt_line("unknown variable %s (did you mean %s?)", name, near);
        else
            heap_fmt_line("unknown variable %s (SLABCACHE_VERBOSE=1 lists the options)", name);
    }
}

/* ---------------------------------------------------------------- start-up lines */

static void report_rejected_locked(enum heap_opt id)
{
    heap_mutex_assert_held(&opt_mutex);
    char shown[OPT_SHOWN_MAX + 4], expected[OPT_LINE_MAX], dflt[OPT_LINE_MAX];
    shown_text(shown, sizeof shown, opts.v[id].text);
    heap_opt_format_expected(expected, sizeof expected, id);
    heap_opt_format(dflt, sizeof dflt, id, opt_defs[id].def);
    heap_fmt_line("%s=%s: expected %s; using the default (%s)", opt_defs[id].name, shown,
                  expected, dflt);
}

static void list_options_locked(void)
{
    heap_mutex_assert_held(&opt_mutex);
    heap_fmt_line("%s", "options in effect (SLABCACHE_VERBOSE=1; heap/options.h):");
    for (unsigned i = 0; i < OPT_COUNT; i++) {
        enum heap_opt id = (enum heap_opt)i;
        const struct heap_opt_def *d = &opt_defs[id];
        const struct opt_value *v = &opts.v[id];
        char text[OPT_LINE_MAX], shown[OPT_SHOWN_MAX + 4];
        if (d->type == HEAP_OPT_STRING && v->source == HEAP_OPT_FROM_ENV)
            shown_text(text, sizeof text, v->text);
        else
            heap_opt_format(text, sizeof text, id, v->num);
        switch ((enum heap_opt_source)v->source) {
        case HEAP_OPT_FROM_ENV:
            heap_fmt_line("option %s=%s (environment)", d->name, text);
            break;
        case HEAP_OPT_FROM_REJECTED:
            shown_text(shown, sizeof shown, v->text);
            heap_fmt_line("option %s=%s (default; the environment's \"%s\" was rejected)",
                          d->name, text, shown);
            break;
        case HEAP_OPT_FROM_DEFAULT:
            if (d->type == HEAP_OPT_STRING)
                heap_fmt_line("option %s unset (default)", d->name);
            else
                heap_fmt_line("option %s=%s (default)", d->name, text);
            break;
        }
    }
}

void heap_opt_announce(void)
{
    if (!__atomic_load_n(&opts.loaded, __ATOMIC_ACQUIRE))
        load();
    heap_mutex_lock(&opt_mutex);
    if (!opts.announced) {
        opts.announced = true;
        for (unsigned id = 0; id < OPT_COUNT; id++)
            if (opts.v[id].source == HEAP_OPT_FROM_REJECTED)
                report_rejected_locked((enum heap_opt)id);
        report_unknown_names_locked();
        if (opts.v[OPT_VERBOSE].num)
            list_options_locked();
    }
    heap_mutex_unlock(&opt_mutex);
}

const void *heap_opt_text_storage_for_tests(size_t *bytes)
{
    *bytes = sizeof opt_text;
    return opt_text;
}

void heap_opt_reset_for_tests(void)
{
    heap_mutex_lock(&opt_mutex);
    __atomic_store_n(&opts.loaded, false, __ATOMIC_RELEASE);
    opts.announced = false;
    heap_mutex_unlock(&opt_mutex);
}

/* ---------------------------------------------------------------- the heap's options */

void heap_options_load(struct heap_options *out)
{
    out->limit = heap_opt_size(OPT_HEAP_LIMIT);
    out->use_sbrk = heap_opt_bool(OPT_SBRK);
    out->mmap_fallback = heap_opt_bool(OPT_MMAP_FALLBACK);
    out->keep_free = heap_opt_size(OPT_HEAP_KEEP_FREE);
    heap_opt_announce();
}
