/* guided_filter.c - edge-aware refinement of a map with a colour image as
 * the guide: He, Sun and Tang's guided filter (ECCV 2010, colour guide) in
 * its fast form (He and Sun 2015): the coefficients are computed on a grid
 * subsampled by s and upsampled bilinearly; s = 1 is the plain filter.
 *
 * On the grid (ws x hs, ws = ceil(W / s)), cell (i, j) is the mean of its
 * s x s block of the image, clipped at the edges, over n = min(4, block
 * height) of its rows, rows y0 + (2k + 1) bh / 2n for k < n (every row when
 * s <= 4; 4 of 13 for a 12 MP photo: reading them all costs a pass over the
 * photo). With colours I in 0..1 and the map p, mean() the mean over the
 * (2 rs + 1)^2 window clipped to the grid, rs = max(1, round(r / s)):
 *   cov = mean(I p) - mean(I) mean(p)                     [3]
 *   var = mean(I I^T) - mean(I) mean(I)^T + eps U         [3 x 3]
 *   a = var^-1 cov, b = mean(p) - a . mean(I)             [3], [1]
 * and at full resolution q = A . I + B, where (A, B) is mean(a), mean(b)
 * sampled bilinearly at ((x + 1/2) / s - 1/2, (y + 1/2) / s - 1/2),
 * clamped to the grid. Every grid plane is float; window sums are double. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "guided_filter.h"
#include "guided_rows.h"
#include "image_internal.h"

/* Planes on the grid: the guide's colour and the map (inputs), then their
 * products, all box-filtered in place. */
enum { G_R, G_G, G_B, G_P, G_RR, G_RG, G_RB, G_GG, G_GB, G_BB, G_RP, G_GP, G_BP, G_PLANES };
/* The coefficients a (3) and b, box-filtered in place. */
enum { C_AR, C_AG, C_AB, C_B, C_PLANES };
/* Rows of an s x s block its grid cell averages: with more, the first pass
 * would read the whole photo, as long as the output pass takes (the
 * bandwidth of a second pass over 12 MP is more than a tenth of the
 * network's time at 320); every row when s <= 4. */
#define GUIDED_BLOCK_ROWS 4
_Static_assert((int)C_PLANES == (int)GUIDED_ROW_PLANES, "the planes guided_row_rgb reads");

/* Columns of a plane a task of box_mean's column pass takes. */
#define BOX_COLUMNS 256

/* Floats of box_mean's scratch per thread for a w x h grid and radius r:
 * BOX_COLUMNS running sums (doubles), a ring of min(r + 1, h) rows of
 * BOX_COLUMNS, and a grid row; even, so that every thread's sums stay
 * aligned. */
static size_t box_scratch_floats(int w, int h, int r)
{
    const size_t ring_rows = (size_t)(r + 1 < h ? r + 1 : h);
    const size_t floats = 2 * BOX_COLUMNS + ring_rows * BOX_COLUMNS + (size_t)w;
    return floats + (floats & 1);
}

/* Box mean over (2r+1)^2 clipped to the w x h grid, of n_planes planes of
 * w*h floats, in place; scratch holds threads * box_scratch_floats(w, h, r)
 * floats. Rows then columns, each a running sum in double divided by its
 * clipped length. A row is read from a copy of itself; the column pass
 * takes BOX_COLUMNS columns of a plane at a time (so that both threads have
 * work however few the planes) and keeps the last r + 1 rows it has
 * overwritten in a ring, for the sums to subtract them. */
