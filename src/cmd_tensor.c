/* cmd_tensor.c - `u2net tensor`: the raw entry point the tests use. Reads
 * normalised 3xHxW float32 tensors (N of them with --batch N), runs the
 * network, writes output 0 of each (with --sides every output) as float32. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctx_args.h"
#include "u2net.h"
#include "paths.h"
#include "util.h"

static const char usage[] =
    "usage: u2net tensor -m MODEL -i IN.f32 --height H --width W -o OUT.f32\n"
    "                    [--sides] [--batch N] [--threads N] [--device cpu|cuda]\n"
    "                    [--isa I] [--reference] [--fast] [--gpu N]\n"
    "  IN is N*3*H*W little-endian float32 (N images, CHW, already normalised).\n"
    "  OUT is output 0 of each image (the prediction: sigmoid(d0) for U2Net,\n"
    "  sigmoid(d1) for ISNet), H*W float32, or with --sides every output of each\n"
    "  image in order (7 for U2Net: d0..d6; 6 for ISNet: d1..d6).\n"
    "  --batch N     IN holds N images, run at once (1..256; default 1)\n"
    "  --device D    cpu (default) or cuda (a build with make CUDA=1)\n"
    "  --isa I       the CPU fast kernels' instruction set at most: avx512, avx2,\n"
    "                neon (ARM64) or portable (default: the best this CPU has)\n"
    "  --reference   the plain forward pass with the reference kernels (slow; for\n"
    "                testing)\n"
    "  --fast        CUDA: TF32 matrix products; --gpu N: the CUDA device\n";

int cmd_tensor(int argc, char **argv)
{
    const char *model = NULL, *in = NULL, *outp = NULL;
    long h = -1, w = -1, batch = 1;
    int sides = 0;
    ctx_args ca;
    ctx_args_default(&ca);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        const int common = ctx_args_parse(&ca, argc, argv, &i, 1);
        if (common < 0)
            return 2;
        if (common > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--sides")) {
            sides = 1;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model = argv[++i];
        } else if ((!strcmp(a, "-i") || !strcmp(a, "--input")) && has_val) {
            in = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            outp = argv[++i];
        } else if (!strcmp(a, "--height") && has_val) {
            if (parse_int(argv[++i], 0, 1L << 30, &h) != 0) {
                print_error("--height: '%s' is not a size", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--width") && has_val) {
            if (parse_int(argv[++i], 0, 1L << 30, &w) != 0) {
                print_error("--width: '%s' is not a size", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--batch") && has_val) {
            if (parse_int(argv[++i], 1, U2NET_MAX_BATCH, &batch) != 0) {
                print_error("--batch: '%s' is not an image count (1..%d)", argv[i],
                            U2NET_MAX_BATCH);
                return 2;
            }
        } else {
            print_error("tensor: unknown or incomplete option '%s' (see u2net tensor --help)", a);
            return 2;
        }
    }
    if (!model || !in || !outp || h < 0 || w < 0) {
        print_error("tensor: -m, -i, -o, --height and --width are required (see u2net tensor --help)");
        return 2;
    }
    if (h < 1 || w < 1 || h > U2NET_MAX_SIDE || w > U2NET_MAX_SIDE ||
        h * w > U2NET_MAX_PIXELS) {
        print_error("input size %ldx%ld (HxW) is outside the limits: 1..%d per side, %d pixels",
                    h, w, U2NET_MAX_SIDE, U2NET_MAX_PIXELS);
        return 2;
    }
    u2net_model *m = model_open("", model);
    if (!m)
        return 1;
    u2net_error err;
    int rc = 1;
    unsigned char *data = NULL;
    float *outbuf = NULL;
    u2net_ctx *c = NULL;
    size_t len;
    const size_t plane = (size_t)h * w, want = (size_t)batch * 3 * plane * sizeof(float);
    if (read_file(in, &data, &len) != 0) {
        print_error("%s: cannot read input: %s", in, strerror(errno));
        goto done;
    }
    if (len != want) {
        print_error("%s: %zu bytes, but %ldx3x%ldx%ld float32 is %zu bytes", in, len, batch, h, w,
                    want);
        goto done;
    }
    c = ctx_args_new_context(&ca, m, &rc);
    if (!c)
        goto done;
    rc = 1;
    /* the file's bytes are little-endian float32, as this machine's floats;
     * malloc's alignment suits float */
    if (u2net_run_batch(c, (const float *)data, (int)batch, (int)h, (int)w, &err) != 0) {
        print_error("%s", err.msg);
        goto done;
    }
    const int n_out = sides ? u2net_model_output_count(m) : 1;
    outbuf = malloc(plane * n_out * batch * sizeof(float));
    if (!outbuf) {
        print_error("out of memory");
        goto done;
    }
    for (long b = 0; b < batch; b++)
        for (int k = 0; k < n_out; k++)
            memcpy(outbuf + ((size_t)b * n_out + k) * plane, u2net_output_batch(c, (int)b, k),
                   plane * sizeof(float));
    if (u2net_write_file(outp, outbuf, plane * n_out * batch * sizeof(float), 1, &err) != 0) {
        print_error("%s", err.msg);
        goto done;
    }
    rc = 0;
done:
    free(outbuf);
    free(data);
    u2net_ctx_free(c);
    u2net_model_free(m);
    return rc;
}
