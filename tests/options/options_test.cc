/* SPDX-License-Identifier: MIT */
// tests/options/options_test.cc - the SLABCACHE_* option table (heap/options.h).
//
// Strategy: each test sets variables with setenv, calls heap_opt_reset_for_tests() (the
// table reads the environment again at the next access) and reads them back with the typed
// accessors; heap_opt_announce() writes the start-up lines, captured from stderr and compared
// whole.  Every variable of the table has a case below (good value, bad value, unset): a
// variable added to the table without one fails EveryVariableHasACase.  What the library
// does with its options at start-up, before main, is checked by preload_test.sh with a
// small program under the preloaded libslabcache.so.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "buddy/buddy.h"
#include "heap/heap_internal.h"
#include "heap/options.h"
}

extern char **environ;

namespace {

// Every SLABCACHE_* variable out of the environment, and the table forgotten.
void ClearEnvironment() {
    std::vector<std::string> names;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "SLABCACHE_", 10) == 0)
            names.emplace_back(*e, strcspn(*e, "="));
    for (auto &n : names) unsetenv(n.c_str());
    heap_opt_reset_for_tests();
}

class Options : public ::testing::Test {
  protected:
    void SetUp() override { ClearEnvironment(); }
    void TearDown() override { ClearEnvironment(); }

    // setenv each pair, then read the table again.
    void Set(std::initializer_list<std::pair<const char *, const char *>> vars) {
        for (auto &v : vars) setenv(v.first, v.second, 1);
        heap_opt_reset_for_tests();
    }
};

// The start-up lines of the current environment.
std::string Announce() {
    testing::internal::CaptureStderr();
    heap_opt_announce();
    return testing::internal::GetCapturedStderr();
}

std::vector<std::string> Lines(const std::string &text) {
    std::vector<std::string> out;
    size_t at = 0;
    while (at < text.size()) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        out.push_back(text.substr(at, nl - at));
        at = nl + 1;
    }
    return out;
}

std::string Name(heap_opt id) { return heap_opt_lookup(id)->name; }

std::string Default(heap_opt id) {
    char buf[256];
    heap_opt_format(buf, sizeof buf, id, heap_opt_lookup(id)->def);
    return buf;
}

std::string Expected(heap_opt id) {
    char buf[256];
    heap_opt_format_expected(buf, sizeof buf, id);
    return buf;
}

// ------------------------------------------------------------------ the table

TEST_F(Options, TableIsWellFormed) {
    std::set<std::string> names;
    for (unsigned i = 0; i < OPT_COUNT; i++) {
        const heap_opt_def *d = heap_opt_lookup(static_cast<heap_opt>(i));
        ASSERT_NE(nullptr, d);
        std::string name = d->name;
        EXPECT_EQ(0u, name.rfind("SLABCACHE_", 0)) << name;
        EXPECT_EQ(std::string::npos, name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))
            << name;
        EXPECT_TRUE(names.insert(name).second) << name << " twice";
        EXPECT_GT(strlen(d->help), 10u) << name;
        EXPECT_EQ(nullptr, strchr(d->help, '\n')) << name;
        switch (d->type) {
        case HEAP_OPT_BOOL:
            EXPECT_LE(d->def, 1u) << name;
            break;
        case HEAP_OPT_SIZE:
        case HEAP_OPT_UINT:
            EXPECT_LE(d->min, d->def) << name;
            EXPECT_LE(d->def, d->max) << name;
            break;
        case HEAP_OPT_CHOICE: {
            std::string words = d->values;
            size_t n = std::count(words.begin(), words.end(), '|') + 1;
            EXPECT_GE(n, 2u) << name;
            EXPECT_LT(d->def, n) << name;
            EXPECT_EQ(std::string::npos, words.find("||")) << name;
            break;
        }
        case HEAP_OPT_STRING:
            EXPECT_EQ(0u, d->def) << name;
            EXPECT_GT(strlen(d->values), 0u) << name << ": say its syntax";
            break;
        }
    }
    for (size_t i = 0; heap_opt_script_names[i]; i++) {
        EXPECT_TRUE(names.insert(heap_opt_script_names[i]).second) << heap_opt_script_names[i];
        EXPECT_NE(nullptr, heap_opt_script_help[i]);
    }
    EXPECT_EQ(nullptr, heap_opt_lookup(OPT_COUNT));
}

