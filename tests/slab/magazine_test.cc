/* SPDX-License-Identifier: MIT */
// tests/slab/magazine_test.cc - per-thread magazines, the depot, thread exit and fork.
//
// Strategy: deterministic multithreaded workloads (fixed seeds, fixed op counts), a content
// pattern written into every object and checked before it is freed, kmem_cache_validate after
// every join, and exact statistics once all threads are quiescent: active_objects equals what
// the test holds, allocs == frees when everything was freed, and with no other thread alive a
// shrink takes total_slabs to 0.  Runs under the tsan config too.
#include <gtest/gtest.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <random>
#include <thread>
#include <vector>

extern "C" {
#include "slab/slab.h"
#include "slab/debug.h"
#include "slab/fastpath.h"
#include "slab/internal.h"
}

namespace {

kmem_cache_stats Stats(kmem_cache *c) {
    kmem_cache_stats st;
    EXPECT_EQ(0, kmem_cache_get_stats(c, &st));
    return st;
}

struct Obj {
    uint64_t stamp;
    uint64_t check;
    char pad[101];  // 117 bytes in all
};
static_assert(sizeof(Obj) >= 117, "117-byte objects");

void Stamp(void *p, uint64_t v) {
    auto *o = static_cast<Obj *>(p);
    o->stamp = v;
    o->check = ~v;
    memset(o->pad, static_cast<int>(v & 0xff), sizeof o->pad);
}

bool Valid(const void *p) {
    auto *o = static_cast<const Obj *>(p);
    if (o->check != ~o->stamp) return false;
    for (char ch : o->pad)
        if (ch != static_cast<char>(o->stamp & 0xff)) return false;
    return true;
}

// Every thread holds objects, frees and reallocates them at random, checking patterns.
void Churn(kmem_cache *c, unsigned seed, int ops, std::atomic<bool> *bad) {
    std::mt19937 rng(seed);
    std::vector<void *> held;
    for (int i = 0; i < ops; i++) {
        if (held.size() < 64 || (rng() % 2 && held.size() < 2000)) {
            void *p = kmem_cache_alloc(c, 0);
            if (!p) {
                *bad = true;
                return;
            }
            Stamp(p, (static_cast<uint64_t>(seed) << 32) | static_cast<uint64_t>(i));
            held.push_back(p);
        } else {
            size_t k = rng() % held.size();
            if (!Valid(held[k])) *bad = true;
            kmem_cache_free(c, held[k]);
            held[k] = held.back();
            held.pop_back();
        }
    }
    for (void *p : held) {
        if (!Valid(p)) *bad = true;
        kmem_cache_free(c, p);
    }
}

class ThreadsTest : public ::testing::TestWithParam<int> {};

TEST_P(ThreadsTest, SharedChurnKeepsObjectsAndCountsExact) {
    const int threads = GetParam();
    kmem_cache *c = kmem_cache_create("churn", sizeof(Obj), 0, 0, nullptr);
    std::atomic<bool> bad{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) pool.emplace_back(Churn, c, 1000u + t, 60000, &bad);
    for (auto &th : pool) th.join();
    EXPECT_FALSE(bad.load()) << "an object was corrupted or an allocation failed";
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(st.allocs, st.frees);
    EXPECT_EQ(0u, st.active_objects);
    // The workers have exited: their magazines went back at thread exit.
    ASSERT_EQ(0, kmem_cache_shrink(c));
    st = Stats(c);
    EXPECT_EQ(0u, st.total_slabs);
    EXPECT_EQ(0u, st.cached_objects);
    EXPECT_EQ(0, slabcache_validate());
    kmem_cache_destroy(c);
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadsTest, ::testing::Values(2, 4, 8));

// A lock-free single-producer single-consumer ring.
struct Ring {
    static constexpr size_t kSize = 1024;
    void *slots[kSize];
    std::atomic<size_t> head{0}, tail{0};
    bool Push(void *p) {
        size_t h = head.load(std::memory_order_relaxed);
        if (h - tail.load(std::memory_order_acquire) == kSize) return false;
        slots[h % kSize] = p;
        head.store(h + 1, std::memory_order_release);
        return true;
    }
    void *Pop() {
        size_t t = tail.load(std::memory_order_relaxed);
        if (t == head.load(std::memory_order_acquire)) return nullptr;
        void *p = slots[t % kSize];
        tail.store(t + 1, std::memory_order_release);
        return p;
    }
};

TEST(MagazineCrossThread, ProducerConsumerFreesThroughARing) {
    kmem_cache *c = kmem_cache_create("ring", sizeof(Obj), 0, 0, nullptr);
    constexpr int kObjects = 200000;
    Ring ring;
    std::atomic<bool> bad{false};
    std::thread producer([&] {
        for (int i = 0; i < kObjects; i++) {
            void *p = kmem_cache_alloc(c, 0);
            if (!p) {
                bad = true;
                break;
            }
            Stamp(p, static_cast<uint64_t>(i));
            while (!ring.Push(p)) std::this_thread::yield();
        }
    });
    std::thread consumer([&] {
        for (int i = 0; i < kObjects; i++) {
            void *p;
            while (!(p = ring.Pop())) std::this_thread::yield();
            if (!Valid(p) || static_cast<Obj *>(p)->stamp != static_cast<uint64_t>(i)) bad = true;
            kmem_cache_free(c, p);
        }
    });
    producer.join();
    consumer.join();
    EXPECT_FALSE(bad.load());
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(static_cast<size_t>(kObjects), st.allocs);
    EXPECT_EQ(static_cast<size_t>(kObjects), st.frees);
    EXPECT_EQ(0u, st.active_objects);
    // Objects flowed back to the producer through the depot instead of piling up: far fewer
    // slabs than one per 545 objects allocated.
    EXPECT_LT(st.slabs_created, static_cast<size_t>(kObjects / 545 / 4));
    ASSERT_EQ(0, kmem_cache_shrink(c));
    EXPECT_EQ(0u, Stats(c).total_slabs);
    kmem_cache_destroy(c);
}

TEST(MagazineThreadExit, CachedObjectsOfExitingThreadsAreNotLost) {
    kmem_cache *c = kmem_cache_create("exit", 64, 0, 0, nullptr);
    std::vector<void *> kept(8 * 100);
    for (int round = 0; round < 5; round++) {
        std::vector<std::thread> pool;
        for (int t = 0; t < 8; t++) {
            pool.emplace_back([&, t] {
                // Allocate 300, free 200: the thread exits with objects in its magazines.
                std::vector<void *> mine;
                for (int i = 0; i < 300; i++) mine.push_back(kmem_cache_alloc(c, 0));
                for (int i = 0; i < 200; i++) kmem_cache_free(c, mine[i]);
                for (int i = 0; i < 100; i++) kept[t * 100 + i] = mine[200 + i];
            });
        }
        for (auto &th : pool) th.join();
        ASSERT_EQ(0, kmem_cache_validate(c));
        kmem_cache_stats st = Stats(c);
        EXPECT_EQ(800u, st.active_objects) << round;
        for (void *p : kept) kmem_cache_free(c, p);
        st = Stats(c);
        EXPECT_EQ(0u, st.active_objects);
        EXPECT_EQ(st.allocs, st.frees);
    }
    ASSERT_EQ(0, kmem_cache_shrink(c));
    EXPECT_EQ(0u, Stats(c).total_slabs);
    kmem_cache_destroy(c);
}

TEST(MagazineThreadExit, ExplicitThreadFlushReturnsEverything) {
    kmem_cache *c = kmem_cache_create("flush", 64, 0, 0, nullptr);
    std::thread worker([&] {
        std::vector<void *> v;
        for (int i = 0; i < 1000; i++) v.push_back(kmem_cache_alloc(c, 0));
        for (void *p : v) kmem_cache_free(c, p);
        kmem_cache_stats st = Stats(c);
        EXPECT_GT(st.cached_objects, 0u);
        kmem_cache_thread_flush();
        // This thread's magazines went to the depot empty, their objects to the slabs: what
        // is still cached is exactly the full magazines the depot already had.
        st = Stats(c);
        EXPECT_EQ(st.depot_full * st.magazine_size, st.cached_objects);
        EXPECT_GE(st.depot_empty, 2u);
        EXPECT_EQ(0u, st.active_objects);
        EXPECT_EQ(1000u, st.allocs);
        EXPECT_EQ(1000u, st.frees);
        ASSERT_EQ(0, kmem_cache_validate(c));
    });
    worker.join();
    kmem_cache_destroy(c);
}

TEST(MagazineShrink, ShrinkDrainsDepotAndOwnMagazines) {
    kmem_cache *c = kmem_cache_create("shrink", 200, 0, 0, nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 50000; i++) v.push_back(kmem_cache_alloc(c, 0));
    for (void *p : v) kmem_cache_free(c, p);
    kmem_cache_stats st = Stats(c);
    EXPECT_GT(st.cached_objects, 0u);
    EXPECT_EQ(0u, st.active_objects);
    EXPECT_EQ(st.total_slabs * st.objects_per_slab, st.total_objects);
    ASSERT_EQ(0, kmem_cache_shrink(c));
    st = Stats(c);
    EXPECT_EQ(0u, st.cached_objects);
    EXPECT_EQ(0u, st.total_slabs);
    EXPECT_EQ(0u, st.depot_full);
    kmem_cache_destroy(c);
}

TEST(MagazineDestroy, DestroyReclaimsOtherThreadsMagazines) {
    kmem_cache *c = kmem_cache_create("destroy-mt", 64, 0, 0, nullptr);
    std::atomic<int> phase{0};
    std::thread holder([&] {
        void *p = kmem_cache_alloc(c, 0);
        kmem_cache_free(c, p);  // sits in this thread's magazine
        phase = 1;
        while (phase.load() != 2) std::this_thread::yield();
    });
    while (phase.load() != 1) std::this_thread::yield();
    testing::internal::CaptureStderr();
    kmem_cache_destroy(c);  // the cached object is not a leak
    EXPECT_EQ("", testing::internal::GetCapturedStderr());
    phase = 2;
    holder.join();
    EXPECT_EQ(0, slabcache_validate());
}

void *ForkChildWork(kmem_cache *c) {
    // In the child: allocate, free, validate; exit code says how it went.
    std::vector<void *> v;
    for (int i = 0; i < 2000; i++) {
        void *p = kmem_cache_alloc(c, 0);
        if (!p) _exit(2);
        Stamp(p, static_cast<uint64_t>(i));
        v.push_back(p);
    }
    for (void *p : v) {
        if (!Valid(p)) _exit(3);
        kmem_cache_free(c, p);
    }
    if (kmem_cache_validate(c) != 0) _exit(4);
    kmem_cache_stats st;
    // Objects the busy thread of the parent held at the fork stay live in the child; the ones
    // in its magazines were returned by the child's atfork handler.  That thread may have been
    // inside a lock-free fast path at the fork (object popped, counter not yet bumped): its
    // counters can be off by that one operation, never more.
    if (kmem_cache_get_stats(c, &st) != 0) _exit(5);
    long diff = static_cast<long>(st.allocs - st.frees) - static_cast<long>(st.active_objects);
    if (diff < -1 || diff > 1) _exit(5);
    if (kmem_cache_shrink(c) != 0 || kmem_cache_validate(c) != 0) _exit(6);
    if (kmem_cache_get_stats(c, &st) != 0 || st.cached_objects != 0) _exit(7);
    _exit(0);
}

TEST(MagazineFork, ForkWhileAnotherThreadAllocates) {
    kmem_cache *c = kmem_cache_create("fork", sizeof(Obj), 0, 0, nullptr);
    std::atomic<bool> stop{false}, bad{false};
    std::thread busy([&] {
        std::mt19937 rng(7);
        std::vector<void *> held;
        while (!stop.load(std::memory_order_relaxed)) {
            if (held.size() < 500 && rng() % 2) {
                void *p = kmem_cache_alloc(c, 0);
                Stamp(p, rng());
                held.push_back(p);
            } else if (!held.empty()) {
                if (!Valid(held.back())) bad = true;
                kmem_cache_free(c, held.back());
                held.pop_back();
            }
        }
        for (void *p : held) kmem_cache_free(c, p);
    });
    for (int i = 0; i < 30; i++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) ForkChildWork(c);
        int status = 0;
        ASSERT_EQ(pid, waitpid(pid, &status, 0));
        ASSERT_TRUE(WIFEXITED(status)) << "child " << i << " died";
        ASSERT_EQ(0, WEXITSTATUS(status)) << "child " << i;
    }
    stop = true;
    busy.join();
    EXPECT_FALSE(bad.load());
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(st.allocs, st.frees);
    EXPECT_EQ(0u, st.active_objects);
    kmem_cache_destroy(c);
}

