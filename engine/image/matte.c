/* matte.c - the matte of an image from its probability map: the clean
 * edges (guided refinement, alpha matting: guided_filter.c,
 * alpha_matting.c), trimap refinement, grey-level morphology, the binary
 * mask, the largest connected subject, feathering, the mask's bounding box,
 * and the estimated foreground colours (foreground.c). Every map here is
 * width*height bytes, row-major, no padding. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "error.h"
#include "guided_filter.h"
#include "image_internal.h"

#define MORPH_MAX_RADIUS 1000
#define FEATHER_MAX 1000.0f

/* Flags of the connected-component pass, one byte per pixel. */
enum {
    FLAG_SEEN = 1,  /* visited while measuring the mask's components */
    FLAG_KEPT = 2,  /* in the largest mask component */
    FLAG_HALO = 4   /* in a component of {alpha > 0} touching the kept one */
};

void u2net_mask_opts_default(u2net_mask_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->net_width = 0;
    o->net_height = 0;
    o->resize = U2NET_RESIZE_BILINEAR;
    o->threshold = 0.5f;
    o->refine = 0;
    o->fg_threshold = 240;
    o->bg_threshold = 15;
    o->morph = U2NET_MORPH_NONE;
    o->morph_radius = 1;
    o->largest_component = 0;
    o->feather = 0.0f;
    o->alpha_from_mask = 0;
    o->guided = 0;
    o->guided_radius = 0;
    o->guided_eps = 1e-4f;
    o->alpha_matting = 0;
    o->matting_fg_threshold = 240;
    o->matting_bg_threshold = 10;
    o->erode_size = 10;
    o->foreground = U2NET_FOREGROUND_AUTO;
}

void u2net_matte_free(u2net_matte *m)
{
    if (!m)
        return;
    free(m->prob);
    free(m->alpha);
    free(m->mask);
    free(m->foreground);
    memset(m, 0, sizeof *m);
}

/* Only the options this post-processing uses are checked: the network size
 * and resize filter belong to u2net_matte_image. */
static int check_opts(const u2net_mask_opts *o, u2net_error *err)
{
    if (!(o->threshold >= 0.0f && o->threshold <= 1.0f)) {
        set_error(err, U2NET_EARG, "mask threshold %g is not in 0..1", (double)o->threshold);
        return U2NET_EARG;
    }
    if (o->refine && !(o->bg_threshold >= 0 && o->bg_threshold < o->fg_threshold &&
                       o->fg_threshold <= 255)) {
        set_error(err, U2NET_EARG,
                  "refine thresholds need 0 <= bg < fg <= 255 (bg %d, fg %d)",
                  o->bg_threshold, o->fg_threshold);
        return U2NET_EARG;
    }
    if (o->morph < U2NET_MORPH_NONE || o->morph > U2NET_MORPH_OPEN_CLOSE) {
        set_error(err, U2NET_EARG, "unknown morphology operation %d", (int)o->morph);
        return U2NET_EARG;
    }
    if (o->morph != U2NET_MORPH_NONE &&
        (o->morph_radius < 1 || o->morph_radius > MORPH_MAX_RADIUS)) {
        set_error(err, U2NET_EARG, "morphology radius %d is not in 1..%d", o->morph_radius,
                  MORPH_MAX_RADIUS);
        return U2NET_EARG;
    }
    if (!(o->feather >= 0.0f && o->feather <= FEATHER_MAX)) {
        set_error(err, U2NET_EARG, "feather %g is not in 0..%g", (double)o->feather,
                  (double)FEATHER_MAX);
        return U2NET_EARG;
    }
    if (o->guided && (o->guided_radius < 0 || o->guided_radius > U2NET_GUIDED_MAX_RADIUS ||
                      !(o->guided_eps > 0.0f && o->guided_eps <= 1.0f))) {
        set_error(err, U2NET_EARG, "guided refinement needs a radius in 0..%d and eps in (0, 1] "
                  "(radius %d, eps %g)", U2NET_GUIDED_MAX_RADIUS, o->guided_radius,
                  (double)o->guided_eps);
        return U2NET_EARG;
    }
    if (o->alpha_matting &&
        !(o->matting_bg_threshold >= 0 && o->matting_bg_threshold <= o->matting_fg_threshold &&
          o->matting_fg_threshold <= 255 && o->erode_size >= 0 &&
          o->erode_size <= U2NET_MAX_ERODE_SIZE)) {
        set_error(err, U2NET_EARG, "alpha matting needs 0 <= bg <= fg <= 255 and an erode size "
                  "in 0..%d (bg %d, fg %d, erode %d)", U2NET_MAX_ERODE_SIZE,
                  o->matting_bg_threshold, o->matting_fg_threshold, o->erode_size);
        return U2NET_EARG;
    }
    if (o->foreground < U2NET_FOREGROUND_AUTO || o->foreground > U2NET_FOREGROUND_ESTIMATE) {
        set_error(err, U2NET_EARG, "unknown foreground choice %d", (int)o->foreground);
        return U2NET_EARG;
    }
    return 0;
}

