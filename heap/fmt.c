/* SPDX-License-Identifier: MIT */
/* heap/fmt.c - the non-allocating formatter of every layer (heap/fmt.h).
 *
 * Error paths run inside the allocator (possibly inside malloc), so they must not call
 * printf: they format here and write(2) the buffer. */
#include "heap/fmt.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "heap/heap_internal.h"

#define FMT_DIGITS_MAX 32 /* enough for 2^64 in decimal (20) and hex (16), a sign and "0x" */
#define FMT_WIDTH_MAX 1000
#define FMT_LINE_PREFIX "slabcache: "

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

size_t heap_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
    size_t pos = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put_char(buf, len, &pos, *f);
            continue;
        }
        const char *spec = f++;
        unsigned width = 0;
        while (*f >= '0' && *f <= '9' && width < FMT_WIDTH_MAX)
            width = width * 10 + (unsigned)(*f++ - '0');
        char tmp[FMT_DIGITS_MAX];
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

size_t heap_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = heap_vfmt(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

void heap_fmt_vline(const char *fmt, va_list ap)
{
    char line[HEAP_FMT_LINE_MAX];
    int saved = errno;
    size_t n = heap_fmt(line, sizeof line, "%s", FMT_LINE_PREFIX);
    n += heap_vfmt(line + n, sizeof line - n - 1, fmt, ap);
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

void heap_fmt_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    heap_fmt_vline(fmt, ap);
    va_end(ap);
}

void heap_report(const char *what, uintptr_t a, uintptr_t b)
{
    heap_fmt_line("heap: %s 0x%zx 0x%zx", what, (size_t)a, (size_t)b);
}
