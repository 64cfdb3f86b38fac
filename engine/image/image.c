/* image.c - decoding (stb_image), EXIF orientation, encoding (stb_image_write)
 * and saving of 8-bit images. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "image_internal.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define STBI_NO_STDIO
#define STBI_WRITE_NO_STDIO
#include "stb/stb_image.h"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

int u2net_image_alloc(u2net_image *img, int width, int height, int channels, u2net_error *err)
{
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1 || channels < 1 || channels > 4 || width > U2NET_MAX_IMAGE_SIDE ||
        height > U2NET_MAX_IMAGE_SIDE || (uint64_t)width * height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "image size %dx%dx%d is not supported", width, height, channels);
        return U2NET_EARG;
    }
    img->data = calloc((size_t)width * height, (size_t)channels);
    if (!img->data) {
        set_error(err, U2NET_ENOMEM, "out of memory for a %dx%d image", width, height);
        return U2NET_ENOMEM;
    }
    img->width = width, img->height = height, img->channels = channels;
    return 0;
}

void u2net_image_free(u2net_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* ---- EXIF orientation ---- */

static unsigned rd16(const unsigned char *p, int big)
{
    return big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t rd32e(const unsigned char *p, int big)
{
    return big ? (uint32_t)rd16(p, 1) << 16 | rd16(p + 2, 1)
               : (uint32_t)rd16(p + 2, 0) << 16 | rd16(p, 0);
}

/* The orientation tag (1..8) of a JPEG's first EXIF block, 1 if absent or
 * unreadable. Every offset is checked against the segment's bounds. */
static int jpeg_exif_orientation(const unsigned char *d, size_t len)
{
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return 1;
    size_t pos = 2;
    while (pos + 4 <= len && d[pos] == 0xFF) {
        const unsigned marker = d[pos + 1];
        if (marker == 0xDA || marker == 0xD9) /* start of scan, end of image */
            break;
        const size_t seg = (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (seg < 2 || pos + 2 + seg > len)
            break;
        const unsigned char *s = d + pos + 4;
        const size_t n = seg - 2;
        if (marker == 0xE1 && n >= 14 && !memcmp(s, "Exif\0\0", 6)) {
            const unsigned char *t = s + 6; /* TIFF header */
            const size_t tn = n - 6;
            const int big = t[0] == 'M';
            if (!(t[0] == 'I' && t[1] == 'I') && !(t[0] == 'M' && t[1] == 'M'))
                return 1;
            const uint32_t ifd = rd32e(t + 4, big);
            if (ifd > tn || tn - ifd < 2)
                return 1;
            const unsigned count = rd16(t + ifd, big);
            for (unsigned i = 0; i < count; i++) {
                const size_t e = ifd + 2 + (size_t)i * 12;
                if (e + 12 > tn)
                    return 1;
                if (rd16(t + e, big) == 0x0112) {
                    const unsigned v = rd16(t + e + 8, big);
                    return v >= 1 && v <= 8 ? (int)v : 1;
                }
            }
            return 1;
        }
        pos += 2 + seg;
    }
    return 1;
}

/* The size in a PNG's header, which must be its first chunk. stb_image
 * refuses a PNG of more than 2^30 bytes of samples before stbi_info can
 * report its size, so the pixel limit is checked on this. Returns 0 for
 * anything but a PNG. */
static int png_header_size(const unsigned char *d, size_t len, uint32_t *w, uint32_t *h)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 24 || memcmp(d, signature, 8) != 0 || memcmp(d + 12, "IHDR", 4) != 0)
        return 0;
    *w = rd32e(d + 16, 1);
    *h = rd32e(d + 20, 1);
    return 1;
}

static int over_pixel_limit(uint32_t w, uint32_t h, size_t max_pixels, u2net_error *err)
{
    set_error(err, U2NET_EARG, "image is %ux%u = %llu pixels, over the limit of %zu", w, h,
              (unsigned long long)w * h, max_pixels);
    return U2NET_EARG;
}