static void box_mean(float *planes, int n_planes, int w, int h, int r, float *scratch, int threads)
{
    const size_t hw = (size_t)w * h;
    const int ring_rows = r + 1 < h ? r + 1 : h;
    const long chunks = (w + BOX_COLUMNS - 1) / BOX_COLUMNS;
    #pragma omp parallel num_threads(threads)
    {
        float *mine = scratch + (size_t)thread_id() * box_scratch_floats(w, h, r);
        double *sum = (double *)mine;
        float *ring = mine + 2 * BOX_COLUMNS;
        float *line = ring + (size_t)ring_rows * BOX_COLUMNS;
        #pragma omp for schedule(static)
        for (long row = 0; row < (long)n_planes * h; row++) {
            float *dst = planes + (size_t)row * w;
            memcpy(line, dst, (size_t)w * sizeof *line);
            double run = 0.0;
            for (int x = 0; x < r && x < w; x++)
                run += line[x];
            for (int x = 0; x < w; x++) {
                if (x + r < w)
                    run += line[x + r];
                if (x - r - 1 >= 0)
                    run -= line[x - r - 1];
                const int lo = x - r < 0 ? 0 : x - r, hi = x + r >= w ? w - 1 : x + r;
                dst[x] = (float)(run / (hi - lo + 1));
            }
        }
        #pragma omp for schedule(static)
        for (long task = 0; task < (long)n_planes * chunks; task++) {
            const int x0 = (int)(task % chunks) * BOX_COLUMNS;
            const int nx = w - x0 < BOX_COLUMNS ? w - x0 : BOX_COLUMNS;
            float *col = planes + (size_t)(task / chunks) * hw + x0;
            for (int x = 0; x < nx; x++)
                sum[x] = 0.0;
            for (int y = 0; y < r && y < h; y++)
                for (int x = 0; x < nx; x++)
                    sum[x] += col[(size_t)y * w + x];
            for (int y = 0; y < h; y++) {
                /* rows below y are still the row pass's; row y - r - 1
                 * is in the ring slot row y takes next */
                float *slot = ring + (size_t)(y % ring_rows) * BOX_COLUMNS;
                if (y + r < h)
                    for (int x = 0; x < nx; x++)
                        sum[x] += col[(size_t)(y + r) * w + x];
                if (y - r - 1 >= 0)
                    for (int x = 0; x < nx; x++)
                        sum[x] -= slot[x];
                float *dst = col + (size_t)y * w;
                memcpy(slot, dst, (size_t)nx * sizeof *slot);
                const int lo = y - r < 0 ? 0 : y - r, hi = y + r >= h ? h - 1 : y + r;
                const double inv = 1.0 / (hi - lo + 1);
                for (int x = 0; x < nx; x++)
                    dst[x] = (float)(sum[x] * inv);
            }
        }
    }
}

/* The colour of pixel i of img in 0..1 (gray replicated, alpha ignored). */
static inline void guide_rgb(const u2net_image *img, size_t i, float rgb[3])
{
    const unsigned char *px = img->data + i * (size_t)img->channels;
    const int colour = img->channels >= 3;
    for (int c = 0; c < 3; c++)
        rgb[c] = px[colour ? c : 0] * (1.0f / 255.0f);
}

/* The map filtered and its result: floats, or bytes (p byte * (1 / 255)
 * in float, q rounded to a byte as floor(255 q + 1/2), clamped), which
 * gives the same as the floats and spares the full-size float maps. */
typedef struct {
    const float *p;
    const unsigned char *p8;
    float *q;
    unsigned char *q8;
} guided_maps;

/* Grid planes G_R..G_P: the mean of each s x s block of the guide (its
 * bytes summed exactly, then / 255) and of p (summed in double), over
 * GUIDED_BLOCK_ROWS of the block's rows, evenly spread. */
