/* SPDX-License-Identifier: MIT */
// tests/malloc/malloc_misuse_test.cc - the malloc family's misuse answers, as a program sees
// them (this binary links //slab:libslabcache.so: every malloc in the process is slabcache's).
//
// Strategy, one test per promise:
//   - free keeps errno, even when the munmap under it fails: glibc's tst-free-errno, which
//     makes munmap fail for real by splitting a mapping at the vm.max_map_count limit;
//   - misuse reports name the function the program called (free, realloc, reallocarray,
//     malloc_usable_size) and the kind of block (small object, large block, huge mapping),
//     as death tests (the default is to abort);
//   - malloc_usable_size: every byte it admits may be written (glibc's tst-malloc-usable),
//     and a pointer that is not an allocated block (p + 8, a freed block) is reported, not
//     sized;
//   - with SLABCACHE_DEBUG=Z, malloc's red zone starts at the size asked for and
//     malloc_usable_size says that size (this binary run again with the variable set).
// The ideas are glibc's tests; the code is ours.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

// Double frees and reads after free on purpose.
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

namespace {

template <typename T>
T Opaque(T v) {
    asm volatile("" : "+r"(v));
    return v;
}

// gcc may assume free leaves errno alone; read it through a call it cannot see into.
__attribute__((noinline)) int Errno() {
    asm volatile("" ::: "memory");
    return errno;
}

TEST(MallocMisuse, MallocIsSlabcache) {
    Dl_info info;
    ASSERT_NE(0, dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info));
    EXPECT_NE(std::string::npos, std::string(info.dli_fname).find("libslabcache"))
        << info.dli_fname;
}

// ---------------------------------------------------------------- errno (tst-free-errno)

TEST(MallocMisuse, FreeKeepsErrno) {
    errno = 1789;
    free(nullptr);
    EXPECT_EQ(1789, Errno());
    void *ptrs[2];
    for (void *&p : ptrs) p = malloc(Opaque((size_t)5318153));  // own mappings (huge blocks)
    for (void *p : ptrs) {
        errno = 1789;
        free(p);
        EXPECT_EQ(1789, Errno());
    }
}

