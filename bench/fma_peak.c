/* fma_peak.c - the machine's measured peak float32 FMA throughput, the
 * ceiling to read the engine's GFLOP/s against (bench/README.md).
 *
 *   cc -std=c11 -O2 -march=native -fopenmp bench/fma_peak.c -o fma_peak
 *   ./fma_peak      ->  isa=avx2 vector_floats=8 threads=2
 *                       single_core_gflops=X all_core_gflops=Y
 *
 * Each thread runs independent chains of vector FMAs on registers only: enough
 * chains to cover the FMA latency on every FMA port, so the loop is bound by
 * FMA issue alone. A FLOP is one multiply or one add (an FMA is two). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define ISA "avx512"
#define VEC_FLOATS 16
#define vec_set1 _mm512_set1_ps
#define vec_fma _mm512_fmadd_ps
#define vec_add _mm512_add_ps
#define vec_store _mm512_storeu_ps
#elif defined(__FMA__) && defined(__AVX2__)
typedef __m256 vec;
#define ISA "avx2"
#define VEC_FLOATS 8
#define vec_set1 _mm256_set1_ps
#define vec_fma _mm256_fmadd_ps
#define vec_add _mm256_add_ps
#define vec_store _mm256_storeu_ps
#else
#error "fma_peak needs AVX2 with FMA or AVX-512: compile with -march=native on such a machine"
#endif

enum { ITERATIONS = 100 * 1000 * 1000, REPEATS = 3 };

/* 12 chains (two FMA ports times a latency of up to 6 cycles), written out
 * one variable each: as an array, the compiler keeps them in memory. */
#define CHAINS 12
#define FOR_EACH_CHAIN(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* Runs ITERATIONS rounds of CHAINS FMAs; returns a value derived from every
 * chain so the compiler cannot drop any of them. */
static float fma_chains(float seed)
{
#define DECLARE(c) vec acc##c = vec_set1(seed + 0.001f * c);
    FOR_EACH_CHAIN(DECLARE)
    /* acc = acc * 0.999999 + 1e-6 converges to 1: no overflow, no denormals */
    const vec scale = vec_set1(0.999999f), offset = vec_set1(1e-6f);
    for (long i = 0; i < ITERATIONS; i++) {
#define STEP(c) acc##c = vec_fma(acc##c, scale, offset);
        FOR_EACH_CHAIN(STEP)
    }
    vec sum = vec_set1(0.0f);
#define ADD(c) sum = vec_add(sum, acc##c);
    FOR_EACH_CHAIN(ADD)
    float lanes[VEC_FLOATS];
    vec_store(lanes, sum);
    float total = 0.0f;
    for (int l = 0; l < VEC_FLOATS; l++)
        total += lanes[l];
    return total;
}

/* Best GFLOP/s of REPEATS timed rounds on `threads` threads together. */
static double measure_gflops(int threads, float *sink)
{
    const double flops_per_thread = 2.0 * VEC_FLOATS * CHAINS * (double)ITERATIONS;
    double best = 0.0;
    for (int r = 0; r < REPEATS; r++) {
        double start = 0.0, end = 0.0;
        #pragma omp parallel num_threads(threads)
        {
            #pragma omp barrier
            #pragma omp master
            start = omp_get_wtime();
            const float v = fma_chains((float)omp_get_thread_num());
            #pragma omp barrier
            #pragma omp master
            end = omp_get_wtime();
            #pragma omp atomic
            *sink += v;
        }
        const double gflops = flops_per_thread * threads / (end - start) / 1e9;
        if (gflops > best)
            best = gflops;
    }
    return best;
}

int main(void)
{
    const int cores = omp_get_num_procs();
    float sink = 0.0f;
    const double single = measure_gflops(1, &sink);
    const double all = measure_gflops(cores, &sink);
    /* the checksum keeps every chain's result alive */
    printf("isa=%s vector_floats=%d threads=%d single_core_gflops=%.1f all_core_gflops=%.1f"
           " checksum=%.1f\n", ISA, VEC_FLOATS, cores, single, all, sink);
    return 0;
}
