/* SPDX-License-Identifier: MIT */
// tests/malloc/malloc_test.cc - the drop-in malloc (slab/malloc.c) as a program sees it.
//
// This binary links //slab:libslabcache.so, which comes before libc in the symbol search
// order, so every malloc in the process - the test's, libstdc++'s, glibc's own (stdio, dlopen,
// pthread_create, dynamic TLS) - is slabcache's.  Tagged no_asan/no_tsan: sanitizers replace
// malloc themselves.
//
// Strategy: first prove the override is in effect (malloc resolves into libslabcache.so and
// its blocks are known to ksize); then glibc semantics function by function at the edges
// (sizes 0, 1, SIZE_MAX, every class boundary, every power-of-two alignment up to 1 MiB,
// errno rules); then a random operation sequence over the whole malloc family against a model
// with slabcache_validate(); then process-level behaviour: threads that exit, fork with live
// threads, dlopen of a library with dynamic TLS, invalid frees, SLABCACHE_STATS at exit.
#include <gtest/gtest.h>

#include "tests/common/pattern.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "slab/kmalloc.h"
#include "slab/slab.h"

// The tests keep using a pointer after realloc returned it in place or failed, and free a
// block twice on purpose (death test): gcc cannot know those are fine here.
#pragma GCC diagnostic ignored "-Wuse-after-free"

namespace {

bool Aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }


// Defeat the compiler's knowledge of malloc semantics (it may elide malloc/free pairs or
// fold malloc(SIZE_MAX) to NULL).
void *volatile g_sink;
template <typename T>
T Opaque(T v) {
    asm volatile("" : "+r"(v));
    return v;
}

std::string LibraryPath() {
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (!sym || !dladdr(sym, &info) || !info.dli_fname) return "";
    return info.dli_fname;
}

class MallocTest : public ::testing::Test {
  protected:
    void TearDown() override { EXPECT_EQ(slabcache_validate(), 0); }
};

// ---------------------------------------------------------------- the override is live

TEST_F(MallocTest, MallocIsSlabcache) {
    EXPECT_NE(LibraryPath().find("libslabcache.so"), std::string::npos) << LibraryPath();
    void *p = malloc(100);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(ksize(p), 112u) << "malloc(100) comes from kmalloc-112";
    EXPECT_EQ(malloc_usable_size(p), 112u);
    free(p);
    // C++ allocations go through it too.
    std::string *s = new std::string(1000, 'x');
    EXPECT_GE(ksize(s), sizeof(std::string));
    EXPECT_GE(ksize(s->data()), 1001u);
    delete s;
}

// ---------------------------------------------------------------- malloc / free / usable size

TEST_F(MallocTest, EverySizeIs16ByteAlignedWithExactUsableSize) {
    std::vector<void *> v;
    std::vector<size_t> sizes;
    for (size_t s = 0; s <= 4200; s++) sizes.push_back(s);
    for (size_t s = 4096; s <= ((size_t)9 << 20); s = s * 5 / 4) {
        sizes.push_back(s - 1);
        sizes.push_back(s);
        sizes.push_back(s + 1);
    }
    for (size_t s : sizes) {
        void *p = malloc(Opaque(s));
        ASSERT_NE(p, nullptr) << s;
        ASSERT_TRUE(Aligned(p, 16)) << s;
        size_t us = malloc_usable_size(p);
        ASSERT_GE(us, s ? s : 1) << s;
        ASSERT_EQ(us, ksize(p));
        if (s <= 128) {
            ASSERT_EQ(us, s ? (s + 15) / 16 * 16 : 16u) << s;
        }
        Fill(p, us, (uint32_t)s);  // the whole usable size is writable
        v.push_back(p);
    }
    for (size_t i = 0; i < v.size(); i++) {
        ASSERT_TRUE(Check(v[i], malloc_usable_size(v[i]), (uint32_t)sizes[i])) << sizes[i];
        free(v[i]);
    }
    EXPECT_EQ(malloc_usable_size(nullptr), 0u);
    free(nullptr);
}

