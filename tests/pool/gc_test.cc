/* SPDX-License-Identifier: MIT */
// tests/pool/gc_test.cc - kmem_pool collections: mark and sweep, make_collectible, the
// threshold and factor arithmetic, finalizers (inner_free rules, re-entrancy, the master
// with attendants), the housekeeping thread, and the sweep guarantee under a concurrent
// allocator thread with a slow mark callback (run under TSan by tools/test.sh).
//
// Strategy: collections are driven with KMEM_POOL_NO_THREAD and kmem_pool_collect where
// the test needs to know when they run; the housekeeping thread is tested for starting,
// running finalizers on itself and stopping at destroy.  kmem_pool_validate runs after each
// collection.
#include <gtest/gtest.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "pool/internal.h"
#include "pool/pool.h"
}

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

// ------------------------------------------------------------------ mark and sweep

struct MarkSet {
    std::vector<void *> wanted;
    int calls = 0;
};

void MarkWanted(kmem_pool *p, void *arg) {
    auto *m = static_cast<MarkSet *>(arg);
    m->calls++;
    kmem_pool_mark_bulk(p, m->wanted.size(), m->wanted.data());
}

TEST(PoolGc, UnmarkedCollectibleBlocksAreSweptMarkedOnesKept) {
    MarkSet m;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.mark = MarkWanted;
    cfg.arg = &m;
    kmem_pool *p = kmem_pool_create("gc", &cfg);
    std::vector<void *> plain, coll;
    for (int i = 0; i < 1000; i++) {
        size_t size = i % 10 == 0 ? 20000 : 16 + i % 300;
        void *b = kmem_pool_alloc(p, size, KMEM_POOL_COLLECTIBLE);
        ASSERT_NE(nullptr, b);
        memset(b, i & 0xff, 16);
        coll.push_back(b);
        if (i % 2) m.wanted.push_back(b);
        plain.push_back(kmem_pool_alloc(p, 40, 0));
    }
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(1000u, st.collectible_blocks);
    EXPECT_EQ(2000u, st.live_blocks);
    for (void *b : plain) kmem_pool_mark(p, b);  // harmless
    EXPECT_EQ(500u, kmem_pool_collect(p));
    EXPECT_EQ(1, m.calls);
    EXPECT_EQ(0, kmem_pool_validate(p));
    st = Stats(p);
    EXPECT_EQ(1u, st.collections);
    EXPECT_EQ(500u, st.swept_blocks);
    EXPECT_EQ(500u, st.collectible_blocks);
    EXPECT_EQ(1500u, st.live_blocks);
    EXPECT_GT(st.last_pause_ns, 0u);
    EXPECT_EQ(st.last_pause_ns, st.max_pause_ns);
    EXPECT_EQ(st.last_pause_ns, st.total_gc_ns);
    for (size_t i = 1; i < coll.size(); i += 2) {
        EXPECT_EQ(static_cast<unsigned char>(i & 0xff), static_cast<unsigned char *>(coll[i])[5]);
        EXPECT_GT(kmem_pool_block_size(p, coll[i]), 0u);
    }
    // Marks last one cycle: with none this time, every collectible block goes.
    m.wanted.clear();
    EXPECT_EQ(500u, kmem_pool_collect(p));
    EXPECT_EQ(0u, Stats(p).collectible_blocks);
    EXPECT_EQ(1000u, Stats(p).live_blocks);
    EXPECT_EQ(0, kmem_pool_validate(p));
    EXPECT_EQ(0u, kmem_pool_collect(p));
    kmem_pool_destroy(p);
}

