/* resize.c - bilinear resize to an exact size, PyTorch align_corners=False.
 *
 * For each output coordinate, as PyTorch's CPU upsample_bilinear2d does it in
 * float: scale = in/out, src = scale*(dst+0.5)-0.5 clamped below at 0,
 * i0 = floor(src), i1 = i0+1 clamped to in-1, l1 = src-i0, l0 = 1-l1;
 * out = l0y*(l0x*v00 + l1x*v01) + l1y*(l0x*v10 + l1x*v11). */
#include "kernels.h"

typedef struct { int i0, i1; float l0, l1; } tap;

static inline tap tap_at(float scale, int in, int d)
{
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int i0 = (int)src;
    if (i0 > in - 1)
        i0 = in - 1;
    tap t;
    t.i0 = i0;
    t.i1 = i0 < in - 1 ? i0 + 1 : i0;
    t.l1 = src - (float)i0;
    t.l0 = 1.0f - t.l1;
    return t;
}

/* Output columns are done in blocks whose taps are computed once per
 * channel and block, rather than once per pixel. */
enum { TAP_BLOCK = 256 };

/* Rows y0 <= y < y1 of one plane: src [ih, iw] -> dst [y1 - y0, ow]. */
static void resize_plane_rows(const float *src, int ih, int iw, float *dst, int oh, int ow,
                              int y0, int y1)
{
    const float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
    tap tx[TAP_BLOCK];
    for (int x0 = 0; x0 < ow; x0 += TAP_BLOCK) {
        const int n = ow - x0 < TAP_BLOCK ? ow - x0 : TAP_BLOCK;
        for (int j = 0; j < n; j++)
            tx[j] = tap_at(sx, iw, x0 + j);
        for (int y = y0; y < y1; y++) {
            const tap ty = tap_at(sy, ih, y);
            const float *r0 = src + (size_t)ty.i0 * iw;
            const float *r1 = src + (size_t)ty.i1 * iw;
            float *o = dst + (size_t)(y - y0) * ow + x0;
            for (int j = 0; j < n; j++) {
                const tap t = tx[j];
                o[j] = ty.l0 * (t.l0 * r0[t.i0] + t.l1 * r0[t.i1]) +
                       ty.l1 * (t.l0 * r1[t.i0] + t.l1 * r1[t.i1]);
            }
        }
    }
}

void resize_bilinear(const float *in, int c, int ih, int iw,
                     float *out, int oh, int ow, int threads)
{
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        resize_plane_rows(in + (size_t)ch * ih * iw, ih, iw, out + (size_t)ch * oh * ow, oh, ow,
                          0, oh);
}

void resize_bilinear_rows(const float *in, int c, int ih, int iw, float *out, int oh, int ow,
                          int y0, int y1)
{
    for (int ch = 0; ch < c; ch++)
        resize_plane_rows(in + (size_t)ch * ih * iw, ih, iw, out + (size_t)ch * (y1 - y0) * ow,
                          oh, ow, y0, y1);
}
