/* SPDX-License-Identifier: MIT */
// tests/pool/pool_test.cc - kmem_pool: every call and flag, caps, destroy-all, misuse, a
// random model.
//
// Strategy: each public call is exercised through pool/pool.h, and kmem_pool_validate (which
// walks the class caches, every slab's pool bitmaps, the thread caches and the large table)
// runs after each step that changes state, with slabcache_validate for the layers below.
// Misuse is checked in report mode (SLABCACHE_ON_ERROR=report: the call is refused and the
// pool unchanged) and, for the main cases, in the default abort mode (death tests).  A random
// sequence of operations is checked against a model (content pattern per live block).
// Collection, finalizers and threads: gc_test.cc.
#include <gtest/gtest.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "buddy/buddy.h"
#include "heap/options.h"
#include "pool/internal.h"
#include "pool/pool.h"
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;  // freed slots are poisoned: reading them is the sanitizer's job
#else
constexpr bool kAsan = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kShadowMemory = true;  // the sanitizer's shadow pages count in RSS
#else
constexpr bool kShadowMemory = false;
#endif

namespace {

struct ReportMode {
    ReportMode() {
        setenv("SLABCACHE_ON_ERROR", "report", 1);
        report_reset_options();
    }
    ~ReportMode() {
        unsetenv("SLABCACHE_ON_ERROR");
        report_reset_options();
    }
};

kmem_pool_stats Stats(kmem_pool *p) {
    kmem_pool_stats st;
    EXPECT_EQ(0, kmem_pool_get_stats(p, &st));
    return st;
}

void Fill(void *p, size_t n, uint32_t seed) {
    auto *b = static_cast<unsigned char *>(p);
    for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>(seed * 131 + i);
}

bool Check(const void *p, size_t n, uint32_t seed) {
    auto *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        if (b[i] != static_cast<unsigned char>(seed * 131 + i)) return false;
    return true;
}

size_t RssBytes() {
    FILE *f = fopen("/proc/self/statm", "r");
    size_t size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%zu %zu", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string Captured(void (*fn)(void *), void *arg) {
    testing::internal::CaptureStderr();
    fn(arg);
    return testing::internal::GetCapturedStderr();
}

// ------------------------------------------------------------------ create / destroy

TEST(PoolCreate, BadArgumentsAreEinval) {
    kmem_pool_config cfg{};
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_create(nullptr, &cfg));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_create("", &cfg));
    EXPECT_EQ(EINVAL, errno);
    cfg.flags = 0x80000000u;
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_create("p", &cfg));
    EXPECT_EQ(EINVAL, errno);
    cfg.flags = 0;
    for (double f : {0.5, -1.0, static_cast<double>(NAN)}) {
        cfg.gc_factor = f;
        errno = 0;
        EXPECT_EQ(nullptr, kmem_pool_create("p", &cfg)) << f;
        EXPECT_EQ(EINVAL, errno);
    }
    kmem_pool *p = kmem_pool_create("defaults", nullptr);
    ASSERT_NE(nullptr, p);
    kmem_pool_stats st = Stats(p);
    EXPECT_STREQ("defaults", st.name);
    EXPECT_EQ(KMEM_POOL_DEFAULT_GC_THRESHOLD, st.gc_threshold);
    EXPECT_EQ(0u, st.live_blocks);
    kmem_pool_destroy(p);
    kmem_pool_destroy(nullptr);  // does nothing
}

TEST(PoolCreate, NameIsCopiedAndCut) {
    std::string longname(100, 'x');
    kmem_pool *p = kmem_pool_create(longname.c_str(), nullptr);
    ASSERT_NE(nullptr, p);
    EXPECT_EQ(std::string(KMEM_POOL_NAME_MAX - 1, 'x'), kmem_pool_name(p));
    kmem_pool_destroy(p);
}

// ------------------------------------------------------------------ blocks

TEST(PoolAlloc, EverySizeUpToTheClassesAndBeyond) {
    kmem_pool *p = kmem_pool_create("sizes", nullptr);
    ASSERT_NE(nullptr, p);
    std::vector<std::pair<void *, size_t>> blocks;
    size_t expect_bytes = 0;
    for (size_t size = 0; size <= 20000; size += (size < 300 ? 1 : size < 9000 ? 97 : 3001)) {
        void *b = kmem_pool_alloc(p, size, 0);
        ASSERT_NE(nullptr, b) << size;
        size_t usable = kmem_pool_block_size(p, b);
        EXPECT_GE(usable, size ? size : 1) << size;
        EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(b) % (size > 8 ? 16 : 8)) << size;
        if (size <= KMEM_POOL_SMALL_MAX) {
            EXPECT_LE(usable, size < 128 ? size + 16 : size + size / 4 + 16) << size;
        }
        Fill(b, size, static_cast<uint32_t>(size));
        blocks.emplace_back(b, size);
        expect_bytes += usable;
    }
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(blocks.size(), st.live_blocks);
    EXPECT_EQ(expect_bytes, st.live_bytes);
    EXPECT_GT(st.large_blocks, 0u);
    EXPECT_EQ(0, kmem_pool_validate(p));
    for (auto &[b, size] : blocks) {
        ASSERT_TRUE(Check(b, size, static_cast<uint32_t>(size))) << size;
        kmem_pool_free(p, b);
    }
    st = Stats(p);
    EXPECT_EQ(0u, st.live_blocks);
    EXPECT_EQ(0u, st.live_bytes);
    EXPECT_EQ(0u, st.large_blocks);
    EXPECT_EQ(blocks.size(), st.allocs);
    EXPECT_EQ(blocks.size(), st.frees);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
    EXPECT_EQ(0, slabcache_validate());
}

