/* cmd_bench.c - `u2net bench`: times the network on a fixed synthetic input.
 * The protocol and the output lines are the ones bench/ort_runner.py and
 * bench/torch_runner.py print too (bench/peer_common.py), so
 * bench/run_bench.py can set the engine against ONNX Runtime and PyTorch
 * line for line (bench/README.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "ctx_args.h"
#include "u2net.h"
#include "paths.h"
#include "util.h"

static const char usage[] =
    "usage: u2net bench -m MODEL [--size S | --size WxH] [--runs N] [--warmup W]\n"
    "                   [--batch N] [--threads T] [--device cpu|cuda] [--isa I]\n"
    "                   [--reference] [--fast] [--gpu N]\n"
    "  Runs the network on a fixed smooth 3xHxW input: W untimed warm-up runs,\n"
    "  then N timed runs, each printed as 'run I ms=X', then an information line\n"
    "  and last 'median_ms=X p10_ms=Y p90_ms=Z peak_rss_mb=R peak_vm_mb=V'.\n"
    "  --size S|WxH  network input size (default: the model's own, 320)\n"
    "  --runs N      timed runs (10)\n"
    "  --warmup W    untimed runs before them (2)\n"
    "  --threads T   threads; 0 = all cores (default 0)\n"
    "  --batch N     images per run, 1..256 (1): one run on the GPU, one image\n"
    "                after another on the CPU\n"
    "  --device D    cpu (default) or cuda (a build with make CUDA=1)\n"
    "  --fast        CUDA: TF32 matrix products; --gpu N: the CUDA device\n"
    "  --isa I       the fast kernels' instruction set: avx512, avx2, neon\n"
    "                (ARM64) or portable (default: the best this CPU has)\n"
    "  --reference   the plain forward pass with the reference kernels (slow)\n"
    "  A run's time is wall clock around u2net_run_batch alone (on the GPU: the\n"
    "  input's copy, the run and the outputs' copy back, synchronously). Percentiles interpolate\n"
    "  linearly between the sorted runs. peak_rss_mb is the process's peak resident\n"
    "  memory (getrusage ru_maxrss), peak_vm_mb its peak address space (VmPeak in\n"
    "  /proc/self/status, what ulimit -v limits; 0 where unknown), in MB of 10^6\n"
    "  bytes.\n";

/* The benchmark input: a smooth pattern in about [-1.5, 1.5], like a
 * normalised image. bench/peer_common.py computes the same formula so every
 * peer sees the same tensor. */
static void fill_pattern(float *chw, int h, int w)
{
    const double two_pi = 6.283185307179586;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const double u = (x + 0.5) / w, v = (y + 0.5) / h;
                chw[((size_t)c * h + y) * w + x] =
                    (float)(sin(two_pi * ((c + 1) * u + 2.0 * v)) +
                            0.5 * cos(two_pi * (3.0 * u - (c + 1) * v)));
            }
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of n sorted values, interpolating linearly between neighbours
 * (numpy's default), the definition the other runners use. */
static double quantile(const double *sorted, int n, double q)
{
    const double pos = q * (n - 1);
    const int lo = (int)pos;
    const int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return ru.ru_maxrss * 1024.0 / 1e6; /* Linux counts ru_maxrss in KiB */
}

/* The process's peak address space (VmPeak, in kB), or 0 where unknown. */
static double peak_vm_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0.0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmPeak: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024.0 / 1e6;
}

