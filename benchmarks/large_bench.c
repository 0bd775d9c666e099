/* SPDX-License-Identifier: MIT */
/* benchmarks/large_bench.c - large blocks (32 KiB - 4 MiB): churn, realloc growth, retention.
 *
 * Every block allocated has every page of its requested size written (one byte per 4 KiB
 * page, and its last byte), so an allocator that gives memory back to the OS and faults it
 * in again pays for it here.  Sizes are drawn log-uniformly, so each power of two between the
 * bounds is equally likely.
 *
 *   large1        L live blocks (32 KiB - 4 MiB); each step frees one at random and
 *                 allocates its successor of a new random size; us per step
 *   large2        the same on 2 threads, each with its own L/2 blocks and half the steps;
 *                 us per step from wall-clock time
 *   realloc       64 buffers that grow from 32 KiB by realloc (each step: one buffer grows
 *                 by 5-50%, writing its new pages), up to a random cap of 256 KiB - 4 MiB,
 *                 then are freed and started again
 *   realloc_huge  the same with 8 buffers from 1 MiB to caps of 8 - 64 MiB (past the buddy
 *                 layer's largest block: dedicated mappings, mremap)
 *
 * Part 1 (time): every allocator in this one process (the peers dlopen'd, see harness.h),
 * repetitions alternating, median us per step and minor page faults per MiB of churn
 * (getrusage; churn = bytes requested by malloc plus bytes added by realloc).
 * Part 2 (system calls, RSS): one child process per allocator and workload runs the workload
 * once, under strace when it is installed (mmap, munmap, madvise, brk, mremap counted between
 * markers), and reports anonymous RSS (/proc/self/smaps_rollup) with the blocks live, right
 * after freeing everything, and after one second of light further activity (a 64 KiB block
 * allocated, written and freed every millisecond).
 * Part 3 (retention): 50,000 blocks of 4000 B allocated, written and freed, then one second
 * of light activity (a 4000 B and a 64 KiB block every millisecond); RSS at each point.
 *
 * Usage: large_bench [--quick] [--reps N] [--only W[,W...]] [--allocators A[,A...]]
 *                    [--json PATH] [--no-children]
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchmarks/harness.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define PAGE 4096
#define DEFAULT_ALLOCATORS "kmalloc,glibc,jemalloc,tcmalloc,mimalloc"
#define BENCH_MAX_ALLOCS_LARGE 8

/* ---------------------------------------------------------------- helpers */

static size_t log_uniform(uint64_t *rs, size_t lo, size_t hi)
{
    double u = (double)(bench_rand(rs) >> 11) / (double)(1ull << 53);
    size_t s = (size_t)((double)lo * exp(u * log((double)hi / (double)lo)));
    return s < lo ? lo : s > hi ? hi : s;
}

/* Write one byte in every page of [from, to) of p, and the last byte. */
static void touch_range(void *p, size_t from, size_t to, unsigned char v)
{
    unsigned char *c = p;
    for (size_t off = from; off < to; off += PAGE)
        c[off] = v;
    c[to - 1] = v;
}

