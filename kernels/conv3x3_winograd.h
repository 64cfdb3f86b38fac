/* conv3x3_winograd.h - what conv3x3_winograd.c (the algorithm, the work
 * split, the portable loops) shares with its per-ISA hot loops
 * (conv3x3_winograd_avx2.c, _avx512.c, _neon.c). Not part of the
 * kernels' interface (kernels.h).
 *
 * Tiles. Sub-grid (ry, rx) of a convolution with dilation d holds the
 * pixels (ry + d*sy, rx + d*sx); its tile (ty, tx) the 4x4 outputs
 * sy = 4ty.., sx = 4tx... A tile row is every tile (rx, tx) of one (ry, ty),
 * numbered q = tx*d + rx (so with d > 1 the tiles of neighbouring sub-grids
 * sit side by side in memory order). A group is up to 8 (or, with wider
 * vectors, 16) consecutive tiles q0.. of one tile row, one per vector lane:
 * lane l is tile q = q0 + l, whose
 * output pixel (i, j), i, j < 4, lies at row oy0 + d*i, column xq + d*j, and
 * input patch pixel (i, k), i, k < 6, at row oy0 + d*(i-1), column
 * xq + d*(k-1), with oy0 = ry + 4d*ty and xq = q%d + 4d*(q/d); pixels outside
 * the image read as zero and are not written.
 *
 * Transformed data keep the tiles of a block side by side in rows of
 * `stride` floats (a multiple of 16, with room for the filler lanes of the
 * block's last group):
 *   V  element (xi, channel k, tile t) at xi*v_xi + k*stride + t:  B^T D B
 *   M  element (xi, out channel c, tile t) at xi*m_xi + c*stride + t: the
 *      products, before A^T . A
 * with xi = 6a + b for element (a, b) of the 6x6 transform. A group's
 * functions get v or m offset to its first tile; the input transform writes
 * all its vector's lanes (the ones past `lanes` hold finite filler that a
 * later group overwrites or the GEMM's results ignore).
 *
 * Packed weights U = G g G^T of the input channels k0 .. k0+kc-1 and the
 * output channels co0 .. co0+nco-1, in panels of WINO_MR output channels:
 *   element (xi, out channel co0 + MR*p + r, in channel k0 + k) at
 *   ((xi*npanels + p)*kc + k)*MR + r,  npanels = ceil(nco / MR)
 * (so that a GEMM reads each panel's weights front to back)
 * the rows of the last panel past nco are zero, so the GEMM computes whole
 * panels and M has rows for npanels*MR output channels. */
#ifndef U2NET_CONV3X3_WINOGRAD_H
#define U2NET_CONV3X3_WINOGRAD_H

#include <stddef.h>

enum {
    WINO_MR = 8,      /* output channels per weight panel */
    WINO_LANES = 8,   /* tiles per group */
    /* The sums over input channels run in blocks of this many, which are
     * then added up in M: the float error of a sum grows with its length.
     * It is also how many input channels V holds per GEMM call. */
    WINO_CHUNK = 64,
};

