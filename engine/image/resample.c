/* resample.c - 8-bit separable resampling exactly as PIL's Image.resize
 * computes it: output pixel i covers input [i*s, (i+1)*s) with s = in/out;
 * the filter is stretched by max(s, 1), so downscaling averages
 * (antialiasing) and upscaling interpolates; weights are normalised per
 * output pixel in double, then rounded to 22-bit fixed point; each pass
 * (horizontal first) rounds and clips to 0..255. Used for rembg-style
 * Lanczos pre-processing and for resizing the prob map back to the image's
 * size as the authors' test script does with PIL. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "image_internal.h"

enum { PRECISION_BITS = 32 - 8 - 2 };

static double filter_weight(resample_filter f, double x)
{
    x = fabs(x);
    if (f == RESAMPLE_BILINEAR)
        return x < 1.0 ? 1.0 - x : 0.0;
    if (x >= 3.0)
        return 0.0;
    if (x == 0.0)
        return 1.0;
    const double px = M_PI * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px); /* sinc(x) * sinc(x/3) */
}

/* For output index i: taps bounds[2i] .. bounds[2i] + bounds[2i+1] - 1 of the
 * input with fixed-point weights weights[i*taps ...]. */
typedef struct {
    int taps;
    int *bounds;
    int32_t *weights;
} coeffs;

static void free_coeffs(coeffs *c)
{
    free(c->bounds);
    free(c->weights);
}

static int make_coeffs(int in, int out, resample_filter f, coeffs *c)
{
    const double scale = (double)in / out;
    const double fscale = scale > 1.0 ? scale : 1.0;
    const double support = (f == RESAMPLE_BILINEAR ? 1.0 : 3.0) * fscale;
    c->taps = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out);
    c->weights = malloc(sizeof(int32_t) * (size_t)c->taps * out);
    double *w = malloc(sizeof(double) * (size_t)c->taps);
    if (!c->bounds || !c->weights || !w) {
        free_coeffs(c);
        free(w);
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
        double sum = 0.0;
        for (int k = 0; k < n; k++) {
            w[k] = filter_weight(f, (lo + k - center + 0.5) / fscale);
            sum += w[k];
        }
        int32_t *fixed = c->weights + (size_t)i * c->taps;
        for (int k = 0; k < n; k++) {
            const double v = sum != 0.0 ? w[k] / sum : 0.0;
            fixed[k] = (int32_t)(v * (1 << PRECISION_BITS) + (v < 0.0 ? -0.5 : 0.5));
        }
        c->bounds[2 * i] = lo, c->bounds[2 * i + 1] = n;
    }
    free(w);
    return 0;
}

static unsigned char clip8(int64_t acc)
{
    const int64_t v = acc >> PRECISION_BITS;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int resample_u8_planes(const unsigned char *in, int c, int ih, int iw, unsigned char *out,
                       int oh, int ow, resample_filter f)
{
    coeffs cx = {0}, cy = {0};
    unsigned char *tmp = malloc((size_t)ih * ow);
    if (!tmp || make_coeffs(iw, ow, f, &cx) != 0 || make_coeffs(ih, oh, f, &cy) != 0) {
        free(tmp);
        free_coeffs(&cx);
        free_coeffs(&cy);
        return -1;
    }
    const int64_t half = (int64_t)1 << (PRECISION_BITS - 1);
    for (int ch = 0; ch < c; ch++) {
        const unsigned char *src = in + (size_t)ch * ih * iw;
        unsigned char *dst = out + (size_t)ch * oh * ow;
        /* horizontal pass: src [ih, iw] -> tmp [ih, ow] */
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < ow; x++) {
                const int lo = cx.bounds[2 * x], n = cx.bounds[2 * x + 1];
                const int32_t *wt = cx.weights + (size_t)x * cx.taps;
                int64_t acc = half;
                for (int k = 0; k < n; k++)
                    acc += (int64_t)wt[k] * src[(size_t)y * iw + lo + k];
                tmp[(size_t)y * ow + x] = clip8(acc);
            }
        /* vertical pass: tmp [ih, ow] -> dst [oh, ow] */
        for (int y = 0; y < oh; y++) {
            const int lo = cy.bounds[2 * y], n = cy.bounds[2 * y + 1];
            const int32_t *wt = cy.weights + (size_t)y * cy.taps;
            for (int x = 0; x < ow; x++) {
                int64_t acc = half;
                for (int k = 0; k < n; k++)
                    acc += (int64_t)wt[k] * tmp[(size_t)(lo + k) * ow + x];
                dst[(size_t)y * ow + x] = clip8(acc);
            }
        }
    }
    free(tmp);
    free_coeffs(&cx);
    free_coeffs(&cy);
    return 0;
}
