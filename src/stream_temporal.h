/* stream_temporal.h - `u2net stream --temporal`: the network's probability
 * map smoothed over the frames of a stream, so that a still subject's
 * mask does not flicker with the camera's noise, while a moving one is
 * followed at once.
 *
 * Per pixel, an exponential moving average of the maps: the smoothed map
 * S moves towards the new map P by a weight w, S += w (P - S). Where the
 * picture is still, w is --temporal-weight; where it moves, 1 (the new map
 * as it is). Motion is looked for in blocks of about a 64th of the frame's
 * longer side (8..32 pixels): a block moves when its mean brightness (the
 * mean of its pixels' colours) changed since the last frame by
 * --temporal-motion levels or more (averaging a block's pixels keeps the
 * camera's noise out of it); between a quarter of that and that, w rises
 * from the still weight to 1. A block's weight is the largest of its own
 * and its 8 neighbours' (an edge that moves changes the map around it), and
 * a pixel's is interpolated between the centres of the blocks around it (no
 * block edges in the alpha). A frame whose blocks changed by 4 x
 * --temporal-motion on average (a cut, a flash) starts again from its own
 * map. */
#ifndef U2NET_STREAM_TEMPORAL_H
#define U2NET_STREAM_TEMPORAL_H

#include "u2net.h"

#define TEMPORAL_DEFAULT_WEIGHT 0.25f
#define TEMPORAL_DEFAULT_MOTION 8.0f

typedef struct {
    int width, height;
    float still_weight, motion_level;
    int block, grid_w, grid_h;   /* block side in pixels; blocks across and down */
    long frames;                 /* frames smoothed so far */
    float *smoothed;             /* width x height: S, 0..255 */
    float *means, *last_means;   /* grid_h x grid_w x 3: each block's mean colours */
    float *block_weight;         /* grid_h x grid_w: w at the block's centre */
    float *spread;               /* grid_h x grid_w: scratch for the 3x3 maximum */
    int *col0, *col1;            /* width: the blocks left and right of a column's pixel */
    float *col_t;                /* width: how far between them */
    float *row_weight;           /* width: w along one row */
} temporal_state;

/* A state for frames of width x height; 0, or -1 when out of memory. */
int temporal_init(temporal_state *t, int width, int height, float still_weight,
                  float motion_level);
/* Smooths the map of the next frame: prob (the frame's size, 0..255) is
 * replaced by the smoothed map. img is the frame (1..4 channels). */
void temporal_apply(temporal_state *t, const u2net_image *img, unsigned char *prob);
void temporal_free(temporal_state *t);

#endif
