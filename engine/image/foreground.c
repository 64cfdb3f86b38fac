/* foreground.c - the foreground colours of an image given its alpha: the
 * multi-level estimation of Germer, Uelwer, Conrad and Harmeling (2020), as
 * pymatting's estimate_foreground_ml defines it (regularisation 1e-5,
 * gradient weight 1, 10 iterations on levels of at most 32x32, 2 above).
 *
 * Per pixel, with alpha a and colour I (0..1), F and B minimise
 *   (a F + (1 - a) B - I)^2 + sum over the 4 neighbours n of
 *   (1e-5 + |a - a_n|) ((F - F_n)^2 + (B - B_n)^2),
 * a 2x2 system per channel solved with the neighbours held, F and B
 * clipped to 0..1 (kernels/foreground_band.h has the algebra). Levels go
 * from 1x1 to the image, level l of L = ceil(log2(longer side)) being
 * round(W^(l/L)) x round(H^(l/L)); image, alpha and the previous level's F
 * and B are resized to it by nearest neighbour (source index
 * x * w_src / w_dst); F and B start at the mean colour of a > 0.9 and
 * a < 0.1.
 *
 * Each iteration updates the pixels in raster order, each seeing the ones
 * before it already updated (Gauss-Seidel), as pymatting does. The level
 * is cut into bands of 8 rows, each updated as a skewed wavefront, 8
 * pixels (one a row) a step (foreground_band.h). Bands are streamed
 * through a ring: a band is filled from the image and the previous level,
 * swept once per iteration as soon as the band above is far enough ahead
 * in the same iteration and the band below in the one before, then written
 * out (as the next level's input, or the foreground) and its place in the
 * ring reused. So a level never exists whole in the sweeps' layout, and
 * every pass over a band runs while it is in the cache. The (band,
 * iteration) pairs go to the threads in turn (on 2 threads, one runs the
 * first iteration over every band, the other the second, close behind);
 * every wait is for work earlier in one fixed order, so none waits
 * forever, and the result does not depend on the number of threads.
 *
 * On the test photos and composites the result is within 2.1e-7 of
 * pymatting's on average where a > 0 and 1.0e-4 at worst (test_matting
 * measures it). */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "foreground_band.h"
#include "image_internal.h"

#define FG_SMALL_SIZE 32
#define FG_SMALL_ITERATIONS 10
#define FG_BIG_ITERATIONS 2

/* Steps of a band between its reports to the bands beside it. */
#define FG_CHUNK 64
/* Levels smaller than this run on one thread: there the threads' waits
 * cost more than they share. */
#define FG_THREADED_PIXELS (1 << 18)

/* A band's planes, each laid out as foreground_band.h says. */
enum { FG_ALPHA, FG_COLOUR, FG_F = FG_COLOUR + 3, FG_B = FG_F + 3, FG_PLANES = FG_B + 3 };

/* What a place in the ring holds and how far its work is: `band` the band
 * filled into it (-1 before any); progress[i] the steps of iteration i
 * done, progress[iterations] 1 once the band is written out. */
typedef struct {
    atomic_int band;
    atomic_int progress[FG_SMALL_ITERATIONS + 1];
} fg_place;

/* A level on its way through the ring: band k in place k mod places,
 * plane p of place r at plane[p] + r * band_floats. The previous level's
 * F and B come from prev_fb (prev_w x prev_h pixels of F's 3 channels then
 * B's; NULL at level 0: then the mean colours f_init, b_init); the level's
 * own go to out_fb (the same for w x h), or, at the last level, F to
 * foreground (interleaved RGB). */
typedef struct {
    int w, h, bands, iterations, places, end;
    size_t band_floats;
    float *plane[FG_PLANES];
    fg_place *place;
    const unsigned char *image;
    int image_w, image_h, channels;
    const float *alpha, *byte_colour;
    const int *xs, *prev_xs;
    int prev_w, prev_h;
    const float *prev_fb;
    float f_init[3], b_init[3];
    float *out_fb, *foreground;
} fg_level;

static inline int band_rows(const fg_level *L, int band)
{
    const int rows = L->h - band * FG_LANES;
    return rows < FG_LANES ? rows : FG_LANES;
}

static inline size_t place_of(const fg_level *L, int band)
{
    return (size_t)(band % L->places) * L->band_floats;
}

/* The image row and column whose value slot s, lane k of band `band`
 * holds: the nearest pixel of the level. */
