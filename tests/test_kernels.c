/* test_kernels.c - every fast kernel against its plain reference, and the
 * plain kernels against their definitions, on odd sizes and every dilation.
 * Prints one line per case and "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "foreground_band.h"
#include "guided_rows.h"
#include "half.h"
#include "kernels.h"

static int passed, failed;

/* The instruction sets this CPU runs (kernel_isa_runs), filled by main, and
 * the largest error relative to the output's magnitude seen for each with
 * each fast 3x3 kernel, printed at the end. */
static kernel_isa isas[KERNEL_ISA_COUNT];
static int nisas;
static double worst_winograd[KERNEL_ISA_COUNT], worst_direct[KERNEL_ISA_COUNT];

static void note_worst(double *worst, double e)
{
    if (!(e <= *worst))
        *worst = e;
}

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

/* 64-byte aligned floats, as the engine gives the vector kernels. */
static float *aligned_buf(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) {
        perror("posix_memalign");
        exit(2);
    }
    return p;
}

/* A random 3x3 convolution problem: in [cin, h, w], its planes, weights,
 * bias, and residual [cout, h, w] when asked; the arguments for the whole
 * image into out (planes h*w + 16 apart, so that kernels must use the given
 * plane stride). */
typedef struct {
    float *in, *wt, *b, *res;
    const float **planes;
    conv3x3_args a;
} conv_problem;

static conv_problem make_conv(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    const size_t hw = (size_t)h * w;
    conv_problem p;
    p.in = rand_buf((size_t)cin * hw, 1.0f);
    p.wt = rand_buf((size_t)cout * cin * 9, 1.0f / sqrtf(9.0f * cin));
    p.b = rand_buf((size_t)cout, 0.5f);
    p.res = residual ? rand_buf((size_t)cout * hw, 1.0f) : NULL;
    p.planes = malloc((size_t)cin * sizeof *p.planes);
    if (!p.planes) {
        perror("malloc");
        exit(2);
    }
    for (int c = 0; c < cin; c++)
        p.planes[c] = p.in + c * hw;
    const conv3x3_args a = {.in = p.planes, .cin = cin, .in_rows = h, .in_w = w, .row0 = 0,
                            .stride = 1, .h = h, .w = w, .weight = p.wt, .bias = p.b,
                            .cout = cout, .dilation = d, .relu = relu, .residual = p.res,
                            .residual_plane = hw, .out = NULL, .out_plane = hw + 16};
    p.a = a;
    return p;
}

static void free_conv(conv_problem *p)
{
    free(p->in), free(p->wt), free(p->b), free(p->res), free(p->planes);
}

static size_t out_floats(const conv3x3_args *a)
{
    return (size_t)a->cout * a->out_plane;
}

/* Largest |a - b| over the output pixels of a (its plane stride) and b
 * (planes h*w apart); NaN counts as the largest. */
static double out_diff(const conv3x3_args *a, const float *b)
{
    const size_t hw = (size_t)a->h * a->w;
    double m = 0;
    for (int c = 0; c < a->cout; c++) {
        const double e = max_abs_diff(a->out + c * a->out_plane, b + c * hw, hw);
        if (!(e <= m))
            m = e;
    }
    return m;
}

/* Whether the output pixels of a (in a->out) and of b (laid out as a->out)
 * are the same bits. */
static int same_out(const conv3x3_args *a, const float *b)
{
    const size_t hw = (size_t)a->h * a->w;
    for (int c = 0; c < a->cout; c++)
        if (memcmp(a->out + c * a->out_plane, b + c * a->out_plane, hw * sizeof(float)) != 0)
            return 0;
    return 1;
}

