/* SPDX-License-Identifier: MIT */
// tests/buddy/buddy_test.cc - white-box tests of the buddy layer.
//
// Strategy: every test starts from buddy_reset_for_tests() and calls buddy_validate() (the
// full invariant walk) after its operations.  Free-block counts are checked against an
// independent oracle: with full coalescing, the free blocks of an extent are exactly its
// maximal aligned power-of-two runs of free pages, which the test computes from its own record
// of live blocks (Oracle*).  Random sequences run against a reference model (std::map of live
// blocks, with a content pattern in every page); misuse is checked for its message, errno and
// for changing nothing; a 4-thread stress ends with a validate after join.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "buddy/buddy.h"
#include "heap/options.h"
#include "heap/heap.h"

namespace {

constexpr size_t kPage = BUDDY_PAGE_SIZE;
constexpr unsigned kMax = BUDDY_MAX_ORDER;
constexpr size_t kExtent = HEAP_EXTENT_SIZE;
constexpr size_t kSpare = BUDDY_SPARE_EXTENTS_MIN;

size_t OrderBytes(unsigned k) { return kPage << k; }
uintptr_t ExtentOf(const void *p) { return (uintptr_t)p & ~(uintptr_t)(kExtent - 1); }

std::vector<size_t> Buddyinfo()
{
    char buf[512];
    int n = buddy_format_buddyinfo(buf, sizeof buf);
    EXPECT_GT(n, 0);
    EXPECT_LT((size_t)n, sizeof buf);
    std::istringstream in(buf);
    std::string node, zero, zone, name;
    in >> node >> zero >> zone >> name;
    EXPECT_EQ("Node 0, zone slabcache", node + " " + zero + " " + zone + " " + name);
    std::vector<size_t> counts;
    size_t c;
    while (in >> c)
        counts.push_back(c);
    EXPECT_EQ(kMax + 1, counts.size());
    counts.resize(kMax + 1);
    return counts;
}

// Live blocks: head address -> order.
using Live = std::map<uintptr_t, unsigned>;

// Expected free-list counts for orders 0..kMax-1 from the live blocks of each extent that has
// any: count the maximal aligned runs of free pages.  (Whole free extents are checked apart.)
std::vector<size_t> OracleCounts(const Live &live)
{
    std::map<uintptr_t, std::vector<bool>> used; // extent base -> page in use
    for (auto &[head, order] : live) {
        if (order > kMax)
            continue;
        auto &v = used[ExtentOf((void *)head)];
        v.resize(BUDDY_PAGES_PER_EXTENT);
        size_t first = (head - ExtentOf((void *)head)) / kPage;
        for (size_t i = 0; i < ((size_t)1 << order); i++)
            v[first + i] = true;
    }
    std::vector<size_t> counts(kMax + 1);
    for (auto &[base, v] : used) {
        // free[k][i]: aligned order-k block i entirely free.
        std::vector<std::vector<bool>> freeb(kMax + 1);
        for (unsigned k = 0; k <= kMax; k++) {
            size_t n = BUDDY_PAGES_PER_EXTENT >> k;
            freeb[k].resize(n);
            for (size_t i = 0; i < n; i++)
                freeb[k][i] = k == 0 ? !v[i] : freeb[k - 1][2 * i] && freeb[k - 1][2 * i + 1];
        }
        for (unsigned k = 0; k < kMax; k++)
            for (size_t i = 0; i < freeb[k].size(); i++)
                if (freeb[k][i] && !freeb[k + 1][i / 2])
                    counts[k]++;
    }
    return counts;
}

// Checks buddyinfo against the oracle; the top order holds the spare whole extents.
void ExpectCountsMatch(const Live &live)
{
    std::vector<size_t> got = Buddyinfo();
    std::vector<size_t> want = OracleCounts(live);
    std::set<uintptr_t> busy;
    for (auto &[head, order] : live)
        if (order <= kMax)
            busy.insert(ExtentOf((void *)head));
    struct buddy_stats st;
    buddy_get_stats(&st);
    want[kMax] = st.extents - busy.size();
    EXPECT_LE(want[kMax], kSpare);
    EXPECT_EQ(want, got);
}

class BuddyTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        buddy_reset_for_tests();
        buddy_set_spare_extents(kSpare); // the tests count extents with one spare
        // No decay on the real clock: a pass in the middle of a test would change which
        // blocks are clean.  The decay tests set a fake clock and a decay time.
        buddy_set_clock_for_tests(nullptr);
        buddy_set_decay_ms(BUDDY_DECAY_NEVER);
    }
    void TearDown() override
    {
        EXPECT_EQ(0, buddy_validate());
        buddy_set_reclaim(nullptr);
        buddy_set_clock_for_tests(nullptr);
        buddy_reset_for_tests();
    }
};

#define ASSERT_VALID() ASSERT_EQ(0, buddy_validate())

// ------------------------------------------------------------------ every order

TEST_F(BuddyTest, EveryOrderSplitsFromOneExtentAndMergesBack)
{
    for (unsigned k = 0; k <= kMax; k++) {
        void *p = buddy_alloc(k, BUDDY_TAG_USER);
        ASSERT_NE(nullptr, p) << "order " << k;
        EXPECT_EQ(0u, (uintptr_t)p % OrderBytes(k)) << "order " << k;
        ASSERT_VALID();
        // Splitting the extent down to order k leaves one free block of each order k..kMax-1.
        std::vector<size_t> want(kMax + 1);
        for (unsigned j = k; j < kMax; j++)
            want[j] = 1;
        EXPECT_EQ(want, Buddyinfo()) << "order " << k;
        ExpectCountsMatch(Live{{(uintptr_t)p, k}});
        memset(p, 0x5a, OrderBytes(k));
        ASSERT_EQ(0, buddy_free(p));
        ASSERT_VALID();
        std::vector<size_t> spare(kMax + 1);
        spare[kMax] = 1;
        EXPECT_EQ(spare, Buddyinfo()) << "order " << k;
    }
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(1u, st.extents);
    EXPECT_EQ(0u, st.alloc_bytes);
    EXPECT_EQ(kExtent, st.free_bytes);
    EXPECT_EQ(kMax + 1, st.allocs);
    EXPECT_EQ(st.splits, st.merges);
}

// ------------------------------------------------------------------ resize in place

TEST_F(BuddyTest, ResizeGrowsIntoFreeBuddiesAndShrinksBack)
{
    char *p = (char *)buddy_alloc(0, BUDDY_TAG_LARGE);
    ASSERT_NE(nullptr, p);
    ASSERT_EQ(0u, (uintptr_t)p % kExtent); // the lower half at every order
    memset(p, 0x6b, kPage);
    ASSERT_EQ(0, buddy_resize(p, 3));
    ASSERT_VALID();
    std::vector<size_t> want(kMax + 1);
    for (unsigned j = 3; j < kMax; j++)
        want[j] = 1;
    EXPECT_EQ(want, Buddyinfo());
    for (size_t i = 0; i < kPage; i++)
        ASSERT_EQ(0x6b, (unsigned char)p[i]) << "contents kept";
    struct buddy_block_info info;
    ASSERT_TRUE(buddy_lookup(p + 7 * kPage + 5, &info));
    EXPECT_EQ((void *)p, info.head);
    EXPECT_EQ(3u, info.order);
    EXPECT_EQ(BUDDY_TAG_LARGE, info.tag);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(OrderBytes(3), st.alloc_bytes);
    memset(p, 0x6c, OrderBytes(3));

    ASSERT_EQ(0, buddy_resize(p, 1)); // frees the upper halves of orders 2 and 1
    ASSERT_VALID();
    want[1] = want[2] = 1;
    EXPECT_EQ(want, Buddyinfo());
    ASSERT_TRUE(buddy_lookup(p + kPage, &info));
    EXPECT_EQ(1u, info.order);
    EXPECT_FALSE(buddy_lookup(p + 2 * kPage, nullptr)) << "freed pages are not live";
    buddy_get_stats(&st);
    EXPECT_EQ(OrderBytes(1), st.alloc_bytes);
    for (size_t i = 0; i < OrderBytes(1); i++)
        ASSERT_EQ(0x6c, (unsigned char)p[i]);

    ASSERT_EQ(0, buddy_resize(p, 1)) << "same order: nothing to do";
    ASSERT_EQ(0, buddy_resize(p, kMax)) << "the whole extent is free around it";
    ASSERT_VALID();
    EXPECT_EQ(std::vector<size_t>(kMax + 1), Buddyinfo());
    ASSERT_EQ(0, buddy_free(p));
    ASSERT_VALID();
}

// ------------------------------------------------------------------ decay

uint64_t g_clock_ms;
uint64_t FakeClockMs() { return __atomic_load_n(&g_clock_ms, __ATOMIC_RELAXED); }
void ClockAdvance(uint64_t ms) { __atomic_add_fetch(&g_clock_ms, ms, __ATOMIC_RELAXED); }

// Decay time 100 ms on a fake clock: epochs are 100 ms; a page freed in epoch E is purged by
// the first slow path of epoch E + 2 or later, not before.
void UseFakeClock(uint32_t decay_ms)
{
    g_clock_ms = 10000000; // the start of an epoch
    buddy_set_clock_for_tests(FakeClockMs);
    buddy_set_decay_ms(decay_ms);
}

