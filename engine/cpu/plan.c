/* plan.c - the CPU schedule of a graph (cpu.h): which convolutions run
 * together as pipelines, where every stored tensor lives in one arena, and
 * what each pipeline's bands need.
 *
 * From the graph's nodes, in order:
 *  - A tensor is streamed (never stored) when it is read only by the nodes
 *    right after its producer, at its size, in place (a 3x3 convolution of
 *    stride 1 reading it whole, or its residual), none of them dilated (a
 *    dilated convolution in bands needs halos of d rows and splits
 *    Winograd's tiles: U2Net at 1024 ran 10% slower streaming its RSU-F
 *    tensors), and it is larger than the band memory (a smaller one costs
 *    less stored whole). Its producer and readers form one pipeline. The lean top level (graph/lean.c), which
 *    this backend applies when it pays, makes the network's largest
 *    tensors streamable.
 *  - A tensor every reader of which pools it is stored pooled.
 *  - The outputs are one block [n_outputs, h, w], in order.
 *  - Every other tensor gets a buffer; a node's output takes the buffer of
 *    a tensor its pipeline reads for the last time, at the same size, when
 *    that saves memory (the schedule then delays its stores so every read
 *    comes first); then buffers are placed in the arena by lifetime.
 *  - Each pipeline's leads, delayed and direct stores, band height, line
 *    buffers, windows, packed weights and kernel workspace. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "error.h"
#include "kernels.h"

enum { BAND_ALIGN = 4 }; /* band rows: a multiple of the Winograd tile height */

/* The most multiply-adds the lean top level may add, as a fraction of the
 * graph's: U2NetP needs 11%, U2Net 7%. */
#define LEAN_MAX_EXTRA 0.15

void cpu_options_default(cpu_options *o)
{
    o->isa = kernel_isa_best();
    o->lean = -1;
    o->band_bytes = 3 << 20;
    o->packed_bytes = 4 << 20;
    o->call_macs = 1 << 30; /* about 10 ms on 2 AVX-512 cores, 100 on the portable loops */
}

conv_kernel conv_kernel_for(const conv_params *c, int h, int w)
{
    if (c->stride != 1)
        return CONV_IM2COL;
    if (conv3x3_direct_worthwhile(c->cin, c->cout, h, w, c->dilation))
        return CONV_DIRECT;
    if (conv3x3_winograd_worthwhile(c->cin, c->cout, h, w, c->dilation))
        return CONV_WINOGRAD;
    return CONV_IM2COL;
}

/* What the planner knows of each graph tensor. */
typedef struct {
    int producer;      /* node index, or -1 */
    int n_readers, first_reader, last_reader;
    int all_pool;      /* every reader pools it */
    int streamed;
    int pooled;        /* stored pooled */
    int output;        /* index into the outputs, or -1 */
    int buf;           /* buffer (before merging), or BUF_INPUT / BUF_NONE */
    size_t off;
} tensor_plan;

typedef struct {
    cpu_plan *p;
    const graph *g;
    const cpu_options *opt;
    int threads;
    tensor_plan *t;
    int *node_op;      /* graph node -> op index */
    int *group;        /* buffer -> the buffer it was merged into */
    int cap_group;
    int oom;
} builder;

static size_t tensor_bytes(const graph_tensor *t)
{
    return (size_t)t->c * t->h * t->w * sizeof(float);
}

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static int grow(void **items, int *cap, int n, size_t size)
{
    if (n < *cap)
        return 0;
    const int new_cap = *cap ? 2 * *cap : 64;
    void *q = realloc(*items, size * (size_t)new_cap);
    if (!q)
        return -1;
    *items = q, *cap = new_cap;
    return 0;
}

/* ---- Which tensors are streamed, pooled, stored. */

