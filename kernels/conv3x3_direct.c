/* conv3x3_direct.c - 3x3 dilated convolution computed directly, for layers
 * with few input or few output channels: the split of the work into tasks,
 * the strips and weight panels the loops read, the software prefetch, the
 * portable loops, the choice of the AVX2 / AVX-512 / NEON loops
 * (conv3x3_direct_avx2.c, _avx512.c, _neon.c) and the measured rule
 * for when it beats Winograd. Shapes and the loop nests are described in
 * kernels.h.
 *
 * Every output pixel costs 9*cin multiply-adds, all of them useful, and
 * nothing else; so it beats Winograd (4x fewer multiplies, but transforms
 * of every input and output channel) where one side has few channels: the
 * first layer (3 -> 64) and the side outputs (cin -> 1).
 *
 * Tasks:
 *   outblock (cout above ROWBLOCK_COUT_MAX): a band of consecutive rows x up
 *     to TASK_COUT output channels, about BAND_PIXELS pixels;
 *   rowblock: a band of rows of one dilation sub-grid (whole tiles of ROWS
 *     rows) x one output channel, about ROWBLOCK_BAND_PIXELS pixels: its
 *     output, re-read for every block of input channels, stays in L2.
 * Bands are made thinner while there are fewer than MIN_TASKS tasks (but
 * rowblock's not below a tile). The order of every output's sums depends on
 * the ISA only, and every output is written by one task, so neither the
 * split nor the thread count changes the result. */
#include "conv3x3_direct.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86_LOOPS 1
#else
#define HAVE_X86_LOOPS 0
#endif

enum {
    STRIP = CONV3X3_DIRECT_STRIP,
    STRIP_ROW = CONV3X3_DIRECT_STRIP_ROW,
    STRIP_DILATED = CONV3X3_DIRECT_STRIP_DILATED,
    OUTBLOCK_CIN = CONV3X3_DIRECT_OUTBLOCK_CIN,
    ROWBLOCK_CIN = CONV3X3_DIRECT_ROWBLOCK_CIN,
    TASK_COUT = CONV3X3_DIRECT_TASK_COUT,
    ROWS = CONV3X3_DIRECT_ROWS,
    RING = ROWS + 2,              /* rowblock's strip slots per channel */
    /* rowblock up to here: for 2 to 4 output channels it measured 1.3-3x
     * faster than outblock with AVX-512 (whose 8 channels are then mostly
     * idle), within 25% with AVX2 */
    ROWBLOCK_COUT_MAX = 4,
    BAND_PIXELS = 2048,           /* outblock: output pixels per task */
    ROWBLOCK_BAND_PIXELS = 16384, /* rowblock: output pixels per task */
    /* tasks wanted so that 2 threads balance: 16 made the bands of deep
     * small layers so thin (one tile) that 1024 -> 1 at 80x80 ran 1.5x slower */
    MIN_TASKS = 8,
    /* rowblock prefetches inputs from this size on (8 MB): smaller ones stay
     * in L3 between layers, and the prefetch instructions cost up to 30%
     * then (measured at 64 x 16 x 320) */
    PREFETCH_MIN_FLOATS = 2 << 20,
    PB = 16,                      /* portable: pixels per group */
    P_CO = 4,                     /* portable outblock: output channels per group */
};

int conv3x3_direct_strip_width(int dilation)
{
    return dilation == 1 ? STRIP : STRIP_DILATED;
}

int conv3x3_direct_strip_columns(const conv3x3_args *p, int x0, int vl)
{
    const int n = (p->w - x0 + vl - 1) / vl * vl, width = conv3x3_direct_strip_width(p->dilation);
    return n < width ? n : width;
}

/* dst[0 .. n) = row[s ..], zero outside columns 0 .. w-1 (s may be negative). */
static void copy_clipped(const float *row, int s, int n, int w, float *dst)
{
    const int lo = s < 0 ? (-s < n ? -s : n) : 0;            /* zeros before column 0 */
    const int hi = w - s < n ? (w - s > lo ? w - s : lo) : n; /* the row ends here */
    memset(dst, 0, (size_t)lo * sizeof(float));
    if (hi > lo)
        memcpy(dst + lo, row + s + lo, (size_t)(hi - lo) * sizeof(float));
    memset(dst + hi, 0, (size_t)(n - hi) * sizeof(float));
}

