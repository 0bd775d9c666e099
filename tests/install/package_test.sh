#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/install/package_test.sh - tools/package.sh builds slabcache_VERSION_ARCH.deb from
# the library Bazel built for this configuration (--prebuilt), and the package is what
# Debian expects: dpkg-deb -I (control fields, the ldconfig trigger, shlibs, md5sums that
# match) and dpkg-deb -c (the files, owned by root, links, modes), a stripped library with
# the right SONAME, a stripped /usr/bin/slabcache-slabtop whose libraries Depends names
# (and no path procps holds: /usr/bin/slabtop, slabtop.1), compressed
# man pages, a copyright file.  Installing it for real is
# package_root_test (root only).  Bad arguments: a message and status 2.
set -euo pipefail

src=$PWD
work=${TEST_TMPDIR:-$(mktemp -d)}/package
rm -rf "$work"
mkdir -p "$work"
version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\(.*\)"$/\1/p' slab/version.h)
major=${version%%.*}
arch=$(dpkg --print-architecture)
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "bad arguments"
for a in --bogus --out= --prebuilt; do
    rc=0
    out=$(bash tools/package.sh "$a" 2>&1) || rc=$?
    ((rc == 2)) || fail "package.sh '$a' exited $rc, expected 2 ($out)"
    grep -q '^package.sh: ' <<<"$out" || fail "package.sh '$a' gave no message: $out"
done

step "build the package"
out=$(bash tools/package.sh --out="$work" --prebuilt="$src") || fail "package.sh failed: $out"
deb=$work/slabcache_${version}_${arch}.deb
[[ $out == "package.sh: $deb" && -f $deb ]] || fail "package.sh printed '$out', no $deb"

step "dpkg-deb -I: control fields, trigger, shlibs"
info=$(dpkg-deb -I "$deb")
echo "$info" | sed 's/^/   /'
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == slabcache ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version)"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
# libc6 first, then one package per other library the binaries load (slabtop: ncurses).
depends=$(field Depends)
[[ $depends =~ ^libc6\ \(\>=\ 2\.[0-9]+\)(,\ [a-z0-9.+-]+\ \(\>=\ [0-9][^\)]*\))*$ ]] ||
    fail "Depends: $depends"
[[ $(field Installed-Size) =~ ^[1-9][0-9]*$ ]] || fail "Installed-Size: $(field Installed-Size)"
[[ $(field Maintainer) == *'<'*'@'*'>' ]] || fail "Maintainer: $(field Maintainer)"
[[ -n $(field Description) && -n $(field Section) && -n $(field Priority) ]] ||
    fail "Description, Section or Priority missing"
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"
[[ $(cat "$work/control/triggers") == "activate-noawait ldconfig" ]] ||
    fail "no ldconfig trigger: $(cat "$work/control/triggers")"
[[ $(cat "$work/control/shlibs") == "libslabcache $major slabcache (>= $version)" ]] ||
    fail "shlibs: $(cat "$work/control/shlibs")"
for s in preinst postinst prerm postrm; do
    [[ ! -e $work/control/$s ]] || fail "unexpected maintainer script $s"
done

step "dpkg-deb -c: the files"
listing=$(dpkg-deb -c "$deb")
echo "$listing" | awk '{ print "   " $1, $2, $6, $7, $8 }'
paths=$(awk '{ print $6 }' <<<"$listing")
for f in ./usr/include/slabcache.h ./usr/include/slabcache/slab.h \
    ./usr/include/slabcache/kmalloc.h ./usr/include/slabcache/version.h \
    "./usr/lib/libslabcache.so.$version" ./usr/lib/libslabcache.a \
    ./usr/lib/pkgconfig/slabcache.pc ./usr/lib/cmake/slabcache/slabcacheConfig.cmake \
    ./usr/lib/cmake/slabcache/slabcacheConfigVersion.cmake \
    ./usr/include/slabcache/pool.h ./usr/bin/slabcache-slabtop ./usr/share/man/man1/slabcache-slabtop.1.gz \
    ./usr/share/man/man3/slabcache.3.gz ./usr/share/man/man7/slabcache.7.gz \
    ./usr/share/doc/slabcache/copyright ./usr/share/doc/slabcache/changelog.gz; do
    grep -qxF "$f" <<<"$paths" || fail "$f is not in the package"
