/* SPDX-License-Identifier: MIT */
/* barnes - a Barnes-Hut n-body simulation that rebuilds its octree every step.
 *
 *   barnes [BODIES=8192] [STEPS=8] [SEED=123]
 *
 * Like mimalloc-bench's barnes (the Barnes-Hut code of Barnes and Hut, Nature 1986, as in
 * the Olden/SPLASH suites), in our own code: every step builds an octree over the bodies
 * with one malloc per cell (about 100 bytes each), computes each cell's mass and centre of
 * mass, computes the force on every body by walking the tree (opening angle 0.5), moves the
 * bodies (leapfrog) and frees the tree cell by cell.  Allocation is a small share of the
 * time; what matters is where the cells land (the walk reads them all, many times).
 * Checks: the root holds all the mass, and for 16 bodies per step the tree's acceleration
 * is within 5% of the exact sum over all bodies.  Prints the kinetic energy at the end (the
 * same under every allocator: nothing depends on addresses).
 */
#include <math.h>

#include "benchmarks/suite/suite.h"

struct body {
    double pos[3], vel[3], acc[3], mass;
};

struct cell {
    struct cell *child[8]; /* NULL, another cell, or a leaf (tagged: body index + 1 << 1 | 1) */
    double com[3], mass, half;
    double centre[3];
};

static struct body *bodies;
static long nbodies;
static long cells_made;

static int is_leaf(const struct cell *c)
{
    return ((uintptr_t)c & 1) != 0;
}

static long leaf_body(const struct cell *c)
{
    return (long)((uintptr_t)c >> 1);
}

static struct cell *make_leaf(long b)
{
    return (struct cell *)(((uintptr_t)b << 1) | 1);
}

static struct cell *new_cell(const double centre[3], double half)
{
    struct cell *c = suite_check_alloc(malloc(sizeof *c), sizeof *c);
    memset(c->child, 0, sizeof c->child);
    memcpy(c->centre, centre, sizeof c->centre);
    c->half = half;
    c->mass = 0;
    cells_made++;
    return c;
}

static int octant(const struct cell *c, const double p[3])
{
    return (p[0] >= c->centre[0]) | (p[1] >= c->centre[1]) << 1 | (p[2] >= c->centre[2]) << 2;
}

static void child_centre(const struct cell *c, int o, double out[3])
{
    for (int k = 0; k < 3; k++)
        out[k] = c->centre[k] + ((o >> k) & 1 ? 0.5 : -0.5) * c->half;
}

static void insert(struct cell *c, long b, int depth)
{
    int o = octant(c, bodies[b].pos);
    struct cell *ch = c->child[o];
    if (!ch) {
        c->child[o] = make_leaf(b);
        return;
    }
    if (is_leaf(ch)) {
        if (depth > 60)
            suite_fail("barnes: two bodies at the same place");
        double cc[3];
        child_centre(c, o, cc);
        struct cell *n = new_cell(cc, c->half / 2);
        insert(n, leaf_body(ch), depth + 1);
        c->child[o] = n;
        ch = n;
    }
    insert(ch, b, depth + 1);
}

static void summarise(struct cell *c)
{
    double m = 0, com[3] = {0, 0, 0};
    for (int o = 0; o < 8; o++) {
        struct cell *ch = c->child[o];
        if (!ch)
            continue;
        const double *p;
        double cm;
        if (is_leaf(ch)) {
            p = bodies[leaf_body(ch)].pos;
            cm = bodies[leaf_body(ch)].mass;
        } else {
            summarise(ch);
            p = ch->com;
            cm = ch->mass;
        }
        m += cm;
        for (int k = 0; k < 3; k++)
            com[k] += cm * p[k];
    }
    c->mass = m;
    for (int k = 0; k < 3; k++)
        c->com[k] = com[k] / m;
}

static void free_tree(struct cell *c)
{
    for (int o = 0; o < 8; o++)
        if (c->child[o] && !is_leaf(c->child[o]))
            free_tree(c->child[o]);
    free(c);
}

static const double eps2 = 1e-4, theta2 = 0.25;

static void accumulate(double acc[3], const double p[3], const double q[3], double m)
{
    double d[3] = {q[0] - p[0], q[1] - p[1], q[2] - p[2]};
    double r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + eps2;
    double f = m / (r2 * sqrt(r2));
    for (int k = 0; k < 3; k++)
        acc[k] += f * d[k];
}

