/* SPDX-License-Identifier: MIT */
// tests/debug/debug_test.cc - debugging and misuse detection.
//
// Strategy: each debug option is switched on the two public ways (SLAB_* flags and the
// SLABCACHE_DEBUG environment variable, re-read through debug_reset_options), then the
// misuse it exists for is committed on purpose: the report is checked in the default abort
// mode (death tests, matching the words of the report) and, where the contract says the
// program may go on, in SLABCACHE_ON_ERROR=report mode followed by the validators.  Correct
// use under every option must print nothing.
#include <gtest/gtest.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

extern "C" {
#include "slab/slab.h"
#include "slab/debug.h"
#include "slab/fastpath.h"
#include "slab/internal.h"
}

namespace {

struct Env {
    std::vector<std::string> names;
    Env(std::initializer_list<std::pair<const char *, const char *>> vars) {
        for (auto &v : vars) {
            setenv(v.first, v.second, 1);
            names.push_back(v.first);
        }
        debug_reset_options();
        report_reset_options();
    }
    ~Env() {
        for (auto &n : names) unsetenv(n.c_str());
        debug_reset_options();
        report_reset_options();
    }
};

kmem_cache_stats Stats(kmem_cache *c) {
    kmem_cache_stats st;
    EXPECT_EQ(0, kmem_cache_get_stats(c, &st));
    return st;
}

// Deliberate accesses to freed objects (ASan builds poison free slots of magazine-less caches).
__attribute__((no_sanitize_address, noinline)) unsigned char Peek(const void *p, size_t i) {
    return static_cast<const volatile unsigned char *>(p)[i];
}
__attribute__((no_sanitize_address, noinline)) void Poke(void *p, size_t i, unsigned char v) {
    static_cast<volatile unsigned char *>(p)[i] = v;
}

std::string Hex(const void *p) {
    char buf[32];
    snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

// ------------------------------------------------------------------ options

TEST(DebugOptions, LettersFromTheEnvironmentApplyToEveryCache) {
    Env env({{"SLABCACHE_DEBUG", "FZPU"}});
    kmem_cache *c = kmem_cache_create("opt-all", 40, 0, 0, nullptr);
    ASSERT_NE(nullptr, c);
    EXPECT_EQ(SLAB_DBG_CHECKS | SLAB_DBG_REDZONE | SLAB_DBG_POISON | SLAB_DBG_USER, c->debug & 0x3fu);
    kmem_cache_stats st = Stats(c);
    EXPECT_EQ(0u, st.magazine_size);  // debug caches take the slow path
    EXPECT_EQ(40u, st.object_size);
    EXPECT_GE(st.slot_size, 40u + SLAB_RED_MIN + sizeof(debug_track));
    EXPECT_EQ(40u, c->rz_off);
    EXPECT_GE(c->rz_len, SLAB_RED_MIN);
    kmem_cache_destroy(c);
}

TEST(DebugOptions, NamesLimitTheOptionsAndEmptyLettersMeanAll) {
    {
        Env env({{"SLABCACHE_DEBUG", "Z,inode,dent*"}});
        kmem_cache *a = kmem_cache_create("inode", 64, 0, 0, nullptr);
        kmem_cache *b = kmem_cache_create("dentry", 64, 0, 0, nullptr);
        kmem_cache *o = kmem_cache_create("other", 64, 0, 0, nullptr);
        EXPECT_EQ(SLAB_DBG_REDZONE, a->debug & 0x3fu);
        EXPECT_EQ(SLAB_DBG_REDZONE, b->debug & 0x3fu);
        EXPECT_EQ(0u, o->debug & 0x3fu);
        EXPECT_NE(0u, Stats(o).magazine_size);
        kmem_cache_destroy(a);
        kmem_cache_destroy(b);
        kmem_cache_destroy(o);
    }
    {
        Env env({{"SLABCACHE_DEBUG", ",only"}});
        kmem_cache *a = kmem_cache_create("only", 64, 0, 0, nullptr);
        EXPECT_EQ(SLAB_DBG_CHECKS | SLAB_DBG_REDZONE | SLAB_DBG_POISON | SLAB_DBG_USER,
                  a->debug & 0x3fu);
        kmem_cache_destroy(a);
    }
    {
        Env env({{"SLABCACHE_DEBUG", "-"}});
        kmem_cache *a = kmem_cache_create("off", 64, 0, 0, nullptr);
        EXPECT_EQ(0u, a->debug & 0x3fu);
        kmem_cache_destroy(a);
    }
}

TEST(DebugOptions, FlagsWorkWithoutTheEnvironmentAndCtorDisablesPoison) {
    kmem_cache *a = kmem_cache_create("flags", 24, 0, SLAB_POISON | SLAB_RED_ZONE, nullptr);
    EXPECT_EQ(SLAB_DBG_POISON | SLAB_DBG_REDZONE, a->debug & 0x1f);
    kmem_cache *b = kmem_cache_create("ctor", 24, 0, SLAB_POISON,
                                      [](void *o) { memset(o, 0x42, 24); });
    EXPECT_EQ(0u, b->debug & SLAB_DBG_POISON);
    void *o = kmem_cache_alloc(b, 0);
    EXPECT_EQ(0x42, static_cast<unsigned char *>(o)[23]);  // constructed state kept
    kmem_cache_free(b, o);
    kmem_cache_destroy(a);
    kmem_cache_destroy(b);
}

TEST(DebugOptions, UnknownLetterIsReported) {
    testing::internal::CaptureStderr();
    {
        Env env({{"SLABCACHE_DEBUG", "Zq"}});
        kmem_cache *a = kmem_cache_create("unknown", 64, 0, 0, nullptr);
        EXPECT_EQ(SLAB_DBG_REDZONE, a->debug & 0x3fu);
        kmem_cache_destroy(a);
    }
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("slabcache: SLABCACHE_DEBUG: unknown option 'q'"))
        << err;
}

// ------------------------------------------------------------------ poison

TEST(DebugPoisonDeathTest, UseAfterFreeIsFoundAtTheNextAlloc) {
    Env env({{"SLABCACHE_DEBUG", "PU,uaf"}});
    kmem_cache *c = kmem_cache_create("uaf", 32, 0, 0, nullptr);
    auto *p = static_cast<unsigned char *>(kmem_cache_alloc(c, 0));
    kmem_cache_free(c, p);
    EXPECT_EQ(0x6b, Peek(p, 0));
    EXPECT_EQ(0xa5, Peek(p, 31));
    Poke(p, 5, 0);  // write after free
    EXPECT_DEATH(kmem_cache_alloc(c, 0),
                 "slabcache: use after free in cache uaf: object 0x[0-9a-f]+ was modified after "
                 "it was freed, bytes 5..5 \\(0x6b expected, found 0x0 at offset 5\\).*\n"
                 "slabcache:   last allocated by 0x[0-9a-f]+.*thread [0-9]+.*\n"
                 "slabcache:   last freed by 0x[0-9a-f]+");
    // validate finds it too, without allocating
    testing::internal::CaptureStderr();
    EXPECT_EQ(-1, kmem_cache_validate(c));
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("validate uaf: use after free: free object " + Hex(p) +
                                          " modified at offset 5..5"))
        << err;
    Poke(p, 5, 0x6b);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
}

