/* kernels.h - CPU kernels of u2net.c.
 *
 * Every tensor is one image in planar CHW float32: element (c, y, x) of a
 * [C, H, W] tensor is at c*H*W + y*W + x. A channel slice of a tensor is
 * itself a [C', H, W] tensor, which is how concatenation is done without
 * copying: producers write straight into their slice of the consumer's input.
 *
 * Each layer kind has a plain C reference kernel (`*_ref`), written for
 * clarity, that the tests hold the fast kernels against.
 */
#ifndef U2NET_KERNELS_H
#define U2NET_KERNELS_H

#include <stddef.h>

/* Instruction sets of the fast kernels. Each fast kernel takes the one to
 * use, so that tests and benchmarks can run the AVX2 and portable loops on
 * a machine with AVX-512 too; callers pass kernel_isa_best() or less.
 *   KERNEL_ISA_AVX512  AVX-512 F, VL, DQ and BW (with FMA)
 *   KERNEL_ISA_AVX2    AVX2 and FMA
 *   KERNEL_ISA_PORTABLE plain C that compilers vectorise */
typedef enum { KERNEL_ISA_PORTABLE = 0, KERNEL_ISA_AVX2 = 1, KERNEL_ISA_AVX512 = 2 } kernel_isa;
kernel_isa kernel_isa_best(void);
/* min(wanted, kernel_isa_best()) */
kernel_isa kernel_isa_clamp(kernel_isa wanted);
const char *kernel_isa_name(kernel_isa isa);

/* 3x3 convolution, stride 1, dilation d, zero padding d (output size = input
 * size), with bias, then optionally ReLU, then optionally a residual add:
 *   out[co,y,x] = act(bias[co] + sum_{ci,ky,kx} weight[co,ci,ky,kx] *
 *                      in[ci, y+(ky-1)d, x+(kx-1)d]) + residual[co,y,x]
 * in [cin,h,w], weight [cout,cin,3,3], bias [cout], residual [cout,h,w] or
 * NULL, out [cout,h,w]; out must not alias in or residual. */
void conv3x3_dilated_ref(const float *in, int cin, int h, int w,
                         const float *weight, const float *bias, int cout,
                         int dilation, int relu, const float *residual,
                         float *out, int threads);

/* The same convolution as im2col over tiles of output pixels + cblas_sgemm,
 * with bias, ReLU and the residual add fused into the tile's epilogue. The
 * split into tiles depends only on the shapes, never on `threads`, so the
 * result is bit-identical for any thread count. scratch holds
 * threads * conv3x3_scratch_floats(cin) floats. */
void conv3x3_dilated_im2col(const float *in, int cin, int h, int w,
                            const float *weight, const float *bias, int cout,
                            int dilation, int relu, const float *residual,
                            float *out, float *scratch, int threads);
size_t conv3x3_scratch_floats(int cin);

/* The same convolution by Winograd F(4x4, 3x3) (conv3x3_winograd.c; the
 * algorithm is described in kernels/README.md). A dilated convolution is run
 * as a plain one on each of the d*d interleaved sub-grids (y mod d, x mod d).
 * The weights are transformed into conv3x3_winograd_packed_floats(cin, cout)
 * floats of G g G^T (layout in conv3x3_winograd.c) by conv3x3_winograd_pack,
 * fast enough (~35 ns per channel pair and thread) to run before each use. scratch holds
 * threads * conv3x3_winograd_scratch_floats(cin, cout) floats. Same semantics
 * and aliasing rules as conv3x3_dilated_ref; the split of the work depends
 * only on the shapes, so the result is bit-identical for any thread count.
 * The hot loops run with AVX2+FMA when the CPU has them. */
size_t conv3x3_winograd_packed_floats(int cin, int cout);
void conv3x3_winograd_pack(const float *weight, int cin, int cout, float *packed, int threads);
size_t conv3x3_winograd_scratch_floats(int cin, int cout);
void conv3x3_dilated_winograd(const float *in, int cin, int h, int w, const float *packed,
                              const float *bias, int cout, int dilation, int relu,
                              const float *residual, float *out, float *scratch, int threads);

/* 1 when the Winograd kernel is measured faster than conv3x3_dilated_im2col
 * for this layer shape (kernels/README.md has the measurements). */
int conv3x3_winograd_worthwhile(int cin, int cout, int h, int w, int dilation);

/* Forces the portable C hot loops (portable != 0) or lets the CPU check pick
 * AVX2 again (0); for tests and benchmarks, not thread-safe with running
 * convolutions. conv3x3_winograd_isa() names the loops in use: "avx2" or
 * "portable". */
void conv3x3_winograd_force_portable(int portable);
const char *conv3x3_winograd_isa(void);

