/* stream_y4m.c - reading YUV4MPEG2 headers and turning a frame's Y, Cb
 * and Cr planes into RGB (stream_y4m.h). */
#include "stream_y4m.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SIGNATURE "YUV4MPEG2"

/* The next blank-separated token of *p (moved past it) into tok; 0 at the
 * end of the line. */
static int next_token(const char **p, char *tok, size_t cap)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    size_t n = 0;
    while (s[n] && s[n] != ' ')
        n++;
    if (n == 0)
        return 0;
    const size_t kept = n < cap - 1 ? n : cap - 1;
    memcpy(tok, s, kept);
    tok[kept] = '\0';
    *p = s + n;
    return 1;
}

int y4m_parse_header(const char *line, int max_side, y4m_format *f, char *why, size_t why_len)
{
    memset(f, 0, sizeof *f);
    f->chroma = Y4M_420; /* the format's default when C is not given */
    const size_t sig = strlen(SIGNATURE);
    if (strncmp(line, SIGNATURE, sig) != 0 || (line[sig] != ' ' && line[sig] != '\0')) {
        snprintf(why, why_len, "not a Y4M stream: it does not start with '" SIGNATURE "'");
        return -1;
    }
    const char *p = line + sig;
    char tok[64];
    long w = 0, h = 0;
    while (next_token(&p, tok, sizeof tok)) {
        const char *v = tok + 1;
        if (tok[0] == 'W' || tok[0] == 'H') {
            long side;
            if (parse_int(v, 1, max_side, &side) != 0) {
                snprintf(why, why_len, "Y4M header: %s '%s' is not a frame %s (1..%d)",
                         tok[0] == 'W' ? "width" : "height", v,
                         tok[0] == 'W' ? "width" : "height", max_side);
                return -1;
            }
            *(tok[0] == 'W' ? &w : &h) = side;
        } else if (tok[0] == 'C') {
            if (!strncmp(v, "420", 3) && (!v[3] || !strcmp(v + 3, "jpeg") ||
                                          !strcmp(v + 3, "mpeg2") || !strcmp(v + 3, "paldv")))
                f->chroma = Y4M_420;
            else if (!strcmp(v, "422"))
                f->chroma = Y4M_422;
            else if (!strcmp(v, "444"))
                f->chroma = Y4M_444;
            else if (!strcmp(v, "mono"))
                f->chroma = Y4M_MONO;
            else {
                snprintf(why, why_len, "Y4M header: colour space C%s is not read (8-bit 420, "
                         "422, 444 or mono; e.g. ffmpeg -pix_fmt yuv420p)", v);
                return -1;
            }
        } else if (!strcmp(tok, "XCOLORRANGE=FULL")) {
            f->full_range = 1;
        } else if (!strcmp(tok, "XCOLORRANGE=LIMITED")) {
            f->full_range = 0;
        }
        /* F (rate), I (interlacing), A (aspect) and other X fields do not
         * change the pixels */
    }
    if (!w || !h) {
        snprintf(why, why_len, "Y4M header: no frame %s (W and H are required)",
                 !w ? "width" : "height");
        return -1;
    }
    f->width = (int)w, f->height = (int)h;
    const size_t luma = (size_t)w * (size_t)h;
    switch (f->chroma) {
    case Y4M_420: f->chroma_width = ((size_t)w + 1) / 2, f->chroma_height = ((size_t)h + 1) / 2; break;
    case Y4M_422: f->chroma_width = ((size_t)w + 1) / 2, f->chroma_height = (size_t)h; break;
    case Y4M_444: f->chroma_width = (size_t)w, f->chroma_height = (size_t)h; break;
    case Y4M_MONO: break;
    }
    f->frame_bytes = luma + 2 * f->chroma_width * f->chroma_height;
    return 0;
}

int y4m_is_frame_header(const char *line)
{
    return !strncmp(line, "FRAME", 5) && (line[5] == '\0' || line[5] == ' ');
}

/* Fixed point with 16 fraction bits. */
#define ONE (1 << 16)
#define FIX(x) ((int)floor((x) * ONE + 0.5))

static unsigned char clamp_byte(int v)
{
    v = (v + ONE / 2) >> 16;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void y4m_to_rgb(const y4m_format *f, const unsigned char *planes, unsigned char *rgb)
{
    /* BT.601: R = Y' + 1.402 Cr, G = Y' - 0.344136 Cb - 0.714136 Cr,
     * B = Y' + 1.772 Cb for full-range samples; limited range first maps Y
     * from 16..235 and Cb, Cr from 16..240 onto the full scale. */
    const double y_scale = f->full_range ? 1.0 : 255.0 / 219.0;
    const double c_scale = f->full_range ? 1.0 : 255.0 / 224.0;
    const int y_offset = f->full_range ? 0 : 16;
    int luma[256], r_cr[256], g_cb[256], g_cr[256], b_cb[256];
    for (int v = 0; v < 256; v++) {
        const double c = (v - 128) * c_scale;
        luma[v] = FIX((v - y_offset) * y_scale);
        r_cr[v] = FIX(1.402 * c);
        g_cb[v] = FIX(-0.344136 * c);
        g_cr[v] = FIX(-0.714136 * c);
        b_cb[v] = FIX(1.772 * c);
    }
    const size_t W = (size_t)f->width, H = (size_t)f->height;
    const unsigned char *Y = planes;
    const unsigned char *Cb = planes + W * H;
    const unsigned char *Cr = Cb + f->chroma_width * f->chroma_height;
    const int half_w = f->chroma != Y4M_444, half_h = f->chroma == Y4M_420;
    for (size_t y = 0; y < H; y++) {
        const unsigned char *yrow = Y + y * W;
        const size_t crow = (half_h ? y / 2 : y) * f->chroma_width;
        unsigned char *out = rgb + y * W * 3;
        for (size_t x = 0; x < W; x++, out += 3) {
            const int l = luma[yrow[x]];
            if (f->chroma == Y4M_MONO) {
                out[0] = out[1] = out[2] = clamp_byte(l);
                continue;
            }
            const size_t k = crow + (half_w ? x / 2 : x);
            out[0] = clamp_byte(l + r_cr[Cr[k]]);
            out[1] = clamp_byte(l + g_cb[Cb[k]] + g_cr[Cr[k]]);
            out[2] = clamp_byte(l + b_cb[Cb[k]]);
        }
    }
}