static inline void slot_pixel(const fg_level *L, int band, int k, int s, int *y, int *x)
{
    const int row = band * FG_LANES + k, col = s - k - 1;
    *y = row < L->h ? row : L->h - 1;
    *x = col < 0 ? 0 : col >= L->w ? L->w - 1 : col;
}

/* A band's planes from the image, the alpha and the previous level, a
 * slot (all lanes) at a time, so that every plane is written front to
 * back. */
static void fill_band(const fg_level *L, int band)
{
    const size_t base = place_of(L, band);
    for (int p = 0; p < FG_PLANES; p++)
        memset(L->plane[p] + base, 0, FG_BAND_GUARD * sizeof(float));
    const int C = L->channels, slots = fg_band_slots(L->w);
    const unsigned char *restrict image = L->image;
    const float *restrict alpha = L->alpha, *restrict byte_colour = L->byte_colour;
    const int *restrict xs = L->xs, *restrict prev_xs = L->prev_xs;
    float *restrict to_alpha = L->plane[FG_ALPHA] + base;
    /* each lane's rows in the image and in the previous level */
    size_t src_row[FG_LANES], prev_row[FG_LANES];
    for (int k = 0; k < FG_LANES; k++) {
        int y, x;
        slot_pixel(L, band, k, 0, &y, &x);
        src_row[k] = (size_t)((int64_t)y * L->image_h / L->h) * L->image_w;
        prev_row[k] = L->prev_fb ? (size_t)((int64_t)y * L->prev_h / L->h) * L->prev_w : 0;
    }
    for (int s = 0; s < slots; s++) {
        const size_t to = fg_slot(s, 0);
        size_t src[FG_LANES], prev[FG_LANES];
        for (int k = 0; k < FG_LANES; k++) {
            const int col = s - k - 1, x = col < 0 ? 0 : col >= L->w ? L->w - 1 : col;
            src[k] = src_row[k] + (size_t)xs[x];
            prev[k] = prev_row[k] + (size_t)prev_xs[x];
        }
        for (int k = 0; k < FG_LANES; k++)
            to_alpha[to + k] = alpha[src[k]];
        for (int c = 0; c < 3; c++) {
            float *restrict to_colour = L->plane[FG_COLOUR + c] + base + to;
            const unsigned char *restrict channel = image + (C >= 3 ? c : 0);
            for (int k = 0; k < FG_LANES; k++)
                to_colour[k] = byte_colour[channel[src[k] * C]];
        }
        for (int c = 0; c < 3; c++) {
            float *restrict to_f = L->plane[FG_F + c] + base + to;
            float *restrict to_b = L->plane[FG_B + c] + base + to;
            if (L->prev_fb)
                for (int k = 0; k < FG_LANES; k++)
                    to_f[k] = L->prev_fb[prev[k] * 6 + c], to_b[k] = L->prev_fb[prev[k] * 6 + 3 + c];
            else
                for (int k = 0; k < FG_LANES; k++)
                    to_f[k] = L->f_init[c], to_b[k] = L->b_init[c];
        }
    }
}

/* F and B of a band's slots outside the level made their nearest pixel's
 * again (foreground_band.h), as the last sweep left that pixel. */
static void refresh_edges(const fg_level *L, int band)
{
    const int rows = band_rows(L, band);
    const size_t base = place_of(L, band);
    for (int k = 0; k < FG_LANES; k++)
        for (int s = 0; s < fg_band_slots(L->w); s++) {
            const int x = s - k - 1;
            if (k < rows && x >= 0 && x < L->w) {
                s = L->w + k; /* on to the slots right of the level */
                continue;
            }
            int y, xc;
            slot_pixel(L, band, k, s, &y, &xc);
            const size_t to = base + fg_slot(s, k);
            const size_t from = base + fg_slot(xc + (y % FG_LANES) + 1, y % FG_LANES);
            for (int p = FG_F; p < FG_PLANES; p++)
                L->plane[p][to] = L->plane[p][from];
        }
}

/* A band's F and B written out: the next level's input, or the
 * foreground. */
static void write_band(const fg_level *L, int band)
{
    const size_t base = place_of(L, band);
    for (int k = 0; k < band_rows(L, band); k++) {
        const size_t row = (size_t)(band * FG_LANES + k) * L->w;
        for (int x = 0; x < L->w; x++) {
            const size_t at = base + fg_slot(x + k + 1, k);
            for (int c = 0; c < 3; c++) {
                if (L->foreground)
                    L->foreground[(row + x) * 3 + c] = L->plane[FG_F + c][at];
                else {
                    L->out_fb[(row + x) * 6 + c] = L->plane[FG_F + c][at];
                    L->out_fb[(row + x) * 6 + 3 + c] = L->plane[FG_B + c][at];
                }
            }
        }
    }
}

