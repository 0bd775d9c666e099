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
 * fork(): the atfork prepare handlers take every lock in the documented order, so the forking
 * thread is the owner of each; in the child that same thread (pthread_self() is unchanged)
 * unlocks them.
 */
#ifndef SLABCACHE_HEAP_MUTEX_H
#define SLABCACHE_HEAP_MUTEX_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct heap_mutex {
    pthread_mutex_t mutex;
    pthread_t owner; /* debug builds: the thread holding it, valid while `held` */
    bool held;
};

#define HEAP_MUTEX_INITIALIZER {.mutex = PTHREAD_MUTEX_INITIALIZER}

#if defined(NDEBUG)
#define HEAP_MUTEX_DEBUG 0
#else
#define HEAP_MUTEX_DEBUG 1
#endif

static inline void heap_mutex_init(struct heap_mutex *m)
{
    pthread_mutex_init(&m->mutex, NULL);
    m->held = false;
}

static inline void heap_mutex_destroy(struct heap_mutex *m)
{
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

#ifdef __cplusplus
}
#endif
#endif
