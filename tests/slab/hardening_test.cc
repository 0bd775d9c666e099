/* SPDX-License-Identifier: MIT */
// tests/slab/hardening_test.cc - a damaged slab header is never trusted.
//
// Strategy: a slab header sits at the start of its buddy block, right after whatever block lies
// below it, so a caller's overflow past that block writes the header's first bytes first.  The
// tests write 1-64 bytes of garbage (or forged values: a pointer into this program's .bss, a
// neighbour's address) over a live slab's header, as such an overflow would, then keep
// allocating and freeing.  In default mode the first slow path that touches the slab reports
// it ("header damaged", naming the slab and the cache) and aborts (death tests).  With
// SLABCACHE_ON_ERROR=report the allocator sets the damaged slab aside and carries on: every
// object handed out afterwards lies in a sound slab of the cache, no two live objects overlap,
// and the validator passes.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "slab/slab.h"
#include "slab/fastpath.h"
#include "slab/internal.h"
}

namespace {

char bss_target[4096];  // where a forged pointer would steer an allocation

kmem_cache_stats Stats(kmem_cache *c) {
    kmem_cache_stats st;
    EXPECT_EQ(0, kmem_cache_get_stats(c, &st));
    return st;
}

// Objects handed out never overlap each other and never lie in .bss; each lies in a slab of
// c whose header is sound, or is one of `cached`: objects that were free in a magazine before
// the damage (magazines are out of band: what they hold was checked when it was freed).
void ExpectSound(kmem_cache *c, const std::vector<void *> &live,
                 const std::vector<void *> &cached) {
    std::vector<uintptr_t> v;
    for (void *p : live) {
        uintptr_t a = reinterpret_cast<uintptr_t>(p);
        ASSERT_FALSE(a >= reinterpret_cast<uintptr_t>(bss_target) &&
                     a < reinterpret_cast<uintptr_t>(bss_target) + sizeof bss_target)
            << "steered into .bss: " << p;
        ASSERT_TRUE(heap_is_split_granule(p)) << p;
        if (std::find(cached.begin(), cached.end(), p) == cached.end()) {
            ASSERT_EQ(c, slab_owner(slab_of(c, p))) << p;
        }
        v.push_back(a);
    }
    std::sort(v.begin(), v.end());
    for (size_t i = 1; i < v.size(); i++)
        ASSERT_GE(v[i] - v[i - 1], c->object_size) << "overlapping objects";
}

// An overflow of `len` bytes from the block below into the header of s: garbage, or (forge)
// the first words rewritten with pointers into .bss.
void Overflow(struct slab *s, size_t len, std::mt19937_64 &rng, bool forge) {
    unsigned char buf[64];
    for (size_t i = 0; i < sizeof buf; i += 8) {
        uint64_t w = forge ? reinterpret_cast<uintptr_t>(bss_target) + (rng() % 64) * 8 : rng();
        memcpy(buf + i, &w, 8);
    }
    memcpy(s, buf, len);
}

class HardeningTest : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        setenv("SLABCACHE_ON_ERROR", "report", 1);
        report_reset_options();
    }
    void TearDown() override {
        unsetenv("SLABCACHE_ON_ERROR");
        report_reset_options();
    }
};

// For each seed: a cache with a few slabs, one slab's header overwritten by 1-64 bytes, then
// random allocation and frees (from the magazines, the depot and the slabs).  Reports are
// expected; a crash, an overlap, an object outside sound slabs or a validator failure is not.
TEST_P(HardeningTest, OverflowIntoAHeaderIsSetAsideAndTheCacheGoesOn) {
    std::mt19937_64 rng(static_cast<uint64_t>(GetParam()) * 7919u);
    size_t sizes[] = {16, 48, 117, 512, 3000};
    size_t size = sizes[rng() % 5];
    kmem_cache *c = kmem_cache_create("hard", size, 0, 0, nullptr);
    ASSERT_NE(nullptr, c);
    std::vector<void *> live;
    for (uint32_t i = 0; i < 3 * c->objs_per_slab; i++) live.push_back(kmem_cache_alloc(c, 0));
    // Free some so the victim slab is partial, then damage one slab that still holds objects.
    std::vector<void *> cached;
    for (size_t i = 0; i < live.size(); i += 3) {
        kmem_cache_free(c, live[i]);
        cached.push_back(live[i]);
        live[i] = nullptr;
    }
    live.erase(std::remove(live.begin(), live.end(), nullptr), live.end());
    // The victim: the slab the next allocation from the slabs takes (white-box), so a slow
    // path meets the damage; the others hold the objects the run frees and reallocates.
    struct slab *victim = c->partial.first ? c->partial.first : c->full.first;
    ASSERT_NE(nullptr, victim);
    size_t len = 1 + rng() % 64;
    bool forge = rng() % 2;
    Overflow(victim, len, rng, forge);
    // Objects of the damaged slab are the caller's; they are given up (never freed again).
    std::vector<void *> kept;
    for (void *p : live)
        if (slab_of(c, p) != victim) kept.push_back(p);
    live = kept;
    testing::internal::CaptureStderr();
    kmem_cache_shrink(c);  // cached objects back to their slabs: the victim's are dropped
    for (int step = 0; step < 4000; step++) {
        if (rng() % 2 || live.empty()) {
            void *p = kmem_cache_alloc(c, 0);
            ASSERT_NE(nullptr, p);
            live.push_back(p);
        } else {
            size_t i = rng() % live.size();
            kmem_cache_free(c, live[i]);
            live[i] = live.back();
            live.pop_back();
        }
    }
    kmem_cache_shrink(c);  // every magazine of this thread and the depot back to the slabs
    std::string err = testing::internal::GetCapturedStderr();
    ExpectSound(c, live, cached);
    EXPECT_EQ(0, kmem_cache_validate(c)) << err;
    // The damage was found (an overflow of any length breaks the canary, the first word).
    EXPECT_NE(std::string::npos, err.find("header damaged")) << "len " << len << "\n" << err;
    for (void *p : live) kmem_cache_free(c, p);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
}

