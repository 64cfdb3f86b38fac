/* conv3x3_winograd_neon.c - the hot loops of the Winograd F(4x4, 3x3)
 * convolution with ARM64 Advanced SIMD (NEON) intrinsics: input transform,
 * output transform and the 36 matrix products; the weight transform is the
 * portable one (wino_pack_portable: with no gather instruction, this file's
 * would be the same loads). conv3x3_winograd.c holds the algorithm, the work
 * split and the runtime choice; conv3x3_winograd.h has the data layouts.
 *
 * A group's 8 tiles (lanes) are two vectors of 4, transformed one after the
 * other. The transforms do the AVX2 loops' operations (conv3x3_winograd_avx2.c)
 * in the same order, fused multiply-adds where they have them, and every
 * output's sum in the matrix products runs over the input channels one FMA
 * after the other as there, so the results are the same bits as AVX2's and
 * AVX-512's. Advanced SIMD is part of every ARMv8-A CPU: no flags, no check;
 * elsewhere than aarch64 this file compiles empty. */
#include "conv3x3_winograd.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum {
    MR = WINO_MR,
    HALF = 4, /* tiles per vector; a group is two */
};

/* a*b + c, c - a*b and a*b - c, each rounded once, as _mm256_fmadd_ps,
 * _mm256_fnmadd_ps and _mm256_fmsub_ps (the last by symmetry of rounding:
 * a*b - c = -(c - a*b) exactly). */
INLINE float32x4_t fmadd(float32x4_t a, float32x4_t b, float32x4_t c)
{
    return vfmaq_f32(c, a, b);
}

INLINE float32x4_t fnmadd(float32x4_t a, float32x4_t b, float32x4_t c)
{
    return vfmsq_f32(c, a, b);
}

INLINE float32x4_t fmsub(float32x4_t a, float32x4_t b, float32x4_t c)
{
    return vnegq_f32(vfmsq_f32(c, a, b));
}

/* o = B^T r for the 6 values r[0..5] of a patch row or column (B^T in
 * conv3x3_winograd.c), as input_transform6 of the AVX2 loops. */
INLINE void input_transform6(const float32x4_t r[6], float32x4_t o[6])
{
    const float32x4_t half = vdupq_n_f32(0.5f), three_halves = vdupq_n_f32(1.5f);
    const float32x4_t two = vdupq_n_f32(2.0f), five_halves = vdupq_n_f32(2.5f);
    const float32x4_t d31 = vsubq_f32(r[3], r[1]), d42 = vsubq_f32(r[4], r[2]);
    const float32x4_t s04 = vaddq_f32(r[0], r[4]), s15 = vaddq_f32(r[1], r[5]);
    o[0] = fmadd(three_halves, d31, fnmadd(two, r[2], s04));
    o[1] = vaddq_f32(fmadd(five_halves, r[3], r[4]), fmsub(half, r[2], r[1]));
    o[2] = vaddq_f32(fmadd(half, r[3], r[4]), fnmadd(five_halves, r[2], r[1]));
    o[3] = fmadd(two, d31, d42);
    o[4] = fnmadd(half, d31, d42);
    o[5] = fmadd(three_halves, d42, fnmadd(two, r[3], s15));
}

/* o = A^T m for the 6 values m[0..5] of a transformed row or column (A^T in
 * conv3x3_winograd.c), as output_transform6 of the AVX2 loops. */
INLINE void output_transform6(const float32x4_t m[6], float32x4_t o[4])
{
    const float32x4_t s12 = vaddq_f32(m[1], m[2]), d12 = vsubq_f32(m[1], m[2]);
    const float32x4_t two = vdupq_n_f32(2.0f), four = vdupq_n_f32(4.0f);
    const float32x4_t eight = vdupq_n_f32(8.0f);
    o[0] = vaddq_f32(vaddq_f32(m[0], s12), vaddq_f32(m[3], m[4]));
    o[1] = fmadd(vdupq_n_f32(0.5f), m[3], fnmadd(two, m[4], d12));
    o[2] = fmadd(vdupq_n_f32(0.25f), m[3], fmadd(four, m[4], s12));
    o[3] = fmadd(vdupq_n_f32(0.125f), m[3], fnmadd(eight, m[4], vaddq_f32(d12, m[5])));
}

