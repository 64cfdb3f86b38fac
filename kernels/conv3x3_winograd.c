/* conv3x3_winograd.c - 3x3 dilated convolution by Winograd F(4x4, 3x3): the
 * algorithm, the split of the work over threads, the portable hot loops,
 * and the measured rule for when the kernel beats im2col. The AVX2, AVX-512
 * and NEON hot loops are in conv3x3_winograd_avx2.c, _avx512.c and _neon.c;
 * the data layouts they share are in conv3x3_winograd.h.
 *
 * A 3x3 convolution with dilation d is a plain 3x3 convolution on each of
 * the d*d interleaved sub-grids (y mod d, x mod d); each sub-grid is cut into
 * 4x4 output tiles, whose 6x6 input patches D (zero outside the image) are
 * read, and outputs written, with stride d. Per tile
 *     out = A^T [ (G g G^T) .* (B^T D B) ] A
 * and the elementwise product is, for each of the 36 transformed positions
 * xi, a matrix product over channels:
 *     M[xi][co][tile] = sum_ci U[xi][co][ci] V[xi][ci][tile]
 * 36 multiplies per 16 outputs instead of 144.
 *
 * The weights U = G g G^T are 4x the size of the 3x3 weights, too much to
 * keep for U2Net (+700 MB), so the kernel transforms them on every call
 * (a few ns per channel pair with the vector loops), in one of two ways:
 *
 * By tiles, for layers with many tiles (more than SMALL_TILES): a task is a
 * block of tiles and a block of output channels (co_blk, usually all of
 * them), whose U are packed once per call into the shared workspace and
 * read by every task. A task transforms its tiles' input channels
 * WINO_CHUNK at a time into V, multiplies each chunk into M, and finally
 * transforms M into the output with bias, ReLU and the residual.
 *
 * By channels, for layers with few tiles (the deep, narrow-image layers,
 * where packing U is as costly as using it): all tiles are transformed at
 * once, pass_ch input channels per pass, into the shared V, by tasks over
 * groups of input channels; then a task is a group of co_task output
 * channels, which packs its own U a chunk at a time (each U is packed once
 * per call) and multiplies it over all tiles. With one pass M is the task's
 * own; with several it lives in the shared workspace between passes.
 *
 * Every split depends on the shapes alone, and each output's sum runs over
 * the input channels in the same order in any task, so the result does not
 * depend on the thread count. */
#include "kernels.h"
#include "conv3x3_winograd.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    MR = WINO_MR,
    LANES = WINO_LANES,
    CHUNK = WINO_CHUNK,
    XI_PAD = 16,          /* floats between xi planes beyond their rows: the 36
                             planes of a group's loads and stores then fall in
                             different cache sets */
    SMALL_TILES = 128,    /* at most this many tiles: split by channels */
    NB_MIN = 16,          /* tiles per block, by tiles */
    NB_MAX = 96,
    TASK_BYTES = 1 << 20, /* V chunk + M of a task by tiles: about one L2 */
    SHARED_BYTES = 8 << 20, /* most of the shared V (by channels) or U (by
                               tiles) before the work is split further */
    CO_TASK_MAX = 32,     /* output channels per task, by channels */
    CH_TASK = 8,          /* input channels per input-transform task, by channels */
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
 *   A^T = [1 1  1   1  1 0; 0 1 -1 1/2 -2 0; 0 1 1 1/4 4 0; 0 1 -1 1/8 -8 1]
 * B^T and A^T are applied by the input and output transforms below, G by
 * conv3x3_winograd_weights.h. */

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static int round_mr(int n)
{
    return (n + MR - 1) / MR * MR;
}

/* ---- The portable loops: arrays of 8 lanes, which compilers vectorise. */

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

