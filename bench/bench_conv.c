/* bench_conv.c - the 3x3 convolution kernels on U2Net / U2NetP layer shapes.
 *
 *   build/bench_conv [speed]   GFLOP/s (direct-convolution FLOPs / time) of
 *                              im2col and Winograd on representative shapes,
 *                              1 and 2 threads
 *   build/bench_conv accuracy  per distinct layer shape of both networks, the
 *                              error of each kernel against a double-precision
 *                              definition, relative to the output's magnitude
 *   build/bench_conv layers    per distinct layer shape, the time of both
 *                              kernels and the choice of
 *                              conv3x3_winograd_worthwhile; totals per network
 *   build/bench_conv direct    ms of conv3x3_direct with each ISA's loops and
 *                              of Winograd + weight packing on the first
 *                              layer and side-output shapes, 1 and 2 threads
 *   build/bench_conv direct-sweep  Winograd + packing time / direct time
 *                              over small channel counts, sizes, dilations
 *                              (--threads), against conv3x3_direct_worthwhile
 *   options: --reps N (timing: best of N, default 5), --threads N (layers and
 *   direct-sweep, default 2), --isa portable|avx2|avx512 (Winograd's loops),
 *   --size S (network
 *   input size for accuracy/layers, default 320)
 *
 * Inputs are U(-1, 1), weights N(0, 1/(9 cin)), biases U(-0.5, 0.5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

typedef struct {
    int cin, cout, h, w, d;
} layer;

enum { MAX_LAYERS = 256 };

typedef struct {
    layer l[MAX_LAYERS];
    int count[MAX_LAYERS]; /* how often the network has the shape */
    int n;
} layer_list;

static void add_layer(layer_list *list, int cin, int cout, int size, int d)
{
    for (int i = 0; i < list->n; i++) {
        const layer *l = &list->l[i];
        if (l->cin == cin && l->cout == cout && l->h == size && l->w == size && l->d == d) {
            list->count[i]++;
            return;
        }
    }
    if (list->n == MAX_LAYERS) {
        fprintf(stderr, "bench_conv: more than %d layer shapes\n", MAX_LAYERS);
        exit(2);
    }
    list->l[list->n] = (layer){cin, cout, size, size, d};
    list->count[list->n++] = 1;
}

/* RSU-L at input size `size` (docs: u2net-architecture.md). */
static void add_rsu(layer_list *list, int levels, int in, int mid, int out, int size)
{
    int sizes[8]; /* sizes[i]: the size of level i, 1-based */
    sizes[1] = size;
    for (int i = 2; i < levels; i++)
        sizes[i] = (sizes[i - 1] + 1) / 2;
    add_layer(list, in, out, size, 1);
    add_layer(list, out, mid, size, 1);
    for (int i = 2; i < levels; i++)
        add_layer(list, mid, mid, sizes[i], 1);
    add_layer(list, mid, mid, sizes[levels - 1], 2);
    for (int i = levels - 1; i >= 1; i--)
        add_layer(list, 2 * mid, i == 1 ? out : mid, sizes[i], 1);
}

static void add_rsu4f(layer_list *list, int in, int mid, int out, int size)
{
    add_layer(list, in, out, size, 1);
    add_layer(list, out, mid, size, 1);
    add_layer(list, mid, mid, size, 2);
    add_layer(list, mid, mid, size, 4);
    add_layer(list, mid, mid, size, 8);
    add_layer(list, 2 * mid, mid, size, 4);
    add_layer(list, 2 * mid, mid, size, 2);
    add_layer(list, 2 * mid, out, size, 1);
}

