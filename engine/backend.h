/* backend.h - what a backend implements to run a graph (graph/graph.h):
 * the seam between what the network computes and the machine that
 * computes it. A context (context.c) owns one backend and hands it the
 * graph of each new input size with the batch it runs; the backend plans
 * its memory once per (graph, batch) and then runs it any number of times.
 *
 *   reference  reference.c: the plain forward pass (graph/forward.c), whole
 *              tensors and the plain reference kernels
 *   cpu        cpu/: pipelines of convolutions run by bands of rows, the
 *              fast kernels of kernels/
 *   cuda       cuda/: whole tensors on an NVIDIA GPU (make CUDA=1) */
#ifndef U2NET_BACKEND_H
#define U2NET_BACKEND_H

#include <stddef.h>

#include "cancel.h"
#include "graph.h"
#include "kernels.h"

typedef struct backend backend;

typedef struct {
    const char *name;
    /* Plans everything for graph g run on batch images at once; g stays
     * valid and unchanged until the next prepare or destroy. */
    int (*prepare)(backend *b, const graph *g, int batch, u2net_error *err);
    /* Runs the prepared graph on input [batch, in_channels, h, w]; stops
     * with U2NET_ECANCELED when b->cancel asks it to (cancel.h). */
    int (*run)(backend *b, const float *input, u2net_error *err);
    /* Output k of image i of the last run, [h, w] floats in host memory. */
    const float *(*output)(const backend *b, int i, int k);
    /* Activation memory planned for the prepared graph, in bytes. */
    size_t (*activation_bytes)(const backend *b);
    void (*destroy)(backend *b);
} backend_ops;

/* Every backend's state starts with this. */
struct backend {
    const backend_ops *ops;
    const cancel_flag *cancel; /* the context's (set by it after creating the backend) */
    int threads;               /* CPU threads it runs (prepare may lower them to what the
                                  process can start: resources.h); 0 on a GPU */
    size_t reserve;            /* host memory the caller takes besides the plan (the image
                                  path's): prepare counts it in the memory the run needs
                                  and leaves it free when it starts threads */
};

backend *reference_backend_new(int threads, u2net_error *err);

/* How the CPU backend schedules a graph; cpu_options_default gives what
 * the engine runs, tests change them to reach every path on small inputs. */
typedef struct {
    kernel_isa isa;          /* the fast kernels' instruction set */
    int lean;                /* the lean top level (graph/lean.c): 1 on, 0 off, -1 when it
                                pays (its tensors are streamed, at most +15% multiply-adds) */
    size_t band_bytes;       /* line buffers and windows of one pipeline */
    size_t packed_bytes;     /* Winograd weights of one pipeline packed once per run */
    double call_macs;        /* multiply-adds of one kernel call at most: a call over
                                more rows is cut into calls of fewer, with a look at
                                the cancellation request between them */
} cpu_options;
void cpu_options_default(cpu_options *o);
backend *cpu_backend_new(int threads, const cpu_options *o, u2net_error *err);
/* The instruction set a CPU backend runs. */
kernel_isa cpu_backend_isa(const backend *b);

/* The CUDA backend (cuda/cuda_backend.cu) on GPU `gpu`, float32 or with
 * TF32 matrix products (fast); NULL with U2NET_EDEVICE and the reason when
 * there is no usable GPU. Only in builds with U2NET_CUDA (make CUDA=1). */
backend *cuda_backend_new(int gpu, int fast, u2net_error *err);

#endif
