/* alpha_matting.c - the trimap of a probability map as rembg builds it, and
 * closed-form matting (Levin, Lischinski and Weiss 2008) of its unknown
 * pixels, as pymatting's estimate_alpha_cf defines it: 3x3 windows,
 * epsilon 1e-7, colours in 0..1, the Laplacian's rows of the unknown pixels
 * solved with the known ones fixed (L_UU x = -L_UK x_K).
 *
 * The solver is preconditioned conjugate gradients on L_UU, stored as the
 * lower half of each row's 25 float coefficients (the 5x5 neighbourhood a
 * pixel shares windows with), the preconditioner an incomplete Cholesky factorization without
 * fill, IC(0), of each block of MATTING_STRIP_ROWS image rows (block
 * Jacobi: the blocks are independent, so they factor and solve on separate
 * threads; they are fixed in the image, so the result does not depend on
 * the thread count). At most U2NET_MATTING_MAX_ITERATIONS iterations.
 *
 * Memory is about 170 bytes an unknown pixel and 9 bytes an image pixel.
 * When more than MATTING_MAX_VARIABLES pixels are unknown, the image is
 * solved in bands of rows holding at most that many with MATTING_MARGIN
 * rows of overlap each side: a band's unknowns beyond its margins are fixed
 * at the values of the bands above it (solved) and below it (the initial
 * guess, then the previous sweep's solution), only its core rows are kept,
 * and the bands are swept MATTING_BAND_SWEEPS times. That is the one
 * approximation (README.md, Clean edges, has its measured error against
 * the whole solve). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_internal.h"

#define MATTING_EPSILON 1e-7
#define MATTING_TOLERANCE 1e-5     /* stop when |r| <= this * |b| */
#define MATTING_STRIP_ROWS 256     /* rows of an IC(0) block */
#define MATTING_MAX_VARIABLES (1 << 20)
#define MATTING_MARGIN 96
#define MATTING_BAND_SWEEPS 2
/* Smaller solves run on one thread: an iteration's six loops each end in
 * the threads waiting for each other, which costs more than they share. */
#define MATTING_THREADED_VARIABLES (1 << 17)
#define SLOTS 25                   /* the 5x5 neighbourhood, raster order */
#define DIAG 12                    /* its centre; slots below it are the lower part */

/* ---- trimap ---- */

/* Erosion of the binary map b (w x h, 0/1) in place by the rectangle of
 * offsets [-lo_x, hi_x] x [-lo_y, hi_y]: b[y][x] stays 1 when every pixel of
 * the rectangle around it is 1, pixels outside the map counting as
 * `border`. Separable, a running count of zeros along each line. */
static int erode_rect(unsigned char *b, int w, int h, int lo, int hi, int border)
{
    const int len = w > h ? w : h;
    const int threads = max_threads();
    unsigned char *line = malloc((size_t)threads * len);
    if (!line)
        return -1;
    for (int pass = 0; pass < 2; pass++) {
        const int n = pass == 0 ? w : h, lines = pass == 0 ? h : w;
        const size_t step = pass == 0 ? 1 : (size_t)w, next = pass == 0 ? (size_t)w : 1;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int l = 0; l < lines; l++) {
            unsigned char *src = b + (size_t)l * next;
            unsigned char *copy = line + (size_t)thread_id() * len;
            for (int i = 0; i < n; i++)
                copy[i] = src[(size_t)i * step];
            /* zeros in [i - lo, i + hi], outside ones counting as !border */
            long zeros = 0;
            for (long k = -lo; k <= hi; k++)
                zeros += (k < 0 || k >= n) ? !border : !copy[k];
            for (int i = 0; i < n; i++) {
                src[(size_t)i * step] = zeros == 0;
                const long out = (long)i - lo, in = (long)i + hi + 1;
                zeros -= (out < 0 || out >= n) ? !border : !copy[out];
                zeros += (in < 0 || in >= n) ? !border : !copy[in];
            }
        }
    }
    free(line);
    return 0;
}

/* Erosion by the 3x3 cross (scipy's default structure, what rembg erodes
 * with for size 0). */