static void input_group_portable(const float *const *in, int nch, int in_rows, int w, int d,
                                 int iy0, int q0, float *v, size_t v_xi, size_t stride)
{
    int xq[LANES];
    wino_lane_columns(d, q0, LANES, xq);
    for (int c = 0; c < nch; c++) {
        const float *plane = in[c];
        float patch[6][6][LANES]; /* [row i][column k][lane]: D */
        float rows[6][6][LANES];  /* [row i][b][lane]: D B */
        float vt[6][6][LANES];    /* [a][b][lane]: B^T D B */
        for (int i = 0; i < 6; i++) {
            const int y = iy0 + d * (i - 1);
            for (int k = 0; k < 6; k++)
                for (int l = 0; l < LANES; l++) {
                    const int x = xq[l] + d * (k - 1);
                    const int inside = y >= 0 && y < in_rows && x >= 0 && x < w;
                    patch[i][k][l] = inside ? plane[(size_t)y * w + x] : 0.0f;
                }
            input_transform6(&patch[i][0][0], LANES, &rows[i][0][0], LANES);
        }
        for (int b = 0; b < 6; b++)
            input_transform6(&rows[0][b][0], 6 * LANES, &vt[0][b][0], 6 * LANES);
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++)
                memcpy(v + (size_t)(6 * a + b) * v_xi + c * stride, vt[a][b], sizeof vt[a][b]);
    }
}

static void output_group_portable(const float *m, size_t m_xi, size_t stride, int nco,
                                  const float *bias, int relu, const float *residual,
                                  size_t residual_plane, float *out, size_t out_plane, int h,
                                  int w, int d, int oy0, int q0, int lanes)
{
    int xq[LANES];
    wino_lane_columns(d, q0, LANES, xq);
    for (int co = 0; co < nco; co++) {
        float mt[6][6][LANES];   /* [a][b][lane]: M */
        float cols[4][6][LANES]; /* [i][b][lane]: A^T M */
        float pix[4][4][LANES];  /* [i][j][lane]: A^T M A */
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++)
                memcpy(mt[a][b], m + (size_t)(6 * a + b) * m_xi + co * stride, sizeof mt[a][b]);
        for (int b = 0; b < 6; b++)
            output_transform6(&mt[0][b][0], 6 * LANES, &cols[0][b][0], 6 * LANES);
        for (int i = 0; i < 4; i++)
            output_transform6(&cols[i][0][0], LANES, &pix[i][0][0], LANES);
        float *oc = out + co * out_plane;
        const float *rc = residual ? residual + co * residual_plane : NULL;
        const float b = bias ? bias[co] : 0.0f;
        for (int i = 0; i < 4; i++) {
            const int y = oy0 + d * i;
            if (y >= h)
                break;
            for (int l = 0; l < lanes; l++)
                for (int j = 0; j < 4; j++) {
                    const int x = xq[l] + d * j;
                    if (x >= w)
                        continue;
                    float s = pix[i][j][l] + b;
                    if (relu)
                        s = s > 0.0f ? s : 0.0f;
                    const size_t at = (size_t)y * w + x;
                    oc[at] = rc ? s + rc[at] : s;
                }
        }
    }
}

static void gemm_portable(const float *u, size_t u_xi, int npanels, int kc, const float *v,
                          size_t v_xi, float *m, size_t m_xi, size_t stride, int ntp,
                          int accumulate)
{
    /* 4 output channels x 8 tiles at a time: 32 accumulators, as many as
     * 128-bit vector registers hold */
    enum { RB = 4, NT = 8 };
    for (int xi = 0; xi < 36; xi++)
        for (int p = 0; p < npanels; p++) {
            const float *panel = u + xi * u_xi + (size_t)p * kc * MR;
            for (int t = 0; t < ntp; t += NT)
                for (int r0 = 0; r0 < MR; r0 += RB) {
                    float acc[RB][NT]; /* [output channel][tile] */
                    for (int r = 0; r < RB; r++)
                        for (int l = 0; l < NT; l++)
                            acc[r][l] = 0.0f;
                    for (int k = 0; k < kc; k++) {
                        const float *vk = v + (size_t)xi * v_xi + k * stride + t;
                        for (int r = 0; r < RB; r++) {
                            const float a = panel[k * MR + r0 + r];
                            for (int l = 0; l < NT; l++)
                                acc[r][l] += a * vk[l];
                        }
                    }
                    for (int r = 0; r < RB; r++) {
                        float *mr = m + (size_t)xi * m_xi + (size_t)(p * MR + r0 + r) * stride + t;
                        for (int l = 0; l < NT; l++)
                            mr[l] = accumulate ? mr[l] + acc[r][l] : acc[r][l];
                    }
                }
        }
}

