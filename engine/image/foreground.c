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
 * already updated (Gauss-Seidel), as pymatting does. That order is
 * sequential along a row and down the image, so the threads take rows in
 * turn and run a wavefront (sweep), and within a row only the left
 * neighbour's new value is a chain from pixel to pixel: everything else of
 * a pixel's system (its weights, the right, upper and lower neighbours'
 * sums) is computed for a chunk of the row first, in loops the compiler
 * vectorises, and the chain is a few operations a pixel.
 *
 * The system in float, arranged so that it cancels nothing large: with
 * d_n = 1e-5 + |a - a_n|, S = sum d_n, PF = sum d_n F_n, PB = sum d_n B_n
 * and b = 1 - a, pymatting's inverse of [[a^2 + S, a b], [a b, b^2 + S]]
 * applied to (a I + PF, b I + PB) is
 *   t = b PF - a PB,
 *   F = (b t + S (a I + PF)) / det,  B = (S (b I + PB) - a t) / det,
 *   det = S (a^2 + b^2 + S),
 * the same algebra without the a^2 b^2 terms that cancel (pymatting keeps
 * them, in double). On the test photos and composites the result is
 * within 2.1e-7 of pymatting's on average where a > 0 and 1.0e-4 at worst
 * (test_matting measures it). It does not depend on the number of threads. */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "image_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* A level's planes: rows of w + 2 floats, pixel (y, x) at y * stride + x +
 * 1; alpha's and the colours' first and last columns repeat the edge
 * pixels, F's and B's last column is the edge pixel's copy that the sweep
 * sets before it reads it. */
typedef struct {
    int w, h;
    size_t stride;
    float *alpha, *colour[3], *f[3], *b[3];
} fg_level;

/* A chunk's terms, computed before its chain (FG_CHUNK each): the
 * pixel's new F and B as functions of its left neighbour's (fl, bl),
 *   F = clip(f0 + p fl - q bl),  B = clip(b0 + r bl - q fl),
 * with p, q, r from alpha alone and f0, b0 from everything else. */
typedef struct {
    float p[FG_CHUNK], q[FG_CHUNK], r[FG_CHUNK];
    float f0[3][FG_CHUNK], b0[3][FG_CHUNK];
} fg_chunk_terms;

/* The terms of pixels x0 .. x1-1 of row y; up and down are the neighbour
 * rows (the row itself at the image's top and bottom), the right
 * neighbour of the row's last pixel the copy in its last column. With
 * d_l the left weight and PF', PB' the sums without the left neighbour,
 * the system above gives
 *   f0 = ((1 - a) ((1 - a) PF' - a PB') + S (a I + PF')) / det,
 *   b0 = (a (a PB' - (1 - a) PF') + S ((1 - a) I + PB')) / det,
 *   p = d_l ((1 - a)^2 + S) / det,  q = d_l a (1 - a) / det,
 *   r = d_l (a^2 + S) / det. */
