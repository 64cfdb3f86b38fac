/* foreground_band.c - foreground estimation's band steps
 * (foreground_band.h): the portable loop and the choice of the AVX2 or
 * AVX-512 one. */
#include "foreground_band.h"

void foreground_band_steps(kernel_isa isa, const fg_band *band, int s0, int s1)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == KERNEL_ISA_AVX512) {
        foreground_band_steps_avx512(band, s0, s1);
        return;
    }
    if (isa == KERNEL_ISA_AVX2) {
        foreground_band_steps_avx2(band, s0, s1);
        return;
    }
#else
    (void)isa;
#endif
    foreground_band_loop(band, s0, s1);
}
