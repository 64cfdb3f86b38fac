/* render.c - the outputs of background removal: the matte's maps, cutouts,
 * composites, the crop, the highlight, and the bounding-box JSON. Images are
 * height rows of width*channels bytes (u2net_image); the matte's maps are
 * width*height bytes at the image's size. Every rounding is floor(v + 1/2). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "error.h"
#include "image_internal.h"

#define HIGHLIGHT_DIM_FACTOR 0.35
#define HIGHLIGHT_MIN_SIGMA 2.0

void u2net_render_opts_default(u2net_render_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->background_rgb[0] = o->background_rgb[1] = o->background_rgb[2] = 255;
    o->background = NULL;
    o->padding = 0;
    o->highlight = U2NET_HIGHLIGHT_DIM;
}

const char *u2net_output_name(u2net_output_type t)
{
    switch (t) {
    case U2NET_OUT_PROB: return "prob";
    case U2NET_OUT_MASK: return "mask";
    case U2NET_OUT_RGBA: return "rgba";
    case U2NET_OUT_RGB: return "rgb";
    case U2NET_OUT_COMPOSITE: return "composite";
    case U2NET_OUT_CROP: return "crop";
    case U2NET_OUT_BBOX: return "bbox";
    case U2NET_OUT_HIGHLIGHT: return "highlight";
    default: return NULL;
    }
}

int u2net_output_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int t = 0; t < U2NET_OUT_COUNT; t++)
        if (strcmp(name, u2net_output_name((u2net_output_type)t)) == 0)
            return t;
    return -1;
}

static unsigned char round_byte(double v)
{
    const double r = floor(v + 0.5);
    return (unsigned char)(r < 0.0 ? 0.0 : r > 255.0 ? 255.0 : r);
}

static int check_image(const u2net_image *img, const char *what, u2net_error *err)
{
    if (!img || !img->data || img->width < 1 || img->height < 1 || img->channels < 1 ||
        img->channels > 4) {
        set_error(err, U2NET_EARG, "%s is not a valid image (need data, size >= 1, 1..4 channels)",
                  what);
        return U2NET_EARG;
    }
    if (img->width > U2NET_MAX_IMAGE_SIDE || img->height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * img->height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "%s is %dx%d: over the limit (%d a side, %u pixels)", what,
                  img->width, img->height, U2NET_MAX_IMAGE_SIDE, U2NET_MAX_IMAGE_PIXELS);
        return U2NET_EARG;
    }
    return 0;
}

/* The colour of pixel i of img (1..4 channels): gray is replicated. */
static void pixel_rgb(const u2net_image *img, size_t i, unsigned char rgb[3])
{
    const unsigned char *p = img->data + i * (size_t)img->channels;
    if (img->channels >= 3) {
        rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
    } else {
        rgb[0] = rgb[1] = rgb[2] = p[0];
    }
}

/* The subject's colour at pixel i: the matte's estimated foreground when
 * it has one, else the image's own. */
static void subject_rgb(const u2net_image *img, const u2net_matte *m, size_t i,
                        unsigned char rgb[3])
{
    if (m->foreground)
        memcpy(rgb, m->foreground + i * 3, 3);
    else
        pixel_rgb(img, i, rgb);
}

/* The cutout alpha of pixel i: the matte's, times the image's own alpha
 * (gray+alpha, RGBA) so that transparent input stays transparent.
 * (a * sa + 127) / 255 is floor(a * sa / 255 + 1/2) exactly. */
static int pixel_alpha(const u2net_image *img, const u2net_matte *m, size_t i)
{
    const int a = m->alpha[i];
    if (img->channels == 2 || img->channels == 4) {
        const int sa = img->data[i * (size_t)img->channels + (size_t)img->channels - 1];
        return (a * sa + 127) / 255;
    }
    return a;
}

static int render_map(const u2net_image *img, const unsigned char *map, u2net_image *out,
                      u2net_error *err)
{
    const int rc = u2net_image_alloc(out, img->width, img->height, 1, err);
    if (rc)
        return rc;
    memcpy(out->data, map, (size_t)img->width * img->height);
    return 0;
}

