/* conv3x3_winograd.c - 3x3 dilated convolution by Winograd F(4x4, 3x3):
 * weight packing, the split of the work, the choice between the AVX2 hot
 * loops (conv3x3_winograd_avx2.c) and the portable ones here, and the
 * measured rule for when the kernel beats im2col. Shapes are in kernels.h.
 *
 * A 3x3 convolution with dilation d is a plain 3x3 convolution on each of
 * the d*d interleaved sub-grids (y mod d, x mod d); each sub-grid is cut into
 * 4x4 output tiles, whose 6x6 input patches D (zero outside the image) are
 * read, and outputs written, with stride d. Per tile
 *     out = A^T [ (G g G^T) .* (B^T D B) ] A
 * and the elementwise product is, for each of the 36 transformed positions
 * xi, a matrix product over channels:
 *     M[xi][co][tile] = sum_ci U[xi][co][ci] V[xi][ci][tile]
 * 36 multiplies per 16 outputs instead of 144. U = G g G^T is computed once,
 * in float, by conv3x3_winograd_pack.
 *
 * Work split. Tiles are numbered tile row by tile row (kernels.h; with
 * d > 1 a tile row holds the tiles of all d sub-grid columns side by side,
 * so that the lanes of a vector are full even on small images); a block is a
 * run of up to 96 consecutive tile numbers, cut into groups of up to 8 tiles
 * of one tile row (the 8 lanes of a vector). A task is a block and a range
 * of up to 128 output channels; it transforms its block's input channels in
 * chunks of 256 into V [chunk][36][tiles], accumulates
 * M [36][its channels][tiles] over the chunks, then transforms M into the
 * output with bias, ReLU and the residual. Blocks, chunks and channel ranges
 * are functions of the shapes alone, and the sums of a given output run in
 * the same order in any task, so the result does not depend on the thread
 * count. */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_AVX2_LOOPS 1
#else
#define HAVE_AVX2_LOOPS 0
#endif

enum {
    MR = CONV3X3_WINOGRAD_MR, /* output channels per packed weight panel */
    ROW = CONV3X3_WINOGRAD_ROW,
    V_C = CONV3X3_WINOGRAD_V_C,
    V_XI = CONV3X3_WINOGRAD_V_XI,
    M_C = CONV3X3_WINOGRAD_M_C,
    M_XI = CONV3X3_WINOGRAD_M_XI,
    SUM_BLOCK = CONV3X3_WINOGRAD_SUM_BLOCK,
    NR = 24,                   /* tiles per GEMM panel (3 vectors of 8) */
    LANES = 8,                 /* tiles per group */
    CHUNK_CIN = CONV3X3_WINOGRAD_CHUNK_CIN, /* a 256 x 24 V panel is 24 KiB, L1 */
    TASK_COUT = CONV3X3_WINOGRAD_TASK_COUT,
    SPLIT_COUT_MIN = 64,       /* fewest output channels worth a task of their own */
    TARGET_TASKS = 4,          /* tasks wanted before output channels are split */
    BLOCK_TILES_MIN = 48,      /* so a large weight set is reused over >= 48 tiles */
    BLOCK_TILES_MAX = ROW - LANES, /* room for the last group's filler lanes */
    BLOCK_BYTES = 320 * 1024,  /* V + M of a block of a small layer stay in L2 */
};

/* The transforms come from the interpolation points 0, 1, -1, 1/2, -2 and
 * infinity rather than the usual 0, 1, -1, 2, -2: with them the float
 * result is several times closer to the exact one (kernels/README.md).
 *   B^T = [1 -3/2   -2  3/2 1 0]   G = [    1     0     0]
 *         [0   -1  1/2  5/2 1 0]       [  1/3   1/3   1/3]
 *         [0    1 -5/2  1/2 1 0]       [ -1/3   1/3  -1/3]
 *         [0   -2   -1    2 1 0]       [-16/15 -8/15 -4/15]
 *         [0  1/2   -1 -1/2 1 0]       [ 1/15 -2/15  4/15]
 *         [0    1 -3/2   -2 3/2 1]     [    0     0     1]
 *   A^T = [1 1  1   1  1 0; 0 1 -1 1/2 -2 0; 0 1 1 1/4 4 0; 0 1 -1 1/8 -8 1] */
static const double winograd_g[6][3] = {
    {1, 0, 0},
    {1.0 / 3, 1.0 / 3, 1.0 / 3},
    {-1.0 / 3, 1.0 / 3, -1.0 / 3},
    {-16.0 / 15, -8.0 / 15, -4.0 / 15},
    {1.0 / 15, -2.0 / 15, 4.0 / 15},
    {0, 0, 1},
};

