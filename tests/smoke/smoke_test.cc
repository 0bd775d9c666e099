/* SPDX-License-Identifier: MIT */
// Smoke test for the build setup: googletest, C linkage, threads, sanitizers.
#include "tests/smoke/smoke.h"

#include <gtest/gtest.h>

TEST(SmokeTest, CountsAcrossThreads) {
  EXPECT_EQ(smoke_count_threads(4, 1000), 4u * 1000u);
}

TEST(SmokeTest, ZeroThreads) {
  EXPECT_EQ(smoke_count_threads(0, 1000), 0u);
}