/* Every 3x3 convolution of U2Net (full = 1) or U2NetP at an input size. */
static void network_layers(layer_list *list, int full, int size)
{
    /* stage (in, mid, out) for stage1..6, then 5d, 4d, 3d, 2d, 1d */
    static const int u2net[11][3] = {
        {3, 32, 64}, {64, 32, 128}, {128, 64, 256}, {256, 128, 512}, {512, 256, 512},
        {512, 256, 512}, {1024, 256, 512}, {1024, 128, 256}, {512, 64, 128}, {256, 32, 64},
        {128, 16, 64},
    };
    static const int u2netp[11][3] = {
        {3, 16, 64}, {64, 16, 64}, {64, 16, 64}, {64, 16, 64}, {64, 16, 64}, {64, 16, 64},
        {128, 16, 64}, {128, 16, 64}, {128, 16, 64}, {128, 16, 64}, {128, 16, 64},
    };
    const int (*st)[3] = full ? u2net : u2netp;
    int s[7]; /* s[k]: the size of stage k */
    s[1] = size;
    for (int k = 2; k <= 6; k++)
        s[k] = (s[k - 1] + 1) / 2;
    list->n = 0;
    add_rsu(list, 7, st[0][0], st[0][1], st[0][2], s[1]);
    add_rsu(list, 6, st[1][0], st[1][1], st[1][2], s[2]);
    add_rsu(list, 5, st[2][0], st[2][1], st[2][2], s[3]);
    add_rsu(list, 4, st[3][0], st[3][1], st[3][2], s[4]);
    add_rsu4f(list, st[4][0], st[4][1], st[4][2], s[5]);
    add_rsu4f(list, st[5][0], st[5][1], st[5][2], s[6]);
    add_rsu4f(list, st[6][0], st[6][1], st[6][2], s[5]);
    add_rsu(list, 4, st[7][0], st[7][1], st[7][2], s[4]);
    add_rsu(list, 5, st[8][0], st[8][1], st[8][2], s[3]);
    add_rsu(list, 6, st[9][0], st[9][1], st[9][2], s[2]);
    add_rsu(list, 7, st[10][0], st[10][1], st[10][2], s[1]);
    /* side outputs from hx1d, hx2d, hx3d, hx4d, hx5d, hx6 */
    static const int side_src[6] = {10, 9, 8, 7, 6, 5};
    static const int side_size[6] = {1, 2, 3, 4, 5, 6};
    for (int k = 0; k < 6; k++)
        add_layer(list, st[side_src[k]][2], 1, s[side_size[k]], 1);
}

static double layer_flops(const layer *l)
{
    return 2.0 * 9 * l->cin * l->cout * l->h * l->w;
}

/* xorshift uniform in [-1, 1) and Box-Muller normals, reproducible */
static unsigned long long rng = 88172645463325252ULL;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static double normal(void)
{
    double u = 0;
    while (u <= 0)
        u = (uniform() + 1) / 2;
    return sqrt(-2 * log(u)) * cos(3.14159265358979 * uniform());
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

/* One layer's buffers. */
typedef struct {
    layer l;
    float *in, *weight, *bias, *out, *scratch_im2col, *work_winograd;
    float *packed; /* the Winograd weights, packed once */
    const float **planes; /* [cin] planes of in */
} problem;

enum { MAX_THREADS = 2 };

static problem make_problem(layer l)
{
    problem p = {.l = l};
    const size_t hw = (size_t)l.h * l.w;
    p.in = xmalloc((size_t)l.cin * hw * sizeof(float));
    p.weight = xmalloc((size_t)l.cout * l.cin * 9 * sizeof(float));
    p.bias = xmalloc((size_t)l.cout * sizeof(float));
    p.out = xmalloc((size_t)l.cout * hw * sizeof(float));
    p.scratch_im2col = xmalloc(MAX_THREADS * conv3x3_scratch_floats(l.cin) * sizeof(float));
    p.planes = xmalloc((size_t)l.cin * sizeof *p.planes);
    for (int c = 0; c < l.cin; c++)
        p.planes[c] = p.in + c * hw;
    if (posix_memalign((void **)&p.work_winograd, 64,
                       conv3x3_winograd_workspace_floats(l.cin, l.cout, l.h, l.w, l.d, 0,
                                                         MAX_THREADS) * sizeof(float)) != 0) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < (size_t)l.cin * hw; i++)
        p.in[i] = (float)uniform();
    const double sd = 1.0 / sqrt(9.0 * l.cin);
    for (size_t i = 0; i < (size_t)l.cout * l.cin * 9; i++)
        p.weight[i] = (float)(normal() * sd);
    for (int i = 0; i < l.cout; i++)
        p.bias[i] = (float)(0.5 * uniform());
    if (posix_memalign((void **)&p.packed, 64,
                       conv3x3_winograd_packed_floats(l.cin, l.cout) * sizeof(float)) != 0) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(2);
    }
    conv3x3_winograd_pack(kernel_isa_best(), p.weight, l.cin, l.cout, p.packed, 1);
    return p;
}