static void subsample(const u2net_image *img, const guided_maps *io, int s, int ws, int hs,
                      float *g, int threads)
{
    const int W = img->width, H = img->height, C = img->channels;
    const int colour = C >= 3;
    const size_t n = (size_t)ws * hs;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int j = 0; j < hs; j++) {
        const int y0 = j * s, y1 = y0 + s < H ? y0 + s : H;
        const int bh = y1 - y0, nr = bh < GUIDED_BLOCK_ROWS ? bh : GUIDED_BLOCK_ROWS;
        for (int i = 0; i < ws; i++) {
            const int x0 = i * s, x1 = x0 + s < W ? x0 + s : W;
            uint64_t sum_r = 0, sum_g = 0, sum_b = 0;
            double sum_p = 0.0;
            for (int k = 0; k < nr; k++) {
                const int y = y0 + (2 * k + 1) * bh / (2 * nr);
                const unsigned char *px = img->data + ((size_t)y * W + x0) * C;
                const size_t row = (size_t)y * W;
                for (int x = x0; x < x1; x++, px += C) {
                    sum_r += px[0];
                    sum_g += px[colour ? 1 : 0];
                    sum_b += px[colour ? 2 : 0];
                    sum_p += io->p ? io->p[row + x] : io->p8[row + x] * (1.0f / 255.0f);
                }
            }
            const double count = (double)nr * (x1 - x0);
            const size_t k = (size_t)j * ws + i;
            g[G_R * n + k] = (float)((double)sum_r / count / 255.0);
            g[G_G * n + k] = (float)((double)sum_g / count / 255.0);
            g[G_B * n + k] = (float)((double)sum_b / count / 255.0);
            g[G_P * n + k] = (float)(sum_p / count);
        }
    }
}

/* Bilinear sample positions along one axis: output x reads grid cells
 * lo[x], lo[x] + 1 (clamped) with weight frac[x] on the second. */
static void upsample_taps(int len, int grid_len, int s, int *lo, int *hi, float *frac)
{
    for (int x = 0; x < len; x++) {
        double u = (x + 0.5) / s - 0.5;
        u = u < 0.0 ? 0.0 : u > grid_len - 1 ? grid_len - 1 : u;
        const int i = (int)u;
        lo[x] = i;
        hi[x] = i + 1 < grid_len ? i + 1 : i;
        frac[x] = (float)(u - i);
    }
}

