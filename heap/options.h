/* SPDX-License-Identifier: MIT */
/* heap/options.h - every SLABCACHE_* environment variable, declared once, and the typed
 * accessors that read them.  Not an API (the library exports none of this).
 *
 * The table below is the only declaration of a variable: its name, type, default, range,
 * accepted words and one line of help.  heap/options.c reads the environment once, on the
 * first access (inside the first malloc, possibly before main), without allocating: getenv,
 * a walk of `environ`, parsing by hand, reports formatted on the stack and written with
 * write(2).  Every layer reads its options through the accessors; nothing else in the
 * library calls getenv, but heap/fmt.c for SLABCACHE_LOG (the report descriptor is opened to
 * write the option table's own lines, under its lock).
 *
 * Values, by type (the same for every variable of that type):
 *   BOOL    1/0, yes/no, true/false, on/off, in any case
 *   SIZE    a decimal number of bytes with an optional k, m or g suffix (powers of 1024)
 *   UINT    a decimal number from min to max
 *   CHOICE  one of the words in `values` ("abort|report"), in any case; when the words start
 *           with "off|on", the boolean words above also mean off and on.  A CHOICE whose
 *           `min` is HEAP_OPT_LIST takes several words separated by commas ("all,exit"):
 *           its value is the set of their indexes as bits, "off" the empty set
 *   STRING  any text up to HEAP_OPT_TEXT_MAX - 1 bytes, checked by its reader
 * An empty value is the same as an unset variable, except for STRING variables (their reader
 * decides: an empty SLABCACHE_DEBUG means every debug option, as the kernel's bare slub_debug).
 * A value that does not parse, or lies outside the range, is reported once at start-up
 *   slabcache: SLABCACHE_STATS=maybe: expected a boolean (1/0, yes/no, true/false, on/off); using the default (off)
 * and the default is used; so is a SLABCACHE_* name the table does not know
 *   slabcache: unknown variable SLABCACHE_STAT (did you mean SLABCACHE_STATS?)
 * and SLABCACHE_VERBOSE=1 lists every option in effect with its source.  Those lines are
 * written by heap_opt_announce(), which the heap (first extent) and the slab layer (first
 * cache) call: tools that link this file for their own variables stay silent.
 *
 * To add a variable:
 *   1. one line in HEAP_OPTION_TABLE, in the group of its layer:
 *        X(NAME, TYPE, default, min, max, "words|or|syntax", "one line of help")
 *      NAME without the SLABCACHE_ prefix; min and max matter for SIZE and UINT (0 and
 *      UINT64_MAX: any), the default of a CHOICE is the index of its word, a STRING's is
 *      always unset (write 0);
 *   2. read it where it is used: heap_opt_bool(OPT_NAME), heap_opt_size, heap_opt_uint,
 *      heap_opt_is(OPT_NAME, "word") / heap_opt_choice, heap_opt_string;
 *   3. document it: `bazel run //tools:options_doc -- --update docs/api.md` rewrites the
 *      table in docs/api.md, and docs/man/slabcache.7 needs a .TP entry
 *      (//tests/api:options_doc_test fails until both are done);
 *   4. give it a good and a bad value in kCases of tests/options/options_test.cc
 *      (EveryVariableHasACase fails until then).
 * A variable read only by the project's scripts (never by the library) goes in
 * HEAP_OPTION_SCRIPT_TABLE instead, so that it is not reported as unknown.
 */