static int erode_cross(unsigned char *b, int w, int h, int border)
{
    unsigned char *copy = malloc((size_t)w * h);
    if (!copy)
        return -1;
    memcpy(copy, b, (size_t)w * h);
    #pragma omp parallel for schedule(static) num_threads(max_threads())
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            const int left = x > 0 ? copy[i - 1] : border, right = x < w - 1 ? copy[i + 1] : border;
            const int up = y > 0 ? copy[i - w] : border, down = y < h - 1 ? copy[i + w] : border;
            b[i] = copy[i] && left && right && up && down;
        }
    free(copy);
    return 0;
}

int u2net_trimap(const unsigned char *prob, int width, int height, int fg_threshold,
                 int bg_threshold, int erode_size, unsigned char *trimap, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!prob || !trimap || width < 1 || height < 1 || width > U2NET_MAX_IMAGE_SIDE ||
        height > U2NET_MAX_IMAGE_SIDE || (uint64_t)width * height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "u2net_trimap: needs prob and trimap maps of 1..%d a side",
                  U2NET_MAX_IMAGE_SIDE);
        return U2NET_EARG;
    }
    if (!(bg_threshold >= 0 && bg_threshold <= fg_threshold && fg_threshold <= 255) ||
        erode_size < 0 || erode_size > U2NET_MAX_ERODE_SIZE) {
        set_error(err, U2NET_EARG,
                  "trimap needs 0 <= bg <= fg <= 255 and an erode size in 0..%d (bg %d, fg %d, "
                  "erode %d)", U2NET_MAX_ERODE_SIZE, bg_threshold, fg_threshold, erode_size);
        return U2NET_EARG;
    }
    const size_t n = (size_t)width * height;
    unsigned char *bg = malloc(n);
    if (!bg) {
        set_error(err, U2NET_ENOMEM, "out of memory for the trimap of a %dx%d map", width, height);
        return U2NET_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        trimap[i] = prob[i] > fg_threshold;
        bg[i] = prob[i] < bg_threshold;
    }
    /* scipy's binary_erosion as rembg calls it: a size x size square of
     * offsets [-size/2, size - 1 - size/2] (the cross for 0), outside the
     * map false for the foreground and true for the background */
    int fail;
    if (erode_size == 0) {
        fail = erode_cross(trimap, width, height, 0) || erode_cross(bg, width, height, 1);
    } else {
        const int lo = erode_size / 2, hi = erode_size - 1 - erode_size / 2;
        fail = erode_rect(trimap, width, height, lo, hi, 0) ||
               erode_rect(bg, width, height, lo, hi, 1);
    }
    if (fail) {
        free(bg);
        set_error(err, U2NET_ENOMEM, "out of memory eroding the trimap of a %dx%d map", width,
                  height);
        return U2NET_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        trimap[i] = trimap[i] ? 255 : bg[i] ? 0 : 128;
    free(bg);
    return 0;
}

/* ---- the matting Laplacian ---- */

/* A 3x3 window's colour statistics: its mean and the inverse of
 * (epsilon U + sum of c c^T) / 9, c the centred colours (symmetric). */
typedef struct {
    double mean[3];
    double inv[6];  /* 00 01 02 11 12 22 */
} window_stats;

static inline void pixel_colour(const u2net_image *img, size_t i, double rgb[3])
{
    const unsigned char *px = img->data + i * (size_t)img->channels;
    const int colour = img->channels >= 3;
    for (int c = 0; c < 3; c++)
        rgb[c] = px[colour ? c : 0] / 255.0;
}

