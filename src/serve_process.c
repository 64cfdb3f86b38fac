/* serve_process.c - one image request to its reply (serve_process.h). */
#include "serve_process.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_text.h"
#include "util.h"

static const char json_type[] = "application/json";

void serve_reply_error(serve_reply *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    text_buf t = {0};
    text_appendf(&t, "{\"error\": ");
    text_append_json(&t, msg);
    text_appendf(&t, ", \"status\": %d}\n", status);
    r->status = status;
    r->content_type = json_type;
    r->body = (unsigned char *)text_take(&t, &r->len);
}

void serve_reply_free(serve_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The name of a well-known image format the library does not decode, from
 * its first bytes, or NULL. */
static const char *unsupported_format(const unsigned char *d, size_t len)
{
    if (len >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return "WebP";
    if (len >= 12 && !memcmp(d + 4, "ftyp", 4)) {
        if (!memcmp(d + 8, "avif", 4) || !memcmp(d + 8, "avis", 4))
            return "AVIF";
        if (!memcmp(d + 8, "heic", 4) || !memcmp(d + 8, "heix", 4) || !memcmp(d + 8, "mif1", 4))
            return "HEIF";
    }
    if (len >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4)))
        return "TIFF";
    if (len >= 4 && !memcmp(d, "%PDF", 4))
        return "PDF";
    if (len >= 2 && d[0] == 0xff && d[1] == 0x0a)
        return "JPEG XL";
    return NULL;
}

/* rembg's bgc: the cutout over a colour of alpha A ("over" compositing),
 * in place on RGBA pixels. */
static void put_over_colour(u2net_image *img, const unsigned char bgc[4])
{
    const size_t n = (size_t)img->width * img->height;
    const unsigned ba = bgc[3];
    for (size_t i = 0; i < n; i++) {
        unsigned char *px = img->data + 4 * i;
        const unsigned a = px[3];
        /* out alpha = a + A (1 - a), scaled by 255 twice */
        const unsigned below = ba * (255 - a);
        const unsigned out = a * 255 + below;
        if (out == 0) {
            px[0] = px[1] = px[2] = px[3] = 0;
            continue;
        }
        for (int c = 0; c < 3; c++)
            px[c] = (unsigned char)((px[c] * a * 255u + bgc[c] * below + out / 2) / out);
        px[3] = (unsigned char)((out + 127) / 255);
    }
}

static int has_alpha(int channels)
{
    return channels == 2 || channels == 4;
}

static int past(double deadline, serve_reply *r)
{
    if (now_seconds() <= deadline)
        return 0;
    serve_reply_error(r, 504, "the request took longer than the server's --timeout");
    return 1;
}

void serve_process_image(u2net_ctx *ctx, const serve_params *p, const unsigned char *data,
                         size_t len, size_t max_pixels, double deadline, serve_reply *r)
{
    memset(r, 0, sizeof *r);
    const char *other = unsupported_format(data, len);
    if (other) {
        serve_reply_error(r, 415, "%s images are not read by this server (JPEG, PNG, BMP, TGA, "
                          "GIF, binary PNM)", other);
        return;
    }
    u2net_error err;
    u2net_image img = {0}, out = {0};
    u2net_matte matte;
    memset(&matte, 0, sizeof matte);
    int have_matte = 0;
    int rc = u2net_image_decode(data, len, max_pixels, &img, &err);
    if (rc != 0) {
        if (rc == U2NET_ENOMEM)
            serve_reply_error(r, 503, "out of memory decoding the image");
        else if (rc == U2NET_EARG)
            serve_reply_error(r, 413, "%s (the server's --max-pixels)", err.msg);
        else
            serve_reply_error(r, 400, "the upload is not an image: %s", err.msg);
        goto done;
    }
    if (past(deadline, r))
        goto done;
    if (p->jpeg && p->type == U2NET_OUT_CROP && has_alpha(img.channels)) {
        serve_reply_error(r, 400, "format jpg cannot hold the crop of an image with alpha "
                          "(use png)");
        goto done;
    }
    rc = u2net_matte_image(ctx, &img, &p->mask, &matte, &err);
    if (rc != 0) {
        serve_reply_error(r, rc == U2NET_ENOMEM ? 503 : rc == U2NET_EARG ? 400 : 500, "%s",
                          err.msg);
        goto done;
    }
    have_matte = 1;
    if (past(deadline, r))
        goto done;
    if (p->type == U2NET_OUT_BBOX) {
        char *json = u2net_bbox_json(&matte, NULL);
        if (!json) {
            serve_reply_error(r, 503, "out of memory");
            goto done;
        }
        r->status = 200;
        r->content_type = json_type;
        r->body = (unsigned char *)json;
        r->len = strlen(json);
        goto done;
    }
    rc = u2net_render(&img, &matte, p->type, &p->render, &out, &err);
    if (rc != 0) {
        serve_reply_error(r, rc == U2NET_ENOMEM ? 503 : 400, "type %s: %s",
                          u2net_output_name(p->type), err.msg);
        goto done;
    }
    if (p->has_bgc && out.channels == 4)
        put_over_colour(&out, p->bgc);
    const int jpeg = p->jpeg && !has_alpha(out.channels);
    rc = u2net_image_encode(&out, jpeg ? U2NET_FORMAT_JPEG : U2NET_FORMAT_PNG, p->jpeg_quality,
                            &r->body, &r->len, &err);
    if (rc != 0) {
        r->body = NULL;
        serve_reply_error(r, rc == U2NET_ENOMEM ? 503 : 500, "%s", err.msg);
        goto done;
    }
    r->status = 200;
    r->content_type = jpeg ? "image/jpeg" : "image/png";
done:
    if (have_matte)
        u2net_matte_free(&matte);
    u2net_image_free(&out);
    u2net_image_free(&img);
}
