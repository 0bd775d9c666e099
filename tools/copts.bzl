# SPDX-License-Identifier: MIT
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

# Allocator library code (slab/, the kmalloc and malloc fronts).  In -c opt builds the fast
# paths need no stack frame: .bazelrc asks for frame pointers everywhere (for debuggers and
# sanitizer stack traces), which costs every kmem_cache_alloc / free a push, a pop and a
# load of the return address.  Call sites are recorded with __builtin_return_address(0),
# which needs no frame pointer.  Sanitizer and fastbuild configurations keep them.
SLABCACHE_LIB_COPTS = SLABCACHE_COPTS + select({
    "//tools:opt_build": ["-fomit-frame-pointer"],
    "//conditions:default": [],
})
