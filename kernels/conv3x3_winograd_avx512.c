/* conv3x3_winograd_avx512.c - the hot loops of the Winograd F(4x4, 3x3)
 * convolution with AVX-512: the input and output transforms of groups of 16
 * tiles (for groups of up to 8, on narrow images, the AVX2 ones of
 * conv3x3_winograd_avx2.c), the 36 matrix products and the weight
 * transform. The transforms do the operations of the AVX2 ones in the same
 * order, so a group's result does not depend on its width. Layouts are in
 * conv3x3_winograd.h. The Makefile builds this file alone with AVX-512 F,
 * VL, DQ and BW; it is only called after kernel_isa_best() found them. */
#include "conv3x3_winograd.h"

#if defined(__x86_64__) || defined(__i386__)
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "conv3x3_winograd_avx512.c needs -mavx512f -mfma (see its rule in the Makefile)"
#endif

#include <immintrin.h>

enum { MR = WINO_MR, WIDE = 16 };

/* o = B^T r for the 6 values r[0..5] of a patch row or column, as
 * input_transform6 of conv3x3_winograd_avx2.c. */
static inline void input_transform6(const __m512 r[6], __m512 o[6])
{
    const __m512 half = _mm512_set1_ps(0.5f), three_halves = _mm512_set1_ps(1.5f);
    const __m512 two = _mm512_set1_ps(2.0f), five_halves = _mm512_set1_ps(2.5f);
    const __m512 d31 = _mm512_sub_ps(r[3], r[1]), d42 = _mm512_sub_ps(r[4], r[2]);
    const __m512 s04 = _mm512_add_ps(r[0], r[4]), s15 = _mm512_add_ps(r[1], r[5]);
    o[0] = _mm512_fmadd_ps(three_halves, d31, _mm512_fnmadd_ps(two, r[2], s04));
    o[1] = _mm512_add_ps(_mm512_fmadd_ps(five_halves, r[3], r[4]),
                         _mm512_fmsub_ps(half, r[2], r[1]));
    o[2] = _mm512_add_ps(_mm512_fmadd_ps(half, r[3], r[4]),
                         _mm512_fnmadd_ps(five_halves, r[2], r[1]));
    o[3] = _mm512_fmadd_ps(two, d31, d42);
    o[4] = _mm512_fnmadd_ps(half, d31, d42);
    o[5] = _mm512_fmadd_ps(three_halves, d42, _mm512_fnmadd_ps(two, r[3], s15));
}

/* o = A^T m, as output_transform6 of conv3x3_winograd_avx2.c. */
static inline void output_transform6(const __m512 m[6], __m512 o[4])
{
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f);
    const __m512 eight = _mm512_set1_ps(8.0f);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), _mm512_add_ps(m[3], m[4]));
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), m[3], _mm512_fnmadd_ps(two, m[4], d12));
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), m[3], _mm512_fmadd_ps(four, m[4], s12));
    o[3] = _mm512_fmadd_ps(_mm512_set1_ps(0.125f), m[3],
                           _mm512_fnmadd_ps(eight, m[4], _mm512_add_ps(d12, m[5])));
}

/* Lanes 0..n-1, n <= 16. */
static inline __mmask16 first_lanes(int n)
{
    return (__mmask16)((1u << n) - 1);
}

/* row[x..x+15], zero from column w on; 0 <= x. */
static inline __m512 load_clipped(const float *row, int x, int w)
{
    if (x + WIDE <= w)
        return _mm512_loadu_ps(row + x);
    if (x >= w)
        return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps(first_lanes(w - x), row + x);
}

/* Dilation 1: p[k][l] = row[x0 + 4l + k-1] (zero outside 0..w-1). Loads the
 * 64 columns x0..x0+63, four tiles of 4 columns in each 128-bit lane;
 * transposes the 4x4 blocks of every lane (which gives k = 1..4 for the
 * tiles 4a + lane, element a) and puts the tiles in order; k = 0 and 5 are
 * k = 4 and 1 moved by one lane, plus the columns x0-1 and x0+64. */