/* The statistics of the window centred at (cx, cy), 1 <= cx <= W - 2. */
static void window_at(const u2net_image *img, int cx, int cy, window_stats *ws)
{
    const int W = img->width;
    double col[9][3], m[3] = {0, 0, 0};
    for (int k = 0; k < 9; k++) {
        pixel_colour(img, (size_t)(cy + k / 3 - 1) * W + (cx + k % 3 - 1), col[k]);
        for (int c = 0; c < 3; c++)
            m[c] += col[k][c];
    }
    for (int c = 0; c < 3; c++)
        m[c] /= 9.0;
    double a00 = MATTING_EPSILON, a01 = 0, a02 = 0, a11 = MATTING_EPSILON, a12 = 0,
           a22 = MATTING_EPSILON;
    for (int k = 0; k < 9; k++) {
        const double r = col[k][0] - m[0], g = col[k][1] - m[1], b = col[k][2] - m[2];
        a00 += r * r, a01 += r * g, a02 += r * b, a11 += g * g, a12 += g * b, a22 += b * b;
    }
    a00 /= 9, a01 /= 9, a02 /= 9, a11 /= 9, a12 /= 9, a22 /= 9;
    const double i00 = a11 * a22 - a12 * a12, i01 = a02 * a12 - a01 * a22,
                 i02 = a01 * a12 - a02 * a11, i11 = a00 * a22 - a02 * a02,
                 i12 = a01 * a02 - a00 * a12, i22 = a00 * a11 - a01 * a01;
    const double inv_det = 1.0 / (a00 * i00 + a01 * i01 + a02 * i02);
    memcpy(ws->mean, m, sizeof m);
    ws->inv[0] = i00 * inv_det, ws->inv[1] = i01 * inv_det, ws->inv[2] = i02 * inv_det;
    ws->inv[3] = i11 * inv_det, ws->inv[4] = i12 * inv_det, ws->inv[5] = i22 * inv_det;
}

/* The state of one solve: the variables are the unknown pixels of rows
 * [y0, y1); every other pixel is fixed at fixed[]. L_UU is symmetric and
 * its rows have the 5x5 pattern of their pixel, so a row keeps its lower
 * half (slots 0..DIAG) and the neighbours are found through var_of, a map
 * of the image padded by 2 pixels a side: a slot's variable is var_of at
 * the pixel's padded index + slot_offset - 1, -1 (none) for a fixed pixel
 * or the padding. Index -1 of a and p is a zero row and a zero, so that the
 * product needs no test. */
typedef struct {
    const u2net_image *img;
    const unsigned char *trimap;
    float *fixed;          /* W*H: the current alpha, 0..1 */
    int32_t *var_of;       /* (W+4)*(H+4): variable index + 1, 0 for none */
    ptrdiff_t slot_offset[SLOTS]; /* padded index of each slot from the centre's */
    /* per variable */
    size_t n;
    int64_t *pad;          /* its padded pixel index */
    float *a, *a_base;     /* [n, DIAG + 1] the lower half of L_UU; a_base has row -1 */
    float *ic;             /* [n, DIAG + 1] IC(0): the lower slots, then the diagonal */
    double *b, *x, *r, *z, *p, *p_base, *q;
    /* IC(0) blocks: variables [block_start[k], block_start[k + 1]) */
    int n_blocks;
    size_t *block_start;
    double *partial;       /* a reduction's per-block sums, two a block */
} solve_state;

/* The variable in slot s of the row of the variable at padded index pad. */
static inline int32_t slot_var(const solve_state *st, int64_t pad, int s)
{
    return st->var_of[pad + st->slot_offset[s]] - 1;
}

/* Rows of L_UU and b for variables [v0, v1), all on image row y. cache holds
 * the windows centred on rows y-1..y+1 (3 x W, computed when first used;
 * have[k] says which). */
