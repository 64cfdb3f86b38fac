/* execute.c - the CPU backend: plans a graph (plan.c) into one arena and
 * runs its operations in order, each pipeline band by band (bands.c) with
 * the fast kernels of kernels/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "error.h"
#include "resources.h"

typedef struct {
    backend base;
    int threads_asked;    /* base.threads: as many of them as the process can start */
    cpu_options opt;
    cpu_plan plan;        /* valid when plan.ops != NULL */
    float *arena;         /* plan.arena_floats: the stored tensors */
    float *scratch;       /* plan.scratch_floats: the convolution kernels' workspace */
    float *band;          /* plan.band_floats: a pipeline's line buffers and windows */
    float *packed;        /* plan.packed_floats: a pipeline's packed Winograd weights */
    float *staging;       /* plan.staging_floats: a pipeline's float16 weights as float32 */
    const float **planes; /* plan.max_cin: a convolution's input planes */
    int batch;            /* images a run takes, one after another */
    size_t input_floats;  /* of one image */
    float *batch_outputs; /* batch > 1: [batch][outputs.c][h][w], each image's outputs */
    const float *input;
    int packed_done[PIPE_MAX_NODES]; /* in the pipeline running: weights packed */
    int cancelled;        /* the run saw the cancellation request: the rest is skipped */
} cpu_backend;

static void free_buffers(cpu_backend *c)
{
    free(c->arena);
    free(c->scratch);
    free(c->band);
    free(c->packed);
    free(c->staging);
    free(c->planes);
    free(c->batch_outputs);
    c->arena = c->scratch = c->band = c->packed = c->staging = c->batch_outputs = NULL;
    c->planes = NULL;
}

/* n floats (at least one) on a 64-byte boundary, for the vector kernels. */
static float *aligned_floats(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) == 0 ? p : NULL;
}

static size_t outputs_floats(const cpu_plan *p)
{
    return (size_t)p->outputs.c * p->outputs.h * p->outputs.w;
}

/* What the buffers of a plan for batch images take, in bytes, and where it
 * goes (for the message when it does not fit). */
static size_t plan_bytes(const cpu_plan *p, int batch, size_t reserve, char *detail, size_t cap)
{
    const size_t f = sizeof(float);
    const size_t work = (p->scratch_floats + p->band_floats + p->packed_floats + p->staging_floats) * f;
    const size_t outs = batch > 1 ? outputs_floats(p) * batch * f : 0;
    char image[48] = "";
    if (reserve)
        snprintf(image, sizeof image, ", %.1f MB for the image", (double)reserve / (1 << 20));
    snprintf(detail, cap, "%.1f MB of activations, %.1f MB of kernel workspace%s%s",
             (double)(p->arena_floats * f) / (1 << 20), (double)work / (1 << 20),
             outs ? ", the batch's outputs" : "", image);
    return p->arena_floats * f + work + outs + ((size_t)p->max_cin + 1) * sizeof(float *) + reserve;
}

static int cpu_prepare(backend *b, const graph *g, int batch, u2net_error *err)
{
    cpu_backend *c = (cpu_backend *)b;
    cpu_plan_free(&c->plan);
    free_buffers(c);
    const int rc = cpu_plan_build(&c->plan, g, &c->opt, c->threads_asked, err);
    if (rc)
        return rc;
    const cpu_plan *p = &c->plan;
    const graph_tensor *in = &g->tensors[g->input];
    c->batch = batch;
    c->input_floats = (size_t)in->c * in->h * in->w;
    char what[64], detail[160];
    if (batch > 1)
        snprintf(what, sizeof what, "a %dx%d run of %d images", p->w, p->h, batch);
    else
        snprintf(what, sizeof what, "a %dx%d run", p->w, p->h);
    const size_t need = plan_bytes(p, batch, c->base.reserve, detail, sizeof detail);
    memory_room room;
    memory_room_now(&room);
    if (memory_room_check(&room, need, what, detail, err) != 0) {
        cpu_plan_free(&c->plan);
        return U2NET_ENOMEM;
    }
    if (batch > 1)
        c->batch_outputs = malloc(sizeof(float) * outputs_floats(p) * batch);
    c->arena = aligned_floats(p->arena_floats);
    c->scratch = aligned_floats(p->scratch_floats);
    c->band = aligned_floats(p->band_floats);
    c->packed = aligned_floats(p->packed_floats);
    c->staging = aligned_floats(p->staging_floats);
    c->planes = malloc(((size_t)p->max_cin + 1) * sizeof *c->planes);
    if (!c->arena || !c->scratch || !c->band || !c->packed || !c->staging || !c->planes ||
        (batch > 1 && !c->batch_outputs)) {
        set_error(err, U2NET_ENOMEM, "out of memory: %s needs %.1f MB (%s)", what,
                  (double)need / (1 << 20), detail);
        cpu_plan_free(&c->plan);
        free_buffers(c);
        return U2NET_ENOMEM;
    }
    /* the workspace was sized for threads_asked; fewer threads need less */
    c->base.threads = threads_startable(c->threads_asked, c->base.reserve);
    return 0;
}