static inline void load_row_dense(const float *row, int w, int x0, __m512 p[6])
{
    const __m512 a = load_clipped(row, x0, w), b = load_clipped(row, x0 + 16, w);
    const __m512 c = load_clipped(row, x0 + 32, w), e = load_clipped(row, x0 + 48, w);
    const __m512 t0 = _mm512_unpacklo_ps(a, b), t1 = _mm512_unpackhi_ps(a, b);
    const __m512 t2 = _mm512_unpacklo_ps(c, e), t3 = _mm512_unpackhi_ps(c, e);
    /* element 4a + k of lane-order holds tile 4a + k: from lane k, element a */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    p[1] = _mm512_permutexvar_ps(order, _mm512_shuffle_ps(t0, t2, 0x44));
    p[2] = _mm512_permutexvar_ps(order, _mm512_shuffle_ps(t0, t2, 0xee));
    p[3] = _mm512_permutexvar_ps(order, _mm512_shuffle_ps(t1, t3, 0x44));
    p[4] = _mm512_permutexvar_ps(order, _mm512_shuffle_ps(t1, t3, 0xee));
    const float left = x0 > 0 ? row[x0 - 1] : 0.0f;
    const float right = x0 + 64 < w ? row[x0 + 64] : 0.0f;
    /* lane l <- lane l-1 of p[4], left in lane 0; lane l <- l+1 of p[1] */
    p[0] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(p[4]),
                                                   _mm512_castps_si512(_mm512_set1_ps(left)), 15));
    p[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(right)),
                                                   _mm512_castps_si512(p[1]), 1));
}

static void input_group16(const float *const *in, int nch, int in_rows, int w, int d, int iy0,
                          int q0, float *v, size_t v_xi, size_t stride)
{
    /* d > 1: input column k of every lane is gathered from col_at[k], where
     * col_inside[k] says it is in the image */
    __m512i col_at[6];
    __mmask16 col_inside[6];
    int xq[WIDE];
    wino_lane_columns(d, q0, WIDE, xq);
    for (int k = 0; k < 6; k++) {
        col_at[k] = _mm512_add_epi32(_mm512_loadu_si512(xq), _mm512_set1_epi32(d * (k - 1)));
        col_inside[k] = _mm512_cmpge_epi32_mask(col_at[k], _mm512_setzero_si512()) &
                        _mm512_cmplt_epi32_mask(col_at[k], _mm512_set1_epi32(w));
    }
    for (int c = 0; c < nch; c++) {
        const float *plane = in[c];
        if (d == 1 && c + 1 < nch)
            wino_prefetch_patch(in[c + 1], in_rows, w, iy0, xq[0], WIDE);
        __m512 rows[6][6]; /* [patch row i][b]: B^T applied along each row */
        for (int i = 0; i < 6; i++) {
            const int y = iy0 + d * (i - 1);
            if (y < 0 || y >= in_rows) {
                for (int b = 0; b < 6; b++)
                    rows[i][b] = _mm512_setzero_ps();
                continue;
            }
            const float *row = plane + (size_t)y * w;
            __m512 p[6];
            if (d == 1)
                load_row_dense(row, w, xq[0], p);
            else
                for (int k = 0; k < 6; k++)
                    p[k] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), col_inside[k], col_at[k],
                                                    row, 4);
            input_transform6(p, rows[i]);
        }
        float *vc = v + c * stride;
        for (int b = 0; b < 6; b++) {
            __m512 col[6], t[6];
            for (int i = 0; i < 6; i++)
                col[i] = rows[i][b];
            input_transform6(col, t);
            for (int a = 0; a < 6; a++)
                _mm512_storeu_ps(vc + (6 * a + b) * v_xi, t[a]);
        }
    }
}

/* Inverse of the split in load_row_dense: o[j][l] is pixel 4l + j of an
 * output row; r[q] gets pixels 16q..16q+15. */