TEST(DebugPoison, ReportModeHandsTheObjectOutAndGoesOn) {
    Env env({{"SLABCACHE_DEBUG", "P,uaf2"}, {"SLABCACHE_ON_ERROR", "report"}});
    kmem_cache *c = kmem_cache_create("uaf2", 16, 0, 0, nullptr);
    auto *p = static_cast<unsigned char *>(kmem_cache_alloc(c, 0));
    kmem_cache_free(c, p);
    Poke(p, 15, 1);
    testing::internal::CaptureStderr();
    void *q = kmem_cache_alloc(c, 0);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(p, q);
    EXPECT_NE(std::string::npos, err.find("use after free in cache uaf2")) << err;
    EXPECT_NE(std::string::npos, err.find("bytes 15..15 (0xa5 expected, found 0x1")) << err;
    kmem_cache_free(c, q);
    EXPECT_EQ(0, slabcache_validate());
    kmem_cache_destroy(c);
}

// ------------------------------------------------------------------ red zones

TEST(DebugRedZoneDeathTest, OverflowIsFoundAtFree) {
    kmem_cache *c = kmem_cache_create("rz", 20, 0, SLAB_RED_ZONE, nullptr);
    auto *p = static_cast<unsigned char *>(kmem_cache_alloc(c, 0));
    p[20] = 'x';
    p[22] = 'y';
    EXPECT_DEATH(kmem_cache_free(c, p),
                 "slabcache: red zone overwritten in cache rz: allocated object 0x[0-9a-f]+ "
                 "\\(size 20\\), red zone bytes 0..2 past its end changed \\(0xbb expected, "
                 "found 0x78\\); found at free by 0x");
    testing::internal::CaptureStderr();
    EXPECT_EQ(-1, kmem_cache_validate(c));
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos,
              err.find("validate rz: red zone overwritten: allocated object " + Hex(p)))
        << err;
    p[20] = p[22] = 0xbb;
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_free(c, p);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
}

