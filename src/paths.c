/* paths.c - input discovery, output naming, file sets and model lookup. */
#include "paths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "u2net.h"
#include "util.h"

/* Deeper folders than this are reported, not walked: it bounds the recursion
 * (and so the stack) whatever the tree. */
#define MAX_FOLDER_DEPTH 256

/* ---- file identity set: open addressing, linear probing ---- */

static size_t file_id_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15u ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Fu;
    return (size_t)(h ^ h >> 29);
}

const file_id *file_id_find(const file_id_set *s, dev_t dev, ino_t ino)
{
    if (!s->cap)
        return NULL;
    for (size_t i = file_id_hash(dev, ino) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        const file_id *e = &s->slots[i];
        if (!e->used)
            return NULL;
        if (e->dev == dev && e->ino == ino)
            return e;
    }
}

static void file_id_put(file_id *slots, size_t cap, file_id e)
{
    size_t i = file_id_hash(e.dev, e.ino) & (cap - 1);
    while (slots[i].used)
        i = (i + 1) & (cap - 1);
    slots[i] = e;
}

int file_id_add(file_id_set *s, dev_t dev, ino_t ino, const char *path)
{
    if (file_id_find(s, dev, ino))
        return 0;
    /* keep the table at most half full so probes stay short */
    if ((s->count + 1) * 2 > s->cap) {
        const size_t cap = s->cap ? s->cap * 2 : 64;
        file_id *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].used)
                file_id_put(slots, cap, s->slots[i]);
        free(s->slots);
        s->slots = slots, s->cap = cap;
    }
    file_id_put(s->slots, s->cap, (file_id){dev, ino, path, 1});
    s->count++;
    return 0;
}

void file_id_set_free(file_id_set *s)
{
    free(s->slots);
    s->slots = NULL, s->cap = s->count = 0;
}

/* ---- claimed output paths: the same scheme keyed by string ---- */

static size_t str_hash(const char *s)
{
    uint64_t h = 0xCBF29CE484222325u;  /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001B3u;
    return (size_t)h;
}

const char *claim_find(const claim_table *t, const char *path)
{
    if (!t->cap)
        return NULL;
    for (size_t i = str_hash(path) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        const claim *c = &t->slots[i];
        if (!c->key)
            return NULL;
        if (!strcmp(c->key, path))
            return c->input;
    }
}

static void claim_put(claim *slots, size_t cap, claim c)
{
    size_t i = str_hash(c.key) & (cap - 1);
    while (slots[i].key)
        i = (i + 1) & (cap - 1);
    slots[i] = c;
}

int claim_add(claim_table *t, const char *path, const char *input)
{
    if (claim_find(t, path))
        return 0;
    if ((t->count + 1) * 2 > t->cap) {
        const size_t cap = t->cap ? t->cap * 2 : 64;
        claim *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].key)
                claim_put(slots, cap, t->slots[i]);
        free(t->slots);
        t->slots = slots, t->cap = cap;
    }
    char *key = strdup(path);
    if (!key)
        return -1;
    claim_put(t->slots, t->cap, (claim){key, input});
    t->count++;
    return 0;
}

void claim_table_free(claim_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].key);
    free(t->slots);
    t->slots = NULL, t->cap = t->count = 0;
}

/* ---- input discovery ---- */

int is_image_name(const char *name)
{
    static const char *const exts[] = {"jpg", "jpeg", "png", "bmp", "tga", "gif",
                                       "pnm", "ppm", "pgm"};
    const char *ext = path_extension(name);
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
        if (str_eq_ci(ext, exts[i]))
            return 1;
    return 0;
}

/* The last component of path less its extension, as a new string. */
static char *stem_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *ext = path_extension(path);
    const size_t n = *ext ? (size_t)(ext - 1 - base) : strlen(base);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, base, n);
        s[n] = '\0';
    }
    return s;
}