static inline void interleave_row(const __m512 o[4], __m512 r[4])
{
    const __m512 t0 = _mm512_unpacklo_ps(o[0], o[1]), t1 = _mm512_unpackhi_ps(o[0], o[1]);
    const __m512 t2 = _mm512_unpacklo_ps(o[2], o[3]), t3 = _mm512_unpackhi_ps(o[2], o[3]);
    /* u_m: lane k holds the 4 pixels of tile 4k + m */
    const __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xee);
    const __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xee);
    const __m512 lo01 = _mm512_shuffle_f32x4(u0, u1, 0x44), hi01 = _mm512_shuffle_f32x4(u0, u1, 0xee);
    const __m512 lo23 = _mm512_shuffle_f32x4(u2, u3, 0x44), hi23 = _mm512_shuffle_f32x4(u2, u3, 0xee);
    r[0] = _mm512_shuffle_f32x4(lo01, lo23, 0x88);
    r[1] = _mm512_shuffle_f32x4(lo01, lo23, 0xdd);
    r[2] = _mm512_shuffle_f32x4(hi01, hi23, 0x88);
    r[3] = _mm512_shuffle_f32x4(hi01, hi23, 0xdd);
}

static void output_group16(const float *m, size_t m_xi, size_t stride, int nco, const float *bias,
                           int relu, const float *residual, size_t residual_plane, float *out,
                           size_t out_plane, int h, int w, int d, int oy0, int q0, int lanes)
{
    int xq[WIDE];
    wino_lane_columns(d, q0, WIDE, xq);
    for (int co = 0; co < nco; co++) {
        const float *mc = m + co * stride;
        __m512 cols[6][4]; /* [b][i]: A^T applied along each column b */
        for (int b = 0; b < 6; b++) {
            __m512 col[6];
            for (int a = 0; a < 6; a++)
                col[a] = _mm512_loadu_ps(mc + (6 * a + b) * m_xi);
            output_transform6(col, cols[b]);
        }
        const __m512 bias_v = _mm512_set1_ps(bias ? bias[co] : 0.0f);
        __m512 o[4][4]; /* [i][j]: output pixel (i, j) of every lane */
        for (int i = 0; i < 4; i++) {
            __m512 row[6];
            for (int b = 0; b < 6; b++)
                row[b] = cols[b][i];
            output_transform6(row, o[i]);
            for (int j = 0; j < 4; j++) {
                o[i][j] = _mm512_add_ps(o[i][j], bias_v);
                if (relu)
                    o[i][j] = _mm512_max_ps(o[i][j], _mm512_setzero_ps());
            }
        }
        float *oc = out + co * out_plane;
        const float *rc = residual ? residual + co * residual_plane : NULL;
        if (d == 1) {
            const int x0 = xq[0];
            const int nx = 4 * lanes < w - x0 ? 4 * lanes : w - x0;
            for (int i = 0; i < 4 && oy0 + i < h; i++) {
                __m512 r[4];
                interleave_row(o[i], r);
                float *orow = oc + (size_t)(oy0 + i) * w + x0;
                const float *rrow = rc ? rc + (size_t)(oy0 + i) * w + x0 : NULL;
                for (int q = 0; q < 4 && WIDE * q < nx; q++) {
                    const int n = nx - WIDE * q;
                    const __mmask16 mask = n >= WIDE ? (__mmask16)0xffff : first_lanes(n);
                    if (rrow)
                        r[q] = _mm512_add_ps(r[q], _mm512_maskz_loadu_ps(mask, rrow + WIDE * q));
                    _mm512_mask_storeu_ps(orow + WIDE * q, mask, r[q]);
                }
            }
        } else {
            float pix[4][4][WIDE]; /* [i][j][lane] */
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    _mm512_storeu_ps(pix[i][j], o[i][j]);
            for (int i = 0; i < 4; i++) {
                const int y = oy0 + d * i;
                if (y >= h)
                    break;
                for (int l = 0; l < lanes; l++)
                    for (int j = 0; j < 4; j++) {
                        const int x = xq[l] + d * j;
                        if (x < w) {
                            const size_t at = (size_t)y * w + x;
                            oc[at] = rc ? pix[i][j][l] + rc[at] : pix[i][j][l];
                        }
                    }
            }
        }
    }
}

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
    input_group16, output_group16, WIDE,
};

#endif
