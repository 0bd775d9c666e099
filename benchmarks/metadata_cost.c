/* SPDX-License-Identifier: MIT */
/* benchmarks/metadata_cost.c - what one metadata read per free costs on a random working set.
 *
 *   bazel run -c opt //benchmarks:metadata_cost -- [--quick] [--reps N]
 *
 * No allocator here: a model of check_cost's mixed and random workloads (117-byte objects in
 * 120-byte slots, 64 KiB naturally aligned blocks, as slabcache lays out its 117-byte cache),
 * where a "free" of a random live object runs one of these checks and the "alloc" that follows
 * returns the same object, which the caller then writes at bytes 8 and 116 (bytes 0-7 hold
 * the inobject tag) or, in the second table, reads at byte 8 and then writes:
 *
 *   none      no check (the floor: what check_cost's unchecked build does)
 *   header    slabcache's check: magic, owner and slot-0 address in the block's first line,
 *             then the slot's bitmap word (the second line for most slots)
 *   oneline   the best case of any block-headed layout: each line of the header names the
 *             owner and holds 448 slots' bits, so the check reads one line, found from the
 *             address alone (no dependent load)
 *   coloured  `header` moved to a per-block offset (32 colours of 64 bytes), so the blocks'
 *             headers do not share cache sets
 *   inobject  a tag word inside the object itself (glibc's chunk header, a boundary tag): the
 *             line that the alloc's write touches anyway
 *
 * One line per (live, mode): ns per free+alloc+touch (median of reps, modes interleaved) and
 * the ratio to `none`.  docs/debugging.md quotes it: the workload's own accesses to the object
 * are stores, which the store buffer absorbs, so any check that loads a line the loop has not
 * touched lately (the slab header, or even a tag in the object) stalls where `none` does not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define BLOCK ((size_t)64 * 1024)
#define SLOT 120
#define OBJ_SIZE 117
#define OBJ_OFF 2112 /* room for 32 header colours in every mode, so objects sit alike */
#define PER_BLOCK ((BLOCK - OBJ_OFF) / SLOT)
#define MAGIC 0x534c4142u
#define TAG 0x7a6b5c4d3e2f1a0bull

enum mode { NONE, HEADER, ONELINE, COLOURED, INOBJECT, NMODES };
static const char *const mode_name[NMODES] = {"none", "header", "oneline", "coloured", "inobject"};

/* slabcache's struct slab prefix: the fields its free check reads, at the same offsets. */
struct header {
    uint32_t magic;
    uint32_t inuse;
    const void *owner;
    void *next, *prev;
    char *objs;
    uint64_t pad;
    uint64_t bitmap[(PER_BLOCK + 63) / 64];
};

/* One cache line per 448 slots, each naming the owner: the check reads one line. */
struct oneline {
    const void *owner;
    uint64_t bitmap[7];
};
#define ONELINE_SLOTS 448
#define ONELINES ((PER_BLOCK + ONELINE_SLOTS - 1) / ONELINE_SLOTS)

static uint64_t rng_state = 88172645463325252u;

static inline uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char owner_token; /* the "cache" the headers name */

static inline size_t colour_of(uintptr_t block)
{
    return ((block / BLOCK) % 32) * 64;
}

static inline uintptr_t block_of(const void *obj)
{
    return (uintptr_t)obj & ~(uintptr_t)(BLOCK - 1);
}

/* The check of each mode; true when obj is a live slot. */
static inline int check(enum mode m, const char *obj)
{
    uintptr_t b = block_of(obj);
    switch (m) {
    case HEADER:
    case COLOURED: {
        const struct header *h = (const struct header *)(b + (m == COLOURED ? colour_of(b) : 0));
        if (h->magic != MAGIC || h->owner != &owner_token)
            return 0;
        size_t idx = (size_t)(obj - h->objs) / SLOT;
        return idx < PER_BLOCK && (h->bitmap[idx / 64] >> (idx % 64) & 1);
    }
    case ONELINE: {
        size_t idx = (size_t)((uintptr_t)obj - b - OBJ_OFF) / SLOT;
        if (idx >= PER_BLOCK)
            return 0;
        const struct oneline *h = (const struct oneline *)b + idx / ONELINE_SLOTS;
        size_t bit = idx % ONELINE_SLOTS;
        return h->owner == &owner_token && (h->bitmap[bit / 64] >> (bit % 64) & 1);
    }
    case INOBJECT:
        return *(const uint64_t *)obj == TAG;
    default:
        return 1;
    }
}