TEST(PoolAlloc, ZeroFlagZeroesReusedBlocks) {
    kmem_pool *p = kmem_pool_create("zero", nullptr);
    for (size_t size : {8, 24, 100, 5000, 70000}) {
        void *b = kmem_pool_alloc(p, size, 0);
        memset(b, 0xee, size);
        kmem_pool_free(p, b);
        unsigned char *z = static_cast<unsigned char *>(kmem_pool_alloc(p, size, KM_ZERO));
        ASSERT_NE(nullptr, z);
        for (size_t i = 0; i < size; i++) ASSERT_EQ(0, z[i]) << size << " " << i;
        kmem_pool_free(p, z);
    }
    void *c = kmem_pool_calloc(p, 10, 30, 0);
    ASSERT_NE(nullptr, c);
    for (int i = 0; i < 300; i++) ASSERT_EQ(0, static_cast<unsigned char *>(c)[i]);
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_calloc(p, SIZE_MAX / 2, 3, 0));
    EXPECT_EQ(ENOMEM, errno);
    kmem_pool_free(p, c);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

TEST(PoolAlloc, AlignedBlocks) {
    kmem_pool *p = kmem_pool_create("aligned", nullptr);
    for (size_t align : {1, 8, 16, 32, 64, 4096, 65536, 1 << 20}) {
        for (size_t size : {1, 40, 3000, 100000}) {
            void *b = kmem_pool_alloc_aligned(p, align, size, 0);
            ASSERT_NE(nullptr, b) << align << " " << size;
            EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(b) % align) << align << " " << size;
            EXPECT_GE(kmem_pool_block_size(p, b), size);
            memset(b, 1, size);
            EXPECT_EQ(0, kmem_pool_validate(p));
            kmem_pool_free(p, b);
        }
    }
    for (size_t bad : {0, 3, 48, 8 << 20}) {
        errno = 0;
        EXPECT_EQ(nullptr, kmem_pool_alloc_aligned(p, bad, 16, 0)) << bad;
        EXPECT_EQ(EINVAL, errno);
    }
    kmem_pool_destroy(p);
}

TEST(PoolAlloc, UnknownFlagsAndInterceptWithoutFinalizerAreEinval) {
    kmem_pool *p = kmem_pool_create("flags", nullptr);
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_alloc(p, 16, 0x4000));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_alloc(p, 16, KMEM_POOL_INTERCEPT_FREE));
    EXPECT_EQ(EINVAL, errno);
    void *out = reinterpret_cast<void *>(0x1234);
    EXPECT_EQ(-1, kmem_pool_alloc_to(p, 16, 0x4000, &out));
    EXPECT_EQ(reinterpret_cast<void *>(0x1234), out) << "*out unchanged on failure";
    EXPECT_EQ(-1, kmem_pool_alloc_to(p, 16, 0, nullptr));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(4u, Stats(p).alloc_failures);
    EXPECT_NE(nullptr, kmem_pool_alloc(p, 16, KM_NOFAIL));
    kmem_pool_destroy(p);
}

TEST(PoolAlloc, AllocToWritesTheAddress) {
    kmem_pool *p = kmem_pool_create("to", nullptr);
    void *out = nullptr;
    ASSERT_EQ(0, kmem_pool_alloc_to(p, 40, 0, &out));
    ASSERT_NE(nullptr, out);
    EXPECT_EQ(48u, kmem_pool_block_size(p, out));
    void *big = nullptr;
    ASSERT_EQ(0, kmem_pool_alloc_to(p, 40000, KM_ZERO, &big));
    EXPECT_EQ(0, static_cast<char *>(big)[39999]);
    EXPECT_EQ(2u, Stats(p).live_blocks);
    kmem_pool_destroy(p);
}

