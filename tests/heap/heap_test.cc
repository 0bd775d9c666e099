/* SPDX-License-Identifier: MIT */
// tests/heap/heap_test.cc - white-box tests of the heap layer (heap/).
//
// Strategy: almost every test runs the heap over a fake OS table (FakeOs): a fake program
// break over a 1 GiB arena we mapped ourselves, so a test can fail the Nth sbrk, move the
// break behind the heap's back before the Nth sbrk call (between or during the heap's
// calls), and see exactly which OS calls were made.  mmap/munmap/madvise forward to the
// real OS (counted, and mmap can be failed).  heap_validate() runs after every step; the
// fixture resets the heap before and after each test.  One test uses the real sbrk with
// glibc malloc moving the break in between (skipped under sanitizers, whose allocators do
// not use the break).  The stress test is deterministic (seeded) and asserts invariants,
// not timings.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "heap/heap.h"
#include "heap/heap_internal.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEAP_TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HEAP_TEST_SANITIZER 1
#endif
#endif
#ifndef HEAP_TEST_SANITIZER
#define HEAP_TEST_SANITIZER 0
#endif

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kExt = HEAP_EXTENT_SIZE;
constexpr size_t kPage = HEAP_PAGE_SIZE;
constexpr size_t kArenaSize = size_t{1} << 30;
// The fake break starts this far past a 4 MiB boundary: not aligned, not even page aligned.
constexpr size_t kBreakOffset = kMiB + 100;
constexpr size_t kFirstPad = kExt - kBreakOffset;

// ------------------------------------------------------------------ the fake OS

struct FakeOs {
    uintptr_t lo = 0, hi = 0;  // the arena
    uintptr_t brk = 0;
    long sbrk_calls = 0;  // every sbrk call, sbrk(0) included
    long sbrk_grows = 0;  // sbrk calls with a positive increment (failed ones too)
    long fail_sbrk_from = 0;            // every sbrk call with this index or later fails
    std::set<long> fail_sbrk_at;        // these sbrk calls fail
    std::map<long, intptr_t> move_at;   // before sbrk call N, someone moves the break
    std::atomic<long> mmap_calls{0}, munmap_calls{0}, madvise_calls{0};
    long fail_mmap_from = 0;
    bool fail_madvise = false;
    std::atomic<long> mremap_calls{0};
    bool fail_mremap = false;
};
FakeOs g_fake;

void *FakeSbrk(intptr_t inc) {
    long n = ++g_fake.sbrk_calls;
    if (inc > 0)
        g_fake.sbrk_grows++;
    auto mv = g_fake.move_at.find(n);
    if (mv != g_fake.move_at.end())
        g_fake.brk += mv->second;
    if ((g_fake.fail_sbrk_from && n >= g_fake.fail_sbrk_from) || g_fake.fail_sbrk_at.count(n)) {
        errno = ENOMEM;
        return reinterpret_cast<void *>(-1);
    }
    uintptr_t old = g_fake.brk;
    if ((inc > 0 && static_cast<uintptr_t>(inc) > g_fake.hi - old) ||
        (inc < 0 && static_cast<uintptr_t>(-inc) > old - g_fake.lo)) {
        errno = ENOMEM;
        return reinterpret_cast<void *>(-1);
    }
    g_fake.brk = old + static_cast<uintptr_t>(inc);
    return reinterpret_cast<void *>(old);
}

void *FakeMmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    long n = ++g_fake.mmap_calls;
    if (g_fake.fail_mmap_from && n >= g_fake.fail_mmap_from) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

int FakeMunmap(void *addr, size_t len) {
    g_fake.munmap_calls++;
    return munmap(addr, len);
}

int FakeMadvise(void *addr, size_t len, int advice) {
    g_fake.madvise_calls++;
    if (g_fake.fail_madvise) {
        errno = EAGAIN;
        return -1;
    }
    return madvise(addr, len, advice);
}

void *FakeMremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr) {
    g_fake.mremap_calls++;
    if (g_fake.fail_mremap) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return mremap(old_addr, old_len, new_len, flags, new_addr);
}

const heap_os_ops kFakeOps = {FakeSbrk, FakeMmap, FakeMunmap, FakeMadvise, FakeMremap};
// The same without mremap: the heap must refuse resizes (ENOSYS), callers then copy.
const heap_os_ops kFakeOpsNoMremap = {FakeSbrk, FakeMmap, FakeMunmap, FakeMadvise, nullptr};

uintptr_t ArenaBase() {
    static uintptr_t base = [] {
        size_t len = kArenaSize + kExt;
        void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            abort();
        return (reinterpret_cast<uintptr_t>(p) + kExt - 1) & ~(uintptr_t{kExt} - 1);
    }();
    return base;
}

void FakeReset() {
    uintptr_t base = ArenaBase();
    madvise(reinterpret_cast<void *>(base), kArenaSize, MADV_DONTNEED);
    g_fake.lo = base;
    g_fake.hi = base + kArenaSize;
    g_fake.brk = base + kBreakOffset;
    g_fake.sbrk_calls = g_fake.sbrk_grows = 0;
    g_fake.fail_sbrk_from = 0;
    g_fake.fail_sbrk_at.clear();
    g_fake.move_at.clear();
    g_fake.mmap_calls = g_fake.munmap_calls = g_fake.madvise_calls = 0;
    g_fake.fail_mmap_from = 0;
    g_fake.fail_madvise = false;
    g_fake.mremap_calls = 0;
    g_fake.fail_mremap = false;
}

heap_stats Stats() {
    heap_stats s;
    heap_get_stats(&s);
    return s;
}

uintptr_t RegionStart(const heap_extent *e) { return e->base - e->lead; }
uintptr_t RegionEnd(const heap_extent *e) { return RegionStart(e) + e->map_size; }

void Fill(const heap_extent *e, unsigned char v) {
    memset(reinterpret_cast<void *>(e->base), v, e->size);
}
bool Holds(const heap_extent *e, unsigned char v) {
    const unsigned char *p = reinterpret_cast<const unsigned char *>(e->base);
    for (size_t i = 0; i < e->size; i += kPage / 4)
        if (p[i] != v)
            return false;
    return p[e->size - 1] == v;
}

#define EXPECT_VALID() EXPECT_EQ(0, heap_validate())

class HeapTest : public ::testing::Test {
  protected:
    void SetUp() override {
        heap_reset_for_tests();
        FakeReset();
        ASSERT_EQ(0, heap_set_os_ops(&kFakeOps));
        heap_options o;
        heap_get_options(&o);
        o.limit = 0;
        o.use_sbrk = true;
        o.mmap_fallback = true;
        o.keep_free = HEAP_DEFAULT_KEEP_FREE;
        ASSERT_EQ(0, heap_set_options(&o));
        EXPECT_VALID();
    }
    void TearDown() override {
        heap_reset_for_tests();
        EXPECT_VALID();
    }
    static void SetOption(size_t limit, bool fallback, size_t keep_free) {
        heap_options o;
        heap_get_options(&o);
        o.limit = limit;
        o.mmap_fallback = fallback;
        o.keep_free = keep_free;
        ASSERT_EQ(0, heap_set_options(&o));
    }
    static heap_extent *Alloc(size_t size, bool dedicated = false) {
        return heap_extent_alloc(size, HEAP_KIND_SPLIT, 7, nullptr, dedicated);
    }
};

// ------------------------------------------------------------------ basics

TEST_F(HeapTest, FirstExtentIsPaddedToAlignment) {
    heap_extent *e = Alloc(kExt);
    ASSERT_NE(nullptr, e);
    EXPECT_VALID();
    EXPECT_EQ(0u, e->base % kExt);
    EXPECT_EQ(kExt, e->size);
    EXPECT_EQ(HEAP_SRC_SBRK, e->source);
    EXPECT_EQ(kFirstPad, e->lead);
    EXPECT_EQ(kFirstPad + kExt, e->map_size);
    EXPECT_EQ(g_fake.lo + kBreakOffset, RegionStart(e));
    EXPECT_EQ(g_fake.brk, e->base + e->size);
    EXPECT_EQ(HEAP_EXTENT_MAGIC, e->magic);
    EXPECT_EQ(HEAP_KIND_SPLIT, e->kind);
    EXPECT_EQ(7, e->tag);
    heap_stats s = Stats();
    EXPECT_EQ(kFirstPad + kExt, s.sbrk_bytes);
    EXPECT_EQ(1u, s.extents);
    EXPECT_EQ(0u, s.foreign_moves);
    EXPECT_EQ(0, heap_extent_free(e));
    EXPECT_VALID();
}

