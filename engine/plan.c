/* plan.c - turns the stage table into a flat list of operations for one
 * input size, schedules the pipelines of convolutions (internal.h) and
 * places every stored tensor in one arena by lifetime.
 *
 * Concatenation never copies: a cat(a, b) of two tensors of one size is one
 * buffer [ca + cb, h, w] whose two channel slices are written directly by
 * the producers of a and b; a cat(up(a), b), a pooled tensor, or the
 * output of a convolution that only the next convolutions read are not
 * stored at all: they exist a band of rows at a time inside a pipeline.
 *
 * At the top level (the input's size) the 64-channel tensors of the first
 * encoder and the last decoder, the largest of the network, are never
 * stored: their bands are recomputed where they are read, from the tensors
 * with fewer channels they come from (emit_network). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

enum { NO_BUF = -2 };

enum {
    BAND_BYTES = 3 << 20,   /* line buffers and windows of one pipeline */
    PACKED_BYTES = 4 << 20, /* Winograd weights of one pipeline packed once per run */
    BAND_ALIGN = 4,         /* band rows: a multiple of the Winograd tile height */
};

typedef struct {
    plan *p;
    const u2net_model *m;
    int threads;
    int oom;
} builder;

static int new_buffer(builder *b, int c, int h, int w)
{
    plan *p = b->p;
    if (p->n_bufs == p->cap_bufs) {
        const int cap = p->cap_bufs ? 2 * p->cap_bufs : 64;
        buffer *nb = realloc(p->bufs, sizeof(buffer) * cap);
        if (!nb) {
            b->oom = 1;
            return NO_BUF;
        }
        p->bufs = nb, p->cap_bufs = cap;
    }
    buffer *bf = &p->bufs[p->n_bufs];
    bf->floats = ((size_t)c * h * w + 15) & ~(size_t)15;
    bf->first = -1, bf->last = -1, bf->offset = 0;
    return p->n_bufs++;
}

static view whole(int buf, int c, int h, int w)
{
    view v = {buf, 0, c, h, w};
    return v;
}

/* Channels [c0, c0 + c) of a [*, h, w] view. */
static view slice(view v, int c0, int c)
{
    view s = v;
    s.off += (size_t)c0 * v.h * v.w;
    s.c = c;
    return s;
}

static const view no_view = {NO_BUF, 0, 0, 0, 0};

static void touch(plan *p, view v, int at)
{
    if (v.buf < 0)
        return;
    buffer *bf = &p->bufs[v.buf];
    if (bf->first < 0 || at < bf->first)
        bf->first = at;
    if (at > bf->last)
        bf->last = at;
}

/* Whether two stored views share memory. */
static int views_overlap(view a, view b)
{
    if (a.buf < 0 || a.buf != b.buf)
        return 0;
    const size_t a1 = a.off + (size_t)a.c * a.h * a.w, b1 = b.off + (size_t)b.c * b.h * b.w;
    return a.off < b1 && b.off < a1;
}

/* ---- Pipelines under construction. */

static const source no_source = {SRC_VIEW, {NO_BUF, 0, 0, 0, 0}, -1, 0};

static source from_view(view v)
{
    source s = {SRC_VIEW, v, -1, v.c};
    return v.buf == NO_BUF ? no_source : s;
}

static source from_up(view v)
{
    source s = {SRC_UP, v, -1, v.c};
    return v.buf == NO_BUF ? no_source : s;
}

static source from_pool(view v)
{
    source s = {SRC_POOL, v, -1, v.c};
    return s;
}

typedef struct {
    node n[PIPE_MAX_NODES];
    int count, h, w;
} pipe;

static source from_node(const pipe *pp, int i)
{
    source s = {SRC_NODE, no_view, i, pp->n[i].conv->cout};
    return s;
}

/* A node convolving cat(a, b) (b may be no_source), with the residual r
 * (or no_source); returns its index. */