/* The hot loops of one instruction set. */
typedef struct {
    /* v = B^T D B for the group (oy0, q0) of channels 0..nch-1 of the
     * planes in (conv3x3_args, in_rows rows each); patch row i is input
     * row iy0 + d*(i-1), iy0 = oy0 + row0 */
    void (*input_group)(const float *const *in, int nch, int in_rows, int w, int d, int iy0,
                        int q0, float *v, size_t v_xi, size_t stride);
    /* out = act(A^T m A + bias) + residual for out channels 0..nco-1, lanes
     * 0..lanes-1 of the group (oy0, q0): out and residual as in
     * conv3x3_args (h rows), bias [nco] or NULL */
    void (*output_group)(const float *m, size_t m_xi, size_t stride, int nco, const float *bias,
                         int relu, const float *residual, size_t residual_plane, float *out,
                         size_t out_plane, int h, int w, int d, int oy0, int q0, int lanes);
    /* m[xi][c][0..ntp) (+)= sum_k u[xi][c/MR][k][c%MR] v[xi][k][0..ntp) for
     * c < npanels*MR, k < kc <= WINO_CHUNK, ntp a multiple of 16, with
     * panel p of plane xi at u + xi*u_xi + p*kc*MR; accumulate = 0
     * overwrites m. Every output's sum runs over k in order, one FMA after
     * the other, in every implementation that has FMA. */
    void (*gemm)(const float *u, size_t u_xi, int npanels, int kc, const float *v, size_t v_xi,
                 float *m, size_t m_xi, size_t stride, int ntp, int accumulate);
    /* u = the packed weights of weight [cout, cin, 3, 3] for output channels
     * co0 .. co0+nco-1 (rows past nco or cout are zero) and input channels
     * k0 .. k0+kc-1, laid out as above but with xi planes u_xi floats apart
     * (npanels*kc*MR when u holds the whole piece) */
    void (*pack)(const float *weight, int cin, int cout, int co0, int nco, int k0, int kc,
                 float *u, size_t u_xi);
    /* input_group and output_group for groups of up to wide_lanes tiles,
     * more than WINO_LANES, or NULL and 0: the driver takes them for the
     * groups that have more than WINO_LANES tiles */
    void (*input_group_wide)(const float *const *in, int nch, int in_rows, int w, int d,
                             int iy0, int q0, float *v, size_t v_xi, size_t stride);
    void (*output_group_wide)(const float *m, size_t m_xi, size_t stride, int nco,
                              const float *bias, int relu, const float *residual,
                              size_t residual_plane, float *out, size_t out_plane, int h, int w,
                              int d, int oy0, int q0, int lanes);
    int wide_lanes;
} wino_loops;

extern const wino_loops wino_loops_avx2, wino_loops_avx512, wino_loops_neon;

/* The portable weight transform (the pack of wino_loops), which the NEON
 * loops use too: with no gather instruction theirs would be the same. */
void wino_pack_portable(const float *weight, int cin, int cout, int co0, int nco, int k0,
                        int kc, float *u, size_t u_xi);

/* Image column of the tile in each of the n lanes of the group starting at
 * tile q0 of its tile row (above). */
static inline void wino_lane_columns(int d, int q0, int n, int *xq)
{
    for (int l = 0; l < n; l++)
        xq[l] = (q0 + l) % d + 4 * d * ((q0 + l) / d);
}

/* The patch rows of a group of tiles of dilation 1 (input rows iy0-1 ..
 * iy0+4 of in_rows, columns x0-1 .. x0+4*lanes), for the next channel while
 * this one is transformed: the channels' planes lie far apart, so the
 * hardware does not see them coming. */
static inline void wino_prefetch_patch(const float *plane, int in_rows, int w, int iy0, int x0,
                                       int lanes)
{
    const int x_lo = x0 > 0 ? x0 - 1 : 0, x_hi = x0 + 4 * lanes < w ? x0 + 4 * lanes : w - 1;
    for (int i = 0; i < 6; i++) {
        const int y = iy0 + i - 1;
        if (y < 0 || y >= in_rows)
            continue;
        const char *row = (const char *)(plane + (size_t)y * w);
        for (int x = 4 * x_lo; x < 4 * x_hi; x += 64) /* every line, and the last */
            __builtin_prefetch(row + x, 0, 3);
        __builtin_prefetch(row + 4 * x_hi, 0, 3);
    }
}

/* The AVX2 transforms, which the AVX-512 loops use too. */
void wino_input_group_avx2(const float *const *in, int nch, int in_rows, int w, int d, int iy0,
                           int q0, float *v, size_t v_xi, size_t stride);
void wino_output_group_avx2(const float *m, size_t m_xi, size_t stride, int nco,
                            const float *bias, int relu, const float *residual,
                            size_t residual_plane, float *out, size_t out_plane, int h, int w,
                            int d, int oy0, int q0, int lanes);

#endif