/* MR floats of one panel row, as a GCC/Clang vector. */
typedef float wino_vec __attribute__((vector_size(MR * sizeof(float))));
#include "conv3x3_winograd_weights.h"

void wino_pack_portable(const float *weight, int cin, int cout, int co0, int nco, int k0,
                        int kc, float *u, size_t u_xi)
{
    const int npanels = (nco + MR - 1) / MR;
    for (int p = 0; p < npanels; p++)
        for (int k = 0; k < kc; k++) {
            wino_vec g[9], gg[3][6]; /* the 3x3 kernels of the panel's MR outputs, G g */
            for (int r = 0; r < MR; r++) {
                const int co = co0 + p * MR + r;
                const float *src = weight + ((size_t)co * cin + k0 + k) * 9;
                for (int t = 0; t < 9; t++)
                    g[t][r] = p * MR + r < nco && co < cout ? src[t] : 0.0f;
            }
            wino_weight_columns(g, gg);
            for (int a = 0; a < 6; a++) {
                wino_vec row[6];
                wino_g_column(&gg[0][a], 6, row);
                for (int b = 0; b < 6; b++)
                    memcpy(u + (6 * a + b) * u_xi + ((size_t)p * kc + k) * MR, &row[b],
                           sizeof row[b]);
            }
        }
}

static const wino_loops portable_loops = {
    input_group_portable, output_group_portable, gemm_portable, wino_pack_portable, NULL, NULL, 0,
};

static const wino_loops *loops_for(kernel_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == KERNEL_ISA_AVX512)
        return &wino_loops_avx512;
    if (isa == KERNEL_ISA_AVX2)
        return &wino_loops_avx2;
#elif defined(__aarch64__)
    if (isa == KERNEL_ISA_NEON)
        return &wino_loops_neon;
#else
    (void)isa;
#endif
    return &portable_loops;
}

/* ---- Tiles and groups. */

static int subgrid_tiles(int size, int d, int r)
{
    const int n = (size - r + d - 1) / d; /* pixels of sub-grid r */
    return (n + 3) / 4;
}

/* Tile numbering of one layer (conv3x3_winograd.h): tile rows (ry, ty), ry
 * outer, of row_tiles = d * (tiles of sub-grid column 0, the widest) tiles
 * each; a narrower sub-grid's extra tile reads zeros and writes nothing. */
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
    int oy0, q0, lanes; /* as in conv3x3_winograd.h */
} group;

/* The group of at most max_lanes tiles that starts at tile number `tile`
 * and ends at `end` at the latest. */
static group group_at(const tiling *t, long tile, long end, int max_lanes)
{
    long row = tile / t->row_tiles;
    const int q0 = (int)(tile % t->row_tiles);
    long lanes = t->row_tiles - q0;
    if (lanes > max_lanes)
        lanes = max_lanes;
    if (lanes > end - tile)
        lanes = end - tile;
    int ry = 0;
    while (row >= subgrid_tiles(t->h, t->d, ry))
        row -= subgrid_tiles(t->h, t->d, ry++);
    const group g = {ry + 4 * t->d * (int)row, q0, (int)lanes};
    return g;
}

/* ---- The split of the work, from the shapes alone. */

typedef struct {
    tiling geo;
    int by_tiles;
    size_t stride;        /* floats per row of V and M: the tiles of a task's
                             block (or of the layer), rounded up to 16, and
                             16 more for the last group's filler lanes */
    int ntp;              /* tiles the GEMM computes per row, a multiple of 16 */
    /* by tiles */
    int co_blk;           /* output channels packed together, multiple of MR */
    long block_n, nblocks;/* tiles per block, blocks */
    /* by channels */
    int pass_ch;          /* input channels per pass, multiple of CHUNK or cin */
    int co_task;          /* output channels per task, multiple of MR */
    /* sizes in floats, each a multiple of 16 */
    size_t v_xi, m_xi, u_floats, v_floats, m_floats;
    size_t shared, per_thread;
} wino_split;