TEST_F(HeapTest, ManyExtentsAllocLookupFree) {
    std::vector<heap_extent *> v;
    const size_t sizes[] = {1, kExt, kExt + 1, 3 * kExt, 2 * kExt - kPage};
    for (int i = 0; i < 40; i++) {
        heap_extent *e = Alloc(sizes[i % 5]);
        ASSERT_NE(nullptr, e);
        EXPECT_VALID();
        EXPECT_EQ(0u, e->base % kExt);
        EXPECT_EQ(0u, e->size % kExt);
        EXPECT_GE(e->size, sizes[i % 5]);
        if (!v.empty()) {  // contiguous growth: no padding after the first extent
            EXPECT_EQ(v.back()->base + v.back()->size, e->base);
        }
        Fill(e, static_cast<unsigned char>(i));
        v.push_back(e);
    }
    for (size_t i = 0; i < v.size(); i++) {
        heap_extent *e = v[i];
        EXPECT_EQ(e, heap_extent_lookup(reinterpret_cast<void *>(e->base)));
        EXPECT_EQ(e, heap_extent_lookup(reinterpret_cast<void *>(e->base + e->size / 2)));
        EXPECT_EQ(e, heap_extent_lookup(reinterpret_cast<void *>(e->base + e->size - 1)));
        EXPECT_TRUE(Holds(e, static_cast<unsigned char>(i)));
    }
    EXPECT_EQ(40u, Stats().extents);
    // Free in a scrambled order; every other extent keeps its bytes.
    for (size_t k = 0; k < v.size(); k++) {
        size_t i = (k * 17) % v.size();
        ASSERT_EQ(0, heap_extent_free(v[i]));
        v[i] = nullptr;
        EXPECT_VALID();
        for (size_t j = 0; j < v.size(); j++)
            if (v[j]) {
                ASSERT_TRUE(Holds(v[j], static_cast<unsigned char>(j)));
            }
    }
    heap_stats s = Stats();
    EXPECT_EQ(0u, s.extents);
    // The last extent freed was at the top: everything trimmed down by cascade.
    EXPECT_EQ(0u, s.sbrk_bytes);
    EXPECT_EQ(0u, s.free_extents);
    EXPECT_EQ(g_fake.lo + kBreakOffset, g_fake.brk);
}

TEST_F(HeapTest, LookupOfInteriorEdgeAndForeignAddresses) {
    heap_extent *a = Alloc(kExt);
    heap_extent *b = Alloc(2 * kExt);
    ASSERT_TRUE(a && b);
    int on_stack = 0;
    EXPECT_EQ(nullptr, heap_extent_lookup(nullptr));
    EXPECT_EQ(nullptr, heap_extent_lookup(&on_stack));
    EXPECT_EQ(nullptr, heap_extent_lookup(&g_fake));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(UINTPTR_MAX)));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(uintptr_t{1} << HEAP_ADDR_BITS)));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(a->base - 1)));  // padding
    EXPECT_EQ(a, heap_extent_lookup(reinterpret_cast<void *>(a->base)));
    EXPECT_EQ(a, heap_extent_lookup(reinterpret_cast<void *>(a->base + kExt - 1)));
    EXPECT_EQ(b, heap_extent_lookup(reinterpret_cast<void *>(a->base + kExt)));
    EXPECT_EQ(b, heap_extent_lookup(reinterpret_cast<void *>(b->base + kExt + 5)));  // 2nd granule
    EXPECT_EQ(b, heap_extent_lookup(reinterpret_cast<void *>(b->base + b->size - 1)));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(b->base + b->size)));
    uintptr_t b_base = b->base;
    ASSERT_EQ(0, heap_extent_free(b));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(b_base)));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(b_base + kExt)));
    EXPECT_EQ(a, heap_extent_lookup(reinterpret_cast<void *>(a->base + 1)));
    EXPECT_VALID();
}

// ------------------------------------------------------------------ foreign moves

TEST_F(HeapTest, ForeignMoveBetweenCallsIsDetectedOnce) {
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    Fill(a, 0xa1);
    g_fake.brk += 3 * kPage + 7;  // someone else's sbrk
    uintptr_t theirs = g_fake.brk;
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_VALID();
    EXPECT_EQ(0u, b->base % kExt);
    EXPECT_GE(RegionStart(b), theirs);  // nothing of theirs used
    EXPECT_EQ(1u, Stats().foreign_moves);
    EXPECT_TRUE(Holds(a, 0xa1));
    // Free b (our top again: trimmed), then grow: the break reads `theirs` again, which
    // is the same foreign move, not a new one.
    ASSERT_EQ(0, heap_extent_free(b));
    EXPECT_EQ(theirs, g_fake.brk);
    heap_extent *c = Alloc(kExt);
    ASSERT_NE(nullptr, c);
    EXPECT_EQ(1u, Stats().foreign_moves);
    EXPECT_VALID();
}

TEST_F(HeapTest, ForeignMoveDuringGrowthKeepsAlignedPartAndGivesBackTail) {
    long next = g_fake.sbrk_calls;
    // Call next+1 is sbrk(0); before next+2 (the increment) someone moves the break a page.
    g_fake.move_at[next + 2] = static_cast<intptr_t>(kPage);
    heap_extent *e = Alloc(kExt);
    ASSERT_NE(nullptr, e);
    EXPECT_VALID();
    heap_stats s = Stats();
    EXPECT_EQ(1u, s.foreign_moves);
    EXPECT_EQ(0u, e->base % kExt);
    EXPECT_EQ(g_fake.lo + kExt, e->base);  // the padding still held an aligned extent
    EXPECT_EQ(g_fake.lo + kBreakOffset + kPage, RegionStart(e));
    EXPECT_EQ(1u, s.trims);                        // the unused tail went back
    EXPECT_EQ(e->base + e->size, g_fake.brk);      // ...so the break ends at the extent
    EXPECT_EQ(RegionEnd(e), g_fake.brk);
    EXPECT_EQ(0u, s.stranded_bytes);
    Fill(e, 1);
}

TEST_F(HeapTest, ForeignMoveDuringGrowthRetriesWhenRegionIsUseless) {
    heap_extent *a = Alloc(kExt);  // leaves the break 4 MiB aligned: no padding next time
    ASSERT_NE(nullptr, a);
    uintptr_t a_end = a->base + a->size;
    long next = g_fake.sbrk_calls;
    g_fake.move_at[next + 2] = static_cast<intptr_t>(kPage);
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_VALID();
    heap_stats s = Stats();
    EXPECT_EQ(1u, s.foreign_moves);
    EXPECT_EQ(1u, s.trims);  // the useless region was given back
    EXPECT_EQ(0u, s.stranded_bytes);
    EXPECT_EQ(a_end + kExt, b->base);  // retry padded past the foreign page
    EXPECT_EQ(a_end + kPage, RegionStart(b));
    EXPECT_EQ(RegionEnd(b), g_fake.brk);
}

TEST_F(HeapTest, ForeignMoveTwiceStrandsRegionAndStillSucceeds) {
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    long next = g_fake.sbrk_calls;
    g_fake.move_at[next + 2] = static_cast<intptr_t>(kPage);  // during the increment
    g_fake.move_at[next + 3] = static_cast<intptr_t>(kPage);  // before the give-back check
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_VALID();
    heap_stats s = Stats();
    EXPECT_EQ(kExt, s.stranded_bytes);  // neither usable nor returnable
    EXPECT_EQ(0u, s.trims);
    EXPECT_GE(s.foreign_moves, 2u);
    EXPECT_EQ(0u, b->base % kExt);
    EXPECT_GE(RegionStart(b), a->base + a->size + 2 * kPage + kExt);
    EXPECT_EQ(RegionEnd(b), g_fake.brk);
}

// ------------------------------------------------------------------ sbrk failure