// The layers keep constants of their own next to the table's defaults: they must agree.
TEST_F(Options, DefaultsAgreeWithTheLayersConstants) {
    EXPECT_EQ(HEAP_DEFAULT_KEEP_FREE, heap_opt_size(OPT_HEAP_KEEP_FREE));
    EXPECT_EQ(uint64_t{BUDDY_SPARE_EXTENTS_DEFAULT}, heap_opt_uint(OPT_SPARE_EXTENTS));
    EXPECT_EQ(uint64_t{BUDDY_DECAY_MS_DEFAULT}, heap_opt_uint(OPT_DECAY_MS));
    EXPECT_EQ(uint64_t{BUDDY_SPARE_EXTENTS_MIN}, heap_opt_lookup(OPT_SPARE_EXTENTS)->min);
    EXPECT_EQ(23u, heap_opt_uint(OPT_LEAK_EXIT_CODE));  // docs/debugging.md, api.md
}

// ------------------------------------------------------------------ parsing

TEST_F(Options, BooleansTakeEveryDocumentedWordInAnyCase) {
    const std::pair<const char *, bool> words[] = {
        {"1", true},  {"yes", true},  {"true", true},   {"on", true},
        {"0", false}, {"no", false},  {"false", false}, {"off", false},
        {"YES", true}, {"No", false}, {"TrUe", true},   {"OFF", false},
    };
    for (auto &w : words) {
        uint64_t v = 7;
        EXPECT_EQ(0, heap_opt_parse(OPT_VERBOSE, w.first, &v)) << w.first;
        EXPECT_EQ(w.second ? 1u : 0u, v) << w.first;
        Set({{"SLABCACHE_VERBOSE", w.first}});
        EXPECT_EQ(w.second, heap_opt_bool(OPT_VERBOSE)) << w.first;
        EXPECT_EQ(HEAP_OPT_FROM_ENV, heap_opt_source(OPT_VERBOSE)) << w.first;
    }
    for (const char *bad : {"maybe", "2", "10", "y", "n", "on ", " 1", "+1", "yess", "o", "offf"}) {
        uint64_t v;
        EXPECT_EQ(-1, heap_opt_parse(OPT_VERBOSE, bad, &v)) << bad;
    }
}

TEST_F(Options, SizesTakeKMGSuffixes) {
    const std::pair<const char *, uint64_t> good[] = {
        {"0", 0},           {"123", 123},       {"64k", 64u << 10}, {"64K", 64u << 10},
        {"16m", 16u << 20}, {"16M", 16u << 20}, {"2g", 2ull << 30}, {"2G", 2ull << 30},
        {"18446744073709551615", UINT64_MAX},    {"17179869183g", 17179869183ull << 30},
    };
    for (auto &g : good) {
        uint64_t v = 0;
        EXPECT_EQ(0, heap_opt_parse(OPT_HEAP_LIMIT, g.first, &v)) << g.first;
        EXPECT_EQ(g.second, v) << g.first;
    }
    for (const char *bad : {"", "k", "1t", "1kb", "-1", "1.5m", "0x10", " 1", "1 ",
                            "18446744073709551616", "17179869184g", "16mm"}) {
        uint64_t v;
        EXPECT_EQ(-1, heap_opt_parse(OPT_HEAP_LIMIT, bad, &v)) << bad;
    }
    char buf[32];
    const std::pair<uint64_t, const char *> shown[] = {
        {0, "0"}, {1536, "1536"}, {4096, "4k"}, {16u << 20, "16m"}, {3ull << 30, "3g"}};
    for (auto &s : shown) {
        heap_opt_format(buf, sizeof buf, OPT_HEAP_LIMIT, s.first);
        EXPECT_STREQ(s.second, buf);
    }
}

