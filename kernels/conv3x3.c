/* conv3x3.c - 3x3 dilated convolution: the plain reference kernel and the
 * im2col + SGEMM kernel. Shapes and semantics are in kernels.h. */
#include "kernels.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void conv3x3_dilated_ref(const float *in, int cin, int h, int w,
                         const float *weight, const float *bias, int cout,
                         int dilation, int relu, const float *residual,
                         float *out, int threads)
{
    const size_t hw = (size_t)h * w;
    #pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int co = 0; co < cout; co++) {
        float *o = out + co * hw;
        for (size_t p = 0; p < hw; p++)
            o[p] = bias[co];
        for (int ci = 0; ci < cin; ci++) {
            const float *src = in + ci * hw;
            const float *k = weight + ((size_t)co * cin + ci) * 9;
            for (int ky = 0; ky < 3; ky++) {
                for (int kx = 0; kx < 3; kx++) {
                    const float kv = k[ky * 3 + kx];
                    const int dy = (ky - 1) * dilation, dx = (kx - 1) * dilation;
                    for (int y = 0; y < h; y++) {
                        const int sy = y + dy;
                        if (sy < 0 || sy >= h)
                            continue;
                        for (int x = 0; x < w; x++) {
                            const int sx = x + dx;
                            if (sx >= 0 && sx < w)
                                o[(size_t)y * w + x] += kv * src[(size_t)sy * w + sx];
                        }
                    }
                }
            }
        }
        if (relu)
            for (size_t p = 0; p < hw; p++)
                o[p] = o[p] > 0.0f ? o[p] : 0.0f;
    }
    if (residual)
        add_ref(out, residual, out, (size_t)cout * hw);
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
 * p0 .. p0+n-1 (row-major over the h x w plane), the input pixel that tap
 * (ky, kx) of channel ci reads, or 0 outside the image. */
static void im2col_tile(const float *in, int cin, int h, int w, int dilation,
                        size_t p0, size_t n, float *col)
{
    const size_t hw = (size_t)h * w;
    for (int ci = 0; ci < cin; ci++) {
        const float *src = in + ci * hw;
        for (int ky = 0; ky < 3; ky++) {
            const int dy = (ky - 1) * dilation;
            for (int kx = 0; kx < 3; kx++) {
                const int dx = (kx - 1) * dilation;
                float *row = col + ((size_t)ci * 9 + ky * 3 + kx) * n;
                size_t p = p0, end = p0 + n;
                while (p < end) {
                    const int y = (int)(p / w);
                    const int x0 = (int)(p % w);
                    size_t run = (size_t)(w - x0);
                    if (run > end - p)
                        run = end - p;
                    float *dst = row + (p - p0);
                    const int sy = y + dy;
                    if (sy < 0 || sy >= h) {
                        memset(dst, 0, run * sizeof(float));
                    } else {
                        const float *srow = src + (size_t)sy * w;
                        for (size_t i = 0; i < run; i++) {
                            const int sx = x0 + (int)i + dx;
                            dst[i] = (sx >= 0 && sx < w) ? srow[sx] : 0.0f;
                        }
                    }
                    p += run;
                }
            }
        }
    }
}

void conv3x3_dilated_im2col(const float *in, int cin, int h, int w,
                            const float *weight, const float *bias, int cout,
                            int dilation, int relu, const float *residual,
                            float *out, float *scratch, int threads)
{
    const size_t hw = (size_t)h * w;
    const int k = 9 * cin;
    const size_t tn = tile_cols(cin);
    const size_t ntiles = (hw + tn - 1) / tn;
    /* Deep layers have few pixels: split output channels too so every core
     * has work. The split is a function of the shapes alone. */
    int mblocks = 1;
    while (ntiles * mblocks < 8 && cout / (mblocks * 2) >= 32)
        mblocks *= 2;
    const int mb = (cout + mblocks - 1) / mblocks;
    const long ntasks = (long)ntiles * mblocks;
    const size_t scratch_per_thread = conv3x3_scratch_floats(cin);

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
            im2col_tile(in, cin, h, w, dilation, p0, n, col);
            float *o = out + (size_t)m0 * hw + p0;
            for (int co = 0; co < m; co++) {
                float *orow = o + co * hw;
                for (size_t i = 0; i < n; i++)
                    orow[i] = bias[m0 + co];
            }
            /* out tile [m, n] (row stride hw) += W[m0.., K] x col [K, n] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, (int)n, k,
                        1.0f, weight + (size_t)m0 * k, k, col, (int)n,
                        1.0f, o, (int)hw);
            for (int co = 0; co < m; co++) {
                float *orow = o + co * hw;
                const float *r = residual ? residual + (size_t)(m0 + co) * hw + p0 : NULL;
                if (relu)
                    for (size_t i = 0; i < n; i++)
                        orow[i] = orow[i] > 0.0f ? orow[i] : 0.0f;
                if (r)
                    for (size_t i = 0; i < n; i++)
                        orow[i] += r[i];
            }
        }
    }
}
