/* serve_http.c - the routes and request bodies of `u2net serve` on
 * libmicrohttpd (serve_http.h).
 *
 * One polling thread of libmicrohttpd's (epoll where there is one) reads
 * every connection: a slow client costs a connection, never a worker. A
 * POST /api/remove is checked on its headers (method, Content-Length
 * against --max-body, Content-Type, the bytes all bodies may hold at once)
 * before any of its body is read; the body is then gathered (the raw image,
 * or the multipart field `file`, by libmicrohttpd's form parser) within the
 * same limits and the --timeout. The image is queued to the workers with
 * the connection suspended, and the connection resumed by the worker when
 * its reply is ready. */
#include "serve_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve_page.h"
#include "serve_process.h"
#include "serve_text.h"
#include "util.h"

/* Form fields besides the image: how many, and how long each may be. */
#define MAX_FIELDS 64
#define MAX_FIELD_KEY 64
#define MAX_FIELD_VALUE 1024
/* libmicrohttpd's form parser buffer */
#define POST_BUFFER_BYTES 16384
/* Connections at once, at most (fewer when the file limit is lower). */
#define MAX_CONNECTIONS 1000
#define RESERVED_DESCRIPTORS 64

struct serve_http {
    serve_http_config cfg;
    struct MHD_Daemon *daemon;
    int port;
    atomic_int draining;
    pthread_mutex_t lock;
    size_t held;               /* body bytes reserved by all requests */
};

typedef struct {
    char key[MAX_FIELD_KEY];
    char value[MAX_FIELD_VALUE];
    size_t len;
} field;

typedef struct {
    serve_http *srv;
    struct MHD_Connection *conn;
    serve_route route;
    double start;
    int answered;
    struct MHD_PostProcessor *form;   /* multipart or urlencoded bodies */
    unsigned char *body;               /* the image: the raw body or the file field */
    size_t len, cap;
    size_t received;                   /* body bytes read off the connection */
    size_t reserved;                   /* of srv->held */
    int file_fields;                   /* image fields seen */
    field *fields;                     /* the other form fields */
    int n_fields;
    int refuse_status;                 /* found while the body came: answered at its end */
    char refuse_msg[384];
    serve_job job;
    int queued;
    atomic_int job_done;
} request;

/* ---- replies ---- */

static void add_common_headers(struct MHD_Response *resp, const char *content_type)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