static void test_conv3x3(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    const size_t hw = (size_t)h * w;
    conv_problem p = make_conv(cin, cout, h, w, d, relu, residual);
    float *ref = malloc(cout * hw * sizeof(float));
    float *fast1 = malloc(out_floats(&p.a) * sizeof(float));
    float *fast2 = malloc(out_floats(&p.a) * sizeof(float));
    float *ref_k = malloc(out_floats(&p.a) * sizeof(float));
    float *scratch = malloc(2 * conv3x3_scratch_floats(cin) * sizeof(float));
    if (!ref || !fast1 || !fast2 || !ref_k || !scratch) {
        perror("malloc");
        exit(2);
    }
    /* the definition, in double, for the reference kernel */
    for (int co = 0; co < cout; co++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double s = p.b[co];
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int sy = y + (ky - 1) * d, sx = x + (kx - 1) * d;
                            if (sy >= 0 && sy < h && sx >= 0 && sx < w)
                                s += (double)p.wt[((size_t)co * cin + ci) * 9 + ky * 3 + kx] *
                                     p.in[(size_t)ci * hw + (size_t)sy * w + sx];
                        }
                if (relu && s < 0)
                    s = 0;
                if (p.res)
                    s += p.res[(size_t)co * hw + (size_t)y * w + x];
                ref[(size_t)co * hw + (size_t)y * w + x] = (float)s;
            }
    conv3x3_args a = p.a;
    a.out = ref_k;
    conv3x3_ref(&a, 2);
    const double worst_def = out_diff(&a, ref);
    check(worst_def <= 1e-5,
          "conv3x3_ref vs definition cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g", cin, cout, h,
          w, d, relu, residual, worst_def);
    a.out = fast1;
    conv3x3_im2col(&a, scratch, 1);
    const double e = out_diff(&a, ref);
    a.out = fast2;
    conv3x3_im2col(&a, scratch, 2);
    check(e <= 1e-5, "conv3x3_im2col vs definition cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
          cin, cout, h, w, d, relu, residual, e);
    check(same_out(&a, fast1),
          "conv3x3_im2col 1 vs 2 threads bit-identical cin=%d cout=%d %dx%d d=%d", cin, cout, h,
          w, d);
    free(ref), free(ref_k), free(fast1), free(fast2), free(scratch);
    free_conv(&p);
}

/* The reference kernel's output for p [cout, h, w] (planes h*w apart), and
 * its largest magnitude (1 when all zero) in *magnitude. */
static float *reference_out(const conv_problem *p, double *magnitude)
{
    const size_t hw = (size_t)p->a.h * p->a.w, n = (size_t)p->a.cout * hw;
    float *ref = malloc(n * sizeof(float));
    if (!ref) {
        perror("malloc");
        exit(2);
    }
    conv3x3_args a = p->a;
    a.out = ref, a.out_plane = hw;
    conv3x3_ref(&a, 2);
    *magnitude = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > *magnitude)
            *magnitude = fabs(ref[i]);
    if (*magnitude == 0)
        *magnitude = 1;
    return ref;
}

/* The Winograd kernel against the reference kernel with each of its hot
 * loops this CPU can run (portable, AVX2, AVX-512), on 1 and 2 threads,
 * with the weights packed inside and given packed. The error is taken
 * relative to the output's largest magnitude. */
static void test_conv3x3_winograd(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    conv_problem p = make_conv(cin, cout, h, w, d, relu, residual);
    double magnitude;
    float *ref = reference_out(&p, &magnitude);
    float *fast1 = malloc(out_floats(&p.a) * sizeof(float));
    float *fast2 = malloc(out_floats(&p.a) * sizeof(float));
    float *work = aligned_buf(conv3x3_winograd_workspace_floats(cin, cout, h, w, d, 0, 2));
    float *packed = aligned_buf(conv3x3_winograd_packed_floats(cin, cout));
    if (!fast1 || !fast2) {
        perror("malloc");
        exit(2);
    }
    conv3x3_args a = p.a;
    float *avx2 = malloc(out_floats(&a) * sizeof(float)); /* the AVX2 result */
    if (!avx2) {
        perror("malloc");
        exit(2);
    }
    for (int i = 0; i < nisas; i++) {
        const kernel_isa isa = isas[i];
        const char *name = kernel_isa_name(isa);
        conv3x3_winograd_pack(isa, p.wt, cin, cout, packed, 2);
        for (int given = 0; given <= 1; given++) {
            const float *pk = given ? packed : NULL;
            memset(fast1, 0xff, out_floats(&a) * sizeof(float)); /* NaN: unwritten fails */
            a.out = fast1;
            conv3x3_winograd(isa, &a, pk, work, 1);
            const double e = out_diff(&a, ref) / magnitude;
            note_worst(&worst_winograd[isa], e);
            a.out = fast2;
            conv3x3_winograd(isa, &a, pk, work, 2);
            check(e <= 1e-5,
                  "conv3x3_winograd/%s%s vs ref cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
                  name, given ? " packed" : "", cin, cout, h, w, d, relu, residual, e);
            check(same_out(&a, fast1),
                  "conv3x3_winograd/%s%s 1 vs 2 threads bit-identical cin=%d cout=%d %dx%d d=%d",
                  name, given ? " packed" : "", cin, cout, h, w, d);
            /* AVX-512 does AVX2's operations in AVX2's order, 16 tiles a vector */
            if (isa == KERNEL_ISA_AVX2)
                memcpy(avx2, fast1, out_floats(&a) * sizeof(float));
            if (isa == KERNEL_ISA_AVX512)
                check(same_out(&a, avx2),
                      "conv3x3_winograd/avx512%s bit-identical to avx2 cin=%d cout=%d %dx%d d=%d",
                      given ? " packed" : "", cin, cout, h, w, d);
        }
    }
    free(ref), free(fast1), free(fast2), free(work), free(packed), free(avx2);
    free_conv(&p);
}

