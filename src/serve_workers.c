/* serve_workers.c - worker threads and their bounded queue
 * (serve_workers.h). */
#include "serve_workers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The warm-up image: any size plans a context's memory for the model's
 * network input, which every image is resized to. */
#define WARMUP_SIDE 64

typedef struct {
    serve_workers *pool;
    pthread_t thread;
    int started;
    u2net_ctx *ctx[SERVE_MAX_MODELS];
} worker;

struct serve_workers {
    serve_workers_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t has_job;   /* a job was queued, or stopping */
    pthread_cond_t changed;   /* a worker became ready */
    serve_job **ring;         /* cfg.queue_capacity slots */
    int head, count;
    int busy, ready, stopping;
    worker *w;
};

static void warm_up(worker *me)
{
    u2net_image img;
    u2net_error err;
    if (u2net_image_alloc(&img, WARMUP_SIDE, WARMUP_SIDE, 3, &err) != 0)
        return;
    memset(img.data, 128, (size_t)WARMUP_SIDE * WARMUP_SIDE * 3);
    u2net_mask_opts mo;
    u2net_mask_opts_default(&mo);
    mo.net_width = me->pool->cfg.net_width;
    mo.net_height = me->pool->cfg.net_height;
    for (int m = 0; m < me->pool->cfg.n_models; m++) {
        u2net_matte matte;
        /* a failure here shows again, with its reason, on a request */
        if (u2net_matte_image(me->ctx[m], &img, &mo, &matte, &err) == 0)
            u2net_matte_free(&matte);
    }
    u2net_image_free(&img);
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    serve_workers *pool = me->pool;
    warm_up(me);
    pthread_mutex_lock(&pool->lock);
    pool->ready++;
    pthread_cond_broadcast(&pool->changed);
    for (;;) {
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->has_job, &pool->lock);
        if (pool->count == 0)
            break;
        serve_job *job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->cfg.queue_capacity;
        pool->count--;
        pool->busy++;
        pthread_mutex_unlock(&pool->lock);
        serve_params *p = &job->params;
        if (pool->cfg.net_width > 0) {
            p->mask.net_width = pool->cfg.net_width;
            p->mask.net_height = pool->cfg.net_height;
        }
        if (now_seconds() > job->deadline)
            serve_reply_error(&job->reply, 504, "the request waited in the queue longer than the "
                              "server's --timeout");
        else
            serve_process_image(me->ctx[p->model], p, job->data, job->len, pool->cfg.max_pixels,
                                job->deadline, &job->reply);
        job->done(job);
        pthread_mutex_lock(&pool->lock);
        pool->busy--;
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void free_pool(serve_workers *pool)
{
    for (int i = 0; i < pool->cfg.workers; i++)
        for (int m = 0; m < pool->cfg.n_models; m++)
            u2net_ctx_free(pool->w[i].ctx[m]);
    free(pool->w);
    free(pool->ring);
    pthread_cond_destroy(&pool->changed);
    pthread_cond_destroy(&pool->has_job);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* Stops and joins the workers that were started. */
static void join_workers(serve_workers *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->has_job);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->cfg.workers; i++)
        if (pool->w[i].started) {
            pthread_join(pool->w[i].thread, NULL);
            pool->w[i].started = 0;
        }
}

serve_workers *serve_workers_start(const serve_workers_config *cfg, char *err, size_t errlen,
                                   int *device_error)
{
    *device_error = 0;
    serve_workers *pool = calloc(1, sizeof *pool);
    if (!pool) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pool->cfg = *cfg;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->has_job, NULL);
    pthread_cond_init(&pool->changed, NULL);
    pool->ring = calloc((size_t)cfg->queue_capacity, sizeof *pool->ring);
    pool->w = calloc((size_t)cfg->workers, sizeof *pool->w);
    if (!pool->ring || !pool->w) {
        snprintf(err, errlen, "out of memory");
        free_pool(pool);
        return NULL;
    }
    for (int i = 0; i < cfg->workers; i++) {
        pool->w[i].pool = pool;
        for (int m = 0; m < cfg->n_models; m++) {
            u2net_error e;
            pool->w[i].ctx[m] = u2net_ctx_new_opts(cfg->models[m], &cfg->ctx, &e);
            if (!pool->w[i].ctx[m]) {
                snprintf(err, errlen, "%s", e.msg);
                *device_error = e.code == U2NET_EDEVICE;
                free_pool(pool);
                return NULL;
            }
        }
    }
    for (int i = 0; i < cfg->workers; i++) {
        if (pthread_create(&pool->w[i].thread, NULL, worker_main, &pool->w[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d of %d", i + 1, cfg->workers);
            join_workers(pool);
            free_pool(pool);
            return NULL;
        }
        pool->w[i].started = 1;
    }
    pthread_mutex_lock(&pool->lock);
    while (pool->ready < cfg->workers)
        pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return pool;
}

int serve_workers_submit(serve_workers *pool, serve_job *job)
{
    pthread_mutex_lock(&pool->lock);
    const int ok = !pool->stopping && pool->count < pool->cfg.queue_capacity;
    if (ok) {
        pool->ring[(pool->head + pool->count) % pool->cfg.queue_capacity] = job;
        pool->count++;
        pthread_cond_signal(&pool->has_job);
    }
    pthread_mutex_unlock(&pool->lock);
    return ok ? 0 : -1;
}

void serve_workers_get_load(serve_workers *pool, serve_workers_load *load)
{
    pthread_mutex_lock(&pool->lock);
    load->queued = pool->count;
    load->capacity = pool->cfg.queue_capacity;
    load->busy = pool->busy;
    load->workers = pool->cfg.workers;
    pthread_mutex_unlock(&pool->lock);
}

void serve_workers_finish(serve_workers *pool)
{
    join_workers(pool);
}

void serve_workers_free(serve_workers *pool)
{
    free_pool(pool);
}
