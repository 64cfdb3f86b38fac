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

/* Floats per strip slot and between a slot's taps (kernels.h), for
 * dilation 1 (dil1) or another. */
INLINE int slot_floats(int dil1)
{
    return dil1 ? STRIP_ROW : 3 * STRIP_DILATED;
}

INLINE int tap_step(int dil1)
{
    return dil1 ? 1 : STRIP_DILATED;
}

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
                float *o = strip + ((size_t)c * nslots + slots[i]) * slot_floats(dil1) +
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

/* One strip of a task, for one block of input channels: outblock for
 * output channels co0 .. co0+nco-1 of row y, rowblock for output channel
 * co0 of the nr rows y + d*i, whose tile rows j are in strip slots slot[j];
 * columns x0 .. x0+ncols-1. rowblock takes a step of its prefetch pf per
 * strip. */
typedef struct {
    const conv3x3_args *p;
    const float *strip;
    const float *weights; /* outblock: panels [nco/CO][nci][9][CO]; rowblock: co's from ci0 */
    int nci, first, last;
    int co0, nco, y, nr, x0, ncols;
    int slot[RING];
    conv3x3_direct_prefetcher *pf;
} strip_job;

/* Adds one block's sums acc[i][v] to output rows i < nrows, which start at
 * out_row[i] (and res_row[i] in the residual, or NULL), columns x ..;
 * bias[i] for the first block; `inside`: the group ends inside the image,
 * so no masks. */
INLINE void store_group(const strip_job *j, int nrows, int nv, float *const *out_row,
                        const float *const *res_row, const float *bias, vec acc[][NV], int x,
                        int inside)
{
    const conv3x3_args *p = j->p;
    for (int i = 0; i < nrows; i++)
        for (int v = 0; v < nv && (inside || x + v * VL < p->w); v++) {
            const int at = x + v * VL;
            const int n = inside || p->w - x - v * VL >= VL ? VL : p->w - x - v * VL;
            finish(out_row[i] + at, res_row[i] ? res_row[i] + at : NULL, n, inside, bias[i],
                   acc[i][v], j->first, j->last, p->relu);
        }
}

/* Strip columns from which on the groups are not whole inside the image:
 * those before it take NV vectors and unmasked stores, those after it as
 * many vectors as the image needs, and masked stores. */
INLINE int whole_groups_end(const strip_job *j)
{
    const int n = j->p->w - j->x0 < j->ncols ? j->p->w - j->x0 : j->ncols;
    return n / (NV * VL) * (NV * VL);
}

/* outblock, one group: CO output channels x nv vectors in registers; per
 * tap, nv loads and CO broadcasts feed CO * nv FMAs. Taps in the order ci,
 * ky, kx. s: the strip at the group's column; panel [nci][9][CO]. */
INLINE void outblock_group(const float *s, const float *panel, int nci, int nv, int dil1,
                           vec acc[CO][NV])
{
    for (int o = 0; o < CO; o++)
        for (int v = 0; v < nv; v++)
            acc[o][v] = _mm256_setzero_ps();
    for (int c = 0; c < nci; c++, s += 3 * slot_floats(dil1), panel += 9 * CO)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                vec px[NV];
                for (int v = 0; v < nv; v++)
                    px[v] = load_pixels(s + ky * slot_floats(dil1) + kx * tap_step(dil1) + v * VL);
                for (int o = 0; o < CO; o++) {
                    const vec wt = _mm256_broadcast_ss(panel + (ky * 3 + kx) * CO + o);
                    for (int v = 0; v < nv; v++)
                        acc[o][v] = _mm256_fmadd_ps(wt, px[v], acc[o][v]);
                }
            }
}

/* rowblock, one group: nr rows x nv vectors in registers; each tile row
 * load feeds the up to 3 output rows that read it (output row i reads tile
 * rows i, i+1, i+2 with taps ky = 0, 1, 2). Taps in the order ci, kx, ky.
 * row[j] + x: tile row j of the block's first channel at the group's
 * column; k: the weights from the block's first input channel on. */