TEST_F(Options, ChoicesTakeTheirWordsInAnyCaseAndBooleansWhenOffOn) {
    uint64_t v;
    EXPECT_EQ(0, heap_opt_parse(OPT_ON_ERROR, "REPORT", &v));
    EXPECT_EQ(1u, v);
    EXPECT_EQ(-1, heap_opt_parse(OPT_ON_ERROR, "1", &v));  // abort|report: no boolean words
    EXPECT_EQ(-1, heap_opt_parse(OPT_ON_ERROR, "reprot", &v));
    EXPECT_EQ(-1, heap_opt_parse(OPT_ON_ERROR, "repor", &v));
    EXPECT_EQ(-1, heap_opt_parse(OPT_ON_ERROR, "reports", &v));
    // SLABCACHE_STATS: off|on|2|3|4|json, with the boolean words for off and on.
    const std::pair<const char *, uint64_t> stats[] = {
        {"off", 0}, {"no", 0}, {"1", 1}, {"On", 1}, {"2", 2}, {"4", 4}, {"JSON", 5}};
    for (auto &st : stats) {
        EXPECT_EQ(0, heap_opt_parse(OPT_STATS, st.first, &v)) << st.first;
        EXPECT_EQ(st.second, v) << st.first;
    }
    for (const char *bad : {"5", "maybe", "1,2", "jsonl"})
        EXPECT_EQ(-1, heap_opt_parse(OPT_STATS, bad, &v)) << bad;
    // SLABCACHE_LEAKS is a list (off|on|exit|reachable|all|list): the set of words as bits,
    // off empties it.
    const std::pair<const char *, uint64_t> leaks[] = {
        {"off", 0},      {"on", 1u << 1},  {"exit", 1u << 2}, {"Exit", 1u << 2},
        {"0", 0},        {"no", 0},        {"1", 1u << 1},    {"TRUE", 1u << 1},
        {"all,exit", (1u << 4) | (1u << 2)},  {"reachable,Yes", (1u << 3) | (1u << 1)},
        {"exit,off", 0}, {"off,list", 1u << 5}};
    for (auto &l : leaks) {
        EXPECT_EQ(0, heap_opt_parse(OPT_LEAKS, l.first, &v)) << l.first;
        EXPECT_EQ(l.second, v) << l.first;
    }
    for (const char *bad : {"exit,", ",exit", "exit,,on", "sometimes", "all;exit"})
        EXPECT_EQ(-1, heap_opt_parse(OPT_LEAKS, bad, &v)) << bad;
    Set({{"SLABCACHE_LEAKS", "Reachable,EXIT"}});
    EXPECT_TRUE(heap_opt_is(OPT_LEAKS, "exit"));
    EXPECT_TRUE(heap_opt_is(OPT_LEAKS, "reachable"));
    EXPECT_FALSE(heap_opt_is(OPT_LEAKS, "all"));
    EXPECT_FALSE(heap_opt_is(OPT_LEAKS, "off"));
    char buf[64];
    heap_opt_format(buf, sizeof buf, OPT_LEAKS, heap_opt_choice(OPT_LEAKS));
    EXPECT_STREQ("exit,reachable", buf);
}

// ------------------------------------------------------------------ every variable

struct Case {
    heap_opt id;
    const char *good;     // a value that parses
    uint64_t good_num;    // what the accessor returns for it (STRING: unused)
    const char *bad;      // a value that does not (nullptr: STRING, see below)
};

