/* serve_metrics.h - what `GET /metrics` of `u2net serve` reports, in
 * Prometheus's text format: requests by route and status, failed requests,
 * the latency histogram of /api/remove, requests in flight, connections
 * dropped by their clients, the queue, and the process's resident memory. */
#ifndef U2NET_SERVE_METRICS_H
#define U2NET_SERVE_METRICS_H

#include <stddef.h>

#include "serve_workers.h"

typedef enum {
    ROUTE_PAGE, ROUTE_REMOVE, ROUTE_MODELS, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_OTHER, ROUTE_COUNT
} serve_route;

/* The path a route is reported under. */
const char *serve_route_path(serve_route r);

typedef struct serve_metrics serve_metrics;

serve_metrics *serve_metrics_new(void);
void serve_metrics_free(serve_metrics *m);

/* A request's headers arrived: it is in flight until serve_metrics_ended. */
void serve_metrics_started(serve_metrics *m);
/* A request's answer, with its status, queued after seconds. */
void serve_metrics_answered(serve_metrics *m, serve_route r, int status, double seconds);
/* A request ended: its answer sent, or none (answered 0: the client went
 * away, or the server closed a connection that broke a limit before it
 * could answer). */
void serve_metrics_ended(serve_metrics *m, int answered);
int serve_metrics_in_flight(serve_metrics *m);

/* The text of GET /metrics (malloc'd), or NULL when out of memory. */
char *serve_metrics_text(serve_metrics *m, const serve_workers_load *load, size_t *len);

/* The process's resident and peak resident memory in bytes (0 where
 * /proc cannot say). */
void serve_process_memory(size_t *rss, size_t *peak);

#endif
