/* cmd_remove.c - the default command, `u2net [OPTIONS] INPUT... -o OUTPUT`:
 * background removal over files, folders and standard input.
 *
 * A run checks the whole command line first (usage errors exit 2 before any
 * work), loads the model once, then takes the inputs one by one: a bad input
 * is reported and the batch goes on. Outputs are written through temporary
 * files, an existing one is replaced only with --overwrite, and an input file
 * is never replaced. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "paths.h"
#include "progress.h"
#include "u2net.h"
#include "util.h"

#define DEFAULT_MODEL "u2netp"
#define MAX_THREADS 1024
#define MAX_MORPH_RADIUS 255
#define MAX_FEATHER 1000.0
#define MAX_PADDING 65535
#define MAX_MAX_PIXELS 1000000000000L
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
    "  -m, --model NAME|PATH  a model file (a value with '/' or ending in .u2nc), or\n"
    "                       NAME.u2nc looked up in $U2NET_WEIGHTS (folders separated\n"
    "                       by ':'), then in weights/ beside the program's folder\n"
    "                       and in ../share/u2net from it (an installed program);\n"
    "                       default " DEFAULT_MODEL ". Make one with `make weights` or\n"
    "                       tools/convert.py.\n"
    "  --size N | WxH       network input size, 1..8192 a side (default the model's,\n"
    "                       320x320)\n"
    "  --resize bilinear|lanczos  the resize filter to the network (default bilinear)\n"
    "  --threads N          CPU threads, 1..1024 (default all cores)\n"
    "  --device cpu|cuda    where the network runs (this build: cpu)\n"
    "\n"
    "Mask and alpha:\n"
    "  --threshold T        the mask is probability >= T, 0..1 (default 0.5)\n"
    "  --refine             trimap refinement of the alpha\n"
    "  --fg-threshold N     refinement: alpha 255 at and above N, 0..255 (default\n"
    "                       240; implies --refine)\n"
    "  --bg-threshold N     refinement: alpha 0 at and below N, 0..255 (default 15;\n"
    "                       implies --refine); below --fg-threshold\n"
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
    "or any failure the run ends with \"done N, failed M, skipped K\". Exit status:\n"
    "0 when every input was done or skipped, 1 when some failed, 2 for a usage\n"
    "error.\n"
    "\n"
    "Examples:\n"
    "  u2net photo.jpg -o cutout.png\n"
    "  u2net photo.jpg -o mask.png -t mask --threshold 0.4 --morph open\n"
    "  u2net -r photos/ -o cutouts/ -t rgba,mask,bbox\n"
    "  u2net a.jpg b.jpg -o out/ -t composite --background '#0f0' --format jpg\n"
    "  u2net shot.png -o subject.png -t crop --padding 16\n"
    "  u2net photo.jpg -o - -t bbox\n"
    "  cat photo.jpg | u2net - -o - -t mask > mask.png\n"
    "  U2NET_WEIGHTS=~/models u2net -m u2net photo.jpg -o cutout.png\n";

typedef enum { DEST_FILE, DEST_FOLDER, DEST_STDOUT } dest_kind;

/* What the command line asked for. */
typedef struct {
    const char **inputs;
    size_t n_inputs;
    const char *output;
    u2net_output_type types[U2NET_OUT_COUNT];
    int n_types;
    const char *model;
    long threads;  /* 0: all cores */
    int recursive, quiet, verbose, overwrite, skip_existing;
    int jpeg;      /* --format jpg */
    long jpeg_quality;  /* 0: the library's default */
    size_t max_pixels;
    const char *background_image;
    u2net_mask_opts mask;
    u2net_render_opts render;
} options;

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
} run_state;

/* Prints one line on stderr ("u2net: " first for a problem) without
 * breaking the progress bar. */
