/* conv3x3_direct_loops.h - the strips, register groups and tasks of the
 * direct 3x3 convolution's two loop nests (outblock and rowblock,
 * conv3x3_direct.h), written once for the AVX2 and AVX-512 files, which
 * include it after defining what differs between them:
 *   vec, VL, NV, CO            the vector type, its floats, vectors per group,
 *                              outblock's output channels in registers
 *   ROWS, RING, STRIP_ROW, STRIP_DILATED, OUTBLOCK_CIN, ROWBLOCK_CIN,
 *   TASK_COUT                  conv3x3_direct.h's constants
 *   VEC_ZERO(), VEC_BCAST(p), VEC_FMA(a, b, c)
 *                              zero, *p in every lane, a*b + c
 *   load_pixels, copy_rows, finish
 *                              a strip load, the strip copy and the
 *                              masked stores
 *   DIRECT_NAME(f)             conv3x3_direct_f_avx2 or _avx512
 * Both ISAs so run the same sums in the same order. */

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
            acc[o][v] = VEC_ZERO();
    const int slot = conv3x3_direct_slot_floats(dil1), tap = conv3x3_direct_tap_step(dil1);
    for (int c = 0; c < nci; c++, s += 3 * slot, panel += 9 * CO)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                vec px[NV];
                for (int v = 0; v < nv; v++)
                    px[v] = load_pixels(s + ky * slot + kx * tap + v * VL);
                for (int o = 0; o < CO; o++) {
                    const vec wt = VEC_BCAST(panel + (ky * 3 + kx) * CO + o);
                    for (int v = 0; v < nv; v++)
                        acc[o][v] = VEC_FMA(wt, px[v], acc[o][v]);
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
            acc[i][v] = VEC_ZERO();
    /* one pointer per row, moved on by a channel's slots: offsets from a
     * single pointer would cost GCC a register (or stack slot) per load */
    const float *r[RING];
    for (int j = 0; j < nr + 2; j++)
        r[j] = row[j] + x;
    for (int c = 0; c < nci; c++, k += 9) {
        for (int kx = 0; kx < 3; kx++) {
            const vec w0 = VEC_BCAST(k + kx), w1 = VEC_BCAST(k + 3 + kx), w2 = VEC_BCAST(k + 6 + kx);
            for (int j = 0; j < nr + 2; j++)
                for (int v = 0; v < nv; v++) {
                    const vec in = load_pixels(r[j] + kx * conv3x3_direct_tap_step(dil1) + v * VL);
                    if (j < nr)
                        acc[j][v] = VEC_FMA(w0, in, acc[j][v]);
                    if (j >= 1 && j <= nr)
                        acc[j - 1][v] = VEC_FMA(w1, in, acc[j - 1][v]);
                    if (j >= 2)
                        acc[j - 2][v] = VEC_FMA(w2, in, acc[j - 2][v]);
                }
        }
        for (int j = 0; j < nr + 2; j++)
            r[j] += RING * conv3x3_direct_slot_floats(dil1);
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
        row[t] = j->strip + (size_t)j->slot[t] * conv3x3_direct_slot_floats(dil1);
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

void DIRECT_NAME(outblock)(const conv3x3_args *p, int co0, int nco, int y0, int ny)
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

void DIRECT_NAME(rowblock)(const conv3x3_args *p, int co, int y0, int ny)
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
