/* serve_http.h - the HTTP side of `u2net serve`, on libmicrohttpd: the
 * routes (/, /api/remove, /api/models, /health, /metrics), request bodies
 * read within their limits by one polling thread, and images handed to the
 * workers with their connections suspended until the reply is ready. Built
 * only where libmicrohttpd is (the Makefile leaves it out otherwise). */
#ifndef U2NET_SERVE_HTTP_H
#define U2NET_SERVE_HTTP_H

#include <stddef.h>

#include "serve_metrics.h"
#include "serve_params.h"
#include "serve_workers.h"
#include "u2net.h"

typedef struct {
    const char *host;            /* an address or a name, bound as it resolves first */
    int port;                    /* 0: any free port (serve_http_port says which) */
    size_t max_body;             /* bytes of one request body */
    size_t max_held;             /* bytes of request bodies held at once, all requests */
    double timeout;              /* seconds: a whole request, body and queue included */
    int verbose;                 /* one line per request on stderr */
    const char *const *model_names;
    const u2net_model *const *models;
    int n_models;
    serve_workers *workers;
    serve_metrics *metrics;
} serve_http_config;

typedef struct serve_http serve_http;

/* Binds and starts serving; NULL after one line in err. */
serve_http *serve_http_start(const serve_http_config *cfg, char *err, size_t errlen);
int serve_http_port(const serve_http *h);
/* Stops accepting connections; /health answers 503 "draining" from then on,
 * to connections already open. */
void serve_http_quiesce(serve_http *h);
/* Closes every connection and frees; call when no connection waits for a
 * worker (after serve_workers_finish). */
void serve_http_stop(serve_http *h);

#endif