static int guided_filter(const u2net_image *guide, const guided_maps *io, int radius, float eps,
                         int subsample_by, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!guide || !guide->data || !(io->p || io->p8) || !(io->q || io->q8) || guide->width < 1 ||
        guide->height < 1 ||
        guide->channels < 1 || guide->channels > 4) {
        set_error(err, U2NET_EARG, "u2net_guided_filter: needs a guide image, p and q");
        return U2NET_EARG;
    }
    if (guide->width > U2NET_MAX_IMAGE_SIDE || guide->height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)guide->width * guide->height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "guided filter: image %dx%d is over the limit", guide->width,
                  guide->height);
        return U2NET_EARG;
    }
    if (radius < 1 || radius > U2NET_GUIDED_MAX_RADIUS || subsample_by < 1 ||
        subsample_by > U2NET_GUIDED_MAX_RADIUS || !(eps > 0.0f && eps <= 1.0f)) {
        set_error(err, U2NET_EARG,
                  "guided filter: radius %d and subsampling %d must be in 1..%d, eps %g in (0, 1]",
                  radius, subsample_by, U2NET_GUIDED_MAX_RADIUS, (double)eps);
        return U2NET_EARG;
    }
    const int W = guide->width, H = guide->height, s = subsample_by;
    const int ws = (W + s - 1) / s, hs = (H + s - 1) / s;
    const int rs = (radius + s / 2) / s < 1 ? 1 : (radius + s / 2) / s;
    const size_t n = (size_t)ws * hs;
    const int threads = max_threads();
    const kernel_isa isa = kernel_isa_best();
    float *g = malloc(G_PLANES * n * sizeof *g);
    float *scratch = malloc((size_t)threads * box_scratch_floats(ws, hs, rs) * sizeof *scratch);
    int *xlo = malloc((size_t)W * sizeof *xlo), *xhi = malloc((size_t)W * sizeof *xhi);
    float *xfrac = malloc((size_t)W * sizeof *xfrac);
    /* per thread: the two grid rows an output row reads, upsampled to W
     * columns, [2, C_PLANES, W], and the output row's coefficients [C_PLANES, W] */
    float *lines = malloc((size_t)threads * (3 * C_PLANES + 1) * W * sizeof *lines);
    int rc = 0;
    if (!g || !scratch || !xlo || !xhi || !xfrac || !lines) {
        set_error(err, U2NET_ENOMEM, "out of memory for the guided filter of a %dx%d image", W, H);
        rc = U2NET_ENOMEM;
        goto done;
    }
    subsample(guide, io, s, ws, hs, g, threads);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        const float r = g[G_R * n + i], gg = g[G_G * n + i], b = g[G_B * n + i];
        const float pv = g[G_P * n + i];
        g[G_RR * n + i] = r * r, g[G_RG * n + i] = r * gg, g[G_RB * n + i] = r * b;
        g[G_GG * n + i] = gg * gg, g[G_GB * n + i] = gg * b, g[G_BB * n + i] = b * b;
        g[G_RP * n + i] = r * pv, g[G_GP * n + i] = gg * pv, g[G_BP * n + i] = b * pv;
    }
    box_mean(g, G_PLANES, ws, hs, rs, scratch, threads);
    /* a = var^-1 cov by the adjugate, b = mean(p) - a . mean(I); into the
     * first C_PLANES planes of g (each cell's after its own are read) */
    float *coef = g;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        const double mr = g[G_R * n + i], mg = g[G_G * n + i], mb = g[G_B * n + i];
        const double mp = g[G_P * n + i];
        const double c0 = g[G_RP * n + i] - mr * mp, c1 = g[G_GP * n + i] - mg * mp,
                     c2 = g[G_BP * n + i] - mb * mp;
        const double s00 = g[G_RR * n + i] - mr * mr + eps, s01 = g[G_RG * n + i] - mr * mg,
                     s02 = g[G_RB * n + i] - mr * mb, s11 = g[G_GG * n + i] - mg * mg + eps,
                     s12 = g[G_GB * n + i] - mg * mb, s22 = g[G_BB * n + i] - mb * mb + eps;
        const double i00 = s11 * s22 - s12 * s12, i01 = s02 * s12 - s01 * s22,
                     i02 = s01 * s12 - s02 * s11, i11 = s00 * s22 - s02 * s02,
                     i12 = s01 * s02 - s00 * s12, i22 = s00 * s11 - s01 * s01;
        const double det = s00 * i00 + s01 * i01 + s02 * i02;
        const double a0 = (i00 * c0 + i01 * c1 + i02 * c2) / det;
        const double a1 = (i01 * c0 + i11 * c1 + i12 * c2) / det;
        const double a2 = (i02 * c0 + i12 * c1 + i22 * c2) / det;
        coef[C_AR * n + i] = (float)a0, coef[C_AG * n + i] = (float)a1;
        coef[C_AB * n + i] = (float)a2;
        coef[C_B * n + i] = (float)(mp - a0 * mr - a1 * mg - a2 * mb);
    }
    box_mean(coef, C_PLANES, ws, hs, rs, scratch, threads);
    upsample_taps(W, ws, s, xlo, xhi, xfrac);
    #pragma omp parallel num_threads(threads)
    {
        float *rows = lines + (size_t)thread_id() * (3 * C_PLANES + 1) * W;
        float *coef_row = rows + 2 * (size_t)C_PLANES * W;
        float *q_row = coef_row + (size_t)C_PLANES * W;
        int have[2] = {-1, -1};  /* the grid rows in rows[0], rows[1] */
        #pragma omp for schedule(static)
        for (int y = 0; y < H; y++) {
            double u = (y + 0.5) / s - 0.5;  /* as upsample_taps, for row y */
            u = u < 0.0 ? 0.0 : u > hs - 1 ? hs - 1 : u;
            const int y0 = (int)u, y1 = y0 + 1 < hs ? y0 + 1 : y0;
            const float fy = (float)(u - y0);
            const int want[2] = {y0, y1};
            for (int k = 0; k < 2; k++) {
                if (have[k] == want[k])
                    continue;
                if (k == 0 && have[1] == want[0]) {
                    /* the lower row of the last output row is this one's upper */
                    memcpy(rows, rows + (size_t)C_PLANES * W, (size_t)C_PLANES * W * sizeof *rows);
                    have[0] = have[1];
                    have[1] = -1;
                    continue;
                }
                for (int c = 0; c < C_PLANES; c++) {
                    const float *grid = coef + (size_t)c * n + (size_t)want[k] * ws;
                    float *dst = rows + ((size_t)k * C_PLANES + c) * W;
                    for (int x = 0; x < W; x++)
                        dst[x] = grid[xlo[x]] + xfrac[x] * (grid[xhi[x]] - grid[xlo[x]]);
                }
                have[k] = want[k];
            }
            const unsigned char *px = guide->data + (size_t)y * W * guide->channels;
            float *out = io->q ? io->q + (size_t)y * W : q_row;
            if (guide->channels == 3) {
                guided_row_rgb(isa, rows, rows + (size_t)C_PLANES * W, fy, px, W, out);
            } else {
                guided_row_coefs(rows, rows + (size_t)C_PLANES * W, fy, W, coef_row);
                const float *ar = coef_row, *ag = coef_row + W, *ab = coef_row + 2 * (size_t)W,
                            *bb = coef_row + 3 * (size_t)W;
                for (int x = 0; x < W; x++) {
                    float rgb[3];
                    guide_rgb(guide, (size_t)y * W + x, rgb);
                    out[x] = ar[x] * rgb[0] + ag[x] * rgb[1] + ab[x] * rgb[2] + bb[x];
                }
            }
            if (io->q8) {
                unsigned char *dst = io->q8 + (size_t)y * W;
                for (int x = 0; x < W; x++) {
                    /* clamped first, the truncation is the floor */
                    float v = out[x] * 255.0f + 0.5f;
                    v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                    dst[x] = (unsigned char)(int)v;
                }
            }
        }
    }
