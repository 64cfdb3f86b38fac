/* foreground.c - the foreground colours of an image given its alpha: the
 * multi-level estimation of Germer, Uelwer, Conrad and Harmeling (2020), as
 * pymatting's estimate_foreground_ml defines it (regularisation 1e-5,
 * gradient weight 1, 10 iterations on levels of at most 32x32, 2 above).
 *
 * Per pixel, with alpha a and colour I (0..1), F and B minimise
 *   (a F + (1 - a) B - I)^2 + sum over the 4 neighbours n of
 *   (1e-5 + |a - a_n|) ((F - F_n)^2 + (B - B_n)^2),
 * a 2x2 system per channel solved with the neighbours held, F and B
 * clipped to 0..1. Levels go from 1x1 to the image, level l of L =
 * ceil(log2(longer side)) being round(W^(l/L)) x round(H^(l/L)); image,
 * alpha and the previous level's F and B are resized to it by nearest
 * neighbour (source index x * w_src / w_dst); F and B start at the mean
 * colour of a > 0.9 and a < 0.1.
 *
 * The pixels are updated in raster order, each seeing the ones before it
 * already updated (Gauss-Seidel), as pymatting does, in its arithmetic: the
 * result is pymatting's to float rounding. That order is sequential along
 * a row and down the image, so the threads take rows in turn and run a
 * wavefront (sweep); the result does not depend on their number. */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_internal.h"

#define FG_REGULARIZATION 1e-5f
#define FG_GRADIENT_WEIGHT 1.0f
#define FG_SMALL_SIZE 32
#define FG_SMALL_ITERATIONS 10
#define FG_BIG_ITERATIONS 2

/* Columns a thread updates before telling the row below. */
#define FG_CHUNK 128
/* Levels smaller than this run on one thread: there the threads' waits
 * (the wavefront's, and each loop's end) cost more than they share. */
#define FG_THREADED_PIXELS (1 << 18)

/* One pixel's update, pixel i with neighbours nb (left, right, up, down,
 * clamped to the level), in pymatting's arithmetic (numba's types: the
 * 1 - a terms and the 2x2 inverse in double, the rest in float). */
static inline void update_pixel(const float *restrict colour, const float *restrict alpha,
                                float *restrict f, float *restrict b, size_t i, const size_t nb[4])
{
    const float a0 = alpha[i];
    const double a1 = 1.0 - a0;
    float a00 = a0 * a0;
    const double a01 = a0 * a1;
    double a11 = a1 * a1;
    float bf[3], bb[3];
    for (int c = 0; c < 3; c++) {
        bf[c] = a0 * colour[i * 3 + c];
        bb[c] = (float)(a1 * colour[i * 3 + c]);
    }
    for (int d = 0; d < 4; d++) {
        const size_t j = nb[d];
        const float da = FG_REGULARIZATION + FG_GRADIENT_WEIGHT * fabsf(a0 - alpha[j]);
        a00 += da;
        a11 += da;
        for (int c = 0; c < 3; c++) {
            bf[c] += da * f[j * 3 + c];
            bb[c] += da * b[j * 3 + c];
        }
    }
    const double inv_det = 1.0 / (a00 * a11 - a01 * a01);
    const double m00 = inv_det * a11, m01 = inv_det * -a01, m11 = inv_det * a00;
    for (int c = 0; c < 3; c++) {
        double fc = m00 * bf[c] + m01 * bb[c];
        double bc = m01 * bf[c] + m11 * bb[c];
        fc = fc > 1.0 ? 1.0 : fc;
        bc = bc > 1.0 ? 1.0 : bc;
        f[i * 3 + c] = (float)(fc < 0.0 ? 0.0 : fc);
        b[i * 3 + c] = (float)(bc < 0.0 ? 0.0 : bc);
    }
}

/* One sweep over a w x h level in raster order: colour [h, w, 3], alpha
 * [h, w]; F and B [h, w, 3] updated in place. Row y goes to thread
 * y mod threads, which updates a chunk of it once the row above has
 * passed the chunk (progress: columns done per row); the row below cannot
 * pass it, so each pixel sees the pixels before it updated and those after
 * it not, as in one raster pass. */
static void sweep(const float *colour, const float *alpha, float *f, float *b, int w, int h,
                  atomic_int *progress, int threads)
{
    for (int y = 0; y < h; y++)
        atomic_store_explicit(&progress[y], 0, memory_order_relaxed);
    #pragma omp parallel num_threads(threads)
    {
        int team = 1, me = 0;
#ifdef _OPENMP
        team = omp_get_num_threads(), me = omp_get_thread_num();
#endif
        for (int y = me; y < h; y += team)
            for (int x0 = 0; x0 < w; x0 += FG_CHUNK) {
                const int x1 = x0 + FG_CHUNK < w ? x0 + FG_CHUNK : w;
                if (y > 0)
                    for (int spins = 0;
                         atomic_load_explicit(&progress[y - 1], memory_order_acquire) < x1;
                         spins++)
                        if (spins > 256)
                            sched_yield();
                const size_t row = (size_t)y * w;
                const size_t up = (size_t)(y > 0 ? y - 1 : 0) * w;
                const size_t down = (size_t)(y < h - 1 ? y + 1 : h - 1) * w;
                for (int x = x0; x < x1; x++) {
                    const size_t nb[4] = {row + (size_t)(x > 0 ? x - 1 : 0),
                                          row + (size_t)(x < w - 1 ? x + 1 : w - 1),
                                          up + (size_t)x, down + (size_t)x};
                    update_pixel(colour, alpha, f, b, row + (size_t)x, nb);
                }
                atomic_store_explicit(&progress[y], x1, memory_order_release);
            }
    }
}

