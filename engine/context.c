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
    plan plan;        /* valid when plan.ops != NULL */
    float *arena;     /* plan.arena_floats */
    float *scratch;   /* threads * plan.scratch_floats */
    float *packed;    /* plan.packed_floats: Winograd weights of one block */
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
    free(c->packed);
    free(c);
}

void u2net_ctx_set_kernels(u2net_ctx *c, u2net_kernels k) { c->kernels = k; }

size_t u2net_ctx_arena_bytes(const u2net_ctx *c) { return c->plan.arena_floats * sizeof(float); }

static int replan(u2net_ctx *c, int h, int w, u2net_error *err)
{
    plan_free(&c->plan);
    free(c->arena);
    free(c->scratch);
    free(c->packed);
    c->arena = c->scratch = c->packed = NULL;
    c->have_output = 0;
    if (plan_build(&c->plan, c->model, h, w, err) != 0)
        return -1;
    c->arena = malloc(c->plan.arena_floats * sizeof(float));
    c->scratch = malloc((size_t)c->threads * c->plan.scratch_floats * sizeof(float) + 64);
    c->packed = malloc(c->plan.packed_floats * sizeof(float) + 64);
    if (!c->arena || !c->scratch || !c->packed) {
        set_error(err, U2NET_ENOMEM, "out of memory: a %dx%d run needs %zu MB of activations",
                  h, w, c->plan.arena_floats * sizeof(float) >> 20);
        plan_free(&c->plan);
        free(c->arena);
        free(c->scratch);
        free(c->packed);
        c->arena = c->scratch = c->packed = NULL;
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

/* The Winograd convolution, U2NET_WINOGRAD_COUT_BLOCK output channels at a
 * time: their weights are transformed into c->packed, then convolved. Every
 * output's sum runs in the same order whatever the block, so the blocks
 * change nothing but the memory needed. */
static void run_winograd(u2net_ctx *c, const op *o, const float *in, const float *res,
                         float *out)
{
    const conv_params *p = o->conv;
    const size_t hw = (size_t)o->in.h * o->in.w;
    for (int co0 = 0; co0 < p->cout; co0 += U2NET_WINOGRAD_COUT_BLOCK) {
        const int nb = p->cout - co0 < U2NET_WINOGRAD_COUT_BLOCK ? p->cout - co0
                                                                 : U2NET_WINOGRAD_COUT_BLOCK;
        conv3x3_winograd_pack(p->weight + (size_t)co0 * p->cin * 9, p->cin, nb, c->packed,
                              c->threads);
        conv3x3_dilated_winograd(in, p->cin, o->in.h, o->in.w, c->packed, p->bias + co0, nb,
                                 p->dilation, o->relu, res ? res + co0 * hw : NULL,
                                 out + co0 * hw, c->scratch, c->threads);
    }
}

static void run_op(u2net_ctx *c, const op *o)
{
    const int t = c->threads;
    float *in = at(c, o->in), *out = at(c, o->out);
    switch (o->kind) {
    case OP_CONV3X3: {
        const conv_params *p = o->conv;
        const float *res = o->residual.buf >= 0 ? at(c, o->residual) : NULL;
        if (c->kernels == U2NET_KERNELS_REFERENCE)
            conv3x3_dilated_ref(in, p->cin, o->in.h, o->in.w, p->weight, p->bias, p->cout,
                                p->dilation, o->relu, res, out, t);
        else if (o->winograd)
            run_winograd(c, o, in, res, out);
        else
            conv3x3_dilated_im2col(in, p->cin, o->in.h, o->in.w, p->weight, p->bias, p->cout,
                                   p->dilation, o->relu, res, out, c->scratch, t);
        break;
    }
    case OP_CONV1X1:
        conv1x1(in, o->conv->cin, (size_t)o->in.h * o->in.w, o->conv->weight, o->conv->bias,
                o->conv->cout, out);
        break;
    case OP_MAXPOOL:
        maxpool2x2_ceil(in, o->in.c, o->in.h, o->in.w, out, t);
        break;
    case OP_RESIZE:
        resize_bilinear(in, o->in.c, o->in.h, o->in.w, out, o->out.h, o->out.w, t);
        break;
    case OP_SIGMOID:
        sigmoid_inplace(out, (size_t)o->out.c * o->out.h * o->out.w);
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
