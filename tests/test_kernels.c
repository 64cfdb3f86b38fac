/* test_kernels.c - every fast kernel against its plain reference, and the
 * plain kernels against their definitions, on odd sizes and every dilation.
 * Prints one line per case and "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int passed, failed;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok)
        passed++;
    else
        failed++;
}

/* xorshift: reproducible uniform floats in [-1, 1) */
static unsigned long long rng_state = 88172645463325252ULL;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23))) - 1.0f;
}

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float) + 4);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates as a failure */
    }
    return m;
}

static void test_conv3x3(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    const size_t hw = (size_t)h * w;
    float *in = rand_buf((size_t)cin * hw, 1.0f);
    float *wt = rand_buf((size_t)cout * cin * 9, 1.0f / sqrtf(9.0f * cin));
    float *b = rand_buf((size_t)cout, 0.5f);
    float *res = residual ? rand_buf((size_t)cout * hw, 1.0f) : NULL;
    float *ref = malloc(cout * hw * sizeof(float));
    float *fast1 = malloc(cout * hw * sizeof(float));
    float *fast2 = malloc(cout * hw * sizeof(float));
    float *scratch = malloc(2 * conv3x3_scratch_floats(cin) * sizeof(float));
    if (!ref || !fast1 || !fast2 || !scratch) {
        perror("malloc");
        exit(2);
    }
    /* the definition, in double, for the reference kernel */
    double worst_def = 0;
    for (int co = 0; co < cout; co += cout > 4 ? cout / 4 : 1)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double s = b[co];
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int sy = y + (ky - 1) * d, sx = x + (kx - 1) * d;
                            if (sy >= 0 && sy < h && sx >= 0 && sx < w)
                                s += (double)wt[((size_t)co * cin + ci) * 9 + ky * 3 + kx] *
                                     in[(size_t)ci * hw + (size_t)sy * w + sx];
                        }
                if (relu && s < 0)
                    s = 0;
                if (res)
                    s += res[(size_t)co * hw + (size_t)y * w + x];
                ref[(size_t)co * hw + (size_t)y * w + x] = (float)s;
            }
    float *ref_k = malloc(cout * hw * sizeof(float));
    conv3x3_dilated_ref(in, cin, h, w, wt, b, cout, d, relu, res, ref_k, 2);
    for (int co = 0; co < cout; co += cout > 4 ? cout / 4 : 1) {
        const double e = max_abs_diff(ref + co * hw, ref_k + co * hw, hw);
        if (e > worst_def)
            worst_def = e;
    }
    check(worst_def <= 1e-5, "conv3x3_dilated_ref vs definition cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
          cin, cout, h, w, d, relu, residual, worst_def);
    conv3x3_dilated_im2col(in, cin, h, w, wt, b, cout, d, relu, res, fast1, scratch, 1);
    conv3x3_dilated_im2col(in, cin, h, w, wt, b, cout, d, relu, res, fast2, scratch, 2);
    const double e = max_abs_diff(fast1, ref_k, cout * hw);
    check(e <= 1e-5, "conv3x3_dilated_im2col vs ref cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
          cin, cout, h, w, d, relu, residual, e);
    check(memcmp(fast1, fast2, cout * hw * sizeof(float)) == 0,
          "conv3x3_dilated_im2col 1 vs 2 threads bit-identical cin=%d cout=%d %dx%d d=%d", cin,
          cout, h, w, d);
    free(in), free(wt), free(b), free(res), free(ref), free(ref_k), free(fast1), free(fast2);
    free(scratch);
}

/* The Winograd kernel against the reference kernel with both its hot loops
 * (AVX2 when the CPU has it, and portable), on 1 and 2 threads. The error is
 * taken relative to the output's largest magnitude. */