void conv3x3_direct_copy_rows(const conv3x3_args *p, int ci0, int nci, int x0,
                              int ncols, const int *rows, const int *slots, int n, int nslots,
                              float *strip)
{
    const int d = p->dilation, w = p->w;
    for (int c = 0; c < nci; c++)
        for (int i = 0; i < n; i++) {
            const int y = rows[i] + p->row0, inside = y >= 0 && y < p->in_rows;
            const float *row = inside ? p->in[ci0 + c] + (size_t)y * w : NULL;
            const size_t slot = (size_t)c * nslots + slots[i];
            if (d == 1) {
                float *o = strip + slot * STRIP_ROW;
                if (inside)
                    copy_clipped(row, x0 - 1, ncols + 2, w, o);
                else
                    memset(o, 0, (size_t)(ncols + 2) * sizeof(float));
                continue;
            }
            for (int kx = 0; kx < 3; kx++) {
                float *o = strip + (slot * 3 + kx) * STRIP_DILATED;
                if (inside)
                    copy_clipped(row, x0 + (kx - 1) * d, ncols, w, o);
                else
                    memset(o, 0, (size_t)ncols * sizeof(float));
            }
        }
}

void conv3x3_direct_prefetch_plan(const conv3x3_args *p, int ci0, int nci, int y0,
                                  int y1, long steps, conv3x3_direct_prefetcher *pf)
{
    *pf = (conv3x3_direct_prefetcher){.runs = 0};
    y0 = y0 + p->row0 > 0 ? y0 + p->row0 : 0;
    y1 = y1 + p->row0 < p->in_rows ? y1 + p->row0 : p->in_rows;
    if (p->dilation != 1 || nci < 1 || y1 <= y0 || steps < 1 ||
        (size_t)p->cin * p->in_rows * p->w < PREFETCH_MIN_FLOATS)
        return;
    pf->planes = p->in + ci0;
    pf->offset = (size_t)y0 * p->w;
    pf->len = (size_t)(y1 - y0) * p->w;
    pf->runs = nci;
    pf->per_step = (pf->len * (size_t)nci + (size_t)steps - 1) / (size_t)steps;
}

void conv3x3_direct_prefetch_step(conv3x3_direct_prefetcher *pf)
{
    for (size_t n = 0; n < pf->per_step && pf->run < pf->runs; n += 16) { /* a cache line */
        __builtin_prefetch(pf->planes[pf->run] + pf->offset + pf->at, 0, 2);
        pf->at += 16;
        if (pf->at >= pf->len)
            pf->run++, pf->at = 0;
    }
}

void conv3x3_direct_pack(const conv3x3_args *p, int co0, int nco, int ci0, int nci,
                         float *dst)
{
    for (int c = 0; c < nci; c++)
        for (int t = 0; t < 9; t++)
            for (int o = 0; o < nco; o++) {
                const int co = co0 + o;
                dst[(c * 9 + t) * nco + o] =
                    co < p->cout ? p->weight[((size_t)co * p->cin + ci0 + c) * 9 + t] : 0.0f;
            }
}

/* The portable loops: groups of PB pixels as arrays, which compilers
 * vectorise; the same sums in the same order as the AVX loops, without FMA,
 * and no prefetch. */

/* As finish() of the AVX loops: o[0..n) after one block's sums. */
static void finish_portable(float *o, const float *r, int n, float bias, const float sum[PB],
                            int first, int last, int relu)
{
    for (int l = 0; l < n; l++) {
        float t = (first ? bias : o[l]) + sum[l];
        if (last && relu)
            t = t > 0.0f ? t : 0.0f;
        if (last && r)
            t += r[l];
        o[l] = t;
    }
}

static int block_count(int cin, int per_block)
{
    return cin > 0 ? (cin + per_block - 1) / per_block : 1;
}

/* Strip element of tap kx, slot s (of nslots) of channel c, output column x
 * of the strip. */
static const float *strip_at(const float *strip, int d, int nslots, int c, int s, int kx, int x)
{
    const size_t slot = (size_t)c * nslots + s;
    return d == 1 ? strip + slot * STRIP_ROW + kx + x : strip + (slot * 3 + kx) * STRIP_DILATED + x;
}