static fg_band band_planes(const fg_level *L, int band)
{
    const int has_up = band > 0, has_down = band + 1 < L->bands;
    const size_t at = place_of(L, band);
    const size_t up = has_up ? place_of(L, band - 1) : 0;
    const size_t down = has_down ? place_of(L, band + 1) : 0;
    fg_band B = {
        .w = L->w,
        .rows = band_rows(L, band),
        .alpha = L->plane[FG_ALPHA] + at,
        .alpha_up = has_up ? L->plane[FG_ALPHA] + up : NULL,
        .alpha_down = has_down ? L->plane[FG_ALPHA] + down : NULL,
    };
    for (int c = 0; c < 3; c++) {
        B.colour[c] = L->plane[FG_COLOUR + c] + at;
        B.f[c] = L->plane[FG_F + c] + at, B.b[c] = L->plane[FG_B + c] + at;
        B.f_up[c] = has_up ? L->plane[FG_F + c] + up : NULL;
        B.b_up[c] = has_up ? L->plane[FG_B + c] + up : NULL;
        B.f_down[c] = has_down ? L->plane[FG_F + c] + down : NULL;
        B.b_down[c] = has_down ? L->plane[FG_B + c] + down : NULL;
    }
    return B;
}

/* Waits until band `band` is in the ring and progress[stage] has reached
 * `done` (stage == iterations: written out). */
static void wait_for(const fg_level *L, int band, int stage, int done)
{
    const fg_place *P = &L->place[band % L->places];
    for (int spins = 0;
         atomic_load_explicit(&P->band, memory_order_acquire) != band ||
         atomic_load_explicit(&P->progress[stage], memory_order_acquire) < done;
         spins++)
        if (spins > 256)
            sched_yield();
}

/* Iteration `it` of a band, a chunk of steps at a time: each chunk once
 * the band above is FG_LANES steps past its end in this iteration (its
 * new values) and the band below in the last one (its old values, and
 * done reading this band's). */
static void sweep_band(const fg_level *L, int band, int it, kernel_isa isa)
{
    const fg_band B = band_planes(L, band);
    fg_place *P = &L->place[band % L->places];
    for (int s0 = 1; s0 < L->end; s0 += FG_CHUNK) {
        const int s1 = s0 + FG_CHUNK < L->end ? s0 + FG_CHUNK : L->end;
        const int needed = s1 + FG_LANES < L->end ? s1 + FG_LANES : L->end;
        if (band > 0)
            wait_for(L, band - 1, it, needed);
        if (band + 1 < L->bands && it > 0)
            wait_for(L, band + 1, it - 1, needed);
        foreground_band_steps(isa, &B, s0, s1);
        atomic_store_explicit(&P->progress[it], s1, memory_order_release);
    }
}

/* The thread that runs iteration `it` of band `band`: the team takes the
 * (band, iteration) pairs in turn, so with as many threads as iterations
 * each thread runs one iteration over every band, close behind the one
 * before. A sweep reads the lanes of the bands above and below at every
 * step; in the same iteration those are then the thread's own, in its
 * cache, and the other thread's data crosses between the cores once a
 * band, in order, not a line at a time back and forth. */
static inline int sweep_owner(const fg_level *L, int band, int it, int team)
{
    return (band * L->iterations + it) % team;
}

/* A level, its work in this order: at time t, band t - iterations - 1 is
 * written out, band t filled, and iteration i run on band t - 1 - i for
 * each i. Each thread does its part in that order (a band filled by the
 * thread of its first iteration, written by that of its last); every wait
 * is for a part before it (a band's place is refilled only once the band
 * and the one below it are done with it, which `places` >= iterations + 2
 * keeps earlier), so the work never stops, whoever owns what. */