/* floor(255 v + 1/2) clamped to a byte (clamped first, the truncation is
 * the floor, and the loops calling it vectorise). */
static inline unsigned char float_to_byte(float v)
{
    float b = v * 255.0f + 0.5f;
    b = b < 0.0f ? 0.0f : b > 255.0f ? 255.0f : b;
    return (unsigned char)(int)b;
}

/* Guided refinement of alpha (w x h) in place, guided by img. */
static int guided_alpha(unsigned char *alpha, const u2net_image *img, const u2net_mask_opts *o,
                        u2net_error *err)
{
    const int net = o->net_width > o->net_height ? o->net_width : o->net_height;
    int radius, subsample;
    u2net_guided_params(img->width, img->height, net, o->guided_radius, &radius, &subsample);
    return guided_filter_bytes(img, alpha, radius, o->guided_eps, subsample, alpha, err);
}

/* rembg's alpha matting of alpha (w x h) in place: its trimap, then
 * closed-form matting of the unknown band starting from alpha itself. */
static int matte_alpha(unsigned char *alpha, const u2net_image *img, const u2net_mask_opts *o,
                       u2net_error *err)
{
    const int w = img->width, h = img->height;
    const size_t n = (size_t)w * h;
    unsigned char *trimap = malloc(n);
    float *init = malloc(n * sizeof *init), *solved = malloc(n * sizeof *solved);
    int rc = !trimap || !init || !solved ? U2NET_ENOMEM : 0;
    if (rc)
        set_error(err, rc, "out of memory for alpha matting of a %dx%d image", w, h);
    if (!rc)
        rc = u2net_trimap(alpha, w, h, o->matting_fg_threshold, o->matting_bg_threshold,
                          o->erode_size, trimap, err);
    if (!rc) {
        for (size_t i = 0; i < n; i++)
            init[i] = alpha[i] * (1.0f / 255.0f);
        rc = u2net_alpha_matting(img, trimap, init, solved, err);
    }
    if (!rc)
        for (size_t i = 0; i < n; i++)
            alpha[i] = float_to_byte(solved[i]);
    free(trimap), free(init), free(solved);
    return rc;
}

/* m->foreground: the colours estimated from img and the final alpha. */
static int estimate_foreground(u2net_matte *m, const u2net_image *img, u2net_error *err)
{
    const size_t n = (size_t)m->width * m->height;
    float *alpha = malloc(n * sizeof *alpha), *fg = malloc(3 * n * sizeof *fg);
    m->foreground = malloc(3 * n);
    int rc = !alpha || !fg || !m->foreground ? U2NET_ENOMEM : 0;
    if (rc) {
        set_error(err, rc, "out of memory estimating the foreground of a %dx%d image",
                  m->width, m->height);
    } else {
        for (size_t i = 0; i < n; i++)
            alpha[i] = m->alpha[i] * (1.0f / 255.0f);
        rc = u2net_estimate_foreground(img, alpha, fg, err);
    }
    if (!rc)
        for (size_t i = 0; i < 3 * n; i++)
            m->foreground[i] = float_to_byte(fg[i]);
    free(alpha), free(fg);
    return rc;
}

