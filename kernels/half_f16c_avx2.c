/* half_f16c_avx2.c - float16 to float32 with F16C's vcvtph2ps, eight at a
 * time. Built with -mavx2 -mf16c (Makefile); only called after
 * kernel_isa_best() has found AVX2, which it only reports with F16C. */
#include "half.h"

#if defined(__F16C__)
#include <immintrin.h>

void half_to_float_f16c(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = half_to_float(src[i]);
}
#else
void half_to_float_f16c(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_to_float(src[i]);
}
#endif
