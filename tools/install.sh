#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/install.sh - build slabcache optimised and install it for use outside this repository.
#
#   bash tools/install.sh [--prefix=/usr/local] [--destdir=DIR] [--prebuilt=DIR]
#
#   --prefix=DIR    where the files will live (absolute; default /usr/local).  The pkg-config
#                   file names it; the CMake package finds its files from its own place.
#   --destdir=DIR   write the tree under DIR instead of / (staging, packages): files go to
#                   DIR/PREFIX, and nothing inside them names DIR.
#   --prebuilt=DIR  install what Bazel built in DIR (a bazel-bin directory, or a test's
#                   runfiles: slab/libslabcache.so, slab/libslabcache.a, the programs) instead
#                   of running `bazel build --config=opt` (tests, tools/package.sh).
#
# Installs, under PREFIX:
#   include/slabcache.h, include/slabcache/*.h    the public headers (slab/slabcache.h names
#                                                 them, and EXTRA_HEADERS below), include
#                                                 paths rewritten as installed
#   lib/libslabcache.so.VERSION, .so.MAJOR, .so   the shared library (SONAME libslabcache.so.MAJOR)
#   lib/libslabcache.a                            the static archive
#   lib/pkgconfig/slabcache.pc                    pkg-config
#   lib/cmake/slabcache/slabcacheConfig*.cmake    find_package(slabcache): slabcache::slabcache
#                                                 and slabcache::slabcache_static
#   share/man/manN/*.N                            every page in docs/man (slabcache(3), (7), ...)
#   bin/                                          the programs in PROGRAMS below
#                                                 (slabcache-slabtop)
#   share/doc/slabcache/                          LICENSE, CHANGELOG.md, README.md
# As root into /usr/local or /usr it runs ldconfig.  Running it again installs the same files
# over them.  Quiet: one line at the end, errors on
# stderr; exit status 2 for bad arguments, 1 when the build or a copy fails.
# SLABCACHE_BAZEL overrides the Bazel command (as in tools/main.sh).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=install.sh

# Programs to install in bin/, as Bazel targets: //pkg:name installs bin/name, and
# //pkg:name=NEW installs it as bin/NEW.  A program's man page goes in docs/man (NEW.1),
# which is installed with the others; tests that install with --prebuilt list the program in
# their data (//tools:install_tree).  slabtop is renamed: procps owns bin/slabtop and
# slabtop(1) (the kernel's caches), and a Debian package cannot hold the same paths.
PROGRAMS=(//tools:slabtop=slabcache-slabtop)

# Public headers of layers above slab/, which the umbrella slab/slabcache.h cannot include
# (slab/ does not depend on them): installed as <slabcache/NAME.h> beside the others.
EXTRA_HEADERS=(pool/pool.h)

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; }
die_usage() {
    echo "$me: $*" >&2
    echo "usage: bash tools/install.sh [--prefix=/usr/local] [--destdir=DIR] [--prebuilt=DIR]" >&2
    exit 2
}
die() { echo "$me: $*" >&2; exit 1; }

prefix=/usr/local destdir="" bin=""
while (($#)); do
    arg=$1
    case "$arg" in
        --prefix=* | --destdir=* | --prebuilt=*) name=${arg%%=*} value=${arg#*=} ;;
        --prefix | --destdir | --prebuilt)
            (($# >= 2)) || die_usage "$arg needs a value"
            name=$arg value=$2
            shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$arg'" ;;
    esac
    [[ -n $value ]] || die_usage "$name needs a value"
    case "$name" in
        --prefix) prefix=$value ;;
        --destdir) destdir=$value ;;
        --prebuilt) bin=$value ;;
    esac
    shift
