/* test_model_image.c - writes the model file the library holds for a
 * model: the one its ONNX reader builds in memory (engine/model/onnx.c), or
 * the built-in one's linked-in bytes, so that test_onnx.py and
 * test_builtin_model.py can compare them byte for byte with what
 * tools/convert.py writes.
 *
 *   test_model_image MODEL.onnx|builtin OUT.u2nc
 *   test_model_image --each FILE...
 *
 * Exit status 0, or 1 with the reader's one-line message on stderr. With
 * --each (test_onnx_hostile.py: many broken files in one process) every
 * file is read in turn and gets one line on stdout: the reader's message,
 * or "FILE: accepted". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_model.h"
#include "onnx.h"

static int write_all(const char *path, const unsigned char *data, size_t n)
{
    FILE *out = fopen(path, "wb");
    const int ok = out && fwrite(data, 1, n, out) == n;
    if ((out && fclose(out) != 0) || !ok) {
        fprintf(stderr, "%s: cannot write\n", path);
        return 1;
    }
    return 0;
}

/* The model file the ONNX reader makes of path: 0, or -1 with err set. */
static int onnx_file_image(const char *path, unsigned char **image, size_t *bytes,
                           u2net_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot open", path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0, got;
    unsigned char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    const int read_failed = ferror(f);
    fclose(f);
    if (!buf || read_failed) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot read", path);
        free(buf);
        return -1;
    }
    const int rc = onnx_model_image(path, buf, n, image, bytes, err);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--each")) {
        for (int i = 2; i < argc; i++) {
            unsigned char *image;
            size_t bytes;
            u2net_error err;
            if (onnx_file_image(argv[i], &image, &bytes, &err) == 0) {
                printf("%s: accepted\n", argv[i]);
                free(image);
            } else {
                printf("%s\n", err.msg);
            }
        }
        return 0;
    }
    if (argc != 3) {
        fputs("usage: test_model_image MODEL.onnx|builtin OUT.u2nc | --each FILE...\n", stderr);
        return 2;
    }
    if (!strcmp(argv[1], "builtin")) {
        size_t n;
        const unsigned char *bytes = builtin_model(&n);
        if (!bytes) {
            fputs("built without the built-in model\n", stderr);
            return 1;
        }
        return write_all(argv[2], bytes, n);
    }
    unsigned char *image;
    size_t bytes;
    u2net_error err;
    if (onnx_file_image(argv[1], &image, &bytes, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const int rc = write_all(argv[2], image, bytes);
    free(image);
    return rc;
}