TEST(MagazineStats, CachedPlusActiveEqualsSlotsInUse) {
    kmem_cache *c = kmem_cache_create("acct", 100, 0, 0, nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 3000; i++) v.push_back(kmem_cache_alloc(c, 0));
    for (int i = 0; i < 1500; i++) kmem_cache_free(c, v[i]);
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(1500u, st.active_objects);
    EXPECT_EQ(3000u, st.allocs);
    EXPECT_EQ(1500u, st.frees);
    heap_mutex_lock(&c->lock);
    size_t inuse = c->inuse_total;
    heap_mutex_unlock(&c->lock);
    EXPECT_EQ(inuse, st.active_objects + st.cached_objects);
    for (int i = 1500; i < 3000; i++) kmem_cache_free(c, v[i]);
    kmem_cache_destroy(c);
}

// A thread entry starts with one magazine (previous is a shared placeholder) and gets its
// second when the first fills; the window of the loaded magazine stays consistent with the
// magazine through every refill, swap and depot exchange (kmem_cache_validate checks it),
// and the stats stay exact.
TEST(MagazineWindow, FirstMagazineFillsThenSwapsAndExchangesStayConsistent) {
    kmem_cache_args args = {};
    args.magazine_size = 4;
    kmem_cache *c = kmem_cache_create_args("window", 64, &args, 0);
    std::vector<void *> v;
    for (int i = 0; i < 64; i++) {
        v.push_back(kmem_cache_alloc(c, 0));
        ASSERT_EQ(0, kmem_cache_validate(c)) << "alloc " << i;
    }
    for (size_t n = 1; n <= v.size(); n++) {  // 1, 2, ... objects through the magazines
        for (size_t i = 0; i < n; i++) {
            kmem_cache_free(c, v[i]);
            ASSERT_EQ(0, kmem_cache_validate(c)) << n << " free " << i;
        }
        kmem_cache_stats st = Stats(c);
        ASSERT_EQ(v.size() - n, st.active_objects);
        for (size_t i = 0; i < n; i++) {
            v[i] = kmem_cache_alloc(c, 0);
            ASSERT_NE(nullptr, v[i]);
            ASSERT_EQ(0, kmem_cache_validate(c)) << n << " alloc " << i;
        }
        ASSERT_EQ(v.size(), Stats(c).active_objects);
    }
    for (void *p : v) kmem_cache_free(c, p);
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(0u, st.active_objects);
    EXPECT_EQ(st.allocs, st.frees);
    kmem_cache_destroy(c);
}

