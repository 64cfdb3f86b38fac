/* conv1x1.c - 1x1 convolution (the fuse conv, 6 -> 1 channels: tiny, so the
 * plain kernel is the only one). */
#include "kernels.h"

void conv1x1(const float *const *in, int cin, size_t n, const float *weight,
             const float *bias, int cout, float *out)
{
    for (int co = 0; co < cout; co++) {
        float *o = out + co * n;
        for (size_t p = 0; p < n; p++)
            o[p] = bias[co];
        for (int ci = 0; ci < cin; ci++) {
            const float wv = weight[(size_t)co * cin + ci];
            const float *src = in[ci];
            for (size_t p = 0; p < n; p++)
                o[p] += wv * src[p];
        }
    }
}
