/* SPDX-License-Identifier: MIT */
/* cfrac - the continued-fraction factoring method's inner loop on heap-allocated bignums.
 *
 *   cfrac [STEPS=150000] [N=17545186520507317056371138836327483792789528] [PRIMES=300]
 *
 * Like mimalloc-bench's cfrac (Dave Barrett's implementation of Morrison and Brillhart's
 * CFRAC), in our own code: every bignum is one malloc'd block of 32-bit limbs (8 to ~80
 * bytes), every arithmetic result is a new block and operands are freed as soon as they are
 * dead, so the program makes millions of small, short-lived allocations of a few sizes.
 * It expands sqrt(N) as a continued fraction for STEPS steps (P, Q, a and the convergent
 * numerators A mod N) and trial-divides each Q by the first PRIMES primes, counting the Q
 * that factor completely (the relations CFRAC collects) and the prime factors found.  Checks, at every step: the
 * division that makes Q is exact, and A(k-1)^2 = (-1)^k Q(k) (mod N), the identity the
 * method rests on; a wrong limb anywhere breaks it.
 */
#include "benchmarks/suite/suite.h"

struct bn {
    uint32_t len; /* limbs used; the number zero has len 1 */
    uint32_t d[];
};

static struct bn *bn_new(uint32_t len)
{
    size_t bytes = sizeof(struct bn) + (size_t)len * sizeof(uint32_t);
    struct bn *b = suite_check_alloc(malloc(bytes), bytes);
    b->len = len;
    return b;
}

static struct bn *bn_norm(struct bn *b)
{
    while (b->len > 1 && b->d[b->len - 1] == 0)
        b->len--;
    return b;
}

static struct bn *bn_small(uint64_t x)
{
    struct bn *b = bn_new(2);
    b->d[0] = (uint32_t)x;
    b->d[1] = (uint32_t)(x >> 32);
    return bn_norm(b);
}

static struct bn *bn_copy(const struct bn *a)
{
    struct bn *b = bn_new(a->len);
    memcpy(b->d, a->d, a->len * sizeof(uint32_t));
    return b;
}

static int bn_is_zero(const struct bn *a)
{
    return a->len == 1 && a->d[0] == 0;
}

