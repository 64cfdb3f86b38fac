/* test_backends.c - every backend held to the plain forward pass
 * (graph/forward.c), on the graph of a model file at several input sizes:
 *   - the lean top level (graph/lean.c) run by the plain pass, against the
 *     plain graph: the rewrite changes no result beyond rounding;
 *   - the CPU backend with the engine's options, with the lean top level
 *     forced on and off, with a band memory so small that every pipeline
 *     runs in many bands and every large enough tensor is streamed, with no
 *     packed weights, and on every instruction set: within 1e-4 of the plain
 *     pass (Winograd's rounding), every output;
 *   - the CPU backend on 1 and 2 threads: the same bits;
 *   - a batch of three images through the CPU backend: each image's
 *     outputs the bits of its own run;
 *   - the CUDA backend's plan run on the CPU (cuda/gpu_emulate.c: its memory
 *     plan and element bodies, a CPU product for cuBLAS's), on a batch of
 *     two images, with its im2col in chunks of one row and of the default
 *     size: each image within 1e-4 of the plain pass.
 * No PyTorch: tests/test_backends.py writes the random-weight models.
 *
 *   test_backends MODEL H W [H W ...]
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gpu_emulate.h"

static int passed, failed;

static void __attribute__((format(printf, 2, 3))) check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    ok ? passed++ : failed++;
}

/* A smooth image-like input in about [-2, 2], the same for every backend. */
static float *make_input(int c, int h, int w)
{
    float *x = malloc(sizeof(float) * (size_t)c * h * w);
    if (!x)
        return NULL;
    unsigned state = 12345u;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i++) {
                state = state * 1664525u + 1013904223u;
                const double noise = ((state >> 8) / 16777216.0 - 0.5) * 0.2;
                x[((size_t)k * h + y) * w + i] =
                    (float)(1.5 * sin(6.28 * ((k + 1) * (i + 0.5) / w + 1.7 * (y + 0.5) / h)) +
                            0.4 * cos(9.0 * (i - y) / (w + h)) + noise);
            }
    return x;
}

/* Runs backend b on graph g; copies its outputs into out [n, h, w]. */
static int run_backend(backend *b, const graph *g, const float *x, float *out, size_t plane)
{
    u2net_error err;
    if (b->ops->prepare(b, g, 1, &err) != 0 || b->ops->run(b, x, &err) != 0) {
        printf("     %s: %s\n", b->ops->name, err.msg);
        return -1;
    }
    for (int k = 0; k < g->n_outputs; k++)
        memcpy(out + (size_t)k * plane, b->ops->output(b, 0, k), sizeof(float) * plane);
    return 0;
}

/* Largest |a - b| of each output; returns the largest (NaN counts as it). */
static double compare(const float *a, const float *b, int n, size_t plane, char *per, size_t cap)
{
    double worst = 0;
    size_t at = 0;
    per[0] = 0;
    for (int k = 0; k < n; k++) {
        double m = 0;
        for (size_t i = 0; i < plane; i++) {
            const double d = fabs((double)a[k * plane + i] - b[k * plane + i]);
            m = d > m || d != d ? d : m;
        }
        worst = m > worst || m != m ? m : worst;
        if (at < cap)
            at += (size_t)snprintf(per + at, cap - at, " %.2g", m);
    }
    return worst;
}

typedef struct {
    const char *label;
    int lean;
    size_t band_bytes, packed_bytes;
    kernel_isa isa;
    int threads;
} variant;

/* Three images in one batch (x, x mirrored in value, x shifted): image 0's
 * outputs must be the bits of the single run (single), and every image's
 * those of a batch of one of it. */