/* Applies EXIF orientation o so the image is upright (as PIL's
 * ImageOps.exif_transpose). For each output pixel (ox, oy) of an ow x oh
 * image, the source pixel of the W x H input is:
 *   2 (W-1-ox, oy)   3 (W-1-ox, H-1-oy)   4 (ox, H-1-oy)
 *   5 (oy, ox)       6 (oy, H-1-ox)       7 (W-1-oy, H-1-ox)   8 (W-1-oy, ox)
 * where 5..8 swap width and height. */
static int apply_orientation(u2net_image *img, int o, u2net_error *err)
{
    if (o <= 1 || o > 8)
        return 0;
    const int W = img->width, H = img->height, C = img->channels;
    const int swap = o >= 5;
    u2net_image out;
    const int rc = u2net_image_alloc(&out, swap ? H : W, swap ? W : H, C, err);
    if (rc)
        return rc;
    for (int oy = 0; oy < out.height; oy++)
        for (int ox = 0; ox < out.width; ox++) {
            int sx, sy;
            switch (o) {
            case 2: sx = W - 1 - ox, sy = oy; break;
            case 3: sx = W - 1 - ox, sy = H - 1 - oy; break;
            case 4: sx = ox, sy = H - 1 - oy; break;
            case 5: sx = oy, sy = ox; break;
            case 6: sx = oy, sy = H - 1 - ox; break;
            case 7: sx = W - 1 - oy, sy = H - 1 - ox; break;
            default: sx = W - 1 - oy, sy = ox; break;
            }
            memcpy(out.data + ((size_t)oy * out.width + ox) * C,
                   img->data + ((size_t)sy * W + sx) * C, (size_t)C);
        }
    u2net_image_free(img);
    *img = out;
    return 0;
}

int u2net_image_sniff(const void *head, size_t len)
{
    const unsigned char *d = head;
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && !memcmp(d, png, 8))
        return 1;
    if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return 1;
    if (len >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
        return 1;
    if (len >= 2 && d[0] == 'B' && d[1] == 'M')
        return 1;
    if (len >= 3 && d[0] == 'P' && (d[1] == '5' || d[1] == '6') &&
        (d[2] == ' ' || d[2] == '\t' || d[2] == '\n' || d[2] == '\r' || d[2] == '#'))
        return 1;
    /* TGA has no signature: its 18-byte header must look like one */
    int w, h, comp;
    return len >= 18 && stbi_info_from_memory(d, 18, &w, &h, &comp);
}

/* Skips GIF data sub-blocks from *at; 0, or -1 when they run past the end. */
static int gif_skip_sub_blocks(const unsigned char *d, size_t len, size_t *at)
{
    while (*at < len) {
        const size_t n = d[(*at)++];
        if (n == 0)
            return 0;
        if (n > len - *at)
            return -1;
        *at += n;
    }
    return -1;
}

int u2net_image_frame_count(const void *data, size_t len)
{
    const unsigned char *d = data;
    if (len < 13 || (memcmp(d, "GIF87a", 6) && memcmp(d, "GIF89a", 6)))
        return 1;
    /* header, logical screen descriptor, global colour table */
    size_t at = 13;
    if (d[10] & 0x80)
        at += 3u << ((d[10] & 7) + 1);
    int frames = 0;
    while (at < len) {
        const unsigned char kind = d[at++];
        if (kind == 0x2c) {                  /* an image: descriptor, colours, data */
            if (len - at < 10)
                break;
            const unsigned char flags = d[at + 8];
            at += 9;
            if (flags & 0x80)
                at += 3u << ((flags & 7) + 1);
            at++;                            /* LZW minimum code size */
            if (at > len || gif_skip_sub_blocks(d, len, &at) != 0)
                break;
            frames++;
        } else if (kind == 0x21) {           /* an extension: label, sub-blocks */
            at++;
            if (at > len || gif_skip_sub_blocks(d, len, &at) != 0)
                break;
        } else {                             /* the trailer, or not GIF any more */
            break;
        }
    }
    return frames > 1 ? frames : 1;
}

