#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/install/package_root_test.sh - the Debian package installed and removed for real:
# `apt-get install ./slabcache_VERSION_ARCH.deb`, then a program built with nothing but
# `pkg-config --cflags --libs slabcache` runs (the loader finds libslabcache.so.0 through
# ld.so.cache: the ldconfig trigger ran), CMake finds the package without hints, man finds
# the pages, /usr/bin/slabcache-slabtop runs (its libraries came with the package's Depends);
# `apt-get remove slabcache` leaves no file and no loader entry behind.
# Changes the system, so only as root, and only when slabcache is not installed already
# (never removes a package it did not install); otherwise it passes saying SKIPPED and why.
set -euo pipefail

skip() { echo "SKIPPED: $*"; exit 0; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

((EUID == 0)) || skip "installing a package needs root (running as uid $EUID)"
command -v apt-get >/dev/null || skip "no apt-get"
# One at a time on this machine (other clones' test runs): the package is system-wide.
lockdir=/run/lock
[[ -d $lockdir ]] || lockdir=/tmp
exec 9>"$lockdir/slabcache-package-root-test.lock"
flock -w 900 9 || fail "another package_root_test held the lock for 15 minutes"
status=$(dpkg-query -W -f='${db:Status-Abbrev}' slabcache 2>/dev/null || true)
[[ -z $status || $status == un* || $status == pn* ]] ||
    skip "slabcache is already installed (dpkg status '$status'): not touching it"

src=$PWD
work=${TEST_TMPDIR:-$(mktemp -d)}/root
rm -rf "$work"
mkdir -p "$work"
version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\(.*\)"$/\1/p' slab/version.h)
deb=$(bash tools/package.sh --out="$work" --prebuilt="$src" | sed 's/^package.sh: //')
[[ -f $deb ]] || fail "package.sh made no package"

apt=(apt-get -y -qq -o DPkg::Lock::Timeout=120)
installed=0
cleanup() { ((installed)) && DEBIAN_FRONTEND=noninteractive dpkg --purge slabcache >/dev/null 2>&1; true; }
trap cleanup EXIT
trap 'exit 143' TERM INT # Bazel's timeout sends TERM: remove the package on the way out

step "apt-get install ./${deb##*/}"
# apt-get wants a path with a slash to take an argument as a file.
(cd "$work" && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "./${deb##*/}") \
    >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "apt-get install"; }
installed=1
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' slabcache) == "ii " ]] || fail "not installed"
grep -q 'libslabcache\.so\.0 ' <<<"$(ldconfig -p)" || fail "ldconfig does not know libslabcache.so.0"
[[ $(pkg-config --modversion slabcache) == "$version" ]] || fail "pkg-config --modversion"
printf '#include <slabcache.h>\n#include <stdio.h>\n#include <string.h>\nint main(void) {\n    puts(slabcache_version());\n    return strcmp(slabcache_version(), SLABCACHE_VERSION_STRING) != 0;\n}\n' >"$work/v.c"
# shellcheck disable=SC2046
cc "$work/v.c" -o "$work/v" $(pkg-config --cflags --libs slabcache) || fail "cc with pkg-config"
[[ $("$work/v") == "$version" ]] || fail "the program did not run against the installed library"
mkdir -p "$work/cmake"
printf 'cmake_minimum_required(VERSION 3.13)\nproject(p C)\nfind_package(slabcache %s REQUIRED)\nadd_executable(v ../v.c)\ntarget_link_libraries(v PRIVATE slabcache::slabcache)\n' \
    "$version" >"$work/cmake/CMakeLists.txt"
cmake -S "$work/cmake" -B "$work/cmake/build" >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake/build" >>"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; fail "CMake without hints"; }
[[ $("$work/cmake/build/v") == "$version" ]] || fail "the CMake program"
if command -v man >/dev/null; then
    man -w 3 slabcache >/dev/null && man -w 7 slabcache >/dev/null && man -w 1 slabcache-slabtop >/dev/null ||
        fail "man does not find the pages"
fi
[[ $(command -v slabcache-slabtop) == /usr/bin/slabcache-slabtop ]] ||
    fail "slabcache-slabtop is not /usr/bin/slabcache-slabtop"
[[ $(slabcache-slabtop --help) == "usage: slabtop -p PID"* ]] ||
    fail "the installed slabcache-slabtop does not run"
files=$(dpkg -L slabcache | while read -r f; do [[ -f $f || -L $f ]] && echo "$f"; done)

step "apt-get remove slabcache"
DEBIAN_FRONTEND=noninteractive "${apt[@]}" remove slabcache >"$work/remove.log" 2>&1 ||
    { cat "$work/remove.log" >&2; fail "apt-get remove"; }
installed=0
status=$(dpkg-query -W -f='${db:Status-Abbrev}' slabcache 2>/dev/null || true)
[[ -z $status || $status == un* || $status == pn* ]] || fail "dpkg status after remove: '$status'"
for f in $files; do [[ ! -e $f && ! -L $f ]] || fail "$f is left after remove"; done
for d in /usr/include/slabcache /usr/lib/cmake/slabcache /usr/share/doc/slabcache; do
    [[ ! -e $d ]] || fail "$d is left after remove"
done
if grep -q libslabcache <<<"$(ldconfig -p)"; then fail "ld.so.cache still lists libslabcache"; fi
echo "PASS ($(wc -w <<<"$files") files installed and removed)"
