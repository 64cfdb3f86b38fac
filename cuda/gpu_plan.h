/* gpu_plan.h - the CUDA backend's schedule of a graph (graph/graph.h),
 * in plain C so that the CPU can build and check it: every tensor whole,
 * batch-major, in one device arena placed by lifetime; one step per graph
 * node, run in order:
 *   STEP_CONV_GEMM    a 3x3 convolution as im2col (the column matrix built
 *                     straight from the node's inputs, resizing or pooling
 *                     them on the fly, so a concatenation or an upsampled
 *                     input is never stored) + a matrix product per image +
 *                     an epilogue adding bias, ReLU and residual; by chunks
 *                     of output rows so that the column matrix fits the
 *                     workspace
 *   STEP_CONV_DIRECT  a 3x3 convolution computed directly, one output value
 *                     a thread: few input or output channels (the stem
 *                     3 -> 64, the side outputs cin -> 1)
 *   STEP_CONV1X1      the fuse, over its inputs' planes
 *   STEP_POOL, STEP_RESIZE  whole tensors
 *   STEP_SIGMOID      over the output block, last
 * The output block holds every image's outputs [batch, n_outputs, h, w], so
 * one copy brings them back. gpu_bodies.h has what each step computes for
 * one element; cuda_backend.cu launches it on the GPU, gpu_emulate.c (for
 * the tests) runs it on the CPU. */
#ifndef U2NET_GPU_PLAN_H
#define U2NET_GPU_PLAN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" { /* cuda_backend.cu is C++ */
#endif

#include "graph.h"

/* A tensor of the arena: image n, channel c, row y, column x at
 * off + n * image + c * h * w + y * w + x (floats). */
typedef struct {
    size_t off, image;
    int c, h, w;
} gpu_tensor;

/* An input of a convolution, read at the step's input size. */
typedef struct {
    read_kind kind;
    gpu_tensor t;
} gpu_source;

typedef enum {
    STEP_CONV_GEMM,
    STEP_CONV_DIRECT,
    STEP_CONV1X1,
    STEP_POOL,
    STEP_RESIZE,
    STEP_SIGMOID
} gpu_step_kind;

enum { GPU_NO_BIAS = -1 };

typedef struct {
    gpu_step_kind kind;
    gpu_source src[GRAPH_MAX_INPUTS]; /* the convolutions: cat(src); the others: src[0] */
    int nsrc;
    int cin, in_h, in_w;              /* the input: cat(src) at this size */
    gpu_tensor out;
    gpu_tensor residual;              /* when has_residual */
    int has_residual, relu;
    long weight_off, bias_off;        /* floats into the weights; bias GPU_NO_BIAS: none */
    int cout, stride, dilation;
    int chunk_rows;                   /* GEMM: output rows per im2col chunk */
    size_t count;                     /* SIGMOID: floats of the output block */
} gpu_step;

/* A convolution's weights and bias, where they go in the device weights. */
typedef struct {
    const conv_params *conv;
    long weight_off, bias_off;
} gpu_weights;

typedef struct {
    int batch, h, w, n_outputs;
    gpu_step *steps;
    int n_steps;
    gpu_tensor input;                 /* [batch, in_channels, h, w], in the arena */
    gpu_tensor outputs;               /* [batch, n_outputs, h, w] */
    size_t arena_floats;
    size_t workspace_floats;          /* the largest im2col chunk, every image of it */
    gpu_weights *weights;
    int n_weights;
    size_t weight_floats;
} gpu_plan;

/* The plan of g for batch images, its im2col chunks at most
 * workspace_budget floats (at least one output row of every image). */
int gpu_plan_build(gpu_plan *p, const graph *g, int batch, size_t workspace_budget,
                   u2net_error *err);
void gpu_plan_free(gpu_plan *p);

/* The weights the plan lists, as float32 into dst [weight_floats] (a
 * float16 model's converted), for uploading. */
void gpu_plan_weights(const gpu_plan *p, float *dst);

#ifdef __cplusplus
}
#endif

#endif