static void build_row(solve_state *st, size_t v0, size_t v1, int y, window_stats *cache,
                      int *have)
{
    const u2net_image *img = st->img;
    const int W = img->width, H = img->height;
    const int64_t Wp = W + 4;
    for (size_t v = v0; v < v1; v++) {
        const int x = (int)(st->pad[v] % Wp) - 2;
        const size_t pi = (size_t)y * W + x;
        double acc[SLOTS] = {0};
        double rhs = 0.0;
        double ci_colour[3];
        pixel_colour(img, pi, ci_colour);
        for (int wy = y - 1; wy <= y + 1; wy++) {
            if (wy < 1 || wy > H - 2)
                continue;
            for (int wx = x - 1; wx <= x + 1; wx++) {
                if (wx < 1 || wx > W - 2)
                    continue;
                const size_t slot_index = (size_t)(wy - y + 1) * W + wx;
                window_stats *ws = cache + slot_index;
                if (!have[slot_index]) {
                    window_at(img, wx, wy, ws);
                    have[slot_index] = 1;
                }
                const double c0 = ci_colour[0] - ws->mean[0], c1 = ci_colour[1] - ws->mean[1],
                             c2 = ci_colour[2] - ws->mean[2];
                const double *m = ws->inv;
                const double t0 = m[0] * c0 + m[1] * c1 + m[2] * c2;
                const double t1 = m[1] * c0 + m[3] * c1 + m[4] * c2;
                const double t2 = m[2] * c0 + m[4] * c1 + m[5] * c2;
                for (int k = 0; k < 9; k++) {
                    const int jx = wx + k % 3 - 1, jy = wy + k / 3 - 1;
                    const size_t pj = (size_t)jy * W + jx;
                    double cj[3];
                    pixel_colour(img, pj, cj);
                    const double value = (pj == pi ? 1.0 : 0.0) -
                        (1.0 + t0 * (cj[0] - ws->mean[0]) + t1 * (cj[1] - ws->mean[1]) +
                         t2 * (cj[2] - ws->mean[2])) / 9.0;
                    if (st->var_of[(int64_t)(jy + 2) * Wp + jx + 2] > 0)
                        acc[(jy - y + 2) * 5 + (jx - x + 2)] += value;
                    else
                        rhs -= value * st->fixed[pj];
                }
            }
        }
        float *arow = st->a + v * (DIAG + 1);
        for (int s = 0; s <= DIAG; s++)
            arow[s] = slot_var(st, st->pad[v], s) >= 0 ? (float)acc[s] : 0.0f;
        /* a pixel in no window (an image under 3 pixels wide or high) has
         * an empty row: it keeps its initial value */
        if (!(arow[DIAG] > 0.0f)) {
            for (int s = 0; s <= DIAG; s++)
                arow[s] = 0.0f;
            arow[DIAG] = 1.0f;
            rhs = st->fixed[pi];
        }
        st->b[v] = rhs;
    }
}

/* L_UU and b, image rows in parallel, each thread with its own window cache. */
static int build_system(solve_state *st, int y0, int y1)
{
    const int W = st->img->width;
    const int64_t Wp = W + 4;
    const int threads = max_threads();
    window_stats *caches = malloc((size_t)threads * 3 * W * sizeof *caches);
    int *haves = malloc((size_t)threads * 3 * W * sizeof *haves);
    /* first variable of each row */
    size_t *row_start = malloc(((size_t)(y1 - y0) + 1) * sizeof *row_start);
    if (!caches || !haves || !row_start) {
        free(caches), free(haves), free(row_start);
        return -1;
    }
    size_t v = 0;
    for (int y = y0; y <= y1; y++) {
        while (v < st->n && st->pad[v] / Wp - 2 < y)
            v++;
        row_start[y - y0] = v;
    }
    #pragma omp parallel num_threads(threads)
    {
        window_stats *cache = caches + (size_t)thread_id() * 3 * W;
        int *have = haves + (size_t)thread_id() * 3 * W;
        #pragma omp for schedule(dynamic, 16)
        for (int y = y0; y < y1; y++) {
            const size_t a = row_start[y - y0], b = row_start[y - y0 + 1];
            if (a == b)
                continue;
            memset(have, 0, 3 * (size_t)W * sizeof *have);
            build_row(st, a, b, y, cache, have);
        }
    }
    free(caches), free(haves), free(row_start);
    return 0;
}

/* IC(0) of the variables [v0, v1) of one block, columns outside it
 * dropped, the diagonal scaled by 1 + shift. Returns -1 on a pivot <= 0. */
static int factor_block(solve_state *st, size_t v0, size_t v1, double shift)
{
    for (size_t i = v0; i < v1; i++) {
        const float *arow = st->a + i * (DIAG + 1);
        float *lrow = st->ic + i * (DIAG + 1);
        double diag = arow[DIAG] * (1.0 + shift);
        for (int s = 0; s < DIAG; s++) {
            const int32_t j = slot_var(st, st->pad[i], s);
            if (j < 0 || (size_t)j < v0) {
                lrow[s] = 0.0f;
                continue;
            }
            /* L_is = (A_is - sum over k < j of L_ik L_jk) / L_jj: k is slot t
             * of row i and slot t - s + DIAG of row j, when that is a lower
             * slot inside the 5x5 neighbourhood */
            const int sx = s % 5 - 2, sy = s / 5 - 2;
            const float *ljrow = st->ic + (size_t)j * (DIAG + 1);
            double v = arow[s];
            for (int t = 0; t < s; t++) {
                if (lrow[t] == 0.0f)
                    continue;
                const int dx = t % 5 - 2 - sx, dy = t / 5 - 2 - sy;
                if (dx < -2 || dx > 2 || dy < -2 || dy > 2)
                    continue;
                const int u = (dy + 2) * 5 + dx + 2;
                if (u < DIAG)
                    v -= (double)lrow[t] * ljrow[u];
            }
            lrow[s] = (float)(v / ljrow[DIAG]);
            diag -= (double)lrow[s] * lrow[s];
        }
        if (!(diag > 0.0))
            return -1;
        lrow[DIAG] = (float)sqrt(diag);
    }
    return 0;
}

