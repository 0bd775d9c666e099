#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/install/install_test.sh - slabcache installed and used the way an outside project
# uses it, outside Bazel: tools/install.sh --prebuilt (the library Bazel built for this
# configuration) into a temporary prefix, then
#   - the installed tree: files, modes, links, SONAME, the .pc and CMake files, headers
#     that compile on their own (C11 and C++, -pedantic -Werror), man pages groff accepts;
#   - the same install again changes nothing (idempotent) and prints one line; --destdir
#     stages without writing the staging directory into any file; bad arguments exit 2;
#   - the programs (bin/slabcache-slabtop, //tools:slabtop renamed: procps owns slabtop):
#     installed, executable, answering --help, with a man page that documents every option
#     and sort key --help lists; nothing installed as bin/slabtop;
#   - three consumers: a Makefile project (pkg-config), a CMake project (find_package, the
#     shared and the static target, and a version it must refuse), a C++ program;
#   - LD_PRELOAD of the installed libslabcache.so.0 into a program built without it, which
#     must then find malloc in slabcache and not in libc.
# Runs from its runfiles (Bazel's working directory), which hold the install tree as data.
set -euo pipefail

src=$PWD
work=${TEST_TMPDIR:-$(mktemp -d)}/install
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\(.*\)"$/\1/p' slab/version.h)
major=${version%%.*}

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# run_ok WHAT CMD...: run, and fail with its output when it fails.
run_ok() {
    local what=$1 out
    shift
    out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; fail "$what"; }
}

