/* test_gpu_bodies.c - the CUDA backend's element bodies (cuda/gpu_bodies.h)
 * on the CPU, over the index spaces its kernels launch, against the CPU
 * reference kernels: a 3x3 convolution whose inputs are a tensor as it is,
 * one resized and one pooled (im2col + a matrix product, and the direct
 * body), for every dilation a network has and more, strides 1 and 2, odd
 * sizes, a batch of three; the bilinear resize, the pool, the 1x1 fuse and
 * the sigmoid. The whole networks run through the same bodies in
 * test_backends (cuda/gpu_emulate.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_bodies.h"
#include "kernels.h"

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

static unsigned rng = 2024u;

static float *random_floats(size_t n, float scale)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) {
        perror("malloc");
        exit(2);
    }
    for (size_t i = 0; i < n; i++) {
        rng = rng * 1664525u + 1013904223u;
        p[i] = ((rng >> 8) / 16777216.0f - 0.5f) * 2.0f * scale;
    }
    return p;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        m = d > m || d != d ? d : m;
    }
    return m;
}

enum { BATCH = 3 };

/* A convolution of cat(a [ca, h, w], up(b [cb, bh, bw]), pool(p [cp, 2h-1,
 * 2w]) ) at h x w, stride s, dilation d, out [cout, oh, ow] + residual:
 * the GEMM path and the direct body against conv3x3_ref on the inputs
 * resized and pooled by the CPU kernels, every image of the batch. */
