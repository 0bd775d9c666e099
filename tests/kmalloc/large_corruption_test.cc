/* SPDX-License-Identifier: MIT */
// tests/kmalloc/large_corruption_test.cc - what a caller's write after free, overflow or
// double free of a large block (above the slab classes: buddy blocks and dedicated
// mappings) can do to the allocator.
//
// Strategy: the buddy layer keeps no metadata in free memory and trusts nothing read from
// it, so writes into freed large blocks and overflows past live ones must change nothing the
// allocator relies on.  Each scenario of the issue that concerns large blocks is run as the
// caller would commit it (through kmalloc/kfree, linked statically, no malloc override), then
// more allocations and frees follow and every result is checked against a model of the live
// blocks: no block overlaps a live one, every block lies inside a heap extent and is a whole
// allocated block of the buddy layer, the contents of untouched live blocks survive, and the
// validators agree.  A randomized version does the same over many seeds and sizes; double
// frees report and abort (death tests).  The scenarios follow those of glibc's malloc tests
// (tst-malloc-backtrace, tst-safe-linking) in idea only.
#include <gtest/gtest.h>

#include <stdint.h>
#include <string.h>

#include <map>
#include <string>
#include <random>
#include <vector>

#include "buddy/buddy.h"
#include "heap/heap.h"
#include "slab/kmalloc.h"
#include "slab/slab.h"
#include "tests/common/pattern.h"

namespace {

constexpr size_t kPage = 4096;

// Forged links point here (the program's .bss), as in the attacks on in-band free lists.
char g_bss_target[64 << 10] __attribute__((aligned(4096)));

// The content check: whole small blocks; for blocks above a page, the first and last 64
// bytes of every page (where overflows and forged links land), so a test can hold hundreds
// of MiB without writing all of it.
template <typename F>
void ForEachMarked(size_t size, F f) {
    for (size_t off = 0; off < size; off += kPage) {
        size_t len = size - off < kPage ? size - off : kPage;
        if (len <= 128) {
            f(off, len, (uint32_t)(off >> 12));
        } else {
            f(off, 64, (uint32_t)(off >> 12));
            f(off + len - 64, 64, ~(uint32_t)(off >> 12));
        }
    }
}

void Mark(void *p, size_t size, uint32_t seed) {
    char *c = static_cast<char *>(p);
    if (size <= 2 * kPage)
        Fill(p, size, seed);
    else
        ForEachMarked(size, [&](size_t off, size_t len, uint32_t s) { Fill(c + off, len, seed + s); });
}

bool Marked(const void *p, size_t size, uint32_t seed) {
    const char *c = static_cast<const char *>(p);
    if (size <= 2 * kPage)
        return Check(p, size, seed);
    bool ok = true;
    ForEachMarked(size, [&](size_t off, size_t len, uint32_t s) {
        ok = ok && Check(c + off, len, seed + s);
    });
    return ok;
}

std::string Describe(const void *p, size_t size, uint32_t seed) {
    const unsigned char *c = static_cast<const unsigned char *>(p);
    std::string where = "elsewhere";
    ForEachMarked(size, [&](size_t off, size_t len, uint32_t s) {
        if (where == "elsewhere" && !Check(c + off, len, seed + s))
            where = "at offset " + std::to_string(off) + ", first byte " + std::to_string(c[off]);
    });
    return where;
}

class Model {
  public:
    // Records a new block: false if it overlaps a live one or is not an allocated block of
    // ours at least `size` long.
    ::testing::AssertionResult Add(void *p, size_t size, uint32_t seed) {
        if (!p)
            return ::testing::AssertionFailure() << "allocation failed";
        uintptr_t a = reinterpret_cast<uintptr_t>(p);
        auto next = live_.lower_bound(a);
        if (next != live_.end() && next->first < a + size)
            return ::testing::AssertionFailure() << p << " overlaps the live block at "
                                                 << reinterpret_cast<void *>(next->first);
        if (next != live_.begin()) {
            auto prev = std::prev(next);
            if (prev->first + prev->second.size > a)
                return ::testing::AssertionFailure()
                       << p << " overlaps the live block at "
                       << reinterpret_cast<void *>(prev->first);
        }
        uintptr_t bss = reinterpret_cast<uintptr_t>(g_bss_target);
        if (a + size > bss && a < bss + sizeof g_bss_target)
            return ::testing::AssertionFailure() << p << " is in the program's .bss";
        struct heap_extent *he = heap_extent_lookup(p);
        struct buddy_block_info info;
        if (!he || !buddy_lookup(p, &info) || ksize(p) < size)
            return ::testing::AssertionFailure() << p << " is not an allocated block of ours";
        if (a + size > he->base + he->size)
            return ::testing::AssertionFailure() << p << " runs past its extent";
        Mark(p, size, seed);
        live_[a] = {size, seed, true};
        return ::testing::AssertionSuccess();
    }
    void Remove(void *p) { live_.erase(reinterpret_cast<uintptr_t>(p)); }
    // A block whose first bytes the test overwrote on purpose (an overflow into it).
    void Clobbered(void *p) {
        auto it = live_.find(reinterpret_cast<uintptr_t>(p));
        if (it != live_.end())
            it->second.intact = false;
    }
    bool IsLive(uintptr_t a) const {
        auto it = live_.upper_bound(a);
        if (it == live_.begin())
            return false;
        --it;
        return a < it->first + it->second.size;
    }
    ::testing::AssertionResult CheckAll() const {
        for (auto &[a, b] : live_)
            if (b.intact && !Marked(reinterpret_cast<void *>(a), b.size, b.seed))
                return ::testing::AssertionFailure()
                       << "contents of " << reinterpret_cast<void *>(a) << " (" << b.size
                       << " bytes) changed: " << Describe(reinterpret_cast<void *>(a), b.size, b.seed);
        return ::testing::AssertionSuccess();
    }
    void FreeAll() {
        for (auto &[a, b] : live_)
            kfree(reinterpret_cast<void *>(a));
        live_.clear();
    }
    size_t Count() const { return live_.size(); }
    void *Nth(size_t i) const {
        auto it = live_.begin();
        std::advance(it, i);
        return reinterpret_cast<void *>(it->first);
    }
    size_t SizeOf(void *p) const { return live_.at(reinterpret_cast<uintptr_t>(p)).size; }

