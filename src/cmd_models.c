/* cmd_models.c - `u2net models`: every model -m NAME can find, the built-in
 * one first, then each folder of the lookup in its order (paths.h:
 * model_folders, then rembg_models_folder), with what each model is. A name found twice is marked
 * where -m NAME does not take it. A file that is no model (rembg keeps
 * other networks in ~/.u2net too) is listed with the reason. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "paths.h"
#include "u2net.h"
#include "util.h"

static const char models_help[] =
    "usage: u2net models\n"
    "\n"
    "Lists the models -m NAME can find, in the order -m looks: the built-in\n"
    BUILTIN_MODEL_NAME ", then the .u2nc and .onnx files of $U2NET_WEIGHTS (folders separated\n"
    "by ':'), weights/ beside the program's folder, ../share/u2net from it,\n"
    "$U2NET_HOME (rembg's folder; default ~/.u2net), and rembg's own layout\n"
    "(~/.rembg/models/NAME/). For each: the name -m takes, the network's name and\n"
    "architecture, its parameters, the input size it was trained at, its\n"
    "pre-processing, and the file with its size. A name found again later is\n"
    "marked: -m takes the first. Files that are not models of the U2Net family\n"
    "are listed with the reason.\n";

enum { COLUMNS = 7 };

typedef struct {
    char *cell[COLUMNS];
} row;

typedef struct {
    row *rows;
    size_t count, cap;
} table;

static int add_row(table *t, char *cells[COLUMNS])
{
    int ok = 1;
    for (int c = 0; c < COLUMNS; c++)
        ok &= cells[c] != NULL;
    if (ok && t->count == t->cap) {
        const size_t cap = t->cap ? 2 * t->cap : 16;
        row *rows = realloc(t->rows, cap * sizeof *rows);
        if (rows)
            t->rows = rows, t->cap = cap;
        else
            ok = 0;
    }
    if (!ok) {
        for (int c = 0; c < COLUMNS; c++)
            free(cells[c]);
        return -1;
    }
    memcpy(t->rows[t->count++].cell, cells, sizeof t->rows[0].cell);
    return 0;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* 1125485 as "1,125,485". */
static char *thousands(size_t v)
{
    char digits[32], out[48];
    const int n = snprintf(digits, sizeof digits, "%zu", v);
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    return strdup(out);
}

/* 2277890 as "2.3 MB", 9668 as "9.7 kB". */
static char *file_size(double bytes)
{
    if (bytes < 1e3)
        return format("%.0f bytes", bytes);
    return bytes < 1e6 ? format("%.1f kB", bytes / 1e3) : format("%.1f MB", bytes / 1e6);
}

static char *preprocessing(const u2net_processing *p)
{
    return format("%s, mean %.3g,%.3g,%.3g, std %.3g,%.3g,%.3g",
                  p->scale == U2NET_SCALE_MAX ? "/max" : "/255", (double)p->mean[0],
                  (double)p->mean[1], (double)p->mean[2], (double)p->std[0], (double)p->std[1],
                  (double)p->std[2]);
}

/* The row of one model: loaded to say what it is. file is what the FILE
 * column shows, bytes its size (0: the size of the model file loaded, for
 * the built-in one). */
