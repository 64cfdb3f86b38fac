/* alpha_matting.c - the trimap of a probability map as rembg builds it, and
 * closed-form matting (Levin, Lischinski and Weiss 2008) of its unknown
 * pixels, as pymatting's estimate_alpha_cf defines it: 3x3 windows,
 * epsilon 1e-7, colours in 0..1, the Laplacian's rows of the unknown pixels
 * solved with the known ones fixed (L_UU x = -L_UK x_K).
 *
 * The solver is preconditioned conjugate gradients on L_UU, stored as the
 * lower half of each row's 25 float coefficients (the 5x5 neighbourhood a
 * pixel shares windows with). The preconditioner is an incomplete Cholesky
 * factorization of the whole of L_UU on a fixed pattern wider than L_UU's
 * own (IC_SLOTS earlier pixels a row: the front of the elimination, where
 * the exact factor's large entries are), the diagonal scaled by 1 + 1e-4
 * (larger when a pivot fails). The factorization and the two substitutions
 * of each iteration go over the unknowns in raster order, the image rows
 * as a wavefront on the threads, so the result does not depend on their
 * number. From MATTING_COARSE_VARIABLES unknowns on, the initial guess is
 * the same problem solved at half the size (recursively) and upsampled;
 * below, the initial guess is the map. At most U2NET_MATTING_MAX_ITERATIONS
 * iterations.
 *
 * Memory is about 320 bytes an unknown pixel and 8 bytes an image pixel.
 * When more than MATTING_MAX_VARIABLES pixels are unknown, the image is
 * solved in bands of rows holding at most that many with MATTING_MARGIN
 * rows of overlap each side: a band's unknowns beyond its margins are fixed
 * at the values of the band above it (solved) and below it (the initial
 * guess: the half-size solve's), and only its core rows are kept. That is
 * the one approximation (README.md, Clean edges, has its measured error
 * against the whole solve). */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_internal.h"
#include "kernels.h"

#define MATTING_EPSILON 1e-7
#define MATTING_TOLERANCE 1e-5     /* stop when |r| <= this * |b| */
#define MATTING_MAX_VARIABLES (1 << 20)
#define MATTING_MARGIN 96
/* From this many unknowns on, the initial guess is the half-size solve's
 * (coarse_guess); below, it saves fewer iterations than it costs. */
#define MATTING_COARSE_VARIABLES (1 << 16)
/* Smaller solves run on one thread: an iteration's six loops each end in
 * the threads waiting for each other, which costs more than they share. */
#define MATTING_THREADED_VARIABLES (1 << 12)
#define SLOTS 25                   /* the 5x5 neighbourhood, raster order */
#define DIAG 12                    /* its centre; slots below it are the lower part */
/* The incomplete factor's pattern: the earlier pixels (raster order) a row
 * keeps, where the exact factor's large entries are (the front of the
 * elimination): two rows up from 2 left to IC_REACH right, one row up
 * IC_REACH either side, the same row IC_REACH to the left. */
#define IC_REACH 12
#define IC_SLOTS (4 * IC_REACH + 4)
#define IC_GROUPS 3                /* its image rows, in slots of these lengths: */
enum { GROUP0_LEN = IC_REACH + 3, GROUP1_LEN = 2 * IC_REACH + 1, GROUP2_LEN = IC_REACH };
/* The backward substitution's rows write into the two rows before them
 * (in the pass: above), up to IC_REACH columns either side: two rows on
 * two threads write disjoint pixels while one stays this far behind. */
#define BACKWARD_LAG (2 * IC_REACH + 2)
#define PAD_X IC_REACH             /* var_of's padding left and right */
#define PAD_Y 2                    /* and above and below */
#define WAVE_RUN 32                /* the most variables a wavefront step runs */
#define DOT_CHUNK 4096             /* variables a reduction's partial sum */

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

/* A 3x3 window's colour statistics: its centred colours c (raster order)
 * and the inverse of (epsilon U + sum of c c^T) / 9 (symmetric). */
typedef struct {
    double c[9][3];
    double inv[6];  /* 00 01 02 11 12 22 */
} window_stats;

