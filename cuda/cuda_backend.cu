/* cuda_backend.cu - the CUDA backend (backend.h): a graph's GPU plan
 * (gpu_plan.h) run on an NVIDIA GPU. All the arithmetic and indexing is in
 * gpu_bodies.h, which the tests run on the CPU (gpu_emulate.c); this file
 * is the glue that cannot run there: memory, the weights' upload, one
 * kernel launch per element body, cuBLAS for the matrix products, and the
 * whole run captured once as a CUDA graph and replayed.
 *
 * Memory per (graph, batch): one device arena for every tensor, one im2col
 * workspace, the weights (uploaded once per context: every input size of a
 * model lists them in the same order), pinned host buffers for the input
 * and the outputs. Nothing is allocated per layer or per run. Float32
 * throughout; the fast mode lets cuBLAS use TF32 tensor cores. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend.h"
#include "error.h"
}
#include "gpu_bodies.h" /* C linkage for the plan's functions: gpu_plan.h */

namespace {

constexpr unsigned THREADS = 256;
constexpr size_t MAX_BLOCKS = (size_t)1 << 20, CUBLAS_WORKSPACE_BYTES = (size_t)32 << 20;

/* The im2col workspace a step may take: 256 MB of floats. */
constexpr size_t WORKSPACE_BUDGET_FLOATS = (size_t)64 << 20;

struct cuda_backend {
    backend base;
    int gpu, fast;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_workspace;
    gpu_plan plan;             /* valid when plan.steps != NULL */
    float *arena, *workspace;  /* device */
    float *weights;            /* device, uploaded once */
    size_t weight_floats;
    float *host_in, *host_out; /* pinned */
    cudaGraphExec_t graph;     /* the captured run, or NULL */
};

unsigned blocks_for(size_t n)
{
    const size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? (b ? b : 1) : MAX_BLOCKS);
}

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void im2col_kernel(const float *arena, float *col, gpu_step s, int r0, int rows,
                              size_t n)
{
    GRID_STRIDE(i, n)
    col[i] = gpu_im2col_value(arena, &s, r0, rows, i);
}

__global__ void finish_kernel(float *arena, const float *weights, gpu_step s, int r0, int rows,
                              size_t n)
{
    GRID_STRIDE(i, n)
    {
        int b, c, y, x;
        const size_t at = gpu_gemm_out_index(&s, r0, rows, i, &b, &c, &y, &x);
        arena[at] = gpu_finish(arena[at] + gpu_bias(&s, weights, c), &s, arena, b, c, y, x);
    }
}

__global__ void direct_kernel(float *arena, const float *weights, gpu_step s, size_t n)
{
    GRID_STRIDE(i, n)
    arena[gpu_out_index(&s.out, i)] = gpu_direct_value(arena, weights, &s, i);
}

__global__ void conv1x1_kernel(float *arena, const float *weights, gpu_step s, size_t n)
{
    GRID_STRIDE(i, n)
    arena[gpu_out_index(&s.out, i)] = gpu_conv1x1_value(arena, weights, &s, i);
}

__global__ void resample_kernel(float *arena, gpu_step s, size_t n)
{
    GRID_STRIDE(i, n)
    arena[gpu_out_index(&s.out, i)] = gpu_resample_value(arena, &s, i);
}

__global__ void sigmoid_kernel(float *x, size_t n)
{
    GRID_STRIDE(i, n)
    x[i] = gpu_sigmoid(x[i]);
}

int cuda_failed(cudaError_t e, const char *what, u2net_error *err)
{
    if (e == cudaSuccess)
        return 0;
    set_error(err, e == cudaErrorMemoryAllocation ? U2NET_ENOMEM : U2NET_EDEVICE, "CUDA: %s: %s",
              what, cudaGetErrorString(e));
    return 1;
}

int cublas_failed(cublasStatus_t st, const char *what, u2net_error *err)
{
    if (st == CUBLAS_STATUS_SUCCESS)
        return 0;
    set_error(err, st == CUBLAS_STATUS_ALLOC_FAILED ? U2NET_ENOMEM : U2NET_EDEVICE,
              "cuBLAS: %s: status %d", what, (int)st);
    return 1;
}

/* A GEMM step by chunks of output rows: the column matrix of every image,
 * one strided-batched product (an image a batch entry; row-major C = A B as
 * column-major C^T = B^T A^T), the epilogue. */
