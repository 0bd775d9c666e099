/* SPDX-License-Identifier: MIT */
// tests/kmalloc/misuse_test.cc - bad arguments and misuse, as a new user meets them.
//
// Strategy: each test names one thing a caller can get wrong and checks the documented
// answer: EINVAL (or a report) instead of a crash or a silent surprise, and a report that
// names the entry point the program called and the kind of block involved (small object,
// large block, huge mapping), with SLABCACHE_ON_ERROR=report so the process goes on and the
// allocator can be validated afterwards.  Also krealloc with KM_ZERO, which follows the
// kernel's krealloc with __GFP_ZERO (SLUB's kunit test_krealloc_redzone_zeroing, here without
// debug options; tests/kmalloc/redzone_test.cc has it with them), and ksize of pointers that
// are not allocated blocks (glibc's tst-malloc-usable asks for the usable size of every block
// and writes all of it; an interior or freed pointer must not get a size).  The ideas are
// from those suites; the code is ours.
#include <gtest/gtest.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sstream>
#include <string>
#include <vector>

#include "slab/kmalloc.h"
#include "slab/slab.h"
extern "C" {
#include "slab/kmalloc_internal.h"
}

// The tests free blocks twice and read them after krealloc on purpose.
#pragma GCC diagnostic ignored "-Wuse-after-free"

namespace {

class MisuseTest : public ::testing::Test {
  protected:
    void SetUp() override {
        setenv("SLABCACHE_ON_ERROR", "report", 1);
        report_reset_options();
    }
    void TearDown() override {
        EXPECT_EQ(0, slabcache_validate());
        unsetenv("SLABCACHE_ON_ERROR");
        report_reset_options();
    }
    // What fn writes to stderr; it must be exactly one "slabcache: " line.
    template <typename F>
    std::string Report(F fn) {
        ::testing::internal::CaptureStderr();
        fn();
        std::string err = ::testing::internal::GetCapturedStderr();
        EXPECT_EQ(0u, err.find("slabcache: ")) << err;
        EXPECT_EQ(err.size() - 1, err.find('\n')) << "one line: " << err;
        return err;
    }
};

std::string Hex(const void *p) {
    char buf[32];
    snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

// ---------------------------------------------------------------- kmem_cache_args

TEST_F(MisuseTest, MagazineSizesPastTheLimitAreRefused) {
    kmem_cache_args args = {};
    for (unsigned bad : {0xffffffffu, 1u << 30, KMEM_CACHE_MAX_MAGAZINE_SIZE + 1}) {
        args.magazine_size = bad;
        errno = 0;
        EXPECT_EQ(nullptr, kmem_cache_create_args("mag-bad", 64, &args, 0)) << bad;
        EXPECT_EQ(EINVAL, errno) << bad;
    }
    args.magazine_size = KMEM_CACHE_MAX_MAGAZINE_SIZE;
    kmem_cache *c = kmem_cache_create_args("mag-max", 64, &args, 0);
    ASSERT_NE(nullptr, c);
    kmem_cache_stats st;
    ASSERT_EQ(0, kmem_cache_get_stats(c, &st));
    EXPECT_EQ(KMEM_CACHE_MAX_MAGAZINE_SIZE, st.magazine_size);
    std::vector<void *> objs;
    for (unsigned i = 0; i < 3 * KMEM_CACHE_MAX_MAGAZINE_SIZE; i++)
        objs.push_back(kmem_cache_alloc(c, 0));
    for (void *p : objs) kmem_cache_free(c, p);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
}

// /proc/slabinfo separates its columns with blanks; SLUB's names never hold one.
TEST_F(MisuseTest, CacheNamesWithBlanksOrControlCharactersAreRefused) {
    for (const char *bad : {"my cache", "tab\tname", "line\nbreak", "bell\a", " lead", "del\x7f"}) {
        errno = 0;
        EXPECT_EQ(nullptr, kmem_cache_create(bad, 64, 0, 0, nullptr)) << bad;
        EXPECT_EQ(EINVAL, errno) << bad;
    }
    kmem_cache *c = kmem_cache_create("ok_name-1.2:x", 64, 0, 0, nullptr);
    ASSERT_NE(nullptr, c);
    kmem_cache_free(c, kmem_cache_alloc(c, 0));
    // Every data line of slabinfo has as many columns as every other.
    char *buf = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_NE(nullptr, f);
    kmem_cache_print_slabinfo(f);
    fclose(f);
    std::istringstream in(std::string(buf, len));
    free(buf);
    std::string line;
    int want = -1, lines = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line.rfind("slabinfo", 0) == 0) continue;
        std::istringstream words(line);
        std::string w;
        int n = 0;
        while (words >> w) n++;
        if (want < 0) want = n;
        EXPECT_EQ(want, n) << line;
        lines++;
    }
    EXPECT_GT(lines, 0);
    kmem_cache_destroy(c);
}

// ---------------------------------------------------------------- reports: who and what

