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
    float *arena;     /* plan.arena_floats */
    float *scratch;   /* plan.scratch_floats: the convolution kernels' workspace */
    float *band;      /* plan.band_floats: a band's input window, then its output */
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
    c->arena = c->scratch = c->band = NULL;
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
    if (!c->arena || !c->scratch || !c->band) {
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

/* The 3x3 convolution of o on a dense input [cin, h, w] into out [cout, h, w]. */
static void run_conv3x3(u2net_ctx *c, const op *o, const float *in, int h, int w,
                        const float *res, float *out)
{
    const conv_params *p = o->conv;
    if (c->kernels == U2NET_KERNELS_REFERENCE)
        conv3x3_dilated_ref(in, p->cin, h, w, p->weight, p->bias, p->cout, p->dilation, o->relu,
                            res, out, c->threads);
    else if (o->winograd)
        conv3x3_dilated_winograd(c->isa, in, p->cin, h, w, p->weight, p->bias, p->cout,
                                 p->dilation, o->relu, res, out, c->scratch, c->threads);
    else
        conv3x3_dilated_im2col(in, p->cin, h, w, p->weight, p->bias, p->cout, p->dilation,
                               o->relu, res, out, c->scratch, c->threads);
}

/* One band of a banded convolution, as a range of rows. */
typedef struct {
    int r0, r1; /* output rows */
    int lo, n;  /* window rows lo .. lo + n - 1 */
} band;

/* Channel j of everything between two convolutions of a banded run: window
 * channels j (from up(a)) and ca + j (from x, or pooled from x) of band
 * `next` (into win), and output channel j of band `done` (from bout) into
 * out, plus the residual (which may be out itself). Channel j of out may
 * share memory with channel j of x, never with another channel, and its rows
 * of band `done` lie above every row of x that band `next` reads: so each
 * channel is one task, and one parallel loop does all three. */
static void band_channel(const u2net_ctx *c, const op *o, int j, float *win, const float *bout,
                         const band *next, const band *done)
{
    const int h = o->out.h, w = o->out.w, ca = o->up.c;
    const size_t hw = (size_t)h * w;
    if (next && j < ca)
        resize_bilinear_rows(at(c, o->up) + (size_t)j * o->up.h * o->up.w, 1, o->up.h, o->up.w,
                             win + (size_t)j * next->n * w, h, w, next->lo, next->lo + next->n);
    if (next && j < o->in.c) {
        const float *xj = at(c, o->in) + (size_t)j * o->in.h * o->in.w;
        float *wj = win + (size_t)(ca + j) * next->n * w;
        if (o->pool_in)
            maxpool2x2_ceil_rows(xj, 1, o->in.h, o->in.w, wj, next->lo, next->lo + next->n);
        else
            memcpy(wj, xj + (size_t)next->lo * w, (size_t)next->n * w * sizeof(float));
    }
    if (done && j < o->conv->cout) {
        const size_t len = (size_t)(done->r1 - done->r0) * w;
        const float *src = bout + ((size_t)j * done->n + (done->r0 - done->lo)) * w;
        float *dst = at(c, o->out) + j * hw + (size_t)done->r0 * w;
        if (o->residual.buf >= 0) {
            const float *r = at(c, o->residual) + j * hw + (size_t)done->r0 * w;
            for (size_t i = 0; i < len; i++)
                dst[i] = src[i] + r[i];
        } else {
            memcpy(dst, src, len * sizeof(float));
        }
    }
}

/* A banded convolution (internal.h). Band j's window is rows [r0 - 1, r1 + 1)
 * of the convolution's input, clipped to the image: its first and last
 * output rows see zeros for the rows beyond the window and are dropped,
 * except at the image's own edges where zeros are right. */
static void run_conv3x3_banded(u2net_ctx *c, const op *o)
{
    const int h = o->out.h;
    int nch = o->up.c > o->in.c ? o->up.c : o->in.c;
    nch = nch > o->conv->cout ? nch : o->conv->cout;
    /* c->band: the window [cin, n, w], then the output [cout, n, w], each
     * with room for the most rows a band has */
    float *win = c->band, *bout = c->band + (size_t)o->conv->cin * band_window_rows(o) * o->out.w;
    band done = {0, 0, 0, 0};
    for (int r0 = 0;; r0 += o->band_rows) {
        band next = {r0, r0 + o->band_rows < h ? r0 + o->band_rows : h, r0 > 0 ? r0 - 1 : 0, 0};
        next.n = (next.r1 < h ? next.r1 + 1 : h) - next.lo;
        const band *pn = r0 < h ? &next : NULL, *pd = r0 > 0 ? &done : NULL;
        #pragma omp parallel for num_threads(c->threads) schedule(static)
        for (int j = 0; j < nch; j++)
            band_channel(c, o, j, win, bout, pn, pd);
        if (!pn)
            break;
        run_conv3x3(c, o, win, next.n, o->out.w, NULL, bout);
        done = next;
    }
}

static void run_op(u2net_ctx *c, const op *o)
{
    const int t = c->threads;
    float *in = at(c, o->in), *out = at(c, o->out);
    switch (o->kind) {
    case OP_CONV3X3:
        if (is_banded(o))
            run_conv3x3_banded(c, o);
        else
            run_conv3x3(c, o, in, o->in.h, o->in.w,
                        o->residual.buf >= 0 ? at(c, o->residual) : NULL, out);
        break;
    case OP_CONV1X1:
        conv1x1(in, o->conv->cin, (size_t)o->in.h * o->in.w, o->conv->weight, o->conv->bias,
                o->conv->cout, out);
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