  private:
    struct Block {
        size_t size;
        uint32_t seed;
        bool intact;
    };
    std::map<uintptr_t, Block> live_;
};

// Is the page at a free in the buddy layer right now (writing there cannot hit a live
// block, a slab or unmapped memory)?
bool FreeBuddyPage(uintptr_t a) {
    void *p = reinterpret_cast<void *>(a);
    struct heap_extent *he = heap_extent_lookup(p);
    return he && he->kind == HEAP_KIND_SPLIT && !buddy_lookup(p, nullptr);
}

class LargeCorruptionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        kfree(kmalloc(1, 0));
        memset(g_bss_target, 0, sizeof g_bss_target);
    }
    void TearDown() override {
        EXPECT_EQ(buddy_validate(), 0);
        EXPECT_EQ(slabcache_validate(), 0);
        for (char c : g_bss_target)
            ASSERT_EQ(c, 0) << "the allocator wrote into the program's .bss";
    }
};

// Write after free into a freed 40 KB block: 8 bytes (a pointer to a live block, as the
// in-band list's next link), then 16 (next and prev forged to point into .bss).  The next
// allocations of that size, and small ones, must be fresh, disjoint blocks.
TEST_F(LargeCorruptionTest, WriteAfterFreeIntoAFreedLargeBlock) {
    for (size_t forged : {8u, 16u}) {
        Model m;
        void *a = kmalloc(40000, 0);
        void *b = kmalloc(40000, 0);
        ASSERT_TRUE(m.Add(a, 40000, 1));
        ASSERT_TRUE(m.Add(b, 40000, 2));
        m.Remove(a);
        kfree(a);
        uintptr_t links[2] = {reinterpret_cast<uintptr_t>(b),
                              reinterpret_cast<uintptr_t>(g_bss_target)};
        if (forged == 16)
            links[0] = links[1] = reinterpret_cast<uintptr_t>(g_bss_target + 4096);
        memcpy(a, links, forged);  // the use after free
        for (int i = 0; i < 64; i++) {
            void *p = kmalloc(40000, 0);
            ASSERT_TRUE(m.Add(p, 40000, 10 + i)) << forged << " bytes, allocation " << i;
            void *s = kmalloc(3000, 0);
            ASSERT_TRUE(m.Add(s, 3000, 100 + i)) << forged << " bytes, small " << i;
        }
        ASSERT_TRUE(m.CheckAll());
        ASSERT_EQ(buddy_validate(), 0);
        m.FreeAll();
    }
}