TEST_F(MisuseTest, DoubleFreeReportsNameTheEntryPointAndTheKindOfBlock) {
    kmem_cache *c = kmem_cache_create("who", 64, 0, 0, nullptr);
    ASSERT_NE(nullptr, c);
    void *keep = kmalloc(100, 0);
    using Alloc = void *(*)(kmem_cache *);
    using Free = void (*)(kmem_cache *, void *);
    const Alloc from_cache = [](kmem_cache *cc) { return kmem_cache_alloc(cc, 0); };
    const Alloc small = [](kmem_cache *) { return kmalloc(100, 0); };
    const Alloc large = [](kmem_cache *) { return kmalloc(100000, 0); };
    const Alloc huge = [](kmem_cache *) { return kmalloc(6u << 20, 0); };
    const Free to_cache = [](kmem_cache *cc, void *p) { kmem_cache_free(cc, p); };
    const Free with_kfree = [](kmem_cache *, void *p) { kfree(p); };
    struct Case {
        const char *want;
        Alloc alloc;
        Free first;  // the first free, always fine
        Free again;  // the second: reported
    } cases[] = {
        {"kmem_cache_free: double free of small object", from_cache, to_cache, to_cache},
        {"kmem_cache_free_bulk: double free of small object", from_cache, to_cache,
         [](kmem_cache *cc, void *p) { kmem_cache_free_bulk(cc, 1, &p); }},
        {"kfree: double free of small object", small, with_kfree, with_kfree},
        // malloc.c's free and realloc pass their own names (tests/malloc has the real ones).
        {"free: double free of small object", small, with_kfree,
         [](kmem_cache *, void *p) { kmalloc_free_op(p, "free", nullptr); }},
        {"krealloc: double free of small object", small, with_kfree,
         [](kmem_cache *, void *p) { EXPECT_EQ(nullptr, krealloc(p, 300, 0)); }},
        {"krealloc: double free of small object", small, with_kfree,
         [](kmem_cache *, void *p) { EXPECT_EQ(nullptr, krealloc(p, 0, 0)); }},
        {"kfree: double free of large block", large, with_kfree, with_kfree},
        {"krealloc: double free of large block", large, with_kfree,
         [](kmem_cache *, void *p) { EXPECT_EQ(nullptr, krealloc(p, 5, 0)); }},
        {"kfree: double free of huge mapping", huge, with_kfree, with_kfree},
        {"free: double free of huge mapping", huge, with_kfree,
         [](kmem_cache *, void *p) { kmalloc_free_op(p, "free", nullptr); }},
    };
    for (const Case &cs : cases) {
        // A second block freed in between: the first is not on top of a magazine.
        void *p = cs.alloc(c), *q = cs.alloc(c);
        ASSERT_NE(nullptr, p);
        cs.first(c, p);
        cs.first(c, q);
        std::string err = Report([&] { cs.again(c, p); });
        EXPECT_NE(std::string::npos, err.find(std::string(cs.want) + " " + Hex(p))) << err;
    }
    kmem_cache_stats st;
    ASSERT_EQ(0, kmem_cache_get_stats(c, &st));
    EXPECT_EQ(2u, st.invalid_frees);
    kfree(keep);
    kmem_cache_destroy(c);
}

TEST_F(MisuseTest, InvalidFreeReportsNameTheBlockThePointerIsIn) {
    char *small = static_cast<char *>(kmalloc(100, 0));
    char *large = static_cast<char *>(kmalloc(100000, 0));
    char *huge = static_cast<char *>(kmalloc(5u << 20, 0));
    int on_stack = 0;
    std::string err = Report([&] { kfree(small + 8); });
    EXPECT_NE(std::string::npos,
              err.find("kfree: invalid free (not the start of an object): " + Hex(small + 8) +
                       ", 8 bytes into small object " + Hex(small) + " of cache kmalloc-"))
        << err;
    err = Report([&] { kfree(large + 4096); });
    EXPECT_NE(std::string::npos,
              err.find("kfree: invalid free of " + Hex(large + 4096) +
                       " (interior pointer: 4096 bytes into large block " + Hex(large)))
        << err;
    err = Report([&] { kmalloc_free_op(huge + 4096, "free", nullptr); });
    EXPECT_NE(std::string::npos,
              err.find("free: invalid free of " + Hex(huge + 4096) +
                       " (interior pointer: 4096 bytes into huge mapping " + Hex(huge)))
        << err;
    err = Report([&] { kfree(&on_stack); });
    EXPECT_NE(std::string::npos, err.find("kfree: invalid free of " + Hex(&on_stack) +
                                          " (pointer not from slabcache)"))
        << err;
    kfree(small);
    kfree(large);
    kfree(huge);
}

// ---------------------------------------------------------------- usable size

