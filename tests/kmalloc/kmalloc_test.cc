/* SPDX-License-Identifier: MIT */
// tests/kmalloc/kmalloc_test.cc - kmalloc, kzalloc, kcalloc, krealloc, kmalloc_aligned,
// kfree, ksize (slab/kmalloc.h), linked statically with the library, without the malloc
// override (the test's own malloc stays glibc's).
//
// Strategy:
//   1. Geometry: every size 0..32 KiB maps in O(1) to the smallest class that holds it, with
//      the waste bound of the header (8-byte steps, then < 12.5%); caches are named
//      "kmalloc-<size>", have no constructor and use magazines.
//   2. Every function at its edges: sizes 0, 1, every size up to 4 KiB, every class boundary
//      (+-1), buddy orders, dedicated extents, SIZE_MAX; every power-of-two alignment up to
//      8 MiB; realloc across every class boundary both ways, in place and moving.
//   3. A random operation sequence against a model (std::map of live blocks with a content
//      pattern) with slabcache_validate() every few hundred operations, and the same with
//      threads freeing each other's blocks; fork with live blocks.
//   4. Misuse: frees of foreign, interior and already-freed pointers are reported with the
//      documented message (SLABCACHE_ON_ERROR=report) and abort by default (death tests).
#include <gtest/gtest.h>

#include "tests/common/pattern.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "buddy/buddy.h"
#include "heap/heap.h"
#include "slab/kmalloc.h"
#include "slab/slab.h"
extern "C" {
// Pulls in slab/internal.h (C only): report_reset_options re-reads SLABCACHE_ON_ERROR.
#include "slab/kmalloc_internal.h"
}

namespace {

constexpr size_t kMaxClass = KMALLOC_MAX_CACHE_SIZE;

size_t LowBit(uintptr_t x) { return x & (~x + 1); }

bool Aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

// Fill / check a block with a pattern derived from its address and a seed.

struct kmem_cache *FindCache(const std::string &name) {
    struct Ctx {
        std::string name;
        struct kmem_cache *found;
    } ctx{name, nullptr};
    kmem_cache_for_each(
        [](struct kmem_cache *c, void *arg) {
            Ctx *x = static_cast<Ctx *>(arg);
            if (x->name == kmem_cache_name(c)) x->found = c;
        },
        &ctx);
    return ctx.found;
}

class KmallocTest : public ::testing::Test {
  protected:
    void SetUp() override {
        void *p = kmalloc(1, 0);  // initialise
        kfree(p);
    }
    void TearDown() override { EXPECT_EQ(slabcache_validate(), 0); }
};

// ---------------------------------------------------------------- geometry

TEST_F(KmallocTest, ClassesCoverEverySizeWithBoundedWaste) {
    size_t prev = 0;
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        size_t c = kmalloc_class_size(i);
        ASSERT_GT(c, prev) << "class " << i;
        ASSERT_EQ(c % 8, 0u);
        ASSERT_EQ(kmalloc_class_index(c), i) << c;
        prev = c;
    }
    ASSERT_EQ(prev, kMaxClass);
    for (size_t s = 1; s <= kMaxClass; s++) {
        unsigned i = kmalloc_class_index(s);
        size_t c = kmalloc_class_size(i);
        ASSERT_GE(c, s);
        if (i > 0) {
            ASSERT_LT(kmalloc_class_size(i - 1), s) << "not the smallest class for " << s;
        }
        if (s <= 128)
            ASSERT_LT(c - s, 8u) << s;
        else
            ASSERT_LE((double)(c - s) / (double)c, 0.125) << s;
    }
    EXPECT_EQ(kmalloc_class_index(0), 0u);
}

// Blocks a little over 4 KiB (a 4 KiB page plus a header: SQLite's page cache allocates
// 4096 + 272 bytes per page, behind its own 8-byte size prefix) get a class within 128 bytes,
// whose slabs hold them at >= 0.95 live bytes per slab byte.  With the plain eighths
// (kmalloc-4608, 7 per 32 KiB slab) such a block cost 4681 bytes: 7% over, ~290 KiB of
// SQLite's 4 MiB page cache.
TEST_F(KmallocTest, BlocksJustAboveFourKibGetFineClasses) {
    for (size_t s = 4097; s <= 4608; s++) {
        size_t c = kmalloc_class_size(kmalloc_class_index(s));
        ASSERT_LT(c - s, 128u) << s;
    }
    for (size_t s : {(size_t)4104, (size_t)4368, (size_t)4480}) {
        void *p = kmalloc(s, 0);
        ASSERT_NE(p, nullptr) << s;
        ASSERT_LT(ksize(p) - s, 128u) << s;
        struct kmem_cache *c = kmalloc_caches[kmalloc_class_index(s)];
        ASSERT_NE(c, nullptr) << s;
        struct kmem_cache_stats st;
        ASSERT_EQ(kmem_cache_get_stats(c, &st), 0);
        double live = (double)(st.objects_per_slab * s) / (double)(st.pages_per_slab * 4096);
        EXPECT_GE(live, 0.95) << s << " in " << st.name;
        kfree(p);
    }
    // The fine classes end where the eighths take over again.
    EXPECT_EQ(kmalloc_class_size(kmalloc_class_index(4609)), 5120u);
    EXPECT_EQ(kmalloc_class_size(kmalloc_class_index(8193)), 9216u);
}

// Class i's cache owns magazine table entry i, so kmalloc's and malloc's fast paths pop from
// the entry the class index names, without loading the cache: every class cache holds its
// fixed id, a user cache gets an id above the fixed ones, and a LIFO pair of every class is
// served from that entry (the pointer freed is the one allocated next).
TEST_F(KmallocTest, ClassCachesOwnTheMagazineEntryOfTheirIndex) {
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        size_t size = kmalloc_class_size(i);
        void *p = kmalloc(size, 0);
        ASSERT_NE(p, nullptr) << size;
        struct kmem_cache *c = kmalloc_caches[i];
        ASSERT_NE(c, nullptr) << size;
        EXPECT_EQ(c->id, i) << c->name;
        kfree(p);
        void *q = kmalloc(size, 0);
        EXPECT_EQ(p, q) << c->name << ": not popped from entry " << i;
        EXPECT_EQ(magazine_tls_table->ent[i].cache, c) << c->name;
        kfree(q);
    }
    struct kmem_cache *u = kmem_cache_create("user-id", 100, 0, 0, nullptr);
    ASSERT_NE(u, nullptr);
    EXPECT_GE(u->id, (uint32_t)SLAB_FIXED_IDS);
    EXPECT_LT(u->id, (uint32_t)SLAB_MAX_CACHES);
    kmem_cache_destroy(u);
}

