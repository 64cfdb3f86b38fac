/* foreground_band.h - the sweep of foreground estimation (engine/image/
 * foreground.c): pymatting's raster-order Gauss-Seidel update of each
 * pixel's foreground F and background B, run FG_LANES rows at a time as a
 * skewed wavefront, so that every step is one vector of FG_LANES pixels
 * (one per row) and no chain of updates runs along a row.
 *
 * Layout. A level's rows are cut into bands of FG_LANES. In a band's plane,
 * row k of the band and column x sit at slot s = x + k + 1, lane k: float
 * FG_BAND_GUARD + s * FG_LANES + k of the band (FG_BAND_GUARD floats come
 * first so that a vector load one float before slot 0 stays inside).
 * Slots run from 0 to w + 2 FG_LANES - 1. Step s updates slot s, the
 * pixels (k, s - k - 1) of all lanes; their left neighbour (slot s - 1,
 * lane k) and upper one (slot s - 1, lane k - 1) were updated by step
 * s - 1, their right (slot s + 1, lane k) and lower (slot s + 1, lane
 * k + 1) ones are not yet: each pixel sees what it would see in one raster
 * pass. Lane 0's upper neighbour is lane FG_LANES - 1 of the band above at
 * slot s + FG_LANES - 1 (updated, the band above being FG_LANES steps ahead
 * at least), the last lane's lower one lane 0 of the band below at slot
 * s - FG_LANES + 1 (not yet updated).
 *
 * Slots of columns outside 0 .. w-1 and lanes of rows past the image hold
 * the nearest pixel's value, which the caller refreshes before each sweep:
 * that is the edge as pymatting reads it, a neighbour outside the image
 * being the pixel itself before its update. The first band's upper and the
 * last band's lower neighbours outside the image are the pixel's own.
 *
 * The update, per pixel and channel, with alpha a, colour I, the
 * neighbours' weights d_n = 1e-5 + |a - a_n|, S = sum d_n,
 * PF = sum d_n F_n, PB = sum d_n B_n: pymatting's 2x2 system
 *   [[a^2 + S, a (1 - a)], [a (1 - a), (1 - a)^2 + S]] (F, B) = (a I + PF, (1 - a) I + PB)
 * solved in closed form, the a^2 (1 - a)^2 terms that cancel left out
 * (det = S (a^2 + (1 - a)^2 + S)):
 *   F = ((1 - a)^2 + S) / det PF - a (1 - a) / det PB + S a / det I
 *   B = (a^2 + S) / det PB - a (1 - a) / det PF + S (1 - a) / det I
 * clipped to 0 .. 1. The coefficients depend on alpha and the colour
 * alone, so only the two products with PF and PB, their sum and the clip
 * follow the sums of the neighbours along the chain from step to step.
 *
 * One loop, written once below on GCC vector types, compiled portably
 * (foreground_band.c), for AVX2 (foreground_band_avx2.c) and for AVX-512
 * (foreground_band_avx512.c); with no contraction of a * b + c (ISO C's
 * default) all give the same bits. */
#ifndef U2NET_FOREGROUND_BAND_H
#define U2NET_FOREGROUND_BAND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

enum { FG_LANES = 8, FG_BAND_GUARD = 8 };

#define FG_REGULARIZATION 1e-5f
#define FG_GRADIENT_WEIGHT 1.0f

/* A band: its planes (each at its float 0, the guard before slot 0), and
 * the band above's and below's, NULL at the image's top and bottom. */
typedef struct {
    int w;    /* the level's columns */
    int rows; /* rows of the image in this band, 1 .. FG_LANES */
    const float *alpha, *colour[3];
    float *f[3], *b[3];
    const float *alpha_up, *f_up[3], *b_up[3];
    const float *alpha_down, *f_down[3], *b_down[3];
} fg_band;

/* Where slot s, lane k is in a band's plane. */
static inline size_t fg_slot(int s, int k)
{
    return FG_BAND_GUARD + (size_t)s * FG_LANES + (size_t)k;
}

