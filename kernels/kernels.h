/* kernels.h - CPU kernels of u2net.c.
 *
 * Every tensor is one image in planar CHW float32: element (c, y, x) of a
 * [C, H, W] tensor is at c*H*W + y*W + x. A channel slice of a tensor is
 * itself a [C', H, W] tensor, which is how concatenation is done without
 * copying: producers write straight into their slice of the consumer's input.
 *
 * The 3x3 convolution, the one layer with fast kernels, has a plain C
 * reference (conv3x3_ref), written for clarity, that the tests hold the
 * fast kernels against; the other layers (pool, resize, 1x1, sigmoid) have
 * one plain kernel each, which is their reference, plus the row-window
 * forms the banded executor uses, tested bit-identical to them.
 */
#ifndef U2NET_KERNELS_H
#define U2NET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Instruction sets of the fast kernels. Each fast kernel takes the one to
 * use, so that tests and benchmarks can run the AVX2 and portable loops on
 * a machine with AVX-512 too; callers pass an ISA kernel_isa_runs() accepts.
 *   KERNEL_ISA_AVX512  AVX-512 F, VL, DQ and BW (with FMA)        x86, level 2
 *   KERNEL_ISA_AVX2    AVX2, FMA and F16C                         x86, level 1
 *   KERNEL_ISA_NEON    Advanced SIMD with FMA and float16 (ARMv8-A) aarch64, level 1
 *   KERNEL_ISA_PORTABLE plain C that compilers vectorise          level 0 */
typedef enum {
    KERNEL_ISA_PORTABLE = 0, KERNEL_ISA_AVX2 = 1, KERNEL_ISA_AVX512 = 2, KERNEL_ISA_NEON = 3,
    KERNEL_ISA_COUNT = 4
} kernel_isa;
kernel_isa kernel_isa_best(void);
/* The ISA of this CPU of the highest level up to wanted's: kernel_isa_best()
 * when wanted's level is at least its level (so AVX-512 asked of an ARM CPU
 * gives NEON), the portable loops for level 0. */
kernel_isa kernel_isa_clamp(kernel_isa wanted);
/* 1 when this CPU runs isa's loops (kernel_isa_clamp(isa) == isa). */
int kernel_isa_runs(kernel_isa isa);
const char *kernel_isa_name(kernel_isa isa);

/* One 3x3 convolution (stride s, dilation d, zero padding d), with bias,
 * then optionally ReLU, then optionally a residual add, over a window of
 * rows of its input:
 *   out[co][y][x] = act(bias[co] + sum_{ci,ky,kx} weight[co][ci][ky][kx] *
 *                   in[ci][y*s + row0 + (ky-1)d][x*s + (kx-1)d]) + residual[co][y][x]
 * for 0 <= y < h, 0 <= x < w, where input rows outside 0 .. in_rows-1 and
 * columns outside 0 .. in_w-1 read as zero. The input is a list of planes,
 * so that a convolution reads a concatenation of tensors, or rows of one,
 * without copying them; with row0 = 0, in_rows = h and in_w = w (stride 1)
 * it is the plain convolution of an image. out must not overlap the input
 * or the residual. conv3x3_direct and conv3x3_winograd take stride 1 only
 * (in_w == w); the reference and im2col kernels any stride. */
typedef struct {
    const float *const *in; /* [cin] planes: row r of channel c at in[c] + r*in_w */
    int cin, in_rows, in_w, row0;
    int stride;             /* 1 or 2 */
    int h, w;               /* the output's rows and width */
    const float *weight;    /* [cout][cin][3][3] */
    const float *bias;      /* [cout], or NULL for none */
    int cout, dilation, relu;
    const float *residual;  /* row y of channel c at residual + c*residual_plane
                               + y*w, or NULL */
    size_t residual_plane;
    float *out;             /* row y of channel c at out + c*out_plane + y*w */
    size_t out_plane;
} conv3x3_args;

/* The plain reference kernel, written for clarity. */
void conv3x3_ref(const conv3x3_args *a, int threads);

