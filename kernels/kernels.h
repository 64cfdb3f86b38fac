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

/* 1x1 convolution with bias: in [cin,n] (n = h*w), weight [cout,cin],
 * bias [cout], out [cout,n]. */
void conv1x1(const float *in, int cin, size_t n, const float *weight,
             const float *bias, int cout, float *out);

/* 2x2 max pool, stride 2, ceil mode: in [c,h,w] -> out [c,(h+1)/2,(w+1)/2];
 * a window cut by the edge takes the max of the pixels it has. */
void maxpool2x2_ceil(const float *in, int c, int h, int w, float *out, int threads);

/* Bilinear resize to an exact size with PyTorch's align_corners=False
 * arithmetic: src = max(0, (dst + 0.5) * in/out - 0.5), neighbours clamped to
 * the edge. in [c,ih,iw] -> out [c,oh,ow]. */
void resize_bilinear(const float *in, int c, int ih, int iw,
                     float *out, int oh, int ow, int threads);

/* out[i] = a[i] + b[i] for i < n (the reference for the fused residual add). */
void add_ref(const float *a, const float *b, float *out, size_t n);

/* x[i] = 1 / (1 + exp(-x[i])) in place. */
void sigmoid_inplace(float *x, size_t n);

#endif
