#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what slabcache needs on Debian 12 (bookworm). Idempotent and quiet:
# a second run checks dpkg and exits at once without touching apt.
#
#   sudo bash tools/setup.sh          (or as root: bash tools/setup.sh)
#
# To add packages, append to SLABCACHE_PACKAGES below, or set
# SLABCACHE_EXTRA_PACKAGES="pkg1 pkg2" in the environment.
set -euo pipefail

SLABCACHE_PACKAGES=(
    bazel-bootstrap         # Bazel 4.2.3, builds everything (WORKSPACE mode, offline)
    googletest              # sources in /usr/src/googletest, see third_party/
    g++                     # gcc/g++ 12 with ASan/UBSan/TSan runtimes
    libjemalloc2            # benchmark comparison allocators
    libtcmalloc-minimal4
    libmimalloc2.0
    gnuplot-nox             # benchmark plots
    python3                 # benchmark and report scripts
    valgrind                # memcheck runs, see docs/debugging.md
    clang-14                # libFuzzer target (tests/fuzz), see docs/debugging.md
    libclang-rt-14-dev      # its fuzzer and ASan runtimes
    redis-server            # real programs under the drop-in malloc (tests/programs)
    redis-tools
    sqlite3
    lua5.4
    gawk
    xz-utils
    zstd
    git
    time                    # /usr/bin/time for benchmarks/programs.sh, compare.sh, suite.sh
    ghostscript             # the gs workload of benchmarks/suite.sh and programs.sh
    make                    # tests/install: consumers built outside Bazel, as users build
    cmake                   #   (make + pkg-config, CMake find_package), and the man pages
    pkgconf                 #   checked with groff
    groff-base
    libapr1-dev             # pool benchmarks (benchmarks/pool_bench.sh): APR pools, talloc
    libtalloc-dev           #   and the Boehm-Demers-Weiser collector
    libgc-dev
    libncurses-dev          # tools/slabtop's screen
    tmux                    # tests/observe:slabtop_test drives slabtop in a tmux pane
)
# shellcheck disable=SC2206
SLABCACHE_PACKAGES+=(${SLABCACHE_EXTRA_PACKAGES:-})

missing=()
for pkg in "${SLABCACHE_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

echo "setup: installing ${missing[*]}" >&2
as_root=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "setup: missing packages (${missing[*]}); run as root: bash tools/setup.sh" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
apt_update() {
    "${as_root[@]}" apt-get update -qq >/dev/null
}

# Update the package lists only when needed: never downloaded, or the
# install fails because they are stale.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt_update
fi
if ! apt_install; then
    apt_update
    apt_install
fi
echo "setup: done" >&2