const Case kCases[] = {
    {OPT_HEAP_LIMIT, "64m", 64u << 20, "64q"},
    {OPT_SBRK, "off", 0, "sometimes"},
    {OPT_MMAP_FALLBACK, "No", 0, "2"},
    {OPT_HEAP_KEEP_FREE, "8M", 8u << 20, "8 MiB"},
    {OPT_SPARE_EXTENTS, "3", 3, "lots"},
    {OPT_DECAY_MS, "0", 0, "300ms"},
    {OPT_ON_ERROR, "report", 1, "reprot"},
    {OPT_DEBUG, "Z,inode;U,dentry", 0, nullptr},
    {OPT_FAIL, "every=3,cache=x", 0, nullptr},
    {OPT_LEAKS, "all,EXIT", (1u << 4) | (1u << 2), "sometimes"},
    {OPT_LEAK_EXIT_CODE, "7", 7, "256"},
    {OPT_STATS, "yes", 1, "maybe"},
    {OPT_WATCH, "250ms,file=/tmp/w", 0, nullptr},
    {OPT_LOG, "/tmp/log.%p", 0, nullptr},
    {OPT_VALGRIND, "off", 0, "memcheck"},
    {OPT_VERBOSE, "1", 1, "very"},
    {OPT_PEAKMAP, "/tmp/peak", 0, nullptr},
    {OPT_PEAKMAP_ONLY, "git", 0, nullptr},
};

uint64_t Read(heap_opt id) {
    switch (heap_opt_lookup(id)->type) {
    case HEAP_OPT_BOOL: return heap_opt_bool(id);
    case HEAP_OPT_SIZE: return heap_opt_size(id);
    case HEAP_OPT_UINT: return heap_opt_uint(id);
    case HEAP_OPT_CHOICE: return heap_opt_choice(id);
    case HEAP_OPT_STRING: return heap_opt_string(id) != nullptr;
    }
    return ~0ull;
}

TEST_F(Options, EveryVariableHasACase) {
    std::set<unsigned> covered;
    for (auto &c : kCases) covered.insert(c.id);
    for (unsigned i = 0; i < OPT_COUNT; i++)
        EXPECT_TRUE(covered.count(i)) << "no test case for " << Name(static_cast<heap_opt>(i))
                                      << ": add one to kCases";
}

TEST_F(Options, EveryVariableUnsetIsItsDefaultAndSilent) {
    for (auto &c : kCases) {
        const heap_opt_def *d = heap_opt_lookup(c.id);
        if (d->type == HEAP_OPT_STRING)
            EXPECT_EQ(nullptr, heap_opt_string(c.id)) << d->name;
        else
            EXPECT_EQ(d->def, Read(c.id)) << d->name;
        EXPECT_EQ(HEAP_OPT_FROM_DEFAULT, heap_opt_source(c.id)) << d->name;
        EXPECT_EQ(nullptr, heap_opt_rejected(c.id)) << d->name;
    }
    EXPECT_EQ("", Announce());
}

TEST_F(Options, EveryVariableTakesAGoodValueSilently) {
    for (auto &c : kCases) {
        Set({{heap_opt_lookup(c.id)->name, c.good}});
        if (heap_opt_lookup(c.id)->type == HEAP_OPT_STRING)
            EXPECT_STREQ(c.good, heap_opt_string(c.id)) << c.good;
        else
            EXPECT_EQ(c.good_num, Read(c.id)) << Name(c.id) << "=" << c.good;
        EXPECT_EQ(HEAP_OPT_FROM_ENV, heap_opt_source(c.id)) << Name(c.id);
        std::string out = Announce();
        if (c.id == OPT_VERBOSE)  // the listing, and nothing else
            EXPECT_EQ(std::string::npos, out.find("expected")) << out;
        else
            EXPECT_EQ("", out) << Name(c.id) << "=" << c.good;
        unsetenv(heap_opt_lookup(c.id)->name);
    }
}