// The popped run (slab/fastpath.h): a free of the object this thread allocated last skips
// the always-on check.  A free of anything else ends the run, so an object freed out of LIFO
// order and still cached never stays in it: the validator checks the run after every step
// (distinct in-use slots, none cached in the thread's magazines).
TEST(MagazinePoppedRun, FreesOutOfOrderEndTheRun) {
    kmem_cache_args args = {};
    args.magazine_size = 8;
    kmem_cache *c = kmem_cache_create_args("run", 64, &args, 0);
    std::mt19937_64 rng(7);
    std::vector<void *> held;
    std::set<void *> handed;
    for (int step = 0; step < 4000; step++) {
        if (held.empty() || (held.size() < 40 && rng() % 2)) {
            void *p = kmem_cache_alloc(c, 0);
            ASSERT_NE(nullptr, p);
            ASSERT_TRUE(handed.insert(p).second) << "handed out twice at step " << step;
            held.push_back(p);
        } else {
            // Mostly LIFO (the run's case), sometimes from deeper down (ends the run).
            size_t i = rng() % 3 ? held.size() - 1 : rng() % held.size();
            void *p = held[i];
            held.erase(held.begin() + static_cast<long>(i));
            handed.erase(p);
            kmem_cache_free(c, p);
        }
        ASSERT_EQ(0, kmem_cache_validate(c)) << step;
    }
    // The sequence of the proof: A, B, C popped; A freed (ends the run at B's word); C freed
    // (pushed where B was popped); the word above must not still say A.
    for (void *p : held) kmem_cache_free(c, p);
    held.clear();
    void *a = kmem_cache_alloc(c, 0), *b = kmem_cache_alloc(c, 0), *cc = kmem_cache_alloc(c, 0);
    kmem_cache_free(c, a);
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_free(c, cc);
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_free(c, b);
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(0u, st.active_objects);
    EXPECT_EQ(st.allocs, st.frees);
    kmem_cache_destroy(c);
}

