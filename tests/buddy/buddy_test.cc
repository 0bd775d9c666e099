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
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "buddy/buddy.h"
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
    }
    void TearDown() override
    {
        EXPECT_EQ(0, buddy_validate());
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

TEST_F(BuddyTest, PurgeBudgetSweepsFreeBlocksOnceExceeded)
{
    char *a = (char *)buddy_alloc(5, BUDDY_TAG_USER); // 128 KiB
    char *b = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    char *c = (char *)buddy_alloc(0, BUDDY_TAG_USER); // keeps a and b from merging upwards
    memset(a, 7, OrderBytes(5));
    memset(b, 7, OrderBytes(5));
    struct buddy_stats st0, st1;
    buddy_get_stats(&st0);
    EXPECT_EQ(0u, st0.unpurged_bytes) << "nothing freed yet";
    ASSERT_EQ(SIZE_MAX, buddy_set_purge_budget(OrderBytes(5), BUDDY_TAG_USER)) << "default: never";
    void *slab = buddy_alloc(5, BUDDY_TAG_SLAB);
    ASSERT_NE(nullptr, slab);
    ASSERT_EQ(0, buddy_free(slab));
    buddy_get_stats(&st1);
    EXPECT_EQ(0u, st1.unpurged_bytes) << "only the budget's tag counts";
    ASSERT_EQ(0, buddy_free(a)); // 128 KiB maybe resident: not above the 128 KiB budget
    buddy_get_stats(&st1);
    EXPECT_EQ(OrderBytes(5), st1.unpurged_bytes);
    EXPECT_EQ(st0.budget_purges, st1.budget_purges);
    EXPECT_EQ(7, a[kPage]) << "still resident";
    ASSERT_VALID();
    ASSERT_EQ(0, buddy_free(b)); // 256 KiB: over the budget, one sweep
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.budget_purges + 1, st1.budget_purges);
    EXPECT_EQ(0u, st1.unpurged_bytes);
    EXPECT_EQ(0, a[kPage]) << "purged pages read as zero";
    ASSERT_VALID();
    char *d = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_NE(nullptr, d);
    buddy_get_stats(&st0);
    ASSERT_EQ(0, buddy_resize(d, 0)); // a shrink frees its tail: it counts like a free
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.unpurged_bytes + OrderBytes(5) - OrderBytes(0), st1.unpurged_bytes);
    ASSERT_VALID();
    ASSERT_EQ(0, buddy_free(d));
    ASSERT_EQ(0, buddy_free(c));
    EXPECT_EQ(OrderBytes(5), buddy_set_purge_budget(SIZE_MAX, BUDDY_TAG_NONE));
    ASSERT_VALID();
}