int u2net_estimate_foreground(const u2net_image *img, const float *alpha, float *foreground,
                              u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!img || !img->data || !alpha || !foreground || img->width < 1 || img->height < 1 ||
        img->channels < 1 || img->channels > 4 || img->width > U2NET_MAX_IMAGE_SIDE ||
        img->height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * img->height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "u2net_estimate_foreground: needs an image of 1..%d a side, "
                  "its alpha and the foreground to fill", U2NET_MAX_IMAGE_SIDE);
        return U2NET_EARG;
    }
    const int W0 = img->width, H0 = img->height, C = img->channels;
    const size_t n0 = (size_t)W0 * H0;
    const int threads = max_threads();
    const int side = W0 > H0 ? W0 : H0;
    const int levels = side > 1 ? (int)ceil(log2((double)side)) : 0;

    /* mean colours of the sure foreground and background, summed in float
     * in raster order as pymatting does */
    float f_prev_init[3] = {0, 0, 0}, b_prev_init[3] = {0, 0, 0};
    size_t f_count = 0, b_count = 0;
    for (size_t i = 0; i < n0; i++) {
        const unsigned char *px = img->data + i * C;
        const double a = alpha[i];
        for (int c = 0; c < 3; c++) {
            const float v = (float)(px[C >= 3 ? c : 0] / 255.0);
            if (a > 0.9)
                f_prev_init[c] += v;
            if (a < 0.1)
                b_prev_init[c] += v;
        }
        f_count += a > 0.9;
        b_count += a < 0.1;
    }
    for (int c = 0; c < 3; c++) {
        f_prev_init[c] = (float)(f_prev_init[c] / (f_count + 1e-5));
        b_prev_init[c] = (float)(b_prev_init[c] / (b_count + 1e-5));
    }

    /* The largest level is the image, and F is computed in the output at
     * every level; the previous level's F and B need the second largest. */
    size_t prev_pixels = 1;
    if (levels > 0)
        prev_pixels = (size_t)nearbyint(pow(W0, (double)(levels - 1) / levels)) *
                      (size_t)nearbyint(pow(H0, (double)(levels - 1) / levels));
    float *colour = malloc(n0 * 3 * sizeof *colour);
    float *lev_alpha = malloc(n0 * sizeof *lev_alpha);
    float *b_cur = malloc(n0 * 3 * sizeof *b_cur);
    float *f_prev = malloc(prev_pixels * 3 * sizeof *f_prev);
    float *b_prev = malloc(prev_pixels * 3 * sizeof *b_prev);
    int *xs = malloc((size_t)W0 * sizeof *xs), *ys = malloc((size_t)H0 * sizeof *ys);
    atomic_int *progress = malloc((size_t)H0 * sizeof *progress);
    if (!colour || !lev_alpha || !b_cur || !f_prev || !b_prev || !xs || !ys || !progress) {
        free(colour), free(lev_alpha), free(b_cur), free(f_prev), free(b_prev), free(xs), free(ys);
        free(progress);
        set_error(err, U2NET_ENOMEM, "out of memory estimating the foreground of a %dx%d image",
                  W0, H0);
        return U2NET_ENOMEM;
    }
    memcpy(f_prev, f_prev_init, sizeof f_prev_init);
    memcpy(b_prev, b_prev_init, sizeof b_prev_init);
    int w_prev = 1, h_prev = 1;
    for (int l = 0; l <= levels; l++) {
        /* round half to even, as Python's round */
        const int w = levels ? (int)nearbyint(pow(W0, (double)l / levels)) : W0;
        const int h = levels ? (int)nearbyint(pow(H0, (double)l / levels)) : H0;
        const size_t n = (size_t)w * h;
        const int level_threads = n < FG_THREADED_PIXELS ? 1 : threads;
        for (int x = 0; x < w; x++)
            xs[x] = (int)((int64_t)x * W0 / w);
        for (int y = 0; y < h; y++)
            ys[y] = (int)((int64_t)y * H0 / h);
        #pragma omp parallel for schedule(static) num_threads(level_threads)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const size_t i = (size_t)y * w + x, s = (size_t)ys[y] * W0 + xs[x];
                const unsigned char *px = img->data + s * C;
                for (int c = 0; c < 3; c++)
                    colour[i * 3 + c] = (float)(px[C >= 3 ? c : 0] / 255.0);
                lev_alpha[i] = alpha[s];
            }
        /* F and B of the previous level, resized */
        float *f = foreground, *b = b_cur;
        #pragma omp parallel for schedule(static) num_threads(level_threads)
        for (int y = 0; y < h; y++) {
            const int sy = (int)((int64_t)y * h_prev / h);
            for (int x = 0; x < w; x++) {
                const int sx = (int)((int64_t)x * w_prev / w);
                const size_t i = (size_t)y * w + x, s = (size_t)sy * w_prev + sx;
                for (int c = 0; c < 3; c++) {
                    f[i * 3 + c] = f_prev[s * 3 + c];
                    b[i * 3 + c] = b_prev[s * 3 + c];
                }
            }
        }
        const int iterations =
            w <= FG_SMALL_SIZE && h <= FG_SMALL_SIZE ? FG_SMALL_ITERATIONS : FG_BIG_ITERATIONS;
        for (int it = 0; it < iterations; it++)
            sweep(colour, lev_alpha, f, b, w, h, progress, level_threads);
        if (l < levels) {
            memcpy(f_prev, f, n * 3 * sizeof *f);
            memcpy(b_prev, b, n * 3 * sizeof *b);
        }
        w_prev = w, h_prev = h;
    }
    free(colour), free(lev_alpha), free(b_cur), free(f_prev), free(b_prev), free(xs), free(ys);
    free(progress);
    return 0;
}