// A rejected value: one line naming the variable, the value and what is accepted, and the
// default in effect.  STRING variables are checked by their readers; the table rejects only
// values longer than it keeps.
TEST_F(Options, EveryVariableRejectsABadValueWithOneLineAndKeepsTheDefault) {
    std::string too_long(HEAP_OPT_TEXT_MAX, 'x');
    for (auto &c : kCases) {
        const heap_opt_def *d = heap_opt_lookup(c.id);
        std::string bad = c.bad ? c.bad : too_long;
        Set({{d->name, bad.c_str()}});
        if (d->type == HEAP_OPT_STRING)
            EXPECT_EQ(nullptr, heap_opt_string(c.id)) << d->name;
        else
            EXPECT_EQ(d->def, Read(c.id)) << d->name << "=" << bad;
        EXPECT_EQ(HEAP_OPT_FROM_REJECTED, heap_opt_source(c.id)) << d->name;
        ASSERT_NE(nullptr, heap_opt_rejected(c.id)) << d->name;
        std::string shown = c.bad ? bad : std::string(64, 'x') + "...";
        std::string want = "slabcache: " + Name(c.id) + "=" + shown + ": expected " +
                           Expected(c.id) + "; using the default (" + Default(c.id) + ")\n";
        EXPECT_EQ(want, Announce());
        EXPECT_EQ("", Announce()) << "announced twice";
        unsetenv(d->name);
    }
}

// The bugs this table was made for.
TEST_F(Options, ValuesThatUsedToBeMisreadAreReadOrReported) {
    Set({{"SLABCACHE_STATS", "no"}});
    EXPECT_FALSE(heap_opt_bool(OPT_STATS));  // was on: any value but "0"
    Set({{"SLABCACHE_LEAKS", "Exit"}});
    EXPECT_TRUE(heap_opt_is(OPT_LEAKS, "exit"));  // was "report only"
    Set({{"SLABCACHE_ON_ERROR", "reprot"}});
    EXPECT_TRUE(heap_opt_is(OPT_ON_ERROR, "abort"));
    EXPECT_STREQ("reprot", heap_opt_rejected(OPT_ON_ERROR));
    EXPECT_EQ("slabcache: SLABCACHE_ON_ERROR=reprot: expected one of abort, report; using the "
              "default (abort)\n",
              Announce());
    ClearEnvironment();
    Set({{"SLABCACHE_SPARE_EXTENTS", "0"}});  // was 64, silently
    EXPECT_EQ(64u, heap_opt_uint(OPT_SPARE_EXTENTS));
    EXPECT_EQ("slabcache: SLABCACHE_SPARE_EXTENTS=0: expected an integer from 1 to 1048576; "
              "using the default (64)\n",
              Announce());
    Set({{"SLABCACHE_SPARE_EXTENTS", "lots"}});  // was ignored, silently
    EXPECT_EQ("slabcache: SLABCACHE_SPARE_EXTENTS=lots: expected an integer from 1 to 1048576; "
              "using the default (64)\n",
              Announce());
    ClearEnvironment();
    Set({{"SLABCACHE_STATS", "maybe"}});
    EXPECT_EQ("slabcache: SLABCACHE_STATS=maybe: expected one of off, on, 2, 3, 4, json (off "
              "and on also as 0/1, no/yes, false/true); using the default (off)\n",
              Announce());
    ClearEnvironment();
    Set({{"SLABCACHE_LEAKS", "sometimes"}});
    EXPECT_EQ("slabcache: SLABCACHE_LEAKS=sometimes: expected one of off, on, exit, reachable, "
              "all, list (off and on also as 0/1, no/yes, false/true), or several separated by "
              "commas; using the default (off)\n",
              Announce());
    ClearEnvironment();
    Set({{"SLABCACHE_HEAP_LIMIT", "1x"}});
    EXPECT_EQ("slabcache: SLABCACHE_HEAP_LIMIT=1x: expected a size (a number of bytes, "
              "optionally with a k, m or g suffix); using the default (0)\n",
              Announce());
}