static void find_readers(builder *b)
{
    const graph *g = b->g;
    for (int t = 0; t < g->n_tensors; t++) {
        tensor_plan *tp = &b->t[t];
        tp->producer = -1, tp->n_readers = 0, tp->first_reader = tp->last_reader = -1;
        tp->all_pool = 1, tp->output = -1, tp->buf = BUF_NONE, tp->off = 0;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        b->t[n->out].producer = i;
        for (int k = 0; k <= n->n_in; k++) { /* the inputs, then the residual */
            const int t = k < n->n_in ? n->in[k].tensor : n->residual;
            if (t < 0)
                continue;
            tensor_plan *tp = &b->t[t];
            tp->all_pool &= k < n->n_in && n->in[k].kind == READ_POOL;
            if (tp->last_reader == i)
                continue; /* read twice by one node: one reader */
            tp->n_readers++;
            if (tp->first_reader < 0)
                tp->first_reader = i;
            tp->last_reader = i;
        }
    }
    for (int k = 0; k < g->n_outputs; k++)
        b->t[g->outputs[k]].output = k;
}

/* Whether node r reads tensor t only in place, as an undilated stride-1
 * convolution reading it whole at its size, or as its residual. */
static int reads_in_place(const graph *g, const graph_node *r, int t, int h, int w)
{
    if (r->kind != NODE_CONV3X3 || r->conv->dilation != 1 || g->tensors[r->out].h != h ||
        g->tensors[r->out].w != w)
        return 0;
    for (int k = 0; k < r->n_in; k++)
        if (r->in[k].tensor == t && (r->in[k].kind != READ_WHOLE || r->conv->stride != 1))
            return 0;
    return 1;
}

static void find_streamed(builder *b)
{
    const graph *g = b->g;
    for (int t = 0; t < g->n_tensors; t++) {
        tensor_plan *tp = &b->t[t];
        tp->streamed = 0;
        const int i = tp->producer;
        if (i < 0 || tp->output >= 0 || tp->n_readers == 0 || g->nodes[i].kind != NODE_CONV3X3 ||
            g->nodes[i].conv->dilation != 1 || tensor_bytes(&g->tensors[t]) < b->opt->band_bytes)
            continue;
        int ok = tp->first_reader == i + 1 && tp->last_reader == i + tp->n_readers;
        for (int r = i + 1; ok && r <= tp->last_reader; r++)
            ok = graph_node_reads(&g->nodes[r], t) &&
                 reads_in_place(g, &g->nodes[r], t, g->tensors[t].h, g->tensors[t].w);
        tp->streamed = ok;
    }
}

/* The last node of the pipeline that starts at node i: it reaches as far
 * as the readers of the tensors streamed inside it. A pipeline that would
 * exceed PIPE_MAX_NODES stores the tensor that stretches it instead. */
static int pipeline_end(builder *b, int i)
{
    const graph *g = b->g;
    int end = i;
    for (int j = i; j <= end; j++) {
        tensor_plan *tp = &b->t[g->nodes[j].out];
        if (!tp->streamed)
            continue;
        if (tp->last_reader - i + 1 > PIPE_MAX_NODES) {
            tp->streamed = 0;
            continue;
        }
        if (tp->last_reader > end)
            end = tp->last_reader;
    }
    return end;
}

/* ---- Buffers. */

static int new_buffer(builder *b, size_t floats)
{
    cpu_plan *p = b->p;
    if (grow((void **)&p->bufs, &p->cap_bufs, p->n_bufs, sizeof(buffer)) ||
        grow((void **)&b->group, &b->cap_group, p->n_bufs, sizeof(int))) {
        b->oom = 1;
        return 0;
    }
    buffer *bf = &p->bufs[p->n_bufs];
    bf->floats = round16(floats);
    bf->first = -1, bf->last = -1, bf->offset = 0;
    b->group[p->n_bufs] = p->n_bufs;
    return p->n_bufs++;
}

static int group_of(builder *b, int buf)
{
    while (b->group[buf] != buf)
        buf = b->group[buf];
    return buf;
}

static void touch(builder *b, int buf, int at)
{
    if (buf < 0)
        return;
    buffer *bf = &b->p->bufs[group_of(b, buf)];
    if (bf->first < 0 || at < bf->first)
        bf->first = at;
    if (at > bf->last)
        bf->last = at;
}