/* Every kernel on a window of rows: output rows y0 .. y0+n-1 of the image
 * from input rows lo .. hi-1 only (lo <= y0 - d, hi >= y0 + n + d, clipped
 * to the image), written into planes with a stride of their own, against
 * those rows of the reference kernel's output for the whole image: the
 * same bits from the reference kernel, within 1e-5 of the output's
 * magnitude from the others (whose blocks of pixels and Winograd tiles fall
 * differently on a window). */
static void test_conv3x3_window(int cin, int cout, int h, int w, int d, int y0, int n)
{
    const size_t hw = (size_t)h * w;
    conv_problem p = make_conv(cin, cout, h, w, d, 1, 1);
    const int lo = y0 - d > 0 ? y0 - d : 0, hi = y0 + n + d < h ? y0 + n + d : h;
    const float **win = malloc((size_t)cin * sizeof *win);
    float *whole = malloc(out_floats(&p.a) * sizeof(float));
    const size_t band_plane = (size_t)n * w + 8;
    float *band = malloc((size_t)cout * band_plane * sizeof(float));
    float *work = aligned_buf(conv3x3_winograd_workspace_floats(cin, cout, n, w, d, 0, 2));
    float *scratch = malloc(2 * conv3x3_scratch_floats(cin) * sizeof(float));
    if (!win || !whole || !band || !scratch) {
        perror("malloc");
        exit(2);
    }
    conv3x3_args a = p.a;
    a.out = whole;
    conv3x3_ref(&a, 2);
    double magnitude = 0;
    for (int c = 0; c < cout; c++)
        for (size_t i = 0; i < hw; i++)
            if (fabs(whole[c * a.out_plane + i]) > magnitude)
                magnitude = fabs(whole[c * a.out_plane + i]);
    for (int c = 0; c < cin; c++)
        win[c] = p.in + c * hw + (size_t)lo * w;
    conv3x3_args wa = p.a; /* the window */
    wa.in = win, wa.in_rows = hi - lo, wa.row0 = y0 - lo, wa.h = n;
    wa.residual = p.res + (size_t)y0 * w;
    wa.out = band, wa.out_plane = band_plane;
    for (int k = 0; k < 2 + 2 * nisas; k++) {
        const kernel_isa isa = k < 2 ? KERNEL_ISA_PORTABLE : isas[(k - 2) % nisas];
        char name[32];
        snprintf(name, sizeof name, "%s%s", k == 0 ? "ref" : k == 1 ? "im2col" : k < 2 + nisas ? "winograd/" : "direct/",
                 k < 2 ? "" : kernel_isa_name(isa));
        memset(band, 0xff, (size_t)cout * band_plane * sizeof(float));
        if (k == 0)
            conv3x3_ref(&wa, 2);
        else if (k == 1)
            conv3x3_im2col(&wa, scratch, 2);
        else if (k < 2 + nisas)
            conv3x3_winograd(isa, &wa, NULL, work, 2);
        else
            conv3x3_direct(isa, &wa, 2);
        double e = 0;
        for (int c = 0; c < cout; c++) {
            const double ec = max_abs_diff(band + c * band_plane,
                                           whole + c * a.out_plane + (size_t)y0 * w, (size_t)n * w);
            if (!(ec <= e))
                e = ec;
        }
        e /= magnitude > 0 ? magnitude : 1;
        if (k >= 2)
            note_worst(k < 2 + nisas ? &worst_winograd[isa] : &worst_direct[isa], e);
        check(k == 0 ? e == 0 : e <= 1e-5,
              "conv3x3 window %s cin=%d cout=%d %dx%d d=%d rows %d..%d of %d..%d: %.2g", name, cin,
              cout, h, w, d, y0, y0 + n - 1, lo, hi - 1, e);
    }
    free(win), free(whole), free(band), free(work), free(scratch);
    free_conv(&p);
}

