/* serve_process.h - one `POST /api/remove` of `u2net serve`: the uploaded
 * bytes to the reply (decode, matte, render, encode), on a worker's
 * context; and the server's JSON error replies. */
#ifndef U2NET_SERVE_PROCESS_H
#define U2NET_SERVE_PROCESS_H

#include <stddef.h>

#include "serve_params.h"
#include "u2net.h"

typedef struct {
    int status;                /* HTTP status */
    const char *content_type;  /* a static string */
    unsigned char *body;       /* malloc'd, len bytes; NULL only when memory ran out
                                  building an error (the server then sends its own) */
    size_t len;
} serve_reply;

/* {"error": message, "status": status} as the reply. */
void serve_reply_error(serve_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void serve_reply_free(serve_reply *r);

/* The image in data (len bytes, any format the library decodes) processed
 * as p asks with ctx, into r: 200 with the image or JSON; 400 for bytes
 * that are not an image or parameters the image cannot take, 413 for an
 * image over max_pixels, 415 for an image format the library does not
 * read, 503 when memory runs out, 504 when the clock (now_seconds) passes
 * deadline between two steps. */
void serve_process_image(u2net_ctx *ctx, const serve_params *p, const unsigned char *data,
                         size_t len, size_t max_pixels, double deadline, serve_reply *r);

#endif