/* The view of a stored tensor (after merging: its group's buffer). */
static view view_of(builder *b, int t)
{
    const graph_tensor *gt = &b->g->tensors[t];
    const tensor_plan *tp = &b->t[t];
    view v = {tp->buf >= 0 ? group_of(b, tp->buf) : tp->buf, tp->off, gt->c, gt->h, gt->w};
    if (tp->pooled)
        v.h = (gt->h + 1) / 2, v.w = (gt->w + 1) / 2;
    return v;
}

/* Buffers of the stored tensors: the input is the caller's; the outputs
 * are slices of one block; a pooled tensor is stored at half its size. */
static void assign_buffers(builder *b)
{
    const graph *g = b->g;
    cpu_plan *p = b->p;
    const graph_tensor *first = &g->tensors[g->outputs[0]];
    const int block = new_buffer(b, (size_t)g->n_outputs * first->h * first->w);
    p->outputs.buf = block, p->outputs.off = 0;
    p->outputs.c = g->n_outputs, p->outputs.h = first->h, p->outputs.w = first->w;
    for (int t = 0; t < g->n_tensors && !b->oom; t++) {
        tensor_plan *tp = &b->t[t];
        const graph_tensor *gt = &g->tensors[t];
        tp->pooled = 0;
        if (t == g->input) {
            tp->buf = BUF_INPUT;
        } else if (tp->output >= 0) {
            tp->buf = block, tp->off = (size_t)tp->output * gt->h * gt->w;
        } else if (tp->producer >= 0 && !tp->streamed) {
            const graph_node *n = &g->nodes[tp->producer];
            tp->pooled = tp->all_pool && tp->n_readers > 0 && n->kind == NODE_CONV3X3;
            const size_t hw = tp->pooled ? (size_t)((gt->h + 1) / 2) * ((gt->w + 1) / 2)
                                         : (size_t)gt->h * gt->w;
            tp->buf = new_buffer(b, (size_t)gt->c * hw);
        }
    }
}

/* Whether tensor s, read by pipeline op `at`, may give its buffer to t,
 * made there: s is stored (perhaps pooled) at t's size and read for the
 * last time there, in place with no dilation (so a delayed store is always
 * behind every read), and every tensor sharing its buffer is dead after. */
static int may_take(builder *b, int s, int t, int at)
{
    const tensor_plan *sp = &b->t[s], *tp = &b->t[t];
    const view sv = view_of(b, s);
    const graph_tensor *tg = &b->g->tensors[t];
    if (sp->buf < 0 || sp->output >= 0 || sp->streamed || tp->pooled || sv.h != tg->h ||
        sv.w != tg->w || b->node_op[sp->last_reader] != at)
        return 0;
    return b->p->bufs[group_of(b, sp->buf)].last <= at;
}

/* For each stored output of a pipeline node: the buffer of a tensor the
 * pipeline reads for the last time, its residual first. The price is a
 * delayed store (a copy of the output through its line buffer, and bands
 * for one too large for the band memory); measured on U2Net and U2NetP at
 * 320 and 1024 it costs nothing visible, and sharing only near the memory
 * peak left U2NetP's arena 9% larger (18.5 against 17.0 MB at 320). */
static void share_buffers(builder *b, int first, int last, int at)
{
    const graph *g = b->g;
    for (int i = first; i <= last; i++) {
        const graph_node *n = &g->nodes[i];
        tensor_plan *tp = &b->t[n->out];
        if (tp->buf < 0 || tp->output >= 0 || tp->pooled)
            continue;
        int from = -1;
        for (int j = first; j <= last && from < 0; j++) {
            const graph_node *r = &g->nodes[j];
            if (r->residual >= 0 && may_take(b, r->residual, n->out, at))
                from = r->residual;
            for (int k = 0; k < r->n_in && from < 0; k++) {
                const int s = r->in[k].tensor;
                const int in_place = r->in[k].kind == READ_WHOLE ||
                                     (r->in[k].kind == READ_POOL && b->t[s].pooled);
                if (in_place && r->conv->dilation == 1 && r->conv->stride == 1 &&
                    may_take(b, s, n->out, at))
                    from = s;
            }
        }
        if (from < 0)
            continue;
        const int into = group_of(b, b->t[from].buf), mine = tp->buf;
        buffer *bi = &b->p->bufs[into], *bm = &b->p->bufs[mine];
        if (bm->floats > bi->floats)
            bi->floats = bm->floats;
        if (bm->last > bi->last)
            bi->last = bm->last;
        b->group[mine] = into;
    }
}

