/* conv3x3.c - 3x3 dilated convolution: the plain reference kernel and the
 * im2col + GEMM kernel. Shapes and semantics are in kernels.h. */
#include "kernels.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Input pixel (c, y, x) of a's window (zero outside it). */
static float input_at(const conv3x3_args *a, int c, int y, int x)
{
    return y >= 0 && y < a->in_rows && x >= 0 && x < a->in_w ? a->in[c][(size_t)y * a->in_w + x]
                                                             : 0.0f;
}

void conv3x3_ref(const conv3x3_args *a, int threads)
{
    const int h = a->h, w = a->w, d = a->dilation, s = a->stride;
    #pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int co = 0; co < a->cout; co++) {
        float *o = a->out + co * a->out_plane;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float acc = a->bias ? a->bias[co] : 0.0f;
                for (int ci = 0; ci < a->cin; ci++) {
                    const float *k = a->weight + ((size_t)co * a->cin + ci) * 9;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++)
                            acc += k[ky * 3 + kx] * input_at(a, ci, y * s + a->row0 + (ky - 1) * d,
                                                             x * s + (kx - 1) * d);
                }
                if (a->relu)
                    acc = acc > 0.0f ? acc : 0.0f;
                if (a->residual)
                    acc += a->residual[co * a->residual_plane + (size_t)y * w + x];
                o[(size_t)y * w + x] = acc;
            }
    }
}

/* Tiling: the im2col matrix of a tile is K x n with K = 9*cin; n is chosen so
 * that it stays near 1 MiB (L2-resident while SGEMM streams it), but never
 * under 64 columns so SGEMM keeps a useful width. */
enum { TILE_BUDGET_FLOATS = 256 * 1024, TILE_MIN = 64, TILE_MAX = 4096 };

static size_t tile_cols(int cin)
{
    size_t n = TILE_BUDGET_FLOATS / ((size_t)9 * cin);
    if (n < TILE_MIN)
        n = TILE_MIN;
    if (n > TILE_MAX)
        n = TILE_MAX;
    return n & ~(size_t)15;
}

size_t conv3x3_scratch_floats(int cin)
{
    return (size_t)9 * cin * tile_cols(cin);
}

/* col [9*cin, n]: row (ci*9 + ky*3 + kx) holds, for output pixels
 * p0 .. p0+n-1 (row-major over the h x w output), the input pixel that tap
 * (ky, kx) of channel ci reads, or 0 outside the window. */
static void im2col_tile(const conv3x3_args *a, size_t p0, size_t n, float *col)
{
    const int w = a->w, in_w = a->in_w, s = a->stride;
    for (int ci = 0; ci < a->cin; ci++) {
        const float *src = a->in[ci];
        for (int ky = 0; ky < 3; ky++) {
            const int dy = a->row0 + (ky - 1) * a->dilation;
            for (int kx = 0; kx < 3; kx++) {
                const int dx = (kx - 1) * a->dilation;
                float *row = col + ((size_t)ci * 9 + ky * 3 + kx) * n;
                size_t p = p0, end = p0 + n;
                while (p < end) {
                    const int y = (int)(p / w);
                    const int x0 = (int)(p % w);
                    size_t run = (size_t)(w - x0);
                    if (run > end - p)
                        run = end - p;
                    float *dst = row + (p - p0);
                    const int sy = y * s + dy;
                    if (sy < 0 || sy >= a->in_rows) {
                        memset(dst, 0, run * sizeof(float));
                    } else {
                        const float *srow = src + (size_t)sy * in_w;
                        for (size_t i = 0; i < run; i++) {
                            const int sx = (x0 + (int)i) * s + dx;
                            dst[i] = (sx >= 0 && sx < in_w) ? srow[sx] : 0.0f;
                        }
                    }
                    p += run;
                }
            }
        }
    }
}

void conv3x3_im2col(const conv3x3_args *a, float *scratch, int threads)
{
    const size_t hw = (size_t)a->h * a->w;
    const int cout = a->cout, k = 9 * a->cin;
    const size_t tn = tile_cols(a->cin);
    const size_t ntiles = (hw + tn - 1) / tn;
    /* Deep layers have few pixels: split output channels too so every core
     * has work. The split is a function of the shapes alone. */
    int mblocks = 1;
    while (ntiles * mblocks < 8 && cout / (mblocks * 2) >= 32)
        mblocks *= 2;
    const int mb = (cout + mblocks - 1) / mblocks;
    const long ntasks = (long)ntiles * mblocks;
    const size_t scratch_per_thread = conv3x3_scratch_floats(a->cin);

    #pragma omp parallel num_threads(threads)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *col = scratch + (size_t)tid * scratch_per_thread;
        #pragma omp for schedule(dynamic)
        for (long t = 0; t < ntasks; t++) {
            const size_t p0 = (size_t)(t / mblocks) * tn;
            const size_t n = hw - p0 < tn ? hw - p0 : tn;
            const int m0 = (int)(t % mblocks) * mb;
            const int m = cout - m0 < mb ? cout - m0 : mb;
            if (m <= 0)
                continue;
            im2col_tile(a, p0, n, col);
            float *o = a->out + (size_t)m0 * a->out_plane + p0;
            for (int co = 0; co < m; co++) {
                float *orow = o + co * a->out_plane;
                const float b = a->bias ? a->bias[m0 + co] : 0.0f;
                for (size_t i = 0; i < n; i++)
                    orow[i] = b;
            }
            /* out tile [m, n] (row stride out_plane) += W[m0.., K] x col [K, n] */
            gemm_accumulate(m, (int)n, k, a->weight + (size_t)m0 * k, k, col, (int)n, o,
                            (int)a->out_plane);
            for (int co = 0; co < m; co++) {
                float *orow = o + co * a->out_plane;
                const float *r =
                    a->residual ? a->residual + (size_t)(m0 + co) * a->residual_plane + p0 : NULL;
                if (a->relu)
                    for (size_t i = 0; i < n; i++)
                        orow[i] = orow[i] > 0.0f ? orow[i] : 0.0f;
                if (r)
                    for (size_t i = 0; i < n; i++)
                        orow[i] += r[i];
            }
        }
    }
}