TEST_F(MallocTest, MallocZeroIsUniqueAndFreeable) {
    std::vector<void *> v;
    for (int i = 0; i < 100; i++) {
        void *p = malloc(Opaque((size_t)0));
        ASSERT_NE(p, nullptr);
        v.push_back(p);
    }
    std::sort(v.begin(), v.end());
    EXPECT_EQ(std::unique(v.begin(), v.end()), v.end());
    for (void *p : v) free(p);
}

TEST_F(MallocTest, ImpossibleSizesFailWithEnomem) {
    for (size_t s : {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2 + 1, (size_t)1 << 62}) {
        errno = 0;
        g_sink = malloc(Opaque(s));
        EXPECT_EQ(g_sink, nullptr) << s;
        EXPECT_EQ(errno, ENOMEM) << s;
        errno = 0;
        g_sink = calloc(1, Opaque(s));
        EXPECT_EQ(g_sink, nullptr);
        EXPECT_EQ(errno, ENOMEM);
        void *p = malloc(10);
        errno = 0;
        EXPECT_EQ(realloc(p, Opaque(s)), nullptr);
        EXPECT_EQ(errno, ENOMEM);
        free(p);  // still ours after the failed realloc
    }
}

// ---------------------------------------------------------------- calloc

TEST_F(MallocTest, CallocZeroesAndDetectsOverflow) {
    for (size_t s : {1ul, 13ul, 100ul, 5000ul, 50000ul, 300000ul, (size_t)6 << 20}) {
        for (int i = 0; i < 3; i++) {  // dirty the classes first
            void *d = malloc(Opaque(s));
            memset(d, 0xab, malloc_usable_size(d));
            free(d);
        }
        unsigned char *p = static_cast<unsigned char *>(calloc(Opaque(s), 1));
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(Aligned(p, 16));
        for (size_t i = 0; i < s; i++) ASSERT_EQ(p[i], 0) << s;
        free(p);
    }
    errno = 0;
    EXPECT_EQ(calloc(Opaque(SIZE_MAX / 3), 4), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(calloc(Opaque((size_t)1 << 32), (size_t)1 << 32), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    void *z = calloc(Opaque((size_t)0), 0);
    EXPECT_NE(z, nullptr);
    free(z);
}

// ---------------------------------------------------------------- realloc

TEST_F(MallocTest, ReallocNullIsMallocAndZeroFrees) {
    void *p = realloc(nullptr, Opaque((size_t)40));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(Aligned(p, 16));
    EXPECT_EQ(malloc_usable_size(p), 48u);
    EXPECT_EQ(realloc(p, Opaque((size_t)0)), nullptr);  // glibc: frees p, returns NULL
    // p is free now: freeing it again is a double free.  Its slot must be reusable instead.
    void *q = malloc(40);
    EXPECT_EQ(q, p) << "the freed slot is on top of this thread's magazine";
    free(q);
}

TEST_F(MallocTest, ReallocAcrossEveryClassBoundary) {
    std::vector<size_t> sizes;
    for (size_t s = 16; s <= 128; s += 16) sizes.push_back(s + 1);
    for (size_t base = 128; base < 32768; base *= 2)
        for (size_t k = 1; k <= 8; k++) sizes.push_back(base + k * base / 8 + 1);
    for (unsigned o = 4; o <= 11; o++) sizes.push_back(((size_t)4096 << o) + 1);
    void *p = malloc(1);
    Fill(p, 1, 5);
    size_t have = 1;
    for (size_t s : sizes) {
        void *q = realloc(p, Opaque(s));
        ASSERT_NE(q, nullptr) << s;
        ASSERT_TRUE(Aligned(q, 16));
        ASSERT_TRUE(Check(q, have, 5)) << s;
        ASSERT_GE(malloc_usable_size(q), s);
        Fill(q, s, 5);
        have = s;
        p = q;
    }
    for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
        void *q = realloc(p, Opaque(*it - 2));
        ASSERT_NE(q, nullptr);
        ASSERT_TRUE(Aligned(q, 16));
        ASSERT_TRUE(Check(q, *it - 2, 5)) << *it;
        p = q;
    }
    free(p);
}

TEST_F(MallocTest, ReallocGrowsInPlaceWithinTheClassAndLeavesHeadroomWhenMoving) {
    char *p = static_cast<char *>(malloc(Opaque((size_t)200)));  // kmalloc-208
    EXPECT_EQ(realloc(p, Opaque((size_t)208)), p);
    char *q = static_cast<char *>(realloc(p, Opaque((size_t)209)));
    ASSERT_NE(q, nullptr);
    EXPECT_GE(malloc_usable_size(q), 260u) << "moved blocks get 1.25x headroom";
    EXPECT_EQ(realloc(q, Opaque((size_t)255)), q);
    free(q);
}

TEST_F(MallocTest, ReallocarrayChecksOverflow) {
    void *p = reallocarray(nullptr, 10, 10);
    ASSERT_NE(p, nullptr);
    Fill(p, 100, 1);
    errno = 0;
    EXPECT_EQ(reallocarray(p, Opaque(SIZE_MAX / 2), 3), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_TRUE(Check(p, 100, 1)) << "p untouched on overflow";
    p = reallocarray(p, 20, 10);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(Check(p, 100, 1));
    free(p);
}

// ---------------------------------------------------------------- aligned allocation

TEST_F(MallocTest, EveryPowerOfTwoAlignmentUpTo1MiB) {
    for (size_t a = 1; a <= ((size_t)1 << 20); a <<= 1) {
        for (size_t s : {(size_t)0, (size_t)1, (size_t)17, a - 1, a, a + 1, (size_t)50000,
                         (size_t)5 << 20}) {
            void *p = nullptr;
            if (a >= sizeof(void *)) {
                ASSERT_EQ(posix_memalign(&p, a, s), 0) << a << " " << s;
                ASSERT_TRUE(Aligned(p, a)) << "posix_memalign " << a << " " << s;
                ASSERT_GE(malloc_usable_size(p), s);
                Fill(p, s, 2);
                free(p);
            }
            p = aligned_alloc(a, s);
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(Aligned(p, a < 16 ? 16 : a)) << "aligned_alloc " << a << " " << s;
            ASSERT_GE(malloc_usable_size(p), s);
            Fill(p, s, 3);
            free(p);
            p = memalign(a, s);
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(Aligned(p, a < 16 ? 16 : a)) << "memalign " << a << " " << s;
            ASSERT_GE(malloc_usable_size(p), s);
            free(p);
        }
    }
}

TEST_F(MallocTest, BadAlignmentsFollowGlibc) {
    void *p = reinterpret_cast<void *>(0x1234);
    for (size_t a : {(size_t)0, (size_t)4, (size_t)12, (size_t)24, (size_t)48, (size_t)4100}) {
        errno = 1234;
        EXPECT_EQ(posix_memalign(&p, a, 10), EINVAL) << a;
        EXPECT_EQ(errno, 1234) << "posix_memalign must not set errno";
        EXPECT_EQ(p, reinterpret_cast<void *>(0x1234)) << "output untouched on failure";
    }
    for (size_t a : {(size_t)0, (size_t)3, (size_t)24, (size_t)100}) {
        errno = 0;
        EXPECT_EQ(aligned_alloc(a, 10), nullptr) << a;
        EXPECT_EQ(errno, EINVAL) << a;
    }
    errno = 0;
    EXPECT_EQ(memalign(SIZE_MAX / 2 + 2, 10), nullptr);
    EXPECT_EQ(errno, EINVAL);
    // glibc's memalign rounds a non-power-of-two alignment up.
    void *m = memalign(24, 100);
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(Aligned(m, 32));
    free(m);
    errno = 0;
    EXPECT_EQ(posix_memalign(&p, 64, Opaque(SIZE_MAX - 10)), ENOMEM);
}

TEST_F(MallocTest, VallocAndPvalloc) {
    void *v = valloc(10);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(Aligned(v, 4096));
    EXPECT_GE(malloc_usable_size(v), 10u);
    free(v);
    void *pv = pvalloc(4097);
    ASSERT_NE(pv, nullptr);
    EXPECT_TRUE(Aligned(pv, 4096));
    EXPECT_GE(malloc_usable_size(pv), 8192u);
    free(pv);
    void *p0 = pvalloc(0);
    ASSERT_NE(p0, nullptr);
    EXPECT_GE(malloc_usable_size(p0), 4096u);
    free(p0);
    errno = 0;
    EXPECT_EQ(pvalloc(Opaque(SIZE_MAX - 100)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
}

// ---------------------------------------------------------------- random model

TEST_F(MallocTest, RandomOperationsAgainstAModel) {
    std::mt19937_64 rng(42);
    struct Block {
        size_t size;
        uint32_t seed;
    };
    std::map<uintptr_t, Block> live;
    auto rsize = [&]() -> size_t {
        unsigned r = rng() % 1000;
        if (r < 700) return rng() % 257;
        if (r < 950) return rng() % 8193;
        if (r < 995) return rng() % (1 << 20);
        return rng() % (10 << 20);
    };
    for (int i = 0; i < 40000; i++) {
        unsigned op = rng() % 12;
        if (op < 6 || live.empty()) {
            size_t s = rsize();
            void *p;
            size_t align = 16;
            switch (op % 4) {
            case 0:
                p = malloc(s);
                break;
            case 1:
                p = calloc(1, s);
                for (size_t k = 0; p && k < s; k++) {
                    ASSERT_EQ(static_cast<unsigned char *>(p)[k], 0);
                }
                break;
            case 2:
                align = (size_t)1 << (rng() % 21);
                p = aligned_alloc(align, s);
                break;
            default:
                align = (size_t)1 << (3 + rng() % 18);
                p = nullptr;
                ASSERT_EQ(posix_memalign(&p, align, s), 0);
                break;
            }
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(Aligned(p, align < 16 ? 16 : align));
            size_t n = s ? s : 1;
            ASSERT_GE(malloc_usable_size(p), n);
            auto it = live.lower_bound((uintptr_t)p);
            if (it != live.end()) {
                ASSERT_GE(it->first, (uintptr_t)p + n);
            }
            uint32_t sd = (uint32_t)rng();
            Fill(p, n, sd);
            live[(uintptr_t)p] = Block{n, sd};
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            void *p = (void *)it->first;
            Block b = it->second;
            ASSERT_TRUE(Check(p, b.size, b.seed));
            live.erase(it);
            if (op < 9) {
                free(p);
            } else {
                size_t s = rsize() + 1;
                void *q = realloc(p, s);
                ASSERT_NE(q, nullptr);
                ASSERT_TRUE(Aligned(q, 16));
                ASSERT_TRUE(Check(q, b.size < s ? b.size : s, b.seed));
                Fill(q, s, b.seed);
                live[(uintptr_t)q] = Block{s, b.seed};
            }
        }
        if (i % 1000 == 0) {
            ASSERT_EQ(slabcache_validate(), 0) << i;
        }
    }
    for (auto &kv : live) free((void *)kv.first);
}

// ---------------------------------------------------------------- process behaviour

TEST_F(MallocTest, ThreadsComeAndGo) {
    std::atomic<int> bad{0};
    for (int round = 0; round < 20; round++) {
        std::vector<std::thread> ts;
        std::vector<void *> out(8);
        for (int t = 0; t < 8; t++) {
            ts.emplace_back([&, t] {
                std::vector<std::string> strs;
                for (int i = 0; i < 2000; i++) strs.emplace_back(i % 300, (char)('a' + t));
                for (auto &s : strs)
                    if (!s.empty() && s[0] != (char)('a' + t)) bad++;
                out[t] = malloc(1000);  // freed by the main thread after this one exits
                memset(out[t], t, 1000);
            });
        }
        for (auto &th : ts) th.join();
        for (int t = 0; t < 8; t++) {
            if (static_cast<unsigned char *>(out[t])[999] != t) bad++;
            free(out[t]);
        }
    }
    EXPECT_EQ(bad.load(), 0);
}

// glibc zeroes a thread's whole static TLS at every pthread_create (and copies its
// initialised part); on a fresh stack each page of it is a page fault, paid by every thread
// whether it allocates or not.  So the library keeps its per-thread state in tables it
// reuses, and its own static TLS (the PT_TLS segment of libslabcache.so) under a page.
int FindSlabcacheTls(struct dl_phdr_info *info, size_t, void *arg) {
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libslabcache")) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS)
            *static_cast<size_t *>(arg) = info->dlpi_phdr[i].p_memsz;
    return 1;
}

TEST_F(MallocTest, StaticTlsStaysUnderAPage) {
    size_t tls = SIZE_MAX;
    ASSERT_EQ(dl_iterate_phdr(FindSlabcacheTls, &tls), 1) << "libslabcache.so is not loaded";
    ASSERT_NE(tls, SIZE_MAX) << "no PT_TLS segment";
    EXPECT_LT(tls, (size_t)4096);
}

TEST_F(MallocTest, ForkWhileOtherThreadsAllocate) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; t++)
        ts.emplace_back([&] {
            std::mt19937 rng(t);
            while (!stop.load()) {
                void *p = malloc(rng() % 5000);
                g_sink = p;
                free(p);
            }
        });
    for (int f = 0; f < 20; f++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            std::vector<std::string> v;
            for (int i = 0; i < 10000; i++) v.emplace_back(i % 100, 'z');
            std::thread th([] { free(malloc(100)); });
            th.join();
            _exit(slabcache_validate() == 0 ? 0 : 3);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status)) << "child died, status " << status;
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    stop = true;
    for (auto &th : ts) th.join();
}

std::string PluginPath() {
    const char *srcdir = getenv("TEST_SRCDIR");
    if (srcdir) {
        std::string p = std::string(srcdir) + "/slabcache/tests/malloc/libtls_plugin.so";
        if (access(p.c_str(), R_OK) == 0) return p;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "";
    exe[n] = '\0';
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));
    return dir + "/libtls_plugin.so";
}

