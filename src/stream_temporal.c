/* stream_temporal.c - the probability map's moving average over a
 * stream's frames, held still where the picture is and let go where it
 * moves (stream_temporal.h says how). */
#include "stream_temporal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pixel i (a column or a row) lies between the centres of blocks *k0 and
 * *k1 of n blocks of size b (the same block beyond the outer centres), *f
 * of the way. */
static void between_centres(int i, int b, int n, int *k0, int *k1, float *f)
{
    float s = ((float)i + 0.5f) / (float)b - 0.5f;
    s = s < 0.0f ? 0.0f : s;
    int j0 = (int)s;
    j0 = j0 > n - 1 ? n - 1 : j0;
    const int j1 = j0 < n - 1 ? j0 + 1 : j0;
    *k0 = j0, *k1 = j1;
    *f = j1 == j0 ? 0.0f : fminf(s - (float)j0, 1.0f);
}

/* Blocks of about a 64th of the longer side: at 1280x720, 20 pixels, whose
 * mean has a 20th of the noise of one pixel; at least 8 (an eighth). */
#define BLOCKS_PER_SIDE 64
#define MIN_BLOCK 8
#define MAX_BLOCK 32
/* A block changing by less than this fraction of the motion level is
 * still; by the whole level, moving. */
#define STILL_FRACTION 0.25f
/* A frame whose blocks changed by this many motion levels on average is a
 * new scene. */
#define CUT_LEVELS 4.0f

int temporal_init(temporal_state *t, int width, int height, float still_weight,
                  float motion_level)
{
    memset(t, 0, sizeof *t);
    t->width = width, t->height = height;
    t->still_weight = still_weight, t->motion_level = motion_level;
    const int longer = width > height ? width : height;
    int b = (longer + BLOCKS_PER_SIDE / 2) / BLOCKS_PER_SIDE;
    b = b < MIN_BLOCK ? MIN_BLOCK : b > MAX_BLOCK ? MAX_BLOCK : b;
    t->block = b;
    t->grid_w = (width + b - 1) / b, t->grid_h = (height + b - 1) / b;
    const size_t blocks = (size_t)t->grid_w * t->grid_h;
    t->smoothed = malloc(sizeof(float) * (size_t)width * height);
    t->means = malloc(sizeof(float) * 3 * blocks);
    t->last_means = malloc(sizeof(float) * 3 * blocks);
    t->block_weight = malloc(sizeof(float) * blocks);
    t->spread = malloc(sizeof(float) * blocks);
    t->col0 = malloc(sizeof(int) * (size_t)width);
    t->col1 = malloc(sizeof(int) * (size_t)width);
    t->col_t = malloc(sizeof(float) * (size_t)width);
    t->row_weight = malloc(sizeof(float) * (size_t)width);
    if (!t->smoothed || !t->means || !t->last_means || !t->block_weight || !t->spread ||
        !t->col0 || !t->col1 || !t->col_t || !t->row_weight) {
        temporal_free(t);
        return -1;
    }
    /* each column's two blocks, found once for every frame */
    for (int x = 0; x < width; x++)
        between_centres(x, b, t->grid_w, &t->col0[x], &t->col1[x], &t->col_t[x]);
    return 0;
}

void temporal_free(temporal_state *t)
{
    free(t->smoothed);
    free(t->means);
    free(t->last_means);
    free(t->block_weight);
    free(t->spread);
    free(t->col0);
    free(t->col1);
    free(t->col_t);
    free(t->row_weight);
    memset(t, 0, sizeof *t);
}

/* Each block's mean colour (grey replicated; an alpha channel left out)
 * into t->means. */