/* Trimap refinement: certain foreground (p >= fg) becomes 255, certain
 * background (p <= bg) 0, and the band between is stretched linearly,
 * rounded half up: floor((p - bg) * 255 / (fg - bg) + 1/2) in integers. */
static void refine_alpha(unsigned char *alpha, size_t n, int fg, int bg)
{
    const int span = fg - bg;
    for (size_t i = 0; i < n; i++) {
        const int p = alpha[i];
        if (p >= fg)
            alpha[i] = 255;
        else if (p <= bg)
            alpha[i] = 0;
        else
            alpha[i] = (unsigned char)(((p - bg) * 510 + span) / (2 * span));
    }
}

/* dst[j] = min or max of a[j], b[j] for j < lanes; inlined, so the choice
 * is made once per call and the loop vectorises. */
static inline void combine(unsigned char *dst, const unsigned char *a, const unsigned char *b,
                           size_t lanes, int dilate)
{
    if (dilate)
        for (size_t j = 0; j < lanes; j++)
            dst[j] = a[j] > b[j] ? a[j] : b[j];
    else
        for (size_t j = 0; j < lanes; j++)
            dst[j] = a[j] < b[j] ? a[j] : b[j];
}

/* A min (erode) or max (dilate) filter over [i - r, i + r], clipped to the
 * line, along `lanes` parallel lines at once, by van Herk / Gil-Werman:
 * O(1) per sample for any r. Sample i of lane j is src[i * src_step + j]
 * (and dst[i * dst_step + j]); n samples per lane. The lines are padded
 * with r neutral samples each side (255 for min, 0 for max), the same as
 * clipping the window. scratch: 3 * (n + 2r) * lanes bytes, each part
 * [n + 2r][lanes]: the padded lines, then the running extremum from each
 * block's start, then from each block's end, for blocks of 2r + 1 samples. */
static void minmax_lines(const unsigned char *src, size_t src_step, unsigned char *dst,
                         size_t dst_step, int n, size_t lanes, int r, int dilate,
                         unsigned char *scratch)
{
    const int len = n + 2 * r, k = 2 * r + 1;
    unsigned char *pad = scratch;
    unsigned char *from_start = pad + (size_t)len * lanes;
    unsigned char *from_end = from_start + (size_t)len * lanes;
    const unsigned char neutral = dilate ? 0 : 255;
    memset(pad, neutral, (size_t)r * lanes);
    for (int i = 0; i < n; i++)
        memcpy(pad + (size_t)(r + i) * lanes, src + (size_t)i * src_step, lanes);
    memset(pad + (size_t)(r + n) * lanes, neutral, (size_t)r * lanes);
    for (int s = 0; s < len; s += k) {
        const int e = s + k < len ? s + k : len;
        memcpy(from_start + (size_t)s * lanes, pad + (size_t)s * lanes, lanes);
        for (int i = s + 1; i < e; i++)
            combine(from_start + (size_t)i * lanes, from_start + (size_t)(i - 1) * lanes,
                    pad + (size_t)i * lanes, lanes, dilate);
        memcpy(from_end + (size_t)(e - 1) * lanes, pad + (size_t)(e - 1) * lanes, lanes);
        for (int i = e - 2; i >= s; i--)
            combine(from_end + (size_t)i * lanes, from_end + (size_t)(i + 1) * lanes,
                    pad + (size_t)i * lanes, lanes, dilate);
    }
    /* The window pad[i .. i + 2r] spans at most two blocks: the tail of the
     * one holding i and the head of the one holding i + 2r. */
    for (int i = 0; i < n; i++)
        combine(dst + (size_t)i * dst_step, from_end + (size_t)i * lanes,
                from_start + (size_t)(i + k - 1) * lanes, lanes, dilate);
}