static int add_node(pipe *pp, const conv_params *c, int relu, int bias, source a, source b,
                    source r)
{
    node *n = &pp->n[pp->count];
    memset(n, 0, sizeof *n);
    n->conv = c, n->relu = relu, n->bias = bias;
    n->src[n->nsrc++] = a;
    if (b.c)
        n->src[n->nsrc++] = b;
    n->residual = r;
    return pp->count++;
}

static void store_node(pipe *pp, int i, view out, int pool)
{
    pp->n[i].stored = 1, pp->n[i].out = out, pp->n[i].pool_out = pool;
}

/* ---- Scheduling a pipeline: leads, line buffers, windows, kernels' memory. */

static const node *node_of(const plan *pl, const op *o, int i)
{
    return &pl->nodes[o->first_node + i];
}

int pipe_keep(const plan *pl, const op *o, int j, const pipe_state *st)
{
    int keep = st->done[j];
    for (int c = j + 1; c < o->n_nodes; c++) {
        const node *n = node_of(pl, o, c);
        for (int s = 0; s < n->nsrc; s++)
            if (n->src[s].kind == SRC_NODE && n->src[s].node == j) {
                const int lo = st->done[c] - n->conv->dilation;
                keep = lo < keep ? (lo > 0 ? lo : 0) : keep;
            }
        if (n->residual.c && n->residual.kind == SRC_NODE && n->residual.node == j &&
            st->done[c] < keep)
            keep = st->done[c];
    }
    if (node_of(pl, o, j)->delayed && st->stored[j] < keep)
        keep = st->stored[j];
    return keep;
}

static int has_window(const node *n)
{
    for (int s = 0; s < n->nsrc; s++)
        if (n->src[s].kind == SRC_UP || n->src[s].kind == SRC_POOL)
            return 1;
    return 0;
}

static int window_channels(const node *n)
{
    int c = 0;
    for (int s = 0; s < n->nsrc; s++)
        if (n->src[s].kind == SRC_UP || n->src[s].kind == SRC_POOL)
            c += n->src[s].c;
    return c;
}

static int has_line_buffer(const node *n)
{
    return n->consumers > 0 || (n->stored && !n->direct);
}

/* What the pipeline needs with bands of R rows, found by running its
 * schedule: line-buffer and window rows per node (into the nodes), the
 * band memory, and the kernels' workspace and packed weights. */
typedef struct {
    size_t band_floats, scratch_floats, packed_floats;
    int calls[PIPE_MAX_NODES];
} pipe_needs;

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

conv_kernel conv_kernel_for(const conv_params *c, int h, int w)
{
    if (conv3x3_direct_worthwhile(c->cin, c->cout, h, w, c->dilation))
        return CONV_DIRECT;
    if (conv3x3_winograd_worthwhile(c->cin, c->cout, h, w, c->dilation))
        return CONV_WINOGRAD;
    return CONV_IM2COL;
}

/* The kernel workspace a call of node n on h rows needs (the reference
 * kernel, which any run may choose, needs none). */
static size_t call_scratch(const node *n, int h, int w, int threads)
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

/* Runs the schedule with bands of R rows: on the first pass it sets each
 * node's line-buffer and window rows and counts its calls and Winograd
 * calls; on the second (packed decided) it sizes the kernels' workspace. */
static void run_schedule(plan *pl, op *o, int R, int threads, int pass, pipe_needs *need,
                         int wino_calls[])
{
    pipe_state st;
    memset(&st, 0, sizeof st);
    node *nodes = &pl->nodes[o->first_node];
    for (int r0 = 0; r0 < o->h; r0 += R) {
        const int r1 = r0 + R < o->h ? r0 + R : o->h;
        int start[PIPE_MAX_NODES];
        for (int i = 0; i < o->n_nodes; i++) {
            node *n = &nodes[i];
            const int p = st.done[i], q = pipe_node_end(o, n, r1);
            start[i] = p;
            if (q <= p)
                continue;
            if (pass == 0) {
                if (has_line_buffer(n) && (size_t)(q - st.base[i]) > n->lb_rows)
                    n->lb_rows = (size_t)(q - st.base[i]);
                int lo, hi;
                pipe_window(o, n, p, q, &lo, &hi);
                if (has_window(n) && (size_t)(hi - lo) > n->win_rows)
                    n->win_rows = (size_t)(hi - lo);
                need->calls[i]++;
                wino_calls[i] += conv_kernel_for(n->conv, q - p, o->w) == CONV_WINOGRAD;
            } else {
                const size_t s = call_scratch(n, q - p, o->w, threads);
                need->scratch_floats = s > need->scratch_floats ? s : need->scratch_floats;
            }
            st.done[i] = q;
        }
        for (int i = 0; i < o->n_nodes; i++)
            if (nodes[i].delayed)
                st.stored[i] = start[i];
        for (int i = 0; i < o->n_nodes; i++)
            st.base[i] = pipe_keep(pl, o, i, &st);
    }
}

