/* gpu_bodies.h - what each step of a GPU plan (gpu_plan.h) computes for one
 * element: the whole arithmetic and indexing of the CUDA backend's kernels.
 * Every function is __host__ __device__ under nvcc (GPU_HD) and plain C
 * elsewhere: cuda_backend.cu's kernels call them, one thread an element,
 * and gpu_emulate.c and tests/test_gpu_bodies.c call them on the CPU over
 * the same index spaces, against the CPU reference kernels. The arithmetic
 * is the reference kernels' (kernels/), in the same order, so the GPU stays
 * within float32 rounding of the CPU. */
#ifndef U2NET_GPU_BODIES_H
#define U2NET_GPU_BODIES_H

#include <math.h>
#include <stddef.h>

#include "gpu_plan.h"

#ifdef __CUDACC__
#define GPU_HD __host__ __device__ static inline
#else
#define GPU_HD static inline
#endif

/* The bilinear taps of destination index d of out from in, PyTorch's
 * align_corners=False arithmetic in float (kernels/resize.c). */
typedef struct {
    int i0, i1;
    float l0, l1;
} gpu_tap;

GPU_HD gpu_tap gpu_bilinear_tap(int in, int out, int d)
{
    const float scale = (float)in / (float)out;
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int i0 = (int)src;
    if (i0 > in - 1)
        i0 = in - 1;
    gpu_tap t;
    t.i0 = i0;
    t.i1 = i0 < in - 1 ? i0 + 1 : i0;
    t.l1 = src - (float)i0;
    t.l0 = 1.0f - t.l1;
    return t;
}

/* Channel c of image n of tensor t resized to oh x ow, at (y, x). */
GPU_HD float gpu_bilinear_at(const float *arena, gpu_tensor t, int n, int c, int oh, int ow,
                             int y, int x)
{
    const float *p = arena + t.off + (size_t)n * t.image + (size_t)c * t.h * t.w;
    const gpu_tap ty = gpu_bilinear_tap(t.h, oh, y), tx = gpu_bilinear_tap(t.w, ow, x);
    const float *r0 = p + (size_t)ty.i0 * t.w, *r1 = p + (size_t)ty.i1 * t.w;
    return ty.l0 * (tx.l0 * r0[tx.i0] + tx.l1 * r0[tx.i1]) +
           ty.l1 * (tx.l0 * r1[tx.i0] + tx.l1 * r1[tx.i1]);
}

/* The 2x2 ceil-mode max pool of channel c of image n of t, at (y, x): a
 * window cut by the edge takes the max of the pixels it has. */
GPU_HD float gpu_pool_at(const float *arena, gpu_tensor t, int n, int c, int y, int x)
{
    const float *p = arena + t.off + (size_t)n * t.image + (size_t)c * t.h * t.w;
    const int y0 = 2 * y, x0 = 2 * x;
    const int y1 = y0 + 1 < t.h ? y0 + 1 : y0, x1 = x0 + 1 < t.w ? x0 + 1 : x0;
    float m = p[(size_t)y0 * t.w + x0];
    const float b = p[(size_t)y0 * t.w + x1], c2 = p[(size_t)y1 * t.w + x0],
                d = p[(size_t)y1 * t.w + x1];
    m = b > m ? b : m;
    m = c2 > m ? c2 : m;
    m = d > m ? d : m;
    return m;
}

/* Channel c of image n of cat(s.src) as the step reads it (its input size
 * in_h x in_w), at (y, x) inside it. */
GPU_HD float gpu_input_at(const float *arena, const gpu_step *s, int n, int c, int y, int x)
{
    int k = 0;
    while (k + 1 < s->nsrc && c >= s->src[k].t.c) {
        c -= s->src[k].t.c;
        k++;
    }
    const gpu_source *src = &s->src[k];
    if (src->kind == READ_UP)
        return gpu_bilinear_at(arena, src->t, n, c, s->in_h, s->in_w, y, x);
    if (src->kind == READ_POOL)
        return gpu_pool_at(arena, src->t, n, c, y, x);
    return arena[src->t.off + (size_t)n * src->t.image + ((size_t)c * src->t.h + y) * src->t.w + x];
}

/* The input tap (ky, kx) of channel c for output (y, x): zero padding
 * (dilation) around the input. */
GPU_HD float gpu_tap_value(const float *arena, const gpu_step *s, int n, int c, int ky, int kx,
                           int y, int x)
{
    const int d = s->dilation;
    const int iy = y * s->stride + (ky - 1) * d, ix = x * s->stride + (kx - 1) * d;
    if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w)
        return 0.0f;
    return gpu_input_at(arena, s, n, c, iy, ix);
}

/* Element i of the column matrix of output rows [r0, r0 + rows) for every
 * image: [batch][9 cin][rows * w], row ci*9 + ky*3 + kx (the weights' order). */