static void test_batch(const char *path, const graph *g, const float *x, const float *single,
                       size_t plane)
{
    u2net_error err;
    const graph_tensor *in = &g->tensors[g->input];
    const size_t image = (size_t)in->c * in->h * in->w, outs = plane * (size_t)g->n_outputs;
    float *xs = malloc(sizeof(float) * image * 3), *one = malloc(sizeof(float) * outs);
    backend *b = cpu_backend_new(2, NULL, &err), *b1 = cpu_backend_new(2, NULL, &err);
    int ok = xs && one && b && b1;
    for (size_t i = 0; ok && i < image; i++)
        xs[i] = x[i], xs[image + i] = -x[i], xs[2 * image + i] = x[i] * 0.5f + 0.25f;
    ok = ok && b->ops->prepare(b, g, 3, &err) == 0 && b->ops->run(b, xs, &err) == 0 &&
         b1->ops->prepare(b1, g, 1, &err) == 0;
    int same = ok;
    for (int k = 0; ok && k < g->n_outputs; k++)
        same &= memcmp(b->ops->output(b, 0, k), single + (size_t)k * plane,
                       sizeof(float) * plane) == 0;
    for (int i = 0; ok && i < 3; i++) {
        ok = b1->ops->run(b1, xs + (size_t)i * image, &err) == 0;
        for (int k = 0; ok && k < g->n_outputs; k++)
            same &= memcmp(b->ops->output(b, i, k), b1->ops->output(b1, 0, k),
                           sizeof(float) * plane) == 0;
    }
    check(ok && same, "%s %dx%d: cpu, a batch of 3: each image the bits of its own run", path,
          in->h, in->w);
    if (b)
        b->ops->destroy(b);
    if (b1)
        b1->ops->destroy(b1);
    free(xs), free(one);
}

/* The GPU plan for a batch of two (x and a shifted x), emulated on the
 * CPU, against the plain pass on each image (want: x's outputs). */
static void test_gpu_plan(const char *path, const graph *g, const float *x, const float *want,
                          size_t plane, size_t budget, const char *label)
{
    u2net_error err;
    const graph_tensor *in = &g->tensors[g->input];
    const size_t image = (size_t)in->c * in->h * in->w, outs = plane * (size_t)g->n_outputs;
    gpu_plan p;
    if (gpu_plan_build(&p, g, 2, budget, &err) != 0) {
        check(0, "%s: gpu plan: %s", path, err.msg);
        return;
    }
    float *xs = malloc(sizeof(float) * image * 2), *want2 = malloc(sizeof(float) * outs);
    float *weights = malloc(sizeof(float) * (p.weight_floats + 1));
    float *arena = malloc(sizeof(float) * (p.arena_floats + 1));
    float *work = malloc(sizeof(float) * (p.workspace_floats + 1));
    backend *ref = reference_backend_new(2, &err);
    int ok = xs && want2 && weights && arena && work && ref;
    for (size_t i = 0; ok && i < image; i++)
        xs[i] = x[i], xs[image + i] = x[i] * 0.5f - 0.3f;
    ok = ok && run_backend(ref, g, xs + image, want2, plane) == 0;
    if (ok) {
        gpu_plan_weights(&p, weights);
        gpu_emulate_run(&p, weights, arena, work, xs);
    }
    char per[256];
    const float *got = arena + p.outputs.off;
    const double e0 = ok ? compare(got, want, g->n_outputs, plane, per, sizeof per) : 1.0;
    const double e1 = ok ? compare(got + outs, want2, g->n_outputs, plane, per, sizeof per) : 1.0;
    check(ok && e0 <= 1e-4 && e1 <= 1e-4,
          "%s %dx%d: gpu plan on the cpu, batch 2, %s (%d steps, arena %.2f MB, workspace "
          "%.2f MB): max diff %.2g and %.2g (tol 1e-4); per output (image 2)%s",
          path, in->h, in->w, label, p.n_steps, p.arena_floats * 4e-6, p.workspace_floats * 4e-6,
          e0, e1, per);
    if (ref)
        ref->ops->destroy(ref);
    free(xs), free(want2), free(weights), free(arena), free(work);
    gpu_plan_free(&p);
}

