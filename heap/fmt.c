/* SPDX-License-Identifier: MIT */
/* heap/fmt.c - the non-allocating formatter of every layer (heap/fmt.h).
 *
 * Error paths run inside the allocator (possibly inside malloc), so they must not call
 * printf: they format here and write(2) the buffer, to the report descriptor kept below. */
#include "heap/fmt.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

bool heap_fmt_vline(const char *fmt, va_list ap)
{
    char line[HEAP_FMT_LINE_MAX];
    size_t n = heap_fmt(line, sizeof line, "%s", FMT_LINE_PREFIX);
    n += heap_vfmt(line + n, sizeof line - n - 1, fmt, ap);
    line[n++] = '\n';
    return heap_output_write(line, n);
}

bool heap_fmt_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = heap_fmt_vline(fmt, ap);
    va_end(ap);
    return ok;
}

void heap_report(const char *what, uintptr_t a, uintptr_t b)
{
    heap_fmt_line("heap: %s 0x%zx 0x%zx", what, (size_t)a, (size_t)b);
}

/* ---------------------------------------------------------------- the report descriptor */

static struct {
    int lock;            /* spin lock (atomic): setup, and a fork child's reopen */
    int ready;           /* setup done (atomic) */
    int fd;              /* our descriptor, or -1: fd 2 (atomic) */
    dev_t dev;           /* what fd was when opened */
    ino_t ino;
    pid_t pid;           /* process that opened it */
    bool per_pid;        /* the log path names the pid: a fork child opens its own */
    char path[PATH_MAX]; /* SLABCACHE_LOG, as given */
} out = {.fd = -1};

static void out_lock(void)
{
    while (__atomic_exchange_n(&out.lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static void out_unlock(void)
{
    __atomic_store_n(&out.lock, 0, __ATOMIC_RELEASE);
}

/* SLABCACHE_LOG: the path template, or NULL when unset or empty.  Read with getenv, not the
 * option table: the table's start-up lines are written through this descriptor, with the
 * option lock held. */
static const char *output_log_option(void)
{
    const char *v = getenv("SLABCACHE_LOG");
    return v && *v ? v : NULL;
}

/* The log path for process pid: "%p" -> pid, "%%" -> "%".  False when it does not fit. */
static bool expand_path(char *buf, size_t len, const char *tmpl, pid_t pid)
{
    size_t pos = 0;
    for (const char *t = tmpl; *t; t++) {
        char num[24];
        const char *piece = num;
        size_t n;
        if (t[0] == '%' && t[1] == 'p') {
            n = heap_fmt(num, sizeof num, "%d", (int)pid);
            t++;
        } else if (t[0] == '%' && t[1] == '%') {
            piece = "%";
            n = 1;
            t++;
        } else {
            piece = t;
            n = 1;
        }
        if (pos + n >= len)
            return false;
        memcpy(buf + pos, piece, n);
        pos += n;
    }
    buf[pos] = '\0';
    return true;
}

bool heap_fmt_path(char *buf, size_t len, const char *tmpl)
{
    return expand_path(buf, len, tmpl, getpid());
}

/* fd moved to a close-on-exec descriptor at or above the floor (fd itself is closed); -1 on
 * failure. */
static int move_high(int fd, bool close_old)
{
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, HEAP_OUTPUT_FD_FLOOR);
    if (hi < 0) /* a descriptor limit below the floor */
        hi = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (close_old)
        close(fd);
    return hi;
}

/* Install fd as the report descriptor (out.lock held). */
static void out_install_locked(int fd)
{
    assert(__atomic_load_n(&out.lock, __ATOMIC_RELAXED));
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        __atomic_store_n(&out.dev, st.st_dev, __ATOMIC_RELAXED);
        __atomic_store_n(&out.ino, st.st_ino, __ATOMIC_RELAXED);
        __atomic_store_n(&out.pid, getpid(), __ATOMIC_RELAXED);
        __atomic_store_n(&out.fd, fd, __ATOMIC_RELEASE);
    } else if (fd >= 0) {
        close(fd);
    }
}

static int open_log(pid_t pid)
{
    char path[PATH_MAX];
    if (!expand_path(path, sizeof path, out.path, pid))
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd < 0 ? -1 : move_high(fd, true);
}

void heap_output_setup(bool keep_stderr)
{
    int saved = errno;
    out_lock();
    if (!out.ready) {
        out.ready = 1;
        const char *log = output_log_option();
        if (log) {
            size_t n = strlen(log);
            if (n < sizeof out.path) {
                memcpy(out.path, log, n + 1);
                __atomic_store_n(&out.per_pid, strstr(log, "%p") != NULL, __ATOMIC_RELAXED);
                out_install_locked(open_log(getpid()));
            }
            if (__atomic_load_n(&out.fd, __ATOMIC_RELAXED) < 0) {
                out_unlock();
                heap_fmt_line("cannot open SLABCACHE_LOG=%s (errno %d); reports go to stderr",
                              log, errno);
                out_lock();
                out.path[0] = '\0';
                __atomic_store_n(&out.per_pid, false, __ATOMIC_RELAXED);
            }
        }
    }
    if (keep_stderr && __atomic_load_n(&out.fd, __ATOMIC_RELAXED) < 0)
        out_install_locked(move_high(STDERR_FILENO, false));
    out_unlock();
    errno = saved;
}

/* The descriptor to write to now: ours while it is still the file we opened (a fork child
 * with a per-pid log opens its own first), else fd 2. */
static int out_fd(void)
{
    int fd = __atomic_load_n(&out.fd, __ATOMIC_ACQUIRE);
    if (fd < 0)
        return STDERR_FILENO;
    if (__atomic_load_n(&out.per_pid, __ATOMIC_RELAXED) &&
        __atomic_load_n(&out.pid, __ATOMIC_RELAXED) != getpid()) {
        out_lock();
        if (out.pid != getpid()) {
            int nfd = open_log(getpid());
            int old = __atomic_load_n(&out.fd, __ATOMIC_RELAXED);
            out_install_locked(nfd);
            if (nfd >= 0 && old >= 0)
                close(old);
            else if (nfd < 0)
                __atomic_store_n(&out.pid, getpid(), __ATOMIC_RELAXED); /* keep the parent's */
        }
        out_unlock();
        fd = __atomic_load_n(&out.fd, __ATOMIC_ACQUIRE);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != __atomic_load_n(&out.dev, __ATOMIC_RELAXED) ||
        st.st_ino != __atomic_load_n(&out.ino, __ATOMIC_RELAXED))
        return STDERR_FILENO; /* closed, or reused by the program for something else */
    return fd;
}

bool heap_output_write(const char *buf, size_t n)
{
    int saved = errno;
    int fd = out_fd();
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    errno = saved;
    return off == n;
}

void heap_output_reset_for_tests(void)
{
    out_lock();
    int fd = __atomic_exchange_n(&out.fd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0)
        close(fd);
    out.ready = 0;
    out.path[0] = '\0';
    __atomic_store_n(&out.per_pid, false, __ATOMIC_RELAXED);
    out_unlock();
}