static int bn_cmp(const struct bn *a, const struct bn *b)
{
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    for (uint32_t i = a->len; i-- > 0;)
        if (a->d[i] != b->d[i])
            return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

static struct bn *bn_add(const struct bn *a, const struct bn *b)
{
    if (a->len < b->len) {
        const struct bn *t = a;
        a = b;
        b = t;
    }
    struct bn *r = bn_new(a->len + 1);
    uint64_t c = 0;
    for (uint32_t i = 0; i < a->len; i++) {
        c += (uint64_t)a->d[i] + (i < b->len ? b->d[i] : 0);
        r->d[i] = (uint32_t)c;
        c >>= 32;
    }
    r->d[a->len] = (uint32_t)c;
    return bn_norm(r);
}

/* a - b, a >= b. */
static struct bn *bn_sub(const struct bn *a, const struct bn *b)
{
    if (bn_cmp(a, b) < 0)
        suite_fail("cfrac: negative difference");
    struct bn *r = bn_new(a->len);
    int64_t borrow = 0;
    for (uint32_t i = 0; i < a->len; i++) {
        int64_t v = (int64_t)a->d[i] - (i < b->len ? b->d[i] : 0) - borrow;
        borrow = v < 0;
        r->d[i] = (uint32_t)(v + (borrow << 32));
    }
    return bn_norm(r);
}

static struct bn *bn_mul(const struct bn *a, const struct bn *b)
{
    struct bn *r = bn_new(a->len + b->len);
    memset(r->d, 0, r->len * sizeof(uint32_t));
    for (uint32_t i = 0; i < a->len; i++) {
        uint64_t c = 0;
        for (uint32_t j = 0; j < b->len; j++) {
            c += (uint64_t)a->d[i] * b->d[j] + r->d[i + j];
            r->d[i + j] = (uint32_t)c;
            c >>= 32;
        }
        r->d[i + b->len] = (uint32_t)c;
    }
    return bn_norm(r);
}

/* Quotient by a small divisor; the remainder goes to *rem. */
static struct bn *bn_divmod_small(const struct bn *a, uint32_t d, uint32_t *rem)
{
    struct bn *q = bn_new(a->len);
    uint64_t r = 0;
    for (uint32_t i = a->len; i-- > 0;) {
        r = (r << 32) | a->d[i];
        q->d[i] = (uint32_t)(r / d);
        r %= d;
    }
    *rem = (uint32_t)r;
    return bn_norm(q);
}

/* Knuth's algorithm D (TAOCP 4.3.1): a = q b + r, 0 <= r < b, b != 0. */
static void bn_divmod(const struct bn *a, const struct bn *b, struct bn **q, struct bn **r)
{
    if (bn_cmp(a, b) < 0) {
        *q = bn_small(0);
        *r = bn_copy(a);
        return;
    }
    if (b->len == 1) {
        uint32_t rem;
        *q = bn_divmod_small(a, b->d[0], &rem);
        *r = bn_small(rem);
        return;
    }
    uint32_t n = b->len, m = a->len - b->len;
    int s = __builtin_clz(b->d[n - 1]);
    struct bn *u = bn_new(a->len + 1), *v = bn_new(n);
    for (uint32_t i = n; i-- > 0;)
        v->d[i] = (b->d[i] << s) | (s && i ? (uint32_t)(b->d[i - 1] >> (32 - s)) : 0);
    u->d[a->len] = s ? a->d[a->len - 1] >> (32 - s) : 0;
    for (uint32_t i = a->len; i-- > 0;)
        u->d[i] = (a->d[i] << s) | (s && i ? (uint32_t)(a->d[i - 1] >> (32 - s)) : 0);
    struct bn *qq = bn_new(m + 1);
    for (uint32_t j = m + 1; j-- > 0;) {
        uint64_t num = ((uint64_t)u->d[j + n] << 32) | u->d[j + n - 1];
        uint64_t qhat = num / v->d[n - 1], rhat = num % v->d[n - 1];
        while (qhat >> 32 || qhat * v->d[n - 2] > ((rhat << 32) | u->d[j + n - 2])) {
            qhat--;
            rhat += v->d[n - 1];
            if (rhat >> 32)
                break;
        }
        int64_t borrow = 0;
        uint64_t carry = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t p = qhat * v->d[i] + carry;
            carry = p >> 32;
            int64_t t = (int64_t)u->d[i + j] - borrow - (int64_t)(uint32_t)p;
            u->d[i + j] = (uint32_t)t;
            borrow = t < 0;
        }
        int64_t t = (int64_t)u->d[j + n] - borrow - (int64_t)carry;
        u->d[j + n] = (uint32_t)t;
        if (t < 0) { /* qhat was one too large: add v back */
            qhat--;
            uint64_t c = 0;
            for (uint32_t i = 0; i < n; i++) {
                c += (uint64_t)u->d[i + j] + v->d[i];
                u->d[i + j] = (uint32_t)c;
                c >>= 32;
            }
            u->d[j + n] += (uint32_t)c;
        }
        qq->d[j] = (uint32_t)qhat;
    }
    struct bn *rr = bn_new(n);
    for (uint32_t i = 0; i < n; i++)
        rr->d[i] = (u->d[i] >> s) | (s ? (uint32_t)((uint64_t)u->d[i + 1] << (32 - s)) : 0);
    free(u);
    free(v);
    *q = bn_norm(qq);
    *r = bn_norm(rr);
}

static struct bn *bn_div(const struct bn *a, const struct bn *b)
{
    struct bn *q, *r;
    bn_divmod(a, b, &q, &r);
    free(r);
    return q;
}

static struct bn *bn_mod(const struct bn *a, const struct bn *b)
{
    struct bn *q, *r;
    bn_divmod(a, b, &q, &r);
    free(q);
    return r;
}

static struct bn *bn_from_decimal(const char *s)
{
    struct bn *x = bn_small(0), *ten = bn_small(10);
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            suite_fail("cfrac: N must be a decimal number");
        struct bn *t = bn_mul(x, ten), *digit = bn_small((uint64_t)(*s - '0'));
        free(x);
        x = bn_add(t, digit);
        free(t);
        free(digit);
    }
    free(ten);
    return x;
}

/* floor(sqrt(n)) by Newton's iteration from above. */
static struct bn *bn_isqrt(const struct bn *n)
{
    uint32_t bits = 32 * n->len - (uint32_t)__builtin_clz(n->d[n->len - 1] | 1);
    struct bn *x = bn_new(bits / 64 + 2);
    memset(x->d, 0, x->len * sizeof(uint32_t));
    x->d[(bits / 2 + 1) / 32] = 1u << ((bits / 2 + 1) % 32);
    bn_norm(x);
    for (;;) {
        struct bn *q = bn_div(n, x), *s = bn_add(x, q), *two = bn_small(2);
        struct bn *y = bn_div(s, two);
        free(q);
        free(s);
        free(two);
        if (bn_cmp(y, x) >= 0) {
            free(y);
            return x;
        }
        free(x);
        x = y;
    }
}

