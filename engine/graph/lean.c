/* lean.c - the lean top level: a rewrite of the graph that recomputes the
 * largest tensors of the network instead of keeping them.
 *
 * The widest tensors at the largest size are those of the first encoder
 * and the last decoder (U2Net: 64 channels at the input's size). In the
 * plain graph
 *   hxin = rebnconvin(s)                    s: stage 1's input
 *   hx1 = rebnconv1(hxin) ... d2            (stage 1's inner levels)
 *   E = rebnconv1d(cat(up(d2), hx1)) + hxin read by stage 2 (pooled) and stage 1d
 *   hxin' = stage1d.rebnconvin(cat(up(hx2d), E)) ... Y = ... + hxin'
 *   side1 = conv3x3(Y)
 * E and hxin live from stage 1 to the end. The rewrite computes hxin again
 * wherever it is read (three times), computes E twice (for stage 2, and
 * again just before stage 1d), and splits side 1 by linearity:
 *   side1(Y) = side1(Y - hxin') + side1_without_bias(hxin')
 * so that hxin' is read only by its next two nodes. Each of these tensors
 * is then read only by the nodes that follow its producer, which a backend
 * can stream through a few rows instead of storing (cpu/plan.c does). The
 * cost: stage 1's input convolution twice more (and the prelude's, when it
 * reads the network input alone), stage 1's last convolution once more and
 * side 1 once more; U2NetP: +11% multiply-adds. */
#include <string.h>

#include "graph.h"

typedef struct {
    const graph *g;
    graph *out;
    int stem;    /* the node making stage 1's input, recomputed with it, or -1 */
    int copies;
} rewrite;

/* The node, with every read of tensor `from` replaced by `to`. */
static graph_node remapped(const graph_node *n, int from, int to)
{
    graph_node c = *n;
    for (int i = 0; i < c.n_in; i++)
        if (c.in[i].tensor == from)
            c.in[i].tensor = to;
    if (c.residual == from)
        c.residual = to;
    return c;
}

/* A new tensor shaped as t, named after it. */
static int twin(rewrite *r, int t, const char *what)
{
    const graph_tensor *s = &r->g->tensors[t];
    return graph_add_tensor(r->out, s->c, s->h, s->w, "%s.%s%d", s->name, what, ++r->copies);
}

/* hxin computed again, from the stem computed again when there is one. */
static int hxin_again(rewrite *r)
{
    const graph_stage *e = &r->g->stages[0];
    graph_node in = r->g->nodes[e->first_node];
    if (r->stem >= 0) {
        graph_node stem = r->g->nodes[r->stem];
        const int s = twin(r, stem.out, "again");
        in = remapped(&in, stem.out, s);
        stem.out = s;
        graph_add_node(r->out, &stem);
    }
    in.out = twin(r, e->hxin, "again");
    graph_add_node(r->out, &in);
    return in.out;
}

/* Readers of tensor t: how many, and the first and last. */
static int readers(const graph *g, int t, int *first, int *last)
{
    int n = 0;
    *first = *last = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (graph_node_reads(&g->nodes[i], t)) {
            if (*first < 0)
                *first = i;
            *last = i;
            n++;
        }
    for (int k = 0; k < g->n_outputs; k++)
        n += g->outputs[k] == t ? 2 : 0; /* an output is read at the end */
    return n;
}

int graph_lean_top_level(const graph *g, graph *out)
{
    if (g->n_stages < 3)
        return 0;
    const graph_stage *e = &g->stages[0], *d = &g->stages[g->n_stages - 1];
    if (e->d2 < 0 || d->d2 < 0)
        return 0;
    /* E: read by stage 2 and stage 1d alone; Y: by one plain convolution,
     * side 1, right after stage 1d; hxin': by rebnconv1 and the residual */
    int first, last, side1 = d->last_node + 1;
    if (readers(g, e->out, &first, &last) != 2 || first != g->stages[1].first_node ||
        last != d->first_node)
        return 0;
    if (readers(g, d->out, &first, &last) != 1 || first != side1)
        return 0;
    const graph_node *s1 = &g->nodes[side1];
    if (s1->kind != NODE_CONV3X3 || s1->relu || s1->residual >= 0 || s1->n_in != 1 ||
        s1->in[0].kind != READ_WHOLE)
        return 0;
    if (readers(g, d->hxin, &first, &last) != 2 || last != d->last_node ||
        g->nodes[d->last_node].residual != d->hxin)
        return 0;
    const graph_node *in1 = &g->nodes[e->first_node];
    if (in1->n_in != 1 || in1->in[0].kind != READ_WHOLE ||
        g->nodes[e->last_node].residual != e->hxin)
        return 0;
    rewrite r = {g, out, -1, 0};
    /* a prelude convolution of the network input alone, read by stage 1
     * alone, is recomputed with hxin rather than kept */
    const int s = in1->in[0].tensor;
    if (s != g->input && e->first_node > 0) {
        const graph_node *p = &g->nodes[e->first_node - 1];
        int alone = p->out == s && p->kind == NODE_CONV3X3 && p->residual < 0;
        for (int i = 0; i < p->n_in; i++)
            alone &= p->in[i].tensor == g->input;
        if (!alone || readers(g, s, &first, &last) != 1)
            return 0;
        r.stem = e->first_node - 1;
    }

    if (graph_copy_tensors(out, g) != 0)
        return -1;
    int side_part = -1;
    for (int i = 0; i < g->n_nodes && !out->oom; i++) {
        graph_node n = g->nodes[i];
        if (i == r.stem)
            continue; /* made again with each hxin */
        if (i == e->first_node) {
            /* stage 1's hxin for rebnconv1, the next node */
            const int h = hxin_again(&r);
            graph_node next = remapped(&g->nodes[++i], e->hxin, h);
            graph_add_node(out, &next);
        } else if (i == e->last_node) {
            /* E for stage 2, with its own hxin */
            n.residual = hxin_again(&r);
            graph_add_node(out, &n);
        } else if (i == d->first_node) {
            /* E again for stage 1d; then hxin', rebnconv1 of it, and the
             * half of side 1 that reads it */
            graph_node again = g->nodes[e->last_node];
            again.residual = hxin_again(&r);
            again.out = twin(&r, e->out, "again");
            graph_add_node(out, &again);
            graph_node first_d = remapped(&n, e->out, again.out);
            graph_add_node(out, &first_d);
            graph_add_node(out, &g->nodes[++i]);
            graph_node part = *s1;
            part.bias = 0;
            part.in[0].tensor = d->hxin;
            part.out = side_part = twin(&r, s1->out, "part");
            graph_add_node(out, &part);
        } else if (i == d->last_node) {
            n.residual = -1; /* added through side 1 instead */
            graph_add_node(out, &n);
        } else if (i == side1) {
            n.residual = side_part;
            graph_add_node(out, &n);
        } else {
            graph_add_node(out, &n);
        }
    }
    if (out->oom) {
        graph_free(out);
        return -1;
    }
    return 1;
}
