/* cmd_stream.c - `u2net stream WIDTH HEIGHT [OPTIONS]`: background removal
 * on a stream of raw frames from standard input (rembg's `b` format, or
 * ffmpeg's rawvideo and yuv4mpegpipe output), each result written as a
 * raw frame to standard output (ffmpeg's rawvideo input) or as a numbered
 * image file.
 *
 * The model and its context are made once; per frame the bytes are the
 * image (no copy), u2net_matte_image and u2net_render do what the image
 * command does with a file, so a frame's output is that command's for the
 * same pixels, byte for byte. --temporal smooths the probability map over
 * the frames first (stream_temporal.h). Frames are written in order as they
 * are done: a stream that ends part way through a frame is an error naming
 * that frame, after every frame before it has been written. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "paths.h"
#include "stream_io.h"
#include "stream_temporal.h"
#include "stream_y4m.h"
#include "u2net.h"
#include "util.h"

static const char help_text[] =
    "usage: u2net stream WIDTH HEIGHT [OPTIONS]    raw frames on standard input\n"
    "       u2net stream --y4m [OPTIONS]           a Y4M stream on standard input\n"
    "\n"
    "Background removal on a stream of frames: standard input holds frames of\n"
    "WIDTH x HEIGHT pixels, one after another, rows top to bottom, no padding\n"
    "(rembg's `b` input; ffmpeg's -f rawvideo -pix_fmt rgb24 output). Each\n"
    "frame's result is written as a raw frame to standard output (ready for\n"
    "ffmpeg's -f rawvideo input) or to a numbered image file.\n"
    "\n"
    "Input:\n"
    "  WIDTH HEIGHT         the frame size, 1..65535 a side, at most --max-pixels\n"
    "  --pix-fmt rgb24|rgba|gray  the frames' bytes: 3, 4 or 1 a pixel (default\n"
    "                       rgb24); rgba's alpha is the input's own, as in an RGBA\n"
    "                       photo (transparent stays transparent)\n"
    "  --y4m                the input is YUV4MPEG2 (ffmpeg -f yuv4mpegpipe): size\n"
    "                       and colours from its header, 8-bit 4:2:0, 4:2:2, 4:4:4\n"
    "                       or mono, BT.601; no WIDTH HEIGHT\n"
    "  --max-pixels N       refuse frames of more than N pixels (default 100000000)\n"
    "\n"
    "Output:\n"
    "  -o, --output PATTERN|-  - (the default): raw frames to standard output;\n"
    "                       or numbered files, PATTERN holding one %d, %Nd or %0Nd\n"
    "                       (frames count from 1; %% for a %), e.g. out/%05d.png;\n"
    "                       .png, or .jpg/.jpeg for the types without alpha\n"
    "  -t, --type T         one of (default rgba), and its raw frame's pixels:\n"
    "                         prob       soft probability map       gray\n"
    "                         mask       binary mask 0/255          gray\n"
    "                         rgba       the subject, transparent   rgba\n"
    "                         rgb        the subject on black       rgb24\n"
    "                         composite  the subject over --background  rgb24\n"
    "                         highlight  the background per --highlight  rgb24\n"
    "  --jpeg-quality Q     1..100 (default 95)\n"
    "  --overwrite          replace existing files (the input never is)\n"
    "\n"
    "Over time:\n"
    "  --temporal           smooth the probability map over the frames, so that a\n"
    "                       still subject's mask does not flicker with the camera's\n"
    "                       noise: an average of the maps where the picture is\n"
    "                       still, the new map where it moves, a new start at a cut\n"
    "  --temporal-weight W  the new map's weight where the picture is still,\n"
    "                       0.01..1 (default 0.25: about 4 frames' memory; 1 is no\n"
    "                       smoothing); implies --temporal\n"
    "  --temporal-motion L  a block of the picture whose brightness changes by L\n"
    "                       levels (0..255) in a frame is moving, 1..255 (default\n"
    "                       8; larger smooths more of a moving picture); implies\n"
    "                       --temporal\n"
    "\n"
    "The image command's options for the model (-m, --size, --mean/--std,\n"
    "--resize, --threads, --device), the mask and alpha (--threshold, --refine,\n"
    "--fg-threshold, --bg-threshold, --guided..., --alpha-matting, --erode-size,\n"
    "--foreground, --morph, --morph-radius, --largest-component, --feather,\n"
    "--alpha) and rendering (--background, --highlight) work as they do there\n"
    "(u2net --help), and -q (no summary), -v (a line per frame).\n"
    "\n"
    "A stream that ends between frames is the end; one that ends part way\n"
    "through a frame is an error naming the frame (counted from 1), after every\n"
    "earlier frame has been written. Ctrl-C (SIGINT) or SIGTERM stops it between\n"
    "frames (the frame in progress is dropped, never written in part); a reader\n"
    "that closes standard output ends it with a message. Exit status: 0 at the\n"
    "end of the stream, 1 for an error, 2 for a usage error, 128 + the signal's\n"
    "number when stopped.\n"
    "\n"
    "Examples:\n"
    "  ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - |\n"
    "    u2net stream 1280 720 -t rgba --temporal |\n"
    "    ffmpeg -f rawvideo -pix_fmt rgba -s 1280x720 -r 30 -i - \\\n"
    "      -c:v libvpx-vp9 -pix_fmt yuva420p out.webm\n"
    "  ffmpeg -i in.mp4 -f yuv4mpegpipe - | u2net stream --y4m -t mask -o masks/%05d.png\n"
    "  (README.md has the video recipes.)\n";

/* The image command's options that mean nothing for a stream. */
static const char *const not_for_streams[] = {"-r", "--recursive", "--skip-existing",
                                              "--format", "--padding"};