static void test_size(const char *path, const u2net_model *m, int h, int w)
{
    u2net_error err;
    graph g;
    if (graph_build(&g, m, h, w, &err) != 0) {
        check(0, "%s %dx%d: graph: %s", path, h, w, err.msg);
        return;
    }
    const graph_tensor *x_t = &g.tensors[g.input];
    const size_t plane = (size_t)h * w;
    float *x = make_input(x_t->c, h, w);
    float *want = malloc(sizeof(float) * plane * (size_t)g.n_outputs);
    float *got = malloc(sizeof(float) * plane * (size_t)g.n_outputs);
    float *first = malloc(sizeof(float) * plane * (size_t)g.n_outputs);
    char per[256];
    backend *ref = reference_backend_new(2, &err);
    if (!x || !want || !got || !first || !ref || run_backend(ref, &g, x, want, plane) != 0) {
        check(0, "%s %dx%d: the plain forward pass did not run", path, h, w);
        goto done;
    }

    graph lean;
    const int r = graph_lean_top_level(&g, &lean);
    if (r == 1) {
        const int ok = run_backend(ref, &lean, x, got, plane) == 0;
        const double e = ok ? compare(got, want, g.n_outputs, plane, per, sizeof per) : 1.0;
        check(ok && e <= 1e-5, "%s %dx%d: lean top level (%d -> %d nodes, %+.1f%% multiply-adds), "
              "plain pass: max diff %.2g (tol 1e-5); per output%s", path, h, w, g.n_nodes,
              lean.n_nodes, 100.0 * (graph_macs(&lean) / graph_macs(&g) - 1.0), e, per);
        graph_free(&lean);
    } else {
        check(r == 0, "%s %dx%d: no lean top level for this network", path, h, w);
    }

    cpu_options d;
    cpu_options_default(&d);
    const variant vs[] = {
        {"cpu", -1, d.band_bytes, d.packed_bytes, d.isa, 2},
        {"cpu 1 thread", -1, d.band_bytes, d.packed_bytes, d.isa, 1},
        {"cpu lean on", 1, d.band_bytes, d.packed_bytes, d.isa, 2},
        {"cpu lean off", 0, d.band_bytes, d.packed_bytes, d.isa, 2},
        {"cpu 16 KB bands, lean on", 1, 16 << 10, d.packed_bytes, d.isa, 2},
        {"cpu 16 KB bands, lean off", 0, 16 << 10, d.packed_bytes, d.isa, 2},
        {"cpu 64 KB bands, nothing packed", -1, 64 << 10, 0, d.isa, 2},
        {"cpu 16 KB bands, portable", 1, 16 << 10, d.packed_bytes, KERNEL_ISA_PORTABLE, 2},
        {"cpu avx2", -1, d.band_bytes, d.packed_bytes, KERNEL_ISA_AVX2, 2},
        {"cpu portable", -1, d.band_bytes, d.packed_bytes, KERNEL_ISA_PORTABLE, 2},
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        const variant *v = &vs[i];
        if (!kernel_isa_runs(v->isa))
            continue;
        cpu_options o = d;
        o.lean = v->lean, o.band_bytes = v->band_bytes, o.packed_bytes = v->packed_bytes;
        o.isa = v->isa;
        backend *b = cpu_backend_new(v->threads, &o, &err);
        const int ok = b && run_backend(b, &g, x, got, plane) == 0;
        const size_t bytes = ok ? b->ops->activation_bytes(b) : 0;
        const double e = ok ? compare(got, want, g.n_outputs, plane, per, sizeof per) : 1.0;
        check(ok && e <= 1e-4, "%s %dx%d: %s (%s, arena %.2f MB): max diff %.2g (tol 1e-4); per "
              "output%s", path, h, w, v->label, kernel_isa_name(v->isa), bytes / 1e6, e, per);
        if (i == 0 && ok)
            memcpy(first, got, sizeof(float) * plane * (size_t)g.n_outputs);
        if (i == 1 && ok)
            check(memcmp(first, got, sizeof(float) * plane * (size_t)g.n_outputs) == 0,
                  "%s %dx%d: cpu on 1 and 2 threads: the same bits", path, h, w);
        if (b)
            b->ops->destroy(b);
    }
    /* every kernel call cut into calls of 4 rows (4 d), as a large input's are so
     * that cancellation is looked at often: the same bits */
    cpu_options cut = d;
    cut.call_macs = 1.0;
    backend *b = cpu_backend_new(2, &cut, &err);
    const int cut_ok = b && run_backend(b, &g, x, got, plane) == 0;
    check(cut_ok && memcmp(first, got, sizeof(float) * plane * (size_t)g.n_outputs) == 0,
          "%s %dx%d: kernel calls cut into calls of 4 rows (4 d when dilated): the same bits as whole calls", path, h,
          w);
    if (b)
        b->ops->destroy(b);
    test_batch(path, &g, x, first, plane);
    test_gpu_plan(path, &g, x, want, plane, 1, "im2col by rows");
    test_gpu_plan(path, &g, x, want, plane, 64u << 20, "im2col whole");
done:
    if (ref)
        ref->ops->destroy(ref);
    free(x), free(want), free(got), free(first);
    graph_free(&g);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc % 2) {
        fprintf(stderr, "usage: test_backends MODEL H W [H W ...]\n");
        return 2;
    }
    u2net_error err;
    u2net_model *m = u2net_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2)
        test_size(argv[1], m, atoi(argv[i]), atoi(argv[i + 1]));
    u2net_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
