/* SPDX-License-Identifier: MIT */
/* slab/trend.c - least-squares trends with a confidence figure (trend.h), without libm. */
#include "slab/trend.h"

#include <stdint.h>
#include <string.h>

#define TREND_LN2 0.69314718055994530942
#define TREND_INV_SQRT_2PI 0.39894228040143267794

double trend_sqrt(double x)
{
    if (!(x > 0.0))
        return 0.0;
    if (x > 1.7e308)
        return x;
    /* Halve the exponent for a first guess, then Newton: each step doubles the digits. */
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = (bits >> 1) + ((uint64_t)1023 << 51);
    double y;
    memcpy(&y, &bits, sizeof y);
    for (int i = 0; i < 6; i++)
        y = 0.5 * (y + x / y);
    return y;
}

double trend_exp(double x)
{
    if (x < -708.0)
        return 0.0;
    if (x > 709.0)
        return 1.7976931348623157e308;
    /* x = k ln2 + r, |r| <= ln2 / 2: e^x = 2^k e^r, e^r by its series (13 terms: < 1e-16). */
    double kd = x / TREND_LN2;
    long k = (long)(kd < 0 ? kd - 0.5 : kd + 0.5);
    double r = x - (double)k * TREND_LN2;
    double term = 1.0, sum = 1.0;
    for (int i = 1; i <= 13; i++) {
        term *= r / i;
        sum += term;
    }
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return sum * scale;
}

/* Abramowitz & Stegun 26.2.17: absolute error below 7.5e-8. */
double trend_normal_cdf(double z)
{
    if (z < 0.0)
        return 1.0 - trend_normal_cdf(-z);
    if (z > 40.0)
        return 1.0;
    static const double b[5] = {0.319381530, -0.356563782, 1.781477937, -1.821255978,
                                1.330274429};
    double k = 1.0 / (1.0 + 0.2316419 * z);
    double poly = k * (b[0] + k * (b[1] + k * (b[2] + k * (b[3] + k * b[4]))));
    return 1.0 - TREND_INV_SQRT_2PI * trend_exp(-0.5 * z * z) * poly;
}

/* Bailey's transformation of t to a standard normal deviate (good to about 1e-3 for nu >= 3,
 * which is all a confidence figure needs). */
double trend_t_cdf(double t, double nu)
{
    if (nu < 1.0)
        nu = 1.0;
    double z = t * (1.0 - 1.0 / (4.0 * nu)) / trend_sqrt(1.0 + t * t / (2.0 * nu));
    return trend_normal_cdf(z);
}

void trend_fit_points(const double *t, const double *y, size_t n, struct trend_fit *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    if (n < 3)
        return;
    double tm = 0.0, ym = 0.0;
    for (size_t i = 0; i < n; i++) {
        tm += t[i];
        ym += y[i];
    }
    tm /= (double)n;
    ym /= (double)n;
    double stt = 0.0, sty = 0.0;
    for (size_t i = 0; i < n; i++) {
        stt += (t[i] - tm) * (t[i] - tm);
        sty += (t[i] - tm) * (y[i] - ym);
    }
    if (!(stt > 0.0))
        return;
    out->valid = true;
    out->slope = sty / stt;
    out->intercept = ym - out->slope * tm;
    double sse = 0.0, lag = 0.0, prev = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = y[i] - (out->intercept + out->slope * t[i]);
        sse += e * e;
        if (i)
            lag += e * prev;
        prev = e;
    }
    double scale = 0.0;
    for (size_t i = 0; i < n; i++)
        scale += y[i] > 0 ? y[i] : -y[i];
    if (sse <= 1e-18 * (scale * scale + 1.0)) { /* a perfect line: no noise at all */
        out->n_eff = (double)n;
        out->confidence = out->slope > 0.0 ? 1.0 : out->slope < 0.0 ? 0.0 : 0.5;
        return;
    }
    double r1 = lag / sse;
    if (r1 < 0.0)
        r1 = 0.0;
    if (r1 > 0.99)
        r1 = 0.99;
    double n_eff = (double)n * (1.0 - r1) / (1.0 + r1);
    if (n_eff < 3.0)
        n_eff = 3.0;
    out->n_eff = n_eff;
    double s2 = sse / (double)(n - 2);
    /* The slope's variance grows as the independent points shrink: n / n_eff. */
    out->se = trend_sqrt(s2 / stt * ((double)n / n_eff));
    double tstat = out->slope / out->se;
    out->confidence = trend_t_cdf(tstat, n_eff - 2.0);
}

bool trend_rising(const struct trend_fit *f)
{
    return f->valid && f->n >= TREND_MIN_POINTS && f->slope > 0.0 &&
           f->confidence >= TREND_CONFIDENCE;
}