/* z = M^-1 r on one block: forward then backward substitution. */
static void precondition_block(solve_state *st, size_t v0, size_t v1)
{
    for (size_t i = v0; i < v1; i++) {
        const float *lrow = st->ic + i * (DIAG + 1);
        double v = st->r[i];
        for (int s = 0; s < DIAG; s++)
            if (lrow[s] != 0.0f)
                v -= lrow[s] * st->z[slot_var(st, st->pad[i], s)];
        st->z[i] = v / lrow[DIAG];
    }
    for (size_t i = v1; i-- > v0;) {
        const float *lrow = st->ic + i * (DIAG + 1);
        const double zi = st->z[i] / lrow[DIAG];
        st->z[i] = zi;
        for (int s = 0; s < DIAG; s++)
            if (lrow[s] != 0.0f)
                st->z[slot_var(st, st->pad[i], s)] -= lrow[s] * zi;
    }
}

/* u . v, and u . w when w is not NULL: sums over blocks added in block
 * order, so that they do not depend on the thread count. */
static double dot2(solve_state *st, const double *u, const double *v, const double *w,
                   double *uw, int threads)
{
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int k = 0; k < st->n_blocks; k++) {
        double s = 0.0, t = 0.0;
        for (size_t i = st->block_start[k]; i < st->block_start[k + 1]; i++) {
            s += u[i] * v[i];
            if (w)
                t += u[i] * w[i];
        }
        st->partial[2 * k] = s;
        st->partial[2 * k + 1] = t;
    }
    double total = 0.0, total_w = 0.0;
    for (int k = 0; k < st->n_blocks; k++)
        total += st->partial[2 * k], total_w += st->partial[2 * k + 1];
    if (uw)
        *uw = total_w;
    return total;
}

static double dot(solve_state *st, const double *u, const double *v, int threads)
{
    return dot2(st, u, v, NULL, NULL, threads);
}

/* out = L_UU v, v with its zero at index -1: the lower half from each
 * row, the upper from the rows it mirrors (slot 2 DIAG - s of row j). */
static void multiply(solve_state *st, const double *v, double *out, int threads)
{
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < st->n; i++) {
        const float *arow = st->a + i * (DIAG + 1);
        const int64_t pad = st->pad[i];
        double s = 0.0;
        for (int k = 0; k <= DIAG; k++)
            s += arow[k] * v[slot_var(st, pad, k)];
        for (int k = DIAG + 1; k < SLOTS; k++) {
            const int32_t j = slot_var(st, pad, k);
            s += st->a[(ptrdiff_t)j * (DIAG + 1) + (2 * DIAG - k)] * v[j];
        }
        out[i] = s;
    }
}

static void precondition(solve_state *st, int threads)
{
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int k = 0; k < st->n_blocks; k++)
        precondition_block(st, st->block_start[k], st->block_start[k + 1]);
}

/* The real pixel index of a padded one. */
static size_t pixel_of(const solve_state *st, int64_t pad)
{
    const int64_t Wp = st->img->width + 4;
    return (size_t)(pad / Wp - 2) * (size_t)st->img->width + (size_t)(pad % Wp - 2);
}

/* Preconditioned conjugate gradients from x = the fixed values; returns
 * the iterations run. */