/* Columns are filtered MORPH_LANES at a time: one cache line of each row. */
#define MORPH_LANES 64

static size_t minmax_scratch_bytes(int w, int h, int r)
{
    const size_t row = 3 * ((size_t)w + 2 * (size_t)r);
    const size_t column = 3 * ((size_t)h + 2 * (size_t)r) * MORPH_LANES;
    return row > column ? row : column;
}

/* Erosion or dilation of map (w x h) in place with a (2r+1)^2 square,
 * separably: rows into tmp (w x h), then columns back into map.
 * scratch: threads * minmax_scratch_bytes(w, h, r). */
static void minmax_2d(unsigned char *map, unsigned char *tmp, int w, int h, int r, int dilate,
                      unsigned char *scratch, int threads)
{
    const size_t per_thread = minmax_scratch_bytes(w, h, r);
    const int strips = (w + MORPH_LANES - 1) / MORPH_LANES;
    #pragma omp parallel num_threads(threads)
    {
        unsigned char *mine = scratch + (size_t)thread_id() * per_thread;
        #pragma omp for schedule(static)
        for (int y = 0; y < h; y++)
            minmax_lines(map + (size_t)y * w, 1, tmp + (size_t)y * w, 1, w, 1, r, dilate, mine);
        #pragma omp for schedule(static)
        for (int strip = 0; strip < strips; strip++) {
            const int x = strip * MORPH_LANES;
            const size_t lanes = (size_t)(w - x < MORPH_LANES ? w - x : MORPH_LANES);
            minmax_lines(tmp + x, (size_t)w, map + x, (size_t)w, h, lanes, r, dilate, mine);
        }
    }
}

/* Grey-level opening / closing of alpha (w x h) in place. */
static int morph_alpha(unsigned char *alpha, int w, int h, u2net_morph op, int r,
                       u2net_error *err)
{
    const int threads = max_threads();
    unsigned char *tmp = malloc((size_t)w * h);
    unsigned char *scratch = malloc(minmax_scratch_bytes(w, h, r) * (size_t)threads);
    if (!tmp || !scratch) {
        free(tmp);
        free(scratch);
        set_error(err, U2NET_ENOMEM, "out of memory for morphology on a %dx%d map", w, h);
        return U2NET_ENOMEM;
    }
    if (op == U2NET_MORPH_OPEN || op == U2NET_MORPH_OPEN_CLOSE) {
        minmax_2d(alpha, tmp, w, h, r, 0, scratch, threads);
        minmax_2d(alpha, tmp, w, h, r, 1, scratch, threads);
    }
    if (op == U2NET_MORPH_CLOSE || op == U2NET_MORPH_OPEN_CLOSE) {
        minmax_2d(alpha, tmp, w, h, r, 1, scratch, threads);
        minmax_2d(alpha, tmp, w, h, r, 0, scratch, threads);
    }
    free(tmp);
    free(scratch);
    return 0;
}

/* A pending scanline seed of the flood fill. */
typedef struct {
    int x, y;
} seed;

typedef struct {
    seed *items;
    size_t count, cap;
} seed_stack;