// malloc's constant table (size -> class of the size rounded up to 16) agrees with the class
// arithmetic for every size it covers, and every class it names is 16-aligned.
TEST_F(KmallocTest, MallocIndexTableMatchesTheClasses) {
    for (size_t size = 0; size <= KMALLOC_TABLE_MAX; size++) {
        size_t s16 = size ? (size + 15) & ~(size_t)15 : 16;
        unsigned i = kmalloc_index16[(size + 15) / 16];
        ASSERT_EQ(i, kmalloc_class_index(s16)) << size;
        ASSERT_EQ(kmalloc_class_size(i) % 16, 0u) << size;
        ASSERT_GE(kmalloc_class_size(i), size) << size;
    }
}

TEST_F(KmallocTest, CachesNamedLikeTheKernelWithoutConstructorsWithMagazines) {
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        std::string name = "kmalloc-" + std::to_string(kmalloc_class_size(i));
        struct kmem_cache *made = kmalloc_class_cache(i);  // created lazily: now
        struct kmem_cache *c = FindCache(name);
        ASSERT_NE(c, nullptr) << name;
        ASSERT_EQ(c, made);
        ASSERT_EQ(c, kmalloc_caches[i]);
        struct kmem_cache_stats st;
        ASSERT_EQ(kmem_cache_get_stats(c, &st), 0);
        EXPECT_EQ(st.object_size, kmalloc_class_size(i));
        EXPECT_EQ(st.ctor_calls, 0u);
        EXPECT_GT(st.magazine_size, 0u) << name;
        EXPECT_EQ(st.flags & SLAB_NO_MAGAZINE, 0u);
        // Natural alignment of the class (capped at a page).
        size_t want = LowBit(kmalloc_class_size(i));
        EXPECT_EQ(st.align, want > 4096 ? 4096 : want) << name;
    }
}

// A fresh process (threadsafe death-test style re-executes this binary for the statement):
// initialisation creates no cache, and the first allocation of a class creates that class's
// cache only, the one its object comes from.  Exit code 0 = as documented, else the step
// that failed.
int LazyCreationSteps() {
    kmalloc_init();
    if (!kmalloc_ready()) return 1;
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++)
        if (__atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE) != nullptr) return 2;
    const unsigned want = kmalloc_class_index(20000);
    void *p = kmalloc(20000, 0);
    if (!p) return 3;
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        bool made = kmalloc_caches[i] != nullptr;
        if (made != (i == want)) return 4;
    }
    if (ksize(p) != kmalloc_class_size(want)) return 5;
    std::string name = "kmalloc-" + std::to_string(kmalloc_class_size(want));
    if (FindCache(name) != kmalloc_caches[want]) return 6;
    struct kmem_cache_stats st;
    if (kmem_cache_get_stats(kmalloc_caches[want], &st) != 0 || st.active_objects != 1) return 7;
    kfree(p);
    if (kmalloc_class_cache(want) != kmalloc_caches[want]) return 8;  // idempotent
    return 0;
}

TEST(KmallocLazyTest, CachesAreCreatedByTheFirstAllocationOfTheirClass) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_EXIT(_exit(LazyCreationSteps()), ::testing::ExitedWithCode(0), "");
}

// Threads racing to create one class's cache all end up with the same, single cache.
int RacingCreationSteps() {
    kmalloc_init();
    std::vector<std::thread> ts;
    std::vector<void *> got(8);
    std::atomic<bool> go{false};
    for (size_t t = 0; t < got.size(); t++)
        ts.emplace_back([&go, &got, t] {
            while (!go.load()) {
            }
            got[t] = kmalloc(3000, 0);
        });
    go = true;
    for (auto &th : ts) th.join();
    unsigned want = kmalloc_class_index(3000);
    int bad = 0;
    for (void *p : got) {
        if (!p || ksize(p) != kmalloc_class_size(want)) bad = 1;
        kfree(p);
    }
    std::pair<std::string, int> ctx("kmalloc-" + std::to_string(kmalloc_class_size(want)), 0);
    kmem_cache_for_each(
        [](struct kmem_cache *c, void *arg) {
            auto *x = static_cast<std::pair<std::string, int> *>(arg);
            if (x->first == kmem_cache_name(c)) x->second++;
        },
        &ctx);
    return bad ? 1 : ctx.second == 1 ? 0 : 2;
}

TEST(KmallocLazyTest, RacingFirstAllocationsShareOneCache) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_EXIT(_exit(RacingCreationSteps()), ::testing::ExitedWithCode(0), "");
}

// ---------------------------------------------------------------- kmalloc / ksize / kfree

TEST_F(KmallocTest, EverySmallSizeUsableAlignedAndDistinct) {
    std::vector<void *> ptrs;
    for (size_t s = 0; s <= 4096; s++) {
        void *p = kmalloc(s, 0);
        ASSERT_NE(p, nullptr) << s;
        size_t us = ksize(p);
        size_t cls = kmalloc_class_size(kmalloc_class_index(s));
        ASSERT_EQ(us, cls) << s;
        ASSERT_TRUE(Aligned(p, 8)) << s;
        ASSERT_TRUE(Aligned(p, LowBit(cls) > 4096 ? 4096 : LowBit(cls))) << s;
        if ((s > 0 && s % 16 == 0) || s > 128) {
            ASSERT_TRUE(Aligned(p, 16)) << s;
        }
        Fill(p, us, (uint32_t)s);
        ptrs.push_back(p);
    }
    for (size_t s = 0; s < ptrs.size(); s++) {
        ASSERT_TRUE(Check(ptrs[s], ksize(ptrs[s]), (uint32_t)s)) << "overlap at size " << s;
        kfree(ptrs[s]);
    }
}

TEST_F(KmallocTest, ZeroSizeGivesUniqueFreeablePointers) {
    void *a = kmalloc(0, 0), *b = kmalloc(0, 0);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_NE(a, b);
    EXPECT_GE(ksize(a), 1u);
    kfree(a);
    kfree(b);
}

