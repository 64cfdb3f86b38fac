/* gpu_plan.c - the CUDA backend's schedule of a graph (gpu_plan.h). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gpu_plan.h"
#include "kernels.h"
#include "placement.h"

/* A convolution with at most this many input or output channels runs
 * directly: the column matrix of the stem (3 -> 64) or of a side output
 * (cin -> 1) would cost more to build than the product saves. */
enum { DIRECT_MAX_CHANNELS = 4 };

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

void gpu_plan_free(gpu_plan *p)
{
    free(p->steps);
    free(p->weights);
    memset(p, 0, sizeof *p);
}

/* The device offset of conv's weights, listing them the first time. */
static const gpu_weights *weights_of(gpu_plan *p, const conv_params *conv)
{
    for (int i = 0; i < p->n_weights; i++)
        if (p->weights[i].conv == conv)
            return &p->weights[i];
    gpu_weights *w = &p->weights[p->n_weights++];
    w->conv = conv;
    w->weight_off = (long)p->weight_floats;
    p->weight_floats += round16((size_t)conv->cout * conv->cin * conv->k * conv->k);
    w->bias_off = (long)p->weight_floats;
    p->weight_floats += round16((size_t)conv->cout);
    return w;
}

int gpu_plan_build(gpu_plan *p, const graph *g, int batch, size_t workspace_budget,
                   u2net_error *err)
{
    memset(p, 0, sizeof *p);
    const graph_tensor *in = &g->tensors[g->input];
    p->batch = batch, p->h = in->h, p->w = in->w, p->n_outputs = g->n_outputs;
    const int nt = g->n_tensors, n_steps = g->n_nodes + 1;
    placed_buffer *bufs = calloc((size_t)nt + 1, sizeof *bufs);
    int *output_of = malloc(sizeof(int) * (size_t)nt);
    p->steps = calloc((size_t)n_steps, sizeof *p->steps);
    p->weights = calloc((size_t)g->n_nodes + 1, sizeof *p->weights);
    if (!bufs || !output_of || !p->steps || !p->weights) {
        free(bufs);
        free(output_of);
        gpu_plan_free(p);
        set_error(err, U2NET_ENOMEM, "out of memory planning a GPU run");
        return U2NET_ENOMEM;
    }
    /* buffers: one per tensor, [batch, c, h, w], alive from its producer to
     * its last reader; the input from the start; the outputs (buffer nt,
     * one block) from the first output made to the end */
    for (int t = 0; t < nt; t++)
        output_of[t] = -1, bufs[t].first = -1, bufs[t].last = -1;
    for (int k = 0; k < g->n_outputs; k++)
        output_of[g->outputs[k]] = k;
    placed_buffer *block = &bufs[nt];
    block->floats = round16((size_t)batch * g->n_outputs * in->h * in->w);
    block->first = n_steps, block->last = n_steps;
    bufs[g->input].first = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (output_of[n->out] >= 0)
            block->first = i < block->first ? i : block->first;
        else
            bufs[n->out].first = i;
        for (int t = 0; t < nt; t++)
            if (graph_node_reads(n, t) && output_of[t] < 0)
                bufs[t].last = i;
    }
    for (int t = 0; t < nt; t++) {
        const graph_tensor *gt = &g->tensors[t];
        if (output_of[t] >= 0 || bufs[t].first < 0)
            continue;
        bufs[t].floats = round16((size_t)batch * gt->c * gt->h * gt->w);
        if (bufs[t].last < bufs[t].first)
            bufs[t].last = bufs[t].first;
    }
    p->arena_floats = place_by_lifetime(bufs, nt + 1);
    if (p->arena_floats == (size_t)-1) {
        free(bufs);
        free(output_of);
        gpu_plan_free(p);
        set_error(err, U2NET_ENOMEM, "out of memory planning a GPU run");
        return U2NET_ENOMEM;
    }
    /* tensor t's place */