/* The direct kernel against the reference kernel with the loops of every
 * ISA this CPU has, on 1 and 2 threads. The error is taken relative to the
 * output's largest magnitude. */
static void test_conv3x3_direct(int cin, int cout, int h, int w, int d, int relu, int residual)
{
    conv_problem p = make_conv(cin, cout, h, w, d, relu, residual);
    double magnitude;
    float *ref = reference_out(&p, &magnitude);
    float *fast1 = malloc(out_floats(&p.a) * sizeof(float));
    float *fast2 = malloc(out_floats(&p.a) * sizeof(float));
    if (!fast1 || !fast2) {
        perror("malloc");
        exit(2);
    }
    conv3x3_args a = p.a;
    for (int i = 0; i < nisas; i++) {
        const kernel_isa isa = isas[i];
        memset(fast1, 0xff, out_floats(&a) * sizeof(float)); /* NaN: unwritten fails */
        memset(fast2, 0xff, out_floats(&a) * sizeof(float));
        a.out = fast1;
        conv3x3_direct(isa, &a, 1);
        const double e = out_diff(&a, ref) / magnitude;
        note_worst(&worst_direct[isa], e);
        a.out = fast2;
        conv3x3_direct(isa, &a, 2);
        check(e <= 1e-5,
              "conv3x3_direct/%s vs ref cin=%d cout=%d %dx%d d=%d relu=%d res=%d: %.2g",
              kernel_isa_name(isa), cin, cout, h, w, d, relu, residual, e);
        check(same_out(&a, fast1),
              "conv3x3_direct/%s 1 vs 2 threads bit-identical cin=%d cout=%d %dx%d d=%d",
              kernel_isa_name(isa), cin, cout, h, w, d);
    }
    free(ref), free(fast1), free(fast2);
    free_conv(&p);
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
    const float *planes[16];
    for (int ci = 0; ci < cin; ci++)
        planes[ci] = in + (size_t)ci * n;
    conv1x1(planes, cin, (size_t)n, wt, b, cout, out);
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
    float *a = rand_buf(n, 20.0f), *o = malloc(n * sizeof(float));
    memcpy(o, a, n * sizeof(float));
    sigmoid_inplace(o, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(1.0 / (1.0 + exp(-(double)a[i])) - o[i]);
        if (!(e <= worst))
            worst = e;
    }
    check(worst <= 1e-7, "sigmoid_inplace n=%zu: %.2g", n, worst);
    free(a), free(o);
}

/* A strided convolution (ISNet's stem: 3 -> 64, stride 2) in [cin, ih, iw]
 * -> [cout, (ih-1)/s + 1, (iw-1)/s + 1]: the reference against the formula
 * in double, im2col against the reference, and both on windows of rows
 * (row0 and in_rows as a band of the engine gives them). */