TEST(PoolAlloc, BulkIsAllOrNothing) {
    kmem_pool_config cfg{};
    cfg.max_blocks = 100;
    kmem_pool *p = kmem_pool_create("bulk", &cfg);
    std::vector<void *> out(150);
    EXPECT_EQ(60u, kmem_pool_alloc_bulk(p, 32, 0, 60, out.data()));
    std::set<void *> distinct(out.begin(), out.begin() + 60);
    EXPECT_EQ(60u, distinct.size());
    errno = 0;
    EXPECT_EQ(0u, kmem_pool_alloc_bulk(p, 32, 0, 50, out.data() + 60));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(60u, Stats(p).live_blocks) << "nothing of a failed bulk allocation stays";
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_free_bulk(p, 60, out.data());
    EXPECT_EQ(0u, Stats(p).live_blocks);
    EXPECT_EQ(0u, kmem_pool_alloc_bulk(p, 32, 0, 10, nullptr));
    kmem_pool_destroy(p);
}

TEST(PoolAlloc, ReallocKeepsContentAndRefusesCollectibleBlocks) {
    kmem_pool *p = kmem_pool_create("realloc", nullptr);
    char *b = static_cast<char *>(kmem_pool_realloc(p, nullptr, 10));
    ASSERT_NE(nullptr, b);
    Fill(b, 10, 7);
    size_t n = 10;
    for (size_t size : {20, 200, 9000, 100000, 50, 5}) {
        b = static_cast<char *>(kmem_pool_realloc(p, b, size));
        ASSERT_NE(nullptr, b);
        ASSERT_TRUE(Check(b, std::min(n, size), 7)) << size;
        Fill(b, size, 7);
        n = size;
        EXPECT_EQ(1u, Stats(p).live_blocks);
        EXPECT_EQ(0, kmem_pool_validate(p));
    }
    EXPECT_EQ(nullptr, kmem_pool_realloc(p, b, 0));
    EXPECT_EQ(0u, Stats(p).live_blocks);
    void *c = kmem_pool_alloc(p, 30, KMEM_POOL_COLLECTIBLE);
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_realloc(p, c, 300));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(1u, Stats(p).collectible_blocks);
    char *s = kmem_pool_strdup(p, "hello pool");
    EXPECT_STREQ("hello pool", s);
    EXPECT_EQ(nullptr, kmem_pool_strdup(p, nullptr));
    kmem_pool_destroy(p);
}

// ------------------------------------------------------------------ caps

TEST(PoolCaps, MaxBlocksIsExactAndNothingElseChanges) {
    kmem_pool_config cfg{};
    cfg.max_blocks = 50;
    kmem_pool *p = kmem_pool_create("capblocks", &cfg);
    std::vector<void *> v;
    for (int i = 0; i < 50; i++) v.push_back(kmem_pool_alloc(p, 16 + i * 100, 0));
    for (void *b : v) ASSERT_NE(nullptr, b);
    kmem_pool_stats before = Stats(p);
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_alloc(p, 16, 0));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(nullptr, kmem_pool_alloc(p, 100000, 0)) << "large blocks count too";
    kmem_pool_stats after = Stats(p);
    EXPECT_EQ(before.live_blocks, after.live_blocks);
    EXPECT_EQ(before.live_bytes, after.live_bytes);
    EXPECT_EQ(before.alloc_failures + 2, after.alloc_failures);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_free(p, v.back());
    v.pop_back();
    EXPECT_NE(nullptr, kmem_pool_alloc(p, 16, 0));
    kmem_pool_destroy(p);
}

TEST(PoolCaps, MaxBytesCountsBlockSizes) {
    kmem_pool_config cfg{};
    cfg.max_bytes = 1000;
    kmem_pool *p = kmem_pool_create("capbytes", &cfg);
    void *a = kmem_pool_alloc(p, 500, 0);  // class 512
    ASSERT_NE(nullptr, a);
    void *b = kmem_pool_alloc(p, 480, 0);  // class 512: 1024 > 1000
    EXPECT_EQ(nullptr, b);
    EXPECT_EQ(ENOMEM, errno);
    void *c = kmem_pool_alloc(p, 400, 0);  // class 448: 960
    EXPECT_NE(nullptr, c);
    EXPECT_EQ(960u, Stats(p).live_bytes);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

TEST(PoolCaps, CapCollectsWhenCollectibleBlocksExist) {
    kmem_pool_config cfg{};
    cfg.max_blocks = 20;
    kmem_pool *p = kmem_pool_create("capgc", &cfg);  // no mark callback: all garbage
    for (int i = 0; i < 20; i++) ASSERT_NE(nullptr, kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE));
    EXPECT_EQ(20u, Stats(p).collectible_blocks);
    void *b = kmem_pool_alloc(p, 64, 0);
    ASSERT_NE(nullptr, b) << "the cap ran a collection first";
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(1u, st.collections);
    EXPECT_EQ(20u, st.swept_blocks);
    EXPECT_EQ(1u, st.live_blocks);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
    // NO_THREAD: collect only when asked, so the cap fails.
    cfg.flags = KMEM_POOL_NO_THREAD;
    p = kmem_pool_create("capgc-nothread", &cfg);
    for (int i = 0; i < 20; i++) ASSERT_NE(nullptr, kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE));
    EXPECT_EQ(nullptr, kmem_pool_alloc(p, 64, 0));
    EXPECT_EQ(0u, Stats(p).collections);
    kmem_pool_destroy(p);
}

