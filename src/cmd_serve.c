/* cmd_serve.c - `u2net serve`: background removal over HTTP, rembg's API
 * and this program's own, with a web page (u2net serve --help).
 *
 * The models load once; each of N workers gets a context per model and
 * plans its memory before the server listens; requests queue to the
 * workers through a bounded queue (serve_workers.c) from libmicrohttpd's
 * polling thread (serve_http.c). SIGTERM or SIGINT stops accepting
 * connections, lets the requests in flight finish, and exits 0. Built
 * without libmicrohttpd, the command says how to get it. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "paths.h"
#include "serve_metrics.h"
#include "serve_params.h"
#include "serve_workers.h"
#include "u2net.h"
#include "util.h"
#ifdef U2NET_WITH_HTTP
#include "serve_http.h"
#endif

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 7000
#define DEFAULT_WORKERS 2
#define MAX_WORKERS 256
#define DEFAULT_QUEUE 64
#define MAX_QUEUE 65536
#define DEFAULT_MAX_BODY_MB 50
#define MAX_MAX_BODY_MB 2048
#define DEFAULT_MAX_PIXELS 40000000L
#define MAX_MAX_PIXELS 1000000000L
#define DEFAULT_TIMEOUT_S 60
#define MAX_TIMEOUT_S 86400
/* bodies held at once: enough for every worker and as many waiting, and
 * never less than this */
#define MIN_HELD_BYTES (256u << 20)
/* after a stop signal, the requests in flight get the --timeout and this */
#define DRAIN_GRACE_S 5

/* Without libmicrohttpd the command is only its one line (cmd_serve), so
 * the options are built only with it. */
#ifdef U2NET_WITH_HTTP

static const char help_text[] =
    "usage: u2net serve [OPTIONS]\n"
    "\n"
    "Background removal over HTTP: rembg's API (POST /api/remove) and this\n"
    "program's own, a web page at /, GET /api/models, /health and /metrics\n"
    "(Prometheus). The models load once, before the server listens.\n"
    "\n"
    "  --host ADDR          address to listen on (default " DEFAULT_HOST ": this machine\n"
    "                       only; 0.0.0.0 or :: for every network, which lets\n"
    "                       anyone who reaches the port use the server)\n"
    "  --port N             port, 0..65535 (default 7000, rembg's; 0 picks a free one)\n"
    "  -m, --model NAME|PATH  a model, as for the image command (repeatable, up to 8;\n"
    "                       the first is the default; default " BUILTIN_MODEL_NAME "). Requests\n"
    "                       choose one with model=NAME: the name given, or a path's\n"
    "                       file name without its extension\n"
    "  --workers N          images processed at once, 1..256 (default 2)\n"
    "  --threads N          CPU threads of each worker, 1..1024 (default the cores\n"
    "                       shared among the workers)\n"
    "  --device cpu|cuda    where the network runs (default cpu)\n"
    "  --size N | WxH       network input size for every request (default the model's)\n"
    "  --queue N            images that may wait for a worker, 1..65536 (default 64);\n"
    "                       past that a request is answered 503 at once\n"
    "  --max-body MB        largest request body, 1..2048 (default 50); a larger one\n"
    "                       is answered 413 before it is read\n"
    "  --max-pixels N       largest image, checked on its header (default 40000000)\n"
    "  --timeout S          seconds a request may take, upload and queue included,\n"
    "                       1..86400 (default 60): a slower upload is cut off, a\n"
    "                       slower answer is 504\n"
    "  -v, --verbose        one line per request on stderr\n"
    "  -h, --help           this text\n"
    "\n"
    "POST /api/remove takes the image as the multipart field 'file' or as the body,\n"
    "with rembg's parameters (model, a, af, ab, ae, om, ppm, bgc=R,G,B,A) or this\n"
    "program's (type=prob|mask|rgba|rgb|composite|crop|bbox|highlight, format=png|jpg,\n"
    "threshold, refine, fg-threshold, ... as the image command's options) in the\n"
    "query string or the form. The server reads no file a request names and\n"
    "fetches no URL (rembg's ?url= is answered 400).\n"
    "\n"
    "  u2net serve --port 7000 -m u2netp -m isnet --workers 2\n"
    "  curl -F file=@photo.jpg http://127.0.0.1:7000/api/remove -o cutout.png\n"
    "  curl --data-binary @photo.jpg 'http://127.0.0.1:7000/api/remove?type=mask' -o mask.png\n";

typedef struct {
    const char *host;
    long port, workers, threads, queue, max_body_mb, max_pixels, timeout;
    int verbose;
    int net_width, net_height;
    u2net_device device;
    const char *model_args[SERVE_MAX_MODELS];
    int n_models;
} serve_options;