static float *at(const cpu_backend *c, view v)
{
    if (v.buf == BUF_INPUT)
        return (float *)c->input + v.off;
    return c->arena + c->plan.bufs[v.buf].offset + v.off;
}

/* ---- Pipelines (cpu.h). A node's line buffer holds rows
 * [st->base[i], st->done[i]) of its output, channel planes lb_rows*w apart. */

static float *line_buffer(const cpu_backend *c, const pipe_node *n)
{
    return c->band + n->lb_off;
}

/* Row y of channel ch of node j's output, in its line buffer. */
static float *node_row(const cpu_backend *c, const op *o, const pipe_node *n,
                       const pipe_state *st, int j, int ch, int y)
{
    return line_buffer(c, n) + (size_t)ch * n->lb_rows * o->w + (size_t)(y - st->base[j]) * o->w;
}

/* The rows [lo, hi) of the SRC_UP and SRC_POOL sources of n, at its input
 * size, into its window: one channel a task. */
static void fill_window(const cpu_backend *c, const pipe_node *n, int lo, int hi)
{
    const source *up[PIPE_MAX_SOURCES];
    int first[PIPE_MAX_SOURCES], count = 0, total = 0;
    for (int s = 0; s < n->nsrc; s++)
        if (n->src[s].kind == SRC_UP || n->src[s].kind == SRC_POOL)
            up[count] = &n->src[s], first[count++] = total, total += n->src[s].c;
    float *win = c->band + n->win_off;
    const size_t plane = n->win_rows * n->in_w;
    #pragma omp parallel for num_threads(c->base.threads) schedule(static)
    for (int ch = 0; ch < total; ch++) {
        int s = 0;
        while (s + 1 < count && ch >= first[s + 1])
            s++;
        const view v = up[s]->v;
        const float *src = at(c, v) + (size_t)(ch - first[s]) * v.h * v.w;
        if (up[s]->kind == SRC_UP)
            resize_bilinear_rows(src, 1, v.h, v.w, win + ch * plane, n->in_h, n->in_w, lo, hi);
        else
            maxpool2x2_ceil_rows(src, 1, v.h, v.w, win + ch * plane, lo, hi);
    }
}

/* Node n's weights as float32: the model's, or staged from float16. */
static const float *weights_of(const cpu_backend *c, const pipe_node *n)
{
    return n->conv->weight_f16 ? c->staging + n->staged_off : n->conv->weight;
}

/* Whether the run is to stop (remembered, so the rest of it is skipped). */
static int stopping(cpu_backend *c)
{
    if (!c->cancelled && cancel_requested(c->base.cancel))
        c->cancelled = 1;
    return c->cancelled;
}

/* Output rows [p0, q0) of the call a covers (its rows [p, q)). */
static void run_rows(cpu_backend *c, const pipe_node *n, int j, conv_kernel kernel,
                     const conv3x3_args *call, int p, int p0, int q0)
{
    conv3x3_args a = *call;
    a.row0 += (p0 - p) * a.stride;
    a.h = q0 - p0;
    a.out += (size_t)(p0 - p) * a.w;
    if (a.residual)
        a.residual += (size_t)(p0 - p) * a.w;
    switch (kernel) {
    case CONV_WINOGRAD: {
        float *packed = n->packed ? c->packed + n->packed_off : NULL;
        if (packed && !c->packed_done[j]) {
            conv3x3_winograd_pack(c->opt.isa, a.weight, a.cin, a.cout, packed, c->base.threads);
            c->packed_done[j] = 1;
        }
        conv3x3_winograd(c->opt.isa, &a, packed, c->scratch, c->base.threads);
        break;
    }
    case CONV_DIRECT:
        conv3x3_direct(c->opt.isa, &a, c->base.threads);
        break;
    case CONV_IM2COL:
        conv3x3_im2col(&a, c->scratch, c->base.threads);
        break;
    }
}

/* Node j computes its output rows [p, q): one kernel call, or calls of
 * fewer rows (a multiple of the Winograd tiles' height, so the same tiles
 * and the same bits) when it would be over opt.call_macs, looking at the
 * cancellation request before each. */
