/* half.c - float16 (IEEE binary16) to float32, for weights a model file
 * stores as float16: the portable loop and the choice of the F16C one
 * (half_f16c.c). Every float16 value, subnormals, infinities and NaNs
 * included, has an exact float32; both loops give it. */
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* The value's exponent and mantissa shifted into float32's fields and
 * scaled by 2^(127-15) are exact for normal and subnormal numbers alike;
 * infinities and NaNs keep the all-ones exponent, NaNs made quiet as F16C
 * makes them. */
float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, em = h & 0x7fffu;
    uint32_t bits;
    if (em >= 0x7c00u) {
        bits = sign | 0x7f800000u | (em & 0x3ffu) << 13 | (em > 0x7c00u ? 0x00400000u : 0);
    } else {
        const uint32_t shifted = em << 13;
        float f;
        memcpy(&f, &shifted, sizeof f);
        f *= 0x1p112f;
        memcpy(&bits, &f, sizeof bits);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

void half_to_float_n(kernel_isa isa, const uint16_t *src, float *dst, size_t n, int threads)
{
    enum { CHUNK = 1 << 16 };
    const long chunks = (long)((n + CHUNK - 1) / CHUNK);
    #pragma omp parallel for num_threads(threads) schedule(static) if (chunks > 1)
    for (long k = 0; k < chunks; k++) {
        const size_t i0 = (size_t)k * CHUNK, m = n - i0 < CHUNK ? n - i0 : CHUNK;
        if (isa >= KERNEL_ISA_AVX2) {
            half_to_float_f16c(src + i0, dst + i0, m);
        } else {
            for (size_t i = 0; i < m; i++)
                dst[i0 + i] = half_to_float(src[i0 + i]);
        }
    }
}