static void walk(const struct cell *c, long b, double acc[3])
{
    const double *p = bodies[b].pos;
    for (int o = 0; o < 8; o++) {
        const struct cell *ch = c->child[o];
        if (!ch)
            continue;
        if (is_leaf(ch)) {
            long j = leaf_body(ch);
            if (j != b)
                accumulate(acc, p, bodies[j].pos, bodies[j].mass);
            continue;
        }
        double d[3] = {ch->com[0] - p[0], ch->com[1] - p[1], ch->com[2] - p[2]};
        double r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        double size = 2 * ch->half;
        if (size * size < theta2 * r2)
            accumulate(acc, p, ch->com, ch->mass);
        else
            walk(ch, b, acc);
    }
}

int main(int argc, char **argv)
{
    const char *usage = "[BODIES=8192] [STEPS=8] [SEED=123]";
    nbodies = suite_arg(argc, argv, 1, 8192, 2, 1L << 24, usage);
    long steps = suite_arg(argc, argv, 2, 8, 1, 1L << 20, usage);
    long seed = suite_arg(argc, argv, 3, 123, 0, 1L << 40, usage);

    double start = suite_now();
    struct suite_rng r;
    suite_rng_seed(&r, (uint64_t)seed);
    bodies = suite_check_alloc(calloc((size_t)nbodies, sizeof *bodies),
                               (size_t)nbodies * sizeof *bodies);
    /* A Plummer-like sphere: random directions, radii with a dense core. */
    for (long i = 0; i < nbodies; i++) {
        double u[3];
        for (int k = 0; k < 3; k++)
            u[k] = (double)(suite_rand(&r) >> 11) * 0x1p-53 * 2 - 1;
        double len = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]) + 1e-9;
        double rad = 1.0 / sqrt(pow((double)(suite_rand(&r) >> 11) * 0x1p-53 * 0.99 + 0.005, -2.0 / 3.0) - 1);
        for (int k = 0; k < 3; k++) {
            bodies[i].pos[k] = rad * u[k] / len;
            bodies[i].vel[k] = 0.1 * u[(k + 1) % 3];
        }
        bodies[i].mass = 1.0 / (double)nbodies;
    }
    const double dt = 0.005;
    double max_err = 0;
    for (long s = 0; s < steps; s++) {
        double lo = 1e300, hi = -1e300;
        for (long i = 0; i < nbodies; i++)
            for (int k = 0; k < 3; k++) {
                lo = fmin(lo, bodies[i].pos[k]);
                hi = fmax(hi, bodies[i].pos[k]);
            }
        double centre[3] = {(lo + hi) / 2, (lo + hi) / 2, (lo + hi) / 2};
        struct cell *root = new_cell(centre, (hi - lo) / 2 * 1.0001 + 1e-9);
        for (long i = 0; i < nbodies; i++)
            insert(root, i, 0);
        summarise(root);
        if (fabs(root->mass - 1.0) > 1e-9)
            suite_fail("barnes: the root holds mass %.12f, not 1", root->mass);
        for (long i = 0; i < nbodies; i++) {
            memset(bodies[i].acc, 0, sizeof bodies[i].acc);
            walk(root, i, bodies[i].acc);
        }
        for (int t = 0; t < 16; t++) { /* the tree against the exact sum */
            long i = (long)suite_below(&r, (uint64_t)nbodies);
            double exact[3] = {0, 0, 0};
            for (long j = 0; j < nbodies; j++)
                if (j != i)
                    accumulate(exact, bodies[i].pos, bodies[j].pos, bodies[j].mass);
            double num = 0, den = 0;
            for (int k = 0; k < 3; k++) {
                num += (exact[k] - bodies[i].acc[k]) * (exact[k] - bodies[i].acc[k]);
                den += exact[k] * exact[k];
            }
            double err = sqrt(num / den);
            max_err = fmax(max_err, err);
            if (err > 0.05)
                suite_fail("barnes: step %ld body %ld: tree force off by %.1f%%", s, i, 100 * err);
        }
        free_tree(root);
        for (long i = 0; i < nbodies; i++)
            for (int k = 0; k < 3; k++) {
                bodies[i].vel[k] += dt * bodies[i].acc[k];
                bodies[i].pos[k] += dt * bodies[i].vel[k];
            }
    }
    double kinetic = 0;
    for (long i = 0; i < nbodies; i++)
        for (int k = 0; k < 3; k++)
            kinetic += 0.5 * bodies[i].mass * bodies[i].vel[k] * bodies[i].vel[k];
    free(bodies);
    suite_report(start, "barnes bodies=%ld steps=%ld cells=%ld kinetic=%.9e max_force_error=%.3e",
                 nbodies, steps, cells_made, kinetic, max_err);
    return 0;
}
