/* context.c - a context owns the plan and memory for one run at a time and
 * executes the plan's operations in order. */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "kernels.h"

struct u2net_ctx {
    const u2net_model *model;
    int threads;
    u2net_kernels kernels;
    kernel_isa isa;   /* the fast kernels' instruction set */
    plan plan;        /* valid when plan.ops != NULL */
    float *arena;     /* plan.arena_floats: the stored tensors */
    float *scratch;   /* plan.scratch_floats: the convolution kernels' workspace */
    float *band;      /* plan.band_floats: a pipeline's line buffers and windows */
    float *packed;    /* plan.packed_floats: a pipeline's packed Winograd weights */
    const float **planes; /* plan.max_cin: a convolution's input planes */
    const float *input;
    int have_output;
};

u2net_ctx *u2net_ctx_new(const u2net_model *m, int threads, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    u2net_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        set_error(err, U2NET_ENOMEM, "out of memory creating a context");
        return NULL;
    }
    c->model = m;
    c->isa = kernel_isa_best();
#ifdef _OPENMP
    c->threads = threads > 0 ? threads : omp_get_num_procs();
#else
    c->threads = 1;
#endif
    /* The engine splits work over its own OpenMP threads and calls SGEMM on
     * tiles from each of them: OpenBLAS must not start threads of its own. */
    openblas_set_num_threads(1);
    return c;
}

void u2net_ctx_free(u2net_ctx *c)
{
    if (!c)
        return;
    plan_free(&c->plan);
    free(c->arena);
    free(c->scratch);
    free(c->band);
    free(c->packed);
    free(c->planes);
    free(c);
}

void u2net_ctx_set_kernels(u2net_ctx *c, u2net_kernels k)
{
    c->kernels = k;
    c->isa = kernel_isa_clamp(k == U2NET_KERNELS_PORTABLE ? KERNEL_ISA_PORTABLE
                              : k == U2NET_KERNELS_AVX2   ? KERNEL_ISA_AVX2
                                                          : KERNEL_ISA_AVX512);
}

const char *u2net_ctx_kernels_name(const u2net_ctx *c)
{
    return c->kernels == U2NET_KERNELS_REFERENCE ? "reference" : kernel_isa_name(c->isa);
}

size_t u2net_ctx_arena_bytes(const u2net_ctx *c) { return c->plan.arena_floats * sizeof(float); }

static void free_buffers(u2net_ctx *c)
{
    free(c->arena);
    free(c->scratch);
    free(c->band);
    free(c->packed);
    free(c->planes);
    c->arena = c->scratch = c->band = c->packed = NULL;
    c->planes = NULL;
}

/* n floats (at least one) on a 64-byte boundary, for the vector kernels. */
static float *aligned_floats(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) == 0 ? p : NULL;
}

static int replan(u2net_ctx *c, int h, int w, u2net_error *err)
{
    plan_free(&c->plan);
    free_buffers(c);
    c->have_output = 0;
    if (plan_build(&c->plan, c->model, h, w, c->threads, err) != 0)
        return -1;
    const plan *p = &c->plan;
    c->arena = aligned_floats(p->arena_floats);
    c->scratch = aligned_floats(p->scratch_floats);
    c->band = aligned_floats(p->band_floats);
    c->packed = aligned_floats(p->packed_floats);
    c->planes = malloc(((size_t)p->max_cin + 1) * sizeof *c->planes);
    if (!c->arena || !c->scratch || !c->band || !c->packed || !c->planes) {
        set_error(err, U2NET_ENOMEM, "out of memory: a %dx%d run needs %zu MB of activations",
                  h, w, p->arena_floats * sizeof(float) >> 20);
        plan_free(&c->plan);
        free_buffers(c);
        return -1;
    }
    return 0;
}

static float *at(const u2net_ctx *c, view v)
{
    if (v.buf == BUF_INPUT)
        return (float *)c->input + v.off;
    return c->arena + c->plan.bufs[v.buf].offset + v.off;
}

/* ---- Pipelines (internal.h). A node's line buffer holds rows
 * [st->base[i], st->done[i]) of its output, channel planes lb_rows*w apart. */

static float *line_buffer(const u2net_ctx *c, const node *n)
{
    return c->band + n->lb_off;
}

/* Row y of channel ch of node j's output, in its line buffer. */
static float *node_row(const u2net_ctx *c, const op *o, const node *n, const pipe_state *st,
                       int j, int ch, int y)
{
    return line_buffer(c, n) + (size_t)ch * n->lb_rows * o->w + (size_t)(y - st->base[j]) * o->w;
}

/* The rows [lo, hi) of the SRC_UP and SRC_POOL sources of n, into its
 * window: one channel a task. */