enum { DONE_EARLY = -1 };

typedef struct {
    options opt;          /* the image command's options, parsed by options_parse */
    char **forwarded;     /* the argv given to options_parse */
    long width, height;   /* the frame size (from the header with --y4m) */
    int y4m;
    int channels;         /* of a raw frame: 3 (rgb24), 4 (rgba) or 1 (gray) */
    int temporal;
    double temporal_weight, temporal_motion;
    int to_files;         /* -o PATTERN; else raw frames to standard output */
    int jpeg;             /* the files are JPEG, else PNG */
    frame_pattern pattern;
} stream_args;

/* A usage error: one line, exit status 2. */
static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_line("u2net: stream: ", fmt, ap);
    va_end(ap);
    return 2;
}

/* "-5": a (bad) frame size, not an option. */
static int is_negative_number(const char *a)
{
    if (a[0] != '-' || !a[1])
        return 0;
    for (const char *c = a + 1; *c; c++)
        if (*c < '0' || *c > '9')
            return 0;
    return 1;
}

static int is_stream_type(u2net_output_type t)
{
    return t == U2NET_OUT_PROB || t == U2NET_OUT_MASK || t == U2NET_OUT_RGBA ||
           t == U2NET_OUT_RGB || t == U2NET_OUT_COMPOSITE || t == U2NET_OUT_HIGHLIGHT;
}

/* The options of this command alone; the rest go to options_parse.
 * Returns 1 when argv[*i] was one (and its value taken), 0 when not, or
 * the exit status 2 after a message. */
static int stream_option(stream_args *a, const char *name, const char *inline_value, int argc,
                         char **argv, int *i)
{
    const int is_flag = !strcmp(name, "--y4m") || !strcmp(name, "--temporal");
    const int with_value = !strcmp(name, "--pix-fmt") || !strcmp(name, "--temporal-weight") ||
                           !strcmp(name, "--temporal-motion");
    if (!is_flag && !with_value)
        return 0;
    if (is_flag) {
        if (inline_value)
            return usage("%s takes no value (given '%s')", name, inline_value);
        *(!strcmp(name, "--y4m") ? &a->y4m : &a->temporal) = 1;
        return 1;
    }
    const char *v = inline_value;
    if (!v) {
        if (*i + 1 >= argc)
            return usage("%s: missing value (see u2net stream --help)", name);
        v = argv[++*i];
    }
    if (!strcmp(name, "--pix-fmt")) {
        if (!strcmp(v, "rgb24"))
            a->channels = 3;
        else if (!strcmp(v, "rgba"))
            a->channels = 4;
        else if (!strcmp(v, "gray"))
            a->channels = 1;
        else
            return usage("--pix-fmt: unknown pixel format '%s' (rgb24, rgba or gray)", v);
    } else if (!strcmp(name, "--temporal-weight")) {
        if (parse_float(v, 0.01, 1, &a->temporal_weight) != 0)
            return usage("--temporal-weight: '%s' is not a weight (0.01..1)", v);
        a->temporal = 1;
    } else {
        if (parse_float(v, 1, 255, &a->temporal_motion) != 0)
            return usage("--temporal-motion: '%s' is not a level (1..255)", v);
        a->temporal = 1;
    }
    return 1;
}

