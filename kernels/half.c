/* half.c - float16 (IEEE binary16) to float32, for weights a model file
 * stores as float16: the portable loop and the choice of the F16C one
 * (half_f16c_avx2.c) or the NEON one (half_neon.c). Every float16 value,
 * subnormals, infinities and NaNs included, has an exact float32; every
 * loop gives it. */
#include "half.h"

void half_to_float_n(kernel_isa isa, const uint16_t *src, float *dst, size_t n, int threads)
{
    enum { CHUNK = 1 << 16 };
    const long chunks = (long)((n + CHUNK - 1) / CHUNK);
    #pragma omp parallel for num_threads(threads) schedule(static) if (chunks > 1)
    for (long k = 0; k < chunks; k++) {
        const size_t i0 = (size_t)k * CHUNK, m = n - i0 < CHUNK ? n - i0 : CHUNK;
        if (isa == KERNEL_ISA_AVX2 || isa == KERNEL_ISA_AVX512) {
            half_to_float_f16c(src + i0, dst + i0, m);
#if defined(__aarch64__)
        } else if (isa == KERNEL_ISA_NEON) {
            half_to_float_neon(src + i0, dst + i0, m);
#endif
        } else {
            for (size_t i = 0; i < m; i++)
                dst[i0 + i] = half_to_float(src[i0 + i]);
        }
    }
}