// ------------------------------------------------------------------ destroy frees all

TEST(PoolDestroy, FreesEverythingRssAndValidatorsAfter) {
    buddy_trim(0);
    size_t rss0 = RssBytes();
    buddy_stats b0;
    buddy_get_stats(&b0);
    kmem_pool *p = kmem_pool_create("big", nullptr);
    size_t total = 0;
    std::mt19937 rng(1);
    while (total < (size_t{96} << 20)) {
        size_t size = (rng() % 4 == 0) ? 20000 + rng() % 200000 : 8 + rng() % 2000;
        void *b = kmem_pool_alloc(p, size, 0);
        ASSERT_NE(nullptr, b);
        memset(b, 0x5a, size);
        total += size;
    }
    EXPECT_GT(RssBytes(), rss0 + (size_t{80} << 20));
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
    EXPECT_EQ(0, slabcache_validate());
    buddy_trim(0);
    size_t rss1 = RssBytes();
    if (!kShadowMemory) {
        EXPECT_LT(rss1, rss0 + (size_t{8} << 20)) << "rss before " << rss0 << " after " << rss1;
    }
    buddy_stats b1;
    buddy_get_stats(&b1);
    // What stays: the destroyed pool in this thread's stash keeps a slab per class used.
    EXPECT_LT(b1.alloc_bytes, b0.alloc_bytes + POOL_STASH_MAX * POOL_NCLASSES * (size_t{128} << 10));
}

TEST(PoolDestroy, HundredsAliveThousandsOverARun) {
    buddy_stats b0;
    buddy_get_stats(&b0);
    std::vector<kmem_pool *> alive;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 300; i++) {
            kmem_pool *p = kmem_pool_create("many", nullptr);
            ASSERT_NE(nullptr, p) << round << " " << i;
            for (int k = 0; k < 20; k++) ASSERT_NE(nullptr, kmem_pool_alloc(p, 16 + 48 * k, 0));
            alive.push_back(p);
        }
        EXPECT_EQ(0, kmem_pool_validate(alive[alive.size() / 2]));
        for (kmem_pool *p : alive) {
            EXPECT_EQ(20u, Stats(p).live_blocks);
            kmem_pool_destroy(p);
        }
        alive.clear();
    }
    for (int i = 0; i < 3000; i++) {  // create, use, destroy: what binary-trees does
        kmem_pool *p = kmem_pool_create("cycle", nullptr);
        ASSERT_NE(nullptr, p);
        for (int k = 0; k < 31; k++) ASSERT_NE(nullptr, kmem_pool_alloc(p, 16, 0));
        kmem_pool_destroy(p);
    }
    EXPECT_EQ(0, slabcache_validate());
    buddy_stats b1;
    buddy_get_stats(&b1);
    // What stays: the destroyed pools in this thread's stash keep one slab per class used.
    EXPECT_LT(b1.alloc_bytes, b0.alloc_bytes + POOL_STASH_MAX * POOL_NCLASSES * (size_t{128} << 10));
}

void DestroyLeaky(void *) {
    kmem_pool *p = kmem_pool_create("leaky", nullptr);
    for (int i = 0; i < 5; i++) kmem_pool_alloc(p, 24, 0);
    kmem_pool_alloc(p, 50000, 0);
    void *f = kmem_pool_alloc(p, 24, 0);
    kmem_pool_free(p, f);  // in the thread cache: not listed
    kmem_pool_destroy(p);
}

TEST(PoolDestroy, ListsLiveBlocksWithSlabcacheLeaks) {
    EXPECT_EQ("", Captured(DestroyLeaky, nullptr)) << "silent by default";
    setenv("SLABCACHE_LEAKS", "1", 1);
    heap_opt_reset_for_tests();  // the option table reads the environment again
    pool_reset_options();
    std::string err = Captured(DestroyLeaky, nullptr);
    unsetenv("SLABCACHE_LEAKS");
    heap_opt_reset_for_tests();
    pool_reset_options();
    EXPECT_NE(std::string::npos, err.find("kmem_pool_destroy(leaky): 6 blocks")) << err;
    EXPECT_NE(std::string::npos, err.find("5 live blocks of 32 bytes")) << err;
    EXPECT_NE(std::string::npos, err.find("large block")) << err;
}

// ------------------------------------------------------------------ config flags

