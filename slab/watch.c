/* SPDX-License-Identifier: MIT */
/* slab/watch.c - the leak-slope watch (SLABCACHE_WATCH=interval[,file=PATH]).
 *
 * A slow leak shows only as a trend.  A thread of ours samples the live bytes of every size
 * class, of every large-block size, their total, and the RSS, every `interval`; at exit the
 * least-squares line of each series (trend.h) says which ones rise beyond their noise, with
 * the slope in bytes per minute and a confidence figure; PATH gets an SVG plot of the series
 * over time with their fitted lines (rewritten every WATCH_PLOT_EVERY samples while the
 * program runs, so a long run can be looked at).  The fits of the latest sample are also
 * published for tools/slabtop (struct watch_published, found through the introspection
 * root).  RSS is plotted and fitted but never flagged: it follows the allocator's retention
 * of freed memory, not the program's live data.
 *
 * Memory: one record from heap_meta_alloc at start (series of WATCH_POINTS points: when they
 * are full, neighbouring points are averaged in pairs and each point then stands for twice
 * as many samples, so a run of any length keeps its whole history at a coarser grain).
 * Nothing here calls malloc.  The thread blocks every signal (the program's signals go to
 * its own threads, as it expects) and takes watch_lock around a sample; the exit report
 * takes it too, so the last sample and the report never overlap a running one.  A fork
 * child has no watch (the thread is not copied) and prints no report.
 *
 * Lock order: watch_lock comes first, before every allocator lock (types.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap/fmt.h"
#include "heap/options.h"
#include "slab/internal.h"
#include "slab/trend.h"
#include "slab/introspect.h"

#define WATCH_MIN_MS 10u
#define WATCH_MAX_MS 3600000u
#define WATCH_PLOT_EVERY 16       /* samples between rewrites of the plot */
#define WATCH_PLOT_SERIES 10      /* class series in the plot's lower panel */
#define WATCH_REPORT_SERIES 12    /* rising series named in the exit report */
#define WATCH_BUF 4096
#define WATCH_POINTS 256          /* points kept per series */
#define WATCH_SERIES SLABCACHE_WATCH_SERIES

struct watch_series {
    char name[KMEM_CACHE_NAME_MAX];
    double acc;                   /* sum of the samples of the point being built */
    double last;                  /* latest sample */
    double y[WATCH_POINTS];
};

struct watch_state {
    struct slabcache_watch_published pub; /* first: what slabtop reads */
    unsigned interval_ms;
    pid_t pid;
    double t0;
    size_t n;                     /* complete points */
    size_t stride;                /* samples per point */
    size_t pending;               /* samples in the point being built */
    size_t samples;
    double t_acc;
    double t[WATCH_POINTS];
    size_t nr_series;
    struct watch_series s[WATCH_SERIES];
    struct trend_fit fit[WATCH_SERIES];
    struct slabcache_state scratch;
    char file[WATCH_PATH_MAX];
};

static struct heap_mutex watch_lock = HEAP_MUTEX_INITIALIZER; /* outermost (types.h) */
static struct watch_state *watch;                              /* set once at start */
static bool watch_stopped;                                     /* watch_lock */
/* The published fits, for the introspection root (introspect.c); NULL when not watching. */
struct slabcache_watch_published *watch_published;

/* ---------------------------------------------------------------- options */

/* "1", "0.5", "250ms", "2s", "1m": milliseconds, or 0 when malformed. */
static unsigned parse_interval(const char *s, size_t len)
{
    unsigned long whole = 0, frac = 0, scale = 1;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9' && whole < 100000000ul; i++)
        whole = whole * 10 + (unsigned long)(s[i] - '0');
    if (i == 0)
        return 0;
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (scale < 1000) {
                frac = frac * 10 + (unsigned long)(s[i] - '0');
                scale *= 10;
            }
    unsigned long unit = 1000; /* seconds */
    size_t rest = len - i;
    if (rest == 2 && s[i] == 'm' && s[i + 1] == 's')
        unit = 1;
    else if (rest == 1 && s[i] == 's')
        unit = 1000;
    else if (rest == 1 && s[i] == 'm')
        unit = 60000;
    else if (rest)
        return 0;
    unsigned long ms = whole * unit + frac * unit / scale;
    return ms >= WATCH_MIN_MS && ms <= WATCH_MAX_MS ? (unsigned)ms : 0;
}

