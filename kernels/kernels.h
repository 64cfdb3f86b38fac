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
 * algorithm is described in kernels/README.md), with the hot loops of `isa`.
 * A dilated convolution is run as a plain one on each of the d*d
 * interleaved sub-grids (y mod d, x mod d). The weights are transformed on
 * every call, so nothing is kept between calls. workspace holds
 * conv3x3_winograd_workspace_floats(cin, cout, h, w, dilation, threads)
 * floats, 64-byte aligned. Same semantics and aliasing rules as
 * conv3x3_dilated_ref; the split of the work depends only on the shapes, so
 * the result is bit-identical for any thread count. */
size_t conv3x3_winograd_workspace_floats(int cin, int cout, int h, int w, int dilation,
                                         int threads);
void conv3x3_dilated_winograd(kernel_isa isa, const float *in, int cin, int h, int w,
                              const float *weight, const float *bias, int cout, int dilation,
                              int relu, const float *residual, float *out, float *workspace,
                              int threads);

/* 1 when the Winograd kernel is measured faster than conv3x3_dilated_im2col
 * for this layer shape (kernels/README.md has the measurements). */
int conv3x3_winograd_worthwhile(int cin, int cout, int h, int w, int dilation);

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