// An object this thread allocated last, freed by another thread and returned to its slab
// there, then freed again here: the run must not vouch for it (cache->returns moved), so the
// full check reports the double free and the object is not handed out twice.
TEST(MagazinePoppedRun, DoubleFreeAfterAnotherThreadReturnedItIsReported) {
    setenv("SLABCACHE_ON_ERROR", "report", 1);
    report_reset_options();
    kmem_cache *c = kmem_cache_create("run-xthread", 64, 0, 0, nullptr);
    void *keep = kmem_cache_alloc(c, 0);  // keeps the slab alive
    void *x = kmem_cache_alloc(c, 0);     // the run now starts at x
    std::thread t([c, x] {
        kmem_cache_free(c, x);
        kmem_cache_thread_flush();  // x goes back to its slab: its bit is cleared
    });
    t.join();
    testing::internal::CaptureStderr();
    kmem_cache_free(c, x);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("double free")) << err;
    EXPECT_EQ(1u, Stats(c).invalid_frees);
    EXPECT_EQ(0, kmem_cache_validate(c));
    void *r1 = kmem_cache_alloc(c, 0), *r2 = kmem_cache_alloc(c, 0);
    EXPECT_NE(r1, r2);
    kmem_cache_free(c, r1);
    kmem_cache_free(c, r2);
    kmem_cache_free(c, keep);
    EXPECT_EQ(0u, Stats(c).active_objects);
    kmem_cache_destroy(c);
    unsetenv("SLABCACHE_ON_ERROR");
    report_reset_options();
}