/* 0, 1 after --help, or 2 after a usage error (said). */
static int parse_serve_options(int argc, char **argv, serve_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = DEFAULT_HOST;
    o->port = DEFAULT_PORT;
    o->workers = DEFAULT_WORKERS;
    o->queue = DEFAULT_QUEUE;
    o->max_body_mb = DEFAULT_MAX_BODY_MB;
    o->max_pixels = DEFAULT_MAX_PIXELS;
    o->timeout = DEFAULT_TIMEOUT_S;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help_text, stdout);
            return 1;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        static const char *const with_value[] = {"--host", "--port", "-m", "--model",
                                                 "--workers", "--threads", "--device", "--size",
                                                 "--queue", "--max-body", "--max-pixels",
                                                 "--timeout"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= !strcmp(a, with_value[k]);
        if (!known) {
            print_error("serve: unknown option '%s' (see u2net serve --help)", a);
            return 2;
        }
        if (i + 1 >= argc) {
            print_error("serve: %s: missing value", a);
            return 2;
        }
        const char *v = argv[++i];
        struct {
            const char *name;
            long *out, lo, hi;
        } numbers[] = {{"--port", &o->port, 0, 65535},
                       {"--workers", &o->workers, 1, MAX_WORKERS},
                       {"--threads", &o->threads, 1, 1024},
                       {"--queue", &o->queue, 1, MAX_QUEUE},
                       {"--max-body", &o->max_body_mb, 1, MAX_MAX_BODY_MB},
                       {"--max-pixels", &o->max_pixels, 1, MAX_MAX_PIXELS},
                       {"--timeout", &o->timeout, 1, MAX_TIMEOUT_S}};
        int done = 0;
        for (size_t k = 0; k < sizeof numbers / sizeof *numbers && !done; k++) {
            if (strcmp(a, numbers[k].name))
                continue;
            if (parse_int(v, numbers[k].lo, numbers[k].hi, numbers[k].out) != 0) {
                print_error("serve: %s: '%s' is not a whole number in %ld..%ld", a, v,
                            numbers[k].lo, numbers[k].hi);
                return 2;
            }
            done = 1;
        }
        if (done)
            continue;
        if (!strcmp(a, "--host")) {
            if (!*v) {
                print_error("serve: --host: empty address");
                return 2;
            }
            o->host = v;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!*v) {
                print_error("serve: %s: empty model name", a);
                return 2;
            }
            if (o->n_models == SERVE_MAX_MODELS) {
                print_error("serve: at most %d models", SERVE_MAX_MODELS);
                return 2;
            }
            o->model_args[o->n_models++] = v;
        } else if (!strcmp(a, "--device")) {
            if (device_from_name(v, &o->device) != 0) {
                print_error("serve: --device: unknown device '%s' (cpu or cuda)", v);
                return 2;
            }
        } else if (!strcmp(a, "--size")) {
            long w, h;
            const char *x = strchr(v, 'x');
            char first[16];
            int ok;
            if (!x) {
                ok = parse_int(v, 1, U2NET_MAX_SIDE, &w) == 0;
                h = w;
            } else {
                const size_t n = (size_t)(x - v);
                ok = n > 0 && n < sizeof first;
                if (ok) {
                    memcpy(first, v, n);
                    first[n] = '\0';
                    ok = parse_int(first, 1, U2NET_MAX_SIDE, &w) == 0 &&
                         parse_int(x + 1, 1, U2NET_MAX_SIDE, &h) == 0;
                }
            }
            if (!ok || w * h > U2NET_MAX_PIXELS) {
                print_error("serve: --size: '%s' is not a size (N or WxH, 1..%d a side, at most "
                            "%d pixels)", v, U2NET_MAX_SIDE, U2NET_MAX_PIXELS);
                return 2;
            }
            o->net_width = (int)w;
            o->net_height = (int)h;
        }
    }
    if (o->n_models == 0)
        o->model_args[o->n_models++] = BUILTIN_MODEL_NAME;
    return 0;
}

typedef struct {
    char *names[SERVE_MAX_MODELS];
    u2net_model *models[SERVE_MAX_MODELS];
    int count;
} loaded_models;

static void free_models(loaded_models *l)
{
    for (int i = 0; i < l->count; i++) {
        u2net_model_free(l->models[i]);
        free(l->names[i]);
    }
    l->count = 0;
}

/* A request's name for -m ARG: the name itself, or a path's file name
 * without its extension. */
static char *model_request_name(const char *arg)
{
    const char *base = strrchr(arg, '/');
    base = base ? base + 1 : arg;
    const char *dot = strrchr(base, '.');
    const int is_path = strchr(arg, '/') || is_model_file_name(arg);
    const size_t n = is_path && dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, n);
}