TEST_F(Options, EmptyValueIsUnsetExceptForText) {
    Set({{"SLABCACHE_STATS", ""}, {"SLABCACHE_HEAP_LIMIT", ""}, {"SLABCACHE_DEBUG", ""}});
    EXPECT_EQ(HEAP_OPT_FROM_DEFAULT, heap_opt_source(OPT_STATS));
    EXPECT_EQ(HEAP_OPT_FROM_DEFAULT, heap_opt_source(OPT_HEAP_LIMIT));
    ASSERT_NE(nullptr, heap_opt_string(OPT_DEBUG));  // the bare slub_debug
    EXPECT_STREQ("", heap_opt_string(OPT_DEBUG));
    EXPECT_EQ("", Announce());
}

TEST_F(Options, ValuesAreCopiedOnceAndKeptUntilReset) {
    Set({{"SLABCACHE_DEBUG", "Z,a"}, {"SLABCACHE_STATS", "1"}});
    const char *d = heap_opt_string(OPT_DEBUG);
    setenv("SLABCACHE_DEBUG", "U", 1);
    unsetenv("SLABCACHE_STATS");
    EXPECT_STREQ("Z,a", heap_opt_string(OPT_DEBUG));
    EXPECT_STREQ("Z,a", d);
    EXPECT_TRUE(heap_opt_bool(OPT_STATS));
    heap_opt_reset_for_tests();
    EXPECT_STREQ("U", heap_opt_string(OPT_DEBUG));
    EXPECT_FALSE(heap_opt_bool(OPT_STATS));
}

// Every process that mallocs loads the table: with no SLABCACHE_* variable set, loading
// writes the small value table only, never the rows that keep the environment's texts (a
// page per four options, which a short-lived process would fault in for nothing).
TEST_F(Options, LoadingWithNothingSetLeavesTheTextRowsUntouched) {
    size_t bytes = 0;
    const char *rows = static_cast<const char *>(heap_opt_text_storage_for_tests(&bytes));
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    uintptr_t lo = (reinterpret_cast<uintptr_t>(rows) + page - 1) & ~(page - 1);
    uintptr_t hi = (reinterpret_cast<uintptr_t>(rows) + bytes) & ~(page - 1);
    ASSERT_GT(hi, lo) << "the rows span no whole page";
    // Earlier tests wrote rows: give their pages back (they read as zeroes again).
    ASSERT_EQ(0, madvise(reinterpret_cast<void *>(lo), hi - lo, MADV_DONTNEED));
    heap_opt_reset_for_tests();
    for (unsigned id = 0; id < OPT_COUNT; id++)
        EXPECT_EQ(HEAP_OPT_FROM_DEFAULT, heap_opt_source(static_cast<heap_opt>(id)));
    std::vector<unsigned char> resident((hi - lo) / page);
    ASSERT_EQ(0, mincore(reinterpret_cast<void *>(lo), hi - lo, resident.data()));
    for (size_t i = 0; i < resident.size(); i++)
        EXPECT_EQ(0, resident[i] & 1) << "row page " << i << " was touched";
    // A variable that is set still gets its row.
    Set({{"SLABCACHE_DEBUG", "Z,a"}});
    EXPECT_STREQ("Z,a", heap_opt_string(OPT_DEBUG));
}

TEST_F(Options, ReportedValuesStayOnOneLine) {
    std::string odd = "ma\nybe" + std::string(100, 'e');
    Set({{"SLABCACHE_STATS", odd.c_str()}});
    std::string out = Announce();
    ASSERT_EQ(1u, Lines(out).size()) << out;
    EXPECT_EQ(0u, out.find("slabcache: SLABCACHE_STATS=ma?ybeeee")) << out;
    EXPECT_NE(std::string::npos, out.find("...: expected one of off, on")) << out;
}

