/* serve_text.h - a growing text buffer for the server's replies (JSON,
 * Prometheus text). An allocation failure is sticky: later appends do
 * nothing and text_take returns NULL, so a reply is built with one check. */
#ifndef U2NET_SERVE_TEXT_H
#define U2NET_SERVE_TEXT_H

#include <stddef.h>

typedef struct {
    char *data;   /* NUL-terminated */
    size_t len, cap;
    int failed;   /* an allocation failed */
} text_buf;

void text_appendf(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included; bytes below 0x20 and 0x7f escaped,
 * other bytes as they are. */
void text_append_json(text_buf *t, const char *s);
/* The text (malloc'd, the caller frees it) and its length; NULL after a
 * failed allocation (the buffer is freed either way). */
char *text_take(text_buf *t, size_t *len);
void text_free(text_buf *t);

#endif
