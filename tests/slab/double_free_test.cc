/* SPDX-License-Identifier: MIT */
// tests/slab/double_free_test.cc - every double free is refused at the second free.
//
// Strategy: for each pattern in which glibc's malloc reports a double free (immediate, deep in
// a per-thread cache, after the cache moved on, after the chunk went back to the heap) and a
// few it does not (the first free on another thread, while the object is still in that
// thread's magazine), free an object twice with SLABCACHE_ON_ERROR=report and check that
//   - the second free is reported, naming the operation and the cache,
//   - invalid_frees counts it once,
//   - the validator passes (nothing is cached twice, every count is exact),
//   - and, the property that matters, no object is ever handed out twice: after the double
//     free, twice a magazine's worth of allocations are all distinct, and distinct from the
//     objects the test still holds.
// Every pattern runs for a cache without a constructor (the free mark is the object's first
// word) and one with a constructor (the mark sits after the object, which stays
// constructed).  The idea of the patterns is glibc's tst-malloc-tcache-double-free and
// tst-mallocfork's siblings; the code is ours.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "slab/slab.h"
#include "slab/fastpath.h"
#include "slab/internal.h"
}

namespace {

kmem_cache_stats Stats(kmem_cache *c) {
    kmem_cache_stats st;
    EXPECT_EQ(0, kmem_cache_get_stats(c, &st));
    return st;
}

constexpr unsigned char kCtorByte = 0xc7;
void FillCtor(void *obj) { memset(obj, kCtorByte, 48); }

class DoubleFreeTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        setenv("SLABCACHE_ON_ERROR", "report", 1);
        report_reset_options();
        c_ = kmem_cache_create(GetParam() ? "df-ctor" : "df-plain", 48, 0, 0,
                               GetParam() ? FillCtor : nullptr);
        ASSERT_NE(nullptr, c_);
        mag_ = Stats(c_).magazine_size;
        ASSERT_GT(mag_, 2u);
    }
    void TearDown() override {
        for (void *p : held_) kmem_cache_free(c_, p);
        EXPECT_EQ(0, kmem_cache_validate(c_));
        kmem_cache_thread_flush();
        kmem_cache_destroy(c_);
        unsetenv("SLABCACHE_ON_ERROR");
        report_reset_options();
    }
    void *Alloc() {
        void *p = kmem_cache_alloc(c_, 0);
        EXPECT_NE(nullptr, p);
        if (GetParam()) {  // a constructor's object comes out constructed
            for (int i = 0; i < 48; i++)
                EXPECT_EQ(kCtorByte, static_cast<unsigned char *>(p)[i]) << p;
        }
        return p;
    }
    // The second free of p, which must be refused and reported.
    void SecondFree(void *p, const char *op = "kmem_cache_free") {
        size_t before = Stats(c_).invalid_frees;
        testing::internal::CaptureStderr();
        kmem_cache_free(c_, p);
        std::string err = testing::internal::GetCapturedStderr();
        EXPECT_NE(std::string::npos, err.find(std::string(op) + ": double free of")) << err;
        EXPECT_NE(std::string::npos, err.find(kmem_cache_name(c_))) << err;
        EXPECT_EQ(before + 1, Stats(c_).invalid_frees);
        EXPECT_EQ(0, kmem_cache_validate(c_));
    }
    // No object handed out twice: 2 magazines' worth of allocations, all distinct and none
    // of them held already.  They stay held until TearDown.
    void NothingHandedOutTwice() {
        std::set<void *> seen(held_.begin(), held_.end());
        for (uint32_t i = 0; i < 2 * mag_ + 3; i++) {
            void *p = Alloc();
            EXPECT_TRUE(seen.insert(p).second) << "handed out twice: " << p;
            held_.push_back(p);
        }
        EXPECT_EQ(0, kmem_cache_validate(c_));
    }
    kmem_cache *c_ = nullptr;
    uint32_t mag_ = 0;
    std::vector<void *> held_;
};

TEST_P(DoubleFreeTest, Immediate) {
    void *a = Alloc();
    kmem_cache_free(c_, a);
    SecondFree(a);
    NothingHandedOutTwice();
}

// a, b, a: glibc's "free(): double free detected in tcache 2".
TEST_P(DoubleFreeTest, DeepInTheMagazine) {
    held_.push_back(Alloc());
    void *a = Alloc(), *b = Alloc();
    kmem_cache_free(c_, a);
    kmem_cache_free(c_, b);
    SecondFree(a);
    NothingHandedOutTwice();
}

// The LIFO free (the popped run) of an object another thread freed meanwhile: the run says
// "popped here, not freed here since", only the mark knows the rest.
TEST_P(DoubleFreeTest, FirstFreeOnAnotherThreadThenLifoFree) {
    held_.push_back(Alloc());
    void *a = Alloc();  // a is the popped run's first object now
    std::thread([&] { kmem_cache_free(c_, a); }).join();  // still in that (exited) thread's
    SecondFree(a);                                         // magazine, or in the depot
    NothingHandedOutTwice();
}

TEST_P(DoubleFreeTest, FirstFreeOnALiveThreadWhoseMagazineHoldsIt) {
    void *a = Alloc();
    std::atomic<int> step{0};
    std::thread t([&] {
        kmem_cache_free(c_, a);
        step = 1;
        while (step != 2) std::this_thread::yield();
    });
    while (step != 1) std::this_thread::yield();
    SecondFree(a);
    step = 2;
    t.join();
    NothingHandedOutTwice();
}

