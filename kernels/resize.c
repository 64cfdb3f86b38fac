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
 * channel and block, rather than once per pixel. The sum is separable:
 * out = l0y * H(row i0) + l1y * H(row i1), H(r) = l0x*r[i0x] + l1x*r[i1x],
 * so each input row's H is computed once (an upsampled row shares its input
 * rows with its neighbours) and the vertical blend is a plain vector loop;
 * the operations, and so the bits, are those of the formula above. */
enum { TAP_BLOCK = 256 };

/* h[j] = H(r) over the block's taps. */
static void resize_row_h(const float *r, const tap *tx, int n, float *h)
{
    for (int j = 0; j < n; j++)
        h[j] = tx[j].l0 * r[tx[j].i0] + tx[j].l1 * r[tx[j].i1];
}

/* Rows y0 <= y < y1 of one plane: src [ih, iw] -> dst [y1 - y0, ow]. */
static void resize_plane_rows(const float *src, int ih, int iw, float *dst, int oh, int ow,
                              int y0, int y1)
{
    const float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
    tap tx[TAP_BLOCK];
    float hrow[2][TAP_BLOCK]; /* H of the input rows at[0], at[1] */
    for (int x0 = 0; x0 < ow; x0 += TAP_BLOCK) {
        const int n = ow - x0 < TAP_BLOCK ? ow - x0 : TAP_BLOCK;
        for (int j = 0; j < n; j++)
            tx[j] = tap_at(sx, iw, x0 + j);
        int at[2] = {-1, -1}; /* the input rows whose H hrow holds */
        for (int y = y0; y < y1; y++) {
            const tap ty = tap_at(sy, ih, y);
            int s0 = at[0] == ty.i0 ? 0 : at[1] == ty.i0 ? 1 : -1;
            if (s0 < 0) { /* into the slot that does not hold row i1 */
                s0 = at[0] == ty.i1 ? 1 : 0;
                resize_row_h(src + (size_t)ty.i0 * iw, tx, n, hrow[s0]);
                at[s0] = ty.i0;
            }
            int s1 = at[0] == ty.i1 ? 0 : at[1] == ty.i1 ? 1 : -1;
            if (s1 < 0) {
                s1 = 1 - s0;
                resize_row_h(src + (size_t)ty.i1 * iw, tx, n, hrow[s1]);
                at[s1] = ty.i1;
            }
            const float *h0 = hrow[s0], *h1 = hrow[s1];
            float *o = dst + (size_t)(y - y0) * ow + x0;
            for (int j = 0; j < n; j++)
                o[j] = ty.l0 * h0[j] + ty.l1 * h1[j];
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