static pipe_needs simulate(plan *pl, op *o, int R, int threads)
{
    pipe_needs need;
    memset(&need, 0, sizeof need);
    int wino_calls[PIPE_MAX_NODES] = {0};
    node *nodes = &pl->nodes[o->first_node];
    for (int i = 0; i < o->n_nodes; i++)
        nodes[i].lb_rows = nodes[i].win_rows = 0;
    run_schedule(pl, o, R, threads, 0, &need, wino_calls);
    size_t off = 0, packed = 0;
    for (int i = 0; i < o->n_nodes; i++) {
        node *n = &nodes[i];
        const conv_params *c = n->conv;
        n->lb_off = off;
        off += round16((size_t)c->cout * n->lb_rows * o->w);
        n->win_off = off;
        off += round16((size_t)window_channels(n) * n->win_rows * o->w);
        /* a layer run with Winograd on several bands packs its weights once */
        const size_t pk = conv3x3_winograd_packed_floats(c->cin, c->cout);
        n->packed = wino_calls[i] > 1 && (packed + pk) * sizeof(float) <= PACKED_BYTES;
        n->packed_off = packed;
        packed += n->packed ? pk : 0;
    }
    run_schedule(pl, o, R, threads, 1, &need, wino_calls);
    need.band_floats = off;
    need.packed_floats = packed;
    return need;
}

/* Leads (the rows a node runs ahead of its consumers), which stored
 * outputs are delayed or direct, and the band height: the largest multiple
 * of BAND_ALIGN (or the whole height) whose buffers fit BAND_BYTES. */