static void chunk_terms(const fg_level *L, int y, int x0, int x1, fg_chunk_terms *restrict t)
{
    const size_t row = (size_t)y * L->stride + 1;
    const size_t up = (size_t)(y > 0 ? y - 1 : 0) * L->stride + 1;
    const size_t down = (size_t)(y < L->h - 1 ? y + 1 : L->h - 1) * L->stride + 1;
    const float *restrict a = L->alpha + row;
    const float *restrict au = L->alpha + up, *restrict ad = L->alpha + down;
    const int n = x1 - x0;
    /* the weights of the right, upper and lower neighbours, S and 1 / det */
    float dr[FG_CHUNK], du[FG_CHUNK], dd[FG_CHUNK], s_[FG_CHUNK], inv_[FG_CHUNK];
    for (int i = 0; i < n; i++) {
        const int x = x0 + i;
        const float a0 = a[x], a1 = 1.0f - a0;
        const float dl = FG_REGULARIZATION + FG_GRADIENT_WEIGHT * fabsf(a0 - a[x - 1]);
        dr[i] = FG_REGULARIZATION + FG_GRADIENT_WEIGHT * fabsf(a0 - a[x + 1]);
        du[i] = FG_REGULARIZATION + FG_GRADIENT_WEIGHT * fabsf(a0 - au[x]);
        dd[i] = FG_REGULARIZATION + FG_GRADIENT_WEIGHT * fabsf(a0 - ad[x]);
        const float s = (dl + dr[i]) + (du[i] + dd[i]);
        const float inv = 1.0f / (s * (a0 * a0 + a1 * a1 + s));
        s_[i] = s, inv_[i] = inv;
        t->p[i] = dl * (a1 * a1 + s) * inv;
        t->q[i] = dl * (a0 * a1) * inv;
        t->r[i] = dl * (a0 * a0 + s) * inv;
    }
    for (int c = 0; c < 3; c++) {
        const float *restrict col = L->colour[c] + row;
        const float *restrict f = L->f[c] + row, *restrict fu = L->f[c] + up,
                    *restrict fd = L->f[c] + down;
        const float *restrict b = L->b[c] + row, *restrict bu = L->b[c] + up,
                    *restrict bd = L->b[c] + down;
        for (int i = 0; i < n; i++) {
            const int x = x0 + i;
            const float a0 = a[x], a1 = 1.0f - a0, s = s_[i];
            const float pf = dr[i] * f[x + 1] + du[i] * fu[x] + dd[i] * fd[x];
            const float pb = dr[i] * b[x + 1] + du[i] * bu[x] + dd[i] * bd[x];
            const float k = a1 * pf - a0 * pb;
            t->f0[c][i] = (a1 * k + s * (a0 * col[x] + pf)) * inv_[i];
            t->b0[c][i] = (s * (a1 * col[x] + pb) - a0 * k) * inv_[i];
        }
    }
}

/* maxss and minss on x86 (GCC makes compares and branches of the
 * conditional form there, which the chain cannot afford to mispredict);
 * elsewhere the compiler's selects. */
static inline float clamp01(float v)
{
#if defined(__SSE2__)
    return _mm_cvtss_f32(_mm_min_ss(_mm_max_ss(_mm_set_ss(v), _mm_setzero_ps()), _mm_set_ss(1.0f)));
#else
    v = v > 0.0f ? v : 0.0f;
    return v < 1.0f ? v : 1.0f;
#endif
}

/* The chain of pixels x0 .. x1-1 of row y, left to right, each with its
 * left neighbour's new F and B (the pixel's own, not yet updated, at x0 =
 * 0). */
static void chunk_chain(const fg_level *L, int y, int x0, int x1, const fg_chunk_terms *restrict t)
{
    const size_t row = (size_t)y * L->stride + 1;
    float *restrict f0 = L->f[0] + row, *restrict f1 = L->f[1] + row, *restrict f2 = L->f[2] + row;
    float *restrict b0 = L->b[0] + row, *restrict b1 = L->b[1] + row, *restrict b2 = L->b[2] + row;
    const int left = x0 > 0 ? x0 - 1 : 0;
    float fr = f0[left], fg = f1[left], fb = f2[left];
    float br = b0[left], bg = b1[left], bb = b2[left];
    for (int i = 0, x = x0; x < x1; i++, x++) {
        const float p = t->p[i], q = t->q[i], r = t->r[i];
        /* the three channels' chains side by side */
        const float nfr = clamp01(t->f0[0][i] + p * fr - q * br);
        const float nbr = clamp01(t->b0[0][i] + r * br - q * fr);
        const float nfg = clamp01(t->f0[1][i] + p * fg - q * bg);
        const float nbg = clamp01(t->b0[1][i] + r * bg - q * fg);
        const float nfb = clamp01(t->f0[2][i] + p * fb - q * bb);
        const float nbb = clamp01(t->b0[2][i] + r * bb - q * fb);
        fr = nfr, br = nbr, fg = nfg, bg = nbg, fb = nfb, bb = nbb;
        f0[x] = fr, f1[x] = fg, f2[x] = fb;
        b0[x] = br, b1[x] = bg, b2[x] = bb;
    }
}

/* One sweep over a level in raster order. Row y goes to thread y mod
 * threads, which updates a chunk of it once the row above has passed the
 * chunk (progress: columns done per row); the row below cannot pass it, so
 * each pixel sees the pixels before it updated and those after it not, as
 * in one raster pass. terms: one per thread. */
