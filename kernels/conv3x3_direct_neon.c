/* conv3x3_direct_neon.c - the two loop nests of the direct 3x3 convolution
 * (outblock and rowblock, conv3x3_direct.h) with ARM64 Advanced SIMD (NEON)
 * intrinsics, from the template the AVX2 and AVX-512 files use
 * (conv3x3_direct_loops.h), so the sums run in the same order and give the
 * same bits as theirs. conv3x3_direct.c holds the work split, the strips'
 * layout, the portable loops and the choice between them.
 *
 * A vector holds 4 neighbouring pixels of one row; a group is two vectors
 * (8 pixels), or one at the end of a row that needs no more. Of the 32
 * registers, outblock keeps 8 output channels x 2 vectors and rowblock 4
 * rows x 2 vectors as accumulators. The strips are copied by the portable
 * conv3x3_direct_copy_rows (plain copies, which the compiler turns into
 * vector loads and stores); stores at the right end of the image go through
 * a small buffer, NEON having no masked stores. Advanced SIMD is part of
 * every ARMv8-A CPU; elsewhere than aarch64 this file compiles empty. */
#include "conv3x3_direct.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

typedef float32x4_t vec;

enum {
    VL = 4, /* floats per vector */
    NV = 2, /* most vectors per group */
    CO = 8, /* outblock: output channels in registers (8 x 2 accumulators) */
    ROWS = CONV3X3_DIRECT_ROWS,
    RING = ROWS + 2, /* rowblock's strip slots per channel (conv3x3_direct.h) */
    STRIP_ROW = CONV3X3_DIRECT_STRIP_ROW,
    STRIP_DILATED = CONV3X3_DIRECT_STRIP_DILATED,
    OUTBLOCK_CIN = CONV3X3_DIRECT_OUTBLOCK_CIN,
    ROWBLOCK_CIN = CONV3X3_DIRECT_ROWBLOCK_CIN,
    TASK_COUT = CONV3X3_DIRECT_TASK_COUT,
};

INLINE vec load_pixels(const float *at)
{
    return vld1q_f32(at);
}

/* The groups read at most the strip columns ncols + 1 of a slot (ncols a
 * multiple of VL), which conv3x3_direct_copy_rows fills. */
static void copy_rows(const conv3x3_args *p, int ci0, int nci, int x0, int ncols,
                      const int *rows, const int *slots, int n, int nslots, float *strip)
{
    conv3x3_direct_copy_rows(p, ci0, nci, x0, ncols, rows, slots, n, nslots, strip);
}

/* As finish() of the AVX loops: output pixels o[0 .. n-1] (n in 1..VL; n ==
 * VL when `whole`) after one block of input channels summed into `sum`: the
 * first block adds the bias, the others the output so far; after the last
 * come ReLU (0 for NaN, as t > 0 ? t : 0) and the residual r (or NULL). */
INLINE void finish(float *o, const float *r, int n, int whole, float bias, vec sum, int first,
                   int last, int relu)
{
    float out_part[VL] = {0}, res_part[VL] = {0};
    float *dst = o;
    const float *res = r;
    if (!whole) {
        if (!first)
            memcpy(out_part, o, (size_t)n * sizeof(float));
        if (last && r)
            memcpy(res_part, r, (size_t)n * sizeof(float));
        dst = out_part, res = r ? res_part : NULL;
    }
    vec t = vaddq_f32(first ? vdupq_n_f32(bias) : vld1q_f32(dst), sum);
    if (last && relu)
        t = vmaxnmq_f32(t, vdupq_n_f32(0.0f));
    if (last && res)
        t = vaddq_f32(t, vld1q_f32(res));
    vst1q_f32(dst, t);
    if (!whole)
        memcpy(o, out_part, (size_t)n * sizeof(float));
}

#define VEC_ZERO() vdupq_n_f32(0.0f)
#define VEC_BCAST(p) vld1q_dup_f32(p)
#define VEC_FMA(a, b, c) vfmaq_f32(c, a, b)
#define DIRECT_NAME(f) conv3x3_direct_##f##_neon
#include "conv3x3_direct_loops.h"

#endif