TEST_F(BuddyTest, DecayPurgesPagesFreedMoreThanTheDecayTimeAgo)
{
    UseFakeClock(100);
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER); // page 0
    char *a = (char *)buddy_alloc(5, BUDDY_TAG_USER);   // pages 32..63
    char *b = (char *)buddy_alloc(5, BUDDY_TAG_USER);   // pages 64..95
    ASSERT_TRUE(pin && a && b);
    memset(a, 7, OrderBytes(5));
    memset(b, 7, OrderBytes(5));
    struct buddy_stats st0, st1;
    buddy_get_stats(&st0);
    ASSERT_EQ(0, buddy_free(a)); // freed in epoch E
    ClockAdvance(99);
    buddy_tick();
    ClockAdvance(1); // epoch E + 1: a was freed less than two epoch starts ago
    buddy_tick();
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.purge_calls, st1.purge_calls) << "freed less than the decay time ago";
    EXPECT_EQ(OrderBytes(5), st1.dirty_free_bytes);
    EXPECT_EQ(7, a[kPage]) << "still resident";
    ASSERT_EQ(0, buddy_free(b)); // freed in epoch E + 1
    ClockAdvance(100);           // epoch E + 2
    buddy_tick();
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.purge_calls + 1, st1.purge_calls) << "a alone, in one call";
    EXPECT_EQ(OrderBytes(5), st1.purged_bytes - st0.purged_bytes);
    EXPECT_EQ(OrderBytes(5), st1.dirty_free_bytes) << "b's pages wait";
    EXPECT_EQ(0, a[kPage]) << "purged pages read as zero";
    EXPECT_EQ(7, b[kPage]);
    ASSERT_VALID();
    ClockAdvance(100); // epoch E + 3: the pass runs from any slow path, here an allocation
    char *c = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    ASSERT_NE(nullptr, c);
    buddy_get_stats(&st1);
    EXPECT_EQ(0u, st1.dirty_free_bytes);
    EXPECT_EQ(0, b[kPage]);
    EXPECT_EQ(st0.purge_calls + 2, st1.purge_calls);
    EXPECT_EQ(st0.decay_passes + 2, st1.decay_passes);
    ASSERT_EQ(0, buddy_free(c));
    // A block freed and allocated again within the decay time: the same resident pages
    // come back, with no purge in between.
    bool clean = true;
    char *d = (char *)buddy_alloc_clean(5, BUDDY_TAG_USER, &clean);
    ASSERT_NE(nullptr, d);
    memset(d, 9, OrderBytes(5));
    ASSERT_EQ(0, buddy_free(d));
    ClockAdvance(150);
    buddy_get_stats(&st0);
    char *e = (char *)buddy_alloc_clean(5, BUDDY_TAG_USER, &clean);
    buddy_get_stats(&st1);
    EXPECT_EQ(d, e) << "resident memory first";
    EXPECT_FALSE(clean);
    EXPECT_EQ(9, e[OrderBytes(5) - 1]) << "not purged";
    EXPECT_EQ(st0.purge_calls, st1.purge_calls);
    ASSERT_EQ(0, buddy_free(e));
    ASSERT_EQ(0, buddy_free(pin));
    ASSERT_VALID();
}

// Allocation prefers resident memory: a dirty free block of a larger order over a clean one
// of the exact order, and the dirtier half when splitting.
TEST_F(BuddyTest, AllocationPrefersResidentPages)
{
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER); // page 0; clean free 1, 2-3, 4-7, ...
    char *big = (char *)buddy_alloc(6, BUDDY_TAG_USER); // pages 64..127
    ASSERT_TRUE(pin && big);
    ASSERT_EQ(pin + 64 * kPage, big);
    ASSERT_EQ(0, buddy_free(big)); // order 6 block, dirty
    bool clean = true;
    char *p = (char *)buddy_alloc_clean(2, BUDDY_TAG_USER, &clean);
    ASSERT_NE(nullptr, p);
    EXPECT_GE(p, big) << "the dirty order-6 block, not the clean order-2 one at page 4";
    EXPECT_LT(p, big + OrderBytes(6));
    EXPECT_FALSE(clean);
    ASSERT_EQ(0, buddy_free(p));
    EXPECT_EQ(OrderBytes(6), buddy_trim(1));
    // Make the order-6 block at 64 dirty in its upper half only: y (64..95) freed in epoch
    // E, z (96..127) in E + 1; the pass of E + 2 purges y's pages alone.
    UseFakeClock(100);
    char *y = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    char *z = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_EQ(pin + 32 * kPage, y) << "the clean order-5 block at 32 first";
    ASSERT_EQ(0, buddy_free(y));
    y = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_EQ(pin + 32 * kPage, y) << "y is dirty now: taken again";
    ASSERT_EQ(pin + 64 * kPage, z);
    char *z2 = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_EQ(pin + 96 * kPage, z2);
    ASSERT_EQ(0, buddy_free(z));  // epoch E
    ClockAdvance(100);
    ASSERT_EQ(0, buddy_free(z2)); // epoch E + 1: merges with z into the order-6 block at 64
    ClockAdvance(100);
    buddy_tick(); // E + 2: z's pages purged, z2's wait
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(OrderBytes(5), st.dirty_free_bytes);
    char *r = (char *)buddy_alloc_clean(4, BUDDY_TAG_USER, &clean);
    EXPECT_GE(r, pin + 96 * kPage) << "the split kept the dirty upper half";
    EXPECT_LT(r, pin + 128 * kPage);
    EXPECT_FALSE(clean);
    for (char *x : {r, y, pin})
        ASSERT_EQ(0, buddy_free(x));
    ASSERT_VALID();
}

// The reserve: old free pages (freed two or more epoch starts ago) that allocations took in
// epoch E are kept resident by the pass of E + 1, so a program that keeps reusing its old
// free memory does not fault it in again; the rest is purged.
TEST_F(BuddyTest, DecayKeepsAsMuchAsWasReusedFromOldFreePages)
{
    UseFakeClock(100);
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    char *x[7];
    for (auto &p : x) {
        p = (char *)buddy_alloc(5, BUDDY_TAG_USER);
        ASSERT_NE(nullptr, p);
        memset(p, 1, OrderBytes(5));
    }
    ASSERT_EQ(pin + 32 * kPage, x[0]);
    ASSERT_EQ(pin + 224 * kPage, x[6]);
    // a, b, c, d: x[0], x[2], x[4], x[6]; none of them has a free buddy.
    ASSERT_EQ(0, buddy_free(x[0])); // epoch E
    ASSERT_EQ(0, buddy_free(x[2]));
    ClockAdvance(100);
    ASSERT_EQ(0, buddy_free(x[4])); // E + 1
    ASSERT_EQ(0, buddy_free(x[6]));
    ClockAdvance(100); // E + 2: an allocation takes a (old: the lowest dirty block) first,
                       // then its pass purges b; c and d are not old yet
    char *y = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_EQ(x[0], y);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.decay_reserve) << "nothing was reused in E + 1";
    EXPECT_EQ(2 * OrderBytes(5), st.dirty_free_bytes) << "b purged, c and d kept";
    EXPECT_EQ(0, x[2][kPage]);
    ClockAdvance(100); // E + 3: c and d are old; 128 KiB of old pages were reused in E + 2
    buddy_tick();
    buddy_get_stats(&st);
    EXPECT_EQ(OrderBytes(5), st.decay_reserve);
    EXPECT_EQ(OrderBytes(5), st.dirty_free_bytes) << "one of c and d kept, as much as reused";
    ClockAdvance(100); // E + 4: nothing reused in E + 3: the reserve is gone
    buddy_tick();
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.decay_reserve);
    EXPECT_EQ(0u, st.dirty_free_bytes);
    for (char *p : {y, x[1], x[3], x[5], pin})
        ASSERT_EQ(0, buddy_free(p));
    ASSERT_VALID();
}

TEST_F(BuddyTest, SpareExtentsDecayButKeepTheirAddressSpace)
{
    UseFakeClock(100);
    char *x = (char *)buddy_alloc(kMax, BUDDY_TAG_USER);
    ASSERT_NE(nullptr, x);
    memset(x, 3, kExtent);
    ASSERT_EQ(0, buddy_free(x));
    ClockAdvance(200);
    buddy_tick();
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(1u, st.extents) << "the spare is kept";
    EXPECT_EQ(0u, st.dirty_free_bytes) << "and its pages purged";
    EXPECT_EQ(0, x[kExtent / 2]);
    ASSERT_VALID();
}

// One pass looks at a bounded amount of free memory; the next slow path goes on, in the
// same epoch.
TEST_F(BuddyTest, DecayPassesAreBoundedAndResume)
{
    UseFakeClock(100);
    buddy_set_spare_extents(32);
    std::vector<char *> v;
    for (int i = 0; i < 20; i++) { // 80 MiB, more than one pass takes
        v.push_back((char *)buddy_alloc(kMax, BUDDY_TAG_USER));
        ASSERT_NE(nullptr, v.back());
        v.back()[0] = 1;
    }
    for (char *p : v)
        ASSERT_EQ(0, buddy_free(p));
    ClockAdvance(200);
    buddy_tick();
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_GT(st.dirty_free_bytes, 0u) << "the first pass stopped at its limit";
    EXPECT_LT(st.dirty_free_bytes, 20 * kExtent);
    buddy_tick(); // same epoch
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.dirty_free_bytes) << "the second went on";
    ASSERT_VALID();
    buddy_trim(0);
}

TEST_F(BuddyTest, DecayZeroPurgesAtTheNextSlowPath)
{
    UseFakeClock(0);
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    char *a = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_TRUE(pin && a);
    memset(a, 7, OrderBytes(5));
    ASSERT_EQ(0, buddy_free(a)); // the free's own slow path purges it
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.dirty_free_bytes);
    EXPECT_EQ(0, a[0]);
    ASSERT_EQ(0, buddy_free(pin));
}

// While a purge madvises (no lock held), its blocks are neither allocatable nor mergeable,
// a free of them is a double free, and the validator accepts the state.
struct PurgeHook {
    char *block = nullptr;
    bool ran = false, validated = false, refused = false, disjoint = false;
} g_hook;

int HookMadvise(void *addr, size_t len, int advice)
{
    if (g_hook.block && !g_hook.ran) {
        g_hook.ran = true;
        g_hook.validated = buddy_validate() == 0; // would deadlock if the lock were held
        errno = 0;
        g_hook.refused = buddy_free(g_hook.block) == -1 && errno == EINVAL;
        char *p = (char *)buddy_alloc(5, BUDDY_TAG_USER);
        g_hook.disjoint = p && (p + OrderBytes(5) <= g_hook.block ||
                                p >= g_hook.block + OrderBytes(5));
        if (p)
            buddy_free(p);
    }
    return madvise(addr, len, advice);
}

TEST_F(BuddyTest, BlocksUnderPurgeAreOffLimits)
{
    heap_os_ops ops = heap_os_real;
    ops.madvise = HookMadvise;
    ASSERT_EQ(0, heap_set_os_ops(&ops));
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    char *a = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    char *fill = (char *)buddy_alloc(5, BUDDY_TAG_USER); // pages 64..95 taken
    ASSERT_TRUE(pin && a && fill);
    memset(a, 7, OrderBytes(5));
    ASSERT_EQ(0, buddy_free(a));
    g_hook = PurgeHook();
    g_hook.block = a;
    ::testing::internal::CaptureStderr();
    EXPECT_GT(buddy_trim(1), 0u);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(g_hook.ran);
    EXPECT_TRUE(g_hook.validated);
    EXPECT_TRUE(g_hook.refused);
    EXPECT_NE(std::string::npos, err.find("double free")) << err;
    EXPECT_TRUE(g_hook.disjoint);
    g_hook = PurgeHook();
    ASSERT_VALID();
    for (char *p : {pin, fill})
        ASSERT_EQ(0, buddy_free(p));
    buddy_reset_for_tests(); // before the ops table goes away
}