static void block_means(temporal_state *t, const u2net_image *img)
{
    const int W = t->width, H = t->height, b = t->block, ch = img->channels;
    const int colours = ch >= 3 ? 3 : 1;
    for (int by = 0; by < t->grid_h; by++) {
        const int y0 = by * b, y1 = y0 + b < H ? y0 + b : H;
        for (int bx = 0; bx < t->grid_w; bx++) {
            const int x0 = bx * b, x1 = x0 + b < W ? x0 + b : W;
            double sum[3] = {0, 0, 0};
            for (int y = y0; y < y1; y++) {
                const unsigned char *p = img->data + ((size_t)y * W + x0) * ch;
                for (int x = x0; x < x1; x++, p += ch)
                    for (int c = 0; c < colours; c++)
                        sum[c] += p[c];
            }
            const double n = (double)(y1 - y0) * (x1 - x0);
            float *m = t->means + 3 * ((size_t)by * t->grid_w + bx);
            for (int c = 0; c < 3; c++)
                m[c] = (float)(sum[c < colours ? c : 0] / n);
        }
    }
}

/* Each block's weight from how far its colour moved since the last frame,
 * then the largest of each block's 3x3 neighbourhood, into
 * t->block_weight. */
static void block_weights(temporal_state *t)
{
    const int gw = t->grid_w, gh = t->grid_h;
    const size_t blocks = (size_t)gw * gh;
    const float level = t->motion_level, still = level * STILL_FRACTION;
    double total = 0;
    for (size_t k = 0; k < blocks; k++) {
        /* the change of the block's brightness: the mean of its colours,
         * which averages the noise of the three */
        float change = 0.0f;
        for (int c = 0; c < 3; c++)
            change += t->means[3 * k + c] - t->last_means[3 * k + c];
        change = fabsf(change) / 3.0f;
        total += change;
        float moving = (change - still) / (level - still);
        moving = moving < 0.0f ? 0.0f : moving > 1.0f ? 1.0f : moving;
        t->spread[k] = t->still_weight + (1.0f - t->still_weight) * moving;
    }
    const int cut = total / (double)blocks >= CUT_LEVELS * level;
    for (int by = 0; by < gh; by++)
        for (int bx = 0; bx < gw; bx++) {
            float w = 0.0f;
            for (int y = by > 0 ? by - 1 : 0; y <= by + 1 && y < gh; y++)
                for (int x = bx > 0 ? bx - 1 : 0; x <= bx + 1 && x < gw; x++)
                    w = fmaxf(w, t->spread[(size_t)y * gw + x]);
            t->block_weight[(size_t)by * gw + bx] = cut ? 1.0f : w;
        }
}

void temporal_apply(temporal_state *t, const u2net_image *img, unsigned char *prob)
{
    const int W = t->width, H = t->height, b = t->block, gw = t->grid_w;
    block_means(t, img);
    if (t->frames++ == 0) {
        for (size_t i = 0; i < (size_t)W * H; i++)
            t->smoothed[i] = prob[i];
    } else {
        block_weights(t);
        for (int y = 0; y < H; y++) {
            int r0, r1;
            float ty;
            between_centres(y, b, t->grid_h, &r0, &r1, &ty);
            const float *w0 = t->block_weight + (size_t)r0 * gw;
            const float *w1 = t->block_weight + (size_t)r1 * gw;
            for (int x = 0; x < W; x++) {
                const float top = w0[t->col0[x]] + (w0[t->col1[x]] - w0[t->col0[x]]) * t->col_t[x];
                const float bottom = w1[t->col0[x]] + (w1[t->col1[x]] - w1[t->col0[x]]) * t->col_t[x];
                t->row_weight[x] = top + (bottom - top) * ty;
            }
            float *sm = t->smoothed + (size_t)y * W;
            unsigned char *p = prob + (size_t)y * W;
            for (int x = 0; x < W; x++) {
                sm[x] += t->row_weight[x] * ((float)p[x] - sm[x]);
                const float v = sm[x] + 0.5f;
                p[x] = (unsigned char)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
            }
        }
    }
    float *swap = t->means;
    t->means = t->last_means;
    t->last_means = swap;
}