// Overflows of 1..64 bytes past large blocks: into the free block after it, and into the
// live large block after it.  Then more allocations and frees, including of both blocks.
TEST_F(LargeCorruptionTest, OverflowsPastLargeBlocks) {
    for (size_t n = 1; n <= 64; n++) {
        for (size_t size : {(size_t)64 << 10, (size_t)128 << 10}) {
            Model m;
            // Two neighbours: a, then b right after it (same order, fresh extent space).
            std::vector<void *> v;
            void *a = nullptr, *b = nullptr;
            for (int i = 0; i < 64 && !b; i++) {
                void *p = kmalloc(size, 0);
                ASSERT_TRUE(m.Add(p, size, (uint32_t)(n * 100 + i)));
                v.push_back(p);
                for (void *q : v)
                    if (static_cast<char *>(q) + size == p) {
                        a = q;
                        b = p;
                    }
            }
            ASSERT_TRUE(a && b) << "no two adjacent blocks";
            // Into the live neighbour: its first n bytes are the caller's loss, nothing else.
            memset(static_cast<char *>(a) + size, 0xa5, n);
            m.Clobbered(b);
            // Into a free neighbour: free b first, then overflow a again.
            m.Remove(b);
            kfree(b);
            ASSERT_TRUE(FreeBuddyPage(reinterpret_cast<uintptr_t>(a) + size));
            uintptr_t fake = reinterpret_cast<uintptr_t>(g_bss_target);
            for (size_t off = 0; off < n; off++)  // pointer-like garbage, byte by byte
                static_cast<char *>(a)[size + off] = static_cast<char>(fake >> (8 * (off % 8)));
            for (int i = 0; i < 8; i++) {
                void *p = kmalloc(size, 0);
                ASSERT_TRUE(m.Add(p, size, (uint32_t)(n * 1000 + i))) << n << " " << size;
                void *s = kmalloc(3000, 0);
                ASSERT_TRUE(m.Add(s, 3000, (uint32_t)(n * 2000 + i)));
            }
            m.Remove(a);
            kfree(a);  // glibc: "free(): invalid next size" and abort; here nothing to check
            ASSERT_TRUE(m.CheckAll());
            ASSERT_EQ(buddy_validate(), 0) << n << " " << size;
            m.FreeAll();
        }
    }
}

