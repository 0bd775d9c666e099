/* SPDX-License-Identifier: MIT */
/* Smoke library proving the build setup: a counter shared by threads. */
#ifndef SLABCACHE_TESTS_SMOKE_SMOKE_H
#define SLABCACHE_TESTS_SMOKE_SMOKE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs nthreads threads that each add 1 to a shared counter iters times
 * (under a mutex); returns the final count, or 0 on thread-creation error. */
size_t smoke_count_threads(unsigned nthreads, size_t iters);

#ifdef __cplusplus
}
#endif

#endif /* SLABCACHE_TESTS_SMOKE_SMOKE_H */
