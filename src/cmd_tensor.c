/* cmd_tensor.c - `u2net tensor`: the raw entry point the tests use. Reads a
 * normalised 3xHxW float32 tensor, runs the network, writes sigmoid(d0)
 * (and with --sides d1..dn after it) as float32. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "u2net.h"
#include "util.h"

static const char usage[] =
    "usage: u2net tensor -m MODEL -i IN.f32 --height H --width W -o OUT.f32\n"
    "                    [--sides] [--threads N] [--isa I] [--reference]\n"
    "  IN is 3*H*W little-endian float32 (CHW, already normalised).\n"
    "  OUT is sigmoid(d0), H*W float32, followed by d1..d6 with --sides.\n"
    "  --isa I runs the fast kernels with at most the instruction set I: avx512,\n"
    "  avx2 or portable (default: the best this CPU has).\n"
    "  --reference runs the plain C reference kernels (slow; for testing).\n";

int cmd_tensor(int argc, char **argv)
{
    const char *model = NULL, *in = NULL, *outp = NULL;
    long h = -1, w = -1, threads = 0;
    int sides = 0, reference = 0, kernels = U2NET_KERNELS_FAST;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--sides")) {
            sides = 1;
        } else if (!strcmp(a, "--reference")) {
            reference = 1;
        } else if (!strcmp(a, "--isa") && has_val) {
            isa = argv[++i];
            if (parse_isa(isa, &kernels) != 0)
                return 2;
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
        } else if (!strcmp(a, "--threads") && has_val) {
            if (parse_int(argv[++i], 1, 1024, &threads) != 0) {
                print_error("--threads: '%s' is not a thread count (1..1024)", argv[i]);
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
        print_error("input size %ldx%ld (HxW) is outside the limits: 1..%d per side, %d pixels", h, w,
                U2NET_MAX_SIDE, U2NET_MAX_PIXELS);
        return 2;
    }
    u2net_error err;
    u2net_model *m = u2net_model_load(model, &err);
    if (!m) {
        print_error("%s", err.msg);
        return 1;
    }
    int rc = 1;
    unsigned char *data = NULL;
    float *outbuf = NULL;
    u2net_ctx *c = NULL;
    size_t len;
    const size_t want = (size_t)3 * h * w * sizeof(float);
    if (read_file(in, &data, &len) != 0) {
        print_error("%s: cannot read input: %s", in, strerror(errno));
        goto done;
    }
    if (len != want) {
        print_error("%s: %zu bytes, but 3x%ldx%ld float32 is %zu bytes", in, len, h, w, want);
        goto done;
    }
    c = u2net_ctx_new(m, (int)threads, &err);
    if (!c) {
        print_error("%s", err.msg);
        goto done;
    }
    u2net_ctx_set_kernels(c, reference ? U2NET_KERNELS_REFERENCE : (u2net_kernels)kernels);
    if (isa && !reference && check_isa(isa, u2net_ctx_kernels_name(c)) != 0)
        goto done;
    /* the file's bytes are little-endian float32, as this machine's floats;
     * malloc's alignment suits float */
    const int run_rc = u2net_run(c, (const float *)data, (int)h, (int)w, &err);
    if (run_rc != 0) {
        print_error("%s", err.msg);
        goto done;
    }
    const int n_out = sides ? u2net_model_output_count(m) : 1;
    const size_t plane = (size_t)h * w;
    outbuf = malloc(plane * n_out * sizeof(float));
    if (!outbuf) {
        print_error("out of memory");
        goto done;
    }
    for (int k = 0; k < n_out; k++)
        memcpy(outbuf + k * plane, u2net_output(c, k), plane * sizeof(float));
    if (u2net_write_file(outp, outbuf, plane * n_out * sizeof(float), 1, &err) != 0) {
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