TEST_F(KmallocTest, ClassBoundariesAndLargeBlocks) {
    std::vector<size_t> sizes;
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) {
        size_t c = kmalloc_class_size(i);
        sizes.push_back(c - 1);
        sizes.push_back(c);
        sizes.push_back(c + 1);
    }
    for (unsigned o = 3; o <= BUDDY_MAX_ORDER; o++) {
        size_t b = BUDDY_PAGE_SIZE << o;
        sizes.push_back(b - 1);
        sizes.push_back(b);
        sizes.push_back(b + 1);
    }
    for (size_t s : sizes) {
        void *p = kmalloc(s, 0);
        ASSERT_NE(p, nullptr) << s;
        size_t us = ksize(p);
        ASSERT_GE(us, s);
        if (s > kMaxClass && s <= BUDDY_PAGE_SIZE << BUDDY_MAX_ORDER) {
            // A run of exactly the pages asked for, page aligned.
            ASSERT_EQ(us, (s + BUDDY_PAGE_SIZE - 1) / BUDDY_PAGE_SIZE * BUDDY_PAGE_SIZE) << s;
            ASSERT_TRUE(Aligned(p, BUDDY_PAGE_SIZE));
            struct buddy_block_info info;
            ASSERT_TRUE(buddy_lookup(p, &info));
            EXPECT_EQ(info.tag, BUDDY_TAG_LARGE);
            EXPECT_EQ(info.head, p);
            EXPECT_EQ(info.order, (unsigned)BUDDY_ORDER_RUN);
            ASSERT_TRUE(buddy_lookup(static_cast<char *>(p) + us - 1, &info)) << "last page";
            EXPECT_EQ(info.head, p);
            EXPECT_EQ(info.size, us);
        } else if (s > BUDDY_PAGE_SIZE << BUDDY_MAX_ORDER) {
            ASSERT_EQ(us, (s + 4095) / 4096 * 4096);
        } else {
            ASSERT_EQ(us, kmalloc_class_size(kmalloc_class_index(s)));
        }
        Fill(p, us, 7);
        ASSERT_TRUE(Check(p, us, 7));
        kfree(p);
    }
}

TEST_F(KmallocTest, HugeBlocksGoBackToTheOs) {
    struct buddy_stats before, during, after;
    buddy_get_stats(&before);
    size_t sz = (size_t)9 << 20;
    void *p = kmalloc(sz, 0);
    ASSERT_NE(p, nullptr);
    EXPECT_GE(ksize(p), sz);
    memset(p, 0x5a, sz);
    buddy_get_stats(&during);
    EXPECT_EQ(during.huge_blocks, before.huge_blocks + 1);
    kfree(p);
    buddy_get_stats(&after);
    EXPECT_EQ(after.huge_blocks, before.huge_blocks);
    EXPECT_EQ(after.huge_bytes, before.huge_bytes);
}

// Freed large blocks stay resident while they are reused (a block freed and allocated again
// costs no system call and no page fault) and go back to the OS by decay: a decay time or two
// after the free, at the next slow path of the buddy layer.  Fake clock, decay 100 ms.
uint64_t g_clock_ms;
uint64_t FakeClockMs() { return g_clock_ms; }

TEST_F(KmallocTest, FreedLargeBlocksStayResidentUntilTheyDecay) {
    g_clock_ms = 50000000;
    buddy_set_clock_for_tests(FakeClockMs);
    const uint32_t old = buddy_set_decay_ms(100);
    const size_t size = 256 << 10;
    struct heap_stats h0, h1;
    void *p = kmalloc(size, 0);
    memset(p, 1, size);
    heap_get_stats(&h0);
    kfree(p);
    g_clock_ms += 150;
    void *q = kmalloc(size, 0);
    heap_get_stats(&h1);
    EXPECT_EQ(q, p) << "the resident block is reused";
    EXPECT_EQ(h1.madvise_calls, h0.madvise_calls) << "no system call";
    EXPECT_EQ(static_cast<char *>(q)[size - 1], 1) << "not purged";
    kfree(q);
    struct buddy_stats b0, b1;
    buddy_get_stats(&b0);
    EXPECT_GE(b0.dirty_free_bytes, size);
    g_clock_ms += 200;
    void *r = kmalloc(64 << 10, 0);  // any slow path of the buddy layer runs the pass
    buddy_get_stats(&b1);
    heap_get_stats(&h1);
    EXPECT_GE(h1.returned_bytes - h0.returned_bytes, size - (64 << 10));
    EXPECT_GT(b1.purge_calls, b0.purge_calls);
    kfree(r);
    buddy_set_decay_ms(old);
    buddy_set_clock_for_tests(nullptr);
    EXPECT_EQ(buddy_validate(), 0);
}

// The trim gives back every free page at once, whatever its age.
TEST_F(KmallocTest, TrimGivesBackEveryFreePage) {
    const uint32_t old = buddy_set_decay_ms(BUDDY_DECAY_NEVER);
    void *p = kmalloc(1 << 20, 0);
    memset(p, 1, 1 << 20);
    kfree(p);
    struct buddy_stats st;
    buddy_get_stats(&st);
    EXPECT_GE(st.dirty_free_bytes, (size_t)1 << 20);
    EXPECT_GE(buddy_trim(SIZE_MAX), (size_t)1 << 20);
    buddy_get_stats(&st);
    EXPECT_EQ(st.dirty_free_bytes, 0u);
    EXPECT_EQ(buddy_trim(SIZE_MAX), 0u) << "nothing left to give";
    buddy_set_decay_ms(old);
}

TEST_F(KmallocTest, ImpossibleSizesFailWithEnomem) {
    for (size_t s : {SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2, (size_t)1 << 62}) {
        errno = 0;
        EXPECT_EQ(kmalloc(s, 0), nullptr) << s;
        EXPECT_EQ(errno, ENOMEM) << s;
        errno = 0;
        EXPECT_EQ(kzalloc(s, 0), nullptr);
        EXPECT_EQ(errno, ENOMEM);
        errno = 0;
        EXPECT_EQ(kmalloc_aligned(64, s, 0), nullptr);
        EXPECT_EQ(errno, ENOMEM);
    }
}

TEST_F(KmallocTest, NullIsHarmless) {
    kfree(nullptr);
    EXPECT_EQ(ksize(nullptr), 0u);
}

// ---------------------------------------------------------------- kzalloc / kcalloc

