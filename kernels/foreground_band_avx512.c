/* foreground_band_avx512.c - foreground_band.h's loop built for AVX-512
 * (Makefile), its vectors still 8 floats: the 32 registers hold the step's
 * weights and the six chains without spilling, and the selects are masked
 * moves. Only called after kernel_isa_best() has found AVX-512; elsewhere
 * than x86 it is empty. */
#include "foreground_band.h"

#if defined(__x86_64__) || defined(__i386__)
void foreground_band_steps_avx512(const fg_band *band, int s0, int s1)
{
    foreground_band_loop(band, s0, s1);
}
#endif
