/* SPDX-License-Identifier: MIT */
// tests/slab/fork_test.cc - every lock of the library is held across fork().
//
// Strategy: debug builds keep a registry of every mutex the library has locked and not
// destroyed (heap/mutex.h), so the tests need no list of locks that could go stale:
//   1. After exercising every part of the library (caches with and without magazines, debug
//      caches, kmalloc small, large and huge, leak reports and expected leaks, validation,
//      statistics, shrink, destroy), a fork from a process with a second thread runs an
//      atfork prepare handler of the test's own after the library's, which tries every
//      registered mutex: each must be held (trylock fails).  A lock the library's handler
//      misses is named by address (and by role where the test can tell).
//   2. For every registered lock in turn, another thread holds it while the main thread
//      forks; the fork must wait for it (it is in the prepare handler), and the child must
//      then run the library's operations to completion rather than block forever on a lock
//      owned by a thread that does not exist in the child.
// Optimised builds (NDEBUG) keep no registry: the tests skip there; tests/slab/magazine_test
// and tests/kmalloc/kmalloc_test fork with live threads in every configuration.
#include <gtest/gtest.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "slab/kmalloc.h"
#include "slab/slab.h"
extern "C" {
#include "slab/internal.h"
}

#if defined(__SANITIZE_THREAD__)
// TSan keeps its record of the thread that holds a lock while the test forks; the child never
// sees that thread end, so its exit reported a "thread leak" and exited with status 66.  The
// parent joins every thread it starts: leak reports would find nothing real here.
extern "C" const char *__tsan_default_options() { return "report_thread_leaks=0"; }
#endif

namespace {

constexpr size_t kMaxLocks = HEAP_MUTEX_REGISTRY_MAX;

// Filled by CheckPrepare inside fork (no allocation there).
pthread_mutex_t *g_registered[kMaxLocks];
size_t g_nregistered;
pthread_mutex_t *g_missing[kMaxLocks];
size_t g_nmissing;
std::atomic<bool> g_check{false};

// Runs after the library's prepare handler: pthread_atfork runs prepare handlers in the
// reverse order of registration, and this one is registered before main, before the
// library registers its own (at its first cache).
void CheckPrepare() {
    if (!g_check.load()) return;
    g_nregistered = heap_mutex_registry(g_registered, kMaxLocks);
    g_nmissing = 0;
    size_t n = g_nregistered < kMaxLocks ? g_nregistered : kMaxLocks;
    for (size_t i = 0; i < n; i++) {
        if (pthread_mutex_trylock(g_registered[i]) == 0) {  // not held by the fork handler
            pthread_mutex_unlock(g_registered[i]);
            g_missing[g_nmissing++] = g_registered[i];
        }
    }
}

__attribute__((constructor(101))) void RegisterCheck() {
    pthread_atfork(CheckPrepare, nullptr, nullptr);
}

// A name for the locks the test can see.
std::string LockName(pthread_mutex_t *m) {
    if (m == &cache_list_lock.mutex) return "cache_list_lock";
    if (m == &magazine_tables_lock.mutex) return "magazine_tables_lock";
    std::string found;
    std::pair<pthread_mutex_t *, std::string *> want(m, &found);
    kmem_cache_for_each(
        [](kmem_cache *c, void *arg) {
            auto *x = static_cast<std::pair<pthread_mutex_t *, std::string *> *>(arg);
            if (x->first == &c->lock.mutex) *x->second = std::string(c->name) + "->lock";
            if (x->first == &c->depot_lock.mutex)
                *x->second = std::string(c->name) + "->depot_lock";
        },
        &want);
    if (!found.empty()) return found;
    char buf[128];
    snprintf(buf, sizeof buf, "lock at %p (leak, debug options, buddy, heap or meta)",
             (void *)m);
    return buf;
}

// A thread that stays alive (a process with one thread forks without locks).
class SecondThread {
  public:
    SecondThread() : t_([this] {
          std::unique_lock<std::mutex> l(m_);
          cv_.wait(l, [this] { return stop_; });
      }) {}
    ~SecondThread() {
        {
            std::lock_guard<std::mutex> l(m_);
            stop_ = true;
        }
        cv_.notify_all();
        t_.join();
    }