/* Sends reply (its body is handed to libmicrohttpd, which frees it). */
static enum MHD_Result send_reply(request *rq, serve_reply *reply)
{
    static const char no_memory[] = "{\"error\": \"out of memory\", \"status\": 503}\n";
    struct MHD_Response *resp;
    int status = reply->status;
    if (reply->body) {
        resp = MHD_create_response_from_buffer(reply->len, reply->body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(reply->body);
    } else {
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        resp = MHD_create_response_from_buffer(sizeof no_memory - 1, (void *)no_memory,
                                               MHD_RESPMEM_PERSISTENT);
    }
    reply->body = NULL;
    if (!resp)
        return MHD_NO;
    add_common_headers(resp, reply->content_type ? reply->content_type : "application/json");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                rq->route == ROUTE_REMOVE ? "POST" : "GET, HEAD");
    if (atomic_load(&rq->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    const enum MHD_Result ok = MHD_queue_response(rq->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        rq->answered = 1;
        serve_metrics_answered(rq->srv->cfg.metrics, rq->route, status, now_seconds() - rq->start);
        if (rq->srv->cfg.verbose)
            fprintf(stderr, "u2net serve: %s %d %.0f ms\n", serve_route_path(rq->route), status,
                    1000 * (now_seconds() - rq->start));
    }
    return ok;
}

static enum MHD_Result send_error(request *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(request *rq, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    serve_reply r;
    serve_reply_error(&r, status, "%s", msg);
    return send_reply(rq, &r);
}

static enum MHD_Result send_text(request *rq, char *text, size_t len, const char *content_type)
{
    if (!text)
        return send_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    serve_reply r = {MHD_HTTP_OK, content_type, (unsigned char *)text, len};
    return send_reply(rq, &r);
}

static enum MHD_Result send_page(request *rq)
{
    size_t len;
    const char *page = serve_page(&len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)page, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    add_common_headers(resp, "text/html; charset=utf-8");
    /* the page is one file: its own script and style, images it makes itself */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src "
                            "'unsafe-inline'; img-src blob: data:; connect-src 'self'; "
                            "form-action 'none'; frame-ancestors 'none'");
    const enum MHD_Result ok = MHD_queue_response(rq->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        rq->answered = 1;
        serve_metrics_answered(rq->srv->cfg.metrics, rq->route, MHD_HTTP_OK,
                               now_seconds() - rq->start);
    }
    return ok;
}

/* ---- the JSON routes ---- */

static void append_model(text_buf *t, const char *name, const u2net_model *m, int is_default)
{
    u2net_model_info info;
    u2net_model_get_info(m, &info);
    text_appendf(t, "{\"name\": ");
    text_append_json(t, name);
    text_appendf(t, ", \"architecture\": ");
    text_append_json(t, info.architecture);
    text_appendf(t, ", \"input_size\": [%d, %d], \"params\": %zu, \"default\": %s}",
                 info.processing.width, info.processing.height, info.params,
                 is_default ? "true" : "false");
}

static enum MHD_Result send_models(request *rq)
{
    const serve_http_config *c = &rq->srv->cfg;
    text_buf t = {0};
    text_appendf(&t, "{\"models\": [");
    for (int i = 0; i < c->n_models; i++) {
        text_appendf(&t, "%s", i ? ", " : "");
        append_model(&t, c->model_names[i], c->models[i], i == 0);
    }
    text_appendf(&t, "]}\n");
    size_t len;
    char *s = text_take(&t, &len);
    return send_text(rq, s, len, "application/json");
}

static enum MHD_Result send_health(request *rq)
{
    const serve_http_config *c = &rq->srv->cfg;
    serve_workers_load load;
    serve_workers_get_load(c->workers, &load);
    size_t rss, peak;
    serve_process_memory(&rss, &peak);
    const int draining = atomic_load(&rq->srv->draining);
    text_buf t = {0};
    text_appendf(&t, "{\"status\": \"%s\", \"version\": \"%s\", \"models\": [",
                 draining ? "draining" : "ok", U2NET_VERSION_STRING);
    for (int i = 0; i < c->n_models; i++) {
        text_appendf(&t, "%s", i ? ", " : "");
        text_append_json(&t, c->model_names[i]);
    }
    text_appendf(&t, "], \"workers\": %d, \"busy\": %d, \"queued\": %d, \"queue_capacity\": %d, "
                     "\"in_flight\": %d, \"rss_bytes\": %zu}\n",
                 load.workers, load.busy, load.queued, load.capacity,
                 serve_metrics_in_flight(c->metrics), rss);
    size_t len;
    char *s = text_take(&t, &len);
    serve_reply r = {draining ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, "application/json",
                     (unsigned char *)s, len};
    if (!s)
        return send_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return send_reply(rq, &r);
}

static enum MHD_Result send_metrics(request *rq)
{
    serve_workers_load load;
    serve_workers_get_load(rq->srv->cfg.workers, &load);
    size_t len;
    char *s = serve_metrics_text(rq->srv->cfg.metrics, &load, &len);
    return send_text(rq, s, len, "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- request bodies ---- */

/* Takes n more bytes of the budget all bodies share; 0, or -1 when it is
 * spent. */
static int reserve(request *rq, size_t n)
{
    serve_http *h = rq->srv;
    pthread_mutex_lock(&h->lock);
    const int ok = h->held + n <= h->cfg.max_held;
    if (ok)
        h->held += n;
    pthread_mutex_unlock(&h->lock);
    if (ok)
        rq->reserved += n;
    return ok ? 0 : -1;
}

static void release(request *rq)
{
    serve_http *h = rq->srv;
    pthread_mutex_lock(&h->lock);
    h->held -= rq->reserved;
    pthread_mutex_unlock(&h->lock);
    rq->reserved = 0;
}

static void refuse(request *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(request *rq, int status, const char *fmt, ...)
{
    if (rq->refuse_status)
        return;
    rq->refuse_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->refuse_msg, sizeof rq->refuse_msg, fmt, ap);
    va_end(ap);
}

static int append_image(request *rq, const char *data, size_t size)
{
    if (rq->len + size > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 65536;
        while (cap < rq->len + size)
            cap *= 2;
        if (cap > rq->srv->cfg.max_body)
            cap = rq->srv->cfg.max_body;
        unsigned char *b = realloc(rq->body, cap);
        if (!b) {
            refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory reading the upload");
            return -1;
        }
        rq->body = b;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, size);
    rq->len += size;
    return 0;
}

static int is_image_field(const char *key, const char *filename)
{
    return filename || !strcmp(key, "file") || !strcmp(key, "image");
}

/* libmicrohttpd's form parser: each field's data, in pieces at offset off. */
static enum MHD_Result on_form_data(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data, uint64_t off,
                                    size_t size)
{
    (void)kind, (void)content_type, (void)transfer_encoding;
    request *rq = cls;
    if (rq->refuse_status)
        return MHD_NO;
    if (!key)
        key = "";
    if (is_image_field(key, filename)) {
        if (off == 0 && ++rq->file_fields > 1) {
            refuse(rq, MHD_HTTP_BAD_REQUEST, "one image per request (a second file field '%.40s')",
                   key);
            return MHD_NO;
        }
        return size == 0 || append_image(rq, data, size) == 0 ? MHD_YES : MHD_NO;
    }
    field *f;
    if (off == 0) {
        if (rq->n_fields == MAX_FIELDS) {
            refuse(rq, MHD_HTTP_BAD_REQUEST, "more than %d form fields", MAX_FIELDS);
            return MHD_NO;
        }
        if (strlen(key) >= MAX_FIELD_KEY) {
            refuse(rq, MHD_HTTP_BAD_REQUEST, "a form field name longer than %d bytes",
                   MAX_FIELD_KEY - 1);
            return MHD_NO;
        }
        if (!rq->fields && !(rq->fields = calloc(MAX_FIELDS, sizeof *rq->fields))) {
            refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory reading the form");
            return MHD_NO;
        }
        f = &rq->fields[rq->n_fields++];
        snprintf(f->key, sizeof f->key, "%s", key);
        f->len = 0;
    } else {
        f = &rq->fields[rq->n_fields - 1];
    }
    if (f->len + size >= MAX_FIELD_VALUE) {
        refuse(rq, MHD_HTTP_BAD_REQUEST, "form field '%s' is longer than %d bytes", f->key,
               MAX_FIELD_VALUE - 1);
        return MHD_NO;
    }
    memcpy(f->value + f->len, data, size);
    f->len += size;
    f->value[f->len] = '\0';
    return MHD_YES;
}

/* Takes a piece of the body; -1 when the connection is to be closed
 * without an answer. libmicrohttpd queues an answer only on the headers or
 * after the whole body, so a refusal found part way is answered once the
 * rest has been read and dropped (within --max-body); a body that outgrows
 * --max-body without a Content-Length, or outlasts --timeout, cannot be
 * answered and is cut off. */
static int take_body(request *rq, const char *data, size_t size)
{
    const serve_http_config *c = &rq->srv->cfg;
    if (now_seconds() - rq->start > c->timeout || size > c->max_body - rq->received)
        return -1;
    rq->received += size;
    if (rq->refuse_status)
        return 0;
    if (rq->received > rq->reserved && reserve(rq, rq->received - rq->reserved) != 0) {
        refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "the server holds as many uploads as it may; "
               "try again");
        return 0;
    }
    if (rq->form) {
        if (MHD_post_process(rq->form, data, size) != MHD_YES)
            refuse(rq, MHD_HTTP_BAD_REQUEST, "malformed form data");
    } else {
        append_image(rq, data, size);
    }
    return 0;
}

/* The Content-Type's media type, lower case, without its parameters. */
static void media_type(const char *content_type, char *out, size_t n)
{
    size_t k = 0;
    for (const char *c = content_type ? content_type : ""; *c && *c != ';' && k + 1 < n; c++)
        if (*c != ' ' && *c != '\t')
            out[k++] = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    out[k] = '\0';
}

/* The first call of a POST /api/remove, on its headers alone: refuses what
 * the headers already show is too large or not an image, before any of the
 * body is read. */
static enum MHD_Result start_upload(request *rq)
{
    const serve_http_config *c = &rq->srv->cfg;
    const char *length = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        char *end;
        const unsigned long long n = strtoull(length, &end, 10);
        if (*end || n > c->max_body)
            return send_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "the body of %s bytes is over the "
                              "server's --max-body of %zu bytes", length, c->max_body);
        if (reserve(rq, (size_t)n) != 0)
            return send_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "the server holds as many "
                              "uploads as it may; try again");
    }
    const char *ctype = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    char type[96];
    media_type(ctype, type, sizeof type);
    if (!strcmp(type, "multipart/form-data") || !strcmp(type, "application/x-www-form-urlencoded")) {
        rq->form = MHD_create_post_processor(rq->conn, POST_BUFFER_BYTES, on_form_data, rq);
        if (!rq->form)
            return send_error(rq, MHD_HTTP_BAD_REQUEST, "malformed form: a multipart body needs "
                              "its boundary in the Content-Type");
        return MHD_YES;
    }
    if (*type && strncmp(type, "image/", 6) && strcmp(type, "application/octet-stream"))
        return send_error(rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Content-Type %.60s is not taken: "
                          "send multipart/form-data with the field 'file', or the image itself "
                          "(image/*, application/octet-stream)", type);
    return MHD_YES;
}

