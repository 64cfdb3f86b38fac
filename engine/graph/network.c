/* network.c - a model's description (model.h, docs/FORMAT.md) as a graph
 * for one input size: the readable spec of what every network of the
 * family computes. Shapes are [channels, height, width]; level sizes halve
 * rounding up (h2 = (h1 + 1) / 2).
 *
 *   x [3, H, W]
 *   prelude: p = conv3x3(x) (stride s: [c, (H-1)/s + 1, ...]), or pools; -> s1 [C, h1, w1]
 *   hx1 = stage1(s1), hx(k+1) = stage(k+1)(pool(hxk))          [out_k, h_k, w_k]
 *   hx(n-1)d = stage(n-1)d(cat(up(hxn), hx(n-1))), hxkd = stagekd(cat(up(hx(k+1)d), hxk))
 *   side j = conv3x3(its stage's output) [1, h_l, w_l], after that stage;
 *   at the end each resized to [1, H, W]
 *   fuse = conv1x1(cat(side1..sidem)) [1, H, W]
 *   outputs: sigmoid(fuse) (when there is one), sigmoid(side1..sidem)
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "graph.h"

typedef struct {
    graph *g;
    const u2net_model *m;
} builder;

static graph_input whole(int t)
{
    graph_input i = {READ_WHOLE, t};
    return i;
}

static graph_input up(int t)
{
    graph_input i = {READ_UP, t};
    return i;
}

static graph_input pooled(int t)
{
    graph_input i = {READ_POOL, t};
    return i;
}

/* out = act(conv3x3(cat(a, b)) + bias) + residual, b and residual optional
 * (b.tensor, residual < 0: none), read at in_h x in_w. */
static void conv(builder *b, const conv_params *c, int relu, graph_input a, graph_input b2,
                 int in_h, int in_w, int residual, int out)
{
    graph_node n;
    memset(&n, 0, sizeof n);
    n.kind = NODE_CONV3X3, n.conv = c, n.relu = relu, n.bias = 1;
    n.in[n.n_in++] = a;
    if (b2.tensor >= 0)
        n.in[n.n_in++] = b2;
    n.in_h = in_h, n.in_w = in_w;
    n.residual = residual, n.out = out;
    graph_add_node(b->g, &n);
}

static const graph_input none = {READ_WHOLE, -1};

/* One RSU block named sn, reading cat(a, b2) at [in_ch, h, w], into a new
 * tensor [out_ch, h, w] that it returns; records its landmarks in *lm.
 *   hxin [out, h, w] = rebnconvin(input); hx1 [mid, h, w] = rebnconv1(hxin)
 *   RSU-L: hx_i [mid, h_i, w_i] = rebnconv_i(pool(hx_{i-1})), i = 2..L-1, each
 *          level half the size of the one above; hxL = rebnconvL(hx_{L-1})
 *          (dilation 2, no pool); d_{L-1} = rebnconv{L-1}d(cat(hxL, hx_{L-1}));
 *          d_i = rebnconv{i}d(cat(up(d_{i+1}), hx_i)), i = L-2..1
 *   RSU-F: one size; hx_i = rebnconv_i(hx_{i-1}) with dilation 2^(i-1),
 *          i = 2..L; d_i = rebnconv{i}d(cat(d_{i+1} (or hxL), hx_i))
 *   out = d_1 + hxin, computed as rebnconv1d's residual */
