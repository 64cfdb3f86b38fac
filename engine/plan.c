/* plan.c - turns the stage table into a flat list of operations for one
 * input size, and places every intermediate tensor in one arena by lifetime.
 *
 * Concatenation never copies: a cat(a, b) of two tensors of one size is one
 * buffer [ca + cb, h, w] whose two channel slices are written directly by the
 * producers of a and b; a cat(up(a), b) that only a convolution reads is not
 * stored at all: the convolution runs in bands of rows, each reading its
 * window of up(a) and b (context.c). Pooled tensors are read the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

enum { NO_BUF = -2 };

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

/* Rows of output per band of a banded convolution (internal.h): the band's
 * input window (its rows plus one above and below) and output together take
 * about BAND_BYTES, but at least 32 window rows so that the rows computed
 * twice at band edges stay a small part (2 / 30 at most); a window's rows
 * are a multiple of 4, the Winograd tile height. */
enum { BAND_BYTES = 8 << 20, BAND_MIN_ROWS = 30 };

static int band_rows(int cin, int cout, int h, int w)
{
    const size_t row_floats = (size_t)(cin + cout) * w;
    const size_t fit = BAND_BYTES / sizeof(float) / row_floats;
    if (fit >= (size_t)h)
        return h;
    int rows = fit > BAND_MIN_ROWS + 2 ? (int)fit - 2 : BAND_MIN_ROWS;
    rows = (rows + 2) / 4 * 4 - 2;
    return rows < h ? rows : h;
}

static void emit(builder *b, op_kind kind, view up, int pool_in, view in, view out,
                 const conv_params *conv, int relu, view residual)
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
    o->kind = kind, o->up = up, o->pool_in = pool_in, o->in = in, o->out = out;
    o->conv = conv, o->relu = relu, o->residual = residual;
    o->band_rows = out.h;
    o->winograd = 0;
    touch(p, up, p->n_ops);
    touch(p, in, p->n_ops);
    touch(p, out, p->n_ops);
    touch(p, residual, p->n_ops);
    if (kind == OP_CONV3X3) {
        int rows = out.h; /* of the input the kernel sees */
        if (is_banded(o)) {
            o->band_rows = band_rows(conv->cin, conv->cout, out.h, out.w);
            rows = band_window_rows(o);
            const size_t bf = (size_t)(conv->cin + conv->cout) * rows * out.w;
            p->band_floats = bf > p->band_floats ? bf : p->band_floats;
        }
        o->winograd =
            conv3x3_winograd_worthwhile(conv->cin, conv->cout, rows, out.w, conv->dilation);
        /* the reference kernel needs none; it can be chosen for any run */
        size_t s = o->winograd ? conv3x3_winograd_workspace_floats(conv->cin, conv->cout, rows,
                                                                   out.w, conv->dilation,
                                                                   b->threads)
                               : (size_t)b->threads * conv3x3_scratch_floats(conv->cin);
        if (s > p->scratch_floats)
            p->scratch_floats = s;
    }
    p->n_ops++;
}

static const view no_view = {NO_BUF, 0, 0, 0, 0};

static void conv(builder *b, const conv_params *c, view in, view out, int relu, view residual)
{
    emit(b, OP_CONV3X3, no_view, 0, in, out, c, relu, residual);
}

/* The convolution of cat(up(a), x), up resizing a to x's size. */
static void conv_upcat(builder *b, const conv_params *c, view a, view x, view out, int relu,
                       view residual)
{
    emit(b, OP_CONV3X3, a, 0, x, out, c, relu, residual);
}

/* The convolution of maxpool2x2_ceil(x). */
static void conv_pooled(builder *b, const conv_params *c, view x, view out, int relu)
{
    emit(b, OP_CONV3X3, no_view, 1, x, out, c, relu, no_view);
}

static void resize(builder *b, view in, view out)
{
    emit(b, OP_RESIZE, no_view, 0, in, out, NULL, 0, no_view);
}

/* One RSU block: x [in_ch, h, w], or cat(up(xa), x) when xa is a view, or
 * maxpool2x2_ceil(x) when pool_x is set, -> y [out_ch, h, w]. RSU-L halves the size from level to level (ceil) and
 * upsamples on the way back; RSU-F keeps one size and grows the dilation
 * instead. Buffers, for levels i = 1..L-1 of size h_i x w_i:
 *   hxin [out_ch, h, w]   conv_in's output, kept to the residual add; for
 *                         RSU-L it is y itself, which the last convolution
 *                         adds to in place, band by band
 *   cat_i [2mid, h_i, w_i] for RSU-F, and RSU-L's bottom level L-1: slice
 *                         [mid, 2mid) holds hx_i (the encoder side), slice
 *                         [0, mid) the decoder feature from below
 *   hx_i [mid, h_i, w_i]  RSU-L's other levels: the encoder side alone
 *   d_i [mid, h_i, w_i]   RSU-L's decoder output at level i, which level
 *                         i-1's convolution reads upsampled: the upsampled
 *                         copy only ever exists one band at a time
 * RSU-L's pooled tensors are not stored either: the convolutions read them
 * band by band. */