TEST_F(KmallocTest, KzallocZeroesRecycledMemory) {
    for (size_t s : {1ul, 16ul, 100ul, 4000ul, 30000ul, 100000ul, (size_t)5 << 20}) {
        // Dirty memory of this class, free it, then kzalloc: the same slot is likely reused.
        for (int i = 0; i < 3; i++) {
            void *d = kmalloc(s, 0);
            ASSERT_NE(d, nullptr);
            memset(d, 0xee, ksize(d));
            kfree(d);
        }
        unsigned char *p = static_cast<unsigned char *>(kzalloc(s, 0));
        ASSERT_NE(p, nullptr);
        for (size_t i = 0; i < s; i++) ASSERT_EQ(p[i], 0) << s << " byte " << i;
        kfree(p);
    }
}

size_t ResidentPages(const void *p, size_t len) {
    std::vector<unsigned char> v((len + 4095) / 4096);
    EXPECT_EQ(0, mincore(const_cast<void *>(p), len, v.data()));
    size_t n = 0;
    for (unsigned char b : v) n += b & 1;
    return n;
}

// kzalloc of a buddy block writes zeroes into the pages that may hold old data (the buddy's
// per-page dirty bits: set on every page of a block when it is allocated, cleared by a purge)
// and leaves the others alone: no system call (a purge would be an madvise, and the
// program's writes would fault every page in again), and a page that reads as zero already
// is not made resident.  After slabcache_reap every free page is purged and no empty slab
// is left to give back (a reap due later finds nothing); the test then knows every page
// allocated since (the only ones that may be dirty), and after each kzalloc no other page of
// the block may be resident.  Where the blocks land is the placement's business: the test
// only counts that some kzalloc met clean pages, so the check was real.
TEST_F(KmallocTest, LargeKzallocZeroesOnlyItsDirtyPagesWithoutSystemCalls) {
    const uint32_t old = buddy_set_decay_ms(BUDDY_DECAY_NEVER);
    size_t clean_seen = 0;
    for (int round = 0; round < 3; round++) {
        slabcache_reap();  // every free page purged: clean
        std::set<uintptr_t> allocated;  // pages allocated since: the only ones that may be dirty
        auto note = [&allocated](void *blk) {
            for (size_t off = 0; off < ksize(blk); off += 4096)
                allocated.insert(reinterpret_cast<uintptr_t>(blk) + off);
        };
        std::vector<void *> dirty;
        for (int i = 0; i < 4; i++) {
            void *d = kmalloc(64 << 10, 0);
            ASSERT_NE(d, nullptr);
            note(d);
            memset(d, 0xee, 64 << 10);
            dirty.push_back(d);
        }
        for (void *d : dirty) kfree(d);
        struct buddy_stats bs;
        buddy_get_stats(&bs);
        ASSERT_EQ(bs.dirty_free_bytes, (size_t)256 << 10) << "dirty pages the test does not know";
        for (size_t size : {(size_t)256 << 10, (size_t)512 << 10, ((size_t)512 << 10) - 32}) {
            struct heap_stats before, after;
            heap_get_stats(&before);
            unsigned char *p = static_cast<unsigned char *>(kzalloc(size, 0));
            ASSERT_NE(p, nullptr);
            heap_get_stats(&after);
            EXPECT_EQ(after.returned_bytes, before.returned_bytes) << size << ": purged";
            EXPECT_EQ(after.madvise_calls, before.madvise_calls) << size;
            const size_t pages = ksize(p) / 4096;
            std::vector<unsigned char> res(pages);
            ASSERT_EQ(0, mincore(p, pages * 4096, res.data()));
            for (size_t i = 0; i < pages; i++) {
                if (allocated.count(reinterpret_cast<uintptr_t>(p) + i * 4096)) continue;
                clean_seen++;
                EXPECT_EQ(res[i] & 1, 0) << size << ": clean page " << i << " of " << pages
                                         << " made resident (round " << round << ")";
            }
            note(p);
            for (size_t i = 0; i < size; i++) ASSERT_EQ(p[i], 0) << size << " byte " << i;
            memset(p, 0xdd, 256 << 10);  // dirty data for the next kzalloc that takes them
            kfree(p);
        }
    }
    EXPECT_GE(clean_seen, 64u) << "no kzalloc met clean pages: nothing was checked";
    buddy_set_decay_ms(old);
    // Below the threshold kzalloc writes zeroes (and kcalloc too).
    unsigned char *s = static_cast<unsigned char *>(kcalloc(1000, 100, 0));
    ASSERT_NE(s, nullptr);
    for (size_t i = 0; i < 100000; i++) ASSERT_EQ(s[i], 0) << i;
    kfree(s);
}

// A huge block (past the largest buddy order) freed is parked mapped; kzalloc and kcalloc of
// the same size reuse it and write zeroes into it, with no system call: a purge would cost an
// madvise and then a page fault for every page the program writes.  Every byte reads zero,
// and the pages stay resident.
TEST_F(KmallocTest, HugeKzallocOfAParkedExtentWritesZeroesWithoutSystemCalls) {
    const uint32_t old = buddy_set_decay_ms(BUDDY_DECAY_NEVER);
    const size_t size = (size_t)5 << 20;
    for (int round = 0; round < 2; round++) {
        void *d = kmalloc(size, 0);
        ASSERT_NE(d, nullptr);
        memset(d, 0xee, size);
        kfree(d);
        struct heap_stats before, after;
        heap_get_stats(&before);
        unsigned char *p = static_cast<unsigned char *>(round ? kcalloc(size / 8, 8, 0)
                                                              : kzalloc(size, 0));
        ASSERT_NE(p, nullptr);
        heap_get_stats(&after);
        EXPECT_EQ(static_cast<void *>(p), d) << "the parked extent is reused";
        EXPECT_EQ(after.madvise_calls, before.madvise_calls) << round;
        EXPECT_EQ(after.returned_bytes, before.returned_bytes) << round << ": purged";
        EXPECT_EQ(ResidentPages(p, size), size / 4096) << round;
        for (size_t i = 0; i < size; i++) ASSERT_EQ(p[i], 0) << round << " byte " << i;
        kfree(p);
    }
    buddy_set_decay_ms(old);
    EXPECT_EQ(buddy_validate(), 0);
}