TEST(PoolFlags, FillOnAllocAndOnFree) {
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_FILL_ON_ALLOC | KMEM_POOL_FILL_ON_FREE;
    kmem_pool *p = kmem_pool_create("fill", &cfg);
    unsigned char *b = static_cast<unsigned char *>(kmem_pool_alloc(p, 100, 0));
    for (size_t i = 0; i < 112; i++) ASSERT_EQ(KMEM_POOL_ALLOC_PATTERN, b[i]) << i;
    unsigned char *z = static_cast<unsigned char *>(kmem_pool_alloc(p, 100, KM_ZERO));
    for (size_t i = 0; i < 100; i++) ASSERT_EQ(0, z[i]);
    kmem_pool_free(p, b);
    if (!kAsan) {
        for (size_t i = 0; i < 112; i++) ASSERT_EQ(KMEM_POOL_FREE_PATTERN, b[i]) << i;
    }
    // Handed out again: checked (intact), then filled for allocation.
    testing::internal::CaptureStderr();
    unsigned char *again = static_cast<unsigned char *>(kmem_pool_alloc(p, 100, 0));
    EXPECT_EQ("", testing::internal::GetCapturedStderr());
    EXPECT_EQ(b, again);
    kmem_pool_destroy(p);
}

TEST(PoolFlags, WriteAfterFreeIsReportedOnReuse) {
    if (kAsan) GTEST_SKIP() << "ASan reports the test's own write after free first";
    ReportMode rm;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_FILL_ON_FREE;
    kmem_pool *p = kmem_pool_create("uaf", &cfg);
    char *b = static_cast<char *>(kmem_pool_alloc(p, 64, 0));
    kmem_pool_free(p, b);
    b[10] = 'X';  // the bug
    testing::internal::CaptureStderr();
    char *again = static_cast<char *>(kmem_pool_alloc(p, 64, 0));
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(b, again);
    EXPECT_NE(std::string::npos, err.find("was written after it was freed (byte 10")) << err;
    kmem_pool_destroy(p);
}

TEST(PoolFlags, CheckEveryCallValidates) {
    ReportMode rm;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_CHECK_EVERY_CALL;
    kmem_pool *p = kmem_pool_create("check", &cfg);
    void *a = kmem_pool_alloc(p, 64, 0);
    void *b = kmem_pool_alloc(p, 64, 0);
    testing::internal::CaptureStderr();
    kmem_pool_free(p, b);
    EXPECT_EQ("", testing::internal::GetCapturedStderr());
    // Damage: a collectible bit on the free slot of b.  The next call's validation says so.
    pool_ref ref{};
    ASSERT_TRUE(pool_find_slot(p, b, &ref));
    __atomic_fetch_or(pool_bm(&ref.at, POOL_BM_COLLECTIBLE), uint64_t{1} << (ref.at.idx % 64),
                      __ATOMIC_RELAXED);
    testing::internal::CaptureStderr();
    kmem_pool_free(p, a);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("bits on free slots")) << err;
    __atomic_fetch_and(pool_bm(&ref.at, POOL_BM_COLLECTIBLE), ~(uint64_t{1} << (ref.at.idx % 64)),
                       __ATOMIC_RELAXED);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

TEST(PoolFlags, NoThreadCollectsOnlyWhenAsked) {
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.gc_threshold = 4096;
    kmem_pool *p = kmem_pool_create("nothread", &cfg);
    for (int i = 0; i < 1000; i++) kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE);
    EXPECT_EQ(0u, Stats(p).collections);
    EXPECT_FALSE(p->hk_started);
    EXPECT_EQ(1000u, kmem_pool_maybe_collect(p));
    EXPECT_EQ(0u, kmem_pool_maybe_collect(p)) << "below the threshold now";
    EXPECT_EQ(1u, Stats(p).collections);
    kmem_pool_destroy(p);
}

// ------------------------------------------------------------------ threads' caches

TEST(PoolThreads, ThreadFlushEmptiesThisThreadsPoolCaches) {
    kmem_pool *p = kmem_pool_create("flush", nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 40; i++) v.push_back(kmem_pool_alloc(p, 48, 0));
    for (void *b : v) kmem_pool_free(p, b);
    EXPECT_GT(Stats(p).cached_blocks, 0u);
    kmem_cache_thread_flush();
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(0u, st.cached_blocks);
    EXPECT_EQ(40u, st.allocs);
    EXPECT_EQ(40u, st.frees);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

TEST(PoolThreads, ManyPoolsShareTheWaysOfAThread) {
    std::vector<kmem_pool *> pools;
    for (int i = 0; i < 3 * POOL_TLS_WAYS; i++) pools.push_back(kmem_pool_create("ways", nullptr));
    std::vector<std::vector<void *>> held(pools.size());
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < pools.size(); i++) {
            void *b = kmem_pool_alloc(pools[i], 32, 0);
            ASSERT_NE(nullptr, b);
            held[i].push_back(b);
            if (round % 3 == 2) {
                kmem_pool_free(pools[i], held[i].front());
                held[i].erase(held[i].begin());
            }
        }
    for (size_t i = 0; i < pools.size(); i++) {
        EXPECT_EQ(held[i].size(), Stats(pools[i]).live_blocks);
        EXPECT_EQ(0, kmem_pool_validate(pools[i]));
        kmem_pool_destroy(pools[i]);
    }
    EXPECT_EQ(0, slabcache_validate());
}

