/* SPDX-License-Identifier: MIT */
/* heap/os.c - the only place the heap talks to the OS: a table of operations.
 *
 * heap.c calls sbrk, mmap, munmap, madvise and mremap through heap_os(), so tests can install
 * a fake that fails on demand or moves the break behind the heap's back (heap_set_os_ops).
 * The table may change only while the heap holds no extents, so a call that found an extent
 * never races with a change of table.  heap_os() hands out a counting front that forwards to
 * the installed table, so heap_get_stats() can say how many system calls the heap made. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap/heap_internal.h"

static void *os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr)
{
    return mremap(old_addr, old_len, new_len, flags, new_addr);
}

const struct heap_os_ops heap_os_real = {
    .sbrk = sbrk,
    .mmap = mmap,
    .munmap = munmap,
    .madvise = madvise,
    .mremap = os_mremap,
};

static const struct heap_os_ops *os_current = &heap_os_real;

/* ---------------------------------------------------------------- the counting front */

enum { CALL_SBRK, CALL_MMAP, CALL_MUNMAP, CALL_MADVISE, CALL_MREMAP };
static size_t os_counts[HEAP_OS_CALLS]; /* relaxed atomics: heap_purge calls without the lock */

static const struct heap_os_ops *installed(int call)
{
    __atomic_fetch_add(&os_counts[call], 1, __ATOMIC_RELAXED);
    return __atomic_load_n(&os_current, __ATOMIC_ACQUIRE);
}

static void *count_sbrk(intptr_t increment)
{
    return installed(CALL_SBRK)->sbrk(increment);
}

static void *count_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return installed(CALL_MMAP)->mmap(addr, len, prot, flags, fd, off);
}

static int count_munmap(void *addr, size_t len)
{
    return installed(CALL_MUNMAP)->munmap(addr, len);
}

static int count_madvise(void *addr, size_t len, int advice)
{
    return installed(CALL_MADVISE)->madvise(addr, len, advice);
}

static void *count_mremap(void *old_addr, size_t old_len, size_t new_len, int flags,
                          void *new_addr)
{
    const struct heap_os_ops *ops = __atomic_load_n(&os_current, __ATOMIC_ACQUIRE);
    if (!ops->mremap) {
        errno = ENOSYS;
        return MAP_FAILED;
    }
    return installed(CALL_MREMAP)->mremap(old_addr, old_len, new_len, flags, new_addr);
}

static const struct heap_os_ops os_counting = {
    .sbrk = count_sbrk,
    .mmap = count_mmap,
    .munmap = count_munmap,
    .madvise = count_madvise,
    .mremap = count_mremap,
};

void heap_os_calls(size_t out[HEAP_OS_CALLS])
{
    for (int i = 0; i < HEAP_OS_CALLS; i++)
        out[i] = __atomic_load_n(&os_counts[i], __ATOMIC_RELAXED);
}

void heap_os_calls_reset(void)
{
    for (int i = 0; i < HEAP_OS_CALLS; i++)
        __atomic_store_n(&os_counts[i], 0, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- the table */

const struct heap_os_ops *heap_os(void)
{
    return &os_counting;
}

void heap_os_install_locked(const struct heap_os_ops *ops)
{
    heap_assert_locked();
    __atomic_store_n(&os_current, ops ? ops : &heap_os_real, __ATOMIC_RELEASE);
}

int heap_set_os_ops(const struct heap_os_ops *ops)
{
    if (ops && !(ops->sbrk && ops->mmap && ops->munmap && ops->madvise)) {
        errno = EINVAL;
        return -1;
    }
    heap_lock();
    bool busy = heap_holds_extents_locked();
    if (!busy)
        heap_os_install_locked(ops);
    heap_unlock();
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}