TEST_F(MallocTest, DlopenedLibraryWithDynamicTls) {
    std::string path = PluginPath();
    void *h = dlopen(path.c_str(), RTLD_NOW);
    ASSERT_NE(h, nullptr) << dlerror();
    typedef long (*fn_t)(long);
    fn_t bump = reinterpret_cast<fn_t>(dlsym(h, "tls_plugin_bump"));
    ASSERT_NE(bump, nullptr);
    EXPECT_EQ(bump(5), 5);
    EXPECT_EQ(bump(5), 10);
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    for (int t = 0; t < 8; t++)
        ts.emplace_back([&, t] {
            // Each thread's dynamic TLS block is malloc'd by ld.so on first use and freed
            // at thread exit: both with slabcache.
            for (int i = 1; i <= 100; i++)
                if (bump(t + 1) != (long)i * (t + 1)) bad++;
        });
    for (auto &th : ts) th.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(dlclose(h), 0);
}

TEST(MallocDeathTest, ForeignFreeIsReportedAndAborts) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    static char not_heap[64];
    EXPECT_DEATH(free(Opaque(static_cast<void *>(not_heap + 16))),
                 "slabcache: free: invalid free of 0x[0-9a-f]+ \\(pointer not from slabcache\\)");
    EXPECT_DEATH(
        {
            void *p = malloc(Opaque((size_t)100000));
            free(p);
            free(Opaque(p));
        },
        "slabcache: free: double free of large block 0x[0-9a-f]+ \\(already free");
}