static void emit_rsu(builder *b, const stage_desc *st, view xa, view x, int pool_x, view y)
{
    const int L = st->height, mid = st->mid_ch, f = st->kind == STAGE_RSU_F;
    const conv_params *c = st->conv;
    int hs[U2NET_MAX_HEIGHT], ws[U2NET_MAX_HEIGHT];
    view cat[U2NET_MAX_HEIGHT], hx[U2NET_MAX_HEIGHT];
    hs[1] = y.h, ws[1] = y.w;
    for (int i = 2; i < L; i++) {
        hs[i] = f ? hs[i - 1] : (hs[i - 1] + 1) / 2;
        ws[i] = f ? ws[i - 1] : (ws[i - 1] + 1) / 2;
    }
    /* the last convolution reads cat(up(d_2), hx_1) by bands only in RSU-L
     * with levels below the first */
    const int in_place = !f && L >= 3;
    const view hxin =
        in_place ? y : whole(new_buffer(b, st->out_ch, y.h, y.w), st->out_ch, y.h, y.w);
    for (int i = 1; i < L; i++) {
        if (f || i == L - 1) {
            cat[i] = whole(new_buffer(b, 2 * mid, hs[i], ws[i]), 2 * mid, hs[i], ws[i]);
            hx[i] = slice(cat[i], mid, mid);
        } else {
            cat[i] = no_view;
            hx[i] = whole(new_buffer(b, mid, hs[i], ws[i]), mid, hs[i], ws[i]);
        }
    }
    if (b->oom)
        return;
    if (pool_x)
        conv_pooled(b, &c[0], x, hxin, 1);
    else
        conv_upcat(b, &c[0], xa, x, hxin, 1, no_view);
    conv(b, &c[1], hxin, hx[1], 1, no_view);
    for (int i = 2; i < L; i++) {
        if (f)
            conv(b, &c[i], hx[i - 1], hx[i], 1, no_view);
        else
            conv_pooled(b, &c[i], hx[i - 1], hx[i], 1);
    }
    /* rebnconvL: the bottom, no pooling before it */
    conv(b, &c[L], hx[L - 1], slice(cat[L - 1], 0, mid), 1, no_view);
    if (f) {
        for (int i = L - 1; i >= 2; i--) /* rebnconv{i}d */
            conv(b, &c[2 * L - i], cat[i], slice(cat[i - 1], 0, mid), 1, no_view);
        conv(b, &c[2 * L - 1], cat[1], y, 1, hxin); /* rebnconv1d + hxin */
        return;
    }
    view d = cat[L - 1];
    for (int i = L - 1; i >= 1; i--) {
        const conv_params *ci = &c[2 * L - i]; /* rebnconv{i}d */
        const view dst = i == 1 ? y : whole(new_buffer(b, mid, hs[i], ws[i]), mid, hs[i], ws[i]);
        const view residual = i == 1 ? hxin : no_view;
        if (b->oom)
            return;
        if (i == L - 1)
            conv(b, ci, cat[i], dst, 1, residual);
        else
            conv_upcat(b, ci, d, hx[i], dst, 1, residual);
        d = dst;
    }
}

/* The whole network for an input [3, h, w]:
 *   hx1 = stage1(x); hx(k+1) = stage(k+1)(pool(hxk)), the pool read by
 *   stage k+1's first convolution band by band
 *   hxkd = stagekd(cat(up(hx(k+1)d or hxn), hxk)); hxkd takes hxk's buffer,
 *   which its first convolution overwrites band by band behind its reads
 *   out [n+1, h, w]: out[k] = up(side_k(hxkd)) for k < n, up(side_n(hxn)),
 *   out[0] = outconv(out[1..n]); then sigmoid over all of out. The sides
 *   are computed as their decoder stage ends and upsampled at the end. */
static void emit_network(builder *b, int h, int w)
{
    const u2net_model *m = b->m;
    const int n = m->n_levels;
    int hs[U2NET_MAX_STAGES], ws[U2NET_MAX_STAGES];
    view enc[U2NET_MAX_STAGES];
    const stage_desc *E = m->stages;                  /* E[k-1] = encoder k */
#define DEC(k) (&m->stages[2 * n - 1 - (k)])          /* decoder k, 1 <= k < n */
    hs[1] = h, ws[1] = w;
    for (int k = 2; k <= n; k++)
        hs[k] = (hs[k - 1] + 1) / 2, ws[k] = (ws[k - 1] + 1) / 2;
    for (int k = 1; k <= n; k++) {
        const int c = E[k - 1].out_ch;
        enc[k] = whole(new_buffer(b, c, hs[k], ws[k]), c, hs[k], ws[k]);
    }
    const view out = whole(new_buffer(b, n + 1, h, w), n + 1, h, w);
    if (b->oom)
        return;
    b->p->outputs = out;

    emit_rsu(b, &E[0], no_view, whole(BUF_INPUT, 3, h, w), 0, enc[1]);
    for (int k = 2; k <= n; k++)
        emit_rsu(b, &E[k - 1], no_view, enc[k - 1], 1, enc[k]);
    view below = enc[n];
    view side[U2NET_MAX_STAGES]; /* side k at its level's size, for k > 1 */
    for (int k = n; k >= 1; k--) {
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
    emit(b, OP_CONV1X1, no_view, 0, slice(out, 1, n), slice(out, 0, 1), &m->fuse, 0, no_view);
    emit(b, OP_SIGMOID, no_view, 0, out, out, NULL, 0, no_view);
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
    free(p->bufs);
    memset(p, 0, sizeof *p);
}
