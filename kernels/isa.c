/* isa.c - which instruction sets the CPU kernels may use on this machine. */
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* F16C (CPUID leaf 1, ECX bit 29), which clang's __builtin_cpu_supports
 * does not name. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}
#endif

kernel_isa kernel_isa_best(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's checks include the operating system's support (XCR0) for
     * the AVX and AVX-512 register state, not only the CPUID bits */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return KERNEL_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return KERNEL_ISA_AVX2;
#elif defined(__aarch64__)
    /* Advanced SIMD, its FMA and float16 conversions are part of ARMv8-A */
    return KERNEL_ISA_NEON;
#endif
    return KERNEL_ISA_PORTABLE;
}

/* 0 portable, 1 AVX2 or NEON, 2 AVX-512 (kernels.h) */
static int isa_level(kernel_isa isa)
{
    switch (isa) {
    case KERNEL_ISA_AVX512: return 2;
    case KERNEL_ISA_AVX2:
    case KERNEL_ISA_NEON: return 1;
    default: return 0;
    }
}

kernel_isa kernel_isa_clamp(kernel_isa wanted)
{
    const kernel_isa best = kernel_isa_best();
    const int level = isa_level(wanted);
    if (level >= isa_level(best))
        return best;
    /* below the best: on x86 (best AVX-512 or AVX2) level 1 is AVX2; on
     * aarch64 the best is level 1, so this is level 0 */
    return level == 1 ? KERNEL_ISA_AVX2 : KERNEL_ISA_PORTABLE;
}

int kernel_isa_runs(kernel_isa isa)
{
    return kernel_isa_clamp(isa) == isa;
}

const char *kernel_isa_name(kernel_isa isa)
{
    switch (isa) {
    case KERNEL_ISA_AVX512: return "avx512";
    case KERNEL_ISA_AVX2: return "avx2";
    case KERNEL_ISA_NEON: return "neon";
    default: return "portable";
    }
}