bool watch_option(struct watch_options *out)
{
    memset(out, 0, sizeof *out);
    const char *v = heap_opt_string(OPT_WATCH);
    if (!v || !*v || strcmp(v, "0") == 0)
        return true;
    const char *comma = strchr(v, ',');
    size_t len = comma ? (size_t)(comma - v) : strlen(v);
    unsigned ms = parse_interval(v, len);
    bool ok = ms != 0;
    if (ok && comma) {
        const char *f = comma + 1;
        size_t flen = strlen(f);
        ok = strncmp(f, "file=", 5) == 0 && flen > 5 && flen - 5 < sizeof out->file;
        if (ok)
            memcpy(out->file, f + 5, flen - 5 + 1);
    }
    if (!ok) {
        heap_fmt_line("ignoring malformed SLABCACHE_WATCH=%s (want an interval from 10ms to "
                      "1h, such as 1, 0.5, 250ms or 2m, then optionally ,file=PATH)",
                      v);
        out->file[0] = '\0';
        return false;
    }
    out->interval_ms = ms;
    return true;
}

/* ---------------------------------------------------------------- sampling */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The series named `name`, added (zero before now) if new; NULL when the table is full. */
static struct watch_series *series_of(struct watch_state *w, const char *name)
{
    for (size_t i = 0; i < w->nr_series; i++)
        if (strncmp(w->s[i].name, name, sizeof w->s[i].name) == 0)
            return &w->s[i];
    if (w->nr_series == WATCH_SERIES)
        return NULL;
    struct watch_series *s = &w->s[w->nr_series++];
    memset(s, 0, sizeof *s);
    size_t n = strnlen(name, sizeof s->name - 1);
    memcpy(s->name, name, n);
    s->name[n] = '\0';
    return s;
}

/* Merge neighbouring points in pairs: half as many, each standing for twice the samples. */
static void halve(struct watch_state *w)
{
    size_t half = w->n / 2;
    for (size_t i = 0; i < half; i++)
        w->t[i] = 0.5 * (w->t[2 * i] + w->t[2 * i + 1]);
    for (size_t k = 0; k < w->nr_series; k++)
        for (size_t i = 0; i < half; i++)
            w->s[k].y[i] = 0.5 * (w->s[k].y[2 * i] + w->s[k].y[2 * i + 1]);
    w->n = half;
    w->stride *= 2;
}

static void publish_locked(struct watch_state *w)
{
    heap_mutex_assert_held(&watch_lock);
    struct slabcache_watch_published *p = &w->pub;
    for (size_t k = 0; k < w->nr_series; k++) {
        trend_fit_points(w->t, w->s[k].y, w->n, &w->fit[k]);
        struct slabcache_watch_fit *f = &p->fit[k];
        memcpy(f->name, w->s[k].name, sizeof f->name);
        f->slope_per_min = w->fit[k].slope * 60.0;
        f->confidence = w->fit[k].confidence;
        f->points = (uint32_t)w->n;
        f->rising = strcmp(w->s[k].name, "rss") != 0 && trend_rising(&w->fit[k]);
        f->last = w->s[k].last;
    }
    __atomic_store_n(&p->nr, (uint32_t)w->nr_series, __ATOMIC_RELEASE);
    __atomic_store_n(&p->samples, (uint64_t)w->samples, __ATOMIC_RELEASE);
    p->span_seconds = w->n ? w->t[w->n - 1] - w->t[0] : 0.0;
}

