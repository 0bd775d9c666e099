#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# slab/merge_archives.sh OUT.a INPUT... - merge the static archives among INPUT (Bazel's
# outputs of cc_library targets: .a, .pic.a, .lo, .pic.lo, .so) into one archive OUT.a.
# Per library, the PIC archive is preferred when Bazel produced one.
set -euo pipefail
out=$1
shift
declare -A best=()
for f in "$@"; do
    case "$f" in
        *.pic.a | *.pic.lo) key=${f%.pic.*}; best[$key]=$f ;;
        *.a | *.lo) key=${f%.*}; [[ -n ${best[$key]:-} ]] || best[$key]=$f ;;
    esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for key in "${!best[@]}"; do
    n=$((n + 1))
    mkdir "$tmp/$n"
    (cd "$tmp/$n" && ar x "$OLDPWD/${best[$key]}")
done
rm -f "$out"
ar rcs "$out" "$tmp"/*/*.o