  private:
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread t_;
};

// Touch every lock of the library at least once; returns what to free afterwards.
struct Live {
    kmem_cache *plain = nullptr, *debug = nullptr;
    std::vector<void *> objs, dobjs, blocks;
};

Live Exercise() {
    Live l;
    l.plain = kmem_cache_create("fork-plain", 100, 0, 0, nullptr);
    l.debug = kmem_cache_create("fork-debug", 100, 0, SLAB_RED_ZONE | SLAB_STORE_USER, nullptr);
    kmem_cache *gone = kmem_cache_create("fork-gone", 64, 0, 0, nullptr);
    kmem_cache_free(gone, kmem_cache_alloc(gone, 0));
    kmem_cache_destroy(gone);  // its locks leave the registry
    for (int i = 0; i < 300; i++) {
        l.objs.push_back(kmem_cache_alloc(l.plain, 0));
        l.dobjs.push_back(kmem_cache_alloc(l.debug, 0));
    }
    for (int i = 0; i < 200; i++) {  // through the depot and back to the slabs
        kmem_cache_free(l.plain, l.objs.back());
        l.objs.pop_back();
    }
    for (size_t size : {24ul, 4000ul, 100000ul, 5ul << 20}) l.blocks.push_back(kmalloc(size, 0));
    slabcache_register_expected_leak(l.objs[0]);
    slabcache_unregister_expected_leak(l.objs[0]);
    ::testing::internal::CaptureStderr();
    slabcache_leak_report();
    ::testing::internal::GetCapturedStderr();
    kmem_cache_stats st;
    kmem_cache_get_stats(l.plain, &st);
    EXPECT_EQ(0, slabcache_validate());
    kmem_cache_shrink(l.plain);
    return l;
}

void Release(Live &l) {
    for (void *p : l.objs) kmem_cache_free(l.plain, p);
    for (void *p : l.dobjs) kmem_cache_free(l.debug, p);
    for (void *p : l.blocks) kfree(p);
    kmem_cache_destroy(l.plain);
    kmem_cache_destroy(l.debug);
}

// The child's share: operations that take every lock of the library (the leak report goes
// nowhere).
int ChildWork() {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    kmem_cache *c = kmem_cache_create("fork-child", 48, 0, 0, nullptr);
    if (!c) return 2;
    void *p = kmem_cache_alloc(c, 0);
    slabcache_register_expected_leak(p);
    slabcache_leak_report();
    slabcache_unregister_expected_leak(p);
    kmem_cache_free(c, p);
    void *big = kmalloc(5u << 20, 0), *large = kmalloc(100000, 0);
    kfree(big);
    kfree(large);
    int rc = slabcache_validate() == 0 ? 0 : 3;
    kmem_cache_destroy(c);
    return rc;
}

// Wait for pid up to `seconds`; false (and the child killed) when it did not finish.
bool WaitFor(pid_t pid, int seconds, int *status) {
    for (int i = 0; i < seconds * 100; i++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, nullptr);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return false;
}

TEST(ForkLocks, EveryRegisteredLockIsHeldByTheForkHandler) {
#if defined(NDEBUG)
    GTEST_SKIP() << "the lock registry exists in debug builds only";
#endif
    Live l = Exercise();
    {
        SecondThread other;
        g_check = true;
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) _exit(0);
        g_check = false;
        int status = 0;
        ASSERT_TRUE(WaitFor(pid, 30, &status));
    }
    ASSERT_NE(SIZE_MAX, g_nregistered) << "registry overflowed";
    // leak, cache list, tables, options, buddy, heap, meta, and two per live cache (the
    // two made here and the kmalloc classes used).
    EXPECT_GE(g_nregistered, 7u + 2 * 2);
    std::string missing;
    for (size_t i = 0; i < g_nmissing; i++) missing += "\n  " + LockName(g_missing[i]);
    EXPECT_EQ(0u, g_nmissing) << "locks not held across fork:" << missing;
    Release(l);
}

struct Holder {
    pthread_mutex_t *m;
    std::atomic<int> state{0};  // 1: holding, 2: released
};

TEST(ForkLocks, ForkWaitsForEachLockAnotherThreadHoldsAndTheChildRuns) {
#if defined(NDEBUG)
    GTEST_SKIP() << "the lock registry exists in debug builds only";
#endif
    Live l = Exercise();
    static pthread_mutex_t *locks[kMaxLocks];
    size_t n = heap_mutex_registry(locks, kMaxLocks);
    ASSERT_NE(SIZE_MAX, n);
    ASSERT_LE(n, kMaxLocks);
    ASSERT_GE(n, 7u);
    for (size_t i = 0; i < n; i++) {
        Holder h;
        h.m = locks[i];
        std::thread t([&h] {
            pthread_mutex_lock(h.m);
            h.state = 1;
            struct timespec ts = {0, 30 * 1000 * 1000};
            nanosleep(&ts, nullptr);  // the fork below starts while this thread holds it
            h.state = 2;
            pthread_mutex_unlock(h.m);
        });
        while (h.state.load() == 0) sched_yield();
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) _exit(ChildWork());
        int held_at_fork = h.state.load();  // 2: the fork waited for the lock
        int status = 0;
        bool finished = WaitFor(pid, 20, &status);
        t.join();
        std::string name = LockName(locks[i]);
        EXPECT_TRUE(finished) << "the child blocked on " << name;
        EXPECT_TRUE(finished && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << name << " status " << status;
        EXPECT_EQ(2, held_at_fork) << "fork did not wait for " << name;
    }
    Release(l);
}

}  // namespace