static int model_row(table *t, const char *name, const char *path, const char *file,
                     size_t bytes, int shadowed)
{
    u2net_error err;
    u2net_model *m = u2net_model_load(path, &err);
    u2net_model_info info;
    if (m)
        u2net_model_get_info(m, &info);
    char *size = file_size((double)(bytes || !m ? bytes : info.file_bytes));
    char *cells[COLUMNS];
    cells[0] = strdup(name);
    if (m) {
        cells[1] = strdup(info.name);
        cells[2] = strdup(info.architecture);
        cells[3] = thousands(info.params);
        cells[4] = format("%dx%d", info.processing.width, info.processing.height);
        cells[5] = preprocessing(&info.processing);
        cells[6] = size ? format("%s (%s)%s", file, size,
                                 shadowed ? ", not used: -m takes the one above" : "") : NULL;
        u2net_model_free(m);
    } else {
        /* the message less the path it starts with */
        const size_t n = strlen(path);
        const char *why = !strncmp(err.msg, path, n) && !strncmp(err.msg + n, ": ", 2)
                          ? err.msg + n + 2 : err.msg;
        for (int c = 1; c < 6; c++)
            cells[c] = strdup("-");
        cells[6] = size ? format("%s (%s): not a model this program reads: %s", file, size, why)
                        : NULL;
    }
    free(size);
    return add_row(t, cells);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether an earlier row has this name. */
static int seen(const table *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (!strcmp(t->rows[i].cell[0], name))
            return 1;
    return 0;
}

/* The model files of one folder, in name order. A folder that is not there
 * has none. Returns 0, or -1 when out of memory. */
static int folder_rows(table *t, const char *folder)
{
    DIR *d = opendir(folder);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    const struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !is_model_file_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = -1;
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name)))
            rc = -1;
        else
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    /* NAME.u2nc before NAME.onnx, as -m looks for them */
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < n && rc == 0; i++) {
            const char *ext = strrchr(names[i], '.') + 1;
            if (str_eq_ci(ext, "u2nc") != (pass == 0))
                continue;
            char *path = path_join(folder, names[i]);
            char *name = strdup(names[i]);
            struct stat st;
            if (!path || !name)
                rc = -1;
            else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                name[strlen(name) - strlen(ext) - 1] = 0;
                rc = model_row(t, name, path, path, (size_t)st.st_size, seen(t, name));
            }
            free(path);
            free(name);
        }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* rembg's own layout: a folder per model below rembg_models_folder(). */
static int rembg_rows(table *t)
{
    char *root = rembg_models_folder();
    DIR *d = root ? opendir(root) : NULL;
    if (!d) {
        free(root);
        return 0;
    }
    char **subs = NULL;
    size_t n = 0;
    int rc = 0;
    const struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **grown = realloc(subs, (n + 1) * sizeof *subs);
        if (!grown || !(grown[n] = strdup(e->d_name)))
            rc = -1;
        if (grown)
            subs = grown;
        if (rc == 0)
            n++;
    }
    closedir(d);
    if (n)
        qsort(subs, n, sizeof *subs, cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *folder = path_join(root, subs[i]);
        rc = folder ? folder_rows(t, folder) : -1;
        free(folder);
    }
    for (size_t i = 0; i < n; i++)
        free(subs[i]);
    free(subs);
    free(root);
    return rc;
}

static void print_table(const table *t)
{
    static const char *const heads[COLUMNS] = {"NAME", "NETWORK", "ARCHITECTURE", "PARAMS",
                                               "INPUT", "PRE-PROCESSING", "FILE"};
    size_t width[COLUMNS];
    for (int c = 0; c < COLUMNS; c++) {
        width[c] = strlen(heads[c]);
        for (size_t r = 0; r < t->count; r++)
            if (strlen(t->rows[r].cell[c]) > width[c])
                width[c] = strlen(t->rows[r].cell[c]);
    }
    for (size_t r = 0; r <= t->count; r++)
        for (int c = 0; c < COLUMNS; c++) {
            const char *s = r ? t->rows[r - 1].cell[c] : heads[c];
            if (c == COLUMNS - 1)
                printf("%s\n", s);
            else
                printf("%-*s  ", (int)width[c], s);
        }
}

int cmd_models(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(models_help, stdout);
        return 0;
    }
    if (argc != 1) {
        print_error("models takes no arguments (u2net models --help)");
        return 2;
    }
    table t = {NULL, 0, 0};
    int rc = 0;
    if (u2net_has_builtin_model())
        rc = model_row(&t, BUILTIN_MODEL_NAME, U2NET_BUILTIN_MODEL, "built in", 0, 0);
    char **folders = NULL;
    size_t count = 0;
    if (rc == 0)
        rc = model_folders(&folders, &count);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = folder_rows(&t, folders[i]);
    model_folders_free(folders, count);
    if (rc == 0)
        rc = rembg_rows(&t);
    if (rc == 0)
        print_table(&t);
    for (size_t r = 0; r < t.count; r++)
        for (int c = 0; c < COLUMNS; c++)
            free(t.rows[r].cell[c]);
    free(t.rows);
    if (rc != 0) {
        print_error("out of memory");
        return 1;
    }
    return 0;
}