INSTANTIATE_TEST_SUITE_P(Seeds, HardeningTest, ::testing::Range(0, 40));

// Default mode: the damaged header is reported, naming the slab and its cache, and the
// program stops before anything steered by it is handed out.
// 40 bytes past the block below, over a slab of 3000-byte objects: canary, objs (into .bss),
// touched, inuse, cache.  Then allocate from it.
void ForgeAndAllocate() {
    kmem_cache *c = kmem_cache_create("forged", 3000, 0, SLAB_NO_MAGAZINE, nullptr);
    void *a = kmem_cache_alloc(c, 0);
    struct slab *s = slab_of(c, a);
    uint64_t w[5] = {0x4141414141414141u, reinterpret_cast<uintptr_t>(bss_target), 0, 0,
                     reinterpret_cast<uintptr_t>(c)};
    memcpy(s, w, sizeof w);
    for (int i = 0; i < 20; i++) {
        void *p = kmem_cache_alloc(c, 0);
        if (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(bss_target) <
            sizeof bss_target)
            fprintf(stderr, "steered into .bss\n");
    }
}

TEST(HardeningDeathTest, ForgedHeaderAbortsBeforeAnyAllocationIsSteered) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(ForgeAndAllocate(),
                 "slabcache: slab 0x[0-9a-f]+ of cache forged: header damaged \\(canary");
}

// A free of an object of a damaged slab is refused by the always-on check (the canary):
// the damaged header is never used to find a slot.
TEST(Hardening, FreeIntoADamagedSlabIsRefused) {
    setenv("SLABCACHE_ON_ERROR", "report", 1);
    report_reset_options();
    kmem_cache *c = kmem_cache_create("refuse", 64, 0, 0, nullptr);
    void *keep = kmem_cache_alloc(c, 0);
    void *a = kmem_cache_alloc(c, 0);  // the popped run starts at a: keep takes the check
    struct slab *s = slab_of(c, a);
    ASSERT_EQ(s, slab_of(c, keep));
    s->canary ^= 1;
    testing::internal::CaptureStderr();
    kmem_cache_free(c, keep);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("slab header damaged")) << err;
    EXPECT_EQ(1u, Stats(c).invalid_frees);
    s->canary ^= 1;
    kmem_cache_free(c, keep);
    kmem_cache_free(c, a);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
    unsetenv("SLABCACHE_ON_ERROR");
    report_reset_options();
}

// A list link forged to point into .bss is caught before it is written through (safe
// unlinking), and the lists are rebuilt from the page map.
TEST(Hardening, ForgedListLinkIsNeverFollowed) {
    setenv("SLABCACHE_ON_ERROR", "report", 1);
    report_reset_options();
    kmem_cache *c = kmem_cache_create("links", 1024, 0, SLAB_NO_MAGAZINE, nullptr);
    std::vector<void *> v;
    for (uint32_t i = 0; i < 3 * c->objs_per_slab; i++) v.push_back(kmem_cache_alloc(c, 0));
    struct slab *s = slab_of(c, v[c->objs_per_slab]);  // a full slab in the middle
    memset(bss_target, 0x77, sizeof bss_target);
    s->next = reinterpret_cast<struct slab *>(bss_target);
    s->prev = reinterpret_cast<struct slab *>(bss_target + 64);
    testing::internal::CaptureStderr();
    kmem_cache_free(c, v[c->objs_per_slab]);  // full -> partial: s is unlinked
    v[c->objs_per_slab] = nullptr;
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("list links")) << err;
    for (size_t i = 0; i < sizeof bss_target; i++) ASSERT_EQ(0x77, (unsigned char)bss_target[i]);
    EXPECT_EQ(0, kmem_cache_validate(c));
    for (void *p : v) kmem_cache_free(c, p);
    EXPECT_EQ(0, kmem_cache_validate(c));
    EXPECT_EQ(0u, Stats(c).active_objects);
    kmem_cache_destroy(c);
    unsetenv("SLABCACHE_ON_ERROR");
    report_reset_options();
}

// A bitmap word cleared behind the lock's back (a stray write into the header past its
// canary) would hand out live objects; the bitmap's sum catches it before any slot is taken.
TEST(Hardening, BitmapChangedBehindTheLockIsCaughtBeforeSlotsAreTaken) {
    setenv("SLABCACHE_ON_ERROR", "report", 1);
    report_reset_options();
    kmem_cache *c = kmem_cache_create("bits", 64, 0, SLAB_NO_MAGAZINE, nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 10; i++) v.push_back(kmem_cache_alloc(c, 0));
    struct slab *s = slab_of(c, v[0]);
    s->bitmap[0] &= ~(uint64_t)0x3ff;  // the ten live objects look free
    testing::internal::CaptureStderr();
    void *p = kmem_cache_alloc(c, 0);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("header damaged (bitmap")) << err;
    for (void *q : v) EXPECT_NE(q, p);
    EXPECT_NE(s, slab_of(c, p));
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_free(c, p);
    kmem_cache_destroy(c);
    unsetenv("SLABCACHE_ON_ERROR");
    report_reset_options();
}

}  // namespace
