/* context.c - a context runs one model, one input at a time: it builds the
 * model's graph for each new input size (graph/network.c) and hands it to
 * its backend (backend.h), which plans its memory once and runs it. */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "error.h"

struct u2net_ctx {
    const u2net_model *model;
    int threads;
    u2net_kernels kernels;
    backend *backend;
    graph graph;      /* of the last input size; valid when graph.nodes != NULL */
    int prepared;     /* the backend holds a plan of graph */
    int have_output;
};

/* The backend that runs kernel choice k. */
static backend *make_backend(int threads, u2net_kernels k, u2net_error *err)
{
    if (k == U2NET_KERNELS_REFERENCE)
        return reference_backend_new(threads, err);
    cpu_options o;
    cpu_options_default(&o);
    o.isa = kernel_isa_clamp(k == U2NET_KERNELS_PORTABLE ? KERNEL_ISA_PORTABLE
                             : k == U2NET_KERNELS_AVX2   ? KERNEL_ISA_AVX2
                                                         : KERNEL_ISA_AVX512);
    return cpu_backend_new(threads, &o, err);
}

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
    c->backend = make_backend(c->threads, U2NET_KERNELS_FAST, err);
    if (!c->backend) {
        free(c);
        return NULL;
    }
    return c;
}

void u2net_ctx_free(u2net_ctx *c)
{
    if (!c)
        return;
    c->backend->ops->destroy(c->backend);
    graph_free(&c->graph);
    free(c);
}

void u2net_ctx_set_kernels(u2net_ctx *c, u2net_kernels k)
{
    u2net_error err;
    backend *b = make_backend(c->threads, k, &err);
    if (!b)
        return; /* out of memory: the context keeps the kernels it had */
    c->backend->ops->destroy(c->backend);
    c->backend = b;
    c->kernels = k;
    c->prepared = c->have_output = 0;
}

const char *u2net_ctx_kernels_name(const u2net_ctx *c)
{
    return c->kernels == U2NET_KERNELS_REFERENCE ? "reference"
                                                  : kernel_isa_name(cpu_backend_isa(c->backend));
}

size_t u2net_ctx_arena_bytes(const u2net_ctx *c)
{
    return c->prepared ? c->backend->ops->activation_bytes(c->backend) : 0;
}

const u2net_model *u2net_ctx_model(const u2net_ctx *c) { return c->model; }

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
    const graph_tensor *in = c->graph.nodes ? &c->graph.tensors[c->graph.input] : NULL;
    if (!in || in->h != h || in->w != w) {
        c->prepared = c->have_output = 0;
        graph_free(&c->graph);
        const int rc = graph_build(&c->graph, c->model, h, w, err);
        if (rc)
            return rc;
    }
    if (!c->prepared) {
        const int rc = c->backend->ops->prepare(c->backend, &c->graph, err);
        if (rc)
            return rc;
        c->prepared = 1;
    }
    const int rc = c->backend->ops->run(c->backend, chw, err);
    c->have_output = rc == 0;
    return rc;
}

const float *u2net_output(const u2net_ctx *c, int k)
{
    if (!c->have_output || k < 0 || k >= c->graph.n_outputs)
        return NULL;
    return c->backend->ops->output(c->backend, k);
}
