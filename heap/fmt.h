/* SPDX-License-Identifier: MIT */
/* heap/fmt.h - text into stack buffers without allocating: the formatter of every layer.
 *
 * Reports, statistics and the heap map run inside the allocator (possibly inside malloc,
 * before main, on a damaged heap), so they never call printf: they format here, into a
 * buffer on the stack, and write the result with write(2) or hand it to stdio after every
 * allocator lock is dropped.  Nothing here allocates, takes a lock or touches errno.
 *
 * The printf subset: %s %u %d %zu %zx %p %%, each with an optional decimal field width
 * ("%4zu": right-aligned, space padded).  Anything else is printed literally and consumes no
 * argument, so the arguments after it still line up.
 */
#ifndef SLABCACHE_HEAP_FMT_H
#define SLABCACHE_HEAP_FMT_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest report line written by heap_fmt_line, "slabcache: " and "\n" included. */
#define HEAP_FMT_LINE_MAX 512

/* Format into buf (len bytes, always NUL-terminated when len > 0); returns the length
 * written, which is at most len - 1 (the text is cut at the end of the buffer). */
size_t heap_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t heap_vfmt(char *buf, size_t len, const char *fmt, va_list ap);

/* One line on stderr with write(2): "slabcache: " + the formatted text + "\n" (errno
 * preserved).  Every report of every layer goes through here. */
void heap_fmt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void heap_fmt_vline(const char *fmt, va_list ap);

#ifdef __cplusplus
}
#endif
#endif