int u2net_image_decode(const void *data, size_t len, size_t max_pixels, u2net_image *out,
                       u2net_error *err)
{
    memset(out, 0, sizeof *out);
    if (!max_pixels)
        max_pixels = U2NET_DEFAULT_MAX_IMAGE_PIXELS;
    if (len == 0) {
        set_error(err, U2NET_EFORMAT, "empty file");
        return U2NET_EFORMAT;
    }
    if (len > INT32_MAX) {
        set_error(err, U2NET_EFORMAT, "file too large to decode (%zu bytes)", len);
        return U2NET_EFORMAT;
    }
    const stbi_uc *d = data;
    const int n = (int)len;
    uint32_t png_w, png_h;
    const int is_png = png_header_size(d, len, &png_w, &png_h);
    if (is_png && (uint64_t)png_w * png_h > max_pixels)
        return over_pixel_limit(png_w, png_h, max_pixels, err);
    int w, h, comp;
    if (!stbi_info_from_memory(d, n, &w, &h, &comp)) {
        /* stbi_info tries every format, so its own reason is always the last
         * one's: "unknown image type" */
        if (is_png)
            set_error(err, U2NET_EFORMAT, "corrupt or unsupported PNG header (%ux%u; at most "
                      "2^30 bytes of samples)", png_w, png_h);
        else
            set_error(err, U2NET_EFORMAT, "not an image in a format this program reads (JPEG, "
                      "PNG, BMP, TGA, GIF, binary PNM), or its header is corrupt");
        return U2NET_EFORMAT;
    }
    if (w < 1 || h < 1) {
        set_error(err, U2NET_EFORMAT, "image header gives a size of %dx%d", w, h);
        return U2NET_EFORMAT;
    }
    if ((uint64_t)w * h > max_pixels)
        return over_pixel_limit((uint32_t)w, (uint32_t)h, max_pixels, err);
    if (w > U2NET_MAX_IMAGE_SIDE || h > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)w * h > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "image is %dx%d: over the limit of %d a side, %u pixels", w, h,
                  U2NET_MAX_IMAGE_SIDE, U2NET_MAX_IMAGE_PIXELS);
        return U2NET_EARG;
    }
    if (comp < 1 || comp > 4)
        comp = 3;
    /* 16-bit files decode to 16-bit samples, scaled here to 8 bits */
    const int is16 = stbi_is_16_bit_from_memory(d, n);
    int c2;
    void *pixels = is16 ? (void *)stbi_load_16_from_memory(d, n, &w, &h, &c2, comp)
                        : (void *)stbi_load_from_memory(d, n, &w, &h, &c2, comp);
    if (!pixels) {
        const char *why = stbi_failure_reason();
        set_error(err, U2NET_EFORMAT, "cannot decode image (%s)", why && *why ? why : "corrupt data");
        return U2NET_EFORMAT;
    }
    u2net_image img;
    int rc = u2net_image_alloc(&img, w, h, comp, err);
    if (rc) {
        stbi_image_free(pixels);
        return rc;
    }
    const size_t count = (size_t)w * h * comp;
    if (is16) {
        const stbi_us *p16 = pixels;
        for (size_t i = 0; i < count; i++) /* round(v * 255 / 65535) */
            img.data[i] = (unsigned char)(((uint32_t)p16[i] * 255 + 32767) / 65535);
    } else {
        memcpy(img.data, pixels, count);
    }
    stbi_image_free(pixels);
    rc = apply_orientation(&img, jpeg_exif_orientation(d, len), err);
    if (rc) {
        u2net_image_free(&img);
        return rc;
    }
    *out = img;
    return 0;
}