static void run_level(const fg_level *L, kernel_isa isa, int threads)
{
    const int I = L->iterations;
    for (int r = 0; r < L->places; r++)
        atomic_store_explicit(&L->place[r].band, -1, memory_order_relaxed);
    #pragma omp parallel num_threads(threads)
    {
        int team = 1, me = 0;
#ifdef _OPENMP
        team = omp_get_num_threads(), me = omp_get_thread_num();
#endif
        for (int t = 0; t <= L->bands + I; t++) {
            const int done = t - I - 1;
            if (done >= 0 && sweep_owner(L, done, I - 1, team) == me) {
                wait_for(L, done, I - 1, L->end);
                write_band(L, done);
                atomic_store_explicit(&L->place[done % L->places].progress[I], 1,
                                      memory_order_release);
            }
            if (t < L->bands && sweep_owner(L, t, 0, team) == me) {
                const int old = t - L->places;
                if (old >= 0) {
                    wait_for(L, old, I, 1);
                    if (old + 1 < L->bands)
                        wait_for(L, old + 1, I - 1, L->end);
                }
                fill_band(L, t);
                fg_place *P = &L->place[t % L->places];
                for (int i = 0; i <= I; i++)
                    atomic_store_explicit(&P->progress[i], 0, memory_order_relaxed);
                atomic_store_explicit(&P->band, t, memory_order_release);
            }
            for (int i = 0; i < I; i++) {
                const int band = t - 1 - i;
                if (band < 0 || band >= L->bands || sweep_owner(L, band, i, team) != me)
                    continue;
                if (i == 0 && band + 1 < L->bands)
                    wait_for(L, band + 1, 0, 0);
                if (i > 0) {
                    /* the band's last iteration whole (its edges are
                     * copied from it), whichever thread ran it */
                    wait_for(L, band, i - 1, L->end);
                    refresh_edges(L, band);
                }
                sweep_band(L, band, i, isa);
            }
        }
    }
}

/* Level l of `levels` of a W0 x H0 image: its size (round half to even,
 * as Python's round), iterations, bands, and places in the ring for
 * `threads`: at least iterations + 2 (run_level), and room for the
 * threads to be a band or two apart. */
static fg_level level_shape(int W0, int H0, int levels, int l, int threads)
{
    fg_level L = {
        .w = levels ? (int)nearbyint(pow(W0, (double)l / levels)) : W0,
        .h = levels ? (int)nearbyint(pow(H0, (double)l / levels)) : H0,
    };
    L.iterations = L.w <= FG_SMALL_SIZE && L.h <= FG_SMALL_SIZE ? FG_SMALL_ITERATIONS
                                                                : FG_BIG_ITERATIONS;
    L.bands = (L.h + FG_LANES - 1) / FG_LANES;
    L.places = L.iterations + 2 + 2 * threads;
    L.places = L.places < L.bands ? L.places : L.bands;
    L.end = L.w + FG_LANES;
    L.band_floats = fg_band_floats(L.w);
    return L;
}

/* A block of memory for the ring and the levels' F and B: in huge pages
 * where the system gives them on request (Linux's transparent huge pages
 * in madvise mode). A call touches its blocks for the first time; when the
 * whole level was held in memory (10 floats a pixel), faulting it in 4 KB
 * pages was a fifth of a call on a 0.46 MP photo (26.2 -> 21.6 ms, median
 * of 10 processes, 2 threads, Intel Xeon). With the ring, on the AMD EPYC,
 * plain malloc measured no different within that machine's noise. */