// realloc validates its pointer like free: through the free hint, the page map, or neither.
// A block still in the thread's magazine passes the slab check (its bit is set) and is then
// caught when realloc frees it: the report names the double free.
TEST(MallocDeathTest, ReallocOfABadPointerIsReportedAndAborts) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    static char not_heap[64];
    EXPECT_DEATH(free(realloc(Opaque(static_cast<void *>(not_heap + 16)), 10)),
                 "slabcache: realloc: .*0x[0-9a-f]+ .*not");
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(malloc(Opaque((size_t)100)));
            free(p);  // the hint now names p's slab
            free(realloc(Opaque(p), 200));
        },
        "slabcache: realloc: double free of small object 0x[0-9a-f]+");
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(malloc(Opaque((size_t)100)));
            free(realloc(Opaque(p + 16), 200));
        },
        "slabcache: realloc: invalid free \\(not the start of an object\\): 0x[0-9a-f]+");
}

// Run a command with the library preloaded; returns its stderr+stdout.
std::string RunPreloaded(const std::string &env, const std::string &cmd) {
    std::string full = "env LD_PRELOAD=" + LibraryPath() + " " + env + " " + cmd + " 2>&1";
    FILE *f = popen(full.c_str(), "r");
    if (!f) return "";
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
    return out;
}

