#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/install/release_test.sh - tools/release.sh: the tree passes `--check` (slab/version.h,
# CHANGELOG.md, the man pages and the quoted version strings agree); in a scratch git
# repository holding the same files it tags vVERSION, refuses to tag twice or a dirty tree,
# and `--check` fails, naming the file, when one place disagrees.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\(.*\)"$/\1/p' slab/version.h)

step "release.sh --check on this tree"
bash tools/release.sh --check || fail "the tree is not consistently release $version"

step "tagging in a scratch repository"
scratch=${TEST_TMPDIR:-$(mktemp -d)}/release
rm -rf "$scratch"
mkdir -p "$scratch"
cp --parents -L tools/release.sh slab/version.h CHANGELOG.md docs/api.md docs/man/* "$scratch/"
export GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@example.invalid
export GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@example.invalid GIT_CONFIG_NOSYSTEM=1
export HOME=$scratch
git -C "$scratch" init -q
git -C "$scratch" add -A
git -C "$scratch" commit -qm release
bash "$scratch/tools/release.sh" >/dev/null || fail "release.sh did not tag a clean tree"
[[ $(git -C "$scratch" cat-file -t "v$version") == tag ]] || fail "no annotated tag v$version"
rc=0
bash "$scratch/tools/release.sh" 2>/dev/null || rc=$?
((rc == 1)) || fail "a second release.sh exited $rc, expected 1 (tag exists)"
git -C "$scratch" tag -d "v$version" >/dev/null
echo "// changed" >>"$scratch/slab/version.h"
rc=0
err=$(bash "$scratch/tools/release.sh" 2>&1) || rc=$?
((rc == 1)) && [[ $err == *uncommitted* ]] || fail "release.sh tagged a dirty tree ($rc: $err)"
git -C "$scratch" checkout -q -- slab/version.h

step "--check names what disagrees"
# mismatch FILE SED-SCRIPT EXPECTED-WORDS: break FILE, expect --check to fail naming it.
mismatch() {
    local file=$1 script=$2 words=$3 rc=0 err
    cp "$scratch/$file" "$scratch/saved"
    sed -i "$script" "$scratch/$file"
    err=$(bash "$scratch/tools/release.sh" --check 2>&1) || rc=$?
    cp "$scratch/saved" "$scratch/$file"
    ((rc == 1)) || fail "--check passed with $file changed by '$script'"
    [[ $err == *"$words"* ]] || fail "--check did not name $words: $err"
}
mismatch slab/version.h 's/^#define SLABCACHE_VERSION_MINOR .*/#define SLABCACHE_VERSION_MINOR 9/' \
    SLABCACHE_VERSION_MINOR
mismatch CHANGELOG.md "s/^## \\[$version\\]/## [9.9.9]/" CHANGELOG.md
mismatch docs/man/slabcache.7 "s/\"slabcache $version\"/\"slabcache 0.0.1\"/" slabcache.7
mismatch docs/api.md "s/\`\"$version\"\`/\`\"0.0.1\"\`/" docs/api.md
echo "PASS"
