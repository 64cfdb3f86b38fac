/* maxpool.c - 2x2 max pool, stride 2, ceil mode. */
#include "kernels.h"

void maxpool2x2_ceil(const float *in, int c, int h, int w, float *out, int threads)
{
    const int oh = (h + 1) / 2, ow = (w + 1) / 2;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const float *src = in + (size_t)ch * h * w;
        float *dst = out + (size_t)ch * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = src + (size_t)(2 * oy) * w;
            /* the last row window of an odd height has one row */
            const float *r1 = 2 * oy + 1 < h ? r0 + w : r0;
            for (int ox = 0; ox < ow; ox++) {
                const int x0 = 2 * ox, x1 = 2 * ox + 1 < w ? 2 * ox + 1 : 2 * ox;
                float m = r0[x0];
                if (r0[x1] > m) m = r0[x1];
                if (r1[x0] > m) m = r1[x0];
                if (r1[x1] > m) m = r1[x1];
                dst[(size_t)oy * ow + ox] = m;
            }
        }
    }
}