/* packed: the caller gives all the weights packed (conv3x3_winograd_pack),
 * so none are packed or kept here. */
static wino_split split_work(int cin, int cout, int h, int w, int d, int packed)
{
    wino_split s;
    memset(&s, 0, sizeof s);
    s.geo = make_tiling(h, w, d);
    const long T = s.geo.ntiles;
    const int cout_pad = round_mr(cout);
    const size_t xi_floats = 36; /* per channel pair, tile or channel row */
    s.by_tiles = T > SMALL_TILES;
    if (s.by_tiles) {
        const size_t u_all = xi_floats * cin * cout_pad;
        s.co_blk = cout_pad;
        if (!packed && u_all * sizeof(float) > SHARED_BYTES) {
            s.co_blk = (int)(SHARED_BYTES / sizeof(float) / (xi_floats * cin)) / MR * MR;
            s.co_blk = s.co_blk < MR ? MR : s.co_blk;
        }
        const int kc = cin < CHUNK ? cin : CHUNK;
        long nb = (long)(TASK_BYTES / sizeof(float) / (xi_floats * (kc + s.co_blk))) / 16 * 16;
        nb = nb < NB_MIN ? NB_MIN : nb > NB_MAX ? NB_MAX : nb;
        s.nblocks = (T + nb - 1) / nb;
        s.block_n = (T + s.nblocks - 1) / s.nblocks; /* balanced */
        s.ntp = (int)round16((size_t)s.block_n);
        s.stride = (size_t)s.ntp + 16;
        s.v_xi = (size_t)kc * s.stride + XI_PAD;
        s.m_xi = (size_t)s.co_blk * s.stride + XI_PAD;
        s.u_floats = xi_floats * (size_t)cin * s.co_blk;
        s.v_floats = xi_floats * s.v_xi;
        s.m_floats = xi_floats * s.m_xi;
        s.shared = packed ? 0 : round16(s.u_floats);
        s.per_thread = s.v_floats + s.m_floats;
    } else {
        s.ntp = (int)round16((size_t)T);
        s.stride = (size_t)s.ntp + 16;
        s.co_task = round_mr((cout + 7) / 8);
        s.co_task = s.co_task > CO_TASK_MAX ? CO_TASK_MAX : s.co_task;
        /* one pass over every input channel when its V fits; otherwise
         * passes of as many chunks as fit beside M, which then has to stay
         * between passes */
        const size_t row = xi_floats * s.stride; /* one channel of V, or of M */
        const size_t budget = SHARED_BYTES / sizeof(float);
        if (cin * row <= budget) {
            s.pass_ch = cin;
        } else {
            const size_t m_all = cout_pad * row;
            const size_t fit = budget > m_all ? (budget - m_all) / row : 0;
            s.pass_ch = (int)(fit / CHUNK * CHUNK);
            s.pass_ch = s.pass_ch < CHUNK ? CHUNK : s.pass_ch;
        }
        const int passes = (cin + s.pass_ch - 1) / s.pass_ch;
        s.v_xi = (size_t)s.pass_ch * s.stride + XI_PAD;
        s.m_xi = (size_t)(passes > 1 ? cout_pad : s.co_task) * s.stride + XI_PAD;
        s.u_floats = packed ? 0 : xi_floats * s.co_task * CHUNK;
        s.v_floats = xi_floats * s.v_xi;
        s.m_floats = xi_floats * s.m_xi;
        s.shared = s.v_floats + (passes > 1 ? s.m_floats : 0);
        s.per_thread = s.u_floats + (passes > 1 ? 0 : s.m_floats);
    }
    return s;
}

size_t conv3x3_winograd_workspace_floats(int cin, int cout, int h, int w, int dilation,
                                         int packed, int threads)
{
    const wino_split s = split_work(cin, cout, h, w, dilation, packed);
    return s.shared + (size_t)threads * s.per_thread;
}

/* All the packed weights: [chunk][36][npanels][kc][MR], chunk k0 at
 * 36*npanels*MR*k0, the layout of one block of output channels by tiles. */