TEST_F(HeapTest, SbrkFailureFallsBackToAlignedMmap) {
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    Fill(a, 0x5a);
    uintptr_t brk_before = g_fake.brk;
    g_fake.fail_sbrk_at.insert(g_fake.sbrk_calls + 2);  // the increment fails
    heap_extent *b = Alloc(2 * kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_VALID();
    EXPECT_EQ(HEAP_SRC_MMAP, b->source);
    EXPECT_FALSE(b->dedicated);
    EXPECT_EQ(0u, b->base % kExt);
    EXPECT_EQ(2 * kExt, b->size);
    EXPECT_EQ(b->size, b->map_size);  // misaligned head and tail were unmapped
    EXPECT_EQ(brk_before, g_fake.brk);
    heap_stats s = Stats();
    EXPECT_EQ(1u, s.sbrk_failures);
    EXPECT_EQ(2 * kExt, s.mmap_bytes);
    Fill(b, 0x77);
    EXPECT_TRUE(Holds(a, 0x5a));
    EXPECT_EQ(b, heap_extent_lookup(reinterpret_cast<void *>(b->base + b->size - 1)));
    // keep_free 0: a mapped extent goes straight back to the OS.
    SetOption(0, true, 0);
    long unmaps = g_fake.munmap_calls;
    ASSERT_EQ(0, heap_extent_free(b));
    EXPECT_EQ(unmaps + 1, g_fake.munmap_calls);
    EXPECT_EQ(0u, Stats().mmap_bytes);
    EXPECT_VALID();
}

TEST_F(HeapTest, MappedExtentIsKeptForReuseWithinKeepFree) {
    g_fake.fail_sbrk_from = 1;  // the break never moves
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    EXPECT_EQ(HEAP_SRC_MMAP, a->source);
    uintptr_t base = a->base;
    Fill(a, 3);
    ASSERT_EQ(0, heap_extent_free(a));
    EXPECT_VALID();
    EXPECT_EQ(1u, Stats().free_extents);
    long maps = g_fake.mmap_calls;
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_EQ(base, b->base);
    EXPECT_EQ(maps, g_fake.mmap_calls);
    EXPECT_TRUE(Holds(b, 0));  // purged: reads back as zero
    EXPECT_VALID();
}

TEST_F(HeapTest, SbrkFailureWithoutFallbackFailsCleanly) {
    SetOption(0, false, HEAP_DEFAULT_KEEP_FREE);
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    Fill(a, 0xc3);
    uintptr_t brk_before = g_fake.brk;
    heap_stats before = Stats();
    g_fake.fail_sbrk_from = g_fake.sbrk_calls + 2;
    errno = 0;
    EXPECT_EQ(nullptr, Alloc(kExt));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(0, g_fake.mmap_calls.load());
    EXPECT_EQ(brk_before, g_fake.brk);
    EXPECT_TRUE(Holds(a, 0xc3));
    heap_stats s = Stats();
    EXPECT_EQ(1u, s.extents);
    EXPECT_EQ(before.sbrk_bytes, s.sbrk_bytes);
    EXPECT_EQ(1u, s.sbrk_failures);
    EXPECT_EQ(a, heap_extent_lookup(reinterpret_cast<void *>(a->base)));
    EXPECT_VALID();
    // The break that cannot move: sbrk(0) itself fails.
    g_fake.fail_sbrk_from = g_fake.sbrk_calls + 1;
    EXPECT_EQ(nullptr, Alloc(kExt));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_VALID();
}

TEST_F(HeapTest, BreakNearTheEndOfTheAddressSpaceIsNeverWrapped) {
    // A break 4 MiB below the top of the address space: align_up(brk) + 8 MiB wraps.
    // The heap must not call sbrk with that increment, and falls back to mmap.
    g_fake.brk = UINTPTR_MAX - kExt;
    g_fake.hi = UINTPTR_MAX;
    heap_extent *e = Alloc(2 * kExt);
    ASSERT_NE(nullptr, e);
    EXPECT_EQ(HEAP_SRC_MMAP, e->source);
    EXPECT_EQ(0, g_fake.sbrk_grows);
    EXPECT_EQ(0u, Stats().sbrk_failures);  // never asked the OS
    EXPECT_EQ(UINTPTR_MAX - kExt, g_fake.brk);
    EXPECT_VALID();
    // An unaligned break in the last 4 MiB: aligning it up wraps.
    g_fake.brk = UINTPTR_MAX - kPage;
    SetOption(0, false, HEAP_DEFAULT_KEEP_FREE);
    errno = 0;
    EXPECT_EQ(nullptr, Alloc(kExt));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(0, g_fake.sbrk_grows);
    EXPECT_EQ(1u, Stats().extents);
    EXPECT_VALID();
}

TEST_F(HeapTest, MmapFailureAfterSbrkFailureIsEnomem) {
    g_fake.fail_sbrk_from = 1;
    g_fake.fail_mmap_from = 1;
    errno = 0;
    EXPECT_EQ(nullptr, Alloc(kExt));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(nullptr, Alloc(kExt, true));
    heap_stats s = Stats();
    EXPECT_EQ(2u, s.mmap_failures);
    EXPECT_EQ(0u, s.extents);
    EXPECT_VALID();
}

// ------------------------------------------------------------------ trim and reuse

TEST_F(HeapTest, TrimAtTopGivesTheBreakBack) {
    heap_extent *a = Alloc(kExt);
    heap_extent *b = Alloc(2 * kExt);
    ASSERT_TRUE(a && b);
    uintptr_t a_end = RegionEnd(a);
    EXPECT_EQ(RegionEnd(b), g_fake.brk);
    ASSERT_EQ(0, heap_extent_free(b));
    EXPECT_VALID();
    EXPECT_EQ(a_end, g_fake.brk);
    heap_stats s = Stats();
    EXPECT_EQ(1u, s.trims);
    EXPECT_EQ(0u, s.free_extents);
    EXPECT_EQ(2 * kExt, s.returned_bytes);
    ASSERT_EQ(0, heap_extent_free(a));
    EXPECT_VALID();
    EXPECT_EQ(g_fake.lo + kBreakOffset, g_fake.brk);  // the padding went back too
    EXPECT_EQ(2u, Stats().trims);
    EXPECT_EQ(0u, Stats().sbrk_bytes);
}

TEST_F(HeapTest, NoTrimWhenTheBreakMovedThenReuseWithoutGrowing) {
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    uintptr_t base = a->base;
    Fill(a, 0xee);
    g_fake.brk += kPage;  // someone else now owns the top
    uintptr_t foreign_brk = g_fake.brk;
    long madv = g_fake.madvise_calls;
    ASSERT_EQ(0, heap_extent_free(a));
    EXPECT_VALID();
    heap_stats s = Stats();
    EXPECT_EQ(0u, s.trims);
    EXPECT_EQ(1u, s.foreign_moves);
    EXPECT_EQ(1u, s.free_extents);
    EXPECT_EQ(foreign_brk, g_fake.brk);  // their page untouched
    EXPECT_EQ(madv + 1, g_fake.madvise_calls);
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(base)));
    long grows = g_fake.sbrk_grows;
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_EQ(base, b->base);  // the purged extent, not new break
    EXPECT_EQ(grows, g_fake.sbrk_grows);
    EXPECT_TRUE(Holds(b, 0));
    EXPECT_EQ(0u, Stats().free_extents);
    EXPECT_VALID();
}

// A new extent reads as zero (fresh or purged), which the buddy layer passes on to calloc;
// one whose purge failed when it was freed may hold old data and says so (`dirty`).
TEST_F(HeapTest, ReusedExtentIsDirtyOnlyWhenItsPurgeFailed) {
    heap_extent *a = Alloc(kExt);
    heap_extent *pin = Alloc(kExt);  // keeps a from being the top (trimmed, not kept)
    ASSERT_TRUE(a && pin);
    EXPECT_FALSE(a->dirty) << "fresh break memory";
    uintptr_t base = a->base;
    Fill(a, 0xee);
    ASSERT_EQ(0, heap_extent_free(a));  // purged, kept
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    EXPECT_EQ(base, b->base);
    EXPECT_FALSE(b->dirty) << "purged";
    EXPECT_TRUE(Holds(b, 0));
    Fill(b, 0xee);
    g_fake.fail_madvise = true;
    ASSERT_EQ(0, heap_extent_free(b));  // the purge fails: kept with its data
    g_fake.fail_madvise = false;
    EXPECT_VALID();
    heap_extent *c = Alloc(kExt);
    ASSERT_NE(nullptr, c);
    EXPECT_EQ(base, c->base);
    EXPECT_TRUE(c->dirty) << "its purge failed: it may hold old data";
    EXPECT_TRUE(Holds(c, 0xee));
    ASSERT_EQ(0, heap_extent_free(c));
    ASSERT_EQ(0, heap_extent_free(pin));
    EXPECT_VALID();
}

TEST_F(HeapTest, TrimCascadesThroughFreeExtentsThatBecomeTheTop) {
    heap_extent *a = Alloc(kExt);
    heap_extent *b = Alloc(kExt);
    heap_extent *c = Alloc(kExt);
    ASSERT_TRUE(a && b && c);
    uintptr_t b_start = RegionStart(b);
    ASSERT_EQ(0, heap_extent_free(b));  // middle: purged, kept
    EXPECT_VALID();
    EXPECT_EQ(1u, Stats().free_extents);
    EXPECT_EQ(0u, Stats().trims);
    ASSERT_EQ(0, heap_extent_free(c));  // top: trimmed, then b is the top: trimmed
    EXPECT_VALID();
    EXPECT_EQ(2u, Stats().trims);
    EXPECT_EQ(0u, Stats().free_extents);
    EXPECT_EQ(b_start, g_fake.brk);
    EXPECT_EQ(RegionEnd(a), g_fake.brk);
}