TEST(PoolGc, WithoutMarkCallbackEveryCollectibleBlockIsGarbage) {
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    kmem_pool *p = kmem_pool_create("nomark", &cfg);
    std::set<void *> swept;
    for (int i = 0; i < 300; i++)
        swept.insert(kmem_pool_alloc(p, 100, KMEM_POOL_COLLECTIBLE | KM_ZERO));
    void *keep = kmem_pool_alloc(p, 100, 0);
    EXPECT_EQ(300u, kmem_pool_collect(p));
    EXPECT_EQ(1u, Stats(p).live_blocks);
    EXPECT_EQ(100u + 12, kmem_pool_block_size(p, keep));
    EXPECT_EQ(0, kmem_pool_validate(p));
    // The swept slots are handed out again (the slabs the sweep emptied, up to the ones kept
    // empty, serve the next runs); kmem_cache_thread_flush returns this thread's run first.
    kmem_cache_thread_flush();
    size_t reused = 0;
    for (int i = 0; i < 300; i++) reused += swept.count(kmem_pool_alloc(p, 100, 0));
    EXPECT_GT(reused, 0u);
    kmem_pool_destroy(p);
}

TEST(PoolGc, MakeCollectibleIsOneWay) {
    MarkSet m;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.mark = MarkWanted;
    cfg.arg = &m;
    kmem_pool *p = kmem_pool_create("make", &cfg);
    void *a = kmem_pool_alloc(p, 64, 0);
    void *b = kmem_pool_alloc(p, 64, 0);
    void *big = kmem_pool_alloc(p, 100000, 0);
    EXPECT_EQ(0u, kmem_pool_collect(p)) << "plain blocks are never swept";
    kmem_pool_make_collectible(p, a);
    kmem_pool_make_collectible(p, a);  // already: nothing
    kmem_pool_make_collectible(p, big);
    kmem_pool_make_collectible(p, b);
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(3u, st.collectible_blocks);
    EXPECT_EQ(64u + 64 + kmem_pool_block_size(p, big), st.collectible_bytes);
    EXPECT_EQ(0, kmem_pool_validate(p));
    m.wanted = {b};
    EXPECT_EQ(2u, kmem_pool_collect(p));
    st = Stats(p);
    EXPECT_EQ(1u, st.live_blocks);
    EXPECT_EQ(0u, st.large_blocks);
    ReportMode rm;
    testing::internal::CaptureStderr();
    kmem_pool_free(p, b);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("is a collectible block")) << "one-way: " << err;
    kmem_pool_destroy(p);
}

TEST(PoolGc, ThresholdAndFactorArithmetic) {
    MarkSet m;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.mark = MarkWanted;
    cfg.arg = &m;
    cfg.gc_threshold = 64 * 1024;
    cfg.gc_factor = 3.0;
    kmem_pool *p = kmem_pool_create("threshold", &cfg);
    EXPECT_EQ(65536u, Stats(p).gc_threshold);
    // 1023 blocks of 64 bytes: 65472 < 65536, no collection due.
    for (int i = 0; i < 1023; i++) {
        void *b = kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE);
        if (i < 600) m.wanted.push_back(b);
    }
    EXPECT_EQ(65472u, Stats(p).collectible_bytes);
    EXPECT_EQ(0u, kmem_pool_maybe_collect(p));
    kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE);  // 65536: due
    EXPECT_EQ(424u, kmem_pool_maybe_collect(p));
    // Left: 600 * 64 = 38400; 38400 * 3 = 115200.
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(38400u, st.collectible_bytes);
    EXPECT_EQ(115200u, st.gc_threshold);
    // Never below the configured threshold: keep 100 blocks (6400 * 3 = 19200 < 65536).
    m.wanted.resize(100);
    EXPECT_EQ(500u, kmem_pool_collect(p));
    EXPECT_EQ(65536u, Stats(p).gc_threshold);
    // The default factor is 4.
    kmem_pool_config d{};
    d.flags = KMEM_POOL_NO_THREAD;
    d.gc_threshold = 1000;
    kmem_pool *q = kmem_pool_create("default-factor", &d);
    kmem_pool_make_collectible(q, kmem_pool_alloc(q, 8192, 0));
    kmem_pool_stats qs = Stats(q);
    EXPECT_EQ(1000u, qs.gc_threshold);
    MarkSet all;
    d.mark = MarkWanted;
    kmem_pool_destroy(q);
    d.arg = &all;
    q = kmem_pool_create("default-factor", &d);
    for (int i = 0; i < 10; i++) all.wanted.push_back(kmem_pool_alloc(q, 8192, KMEM_POOL_COLLECTIBLE));
    EXPECT_EQ(0u, kmem_pool_collect(q));
    EXPECT_EQ(4u * 81920, Stats(q).gc_threshold);
    kmem_pool_destroy(q);
    kmem_pool_destroy(p);
}

