// SPDX-License-Identifier: MIT
// tests/install/consumer.cc - the installed <slabcache.h> from C++ (extern "C", no C-only
// constructs in the headers), with operator new going to slabcache's malloc.  Built by
// install_test.sh with g++ and pkg-config, outside Bazel.
#include <slabcache.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct Node {
    long key;
    Node *next;
};

namespace {

struct CacheDeleter {
    void operator()(kmem_cache *c) const { kmem_cache_destroy(c); }
};

int Failed(const char *what)
{
    std::fprintf(stderr, "consumer c++: %s\n", what);
    return 1;
}

}  // namespace

int main()
{
    if (std::strcmp(slabcache_version(), SLABCACHE_VERSION_STRING) != 0)
        return Failed("the headers and the library are different releases");

    std::unique_ptr<kmem_cache, CacheDeleter> nodes(KMEM_CACHE(Node, 0));
    if (!nodes)
        return Failed("KMEM_CACHE failed");
    Node *head = nullptr;
    for (long i = 0; i < 1000; i++) {
        Node *n = static_cast<Node *>(kmem_cache_alloc(nodes.get(), 0));
        if (!n)
            return Failed("kmem_cache_alloc");
        n->key = i;
        n->next = head;
        head = n;
    }
    long sum = 0;
    while (head) {
        Node *next = head->next;
        sum += head->key;
        kmem_cache_free(nodes.get(), head);
        head = next;
    }
    if (sum != 999L * 1000 / 2)
        return Failed("the list lost nodes");

    // operator new takes its memory from malloc, which is slabcache's once linked.
    int *block = new int[100];
    if (ksize(block) < 100 * sizeof(int))
        return Failed("operator new[] does not come from slabcache's malloc");
    delete[] block;
    std::vector<std::string> words;
    for (int i = 0; i < 10000; i++)
        words.push_back("word-" + std::to_string(i));
    if (words.back() != "word-9999")
        return Failed("std::vector<std::string>");

    if (slabcache_validate() != 0)
        return Failed("slabcache_validate");
    std::printf("consumer c++: slabcache %s, typed cache and operator new ok\n",
                slabcache_version());
    return 0;
}
