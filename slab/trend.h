/* SPDX-License-Identifier: MIT */
/* slab/trend.h - least-squares trends with a confidence figure, without libm.
 *
 * A slow leak shows only as a trend of live bytes over time.  trend_fit_points() fits the
 * least-squares line y = a + b t and says how sure one can be that the slope is positive:
 * the t statistic of b, with its standard error widened for residuals that follow each other
 * (a spike of activity spans several samples, which are then not independent: the effective
 * number of points is n (1 - r1) / (1 + r1), r1 the lag-1 autocorrelation of the residuals),
 * turned into a one-sided probability with Student's t distribution (Bailey's normal
 * approximation).  A steady series with spikes has large, correlated residuals and a low
 * confidence; a leak has a steady slope and small residuals.
 *
 * Pure arithmetic: used by the library (which must not pull libm into every process) and by
 * tools/slabtop.
 */
#ifndef SLABCACHE_SLAB_TREND_H
#define SLABCACHE_SLAB_TREND_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fewer points: no verdict.  With 8, a spike of activity that starts in the last samples of
 * a short window is indistinguishable from a leak that starts there (trend_test has the
 * cases); 20 points is 20 s at one sample a second, well within the minute in which a leak
 * of 100 bytes a second must be flagged. */
#define TREND_MIN_POINTS 20
#define TREND_CONFIDENCE 0.99     /* rising: P(slope > 0) at least this */

struct trend_fit {
    bool valid;         /* at least 3 points spanning some time */
    double slope;       /* units of y per unit of t */
    double intercept;
    double se;          /* standard error of the slope, widened for correlated residuals */
    double n_eff;       /* effective number of independent points */
    double confidence;  /* one-sided: probability that the slope is positive, 0..1 */
    size_t n;
};

/* Fit n points (t[i], y[i]).  Always fills *out (valid = false when it cannot fit). */
void trend_fit_points(const double *t, const double *y, size_t n, struct trend_fit *out);
/* A positive slope beyond the noise: valid, n >= TREND_MIN_POINTS, confidence >=
 * TREND_CONFIDENCE. */
bool trend_rising(const struct trend_fit *f);

/* The arithmetic it needs, for the library's other users (no libm). */
double trend_sqrt(double x);
double trend_exp(double x);
/* P(Z <= z) for a standard normal Z; P(T <= t) for Student's t with nu degrees of freedom. */
double trend_normal_cdf(double z);
double trend_t_cdf(double t, double nu);

#ifdef __cplusplus
}
#endif
#endif