#define TENSOR(t)                                                                            \
    (output_of[t] >= 0                                                                       \
         ? (gpu_tensor){block->offset + (size_t)output_of[t] * in->h * in->w,                 \
                        (size_t)g->n_outputs * in->h * in->w, g->tensors[t].c,               \
                        g->tensors[t].h, g->tensors[t].w}                                    \
         : (gpu_tensor){bufs[t].offset,                                                     \
                        (size_t)g->tensors[t].c * g->tensors[t].h * g->tensors[t].w,         \
                        g->tensors[t].c, g->tensors[t].h, g->tensors[t].w})
    p->input = TENSOR(g->input);
    p->outputs = (gpu_tensor){block->offset, (size_t)g->n_outputs * in->h * in->w,
                              g->n_outputs, in->h, in->w};
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        gpu_step *s = &p->steps[p->n_steps++];
        s->nsrc = n->n_in;
        s->cin = 0;
        for (int k = 0; k < n->n_in; k++) {
            s->src[k].kind = n->in[k].kind;
            s->src[k].t = TENSOR(n->in[k].tensor);
            s->cin += g->tensors[n->in[k].tensor].c;
        }
        s->in_h = n->in_h, s->in_w = n->in_w;
        s->out = TENSOR(n->out);
        s->has_residual = n->residual >= 0;
        if (s->has_residual)
            s->residual = TENSOR(n->residual);
        s->relu = n->relu;
        s->bias_off = GPU_NO_BIAS;
        switch (n->kind) {
        case NODE_CONV3X3:
        case NODE_CONV1X1: {
            const gpu_weights *w = weights_of(p, n->conv);
            s->weight_off = w->weight_off;
            s->bias_off = n->bias ? w->bias_off : GPU_NO_BIAS;
            s->cout = n->conv->cout, s->stride = n->conv->stride, s->dilation = n->conv->dilation;
            if (n->kind == NODE_CONV1X1) {
                s->kind = STEP_CONV1X1;
                break;
            }
            const int direct = s->cin <= DIRECT_MAX_CHANNELS || s->cout <= DIRECT_MAX_CHANNELS;
            s->kind = direct ? STEP_CONV_DIRECT : STEP_CONV_GEMM;
            if (!direct) {
                /* batch x [9 cin, rows x w] of the column matrix per chunk */
                const size_t per_row = (size_t)batch * 9 * s->cin * s->out.w;
                size_t rows = workspace_budget / per_row;
                rows = rows < 1 ? 1 : rows > (size_t)s->out.h ? (size_t)s->out.h : rows;
                s->chunk_rows = (int)rows;
                if (rows * per_row > p->workspace_floats)
                    p->workspace_floats = rows * per_row;
            }
            break;
        }
        case NODE_POOL:
            s->kind = STEP_POOL;
            break;
        case NODE_RESIZE:
            s->kind = STEP_RESIZE;
            break;
        }
    }
#undef TENSOR
    gpu_step *sig = &p->steps[p->n_steps++];
    sig->kind = STEP_SIGMOID;
    sig->out = p->outputs;
    sig->count = (size_t)batch * g->n_outputs * in->h * in->w;
    free(bufs);
    free(output_of);
    return 0;
}

void gpu_plan_weights(const gpu_plan *p, float *dst)
{
    for (int i = 0; i < p->n_weights; i++) {
        const conv_params *c = p->weights[i].conv;
        const size_t count = (size_t)c->cout * c->cin * c->k * c->k;
        if (c->weight_f16)
            half_to_float_n(KERNEL_ISA_PORTABLE, c->weight_f16, dst + p->weights[i].weight_off,
                            count, 1);
        else
            memcpy(dst + p->weights[i].weight_off, c->weight, sizeof(float) * count);
        memcpy(dst + p->weights[i].bias_off, c->bias, sizeof(float) * c->cout);
    }
}