static void *big_alloc(size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    enum { HUGE = 2 << 20 };
    if (bytes >= HUGE) {
        void *p = NULL;
        const size_t rounded = (bytes + HUGE - 1) / HUGE * HUGE;
        if (posix_memalign(&p, HUGE, rounded) != 0)
            return NULL;
        madvise(p, rounded, MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(bytes);
}

int u2net_estimate_foreground(const u2net_image *img, const float *alpha, float *foreground,
                              u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    if (!img || !img->data || !alpha || !foreground || img->width < 1 || img->height < 1 ||
        img->channels < 1 || img->channels > 4 || img->width > U2NET_MAX_IMAGE_SIDE ||
        img->height > U2NET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * img->height > U2NET_MAX_IMAGE_PIXELS) {
        set_error(err, U2NET_EARG, "u2net_estimate_foreground: needs an image of 1..%d a side, "
                  "its alpha and the foreground to fill", U2NET_MAX_IMAGE_SIDE);
        return U2NET_EARG;
    }
    const int W0 = img->width, H0 = img->height, C = img->channels;
    const int threads = max_threads();
    const int side = W0 > H0 ? W0 : H0;
    const int levels = side > 1 ? (int)ceil(log2((double)side)) : 0;

    float byte_colour[256];
    for (int v = 0; v < 256; v++)
        byte_colour[v] = (float)(v / 255.0);
    /* mean colours of the sure foreground (a > 0.9) and background
     * (a < 0.1), over count + 1e-5 as pymatting divides: from counts of
     * each byte value, so the sums are exact whatever the threads */
    enum { SURE_F = 0, SURE_B = 3 * 256, COUNTS = 6 * 256 };
    uint64_t hist[COUNTS + 2] = {0};
    #pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : hist[:COUNTS + 2])
    for (int y = 0; y < H0; y++)
        for (int x = 0; x < W0; x++) {
            const size_t i = (size_t)y * W0 + x;
            const unsigned char *px = img->data + i * C;
            const float a = alpha[i];
            if (a > 0.9 || a < 0.1) {
                const int to = a > 0.9 ? SURE_F : SURE_B;
                for (int c = 0; c < 3; c++)
                    hist[to + c * 256 + px[C >= 3 ? c : 0]]++;
                hist[COUNTS + (a > 0.9 ? 0 : 1)]++;
            }
        }
    float f_init[3], b_init[3];
    for (int c = 0; c < 3; c++) {
        double f_sum = 0, b_sum = 0;
        for (int v = 0; v < 256; v++) {
            f_sum += (double)hist[SURE_F + c * 256 + v] * byte_colour[v];
            b_sum += (double)hist[SURE_B + c * 256 + v] * byte_colour[v];
        }
        f_init[c] = (float)(f_sum / ((double)hist[COUNTS] + 1e-5));
        b_init[c] = (float)(b_sum / ((double)hist[COUNTS + 1] + 1e-5));
    }

    /* The previous level's F and B and this one's, alternating between two
     * blocks, for the second and third largest levels; the ring, for the
     * level whose places take the most */
    size_t level_pixels[2] = {1, 1}, ring_floats = 0;
    int places_max = 1;
    for (int l = 0; l <= levels; l++) {
        const fg_level L = level_shape(W0, H0, levels, l, threads);
        const size_t floats = (size_t)L.places * L.band_floats;
        ring_floats = floats > ring_floats ? floats : ring_floats;
        places_max = L.places > places_max ? L.places : places_max;
        if (l < levels)
            level_pixels[(levels - 1 - l) % 2] = (size_t)L.w * L.h;
    }
    float *ring = big_alloc(FG_PLANES * ring_floats * sizeof *ring);
    float *fb[2] = {big_alloc(6 * level_pixels[0] * sizeof(float)),
                    big_alloc(6 * level_pixels[1] * sizeof(float))};
    int *xs = malloc((size_t)W0 * sizeof *xs), *prev_xs = malloc((size_t)W0 * sizeof *prev_xs);
    fg_place *place = malloc((size_t)places_max * sizeof *place);
    if (!ring || !fb[0] || !fb[1] || !xs || !prev_xs || !place) {
        free(ring), free(fb[0]), free(fb[1]), free(xs), free(prev_xs), free(place);
        set_error(err, U2NET_ENOMEM, "out of memory estimating the foreground of a %dx%d image",
                  W0, H0);
        return U2NET_ENOMEM;
    }
    for (int r = 0; r < places_max; r++) {
        atomic_init(&place[r].band, -1);
        for (int i = 0; i <= FG_SMALL_ITERATIONS; i++)
            atomic_init(&place[r].progress[i], 0);
    }
    const kernel_isa isa = kernel_isa_best();
    int prev_w = 1, prev_h = 1;
    for (int l = 0; l <= levels; l++) {
        fg_level L = level_shape(W0, H0, levels, l, threads);
        const int w = L.w, h = L.h;
        L.place = place;
        L.image = img->data, L.image_w = W0, L.image_h = H0, L.channels = C;
        L.alpha = alpha, L.byte_colour = byte_colour;
        L.xs = xs, L.prev_xs = prev_xs, L.prev_w = prev_w, L.prev_h = prev_h;
        L.prev_fb = l > 0 ? fb[(levels - l) % 2] : NULL;
        L.out_fb = l < levels ? fb[(levels - 1 - l) % 2] : NULL;
        L.foreground = l == levels ? foreground : NULL;
        for (int p = 0; p < FG_PLANES; p++)
            L.plane[p] = ring + p * (size_t)L.places * L.band_floats;
        for (int c = 0; c < 3; c++)
            L.f_init[c] = f_init[c], L.b_init[c] = b_init[c];
        /* nearest neighbours: the image's and the previous level's column
         * of each of this level's */
        for (int x = 0; x < w; x++) {
            xs[x] = (int)((int64_t)x * W0 / w);
            prev_xs[x] = (int)((int64_t)x * prev_w / w);
        }
        run_level(&L, isa, (size_t)w * h < FG_THREADED_PIXELS ? 1 : threads);
        prev_w = w, prev_h = h;
    }
    free(ring), free(fb[0]), free(fb[1]), free(xs), free(prev_xs), free(place);
    return 0;
}
