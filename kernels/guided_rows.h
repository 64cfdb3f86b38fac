/* guided_rows.h - the guided filter's output rows (engine/image/
 * guided_filter.c), the full-resolution pass that is most of its time: the
 * coefficients of an output row between two upsampled grid rows, then
 * q = A . I + B with an RGB guide. One loop, written once below, compiled
 * portably (guided_rows.c) and for AVX2 (guided_rows_avx2.c, where the
 * compiler runs it 8 pixels at a time); with no contraction of a*b + c
 * (ISO C's default) both give the same bits. */
#ifndef U2NET_GUIDED_ROWS_H
#define U2NET_GUIDED_ROWS_H

#include <stddef.h>

#include "kernels.h"

/* The coefficient planes of a row: a for R, G, B, then b. */
enum { GUIDED_ROW_PLANES = 4 };

/* r0, r1: the grid rows above and below, upsampled to w columns, planes
 * [GUIDED_ROW_PLANES, w] each; fy the weight of r1; the row's coefficients
 * are r0 + fy (r1 - r0), worked out pixel by pixel and not kept (a row of
 * them written and read back was a third of the loop's memory traffic);
 * rgb the guide's row (w RGB bytes, colours byte * (1 / 255)); q its w
 * results. */
void guided_row_rgb(kernel_isa isa, const float *r0, const float *r1, float fy,
                    const unsigned char *rgb, int w, float *q);
void guided_row_rgb_avx2(const float *r0, const float *r1, float fy, const unsigned char *rgb,
                         int w, float *q);

/* The row's coefficients alone, for the guides that are not RGB: coef
 * [GUIDED_ROW_PLANES, w]. */
static inline void guided_row_coefs(const float *restrict r0, const float *restrict r1, float fy,
                                    int w, float *restrict coef)
{
    for (int i = 0; i < GUIDED_ROW_PLANES * w; i++)
        coef[i] = r0[i] + fy * (r1[i] - r0[i]);
}

static inline void guided_row_rgb_loop(const float *restrict r0, const float *restrict r1,
                                       float fy, const unsigned char *restrict rgb, int w,
                                       float *restrict q)
{
    const float k255 = 1.0f / 255.0f;
    const size_t g = (size_t)w, b = 2 * (size_t)w, o = 3 * (size_t)w;
    for (int x = 0; x < w; x++) {
        const float ar = r0[x] + fy * (r1[x] - r0[x]);
        const float ag = r0[g + x] + fy * (r1[g + x] - r0[g + x]);
        const float ab = r0[b + x] + fy * (r1[b + x] - r0[b + x]);
        const float off = r0[o + x] + fy * (r1[o + x] - r0[o + x]);
        q[x] = ar * (rgb[3 * x] * k255) + ag * (rgb[3 * x + 1] * k255) +
               ab * (rgb[3 * x + 2] * k255) + off;
    }
}

#endif
