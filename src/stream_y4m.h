/* stream_y4m.h - YUV4MPEG2 (Y4M) input for `u2net stream --y4m`: the
 * stream's header, its frames' headers, and a frame's planes turned into
 * RGB.
 *
 * A stream is a header line ("YUV4MPEG2 W640 H480 F30:1 C420jpeg ..."),
 * then per frame a line starting "FRAME" and the planes: Y (W x H), then
 * Cb and Cr at the chroma's resolution. 8-bit 4:2:0 (any chroma siting),
 * 4:2:2, 4:4:4 and mono are read; the colours are BT.601's, limited range
 * (16..235) unless the header says XCOLORRANGE=FULL, as ffmpeg writes and
 * reads them. */
#ifndef U2NET_STREAM_Y4M_H
#define U2NET_STREAM_Y4M_H

#include <stddef.h>

typedef enum { Y4M_420, Y4M_422, Y4M_444, Y4M_MONO } y4m_chroma;

typedef struct {
    int width, height;
    y4m_chroma chroma;
    int full_range;
    size_t chroma_width, chroma_height; /* of the Cb and Cr planes (0 for mono) */
    size_t frame_bytes;                 /* of a frame's planes */
} y4m_format;

/* Parses the stream's header line (its '\n' taken off). Sides are taken up
 * to max_side. Returns 0, or -1 with one line saying what is wrong in why. */
int y4m_parse_header(const char *line, int max_side, y4m_format *f, char *why, size_t why_len);
/* Whether a line (its '\n' taken off) is a frame's header: "FRAME", with
 * or without parameters after a blank. */
int y4m_is_frame_header(const char *line);
/* A frame's planes into width x height RGB triples. Chroma samples are
 * repeated over the pixels they cover, as ffmpeg's conversion to rgb24
 * does. */
void y4m_to_rgb(const y4m_format *f, const unsigned char *planes, unsigned char *rgb);

#endif
