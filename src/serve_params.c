/* serve_params.c - a `POST /api/remove` request's parameters into the
 * library's options (serve_params.h). */
#include "serve_params.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define MAX_MORPH_RADIUS 255
#define MAX_FEATHER 1000.0
#define MAX_PADDING 65535
#define MAX_GUIDED_RADIUS 1000
#define MAX_ERODE_SIZE 1000
/* how much of a value an error message quotes */
#define QUOTED_VALUE_CHARS 60

/* Puts one line in p->error; returns -1. Quoted values come from the
 * request: control characters become '?', so a reply or a log line cannot
 * be broken by them. */
static int refuse(serve_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(serve_params *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    for (char *c = p->error; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return -1;
}

void serve_params_init(serve_params *p)
{
    memset(p, 0, sizeof *p);
    p->type = U2NET_OUT_RGBA;
    u2net_mask_opts_default(&p->mask);
    u2net_render_opts_default(&p->render);
    p->fg = p->bg = -1;
}

/* rembg's booleans as FastAPI reads them, and a bare key (?refine) as true. */
static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"", "1", "true", "yes", "on", "True", "TRUE"};
    static const char *const no[] = {"0", "false", "no", "off", "False", "FALSE"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!strcmp(v, yes[i]))
            return *out = 1, 0;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (!strcmp(v, no[i]))
            return *out = 0, 0;
    return -1;
}

static int choice(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
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

/* #RRGGBB, #RGB, or the same without the '#' (a '#' must be %23 in a URL). */
static int parse_colour(const char *s, unsigned char rgb[3])
{
    if (*s == '#')
        s++;
    const size_t n = strlen(s);
    if (n != 6 && n != 3)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (hex_digit(s[i]) < 0)
            return -1;
    for (int c = 0; c < 3; c++)
        rgb[c] = n == 6 ? (unsigned char)(hex_digit(s[2 * c]) * 16 + hex_digit(s[2 * c + 1]))
                        : (unsigned char)(hex_digit(s[c]) * 17);
    return 0;
}

/* rembg's bgc: four integers R,G,B,A in 0..255. */
static int parse_rgba(const char *s, unsigned char v[4])
{
    char buf[32];
    const size_t n = strlen(s);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n + 1);
    char *part = buf;
    for (int c = 0; c < 4; c++) {
        char *comma = strchr(part, ',');
        if ((c < 3) != (comma != NULL))
            return -1;
        if (comma)
            *comma = '\0';
        long x;
        if (parse_int(part, 0, 255, &x) != 0)
            return -1;
        v[c] = (unsigned char)x;
        if (comma)
            part = comma + 1;
    }
    return 0;
}

static int bad_value(serve_params *p, const char *key, const char *value, const char *what)
{
    return refuse(p, "parameter %s: '%.*s' is not %s", key, QUOTED_VALUE_CHARS, value, what);
}

static int set_int(serve_params *p, const char *key, const char *v, long lo, long hi,
                   const char *what, int *out)
{
    long n;
    if (parse_int(v, lo, hi, &n) != 0)
        return bad_value(p, key, v, what);
    *out = (int)n;
    return 0;
}

static int set_flag(serve_params *p, const char *key, const char *v, int *out)
{
    if (parse_bool(v, out) != 0)
        return bad_value(p, key, v, "a boolean (true or false)");
    return 0;
}

/* The image command's options that a request may not give, and why. */
static const char *server_wide(const char *key)
{
    static const char *const names[] = {"size", "mean", "std", "threads", "device",
                                        "max-pixels"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(key, names[i]))
            return names[i];
    return NULL;
}