// SLABCACHE_DECAY_MS is read through one function at first use: checked in a child that
// re-runs this binary with the variable set.
TEST(BuddyDecayEnvChild, Reads)
{
    const char *want = getenv("BUDDY_TEST_EXPECT_DECAY");
    if (!want)
        GTEST_SKIP() << "run by DecayTimeComesFromTheEnvironment";
    EXPECT_EQ(strtoul(want, nullptr, 10), buddy_set_decay_ms(BUDDY_DECAY_NEVER));
    heap_opt_announce();  // what the heap's first extent does: a malformed value's one line
}

std::string RunChildWithDecay(const char *value, const char *expect, int *status)
{
    std::string out = ::testing::TempDir() + "/decay_env_child.txt";
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("SLABCACHE_DECAY_MS", value, 1);
        setenv("BUDDY_TEST_EXPECT_DECAY", expect, 1);
        execl("/proc/self/exe", "buddy_test", "--gtest_filter=BuddyDecayEnvChild.*",
              (char *)nullptr);
        _exit(127);
    }
    waitpid(pid, status, 0);
    FILE *f = fopen(out.c_str(), "r");
    std::string text;
    char buf[512];
    while (f && fgets(buf, sizeof buf, f))
        text += buf;
    if (f)
        fclose(f);
    return text;
}

TEST(BuddyDecay, DecayTimeComesFromTheEnvironment)
{
    int status = -1;
    std::string out = RunChildWithDecay("1234", "1234", &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(std::string::npos, out.find("1 test")) << out;
    out = RunChildWithDecay("12x", std::to_string(BUDDY_DECAY_MS_DEFAULT).c_str(), &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(std::string::npos, out.find("slabcache: SLABCACHE_DECAY_MS=12x: expected an "
                                          "integer from 0 to 4294967295; using the default"))
        << out;
}


TEST_F(BuddyTest, ResizeRefusesBusyNeighboursUpperHalvesAndBadPointers)
{
    char *a = (char *)buddy_alloc(0, BUDDY_TAG_LARGE);
    char *b = (char *)buddy_alloc(0, BUDDY_TAG_LARGE);
    ASSERT_EQ(a + kPage, b);
    std::vector<size_t> before = Buddyinfo();
    errno = 0;
    EXPECT_EQ(-1, buddy_resize(a, 1)) << "its buddy is allocated";
    EXPECT_EQ(ENOMEM, errno);
    errno = 0;
    EXPECT_EQ(-1, buddy_resize(b, 1)) << "an upper half cannot grow in place";
    EXPECT_EQ(ENOMEM, errno);
    ASSERT_EQ(0, buddy_free(b));
    char *c = (char *)buddy_alloc(1, BUDDY_TAG_USER); // pages 2-3
    ASSERT_EQ(a + 2 * kPage, c);
    EXPECT_EQ(-1, buddy_resize(a, 2)) << "order 0 is free but order 1 is not: nothing changes";
    EXPECT_EQ(0u, buddy_lookup(a + kPage, nullptr));
    for (void *bad : {(void *)(a + 1), (void *)(c + kPage), (void *)&before, (void *)nullptr}) {
        errno = 0;
        EXPECT_EQ(-1, buddy_resize(bad, 1)) << bad;
        EXPECT_EQ(EINVAL, errno) << bad;
    }
    errno = 0;
    EXPECT_EQ(-1, buddy_resize(a, kMax + 1));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(-1, buddy_resize(a + kPage, 0)) << "a free page is not a block";
    EXPECT_EQ(EINVAL, errno);
    void *huge = buddy_alloc_bytes(kExtent + 1, BUDDY_TAG_LARGE);
    ASSERT_NE(nullptr, huge);
    errno = 0;
    EXPECT_EQ(-1, buddy_resize(huge, kMax));
    EXPECT_EQ(EINVAL, errno);
    ASSERT_VALID();
    ASSERT_EQ(0, buddy_free(huge));
    ASSERT_EQ(0, buddy_free(c));
    ASSERT_EQ(0, buddy_free(a));
}

TEST_F(BuddyTest, LowerHalfIsKeptSoOrderZeroPagesAreConsecutive)
{
    std::vector<char *> pages;
    for (int i = 0; i < 8; i++) {
        pages.push_back((char *)buddy_alloc(0, BUDDY_TAG_USER));
        ASSERT_NE(nullptr, pages.back());
        ASSERT_VALID();
    }
    EXPECT_EQ(0u, (uintptr_t)pages[0] % kExtent);
    for (int i = 1; i < 8; i++)
        EXPECT_EQ(pages[0] + i * kPage, pages[i]);
    // Pages 0..7 used: free blocks of orders 3..9, one each.
    std::vector<size_t> want(kMax + 1);
    for (unsigned j = 3; j < kMax; j++)
        want[j] = 1;
    EXPECT_EQ(want, Buddyinfo());
    for (char *p : pages)
        ASSERT_EQ(0, buddy_free(p));
}

TEST_F(BuddyTest, EveryPairOfOrdersFreedInBothOrders)
{
    for (unsigned a = 0; a <= kMax; a++) {
        for (unsigned b = 0; b <= kMax; b++) {
            for (int flip = 0; flip < 2; flip++) {
                Live live;
                void *pa = buddy_alloc(a, BUDDY_TAG_USER);
                void *pb = buddy_alloc(b, BUDDY_TAG_SLAB);
                ASSERT_TRUE(pa && pb);
                live[(uintptr_t)pa] = a;
                live[(uintptr_t)pb] = b;
                ASSERT_VALID();
                ExpectCountsMatch(live);
                void *first = flip ? pb : pa, *second = flip ? pa : pb;
                ASSERT_EQ(0, buddy_free(first));
                live.erase((uintptr_t)first);
                ASSERT_VALID();
                ExpectCountsMatch(live);
                ASSERT_EQ(0, buddy_free(second));
                ASSERT_VALID();
                ExpectCountsMatch(Live{});
            }
        }
    }
}

// ------------------------------------------------------------------ exhaustion of one extent

std::vector<size_t> FreeOrder(int pattern)
{
    std::vector<size_t> idx(BUDDY_PAGES_PER_EXTENT);
    for (size_t i = 0; i < idx.size(); i++)
        idx[i] = i;
    switch (pattern) {
    case 0: // ascending
        break;
    case 1: // descending
        std::reverse(idx.begin(), idx.end());
        break;
    case 2: // even pages, then odd: nothing merges until the second half
        std::stable_partition(idx.begin(), idx.end(), [](size_t i) { return i % 2 == 0; });
        break;
    case 3: // bit-reversed: maximally scattered
        for (size_t i = 0; i < idx.size(); i++) {
            size_t r = 0;
            for (unsigned b = 0; b < kMax; b++)
                r |= ((i >> b) & 1) << (kMax - 1 - b);
            idx[i] = r;
        }
        break;
    default: { // shuffled, fixed seed
        std::mt19937 rng(pattern);
        std::shuffle(idx.begin(), idx.end(), rng);
    }
    }
    return idx;
}

TEST_F(BuddyTest, ExhaustOneExtentWithPagesThenFreeInSeveralOrders)
{
    for (int pattern = 0; pattern < 6; pattern++) {
        SCOPED_TRACE(pattern);
        std::vector<char *> page(BUDDY_PAGES_PER_EXTENT);
        Live live;
        for (size_t i = 0; i < page.size(); i++) {
            page[i] = (char *)buddy_alloc(0, BUDDY_TAG_USER);
            ASSERT_NE(nullptr, page[i]);
            *page[i] = (char)i;
            live[(uintptr_t)page[i]] = 0;
        }
        ASSERT_VALID();
        std::sort(page.begin(), page.end());
        ASSERT_EQ(ExtentOf(page[0]), ExtentOf(page.back())) << "one extent serves 1024 pages";
        for (size_t i = 1; i < page.size(); i++)
            ASSERT_EQ(page[i - 1] + kPage, page[i]);
        EXPECT_EQ(std::vector<size_t>(kMax + 1), Buddyinfo()) << "extent exhausted";
        struct buddy_stats st;
        buddy_get_stats(&st);
        EXPECT_EQ(1u, st.extents);
        EXPECT_EQ(0u, st.free_bytes);
        for (size_t i : FreeOrder(pattern)) {
            ASSERT_EQ(0, buddy_free(page[i]));
            live.erase((uintptr_t)page[i]);
            ASSERT_VALID();
            ExpectCountsMatch(live);
            if (::testing::Test::HasFailure())
                return;
        }
        buddy_get_stats(&st);
        EXPECT_EQ(kExtent, st.free_bytes);
        EXPECT_EQ(0u, st.alloc_bytes);
    }
}

// ------------------------------------------------------------------ random vs model

uint64_t Pattern(uintptr_t head, size_t page) { return head * 0x9e3779b97f4a7c15ull ^ page; }

void Fill(void *p, unsigned order)
{
    for (size_t i = 0; i < ((size_t)1 << order); i++) {
        uint64_t *w = (uint64_t *)((char *)p + i * kPage);
        w[0] = Pattern((uintptr_t)p, i);
        w[kPage / 8 - 1] = ~Pattern((uintptr_t)p, i);
    }
}

bool Check(const void *p, unsigned order)
{
    for (size_t i = 0; i < ((size_t)1 << order); i++) {
        const uint64_t *w = (const uint64_t *)((const char *)p + i * kPage);
        if (w[0] != Pattern((uintptr_t)p, i) || w[kPage / 8 - 1] != ~Pattern((uintptr_t)p, i))
            return false;
    }
    return true;
}

unsigned RandomOrder(std::mt19937_64 &rng)
{
    // Mostly small: P(order = k) ~ 2^-k, capped at kMax.
    unsigned k = 0;
    while (k < kMax && (rng() & 1))
        k++;
    return k;
}

void RandomRun(uint64_t seed, int ops)
{
    std::mt19937_64 rng(seed);
    Live live;
    size_t live_bytes = 0;
    for (int step = 0; step < ops; step++) {
        bool do_alloc = live.empty() || (live_bytes < (64u << 20) && rng() % 100 < 55);
        if (do_alloc) {
            unsigned k = RandomOrder(rng);
            uint16_t tag = 1 + rng() % 3;
            void *p = buddy_alloc(k, tag);
            ASSERT_NE(nullptr, p) << "step " << step;
            uintptr_t a = (uintptr_t)p;
            ASSERT_EQ(0u, a % OrderBytes(k)) << "step " << step;
            auto next = live.lower_bound(a);
            if (next != live.end()) {
                ASSERT_GE(next->first, a + OrderBytes(k)) << "overlap, step " << step;
            }
            if (next != live.begin()) {
                auto prev = std::prev(next);
                ASSERT_LE(prev->first + OrderBytes(prev->second), a) << "overlap, step " << step;
            }
            buddy_block_info info;
            size_t pg = rng() % ((size_t)1 << k);
            ASSERT_TRUE(buddy_lookup((char *)p + pg * kPage + rng() % kPage, &info));
            ASSERT_EQ(p, info.head);
            ASSERT_EQ(k, info.order);
            ASSERT_EQ(tag, info.tag);
            Fill(p, k);
            live[a] = k;
            live_bytes += OrderBytes(k);
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            ASSERT_TRUE(Check((void *)it->first, it->second)) << "corrupted, step " << step;
            ASSERT_EQ(0, buddy_free((void *)it->first));
            live_bytes -= OrderBytes(it->second);
            live.erase(it);
        }
        if (step < 3000 || step % 997 == 0) {
            ASSERT_VALID() << "step " << step;
        }
        if (step % 9973 == 0)
            ExpectCountsMatch(live);
    }
    ExpectCountsMatch(live);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(live_bytes, st.alloc_bytes);
    for (auto &[a, k] : live) {
        ASSERT_TRUE(Check((void *)a, k));
        ASSERT_EQ(0, buddy_free((void *)a));
    }
    ASSERT_VALID();
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.alloc_bytes);
    EXPECT_LE(st.extents, kSpare) << "wholly free extents are returned";
}

// ------------------------------------------------------------------ runs

// A run is exactly the pages asked for, at any page: every one of its pages finds its head
// and size, none of them is a buddy block to buddy_block_of (slabs never are runs), and
// freeing it gives every page back, merged.
TEST_F(BuddyTest, RunsAreExactlyThePagesAskedForAndMergeBackWhenFreed)
{
    std::vector<std::pair<char *, size_t>> runs;
    for (size_t n : {1, 3, 5, 7, 9, 100, 257, 511, 513, 1000, 1024}) {
        char *p = static_cast<char *>(buddy_alloc_run(n, BUDDY_TAG_USER, nullptr));
        ASSERT_NE(nullptr, p) << n;
        ASSERT_EQ(0u, (uintptr_t)p % kPage);
        for (size_t i = 0; i < n; i++) {
            buddy_block_info info;
            ASSERT_TRUE(buddy_lookup(p + i * kPage + (i * 97) % kPage, &info)) << n << " " << i;
            ASSERT_EQ(p, info.head);
            ASSERT_EQ(n * kPage, info.size);
            ASSERT_EQ((unsigned)BUDDY_ORDER_RUN, info.order);
            ASSERT_EQ(BUDDY_TAG_USER, info.tag);
            void *head;
            uint16_t tag;
            ASSERT_FALSE(buddy_block_of(p + i * kPage, &head, &tag));
        }
        memset(p, 0x5a, n * kPage);
        runs.push_back({p, n});
        ASSERT_VALID();
    }
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(runs.size(), st.run_allocs);
    size_t bytes = 0;
    for (auto &[p, n] : runs)
        bytes += n * kPage;
    EXPECT_EQ(bytes, st.alloc_bytes);
    for (auto &[p, n] : runs) {
        ASSERT_EQ(0, buddy_free(p));
        ASSERT_VALID();
    }
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.alloc_bytes);
    EXPECT_LE(st.extents, kSpare) << "every page merged back into whole extents";
}