size_t conv3x3_winograd_packed_floats(int cin, int cout)
{
    return (size_t)36 * cin * round_mr(cout);
}

/* A panel of one chunk at a time, each written by one task. */
static void pack_all(const wino_loops *L, const float *weight, int cin, int cout, int co0,
                     int nco, float *u)
{
    const int npanels = (nco + MR - 1) / MR, nchunks = (cin + CHUNK - 1) / CHUNK;
    #pragma omp for schedule(dynamic)
    for (int item = 0; item < nchunks * npanels; item++) {
        const int k0 = item / npanels * CHUNK, p = item % npanels;
        const int kc = cin - k0 < CHUNK ? cin - k0 : CHUNK;
        const int pn = nco - p * MR < MR ? nco - p * MR : MR;
        float *uc = u + (size_t)36 * npanels * MR * k0;
        L->pack(weight, cin, cout, co0 + p * MR, pn, k0, kc, uc + (size_t)p * kc * MR,
                (size_t)npanels * kc * MR);
    }
}

void conv3x3_winograd_pack(kernel_isa isa, const float *weight, int cin, int cout, float *packed,
                           int threads)
{
    const wino_loops *L = loops_for(isa);
    #pragma omp parallel num_threads(threads)
    pack_all(L, weight, cin, cout, 0, cout, packed);
}

/* ---- Running it. */

/* V for input channels [0, nch) of in (planes of a's window), the tiles
 * [t0, t1) (lanes from 0 at t0): every group's 8 lanes, then zeros up to
 * ntp. */
static void transform_input(const wino_loops *L, const wino_split *s, const conv3x3_args *a,
                            const float *const *in, int nch, long t0, long t1, float *v)
{
    const int max_lanes = L->wide_lanes ? L->wide_lanes : LANES;
    long written = 0; /* lanes of each V row written so far */
    for (long t = t0; t < t1;) {
        const group g = group_at(&s->geo, t, t1, max_lanes);
        const int wide = g.lanes > LANES;
        (wide ? L->input_group_wide : L->input_group)(in, nch, a->in_rows, a->w, s->geo.d,
                                                      g.oy0 + a->row0, g.q0, v + (t - t0),
                                                      s->v_xi, s->stride);
        written = t - t0 + (wide ? max_lanes : LANES);
        t += g.lanes;
    }
    if (written < s->ntp)
        for (int xi = 0; xi < 36; xi++)
            for (int k = 0; k < nch; k++)
                memset(v + xi * s->v_xi + k * s->stride + written, 0,
                       (s->ntp - written) * sizeof(float));
}

/* Output channels co0 .. co0+nco-1 of the tiles [t0, t1) from m. */
static void transform_output(const wino_loops *L, const wino_split *s, const conv3x3_args *a,
                             const float *m, int co0, int nco, long t0, long t1)
{
    const float *bias = a->bias ? a->bias + co0 : NULL;
    const float *res = a->residual ? a->residual + co0 * a->residual_plane : NULL;
    float *out = a->out + co0 * a->out_plane;
    const int max_lanes = L->wide_lanes ? L->wide_lanes : LANES;
    for (long t = t0; t < t1;) {
        const group g = group_at(&s->geo, t, t1, max_lanes);
        (g.lanes > LANES ? L->output_group_wide : L->output_group)(
            m + (t - t0), s->m_xi, s->stride, nco, bias, a->relu, res, a->residual_plane, out,
            a->out_plane, a->h, a->w, s->geo.d, g.oy0, g.q0, g.lanes);
        t += g.lanes;
    }
}