static void sample_locked(struct watch_state *w)
{
    heap_mutex_assert_held(&watch_lock);
    struct slabcache_state *st = &w->scratch;
    state_collect(&st->totals, st->classes, SLABCACHE_STATE_MAX_CLASSES, &st->nr_classes);
    double t = now_seconds() - w->t0;
    struct watch_series *total = series_of(w, "total"), *rss = series_of(w, "rss");
    for (size_t k = 0; k < w->nr_series; k++)
        w->s[k].last = 0.0;
    for (size_t i = 0; i < st->nr_classes; i++) {
        struct watch_series *s = series_of(w, st->classes[i].name);
        if (s)
            s->last += (double)st->classes[i].bytes_in_use;
    }
    if (total)
        total->last = (double)st->totals.in_use_bytes;
    if (rss)
        rss->last = (double)st->totals.rss_bytes;
    for (size_t k = 0; k < w->nr_series; k++)
        w->s[k].acc += w->s[k].last;
    w->t_acc += t;
    w->samples++;
    if (++w->pending < w->stride)
        return;
    w->t[w->n] = w->t_acc / (double)w->stride;
    for (size_t k = 0; k < w->nr_series; k++) {
        w->s[k].y[w->n] = w->s[k].acc / (double)w->stride;
        w->s[k].acc = 0.0;
    }
    w->t_acc = 0.0;
    w->pending = 0;
    if (++w->n == WATCH_POINTS)
        halve(w);
    publish_locked(w);
}

static void plot_locked(struct watch_state *w);

static void *watch_thread(void *arg)
{
    struct watch_state *w = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        next.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
        next.tv_sec += w->interval_ms / 1000 + next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        heap_mutex_lock(&watch_lock);
        if (watch_stopped) {
            heap_mutex_unlock(&watch_lock);
            return NULL;
        }
        sample_locked(w);
        if (w->file[0] && w->samples % WATCH_PLOT_EVERY == 0)
            plot_locked(w);
        heap_mutex_unlock(&watch_lock);
    }
}

void watch_start(const struct watch_options *o)
{
    if (!o->interval_ms || __atomic_load_n(&watch, __ATOMIC_ACQUIRE))
        return;
    struct watch_state *w = heap_meta_alloc(sizeof *w); /* zeroed */
    if (!w) {
        heap_fmt_line("watch: out of memory for the series; not watching");
        return;
    }
    w->pub.magic = SLABCACHE_WATCH_MAGIC;
    w->pub.interval_seconds = o->interval_ms / 1000.0;
    w->interval_ms = o->interval_ms;
    w->pid = getpid();
    w->t0 = now_seconds();
    w->stride = 1;
    memcpy(w->file, o->file, sizeof w->file);
    /* The thread starts with every signal blocked: the program's signals (sigwait, signalfd,
     * handlers that expect a thread of its own) never land on it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &attr, watch_thread, w);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        heap_fmt_line("watch: cannot start its thread (error %d); not watching", rc);
        heap_meta_free(w, sizeof *w);
        return;
    }
    pthread_setname_np(th, "slabcache-watch");
    __atomic_store_n(&watch, w, __ATOMIC_RELEASE);
    __atomic_store_n(&watch_published, &w->pub, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- text */

/* "+6.6 KiB/min", "-120 B/min", "+0.3 B/min" for a slope in bytes per second. */
static const char *fmt_rate(char *buf, size_t len, double per_second)
{
    double v = per_second * 60.0;
    const char *sign = v < 0 ? "-" : "+";
    if (v < 0)
        v = -v;
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB"};
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof unit / sizeof unit[0]) {
        v /= 1024.0;
        u++;
    }
    size_t tenths = (size_t)(v * 10.0 + 0.5);
    heap_fmt(buf, len, "%s%zu.%zu %s/min", sign, tenths / 10, tenths % 10, unit[u]);
    return buf;
}

/* "99.9%" (0.999 shown as 99.9, 0.99999 as 99.99) */
static const char *fmt_conf(char *buf, size_t len, double c)
{
    if (c >= 0.9999) {
        size_t hundredths = (size_t)(c * 10000.0);
        if (hundredths > 9999)
            hundredths = 9999;
        heap_fmt(buf, len, "%zu.%s%zu%%", hundredths / 100, hundredths % 100 < 10 ? "0" : "",
                 hundredths % 100);
    } else {
        size_t tenths = (size_t)(c * 1000.0);
        heap_fmt(buf, len, "%zu.%zu%%", tenths / 10, tenths % 10);
    }
    return buf;
}