// buddy_set_purge_scale: with little live memory of the budget's tag, the budget in force is
// the floor (a sweep comes sooner); with much of it, the full budget applies.
TEST_F(BuddyTest, PurgeScaleLowersTheBudgetWhileLittleOfTheTagIsLive)
{
    ASSERT_EQ(SIZE_MAX, buddy_set_purge_budget(OrderBytes(7), BUDDY_TAG_USER)); // 512 KiB
    ASSERT_EQ(SIZE_MAX, buddy_set_purge_scale(OrderBytes(5), 2)) << "default: no scaling";
    char *pin = (char *)buddy_alloc(0, BUDDY_TAG_USER); // keeps the blocks below apart
    char *a = (char *)buddy_alloc(5, BUDDY_TAG_USER);   // 128 KiB each
    char *b = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    ASSERT_TRUE(pin && a && b);
    memset(a, 7, OrderBytes(5));
    memset(b, 7, OrderBytes(5));
    struct buddy_stats st0, st1;
    buddy_get_stats(&st0);
    ASSERT_EQ(0, buddy_free(a)); // live ~132 KiB >> 2 = 33 KiB: floor 128 KiB, not exceeded
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.budget_purges, st1.budget_purges);
    ASSERT_EQ(0, buddy_free(b)); // 256 KiB unpurged > the 128 KiB floor (< the 512 KiB budget)
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.budget_purges + 1, st1.budget_purges) << "the scaled budget swept";
    EXPECT_EQ(0u, st1.unpurged_bytes);
    EXPECT_EQ(0, a[kPage]) << "purged pages read as zero";
    ASSERT_VALID();
    // 4 MiB of the tag live: live >> 2 = 1 MiB, capped at the 512 KiB budget.
    std::vector<void *> big;
    for (int i = 0; i < 4; i++) {
        big.push_back(buddy_alloc(8, BUDDY_TAG_USER));
        ASSERT_NE(nullptr, big.back());
    }
    char *c = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    char *d = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    char *e = (char *)buddy_alloc(5, BUDDY_TAG_USER);
    char *f = (char *)buddy_alloc(0, BUDDY_TAG_USER); // keeps e from merging with free space
    ASSERT_TRUE(c && d && e && f);
    buddy_get_stats(&st0);
    ASSERT_EQ(0, buddy_free(c));
    ASSERT_EQ(0, buddy_free(d)); // 256 KiB: over the floor but not over the budget in force
    buddy_get_stats(&st1);
    EXPECT_EQ(st0.budget_purges, st1.budget_purges) << "much live memory: the full budget";
    for (void *x : big)
        ASSERT_EQ(0, buddy_free(x)); // frees past 512 KiB sweep
    buddy_get_stats(&st1);
    EXPECT_GT(st1.budget_purges, st0.budget_purges);
    ASSERT_EQ(0, buddy_free(e));
    ASSERT_EQ(0, buddy_free(f));
    ASSERT_EQ(0, buddy_free(pin));
    EXPECT_EQ(OrderBytes(5), buddy_set_purge_scale(SIZE_MAX, 0));
    EXPECT_EQ(OrderBytes(7), buddy_set_purge_budget(SIZE_MAX, BUDDY_TAG_NONE));
    ASSERT_VALID();
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
    size_t want = 0;
    for (unsigned k = BUDDY_PURGE_MIN_ORDER; k < kMax; k++)
        want += OrderBytes(k) - kPage;
    EXPECT_EQ(want, buddy_trim(1));
    ASSERT_VALID();
    EXPECT_EQ(0u, buddy_trim(1)) << "already purged blocks are not purged again";
    // Splitting a purged block keeps both halves purged: still nothing to do.
    char *o4 = (char *)buddy_alloc(BUDDY_PURGE_MIN_ORDER, BUDDY_TAG_USER); // the order-4 block
    char *o5 = (char *)buddy_alloc(BUDDY_PURGE_MIN_ORDER, BUDDY_TAG_USER); // splits order 5
    ASSERT_TRUE(o4 && o5);
    EXPECT_EQ(0u, buddy_trim(1));
    // Pages of purged blocks (but the list node's page) read back as zero, and
    // buddy_alloc_clean says so.
    bool clean = false;
    char *big = (char *)buddy_alloc_clean(kMax - 1, BUDDY_TAG_USER, &clean);
    ASSERT_EQ(whole + kExtent / 2, big);
    EXPECT_TRUE(clean) << "carved from a purged block";
    for (size_t off = kPage; off < kExtent / 2; off += 512)
        ASSERT_EQ(0, big[off]) << off;
    for (size_t off = kPage; off < OrderBytes(BUDDY_PURGE_MIN_ORDER); off += 512)
        ASSERT_EQ(0, o5[off]) << off;
    EXPECT_EQ((char)0xab, page[kPage - 1]) << "allocated memory is never purged";
    for (char *p : {page, o4, o5, big})
        ASSERT_EQ(0, buddy_free(p));
    // Merging clears the purged mark: the merged extent is not clean, and the next trim
    // purges it again; after that it is clean.
    char *merged = (char *)buddy_alloc_clean(kMax, BUDDY_TAG_USER, &clean);
    ASSERT_EQ(whole, merged);
    EXPECT_FALSE(clean) << "merged from dirty blocks";
    ASSERT_EQ(0, buddy_free(merged));
    EXPECT_EQ(kExtent - kPage, buddy_trim(1));
    EXPECT_EQ(0u, buddy_trim(1));
    merged = (char *)buddy_alloc_clean(kMax, BUDDY_TAG_USER, &clean);
    EXPECT_TRUE(clean) << "purged by the trim";
    for (size_t off = kPage; off < kExtent; off += 512)
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
    bool ok = true;
    size_t ops = 0;
};

void *WorkerMain(void *arg)
{
    Worker *w = (Worker *)arg;
    std::mt19937_64 rng(w->seed);
    std::vector<std::pair<char *, unsigned>> mine;
    for (int i = 0; i < 20000 && w->ok; i++) {
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
