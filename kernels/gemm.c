/* gemm.c - the one matrix product the kernels use (im2col's), the engine's
 * own loops. A BLAS buys nothing measurable here (im2col runs only the
 * strided stem and a few deep dilated layers: U2Net 409 against 408 ms,
 * ISNet 970 against 990 ms with OpenBLAS) and costs much: its threads
 * reserve about 270 MB of address space at load, and under an address-space
 * limit its allocator retries a failed mmap for ever (bench/README.md). */
#include "kernels.h"

/* c[i][j] += sum_p a[i][p] b[p][j], in blocks of columns so that a block of
 * b's rows and c's row stay in cache; the inner loop runs along a row of b
 * and of c, which compilers vectorise. */
void gemm_accumulate(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc)
{
    enum { COLS = 256 };
    for (int j0 = 0; j0 < n; j0 += COLS) {
        const int j1 = j0 + COLS < n ? j0 + COLS : n;
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * ldc;
            for (int p = 0; p < k; p++) {
                const float av = a[(size_t)i * lda + p];
                const float *bp = b + (size_t)p * ldb;
                for (int j = j0; j < j1; j++)
                    ci[j] += av * bp[j];
            }
        }
    }
}
