/* graph.c - appending to a graph and asking it simple questions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

static int grow(void **items, int *cap, int n, size_t size)
{
    if (n < *cap)
        return 0;
    const int new_cap = *cap ? 2 * *cap : 64;
    void *p = realloc(*items, size * (size_t)new_cap);
    if (!p)
        return -1;
    *items = p, *cap = new_cap;
    return 0;
}

int graph_add_tensor(graph *g, int c, int h, int w, const char *fmt, ...)
{
    if (g->oom || grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors, sizeof(graph_tensor))) {
        g->oom = 1;
        return -1;
    }
    graph_tensor *t = &g->tensors[g->n_tensors];
    t->c = c, t->h = h, t->w = w;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    return g->n_tensors++;
}

int graph_add_node(graph *g, const graph_node *n)
{
    if (g->oom || grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes, sizeof(graph_node))) {
        g->oom = 1;
        return -1;
    }
    g->nodes[g->n_nodes] = *n;
    return g->n_nodes++;
}

void graph_free(graph *g)
{
    free(g->tensors);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

int graph_copy_tensors(graph *dst, const graph *src)
{
    memset(dst, 0, sizeof *dst);
    dst->tensors = malloc(sizeof(graph_tensor) * (size_t)(src->n_tensors ? src->n_tensors : 1));
    if (!dst->tensors)
        return -1;
    memcpy(dst->tensors, src->tensors, sizeof(graph_tensor) * (size_t)src->n_tensors);
    dst->n_tensors = dst->cap_tensors = src->n_tensors;
    dst->input = src->input;
    dst->n_outputs = src->n_outputs;
    memcpy(dst->outputs, src->outputs, sizeof src->outputs);
    return 0;
}

int graph_node_reads(const graph_node *n, int t)
{
    if (n->residual == t)
        return 1;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i].tensor == t)
            return 1;
    return 0;
}

int graph_last_reader(const graph *g, int t)
{
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (graph_node_reads(&g->nodes[i], t))
            return i;
    return -1;
}

double graph_macs(const graph *g)
{
    double macs = 0.0;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->kind != NODE_CONV3X3 && n->kind != NODE_CONV1X1)
            continue;
        const graph_tensor *o = &g->tensors[n->out];
        macs += (double)n->conv->cin * n->conv->cout * n->conv->k * n->conv->k * o->h * o->w;
    }
    return macs;
}