int enqueue_gemm(cuda_backend *c, const gpu_step *s, u2net_error *err)
{
    const int batch = c->plan.batch, k = 9 * s->cin;
    const size_t plane = (size_t)s->out.h * s->out.w;
    const float one = 1.0f, zero = 0.0f;
    for (int r0 = 0; r0 < s->out.h; r0 += s->chunk_rows) {
        const int rows = r0 + s->chunk_rows < s->out.h ? s->chunk_rows : s->out.h - r0;
        const size_t cols = (size_t)rows * s->out.w, per_image = (size_t)k * cols;
        im2col_kernel<<<blocks_for(per_image * batch), THREADS, 0, c->stream>>>(
            c->arena, c->workspace, *s, r0, rows, per_image * batch);
        float *out = c->arena + s->out.off + (size_t)r0 * s->out.w;
        if (cublas_failed(cublasSgemmStridedBatched(
                              c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)cols, s->cout, k, &one,
                              c->workspace, (int)cols, (long long)per_image,
                              c->weights + s->weight_off, k, 0, &zero, out, (int)plane,
                              (long long)s->out.image, batch),
                          "matrix product", err))
            return -1;
        const size_t n = (size_t)batch * s->cout * cols;
        finish_kernel<<<blocks_for(n), THREADS, 0, c->stream>>>(c->arena, c->weights, *s, r0, rows,
                                                                 n);
    }
    return 0;
}

/* Every step of the plan, in order, on the stream; and the input's and
 * outputs' copies around them. */
int enqueue_run(cuda_backend *c, u2net_error *err)
{
    const gpu_plan *p = &c->plan;
    if (cuda_failed(cudaMemcpyAsync(c->arena + p->input.off, c->host_in,
                                    sizeof(float) * p->input.image * p->batch,
                                    cudaMemcpyHostToDevice, c->stream),
                    "copying the input", err))
        return -1;
    for (int i = 0; i < p->n_steps; i++) {
        const gpu_step *s = &p->steps[i];
        const size_t n = (size_t)p->batch * s->out.c * s->out.h * s->out.w;
        switch (s->kind) {
        case STEP_CONV_GEMM:
            if (enqueue_gemm(c, s, err) != 0)
                return -1;
            break;
        case STEP_CONV_DIRECT:
            direct_kernel<<<blocks_for(n), THREADS, 0, c->stream>>>(c->arena, c->weights, *s, n);
            break;
        case STEP_CONV1X1:
            conv1x1_kernel<<<blocks_for(n), THREADS, 0, c->stream>>>(c->arena, c->weights, *s, n);
            break;
        case STEP_POOL:
        case STEP_RESIZE:
            resample_kernel<<<blocks_for(n), THREADS, 0, c->stream>>>(c->arena, *s, n);
            break;
        case STEP_SIGMOID:
            sigmoid_kernel<<<blocks_for(s->count), THREADS, 0, c->stream>>>(
                c->arena + s->out.off, s->count);
            break;
        }
        if (cuda_failed(cudaGetLastError(), "launching a kernel", err))
            return -1;
    }
    return cuda_failed(cudaMemcpyAsync(c->host_out, c->arena + p->outputs.off,
                                       sizeof(float) * p->outputs.image * p->batch,
                                       cudaMemcpyDeviceToHost, c->stream),
                       "copying the outputs", err);
}

void free_run_memory(cuda_backend *c)
{
    if (c->graph)
        cudaGraphExecDestroy(c->graph);
    cudaFree(c->arena);
    cudaFree(c->workspace);
    cudaFreeHost(c->host_in);
    cudaFreeHost(c->host_out);
    c->graph = NULL;
    c->arena = c->workspace = c->host_in = c->host_out = NULL;
    gpu_plan_free(&c->plan);
}

/* The weights the plan lists, converted to float32 and uploaded, unless
 * they are there already. */
int upload_weights(cuda_backend *c, u2net_error *err)
{
    const gpu_plan *p = &c->plan;
    if (c->weights && c->weight_floats == p->weight_floats)
        return 0;
    cudaFree(c->weights);
    c->weights = NULL;
    float *host = NULL;
    if (cuda_failed(cudaMallocHost((void **)&host, sizeof(float) * (p->weight_floats + 1)),
                    "pinned memory for the weights", err))
        return -1;
    gpu_plan_weights(p, host);
    int rc = cuda_failed(cudaMalloc((void **)&c->weights, sizeof(float) * (p->weight_floats + 1)),
                         "device memory for the weights", err) ||
             cuda_failed(cudaMemcpy(c->weights, host, sizeof(float) * p->weight_floats,
                                    cudaMemcpyHostToDevice),
                         "uploading the weights", err);
    cudaFreeHost(host);
    if (rc) {
        cudaFree(c->weights);
        c->weights = NULL;
        return -1;
    }
    c->weight_floats = p->weight_floats;
    return 0;
}

