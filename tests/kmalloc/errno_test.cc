/* SPDX-License-Identifier: MIT */
// tests/kmalloc/errno_test.cc - every free keeps errno (POSIX 2024; glibc since 2.33).
//
// Strategy: the heap's OS seam (heap_set_os_ops) is replaced, before the first extent, by one
// that forwards to the real calls but can be told to fail munmap, madvise and sbrk with
// ENOMEM, as munmap does for real at vm.max_map_count (glibc's tst-free-errno provokes that
// one with thousands of mappings; tests/malloc/malloc_errno_test.cc does it for real through
// the preloaded library).  Each test sets errno to a value no call produces, frees through
// one path that makes a system call (a huge block's munmap, the purge budget's madvise, a
// slab released with its extent, the depot giving magazines back, a misuse report whose
// write(2) fails), checks that the failing call was really made, and that errno is intact
// afterwards; then that the allocator is still sound (slabcache_validate).  The idea is
// glibc's tst-free-errno; the code is ours.
#include <gtest/gtest.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "buddy/buddy.h"
#include "heap/heap.h"
#include "slab/kmalloc.h"
#include "slab/slab.h"
extern "C" {
#include "slab/kmalloc_internal.h"
}

namespace {

constexpr int kMarker = 1789;  // glibc's test uses it too: no system call returns it

std::atomic<bool> fail_munmap{false}, fail_madvise{false}, fail_sbrk_down{false};
std::atomic<int> failed_calls{0};

int FakeMunmap(void *addr, size_t len) {
    if (fail_munmap.load()) {
        failed_calls++;
        errno = ENOMEM;
        return -1;
    }
    return heap_os_real.munmap(addr, len);
}

int FakeMadvise(void *addr, size_t len, int advice) {
    if (fail_madvise.load()) {
        failed_calls++;
        errno = ENOMEM;
        return -1;
    }
    return heap_os_real.madvise(addr, len, advice);
}

void *FakeSbrk(intptr_t increment) {
    if (increment < 0 && fail_sbrk_down.load()) {
        failed_calls++;
        errno = ENOMEM;
        return reinterpret_cast<void *>(-1);
    }
    return heap_os_real.sbrk(increment);
}

void *FakeMmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return heap_os_real.mmap(addr, len, prot, flags, fd, off);
}

const heap_os_ops kFakeOps = {FakeSbrk, FakeMmap, FakeMunmap, FakeMadvise};

// Before the first extent exists (static initialisation: the test's own malloc is glibc's).
const bool kInstalled = heap_set_os_ops(&kFakeOps) == 0;

// gcc may assume errno unchanged across a call it knows (free); read it through a call.
__attribute__((noinline)) int Errno() {
    asm volatile("" ::: "memory");
    return errno;
}

class FreeErrnoTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(kInstalled); }
    void TearDown() override {
        fail_munmap = fail_madvise = fail_sbrk_down = false;
        EXPECT_EQ(0, slabcache_validate());
    }
    // Fail every call that gives memory back, and count them from here.
    void FailReturns() {
        failed_calls = 0;
        fail_munmap = fail_madvise = fail_sbrk_down = true;
    }
};

TEST_F(FreeErrnoTest, FreeOfNullKeepsErrno) {
    errno = kMarker;
    kfree(nullptr);
    EXPECT_EQ(kMarker, Errno());
    kmem_cache *c = kmem_cache_create("errno-null", 64, 0, 0, nullptr);
    ASSERT_NE(nullptr, c);
    errno = kMarker;
    kmem_cache_free(c, nullptr);
    EXPECT_EQ(kMarker, Errno());
    kmem_cache_destroy(c);
}

// glibc's case: a block served by its own mapping, whose munmap fails.  Decay time 0: a freed
// huge block is unmapped at once (with a decay time it stays parked for reuse).
TEST_F(FreeErrnoTest, HugeBlockWhoseMunmapFails) {
    const uint32_t old_decay = buddy_set_decay_ms(0);
    for (bool fail : {false, true}) {
        void *p = kmalloc(48u << 20, 0);
        ASSERT_NE(nullptr, p);
        memset(p, 1, 4096);
        if (fail) FailReturns();
        errno = kMarker;
        kfree(p);
        EXPECT_EQ(kMarker, Errno()) << (fail ? "munmap failed" : "munmap succeeded");
        if (fail) {
            EXPECT_GT(failed_calls.load(), 0) << "the free made no failing call";
        }
        fail_munmap = fail_madvise = fail_sbrk_down = false;
    }
    buddy_set_decay_ms(old_decay);
}

// krealloc that moves a huge block frees the old one: errno is kept through that free too.
TEST_F(FreeErrnoTest, ReallocThatFreesAHugeBlock) {
    char *p = static_cast<char *>(kmalloc(20u << 20, 0));
    ASSERT_NE(nullptr, p);
    p[0] = 42;
    FailReturns();
    errno = kMarker;
    char *q = static_cast<char *>(krealloc(p, 40u << 20, 0));
    ASSERT_NE(nullptr, q);
    EXPECT_EQ(kMarker, Errno());
    EXPECT_EQ(42, q[0]);
    EXPECT_GT(failed_calls.load(), 0);
    errno = kMarker;
    EXPECT_EQ(nullptr, krealloc(q, 0, 0));  // realloc(p, 0) is a free
    EXPECT_EQ(kMarker, Errno());
}