// ------------------------------------------------------------------ finalizers

struct FinLog {
    std::mutex mu;
    std::vector<void *> finalized;
    std::vector<pthread_t> threads;
    bool free_self = true;
    std::vector<std::pair<void *, std::vector<void *>>> attendants;  // master -> attendants
    std::vector<void *> also_free;  // inner_free these from the first finalizer call
    void *nested = nullptr;         // kmem_pool_free this (an INTERCEPT block) from a finalizer
    int depth = 0, max_depth = 0;
};

void Finalize(kmem_pool *p, void *block, void *arg) {
    auto *f = static_cast<FinLog *>(arg);
    // A finalizer only ever sees a live block (never one freed earlier in the same cycle).
    EXPECT_GT(kmem_pool_block_size(p, block), 0u);
    bool attendant = false;
    for (auto &[master, att] : f->attendants)
        attendant |= std::find(att.begin(), att.end(), block) != att.end();
    {
        std::lock_guard<std::mutex> g(f->mu);
        f->finalized.push_back(block);
        f->threads.push_back(pthread_self());
        f->depth++;
        f->max_depth = std::max(f->max_depth, f->depth);
    }
    for (auto &[master, att] : f->attendants)
        if (master == block)
            for (void *a : att) kmem_pool_inner_free(p, a);
    std::vector<void *> more;
    void *nested = nullptr;
    {
        std::lock_guard<std::mutex> g(f->mu);
        more.swap(f->also_free);
        std::swap(nested, f->nested);
    }
    for (void *a : more) kmem_pool_inner_free(p, a);
    if (nested) kmem_pool_free(p, nested);  // re-entrant: that block's finalizer runs now
    if (f->free_self && !attendant) kmem_pool_inner_free(p, block);  // masters free those
    std::lock_guard<std::mutex> g(f->mu);
    f->depth--;
}

TEST(PoolFinalizer, FreeOfAnInterceptBlockCallsTheFinalizerInline) {
    FinLog f;
    kmem_pool_config cfg{};
    cfg.intercept_free = Finalize;
    cfg.arg = &f;
    kmem_pool *p = kmem_pool_create("fin", &cfg);
    void *a = kmem_pool_alloc(p, 48, KMEM_POOL_INTERCEPT_FREE);
    void *big = kmem_pool_alloc(p, 50000, KMEM_POOL_INTERCEPT_FREE);
    kmem_pool_free(p, a);
    kmem_pool_free(p, big);
    ASSERT_EQ(2u, f.finalized.size());
    EXPECT_EQ(a, f.finalized[0]);
    EXPECT_EQ(big, f.finalized[1]);
    EXPECT_TRUE(pthread_equal(pthread_self(), f.threads[0]));
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(0u, st.live_blocks) << "the finalizer freed them with inner_free";
    EXPECT_EQ(2u, st.finalizers_run);
    // A finalizer that does not free its block keeps it allocated.
    f.free_self = false;
    void *b = kmem_pool_alloc(p, 48, KMEM_POOL_INTERCEPT_FREE);
    kmem_pool_free(p, b);
    EXPECT_EQ(1u, Stats(p).live_blocks);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);  // runs no finalizer
    EXPECT_EQ(3u, f.finalized.size());
}