std::string SelfExe() {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    return n > 0 ? std::string(exe, (size_t)n) : std::string();
}

TEST_F(MallocTest, StatsAtExitWhenAsked) {
    // This test binary, running no test, exits through exit(): the destructor prints, totals
    // first, each line tagged with the pid.  (docs/observability.md; tests/observe checks the
    // JSON form and the other values.)
    std::string self = SelfExe() + " --gtest_filter=NoSuchTest";
    std::string out = RunPreloaded("SLABCACHE_STATS=1", self);
    size_t head = out.find("] statistics of malloc_test at exit\n");
    ASSERT_NE(head, std::string::npos) << out;
    size_t totals = out.find("] heap ", head);
    size_t row = out.find("   kmalloc-16 ", head);
    EXPECT_NE(totals, std::string::npos) << out;
    EXPECT_NE(row, std::string::npos) << out;
    EXPECT_LT(totals, row) << out;
    out = RunPreloaded("", self);
    EXPECT_EQ(out.find("statistics of"), std::string::npos) << out;
    // "no" and "false" turn it off (they used to turn it on).
    out = RunPreloaded("SLABCACHE_STATS=no", self);
    EXPECT_EQ(out.find("statistics of"), std::string::npos) << out;
}

TEST_F(MallocTest, ClassCachesAreCreatedOnlyForClassesInUse) {
    // A short-lived process pays only for the size classes it allocates from: this binary
    // starting up and running no test lists kmalloc-16 but far fewer than all 83 classes
    // (it allocates nothing between 16 and 32 KiB in most classes, e.g. kmalloc-28672).
    std::string self = SelfExe() + " --gtest_filter=NoSuchTest";
    std::string out = RunPreloaded("SLABCACHE_STATS=2", self);  // 2: every cache that exists
    ASSERT_NE(out.find("   kmalloc-16 "), std::string::npos) << out;
    size_t classes = 0;
    for (size_t at = out.find("   kmalloc-"); at != std::string::npos;
         at = out.find("   kmalloc-", at + 1))
        classes++;
    EXPECT_GE(classes, 1u) << out;
    EXPECT_LT(classes, 40u) << out;
    EXPECT_EQ(out.find("   kmalloc-28672 "), std::string::npos) << out;
}