// Best fit: a run goes to the smallest stretch of free pages that holds it, not the first.
TEST_F(BuddyTest, RunsGoToTheSmallestHoleThatHoldsThem)
{
    // One extent cut into runs, then holes of 9, 3 and 5 pages opened in that order.
    std::vector<char *> runs;
    for (size_t n : {2, 9, 2, 3, 2, 5, 2}) {
        runs.push_back(static_cast<char *>(buddy_alloc_run(n, BUDDY_TAG_USER, nullptr)));
        ASSERT_NE(nullptr, runs.back());
    }
    char *rest = static_cast<char *>(buddy_alloc_run(1024 - 25, BUDDY_TAG_USER, nullptr));
    ASSERT_NE(nullptr, rest);
    ASSERT_EQ(ExtentOf(rest), ExtentOf(runs[0])) << "the extent is full now";
    ASSERT_EQ(0, buddy_free(runs[1]));
    ASSERT_EQ(0, buddy_free(runs[3]));
    ASSERT_EQ(0, buddy_free(runs[5]));
    EXPECT_EQ(runs[3], buddy_alloc_run(3, BUDDY_TAG_USER, nullptr)) << "the 3-page hole";
    EXPECT_EQ(runs[5], buddy_alloc_run(4, BUDDY_TAG_USER, nullptr)) << "the 5-page hole";
    EXPECT_EQ(runs[1], buddy_alloc_run(6, BUDDY_TAG_USER, nullptr)) << "the 9-page hole";
    char *elsewhere = static_cast<char *>(buddy_alloc_run(4, BUDDY_TAG_USER, nullptr));
    EXPECT_NE(ExtentOf(elsewhere), ExtentOf(runs[0])) << "holes of 1 and 3 pages are left";
    ASSERT_VALID();
}

// A run that will grow (realloc) is placed where `room` pages are free, at the start of that
// stretch, when such a stretch exists; a plain run takes the tightest hole.
TEST_F(BuddyTest, RunsWithRoomGoWhereTheyCanGrow)
{
    std::vector<char *> runs;
    for (size_t n : {2, 4, 2, 20, 2}) {
        runs.push_back(static_cast<char *>(buddy_alloc_run(n, BUDDY_TAG_USER, nullptr)));
        ASSERT_NE(nullptr, runs.back());
    }
    char *rest = static_cast<char *>(buddy_alloc_run(1024 - 30, BUDDY_TAG_USER, nullptr));
    ASSERT_EQ(ExtentOf(rest), ExtentOf(runs[0]));
    ASSERT_EQ(0, buddy_free(runs[1]));
    ASSERT_EQ(0, buddy_free(runs[3]));
    char *grows = static_cast<char *>(buddy_alloc_run_room(3, 6, BUDDY_TAG_USER, nullptr));
    EXPECT_EQ(runs[3], grows) << "the 20-page hole has room for 6";
    ASSERT_EQ(0, buddy_resize_run(grows, 6)) << "and it grows there in place";
    char *tight = static_cast<char *>(buddy_alloc_run(3, BUDDY_TAG_USER, nullptr));
    EXPECT_EQ(runs[1], tight) << "the 4-page hole";
    char *no_room = static_cast<char *>(buddy_alloc_run_room(1, 2000, BUDDY_TAG_USER, nullptr));
    EXPECT_NE(nullptr, no_room) << "room is capped at an extent and only a preference";
    ASSERT_VALID();
}

// Resizing a run in place: it grows into the free pages right after it, and only into them;
// it shrinks by freeing its last pages.  buddy_resize refuses runs and buddy_resize_run
// buddy blocks.
TEST_F(BuddyTest, RunsResizeInPlace)
{
    char *p = static_cast<char *>(buddy_alloc_run(10, BUDDY_TAG_USER, nullptr));
    ASSERT_NE(nullptr, p);
    memset(p, 7, 10 * kPage);
    ASSERT_EQ(0, buddy_resize_run(p, 300));
    buddy_block_info info;
    ASSERT_TRUE(buddy_lookup(p + 299 * kPage, &info));
    EXPECT_EQ(p, info.head);
    EXPECT_EQ(300 * kPage, info.size);
    EXPECT_EQ(7, p[10 * kPage - 1]) << "contents kept";
    ASSERT_VALID();
    char *q = static_cast<char *>(buddy_alloc_run(1, BUDDY_TAG_USER, nullptr));
    ASSERT_EQ(p + 300 * kPage, q) << "best fit: the page right after it";
    errno = 0;
    EXPECT_EQ(-1, buddy_resize_run(p, 301));
    EXPECT_EQ(ENOMEM, errno);
    ASSERT_TRUE(buddy_lookup(p, &info));
    EXPECT_EQ(300 * kPage, info.size) << "a refused growth changes nothing";
    ASSERT_EQ(0, buddy_resize_run(p, 2));
    ASSERT_TRUE(buddy_lookup(p, &info));
    EXPECT_EQ(2 * kPage, info.size);
    EXPECT_FALSE(buddy_lookup(p + 2 * kPage, &info)) << "the pages given back are free";
    ASSERT_VALID();
    errno = 0;
    EXPECT_EQ(-1, buddy_resize(p, 3));
    EXPECT_EQ(EINVAL, errno);
    void *b = buddy_alloc(2, BUDDY_TAG_USER);
    errno = 0;
    EXPECT_EQ(-1, buddy_resize_run(b, 5));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(-1, buddy_resize_run(p + kPage, 5)) << "not the head";
    EXPECT_EQ(-1, buddy_resize_run(p, 0));
    ASSERT_EQ(0, buddy_free(b));
    ASSERT_EQ(0, buddy_free(q));
    ASSERT_EQ(0, buddy_free(p));
    ASSERT_VALID();
}