/* max(t, 0), 0 for NaN, as _mm256_max_ps(t, 0) and t > 0 ? t : 0 */
INLINE float32x4_t relu(float32x4_t t)
{
    return vmaxnmq_f32(t, vdupq_n_f32(0.0f));
}

/* Dilation 1, 4 tiles from column x0: p[k][l] = row[x0 + 4l + k-1] (zero
 * outside 0..w-1). vld4q splits the 16 columns x0..x0+15 by column mod 4,
 * which gives k = 1..4; k = 0 and 5 are k = 4 and 1 moved by one lane, with
 * the columns x0-1 and x0+16 just outside the 16. At the image's edges the
 * 18 columns are copied with zeros first. */
INLINE void load_row_dense(const float *row, int w, int x0, float32x4_t p[6])
{
    float edge[18];
    const float *at = row + x0 - 1; /* column x0-1 */
    if (x0 < 1 || x0 + 17 > w) {
        for (int k = 0; k < 18; k++) {
            const int x = x0 - 1 + k;
            edge[k] = x >= 0 && x < w ? row[x] : 0.0f;
        }
        at = edge;
    }
    const float32x4x4_t cols = vld4q_f32(at + 1);
    p[1] = cols.val[0], p[2] = cols.val[1], p[3] = cols.val[2], p[4] = cols.val[3];
    p[0] = vextq_f32(vdupq_n_f32(at[0]), p[4], 3);
    p[5] = vextq_f32(p[1], vdupq_n_f32(at[17]), 1);
}

/* Dilation d > 1: p[k][l] = row[xq[l] + d*(k-1)], zero outside 0..w-1. */
INLINE void load_row_gathered(const float *row, int w, int d, const int xq[HALF],
                              float32x4_t p[6])
{
    for (int k = 0; k < 6; k++) {
        float g[HALF];
        for (int l = 0; l < HALF; l++) {
            const int x = xq[l] + d * (k - 1);
            g[l] = x >= 0 && x < w ? row[x] : 0.0f;
        }
        p[k] = vld1q_f32(g);
    }
}

static void input_group_neon(const float *const *in, int nch, int in_rows, int w, int d,
                             int iy0, int q0, float *v, size_t v_xi, size_t stride)
{
    int xq[WINO_LANES];
    wino_lane_columns(d, q0, WINO_LANES, xq);
    for (int c = 0; c < nch; c++) {
        const float *plane = in[c];
        if (d == 1 && c + 1 < nch)
            wino_prefetch_patch(in[c + 1], in_rows, w, iy0, xq[0], WINO_LANES);
        float *vc = v + c * stride;
        for (int h = 0; h < WINO_LANES / HALF; h++) {
            float32x4_t rows[6][6]; /* [patch row i][b]: B^T applied along each row */
            for (int i = 0; i < 6; i++) {
                const int y = iy0 + d * (i - 1);
                if (y < 0 || y >= in_rows) {
                    for (int b = 0; b < 6; b++)
                        rows[i][b] = vdupq_n_f32(0.0f);
                    continue;
                }
                const float *row = plane + (size_t)y * w;
                float32x4_t p[6];
                if (d == 1)
                    load_row_dense(row, w, xq[0] + 4 * HALF * h, p);
                else
                    load_row_gathered(row, w, d, xq + HALF * h, p);
                input_transform6(p, rows[i]);
            }
            for (int b = 0; b < 6; b++) {
                float32x4_t col[6], t[6];
                for (int i = 0; i < 6; i++)
                    col[i] = rows[i][b];
                input_transform6(col, t);
                for (int a = 0; a < 6; a++)
                    vst1q_f32(vc + (6 * a + b) * v_xi + HALF * h, t[a]);
            }
        }
    }
}