/* The packed weights, U = G g G^T computed in float, in chunks of
 * CHUNK_CIN input channels (the last one shorter), each
 *   [36][npanels][kc][MR]: element (xi, co, ci) at panel co/MR, row ci - k0,
 *   column co%MR
 * so that the GEMM of one chunk reads its weights front to back; the rows
 * past cout of the last panel are zero. */
static int panel_count(int cout)
{
    return (cout + MR - 1) / MR;
}

size_t conv3x3_winograd_packed_floats(int cin, int cout)
{
    return (size_t)36 * panel_count(cout) * MR * cin;
}

/* MR floats of one panel row, as a GCC/Clang vector (MR is 4). */
typedef float panel_vec __attribute__((vector_size(MR * sizeof(float))));

/* Input channels packed per step: their 36 x PACK_CI x MR results (9 KiB)
 * stay in L1 and then go out as whole cache lines, one run per position. */
enum { PACK_CI = 16 };

void conv3x3_winograd_pack(const float *weight, int cin, int cout, float *packed, int threads)
{
    /* In float on MR output channels at once (one panel row): fast enough to
     * pack a large layer's weights on every run instead of keeping 4x its
     * weights in memory. */
    float G[6][3];
    for (int a = 0; a < 6; a++)
        for (int k = 0; k < 3; k++)
            G[a][k] = (float)winograd_g[a][k];
    const int npanels = panel_count(cout);
    /* every panel's entries are its own: the split cannot change them */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < npanels; p++) {
        panel_vec u[36][PACK_CI];
        for (int k0 = 0; k0 < cin; k0 += CHUNK_CIN) {
            const int kc = cin - k0 < CHUNK_CIN ? cin - k0 : CHUNK_CIN;
            float *chunk = packed + (size_t)36 * npanels * MR * k0;
            for (int c0 = 0; c0 < kc; c0 += PACK_CI) {
                const int nc = kc - c0 < PACK_CI ? kc - c0 : PACK_CI;
                for (int j = 0; j < nc; j++) {
                    const int ci = k0 + c0 + j;
                    panel_vec g[9]; /* the 3x3 kernels of the panel's MR outputs */
                    for (int r = 0; r < MR; r++) {
                        const int co = p * MR + r;
                        const float *src = weight + ((size_t)co * cin + ci) * 9;
                        for (int t = 0; t < 9; t++)
                            g[t][r] = co < cout ? src[t] : 0.0f;
                    }
                    panel_vec gg[6][3]; /* G g */
                    for (int a = 0; a < 6; a++)
                        for (int kx = 0; kx < 3; kx++)
                            gg[a][kx] = G[a][0] * g[kx] + G[a][1] * g[3 + kx] + G[a][2] * g[6 + kx];
                    for (int a = 0; a < 6; a++)
                        for (int b = 0; b < 6; b++)
                            u[6 * a + b][j] = gg[a][0] * G[b][0] + gg[a][1] * G[b][1] +
                                              gg[a][2] * G[b][2];
                }
                for (int xi = 0; xi < 36; xi++)
                    memcpy(chunk + (((size_t)xi * npanels + p) * kc + c0) * MR, u[xi],
                           (size_t)nc * sizeof(panel_vec));
            }
        }
    }
}

/* Tiles per block: as many as keep V and M of a small layer in L2, but at
 * least BLOCK_TILES_MIN so that large weight sets are streamed rarely. */
static int block_tiles_max(int cin, int cout)
{
    const int kc = cin < CHUNK_CIN ? cin : CHUNK_CIN;
    const int nc = cout < TASK_COUT ? cout : TASK_COUT;
    int n = BLOCK_BYTES / (36 * (int)sizeof(float) * (kc + nc)) / LANES * LANES;
    if (n < BLOCK_TILES_MIN)
        n = BLOCK_TILES_MIN;
    if (n > BLOCK_TILES_MAX)
        n = BLOCK_TILES_MAX;
    return n;
}

/* Per thread: V for up to CHUNK_CIN input channels, then M, whose planes are
 * laid out for TASK_COUT channels whatever cout is. */
static size_t v_floats(int cin)
{
    return (size_t)(cin < CHUNK_CIN ? cin : CHUNK_CIN) * V_C;
}

size_t conv3x3_winograd_scratch_floats(int cin, int cout)
{
    (void)cout;
    return v_floats(cin) + (size_t)36 * M_XI;
}

