/* cmd_remove.c - the default command, `u2net [OPTIONS] INPUT... -o OUTPUT`:
 * background removal over files, folders and standard input.
 *
 * A run checks the whole command line first (usage errors exit 2 before any
 * work), loads the model once, then takes the inputs one by one: a bad input
 * is reported and the batch goes on. Outputs are written through temporary
 * files, an existing one is replaced only with --overwrite, and an input file
 * is never replaced. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "paths.h"
#include "progress.h"
#include "u2net.h"
#include "util.h"

#define DEFAULT_MODEL BUILTIN_MODEL_NAME
/* A file this much larger than its pixels could be is not an image worth
 * reading: 8 bytes a pixel (16-bit RGBA) plus room for metadata. It stops a
 * run on /dev/zero or a huge stray file before it fills memory. */
#define INPUT_BYTES_PER_PIXEL 8
#define INPUT_METADATA_BYTES (64u << 20)

static const char help_text[] =
    "u2net " U2NET_VERSION_STRING " - background removal with U2Net\n"
    "\n"
    "usage: u2net [OPTIONS] INPUT... -o OUTPUT\n"
    "       u2net tensor ...    the raw network on a tensor (u2net tensor --help)\n"
    "       u2net models        the models -m can name (u2net models --help)\n"
    "       u2net serve         background removal over HTTP, with a web page\n"
    "                           (u2net serve --help)\n"
    "       u2net stream        background removal on frames from a pipe (video)\n"
    "                           (u2net stream --help)\n"
    "       u2net --help | --version\n"
    "\n"
    "INPUT is an image file (JPEG, PNG, BMP, TGA, GIF or binary PNM, whatever its\n"
    "name), a folder (its .jpg .jpeg .png .bmp .tga .gif .pnm .ppm .pgm files,\n"
    "any case, hidden ones left out, in name order), or - for standard input.\n"
    "\n"
    "Output:\n"
    "  -o, --output OUT     a file (one input file, one type); a folder (created if\n"
    "                       missing; needed for several inputs, a folder input or\n"
    "                       several types; chosen when OUT ends in / or is a\n"
    "                       folder); or - for standard output (one input, one type).\n"
    "                       A file's format is its extension: .png, .jpg/.jpeg (not\n"
    "                       for rgba, nor crop of an image with alpha), .json (bbox).\n"
    "                       In a folder, outputs are STEM_TYPE.png (bbox:\n"
    "                       STEM_TYPE.json) below the sub-folder of a recursed input;\n"
    "                       standard input's STEM is \"stdin\".\n"
    "  -t, --type T[,T...]  what to write; repeatable (default rgba):\n"
    "                         prob       soft probability map, grey\n"
    "                         mask       binary mask, grey 0/255\n"
    "                         rgba       the subject on a transparent background\n"
    "                         rgb        the subject on black\n"
    "                         composite  the subject over --background\n"
    "                         crop       the input cut to the subject (+ --padding)\n"
    "                         bbox       JSON: bounding box, area, mean probability\n"
    "                         highlight  the subject kept, the rest per --highlight\n"
    "  --format png|jpg     folder and standard output: jpg writes the types without\n"
    "                       alpha as JPEG (rgba, and crop of an image with alpha,\n"
    "                       stay PNG); default png\n"
    "  --jpeg-quality Q     1..100 (default 95)\n"
    "  --overwrite          replace existing outputs (an input file never is)\n"
    "  --skip-existing      keep existing outputs; an input whose outputs all exist\n"
    "                       is skipped\n"
    "  -r, --recursive      walk the sub-folders of folder inputs (links to folders\n"
    "                       are not followed)\n"
    "\n"
    "Model:\n"
    "  -m, --model NAME|PATH  a model file (a value with '/' or ending in .u2nc or\n"
    "                       .onnx): a u2net.c model (tools/convert.py) or an ONNX\n"
    "                       export of U2Net, U2NetP, u2net_human_seg, silueta or\n"
    "                       ISNet (rembg's files); or a NAME: " BUILTIN_MODEL_NAME " is built in,\n"
    "                       others are NAME.u2nc or NAME.onnx in $U2NET_WEIGHTS\n"
    "                       (folders separated by ':'), weights/ beside the\n"
    "                       program's folder, ../share/u2net from it (an installed\n"
    "                       program), $U2NET_HOME (rembg's; default ~/.u2net), then\n"
    "                       rembg's own ~/.rembg/models/NAME/.\n"
    "                       Default " DEFAULT_MODEL "; `u2net models` lists them all\n"
    "  --size N | WxH       network input size, 1..8192 a side (default the model's:\n"
    "                       320x320 for the U2Net models, which were trained at that\n"
    "                       size and lose detail at larger ones; 1024x1024 for\n"
    "                       ISNet, the model for large inputs)\n"
    "  --mean R,G,B --std R,G,B  the normalisation (v / scale - mean) / std, for a\n"
    "                       model retrained with other statistics (default the\n"
    "                       model's: ImageNet's for U2Net, 0.5 and 1 for ISNet)\n"
    "  --resize bilinear|lanczos  the resize filter to the network (default bilinear)\n"
    "  --threads N          CPU threads, 1..1024 (default all cores)\n"
    "  --device cpu|cuda    where the network runs (default cpu; cuda needs a build\n"
    "                       with make CUDA=1 and an NVIDIA GPU)\n"
    "\n"
    "Mask and alpha:\n"
    "  --threshold T        the mask is probability >= T, 0..1 (default 0.5)\n"
    "  --refine             trimap refinement of the alpha\n"
    "  --fg-threshold N     refinement: alpha 255 at and above N, 0..255 (default\n"
    "                       240; implies --refine); with --alpha-matting: the\n"
    "                       trimap's foreground is above N (default 240)\n"
    "  --bg-threshold N     refinement: alpha 0 at and below N, 0..255 (default 15;\n"
    "                       implies --refine); below --fg-threshold; with\n"
    "                       --alpha-matting: the trimap's background is below N\n"
    "                       (default 10), not above --fg-threshold\n"
    "  --guided             clean edges: guided filter of the map with the photo as\n"
    "                       guide, edges follow the photo's (fast)\n"
    "  --guided-radius PX   its window radius, 1..1000 (default 4 network pixels at\n"
    "                       the photo's scale); implies --guided\n"
    "  --guided-eps E       its regularisation, 1e-8..1 (default 0.0001; smaller\n"
    "                       follows the photo's edges more closely); implies --guided\n"
    "  --alpha-matting      clean edges: closed-form alpha matting of the trimap's\n"
    "                       unknown band, as rembg's -a (slower; hair and fur)\n"
    "  --erode-size PX      the trimap's regions eroded by a PX square, 0..1000\n"
    "                       (default 10); implies --alpha-matting\n"
    "  --foreground estimate|original  the cutouts' colours at soft edges: estimated\n"
    "                       without the old background (default with --guided or\n"
    "                       --alpha-matting) or the photo's own (default otherwise)\n"
    "  --morph open|close|open-close  clean up the alpha and the mask\n"
    "  --morph-radius R     its structuring element, 1..255 (default 1; with --morph)\n"
    "  --largest-component  keep only the largest connected subject\n"
    "  --feather PX         soften the alpha edge by PX pixels, 0..1000 (default 0)\n"
    "  --alpha soft|mask    the cutouts' alpha: the soft map (default) or the mask\n"
    "\n"
    "Rendering:\n"
    "  --background C|IMAGE  composite over a colour, #RRGGBB or #RGB (default\n"
    "                       #ffffff), or over an image, scaled to cover and centred\n"
    "  --padding PX         crop: pixels added around the box, 0..65535 (default 0)\n"
    "  --highlight dim|gray|blur  what highlight does to the background (default dim)\n"
    "\n"
    "Limits and messages:\n"
    "  --max-pixels N       refuse images of more than N pixels (default 100000000)\n"
    "  -q, --quiet          no progress bar and no summary; errors are still printed\n"
    "  -v, --verbose        a line per input with its time\n"
    "  -h, --help           this text\n"
    "  --version            the version\n"
    "  --                   what follows is INPUTs, even if it starts with -\n"
    "\n"
    "A progress bar is drawn on stderr when it is a terminal. A bad input is\n"
    "reported as \"u2net: PATH: problem\" and the others go on; with several inputs\n"
    "or any failure the run ends with \"done N, failed M, skipped K\". Ctrl-C\n"
    "(SIGINT) or SIGTERM stops the run between two steps of an input: outputs are\n"
    "whole or not written, and --skip-existing resumes it. Exit status: 0 when\n"
    "every input was done or skipped, 1 when some failed, 2 for a usage error,\n"
    "128 + the signal's number when stopped (130 for Ctrl-C).\n"
    "\n"
    "Examples:\n"
    "  u2net photo.jpg -o cutout.png\n"
    "  u2net photo.jpg -o mask.png -t mask --threshold 0.4 --morph open\n"
    "  u2net portrait.jpg -o cutout.png --alpha-matting\n"
    "  u2net -r photos/ -o cutouts/ -t rgba,mask,bbox\n"
    "  u2net a.jpg b.jpg -o out/ -t composite --background '#0f0' --format jpg\n"
    "  u2net shot.png -o subject.png -t crop --padding 16\n"
    "  u2net photo.jpg -o - -t bbox\n"
    "  cat photo.jpg | u2net - -o - -t mask > mask.png\n"
    "  U2NET_WEIGHTS=~/models u2net -m u2net photo.jpg -o cutout.png\n"
    "  u2net -m isnet-general-use photo.jpg -o cutout.png   # rembg's ~/.u2net file\n";

