#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/slab/layering_test.sh ARCHIVE... - the floors of the allocator, read from the object
# files' symbols (nm): every global symbol an object uses (U) is looked up among the symbols
# the others define, which gives the calls and data references between files.  The test
# fails when a file uses one on its own floor or a higher one, so no call loop can come back:
#
#   heap/*  <  buddy  <  ptrset < report < debug < slab < magazine < cache
#                        < {stats, leak, heapmap}  <  kmalloc
#
# Inside heap/ only the ground floor is checked: fmt.c (the formatter of every layer) uses
# nothing of heap/.  A new object file of slab/ must be given a floor here (the test says so).
# Arguments: the outputs of //heap, //buddy, //slab:slab and //slab:kmalloc (archives are
# read; shared libraries are skipped).
set -euo pipefail

declare -A floor=(
    [ptrset]=20 [report]=21 [debug]=22 [slab]=23 [magazine]=24 [cache]=25
    [stats]=26 [leak]=26 [heapmap]=26
    [kmalloc]=30
)

syms=$(mktemp)
trap 'rm -f "$syms"' EXIT
narch=0
for a in "$@"; do
    case "$a" in
        *.a | *.lo) ;;
        *) continue ;;
    esac
    narch=$((narch + 1))
    pkg=$(basename "$(dirname "$a")")
    # "archive:member.o: 0000000000000000 T name" or "archive:member.o:      U name"
    nm -A "$a" | awk -v pkg="$pkg" '
        {
            n = split($1, parts, ":"); member = parts[n - 1]; sub(/\..*$/, "", member)
            type = $(NF - 1); name = $NF
            if (type == "U") print pkg, member, "U", name
            else if (type ~ /^[TDBRCVW]$/) print pkg, member, "D", name
        }' >>"$syms"
done
if ((narch < 4)); then
    echo "layering_test: expected the archives of heap, buddy, slab and kmalloc; got $narch" >&2
    exit 1
fi

# Floor of an object: slab/ and kmalloc files by name, buddy and heap files by package.
floor_of() { # pkg member
    case "$1" in
        heap) echo 0 ;;
        buddy) echo 10 ;;
        *) [[ -n ${floor[$2]:-} ]] && echo "${floor[$2]}" || echo unknown ;;
    esac
}

fail=0
edges=0
# Every use of a symbol defined by another object: from-object to-object.
while read -r upkg umember dpkg dmember name; do
    [[ "$upkg/$umember" == "$dpkg/$dmember" ]] && continue
    edges=$((edges + 1))
    if [[ "$upkg" == heap && "$dpkg" == heap ]]; then
        if [[ "$umember" == fmt ]]; then
            echo "layering: heap/fmt.c uses $name of heap/$dmember.c: the formatter is the ground floor"
            fail=1
        fi
        continue
    fi
    from=$(floor_of "$upkg" "$umember")
    to=$(floor_of "$dpkg" "$dmember")
    for f in "$upkg/$umember:$from" "$dpkg/$dmember:$to"; do
        if [[ ${f##*:} == unknown ]]; then
            echo "layering: ${f%:*}.c has no floor in tests/slab/layering_test.sh; give it one"
            fail=1
        fi
    done
    [[ $from == unknown || $to == unknown ]] && continue
    if ((to >= from)); then
        echo "layering: $upkg/$umember.c (floor $from) uses $name of $dpkg/$dmember.c (floor $to):" \
             "a file may only use the floors below it"
        fail=1
    fi
done < <(awk '
    $3 == "D" { def[$4] = $1 " " $2 }
    $3 == "U" { use[++n] = $1 " " $2 " " $4 }
    END { for (i = 1; i <= n; i++) { split(use[i], u, " "); if (u[3] in def) print u[1], u[2], def[u[3]], u[3] } }
' "$syms" | sort -u)

if ((edges < 50)); then
    echo "layering_test: only $edges uses between files found; is nm reading the archives?" >&2
    exit 1
fi
if ((fail)); then
    exit 1
fi
echo "layering_test: $edges uses between object files, every one to a lower floor"
