/* half.h - one float16 (IEEE binary16 bits) to float32, exactly: the
 * scalar conversion the loops of half.c and half_f16c_avx2.c share. */
#ifndef U2NET_HALF_H
#define U2NET_HALF_H

#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* The value's exponent and mantissa shifted into float32's fields and
 * scaled by 2^(127-15) are exact for normal and subnormal numbers alike;
 * infinities and NaNs keep the all-ones exponent, NaNs made quiet as F16C
 * makes them. */
static inline float half_to_float(uint16_t h)
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

#endif