static void run_node(void *ctx, const op *o, int j, const pipe_state *st, int p, int q)
{
    cpu_backend *c = ctx;
    if (stopping(c))
        return;
    const pipe_node *nodes = &c->plan.nodes[o->first_node], *n = &nodes[j];
    const conv_params *cv = n->conv;
    const float *weight = weights_of(c, n);
    const int w = o->w, in_w = n->in_w;
    int lo, hi;
    pipe_window(n, p, q, &lo, &hi);
    if (n->win_rows)
        fill_window(c, n, lo, hi);
    /* the input planes, at row lo */
    const float **planes = c->planes;
    int k = 0, in_window = 0;
    for (int s = 0; s < n->nsrc; s++) {
        const source *src = &n->src[s];
        for (int ch = 0; ch < src->c; ch++) {
            if (src->kind == SRC_VIEW)
                planes[k++] = at(c, src->v) + (size_t)ch * src->v.h * in_w + (size_t)lo * in_w;
            else if (src->kind == SRC_NODE)
                planes[k++] = node_row(c, o, &nodes[src->node], st, src->node, ch, lo);
            else
                planes[k++] = c->band + n->win_off + (size_t)in_window++ * n->win_rows * in_w;
        }
    }
    conv3x3_args a = {
        .in = planes, .cin = cv->cin, .in_rows = hi - lo, .in_w = in_w,
        .row0 = p * cv->stride - lo, .stride = cv->stride, .h = q - p, .w = w,
        .weight = weight, .bias = n->bias ? cv->bias : NULL, .cout = cv->cout,
        .dilation = cv->dilation, .relu = n->relu};
    if (n->residual.c && n->residual.kind == SRC_VIEW) {
        a.residual = at(c, n->residual.v) + (size_t)p * w;
        a.residual_plane = (size_t)o->h * w;
    } else if (n->residual.c) {
        const pipe_node *r = &nodes[n->residual.node];
        a.residual = node_row(c, o, r, st, n->residual.node, 0, p);
        a.residual_plane = r->lb_rows * w;
    }
    if (n->direct) {
        a.out = at(c, n->out) + (size_t)p * w;
        a.out_plane = (size_t)o->h * w;
    } else {
        a.out = node_row(c, o, n, st, j, 0, p);
        a.out_plane = n->lb_rows * w;
    }
    const conv_kernel kernel = conv_kernel_for(cv, q - p, w);
    /* a dilated Winograd convolution's tiles are 4 rows of its d
     * interleaved sub-grids: 4 d image rows */
    const int unit = 4 * cv->dilation;
    const double row_macs = 9.0 * w * cv->cin * cv->cout;
    int rows = (int)(c->opt.call_macs / row_macs) / unit * unit;
    rows = rows < unit ? unit : rows;
    for (int p0 = p; p0 < q; p0 += rows) {
        if (p0 > p && stopping(c))
            return;
        run_rows(c, n, j, kernel, &a, p, p0, p0 + rows < q ? p0 + rows : q);
    }
}

/* Rows [p, q) of channel ch of node n's output from its line buffer into
 * its tensor, pooled when asked (p is even then). */
static void store_channel(const cpu_backend *c, const op *o, const pipe_node *n,
                          const pipe_state *st, int j, int ch, int p, int q)
{
    const view v = n->out;
    const float *src = node_row(c, o, n, st, j, ch, p);
    float *d = at(c, v) + (size_t)ch * v.h * v.w;
    if (n->pool_out)
        maxpool2x2_ceil_rows(src, 1, q - p, o->w, d + (size_t)(p / 2) * v.w, 0, (q - p + 1) / 2);
    else
        memcpy(d + (size_t)p * o->w, src, (size_t)(q - p) * o->w * sizeof(float));
}

/* After a band: stores, then line-buffer moves, one channel of one node a
 * task (it stores before it moves). */
static void finish_band(void *ctx, const op *o, const pipe_state *before, const band_end *e)
{
    const cpu_backend *c = ctx;
    if (c->cancelled)
        return;
    const pipe_node *nodes = &c->plan.nodes[o->first_node];
    int first[PIPE_MAX_NODES + 1]; /* items of node j: first[j] .. first[j+1]-1 */
    first[0] = 0;
    for (int j = 0; j < o->n_nodes; j++)
        first[j + 1] = first[j] + (e->to[j] > e->from[j] || e->moves[j] ? nodes[j].conv->cout : 0);
    #pragma omp parallel for num_threads(c->base.threads) schedule(static)
    for (int item = 0; item < first[o->n_nodes]; item++) {
        int j = 0;
        while (item >= first[j + 1])
            j++;
        const pipe_node *n = &nodes[j];
        const int ch = item - first[j];
        if (e->to[j] > e->from[j])
            store_channel(c, o, n, before, j, ch, e->from[j], e->to[j]);
        if (e->moves[j]) {
            float *lb = line_buffer(c, n) + (size_t)ch * n->lb_rows * o->w;
            memmove(lb, lb + (size_t)(e->keep[j] - before->base[j]) * o->w,
                    (size_t)(before->done[j] - e->keep[j]) * o->w * sizeof(float));
        }
    }
}

static void run_op(cpu_backend *c, const op *o)
{
    const int t = c->base.threads;
    switch (o->kind) {
    case OP_PIPELINE: {
        memset(c->packed_done, 0, sizeof c->packed_done);
        for (int j = 0; j < o->n_nodes; j++) {
            const pipe_node *n = &c->plan.nodes[o->first_node + j];
            if (n->conv->weight_f16)
                half_to_float_n(c->opt.isa, n->conv->weight_f16, c->staging + n->staged_off,
                                (size_t)n->conv->cout * n->conv->cin * 9, t);
        }
        const band_visitor v = {run_node, finish_band};
        pipe_walk(&c->plan, o, o->band_rows, &v, c);
        break;
    }
    case OP_CONV1X1: {
        const float *planes[GRAPH_MAX_INPUTS];
        for (int k = 0; k < o->n_in; k++)
            planes[k] = at(c, o->in[k]);
        conv1x1(planes, o->conv->cin, (size_t)o->out.h * o->out.w, o->conv->weight,
                o->conv->bias, o->conv->cout, at(c, o->out));
        break;
    }
    case OP_POOL:
        maxpool2x2_ceil(at(c, o->in[0]), o->in[0].c, o->in[0].h, o->in[0].w, at(c, o->out), t);
        break;
    case OP_RESIZE:
        resize_bilinear(at(c, o->in[0]), o->in[0].c, o->in[0].h, o->in[0].w, at(c, o->out),
                        o->out.h, o->out.w, t);
        break;
    case OP_SIGMOID:
        sigmoid_inplace(at(c, o->out), (size_t)o->out.c * o->out.h * o->out.w);
        break;
    }
}

static int cpu_run(backend *b, const float *input, u2net_error *err)
{
    cpu_backend *c = (cpu_backend *)b;
    c->cancelled = 0;
    for (int image = 0; image < c->batch; image++) {
        c->input = input + (size_t)image * c->input_floats;
        for (int i = 0; i < c->plan.n_ops && !stopping(c); i++)
            run_op(c, &c->plan.ops[i]);
        if (c->cancelled) {
            c->input = NULL;
            set_error(err, U2NET_ECANCELED, "the run was cancelled");
            return U2NET_ECANCELED;
        }
        if (c->batch > 1)
            memcpy(c->batch_outputs + (size_t)image * outputs_floats(&c->plan),
                   at(c, c->plan.outputs), sizeof(float) * outputs_floats(&c->plan));
    }
    c->input = NULL;
    return 0;
}

static const float *cpu_output(const backend *b, int i, int k)
{
    const cpu_backend *c = (const cpu_backend *)b;
    const float *block = c->batch > 1 ? c->batch_outputs + (size_t)i * outputs_floats(&c->plan)
                                      : at(c, c->plan.outputs);
    return block + (size_t)k * c->plan.outputs.h * c->plan.outputs.w;
}

static size_t cpu_activation_bytes(const backend *b)
{
    return ((const cpu_backend *)b)->plan.arena_floats * sizeof(float);
}

static void cpu_destroy(backend *b)
{
    cpu_backend *c = (cpu_backend *)b;
    if (!c)
        return;
    cpu_plan_free(&c->plan);
    free_buffers(c);
    free(c);
}

static const backend_ops cpu_ops = {"cpu", cpu_prepare, cpu_run, cpu_output, cpu_activation_bytes,
                                    cpu_destroy};

backend *cpu_backend_new(int threads, const cpu_options *o, u2net_error *err)
{
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) {
        set_error(err, U2NET_ENOMEM, "out of memory creating a context");
        return NULL;
    }
    c->base.ops = &cpu_ops;
    c->base.threads = c->threads_asked = threads;
    if (o)
        c->opt = *o;
    else
        cpu_options_default(&c->opt);
    c->opt.isa = kernel_isa_clamp(c->opt.isa);
    return &c->base;
}

kernel_isa cpu_backend_isa(const backend *b)
{
    return ((const cpu_backend *)b)->opt.isa;
}