static void free_problem(problem *p)
{
    free(p->in), free(p->weight), free(p->bias), free(p->out);
    free(p->scratch_im2col), free(p->work_winograd), free(p->planes), free(p->packed);
}

/* WINOGRAD runs on weights packed beforehand, WINOGRAD_PACK packs them
 * inside (as the engine does for a layer it runs once); DIRECT + isa is
 * conv3x3_direct with that ISA's loops. */
enum kernel { IM2COL, WINOGRAD, WINOGRAD_PACK, DIRECT };

/* The Winograd kernel's instruction set: the best, or --isa's. */
static kernel_isa isa;

static void run(problem *p, enum kernel k, int threads)
{
    const layer *l = &p->l;
    const size_t hw = (size_t)l->h * l->w;
    const conv3x3_args a = {.in = p->planes, .cin = l->cin, .in_rows = l->h, .in_w = l->w,
                            .row0 = 0, .stride = 1, .h = l->h, .w = l->w, .weight = p->weight,
                            .bias = p->bias, .cout = l->cout, .dilation = l->d, .relu = 1,
                            .out = p->out, .out_plane = hw};
    if (k == IM2COL)
        conv3x3_im2col(&a, p->scratch_im2col, threads);
    else if (k >= DIRECT)
        conv3x3_direct((kernel_isa)(k - DIRECT), &a, threads);
    else
        conv3x3_winograd(isa, &a, k == WINOGRAD ? p->packed : NULL, p->work_winograd, threads);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best of `reps` runs after one warm-up, in seconds; the median in *median. */
static double time_kernel(problem *p, enum kernel k, int threads, int reps, double *median)
{
    double t[64];
    if (reps > 64)
        reps = 64;
    run(p, k, threads);
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        run(p, k, threads);
        t[r] = now() - t0;
    }
    for (int i = 1; i < reps; i++) /* insertion sort */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            const double s = t[j];
            t[j] = t[j - 1], t[j - 1] = s;
        }
    *median = t[reps / 2];
    return t[0];
}

static void speed_table(int reps)
{
    static const struct {
        const char *net;
        layer l;
    } shapes[] = {
        {"U2NetP", {64, 16, 320, 320, 1}},  {"U2NetP", {32, 16, 160, 160, 1}},
        {"U2NetP", {16, 16, 40, 40, 2}},    {"U2NetP", {16, 16, 40, 40, 4}},
        {"U2NetP", {16, 16, 40, 40, 8}},    {"U2NetP", {128, 64, 320, 320, 1}},
        {"U2NetP", {64, 1, 320, 320, 1}},   {"U2Net", {64, 32, 320, 320, 1}},
        {"U2Net", {512, 256, 20, 20, 4}},   {"U2Net", {1024, 512, 20, 20, 1}},
        {"U2Net", {256, 128, 40, 40, 1}},   {"U2Net", {512, 256, 10, 10, 8}},
    };
    printf("GFLOP/s = direct-convolution FLOPs (2*9*cin*cout*h*w) / best-of-%d time; "
           "Winograd packs its weights inside, loops: %s\n",
           reps, kernel_isa_name(isa));
    printf("%-7s %-18s %3s | %9s %9s | %9s %9s | %7s %7s | %s\n", "net", "cin->cout hxw", "d",
           "im2col 1t", "wino 1t", "im2col 2t", "wino 2t", "ms i2c2", "ms win2", "worthwhile");
    double spread = 0; /* noise: the largest median / best - 1 */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        problem p = make_problem(shapes[i].l);
        const layer *l = &p.l;
        const double f = layer_flops(l) * 1e-9;
        double t[2][2]; /* [kernel][threads-1] */
        for (int k = 0; k < 2; k++)
            for (int th = 1; th <= 2; th++) {
                double median;
                t[k][th - 1] = time_kernel(&p, k ? WINOGRAD_PACK : IM2COL, th, reps, &median);
                if (median / t[k][th - 1] - 1 > spread)
                    spread = median / t[k][th - 1] - 1;
            }
        char shape[32];
        snprintf(shape, sizeof shape, "%d->%d %dx%d", l->cin, l->cout, l->h, l->w);
        printf("%-7s %-18s %3d | %9.1f %9.1f | %9.1f %9.1f | %7.2f %7.2f | %d\n", shapes[i].net,
               shape, l->d, f / t[0][0], f / t[1][0], f / t[0][1], f / t[1][1], t[0][1] * 1e3,
               t[1][1] * 1e3, conv3x3_winograd_worthwhile(l->cin, l->cout, l->h, l->w, l->d));
        fflush(stdout);
        free_problem(&p);
    }
    printf("noise: median time up to %.0f%% above the best\n", spread * 100);
}

