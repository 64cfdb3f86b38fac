/* options.c - the image command's command line (u2net --help), parsed
 * into an options struct with no side effects, so that the fuzzer
 * (tests/fuzz/fuzz_cli.c) can run it on any argv. */
#include "options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_THREADS 1024
#define MAX_MORPH_RADIUS 255
#define MAX_FEATHER 1000.0
#define MAX_PADDING 65535
#define MAX_MAX_PIXELS 1000000000000L
#define MAX_GUIDED_RADIUS 1000
#define MAX_ERODE_SIZE 1000

/* Puts one line saying what is wrong in o->error; returns -1. The line
 * quotes arguments, so control characters in them become '?': a newline or
 * an escape sequence must not break the line or drive the terminal. */
static int usage_error(options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(options *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->error, sizeof o->error, fmt, ap);
    va_end(ap);
    for (char *c = o->error; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return -1;
}

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
            return usage_error(o, "%s: unknown type '%.*s' in '%s' (types: %s)", opt,
                               (int)(n < 64 ? n : 64), p, value, type_list);
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

static int parse_size(options *o, const char *opt, const char *value)
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
        return usage_error(o, "%s: '%s' is not a size (N or WxH, 1..%d a side)", opt, value,
                           U2NET_MAX_SIDE);
    }
    if (w * h > U2NET_MAX_PIXELS) {
        return usage_error(o, "%s: '%s' is more than %d pixels", opt, value, U2NET_MAX_PIXELS);
    }
    o->mask.net_width = (int)w, o->mask.net_height = (int)h;
    return 0;
}

/* R,G,B: three numbers in [lo, hi] into v. */
static int parse_triple(options *o, const char *opt, const char *value, double lo, double hi,
                        float v[3])
{
    char buf[96];
    const size_t n = strlen(value);
    if (n >= sizeof buf)
        return usage_error(o, "%s: '%.40s...' is not R,G,B", opt, value);
    memcpy(buf, value, n + 1);
    char *p = buf;
    for (int c = 0; c < 3; c++) {
        char *comma = strchr(p, ',');
        if ((c < 2) != (comma != NULL))
            return usage_error(o, "%s: '%s' is not three numbers R,G,B", opt, value);
        if (comma)
            *comma = '\0';
        double f;
        if (parse_float(p, lo, hi, &f) != 0)
            return usage_error(o, "%s: '%s' is not three numbers R,G,B in %g..%g", opt, value, lo,
                               hi);
        v[c] = (float)f;
        if (comma)
            p = comma + 1;
    }
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
static int parse_choice(options *o, const char *opt, const char *value, const char *const *names,
                        int n, const char *allowed)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(value, names[i]))
            return i;
    return usage_error(o, "%s: unknown value '%s' (%s)", opt, value, allowed);
}

static int bad_number(options *o, const char *opt, const char *value, const char *what)
{
    return usage_error(o, "%s: '%s' is not %s", opt, value, what);
}

int options_takes_value(const char *name)
{
    static const char *const with_value[] = {
        "-o", "--output", "-t", "--type", "-m", "--model", "--size", "--resize", "--mean",
        "--std",
        "--threshold", "--fg-threshold", "--bg-threshold", "--morph", "--morph-radius",
        "--feather", "--alpha", "--background", "--padding", "--highlight", "--format",
        "--max-pixels", "--jpeg-quality", "--threads", "--device", "--guided-radius",
        "--guided-eps", "--erode-size", "--foreground"};
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        if (!strcmp(name, with_value[k]))
            return 1;
    return 0;
}