int serve_params_set(serve_params *p, const char *key_in, const char *v,
                     const char *const *model_names, int n_models)
{
    char key[32];
    const size_t n = strlen(key_in);
    if (n == 0 || n >= sizeof key)
        return refuse(p, "unknown parameter '%.*s'", QUOTED_VALUE_CHARS, key_in);
    for (size_t i = 0; i <= n; i++)
        key[i] = key_in[i] == '_' ? '-' : key_in[i];
    double f;
    long x;
    int b;
    /* rembg's parameters */
    if (!strcmp(key, "model")) {
        for (int i = 0; i < n_models; i++)
            if (!strcmp(v, model_names[i]))
                return p->model = i, 0;
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; i < n_models && used < sizeof list; i++) {
            const int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                   model_names[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return refuse(p, "unknown model '%.*s' (this server has: %s)", QUOTED_VALUE_CHARS, v,
                      list);
    }
    if (!strcmp(key, "a") || !strcmp(key, "alpha-matting"))
        return set_flag(p, key, v, &p->alpha_matting);
    if (!strcmp(key, "af"))
        return set_int(p, key, v, 0, 255, "a level (0..255)", &p->mask.matting_fg_threshold);
    if (!strcmp(key, "ab"))
        return set_int(p, key, v, 0, 255, "a level (0..255)", &p->mask.matting_bg_threshold);
    if (!strcmp(key, "ae") || !strcmp(key, "erode-size"))
        return set_int(p, key, v, 0, MAX_ERODE_SIZE, "a size in pixels (0..1000)",
                       &p->mask.erode_size);
    if (!strcmp(key, "om")) {
        if (parse_bool(v, &b) != 0)
            return bad_value(p, key, v, "a boolean (true or false)");
        if (b)
            p->type = U2NET_OUT_MASK;
        return 0;
    }
    if (!strcmp(key, "ppm")) {
        /* rembg's post_process_mask: an opening, then a binary mask (its
         * blur before the threshold only smooths the mask's outline) */
        if (parse_bool(v, &b) != 0)
            return bad_value(p, key, v, "a boolean (true or false)");
        if (b) {
            p->mask.morph = U2NET_MORPH_OPEN;
            p->mask.alpha_from_mask = 1;
        }
        return 0;
    }
    if (!strcmp(key, "bgc")) {
        if (parse_rgba(v, p->bgc) != 0)
            return bad_value(p, key, v, "a colour R,G,B,A (four integers 0..255)");
        p->has_bgc = 1;
        return 0;
    }
    if (!strcmp(key, "dc") || !strcmp(key, "vm")) {
        /* rembg's edge decontamination and ViTMatte refinement: other
         * networks; this server's clean edges are guided and alpha-matting */
        if (parse_bool(v, &b) != 0)
            return bad_value(p, key, v, "a boolean (true or false)");
        if (b)
            return refuse(p, "parameter %s is not supported (rembg's %s); use guided=true or "
                             "alpha-matting=true", key, key[0] == 'd' ? "decontaminate" : "ViTMatte");
        return 0;
    }
    if (!strcmp(key, "extras")) {
        if (!*v || !strcmp(v, "{}"))
            return 0;
        return refuse(p, "parameter extras is not taken: this server reads no file a request "
                         "names and has no prompts");
    }
    if (!strcmp(key, "url"))
        return refuse(p, "parameter url: this server fetches no URL (a server that fetches URLs "
                         "for its clients can be made to reach hosts they cannot); send the image "
                         "itself");
    /* this program's own */
    if (!strcmp(key, "type")) {
        const int t = u2net_output_from_name(v);
        if (t < 0 || t >= U2NET_OUT_COUNT)
            return bad_value(p, key, v, "a type (prob, mask, rgba, rgb, composite, crop, bbox, "
                                        "highlight)");
        p->type = (u2net_output_type)t;
        return 0;
    }
    if (!strcmp(key, "format")) {
        static const char *const names[] = {"png", "jpg", "jpeg"};
        const int c = choice(v, names, 3);
        if (c < 0)
            return bad_value(p, key, v, "png or jpg");
        p->jpeg = c > 0;
        return 0;
    }
    if (!strcmp(key, "quality") || !strcmp(key, "jpeg-quality"))
        return set_int(p, key, v, 1, 100, "a JPEG quality (1..100)", &p->jpeg_quality);
    if (!strcmp(key, "resize")) {
        static const char *const names[] = {"bilinear", "lanczos"};
        const int c = choice(v, names, 2);
        if (c < 0)
            return bad_value(p, key, v, "bilinear or lanczos");
        p->mask.resize = c ? U2NET_RESIZE_LANCZOS : U2NET_RESIZE_BILINEAR;
        return 0;
    }
    if (!strcmp(key, "threshold")) {
        if (parse_float(v, 0, 1, &f) != 0)
            return bad_value(p, key, v, "a threshold (0..1)");
        p->mask.threshold = (float)f;
        return 0;
    }
    if (!strcmp(key, "refine"))
        return set_flag(p, key, v, &p->refine);
    if (!strcmp(key, "fg-threshold") || !strcmp(key, "bg-threshold")) {
        if (parse_int(v, 0, 255, &x) != 0)
            return bad_value(p, key, v, "a level (0..255)");
        *(key[0] == 'f' ? &p->fg : &p->bg) = x;
        return 0;
    }
    if (!strcmp(key, "morph")) {
        static const char *const names[] = {"none", "open", "close", "open-close"};
        static const u2net_morph values[] = {U2NET_MORPH_NONE, U2NET_MORPH_OPEN, U2NET_MORPH_CLOSE,
                                             U2NET_MORPH_OPEN_CLOSE};
        const int c = choice(v, names, 4);
        if (c < 0)
            return bad_value(p, key, v, "none, open, close or open-close");
        p->mask.morph = values[c];
        return 0;
    }
    if (!strcmp(key, "morph-radius")) {
        p->morph_radius_given = 1;
        return set_int(p, key, v, 1, MAX_MORPH_RADIUS, "a radius (1..255)", &p->mask.morph_radius);
    }
    if (!strcmp(key, "largest-component"))
        return set_flag(p, key, v, &p->mask.largest_component);
    if (!strcmp(key, "feather")) {
        if (parse_float(v, 0, MAX_FEATHER, &f) != 0)
            return bad_value(p, key, v, "a width in pixels (0..1000)");
        p->mask.feather = (float)f;
        return 0;
    }
    if (!strcmp(key, "alpha")) {
        static const char *const names[] = {"soft", "mask"};
        const int c = choice(v, names, 2);
        if (c < 0)
            return bad_value(p, key, v, "soft or mask");
        p->mask.alpha_from_mask = c;
        return 0;
    }
    if (!strcmp(key, "guided"))
        return set_flag(p, key, v, &p->guided);
    if (!strcmp(key, "guided-radius")) {
        p->guided = 1;
        return set_int(p, key, v, 1, MAX_GUIDED_RADIUS, "a radius in pixels (1..1000)",
                       &p->mask.guided_radius);
    }
    if (!strcmp(key, "guided-eps")) {
        if (parse_float(v, 1e-8, 1, &f) != 0)
            return bad_value(p, key, v, "a regularisation (1e-8..1)");
        p->mask.guided_eps = (float)f;
        p->guided = 1;
        return 0;
    }
    if (!strcmp(key, "foreground")) {
        static const char *const names[] = {"auto", "estimate", "original"};
        static const u2net_foreground values[] = {U2NET_FOREGROUND_AUTO, U2NET_FOREGROUND_ESTIMATE,
                                                  U2NET_FOREGROUND_ORIGINAL};
        const int c = choice(v, names, 3);
        if (c < 0)
            return bad_value(p, key, v, "auto, estimate or original");
        p->mask.foreground = values[c];
        return 0;
    }
    if (!strcmp(key, "background")) {
        if (parse_colour(v, p->render.background_rgb) != 0)
            return bad_value(p, key, v, "a colour (#RRGGBB or #RGB; a server takes no "
                                        "background image)");
        return 0;
    }
    if (!strcmp(key, "padding"))
        return set_int(p, key, v, 0, MAX_PADDING, "a padding in pixels (0..65535)",
                       &p->render.padding);
    if (!strcmp(key, "highlight")) {
        static const char *const names[] = {"dim", "gray", "grey", "blur"};
        static const u2net_highlight values[] = {U2NET_HIGHLIGHT_DIM, U2NET_HIGHLIGHT_GRAY,
                                                 U2NET_HIGHLIGHT_GRAY, U2NET_HIGHLIGHT_BLUR};
        const int c = choice(v, names, 4);
        if (c < 0)
            return bad_value(p, key, v, "dim, gray or blur");
        p->render.highlight = values[c];
        return 0;
    }
    const char *wide = server_wide(key);
    if (wide)
        return refuse(p, "parameter %s is set for the whole server (u2net serve --help), not "
                         "per request", wide);
    return refuse(p, "unknown parameter '%s' (GET / has the page; the README lists the "
                     "parameters)", key);
}

int serve_params_finish(serve_params *p)
{
    if (p->refine && p->alpha_matting)
        return refuse(p, "refine and alpha matting both remap the alpha: give one");
    p->mask.guided = p->guided;
    p->mask.alpha_matting = p->alpha_matting;
    if (p->alpha_matting) {
        if (p->fg >= 0)
            p->mask.matting_fg_threshold = (int)p->fg;
        if (p->bg >= 0)
            p->mask.matting_bg_threshold = (int)p->bg;
        if (p->mask.matting_bg_threshold > p->mask.matting_fg_threshold)
            return refuse(p, "the background threshold %d must not be above the foreground's %d",
                          p->mask.matting_bg_threshold, p->mask.matting_fg_threshold);
    } else if (p->fg >= 0 || p->bg >= 0) {
        p->refine = 1;
    }
    p->mask.refine = p->refine;
    if (p->refine) {
        if (p->fg >= 0)
            p->mask.fg_threshold = (int)p->fg;
        if (p->bg >= 0)
            p->mask.bg_threshold = (int)p->bg;
        if (p->mask.bg_threshold >= p->mask.fg_threshold)
            return refuse(p, "bg-threshold %d must be below fg-threshold %d",
                          p->mask.bg_threshold, p->mask.fg_threshold);
    }
    if (p->morph_radius_given && p->mask.morph == U2NET_MORPH_NONE)
        return refuse(p, "morph-radius needs morph open, close or open-close");
    /* rembg leaves bgc out of only-mask replies */
    if (p->has_bgc && p->type == U2NET_OUT_MASK)
        p->has_bgc = 0;
    if (p->has_bgc && p->type != U2NET_OUT_RGBA)
        return refuse(p, "bgc colours the cutout (type rgba); for -t %s use background",
                      u2net_output_name(p->type));
    if (p->jpeg && (p->type == U2NET_OUT_RGBA || p->type == U2NET_OUT_BBOX))
        return refuse(p, "format jpg cannot hold type %s (use png)", u2net_output_name(p->type));
    return 0;
}
