/* conv3x3_winograd_avx2.c - the hot loops of the Winograd F(4x4, 3x3)
 * convolution with AVX2 + FMA intrinsics: input transform, output transform,
 * the 36 matrix products and the weight transform. conv3x3_winograd.c holds
 * the algorithm's description, the work split, the portable versions of
 * these loops and the runtime choice between them; conv3x3_winograd.h has
 * the data layouts.
 *
 * Every vector holds one value for each of the 8 tiles (lanes) of a group.
 * The Makefile compiles this file alone with -mavx2 -mfma; it is only called
 * after __builtin_cpu_supports has found both. */
#include "conv3x3_winograd.h"

#if defined(__x86_64__) || defined(__i386__)
#if !defined(__AVX2__) || !defined(__FMA__)
#error "conv3x3_winograd_avx2.c needs -mavx2 -mfma (see its rule in the Makefile)"
#endif

#include <immintrin.h>

enum { MR = WINO_MR };

/* o = B^T r for the 6 values r[0..5] of a patch row or column (B^T in
 * conv3x3_winograd.c). */
static inline void input_transform6(const __m256 r[6], __m256 o[6])
{
    const __m256 half = _mm256_set1_ps(0.5f), three_halves = _mm256_set1_ps(1.5f);
    const __m256 two = _mm256_set1_ps(2.0f), five_halves = _mm256_set1_ps(2.5f);
    const __m256 d31 = _mm256_sub_ps(r[3], r[1]), d42 = _mm256_sub_ps(r[4], r[2]);
    const __m256 s04 = _mm256_add_ps(r[0], r[4]), s15 = _mm256_add_ps(r[1], r[5]);
    o[0] = _mm256_fmadd_ps(three_halves, d31, _mm256_fnmadd_ps(two, r[2], s04));
    o[1] = _mm256_add_ps(_mm256_fmadd_ps(five_halves, r[3], r[4]),
                         _mm256_fmsub_ps(half, r[2], r[1]));
    o[2] = _mm256_add_ps(_mm256_fmadd_ps(half, r[3], r[4]),
                         _mm256_fnmadd_ps(five_halves, r[2], r[1]));
    o[3] = _mm256_fmadd_ps(two, d31, d42);
    o[4] = _mm256_fnmadd_ps(half, d31, d42);
    o[5] = _mm256_fmadd_ps(three_halves, d42, _mm256_fnmadd_ps(two, r[3], s15));
}

/* o = A^T m for the 6 values m[0..5] of a transformed row or column (A^T in
 * conv3x3_winograd.c). */
static inline void output_transform6(const __m256 m[6], __m256 o[4])
{
    const __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
    const __m256 eight = _mm256_set1_ps(8.0f);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), _mm256_add_ps(m[3], m[4]));
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(0.5f), m[3], _mm256_fnmadd_ps(two, m[4], d12));
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(0.25f), m[3], _mm256_fmadd_ps(four, m[4], s12));
    o[3] = _mm256_fmadd_ps(_mm256_set1_ps(0.125f), m[3],
                           _mm256_fnmadd_ps(eight, m[4], _mm256_add_ps(d12, m[5])));
}

/* Lanes 0..n-1 set, n in 1..7. */
static inline __m256i first_lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* row[x..x+7], zero from column w on; 0 <= x. */
static inline __m256 load_clipped(const float *row, int x, int w)
{
    if (x + 8 <= w)
        return _mm256_loadu_ps(row + x);
    if (x >= w)
        return _mm256_setzero_ps();
    return _mm256_maskload_ps(row + x, first_lanes(w - x));
}

/* Dilation 1: p[k][l] = row[x0 + 4l + k-1] (zero outside 0..w-1). Loads the
 * 32 columns x0..x0+31 and splits them by column mod 4 (an 8x4 -> 4x8
 * transpose), which gives k = 1..4; k = 0 and 5 are k = 4 and 1 moved by one
 * lane, plus the columns x0-1 and x0+32 just outside the 32. */