static int rsu(builder *b, const stage_desc *st, const char *sn, graph_input a, graph_input b2,
               int h, int w, graph_stage *lm)
{
    graph *g = b->g;
    const int L = st->height, mid = st->mid_ch, f = st->kind == LAYER_RSU_F;
    const conv_params *c = st->conv;
    int hs[U2NET_MAX_HEIGHT + 1], ws[U2NET_MAX_HEIGHT + 1], hx[U2NET_MAX_HEIGHT + 1];
    lm->first_node = g->n_nodes;
    lm->d2 = -1; /* for RSU-L of height 3 or more only */
    const int hxin = graph_add_tensor(g, st->out_ch, h, w, "%s.hxin", sn);
    conv(b, &c[0], 1, a, b2, h, w, -1, hxin);
    hs[1] = h, ws[1] = w;
    hx[1] = graph_add_tensor(g, mid, h, w, "%s.hx1", sn);
    conv(b, &c[1], 1, whole(hxin), none, h, w, -1, hx[1]);
    for (int i = 2; i <= L; i++) {
        const int pool = !f && i < L; /* the bottom level L keeps level L-1's size */
        hs[i] = pool ? (hs[i - 1] + 1) / 2 : hs[i - 1];
        ws[i] = pool ? (ws[i - 1] + 1) / 2 : ws[i - 1];
        hx[i] = graph_add_tensor(g, mid, hs[i], ws[i], "%s.hx%d", sn, i);
        conv(b, &c[i], 1, pool ? pooled(hx[i - 1]) : whole(hx[i - 1]), none, hs[i], ws[i], -1,
             hx[i]);
    }
    int d = hx[L];
    for (int i = L - 1; i >= 1; i--) {
        const conv_params *ci = &c[2 * L - i]; /* rebnconv{i}d */
        const int last = i == 1;
        const int out = last ? graph_add_tensor(g, st->out_ch, h, w, "%s", sn)
                             : graph_add_tensor(g, mid, hs[i], ws[i], "%s.d%d", sn, i);
        /* the bottom decoder and RSU-F read their neighbour at its own size */
        const int same = f || i == L - 1;
        conv(b, ci, 1, same ? whole(d) : up(d), whole(hx[i]), hs[i], ws[i], last ? hxin : -1, out);
        if (i == 2 && !f)
            lm->d2 = out;
        d = out;
    }
    lm->hxin = hxin, lm->hx1 = hx[1], lm->out = d;
    lm->last_node = g->n_nodes - 1;
    return d;
}

/* The prelude on x: returns the tensor stage 1 reads and how (a pool at
 * the end is read by stage 1's first convolution), with its size. */
static graph_input prelude(builder *b, int x, int *h, int *w)
{
    graph *g = b->g;
    const u2net_model *m = b->m;
    int t = x, pending_pool = 0;
    for (int i = 0; i < m->n_prelude; i++) {
        const prelude_layer *p = &m->prelude[i];
        if (pending_pool) { /* two pools in a row: the first is stored */
            const int o = graph_add_tensor(g, g->tensors[t].c, *h, *w, "prelude%d", i);
            graph_node n;
            memset(&n, 0, sizeof n);
            n.kind = NODE_POOL, n.in[0] = whole(t), n.n_in = 1, n.in_h = g->tensors[t].h,
            n.in_w = g->tensors[t].w, n.residual = -1, n.out = o;
            graph_add_node(g, &n);
            t = o, pending_pool = 0;
        }
        if (p->kind == LAYER_POOL) {
            *h = (*h + 1) / 2, *w = (*w + 1) / 2;
            pending_pool = 1;
            continue;
        }
        /* [cout, (h-1)/s + 1, (w-1)/s + 1]: padding = dilation keeps the
         * window centred on every s-th pixel */
        const int in_h = *h, in_w = *w, s = p->conv.stride;
        *h = (in_h - 1) / s + 1, *w = (in_w - 1) / s + 1;
        const int o = graph_add_tensor(g, p->conv.cout, *h, *w, "prelude%d", i + 1);
        conv(b, &p->conv, p->relu, pending_pool ? pooled(t) : whole(t), none, in_h, in_w, -1, o);
        t = o, pending_pool = 0;
    }
    return pending_pool ? pooled(t) : whole(t);
}

static void stage_name(const u2net_model *m, int s, char *buf, size_t n)
{
    if (s < m->n_levels)
        snprintf(buf, n, "stage%d", s + 1);
    else
        snprintf(buf, n, "stage%dd", m->n_stages - s);
}

/* Side convolutions [1, h_l, w_l] of stage s's output, emitted as soon as
 * that output is complete so it need not outlive its other readers. */
static void sides_of(builder *b, int s, int out, int *side_conv)
{
    const u2net_model *m = b->m;
    for (int j = 0; j < m->n_sides; j++) {
        const side_desc *sd = &m->sides[j];
        if (sd->source != s)
            continue;
        const graph_tensor *src = &b->g->tensors[out];
        side_conv[j] = graph_add_tensor(b->g, sd->conv.cout, src->h, src->w, "side%d", j + 1);
        conv(b, &sd->conv, 0, whole(out), none, src->h, src->w, -1, side_conv[j]);
    }
}

