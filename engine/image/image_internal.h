/* image_internal.h - what the image side of the engine (decoding, the
 * matte, rendering) shares: 8-bit resampling and OpenMP thread helpers. */
#ifndef U2NET_IMAGE_INTERNAL_H
#define U2NET_IMAGE_INTERNAL_H

#ifdef _OPENMP
#include <omp.h>
#endif

/* 8-bit resampling of c planes [c, ih, iw] -> [c, oh, ow], bit-exact with
 * PIL's Image.resize (BILINEAR or LANCZOS). Returns 0, or -1 when out of
 * memory. */
typedef enum { RESAMPLE_BILINEAR = 0, RESAMPLE_LANCZOS = 1 } resample_filter;
int resample_u8_planes(const unsigned char *in, int c, int ih, int iw, unsigned char *out,
                       int oh, int ow, resample_filter f);

/* OpenMP's default thread count and the calling thread's number (1 and 0
 * without OpenMP), for code with no context to take a count from. */
static inline int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif
