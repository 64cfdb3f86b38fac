/* forward.c - the plain forward pass: the graph's nodes in order, every
 * tensor stored whole, every node computed by the plain reference kernels.
 * It is the readable meaning of a graph (graph.h), what `--reference`
 * runs, and what every backend is tested against. Speed is no concern
 * here: each tensor is allocated when it is made and freed after its last
 * reader. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "graph.h"
#include "kernels.h"

typedef struct {
    const graph *g;
    float **data;     /* [n_tensors]: each tensor [c, h, w] while alive */
    int *last_use;    /* [n_tensors]: the last node reading it */
    int threads;
} forward_state;

static size_t floats_of(const graph_tensor *t)
{
    return (size_t)t->c * t->h * t->w;
}

/* Input i of node n as [c, in_h, in_w]: the tensor itself, or a new
 * resized or pooled copy (*copy set, freed by the caller). */
static const float *read_input(forward_state *f, const graph_node *n, int i, float **copy)
{
    const graph_tensor *t = &f->g->tensors[n->in[i].tensor];
    const float *src = f->data[n->in[i].tensor];
    *copy = NULL;
    if (n->in[i].kind == READ_WHOLE)
        return src;
    *copy = malloc(sizeof(float) * (size_t)t->c * n->in_h * n->in_w);
    if (!*copy)
        return NULL;
    if (n->in[i].kind == READ_UP) /* [c, h, w] -> [c, in_h, in_w] */
        resize_bilinear(src, t->c, t->h, t->w, *copy, n->in_h, n->in_w, f->threads);
    else /* [c, h, w] -> [c, (h+1)/2, (w+1)/2] = [c, in_h, in_w] */
        maxpool2x2_ceil(src, t->c, t->h, t->w, *copy, f->threads);
    return *copy;
}

/* One node: out = its operation on cat(inputs). */
static int run_node(forward_state *f, const graph_node *n, float *out)
{
    const graph *g = f->g;
    const graph_tensor *o = &g->tensors[n->out];
    float *copies[GRAPH_MAX_INPUTS] = {NULL};
    float *weights32 = NULL; /* a float16 file's weights, converted */
    /* planes [cin][in_h * in_w]: the channels of cat(inputs) in order */
    int cin = 0;
    for (int i = 0; i < n->n_in; i++)
        cin += g->tensors[n->in[i].tensor].c;
    const float **planes = malloc(sizeof *planes * (size_t)cin);
    int rc = planes ? 0 : -1;
    for (int i = 0, k = 0; i < n->n_in && rc == 0; i++) {
        const float *t = read_input(f, n, i, &copies[i]);
        if (!t) {
            rc = -1;
            break;
        }
        for (int c = 0; c < g->tensors[n->in[i].tensor].c; c++)
            planes[k++] = t + (size_t)c * n->in_h * n->in_w;
    }
    if (rc == 0) {
        switch (n->kind) {
        case NODE_CONV3X3: {
            /* weights [cout, cin, 3, 3], float32 (a float16 file's converted here) */
            const float *weight = n->conv->weight;
            if (n->conv->weight_f16) {
                const size_t count = (size_t)n->conv->cout * n->conv->cin * 9;
                if (!(weights32 = malloc(sizeof(float) * count))) {
                    rc = -1;
                    break;
                }
                half_to_float_n(KERNEL_ISA_PORTABLE, n->conv->weight_f16, weights32, count,
                                f->threads);
                weight = weights32;
            }
            /* out [cout, h, w] = act(conv3x3(cat(in) [cin, in_h, in_w]) + bias) + residual */
            const conv3x3_args a = {
                .in = planes, .cin = cin, .in_rows = n->in_h, .in_w = n->in_w, .row0 = 0,
                .stride = n->conv->stride, .h = o->h, .w = o->w,
                .weight = weight, .bias = n->bias ? n->conv->bias : NULL,
                .cout = n->conv->cout, .dilation = n->conv->dilation, .relu = n->relu,
                .residual = n->residual >= 0 ? f->data[n->residual] : NULL,
                .residual_plane = (size_t)o->h * o->w,
                .out = out, .out_plane = (size_t)o->h * o->w};
            conv3x3_ref(&a, f->threads);
            break;
        }
        case NODE_CONV1X1: /* out [cout, h, w] = conv1x1(cat(in) [cin, h, w]) + bias */
            conv1x1(planes, cin, (size_t)o->h * o->w, n->conv->weight, n->conv->bias,
                    n->conv->cout, out);
            break;
        case NODE_POOL: /* out [c, (h+1)/2, (w+1)/2] = maxpool2x2_ceil(in [c, h, w]) */
            maxpool2x2_ceil(planes[0], o->c, n->in_h, n->in_w, out, f->threads);
            break;
        case NODE_RESIZE: /* out [c, H, W] = bilinear resize of in [c, h, w] */
            resize_bilinear(planes[0], o->c, n->in_h, n->in_w, out, o->h, o->w, f->threads);
            break;
        }
    }
    for (int i = 0; i < n->n_in; i++)
        free(copies[i]);
    free(weights32);
    free(planes);
    return rc;
}

int forward_run(const graph *g, const float *input, float *outputs, int threads,
                const cancel_flag *cancel, u2net_error *err)
{
    forward_state f = {g, calloc((size_t)g->n_tensors, sizeof(float *)),
                       malloc(sizeof(int) * (size_t)g->n_tensors), threads};
    int rc = f.data && f.last_use ? 0 : U2NET_ENOMEM;
    for (int t = 0; t < g->n_tensors && rc == 0; t++)
        f.last_use[t] = graph_last_reader(g, t);
    for (int k = 0; k < g->n_outputs && rc == 0; k++)
        f.last_use[g->outputs[k]] = g->n_nodes; /* read at the end */
    if (rc == 0)
        f.data[g->input] = (float *)input;
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        if (cancel_requested(cancel)) {
            rc = U2NET_ECANCELED;
            break;
        }
        const graph_node *n = &g->nodes[i];
        float *out = malloc(sizeof(float) * floats_of(&g->tensors[n->out]));
        if (!out || run_node(&f, n, out) != 0) {
            free(out);
            rc = U2NET_ENOMEM;
            break;
        }
        f.data[n->out] = out;
        for (int t = 0; t < g->n_tensors; t++)
            if (t != g->input && f.last_use[t] == i && graph_node_reads(n, t)) {
                free(f.data[t]);
                f.data[t] = NULL;
            }
    }
    /* outputs [n_outputs, h, w]: the sigmoid of each output tensor */
    for (int k = 0; k < g->n_outputs && rc == 0; k++) {
        const graph_tensor *t = &g->tensors[g->outputs[k]];
        float *dst = outputs + (size_t)k * t->h * t->w;
        memcpy(dst, f.data[g->outputs[k]], sizeof(float) * floats_of(t));
        sigmoid_inplace(dst, floats_of(t));
    }
    if (f.data)
        for (int t = 0; t < g->n_tensors; t++)
            if (t != g->input)
                free(f.data[t]);
    free(f.data);
    free(f.last_use);
    if (rc == U2NET_ECANCELED)
        set_error(err, rc, "the run was cancelled");
    else if (rc)
        set_error(err, rc, "out of memory in the reference forward pass");
    return rc;
}
