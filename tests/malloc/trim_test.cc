/* SPDX-License-Identifier: MIT */
// tests/malloc/trim_test.cc - memory given back by the drop-in malloc, as a program sees it:
// malloc_trim with glibc's meaning (returns 1 when memory was released) after a program freed
// everything, and a large malloc after small ones were freed under a data limit
// (setrlimit(RLIMIT_DATA), as `prlimit --data=256M` in the report that asked for both).  Linked
// like malloc_test (//slab:libslabcache.so: every malloc in the process is slabcache's).  The
// time-driven half (pages back within a second of activity) is in tests/slab/reclaim_test.cc,
// where a fake clock stands for the second.
#include <gtest/gtest.h>

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <vector>

#include "slab/slab.h"

namespace {

// Resident bytes of this process (/proc/self/statm), 0 when unreadable.
size_t ResidentBytes() {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// 50,000 blocks of 4000 bytes allocated and written, then freed: malloc_trim(0) returns 1 and
// at least 90% of those pages leave the resident set at once.
TEST(TrimTest, MallocTrimGivesFreedPagesBackAtOnce) {
    constexpr size_t kBlocks = 50000;
    malloc_trim(0);
    const size_t base = ResidentBytes();
    ASSERT_GT(base, 0u);
    std::vector<void *> v(kBlocks);
    for (auto &p : v) {
        p = malloc(4000);
        ASSERT_NE(p, nullptr);
        memset(p, 0x5a, 4000);
    }
    const size_t peak = ResidentBytes();
    ASSERT_GE(peak, base + kBlocks * 4000);
    for (auto p : v)
        free(p);
    EXPECT_EQ(malloc_trim(0), 1) << "memory was released";
    const size_t now = ResidentBytes();
    EXPECT_LE(now - std::min(now, base), (peak - base) / 10)
        << "resident: " << base << " before, " << peak << " at the peak, " << now << " after";
    EXPECT_EQ(slabcache_validate(), 0);
}

// Under a data limit of 256 MiB, 120 MB of 100-byte objects are allocated, then freed in
// random order (the depot and the magazines then hold objects of nearly every slab), then
// malloc(100 MiB) must succeed: the allocator gives back what it holds before ENOMEM.  In a
// child process: the limit stays there.
TEST(TrimTest, LargeMallocAfterFreeUnderADataLimit) {
    fflush(nullptr);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        constexpr size_t kObjects = 120u * 1000 * 1000 / 100;
        std::vector<void *> v(kObjects);  // allocated before the limit
        struct rlimit rl = {256u << 20, 256u << 20};
        if (setrlimit(RLIMIT_DATA, &rl) != 0)
            _exit(2);
        for (auto &p : v)
            if (!(p = malloc(100)))
                _exit(3);
        std::mt19937_64 rng(14);
        std::shuffle(v.begin(), v.end(), rng);
        for (auto p : v)
            free(p);
        char *big = static_cast<char *>(malloc(100u << 20));
        if (!big)
            _exit(4);
        memset(big, 1, 100u << 20);
        free(big);
        _exit(slabcache_validate() == 0 ? 0 : 5);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "2: setrlimit failed, 3: the small objects did not fit, 4: malloc(100 MiB) "
           "failed after they were freed, 5: validation failed";
}

}  // namespace