parse_result options_parse(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    u2net_mask_opts_default(&o->mask);
    u2net_render_opts_default(&o->render);
    o->max_pixels = U2NET_DEFAULT_MAX_IMAGE_PIXELS;
    long fg = -1, bg = -1;
    int morph_radius_given = 0, refine = 0, have_mean = 0, have_std = 0;
    int guided = 0, alpha_matting = 0;
    o->inputs = malloc((size_t)argc * sizeof *o->inputs);
    if (!o->inputs)
        return PARSE_NO_MEMORY;
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
                usage_error(o, "unknown option '%s' (see u2net --help)", a);
                return PARSE_USAGE_ERROR;
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
                usage_error(o, "%s takes no value (given '%s')", name, inline_value);
                return PARSE_USAGE_ERROR;
            }
            return strcmp(name, "--version") ? PARSE_HELP : PARSE_VERSION;
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
        else if (!strcmp(name, "--guided"))
            flag = &guided;
        else if (!strcmp(name, "--alpha-matting"))
            flag = &alpha_matting;
        else if (!strcmp(name, "--largest-component"))
            flag = &o->mask.largest_component;
        if (flag) {
            if (inline_value) {
                usage_error(o, "%s takes no value (given '%s')", name, inline_value);
                return PARSE_USAGE_ERROR;
            }
            *flag = 1;
            continue;
        }
        if (!options_takes_value(name)) {
            usage_error(o, "unknown option '%s' (see u2net --help)", a);
            return PARSE_USAGE_ERROR;
        }
        const char *v = inline_value;
        if (!v) {
            if (i + 1 >= argc) {
                usage_error(o, "%s: missing value (see u2net --help)", name);
                return PARSE_USAGE_ERROR;
            }
            v = argv[++i];
        }
        long n = 0;
        double f = 0;
        int bad = 0;
        if (is_opt(name, "-o", "--output")) {
            if (o->output) {
                usage_error(o, "%s: given twice ('%s' and '%s')", name, o->output, v);
                return PARSE_USAGE_ERROR;
            }
            if (!*v) {
                usage_error(o, "%s: empty path", name);
                return PARSE_USAGE_ERROR;
            }
            o->output = v;
        } else if (is_opt(name, "-t", "--type")) {
            bad = add_types(o, name, v);
        } else if (is_opt(name, "-m", "--model")) {
            if (!*v) {
                usage_error(o, "%s: empty model name", name);
                return PARSE_USAGE_ERROR;
            }
            o->model = v;
        } else if (!strcmp(name, "--size")) {
            bad = parse_size(o, name, v);
        } else if (!strcmp(name, "--mean")) {
            bad = parse_triple(o, name, v, -1000, 1000, o->mask.mean);
            have_mean = 1;
        } else if (!strcmp(name, "--std")) {
            bad = parse_triple(o, name, v, 1e-6, 1000, o->mask.std);
            have_std = 1;
        } else if (!strcmp(name, "--resize")) {
            static const char *const names[] = {"bilinear", "lanczos"};
            const int c = parse_choice(o, name, v, names, 2, "bilinear or lanczos");
            bad = c < 0;
            o->mask.resize = c == 1 ? U2NET_RESIZE_LANCZOS : U2NET_RESIZE_BILINEAR;
        } else if (!strcmp(name, "--threshold")) {
            if (parse_float(v, 0, 1, &f) != 0)
                bad = bad_number(o, name, v, "a threshold (0..1)");
            o->mask.threshold = (float)f;
        } else if (!strcmp(name, "--fg-threshold")) {
            if (parse_int(v, 0, 255, &fg) != 0)
                bad = bad_number(o, name, v, "a level (0..255)");
        } else if (!strcmp(name, "--bg-threshold")) {
            if (parse_int(v, 0, 255, &bg) != 0)
                bad = bad_number(o, name, v, "a level (0..255)");
        } else if (!strcmp(name, "--morph")) {
            static const char *const names[] = {"open", "close", "open-close"};
            static const u2net_morph values[] = {U2NET_MORPH_OPEN, U2NET_MORPH_CLOSE,
                                                 U2NET_MORPH_OPEN_CLOSE};
            const int c = parse_choice(o, name, v, names, 3, "open, close or open-close");
            bad = c < 0;
            if (!bad)
                o->mask.morph = values[c];
        } else if (!strcmp(name, "--morph-radius")) {
            if (parse_int(v, 1, MAX_MORPH_RADIUS, &n) != 0)
                bad = bad_number(o, name, v, "a radius (1..255)");
            o->mask.morph_radius = (int)n;
            morph_radius_given = 1;
        } else if (!strcmp(name, "--guided-radius")) {
            if (parse_int(v, 1, MAX_GUIDED_RADIUS, &n) != 0)
                bad = bad_number(o, name, v, "a radius in pixels (1..1000)");
            o->mask.guided_radius = (int)n;
            guided = 1;
        } else if (!strcmp(name, "--guided-eps")) {
            if (parse_float(v, 1e-8, 1, &f) != 0)
                bad = bad_number(o, name, v, "a regularisation (1e-8..1)");
            o->mask.guided_eps = (float)f;
            guided = 1;
        } else if (!strcmp(name, "--erode-size")) {
            if (parse_int(v, 0, MAX_ERODE_SIZE, &n) != 0)
                bad = bad_number(o, name, v, "a size in pixels (0..1000)");
            o->mask.erode_size = (int)n;
            alpha_matting = 1;
        } else if (!strcmp(name, "--foreground")) {
            static const char *const names[] = {"estimate", "original"};
            static const u2net_foreground values[] = {U2NET_FOREGROUND_ESTIMATE,
                                                      U2NET_FOREGROUND_ORIGINAL};
            const int c = parse_choice(o, name, v, names, 2, "estimate or original");
            bad = c < 0;
            if (!bad)
                o->mask.foreground = values[c];
        } else if (!strcmp(name, "--feather")) {
            if (parse_float(v, 0, MAX_FEATHER, &f) != 0)
                bad = bad_number(o, name, v, "a width in pixels (0..1000)");
            o->mask.feather = (float)f;
        } else if (!strcmp(name, "--alpha")) {
            static const char *const names[] = {"soft", "mask"};
            const int c = parse_choice(o, name, v, names, 2, "soft or mask");
            bad = c < 0;
            o->mask.alpha_from_mask = c == 1;
        } else if (!strcmp(name, "--background")) {
            if (v[0] == '#') {
                if (parse_colour(v, o->render.background_rgb) != 0) {
                    usage_error(o, "%s: '%s' is not a colour (#RRGGBB or #RGB)", name, v);
                    bad = 1;
                }
                o->background_image = NULL;
            } else if (!*v) {
                usage_error(o, "%s: empty value (a colour #RRGGBB or #RGB, or an image)", name);
                bad = 1;
            } else {
                o->background_image = v;
            }
        } else if (!strcmp(name, "--padding")) {
            if (parse_int(v, 0, MAX_PADDING, &n) != 0)
                bad = bad_number(o, name, v, "a padding in pixels (0..65535)");
            o->render.padding = (int)n;
        } else if (!strcmp(name, "--highlight")) {
            static const char *const names[] = {"dim", "gray", "grey", "blur"};
            static const u2net_highlight values[] = {U2NET_HIGHLIGHT_DIM, U2NET_HIGHLIGHT_GRAY,
                                                     U2NET_HIGHLIGHT_GRAY, U2NET_HIGHLIGHT_BLUR};
            const int c = parse_choice(o, name, v, names, 4, "dim, gray or blur");
            bad = c < 0;
            if (!bad)
                o->render.highlight = values[c];
        } else if (!strcmp(name, "--format")) {
            static const char *const names[] = {"png", "jpg", "jpeg"};
            const int c = parse_choice(o, name, v, names, 3, "png or jpg");
            bad = c < 0;
            o->jpeg = c > 0;
        } else if (!strcmp(name, "--max-pixels")) {
            if (parse_int(v, 1, MAX_MAX_PIXELS, &n) != 0)
                bad = bad_number(o, name, v, "a pixel count (1..1000000000000)");
            o->max_pixels = (size_t)n;
        } else if (!strcmp(name, "--jpeg-quality")) {
            if (parse_int(v, 1, 100, &n) != 0)
                bad = bad_number(o, name, v, "a JPEG quality (1..100)");
            o->jpeg_quality = n;
        } else if (!strcmp(name, "--threads")) {
            if (parse_int(v, 1, MAX_THREADS, &n) != 0)
                bad = bad_number(o, name, v, "a thread count (1..1024)");
            o->threads = n;
        } else if (!strcmp(name, "--device")) {
            if (device_from_name(v, &o->device) != 0) {
                usage_error(o, "%s: unknown device '%s' (cpu or cuda)", name, v);
                return PARSE_USAGE_ERROR;
            }
        }
        if (bad)
            return PARSE_USAGE_ERROR;
    }
    if (have_mean != have_std) {
        usage_error(o, "--mean and --std go together (a retrained model's normalisation)");
        return PARSE_USAGE_ERROR;
    }
    if (refine && alpha_matting) {
        usage_error(o, "--refine and --alpha-matting both remap the alpha: give one");
        return PARSE_USAGE_ERROR;
    }
    o->mask.guided = guided;
    o->mask.alpha_matting = alpha_matting;
    if (alpha_matting) {
        /* the thresholds are the trimap's (rembg's defaults 240 / 10) */
        if (fg >= 0)
            o->mask.matting_fg_threshold = (int)fg;
        if (bg >= 0)
            o->mask.matting_bg_threshold = (int)bg;
        if (o->mask.matting_bg_threshold > o->mask.matting_fg_threshold) {
            usage_error(o, "--bg-threshold %d must not be above --fg-threshold %d",
                        o->mask.matting_bg_threshold, o->mask.matting_fg_threshold);
            return PARSE_USAGE_ERROR;
        }
    } else if (fg >= 0 || bg >= 0) {
        refine = 1;
    }
    o->mask.refine = refine;
    if (refine && fg >= 0)
        o->mask.fg_threshold = (int)fg;
    if (refine && bg >= 0)
        o->mask.bg_threshold = (int)bg;
    if (refine && o->mask.bg_threshold >= o->mask.fg_threshold) {
        usage_error(o, "--bg-threshold %d must be below --fg-threshold %d", o->mask.bg_threshold,
                o->mask.fg_threshold);
        return PARSE_USAGE_ERROR;
    }
    if (morph_radius_given && o->mask.morph == U2NET_MORPH_NONE) {
        usage_error(o, "--morph-radius: needs --morph open, close or open-close");
        return PARSE_USAGE_ERROR;
    }
    if (o->quiet && o->verbose) {
        usage_error(o, "-q and -v contradict each other: give one");
        return PARSE_USAGE_ERROR;
    }
    if (o->overwrite && o->skip_existing) {
        usage_error(o, "--overwrite and --skip-existing contradict each other: give one");
        return PARSE_USAGE_ERROR;
    }
    if (o->n_types == 0)
        o->types[o->n_types++] = U2NET_OUT_RGBA;
    if (o->n_inputs == 0) {
        usage_error(o, "no INPUT given (see u2net --help)");
        return PARSE_USAGE_ERROR;
    }
    if (!o->output) {
        usage_error(o, "no output given: -o FILE, -o FOLDER/ or -o - (see u2net --help)");
        return PARSE_USAGE_ERROR;
    }
    int stdin_count = 0;
    for (size_t i = 0; i < o->n_inputs; i++)
        stdin_count += !strcmp(o->inputs[i], "-");
    if (stdin_count > 1) {
        usage_error(o, "-: standard input can be an INPUT only once");
        return PARSE_USAGE_ERROR;
    }
    return PARSE_RUN;
}

void options_free(options *o)
{
    free(o->inputs);
    o->inputs = NULL;
    o->n_inputs = 0;
}