// ------------------------------------------------------------------ unknown names

TEST_F(Options, UnknownNamesAreReportedWithTheNearestKnownOne) {
    const std::pair<const char *, const char *> near[] = {
        {"SLABCACHE_STAT", "SLABCACHE_STATS"},          {"SLABCACHE_DEBGU", "SLABCACHE_DEBUG"},
        {"SLABCACHE_stats", "SLABCACHE_STATS"},         {"SLABCACHE_HEAPLIMIT", "SLABCACHE_HEAP_LIMIT"},
        {"SLABCACHE_LEAK", "SLABCACHE_LEAKS"},          {"SLABCACHE_ON_ERRORS", "SLABCACHE_ON_ERROR"},
        {"SLABCACHE_SPARE_EXTENT", "SLABCACHE_SPARE_EXTENTS"},
    };
    for (auto &n : near) {
        ClearEnvironment();
        Set({{n.first, "1"}});
        EXPECT_EQ(std::string("slabcache: unknown variable ") + n.first + " (did you mean " +
                      n.second + "?)\n",
                  Announce());
    }
    ClearEnvironment();
    Set({{"SLABCACHE_ZZZZZZZZ", "1"}});
    EXPECT_EQ("slabcache: unknown variable SLABCACHE_ZZZZZZZZ (SLABCACHE_VERBOSE=1 lists the "
              "options)\n",
              Announce());
    ClearEnvironment();
    Set({{"SLABCACHE_X", "1"}});  // not a near miss of every short name
    EXPECT_EQ(std::string::npos, Announce().find("did you mean"));
}

// For every variable, a name one letter short gets it as the suggestion.
TEST_F(Options, EveryVariableIsSuggestedForANameOneLetterShort) {
    for (unsigned i = 0; i < OPT_COUNT; i++) {
        std::string name = Name(static_cast<heap_opt>(i));
        std::string typo = name.substr(0, name.size() - 1);
        const char *s = heap_opt_suggest(typo.c_str(), typo.size());
        ASSERT_NE(nullptr, s) << typo;
        EXPECT_EQ(name, s) << typo;
    }
}

TEST_F(Options, KnownNamesAndOtherPrefixesAreNotReported) {
    Set({{"SLABCACHE_BAZEL", "bazel"}, {"SLABCACHE_TEST_LOGDIR", "/tmp"},
         {"SLABCACHE_BENCH_REEXEC", "1"}, {"SLABCACHE_EXTRA_PACKAGES", "x"},
         {"SLABCACHEX", "1"}, {"MY_SLABCACHE_STAT", "1"}, {"SLABCACHE_STATS", "1"}});
    EXPECT_EQ("", Announce());
}

// ------------------------------------------------------------------ SLABCACHE_VERBOSE

TEST_F(Options, VerboseListsEveryOptionOnceWithItsSource) {
    Set({{"SLABCACHE_VERBOSE", "1"}, {"SLABCACHE_STATS", "on"}, {"SLABCACHE_SBRK", "maybe"},
         {"SLABCACHE_DEBUG", "Z,inode"}, {"SLABCACHE_HEAP_KEEP_FREE", "8m"}});
    std::vector<std::string> lines = Lines(Announce());
    ASSERT_GE(lines.size(), 2u);
    EXPECT_EQ("slabcache: SLABCACHE_SBRK=maybe: expected a boolean (1/0, yes/no, true/false, "
              "on/off); using the default (on)",
              lines[0]);
    EXPECT_EQ("slabcache: options in effect (SLABCACHE_VERBOSE=1; heap/options.h):", lines[1]);
    for (unsigned i = 0; i < OPT_COUNT; i++) {
        std::string prefix = "slabcache: option " + Name(static_cast<heap_opt>(i));
        size_t n = 0;
        for (auto &l : lines)
            n += l.rfind(prefix + "=", 0) == 0 || l.rfind(prefix + " ", 0) == 0;
        EXPECT_EQ(1u, n) << prefix;
    }
    EXPECT_EQ(2u + OPT_COUNT, lines.size());
    auto has = [&](const std::string &l) {
        return std::find(lines.begin(), lines.end(), l) != lines.end();
    };
    EXPECT_TRUE(has("slabcache: option SLABCACHE_STATS=on (environment)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_VERBOSE=on (environment)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_SBRK=on (default; the environment's \"maybe\" "
                    "was rejected)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_DEBUG=Z,inode (environment)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_HEAP_KEEP_FREE=8m (environment)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_HEAP_LIMIT=0 (default)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_ON_ERROR=abort (default)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_SPARE_EXTENTS=64 (default)"));
    EXPECT_TRUE(has("slabcache: option SLABCACHE_FAIL unset (default)"));
    // Without it: no listing.
    ClearEnvironment();
    Set({{"SLABCACHE_STATS", "on"}});
    EXPECT_EQ("", Announce());
}