/* Largest error of p->out against the double-precision definition over a
 * sample of output channels, relative to the largest |output| there. */
static double relative_error(const problem *p)
{
    const layer *l = &p->l;
    const size_t hw = (size_t)l->h * l->w;
    const int step = l->cout > 8 ? l->cout / 8 : 1;
    double worst = 0, magnitude = 0;
    for (int co = 0; co < l->cout; co += step)
        for (int y = 0; y < l->h; y++)
            for (int x = 0; x < l->w; x++) {
                double s = p->bias[co];
                for (int ci = 0; ci < l->cin; ci++) {
                    const float *k = p->weight + ((size_t)co * l->cin + ci) * 9;
                    const float *plane = p->in + ci * hw;
                    for (int ky = 0; ky < 3; ky++) {
                        const int sy = y + (ky - 1) * l->d;
                        if (sy < 0 || sy >= l->h)
                            continue;
                        for (int kx = 0; kx < 3; kx++) {
                            const int sx = x + (kx - 1) * l->d;
                            if (sx >= 0 && sx < l->w)
                                s += (double)k[ky * 3 + kx] * plane[(size_t)sy * l->w + sx];
                        }
                    }
                }
                if (s < 0)
                    s = 0;
                const double e = fabs(s - p->out[co * hw + (size_t)y * l->w + x]);
                if (!(e <= worst))
                    worst = e;
                if (fabs(s) > magnitude)
                    magnitude = fabs(s);
            }
    return worst / (magnitude > 0 ? magnitude : 1);
}

static void accuracy_table(int size)
{
    printf("max |error| / max |output| against the double-precision definition "
           "(every 8th output channel); Winograd loops: %s\n",
           kernel_isa_name(isa));
    double worst[2] = {0, 0};
    for (int full = 0; full <= 1; full++) {
        layer_list list;
        network_layers(&list, full, size);
        printf("%-7s %-20s %3s %5s | %9s %9s\n", "net", "cin->cout hxw", "d", "count", "im2col",
               "winograd");
        for (int i = 0; i < list.n; i++) {
            problem p = make_problem(list.l[i]);
            double e[2];
            for (int k = 0; k < 2; k++) {
                run(&p, (enum kernel)k, 2);
                e[k] = relative_error(&p);
                if (e[k] > worst[k])
                    worst[k] = e[k];
            }
            const layer *l = &p.l;
            char shape[32];
            snprintf(shape, sizeof shape, "%d->%d %dx%d", l->cin, l->cout, l->h, l->w);
            printf("%-7s %-20s %3d %5d | %9.2g %9.2g\n", full ? "U2Net" : "U2NetP", shape, l->d,
                   list.count[i], e[0], e[1]);
            fflush(stdout);
            free_problem(&p);
        }
    }
    printf("worst: im2col %.2g, winograd %.2g\n", worst[0], worst[1]);
}

