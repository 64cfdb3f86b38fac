/* bands.c - the band iterator: which rows each node of a pipeline computes
 * in each band, and what each line buffer stores and keeps after it. Both
 * the planner (sizing the line buffers, windows and kernel workspace) and
 * the executor (running the pipeline) walk the bands with it, so the sizes
 * are those of the run by construction. */
#include <string.h>

#include "cpu.h"

static const pipe_node *node_of(const cpu_plan *pl, const op *o, int i)
{
    return &pl->nodes[o->first_node + i];
}

/* After a band: the first row node j must keep, for its consumers' next
 * windows and for its own rows not yet stored. */
static int pipe_keep(const cpu_plan *pl, const op *o, int j, const pipe_state *st)
{
    int keep = st->done[j];
    for (int c = j + 1; c < o->n_nodes; c++) {
        const pipe_node *n = node_of(pl, o, c);
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

/* After a band whose rows of node j began at start[j]: the rows of stored
 * nodes go to their tensors (the band's rows, or with delayed stores those
 * of the band before), and each line buffer keeps only the rows still
 * needed. */
static void end_band(const cpu_plan *pl, const op *o, pipe_state *st, const int *start,
                     const band_visitor *v, void *ctx)
{
    band_end e;
    const pipe_state before = *st;
    int any = 0;
    for (int j = 0; j < o->n_nodes; j++) {
        const pipe_node *n = node_of(pl, o, j);
        e.from[j] = e.to[j] = 0;
        if (n->delayed)
            e.from[j] = st->stored[j], e.to[j] = start[j], st->stored[j] = start[j];
        else if (n->stored && !n->direct)
            e.from[j] = start[j], e.to[j] = st->done[j];
        e.keep[j] = pipe_keep(pl, o, j, st);
        e.moves[j] = n->lb_rows && e.keep[j] > st->base[j] && st->done[j] > e.keep[j];
        any |= e.to[j] > e.from[j] || e.moves[j];
    }
    if (any && v->finish)
        v->finish(ctx, o, &before, &e);
    for (int j = 0; j < o->n_nodes; j++)
        st->base[j] = e.keep[j];
}

void pipe_walk(const cpu_plan *pl, const op *o, int band_rows, const band_visitor *v, void *ctx)
{
    pipe_state st;
    memset(&st, 0, sizeof st);
    int start[PIPE_MAX_NODES];
    for (int r0 = 0; r0 < o->h; r0 += band_rows) {
        const int r1 = r0 + band_rows < o->h ? r0 + band_rows : o->h;
        for (int j = 0; j < o->n_nodes; j++) {
            const int p = st.done[j], q = pipe_node_end(o, node_of(pl, o, j), r1);
            start[j] = p;
            if (q > p) {
                v->compute(ctx, o, j, &st, p, q);
                st.done[j] = q;
            }
        }
        end_band(pl, o, &st, start, v, ctx);
    }
    /* the last band of delayed stores */
    for (int j = 0; j < o->n_nodes; j++)
        start[j] = st.done[j];
    end_band(pl, o, &st, start, v, ctx);
}
