/* fuzz_model.c - libFuzzer target for the model loader and a run of what it
 * loaded. The file's two CRC fields and its size field are recomputed before
 * loading, so mutations reach the structure checks instead of stopping at
 * the checksums (which test_bad_model covers). Seeds: seeds/model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    if (!b)
        return 0;
    memcpy(b, data, n);
    if (n >= 128) {
        for (int i = 0; i < 8; i++)
            b[72 + i] = (unsigned char)((uint64_t)n >> (8 * i));
        put32(b + 112, crc32_update(0, b + 128, n - 128));
        put32(b + 116, crc32_update(0, b, 116));
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/u2net-fuzz-model.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) {
        if (f)
            fclose(f);
        free(b);
        return 0;
    }
    fclose(f);
    free(b);
    u2net_error err;
    u2net_model *m = u2net_model_load(path, &err);
    if (m) {
        u2net_ctx *c = u2net_ctx_new(m, 1, &err);
        const float x[3 * 5 * 7] = {0};
        if (c)
            u2net_run(c, x, 5, 7, &err);
        u2net_ctx_free(c);
        u2net_model_free(m);
    }
    unlink(path);
    return 0;
}