TEST_F(KmallocTest, KcallocZeroesAndRejectsOverflow) {
    unsigned char *p = static_cast<unsigned char *>(kcalloc(37, 41, 0));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < 37 * 41; i++) ASSERT_EQ(p[i], 0);
    kfree(p);
    errno = 0;
    EXPECT_EQ(kcalloc(SIZE_MAX / 2 + 1, 2, 0), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(kcalloc((size_t)1 << 33, (size_t)1 << 31, 0), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    void *z = kcalloc(0, 100, 0);
    EXPECT_NE(z, nullptr);
    kfree(z);
}

// ---------------------------------------------------------------- krealloc

TEST_F(KmallocTest, KreallocAcrossEveryClassBoundaryKeepsContents) {
    std::vector<size_t> sizes = {1};
    for (unsigned i = 0; i < KMALLOC_NR_CLASSES; i++) sizes.push_back(kmalloc_class_size(i) + 1);
    for (unsigned o = 4; o <= BUDDY_MAX_ORDER + 1; o++) sizes.push_back((BUDDY_PAGE_SIZE << o) + 1);
    // Grow through every boundary.
    void *p = kmalloc(1, 0);
    Fill(p, 1, 3);
    size_t have = 1;
    for (size_t s : sizes) {
        void *q = krealloc(p, s, 0);
        ASSERT_NE(q, nullptr) << s;
        ASSERT_TRUE(Check(q, have < s ? have : s, 3)) << "grow to " << s;
        ASSERT_GE(ksize(q), s);
        Fill(q, s, 3);
        have = s;
        p = q;
    }
    // Shrink back through every boundary.
    for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
        void *q = krealloc(p, *it, 0);
        ASSERT_NE(q, nullptr);
        ASSERT_TRUE(Check(q, *it, 3)) << "shrink to " << *it;
        ASSERT_GE(ksize(q), *it);
        p = q;
    }
    kfree(p);
}

TEST_F(KmallocTest, KreallocInPlaceAndHeadroom) {
    void *p = kmalloc(100, 0);  // class 104
    ASSERT_EQ(ksize(p), 104u);
    EXPECT_EQ(krealloc(p, 104, 0), p) << "fits the class: in place";
    EXPECT_EQ(krealloc(p, 60, 0), p) << "small blocks shrink in place";
    void *q = krealloc(p, 1000, 0);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(ksize(q), 1024u);
    EXPECT_EQ(krealloc(q, 1001, 0), q) << "fits the class: in place";
    q = krealloc(q, 1025, 0);  // grows past its class (1024): moves with 1.25x headroom
    ASSERT_NE(q, nullptr);
    EXPECT_GE(ksize(q), 1280u);
    void *r = krealloc(q, 1250, 0);
    EXPECT_EQ(r, q) << "the headroom absorbs the next growth";
    // A large block shrunk below half moves to a smaller block (memory goes back).
    void *big = kmalloc(1 << 20, 0);
    memset(big, 1, 1 << 20);
    void *small = krealloc(big, 1000, 0);
    ASSERT_NE(small, nullptr);
    EXPECT_LT(ksize(small), 4096u);
    kfree(r);
    kfree(small);
}

// A large block shrinks in place (its last pages go back to the buddy layer) and grows back
// into them without moving; with KM_ZERO the grown tail reads as zero.
TEST_F(KmallocTest, KreallocLargeBlocksResizeInPlace) {
    const size_t big = 2 << 20, small = 40000;
    char *p = static_cast<char *>(kmalloc(big, 0));
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(ksize(p), big);
    Fill(p, small, 3);
    struct buddy_stats before, after;
    buddy_get_stats(&before);
    ASSERT_EQ(krealloc(p, small, 0), p) << "shrinks in place";
    EXPECT_EQ(ksize(p), (size_t)40 << 10) << "the pages that hold 40000 bytes";
    buddy_get_stats(&after);
    EXPECT_EQ(after.alloc_bytes + big - (40 << 10), before.alloc_bytes);
    EXPECT_TRUE(Check(p, small, 3));
    ASSERT_EQ(krealloc(p, 1 << 20, KM_ZERO), p) << "grows into the pages it gave back";
    EXPECT_EQ(ksize(p), (size_t)1 << 20);
    EXPECT_TRUE(Check(p, small, 3));
    for (size_t i = (40 << 10); i < (1 << 20); i += 4093) ASSERT_EQ(p[i], 0) << i;
    // A neighbour in the way: the block moves, contents kept.
    char *q = static_cast<char *>(kmalloc(1 << 20, 0));  // likely the free upper half
    ASSERT_NE(q, nullptr);
    char *r = static_cast<char *>(krealloc(p, (2 << 20) + 1, 0));
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(Check(r, small, 3));
    EXPECT_EQ(buddy_validate(), 0);
    kfree(q);
    kfree(r);
}

// A large block that krealloc had to move to grow lands where it has room: the next growth,
// up to twice the size it moved to, stays in place.
TEST_F(KmallocTest, KreallocMovedLargeBlocksGrowInPlaceAfterwards) {
    // A block against the end of an extent cannot grow in place: a run of 999 pages takes
    // the start of a fresh extent and one of 25 pages its tail (the tightest hole for it).
    char *big = static_cast<char *>(kmalloc((size_t)999 << 12, 0));
    char *p = static_cast<char *>(kmalloc(100 << 10, 0));
    ASSERT_TRUE(big && p);
    ASSERT_EQ(ksize(p), (size_t)100 << 10);
    Fill(p, 100 << 10, 5);
    char *q = static_cast<char *>(krealloc(p, (100 << 10) + 1, 0));
    ASSERT_NE(q, nullptr);
    if (p == big + ((size_t)999 << 12)) {
        EXPECT_NE(q, p) << "at the end of its extent: it must move";
    }
    EXPECT_TRUE(Check(q, 100 << 10, 5));
    const size_t moved = ksize(q);
    EXPECT_GE(moved, (size_t)125 << 10) << "1.25x when it moves";
    EXPECT_EQ(krealloc(q, 2 * moved, 0), q) << "room for twice its size after the move";
    EXPECT_TRUE(Check(q, 100 << 10, 5));
    EXPECT_EQ(buddy_validate(), 0);
    kfree(q);
    kfree(big);
}