/* Parses "S" or "WxH" into *w and *h. Returns 0 on success. */
static int parse_size(const char *s, long *w, long *h)
{
    const char *x = strchr(s, 'x');
    if (!x) {
        if (parse_int(s, 1, U2NET_MAX_SIDE, w) != 0)
            return -1;
        *h = *w;
        return 0;
    }
    char width[16];
    const size_t len = (size_t)(x - s);
    if (len == 0 || len >= sizeof width)
        return -1;
    memcpy(width, s, len);
    width[len] = '\0';
    if (parse_int(width, 1, U2NET_MAX_SIDE, w) != 0 || parse_int(x + 1, 1, U2NET_MAX_SIDE, h) != 0)
        return -1;
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL, *size = NULL;
    long runs = 10, warmup = 2, batch = 1;
    ctx_args ca;
    ctx_args_default(&ca);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        const int common = ctx_args_parse(&ca, argc, argv, &i, 0);
        if (common < 0)
            return 2;
        if (common > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model = argv[++i];
        } else if (!strcmp(a, "--size") && has_val) {
            size = argv[++i];
        } else if (!strcmp(a, "--runs") && has_val) {
            if (parse_int(argv[++i], 1, 100000, &runs) != 0) {
                print_error("--runs: '%s' is not a run count (1..100000)", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--warmup") && has_val) {
            if (parse_int(argv[++i], 0, 100000, &warmup) != 0) {
                print_error("--warmup: '%s' is not a run count (0..100000)", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--batch") && has_val) {
            if (parse_int(argv[++i], 1, U2NET_MAX_BATCH, &batch) != 0) {
                print_error("--batch: '%s' is not an image count (1..%d)", argv[i],
                            U2NET_MAX_BATCH);
                return 2;
            }
        } else {
            print_error("bench: unknown or incomplete option '%s' (see u2net bench --help)", a);
            return 2;
        }
    }
    if (!model) {
        print_error("bench: -m MODEL is required (see u2net bench --help)");
        return 2;
    }
    long w = 0, h = 0;
    if (size && parse_size(size, &w, &h) != 0) {
        print_error("--size: '%s' is not S or WxH with sides 1..%d", size, U2NET_MAX_SIDE);
        return 2;
    }
    if (w * h > U2NET_MAX_PIXELS) {
        print_error("--size: %ldx%ld is more than %d pixels", w, h, U2NET_MAX_PIXELS);
        return 2;
    }
    u2net_model *m = model_open("", model);
    if (!m)
        return 1;
    u2net_error err;
    if (!size)
        w = h = u2net_model_default_size(m);
    int rc = 1;
    const size_t image = (size_t)3 * h * w;
    float *input = malloc(image * batch * sizeof(float));
    double *ms = malloc((size_t)runs * sizeof(double));
    u2net_ctx *c = ctx_args_new_context(&ca, m, &rc);
    if (!c)
        goto done;
    rc = 1;
    if (!input || !ms) {
        print_error("out of memory");
        goto done;
    }
    fill_pattern(input, (int)h, (int)w);
    for (long b = 1; b < batch; b++)
        memcpy(input + b * image, input, image * sizeof(float));
    for (long i = 0; i < warmup + runs; i++) {
        const double start = now_seconds();
        if (u2net_run_batch(c, input, (int)batch, (int)h, (int)w, &err) != 0) {
            print_error("%s", err.msg);
            goto done;
        }
        const double elapsed_ms = (now_seconds() - start) * 1e3;
        if (i >= warmup) {
            ms[i - warmup] = elapsed_ms;
            printf("run %ld ms=%.2f\n", i - warmup + 1, elapsed_ms);
            fflush(stdout);
        }
    }
    /* The mean of output 0 (the prediction): equal across peers when they
     * run the same weights on the same input, which run_bench.py checks. */
    const float *d0 = u2net_output_batch(c, (int)batch - 1, 0);
    double d0_sum = 0.0;
    for (long p = 0; p < w * h; p++)
        d0_sum += d0[p];
    printf("model=%s size=%ldx%ld batch=%ld threads=%d kernels=%s arena_mb=%.1f d0_mean=%.10f\n",
           u2net_model_name(m), w, h, batch, u2net_ctx_threads(c), u2net_ctx_backend_name(c),
           u2net_ctx_arena_bytes(c) / 1e6, d0_sum / (double)(w * h));
    qsort(ms, (size_t)runs, sizeof *ms, compare_doubles);
    printf("median_ms=%.2f p10_ms=%.2f p90_ms=%.2f peak_rss_mb=%.1f peak_vm_mb=%.1f\n",
           quantile(ms, (int)runs, 0.5), quantile(ms, (int)runs, 0.1), quantile(ms, (int)runs, 0.9),
           peak_rss_mb(), peak_vm_mb());
    rc = 0;
done:
    u2net_ctx_free(c);
    free(ms);
    free(input);
    u2net_model_free(m);
    return rc;
}
