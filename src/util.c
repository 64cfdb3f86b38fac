/* util.c - helpers for the command-line program. */
#include "util.h"
#include "u2net.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void vprint_line(const char *prefix, const char *fmt, va_list ap)
{
    char small[1024], *text = small;
    va_list again;
    va_copy(again, ap);
    const int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (text = malloc((size_t)n + 1)) != NULL)
        vsnprintf(text, (size_t)n + 1, fmt, again);
    va_end(again);
    if (!text)
        text = small; /* out of memory: the line cut short */
    fputs(prefix, stderr);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c >= 0x20 && *c != 0x7f)
            fputc(*c, stderr);
        else if (*c == '\n')
            fputs("\\n", stderr);
        else if (*c == '\t')
            fputs("\\t", stderr);
        else if (*c == '\r')
            fputs("\\r", stderr);
        else
            fprintf(stderr, "\\x%02x", *c);
    }
    fputc('\n', stderr);
    if (text != small)
        free(text);
}

void print_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_line("u2net: ", fmt, ap);
    va_end(ap);
}

int parse_int(const char *s, long lo, long hi, long *out)
{
    /* strtol would skip leading blanks; a value is only its digits */
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Length of the run of decimal digits at s. */
static size_t digit_run(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

int parse_float(const char *s, double lo, double hi, double *out)
{
    if (!s)
        return -1;
    /* strtod also takes blanks, hex, "inf" and "nan": check the plain
     * decimal form first, then let strtod convert it */
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    const size_t whole = digit_run(p);
    p += whole;
    size_t frac = 0;
    if (*p == '.') {
        p++;
        frac = digit_run(p);
        p += frac;
    }
    if (whole + frac == 0)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        const size_t exp = digit_run(p);
        if (exp == 0)
            return -1;
        p += exp;
    }
    if (*p)
        return -1;
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

int read_stream(FILE *f, size_t limit, int (*accept)(const void *head, size_t n),
                unsigned char **data, size_t *len)
{
    *data = NULL, *len = 0;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    int saved = buf ? 0 : ENOMEM;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (accept && cap == 1 << 16 && n > 0 && !accept(buf, n)) {
            saved = EILSEQ;
            break;
        }
        if (n < cap)
            break;
        if (limit && n > limit) {
            saved = EFBIG;
            break;
        }
        unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!nb) {
            saved = ENOMEM;
            break;
        }
        buf = nb, cap *= 2;
    }
    if (!saved && limit && n > limit)
        saved = EFBIG;
    if (!saved && ferror(f))
        saved = errno ? errno : EIO;
    if (saved) {
        free(buf);
        errno = saved;
        return -1;
    }
    *data = buf, *len = n;
    return 0;
}

int read_file(const char *path, unsigned char **data, size_t *len)
{
    *data = NULL, *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    errno = 0;
    int rc = read_stream(f, 0, NULL, data, len);
    const int saved = errno;
    fclose(f);
    errno = saved;
    return rc;
}

int write_stream(FILE *f, const void *data, size_t len)
{
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    return 0;
}

int make_dirs(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
        return -1;
    }
    char *p = strdup(path);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    /* create each prefix ending before a '/', then the whole path */
    int rc = 0;
    for (char *s = p + 1;; s++) {
        const int end = *s == '\0';
        if (!end && *s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        if (end)
            break;
        *s = '/';
        while (s[1] == '/')
            s++;
    }
    const int saved = errno;
    if (rc == 0 && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = -1;
    free(p);
    if (rc != 0)
        errno = saved == EEXIST ? ENOTDIR : saved;
    return rc;
}

char *path_join(const char *a, const char *b)
{
    const size_t na = strlen(a), nb = strlen(b);
    const int slash = na > 0 && a[na - 1] != '/';
    char *s = malloc(na + slash + nb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, na);
    if (slash)
        s[na] = '/';
    memcpy(s + na + slash, b, nb + 1);
    return s;
}

const char *path_extension(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot + 1 : base + strlen(base);
}

int str_eq_ci(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int isa_from_name(const char *name, u2net_isa *isa)
{
    if (!strcmp(name, "avx512"))
        *isa = U2NET_ISA_BEST;
    else if (!strcmp(name, "avx2"))
        *isa = U2NET_ISA_AVX2;
    else if (!strcmp(name, "neon"))
        *isa = U2NET_ISA_NEON;
    else if (!strcmp(name, "portable"))
        *isa = U2NET_ISA_PORTABLE;
    else
        return -1;
    return 0;
}

int device_from_name(const char *name, u2net_device *device)
{
    if (!strcmp(name, "cpu"))
        *device = U2NET_DEVICE_CPU;
    else if (!strcmp(name, "cuda"))
        *device = U2NET_DEVICE_CUDA;
    else
        return -1;
    return 0;
}

int report_context_error(const u2net_error *err)
{
    if (err->code == U2NET_EDEVICE) {
        print_error("--device cuda: %s", err->msg);
        return 2;
    }
    print_error("%s", err->msg);
    return 1;
}

int check_isa(const char *name, const char *running)
{
    if (strcmp(name, running) == 0)
        return 0;
    print_error("--isa %s: this CPU runs at most %s", name, running);
    return -1;
}
