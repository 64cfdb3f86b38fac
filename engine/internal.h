/* internal.h - the engine's private structures: the loaded model and the
 * per-context execution plan. */
#ifndef U2NET_INTERNAL_H
#define U2NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "u2net.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Limits on what a model file may describe, checked before anything is
 * allocated from its numbers. */
#define U2NET_MAX_STAGES 31          /* up to 16 encoder levels */
#define U2NET_MAX_HEIGHT 16          /* RSU height L */
#define U2NET_MAX_CHANNELS 8192
#define U2NET_MAX_FILE_BYTES ((uint64_t)4 << 30)

enum { STAGE_RSU = 1, STAGE_RSU_F = 2 };
enum { ROLE_ENCODER = 0, ROLE_DECODER = 1 };

/* One convolution with folded BatchNorm: weight [cout, cin, k, k], bias [cout]. */
typedef struct {
    const float *weight;
    const float *bias;
    int cin, cout, k, dilation;
} conv_params;

/* One RSU block. conv[] in file order: rebnconvin, rebnconv1..L,
 * rebnconv(L-1)d..rebnconv1d, i.e. conv[L + (L - i)] is rebnconv{i}d. */
typedef struct {
    int kind, height, in_ch, mid_ch, out_ch, role;
    conv_params *conv;  /* 2 * height entries */
} stage_desc;

struct u2net_model {
    char name[33];
    int in_channels, out_channels, default_size;
    int n_levels;            /* encoder stages n; decoder stages n-1 */
    int n_stages;            /* 2n - 1: encoders then decoders, deep to shallow */
    stage_desc stages[U2NET_MAX_STAGES];
    conv_params side[U2NET_MAX_OUTPUTS]; /* side1..siden */
    conv_params fuse;                    /* outconv, 1x1 */
    size_t param_count;
    conv_params *conv_storage;           /* all stages' conv[] arrays */
    void *map;                           /* the mmapped file */
    size_t map_bytes;
    float *converted;                    /* float32 copy of float16 data, or NULL */
};

/* A [c, h, w] tensor inside a planned buffer: buffer id and float offset. */
typedef struct {
    int buf;
    size_t off;
    int c, h, w;
} view;

enum { BUF_INPUT = -1 };  /* the caller's input image */

/* A 3x3 convolution reads `in` itself, or, when banded:
 *   cat(up(up), in): `up` resized bilinearly to in's size, then in; or
 *   maxpool2x2_ceil(in), when pool_in is set;
 * neither of which is stored whole. A banded convolution runs in bands of
 * band_rows output rows, each on a window of its input (its rows, one above
 * and one below) built in the context's band buffer. The output of a
 * cat(up, in) convolution may be in's own buffer: a band is written out only
 * after the next band's window has been read, and no later window reaches
 * back above it. */
typedef enum { OP_CONV3X3, OP_CONV1X1, OP_RESIZE, OP_SIGMOID } op_kind;

typedef struct {
    op_kind kind;
    view up, in, out, residual; /* up.buf and residual.buf are -2 when absent */
    int pool_in;
    int band_rows;
    const conv_params *conv;    /* for the convolutions */
    int relu;
    int winograd;               /* 3x3: the fast path is conv3x3_dilated_winograd */
} op;

static inline int is_banded(const op *o)
{
    return o->up.buf >= 0 || o->pool_in;
}

/* The most rows a band's window of o has: its rows and one each side. */
static inline int band_window_rows(const op *o)
{
    return o->band_rows + 2 < o->out.h ? o->band_rows + 2 : o->out.h;
}

typedef struct {
    size_t floats;       /* size, rounded up to 16 floats (64 bytes) */
    int first, last;     /* op indices of first and last use */
    size_t offset;       /* in the arena, assigned by the planner */
} buffer;

/* Everything planned for one input size. */
typedef struct {
    int h, w;
    op *ops;
    int n_ops, cap_ops;
    buffer *bufs;
    int n_bufs, cap_bufs;
    view outputs;           /* [n_levels + 1, h, w] */
    size_t arena_floats;
    size_t scratch_floats;  /* the 3x3 convolution kernels' workspace, for
                               every thread of the context */
    size_t band_floats;     /* the largest band window [cin, rows, w] plus
                               its output [cout, rows, w] */
} plan;

int plan_build(plan *p, const u2net_model *m, int h, int w, int threads, u2net_error *err);
void plan_free(plan *p);

void set_error(u2net_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 8-bit resampling of c planes [c, ih, iw] -> [c, oh, ow], bit-exact with
 * PIL's Image.resize (BILINEAR or LANCZOS). Returns 0, or -1 when out of
 * memory. */
typedef enum { RESAMPLE_BILINEAR = 0, RESAMPLE_LANCZOS = 1 } resample_filter;
int resample_u8_planes(const unsigned char *in, int c, int ih, int iw, unsigned char *out,
                       int oh, int ow, resample_filter f);

/* OpenMP's default thread count and the calling thread's number (1 and 0
 * without OpenMP), for code with no context to take a count from. */
static inline int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The model a context runs. */
const u2net_model *ctx_model(const u2net_ctx *c);

uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n);

#endif
