/* SPDX-License-Identifier: MIT */
/* heap/mutex.h - the lock of every layer: a pthread mutex that knows its owner in debug
 * builds, so a function named *_locked can assert that its caller holds the lock.
 *
 * In builds with NDEBUG (--config=opt) the owner is not recorded and the assertions compile
 * away: heap_mutex_lock is pthread_mutex_lock.  Otherwise lock records the calling thread
 * after it acquires the mutex and unlock clears it first; heap_mutex_held() then says whether
 * the *calling* thread holds it.  The owner fields are read and written with relaxed atomics:
 * another thread may read them at any time (and finds either "not held" or another owner,
 * never itself).  The layout does not depend on NDEBUG.
 *
 * fork(): one set of atfork handlers (heap/mutex.c, below) takes every lock of the library in
 * the documented order (slab/types.h), so the forking thread is the owner of each; in the
 * child that same thread (pthread_self() is unchanged) unlocks them.
 *
 * Debug builds also keep a registry of every mutex that has been locked at least once (and
 * not destroyed since), so a test can enumerate the library's locks and check that the fork
 * handler holds each one (tests/slab/fork_test.cc): a lock added without a fork entry shows
 * up there.  A mutex must be destroyed (heap_mutex_destroy) before its memory is reused.
 */
#ifndef SLABCACHE_HEAP_MUTEX_H
#define SLABCACHE_HEAP_MUTEX_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct heap_mutex {
    pthread_mutex_t mutex;
    pthread_t owner; /* debug builds: the thread holding it, valid while `held` */
    bool held;
    bool noted;      /* debug builds: in the registry (written under the mutex) */
};

#define HEAP_MUTEX_INITIALIZER {.mutex = PTHREAD_MUTEX_INITIALIZER}

#if defined(NDEBUG)
#define HEAP_MUTEX_DEBUG 0
#else
#define HEAP_MUTEX_DEBUG 1
#endif

/* ---------------------------------------------------------------- registry (debug builds)
 * Every mutex locked at least once and not destroyed since: heap_mutex_lock notes it, and
 * heap_mutex_destroy forgets it.  Lock-free (a fixed table; past HEAP_MUTEX_REGISTRY_MAX live
 * mutexes the rest are not noted and heap_mutex_registry says so).  Locks that are not a
 * struct heap_mutex (the buddy lock) note themselves. */
#define HEAP_MUTEX_REGISTRY_MAX 4096
void heap_mutex_note(pthread_mutex_t *m);
void heap_mutex_forget(pthread_mutex_t *m);
/* Up to max registered mutexes into out; returns how many there are (more than max: some
 * left out), or SIZE_MAX when the table overflowed at some point (the list is incomplete). */
size_t heap_mutex_registry(pthread_mutex_t **out, size_t max);

static inline void heap_mutex_init(struct heap_mutex *m)
{
    pthread_mutex_init(&m->mutex, NULL);
    m->held = false;
    m->noted = false;
}

static inline void heap_mutex_destroy(struct heap_mutex *m)
{
#if !defined(NDEBUG)
    if (m->noted)
        heap_mutex_forget(&m->mutex);
    m->noted = false;
#endif
    pthread_mutex_destroy(&m->mutex);
}

/* Does the calling thread hold m?  Always true without the debug bookkeeping (NDEBUG), so
 * heap_mutex_assert_held costs nothing there. */
static inline bool heap_mutex_held(const struct heap_mutex *m)
{
#if HEAP_MUTEX_DEBUG
    return __atomic_load_n(&m->held, __ATOMIC_RELAXED) &&
           pthread_equal(__atomic_load_n(&m->owner, __ATOMIC_RELAXED), pthread_self());
#else
    (void)m;
    return true;
#endif
}

#if HEAP_MUTEX_DEBUG
#define heap_mutex_assert_held(m) assert(heap_mutex_held(m))
#else
#define heap_mutex_assert_held(m) ((void)(m))
#endif

static inline void heap_mutex_lock(struct heap_mutex *m)
{
    pthread_mutex_lock(&m->mutex);
#if HEAP_MUTEX_DEBUG
    __atomic_store_n(&m->owner, pthread_self(), __ATOMIC_RELAXED);
    __atomic_store_n(&m->held, true, __ATOMIC_RELAXED);
    if (!m->noted) {
        m->noted = true;
        heap_mutex_note(&m->mutex);
    }
#endif
}

static inline void heap_mutex_unlock(struct heap_mutex *m)
{
#if HEAP_MUTEX_DEBUG
    heap_mutex_assert_held(m);
    __atomic_store_n(&m->held, false, __ATOMIC_RELAXED);
#endif
    pthread_mutex_unlock(&m->mutex);
}

/* ---------------------------------------------------------------- fork
 * The library's fork handlers.  Each layer registers the locks it owns as entries with their
 * rank in the lock order (slab/types.h: lower ranks are taken first); heap_fork_install
 * registers one set of atfork handlers, once.  The prepare handler takes every entry's locks
 * in rank order; the parent and child handlers release them in the reverse order, then the
 * child runs each entry's child hook (in rank order).
 *
 * A process with a single thread (glibc's __libc_single_threaded) takes no lock and runs no
 * hook, as glibc's own fork does for malloc: no other thread can hold a lock, and a fork from
 * a signal handler that interrupted the allocator must not wait for the lock the interrupted
 * code holds, which it would do forever.  The parent goes on with the state it had; the
 * child holds the same state and, as POSIX requires after a fork from a signal handler, may
 * call only async-signal-safe functions (the allocator's are not).  __libc_single_threaded
 * is false from the first pthread_create on; a thread made with a raw clone(2) would not
 * clear it (such a thread must not use the allocator while another forks). */
struct heap_fork_entry {
    unsigned rank;
    void (*lock)(void);   /* take this entry's locks */
    void (*unlock)(void); /* release them (parent and child) */
    void (*child)(void);  /* or NULL: in the child, once every lock is released */
};
/* Register e (which must outlive the process; registering it again does nothing).  At most
 * HEAP_FORK_ENTRIES_MAX entries. */
#define HEAP_FORK_ENTRIES_MAX 32
void heap_fork_register(const struct heap_fork_entry *e);
/* pthread_atfork for the handlers above, once (idempotent, thread-safe; pthread_atfork may
 * allocate, and a re-entrant call returns at once). */
void heap_fork_install(void);

#ifdef __cplusplus
}
#endif
#endif
