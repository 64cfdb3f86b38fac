/* gpu_emulate.c - a GPU plan (gpu_plan.h) run on the CPU: the CUDA
 * backend's element bodies (gpu_bodies.h) over the index spaces its
 * kernels launch, and a CPU matrix product where it calls cuBLAS, so its
 * memory plan, indexing and arithmetic are checked where no GPU is
 * (tests/test_backends.c holds this to the plain forward pass). What it
 * cannot check is what runs only on a GPU: the launches, streams, graph
 * capture and cuBLAS itself (tests/gpu/run.sh does). Test code: not in the
 * library. */
#include <string.h>

#include "gpu_bodies.h"
#include "gpu_emulate.h"
#include "kernels.h"

/* A GEMM step by chunks of output rows: the column matrix of every image,
 * one product per image into its output rows, then the epilogue. */
static void run_gemm(const gpu_step *s, int batch, const float *weights, float *arena, float *col)
{
    const int k = 9 * s->cin;
    const size_t plane = (size_t)s->out.h * s->out.w;
    for (int r0 = 0; r0 < s->out.h; r0 += s->chunk_rows) {
        const int rows = r0 + s->chunk_rows < s->out.h ? s->chunk_rows : s->out.h - r0;
        const size_t cols = (size_t)rows * s->out.w, per_image = (size_t)k * cols;
        for (size_t i = 0; i < per_image * batch; i++)
            col[i] = gpu_im2col_value(arena, s, r0, rows, i);
        for (int n = 0; n < batch; n++) {
            /* rows [r0, r0 + rows) of every output plane of image n */
            float *c = arena + s->out.off + (size_t)n * s->out.image + (size_t)r0 * s->out.w;
            for (int co = 0; co < s->cout; co++)
                memset(c + co * plane, 0, sizeof(float) * cols);
            gemm_accumulate(s->cout, (int)cols, k, weights + s->weight_off, k,
                            col + (size_t)n * per_image, (int)cols, c, (int)plane);
        }
        for (size_t i = 0; i < (size_t)batch * s->cout * cols; i++) {
            int n, c, y, x;
            const size_t at = gpu_gemm_out_index(s, r0, rows, i, &n, &c, &y, &x);
            arena[at] = gpu_finish(arena[at] + gpu_bias(s, weights, c), s, arena, n, c, y, x);
        }
    }
}

void gpu_emulate_run(const gpu_plan *p, const float *weights, float *arena, float *workspace,
                     const float *input)
{
    const gpu_tensor *in = &p->input;
    memcpy(arena + in->off, input, sizeof(float) * in->image * p->batch);
    for (int i = 0; i < p->n_steps; i++) {
        const gpu_step *s = &p->steps[i];
        const size_t n_out = (size_t)p->batch * s->out.c * s->out.h * s->out.w;
        switch (s->kind) {
        case STEP_CONV_GEMM:
            run_gemm(s, p->batch, weights, arena, workspace);
            break;
        case STEP_CONV_DIRECT:
            for (size_t e = 0; e < n_out; e++)
                arena[gpu_out_index(&s->out, e)] = gpu_direct_value(arena, weights, s, e);
            break;
        case STEP_CONV1X1:
            for (size_t e = 0; e < n_out; e++)
                arena[gpu_out_index(&s->out, e)] = gpu_conv1x1_value(arena, weights, s, e);
            break;
        case STEP_POOL:
        case STEP_RESIZE:
            for (size_t e = 0; e < n_out; e++)
                arena[gpu_out_index(&s->out, e)] = gpu_resample_value(arena, s, e);
            break;
        case STEP_SIGMOID:
            for (size_t e = 0; e < s->count; e++)
                arena[s->out.off + e] = gpu_sigmoid(arena[s->out.off + e]);
            break;
        }
    }
}