/* unit[v] = v / 255.0 */
static inline void pixel_colour(const u2net_image *img, const double *unit, size_t i,
                                double rgb[3])
{
    const unsigned char *px = img->data + i * (size_t)img->channels;
    const int colour = img->channels >= 3;
    for (int c = 0; c < 3; c++)
        rgb[c] = unit[px[colour ? c : 0]];
}

/* The statistics of the window centred at (cx, cy), 1 <= cx <= W - 2. */
static void window_at(const u2net_image *img, const double *unit, int cx, int cy,
                      window_stats *ws)
{
    const int W = img->width;
    double col[9][3], m[3] = {0, 0, 0};
    for (int k = 0; k < 9; k++) {
        pixel_colour(img, unit, (size_t)(cy + k / 3 - 1) * W + (cx + k % 3 - 1), col[k]);
        for (int c = 0; c < 3; c++)
            m[c] += col[k][c];
    }
    for (int c = 0; c < 3; c++)
        m[c] /= 9.0;
    double a00 = MATTING_EPSILON, a01 = 0, a02 = 0, a11 = MATTING_EPSILON, a12 = 0,
           a22 = MATTING_EPSILON;
    for (int k = 0; k < 9; k++) {
        const double r = col[k][0] - m[0], g = col[k][1] - m[1], b = col[k][2] - m[2];
        ws->c[k][0] = r, ws->c[k][1] = g, ws->c[k][2] = b;
        a00 += r * r, a01 += r * g, a02 += r * b, a11 += g * g, a12 += g * b, a22 += b * b;
    }
    a00 /= 9, a01 /= 9, a02 /= 9, a11 /= 9, a12 /= 9, a22 /= 9;
    const double i00 = a11 * a22 - a12 * a12, i01 = a02 * a12 - a01 * a22,
                 i02 = a01 * a12 - a02 * a11, i11 = a00 * a22 - a02 * a02,
                 i12 = a01 * a02 - a00 * a12, i22 = a00 * a11 - a01 * a01;
    const double inv_det = 1.0 / (a00 * i00 + a01 * i01 + a02 * i02);
    ws->inv[0] = i00 * inv_det, ws->inv[1] = i01 * inv_det, ws->inv[2] = i02 * inv_det;
    ws->inv[3] = i11 * inv_det, ws->inv[4] = i12 * inv_det, ws->inv[5] = i22 * inv_det;
}

/* The state of one solve: the variables are the unknown pixels of rows
 * [y0, y1), numbered in raster order; every other pixel is fixed at
 * fixed[]. L_UU is symmetric and its rows have the 5x5 pattern of their
 * pixel, so a row keeps its lower half (slots 0..DIAG) and the neighbours
 * are found through var_of, a map of the image padded by PAD_X pixels left
 * and right and PAD_Y above and below: a slot's variable is var_of at the
 * pixel's padded index + the slot's offset - 1, -1 (none) for a fixed pixel
 * or the padding. Index -1 of a, ic and p is a zero row or a zero, so
 * that products need no test. */
typedef struct {
    const u2net_image *img;
    const unsigned char *trimap;
    float *fixed;          /* W*H: the current alpha, 0..1 */
    int32_t *var_of;       /* (W+2 PAD_X)*(H+2 PAD_Y): variable index + 1, 0 for none */
    float *zpix;           /* the same: the substitutions' z at a variable's pixel, 0 elsewhere */
    ptrdiff_t slot_offset[SLOTS]; /* padded index of each slot from the centre's */
    /* the factor's slots: padded offset from the centre and A's lower
     * slot or -1; in IC_GROUPS runs of consecutive pixels on one image
     * row each (group_offset: the first slot's offset); and the runs of
     * slot s's pairs: slot t of a row and slot u of the row in its slot s
     * are the same pixel for t = pair_t + m, u = pair_u + m, m < pair_len
     * (one run at most for each group of t: the slots of two groups at a
     * fixed offset meet in an interval), but for the pair (s - 1,
     * IC_SLOTS - 1), kept apart where pair_near */
    ptrdiff_t ic_offset[IC_SLOTS];
    signed char ic_a_slot[IC_SLOTS];
    ptrdiff_t group_offset[IC_GROUPS];
    unsigned char pair_runs[IC_SLOTS], pair_near[IC_SLOTS];
    unsigned char pair_t[IC_SLOTS][IC_GROUPS], pair_u[IC_SLOTS][IC_GROUPS], pair_len[IC_SLOTS][IC_GROUPS];
    /* per variable */
    size_t n;
    int64_t *pad;          /* its padded pixel index */
    float *a, *a_base;     /* [n, DIAG + 1] the lower half of L_UU */
    float *ic, *ic_base;   /* [n, IC_SLOTS + 1] the factor's row: its slots, then 1 / the diagonal */
    double *b, *x, *r, *z, *p, *p_base, *q;
    /* per image row of the solve */
    int rows;
    size_t *row_start;     /* [rows + 1] its first variable */
    atomic_int *progress;  /* [rows] a wavefront's columns done (wavefront()) */
    atomic_int failed;     /* a pivot <= 0 in the factorization */
    double shift;          /* the factorization's diagonal scale - 1 */
    double *partial;       /* a reduction's sums, two a chunk of DOT_CHUNK variables */
} solve_state;