/* Slots of a band's plane, and its floats. */
static inline int fg_band_slots(int w)
{
    return w + 2 * FG_LANES;
}
static inline size_t fg_band_floats(int w)
{
    return FG_BAND_GUARD + (size_t)fg_band_slots(w) * FG_LANES;
}

/* Steps s0 .. s1-1 of a band (steps 1 .. w + FG_LANES - 1 update every
 * pixel once; slot s0 - 1 holds step s0 - 1's results). */
void foreground_band_steps(kernel_isa isa, const fg_band *band, int s0, int s1);
void foreground_band_steps_avx2(const fg_band *band, int s0, int s1);
void foreground_band_steps_avx512(const fg_band *band, int s0, int s1);

typedef float fg_vec __attribute__((vector_size(FG_LANES * sizeof(float))));
typedef int32_t fg_mask __attribute__((vector_size(FG_LANES * sizeof(float))));

/* The vector helpers are macros, not functions: a function taking or
 * returning a vector wider than the target's registers would have an ABI
 * of its own (GCC warns of it in the portable build). */
#define FG_LOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define FG_SPLAT(x) ((fg_vec){0} + (x))
#define FG_ABS(v) ((fg_vec)((fg_mask)(v) & 0x7fffffff))
/* where m, a; elsewhere b */
#define FG_SELECT(m, a, b) ((fg_vec)(((fg_mask)(a) & (m)) | ((fg_mask)(b) & ~(m))))
/* v's lanes moved up by one, lane 0 from first's lane 0 */
#if defined(__clang__)
#define FG_SHIFT_UP(v, first) __builtin_shufflevector(v, first, 8, 0, 1, 2, 3, 4, 5, 6)
#else
#define FG_SHIFT_UP(v, first) __builtin_shuffle(v, first, (fg_mask){8, 0, 1, 2, 3, 4, 5, 6})
#endif

/* The loop, for a band with or without a band above (up) and below
 * (down): built four times by foreground_band_loop, so that no step tests
 * for them. The neighbour bands' slots are read clamped to their columns
 * inside the image (slots L .. w + L - 1 of the band above's last lane,
 * 1 .. w of the band below's first): where the lane reading them is
 * outside the image its result is not kept, and the slots outside are
 * not to be read while the other band's thread may refresh them. */