static long minflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Anonymous resident bytes (exact: the page tables are walked), or -1. */
static long rss_anon(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Anonymous: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* A marker the strace log is cut at (nothing else in the process calls getppid). */
static void marker(void)
{
    (void)syscall(SYS_getppid);
}

/* Called (if set) with the blocks still live at the end of a run: the child samples RSS. */
static void (*live_hook)(void);

/* ---------------------------------------------------------------- replacement */

struct slot {
    void *p;
    size_t size;
    size_t cap; /* realloc: grow up to this, then start again */
};

struct run_args {
    const struct bench_alloc *a;
    size_t live, steps;
    size_t lo, hi;         /* sizes (replacement) or start size and cap range (realloc) */
    size_t cap_lo, cap_hi; /* realloc only */
    int realloc_mode;
    uint64_t seed;
    /* out */
    size_t churn;
    int failed;
    pthread_barrier_t *start;
};

static int replace_body(struct run_args *r, struct slot *s)
{
    uint64_t rs = r->seed;
    const struct bench_alloc *a = r->a;
    for (size_t i = 0; i < r->live; i++) {
        s[i].size = log_uniform(&rs, r->lo, r->hi);
        s[i].p = a->alloc(s[i].size);
        if (s[i].p == NULL)
            return -1;
        touch_range(s[i].p, 0, s[i].size, 1);
    }
    if (r->start)
        pthread_barrier_wait(r->start);
    size_t churn = 0;
    for (size_t k = 0; k < r->steps; k++) {
        size_t i = bench_rand(&rs) % r->live;
        a->free(s[i].p);
        size_t n = log_uniform(&rs, r->lo, r->hi);
        void *p = a->alloc(n);
        if (p == NULL)
            return -1;
        touch_range(p, 0, n, (unsigned char)k);
        s[i].p = p;
        s[i].size = n;
        churn += n;
    }
    r->churn = churn;
    return 0;
}

static int realloc_body(struct run_args *r, struct slot *s)
{
    uint64_t rs = r->seed;
    const struct bench_alloc *a = r->a;
    for (size_t i = 0; i < r->live; i++) {
        s[i].size = r->lo;
        s[i].cap = log_uniform(&rs, r->cap_lo, r->cap_hi);
        s[i].p = a->alloc(s[i].size);
        if (s[i].p == NULL)
            return -1;
        touch_range(s[i].p, 0, s[i].size, 1);
    }
    if (r->start)
        pthread_barrier_wait(r->start);
    size_t churn = 0;
    for (size_t k = 0; k < r->steps; k++) {
        struct slot *b = &s[bench_rand(&rs) % r->live];
        if (b->size >= b->cap) {
            a->free(b->p);
            b->size = r->lo;
            b->cap = log_uniform(&rs, r->cap_lo, r->cap_hi);
            b->p = a->alloc(b->size);
            if (b->p == NULL)
                return -1;
            touch_range(b->p, 0, b->size, (unsigned char)k);
            churn += b->size;
            continue;
        }
        size_t grow = (size_t)((double)b->size * (0.05 + 0.45 * (double)(bench_rand(&rs) >> 11) /
                                                             (double)(1ull << 53)));
        size_t n = b->size + (grow < 16 ? 16 : grow);
        if (n > b->cap)
            n = b->cap;
        void *p = a->realloc(b->p, n);
        if (p == NULL)
            return -1;
        touch_range(p, b->size, n, (unsigned char)k);
        churn += n - b->size;
        b->p = p;
        b->size = n;
    }
    r->churn = churn;
    return 0;
}

static void *run_thread(void *arg)
{
    struct run_args *r = arg;
    struct slot *s = calloc(r->live, sizeof *s);
    if (s == NULL) {
        r->failed = 1;
        if (r->start)
            pthread_barrier_wait(r->start);
        return NULL;
    }
    int rc = r->realloc_mode ? realloc_body(r, s) : replace_body(r, s);
    if (rc != 0)
        r->failed = 1;
    return s; /* freed by the caller, after every thread is done */
}

static void free_slots(const struct bench_alloc *a, struct slot *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].p != NULL)
            a->free(s[i].p);
    free(s);
}

struct shape {
    size_t live, steps, lo, hi, cap_lo, cap_hi;
    int threads, realloc_mode;
};

