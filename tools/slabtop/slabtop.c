/* SPDX-License-Identifier: MIT */
/* tools/slabtop/slabtop.c - a live view of a running program's slabcache, like slabtop(1).
 *
 *   slabtop -p PID [-d SECONDS] [-s KEY] [-o]
 *
 * Attaches to a process that has libslabcache loaded (preloaded, linked or static) without
 * stopping it or asking anything of it (reader.h), and shows, refreshed every -d seconds:
 * the process totals (heap, in use, cached, free, RSS), then a row per cache and per
 * large-block size with active and total objects, use %, object size, slabs, cached objects,
 * allocations per second since the last refresh and the trend of its live bytes (the
 * program's own fit when it runs with SLABCACHE_WATCH, else a least-squares fit of the
 * refreshes seen here): slope per minute, confidence that it is positive, and "!" for a
 * slope positive beyond the noise (slab/trend.h).
 *
 * Sort keys, as slabtop(1) (-s KEY, or the key while it runs): a active objects, b objects
 * per slab, c cache size, l slabs, v active slabs, n name, o objects (default), p pages per
 * slab, s object size, u use; and r allocations per second, t trend.  q quits, space
 * refreshes.  -o prints one screen to stdout and exits (two snapshots -d apart, for the
 * rates).
 */
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slab/trend.h"
#include "tools/slabtop/reader.h"

#define HIST_POINTS 512
#define LINE_MAX_LEN 256

struct history {
    char name[SC_NAME_MAX];
    size_t n;
    double t[HIST_POINTS], y[HIST_POINTS];
};

struct view_row {
    const struct sc_row *row;
    double rate;        /* allocations per second; < 0: unknown */
    bool has_trend, rising;
    double slope_min;   /* bytes per minute */
    double confidence;
};

static struct {
    pid_t pid;
    double delay;
    char sort;
    bool once;
    struct sc_target target;
    struct sc_snapshot *cur, *prev; /* prev: NULL before the second snapshot */
    struct sc_snapshot *buf[2];
    int next;
    struct history *hist;
    size_t nhist;
    struct view_row rows[SC_MAX_ROWS];
    size_t nrows;
    unsigned long snapshots;
    bool curses; /* the screen is ncurses' */
} g = {.delay = 3.0, .sort = 'o'};

static const struct {
    char key;
    const char *what;
} sort_keys[] = {
    {'a', "active objects"}, {'b', "objects per slab"}, {'c', "cache size"},
    {'l', "slabs"},          {'v', "active slabs"},     {'n', "name"},
    {'o', "objects"},        {'p', "pages per slab"},   {'s', "object size"},
    {'u', "use"},            {'r', "allocations/s"},    {'t', "trend"},
};

static const char *sort_name(char key)
{
    for (size_t i = 0; i < sizeof sort_keys / sizeof sort_keys[0]; i++)
        if (sort_keys[i].key == key)
            return sort_keys[i].what;
    return NULL;
}

