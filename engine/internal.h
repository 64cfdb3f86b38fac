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

/* The 3x3 convolutions run in pipelines: a pipeline is a few convolutions
 * ("nodes") of one output size that run together, band by band of rows
 * from top to bottom, each node computing the rows its consumers in the
 * pipeline need next. A node's input is the concatenation of its sources:
 *   SRC_VIEW  a stored tensor of the node's size, read in place
 *   SRC_UP    a stored tensor resized bilinearly to the node's size
 *   SRC_POOL  a stored tensor of twice the size, max-pooled 2x2 (ceil)
 *   SRC_NODE  an earlier node of the pipeline
 * so a concatenation, an upsampled or a pooled tensor, or a node's output
 * exists only a few rows at a time: in a window (the rows of SRC_UP and
 * SRC_POOL sources a band needs) or in the node's line buffer (the rows of
 * its output its consumers still need, which move up as the bands go
 * down). A node's output may also be stored into a tensor (`out`), pooled
 * to half its size when pool_out is set; when the pipeline reads that
 * tensor too (a decoder writing over the encoder tensor it reads), each
 * band is stored only after the next band has been computed ("delayed"),
 * by which time no read reaches back to it. The residual is added in the
 * kernel. A plain convolution is a pipeline of one node that runs in one
 * band and writes straight into its tensor. */
enum { PIPE_MAX_NODES = 5, PIPE_MAX_SOURCES = 2 };

typedef enum { SRC_VIEW, SRC_UP, SRC_POOL, SRC_NODE } src_kind;

typedef struct {
    src_kind kind;
    view v;     /* SRC_VIEW, SRC_UP, SRC_POOL: the stored tensor */
    int node;   /* SRC_NODE: the node's index in its pipeline */
    int c;      /* channels; 0 for an absent residual */
} source;

typedef struct {
    const conv_params *conv;
    int relu, bias;             /* bias 0: the convolution without its bias */
    source src[PIPE_MAX_SOURCES];
    int nsrc;
    source residual;            /* SRC_VIEW or SRC_NODE; c = 0 when none */
    int stored, pool_out;
    view out;                   /* when stored */
    /* the schedule (plan.c) */
    int lead;                   /* rows computed beyond the end of the band */
    int consumers;              /* nodes of the pipeline that read it */
    int delayed;
    int direct;                 /* the kernel writes straight into out */
    size_t lb_rows, lb_off;     /* line buffer [cout][lb_rows][w] in the band memory */
    size_t win_rows, win_off;   /* window [SRC_UP and SRC_POOL channels][win_rows][w] */
    int packed;                 /* Winograd weights packed once per run ... */
    size_t packed_off;          /* ... at this offset of the packed memory */
} node;

typedef enum { OP_PIPELINE, OP_CONV1X1, OP_RESIZE, OP_SIGMOID } op_kind;

typedef struct {
    op_kind kind;
    view in, out;               /* OP_CONV1X1, OP_RESIZE, OP_SIGMOID */
    const conv_params *conv;    /* OP_CONV1X1 */
    int first_node, n_nodes;    /* OP_PIPELINE: plan.nodes[first_node ..] */
    int h, w, band_rows;        /* OP_PIPELINE: the nodes' size, rows per band */
} op;

/* A pipeline's progress between bands (plan.c runs it to size the
 * buffers, context.c to run the pipeline): node i has computed rows
 * [0, done[i]), holds rows [base[i], done[i]) in its line buffer, and, when
 * delayed, has stored rows [0, stored[i]). */
typedef struct {
    int done[PIPE_MAX_NODES], base[PIPE_MAX_NODES], stored[PIPE_MAX_NODES];
} pipe_state;

/* The end of the rows node n computes for the band ending at row r1 (it
 * starts at done[i]). */
static inline int pipe_node_end(const op *o, const node *n, int r1)
{
    return r1 + n->lead < o->h ? r1 + n->lead : o->h;
}

/* Input rows [lo, hi) that node n reads to compute rows [p, q). */
static inline void pipe_window(const op *o, const node *n, int p, int q, int *lo, int *hi)
{
    const int d = n->conv->dilation;
    *lo = p - d > 0 ? p - d : 0;
    *hi = q + d < o->h ? q + d : o->h;
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
    node *nodes;
    int n_nodes, cap_nodes;
    buffer *bufs;
    int n_bufs, cap_bufs;
    view outputs;           /* [n_levels + 1, h, w] */
    size_t arena_floats;
    size_t scratch_floats;  /* the 3x3 convolution kernels' workspace, for
                               every thread of the context */
    size_t band_floats;     /* line buffers and windows of the largest pipeline */
    size_t packed_floats;   /* packed Winograd weights of the largest pipeline */
    int max_cin;            /* input planes of the widest convolution */
} plan;

int plan_build(plan *p, const u2net_model *m, int h, int w, int threads, u2net_error *err);

/* The fast kernel a convolution runs on h output rows of width w, from the
 * measured rules of kernels.h. */
typedef enum { CONV_WINOGRAD, CONV_DIRECT, CONV_IM2COL } conv_kernel;
conv_kernel conv_kernel_for(const conv_params *c, int h, int w);

/* After a band: the first row node j of pipeline o must keep (for its
 * consumers' next windows, and its own rows not yet stored). */
int pipe_keep(const plan *pl, const op *o, int j, const pipe_state *st);
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
