/* paths.h - what the image command reads and writes: finding the input
 * images, naming the outputs, remembering which files a run has touched,
 * and finding a model by name. */
#ifndef U2NET_PATHS_H
#define U2NET_PATHS_H

#include <stddef.h>
#include <sys/types.h>
#include "u2net.h"

/* One input image. */
typedef struct {
    char *path;    /* to open and to show: as given, or a walked folder joined
                      with the names below it; "-" is standard input */
    char *subdir;  /* sub-folder below the INPUT folder it was found in ("" if
                      none), kept below the output folder */
    char *stem;    /* file name less its extension; "stdin" for standard input */
    int has_id;    /* dev/ino are known (an existing file) */
    dev_t dev;
    ino_t ino;
} input_file;

typedef struct {
    input_file *items;
    size_t count, cap;
} input_list;

/* A set of files by identity (st_dev, st_ino), each with a path to name it. */
typedef struct {
    dev_t dev;
    ino_t ino;
    const char *path;
    int used;
} file_id;

typedef struct {
    file_id *slots;
    size_t cap, count;
} file_id_set;

/* The entry of a file, or NULL when it is not in the set. */
const file_id *file_id_find(const file_id_set *s, dev_t dev, ino_t ino);
/* Records a file (path is not copied); returns 0, or -1 when out of memory. */
int file_id_add(file_id_set *s, dev_t dev, ino_t ino, const char *path);
void file_id_set_free(file_id_set *s);

/* Output paths already written in this run, each with the input it came from. */
typedef struct {
    char *key;
    const char *input;
} claim;

typedef struct {
    claim *slots;
    size_t cap, count;
} claim_table;

/* The input that wrote path in this run, or NULL. */
const char *claim_find(const claim_table *t, const char *path);
/* Records path (copied) as written from input (not copied); 0, or -1 when
 * out of memory. */
int claim_add(claim_table *t, const char *path, const char *input);
void claim_table_free(claim_table *t);

/* How folders are walked. */
typedef struct {
    int recursive;
    /* the output folder, when it exists: never walked, so a run over a tree
     * that holds its own outputs does not take them as inputs next time */
    int skip_dir;
    dev_t skip_dev;
    ino_t skip_ino;
} scan_opts;

/* True when a file name has one of the image extensions a folder scan takes
 * (.jpg .jpeg .png .bmp .tga .gif .pnm .ppm .pgm, any case; binary P5/P6 PNM only). */
int is_image_name(const char *name);

/* Adds the images one INPUT argument names: "-" (standard input), a file
 * (whatever its extension), or a folder (its image files in byte order of
 * their names, hidden ones left out; with o->recursive its sub-folders too,
 * symbolic links to folders not followed, each folder at most once).
 * Problems (a missing input, an unreadable folder, a folder without images)
 * are printed as "u2net: PATH: problem" and counted in *problems. visited
 * records the folders walked. Returns 0, or -1 when out of memory. */
int inputs_add(input_list *l, file_id_set *visited, const char *arg, const scan_opts *o,
               size_t *problems);
void inputs_free(input_list *l);

/* dir/subdir/STEM_TYPE.EXT as a new string (subdir may be ""), or NULL
 * when out of memory. */
char *output_path(const char *dir, const char *subdir, const char *stem, const char *type,
                  const char *ext);

/* The name -m gives the model built into the library (U2NET_BUILTIN_MODEL),
 * and the default model. */
#define BUILTIN_MODEL_NAME "u2netp"

/* The model for -m ARG. ARG holding a '/' or ending in .u2nc or .onnx is a
 * path and is returned as it is. A name is the built-in model when it is
 * BUILTIN_MODEL_NAME and the library has one (U2NET_BUILTIN_MODEL is
 * returned); otherwise NAME.u2nc, then NAME.onnx, in each folder of
 * model_folders, then in rembg_models_folder()/NAME. Returns a new string, or NULL with *looked (a new string,
 * free it) listing the folders searched; *looked is NULL when there was no
 * folder to search or memory ran out. */
char *model_find(const char *arg, char **looked);

/* model_find's model, loaded; NULL after one error line (prefixed with who,
 * "" or e.g. "serve: ") saying what was looked for or why it did not load. */
u2net_model *model_open(const char *who, const char *arg);

/* The folders a model name is looked up in, in order: each folder of
 * $U2NET_WEIGHTS (':'-separated), weights/ beside the program's folder,
 * share/u2net beside it (an installed program), then rembg's: $U2NET_HOME,
 * else $XDG_DATA_HOME/.u2net, else ~/.u2net. *folders is a new array of new
 * strings (model_folders_free); 0, or -1 when out of memory. */
int model_folders(char ***folders, size_t *count);
void model_folders_free(char **folders, size_t count);

/* Where rembg itself keeps its downloads, one folder per model
 * (ROOT/models/NAME/NAME.onnx): ROOT is $U2NET_HOME, else $REMBG_HOME, else
 * $XDG_DATA_HOME/rembg, else ~/.rembg. A new string, or NULL (no such
 * variable, or out of memory). */
char *rembg_models_folder(void);

/* Whether a file name is a model file's: .u2nc or .onnx, any case. */
int is_model_file_name(const char *name);

#endif
