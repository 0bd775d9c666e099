#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/package.sh - a Debian package of slabcache, built with dpkg-deb from the tree that
# tools/install.sh installs (--prefix=/usr).
#
#   bash tools/package.sh [--out=DIR] [--prebuilt=DIR]
#
#   --out=DIR       where to write slabcache_VERSION_ARCH.deb (default: the current directory)
#   --prebuilt=DIR  passed to tools/install.sh: install what Bazel built in DIR instead of
#                   building (tests)
#
# One package, "slabcache": the shared library (with the ldconfig trigger and a shlibs
# file), the static archive, the headers, pkg-config and CMake files, the programs
# (/usr/bin/slabcache-slabtop), the man pages, and /usr/share/doc/slabcache (copyright, changelog).
# Binaries are stripped and man pages compressed as Debian policy asks; Depends names libc6
# and the packages of the other libraries the binaries load (from their shlibs files, as
# dpkg-shlibdeps does).  Then:
#   sudo apt-get install ./slabcache_0.2.0_amd64.deb      sudo apt-get remove slabcache
# Exit status 2 for bad arguments, 1 when a step fails.  SOURCE_DATE_EPOCH, if set, is the
# time stamp of every file (default: the last commit's), so the same tree gives the same .deb.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=package.sh
die_usage() {
    echo "$me: $*" >&2
    echo "usage: bash tools/package.sh [--out=DIR] [--prebuilt=DIR]" >&2
    exit 2
}
die() { echo "$me: $*" >&2; exit 1; }

out=$PWD prebuilt=()
while (($#)); do
    arg=$1
    case "$arg" in
        --out=* | --prebuilt=*) name=${arg%%=*} value=${arg#*=} ;;
        --out | --prebuilt)
            (($# >= 2)) || die_usage "$arg needs a value"
            name=$arg value=$2
            shift ;;
        -h | --help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die_usage "unknown argument '$arg'" ;;
    esac
    [[ -n $value ]] || die_usage "$name needs a value"
    case "$name" in
        --out) out=$value ;;
        --prebuilt) prebuilt=("--prebuilt=$value") ;;
    esac
    shift
done
mkdir -p "$out" 2>/dev/null || die "cannot create --out directory $out"
out=$(cd "$out" && pwd)
for tool in dpkg-deb dpkg strip objdump gzip md5sum; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install dpkg binutils gzip coreutils)"
done

version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\([0-9.]*\)"$/\1/p' "$repo/slab/version.h")
[[ -n $version ]] || die "no SLABCACHE_VERSION_STRING in slab/version.h"
major=${version%%.*}
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
bash "$repo/tools/install.sh" --prefix=/usr --destdir="$root" "${prebuilt[@]}" >/dev/null
usr=$root/usr

# Binaries stripped as dh_strip does (symbols for debugging belong in a -dbgsym package);
# a shared library is not executable in a package.
so=$usr/lib/libslabcache.so.$version
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$so"
chmod 0644 "$so"
strip --strip-debug --remove-section=.comment --enable-deterministic-archives \
    "$usr/lib/libslabcache.a"
shopt -s nullglob
programs=("$usr"/bin/*)
shopt -u nullglob
for exe in "${programs[@]}"; do
    strip --remove-section=.comment --remove-section=.note "$exe"
done

# Man pages and long documents compressed; the licence as a machine-readable copyright file.
find "$usr/share/man" -type f -name '*.[1-8]' -exec gzip -9n {} +
doc=$usr/share/doc/slabcache
gzip -9nc "$doc/CHANGELOG.md" >"$doc/changelog.gz"
gzip -9n "$doc/README.md"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: slabcache"
    echo
    echo "Files: *"
    echo "Copyright: $(sed -n 's/^Copyright (c) //p' "$doc/LICENSE" | head -n 1)"
    echo "License: MIT"
    echo
    echo "License: MIT"
    sed -e '/^MIT License$/d' -e '/^Copyright (c)/d' "$doc/LICENSE" | sed -e '/./,$!d' |
        sed -e 's/^$/./' -e 's/^/ /'
} >"$doc/copyright"
rm "$doc/CHANGELOG.md" "$doc/LICENSE"

# The C library the binaries need: the newest GLIBC_x.y symbol version they reference
# (what dpkg-shlibdeps would find from libc6's symbols file).
glibc=$(for f in "$so" "${programs[@]}"; do objdump -T "$f"; done |
    grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
[[ -n $glibc ]] || die "no GLIBC symbol versions in $so"
depends="libc6 (>= $glibc)"
# Every other library a binary loads (libncurses.so.6 for slabtop): the package its shlibs
# file names ("libncurses 6 libncurses6 (>= 6)" gives "libncurses6 (>= 6)").
glibc_libs='^(libc|libm|libpthread|libdl|librt|ld-linux-x86-64|ld-linux-aarch64)\.so\.'
needed=$(for f in "$so" "${programs[@]}"; do readelf -d "$f"; done |
    sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | grep -vE "$glibc_libs" | grep -v '^libslabcache\.' |
    sort -u || true)
for soname in $needed; do
    [[ $soname =~ ^(.+)\.so\.([0-9.]+)$ ]] || die "cannot read the library name $soname"
    dep=$(awk -v n="${BASH_REMATCH[1]}" -v v="${BASH_REMATCH[2]}" \
        '$1 == n && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' \
        /var/lib/dpkg/info/*.shlibs 2>/dev/null || true)
    [[ -n $dep ]] || die "no installed package's shlibs file names $soname (needed by the binaries)"
    depends+=", $dep"
done

mkdir -p "$root/DEBIAN"
installed_kib=$(du -sk --apparent-size "$usr" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: slabcache
Version: $version
Architecture: $arch
Maintainer: slabcache developers <slabcache@example.invalid>
Installed-Size: $installed_kib
Depends: $depends
Section: libdevel
Priority: optional
Description: object caches (kmem_cache), kmalloc and a drop-in malloc for C
 slabcache is an object-cache library for C11: typed caches for hot structs in
 the style of the Linux kernel's kmem_cache and Bonwick's slab allocator, on
 bitmap-headed slabs with per-thread magazines, constructors and destructors,
 /proc/slabinfo statistics and always-on detection of double and invalid
 frees, with a kmalloc front and a drop-in malloc.
 .
 This package holds the shared library (libslabcache.so.$major, also usable with
 LD_PRELOAD), the static archive, the headers (<slabcache.h>, <slabcache/pool.h>),
 pkg-config and CMake files (find_package(slabcache)), slabcache-slabtop (a live
 view of a running program's caches) and the man pages slabcache(3), slabcache(7)
 and slabcache-slabtop(1).
EOF
# ldconfig runs once at the end of the dpkg run that installs or removes the library.
echo "activate-noawait ldconfig" >"$root/DEBIAN/triggers"
echo "libslabcache $major slabcache (>= $version)" >"$root/DEBIAN/shlibs"
(cd "$root" && find usr -type f -printf '%P\0' | sort -z |
    sed -z 's|^|usr/|' | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN"/*
find "$root" -type d -exec chmod 0755 {} +

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
find "$root" -exec touch -h -d "@$epoch" {} +
deb=$out/slabcache_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$me: $deb"