static void test_conv3x3_strided(int cin, int cout, int ih, int iw, int s, int d)
{
    const int oh = (ih - 1) / s + 1, ow = (iw - 1) / s + 1;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow;
    float *in = rand_buf((size_t)cin * ihw, 1.0f), *wt = rand_buf((size_t)cout * cin * 9, 0.3f);
    float *b = rand_buf((size_t)cout, 0.5f);
    float *ref = aligned_buf((size_t)cout * ohw), *got = aligned_buf((size_t)cout * ohw);
    const float **planes = malloc((size_t)cin * sizeof *planes);
    float *scratch = aligned_buf(2 * conv3x3_scratch_floats(cin));
    for (int c = 0; c < cin; c++)
        planes[c] = in + c * ihw;
    conv3x3_args a = {.in = planes, .cin = cin, .in_rows = ih, .in_w = iw, .row0 = 0,
                      .stride = s, .h = oh, .w = ow, .weight = wt, .bias = b, .cout = cout,
                      .dilation = d, .relu = 0, .out = ref, .out_plane = ohw};
    conv3x3_ref(&a, 2);
    double worst = 0;
    for (int co = 0; co < cout; co++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double acc = b[co];
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int sy = y * s + (ky - 1) * d, sx = x * s + (kx - 1) * d;
                            if (sy >= 0 && sy < ih && sx >= 0 && sx < iw)
                                acc += (double)wt[((size_t)co * cin + ci) * 9 + ky * 3 + kx] *
                                       in[ci * ihw + (size_t)sy * iw + sx];
                        }
                const double e = fabs(acc - ref[co * ohw + (size_t)y * ow + x]);
                worst = e > worst || e != e ? e : worst;
            }
    check(worst <= 1e-5, "conv3x3_ref stride %d %d->%d %dx%d d=%d against the formula: %.2g", s,
          cin, cout, ih, iw, d, worst);
    a.out = got;
    conv3x3_im2col(&a, scratch, 2);
    check(out_diff(&a, ref) <= 1e-5, "conv3x3_im2col stride %d %d->%d %dx%d d=%d: %.2g", s, cin,
          cout, ih, iw, d, out_diff(&a, ref));
    /* output rows [3, oh - 2) from a window of input rows [lo, hi) */
    if (oh > 5) {
        const int p0 = 3, q0 = oh - 2, lo = p0 * s - d, hi = (q0 - 1) * s + d + 1 < ih
                                                              ? (q0 - 1) * s + d + 1 : ih;
        const float **win = malloc((size_t)cin * sizeof *win);
        for (int c = 0; c < cin; c++)
            win[c] = planes[c] + (size_t)lo * iw;
        conv3x3_args wa = a;
        wa.in = win, wa.in_rows = hi - lo, wa.row0 = p0 * s - lo, wa.h = q0 - p0;
        for (int k = 0; k < 2; k++) {
            memset(got, 0, sizeof(float) * cout * ohw);
            wa.out = got + (size_t)p0 * ow;
            if (k == 0)
                conv3x3_ref(&wa, 2);
            else
                conv3x3_im2col(&wa, scratch, 2);
            double e = 0;
            for (int co = 0; co < cout; co++)
                for (size_t i = (size_t)p0 * ow; i < (size_t)q0 * ow; i++) {
                    const double di = fabs(got[co * ohw + i] - ref[co * ohw + i]);
                    e = di > e || di != di ? di : e;
                }
            check(e <= (k ? 1e-5 : 0.0), "conv3x3_%s stride %d on rows %d..%d from input rows "
                  "%d..%d: %.2g", k ? "im2col" : "ref", s, p0, q0, lo, hi, e);
        }
        free(win);
    }
    free(in), free(wt), free(b), free(ref), free(got), free(planes), free(scratch);
}

/* Every float16 bit pattern converts exactly (against ldexp in double) and
 * identically on every instruction set. */
static void test_half_to_float(void)
{
    enum { N = 65536 };
    uint16_t *h = malloc(N * sizeof *h);
    float *ref = malloc(N * sizeof *ref), *got = malloc(N * sizeof *got);
    for (int i = 0; i < N; i++)
        h[i] = (uint16_t)i;
    int exact = 1;
    for (int i = 0; i < N; i++) {
        const int e = (i >> 10) & 31, m = i & 1023;
        const double sign = i & 0x8000 ? -1.0 : 1.0;
        const float f = half_to_float(h[i]);
        if (e == 31)
            exact &= m ? f != f : f == (float)(sign * INFINITY);
        else
            exact &= f == (float)(sign * (e ? ldexp(1024 + m, e - 25) : ldexp(m, -24))) &&
                     !!signbit(f) == (sign < 0);
        ref[i] = f;
    }
    check(exact, "half_to_float: all 65536 float16 values exact");
    for (int i = 0; i < nisas; i++) {
        memset(got, 0, N * sizeof *got);
        half_to_float_n(isas[i], h, got, N, 2);
        check(memcmp(got, ref, N * sizeof *got) == 0, "half_to_float_n %s: the same bits",
              kernel_isa_name(isas[i]));
    }
    free(h), free(ref), free(got);
}