done
grep -qF "./usr/lib/libslabcache.so.$major -> libslabcache.so.$version" <<<"$listing" ||
    fail "no libslabcache.so.$major link"
grep -qF "./usr/lib/libslabcache.so -> libslabcache.so.$major" <<<"$listing" ||
    fail "no libslabcache.so link"
if grep -vE '^\./$|^\./usr/' <<<"$paths"; then fail "files outside /usr (above)"; fi
if grep -E '/slabtop(\.1\.gz)?$' <<<"$paths"; then fail "paths of procps' slabtop (above)"; fi
if awk '$2 != "root/root"' <<<"$listing" | grep .; then fail "files not owned by root (above)"; fi
grep -E "^-rw-r--r-- .* \./usr/lib/libslabcache\.so\.$version\$" <<<"$listing" >/dev/null ||
    fail "the shared library is not mode 0644"
grep -E '^-rwxr-xr-x .* \./usr/bin/slabcache-slabtop$' <<<"$listing" >/dev/null || fail "slabtop is not mode 0755"

step "the contents: md5sums, a stripped library, the pkg-config prefix"
dpkg-deb -x "$deb" "$work/root"
(cd "$work/root" && md5sum --quiet -c "$work/control/md5sums") || fail "md5sums do not match"
nfiles=$(cd "$work/root" && find . -type f | wc -l)
[[ $(wc -l <"$work/control/md5sums") == "$nfiles" ]] || fail "md5sums does not list every file"
so=$work/root/usr/lib/libslabcache.so.$version
grep -q "(SONAME).*\[libslabcache.so.$major\]" <<<"$(readelf -d "$so")" || fail "SONAME"
if grep -qE '\.debug_|\.symtab' <<<"$(readelf -S "$so")"; then fail "the library is not stripped"; fi
grep -q ' T malloc$' <<<"$(nm -D --defined-only "$so")" || fail "stripping lost the exported symbols"
exe=$work/root/usr/bin/slabcache-slabtop
if grep -qE '\.debug_|\.symtab' <<<"$(readelf -S "$exe")"; then fail "slabtop is not stripped"; fi
[[ $("$exe" --help) == "usage: slabtop -p PID"* ]] || fail "the packaged slabtop does not run"
# Every library slabtop loads, other than the C library's, is provided by a package Depends
# names (the package that owns the file, per dpkg -S).
for lib in $(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
    [[ $lib == libc.so.* ]] && continue
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    [[ -n $path ]] || fail "slabtop needs $lib, which the loader does not know"
    owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null) ||
        fail "no package owns $path"
    owner=${owner%%:*}
    grep -qE "(^|, )$owner( |$)" <<<"$depends" || fail "slabtop needs $lib of $owner; Depends: $depends"
done
grep -q '^prefix=/usr$' "$work/root/usr/lib/pkgconfig/slabcache.pc" || fail "slabcache.pc prefix"
grep -q '^\.TH SLABCACHE 3' <<<"$(zcat "$work/root/usr/share/man/man3/slabcache.3.gz")" ||
    fail "slabcache.3.gz is not the man page"
grep -q '^\.TH SLABCACHE-SLABTOP 1' <<<"$(zcat "$work/root/usr/share/man/man1/slabcache-slabtop.1.gz")" ||
    fail "slabcache-slabtop.1.gz is not the man page"
grep -q '^License: MIT$' "$work/root/usr/share/doc/slabcache/copyright" || fail "copyright"

step "the same tree gives the same package"
mkdir "$work/again"
for dir in "$work" "$work/again"; do
    SOURCE_DATE_EPOCH=1700000000 bash tools/package.sh --out="$dir" --prebuilt="$src" >/dev/null
done
cmp -s "$deb" "$work/again/${deb##*/}" || fail "two builds with one SOURCE_DATE_EPOCH differ"
echo "PASS"
