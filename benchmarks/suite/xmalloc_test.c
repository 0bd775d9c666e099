/* SPDX-License-Identifier: MIT */
/* xmalloc_test - producer threads allocate, consumer threads free.
 *
 *   xmalloc_test [WORKERS=2] [BATCHES=500] [SIZE=64] [SEED=1]
 *
 * The pattern of the xmalloc-test of Lever and Boreham ("malloc() Performance in a
 * Multithreaded Linux Environment", USENIX 2000) as mimalloc-bench runs it (xmalloc-testN:
 * -w N -s 64), in our own code and with a fixed amount of work instead of a fixed time:
 * WORKERS producers each allocate BATCHES batches of 4096 blocks of SIZE bytes (SIZE = 0:
 * a random size of 8..2048 bytes from a fixed list per block), write the first min(SIZE,
 * 128) bytes of each, and queue the batch (a bounded queue of 100 batches behind a mutex
 * and two condition variables); WORKERS consumers take batches and free every block, after
 * checking its bytes.  Every block is allocated by one thread and freed by another.
 */
#include <stdatomic.h>
#include <stdbool.h>

#include "benchmarks/suite/suite.h"

#define OBJECTS_PER_BATCH 4096
#define QUEUE_LIMIT 100

struct batch {
    struct batch *next;
    uint32_t producer, seq;
    uint32_t size[OBJECTS_PER_BATCH];
    unsigned char *obj[OBJECTS_PER_BATCH];
};

static const uint32_t sizes[] = {8,   12,  16,  24,  32,   48,   64,   96,  128,
                                 192, 256, 384, 512, 768, 1024, 1536, 2048};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static struct batch *queue;
static long queued, producers_left;
static long batches_per_producer, object_size;
static atomic_ullong freed, bytes_checked;

static void enqueue(struct batch *b)
{
    pthread_mutex_lock(&lock);
    while (queued >= QUEUE_LIMIT)
        pthread_cond_wait(&not_full, &lock);
    b->next = queue;
    queue = b;
    queued++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
}

/* NULL once every producer has finished and the queue is empty. */
static struct batch *dequeue(void)
{
    pthread_mutex_lock(&lock);
    while (!queue && producers_left > 0)
        pthread_cond_wait(&not_empty, &lock);
    struct batch *b = queue;
    if (b) {
        queue = b->next;
        queued--;
        pthread_cond_signal(&not_full);
    }
    pthread_mutex_unlock(&lock);
    return b;
}

static unsigned char fill_byte(const struct batch *b, size_t i, size_t k)
{
    return (unsigned char)(b->producer * 131u + b->seq * 31u + i + k);
}

struct arg {
    uint32_t id;
    uint64_t seed;
};

static void *producer(void *varg)
{
    const struct arg *a = varg;
    struct suite_rng r;
    suite_rng_seed(&r, a->seed);
    for (long n = 0; n < batches_per_producer; n++) {
        struct batch *b = suite_check_alloc(malloc(sizeof *b), sizeof *b);
        b->producer = a->id;
        b->seq = (uint32_t)n;
        for (size_t i = 0; i < OBJECTS_PER_BATCH; i++) {
            uint32_t size = object_size > 0 ? (uint32_t)object_size
                                            : sizes[suite_below(&r, sizeof sizes / sizeof *sizes)];
            b->size[i] = size;
            b->obj[i] = suite_check_alloc(malloc(size), size);
            size_t w = size < 128 ? size : 128;
            for (size_t k = 0; k < w; k++)
                b->obj[i][k] = fill_byte(b, i, k);
        }
        enqueue(b);
    }
    pthread_mutex_lock(&lock);
    if (--producers_left == 0)
        pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *varg)
{
    (void)varg;
    unsigned long long n = 0, checked = 0;
    struct batch *b;
    while ((b = dequeue()) != NULL) {
        for (size_t i = 0; i < OBJECTS_PER_BATCH; i++) {
            size_t w = b->size[i] < 128 ? b->size[i] : 128;
            for (size_t k = 0; k < w; k++)
                if (b->obj[i][k] != fill_byte(b, i, k))
                    suite_fail("xmalloc_test: block %p (producer %u, batch %u, #%zu) corrupted "
                               "at byte %zu",
                               (void *)b->obj[i], b->producer, b->seq, i, k);
            checked += w;
            free(b->obj[i]);
        }
        n += OBJECTS_PER_BATCH;
        free(b);
    }
    atomic_fetch_add(&freed, n);
    atomic_fetch_add(&bytes_checked, checked);
    return NULL;
}

static void *worker(void *varg)
{
    const struct arg *a = varg;
    return (a->id & 1) ? consumer(varg) : producer(varg);
}

int main(int argc, char **argv)
{
    const char *usage = "[WORKERS=2] [BATCHES=500] [SIZE=64 (0: random sizes)] [SEED=1]";
    long workers = suite_arg(argc, argv, 1, 2, 1, 512, usage);
    batches_per_producer = suite_arg(argc, argv, 2, 500, 1, 1L << 24, usage);
    object_size = suite_arg(argc, argv, 3, 64, 0, 1L << 20, usage);
    long seed = suite_arg(argc, argv, 4, 1, 0, 1L << 40, usage);

    double start = suite_now();
    producers_left = workers;
    /* Thread 2i is producer i, thread 2i + 1 a consumer: both kinds start together. */
    struct arg *args = suite_check_alloc(calloc((size_t)(2 * workers), sizeof *args),
                                         (size_t)(2 * workers) * sizeof *args);
    for (long i = 0; i < 2 * workers; i++) {
        args[i].id = (uint32_t)i;
        args[i].seed = suite_mix64((uint64_t)seed * 7919u + (uint64_t)i);
    }
    suite_run_threads((size_t)(2 * workers), worker, args, sizeof *args);
    free(args);
    unsigned long long expect = (unsigned long long)workers * (unsigned long long)batches_per_producer *
                                OBJECTS_PER_BATCH;
    if (atomic_load(&freed) != expect)
        suite_fail("xmalloc_test: %llu blocks freed, %llu allocated", atomic_load(&freed), expect);
    suite_report(start, "xmalloc_test workers=%ld batches=%ld size=%ld blocks=%llu bytes_checked=%llu",
                 workers, batches_per_producer, object_size, expect,
                 (unsigned long long)atomic_load(&bytes_checked));
    return 0;
}