TEST_F(HeapTest, FirstFitSplitsALargerPurgedExtent) {
    heap_extent *big = Alloc(3 * kExt);
    heap_extent *guard = Alloc(kExt);
    ASSERT_TRUE(big && guard);
    uintptr_t base = big->base;
    Fill(big, 0x11);
    ASSERT_EQ(0, heap_extent_free(big));
    EXPECT_VALID();
    long grows = g_fake.sbrk_grows;
    heap_extent *x = Alloc(kExt);
    EXPECT_VALID();
    heap_extent *y = Alloc(2 * kExt);
    EXPECT_VALID();
    ASSERT_TRUE(x && y);
    EXPECT_EQ(base, x->base);
    EXPECT_EQ(base + kExt, y->base);
    EXPECT_EQ(grows, g_fake.sbrk_grows);
    EXPECT_TRUE(Holds(x, 0));
    EXPECT_TRUE(Holds(y, 0));
    EXPECT_EQ(0u, Stats().free_extents);
    // A request larger than every free extent grows the break.
    heap_extent *z = Alloc(4 * kExt);
    ASSERT_NE(nullptr, z);
    EXPECT_EQ(grows + 1, g_fake.sbrk_grows);
    EXPECT_VALID();
}

// ------------------------------------------------------------------ limit

TEST_F(HeapTest, LimitRefusesWithoutCallingTheOs) {
    SetOption(kFirstPad + 2 * kExt, true, HEAP_DEFAULT_KEEP_FREE);
    heap_extent *a = Alloc(kExt);
    heap_extent *b = Alloc(kExt);
    ASSERT_TRUE(a && b);
    long grows = g_fake.sbrk_grows;
    long maps = g_fake.mmap_calls;
    errno = 0;
    EXPECT_EQ(nullptr, Alloc(kExt));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(nullptr, Alloc(kPage, true));
    EXPECT_EQ(ENOMEM, errno);
    EXPECT_EQ(grows, g_fake.sbrk_grows);
    EXPECT_EQ(maps, g_fake.mmap_calls);
    heap_stats s = Stats();
    EXPECT_EQ(2u, s.limit_failures);  // the sbrk extent (no fallback tried), the dedicated one
    EXPECT_EQ(2u, s.extents);
    EXPECT_VALID();
    // Memory given back makes room again.
    ASSERT_EQ(0, heap_extent_free(b));
    heap_extent *c = Alloc(kExt);
    ASSERT_NE(nullptr, c);
    EXPECT_VALID();
}

// ------------------------------------------------------------------ dedicated

TEST_F(HeapTest, DedicatedExtentIsExactMappingUnmappedWhole) {
    long sbrks = g_fake.sbrk_calls;
    heap_extent *e = Alloc(5 * kMiB + 1, true);
    ASSERT_NE(nullptr, e);
    EXPECT_VALID();
    EXPECT_EQ(sbrks, g_fake.sbrk_calls);
    EXPECT_TRUE(e->dedicated);
    EXPECT_EQ(HEAP_SRC_MMAP, e->source);
    EXPECT_EQ(0u, e->base % kExt);
    EXPECT_EQ(5 * kMiB + kPage, e->size);
    EXPECT_EQ(e->size, e->map_size);
    EXPECT_EQ(e->size, Stats().mmap_bytes);
    EXPECT_EQ(e, heap_extent_lookup(reinterpret_cast<void *>(e->base + kExt + 1)));
    EXPECT_EQ(e, heap_extent_lookup(reinterpret_cast<void *>(e->base + e->size - 1)));
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(e->base + e->size)));
    Fill(e, 9);
    long unmaps = g_fake.munmap_calls;
    ASSERT_EQ(0, heap_extent_free(e));
    EXPECT_EQ(unmaps + 1, g_fake.munmap_calls);
    heap_stats s = Stats();
    EXPECT_EQ(0u, s.mmap_bytes);
    EXPECT_EQ(0u, s.free_extents);  // never kept
    EXPECT_VALID();
}

// A parked dedicated extent stays mapped with its pages, is no live extent (lookup and a
// second free see nothing), and serves the next dedicated request without a mapping: the
// smallest that fits, its part past the 4 MiB boundary above the request parked on its own;
// none large enough: the largest, grown.  Release by stamp unmaps only the older ones.
TEST_F(HeapTest, ParkedDedicatedExtentsAreReusedSplitAndReleasedByStamp) {
    heap_extent *e = Alloc(13 * kMiB, true);
    ASSERT_NE(nullptr, e);
    Fill(e, 0x5e);
    uintptr_t base = e->base;
    long maps = g_fake.mmap_calls, unmaps = g_fake.munmap_calls;
    ASSERT_EQ(0, heap_extent_park(e, 7, 64 * kMiB));
    EXPECT_EQ(unmaps, g_fake.munmap_calls) << "parked, not unmapped";
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(base)));
    EXPECT_EQ(1u, Stats().parked_extents);
    EXPECT_EQ(13 * kMiB, Stats().mmap_bytes);
    EXPECT_VALID();
    // 5 MiB: the 13 MiB extent, cut at 8 MiB; [8, 13) MiB stays parked.
    heap_extent *a = Alloc(5 * kMiB, true);
    ASSERT_NE(nullptr, a);
    EXPECT_EQ(maps, g_fake.mmap_calls) << "no new mapping";
    EXPECT_EQ(base, a->base);
    EXPECT_EQ(5 * kMiB, a->size);
    EXPECT_TRUE(a->dirty) << "old data: calloc must zero it";
    EXPECT_EQ(0x5e, *reinterpret_cast<unsigned char *>(a->base + kPage)) << "pages kept";
    EXPECT_EQ(1u, Stats().parked_extents);
    EXPECT_EQ(1u, Stats().parked_reuses);
    EXPECT_VALID();
    // 7 MiB: nothing parked holds it; the 5 MiB tail part grows to 7.
    heap_extent *b = Alloc(7 * kMiB, true);
    ASSERT_NE(nullptr, b);
    EXPECT_EQ(maps, g_fake.mmap_calls - (b->base == base + 8 * kMiB ? 0 : 1));
    EXPECT_EQ(7 * kMiB, b->size);
    EXPECT_EQ(0u, Stats().parked_extents);
    EXPECT_VALID();
    // Grown in place, b is still the piece of the first mapping right after a's region:
    // parked, the two are merged again (the newer stamp wins).
    const bool one_mapping = b->base == base + 8 * kMiB;
    ASSERT_EQ(0, heap_extent_park(a, 3, 64 * kMiB));
    EXPECT_EQ(-1, heap_extent_free(a));  // a second free of a parked extent is refused
    EXPECT_EQ(EINVAL, errno);
    ASSERT_EQ(0, heap_extent_park(b, 9, 64 * kMiB));
    EXPECT_EQ(one_mapping ? 1u : 2u, Stats().parked_extents);
    EXPECT_EQ(one_mapping ? 1u : 0u, Stats().parked_merges);
    EXPECT_VALID();
    if (one_mapping)
        EXPECT_EQ(0u, heap_parked_release(4));  // stamp 9 for the whole
    else
        EXPECT_GT(heap_parked_release(4), 0u);  // stamp 3 goes, stamp 9 stays
    EXPECT_EQ(1u, Stats().parked_extents);
    EXPECT_VALID();
    // The cap: a park past it unmaps the oldest; an extent above it is unmapped at once.
    heap_extent *c = Alloc(9 * kMiB, true);
    ASSERT_NE(nullptr, c);
    unmaps = g_fake.munmap_calls;
    ASSERT_EQ(0, heap_extent_park(c, 10, 8 * kMiB));
    EXPECT_GT(g_fake.munmap_calls, unmaps);
    // Merged, the parked [0, 15) MiB served c from its first 12 MiB and keeps [12, 15).
    EXPECT_EQ(one_mapping ? 1u : 0u, Stats().parked_extents);
    EXPECT_EQ(one_mapping ? 3 * kMiB : 0u, Stats().mmap_bytes);
    EXPECT_VALID();
}

// The pieces of one parked mapping come together again: a 5 MiB request cuts a parked
// 13 MiB extent at 8 MiB (the rest parked on its own); parked again, the 5 MiB extent is
// merged with that rest, so a 12 MiB request is served from the whole, resident, with no
// system call.  (Without the merge: two parked extents, and the 12 MiB request grows one.)
TEST_F(HeapTest, ParkedPiecesOfOneMappingAreMergedAgain) {
    heap_extent *e = Alloc(13 * kMiB, true);
    ASSERT_NE(nullptr, e);
    Fill(e, 0x6a);
    const uintptr_t base = e->base;
    ASSERT_EQ(0, heap_extent_park(e, 1, 64 * kMiB));
    heap_extent *a = Alloc(5 * kMiB, true);
    ASSERT_NE(nullptr, a);
    ASSERT_EQ(base, a->base);
    ASSERT_EQ(1u, Stats().parked_extents) << "the part past 8 MiB";
    ASSERT_EQ(0, heap_extent_park(a, 2, 64 * kMiB));
    EXPECT_EQ(1u, Stats().parked_extents);
    EXPECT_EQ(1u, Stats().parked_merges);
    EXPECT_VALID();
    const long maps = g_fake.mmap_calls, remaps = g_fake.mremap_calls,
               unmaps = g_fake.munmap_calls;
    heap_extent *b = Alloc(12 * kMiB, true);
    ASSERT_NE(nullptr, b);
    EXPECT_EQ(base, b->base);
    EXPECT_EQ(maps, g_fake.mmap_calls);
    EXPECT_EQ(remaps, g_fake.mremap_calls);
    EXPECT_EQ(unmaps, g_fake.munmap_calls);
    EXPECT_EQ(0x6a, *reinterpret_cast<unsigned char *>(b->base + 10 * kMiB)) << "pages kept";
    EXPECT_EQ(1u, Stats().parked_extents) << "[12, 13) MiB";
    EXPECT_VALID();
    ASSERT_EQ(0, heap_extent_free(b));
    EXPECT_EQ(1 * kMiB, Stats().mmap_bytes);
    EXPECT_GT(heap_parked_release(UINT64_MAX), 0u);
    EXPECT_EQ(0u, Stats().mmap_bytes);
    EXPECT_VALID();
}

