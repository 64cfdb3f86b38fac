/* stream_io.h - the bytes of `u2net stream`: whole frames read from a
 * pipe, whole buffers written to one, and the names of numbered output
 * files (out-%05d.png).
 *
 * Reading waits in short polls rather than in a blocking read, so that a
 * stop request (SIGINT, SIGTERM) is seen while no frame comes, whichever
 * thread of the process the signal was delivered to. */
#ifndef U2NET_STREAM_IO_H
#define U2NET_STREAM_IO_H

#include <signal.h>
#include <stddef.h>

#define STREAM_READ_BUFFER (1 << 16)

typedef struct {
    int fd;
    const volatile sig_atomic_t *stop;  /* non-zero once a stop is asked */
    unsigned char buf[STREAM_READ_BUFFER];
    size_t pos, len;                    /* the unread bytes are buf[pos..len) */
    int eof;
} byte_reader;

typedef enum {
    READ_OK,      /* all the bytes asked for */
    READ_END,     /* the stream ended before the first of them */
    READ_SHORT,   /* the stream ended part way (*got bytes read) */
    READ_STOPPED, /* a stop was asked while waiting for bytes */
    READ_ERROR    /* a read failed: errno says why */
} read_status;

void reader_init(byte_reader *r, int fd, const volatile sig_atomic_t *stop);
/* Reads exactly n bytes into dst; *got says how many arrived. */
read_status reader_read(byte_reader *r, void *dst, size_t n, size_t *got);
/* Reads a line of at most cap - 1 bytes up to its '\n' (not kept) into line,
 * NUL-terminated, *got its length. READ_SHORT: the stream ended before the
 * '\n'; a line longer than that is READ_ERROR with errno EOVERFLOW. */
read_status reader_read_line(byte_reader *r, char *line, size_t cap, size_t *got);

/* Writes all n bytes, going on after a signal (a frame is never left half
 * written); 0, or -1 with errno (EPIPE: the reader has gone). */
int write_all(int fd, const void *data, size_t n);

/* A file name pattern with one frame number in it: prefix, the number
 * printed in at least `width` digits (padded with zeros when zero_pad, else
 * with blanks), suffix. */
typedef struct {
    char *prefix, *suffix;
    int width, zero_pad;
} frame_pattern;

/* Parses a pattern holding exactly one %d, %Nd or %0Nd (N 1..9); %% is a
 * '%'. Returns 0, or -1 with one line saying what is wrong in why. */
int frame_pattern_parse(const char *pattern, frame_pattern *p, char *why, size_t why_len);
/* The name of frame n, a new string; NULL when out of memory. */
char *frame_pattern_path(const frame_pattern *p, unsigned long n);
void frame_pattern_free(frame_pattern *p);

#endif