// The randomized version: many seeds, small, medium, large and huge sizes; freed large
// blocks scribbled with pointer-like garbage (8-64 bytes), live large blocks overflowed by
// 1-64 bytes into whatever follows them when that is free memory or another of the test's
// large blocks.  Bounded: 1,500 steps per seed, at most ~100 blocks live.
TEST_F(LargeCorruptionTest, RandomizedScribblesAndOverflows) {
    const int seeds = 16, steps = 1500;
    for (int seed = 1; seed <= seeds; seed++) {
        std::mt19937_64 rng(seed);
        Model m;
        std::vector<uintptr_t> freed;  // addresses of freed large blocks
        for (int step = 0; step < steps; step++) {
            unsigned op = rng() % 100;
            if (op < 35 || m.Count() < 4) {
                size_t size;
                unsigned k = rng() % 100;
                if (k < 30)
                    size = 1 + rng() % 4096;  // small
                else if (k < 50)
                    size = 4097 + rng() % (32 << 10);  // medium (slab classes)
                else if (k < 98)  // large: buddy blocks, each power of two alike
                    size = ((size_t)32 << 10 << (rng() % 7)) + rng() % (32 << 10);
                else
                    size = (4u << 20) + 1 + rng() % (4u << 20);  // huge: dedicated
                void *p = kmalloc(size, 0);
                ASSERT_TRUE(m.Add(p, size, (uint32_t)(seed * 100000 + step)))
                    << "seed " << seed << " step " << step;
            } else if (op < 70 || m.Count() > 96) {
                void *p = m.Nth(rng() % m.Count());
                size_t size = m.SizeOf(p);
                m.Remove(p);
                kfree(p);
                if (size > (32 << 10))
                    freed.push_back(reinterpret_cast<uintptr_t>(p));
            } else if (op < 85 && !freed.empty()) {
                // Write after free: 8-64 bytes of pointers somewhere in the first pages.
                uintptr_t a = freed[rng() % freed.size()] + (rng() % 4) * kPage + (rng() % 64) * 8;
                size_t n = 8 * (1 + rng() % 8);
                if (!FreeBuddyPage(a) || !FreeBuddyPage(a + n - 1) || m.IsLive(a))
                    continue;  // reused or unmapped since: not the scenario
                for (size_t off = 0; off < n; off += 8) {
                    uintptr_t v = (rng() % 2) ? reinterpret_cast<uintptr_t>(g_bss_target)
                                              : reinterpret_cast<uintptr_t>(m.Nth(rng() % m.Count()));
                    memcpy(reinterpret_cast<void *>(a + off), &v, 8);
                }
            } else if (op < 100) {
                // Overflow past a live large block, into free memory or a large block of ours.
                void *p = m.Nth(rng() % m.Count());
                size_t size = m.SizeOf(p);
                if (size <= (32 << 10))
                    continue;
                uintptr_t end = reinterpret_cast<uintptr_t>(p) + ksize(p);
                size_t n = 1 + rng() % 64;
                struct buddy_block_info info;
                bool into_free = FreeBuddyPage(end);
                bool into_ours = !into_free && buddy_lookup(reinterpret_cast<void *>(end), &info) &&
                                 info.tag == BUDDY_TAG_LARGE && info.head == reinterpret_cast<void *>(end) &&
                                 m.IsLive(end);
                if (!into_free && !into_ours)
                    continue;  // a slab, or the end of the mapping: not a large-block overflow
                memset(reinterpret_cast<void *>(end), 0x5a, n);
                if (into_ours)
                    m.Clobbered(reinterpret_cast<void *>(end));
            }
            if (step % 250 == 0) {
                ASSERT_EQ(buddy_validate(), 0) << "seed " << seed << " step " << step;
                ASSERT_TRUE(m.CheckAll()) << "seed " << seed << " step " << step;
            }
        }
        ASSERT_TRUE(m.CheckAll()) << "seed " << seed;
        m.FreeAll();
        ASSERT_EQ(buddy_validate(), 0) << "seed " << seed;
        ASSERT_EQ(slabcache_validate(), 0) << "seed " << seed;
    }
}

// A double free of a large block, with its memory scribbled in between or not, and a free
// of a pointer forged into it: reported, then abort (the default).
TEST(LargeCorruptionDeathTest, DoubleAndForgedFreesOfLargeBlocksAbort) {
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(kmalloc(100000, 0));
            kfree(p);
            kfree(p);
        },
        "slabcache: kfree: double free of large block 0x[0-9a-f]+");
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(kmalloc(100000, 0));
            kfree(p);
            memset(p, 0x41, 64);  // write after free, then the second free
            kfree(p);
        },
        "slabcache: kfree: double free of large block 0x[0-9a-f]+");
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(kmalloc(100000, 0));
            kfree(p + 8192);
        },
        "slabcache: kfree: invalid free of 0x[0-9a-f]+ \\(interior pointer");
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(kmalloc((size_t)6 << 20, 0));
            kfree(p);
            kfree(p);
        },
        "slabcache: kfree: double free of huge mapping 0x[0-9a-f]+");
}

}  // namespace
