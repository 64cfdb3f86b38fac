/* pipeline.c - an image in, its matte out: the authors' pre-processing, the
 * network, and the prob map at the image's size.
 *
 *   image [H, W, C] u8 -> rgb float [3, H, W] in 0..1 (gray replicated,
 *   alpha ignored) -> resize to [3, nh, nw] -> divide by the maximum ->
 *   (x - mean) / std per channel -> network -> sigmoid(d0) [nh, nw] ->
 *   min-max normalise -> resize to [H, W] -> round to 0..255 -> post-process.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* x [3, nh, nw]: the normalised network input. */
static int preprocess(const u2net_image *img, u2net_resize_filter filter, int nh, int nw,
                      float *x, u2net_error *err)
{
    const int W = img->width, H = img->height, C = img->channels;
    const size_t hw = (size_t)W * H, n = (size_t)nh * nw;
    /* rgb [3, H, W]: the colour planes (gray replicated, alpha ignored) */
    unsigned char *rgb = malloc(3 * hw);
    unsigned char *small = filter == U2NET_RESIZE_LANCZOS ? malloc(3 * n) : NULL;
    float *planes = filter == U2NET_RESIZE_LANCZOS ? NULL : malloc(sizeof(float) * 3 * hw);
    if (!rgb || (filter == U2NET_RESIZE_LANCZOS ? !small : !planes)) {
        free(rgb), free(small), free(planes);
        set_error(err, U2NET_ENOMEM, "out of memory for a %dx%d image", W, H);
        return U2NET_ENOMEM;
    }
    const int colour = C >= 3;
    for (size_t p = 0; p < hw; p++)
        for (int ch = 0; ch < 3; ch++)
            rgb[ch * hw + p] = img->data[p * C + (colour ? ch : 0)];
    int rc = 0;
    if (filter == U2NET_RESIZE_LANCZOS) {
        /* rembg: PIL Lanczos on the 8-bit image, 8-bit result */
        if (resample_u8_planes(rgb, 3, H, W, small, nh, nw, RESAMPLE_LANCZOS) != 0) {
            set_error(err, U2NET_ENOMEM, "out of memory resizing the image");
            rc = U2NET_ENOMEM;
        } else {
            for (size_t i = 0; i < 3 * n; i++)
                x[i] = (float)small[i];
        }
    } else {
        /* the authors: bilinear on the float image, no antialiasing */
        for (size_t i = 0; i < 3 * hw; i++)
            planes[i] = (float)rgb[i];
        resize_bilinear(planes, 3, H, W, x, nh, nw, 1);
    }
    free(rgb), free(small), free(planes);
    if (rc)
        return rc;
    float mx = 0.0f;
    for (size_t i = 0; i < 3 * n; i++)
        if (x[i] > mx)
            mx = x[i];
    /* dividing by the maximum stretches the image to 0..1; a black image
     * stays black instead of dividing by zero */
    const float inv = mx > 0.0f ? 1.0f / mx : 0.0f;
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < n; i++)
            x[ch * n + i] = (x[ch * n + i] * inv - imagenet_mean[ch]) / imagenet_std[ch];
    return 0;
}

/* prob [H, W] u8 from sigmoid(d0) [nh, nw]: min-max normalised, then as the
 * authors' script does it with PIL: truncated to 8 bits at the network size
 * and resized back with PIL's bilinear filter on 8-bit values. (Measured on
 * their published U2NetP maps: mean abs error 0.0015 this way, 0.0021 when
 * resizing the float map and rounding once.) */
static int prob_map(const float *d0, int nh, int nw, int H, int W, unsigned char *prob,
                    u2net_error *err)
{
    const size_t n = (size_t)nh * nw;
    unsigned char *q = malloc(n);
    if (!q) {
        set_error(err, U2NET_ENOMEM, "out of memory for a %dx%d map", nw, nh);
        return U2NET_ENOMEM;
    }
    float lo = d0[0], hi = d0[0];
    for (size_t i = 1; i < n; i++) {
        lo = d0[i] < lo ? d0[i] : lo;
        hi = d0[i] > hi ? d0[i] : hi;
    }
    const float range = hi - lo;
    for (size_t i = 0; i < n; i++) {
        const float v = range > 0.0f ? floorf((d0[i] - lo) / range * 255.0f) : 0.0f;
        q[i] = (unsigned char)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
    }
    const int rc = resample_u8_planes(q, 1, nh, nw, prob, H, W, RESAMPLE_BILINEAR);
    free(q);
    if (rc) {
        set_error(err, U2NET_ENOMEM, "out of memory resizing the map to %dx%d", W, H);
        return U2NET_ENOMEM;
    }
    return 0;
}

int u2net_matte_image(u2net_ctx *c, const u2net_image *img, const u2net_mask_opts *o,
                      u2net_matte *out, u2net_error *err)
{
    memset(out, 0, sizeof *out);
    if (!img || !img->data || img->width < 1 || img->height < 1 || img->channels < 1 ||
        img->channels > 4) {
        set_error(err, U2NET_EARG, "no image");
        return U2NET_EARG;
    }
    if (img->width > U2NET_MAX_IMAGE_SIDE || img->height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * img->height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "image %dx%d is over the limit (%d a side, %u pixels)",
                  img->width, img->height, U2NET_MAX_IMAGE_SIDE, U2NET_MAX_IMAGE_PIXELS);
        return U2NET_EARG;
    }
    u2net_mask_opts defaults;
    if (!o) {
        u2net_mask_opts_default(&defaults);
        o = &defaults;
    }
    const int size = u2net_model_default_size(ctx_model(c));
    const int nw = o->net_width > 0 ? o->net_width : size;
    const int nh = o->net_height > 0 ? o->net_height : size;
    if (nw > U2NET_MAX_SIDE || nh > U2NET_MAX_SIDE || (long long)nw * nh > U2NET_MAX_PIXELS) {
        set_error(err, U2NET_EARG, "network size %dx%d is over the limit (%d per side, %d pixels)",
                  nw, nh, U2NET_MAX_SIDE, U2NET_MAX_PIXELS);
        return U2NET_EARG;
    }
    float *x = malloc(sizeof(float) * 3 * (size_t)nh * nw);
    unsigned char *prob = malloc((size_t)img->width * img->height);
    int rc = !x || !prob ? U2NET_ENOMEM : 0;
    if (rc)
        set_error(err, rc, "out of memory for a %dx%d image", img->width, img->height);
    if (!rc)
        rc = preprocess(img, o->resize, nh, nw, x, err);
    if (!rc)
        rc = u2net_run(c, x, nh, nw, err);
    if (!rc)
        rc = prob_map(u2net_output(c, 0), nh, nw, img->height, img->width, prob, err);
    if (!rc)
        rc = u2net_matte_from_prob(prob, img->width, img->height, o, out, err);
    free(x);
    free(prob);
    return rc;
}