int graph_build(graph *g, const u2net_model *m, int H, int W, u2net_error *err)
{
    memset(g, 0, sizeof *g);
    builder b = {g, m};
    const int n = m->n_levels;
    g->input = graph_add_tensor(g, m->in_channels, H, W, "x");
    int h1 = H, w1 = W;
    const graph_input s1 = prelude(&b, g->input, &h1, &w1);

    int hs[U2NET_MAX_STAGES + 1], ws[U2NET_MAX_STAGES + 1], stage_out[U2NET_MAX_STAGES];
    int side_conv[U2NET_MAX_OUTPUTS], side_up[U2NET_MAX_OUTPUTS];
    char sn[24];
    g->n_stages = m->n_stages;
    /* encoders: hx1 = stage1(s1), hx(k+1) = stage(k+1)(pool(hxk)) */
    hs[1] = h1, ws[1] = w1;
    for (int k = 1; k <= n && !g->oom; k++) {
        if (k > 1)
            hs[k] = (hs[k - 1] + 1) / 2, ws[k] = (ws[k - 1] + 1) / 2;
        stage_name(m, k - 1, sn, sizeof sn);
        const graph_input in = k == 1 ? s1 : pooled(stage_out[k - 2]);
        stage_out[k - 1] =
            rsu(&b, &m->stages[k - 1], sn, in, none, hs[k], ws[k], &g->stages[k - 1]);
        sides_of(&b, k - 1, stage_out[k - 1], side_conv);
    }
    /* decoders, deep to shallow: stagekd(cat(up(the one below), hxk)) */
    for (int s = n; s < m->n_stages && !g->oom; s++) {
        const int k = m->n_stages - s; /* decoder k */
        stage_name(m, s, sn, sizeof sn);
        stage_out[s] = rsu(&b, &m->stages[s], sn, up(stage_out[s - 1]), whole(stage_out[k - 1]),
                           hs[k], ws[k], &g->stages[s]);
        sides_of(&b, s, stage_out[s], side_conv);
    }
    /* each side to [1, H, W], last, so that these full-size maps are not
     * alive while the stages run: resized to its target's size, or the
     * side itself when it has that size already */
    for (int j = 0; j < m->n_sides && !g->oom; j++) {
        const side_desc *sd = &m->sides[j];
        const graph_tensor *s = &g->tensors[side_conv[j]];
        const graph_tensor *target = sd->resize_to ? &g->tensors[side_conv[sd->resize_to - 1]] : NULL;
        const int th = target ? target->h : H, tw = target ? target->w : W;
        if (s->h == th && s->w == tw) {
            side_up[j] = side_conv[j];
            continue;
        }
        side_up[j] = graph_add_tensor(g, s->c, th, tw, "side%d.up", j + 1);
        graph_node r;
        memset(&r, 0, sizeof r);
        r.kind = NODE_RESIZE, r.in[0] = whole(side_conv[j]), r.n_in = 1;
        r.in_h = s->h, r.in_w = s->w, r.residual = -1, r.out = side_up[j];
        graph_add_node(g, &r);
    }
    /* fuse [1, H, W] = conv1x1(cat(side1..sidem)) */
    if (m->has_fuse && !g->oom) {
        const int fuse = graph_add_tensor(g, m->fuse.cout, H, W, "fuse");
        graph_node f;
        memset(&f, 0, sizeof f);
        f.kind = NODE_CONV1X1, f.conv = &m->fuse, f.bias = 1;
        for (int j = 0; j < m->n_sides; j++)
            f.in[f.n_in++] = whole(side_up[j]);
        f.in_h = H, f.in_w = W, f.residual = -1, f.out = fuse;
        graph_add_node(g, &f);
        g->outputs[g->n_outputs++] = fuse;
    }
    for (int j = 0; j < m->n_sides; j++)
        g->outputs[g->n_outputs++] = side_up[j];
    if (g->oom) {
        set_error(err, U2NET_ENOMEM, "out of memory building the network for %dx%d", W, H);
        graph_free(g);
        return U2NET_ENOMEM;
    }
    return 0;
}