/* Checks the output: standard output, or a pattern of image files. */
static int check_output(stream_args *a)
{
    const char *out = a->opt.output;
    const u2net_output_type t = a->opt.types[0];
    if (!strcmp(out, "-")) {
        if (isatty(STDOUT_FILENO))
            return usage("-o -: standard output is a terminal; pipe the frames on (e.g. to "
                         "ffmpeg -f rawvideo) or give -o PATTERN");
        return 0;
    }
    char why[256];
    if (frame_pattern_parse(out, &a->pattern, why, sizeof why) != 0)
        return usage("-o %s: %s", out, why);
    a->to_files = 1;
    const char *ext = path_extension(out);
    a->jpeg = str_eq_ci(ext, "jpg") || str_eq_ci(ext, "jpeg");
    if (!a->jpeg && !str_eq_ci(ext, "png"))
        return usage("-o %s: unknown image extension '%s' (.png, .jpg or .jpeg, after the "
                     "frame number)", out, ext);
    if (a->jpeg && t == U2NET_OUT_RGBA)
        return usage("-o %s: JPEG cannot hold alpha (-t rgba); use .png", out);
    return 0;
}

/* Parses the command line into a; returns 0 to go on, DONE_EARLY after
 * --help or --version, or the exit status. */
static int parse_command_line(stream_args *a, int argc, char **argv)
{
    a->channels = 3;
    a->temporal_weight = TEMPORAL_DEFAULT_WEIGHT;
    a->temporal_motion = TEMPORAL_DEFAULT_MOTION;
    /* the image command's options pass on to its parser, then "-o -" when
     * no output is given and "-- -": standard input as its one input */
    a->forwarded = malloc(sizeof *a->forwarded * ((size_t)argc + 4));
    if (!a->forwarded) {
        print_error("out of memory");
        return 1;
    }
    int n = 0, output_given = 0, positional = 0, options_done = 0;
    const char *sizes[2] = {NULL, NULL}, *extra = NULL;
    a->forwarded[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp(arg, "--")) {
            options_done = 1;
            continue;
        }
        if (options_done || arg[0] != '-' || !arg[1] || is_negative_number(arg)) {
            if (positional < 2)
                sizes[positional] = arg;
            else if (!extra)
                extra = arg;
            positional++;
            continue;
        }
        /* --name=value: the name apart (too long a name is no option, and
         * options_parse says so) */
        char name[40] = "-?";
        const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
        const char *inline_value = eq ? eq + 1 : NULL;
        const size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (name_len < sizeof name)
            snprintf(name, sizeof name, "%.*s", (int)name_len, arg);
        const int own = stream_option(a, name, inline_value, argc, argv, &i);
        if (own == 1)
            continue;
        if (own != 0)
            return own;
        for (size_t k = 0; k < sizeof not_for_streams / sizeof *not_for_streams; k++)
            if (!strcmp(name, not_for_streams[k]))
                return usage("%s is not an option of u2net stream (see u2net stream --help)",
                             name);
        output_given |= !strcmp(name, "-o") || !strcmp(name, "--output");
        a->forwarded[n++] = argv[i];
        if (!inline_value && options_takes_value(name) && i + 1 < argc)
            a->forwarded[n++] = argv[++i];
    }
    if (!output_given) {
        a->forwarded[n++] = "-o";
        a->forwarded[n++] = "-";
    }
    a->forwarded[n++] = "--";
    a->forwarded[n++] = "-";
    switch (options_parse(n, a->forwarded, &a->opt)) {
    case PARSE_RUN:
        break;
    case PARSE_HELP:
        fputs(help_text, stdout);
        return DONE_EARLY;
    case PARSE_VERSION:
        puts("u2net " U2NET_VERSION_STRING);
        return DONE_EARLY;
    case PARSE_USAGE_ERROR: {
        /* its lines point to the image command's help */
        char *see = strstr(a->opt.error, "(see u2net --help)");
        if (see)
            *see = '\0';
        return usage("%s%s", a->opt.error, see ? "(see u2net stream --help)" : "");
    }
    case PARSE_NO_MEMORY:
        print_error("out of memory");
        return 1;
    }
    if (a->y4m && positional > 0)
        return usage("--y4m: the frame size is the stream's header's; give no WIDTH HEIGHT "
                     "(given '%s')", sizes[0]);
    if (!a->y4m && positional < 2)
        return usage("give the frame size: u2net stream WIDTH HEIGHT (see u2net stream --help)");
    if (extra)
        return usage("unexpected argument '%s' after WIDTH HEIGHT", extra);
    if (a->y4m && a->channels != 3)
        return usage("--pix-fmt: a Y4M stream says its own pixel format; give one or the other");
    if (!a->y4m) {
        const char *what[2] = {"WIDTH", "HEIGHT"};
        long *side[2] = {&a->width, &a->height};
        for (int k = 0; k < 2; k++)
            if (parse_int(sizes[k], 1, U2NET_MAX_IMAGE_SIDE, side[k]) != 0)
                return usage("%s: '%s' is not a frame %s in pixels (1..%d)", what[k], sizes[k],
                             k ? "height" : "width", U2NET_MAX_IMAGE_SIDE);
        if ((uint64_t)a->width * (uint64_t)a->height > a->opt.max_pixels)
            return usage("a %ldx%ld frame is %llu pixels, over --max-pixels %zu", a->width,
                         a->height, (unsigned long long)a->width * (unsigned long long)a->height,
                         a->opt.max_pixels);
    }
    if (a->opt.n_types != 1)
        return usage("-t: a stream writes one type (given %d)", a->opt.n_types);
    const u2net_output_type t = a->opt.types[0];
    if (!is_stream_type(t))
        return usage("-t %s: not a frame of the stream's size; a stream writes prob, mask, rgba, "
                     "rgb, composite or highlight", u2net_output_name(t));
    if (isatty(STDIN_FILENO))
        return usage("standard input is a terminal; pipe the frames in (e.g. from ffmpeg -f "
                     "rawvideo)");
    return check_output(a);
}