/* Appends an input; takes ownership of path and subdir (freed on failure). */
static int add_input(input_list *l, char *path, char *subdir, char *stem, const struct stat *st)
{
    if (!path || !subdir || !stem)
        goto fail;
    if (l->count == l->cap) {
        const size_t cap = l->cap ? l->cap * 2 : 16;
        input_file *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            goto fail;
        l->items = items, l->cap = cap;
    }
    input_file *f = &l->items[l->count++];
    f->path = path, f->subdir = subdir, f->stem = stem;
    f->has_id = st != NULL;
    f->dev = st ? st->st_dev : 0;
    f->ino = st ? st->st_ino : 0;
    return 0;
fail:
    free(path);
    free(subdir);
    free(stem);
    return -1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The visible names of an open folder, sorted; -1 with errno on failure. */
static int list_names(DIR *d, char ***names_out, size_t *count_out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        errno = 0;
        const struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                goto fail;
            break;
        }
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                errno = ENOMEM;
                goto fail;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            errno = ENOMEM;
            goto fail;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    *names_out = names, *count_out = n;
    return 0;
fail:;
    const int saved = errno;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    errno = saved;
    return -1;
}

typedef struct {
    input_list *list;
    file_id_set *visited;
    const scan_opts *opts;
    size_t *problems;
    size_t found;         /* images added below the INPUT folder */
    int skipped_subdirs;  /* sub-folders seen but not walked (no -r) */
} walk;

/* Adds the images of folder dir (whose own identity is st), found at subdir
 * below the INPUT folder. Returns -1 only when out of memory. */
static int walk_folder(walk *w, const char *dir, const char *subdir, const struct stat *st,
                       int depth)
{
    if (file_id_find(w->visited, st->st_dev, st->st_ino))
        return 0;
    if (file_id_add(w->visited, st->st_dev, st->st_ino, NULL) != 0)
        return -1;
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0;
    if (!d || list_names(d, &names, &n) != 0) {
        if (errno == ENOMEM) {
            if (d)
                closedir(d);
            return -1;
        }
        print_error("%s: cannot read folder: %s", dir, strerror(errno));
        (*w->problems)++;
        if (d)
            closedir(d);
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *name = names[i];
        struct stat est;
        if (fstatat(dirfd(d), name, &est, AT_SYMLINK_NOFOLLOW) != 0)
            continue;  /* gone since it was listed */
        char *path = path_join(dir, name);
        if (!path) {
            rc = -1;
            break;
        }
        if (S_ISDIR(est.st_mode)) {
            const int is_output = w->opts->skip_dir && est.st_dev == w->opts->skip_dev &&
                                  est.st_ino == w->opts->skip_ino;
            if (!w->opts->recursive) {
                w->skipped_subdirs = 1;
            } else if (is_output) {
                /* the output folder below an input folder holds results */
            } else if (depth + 1 >= MAX_FOLDER_DEPTH) {
                print_error("%s: more than %d folders deep; not walked", path, MAX_FOLDER_DEPTH);
                (*w->problems)++;
            } else {
                char *sub = path_join(subdir, name);
                rc = sub ? walk_folder(w, path, sub, &est, depth + 1) : -1;
                free(sub);
            }
            free(path);
            continue;
        }
        if (!is_image_name(name)) {
            free(path);
            continue;
        }
        /* a link to a file is taken (a broken one fails when it is read, so
         * it is reported); links to folders are not followed */
        struct stat target = est;
        const int is_link = S_ISLNK(est.st_mode);
        const int resolved = !is_link || stat(path, &target) == 0;
        if (resolved && !S_ISREG(target.st_mode)) {
            free(path);
            continue;
        }
        rc = add_input(w->list, path, strdup(subdir), stem_of(name), resolved ? &target : NULL);
        if (rc == 0)
            w->found++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int inputs_add(input_list *l, file_id_set *visited, const char *arg, const scan_opts *o,
               size_t *problems)
{
    if (!strcmp(arg, "-"))
        return add_input(l, strdup("-"), strdup(""), strdup("stdin"), NULL);
    struct stat st;
    if (stat(arg, &st) != 0) {
        print_error("%s: %s", arg, strerror(errno));
        (*problems)++;
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return add_input(l, strdup(arg), strdup(""), stem_of(arg), &st);
    if (file_id_find(visited, st.st_dev, st.st_ino))
        return 0;  /* the same folder named twice: its images are in already */
    walk w = {l, visited, o, problems, 0, 0};
    const size_t problems_before = *problems;
    if (walk_folder(&w, arg, "", &st, 0) != 0)
        return -1;
    if (w.found == 0 && *problems == problems_before) {
        print_error("%s: no image files in this folder%s", arg,
                w.skipped_subdirs ? " (use -r to include its sub-folders)" : "");
        (*problems)++;
    }
    return 0;
}

void inputs_free(input_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].path);
        free(l->items[i].subdir);
        free(l->items[i].stem);
    }
    free(l->items);
    l->items = NULL, l->count = l->cap = 0;
}