static inline __attribute__((always_inline)) void
foreground_band_steps_of(const fg_band *restrict band, int s0, int s1, const int up, const int down)
{
    enum { L = FG_LANES };
    const fg_vec reg = FG_SPLAT(FG_REGULARIZATION), weight = FG_SPLAT(FG_GRADIENT_WEIGHT);
    const fg_vec zero = FG_SPLAT(0.0f), one = FG_SPLAT(1.0f);
    const fg_mask lane = {0, 1, 2, 3, 4, 5, 6, 7};
    const fg_mask first = lane == 0, last = lane == L - 1;
    const int w = band->w;
    /* the previous step's F and B: the left neighbours */
    fg_vec f_left[3], b_left[3];
    for (int c = 0; c < 3; c++) {
        FG_LOAD(f_left[c], band->f[c] + fg_slot(s0 - 1, 0));
        FG_LOAD(b_left[c], band->b[c] + fg_slot(s0 - 1, 0));
    }
    for (int s = s0; s < s1; s++) {
        const size_t at = fg_slot(s, 0);
        /* the slots of the band above and below that meet lanes 0 and L - 1 */
        const int up_slot = s + L - 1 < w + L - 1 ? s + L - 1 : w + L - 1;
        const int down_slot = s - L + 1 < 1 ? 1 : s - L + 1 > w ? w : s - L + 1;
        const size_t up_at = fg_slot(up_slot, L - 1);
        const size_t down_at = fg_slot(down_slot, 0);
        const float *al = band->alpha + at;
        fg_vec a, a_left, a_right, a_up, a_down;
        FG_LOAD(a, al), FG_LOAD(a_left, al - L), FG_LOAD(a_right, al + L);
        FG_LOAD(a_up, al - L - 1), FG_LOAD(a_down, al + L + 1);
        a_up = FG_SELECT(first, FG_SPLAT(up ? band->alpha_up[up_at] : a[0]), a_up);
        a_down = FG_SELECT(last, FG_SPLAT(down ? band->alpha_down[down_at] : a[L - 1]), a_down);
        const fg_vec dl = reg + weight * FG_ABS(a - a_left);
        const fg_vec dr = reg + weight * FG_ABS(a - a_right);
        const fg_vec du = reg + weight * FG_ABS(a - a_up);
        const fg_vec dd = reg + weight * FG_ABS(a - a_down);
        const fg_vec sum = (dl + dr) + (du + dd), a1 = one - a;
        const fg_vec inv = one / (sum * ((a * a + a1 * a1) + sum));
        const fg_vec cf = (a1 * a1 + sum) * inv, cb = (a * a + sum) * inv;
        const fg_vec cfb = (a * a1) * inv, ef = sum * a * inv, eb = sum * a1 * inv;
        const fg_mask x = (s - 1) - lane;
        const fg_mask valid = (x >= 0) & (x < w) & (lane < band->rows);
        for (int c = 0; c < 3; c++) {
            float *f = band->f[c] + at, *b = band->b[c] + at;
            fg_vec f_old, b_old, f_right, b_right, f_down, b_down, colour;
            FG_LOAD(f_old, f), FG_LOAD(b_old, b), FG_LOAD(f_right, f + L), FG_LOAD(b_right, b + L);
            FG_LOAD(f_down, f + L + 1), FG_LOAD(b_down, b + L + 1);
            FG_LOAD(colour, band->colour[c] + at);
            f_down = FG_SELECT(last, FG_SPLAT(down ? band->f_down[c][down_at] : f_old[L - 1]), f_down);
            b_down = FG_SELECT(last, FG_SPLAT(down ? band->b_down[c][down_at] : b_old[L - 1]), b_down);
            const fg_vec f_up = FG_SHIFT_UP(f_left[c], FG_SPLAT(up ? band->f_up[c][up_at] : f_old[0]));
            const fg_vec b_up = FG_SHIFT_UP(b_left[c], FG_SPLAT(up ? band->b_up[c][up_at] : b_old[0]));
            /* the neighbours not on the chain first */
            const fg_vec pf = (dr * f_right + dd * f_down) + (dl * f_left[c] + du * f_up);
            const fg_vec pb = (dr * b_right + dd * b_down) + (dl * b_left[c] + du * b_up);
            /* clipped to 0 .. 1 */
            fg_vec f_new = (cf * pf - cfb * pb) + ef * colour;
            fg_vec b_new = (cb * pb - cfb * pf) + eb * colour;
            f_new = (fg_vec)((fg_mask)f_new & (f_new > zero));
            b_new = (fg_vec)((fg_mask)b_new & (b_new > zero));
            f_new = FG_SELECT(f_new < one, f_new, one);
            b_new = FG_SELECT(b_new < one, b_new, one);
            f_left[c] = FG_SELECT(valid, f_new, f_old);
            b_left[c] = FG_SELECT(valid, b_new, b_old);
            memcpy(f, &f_left[c], sizeof f_left[c]);
            memcpy(b, &b_left[c], sizeof b_left[c]);
        }
    }
}

static inline void foreground_band_loop(const fg_band *restrict band, int s0, int s1)
{
    if (band->alpha_up && band->alpha_down)
        foreground_band_steps_of(band, s0, s1, 1, 1);
    else if (band->alpha_up)
        foreground_band_steps_of(band, s0, s1, 1, 0);
    else if (band->alpha_down)
        foreground_band_steps_of(band, s0, s1, 0, 1);
    else
        foreground_band_steps_of(band, s0, s1, 0, 0);
}

#endif