// Past the largest buddy order a block is a dedicated mapping: krealloc remaps it
// (mremap), in place or by moving its pages, and copies nothing.
TEST_F(KmallocTest, KreallocHugeBlocksRemapWithoutCopying) {
    const size_t mib = 1 << 20;
    char *p = static_cast<char *>(kmalloc(5 * mib, 0));
    ASSERT_NE(p, nullptr);
    Fill(p, 5 * mib, 4);
    struct heap_stats h0, h1;
    heap_get_stats(&h0);
    for (size_t s = 6 * mib; s <= 40 * mib; s += 7 * mib) {
        char *q = static_cast<char *>(krealloc(p, s, KM_ZERO));
        ASSERT_NE(q, nullptr) << s;
        EXPECT_GE(ksize(q), s);
        EXPECT_TRUE(Check(q, 5 * mib, 4)) << s;
        EXPECT_EQ(q[s - 1], 0) << s;
        p = q;
    }
    heap_get_stats(&h1);
    EXPECT_EQ(h1.resizes - h0.resizes, 5u) << "every growth was a remap";
    EXPECT_GE(h1.mremap_calls - h0.mremap_calls, 5u);
    char *q = static_cast<char *>(krealloc(p, 9 * mib, 0));  // shrink below half: in place
    EXPECT_EQ(q, p);
    EXPECT_EQ(ksize(q), 9 * mib);
    EXPECT_TRUE(Check(q, 5 * mib, 4));
    char *r = static_cast<char *>(krealloc(q, 3 * mib, 0));  // into a buddy block: a copy
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(Check(r, 3 * mib, 4));
    struct buddy_block_info info;
    ASSERT_TRUE(buddy_lookup(r, &info));
    EXPECT_NE(info.order, (unsigned)BUDDY_ORDER_HUGE);
    kfree(r);
    EXPECT_EQ(heap_validate(), 0);
}

TEST_F(KmallocTest, KreallocNullAndZero) {
    void *p = krealloc(nullptr, 50, 0);
    ASSERT_NE(p, nullptr);
    EXPECT_GE(ksize(p), 50u);
    struct kmem_cache_stats before, after;
    struct kmem_cache *c = kmalloc_caches[kmalloc_class_index(50)];  // made by krealloc above
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(kmem_cache_get_stats(c, &before), 0);
    EXPECT_EQ(krealloc(p, 0, 0), nullptr);  // frees p (glibc realloc semantics)
    ASSERT_EQ(kmem_cache_get_stats(c, &after), 0);
    EXPECT_EQ(after.frees, before.frees + 1);
}

TEST_F(KmallocTest, KreallocFailureLeavesTheBlock) {
    void *p = kmalloc(200, 0);
    Fill(p, 200, 9);
    errno = 0;
    EXPECT_EQ(krealloc(p, SIZE_MAX / 2, 0), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_TRUE(Check(p, 200, 9));
    kfree(p);
}

TEST_F(KmallocTest, KreallocZeroFlagZeroesTheNewTail) {
    void *p = kmalloc(64, 0);
    memset(p, 0xff, 64);
    unsigned char *q = static_cast<unsigned char *>(krealloc(p, 5000, KM_ZERO));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < 64; i++) ASSERT_EQ(q[i], 0xff);
    for (size_t i = 64; i < 5000; i++) ASSERT_EQ(q[i], 0) << i;
    kfree(q);
}

// ---------------------------------------------------------------- alignment

TEST_F(KmallocTest, EveryPowerOfTwoAlignmentUpTo8MiB) {
    for (size_t a = 1; a <= ((size_t)8 << 20); a <<= 1) {
        for (size_t s : {(size_t)0, (size_t)1, (size_t)24, (size_t)100, a, a + 1, 3 * a + 5,
                         (size_t)40000, (size_t)5 << 20}) {
            if (s > ((size_t)24 << 20)) continue;
            void *p = kmalloc_aligned(a, s, 0);
            ASSERT_NE(p, nullptr) << "align " << a << " size " << s;
            ASSERT_TRUE(Aligned(p, a)) << "align " << a << " size " << s << " got " << p;
            ASSERT_GE(ksize(p), s);
            size_t n = ksize(p);
            Fill(p, n, (uint32_t)a);
            ASSERT_TRUE(Check(p, n, (uint32_t)a));
            kfree(p);
        }
    }
}

TEST_F(KmallocTest, AlignmentMustBeAPowerOfTwo) {
    for (size_t a : {(size_t)0, (size_t)3, (size_t)24, (size_t)100, (size_t)4097}) {
        errno = 0;
        EXPECT_EQ(kmalloc_aligned(a, 10, 0), nullptr) << a;
        EXPECT_EQ(errno, EINVAL) << a;
    }
}

// ---------------------------------------------------------------- 16-byte density

TEST_F(KmallocTest, SixteenByteObjectsCostAtMostOnePercent) {
    struct kmem_cache *c = kmalloc_class_cache(kmalloc_class_index(16));
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(kmem_cache_shrink(c), 0);
    struct kmem_cache_stats st0;
    ASSERT_EQ(kmem_cache_get_stats(c, &st0), 0);
    const size_t n = 1 << 20;
    std::vector<void *> v(n);
    for (size_t i = 0; i < n; i++) v[i] = kmalloc(16, 0);
    struct kmem_cache_stats st;
    ASSERT_EQ(kmem_cache_get_stats(c, &st), 0);
    // Steady state: a full slab holds objects worth at least 1/1.01 of its bytes ...
    double per_slab = (double)st.pages_per_slab * 4096;
    EXPECT_LE(per_slab / (double)(st.objects_per_slab * 16), 1.01);
    // ... and n objects take no more than that plus the one partly filled slab.
    double slab_bytes = (double)(st.total_slabs - st0.total_slabs) * per_slab;
    EXPECT_LE(slab_bytes - per_slab, 1.01 * (double)(n * 16));
    for (void *p : v) kfree(p);
}

// ---------------------------------------------------------------- random model

struct Block {
    size_t size;
    uint32_t seed;
};

void CheckNoOverlap(const std::map<uintptr_t, Block> &live, void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = live.lower_bound(a);
    if (it != live.end()) {
        ASSERT_GE(it->first, a + n) << "overlaps the next block";
    }
    if (it != live.begin()) {
        --it;
        ASSERT_LE(it->first + it->second.size, a) << "overlaps the previous block";
    }
}

size_t RandomSize(std::mt19937_64 &rng) {
    unsigned r = rng() % 1000;
    if (r < 700) return rng() % 257;
    if (r < 950) return rng() % 8193;
    if (r < 995) return rng() % (1 << 20);
    return (rng() % (12 << 20));
}