static int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static void run_by_tiles(const wino_loops *L, const wino_split *s, const conv3x3_args *a,
                         const float *packed, float *work, int threads)
{
    const int cin = a->cin, cout = a->cout;
    const long T = s->geo.ntiles;
    float *u = work; /* [chunk][36][co_blk / MR][kc][MR], unless packed */
    #pragma omp parallel num_threads(threads)
    {
        float *v = work + s->shared + (size_t)thread_num() * s->per_thread;
        float *m = v + s->v_floats;
        for (int co0 = 0; co0 < cout; co0 += s->co_blk) {
            const int nco = cout - co0 < s->co_blk ? cout - co0 : s->co_blk;
            const int npanels = (nco + MR - 1) / MR;
            if (!packed)
                pack_all(L, a->weight, cin, cout, co0, nco, u);
            const float *uk = packed ? packed : u;
            #pragma omp for schedule(dynamic)
            for (long b = 0; b < s->nblocks; b++) {
                const long t0 = b * s->block_n;
                const long t1 = t0 + s->block_n < T ? t0 + s->block_n : T;
                const int ntp = (int)round16((size_t)(t1 - t0));
                for (int k0 = 0; k0 < cin; k0 += CHUNK) {
                    const int kc = cin - k0 < CHUNK ? cin - k0 : CHUNK;
                    transform_input(L, s, a, a->in + k0, kc, t0, t1, v);
                    L->gemm(uk + (size_t)36 * npanels * MR * k0, (size_t)npanels * kc * MR,
                            npanels, kc, v, s->v_xi, m, s->m_xi, s->stride, ntp, k0 > 0);
                }
                transform_output(L, s, a, m, co0, nco, t0, t1);
            }
        }
    }
}

static void run_by_channels(const wino_loops *L, const wino_split *s, const conv3x3_args *a,
                            const float *packed, float *work, int threads)
{
    const int cin = a->cin, cout = a->cout;
    const long T = s->geo.ntiles;
    const int passes = (cin + s->pass_ch - 1) / s->pass_ch;
    const int ntasks = (cout + s->co_task - 1) / s->co_task;
    const int all_panels = (cout + MR - 1) / MR; /* of packed */
    float *v = work;                   /* [36][pass_ch][stride] */
    float *m_all = work + s->v_floats; /* [36][cout_pad][stride], with passes > 1 */
    #pragma omp parallel num_threads(threads)
    {
        float *u = work + s->shared + (size_t)thread_num() * s->per_thread;
        float *m_own = u + s->u_floats;
        for (int c0 = 0; c0 < cin; c0 += s->pass_ch) {
            const int nc = cin - c0 < s->pass_ch ? cin - c0 : s->pass_ch;
            #pragma omp for schedule(dynamic)
            for (int c = 0; c < nc; c += CH_TASK)
                transform_input(L, s, a, a->in + c0 + c, nc - c < CH_TASK ? nc - c : CH_TASK, 0,
                                T, v + c * s->stride);
            #pragma omp for schedule(dynamic)
            for (int task = 0; task < ntasks; task++) {
                const int co0 = task * s->co_task;
                const int nco = cout - co0 < s->co_task ? cout - co0 : s->co_task;
                const int npanels = (nco + MR - 1) / MR;
                float *m = passes > 1 ? m_all + co0 * s->stride : m_own;
                for (int k = 0; k < nc; k += CHUNK) {
                    const int k0 = c0 + k, kc = nc - k < CHUNK ? nc - k : CHUNK;
                    const float *uk = u;
                    size_t u_xi = (size_t)npanels * kc * MR;
                    if (packed) {
                        uk = packed + (size_t)36 * all_panels * MR * k0 + (size_t)co0 * kc;
                        u_xi = (size_t)all_panels * kc * MR;
                    } else {
                        L->pack(a->weight, cin, cout, co0, nco, k0, kc, u, u_xi);
                    }
                    L->gemm(uk, u_xi, npanels, kc, v + k * s->stride, s->v_xi, m, s->m_xi,
                            s->stride, s->ntp, k0 > 0);
                }
                if (c0 + nc == cin)
                    transform_output(L, s, a, m, co0, nco, 0, T);
            }
        }
    }
}

void conv3x3_winograd(kernel_isa isa, const conv3x3_args *a, const float *packed,
                      float *workspace, int threads)
{
    if (a->h <= 0 || a->w <= 0 || a->cout <= 0)
        return;
    const wino_loops *L = loops_for(isa);
    const wino_split s = split_work(a->cin, a->cout, a->h, a->w, a->dilation, packed != NULL);
    if (s.by_tiles)
        run_by_tiles(L, &s, a, packed, workspace, threads);
    else
        run_by_channels(L, &s, a, packed, workspace, threads);
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
