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
