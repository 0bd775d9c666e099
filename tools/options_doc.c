/* SPDX-License-Identifier: MIT */
/* tools/options_doc.c - the SLABCACHE_* option table (heap/options.h) as documentation.
 *
 *   bazel run //tools:options_doc -- --markdown            the table of docs/api.md
 *   bazel run //tools:options_doc -- --update docs/api.md  rewrite it in place (between the
 *                                                          BEGIN and END marker lines)
 *   options_doc --names | --script-names                   the variable names, one a line
 *
 * //tests/api:options_doc_test runs it and compares docs/api.md and docs/man/slabcache.7 with
 * the table, so a variable added to the table fails there until it is documented.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap/options.h"

#define BEGIN_MARK "<!-- BEGIN options: generated from heap/options.h"
#define END_MARK "<!-- END options -->"
#define CELL_MAX 512
#define FILE_MAX (1u << 20)

static const char *type_name(enum heap_opt_type t)
{
    switch (t) {
    case HEAP_OPT_BOOL: return "boolean";
    case HEAP_OPT_SIZE: return "size";
    case HEAP_OPT_UINT: return "integer";
    case HEAP_OPT_CHOICE: return "word";
    case HEAP_OPT_STRING: return "text";
    }
    return "?";
}

/* s with '|' escaped (it would end the table cell), and outside `code` '*' (emphasis). */
static void put_cell(FILE *out, const char *s, bool code)
{
    for (; *s; s++) {
        if (*s == '|' || (*s == '*' && !code))
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void put_values(FILE *out, enum heap_opt id)
{
    const struct heap_opt_def *d = heap_opt_lookup(id);
    char lo[64], hi[64];
    switch (d->type) {
    case HEAP_OPT_BOOL:
        fputs("1/0, yes/no, true/false, on/off", out);
        return;
    case HEAP_OPT_SIZE:
    case HEAP_OPT_UINT:
        if (d->min == 0 && d->max == UINT64_MAX) {
            fputs(d->type == HEAP_OPT_SIZE ? "bytes, with a k, m or g suffix" : "any", out);
            return;
        }
        heap_opt_format(lo, sizeof lo, id, d->min);
        heap_opt_format(hi, sizeof hi, id, d->max);
        fprintf(out, "%s to %s%s", lo, hi,
                d->type == HEAP_OPT_SIZE ? " (k, m or g suffix)" : "");
        return;
    case HEAP_OPT_CHOICE:
        for (const char *p = d->values; *p;) {
            size_t n = strcspn(p, "|");
            fprintf(out, "%s`%.*s`", p == d->values ? "" : ", ", (int)n, p);
            p += n + (p[n] == '|');
        }
        if (strncmp(d->values, "off|on", 6) == 0)
            fputs(" (or a boolean)", out);
        return;
    case HEAP_OPT_STRING:
        fputc('`', out);
        put_cell(out, d->values, true);
        fputc('`', out);
        return;
    }
}

static void markdown(FILE *out)
{
    fputs(BEGIN_MARK " by `bazel run //tools:options_doc -- --update docs/api.md`; "
                     "//tests/api:options_doc_test checks it -->\n",
          out);
    fputs("| variable | type | default | values | effect |\n", out);
    fputs("|---|---|---|---|---|\n", out);
    for (unsigned i = 0; i < OPT_COUNT; i++) {
        enum heap_opt id = (enum heap_opt)i;
        const struct heap_opt_def *d = heap_opt_lookup(id);
        char dflt[CELL_MAX];
        heap_opt_format(dflt, sizeof dflt, id, d->def);
        fprintf(out, "| `%s` | %s | %s | ", d->name, type_name(d->type), dflt);
        put_values(out, id);
        fputs(" | ", out);
        put_cell(out, d->help, false);
        fputs(" |\n", out);
    }
    fputs("\nRead by the project's scripts, never by the library (so never reported as unknown):\n\n",
          out);
    fputs("| variable | read by |\n|---|---|\n", out);
    for (size_t i = 0; heap_opt_script_names[i]; i++) {
        fprintf(out, "| `%s` | ", heap_opt_script_names[i]);
        put_cell(out, heap_opt_script_help[i], false);
        fputs(" |\n", out);
    }
    fputs(END_MARK "\n", out);
}

/* Replace the lines from BEGIN_MARK to END_MARK of path with the generated table. */
static int update(const char *path)
{
    char resolved[4096];
    const char *ws = getenv("BUILD_WORKSPACE_DIRECTORY"); /* set by bazel run */
    if (path[0] != '/' && ws) {
        snprintf(resolved, sizeof resolved, "%s/%s", ws, path);
        path = resolved;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "options_doc: %s: %s\n", path, strerror(errno));
        return 1;
    }
    static char text[FILE_MAX];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *begin = strstr(text, BEGIN_MARK);
    char *end = begin ? strstr(begin, END_MARK) : NULL;
    if (!begin || !end || n == sizeof text - 1) {
        fprintf(stderr, "options_doc: %s: no '%s' ... '%s' lines to replace\n", path,
                BEGIN_MARK, END_MARK);
        return 1;
    }
    end += strlen(END_MARK);
    if (*end == '\n')
        end++;
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "options_doc: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fwrite(text, 1, (size_t)(begin - text), f);
    markdown(f);
    fputs(end, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "options_doc: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("options_doc: updated %s\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--markdown") == 0) {
        markdown(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--names") == 0) {
        for (unsigned i = 0; i < OPT_COUNT; i++)
            puts(heap_opt_lookup((enum heap_opt)i)->name);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--script-names") == 0) {
        for (size_t i = 0; heap_opt_script_names[i]; i++)
            puts(heap_opt_script_names[i]);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--update") == 0)
        return update(argv[2]);
    fputs("usage: options_doc --markdown | --names | --script-names | --update FILE\n", stderr);
    return 2;
}
