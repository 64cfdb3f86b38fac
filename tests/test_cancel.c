/* test_cancel.c - u2net_ctx_cancel from another thread stops a large run
 * part way with U2NET_ECANCELED; a context keeps refusing runs until
 * u2net_ctx_clear_cancel, then runs exactly as a fresh one; a request made
 * before a run stops it before it starts; batches and the reference pass
 * stop too. Prints how long each cancelled run took to return after the
 * request (the figure the README gives; make bench does not time this).
 *
 *   test_cancel MODEL SIDE TRIALS [THREADS]
 * (THREADS per context, default all cores; make tsan runs it with 1)
 * Prints one line per check and "N passed, M failed". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "u2net.h"

static int passed, failed;
static int threads; /* of every context */

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *make_input(size_t n, unsigned seed)
{
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; x && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
    return x;
}

typedef struct {
    u2net_ctx *ctx;
    double delay;     /* seconds after the start */
    double asked_at;  /* when it called u2net_ctx_cancel */
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    struct timespec d = {(time_t)k->delay, (long)((k->delay - (double)(time_t)k->delay) * 1e9)};
    nanosleep(&d, NULL);
    k->asked_at = now();
    u2net_ctx_cancel(k->ctx);
    return NULL;
}

/* Runs n images of side x side on c with a cancel after delay seconds;
 * returns the seconds from the request to the run's return, -2 when the
 * run ended before the request, -1 when it did not stop with
 * U2NET_ECANCELED. */
static double cancelled_run(u2net_ctx *c, const float *x, int n, int side, double delay)
{
    canceller k = {c, delay, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, cancel_later, &k) != 0)
        return -1;
    u2net_error err;
    const int rc = u2net_run_batch(c, x, n, side, side, &err);
    const double back = now();
    pthread_join(t, NULL);
    u2net_ctx_clear_cancel(c);
    if (rc == 0 && back < k.asked_at)
        return -2;
    return rc == U2NET_ECANCELED && u2net_output(c, 0) == NULL ? back - k.asked_at : -1;
}

/* Whether c's outputs of x at side equal those of a fresh context. */
static int same_as_fresh(const u2net_model *m, u2net_ctx *c, const float *x, int side)
{
    u2net_error err;
    u2net_ctx *fresh = u2net_ctx_new(m, threads, &err);
    if (!fresh || u2net_run(c, x, side, side, &err) != 0 || u2net_run(fresh, x, side, side, &err))
        return u2net_ctx_free(fresh), 0;
    int same = 1;
    for (int k = 0; k < u2net_model_output_count(m); k++)
        same &= !memcmp(u2net_output(c, k), u2net_output(fresh, k),
                        sizeof(float) * (size_t)side * side);
    u2net_ctx_free(fresh);
    return same;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: test_cancel MODEL SIDE TRIALS [THREADS]\n");
        return 2;
    }
    const int side = atoi(argv[2]), trials = atoi(argv[3]);
    threads = argc == 5 ? atoi(argv[4]) : 0;
    u2net_error err;
    u2net_model *m = u2net_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    const int small = 64;
    float *x = make_input((size_t)3 * side * side, 1);
    float *xs = make_input((size_t)3 * 2 * small * small, 2);
    u2net_ctx *c = u2net_ctx_new(m, threads, &err);
    if (!x || !xs || !c) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    char what[800];

    /* a whole run: its time, and its outputs to compare with later */
    const int outs = u2net_model_output_count(m);
    const size_t plane = (size_t)side * side;
    float *whole = malloc(sizeof(float) * plane * (size_t)outs);
    double t0 = now();
    if (!whole || u2net_run(c, x, side, side, &err) != 0) {
        fprintf(stderr, "%s\n", whole ? err.msg : "out of memory");
        return 2;
    }
    const double run_s = now() - t0;
    for (int k = 0; k < outs; k++)
        memcpy(whole + (size_t)k * plane, u2net_output(c, k), sizeof(float) * plane);
    printf("     a whole %dx%d run: %.2f s\n", side, side, run_s);

    /* runs cancelled at different points along it (a run that ends first,
     * on a busy machine, is no failure) */
    double worst = 0, sum = 0;
    int stopped = 0, ended = 0;
    for (int t = 0; t < trials; t++) {
        const double delay = run_s * (0.05 + 0.5 * t / (trials > 1 ? trials - 1 : 1));
        const double lat = cancelled_run(c, x, 1, side, delay);
        if (lat >= 0) {
            stopped++;
            sum += lat;
            worst = lat > worst ? lat : worst;
        }
        ended += lat == -2;
        printf("     cancelled %.2f s in: %s %.1f ms\n", delay,
               lat >= 0 ? "U2NET_ECANCELED after" : lat == -2 ? "ended first" : "DID NOT STOP",
               lat * 1e3);
    }
    snprintf(what, sizeof what, "%d of %d runs at %dx%d stopped (%d ended first); after the "
             "request: mean %.1f ms, worst %.1f ms", stopped, trials, side, side, ended,
             stopped ? sum / stopped * 1e3 : 0.0, worst * 1e3);
    check(stopped > 0 && stopped + ended == trials, what);

    /* the request stays until cleared */
    u2net_ctx_cancel(c);
    t0 = now();
    const int rc = u2net_run(c, xs, small, small, &err);
    snprintf(what, sizeof what, "a request made before a run stops it at once (%d: %s, %.2f ms)",
             rc, err.msg, (now() - t0) * 1e3);
    check(rc == U2NET_ECANCELED && u2net_output(c, 0) == NULL && now() - t0 < 0.05, what);
    check(u2net_run(c, xs, small, small, &err) == U2NET_ECANCELED,
          "the next run is refused too until u2net_ctx_clear_cancel");
    u2net_ctx_clear_cancel(c);
    check(same_as_fresh(m, c, xs, small),
          "after u2net_ctx_clear_cancel the context runs exactly as a fresh one");
    int same = u2net_run(c, x, side, side, &err) == 0;
    for (int k = 0; same && k < outs; k++)
        same = !memcmp(u2net_output(c, k), whole + (size_t)k * plane, sizeof(float) * plane);
    check(same, "and the size that was cancelled gives the whole run's outputs again");
    free(whole);

    /* a batch: the GPU's way, one image after another on the CPU */
    u2net_ctx_cancel(c);
    check(u2net_run_batch(c, xs, 2, small, small, &err) == U2NET_ECANCELED &&
              u2net_output_batch(c, 1, 0) == NULL,
          "a batch is cancelled");
    u2net_ctx_clear_cancel(c);
    check(u2net_run_batch(c, xs, 2, small, small, &err) == 0 && u2net_output_batch(c, 1, 0),
          "and runs after u2net_ctx_clear_cancel");

    /* the plain reference pass checks between layers */
    u2net_ctx_opts o;
    u2net_ctx_opts_default(&o);
    o.reference = 1;
    o.threads = threads;
    u2net_ctx *r = u2net_ctx_new_opts(m, &o, &err);
    const double rlat = r ? cancelled_run(r, x, 1, side / 4, 0.05) : -1;
    snprintf(what, sizeof what, "the reference pass at %dx%d stops between layers (%.1f ms)",
             side / 4, side / 4, rlat * 1e3);
    check(rlat >= 0, what);
    u2net_ctx_cancel(NULL);
    check(1, "u2net_ctx_cancel(NULL) does nothing");

    u2net_ctx_free(r);
    u2net_ctx_free(c);
    u2net_model_free(m);
    free(x);
    free(xs);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
