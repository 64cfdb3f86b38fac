/* elementwise.c - sigmoid. */
#include "kernels.h"

#include <math.h>

void sigmoid_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}
