/* SPDX-License-Identifier: MIT */
/* benchmarks/harness.c - allocator vtables, repetitions, medians, markdown and JSON output.
 * See harness.h for what is measured and how. */
#include "benchmarks/harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef SLABCACHE_BENCH_NO_SLAB
#include "slab/kmalloc.h"
#include "slab/slab.h"
#endif

#define BENCH_MAX_ALLOCS 8
#define BENCH_MAX_REPS 101

/* ---------------------------------------------------------------- kmem_cache */

#ifndef SLABCACHE_BENCH_NO_SLAB
static struct kmem_cache *kmem_bench_cache;

static int kmem_setup(size_t size, bench_ctor_fn ctor)
{
    char name[KMEM_CACHE_NAME_MAX];
    snprintf(name, sizeof name, "bench%zu", size);
    kmem_bench_cache = kmem_cache_create(name, size, 0, 0, ctor);
    if (kmem_bench_cache == NULL) {
        fprintf(stderr, "kmem_cache_create(%s, %zu): %s\n", name, size, strerror(errno));
        return -1;
    }
    return 0;
}

struct kmem_cache *bench_kmem_cache(void)
{
    return kmem_bench_cache;
}

static void kmem_teardown(void)
{
    kmem_cache_destroy(kmem_bench_cache);
    kmem_bench_cache = NULL;
}

static void *kmem_alloc(size_t size)
{
    (void)size;
    return kmem_cache_alloc(kmem_bench_cache, 0);
}

static void kmem_free(void *p)
{
    kmem_cache_free(kmem_bench_cache, p);
}

static size_t kmem_alloc_bulk(size_t size, size_t nr, void **objs)
{
    (void)size;
    return kmem_cache_alloc_bulk(kmem_bench_cache, 0, nr, objs);
}

static void kmem_free_bulk(size_t nr, void **objs)
{
    kmem_cache_free_bulk(kmem_bench_cache, nr, objs);
}

/* kmalloc: the general-purpose size classes (shared by every run, like malloc's). */
static void *kmalloc_alloc(size_t size)
{
    return kmalloc(size, 0);
}

static void *kmalloc_realloc_one(void *p, size_t size)
{
    return krealloc(p, size, 0);
}
#else
struct kmem_cache *bench_kmem_cache(void)
{
    return NULL;
}
#endif

/* ---------------------------------------------------------------- floor
 *
 * The lower bound: a LIFO intrusive free list per thread over a reserved region carved by a
 * bump pointer.  No headers, no size classes, no locking.  Each thread gets its own region
 * (reserved lazily, MAP_NORESERVE); teardown unmaps every region. */

#define FLOOR_REGION_BYTES ((size_t)4 << 30)

struct floor_thread {
    char *bump, *end;
    void *free_list;
};

struct floor_region {
    void *base;
    struct floor_region *next;
};

static __thread struct floor_thread floor_tls;
static size_t floor_slot;
static pthread_mutex_t floor_lock = PTHREAD_MUTEX_INITIALIZER;
static struct floor_region *floor_regions;

static int floor_setup(size_t size, bench_ctor_fn ctor)
{
    (void)ctor;
    floor_slot = (size + 7) & ~(size_t)7;
    if (floor_slot < sizeof(void *))
        floor_slot = sizeof(void *);
    memset(&floor_tls, 0, sizeof floor_tls);
    return 0;
}

static void floor_teardown(void)
{
    pthread_mutex_lock(&floor_lock);
    while (floor_regions != NULL) {
        struct floor_region *r = floor_regions;
        floor_regions = r->next;
        munmap(r->base, FLOOR_REGION_BYTES);
        free(r);
    }
    pthread_mutex_unlock(&floor_lock);
    memset(&floor_tls, 0, sizeof floor_tls);
}