static void fill_window(const u2net_ctx *c, const op *o, const node *n, int lo, int hi)
{
    const source *up[PIPE_MAX_SOURCES];
    int first[PIPE_MAX_SOURCES], count = 0, total = 0;
    for (int s = 0; s < n->nsrc; s++)
        if (n->src[s].kind == SRC_UP || n->src[s].kind == SRC_POOL)
            up[count] = &n->src[s], first[count++] = total, total += n->src[s].c;
    float *win = c->band + n->win_off;
    const size_t plane = n->win_rows * o->w;
    #pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int ch = 0; ch < total; ch++) {
        int s = 0;
        while (s + 1 < count && ch >= first[s + 1])
            s++;
        const view v = up[s]->v;
        const float *src = at(c, v) + (size_t)(ch - first[s]) * v.h * v.w;
        if (up[s]->kind == SRC_UP)
            resize_bilinear_rows(src, 1, v.h, v.w, win + ch * plane, o->h, o->w, lo, hi);
        else
            maxpool2x2_ceil_rows(src, 1, v.h, v.w, win + ch * plane, lo, hi);
    }
}

/* Rows [p, q) of channel ch of node n's output from its line buffer into
 * its tensor, pooled when asked (p is even then). */
static void store_channel(const u2net_ctx *c, const op *o, const node *n, const pipe_state *st,
                          int j, int ch, int p, int q)
{
    const view v = n->out;
    const float *src = node_row(c, o, n, st, j, ch, p);
    float *d = at(c, v) + (size_t)ch * v.h * v.w;
    if (n->pool_out)
        maxpool2x2_ceil_rows(src, 1, q - p, o->w, d + (size_t)(p / 2) * v.w, 0, (q - p + 1) / 2);
    else
        memcpy(d + (size_t)p * o->w, src, (size_t)(q - p) * o->w * sizeof(float));
}

/* Node j computes its output rows [p, q). */
static void run_node(u2net_ctx *c, const op *o, int j, const pipe_state *st, int p, int q,
                     int *packed_done)
{
    const node *nodes = &c->plan.nodes[o->first_node], *n = &nodes[j];
    const conv_params *cv = n->conv;
    const int w = o->w;
    int lo, hi;
    pipe_window(o, n, p, q, &lo, &hi);
    if (n->win_rows)
        fill_window(c, o, n, lo, hi);
    /* the input planes, at row lo */
    const float **planes = c->planes;
    int k = 0, in_window = 0;
    for (int s = 0; s < n->nsrc; s++) {
        const source *src = &n->src[s];
        for (int ch = 0; ch < src->c; ch++) {
            if (src->kind == SRC_VIEW)
                planes[k++] = at(c, src->v) + (size_t)ch * src->v.h * w + (size_t)lo * w;
            else if (src->kind == SRC_NODE)
                planes[k++] = node_row(c, o, &nodes[src->node], st, src->node, ch, lo);
            else
                planes[k++] = c->band + n->win_off + (size_t)in_window++ * n->win_rows * w;
        }
    }
    conv3x3_args a = {planes, cv->cin, hi - lo, p - lo, q - p, w, cv->weight,
                      n->bias ? cv->bias : NULL, cv->cout, cv->dilation, n->relu,
                      NULL, 0, NULL, 0};
    if (n->residual.c && n->residual.kind == SRC_VIEW) {
        a.residual = at(c, n->residual.v) + (size_t)p * w;
        a.residual_plane = (size_t)o->h * w;
    } else if (n->residual.c) {
        const node *r = &nodes[n->residual.node];
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
    if (c->kernels == U2NET_KERNELS_REFERENCE) {
        conv3x3_ref(&a, c->threads);
        return;
    }
    switch (conv_kernel_for(cv, q - p, w)) {
    case CONV_WINOGRAD: {
        float *packed = n->packed ? c->packed + n->packed_off : NULL;
        if (packed && !packed_done[j]) {
            conv3x3_winograd_pack(c->isa, cv->weight, cv->cin, cv->cout, packed, c->threads);
            packed_done[j] = 1;
        }
        conv3x3_winograd(c->isa, &a, packed, c->scratch, c->threads);
        break;
    }
    case CONV_DIRECT:
        conv3x3_direct(c->isa, &a, c->threads);
        break;
    case CONV_IM2COL:
        conv3x3_im2col(&a, c->scratch, c->threads);
        break;
    }
}

/* After a band (start[j]: where node j's rows of this band began): the
 * rows of stored nodes go to their tensors (the band's rows, or with
 * delayed stores those of the band before), and each line buffer keeps only
 * the rows still needed (rows [keep, done) move to its front). One channel
 * of one node a task, which stores before it moves. */
static void end_band(const u2net_ctx *c, const op *o, pipe_state *st, const int *start)
{
    const node *nodes = &c->plan.nodes[o->first_node];
    int from[PIPE_MAX_NODES], to[PIPE_MAX_NODES], keep[PIPE_MAX_NODES], moves[PIPE_MAX_NODES];
    int first[PIPE_MAX_NODES + 1]; /* items of node j: first[j] .. first[j+1]-1 */
    const pipe_state before = *st;
    first[0] = 0;
    for (int j = 0; j < o->n_nodes; j++) {
        const node *n = &nodes[j];
        from[j] = to[j] = 0;
        if (n->delayed)
            from[j] = st->stored[j], to[j] = start[j], st->stored[j] = start[j];
        else if (n->stored && !n->direct)
            from[j] = start[j], to[j] = st->done[j];
        keep[j] = pipe_keep(&c->plan, o, j, st);
        moves[j] = n->lb_rows && keep[j] > st->base[j] && st->done[j] > keep[j];
        first[j + 1] = first[j] + (to[j] > from[j] || moves[j] ? n->conv->cout : 0);
    }
    #pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int item = 0; item < first[o->n_nodes]; item++) {
        int j = 0;
        while (item >= first[j + 1])
            j++;
        const node *n = &nodes[j];
        const int ch = item - first[j];
        if (to[j] > from[j])
            store_channel(c, o, n, &before, j, ch, from[j], to[j]);
        if (moves[j]) {
            float *lb = line_buffer(c, n) + (size_t)ch * n->lb_rows * o->w;
            memmove(lb, lb + (size_t)(keep[j] - before.base[j]) * o->w,
                    (size_t)(before.done[j] - keep[j]) * o->w * sizeof(float));
        }
    }
    for (int j = 0; j < o->n_nodes; j++)
        st->base[j] = keep[j];
}