TEST(DebugRedZone, ReportModeRestoresTheZoneAndFrees) {
    Env env({{"SLABCACHE_ON_ERROR", "report"}});
    kmem_cache *c = kmem_cache_create("rz2", 64, 0, SLAB_RED_ZONE, nullptr);
    auto *p = static_cast<unsigned char *>(kmem_cache_alloc(c, 0));
    p[64 + 7] = 0;
    testing::internal::CaptureStderr();
    kmem_cache_free(c, p);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("red zone bytes 7..7 past its end")) << err;
    EXPECT_EQ(0, kmem_cache_validate(c));
    EXPECT_EQ(0u, Stats(c).active_objects);
    kmem_cache_destroy(c);
}

TEST(DebugRedZoneDeathTest, WriteToAFreeObjectsZoneIsFoundAtAlloc) {
    kmem_cache *c = kmem_cache_create("rz3", 8, 0, SLAB_RED_ZONE, nullptr);
    auto *p = static_cast<unsigned char *>(kmem_cache_alloc(c, 0));
    kmem_cache_free(c, p);
    Poke(p, 9, 0);
    EXPECT_DEATH(kmem_cache_alloc(c, 0),
                 "red zone overwritten in cache rz3: free object .*0xcc expected, found 0x0\\); "
                 "found at alloc");
    Poke(p, 9, 0xcc);
    kmem_cache_destroy(c);
}

// ------------------------------------------------------------------ misuse with debug on

TEST(DebugMisuseDeathTest, DoubleFreeDeepInWhatWouldBeAMagazineIsCaughtWithF) {
    kmem_cache *c = kmem_cache_create("df", 64, 0, SLAB_CONSISTENCY_CHECKS | SLAB_STORE_USER,
                                      nullptr);
    void *a = kmem_cache_alloc(c, 0);
    void *b = kmem_cache_alloc(c, 0);
    kmem_cache_free(c, a);
    kmem_cache_free(c, b);
    EXPECT_DEATH(kmem_cache_free(c, a),
                 "slabcache: kmem_cache_free: double free of 0x[0-9a-f]+ in cache df \\(object "
                 "is already free\\)(.|\n)*last freed by");
    kmem_cache_destroy(c);
}

TEST(DebugMisuseDeathTest, DefaultModeReportsEachMisuseAndAborts) {
    kmem_cache *c = kmem_cache_create("mis", 64, 0, 0, nullptr);
    kmem_cache *d = kmem_cache_create("other", 64, 0, 0, nullptr);
    auto *p = static_cast<char *>(kmem_cache_alloc(c, 0));
    static char not_ours[64];
    EXPECT_DEATH(kmem_cache_free(c, p + 8), "slabcache: kmem_cache_free: invalid free .*cache mis");
    EXPECT_DEATH(kmem_cache_free(c, not_ours), "invalid free \\(pointer not from slabcache\\)");
    EXPECT_DEATH(kmem_cache_free(d, p), "wrong cache: 0x[0-9a-f]+ belongs to cache mis, freed to "
                                        "cache other");
    kmem_cache_free(c, p);
    EXPECT_DEATH(
        {
            kmem_cache_free(c, p);
            kmem_cache_shrink(c);
            kmem_cache_free(c, p);
        },
        "double free of 0x[0-9a-f]+ in cache mis");
    kmem_cache_destroy(c);
    kmem_cache_destroy(d);
}

// ------------------------------------------------------------------ U and T