static __attribute__((noinline)) void *floor_alloc_slow(void)
{
    struct floor_region *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    r->base = mmap(NULL, FLOOR_REGION_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r->base == MAP_FAILED) {
        free(r);
        return NULL;
    }
    pthread_mutex_lock(&floor_lock);
    r->next = floor_regions;
    floor_regions = r;
    pthread_mutex_unlock(&floor_lock);
    floor_tls.bump = (char *)r->base + floor_slot;
    floor_tls.end = (char *)r->base + FLOOR_REGION_BYTES;
    return r->base;
}

static void *floor_alloc(size_t size)
{
    (void)size;
    void *p = floor_tls.free_list;
    if (p != NULL) {
        floor_tls.free_list = *(void **)p;
        return p;
    }
    if (floor_tls.bump != NULL && (size_t)(floor_tls.end - floor_tls.bump) >= floor_slot) {
        p = floor_tls.bump;
        floor_tls.bump += floor_slot;
        return p;
    }
    return floor_alloc_slow();
}

static void floor_free(void *p)
{
    *(void **)p = floor_tls.free_list;
    floor_tls.free_list = p;
}

/* ---------------------------------------------------------------- peers via dlopen */

static const char *missing_names[BENCH_MAX_ALLOCS + 1];
static size_t nmissing;

static void note_missing(const char *name, const char *why)
{
    static char buf[BENCH_MAX_ALLOCS][256];
    if (nmissing >= BENCH_MAX_ALLOCS)
        return;
    snprintf(buf[nmissing], sizeof buf[nmissing], "%s (%s)", name, why ? why : "unknown");
    missing_names[nmissing] = buf[nmissing];
    nmissing++;
}

const char *const *bench_missing(void)
{
    return missing_names;
}

/* Resolve alloc/free symbols from a library into a vtable; 0 on success. */
static int load_peer(struct bench_alloc *a, const char *name, const char *soname,
                     const char *alloc_sym, const char *free_sym, const char *realloc_sym,
                     int noload)
{
    dlerror();
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | (noload ? RTLD_NOLOAD : 0));
    if (h == NULL) {
        note_missing(name, dlerror());
        return -1;
    }
    void *fa = dlsym(h, alloc_sym);
    void *ff = dlsym(h, free_sym);
    void *fr = dlsym(h, realloc_sym);
    if (fa == NULL || ff == NULL || fr == NULL) {
        note_missing(name, "symbols not found");
        return -1;
    }
    memset(a, 0, sizeof *a);
    a->name = name;
    a->kind = BENCH_KIND_PEER;
    memcpy(&a->alloc, &fa, sizeof fa);
    memcpy(&a->free, &ff, sizeof ff);
    memcpy(&a->realloc, &fr, sizeof fr);
    a->thread_safe = 1;
    a->cross_thread_free = 1;
    return 0;
}

static const struct bench_alloc builtin_allocators[] = {
#ifndef SLABCACHE_BENCH_NO_SLAB
    {
        .name = "kmem_cache", .kind = BENCH_KIND_SLAB,
        .setup = kmem_setup, .teardown = kmem_teardown,
        .alloc = kmem_alloc, .free = kmem_free,
        .cache_alloc = kmem_cache_alloc, .cache_free = kmem_cache_free,
        .cache = &kmem_bench_cache,
        .alloc_bulk = kmem_alloc_bulk, .free_bulk = kmem_free_bulk,
        .thread_exit = kmem_cache_thread_flush,
        .runs_ctor = 1, .thread_safe = 1, .cross_thread_free = 1,
    },
    {
        .name = "kmalloc", .kind = BENCH_KIND_SLAB,
        .alloc = kmalloc_alloc, .free = kfree, .realloc = kmalloc_realloc_one,
        .thread_exit = kmem_cache_thread_flush,
        .thread_safe = 1, .cross_thread_free = 1,
    },
#endif
    {
        .name = "floor", .kind = BENCH_KIND_FLOOR,
        .setup = floor_setup, .teardown = floor_teardown,
        .alloc = floor_alloc, .free = floor_free,
        .thread_safe = 1, /* per-thread lists: no cross-thread frees */
    },
};

