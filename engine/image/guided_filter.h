/* guided_filter.h - the guided filter on byte maps, for the matte
 * (guided_filter.c; u2net_guided_filter is the float one). */
#ifndef U2NET_GUIDED_FILTER_H
#define U2NET_GUIDED_FILTER_H

#include "u2net.h"

/* u2net_guided_filter of p (bytes, read as byte / 255 in float) into q
 * (bytes, floor(255 q + 1/2) clamped): the same as the float filter with
 * its input and output so converted, without full-size float maps. p and
 * q may be the same map. */
int guided_filter_bytes(const u2net_image *guide, const unsigned char *p, int radius, float eps,
                        int subsample, unsigned char *q, u2net_error *err);

#endif