// Misuse of runs: an interior pointer and a double free are refused and change nothing; a
// freed run's head is known as such until its page is allocated again.
TEST_F(BuddyTest, RunMisuseIsRefused)
{
    char *p = static_cast<char *>(buddy_alloc_run(7, BUDDY_TAG_USER, nullptr));
    ASSERT_NE(nullptr, p);
    EXPECT_FALSE(buddy_freed_head(p));
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(-1, buddy_free(p + 3 * kPage));
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("interior pointer of the block at")) << err;
    ASSERT_VALID();
    ASSERT_EQ(0, buddy_free(p));
    EXPECT_TRUE(buddy_freed_head(p));
    EXPECT_FALSE(buddy_freed_head(p + kPage)) << "only the head of what was freed";
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(-1, buddy_free(p));
    err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("double free")) << err;
    ASSERT_VALID();
    char *again = static_cast<char *>(buddy_alloc_run(7, BUDDY_TAG_USER, nullptr));
    ASSERT_EQ(p, again) << "best fit: the same pages";
    EXPECT_FALSE(buddy_freed_head(p)) << "allocated again";
    EXPECT_EQ(nullptr, buddy_alloc_run(0, BUDDY_TAG_USER, nullptr));
    EXPECT_EQ(nullptr, buddy_alloc_run(1025, BUDDY_TAG_USER, nullptr));
    EXPECT_EQ(nullptr, buddy_alloc_run(1, BUDDY_TAG_NONE, nullptr));
    ASSERT_EQ(0, buddy_free(again));
}

// Runs and buddy blocks mixed at random, freed in random order: never an overlap, contents
// kept, every invariant at every step of the first thousands, all of it back at the end.
void RandomRunsAndBlocks(uint64_t seed, int ops)
{
    std::mt19937_64 rng(seed);
    std::map<uintptr_t, size_t> live; // head -> pages
    for (int step = 0; step < ops; step++) {
        if (live.empty() || (live.size() < 3000 && rng() % 100 < 55)) {
            bool run = rng() % 2;
            size_t n = run ? 1 + rng() % (rng() % 8 ? 64 : 1024) : 0;
            unsigned k = RandomOrder(rng);
            char *p = static_cast<char *>(run ? buddy_alloc_run(n, BUDDY_TAG_USER, nullptr)
                                              : buddy_alloc(k, BUDDY_TAG_USER));
            if (!run)
                n = (size_t)1 << k;
            ASSERT_NE(nullptr, p) << "step " << step;
            uintptr_t a = (uintptr_t)p;
            auto next = live.lower_bound(a);
            if (next != live.end()) {
                ASSERT_GE(next->first, a + n * kPage) << "overlap, step " << step;
            }
            if (next != live.begin()) {
                auto prev = std::prev(next);
                ASSERT_LE(prev->first + prev->second * kPage, a) << "overlap, step " << step;
            }
            for (size_t i = 0; i < n; i++)
                *(uint64_t *)(p + i * kPage) = Pattern(a, i);
            live[a] = n;
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            for (size_t i = 0; i < it->second; i++)
                ASSERT_EQ(Pattern(it->first, i), *(uint64_t *)(it->first + i * kPage))
                    << "corrupted, step " << step;
            ASSERT_EQ(0, buddy_free((void *)it->first));
            live.erase(it);
        }
        if (step < 2000 || step % 499 == 0) {
            ASSERT_VALID() << "step " << step;
        }
    }
    for (auto &[a, n] : live)
        ASSERT_EQ(0, buddy_free((void *)a));
    ASSERT_VALID();
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.alloc_bytes);
    EXPECT_LE(st.extents, kSpare);
}

TEST_F(BuddyTest, RandomRunsAndBlocksSeed1) { RandomRunsAndBlocks(1, 40000); }
TEST_F(BuddyTest, RandomRunsAndBlocksSeed2) { RandomRunsAndBlocks(77, 40000); }

TEST_F(BuddyTest, RandomSequenceSeed1) { RandomRun(1, 200000); }
TEST_F(BuddyTest, RandomSequenceSeed2) { RandomRun(2, 200000); }
TEST_F(BuddyTest, RandomSequenceSeed3) { RandomRun(0xdeadbeef, 200000); }

// ------------------------------------------------------------------ misuse

// Runs buddy_free(p) expecting a refusal; returns the stderr text.  Checks that nothing
// changed: counters (but invalid_frees), buddyinfo, validate.
std::string ExpectRefused(void *p)
{
    struct buddy_stats before, after;
    buddy_get_stats(&before);
    std::vector<size_t> info = Buddyinfo();
    ::testing::internal::CaptureStderr();
    errno = 0;
    int rc = buddy_free(p);
    int e = errno;
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(-1, rc);
    EXPECT_EQ(EINVAL, e);
    EXPECT_EQ(0u, err.find("slabcache: buddy: invalid free")) << err;
    EXPECT_EQ(1u, std::count(err.begin(), err.end(), '\n')) << "one line: " << err;
    buddy_get_stats(&after);
    EXPECT_EQ(before.invalid_frees + 1, after.invalid_frees);
    after.invalid_frees = before.invalid_frees;
    EXPECT_EQ(0, memcmp(&before, &after, sizeof before)) << "counters changed";
    EXPECT_EQ(info, Buddyinfo());
    EXPECT_EQ(0, buddy_validate());
    return err;
}

TEST_F(BuddyTest, InteriorPointersAreRefused)
{
    char *p = (char *)buddy_alloc(3, BUDDY_TAG_USER);
    ASSERT_NE(nullptr, p);
    Fill(p, 3);
    ExpectRefused(p + 1);                         // misaligned
    std::string err = ExpectRefused(p + kPage);   // ALLOC_TAIL page
    EXPECT_NE(std::string::npos, err.find("interior")) << err;
    ExpectRefused(p + 7 * kPage + 100);
    EXPECT_TRUE(buddy_lookup(p, nullptr));
    EXPECT_TRUE(Check(p, 3));
    ASSERT_EQ(0, buddy_free(p));
}

TEST_F(BuddyTest, DoubleFreeIsRefused)
{
    char *a = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    char *b = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    char *c = (char *)buddy_alloc(2, BUDDY_TAG_USER);
    ASSERT_EQ(a + kPage, b);
    ASSERT_EQ(0, buddy_free(c));
    std::string err = ExpectRefused(c); // still a FREE_HEAD
    EXPECT_NE(std::string::npos, err.find("double free")) << err;
    ASSERT_EQ(0, buddy_free(b));
    ASSERT_EQ(0, buddy_free(a)); // merges: b is now a FREE_TAIL of a larger block
    err = ExpectRefused(b);
    EXPECT_NE(std::string::npos, err.find("double free")) << err;
    err = ExpectRefused(a); // whole extent free (the spare)
    EXPECT_NE(std::string::npos, err.find("double free")) << err;
}

TEST_F(BuddyTest, ForeignAndNullPointersAreRefused)
{
    void *keep = buddy_alloc(0, BUDDY_TAG_USER); // so the buddy holds something
    ASSERT_NE(nullptr, keep);
    int on_stack = 0;
    ExpectRefused(&on_stack);
    void *m = malloc(64);
    ExpectRefused(m);
    free(m);
    void *map = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(MAP_FAILED, map);
    ExpectRefused(map);
    munmap(map, kPage);
    ExpectRefused(nullptr);
    ExpectRefused((void *)(uintptr_t)1);
    ASSERT_EQ(0, buddy_free(keep));
}

TEST_F(BuddyTest, PointerIntoHugeBlockMiddleIsRefused)
{
    char *h = (char *)buddy_alloc_bytes(kExtent + 5 * kPage, BUDDY_TAG_LARGE);
    ASSERT_NE(nullptr, h);
    std::string err = ExpectRefused(h + kExtent);
    EXPECT_NE(std::string::npos, err.find("huge")) << err;
    ExpectRefused(h + 1);
    EXPECT_TRUE(buddy_lookup(h, nullptr));
    ASSERT_EQ(0, buddy_free(h));
    ExpectRefused(h); // double free of a huge block: no longer ours at all
}

TEST_F(BuddyTest, BadArgumentsFailWithEinval)
{
    errno = 0;
    EXPECT_EQ(nullptr, buddy_alloc(kMax + 1, BUDDY_TAG_USER));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, buddy_alloc(0, BUDDY_TAG_NONE));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, buddy_alloc_bytes(0, BUDDY_TAG_USER));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, buddy_alloc_bytes(SIZE_MAX, BUDDY_TAG_USER));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, buddy_alloc_bytes(kExtent * 2, BUDDY_TAG_NONE));
    EXPECT_EQ(EINVAL, errno);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(5u, st.failures);
    EXPECT_EQ(0u, st.allocs);
    EXPECT_EQ(0u, st.extents);
}

// An OS that refuses everything: growth fails with ENOMEM and changes nothing.
void *FailSbrk(intptr_t) { errno = ENOMEM; return (void *)-1; }
void *FailMmap(void *, size_t, int, int, int, off_t) { errno = ENOMEM; return MAP_FAILED; }
int FailMunmap(void *, size_t) { errno = EINVAL; return -1; }
int FailMadvise(void *, size_t, int) { errno = EINVAL; return -1; }

TEST_F(BuddyTest, GrowthFailureIsEnomemAndChangesNothing)
{
    static const heap_os_ops fail = {FailSbrk, FailMmap, FailMunmap, FailMadvise};
    ASSERT_EQ(0, heap_set_os_ops(&fail));
    errno = 0;
    void *p = buddy_alloc(0, BUDDY_TAG_USER);
    int e = errno;
    void *h = buddy_alloc_bytes(3 * kExtent, BUDDY_TAG_USER);
    ASSERT_EQ(0, heap_set_os_ops(nullptr));
    EXPECT_EQ(nullptr, p);
    EXPECT_EQ(ENOMEM, e);
    EXPECT_EQ(nullptr, h);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(2u, st.failures);
    EXPECT_EQ(0u, st.extents);
    EXPECT_EQ(0u, st.free_bytes);
    ASSERT_VALID();
    p = buddy_alloc(0, BUDDY_TAG_USER); // and it recovers
    ASSERT_NE(nullptr, p);
    ASSERT_EQ(0, buddy_free(p));
}

// ------------------------------------------------------------------ huge, lookup