/* RGBA: the subject's colour + cutout alpha. */
static int render_rgba(const u2net_image *img, const u2net_matte *m, u2net_image *out,
                       u2net_error *err)
{
    const int rc = u2net_image_alloc(out, img->width, img->height, 4, err);
    if (rc)
        return rc;
    const size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++) {
        unsigned char *o = out->data + i * 4;
        subject_rgb(img, m, i, o);
        o[3] = (unsigned char)pixel_alpha(img, m, i);
    }
    return 0;
}

/* Composite over a colour, in integers: floor((c a + bg (255 - a)) / 255 + 1/2),
 * c the subject's colour. */
static int render_over_colour(const u2net_image *img, const u2net_matte *m,
                              const unsigned char bg[3], u2net_image *out, u2net_error *err)
{
    const int rc = u2net_image_alloc(out, img->width, img->height, 3, err);
    if (rc)
        return rc;
    const size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++) {
        unsigned char rgb[3];
        subject_rgb(img, m, i, rgb);
        const int a = pixel_alpha(img, m, i);
        for (int c = 0; c < 3; c++)
            out->data[i * 3 + c] = (unsigned char)((rgb[c] * a + bg[c] * (255 - a) + 127) / 255);
    }
    return 0;
}

/* Source position and weights of a bilinear sample (align_corners = False)
 * at destination index d of a resize from src_len to a length whose ratio
 * src_len / dst_len is `ratio`. */
static void bilinear_tap(double d, double ratio, int src_len, int *i0, int *i1, double *l1)
{
    double s = (d + 0.5) * ratio - 0.5;
    if (s < 0.0)
        s = 0.0;
    int lo = (int)s;
    if (lo > src_len - 1)
        lo = src_len - 1;
    *i0 = lo;
    *i1 = lo < src_len - 1 ? lo + 1 : lo;
    *l1 = s - lo;
}

/* Composite over a background image scaled to cover the output and
 * centred: scale = max(W / bw, H / bh), a bilinear resize to
 * ceil(bw scale) x ceil(bh scale), cropped at floor((scaled - W) / 2). The
 * scaled image is never built: each output pixel samples the background. */
static int render_over_image(const u2net_image *img, const u2net_matte *m,
                             const u2net_image *bg, u2net_image *out, u2net_error *err)
{
    const int W = img->width, H = img->height, bw = bg->width, bh = bg->height;
    const double scale = fmax((double)W / bw, (double)H / bh);
    /* int64: a thin background scaled to cover a wide image can exceed int. */
    int64_t sw = (int64_t)ceil(bw * scale), sh = (int64_t)ceil(bh * scale);
    sw = sw < W ? W : sw;
    sh = sh < H ? H : sh;
    const int64_t ox = (sw - W) / 2, oy = (sh - H) / 2;
    const double ratio_x = (double)bw / (double)sw, ratio_y = (double)bh / (double)sh;
    const int rc = u2net_image_alloc(out, W, H, 3, err);
    if (rc)
        return rc;
    const int bc = bg->channels;
    #pragma omp parallel for schedule(static) num_threads(max_threads())
    for (int y = 0; y < H; y++) {
        int y0, y1;
        double ly;
        bilinear_tap((double)(y + oy), ratio_y, bh, &y0, &y1, &ly);
        const unsigned char *r0 = bg->data + (size_t)y0 * bw * bc;
        const unsigned char *r1 = bg->data + (size_t)y1 * bw * bc;
        for (int x = 0; x < W; x++) {
            int x0, x1;
            double lx;
            bilinear_tap((double)(x + ox), ratio_x, bw, &x0, &x1, &lx);
            const size_t i = (size_t)y * W + x;
            unsigned char rgb[3];
            subject_rgb(img, m, i, rgb);
            const double alpha = pixel_alpha(img, m, i) / 255.0;
            for (int c = 0; c < 3; c++) {
                const int bcc = bc >= 3 ? c : 0;  /* gray replicated, alpha ignored */
                const double top = (1.0 - lx) * r0[(size_t)x0 * bc + bcc] + lx * r0[(size_t)x1 * bc + bcc];
                const double bottom = (1.0 - lx) * r1[(size_t)x0 * bc + bcc] + lx * r1[(size_t)x1 * bc + bcc];
                const double b = (1.0 - ly) * top + ly * bottom;
                out->data[i * 3 + c] = round_byte(rgb[c] * alpha + b * (1.0 - alpha));
            }
        }
    }
    return 0;
}

/* The original, all channels, cut to the mask's bbox grown by padding and
 * clamped to the image; the whole image when the mask is empty. */