TEST(DebugUser, TrackRecordsSitesThreadsAndTimes) {
    kmem_cache *c = kmem_cache_create("track", 48, 0, SLAB_STORE_USER, nullptr);
    void *p = kmem_cache_alloc(c, 0);
    const debug_track *t = debug_track_of(c, p);
    EXPECT_NE(nullptr, t->alloc_site);
    EXPECT_NE(0u, t->alloc_tid);
    EXPECT_NE(0u, t->alloc_ns);
    EXPECT_EQ(nullptr, t->free_site);
    kmem_cache_free(c, p);
    EXPECT_NE(nullptr, t->free_site);
    EXPECT_GE(t->free_ns, t->alloc_ns);
    kmem_cache_destroy(c);
}

TEST(DebugTrace, OneLinePerAllocAndFree) {
    Env env({{"SLABCACHE_DEBUG", "T,traced"}});
    kmem_cache *c = kmem_cache_create("traced", 16, 0, 0, nullptr);
    testing::internal::CaptureStderr();
    void *p = kmem_cache_alloc(c, 0);
    kmem_cache_free(c, p);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("slabcache: trace traced alloc " + Hex(p) + " size 16 by 0x"))
        << err;
    EXPECT_NE(std::string::npos, err.find("slabcache: trace traced free " + Hex(p))) << err;
    kmem_cache_destroy(c);
}

// ------------------------------------------------------------------ correct use is silent

TEST(DebugSilence, CorrectUseUnderEveryOptionPrintsNothing) {
    Env env({{"SLABCACHE_DEBUG", "FZPU"}});
    testing::internal::CaptureStderr();
    kmem_cache *c = kmem_cache_create("quiet", 100, 0, 0, nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 3000; i++) {
        void *p = kmem_cache_alloc(c, i % 2 ? KM_ZERO : 0);
        memset(p, i, 100);
        v.push_back(p);
        if (i % 3 == 0) {
            kmem_cache_free(c, v.back());
            v.pop_back();
        }
    }
    void *bulk[50];
    ASSERT_EQ(50u, kmem_cache_alloc_bulk(c, 0, 50, bulk));
    kmem_cache_free_bulk(c, 50, bulk);
    EXPECT_EQ(0, kmem_cache_validate(c));
    for (void *p : v) kmem_cache_free(c, p);
    EXPECT_EQ(0, slabcache_validate());
    EXPECT_EQ(0u, slabcache_leak_report());
    kmem_cache_shrink(c);
    kmem_cache_destroy(c);
    EXPECT_EQ("", testing::internal::GetCapturedStderr());
}

// ------------------------------------------------------------------ leaks

TEST(DebugLeaks, GroupedBySiteSkippingMagazinesAndExpectedLeaks) {
    kmem_cache *u = kmem_cache_create("leaky-u", 24, 0, SLAB_STORE_USER, nullptr);
    kmem_cache *m = kmem_cache_create("leaky-m", 40, 0, 0, nullptr);  // magazines
    std::vector<void *> keep;
    for (int i = 0; i < 5; i++) keep.push_back(kmem_cache_alloc(u, 0));
    void *expected = kmem_cache_alloc(u, 0);
    slabcache_register_expected_leak(expected);
    void *cached = kmem_cache_alloc(m, 0);
    kmem_cache_free(m, cached);  // sits in this thread's magazine: not a leak
    void *mleak = kmem_cache_alloc(m, 0);
    testing::internal::CaptureStderr();
    size_t n = slabcache_leak_report();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(6u, n) << err;
    EXPECT_NE(std::string::npos,
              err.find("slabcache: leak report: 6 objects (160 bytes) still allocated, in 2 "
                       "groups (not counted: objects cached in magazines, 1 expected leaks)"))
        << err;
    EXPECT_NE(std::string::npos,
              err.find("slabcache:   5 objects (120 bytes) of cache leaky-u (24 bytes each) "
                       "allocated by 0x"))
        << err;
    EXPECT_NE(std::string::npos, err.find("1 objects (40 bytes) of cache leaky-m (40 bytes "
                                          "each); first: " + Hex(mleak)))
        << err;
    EXPECT_EQ(std::string::npos, err.find(Hex(expected))) << err;
    slabcache_unregister_expected_leak(expected);
    for (void *p : keep) kmem_cache_free(u, p);
    kmem_cache_free(u, expected);
    kmem_cache_free(m, mleak);
    testing::internal::CaptureStderr();
    EXPECT_EQ(0u, slabcache_leak_report());
    EXPECT_EQ("", testing::internal::GetCapturedStderr());
    kmem_cache_destroy(u);
    kmem_cache_destroy(m);
}

