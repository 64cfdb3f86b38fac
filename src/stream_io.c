/* stream_io.c - reading whole frames from a pipe, writing whole buffers,
 * and numbered file names, for `u2net stream`. */
#include "stream_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a wait for input lasts before the stop request is looked at
 * again: the most a stop can be late while no frame comes. */
#define STOP_POLL_MS 50

void reader_init(byte_reader *r, int fd, const volatile sig_atomic_t *stop)
{
    r->fd = fd;
    r->stop = stop;
    r->pos = r->len = 0;
    r->eof = 0;
}

/* Reads what is there (up to n bytes) into dst once the descriptor is
 * readable: the count, 0 at the end of the stream, -1 with errno, or -2
 * when a stop was asked first. */
static long read_some(byte_reader *r, void *dst, size_t n)
{
    for (;;) {
        if (*r->stop)
            return -2;
        struct pollfd p = {r->fd, POLLIN, 0};
        const int ready = poll(&p, 1, STOP_POLL_MS);
        if (ready < 0 && errno != EINTR)
            return -1;
        if (ready <= 0)
            continue;
        /* readable, at its end, or in error: read says which */
        const ssize_t got = read(r->fd, dst, n);
        if (got >= 0)
            return (long)got;
        if (errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

/* Refills the empty buffer: 1 with bytes in it, 0 at the end, -1 with
 * errno, -2 when stopped. */
static int refill(byte_reader *r)
{
    if (r->eof)
        return 0;
    const long got = read_some(r, r->buf, sizeof r->buf);
    if (got < 0)
        return (int)got;
    r->pos = 0, r->len = (size_t)got;
    r->eof = got == 0;
    return got > 0;
}

static read_status status_of(int rc, size_t got)
{
    return rc == -2 ? READ_STOPPED : rc < 0 ? READ_ERROR : got == 0 ? READ_END : READ_SHORT;
}

read_status reader_read(byte_reader *r, void *dst, size_t n, size_t *got)
{
    unsigned char *out = dst;
    size_t have = 0;
    *got = 0;
    while (have < n) {
        if (r->pos < r->len) {
            size_t take = r->len - r->pos;
            if (take > n - have)
                take = n - have;
            memcpy(out + have, r->buf + r->pos, take);
            r->pos += take, have += take;
            continue;
        }
        int rc;
        if (n - have >= sizeof r->buf && !r->eof) {
            /* a large remainder goes straight into place, not through buf */
            const long part = read_some(r, out + have, n - have);
            r->eof = part == 0;
            rc = part > 0 ? 1 : (int)part;
            if (part > 0)
                have += (size_t)part;
        } else {
            rc = refill(r);
        }
        if (rc <= 0) {
            *got = have;
            return status_of(rc, have);
        }
    }
    *got = have;
    return READ_OK;
}

read_status reader_read_line(byte_reader *r, char *line, size_t cap, size_t *got)
{
    size_t n = 0;
    *got = 0;
    for (;;) {
        if (r->pos == r->len) {
            const int rc = refill(r);
            if (rc <= 0) {
                line[n] = '\0';
                *got = n;
                return status_of(rc, n);
            }
        }
        const unsigned char c = r->buf[r->pos++];
        if (c == '\n')
            break;
        if (n + 1 >= cap) {
            line[n] = '\0';
            *got = n;
            errno = EOVERFLOW;
            return READ_ERROR;
        }
        line[n++] = (char)c;
    }
    line[n] = '\0';
    *got = n;
    return READ_OK;
}

int write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        const ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* A copy of s[0..n) with each %% made one %; NULL when out of memory. */
static char *unescape_percent(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        *o++ = s[i];
        if (s[i] == '%')
            i++;
    }
    *o = '\0';
    return out;
}

int frame_pattern_parse(const char *pattern, frame_pattern *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof *p);
    const char *number = NULL, *number_end = NULL;
    for (const char *c = pattern; *c; c++) {
        if (*c != '%')
            continue;
        if (c[1] == '%') {
            c++;
            continue;
        }
        const char *d = c + 1;
        const int zero = *d == '0';
        d += zero;
        int width = 0;
        while (*d >= '0' && *d <= '9' && width < 100)
            width = width * 10 + (*d++ - '0');
        if (*d != 'd' || width > 9) {
            snprintf(why, why_len, "'%%%.*s' is not a frame number (%%d, %%Nd or %%0Nd, N 1..9; "
                     "%%%% for a %%)", (int)(d - c - 1) + (*d != 0), c + 1);
            return -1;
        }
        if (number) {
            snprintf(why, why_len, "more than one frame number (%%d) in the pattern");
            return -1;
        }
        number = c, number_end = d + 1;
        p->width = width, p->zero_pad = zero;
        c = d;
    }
    if (!number) {
        snprintf(why, why_len, "no frame number in the pattern: name the files with a %%d, e.g. "
                 "out-%%05d.png, or give - for standard output");
        return -1;
    }
    p->prefix = unescape_percent(pattern, (size_t)(number - pattern));
    p->suffix = unescape_percent(number_end, strlen(number_end));
    if (!p->prefix || !p->suffix) {
        frame_pattern_free(p);
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    return 0;
}

char *frame_pattern_path(const frame_pattern *p, unsigned long n)
{
    char digits[32];
    snprintf(digits, sizeof digits, p->zero_pad ? "%0*lu" : "%*lu", p->width, n);
    const size_t len = strlen(p->prefix) + strlen(digits) + strlen(p->suffix);
    char *path = malloc(len + 1);
    if (path)
        snprintf(path, len + 1, "%s%s%s", p->prefix, digits, p->suffix);
    return path;
}

void frame_pattern_free(frame_pattern *p)
{
    free(p->prefix);
    free(p->suffix);
    p->prefix = p->suffix = NULL;
}
