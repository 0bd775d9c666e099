/* SPDX-License-Identifier: MIT */
/* benchmarks/placement_sim.c - where large blocks are placed, and what it costs in page faults.
 *
 * A model of large_bench's large1 workload (256 live blocks of 32 KiB-4 MiB, sizes drawn
 * log-uniformly, one replaced at random per step, every page of the requested size written)
 * under four placement policies, counting the pages first written during the steps: each is
 * a page fault in a process that keeps every page it touched (no decay, no purge).  It
 * measures the footprint a policy needs, which no decay policy can take back without faults:
 *
 *   buddy      power-of-two blocks aligned to their size in 4 MiB extents, the block with
 *              the most pages written before preferred (slabcache's large blocks today)
 *   bestfit    runs of exactly the pages asked for, anywhere in a 4 MiB extent, in the
 *              smallest free run that holds them (tcmalloc's spans, bounded by extents)
 *   firstfit   the same, in the first free run that holds them
 *   unbounded  best fit over one contiguous heap (no extent boundaries)
 *
 * Usage: placement_sim [--steps N] [--seeds K]   prints, per policy, the median over K seeds
 * of faults per MiB of churn, and the heap and resident MiB at the end.
 * docs/limits.md section 7 compares it with the allocators' measured faults.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
#define EXTENT_PAGES 1024
#define MAX_PAGES ((size_t)1 << 20) /* 4 GiB of heap: far more than any policy needs */
#define LIVE 256

enum policy { BUDDY, BESTFIT, FIRSTFIT, UNBOUNDED, NPOLICIES };
static const char *const policy_names[NPOLICIES] = {"buddy", "bestfit", "firstfit",
                                                    "unbounded"};

static unsigned char used[MAX_PAGES], written[MAX_PAGES];
static size_t top; /* pages of heap obtained so far */
static uint64_t rs;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* large_bench's size law: log-uniform between lo and hi. */
static size_t log_uniform(size_t lo, size_t hi)
{
    double u = (double)(rnd() >> 11) / (double)(1ull << 53);
    size_t s = (size_t)((double)lo * exp(u * log((double)hi / (double)lo)));
    return s < lo ? lo : s > hi ? hi : s;
}

/* Place n pages; *span gets the pages the placement occupies (n, or the power of two). */
static size_t place(enum policy pol, size_t n, size_t *span)
{
    if (pol == BUDDY) {
        size_t k = 1;
        while (k < n)
            k <<= 1;
        *span = k;
        size_t best = SIZE_MAX;
        long best_written = -1;
        for (size_t p = 0; p + k <= top; p += k) {
            size_t i = 0;
            while (i < k && !used[p + i])
                i++;
            if (i < k)
                continue;
            long w = 0;
            for (i = 0; i < n; i++)
                w += written[p + i];
            if (w > best_written) {
                best_written = w;
                best = p;
            }
        }
        if (best == SIZE_MAX) {
            best = top;
            top += EXTENT_PAGES;
        }
        return best;
    }
    *span = n;
    size_t ext = pol == UNBOUNDED ? MAX_PAGES : EXTENT_PAGES;
    size_t best = SIZE_MAX, best_len = SIZE_MAX;
    for (size_t e = 0; e < top && !(pol == FIRSTFIT && best != SIZE_MAX); e += ext) {
        size_t end = e + ext < top ? e + ext : top;
        for (size_t p = e; p < end;) {
            while (p < end && used[p])
                p++;
            size_t q = p;
            while (q < end && !used[q])
                q++;
            if (q - p >= n && q - p < best_len && !(pol == FIRSTFIT && best != SIZE_MAX)) {
                best = p;
                best_len = q - p;
            }
            p = q;
        }
    }
    if (best != SIZE_MAX)
        return best;
    if (pol == UNBOUNDED) { /* grow the heap by what the free run at its end lacks */
        size_t p = top;
        while (p > 0 && !used[p - 1])
            p--;
        if (p + n > top)
            top = p + n;
        return p;
    }
    best = top;
    top += EXTENT_PAGES;
    return best;
}

struct result {
    double faults_per_mib, heap_mib, resident_mib;
};

static struct result run(enum policy pol, int steps, uint64_t seed)
{
    memset(used, 0, sizeof used);
    memset(written, 0, sizeof written);
    top = 0;
    rs = 88172645463325252ull + seed;
    size_t at[LIVE], span[LIVE];
    for (int i = 0; i < LIVE; i++) {
        size_t n = (log_uniform(32 << 10, 4 << 20) + PAGE - 1) / PAGE;
        at[i] = place(pol, n, &span[i]);
        memset(used + at[i], 1, span[i]);
        memset(written + at[i], 1, n);
    }
    long faults = 0;
    double churn = 0;
    for (int k = 0; k < steps; k++) {
        int i = (int)(rnd() % LIVE);
        memset(used + at[i], 0, span[i]);
        size_t bytes = log_uniform(32 << 10, 4 << 20), n = (bytes + PAGE - 1) / PAGE;
        at[i] = place(pol, n, &span[i]);
        memset(used + at[i], 1, span[i]);
        for (size_t j = 0; j < n; j++) {
            faults += !written[at[i] + j];
            written[at[i] + j] = 1;
        }
        churn += (double)bytes;
    }
    size_t resident = 0;
    for (size_t p = 0; p < top; p++)
        resident += written[p];
    return (struct result){(double)faults / (churn / (1 << 20)), (double)top * PAGE / (1 << 20),
                           (double)resident * PAGE / (1 << 20)};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int steps = 4000, seeds = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
            seeds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: placement_sim [--steps N] [--seeds K]\n");
            return 2;
        }
    }
    if (steps < 1 || seeds < 1 || seeds > 99) {
        fprintf(stderr, "placement_sim: --steps >= 1, --seeds 1..99\n");
        return 2;
    }
    printf("| policy | faults per MiB (median, min-max) | heap MiB | resident MiB |\n");
    printf("|---|---:|---:|---:|\n");
    for (int pol = 0; pol < NPOLICIES; pol++) {
        double f[99], h[99], r[99];
        for (int s = 0; s < seeds; s++) {
            struct result res = run((enum policy)pol, steps, (uint64_t)s);
            f[s] = res.faults_per_mib;
            h[s] = res.heap_mib;
            r[s] = res.resident_mib;
        }
        qsort(f, (size_t)seeds, sizeof f[0], cmp_double);
        qsort(h, (size_t)seeds, sizeof h[0], cmp_double);
        qsort(r, (size_t)seeds, sizeof r[0], cmp_double);
        printf("| %s | %.2f (%.2f-%.2f) | %.0f | %.0f |\n", policy_names[pol], f[seeds / 2], f[0],
               f[seeds - 1], h[seeds / 2], r[seeds / 2]);
    }
    return 0;
}
