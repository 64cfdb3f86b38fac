/* context.c - a context runs one model, one batch of inputs at a time: it
 * builds the model's graph for each new input size (graph/network.c) and
 * hands it, with the batch, to its backend (backend.h), which plans its
 * memory once and runs it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "error.h"
#include "resources.h"

/* Safe in a signal handler only when lock-free. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "u2net_ctx_cancel needs a lock-free atomic int");
struct cancel_flag {
    atomic_int requested;
};

int cancel_requested(const cancel_flag *f)
{
    return f && atomic_load_explicit(&f->requested, memory_order_relaxed);
}

struct u2net_ctx {
    cancel_flag cancel;
    const u2net_model *model;
    u2net_ctx_opts opts;
    backend *backend;
    char backend_name[16];
    graph graph;      /* of the last input size; valid when graph.nodes != NULL */
    int batch;        /* the backend holds a plan of graph for this batch; 0: none */
    int have_output;
};

void u2net_ctx_opts_default(u2net_ctx_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = U2NET_DEVICE_CPU;
    o->isa = U2NET_ISA_BEST;
}

/* The backend o asks for, or NULL with err set. */
static backend *make_backend(const u2net_ctx_opts *o, int threads, char *name, size_t cap,
                             u2net_error *err)
{
    if (o->device == U2NET_DEVICE_CUDA) {
#ifdef U2NET_CUDA
        snprintf(name, cap, o->fast ? "cuda tf32" : "cuda");
        return cuda_backend_new(o->gpu, o->fast, err);
#else
        snprintf(name, cap, "cuda");
        set_error(err, U2NET_EDEVICE, "this build has no CUDA support (build it with make CUDA=1)");
        return NULL;
#endif
    }
    if (o->device != U2NET_DEVICE_CPU) {
        set_error(err, U2NET_EARG, "unknown device %d", (int)o->device);
        return NULL;
    }
    if (o->reference) {
        snprintf(name, cap, "reference");
        return reference_backend_new(threads, err);
    }
    cpu_options c;
    cpu_options_default(&c);
    c.isa = kernel_isa_clamp(o->isa == U2NET_ISA_PORTABLE ? KERNEL_ISA_PORTABLE
                             : o->isa == U2NET_ISA_AVX2   ? KERNEL_ISA_AVX2
                             : o->isa == U2NET_ISA_NEON   ? KERNEL_ISA_NEON
                                                          : KERNEL_ISA_AVX512);
    snprintf(name, cap, "%s", kernel_isa_name(c.isa));
    return cpu_backend_new(threads, &c, err);
}

u2net_ctx *u2net_ctx_new_opts(const u2net_model *m, const u2net_ctx_opts *o, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    u2net_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        set_error(err, U2NET_ENOMEM, "out of memory creating a context");
        return NULL;
    }
    c->model = m;
    if (o)
        c->opts = *o;
    else
        u2net_ctx_opts_default(&c->opts);
#ifdef _OPENMP
    /* more threads than cores only wait for each other */
    const int cores = cores_available();
    const int threads = c->opts.threads > 0 && c->opts.threads < cores ? c->opts.threads : cores;
#else
    const int threads = 1;
#endif
    c->opts.threads = threads;
    c->backend = make_backend(&c->opts, threads, c->backend_name, sizeof c->backend_name, err);
    if (!c->backend) {
        free(c);
        return NULL;
    }
    atomic_init(&c->cancel.requested, 0);
    c->backend->cancel = &c->cancel;
    return c;
}

u2net_ctx *u2net_ctx_new(const u2net_model *m, int threads, u2net_error *err)
{
    u2net_ctx_opts o;
    u2net_ctx_opts_default(&o);
    o.threads = threads;
    return u2net_ctx_new_opts(m, &o, err);
}

void u2net_ctx_free(u2net_ctx *c)
{
    if (!c)
        return;
    c->backend->ops->destroy(c->backend);
    graph_free(&c->graph);
    free(c);
}

const char *u2net_ctx_backend_name(const u2net_ctx *c) { return c->backend_name; }

size_t u2net_ctx_arena_bytes(const u2net_ctx *c)
{
    return c->batch ? c->backend->ops->activation_bytes(c->backend) : 0;
}

const u2net_model *u2net_ctx_model(const u2net_ctx *c) { return c->model; }

int u2net_ctx_threads(const u2net_ctx *c) { return c->backend->threads; }

void context_reserve_memory(u2net_ctx *c, size_t bytes) { c->backend->reserve = bytes; }

void u2net_ctx_cancel(u2net_ctx *c)
{
    if (c)
        atomic_store_explicit(&c->cancel.requested, 1, memory_order_relaxed);
}

void u2net_ctx_clear_cancel(u2net_ctx *c)
{
    if (c)
        atomic_store_explicit(&c->cancel.requested, 0, memory_order_relaxed);
}

int u2net_run_batch(u2net_ctx *c, const float *nchw, int n, int h, int w, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!nchw) {
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
    if (n < 1 || n > U2NET_MAX_BATCH) {
        set_error(err, U2NET_EARG, "batch of %d images is outside 1..%d", n, U2NET_MAX_BATCH);
        return U2NET_EARG;
    }
    c->have_output = 0;
    if (cancel_requested(&c->cancel)) {
        set_error(err, U2NET_ECANCELED, "the run was cancelled");
        return U2NET_ECANCELED;
    }
    const graph_tensor *in = c->graph.nodes ? &c->graph.tensors[c->graph.input] : NULL;
    if (!in || in->h != h || in->w != w) {
        c->batch = c->have_output = 0;
        graph_free(&c->graph);
        const int rc = graph_build(&c->graph, c->model, h, w, err);
        if (rc)
            return rc;
    }
    if (c->batch != n) {
        c->batch = c->have_output = 0;
        const int rc = c->backend->ops->prepare(c->backend, &c->graph, n, err);
        if (rc)
            return rc;
        c->batch = n;
    }
    const int rc = c->backend->ops->run(c->backend, nchw, err);
    c->have_output = rc == 0;
    return rc;
}

int u2net_run(u2net_ctx *c, const float *chw, int h, int w, u2net_error *err)
{
    return u2net_run_batch(c, chw, 1, h, w, err);
}

const float *u2net_output_batch(const u2net_ctx *c, int i, int k)
{
    if (!c->have_output || i < 0 || i >= c->batch || k < 0 || k >= c->graph.n_outputs)
        return NULL;
    return c->backend->ops->output(c->backend, i, k);
}

const float *u2net_output(const u2net_ctx *c, int k)
{
    return u2net_output_batch(c, 0, k);
}