// ------------------------------------------------------------------ statistics, status

TEST(PoolStats, CountersAndPeak) {
    kmem_pool *p = kmem_pool_create("stats", nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 100; i++) v.push_back(kmem_pool_alloc(p, 64, 0));
    for (int i = 0; i < 60; i++) kmem_pool_free(p, v[i]);
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(40u, st.live_blocks);
    EXPECT_EQ(40u * 64, st.live_bytes);
    EXPECT_EQ(100u, st.allocs);
    EXPECT_EQ(60u, st.frees);
    // Sampled without a lock: the bytes thread caches reserved bound it from above (within
    // a run of POOL_RUN_BYTES per thread and class).
    EXPECT_GE(st.peak_bytes, 100u * 64);
    EXPECT_LE(st.peak_bytes, 100u * 64 + POOL_RUN_BYTES);
    EXPECT_GE(st.slabs, 1u);
    EXPECT_EQ(1u, st.size_classes_used);
    EXPECT_GE(st.footprint_bytes, st.live_bytes);
    errno = 0;
    EXPECT_EQ(-1, kmem_pool_get_stats(p, nullptr));
    EXPECT_EQ(EINVAL, errno);
    kmem_pool_destroy(p);
    // Exact peak without thread caches.
    kmem_pool_config cfg{};
    cfg.max_blocks = 1000;
    p = kmem_pool_create("peak", &cfg);
    v.clear();
    for (int i = 0; i < 100; i++) v.push_back(kmem_pool_alloc(p, 64, 0));
    for (int i = 0; i < 100; i++) kmem_pool_free(p, v[i]);
    EXPECT_EQ(6400u, Stats(p).peak_bytes);
    kmem_pool_destroy(p);
}

TEST(PoolStats, PrintStatusEveryVerbosity) {
    kmem_pool_config cfg{};
    cfg.intercept_free = [](kmem_pool *, void *, void *) {};
    kmem_pool *p = kmem_pool_create("status", &cfg);
    void *a = kmem_pool_alloc(p, 24, KMEM_POOL_COLLECTIBLE);
    void *b = kmem_pool_alloc(p, 24, KMEM_POOL_INTERCEPT_FREE);
    void *big = kmem_pool_alloc(p, 30000, 0);
    std::string out[4];
    for (int v = 0; v < 4; v++) {
        char *buf = nullptr;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        kmem_pool_print_status(p, f, v);
        fclose(f);
        out[v] = std::string(buf, len);
        free(buf);
    }
    EXPECT_NE(std::string::npos, out[0].find("kmem_pool status: 3 live blocks")) << out[0];
    EXPECT_EQ(1, std::count(out[0].begin(), out[0].end(), '\n'));
    EXPECT_NE(std::string::npos, out[1].find("class    32:")) << out[1];
    EXPECT_EQ(std::string::npos, out[1].find("large 0x"));
    EXPECT_NE(std::string::npos, out[2].find("large 0x")) << out[2];
    char addr[64];
    snprintf(addr, sizeof addr, "%p 32 bytes collectible", a);
    EXPECT_NE(std::string::npos, out[3].find(addr)) << out[3];
    snprintf(addr, sizeof addr, "%p 32 bytes intercept", b);
    EXPECT_NE(std::string::npos, out[3].find(addr)) << out[3];
    (void)big;
    kmem_pool_destroy(p);
}

// slabcache_dump shows a pool's block in hex, with where it lives: its class cache and slot
// for a small block, the page block for a large one.
TEST(PoolStats, SlabcacheDumpShowsABlock) {
    kmem_pool *p = kmem_pool_create("dump", nullptr);
    char *small = static_cast<char *>(kmem_pool_alloc(p, 40, KM_ZERO));
    char *big = static_cast<char *>(kmem_pool_alloc(p, 20000, 0));
    ASSERT_TRUE(small && big);
    memcpy(small, "hello, kmem_pool", 16);
    memcpy(big, "a large pool blk", 16);
    std::string out[2];
    char *blocks[2] = {small, big};
    for (int i = 0; i < 2; i++) {
        char *buf = nullptr;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        slabcache_dump(f, blocks[i], kmem_pool_block_size(p, blocks[i]));
        fclose(f);
        out[i] = std::string(buf, len);
        free(buf);
    }
    EXPECT_NE(std::string::npos, out[0].find(": cache kmem_pool-48, slot ")) << out[0];
    EXPECT_NE(std::string::npos, out[0].find(", in use\n")) << out[0];
    EXPECT_NE(std::string::npos, out[0].find("68 65 6c 6c 6f 2c 20 6b  6d 65 6d 5f 70 6f 6f 6c "
                                             "|hello, kmem_pool|"))
        << out[0];
    EXPECT_EQ(4, std::count(out[0].begin(), out[0].end(), '\n')) << "a header, 48 bytes in 3 lines";
    EXPECT_NE(std::string::npos, out[1].find(": large block (kmem_pool) at ")) << out[1];
    EXPECT_NE(std::string::npos, out[1].find("|a large pool blk|")) << out[1];
    kmem_pool_destroy(p);
}