[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "no version in slab/version.h"
for tool in cc c++ make cmake pkg-config readelf nm groff; do
    command -v "$tool" >/dev/null || fail "$tool not found (tools/setup.sh installs it)"
done

step "bad arguments: a message naming the problem, status 2"
bad_args=("--prefix" "--prefix=relative/dir" "--frobnicate" "--destdir=" "--prebuilt=$work/none"
    "extra")
for a in "${bad_args[@]}"; do
    rc=0
    out=$(bash tools/install.sh "$a" 2>&1) || rc=$?
    ((rc == 2)) || fail "install.sh '$a' exited $rc, expected 2 ($out)"
    grep -q '^install.sh: ' <<<"$out" || fail "install.sh '$a' gave no message: $out"
done
[[ ! -e $work/none ]] || fail "a refused install created files"

step "install into $prefix"
out=$(bash tools/install.sh --prefix="$prefix" --prebuilt="$src")
[[ $(wc -l <<<"$out") == 1 && $out == *"slabcache $version installed in $prefix"* ]] ||
    fail "install.sh is not quiet: $out"

step "the installed tree"
for f in include/slabcache.h include/slabcache/slab.h include/slabcache/kmalloc.h \
    include/slabcache/version.h include/slabcache/pool.h lib/libslabcache.a \
    "lib/libslabcache.so.$version" lib/pkgconfig/slabcache.pc \
    lib/cmake/slabcache/slabcacheConfig.cmake lib/cmake/slabcache/slabcacheConfigVersion.cmake \
    share/man/man3/slabcache.3 share/man/man7/slabcache.7 share/man/man1/slabcache-slabtop.1 bin/slabcache-slabtop \
    share/doc/slabcache/LICENSE share/doc/slabcache/CHANGELOG.md; do
    [[ -f $prefix/$f && ! -L $prefix/$f ]] || fail "$f missing"
done
[[ $(readlink "$prefix/lib/libslabcache.so.$major") == "libslabcache.so.$version" ]] ||
    fail "libslabcache.so.$major does not link to libslabcache.so.$version"
[[ $(readlink "$prefix/lib/libslabcache.so") == "libslabcache.so.$major" ]] ||
    fail "libslabcache.so does not link to libslabcache.so.$major"
grep -q "(SONAME).*\[libslabcache.so.$major\]" <<<"$(readelf -d "$prefix/lib/libslabcache.so.$version")" ||
    fail "the installed library's SONAME is not libslabcache.so.$major"
grep -q ' T slabcache_version$' <<<"$(nm -D --defined-only "$prefix/lib/libslabcache.so.$version")" ||
    fail "slabcache_version is not exported by the shared library"
grep -q ' T slabcache_version$' <<<"$(nm "$prefix/lib/libslabcache.a" 2>/dev/null)" ||
    fail "slabcache_version is not in the static archive"
for sym in kmem_pool_create slabcache_get_state; do
    grep -q " T $sym\$" <<<"$(nm -D --defined-only "$prefix/lib/libslabcache.so.$version")" ||
        fail "$sym is not exported by the shared library"
    grep -q " T $sym\$" <<<"$(nm "$prefix/lib/libslabcache.a" 2>/dev/null)" ||
        fail "$sym is not in the static archive"
done
for f in $(find "$prefix" -type f); do
    mode=$(stat -c %a "$f")
    case "$f" in
        *.so.* | */bin/*) [[ $mode == 755 ]] || fail "$f has mode $mode" ;;
        *) [[ $mode == 644 ]] || fail "$f has mode $mode" ;;
    esac
done
if grep -rn '^#include "' "$prefix/include"; then
    fail "installed headers include repository paths (above)"
fi
grep -q "^prefix=$prefix\$" "$prefix/lib/pkgconfig/slabcache.pc" || fail "slabcache.pc: prefix"
grep -q "^Version: $version\$" "$prefix/lib/pkgconfig/slabcache.pc" || fail "slabcache.pc: version"

step "each installed header compiles on its own, in C11 and C++11 (-pedantic -Werror)"
for h in slabcache.h slabcache/slab.h slabcache/kmalloc.h slabcache/version.h slabcache/pool.h; do
    printf '#include <%s>\n' "$h" >"$work/one.c"
    run_ok "<$h> in C11" cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only \
        -I"$prefix/include" "$work/one.c"
    run_ok "<$h> in C++11" c++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only \
        -I"$prefix/include" -x c++ "$work/one.c"
done

step "man pages: groff -man -ww finds nothing to warn about"
for page in "$prefix"/share/man/man*/*; do
    warnings=$(groff -t -man -ww -z "$page" 2>&1)
    [[ -z $warnings ]] || fail "$page: $warnings"
done

step "bin/slabcache-slabtop: runs, answers --help and refuses what it cannot watch"
[[ ! -e $prefix/bin/slabtop && ! -e $prefix/share/man/man1/slabtop.1 ]] ||
    fail "bin/slabtop or slabtop.1 installed: they would shadow procps' slabtop"
out=$("$prefix/bin/slabcache-slabtop" --help) || fail "slabtop --help failed"
[[ $out == "usage: slabtop -p PID"* ]] || fail "slabtop --help printed: $out"
if ldd "$prefix/bin/slabcache-slabtop" | grep -q libslabcache; then
    fail "slabtop loads libslabcache (it should read the program, not be one)"
fi
rc=0
out=$("$prefix/bin/slabcache-slabtop" -p $$ -o 2>&1) || rc=$?
((rc == 1)) && [[ $out == *"no slabcache introspection root"* ]] ||
    fail "slabtop -p <a shell> exited $rc: $out"
rc=0
"$prefix/bin/slabcache-slabtop" -s zz -p 1 >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "slabtop with a bad sort key exited $rc, expected 2"
# The man page documents every option and sort key that --help lists.
help=$("$prefix/bin/slabcache-slabtop" --help)
page=$(groff -t -man -Tutf8 -P-cbou "$prefix/share/man/man1/slabcache-slabtop.1" 2>/dev/null)
for opt in $(grep -oE -- '--[a-z]+' <<<"$help"); do
    grep -qe "$opt" <<<"$page" || fail "slabcache-slabtop(1) does not document $opt (slabtop --help has it)"
done
keys=$(sed -n '/--sort/,/--once/p' <<<"$help" | grep -v -- '--once' | sed 's/.*KEY//' |
    grep -oE '(^|[ ,])[a-z] [a-z]' | grep -oE '[a-z] ' | tr -d ' ')
(($(wc -w <<<"$keys") >= 10)) || fail "could not read the sort keys from slabtop --help: $help"
keysection=$(sed -n '/^\.SH SORT KEYS/,/^\.SH /p' "$prefix/share/man/man1/slabcache-slabtop.1")
for k in $keys; do
    grep -qx "\.B $k" <<<"$keysection" || fail "slabcache-slabtop(1) does not document the sort key $k"
done

step "installing again changes nothing"
snapshot() {
    (cd "$1" && find . -printf '%p %y %m %l\n' | sort && find . -type f -print0 | sort -z |
        xargs -0 md5sum)
}
snapshot "$prefix" >"$work/before"
bash tools/install.sh --prefix="$prefix" --prebuilt="$src" >/dev/null
snapshot "$prefix" >"$work/after"
diff "$work/before" "$work/after" >&2 || fail "a second install changed the tree (above)"

step "--destdir stages the tree for --prefix without naming the staging directory"
bash tools/install.sh --prefix=/opt/slabcache --destdir="$work/stage" --prebuilt="$src" >/dev/null
[[ -f $work/stage/opt/slabcache/lib/libslabcache.so.$version ]] || fail "--destdir: no library"
grep -q '^prefix=/opt/slabcache$' "$work/stage/opt/slabcache/lib/pkgconfig/slabcache.pc" ||
    fail "--destdir: slabcache.pc does not name the prefix"
if grep -rl "$work/stage" "$work/stage"; then fail "--destdir: files name the staging directory"; fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
step "pkg-config"
[[ $(pkg-config --modversion slabcache) == "$version" ]] || fail "pkg-config --modversion"
# (pkgconf ends its output with a space: xargs trims it.)
[[ $(pkg-config --cflags slabcache | xargs) == "-I$prefix/include" ]] ||
    fail "pkg-config --cflags: $(pkg-config --cflags slabcache)"
[[ $(pkg-config --libs slabcache | xargs) == "-L$prefix/lib -lslabcache" ]] ||
    fail "pkg-config --libs: $(pkg-config --libs slabcache)"

# check_consumer WHAT BINARY EXPECTED_LINE_START [shared|static]
check_consumer() {
    local what=$1 exe=$2 expect=$3 kind=$4 out
    out=$("$exe" "$what" 2>&1) || fail "$what consumer failed: $out"
    [[ $out == "$expect"* ]] || fail "$what consumer printed: $out"
    echo "   $out"
    if [[ $kind == shared ]]; then
        grep -q "(NEEDED).*\[libslabcache.so.$major\]" <<<"$(readelf -d "$exe")" ||
            fail "$what consumer does not load libslabcache.so.$major"
    else
        if grep -q 'libslabcache' <<<"$(readelf -d "$exe")"; then
            fail "$what consumer should hold the static archive, not load the library"
        fi
    fi
}

step "a Makefile project with pkg-config --cflags --libs slabcache (and -rpath)"
mkdir -p "$work/make"
cp tests/install/make/Makefile tests/install/consumer.c "$work/make/"
run_ok "make" make -C "$work/make"
grep -q "R.*PATH.*\[$prefix/lib\]" <<<"$(readelf -d "$work/make/consumer")" ||
    fail "the Makefile consumer has no rpath to $prefix/lib"
check_consumer make "$work/make/consumer" "consumer make: slabcache $version (" shared

step "a CMake project with find_package(slabcache 0.2): slabcache::slabcache and _static"
mkdir -p "$work/cmake"
cp tests/install/cmake/CMakeLists.txt tests/install/consumer.c "$work/cmake/"
run_ok "cmake configure" cmake -S "$work/cmake" -B "$work/cmake/build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
run_ok "cmake build" cmake --build "$work/cmake/build"
check_consumer cmake "$work/cmake/build/consumer_shared" "consumer cmake: slabcache $version (" shared
check_consumer cmake-static "$work/cmake/build/consumer_static" \
    "consumer cmake-static: slabcache $version (" static
rc=0
out=$(cmake -S "$work/cmake" -B "$work/cmake/build-0.3" -DCMAKE_PREFIX_PATH="$prefix" \
    -DSLABCACHE_WANT=0.3 2>&1) || rc=$?
((rc != 0)) || fail "find_package(slabcache 0.3) accepted version $version"
grep -q "$version" <<<"$out" || fail "find_package(slabcache 0.3) did not say what it found: $out"

step "a C++ program (g++, pkg-config)"
# shellcheck disable=SC2046
run_ok "c++ consumer" c++ -std=c++11 -O2 -Wall -Wextra -Werror -pedantic \
    tests/install/consumer.cc -o "$work/consumer_cxx" \
    $(pkg-config --cflags --libs slabcache) -Wl,-rpath,"$(pkg-config --variable=libdir slabcache)"
check_consumer c++ "$work/consumer_cxx" "consumer c++: slabcache $version," shared

step "LD_PRELOAD of the installed library into a program built without it"
run_ok "preload probe" cc -std=c11 -O2 -Wall -Wextra -Werror tests/install/preload_probe.c \
    -o "$work/probe" -ldl
out=$("$work/probe") || fail "the probe failed without the preload"
[[ $out == "malloc from "*libc.so* ]] || fail "without LD_PRELOAD the probe saw: $out"
so=$prefix/lib/libslabcache.so.$major
out=$(LD_PRELOAD=$so SLABCACHE_STATS=1 "$work/probe" 2>"$work/probe.err") ||
    fail "the probe failed under LD_PRELOAD: $(cat "$work/probe.err")"
[[ $out == "malloc from $so" ]] || fail "with LD_PRELOAD=$so the probe saw: $out"
grep -qE '^slabcache: \[[0-9]+\] statistics of probe at exit$' "$work/probe.err" ||
    fail "SLABCACHE_STATS=1 printed no statistics at exit: $(cat "$work/probe.err")"
grep -qE '^slabcache: \[[0-9]+\]   kmalloc-[0-9]+ +[1-9]' "$work/probe.err" ||
    fail "no kmalloc cache with objects in the preloaded probe's statistics"
echo "   $out"

echo "PASS"
