/* SPDX-License-Identifier: MIT */
// tests/observe/trend_test.cc - the least-squares trend and its confidence (slab/trend.h) on
// synthetic series: what the leak-slope watch must flag (a steady leak of 100 bytes a
// second, within a minute) and must not (a steady working set with spikes of activity, at
// every phase of the spikes; a one-off step; noise), and the arithmetic it does without
// libm, against libm.
#include <gtest/gtest.h>

#include <math.h>

#include <random>
#include <vector>

extern "C" {
#include "slab/trend.h"
}

namespace {

struct Series {
    std::vector<double> t, y;
    void add(double tt, double yy) {
        t.push_back(tt);
        y.push_back(yy);
    }
    struct trend_fit fit() const {
        struct trend_fit f;
        trend_fit_points(t.data(), y.data(), t.size(), &f);
        return f;
    }
};

TEST(Trend, ArithmeticMatchesLibm) {
    for (double x : {1e-300, 1e-9, 0.5, 1.0, 2.0, 3.0, 1e6, 1.7e300})
        EXPECT_NEAR(trend_sqrt(x), sqrt(x), 1e-14 * sqrt(x)) << x;
    EXPECT_EQ(0.0, trend_sqrt(-1.0));
    for (double x : {-700.0, -30.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.5, 100.0, 700.0})
        EXPECT_NEAR(trend_exp(x), exp(x), 1e-12 * exp(x)) << x;
    for (double z : {-6.0, -2.33, -1.0, 0.0, 0.5, 1.0, 1.645, 2.326, 3.09, 8.0})
        EXPECT_NEAR(trend_normal_cdf(z), 0.5 * erfc(-z / sqrt(2.0)), 1e-7) << z;
    // Student's t: tabled one-sided 99% points.
    EXPECT_NEAR(0.99, trend_t_cdf(2.764, 10), 2e-3);
    EXPECT_NEAR(0.99, trend_t_cdf(2.457, 30), 1e-3);
    EXPECT_NEAR(0.95, trend_t_cdf(1.812, 10), 2e-3);
    EXPECT_NEAR(0.5, trend_t_cdf(0.0, 5), 1e-7);
}

TEST(Trend, AnExactLineIsFittedExactly) {
    Series s;
    for (int i = 0; i < TREND_MIN_POINTS; i++) s.add(i * 0.5, 1000 + 100 * i * 0.5);
    struct trend_fit f = s.fit();
    ASSERT_TRUE(f.valid);
    EXPECT_NEAR(100.0, f.slope, 1e-9);
    EXPECT_NEAR(1000.0, f.intercept, 1e-6);
    EXPECT_EQ(1.0, f.confidence);
    EXPECT_TRUE(trend_rising(&f));
    Series flat;
    for (int i = 0; i < TREND_MIN_POINTS; i++) flat.add(i, 4096);
    f = flat.fit();
    EXPECT_EQ(0.5, f.confidence);
    EXPECT_FALSE(trend_rising(&f));
}

TEST(Trend, TooFewPointsGiveNoVerdict) {
    Series s;
    for (int i = 0; i < TREND_MIN_POINTS - 1; i++) s.add(i, 100 * i);
    struct trend_fit f = s.fit();
    EXPECT_TRUE(f.valid);
    EXPECT_FALSE(trend_rising(&f));
    Series two;
    two.add(0, 0);
    two.add(1, 1);
    f = two.fit();
    EXPECT_FALSE(f.valid);
}

// A program losing 100 bytes a second in 48-byte blocks, on top of a working set whose live
// bytes move by up to a few KiB as objects are allocated and freed, sampled every second:
// flagged within a minute, with the slope (6000 bytes a minute) recovered.
TEST(Trend, ALeakOfAHundredBytesASecondIsFlaggedWithinAMinute) {
    for (unsigned seed = 1; seed <= 20; seed++) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<double> churn(-2048, 2048);
        Series s;
        double flagged_at = -1;
        for (int i = 1; i <= 60; i++) {
            double leaked = 48.0 * floor(i * 100.0 / 48.0);
            s.add(i, (1 << 20) + leaked + churn(rng));
            struct trend_fit f = s.fit();
            if (flagged_at < 0 && trend_rising(&f)) flagged_at = i;
        }
        struct trend_fit f = s.fit();
        EXPECT_GT(flagged_at, 0) << "seed " << seed;
        EXPECT_LE(flagged_at, 60) << "seed " << seed;
        // The churn alone moves the fitted slope by about 530 bytes a minute (one sigma).
        EXPECT_NEAR(6000.0, f.slope * 60.0, 1600.0) << "seed " << seed;
    }
}

// The same working set with spikes of activity (1 MiB held for `width` seconds every
// `period`), sampled every `dt` seconds, at every phase of the spikes and with noise: never
// flagged, whatever the number of samples so far.  (With a verdict from 8 points, a spike
// starting in the last samples was flagged: TREND_MIN_POINTS.)
TEST(Trend, ASteadyProgramWithSpikesIsNotFlagged) {
    const struct {
        double period, width, dt;
        int samples;
    } cases[] = {{3, 1, 0.25, 240}, {7, 2, 0.5, 240}, {10, 3, 1, 120}, {20, 5, 1, 180}};
    for (const auto &c : cases) {
        for (int phase = 0; phase < (int)(c.period / c.dt); phase++) {
            for (unsigned seed = 1; seed <= 3; seed++) {
                std::mt19937 rng(seed * 100 + phase);
                std::uniform_real_distribution<double> churn(-2048, 2048);
                Series s;
                for (int i = 1; i <= c.samples; i++) {
                    double t = (i + phase) * c.dt;
                    bool spike = fmod(t, c.period) >= c.period - c.width;
                    s.add(t, (8 << 20) + (spike ? 1 << 20 : 0) + churn(rng));
                    struct trend_fit f = s.fit();
                    ASSERT_FALSE(trend_rising(&f))
                        << "period " << c.period << " phase " << phase << " seed " << seed
                        << " after " << i << " samples";
                }
            }
        }
    }
}

// Memory that grows once and then stays (a cache filled at start-up, one allocation kept
// for good): a step, whose residuals follow each other, is not a trend.
TEST(Trend, AStepIsNotATrend) {
    for (int at = 10; at <= 50; at += 10) {
        Series s;
        for (int i = 1; i <= 60; i++) s.add(i, (1 << 20) + (i >= at ? 65536 : 0) + (i % 2) * 16);
        struct trend_fit f = s.fit();
        EXPECT_FALSE(trend_rising(&f)) << "step at " << at << ": confidence " << f.confidence;
        EXPECT_LT(f.n_eff, 15.0) << "step at " << at;
    }
}

TEST(Trend, NoiseAloneIsRarelyFlagged) {
    int flagged = 0;
    for (unsigned seed = 1; seed <= 200; seed++) {
        std::mt19937 rng(seed);
        std::normal_distribution<double> noise(0, 1000);
        Series s;
        for (int i = 1; i <= 60; i++) s.add(i, (1 << 20) + noise(rng));
        struct trend_fit f = s.fit();
        flagged += trend_rising(&f);
    }
    EXPECT_LE(flagged, 6) << "of 200 noise-only series (1% expected)";
}

}  // namespace
