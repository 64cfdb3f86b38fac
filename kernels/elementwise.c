/* elementwise.c - residual add (reference) and sigmoid. */
#include "kernels.h"

#include <math.h>

void add_ref(const float *a, const float *b, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void sigmoid_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}