/* One run: us per step and minor faults per MiB of churn. */
static int run_shape(const struct bench_alloc *a, const struct shape *sh, uint64_t seed,
                     double *us_per_step, double *flt_per_mib, size_t *churn_out)
{
    if (a->realloc == NULL || a->kind == BENCH_KIND_FLOOR)
        return -1; /* fixed-size allocators cannot run variable sizes */
    int nt = sh->threads;
    struct run_args r[2];
    pthread_t tid[2];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
    for (int t = 0; t < nt; t++) {
        r[t] = (struct run_args){.a = a, .live = sh->live / (size_t)nt,
                                 .steps = sh->steps / (size_t)nt, .lo = sh->lo, .hi = sh->hi,
                                 .cap_lo = sh->cap_lo, .cap_hi = sh->cap_hi,
                                 .realloc_mode = sh->realloc_mode,
                                 .seed = seed * 7919 + (uint64_t)t + 1, .start = &bar};
        if (pthread_create(&tid[t], NULL, run_thread, &r[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&bar); /* every thread has its blocks live */
    long f0 = minflt_now();
    uint64_t t0 = bench_now_ns();
    void *slots[2];
    for (int t = 0; t < nt; t++)
        pthread_join(tid[t], &slots[t]);
    uint64_t t1 = bench_now_ns();
    long f1 = minflt_now();
    pthread_barrier_destroy(&bar);
    if (live_hook)
        live_hook();
    size_t churn = 0;
    int failed = 0;
    for (int t = 0; t < nt; t++) {
        churn += r[t].churn;
        failed |= r[t].failed;
        if (slots[t])
            free_slots(a, slots[t], r[t].live);
    }
    if (failed) {
        fprintf(stderr, "\n%s: allocation failed\n", a->name);
        return -1;
    }
    *us_per_step = (double)(t1 - t0) / 1e3 / (double)sh->steps;
    *flt_per_mib = (double)(f1 - f0) / ((double)churn / (double)MIB);
    if (churn_out)
        *churn_out = churn;
    return 0;
}

/* ---------------------------------------------------------------- workloads */

static struct shape shapes[4];
static const char *const shape_names[4] = {"large1", "large2", "realloc", "realloc_huge"};
static uint64_t run_counter;

static int wl_run(const struct bench_alloc *a, const struct bench_workload *w, double *v)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(w->name, shape_names[i]) == 0)
            return run_shape(a, &shapes[i], ++run_counter % 5 + 1, &v[0], &v[1], NULL);
    return -1;
}

#define WL(nm, desc)                                                                               \
    {                                                                                              \
        .name = nm, .description = desc, .nmetrics = 2, .metric_names = {"time", "faults"},        \
        .metric_units = {"us/step", "flt/MiB"}, .better = {BENCH_LOWER, BENCH_LOWER},              \
        .run = wl_run                                                                              \
    }

static struct bench_workload workloads[] = {
    WL("large1", "random replacement among live blocks of 32 KiB - 4 MiB, 1 thread"),
    WL("large2", "the same on 2 threads"),
    WL("realloc", "buffers grown by realloc from 32 KiB to 256 KiB - 4 MiB"),
    WL("realloc_huge", "buffers grown by realloc from 1 MiB to 8 - 64 MiB"),
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

static void set_shapes(int quick)
{
    size_t steps = quick ? 4000 : 20000;
    shapes[0] = (struct shape){.live = 256, .steps = steps, .lo = 32 * KIB, .hi = 4 * MIB,
                               .threads = 1};
    shapes[1] = shapes[0];
    shapes[1].threads = 2;
    shapes[2] = (struct shape){.live = 64, .steps = quick ? 10000 : 40000, .lo = 32 * KIB,
                               .cap_lo = 256 * KIB, .cap_hi = 4 * MIB, .threads = 1,
                               .realloc_mode = 1};
    shapes[3] = (struct shape){.live = 8, .steps = quick ? 300 : 1500, .lo = 1 * MIB,
                               .cap_lo = 8 * MIB, .cap_hi = 64 * MIB, .threads = 1,
                               .realloc_mode = 1};
}

/* ---------------------------------------------------------------- children */

static const struct bench_alloc *find_alloc(const char *name)
{
    const struct bench_alloc *all;
    size_t n = bench_load_allocators(&all);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, name) == 0)
            return &all[i];
    return NULL;
}

static long child_rss_live;