static void outblock_portable(const conv3x3_args *p, int co0, int nco, int y0, int ny)
{
    const int w = p->w, d = p->dilation, nblocks = block_count(p->cin, OUTBLOCK_CIN);
    float strip[CONV3X3_DIRECT_STRIP_FLOATS];   /* [nci][3 slots] */
    float packed[OUTBLOCK_CIN * 9 * TASK_COUT]; /* [P_CO-channel panel][nci][9][P_CO] */
    static const int slots[3] = {0, 1, 2};
    for (int b = 0; b < nblocks; b++) {
        const int ci0 = b * OUTBLOCK_CIN;
        const int nci = p->cin - ci0 < OUTBLOCK_CIN ? p->cin - ci0 : OUTBLOCK_CIN;
        for (int o0 = 0; o0 < nco; o0 += P_CO)
            conv3x3_direct_pack(p, co0 + o0, P_CO, ci0, nci, packed + o0 * nci * 9);
        for (int x0 = 0; x0 < w; x0 += conv3x3_direct_strip_width(d)) {
            const int ncols = conv3x3_direct_strip_columns(p, x0, PB);
            for (int y = y0; y < y0 + ny; y++) {
                const int rows[3] = {y - d, y, y + d};
                conv3x3_direct_copy_rows(p, ci0, nci, x0, ncols, rows, slots, 3, 3, strip);
                for (int o0 = 0; o0 < nco; o0 += P_CO)
                    for (int x = 0; x < ncols; x += PB) {
                        float acc[P_CO][PB] = {{0}};
                        for (int c = 0; c < nci; c++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    const float *px = strip_at(strip, d, 3, c, ky, kx, x);
                                    const float *tap =
                                        packed + (o0 * nci + c * P_CO) * 9 + (ky * 3 + kx) * P_CO;
                                    for (int o = 0; o < P_CO; o++)
                                        for (int l = 0; l < PB; l++)
                                            acc[o][l] += tap[o] * px[l];
                                }
                        for (int o = 0; o < P_CO && o0 + o < nco; o++) {
                            const int co = co0 + o0 + o;
                            const size_t at = (size_t)y * w + x0 + x;
                            finish_portable(p->out + co * p->out_plane + at,
                                            p->residual ? p->residual + co * p->residual_plane + at
                                                        : NULL,
                                            w - x0 - x < PB ? w - x0 - x : PB,
                                            p->bias ? p->bias[co] : 0.0f, acc[o], b == 0,
                                            b == nblocks - 1, p->relu);
                        }
                    }
            }
        }
    }
}

static void rowblock_portable(const conv3x3_args *p, int co, int y0, int ny)
{
    const int w = p->w, d = p->dilation, nblocks = block_count(p->cin, ROWBLOCK_CIN);
    float strip[CONV3X3_DIRECT_STRIP_FLOATS]; /* [nci][RING slots] */
    for (int b = 0; b < nblocks; b++) {
        const int ci0 = b * ROWBLOCK_CIN;
        const int nci = p->cin - ci0 < ROWBLOCK_CIN ? p->cin - ci0 : ROWBLOCK_CIN;
        const float *k = p->weight + ((size_t)co * p->cin + ci0) * 9;
        for (int x0 = 0; x0 < w; x0 += conv3x3_direct_strip_width(d)) {
            const int ncols = conv3x3_direct_strip_columns(p, x0, PB);
            for (int t = 0; t < ny; t += ROWS) { /* the tile of rows y0 + d*(t+i), i < nr */
                const int nr = ny - t < ROWS ? ny - t : ROWS, fresh = t == 0 ? 0 : 2;
                int rows[RING], slots[RING], slot[RING];
                for (int j = 0; j < nr + 2; j++) {
                    slot[j] = (t + j) % RING;
                    rows[j] = y0 + (t + j - 1) * d, slots[j] = slot[j];
                }
                conv3x3_direct_copy_rows(p, ci0, nci, x0, ncols, rows + fresh, slots + fresh,
                                         nr + 2 - fresh, RING, strip);
                for (int x = 0; x < ncols; x += PB) {
                    float acc[ROWS][PB] = {{0}};
                    for (int c = 0; c < nci; c++)
                        for (int kx = 0; kx < 3; kx++)
                            for (int j = 0; j < nr + 2; j++) {
                                const float *px = strip_at(strip, d, RING, c, slot[j], kx, x);
                                /* output row i reads tile row j with tap ky = j - i */
                                for (int i = j - 2 > 0 ? j - 2 : 0; i <= j && i < nr; i++) {
                                    const float kv = k[c * 9 + (j - i) * 3 + kx];
                                    for (int l = 0; l < PB; l++)
                                        acc[i][l] += kv * px[l];
                                }
                            }
                    for (int i = 0; i < nr; i++) {
                        const size_t at = (size_t)(y0 + (t + i) * d) * w + x0 + x;
                        finish_portable(p->out + co * p->out_plane + at,
                                        p->residual ? p->residual + co * p->residual_plane + at
                                                    : NULL,
                                        w - x0 - x < PB ? w - x0 - x : PB,
                                        p->bias ? p->bias[co] : 0.0f, acc[i], b == 0,
                                        b == nblocks - 1, p->relu);
                    }
                }
            }
        }
    }
}

typedef void outblock_fn(const conv3x3_args *p, int co0, int nco, int y0, int ny);
typedef void rowblock_fn(const conv3x3_args *p, int co, int y0, int ny);