static int render_crop(const u2net_image *img, const u2net_matte *m, int padding,
                       u2net_image *out, u2net_error *err)
{
    int64_t x0 = 0, y0 = 0, x1 = img->width, y1 = img->height;
    if (m->bbox_w > 0 && m->bbox_h > 0) {
        x0 = (int64_t)m->bbox_x - padding;
        y0 = (int64_t)m->bbox_y - padding;
        x1 = (int64_t)m->bbox_x + m->bbox_w + padding;
        y1 = (int64_t)m->bbox_y + m->bbox_h + padding;
        x0 = x0 < 0 ? 0 : x0;
        y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > img->width ? img->width : x1;
        y1 = y1 > img->height ? img->height : y1;
    }
    const int C = img->channels;
    const int rc = u2net_image_alloc(out, (int)(x1 - x0), (int)(y1 - y0), C, err);
    if (rc)
        return rc;
    for (int64_t y = y0; y < y1; y++)
        memcpy(out->data + (size_t)(y - y0) * out->width * C,
               img->data + ((size_t)y * img->width + (size_t)x0) * C, (size_t)out->width * C);
    return 0;
}

/* The blur sums a block of pixels at a time: the block's sums stay in L1
 * while every tap streams past them. */
#define BLUR_BLOCK 64

/* Horizontal pass of a Gaussian blur of the image's colour (gray
 * replicated): rows (H x W x 3 floats) = sum over taps k of weights[k] *
 * colour[clamp(x + k - radius)], in tap order. */
static int blur_rows(const u2net_image *img, const float *weights, int radius, float *rows,
                     int threads, u2net_error *err)
{
    const int W = img->width, H = img->height, taps = 2 * radius + 1;
    const size_t padded = 3 * ((size_t)W + 2 * (size_t)radius);
    float *scratch = malloc(padded * (size_t)threads * sizeof *scratch);
    if (!scratch) {
        set_error(err, U2NET_ENOMEM, "out of memory blurring a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    #pragma omp parallel num_threads(threads)
    {
        float *line = scratch + (size_t)thread_id() * padded;  /* (W + 2 radius) x 3 */
        #pragma omp for schedule(static)
        for (int y = 0; y < H; y++) {
            for (int i = 0; i < W + 2 * radius; i++) {
                const int x = i - radius;
                unsigned char rgb[3];
                pixel_rgb(img, (size_t)y * W + (x < 0 ? 0 : x >= W ? W - 1 : x), rgb);
                for (int c = 0; c < 3; c++)
                    line[(size_t)i * 3 + c] = rgb[c];
            }
            for (int x0 = 0; x0 < W; x0 += BLUR_BLOCK) {
                const int n = 3 * (W - x0 < BLUR_BLOCK ? W - x0 : BLUR_BLOCK);
                const float *src = line + (size_t)x0 * 3;
                float acc[3 * BLUR_BLOCK] = {0};
                for (int k = 0; k < taps; k++)
                    for (int j = 0; j < n; j++)
                        acc[j] += weights[k] * src[(size_t)k * 3 + j];
                memcpy(rows + ((size_t)y * W + x0) * 3, acc, (size_t)n * sizeof *acc);
            }
        }
    }
    free(scratch);
    return 0;
}

/* One highlight pixel: c a/255 + e (1 - a/255), c the subject's colour, e the
 * effect's (made from the image's own colours). */
static void highlight_pixel(const u2net_image *img, const u2net_matte *m, size_t i,
                            const double e[3], unsigned char *dst)
{
    unsigned char rgb[3];
    subject_rgb(img, m, i, rgb);
    const double alpha = pixel_alpha(img, m, i) / 255.0;
    for (int c = 0; c < 3; c++)
        dst[c] = round_byte(rgb[c] * alpha + e[c] * (1.0 - alpha));
}

/* Highlight: E is the colour dimmed (times 0.35), its luma replicated, or
 * its Gaussian blur: sigma = max(2, diagonal / 100), radius ceil(3
 * sigma), edges clamped, rows then columns in float. The column pass goes
 * a block of pixels at a time, so that the taps' rows of the block stay in
 * cache from one output row to the next, and blends as it goes. */
static int render_highlight(const u2net_image *img, const u2net_matte *m, u2net_highlight mode,
                            u2net_image *out, u2net_error *err)
{
    const int W = img->width, H = img->height;
    const int threads = max_threads();
    int rc = u2net_image_alloc(out, W, H, 3, err);
    if (rc)
        return rc;
    if (mode != U2NET_HIGHLIGHT_BLUR) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const size_t i = (size_t)y * W + x;
                unsigned char rgb[3];
                pixel_rgb(img, i, rgb);
                const double luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
                double e[3];
                for (int c = 0; c < 3; c++)
                    e[c] = mode == U2NET_HIGHLIGHT_DIM ? rgb[c] * HIGHLIGHT_DIM_FACTOR : luma;
                highlight_pixel(img, m, i, e, out->data + i * 3);
            }
        return 0;
    }
    const double sigma = fmax(HIGHLIGHT_MIN_SIGMA, sqrt((double)W * W + (double)H * H) / 100.0);
    const int radius = (int)ceil(3.0 * sigma), taps = 2 * radius + 1;
    const int blocks = (W + BLUR_BLOCK - 1) / BLUR_BLOCK;
    float *weights = malloc((size_t)taps * sizeof *weights);
    float *rows = malloc((size_t)W * H * 3 * sizeof *rows);  /* H x W x 3 */
    if (!weights || !rows) {
        set_error(err, U2NET_ENOMEM, "out of memory blurring a %dx%d image", W, H);
        rc = U2NET_ENOMEM;
        goto done;
    }
    double total = 0.0;
    for (int k = -radius; k <= radius; k++)
        total += exp(-(double)k * k / (2.0 * sigma * sigma));
    for (int k = -radius; k <= radius; k++)
        weights[k + radius] = (float)(exp(-(double)k * k / (2.0 * sigma * sigma)) / total);
    rc = blur_rows(img, weights, radius, rows, threads, err);
    if (rc)
        goto done;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int b = 0; b < blocks; b++) {
        const int x0 = b * BLUR_BLOCK;
        const int n = W - x0 < BLUR_BLOCK ? W - x0 : BLUR_BLOCK;
        for (int y = 0; y < H; y++) {
            float blurred[3 * BLUR_BLOCK] = {0};
            for (int k = 0; k < taps; k++) {
                const int sy = y + k - radius;
                const float *src = rows + ((size_t)(sy < 0 ? 0 : sy >= H ? H - 1 : sy) * W + x0) * 3;
                for (int j = 0; j < 3 * n; j++)
                    blurred[j] += weights[k] * src[j];
            }
            for (int j = 0; j < n; j++) {
                const size_t i = (size_t)y * W + x0 + j;
                const double e[3] = {blurred[3 * j], blurred[3 * j + 1], blurred[3 * j + 2]};
                highlight_pixel(img, m, i, e, out->data + i * 3);
            }
        }
    }