static uint64_t bn_hash(const struct bn *a)
{
    uint64_t h = a->len;
    for (uint32_t i = 0; i < a->len; i++)
        h = suite_mix64(h ^ a->d[i]);
    return h;
}

int main(int argc, char **argv)
{
    const char *usage = "[STEPS=150000] [N=17545186520507317056371138836327483792789528] [PRIMES=300]";
    long steps = suite_arg(argc, argv, 1, 150000, 1, 1L << 40, usage);
    const char *ndec = argc > 2 ? argv[2] : "17545186520507317056371138836327483792789528";
    long nprimes = suite_arg(argc, argv, 3, 300, 1, 100000, usage);

    double start = suite_now();
    uint32_t *primes = suite_check_alloc(malloc((size_t)nprimes * sizeof *primes),
                                         (size_t)nprimes * sizeof *primes);
    for (uint32_t c = 2, k = 0; k < (uint32_t)nprimes; c++) {
        uint32_t d = 2;
        while (d * d <= c && c % d)
            d++;
        if (d * d > c)
            primes[k++] = c;
    }
    struct bn *N = bn_from_decimal(ndec);
    struct bn *a0 = bn_isqrt(N);
    struct bn *sq = bn_mul(a0, a0);
    int square = bn_cmp(sq, N) == 0;
    free(sq);
    if (square)
        suite_fail("cfrac: N is a perfect square");

    struct bn *P = bn_small(0), *Q = bn_small(1), *a = bn_copy(a0);
    struct bn *A1 = bn_small(1), *A2 = bn_small(0); /* A(k-1), A(k-2) */
    long smooth = 0, factors = 0;
    for (long k = 0; k < steps; k++) {
        /* A(k) = a(k) A(k-1) + A(k-2) mod N */
        struct bn *t = bn_mul(a, A1), *u = bn_add(t, A2);
        struct bn *A = bn_mod(u, N);
        free(t);
        free(u);
        free(A2);
        A2 = A1;
        A1 = A;
        /* P(k+1) = a(k) Q(k) - P(k);  Q(k+1) = (N - P(k+1)^2) / Q(k), exactly */
        t = bn_mul(a, Q);
        struct bn *Pn = bn_sub(t, P);
        free(t);
        struct bn *p2 = bn_mul(Pn, Pn), *diff = bn_sub(N, p2), *Qn, *rem;
        bn_divmod(diff, Q, &Qn, &rem);
        if (!bn_is_zero(rem))
            suite_fail("cfrac: step %ld: (N - P^2) / Q is not exact", k);
        free(p2);
        free(diff);
        free(rem);
        free(P);
        free(Q);
        P = Pn;
        Q = Qn;
        /* A(k)^2 = (-1)^(k+1) Q(k+1)  (mod N) */
        struct bn *sq2 = bn_mul(A1, A1), *lhs = bn_mod(sq2, N);
        struct bn *rhs = (k & 1) ? bn_copy(Q) : bn_sub(N, Q);
        if (bn_cmp(lhs, rhs) != 0)
            suite_fail("cfrac: step %ld: A^2 != (-1)^k Q (mod N)", k);
        free(sq2);
        free(lhs);
        free(rhs);
        /* a(k+1) = (a0 + P(k+1)) / Q(k+1) */
        t = bn_add(a0, P);
        free(a);
        a = bn_div(t, Q);
        free(t);
        /* Trial division of Q over the factor base. */
        struct bn *f = bn_copy(Q);
        for (long i = 0; i < nprimes && !(f->len == 1 && f->d[0] == 1); i++) {
            for (;;) {
                uint32_t r;
                struct bn *qt = bn_divmod_small(f, primes[i], &r);
                if (r) {
                    free(qt);
                    break;
                }
                free(f);
                f = qt;
                factors++;
            }
        }
        smooth += f->len == 1 && f->d[0] == 1;
        free(f);
    }
    uint64_t h = bn_hash(A1) ^ bn_hash(Q);
    free(P);
    free(Q);
    free(a);
    free(A1);
    free(A2);
    free(a0);
    free(N);
    free(primes);
    suite_report(start, "cfrac steps=%ld primes=%ld smooth=%ld factors=%ld hash=%016llx", steps,
                 nprimes, smooth, factors, (unsigned long long)h);
    return 0;
}
