#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/release.sh - check that the tree is release VERSION throughout, then tag it.
#
#   bash tools/release.sh --check     the checks only (CI runs them: //tests/install:release_test)
#   bash tools/release.sh             the checks, then `git tag -a vVERSION` on HEAD
#
# VERSION is slab/version.h's SLABCACHE_VERSION_STRING, the one place it is set.  Checked:
# MAJOR.MINOR.PATCH there agree with the string; CHANGELOG.md's newest release heading is
# "## [VERSION] - YYYY-MM-DD"; every man page in docs/man says "slabcache VERSION"; the
# version string quoted in docs/api.md and docs/man/slabcache.3 is VERSION.  Tagging also
# needs a clean work tree and no tag vVERSION yet.  Then publish with: git push origin vVERSION
# Steps of a release: set the version in slab/version.h, move CHANGELOG.md's "Unreleased"
# entries under the new heading, update the man pages' .TH lines, run the tests, commit,
# run this.  Exit status: 2 bad arguments, 1 a check failed, 0 done.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=release.sh
check_only=0
case "${1:-}" in
    --check) check_only=1 ;;
    "") ;;
    -h | --help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "$me: unknown argument '$1' (usage: bash tools/release.sh [--check])" >&2; exit 2 ;;
esac
(($# <= 1)) || { echo "$me: one argument at most (usage: bash tools/release.sh [--check])" >&2; exit 2; }

problems=0
problem() { echo "$me: $*" >&2; problems=$((problems + 1)); }

h=$repo/slab/version.h
version=$(sed -n 's/^#define SLABCACHE_VERSION_STRING "\(.*\)"$/\1/p' "$h")
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || { echo "$me: no MAJOR.MINOR.PATCH SLABCACHE_VERSION_STRING in $h" >&2; exit 1; }
for part in MAJOR:1 MINOR:2 PATCH:3; do
    n=$(sed -n "s/^#define SLABCACHE_VERSION_${part%%:*} \([0-9]*\)$/\1/p" "$h")
    [[ $n == "${BASH_REMATCH[${part##*:}]}" ]] ||
        problem "slab/version.h: SLABCACHE_VERSION_${part%%:*} is '$n', the string says $version"
done

newest=$(grep -m1 -E '^## \[[0-9]+\.[0-9]+\.[0-9]+\]' "$repo/CHANGELOG.md" || true)
[[ $newest =~ ^##\ \[$version\]\ -\ [0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] ||
    problem "CHANGELOG.md: the newest release heading is '${newest:-none}', expected '## [$version] - YYYY-MM-DD'"

shopt -s nullglob
for page in "$repo"/docs/man/*.[1-8]; do
    th=$(grep -m1 '^\.TH ' "$page" || true)
    [[ $th == *"\"slabcache $version\""* ]] || problem "${page#"$repo"/}: .TH does not say \"slabcache $version\": $th"
done
for doc in docs/api.md docs/man/slabcache.3; do
    while read -r found; do
        [[ $found == "$version" ]] || problem "$doc: SLABCACHE_VERSION_STRING shown as $found, not $version"
    done < <(grep -o 'SLABCACHE_VERSION_STRING[^0-9]*[0-9][0-9.]*[0-9]' "$repo/$doc" | grep -o '[0-9][0-9.]*[0-9]$')
done

if ((problems)); then
    echo "$me: $problems problem(s); not releasing $version" >&2
    exit 1
fi
if ((check_only)); then
    echo "$me: the tree is release $version"
    exit 0
fi

cd "$repo"
git rev-parse --git-dir >/dev/null 2>&1 || { echo "$me: $repo is not a git work tree" >&2; exit 1; }
if [[ -n $(git status --porcelain) ]]; then
    echo "$me: the work tree has uncommitted changes; commit them first" >&2
    exit 1
fi
if git rev-parse -q --verify "refs/tags/v$version" >/dev/null; then
    echo "$me: tag v$version exists already (on $(git rev-parse --short "v$version^{commit}"))" >&2
    exit 1
fi
git tag -a "v$version" -m "slabcache $version"
echo "$me: tagged $(git rev-parse --short HEAD) as v$version; publish with: git push origin v$version"
