/* guided_rows.c - the guided filter's output row (guided_rows.h): the
 * portable loop and the choice of the AVX2 one. */
#include "guided_rows.h"

void guided_row_rgb(kernel_isa isa, const float *r0, const float *r1, float fy,
                    const unsigned char *rgb, int w, float *q)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == KERNEL_ISA_AVX2 || isa == KERNEL_ISA_AVX512) {
        guided_row_rgb_avx2(r0, r1, fy, rgb, w, q);
        return;
    }
#else
    (void)isa;
#endif
    guided_row_rgb_loop(r0, r1, fy, rgb, w, q);
}