/* The variable in slot s of the row of the variable at padded index pad. */
static inline int32_t slot_var(const solve_state *st, int64_t pad, int s)
{
    return st->var_of[pad + st->slot_offset[s]] - 1;
}

/* Rows of L_UU and b for variables [v0, v1), all on image row y. cache
 * holds windows of three rows, those centred on row wy at index
 * (wy mod 3) W + wx, computed when first used (have there: wy + 1), so
 * that consecutive rows share them. */
static void build_row(solve_state *st, size_t v0, size_t v1, int y, const double *unit,
                      window_stats *cache, int *have)
{
    const u2net_image *img = st->img;
    const int W = img->width, H = img->height;
    const int64_t Wp = W + 2 * PAD_X;
    for (size_t v = v0; v < v1; v++) {
        const int x = (int)(st->pad[v] % Wp) - PAD_X;
        const size_t pi = (size_t)y * W + x;
        double acc[SLOTS] = {0};
        double rhs = 0.0;
        for (int wy = y - 1; wy <= y + 1; wy++) {
            if (wy < 1 || wy > H - 2)
                continue;
            for (int wx = x - 1; wx <= x + 1; wx++) {
                if (wx < 1 || wx > W - 2)
                    continue;
                const size_t slot_index = (size_t)(wy % 3) * W + wx;
                window_stats *ws = cache + slot_index;
                if (have[slot_index] != wy + 1) {
                    window_at(img, unit, wx, wy, ws);
                    have[slot_index] = wy + 1;
                }
                /* the pixel is colour ki of the window */
                const int ki = (y - wy + 1) * 3 + (x - wx + 1);
                const double *ci = ws->c[ki], *m = ws->inv;
                const double t0 = m[0] * ci[0] + m[1] * ci[1] + m[2] * ci[2];
                const double t1 = m[1] * ci[0] + m[3] * ci[1] + m[4] * ci[2];
                const double t2 = m[2] * ci[0] + m[4] * ci[1] + m[5] * ci[2];
                for (int k = 0; k < 9; k++) {
                    const int jx = wx + k % 3 - 1, jy = wy + k / 3 - 1;
                    const int slot = (jy - y + 2) * 5 + (jx - x + 2);
                    const int is_var = st->var_of[(int64_t)(jy + PAD_Y) * Wp + jx + PAD_X] > 0;
                    /* the upper half is the lower half of later rows */
                    if (is_var && slot > DIAG)
                        continue;
                    const double *cj = ws->c[k];
                    const double value = (k == ki ? 1.0 : 0.0) -
                        (1.0 + t0 * cj[0] + t1 * cj[1] + t2 * cj[2]) * (1.0 / 9.0);
                    if (is_var)
                        acc[slot] += value;
                    else
                        rhs -= value * st->fixed[(size_t)jy * W + jx];
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
static int build_system(solve_state *st, int y0)
{
    const int W = st->img->width;
    const int threads = max_threads();
    window_stats *caches = malloc((size_t)threads * 3 * W * sizeof *caches);
    int *haves = calloc((size_t)threads * 3 * W, sizeof *haves);
    if (!caches || !haves) {
        free(caches), free(haves);
        return -1;
    }
    double unit[256];
    for (int v = 0; v < 256; v++)
        unit[v] = v / 255.0;
    #pragma omp parallel num_threads(threads)
    {
        window_stats *cache = caches + (size_t)thread_id() * 3 * W;
        int *have = haves + (size_t)thread_id() * 3 * W;
        #pragma omp for schedule(dynamic, 16)
        for (int y = y0; y < y0 + st->rows; y++) {
            const size_t a = st->row_start[y - y0], b = st->row_start[y - y0 + 1];
            if (a < b)
                build_row(st, a, b, y, unit, cache, have);
        }
    }
    free(caches), free(haves);
    return 0;
}

/* The factor's slots in raster order, its groups and, for each slot, the
 * runs of its pairs. */
static void ic_pattern(solve_state *st, int64_t Wp)
{
    int dy[IC_SLOTS], dx[IC_SLOTS], k = 0;
    for (int y = -2; y <= 0; y++) {
        const int lo = y == -2 ? -2 : -IC_REACH, hi = y == 0 ? -1 : IC_REACH;
        st->group_offset[y + 2] = (ptrdiff_t)y * Wp + lo;
        for (int x = lo; x <= hi; x++, k++) {
            dy[k] = y, dx[k] = x;
            st->ic_offset[k] = (ptrdiff_t)y * Wp + x;
            st->ic_a_slot[k] = (signed char)(x >= -2 && x <= 2 ? (y + 2) * 5 + x + 2 : -1);
        }
    }
    /* the pairs of s: t < s, and u the slot at offset (t - s); along a
     * group t and u advance together, so they come in runs */
    for (int s = 0; s < IC_SLOTS; s++) {
        int runs = 0, last_t = -2, last_u = -2;
        for (int t = 0; t < s; t++)
            for (int u = 0; u < IC_SLOTS; u++) {
                if (dy[u] != dy[t] - dy[s] || dx[u] != dx[t] - dx[s])
                    continue;
                if (runs > 0 && t == last_t + 1 && u == last_u + 1) {
                    st->pair_len[s][runs - 1]++;
                } else {
                    st->pair_t[s][runs] = (unsigned char)t;
                    st->pair_u[s][runs] = (unsigned char)u;
                    st->pair_len[s][runs] = 1;
                    runs++;
                }
                last_t = t, last_u = u;
            }
        /* the pair of the slot just before, (s - 1, IC_SLOTS - 1), ends the
         * last run when there is one: factor_rows takes it apart */
        st->pair_near[s] = last_t == s - 1;
        if (st->pair_near[s] && --st->pair_len[s][runs - 1] == 0)
            runs--;
        st->pair_runs[s] = (unsigned char)runs;
    }
}

/* The image column of a variable, counted from the right when backward
 * (a wavefront's own order). */
static inline int pass_column(const solve_state *st, int backward, size_t v)
{
    const int x = (int)(st->pad[v] % (st->img->width + 2 * PAD_X)) - PAD_X;
    return backward ? st->img->width - 1 - x : x;
}

/* A step over a run of the variables of one image row: [v0, v1), in
 * increasing order (forward) or decreasing (backward). */
typedef void (*row_step)(solve_state *st, size_t v0, size_t v1);

/* Runs step over every variable in raster order (forward) or its reverse,
 * with each image row's result what one sequential pass gives. A variable
 * depends on the two rows before its own (above it, or below when
 * backward) up to IC_REACH columns beyond its own, so the rows run as a
 * wavefront: row k of the pass on thread k mod threads, a run of at most
 * WAVE_RUN variables once rows k - 1 and k - 2 have passed it. progress[k]
 * is a column c (columns counted from the right when backward) such that
 * row k and every row before it are done left of c: row k's own, or row
 * k - 1's when smaller, so a row is done only once the one before is. */
static void wavefront(solve_state *st, int backward, int lag, int threads, row_step step)
{
    const int W = st->img->width, rows = st->rows;
    for (int k = 0; k < rows; k++)
        atomic_store_explicit(&st->progress[k], 0, memory_order_relaxed);
    #pragma omp parallel num_threads(threads)
    {
        int team = 1, me = 0;
#ifdef _OPENMP
        team = omp_get_num_threads(), me = omp_get_thread_num();
#endif
        for (int k = me; k < rows; k += team) {
            const int y = backward ? rows - 1 - k : k;
            const size_t first = st->row_start[y], end = st->row_start[y + 1];
            size_t done = 0; /* variables of the row done */
            while (first + done < end) {
                /* the run: the next variables whose columns the row before
                 * has passed by IC_REACH (all of them when it is done) */
                size_t run = 0;
                for (int spins = 0; run == 0; spins++) {
                    const int before = k == 0 ? W : atomic_load_explicit(&st->progress[k - 1],
                                                                          memory_order_acquire);
                    while (run < WAVE_RUN && first + done + run < end) {
                        const size_t v = backward ? end - 1 - done - run : first + done + run;
                        if (before < W && pass_column(st, backward, v) + lag >= before)
                            break;
                        run++;
                    }
                    if (run == 0 && spins > 256)
                        sched_yield();
                }
                if (backward)
                    step(st, end - done - run, end - done);
                else
                    step(st, first + done, first + done + run);
                done += run;
                /* passed: every column before the next variable's */
                int passed = W;
                if (first + done < end) {
                    const size_t v = backward ? end - 1 - done : first + done;
                    passed = pass_column(st, backward, v);
                }
                const int before = k == 0 ? W : atomic_load_explicit(&st->progress[k - 1],
                                                                      memory_order_acquire);
                atomic_store_explicit(&st->progress[k], passed < before ? passed : before,
                                      memory_order_release);
            }
            for (int spins = 0; k > 0 && atomic_load_explicit(&st->progress[k - 1],
                                                              memory_order_acquire) < W; spins++)
                if (spins > 256)
                    sched_yield();
            atomic_store_explicit(&st->progress[k], W, memory_order_release);
        }
    }
}

/* sum of a[m] b[m], m < len, in four partial sums: four chains of
 * additions, not one (ISO C keeps their order; the compiler makes them a
 * vector) */
static inline float dot4(const float *restrict a, const float *restrict b, int len)
{
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int m = 0;
    for (; m + 4 <= len; m += 4)
        s0 += a[m] * b[m], s1 += a[m + 1] * b[m + 1], s2 += a[m + 2] * b[m + 2], s3 += a[m + 3] * b[m + 3];
    for (; m < len; m++)
        s0 += a[m] * b[m];
    return (s0 + s1) + (s2 + s3);
}

/* The incomplete Cholesky factor's rows [v0, v1) of L_UU on the pattern,
 * the diagonal scaled by 1 + shift; a pivot <= 0 sets failed (and is
 * replaced by 1 so that the pass goes on). */
static void factor_rows(solve_state *st, size_t v0, size_t v1)
{
    for (size_t i = v0; i < v1; i++) {
        const float *arow = st->a + i * (DIAG + 1);
        float *lrow = st->ic + i * (IC_SLOTS + 1);
        double diag = arow[DIAG] * (1.0 + st->shift);
        float last = 0.0f; /* lrow[s - 1] */
        for (int s = 0; s < IC_SLOTS; s++) {
            const int32_t j = st->var_of[st->pad[i] + st->ic_offset[s]] - 1;
            if (j < 0) {
                lrow[s] = last = 0.0f;
                continue;
            }
            /* L_is = (A_is - sum over the pairs of L_it L_ju) / L_jj, in
             * float. Each slot needs the ones before it, so a row is one
             * chain of these sums: the pair of the slot just computed comes
             * last, from a register (in double, each run through a vector
             * reduction and that pair with it, the whole solve took a
             * quarter longer) */
            const float *ljrow = st->ic + (size_t)j * (IC_SLOTS + 1);
            float v = st->ic_a_slot[s] >= 0 ? arow[st->ic_a_slot[s]] : 0.0f;
            for (int q = 0; q < st->pair_runs[s]; q++) {
                const float *lt = lrow + st->pair_t[s][q], *lu = ljrow + st->pair_u[s][q];
                v -= dot4(lt, lu, st->pair_len[s][q]);
            }
            if (st->pair_near[s])
                v -= last * ljrow[IC_SLOTS - 1];
            lrow[s] = last = v * ljrow[IC_SLOTS];
            diag -= (double)last * last;
        }
        if (!(diag > 0.0)) {
            atomic_store_explicit(&st->failed, 1, memory_order_relaxed);
            diag = 1.0;
        }
        lrow[IC_SLOTS] = (float)(1.0 / sqrt(diag));
    }
}

/* Forward substitution, rows [v0, v1): z = L^-1 r, into zpix. A row's
 * groups are runs of pixels in zpix, whose slots outside the unknowns are
 * 0 in both the factor and zpix, so each is a dot product of a fixed
 * length. Only the same row's last pixel, the one just solved, is left to
 * the end, so that the chain from one variable to the next is a product, a
 * difference and the scale. */
static void forward_rows(solve_state *st, size_t v0, size_t v1)
{
    float *restrict zpix = st->zpix;
    for (size_t i = v0; i < v1; i++) {
        const float *l0 = st->ic + i * (IC_SLOTS + 1), *l1 = l0 + GROUP0_LEN, *l2 = l1 + GROUP1_LEN;
        float *zc = zpix + st->pad[i];
        const float far = (dot4(l0, zc + st->group_offset[0], GROUP0_LEN) +
                           dot4(l1, zc + st->group_offset[1], GROUP1_LEN)) +
                          dot4(l2, zc - IC_REACH, GROUP2_LEN - 1);
        zc[0] = ((float)st->r[i] - far - l2[GROUP2_LEN - 1] * zc[-1]) * l0[IC_SLOTS];
    }
}

/* Backward substitution, rows [v0, v1) from the last: z = L^-T z, from
 * zpix into z. A variable's value is final once the rows below have been
 * taken from it (each takes itself from the two rows above it as it
 * finishes) and then the same row's later variables, gathered from their
 * factor rows (pixel +m is slot GROUP0_LEN + GROUP1_LEN + IC_REACH - m of
 * its row), the one just solved last; then it is taken from the rows
 * above. */
static void backward_rows(solve_state *st, size_t v0, size_t v1)
{
    float *restrict zpix = st->zpix;
    const int same = GROUP0_LEN + GROUP1_LEN + IC_REACH;
    for (size_t i = v1; i-- > v0;) {
        const float *l0 = st->ic + i * (IC_SLOTS + 1), *l1 = l0 + GROUP0_LEN;
        float *zc = zpix + st->pad[i];
        const int32_t *var = st->var_of + st->pad[i];
        float acc = zc[0];
        for (int m = IC_REACH; m >= 1; m--)
            acc -= st->ic[(ptrdiff_t)(var[m] - 1) * (IC_SLOTS + 1) + same - m] * zc[m];
        const float zi = acc * l0[IC_SLOTS];
        zc[0] = zi;
        st->z[i] = zi;
        float *z0 = zc + st->group_offset[0], *z1 = zc + st->group_offset[1];
        for (int m = 0; m < GROUP0_LEN; m++)
            z0[m] -= l0[m] * zi;
        for (int m = 0; m < GROUP1_LEN; m++)
            z1[m] -= l1[m] * zi;
    }
}

/* u . v, and u . w when w is not NULL: sums over fixed chunks added in
 * order, so that they do not depend on the thread count. */
static double dot2(solve_state *st, const double *u, const double *v, const double *w,
                   double *uw, int threads)
{
    const int chunks = (int)((st->n + DOT_CHUNK - 1) / DOT_CHUNK);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int k = 0; k < chunks; k++) {
        const size_t end = (size_t)(k + 1) * DOT_CHUNK < st->n ? (size_t)(k + 1) * DOT_CHUNK : st->n;
        double s = 0.0, t = 0.0;
        for (size_t i = (size_t)k * DOT_CHUNK; i < end; i++) {
            s += u[i] * v[i];
            if (w)
                t += u[i] * w[i];
        }
        st->partial[2 * k] = s;
        st->partial[2 * k + 1] = t;
    }
    double total = 0.0, total_w = 0.0;
    for (int k = 0; k < chunks; k++)
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

/* z = (L L^T)^-1 r */
static void precondition(solve_state *st, int threads)
{
    wavefront(st, 0, IC_REACH, threads, forward_rows);
    wavefront(st, 1, BACKWARD_LAG, threads, backward_rows);
}

/* The real pixel index of a padded one. */
static size_t pixel_of(const solve_state *st, int64_t pad)
{
    const int64_t Wp = st->img->width + 2 * PAD_X;
    return (size_t)(pad / Wp - PAD_Y) * (size_t)st->img->width + (size_t)(pad % Wp - PAD_X);
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
    free(st->pad), free(st->a_base), free(st->ic_base);
    free(st->b), free(st->x), free(st->r), free(st->z), free(st->p_base), free(st->q);
    free(st->row_start), free(st->progress), free(st->partial);
    st->pad = NULL, st->a = st->a_base = NULL, st->ic = st->ic_base = NULL;
    st->b = NULL;
    st->x = st->r = st->z = st->p = st->p_base = st->q = NULL;
    st->row_start = NULL, st->progress = NULL, st->partial = NULL;
}

/* Solves the unknown pixels of rows [y0, y1) with every other pixel fixed
 * at st->fixed, and writes the solution, clipped to 0..1, into st->fixed
 * for rows [keep0, keep1). Returns the iterations, or -1 when out of memory. */
static int solve_rows(solve_state *st, int y0, int y1, int keep0, int keep1)
{
    const int W = st->img->width;
    const int64_t Wp = W + 2 * PAD_X;
    size_t n = 0;
    for (size_t i = (size_t)y0 * W; i < (size_t)y1 * W; i++)
        n += st->trimap[i] != 0 && st->trimap[i] != 255;
    if (n == 0)
        return 0;
    const int threads = n < MATTING_THREADED_VARIABLES ? 1 : max_threads();
    const size_t chunks = (n + DOT_CHUNK - 1) / DOT_CHUNK;
    st->n = n;
    st->rows = y1 - y0;
    st->pad = malloc(n * sizeof *st->pad);
    st->a_base = calloc((n + 1) * (DIAG + 1), sizeof *st->a_base);
    st->ic_base = calloc((n + 1) * (IC_SLOTS + 1), sizeof *st->ic_base);
    st->b = malloc(n * sizeof(double)), st->x = malloc(n * sizeof(double));
    st->r = malloc(n * sizeof(double)), st->z = malloc(n * sizeof(double));
    st->p_base = calloc(n + 1, sizeof(double)), st->q = malloc(n * sizeof(double));
    st->row_start = malloc(((size_t)st->rows + 1) * sizeof *st->row_start);
    st->progress = malloc((size_t)st->rows * sizeof *st->progress);
    st->partial = malloc(2 * chunks * sizeof *st->partial);
    if (!st->pad || !st->a_base || !st->ic_base || !st->b || !st->x || !st->r || !st->z ||
        !st->p_base || !st->q || !st->row_start || !st->progress || !st->partial) {
        free_solve(st);
        return -1;
    }
    st->a = st->a_base + (DIAG + 1);
    st->ic = st->ic_base + (IC_SLOTS + 1);
    st->p = st->p_base + 1;
    size_t v = 0;
    for (int y = y0; y < y1; y++) {
        st->row_start[y - y0] = v;
        for (int x = 0; x < W; x++) {
            const size_t i = (size_t)y * W + x;
            if (st->trimap[i] != 0 && st->trimap[i] != 255) {
                st->pad[v] = (int64_t)(y + PAD_Y) * Wp + x + PAD_X;
                st->var_of[st->pad[v]] = (int32_t)(v + 1);
                v++;
            }
        }
    }
    st->row_start[st->rows] = n;
    if (build_system(st, y0)) {
        free_solve(st);
        return -1;
    }
    /* the factorization may break down (a pivot <= 0); a larger diagonal
     * shift always succeeds eventually, since L_UU is positive semi-definite */
    static const double shifts[] = {1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0};
    for (size_t t = 0; t < sizeof shifts / sizeof *shifts; t++) {
        st->shift = shifts[t];
        atomic_store(&st->failed, 0);
        wavefront(st, 0, IC_REACH, threads, factor_rows);
        if (!atomic_load(&st->failed))
            break;
    }
    const int iterations = solve_pcg(st, threads);
    for (size_t i = 0; i < n; i++) {
        const size_t pi = pixel_of(st, st->pad[i]);
        const int y = (int)(pi / (size_t)W);
        st->var_of[st->pad[i]] = 0;
        st->zpix[st->pad[i]] = 0.0f;
        if (y >= keep0 && y < keep1) {
            const double a = st->x[i];
            st->fixed[pi] = (float)(a < 0.0 ? 0.0 : a > 1.0 ? 1.0 : a);
        }
    }
    free_solve(st);
    return iterations;
}

/* The initial guess of the unknown pixels from the same problem at half
 * the size (2x2 blocks: the mean colour and initial alpha; known when all
 * four are, as they are), solved the same way and upsampled bilinearly
 * (resize_bilinear). Returns 0, or an error code. */
static int coarse_guess(const u2net_image *img, const unsigned char *trimap, float *alpha,
                        u2net_error *err)
{
    const int W = img->width, H = img->height, C = img->channels;
    const int cw = (W + 1) / 2, ch = (H + 1) / 2;
    const size_t cn = (size_t)cw * ch;
    unsigned char *cdata = malloc(cn * (size_t)C), *ctri = malloc(cn);
    float *cinit = malloc(cn * sizeof *cinit), *calpha = malloc(cn * sizeof *calpha);
    if (!cdata || !ctri || !cinit || !calpha) {
        free(cdata), free(ctri), free(cinit), free(calpha);
        set_error(err, U2NET_ENOMEM, "out of memory for alpha matting of a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    for (int cy = 0; cy < ch; cy++)
        for (int cx = 0; cx < cw; cx++) {
            const int y1 = 2 * cy + 1 < H ? 2 * cy + 1 : 2 * cy;
            const int x1 = 2 * cx + 1 < W ? 2 * cx + 1 : 2 * cx;
            const size_t p[4] = {(size_t)2 * cy * W + 2 * cx, (size_t)2 * cy * W + x1,
                                 (size_t)y1 * W + 2 * cx, (size_t)y1 * W + x1};
            const size_t ci = (size_t)cy * cw + cx;
            int fg = 0, bg = 0;
            float a = 0.0f;
            for (int k = 0; k < 4; k++)
                fg += trimap[p[k]] == 255, bg += trimap[p[k]] == 0, a += alpha[p[k]];
            ctri[ci] = fg == 4 ? 255 : bg == 4 ? 0 : 128;
            cinit[ci] = a * 0.25f;
            for (int c = 0; c < C; c++) {
                int sum = 2;
                for (int k = 0; k < 4; k++)
                    sum += img->data[p[k] * C + c];
                cdata[ci * C + c] = (unsigned char)(sum / 4);
            }
        }
    const u2net_image coarse = {.width = cw, .height = ch, .channels = C, .data = cdata};
    int rc = u2net_alpha_matting(&coarse, ctri, cinit, calpha, err);
    free(cdata), free(ctri), free(cinit);
    float *up = rc == 0 ? malloc((size_t)W * H * sizeof *up) : NULL;
    if (rc == 0 && !up) {
        set_error(err, U2NET_ENOMEM, "out of memory for alpha matting of a %dx%d image", W, H);
        rc = U2NET_ENOMEM;
    }
    if (rc == 0) {
        resize_bilinear(calpha, 1, ch, cw, up, H, W, max_threads());
        for (size_t i = 0; i < (size_t)W * H; i++)
            if (trimap[i] != 0 && trimap[i] != 255)
                alpha[i] = up[i];
    }
    free(calpha), free(up);
    return rc;
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
    if (unknown >= MATTING_COARSE_VARIABLES && W >= 16 && H >= 16) {
        const int rc = coarse_guess(img, trimap, alpha, err);
        if (rc)
            return rc;
    }
    solve_state st = {0};
    st.img = img;
    st.trimap = trimap;
    st.fixed = alpha;
    st.var_of = calloc((size_t)(W + 2 * PAD_X) * (H + 2 * PAD_Y), sizeof *st.var_of);
    st.zpix = calloc((size_t)(W + 2 * PAD_X) * (H + 2 * PAD_Y), sizeof *st.zpix);
    if (!st.var_of || !st.zpix) {
        free(st.var_of), free(st.zpix);
        set_error(err, U2NET_ENOMEM, "out of memory for alpha matting of a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    for (int s = 0; s < SLOTS; s++)
        st.slot_offset[s] = (ptrdiff_t)(s / 5 - 2) * (W + 2 * PAD_X) + (s % 5 - 2);
    ic_pattern(&st, W + 2 * PAD_X);
    int rc = 0;
    if (unknown <= MATTING_MAX_VARIABLES) {
        rc = solve_rows(&st, 0, H, 0, H) < 0;
    } else {
        /* bands of core rows [y, core_end) holding about the budget with
         * their margins, top to bottom */
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
    free(st.var_of), free(st.zpix);
    if (rc) {
        set_error(err, U2NET_ENOMEM, "out of memory for alpha matting of a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    return 0;
}