/* The hot loops of one implementation; arguments as for the *_avx2 ones in kernels.h. */
typedef struct {
    void (*input_group)(const float *in, int nch, int h, int w, int d, int oy0, int q0, float *v);
    void (*output_group)(const float *m, int nco, const float *bias, int relu,
                         const float *residual, float *out, int h, int w, int d, int oy0, int q0,
                         int lanes);
    void (*gemm)(const float *u, int npanels, int p0, int nco, int kc, const float *v, float *m,
                 int ntp, int accumulate);
    const char *name;
} hot_loops;

/* The portable loops work on arrays of 8 lanes, which compilers vectorise. */

/* dst[o][l] = (B^T src)[o][l]: src element (k, l) at src[k*src_step + l],
 * dst element (o, l) at dst[o*dst_step + l]. */
static void input_transform6(const float *src, size_t src_step, float *dst, size_t dst_step)
{
    for (int l = 0; l < LANES; l++) {
        const float r0 = src[l], r1 = src[src_step + l], r2 = src[2 * src_step + l];
        const float r3 = src[3 * src_step + l], r4 = src[4 * src_step + l];
        const float r5 = src[5 * src_step + l];
        const float d31 = r3 - r1, d42 = r4 - r2;
        dst[l] = (r0 + r4 - 2.0f * r2) + 1.5f * d31;
        dst[dst_step + l] = (r4 + 2.5f * r3) + (0.5f * r2 - r1);
        dst[2 * dst_step + l] = (r4 + 0.5f * r3) + (r1 - 2.5f * r2);
        dst[3 * dst_step + l] = d42 + 2.0f * d31;
        dst[4 * dst_step + l] = d42 - 0.5f * d31;
        dst[5 * dst_step + l] = (r1 + r5 - 2.0f * r3) + 1.5f * d42;
    }
}

/* dst[o][l] = (A^T src)[o][l], o < 4; strides as in input_transform6. */
static void output_transform6(const float *src, size_t src_step, float *dst, size_t dst_step)
{
    for (int l = 0; l < LANES; l++) {
        const float m0 = src[l], m1 = src[src_step + l], m2 = src[2 * src_step + l];
        const float m3 = src[3 * src_step + l], m4 = src[4 * src_step + l];
        const float m5 = src[5 * src_step + l];
        const float s12 = m1 + m2, d12 = m1 - m2;
        dst[l] = (m0 + s12) + (m3 + m4);
        dst[dst_step + l] = (d12 - 2.0f * m4) + 0.5f * m3;
        dst[2 * dst_step + l] = (s12 + 4.0f * m4) + 0.25f * m3;
        dst[3 * dst_step + l] = ((d12 + m5) - 8.0f * m4) + 0.125f * m3;
    }
}

/* Image column of the tile in each lane of a group (see kernels.h). */
static void lane_columns(int d, int q0, int xq[LANES])
{
    for (int l = 0; l < LANES; l++)
        xq[l] = (q0 + l) % d + 4 * d * ((q0 + l) / d);
}

static void input_group_portable(const float *in, int nch, int h, int w, int d, int oy0, int q0,
                                 float *v)
{
    const size_t hw = (size_t)h * w;
    int xq[LANES];
    lane_columns(d, q0, xq);
    for (int c = 0; c < nch; c++) {
        const float *plane = in + c * hw;
        float patch[6][6][LANES]; /* [row i][column k][lane]: D */
        float rows[6][6][LANES];  /* [row i][b][lane]: D B */
        float vt[6][6][LANES];    /* [a][b][lane]: B^T D B */
        for (int i = 0; i < 6; i++) {
            const int y = oy0 + d * (i - 1);
            for (int k = 0; k < 6; k++)
                for (int l = 0; l < LANES; l++) {
                    const int x = xq[l] + d * (k - 1);
                    const int inside = y >= 0 && y < h && x >= 0 && x < w;
                    patch[i][k][l] = inside ? plane[(size_t)y * w + x] : 0.0f;
                }
            input_transform6(&patch[i][0][0], LANES, &rows[i][0][0], LANES);
        }
        for (int b = 0; b < 6; b++)
            input_transform6(&rows[0][b][0], 6 * LANES, &vt[0][b][0], 6 * LANES);
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++)
                memcpy(v + (size_t)c * V_C + (size_t)(6 * a + b) * V_XI, vt[a][b], sizeof vt[a][b]);
    }
}

