// SPDX-License-Identifier: MIT
// Memory given back: the one shrink behind kmem_cache_shrink, slabcache_reap (and malloc_trim,
// tests/malloc/trim_test.cc), the depot's working-set reap and the buddy decay driven from the
// slab layer's slow paths, and the reclaim before ENOMEM.  A fake clock (the buddy layer's,
// which the slab layer's reap reads too) stands for the time that passes: no test waits.
// The scenarios are the ones of the retention and ENOMEM reports: many 4000-byte blocks
// allocated then freed; small objects freed in random order, then one large block under a
// limit.  The depot reap follows Bonwick & Adams (USENIX 2001) section 3.5 and libumem's reap.
#include <gtest/gtest.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <random>
#include <vector>

#include "buddy/buddy.h"
#include "heap/heap.h"
#include "slab/internal.h"
#include "slab/kmalloc.h"
#include "slab/slab.h"

namespace {

uint64_t g_now_ms;
uint64_t FakeClock() { return __atomic_load_n(&g_now_ms, __ATOMIC_RELAXED); }
void Advance(uint64_t ms) { __atomic_fetch_add(&g_now_ms, ms, __ATOMIC_RELAXED); }

// Bytes of the heap that may be resident: allocated buddy blocks (slabs, large blocks) and
// free pages not purged yet.  Kept free extents are purged (heap), so they are not counted.
size_t ResidentBytes() {
    struct buddy_stats st;
    buddy_get_stats(&st);
    return st.alloc_bytes + st.dirty_free_bytes;
}

class ReclaimTest : public ::testing::Test {
  protected:
    void SetUp() override {
        __atomic_store_n(&g_now_ms, 100000000, __ATOMIC_RELAXED);
        buddy_set_clock_for_tests(FakeClock);
        old_decay_ = buddy_set_decay_ms(BUDDY_DECAY_MS_DEFAULT);
        slabcache_reap();  // start from nothing cached
    }
    void TearDown() override {
        buddy_set_decay_ms(old_decay_);
        buddy_set_clock_for_tests(nullptr);
        EXPECT_EQ(slabcache_validate(), 0);
    }
    // Allocator activity that goes through the slow paths (refills, depot exchanges) but
    // holds on to almost nothing: one step of `ms` of the fake clock.
    static void Activity(uint64_t ms) {
        void *p[512];
        for (auto &q : p)
            q = kmalloc(64, 0);
        for (auto &q : p)
            kfree(q);
        Advance(ms);
    }
    // n objects of c allocated, then all freed: the thread's magazines and the depot fill.
    static void AllocAndFreeAll(struct kmem_cache *c, size_t n) {
        std::vector<void *> v(n);
        for (auto &p : v)
            ASSERT_NE(p = kmem_cache_alloc(c, 0), nullptr);
        for (auto p : v)
            kmem_cache_free(c, p);
    }
    uint32_t old_decay_ = 0;
};

// After a program frees everything, 90% of the freed pages are back with the OS within one
// second of further allocator activity (none of it in the class that was freed).
TEST_F(ReclaimTest, FreedPagesGoBackWithinOneSecondOfActivity) {
    constexpr size_t kBlocks = 50000;
    Activity(0);
    const size_t base = ResidentBytes();
    std::vector<void *> v(kBlocks);
    for (auto &p : v) {
        p = kmalloc(4000, 0);
        ASSERT_NE(p, nullptr);
        memset(p, 0x5a, 4000);
    }
    const size_t peak = ResidentBytes();
    ASSERT_GT(peak, base + kBlocks * 4000);
    for (auto p : v)
        kfree(p);
    const size_t freed = peak - base;
    for (int step = 0; step < 100; step++)  // 100 steps of 10 ms
        Activity(10);
    const size_t now = ResidentBytes();
    EXPECT_LE(now - std::min(now, base), freed / 10)
        << "resident after 1 s of activity: " << now << ", before: " << base
        << ", at the peak: " << peak;
}

// ... and at once after slabcache_reap() (the body of malloc_trim), which says how much.
TEST_F(ReclaimTest, ReapGivesFreedPagesBackAtOnce) {
    constexpr size_t kBlocks = 50000;
    buddy_set_decay_ms(BUDDY_DECAY_NEVER);  // nothing goes back unless asked
    Activity(0);
    const size_t base = ResidentBytes();
    std::vector<void *> v(kBlocks);
    for (auto &p : v) {
        p = kmalloc(4000, 0);
        ASSERT_NE(p, nullptr);
        memset(p, 0x5a, 4000);
    }
    const size_t peak = ResidentBytes();
    for (auto p : v)
        kfree(p);
    ASSERT_GT(ResidentBytes(), base + (peak - base) / 2) << "kept until asked";
    const size_t given = slabcache_reap();
    const size_t now = ResidentBytes();
    EXPECT_GE(given, (peak - base) * 9 / 10);
    EXPECT_LE(now - std::min(now, base), (peak - base) / 10);
    EXPECT_EQ(slabcache_reap(), 0u) << "nothing freed since: nothing to give";
}

// kmem_cache_shrink and slabcache_reap are one shrink: each leaves the cache with nothing
// cached (the calling thread's magazines and the depot) and no empty slab.
TEST_F(ReclaimTest, ShrinkAndReapShareOneShrink) {
    struct kmem_cache *c[2];
    c[0] = kmem_cache_create("reclaim_a", 200, 0, 0, nullptr);
    c[1] = kmem_cache_create("reclaim_b", 200, 0, 0, nullptr);
    ASSERT_TRUE(c[0] && c[1]);
    for (int round = 0; round < 2; round++) {
        for (auto cache : c) {
            std::vector<void *> v(20000);
            for (auto &p : v)
                ASSERT_NE(p = kmem_cache_alloc(cache, 0), nullptr);
            for (auto p : v)
                kmem_cache_free(cache, p);
            struct kmem_cache_stats st;
            ASSERT_EQ(kmem_cache_get_stats(cache, &st), 0);
            ASSERT_GT(st.cached_objects, 0u);
            ASSERT_GT(st.depot_full, 0u);
            ASSERT_GT(st.empty_slabs, 0u);
        }
        if (round == 0)
            ASSERT_EQ(kmem_cache_shrink(c[0]), 0);  // one cache
        else
            ASSERT_GT(slabcache_reap(), 0u);  // every cache
        for (int i = 0; i < 2; i++) {
            struct kmem_cache_stats st;
            ASSERT_EQ(kmem_cache_get_stats(c[i], &st), 0);
            if (round == 0 && i == 1) {  // the shrink of c[0] leaves c[1] alone
                EXPECT_GT(st.cached_objects, 0u);
                continue;
            }
            EXPECT_EQ(st.cached_objects, 0u) << "round " << round << " cache " << i;
            EXPECT_EQ(st.depot_full + st.depot_empty, 0u);
            EXPECT_EQ(st.empty_slabs, 0u);
            EXPECT_EQ(st.total_slabs, 0u);
        }
    }
    EXPECT_EQ(kmem_cache_shrink(nullptr), -1);
    kmem_cache_destroy(c[0]);
    kmem_cache_destroy(c[1]);
}

// The depot's working set: full magazines that nobody took for a whole reap interval go back
// to their slabs at the next reap, driven by slow paths of other caches; a depot in use keeps
// what it used.
TEST_F(ReclaimTest, IdleDepotMagazinesAreReaped) {
    struct kmem_cache *idle = kmem_cache_create("reclaim_idle", 128, 0, 0, nullptr);
    ASSERT_NE(idle, nullptr);
    ASSERT_NO_FATAL_FAILURE(AllocAndFreeAll(idle, 20000));
    struct kmem_cache_stats st;
    ASSERT_EQ(kmem_cache_get_stats(idle, &st), 0);
    ASSERT_GT(st.depot_full, 0u);
    const size_t mag = st.magazine_size;
    // Two intervals: the first reap notes the working set (the depot was in use before it),
    // the second gives back what stayed unused since.
    for (int i = 0; i < 3; i++) {
        Advance(SLAB_REAP_MS);
        Activity(0);
    }
    ASSERT_EQ(kmem_cache_get_stats(idle, &st), 0);
    EXPECT_EQ(st.depot_full, 0u);
    EXPECT_EQ(st.depot_empty, 0u);
    EXPECT_LE(st.cached_objects, 2 * mag) << "only the thread's own two magazines";
    EXPECT_LE(st.empty_slabs, 4u) << "empty slabs beyond the reserve went back";
    EXPECT_EQ(kmem_cache_validate(idle), 0);
    kmem_cache_destroy(idle);
}

// The reaping thread's own magazines: a cache it has not used for a whole interval gets its
// objects back into the slabs and its empty slabs released (nothing cached, nothing kept),
// while a cache it keeps using keeps its magazines.  libumem's reap leaves per-CPU magazines
// alone; a thread's magazines here would otherwise pin their slabs until the thread exits.
TEST_F(ReclaimTest, ReapFlushesTheCallersMagazinesOfCachesItLeftIdle) {
    struct kmem_cache *idle = kmem_cache_create("reclaim_self_idle", 1024, 0, 0, nullptr);
    struct kmem_cache *busy = kmem_cache_create("reclaim_self_busy", 1024, 0, 0, nullptr);
    ASSERT_NE(idle, nullptr);
    ASSERT_NE(busy, nullptr);
    for (auto *c : {idle, busy})
        ASSERT_NO_FATAL_FAILURE(AllocAndFreeAll(c, 100));
    struct kmem_cache_stats st;
    ASSERT_EQ(kmem_cache_get_stats(idle, &st), 0);
    ASSERT_GT(st.cached_objects, 0u);
    for (int i = 0; i < 3; i++) {
        Advance(SLAB_REAP_MS);
        kmem_cache_free(busy, kmem_cache_alloc(busy, 0));
        Activity(0);
    }
    ASSERT_EQ(kmem_cache_get_stats(idle, &st), 0);
    EXPECT_EQ(st.cached_objects, 0u);
    EXPECT_EQ(st.active_objects, 0u);
    EXPECT_EQ(st.empty_slabs, 0u) << "an idle cache keeps no reserve";
    EXPECT_EQ(st.total_slabs, 0u);
    ASSERT_EQ(kmem_cache_get_stats(busy, &st), 0);
    EXPECT_GT(st.cached_objects, 0u) << "a cache in use keeps its magazines";
    EXPECT_EQ(kmem_cache_validate(idle), 0);
    EXPECT_EQ(kmem_cache_validate(busy), 0);
    kmem_cache_destroy(idle);
    kmem_cache_destroy(busy);
}

// The same reap when the program's only activity afterwards is large blocks (kmalloc's large
// path goes to the buddy layer, not through any magazine): the depot of the freed class is
// still given back.
TEST_F(ReclaimTest, IdleDepotsAreReapedByLargeBlockActivityAlone) {
    struct kmem_cache *idle = kmem_cache_create("reclaim_idle_large", 4096, 0, 0, nullptr);
    ASSERT_NE(idle, nullptr);
    ASSERT_NO_FATAL_FAILURE(AllocAndFreeAll(idle, 4000));
    struct kmem_cache_stats st;
    ASSERT_EQ(kmem_cache_get_stats(idle, &st), 0);
    ASSERT_GT(st.depot_full, 0u);
    const size_t mag = st.magazine_size;
    for (int i = 0; i < 3; i++) {
        Advance(SLAB_REAP_MS);
        for (int j = 0; j < 64; j++) {  // past the tick's countdown, whatever it was
            void *big = kmalloc(64 << 10, 0);
            ASSERT_NE(big, nullptr);
            kfree(big);
        }
    }
    ASSERT_EQ(kmem_cache_get_stats(idle, &st), 0);
    EXPECT_EQ(st.depot_full, 0u);
    EXPECT_LE(st.cached_objects, 2 * mag) << "only the thread's own two magazines";
    EXPECT_EQ(kmem_cache_validate(idle), 0);
    kmem_cache_destroy(idle);
}

// Reclaim before ENOMEM: under a heap limit, small objects freed in random order sit in the
// depot and the thread's magazines, one or two in nearly every slab, so no extent is wholly
// free; a large allocation must still succeed, the allocator giving back what it holds.
TEST_F(ReclaimTest, LargeAllocationAfterFreeReclaimsUnderALimit) {
    struct heap_options old, lim;
    heap_get_options(&old);
    lim = old;
    struct heap_stats hs;
    heap_get_stats(&hs);
    const size_t held = hs.sbrk_bytes + hs.mmap_bytes;
    lim.limit = held + (64u << 20);
    lim.keep_free = 0;
    ASSERT_EQ(heap_set_options(&lim), 0);
    constexpr size_t kObjects = 400000;  // 100 bytes each: about 45 MiB of slabs
    std::vector<void *> v(kObjects);
    for (auto &p : v)
        ASSERT_NE(p = kmalloc(100, 0), nullptr);
    std::mt19937_64 rng(14);
    std::shuffle(v.begin(), v.end(), rng);
    for (auto p : v)
        kfree(p);
    struct buddy_stats b0, b1;
    buddy_get_stats(&b0);
    void *big = kmalloc(40u << 20, 0);  // 45 + 40 MiB do not fit in 64 (+ kept extents)
    const int err = errno;
    buddy_get_stats(&b1);
    EXPECT_NE(big, nullptr) << "errno " << err;
    EXPECT_GT(b1.reclaims, b0.reclaims) << "the limit was reached: the reclaim ran";
    kfree(big);
    ASSERT_EQ(heap_set_options(&old), 0);
    // What a caller holds is never taken: objects allocated before a reclaim keep their data.
    std::vector<char *> kept(1000);
    for (size_t i = 0; i < kept.size(); i++) {
        kept[i] = static_cast<char *>(kmalloc(100, 0));
        memset(kept[i], static_cast<int>(i & 0x7f), 100);
    }
    ASSERT_EQ(heap_set_options(&lim), 0);
    big = kmalloc(48u << 20, 0);  // may fail; the reclaim runs either way
    kfree(big);
    ASSERT_EQ(heap_set_options(&old), 0);
    for (size_t i = 0; i < kept.size(); i++) {
        for (size_t j = 0; j < 100; j++)
            ASSERT_EQ(kept[i][j], static_cast<char>(i & 0x7f));
        kfree(kept[i]);
    }
}

// The reclaim runs from inside a refill of the very cache that ran out: the magazine being
// refilled belongs to that slow path and is left alone (a reclaim that emptied it would hand
// objects out twice).  Every object allocated until ENOMEM is distinct and the cache valid.
TEST_F(ReclaimTest, ReclaimInsideARefillLeavesThatMagazineAlone) {
    struct kmem_cache *c = kmem_cache_create("reclaim_refill", 100, 0, 0, nullptr);
    ASSERT_NE(c, nullptr);
    struct heap_options old, lim;
    heap_get_options(&old);
    lim = old;
    struct heap_stats hs;
    heap_get_stats(&hs);
    lim.limit = hs.sbrk_bytes + hs.mmap_bytes + (16u << 20);
    lim.keep_free = 0;
    ASSERT_EQ(heap_set_options(&lim), 0);
    struct buddy_stats b0, b1;
    buddy_get_stats(&b0);
    std::vector<void *> v;
    for (;;) {
        void *p = kmem_cache_alloc(c, 0);
        if (!p)
            break;
        v.push_back(p);
        ASSERT_LT(v.size(), 10000000u) << "the limit never stopped the allocation";
    }
    buddy_get_stats(&b1);
    ASSERT_EQ(heap_set_options(&old), 0);
    EXPECT_GT(b1.reclaims, b0.reclaims);
    EXPECT_EQ(kmem_cache_validate(c), 0);
    std::vector<void *> sorted(v);
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
        << "an object was handed out twice";
    for (auto p : v)
        kmem_cache_free(c, p);
    EXPECT_EQ(kmem_cache_validate(c), 0);
    kmem_cache_destroy(c);
}

}  // namespace
