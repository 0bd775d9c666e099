/* SPDX-License-Identifier: MIT */
// tests/malloc/fork_signal_test.cc - glibc's tst-mallocfork2 as glibc runs it, with malloc
// and free, here slabcache's (this binary links //slab:libslabcache.so): a single-threaded
// process whose signal handler forks while the interrupted code is inside malloc or free
// never deadlocks (tests/common/fork_signal.h has the scenario).
#include "tests/common/fork_signal.h"

#include <dlfcn.h>
#include <stdlib.h>

#include <string>

namespace {

TEST(ForkFromSignalHandler, MallocInASingleThreadedProcessNeverDeadlocks) {
    Dl_info info;
    ASSERT_NE(0, dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info));
    ASSERT_NE(std::string::npos, std::string(info.dli_fname).find("libslabcache"))
        << "malloc is not slabcache's: " << info.dli_fname;
    fork_signal::RunWatched([](size_t size) { return malloc(size); },
                            [](void *p) { free(p); });
}

}  // namespace
