/* SPDX-License-Identifier: MIT */
// tests/observe/state_test.cc - the memory manager's state as a program sees it:
// slabcache_get_state, slabcache_print_status at each verbosity, and glibc's mallinfo2,
// mallinfo, mallopt and malloc_trim, in a process whose malloc is slabcache's (this binary links libslabcache.so;
// no_asan/no_tsan: the sanitizers replace malloc).
//
// Strategy: make a known set of blocks (small objects in two classes, a large block, a huge
// one), then check that the rows show them, that the totals add up to the heap exactly when
// nothing runs, that mallinfo2 says the same in glibc's terms, and that each verbosity adds
// what it promises.
#include <gtest/gtest.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "slab/kmalloc.h"
#include "slab/slab.h"

namespace {

slabcache_state *State() {
    static slabcache_state st;  // about 40 KB
    EXPECT_EQ(0, slabcache_get_state(&st));
    return &st;
}

const slabcache_class_state *Row(const slabcache_state *st, const char *name) {
    for (size_t i = 0; i < st->nr_classes; i++)
        if (strcmp(st->classes[i].name, name) == 0) return &st->classes[i];
    return nullptr;
}

std::string Status(int verbosity) {
    char *buf = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    slabcache_print_status(f, verbosity);
    fclose(f);
    std::string s(buf, len);
    free(buf);
    return s;
}

struct Blocks {
    std::vector<void *> small;
    void *large, *huge;
    Blocks() {
        for (int i = 0; i < 1000; i++) small.push_back(malloc(i % 2 ? 100 : 3000));
        large = malloc(100000);  // a run of 25 pages
        huge = malloc(9 << 20);  // a mapping of its own
    }
    ~Blocks() {
        for (void *p : small) free(p);
        free(large);
        free(huge);
    }
};

TEST(State, RowsShowEveryKindOfBlockAndTheTotalsAddUp) {
    slabcache_state before = *State();
    const slabcache_class_state *r112 = Row(&before, "kmalloc-112");
    size_t base112 = r112 ? r112->blocks_in_use : 0;
    Blocks b;
    slabcache_state *st = State();
    const slabcache_class_state *c112 = Row(st, "kmalloc-112");
    ASSERT_NE(nullptr, c112);
    EXPECT_EQ(SLABCACHE_CLASS_CACHE, c112->kind);
    EXPECT_EQ(base112 + 500, c112->blocks_in_use);
    EXPECT_EQ(c112->blocks_in_use * 112, c112->bytes_in_use);
    EXPECT_GE(c112->bytes_reserved, c112->bytes_in_use + c112->bytes_cached);
    EXPECT_NEAR(100.0 * c112->bytes_in_use / c112->bytes_reserved, c112->efficiency, 1e-9);
    const slabcache_class_state *large = Row(st, "large-128K");
    ASSERT_NE(nullptr, large);
    EXPECT_EQ(SLABCACHE_CLASS_LARGE, large->kind);
    EXPECT_GE(large->blocks_in_use, 1u);
    // Runs of the pages asked for: 100000 bytes are 25 pages, in the row of blocks of up to
    // 128 KiB.
    EXPECT_GE(large->bytes_in_use, large->blocks_in_use * 65536 + 4096);
    EXPECT_LE(large->bytes_in_use, large->blocks_in_use * 131072);
    EXPECT_EQ(large->bytes_in_use % 4096, 0u);
    const slabcache_class_state *huge = Row(st, "huge");
    ASSERT_NE(nullptr, huge);
    EXPECT_EQ(SLABCACHE_CLASS_HUGE, huge->kind);
    EXPECT_EQ(1u, huge->blocks_in_use);
    EXPECT_EQ(size_t(9) << 20, huge->bytes_in_use);
    size_t in_use = 0;
    for (size_t i = 0; i < st->nr_classes; i++) in_use += st->classes[i].bytes_in_use;
    const slabcache_totals &t = st->totals;
    EXPECT_EQ(in_use, t.in_use_bytes);
    EXPECT_EQ(t.heap_bytes, t.sbrk_bytes + t.mmap_bytes);
    EXPECT_EQ(t.heap_bytes, t.in_use_bytes + t.cached_bytes + t.slab_free_bytes + t.free_bytes);
    EXPECT_GT(t.metadata_bytes, 0u);
    EXPECT_GT(t.rss_bytes, 0u);
    EXPECT_GE(t.caches, 2u);
    // glibc's view of the same: huge blocks are its mmapped chunks.
    struct mallinfo2 mi = mallinfo2();
    EXPECT_EQ(1u, mi.hblks);
    EXPECT_EQ(size_t(9) << 20, mi.hblkhd);
    EXPECT_EQ(t.heap_bytes, mi.arena + mi.hblkhd);
    EXPECT_EQ(t.in_use_bytes, mi.uordblks + mi.hblkhd);
    EXPECT_EQ(mi.arena, mi.uordblks + mi.fordblks);
    EXPECT_EQ(t.cached_bytes, mi.fsmblks);
    EXPECT_EQ(-1, slabcache_get_state(nullptr));
}

TEST(State, EachVerbosityAddsWhatItPromises) {
    Blocks b;
    std::string v0 = Status(0), v1 = Status(1), v2 = Status(2), v3 = Status(3), v4 = Status(4);
    EXPECT_EQ(1, std::count(v0.begin(), v0.end(), '\n')) << v0;
    EXPECT_EQ(0u, v0.find("heap ")) << v0;
    EXPECT_NE(std::string::npos, v0.find(", RSS ")) << v0;
    EXPECT_NE(std::string::npos, v1.find("  kmalloc-112 ")) << v1;
    EXPECT_NE(std::string::npos, v1.find("  large-128K ")) << v1;
    EXPECT_NE(std::string::npos, v1.find("  huge ")) << v1;
    EXPECT_EQ(std::string::npos, v1.find("buddyinfo")) << v1;
    EXPECT_NE(std::string::npos, v2.find("buddyinfo: Node 0, zone slabcache")) << v2;
    EXPECT_NE(std::string::npos, v2.find("heap: ")) << v2;
    EXPECT_EQ(std::string::npos, v2.find("slabcache heap map")) << v2;
    EXPECT_NE(std::string::npos, v3.find("slabcache heap map")) << v3;
    EXPECT_EQ(std::string::npos, v3.find("live blocks:")) << v3;
    char huge[64];
    snprintf(huge, sizeof huge, "  %p %zu bytes, huge blocks", b.huge, size_t(9) << 20);
    EXPECT_NE(std::string::npos, v4.find("live blocks:")) << v4.substr(0, 2000);
    EXPECT_NE(std::string::npos, v4.find(huge)) << huge;
    char small[64];
    snprintf(small, sizeof small, "  %p 112 bytes, cache kmalloc-112", b.small[1]);
    EXPECT_NE(std::string::npos, v4.find(small)) << small;
    slabcache_print_status(nullptr, 4);  // nothing, no crash
}

std::string Capture(void (*fn)(FILE *)) {
    char *buf = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f);
    fclose(f);
    std::string s(buf, len);
    free(buf);
    return s;
}

