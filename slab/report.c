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

static void put_str(char *buf, size_t len, size_t *pos, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        put_char(buf, len, pos, *s++);
}

static void put_unsigned(char *buf, size_t len, size_t *pos, unsigned long long v, unsigned base)
{
    char tmp[24];
    size_t n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n)
        put_char(buf, len, pos, tmp[--n]);
}

size_t slab_vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
    size_t pos = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put_char(buf, len, &pos, *f);
            continue;
        }
        f++;
        switch (*f) {
        case 's':
            put_str(buf, len, &pos, va_arg(ap, const char *));
            break;
        case 'u':
            put_unsigned(buf, len, &pos, va_arg(ap, unsigned), 10);
            break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                put_char(buf, len, &pos, '-');
                put_unsigned(buf, len, &pos, (unsigned long long)-(long long)v, 10);
            } else {
                put_unsigned(buf, len, &pos, (unsigned long long)v, 10);
            }
            break;
        }
        case 'z': /* %zu, %zx */
            f++;
            put_unsigned(buf, len, &pos, va_arg(ap, size_t), *f == 'x' ? 16 : 10);
            break;
        case 'p':
            put_str(buf, len, &pos, "0x");
            put_unsigned(buf, len, &pos, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%':
            put_char(buf, len, &pos, '%');
            break;
        default: /* unknown conversion: print it literally */
            put_char(buf, len, &pos, '%');
            if (!*f)
                goto out;
            put_char(buf, len, &pos, *f);
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