static void run_pipeline(u2net_ctx *c, const op *o)
{
    const node *nodes = &c->plan.nodes[o->first_node];
    pipe_state st;
    memset(&st, 0, sizeof st);
    int packed_done[PIPE_MAX_NODES] = {0};
    for (int r0 = 0; r0 < o->h; r0 += o->band_rows) {
        const int r1 = r0 + o->band_rows < o->h ? r0 + o->band_rows : o->h;
        int start[PIPE_MAX_NODES];
        for (int j = 0; j < o->n_nodes; j++) {
            const int p = st.done[j], q = pipe_node_end(o, &nodes[j], r1);
            start[j] = p;
            if (q > p) {
                run_node(c, o, j, &st, p, q, packed_done);
                st.done[j] = q;
            }
        }
        end_band(c, o, &st, start);
    }
    /* the last band of delayed stores */
    int start[PIPE_MAX_NODES];
    for (int j = 0; j < o->n_nodes; j++)
        start[j] = st.done[j];
    end_band(c, o, &st, start);
}

static void run_op(u2net_ctx *c, const op *o)
{
    const int t = c->threads;
    switch (o->kind) {
    case OP_PIPELINE:
        run_pipeline(c, o);
        break;
    case OP_CONV1X1:
        conv1x1(at(c, o->in), o->conv->cin, (size_t)o->in.h * o->in.w, o->conv->weight,
                o->conv->bias, o->conv->cout, at(c, o->out));
        break;
    case OP_RESIZE:
        resize_bilinear(at(c, o->in), o->in.c, o->in.h, o->in.w, at(c, o->out), o->out.h,
                        o->out.w, t);
        break;
    case OP_SIGMOID:
        sigmoid_inplace(at(c, o->out), (size_t)o->out.c * o->out.h * o->out.w);
        break;
    }
}

int u2net_run(u2net_ctx *c, const float *chw, int h, int w, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!chw) {
        set_error(err, U2NET_EARG, "no input image");
        return U2NET_EARG;
    }
    if (h < 1 || w < 1 || h > U2NET_MAX_SIDE || w > U2NET_MAX_SIDE ||
        (long long)h * w > U2NET_MAX_PIXELS) {
        set_error(err, U2NET_EARG,
                  "input size %dx%d (HxW) is outside the limits: 1..%d per side, %d pixels",
                  h, w, U2NET_MAX_SIDE, U2NET_MAX_PIXELS);
        return U2NET_EARG;
    }
    if (!c->plan.ops || c->plan.h != h || c->plan.w != w) {
        if (replan(c, h, w, err) != 0)
            return err ? err->code : U2NET_ENOMEM;
    }
    c->input = chw;
    for (int i = 0; i < c->plan.n_ops; i++)
        run_op(c, &c->plan.ops[i]);
    c->input = NULL;
    c->have_output = 1;
    return 0;
}

const float *u2net_output(const u2net_ctx *c, int k)
{
    if (!c->have_output || k < 0 || k >= c->plan.outputs.c)
        return NULL;
    return at(c, c->plan.outputs) + (size_t)k * c->plan.h * c->plan.w;
}

const u2net_model *ctx_model(const u2net_ctx *c) { return c->model; }
