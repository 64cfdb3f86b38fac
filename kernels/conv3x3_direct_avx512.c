/* conv3x3_direct_avx512.c - the two loop nests of the direct 3x3
 * convolution (outblock and rowblock, kernels.h) with AVX-512 intrinsics.
 * conv3x3_direct.c holds the work split, the strips' layout, the portable
 * versions of these loops and the choice between them.
 *
 * A vector holds 16 neighbouring pixels of one row; a group is two vectors
 * (32 pixels), or one at the end of a row that needs no more. The loops
 * read the input from strips (kernels.h), whole vectors at constant
 * offsets; only the stores at the right end of the image are masked. The
 * Makefile compiles this file alone with -mavx512f -mavx512vl -mavx512dq
 * -mavx512bw -mavx2 -mfma; it is only called after kernel_isa_best() has
 * found them. */
#include "conv3x3_direct.h"

#if defined(__x86_64__) || defined(__i386__)
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "conv3x3_direct_avx512.c needs -mavx512f -mfma (see its rule in the Makefile)"
#endif

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

typedef __m512 vec;

enum {
    VL = 16, /* floats per vector */
    NV = 2,  /* most vectors per group */
    CO = 8,  /* outblock: output channels in registers (8 x 2 accumulators) */
    ROWS = CONV3X3_DIRECT_ROWS,
    RING = ROWS + 2, /* rowblock's strip slots per channel (kernels.h) */
    STRIP_ROW = CONV3X3_DIRECT_STRIP_ROW,
    STRIP_DILATED = CONV3X3_DIRECT_STRIP_DILATED,
    OUTBLOCK_CIN = CONV3X3_DIRECT_OUTBLOCK_CIN,
    ROWBLOCK_CIN = CONV3X3_DIRECT_ROWBLOCK_CIN,
    TASK_COUT = CONV3X3_DIRECT_TASK_COUT,
};

/* A strip vector. The empty asm keeps it in a register: otherwise GCC
 * folds the load into each FMA that uses it, and one 512-bit load per FMA
 * halves the FMA rate (measured on Zen 4). */
INLINE vec load_pixels(const float *at)
{
    vec x = _mm512_loadu_ps(at);
    __asm__("" : "+v"(x));
    return x;
}

/* row[s .. s+15] with zeros outside columns 0 .. w-1; s may be negative. */
INLINE vec load_clipped(const float *row, int s, int w)
{
    if (s >= 0 && s + VL <= w)
        return _mm512_loadu_ps(row + s);
    if (s >= w || s <= -VL)
        return _mm512_setzero_ps();
    if (s >= 0)
        return _mm512_maskz_loadu_ps((__mmask16)((1u << (w - s)) - 1), row + s);
    /* columns 0 .. VL+s-1 (as far as the row goes), moved up to lanes -s..
     * (a permute: an expanding load is microcoded, ~10x slower) */
    const int n = VL + s < w ? VL + s : w;
    const vec head = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), row);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i from = _mm512_add_epi32(lane, _mm512_set1_epi32(s));
    return _mm512_maskz_permutexvar_ps((__mmask16)(0xffffu << -s), from, head);
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
                        _mm512_storeu_ps(o + v * VL, _mm512_setzero_ps());
                    continue;
                }
                /* vectors lo .. hi-1 lie inside the row: plain loads */
                int lo = s >= 0 ? 0 : (-s + VL - 1) / VL, hi = s + VL <= w ? (w - s) / VL : 0;
                lo = lo < vectors ? lo : vectors;
                hi = hi < lo ? lo : hi < vectors ? hi : vectors;
                for (int v = 0; v < lo; v++)
                    _mm512_storeu_ps(o + v * VL, load_clipped(row, s + v * VL, w));
                for (int v = lo; v < hi; v++)
                    _mm512_storeu_ps(o + v * VL, _mm512_loadu_ps(row + s + v * VL));
                for (int v = hi; v < vectors; v++)
                    _mm512_storeu_ps(o + v * VL, load_clipped(row, s + v * VL, w));
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
    const __mmask16 m = whole ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
    vec t;
    if (first) /* not a select: the output is not read before it is written */
        t = _mm512_add_ps(_mm512_set1_ps(bias), sum);
    else
        t = _mm512_add_ps(whole ? _mm512_loadu_ps(o) : _mm512_maskz_loadu_ps(m, o), sum);
    if (last && relu)
        t = _mm512_max_ps(t, _mm512_setzero_ps()); /* 0 for NaN, as t > 0 ? t : 0 */
    if (last && r)
        t = _mm512_add_ps(t, whole ? _mm512_loadu_ps(r) : _mm512_maskz_loadu_ps(m, r));
    if (whole)
        _mm512_storeu_ps(o, t);
    else
        _mm512_mask_storeu_ps(o, m, t);
}

#define VEC_ZERO() _mm512_setzero_ps()
#define VEC_BCAST(p) _mm512_set1_ps(*(p))
#define VEC_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define DIRECT_NAME(f) conv3x3_direct_##f##_avx512
#include "conv3x3_direct_loops.h"

#endif