static void test_conv3x3_winograd(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    const size_t hw = (size_t)h * w, n = (size_t)cout * hw;
    float *in = rand_buf((size_t)cin * hw, 1.0f);
    float *wt = rand_buf((size_t)cout * cin * 9, 1.0f / sqrtf(9.0f * cin));
    float *b = rand_buf((size_t)cout, 0.5f);
    float *res = residual ? rand_buf(n, 1.0f) : NULL;
    float *ref = malloc(n * sizeof(float));
    float *fast1 = malloc(n * sizeof(float));
    float *fast2 = malloc(n * sizeof(float));
    float *packed = malloc(conv3x3_winograd_packed_floats(cin, cout) * sizeof(float));
    float *scratch = malloc(2 * conv3x3_winograd_scratch_floats(cin, cout) * sizeof(float));
    if (!ref || !fast1 || !fast2 || !packed || !scratch) {
        perror("malloc");
        exit(2);
    }
    conv3x3_dilated_ref(in, cin, h, w, wt, b, cout, d, relu, res, ref, 2);
    double magnitude = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > magnitude)
            magnitude = fabs(ref[i]);
    if (magnitude == 0)
        magnitude = 1;
    conv3x3_winograd_pack(wt, cin, cout, packed, 2);
    for (int portable = 0; portable <= 1; portable++) {
        conv3x3_winograd_force_portable(portable);
        const char *isa = conv3x3_winograd_isa();
        if (!portable && strcmp(isa, "avx2") != 0)
            continue; /* no AVX2 here: the portable pass below covers it */
        memset(fast1, 0xff, n * sizeof(float)); /* NaN: a pixel left unwritten fails */
        conv3x3_dilated_winograd(in, cin, h, w, packed, b, cout, d, relu, res, fast1, scratch, 1);
        conv3x3_dilated_winograd(in, cin, h, w, packed, b, cout, d, relu, res, fast2, scratch, 2);
        const double e = max_abs_diff(fast1, ref, n) / magnitude;
        check(e <= 1e-5,
              "conv3x3_dilated_winograd/%s vs ref cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
              isa, cin, cout, h, w, d, relu, residual, e);
        check(memcmp(fast1, fast2, n * sizeof(float)) == 0,
              "conv3x3_dilated_winograd/%s 1 vs 2 threads bit-identical cin=%d cout=%d %dx%d d=%d",
              isa, cin, cout, h, w, d);
    }
    conv3x3_winograd_force_portable(0);
    free(in), free(wt), free(b), free(res), free(ref), free(fast1), free(fast2);
    free(packed), free(scratch);
}

/* The direct kernel against the reference kernel with the loops of every
 * ISA this CPU has, on 1 and 2 threads. The error is taken relative to the
 * output's largest magnitude. */
static void test_conv3x3_direct(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    const size_t hw = (size_t)h * w, n = (size_t)cout * hw;
    float *in = rand_buf((size_t)cin * hw, 1.0f);
    float *wt = rand_buf((size_t)cout * cin * 9, 1.0f / sqrtf(9.0f * cin));
    float *b = rand_buf((size_t)cout, 0.5f);
    float *res = residual ? rand_buf(n, 1.0f) : NULL;
    float *ref = malloc(n * sizeof(float));
    float *fast1 = malloc(n * sizeof(float));
    float *fast2 = malloc(n * sizeof(float));
    if (!ref || !fast1 || !fast2) {
        perror("malloc");
        exit(2);
    }
    conv3x3_dilated_ref(in, cin, h, w, wt, b, cout, d, relu, res, ref, 2);
    double magnitude = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > magnitude)
            magnitude = fabs(ref[i]);
    if (magnitude == 0)
        magnitude = 1;
    for (kernel_isa isa = KERNEL_ISA_PORTABLE; isa <= kernel_isa_best(); isa++) {
        memset(fast1, 0xff, n * sizeof(float)); /* NaN: a pixel left unwritten fails */
        memset(fast2, 0xff, n * sizeof(float));
        conv3x3_dilated_direct(isa, in, cin, h, w, wt, b, cout, d, relu, res, fast1, 1);
        conv3x3_dilated_direct(isa, in, cin, h, w, wt, b, cout, d, relu, res, fast2, 2);
        const double e = max_abs_diff(fast1, ref, n) / magnitude;
        check(e <= 1e-5,
              "conv3x3_dilated_direct/%s vs ref cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
              kernel_isa_name(isa), cin, cout, h, w, d, relu, residual, e);
        check(memcmp(fast1, fast2, n * sizeof(float)) == 0,
              "conv3x3_dilated_direct/%s 1 vs 2 threads bit-identical cin=%d cout=%d %dx%d d=%d",
              kernel_isa_name(isa), cin, cout, h, w, d);
    }
    free(in), free(wt), free(b), free(res), free(ref), free(fast1), free(fast2);
}