#define NBUILTIN (sizeof builtin_allocators / sizeof builtin_allocators[0])

const struct bench_alloc *bench_builtin_allocator(const char *name)
{
    for (size_t i = 0; i < NBUILTIN; i++)
        if (strcmp(builtin_allocators[i].name, name) == 0)
            return &builtin_allocators[i];
    return NULL;
}

size_t bench_load_allocators(const struct bench_alloc **out)
{
    static struct bench_alloc table[BENCH_MAX_ALLOCS];
    static size_t n;
    if (n > 0) {
        *out = table;
        return n;
    }
    for (size_t i = 0; i < NBUILTIN; i++)
        table[n++] = builtin_allocators[i];
    /* glibc through its own symbols, even if something else interposes malloc. */
    if (load_peer(&table[n], "glibc", "libc.so.6", "malloc", "free", "realloc", 1) == 0)
        n++;
    if (load_peer(&table[n], "jemalloc", "libjemalloc.so.2", "malloc", "free", "realloc",
                  0) == 0)
        n++;
    if (load_peer(&table[n], "tcmalloc", "libtcmalloc_minimal.so.4", "tc_malloc", "tc_free",
                  "tc_realloc", 0) == 0)
        n++;
    if (load_peer(&table[n], "mimalloc", "libmimalloc.so.2", "mi_malloc", "mi_free", "mi_realloc",
                  0) == 0)
        n++;
    *out = table;
    return n;
}

void bench_reexec_with_tunables(char **argv)
{
    static const char tunable[] = "glibc.rtld.optional_static_tls=65536";
    const char *cur = getenv("GLIBC_TUNABLES");
    if (cur != NULL && strstr(cur, "glibc.rtld.optional_static_tls") != NULL)
        return;
    if (getenv("SLABCACHE_BENCH_REEXEC") != NULL)
        return; /* tried once already: run without jemalloc rather than loop */
    char buf[1024];
    if (cur != NULL && cur[0] != '\0')
        snprintf(buf, sizeof buf, "%s:%s", cur, tunable);
    else
        snprintf(buf, sizeof buf, "%s", tunable);
    setenv("GLIBC_TUNABLES", buf, 1);
    setenv("SLABCACHE_BENCH_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "bench: re-exec with GLIBC_TUNABLES failed (%s); jemalloc may be missing\n",
            strerror(errno));
}

/* ---------------------------------------------------------------- options */

void bench_parse_options(int argc, char **argv, struct bench_options *opt, const char *usage_extra)
{
    static char command[2048];
    size_t used = 0;
    memset(opt, 0, sizeof *opt);
    opt->reps = 0;
    for (int i = 0; i < argc && used + 2 < sizeof command; i++) {
        int k = snprintf(command + used, sizeof command - used, "%s%s", i ? " " : "", argv[i]);
        if (k < 0)
            break;
        used += (size_t)k;
        if (used >= sizeof command)
            used = sizeof command - 1;
    }
    opt->command = command;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            opt->quick = 1;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            opt->reps = atoi(argv[++i]);
            if (opt->reps < 1 || opt->reps > BENCH_MAX_REPS) {
                fprintf(stderr, "--reps: 1..%d\n", BENCH_MAX_REPS);
                exit(2);
            }
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            opt->only = argv[++i];
        } else if (strcmp(argv[i], "--allocators") == 0 && i + 1 < argc) {
            opt->allocators = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            opt->json_path = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--reps N] [--only W[,W...]] [--allocators A[,A...]]"
                    " [--json PATH]\n%s",
                    argv[0], usage_extra ? usage_extra : "");
            exit(strcmp(argv[i], "--help") == 0 ? 0 : 2);
        }
    }
    if (opt->reps == 0)
        opt->reps = opt->quick ? 5 : 7;
}

