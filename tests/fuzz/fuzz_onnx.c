/* fuzz_onnx.c - libFuzzer target for the ONNX reader (engine/model/onnx.c
 * and the protobuf reader under it): the input is read as an ONNX file; a
 * network it accepts is loaded from the model file it built and run on a
 * 5x7 input, as fuzz_model does. Seeds: seeds/onnx, tiny networks of the
 * U2Net and ISNet layouts in the forms exporters write
 * (tests/test_onnx.py --write-seeds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    unsigned char *image;
    size_t bytes;
    u2net_error err;
    if (onnx_model_image("fuzz.onnx", data, n, &image, &bytes, &err) != 0)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/tmp/u2net-fuzz-onnx.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    const int written = f && fwrite(image, 1, bytes, f) == bytes;
    if (f)
        fclose(f);
    free(image);
    if (written) {
        u2net_model *m = u2net_model_load(path, &err);
        if (m) {
            u2net_ctx *c = u2net_ctx_new(m, 1, &err);
            const float x[3 * 5 * 7] = {0};
            if (c)
                u2net_run(c, x, 5, 7, &err);
            u2net_ctx_free(c);
            u2net_model_free(m);
        }
    }
    unlink(path);
    return 0;
}