// Large buddy blocks: with decay time 0, each free's decay pass purges the blocks freed
// before it with madvise.
TEST_F(FreeErrnoTest, LargeBlocksWhoseFreePurges) {
    const uint32_t old_decay = buddy_set_decay_ms(0);
    std::vector<void *> blocks;
    for (int i = 0; i < 32; i++) {
        void *p = kmalloc(256u << 10, 0);
        ASSERT_NE(nullptr, p);
        memset(p, 1, 256u << 10);
        blocks.push_back(p);
    }
    FailReturns();
    for (void *p : blocks) {
        errno = kMarker;
        kfree(p);
        ASSERT_EQ(kMarker, Errno());
    }
    buddy_set_decay_ms(old_decay);
    EXPECT_GT(failed_calls.load(), 0) << "no purge was attempted";
}

// A slab released when its last object is freed takes its extent with it (one spare extent
// kept), and the heap trims or purges it.
class SlabReleaseErrnoTest : public FreeErrnoTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SlabReleaseErrnoTest, ObjectFreesThatReleaseSlabsAndExtents) {
    const bool magazines = GetParam();
    size_t old_spares = buddy_set_spare_extents(1);
    kmem_cache_args args = {};
    args.max_empty_slabs = 1;
    args.magazine_size = 1;  // with magazines: the depot fills at once, then the slabs
    // 1 MiB objects: three per 4 MiB slab, a slab per extent.
    kmem_cache *c = kmem_cache_create_args(magazines ? "errno-mag" : "errno-nomag", 1u << 20,
                                           &args, magazines ? 0 : SLAB_NO_MAGAZINE);
    ASSERT_NE(nullptr, c);
    std::vector<void *> objs;
    for (int i = 0; i < 36; i++) {
        void *p = kmem_cache_alloc(c, 0);
        ASSERT_NE(nullptr, p);
        memset(p, 1, 4096);
        objs.push_back(p);
    }
    FailReturns();
    for (void *p : objs) {
        errno = kMarker;
        kmem_cache_free(c, p);
        ASSERT_EQ(kMarker, Errno());
    }
    errno = kMarker;
    kmem_cache_shrink(c);  // not a free: no promise, but the cache must still be sound
    EXPECT_GT(failed_calls.load(), 0) << "no extent was given back";
    fail_munmap = fail_madvise = fail_sbrk_down = false;
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
    buddy_set_spare_extents(old_spares);
}

INSTANTIATE_TEST_SUITE_P(Magazines, SlabReleaseErrnoTest, ::testing::Bool());

// Misuse reports are written with write(2); with stderr closed it fails (EBADF), and the
// refused free must still leave errno as it was.
TEST_F(FreeErrnoTest, MisuseReportsWhoseWriteFails) {
    setenv("SLABCACHE_ON_ERROR", "report", 1);
    report_reset_options();
    kmem_cache *c = kmem_cache_create("errno-report", 64, 0, 0, nullptr);
    ASSERT_NE(nullptr, c);
    void *o = kmem_cache_alloc(c, 0);
    void *k = kmalloc(100, 0);
    void *big = kmalloc(100000, 0);
    void *huge = kmalloc(8u << 20, 0);
    int on_stack = 0;
    kmem_cache_free(c, o);
    kfree(k);
    kfree(big);
    kfree(huge);
    int saved_stderr = dup(2);
    ASSERT_GE(saved_stderr, 0);
    close(2);
    struct {
        const char *what;
        void (*free_it)(kmem_cache *, void *);
        void *p;
    } cases[] = {
        {"kmem_cache_free double", [](kmem_cache *cc, void *p) { kmem_cache_free(cc, p); }, o},
        {"kfree double (small)", [](kmem_cache *, void *p) { kfree(p); }, k},
        {"kfree double (large)", [](kmem_cache *, void *p) { kfree(p); }, big},
        {"kfree double (huge)", [](kmem_cache *, void *p) { kfree(p); }, huge},
        {"kfree foreign", [](kmem_cache *, void *p) { kfree(p); }, &on_stack},
        {"kfree interior", [](kmem_cache *, void *p) { kfree(p); },
         static_cast<char *>(kmalloc(100, 0)) + 8},
        {"krealloc of freed", [](kmem_cache *, void *p) { krealloc(p, 200, 0); }, k},
        {"kmem_cache_free_bulk double",
         [](kmem_cache *cc, void *p) { kmem_cache_free_bulk(cc, 1, &p); }, o},
    };
    int bad[sizeof cases / sizeof cases[0]];
    size_t n = 0;
    for (auto &cs : cases) {
        errno = kMarker;
        cs.free_it(c, cs.p);
        bad[n++] = Errno();
    }
    dup2(saved_stderr, 2);
    close(saved_stderr);
    for (size_t i = 0; i < n; i++) EXPECT_EQ(kMarker, bad[i]) << cases[i].what;
    kfree(static_cast<char *>(cases[5].p) - 8);
    kmem_cache_destroy(c);
    unsetenv("SLABCACHE_ON_ERROR");
    report_reset_options();
}

}  // namespace