static void output_group_portable(const float *m, int nco, const float *bias, int relu,
                                  const float *residual, float *out, int h, int w, int d, int oy0,
                                  int q0, int lanes)
{
    const size_t hw = (size_t)h * w;
    int xq[LANES];
    lane_columns(d, q0, xq);
    for (int co = 0; co < nco; co++) {
        float mt[6][6][LANES];   /* [a][b][lane]: M */
        float cols[4][6][LANES]; /* [i][b][lane]: A^T M */
        float pix[4][4][LANES];  /* [i][j][lane]: A^T M A */
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++)
                memcpy(mt[a][b], m + (size_t)co * M_C + (size_t)(6 * a + b) * M_XI,
                       sizeof mt[a][b]);
        for (int b = 0; b < 6; b++)
            output_transform6(&mt[0][b][0], 6 * LANES, &cols[0][b][0], 6 * LANES);
        for (int i = 0; i < 4; i++)
            output_transform6(&cols[i][0][0], LANES, &pix[i][0][0], LANES);
        float *oc = out + co * hw;
        const float *rc = residual ? residual + co * hw : NULL;
        for (int i = 0; i < 4; i++) {
            const int y = oy0 + d * i;
            if (y >= h)
                break;
            for (int l = 0; l < lanes; l++)
                for (int j = 0; j < 4; j++) {
                    const int x = xq[l] + d * j;
                    if (x >= w)
                        continue;
                    float s = pix[i][j][l] + bias[co];
                    if (relu)
                        s = s > 0.0f ? s : 0.0f;
                    const size_t at = (size_t)y * w + x;
                    oc[at] = rc ? s + rc[at] : s;
                }
        }
    }
}

static void gemm_portable(const float *u, int npanels, int p0, int nco, int kc, const float *v,
                          float *m, int ntp, int accumulate)
{
    for (int xi = 0; xi < 36; xi++)
        for (int t = 0; t < ntp; t += NR) {
            const int nr = ntp - t < NR ? ntp - t : NR;
            for (int co = 0; co < nco; co += MR) {
                const int mr = nco - co < MR ? nco - co : MR;
                const float *panel = u + ((size_t)xi * npanels + p0 + co / MR) * kc * MR;
                float *mp = m + (size_t)co * M_C + (size_t)xi * M_XI + t;
                for (int k0 = 0; k0 < kc; k0 += SUM_BLOCK) {
                    const int k1 = kc - k0 < SUM_BLOCK ? kc : k0 + SUM_BLOCK;
                    float acc[MR][NR]; /* [output channel][tile] */
                    for (int r = 0; r < mr; r++)
                        for (int l = 0; l < nr; l++)
                            acc[r][l] = 0.0f;
                    for (int k = k0; k < k1; k++) {
                        const float *vk = v + (size_t)k * V_C + (size_t)xi * V_XI + t;
                        for (int r = 0; r < mr; r++) {
                            const float a = panel[k * MR + r];
                            for (int l = 0; l < nr; l++)
                                acc[r][l] += a * vk[l];
                        }
                    }
                    const int add = accumulate || k0 > 0;
                    for (int r = 0; r < mr; r++)
                        for (int l = 0; l < nr; l++)
                            mp[r * M_C + l] = add ? mp[r * M_C + l] + acc[r][l] : acc[r][l];
                }
            }
        }
}

static const hot_loops portable_loops = {
    input_group_portable, output_group_portable, gemm_portable, "portable",
};

#if HAVE_AVX2_LOOPS
static const hot_loops avx2_loops = {
    conv3x3_winograd_input_group_avx2, conv3x3_winograd_output_group_avx2,
    conv3x3_winograd_gemm_avx2, "avx2",
};
#endif

static int portable_forced;

void conv3x3_winograd_force_portable(int portable)
{
    portable_forced = portable;
}