// glibc's tst-malloc-usable: every byte malloc_usable_size admits may be written.  Plus what
// it never asks: an interior pointer or a freed block has no usable size, and saying one
// (the size of the block around it) invites a write past the block.
TEST_F(MisuseTest, UsableSizeIsWritableAndOnlyForAllocatedBlocks) {
    for (size_t size : {1ul, 7ul, 24ul, 100ul, 1000ul, 4097ul, 32768ul, 40000ul, 300000ul}) {
        char *p = static_cast<char *>(kmalloc(size, 0));
        ASSERT_NE(nullptr, p);
        size_t usable = ksize(p);
        EXPECT_GE(usable, size);
        memset(p, 0xa5, usable);
        EXPECT_EQ(usable, kmalloc_usable_size_op(p, "malloc_usable_size"));
        kfree(p);
    }
    EXPECT_EQ(0, slabcache_validate());
    char *p = static_cast<char *>(kmalloc(100, 0));
    size_t got = 1;
    std::string err = Report([&] { got = kmalloc_usable_size_op(p + 8, "malloc_usable_size"); });
    EXPECT_EQ(0u, got);
    EXPECT_NE(std::string::npos,
              err.find("malloc_usable_size: not an allocated block (not the start of an "
                       "object): " + Hex(p + 8) + ", 8 bytes into small object " + Hex(p)))
        << err;
    err = Report([&] { got = ksize(p + 8); });
    EXPECT_EQ(0u, got);
    void *q = kmalloc(100, 0);  // p is not on top of the magazine when freed
    kfree(p);
    kfree(q);
    err = Report([&] { got = ksize(p); });
    EXPECT_EQ(0u, got);
    EXPECT_NE(std::string::npos,
              err.find("ksize: " + Hex(p) + " is a small object of cache kmalloc-"))
        << err;
    EXPECT_NE(std::string::npos, err.find("that is already free")) << err;
    char *large = static_cast<char *>(kmalloc(100000, 0));
    err = Report([&] { got = ksize(large + 4096); });
    EXPECT_EQ(0u, got);
    EXPECT_NE(std::string::npos, err.find("interior pointer: 4096 bytes into large block")) << err;
    kfree(large);
}

// ---------------------------------------------------------------- krealloc with KM_ZERO

// Leave old data in the slots and blocks the next allocations will get.
void DirtyFreeBlocks(size_t size, int n) {
    std::vector<void *> v;
    for (int i = 0; i < n; i++) {
        void *p = kmalloc(size, 0);
        memset(p, 0xee, size);
        v.push_back(p);
    }
    for (void *p : v) kfree(p);
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

// The kernel's sequence (SLUB kunit test_krealloc_redzone_zeroing), with slabcache's classes:
// shrink 48 -> 40, grow to 56, grow to 112, every step with KM_ZERO.
TEST_F(MisuseTest, KreallocWithKmZeroZeroesWhatTheKernelZeroes) {
    for (size_t s : {48, 56, 64, 112, 128}) DirtyFreeBlocks(s, 200);
    auto *p = static_cast<unsigned char *>(kmalloc(48, 0));
    memset(p, 0xff, 48);
    p = static_cast<unsigned char *>(krealloc(p, 40, KM_ZERO));
    size_t at = 0;
    EXPECT_TRUE(AllAre(p, 0, 40, 0xff, &at)) << at;
    p = static_cast<unsigned char *>(krealloc(p, 56, KM_ZERO));
    EXPECT_TRUE(AllAre(p, 0, 40, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(p, 40, 56, 0, &at)) << "byte " << at << " is " << (int)p[at];
    memset(p, 0xff, 56);
    p = static_cast<unsigned char *>(krealloc(p, 112, KM_ZERO));
    EXPECT_TRUE(AllAre(p, 0, 56, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(p, 56, 112, 0, &at)) << "byte " << at << " is " << (int)p[at];
    kfree(p);
}

// Large blocks, in place: kzalloc zeroes the whole block (as the kernel's), so growing it in
// place with KM_ZERO reads zero; shrinking with KM_ZERO zeroes the spare, so growing again
// does too.
TEST_F(MisuseTest, KreallocWithKmZeroInPlaceOnLargeBlocks) {
    DirtyFreeBlocks(60000, 8);
    auto *p = static_cast<unsigned char *>(kzalloc(40000, 0));
    memset(p, 0xff, 40000);
    auto *q = static_cast<unsigned char *>(krealloc(p, 60000, KM_ZERO));
    EXPECT_EQ(p, q) << "grew in place in its 64 KiB block";
    size_t at = 0;
    EXPECT_TRUE(AllAre(q, 0, 40000, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(q, 40000, 60000, 0, &at)) << "byte " << at << " is " << (int)q[at];
    kfree(q);
    DirtyFreeBlocks(250000, 4);
    p = static_cast<unsigned char *>(kzalloc(200000, 0));
    memset(p, 0xff, 200000);
    p = static_cast<unsigned char *>(krealloc(p, 100000, KM_ZERO));
    p = static_cast<unsigned char *>(krealloc(p, 120000, KM_ZERO));
    EXPECT_TRUE(AllAre(p, 0, 100000, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(p, 100000, 120000, 0, &at)) << "byte " << at << " is " << (int)p[at];
    p = static_cast<unsigned char *>(krealloc(p, 300000, KM_ZERO));
    EXPECT_TRUE(AllAre(p, 0, 100000, 0xff, &at)) << at;
    EXPECT_TRUE(AllAre(p, 100000, 300000, 0, &at)) << "byte " << at << " is " << (int)p[at];
    kfree(p);
}

}  // namespace
