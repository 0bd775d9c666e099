/* SPDX-License-Identifier: MIT */
/* slab/debug.h - debugging of kmem_caches (debug.c): options, slot layout, hooks, checks.
 * Not an API; docs/debugging.md has the long form.
 *
 * A cache with any debug option (cache->debug != 0) has no magazines: every alloc and free
 * reaches the slab layer, where slab.c calls the hooks below under cache->lock.  The hooks
 * never print: they fill a struct debug_problem, and the caller reports it with
 * debug_report() after dropping cache->lock (symbolising a call site may take the dynamic
 * linker's lock, and an abort should not leave our locks held).
 *
 * Slot layout of a debug cache (offsets from the slot start):
 *
 *   +----------------------+---------------------+-----------------------+---------+
 *   | object (object_size) | red zone (Z)        | struct debug_track (U) | padding |
 *   +----------------------+---------------------+-----------------------+---------+
 *   0                      rz_off                 track_off              slot_size
 *
 *   red zone: rz_len >= 8 bytes from the end of the object to the next 8-byte boundary (to
 *   slot_size when there is no track record); 0xbb while the object is allocated, 0xcc while
 *   it is free.  Poison (P): a free object is 0x6b bytes, the last one 0xa5.
 */
#ifndef SLABCACHE_SLAB_DEBUG_H
#define SLABCACHE_SLAB_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slab/types.h"

/* cache->debug bits. */
#define SLAB_DBG_CHECKS 0x01u   /* F: sanity checks on every operation */
#define SLAB_DBG_REDZONE 0x02u  /* Z */
#define SLAB_DBG_POISON 0x04u   /* P */
#define SLAB_DBG_USER 0x08u     /* U: struct debug_track per slot */
#define SLAB_DBG_TRACE 0x10u    /* T: one line per alloc/free */
#define SLAB_DBG_FAIL 0x20u     /* SLABCACHE_FAIL applies to this cache */
#define SLAB_DBG_VALGRIND 0x40u /* running on valgrind: client requests */
#define SLAB_DBG_ASAN 0x80u     /* ASan build, magazine-less cache: manual poisoning */

#define SLAB_POISON_FREE 0x6bu
#define SLAB_POISON_END 0xa5u
#define SLAB_RED_ACTIVE 0xbbu
#define SLAB_RED_INACTIVE 0xccu
#define SLAB_RED_MIN 8u

/* U: who allocated and freed a slot last. */
struct debug_track {
    const void *alloc_site, *free_site; /* return addresses in the caller */
    uint32_t alloc_tid, free_tid;       /* gettid() */
    uint64_t alloc_ns, free_ns;         /* CLOCK_MONOTONIC */
};

enum debug_kind {
    SLAB_DBG_OK = 0,
    SLAB_DBG_USE_AFTER_FREE, /* poison changed while free */
    SLAB_DBG_REDZONE_BAD,    /* red zone changed */
    SLAB_DBG_DOUBLE_FREE,    /* slot already free (checked under the lock) */
    SLAB_DBG_SLAB_BAD,       /* F: slab invariants broken (already printed) */
};

/* What a hook found; reported by debug_report() outside the lock. */
struct debug_problem {
    enum debug_kind kind;
    const void *obj;
    const void *caller;
    const char *op;            /* "alloc" / "free" */
    size_t first, last;        /* offsets (in the object or the red zone) of changed bytes */
    unsigned char found;       /* value of the first changed byte */
    unsigned char expected;
    bool have_track;
    struct debug_track track;
};

/* The track record of a slot (SLAB_DBG_USER caches only). */
static inline struct debug_track *debug_track_of(const struct kmem_cache *c, const void *obj)
{
    return (struct debug_track *)((uintptr_t)obj + c->track_off);
}

/* ---------------------------------------------------------------- options (debug.c) */
/* Debug bits and layout for a new cache (name, flags); fills c->debug, rz_off, rz_len,
 * track_off, slot_size and the fault-injection fields.  Called by cache_create before the
 * geometry is computed.  Takes the debug options lock (a leaf). */
void debug_setup_cache(struct kmem_cache *c, unsigned int flags, bool has_ctor);
/* Tests: parse SLABCACHE_DEBUG and SLABCACHE_FAIL again at the next cache creation. */
void debug_reset_options(void);

/* ---------------------------------------------------------------- hooks (cache->lock held)
 * Functions named *_locked assert cache->lock in debug builds. */
/* A new slab, not yet visible: poison, red zones, track records of every slot. */
void debug_init_slab(struct kmem_cache *c, struct slab *s);
/* Fault injection: true when this allocation must fail. */
bool debug_should_fail_locked(struct kmem_cache *c);
/* obj was just taken from its slab. */
void debug_alloc_locked(struct kmem_cache *c, void *obj, const void *caller,
                        struct debug_problem *pb);
/* obj is about to go back to its slab; false = refuse the free (double free). */
bool debug_free_locked(struct kmem_cache *c, void *obj, const void *caller,
                       struct debug_problem *pb);
/* Validation of one slot of a debug cache: 0, or -1 after printing. */
int debug_validate_slot_locked(struct kmem_cache *c, const void *obj, bool in_use);
/* Report a problem (no lock held); calls report_misuse() for misuse kinds. */
void debug_report(struct kmem_cache *c, const struct debug_problem *pb);
/* U: "last allocated by / last freed by" lines for obj (no lock held). */
void debug_report_track(struct kmem_cache *c, const void *obj);
/* T: a trace line (no lock held). */
void debug_trace(struct kmem_cache *c, const char *op, const void *obj, const void *caller);
/* "0x... (module+0xoff symbol+0xoff)" for a code address, without allocating. */
size_t debug_format_site(char *buf, size_t len, const void *addr);

/* Memory-checker annotations (valgrind client requests, ASan manual poisoning). */
void debug_mark_slab_new(struct kmem_cache *c, struct slab *s);
void debug_mark_slab_release(struct kmem_cache *c, struct slab *s);
void debug_mark_alloc(struct kmem_cache *c, void *obj);
void debug_mark_free(struct kmem_cache *c, void *obj);
void debug_mark_dtor(struct kmem_cache *c, void *obj);

#endif
