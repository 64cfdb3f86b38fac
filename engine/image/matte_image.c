/* matte_image.c - an image in, its matte out: the model's processing
 * (docs/FORMAT.md, processing block) around the network, then the
 * post-processing of matte.c.
 *
 *   image [H, W, C] u8 -> rgb [3, H, W] (gray replicated, alpha ignored)
 *   -> resize to [3, nh, nw] -> divide by the maximum or by 255 ->
 *   (x - mean) / std per channel -> network -> the prediction [nh, nw] ->
 *   (min-max normalised, 8 bits, resized as PIL does) or (resized in float,
 *   min-max normalised, 8 bits) -> prob [H, W] -> post-process.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_internal.h"
#include "kernels.h"
#include "resources.h"

/* x [3, nh, nw]: the normalised network input. */
static int preprocess(const u2net_image *img, u2net_resize_filter filter, int nh, int nw,
                      const u2net_processing *pr, float *x, u2net_error *err)
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
    const float inv = pr->scale == U2NET_SCALE_255 ? 1.0f / 255.0f : mx > 0.0f ? 1.0f / mx : 0.0f;
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < n; i++)
            x[ch * n + i] = (x[ch * n + i] * inv - pr->mean[ch]) / pr->std[ch];
    return 0;
}

/* Min and max of n floats. */
static void min_max(const float *v, size_t n, float *lo, float *hi)
{
    *lo = *hi = v[0];
    for (size_t i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

/* floor(v * 255) in 0..255 of v normalised to [0, 1] by (lo, range), or
 * v itself when range is 0 and normalising is off. */
static unsigned char to_byte(float v, float lo, float range, int normalise)
{
    const float u = normalise ? (range > 0.0f ? (v - lo) / range : 0.0f) : v;
    const float b = floorf(u * 255.0f);
    return (unsigned char)(b < 0.0f ? 0.0f : b > 255.0f ? 255.0f : b);
}

/* prob [H, W] u8 from the prediction [nh, nw], as U2Net's authors' script
 * does it with PIL: min-max normalised, truncated to 8 bits at the network
 * size, resized back with PIL's bilinear filter on 8-bit values. (Measured
 * on their published U2NetP maps: mean abs error 0.0015 this way, 0.0021
 * when resizing the float map and rounding once.) */
static int prob_map_8bit(const float *pred, int nh, int nw, int H, int W, int normalise,
                         unsigned char *prob, u2net_error *err)
{
    const size_t n = (size_t)nh * nw;
    unsigned char *q = malloc(n);
    if (!q) {
        set_error(err, U2NET_ENOMEM, "out of memory for a %dx%d map", nw, nh);
        return U2NET_ENOMEM;
    }
    float lo, hi;
    min_max(pred, n, &lo, &hi);
    for (size_t i = 0; i < n; i++)
        q[i] = to_byte(pred[i], lo, hi - lo, normalise);
    const int rc = resample_u8_planes(q, 1, nh, nw, prob, H, W, RESAMPLE_BILINEAR);
    free(q);
    if (rc) {
        set_error(err, U2NET_ENOMEM, "out of memory resizing the map to %dx%d", W, H);
        return U2NET_ENOMEM;
    }
    return 0;
}

/* prob [H, W] u8 from the prediction [nh, nw], as DIS's and RMBG's scripts
 * do it: resized in float (F.interpolate, bilinear, align_corners=False),
 * min-max normalised over the image, truncated to 8 bits. */
static int prob_map_float(const float *pred, int nh, int nw, int H, int W, int normalise,
                          unsigned char *prob, u2net_error *err)
{
    const size_t n = (size_t)H * W;
    float *big = malloc(sizeof(float) * n);
    if (!big) {
        set_error(err, U2NET_ENOMEM, "out of memory resizing the map to %dx%d", W, H);
        return U2NET_ENOMEM;
    }
    resize_bilinear(pred, 1, nh, nw, big, H, W, max_threads());
    float lo, hi;
    min_max(big, n, &lo, &hi);
    for (size_t i = 0; i < n; i++)
        prob[i] = to_byte(big[i], lo, hi - lo, normalise);
    free(big);
    return 0;
}

/* About the most memory the image path holds at once for a W x H image at
 * network size nw x nh, besides the network's plan (measured peaks on a
 * 2000x1500 photo, rounded up): the colour planes, float copy and maps
 * (24 bytes a pixel), the network input (12 a network pixel), and about 48
 * a pixel more for each of guided refinement, alpha matting and foreground
 * estimation. */
static size_t image_path_bytes(int W, int H, int nw, int nh, const u2net_mask_opts *o)
{
    const double px = (double)W * H;
    double bytes = 24.0 * px + 12.0 * nw * nh;
    const int estimate = o->foreground == U2NET_FOREGROUND_ESTIMATE ||
                         (o->foreground == U2NET_FOREGROUND_AUTO && (o->guided || o->alpha_matting));
    bytes += 48.0 * px * ((o->guided != 0) + (o->alpha_matting != 0) + estimate);
    return (size_t)bytes;
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
    u2net_model_info info;
    u2net_model_get_info(u2net_ctx_model(c), &info);
    u2net_processing pr = info.processing;
    if (o->std[0] > 0.0f) {
        for (int ch = 0; ch < 3; ch++)
            if (!isfinite(o->mean[ch]) || !(o->std[ch] > 0.0f) || !isfinite(o->std[ch])) {
                set_error(err, U2NET_EARG, "mean %g and std %g of channel %d: std must be > 0",
                          (double)o->mean[ch], (double)o->std[ch], ch);
                return U2NET_EARG;
            }
        memcpy(pr.mean, o->mean, sizeof pr.mean);
        memcpy(pr.std, o->std, sizeof pr.std);
    }
    const int nw = o->net_width > 0 ? o->net_width : pr.width;
    const int nh = o->net_height > 0 ? o->net_height : pr.height;
    if (nw > U2NET_MAX_SIDE || nh > U2NET_MAX_SIDE || (long long)nw * nh > U2NET_MAX_PIXELS) {
        set_error(err, U2NET_EARG, "network size %dx%d is over the limit (%d per side, %d pixels)",
                  nw, nh, U2NET_MAX_SIDE, U2NET_MAX_PIXELS);
        return U2NET_EARG;
    }
    /* the image's own memory: checked now, and kept free by the network's
     * run when it plans (a limit fails here in one line, not half way) */
    const size_t image_bytes = image_path_bytes(img->width, img->height, nw, nh, o);
    memory_room room;
    memory_room_now(&room);
    char what[64];
    snprintf(what, sizeof what, "a %dx%d image", img->width, img->height);
    if (memory_room_check(&room, image_bytes, what, "its planes and maps", err) != 0)
        return U2NET_ENOMEM;
    context_reserve_memory(c, image_bytes);
    float *x = malloc(sizeof(float) * 3 * (size_t)nh * nw);
    unsigned char *prob = malloc((size_t)img->width * img->height);
    int rc = !x || !prob ? U2NET_ENOMEM : 0;
    if (rc)
        set_error(err, rc, "out of memory for a %dx%d image", img->width, img->height);
    if (!rc)
        rc = preprocess(img, o->resize, nh, nw, &pr, x, err);
    if (!rc)
        rc = u2net_run(c, x, nh, nw, err);
    if (!rc) {
        const float *pred = u2net_output(c, info.prediction);
        rc = pr.resize_back == U2NET_RESIZE_BACK_FLOAT
                 ? prob_map_float(pred, nh, nw, img->height, img->width, pr.normalise, prob, err)
                 : prob_map_8bit(pred, nh, nw, img->height, img->width, pr.normalise, prob, err);
    }
    if (!rc) {
        /* the post-processing sees the network size (guided refinement's
         * default radius follows it) */
        u2net_mask_opts post = *o;
        post.net_width = nw, post.net_height = nh;
        rc = u2net_matte_from_prob_image(prob, img, &post, out, err);
    }
    free(x);
    free(prob);
    return rc;
}