// Freed huge blocks stay parked up to the most huge bytes live in this decay epoch and the
// one before: a program that frees its huge blocks and allocates the same again (96 MiB
// here, past the 64 MiB floor) gets them back with no mapping and no unmapping; two decay
// epochs of no huge activity later, a slow path of the layer unmaps them all.  (Capped at the
// bytes still live, the frees would unmap half of them and the reallocation map them again.)
TEST_F(BuddyTest, FreedHugeBlocksStayParkedUpToTheirRecentPeak)
{
    UseFakeClock(100);
    const size_t size = 6 * kExtent; // 24 MiB
    std::vector<void *> v;
    for (int i = 0; i < 4; i++) {
        v.push_back(buddy_alloc_bytes(size, BUDDY_TAG_LARGE));
        ASSERT_NE(nullptr, v.back());
    }
    heap_stats h0, h1;
    heap_get_stats(&h0);
    for (void *p : v)
        ASSERT_EQ(0, buddy_free(p));
    for (void *&p : v) {
        p = buddy_alloc_bytes(size, BUDDY_TAG_LARGE);
        ASSERT_NE(nullptr, p);
    }
    heap_get_stats(&h1);
    EXPECT_EQ(h0.mmap_calls, h1.mmap_calls) << "every block came back from the parked ones";
    EXPECT_EQ(h0.munmap_calls, h1.munmap_calls) << "none was unmapped";
    EXPECT_EQ(4u, h1.parked_reuses - h0.parked_reuses);
    ASSERT_VALID();
    for (void *p : v)
        ASSERT_EQ(0, buddy_free(p));
    heap_get_stats(&h1);
    EXPECT_EQ(4u, h1.parked_extents);
    g_clock_ms += 250; // two epoch starts later
    buddy_tick();
    heap_get_stats(&h1);
    EXPECT_EQ(0u, h1.parked_extents) << "decayed";
    EXPECT_EQ(0u, h1.mmap_bytes);
    ASSERT_VALID();
}

TEST_F(BuddyTest, HugeBlocksAreDedicatedExtents)
{
    void *four = buddy_alloc_bytes(kExtent, BUDDY_TAG_USER); // largest order, not huge
    ASSERT_NE(nullptr, four);
    buddy_block_info info;
    ASSERT_TRUE(buddy_lookup(four, &info));
    EXPECT_EQ(kMax, info.order);
    size_t sizes[] = {kExtent + 1, 5 * kExtent / 2, 3 * kExtent};
    std::vector<char *> huge;
    for (size_t s : sizes) {
        char *h = (char *)buddy_alloc_bytes(s, BUDDY_TAG_LARGE);
        ASSERT_NE(nullptr, h);
        EXPECT_EQ(0u, (uintptr_t)h % kExtent);
        for (size_t off = 0; off < s; off += kPage)
            h[off] = 1;
        for (size_t off : {(size_t)0, s / 2, s - 1}) {
            ASSERT_TRUE(buddy_lookup(h + off, &info));
            EXPECT_EQ(h, info.head);
            EXPECT_EQ((unsigned)BUDDY_ORDER_HUGE, info.order);
            EXPECT_GE(info.size, s);
            EXPECT_LT(info.size, s + kExtent);
            EXPECT_EQ(BUDDY_TAG_LARGE, info.tag);
        }
        huge.push_back(h);
        ASSERT_VALID();
    }
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(3u, st.huge_blocks);
    EXPECT_GE(st.huge_bytes, sizes[0] + sizes[1] + sizes[2]);
    EXPECT_EQ(st.huge_bytes + kExtent, st.alloc_bytes);
    for (char *h : huge) {
        ASSERT_EQ(0, buddy_free(h));
        EXPECT_FALSE(buddy_lookup(h, nullptr));
        ASSERT_VALID();
    }
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.huge_blocks);
    EXPECT_EQ(0u, st.huge_bytes);
    EXPECT_EQ(kExtent, st.alloc_bytes);
    ASSERT_EQ(0, buddy_free(four));
}

TEST_F(BuddyTest, LookupFromEveryPageOfEveryOrder)
{
    for (unsigned k = 0; k <= kMax; k++) {
        uint16_t tag = k % 2 ? BUDDY_TAG_SLAB : BUDDY_TAG_LARGE;
        char *p = (char *)buddy_alloc(k, tag);
        ASSERT_NE(nullptr, p);
        for (size_t i = 0; i < ((size_t)1 << k); i++) {
            for (size_t off : {(size_t)0, kPage / 2, kPage - 1}) {
                buddy_block_info info;
                ASSERT_TRUE(buddy_lookup(p + i * kPage + off, &info)) << k << " " << i;
                ASSERT_EQ(p, info.head);
                ASSERT_EQ(OrderBytes(k), info.size);
                ASSERT_EQ(k, info.order);
                ASSERT_EQ(tag, info.tag);
            }
        }
        if (k < kMax) { // the next block up is free: no answer for free pages
            EXPECT_FALSE(buddy_lookup(p + OrderBytes(k), nullptr));
        }
        ASSERT_EQ(0, buddy_free(p));
        EXPECT_FALSE(buddy_lookup(p, nullptr));
        ASSERT_VALID();
    }
    int on_stack;
    EXPECT_FALSE(buddy_lookup(&on_stack, nullptr));
    EXPECT_FALSE(buddy_lookup(nullptr, nullptr));
}

// ------------------------------------------------------------------ returning memory

// A madvise that fails leaves its pages dirty.  A trim (and a decay pass) must stop there
// rather than take the same blocks again: a refusing OS never makes the allocator loop.
std::atomic<bool> refuse_madvise;
std::atomic<int> refused_madvises;
int RefuseMadvise(void *addr, size_t len, int advice)
{
    if (!refuse_madvise)
        return madvise(addr, len, advice);
    refused_madvises++;
    errno = EAGAIN;
    return -1;
}

TEST_F(BuddyTest, FailedPurgeEndsTheTrimAndLeavesThePagesDirty)
{
    heap_os_ops ops = heap_os_real;
    ops.madvise = RefuseMadvise;
    ASSERT_EQ(0, heap_set_os_ops(&ops));
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER);
    char *a = (char *)buddy_alloc(3, BUDDY_TAG_USER);
    ASSERT_TRUE(pin && a);
    memset(a, 0x77, OrderBytes(3));
    ASSERT_EQ(0, buddy_free(a));
    struct buddy_stats st0, st1;
    buddy_get_stats(&st0);
    ASSERT_EQ(OrderBytes(3), st0.dirty_free_bytes);
    refuse_madvise = true;
    refused_madvises = 0;
    EXPECT_EQ(0u, buddy_trim(1));
    EXPECT_EQ(1, refused_madvises.load()) << "one run of dirty pages, tried once";
    buddy_set_decay_ms(0); // decay 0: every slow path runs a pass over everything
    refused_madvises = 0;
    buddy_tick();
    EXPECT_EQ(1, refused_madvises.load()) << "the decay pass stops at the failure too";
    buddy_set_decay_ms(BUDDY_DECAY_NEVER);
    refuse_madvise = false;
    buddy_get_stats(&st1);
    EXPECT_EQ(OrderBytes(3), st1.dirty_free_bytes) << "unpurged pages stay dirty";
    ASSERT_VALID();
    EXPECT_EQ(OrderBytes(3), buddy_trim(1)) << "and a later trim purges them";
    ASSERT_EQ(0, buddy_free(pin));
    buddy_reset_for_tests(); // before the ops table goes away
}

TEST_F(BuddyTest, WhollyFreeExtentsBeyondTheSpareGoBackAtOnce)
{
    void *x[3];
    for (auto &p : x)
        ASSERT_NE(nullptr, p = buddy_alloc(kMax, BUDDY_TAG_USER));
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(3u, st.extents);
    for (auto p : x) {
        ASSERT_EQ(0, buddy_free(p));
        ASSERT_VALID();
    }
    buddy_get_stats(&st);
    EXPECT_EQ(kSpare, st.extents);
    EXPECT_EQ(kSpare, Buddyinfo()[kMax]);
    EXPECT_EQ(kExtent, buddy_trim(0));
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.extents);
    EXPECT_EQ(0u, st.free_bytes);
    EXPECT_EQ(0u, buddy_trim(0));
}

TEST_F(BuddyTest, TrimPurgesFreeBlocksOnceAndTheyReadAsZero)
{
    char *whole = (char *)buddy_alloc(kMax, BUDDY_TAG_USER);
    ASSERT_NE(nullptr, whole);
    memset(whole, 0xab, kExtent);
    ASSERT_EQ(0, buddy_free(whole));
    char *page = (char *)buddy_alloc(0, BUDDY_TAG_USER); // splits: free orders 0..9 remain
    ASSERT_EQ(whole, page);
    struct buddy_stats st0, st1;
    buddy_get_stats(&st0);
    EXPECT_EQ(kExtent - kPage, st0.dirty_free_bytes);
    EXPECT_EQ(kExtent - kPage, buddy_trim(1)) << "every free page, whatever its block's order";
    ASSERT_VALID();
    buddy_get_stats(&st1);
    EXPECT_EQ(0u, st1.dirty_free_bytes);
    // The ten free blocks are adjacent: one madvise call covers them all.
    EXPECT_EQ(st0.purge_calls + 1, st1.purge_calls);
    EXPECT_EQ(0u, buddy_trim(1)) << "already purged pages are not purged again";
    buddy_get_stats(&st0);
    EXPECT_EQ(st1.purge_calls, st0.purge_calls) << "and no system call is made";
    // Splitting a clean block keeps both halves clean: still nothing to do.
    char *o4 = (char *)buddy_alloc(4, BUDDY_TAG_USER);
    char *o5 = (char *)buddy_alloc(4, BUDDY_TAG_USER);
    ASSERT_TRUE(o4 && o5);
    EXPECT_EQ(0u, buddy_trim(1));
    // Every page of a clean block reads as zero, its first page too (nothing is ever
    // written into free memory), and buddy_alloc_clean says so.
    bool clean = false;
    char *big = (char *)buddy_alloc_clean(kMax - 1, BUDDY_TAG_USER, &clean);
    ASSERT_EQ(whole + kExtent / 2, big);
    EXPECT_TRUE(clean) << "carved from purged memory";
    for (size_t off = 0; off < kExtent / 2; off += 512)
        ASSERT_EQ(0, big[off]) << off;
    EXPECT_EQ((char)0xab, page[kPage - 1]) << "allocated memory is never purged";
    memset(big, 0x5c, kPage); // one page of `big` resident again
    for (char *p : {page, o4, o5, big})
        ASSERT_EQ(0, buddy_free(p));
    // A block is clean iff none of its pages is dirty: the pages of page, o4, o5 and big were
    // allocated since the trim, so the merged extent is not clean, and the next trim purges
    // exactly those pages.
    char *merged = (char *)buddy_alloc_clean(kMax, BUDDY_TAG_USER, &clean);
    ASSERT_EQ(whole, merged);
    EXPECT_FALSE(clean) << "merged from dirty blocks";
    ASSERT_EQ(0, buddy_free(merged));
    EXPECT_EQ(kExtent, buddy_trim(1)) << "merged was allocated: all of it may be resident";
    merged = (char *)buddy_alloc_clean(kMax, BUDDY_TAG_USER, &clean);
    EXPECT_TRUE(clean) << "purged by the trim";
    for (size_t off = 0; off < kExtent; off += 512)
        ASSERT_EQ(0, merged[off]) << off;
    ASSERT_EQ(0, buddy_free(merged));
    // A never-used extent is clean too (the heap hands out fresh or purged memory).
    char *pin = (char *)buddy_alloc(kMax, BUDDY_TAG_USER);
    char *fresh = (char *)buddy_alloc_clean(2, BUDDY_TAG_USER, &clean);
    ASSERT_TRUE(pin && fresh);
    EXPECT_NE(pin, fresh);
    EXPECT_TRUE(clean) << "carved from a new extent";
    ASSERT_EQ(0, buddy_free(fresh));
    ASSERT_EQ(0, buddy_free(pin));
    ASSERT_VALID();
}