static void test_conv(int ca, int cb, int cp, int cout, int h, int w, int s, int d)
{
    const int bh = (h + 2) / 3, bw = (w + 1) / 2, ph = 2 * h - 1, pw = 2 * w;
    const int oh = (h - 1) / s + 1, ow = (w - 1) / s + 1, cin = ca + cb + cp;
    const size_t a_img = (size_t)ca * h * w, b_img = (size_t)cb * bh * bw, p_img = (size_t)cp * ph * pw;
    const size_t o_img = (size_t)cout * oh * ow;
    /* the arena: a, b, p, residual, out of every image */
    const size_t a_off = 0, b_off = a_off + a_img * BATCH, p_off = b_off + b_img * BATCH;
    const size_t r_off = p_off + p_img * BATCH, o_off = r_off + o_img * BATCH;
    float *arena = random_floats(o_off + o_img * BATCH, 1.0f);
    float *weights = random_floats((size_t)cout * cin * 9 + cout, 0.3f);
    gpu_step st;
    memset(&st, 0, sizeof st);
    st.kind = STEP_CONV_GEMM, st.nsrc = 3, st.cin = cin, st.in_h = h, st.in_w = w;
    st.src[0] = (gpu_source){READ_WHOLE, {a_off, a_img, ca, h, w}};
    st.src[1] = (gpu_source){READ_UP, {b_off, b_img, cb, bh, bw}};
    st.src[2] = (gpu_source){READ_POOL, {p_off, p_img, cp, ph, pw}};
    st.out = (gpu_tensor){o_off, o_img, cout, oh, ow};
    st.residual = (gpu_tensor){r_off, o_img, cout, oh, ow};
    st.has_residual = 1, st.relu = 1, st.weight_off = 0, st.bias_off = (long)cout * cin * 9;
    st.cout = cout, st.stride = s, st.dilation = d, st.chunk_rows = 3;
    float *want = malloc(sizeof(float) * o_img * BATCH), *got = malloc(sizeof(float) * o_img * BATCH);
    float *cat = malloc(sizeof(float) * (size_t)cin * h * w);
    const float **planes = malloc(sizeof *planes * (size_t)cin);
    float *col = malloc(sizeof(float) * (size_t)9 * cin * st.chunk_rows * ow * BATCH);
    if (!want || !got || !cat || !planes || !col) {
        perror("malloc");
        exit(2);
    }
    for (int n = 0; n < BATCH; n++) {
        const size_t hw = (size_t)h * w;
        memcpy(cat, arena + a_off + n * a_img, sizeof(float) * a_img);
        resize_bilinear(arena + b_off + n * b_img, cb, bh, bw, cat + (size_t)ca * hw, h, w, 1);
        maxpool2x2_ceil(arena + p_off + n * p_img, cp, ph, pw, cat + (size_t)(ca + cb) * hw, 1);
        for (int c = 0; c < cin; c++)
            planes[c] = cat + c * hw;
        const conv3x3_args ra = {.in = planes, .cin = cin, .in_rows = h, .in_w = w, .row0 = 0,
                                 .stride = s, .h = oh, .w = ow, .weight = weights,
                                 .bias = weights + st.bias_off, .cout = cout, .dilation = d,
                                 .relu = 1, .residual = arena + r_off + n * o_img,
                                 .residual_plane = (size_t)oh * ow, .out = want + n * o_img,
                                 .out_plane = (size_t)oh * ow};
        conv3x3_ref(&ra, 1);
    }
    /* the GEMM path, by chunks of rows as cuda_backend.cu runs it */
    const size_t plane = (size_t)oh * ow;
    for (int r0 = 0; r0 < oh; r0 += st.chunk_rows) {
        const int rows = r0 + st.chunk_rows < oh ? st.chunk_rows : oh - r0;
        const size_t cols = (size_t)rows * ow, per_image = (size_t)9 * cin * cols;
        for (size_t i = 0; i < per_image * BATCH; i++)
            col[i] = gpu_im2col_value(arena, &st, r0, rows, i);
        for (int n = 0; n < BATCH; n++) {
            float *c = arena + o_off + n * o_img + (size_t)r0 * ow;
            for (int co = 0; co < cout; co++)
                memset(c + co * plane, 0, sizeof(float) * cols);
            gemm_accumulate(cout, (int)cols, 9 * cin, weights, 9 * cin, col + n * per_image,
                            (int)cols, c, (int)plane);
        }
        for (size_t i = 0; i < (size_t)BATCH * cout * cols; i++) {
            int n, c, y, x;
            const size_t at = gpu_gemm_out_index(&st, r0, rows, i, &n, &c, &y, &x);
            arena[at] = gpu_finish(arena[at] + gpu_bias(&st, weights, c), &st, arena, n, c, y, x);
        }
    }
    memcpy(got, arena + o_off, sizeof(float) * o_img * BATCH);
    const double eg = max_diff(got, want, o_img * BATCH);
    for (size_t i = 0; i < o_img * BATCH; i++)
        got[i] = gpu_direct_value(arena, weights, &st, i);
    const double ed = max_diff(got, want, o_img * BATCH);
    check(eg <= 1e-5 && ed <= 1e-5,
          "3x3 conv of cat(%d, up %d, pool %d) -> %d at %dx%d, stride %d, dilation %d, batch %d: "
          "im2col+GEMM %.2g, direct %.2g (tol 1e-5)", ca, cb, cp, cout, h, w, s, d, BATCH, eg, ed);
    free(arena), free(weights), free(want), free(got), free(cat), free(planes), free(col);
}

/* Resize and pool steps against resize_bilinear and maxpool2x2_ceil: the
 * same operations in the same order, so the same bits. */
static void test_resample(int c, int ih, int iw, int oh, int ow)
{
    const size_t in_img = (size_t)c * ih * iw, up_img = (size_t)c * oh * ow;
    const int ph = (ih + 1) / 2, pw = (iw + 1) / 2;
    const size_t p_img = (size_t)c * ph * pw;
    float *arena = random_floats(in_img * BATCH, 2.0f);
    float *want = malloc(sizeof(float) * up_img), *got = malloc(sizeof(float) * up_img * BATCH);
    float *pwant = malloc(sizeof(float) * p_img), *pgot = malloc(sizeof(float) * p_img * BATCH);
    gpu_step st;
    memset(&st, 0, sizeof st);
    st.kind = STEP_RESIZE, st.nsrc = 1;
    st.src[0] = (gpu_source){READ_WHOLE, {0, in_img, c, ih, iw}};
    st.out = (gpu_tensor){0, up_img, c, oh, ow};
    for (size_t i = 0; i < up_img * BATCH; i++)
        got[i] = gpu_resample_value(arena, &st, i);
    st.kind = STEP_POOL, st.out = (gpu_tensor){0, p_img, c, ph, pw};
    for (size_t i = 0; i < p_img * BATCH; i++)
        pgot[i] = gpu_resample_value(arena, &st, i);
    int same = 1, psame = 1;
    for (int n = 0; n < BATCH; n++) {
        resize_bilinear(arena + n * in_img, c, ih, iw, want, oh, ow, 1);
        same &= memcmp(want, got + n * up_img, sizeof(float) * up_img) == 0;
        maxpool2x2_ceil(arena + n * in_img, c, ih, iw, pwant, 1);
        psame &= memcmp(pwant, pgot + n * p_img, sizeof(float) * p_img) == 0;
    }
    check(same, "resize body %dx%d -> %dx%d, batch %d: the bits of resize_bilinear", ih, iw, oh,
          ow, BATCH);
    check(psame, "pool body %dx%d, batch %d: the bits of maxpool2x2_ceil", ih, iw, BATCH);
    free(arena), free(want), free(got), free(pwant), free(pgot);
}