static void test_guided_row(void)
{
    /* widths around the vector lengths, values of the sizes refinement
     * sees (coefficients about -50..50, b about -1..2) */
    static const int widths[] = {1, 7, 8, 9, 31, 1000};
    const float fy = 0.3125f;
    for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
        const int w = widths[k];
        float *r0 = malloc(GUIDED_ROW_PLANES * (size_t)w * sizeof *r0);
        float *r1 = malloc(GUIDED_ROW_PLANES * (size_t)w * sizeof *r1);
        float *ref = malloc((size_t)w * sizeof *ref), *got = malloc((size_t)w * sizeof *got);
        unsigned char *rgb = malloc(3 * (size_t)w);
        unsigned seed = 7u + (unsigned)w;
        for (int i = 0; i < GUIDED_ROW_PLANES * w; i++) {
            seed = seed * 1103515245u + 12345u;
            r0[i] = (float)((seed >> 8) % 10000) / 100.0f - 50.0f;
            seed = seed * 1103515245u + 12345u;
            r1[i] = (float)((seed >> 8) % 10000) / 100.0f - 50.0f;
        }
        for (int i = 0; i < 3 * w; i++)
            rgb[i] = (unsigned char)(i * 37 + w);
        /* the portable loop against the formula in double */
        guided_row_rgb(KERNEL_ISA_PORTABLE, r0, r1, fy, rgb, w, ref);
        double worst = 0.0;
        for (int x = 0; x < w; x++) {
            double q = 0.0;
            for (int c = 0; c < GUIDED_ROW_PLANES; c++) {
                const double a = r0[c * w + x] + (double)fy * (r1[c * w + x] - r0[c * w + x]);
                q += c < 3 ? a * (rgb[3 * x + c] / 255.0) : a;
            }
            const double e = fabs((double)ref[x] - (double)(float)q);
            worst = e > worst ? e : worst;
        }
        check(worst < 1e-4, "guided_row_rgb portable, width %d: %.2g from the double formula",
              w, worst);
        /* every instruction set against the portable loop, bit for bit */
        for (int i = 0; i < nisas; i++) {
            guided_row_rgb(isas[i], r0, r1, fy, rgb, w, got);
            check(memcmp(got, ref, (size_t)w * sizeof *got) == 0,
                  "guided_row_rgb %s, width %d: the portable loop's bits",
                  kernel_isa_name(isas[i]), w);
        }
        free(r0), free(r1), free(ref), free(got), free(rgb);
    }
}

/* One raster-order sweep of foreground estimation over a w x h image in
 * double, as pymatting writes it: each pixel's 2x2 system with its four
 * neighbours (the pixel itself outside the image), F and B clipped. */
static void foreground_sweep_reference(int w, int h, const float *alpha, const float *colour,
                                       double *f, double *b)
{
    static const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    const size_t n = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            const double a0 = alpha[i], a1 = 1.0 - a0;
            for (int c = 0; c < 3; c++) {
                double a00 = a0 * a0, a01 = a0 * a1, a11 = a1 * a1;
                double b0 = a0 * colour[c * n + i], b1 = a1 * colour[c * n + i];
                for (int d = 0; d < 4; d++) {
                    int x2 = x + dx[d], y2 = y + dy[d];
                    x2 = x2 < 0 ? 0 : x2 >= w ? w - 1 : x2;
                    y2 = y2 < 0 ? 0 : y2 >= h ? h - 1 : y2;
                    const size_t j = (size_t)y2 * w + x2;
                    const double da = (double)FG_REGULARIZATION +
                                      (double)FG_GRADIENT_WEIGHT * fabs(a0 - alpha[j]);
                    a00 += da, a11 += da;
                    b0 += da * f[c * n + j], b1 += da * b[c * n + j];
                }
                const double inv = 1.0 / (a00 * a11 - a01 * a01);
                const double fv = inv * (a11 * b0 - a01 * b1), bv = inv * (a00 * b1 - a01 * b0);
                f[c * n + i] = fv < 0 ? 0 : fv > 1 ? 1 : fv;
                b[c * n + i] = bv < 0 ? 0 : bv > 1 ? 1 : bv;
            }
        }
}