/* ---- outputs ---- */

char *output_path(const char *dir, const char *subdir, const char *stem, const char *type,
                  const char *ext)
{
    const size_t n = strlen(stem) + strlen(type) + strlen(ext) + 3;
    char *name = malloc(n);
    if (!name)
        return NULL;
    snprintf(name, n, "%s_%s.%s", stem, type, ext);
    char *folder = path_join(dir, subdir);
    char *path = folder ? path_join(folder, name) : NULL;
    free(folder);
    free(name);
    return path;
}

/* ---- models ---- */

/* The folder of this program's folder ("/x" for /x/build/u2net), or NULL. */
static char *program_parent(void)
{
    size_t cap = 256;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return NULL;
        const ssize_t n = readlink("/proc/self/exe", buf, cap);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((size_t)n < cap) {
            buf[n] = '\0';
            for (int up = 0; up < 2; up++) {
                char *slash = strrchr(buf, '/');
                if (!slash) {
                    free(buf);
                    return NULL;
                }
                /* "/u2net" has the root as its folder */
                slash[slash == buf] = '\0';
            }
            return buf;
        }
        free(buf);
        if (cap > 1 << 20)
            return NULL;
        cap *= 2;
    }
}

/* Appends a copy of folder to the list (a NULL folder means out of memory). */
static int add_folder(char ***list, size_t *n, char *folder)
{
    char **grown = folder ? realloc(*list, (*n + 1) * sizeof **list) : NULL;
    if (!grown) {
        free(folder);
        return -1;
    }
    grown[(*n)++] = folder;
    *list = grown;
    return 0;
}

int model_folders(char ***folders, size_t *count)
{
    char **list = NULL;
    size_t n = 0;
    int rc = 0;
    const char *env = getenv("U2NET_WEIGHTS");
    if (env && *env) {
        char *copy = strdup(env);
        if (!copy)
            rc = -1;
        for (char *f = copy, *next; f && rc == 0; f = next) {
            next = strchr(f, ':');
            if (next)
                *next++ = '\0';
            if (*f)
                rc = add_folder(&list, &n, strdup(f));
        }
        free(copy);
    }
    /* build/u2net reads ./weights; an installed PREFIX/bin/u2net reads
     * PREFIX/share/u2net, wherever PREFIX was moved to */
    char *parent = rc == 0 ? program_parent() : NULL;
    if (parent) {
        rc = add_folder(&list, &n, path_join(parent, "weights"));
        if (rc == 0)
            rc = add_folder(&list, &n, path_join(parent, "share/u2net"));
        free(parent);
    }
    /* rembg's folder: $U2NET_HOME, else $XDG_DATA_HOME/.u2net, else ~/.u2net */
    const char *home = getenv("U2NET_HOME"), *data = getenv("XDG_DATA_HOME");
    if (rc == 0 && home && *home)
        rc = add_folder(&list, &n, strdup(home));
    else if (rc == 0 && data && *data)
        rc = add_folder(&list, &n, path_join(data, ".u2net"));
    else if (rc == 0 && (home = getenv("HOME")) && *home)
        rc = add_folder(&list, &n, path_join(home, ".u2net"));
    if (rc != 0) {
        model_folders_free(list, n);
        return -1;
    }
    *folders = list, *count = n;
    return 0;
}