static int solve_pcg(solve_state *st, int threads)
{
    const size_t n = st->n;
    for (size_t i = 0; i < n; i++)
        st->x[i] = st->fixed[pixel_of(st, st->pad[i])];
    memcpy(st->p, st->x, n * sizeof *st->p);
    multiply(st, st->p, st->q, threads);
    for (size_t i = 0; i < n; i++)
        st->r[i] = st->b[i] - st->q[i];
    const double norm_b = sqrt(dot(st, st->b, st->b, threads));
    const double stop = MATTING_TOLERANCE * (norm_b > 0.0 ? norm_b : 1.0);
    if (sqrt(dot(st, st->r, st->r, threads)) <= stop)
        return 0;
    precondition(st, threads);
    memcpy(st->p, st->z, n * sizeof *st->p);
    double rz = dot(st, st->r, st->z, threads);
    int it = 0;
    while (it < U2NET_MATTING_MAX_ITERATIONS) {
        it++;
        multiply(st, st->p, st->q, threads);
        const double pq = dot(st, st->p, st->q, threads);
        if (!(pq > 0.0))
            break;
        const double step = rz / pq;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (size_t i = 0; i < n; i++) {
            st->x[i] += step * st->p[i];
            st->r[i] -= step * st->q[i];
        }
        precondition(st, threads);
        double rz_next;
        if (sqrt(dot2(st, st->r, st->r, st->z, &rz_next, threads)) <= stop)
            break;
        const double beta = rz_next / rz;
        rz = rz_next;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (size_t i = 0; i < n; i++)
            st->p[i] = st->z[i] + beta * st->p[i];
    }
    return it;
}

static void free_solve(solve_state *st)
{
    free(st->pad), free(st->a_base), free(st->ic);
    free(st->b), free(st->x), free(st->r), free(st->z), free(st->p_base), free(st->q);
    free(st->block_start), free(st->partial);
    st->pad = NULL, st->a = st->a_base = NULL, st->ic = NULL, st->b = NULL;
    st->x = st->r = st->z = st->p = st->p_base = st->q = NULL;
    st->block_start = NULL, st->partial = NULL;
}

/* Solves the unknown pixels of rows [y0, y1) with every other pixel fixed
 * at st->fixed, and writes the solution, clipped to 0..1, into st->fixed
 * for rows [keep0, keep1). Returns the iterations, or -1 when out of memory. */
static int solve_rows(solve_state *st, int y0, int y1, int keep0, int keep1)
{
    const int W = st->img->width;
    const int64_t Wp = W + 4;
    size_t n = 0;
    for (size_t i = (size_t)y0 * W; i < (size_t)y1 * W; i++)
        n += st->trimap[i] != 0 && st->trimap[i] != 255;
    if (n == 0)
        return 0;
    const int threads = n < MATTING_THREADED_VARIABLES ? 1 : max_threads();
    st->n = n;
    st->n_blocks = (y1 - y0 + MATTING_STRIP_ROWS - 1) / MATTING_STRIP_ROWS;
    st->pad = malloc(n * sizeof *st->pad);
    st->a_base = calloc((n + 1) * (DIAG + 1), sizeof *st->a_base);
    st->ic = malloc(n * (DIAG + 1) * sizeof *st->ic);
    st->b = malloc(n * sizeof(double)), st->x = malloc(n * sizeof(double));
    st->r = malloc(n * sizeof(double)), st->z = malloc(n * sizeof(double));
    st->p_base = calloc(n + 1, sizeof(double)), st->q = malloc(n * sizeof(double));
    st->block_start = malloc(((size_t)st->n_blocks + 1) * sizeof *st->block_start);
    st->partial = malloc(2 * (size_t)st->n_blocks * sizeof *st->partial);
    if (!st->pad || !st->a_base || !st->ic || !st->b || !st->x || !st->r || !st->z ||
        !st->p_base || !st->q || !st->block_start || !st->partial) {
        free_solve(st);
        return -1;
    }
    st->a = st->a_base + (DIAG + 1);
    st->p = st->p_base + 1;
    size_t v = 0;
    for (int y = y0; y < y1; y++) {
        if ((y - y0) % MATTING_STRIP_ROWS == 0)
            st->block_start[(y - y0) / MATTING_STRIP_ROWS] = v;
        for (int x = 0; x < W; x++) {
            const size_t i = (size_t)y * W + x;
            if (st->trimap[i] != 0 && st->trimap[i] != 255) {
                st->pad[v] = (int64_t)(y + 2) * Wp + x + 2;
                st->var_of[st->pad[v]] = (int32_t)(v + 1);
                v++;
            }
        }
    }
    st->block_start[st->n_blocks] = n;
    if (build_system(st, y0, y1)) {
        free_solve(st);
        return -1;
    }
    /* IC(0) may break down (a pivot <= 0); a larger diagonal shift always
     * succeeds eventually, since L_UU is positive semi-definite */
    static const double shifts[] = {0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0};
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int k = 0; k < st->n_blocks; k++)
        for (size_t t = 0; t < sizeof shifts / sizeof *shifts; t++)
            if (factor_block(st, st->block_start[k], st->block_start[k + 1], shifts[t]) == 0)
                break;
    const int iterations = solve_pcg(st, threads);
    for (size_t i = 0; i < n; i++) {
        const size_t pi = pixel_of(st, st->pad[i]);
        const int y = (int)(pi / (size_t)W);
        st->var_of[st->pad[i]] = 0;
        if (y >= keep0 && y < keep1) {
            const double a = st->x[i];
            st->fixed[pi] = (float)(a < 0.0 ? 0.0 : a > 1.0 ? 1.0 : a);
        }
    }
    free_solve(st);
    return iterations;
}