// A trim purges only the dirty runs of a merged free block: a block allocated from clean
// memory, written and freed, costs one madvise of its own pages.
TEST_F(BuddyTest, TrimPurgesOnlyTheDirtyRunsOfAMergedBlock)
{
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER); // page 0 stays allocated
    char *a = (char *)buddy_alloc(3, BUDDY_TAG_USER);   // pages 8..15
    ASSERT_TRUE(pin && a);
    ASSERT_EQ(pin + 8 * kPage, a);
    ASSERT_EQ(0, buddy_free(a)); // free again, beside clean free blocks
    struct buddy_stats st0, st1;
    buddy_get_stats(&st0);
    EXPECT_EQ(OrderBytes(3), st0.dirty_free_bytes);
    EXPECT_EQ(OrderBytes(3), buddy_trim(1));
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.purge_calls + 1, st1.purge_calls);
    EXPECT_EQ(OrderBytes(3), st1.purged_bytes - st0.purged_bytes);
    ASSERT_EQ(0, buddy_free(pin));
    ASSERT_VALID();
}

// ------------------------------------------------------------------ text, fork

TEST_F(BuddyTest, BuddyinfoTextAndTruncation)
{
    void *p = buddy_alloc(2, BUDDY_TAG_USER);
    char full[256];
    int n = buddy_format_buddyinfo(full, sizeof full);
    EXPECT_EQ("Node 0, zone slabcache      0      0      1      1      1      1      1      1"
              "      1      1      0\n",
              std::string(full));
    EXPECT_EQ((int)strlen(full), n);
    char small[10];
    EXPECT_EQ(n, buddy_format_buddyinfo(small, sizeof small));
    EXPECT_EQ(std::string(full, 9), std::string(small));
    EXPECT_EQ(n, buddy_format_buddyinfo(nullptr, 0));
    char *text = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    buddy_print_stats(f);
    buddy_print_buddyinfo(f);
    fclose(f);
    std::string s(text, len);
    free(text);
    EXPECT_NE(std::string::npos, s.find("allocs 1 ")) << s;
    EXPECT_NE(std::string::npos, s.find(full)) << s;
    ASSERT_EQ(0, buddy_free(p));
}

TEST_F(BuddyTest, ForkWithLocksHeldLeavesAUsableChild)
{
    void *p = buddy_alloc(1, BUDDY_TAG_USER);
    buddy_lock_all();
    pid_t pid = fork();
    buddy_unlock_all();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        void *q = buddy_alloc(3, BUDDY_TAG_USER);
        int ok = q && buddy_free(q) == 0 && buddy_free(p) == 0 && buddy_validate() == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(0, buddy_free(p));
}

// ------------------------------------------------------------------ threads

struct Worker {
    uint64_t seed;
    int steps = 20000;
    bool ok = true;
    size_t ops = 0;
};

void *WorkerMain(void *arg)
{
    Worker *w = (Worker *)arg;
    std::mt19937_64 rng(w->seed);
    std::vector<std::pair<char *, unsigned>> mine;
    for (int i = 0; i < w->steps && w->ok; i++) {
        if (mine.size() < 64 && (mine.empty() || rng() % 2)) {
            unsigned k = RandomOrder(rng) % 8;
            char *p = (char *)buddy_alloc(k, BUDDY_TAG_USER);
            if (!p) {
                w->ok = false;
                break;
            }
            Fill(p, k);
            mine.push_back({p, k});
        } else {
            size_t j = rng() % mine.size();
            auto [p, k] = mine[j];
            buddy_block_info info;
            w->ok = w->ok && buddy_lookup(p + kPage / 2, &info) && info.head == p &&
                    info.order == k && Check(p, k) && buddy_free(p) == 0;
            mine[j] = mine.back();
            mine.pop_back();
        }
        w->ops++;
    }
    for (auto [p, k] : mine)
        w->ok = w->ok && Check(p, k) && buddy_free(p) == 0;
    return nullptr;
}

TEST_F(BuddyTest, FourThreadStress)
{
    Worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i].seed = 100 + i;
        ASSERT_EQ(0, pthread_create(&t[i], nullptr, WorkerMain, &w[i]));
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], nullptr);
    for (int i = 0; i < 4; i++) {
        EXPECT_TRUE(w[i].ok) << "thread " << i;
        EXPECT_EQ(20000u, w[i].ops);
    }
    ASSERT_VALID();
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(st.allocs, st.frees);
    EXPECT_EQ(0u, st.alloc_bytes);
    EXPECT_EQ(0u, st.invalid_frees);
    EXPECT_LE(st.extents, kSpare);
}

// Decay 0: every slow path purges, so purges (taking blocks off, madvise without the lock,
// putting them back) race with the other threads' allocations and frees all the time.  The
// workers' pattern checks prove no live block is ever purged.
TEST_F(BuddyTest, FourThreadStressWithEagerDecay)
{
    buddy_set_decay_ms(0);
    Worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i].seed = 200 + i;
        w[i].steps = 4000;
        ASSERT_EQ(0, pthread_create(&t[i], nullptr, WorkerMain, &w[i]));
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], nullptr);
    for (int i = 0; i < 4; i++)
        EXPECT_TRUE(w[i].ok) << "thread " << i;
    ASSERT_VALID();
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(st.allocs, st.frees);
    EXPECT_GT(st.purge_calls, 0u);
    EXPECT_EQ(0u, st.dirty_free_bytes) << "the last free's pass purged everything";
}

// ------------------------------------------------------------------ reclaim before ENOMEM

// A fake OS with a budget of mapped bytes (mmap beyond it fails, munmap gives it back); the
// heap grows with mmap only.
size_t g_map_budget, g_mapped;

void *BudgetMmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (prot != PROT_NONE && g_mapped + len > g_map_budget) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && prot != PROT_NONE)
        g_mapped += len;
    return p;
}

int BudgetMunmap(void *addr, size_t len)
{
    int rc = munmap(addr, len);
    if (rc == 0)
        g_mapped -= std::min(len, g_mapped);
    return rc;
}

void UseMapBudget(size_t bytes)
{
    static heap_os_ops ops;
    ops = heap_os_real;
    ops.mmap = BudgetMmap;
    ops.munmap = BudgetMunmap;
    g_map_budget = bytes;
    g_mapped = 0;
    ASSERT_EQ(0, heap_set_os_ops(&ops));
    heap_options o;
    heap_get_options(&o);
    o.use_sbrk = false;
    ASSERT_EQ(0, heap_set_options(&o));
}

std::vector<void *> g_cached; // what the "upper layer" holds and gives back when asked
int g_reclaim_calls;
size_t g_reclaim_want;

size_t FreeCached(size_t want)
{
    g_reclaim_calls++;
    g_reclaim_want = want;
    struct buddy_stats st;
    buddy_get_stats(&st); // takes the buddy lock: the callback runs without it
    size_t bytes = 0;
    for (void *p : g_cached) {
        buddy_block_info info;
        if (buddy_lookup(p, &info))
            bytes += info.size;
        buddy_free(p);
    }
    g_cached.clear();
    return bytes;
}

TEST_F(BuddyTest, ReclaimCallbackRunsBeforeEnomem)
{
    UseMapBudget(10 * kExtent); // ~8 extents: each mapping over-maps by 4 MiB at first
    std::vector<void *> held;
    for (;;) {
        void *p = buddy_alloc(kMax, BUDDY_TAG_USER);
        if (!p)
            break;
        held.push_back(p);
    }
    ASSERT_GE(held.size(), 2u);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(1u, st.reclaims) << "the failure tried to reclaim";
    // The upper layer caches one of the blocks; it gives it back when asked.
    g_cached.push_back(held.back());
    held.pop_back();
    EXPECT_EQ(nullptr, buddy_set_reclaim(FreeCached));
    g_reclaim_calls = 0;
    void *p = buddy_alloc(3, BUDDY_TAG_USER);
    ASSERT_NE(nullptr, p) << "served from the extent the callback gave back";
    EXPECT_EQ(1, g_reclaim_calls);
    EXPECT_EQ(OrderBytes(3), g_reclaim_want);
    EXPECT_TRUE(g_cached.empty());
    held.push_back(p);
    for (;;) { // use up that extent, then fail once more
        void *q = buddy_alloc(3, BUDDY_TAG_USER);
        if (!q)
            break;
        held.push_back(q);
    }
    EXPECT_EQ(2, g_reclaim_calls) << "nothing cached: called, then ENOMEM";
    // What the callback gives back is not enough for a whole extent: still ENOMEM, and the
    // caller's blocks are untouched.
    g_cached.push_back(held.back());
    held.pop_back();
    errno = 0;
    EXPECT_EQ(nullptr, buddy_alloc(kMax, BUDDY_TAG_USER));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(3, g_reclaim_calls);
    for (void *x : held)
        ASSERT_TRUE(buddy_lookup(x, nullptr));
    buddy_get_stats(&st);
    EXPECT_EQ(4u, st.reclaims);
    EXPECT_EQ(3u, st.failures);
    ASSERT_VALID();
    for (void *x : held)
        ASSERT_EQ(0, buddy_free(x));
    buddy_reset_for_tests(); // before the ops table goes away
}

// A callback that allocates does not recurse into reclaim.
size_t AllocatingReclaim(size_t)
{
    g_reclaim_calls++;
    void *p = buddy_alloc(kMax, BUDDY_TAG_USER); // fails: no memory, no second reclaim
    if (p)
        buddy_free(p);
    return 0;
}

