/* util.h - small helpers shared by the command-line program. */
#ifndef U2NET_UTIL_H
#define U2NET_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "u2net.h"

/* One line on stderr: prefix, then the formatted text with its control
 * characters escaped (\n, \t, \r, \xHH), so that a name holding a newline
 * cannot break the one line a message is. */
void vprint_line(const char *prefix, const char *fmt, va_list ap);
/* vprint_line with the prefix "u2net: " (and goes on: the caller decides
 * what follows). */
void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a whole decimal integer in [lo, hi]: no leading blanks, no trailing
 * characters. Returns 0 on success. */
int parse_int(const char *s, long lo, long hi, long *out);

/* Parses a whole plain decimal number ([+-]digits[.digits][e[+-]digits]) in
 * [lo, hi]: no blanks, hex, inf or nan. Returns 0 on success. */
int parse_float(const char *s, double lo, double hi, double *out);

/* Reads a whole file into a new buffer; returns 0, or -1 with errno set. */
int read_file(const char *path, unsigned char **data, size_t *len);

/* As read_file, for an open stream, stopping with EFBIG once more than limit
 * bytes arrive (limit 0: no limit), and with EILSEQ after the first 64 KB
 * (or fewer, all there is) when accept (NULL: anything) refuses them. */
int read_stream(FILE *f, size_t limit, int (*accept)(const void *head, size_t n),
                unsigned char **data, size_t *len);

/* Writes len bytes to a stream and flushes it; returns 0, or -1 with errno. */
int write_stream(FILE *f, const void *data, size_t len);

/* Creates a folder and its missing parents (mode 0777 less the umask).
 * Returns 0 when path is (now) a folder, or -1 with errno set. */
int make_dirs(const char *path);

/* a + "/" + b as a new string (no doubled '/'); a "" gives b. NULL when out
 * of memory. */
char *path_join(const char *a, const char *b);

/* The extension of a path's last component without the dot ("" if none; a
 * leading dot does not start one), pointing into path. */
const char *path_extension(const char *path);

/* Case-insensitive ASCII string equality. */
int str_eq_ci(const char *a, const char *b);

/* --isa NAME: the CPU instruction set of that name ("avx512" is the best
 * this CPU has, "avx2", "neon", "portable"). Returns 0, or -1 for another name. */
int isa_from_name(const char *name, u2net_isa *isa);

/* --device NAME: "cpu" or "cuda". Returns 0, or -1 for another name. */
int device_from_name(const char *name, u2net_device *device);

/* After u2net_ctx_new_opts with isa_from_name's choice: 0 when the context
 * runs that instruction set, else -1 with a message (the CPU lacks it). */
int check_isa(const char *name, const char *running);

/* After a failed u2net_ctx_new_opts: prints its message (prefixed with
 * "--device cuda: " for a device this build or machine cannot give) and
 * returns the exit status: 2 for that (the command line asked for it),
 * else 1. */
int report_context_error(const u2net_error *err);

/* Seconds on a monotonic clock. */
double now_seconds(void);

#endif