static void say(run_state *r, int problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(run_state *r, int problem, const char *fmt, ...)
{
    progress_clear(&r->bar);
    if (problem)
        fputs("u2net: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    progress_redraw(&r->bar);
}

/* ---- command line ---- */

static int is_opt(const char *name, const char *short_name, const char *long_name)
{
    return (short_name && !strcmp(name, short_name)) || !strcmp(name, long_name);
}

/* The type names, for error messages. */
static const char *const type_list = "prob, mask, rgba, rgb, composite, crop, bbox, highlight";

static int add_types(options *o, const char *opt, const char *value)
{
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        const size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        int t = -1;
        if (n > 0 && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = '\0';
            t = u2net_output_from_name(name);
        }
        if (t < 0 || t >= U2NET_OUT_COUNT) {
            die_msg("%s: unknown type '%.*s' in '%s' (types: %s)", opt, (int)(n < 64 ? n : 64), p,
                    value, type_list);
            return -1;
        }
        int seen = 0;
        for (int i = 0; i < o->n_types; i++)
            seen |= o->types[i] == (u2net_output_type)t;
        if (!seen)
            o->types[o->n_types++] = (u2net_output_type)t;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int parse_size(const char *opt, const char *value, u2net_mask_opts *m)
{
    long w, h;
    const char *x = strchr(value, 'x');
    int ok;
    if (!x) {
        ok = parse_int(value, 1, U2NET_MAX_SIDE, &w) == 0;
        h = w;
    } else {
        char first[32];
        const size_t n = (size_t)(x - value);
        ok = n > 0 && n < sizeof first;
        if (ok) {
            memcpy(first, value, n);
            first[n] = '\0';
            ok = parse_int(first, 1, U2NET_MAX_SIDE, &w) == 0 &&
                 parse_int(x + 1, 1, U2NET_MAX_SIDE, &h) == 0;
        }
    }
    if (!ok) {
        die_msg("%s: '%s' is not a size (N or WxH, 1..%d a side)", opt, value, U2NET_MAX_SIDE);
        return -1;
    }
    if (w * h > U2NET_MAX_PIXELS) {
        die_msg("%s: '%s' is more than %d pixels", opt, value, U2NET_MAX_PIXELS);
        return -1;
    }
    m->net_width = (int)w, m->net_height = (int)h;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* #RRGGBB or #RGB into rgb; -1 if it is neither. */
static int parse_colour(const char *s, unsigned char rgb[3])
{
    const size_t n = strlen(s);
    if (s[0] != '#' || (n != 7 && n != 4))
        return -1;
    for (size_t i = 1; i < n; i++)
        if (hex_digit(s[i]) < 0)
            return -1;
    for (int c = 0; c < 3; c++)
        rgb[c] = n == 7 ? (unsigned char)(hex_digit(s[1 + 2 * c]) * 16 + hex_digit(s[2 + 2 * c]))
                        : (unsigned char)(hex_digit(s[1 + c]) * 17);
    return 0;
}

/* A keyword value: its index in names, or -1 after saying what is allowed. */
static int parse_choice(const char *opt, const char *value, const char *const *names, int n,
                        const char *allowed)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(value, names[i]))
            return i;
    die_msg("%s: unknown value '%s' (%s)", opt, value, allowed);
    return -1;
}

static int bad_number(const char *opt, const char *value, const char *what)
{
    die_msg("%s: '%s' is not %s", opt, value, what);
    return -1;
}

/* Outcome of parsing: go on, stop with status 0 (--help, --version), or a
 * usage error. */
enum { PARSE_RUN = -1 };

/* Parses argv into o; returns PARSE_RUN, or the exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    long fg = -1, bg = -1;
    int morph_radius_given = 0, refine = 0;
    o->inputs = malloc((size_t)argc * sizeof *o->inputs);
    if (!o->inputs) {
        die_msg("out of memory");
        return 1;
    }
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || !strcmp(a, "-")) {
            o->inputs[o->n_inputs++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        /* --name=value: split off the value */
        char name[40];
        const char *inline_value = NULL;
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        if (eq) {
            const size_t n = (size_t)(eq - a);
            if (n >= sizeof name) {
                die_msg("unknown option '%s' (see u2net --help)", a);
                return 2;
            }
            memcpy(name, a, n);
            name[n] = '\0';
            inline_value = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", strlen(a) < sizeof name ? a : "-?");
        }
        /* flags */
        int *flag = NULL;
        if (is_opt(name, "-h", "--help") || !strcmp(name, "--version")) {
            if (inline_value) {
                die_msg("%s takes no value (given '%s')", name, inline_value);
                return 2;
            }
            if (!strcmp(name, "--version"))
                puts("u2net " U2NET_VERSION_STRING);
            else
                fputs(help_text, stdout);
            return 0;
        }
        if (is_opt(name, "-r", "--recursive"))
            flag = &o->recursive;
        else if (is_opt(name, "-q", "--quiet"))
            flag = &o->quiet;
        else if (is_opt(name, "-v", "--verbose"))
            flag = &o->verbose;
        else if (!strcmp(name, "--overwrite"))
            flag = &o->overwrite;
        else if (!strcmp(name, "--skip-existing"))
            flag = &o->skip_existing;
        else if (!strcmp(name, "--refine"))
            flag = &refine;
        else if (!strcmp(name, "--largest-component"))
            flag = &o->mask.largest_component;
        if (flag) {
            if (inline_value) {
                die_msg("%s takes no value (given '%s')", name, inline_value);
                return 2;
            }
            *flag = 1;
            continue;
        }
        /* options with a value */
        static const char *const with_value[] = {
            "-o", "--output", "-t", "--type", "-m", "--model", "--size", "--resize",
            "--threshold", "--fg-threshold", "--bg-threshold", "--morph", "--morph-radius",
            "--feather", "--alpha", "--background", "--padding", "--highlight", "--format",
            "--max-pixels", "--jpeg-quality", "--threads", "--device"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= !strcmp(name, with_value[k]);
        if (!known) {
            die_msg("unknown option '%s' (see u2net --help)", a);
            return 2;
        }
        const char *v = inline_value;
        if (!v) {
            if (i + 1 >= argc) {
                die_msg("%s: missing value (see u2net --help)", name);
                return 2;
            }
            v = argv[++i];
        }
        long n = 0;
        double f = 0;
        int bad = 0;
        if (is_opt(name, "-o", "--output")) {
            if (o->output) {
                die_msg("%s: given twice ('%s' and '%s')", name, o->output, v);
                return 2;
            }
            if (!*v) {
                die_msg("%s: empty path", name);
                return 2;
            }
            o->output = v;
        } else if (is_opt(name, "-t", "--type")) {
            bad = add_types(o, name, v);
        } else if (is_opt(name, "-m", "--model")) {
            if (!*v) {
                die_msg("%s: empty model name", name);
                return 2;
            }
            o->model = v;
        } else if (!strcmp(name, "--size")) {
            bad = parse_size(name, v, &o->mask);
        } else if (!strcmp(name, "--resize")) {
            static const char *const names[] = {"bilinear", "lanczos"};
            const int c = parse_choice(name, v, names, 2, "bilinear or lanczos");
            bad = c < 0;
            o->mask.resize = c == 1 ? U2NET_RESIZE_LANCZOS : U2NET_RESIZE_BILINEAR;
        } else if (!strcmp(name, "--threshold")) {
            if (parse_float(v, 0, 1, &f) != 0)
                bad = bad_number(name, v, "a threshold (0..1)");
            o->mask.threshold = (float)f;
        } else if (!strcmp(name, "--fg-threshold")) {
            if (parse_int(v, 0, 255, &fg) != 0)
                bad = bad_number(name, v, "a level (0..255)");
        } else if (!strcmp(name, "--bg-threshold")) {
            if (parse_int(v, 0, 255, &bg) != 0)
                bad = bad_number(name, v, "a level (0..255)");
        } else if (!strcmp(name, "--morph")) {
            static const char *const names[] = {"open", "close", "open-close"};
            static const u2net_morph values[] = {U2NET_MORPH_OPEN, U2NET_MORPH_CLOSE,
                                                 U2NET_MORPH_OPEN_CLOSE};
            const int c = parse_choice(name, v, names, 3, "open, close or open-close");
            bad = c < 0;
            if (!bad)
                o->mask.morph = values[c];
        } else if (!strcmp(name, "--morph-radius")) {
            if (parse_int(v, 1, MAX_MORPH_RADIUS, &n) != 0)
                bad = bad_number(name, v, "a radius (1..255)");
            o->mask.morph_radius = (int)n;
            morph_radius_given = 1;
        } else if (!strcmp(name, "--feather")) {
            if (parse_float(v, 0, MAX_FEATHER, &f) != 0)
                bad = bad_number(name, v, "a width in pixels (0..1000)");
            o->mask.feather = (float)f;
        } else if (!strcmp(name, "--alpha")) {
            static const char *const names[] = {"soft", "mask"};
            const int c = parse_choice(name, v, names, 2, "soft or mask");
            bad = c < 0;
            o->mask.alpha_from_mask = c == 1;
        } else if (!strcmp(name, "--background")) {
            if (v[0] == '#') {
                if (parse_colour(v, o->render.background_rgb) != 0) {
                    die_msg("%s: '%s' is not a colour (#RRGGBB or #RGB)", name, v);
                    bad = 1;
                }
                o->background_image = NULL;
            } else if (!*v) {
                die_msg("%s: empty value (a colour #RRGGBB or #RGB, or an image)", name);
                bad = 1;
            } else {
                o->background_image = v;
            }
        } else if (!strcmp(name, "--padding")) {
            if (parse_int(v, 0, MAX_PADDING, &n) != 0)
                bad = bad_number(name, v, "a padding in pixels (0..65535)");
            o->render.padding = (int)n;
        } else if (!strcmp(name, "--highlight")) {
            static const char *const names[] = {"dim", "gray", "grey", "blur"};
            static const u2net_highlight values[] = {U2NET_HIGHLIGHT_DIM, U2NET_HIGHLIGHT_GRAY,
                                                     U2NET_HIGHLIGHT_GRAY, U2NET_HIGHLIGHT_BLUR};
            const int c = parse_choice(name, v, names, 4, "dim, gray or blur");
            bad = c < 0;
            if (!bad)
                o->render.highlight = values[c];
        } else if (!strcmp(name, "--format")) {
            static const char *const names[] = {"png", "jpg", "jpeg"};
            const int c = parse_choice(name, v, names, 3, "png or jpg");
            bad = c < 0;
            o->jpeg = c > 0;
        } else if (!strcmp(name, "--max-pixels")) {
            if (parse_int(v, 1, MAX_MAX_PIXELS, &n) != 0)
                bad = bad_number(name, v, "a pixel count (1..1000000000000)");
            o->max_pixels = (size_t)n;
        } else if (!strcmp(name, "--jpeg-quality")) {
            if (parse_int(v, 1, 100, &n) != 0)
                bad = bad_number(name, v, "a JPEG quality (1..100)");
            o->jpeg_quality = n;
        } else if (!strcmp(name, "--threads")) {
            if (parse_int(v, 1, MAX_THREADS, &n) != 0)
                bad = bad_number(name, v, "a thread count (1..1024)");
            o->threads = n;
        } else if (!strcmp(name, "--device")) {
            if (!strcmp(v, "cuda")) {
                die_msg("%s cuda: this build has no CUDA support", name);
                return 2;
            }
            if (strcmp(v, "cpu") != 0) {
                die_msg("%s: unknown device '%s' (cpu or cuda)", name, v);
                return 2;
            }
        }
        if (bad)
            return 2;
    }
    if (fg >= 0 || bg >= 0)
        refine = 1;
    o->mask.refine = refine;
    if (fg >= 0)
        o->mask.fg_threshold = (int)fg;
    if (bg >= 0)
        o->mask.bg_threshold = (int)bg;
    if (refine && o->mask.bg_threshold >= o->mask.fg_threshold) {
        die_msg("--bg-threshold %d must be below --fg-threshold %d", o->mask.bg_threshold,
                o->mask.fg_threshold);
        return 2;
    }
    if (morph_radius_given && o->mask.morph == U2NET_MORPH_NONE) {
        die_msg("--morph-radius: needs --morph open, close or open-close");
        return 2;
    }
    if (o->quiet && o->verbose) {
        die_msg("-q and -v contradict each other: give one");
        return 2;
    }
    if (o->overwrite && o->skip_existing) {
        die_msg("--overwrite and --skip-existing contradict each other: give one");
        return 2;
    }
    if (o->n_types == 0)
        o->types[o->n_types++] = U2NET_OUT_RGBA;
    if (o->n_inputs == 0) {
        die_msg("no INPUT given (see u2net --help)");
        return 2;
    }
    if (!o->output) {
        die_msg("no output given: -o FILE, -o FOLDER/ or -o - (see u2net --help)");
        return 2;
    }
    int stdin_count = 0;
    for (size_t i = 0; i < o->n_inputs; i++)
        stdin_count += !strcmp(o->inputs[i], "-");
    if (stdin_count > 1) {
        die_msg("-: standard input can be an INPUT only once");
        return 2;
    }
    if (stdin_count && isatty(STDIN_FILENO)) {
        die_msg("-: standard input is a terminal; pipe an image in");
        return 2;
    }
    return PARSE_RUN;
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
            die_msg("-o -: standard output takes one input file and one type (given %zu "
                    "input%s%s, %d type%s)", o->n_inputs, o->n_inputs == 1 ? "" : "s",
                    folder_input ? " with a folder" : "", o->n_types, o->n_types == 1 ? "" : "s");
            return 2;
        }
        if (o->types[0] != U2NET_OUT_BBOX && isatty(STDOUT_FILENO)) {
            die_msg("-o -: standard output is a terminal; redirect it to a file or a pipe");
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
        die_msg("-o %s: unknown output extension '%s' (.png, .jpg or .jpeg; .json for -t "
                "bbox; end the path with / for a folder)", out, ext);
        return 2;
    }
    if (several_inputs || o->n_types > 1) {
        die_msg("-o %s: a file output takes one input file and one type (given %zu input%s%s, "
                "%d type%s); give a folder, e.g. -o out/", out, o->n_inputs,
                o->n_inputs == 1 ? "" : "s", folder_input ? " with a folder" : "", o->n_types,
                o->n_types == 1 ? "" : "s");
        return 2;
    }
    const u2net_output_type t = o->types[0];
    if (t == U2NET_OUT_BBOX && !is_json) {
        die_msg("-o %s: -t bbox writes JSON; name the output .json", out);
        return 2;
    }
    if (t != U2NET_OUT_BBOX && is_json) {
        die_msg("-o %s: .json is for -t bbox; -t %s writes an image (.png, .jpg or .jpeg)", out,
                u2net_output_name(t));
        return 2;
    }
    if (t == U2NET_OUT_RGBA && is_jpeg) {
        die_msg("-o %s: JPEG cannot hold alpha (-t rgba); use .png", out);
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
        die_msg("--background %s: %s", path, err.msg);
        return 2;
    }
    r->opt.render.background = &r->background;
    r->has_background_id = stat(path, &r->background_st) == 0;
    return 0;
}

