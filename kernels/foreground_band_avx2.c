/* foreground_band_avx2.c - foreground_band.h's loop built with -mavx2
 * -mfma (Makefile), where each of its vectors is one register. Only called
 * after kernel_isa_best() has found AVX2; elsewhere than x86 it is empty. */
#include "foreground_band.h"

#if defined(__x86_64__) || defined(__i386__)
void foreground_band_steps_avx2(const fg_band *band, int s0, int s1)
{
    foreground_band_loop(band, s0, s1);
}
#endif