// After the magazine holding a went to the depot: a magazine's worth of frees follows a.
TEST_P(DoubleFreeTest, AfterTheMagazineMovedToTheDepot) {
    std::vector<void *> v;
    for (uint32_t i = 0; i < 3 * mag_; i++) v.push_back(Alloc());
    void *a = v[0];
    for (void *p : v) kmem_cache_free(c_, p);
    EXPECT_GT(Stats(c_).depot_full, 0u);
    SecondFree(a);
    NothingHandedOutTwice();
}

// After a went back to its slab (shrink drains this thread's magazines and the depot); the
// slab stays because another object of it is held.
TEST_P(DoubleFreeTest, AfterTheObjectWentBackToItsSlab) {
    held_.push_back(Alloc());
    void *a = Alloc();
    kmem_cache_free(c_, a);
    ASSERT_EQ(0, kmem_cache_shrink(c_));
    EXPECT_EQ(0u, Stats(c_).cached_objects);
    SecondFree(a);
    NothingHandedOutTwice();
}

// kmem_cache_free_bulk({a, b, a}): the third pointer is refused, the first two are freed.
TEST_P(DoubleFreeTest, WithinOneBulkFree) {
    held_.push_back(Alloc());
    void *a = Alloc(), *b = Alloc();
    void *objs[3] = {a, b, a};
    size_t before = Stats(c_).invalid_frees;
    testing::internal::CaptureStderr();
    kmem_cache_free_bulk(c_, 3, objs);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("double free of")) << err;
    EXPECT_EQ(before + 1, Stats(c_).invalid_frees);
    EXPECT_EQ(1u, Stats(c_).active_objects);
    NothingHandedOutTwice();
}

// Many objects freed twice in random patterns between allocations: the counts stay exact.
TEST_P(DoubleFreeTest, RandomDoubleFreesNeverShareAnObject) {
    std::mt19937 rng(7);
    std::vector<void *> live, freed;
    size_t reported = 0;
    testing::internal::CaptureStderr();
    for (int step = 0; step < 20000; step++) {
        unsigned r = rng() % 8;
        if (r < 4 || live.empty()) {
            live.push_back(Alloc());
        } else if (r < 7) {
            size_t i = rng() % live.size();
            kmem_cache_free(c_, live[i]);
            freed.push_back(live[i]);
            live[i] = live.back();
            live.pop_back();
        } else if (!freed.empty()) {
            // A pointer freed earlier and not handed out again since: a double free.
            void *p = freed[rng() % freed.size()];
            bool reallocated = false;
            for (void *q : live) reallocated |= q == p;
            if (!reallocated) {
                kmem_cache_free(c_, p);
                reported++;
            }
        }
        if (freed.size() > 256) freed.erase(freed.begin(), freed.begin() + 128);
    }
    testing::internal::GetCapturedStderr();
    EXPECT_EQ(reported, Stats(c_).invalid_frees);
    std::set<void *> seen(live.begin(), live.end());
    EXPECT_EQ(live.size(), seen.size());
    EXPECT_EQ(live.size(), Stats(c_).active_objects);
    EXPECT_EQ(0, kmem_cache_validate(c_));
    held_ = live;
    NothingHandedOutTwice();
}

INSTANTIATE_TEST_SUITE_P(Caches, DoubleFreeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool> &i) {
                             return i.param ? "WithConstructor" : "WithoutConstructor";
                         });

// Default mode: the second free aborts, before the object can be handed out twice.
TEST(DoubleFreeDeathTest, DeepDoubleFreeAbortsAtTheSecondFree) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    kmem_cache *c = kmem_cache_create("df-abort", 100, 0, 0, nullptr);
    EXPECT_DEATH(
        {
            void *a = kmem_cache_alloc(c, 0);
            void *b = kmem_cache_alloc(c, 0);
            kmem_cache_free(c, a);
            kmem_cache_free(c, b);
            kmem_cache_free(c, a);
            fprintf(stderr, "not caught\n");
        },
        "slabcache: kmem_cache_free: double free of 0x[0-9a-f]+ in cache df-abort");
    kmem_cache_destroy(c);
}

// A free of a slot of a live slab that was never handed out (a forged pointer) is refused:
// the slab's high-water mark (touched) says it never left the bitmap.
TEST(DoubleFreeForged, SlotNeverHandedOutIsRefused) {
    setenv("SLABCACHE_ON_ERROR", "report", 1);
    report_reset_options();
    kmem_cache *c = kmem_cache_create("df-forged", 64, 0, 0, nullptr);
    void *a = kmem_cache_alloc(c, 0);
    struct slab *s = slab_of(c, a);
    void *never = s->objs + (size_t)(c->objs_per_slab - 1) * c->slot_size;
    ASSERT_LT(s->touched, c->objs_per_slab);
    testing::internal::CaptureStderr();
    kmem_cache_free(c, never);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("never handed out")) << err;
    EXPECT_EQ(1u, Stats(c).invalid_frees);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_free(c, a);
    kmem_cache_destroy(c);
    unsetenv("SLABCACHE_ON_ERROR");
    report_reset_options();
}

}  // namespace
