/* cancel.h - a context's request to stop its run (u2net_ctx_cancel): set
 * from any thread or from a signal handler, looked at by the backends
 * between the steps of a run (layers, bands and row chunks of a layer, so
 * that a step is short at any input size). */
#ifndef U2NET_CANCEL_H
#define U2NET_CANCEL_H

typedef struct cancel_flag cancel_flag; /* context.c: a lock-free atomic int */

/* Whether f (NULL: never) asks the run to stop. */
int cancel_requested(const cancel_flag *f);

#endif