/* The fuse over six single-channel planes, and the sigmoid. */
static void test_conv1x1_sigmoid(int h, int w)
{
    enum { SIDES = 6 };
    const size_t hw = (size_t)h * w, block = (size_t)(SIDES + 1) * hw;
    float *arena = random_floats(block * BATCH, 3.0f);
    float *weights = random_floats(SIDES + 1, 0.5f);
    gpu_step st;
    memset(&st, 0, sizeof st);
    st.kind = STEP_CONV1X1, st.nsrc = SIDES, st.cin = SIDES, st.in_h = h, st.in_w = w;
    for (int k = 0; k < SIDES; k++)
        st.src[k] = (gpu_source){READ_WHOLE, {(size_t)(k + 1) * hw, block, 1, h, w}};
    st.out = (gpu_tensor){0, block, 1, h, w};
    st.cout = 1, st.weight_off = 0, st.bias_off = SIDES;
    float *got = malloc(sizeof(float) * hw * BATCH), *want = malloc(sizeof(float) * hw);
    for (size_t i = 0; i < hw * BATCH; i++)
        got[i] = gpu_conv1x1_value(arena, weights, &st, i);
    int same = 1;
    for (int n = 0; n < BATCH; n++) {
        const float *planes[SIDES];
        for (int k = 0; k < SIDES; k++)
            planes[k] = arena + n * block + (size_t)(k + 1) * hw;
        conv1x1(planes, SIDES, hw, weights, weights + SIDES, 1, want);
        same &= memcmp(want, got + n * hw, sizeof(float) * hw) == 0;
    }
    check(same, "1x1 fuse body of %d planes at %dx%d, batch %d: the bits of conv1x1", SIDES, h, w,
          BATCH);
    for (size_t i = 0; i < hw; i++)
        want[i] = arena[i], got[i] = gpu_sigmoid(arena[i]);
    sigmoid_inplace(want, hw);
    check(memcmp(want, got, sizeof(float) * hw) == 0, "sigmoid body: the bits of sigmoid_inplace");
    free(arena), free(weights), free(got), free(want);
}

int main(void)
{
    const int dilations[] = {1, 2, 3, 4, 8, 16};
    for (size_t i = 0; i < sizeof dilations / sizeof dilations[0]; i++) {
        test_conv(3, 2, 2, 5, 17, 13, 1, dilations[i]);
        test_conv(4, 3, 1, 6, 9, 20, 2, dilations[i]);
    }
    test_conv(3, 1, 1, 64, 23, 15, 2, 1);   /* ISNet's stem shape, 3 -> 64, stride 2 */
    test_conv(8, 8, 0, 1, 31, 7, 1, 1);     /* a side output, cin -> 1 */
    test_conv(1, 1, 1, 2, 1, 1, 1, 1);      /* 1x1 images */
    test_resample(3, 5, 7, 17, 11);
    test_resample(2, 20, 30, 7, 9);
    test_resample(4, 1, 1, 3, 2);
    test_resample(2, 13, 11, 13, 11);
    test_conv1x1_sigmoid(37, 29);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