static void test_maxpool(int c, int h, int w)
{
    const int oh = (h + 1) / 2, ow = (w + 1) / 2;
    float *in = rand_buf((size_t)c * h * w, 3.0f);
    float *out = malloc((size_t)c * oh * ow * sizeof(float));
    maxpool2x2_ceil(in, c, h, w, out, 2);
    int ok = 1;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float m = -INFINITY;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        const int sy = 2 * y + dy, sx = 2 * x + dx;
                        if (sy < h && sx < w && in[((size_t)ch * h + sy) * w + sx] > m)
                            m = in[((size_t)ch * h + sy) * w + sx];
                    }
                ok &= out[((size_t)ch * oh + y) * ow + x] == m;
            }
    check(ok, "maxpool2x2_ceil c=%d %dx%d -> %dx%d", c, h, w, oh, ow);
    /* row ranges, as the banded convolutions read them, are the same rows */
    float *rows = malloc((size_t)c * oh * ow * sizeof(float));
    int same = 1;
    for (int y0 = 0; y0 < oh; y0 += 2) {
        const int y1 = y0 + 2 < oh ? y0 + 2 : oh;
        maxpool2x2_ceil_rows(in, c, h, w, rows, y0, y1);
        for (int ch = 0; ch < c; ch++)
            same &= memcmp(rows + (size_t)ch * (y1 - y0) * ow, out + ((size_t)ch * oh + y0) * ow,
                           (size_t)(y1 - y0) * ow * sizeof(float)) == 0;
    }
    check(same, "maxpool2x2_ceil_rows c=%d %dx%d in 2-row ranges equals maxpool2x2_ceil", c, h, w);
    free(in), free(out), free(rows);
}

static void test_resize(int c, int ih, int iw, int oh, int ow)
{
    float *in = rand_buf((size_t)c * ih * iw, 2.0f);
    float *out = malloc((size_t)c * oh * ow * sizeof(float));
    resize_bilinear(in, c, ih, iw, out, oh, ow, 2);
    double worst = 0;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double sy = ((double)y + 0.5) * ih / oh - 0.5, sx = ((double)x + 0.5) * iw / ow - 0.5;
                if (sy < 0) sy = 0;
                if (sx < 0) sx = 0;
                const int y0 = (int)sy, x0 = (int)sx;
                const int y1 = y0 + (y0 < ih - 1), x1 = x0 + (x0 < iw - 1);
                const double ly = sy - y0, lx = sx - x0;
                const float *p = in + (size_t)ch * ih * iw;
                const double v = (1 - ly) * ((1 - lx) * p[y0 * iw + x0] + lx * p[y0 * iw + x1]) +
                                 ly * ((1 - lx) * p[y1 * iw + x0] + lx * p[y1 * iw + x1]);
                const double e = fabs(v - out[((size_t)ch * oh + y) * ow + x]);
                if (!(e <= worst))
                    worst = e;
            }
    /* PyTorch computes the scale and source coordinate in float: against the
     * double-precision definition that moves the taps by ~1 ulp of the
     * coordinate, so allow 5e-5 on values of magnitude 2 */
    check(worst <= 5e-5, "resize_bilinear c=%d %dx%d -> %dx%d: %.2g", c, ih, iw, oh, ow, worst);
    if (ih == oh && iw == ow)
        check(memcmp(in, out, (size_t)c * ih * iw * sizeof(float)) == 0,
              "resize_bilinear same size is an exact copy %dx%d", ih, iw);
    /* row ranges, as the banded convolutions read them, are the same rows */
    float *rows = malloc((size_t)c * oh * ow * sizeof(float));
    int same = 1;
    for (int y0 = 0; y0 < oh; y0 += 3) {
        const int y1 = y0 + 3 < oh ? y0 + 3 : oh;
        resize_bilinear_rows(in, c, ih, iw, rows, oh, ow, y0, y1);
        for (int ch = 0; ch < c; ch++)
            same &= memcmp(rows + (size_t)ch * (y1 - y0) * ow, out + ((size_t)ch * oh + y0) * ow,
                           (size_t)(y1 - y0) * ow * sizeof(float)) == 0;
    }
    check(same, "resize_bilinear_rows c=%d %dx%d -> %dx%d in 3-row ranges equals resize_bilinear",
          c, ih, iw, oh, ow);
    free(in), free(out), free(rows);
}