TEST(MagazineFixedId, RacingCreatorsGetOneCacheWithMagazines) {
    constexpr uint32_t kId = SLAB_FIXED_IDS - 1;  // above the kmalloc classes
    constexpr int kThreads = 8;
    std::vector<kmem_cache *> got(kThreads, nullptr);
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++)
        ts.emplace_back([&, t] {
            ready++;
            while (ready.load() < kThreads) {
            }
            got[t] = cache_create_fixed_id("fixed-race", 200, nullptr, 0, kId);
        });
    for (auto &t : ts) t.join();
    ASSERT_NE(nullptr, got[0]);
    for (int t = 1; t < kThreads; t++) EXPECT_EQ(got[0], got[t]) << t;
    EXPECT_EQ(kId, got[0]->id);
    EXPECT_NE(0u, got[0]->mag_size);
    size_t named = 0;
    heap_mutex_lock(&cache_list_lock);
    for (kmem_cache *c = cache_list; c; c = c->next_cache)
        named += strcmp(c->name, "fixed-race") == 0;
    heap_mutex_unlock(&cache_list_lock);
    EXPECT_EQ(1u, named);
    void *p = kmem_cache_alloc(got[0], 0);
    kmem_cache_free(got[0], p);
    EXPECT_EQ(0, kmem_cache_validate(got[0]));
    kmem_cache_destroy(got[0]);
}