/* Internals shared by conv3x3_winograd.c and conv3x3_winograd_avx2.c only.
 *
 * Tiles. Sub-grid (ry, rx) holds the pixels (ry + d*sy, rx + d*sx); its tile
 * (ty, tx) the 4x4 outputs sy = 4ty.., sx = 4tx... A tile row is every tile
 * (rx, tx) of one (ry, ty), numbered q = tx*d + rx (so with d > 1 the tiles
 * of neighbouring sub-grids sit side by side in memory order). A group is up
 * to 8 consecutive tiles q0.. of one tile row, one per vector lane: lane l
 * is tile q = q0 + l, whose output pixel (i, j), i, j < 4, lies at row
 * oy0 + d*i, column xq + d*j, and input patch pixel (i, k), i, k < 6, at row
 * oy0 + d*(i-1), column xq + d*(k-1), with oy0 = ry + 4d*ty and
 * xq = q%d + 4d*(q/d); pixels outside the image read as zero and are not
 * written.
 *
 * Transformed data keep the tiles of a block contiguous, in rows of
 * CONV3X3_WINOGRAD_ROW floats:
 *   v [channel][36][ROW]  B^T D B, xi = 6a + b for element (a, b)
 *   m [36][channel][ROW]  the products, before A^T . A
 * A group's functions get v or m offset to its first tile; they write all 8
 * lanes (the ones past `lanes` hold finite filler that a later group or the
 * caller overwrites). */
enum {
    CONV3X3_WINOGRAD_MR = 4,
    CONV3X3_WINOGRAD_ROW = 104,
    CONV3X3_WINOGRAD_CHUNK_CIN = 128, /* most input channels in v */
    CONV3X3_WINOGRAD_TASK_COUT = 128, /* most output channels in m */
    /* the sums over input channels run in blocks of this many, which are then
     * added up: the float error of a sum grows with its length */
    CONV3X3_WINOGRAD_SUM_BLOCK = 64,
    /* element (channel c, xi, tile t) at c*V_C + xi*V_XI + t of v, likewise
     * of m; m's xi planes are padded by a cache line so that the 36 loads of
     * the output transform do not all fall in one cache set */
    CONV3X3_WINOGRAD_V_C = 36 * CONV3X3_WINOGRAD_ROW,
    CONV3X3_WINOGRAD_V_XI = CONV3X3_WINOGRAD_ROW,
    CONV3X3_WINOGRAD_M_C = CONV3X3_WINOGRAD_ROW,
    CONV3X3_WINOGRAD_M_XI = CONV3X3_WINOGRAD_TASK_COUT * CONV3X3_WINOGRAD_ROW + 16,
};

/* v = B^T D B for channels 0..nch-1 of in [nch,h,w]. */
void conv3x3_winograd_input_group_avx2(const float *in, int nch, int h, int w, int d, int oy0,
                                       int q0, float *v);
/* out = act(A^T m A + bias) + residual for channels 0..nco-1 of out
 * [nco,h,w] (bias [nco], residual [nco,h,w] or NULL), lanes 0..lanes-1. */
void conv3x3_winograd_output_group_avx2(const float *m, int nco, const float *bias, int relu,
                                        const float *residual, float *out, int h, int w, int d,
                                        int oy0, int q0, int lanes);
/* m[xi][co][0..ntp) (+)= sum_k u[xi][p0 + co/MR][k][co%MR] v[k][xi][0..ntp)
 * for co < nco, k < kc, summed in blocks of SUM_BLOCK: u [36][npanels][kc][MR]
 * is one chunk of the packed weights, v and m as above, ntp a multiple of 8;
 * accumulate = 0 overwrites m. */
void conv3x3_winograd_gemm_avx2(const float *u, int npanels, int p0, int nco, int kc,
                                const float *v, float *m, int ntp, int accumulate);

/* The same convolution computed directly, for layers with few input or few
 * output channels, where Winograd's transforms cost more than its saved
 * multiplies (the first layer, 3 -> 64, and the side outputs, cin -> 1).
 * Same shapes, semantics and aliasing rules as conv3x3_dilated_ref: in
 * [cin,h,w], weight [cout,cin,3,3], bias [cout], residual [cout,h,w] or
 * NULL, out [cout,h,w]; any h, w >= 1 and dilation >= 1. Runs the loops of
 * `isa` (kernel_isa_best() or less) on `threads` threads; each output is
 *   act(((bias + S_0) + S_1) + ...) + residual
 * where S_k sums the products of the k-th block of input channels (8, or
 * 4 for cout <= 4; below) in an order fixed by the ISA, so the result is
 * bit-identical for any thread count. Takes no scratch from the caller (18
 * KB of stack per thread). */
void conv3x3_dilated_direct(kernel_isa isa, const float *in, int cin, int h, int w,
                            const float *weight, const float *bias, int cout, int dilation,
                            int relu, const float *residual, float *out, int threads);

/* 1 when conv3x3_dilated_direct is measured faster than packing the weights
 * and running conv3x3_dilated_winograd for this layer shape (the
 * measurements are in conv3x3_direct.c and kernels/README.md). */
int conv3x3_direct_worthwhile(int cin, int cout, int h, int w, int dilation);