static inline void load_row_dense(const float *row, int w, int x0, __m256 p[6])
{
    const __m256 l0 = load_clipped(row, x0, w), l1 = load_clipped(row, x0 + 8, w);
    const __m256 l2 = load_clipped(row, x0 + 16, w), l3 = load_clipped(row, x0 + 24, w);
    /* lanes [tile l | tile l+4], 4 columns each */
    const __m256 a = _mm256_permute2f128_ps(l0, l2, 0x20), b = _mm256_permute2f128_ps(l0, l2, 0x31);
    const __m256 c = _mm256_permute2f128_ps(l1, l3, 0x20), e = _mm256_permute2f128_ps(l1, l3, 0x31);
    const __m256 ab_lo = _mm256_unpacklo_ps(a, b), ab_hi = _mm256_unpackhi_ps(a, b);
    const __m256 ce_lo = _mm256_unpacklo_ps(c, e), ce_hi = _mm256_unpackhi_ps(c, e);
    p[1] = _mm256_shuffle_ps(ab_lo, ce_lo, 0x44);
    p[2] = _mm256_shuffle_ps(ab_lo, ce_lo, 0xee);
    p[3] = _mm256_shuffle_ps(ab_hi, ce_hi, 0x44);
    p[4] = _mm256_shuffle_ps(ab_hi, ce_hi, 0xee);
    const float left = x0 > 0 ? row[x0 - 1] : 0.0f;
    const float right = x0 + 32 < w ? row[x0 + 32] : 0.0f;
    const __m256i up = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6); /* lane l <- l-1 */
    const __m256i down = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7); /* lane l <- l+1 */
    p[0] = _mm256_blend_ps(_mm256_permutevar8x32_ps(p[4], up), _mm256_set1_ps(left), 0x01);
    p[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(p[1], down), _mm256_set1_ps(right), 0x80);
}

void wino_input_group_avx2(const float *const *in, int nch, int in_rows, int w, int d, int iy0,
                           int q0, float *v, size_t v_xi, size_t stride)
{
    /* d > 1: input column k of every lane is gathered; col_at[k] holds the
     * lanes' image columns, col_inside[k] which of them are in the image. */
    __m256i col_at[6], col_inside[6];
    int xq[8];
    wino_lane_columns(d, q0, 8, xq);
    for (int k = 0; k < 6; k++) {
        const __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)xq),
                                           _mm256_set1_epi32(d * (k - 1)));
        col_at[k] = x;
        col_inside[k] = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), x),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32(w), x));
    }
    for (int c = 0; c < nch; c++) {
        const float *plane = in[c];
        if (d == 1 && c + 1 < nch)
            wino_prefetch_patch(in[c + 1], in_rows, w, iy0, xq[0], 8);
        __m256 rows[6][6]; /* [patch row i][b]: B^T applied along each row */
        for (int i = 0; i < 6; i++) {
            const int y = iy0 + d * (i - 1);
            if (y < 0 || y >= in_rows) {
                for (int b = 0; b < 6; b++)
                    rows[i][b] = _mm256_setzero_ps();
                continue;
            }
            const float *row = plane + (size_t)y * w;
            __m256 p[6];
            if (d == 1)
                load_row_dense(row, w, xq[0], p);
            else
                for (int k = 0; k < 6; k++)
                    p[k] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), row, col_at[k],
                                                    _mm256_castsi256_ps(col_inside[k]), 4);
            input_transform6(p, rows[i]);
        }
        float *vc = v + c * stride;
        for (int b = 0; b < 6; b++) {
            __m256 col[6], t[6];
            for (int i = 0; i < 6; i++)
                col[i] = rows[i][b];
            input_transform6(col, t);
            for (int a = 0; a < 6; a++)
                _mm256_storeu_ps(vc + (6 * a + b) * v_xi, t[a]);
        }
    }
}

/* Inverse of the split in load_row_dense: o[j][l] is pixel 4l + j of an
 * output row; r[q] gets pixels 8q..8q+7. */
static inline void interleave_row(const __m256 o[4], __m256 r[4])
{
    const __m256 t0 = _mm256_unpacklo_ps(o[0], o[1]), t1 = _mm256_unpackhi_ps(o[0], o[1]);
    const __m256 t2 = _mm256_unpacklo_ps(o[2], o[3]), t3 = _mm256_unpackhi_ps(o[2], o[3]);
    const __m256 a = _mm256_shuffle_ps(t0, t2, 0x44), b = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 c = _mm256_shuffle_ps(t1, t3, 0x44), e = _mm256_shuffle_ps(t1, t3, 0xee);
    r[0] = _mm256_permute2f128_ps(a, b, 0x20);
    r[1] = _mm256_permute2f128_ps(c, e, 0x20);
    r[2] = _mm256_permute2f128_ps(a, b, 0x31);
    r[3] = _mm256_permute2f128_ps(c, e, 0x31);
}