// ------------------------------------------------------------------ misuse (report mode)

TEST(PoolMisuse, EachMisuseIsReportedAndRefused) {
    ReportMode rm;
    kmem_pool *p = kmem_pool_create("misuse", nullptr);
    kmem_pool *q = kmem_pool_create("other", nullptr);
    void *c = kmem_pool_alloc(p, 32, KMEM_POOL_COLLECTIBLE);
    void *plain = kmem_pool_alloc(p, 32, 0);
    void *theirs = kmem_pool_alloc(q, 32, 0);
    void *large = kmem_pool_alloc(p, 50000, KMEM_POOL_COLLECTIBLE);
    int local = 0;
    struct Case {
        const char *what;
        std::function<void()> op;
        const char *expect;
    };
    std::vector<Case> cases = {
        {"free collectible", [&] { kmem_pool_free(p, c); }, "is a collectible block"},
        {"free large collectible", [&] { kmem_pool_free(p, large); }, "is a collectible block"},
        {"free of another pool's block", [&] { kmem_pool_free(p, theirs); },
         "is not a block of this pool"},
        {"free of a stack address", [&] { kmem_pool_free(p, &local); },
         "is not a block of this pool"},
        {"interior pointer", [&] { kmem_pool_free(p, static_cast<char *>(plain) + 8); },
         "is not a block of this pool"},
        {"inner_free outside a finalizer", [&] { kmem_pool_inner_free(p, plain); },
         "outside the pool's intercept_free"},
        {"mark of no block", [&] { kmem_pool_mark(p, &local); }, "is not a block of this pool"},
        {"make_collectible of no block", [&] { kmem_pool_make_collectible(p, theirs); },
         "is not a block of this pool"},
        {"block_size of no block", [&] { kmem_pool_block_size(p, &local); },
         "is not a block of this pool"},
    };
    for (auto &cs : cases) {
        kmem_pool_stats before = Stats(p);
        testing::internal::CaptureStderr();
        cs.op();
        std::string err = testing::internal::GetCapturedStderr();
        EXPECT_NE(std::string::npos, err.find(cs.expect)) << cs.what << ": " << err;
        EXPECT_EQ(0u, err.find("slabcache: ")) << cs.what;
        kmem_pool_stats after = Stats(p);
        EXPECT_EQ(before.live_blocks, after.live_blocks) << cs.what;
        EXPECT_EQ(before.collectible_blocks, after.collectible_blocks) << cs.what;
        EXPECT_EQ(0, kmem_pool_validate(p)) << cs.what;
    }
    // Double frees: in the thread cache, then after the block went back to its slab.
    kmem_pool_free(p, plain);
    testing::internal::CaptureStderr();
    kmem_pool_free(p, plain);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("double free of")) << err;
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_cache_thread_flush();
    testing::internal::CaptureStderr();
    kmem_pool_free(p, plain);
    err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("double free of")) << err;
    testing::internal::CaptureStderr();
    kmem_pool_mark(p, plain);
    err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("is a free block")) << err;
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(q);
    // A destroyed pool.
    testing::internal::CaptureStderr();
    errno = 0;
    EXPECT_EQ(nullptr, kmem_pool_alloc(q, 16, 0));
    EXPECT_EQ(EINVAL, errno);
    kmem_pool_destroy(q);
    err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("is not a live pool")) << err;
    kmem_pool_destroy(p);
}

void DoubleFree() {
    kmem_pool *p = kmem_pool_create("death", nullptr);
    void *b = kmem_pool_alloc(p, 16, 0);
    kmem_pool_free(p, b);
    kmem_pool_free(p, b);
}

void FreeCollectible() {
    kmem_pool *p = kmem_pool_create("death", nullptr);
    kmem_pool_free(p, kmem_pool_alloc(p, 16, KMEM_POOL_COLLECTIBLE));
}

void InnerFreeOutside() {
    kmem_pool *p = kmem_pool_create("death", nullptr);
    kmem_pool_inner_free(p, kmem_pool_alloc(p, 16, 0));
}

void OtherPoolsBlock() {
    kmem_pool *p = kmem_pool_create("death", nullptr);
    kmem_pool *q = kmem_pool_create("death2", nullptr);
    kmem_pool_free(p, kmem_pool_alloc(q, 16, 0));
}

TEST(PoolMisuseDeathTest, DefaultModeAborts) {
    testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(DoubleFree(), "slabcache: kmem_pool_free\\(death\\): double free");
    EXPECT_DEATH(FreeCollectible(), "is a collectible block");
    EXPECT_DEATH(InnerFreeOutside(), "outside the pool's intercept_free");
    EXPECT_DEATH(OtherPoolsBlock(), "is not a block of this pool");
}