TEST(DebugLeaksDeathTest, AtExitReportAndExitCode) {
    EXPECT_EXIT(
        {
            setenv("SLABCACHE_LEAKS", "exit", 1);
            kmem_cache *c = kmem_cache_create("exit-leak", 32, 0, 0, nullptr);
            kmem_cache_alloc(c, 0);
            exit(0);
        },
        testing::ExitedWithCode(23), "slabcache: leak report: 1 objects \\(32 bytes\\)");
    EXPECT_EXIT(
        {
            setenv("SLABCACHE_LEAKS", "1", 1);
            setenv("SLABCACHE_LEAK_EXIT_CODE", "7", 1);
            kmem_cache *c = kmem_cache_create("exit-leak", 32, 0, 0, nullptr);
            kmem_cache_alloc(c, 0);
            exit(0);
        },
        testing::ExitedWithCode(7), "cache exit-leak");
    EXPECT_EXIT(
        {
            setenv("SLABCACHE_LEAKS", "exit", 1);
            kmem_cache *c = kmem_cache_create("no-leak", 32, 0, 0, nullptr);
            kmem_cache_free(c, kmem_cache_alloc(c, 0));
            fprintf(stderr, "done\n");
            exit(0);
        },
        testing::ExitedWithCode(0), "^done\n$");
}

// ------------------------------------------------------------------ fault injection

TEST(DebugFail, EveryNthAllocationOfTheNamedCacheFails) {
    Env env({{"SLABCACHE_FAIL", "every=3,cache=flaky"}});
    kmem_cache *c = kmem_cache_create("flaky", 32, 0, 0, nullptr);
    kmem_cache *o = kmem_cache_create("steady", 32, 0, 0, nullptr);
    EXPECT_EQ(0u, Stats(c).magazine_size);
    EXPECT_NE(0u, Stats(o).magazine_size);
    std::vector<void *> got;
    int failed = 0;
    for (int i = 1; i <= 30; i++) {
        errno = 0;
        void *p = kmem_cache_alloc(c, 0);
        if (!p) {
            EXPECT_EQ(ENOMEM, errno);
            EXPECT_EQ(0, i % 3) << i;
            failed++;
        } else {
            got.push_back(p);
        }
        void *q = kmem_cache_alloc(o, 0);
        ASSERT_NE(nullptr, q);
        kmem_cache_free(o, q);
    }
    EXPECT_EQ(10, failed);
    EXPECT_EQ(10u, Stats(c).alloc_failures);
    EXPECT_EQ(0u, Stats(o).alloc_failures);
    for (void *p : got) kmem_cache_free(c, p);
    void *objs[4];
    size_t bulk_ok = 0;
    for (int i = 0; i < 3; i++) {  // one of three bulk calls fails, all or nothing
        size_t n = kmem_cache_alloc_bulk(c, 0, 4, objs);
        if (n) {
            bulk_ok++;
            kmem_cache_free_bulk(c, n, objs);
        }
    }
    EXPECT_EQ(2u, bulk_ok);
    EXPECT_EQ(0, kmem_cache_validate(c));
    kmem_cache_destroy(c);
    kmem_cache_destroy(o);
}

TEST(DebugFail, ProbabilityWithSeedIsRepeatable) {
    auto run = [] {
        Env env({{"SLABCACHE_FAIL", "prob=0.25,seed=42"}});
        kmem_cache *c = kmem_cache_create("prob", 32, 0, 0, nullptr);
        std::string pattern;
        for (int i = 0; i < 400; i++) {
            void *p = kmem_cache_alloc(c, 0);
            pattern += p ? '.' : 'x';
            if (p) kmem_cache_free(c, p);
        }
        kmem_cache_destroy(c);
        return pattern;
    };
    std::string a = run(), b = run();
    EXPECT_EQ(a, b);
    size_t fails = std::count(a.begin(), a.end(), 'x');
    EXPECT_GT(fails, 60u);
    EXPECT_LT(fails, 140u);
}

TEST(DebugFail, MalformedValueIsReportedAndIgnored) {
    testing::internal::CaptureStderr();
    Env env({{"SLABCACHE_FAIL", "sometimes"}});
    kmem_cache *c = kmem_cache_create("nofail", 32, 0, 0, nullptr);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(std::string::npos, err.find("slabcache: SLABCACHE_FAIL=sometimes: expected")) << err;
    EXPECT_EQ(0u, c->debug & SLAB_DBG_FAIL);
    kmem_cache_destroy(c);
}

