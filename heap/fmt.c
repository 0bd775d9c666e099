/* SPDX-License-Identifier: MIT */
/* heap/fmt.c - text into stack buffers, without stdio and without allocating.
 *
 * Error paths run inside the allocator (possibly inside malloc), so they must not call
 * printf: they format here and write(2) the buffer. */
#include <errno.h>
#include <unistd.h>

#include "heap/heap_internal.h"

#define FMT_DIGITS_MAX 32 /* enough for 2^64 in decimal (20) and hex (16) */
#define FMT_HEX_BASE 16u
#define FMT_DEC_BASE 10u

void heap_fmt_str(struct heap_fmt *f, const char *s)
{
    while (*s && f->len < HEAP_FMT_CAP)
        f->buf[f->len++] = *s++;
}

static void fmt_num(struct heap_fmt *f, uintmax_t v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[FMT_DIGITS_MAX];
    size_t n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    while (n && f->len < HEAP_FMT_CAP)
        f->buf[f->len++] = tmp[--n];
}

void heap_fmt_dec(struct heap_fmt *f, uintmax_t v)
{
    fmt_num(f, v, FMT_DEC_BASE);
}

void heap_fmt_hex(struct heap_fmt *f, uintmax_t v)
{
    heap_fmt_str(f, "0x");
    fmt_num(f, v, FMT_HEX_BASE);
}

void heap_fmt_emit(struct heap_fmt *f)
{
    int saved = errno;
    if (f->len == HEAP_FMT_CAP)
        f->len--;
    f->buf[f->len++] = '\n';
    size_t off = 0;
    while (off < f->len) {
        ssize_t w = write(STDERR_FILENO, f->buf + off, f->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved;
}

void heap_report(const char *what, uintptr_t a, uintptr_t b)
{
    struct heap_fmt f = {.len = 0};
    heap_fmt_str(&f, "slabcache: heap: ");
    heap_fmt_str(&f, what);
    heap_fmt_str(&f, " ");
    heap_fmt_hex(&f, a);
    heap_fmt_str(&f, " ");
    heap_fmt_hex(&f, b);
    heap_fmt_emit(&f);
}
