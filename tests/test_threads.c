/* test_threads.c - one model shared by several threads, each with its own
 * context and its own input size, gives exactly the outputs of running the
 * same inputs one after another in one thread: the raw network, and the
 * whole image path (PNG decode, matte at that network size, rgba cutout,
 * PNG encode). `make tsan` runs it under ThreadSanitizer.
 *
 *   test_threads MODEL [THREADS]
 * Prints one line per worker and "N passed, M failed". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "u2net.h"

enum { MAX_WORKERS = 16, ROUNDS = 2 };

typedef struct {
    const u2net_model *model;
    int h, w;
    float *input;     /* [3, h, w] */
    float *expected;  /* [outputs, h, w], from the sequential run */
    unsigned char *png;       /* an h x w RGB image */
    size_t png_len;
    unsigned char *expected_cutout;  /* its rgba cutout as PNG, sequentially */
    size_t expected_cutout_len;
    int ok;
    char msg[600];
} job;

static float *make_input(int h, int w, unsigned seed)
{
    float *x = malloc(sizeof(float) * 3 * (size_t)h * w);
    if (!x)
        return NULL;
    for (size_t i = 0; i < 3 * (size_t)h * w; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
    return x;
}

/* Runs one input in its own context; copies all outputs to out. */
static int run_once(const u2net_model *m, const float *x, int h, int w, float *out, char *msg,
                    size_t n)
{
    u2net_error err;
    u2net_ctx *c = u2net_ctx_new(m, 1, &err);
    if (!c || u2net_run(c, x, h, w, &err) != 0) {
        snprintf(msg, n, "%s", err.msg);
        u2net_ctx_free(c);
        return -1;
    }
    const size_t plane = (size_t)h * w;
    for (int k = 0; k < u2net_model_output_count(m); k++)
        memcpy(out + k * plane, u2net_output(c, k), plane * sizeof(float));
    u2net_ctx_free(c);
    return 0;
}

/* An h x w RGB image as PNG bytes. */
static int make_png(int h, int w, unsigned seed, unsigned char **png, size_t *len)
{
    u2net_image img;
    u2net_error err;
    if (u2net_image_alloc(&img, w, h, 3, &err) != 0)
        return -1;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        seed = seed * 1664525u + 1013904223u;
        img.data[i] = (unsigned char)(seed >> 24);
    }
    const int rc = u2net_image_encode(&img, U2NET_FORMAT_PNG, 0, png, len, &err);
    u2net_image_free(&img);
    return rc;
}

/* The image path on one PNG in its own context, the network at the image's
 * size: the rgba cutout, as PNG bytes, in *out. */
static int cutout_once(const u2net_model *m, const unsigned char *png, size_t png_len,
                       unsigned char **out, size_t *out_len, char *msg, size_t n)
{
    u2net_error err;
    u2net_image img = {0}, cut = {0};
    u2net_matte matte = {0};
    u2net_mask_opts mo;
    u2net_mask_opts_default(&mo);
    u2net_ctx *c = u2net_ctx_new(m, 1, &err);
    int rc = c ? u2net_image_decode(png, png_len, 0, &img, &err) : -1;
    if (rc == 0) {
        mo.net_width = img.width, mo.net_height = img.height;
        rc = u2net_matte_image(c, &img, &mo, &matte, &err);
    }
    if (rc == 0) {
        rc = u2net_render(&img, &matte, U2NET_OUT_RGBA, NULL, &cut, &err);
        u2net_matte_free(&matte);
    }
    if (rc == 0)
        rc = u2net_image_encode(&cut, U2NET_FORMAT_PNG, 0, out, out_len, &err);
    if (rc != 0)
        snprintf(msg, n, "%s", err.msg);
    u2net_image_free(&cut);
    u2net_image_free(&img);
    u2net_ctx_free(c);
    return rc;
}

static void *worker(void *arg)
{
    job *j = arg;
    const size_t n = (size_t)u2net_model_output_count(j->model) * j->h * j->w;
    float *got = malloc(n * sizeof(float));
    j->ok = got != NULL;
    for (int r = 0; r < ROUNDS && j->ok; r++) {
        unsigned char *cutout = NULL;
        size_t cutout_len = 0;
        if (run_once(j->model, j->input, j->h, j->w, got, j->msg, sizeof j->msg) != 0)
            j->ok = 0;
        else if (memcmp(got, j->expected, n * sizeof(float)) != 0) {
            snprintf(j->msg, sizeof j->msg, "outputs differ from the sequential run");
            j->ok = 0;
        } else if (cutout_once(j->model, j->png, j->png_len, &cutout, &cutout_len, j->msg,
                               sizeof j->msg) != 0) {
            j->ok = 0;
        } else if (cutout_len != j->expected_cutout_len ||
                   memcmp(cutout, j->expected_cutout, cutout_len) != 0) {
            snprintf(j->msg, sizeof j->msg, "cutout differs from the sequential run");
            j->ok = 0;
        }
        free(cutout);
    }
    free(got);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_threads MODEL [THREADS]\n");
        return 2;
    }
    const int workers = argc > 2 ? atoi(argv[2]) : 8;
    if (workers < 1 || workers > MAX_WORKERS) {
        fprintf(stderr, "test_threads: THREADS must be 1..%d\n", MAX_WORKERS);
        return 2;
    }
    u2net_error err;
    u2net_model *m = u2net_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "test_threads: %s\n", err.msg);
        return 2;
    }
    job jobs[MAX_WORKERS];
    pthread_t tid[MAX_WORKERS];
    int passed = 0, failed = 0;
    for (int i = 0; i < workers; i++) {
        job *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->model = m;
        j->h = 17 + 23 * i;  /* every worker a different, odd size */
        j->w = 61 + 11 * (i % 3);
        j->input = make_input(j->h, j->w, 1234u + (unsigned)i);
        j->expected = malloc(sizeof(float) * u2net_model_output_count(m) * j->h * j->w);
        if (!j->input || !j->expected ||
            run_once(m, j->input, j->h, j->w, j->expected, j->msg, sizeof j->msg) != 0 ||
            make_png(j->h, j->w, 99u + (unsigned)i, &j->png, &j->png_len) != 0 ||
            cutout_once(m, j->png, j->png_len, &j->expected_cutout, &j->expected_cutout_len,
                        j->msg, sizeof j->msg) != 0) {
            fprintf(stderr, "test_threads: sequential run %d failed: %s\n", i, j->msg);
            return 2;
        }
    }
    for (int i = 0; i < workers; i++)
        if (pthread_create(&tid[i], NULL, worker, &jobs[i]) != 0) {
            fprintf(stderr, "test_threads: cannot start thread %d\n", i);
            return 2;
        }
    for (int i = 0; i < workers; i++) {
        pthread_join(tid[i], NULL);
        printf("%s worker %d %dx%d%s%s\n", jobs[i].ok ? "ok  " : "FAIL", i, jobs[i].h, jobs[i].w,
               jobs[i].ok ? "" : ": ", jobs[i].msg);
        jobs[i].ok ? passed++ : failed++;
        free(jobs[i].input);
        free(jobs[i].expected);
        free(jobs[i].png);
        free(jobs[i].expected_cutout);
    }
    u2net_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
