/* half_neon.c - float16 to float32 with ARMv8-A's FCVTL, eight at a time.
 * Advanced SIMD is part of every ARMv8-A CPU; elsewhere than aarch64 this
 * file compiles empty. */
#include "half.h"

#if defined(__aarch64__)
#include <arm_neon.h>

void half_to_float_neon(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(src + i));
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++)
        dst[i] = half_to_float(src[i]);
}
#endif
