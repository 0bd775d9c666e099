/* SPDX-License-Identifier: MIT */
/* tests/observe/observe_program.c - programs for the observability tests, run with
 * libslabcache.so preloaded (observe_test.py, watch_test.sh, slabtop_test.sh).
 *
 *   leaks          every kind of leak: definitely lost (a small block, a large and a huge
 *                  one, five 4 MiB blocks), indirectly lost (reachable only from a lost
 *                  block), still reachable through a global and only through another
 *                  reachable block; then malloc, free, printf("hello")
 *   printf         malloc, free, printf("hello"): libc's stdout buffer is reachable
 *   close-stderr   loses one block, then closes stderr before exit (as ls and sort do)
 *   fork           forks; parent and child each allocate and exit through exit()
 *   introspect     prints malloc_info's XML, then mallinfo2 and mallopt answers
 *   server         a small busy server: a working set churned in several size classes and
 *                  large blocks, "ready" on stdout, until killed
 *   leak SECONDS   churns a steady working set and loses 48 bytes every 480 ms (100 bytes a
 *                  second of kmalloc-48), for SECONDS
 *   steady SECONDS the same working set, with a spike every 3 s (1 MiB of blocks of 4 KiB
 *                  and 64 KiB, held for 1 s, then freed), and no leak
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct node {
    struct node *next;
    char pad[40];
};

static void *volatile reachable_global;

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "observe_program: out of memory\n");
        exit(3);
    }
    return p;
}

__attribute__((noinline)) static void make_leaks(void)
{
    memset(must(malloc(100)), 1, 100);                     /* definitely lost */
    struct node *a = must(malloc(sizeof *a)), *b = must(malloc(sizeof *b));
    b->next = NULL;
    a->next = b;                                           /* a lost, b indirectly lost */
    struct node *r = must(malloc(sizeof *r)), *rr = must(malloc(sizeof *rr));
    rr->next = NULL;
    r->next = rr;                                          /* rr: only through r */
    reachable_global = r;                                  /* r: through a global */
    for (int i = 0; i < 5; i++)
        memset(must(malloc(4 << 20)), 2, 64);              /* 5 x 4 MiB, lost */
    memset(must(malloc(40 << 10)), 3, 64);                 /* 40 KiB, lost */
    memset(must(malloc(5 << 20)), 4, 64);                  /* huge, lost */
}

/* Zero the stack below main, where the frames above were, so no stale copy of a pointer
 * stays there for the scan. */
__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[65536];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define WORKING 4096
static void *working[WORKING];

static size_t working_size(unsigned k)
{
    static const size_t sizes[] = {24, 64, 200, 1000, 3000, 40000};
    return sizes[k % (sizeof sizes / sizeof sizes[0])];
}

/* Replace a few blocks of the working set by blocks of the same size: the live bytes stay
 * what they were. */
static void churn(unsigned *seed, int n)
{
    for (int i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        unsigned k = (*seed >> 8) % WORKING;
        size_t size = working_size(k);
        free(working[k]);
        working[k] = must(malloc(size));
        memset(working[k], (int)k, size < 64 ? size : 64);
    }
}

static void fill_working(unsigned *seed)
{
    for (unsigned k = 0; k < WORKING; k++)
        working[k] = must(malloc(working_size(k)));
    churn(seed, WORKING);
}

static int run_leak(double seconds)
{
    unsigned seed = 1;
    fill_working(&seed);
    void *volatile *lost = must(calloc(100000, sizeof(void *)));
    size_t nlost = 0;
    double start = now(), next = start;
    while (now() - start < seconds) {
        churn(&seed, 50);
        if (now() >= next) {
            lost[nlost++ % 100000] = must(malloc(48)); /* kept, never freed */
            next += 0.48;
        }
        sleep_ms(20);
    }
    return 0;
}

static int run_steady(double seconds)
{
    unsigned seed = 2;
    fill_working(&seed);
    void *spike[300] = {NULL};
    double start = now();
    while (now() - start < seconds) {
        churn(&seed, 50);
        double t = now() - start;
        if ((long)t % 3 == 2 && !spike[0]) {
            for (int i = 0; i < 300; i++)
                spike[i] = must(malloc(i % 10 == 9 ? 65536 - 16 : 3000));
        } else if ((long)t % 3 != 2 && spike[0]) {
            for (int i = 0; i < 300; i++)
                free(spike[i]);
            spike[0] = NULL;
        }
        sleep_ms(20);
    }
    return 0;
}

static int run_server(void)
{
    unsigned seed = 3;
    fill_working(&seed);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        churn(&seed, 200);
        sleep_ms(10);
    }
    return 0;
}

static int run_introspect(void)
{
    void *keep[64];
    for (int i = 0; i < 64; i++)
        keep[i] = must(malloc((size_t)(i + 1) * 40));
    for (int i = 0; i < 64; i += 2)
        free(keep[i]);
    void *large = must(malloc(100000)), *huge = must(malloc(6 << 20));
    if (malloc_info(0, stdout) != 0)
        return 4;
    struct mallinfo2 mi = mallinfo2();
    printf("mallinfo2 arena=%zu ordblks=%zu smblks=%zu hblks=%zu hblkhd=%zu usmblks=%zu "
           "fsmblks=%zu uordblks=%zu fordblks=%zu keepcost=%zu\n",
           mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks,
           mi.uordblks, mi.fordblks, mi.keepcost);
    printf("mallopt M_ARENA_MAX=%d M_TRIM_THRESHOLD=%d M_CHECK_ACTION=%d bad=%d "
           "malloc_info(1)=%d\n",
           mallopt(M_ARENA_MAX, 2), mallopt(M_TRIM_THRESHOLD, 1 << 20),
           mallopt(M_CHECK_ACTION, 3), mallopt(12345, 1), malloc_info(1, stdout));
    fflush(stdout);
    malloc_stats();
    free(large);
    free(huge);
    for (int i = 1; i < 64; i += 2)
        free(keep[i]);
    printf("malloc_trim=%d\n", malloc_trim(0));
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    double seconds = argc > 2 ? atof(argv[2]) : 10.0;
    if (strcmp(mode, "leaks") == 0) {
        make_leaks();
        void *t = must(malloc(10));
        free(t);
        printf("hello\n");
        clear_stack();
        return 0;
    }
    if (strcmp(mode, "printf") == 0) {
        void *t = must(malloc(10));
        free(t);
        printf("hello\n");
        return 0;
    }
    if (strcmp(mode, "close-stderr") == 0) {
        memset(must(malloc(100)), 5, 100);
        clear_stack();
        fclose(stderr);
        return 0;
    }
    if (strcmp(mode, "fork") == 0) {
        void *p = must(malloc(1000));
        pid_t pid = fork();
        if (pid == 0) {
            void *q = must(malloc(2000));
            free(q);
            free(p);
            exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        free(p);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
    }
    if (strcmp(mode, "introspect") == 0)
        return run_introspect();
    if (strcmp(mode, "server") == 0)
        return run_server();
    if (strcmp(mode, "leak") == 0)
        return run_leak(seconds);
    if (strcmp(mode, "steady") == 0)
        return run_steady(seconds);
    fprintf(stderr, "usage: observe_program leaks|printf|close-stderr|fork|introspect|server|"
                    "leak SECONDS|steady SECONDS\n");
    return 2;
}
