/* util.h - small helpers shared by the command-line program. */
#ifndef U2NET_UTIL_H
#define U2NET_UTIL_H

#include <stddef.h>

/* Prints "u2net: " + the formatted message + newline on stderr. */
void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a whole decimal integer in [lo, hi]; returns 0 on success. */
int parse_int(const char *s, long lo, long hi, long *out);

/* Reads a whole file into a new buffer; returns 0, or -1 with errno set. */
int read_file(const char *path, unsigned char **data, size_t *len);

/* Writes len bytes to path through a temporary file in the same folder and a
 * rename, so path never holds a partial file. Returns 0, or -1 with errno set
 * (the temporary file is removed). */
int write_file_atomic(const char *path, const void *data, size_t len);

#endif