static void sample_live(void)
{
    child_rss_live = rss_anon();
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One second of light activity: every millisecond a block of each size in `sizes` is
 * allocated, written (every page) and freed. */
static void light_activity(const struct bench_alloc *a, const size_t *sizes, size_t n)
{
    uint64_t end = bench_now_ns() + 1000000000ull;
    while (bench_now_ns() < end) {
        for (size_t i = 0; i < n; i++) {
            void *p = a->alloc(sizes[i]);
            if (p != NULL) {
                touch_range(p, 0, sizes[i], 7);
                a->free(p);
            }
        }
        sleep_ms(1);
    }
}

static int child_workload(const char *alloc, const char *wname, int quick)
{
    set_shapes(quick);
    const struct bench_alloc *a = find_alloc(alloc);
    const struct shape *sh = NULL;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(wname, shape_names[i]) == 0)
            sh = &shapes[i];
    if (a == NULL || sh == NULL) {
        printf("missing\n");
        return 0;
    }
    long rss0 = rss_anon();
    live_hook = sample_live;
    double us, flt;
    size_t churn;
    marker();
    long f0 = minflt_now();
    if (run_shape(a, sh, 1, &us, &flt, &churn) != 0) {
        printf("failed\n");
        return 0;
    }
    long f1 = minflt_now();
    marker();
    long rss_freed = rss_anon();
    static const size_t light[] = {64 * KIB};
    light_activity(a, light, 1);
    marker();
    long rss_later = rss_anon();
    printf("ok %zu %ld %ld %ld %ld %ld\n", churn, f1 - f0, rss0, child_rss_live, rss_freed,
           rss_later);
    return 0;
}

#define RETAIN_BLOCKS 50000
#define RETAIN_SIZE 4000

static int child_retention(const char *alloc)
{
    const struct bench_alloc *a = find_alloc(alloc);
    if (a == NULL || a->realloc == NULL) {
        printf("missing\n");
        return 0;
    }
    void **v = calloc(RETAIN_BLOCKS, sizeof *v);
    if (v == NULL)
        return 1;
    long rss0 = rss_anon();
    for (size_t i = 0; i < RETAIN_BLOCKS; i++) {
        v[i] = a->alloc(RETAIN_SIZE);
        if (v[i] == NULL) {
            printf("failed\n");
            return 0;
        }
        memset(v[i], 1, RETAIN_SIZE);
    }
    long rss_live = rss_anon();
    for (size_t i = 0; i < RETAIN_BLOCKS; i++)
        a->free(v[i]);
    long rss_freed = rss_anon();
    static const size_t light[] = {RETAIN_SIZE, 64 * KIB};
    light_activity(a, light, 2);
    long rss_later = rss_anon();
    printf("ok 0 0 %ld %ld %ld %ld\n", rss0, rss_live, rss_freed, rss_later);
    free(v);
    return 0;
}

struct cell {
    int ok;
    size_t churn;
    long faults, rss0, rss_live, rss_freed, rss_later;
    long calls[2][5]; /* [workload, activity][mmap munmap madvise brk mremap]; -1 unknown */
};

static const char *const sys_names[5] = {"mmap", "munmap", "madvise", "brk", "mremap"};

/* Count the traced calls of each kind between the markers of an strace -f log. */
static void parse_strace(const char *path, struct cell *c)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[1024];
    int part = -1;
    memset(c->calls, 0, sizeof c->calls);
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = line;
        while (*p == ' ' || (*p >= '0' && *p <= '9'))
            p++; /* the pid column */
        if (strncmp(p, "getppid(", 8) == 0) {
            part++;
            continue;
        }
        if (part < 0 || part > 1)
            continue;
        for (int k = 0; k < 5; k++) {
            size_t l = strlen(sys_names[k]);
            if (strncmp(p, sys_names[k], l) == 0 && p[l] == '(')
                c->calls[part][k]++;
        }
    }
    fclose(f);
}

