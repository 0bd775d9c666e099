/* SPDX-License-Identifier: MIT */
// tests/observe/reader_test.cc - slabtop's reader (tools/slabtop/reader.h) on this very
// process: it finds the introspection root through /proc/self/maps and the executable's
// symbol table (the library is linked statically here), or by scanning for the magic, and
// its snapshot must agree with the library's own statistics when nothing runs.  Then a
// thread keeps creating and destroying caches and allocating while snapshots are taken:
// torn reads must never crash the reader or give absurd rows.
//
// The reader uses process_vm_readv on its own process, which never faults (and which the
// sanitizers do not see: the reads are the kernel's).
#include <gtest/gtest.h>

#include <string.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

extern "C" {
#include "slab/introspect.h"
#include "slab/kmalloc.h"
#include "slab/slab.h"
#include "tools/slabtop/reader.h"
}

namespace {

struct sc_snapshot *Snap(sc_target *t) {
    static struct sc_snapshot s;
    char err[512] = "";
    EXPECT_EQ(0, sc_snapshot(t, &s, err, sizeof err)) << err;
    return &s;
}

const sc_row *Find(const struct sc_snapshot *s, const char *name) {
    for (size_t i = 0; i < s->nrows; i++)
        if (strcmp(s->rows[i].name, name) == 0) return &s->rows[i];
    return nullptr;
}

TEST(Reader, FindsTheRootAndAgreesWithTheLibrary) {
    sc_target t;
    char err[512] = "";
    ASSERT_EQ(0, sc_attach(&t, getpid(), err, sizeof err)) << err;
    EXPECT_EQ((uint64_t)(uintptr_t)&slabcache_introspection_root, t.root_addr);
    EXPECT_STRNE("", t.where);
    kmem_cache *c = kmem_cache_create("reader-test", 200, 0, 0, nullptr);
    std::vector<void *> objs;
    for (int i = 0; i < 1000; i++) objs.push_back(kmem_cache_alloc(c, 0));
    for (int i = 0; i < 1000; i += 3) kmem_cache_free(c, objs[i]);  // some stay cached
    void *large = kmalloc(200000, 0), *huge = kmalloc(6 << 20, 0);
    const struct sc_snapshot *s = Snap(&t);
    EXPECT_FALSE(s->inconsistent);
    kmem_cache_stats st;
    ASSERT_EQ(0, kmem_cache_get_stats(c, &st));
    const sc_row *r = Find(s, "reader-test");
    ASSERT_NE(nullptr, r);
    EXPECT_EQ(st.active_objects, r->active);
    EXPECT_EQ(st.cached_objects, r->cached);
    EXPECT_EQ(st.total_objects, r->total);
    EXPECT_EQ(st.total_slabs, r->slabs);
    EXPECT_EQ(st.allocs, r->allocs);
    EXPECT_EQ(st.frees, r->frees);
    EXPECT_EQ(200u, r->object_size);
    EXPECT_GE(s->threads, 1u);
    const sc_row *l = Find(s, "large-256K");
    ASSERT_NE(nullptr, l);
    EXPECT_EQ(1u, l->active);
    const sc_row *h = Find(s, "huge");
    ASSERT_NE(nullptr, h);
    EXPECT_EQ(1u, h->active);
    EXPECT_EQ(uint64_t(6) << 20, s->huge_bytes);
    slabcache_state *ls = new slabcache_state;
    ASSERT_EQ(0, slabcache_get_state(ls));
    EXPECT_EQ(ls->totals.in_use_bytes, s->in_use);
    EXPECT_EQ(ls->totals.cached_bytes, s->cached);
    EXPECT_GT(s->rss, 0u);
    delete ls;
    kfree(large);
    kfree(huge);
    for (int i = 0; i < 1000; i++)
        if (i % 3) kmem_cache_free(c, objs[i]);
    kmem_cache_destroy(c);
    s = Snap(&t);
    EXPECT_EQ(nullptr, Find(s, "reader-test"));
    EXPECT_EQ(nullptr, Find(s, "huge"));
}

TEST(Reader, TornReadsNeverCrashOrLie) {
    sc_target t;
    char err[512] = "";
    ASSERT_EQ(0, sc_attach(&t, getpid(), err, sizeof err)) << err;
    std::atomic<bool> stop{false};
    std::thread churn([&] {
        std::vector<void *> keep;
        for (unsigned i = 0; !stop.load(); i++) {
            char name[32];
            snprintf(name, sizeof name, "torn-%u", i % 7);
            kmem_cache *c = kmem_cache_create(name, 16 + i % 500, 0, 0, nullptr);
            for (int k = 0; k < 50; k++) keep.push_back(kmem_cache_alloc(c, 0));
            for (void *p : keep) kmem_cache_free(c, p);
            keep.clear();
            kmem_cache_destroy(c);
            kfree(kmalloc(i % 3 ? 50000 : 5 << 20, 0));
        }
    });
    for (int i = 0; i < 300; i++) {
        const struct sc_snapshot *s = Snap(&t);
        for (size_t k = 0; k < s->nrows; k++) {
            const sc_row &r = s->rows[k];
            ASSERT_NE('\0', r.name[0]);
            ASSERT_LE(r.active, r.total + 1000000);
            ASSERT_LE(r.object_size, 1u << 30);
        }
    }
    stop = true;
    churn.join();
}

TEST(Reader, RefusesAProcessWithoutTheLibrary) {
    sc_target t;
    char err[512] = "";
    EXPECT_EQ(-1, sc_attach(&t, 1 << 22, err, sizeof err));  // no such pid
    EXPECT_NE(nullptr, strstr(err, "no process")) << err;
}

}  // namespace