TEST(PoolFinalizer, MasterWithAttendantsIsCollectedWhole) {
    FinLog f;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.intercept_free = Finalize;
    cfg.arg = &f;
    kmem_pool *p = kmem_pool_create("master", &cfg);
    // Two masters: collectible + intercept; each owns plain and collectible attendants that
    // the program never marks (they hang off the master only).
    for (int m = 0; m < 2; m++) {
        // The master in a class the sweep visits before its intercepted attendant's (sizes
        // 32 and 200): its finalizer frees that attendant before the sweep reaches it.
        void *master = kmem_pool_alloc(p, 32, KMEM_POOL_COLLECTIBLE | KMEM_POOL_INTERCEPT_FREE);
        std::vector<void *> att;
        for (int i = 0; i < 5; i++) att.push_back(kmem_pool_alloc(p, 64, 0));
        for (int i = 0; i < 5; i++) att.push_back(kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE));
        att.push_back(kmem_pool_alloc(p, 30000, KMEM_POOL_COLLECTIBLE));
        // An attendant with a finalizer of its own, garbage in the same cycle: freed by the
        // master's finalizer first, so the sweep must not finalize it again.
        att.push_back(
            kmem_pool_alloc(p, 200, KMEM_POOL_COLLECTIBLE | KMEM_POOL_INTERCEPT_FREE));
        f.attendants.emplace_back(master, att);
    }
    EXPECT_EQ(26u, Stats(p).live_blocks);
    // Garbage: both masters and their 14 collectible attendants.  The finalizers inner_free
    // the attendants, some of which the same sweep condemned: each is freed once.
    size_t swept = kmem_pool_collect(p);
    EXPECT_GE(swept, 2u);
    EXPECT_LE(swept, 16u);
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(0u, st.live_blocks);
    EXPECT_EQ(0u, st.collectible_blocks);
    // The masters' finalizers, and the intercepted attendants' only when a master's ran
    // later than theirs (the order of the sweep): never twice for one block.
    std::set<void *> once(f.finalized.begin(), f.finalized.end());
    EXPECT_EQ(once.size(), f.finalized.size()) << "a block finalized twice";
    EXPECT_GE(st.finalizers_run, 2u);
    EXPECT_LE(st.finalizers_run, 4u);
    EXPECT_EQ(0, kmem_pool_validate(p));
    EXPECT_EQ(0, slabcache_validate());
    kmem_pool_destroy(p);
}

TEST(PoolFinalizer, ReentrantFreeAndTheRulesOfInnerFree) {
    ReportMode rm;
    FinLog f;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.intercept_free = Finalize;
    cfg.arg = &f;
    kmem_pool *p = kmem_pool_create("reentrant", &cfg);
    void *outer = kmem_pool_alloc(p, 32, KMEM_POOL_INTERCEPT_FREE);
    void *inner = kmem_pool_alloc(p, 32, KMEM_POOL_INTERCEPT_FREE);
    f.nested = inner;
    kmem_pool_free(p, outer);
    EXPECT_EQ(2u, f.finalized.size());
    EXPECT_EQ(2, f.max_depth) << "the inner block's finalizer ran inside the outer one";
    EXPECT_EQ(0u, Stats(p).live_blocks);
    // Inside a finalizer: allocation and collection are refused; inner_free of a block of
    // another pool is refused.
    kmem_pool *other = kmem_pool_create("other", nullptr);
    void *foreign = kmem_pool_alloc(other, 32, 0);
    struct Ctx {
        kmem_pool *other;
        void *foreign;
        void *alloc_result = reinterpret_cast<void *>(1);
        size_t collect_result = 99;
    } ctx{other, foreign};
    static Ctx *g_ctx;
    g_ctx = &ctx;
    kmem_pool_config c2{};
    c2.intercept_free = [](kmem_pool *pool, void *block, void *) {
        g_ctx->alloc_result = kmem_pool_alloc(pool, 16, 0);
        g_ctx->collect_result = kmem_pool_collect(pool);
        kmem_pool_inner_free(pool, g_ctx->foreign);
        kmem_pool_inner_free(g_ctx->other, g_ctx->foreign);  // not that pool's finalizer
        kmem_pool_inner_free(pool, block);
    };
    kmem_pool *q = kmem_pool_create("rules", &c2);
    void *b = kmem_pool_alloc(q, 32, KMEM_POOL_INTERCEPT_FREE);
    testing::internal::CaptureStderr();
    kmem_pool_free(q, b);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(nullptr, ctx.alloc_result);
    EXPECT_EQ(0u, ctx.collect_result);
    EXPECT_NE(std::string::npos, err.find("allocation inside intercept_free")) << err;
    EXPECT_NE(std::string::npos, err.find("called from inside a mark or intercept_free")) << err;
    EXPECT_NE(std::string::npos, err.find("is not a block of this pool")) << err;
    EXPECT_NE(std::string::npos, err.find("kmem_pool_inner_free(other)")) << err;
    EXPECT_EQ(0u, Stats(q).live_blocks);
    EXPECT_EQ(1u, Stats(other).live_blocks);
    EXPECT_EQ(0, kmem_pool_validate(q));
    kmem_pool_destroy(q);
    kmem_pool_destroy(other);
    kmem_pool_destroy(p);
}