/* Internals shared by conv3x3_direct.c and conv3x3_direct_avx2.c /
 * conv3x3_direct_avx512.c only.
 *
 * Two loop nests, each run by a task on part of the output:
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

typedef struct {
    const float *in; /* [cin,h,w] */
    int cin, h, w;
    const float *weight; /* [cout,cin,3,3] */
    const float *bias;   /* [cout] */
    int cout, dilation, relu;
    const float *residual; /* [cout,h,w] or NULL */
    float *out;            /* [cout,h,w] */
} conv3x3_direct_problem;

/* Output columns per strip. */
int conv3x3_direct_strip_width(int dilation);

/* Columns from x0 that groups of whole vectors of vl pixels compute: to
 * the image's right end rounded up to vl, at most a strip. */
int conv3x3_direct_strip_columns(const conv3x3_direct_problem *p, int x0, int vl);

/* Copies input rows rows[i] (any may lie outside the image) of channels
 * ci0 .. ci0+nci-1, what output columns x0 .. x0+ncols-1 read, into slots
 * slots[i] of `strip` (nslots per channel), for i < n; the AVX files do the
 * same with vector loads. */
void conv3x3_direct_copy_rows(const conv3x3_direct_problem *p, int ci0, int nci, int x0,
                              int ncols, const int *rows, const int *slots, int n, int nslots,
                              float *strip);

/* Software prefetch into L2 of `runs` runs of `len` floats, `stride`
 * floats apart from `base`, per_step floats per conv3x3_direct_prefetch_step. */
typedef struct {
    const float *base;
    size_t stride, len, per_step;
    int runs;
    int run;   /* the run being prefetched */
    size_t at; /* floats of it prefetched so far */
} conv3x3_direct_prefetcher;

/* The prefetch, in `steps` steps, of input channels ci0 .. ci0+nci-1, rows
 * y0 .. y1-1 (clipped to the image): one run per channel with dilation 1;
 * nothing with another dilation, where the rows a band reads are not
 * contiguous, or for an input small enough to stay in L3. */
void conv3x3_direct_prefetch_plan(const conv3x3_direct_problem *p, int ci0, int nci, int y0,
                                  int y1, long steps, conv3x3_direct_prefetcher *pf);
void conv3x3_direct_prefetch_step(conv3x3_direct_prefetcher *pf);

/* dst [nci][9][nco]: tap t of input channel ci0+c for output channel co0+o at
 * dst[(c*9 + t)*nco + o], 0 where co0+o >= cout; what the outblock loops
 * broadcast from, one output channel after another. */
void conv3x3_direct_pack(const conv3x3_direct_problem *p, int co0, int nco, int ci0, int nci,
                         float *dst);

void conv3x3_direct_outblock_avx2(const conv3x3_direct_problem *p, int co0, int nco, int y0,
                                  int ny);
void conv3x3_direct_rowblock_avx2(const conv3x3_direct_problem *p, int co, int y0, int ny);
void conv3x3_direct_outblock_avx512(const conv3x3_direct_problem *p, int co0, int nco, int y0,
                                    int ny);
void conv3x3_direct_rowblock_avx512(const conv3x3_direct_problem *p, int co, int y0, int ny);

/* 1x1 convolution with bias: in [cin,n] (n = h*w), weight [cout,cin],
 * bias [cout], out [cout,n]. */
void conv1x1(const float *in, int cin, size_t n, const float *weight,
             const float *bias, int cout, float *out);

/* 2x2 max pool, stride 2, ceil mode: in [c,h,w] -> out [c,(h+1)/2,(w+1)/2];
 * a window cut by the edge takes the max of the pixels it has. */
void maxpool2x2_ceil(const float *in, int c, int h, int w, float *out, int threads);

/* Output rows y0 <= y < y1 of the same pool: out [c, y1-y0, (w+1)/2], on the
 * calling thread alone. */
void maxpool2x2_ceil_rows(const float *in, int c, int h, int w, float *out, int y0, int y1);

/* Bilinear resize to an exact size with PyTorch's align_corners=False
 * arithmetic: src = max(0, (dst + 0.5) * in/out - 0.5), neighbours clamped to
 * the edge. in [c,ih,iw] -> out [c,oh,ow]. */
void resize_bilinear(const float *in, int c, int ih, int iw,
                     float *out, int oh, int ow, int threads);

/* Rows y0 <= y < y1 of the same resize: out [c, y1-y0, ow], bit-identical to
 * those rows of resize_bilinear's output; on the calling thread alone, for
 * callers that split channels over threads themselves. */
void resize_bilinear_rows(const float *in, int c, int ih, int iw, float *out, int oh, int ow,
                          int y0, int y1);

/* out[i] = a[i] + b[i] for i < n (the reference for the fused residual add). */
void add_ref(const float *a, const float *b, float *out, size_t n);

/* x[i] = 1 / (1 + exp(-x[i])) in place. */
void sigmoid_inplace(float *x, size_t n);

#endif