TEST_F(BuddyTest, ReclaimDoesNotRecurse)
{
    UseMapBudget(0);
    buddy_set_reclaim(AllocatingReclaim);
    g_reclaim_calls = 0;
    EXPECT_EQ(nullptr, buddy_alloc(0, BUDDY_TAG_USER));
    EXPECT_EQ(1, g_reclaim_calls);
    buddy_reset_for_tests();
}

// Under the heap's limit, a huge allocation first gives back the spare extents the buddy
// keeps (which count toward the limit), and the heap unmaps the free extents it keeps.
TEST_F(BuddyTest, HugeAllocationReclaimsSparesUnderTheHeapLimit)
{
    heap_options o;
    heap_get_options(&o);
    o.use_sbrk = false;
    o.limit = 16 * kExtent; // 64 MiB
    ASSERT_EQ(0, heap_set_options(&o));
    buddy_set_spare_extents(64);
    std::vector<void *> v;
    for (int i = 0; i < 12; i++) {
        v.push_back(buddy_alloc(kMax, BUDDY_TAG_USER));
        ASSERT_NE(nullptr, v.back());
    }
    for (void *p : v)
        ASSERT_EQ(0, buddy_free(p));
    struct buddy_stats st;
    buddy_get_stats(&st);
    ASSERT_EQ(12u, st.extents) << "kept as spares";
    // 56 MiB: needs the 48 MiB of spares back, and the 16 MiB the heap keeps of them too.
    char *h = (char *)buddy_alloc_bytes(14 * kExtent, BUDDY_TAG_LARGE);
    ASSERT_NE(nullptr, h);
    h[14 * kExtent - 1] = 1;
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.extents);
    EXPECT_EQ(1u, st.reclaims);
    heap_stats hs;
    heap_get_stats(&hs);
    EXPECT_EQ(0u, hs.free_extents);
    EXPECT_EQ(0, heap_validate());
    ASSERT_EQ(0, buddy_free(h));
}

// The same under a real RLIMIT_DATA, in a child (setrlimit would bind this process too).
TEST_F(BuddyTest, ReclaimUnderRlimitData)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        buddy_set_spare_extents(64);
        long data_kb = -1;
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "VmData: %ld kB", &data_kb) == 1)
                break;
        if (f)
            fclose(f);
        if (data_kb < 0)
            _exit(2);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)data_kb * 1024 + 80 * (rlim_t)(1 << 20);
        if (setrlimit(RLIMIT_DATA, &rl) != 0)
            _exit(3);
        std::vector<void *> v;
        v.reserve(64);
        for (;;) {
            void *p = buddy_alloc(kMax, BUDDY_TAG_USER);
            if (!p)
                break;
            v.push_back(p);
        }
        if (v.size() < 8)
            _exit(4);
        for (void *p : v)
            buddy_free(p);
        struct buddy_stats st;
        buddy_get_stats(&st);
        if (st.extents != v.size())
            _exit(5); // all kept as spares: the limit is reached
        char *h = (char *)buddy_alloc_bytes(40u << 20, BUDDY_TAG_LARGE);
        if (!h)
            _exit(6);
        h[(40u << 20) - 1] = 1;
        buddy_free(h);
        _exit(buddy_validate() == 0 ? 0 : 7);
    }
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(0, WEXITSTATUS(status));
}

// ------------------------------------------------------------------ huge resize (mremap)

TEST_F(BuddyTest, HugeBlocksGrowAndShrinkWithoutCopying)
{
    char *h = (char *)buddy_alloc_bytes(5u << 20, BUDDY_TAG_LARGE);
    ASSERT_NE(nullptr, h);
    for (size_t off = 0; off < (5u << 20); off += kPage)
        h[off] = (char)(off >> 12);
    // Something mapped right after the block: growth cannot stay in place, the pages move.
    void *fence = mmap(h + (5u << 20), kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
                       MAP_FIXED_NOREPLACE, -1, 0);
    bool fenced = fence == h + (5u << 20);
    heap_stats hs0, hs1;
    heap_get_stats(&hs0);
    char *g = (char *)buddy_resize_huge(h, 20u << 20);
    ASSERT_NE(nullptr, g);
    heap_get_stats(&hs1);
    EXPECT_EQ(0u, (uintptr_t)g % kExtent);
    if (fenced) {
        EXPECT_NE(h, g) << "moved";
        EXPECT_EQ(hs0.resize_moves + 1, hs1.resize_moves);
        EXPECT_FALSE(buddy_lookup(h, nullptr)) << "the old range is gone";
        munmap(fence, kPage);
    }
    for (size_t off = 0; off < (5u << 20); off += kPage)
        ASSERT_EQ((char)(off >> 12), g[off]) << off;
    EXPECT_EQ(0, g[(20u << 20) - 1]) << "new pages read as zero";
    buddy_block_info info;
    ASSERT_TRUE(buddy_lookup(g + (19u << 20), &info));
    EXPECT_EQ(g, info.head);
    EXPECT_EQ(20u << 20, info.size);
    EXPECT_EQ((unsigned)BUDDY_ORDER_HUGE, info.order);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(20u << 20, st.huge_bytes);
    EXPECT_EQ(1u, st.huge_resizes);
    ASSERT_VALID();
    EXPECT_EQ(0, heap_validate());
    // Shrink in place: the tail's granules leave the radix map.
    char *s2 = (char *)buddy_resize_huge(g, (6u << 20) + 1);
    ASSERT_EQ(g, s2);
    EXPECT_FALSE(buddy_lookup(g + (12u << 20), nullptr));
    ASSERT_TRUE(buddy_lookup(g + (6u << 20), &info));
    EXPECT_EQ((6u << 20) + kPage, info.size);
    EXPECT_EQ((char)((4u << 20) >> 12), g[4u << 20]);
    EXPECT_EQ(0, heap_validate());
    // Refusals change nothing.
    for (size_t bad : {(size_t)0, kExtent}) {
        errno = 0;
        EXPECT_EQ(nullptr, buddy_resize_huge(g, bad));
        EXPECT_EQ(EINVAL, errno);
    }
    void *small = buddy_alloc(3, BUDDY_TAG_USER);
    errno = 0;
    EXPECT_EQ(nullptr, buddy_resize_huge(small, 8u << 20)) << "not a huge block";
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(nullptr, buddy_resize_huge(g + kPage, 8u << 20)) << "interior";
    ASSERT_EQ(0, buddy_free(small));
    ASSERT_EQ(0, buddy_free(g));
    ASSERT_VALID();
}

// ------------------------------------------------------------------ the validator

// Each invariant the validator checks, broken once: it must say so.
TEST(BuddyValidator, ReportsEachBrokenInvariant)
{
    const struct {
        int what;
        const char *text;
    } cases[] = {
        {BUDDY_CORRUPT_FREE_MAP, "free map word does not match the page map"},
        {BUDDY_CORRUPT_SUMMARY, "free map summary word or order mask wrong"},
        {BUDDY_CORRUPT_ORDER_MASK, "free map summary word or order mask wrong"},
        {BUDDY_CORRUPT_DIRTY_MAP, "allocated block with a page not marked dirty"},
        {BUDDY_CORRUPT_FREE_PAGES, "free page map word does not match the free blocks"},
        {BUDDY_CORRUPT_ORDER_LIST, "extents with a free block of an order != its list"},
        {BUDDY_CORRUPT_PAGE_MAP, "tail page order != head's"},
        {BUDDY_CORRUPT_BUSY, "busy bit on a page that is not FREE_HEAD"},
        {BUDDY_CORRUPT_COUNTER, "dirty_free_bytes"},
        {BUDDY_CORRUPT_RUN, "run page does not link back to its head"},
    };
    for (const auto &c : cases) {
        buddy_reset_for_tests();
        buddy_set_decay_ms(BUDDY_DECAY_NEVER);
        // Allocated blocks, and free blocks of several orders (free tails).
        void *a = buddy_alloc(0, BUDDY_TAG_USER);
        void *b = buddy_alloc(5, BUDDY_TAG_USER);
        void *r = buddy_alloc_run(3, BUDDY_TAG_USER, nullptr);
        ASSERT_TRUE(a && b && r);
        ASSERT_EQ(0, buddy_validate());
        ASSERT_EQ(0, buddy_corrupt_for_tests(c.what)) << c.text;
        ::testing::internal::CaptureStderr();
        EXPECT_EQ(-1, buddy_validate()) << c.text;
        std::string err = ::testing::internal::GetCapturedStderr();
        EXPECT_NE(std::string::npos, err.find(c.text)) << c.what << ": " << err;
        EXPECT_EQ(0u, err.rfind("slabcache: buddy: validate: ", 0)) << err;
    }
    buddy_reset_for_tests();
    buddy_set_decay_ms(BUDDY_DECAY_MS_DEFAULT);
}

} // namespace

namespace {

// The spare policy: whole free extents are kept up to the limit (freed memory is retained for
// reuse without page faults), beyond it they go back to the heap, and lowering the limit or
// buddy_trim(0) gives the spares back.
TEST_F(BuddyTest, SpareExtentsAreRetainedUpToTheLimit)
{
    buddy_set_spare_extents(3);
    std::vector<void *> blocks;
    for (int i = 0; i < 6; i++) {
        void *p = buddy_alloc(kMax, BUDDY_TAG_USER);
        ASSERT_NE(nullptr, p);
        blocks.push_back(p);
    }
    for (void *p : blocks)
        ASSERT_EQ(0, buddy_free(p));
    buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_EQ(3u, st.extents) << "three spares kept, three returned";
    EXPECT_EQ(3u, st.free_blocks[kMax]);
    ASSERT_EQ(0, buddy_validate());
    // Reuse of a spare needs no new extent.
    void *again = buddy_alloc(kMax, BUDDY_TAG_USER);
    buddy_get_stats(&st);
    EXPECT_EQ(3u, st.extents);
    ASSERT_EQ(0, buddy_free(again));
    EXPECT_EQ(3u, buddy_set_spare_extents(1));
    buddy_get_stats(&st);
    EXPECT_EQ(1u, st.extents) << "lowering the limit returns the spares beyond it";
    buddy_set_spare_extents(2);
    EXPECT_GT(buddy_trim(0), 0u);
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.extents);
    ASSERT_EQ(0, buddy_validate());
    EXPECT_EQ(2u, buddy_set_spare_extents(0)) << "0 is raised to the minimum";
    buddy_get_stats(&st);
    EXPECT_EQ(0u, st.extents);
}

} // namespace