/* ---- Pipelines under construction. */

static source no_source(void)
{
    source s;
    memset(&s, 0, sizeof s);
    s.kind = SRC_VIEW, s.v.buf = BUF_NONE, s.node = -1;
    return s;
}

/* Input k of graph node n (or its residual, k = -1) as a source of the
 * pipeline whose nodes start at graph node `first`. */
static source source_of(builder *b, const graph_node *n, int k, int first)
{
    const int t = k < 0 ? n->residual : n->in[k].tensor;
    source s = no_source();
    if (t < 0)
        return s;
    const tensor_plan *tp = &b->t[t];
    s.c = b->g->tensors[t].c;
    if (tp->streamed) {
        s.kind = SRC_NODE, s.node = tp->producer - first;
        return s;
    }
    s.v = view_of(b, t);
    const read_kind rk = k < 0 ? READ_WHOLE : n->in[k].kind;
    s.kind = rk == READ_UP ? SRC_UP : rk == READ_POOL && !tp->pooled ? SRC_POOL : SRC_VIEW;
    return s;
}

static int emit_op(builder *b, const op *o)
{
    cpu_plan *p = b->p;
    if (b->oom || grow((void **)&p->ops, &p->cap_ops, p->n_ops, sizeof(op))) {
        b->oom = 1;
        return -1;
    }
    p->ops[p->n_ops] = *o;
    return p->n_ops++;
}

/* Whether two stored views share memory. */
static int views_overlap(view a, view b)
{
    if (a.buf < 0 || a.buf != b.buf)
        return 0;
    const size_t a1 = a.off + (size_t)a.c * a.h * a.w, b1 = b.off + (size_t)b.c * b.h * b.w;
    return a.off < b1 && b.off < a1;
}

static int has_window(const pipe_node *n)
{
    for (int s = 0; s < n->nsrc; s++)
        if (n->src[s].kind == SRC_UP || n->src[s].kind == SRC_POOL)
            return 1;
    return 0;
}

static int window_channels(const pipe_node *n)
{
    int c = 0;
    for (int s = 0; s < n->nsrc; s++)
        if (n->src[s].kind == SRC_UP || n->src[s].kind == SRC_POOL)
            c += n->src[s].c;
    return c;
}

static int has_line_buffer(const pipe_node *n)
{
    return n->consumers > 0 || (n->stored && !n->direct);
}

/* The kernel workspace a call of node n on h rows needs (the reference
 * kernel, which any run may choose, needs none). */
static size_t call_scratch(const pipe_node *n, int h, int w, int threads)
{
    const conv_params *c = n->conv;
    switch (conv_kernel_for(c, h, w)) {
    case CONV_WINOGRAD:
        return conv3x3_winograd_workspace_floats(c->cin, c->cout, h, w, c->dilation, n->packed,
                                                 threads);
    case CONV_IM2COL:
        return (size_t)threads * conv3x3_scratch_floats(c->cin);
    default:
        return 0;
    }
}

/* Sizing by walking the bands: on the first pass each node's line-buffer
 * and window rows and its Winograd calls; on the second (packing decided)
 * the kernels' workspace. */
typedef struct {
    cpu_plan *p;
    int pass, threads;
    int wino_calls[PIPE_MAX_NODES];
    size_t scratch_floats;
} sizing;

static void size_node(void *ctx, const op *o, int j, const pipe_state *st, int p, int q)
{
    sizing *z = ctx;
    pipe_node *n = &z->p->nodes[o->first_node + j];
    if (z->pass == 0) {
        if (has_line_buffer(n) && (size_t)(q - st->base[j]) > n->lb_rows)
            n->lb_rows = (size_t)(q - st->base[j]);
        int lo, hi;
        pipe_window(n, p, q, &lo, &hi);
        if (has_window(n) && (size_t)(hi - lo) > n->win_rows)
            n->win_rows = (size_t)(hi - lo);
        z->wino_calls[j] += conv_kernel_for(n->conv, q - p, o->w) == CONV_WINOGRAD;
    } else {
        const size_t s = call_scratch(n, q - p, o->w, z->threads);
        z->scratch_floats = s > z->scratch_floats ? s : z->scratch_floats;
    }
}