done
[[ $prefix == /* ]] || die_usage "--prefix must be an absolute path (got '$prefix')"
prefix=${prefix%/}
[[ -n $prefix ]] || prefix=/
if [[ -n $destdir ]]; then
    mkdir -p "$destdir" 2>/dev/null || die "cannot create --destdir $destdir"
    destdir=$(cd "$destdir" && pwd)
fi
if [[ -n $bin ]]; then
    [[ -d $bin ]] || die_usage "--prebuilt: no directory $bin"
    bin=$(cd "$bin" && pwd)
fi

# ---------------------------------------------------------------- version (slab/version.h)
version_h=$repo/slab/version.h
version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\([0-9]*\.[0-9]*\.[0-9]*\)"$/\1/p' "$version_h")
[[ -n $version ]] || die "no SLABCACHE_VERSION_STRING in $version_h"
IFS=. read -r major minor _ <<<"$version"

# ---------------------------------------------------------------- the library files
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z $bin ]]; then
    # shellcheck disable=SC2206
    bazel_cmd=(${SLABCACHE_BAZEL:-bazel})
    targets=(//slab:libslabcache.so //slab:libslabcache_a "${PROGRAMS[@]%%=*}")
    if ! (cd "$repo" && "${bazel_cmd[@]}" build --config=opt --noshow_progress \
        "${targets[@]}") >"$tmp/build.log" 2>&1; then
        cat "$tmp/build.log" >&2
        die "bazel build --config=opt ${targets[*]} failed"
    fi
    bin=$(cd "$repo" && "${bazel_cmd[@]}" info --config=opt bazel-bin 2>/dev/null) ||
        die "bazel info bazel-bin failed"
fi
so=$bin/slab/libslabcache.so
archive=$bin/slab/libslabcache.a
[[ -f $so ]] || die "no shared library at $so"
[[ -f $archive ]] || die "no static archive at $archive"
soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
[[ $soname == "libslabcache.so.$major" ]] ||
    die "$so has SONAME '${soname:-none}', expected libslabcache.so.$major"
# A sanitizer build (bazel-bin after --config=asan or tsan) kills every program that loads it.
if ! err=$(LD_PRELOAD=$so /bin/true 2>&1) || [[ -n $err ]]; then
    die "$so does not load into a plain program (a sanitizer build?): ${err:-killed}"
fi

# ---------------------------------------------------------------- install
root=$destdir$prefix
root=${root%/}
lib=$root/lib
inc=$root/include
doc=$root/share/doc/slabcache

put() { # put MODE SRC DEST: copy, creating DEST's directory
    install -D -m "$1" "$2" "$3" || die "cannot install $3"
}

# Headers: the umbrella slab/slabcache.h names every public header.  In the repository they
# include each other as "slab/NAME.h"; installed they are <slabcache/NAME.h>.
headers=$(sed -n 's|^#include "slab/\([a-z_]*\.h\)"$|\1|p' "$repo/slab/slabcache.h")
[[ -n $headers ]] || die "slab/slabcache.h includes no slab/*.h header"
rewrite() { # rewrite SRC DEST
    sed 's|^#include "slab/\([a-z_]*\.h\)"|#include <slabcache/\1>|' "$1" >"$2"
    if grep -n '^#include "' "$2" >&2; then
        die "$1 includes a repository header that is not installed (above)"
    fi
}
rewrite "$repo/slab/slabcache.h" "$tmp/slabcache.h"
put 0644 "$tmp/slabcache.h" "$inc/slabcache.h"
for h in $headers; do
    rewrite "$repo/slab/$h" "$tmp/$h"
    put 0644 "$tmp/$h" "$inc/slabcache/$h"
done
for path in "${EXTRA_HEADERS[@]}"; do
    h=${path##*/}
    [[ ! -e $repo/slab/$h ]] || die "$path would replace slab/$h in include/slabcache/"
    rewrite "$repo/$path" "$tmp/$h"
    put 0644 "$tmp/$h" "$inc/slabcache/$h"
done

# Libraries: the real file, its SONAME link (what programs load) and the link-time name.
put 0755 "$so" "$lib/libslabcache.so.$version"
ln -sfn "libslabcache.so.$version" "$lib/libslabcache.so.$major"
ln -sfn "libslabcache.so.$major" "$lib/libslabcache.so"
put 0644 "$archive" "$lib/libslabcache.a"

# pkg-config and CMake.
subst() { # subst TEMPLATE DEST
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@SOVERSION@|$major|g" \
        -e "s|@VERSION_MAJOR@|$major|g" -e "s|@VERSION_MINOR@|$minor|g" "$1" >"$tmp/out"
    put 0644 "$tmp/out" "$2"
}
subst "$repo/tools/dist/slabcache.pc.in" "$lib/pkgconfig/slabcache.pc"
subst "$repo/tools/dist/slabcacheConfig.cmake.in" "$lib/cmake/slabcache/slabcacheConfig.cmake"
subst "$repo/tools/dist/slabcacheConfigVersion.cmake.in" \
    "$lib/cmake/slabcache/slabcacheConfigVersion.cmake"

# Man pages: every docs/man/NAME.SECTION.
shopt -s nullglob
pages=("$repo"/docs/man/*.[1-8])
((${#pages[@]})) || die "no man pages in docs/man"
for page in "${pages[@]}"; do
    base=${page##*/}
    put 0644 "$page" "$root/share/man/man${base##*.}/$base"
done

# Programs (bin/), from the same Bazel output as the library.
for entry in "${PROGRAMS[@]}"; do
    target=${entry%%=*}
    name=${target##*:}
    [[ $entry != *=* ]] || name=${entry#*=}
    path=${target#//}
    path=$bin/${path/://}
    [[ -f $path ]] || die "no program at $path (bazel build --config=opt $target first)"
    put 0755 "$path" "$root/bin/$name"
done

put 0644 "$repo/LICENSE" "$doc/LICENSE"
put 0644 "$repo/CHANGELOG.md" "$doc/CHANGELOG.md"
put 0644 "$repo/README.md" "$doc/README.md"

# Installed as root into a prefix the loader searches, refresh its cache, so programs find
# libslabcache.so.MAJOR without -rpath (what the Debian package's ldconfig trigger does).
if [[ -z $destdir && $EUID == 0 && ($prefix == /usr || $prefix == /usr/local) ]] &&
    command -v ldconfig >/dev/null; then
    ldconfig || echo "$me: ldconfig failed; run it before starting programs linked with -lslabcache" >&2
fi

echo "$me: slabcache $version installed in ${destdir:+$destdir (staged for) }$prefix"
