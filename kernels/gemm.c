/* gemm.c - the one matrix product the kernels use (im2col's): OpenBLAS's
 * SGEMM, or, in a build without a BLAS (make BLAS=none, U2NET_NO_BLAS),
 * plain loops blocked for the cache. The engine splits the work over its
 * own threads: both run on the calling thread alone. */
#include "kernels.h"

#ifndef U2NET_NO_BLAS
#include <cblas.h>

void gemm_accumulate(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c,
                ldc);
}

void gemm_single_threaded(void)
{
    openblas_set_num_threads(1);
}
#else
/* c[i][j] += sum_p a[i][p] b[p][j], in blocks of columns so that a block
 * of b's rows and c's row stay in cache; the inner loop runs along a row of
 * b and of c, which compilers vectorise. */
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

void gemm_single_threaded(void)
{
}
#endif