typedef struct {
    size_t band_floats, scratch_floats, packed_floats;
} pipe_needs;

/* What pipeline o needs with bands of R rows. */
static pipe_needs simulate(builder *b, op *o, int R)
{
    cpu_plan *pl = b->p;
    pipe_node *nodes = &pl->nodes[o->first_node];
    for (int i = 0; i < o->n_nodes; i++)
        nodes[i].lb_rows = nodes[i].win_rows = 0;
    sizing z;
    memset(&z, 0, sizeof z);
    z.p = pl, z.threads = b->threads;
    const band_visitor v = {size_node, NULL};
    pipe_walk(pl, o, R, &v, &z);
    size_t off = 0, packed = 0;
    for (int i = 0; i < o->n_nodes; i++) {
        pipe_node *n = &nodes[i];
        const conv_params *c = n->conv;
        n->lb_off = off;
        off += round16((size_t)c->cout * n->lb_rows * o->w);
        n->win_off = off;
        off += round16((size_t)window_channels(n) * n->win_rows * n->in_w);
        /* a layer run with Winograd on several bands packs its weights once */
        const size_t pk = conv3x3_winograd_packed_floats(c->cin, c->cout);
        n->packed = z.wino_calls[i] > 1 && (packed + pk) * sizeof(float) <= b->opt->packed_bytes;
        n->packed_off = packed;
        packed += n->packed ? pk : 0;
    }
    z.pass = 1;
    pipe_walk(pl, o, R, &v, &z);
    pipe_needs need = {off, z.scratch_floats, packed};
    return need;
}

/* Leads (the rows a node runs ahead of its consumers), which stored
 * outputs are delayed or direct, and the band height: the largest multiple
 * of BAND_ALIGN (or the whole height) whose buffers fit the band memory. */
static void schedule(builder *b, op *o)
{
    cpu_plan *pl = b->p;
    pipe_node *nodes = &pl->nodes[o->first_node];
    for (int i = o->n_nodes - 1; i >= 0; i--) {
        pipe_node *n = &nodes[i];
        n->lead = 0, n->consumers = 0;
        for (int c = i + 1; c < o->n_nodes; c++) {
            const pipe_node *m = &nodes[c];
            for (int s = 0; s < m->nsrc; s++)
                if (m->src[s].kind == SRC_NODE && m->src[s].node == i) {
                    n->consumers++;
                    const int l = m->lead + m->conv->dilation;
                    n->lead = l > n->lead ? l : n->lead;
                }
            if (m->residual.c && m->residual.kind == SRC_NODE && m->residual.node == i) {
                n->consumers++;
                n->lead = m->lead > n->lead ? m->lead : n->lead;
            }
        }
    }
    for (int i = 0; i < o->n_nodes; i++) {
        pipe_node *n = &nodes[i];
        /* Writing a band of out straight away is safe against a reader of
         * the same memory that comes earlier in the band and runs far
         * enough ahead never to read those rows again. */
        n->delayed = 0;
        if (n->stored)
            for (int c = 0; c < o->n_nodes; c++) {
                const pipe_node *m = &nodes[c];
                for (int s = 0; s < m->nsrc; s++)
                    n->delayed |= m->src[s].kind != SRC_NODE && views_overlap(m->src[s].v, n->out) &&
                                  !(m->src[s].kind == SRC_VIEW && c < i &&
                                    m->lead - m->conv->dilation >= n->lead);
                n->delayed |= m->residual.c && m->residual.kind == SRC_VIEW &&
                              views_overlap(m->residual.v, n->out) && !(c < i && m->lead >= n->lead);
            }
        n->direct = n->stored && !n->delayed && !n->pool_out && n->consumers == 0;
    }
    pipe_needs need = simulate(b, o, o->h);
    o->band_rows = o->h;
    for (int R = (o->h - 1) / BAND_ALIGN * BAND_ALIGN;
         need.band_floats * sizeof(float) > b->opt->band_bytes && R >= BAND_ALIGN;
         R -= BAND_ALIGN) {
        need = simulate(b, o, R);
        o->band_rows = R;
    }
    if (need.band_floats > pl->band_floats)
        pl->band_floats = need.band_floats;
    if (need.scratch_floats > pl->scratch_floats)
        pl->scratch_floats = need.scratch_floats;
    if (need.packed_floats > pl->packed_floats)
        pl->packed_floats = need.packed_floats;
}