static void schedule(builder *b, op *o)
{
    plan *pl = b->p;
    node *nodes = &pl->nodes[o->first_node];
    for (int i = o->n_nodes - 1; i >= 0; i--) {
        node *n = &nodes[i];
        n->lead = 0, n->consumers = 0;
        for (int c = i + 1; c < o->n_nodes; c++) {
            const node *m = &nodes[c];
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
        node *n = &nodes[i];
        /* Writing a band of out straight away is safe against a reader of
         * the same memory that comes earlier in the band and runs far
         * enough ahead never to read those rows again. */
        n->delayed = 0;
        if (n->stored)
            for (int c = 0; c < o->n_nodes; c++) {
                const node *m = &nodes[c];
                for (int s = 0; s < m->nsrc; s++)
                    n->delayed |= m->src[s].kind != SRC_NODE && views_overlap(m->src[s].v, n->out) &&
                                  !(m->src[s].kind == SRC_VIEW && c < i &&
                                    m->lead - m->conv->dilation >= n->lead);
                n->delayed |= m->residual.c && m->residual.kind == SRC_VIEW &&
                              views_overlap(m->residual.v, n->out) && !(c < i && m->lead >= n->lead);
            }
        n->direct = n->stored && !n->delayed && !n->pool_out && n->consumers == 0;
    }
    pipe_needs need = simulate(pl, o, o->h, b->threads);
    o->band_rows = o->h;
    for (int R = (o->h - 1) / BAND_ALIGN * BAND_ALIGN;
         need.band_floats * sizeof(float) > BAND_BYTES && R >= BAND_ALIGN; R -= BAND_ALIGN) {
        need = simulate(pl, o, R, b->threads);
        o->band_rows = R;
    }
    if (need.band_floats > pl->band_floats)
        pl->band_floats = need.band_floats;
    if (need.scratch_floats > pl->scratch_floats)
        pl->scratch_floats = need.scratch_floats;
    if (need.packed_floats > pl->packed_floats)
        pl->packed_floats = need.packed_floats;
}

static void emit_op(builder *b, const op *o)
{
    plan *p = b->p;
    if (b->oom)
        return;
    if (p->n_ops == p->cap_ops) {
        const int cap = p->cap_ops ? 2 * p->cap_ops : 256;
        op *no = realloc(p->ops, sizeof(op) * cap);
        if (!no) {
            b->oom = 1;
            return;
        }
        p->ops = no, p->cap_ops = cap;
    }
    p->ops[p->n_ops++] = *o;
}

static void emit_pipe(builder *b, const pipe *pp)
{
    plan *p = b->p;
    if (b->oom)
        return;
    if (p->n_nodes + pp->count > p->cap_nodes) {
        const int cap = p->cap_nodes ? 2 * p->cap_nodes : 256;
        node *nn = realloc(p->nodes, sizeof(node) * cap);
        if (!nn) {
            b->oom = 1;
            return;
        }
        p->nodes = nn, p->cap_nodes = cap;
    }
    op o;
    memset(&o, 0, sizeof o);
    o.kind = OP_PIPELINE, o.first_node = p->n_nodes, o.n_nodes = pp->count;
    o.h = pp->h, o.w = pp->w;
    const int at = p->n_ops;
    for (int i = 0; i < pp->count; i++) {
        const node *n = &pp->n[i];
        p->nodes[p->n_nodes++] = *n;
        for (int s = 0; s < n->nsrc; s++)
            touch(p, n->src[s].v, at);
        if (n->residual.c)
            touch(p, n->residual.v, at);
        if (n->stored)
            touch(p, n->out, at);
        if (n->conv->cin > p->max_cin)
            p->max_cin = n->conv->cin;
    }
    schedule(b, &o);
    emit_op(b, &o);
}

static pipe new_pipe(int h, int w)
{
    pipe pp;
    pp.count = 0, pp.h = h, pp.w = w;
    return pp;
}

/* The convolution of cat(up(a), x) (a may be no_view), up resizing a to
 * x's size, into out, plus the residual (or no_view). */
static void conv_upcat(builder *b, const conv_params *c, view a, view x, view out, int relu,
                       view residual)
{
    pipe pp = new_pipe(out.h, out.w);
    const source up = from_up(a), in = from_view(x);
    const int n = add_node(&pp, c, relu, 1, up.c ? up : in, up.c ? in : no_source,
                           from_view(residual));
    store_node(&pp, n, out, 0);
    emit_pipe(b, &pp);
}

static void conv(builder *b, const conv_params *c, view in, view out, int relu, view residual)
{
    conv_upcat(b, c, no_view, in, out, relu, residual);
}

/* The convolution of maxpool2x2_ceil(x). */
static void conv_pooled(builder *b, const conv_params *c, view x, view out, int relu)
{
    pipe pp = new_pipe(out.h, out.w);
    store_node(&pp, add_node(&pp, c, relu, 1, from_pool(x), no_source, no_source), out, 0);
    emit_pipe(b, &pp);
}

static void resize(builder *b, view in, view out)
{
    op o;
    memset(&o, 0, sizeof o);
    o.kind = OP_RESIZE, o.in = in, o.out = out;
    touch(b->p, in, b->p->n_ops);
    touch(b->p, out, b->p->n_ops);
    emit_op(b, &o);
}

/* ---- The network. */

/* Levels 2 .. L of an RSU-L block (L >= 3) and its decoders back up to
 * level 2: from hx1 [mid, h, w] to d2 [mid, h2, w2], which it returns.
 * Buffers, for levels i = 2..L-1 of size h_i x w_i:
 *   cat [2mid, h_{L-1}, w_{L-1}]  the bottom level: slice [mid, 2mid) holds
 *                         hx_{L-1}, slice [0, mid) hx_L (no pooling between)
 *   hx_i [mid, h_i, w_i]  the other levels: the encoder side
 *   d_i [mid, h_i, w_i]   the decoder output at level i, which level i-1's
 *                         convolution reads upsampled, a band at a time
 * The pooled tensors are not stored: the convolutions read them by bands. */
static view emit_rsu_levels(builder *b, const stage_desc *st, view hx1)
{
    const int L = st->height, mid = st->mid_ch;
    const conv_params *c = st->conv;
    int hs[U2NET_MAX_HEIGHT], ws[U2NET_MAX_HEIGHT];
    view hx[U2NET_MAX_HEIGHT];
    hs[1] = hx1.h, ws[1] = hx1.w, hx[1] = hx1;
    for (int i = 2; i < L; i++)
        hs[i] = (hs[i - 1] + 1) / 2, ws[i] = (ws[i - 1] + 1) / 2;
    const view bottom = whole(new_buffer(b, 2 * mid, hs[L - 1], ws[L - 1]), 2 * mid, hs[L - 1],
                              ws[L - 1]);
    for (int i = 2; i < L - 1; i++)
        hx[i] = whole(new_buffer(b, mid, hs[i], ws[i]), mid, hs[i], ws[i]);
    hx[L - 1] = slice(bottom, mid, mid);
    if (b->oom)
        return no_view;
    for (int i = 2; i < L; i++)
        conv_pooled(b, &c[i], hx[i - 1], hx[i], 1);
    conv(b, &c[L], hx[L - 1], slice(bottom, 0, mid), 1, no_view); /* rebnconvL, dilated */
    view d = bottom;
    for (int i = L - 1; i >= 2; i--) {
        const conv_params *ci = &c[2 * L - i]; /* rebnconv{i}d */
        const view dst = whole(new_buffer(b, mid, hs[i], ws[i]), mid, hs[i], ws[i]);
        if (b->oom)
            return no_view;
        if (i == L - 1)
            conv(b, ci, bottom, dst, 1, no_view);
        else
            conv_upcat(b, ci, d, hx[i], dst, 1, no_view);
        d = dst;
    }
    return d;
}

/* One RSU block: x [in_ch, h, w], or cat(up(xa), x) when xa is a view, or
 * maxpool2x2_ceil(x) when pool_x is set, -> y [out_ch, h, w]. RSU-L halves
 * the size from level to level (ceil) and upsamples on the way back
 * (emit_rsu_levels); RSU-F keeps one size and grows the dilation instead.
 *   hxin [out_ch, h, w]   conv_in's output, kept to the residual add; for
 *                         RSU-L it is y itself, which the last convolution
 *                         adds to in place, band by band
 *   cat_i [2mid, h, w]    RSU-F, and RSU-L of height 2: slice [mid, 2mid)
 *                         holds hx_i, slice [0, mid) the decoder feature
 *                         from below
 *   hx1 [mid, h, w]       RSU-L of height 3 or more */
static void emit_rsu(builder *b, const stage_desc *st, view xa, view x, int pool_x, view y)
{
    const int L = st->height, mid = st->mid_ch, f = st->kind == STAGE_RSU_F;
    const conv_params *c = st->conv;
    const int in_place = !f && L >= 3;
    const view hxin =
        in_place ? y : whole(new_buffer(b, st->out_ch, y.h, y.w), st->out_ch, y.h, y.w);
    if (pool_x)
        conv_pooled(b, &c[0], x, hxin, 1);
    else
        conv_upcat(b, &c[0], xa, x, hxin, 1, no_view);
    if (in_place) {
        const view hx1 = whole(new_buffer(b, mid, y.h, y.w), mid, y.h, y.w);
        if (b->oom)
            return;
        conv(b, &c[1], hxin, hx1, 1, no_view);
        const view d2 = emit_rsu_levels(b, st, hx1);
        conv_upcat(b, &c[2 * L - 1], d2, hx1, y, 1, hxin); /* rebnconv1d + hxin */
        return;
    }
    view cat[U2NET_MAX_HEIGHT];
    const int levels = f ? L - 1 : 1;
    for (int i = 1; i <= levels; i++)
        cat[i] = whole(new_buffer(b, 2 * mid, y.h, y.w), 2 * mid, y.h, y.w);
    if (b->oom)
        return;
    conv(b, &c[1], hxin, slice(cat[1], mid, mid), 1, no_view);
    for (int i = 2; i <= levels; i++)
        conv(b, &c[i], slice(cat[i - 1], mid, mid), slice(cat[i], mid, mid), 1, no_view);
    /* rebnconvL: the bottom, no pooling before it */
    conv(b, &c[L], slice(cat[levels], mid, mid), slice(cat[levels], 0, mid), 1, no_view);
    for (int i = levels; i >= 2; i--) /* RSU-F: rebnconv{i}d */
        conv(b, &c[2 * L - i], cat[i], slice(cat[i - 1], 0, mid), 1, no_view);
    conv(b, &c[2 * L - 1], cat[1], y, 1, hxin); /* rebnconv1d + hxin */
}

/* The top level without its largest tensors: the first encoder's output
 * enc1 = rebnconv1d(cat(up(d2), hx1)) + rebnconvin(x) [64, h, w] and the
 * last decoder's hxin and output exist a band at a time. Stored are the
 * narrower hx1 [mid, h, w] and d2 of stage 1, from which enc1 is computed
 * twice: pooled into stage 2's buffer (its input), and again inside stage
 * 1d's first convolution. Stage 1d's output y = hx1d + hxin is read only by
 * side 1, a convolution without ReLU, so side1(y) is computed as
 * side1(hx1d) + side1(hxin) without its bias: the second half along with
 * hxin, the first at the end. It costs the input convolution (3 -> 64)
 * three times and stage 1's rebnconv1d twice (U2NetP: +11% multiply-adds),
 * and saves the arena two 64-channel tensors of the input's size. Needs
 * RSU-L blocks of height 3 or more at the top, as U2Net has. */
static int lean_top_level(const u2net_model *m)
{
    const stage_desc *e1 = &m->stages[0], *d1 = &m->stages[m->n_stages - 1];
    return m->n_levels >= 2 && e1->kind == STAGE_RSU && e1->height >= 3 &&
           d1->kind == STAGE_RSU && d1->height >= 3;
}

/* Stage 1 up to its hx1 and d2 (stored) and the input of stage 2, pooled
 * enc1, into in2 (which stage 2 overwrites in place). */
static void emit_top_encoder(builder *b, view x, view hx1, view *d2, view in2)
{
    const stage_desc *s1 = &b->m->stages[0];
    const conv_params *c = s1->conv;
    pipe pp = new_pipe(x.h, x.w);
    const int hxin = add_node(&pp, &c[0], 1, 1, from_view(x), no_source, no_source);
    store_node(&pp, add_node(&pp, &c[1], 1, 1, from_node(&pp, hxin), no_source, no_source), hx1,
               0);
    emit_pipe(b, &pp);
    *d2 = emit_rsu_levels(b, s1, hx1);
    if (b->oom)
        return;
    pp = new_pipe(x.h, x.w);
    const int again = add_node(&pp, &c[0], 1, 1, from_view(x), no_source, no_source);
    const int enc1 = add_node(&pp, &c[2 * s1->height - 1], 1, 1, from_up(*d2), from_view(hx1),
                              from_node(&pp, again));
    store_node(&pp, enc1, in2, 1);
    emit_pipe(b, &pp);
}

/* Stage 1d from the decoder output below it, into out1 = side1(stage 1d). */
static void emit_top_decoder(builder *b, view x, view hx1, view d2, view below, view out1)
{
    const u2net_model *m = b->m;
    const stage_desc *s1 = &m->stages[0], *s1d = &m->stages[m->n_stages - 1];
    const conv_params *c = s1->conv, *cd = s1d->conv;
    /* stage 1d's hx1 takes stage 1's when it fits: the pipeline reads each
     * row of the old before it writes that row of the new */
    const view hx1d = s1d->mid_ch <= hx1.c
                          ? whole(hx1.buf, s1d->mid_ch, x.h, x.w)
                          : whole(new_buffer(b, s1d->mid_ch, x.h, x.w), s1d->mid_ch, x.h, x.w);
    const view side_in = whole(new_buffer(b, 1, x.h, x.w), 1, x.h, x.w); /* side1(hxin), no bias */
    if (b->oom)
        return;
    pipe pp = new_pipe(x.h, x.w);
    const int hxin1 = add_node(&pp, &c[0], 1, 1, from_view(x), no_source, no_source);
    const int enc1 = add_node(&pp, &c[2 * s1->height - 1], 1, 1, from_up(d2), from_view(hx1),
                              from_node(&pp, hxin1));
    const int hxin = add_node(&pp, &cd[0], 1, 1, from_up(below), from_node(&pp, enc1), no_source);
    store_node(&pp, add_node(&pp, &cd[1], 1, 1, from_node(&pp, hxin), no_source, no_source),
               hx1d, 0);
    store_node(&pp, add_node(&pp, &m->side[0], 0, 0, from_node(&pp, hxin), no_source, no_source),
               side_in, 0);
    emit_pipe(b, &pp);
    const view d2d = emit_rsu_levels(b, s1d, hx1d);
    if (b->oom)
        return;
    pp = new_pipe(x.h, x.w);
    const int y = add_node(&pp, &cd[2 * s1d->height - 1], 1, 1, from_up(d2d), from_view(hx1d),
                           no_source);
    store_node(&pp, add_node(&pp, &m->side[0], 0, 1, from_node(&pp, y), no_source,
                             from_view(side_in)),
               out1, 0);
    emit_pipe(b, &pp);
}

/* The whole network for an input [3, h, w]:
 *   hx1 = stage1(x); hx(k+1) = stage(k+1)(pool(hxk)), the pool read by
 *   stage k+1's first convolution band by band
 *   hxkd = stagekd(cat(up(hx(k+1)d or hxn), hxk)); hxkd takes hxk's buffer,
 *   which its first convolution overwrites band by band behind its reads
 *   out [n+1, h, w]: out[k] = up(side_k(hxkd)) for k < n, up(side_n(hxn)),
 *   out[0] = outconv(out[1..n]); then sigmoid over all of out. The sides
 *   are computed as their decoder stage ends and upsampled at the end.
 * At the top level, with lean_top_level, stage 1 and stage 1d run as
 * emit_top_encoder and emit_top_decoder describe. */
static void emit_network(builder *b, int h, int w)
{
    const u2net_model *m = b->m;
    const int n = m->n_levels, lean = lean_top_level(m);
    int hs[U2NET_MAX_STAGES], ws[U2NET_MAX_STAGES];
    view enc[U2NET_MAX_STAGES];
    const stage_desc *E = m->stages;                  /* E[k-1] = encoder k */
#define DEC(k) (&m->stages[2 * n - 1 - (k)])          /* decoder k, 1 <= k < n */
    hs[1] = h, ws[1] = w;
    for (int k = 2; k <= n; k++)
        hs[k] = (hs[k - 1] + 1) / 2, ws[k] = (ws[k - 1] + 1) / 2;
    for (int k = lean ? 2 : 1; k <= n; k++) {
        const int c = E[k - 1].out_ch;
        enc[k] = whole(new_buffer(b, c, hs[k], ws[k]), c, hs[k], ws[k]);
    }
    const view out = whole(new_buffer(b, n + 1, h, w), n + 1, h, w);
    const view x = whole(BUF_INPUT, m->in_channels, h, w);
    view top_hx1 = no_view, top_d2 = no_view;
    if (lean)
        top_hx1 = whole(new_buffer(b, E[0].mid_ch, h, w), E[0].mid_ch, h, w);
    if (b->oom)
        return;
    b->p->outputs = out;

    int first = 1;
    if (lean) {
        /* stage 2's input, pooled enc1, in front of its output's buffer
         * when it fits there */
        const int c1 = E[0].out_ch;
        const view in2 = c1 <= enc[2].c ? whole(enc[2].buf, c1, hs[2], ws[2])
                                        : whole(new_buffer(b, c1, hs[2], ws[2]), c1, hs[2], ws[2]);
        emit_top_encoder(b, x, top_hx1, &top_d2, in2);
        emit_rsu(b, &E[1], no_view, in2, 0, enc[2]);
        first = 3;
    } else {
        emit_rsu(b, &E[0], no_view, x, 0, enc[1]);
        first = 2;
    }
    for (int k = first; k <= n; k++)
        emit_rsu(b, &E[k - 1], no_view, enc[k - 1], 1, enc[k]);
    view below = enc[n];
    view side[U2NET_MAX_STAGES]; /* side k at its level's size, for k > 1 */
    for (int k = n; k >= 1; k--) {
        if (k == 1 && lean) {
            emit_top_decoder(b, x, top_hx1, top_d2, below, slice(out, 1, 1));
            break;
        }
        if (k < n) {
            const int c = DEC(k)->out_ch;
            const int buf = c <= enc[k].c ? enc[k].buf : new_buffer(b, c, hs[k], ws[k]);
            if (b->oom)
                return;
            const view dst = whole(buf, c, hs[k], ws[k]);
            emit_rsu(b, DEC(k), below, enc[k], 0, dst);
            below = dst;
        }
        /* side k of the decoder output (or of hxn) */
        if (k == 1) {
            conv(b, &m->side[0], below, slice(out, 1, 1), 0, no_view);
        } else {
            side[k] = whole(new_buffer(b, 1, hs[k], ws[k]), 1, hs[k], ws[k]);
            conv(b, &m->side[k - 1], below, side[k], 0, no_view);
        }
    }
    /* upsampled to the input size only now, so that out [n+1, h, w] is not
     * alive while the skip tensors of every level are */
    for (int k = 2; k <= n; k++)
        resize(b, side[k], slice(out, k, 1));
#undef DEC
    op o;
    memset(&o, 0, sizeof o);
    o.kind = OP_CONV1X1, o.in = slice(out, 1, n), o.out = slice(out, 0, 1), o.conv = &m->fuse;
    touch(b->p, out, b->p->n_ops);
    emit_op(b, &o);
    o.kind = OP_SIGMOID, o.in = out, o.out = out, o.conv = NULL;
    emit_op(b, &o);
    b->p->bufs[out.buf].last = b->p->n_ops; /* outputs outlive the run */
}

/* Greedy placement by size: each buffer, largest first, goes to the lowest
 * offset that does not overlap a placed buffer alive at the same time. */
static int place_buffers(plan *p)
{
    const int n = p->n_bufs;
    int *order = malloc(sizeof(int) * (size_t)n);
    int *placed = malloc(sizeof(int) * (size_t)n);
    if (!order || !placed) {
        free(order);
        free(placed);
        return -1;
    }
    /* insertion sort by size, largest first (a few hundred buffers) */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && p->bufs[order[j - 1]].floats < p->bufs[i].floats) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    int n_placed = 0;
    p->arena_floats = 0;
    for (int i = 0; i < n; i++) {
        buffer *b = &p->bufs[order[i]];
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < n_placed; j++) {
                const buffer *o = &p->bufs[placed[j]];
                const int live = !(b->last < o->first || o->last < b->first);
                if (live && off < o->offset + o->floats && o->offset < off + b->floats) {
                    off = o->offset + o->floats;
                    moved = 1;
                }
            }
        }
        b->offset = off;
        placed[n_placed++] = order[i];
        if (off + b->floats > p->arena_floats)
            p->arena_floats = off + b->floats;
    }
    free(order);
    free(placed);
    return 0;
}

int plan_build(plan *p, const u2net_model *m, int h, int w, int threads, u2net_error *err)
{
    memset(p, 0, sizeof *p);
    p->h = h, p->w = w;
    builder b = {p, m, threads, 0};
    emit_network(&b, h, w);
    if (b.oom || place_buffers(p) != 0) {
        plan_free(p);
        set_error(err, U2NET_ENOMEM, "out of memory planning a %dx%d run", h, w);
        return -1;
    }
    return 0;
}

void plan_free(plan *p)
{
    free(p->ops);
    free(p->nodes);
    free(p->bufs);
    memset(p, 0, sizeof *p);
}