static void test_conv1x1(int cin, int cout, int n)
{
    float *in = rand_buf((size_t)cin * n, 1.0f), *wt = rand_buf((size_t)cin * cout, 1.0f);
    float *b = rand_buf((size_t)cout, 1.0f), *out = malloc((size_t)cout * n * sizeof(float));
    conv1x1(in, cin, (size_t)n, wt, b, cout, out);
    double worst = 0;
    for (int co = 0; co < cout; co++)
        for (int p = 0; p < n; p++) {
            double s = b[co];
            for (int ci = 0; ci < cin; ci++)
                s += (double)wt[co * cin + ci] * in[(size_t)ci * n + p];
            const double e = fabs(s - out[(size_t)co * n + p]);
            if (!(e <= worst))
                worst = e;
        }
    check(worst <= 1e-5, "conv1x1 cin=%d cout=%d n=%d: %.2g", cin, cout, n, worst);
    free(in), free(wt), free(b), free(out);
}

static void test_elementwise(void)
{
    const size_t n = 1001;
    float *a = rand_buf(n, 20.0f), *b = rand_buf(n, 1.0f), *o = malloc(n * sizeof(float));
    add_ref(a, b, o, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= o[i] == a[i] + b[i];
    check(ok, "add_ref n=%zu", n);
    memcpy(o, a, n * sizeof(float));
    sigmoid_inplace(o, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(1.0 / (1.0 + exp(-(double)a[i])) - o[i]);
        if (!(e <= worst))
            worst = e;
    }
    check(worst <= 1e-7, "sigmoid_inplace n=%zu: %.2g", n, worst);
    free(a), free(b), free(o);
}

int main(void)
{
    static const int dil[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) {
        test_conv3x3(3, 5, 13, 17, dil[i], 1, 0);
        test_conv3x3(16, 16, 7, 5, dil[i], 1, 1);
        test_conv3x3(1, 1, 1, 1, dil[i], 0, 0);
        test_conv3x3(5, 3, 1, 9, dil[i], 1, 0);
        test_conv3x3(8, 7, 11, 2, dil[i], 0, 1);
    }
    test_conv3x3(64, 64, 41, 37, 1, 1, 0);   /* several pixel tiles */
    test_conv3x3(64, 128, 10, 9, 2, 1, 1);   /* one tile, split over channels */
    test_conv3x3(130, 70, 6, 5, 1, 1, 0);    /* uneven channel split */
    for (int i = 0; i < 4; i++) {
        test_conv3x3_winograd(3, 5, 13, 17, dil[i], 1, 0);
        test_conv3x3_winograd(16, 16, 7, 5, dil[i], 1, 1);
        test_conv3x3_winograd(1, 1, 1, 1, dil[i], 0, 0);
        test_conv3x3_winograd(5, 3, 5, 3, dil[i], 1, 0);
        test_conv3x3_winograd(8, 7, 11, 2, dil[i], 0, 1);
        test_conv3x3_winograd(6, 9, 97, 61, dil[i], 1, 1);
        test_conv3x3_winograd(16, 16, 40, 40, dil[i], 1, 0); /* U2NetP RSU-4F */
    }
    test_conv3x3_winograd(64, 16, 80, 80, 1, 1, 0);   /* several blocks of tiles */
    test_conv3x3_winograd(32, 16, 37, 70, 1, 1, 1);   /* groups cut by block ends */
    test_conv3x3_winograd(64, 64, 10, 10, 2, 1, 0);   /* U2NetP bottom, one block */
    test_conv3x3_winograd(300, 20, 9, 11, 1, 1, 1);   /* two input-channel chunks */
    test_conv3x3_winograd(70, 300, 5, 7, 1, 0, 1);    /* output channels split over tasks */
    test_conv3x3_winograd(520, 130, 20, 20, 4, 1, 0); /* U2Net RSU-4F: chunks and splits */
    test_conv3x3_winograd(7, 6, 23, 29, 3, 1, 1);     /* dilations that do not divide 8 */
    test_conv3x3_winograd(7, 6, 23, 29, 5, 0, 1);
    test_conv3x3_winograd(4, 4, 9, 40, 16, 1, 0);     /* more sub-grid columns than lanes */
    check(conv3x3_winograd_worthwhile(64, 16, 320, 320, 1) &&
              conv3x3_winograd_worthwhile(512, 256, 20, 20, 8) &&
              !conv3x3_winograd_worthwhile(256, 256, 10, 10, 8),
          "conv3x3_winograd_worthwhile: yes at 320x320 and 20x20 d=8, no at 10x10 d=8");
    /* small shapes: every dilation, with and without ReLU and residual */
    static const int direct_small[][4] = {
        {3, 64, 13, 17}, {3, 5, 1, 1}, {64, 1, 7, 5}, {16, 1, 1, 33}, {5, 3, 9, 40},
        {1, 1, 1, 1}, {512, 1, 10, 10}, {3, 64, 37, 70},
    };
    for (size_t s = 0; s < sizeof direct_small / sizeof direct_small[0]; s++)
        for (int i = 0; i < 4; i++)
            for (int fused = 0; fused < 4; fused++)
                test_conv3x3_direct(direct_small[s][0], direct_small[s][1], direct_small[s][2],
                                    direct_small[s][3], dil[i], fused & 1, fused >> 1);
    /* large shapes of U2Net's side outputs, dilation 1 */
    test_conv3x3_direct(64, 1, 320, 320, 1, 0, 0);
    test_conv3x3_direct(64, 1, 320, 320, 1, 1, 1);
    test_conv3x3_direct(128, 1, 80, 80, 1, 0, 1);
    test_conv3x3_direct(1024, 1, 20, 20, 1, 1, 0);
    test_conv3x3_direct(7, 2, 23, 29, 3, 1, 1);  /* a dilation that does not divide the size */
    test_conv3x3_direct(20, 4, 6, 50, 16, 0, 1); /* dilation above the height */
    /* rows cut into several strips (128 columns, 64 with dilation) */
    test_conv3x3_direct(20, 3, 33, 150, 1, 1, 1);
    test_conv3x3_direct(20, 3, 33, 150, 5, 1, 0);
    test_conv3x3_direct(9, 40, 5, 300, 1, 0, 1);
    test_conv3x3_direct(9, 40, 5, 300, 3, 1, 1);
    check(conv3x3_direct_worthwhile(3, 64, 320, 320, 1) &&
              conv3x3_direct_worthwhile(64, 1, 320, 320, 1) &&
              conv3x3_direct_worthwhile(512, 1, 10, 10, 1) &&
              !conv3x3_direct_worthwhile(3, 64, 20, 20, 1) &&
              !conv3x3_direct_worthwhile(64, 16, 320, 320, 1),
          "conv3x3_direct_worthwhile: yes for 3 -> 64 at 320x320 and the side outputs, "
          "no for 3 -> 64 at 20x20 and 64 -> 16");
    for (int h = 1; h <= 5; h++)
        for (int w = 1; w <= 5; w++)
            test_maxpool(3, h, w);
    test_maxpool(16, 33, 20);
    test_resize(2, 5, 7, 10, 14);
    test_resize(2, 10, 14, 5, 7);
    test_resize(3, 3, 2, 97, 61);
    test_resize(1, 51, 31, 101, 61);
    test_resize(2, 1, 1, 7, 9);
    test_resize(2, 9, 7, 1, 1);
    test_resize(2, 13, 11, 13, 11);
    test_conv1x1(6, 1, 97 * 61);
    test_conv1x1(7, 3, 31);
    test_elementwise();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