static const char *fmt_bytes(char *buf, size_t len, double bytes)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    if (bytes < 0)
        bytes = 0;
    while (bytes >= 1024.0 && u + 1 < sizeof unit / sizeof unit[0]) {
        bytes /= 1024.0;
        u++;
    }
    size_t tenths = (size_t)(bytes * 10.0 + 0.5);
    if (u == 0)
        heap_fmt(buf, len, "%zu B", tenths / 10);
    else
        heap_fmt(buf, len, "%zu.%zu %s", tenths / 10, tenths % 10, unit[u]);
    return buf;
}

static void report_locked(struct watch_state *w)
{
    publish_locked(w);
    char span[24], every[24];
    double secs = w->n ? w->t[w->n - 1] - w->t[0] : 0.0;
    size_t tenths = (size_t)(secs * 10.0 + 0.5);
    heap_fmt(span, sizeof span, "%zu.%zu s", tenths / 10, tenths % 10);
    heap_fmt(every, sizeof every, "%u ms", w->interval_ms);
    size_t rising = 0;
    for (size_t k = 0; k < w->nr_series; k++)
        rising += w->pub.fit[k].rising;
    if (!rising) {
        /* the largest slope, to show how far from a verdict the run was */
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < w->nr_series; k++)
            if (w->fit[k].valid && strcmp(w->s[k].name, "rss") != 0 &&
                (best == SIZE_MAX || w->fit[k].confidence > w->fit[best].confidence))
                best = k;
        char rate[32] = "", conf[16] = "";
        if (best != SIZE_MAX) {
            fmt_rate(rate, sizeof rate, w->fit[best].slope);
            fmt_conf(conf, sizeof conf, w->fit[best].confidence);
        }
        heap_fmt_line("watch (pid %d): %zu samples over %s (every %s); no live bytes rising "
                      "beyond the noise%s%s%s%s%s%s%s",
                      (int)w->pid, w->samples, span, every,
                      best != SIZE_MAX ? " (the likeliest: " : "",
                      best != SIZE_MAX ? w->s[best].name : "", best != SIZE_MAX ? " " : "",
                      rate, best != SIZE_MAX ? ", confidence " : "",
                      best != SIZE_MAX ? conf : "", best != SIZE_MAX ? ")" : "");
    } else {
        heap_fmt_line("watch (pid %d): %zu samples over %s (every %s); live bytes rising "
                      "beyond the noise (confidence >= %u%%):",
                      (int)w->pid, w->samples, span, every,
                      (unsigned)(TREND_CONFIDENCE * 100.0 + 0.5));
        size_t shown = 0;
        for (size_t k = 0; k < w->nr_series && shown < WATCH_REPORT_SERIES; k++) {
            if (!w->pub.fit[k].rising)
                continue;
            char rate[32], conf[16], from[24], to[24];
            heap_fmt_line("  %s: %s (confidence %s, %zu points), %s -> %s", w->s[k].name,
                          fmt_rate(rate, sizeof rate, w->fit[k].slope),
                          fmt_conf(conf, sizeof conf, w->fit[k].confidence), w->n,
                          fmt_bytes(from, sizeof from, w->s[k].y[0]),
                          fmt_bytes(to, sizeof to, w->s[k].y[w->n - 1]));
            shown++;
        }
        if (rising > shown)
            heap_fmt_line("  ... %zu more rising", rising - shown);
    }
    if (w->file[0]) {
        char path[WATCH_PATH_MAX];
        if (heap_fmt_path(path, sizeof path, w->file))
            heap_fmt_line("watch: plot in %s", path);
    }
}

/* ---------------------------------------------------------------- the plot */

struct svg {
    int fd;
    char buf[WATCH_BUF];
    size_t len;
    bool ok;
};

static void svg_flush(struct svg *g)
{
    for (size_t off = 0; off < g->len;) {
        ssize_t n = write(g->fd, g->buf + off, g->len - off);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            g->ok = false;
            break;
        }
        off += (size_t)n;
    }
    g->len = 0;
}

