"""Compiler flags shared by every slabcache target.

Load from a BUILD file with:
    load("//tools:copts.bzl", "SLABCACHE_COPTS", "SLABCACHE_TEST_COPTS")

SLABCACHE_COPTS is for C library code (C11). Bazel passes a target's copts to
every source file of that target, C and C++ alike, so do not mix .c and .cc
files in one target: C sources use SLABCACHE_COPTS, googletest sources
(.cc) use SLABCACHE_TEST_COPTS.
"""

SLABCACHE_COPTS = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wold-style-definition",
    "-Wpointer-arith",
    "-Wwrite-strings",
    "-Wundef",
    "-Wvla",
    "-Wformat=2",
    "-Wcast-qual",
    "-Wnull-dereference",
    "-Wimplicit-fallthrough",
    "-Wmissing-declarations",
    "-Wredundant-decls",
    "-Wnested-externs",
    "-fno-common",
]

SLABCACHE_TEST_COPTS = [
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
]