// The heap map counts a huge block's resident pages with the other blocks', and draws its
// bar below its label.
TEST(State, HeapMapShowsHugeBlocks) {
    const size_t bytes = size_t(9) << 20;
    char *huge = static_cast<char *>(malloc(bytes));
    memset(huge, 1, bytes);  // every page resident
    std::string t = Capture(slabcache_heap_map);
    char head[128];
    snprintf(head, sizeof head, "extent %p size 9216 KiB mmap huge (one dedicated block) 2304 "
             "pages 2304 resident", static_cast<void *>(huge));
    EXPECT_NE(std::string::npos, t.find(head)) << head << "\n" << t.substr(0, 3000);
    size_t at = t.find("KiB in slabs (holding");
    ASSERT_NE(std::string::npos, at) << t;
    size_t other = t.find("KiB of objects, cached ones included), ", at);
    ASSERT_NE(std::string::npos, other) << t;
    size_t kib = strtoul(t.c_str() + other + strlen("KiB of objects, cached ones included), "),
                         nullptr, 10);
    EXPECT_GE(kib, bytes >> 10) << t.substr(at);
    std::string svg = Capture(slabcache_heap_map_svg);
    char label[64];
    snprintf(label, sizeof label, "extent %p 9216 KiB</text>", static_cast<void *>(huge));
    size_t l = svg.find(label);
    ASSERT_NE(std::string::npos, l) << svg.substr(0, 2000);
    size_t ty = svg.rfind("y=\"", l), ry = svg.find("<rect x=\"0\" y=\"", l);
    ASSERT_NE(std::string::npos, ty);
    ASSERT_NE(std::string::npos, ry);
    int text_y = atoi(svg.c_str() + ty + 3), rect_y = atoi(svg.c_str() + ry + 15);
    EXPECT_GT(rect_y, text_y) << "the bar starts above the label's baseline";
    free(huge);
}