// ------------------------------------------------------------------ heap map and dump

// The text map counts each block's resident pages (mincore): a 256 KiB block purged whole,
// then written in three pages, has three; the summary line adds it to "other blocks".
TEST(DebugMap, TextMapCountsResidentPagesPerBlock) {
    char *p = static_cast<char *>(buddy_alloc(6, BUDDY_TAG_LARGE));
    ASSERT_NE(nullptr, p);
    ASSERT_EQ(0, heap_purge(p, 256 << 10));
    p[0] = 1;
    p[10 * 4096] = 1;
    p[20 * 4096] = 1;
    char *text = nullptr;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    slabcache_heap_map(f);
    fclose(f);
    std::string t(text, tl);
    free(text);
    char head[64];
    snprintf(head, sizeof head, "  %p   64 pages    3 resident  large block", (void *)p);
    EXPECT_NE(std::string::npos, t.find(head)) << head << "\n" << t;
    size_t at = t.find("\nresident: ");
    ASSERT_NE(std::string::npos, at) << t;
    unsigned long slab_kib = 0, obj_kib = 0, other_kib = 0, free_kib = 0;
    ASSERT_EQ(4, sscanf(t.c_str() + at + 1,
                        "resident: %lu KiB in slabs (holding %lu KiB of objects, cached ones "
                        "included), %lu KiB in other blocks, %lu KiB in free blocks",
                        &slab_kib, &obj_kib, &other_kib, &free_kib))
        << t.substr(at);
    EXPECT_GE(other_kib, 12u);
    ASSERT_EQ(0, buddy_free(p));
}

TEST(DebugMap, TextAndSvgShowTheCachesAndDumpShowsBytes) {
    kmem_cache *c = kmem_cache_create("mapped", 200, 0, 0, nullptr);
    std::vector<void *> v;
    for (int i = 0; i < 100; i++) v.push_back(kmem_cache_alloc(c, 0));
    char *text = nullptr, *svg = nullptr, *dump = nullptr;
    size_t tl = 0, sl = 0, dl = 0;
    FILE *f = open_memstream(&text, &tl);
    slabcache_heap_map(f);
    fclose(f);
    std::string t(text, tl);
    EXPECT_NE(std::string::npos, t.find("extent 0x")) << t;
    EXPECT_NE(std::string::npos, t.find("slab of cache mapped: ")) << t;
    EXPECT_NE(std::string::npos, t.find(" resident  free")) << t;
    EXPECT_NE(std::string::npos, t.find("\nresident: ")) << t;
    f = open_memstream(&svg, &sl);
    slabcache_heap_map_svg(f);
    fclose(f);
    std::string s(svg, sl);
    EXPECT_EQ(0u, s.find("<svg")) << s.substr(0, 200);
    EXPECT_NE(std::string::npos, s.find("slab: mapped"));
    EXPECT_NE(std::string::npos, s.find("</svg>"));
    memcpy(v[0], "hello, slabcache", 16);
    f = open_memstream(&dump, &dl);
    slabcache_dump(f, v[0], 32);
    fclose(f);
    std::string d(dump, dl);
    EXPECT_NE(std::string::npos, d.find("cache mapped, slot")) << d;
    EXPECT_NE(std::string::npos, d.find("68 65 6c 6c 6f 2c 20 73  6c 61 62 63 61 63 68 65 "
                                        "|hello, slabcache|"))
        << d;
    free(text);
    free(svg);
    free(dump);
    for (void *p : v) kmem_cache_free(c, p);
    kmem_cache_destroy(c);
}

#if defined(__SANITIZE_ADDRESS__)
TEST(DebugAsanDeathTest, FreeSlotsOfMagazineLessCachesArePoisoned) {
    kmem_cache *c = kmem_cache_create("asan", 32, 0, SLAB_NO_MAGAZINE, nullptr);
    auto *p = static_cast<volatile char *>(kmem_cache_alloc(c, 0));
    p[0] = 1;
    kmem_cache_free(c, const_cast<char *>(p));
    EXPECT_DEATH(p[3] = 2, "use-after-poison");
    kmem_cache_destroy(c);
}
#endif

}  // namespace