typedef struct {
    serve_params *p;
    const serve_http_config *c;
    int failed;
} params_walk;

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    params_walk *w = cls;
    if (serve_params_set(w->p, key, value ? value : "", w->c->model_names, w->c->n_models) != 0) {
        w->failed = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Called by a worker's thread when the reply is ready. */
static void on_job_done(serve_job *job)
{
    request *rq = job->owner;
    atomic_store(&rq->job_done, 1);
    MHD_resume_connection(rq->conn);
}

/* The body is whole: the parameters, then the image to the workers. */
static enum MHD_Result finish_upload(request *rq)
{
    const serve_http_config *c = &rq->srv->cfg;
    if (rq->form) {
        const enum MHD_Result whole = MHD_destroy_post_processor(rq->form);
        rq->form = NULL;
        if (whole != MHD_YES)
            refuse(rq, MHD_HTTP_BAD_REQUEST, "malformed or truncated form data");
    }
    if (rq->refuse_status)
        return send_error(rq, rq->refuse_status, "%s", rq->refuse_msg);
    serve_params *p = &rq->job.params;
    serve_params_init(p);
    params_walk w = {p, c, 0};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, on_query_arg, &w);
    for (int i = 0; i < rq->n_fields && !w.failed; i++)
        on_query_arg(&w, MHD_POSTDATA_KIND, rq->fields[i].key, rq->fields[i].value);
    if (w.failed || serve_params_finish(p) != 0)
        return send_error(rq, MHD_HTTP_BAD_REQUEST, "%s", p->error);
    if (rq->len == 0)
        return send_error(rq, MHD_HTTP_BAD_REQUEST, "no image: send it as the multipart field "
                          "'file', or as the body itself");
    rq->job.data = rq->body;
    rq->job.len = rq->len;
    rq->job.deadline = rq->start + c->timeout;
    rq->job.done = on_job_done;
    rq->job.owner = rq;
    /* suspended before it is queued, so that the worker's resume always
     * finds it suspended */
    MHD_suspend_connection(rq->conn);
    rq->queued = 1;
    if (serve_workers_submit(c->workers, &rq->job) != 0) {
        serve_reply_error(&rq->job.reply, MHD_HTTP_SERVICE_UNAVAILABLE, "all %s; try again",
                          atomic_load(&rq->srv->draining) ? "workers are finishing: the server is "
                          "stopping" : "workers are busy and the queue is full");
        on_job_done(&rq->job);
    }
    return MHD_YES;
}