// ------------------------------------------------------------------ resizing dedicated extents

// Grow in place (the address space after the mapping is free), grow by moving (a mapping in
// the way), shrink: the descriptor stays, its contents stay, the radix map and the byte
// counters follow, and the validator agrees after each step.
TEST_F(HeapTest, DedicatedExtentResizesInPlaceOrMovesItsPages) {
    heap_extent *e = Alloc(5 * kMiB, true);
    ASSERT_NE(nullptr, e);
    Fill(e, 0x3c);
    uintptr_t base = e->base;
    // In place when the address space after it is free (usual: the mapping was over-sized
    // and trimmed), else moved; either way the same descriptor.
    bool room = true;
    for (size_t off = 0; off < kMiB; off += kPage) {
        unsigned char v;
        if (mincore(reinterpret_cast<void *>(base + e->size + off), kPage, &v) == 0 ||
            errno != ENOMEM)
            room = false;  // something is mapped there
    }
    void *g = heap_extent_resize(e, 6 * kMiB);
    ASSERT_NE(nullptr, g);
    if (room) {
        EXPECT_EQ(reinterpret_cast<void *>(base), g) << "grown in place";
        EXPECT_EQ(0u, Stats().resize_moves);
    }
    EXPECT_EQ(6 * kMiB, e->size);
    EXPECT_EQ(e->size, Stats().mmap_bytes);
    EXPECT_VALID();
    // A fence after the block: the next growth must move.
    uintptr_t end = e->base + e->size;
    void *fence = mmap(reinterpret_cast<void *>(end), kPage, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (fence == MAP_FAILED) {  // something else is mapped there already: blocked as well
        ASSERT_EQ(EEXIST, errno);
        fence = nullptr;
    }
    uintptr_t before = e->base;
    long remaps = g_fake.mremap_calls;
    size_t moves = Stats().resize_moves;
    void *m = heap_extent_resize(e, 17 * kMiB + 1);
    ASSERT_NE(nullptr, m);
    if (fence)
        munmap(fence, kPage);
    EXPECT_NE(before, e->base);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m), e->base);
    EXPECT_EQ(0u, e->base % kExt);
    EXPECT_EQ(17 * kMiB + kPage, e->size);
    EXPECT_EQ(moves + 1, Stats().resize_moves);
    EXPECT_EQ(remaps + 2, g_fake.mremap_calls) << "in place tried, then the move";
    const unsigned char *c = reinterpret_cast<const unsigned char *>(e->base);
    for (size_t i = 0; i < 5 * kMiB; i += 999)
        ASSERT_EQ(0x3c, c[i]) << i;
    EXPECT_EQ(0, c[e->size - 1]);
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(before)));
    EXPECT_EQ(e, heap_extent_lookup(reinterpret_cast<void *>(e->base + 16 * kMiB)));
    EXPECT_EQ(e->size, Stats().mmap_bytes);
    EXPECT_VALID();
    // Shrink: the tail is unmapped and leaves the map.
    ASSERT_EQ(reinterpret_cast<void *>(e->base), heap_extent_resize(e, 5 * kMiB));
    EXPECT_EQ(5 * kMiB, e->size);
    EXPECT_EQ(nullptr, heap_extent_lookup(reinterpret_cast<void *>(e->base + 9 * kMiB)));
    EXPECT_EQ(e->size, Stats().mmap_bytes);
    EXPECT_VALID();
    ASSERT_EQ(0, heap_extent_free(e));
    EXPECT_EQ(0u, Stats().mmap_bytes);
}

// Refusals change nothing: not dedicated, not live, no mremap, the limit, the OS.
TEST_F(HeapTest, ResizeRefusalsChangeNothing) {
    heap_extent *shared = Alloc(kExt);
    heap_extent *e = Alloc(5 * kMiB, true);
    ASSERT_TRUE(shared && e);
    Fill(e, 5);
    errno = 0;
    EXPECT_EQ(nullptr, heap_extent_resize(shared, 2 * kExt));
    EXPECT_EQ(EINVAL, errno) << "an extent that is not a dedicated mapping";
    errno = 0;
    EXPECT_EQ(nullptr, heap_extent_resize(e, 0));
    EXPECT_EQ(EINVAL, errno);
    SetOption(Stats().mmap_bytes + Stats().sbrk_bytes + kMiB, true, HEAP_DEFAULT_KEEP_FREE);
    errno = 0;
    EXPECT_EQ(nullptr, heap_extent_resize(e, 8 * kMiB));
    EXPECT_EQ(ENOMEM, errno) << "past the limit";
    SetOption(0, true, HEAP_DEFAULT_KEEP_FREE);
    g_fake.fail_mremap = true;
    g_fake.fail_mmap_from = g_fake.mmap_calls + 1;
    errno = 0;
    EXPECT_EQ(nullptr, heap_extent_resize(e, 64 * kMiB));
    EXPECT_EQ(ENOMEM, errno) << "the OS refused";
    g_fake.fail_mremap = false;
    g_fake.fail_mmap_from = 0;
    EXPECT_EQ(5 * kMiB, e->size);
    EXPECT_TRUE(Holds(e, 5));
    EXPECT_VALID();
    ASSERT_EQ(0, heap_extent_free(e));
    errno = 0;
    EXPECT_EQ(nullptr, heap_extent_resize(e, 8 * kMiB));
    EXPECT_EQ(EINVAL, errno) << "freed";
    ASSERT_EQ(0, heap_extent_free(shared));
    heap_reset_for_tests();
    FakeReset();
    ASSERT_EQ(0, heap_set_os_ops(&kFakeOpsNoMremap));
    e = Alloc(5 * kMiB, true);
    ASSERT_NE(nullptr, e);
    errno = 0;
    EXPECT_EQ(nullptr, heap_extent_resize(e, 8 * kMiB));
    EXPECT_EQ(ENOSYS, errno);
    EXPECT_EQ(5 * kMiB, e->size);
    EXPECT_VALID();
}

// Free extents the heap keeps come back to the OS before an allocation fails, and on
// request (heap_release_free).
TEST_F(HeapTest, KeptFreeExtentsAreGivenBackBeforeFailing) {
    SetOption(0, true, 64 * kMiB);
    g_fake.fail_sbrk_from = 1;  // mapped extents only
    std::vector<heap_extent *> v;
    for (int i = 0; i < 4; i++) {
        v.push_back(Alloc(kExt));
        ASSERT_NE(nullptr, v.back());
    }
    for (heap_extent *e : v)
        ASSERT_EQ(0, heap_extent_free(e));
    EXPECT_EQ(4u, Stats().free_extents) << "kept: within keep_free";
    // A limit that the kept extents fill: a dedicated mapping fits only once they go.
    SetOption(5 * kExt, true, 64 * kMiB);
    heap_extent *d = Alloc(2 * kExt, true);
    ASSERT_NE(nullptr, d);
    EXPECT_EQ(0u, Stats().free_extents);
    EXPECT_VALID();
    ASSERT_EQ(0, heap_extent_free(d));
    v.clear();
    SetOption(0, true, 64 * kMiB);
    for (int i = 0; i < 3; i++)
        v.push_back(Alloc(kExt));
    for (heap_extent *e : v)
        ASSERT_EQ(0, heap_extent_free(e));
    EXPECT_EQ(3u, Stats().free_extents);
    EXPECT_EQ(3 * kExt, heap_release_free());
    EXPECT_EQ(0u, Stats().free_extents);
    EXPECT_EQ(0u, Stats().mmap_bytes);
    EXPECT_EQ(0u, heap_release_free());
    EXPECT_VALID();
}