static void sweep(const fg_level *L, atomic_int *progress, fg_chunk_terms *terms, int threads)
{
    const int w = L->w, h = L->h;
    for (int y = 0; y < h; y++)
        atomic_store_explicit(&progress[y], 0, memory_order_relaxed);
    #pragma omp parallel num_threads(threads)
    {
        int team = 1, me = 0;
#ifdef _OPENMP
        team = omp_get_num_threads(), me = omp_get_thread_num();
#endif
        fg_chunk_terms *t = terms + me;
        for (int y = me; y < h; y += team)
            for (int x0 = 0; x0 < w; x0 += FG_CHUNK) {
                const int x1 = x0 + FG_CHUNK < w ? x0 + FG_CHUNK : w;
                if (y > 0)
                    for (int spins = 0;
                         atomic_load_explicit(&progress[y - 1], memory_order_acquire) < x1;
                         spins++)
                        if (spins > 256)
                            sched_yield();
                if (x1 == w) {
                    /* the right neighbour of the last pixel is itself, as
                     * it is before this sweep updates it */
                    const size_t last = (size_t)y * L->stride + (size_t)w;
                    for (int c = 0; c < 3; c++)
                        L->f[c][last + 1] = L->f[c][last], L->b[c][last + 1] = L->b[c][last];
                }
                chunk_terms(L, y, x0, x1, t);
                chunk_chain(L, y, x0, x1, t);
                atomic_store_explicit(&progress[y], x1, memory_order_release);
            }
    }
}

/* The level's planes in one block of (w + 2) h floats each: alpha, the
 * colours, F, B. */
static void level_planes(fg_level *L, float *block, int w, int h)
{
    const size_t plane = (size_t)(w + 2) * h;
    L->w = w, L->h = h, L->stride = (size_t)w + 2;
    L->alpha = block;
    for (int c = 0; c < 3; c++) {
        L->colour[c] = block + (1 + c) * plane;
        L->f[c] = block + (4 + c) * plane;
        L->b[c] = block + (7 + c) * plane;
    }
}

/* A block of memory for the level's planes: in huge pages where the
 * system gives them on request (Linux's transparent huge pages in madvise
 * mode). A call's planes are touched for the first time, and faulting them
 * in 4 KB pages was a fifth of a call on a 0.46 MP photo (26.2 -> 21.6 ms,
 * median of 10 processes, 2 threads). */
