/* serve_text.c - the server's text buffer (serve_text.h). */
#include "serve_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(text_buf *t, size_t more)
{
    if (t->failed)
        return -1;
    if (t->len + more + 1 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *d = realloc(t->data, cap);
    if (!d) {
        t->failed = 1;
        return -1;
    }
    t->data = d;
    t->cap = cap;
    return 0;
}

void text_appendf(text_buf *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = 1;
        return;
    }
    if (reserve(t, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void text_append_json(text_buf *t, const char *s)
{
    text_appendf(t, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            text_appendf(t, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            text_appendf(t, "\\u%04x", *c);
        else
            text_appendf(t, "%c", *c);
    }
    text_appendf(t, "\"");
}

char *text_take(text_buf *t, size_t *len)
{
    if (t->failed || reserve(t, 0) != 0) {
        text_free(t);
        return NULL;
    }
    char *d = t->data;
    *len = t->len;
    memset(t, 0, sizeof *t);
    return d;
}

void text_free(text_buf *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}
