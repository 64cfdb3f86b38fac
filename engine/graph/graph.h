/* graph.h - the network as a plain graph for one input size: tensors
 * [c, h, w] and the nodes that compute them, listed in an order that runs
 * (each node after the producers of what it reads).
 *
 * The graph says what the network computes and nothing about how: no
 * bands, buffers or kernels. network.c builds it from a model's description
 * (the readable spec of the topology), forward.c runs it with whole tensors
 * and the reference kernels, lean.c rewrites it to recompute the largest
 * tensors instead of storing them, and each backend (cpu/) schedules it its
 * own way. */
#ifndef U2NET_GRAPH_H
#define U2NET_GRAPH_H

#include "cancel.h"
#include "model.h"

/* A node's input is the concatenation, along channels, of its inputs, each
 * read at the node's input size (in_h x in_w): */
typedef enum {
    READ_WHOLE, /* the tensor as it is (it has that size) */
    READ_UP,    /* resized bilinearly, align_corners=False, to that size */
    READ_POOL   /* max-pooled 2x2 with stride 2, ceil mode (to that size) */
} read_kind;

typedef struct {
    read_kind kind;
    int tensor;
} graph_input;

typedef enum {
    NODE_CONV3X3, /* out = act(conv(cat(in), stride, dilation) + bias) + residual */
    NODE_CONV1X1, /* out = conv1x1(cat(in)) + bias */
    NODE_POOL,    /* out = maxpool2x2_ceil(in[0]) */
    NODE_RESIZE   /* out = bilinear resize of in[0] to out's size */
} node_kind;

enum { GRAPH_MAX_INPUTS = U2NET_MAX_OUTPUTS };

typedef struct {
    node_kind kind;
    const conv_params *conv; /* the convolutions: weights, cin, cout, stride, dilation */
    int relu;                /* ReLU after the bias, before the residual */
    int bias;                /* 0: without conv->bias (one part of a split convolution) */
    graph_input in[GRAPH_MAX_INPUTS];
    int n_in;
    int in_h, in_w;          /* the size every input is read at */
    int residual;            /* tensor added last, or -1 */
    int out;
} graph_node;

typedef struct {
    int c, h, w;
    char name[40]; /* "stage1.hx2", "side3.up": for dumps and messages */
} graph_tensor;

/* Where one RSU stage's nodes and tensors are, as network.c built them
 * (what lean.c needs to find). */
typedef struct {
    int first_node, last_node;
    int hxin, hx1;
    int d2;             /* RSU-L of height 3 or more: the decoder output at level 2; else -1 */
    int out;
} graph_stage;

typedef struct {
    graph_tensor *tensors;
    int n_tensors, cap_tensors;
    graph_node *nodes;
    int n_nodes, cap_nodes;
    int input;                           /* the network input [in_channels, h, w] */
    int n_outputs;
    int outputs[U2NET_MAX_OUTPUTS];      /* output k is sigmoid(tensor outputs[k]) */
    int n_stages;
    graph_stage stages[U2NET_MAX_STAGES];
    int oom;                             /* an append failed: the graph is unusable */
} graph;

/* network.c: the graph of model m for an input [in_channels, h, w]. */
int graph_build(graph *g, const u2net_model *m, int h, int w, u2net_error *err);
void graph_free(graph *g);

/* Appending (graph.c): a tensor's id, or -1 when out of memory (g->oom set). */
int graph_add_tensor(graph *g, int c, int h, int w, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int graph_add_node(graph *g, const graph_node *n);
/* A copy of src's tensors, input and outputs, with no nodes (and no stage
 * landmarks: they name nodes). */
int graph_copy_tensors(graph *dst, const graph *src);
/* The index of the last node reading tensor t, or -1. */
int graph_last_reader(const graph *g, int t);
/* Whether node n reads tensor t (as an input or its residual). */
int graph_node_reads(const graph_node *n, int t);
/* Multiply-adds of the graph's convolutions. */
double graph_macs(const graph *g);

/* lean.c: g rewritten so that the level-1 stage's output and the last
 * decoder's input convolution are recomputed where they are read instead of
 * stored (see lean.c). Returns 1 when rewritten into out, 0 when g has not
 * the shape it needs (out untouched), -1 when out of memory. */
int graph_lean_top_level(const graph *g, graph *out);

/* forward.c: runs g on input [in_channels, h, w] with whole tensors and the
 * reference kernels; outputs [n_outputs, h, w] receives the sigmoids.
 * Stops with U2NET_ECANCELED before a node when cancel asks it to. */
int forward_run(const graph *g, const float *input, float *outputs, int threads,
                const cancel_flag *cancel, u2net_error *err);

#endif