__attribute__((format(printf, 2, 3))) static void svg_put(struct svg *g, const char *fmt, ...)
{
    char piece[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = heap_vfmt(piece, sizeof piece, fmt, ap);
    va_end(ap);
    if (g->len + n > sizeof g->buf)
        svg_flush(g);
    memcpy(g->buf + g->len, piece, n);
    g->len += n;
}

/* A round axis maximum at least v: 1, 2 or 5 times a power of ten of the unit the labels
 * use (bytes, KiB, MiB, GiB), so the grid lines fall on round labels. */
static double nice_max(double v)
{
    double unit = 1.0;
    while (v >= 1024.0 * unit && unit < 1099511627776.0)
        unit *= 1024.0;
    double x = v / unit, p = 1.0;
    while (p * 10.0 <= x)
        p *= 10.0;
    double m = x <= p ? p : x <= 2.0 * p ? 2.0 * p : x <= 5.0 * p ? 5.0 * p : 10.0 * p;
    return m * unit;
}

static bool is_summary(const struct watch_series *s)
{
    return strcmp(s->name, "total") == 0 || strcmp(s->name, "rss") == 0;
}

/* The class series of the lower panel: the rising ones (on their own scale, however small
 * they are next to the rest), or, when none rises, the largest. */
static size_t plot_pick(const struct watch_state *w, size_t *pick)
{
    size_t n = 0;
    bool used[WATCH_SERIES] = {false};
    for (size_t k = 0; k < w->nr_series && n < WATCH_PLOT_SERIES; k++)
        if (!is_summary(&w->s[k]) && w->pub.fit[k].rising) {
            pick[n++] = k;
            used[k] = true;
        }
    while (n == 0 || (n < WATCH_PLOT_SERIES - 2 && !w->pub.fit[pick[0]].rising)) {
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < w->nr_series; k++)
            if (!used[k] && !is_summary(&w->s[k]) && w->s[k].last > 0 &&
                (best == SIZE_MAX || w->s[k].last > w->s[best].last))
                best = k;
        if (best == SIZE_MAX)
            break;
        used[best] = true;
        pick[n++] = best;
    }
    return n;
}

struct panel {
    int x0, x1, y0, y1; /* plot area */
    double tmin, tspan, ymax;
};

static int panel_x(const struct panel *p, double t)
{
    return p->x0 + (int)((t - p->tmin) / p->tspan * (double)(p->x1 - p->x0));
}

static int panel_y(const struct panel *p, double y)
{
    if (y < 0)
        y = 0;
    return p->y1 - (int)(y / p->ymax * (double)(p->y1 - p->y0));
}