// ------------------------------------------------------------------ random model

struct ModelBlock {
    size_t size;
    uint32_t seed;
    bool collectible;
    bool wanted;  // a collectible block the mark callback marks
};

struct Model {
    std::map<void *, ModelBlock> live;
};

void ModelMark(kmem_pool *p, void *arg) {
    auto *m = static_cast<Model *>(arg);
    for (auto &[b, mb] : m->live)
        if (!mb.collectible || mb.wanted) kmem_pool_mark(p, b);  // plain ones: harmless
}

TEST(PoolModel, RandomOperationsAgainstAModel) {
    for (unsigned config = 0; config < 3; config++) {
        Model m;
        kmem_pool_config cfg{};
        cfg.flags = KMEM_POOL_NO_THREAD;
        cfg.mark = ModelMark;
        cfg.arg = &m;
        if (config == 1) cfg.max_blocks = 400;
        if (config == 2) cfg.flags |= KMEM_POOL_FILL_ON_FREE | KMEM_POOL_FILL_ON_ALLOC;
        kmem_pool *p = kmem_pool_create("model", &cfg);
        std::mt19937 rng(42 + config);
        uint32_t seed = 0;
        size_t collectible_bytes = 0;
        // Sanitizers instrument every byte the model fills and checks: fewer steps there.
        const int steps = kShadowMemory ? 1200 : 4000;
        for (int step = 0; step < steps; step++) {
            unsigned op = rng() % 100;
            if (op < 45 || m.live.empty()) {
                size_t size = rng() % 8 == 0 ? 8000 + rng() % 40000 : 1 + rng() % 600;
                unsigned flags = rng() % 3 == 0 ? KMEM_POOL_COLLECTIBLE : 0;
                void *b = kmem_pool_alloc(p, size, flags);
                if (!b) {
                    ASSERT_EQ(1u, config) << "only the capped pool may refuse";
                    ASSERT_EQ(ENOMEM, errno);
                    continue;
                }
                ASSERT_EQ(0u, m.live.count(b)) << "a live block handed out twice";
                Fill(b, size, ++seed);
                m.live[b] = {size, seed, flags != 0, rng() % 2 == 0};
                if (flags) collectible_bytes += kmem_pool_block_size(p, b);
            } else if (op < 75) {
                auto it = m.live.begin();
                std::advance(it, rng() % m.live.size());
                if (it->second.collectible) continue;
                ASSERT_TRUE(Check(it->first, it->second.size, it->second.seed));
                kmem_pool_free(p, it->first);
                m.live.erase(it);
            } else if (op < 85) {
                auto it = m.live.begin();
                std::advance(it, rng() % m.live.size());
                if (it->second.collectible) continue;
                size_t size = 1 + rng() % 3000;
                void *n = kmem_pool_realloc(p, it->first, size);
                if (!n) {  // the capped pool: the block is left as it was
                    ASSERT_EQ(1u, config);
                    ASSERT_TRUE(Check(it->first, it->second.size, it->second.seed));
                    continue;
                }
                ModelBlock mb = it->second;
                ASSERT_TRUE(Check(n, std::min(size, mb.size), mb.seed));
                m.live.erase(it);
                Fill(n, size, mb.seed);
                mb.size = size;
                m.live[n] = mb;
            } else if (op < 92) {
                auto it = m.live.begin();
                std::advance(it, rng() % m.live.size());
                if (!it->second.collectible) {
                    kmem_pool_make_collectible(p, it->first);
                    it->second.collectible = true;
                    collectible_bytes += kmem_pool_block_size(p, it->first);
                }
            } else {
                size_t expect = 0;
                for (auto &[b, mb] : m.live) expect += mb.collectible && !mb.wanted;
                ASSERT_EQ(expect, kmem_pool_collect(p)) << step;
                for (auto it = m.live.begin(); it != m.live.end();) {
                    if (it->second.collectible && !it->second.wanted) {
                        it = m.live.erase(it);
                    } else {
                        ASSERT_TRUE(Check(it->first, it->second.size, it->second.seed));
                        ++it;
                    }
                }
            }
            if (step % 50 == 0) {
                ASSERT_EQ(0, kmem_pool_validate(p)) << step;
                kmem_pool_stats st = Stats(p);
                ASSERT_EQ(m.live.size(), st.live_blocks) << step;
                size_t coll = 0;
                for (auto &[b, mb] : m.live) coll += mb.collectible;
                ASSERT_EQ(coll, st.collectible_blocks) << step;
            }
        }
        EXPECT_EQ(0, kmem_pool_validate(p));
        kmem_pool_destroy(p);
        EXPECT_EQ(0, slabcache_validate());
        (void)collectible_bytes;
    }
}

}  // namespace