/* foreground_band_steps on every band of a w x h image in turn (one
 * sweep): the portable loop within 1e-5 of the double raster sweep, every
 * instruction set the portable loop's bits. h = 21 gives a first, a middle
 * and a last band of 5 rows. */
static void test_foreground_band(int w, int h)
{
    const size_t n = (size_t)w * h;
    const int bands = (h + FG_LANES - 1) / FG_LANES;
    const size_t band_floats = fg_band_floats(w);
    enum { PLANES = 10 }; /* alpha, colour x 3, F x 3, B x 3 */
    float *img = malloc(PLANES * n * sizeof *img);
    float *start = malloc(PLANES * band_floats * bands * sizeof *start);
    float *ref = malloc(PLANES * band_floats * bands * sizeof *ref);
    float *got = malloc(PLANES * band_floats * bands * sizeof *got);
    double *f = malloc(3 * n * sizeof *f), *b = malloc(3 * n * sizeof *b);
    unsigned seed = 11u + (unsigned)w;
    for (size_t i = 0; i < PLANES * n; i++) {
        seed = seed * 1103515245u + 12345u;
        const float u = (float)((seed >> 8) % 1001) / 1000.0f;
        /* alpha 0 or 1 a third of the time each, as in a real map */
        img[i] = i < n && u < 0.33f ? 0.0f : i < n && u > 0.67f ? 1.0f : u;
    }
    for (size_t i = 0; i < 3 * n; i++)
        f[i] = img[4 * n + i], b[i] = img[7 * n + i];
    /* the bands' planes: every slot the nearest pixel's value */
    memset(start, 0, PLANES * band_floats * bands * sizeof *start);
    for (int k = 0; k < bands; k++)
        for (int lane = 0; lane < FG_LANES; lane++)
            for (int s = 0; s < fg_band_slots(w); s++) {
                int y = k * FG_LANES + lane, x = s - lane - 1;
                y = y < h ? y : h - 1;
                x = x < 0 ? 0 : x >= w ? w - 1 : x;
                for (int p = 0; p < PLANES; p++)
                    start[(p * bands + k) * band_floats + fg_slot(s, lane)] =
                        img[p * n + (size_t)y * w + x];
            }
    for (int i = -1; i < nisas; i++) {
        float *planes = i < 0 ? ref : got;
        memcpy(planes, start, PLANES * band_floats * bands * sizeof *planes);
        for (int k = 0; k < bands; k++) {
            fg_band B = {.w = w, .rows = h - k * FG_LANES < FG_LANES ? h - k * FG_LANES : FG_LANES};
#define FG_PLANE(p, band) (planes + ((size_t)(p) * bands + (band)) * band_floats)
            B.alpha = FG_PLANE(0, k);
            B.alpha_up = k > 0 ? FG_PLANE(0, k - 1) : NULL;
            B.alpha_down = k + 1 < bands ? FG_PLANE(0, k + 1) : NULL;
            for (int c = 0; c < 3; c++) {
                B.colour[c] = FG_PLANE(1 + c, k);
                B.f[c] = FG_PLANE(4 + c, k), B.b[c] = FG_PLANE(7 + c, k);
                B.f_up[c] = k > 0 ? FG_PLANE(4 + c, k - 1) : NULL;
                B.b_up[c] = k > 0 ? FG_PLANE(7 + c, k - 1) : NULL;
                B.f_down[c] = k + 1 < bands ? FG_PLANE(4 + c, k + 1) : NULL;
                B.b_down[c] = k + 1 < bands ? FG_PLANE(7 + c, k + 1) : NULL;
            }
#undef FG_PLANE
            /* in two pieces, as the threads run it */
            const int end = w + FG_LANES, mid = end / 2 > 1 ? end / 2 : 1;
            foreground_band_steps(i < 0 ? KERNEL_ISA_PORTABLE : isas[i], &B, 1, mid);
            foreground_band_steps(i < 0 ? KERNEL_ISA_PORTABLE : isas[i], &B, mid, end);
        }
        if (i >= 0)
            check(memcmp(got, ref, PLANES * band_floats * bands * sizeof *got) == 0,
                  "foreground_band_steps %s, %dx%d: the portable loop's bits",
                  kernel_isa_name(isas[i]), w, h);
    }
    foreground_sweep_reference(w, h, img, img + n, f, b);
    double worst = 0.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t at = (size_t)(y / FG_LANES) * band_floats +
                              fg_slot(x + y % FG_LANES + 1, y % FG_LANES);
            for (int c = 0; c < 3; c++) {
                const size_t i = c * n + (size_t)y * w + x;
                const double ef = fabs(ref[(size_t)(4 + c) * bands * band_floats + at] - f[i]);
                const double eb = fabs(ref[(size_t)(7 + c) * bands * band_floats + at] - b[i]);
                worst = ef > worst ? ef : worst;
                worst = eb > worst ? eb : worst;
            }
        }
    check(worst < 1e-5, "foreground_band_steps portable, %dx%d: %.2g from a raster sweep in double",
          w, h, worst);
    free(img), free(start), free(ref), free(got), free(f), free(b);
}