static void stream_args_free(stream_args *a)
{
    options_free(&a->opt);
    free(a->forwarded);
    frame_pattern_free(&a->pattern);
}

/* ---- the run ---- */

/* The signal (SIGINT or SIGTERM) that asked the stream to stop, or 0:
 * looked at between frames and while waiting for one; the network's run
 * in progress is cancelled. A second signal ends the process at once. */
static volatile sig_atomic_t stop_signal;
static u2net_ctx *stop_ctx;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
    u2net_ctx_cancel(stop_ctx);
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* a reader that goes away is a write error (EPIPE) to report, not a
     * silent death */
    signal(SIGPIPE, SIG_IGN);
}

typedef struct {
    stream_args *args;
    u2net_model *model;
    u2net_ctx *ctx;
    u2net_image background;
    int has_background;
    int net_width, net_height;       /* the network's input size */
    y4m_format y4m;
    byte_reader in;
    unsigned char *frame;            /* the bytes of a frame as read */
    unsigned char *rgb;              /* a Y4M frame as RGB */
    size_t frame_bytes;
    temporal_state temporal;
    int has_temporal;
    struct stat input_st;            /* standard input, never written over */
    int input_is_file;
    unsigned long written;
} stream_run;

/* How many frames were written before the one a message is about, for
 * its end: "; the 2 frames before it were written". */
static const char *written_before(unsigned long written)
{
    static char note[64];
    if (written == 0)
        return "; no frame was written before it";
    snprintf(note, sizeof note, "; the %lu frame%s before it %s written", written,
             written == 1 ? "" : "s", written == 1 ? "was" : "were");
    return note;
}

/* Loads the model and makes its context; 0, or the exit status. */
static int load_model(stream_run *r)
{
    const options *o = &r->args->opt;
    r->model = model_open("", o->model ? o->model : BUILTIN_MODEL_NAME);
    if (!r->model)
        return 1;
    u2net_error err;
    u2net_ctx_opts co;
    u2net_ctx_opts_default(&co);
    co.threads = (int)o->threads;
    co.device = o->device;
    r->ctx = u2net_ctx_new_opts(r->model, &co, &err);
    if (!r->ctx)
        return report_context_error(&err);
    const int threads = u2net_ctx_threads(r->ctx);
    if (o->threads > threads && threads > 0 && !o->quiet)
        print_error("note: --threads %ld: this process may run on %d core%s (its CPU affinity), "
                    "so %d thread%s", o->threads, threads, threads == 1 ? "" : "s", threads,
                    threads == 1 ? "" : "s");
    u2net_model_info info;
    u2net_model_get_info(r->model, &info);
    r->net_width = o->mask.net_width > 0 ? o->mask.net_width : info.processing.width;
    r->net_height = o->mask.net_height > 0 ? o->mask.net_height : info.processing.height;
    return 0;
}

