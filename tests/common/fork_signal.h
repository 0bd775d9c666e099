/* SPDX-License-Identifier: MIT */
// tests/common/fork_signal.h - fork() from a signal handler that interrupted the allocator,
// in a single-threaded process, must never deadlock.
//
// The idea is glibc's tst-mallocfork2 (the code is ours): a helper process sends SIGUSR1 to
// the test process as fast as it can while the test process frees and allocates blocks of
// random sizes up to 70000 bytes (small objects, and large blocks that take the page
// layer's locks); the handler stops the sender, forks a child that exits at once and waits
// for it.  Each signal that lands inside a free or an allocation is counted; the run ends
// after kSignals of them.  Before the fix, the fork waited in the library's prepare handler
// for a lock the interrupted code held, forever.
//
// The scenario runs in a child of the test (its own process group, single-threaded: this
// test binary starts no thread), watched by the test, which kills the group and fails when
// the count of signals handled stops moving for kStallSeconds.  Alloc and Free name the
// functions under test.
#ifndef SLABCACHE_TESTS_COMMON_FORK_SIGNAL_H
#define SLABCACHE_TESTS_COMMON_FORK_SIGNAL_H

#include <gtest/gtest.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace fork_signal {

constexpr int kObjects = 1009;
constexpr size_t kMaxSize = 70000;
constexpr unsigned kSignals = 1000;
constexpr int kStallSeconds = 30;

inline volatile sig_atomic_t received;
inline pid_t sender;
inline volatile unsigned *progress;  // shared with the watching test: signals handled

inline void Fail(const char *msg) {
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
    _exit(3);
}

inline void OnSignal(int) {
    if (received) return;
    int saved = errno;
    if (sender > 0 && kill(sender, SIGSTOP) != 0) Fail("kill(SIGSTOP) failed\n");
    received = 1;
    pid_t pid = fork();
    if (pid < 0) Fail("fork in the handler failed\n");
    if (pid == 0) _exit(0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) Fail("waitpid failed\n");
    if (status != 0) Fail("the handler's child failed\n");
    errno = saved;
}

[[noreturn]] inline void SendForever(pid_t target) {
    for (;;) {
        if (kill(target, SIGUSR1) != 0) _exit(0);  // the target is gone
        sched_yield();
    }
}

// The scenario; returns the process exit status (0: kSignals signals handled).
template <typename Alloc, typename Free>
int Run(Alloc alloc, Free free_it) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, nullptr) != 0) return 4;
    pid_t self = getpid();
    sender = fork();
    if (sender < 0) return 5;
    if (sender == 0) SendForever(self);
    static void *objects[kObjects];
    unsigned seed = 1, signals = 0;
    while (signals < kSignals) {
        int slot = rand_r(&seed) % kObjects;
        size_t size = (size_t)rand_r(&seed) % kMaxSize;
        if (kill(sender, SIGCONT) != 0) return 6;
        received = 0;
        free_it(objects[slot]);
        objects[slot] = alloc(size);
        if (received) *progress = ++signals;
        if (!objects[slot]) return 7;
    }
    signal(SIGUSR1, SIG_IGN);
    kill(sender, SIGKILL);
    waitpid(sender, nullptr, 0);
    for (void *p : objects) free_it(p);
    return 0;
}

// The test: Run in a watched child process.
template <typename Alloc, typename Free>
void RunWatched(Alloc alloc, Free free_it) {
    ASSERT_TRUE(__libc_single_threaded) << "the scenario needs a single-threaded process";
    void *shared =
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(MAP_FAILED, shared);
    progress = static_cast<volatile unsigned *>(shared);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        _exit(Run(alloc, free_it));
    }
    setpgid(pid, pid);
    int status = 0;
    bool done = false;
    unsigned last = 0;
    for (int idle = 0; idle < kStallSeconds * 100 && !done; idle++) {
        done = waitpid(pid, &status, WNOHANG) == pid;
        struct timespec ts = {0, 10 * 1000 * 1000};
        if (!done) nanosleep(&ts, nullptr);
        if (*progress != last) {
            last = *progress;
            idle = 0;
        }
    }
    if (!done) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    EXPECT_TRUE(done) << "no signal handled for " << kStallSeconds << " s after " << last
                      << ": a fork from the signal handler deadlocked";
    EXPECT_TRUE(done && WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    munmap(shared, 4096);
}

}  // namespace fork_signal

#endif
