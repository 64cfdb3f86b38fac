/* plan.c - turns the stage table into a flat list of operations for one
 * input size, and places every intermediate tensor in one arena by lifetime.
 *
 * Concatenation never copies: each cat(a, b) is one buffer [ca + cb, h, w]
 * whose two channel slices are written directly by the producers of a and b.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

enum { NO_BUF = -2 };

typedef struct {
    plan *p;
    const u2net_model *m;
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

static void emit(builder *b, op_kind kind, view in, view out, const conv_params *conv, int relu,
                 view residual)
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
    op *o = &p->ops[p->n_ops];
    o->kind = kind, o->in = in, o->out = out, o->conv = conv, o->relu = relu;
    o->residual = residual;
    o->winograd = kind == OP_CONV3X3 &&
                  conv3x3_winograd_worthwhile(conv->cin, conv->cout, in.h, in.w, conv->dilation);
    touch(p, in, p->n_ops);
    touch(p, out, p->n_ops);
    touch(p, residual, p->n_ops);
    if (kind == OP_CONV3X3) {
        /* either kernel may run: the reference mode can be switched per run */
        size_t s = conv3x3_scratch_floats(conv->cin);
        if (o->winograd) {
            const int nb = conv->cout < U2NET_WINOGRAD_COUT_BLOCK ? conv->cout
                                                                  : U2NET_WINOGRAD_COUT_BLOCK;
            const size_t sw = conv3x3_winograd_scratch_floats(conv->cin, nb);
            const size_t pw = conv3x3_winograd_packed_floats(conv->cin, nb);
            s = sw > s ? sw : s;
            if (pw > p->packed_floats)
                p->packed_floats = pw;
        }
        if (s > p->scratch_floats)
            p->scratch_floats = s;
    }
    p->n_ops++;
}

static const view no_view = {NO_BUF, 0, 0, 0, 0};

static void conv(builder *b, const conv_params *c, view in, view out, int relu, view residual)
{
    emit(b, OP_CONV3X3, in, out, c, relu, residual);
}

static void pool(builder *b, view in, view out) { emit(b, OP_MAXPOOL, in, out, NULL, 0, no_view); }
static void resize(builder *b, view in, view out) { emit(b, OP_RESIZE, in, out, NULL, 0, no_view); }

/* One RSU block: x [in_ch, h, w] -> y [out_ch, h, w]. Buffers:
 *   hxin [out, h, w]                      lives to the residual add
 *   cat_i [2*mid, h_i, w_i], i = 1..L-1   slice [mid, 2mid) holds hx_i (the
 *                                          encoder side), slice [0, mid) the
 *                                          decoder feature from below
 * RSU-L halves the size from level to level (ceil) and upsamples on the way
 * back; RSU-F keeps one size and grows the dilation instead. */
static void emit_rsu(builder *b, const stage_desc *st, view x, view y)
{
    const int L = st->height, mid = st->mid_ch, f = st->kind == STAGE_RSU_F;
    const conv_params *c = st->conv;
    int hs[U2NET_MAX_HEIGHT], ws[U2NET_MAX_HEIGHT];
    view cat[U2NET_MAX_HEIGHT];
    hs[1] = x.h, ws[1] = x.w;
    for (int i = 2; i < L; i++) {
        hs[i] = f ? hs[i - 1] : (hs[i - 1] + 1) / 2;
        ws[i] = f ? ws[i - 1] : (ws[i - 1] + 1) / 2;
    }
    const view hxin = whole(new_buffer(b, st->out_ch, x.h, x.w), st->out_ch, x.h, x.w);
    for (int i = 1; i < L; i++)
        cat[i] = whole(new_buffer(b, 2 * mid, hs[i], ws[i]), 2 * mid, hs[i], ws[i]);
    if (b->oom)
        return;
    conv(b, &c[0], x, hxin, 1, no_view);
    conv(b, &c[1], hxin, slice(cat[1], mid, mid), 1, no_view);
    for (int i = 2; i < L; i++) {
        view src = slice(cat[i - 1], mid, mid);
        if (!f) {
            const view pooled = whole(new_buffer(b, mid, hs[i], ws[i]), mid, hs[i], ws[i]);
            pool(b, src, pooled);
            src = pooled;
        }
        conv(b, &c[i], src, slice(cat[i], mid, mid), 1, no_view);
    }
    /* rebnconvL: the bottom, no pooling before it */
    conv(b, &c[L], slice(cat[L - 1], mid, mid), slice(cat[L - 1], 0, mid), 1, no_view);
    for (int i = L - 1; i >= 2; i--) {
        const conv_params *ci = &c[2 * L - i]; /* rebnconv{i}d */
        const view up_dst = slice(cat[i - 1], 0, mid);
        if (f) {
            conv(b, ci, cat[i], up_dst, 1, no_view);
        } else {
            const view d = whole(new_buffer(b, mid, hs[i], ws[i]), mid, hs[i], ws[i]);
            conv(b, ci, cat[i], d, 1, no_view);
            resize(b, d, up_dst);
        }
    }
    conv(b, &c[2 * L - 1], cat[1], y, 1, hxin); /* rebnconv1d + hxin */
}