/* Reads the Y4M header, then sizes the frame buffers; 0, or the exit
 * status. */
static int prepare_frames(stream_run *r)
{
    stream_args *a = r->args;
    if (a->y4m) {
        char line[1024], why[256];
        size_t got;
        const read_status st = reader_read_line(&r->in, line, sizeof line, &got);
        if (st == READ_STOPPED) {
            print_error("interrupted by %s before the first frame",
                        stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
            return 128 + stop_signal;
        }
        if (st == READ_END) {
            print_error("-: empty stream: no Y4M header");
            return 1;
        }
        if (st == READ_ERROR && errno != EOVERFLOW) {
            print_error("-: cannot read: %s", strerror(errno));
            return 1;
        }
        /* a line that does not begin as a header is refused as not one */
        const int y4m_start = !strncmp(line, "YUV4MPEG2", 9);
        if (st != READ_OK && y4m_start) {
            print_error("-: Y4M header: %s", st == READ_SHORT ? "the stream ends inside it"
                        : "over 1023 bytes");
            return 1;
        }
        if (y4m_parse_header(line, U2NET_MAX_IMAGE_SIDE, &r->y4m, why, sizeof why) != 0) {
            print_error("-: %s", why);
            return 1;
        }
        a->width = r->y4m.width, a->height = r->y4m.height;
        if ((uint64_t)a->width * (uint64_t)a->height > a->opt.max_pixels) {
            print_error("-: Y4M header: a %ldx%ld frame is over --max-pixels %zu", a->width,
                        a->height, a->opt.max_pixels);
            return 1;
        }
        r->frame_bytes = r->y4m.frame_bytes;
        r->rgb = malloc((size_t)a->width * (size_t)a->height * 3);
    } else {
        r->frame_bytes = (size_t)a->width * (size_t)a->height * (size_t)a->channels;
    }
    r->frame = malloc(r->frame_bytes);
    if (!r->frame || (a->y4m && !r->rgb)) {
        print_error("out of memory for a %ldx%ld frame (%zu bytes)", a->width, a->height,
                    r->frame_bytes);
        return 1;
    }
    if (a->temporal) {
        if (temporal_init(&r->temporal, (int)a->width, (int)a->height,
                          (float)a->temporal_weight, (float)a->temporal_motion) != 0) {
            print_error("out of memory for --temporal's maps of a %ldx%ld frame", a->width,
                        a->height);
            return 1;
        }
        r->has_temporal = 1;
    }
    return 0;
}

/* Loads --background IMAGE; 0, or the exit status 2. */
static int load_background(stream_run *r)
{
    stream_args *a = r->args;
    if (!a->opt.background_image)
        return 0;
    u2net_error err;
    if (u2net_image_load(a->opt.background_image, a->opt.max_pixels, &r->background, &err) != 0)
        return usage("--background %s: %s", a->opt.background_image, err.msg);
    r->has_background = 1;
    a->opt.render.background = &r->background;
    return 0;
}

typedef enum { FRAME_READ, FRAME_END, FRAME_STOPPED, FRAME_FAILED } frame_result;

/* Reads frame n (1-based) into r->frame; FRAME_FAILED after a message. */
static frame_result read_frame(stream_run *r, unsigned long n)
{
    size_t got = 0;
    read_status st;
    if (r->args->y4m) {
        char line[256];
        st = reader_read_line(&r->in, line, sizeof line, &got);
        if (st == READ_END)
            return FRAME_END;
        if (st == READ_STOPPED)
            return FRAME_STOPPED;
        if (st == READ_OK && !y4m_is_frame_header(line)) {
            print_error("-: frame %lu: '%.40s' is not a Y4M frame header (FRAME)%s", n, line,
                        written_before(r->written));
            return FRAME_FAILED;
        }
        if (st != READ_OK) {
            print_error("-: frame %lu: %s%s", n,
                        st == READ_SHORT ? "the stream ends inside its FRAME header"
                        : errno == EOVERFLOW ? "its FRAME header is over 255 bytes"
                        : strerror(errno), written_before(r->written));
            return FRAME_FAILED;
        }
    }
    st = reader_read(&r->in, r->frame, r->frame_bytes, &got);
    switch (st) {
    case READ_OK:
        return FRAME_READ;
    case READ_END:
        if (!r->args->y4m)
            return FRAME_END;
        /* a Y4M frame header without its planes */
        /* fall through */
    case READ_SHORT:
        print_error("-: frame %lu is cut short: the stream ends after %zu of its %zu bytes (%ldx%ld "
                    "%s)%s", n, got, r->frame_bytes, r->args->width, r->args->height,
                    r->args->y4m ? "Y4M"
                    : r->args->channels == 3 ? "rgb24" : r->args->channels == 4 ? "rgba" : "gray",
                    written_before(r->written));
        return FRAME_FAILED;
    case READ_STOPPED:
        return FRAME_STOPPED;
    case READ_ERROR:
        break;
    }
    print_error("-: frame %lu: cannot read: %s", n, strerror(errno));
    return FRAME_FAILED;
}

/* The matte of a frame: as the image command makes it, or with --temporal
 * from the smoothed map. Returns 0, or the library's error code with err
 * filled in. */
static int matte_frame(stream_run *r, const u2net_image *img, u2net_matte *matte, u2net_error *err)
{
    const u2net_mask_opts *o = &r->args->opt.mask;
    if (!r->has_temporal)
        return u2net_matte_image(r->ctx, img, o, matte, err);
    /* the network's map alone first (no post-processing to do twice) */
    u2net_mask_opts plain;
    u2net_mask_opts_default(&plain);
    plain.net_width = o->net_width, plain.net_height = o->net_height;
    memcpy(plain.mean, o->mean, sizeof plain.mean);
    memcpy(plain.std, o->std, sizeof plain.std);
    plain.resize = o->resize;
    plain.foreground = U2NET_FOREGROUND_ORIGINAL;
    u2net_matte raw;
    int rc = u2net_matte_image(r->ctx, img, &plain, &raw, err);
    if (rc)
        return rc;
    temporal_apply(&r->temporal, img, raw.prob);
    /* the post-processing sees the network's size, as in u2net_matte_image */
    u2net_mask_opts post = *o;
    post.net_width = r->net_width, post.net_height = r->net_height;
    rc = u2net_matte_from_prob_image(raw.prob, img, &post, matte, err);
    u2net_matte_free(&raw);
    return rc;
}

/* Creates the folder a file goes in; 0, or -1 after a message. */
static int make_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir) {
        print_error("%s: out of memory", path);
        return -1;
    }
    const int rc = make_dirs(dir);
    if (rc != 0)
        print_error("%s: cannot create its folder %s: %s", path, dir, strerror(errno));
    free(dir);
    return rc;
}

