/* SPDX-License-Identifier: MIT */
// tests/kmalloc/redzone_test.cc - kmalloc red zones from the size asked for (SLABCACHE_DEBUG=Z).
//
// Strategy: this binary runs with SLABCACHE_DEBUG=Z for every cache (set before the first
// cache exists), so every kmalloc class has red zones and keeps each object's requested size
// (SLUB's orig_size, Linux 6.1).  Then, as SLUB's kunit test_kmalloc_redzone_access: a write
// just past the size asked for, inside the class's slot, is found by the validator and by
// the free; ksize and the malloc front's usable size say the size asked for; krealloc in
// place moves the red zone with the size; and SLUB's test_krealloc_redzone_zeroing: krealloc
// with KM_ZERO zeroes what it hands out and keeps the red zone past it.  The ideas are SLUB's
// kunit tests; the code is ours.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "slab/kmalloc.h"
#include "slab/slab.h"
extern "C" {
#include "slab/debug.h"
#include "slab/kmalloc_internal.h"
}

#pragma GCC diagnostic ignored "-Wuse-after-free"

namespace {

// Before the first cache: every cache gets Z; misuse is reported and the test goes on.
const bool kEnv = setenv("SLABCACHE_DEBUG", "Z", 1) == 0 &&
                  setenv("SLABCACHE_ON_ERROR", "report", 1) == 0;

// The class cache an object of `size` bytes comes from (kmalloc's own lookup).
kmem_cache *ClassCache(size_t size) { return kmalloc_caches[kmalloc_class_index(size)]; }

class RedZoneTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(kEnv);
        debug_reset_options();
        report_reset_options();
    }
    void TearDown() override { EXPECT_EQ(0, slabcache_validate()); }
};

// SLUB's test_kmalloc_redzone_access: kmalloc(18) from a 24-byte class, bytes 18 and 19
// written: both the validator and the free find them.
TEST_F(RedZoneTest, WritePastTheSizeAskedForIsFound) {
    auto *p = static_cast<unsigned char *>(kmalloc(18, 0));
    ASSERT_NE(nullptr, p);
    kmem_cache *c = ClassCache(18);
    ASSERT_NE(nullptr, c);
    ASSERT_EQ(24u, kmem_cache_size(c)) << "18 bytes come from kmalloc-24";
    EXPECT_EQ(18u, ksize(p));
    EXPECT_EQ(0, kmem_cache_validate(c));
    p[18] = 0xab;
    p[19] = 0xab;
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(-1, kmem_cache_validate(c));
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("red zone overwritten: allocated object")) << err;
    EXPECT_NE(std::string::npos, err.find("(size 18), red zone bytes 0..1 past its end")) << err;
    ::testing::internal::CaptureStderr();
    kfree(p);
    err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("red zone overwritten in cache kmalloc-24: allocated "
                                          "object"))
        << err;
    EXPECT_NE(std::string::npos, err.find("(size 18), red zone bytes 0..1 past its end changed "
                                          "(0xbb expected, found 0xab)"))
        << err;
}

TEST_F(RedZoneTest, EverySizeOfAClassHasItsOwnRedZone) {
    for (size_t size : {1ul, 7ul, 17ul, 23ul, 100ul, 1000ul, 4097ul, 20000ul}) {
        auto *p = static_cast<unsigned char *>(kmalloc(size, 0));
        ASSERT_NE(nullptr, p);
        kmem_cache *c = ClassCache(size);
        EXPECT_EQ(size, ksize(p));
        memset(p, 0x11, size);  // every byte asked for may be written
        EXPECT_EQ(0, kmem_cache_validate(c)) << size;
        unsigned char saved = p[size];
        p[size] = 0x5a;  // one past: inside the slot when the class is larger
        ::testing::internal::CaptureStderr();
        kfree(p);
        std::string err = ::testing::internal::GetCapturedStderr();
        EXPECT_NE(std::string::npos, err.find("red zone bytes 0..0 past its end")) << size << err;
        (void)saved;
    }
}

// The malloc front's 16-byte classes: malloc(18) comes from kmalloc-32, and its red zone
// starts at 18 as well; the aligned path too.
TEST_F(RedZoneTest, MallocClassesAndAlignedAllocationsToo) {
    auto *p = static_cast<unsigned char *>(kmalloc_for_malloc(18, 0, nullptr));
    ASSERT_NE(nullptr, p);
    EXPECT_EQ(18u, kmalloc_usable_size_op(p, "malloc_usable_size"));
    p[20] = 1;
    ::testing::internal::CaptureStderr();
    kmalloc_free_op(p, "free", nullptr);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("red zone overwritten in cache kmalloc-32")) << err;
    EXPECT_NE(std::string::npos, err.find("(size 18), red zone bytes 2..2")) << err;
    p = static_cast<unsigned char *>(kmalloc_aligned(64, 40, 0));
    ASSERT_NE(nullptr, p);
    EXPECT_EQ(0u, (uintptr_t)p % 64);
    EXPECT_EQ(40u, ksize(p));
    p[40] = 1;
    ::testing::internal::CaptureStderr();
    kfree(p);
    err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("(size 40), red zone bytes 0..0")) << err;
}