static void *big_alloc(size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    enum { HUGE = 2 << 20 };
    if (bytes >= HUGE) {
        void *p = NULL;
        const size_t rounded = (bytes + HUGE - 1) / HUGE * HUGE;
        if (posix_memalign(&p, HUGE, rounded) != 0)
            return NULL;
        madvise(p, rounded, MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(bytes);
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

    float byte_colour[256];
    for (int v = 0; v < 256; v++)
        byte_colour[v] = (float)(v / 255.0);
    /* mean colours of the sure foreground and background, summed in float
     * in raster order as pymatting does */
    float f_prev_init[3] = {0, 0, 0}, b_prev_init[3] = {0, 0, 0};
    size_t f_count = 0, b_count = 0;
    for (size_t i = 0; i < n0; i++) {
        const unsigned char *px = img->data + i * C;
        const double a = alpha[i];
        for (int c = 0; c < 3; c++) {
            const float v = byte_colour[px[C >= 3 ? c : 0]];
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

    /* Two blocks of planes: the level being swept, and the previous one's
     * F and B, unpadded, as large as the second largest level's */
    size_t prev_pixels = 1;
    if (levels > 0)
        prev_pixels = (size_t)nearbyint(pow(W0, (double)(levels - 1) / levels)) *
                      (size_t)nearbyint(pow(H0, (double)(levels - 1) / levels));
    const size_t cur_plane = (size_t)(W0 + 2) * H0;
    float *cur_block = big_alloc(10 * cur_plane * sizeof *cur_block);
    float *prev_fb = malloc(6 * prev_pixels * sizeof *prev_fb);
    int *xs = malloc((size_t)(W0 + 2) * sizeof *xs), *ys = malloc((size_t)H0 * sizeof *ys);
    int *prev_xs = malloc((size_t)W0 * sizeof *prev_xs);
    atomic_int *progress = malloc((size_t)H0 * sizeof *progress);
    fg_chunk_terms *terms = malloc((size_t)threads * sizeof *terms);
    if (!cur_block || !prev_fb || !xs || !ys || !prev_xs || !progress || !terms) {
        free(cur_block), free(prev_fb), free(xs), free(ys), free(prev_xs), free(progress), free(terms);
        set_error(err, U2NET_ENOMEM, "out of memory estimating the foreground of a %dx%d image",
                  W0, H0);
        return U2NET_ENOMEM;
    }
    for (int k = 0; k < 6; k++)
        prev_fb[k] = k < 3 ? f_prev_init[k] : b_prev_init[k - 3];
    int w_prev = 1, h_prev = 1;
    fg_level L;
    for (int l = 0; l <= levels; l++) {
        /* round half to even, as Python's round */
        const int w = levels ? (int)nearbyint(pow(W0, (double)l / levels)) : W0;
        const int h = levels ? (int)nearbyint(pow(H0, (double)l / levels)) : H0;
        const size_t n = (size_t)w * h;
        const int level_threads = n < FG_THREADED_PIXELS ? 1 : threads;
        level_planes(&L, cur_block, w, h);
        /* source columns of the level's columns -1 .. w (the edges repeated) */
        for (int x = -1; x <= w; x++) {
            const int xc = x < 0 ? 0 : x >= w ? w - 1 : x;
            xs[x + 1] = (int)((int64_t)xc * W0 / w);
        }
        for (int y = 0; y < h; y++)
            ys[y] = (int)((int64_t)y * H0 / h);
        for (int x = 0; x < w; x++)
            prev_xs[x] = (int)((int64_t)x * w_prev / w);
        #pragma omp parallel for schedule(static) num_threads(level_threads)
        for (int y = 0; y < h; y++) {
            const size_t row = (size_t)y * L.stride;
            for (int x = 0; x < w + 2; x++) {
                const size_t s = (size_t)ys[y] * W0 + xs[x];
                const unsigned char *px = img->data + s * C;
                for (int c = 0; c < 3; c++)
                    L.colour[c][row + x] = byte_colour[px[C >= 3 ? c : 0]];
                L.alpha[row + x] = alpha[s];
            }
            /* F and B of the previous level, resized */
            const int sy = (int)((int64_t)y * h_prev / h);
            const size_t prev_plane = (size_t)w_prev * h_prev;
            for (int x = 0; x < w; x++) {
                const size_t at = (size_t)sy * w_prev + (size_t)prev_xs[x];
                for (int c = 0; c < 3; c++) {
                    L.f[c][row + 1 + x] = prev_fb[c * prev_plane + at];
                    L.b[c][row + 1 + x] = prev_fb[(3 + c) * prev_plane + at];
                }
            }
        }
        const int iterations =
            w <= FG_SMALL_SIZE && h <= FG_SMALL_SIZE ? FG_SMALL_ITERATIONS : FG_BIG_ITERATIONS;
        for (int it = 0; it < iterations; it++)
            sweep(&L, progress, terms, level_threads);
        if (l < levels) {
            /* this level's F and B, unpadded, for the next */
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++) {
                    memcpy(prev_fb + c * n + (size_t)y * w, L.f[c] + (size_t)y * L.stride + 1,
                           (size_t)w * sizeof *prev_fb);
                    memcpy(prev_fb + (3 + c) * n + (size_t)y * w,
                           L.b[c] + (size_t)y * L.stride + 1, (size_t)w * sizeof *prev_fb);
                }
        }
        w_prev = w, h_prev = h;
    }
    /* F of the image, its channels interleaved */
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int y = 0; y < H0; y++)
        for (int x = 0; x < W0; x++)
            for (int c = 0; c < 3; c++)
                foreground[((size_t)y * W0 + x) * 3 + c] = L.f[c][(size_t)y * L.stride + 1 + x];
    free(cur_block), free(prev_fb), free(xs), free(ys), free(prev_xs), free(progress), free(terms);
    return 0;
}
