/* SPDX-License-Identifier: MIT */
// tests/slab/fork_signal_test.cc - glibc's tst-mallocfork2 with kmalloc and kfree: a
// single-threaded process whose signal handler forks while the interrupted code is inside
// the allocator never deadlocks (tests/common/fork_signal.h has the scenario).  Alone in its
// binary: the process must never have had a second thread.
#include "tests/common/fork_signal.h"

#include "slab/kmalloc.h"

namespace {

TEST(ForkFromSignalHandler, KmallocInASingleThreadedProcessNeverDeadlocks) {
    fork_signal::RunWatched([](size_t size) { return kmalloc(size, 0); },
                            [](void *p) { kfree(p); });
}

}  // namespace
