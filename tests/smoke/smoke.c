/* SPDX-License-Identifier: MIT */
/* Smoke library: exercises C11 flags, pthreads and the sanitizers. */
#include "tests/smoke/smoke.h"

#include <pthread.h>
#include <stdlib.h>

struct smoke_shared {
    pthread_mutex_t lock;
    size_t count;
    size_t iters;
};

static void *smoke_worker(void *arg)
{
    struct smoke_shared *shared = arg;
    for (size_t i = 0; i < shared->iters; i++) {
        pthread_mutex_lock(&shared->lock);
        shared->count++;
        pthread_mutex_unlock(&shared->lock);
    }
    return NULL;
}

size_t smoke_count_threads(unsigned nthreads, size_t iters)
{
    struct smoke_shared shared = { PTHREAD_MUTEX_INITIALIZER, 0, iters };
    pthread_t *threads = calloc(nthreads, sizeof(*threads));
    unsigned started = 0;
    size_t result;

    if (threads == NULL)
        return 0;
    for (; started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, smoke_worker, &shared) != 0)
            break;
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    result = started == nthreads ? shared.count : 0;
    return result;
}