/* Finds and loads every -m; 0, or 1 after saying why not. */
static int load_models(const serve_options *o, loaded_models *l)
{
    for (int i = 0; i < o->n_models; i++) {
        const char *arg = o->model_args[i];
        char *name = model_request_name(arg);
        if (!name) {
            print_error("serve: out of memory");
            return 1;
        }
        for (int k = 0; k < l->count; k++)
            if (!strcmp(l->names[k], name)) {
                print_error("serve: two models would be named '%s' (-m %s)", name, arg);
                free(name);
                return 1;
            }
        u2net_model *m = model_open("serve: ", arg);
        if (!m) {
            free(name);
            return 1;
        }
        l->names[l->count] = name;
        l->models[l->count++] = m;
    }
    return 0;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* Waits for SIGTERM or SIGINT (blocked in every thread, so only this one
 * takes them), then drains: no new connections, the requests in flight
 * answered. Returns the exit status. */
static int wait_and_drain(serve_http *http, serve_metrics *metrics, const sigset_t *stops,
                          double drain_s)
{
    int sig = 0;
    while (sigwait(stops, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    const int left = serve_metrics_in_flight(metrics);
    fprintf(stderr, "u2net serve: %s: finishing %d request%s in flight, then stopping\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", left, left == 1 ? "" : "s");
    serve_http_quiesce(http);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const struct timespec tick = {0, 20 * 1000 * 1000};
    while (serve_metrics_in_flight(metrics) > 0) {
        if (seconds_since(&t0) > drain_s) {
            print_error("serve: %d request%s still in flight after %.0f s; stopping without them",
                        serve_metrics_in_flight(metrics),
                        serve_metrics_in_flight(metrics) == 1 ? "" : "s", drain_s);
            return 1;
        }
        /* a second signal stops at once */
        siginfo_t si;
        if (sigtimedwait(stops, &si, &tick) > 0) {
            print_error("serve: second signal: stopping without the requests in flight");
            return 1;
        }
    }
    return 0;
}

static int run_server(const serve_options *o, loaded_models *l)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    serve_workers_config wc;
    memset(&wc, 0, sizeof wc);
    wc.models = (const u2net_model *const *)l->models;
    wc.n_models = l->count;
    wc.workers = (int)o->workers;
    wc.queue_capacity = (int)o->queue;
    wc.max_pixels = (size_t)o->max_pixels;
    wc.net_width = o->net_width;
    wc.net_height = o->net_height;
    u2net_ctx_opts_default(&wc.ctx);
    wc.ctx.device = o->device;
    wc.ctx.threads = o->threads ? (int)o->threads : (int)(cores / o->workers > 0 ? cores / o->workers : 1);
    /* every thread started from here on (the workers, their OpenMP teams,
     * libmicrohttpd's) inherits the blocked stop signals; only sigwait
     * takes them */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    int device_error = 0;
    serve_workers *workers = serve_workers_start(&wc, err, sizeof err, &device_error);
    if (!workers) {
        print_error("serve: %s%s", device_error ? "--device cuda: " : "", err);
        return device_error ? 2 : 1;
    }
    serve_metrics *metrics = serve_metrics_new();
    serve_http *http = NULL;
    if (metrics) {
        const size_t max_body = (size_t)o->max_body_mb << 20;
        size_t held = max_body * (size_t)(2 * o->workers + 2);
        if (held < MIN_HELD_BYTES)
            held = MIN_HELD_BYTES;
        serve_http_config hc = {o->host, (int)o->port, max_body, held, (double)o->timeout,
                                o->verbose, (const char *const *)l->names,
                                (const u2net_model *const *)l->models, l->count, workers, metrics};
        http = serve_http_start(&hc, err, sizeof err);
    } else {
        snprintf(err, sizeof err, "out of memory");
    }
    int rc = 1;
    if (http) {
        const int v6 = strchr(o->host, ':') != NULL;
        fprintf(stderr, "u2net serve: listening on http://%s%s%s:%d/ (model%s", v6 ? "[" : "",
                o->host, v6 ? "]" : "", serve_http_port(http), l->count == 1 ? "" : "s");
        for (int i = 0; i < l->count; i++)
            fprintf(stderr, " %s", l->names[i]);
        fprintf(stderr, "; %ld worker%s x %d thread%s, queue %ld)\n", o->workers,
                o->workers == 1 ? "" : "s", wc.ctx.threads, wc.ctx.threads == 1 ? "" : "s",
                o->queue);
        rc = wait_and_drain(http, metrics, &stops, (double)o->timeout + DRAIN_GRACE_S);
        /* the workers first: they answer what is still queued (504 by now,
         * after a drain that ran out of time) and so resume every suspended
         * connection, which libmicrohttpd needs before it stops */
        serve_workers_finish(workers);
        serve_http_stop(http);
        if (rc == 0)
            fprintf(stderr, "u2net serve: stopped\n");
    } else {
        print_error("serve: %s", err);
        serve_workers_finish(workers);
    }
    serve_workers_free(workers);
    serve_metrics_free(metrics);
    return rc;
}

#endif

int cmd_serve(int argc, char **argv)
{
#ifdef U2NET_WITH_HTTP
    serve_options o;
    const int parsed = parse_serve_options(argc, argv, &o);
    if (parsed)
        return parsed == 1 ? 0 : 2;
    loaded_models l;
    memset(&l, 0, sizeof l);
    int rc = load_models(&o, &l);
    if (rc == 0)
        rc = run_server(&o, &l);
    free_models(&l);
    return rc;
#else
    (void)argc, (void)argv;
    print_error("serve: this build has no HTTP server: install libmicrohttpd (Debian: apt-get "
                "install libmicrohttpd-dev) and run make again");
    return 2;
#endif
}
