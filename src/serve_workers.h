/* serve_workers.h - the worker threads of `u2net serve` and their bounded
 * queue. Each worker owns one context per loaded model (contexts are not
 * shared, models are) and takes one job at a time; a full queue refuses a
 * job instead of growing. */
#ifndef U2NET_SERVE_WORKERS_H
#define U2NET_SERVE_WORKERS_H

#include <stddef.h>

#include "serve_params.h"
#include "serve_process.h"
#include "u2net.h"

typedef struct serve_job serve_job;
struct serve_job {
    serve_params params;         /* params.model picks the context */
    const unsigned char *data;   /* the uploaded image, len bytes, kept by the owner */
    size_t len;
    double deadline;             /* now_seconds() past which the job answers 504 */
    serve_reply reply;           /* filled by the worker */
    /* called on the worker's thread once reply is filled; the job is the
     * owner's again from then on */
    void (*done)(serve_job *job);
    void *owner;
};

typedef struct serve_workers serve_workers;

typedef struct {
    const u2net_model *const *models;
    int n_models;
    int workers;                 /* threads, each with its contexts */
    int queue_capacity;          /* jobs waiting at most (besides those running) */
    size_t max_pixels;           /* of an uploaded image */
    u2net_ctx_opts ctx;          /* how each context runs */
    int net_width, net_height;   /* --size for every request (0: the model's) */
} serve_workers_config;

/* Creates the contexts and starts the workers; each runs every model once
 * on a small image before it takes jobs, so the first request finds its
 * memory planned. Returns when all are ready, or NULL after putting one
 * line in err (*device_error set when the device asked for is the cause). */
serve_workers *serve_workers_start(const serve_workers_config *cfg, char *err, size_t errlen,
                                   int *device_error);

/* Queues a job: 0, or -1 when the queue is full or stopping (the job is
 * not taken). */
int serve_workers_submit(serve_workers *w, serve_job *job);

typedef struct {
    int queued, capacity, busy, workers;
} serve_workers_load;
void serve_workers_get_load(serve_workers *w, serve_workers_load *load);

/* Refuses new jobs (submit fails from then on) and lets the workers finish
 * every queued one; returns when they have ended. */
void serve_workers_finish(serve_workers *w);
/* Frees the contexts and the queue; after serve_workers_finish, once
 * nothing calls the others any more. */
void serve_workers_free(serve_workers *w);

#endif