INLINE void rowblock_group(const float *const row[RING], int x, const float *k, int nci, int nr,
                           int nv, int dil1, vec acc[ROWS][NV])
{
    for (int i = 0; i < nr; i++)
        for (int v = 0; v < nv; v++)
            acc[i][v] = _mm256_setzero_ps();
    /* one pointer per row, moved on by a channel's slots: offsets from a
     * single pointer would cost GCC a register (or stack slot) per load */
    const float *r[RING];
    for (int j = 0; j < nr + 2; j++)
        r[j] = row[j] + x;
    for (int c = 0; c < nci; c++, k += 9) {
        for (int kx = 0; kx < 3; kx++) {
            const vec w0 = _mm256_broadcast_ss(k + kx), w1 = _mm256_broadcast_ss(k + 3 + kx);
            const vec w2 = _mm256_broadcast_ss(k + 6 + kx);
            for (int j = 0; j < nr + 2; j++)
                for (int v = 0; v < nv; v++) {
                    const vec in = load_pixels(r[j] + kx * tap_step(dil1) + v * VL);
                    if (j < nr)
                        acc[j][v] = _mm256_fmadd_ps(w0, in, acc[j][v]);
                    if (j >= 1 && j <= nr)
                        acc[j - 1][v] = _mm256_fmadd_ps(w1, in, acc[j - 1][v]);
                    if (j >= 2)
                        acc[j - 2][v] = _mm256_fmadd_ps(w2, in, acc[j - 2][v]);
                }
        }
        for (int j = 0; j < nr + 2; j++)
            r[j] += RING * slot_floats(dil1);
    }
}

/* The groups of a strip: those inside the image, then the ones at its
 * right end (as many vectors as reach into the image, masked stores). */
INLINE void outblock_strip(const strip_job *j, int dil1)
{
    const conv3x3_args *p = j->p;
    const int whole = whole_groups_end(j);
    for (int o0 = 0; o0 < j->nco; o0 += CO) {
        const float *panel = j->weights + (size_t)o0 * j->nci * 9;
        const int nrows = j->nco - o0 < CO ? j->nco - o0 : CO;
        float *out_row[CO], bias[CO];
        const float *res_row[CO];
        for (int o = 0; o < nrows; o++) {
            const int co = j->co0 + o0 + o;
            out_row[o] = p->out + co * p->out_plane + (size_t)j->y * p->w;
            res_row[o] =
                p->residual ? p->residual + co * p->residual_plane + (size_t)j->y * p->w : NULL;
            bias[o] = p->bias ? p->bias[co] : 0.0f;
        }
        vec acc[CO][NV];
        int x = 0;
        for (; x < whole; x += NV * VL) {
            outblock_group(j->strip + x, panel, j->nci, NV, dil1, acc);
            store_group(j, nrows, NV, out_row, res_row, bias, acc, j->x0 + x, 1);
        }
        for (; x < j->ncols; x += NV * VL) {
            if (p->w - j->x0 - x > VL) {
                outblock_group(j->strip + x, panel, j->nci, NV, dil1, acc);
                store_group(j, nrows, NV, out_row, res_row, bias, acc, j->x0 + x, 0);
            } else {
                outblock_group(j->strip + x, panel, j->nci, 1, dil1, acc);
                store_group(j, nrows, 1, out_row, res_row, bias, acc, j->x0 + x, 0);
            }
        }
    }
}

/* The same for rowblock. */
INLINE void rowblock_strip(const strip_job *j, int nr, int dil1)
{
    const conv3x3_args *p = j->p;
    const int whole = whole_groups_end(j);
    if (j->pf)
        conv3x3_direct_prefetch_step(j->pf);
    float *out_row[ROWS], bias[ROWS];
    const float *res_row[ROWS], *row[RING];
    for (int i = 0; i < nr; i++) {
        const size_t at = (size_t)(j->y + i * p->dilation) * p->w;
        out_row[i] = p->out + j->co0 * p->out_plane + at;
        res_row[i] = p->residual ? p->residual + j->co0 * p->residual_plane + at : NULL;
        bias[i] = p->bias ? p->bias[j->co0] : 0.0f;
    }
    for (int t = 0; t < nr + 2; t++)
        row[t] = j->strip + (size_t)j->slot[t] * slot_floats(dil1);
    vec acc[ROWS][NV];
    int x = 0;
    for (; x < whole; x += NV * VL) {
        rowblock_group(row, x, j->weights, j->nci, nr, NV, dil1, acc);
        store_group(j, nr, NV, out_row, res_row, bias, acc, j->x0 + x, 1);
    }
    for (; x < j->ncols; x += NV * VL) {
        if (p->w - j->x0 - x > VL) {
            rowblock_group(row, x, j->weights, j->nci, nr, NV, dil1, acc);
            store_group(j, nr, NV, out_row, res_row, bias, acc, j->x0 + x, 0);
        } else {
            rowblock_group(row, x, j->weights, j->nci, nr, 1, dil1, acc);
            store_group(j, nr, 1, out_row, res_row, bias, acc, j->x0 + x, 0);
        }
    }
}

/* The loops specialised by inlining with constant arguments. */
static void outblock_strip_any(const strip_job *j)
{
    if (j->p->dilation == 1)
        outblock_strip(j, 1);
    else
        outblock_strip(j, 0);
}

