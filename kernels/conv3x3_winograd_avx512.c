/* conv3x3_winograd_avx512.c - the 36 matrix products and the weight
 * transform of the Winograd F(4x4, 3x3) convolution with AVX-512; the input
 * and output transforms are the AVX2 ones (conv3x3_winograd_avx2.c), whose
 * groups of 8 tiles are one 256-bit vector. Layouts are in
 * conv3x3_winograd.h. The Makefile builds this file alone with AVX-512 F,
 * VL, DQ and BW; it is only called after kernel_isa_best() found them. */
#include "conv3x3_winograd.h"

#if defined(__x86_64__) || defined(__i386__)
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "conv3x3_winograd_avx512.c needs -mavx512f -mfma (see its rule in the Makefile)"
#endif

#include <immintrin.h>

enum { MR = WINO_MR };

/* m[0..16) = c, or += c when accumulating. */
static inline __attribute__((always_inline)) void store_acc(float *m, int accumulate, __m512 c)
{
    _mm512_storeu_ps(m, accumulate ? _mm512_add_ps(_mm512_loadu_ps(m), c) : c);
}

/* The accumulators of one panel row r: c_r0..c_r2 += u[k][r] * b0..b2 */
#define FMA_ROW(r)                                                                                \
    do {                                                                                          \
        const __m512 a = _mm512_set1_ps(uk[r]);                                                   \
        c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0);                                                \
        if (nv > 1)                                                                               \
            c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);                                            \
        if (nv > 2)                                                                               \
            c##r##2 = _mm512_fmadd_ps(a, b2, c##r##2);                                            \
    } while (0)