done:
    if (rc)
        u2net_image_free(out);
    free(weights);
    free(rows);
    return rc;
}

static int check_matte(const u2net_matte *m, const u2net_image *img, u2net_error *err)
{
    if (!m || !m->prob || !m->alpha || !m->mask) {
        set_error(err, U2NET_EARG, "the matte is missing (or has no prob/alpha/mask maps)");
        return U2NET_EARG;
    }
    if (m->width != img->width || m->height != img->height) {
        set_error(err, U2NET_EARG, "matte size %dx%d differs from the image's %dx%d", m->width,
                  m->height, img->width, img->height);
        return U2NET_EARG;
    }
    if (m->bbox_w < 0 || m->bbox_h < 0 ||
        (m->bbox_w > 0 && m->bbox_h > 0 &&
         (m->bbox_x < 0 || m->bbox_y < 0 || m->bbox_w > m->width - m->bbox_x ||
          m->bbox_h > m->height - m->bbox_y))) {
        set_error(err, U2NET_EARG, "matte bbox %d,%d %dx%d lies outside its %dx%d maps",
                  m->bbox_x, m->bbox_y, m->bbox_w, m->bbox_h, m->width, m->height);
        return U2NET_EARG;
    }
    return 0;
}

int u2net_render(const u2net_image *img, const u2net_matte *m, u2net_output_type t,
                 const u2net_render_opts *o, u2net_image *out, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!out) {
        set_error(err, U2NET_EARG, "u2net_render: out is NULL");
        return U2NET_EARG;
    }
    memset(out, 0, sizeof *out);
    int rc = check_image(img, "the input image", err);
    if (rc)
        return rc;
    rc = check_matte(m, img, err);
    if (rc)
        return rc;
    if (t == U2NET_OUT_BBOX) {
        set_error(err, U2NET_EARG, "the bbox output is JSON text, not an image: use u2net_bbox_json");
        return U2NET_EARG;
    }
    if ((int)t < 0 || t >= U2NET_OUT_COUNT) {
        set_error(err, U2NET_EARG, "unknown output type %d", (int)t);
        return U2NET_EARG;
    }
    u2net_render_opts defaults;
    if (!o) {
        u2net_render_opts_default(&defaults);
        o = &defaults;
    }
    if (o->padding < 0) {
        set_error(err, U2NET_EARG, "crop padding %d is negative", o->padding);
        return U2NET_EARG;
    }
    if (o->highlight < U2NET_HIGHLIGHT_DIM || o->highlight > U2NET_HIGHLIGHT_BLUR) {
        set_error(err, U2NET_EARG, "unknown highlight mode %d", (int)o->highlight);
        return U2NET_EARG;
    }
    if (t == U2NET_OUT_COMPOSITE && o->background) {
        rc = check_image(o->background, "the background image", err);
        if (rc)
            return rc;
    }
    /* the cutout on black is the composite over black */
    static const unsigned char black[3] = {0, 0, 0};
    switch (t) {
    case U2NET_OUT_PROB: return render_map(img, m->prob, out, err);
    case U2NET_OUT_MASK: return render_map(img, m->mask, out, err);
    case U2NET_OUT_RGBA: return render_rgba(img, m, out, err);
    case U2NET_OUT_RGB: return render_over_colour(img, m, black, out, err);
    case U2NET_OUT_COMPOSITE:
        return o->background ? render_over_image(img, m, o->background, out, err)
                             : render_over_colour(img, m, o->background_rgb, out, err);
    case U2NET_OUT_CROP: return render_crop(img, m, o->padding, out, err);
    case U2NET_OUT_HIGHLIGHT: return render_highlight(img, m, o->highlight, out, err);
    default: return U2NET_EARG;  /* BBOX and out-of-range types are refused above */
    }
}