/* Rows of dilation sub-grid ry (ry, ry+d, ...) of an image h rows high. */
static int subgrid_rows(int h, int d, int ry)
{
    return ry < h ? (h - ry + d - 1) / d : 0;
}

/* rowblock tasks: the rows of each sub-grid in bands of `band` (the last
 * shorter), sub-grid after sub-grid. */
static long rowblock_bands(int h, int d, int band)
{
    long n = 0;
    for (int ry = 0; ry < d && ry < h; ry++)
        n += (subgrid_rows(h, d, ry) + band - 1) / band;
    return n;
}

/* First row and row count of band t. */
static void rowblock_band_at(int h, int d, int band, long t, int *y0, int *ny)
{
    for (int ry = 0;; ry++) {
        const int m = subgrid_rows(h, d, ry), bands = (m + band - 1) / band;
        if (t < bands) {
            *y0 = ry + d * band * (int)t;
            *ny = m - band * (int)t < band ? m - band * (int)t : band;
            return;
        }
        t -= bands;
    }
}

void conv3x3_direct(kernel_isa isa, const conv3x3_args *a, int threads)
{
    const int h = a->h, w = a->w, cout = a->cout, dilation = a->dilation;
    if (h < 1 || w < 1 || cout < 1)
        return;
    const conv3x3_args *p = a;
    outblock_fn *outblock = outblock_portable;
    rowblock_fn *rowblock = rowblock_portable;
#if HAVE_X86_LOOPS
    if (isa == KERNEL_ISA_AVX512)
        outblock = conv3x3_direct_outblock_avx512, rowblock = conv3x3_direct_rowblock_avx512;
    else if (isa == KERNEL_ISA_AVX2)
        outblock = conv3x3_direct_outblock_avx2, rowblock = conv3x3_direct_rowblock_avx2;
#elif defined(__aarch64__)
    if (isa == KERNEL_ISA_NEON)
        outblock = conv3x3_direct_outblock_neon, rowblock = conv3x3_direct_rowblock_neon;
#else
    (void)isa;
#endif
    if (cout <= ROWBLOCK_COUT_MAX) {
        const int tiles = ROWBLOCK_BAND_PIXELS / w / ROWS;
        int band = tiles > 1 ? tiles * ROWS : ROWS;
        while (band > ROWS && rowblock_bands(h, dilation, band) * cout < MIN_TASKS)
            band = (band / 2 + ROWS - 1) / ROWS * ROWS;
        const long ntasks = rowblock_bands(h, dilation, band) * cout;
        #pragma omp parallel for num_threads(threads) schedule(dynamic)
        for (long t = 0; t < ntasks; t++) {
            int y0, ny;
            rowblock_band_at(h, dilation, band, t / cout, &y0, &ny);
            rowblock(p, (int)(t % cout), y0, ny);
        }
    } else {
        const int nco = (cout + TASK_COUT - 1) / TASK_COUT;
        int band = BAND_PIXELS / w > 1 ? BAND_PIXELS / w : 1;
        while (band > 1 && (long)((h + band - 1) / band) * nco < MIN_TASKS)
            band = (band + 1) / 2;
        const long ntasks = (long)((h + band - 1) / band) * nco;
        #pragma omp parallel for num_threads(threads) schedule(dynamic)
        for (long t = 0; t < ntasks; t++) {
            const int y0 = (int)(t / nco) * band, co0 = (int)(t % nco) * TASK_COUT;
            outblock(p, co0, cout - co0 < TASK_COUT ? cout - co0 : TASK_COUT, y0,
                     h - y0 < band ? h - y0 : band);
        }
    }
}

/* Measured with `bench_conv direct-sweep` (AVX-512 loops against Winograd
 * with its AVX2 loops and the weight packing, 1 and 2 threads, cin 1 .. 256,
 * cout 1 .. 64, 20x20 / 80x80 / 320x320, dilation 1 and 2; kernels/README.md
 * has the summary), as Winograd + pack time / direct time:
 *   cout = 1 or cin <= 2: 1.0-4.6x;
 *   cout = 2, or cin <= 4 with cout >= 32 (the first layer, 3 -> 64):
 *     0.9-2.7x from 80x80 on (below 1 only on one thread, 0.93-0.95), but
 *     0.7-1.8x at 20x20;
 *   cin and cout both >= 3 otherwise: mostly 0.3-1.1x, so Winograd.
 * Dilation 2 favours direct further (Winograd runs each sub-grid apart);
 * the rule does not count on it. */
int conv3x3_direct_worthwhile(int cin, int cout, int h, int w, int dilation)
{
    (void)dilation;
    if (cout == 1 || cin <= 2)
        return 1;
    return (long)h * w >= 80 * 80 && (cout == 2 || (cin <= 4 && cout >= 32));
}