// munmap of a huge block fails when it must split a mapping and the process is at
// vm.max_map_count: the block's mapping is widened by a page on each side (MAP_FIXED), every
// mapping left is used up, and free's munmap would need one more.
TEST(MallocMisuse, FreeKeepsErrnoWhenMunmapFailsAtTheMapCountLimit) {
    if (access("/proc/sys/vm/max_map_count", R_OK) != 0) GTEST_SKIP() << "not Linux";
    const size_t page = (size_t)getpagesize(), big = 48u << 20;
    char tmpl[] = "/tmp/malloc_misuse_XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    unlink(tmpl);
    ASSERT_EQ(0, ftruncate(fd, (off_t)page));
    char *p = static_cast<char *>(malloc(Opaque(big)));
    ASSERT_NE(nullptr, p);
    ASSERT_EQ(0u, (uintptr_t)p % page);
    ASSERT_NE(MAP_FAILED, mmap(p - page, big + 2 * page, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    static void *fillers[70000];  // no allocation while at the limit
    size_t n = 0;
    while (n < sizeof fillers / sizeof fillers[0]) {
        void *m = mmap(nullptr, page, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) break;
        fillers[n++] = m;
    }
    errno = 1789;
    free(p);
    int after = Errno();
    unsigned char vec;
    bool still_mapped = mincore(p, page, &vec) == 0;  // munmap failed: the pages stay
    for (size_t i = 0; i < n; i++) munmap(fillers[i], page);
    close(fd);
    munmap(p - page, big + 2 * page);
    if (!still_mapped) GTEST_SKIP() << "munmap did not fail (" << n << " mappings made)";
    EXPECT_EQ(1789, after) << "errno after a free whose munmap failed";
}

// ---------------------------------------------------------------- reports name the caller

TEST(MallocMisuseDeathTest, DoubleFreesNameTheFunctionAndTheKindOfBlock) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(
        {
            char *a = static_cast<char *>(malloc(Opaque((size_t)100)));
            char *b = static_cast<char *>(malloc(Opaque((size_t)100)));
            free(a);
            free(b);
            free(Opaque(a));
        },
        "slabcache: free: double free of small object 0x[0-9a-f]+ in cache kmalloc-112");
    EXPECT_DEATH(
        {
            void *a = malloc(Opaque((size_t)100000));
            free(a);
            free(Opaque(a));
        },
        "slabcache: free: double free of large block 0x[0-9a-f]+ \\(already free");
    EXPECT_DEATH(
        {
            void *a = malloc(Opaque((size_t)(6u << 20)));
            free(a);
            free(Opaque(a));
        },
        "slabcache: free: double free of huge mapping 0x[0-9a-f]+ \\(6291456 bytes");
    EXPECT_DEATH(
        {
            void *a = malloc(Opaque((size_t)100));
            void *b = malloc(Opaque((size_t)100));
            free(a);
            free(b);
            free(realloc(Opaque(a), 300));
        },
        "slabcache: realloc: double free of small object");
    EXPECT_DEATH(
        {
            void *a = malloc(Opaque((size_t)100));
            void *b = malloc(Opaque((size_t)100));
            free(a);
            free(b);
            free(reallocarray(Opaque(a), 3, 100));
        },
        "slabcache: reallocarray: double free of small object");
    EXPECT_DEATH(
        {
            char *a = static_cast<char *>(malloc(Opaque((size_t)100)));
            free(Opaque(a + 16));
        },
        "slabcache: free: invalid free \\(not the start of an object\\): 0x[0-9a-f]+, 16 bytes "
        "into small object");
}

// ---------------------------------------------------------------- malloc_usable_size

// glibc's tst-malloc-usable: all of malloc_usable_size may be written.
TEST(MallocMisuse, UsableSizeMayBeWrittenWhole) {
    for (size_t size = 0; size < 70000; size = size * 3 / 2 + 1) {
        char *p = static_cast<char *>(malloc(Opaque(size)));
        ASSERT_NE(nullptr, p);
        size_t usable = malloc_usable_size(p);
        ASSERT_GE(usable, size);
        memset(p, 0x5a, usable);
        free(p);
    }
    EXPECT_EQ(0u, malloc_usable_size(nullptr));
}

TEST(MallocMisuseDeathTest, UsableSizeOfSomethingNotAnAllocatedBlockIsReported) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(malloc(Opaque((size_t)100)));
            fprintf(stderr, "size %zu\n", malloc_usable_size(Opaque(p + 8)));
        },
        "slabcache: malloc_usable_size: not an allocated block \\(not the start of an "
        "object\\): 0x[0-9a-f]+, 8 bytes into small object");
    EXPECT_DEATH(
        {
            char *p = static_cast<char *>(malloc(Opaque((size_t)100)));
            char *q = static_cast<char *>(malloc(Opaque((size_t)100)));
            free(p);
            free(q);
            fprintf(stderr, "size %zu\n", malloc_usable_size(Opaque(p)));
        },
        "slabcache: malloc_usable_size: 0x[0-9a-f]+ is a small object of cache kmalloc-112 "
        "that is already free");
}

// ---------------------------------------------------------------- red zones (Z)

// Run by RedZoneFromTheSizeAskedFor in a process started with SLABCACHE_DEBUG=Z (set before
// the library's first cache, which a test cannot do in its own process).
TEST(MallocMisuseChild, RedZone) {
    const char *v = getenv("SLABCACHE_TEST_CHILD");
    if (!v || strcmp(v, "redzone") != 0) GTEST_SKIP() << "run by RedZoneFromTheSizeAskedFor";
    char *p = static_cast<char *>(malloc(Opaque((size_t)18)));
    fprintf(stderr, "usable %zu\n", malloc_usable_size(p));
    memset(p, 1, 18);
    p[Opaque(18)] = 1;  // past the size asked for, inside kmalloc-32's slot
    free(p);
    char *q = static_cast<char *>(calloc(1, Opaque((size_t)40)));
    fprintf(stderr, "calloc usable %zu\n", malloc_usable_size(q));
    free(q);
}

TEST(MallocMisuse, RedZoneFromTheSizeAskedFor) {
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ASSERT_GT(len, 0);
    exe[len] = '\0';
    std::string cmd = std::string("env SLABCACHE_DEBUG=Z SLABCACHE_ON_ERROR=report "
                                  "SLABCACHE_TEST_CHILD=redzone ") +
                      exe + " --gtest_filter=MallocMisuseChild.RedZone 2>&1";
    FILE *f = popen(cmd.c_str(), "r");
    ASSERT_NE(nullptr, f);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
    EXPECT_NE(std::string::npos, out.find("usable 18\n")) << out;
    EXPECT_NE(std::string::npos, out.find("calloc usable 40\n")) << out;
    EXPECT_NE(std::string::npos,
              out.find("slabcache: red zone overwritten in cache kmalloc-32: allocated object"))
        << out;
    EXPECT_NE(std::string::npos, out.find("(size 18), red zone bytes 0..0 past its end changed "
                                          "(0xbb expected, found 0x1)"))
        << out;
}

}  // namespace
