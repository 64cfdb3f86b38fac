/* cpu.h - the CPU backend's schedule of a graph (graph/graph.h).
 *
 * The 3x3 convolutions run in pipelines: a pipeline is a few convolutions
 * ("nodes") of one output size that run together, band by band of rows
 * from top to bottom, each node computing the rows its consumers in the
 * pipeline need next. A node's input is the concatenation of its sources:
 *   SRC_VIEW  a stored tensor at the node's input size, read in place
 *   SRC_UP    a stored tensor resized bilinearly to the node's size
 *   SRC_POOL  a stored tensor of twice the size, max-pooled 2x2 (ceil)
 *   SRC_NODE  an earlier node of the pipeline
 * so a concatenation, an upsampled or a pooled tensor, or a tensor that only
 * the next nodes read (a streamed tensor), exists only a few rows at a
 * time: in a window (the rows of SRC_UP and SRC_POOL sources a band needs)
 * or in the node's line buffer (the rows of its output its consumers still
 * need, which move up as the bands go down). A node's output may also be
 * stored into a tensor (`out`), pooled to half its size when every reader
 * pools it (pool_out); when the pipeline reads the memory it writes (a
 * decoder writing over the encoder tensor it reads), each band is stored
 * only after the next band has been computed ("delayed"), by which time no
 * read reaches back to it. The residual is added in the kernel. A plain
 * convolution is a pipeline of one node that runs in one band and writes
 * straight into its tensor.
 *
 * plan.c builds the schedule from the graph (pipelines, the arena, each
 * pipeline's bands), bands.c walks a pipeline's bands for both sizing and
 * running, execute.c runs it. */
#ifndef U2NET_CPU_H
#define U2NET_CPU_H

#include <stddef.h>

#include "backend.h"
#include "placement.h"

/* A [c, h, w] tensor inside a planned buffer: buffer id and float offset. */
typedef struct {
    int buf;
    size_t off;
    int c, h, w;
} view;

enum { BUF_INPUT = -1, BUF_NONE = -2 }; /* the caller's input; not stored */

enum { PIPE_MAX_NODES = 8, PIPE_MAX_SOURCES = 2 };

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
    int in_h, in_w;             /* the convolution's input size (the pipeline's, but
                                   twice it for a stride of 2) */
    int stored, pool_out;
    view out;                   /* when stored */
    /* the schedule (plan.c) */
    int lead;                   /* rows computed beyond the end of the band */
    int consumers;              /* nodes of the pipeline that read it */
    int delayed;
    int direct;                 /* the kernel writes straight into out */
    size_t lb_rows, lb_off;     /* line buffer [cout][lb_rows][w] in the band memory */
    size_t win_rows, win_off;   /* window [SRC_UP and SRC_POOL channels][win_rows][in_w] */
    int packed;                 /* Winograd weights packed once per run ... */
    size_t packed_off;          /* ... at this offset of the packed memory */
    size_t staged_off;          /* float16 weights: their float32 in the staging memory */
} pipe_node;

typedef enum { OP_PIPELINE, OP_CONV1X1, OP_POOL, OP_RESIZE, OP_SIGMOID } op_kind;

typedef struct {
    op_kind kind;
    view in[GRAPH_MAX_INPUTS];  /* OP_CONV1X1: cat(in); OP_POOL, OP_RESIZE: in[0] */
    int n_in;
    view out;                   /* OP_CONV1X1, OP_POOL, OP_RESIZE, OP_SIGMOID */
    const conv_params *conv;    /* OP_CONV1X1 */
    int first_node, n_nodes;    /* OP_PIPELINE: plan.nodes[first_node ..] */
    int h, w, band_rows;        /* OP_PIPELINE: the nodes' size, rows per band */
} op;

/* A pipeline's progress between bands: node i has computed rows
 * [0, done[i]), holds rows [base[i], done[i]) in its line buffer, and, when
 * delayed, has stored rows [0, stored[i]). */
typedef struct {
    int done[PIPE_MAX_NODES], base[PIPE_MAX_NODES], stored[PIPE_MAX_NODES];
} pipe_state;

/* What happens to node j's line buffer after a band: rows [from[j], to[j])
 * go to its tensor, then rows [keep[j], done) stay, moved to its front
 * when moves[j]. */
typedef struct {
    int from[PIPE_MAX_NODES], to[PIPE_MAX_NODES], keep[PIPE_MAX_NODES], moves[PIPE_MAX_NODES];
} band_end;

/* A stored tensor's buffer: its size rounded up to 16 floats (64 bytes),
 * the ops of its first and last use, its offset in the arena. */
typedef placed_buffer buffer;

/* Everything planned for one graph. */
typedef struct {
    int h, w;
    graph lean;             /* the rewritten graph when the lean top level is on */
    op *ops;
    int n_ops, cap_ops;
    pipe_node *nodes;
    int n_nodes, cap_nodes;
    buffer *bufs;
    int n_bufs, cap_bufs;
    view outputs;           /* [n_outputs, h, w] */
    size_t arena_floats;
    size_t scratch_floats;  /* the 3x3 convolution kernels' workspace, for
                               every thread of the context */
    size_t band_floats;     /* line buffers and windows of the largest pipeline */
    size_t packed_floats;   /* packed Winograd weights of the largest pipeline */
    size_t staging_floats;  /* float16 weights of one pipeline, as float32 */
    int max_cin;            /* input planes of the widest convolution */
} cpu_plan;

int cpu_plan_build(cpu_plan *p, const graph *g, const cpu_options *o, int threads,
                   u2net_error *err);
void cpu_plan_free(cpu_plan *p);

/* The fast kernel a convolution runs on h output rows of width w, from the
 * measured rules of kernels.h. */
typedef enum { CONV_WINOGRAD, CONV_DIRECT, CONV_IM2COL } conv_kernel;
conv_kernel conv_kernel_for(const conv_params *c, int h, int w);

/* ---- bands.c: walking a pipeline's bands. */

/* The end of the rows node n computes for the band ending at row r1. */
static inline int pipe_node_end(const op *o, const pipe_node *n, int r1)
{
    return r1 + n->lead < o->h ? r1 + n->lead : o->h;
}

/* Input rows [lo, hi) that node n reads to compute output rows [p, q). */
static inline void pipe_window(const pipe_node *n, int p, int q, int *lo, int *hi)
{
    const int d = n->conv->dilation, s = n->conv->stride;
    *lo = p * s - d > 0 ? p * s - d : 0;
    *hi = (q - 1) * s + d + 1 < n->in_h ? (q - 1) * s + d + 1 : n->in_h;
}

/* What a walk over a pipeline's bands does at each step. */
typedef struct {
    /* node j computes its rows [p, q) (st: the progress before it) */
    void (*compute)(void *ctx, const op *o, int j, const pipe_state *st, int p, int q);
    /* after a band (NULL: nothing to do): e says what moves; before is the
     * progress before the band's line buffers were trimmed */
    void (*finish)(void *ctx, const op *o, const pipe_state *before, const band_end *e);
} band_visitor;

/* Runs the visitor over pipeline o's bands of band_rows rows, then once
 * more for the last delayed stores. The one band iterator: the planner
 * sizes buffers with it, the executor runs the pipeline with it. */
void pipe_walk(const cpu_plan *pl, const op *o, int band_rows, const band_visitor *v, void *ctx);

#endif