// Tables of exited threads are reused by the next threads: their entries come back empty (no
// stale window, magazine or counter), so counts stay exact across generations of threads.
TEST(MagazineThreadExit, ReusedThreadTablesStartEmpty) {
    kmem_cache *a = kmem_cache_create("reuse-a", 48, 0, 0, nullptr);
    kmem_cache *b = kmem_cache_create("reuse-b", 200, 0, 0, nullptr);
    for (int gen = 0; gen < 20; gen++) {
        std::thread t([&, gen] {
            kmem_cache *c = gen % 2 ? a : b;  // alternate, so a reused entry may be unused
            std::vector<void *> v;
            for (int i = 0; i < 100 + gen; i++) v.push_back(kmem_cache_alloc(c, 0));
            for (void *p : v) kmem_cache_free(c, p);
            EXPECT_EQ(0, kmem_cache_validate(c));
        });
        t.join();
        for (kmem_cache *c : {a, b}) {
            ASSERT_EQ(0, kmem_cache_validate(c)) << gen;
            kmem_cache_stats st = Stats(c);
            EXPECT_EQ(0u, st.active_objects) << gen;
            EXPECT_EQ(st.allocs, st.frees) << gen;
        }
    }
    kmem_cache_stats sa = Stats(a), sb = Stats(b);
    EXPECT_EQ(10u * 100 + (1 + 3 + 5 + 7 + 9 + 11 + 13 + 15 + 17 + 19), sa.allocs);
    EXPECT_EQ(10u * 100 + (0 + 2 + 4 + 6 + 8 + 10 + 12 + 14 + 16 + 18), sb.allocs);
    kmem_cache_destroy(a);
    kmem_cache_destroy(b);
}

// With the calling thread's magazines and c's depot empty: allocate through exactly one
// refill from the slabs (into v) and return its size (cached_objects counts the rest).
size_t AllocOneRefill(kmem_cache *c, std::vector<void *> *v) {
    v->push_back(kmem_cache_alloc(c, 0));  // the magazine is empty: one refill
    size_t got = Stats(c).cached_objects + 1;
    for (size_t i = 1; i < got; i++) v->push_back(kmem_cache_alloc(c, 0));
    EXPECT_EQ(0u, Stats(c).cached_objects);
    return got;
}

// After a refill test: the thread's objects freed and flushed, the thread joined; nothing is
// live, the counts agree and the cache validates.  Then c is destroyed.
void ExpectAllReturnedAndDestroy(kmem_cache *c) {
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(0u, st.active_objects);
    EXPECT_EQ(st.allocs, st.frees);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
}

