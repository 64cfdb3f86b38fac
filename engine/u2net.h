/* u2net.h - the public API of u2net.c, a C inference engine for the U2Net
 * family of salient-object / background-removal networks.
 *
 *   u2net_error err;
 *   u2net_model *m = u2net_model_load("weights/u2netp.u2nc", &err);
 *   if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   u2net_ctx *c = u2net_ctx_new(m, 2, &err);          // one per thread
 *   if (!c || u2net_run(c, chw, h, w, &err) != 0) { ... err.msg ... }
 *   const float *mask = u2net_output(c, 0);            // sigmoid(d0), h*w floats
 *   u2net_ctx_free(c);
 *   u2net_model_free(m);
 *
 * Threading: a model is read-only after loading and may be shared by any
 * number of contexts in any number of threads; a context is used by one
 * thread at a time. Nothing in the library is global.
 */
#ifndef U2NET_H
#define U2NET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define U2NET_VERSION_STRING "0.1.0"

/* Largest accepted network input: each side and the pixel count. */
#define U2NET_MAX_SIDE 8192
#define U2NET_MAX_PIXELS (16 * 1024 * 1024)

/* Number of output maps: sigmoid(d0) (the fused map) then sigmoid(d1..d6). */
#define U2NET_MAX_OUTPUTS 16

typedef struct u2net_model u2net_model;
typedef struct u2net_ctx u2net_ctx;

/* Every call that can fail takes an optional error: on failure it holds one
 * line naming the file or argument and the problem. */
typedef struct {
    int code;       /* one of U2NET_E*, 0 when no error */
    char msg[512];
} u2net_error;

enum {
    U2NET_OK = 0,
    U2NET_EIO = 1,      /* cannot open, read or map a file */
    U2NET_EFORMAT = 2,  /* not a model file, bad version, bad tables, bad shapes */
    U2NET_ECHECKSUM = 3,/* CRC mismatch: the file is corrupted */
    U2NET_EARG = 4,     /* bad argument: input size 0 or beyond the limits */
    U2NET_ENOMEM = 5    /* an allocation failed */
};

/* Kernels the context runs: the fast path (default) or the plain C reference
 * kernels, kept for testing the fast path against. */
typedef enum { U2NET_KERNELS_FAST = 0, U2NET_KERNELS_REFERENCE = 1 } u2net_kernels;

/* Model: maps a converted model file (tools/convert.py) and checks it whole. */
u2net_model *u2net_model_load(const char *path, u2net_error *err);
void u2net_model_free(u2net_model *m);
const char *u2net_model_name(const u2net_model *m);  /* "u2net", "u2netp", ... */
int u2net_model_default_size(const u2net_model *m);  /* training size, 320 */
int u2net_model_output_count(const u2net_model *m);  /* 7 for U2Net(P) */
size_t u2net_model_param_count(const u2net_model *m);

/* Context: activation memory and scratch for one run at a time. threads <= 0
 * means all cores (OpenMP's default). Results do not depend on threads. */
u2net_ctx *u2net_ctx_new(const u2net_model *m, int threads, u2net_error *err);
void u2net_ctx_free(u2net_ctx *c);
void u2net_ctx_set_kernels(u2net_ctx *c, u2net_kernels k);
/* Bytes of activation memory planned for the last input size. */
size_t u2net_ctx_arena_bytes(const u2net_ctx *c);

/* Runs the network on a normalised 3 x h x w float32 image (planar CHW).
 * Memory is planned when (h, w) differs from the previous run; nothing is
 * allocated otherwise. Returns 0, or an error code with err filled in. */
int u2net_run(u2net_ctx *c, const float *chw, int h, int w, u2net_error *err);

/* Output k of the last run (0 = sigmoid(d0), k = sigmoid(dk)), h x w floats,
 * valid until the next run or free. NULL if k is out of range or no run yet. */
const float *u2net_output(const u2net_ctx *c, int k);

#ifdef __cplusplus
}
#endif

#endif