TEST(State, MalloptActsOnWhatMaps) {
    EXPECT_EQ(1, mallopt(M_ARENA_MAX, 4));
    EXPECT_EQ(1, mallopt(M_MMAP_THRESHOLD, 1 << 20));
    EXPECT_EQ(0, mallopt(M_TRIM_THRESHOLD, -1));
    EXPECT_EQ(1, mallopt(M_TRIM_THRESHOLD, 1 << 20));
    EXPECT_EQ(0, mallopt(M_MXFAST, 1000));
    EXPECT_EQ(0, mallopt(424242, 1));
    // M_CHECK_ACTION without bit 2: report an invalid free and go on.
    EXPECT_EQ(1, mallopt(M_CHECK_ACTION, 1));
    testing::internal::CaptureStderr();
    static char not_ours[64];
    free(not_ours + 16);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("slabcache: free: invalid free of")) << err;
    EXPECT_EQ(std::string::npos, err.find("aborting")) << err;
    EXPECT_EQ(1, mallopt(M_CHECK_ACTION, 3));
    EXPECT_DEATH(free(not_ours + 16), "aborting");
}

// mallinfo is mallinfo2 in ints (glibc's deprecated form, still called by old programs).
TEST(State, MallinfoIsMallinfo2InInts) {
    Blocks b;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
    struct mallinfo2 m2 = mallinfo2();
    EXPECT_EQ(1, m.hblks);
    EXPECT_EQ(static_cast<size_t>(m.hblkhd), m2.hblkhd);
    EXPECT_GE(m.hblkhd, 9 << 20);
    // Nothing runs between the two calls: the same figures.
    EXPECT_EQ(static_cast<size_t>(m.arena), m2.arena);
    EXPECT_EQ(static_cast<size_t>(m.uordblks), m2.uordblks);
    EXPECT_EQ(static_cast<size_t>(m.fordblks), m2.fordblks);
    EXPECT_EQ(static_cast<size_t>(m.ordblks), m2.ordblks);
    EXPECT_GT(m.arena, 0);
    EXPECT_EQ(m.arena, m.uordblks + m.fordblks);
}

// malloc_trim gives memory back (returned_bytes grows) and says so; with nothing more to
// give it says 0.
TEST(State, MallocTrimGivesFreedMemoryBack) {
    std::vector<void *> v;
    for (int i = 0; i < 4000; i++) v.push_back(malloc(4000));
    for (void *p : v) memset(p, 1, 4000);
    for (void *p : v) free(p);
    size_t before = State()->totals.returned_bytes;
    EXPECT_EQ(1, malloc_trim(0));
    size_t after = State()->totals.returned_bytes;
    EXPECT_GE(after, before + (size_t(4000) * 4000) / 2)
        << "malloc_trim returned " << (after - before) << " bytes of 16 MB freed";
    EXPECT_EQ(0, malloc_trim(0));
}

// mallopt(M_TRIM_THRESHOLD, 0) gives freed page blocks back at the next allocation that
// reaches the page layer, without malloc_trim (decay time 0); any other value restores the
// default decay, which keeps them for a while.
TEST(State, TrimThresholdZeroGivesFreedBlocksBackAtOnce) {
    malloc_trim(0);
    ASSERT_EQ(1, mallopt(M_TRIM_THRESHOLD, 0));
    std::vector<void *> v;
    for (int i = 0; i < 32; i++) {
        v.push_back(malloc(200000));  // large blocks: 256 KiB buddy blocks
        memset(v.back(), 1, 200000);
    }
    size_t before = State()->totals.returned_bytes;
    for (void *p : v) free(p);
    void *again = malloc(200000);  // the page layer's slow path
    size_t after = State()->totals.returned_bytes;
    free(again);
    EXPECT_EQ(1, mallopt(M_TRIM_THRESHOLD, 128 * 1024));
    EXPECT_GE(after, before + size_t(16) * 256 * 1024)
        << "with M_TRIM_THRESHOLD 0, freeing 8 MiB of large blocks returned "
        << (after - before) << " bytes";
}

}  // namespace