// A thread's refills from the slabs start small and double up to half a magazine, so a
// thread that uses a class lightly reserves few slots (cached_objects counts them).
TEST(MagazineRefill, RefillsStartSmallAndDouble) {
    kmem_cache *c = kmem_cache_create("refill", 64, 0, 0, nullptr);
    ASSERT_EQ(64u, Stats(c).magazine_size);
    std::thread t([c] {
        std::vector<void *> v;
        size_t expect[] = {SLAB_FIRST_REFILL, 2 * SLAB_FIRST_REFILL, 4 * SLAB_FIRST_REFILL,
                           32, 32, 32};
        for (size_t want : expect) EXPECT_EQ(want, AllocOneRefill(c, &v));
        for (void *p : v) kmem_cache_free(c, p);
        kmem_cache_thread_flush();
    });
    t.join();
    ExpectAllReturnedAndDestroy(c);
}

// A thread's refills below the cap are lean: they take no slot on a page of the slab that no
// slot reached before, but for their first one.  So a thread (a short-lived process) that
// allocates a few objects of a class faults in only the pages those objects lie on, not the
// pages of the objects its magazine reserved: writing a slot's free mark touches its page.
// Slot sizes below, around and above a page.
TEST(MagazineRefill, LeanRefillsTouchOnlyThePagesOfObjectsHandedOut) {
    for (size_t size : {700, 2048, 3000, 8192, 20000}) {
        kmem_cache *c = kmem_cache_create("lean", size, 0, 0, nullptr);
        ASSERT_NE(nullptr, c);
        std::thread t([c, size] {
            std::vector<void *> v;
            uintptr_t top = 0;  // the highest object handed out
            for (int i = 0; i < 3; i++) {
                void *p = kmem_cache_alloc(c, 0);
                ASSERT_NE(nullptr, p);
                v.push_back(p);
                top = std::max(top, reinterpret_cast<uintptr_t>(p));
                const struct slab *s = reinterpret_cast<const struct slab *>(top & c->slab_mask);
                ASSERT_GT(s->touched, 0u);
                uintptr_t reached =
                    reinterpret_cast<uintptr_t>(s->objs) + (s->touched - 1) * c->slot_size;
                EXPECT_EQ(top / 4096, reached / 4096)
                    << size << "-byte slots, " << i + 1 << " allocated: slot " << s->touched - 1
                    << " was taken from the slab (its page touched) for nothing";
            }
            for (void *p : v) kmem_cache_free(c, p);
            kmem_cache_thread_flush();
        });
        t.join();
        ExpectAllReturnedAndDestroy(c);
    }
}

// Once a thread has its second magazine (the first filled up), refills from the slabs go on
// doubling to a whole magazine: the empty previous magazine takes the frees that follow.
TEST(MagazineRefill, RefillsReachAWholeMagazineOnceTheThreadHasTwo) {
    kmem_cache *c = kmem_cache_create("refill2", 64, 0, 0, nullptr);
    ASSERT_EQ(64u, Stats(c).magazine_size);
    std::thread t([c] {
        std::vector<void *> v;
        for (int i = 0; i < 300; i++) v.push_back(kmem_cache_alloc(c, 0));
        for (void *p : v) kmem_cache_free(c, p);  // loaded fills: the second magazine comes
        v.clear();
        ASSERT_EQ(0, kmem_cache_shrink(c));  // both magazines emptied, the depot drained
        ASSERT_EQ(0u, Stats(c).cached_objects);
        size_t sizes[4];
        for (size_t &got : sizes) got = AllocOneRefill(c, &v);
        EXPECT_EQ(32u, sizes[0]);  // where the ramp was (half a magazine)
        EXPECT_EQ(64u, sizes[1]);
        EXPECT_EQ(64u, sizes[3]);
        for (void *p : v) kmem_cache_free(c, p);
        kmem_cache_thread_flush();
    });
    t.join();
    ExpectAllReturnedAndDestroy(c);
}

