/* SPDX-License-Identifier: MIT */
/* slab/report.c - error reports that never allocate.
 *
 * Reports run inside malloc, before main and on corrupted heaps, so they format into a stack
 * buffer with a tiny printf subset and go out with one write(2).  What happens after a misuse
 * report is chosen by SLABCACHE_ON_ERROR: "abort" (default) or "report" (continue; the
 * offending operation has already been refused, so nothing is corrupted).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slab/slab_internal.h"

#define REPORT_LINE_MAX 512

static void put_char(char *buf, size_t len, size_t *pos, char ch)
{
    if (*pos + 1 < len)
        buf[*pos] = ch;
    (*pos)++;
}

/* v in base 10 or 16 into tmp (at least 24 bytes), most significant digit first; returns the
 * digit count. */
static size_t digits(char *tmp, unsigned long long v, unsigned base)
{
    char rev[24];
    size_t n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        rev[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    for (size_t i = 0; i < n; i++)
        tmp[i] = rev[n - 1 - i];
    return n;
}

/* n bytes of s, right-aligned in a field of `width` columns (space padded). */
static void put_field(char *buf, size_t len, size_t *pos, const char *s, size_t n,
                      unsigned width)
{
    for (size_t w = n; w < width; w++)
        put_char(buf, len, pos, ' ');
    for (size_t i = 0; i < n; i++)
        put_char(buf, len, pos, s[i]);
}

/* The printf subset: %s %u %d %zu %zx %p %%, each with an optional decimal field width
 * ("%4zu": right-aligned, space padded).  Anything else is printed literally and consumes no
 * argument. */
size_t slab_vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
    size_t pos = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put_char(buf, len, &pos, *f);
            continue;
        }
        const char *spec = f++;
        unsigned width = 0;
        while (*f >= '0' && *f <= '9' && width < 1000)
            width = width * 10 + (unsigned)(*f++ - '0');
        char tmp[32];
        size_t n;
        switch (*f) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            put_field(buf, len, &pos, str, strlen(str), width);
            break;
        }
        case 'u':
            n = digits(tmp, va_arg(ap, unsigned), 10);
            put_field(buf, len, &pos, tmp, n, width);
            break;
        case 'd': {
            int v = va_arg(ap, int);
            n = 0;
            if (v < 0)
                tmp[n++] = '-';
            n += digits(tmp + n, v < 0 ? (unsigned long long)-(long long)v : (unsigned)v, 10);
            put_field(buf, len, &pos, tmp, n, width);
            break;
        }
        case 'z': /* %zu, %zx */
            if (f[1] != 'u' && f[1] != 'x')
                goto literal;
            f++;
            n = digits(tmp, va_arg(ap, size_t), *f == 'x' ? 16 : 10);
            put_field(buf, len, &pos, tmp, n, width);
            break;
        case 'p':
            tmp[0] = '0';
            tmp[1] = 'x';
            n = 2 + digits(tmp + 2, (uintptr_t)va_arg(ap, void *), 16);
            put_field(buf, len, &pos, tmp, n, width);
            break;
        case '%':
            put_char(buf, len, &pos, '%');
            break;
        default: /* unknown conversion: print it literally */
        literal:
            for (; spec <= f && *spec; spec++)
                put_char(buf, len, &pos, *spec);
            if (!*f)
                goto out;
            break;
        }
    }
out:
    if (len)
        buf[pos < len ? pos : len - 1] = '\0';
    return pos < len ? pos : (len ? len - 1 : 0);
}

size_t slab_format(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = slab_vformat(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

void slab_report(const char *fmt, ...)
{
    char line[REPORT_LINE_MAX];
    int saved = errno;
    size_t n = slab_format(line, sizeof line, "%s", "slabcache: ");
    va_list ap;
    va_start(ap, fmt);
    n += slab_vformat(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    errno = saved;
}

/* 0 = not read yet, 1 = abort, 2 = report and continue. */
static int on_error_mode;

void slab_misuse(void)
{
    int mode = __atomic_load_n(&on_error_mode, __ATOMIC_RELAXED);
    if (!mode) {
        const char *v = getenv("SLABCACHE_ON_ERROR"); /* getenv never allocates */
        mode = (v && strcmp(v, "report") == 0) ? 2 : 1;
        __atomic_store_n(&on_error_mode, mode, __ATOMIC_RELAXED);
    }
    if (mode == 1) {
        slab_report("%s", "aborting (set SLABCACHE_ON_ERROR=report to continue)");
        abort();
    }
}

/* Tests: re-read SLABCACHE_ON_ERROR at the next report. */
void slab_report_reset_options(void)
{
    __atomic_store_n(&on_error_mode, 0, __ATOMIC_RELAXED);
}