int cuda_prepare(backend *b, const graph *g, int batch, u2net_error *err)
{
    cuda_backend *c = (cuda_backend *)b;
    free_run_memory(c);
    if (cuda_failed(cudaSetDevice(c->gpu), "selecting the GPU", err))
        return U2NET_EDEVICE;
    int rc = gpu_plan_build(&c->plan, g, batch, WORKSPACE_BUDGET_FLOATS, err);
    if (rc)
        return rc;
    const gpu_plan *p = &c->plan;
    if (upload_weights(c, err) != 0 ||
        cuda_failed(cudaMalloc((void **)&c->arena, sizeof(float) * (p->arena_floats + 1)),
                    "device memory for the activations", err) ||
        cuda_failed(cudaMalloc((void **)&c->workspace, sizeof(float) * (p->workspace_floats + 1)),
                    "device memory for the workspace", err) ||
        cuda_failed(cudaMallocHost((void **)&c->host_in, sizeof(float) * p->input.image * batch),
                    "pinned memory for the input", err) ||
        cuda_failed(cudaMallocHost((void **)&c->host_out,
                                   sizeof(float) * p->outputs.image * batch),
                    "pinned memory for the outputs", err)) {
        free_run_memory(c);
        return err ? err->code : U2NET_EDEVICE;
    }
    /* NaN everywhere to begin with (all bits set), so that an element no
     * kernel writes shows in every comparison instead of passing as stale
     * data */
    if (cuda_failed(cudaMemset(c->arena, 0xff, sizeof(float) * p->arena_floats),
                    "poisoning the activations", err)) {
        free_run_memory(c);
        return err ? err->code : U2NET_EDEVICE;
    }
    memset(c->host_out, 0xff, sizeof(float) * p->outputs.image * batch);
    /* the run, captured once */
    cudaGraph_t captured = NULL;
    if (cuda_failed(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal),
                    "capturing the run", err)) {
        free_run_memory(c);
        return err ? err->code : U2NET_EDEVICE;
    }
    rc = enqueue_run(c, err);
    const cudaError_t end = cudaStreamEndCapture(c->stream, &captured);
    if (rc == 0 && !cuda_failed(end, "capturing the run", err) &&
        !cuda_failed(cudaGraphInstantiate(&c->graph, captured, 0), "instantiating the run", err)) {
        cudaGraphDestroy(captured);
        return 0;
    }
    if (captured)
        cudaGraphDestroy(captured);
    free_run_memory(c);
    return err && err->code ? err->code : U2NET_EDEVICE;
}

int cuda_run(backend *b, const float *input, u2net_error *err)
{
    cuda_backend *c = (cuda_backend *)b;
    const gpu_plan *p = &c->plan;
    if (cancel_requested(b->cancel)) {
        set_error(err, U2NET_ECANCELED, "the run was cancelled");
        return U2NET_ECANCELED;
    }
    memcpy(c->host_in, input, sizeof(float) * p->input.image * p->batch);
    if (cuda_failed(cudaSetDevice(c->gpu), "selecting the GPU", err) ||
        cuda_failed(cudaGraphLaunch(c->graph, c->stream), "running", err) ||
        cuda_failed(cudaStreamSynchronize(c->stream), "running", err))
        return err ? err->code : U2NET_EDEVICE;
    return 0;
}

const float *cuda_output(const backend *b, int i, int k)
{
    const cuda_backend *c = (const cuda_backend *)b;
    const gpu_plan *p = &c->plan;
    return c->host_out + (size_t)i * p->outputs.image + (size_t)k * p->h * p->w;
}

size_t cuda_activation_bytes(const backend *b)
{
    const cuda_backend *c = (const cuda_backend *)b;
    return sizeof(float) * (c->plan.arena_floats + c->plan.workspace_floats);
}

void cuda_destroy(backend *b)
{
    cuda_backend *c = (cuda_backend *)b;
    if (!c)
        return;
    cudaSetDevice(c->gpu);
    free_run_memory(c);
    cudaFree(c->weights);
    cudaFree(c->blas_workspace);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

const backend_ops cuda_ops = {"cuda", cuda_prepare, cuda_run, cuda_output, cuda_activation_bytes,
                              cuda_destroy};

} // namespace

extern "C" backend *cuda_backend_new(int gpu, int fast, u2net_error *err)
{
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        set_error(err, U2NET_EDEVICE, "no usable CUDA GPU: %s",
                  e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return NULL;
    }
    if (gpu < 0 || gpu >= count) {
        set_error(err, U2NET_EDEVICE, "no CUDA GPU %d: this machine has %d", gpu, count);
        return NULL;
    }
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) {
        set_error(err, U2NET_ENOMEM, "out of memory creating a context");
        return NULL;
    }
    c->base.ops = &cuda_ops;
    c->gpu = gpu, c->fast = fast;
    if (cuda_failed(cudaSetDevice(gpu), "selecting the GPU", err) ||
        cuda_failed(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
                    "creating a stream", err) ||
        cublas_failed(cublasCreate(&c->blas), "creating a handle", err) ||
        cublas_failed(cublasSetStream(c->blas, c->stream), "setting the stream", err) ||
        /* a workspace of its own, so that cuBLAS allocates nothing while
         * the run is captured */
        cuda_failed(cudaMalloc(&c->blas_workspace, CUBLAS_WORKSPACE_BYTES),
                    "device memory for cuBLAS", err) ||
        cublas_failed(cublasSetWorkspace(c->blas, c->blas_workspace, CUBLAS_WORKSPACE_BYTES),
                      "setting its workspace", err) ||
        cublas_failed(cublasSetMathMode(c->blas, fast ? CUBLAS_TF32_TENSOR_OP_MATH
                                                      : CUBLAS_DEFAULT_MATH),
                      "setting the math mode", err)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    return &c->base;
}
