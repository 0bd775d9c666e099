/* SPDX-License-Identifier: MIT */
/* heap/mutex.c - what the locks of every layer share: the fork handlers, and in debug builds
 * the registry of every mutex in use (heap/mutex.h has the rules).
 *
 * Both are lock-free tables in static storage: they are used inside fork and by the lock
 * functions themselves, so they can take no lock, and they never allocate.
 */
#include "heap/mutex.h"

#include <stdint.h>
#include <stdlib.h>

#include "heap/fmt.h"
#include "heap/heap.h"

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define HEAP_HAVE_SINGLE_THREADED 1
#endif
#endif
#ifndef HEAP_HAVE_SINGLE_THREADED
#define HEAP_HAVE_SINGLE_THREADED 0
#endif

/* ---------------------------------------------------------------- registry */

HEAP_LARGE_BSS static pthread_mutex_t *registry[HEAP_MUTEX_REGISTRY_MAX];
static bool registry_overflowed;

void heap_mutex_note(pthread_mutex_t *m)
{
    for (size_t i = 0; i < HEAP_MUTEX_REGISTRY_MAX; i++) {
        pthread_mutex_t *expected = NULL;
        if (__atomic_load_n(&registry[i], __ATOMIC_RELAXED) == NULL &&
            __atomic_compare_exchange_n(&registry[i], &expected, m, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return;
    }
    __atomic_store_n(&registry_overflowed, true, __ATOMIC_RELAXED);
}

void heap_mutex_forget(pthread_mutex_t *m)
{
    for (size_t i = 0; i < HEAP_MUTEX_REGISTRY_MAX; i++) {
        pthread_mutex_t *expected = m;
        if (__atomic_compare_exchange_n(&registry[i], &expected, NULL, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return;
    }
}

size_t heap_mutex_registry(pthread_mutex_t **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < HEAP_MUTEX_REGISTRY_MAX; i++) {
        pthread_mutex_t *m = __atomic_load_n(&registry[i], __ATOMIC_ACQUIRE);
        if (m) {
            if (n < max)
                out[n] = m;
            n++;
        }
    }
    return __atomic_load_n(&registry_overflowed, __ATOMIC_RELAXED) ? SIZE_MAX : n;
}

/* ---------------------------------------------------------------- fork */

/* Registered entries, filled front to back by compare-and-swap; a NULL ends the list. */
static const struct heap_fork_entry *fork_entries[HEAP_FORK_ENTRIES_MAX];
/* What the prepare handler took, in the order it took it: the forking thread writes it once
 * it holds every lock (so a second thread forking at the same time, waiting for the first
 * lock, cannot overwrite it) and reads it in the parent and the child. */
static const struct heap_fork_entry *fork_taken[HEAP_FORK_ENTRIES_MAX];
static size_t fork_ntaken;
static bool fork_skipped; /* single-threaded fork: nothing taken */
static int fork_installed; /* 0 no, 1 installing, 2 done */

void heap_fork_register(const struct heap_fork_entry *e)
{
    for (size_t i = 0; i < HEAP_FORK_ENTRIES_MAX; i++) {
        const struct heap_fork_entry *expected = NULL;
        if (__atomic_compare_exchange_n(&fork_entries[i], &expected, e, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE) ||
            expected == e)
            return;
    }
    heap_fmt_line("heap_fork_register: more than %zu fork entries",
                  (size_t)HEAP_FORK_ENTRIES_MAX);
    abort();
}

static bool process_is_single_threaded(void)
{
#if HEAP_HAVE_SINGLE_THREADED
    return __libc_single_threaded != 0;
#else
    return false;
#endif
}

static void fork_prepare(void)
{
    if (process_is_single_threaded()) {
        fork_skipped = true;
        return;
    }
    /* Sorted by rank (insertion sort: a few entries, and no allocation here). */
    const struct heap_fork_entry *order[HEAP_FORK_ENTRIES_MAX];
    size_t n = 0;
    for (; n < HEAP_FORK_ENTRIES_MAX; n++) {
        const struct heap_fork_entry *e = __atomic_load_n(&fork_entries[n], __ATOMIC_ACQUIRE);
        if (!e)
            break;
        size_t j = n;
        for (; j > 0 && order[j - 1]->rank > e->rank; j--)
            order[j] = order[j - 1];
        order[j] = e;
    }
    for (size_t i = 0; i < n; i++)
        order[i]->lock();
    for (size_t i = 0; i < n; i++)
        fork_taken[i] = order[i];
    fork_ntaken = n;
    fork_skipped = false;
}

static void fork_release(void)
{
    for (size_t i = fork_ntaken; i-- > 0;)
        fork_taken[i]->unlock();
}

static void fork_parent(void)
{
    if (fork_skipped) {
        fork_skipped = false;
        return;
    }
    fork_release();
}

static void fork_child(void)
{
    if (fork_skipped) {
        fork_skipped = false;
        return;
    }
    fork_release();
    for (size_t i = 0; i < fork_ntaken; i++)
        if (fork_taken[i]->child)
            fork_taken[i]->child();
}

void heap_fork_install(void)
{
    if (__atomic_load_n(&fork_installed, __ATOMIC_ACQUIRE) == 2)
        return;
    int expected = 0;
    if (__atomic_compare_exchange_n(&fork_installed, &expected, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        __atomic_store_n(&fork_installed, 2, __ATOMIC_RELEASE);
    }
    /* Another thread installing: it finishes on its own; a re-entrant call (pthread_atfork
     * allocating) returns at once. */
}