/* Finds, loads and prepares the model; returns 0, or 1 after saying why not. */
static int load_model(run_state *r)
{
    const char *arg = r->opt.model ? r->opt.model : DEFAULT_MODEL;
    char *looked = NULL;
    char *path = model_find(arg, &looked);
    if (!path) {
        die_msg("model '%s' not found: looked for %s.u2nc in %s%s; make it with `make weights` "
                "or tools/convert.py CHECKPOINT -o weights/%s.u2nc, or give -m PATH", arg, arg,
                looked ? looked : "no folder", getenv("U2NET_WEIGHTS") ? "" :
                " ($U2NET_WEIGHTS is not set)", arg);
        free(looked);
        return 1;
    }
    u2net_error err;
    r->model = u2net_model_load(path, &err);
    free(path);
    if (!r->model) {
        die_msg("%s", err.msg);
        return 1;
    }
    r->ctx = u2net_ctx_new(r->model, (int)r->opt.threads, &err);
    if (!r->ctx) {
        die_msg("%s", err.msg);
        return 1;
    }
    return 0;
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
    die_msg("out of memory");
    return 1;
}

/* Creates the output folder; returns 0, or 1 after saying why not. */
static int prepare_folder(run_state *r)
{
    if (r->dest != DEST_FOLDER)
        return 0;
    const char *out = r->opt.output;
    if (make_dirs(out) != 0) {
        die_msg("%s: cannot create the output folder: %s", out, strerror(errno));
        return 1;
    }
    if (access(out, W_OK | X_OK) != 0) {
        die_msg("%s: the output folder is not writable: %s", out, strerror(errno));
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
    const int rc = read_stream(f, limit, &data, &len);
    const int saved = errno;
    if (!from_stdin)
        fclose(f);
    if (rc != 0) {
        if (saved == EFBIG)
            say(r, 1, "%s: too large for an image within --max-pixels %zu", in->path,
                r->opt.max_pixels);
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
    free(data);
    if (dec != 0) {
        say(r, 1, "%s: %s", in->path, err.msg);
        return -1;
    }
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
        say(r, 1, "%s: cannot create folder: %s", dir, strerror(errno));
    free(dir);
    return rc;
}

/* Writes bytes to an output: standard output, or a file that replaces an
 * existing one only with --overwrite. Returns 0, or -1 after reporting. */
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
    if (rc != 0) {
        if (rc == U2NET_EEXIST)
            say(r, 1, "%s: exists (use --overwrite)", path);
        else
            say(r, 1, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Renders and writes one output; returns 0, or -1 after reporting. */
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

typedef enum { INPUT_DONE, INPUT_FAILED, INPUT_SKIPPED } input_result;

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
        say(r, 1, "%s: %s", in->path, err.msg);
        goto done;
    }
    have_matte = 1;
    int ok = 1;
    for (int k = 0; k < o->n_types; k++)
        if (!outs[k].keep && write_output(r, in, &img, &matte, &outs[k]) != 0)
            ok = 0;
    if (!ok)
        goto done;
    result = INPUT_DONE;
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
    free(r->opt.inputs);
}

int cmd_remove(int argc, char **argv)
{
    run_state r;
    memset(&r, 0, sizeof r);
    u2net_mask_opts_default(&r.opt.mask);
    u2net_render_opts_default(&r.opt.render);
    r.opt.max_pixels = U2NET_DEFAULT_MAX_IMAGE_PIXELS;
    int rc = parse_args(argc, argv, &r.opt);
    if (rc != PARSE_RUN) {
        run_free(&r);
        return rc;
    }
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
        return rc;
    }
    /* inputs that failed while they were being found count as finished */
    const size_t total = r.inputs.count + r.failed;
    progress_start(&r.bar, total, r.failed, !r.opt.quiet && isatty(STDERR_FILENO));
    for (size_t i = 0; i < r.inputs.count; i++) {
        const input_result res = process_input(&r, &r.inputs.items[i]);
        if (res == INPUT_DONE)
            r.done++;
        else if (res == INPUT_SKIPPED)
            r.skipped++;
        else
            r.failed++;
        progress_step(&r.bar);
    }
    progress_end(&r.bar);
    if (!r.opt.quiet && (total > 1 || r.failed > 0))
        fprintf(stderr, "done %zu, failed %zu, skipped %zu\n", r.done, r.failed, r.skipped);
    rc = r.failed > 0 ? 1 : 0;
    run_free(&r);
    return rc;
}
