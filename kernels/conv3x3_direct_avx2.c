/* conv3x3_direct_avx2.c - the two loop nests of the direct 3x3 convolution
 * (outblock and rowblock, kernels.h) with AVX2 + FMA intrinsics.
 * conv3x3_direct.c holds the work split, the strips' layout, the portable
 * versions of these loops and the choice between them.
 *
 * A vector holds 8 neighbouring pixels of one row; a group is two vectors
 * (16 pixels), or one at the end of a row that needs no more. With 16
 * registers, outblock keeps 4 output channels x 2 vectors and rowblock 4
 * rows x 2 vectors in registers: 8 accumulators, as many as cover the FMA
 * latency on both FMA ports. The loops read the input from strips
 * (kernels.h), whole vectors at constant offsets; only the stores at the
 * right end of the image are masked. The Makefile compiles this file alone
 * with -mavx2 -mfma; it is only called after kernel_isa_best() has found
 * them. */
#include "conv3x3_direct.h"

#if defined(__x86_64__) || defined(__i386__)
#if !defined(__AVX2__) || !defined(__FMA__)
#error "conv3x3_direct_avx2.c needs -mavx2 -mfma (see its rule in the Makefile)"
#endif

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

typedef __m256 vec;

enum {
    VL = 8, /* floats per vector */
    NV = 2, /* most vectors per group */
    CO = 4, /* outblock: output channels in registers (4 x 2 accumulators) */
    ROWS = CONV3X3_DIRECT_ROWS,
    RING = ROWS + 2, /* rowblock's strip slots per channel (kernels.h) */
    STRIP_ROW = CONV3X3_DIRECT_STRIP_ROW,
    STRIP_DILATED = CONV3X3_DIRECT_STRIP_DILATED,
    OUTBLOCK_CIN = CONV3X3_DIRECT_OUTBLOCK_CIN,
    ROWBLOCK_CIN = CONV3X3_DIRECT_ROWBLOCK_CIN,
    TASK_COUT = CONV3X3_DIRECT_TASK_COUT,
};

/* A strip vector. The empty asm keeps it in a register: otherwise GCC
 * folds the load into each FMA that uses it (one 512-bit load per FMA
 * halves the FMA rate on Zen 4; see conv3x3_direct_avx512.c). */
INLINE vec load_pixels(const float *at)
{
    vec x = _mm256_loadu_ps(at);
    __asm__("" : "+x"(x));
    return x;
}

/* Lanes 0 .. n-1 set, for n in 0 .. VL. */
INLINE __m256i first_lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* row[s .. s+7] with zeros outside columns 0 .. w-1; s may be negative. */
INLINE vec load_clipped(const float *row, int s, int w)
{
    if (s >= 0 && s + VL <= w)
        return _mm256_loadu_ps(row + s);
    if (s >= w || s <= -VL)
        return _mm256_setzero_ps();
    if (s >= 0)
        return _mm256_maskload_ps(row + s, first_lanes(w - s));
    /* columns 0 .. VL+s-1 (as far as the row goes), moved up to lanes -s.. */
    const vec head = _mm256_maskload_ps(row, first_lanes(VL + s < w ? VL + s : w));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const vec moved = _mm256_permutevar8x32_ps(head, _mm256_add_epi32(lane, _mm256_set1_epi32(s)));
    const __m256i from = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(-s - 1)); /* lanes -s.. */
    return _mm256_and_ps(moved, _mm256_castsi256_ps(from));
}

/* conv3x3_direct_copy_rows with vector loads and stores, up to the vector
 * the groups end in. */
static void copy_rows(const conv3x3_args *p, int ci0, int nci, int x0, int ncols,
                      const int *rows, const int *slots, int n, int nslots, float *strip)
{
    const int d = p->dilation, w = p->w, dil1 = d == 1;
    const int vectors = (ncols + (dil1 ? 2 : 0) + VL - 1) / VL;
    for (int c = 0; c < nci; c++)
        for (int i = 0; i < n; i++) {
            const int y = rows[i] + p->row0, inside = y >= 0 && y < p->in_rows;
            const float *row = inside ? p->in[ci0 + c] + (size_t)y * w : NULL;
            for (int kx = 0; kx < (dil1 ? 1 : 3); kx++) {
                float *o = strip +
                           ((size_t)c * nslots + slots[i]) * conv3x3_direct_slot_floats(dil1) +
                           kx * STRIP_DILATED;
                const int s = dil1 ? x0 - 1 : x0 + (kx - 1) * d;
                if (!inside) {
                    for (int v = 0; v < vectors; v++)
                        _mm256_storeu_ps(o + v * VL, _mm256_setzero_ps());
                    continue;
                }
                /* vectors lo .. hi-1 lie inside the row: plain loads */
                int lo = s >= 0 ? 0 : (-s + VL - 1) / VL, hi = s + VL <= w ? (w - s) / VL : 0;
                lo = lo < vectors ? lo : vectors;
                hi = hi < lo ? lo : hi < vectors ? hi : vectors;
                for (int v = 0; v < lo; v++)
                    _mm256_storeu_ps(o + v * VL, load_clipped(row, s + v * VL, w));
                for (int v = lo; v < hi; v++)
                    _mm256_storeu_ps(o + v * VL, _mm256_loadu_ps(row + s + v * VL));
                for (int v = hi; v < vectors; v++)
                    _mm256_storeu_ps(o + v * VL, load_clipped(row, s + v * VL, w));
            }
        }
}

/* Output pixels o[0 .. n-1] (n in 1..VL; n == VL when `whole`, which
 * needs no masks) after one block of input channels summed into `sum`: the
 * first block adds the bias, the others the output so far; after the last
 * come ReLU and the residual r (or NULL). */
INLINE void finish(float *o, const float *r, int n, int whole, float bias, vec sum, int first,
                   int last, int relu)
{
    const __m256i m = first_lanes(n);
    vec t;
    if (first) /* not a select: the output is not read before it is written */
        t = _mm256_add_ps(_mm256_set1_ps(bias), sum);
    else
        t = _mm256_add_ps(whole ? _mm256_loadu_ps(o) : _mm256_maskload_ps(o, m), sum);
    if (last && relu)
        t = _mm256_max_ps(t, _mm256_setzero_ps()); /* 0 for NaN, as t > 0 ? t : 0 */
    if (last && r)
        t = _mm256_add_ps(t, whole ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, m));
    if (whole)
        _mm256_storeu_ps(o, t);
    else
        _mm256_maskstore_ps(o, m, t);
}

#define VEC_ZERO() _mm256_setzero_ps()
#define VEC_BCAST(p) _mm256_broadcast_ss(p)
#define VEC_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define DIRECT_NAME(f) conv3x3_direct_##f##_avx2
#include "conv3x3_direct_loops.h"

#endif