void model_folders_free(char **folders, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(folders[i]);
    free(folders);
}

char *rembg_models_folder(void)
{
    const char *home = getenv("U2NET_HOME"), *rembg = getenv("REMBG_HOME");
    const char *data = getenv("XDG_DATA_HOME"), *user = getenv("HOME");
    char *root = home && *home ? strdup(home)
                 : rembg && *rembg ? strdup(rembg)
                 : data && *data ? path_join(data, "rembg")
                 : user && *user ? path_join(user, ".rembg") : NULL;
    char *models = root ? path_join(root, "models") : NULL;
    free(root);
    return models;
}

int is_model_file_name(const char *name)
{
    const char *ext = path_extension(name);
    return str_eq_ci(ext, "u2nc") || str_eq_ci(ext, "onnx");
}

/* Appends ", " (when not first) and s to the growing string *acc. */
static int append_list(char **acc, const char *s)
{
    const size_t a = *acc ? strlen(*acc) : 0, b = strlen(s);
    char *n = realloc(*acc, a + b + 3);
    if (!n)
        return -1;
    if (a)
        memcpy(n + a, ", ", 2);
    memcpy(n + (a ? a + 2 : 0), s, b + 1);
    *acc = n;
    return 0;
}

/* folder/NAME.u2nc or folder/NAME.onnx when one is a file, else NULL; *oom
 * is set when out of memory. */
static char *try_folder(const char *folder, const char *name, int *oom)
{
    static const char *const exts[] = {".u2nc", ".onnx"};
    for (size_t i = 0; i < 2; i++) {
        const size_t n = strlen(name) + strlen(exts[i]) + 1;
        char *file = malloc(n), *p = NULL;
        if (file) {
            snprintf(file, n, "%s%s", name, exts[i]);
            p = path_join(folder, file);
            free(file);
        }
        struct stat st;
        if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            return p;
        free(p);
        if (!p) {
            *oom = 1;
            return NULL;
        }
    }
    return NULL;
}

char *model_find(const char *arg, char **looked)
{
    *looked = NULL;
    if (strchr(arg, '/') || is_model_file_name(arg))
        return strdup(arg);
    if (!strcmp(arg, BUILTIN_MODEL_NAME) && u2net_has_builtin_model())
        return strdup(U2NET_BUILTIN_MODEL);
    char **folders;
    size_t count;
    if (model_folders(&folders, &count) != 0)
        return NULL;
    /* rembg's own layout last: ROOT/models/NAME/NAME.onnx */
    char *rembg = rembg_models_folder();
    char *own = rembg ? path_join(rembg, arg) : NULL;
    free(rembg);
    char *found = NULL;
    int oom = 0;
    for (size_t i = 0; i <= count && !found && !oom; i++) {
        const char *folder = i < count ? folders[i] : own;
        if (!folder)
            break;
        found = try_folder(folder, arg, &oom);
        if (!found && !oom && append_list(looked, folder) != 0)
            oom = 1;
    }
    free(own);
    model_folders_free(folders, count);
    if (found || oom) {
        free(*looked);
        *looked = NULL;
    }
    return found;
}

u2net_model *model_open(const char *who, const char *arg)
{
    char *looked = NULL;
    char *path = model_find(arg, &looked);
    if (!path) {
        print_error("%smodel '%s' not found: looked for %s.u2nc and %s.onnx in %s%s; put rembg's "
                    "%s.onnx in $U2NET_HOME or convert a checkpoint with tools/convert.py "
                    "CHECKPOINT -o weights/%s.u2nc (`make weights` remakes the built-in "
                    BUILTIN_MODEL_NAME "), or give -m PATH (u2net models lists them)",
                    who, arg, arg, arg, looked ? looked : "no folder",
                    getenv("U2NET_WEIGHTS") ? "" : " ($U2NET_WEIGHTS is not set)", arg, arg);
        free(looked);
        return NULL;
    }
    u2net_error err;
    u2net_model *m = u2net_model_load(path, &err);
    free(path);
    if (!m)
        print_error("%s%s", who, err.msg);
    return m;
}