GPU_HD float gpu_im2col_value(const float *arena, const gpu_step *s, int r0, int rows, size_t i)
{
    const size_t cols = (size_t)rows * s->out.w, per_image = (size_t)9 * s->cin * cols;
    const int n = (int)(i / per_image);
    const size_t r = (i % per_image) / cols, col = i % cols;
    const int c = (int)(r / 9), ky = (int)(r % 9) / 3, kx = (int)(r % 3);
    return gpu_tap_value(arena, s, n, c, ky, kx, r0 + (int)(col / s->out.w),
                         (int)(col % s->out.w));
}

/* act(acc) + residual for output (n, c, y, x), as every kernel of the
 * engine finishes (acc holds the bias already). */
GPU_HD float gpu_finish(float acc, const gpu_step *s, const float *arena, int n, int c, int y,
                        int x)
{
    if (s->relu)
        acc = acc > 0.0f ? acc : 0.0f;
    if (s->has_residual)
        acc += arena[s->residual.off + (size_t)n * s->residual.image +
                     ((size_t)c * s->residual.h + y) * s->residual.w + x];
    return acc;
}

/* The bias of output channel c (0 for none). */
GPU_HD float gpu_bias(const gpu_step *s, const float *weights, int c)
{
    return s->bias_off == GPU_NO_BIAS ? 0.0f : weights[s->bias_off + c];
}

/* The GEMM's element i of output rows [r0, r0 + rows), [batch][cout][rows * w]:
 * its place in the arena, and its (n, c, y, x). */
GPU_HD size_t gpu_gemm_out_index(const gpu_step *s, int r0, int rows, size_t i, int *n, int *c,
                                 int *y, int *x)
{
    const size_t cols = (size_t)rows * s->out.w;
    *n = (int)(i / ((size_t)s->cout * cols));
    *c = (int)(i / cols % s->cout);
    *y = r0 + (int)(i % cols / s->out.w), *x = (int)(i % s->out.w);
    return s->out.off + (size_t)*n * s->out.image + ((size_t)*c * s->out.h + *y) * s->out.w + *x;
}

/* The output element i of a direct convolution, [batch][cout][h][w]:
 * bias + the taps in the reference kernel's order (ci, ky, kx). */
GPU_HD float gpu_direct_value(const float *arena, const float *weights, const gpu_step *s,
                              size_t i)
{
    const size_t hw = (size_t)s->out.h * s->out.w;
    const int n = (int)(i / ((size_t)s->cout * hw)), c = (int)(i / hw % s->cout);
    const int y = (int)(i % hw / s->out.w), x = (int)(i % s->out.w);
    const float *k = weights + s->weight_off + (size_t)c * s->cin * 9;
    float acc = gpu_bias(s, weights, c);
    for (int ci = 0; ci < s->cin; ci++)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++)
                acc += k[ci * 9 + ky * 3 + kx] * gpu_tap_value(arena, s, n, ci, ky, kx, y, x);
    return gpu_finish(acc, s, arena, n, c, y, x);
}

/* The fuse's output element i, [batch][cout][h][w]: bias + the inputs'
 * planes in order (kernels/conv1x1.c). */
GPU_HD float gpu_conv1x1_value(const float *arena, const float *weights, const gpu_step *s,
                               size_t i)
{
    const size_t hw = (size_t)s->out.h * s->out.w;
    const int n = (int)(i / ((size_t)s->cout * hw)), c = (int)(i / hw % s->cout);
    const int y = (int)(i % hw / s->out.w), x = (int)(i % s->out.w);
    float acc = gpu_bias(s, weights, c);
    for (int ci = 0; ci < s->cin; ci++)
        acc += weights[s->weight_off + (size_t)c * s->cin + ci] * gpu_input_at(arena, s, n, ci, y, x);
    return acc;
}

/* Element i of a whole-tensor resize or pool step's output [batch][c][h][w]. */
GPU_HD float gpu_resample_value(const float *arena, const gpu_step *s, size_t i)
{
    const size_t hw = (size_t)s->out.h * s->out.w;
    const int n = (int)(i / ((size_t)s->out.c * hw)), c = (int)(i / hw % s->out.c);
    const int y = (int)(i % hw / s->out.w), x = (int)(i % s->out.w);
    if (s->kind == STEP_RESIZE)
        return gpu_bilinear_at(arena, s->src[0].t, n, c, s->out.h, s->out.w, y, x);
    return gpu_pool_at(arena, s->src[0].t, n, c, y, x);
}

/* Where element i of a step's output [batch][c][h][w] goes in the arena. */
GPU_HD size_t gpu_out_index(const gpu_tensor *t, size_t i)
{
    const size_t chw = (size_t)t->c * t->h * t->w;
    return t->off + i / chw * t->image + i % chw;
}

GPU_HD float gpu_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

#endif