void wino_output_group_avx2(const float *m, size_t m_xi, size_t stride, int nco,
                            const float *bias, int relu, const float *residual,
                            size_t residual_plane, float *out, size_t out_plane, int h, int w,
                            int d, int oy0, int q0, int lanes)
{
    int xq[8];
    wino_lane_columns(d, q0, 8, xq);
    for (int co = 0; co < nco; co++) {
        const float *mc = m + co * stride;
        __m256 cols[6][4]; /* [b][i]: A^T applied along each column b */
        for (int b = 0; b < 6; b++) {
            __m256 col[6];
            for (int a = 0; a < 6; a++)
                col[a] = _mm256_loadu_ps(mc + (6 * a + b) * m_xi);
            output_transform6(col, cols[b]);
        }
        const __m256 bias_v = _mm256_set1_ps(bias ? bias[co] : 0.0f);
        __m256 o[4][4]; /* [i][j]: output pixel (i, j) of every lane */
        for (int i = 0; i < 4; i++) {
            __m256 row[6];
            for (int b = 0; b < 6; b++)
                row[b] = cols[b][i];
            output_transform6(row, o[i]);
            for (int j = 0; j < 4; j++) {
                o[i][j] = _mm256_add_ps(o[i][j], bias_v);
                if (relu)
                    o[i][j] = _mm256_max_ps(o[i][j], _mm256_setzero_ps());
            }
        }
        float *oc = out + co * out_plane;
        const float *rc = residual ? residual + co * residual_plane : NULL;
        if (d == 1) {
            const int x0 = xq[0];
            const int nx = 4 * lanes < w - x0 ? 4 * lanes : w - x0;
            for (int i = 0; i < 4 && oy0 + i < h; i++) {
                __m256 r[4];
                interleave_row(o[i], r);
                float *orow = oc + (size_t)(oy0 + i) * w + x0;
                const float *rrow = rc ? rc + (size_t)(oy0 + i) * w + x0 : NULL;
                for (int q = 0; q < 4 && 8 * q < nx; q++) {
                    const int n = nx - 8 * q;
                    if (n >= 8) {
                        if (rrow)
                            r[q] = _mm256_add_ps(r[q], _mm256_loadu_ps(rrow + 8 * q));
                        _mm256_storeu_ps(orow + 8 * q, r[q]);
                    } else {
                        const __m256i mask = first_lanes(n);
                        if (rrow)
                            r[q] = _mm256_add_ps(r[q], _mm256_maskload_ps(rrow + 8 * q, mask));
                        _mm256_maskstore_ps(orow + 8 * q, mask, r[q]);
                    }
                }
            }
        } else {
            float pix[4][4][8]; /* [i][j][lane] */
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    _mm256_storeu_ps(pix[i][j], o[i][j]);
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

/* One row of accumulators: c[0..nv) += a * b[0..nv). */
static inline __attribute__((always_inline)) void
fma_row(int nv, __m256 a, __m256 b0, __m256 b1, __m256 b2, __m256 *c0, __m256 *c1, __m256 *c2)
{
    *c0 = _mm256_fmadd_ps(a, b0, *c0);
    if (nv > 1)
        *c1 = _mm256_fmadd_ps(a, b1, *c1);
    if (nv > 2)
        *c2 = _mm256_fmadd_ps(a, b2, *c2);
}

/* m[0..8) = c, or += c when accumulating. */
static inline __attribute__((always_inline)) void store_acc(float *m, int accumulate, __m256 c)
{
    _mm256_storeu_ps(m, accumulate ? _mm256_add_ps(_mm256_loadu_ps(m), c) : c);
}

/* m[0..8nv) = c[0..nv), or += when accumulating. */
static inline __attribute__((always_inline)) void
store_row(int nv, float *m, int accumulate, __m256 c0, __m256 c1, __m256 c2)
{
    store_acc(m, accumulate, c0);
    if (nv > 1)
        store_acc(m + 8, accumulate, c1);
    if (nv > 2)
        store_acc(m + 16, accumulate, c2);
}

/* m[r][0..8nv) (+)= sum_k u[k][r] v[k][0..8nv) for r < 4: 4 of the MR
 * rows of one weight panel u [kc][MR], v [kc] and m [4] rows `stride`
 * apart. nv is a constant at every call, so the branches fold away; the
 * 4 x nv accumulators are named variables because GCC keeps an array of
 * them in memory. */
static inline __attribute__((always_inline)) void
micro_kernel(int nv, int kc, const float *u, const float *v, size_t stride, float *m,
             int accumulate)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 c00 = zero, c01 = zero, c02 = zero, c10 = zero, c11 = zero, c12 = zero;
    __m256 c20 = zero, c21 = zero, c22 = zero, c30 = zero, c31 = zero, c32 = zero;
    for (int k = 0; k < kc; k++) {
        const float *vk = v + k * stride, *uk = u + k * MR;
        const __m256 b0 = _mm256_loadu_ps(vk);
        const __m256 b1 = nv > 1 ? _mm256_loadu_ps(vk + 8) : zero;
        const __m256 b2 = nv > 2 ? _mm256_loadu_ps(vk + 16) : zero;
        fma_row(nv, _mm256_broadcast_ss(uk), b0, b1, b2, &c00, &c01, &c02);
        fma_row(nv, _mm256_broadcast_ss(uk + 1), b0, b1, b2, &c10, &c11, &c12);
        fma_row(nv, _mm256_broadcast_ss(uk + 2), b0, b1, b2, &c20, &c21, &c22);
        fma_row(nv, _mm256_broadcast_ss(uk + 3), b0, b1, b2, &c30, &c31, &c32);
    }
    store_row(nv, m, accumulate, c00, c01, c02);
    store_row(nv, m + stride, accumulate, c10, c11, c12);
    store_row(nv, m + 2 * stride, accumulate, c20, c21, c22);
    store_row(nv, m + 3 * stride, accumulate, c30, c31, c32);
}

static void gemm_avx2(const float *u, size_t u_xi, int npanels, int kc, const float *v,
                      size_t v_xi, float *m, size_t m_xi, size_t stride, int ntp,
                      int accumulate)
{
    /* Tiles of 24 lanes outside, weight panels inside: the kc x 24 slice of
     * v stays in L1 while the panels stream past it. 32 lanes go as 16 + 16:
     * a pass of 8 has too few accumulators to keep both FMA units busy. */
    for (int xi = 0; xi < 36; xi++) {
        const float *ux = u + xi * u_xi;
        for (int t = 0, nv; t < ntp; t += 8 * nv) {
            const int left = (ntp - t) / 8; /* vectors */
            nv = left == 4 ? 2 : left < 3 ? left : 3;
            const float *vt = v + xi * v_xi + t;
            for (int p = 0; p < npanels; p++)
                for (int half = 0; half < MR; half += 4) {
                    const float *up = ux + (size_t)p * kc * MR + half;
                    float *mp = m + xi * m_xi + (p * MR + half) * stride + t;
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

typedef float wino_vec __attribute__((vector_size(32)));
#include "conv3x3_winograd_weights.h"

/* How far ahead (in input channels) the packing prefetches its weights. */
enum { PREFETCH_K = 16 };

/* The 8 lanes are the MR output channels of a panel, each gathered from its
 * own row of weight; rows past nco or cout are masked off (read as zero). */
static void pack_avx2(const float *weight, int cin, int cout, int co0, int nco, int k0, int kc,
                      float *u, size_t u_xi)
{
    _Static_assert(MR == 8, "a panel is one vector");
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i row_at = _mm256_mullo_epi32(lane, _mm256_set1_epi32(cin * 9));
    for (int p = 0; p * MR < nco; p++) {
        const int co = co0 + p * MR;
        int rows = nco - p * MR < MR ? nco - p * MR : MR;
        rows = cout - co < rows ? cout - co : rows;
        const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(rows), lane));
        for (int k = 0; k < kc; k++) {
            const float *src = weight + ((size_t)co * cin + k0 + k) * 9;
            /* the rows' weights PREFETCH_K input channels on, which the
             * gathers would otherwise wait for, row by row */
            for (int r = 0; r < rows; r++)
                _mm_prefetch((const char *)(src + (size_t)r * cin * 9 + 9 * PREFETCH_K),
                             _MM_HINT_T0);
            wino_vec g[9], gg[3][6];
            for (int t = 0; t < 9; t++)
                g[t] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), src + t, row_at, valid, 4);
            wino_weight_columns(g, gg);
            float *dst = u + ((size_t)p * kc + k) * MR;
            for (int a = 0; a < 6; a++) {
                wino_vec row[6];
                wino_g_column(&gg[0][a], 6, row);
                for (int b = 0; b < 6; b++)
                    _mm256_storeu_ps(dst + (6 * a + b) * u_xi, row[b]);
            }
        }
    }
}

const wino_loops wino_loops_avx2 = {
    wino_input_group_avx2, wino_output_group_avx2, gemm_avx2, pack_avx2, NULL, NULL, 0,
};

#endif
