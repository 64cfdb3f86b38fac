/* resample.c - separable resampling with PIL's geometry (Image.resize):
 * output pixel i covers input [i*s, (i+1)*s) with s = in/out; the filter is
 * stretched by max(s, 1), so downscaling averages (antialiasing) and
 * upscaling interpolates; weights are normalised per output pixel. Used for
 * rembg-style Lanczos pre-processing and for resizing maps back to the
 * image's size as the authors' test script does with PIL. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

static double filter_weight(resample_filter f, double x)
{
    x = fabs(x);
    if (f == RESAMPLE_BILINEAR)
        return x < 1.0 ? 1.0 - x : 0.0;
    if (x >= 3.0)
        return 0.0;
    if (x < 1e-12)
        return 1.0;
    const double px = M_PI * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px); /* sinc(x) * sinc(x/3) */
}

/* For each output index, the first input index and count of taps (bounds[2i],
 * bounds[2i+1]) and their weights (weights[i*taps ...]). */
typedef struct {
    int taps;
    int *bounds;
    float *weights;
} coeffs;

static int make_coeffs(int in, int out, resample_filter f, coeffs *c)
{
    const double scale = (double)in / out;
    const double fscale = scale > 1.0 ? scale : 1.0;
    const double support = (f == RESAMPLE_BILINEAR ? 1.0 : 3.0) * fscale;
    c->taps = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out);
    c->weights = malloc(sizeof(float) * (size_t)c->taps * out);
    if (!c->bounds || !c->weights) {
        free(c->bounds);
        free(c->weights);
        return -1;
    }
    for (int i = 0; i < out; i++) {
        const double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in)
            hi = in;
        if (hi - lo > c->taps)
            hi = lo + c->taps;
        const int n = hi - lo;
        float *w = c->weights + (size_t)i * c->taps;
        double sum = 0;
        for (int k = 0; k < n; k++)
            sum += filter_weight(f, (lo + k - center + 0.5) / fscale);
        for (int k = 0; k < n; k++)
            w[k] = (float)(sum != 0.0 ? filter_weight(f, (lo + k - center + 0.5) / fscale) / sum : 0.0);
        c->bounds[2 * i] = lo, c->bounds[2 * i + 1] = n;
    }
    return 0;
}

static float round_u8(float v)
{
    v = floorf(v + 0.5f);
    return v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
}

int resample_planes(const float *in, int c, int ih, int iw, float *out, int oh, int ow,
                    resample_filter f, int round_between)
{
    coeffs cx, cy;
    if (make_coeffs(iw, ow, f, &cx) != 0)
        return -1;
    if (make_coeffs(ih, oh, f, &cy) != 0) {
        free(cx.bounds), free(cx.weights);
        return -1;
    }
    float *tmp = malloc(sizeof(float) * (size_t)ih * ow);
    if (!tmp) {
        free(cx.bounds), free(cx.weights), free(cy.bounds), free(cy.weights);
        return -1;
    }
    for (int ch = 0; ch < c; ch++) {
        const float *src = in + (size_t)ch * ih * iw;
        float *dst = out + (size_t)ch * oh * ow;
        /* horizontal pass first, as PIL does: [ih, iw] -> tmp [ih, ow] */
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < ow; x++) {
                const int lo = cx.bounds[2 * x], n = cx.bounds[2 * x + 1];
                const float *wt = cx.weights + (size_t)x * cx.taps;
                float s = 0.0f;
                for (int k = 0; k < n; k++)
                    s += wt[k] * src[(size_t)y * iw + lo + k];
                tmp[(size_t)y * ow + x] = round_between ? round_u8(s) : s;
            }
        /* vertical pass: tmp [ih, ow] -> dst [oh, ow] */
        for (int y = 0; y < oh; y++) {
            const int lo = cy.bounds[2 * y], n = cy.bounds[2 * y + 1];
            const float *wt = cy.weights + (size_t)y * cy.taps;
            for (int x = 0; x < ow; x++) {
                float s = 0.0f;
                for (int k = 0; k < n; k++)
                    s += wt[k] * tmp[(size_t)(lo + k) * ow + x];
                dst[(size_t)y * ow + x] = round_between ? round_u8(s) : s;
            }
        }
    }
    free(tmp);
    free(cx.bounds), free(cx.weights), free(cy.bounds), free(cy.weights);
    return 0;
}