static void init_block(enum mode m, char *b)
{
    if (m == ONELINE) {
        struct oneline *h = (struct oneline *)b;
        for (size_t k = 0; k < ONELINES; k++) {
            h[k].owner = &owner_token;
            memset(h[k].bitmap, 0xff, sizeof h[k].bitmap);
        }
        return;
    }
    struct header *h = (struct header *)(b + (m == COLOURED ? colour_of((uintptr_t)b) : 0));
    h->magic = MAGIC;
    h->owner = &owner_token;
    h->objs = b + OBJ_OFF;
    memset(h->bitmap, 0xff, sizeof h->bitmap);
}

/* `live` objects in blocks; `n` random replacements under mode m.  ns per replacement. */
static double run(enum mode m, char *blocks, void **v, size_t live, size_t n, int reads)
{
    size_t nblocks = (live + PER_BLOCK - 1) / PER_BLOCK;
    memset(blocks, 0, nblocks * BLOCK);
    for (size_t i = 0; i < nblocks; i++)
        init_block(m, blocks + i * BLOCK);
    for (size_t i = 0; i < live; i++) {
        char *o = blocks + (i / PER_BLOCK) * BLOCK + OBJ_OFF + (i % PER_BLOCK) * SLOT;
        *(uint64_t *)o = TAG;
        v[i] = o;
    }
    size_t bad = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(rng() % live);
        char *o = v[k];
        bad += !check(m, o); /* the free */
        /* The alloc returned o: the caller (reads and) writes it. */
        char x = reads ? ((volatile char *)o)[8] : 0;
        ((volatile char *)o)[8] = (char)(x + 1);
        ((volatile char *)o)[OBJ_SIZE - 1] = 2;
    }
    double ns = (double)(now_ns() - t0) / (double)n;
    if (bad) {
        fprintf(stderr, "metadata_cost: %zu checks failed in mode %s\n", bad, mode_name[m]);
        exit(1);
    }
    return ns;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int quick = 0, reps = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 99)
        reps = 7;
    const size_t lives[2] = {100000, 1000000};
    size_t n = quick ? 2000000 : 10000000;
    size_t maxblocks = (lives[1] + PER_BLOCK - 1) / PER_BLOCK;
    size_t len = (maxblocks + 1) * BLOCK;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void **v = malloc(lives[1] * sizeof *v);
    if (map == MAP_FAILED || !v) {
        fprintf(stderr, "metadata_cost: out of memory\n");
        return 1;
    }
    char *blocks = (char *)(((uintptr_t)map + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1));
    for (int reads = 0; reads < 2; reads++) {
        printf("%s| live objects | check | ns per free+alloc | vs none |\n|---:|---|---:|---:|\n",
               reads ? "\nThe caller reads the object before writing it:\n\n"
                     : "The caller only writes the object:\n\n");
        for (int l = 0; l < 2; l++) {
            static double t[NMODES][99]; /* interleaved: every mode once per repetition */
            for (int r = 0; r < reps; r++)
                for (int m = 0; m < NMODES; m++)
                    t[m][r] = run((enum mode)m, blocks, v, lives[l], n, reads);
            double med[NMODES];
            for (int m = 0; m < NMODES; m++) {
                qsort(t[m], (size_t)reps, sizeof t[m][0], cmp_double);
                med[m] = t[m][reps / 2];
                printf("| %zu | %s | %.2f | %.2fx |\n", lives[l], mode_name[m], med[m],
                       med[m] / med[0]);
            }
            fflush(stdout);
        }
    }
    munmap(map, len);
    free(v);
    return 0;
}