static const hot_loops *chosen_loops(void)
{
#if HAVE_AVX2_LOOPS
    if (!portable_forced && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &avx2_loops;
#endif
    return &portable_loops;
}

const char *conv3x3_winograd_isa(void)
{
    return chosen_loops()->name;
}

static int subgrid_tiles(int size, int d, int r)
{
    const int n = (size - r + d - 1) / d; /* pixels of sub-grid r */
    return (n + 3) / 4;
}

/* Tile numbering of one layer (kernels.h): tile rows (ry, ty), ry outer, of
 * row_tiles = d * (tiles of sub-grid column 0, the widest) tiles each; a
 * narrower sub-grid's extra tile reads zeros and writes nothing. */
typedef struct {
    int h, d, row_tiles;
    long ntiles;
} tiling;

static tiling make_tiling(int h, int w, int d)
{
    tiling t = {h, d, d * subgrid_tiles(w, d, 0), 0};
    for (int ry = 0; ry < d; ry++)
        t.ntiles += (long)subgrid_tiles(h, d, ry) * t.row_tiles;
    return t;
}

typedef struct {
    int oy0, q0, lanes; /* as in kernels.h */
} group;

/* The group that starts at tile number `tile` and ends at `end` at the latest. */
static group group_at(const tiling *t, long tile, long end)
{
    long row = tile / t->row_tiles;
    const int q0 = (int)(tile % t->row_tiles);
    long lanes = t->row_tiles - q0;
    if (lanes > LANES)
        lanes = LANES;
    if (lanes > end - tile)
        lanes = end - tile;
    int ry = 0;
    while (row >= subgrid_tiles(t->h, t->d, ry))
        row -= subgrid_tiles(t->h, t->d, ry++);
    const group g = {ry + 4 * t->d * (int)row, q0, (int)lanes};
    return g;
}

void conv3x3_dilated_winograd(const float *in, int cin, int h, int w, const float *packed,
                              const float *bias, int cout, int dilation, int relu,
                              const float *residual, float *out, float *scratch, int threads)
{
    if (h <= 0 || w <= 0 || cout <= 0)
        return;
    const hot_loops *loops = chosen_loops();
    const tiling geo = make_tiling(h, w, dilation);
    const size_t hw = (size_t)h * w;
    const int npanels = panel_count(cout);
    const size_t scratch_per_thread = conv3x3_winograd_scratch_floats(cin, cout);

    const int nt_max = block_tiles_max(cin, cout);
    const long nblocks = (geo.ntiles + nt_max - 1) / nt_max;
    const long block_n = (geo.ntiles + nblocks - 1) / nblocks; /* balanced */
    /* Few tiles: split output channels too, while each part keeps enough
     * channels to pay for transforming the input once more. */
    int ncob = (cout + TASK_COUT - 1) / TASK_COUT;
    while (nblocks * ncob < TARGET_TASKS && cout / (ncob * 2) >= SPLIT_COUT_MIN)
        ncob *= 2;
    const int co_blk = ((cout + ncob - 1) / ncob + MR - 1) / MR * MR;
    ncob = (cout + co_blk - 1) / co_blk;
    const long ntasks = nblocks * ncob;

    #pragma omp parallel num_threads(threads)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *v = scratch + (size_t)tid * scratch_per_thread; /* V, kernels.h */
        float *m = v + v_floats(cin);                          /* M */
        #pragma omp for schedule(dynamic)
        for (long task = 0; task < ntasks; task++) {
            const long t0 = task / ncob * block_n;
            const long t1 = t0 + block_n < geo.ntiles ? t0 + block_n : geo.ntiles;
            const int ntp = (int)((t1 - t0 + LANES - 1) / LANES * LANES);
            const int co0 = (int)(task % ncob) * co_blk;
            const int nco = cout - co0 < co_blk ? cout - co0 : co_blk;
            for (int k0 = 0; k0 < cin; k0 += CHUNK_CIN) {
                const int kc = cin - k0 < CHUNK_CIN ? cin - k0 : CHUNK_CIN;
                int written = 0; /* lanes of each V row written so far */
                for (long t = t0; t < t1;) {
                    const group g = group_at(&geo, t, t1);
                    loops->input_group(in + k0 * hw, kc, h, w, dilation, g.oy0, g.q0, v + (t - t0));
                    written = (int)(t - t0) + LANES;
                    t += g.lanes;
                }
                if (written < ntp)
                    for (int xi = 0; xi < 36; xi++)
                        for (int k = 0; k < kc; k++)
                            memset(v + (size_t)xi * V_XI + (size_t)k * V_C + written, 0,
                                   (ntp - written) * sizeof(float));
                loops->gemm(packed + (size_t)36 * npanels * MR * k0, npanels, co0 / MR, nco, kc, v,
                            m, ntp, k0 > 0);
            }
            for (long t = t0; t < t1;) {
                const group g = group_at(&geo, t, t1);
                loops->output_group(m + (t - t0), nco, bias + co0, relu,
                                    residual ? residual + co0 * hw : NULL, out + co0 * hw, h, w,
                                    dilation, g.oy0, g.q0, g.lanes);
                t += g.lanes;
            }
        }
    }
}

/* Measured on U2Net and U2NetP at 320x320 (kernels/README.md): Winograd is
 * faster for every layer whose tiles cover at most 3x the image's pixels,
 * whatever the channel counts (from 3 -> 64 to 1024 -> 512, 1.2x to 11x);
 * only dilation 8 on a 10x10 image, where each sub-grid is 2x2 or smaller
 * and the tiles cover 10x the pixels, is slower (0.6x). */
int conv3x3_winograd_worthwhile(int cin, int cout, int h, int w, int dilation)
{
    (void)cin, (void)cout;
    const tiling geo = make_tiling(h, w, dilation);
    return 16 * geo.ntiles <= 3 * (long)h * w;
}