// Collectible finalizers run on the housekeeping thread when the threshold starts a cycle.
TEST(PoolFinalizer, HousekeepingThreadRunsCollectibleFinalizers) {
    FinLog f;
    kmem_pool_config cfg{};
    cfg.intercept_free = Finalize;
    cfg.arg = &f;
    cfg.gc_threshold = 8192;
    kmem_pool *p = kmem_pool_create("hk", &cfg);
    for (int i = 0; i < 200; i++)
        ASSERT_NE(nullptr, kmem_pool_alloc(p, 64, KMEM_POOL_COLLECTIBLE | KMEM_POOL_INTERCEPT_FREE));
    for (int i = 0; i < 5000; i++) {
        kmem_pool_stats now = Stats(p);
        if (now.finalizers_run >= 128 && now.collections >= 1) break;
        usleep(1000);
    }
    kmem_pool_stats st = Stats(p);
    EXPECT_GE(st.collections, 1u);
    EXPECT_GE(st.finalizers_run, 128u);
    {
        std::lock_guard<std::mutex> g(f.mu);
        ASSERT_FALSE(f.threads.empty());
        for (pthread_t t : f.threads) EXPECT_FALSE(pthread_equal(t, pthread_self()));
    }
    kmem_pool_destroy(p);  // stops and joins the thread
}

// ------------------------------------------------------------------ the sweep guarantee

// An allocator thread keeps a window of K roots, each replaced by a new collectible block
// allocated with kmem_pool_alloc_to straight into the root; the old block becomes garbage.
// The mark callback marks what the roots hold, slowly (it sleeps halfway), while the
// allocator goes on.  Every swept block goes through the finalizer (INTERCEPT_FREE), which
// checks that no root holds it: a block whose address reached a root after mark began (and
// so was not seen by mark) must survive that cycle.
constexpr int kRoots = 64;

struct Guarantee {
    std::atomic<void *> roots[kRoots];
    std::atomic<bool> stop{false};
    std::atomic<size_t> violations{0}, finalized{0}, allocated{0}, marks{0};
    std::mutex mu;
    std::set<void *> swept;  // finalized blocks: kept allocated, so an address stays unique
    bool Swept(void *b) {
        std::lock_guard<std::mutex> g(mu);
        return swept.count(b) != 0;
    }
};

void GuaranteeMark(kmem_pool *p, void *arg) {
    auto *g = static_cast<Guarantee *>(arg);
    for (int i = 0; i < kRoots; i++) {
        if (i == kRoots / 2) usleep(2000);  // slow: the allocator runs meanwhile
        void *b = g->roots[i].load(std::memory_order_acquire);
        if (b) kmem_pool_mark(p, b);
    }
    g->marks++;
}

// The finalizer keeps the block allocated (its address cannot be handed out again) and
// records it; a block that a root still holds when it is replaced, or at the end, must never
// have been swept.  It is made plain again, so later cycles leave it alone.
void GuaranteeFinalize(kmem_pool *p, void *block, void *arg) {
    (void)p;
    auto *g = static_cast<Guarantee *>(arg);
    for (int i = 0; i < kRoots; i++)
        if (g->roots[i].load(std::memory_order_acquire) == block) g->violations++;
    g->finalized++;
    std::lock_guard<std::mutex> lk(g->mu);
    g->swept.insert(block);
}