/* Dilation 1: output row pixels x0 .. x0+n-1 (n <= 16) from o[j][l], pixel
 * 4l + j, plus the residual's (rrow, or NULL); vst4q interleaves them back. */
INLINE void store_row_dense(const float32x4_t o[4], const float *rrow, float *orow, int n)
{
    float32x4x4_t px = {{o[0], o[1], o[2], o[3]}};
    if (n == 4 * HALF) {
        if (rrow) {
            const float32x4x4_t r = vld4q_f32(rrow);
            for (int j = 0; j < 4; j++)
                px.val[j] = vaddq_f32(px.val[j], r.val[j]);
        }
        vst4q_f32(orow, px);
        return;
    }
    float edge[4 * HALF] = {0};
    if (rrow) {
        memcpy(edge, rrow, (size_t)n * sizeof(float));
        const float32x4x4_t r = vld4q_f32(edge);
        for (int j = 0; j < 4; j++)
            px.val[j] = vaddq_f32(px.val[j], r.val[j]);
    }
    vst4q_f32(edge, px);
    memcpy(orow, edge, (size_t)n * sizeof(float));
}

static void output_group_neon(const float *m, size_t m_xi, size_t stride, int nco,
                              const float *bias, int relu_on, const float *residual,
                              size_t residual_plane, float *out, size_t out_plane, int h, int w,
                              int d, int oy0, int q0, int lanes)
{
    int xq[WINO_LANES];
    wino_lane_columns(d, q0, WINO_LANES, xq);
    for (int co = 0; co < nco; co++) {
        const float *mc = m + co * stride;
        float *oc = out + co * out_plane;
        const float *rc = residual ? residual + co * residual_plane : NULL;
        const float32x4_t bias_v = vdupq_n_f32(bias ? bias[co] : 0.0f);
        for (int hv = 0; hv * HALF < lanes; hv++) {
            float32x4_t cols[6][4]; /* [b][i]: A^T applied along each column b */
            for (int b = 0; b < 6; b++) {
                float32x4_t col[6];
                for (int a = 0; a < 6; a++)
                    col[a] = vld1q_f32(mc + (6 * a + b) * m_xi + HALF * hv);
                output_transform6(col, cols[b]);
            }
            float32x4_t o[4][4]; /* [i][j]: output pixel (i, j) of every lane */
            for (int i = 0; i < 4; i++) {
                float32x4_t row[6];
                for (int b = 0; b < 6; b++)
                    row[b] = cols[b][i];
                output_transform6(row, o[i]);
                for (int j = 0; j < 4; j++) {
                    o[i][j] = vaddq_f32(o[i][j], bias_v);
                    if (relu_on)
                        o[i][j] = relu(o[i][j]);
                }
            }
            const int nl = lanes - HALF * hv < HALF ? lanes - HALF * hv : HALF;
            if (d == 1) {
                const int x0 = xq[HALF * hv];
                const int nx = 4 * nl < w - x0 ? 4 * nl : w - x0;
                for (int i = 0; i < 4 && oy0 + i < h && nx > 0; i++) {
                    const size_t at = (size_t)(oy0 + i) * w + x0;
                    store_row_dense(o[i], rc ? rc + at : NULL, oc + at, nx);
                }
                continue;
            }
            float pix[4][4][HALF]; /* [i][j][lane] */
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    vst1q_f32(pix[i][j], o[i][j]);
            for (int i = 0; i < 4; i++) {
                const int y = oy0 + d * i;
                if (y >= h)
                    break;
                for (int l = 0; l < nl; l++)
                    for (int j = 0; j < 4; j++) {
                        const int x = xq[HALF * hv + l] + d * j;
                        if (x < w) {
                            const size_t at = (size_t)y * w + x;
                            oc[at] = rc ? pix[i][j][l] + rc[at] : pix[i][j][l];
                        }
                    }
            }
        }
    }
}