/* One panel: grid, axes, the series in `pick` with their fitted lines, and a legend. */
static void plot_panel(struct svg *g, const struct watch_state *w, struct panel *p,
                       const size_t *pick, size_t np, const char *title, size_t colour0)
{
    static const char *const colour[] = {"#1f77b4", "#7f7f7f", "#d62728", "#2ca02c",
                                         "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                                         "#17becf", "#bcbd22", "#393b79", "#637939"};
    const size_t ncolour = sizeof colour / sizeof colour[0];
    double ymax = 1.0;
    for (size_t q = 0; q < np; q++)
        for (size_t i = 0; i < w->n; i++)
            if (w->s[pick[q]].y[i] > ymax)
                ymax = w->s[pick[q]].y[i];
    p->ymax = nice_max(ymax);
    char b1[32], b2[32], conf[16];
    svg_put(g, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", p->x0, p->y0 - 8,
            title);
    for (int i = 0; i <= 5; i++) {
        /* four rows (a round maximum in binary units divides into round quarters), five
         * columns */
        int y = p->y1 - (p->y1 - p->y0) * i / 4, x = p->x0 + (p->x1 - p->x0) * i / 5;
        if (i <= 4)
            svg_put(g,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
                    p->x0, y, p->x1, y, p->x0 - 6, y + 4,
                    fmt_bytes(b1, sizeof b1, p->ymax * i / 4));
        size_t secs = (size_t)(p->tmin + p->tspan * i / 5 + 0.5);
        svg_put(g,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%zu s</text>\n",
                x, p->y0, x, p->y1, x, p->y1 + 16, secs);
    }
    svg_put(g, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"black\"/>\n",
            p->x0, p->y0, p->x1 - p->x0, p->y1 - p->y0);
    double tmax = p->tmin + p->tspan;
    for (size_t q = 0; q < np; q++) {
        const struct watch_series *s = &w->s[pick[q]];
        const struct trend_fit *f = &w->fit[pick[q]];
        const char *c = colour[(colour0 + q) % ncolour];
        svg_put(g, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", c);
        for (size_t i = 0; i < w->n; i++)
            svg_put(g, "%d,%d ", panel_x(p, w->t[i]), panel_y(p, s->y[i]));
        svg_put(g, "\"/>\n");
        if (f->valid)
            svg_put(g,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                    "stroke-dasharray=\"6,4\"/>\n",
                    panel_x(p, p->tmin), panel_y(p, f->intercept + f->slope * p->tmin),
                    panel_x(p, tmax), panel_y(p, f->intercept + f->slope * tmax), c);
        int ly = p->y0 + (int)q * 34;
        svg_put(g,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">%s%s</text>\n",
                p->x1 + 20, ly, c, p->x1 + 38, ly + 11, s->name,
                w->pub.fit[pick[q]].rising ? " (rising)" : "");
        svg_put(g, "<text x=\"%d\" y=\"%d\" fill=\"#555\">%s, confidence %s</text>\n",
                p->x1 + 38, ly + 25, fmt_rate(b2, sizeof b2, f->slope),
                fmt_conf(conf, sizeof conf, f->confidence));
    }
}

/* The plot: the totals (live bytes and RSS) above, the class series below. */
static void plot_locked(struct watch_state *w)
{
    heap_mutex_assert_held(&watch_lock);
    char path[WATCH_PATH_MAX], tmp[WATCH_PATH_MAX + 16];
    if (w->n < 2 || !heap_fmt_path(path, sizeof path, w->file))
        return;
    heap_fmt(tmp, sizeof tmp, "%s.tmp", path);
    struct svg g;
    g.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (g.fd < 0)
        return;
    g.len = 0;
    g.ok = true;
    const int W = 980, H = 760;
    double tmin = w->t[0], tspan = w->t[w->n - 1] > tmin ? w->t[w->n - 1] - tmin : 1.0;
    svg_put(&g,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" "
            "fill=\"white\"/>\n",
            W, H, W, H);
    svg_put(&g,
            "<text x=\"90\" y=\"22\" font-size=\"15\">slabcache watch: pid %d (%s), live bytes "
            "every %u ms, %zu samples; dashed: least-squares lines</text>\n",
            (int)w->pid, program_invocation_short_name, w->interval_ms, w->samples);
    size_t top[2], ntop = 0;
    for (size_t k = 0; k < w->nr_series && ntop < 2; k++)
        if (is_summary(&w->s[k]))
            top[ntop++] = k;
    struct panel upper = {90, 680, 60, 300, tmin, tspan, 1.0};
    plot_panel(&g, w, &upper, top, ntop, "all live bytes, and the resident set", 0);
    size_t pick[WATCH_PLOT_SERIES];
    size_t np = plot_pick(w, pick);
    bool rising = np && w->pub.fit[pick[0]].rising;
    struct panel lower = {90, 680, 370, 720, tmin, tspan, 1.0};
    plot_panel(&g, w, &lower, pick, np,
               rising ? "rising classes, each beyond its noise" : "the largest classes (none rising)",
               2);
    svg_put(&g, "</svg>\n");
    svg_flush(&g);
    close(g.fd);
    if (g.ok)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* ---------------------------------------------------------------- exit */

void watch_at_exit(void)
{
    struct watch_state *w = __atomic_load_n(&watch, __ATOMIC_ACQUIRE);
    if (!w)
        return;
    heap_mutex_lock(&watch_lock);
    bool mine = !watch_stopped && w->pid == getpid();
    watch_stopped = true;
    if (mine) {
        sample_locked(w);
        if (w->pending) { /* close the point being built */
            w->stride = w->pending;
            w->pending = 0;
            w->t[w->n] = w->t_acc / (double)w->stride;
            for (size_t k = 0; k < w->nr_series; k++) {
                w->s[k].y[w->n] = w->s[k].acc / (double)w->stride;
                w->s[k].acc = 0.0;
            }
            w->n++;
        }
        report_locked(w);
        if (w->file[0])
            plot_locked(w);
    }
    heap_mutex_unlock(&watch_lock);
}