/* The pipeline of graph nodes [first, last] into op index at. */
static void emit_pipeline(builder *b, int first, int last, int at)
{
    const graph *g = b->g;
    cpu_plan *p = b->p;
    const int count = last - first + 1;
    while (p->n_nodes + count > p->cap_nodes)
        if (grow((void **)&p->nodes, &p->cap_nodes, p->cap_nodes, sizeof(pipe_node))) {
            b->oom = 1;
            return;
        }
    op o;
    memset(&o, 0, sizeof o);
    o.kind = OP_PIPELINE, o.first_node = p->n_nodes, o.n_nodes = count;
    o.h = g->tensors[g->nodes[first].out].h, o.w = g->tensors[g->nodes[first].out].w;
    size_t staging = 0;
    for (int i = first; i <= last; i++) {
        const graph_node *gn = &g->nodes[i];
        const tensor_plan *tp = &b->t[gn->out];
        pipe_node *n = &p->nodes[p->n_nodes++];
        memset(n, 0, sizeof *n);
        n->conv = gn->conv, n->relu = gn->relu, n->bias = gn->bias;
        n->in_h = gn->in_h, n->in_w = gn->in_w;
        for (int k = 0; k < gn->n_in; k++)
            n->src[n->nsrc++] = source_of(b, gn, k, first);
        n->residual = source_of(b, gn, -1, first);
        n->stored = !tp->streamed;
        n->pool_out = tp->pooled;
        if (n->stored)
            n->out = view_of(b, gn->out);
        if (n->conv->cin > p->max_cin)
            p->max_cin = n->conv->cin;
        if (n->conv->weight_f16) {
            n->staged_off = staging;
            staging += round16((size_t)n->conv->cout * n->conv->cin * 9);
        }
    }
    if (staging > p->staging_floats)
        p->staging_floats = staging;
    schedule(b, &o);
    if (emit_op(b, &o) != at)
        b->oom = 1;
}

/* Every graph node's op: a pipeline of 3x3 convolutions, or one of the
 * whole-tensor operations; then the sigmoid over the outputs. */
static void emit_ops(builder *b)
{
    const graph *g = b->g;
    /* first the ops' extent, so that buffers know their lifetimes */
    int n_ops = 0;
    for (int i = 0; i < g->n_nodes; n_ops++) {
        const int end = g->nodes[i].kind == NODE_CONV3X3 ? pipeline_end(b, i) : i;
        for (int j = i; j <= end; j++)
            b->node_op[j] = n_ops;
        i = end + 1;
    }
    for (int t = 0; t < g->n_tensors; t++) {
        const tensor_plan *tp = &b->t[t];
        if (tp->buf < 0)
            continue;
        if (tp->producer >= 0)
            touch(b, tp->buf, b->node_op[tp->producer]);
        if (tp->last_reader >= 0)
            touch(b, tp->buf, b->node_op[tp->last_reader]);
        if (tp->output >= 0)
            touch(b, tp->buf, n_ops); /* the outputs outlive the run */
    }
    for (int i = 0; i < g->n_nodes;) {
        const int at = b->node_op[i];
        int last = i;
        while (last + 1 < g->n_nodes && b->node_op[last + 1] == at)
            last++;
        if (g->nodes[i].kind == NODE_CONV3X3)
            share_buffers(b, i, last, at);
        i = last + 1;
    }
    for (int i = 0; i < g->n_nodes && !b->oom;) {
        const graph_node *n = &g->nodes[i];
        const int at = b->node_op[i];
        if (n->kind == NODE_CONV3X3) {
            int last = i;
            while (last + 1 < g->n_nodes && b->node_op[last + 1] == at)
                last++;
            emit_pipeline(b, i, last, at);
            i = last + 1;
            continue;
        }
        op o;
        memset(&o, 0, sizeof o);
        o.kind = n->kind == NODE_CONV1X1 ? OP_CONV1X1 : n->kind == NODE_POOL ? OP_POOL : OP_RESIZE;
        for (int k = 0; k < n->n_in; k++)
            o.in[o.n_in++] = view_of(b, n->in[k].tensor);
        o.out = view_of(b, n->out);
        o.conv = n->conv;
        emit_op(b, &o);
        i++;
    }
    op s;
    memset(&s, 0, sizeof s);
    s.kind = OP_SIGMOID, s.out = b->p->outputs;
    emit_op(b, &s);
}

