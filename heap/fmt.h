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
#include <stdbool.h>
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

/* One line on the report descriptor (below) with write(2): "slabcache: " + the formatted
 * text + "\n" (errno preserved).  Every report of every layer goes through here.  True when
 * the whole line was written. */
bool heap_fmt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool heap_fmt_vline(const char *fmt, va_list ap);

/* ---------------------------------------------------------------- the report descriptor
 * Every report line (heap_fmt_line), the statistics and the leak report at exit go to one
 * descriptor: stderr until heap_output_setup() says otherwise.  SLABCACHE_LOG=PATH sends all
 * of it to PATH (appended; "%p" in PATH becomes the process id, so a fork child, which
 * reopens on its first write, gets its own file).  A layer that prints at exit calls
 * heap_output_setup(true) from a constructor: stderr is then duplicated, at start-up, to a
 * close-on-exec descriptor of its own (at or above HEAP_OUTPUT_FD_FLOOR, so the program's
 * own descriptors are numbered as they would be without us), and a program that closes
 * stderr before exit (ls, sort) still gets its report.  Before each write the descriptor is
 * checked (fstat) to be the file it was: one the program closed and reused for something
 * else is never written to (reports then go to fd 2, as without the setup). */
#define HEAP_OUTPUT_FD_FLOOR 200
/* Idempotent; the environment is read once.  Never allocates. */
void heap_output_setup(bool keep_stderr);
/* Write all n bytes to the report descriptor (errno preserved).  False when not all of it
 * was written: closed, a full disk, a reader gone. */
bool heap_output_write(const char *buf, size_t n);
/* A path from a template: "%p" becomes the process id, "%%" a "%".  False when it does not
 * fit in len bytes. */
bool heap_fmt_path(char *buf, size_t len, const char *tmpl);
/* Tests: close the descriptor set up and read the environment again at the next setup. */
void heap_output_reset_for_tests(void);

#ifdef __cplusplus
}
#endif
#endif