#ifndef SLABCACHE_HEAP_OPTIONS_H
#define SLABCACHE_HEAP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, TYPE, default, min, max, values, help) */
#define HEAP_OPTION_TABLE(X)                                                                      \
    /* heap/: extents from the system */                                                         \
    X(HEAP_LIMIT, SIZE, 0, 0, UINT64_MAX, "",                                                    \
      "cap on the bytes held from the system (sbrk and mmap); past it allocations fail with "   \
      "ENOMEM; 0: no cap")                                                                       \
    X(SBRK, BOOL, 1, 0, 1, "",                                                                   \
      "grow with sbrk; off: mmap only, the program break is never moved")                       \
    X(MMAP_FALLBACK, BOOL, 1, 0, 1, "",                                                          \
      "when sbrk fails, map extents with mmap; off: fail with ENOMEM")                          \
    X(HEAP_KEEP_FREE, SIZE, (16u << 20), 0, UINT64_MAX, "",                                      \
      "bytes of free (purged) mapped extents kept for reuse instead of being unmapped")         \
    /* buddy/: page blocks */                                                                    \
    X(SPARE_EXTENTS, UINT, 64, 1, (1u << 20), "",                                                \
      "wholly free 4 MiB extents the page layer keeps for reuse instead of returning them")     \
    X(DECAY_MS, UINT, 300, 0, UINT32_MAX, "",                                                     \
      "milliseconds a freed page stays resident before it is given back (purged) from a later " \
      "slow path; 0: at the next slow path; 4294967295: never (until malloc_trim)")             \
    /* slab/: misuse, debugging, leaks, statistics */                                           \
    X(ON_ERROR, CHOICE, 0, 0, 0, "abort|report",                                                 \
      "after a misuse report (double free, foreign pointer, damaged red zone): abort, or "      \
      "report and continue (the bad operation is refused)")                                     \
    X(DEBUG, STRING, 0, 0, 0, "FLAGS[,CACHE...][;FLAGS[,CACHE...]...]",                          \
      "debug options per cache in the kernel's slub_debug syntax: flags F Z P U T A O -, "      \
      "cache names with * globs, blocks separated by ';' (docs/debugging.md)")                   \
    X(FAIL, STRING, 0, 0, 0, "every=N|prob=P[,seed=S][,cache=NAME...]",                          \
      "fault injection: fail every Nth allocation, or each with probability P, in the caches " \
      "named (all when none)")                                                                   \
    X(LEAKS, CHOICE, 0, HEAP_OPT_LIST, 0, "off|on|exit|reachable|all|list",                       \
      "report the blocks lost at exit (on), also the reachable ones (reachable), also every "   \
      "live block (all, list); exit: also end the process with SLABCACHE_LEAK_EXIT_CODE "       \
      "when blocks were lost; words separated by commas")                                       \
    X(LEAK_EXIT_CODE, UINT, 23, 1, 255, "",                                                      \
      "exit status when leaks were found; setting it makes SLABCACHE_LEAKS=on exit too")        \
    X(STATS, CHOICE, 0, 0, 0, "off|on|2|3|4|json",                                               \
      "print the state at exit on the report descriptor: on (or 1) every cache in "             \
      "/proc/slabinfo form, 2 to 4 with more detail, json as one JSON document")                \
    X(WATCH, STRING, 0, 0, 0, "INTERVAL[,file=PATH]",                                            \
      "the leak-slope watch: sample the live bytes every INTERVAL (10ms to 1h: 1, 0.5, 250ms, " \
      "2m) and report caches whose live bytes grow steadily (docs/observability.md)")          \
    X(LOG, STRING, 0, 0, 0, "PATH",                                                              \
      "write reports and statistics to PATH instead of stderr (%p: the process id)")           \
    X(VALGRIND, BOOL, 1, 0, 1, "",                                                               \
      "under valgrind, caches take the slow paths that tell memcheck about every object; "     \
      "off: keep the magazines (for callgrind or cachegrind)")                                  \
    X(VERBOSE, BOOL, 0, 0, 1, "",                                                                \
      "print every option in effect, and where its value came from, at start-up")              \
    /* tools/libpeakmap.so (not installed) */                                                   \
    X(PEAKMAP, STRING, 0, 0, 0, "PATH",                                                          \
      "tools/libpeakmap.so: write the heap map at the peak RSS to PATH.PID at exit")         \
    X(PEAKMAP_ONLY, STRING, 0, 0, 0, "NAME",                                                     \
      "tools/libpeakmap.so: only in processes whose command name or first argument is NAME")

/* Variables of the project's scripts and benchmarks: known, so never reported as unknown,
 * but the library does not read them.  Y(NAME, help) */
#define HEAP_OPTION_SCRIPT_TABLE(Y)                                                               \
    Y(BAZEL, "tools/*.sh, benchmarks/*.sh: the Bazel command line (default: bazel)")            \
    Y(TEST_LOGDIR, "tools/test.sh: where the Bazel logs of each configuration go")              \
    Y(EXTRA_PACKAGES, "tools/setup.sh: more Debian packages to install")                        \
    Y(BENCH_REEXEC, "benchmarks: set by a benchmark that re-executes itself once")