void RandomOps(uint64_t seed, int ops, bool validate) {
    std::mt19937_64 rng(seed);
    std::map<uintptr_t, Block> live;
    for (int i = 0; i < ops; i++) {
        unsigned op = rng() % 10;
        if (op < 5 || live.empty()) {
            size_t s = RandomSize(rng);
            size_t align = 0;
            void *p;
            if (rng() % 8 == 0) {
                align = (size_t)1 << (rng() % 21);
                p = kmalloc_aligned(align, s, 0);
            } else if (rng() % 4 == 0) {
                p = kzalloc(s, 0);
                for (size_t k = 0; p && k < s; k++) {
                    ASSERT_EQ(static_cast<unsigned char *>(p)[k], 0);
                }
            } else {
                p = kmalloc(s, 0);
            }
            ASSERT_NE(p, nullptr);
            if (align) {
                ASSERT_TRUE(Aligned(p, align));
            }
            ASSERT_GE(ksize(p), s);
            CheckNoOverlap(live, p, s ? s : 1);
            uint32_t sd = (uint32_t)rng();
            Fill(p, s, sd);
            live[(uintptr_t)p] = Block{s ? s : 1, sd};
            if (s == 0) live[(uintptr_t)p].size = 1, Fill(p, 1, sd);
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            void *p = (void *)it->first;
            Block b = it->second;
            ASSERT_TRUE(Check(p, b.size, b.seed)) << "block " << p << " corrupted";
            live.erase(it);
            if (op < 8) {
                kfree(p);
            } else {
                size_t s = RandomSize(rng);
                if (s == 0) s = 1;
                void *q = krealloc(p, s, 0);
                ASSERT_NE(q, nullptr);
                ASSERT_TRUE(Check(q, b.size < s ? b.size : s, b.seed)) << "realloc lost data";
                CheckNoOverlap(live, q, s);
                Fill(q, s, b.seed);
                live[(uintptr_t)q] = Block{s, b.seed};
            }
        }
        if (validate && i % 500 == 0) {
            ASSERT_EQ(slabcache_validate(), 0) << "op " << i;
        }
    }
    for (auto &kv : live) {
        ASSERT_TRUE(Check((void *)kv.first, kv.second.size, kv.second.seed));
        kfree((void *)kv.first);
    }
}

TEST_F(KmallocTest, RandomOperationsAgainstAModel) {
    for (uint64_t seed : {1u, 2u, 3u}) {
        RandomOps(seed, 20000, true);
        if (HasFatalFailure()) return;
    }
}

TEST_F(KmallocTest, ThreadsFreeingEachOthersBlocks) {
    const int kThreads = 4, kRounds = 200, kBatch = 256;
    std::vector<std::vector<void *>> handoff(kThreads);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, nullptr, kThreads);
    std::vector<std::thread> ts;
    std::vector<int> errors(kThreads, 0);
    for (int t = 0; t < kThreads; t++) {
        ts.emplace_back([&, t] {
            std::mt19937_64 rng(t + 100);
            for (int r = 0; r < kRounds; r++) {
                std::vector<void *> mine;
                for (int i = 0; i < kBatch; i++) {
                    size_t s = 1 + rng() % 2000;
                    unsigned char *p = static_cast<unsigned char *>(kmalloc(s, 0));
                    if (!p) { errors[t]++; continue; }
                    p[0] = (unsigned char)t;
                    p[s - 1] = (unsigned char)t;
                    mine.push_back(p);
                }
                handoff[t] = std::move(mine);
                pthread_barrier_wait(&bar);
                // Free the blocks of the next thread.
                for (void *p : handoff[(t + 1) % kThreads]) {
                    if (static_cast<unsigned char *>(p)[0] != (unsigned char)((t + 1) % kThreads))
                        errors[t]++;
                    kfree(p);
                }
                pthread_barrier_wait(&bar);
            }
            kmem_cache_thread_flush();
        });
    }
    for (auto &th : ts) th.join();
    pthread_barrier_destroy(&bar);
    for (int t = 0; t < kThreads; t++) EXPECT_EQ(errors[t], 0) << t;
}

TEST_F(KmallocTest, ForkWithLiveBlocksAndOtherThreads) {
#if defined(__SANITIZE_THREAD__)
    // fork_prepare holds every cache's two locks (160 with the kmalloc caches): past TSan's
    // deadlock detector limit of 64 held mutexes, which aborts the process.
    GTEST_SKIP() << "TSan cannot hold more than 64 mutexes across fork";
#endif
    std::vector<void *> keep;
    for (int i = 0; i < 1000; i++) {
        void *p = kmalloc(1 + i % 3000, 0);
        Fill(p, 1 + i % 3000, i);
        keep.push_back(p);
    }
    std::atomic<bool> stop{false};
    std::thread busy([&] {
        while (!stop.load()) kfree(kmalloc(64, 0));
    });
    for (int f = 0; f < 5; f++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int bad = 0;
            for (int i = 0; i < 1000; i++) bad += !Check(keep[i], 1 + i % 3000, i);
            RandomOps(77, 3000, false);
            for (void *p : keep) kfree(p);
            bad += slabcache_validate() != 0;
            _exit(bad ? 1 : 0);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << f;
    }
    stop = true;
    busy.join();
    for (void *p : keep) kfree(p);
}

// ---------------------------------------------------------------- misuse

class KmallocMisuseTest : public KmallocTest {
  protected:
    void SetUp() override {
        KmallocTest::SetUp();
        setenv("SLABCACHE_ON_ERROR", "report", 1);
        report_reset_options();
    }
    void TearDown() override {
        unsetenv("SLABCACHE_ON_ERROR");
        report_reset_options();
        KmallocTest::TearDown();
    }
};

TEST_F(KmallocMisuseTest, ForeignPointerIsReported) {
    int on_stack = 0;
    ::testing::internal::CaptureStderr();
    kfree(&on_stack);
    std::string err = ::testing::internal::GetCapturedStderr();
    char want[128];
    snprintf(want, sizeof want,
             "slabcache: kfree: invalid free of %p (pointer not from slabcache)",
             (void *)&on_stack);
    EXPECT_NE(err.find(want), std::string::npos) << err;
    void *glibc = malloc(10);  // the test's malloc is glibc's
    ::testing::internal::CaptureStderr();
    kfree(glibc);
    err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("(pointer not from slabcache)"), std::string::npos) << err;
    free(glibc);
}