#define STORE_ROW(r)                                                                              \
    do {                                                                                          \
        float *mr = m + (r) * stride;                                                             \
        store_acc(mr, accumulate, c##r##0);                                                       \
        if (nv > 1)                                                                               \
            store_acc(mr + 16, accumulate, c##r##1);                                              \
        if (nv > 2)                                                                               \
            store_acc(mr + 32, accumulate, c##r##2);                                              \
    } while (0)

/* m[r][0..16nv) (+)= sum_k u[k][r] v[k][0..16nv) for the MR = 8 rows of one
 * weight panel u [kc][MR]; v [kc] and m [MR] rows `stride` apart. 8 x nv
 * accumulators (24 of the 32 registers at nv = 3) against one broadcast per
 * row and nv loads per k: the loop is bound by the FMAs. nv is a constant
 * at every call; the accumulators are named variables because GCC keeps an
 * array of them in memory. */
static inline __attribute__((always_inline)) void
micro_kernel(int nv, int kc, const float *u, const float *v, size_t stride, float *m,
             int accumulate)
{
    const __m512 zero = _mm512_setzero_ps();
    __m512 c00 = zero, c01 = zero, c02 = zero, c10 = zero, c11 = zero, c12 = zero;
    __m512 c20 = zero, c21 = zero, c22 = zero, c30 = zero, c31 = zero, c32 = zero;
    __m512 c40 = zero, c41 = zero, c42 = zero, c50 = zero, c51 = zero, c52 = zero;
    __m512 c60 = zero, c61 = zero, c62 = zero, c70 = zero, c71 = zero, c72 = zero;
    for (int k = 0; k < kc; k++) {
        const float *vk = v + k * stride, *uk = u + k * MR;
        const __m512 b0 = _mm512_loadu_ps(vk);
        const __m512 b1 = nv > 1 ? _mm512_loadu_ps(vk + 16) : zero;
        const __m512 b2 = nv > 2 ? _mm512_loadu_ps(vk + 32) : zero;
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
        FMA_ROW(4);
        FMA_ROW(5);
        FMA_ROW(6);
        FMA_ROW(7);
    }
    STORE_ROW(0);
    STORE_ROW(1);
    STORE_ROW(2);
    STORE_ROW(3);
    STORE_ROW(4);
    STORE_ROW(5);
    STORE_ROW(6);
    STORE_ROW(7);
}

static void gemm_avx512(const float *u, size_t u_xi, int npanels, int kc, const float *v,
                        size_t v_xi, float *m, size_t m_xi, size_t stride, int ntp,
                        int accumulate)
{
    /* Tiles of 48 lanes outside, weight panels inside: the kc x 48 slice of
     * v stays in L1 while the panels stream past it; 64 lanes go as
     * 32 + 32 rather than 48 + 16. */
    for (int xi = 0; xi < 36; xi++) {
        const float *ux = u + xi * u_xi;
        for (int t = 0, nv; t < ntp; t += 16 * nv) {
            const int left = (ntp - t) / 16; /* vectors */
            nv = left == 4 ? 2 : left < 3 ? left : 3;
            const float *vt = v + xi * v_xi + t;
            for (int p = 0; p < npanels; p++) {
                const float *up = ux + (size_t)p * kc * MR;
                float *mp = m + xi * m_xi + p * MR * stride + t;
                if (nv == 3)
                    micro_kernel(3, kc, up, vt, stride, mp, accumulate);
                else if (nv == 2)
                    micro_kernel(2, kc, up, vt, stride, mp, accumulate);
                else
                    micro_kernel(1, kc, up, vt, stride, mp, accumulate);
            }
        }
    }
}

typedef float wino_vec __attribute__((vector_size(64)));
#include "conv3x3_winograd_weights.h"

/* How far ahead (in input channels) the packing prefetches its weights. */
enum { PREFETCH_K = 16 };

/* The 16 lanes are the MR output channels of a panel for two consecutive
 * input channels k, k+1: exactly the 16 floats of U[xi][p][k..k+1][0..MR)
 * that follow each other in memory. Each lane is gathered from its own row
 * of weight; rows past nco or cout (and k+1 past kc) are masked off. */
static void pack_avx512(const float *weight, int cin, int cout, int co0, int nco, int k0, int kc,
                        float *u, size_t u_xi)
{
    _Static_assert(MR == 8, "two panel rows are one vector");
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    /* lane (j, r) = (l / 8, l % 8) reads weight[co + r][k + j][.] */
    const __m512i at = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(cin * 9)),
                                        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9,
                                                          9, 9, 9));
    for (int p = 0; p * MR < nco; p++) {
        const int co = co0 + p * MR;
        int rows = nco - p * MR < MR ? nco - p * MR : MR;
        rows = cout - co < rows ? cout - co : rows;
        const __mmask16 row_mask = (__mmask16)(((1u << rows) - 1) * 0x0101u);
        for (int k = 0; k < kc; k += 2) {
            const __mmask16 valid = k + 1 < kc ? row_mask : (__mmask16)(row_mask & 0xff);
            const float *src = weight + ((size_t)co * cin + k0 + k) * 9;
            /* the rows' weights PREFETCH_K input channels on, which the
             * gathers would otherwise wait for, row by row */
            for (int r = 0; r < rows; r++)
                _mm_prefetch((const char *)(src + (size_t)r * cin * 9 + 9 * PREFETCH_K),
                             _MM_HINT_T0);
            wino_vec g[9], gg[3][6];
            for (int t = 0; t < 9; t++)
                g[t] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, at, src + t, 4);
            wino_weight_columns(g, gg);
            float *dst = u + ((size_t)p * kc + k) * MR;
            const __mmask16 store = k + 1 < kc ? 0xffff : 0x00ff;
            for (int a = 0; a < 6; a++) {
                wino_vec row[6];
                wino_g_column(&gg[0][a], 6, row);
                for (int b = 0; b < 6; b++)
                    _mm512_mask_storeu_ps(dst + (6 * a + b) * u_xi, store, row[b]);
            }
        }
    }
}

const wino_loops wino_loops_avx512 = {
    wino_input_group_avx2, wino_output_group_avx2, gemm_avx512, pack_avx512,
};

#endif