int main(void)
{
    for (int isa = 0; isa < KERNEL_ISA_COUNT; isa++)
        if (kernel_isa_runs((kernel_isa)isa))
            isas[nisas++] = (kernel_isa)isa;
    check(nisas >= 1 && isas[0] == KERNEL_ISA_PORTABLE && isas[nisas - 1] == kernel_isa_best(),
          "instruction sets of this CPU: %d, the best %s", nisas,
          kernel_isa_name(kernel_isa_best()));
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
    test_conv3x3_winograd(1100, 20, 40, 40, 1, 1, 1); /* by channels, V in several passes */
    test_conv3x3_winograd(256, 260, 48, 48, 1, 1, 1); /* by tiles, two blocks of weights */
    test_conv3x3_winograd(3, 64, 45, 47, 1, 1, 0);    /* by tiles, short last block */
    test_conv3x3_winograd(7, 6, 23, 29, 3, 1, 1);     /* dilations that do not divide 8 */
    test_conv3x3_winograd(7, 6, 23, 29, 5, 0, 1);
    test_conv3x3_winograd(4, 4, 9, 40, 16, 1, 0);     /* more sub-grid columns than lanes */
    test_conv3x3_window(5, 7, 23, 29, 1, 0, 8);       /* top band */
    test_conv3x3_window(5, 7, 23, 29, 1, 8, 8);       /* inner band */
    test_conv3x3_window(5, 7, 23, 29, 1, 16, 7);      /* bottom band */
    test_conv3x3_window(16, 9, 40, 37, 2, 12, 4);     /* dilated */
    test_conv3x3_window(64, 16, 200, 64, 1, 100, 24); /* Winograd by tiles */
    test_conv3x3_window(3, 64, 40, 150, 1, 12, 8);    /* direct, several output channels */
    test_conv3x3_window(64, 1, 40, 150, 1, 20, 12);   /* direct, one output channel */
    test_conv3x3_window(20, 3, 33, 70, 3, 9, 5);      /* direct, dilated */
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
    test_conv3x3_strided(3, 64, 37, 29, 2, 1);
    test_conv3x3_strided(3, 64, 64, 64, 2, 1);
    test_conv3x3_strided(5, 7, 30, 17, 2, 2);
    test_conv3x3_strided(4, 3, 1, 1, 2, 1);
    test_conv3x3_strided(6, 5, 23, 31, 1, 3);
    test_half_to_float();
    test_guided_row();
    static const int fg_widths[] = {1, 5, 8, 9, 40};
    for (size_t k = 0; k < sizeof fg_widths / sizeof *fg_widths; k++)
        test_foreground_band(fg_widths[k], 21);
    test_foreground_band(17, 8);
    test_foreground_band(3, 1);
    for (int i = 0; i < nisas; i++)
        printf("worst error relative to the output's magnitude, %s: winograd %.2g, direct %.2g\n",
               kernel_isa_name(isas[i]), worst_winograd[isas[i]], worst_direct[isas[i]]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