int bench_selected(const char *only, const char *name)
{
    if (only == NULL)
        return 1;
    size_t len = strlen(name);
    const char *p = only;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (l == len && strncmp(p, name, len) == 0)
            return 1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- statistics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct stat3 {
    double median, min, max;
    int n;
};

static struct stat3 summarize(const double *v, int n)
{
    double s[BENCH_MAX_REPS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            s[k++] = v[i];
    struct stat3 r = {NAN, NAN, NAN, k};
    if (k == 0)
        return r;
    qsort(s, (size_t)k, sizeof s[0], cmp_double);
    r.min = s[0];
    r.max = s[k - 1];
    r.median = (k % 2) ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
    return r;
}

/* ---------------------------------------------------------------- results */

struct result_row {
    const struct bench_workload *w;
    size_t metric;
    struct stat3 st[BENCH_MAX_ALLOCS];
    double samples[BENCH_MAX_ALLOCS][BENCH_MAX_REPS];
    int best_peer; /* index into allocators, or -1 */
};

static struct result_row *rows;
static size_t nrows;
static const struct bench_alloc *allocs;
static size_t nallocs;
static int nreps;

static int best_peer_of(const struct result_row *r)
{
    int best = -1;
    for (size_t a = 0; a < nallocs; a++) {
        if (allocs[a].kind != BENCH_KIND_PEER || isnan(r->st[a].median))
            continue;
        if (best < 0)
            best = (int)a;
        else if (r->w->better[r->metric] == BENCH_LOWER ? r->st[a].median < r->st[best].median
                                                         : r->st[a].median > r->st[best].median)
            best = (int)a;
    }
    return best;
}

double bench_median(const char *workload, const char *metric, const char *allocator)
{
    for (size_t i = 0; i < nrows; i++) {
        const struct result_row *r = &rows[i];
        if (strcmp(r->w->name, workload) != 0 || strcmp(r->w->metric_names[r->metric], metric) != 0)
            continue;
        if (strcmp(allocator, "best-peer") == 0)
            return r->best_peer >= 0 ? r->st[r->best_peer].median : NAN;
        for (size_t a = 0; a < nallocs; a++)
            if (strcmp(allocs[a].name, allocator) == 0)
                return r->st[a].median;
    }
    return NAN;
}

/* ---------------------------------------------------------------- output */

static void fmt_value(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (v >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (v >= 100)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.2f", v);
}

static void print_header(const char *first)
{
    printf("| %s | unit |", first);
    for (size_t a = 0; a < nallocs; a++)
        printf(" %s |", allocs[a].name);
    printf(" best peer |\n|---|---|");
    for (size_t a = 0; a < nallocs; a++)
        printf("---:|");
    printf("---|\n");
}

static void row_label(const struct result_row *r, char *buf, size_t len)
{
    if (r->w->nmetrics == 1)
        snprintf(buf, len, "%s", r->w->name);
    else
        snprintf(buf, len, "%s %s", r->w->name, r->w->metric_names[r->metric]);
}

static void print_tables(void)
{
    char label[96], v[32], lo[32], hi[32];
    printf("### Median per operation, and ratio to the best peer\n\n");
    printf("Lower is better except where the unit says `x` (a ratio: higher is better). "
           "Ratio = this allocator's median / the best peer's median.\n\n");
    print_header("workload");
    for (size_t i = 0; i < nrows; i++) {
        const struct result_row *r = &rows[i];
        row_label(r, label, sizeof label);
        printf("| %s | %s |", label, r->w->metric_units[r->metric]);
        double best = r->best_peer >= 0 ? r->st[r->best_peer].median : NAN;
        for (size_t a = 0; a < nallocs; a++) {
            fmt_value(v, sizeof v, r->st[a].median);
            if (isnan(r->st[a].median) || isnan(best) || best == 0)
                printf(" %s |", v);
            else
                printf(" %s (%.2fx) |", v, r->st[a].median / best);
        }
        printf(" %s |\n", r->best_peer >= 0 ? allocs[r->best_peer].name : "-");
    }
    printf("\n### Spread: min-max over %d repetitions\n\n", nreps);
    print_header("workload");
    for (size_t i = 0; i < nrows; i++) {
        const struct result_row *r = &rows[i];
        row_label(r, label, sizeof label);
        printf("| %s | %s |", label, r->w->metric_units[r->metric]);
        for (size_t a = 0; a < nallocs; a++) {
            if (r->st[a].n == 0) {
                printf(" - |");
                continue;
            }
            fmt_value(lo, sizeof lo, r->st[a].min);
            fmt_value(hi, sizeof hi, r->st[a].max);
            printf(" %s-%s |", lo, hi);
        }
        printf(" |\n");
    }
    printf("\n");
    const char *const *m = bench_missing();
    for (size_t i = 0; m[i] != NULL; i++)
        printf("Missing peer: %s\n", m[i]);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fprintf(f, "null");
    else
        fprintf(f, "%.4f", v);
}

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c != NULL) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(buf, len, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static char load_before[64], load_after[64];

/* The first three fields of /proc/loadavg: how busy the shared machine was. */
static void read_loadavg(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static int write_json(const char *path, const struct bench_options *opt)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "--json %s: %s\n", path, strerror(errno));
        return -1;
    }
    char cpu[256];
    struct utsname u;
    cpu_model(cpu, sizeof cpu);
    if (uname(&u) != 0)
        memset(&u, 0, sizeof u);
    fprintf(f, "{\"machine\": {\"nproc\": %ld, \"cpu\": ", sysconf(_SC_NPROCESSORS_ONLN));
    json_string(f, cpu);
    fprintf(f, ", \"kernel\": ");
    json_string(f, u.release);
    fprintf(f, ", \"loadavg_before\": ");
    json_string(f, load_before);
    fprintf(f, ", \"loadavg_after\": ");
    json_string(f, load_after);
    fprintf(f, "},\n \"command\": ");
    json_string(f, opt->command);
    fprintf(f, ", \"quick\": %s, \"reps\": %d,\n \"missing\": [", opt->quick ? "true" : "false",
            opt->reps);
    const char *const *m = bench_missing();
    for (size_t i = 0; m[i] != NULL; i++) {
        if (i)
            fputs(", ", f);
        json_string(f, m[i]);
    }
    fprintf(f, "],\n \"results\": [\n");
    int first = 1;
    for (size_t i = 0; i < nrows; i++) {
        const struct result_row *r = &rows[i];
        double best = r->best_peer >= 0 ? r->st[r->best_peer].median : NAN;
        for (size_t a = 0; a < nallocs; a++) {
            if (r->st[a].n == 0)
                continue;
            fprintf(f, "%s  {\"workload\": ", first ? "" : ",\n");
            first = 0;
            json_string(f, r->w->name);
            fprintf(f, ", \"metric\": ");
            json_string(f, r->w->metric_names[r->metric]);
            fprintf(f, ", \"unit\": ");
            json_string(f, r->w->metric_units[r->metric]);
            fprintf(f, ", \"better\": \"%s\", \"allocator\": ",
                    r->w->better[r->metric] == BENCH_LOWER ? "lower" : "higher");
            json_string(f, allocs[a].name);
            fprintf(f, ", \"kind\": \"%s\", \"median\": ",
                    allocs[a].kind == BENCH_KIND_PEER   ? "peer"
                    : allocs[a].kind == BENCH_KIND_SLAB ? "slab"
                                                        : "floor");
            json_number(f, r->st[a].median);
            fprintf(f, ", \"min\": ");
            json_number(f, r->st[a].min);
            fprintf(f, ", \"max\": ");
            json_number(f, r->st[a].max);
            fprintf(f, ", \"ratio_best_peer\": ");
            json_number(f, isnan(best) || best == 0 ? NAN : r->st[a].median / best);
            fprintf(f, ", \"samples\": [");
            for (int k = 0; k < nreps; k++) {
                if (k)
                    fputs(", ", f);
                json_number(f, r->samples[a][k]);
            }
            fprintf(f, "]}");
        }
    }
    fprintf(f, "\n ]}\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- the run loop */

int bench_run_all(struct bench_workload *workloads, size_t nworkloads,
                  const struct bench_options *opt)
{
    static struct bench_alloc chosen[BENCH_MAX_ALLOCS];
    const struct bench_alloc *all;
    size_t nall = bench_load_allocators(&all);
    nallocs = 0;
    for (size_t a = 0; a < nall; a++)
        if (bench_selected(opt->allocators, all[a].name))
            chosen[nallocs++] = all[a];
    allocs = chosen;
    if (nallocs == 0) {
        fprintf(stderr, "--allocators %s: none of them is available:", opt->allocators);
        for (size_t a = 0; a < nall; a++)
            fprintf(stderr, " %s", all[a].name);
        fprintf(stderr, "\n");
        return 1;
    }
    nreps = opt->reps;
    size_t nsel = 0, total = 0, done = 0;
    nrows = 0;
    for (size_t w = 0; w < nworkloads; w++) {
        if (!bench_selected(opt->only, workloads[w].name))
            continue;
        nsel++;
        nrows += workloads[w].nmetrics;
    }
    if (nsel == 0) {
        fprintf(stderr, "--only %s: no such workload; workloads:", opt->only);
        for (size_t w = 0; w < nworkloads; w++)
            fprintf(stderr, " %s", workloads[w].name);
        fprintf(stderr, "\n");
        return 1;
    }
    total = nsel * nallocs * (size_t)nreps;
    rows = calloc(nrows, sizeof *rows);
    if (rows == NULL) {
        perror("calloc");
        return 1;
    }
    size_t row = 0;
    int tty = isatty(2);
    read_loadavg(load_before, sizeof load_before);
    for (size_t w = 0; w < nworkloads; w++) {
        struct bench_workload *wl = &workloads[w];
        if (!bench_selected(opt->only, wl->name))
            continue;
        struct result_row *rr = &rows[row];
        for (size_t m = 0; m < wl->nmetrics; m++) {
            rr[m].w = wl;
            rr[m].metric = m;
            for (size_t a = 0; a < nallocs; a++)
                for (int k = 0; k < nreps; k++)
                    rr[m].samples[a][k] = NAN;
        }
        for (int rep = 0; rep < nreps; rep++) {
            for (size_t i = 0; i < nallocs; i++) {
                size_t a = (rep % 2 == 0) ? i : nallocs - 1 - i;
                const struct bench_alloc *al = &allocs[a];
                done++;
                /* On a terminal one line redrawn per run; in a log one line per workload. */
                if (tty)
                    fprintf(stderr, "\r[%zu/%zu] %s %s ...\033[K", done, total, wl->name,
                            al->name);
                else if (rep == 0 && i == 0)
                    fprintf(stderr, "[%zu/%zu] %s ...\n", done, total, wl->name);
                double values[4] = {NAN, NAN, NAN, NAN};
                if (wl->run(al, wl, values) != 0)
                    continue;
                for (size_t m = 0; m < wl->nmetrics; m++)
                    rr[m].samples[a][rep] = values[m];
            }
        }
        for (size_t m = 0; m < wl->nmetrics; m++) {
            for (size_t a = 0; a < nallocs; a++)
                rr[m].st[a] = summarize(rr[m].samples[a], nreps);
            rr[m].best_peer = best_peer_of(&rr[m]);
        }
        row += wl->nmetrics;
    }
    if (tty)
        fprintf(stderr, "\r\033[K");
    read_loadavg(load_after, sizeof load_after);
    printf("Load average (1/5/15 min) before: %s; after: %s (%ld CPUs).\n\n", load_before,
           load_after, sysconf(_SC_NPROCESSORS_ONLN));
    print_tables();
    if (opt->json_path != NULL && write_json(opt->json_path, opt) != 0)
        return 1;
    return 0;
}