/* "512", "3.5K", "12.0M", "1.2G" */
static const char *human(char *buf, size_t len, double v)
{
    static const char *const unit[] = {"", "K", "M", "G", "T"};
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof unit / sizeof unit[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.1f%s", v, unit[u]);
    return buf;
}

/* ---------------------------------------------------------------- trends */

static struct history *history_of(const char *name)
{
    for (size_t i = 0; i < g.nhist; i++)
        if (strcmp(g.hist[i].name, name) == 0)
            return &g.hist[i];
    if (g.nhist == SC_MAX_ROWS)
        return NULL;
    struct history *h = &g.hist[g.nhist++];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    return h;
}

static void history_add(struct history *h, double t, double y)
{
    if (h->n == HIST_POINTS) { /* keep the newer half */
        memmove(h->t, h->t + HIST_POINTS / 2, HIST_POINTS / 2 * sizeof h->t[0]);
        memmove(h->y, h->y + HIST_POINTS / 2, HIST_POINTS / 2 * sizeof h->y[0]);
        h->n = HIST_POINTS / 2;
    }
    h->t[h->n] = t;
    h->y[h->n] = y;
    h->n++;
}

static const struct slabcache_watch_fit *watch_fit(const struct sc_snapshot *s, const char *name)
{
    if (!s->has_watch)
        return NULL;
    for (uint32_t i = 0; i < s->watch.nr; i++)
        if (strcmp(s->watch.fit[i].name, name) == 0)
            return &s->watch.fit[i];
    return NULL;
}

/* Rows of the current snapshot with their rates and trends. */
static void build_view(void)
{
    const struct sc_snapshot *s = g.cur, *p = g.prev;
    g.nrows = 0;
    for (size_t i = 0; i < s->nrows; i++) {
        const struct sc_row *r = &s->rows[i];
        struct history *h = history_of(r->name);
        if (h)
            history_add(h, s->time, (double)r->live_bytes);
        if (!r->total && !r->allocs && !r->active)
            continue;
        struct view_row *v = &g.rows[g.nrows++];
        memset(v, 0, sizeof *v);
        v->row = r;
        v->rate = -1.0;
        if (p && r->kind == SC_ROW_CACHE && s->time > p->time)
            for (size_t k = 0; k < p->nrows; k++)
                if (p->rows[k].kind == SC_ROW_CACHE && p->rows[k].addr == r->addr) {
                    uint64_t d = r->allocs >= p->rows[k].allocs ? r->allocs - p->rows[k].allocs : 0;
                    v->rate = (double)d / (s->time - p->time);
                    break;
                }
        const struct slabcache_watch_fit *wf = watch_fit(s, r->name);
        if (wf && wf->points >= TREND_MIN_POINTS) {
            v->has_trend = true;
            v->slope_min = wf->slope_per_min;
            v->confidence = wf->confidence;
            v->rising = wf->rising != 0;
        } else if (h && h->n >= TREND_MIN_POINTS) {
            struct trend_fit f;
            trend_fit_points(h->t, h->y, h->n, &f);
            v->has_trend = f.valid;
            v->slope_min = f.slope * 60.0;
            v->confidence = f.confidence;
            v->rising = trend_rising(&f);
        }
    }
}

static double sort_value(const struct view_row *v)
{
    const struct sc_row *r = v->row;
    switch (g.sort) {
    case 'a': return (double)r->active;
    case 'b': return (double)r->objs_per_slab;
    case 'c': return (double)r->reserved_bytes;
    case 'l': return (double)r->slabs;
    case 'v': return (double)r->active_slabs;
    case 'p': return (double)r->pages_per_slab;
    case 's': return (double)r->object_size;
    case 'u': return r->total ? (double)r->active / (double)r->total : 0.0;
    case 'r': return v->rate;
    case 't': return v->has_trend ? v->slope_min : -1e300;
    default: return (double)r->total;
    }
}

static int compare_rows(const void *a, const void *b)
{
    const struct view_row *x = a, *y = b;
    if (g.sort == 'n')
        return strcmp(x->row->name, y->row->name);
    double vx = sort_value(x), vy = sort_value(y);
    if (vx != vy)
        return vx < vy ? 1 : -1;
    return strcmp(x->row->name, y->row->name);
}

/* ---------------------------------------------------------------- the screen as lines */

typedef void (*emit_fn)(int line, bool header, const char *text);

static void emitf(emit_fn emit, int line, bool header, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emitf(emit_fn emit, int line, bool header, const char *fmt, ...)
{
    char buf[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    emit(line, header, buf);
}

/* Draw the screen through emit; returns the number of lines (rows limited to max_rows). */
static int render(emit_fn emit, size_t max_rows)
{
    const struct sc_snapshot *s = g.cur;
    char a[16], b[16], c[16], d[16], e[16], f[16], h[16], i[16];
    int line = 0;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    emitf(emit, line++, false, " slabtop - pid %d (%s) - every %.1f s - sorted by %s (%c) - %02d:%02d:%02d%s",
          (int)g.pid, g.target.comm, g.delay, sort_name(g.sort), g.sort, tm.tm_hour, tm.tm_min,
          tm.tm_sec, s->inconsistent ? " - torn read" : "");
    uint64_t active = 0, total = 0, slabs = 0;
    double rate = 0.0;
    bool have_rate = false;
    for (size_t k = 0; k < s->nrows; k++)
        if (s->rows[k].kind == SC_ROW_CACHE) {
            active += s->rows[k].active;
            total += s->rows[k].total;
            slabs += s->rows[k].slabs;
        }
    for (size_t k = 0; k < g.nrows; k++)
        if (g.rows[k].rate >= 0) {
            rate += g.rows[k].rate;
            have_rate = true;
        }
    emitf(emit, line++, false,
          " Heap: %s (sbrk %s, mmap %s)  In use: %s  Cached: %s  Free: %s  RSS: %s  Allocs/s: %s",
          human(a, sizeof a, (double)s->heap), human(b, sizeof b, (double)s->sbrk),
          human(c, sizeof c, (double)s->mmap), human(d, sizeof d, (double)s->in_use),
          human(e, sizeof e, (double)s->cached), human(f, sizeof f, (double)s->free),
          human(h, sizeof h, (double)s->rss), have_rate ? human(i, sizeof i, rate) : "-");
    emitf(emit, line++, false,
          " Objects: %llu / %llu (%.1f%%)  Slabs: %llu  Caches: %zu  Large: %llu (%s)  "
          "Huge: %llu (%s)  Threads: %zu",
          (unsigned long long)active, (unsigned long long)total,
          total ? 100.0 * (double)active / (double)total : 0.0, (unsigned long long)slabs,
          s->caches, (unsigned long long)s->large_blocks, human(a, sizeof a, (double)s->large_bytes),
          (unsigned long long)s->huge_blocks, human(b, sizeof b, (double)s->huge_bytes), s->threads);
    if (s->has_watch)
        emitf(emit, line++, false,
              " Trend: the program's SLABCACHE_WATCH fits (%llu samples every %.2f s over %.0f s)",
              (unsigned long long)s->watch.samples, s->watch.interval_seconds,
              s->watch.span_seconds);
    else
        emitf(emit, line++, false,
              " Trend: least squares over the %lu refreshes of this view (%d needed)",
              g.snapshots, TREND_MIN_POINTS);
    emit(line++, false, "");
    emitf(emit, line++, true, "%9s %9s %5s %9s %7s %8s %9s %16s  %s", "ACTIVE", "TOTAL", "USE",
          "OBJ SIZE", "SLABS", "CACHED", "ALLOCS/S", "TREND", "NAME");
    for (size_t k = 0; k < g.nrows && k < max_rows; k++) {
        const struct view_row *v = &g.rows[k];
        const struct sc_row *r = v->row;
        char trend[40] = "", rates[16] = "-", cached[16] = "-", slabs_s[16] = "-";
        if (v->has_trend) {
            char sl[16];
            double m = v->slope_min < 0 ? -v->slope_min : v->slope_min;
            /* The confidence rounded down, so 99% means at least the TREND_CONFIDENCE that
             * the "!" of a rising series needs. */
            int pct = (int)(v->confidence * 100.0);
            if (v->slope_min == 0.0)
                snprintf(trend, sizeof trend, "0/m     ");
            else
                snprintf(trend, sizeof trend, "%s%s/m %3d%%%s", v->slope_min < 0 ? "-" : "+",
                         human(sl, sizeof sl, m), pct > 99 ? 99 : pct, v->rising ? "!" : " ");
        }
        if (v->rate >= 0)
            human(rates, sizeof rates, v->rate);
        if (r->kind == SC_ROW_CACHE) {
            snprintf(cached, sizeof cached, "%llu", (unsigned long long)r->cached);
            snprintf(slabs_s, sizeof slabs_s, "%llu", (unsigned long long)r->slabs);
        }
        emitf(emit, line++, false, "%9llu %9llu %4.0f%% %9s %7s %8s %9s %16s  %s",
              (unsigned long long)r->active, (unsigned long long)r->total,
              r->total ? 100.0 * (double)r->active / (double)r->total : 0.0,
              human(a, sizeof a, (double)r->object_size), slabs_s, cached, rates, trend, r->name);
    }
    return line;
}

/* ---------------------------------------------------------------- modes */

/* A new snapshot into the buffer that is not the current one; the current becomes prev. */
static int take_snapshot(void)
{
    struct sc_snapshot *into = g.buf[g.next];
    char err[512];
    if (sc_snapshot(&g.target, into, err, sizeof err) != 0) {
        if (g.curses) {
            endwin();
            g.curses = false;
        }
        fprintf(stderr, "slabtop: %s\n", err);
        return -1;
    }
    g.prev = g.cur;
    g.cur = into;
    g.next ^= 1;
    g.snapshots++;
    build_view();
    qsort(g.rows, g.nrows, sizeof g.rows[0], compare_rows);
    return 0;
}

static void emit_stdout(int line, bool header, const char *text)
{
    (void)line;
    (void)header;
    puts(text);
}

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int run_once(void)
{
    if (take_snapshot() != 0)
        return 1;
    sleep_seconds(g.delay);
    if (take_snapshot() != 0)
        return 1;
    render(emit_stdout, SC_MAX_ROWS);
    return 0;
}

static void emit_curses(int line, bool header, const char *text)
{
    if (line >= LINES)
        return;
    if (header)
        attron(A_REVERSE);
    mvaddnstr(line, 0, text, COLS);
    if (header) {
        for (int x = (int)strlen(text); x < COLS; x++)
            mvaddch(line, x, ' ');
        attroff(A_REVERSE);
    }
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int run_curses(void)
{
    if (take_snapshot() != 0)
        return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    initscr();
    g.curses = true;
    cbreak();
    noecho();
    curs_set(0);
    keypad(stdscr, TRUE);
    int rc = 0;
    while (!stop) {
        erase();
        const int header = 6; /* four lines of totals, a blank line, the column titles */
        render(emit_curses, LINES > header ? (size_t)(LINES - header) : 0);
        refresh();
        timeout((int)(g.delay * 1000.0));
        int ch = getch();
        if (ch == 'q' || ch == 'Q')
            break;
        if (ch != ERR && ch != ' ' && ch != KEY_RESIZE && sort_name((char)ch)) {
            g.sort = (char)ch;
            qsort(g.rows, g.nrows, sizeof g.rows[0], compare_rows);
            continue; /* redraw at once, refresh at the next timeout */
        }
        if (ch == KEY_RESIZE)
            continue;
        if (take_snapshot() != 0) {
            rc = 1;
            break;
        }
    }
    if (g.curses)
        endwin();
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: slabtop -p PID [-d SECONDS] [-s KEY] [-o]\n"
            "  -p, --pid PID       the process to watch (libslabcache loaded: preloaded or "
            "linked)\n"
            "  -d, --delay SECONDS refresh interval (default 3)\n"
            "  -s, --sort KEY      a active, b objs/slab, c cache size, l slabs, v active "
            "slabs,\n"
            "                      n name, o objects (default), p pages/slab, s object size, u "
            "use,\n"
            "                      r allocations/s, t trend\n"
            "  -o, --once          print one screen and exit\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},  {"delay", required_argument, NULL, 'd'},
        {"sort", required_argument, NULL, 's'}, {"once", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "p:d:s:oh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            g.pid = (pid_t)strtol(optarg, &end, 10);
            if (*end || g.pid <= 0) {
                fprintf(stderr, "slabtop: bad pid '%s'\n", optarg);
                return 2;
            }
            break;
        case 'd':
            g.delay = strtod(optarg, &end);
            if (*end || !(g.delay >= 0.05) || g.delay > 3600) {
                fprintf(stderr, "slabtop: bad delay '%s' (0.05 to 3600 seconds)\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (strlen(optarg) != 1 || !sort_name(optarg[0])) {
                fprintf(stderr, "slabtop: bad sort key '%s'\n", optarg);
                usage(stderr);
                return 2;
            }
            g.sort = optarg[0];
            break;
        case 'o':
            g.once = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!g.pid || optind != argc) {
        usage(stderr);
        return 2;
    }
    char err[512];
    if (sc_attach(&g.target, g.pid, err, sizeof err) != 0) {
        fprintf(stderr, "slabtop: %s\n", err);
        return 1;
    }
    g.buf[0] = calloc(1, sizeof *g.buf[0]);
    g.buf[1] = calloc(1, sizeof *g.buf[1]);
    g.hist = calloc(SC_MAX_ROWS, sizeof *g.hist);
    if (!g.buf[0] || !g.buf[1] || !g.hist) {
        fprintf(stderr, "slabtop: out of memory\n");
        return 1;
    }
    int rc = g.once ? run_once() : run_curses();
    return rc;
}
