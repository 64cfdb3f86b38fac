/* conv3x3_winograd_weights.h - G g G^T, the weight transform of the Winograd
 * convolution, on vectors of independent 3x3 kernels (one per lane). Each
 * file of the kernel includes it after defining wino_vec as its own GCC
 * vector type, so the portable, AVX2 and AVX-512 packing share one formula:
 *   G = [1 0 0; 1/3 1/3 1/3; -1/3 1/3 -1/3; -16/15 -8/15 -4/15;
 *        1/15 -2/15 4/15; 0 0 1]   (conv3x3_winograd.c) */

/* o[0..5] = G (g[0], g[step], g[2 step])^T (vectors are passed by address:
 * by value, 32-byte vectors in a file built without AVX change the ABI) */
static inline void wino_g_column(const wino_vec *g, int step, wino_vec o[6])
{
    const wino_vec g0 = g[0], g1 = g[step], g2 = g[2 * step];
    const wino_vec s = g0 + g2;
    o[0] = g0;
    o[1] = (s + g1) * (1.0f / 3);
    o[2] = (g1 - s) * (1.0f / 3);
    o[3] = (g0 * 16.0f + g1 * 8.0f + g2 * 4.0f) * (-1.0f / 15);
    o[4] = (g0 + g2 * 4.0f - g1 * 2.0f) * (1.0f / 15);
    o[5] = g2;
}

/* gg[kx][a] = (G g)[a][kx] for the kernel g[3*ky + kx] of each lane; row a
 * of G g G^T is then wino_g_column(&gg[0][a], 6, row). The caller stores
 * each row as it comes: 36 vectors of results at once would not fit in the
 * registers. */
static inline void wino_weight_columns(const wino_vec g[9], wino_vec gg[3][6])
{
    for (int kx = 0; kx < 3; kx++)
        wino_g_column(g + kx, 3, gg[kx]);
}