/* c [m x n] += a [m x k] b [k x n], row-major with the given row strides,
 * on the calling thread (gemm.c). */
void gemm_accumulate(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc);

/* The same convolution as im2col over tiles of output pixels + a GEMM,
 * with bias, ReLU and the residual add fused into the tile's epilogue. The
 * split into tiles depends only on the shapes, never on `threads`, so the
 * result is bit-identical for any thread count. scratch holds
 * threads * conv3x3_scratch_floats(cin) floats. */
void conv3x3_im2col(const conv3x3_args *a, float *scratch, int threads);
size_t conv3x3_scratch_floats(int cin);

/* The same convolution by Winograd F(4x4, 3x3) (conv3x3_winograd.c; the
 * algorithm is described in kernels/README.md), with the hot loops of `isa`.
 * A dilated convolution is run as a plain one on each of the d*d
 * interleaved sub-grids (y mod d, x mod d). The weights are transformed on
 * every call, unless the caller gives them transformed already: packed
 * holds conv3x3_winograd_packed_floats(cin, cout) floats made by
 * conv3x3_winograd_pack (with the same isa), worth it for a caller that
 * runs one layer on several bands of rows; otherwise packed is NULL.
 * workspace holds conv3x3_winograd_workspace_floats(cin, cout, h, w,
 * dilation, packed != NULL, threads) floats, 64-byte aligned. The split of
 * the work depends only on the shapes, so the result is bit-identical for
 * any thread count. */
size_t conv3x3_winograd_workspace_floats(int cin, int cout, int h, int w, int dilation,
                                         int packed, int threads);
size_t conv3x3_winograd_packed_floats(int cin, int cout);
void conv3x3_winograd_pack(kernel_isa isa, const float *weight, int cin, int cout, float *packed,
                           int threads);
void conv3x3_winograd(kernel_isa isa, const conv3x3_args *a, const float *packed,
                      float *workspace, int threads);

/* The same convolution computed directly, for layers with few input or few
 * output channels, where Winograd's transforms cost more than its saved
 * multiplies (the first layer, 3 -> 64, and the side outputs, cin -> 1),
 * with the loops of `isa` (conv3x3_direct.c). Needs no workspace (18 KB of
 * stack per thread). Each output is
 *   act(((bias + S_0) + S_1) + ...) + residual
 * where S_k sums the products of the k-th block of input channels (8, or
 * 4 for cout <= 4) in an order fixed by the ISA, so the result is
 * bit-identical for any thread count. */
void conv3x3_direct(kernel_isa isa, const conv3x3_args *a, int threads);

/* 1 when conv3x3_direct is measured faster than conv3x3_winograd (weights
 * packed included) for this layer shape (kernels/README.md). */
int conv3x3_direct_worthwhile(int cin, int cout, int h, int w, int dilation);

/* 1 when the Winograd kernel is measured faster than conv3x3_im2col
 * for this layer shape (kernels/README.md has the measurements). */
int conv3x3_winograd_worthwhile(int cin, int cout, int h, int w, int dilation);

/* 1x1 convolution with bias: in [cin] planes of n floats (n = h*w), weight
 * [cout,cin], bias [cout], out [cout,n]. */
void conv1x1(const float *const *in, int cin, size_t n, const float *weight,
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

/* float16 (IEEE binary16 bits) to float32, exactly (every value): n values
 * with the loops of isa (F16C with AVX2 or better, FCVTL with NEON), split
 * over threads; and those loops themselves (half_f16c_avx2.c, half_neon.c,
 * the latter on aarch64 only). One value: half.h. */
void half_to_float_n(kernel_isa isa, const uint16_t *src, float *dst, size_t n, int threads);
void half_to_float_f16c(const uint16_t *src, float *dst, size_t n);
void half_to_float_neon(const uint16_t *src, float *dst, size_t n);

/* x[i] = 1 / (1 + exp(-x[i])) in place. */
void sigmoid_inplace(float *x, size_t n);

#endif