typedef enum { DEST_FILE, DEST_FOLDER, DEST_STDOUT } dest_kind;

/* One output of one input. */
typedef struct {
    u2net_output_type type;
    char *path;    /* "-" for standard output */
    int jpeg;      /* an image written as JPEG (else PNG) */
    int keep;      /* exists and --skip-existing: left alone */
} planned_output;

/* The state of a run. */
typedef struct {
    options opt;
    dest_kind dest;
    u2net_model *model;
    u2net_ctx *ctx;
    u2net_image background;
    int has_background_id;
    struct stat background_st;
    input_list inputs;
    file_id_set input_ids;   /* every input file: never an output */
    file_id_set folders;     /* folders walked */
    claim_table claims;      /* outputs of this run so far */
    progress bar;
    size_t done, failed, skipped;
    int threads;             /* the context's, noted when fewer than asked */
} run_state;

/* Prints one line on stderr ("u2net: " first for a problem) without
 * breaking the progress bar. */
static void say(run_state *r, int problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(run_state *r, int problem, const char *fmt, ...)
{
    progress_clear(&r->bar);
    va_list ap;
    va_start(ap, fmt);
    vprint_line(problem ? "u2net: " : "", fmt, ap);
    va_end(ap);
    progress_redraw(&r->bar);
}

/* ---- before the inputs ---- */

/* check_command_line's result for --help and --version: the run is over. */
enum { DONE_EARLY = -1 };

/* Parses the command line into r->opt and checks what parsing cannot see;
 * prints --help and --version. Returns 0 to go on, DONE_EARLY, or the exit
 * status after saying what is wrong. */
static int check_command_line(run_state *r, int argc, char **argv)
{
    switch (options_parse(argc, argv, &r->opt)) {
    case PARSE_RUN:
        break;
    case PARSE_HELP:
        fputs(help_text, stdout);
        return DONE_EARLY;
    case PARSE_VERSION:
        puts("u2net " U2NET_VERSION_STRING);
        return DONE_EARLY;
    case PARSE_USAGE_ERROR:
        print_error("%s", r->opt.error);
        return 2;
    case PARSE_NO_MEMORY:
        print_error("out of memory");
        return 1;
    }
    for (size_t i = 0; i < r->opt.n_inputs; i++)
        if (!strcmp(r->opt.inputs[i], "-") && isatty(STDIN_FILENO)) {
            print_error("-: standard input is a terminal; pipe an image in");
            return 2;
        }
    return 0;
}

/* Decides where outputs go (see --help); returns 0 or 2 for a usage error. */
static int choose_destination(run_state *r)
{
    const options *o = &r->opt;
    int folder_input = 0;
    for (size_t i = 0; i < o->n_inputs; i++) {
        struct stat st;
        folder_input |= strcmp(o->inputs[i], "-") != 0 && stat(o->inputs[i], &st) == 0 &&
                        S_ISDIR(st.st_mode);
    }
    const int several_inputs = o->n_inputs > 1 || folder_input;
    const char *out = o->output;
    if (!strcmp(out, "-")) {
        if (several_inputs || o->n_types > 1) {
            print_error("-o -: standard output takes one input file and one type (given %zu "
                    "input%s%s, %d type%s)", o->n_inputs, o->n_inputs == 1 ? "" : "s",
                    folder_input ? " with a folder" : "", o->n_types, o->n_types == 1 ? "" : "s");
            return 2;
        }
        if (o->types[0] != U2NET_OUT_BBOX && isatty(STDOUT_FILENO)) {
            print_error("-o -: standard output is a terminal; redirect it to a file or a pipe");
            return 2;
        }
        r->dest = DEST_STDOUT;
        return 0;
    }
    struct stat st;
    const size_t n = strlen(out);
    if (out[n - 1] == '/' || (stat(out, &st) == 0 && S_ISDIR(st.st_mode))) {
        r->dest = DEST_FOLDER;
        return 0;
    }
    const char *ext = path_extension(out);
    const int is_json = str_eq_ci(ext, "json");
    const int is_jpeg = str_eq_ci(ext, "jpg") || str_eq_ci(ext, "jpeg");
    const int is_png = str_eq_ci(ext, "png");
    if (!is_json && !is_jpeg && !is_png) {
        if (several_inputs || o->n_types > 1) {
            r->dest = DEST_FOLDER;
            return 0;
        }
        print_error("-o %s: unknown output extension '%s' (.png, .jpg or .jpeg; .json for -t "
                "bbox; end the path with / for a folder)", out, ext);
        return 2;
    }
    if (several_inputs || o->n_types > 1) {
        print_error("-o %s: a file output takes one input file and one type (given %zu input%s%s, "
                "%d type%s); give a folder, e.g. -o out/", out, o->n_inputs,
                o->n_inputs == 1 ? "" : "s", folder_input ? " with a folder" : "", o->n_types,
                o->n_types == 1 ? "" : "s");
        return 2;
    }
    const u2net_output_type t = o->types[0];
    if (t == U2NET_OUT_BBOX && !is_json) {
        print_error("-o %s: -t bbox writes JSON; name the output .json", out);
        return 2;
    }
    if (t != U2NET_OUT_BBOX && is_json) {
        print_error("-o %s: .json is for -t bbox; -t %s writes an image (.png, .jpg or .jpeg)", out,
                u2net_output_name(t));
        return 2;
    }
    if (t == U2NET_OUT_RGBA && is_jpeg) {
        print_error("-o %s: JPEG cannot hold alpha (-t rgba); use .png", out);
        return 2;
    }
    r->dest = DEST_FILE;
    return 0;
}

/* Loads --background IMAGE; returns 0 or 2 for a usage error. */
static int load_background(run_state *r)
{
    const char *path = r->opt.background_image;
    if (!path)
        return 0;
    u2net_error err;
    if (u2net_image_load(path, r->opt.max_pixels, &r->background, &err) != 0) {
        print_error("--background %s: %s", path, err.msg);
        return 2;
    }
    r->opt.render.background = &r->background;
    r->has_background_id = stat(path, &r->background_st) == 0;
    return 0;
}

/* Finds, loads and prepares the model; returns 0, or 1 after saying why not. */
static int load_model(run_state *r)
{
    r->model = model_open("", r->opt.model ? r->opt.model : DEFAULT_MODEL);
    if (!r->model)
        return 1;
    u2net_error err;
    u2net_ctx_opts co;
    u2net_ctx_opts_default(&co);
    co.threads = (int)r->opt.threads;
    co.device = r->opt.device;
    r->ctx = u2net_ctx_new_opts(r->model, &co, &err);
    if (!r->ctx)
        return report_context_error(&err);
    r->threads = u2net_ctx_threads(r->ctx);
    if (r->opt.threads > r->threads && r->threads > 0 && !r->opt.quiet)
        say(r, 0, "note: --threads %ld: this process may run on %d core%s (its CPU affinity), "
            "so %d thread%s", r->opt.threads, r->threads, r->threads == 1 ? "" : "s", r->threads,
            r->threads == 1 ? "" : "s");
    return 0;
}

/* After a run: a note when the context ran fewer threads than before, which
 * it does when the process cannot start them (a memory limit). */
static void note_fewer_threads(run_state *r)
{
    const int now = u2net_ctx_threads(r->ctx);
    if (now < r->threads && !r->opt.quiet)
        say(r, 0, "note: running %d thread%s, not %d: the process cannot start more "
            "(its memory limits leave no room for their stacks)", now, now == 1 ? "" : "s",
            r->threads);
    r->threads = now;
}

/* Whether the folder holding path is the folder dir (the same file). */
static int in_folder(const char *path, const char *dir)
{
    const char *slash = strrchr(path, '/');
    char *parent = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    struct stat a, b;
    const int same = parent && stat(parent, &a) == 0 && stat(dir, &b) == 0 &&
                     a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    free(parent);
    return same;
}

/* Whether input f is a file this program writes: NAME_TYPE.png or .jpg
 * (TYPE any output type) in the folder its own outputs would go to. */
static int is_own_output(const run_state *r, const input_file *f)
{
    const char *ext = path_extension(f->path);
    if (!str_eq_ci(ext, "png") && !str_eq_ci(ext, "jpg") && !str_eq_ci(ext, "jpeg"))
        return 0;
    const size_t stem = strlen(f->stem);
    int named = 0;
    for (int t = 0; t < U2NET_OUT_COUNT && !named; t++) {
        const char *type = u2net_output_name((u2net_output_type)t);
        const size_t n = strlen(type);
        named = stem > n + 1 && f->stem[stem - n - 1] == '_' && !strcmp(f->stem + stem - n, type);
    }
    if (!named)
        return 0;
    char *dir = output_path(r->opt.output, f->subdir, "", "", "");
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = 0;
    const int mine = slash && in_folder(f->path, dir);
    free(dir);
    return mine;
}

/* Whether path is one of the command line's inputs as given. */
static int named_on_command_line(const run_state *r, const char *path)
{
    for (size_t i = 0; i < r->opt.n_inputs; i++)
        if (!strcmp(r->opt.inputs[i], path))
            return 1;
    return 0;
}

/* Takes the files this program writes out of the inputs found in folders
 * when the output folder is among them (a second run over photos/ with
 * `-o photos/` would cut out the cutouts), with one note naming the first;
 * a file named on the command line stays an input. */
static void drop_own_outputs(run_state *r)
{
    size_t kept = 0, dropped = 0;
    char *first = NULL;
    for (size_t i = 0; i < r->inputs.count; i++) {
        input_file *f = &r->inputs.items[i];
        if (strcmp(f->path, "-") && !named_on_command_line(r, f->path) && is_own_output(r, f)) {
            if (!first)
                first = f->path;
            else
                free(f->path);
            free(f->subdir), free(f->stem);
            dropped++;
        } else {
            r->inputs.items[kept++] = *f;
        }
    }
    r->inputs.count = kept;
    if (dropped && !r->opt.quiet)
        say(r, 0, "note: %zu file%s in the output folder %s %s the name%s of this program's "
            "outputs (%s%s): not taken as input%s", dropped, dropped == 1 ? "" : "s",
            r->opt.output, dropped == 1 ? "has" : "have", dropped == 1 ? "" : "s", first,
            dropped > 1 ? ", ..." : "", dropped == 1 ? "" : "s");
    free(first);
}

/* Finds the inputs; returns 0, or 1 when out of memory. Problems are counted
 * as failed inputs. */
static int find_inputs(run_state *r)
{
    scan_opts so = {r->opt.recursive, 0, 0, 0};
    struct stat st;
    if (r->dest == DEST_FOLDER && stat(r->opt.output, &st) == 0 && S_ISDIR(st.st_mode))
        so.skip_dir = 1, so.skip_dev = st.st_dev, so.skip_ino = st.st_ino;
    for (size_t i = 0; i < r->opt.n_inputs; i++)
        if (inputs_add(&r->inputs, &r->folders, r->opt.inputs[i], &so, &r->failed) != 0)
            goto oom;
    if (r->dest == DEST_FOLDER)
        drop_own_outputs(r);
    for (size_t i = 0; i < r->inputs.count; i++) {
        const input_file *f = &r->inputs.items[i];
        if (f->has_id && file_id_add(&r->input_ids, f->dev, f->ino, f->path) != 0)
            goto oom;
    }
    if (r->has_background_id && file_id_add(&r->input_ids, r->background_st.st_dev,
                                            r->background_st.st_ino, r->opt.background_image) != 0)
        goto oom;
    return 0;
oom:
    print_error("out of memory");
    return 1;
}

/* Creates the output folder; returns 0, or 1 after saying why not. */
static int prepare_folder(run_state *r)
{
    if (r->dest != DEST_FOLDER)
        return 0;
    const char *out = r->opt.output;
    if (make_dirs(out) != 0) {
        print_error("%s: cannot create the output folder: %s", out, strerror(errno));
        return 1;
    }
    if (access(out, W_OK | X_OK) != 0) {
        print_error("%s: the output folder is not writable: %s", out, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- one input ---- */

/* Reads and decodes an input; returns 0, or -1 after reporting it. */
static int read_input(run_state *r, const input_file *in, u2net_image *img)
{
    const size_t limit = r->opt.max_pixels * INPUT_BYTES_PER_PIXEL + INPUT_METADATA_BYTES;
    unsigned char *data = NULL;
    size_t len = 0;
    const int from_stdin = !strcmp(in->path, "-");
    FILE *f = from_stdin ? stdin : fopen(in->path, "rb");
    if (!f) {
        say(r, 1, "%s: cannot open: %s", in->path, strerror(errno));
        return -1;
    }
    errno = 0;
    /* the first bytes are looked at before the rest is read: a device or a
     * large file that is no image is refused at once */
    const int rc = read_stream(f, limit, u2net_image_sniff, &data, &len);
    const int saved = errno;
    if (!from_stdin)
        fclose(f);
    if (rc != 0) {
        if (saved == EFBIG)
            say(r, 1, "%s: too large for an image within --max-pixels %zu", in->path,
                r->opt.max_pixels);
        else if (saved == EILSEQ)
            say(r, 1, "%s: not an image in a format this program reads (JPEG, PNG, BMP, TGA, "
                "GIF, binary PNM): its first bytes are no such file's", in->path);
        else
            say(r, 1, "%s: cannot read: %s", in->path, strerror(saved));
        return -1;
    }
    if (len == 0) {
        say(r, 1, "%s: empty file", in->path);
        free(data);
        return -1;
    }
    u2net_error err;
    const int dec = u2net_image_decode(data, len, r->opt.max_pixels, img, &err);
    const int frames = dec == 0 ? u2net_image_frame_count(data, len) : 1;
    free(data);
    if (dec != 0) {
        say(r, 1, "%s: %s", in->path, err.msg);
        return -1;
    }
    if (frames > 1 && !r->opt.quiet)
        say(r, 0, "note: %s: an animation of %d frames; only the first is used", in->path, frames);
    return 0;
}

static int has_alpha(int channels)
{
    return channels == 2 || channels == 4;
}

/* Whether an output of type t from an image with these channels can be JPEG. */
static int jpeg_possible(u2net_output_type t, int channels)
{
    return t != U2NET_OUT_RGBA && !(t == U2NET_OUT_CROP && has_alpha(channels));
}

/* Names the outputs of one input and checks that they may be written.
 * Returns the number to write (0: all kept), or -1 after reporting why the
 * input cannot go on. */
static int plan_outputs(run_state *r, const input_file *in, const u2net_image *img,
                        planned_output *outs)
{
    const options *o = &r->opt;
    int ok = 1, to_write = 0;
    for (int k = 0; k < o->n_types; k++) {
        planned_output *p = &outs[k];
        const u2net_output_type t = o->types[k];
        p->type = t;
        if (r->dest == DEST_FILE) {
            p->path = strdup(o->output);
            const char *ext = path_extension(o->output);
            p->jpeg = str_eq_ci(ext, "jpg") || str_eq_ci(ext, "jpeg");
        } else {
            p->jpeg = t != U2NET_OUT_BBOX && o->jpeg && jpeg_possible(t, img->channels);
            if (r->dest == DEST_STDOUT)
                p->path = strdup("-");
            else
                p->path = output_path(o->output, in->subdir, in->stem, u2net_output_name(t),
                                      t == U2NET_OUT_BBOX ? "json" : p->jpeg ? "jpg" : "png");
        }
        if (!p->path) {
            say(r, 1, "%s: out of memory", in->path);
            return -1;
        }
        if (p->jpeg && !jpeg_possible(t, img->channels)) {
            say(r, 1, "%s: JPEG cannot hold alpha (-t %s of %s, which has alpha); use .png",
                p->path, u2net_output_name(t), in->path);
            ok = 0;
            continue;
        }
        if (r->dest == DEST_STDOUT) {
            to_write++;
            continue;
        }
        const char *other = claim_find(&r->claims, p->path);
        if (other) {
            say(r, 1, "%s: output %s would also be written from %s; not overwritten", in->path,
                p->path, other);
            ok = 0;
            continue;
        }
        struct stat st;
        if (stat(p->path, &st) == 0) {
            const file_id *input = file_id_find(&r->input_ids, st.st_dev, st.st_ino);
            if (input) {
                say(r, 1, "%s: is the input %s; refusing to write over it", p->path,
                    input->path);
                ok = 0;
            } else if (S_ISDIR(st.st_mode)) {
                say(r, 1, "%s: is a folder", p->path);
                ok = 0;
            } else if (o->skip_existing) {
                p->keep = 1;
            } else if (!o->overwrite) {
                say(r, 1, "%s: exists (use --overwrite)", p->path);
                ok = 0;
            }
        }
        to_write += !p->keep;
    }
    if (!ok)
        return -1;
    /* the names are this input's now, whether written or kept */
    for (int k = 0; k < o->n_types; k++)
        if (r->dest != DEST_STDOUT && claim_add(&r->claims, outs[k].path, in->path) != 0) {
            say(r, 1, "%s: out of memory", in->path);
            return -1;
        }
    return to_write;
}

/* Creates the folder an output goes in; returns 0, or -1 after reporting. */
static int make_output_folder(run_state *r, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir) {
        say(r, 1, "%s: out of memory", path);
        return -1;
    }
    const int rc = make_dirs(dir);
    if (rc != 0)
        say(r, 1, "%s: cannot create its folder %s: %s", path, dir, strerror(errno));
    free(dir);
    return rc;
}

/* Writes bytes to an output: standard output, or a file that replaces an
 * existing one only with --overwrite. Returns 0; 1 when the file appeared
 * meanwhile and --skip-existing keeps it; or -1 after reporting. */
static int put_bytes(run_state *r, const char *path, const void *data, size_t len)
{
    errno = 0;
    if (!strcmp(path, "-")) {
        if (write_stream(stdout, data, len) != 0) {
            say(r, 1, "-: cannot write to standard output: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    if (make_output_folder(r, path) != 0)
        return -1;
    u2net_error err;
    const int rc = u2net_write_file(path, data, len, r->opt.overwrite, &err);
    if (rc == U2NET_EEXIST && r->opt.skip_existing) {
        /* another process wrote it since this one looked: theirs stays */
        if (r->opt.verbose)
            say(r, 0, "%s: written meanwhile by another run; kept", path);
        return 1;
    }
    if (rc != 0) {
        if (rc == U2NET_EEXIST)
            say(r, 1, "%s: exists (use --overwrite)", path);
        else
            say(r, 1, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Renders and writes one output; returns as put_bytes does. */
static int write_output(run_state *r, const input_file *in, const u2net_image *img,
                        const u2net_matte *matte, const planned_output *p)
{
    if (p->type == U2NET_OUT_BBOX) {
        char *json = u2net_bbox_json(matte, in->path);
        if (!json) {
            say(r, 1, "%s: out of memory", p->path);
            return -1;
        }
        const int rc = put_bytes(r, p->path, json, strlen(json));
        free(json);
        return rc;
    }
    u2net_error err;
    u2net_image out = {0};
    if (u2net_render(img, matte, p->type, &r->opt.render, &out, &err) != 0) {
        say(r, 1, "%s: -t %s: %s", in->path, u2net_output_name(p->type), err.msg);
        return -1;
    }
    int rc = -1;
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (p->jpeg && has_alpha(out.channels))
        say(r, 1, "%s: JPEG cannot hold alpha (-t %s); use .png", p->path,
            u2net_output_name(p->type));
    else if (u2net_image_encode(&out, p->jpeg ? U2NET_FORMAT_JPEG : U2NET_FORMAT_PNG,
                                (int)r->opt.jpeg_quality, &bytes, &len, &err) != 0)
        say(r, 1, "%s: %s", p->path, err.msg);
    else
        rc = put_bytes(r, p->path, bytes, len);
    free(bytes);
    u2net_image_free(&out);
    return rc;
}

typedef enum { INPUT_DONE, INPUT_FAILED, INPUT_SKIPPED, INPUT_INTERRUPTED } input_result;

/* The signal (SIGINT or SIGTERM) that asked the run to stop, or 0. It is
 * looked at between the steps of an input, and the network's run in
 * progress is cancelled (u2net_ctx_cancel: it stops within tens of
 * milliseconds), so the run stops with every output either whole under its
 * name or not written, and no temporary file left; a second signal ends
 * the process at once. */
static volatile sig_atomic_t stop_signal;
static u2net_ctx *stop_ctx; /* the context the handler cancels */

static void on_stop_signal(int sig)
{
    stop_signal = sig;
    u2net_ctx_cancel(stop_ctx);
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* reads and writes go on where they were; the handler is used once */
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static input_result process_input(run_state *r, const input_file *in)
{
    const double start = now_seconds();
    const options *o = &r->opt;
    u2net_image img = {0};
    u2net_matte matte = {0};
    int have_matte = 0;
    planned_output outs[U2NET_OUT_COUNT];
    memset(outs, 0, sizeof outs);
    input_result result = INPUT_FAILED;
    if (read_input(r, in, &img) != 0)
        goto done;
    const int to_write = plan_outputs(r, in, &img, outs);
    if (to_write < 0)
        goto done;
    if (to_write == 0) {
        if (o->verbose)
            say(r, 0, "%s: skipped (its outputs exist)", in->path);
        result = INPUT_SKIPPED;
        goto done;
    }
    u2net_error err;
    if (u2net_matte_image(r->ctx, &img, &o->mask, &matte, &err) != 0) {
        if (err.code == U2NET_ECANCELED)
            result = INPUT_INTERRUPTED;
        else
            say(r, 1, "%s: %s", in->path, err.msg);
        goto done;
    }
    note_fewer_threads(r);
    have_matte = 1;
    if (stop_signal) {
        result = INPUT_INTERRUPTED;
        goto done;
    }
    int ok = 1, written = 0;
    for (int k = 0; k < o->n_types; k++) {
        if (outs[k].keep)
            continue;
        const int w = write_output(r, in, &img, &matte, &outs[k]);
        ok &= w >= 0;
        written += w == 0;
    }
    if (!ok)
        goto done;
    result = written ? INPUT_DONE : INPUT_SKIPPED;
    if (o->verbose) {
        size_t n = 0;
        char list[1024] = "";
        for (int k = 0; k < o->n_types; k++) {
            if (outs[k].keep)
                continue;
            const char *shown = strcmp(outs[k].path, "-") ? outs[k].path : "standard output";
            const int w = snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", shown);
            if (w < 0 || (size_t)w >= sizeof list - n)
                break;
            n += (size_t)w;
        }
        say(r, 0, "%s: %.2f s -> %s", in->path, now_seconds() - start, list);
    }
done:
    if (have_matte)
        u2net_matte_free(&matte);
    u2net_image_free(&img);
    for (int k = 0; k < o->n_types; k++)
        free(outs[k].path);
    return result;
}

/* ---- the command ---- */

static void run_free(run_state *r)
{
    inputs_free(&r->inputs);
    file_id_set_free(&r->input_ids);
    file_id_set_free(&r->folders);
    claim_table_free(&r->claims);
    u2net_ctx_free(r->ctx);
    u2net_model_free(r->model);
    if (r->opt.render.background)
        u2net_image_free(&r->background);
    options_free(&r->opt);
}

int cmd_remove(int argc, char **argv)
{
    run_state r;
    memset(&r, 0, sizeof r);
    int rc = check_command_line(&r, argc, argv);
    if (rc == 0)
        rc = choose_destination(&r);
    if (rc == 0)
        rc = load_background(&r);
    if (rc == 0)
        rc = load_model(&r);
    if (rc == 0)
        rc = find_inputs(&r);
    if (rc == 0)
        rc = prepare_folder(&r);
    if (rc != 0) {
        run_free(&r);
        return rc == DONE_EARLY ? 0 : rc;
    }
    /* inputs that failed while they were being found count as finished */
    const size_t total = r.inputs.count + r.failed;
    progress_start(&r.bar, total, r.failed, !r.opt.quiet && isatty(STDERR_FILENO));
    stop_ctx = r.ctx;
    catch_stop_signals();
    size_t i = 0;
    for (; i < r.inputs.count && !stop_signal; i++) {
        const input_result res = process_input(&r, &r.inputs.items[i]);
        if (res == INPUT_INTERRUPTED)
            break;
        if (res == INPUT_DONE)
            r.done++;
        else if (res == INPUT_SKIPPED)
            r.skipped++;
        else
            r.failed++;
        progress_step(&r.bar);
    }
    progress_end(&r.bar);
    const int sig = stop_signal;
    if (sig)
        print_error("interrupted by %s: %zu input%s not processed (--skip-existing resumes)",
                sig == SIGINT ? "SIGINT" : "SIGTERM", r.inputs.count - i,
                r.inputs.count - i == 1 ? "" : "s");
    if (!r.opt.quiet && (total > 1 || r.failed > 0 || sig))
        fprintf(stderr, "done %zu, failed %zu, skipped %zu\n", r.done, r.failed, r.skipped);
    /* an interrupted run exits as the shell reports a signal: 128 + its number */
    rc = sig ? 128 + sig : r.failed > 0 ? 1 : 0;
    run_free(&r);
    return rc;
}