static int push_seed(seed_stack *s, int x, int y)
{
    if (s->count == s->cap) {
        const size_t cap = s->cap ? 2 * s->cap : 1024;
        seed *grown = realloc(s->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        s->items = grown;
        s->cap = cap;
    }
    s->items[s->count].x = x;
    s->items[s->count].y = y;
    s->count++;
    return 0;
}

/* Sets `bit` in flags over the 8-connected region of nonzero src pixels that
 * contains (x0, y0), one horizontal run at a time (no recursion: the stack
 * holds run seeds of the rows above and below). Returns the number of
 * pixels newly marked, or -1 when the stack cannot grow. */
static int64_t fill_region(const unsigned char *src, unsigned char *flags, unsigned char bit,
                           int w, int h, int x0, int y0, seed_stack *stack)
{
    int64_t filled = 0;
    stack->count = 0;
    if (push_seed(stack, x0, y0))
        return -1;
    while (stack->count) {
        const seed s = stack->items[--stack->count];
        const size_t row = (size_t)s.y * w;
        if (!src[row + s.x] || (flags[row + s.x] & bit))
            continue;
        int xl = s.x, xr = s.x;
        while (xl > 0 && src[row + xl - 1] && !(flags[row + xl - 1] & bit))
            xl--;
        while (xr < w - 1 && src[row + xr + 1] && !(flags[row + xr + 1] & bit))
            xr++;
        for (int x = xl; x <= xr; x++)
            flags[row + x] |= bit;
        filled += xr - xl + 1;
        /* 8-connected: a pixel of a neighbouring row touches the run when it
         * lies in [xl - 1, xr + 1]; one seed per open run there. */
        for (int ny = s.y - 1; ny <= s.y + 1; ny += 2) {
            if (ny < 0 || ny >= h)
                continue;
            const size_t nrow = (size_t)ny * w;
            const int end = xr + 1 < w ? xr + 1 : w - 1;
            int x = xl > 0 ? xl - 1 : 0;
            while (x <= end) {
                if (src[nrow + x] && !(flags[nrow + x] & bit)) {
                    if (push_seed(stack, x, ny))
                        return -1;
                    while (x <= end && src[nrow + x] && !(flags[nrow + x] & bit))
                        x++;
                } else {
                    x++;
                }
            }
        }
    }
    return filled;
}

/* Keeps the largest 8-connected component of the mask (the first met in
 * raster order on a tie), and the alpha only over the components of
 * {alpha > 0} that meet it. An empty mask is left as it is. */
static int keep_largest_component(unsigned char *alpha, unsigned char *mask, int w, int h,
                                  u2net_error *err)
{
    const size_t n = (size_t)w * h;
    unsigned char *flags = calloc(n, 1);
    seed_stack stack = {0};
    int rc = 0;
    if (!flags) {
        rc = U2NET_ENOMEM;
        goto done;
    }
    int64_t best = 0;
    int best_x = 0, best_y = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            if (!mask[i] || (flags[i] & FLAG_SEEN))
                continue;
            const int64_t size = fill_region(mask, flags, FLAG_SEEN, w, h, x, y, &stack);
            if (size < 0) {
                rc = U2NET_ENOMEM;
                goto done;
            }
            if (size > best)
                best = size, best_x = x, best_y = y;
        }
    if (best == 0)
        goto done;
    if (fill_region(mask, flags, FLAG_KEPT, w, h, best_x, best_y, &stack) < 0) {
        rc = U2NET_ENOMEM;
        goto done;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            if ((flags[i] & FLAG_KEPT) && alpha[i] && !(flags[i] & FLAG_HALO) &&
                fill_region(alpha, flags, FLAG_HALO, w, h, x, y, &stack) < 0) {
                rc = U2NET_ENOMEM;
                goto done;
            }
        }
    for (size_t i = 0; i < n; i++) {
        mask[i] = (flags[i] & FLAG_KEPT) ? 255 : 0;
        if (!(flags[i] & FLAG_HALO))
            alpha[i] = 0;
    }
done:
    if (rc)
        set_error(err, U2NET_ENOMEM, "out of memory for connected components of a %dx%d map",
                  w, h);
    free(flags);
    free(stack.items);
    return rc;
}

/* Outputs summed per block: the block's sums stay in L1 while every tap
 * streams past them. */
#define BLUR_BLOCK 256

/* Gaussian blur of alpha in place, sigma = feather / 2, radius
 * ceil(3 sigma), edges clamped: rows into a float map, then columns; each
 * output is the float sum over taps -r..r in that order, rounded half up. */
