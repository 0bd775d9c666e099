/* SPDX-License-Identifier: MIT */
/* slab/ptrset.c - sets of pointers as arrays sorted by address, without allocating.
 *
 * Used where a report or a validator must ask "is this pointer among those" for many
 * pointers: the objects cached in magazines (leak.c, the validator's double-caching check)
 * and the expected leaks.  Sorting is a heapsort because qsort may allocate.
 */
#include <stdint.h>

#include "slab/internal.h"

size_t ptrset_lower_bound(const void *const *set, size_t n, const void *p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)set[mid] < (uintptr_t)p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool ptrset_contains(const void *const *set, size_t n, const void *p)
{
    size_t i = ptrset_lower_bound(set, n, p);
    return i < n && set[i] == p;
}

static void sift_down(void **a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && (uintptr_t)a[child + 1] > (uintptr_t)a[child])
            child++;
        if ((uintptr_t)a[root] >= (uintptr_t)a[child])
            return;
        void *t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

void ptrset_sort(void **a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        void *t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}
