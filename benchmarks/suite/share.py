# SPDX-License-Identifier: MIT
"""benchmarks/suite/share.py - the allocator's share of a workload's CPU time (suite.sh --share).

  share.py sample WORKLOAD ALLOCATOR LIBNAME   < perf report --sort dso,sym -F overhead,sample,dso,sym
      prints one line of share.tsv: workload, allocator, CPU seconds (samples at 999 Hz),
      the allocator's percentage (samples in LIBNAME; for glibc, its malloc family in libc,
      or the jemalloc a program links itself) and the kernel's.  benchmarks/alloc_share.sh
      uses it too.
  share.py table SHARE_TSV PEER,PEER,...
      prints the markdown table: per workload the best peer (least CPU), its allocator share,
      the floor 1 - share (what an allocator that cost nothing would reach against that
      peer, unless it also saved the program's own cache misses or kernel work), slabcache's
      CPU and allocator share, and its allocator time against the best peer's; last, the
      geometric mean of the floors, which bounds the suite's geomean goal.
"""
import math
import re
import sys

GLIBC = re.compile(r"(^|_)(malloc|free|calloc|realloc|memalign|valloc|pvalloc|tcache|unlink_chunk|"
                   r"sysmalloc|systrim|malloc_consolidate|cfree|int_malloc|int_free|int_realloc|"
                   r"int_memalign|arena|mremap_chunk|munmap_chunk|posix_memalign|aligned_alloc)")
LINE = re.compile(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(\S+)")


def sample(workload, kind, libname):
    alloc = kern = total = 0
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        n, dso, where, sym = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        total += n
        if where == "k":
            kern += n
        elif kind == "glibc" and ("libjemalloc" in dso or ("libc" in dso and GLIBC.search(sym))):
            alloc += n  # with no preload: glibc's malloc, or a program's own jemalloc (redis)
        elif kind != "glibc" and dso == libname:
            alloc += n
    if not total:
        sys.exit(f"share.py: no samples for {workload} under {kind}")
    print(f"{workload}\t{kind}\t{total / 999:.3f}\t{100 * alloc / total:.2f}\t{100 * kern / total:.2f}")


def table(path, peers):
    by = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        w, a, cpu, al, k = line.rstrip("\n").split("\t")
        by.setdefault(w, {})[a] = (float(cpu), float(al), float(k))
    print("| workload | best peer (CPU s) | its allocator % | floor | slabcache CPU s | "
          "slabcache allocator % | allocator time vs best peer's | kernel % (slabcache / best) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    logs = []
    for w, d in by.items():
        cand = [(d[p][0], p) for p in peers if p in d]
        if not cand or "slabcache" not in d:
            continue
        _, best = min(cand)
        bc, ba, bk = d[best]
        sc, sa, sk = d["slabcache"]
        floor = 1 - ba / 100
        logs.append(math.log(max(floor, 1e-3)))
        ratio = f"{(sc * sa) / (bc * ba):.2f}x" if bc * ba > 0 else "-"
        print(f"| {w} | {best} ({bc:.2f}) | {ba:.1f} | {floor:.3f} | {sc:.2f} | {sa:.1f} | "
              f"{ratio} | {sk:.1f} / {bk:.1f} |")
    if logs:
        print(f"| **geomean of the floors** | | | **{math.exp(sum(logs) / len(logs)):.3f}** "
              "| | | | |")
        # With the programs' own time as under the best peer, an allocator whose time is k
        # times the best peer's on every row has the geomean G(k) of (1 - s) + k s; the k
        # that gives 0.9 is what the suite's geomean goal asks of the allocator.
        shares = [1 - math.exp(x) for x in logs]

        def geomean(k):
            return math.exp(sum(math.log(1 - s + k * s) for s in shares) / len(shares))
        lo, hi = 0.0, 1.0
        if geomean(0.0) < 0.9:
            for _ in range(50):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if geomean(mid) < 0.9 else (lo, mid)
            print(f"\nA geometric mean of 0.9x needs an allocator that takes {lo:.2f}x the best "
                  "peer's allocator time on every row (the programs' own time unchanged).")
        else:
            print("\nA geometric mean of 0.9x is below the floors: no allocator reaches it "
                  "unless it also saves the programs' own or the kernel's time.")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "sample":
        sample(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3].split(","))
    else:
        sys.exit(__doc__)