/* Whether frame n's file may be written: 0, or -1 after a message. */
static int check_file(stream_run *r, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return make_parent(path);
    if (r->input_is_file && st.st_dev == r->input_st.st_dev && st.st_ino == r->input_st.st_ino) {
        print_error("%s: is the stream's input; refusing to write over it", path);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        print_error("%s: is a folder", path);
        return -1;
    }
    if (!r->args->opt.overwrite) {
        print_error("%s: exists (use --overwrite)%s", path, written_before(r->written));
        return -1;
    }
    return 0;
}

/* Writes a frame's output; 0, or -1 after a message. */
static int write_frame(stream_run *r, const u2net_image *out, const char *path)
{
    const stream_args *a = r->args;
    if (!path) {
        const size_t n = (size_t)out->width * out->height * out->channels;
        if (write_all(STDOUT_FILENO, out->data, n) == 0)
            return 0;
        if (errno == EPIPE)
            print_error("-: standard output was closed by its reader after %lu frame%s; stopping",
                        r->written, r->written == 1 ? "" : "s");
        else
            print_error("-: cannot write to standard output: %s", strerror(errno));
        return -1;
    }
    unsigned char *bytes = NULL;
    size_t len = 0;
    u2net_error err;
    int rc = u2net_image_encode(out, a->jpeg ? U2NET_FORMAT_JPEG : U2NET_FORMAT_PNG,
                                (int)a->opt.jpeg_quality, &bytes, &len, &err);
    if (rc == 0)
        rc = u2net_write_file(path, bytes, len, a->opt.overwrite, &err);
    free(bytes);
    if (rc == U2NET_EEXIST)
        print_error("%s: exists (use --overwrite)", path);
    else if (rc != 0)
        print_error("%s: %s", path, err.msg);
    return rc == 0 ? 0 : -1;
}