/* The accumulators of one weight row r (a lane of u0 or u1) times nv
 * vectors of tiles; lane must be a constant, hence a macro. */
#define FMA_ROW(r, uv, lane)                                              \
    do {                                                                  \
        c##r##0 = vfmaq_laneq_f32(c##r##0, b0, uv, lane);                 \
        if (nv > 1)                                                       \
            c##r##1 = vfmaq_laneq_f32(c##r##1, b1, uv, lane);             \
        if (nv > 2)                                                       \
            c##r##2 = vfmaq_laneq_f32(c##r##2, b2, uv, lane);             \
    } while (0)

/* m[0..4) = c, or += c when accumulating. */
INLINE void store_acc(float *m, int accumulate, float32x4_t c)
{
    vst1q_f32(m, accumulate ? vaddq_f32(vld1q_f32(m), c) : c);
}

#define STORE_ROW(r)                                                      \
    do {                                                                  \
        float *mr = m + (r) * stride;                                     \
        store_acc(mr, accumulate, c##r##0);                               \
        if (nv > 1)                                                       \
            store_acc(mr + 4, accumulate, c##r##1);                       \
        if (nv > 2)                                                       \
            store_acc(mr + 8, accumulate, c##r##2);                       \
    } while (0)

/* m[r][0..4nv) (+)= sum_k u[k][r] v[k][0..4nv) for the MR = 8 rows of one
 * weight panel u [kc][MR], v [kc] and m [MR] rows `stride` apart: 8 x nv
 * accumulators (24 of the 32 registers at nv = 3), the panel's row of 8
 * weights in two registers, each FMA taking its weight by lane. nv is a
 * constant at every call, so the branches fold away. */
INLINE void micro_kernel(int nv, int kc, const float *u, const float *v, size_t stride,
                         float *m, int accumulate)
{
    const float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z;
    float32x4_t c22 = z, c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z;
    float32x4_t c51 = z, c52 = z, c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    for (int k = 0; k < kc; k++) {
        const float *vk = v + k * stride, *uk = u + k * MR;
        const float32x4_t u0 = vld1q_f32(uk), u1 = vld1q_f32(uk + 4);
        const float32x4_t b0 = vld1q_f32(vk);
        const float32x4_t b1 = nv > 1 ? vld1q_f32(vk + 4) : z;
        const float32x4_t b2 = nv > 2 ? vld1q_f32(vk + 8) : z;
        FMA_ROW(0, u0, 0);
        FMA_ROW(1, u0, 1);
        FMA_ROW(2, u0, 2);
        FMA_ROW(3, u0, 3);
        FMA_ROW(4, u1, 0);
        FMA_ROW(5, u1, 1);
        FMA_ROW(6, u1, 2);
        FMA_ROW(7, u1, 3);
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

static void gemm_neon(const float *u, size_t u_xi, int npanels, int kc, const float *v,
                      size_t v_xi, float *m, size_t m_xi, size_t stride, int ntp, int accumulate)
{
    _Static_assert(MR == 8, "a panel row is two vectors");
    /* 12 tiles outside, weight panels inside: the kc x 12 slice of v stays
     * in L1 while the panels stream past it; 16 go as 8 + 8, for enough
     * accumulators to cover the FMA latency. */
    for (int xi = 0; xi < 36; xi++) {
        const float *ux = u + xi * u_xi;
        for (int t = 0, nv; t < ntp; t += 4 * nv) {
            const int left = (ntp - t) / 4; /* vectors */
            nv = left == 4 ? 2 : left < 3 ? left : 3;
            const float *vt = v + xi * v_xi + t;
            for (int p = 0; p < npanels; p++) {
                const float *up = ux + (size_t)p * kc * MR;
                float *mp = m + xi * m_xi + (size_t)p * MR * stride + t;
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

const wino_loops wino_loops_neon = {
    input_group_neon, output_group_neon, gemm_neon, wino_pack_portable, NULL, NULL, 0,
};

#endif