// The OS calls are counted, whatever table is installed.
TEST_F(HeapTest, SystemCallsAreCounted) {
    heap_stats s0 = Stats();
    heap_extent *e = Alloc(kExt);
    ASSERT_NE(nullptr, e);
    ASSERT_EQ(0, heap_purge(reinterpret_cast<void *>(e->base), kPage));
    heap_stats s1 = Stats();
    EXPECT_EQ(g_fake.sbrk_calls, static_cast<long>(s1.sbrk_calls - s0.sbrk_calls));
    EXPECT_EQ(1u, s1.madvise_calls - s0.madvise_calls);
    EXPECT_EQ(g_fake.mmap_calls.load(), static_cast<long>(s1.mmap_calls - s0.mmap_calls));
    ASSERT_EQ(0, heap_extent_free(e));
}

// ------------------------------------------------------------------ bad input

TEST_F(HeapTest, OverflowingSizesFailWithoutCallingTheOs) {
    struct Case {
        size_t size;
        bool dedicated;
        int err;
    } cases[] = {
        {0, false, EINVAL},
        {0, true, EINVAL},
        {SIZE_MAX, false, EINVAL},
        {SIZE_MAX, true, EINVAL},
        {SIZE_MAX - 4095, false, EINVAL},  // rounding to 4 MiB overflows
        {SIZE_MAX - 4095, true, ENOMEM},   // page aligned already, but absurd
        {SIZE_MAX / 2 + 1, false, ENOMEM},
        {size_t{1} << HEAP_ADDR_BITS, true, ENOMEM},
    };
    for (const Case &c : cases) {
        errno = 0;
        EXPECT_EQ(nullptr, Alloc(c.size, c.dedicated)) << c.size;
        EXPECT_EQ(c.err, errno) << c.size << " dedicated " << c.dedicated;
    }
    EXPECT_EQ(0, g_fake.sbrk_calls);
    EXPECT_EQ(0, g_fake.mmap_calls.load());
    EXPECT_EQ(0u, Stats().limit_failures);
    EXPECT_VALID();
}

TEST_F(HeapTest, InvalidFreeIsRefusedAndChangesNothing) {
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    heap_extent copy = *a;
    errno = 0;
    EXPECT_EQ(-1, heap_extent_free(nullptr));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(-1, heap_extent_free(&copy));  // right contents, not a descriptor
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(1u, Stats().extents);
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    ASSERT_EQ(0, heap_extent_free(a));  // not the top: kept free
    heap_stats before = Stats();
    errno = 0;
    EXPECT_EQ(-1, heap_extent_free(a));  // double free
    EXPECT_EQ(EINVAL, errno);
    heap_stats after = Stats();
    EXPECT_EQ(before.extents, after.extents);
    EXPECT_EQ(before.free_extents, after.free_extents);
    EXPECT_EQ(b, heap_extent_lookup(reinterpret_cast<void *>(b->base)));
    EXPECT_VALID();
}

TEST_F(HeapTest, OsOpsCannotChangeWhileExtentsAreHeld) {
    heap_os_ops partial = kFakeOps;
    partial.madvise = nullptr;
    errno = 0;
    EXPECT_EQ(-1, heap_set_os_ops(&partial));
    EXPECT_EQ(EINVAL, errno);
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    EXPECT_EQ(-1, heap_set_os_ops(nullptr));
    EXPECT_EQ(EBUSY, errno);
    ASSERT_EQ(0, heap_extent_free(a));  // trimmed: nothing held any more
    EXPECT_EQ(0, heap_set_os_ops(&kFakeOps));
}

TEST_F(HeapTest, PurgeZeroesPagesInsideALiveExtentOnly) {
    heap_extent *a = Alloc(kExt);
    ASSERT_NE(nullptr, a);
    Fill(a, 0x42);
    char *p = reinterpret_cast<char *>(a->base);
    size_t returned = Stats().returned_bytes;
    ASSERT_EQ(0, heap_purge(p + kPage, 2 * kPage));
    EXPECT_EQ(0x42, p[kPage - 1]);
    EXPECT_EQ(0, p[kPage]);
    EXPECT_EQ(0, p[3 * kPage - 1]);
    EXPECT_EQ(0x42, p[3 * kPage]);
    EXPECT_EQ(returned + 2 * kPage, Stats().returned_bytes);
    int local = 0;
    errno = 0;
    EXPECT_EQ(-1, heap_purge(p + 1, kPage));  // misaligned
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(-1, heap_purge(p, kPage + 1));
    EXPECT_EQ(-1, heap_purge(p + kExt - kPage, 2 * kPage));  // runs past the end
    EXPECT_EQ(-1, heap_purge(&local, kPage));                // not ours
    EXPECT_EQ(-1, heap_purge(p, 0));
    EXPECT_EQ(0x42, p[kExt - 1]);
    EXPECT_VALID();
}

TEST_F(HeapTest, ValidateCatchesBrokenInvariants) {
    heap_extent *a = Alloc(2 * kExt);
    ASSERT_NE(nullptr, a);
    EXPECT_VALID();
    uint32_t magic = a->magic;
    a->magic = 0;
    EXPECT_EQ(-1, heap_validate());
    a->magic = magic;
    EXPECT_VALID();
    // A radix entry that no longer points at its extent.
    uintptr_t key = (a->base + kExt) >> HEAP_EXTENT_SHIFT;
    heap_extent **leaf = heap_radix_root[key >> HEAP_RADIX_L2_BITS];
    ASSERT_NE(nullptr, leaf);
    heap_extent **slot = &leaf[key & (HEAP_RADIX_L2_COUNT - 1)];
    ASSERT_EQ(a, *slot);
    *slot = nullptr;
    EXPECT_EQ(-1, heap_validate());
    *slot = a;
    EXPECT_VALID();
    // A stray entry for memory no extent holds.
    heap_extent **stray = &leaf[(key + 8) & (HEAP_RADIX_L2_COUNT - 1)];
    if (*stray == nullptr) {
        *stray = a;
        EXPECT_EQ(-1, heap_validate());
        *stray = nullptr;
    }
    size_t size = a->size;
    a->size = size + 1;  // not a page multiple
    EXPECT_EQ(-1, heap_validate());
    a->size = size;
    EXPECT_VALID();
    // Two regions that overlap; the report is one line naming the invariant.
    heap_extent *b = Alloc(kExt);
    ASSERT_NE(nullptr, b);
    a->map_size += kPage;
    testing::internal::CaptureStderr();
    EXPECT_EQ(-1, heap_validate());
    std::string report = testing::internal::GetCapturedStderr();
    a->map_size -= kPage;
    EXPECT_EQ(0u, report.find("slabcache: heap: extents overlap")) << report;
    EXPECT_EQ(report.size() - 1, report.find('\n')) << report;
    EXPECT_VALID();
}

// ------------------------------------------------------------------ options

TEST(HeapOptionsTest, ParseSize) {
    size_t v = 0;
    EXPECT_EQ(0, heap_options_parse_size("0", &v));
    EXPECT_EQ(0u, v);
    EXPECT_EQ(0, heap_options_parse_size("123", &v));
    EXPECT_EQ(123u, v);
    EXPECT_EQ(0, heap_options_parse_size("64k", &v));
    EXPECT_EQ(64u << 10, v);
    EXPECT_EQ(0, heap_options_parse_size("16M", &v));
    EXPECT_EQ(16u << 20, v);
    EXPECT_EQ(0, heap_options_parse_size("2g", &v));
    EXPECT_EQ(size_t{2} << 30, v);
    v = 7;
    const char *bad[] = {"", "k", "-1", "12x", "1kb", " 1", "1 ", "99999999999999999999",
                         "17179869184g"};
    for (const char *s : bad) {
        EXPECT_EQ(-1, heap_options_parse_size(s, &v)) << s;
        EXPECT_EQ(7u, v) << s;
    }
    EXPECT_EQ(-1, heap_options_parse_size(nullptr, &v));
    bool b = false;
    EXPECT_EQ(0, heap_options_parse_bool("1", &b));
    EXPECT_TRUE(b);
    EXPECT_EQ(0, heap_options_parse_bool("0", &b));
    EXPECT_FALSE(b);
    EXPECT_EQ(0, heap_options_parse_bool("Yes", &b));  // tests/options has every word
    EXPECT_TRUE(b);
    EXPECT_EQ(0, heap_options_parse_bool("OFF", &b));
    EXPECT_FALSE(b);
    EXPECT_EQ(-1, heap_options_parse_bool("10", &b));
    EXPECT_EQ(-1, heap_options_parse_bool("", &b));
}