TEST(PoolGuarantee, SweepNeverTakesABlockPublishedAfterMarkBegan) {
    Guarantee g;
    for (auto &r : g.roots) r.store(nullptr);
    kmem_pool_config cfg{};
    cfg.mark = GuaranteeMark;
    cfg.intercept_free = GuaranteeFinalize;
    cfg.arg = &g;
    cfg.gc_threshold = 16 * 1024;  // the housekeeping thread collects often
    kmem_pool *p = kmem_pool_create("guarantee", &cfg);
    constexpr unsigned kAllocs = 60000;
    std::thread alloc([&] {
        for (unsigned i = 0; i < kAllocs; i++) {
            // Straight into the root (the atomic's storage): the guarantee covers the address
            // that alloc_to writes.
            void **root = reinterpret_cast<void **>(&g.roots[i % kRoots]);
            void *old = g.roots[i % kRoots].load(std::memory_order_acquire);
            if (old && g.Swept(old)) g.violations++;  // swept while this root held it
            if (kmem_pool_alloc_to(p, 16 + (i % 7) * 16,
                                   KMEM_POOL_COLLECTIBLE | KMEM_POOL_INTERCEPT_FREE, root) != 0) {
                g.violations++;
                break;
            }
            g.allocated++;
        }
        kmem_cache_thread_flush();
        g.stop = true;
    });
    // This thread collects explicitly too, racing the housekeeping thread.
    int explicit_collections = 0;
    while (!g.stop.load() || explicit_collections < 5) {
        kmem_pool_collect(p);
        explicit_collections++;
        usleep(500);
    }
    alloc.join();
    kmem_pool_collect(p);
    for (auto &r : g.roots)
        if (r.load() && g.Swept(r.load())) g.violations++;
    EXPECT_EQ(0u, g.violations.load());
    EXPECT_GT(g.finalized.load(), 1000u);
    kmem_pool_stats st = Stats(p);
    EXPECT_GE(st.collections, 6u);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

// The same guarantee on the thread-cache fast path (collectible blocks without a finalizer):
// each block holds an id; before a root is replaced, the block it held must still hold its
// id.  A block swept while a root held it is handed out again and overwritten (or found
// free), so a broken order of "address, then collectible bit" shows.
TEST(PoolGuarantee, FastPathBlocksSurviveWhileRooted) {
    static std::atomic<void *> roots[kRoots];
    for (auto &r : roots) r.store(nullptr);
    kmem_pool_config cfg{};
    cfg.mark = [](kmem_pool *p, void *) {
        for (int i = 0; i < kRoots; i++) {
            if (i == kRoots / 2) usleep(1000);
            void *b = roots[i].load(std::memory_order_acquire);
            if (b) kmem_pool_mark(p, b);
        }
    };
    cfg.gc_threshold = 16 * 1024;
    kmem_pool *p = kmem_pool_create("fastpath", &cfg);
    std::atomic<bool> done{false};
    std::atomic<size_t> violations{0};
    std::thread alloc([&] {
        uint64_t ids[kRoots] = {0};
        for (uint64_t i = 1; i <= 100000; i++) {
            unsigned r = static_cast<unsigned>(i % kRoots);
            void *old = roots[r].load(std::memory_order_acquire);
            if (old && (kmem_pool_block_size(p, old) == 0 ||
                        static_cast<uint64_t *>(old)[1] != ids[r]))
                violations++;
            if (kmem_pool_alloc_to(p, 32, KMEM_POOL_COLLECTIBLE,
                                   reinterpret_cast<void **>(&roots[r])) != 0) {
                violations++;
                break;
            }
            static_cast<uint64_t *>(roots[r].load())[1] = i;
            ids[r] = i;
        }
        kmem_cache_thread_flush();
        done = true;
    });
    int collections = 0;
    while (!done.load() || collections < 5) {
        kmem_pool_collect(p);
        collections++;
        usleep(300);
    }
    alloc.join();
    EXPECT_EQ(0u, violations.load());
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

// Blocks allocated on other threads while mark runs survive the cycle, with plain
// kmem_pool_alloc too (they were not collectible when the cycle began).
TEST(PoolGuarantee, BlocksAllocatedDuringMarkingSurvive) {
    struct State {
        kmem_pool *pool = nullptr;
        std::vector<void *> during;
        std::mutex mu;
    } s;
    static State *gs;
    gs = &s;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.mark = [](kmem_pool *p, void *) {
        std::thread t([p] {
            for (int i = 0; i < 500; i++) {
                void *b = kmem_pool_alloc(p, 32, KMEM_POOL_COLLECTIBLE);
                std::lock_guard<std::mutex> g(gs->mu);
                gs->during.push_back(b);
            }
            kmem_cache_thread_flush();
        });
        t.join();
    };
    kmem_pool *p = kmem_pool_create("during", &cfg);
    for (int i = 0; i < 300; i++) kmem_pool_alloc(p, 32, KMEM_POOL_COLLECTIBLE);
    EXPECT_EQ(300u, kmem_pool_collect(p));
    EXPECT_EQ(500u, Stats(p).collectible_blocks);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

// Many threads allocate and free plain blocks of one pool while collections run; counters
// and the validator agree at the end.
TEST(PoolThreads, ConcurrentAllocFreeAndCollections) {
    kmem_pool_config cfg{};
    cfg.gc_threshold = 32 * 1024;
    kmem_pool *p = kmem_pool_create("threads", &cfg);
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; t++) {
        ts.emplace_back([&, t] {
            std::vector<void *> mine;
            unsigned x = 12345u + static_cast<unsigned>(t);
            for (int i = 0; i < 20000; i++) {
                x = x * 1103515245u + 12345u;
                if (mine.size() < 200 || (x >> 16) % 2) {
                    void *b = kmem_pool_alloc(p, 8 + (x >> 20) % 500, (x >> 8) % 5 == 0
                                                                        ? KMEM_POOL_COLLECTIBLE
                                                                        : 0);
                    ASSERT_NE(nullptr, b);
                    if (!((x >> 8) % 5 == 0)) mine.push_back(b);
                } else {
                    size_t k = (x >> 12) % mine.size();
                    kmem_pool_free(p, mine[k]);
                    mine[k] = mine.back();
                    mine.pop_back();
                }
            }
            for (void *b : mine) kmem_pool_free(p, b);
            kmem_cache_thread_flush();
        });
    }
    for (auto &t : ts) t.join();
    (void)stop;
    kmem_pool_collect(p);
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(0u, st.live_blocks);
    EXPECT_EQ(0u, st.collectible_blocks);
    EXPECT_EQ(st.allocs, st.frees);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
    EXPECT_EQ(0, slabcache_validate());
}

// A thread that exits returns its pool caches (key destructor); its way is reused.
TEST(PoolThreads, ThreadExitReturnsItsCaches) {
    kmem_pool *p = kmem_pool_create("exit", nullptr);
    for (int t = 0; t < 8; t++) {
        std::thread th([p] {
            std::vector<void *> v;
            for (int i = 0; i < 100; i++) v.push_back(kmem_pool_alloc(p, 24, 0));
            for (void *b : v) kmem_pool_free(p, b);
        });
        th.join();
    }
    kmem_pool_stats st = Stats(p);
    EXPECT_EQ(0u, st.cached_blocks);
    EXPECT_EQ(800u, st.allocs);
    EXPECT_EQ(0u, st.live_blocks);
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

void MarkDestroysPool(kmem_pool *p, void *) { kmem_pool_destroy(p); }

TEST(PoolGcMisuse, DestroyOrCollectFromMarkIsRefused) {
    ReportMode rm;
    kmem_pool_config cfg{};
    cfg.flags = KMEM_POOL_NO_THREAD;
    cfg.mark = MarkDestroysPool;
    kmem_pool *p = kmem_pool_create("selfdestroy", &cfg);
    kmem_pool_alloc(p, 16, KMEM_POOL_COLLECTIBLE);
    testing::internal::CaptureStderr();
    EXPECT_EQ(1u, kmem_pool_collect(p));
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("called from the pool's own mark callback")) << err;
    EXPECT_EQ(0, kmem_pool_validate(p));
    kmem_pool_destroy(p);
}

}  // namespace