static void rowblock_strip_any(const strip_job *j)
{
    const int dil1 = j->p->dilation == 1;
    switch (j->nr * 2 + dil1) {
    case 2: rowblock_strip(j, 1, 0); break;
    case 3: rowblock_strip(j, 1, 1); break;
    case 4: rowblock_strip(j, 2, 0); break;
    case 5: rowblock_strip(j, 2, 1); break;
    case 6: rowblock_strip(j, 3, 0); break;
    case 7: rowblock_strip(j, 3, 1); break;
    case 8: rowblock_strip(j, 4, 0); break;
    default: rowblock_strip(j, 4, 1); break;
    }
}

static int block_count(int cin, int per_block)
{
    return cin > 0 ? (cin + per_block - 1) / per_block : 1;
}

void conv3x3_direct_outblock_avx2(const conv3x3_args *p, int co0, int nco, int y0,
                                  int ny)
{
    float strip[CONV3X3_DIRECT_STRIP_FLOATS]; /* [nci][3 slots] */
    /* [nco/CO][nci][9][CO] */
    float packed[OUTBLOCK_CIN * 9 * ((TASK_COUT + CO - 1) / CO * CO)];
    static const int slots[3] = {0, 1, 2};
    const int d = p->dilation, nblocks = block_count(p->cin, OUTBLOCK_CIN);
    strip_job j = {.p = p, .strip = strip, .weights = packed, .co0 = co0, .nco = nco};
    for (int b = 0; b < nblocks; b++) {
        const int ci0 = b * OUTBLOCK_CIN;
        j.nci = p->cin - ci0 < OUTBLOCK_CIN ? p->cin - ci0 : OUTBLOCK_CIN;
        j.first = b == 0, j.last = b == nblocks - 1;
        for (int o0 = 0; o0 < nco; o0 += CO)
            conv3x3_direct_pack(p, co0 + o0, CO, ci0, j.nci, packed + (size_t)o0 * j.nci * 9);
        for (j.x0 = 0; j.x0 < p->w; j.x0 += conv3x3_direct_strip_width(d)) {
            j.ncols = conv3x3_direct_strip_columns(p, j.x0, VL);
            for (j.y = y0; j.y < y0 + ny; j.y++) {
                const int rows[3] = {j.y - d, j.y, j.y + d};
                copy_rows(p, ci0, j.nci, j.x0, j.ncols, rows, slots, 3, 3, strip);
                outblock_strip_any(&j);
            }
        }
    }
}

void conv3x3_direct_rowblock_avx2(const conv3x3_args *p, int co, int y0, int ny)
{
    float strip[CONV3X3_DIRECT_STRIP_FLOATS]; /* [nci][RING slots] */
    conv3x3_direct_prefetcher pf;
    const int d = p->dilation, nblocks = block_count(p->cin, ROWBLOCK_CIN);
    const int width = conv3x3_direct_strip_width(d);
    /* prefetch steps per block: its strips */
    const long steps = (long)(p->w + width - 1) / width * ((ny + ROWS - 1) / ROWS);
    strip_job j = {.p = p, .strip = strip, .co0 = co, .nco = 1, .pf = &pf};
    for (int b = 0; b < nblocks; b++) {
        const int ci0 = b * ROWBLOCK_CIN;
        j.nci = p->cin - ci0 < ROWBLOCK_CIN ? p->cin - ci0 : ROWBLOCK_CIN;
        j.first = b == 0, j.last = b == nblocks - 1;
        j.weights = p->weight + ((size_t)co * p->cin + ci0) * 9;
        const int next = ci0 + j.nci;
        const int next_nci = p->cin - next < ROWBLOCK_CIN ? p->cin - next : ROWBLOCK_CIN;
        conv3x3_direct_prefetch_plan(p, next, next_nci, y0 - d, y0 + ny * d + 1, steps, &pf);
        for (j.x0 = 0; j.x0 < p->w; j.x0 += width) {
            j.ncols = conv3x3_direct_strip_columns(p, j.x0, VL);
            for (int t = 0; t < ny; t += ROWS) { /* the tile of rows y0 + d*(t+i), i < nr */
                j.y = y0 + t * d, j.nr = ny - t < ROWS ? ny - t : ROWS;
                int rows[RING];
                for (int r = 0; r < j.nr + 2; r++) {
                    j.slot[r] = (t + r) % RING;
                    rows[r] = y0 + (t + r - 1) * d;
                }
                /* after the first tile only the rows past the previous one's */
                const int fresh = t == 0 ? 0 : 2;
                copy_rows(p, ci0, j.nci, j.x0, j.ncols, rows + fresh, j.slot + fresh,
                          j.nr + 2 - fresh, RING, strip);
                rowblock_strip_any(&j);
            }
        }
    }
}

#endif
