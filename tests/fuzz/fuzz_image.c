/* fuzz_image.c - libFuzzer target for image decoding (every stb_image format
 * the program reads, 16-bit, EXIF orientation), with a 4 MP limit so the
 * fuzzer cannot ask for huge allocations. Seeds: seeds/image. */
#include <stddef.h>
#include <stdint.h>

#include "u2net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    u2net_error err;
    u2net_image img;
    if (u2net_image_decode(data, n, (size_t)1 << 22, &img, &err) == 0)
        u2net_image_free(&img);
    return 0;
}
