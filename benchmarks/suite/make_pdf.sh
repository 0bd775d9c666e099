#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# benchmarks/suite/make_pdf.sh - write a large, deterministic PDF for the ghostscript workload.
#
#   bash benchmarks/suite/make_pdf.sh OUT.pdf [PAGES=200]
#
# A PostScript program (generated here with awk) draws PAGES pages of text in the standard
# fonts at many sizes and angles, Bezier curves, filled and stroked paths, gradients of
# grey and colour, clipping and small sampled images; ghostscript's pdfwrite turns it into a
# PDF with embedded fonts (under whatever malloc the caller has; run it without a preload).
# The same PAGES give the same PDF, byte for byte but for its dates, which rendering ignores.
set -euo pipefail
out=${1:?usage: make_pdf.sh OUT.pdf [PAGES]}
pages=${2:-200}
command -v gs >/dev/null || { echo "make_pdf.sh: gs not found (apt-get install ghostscript)" >&2; exit 1; }
ps=$(mktemp "${TMPDIR:-/tmp}/slabcache-gs.XXXXXX.ps")
trap 'rm -f "$ps"' EXIT
awk -v pages="$pages" 'BEGIN {
    print "%!PS-Adobe-3.0";
    print "%%Pages: " pages;
    print "/fonts [/Times-Roman /Helvetica /Courier /Times-Bold /Helvetica-Oblique /Courier-Bold /Palatino-Roman /Bookman-Light] def";
    print "/word { 5 string cvs } def";
    seed = 12345;
    for (p = 1; p <= pages; p++) {
        printf "%%%%Page: %d %d\n", p, p;
        print "gsave";
        # a frame and a gradient band
        for (i = 0; i < 40; i++)
            printf "%.3f %.3f %.3f setrgbcolor %d 760 14 30 rectfill\n", i / 40, (p % 7) / 7, 1 - i / 40, 20 + i * 14;
        # paragraphs of text in several fonts and sizes
        y = 730;
        for (l = 0; l < 34; l++) {
            seed = (seed * 1103515245 + 12345) % 2147483648;
            f = seed % 8; sz = 6 + (seed % 9);
            printf "fonts %d get findfont %d scalefont setfont 0 setgray 40 %d moveto\n", f, sz, y;
            printf "(Page %d line %d: the quick brown fox jumps over the lazy dog %d times.) show\n", p, l, seed % 1000;
            y -= sz + 4;
        }
        # curves, filled and stroked
        for (c = 0; c < 30; c++) {
            seed = (seed * 1103515245 + 12345) % 2147483648;
            x0 = seed % 500; y0 = seed % 300 + 50;
            printf "newpath %d %d moveto %d %d %d %d %d %d curveto closepath\n", x0, y0, x0 + 80, y0 + 120, x0 + 160, y0 - 60, x0 + 40, y0 + 30;
            printf "gsave %.3f %.3f %.3f setrgbcolor fill grestore %.2f setlinewidth stroke\n", (c % 5) / 5, (c % 3) / 3, (c % 7) / 7, 0.2 + (c % 4);
        }
        # rotated text under a clip
        print "gsave newpath 300 400 150 0 360 arc clip";
        for (a = 0; a < 12; a++)
            printf "gsave 300 400 translate %d rotate fonts %d get findfont 11 scalefont setfont 0 0 moveto (rotated %d on page %d) show grestore\n", a * 30, a % 8, a, p;
        print "grestore";
        # a small sampled image, scaled up
        printf "gsave 420 60 translate 120 120 scale 16 16 8 [16 0 0 16 0 0] {<";
        for (k = 0; k < 256; k++) printf "%02x", (k * 7 + p * 13) % 256;
        print ">} image grestore";
        print "grestore showpage";
    }
    print "%%EOF";
}' >"$ps"
gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -sOutputFile="$out" "$ps"
