/* SPDX-License-Identifier: MIT */
/* espresso - two-level logic minimisation by the unate recursive paradigm.
 *
 *   espresso [FUNCTIONS=10] [VARS=16] [CUBES=120] [SEED=7]
 *
 * Like mimalloc-bench's espresso (Berkeley's logic minimiser), in our own code and much
 * smaller: FUNCTIONS random Boolean functions of VARS inputs, each given as a cover of CUBES
 * random product terms, are minimised by EXPAND (raise each literal of each cube while the
 * cube stays inside the function) and IRREDUNDANT (drop cubes the others cover), twice.
 * Both rest on the tautology check of Brayton et al. ("Logic Minimization Algorithms for VLSI
 * Synthesis", 1984): a cube c is inside cover F when the cofactor of F by c is a tautology,
 * decided by splitting on the most binate variable and recursing on the two cofactors.
 * Every cofactor is a new cover of newly allocated cubes (4 to 16 bytes) in a pointer array
 * grown by realloc, freed when the recursion returns: many small, short-lived blocks, as in
 * espresso.  Check: the result covers the function and lies inside it (both by tautology),
 * and no cube of it is empty; prints the cube and literal counts of the results.
 */
#include <stdbool.h>

#include "benchmarks/suite/suite.h"

/* A cube: 2 bits per variable, 01 = the variable is 0, 10 = it is 1, 11 = either. */
typedef uint32_t word_t;
static int nvars, nwords;
static word_t last_mask; /* valid bits of the last word */

struct cover {
    int n, cap;
    word_t **cube;
};

static word_t *cube_new(void)
{
    size_t bytes = (size_t)nwords * sizeof(word_t);
    return suite_check_alloc(malloc(bytes), bytes);
}

static word_t *cube_copy(const word_t *c)
{
    word_t *d = cube_new();
    memcpy(d, c, (size_t)nwords * sizeof(word_t));
    return d;
}

static word_t word_mask(int w)
{
    return w == nwords - 1 ? last_mask : ~(word_t)0;
}

static unsigned get_var(const word_t *c, int v)
{
    return (c[v / 16] >> (2 * (v % 16))) & 3u;
}

static void set_var(word_t *c, int v, unsigned val)
{
    c[v / 16] = (c[v / 16] & ~((word_t)3 << (2 * (v % 16)))) | ((word_t)val << (2 * (v % 16)));
}

static bool cube_is_full(const word_t *c)
{
    for (int w = 0; w < nwords; w++)
        if (c[w] != word_mask(w))
            return false;
    return true;
}

/* Some variable has neither value: the cube is empty. */
static bool cube_is_empty_and(const word_t *a, const word_t *b)
{
    for (int w = 0; w < nwords; w++) {
        word_t x = a[w] & b[w];
        word_t ok = (x | (x >> 1)) & 0x55555555u;
        if (ok != (word_mask(w) & 0x55555555u))
            return true;
    }
    return false;
}

/* a contains b. */
static bool cube_contains(const word_t *a, const word_t *b)
{
    for (int w = 0; w < nwords; w++)
        if ((a[w] & b[w]) != b[w])
            return false;
    return true;
}

static void cover_init(struct cover *f)
{
    f->n = f->cap = 0;
    f->cube = NULL;
}

static void cover_add(struct cover *f, word_t *c)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 4;
        size_t bytes = (size_t)f->cap * sizeof *f->cube;
        f->cube = suite_check_alloc(realloc(f->cube, bytes), bytes);
    }
    f->cube[f->n++] = c;
}

static void cover_free(struct cover *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->cube[i]);
    free(f->cube);
    cover_init(f);
}

/* The cofactor of F by the cube c, leaving out cube `skip` of F (-1: none). */
static struct cover cofactor(const struct cover *f, const word_t *c, int skip)
{
    struct cover r;
    cover_init(&r);
    for (int i = 0; i < f->n; i++) {
        if (i == skip || cube_is_empty_and(f->cube[i], c))
            continue;
        word_t *g = cube_new();
        for (int w = 0; w < nwords; w++)
            g[w] = (f->cube[i][w] | ~c[w]) & word_mask(w);
        cover_add(&r, g);
    }
    return r;
}

static long tautology_calls;