TEST_F(Options, AnnounceWritesOncePerLoad) {
    Set({{"SLABCACHE_STAT", "1"}});
    EXPECT_NE("", Announce());
    EXPECT_EQ("", Announce());
    heap_opt_reset_for_tests();
    EXPECT_NE("", Announce());
}

// ------------------------------------------------------------------ readers

// The heap reads its four options through the table when it is reset (tests/heap has more).
TEST_F(Options, HeapOptionsComeFromTheTable) {
    Set({{"SLABCACHE_HEAP_LIMIT", "64m"}, {"SLABCACHE_SBRK", "Off"},
         {"SLABCACHE_MMAP_FALLBACK", "false"}, {"SLABCACHE_HEAP_KEEP_FREE", "1g"}});
    testing::internal::CaptureStderr();
    heap_reset_for_tests();
    EXPECT_EQ("", testing::internal::GetCapturedStderr());
    heap_options o;
    heap_get_options(&o);
    EXPECT_EQ(size_t{64} << 20, o.limit);
    EXPECT_FALSE(o.use_sbrk);
    EXPECT_FALSE(o.mmap_fallback);
    EXPECT_EQ(size_t{1} << 30, o.keep_free);
    ClearEnvironment();
    heap_reset_for_tests();
    heap_get_options(&o);
    EXPECT_EQ(0u, o.limit);
    EXPECT_TRUE(o.use_sbrk);
    EXPECT_TRUE(o.mmap_fallback);
    EXPECT_EQ(HEAP_DEFAULT_KEEP_FREE, o.keep_free);
}

// The first access from many threads at once: one load, the same values everywhere.
TEST_F(Options, ConcurrentFirstReadsAgree) {
    Set({{"SLABCACHE_HEAP_LIMIT", "3m"}, {"SLABCACHE_LEAKS", "exit"}});
    std::atomic<bool> go{false};
    std::atomic<int> wrong{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; t++)
        ts.emplace_back([&] {
            while (!go.load()) {
            }
            if (heap_opt_size(OPT_HEAP_LIMIT) != (size_t{3} << 20)) wrong++;
            if (!heap_opt_is(OPT_LEAKS, "exit")) wrong++;
            if (heap_opt_source(OPT_STATS) != HEAP_OPT_FROM_DEFAULT) wrong++;
        });
    go = true;
    for (auto &t : ts) t.join();
    EXPECT_EQ(0, wrong.load());
}

#ifndef NDEBUG
TEST(OptionsDeathTest, AccessorOfAnotherTypeIsABug) {
    ::testing::FLAGS_gtest_death_test_style = "threadsafe";
    EXPECT_DEATH(heap_opt_bool(OPT_HEAP_LIMIT), "accessor of another type");
    EXPECT_DEATH(heap_opt_is(OPT_ON_ERROR, "sometimes"), "not one of the option's words");
}
#endif

}  // namespace