/* The arena: the groups of merged buffers placed by lifetime; a merged
 * buffer lives where its group does. */
static int place_buffers(builder *b)
{
    cpu_plan *p = b->p;
    const int n = p->n_bufs;
    placed_buffer *roots = malloc(sizeof *roots * (size_t)(n ? n : 1));
    int *root_of = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!roots || !root_of) {
        free(roots);
        free(root_of);
        return -1;
    }
    int count = 0;
    for (int i = 0; i < n; i++)
        if (b->group[i] == i) {
            root_of[i] = count;
            roots[count++] = p->bufs[i];
        }
    const size_t total = place_by_lifetime(roots, count);
    for (int i = 0; i < n && total != (size_t)-1; i++)
        p->bufs[i].offset = roots[root_of[group_of(b, i)]].offset;
    p->arena_floats = total;
    free(roots);
    free(root_of);
    return total == (size_t)-1 ? -1 : 0;
}

/* Whether the lean top level pays for graph g: its tensors are large
 * enough to be streamed, for at most LEAN_MAX_EXTRA more multiply-adds. */
static int lean_pays(const graph *g, const graph *lean, const cpu_options *o)
{
    const graph_stage *e = &g->stages[0];
    return tensor_bytes(&g->tensors[e->out]) >= o->band_bytes &&
           graph_macs(lean) <= (1.0 + LEAN_MAX_EXTRA) * graph_macs(g);
}

int cpu_plan_build(cpu_plan *p, const graph *g0, const cpu_options *o, int threads,
                   u2net_error *err)
{
    memset(p, 0, sizeof *p);
    const graph *g = g0;
    if (o->lean != 0) {
        const int r = graph_lean_top_level(g0, &p->lean);
        if (r < 0) {
            set_error(err, U2NET_ENOMEM, "out of memory planning the network");
            return U2NET_ENOMEM;
        }
        if (r == 1 && (o->lean == 1 || lean_pays(g0, &p->lean, o)))
            g = &p->lean;
        else if (r == 1)
            graph_free(&p->lean);
    }
    const graph_tensor *in = &g->tensors[g->input];
    p->h = in->h, p->w = in->w;
    builder b = {p, g, o, threads, calloc((size_t)g->n_tensors, sizeof(tensor_plan)),
                 malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1)), NULL, 0, 0};
    if (b.t && b.node_op) {
        find_readers(&b);
        find_streamed(&b);
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].kind == NODE_CONV3X3)
                i = pipeline_end(&b, i);
        assign_buffers(&b);
        if (!b.oom)
            emit_ops(&b);
    }
    const int failed = !b.t || !b.node_op || b.oom || place_buffers(&b) != 0;
    free(b.t);
    free(b.node_op);
    free(b.group);
    if (failed) {
        cpu_plan_free(p);
        set_error(err, U2NET_ENOMEM, "out of memory planning a %dx%d run", in->w, in->h);
        return U2NET_ENOMEM;
    }
    return 0;
}

void cpu_plan_free(cpu_plan *p)
{
    free(p->ops);
    free(p->nodes);
    free(p->bufs);
    graph_free(&p->lean);
    memset(p, 0, sizeof *p);
}