int u2net_image_load(const char *path, size_t max_pixels, u2net_image *out, u2net_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_error(err, U2NET_EIO, "%s: cannot open: %s", path, strerror(errno));
        return U2NET_EIO;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)INT32_MAX) {
                set_error(err, U2NET_EFORMAT, "%s: file too large to decode", path);
                rc = U2NET_EFORMAT;
                break;
            }
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                set_error(err, U2NET_ENOMEM, "%s: out of memory reading the file", path);
                rc = U2NET_ENOMEM;
                break;
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                set_error(err, U2NET_EIO, "%s: read error: %s", path, strerror(errno));
                rc = U2NET_EIO;
            }
            break;
        }
    }
    fclose(f);
    if (!rc) {
        u2net_error e2;
        rc = u2net_image_decode(buf, len, max_pixels, out, &e2);
        if (rc)
            set_error(err, rc, "%s: %s", path, e2.msg);
    }
    free(buf);
    return rc;
}

/* ---- encoding ---- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int oom;
} membuf;

static void membuf_write(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->oom || size <= 0)
        return;
    if (m->len + (size_t)size > m->cap) {
        size_t cap = m->cap ? m->cap : 1 << 16;
        while (cap < m->len + (size_t)size)
            cap *= 2;
        unsigned char *np = realloc(m->p, cap);
        if (!np) {
            m->oom = 1;
            return;
        }
        m->p = np, m->cap = cap;
    }
    memcpy(m->p + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

int u2net_image_encode(const u2net_image *img, u2net_file_format fmt, int quality,
                       unsigned char **out, size_t *len, u2net_error *err)
{
    *out = NULL, *len = 0;
    /* stb_image_write counts in int: the filtered rows ((row bytes + a filter
     * byte) times rows) and their deflated size, which for noise is a little
     * larger, must fit one */
    if (!img || !img->data || img->width < 1 || img->height < 1 || img->channels < 1 ||
        img->channels > 4 ||
        ((uint64_t)img->width * img->channels + 1) * (uint64_t)img->height > INT32_MAX / 2) {
        set_error(err, U2NET_EARG, "cannot encode an empty image, or one of over 2^30 bytes");
        return U2NET_EARG;
    }
    membuf m = {0};
    int ok;
    if (fmt == U2NET_FORMAT_JPEG) {
        if (img->channels == 2 || img->channels == 4) {
            set_error(err, U2NET_EARG, "JPEG cannot hold alpha: use PNG");
            return U2NET_EARG;
        }
        if (quality == 0)
            quality = 95;
        if (quality < 1 || quality > 100) {
            set_error(err, U2NET_EARG, "JPEG quality %d is outside 1..100", quality);
            return U2NET_EARG;
        }
        ok = stbi_write_jpg_to_func(membuf_write, &m, img->width, img->height, img->channels,
                                    img->data, quality);
    } else {
        ok = stbi_write_png_to_func(membuf_write, &m, img->width, img->height, img->channels,
                                    img->data, img->width * img->channels);
    }
    if (!ok || m.oom) {
        free(m.p);
        set_error(err, m.oom ? U2NET_ENOMEM : U2NET_EIO, "cannot encode the image%s",
                  m.oom ? ": out of memory" : "");
        return m.oom ? U2NET_ENOMEM : U2NET_EIO;
    }
    *out = m.p, *len = m.len;
    return 0;
}

int u2net_image_save(const char *path, const u2net_image *img, int quality, u2net_error *err)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    u2net_file_format fmt;
    if (dot && (!slash || dot > slash) && !strcasecmp(dot, ".png"))
        fmt = U2NET_FORMAT_PNG;
    else if (dot && (!slash || dot > slash) && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg")))
        fmt = U2NET_FORMAT_JPEG;
    else {
        set_error(err, U2NET_EARG, "%s: unknown image extension (use .png, .jpg or .jpeg)", path);
        return U2NET_EARG;
    }
    unsigned char *buf;
    size_t len;
    u2net_error e2;
    int rc = u2net_image_encode(img, fmt, quality, &buf, &len, &e2);
    if (rc) {
        set_error(err, rc, "%s: %s", path, e2.msg);
        return rc;
    }
    rc = u2net_write_file(path, buf, len, 1, err);
    free(buf);
    return rc;
}