TEST_F(KmallocMisuseTest, InteriorAndDoubleFreesOfLargeBlocksAreReported) {
    char *p = static_cast<char *>(kmalloc(100000, 0));
    ::testing::internal::CaptureStderr();
    kfree(p + 4096);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("invalid free of"), std::string::npos) << err;
    EXPECT_EQ(ksize(p), 102400u) << "the block survived the refused free";
    kfree(p);
    ::testing::internal::CaptureStderr();
    kfree(p);
    err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("kfree: double free of large block"), std::string::npos) << err;
}

TEST_F(KmallocMisuseTest, InteriorAndDoubleFreesOfSmallObjectsAreReported) {
    char *p = static_cast<char *>(kmalloc(100, 0));
    ::testing::internal::CaptureStderr();
    kfree(p + 8);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("invalid free"), std::string::npos) << err;
    kfree(p);
    ::testing::internal::CaptureStderr();
    kfree(p);  // still on top of this thread's magazine: the cheap check catches it
    err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("double free"), std::string::npos) << err;
}

// kfree of the block this thread allocated last takes the popped run of the hinted class;
// once another thread freed that block and returned it to its slab, the run no longer
// vouches for it and the second kfree is reported.
TEST_F(KmallocMisuseTest, DoubleFreeAfterAnotherThreadReturnedItIsReported) {
    for (int i = 0; i < 4; i++) kfree(kmalloc(100, 0));  // hint and run of the class set up
    void *keep = kmalloc(100, 0);
    void *x = kmalloc(100, 0);
    ASSERT_NE(nullptr, kmalloc_hint_for(x)->cache) << "the run would not be tried";
    std::thread t([x] {
        kfree(x);
        kmem_cache_thread_flush();
    });
    t.join();
    ::testing::internal::CaptureStderr();
    kfree(x);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("double free"), std::string::npos) << err;
    EXPECT_EQ(0, slabcache_validate());
    void *r1 = kmalloc(100, 0), *r2 = kmalloc(100, 0);
    EXPECT_NE(r1, r2);
    kfree(r1);
    kfree(r2);
    kfree(keep);
}

// kfree(a) twice with another free in between: a sits below the magazine's top, and its free
// mark says it is free: the second kfree is refused and reported at once, the magazine holds a
// once, and every object is handed out once afterwards (slabcache_validate).
TEST_F(KmallocMisuseTest, DeeperDoubleFreeIsCaughtAtTheSecondFree) {
    void *keep = kmalloc(100, 0);
    void *a = kmalloc(100, 0), *b = kmalloc(100, 0);
    kfree(a);
    kfree(b);
    ::testing::internal::CaptureStderr();
    kfree(a);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("free: double free of"), std::string::npos) << err;
    EXPECT_NE(err.find("kmalloc-"), std::string::npos) << err;
    EXPECT_EQ(0, slabcache_validate());
    void *r1 = kmalloc(100, 0), *r2 = kmalloc(100, 0), *r3 = kmalloc(100, 0);
    EXPECT_NE(r1, r2);
    EXPECT_NE(r2, r3);
    EXPECT_NE(r1, r3);
    kfree(r1);
    kfree(r2);
    kfree(r3);
    kfree(keep);
    EXPECT_EQ(0, slabcache_validate());
}

// glibc's tcache test of a double free below the top ("free(): double free detected in
// tcache 2"), here through kfree: the second free aborts, before anything is handed out twice.
TEST(KmallocDeathTest, DeeperDoubleFreeAbortsAtTheSecondFree) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(
        {
            void *a = kmalloc(200, 0);
            void *b = kmalloc(200, 0);
            kfree(a);
            kfree(b);
            kfree(a);
            fprintf(stderr, "not caught\n");
        },
        "kfree: double free of small object 0x[0-9a-f]+ in cache kmalloc-[0-9]+");
}

TEST(KmallocDeathTest, ForeignFreeAbortsByDefault) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    static int x;
    EXPECT_DEATH(kfree(&x), "free: invalid free of 0x[0-9a-f]+ \\(pointer not from slabcache\\)");
}

}  // namespace

namespace {

// kfree's per-thread slab hints are guesses checked against the slab: objects of many classes
// (and of a user cache) freed interleaved, from slabs that come and go, always reach their
// own cache.
TEST(KfreeHints, InterleavedClassesAndSlabTurnoverGoToTheRightCache) {
    kmem_cache *user = kmem_cache_create("hint-user", 96, 0, 0, nullptr);
    std::vector<void *> objs;
    const size_t sizes[] = {16, 24, 96, 100, 512, 4000};
    std::map<size_t, size_t> invalid_before;  // earlier tests' deliberate misuse
    for (size_t s : sizes) kfree(kmalloc(s, 0));
    for (size_t s : sizes) {
        kmem_cache_stats st;
        ASSERT_EQ(0, kmem_cache_get_stats(kmalloc_caches[kmalloc_class_index(s)], &st));
        invalid_before[s] = st.invalid_frees;
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 6000; i++) {
            objs.push_back(kmalloc(sizes[i % 6], 0));
            if (i % 7 == 0) objs.push_back(kmem_cache_alloc(user, 0));
        }
        // Free in an order that alternates buckets and classes.
        for (size_t i = 0; i < objs.size(); i += 2) kfree(objs[i]);
        for (size_t i = 1; i < objs.size(); i += 2) kfree(objs[i]);
        objs.clear();
        ASSERT_EQ(0, slabcache_validate());
        kmem_cache_stats st;
        ASSERT_EQ(0, kmem_cache_get_stats(user, &st));
        EXPECT_EQ(0u, st.active_objects);
        EXPECT_EQ(st.allocs, st.frees);
        for (size_t s : sizes) {
            kmem_cache *c = kmalloc_caches[kmalloc_class_index(s)];
            ASSERT_NE(nullptr, c);
            ASSERT_EQ(0, kmem_cache_get_stats(c, &st));
            EXPECT_EQ(invalid_before[s], st.invalid_frees) << s;
        }
        ASSERT_EQ(0, kmem_cache_shrink(user));  // its slabs go away: stale hints must miss
    }
    kmem_cache_destroy(user);
}

}  // namespace