TEST_F(RedZoneTest, KzallocZeroesTheSizeAskedForAndKeepsTheRedZone) {
    auto *p = static_cast<unsigned char *>(kzalloc(18, 0));
    for (int i = 0; i < 18; i++) EXPECT_EQ(0, p[i]) << i;
    EXPECT_EQ(18u, ksize(p));
    EXPECT_EQ(0, kmem_cache_validate(ClassCache(18)));
    ::testing::internal::CaptureStderr();
    kfree(p);
    EXPECT_EQ("", ::testing::internal::GetCapturedStderr());
}

// krealloc in place moves the red zone with the size; one that finds the old red zone
// written reports it (like a free would).
TEST_F(RedZoneTest, KreallocInPlaceMovesTheRedZone) {
    auto *p = static_cast<unsigned char *>(kmalloc(20, 0));
    auto *q = static_cast<unsigned char *>(krealloc(p, 10, 0));
    ASSERT_EQ(p, q);
    EXPECT_EQ(10u, ksize(p));
    p[12] = 7;
    ::testing::internal::CaptureStderr();
    q = static_cast<unsigned char *>(krealloc(p, 24, 0));
    std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(p, q);
    EXPECT_NE(std::string::npos, err.find("(size 10), red zone bytes 2..2 past its end")) << err;
    EXPECT_NE(std::string::npos, err.find("found at krealloc")) << err;
    EXPECT_EQ(24u, ksize(p));
    memset(p, 3, 24);
    ::testing::internal::CaptureStderr();
    kfree(p);
    EXPECT_EQ("", ::testing::internal::GetCapturedStderr());
}

bool AllAre(const unsigned char *p, size_t from, size_t to, unsigned char v, size_t *at) {
    for (size_t i = from; i < to; i++) {
        if (p[i] != v) {
            *at = i;
            return false;
        }
    }
    return true;
}

// SLUB's test_krealloc_redzone_zeroing: 48 bytes asked for from a 64-byte class (here by
// alignment: kmalloc_aligned(64, 48) is served by kmalloc-64), shrunk to 40 and grown to 56
// in place, then to 112 in a new block, every step with KM_ZERO.
TEST_F(RedZoneTest, KreallocWithKmZeroKeepsTheRedZoneAndZeroesTheRest) {
    auto *p = static_cast<unsigned char *>(kmalloc_aligned(64, 48, 0));
    ASSERT_NE(nullptr, p);
    kmem_cache *c64 = ClassCache(64);
    ASSERT_EQ(64u, kmem_cache_size(c64));
    memset(p, 0xff, 48);
    size_t at = 0;
    auto *q = static_cast<unsigned char *>(krealloc(p, 40, KM_ZERO));
    ASSERT_EQ(p, q) << "shrinks in place";
    EXPECT_TRUE(AllAre(p, 40, 64, SLAB_RED_ACTIVE, &at)) << "byte " << at << " is " << (int)p[at];
    q = static_cast<unsigned char *>(krealloc(p, 56, KM_ZERO));
    ASSERT_EQ(p, q) << "grows in place within the 64-byte object";
    EXPECT_TRUE(AllAre(p, 0, 40, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(p, 40, 56, 0, &at)) << "byte " << at << " is " << (int)p[at];
    EXPECT_TRUE(AllAre(p, 56, 64, SLAB_RED_ACTIVE, &at)) << "byte " << at << " is " << (int)p[at];
    EXPECT_EQ(0, kmem_cache_validate(c64));
    memset(p, 0xff, 56);
    p = static_cast<unsigned char *>(krealloc(p, 112, KM_ZERO));
    EXPECT_TRUE(AllAre(p, 0, 56, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(p, 56, 112, 0, &at)) << "byte " << at << " is " << (int)p[at];
    EXPECT_EQ(112u, ksize(p));
    ::testing::internal::CaptureStderr();
    kfree(p);
    EXPECT_EQ("", ::testing::internal::GetCapturedStderr());
    // The sequence through kmalloc-48: grow to 56 moves, and still reads zero.
    p = static_cast<unsigned char *>(kmalloc(48, 0));
    memset(p, 0xff, 48);
    p = static_cast<unsigned char *>(krealloc(p, 40, KM_ZERO));
    p = static_cast<unsigned char *>(krealloc(p, 56, KM_ZERO));
    EXPECT_TRUE(AllAre(p, 40, 56, 0, &at)) << "byte " << at << " is " << (int)p[at];
    EXPECT_EQ(56u, ksize(p));
    kfree(p);
}

// Growth by realloc keeps the exact size (no 1.25x headroom inside a red-zoned class).
TEST_F(RedZoneTest, ReallocGrowthKeepsTheSizeAskedFor) {
    auto *p = static_cast<unsigned char *>(kmalloc_for_malloc(100, 0, nullptr));
    memset(p, 1, 100);
    p = static_cast<unsigned char *>(kmalloc_realloc(p, 130, 0, true, "realloc", nullptr));
    ASSERT_NE(nullptr, p);
    EXPECT_EQ(130u, kmalloc_usable_size_op(p, "malloc_usable_size"));
    p[130] = 9;
    ::testing::internal::CaptureStderr();
    kmalloc_free_op(p, "free", nullptr);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("(size 130), red zone bytes 0..0")) << err;
}

}  // namespace