/* Runs the stream to its end; the exit status. */
static int run_stream(stream_run *r)
{
    stream_args *a = r->args;
    const double start = now_seconds();
    for (unsigned long n = 1;; n++) {
        const frame_result fr = read_frame(r, n);
        if (fr == FRAME_END)
            break;
        if (fr == FRAME_FAILED)
            return 1;
        if (fr == FRAME_STOPPED || stop_signal)
            break;
        const double frame_start = now_seconds();
        u2net_image img = {(int)a->width, (int)a->height, a->y4m ? 3 : a->channels, r->frame};
        if (a->y4m) {
            y4m_to_rgb(&r->y4m, r->frame, r->rgb);
            img.data = r->rgb;
        }
        char *path = NULL;
        if (a->to_files) {
            path = frame_pattern_path(&a->pattern, n);
            if (!path) {
                print_error("out of memory");
                return 1;
            }
            if (check_file(r, path) != 0) {
                free(path);
                return 1;
            }
        }
        u2net_error err;
        u2net_matte matte;
        u2net_image out = {0};
        int rc = matte_frame(r, &img, &matte, &err);
        if (rc == U2NET_ECANCELED || (rc == 0 && stop_signal)) {
            if (rc == 0)
                u2net_matte_free(&matte);
            free(path);
            break;
        }
        if (rc != 0) {
            print_error("-: frame %lu: %s", n, err.msg);
            free(path);
            return 1;
        }
        rc = u2net_render(&img, &matte, a->opt.types[0], &a->opt.render, &out, &err);
        u2net_matte_free(&matte);
        if (rc != 0) {
            print_error("-: frame %lu: -t %s: %s", n, u2net_output_name(a->opt.types[0]),
                        err.msg);
            free(path);
            return 1;
        }
        rc = write_frame(r, &out, path);
        u2net_image_free(&out);
        if (rc != 0) {
            free(path);
            return 1;
        }
        r->written++;
        if (a->opt.verbose)
            print_error("frame %lu: %.3f s%s%s", n, now_seconds() - frame_start, path ? " -> " : "",
                        path ? path : "");
        free(path);
    }
    if (stop_signal) {
        print_error("interrupted by %s after %lu frame%s (no frame is written in part)",
                    stop_signal == SIGINT ? "SIGINT" : "SIGTERM", r->written,
                    r->written == 1 ? "" : "s");
        return 128 + stop_signal;
    }
    const double seconds = now_seconds() - start;
    if (!a->opt.quiet)
        fprintf(stderr, "done %lu frame%s in %.2f s (%.2f frames/s)\n", r->written,
                r->written == 1 ? "" : "s", seconds, seconds > 0 ? r->written / seconds : 0.0);
    return 0;
}

int cmd_stream(int argc, char **argv)
{
    stream_args a;
    memset(&a, 0, sizeof a);
    stream_run r;
    memset(&r, 0, sizeof r);
    r.args = &a;
    int rc = parse_command_line(&a, argc, argv);
    if (rc == 0)
        rc = load_background(&r);
    if (rc == 0)
        rc = load_model(&r);
    if (rc == 0) {
        stop_ctx = r.ctx;
        catch_signals();
        reader_init(&r.in, STDIN_FILENO, &stop_signal);
        r.input_is_file = fstat(STDIN_FILENO, &r.input_st) == 0 && S_ISREG(r.input_st.st_mode);
        rc = prepare_frames(&r);
    }
    if (rc == 0)
        rc = run_stream(&r);
    if (r.has_temporal)
        temporal_free(&r.temporal);
    free(r.frame);
    free(r.rgb);
    if (r.has_background)
        u2net_image_free(&r.background);
    u2net_ctx_free(r.ctx);
    u2net_model_free(r.model);
    stream_args_free(&a);
    return rc == DONE_EARLY ? 0 : rc;
}
