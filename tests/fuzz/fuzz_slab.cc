/* SPDX-License-Identifier: MIT */
// tests/fuzz/fuzz_slab.cc - libFuzzer target: bytes -> kmem_cache / kmalloc operations checked
// against a model (every live object carries a fill pattern, checked before it is freed), with
// the validators run along the way.  Built and run by fuzz_test.sh (clang-14, -fsanitize=
// fuzzer,address); the corpus is tests/fuzz/corpus/.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

extern "C" {
#include "slab/kmalloc.h"
#include "slab/slab.h"
}

namespace {

struct Obj {
    void *p;
    size_t size;
    uint8_t seed;
    int cache;  // index in caches, -1 = kmalloc
};

struct Cache {
    kmem_cache *c;
    size_t size;
};

void Fill(const Obj &o) { memset(o.p, o.seed, o.size); }

void Check(const Obj &o) {
    const uint8_t *b = static_cast<const uint8_t *>(o.p);
    for (size_t i = 0; i < o.size; i++)
        if (b[i] != o.seed) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    std::vector<Cache> caches;
    std::vector<Obj> objs;
    size_t i = 0;
    auto next = [&]() -> uint8_t { return i < len ? data[i++] : 0; };
    auto free_obj = [&](size_t k) {
        Obj o = objs[k];
        Check(o);
        if (o.cache < 0)
            kfree(o.p);
        else
            kmem_cache_free(caches[o.cache].c, o.p);
        objs[k] = objs.back();
        objs.pop_back();
    };
    static const unsigned kFlags[] = {0, SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER,
                                      SLAB_CONSISTENCY_CHECKS, SLAB_NO_MAGAZINE,
                                      SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER};
    unsigned ops = 0;
    while (i < len && ops++ < 2000) {
        uint8_t op = next();
        switch (op % 9) {
        case 0:  // create
            if (caches.size() < 6) {
                size_t size = (size_t)next() * 8 + next() % 8 + 1;
                unsigned flags = kFlags[next() % 7];
                kmem_cache *c = kmem_cache_create("fuzz", size, (size_t)8 << (next() % 4), flags,
                                                  nullptr);
                if (!c) abort();
                caches.push_back({c, size});
            }
            break;
        case 1:  // alloc
        case 2:
            if (!caches.empty()) {
                int k = next() % caches.size();
                void *p = kmem_cache_alloc(caches[k].c, 0);
                if (!p) abort();
                objs.push_back({p, caches[k].size, next(), k});
                Fill(objs.back());
            }
            break;
        case 3:  // free
            if (!objs.empty()) free_obj(next() % objs.size());
            break;
        case 4: {  // bulk alloc + free some
            if (caches.empty()) break;
            int k = next() % caches.size();
            void *v[16];
            size_t n = next() % 16 + 1;
            if (kmem_cache_alloc_bulk(caches[k].c, 0, n, v) != n) abort();
            for (size_t j = 0; j < n; j++) {
                objs.push_back({v[j], caches[k].size, (uint8_t)j, k});
                Fill(objs.back());
            }
            break;
        }
        case 5:  // shrink
            if (!caches.empty()) kmem_cache_shrink(caches[next() % caches.size()].c);
            break;
        case 6: {  // destroy a cache whose objects were all freed
            if (caches.empty()) break;
            int k = (int)caches.size() - 1;
            for (size_t j = objs.size(); j-- > 0;)
                if (objs[j].cache == k) free_obj(j);
            kmem_cache_destroy(caches[k].c);
            caches.pop_back();
            break;
        }
        case 7: {  // kmalloc
            size_t size = ((size_t)next() << (next() % 10)) + 1;
            void *p = kmalloc(size, 0);
            if (!p) abort();
            objs.push_back({p, size, next(), -1});
            Fill(objs.back());
            break;
        }
        case 8: {  // krealloc
            for (size_t j = 0; j < objs.size(); j++) {
                if (objs[j].cache >= 0) continue;
                Check(objs[j]);
                size_t size = ((size_t)next() << (next() % 10)) + 1;
                void *p = krealloc(objs[j].p, size, 0);
                if (!p) abort();
                const uint8_t *b = static_cast<const uint8_t *>(p);
                for (size_t x = 0; x < (size < objs[j].size ? size : objs[j].size); x++)
                    if (b[x] != objs[j].seed) abort();
                objs[j].p = p;
                objs[j].size = size;
                Fill(objs[j]);
                break;
            }
            break;
        }
        }
        if (ops % 64 == 0 && slabcache_validate() != 0) abort();
    }
    if (slabcache_validate() != 0) abort();
    while (!objs.empty()) free_obj(objs.size() - 1);
    for (auto &c : caches) kmem_cache_destroy(c.c);
    return 0;
}