static int feather_alpha(unsigned char *alpha, int w, int h, float feather, u2net_error *err)
{
    const double sigma = (double)feather / 2.0;
    const int radius = (int)ceil(3.0 * sigma);
    const int taps = 2 * radius + 1;
    const int threads = max_threads();
    const size_t padded = (size_t)w + 2 * (size_t)radius;
    const int blocks = (int)(((size_t)w + BLUR_BLOCK - 1) / BLUR_BLOCK);
    float *weights = malloc((size_t)taps * sizeof *weights);
    float *rows = malloc((size_t)w * h * sizeof *rows);                   /* h x w */
    float *scratch = malloc(padded * (size_t)threads * sizeof *scratch);  /* a line each */
    if (!weights || !rows || !scratch) {
        free(weights);
        free(rows);
        free(scratch);
        set_error(err, U2NET_ENOMEM, "out of memory feathering a %dx%d map", w, h);
        return U2NET_ENOMEM;
    }
    double total = 0.0;
    for (int k = -radius; k <= radius; k++)
        total += exp(-(double)k * k / (2.0 * sigma * sigma));
    for (int k = -radius; k <= radius; k++)
        weights[k + radius] = (float)(exp(-(double)k * k / (2.0 * sigma * sigma)) / total);

    #pragma omp parallel num_threads(threads)
    {
        /* Rows: line is row y with radius clamped samples each side. */
        float *line = scratch + (size_t)thread_id() * padded;
        #pragma omp for schedule(static)
        for (int y = 0; y < h; y++) {
            const unsigned char *src = alpha + (size_t)y * w;
            for (int i = 0; i < w + 2 * radius; i++) {
                const int x = i - radius;
                line[i] = src[x < 0 ? 0 : x >= w ? w - 1 : x];
            }
            for (int x0 = 0; x0 < w; x0 += BLUR_BLOCK) {
                const int n = w - x0 < BLUR_BLOCK ? w - x0 : BLUR_BLOCK;
                float acc[BLUR_BLOCK] = {0};
                for (int k = 0; k < taps; k++)
                    for (int j = 0; j < n; j++)
                        acc[j] += weights[k] * line[x0 + j + k];
                memcpy(rows + (size_t)y * w + x0, acc, (size_t)n * sizeof *acc);
            }
        }
        /* Columns, a block of columns at a time so that the taps' rows of
         * the block stay in cache from one output row to the next. */
        #pragma omp for schedule(static)
        for (int b = 0; b < blocks; b++) {
            const int x0 = b * BLUR_BLOCK;
            const int n = w - x0 < BLUR_BLOCK ? w - x0 : BLUR_BLOCK;
            for (int y = 0; y < h; y++) {
                float acc[BLUR_BLOCK] = {0};
                for (int k = 0; k < taps; k++) {
                    const int sy = y + k - radius;
                    const float *src = rows + (size_t)(sy < 0 ? 0 : sy >= h ? h - 1 : sy) * w + x0;
                    for (int j = 0; j < n; j++)
                        acc[j] += weights[k] * src[j];
                }
                unsigned char *dst = alpha + (size_t)y * w + x0;
                for (int j = 0; j < n; j++) {
                    const double v = floor((double)acc[j] + 0.5);
                    dst[j] = (unsigned char)(v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v);
                }
            }
        }
    }
    free(weights);
    free(rows);
    free(scratch);
    return 0;
}

/* The mask's bounding box, pixel count, and mean prob/255 over the box. */
static void measure_mask(u2net_matte *m)
{
    const int w = m->width, h = m->height;
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    size_t area = 0;
    for (int y = 0; y < h; y++) {
        const unsigned char *row = m->mask + (size_t)y * w;
        for (int x = 0; x < w; x++)
            if (row[x]) {
                area++;
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y;
            }
    }
    m->area = area;
    if (!area)
        return;
    m->bbox_x = x0;
    m->bbox_y = y0;
    m->bbox_w = x1 - x0 + 1;
    m->bbox_h = y1 - y0 + 1;
    uint64_t sum = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            sum += m->prob[(size_t)y * w + x];
    m->mean_prob = (double)sum / ((double)m->bbox_w * m->bbox_h) / 255.0;
}

/* u2net_matte_from_prob and u2net_matte_from_prob_image: img is NULL for
 * the first. */