/* ---- routing ---- */

static serve_route route_of(const char *url)
{
    if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
        return ROUTE_PAGE;
    if (!strcmp(url, "/api/remove"))
        return ROUTE_REMOVE;
    if (!strcmp(url, "/api/models"))
        return ROUTE_MODELS;
    if (!strcmp(url, "/health"))
        return ROUTE_HEALTH;
    if (!strcmp(url, "/metrics"))
        return ROUTE_METRICS;
    return ROUTE_OTHER;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state)
{
    (void)version;
    request *rq = *state;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->srv = cls;
        rq->conn = conn;
        rq->start = now_seconds();
        rq->route = route_of(url);
        *state = rq;
        serve_metrics_started(rq->srv->cfg.metrics);
        const int get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
        switch (rq->route) {
        case ROUTE_REMOVE:
            if (!strcmp(method, MHD_HTTP_METHOD_POST))
                return start_upload(rq);
            if (MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "url"))
                return send_error(rq, MHD_HTTP_BAD_REQUEST, "GET /api/remove?url=: this server "
                                  "fetches no URL (a server that fetches URLs for its clients can "
                                  "be made to reach hosts they cannot); POST the image itself");
            return send_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "/api/remove takes POST with the "
                              "image");
        case ROUTE_OTHER:
            return send_error(rq, MHD_HTTP_NOT_FOUND, "no such path (/, /api/remove, /api/models, "
                              "/health, /metrics)");
        default:
            if (!get)
                return send_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "%s takes GET",
                                  serve_route_path(rq->route));
            return rq->route == ROUTE_PAGE     ? send_page(rq)
                   : rq->route == ROUTE_MODELS ? send_models(rq)
                   : rq->route == ROUTE_HEALTH ? send_health(rq)
                                               : send_metrics(rq);
        }
    }
    if (rq->answered)
        return *upload_size = 0, MHD_YES;
    if (*upload_size) {
        const int rc = take_body(rq, upload_data, *upload_size);
        *upload_size = 0;
        return rc == 0 ? MHD_YES : MHD_NO;
    }
    if (!rq->queued)
        return finish_upload(rq);
    if (!atomic_load(&rq->job_done))
        return MHD_YES;
    return send_reply(rq, &rq->job.reply);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    request *rq = *state;
    if (!rq)
        return;
    serve_metrics_ended(rq->srv->cfg.metrics, rq->answered);
    if (rq->form)
        MHD_destroy_post_processor(rq->form);
    release(rq);
    serve_reply_free(&rq->job.reply);
    free(rq->fields);
    free(rq->body);
    free(rq);
    *state = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    const serve_http *h = cls;
    if (!h->cfg.verbose)
        return;
    fputs("u2net serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* The connections the file limit leaves room for (raised to its hard
 * limit first). */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 256;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > MAX_CONNECTIONS + RESERVED_DESCRIPTORS)
        return MAX_CONNECTIONS;
    return rl.rlim_cur > 2 * RESERVED_DESCRIPTORS ? (unsigned)(rl.rlim_cur - RESERVED_DESCRIPTORS)
                                                 : 16;
}

serve_http *serve_http_start(const serve_http_config *cfg, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    const int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "--host %s: %s", cfg->host, gai_strerror(gai));
        return NULL;
    }
    serve_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    pthread_mutex_init(&h->lock, NULL);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->timeout + 0.999),
        MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %d (in use, or not an address of this "
                 "machine)", cfg->host, cfg->port);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    return h;
}

int serve_http_port(const serve_http *h)
{
    return h->port;
}

void serve_http_quiesce(serve_http *h)
{
    atomic_store(&h->draining, 1);
    const MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void serve_http_stop(serve_http *h)
{
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