TEST(HeapOptionsTest, EnvironmentIsReadAtReset) {
    setenv("SLABCACHE_HEAP_LIMIT", "64m", 1);
    setenv("SLABCACHE_SBRK", "0", 1);
    setenv("SLABCACHE_MMAP_FALLBACK", "bogus", 1);  // reported, ignored
    setenv("SLABCACHE_HEAP_KEEP_FREE", "8M", 1);
    heap_reset_for_tests();
    heap_options o;
    heap_get_options(&o);
    EXPECT_EQ(64 * kMiB, o.limit);
    EXPECT_FALSE(o.use_sbrk);
    EXPECT_TRUE(o.mmap_fallback);
    EXPECT_EQ(8 * kMiB, o.keep_free);
    // use_sbrk off: extents are mapped, the break is never touched.
    FakeReset();
    ASSERT_EQ(0, heap_set_os_ops(&kFakeOps));
    heap_extent *e = heap_extent_alloc(kExt, HEAP_KIND_SPLIT, 1, nullptr, false);
    ASSERT_NE(nullptr, e);
    EXPECT_EQ(HEAP_SRC_MMAP, e->source);
    EXPECT_EQ(0, g_fake.sbrk_calls);
    EXPECT_EQ(0, heap_validate());
    unsetenv("SLABCACHE_HEAP_LIMIT");
    unsetenv("SLABCACHE_SBRK");
    unsetenv("SLABCACHE_MMAP_FALLBACK");
    unsetenv("SLABCACHE_HEAP_KEEP_FREE");
    heap_reset_for_tests();
    heap_get_options(&o);
    EXPECT_EQ(0u, o.limit);
    EXPECT_TRUE(o.use_sbrk);
    EXPECT_EQ(size_t{HEAP_DEFAULT_KEEP_FREE}, o.keep_free);
    errno = 0;
    EXPECT_EQ(-1, heap_set_options(nullptr));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(0, heap_validate());
}

// ------------------------------------------------------------------ metadata memory

TEST(HeapMetaTest, AlignedZeroedAndRecycled) {
    const size_t sizes[] = {1, 56, 64, 65, 100, 1000, 4096, 65536, 65537, 300000};
    std::vector<std::pair<void *, size_t>> blocks;
    for (int round = 0; round < 3; round++)
        for (size_t s : sizes) {
            unsigned char *p = static_cast<unsigned char *>(heap_meta_alloc(s));
            ASSERT_NE(nullptr, p) << s;
            EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % 64) << s;
            for (size_t i = 0; i < s; i++)
                ASSERT_EQ(0, p[i]) << s;
            memset(p, 0xab, s);
            blocks.push_back({p, s});
        }
    // Distinct blocks never overlap.
    for (size_t i = 0; i < blocks.size(); i++)
        for (size_t j = i + 1; j < blocks.size(); j++) {
            uintptr_t a = reinterpret_cast<uintptr_t>(blocks[i].first);
            uintptr_t b = reinterpret_cast<uintptr_t>(blocks[j].first);
            EXPECT_TRUE(a + blocks[i].second <= b || b + blocks[j].second <= a);
        }
    EXPECT_GT(heap_meta_mapped_bytes(), 0u);
    EXPECT_EQ(0, heap_validate());
    // A freed small block comes back for the same size, zeroed again.
    void *p = heap_meta_alloc(200);
    ASSERT_NE(nullptr, p);
    memset(p, 0xcd, 200);
    heap_meta_free(p, 200);
    EXPECT_EQ(0, heap_validate());
    unsigned char *q = static_cast<unsigned char *>(heap_meta_alloc(256));  // same class
    EXPECT_EQ(p, q);
    for (size_t i = 0; i < 256; i++)
        ASSERT_EQ(0, q[i]);
    heap_meta_free(q, 256);
    // Classes are a quarter of a power of two apart above 256 bytes: 528 bytes (a magazine
    // of 64 pointers) share the 640-byte class, and 641 bytes do not.
    void *m = heap_meta_alloc(528);
    ASSERT_NE(nullptr, m);
    memset(m, 0xee, 528);
    heap_meta_free(m, 528);
    unsigned char *m2 = static_cast<unsigned char *>(heap_meta_alloc(640));
    EXPECT_EQ(m, m2);
    for (size_t i = 0; i < 640; i++)
        ASSERT_EQ(0, m2[i]) << i;
    heap_meta_free(m2, 640);
    void *m3 = heap_meta_alloc(641);
    EXPECT_NE(m, m3);
    // A buddy extent's record (4,256 bytes) is in the 5,120-byte class, not 8 KiB.
    void *e = heap_meta_alloc(4256);
    ASSERT_NE(nullptr, e);
    heap_meta_free(e, 4256);
    void *e2 = heap_meta_alloc(5120);
    EXPECT_EQ(e, e2);
    heap_meta_free(e2, 5120);
    void *e3 = heap_meta_alloc(5121);
    EXPECT_NE(e, e3);
    heap_meta_free(e3, 5121);
    heap_meta_free(m3, 641);
    EXPECT_EQ(0, heap_validate());
    size_t mapped = heap_meta_mapped_bytes();
    for (auto &b : blocks)
        heap_meta_free(b.first, b.second);
    EXPECT_LT(heap_meta_mapped_bytes(), mapped);  // the large blocks were unmapped
    EXPECT_EQ(0, heap_validate());
    errno = 0;
    EXPECT_EQ(nullptr, heap_meta_alloc(0));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(nullptr, heap_meta_alloc(SIZE_MAX));
    EXPECT_EQ(ENOMEM, errno);
    heap_meta_free(nullptr, 10);  // no-op
}

// ------------------------------------------------------------------ threads

struct StressArgs {
    unsigned seed;
    std::atomic<uintptr_t> *published;  // one slot per thread: a base others look up
    size_t self;
    size_t threads;
    int failures;
    int races_seen;  // lookups that lost a race with a recycle (allowed, just counted)
};

unsigned NextRand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

void *StressThread(void *arg) {
    StressArgs *a = static_cast<StressArgs *>(arg);
    constexpr int kIters = 400;
    constexpr size_t kHeld = 6;
    heap_extent *held[kHeld] = {};
    for (int i = 0; i < kIters; i++) {
        unsigned r = NextRand(&a->seed);
        size_t slot = r % kHeld;
        if (held[slot]) {
            heap_extent *e = held[slot];
            unsigned char tag = static_cast<unsigned char>(a->self + 1);
            const unsigned char *p = reinterpret_cast<const unsigned char *>(e->base);
            if (p[0] != tag || p[e->size - 1] != tag ||
                heap_extent_lookup(p + e->size / 2) != e)
                a->failures++;
            a->published[a->self].store(0);
            if (heap_extent_free(e) != 0)
                a->failures++;
            held[slot] = nullptr;
        } else {
            bool dedicated = (r & 3) == 0;
            size_t size = dedicated ? (1 + r % 5) * kPage : (1 + r % 2) * kExt;
            heap_extent *e = heap_extent_alloc(size, HEAP_KIND_SPLIT, 1, nullptr, dedicated);
            if (!e) {
                a->failures++;
                continue;
            }
            unsigned char *p = reinterpret_cast<unsigned char *>(e->base);
            p[0] = p[e->size - 1] = static_cast<unsigned char>(a->self + 1);
            held[slot] = e;
            a->published[a->self].store(e->base);
        }
        // Look up what another thread published: either gone, or an extent holding it.
        uintptr_t other = a->published[(a->self + 1 + r) % a->threads].load();
        if (other) {
            heap_extent *o = heap_extent_lookup(reinterpret_cast<void *>(other));
            // A racing lookup may see a descriptor being recycled: read it like the
            // lookup does (atomically); the range it reports must still hold the address.
            if (o) {
                uintptr_t base = __atomic_load_n(&o->base, __ATOMIC_RELAXED);
                size_t size = __atomic_load_n(&o->size, __ATOMIC_RELAXED);
                if (other < base || other - base >= size)
                    a->races_seen++;
            }
        }
    }
    for (heap_extent *e : held)
        if (e && heap_extent_free(e) != 0)
            a->failures++;
    return nullptr;
}

TEST_F(HeapTest, FourThreadsAllocFreeAndLookup) {
    constexpr size_t kThreads = 4;
    std::atomic<uintptr_t> published[kThreads];
    for (auto &p : published)
        p.store(0);
    StressArgs args[kThreads];
    pthread_t tids[kThreads];
    for (size_t t = 0; t < kThreads; t++) {
        args[t] = StressArgs{static_cast<unsigned>(t * 7919 + 1), published, t, kThreads, 0, 0};
        ASSERT_EQ(0, pthread_create(&tids[t], nullptr, StressThread, &args[t]));
    }
    for (size_t t = 0; t < kThreads; t++)
        ASSERT_EQ(0, pthread_join(tids[t], nullptr));
    for (size_t t = 0; t < kThreads; t++)
        EXPECT_EQ(0, args[t].failures) << "thread " << t;
    EXPECT_VALID();
    heap_stats s = Stats();
    EXPECT_EQ(0u, s.extents);
    EXPECT_EQ(0u, s.foreign_moves);
}

// ------------------------------------------------------------------ the real break