int u2net_alpha_matting(const u2net_image *img, const unsigned char *trimap, const float *init,
                        float *alpha, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!img || !img->data || !trimap || !alpha || img->width < 1 || img->height < 1 ||
        img->channels < 1 || img->channels > 4 || img->width > U2NET_MAX_IMAGE_SIDE ||
        img->height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * img->height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "u2net_alpha_matting: needs an image of 1..%d a side, its "
                  "trimap and the alpha to fill", U2NET_MAX_IMAGE_SIDE);
        return U2NET_EARG;
    }
    const int W = img->width, H = img->height;
    const size_t n = (size_t)W * H;
    size_t unknown = 0, known = 0;
    for (size_t i = 0; i < n; i++) {
        const int t = trimap[i];
        const int is_unknown = t != 0 && t != 255;
        alpha[i] = t == 255 ? 1.0f : t == 0 ? 0.0f
                   : init ? (init[i] < 0.0f ? 0.0f : init[i] > 1.0f ? 1.0f : init[i]) : 0.5f;
        unknown += is_unknown;
        known += !is_unknown;
    }
    /* nothing to solve, or nothing to solve it from: the initial guess */
    if (unknown == 0 || known == 0)
        return 0;
    solve_state st = {0};
    st.img = img;
    st.trimap = trimap;
    st.fixed = alpha;
    st.var_of = calloc((size_t)(W + 4) * (H + 4), sizeof *st.var_of);
    if (!st.var_of) {
        set_error(err, U2NET_ENOMEM, "out of memory for alpha matting of a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    for (int s = 0; s < SLOTS; s++)
        st.slot_offset[s] = (ptrdiff_t)(s / 5 - 2) * (W + 4) + (s % 5 - 2);
    int rc = 0;
    if (unknown <= MATTING_MAX_VARIABLES) {
        rc = solve_rows(&st, 0, H, 0, H) < 0;
    } else {
        /* bands of core rows [y, core_end) holding about the budget with
         * their margins, top to bottom, MATTING_BAND_SWEEPS times: from the
         * second sweep on, the rows below a band hold the last sweep's
         * solution instead of the map */
        for (int sweep = 0; sweep < MATTING_BAND_SWEEPS && !rc; sweep++) {
            int y = 0;
            while (y < H && !rc) {
                const int top = y - MATTING_MARGIN < 0 ? 0 : y - MATTING_MARGIN;
                size_t count = 0;
                int end = top;
                while (end < H) {
                    size_t row = 0;
                    for (size_t i = (size_t)end * W; i < (size_t)(end + 1) * W; i++)
                        row += trimap[i] != 0 && trimap[i] != 255;
                    if (count + row > MATTING_MAX_VARIABLES && end > y + MATTING_MARGIN)
                        break;
                    count += row;
                    end++;
                }
                const int core_end = end >= H ? H : end - MATTING_MARGIN;
                rc = solve_rows(&st, top, end, y, core_end) < 0;
                y = core_end;
            }
        }
    }
    free(st.var_of);
    if (rc) {
        set_error(err, U2NET_ENOMEM, "out of memory for alpha matting of a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    return 0;
}