static int matte_from_prob(const unsigned char *prob, int width, int height,
                           const u2net_image *img, const u2net_mask_opts *o, u2net_matte *out,
                           u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (out)
        memset(out, 0, sizeof *out);
    if (!prob || !out) {
        set_error(err, U2NET_EARG, "u2net_matte_from_prob: %s is NULL", prob ? "out" : "prob");
        return U2NET_EARG;
    }
    if (width < 1 || height < 1 || width > U2NET_MAX_IMAGE_SIDE || height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)width * height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "matte size %dx%d is not supported (sides 1..%d, at most %llu pixels)",
                  width, height, U2NET_MAX_IMAGE_SIDE, (unsigned long long)U2NET_MAX_IMAGE_PIXELS);
        return U2NET_EARG;
    }
    u2net_mask_opts defaults;
    if (!o) {
        u2net_mask_opts_default(&defaults);
        o = &defaults;
    }
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    const int estimate = o->foreground == U2NET_FOREGROUND_ESTIMATE ||
                         (o->foreground == U2NET_FOREGROUND_AUTO && (o->guided || o->alpha_matting));
    if (!img && (o->guided || o->alpha_matting || estimate)) {
        set_error(err, U2NET_EARG, "guided refinement, alpha matting and foreground estimation "
                  "need the image: use u2net_matte_from_prob_image");
        return U2NET_EARG;
    }

    const size_t n = (size_t)width * height;
    out->width = width;
    out->height = height;
    out->prob = malloc(n);
    out->alpha = malloc(n);
    out->mask = malloc(n);
    if (!out->prob || !out->alpha || !out->mask) {
        set_error(err, U2NET_ENOMEM, "out of memory for a %dx%d matte", width, height);
        rc = U2NET_ENOMEM;
        goto fail;
    }
    memcpy(out->prob, prob, n);
    memcpy(out->alpha, prob, n);
    if (o->guided) {
        rc = guided_alpha(out->alpha, img, o, err);
        if (rc)
            goto fail;
    }
    if (o->alpha_matting) {
        rc = matte_alpha(out->alpha, img, o, err);
        if (rc)
            goto fail;
    }
    if (o->refine)
        refine_alpha(out->alpha, n, o->fg_threshold, o->bg_threshold);
    if (o->morph != U2NET_MORPH_NONE) {
        rc = morph_alpha(out->alpha, width, height, o->morph, o->morph_radius, err);
        if (rc)
            goto fail;
    }
    const int threshold = (int)lround(o->threshold * 255);
    for (size_t i = 0; i < n; i++)
        out->mask[i] = out->alpha[i] >= threshold ? 255 : 0;
    if (o->largest_component) {
        rc = keep_largest_component(out->alpha, out->mask, width, height, err);
        if (rc)
            goto fail;
    }
    if (o->alpha_from_mask)
        memcpy(out->alpha, out->mask, n);
    if (o->feather > 0.0f) {
        rc = feather_alpha(out->alpha, width, height, o->feather, err);
        if (rc)
            goto fail;
    }
    if (estimate) {
        rc = estimate_foreground(out, img, err);
        if (rc)
            goto fail;
    }
    measure_mask(out);
    return 0;
fail:
    u2net_matte_free(out);
    return rc;
}

int u2net_matte_from_prob(const unsigned char *prob, int width, int height,
                          const u2net_mask_opts *o, u2net_matte *out, u2net_error *err)
{
    return matte_from_prob(prob, width, height, NULL, o, out, err);
}

int u2net_matte_from_prob_image(const unsigned char *prob, const u2net_image *img,
                                const u2net_mask_opts *o, u2net_matte *out, u2net_error *err)
{
    if (!img || !img->data || img->channels < 1 || img->channels > 4) {
        if (err)
            err->code = 0, err->msg[0] = 0;
        if (out)
            memset(out, 0, sizeof *out);
        set_error(err, U2NET_EARG, "u2net_matte_from_prob_image: no image (need data and 1..4 "
                  "channels)");
        return U2NET_EARG;
    }
    return matte_from_prob(prob, img->width, img->height, img, o, out, err);
}