TEST(HeapRealOsTest, GlibcMallocMovesTheBreakInBetween) {
    if (HEAP_TEST_SANITIZER)
        GTEST_SKIP() << "the sanitizer's allocator does not use the program break";
    heap_reset_for_tests();  // real OS ops
    heap_extent *a = heap_extent_alloc(kExt, HEAP_KIND_SPLIT, 1, nullptr, false);
    ASSERT_NE(nullptr, a);
    ASSERT_EQ(HEAP_SRC_SBRK, a->source);
    EXPECT_EQ(0, heap_validate());
    // Small blocks (below glibc's mmap threshold) come from the break: malloc until it
    // has moved (glibc may first use free space it already has).
    constexpr size_t kBlock = 32 * 1024;
    constexpr int kMaxBlocks = 4096;
    std::vector<void *> blocks;
    uintptr_t our_top = RegionEnd(a);
    while (reinterpret_cast<uintptr_t>(sbrk(0)) == our_top &&
           blocks.size() < size_t{kMaxBlocks}) {
        void *p = malloc(kBlock);
        ASSERT_NE(nullptr, p);
        memset(p, 0x3c, kBlock);
        blocks.push_back(p);
    }
    ASSERT_NE(our_top, reinterpret_cast<uintptr_t>(sbrk(0))) << "glibc malloc never used sbrk";
    heap_extent *b = heap_extent_alloc(2 * kExt, HEAP_KIND_SPLIT, 1, nullptr, false);
    ASSERT_NE(nullptr, b);
    EXPECT_EQ(0, heap_validate());
    EXPECT_EQ(0u, b->base % kExt);
    memset(reinterpret_cast<void *>(a->base), 0xa, a->size);
    memset(reinterpret_cast<void *>(b->base), 0xb, b->size);
    for (void *p : blocks) {  // glibc's blocks untouched, and none inside our extents
        EXPECT_EQ(0x3c, static_cast<unsigned char *>(p)[100]);
        EXPECT_EQ(nullptr, heap_extent_lookup(p));
    }
    for (int i = 0; i < 64; i++)
        blocks.push_back(malloc(kBlock));  // probably above b now
    EXPECT_GE(Stats().foreign_moves, 1u);
    ASSERT_EQ(0, heap_extent_free(a));
    EXPECT_EQ(0, heap_validate());
    ASSERT_EQ(0, heap_extent_free(b));
    EXPECT_EQ(0, heap_validate());
    for (void *p : blocks)
        free(p);
    // An extent freed right away is at the top and goes back with a negative sbrk.
    heap_extent *c = heap_extent_alloc(kExt, HEAP_KIND_SPLIT, 1, nullptr, false);
    ASSERT_NE(nullptr, c);
    size_t trims = Stats().trims;
    uintptr_t c_start = RegionStart(c);
    bool at_top = reinterpret_cast<uintptr_t>(sbrk(0)) == RegionEnd(c);
    ASSERT_EQ(0, heap_extent_free(c));
    if (at_top) {  // nothing ran between: no one can have moved the break
        EXPECT_EQ(trims + 1, Stats().trims);
        EXPECT_EQ(c_start, reinterpret_cast<uintptr_t>(sbrk(0)));
    }
    EXPECT_EQ(0, heap_validate());
    heap_reset_for_tests();
    EXPECT_EQ(0, heap_validate());
}

}  // namespace

// ------------------------------------------------------------------ the formatter (heap/fmt.h)

// heap_fmt, the printf subset every layer's reports, statistics and heap map use (no malloc):
// field widths, and a conversion it does not know is printed literally without taking an
// argument (so the arguments after it still line up).
TEST(HeapFmt, WidthsAndUnknownConversions) {
    char buf[128];
    // Formats the compiler would reject are built at run time.
    const std::string odd1 = "[%4zu|%3u|%5d|%-|%2s|%6p]", odd2 = "%zq %s %zx", odd3 = "%";
    EXPECT_EQ(30u, heap_fmt(buf, sizeof buf, odd1.c_str(), (size_t)42, 7u, -12, "abc",
                            (void *)0x1f));
    EXPECT_STREQ("[  42|  7|  -12|%-|abc|  0x1f]", buf);
    EXPECT_EQ(9u, heap_fmt(buf, sizeof buf, odd2.c_str(), "ok", (size_t)255));
    EXPECT_STREQ("%zq ok ff", buf);
    EXPECT_EQ(3u, heap_fmt(buf, 4, "%6u", 5u)) << "truncated to the buffer";
    EXPECT_STREQ("   ", buf);
    EXPECT_EQ(1u, heap_fmt(buf, sizeof buf, odd3.c_str()));
    EXPECT_STREQ("%", buf);
}

// Every conversion at its limits: NULL strings, INT_MIN, SIZE_MAX in decimal and hex, a NULL
// pointer, the percent sign; and a zero-length buffer, which is never written.
TEST(HeapFmt, EveryConversionAtItsLimits) {
    char buf[128];
    const char *null_str = nullptr;
    const std::string str_fmt = "%s"; // at run time: the compiler refuses a literal with NULL
    EXPECT_EQ(6u, heap_fmt(buf, sizeof buf, str_fmt.c_str(), null_str));
    EXPECT_STREQ("(null)", buf);
    heap_fmt(buf, sizeof buf, "%d %d %u", INT32_MIN, 0, 4294967295u);
    EXPECT_STREQ("-2147483648 0 4294967295", buf);
    heap_fmt(buf, sizeof buf, "%zu %zx", SIZE_MAX, SIZE_MAX);
    EXPECT_STREQ("18446744073709551615 ffffffffffffffff", buf);
    heap_fmt(buf, sizeof buf, "%p 100%%", (void *)nullptr);
    EXPECT_STREQ("0x0 100%", buf);
    char untouched[4] = {'x', 'y', 'z', '\0'};
    EXPECT_EQ(0u, heap_fmt(untouched, 0, "%s", "abc"));
    EXPECT_STREQ("xyz", untouched);
    EXPECT_EQ(0u, heap_fmt(buf, 1, "%s", "abc"));
    EXPECT_STREQ("", buf);
}

// heap_fmt_line: one line on stderr, "slabcache: " first and a newline last, cut to
// HEAP_FMT_LINE_MAX, errno unchanged.
TEST(HeapFmt, LineHasThePrefixANewlineAndKeepsErrno) {
    testing::internal::CaptureStderr();
    errno = ERANGE;
    heap_fmt_line("heap: %s %zu", "answer", (size_t)42);
    EXPECT_EQ(ERANGE, errno);
    EXPECT_EQ("slabcache: heap: answer 42\n", testing::internal::GetCapturedStderr());
    std::string longer(2 * HEAP_FMT_LINE_MAX, 'a');
    testing::internal::CaptureStderr();
    heap_fmt_line("%s", longer.c_str());
    std::string out = testing::internal::GetCapturedStderr();
    EXPECT_EQ(HEAP_FMT_LINE_MAX - 1, out.size());
    EXPECT_EQ(0u, out.find("slabcache: aaa"));
    EXPECT_EQ('\n', out.back());
}

// ------------------------------------------------------------------ the lock (heap/mutex.h)

// In debug builds a heap_mutex knows its owner: held by the locking thread only, and no longer
// after unlock.  Without the bookkeeping (NDEBUG) heap_mutex_held is always true.
TEST(HeapMutex, KnowsItsOwnerInDebugBuilds) {
    static struct heap_mutex m;
    heap_mutex_init(&m);
    if (!HEAP_MUTEX_DEBUG) {
        EXPECT_TRUE(heap_mutex_held(&m));
        heap_mutex_destroy(&m);
        GTEST_SKIP() << "NDEBUG: no owner bookkeeping";
    }
    EXPECT_FALSE(heap_mutex_held(&m));
    heap_mutex_lock(&m);
    EXPECT_TRUE(heap_mutex_held(&m));
    bool other_sees_held = true;
    pthread_t t;
    ASSERT_EQ(0, pthread_create(
                     &t, nullptr,
                     [](void *arg) -> void * {
                         *static_cast<bool *>(arg) = heap_mutex_held(&m);
                         return nullptr;
                     },
                     &other_sees_held));
    pthread_join(t, nullptr);
    EXPECT_FALSE(other_sees_held) << "another thread does not hold it";
    heap_mutex_unlock(&m);
    EXPECT_FALSE(heap_mutex_held(&m));
    heap_mutex_destroy(&m);
}

// A function named *_locked asserts its lock in debug builds: calling one without the HEAP
// lock aborts.
TEST(HeapMutex, LockedFunctionWithoutTheLockAbortsInDebugBuilds) {
    if (!HEAP_MUTEX_DEBUG)
        GTEST_SKIP() << "NDEBUG: assertions compiled out";
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(heap_holds_extents_locked(), "heap_mutex_held");
    heap_lock();
    (void)heap_holds_extents_locked(); /* with the lock: no abort */
    heap_unlock();
}
