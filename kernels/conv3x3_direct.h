/* conv3x3_direct.h - what conv3x3_direct.c (the work split, strips,
 * prefetch, portable loops) shares with its per-ISA loops
 * (conv3x3_direct_avx2.c, _avx512.c, _neon.c). Not part of the
 * kernels' interface (kernels.h). */
#ifndef U2NET_CONV3X3_DIRECT_H
#define U2NET_CONV3X3_DIRECT_H

#include "kernels.h"

/* Two loop nests, each run by a task on part of the output:
 *   outblock  output channels co0 .. co0+nco-1 (nco <= CONV3X3_DIRECT_TASK_COUT)
 *             of the consecutive rows y0 .. y0+ny-1; several output channels
 *             are blocked in registers and share each input load (few
 *             input channels, many output channels)
 *   rowblock  output channel co of the rows y0 + dilation*i, i < ny (a band
 *             of rows of one dilation sub-grid), in tiles of up to
 *             CONV3X3_DIRECT_ROWS rows blocked in registers, which share each
 *             input row they read (few output channels)
 * Both sum the input channels in blocks of OUTBLOCK_CIN / ROWBLOCK_CIN in
 * registers and add each block's sum to the output: the first block's to
 * the bias; after the last come ReLU and the residual. A task takes its
 * blocks one after another, each over all its rows: for a block, strip
 * after strip, row (outblock) or tile (rowblock) after row or tile.
 *
 * Strips. The loops read their input from a strip: the input rows of a row
 * or tile for a block of input channels and up to STRIP (dilation 1) or
 * STRIP_DILATED output columns x0 .., copied with zeros for the pixels
 * outside the image. So every load is a whole vector at a constant offset,
 * with no edge cases, and the strip is contiguous (input planes a multiple
 * of 4 KiB apart, as at 320x320, put the rows of many channels in the same
 * L1 sets). A strip has `slots` rows per channel; outblock copies the 3
 * rows of each output row, rowblock keeps ROWS + 2 as a ring, input row r
 * of its sub-grid (rows y0 + d*r, r >= -1) in slot (r+1) % (ROWS+2), so that
 * a tile copies only the rows the previous tile did not read. Slot s of
 * channel c, tap kx:
 *   dilation 1  [nci][slots][STRIP_ROW]: element i is input column x0-1+i,
 *               i < STRIP + 2, so tap kx of output column x0+x is at x + kx
 *   dilation d  [nci][slots][3][STRIP_DILATED]: element (kx, i) is input
 *               column x0 + (kx-1)d + i (a copy per tap keeps the offsets
 *               constant; dilated layers are not what this kernel is for)
 *
 * Prefetch. Reading a tile strip by strip, rowblock follows 4 x 6 rows at
 * once, in short runs; the hardware prefetchers then fetch from memory at
 * half the rate. So while it computes a block it prefetches the next
 * block's input rows into L2 in software, channel after channel, each a
 * single run front to back (dilation 1). */
enum {
    CONV3X3_DIRECT_STRIP = 128,
    CONV3X3_DIRECT_STRIP_ROW = 144, /* STRIP + 2 rounded up to a cache line */
    CONV3X3_DIRECT_STRIP_DILATED = 64,
    CONV3X3_DIRECT_OUTBLOCK_CIN = 8,
    CONV3X3_DIRECT_ROWBLOCK_CIN = 4,
    CONV3X3_DIRECT_TASK_COUT = 16,
    CONV3X3_DIRECT_ROWS = 4, /* most rows of a rowblock tile */
    /* floats of the largest strip, 8 x 3 or 4 x 6 rows dilated: 18 KB, on
     * the stack, in L1 */
    CONV3X3_DIRECT_STRIP_FLOATS = 8 * 3 * 3 * CONV3X3_DIRECT_STRIP_DILATED,
};

/* Floats per strip slot and between a slot's taps (above), for dilation 1
 * (dil1) or another. */
static inline int conv3x3_direct_slot_floats(int dil1)
{
    return dil1 ? CONV3X3_DIRECT_STRIP_ROW : 3 * CONV3X3_DIRECT_STRIP_DILATED;
}

static inline int conv3x3_direct_tap_step(int dil1)
{
    return dil1 ? 1 : CONV3X3_DIRECT_STRIP_DILATED;
}

/* Output columns per strip. */
int conv3x3_direct_strip_width(int dilation);

/* Columns from x0 that groups of whole vectors of vl pixels compute: to
 * the image's right end rounded up to vl, at most a strip. */
int conv3x3_direct_strip_columns(const conv3x3_args *p, int x0, int vl);

/* Copies input rows rows[i] (any may lie outside the image) of channels
 * ci0 .. ci0+nci-1, what output columns x0 .. x0+ncols-1 read, into slots
 * slots[i] of `strip` (nslots per channel), for i < n; the AVX files do the
 * same with vector loads. */
void conv3x3_direct_copy_rows(const conv3x3_args *p, int ci0, int nci, int x0,
                              int ncols, const int *rows, const int *slots, int n, int nslots,
                              float *strip);

/* Software prefetch into L2 of `runs` runs of `len` floats, one in each of
 * the planes, per_step floats per conv3x3_direct_prefetch_step. */
typedef struct {
    const float *const *planes; /* run r starts at planes[r] + offset */
    size_t offset, len, per_step;
    int runs;
    int run;   /* the run being prefetched */
    size_t at; /* floats of it prefetched so far */
} conv3x3_direct_prefetcher;

/* The prefetch, in `steps` steps, of input channels ci0 .. ci0+nci-1, the
 * input rows y0 .. y1-1 of output rows (clipped to the window): one run per channel with dilation 1;
 * nothing with another dilation, where the rows a band reads are not
 * contiguous, or for an input small enough to stay in L3. */
void conv3x3_direct_prefetch_plan(const conv3x3_args *p, int ci0, int nci, int y0,
                                  int y1, long steps, conv3x3_direct_prefetcher *pf);
void conv3x3_direct_prefetch_step(conv3x3_direct_prefetcher *pf);

/* dst [nci][9][nco]: tap t of input channel ci0+c for output channel co0+o at
 * dst[(c*9 + t)*nco + o], 0 where co0+o >= cout; what the outblock loops
 * broadcast from, one output channel after another. */
void conv3x3_direct_pack(const conv3x3_args *p, int co0, int nco, int ci0, int nci,
                         float *dst);

void conv3x3_direct_outblock_avx2(const conv3x3_args *p, int co0, int nco, int y0,
                                  int ny);
void conv3x3_direct_rowblock_avx2(const conv3x3_args *p, int co, int y0, int ny);
void conv3x3_direct_outblock_avx512(const conv3x3_args *p, int co0, int nco, int y0,
                                    int ny);
void conv3x3_direct_rowblock_avx512(const conv3x3_args *p, int co, int y0, int ny);
void conv3x3_direct_outblock_neon(const conv3x3_args *p, int co0, int nco, int y0, int ny);
void conv3x3_direct_rowblock_neon(const conv3x3_args *p, int co, int y0, int ny);


#endif