static int have_strace(void)
{
    return access("/usr/bin/strace", X_OK) == 0;
}

/* execv takes char *const[]; the strings are never written. */
#define ARG(s) ((char *)(uintptr_t)(s))

static void run_child(const char *mode, const char *alloc, const char *wname, int quick,
                      struct cell *c)
{
    char trace[] = "/tmp/large_bench_XXXXXX";
    int tfd = have_strace() ? mkstemp(trace) : -1;
    if (tfd >= 0)
        close(tfd);
    int fd[2];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 5; k++)
            c->calls[i][k] = -1;
    if (pipe(fd) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        char *args[16];
        int n = 0;
        if (tfd >= 0) {
            args[n++] = ARG("/usr/bin/strace");
            args[n++] = ARG("-f");
            args[n++] = ARG("-qq");
            args[n++] = ARG("-o");
            args[n++] = trace;
            args[n++] = ARG("-e");
            args[n++] = ARG("trace=mmap,munmap,madvise,brk,mremap,getppid");
        }
        args[n++] = ARG("/proc/self/exe");
        args[n++] = ARG(mode);
        args[n++] = ARG(alloc);
        args[n++] = ARG(wname);
        args[n++] = ARG(quick ? "1" : "0");
        args[n] = NULL;
        char self[4096];
        ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
        if (l > 0) {
            self[l] = '\0';
            args[tfd >= 0 ? 7 : 0] = self;
        }
        execv(args[0], args);
        _exit(127);
    }
    close(fd[1]);
    char line[512] = "";
    FILE *f = fdopen(fd[0], "r");
    if (f != NULL) {
        if (fgets(line, sizeof line, f) == NULL)
            line[0] = '\0';
        fclose(f);
    }
    int status;
    waitpid(pid, &status, 0);
    if (sscanf(line, "ok %zu %ld %ld %ld %ld %ld", &c->churn, &c->faults, &c->rss0, &c->rss_live,
               &c->rss_freed, &c->rss_later) == 6)
        c->ok = 1;
    if (tfd >= 0) {
        if (c->ok)
            parse_strace(trace, c);
        unlink(trace);
    }
}

static double mib(long b)
{
    return (double)b / (double)MIB;
}

static void print_children(const struct bench_options *opt, const char *const *names, size_t na)
{
    static struct cell cells[NWORKLOADS][BENCH_MAX_ALLOCS_LARGE];
    printf("### System calls, page faults and RSS (one child process per cell, one run)\n\n");
    printf("System calls per MiB of churn (mmap+munmap+madvise+brk+mremap, counted by strace "
           "between markers; `-`: strace missing); minor faults per MiB; anonymous RSS in MiB "
           "above the child's baseline: with the blocks live, right after freeing all, and "
           "after 1 s of light activity (a 64 KiB block every ms); `calls 1 s` = system calls "
           "in that second.\n\n");
    printf("| workload | allocator | calls/MiB | mmap | munmap | madvise | brk | mremap | "
           "flt/MiB | RSS live | RSS freed | RSS 1 s later | vs glibc | calls 1 s |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (!bench_selected(opt->only, workloads[w].name))
            continue;
        long glibc_later = -1;
        for (size_t a = 0; a < na; a++) {
            fprintf(stderr, "[children] %s %s ...\n", workloads[w].name, names[a]);
            run_child("--child", names[a], workloads[w].name, opt->quick, &cells[w][a]);
            if (strcmp(names[a], "glibc") == 0 && cells[w][a].ok)
                glibc_later = cells[w][a].rss_later - cells[w][a].rss0;
        }
        for (size_t a = 0; a < na; a++) {
            const struct cell *c = &cells[w][a];
            if (!c->ok) {
                printf("| %s | %s | - | - | - | - | - | - | - | - | - | - | - | - |\n",
                       workloads[w].name, names[a]);
                continue;
            }
            double cm = (double)c->churn / (double)MIB;
            long tot = 0, act = 0;
            for (int k = 0; k < 5; k++) {
                tot += c->calls[0][k];
                act += c->calls[1][k];
            }
            printf("| %s | %s |", workloads[w].name, names[a]);
            if (c->calls[0][0] < 0)
                printf(" - | - | - | - | - | - |");
            else {
                printf(" %.3f |", (double)tot / cm);
                for (int k = 0; k < 5; k++)
                    printf(" %ld |", c->calls[0][k]);
            }
            long later = c->rss_later - c->rss0;
            printf(" %.1f | %.1f | %.1f | %.1f |", (double)c->faults / cm, mib(c->rss_live - c->rss0),
                   mib(c->rss_freed - c->rss0), mib(later));
            if (glibc_later > 0)
                printf(" %.2fx |", (double)later / (double)glibc_later);
            else
                printf(" - |");
            if (c->calls[1][0] < 0)
                printf(" - |\n");
            else
                printf(" %ld |\n", act);
        }
    }
    printf("\n");
}

