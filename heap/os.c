/* SPDX-License-Identifier: MIT */
/* heap/os.c - the only place the heap talks to the OS: a table of operations.
 *
 * heap.c calls sbrk, mmap, munmap and madvise through heap_os(), so tests can install a fake
 * that fails on demand or moves the break behind the heap's back (heap_set_os_ops).  The
 * table may change only while the heap holds no extents, so a call that found an extent
 * never races with a change of table. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap/heap_internal.h"

const struct heap_os_ops heap_os_real = {
    .sbrk = sbrk,
    .mmap = mmap,
    .munmap = munmap,
    .madvise = madvise,
};

static const struct heap_os_ops *os_current = &heap_os_real;

const struct heap_os_ops *heap_os(void)
{
    return __atomic_load_n(&os_current, __ATOMIC_ACQUIRE);
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