TEST_F(MallocTest, PreloadedSortMatchesGlibc) {
    // A small real program, preloaded: identical output.
    std::string cmd = "sh -c 'seq 1 20000 | sort -r | md5sum'";
    std::string with = RunPreloaded("", cmd);
    FILE *f = popen((cmd + " 2>&1").c_str(), "r");
    ASSERT_NE(f, nullptr);
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    pclose(f);
    EXPECT_EQ(with, std::string(buf, n));
}

TEST_F(MallocTest, LeakReportNamesTheProgramsCallSite) {
    // malloc passes its caller down, so with U the leak report groups the five leaks under
    // leaky_allocate() in leaky_program, not under a site inside libslabcache.so; and
    // SLABCACHE_LEAKS=exit turns leaks into exit status 23 for CI.  (The program drops its
    // pointers: blocks a global still points to are reachable, not lost.)
    std::string prog = "tests/malloc/leaky_program";
    std::string cmd = "sh -c '" + prog + "; echo status=$?'";
    std::string out = RunPreloaded("SLABCACHE_DEBUG=U SLABCACHE_LEAKS=exit", cmd);
    EXPECT_NE(out.find("blocks (560 bytes) lost: 5 definitely"), std::string::npos) << out;
    EXPECT_NE(out.find("allocated by 0x"), std::string::npos) << out;
    EXPECT_NE(out.find("leaky_program+0x"), std::string::npos) << out;
    EXPECT_EQ(out.find("libslabcache.so+0x"), std::string::npos) << out;
    EXPECT_NE(out.find("status=23"), std::string::npos) << out;
    // Without SLABCACHE_LEAKS: silent and status 0.
    out = RunPreloaded("SLABCACHE_DEBUG=U", cmd);
    EXPECT_EQ(out, "status=0\n");
}

}  // namespace