/* The whole network for an input [3, h, w]:
 *   hx1 = stage1(x); hx(k+1) = stage(k+1)(pool(hxk))
 *   hxkd = stagekd(cat(up(hx(k+1)d or hxn), hxk)), written into top_k
 *   out [n+1, h, w]: out[k] = up(side_k(hxkd)) for k < n, up(side_n(hxn)),
 *   out[0] = outconv(out[1..n]); then sigmoid over all of out. */
static void emit_network(builder *b, int h, int w)
{
    const u2net_model *m = b->m;
    const int n = m->n_levels;
    int hs[U2NET_MAX_STAGES], ws[U2NET_MAX_STAGES];
    view top[U2NET_MAX_STAGES], enc[U2NET_MAX_STAGES];
    const stage_desc *E = m->stages;                  /* E[k-1] = encoder k */
#define DEC(k) (&m->stages[2 * n - 1 - (k)])          /* decoder k, 1 <= k < n */
    hs[1] = h, ws[1] = w;
    for (int k = 2; k <= n; k++)
        hs[k] = (hs[k - 1] + 1) / 2, ws[k] = (ws[k - 1] + 1) / 2;
    for (int k = 1; k < n; k++) {
        const int up_c = k + 1 == n ? E[n - 1].out_ch : DEC(k + 1)->out_ch;
        const int c = up_c + E[k - 1].out_ch;
        top[k] = whole(new_buffer(b, c, hs[k], ws[k]), c, hs[k], ws[k]);
        enc[k] = slice(top[k], up_c, E[k - 1].out_ch);
    }
    enc[n] = whole(new_buffer(b, E[n - 1].out_ch, hs[n], ws[n]), E[n - 1].out_ch, hs[n], ws[n]);
    const view out = whole(new_buffer(b, n + 1, h, w), n + 1, h, w);
    if (b->oom)
        return;
    b->p->outputs = out;

    view x = whole(BUF_INPUT, 3, h, w);
    for (int k = 1; k <= n; k++) {
        if (k > 1) {
            const int c = E[k - 2].out_ch;
            x = whole(new_buffer(b, c, hs[k], ws[k]), c, hs[k], ws[k]);
            if (b->oom)
                return;
            pool(b, enc[k - 1], x);
        }
        emit_rsu(b, &E[k - 1], x, enc[k]);
    }
    view below = enc[n];
    for (int k = n; k >= 1; k--) {
        if (k < n) {
            resize(b, below, slice(top[k], 0, below.c));
            const int c = DEC(k)->out_ch;
            below = whole(new_buffer(b, c, hs[k], ws[k]), c, hs[k], ws[k]);
            if (b->oom)
                return;
            emit_rsu(b, DEC(k), top[k], below);
        }
        /* side k of the decoder output (or of hxn), upsampled to the input size */
        const view dst = slice(out, k, 1);
        if (k == 1) {
            conv(b, &m->side[0], below, dst, 0, no_view);
        } else {
            const view s = whole(new_buffer(b, 1, hs[k], ws[k]), 1, hs[k], ws[k]);
            conv(b, &m->side[k - 1], below, s, 0, no_view);
            resize(b, s, dst);
        }
    }
#undef DEC
    emit(b, OP_CONV1X1, slice(out, 1, n), slice(out, 0, 1), &m->fuse, 0, no_view);
    emit(b, OP_SIGMOID, out, out, NULL, 0, no_view);
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

int plan_build(plan *p, const u2net_model *m, int h, int w, u2net_error *err)
{
    memset(p, 0, sizeof *p);
    p->h = h, p->w = w;
    builder b = {p, m, 0};
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
    free(p->bufs);
    memset(p, 0, sizeof *p);
}
