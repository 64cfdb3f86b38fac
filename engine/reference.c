/* reference.c - the reference backend: the plain forward pass
 * (graph/forward.c) behind the backend seam, which `--reference` (the
 * kernel choice U2NET_KERNELS_REFERENCE) runs. Speed is no concern: it
 * keeps every output, and forward_run allocates each tensor as it goes. */
#include <stdlib.h>

#include "backend.h"
#include "error.h"
#include "resources.h"

typedef struct {
    backend base;
    int threads_asked; /* base.threads: as many of them as the process can start */
    const graph *g;
    int batch;
    float *outputs;   /* [batch, n_outputs, h, w] */
    size_t plane;     /* h * w */
} reference_backend;

static int reference_prepare(backend *b, const graph *g, int batch, u2net_error *err)
{
    reference_backend *r = (reference_backend *)b;
    const graph_tensor *o = &g->tensors[g->outputs[0]];
    free(r->outputs);
    r->g = g;
    r->batch = batch;
    r->plane = (size_t)o->h * o->w;
    r->outputs = malloc(sizeof(float) * r->plane * (size_t)g->n_outputs * (size_t)batch);
    if (!r->outputs) {
        set_error(err, U2NET_ENOMEM, "out of memory for the outputs of a %dx%d run", o->w, o->h);
        return U2NET_ENOMEM;
    }
    r->base.threads = threads_startable(r->threads_asked, r->base.reserve);
    return 0;
}

static int reference_run(backend *b, const float *input, u2net_error *err)
{
    reference_backend *r = (reference_backend *)b;
    const graph_tensor *in = &r->g->tensors[r->g->input];
    const size_t in_floats = (size_t)in->c * in->h * in->w;
    for (int i = 0; i < r->batch; i++) {
        const int rc = forward_run(r->g, input + (size_t)i * in_floats,
                                   r->outputs + (size_t)i * r->plane * r->g->n_outputs,
                                   r->base.threads, r->base.cancel, err);
        if (rc)
            return rc;
    }
    return 0;
}

static const float *reference_output(const backend *b, int i, int k)
{
    const reference_backend *r = (const reference_backend *)b;
    return r->outputs + ((size_t)i * r->g->n_outputs + (size_t)k) * r->plane;
}

/* Every tensor alive at once, at most: what the plain pass may hold. */
static size_t reference_activation_bytes(const backend *b)
{
    const reference_backend *r = (const reference_backend *)b;
    size_t total = 0;
    for (int t = 0; r->g && t < r->g->n_tensors; t++) {
        const graph_tensor *gt = &r->g->tensors[t];
        total += (size_t)gt->c * gt->h * gt->w * sizeof(float);
    }
    return total;
}

static void reference_destroy(backend *b)
{
    reference_backend *r = (reference_backend *)b;
    if (r)
        free(r->outputs);
    free(r);
}

static const backend_ops reference_ops = {"reference", reference_prepare, reference_run,
                                          reference_output, reference_activation_bytes,
                                          reference_destroy};

backend *reference_backend_new(int threads, u2net_error *err)
{
    reference_backend *r = calloc(1, sizeof *r);
    if (!r) {
        set_error(err, U2NET_ENOMEM, "out of memory creating a context");
        return NULL;
    }
    r->base.ops = &reference_ops;
    r->base.threads = r->threads_asked = threads;
    return &r->base;
}