static void print_retention(const char *const *names, size_t na)
{
    struct cell c[BENCH_MAX_ALLOCS_LARGE];
    printf("### Retention: 50,000 blocks of 4000 B allocated, written, freed; then 1 s of light "
           "activity (a 4000 B and a 64 KiB block every ms)\n\n");
    printf("| allocator | RSS live MiB | RSS after free | RSS 1 s later | returned after 1 s |\n");
    printf("|---|---:|---:|---:|---:|\n");
    for (size_t a = 0; a < na; a++) {
        fprintf(stderr, "[retention] %s ...\n", names[a]);
        run_child("--retention", names[a], "-", 0, &c[a]);
        if (!c[a].ok) {
            printf("| %s | - | - | - | - |\n", names[a]);
            continue;
        }
        long live = c[a].rss_live - c[a].rss0;
        printf("| %s | %.1f | %.1f | %.1f | %.0f%% |\n", names[a], mib(live),
               mib(c[a].rss_freed - c[a].rss0), mib(c[a].rss_later - c[a].rss0),
               100.0 * (double)(c[a].rss_live - c[a].rss_later) / (double)(live > 0 ? live : 1));
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_workload(argv[2], argv[3], atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "--retention") == 0)
        return child_retention(argv[2]);
    bench_reexec_with_tunables(argv);
    int children = 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--no-children") == 0) {
            children = 0;
            for (int j = i; j < argc - 1; j++)
                argv[j] = argv[j + 1];
            argc--;
            i--;
        }
    struct bench_options opt;
    bench_parse_options(argc, argv, &opt,
                        "workloads: large1 large2 realloc realloc_huge; --no-children skips "
                        "the system-call, RSS and retention runs\n");
    if (opt.allocators == NULL)
        opt.allocators = DEFAULT_ALLOCATORS;
    set_shapes(opt.quick);
    printf("## large_bench%s: blocks of 32 KiB - 4 MiB, every page written\n\n",
           opt.quick ? " (quick)" : "");
    for (size_t w = 0; w < NWORKLOADS; w++)
        if (bench_selected(opt.only, workloads[w].name))
            printf("- **%s**: %s; %zu live, %zu steps\n", workloads[w].name,
                   workloads[w].description, shapes[w].live, shapes[w].steps);
    printf("\n");
    int rc = bench_run_all(workloads, NWORKLOADS, &opt);
    if (rc != 0 || !children)
        return rc;
    const struct bench_alloc *all;
    size_t n = bench_load_allocators(&all);
    const char *names[BENCH_MAX_ALLOCS_LARGE];
    size_t na = 0;
    for (size_t i = 0; i < n && na < BENCH_MAX_ALLOCS_LARGE; i++)
        if (bench_selected(opt.allocators, all[i].name) && all[i].realloc != NULL)
            names[na++] = all[i].name;
    fflush(stdout);
    print_children(&opt, names, na);
    print_retention(names, na);
    return 0;
}