static void layers_table(int size, int reps, int threads)
{
    printf("%d thread(s), best of %d, ms per layer; Winograd loops: %s\n", threads, reps,
           kernel_isa_name(isa));
    for (int full = 0; full <= 1; full++) {
        layer_list list;
        network_layers(&list, full, size);
        double total[4] = {0, 0, 0, 0}; /* im2col, winograd, best, chosen */
        double flops = 0, spread = 0;
        printf("%-7s %-20s %3s %5s | %8s %8s %6s | %s\n", "net", "cin->cout hxw", "d", "count",
               "im2col", "winograd", "ratio", "worthwhile");
        for (int i = 0; i < list.n; i++) {
            problem p = make_problem(list.l[i]);
            const layer *l = &p.l;
            double median_i, median_w;
            const double ti = time_kernel(&p, IM2COL, threads, reps, &median_i);
            const double tw = time_kernel(&p, WINOGRAD_PACK, threads, reps, &median_w);
            if (median_i / ti - 1 > spread)
                spread = median_i / ti - 1;
            if (median_w / tw - 1 > spread)
                spread = median_w / tw - 1;
            const int use = conv3x3_winograd_worthwhile(l->cin, l->cout, l->h, l->w, l->d);
            const int n = list.count[i];
            total[0] += n * ti;
            total[1] += n * tw;
            total[2] += n * (ti < tw ? ti : tw);
            total[3] += n * (use ? tw : ti);
            flops += n * layer_flops(l);
            char shape[32];
            snprintf(shape, sizeof shape, "%d->%d %dx%d", l->cin, l->cout, l->h, l->w);
            printf("%-7s %-20s %3d %5d | %8.3f %8.3f %6.2f | %d%s\n", full ? "U2Net" : "U2NetP",
                   shape, l->d, n, ti * 1e3, tw * 1e3, ti / tw, use,
                   (use != (tw < ti)) ? " (mismatch)" : "");
            fflush(stdout);
            free_problem(&p);
        }
        printf("%s, %.1f GFLOP of 3x3 convolutions: im2col %.1f ms, winograd %.1f ms, "
               "best of the two %.1f ms, chosen by worthwhile %.1f ms; noise: median up to "
               "%.0f%% above the best\n\n",
               full ? "U2Net" : "U2NetP", flops * 1e-9, total[0] * 1e3, total[1] * 1e3,
               total[2] * 1e3, total[3] * 1e3, spread * 100);
    }
}

/* ms of the direct kernel with each ISA's loops against Winograd with its
 * weight packing, at 1 and 2 threads, on the shapes it is meant for: the
 * first layer (3 -> 64) and the side outputs (cin -> 1) at sizes 10 .. 1024
 * (those whose input is at most 1 GiB). */