enum heap_opt {
#define HEAP_OPT_ENUM(n, t, d, lo, hi, v, h) OPT_##n,
    HEAP_OPTION_TABLE(HEAP_OPT_ENUM)
#undef HEAP_OPT_ENUM
    OPT_COUNT
};

/* `min` of a CHOICE that takes a comma-separated list of its words. */
#define HEAP_OPT_LIST 1

enum heap_opt_type { HEAP_OPT_BOOL, HEAP_OPT_SIZE, HEAP_OPT_UINT, HEAP_OPT_CHOICE, HEAP_OPT_STRING };

/* Where the value in effect came from. */
enum heap_opt_source {
    HEAP_OPT_FROM_DEFAULT = 0,  /* unset or empty */
    HEAP_OPT_FROM_ENV = 1,      /* the environment */
    HEAP_OPT_FROM_REJECTED = 2, /* the default: the environment's value was rejected */
};

/* One row of the table. */
struct heap_opt_def {
    const char *name;   /* "SLABCACHE_STATS" */
    enum heap_opt_type type;
    uint64_t def, min, max;
    const char *values; /* CHOICE: the words, '|'-separated; STRING: its syntax */
    const char *help;
};

/* Longest text kept for a value, NUL included (STRING values longer than this are rejected). */
#define HEAP_OPT_TEXT_MAX 1024

/* ---------------------------------------------------------------- accessors
 * The first call reads the whole table from the environment (takes the option lock, a leaf:
 * nothing is taken inside it); later calls are a load.  Each asserts, in debug builds, that
 * the variable has the accessor's type. */
bool heap_opt_bool(enum heap_opt id);
size_t heap_opt_size(enum heap_opt id);
uint64_t heap_opt_uint(enum heap_opt id);
unsigned heap_opt_choice(enum heap_opt id);               /* the index of the word */
bool heap_opt_is(enum heap_opt id, const char *word);     /* CHOICE: is it this word? */
const char *heap_opt_string(enum heap_opt id);            /* NULL when unset */
enum heap_opt_source heap_opt_source(enum heap_opt id);
/* The environment's text when it was rejected (for a report that names it), else NULL. */
const char *heap_opt_rejected(enum heap_opt id);

/* Write the start-up lines once per load: each rejected value, each unknown SLABCACHE_*
 * name, and with SLABCACHE_VERBOSE every option in effect. */
void heap_opt_announce(void);

/* ---------------------------------------------------------------- the table itself */
const struct heap_opt_def *heap_opt_lookup(enum heap_opt id);
/* NULL-terminated names of HEAP_OPTION_SCRIPT_TABLE, and their help (same index). */
extern const char *const heap_opt_script_names[];
extern const char *const heap_opt_script_help[];
/* Text of a value of id (default "16m", "off", "abort", "unset"), of its accepted values
 * ("a boolean (1/0, yes/no, true/false, on/off)", "an integer from 1 to 255"), or of the
 * value in effect.  Return the length written (buf is always NUL-terminated). */
size_t heap_opt_format(char *buf, size_t len, enum heap_opt id, uint64_t value);
size_t heap_opt_format_expected(char *buf, size_t len, enum heap_opt id);
/* Parse text as a value of id: 0 and *out (the number, the word's index; STRING: 0), or -1. */
int heap_opt_parse(enum heap_opt id, const char *text, uint64_t *out);
/* The closest known name to `name` (len bytes) within two edits, ignoring case; NULL if none. */
const char *heap_opt_suggest(const char *name, size_t len);

/* ---------------------------------------------------------------- tests, fork */
/* Forget what was read: the next access reads the environment again, and the next
 * heap_opt_announce() writes again.  Tests only (setenv, then this). */
void heap_opt_reset_for_tests(void);
/* Where the copies of the environment's texts live (*bytes: their size), so a test can check
 * that loading leaves the rows of unset variables untouched.  Tests only. */
const void *heap_opt_text_storage_for_tests(size_t *bytes);
/* The option lock, for the atfork handlers: innermost, taken after every other lock (the
 * slab layer's debug options lock holds it while it parses). */
void heap_opt_lock(void);
void heap_opt_unlock(void);

#ifdef __cplusplus
}
#endif
#endif