/* name as a JSON string (quotes, backslash and control characters escaped,
 * other bytes as they are) into dst, NUL-terminated; returns its length
 * without the NUL. With dst NULL it only measures. */
static size_t json_string(const char *name, char *dst)
{
    size_t len = 0;
    if (dst)
        dst[len] = '"';
    len++;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        char esc[6];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, n = 2;
        } else if (*p < 0x20) {
            const char *hex = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4], esc[5] = hex[*p & 15], n = 6;
        } else {
            esc[0] = (char)*p, n = 1;
        }
        if (dst)
            memcpy(dst + len, esc, n);
        len += n;
    }
    if (dst) {
        dst[len] = '"';
        dst[len + 1] = 0;
    }
    return len + 1;
}

static int format_bbox_json(char *buf, size_t cap, const u2net_matte *m, const char *name_json)
{
    char bbox[128] = "null";
    if (m->bbox_w > 0 && m->bbox_h > 0)
        snprintf(bbox, sizeof bbox, "{\"x\": %d, \"y\": %d, \"w\": %d, \"h\": %d}", m->bbox_x,
                 m->bbox_y, m->bbox_w, m->bbox_h);
    const double pixels = (double)m->width * m->height;
    const double fraction = pixels > 0 ? (double)m->area / pixels : 0.0;
    return snprintf(buf, cap,
                    "{\"image\": %s, \"width\": %d, \"height\": %d, \"bbox\": %s, \"area\": %zu, "
                    "\"area_fraction\": %.6f, \"mean_probability\": %.6f}\n",
                    name_json, m->width, m->height, bbox, m->area, fraction, m->mean_prob);
}

char *u2net_bbox_json(const u2net_matte *m, const char *name)
{
    if (!m)
        return NULL;
    char *name_json = NULL;
    if (name) {
        name_json = malloc(json_string(name, NULL) + 1);
        if (!name_json)
            return NULL;
        json_string(name, name_json);
    }
    const char *shown = name_json ? name_json : "null";
    const int len = format_bbox_json(NULL, 0, m, shown);
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (text)
        format_bbox_json(text, (size_t)len + 1, m, shown);
    free(name_json);
    return text;
}
