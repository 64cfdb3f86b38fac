/* maxpool.c - 2x2 max pool, stride 2, ceil mode. */
#include "kernels.h"

void maxpool2x2_ceil_rows(const float *in, int c, int h, int w, float *out, int y0, int y1)
{
    const int ow = (w + 1) / 2;
    for (int ch = 0; ch < c; ch++) {
        const float *src = in + (size_t)ch * h * w;
        float *dst = out + (size_t)ch * (y1 - y0) * ow;
        for (int oy = y0; oy < y1; oy++) {
            const float *r0 = src + (size_t)(2 * oy) * w;
            /* the last row window of an odd height has one row */
            const float *r1 = 2 * oy + 1 < h ? r0 + w : r0;
            float *d = dst + (size_t)(oy - y0) * ow;
            for (int ox = 0; ox < ow; ox++) {
                const int x0 = 2 * ox, x1 = 2 * ox + 1 < w ? 2 * ox + 1 : 2 * ox;
                float m = r0[x0];
                if (r0[x1] > m) m = r0[x1];
                if (r1[x0] > m) m = r1[x0];
                if (r1[x1] > m) m = r1[x1];
                d[ox] = m;
            }
        }
    }
}

void maxpool2x2_ceil(const float *in, int c, int h, int w, float *out, int threads)
{
    const int oh = (h + 1) / 2, ow = (w + 1) / 2;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        maxpool2x2_ceil_rows(in + (size_t)ch * h * w, 1, h, w, out + (size_t)ch * oh * ow, 0, oh);
}