done:
    free(g), free(scratch), free(xlo), free(xhi), free(xfrac), free(lines);
    return rc;
}

int u2net_guided_filter(const u2net_image *guide, const float *p, int radius, float eps,
                        int subsample_by, float *q, u2net_error *err)
{
    const guided_maps io = {p, NULL, q, NULL};
    if (!p || !q) {
        if (err)
            err->code = 0, err->msg[0] = 0;
        set_error(err, U2NET_EARG, "u2net_guided_filter: needs a guide image, p and q");
        return U2NET_EARG;
    }
    return guided_filter(guide, &io, radius, eps, subsample_by, err);
}

int guided_filter_bytes(const u2net_image *guide, const unsigned char *p, int radius, float eps,
                        int subsample_by, unsigned char *q, u2net_error *err)
{
    const guided_maps io = {NULL, p, NULL, q};
    return guided_filter(guide, &io, radius, eps, subsample_by, err);
}

void u2net_guided_params(int width, int height, int net_side, int radius, int *radius_used,
                         int *subsample_by)
{
    const int side = width > height ? width : height;
    const int net = net_side > 0 ? net_side : U2NET_GUIDED_DEFAULT_NET_SIDE;
    int r = radius;
    if (r <= 0) {
        r = (int)lround(4.0 * side / net);
        r = r < 2 ? 2 : r > U2NET_GUIDED_MAX_RADIUS ? U2NET_GUIDED_MAX_RADIUS : r;
    }
    /* s = r / 4 keeps 4 grid cells per radius (He and Sun's choice); the
     * grid is kept to about a megapixel so its planes stay small */
    int s = r / 4;
    const int grid_s = (int)ceil(sqrt((double)width * height / (double)U2NET_GUIDED_GRID_PIXELS));
    s = s < grid_s ? grid_s : s;
    s = s < 1 ? 1 : s;
    if (radius_used)
        *radius_used = r;
    if (subsample_by)
        *subsample_by = s;
}