static bool tautology(const struct cover *f)
{
    tautology_calls++;
    if (f->n == 0)
        return false;
    for (int i = 0; i < f->n; i++)
        if (cube_is_full(f->cube[i]))
            return true;
    /* The most binate variable: present in both phases in the most cubes. */
    int best = -1, best_count = 0;
    for (int v = 0; v < nvars; v++) {
        int zero = 0, one = 0;
        for (int i = 0; i < f->n; i++) {
            unsigned x = get_var(f->cube[i], v);
            zero += x == 1;
            one += x == 2;
        }
        if (zero && one && zero + one > best_count) {
            best = v;
            best_count = zero + one;
        }
    }
    if (best < 0)
        return false; /* a unate cover is a tautology only with a full cube */
    word_t *c = cube_new();
    for (int w = 0; w < nwords; w++)
        c[w] = word_mask(w);
    bool result = true;
    for (unsigned phase = 1; phase <= 2 && result; phase++) {
        set_var(c, best, phase);
        struct cover g = cofactor(f, c, -1);
        result = tautology(&g);
        cover_free(&g);
    }
    free(c);
    return result;
}

/* c lies inside F (but for F's cube `skip`). */
static bool covered(const struct cover *f, const word_t *c, int skip)
{
    struct cover g = cofactor(f, c, skip);
    bool t = tautology(&g);
    cover_free(&g);
    return t;
}

static void expand(struct cover *f, const struct cover *on)
{
    for (int i = 0; i < f->n; i++) {
        word_t *c = f->cube[i];
        for (int v = 0; v < nvars; v++) {
            unsigned x = get_var(c, v);
            if (x == 3)
                continue;
            word_t *t = cube_copy(c);
            set_var(t, v, 3);
            if (covered(on, t, -1)) {
                free(c);
                f->cube[i] = c = t;
            } else {
                free(t);
            }
        }
        /* Drop the cubes the expanded one now contains. */
        for (int j = 0; j < f->n; j++)
            if (j != i && cube_contains(c, f->cube[j])) {
                free(f->cube[j]);
                f->cube[j] = f->cube[--f->n];
                if (i == f->n)
                    i = j;
                j--;
            }
    }
}

static void irredundant(struct cover *f)
{
    for (int i = 0; i < f->n; i++)
        if (covered(f, f->cube[i], i)) {
            free(f->cube[i]);
            memmove(&f->cube[i], &f->cube[i + 1], (size_t)(f->n - i - 1) * sizeof *f->cube);
            f->n--;
            i--;
        }
}

int main(int argc, char **argv)
{
    const char *usage = "[FUNCTIONS=10] [VARS=16] [CUBES=120] [SEED=7]";
    long functions = suite_arg(argc, argv, 1, 10, 1, 1L << 30, usage);
    nvars = (int)suite_arg(argc, argv, 2, 16, 2, 256, usage);
    long ncubes = suite_arg(argc, argv, 3, 120, 1, 1L << 20, usage);
    long seed = suite_arg(argc, argv, 4, 7, 0, 1L << 40, usage);
    nwords = (nvars + 15) / 16;
    last_mask = nvars % 16 ? ((word_t)1 << (2 * (nvars % 16))) - 1 : ~(word_t)0;

    double start = suite_now();
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    long cubes_in = 0, cubes_out = 0, literals_out = 0;
    for (long fn = 0; fn < functions; fn++) {
        struct cover on, f;
        cover_init(&on);
        cover_init(&f);
        for (long k = 0; k < ncubes; k++) {
            word_t *c = cube_new();
            for (int w = 0; w < nwords; w++)
                c[w] = word_mask(w);
            int lits = 3 + (int)suite_below(&r, (uint64_t)(nvars / 2 > 1 ? nvars / 2 : 1));
            for (int l = 0; l < lits; l++)
                set_var(c, (int)suite_below(&r, (uint64_t)nvars), 1 + (unsigned)suite_below(&r, 2));
            cover_add(&on, c);
            cover_add(&f, cube_copy(c));
        }
        cubes_in += on.n;
        for (int pass = 0; pass < 2; pass++) {
            expand(&f, &on);
            irredundant(&f);
        }
        /* The result lies inside the function and covers it. */
        for (int i = 0; i < f.n; i++) {
            if (!covered(&on, f.cube[i], -1))
                suite_fail("espresso: function %ld: result cube %d is not inside the function", fn, i);
            for (int v = 0; v < nvars; v++) {
                unsigned x = get_var(f.cube[i], v);
                if (x == 0)
                    suite_fail("espresso: function %ld: result cube %d is empty", fn, i);
                literals_out += x != 3;
            }
        }
        for (int i = 0; i < on.n; i++)
            if (!covered(&f, on.cube[i], -1))
                suite_fail("espresso: function %ld: the result misses input cube %d", fn, i);
        cubes_out += f.n;
        cover_free(&on);
        cover_free(&f);
    }
    suite_report(start, "espresso functions=%ld vars=%d cubes_in=%ld cubes_out=%ld literals_out=%ld "
                 "tautology_calls=%ld",
                 functions, nvars, cubes_in, cubes_out, literals_out, tautology_calls);
    return 0;
}