TEST(MagazineSize, ChosenBySlotSizeAndOverridable) {
    struct {
        size_t size;
        size_t mag;
    } cases[] = {{16, 64}, {256, 64}, {512, 32}, {4096, 16}, {20000, 8}};
    for (auto k : cases) {
        kmem_cache *c = kmem_cache_create("mag", k.size, 0, 0, nullptr);
        EXPECT_EQ(k.mag, Stats(c).magazine_size) << k.size;
        kmem_cache_destroy(c);
    }
    kmem_cache_args args = {};
    args.magazine_size = 5;
    kmem_cache *c = kmem_cache_create_args("mag5", 64, &args, 0);
    EXPECT_EQ(5u, Stats(c).magazine_size);
    std::vector<void *> v;
    for (int i = 0; i < 100; i++) v.push_back(kmem_cache_alloc(c, 0));
    for (void *p : v) kmem_cache_free(c, p);
    ASSERT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
    c = kmem_cache_create("nomag", 64, 0, SLAB_NO_MAGAZINE, nullptr);
    EXPECT_EQ(0u, Stats(c).magazine_size);
    kmem_cache_destroy(c);
}

}  // namespace

namespace {

void TagCtor(void *obj) { memset(obj, 0x5c, 16); }

// The in-use bitmap and every list live out of the objects; the only word a free writes is
// the free mark (fastpath.h): the first word of a constructor-less object, a word after the
// object for a constructor's, so an object freed in its constructed state comes back in it
// (Bonwick), and a constructor-less object keeps whatever its user left past its first word.
TEST(MagazineObjects, FreeWritesOnlyTheFreeMark) {
    for (void (*ctor)(void *) : {TagCtor, static_cast<void (*)(void *)>(nullptr)}) {
        kmem_cache *c = kmem_cache_create("no-writes", 64, 0, 0, ctor);
        EXPECT_EQ(ctor ? 64u : 0u, c->mark_off);
        std::vector<void *> v;
        for (int i = 0; i < 1000; i++) {
            void *p = kmem_cache_alloc(c, 0);
            if (!ctor) memset(p, 0x5c, 16);
            v.push_back(p);
        }
        for (void *p : v) kmem_cache_free(c, p);  // magazines, depot and slabs
        for (void *p : v) {
            for (int b = ctor ? 0 : 8; b < 16; b++)
                ASSERT_EQ(0x5c, static_cast<unsigned char *>(p)[b]);
            ASSERT_TRUE(slab_mark_is_set(c, p)) << p;
        }
        ASSERT_EQ(0, kmem_cache_validate(c));
        kmem_cache_destroy(c);
    }
}

}  // namespace

namespace {

// A refill takes half a magazine from the slabs in slot order and the magazine is popped from
// its top, so the refill is stored reversed: a fresh cache hands out slot 0, 1, 2, ... in
// ascending addresses, and a program using a few objects touches only the header's page.
TEST(MagazineOrder, FreshCacheHandsOutLowestSlotsFirst) {
    for (size_t size : {16, 128, 1000, 5000}) {
        kmem_cache *c = kmem_cache_create("order", size, 0, 0, nullptr);
        ASSERT_NE(nullptr, c);
        const kmem_cache_stats st = Stats(c);
        ASSERT_GT(st.magazine_size, 2u);
        std::vector<uintptr_t> v;
        for (size_t i = 0; i < st.magazine_size; i++)  // two refills
            v.push_back(reinterpret_cast<uintptr_t>(kmem_cache_alloc(c, 0)));
        uintptr_t slab = v[0] & c->slab_mask;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(reinterpret_cast<struct slab *>(slab)->objs), v[0])
            << size << ": the first object is slot 0";
        for (size_t i = 1; i < v.size(); i++)
            EXPECT_EQ(v[i - 1] + c->slot_size, v[i]) << size << " object " << i;
        for (uintptr_t p : v) kmem_cache_free(c, reinterpret_cast<void *>(p));
        ASSERT_EQ(0, kmem_cache_validate(c));
        kmem_cache_destroy(c);
    }
}

}  // namespace