static void direct_table(int reps)
{
    static const int side_cin[] = {16, 32, 64, 128, 256, 512, 1024};
    static const int sizes[] = {10, 20, 40, 80, 160, 320, 512, 1024};
    layer shapes[3 + 7 * 8];
    int n = 0;
    for (int s = 5; s < 8; s++) /* 3 -> 64 at 320, 512, 1024 */
        shapes[n++] = (layer){3, 64, sizes[s], sizes[s], 1};
    for (size_t c = 0; c < sizeof side_cin / sizeof side_cin[0]; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            if ((double)side_cin[c] * sizes[s] * sizes[s] <= 256.0 * 1024 * 1024)
                shapes[n++] = (layer){side_cin[c], 1, sizes[s], sizes[s], 1};
    const kernel_isa best = kernel_isa_best();
    printf("ms, best of %d (of %d above 2 GFLOP); wino+pack = conv3x3_winograd_pack + "
           "conv3x3_winograd (Winograd loops: %s); %% = GFLOP/s of the fastest direct "
           "run at 1 thread / 117 (build/fma_peak's single core on the Zen 4 of "
           "kernels/README.md)\n",
           reps, (reps + 1) / 2, kernel_isa_name(isa));
    printf("%-20s | %-29s | %-29s | %4s %s\n", "cin->cout hxw", "1 thread", "2 threads", "",
           "worthwhile");
    printf("%-20s |", "");
    for (int th = 1; th <= 2; th++) {
        for (int isa = KERNEL_ISA_PORTABLE; isa <= (int)best; isa++)
            printf(" %6.6s", kernel_isa_name((kernel_isa)isa));
        printf(" %8s |", "wino+pk");
    }
    printf(" %4s\n", "%pk");
    for (int i = 0; i < n; i++) {
        problem p = make_problem(shapes[i]);
        const layer *l = &p.l;
        const int r = layer_flops(l) > 2e9 ? (reps + 1) / 2 : reps;
        char shape[32];
        snprintf(shape, sizeof shape, "%d->%d %dx%d", l->cin, l->cout, l->h, l->w);
        printf("%-20s |", shape);
        double fastest = 1e30;
        for (int th = 1; th <= 2; th++) {
            double median;
            for (int isa = KERNEL_ISA_PORTABLE; isa <= (int)best; isa++) {
                const double t = time_kernel(&p, (enum kernel)(DIRECT + isa), th, r, &median);
                if (th == 1 && t < fastest)
                    fastest = t;
                printf(" %6.3f", t * 1e3);
            }
            printf(" %8.3f |", time_kernel(&p, WINOGRAD_PACK, th, r, &median) * 1e3);
            fflush(stdout);
        }
        printf(" %3.0f%% %d\n", layer_flops(l) / fastest / 117e9 * 100,
               conv3x3_direct_worthwhile(l->cin, l->cout, l->h, l->w, l->d));
        free_problem(&p);
    }
}

/* Which of direct (best ISA) and Winograd + pack is faster, over a grid of
 * small channel counts, sizes and dilations: the data for
 * conv3x3_direct_worthwhile. Prints the time ratio winograd+pack / direct. */
static void direct_sweep(int reps, int threads)
{
    static const int cins[] = {1, 2, 3, 4, 6, 8, 16, 32, 64, 256};
    static const int couts[] = {1, 2, 3, 4, 6, 8, 16, 64};
    static const int sizes[] = {20, 80, 320};
    const enum kernel direct = (enum kernel)(DIRECT + kernel_isa_best());
    printf("%d thread(s), best of %d: (Winograd + pack time) / (direct %s time); "
           "* where conv3x3_direct_worthwhile says 1\n",
           threads, reps, kernel_isa_name(kernel_isa_best()));
    for (int d = 1; d <= 2; d++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            printf("\n%dx%d d=%d     cout:", sizes[s], sizes[s], d);
            for (size_t j = 0; j < sizeof couts / sizeof couts[0]; j++)
                printf(" %6d", couts[j]);
            printf("\n");
            for (size_t i = 0; i < sizeof cins / sizeof cins[0]; i++) {
                printf("  cin %4d        ", cins[i]);
                for (size_t j = 0; j < sizeof couts / sizeof couts[0]; j++) {
                    problem p = make_problem((layer){cins[i], couts[j], sizes[s], sizes[s], d});
                    double median;
                    const double tw = time_kernel(&p, WINOGRAD_PACK, threads, reps, &median);
                    const double td = time_kernel(&p, direct, threads, reps, &median);
                    printf(" %5.2f%c", tw / td,
                           conv3x3_direct_worthwhile(cins[i], couts[j], sizes[s], sizes[s], d)
                               ? '*'
                               : ' ');
                    fflush(stdout);
                    free_problem(&p);
                }
                printf("\n");
            }
        }
}

int main(int argc, char **argv)
{
    const char *mode = "speed";
    int reps = 5, size = 320, threads = 2;
    isa = kernel_isa_best();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            const char *name = argv[++i];
            isa = !strcmp(name, "portable") ? KERNEL_ISA_PORTABLE
                  : !strcmp(name, "avx2")   ? KERNEL_ISA_AVX2
                                            : KERNEL_ISA_AVX512;
            if (kernel_isa_clamp(isa) != isa || strcmp(kernel_isa_name(isa), name) != 0) {
                fprintf(stderr, "bench_conv: --isa %s: not portable, avx2 or avx512 that this "
                                "CPU runs\n", name);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "speed") || !strcmp(argv[i], "accuracy") ||
                 !strcmp(argv[i], "layers") || !strcmp(argv[i], "direct") ||
                 !strcmp(argv[i], "direct-sweep"))
            mode = argv[i];
        else {
            fprintf(stderr, "usage: bench_conv [speed|accuracy|layers|direct|direct-sweep] "
                            "[--reps N] [--threads N] [--size S] [--isa portable|avx2|avx512]\n");
            return 2;
        }
    }
    if (reps < 1 || size < 1 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "bench_conv: --reps and --size must be positive, --threads 1..%d\n",
                MAX_THREADS);
        return 2;
    }
    if (!strcmp(mode, "speed"))
        speed_table(reps);
    else if (!strcmp(mode, "accuracy"))
        accuracy_table(size);
    else if (!strcmp(mode, "direct"))
        direct_table(reps);
    else if (!strcmp(mode, "direct-sweep"))
        direct_sweep(reps, threads);
    else
        layers_table(size, reps, threads);
    return 0;
}
