/* u2net.h - the public API of u2net.c, a C inference engine for the U2Net
 * family of salient-object / background-removal networks.
 *
 *   u2net_error err;
 *   u2net_model *m = u2net_model_load("weights/u2netp.u2nc", &err);
 *   if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   u2net_ctx *c = u2net_ctx_new(m, 2, &err);          // one per thread
 *   if (!c || u2net_run(c, chw, h, w, &err) != 0) { ... err.msg ... }
 *   const float *mask = u2net_output(c, 0);            // the prediction, h*w floats
 *   u2net_ctx_free(c);
 *   u2net_model_free(m);
 *
 * Threading: a model is read-only after loading and may be shared by any
 * number of contexts in any number of threads; a context is used by one
 * thread at a time. Nothing in the library is global.
 */
#ifndef U2NET_H
#define U2NET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define U2NET_VERSION_STRING "0.1.0"

/* Largest accepted network input: each side and the pixel count. */
#define U2NET_MAX_SIDE 8192
#define U2NET_MAX_PIXELS (16 * 1024 * 1024)

/* Most output maps a model may have. */
#define U2NET_MAX_OUTPUTS 16

typedef struct u2net_model u2net_model;
typedef struct u2net_ctx u2net_ctx;

/* Every call that can fail takes an optional error: on failure it holds one
 * line naming the file or argument and the problem. */
typedef struct {
    int code;       /* one of U2NET_E*, 0 when no error */
    char msg[512];
} u2net_error;

enum {
    U2NET_OK = 0,
    U2NET_EIO = 1,      /* cannot open, read or map a file */
    U2NET_EFORMAT = 2,  /* not a model file, bad version, bad tables, bad shapes */
    U2NET_ECHECKSUM = 3,/* CRC mismatch: the file is corrupted */
    U2NET_EARG = 4,     /* bad argument: input size 0 or beyond the limits */
    U2NET_ENOMEM = 5,   /* an allocation failed */
    U2NET_EEXIST = 6,   /* the output exists and was not to be replaced */
    U2NET_EDEVICE = 7,  /* the device asked for is not in this build or not usable */
    U2NET_ECANCELED = 8 /* the run was cancelled (u2net_ctx_cancel) */
};

/* Where a context runs the network. U2NET_DEVICE_CUDA needs a build with
 * the CUDA backend (make CUDA=1) and a usable NVIDIA GPU; without either,
 * creating the context fails with U2NET_EDEVICE and a one-line reason. */
typedef enum { U2NET_DEVICE_CPU = 0, U2NET_DEVICE_CUDA = 1 } u2net_device;

/* The CPU fast kernels' instruction set: the best this CPU has (AVX-512 or
 * AVX2 on x86, NEON on ARM64), or at most AVX2 (NEON: the same level), or
 * the portable C loops (for comparing them on one machine). */
typedef enum {
    U2NET_ISA_BEST = 0, U2NET_ISA_AVX2 = 1, U2NET_ISA_PORTABLE = 2, U2NET_ISA_NEON = 3
} u2net_isa;

/* How a context runs; u2net_ctx_opts_default gives the defaults (in
 * brackets). */
typedef struct {
    u2net_device device;  /* (CPU) */
    int threads;          /* CPU threads; <= 0 means all cores (0); at most the cores the
                             process may run on (its CPU affinity); results do not
                             depend on it */
    int reference;        /* CPU: the plain forward pass with the reference kernels, slow,
                             for testing the fast path against (0) */
    u2net_isa isa;        /* CPU: the fast kernels' instruction set (best) */
    int gpu;              /* CUDA: the device's index (0) */
    int fast;             /* CUDA: TF32 matrix products, faster and less exact (0: float32,
                             within 1e-4 of the CPU) */
} u2net_ctx_opts;

/* How the image path (u2net_matte_image) feeds a model and reads its
 * prediction: the file's processing block (docs/FORMAT.md). */
typedef enum { U2NET_SCALE_MAX = 0, U2NET_SCALE_255 = 1 } u2net_scale;
typedef enum { U2NET_RESIZE_BACK_8BIT = 0, U2NET_RESIZE_BACK_FLOAT = 1 } u2net_resize_back;
typedef struct {
    int width, height;           /* network input size the model was trained at */
    float mean[3], std[3];       /* x = (v / scale - mean) / std per channel */
    u2net_scale scale;           /* divide by the resized image's maximum, or by 255 */
    int normalise;               /* min-max normalise the prediction */
    u2net_resize_back resize_back; /* 8-bit map resized as PIL does (U2Net's authors), or
                                      the float map as F.interpolate does (DIS, RMBG) */
} u2net_processing;

/* What a loaded model is. */
typedef struct {
    const char *name;            /* the file's name field: "u2net", "u2netp", "isnet", ... */
    const char *architecture;    /* "U2Net" (no prelude, fuse), "ISNet" (stride-2 stem,
                                    no fuse) or "RSU network" */
    int format_version;          /* of the file: 1 or 2 */
    size_t params;               /* weights and biases */
    int outputs;                 /* maps u2net_output returns */
    int prediction;              /* the one applications use */
    u2net_processing processing;
    size_t file_bytes;           /* of the model file (for an ONNX export, of the model
                                    file made of it) */
} u2net_model_info;

/* Model: a u2net.c model file (tools/convert.py; mapped), an ONNX export
 * of a U2Net-family network (rembg's u2net.onnx, u2netp.onnx,
 * u2net_human_seg.onnx, silueta.onnx, isnet-general-use.onnx, float32 or
 * float16, BatchNorm folded or not; read into the model file the converter
 * would make of it), or U2NET_BUILTIN_MODEL; checked whole either way. */
u2net_model *u2net_model_load(const char *path, u2net_error *err);
/* The path that names the trained U2NetP built into the library (the
 * authors' weights, Apache-2.0), in libraries built with it (the default;
 * make BUILTIN_MODEL=0 leaves it out): u2net_has_builtin_model() says. A
 * file of that name is opened as "./builtin:u2netp". */
#define U2NET_BUILTIN_MODEL "builtin:u2netp"
int u2net_has_builtin_model(void);
void u2net_model_free(u2net_model *m);
void u2net_model_get_info(const u2net_model *m, u2net_model_info *info);
const char *u2net_model_name(const u2net_model *m);  /* info.name */
int u2net_model_default_size(const u2net_model *m);  /* info.processing.width: 320, 1024 */
int u2net_model_output_count(const u2net_model *m);  /* info.outputs: 7 for U2Net, 6 for ISNet */
size_t u2net_model_param_count(const u2net_model *m);

/* Context: a device's memory for one run at a time. u2net_ctx_new is
 * u2net_ctx_new_opts with the defaults and the given CPU threads. */
void u2net_ctx_opts_default(u2net_ctx_opts *o);
u2net_ctx *u2net_ctx_new_opts(const u2net_model *m, const u2net_ctx_opts *o, u2net_error *err);
u2net_ctx *u2net_ctx_new(const u2net_model *m, int threads, u2net_error *err);
void u2net_ctx_free(u2net_ctx *c);
/* What the context runs: "reference", the CPU fast path's instruction set
 * ("avx512", "avx2", "neon", "portable"), or "cuda" ("cuda tf32" when fast). */
const char *u2net_ctx_backend_name(const u2net_ctx *c);
/* Bytes of activation memory planned for the last input size and batch. */
size_t u2net_ctx_arena_bytes(const u2net_ctx *c);
/* The model a context runs. */
const u2net_model *u2net_ctx_model(const u2net_ctx *c);
/* CPU threads the context's runs use: the threads asked for, or fewer when
 * the process could not start that many when the run planned its memory
 * (an address-space limit leaving no room for their stacks); 0 on a GPU. */
int u2net_ctx_threads(const u2net_ctx *c);
/* Asks the context's run to stop, from any thread or from a signal handler
 * (it only stores to a lock-free atomic): the run in progress, and every
 * later one until u2net_ctx_clear_cancel, returns U2NET_ECANCELED with its
 * outputs unset. The CPU backends look at the request between layers and
 * between calls of a kernel of at most 2^30 multiply-adds (a layer is cut
 * into bands of rows to keep to it), so a run stops within tens of
 * milliseconds at any input size; the plain reference pass (`reference`)
 * between layers only; a GPU run before it starts. */
void u2net_ctx_cancel(u2net_ctx *c);
void u2net_ctx_clear_cancel(u2net_ctx *c);

/* Runs the network on a normalised 3 x h x w float32 image (planar CHW).
 * Memory is planned when (h, w) or the batch differs from the previous
 * run; nothing is allocated otherwise. Returns 0, or an error code with err
 * filled in. */
int u2net_run(u2net_ctx *c, const float *chw, int h, int w, u2net_error *err);

/* The same on n images of one size at once (n x 3 x h x w, 1 <= n <=
 * U2NET_MAX_BATCH): one run on the GPU, for throughput; one image after
 * another on the CPU. Outputs: u2net_output_batch. */
#define U2NET_MAX_BATCH 256
int u2net_run_batch(u2net_ctx *c, const float *nchw, int n, int h, int w, u2net_error *err);

/* Output k of the last run, h x w floats, valid until the next run or free;
 * NULL if k is out of range or no run yet. The outputs are sigmoid(d0) (the
 * fuse) then sigmoid(d1..d6) for U2Net, sigmoid(d1..d6) for ISNet; the
 * prediction is info.prediction (0 for both). */
const float *u2net_output(const u2net_ctx *c, int k);
/* Output k of image i of the last run. */
const float *u2net_output_batch(const u2net_ctx *c, int i, int k);

/* ------------------------------------------------------------------------
 * Images and the background-removal pipeline.
 *
 *   u2net_image img;  u2net_matte mt;  u2net_image cut;
 *   u2net_image_load("photo.jpg", 0, &img, &err);
 *   u2net_mask_opts mo;  u2net_mask_opts_default(&mo);
 *   u2net_matte_image(ctx, &img, &mo, &mt, &err);      // prob, alpha, mask, bbox
 *   u2net_render_opts ro;  u2net_render_opts_default(&ro);
 *   u2net_render(&img, &mt, U2NET_OUT_RGBA, &ro, &cut, &err);
 *   u2net_image_save("cutout.png", &cut, 0, &err);
 * ------------------------------------------------------------------------ */

/* Default limit on decoded image size, checked against the header before
 * any pixel is decoded. */
#define U2NET_DEFAULT_MAX_IMAGE_PIXELS 100000000u

/* Largest image any call takes or makes, each side and in pixels (larger
 * ones are refused with U2NET_EARG), so that every byte count computed from
 * an image's size fits a 64-bit size_t with room to spare. */
#define U2NET_MAX_IMAGE_SIDE 65535
#define U2NET_MAX_IMAGE_PIXELS 2147483648u

/* An 8-bit image: height rows of width*channels bytes, no padding. channels
 * is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA). */
typedef struct {
    int width, height, channels;
    unsigned char *data;
} u2net_image;

/* Decodes JPEG (baseline and progressive), PNG (8 and 16 bit), BMP, TGA,
 * GIF (first frame) and PNM, keeping the file's channels; 16-bit samples are
 * scaled to 8 bits; a JPEG's EXIF orientation is applied (the result is
 * upright). max_pixels 0 means U2NET_DEFAULT_MAX_IMAGE_PIXELS. */
int u2net_image_decode(const void *data, size_t len, size_t max_pixels,
                       u2net_image *out, u2net_error *err);
int u2net_image_load(const char *path, size_t max_pixels, u2net_image *out,
                     u2net_error *err);
/* Whether head, a file's first bytes (at least 18 where it has them), can
 * begin an image u2net_image_decode reads: PNG, JPEG, GIF, BMP and binary
 * PNM by their signatures, TGA (which has none) by a plausible header. A
 * reader of a stream asks this before reading the rest of it. */
int u2net_image_sniff(const void *head, size_t len);
/* The images a file holds: the frames of an animated GIF, of which
 * u2net_image_decode decodes the first; 1 for every other file. */
int u2net_image_frame_count(const void *data, size_t len);
/* A new image of the given size (within U2NET_MAX_IMAGE_*), zero-filled. */
int u2net_image_alloc(u2net_image *img, int width, int height, int channels,
                      u2net_error *err);
void u2net_image_free(u2net_image *img);

typedef enum { U2NET_FORMAT_PNG = 0, U2NET_FORMAT_JPEG = 1 } u2net_file_format;
/* Encodes to a malloc'd buffer (free() it). JPEG takes 1 or 3 channels;
 * quality 1..100, 0 means 95. */
int u2net_image_encode(const u2net_image *img, u2net_file_format fmt, int quality,
                       unsigned char **out, size_t *len, u2net_error *err);
/* Encodes by the path's extension (.png, .jpg/.jpeg) and writes through a
 * temporary file and a rename: the path never holds a partial file. */
int u2net_image_save(const char *path, const u2net_image *img, int quality,
                     u2net_error *err);

typedef enum { U2NET_RESIZE_BILINEAR = 0, U2NET_RESIZE_LANCZOS = 1 } u2net_resize_filter;
typedef enum {
    U2NET_MORPH_NONE = 0, U2NET_MORPH_OPEN, U2NET_MORPH_CLOSE, U2NET_MORPH_OPEN_CLOSE
} u2net_morph;

/* The colours the cutouts (rgba, rgb, composite, highlight) give the
 * subject: the image's own, or foreground colours estimated from the image
 * and the alpha (u2net_estimate_foreground), free of the old background
 * where the alpha is soft. AUTO estimates them when guided refinement or
 * alpha matting is on. */
typedef enum {
    U2NET_FOREGROUND_AUTO = 0, U2NET_FOREGROUND_ORIGINAL = 1, U2NET_FOREGROUND_ESTIMATE = 2
} u2net_foreground;

/* How an image becomes its matte. The defaults are the model's own
 * processing (u2net_processing): for U2Net the authors' test pipeline
 * (bilinear resize to 320x320, aspect not kept, divide by the maximum,
 * ImageNet mean/std; sigmoid(d0), min-max normalised, resized back), for
 * ISNet DIS's and RMBG's (1024x1024, /255, mean 0.5, std 1; sigmoid(d1)
 * resized back, min-max normalised); 0..255. */
typedef struct {
    int net_width, net_height;      /* network input size; 0 = the model's */
    float mean[3], std[3];          /* replace the model's when std[0] > 0 (a
                                       retrained model); all 0 = the model's */
    u2net_resize_filter resize;     /* bilinear (the models' own) or lanczos (rembg) */
    float threshold;                /* binary mask: prob >= threshold (0..1, 0.5) */
    int refine;                     /* trimap refinement of the alpha (off) */
    int fg_threshold, bg_threshold; /* 0..255: alpha 255 at/above fg, 0 at/below bg,
                                       linear in between (240 / 15) */
    u2net_morph morph;              /* on the alpha (grey) and so the mask (none) */
    int morph_radius;               /* square structuring element radius (1) */
    int largest_component;          /* keep only the largest connected subject (off) */
    float feather;                  /* soften the alpha edge by this many px (0) */
    int alpha_from_mask;            /* alpha = the binary mask, not the soft map (off) */
    /* Clean edges (they need the image: u2net_matte_image or
     * u2net_matte_from_prob_image). In this order, before refine: */
    int guided;                     /* guided filter of prob with the image as guide
                                       (u2net_guided_filter) (off) */
    int guided_radius;              /* its radius in image pixels, 1..U2NET_GUIDED_MAX_RADIUS;
                                       0 = 4 network pixels at the image's scale (0) */
    float guided_eps;               /* its regularisation, colours in 0..1 (1e-4) */
    int alpha_matting;              /* closed-form matting of the trimap's unknown band,
                                       rembg's --alpha-matting (off) */
    int matting_fg_threshold, matting_bg_threshold; /* the trimap: foreground where the map
                                       is > fg, background where < bg (240 / 10) */
    int erode_size;                 /* both regions eroded by a square of this side,
                                       0..U2NET_MAX_ERODE_SIZE (10) */
    u2net_foreground foreground;    /* the cutouts' colours at soft edges (auto) */
} u2net_mask_opts;
void u2net_mask_opts_default(u2net_mask_opts *o);

/* The matte of one image, all maps width*height bytes at the image's size. */
typedef struct {
    int width, height;
    unsigned char *prob;   /* soft probability map 0..255, before any refinement */
    unsigned char *alpha;  /* the alpha the cutouts use, after the options */
    unsigned char *mask;   /* 0 or 255 */
    int bbox_x, bbox_y, bbox_w, bbox_h;  /* the mask's bounding box; w = h = 0 if empty */
    size_t area;           /* foreground pixels of the mask */
    double mean_prob;      /* mean of prob/255 inside the bounding box */
    unsigned char *foreground; /* width*height RGB triples: the estimated foreground
                                  colours the cutouts use, or NULL for the image's own */
} u2net_matte;

/* Pre-processes the image, runs the network with c, post-processes. */
int u2net_matte_image(u2net_ctx *c, const u2net_image *img, const u2net_mask_opts *o,
                      u2net_matte *out, u2net_error *err);
/* The post-processing alone, from a prob map (width*height bytes, copied):
 * fills alpha, mask, bbox, area and mean_prob as u2net_matte_image does. */
int u2net_matte_from_prob(const unsigned char *prob, int width, int height,
                          const u2net_mask_opts *o, u2net_matte *out, u2net_error *err);
/* The same with the image, for the options that need it (guided, alpha
 * matting, foreground estimation); prob is img's size. */
int u2net_matte_from_prob_image(const unsigned char *prob, const u2net_image *img,
                                const u2net_mask_opts *o, u2net_matte *out, u2net_error *err);
void u2net_matte_free(u2net_matte *m);

/* The clean-edge algorithms on their own. Maps are width*height, row-major;
 * colours are the image's (gray replicated, alpha ignored) in 0..1. */
#define U2NET_GUIDED_MAX_RADIUS 1000
#define U2NET_GUIDED_DEFAULT_NET_SIDE 320   /* network side assumed when unknown */
#define U2NET_GUIDED_GRID_PIXELS (1 << 20)  /* most cells of the subsampled grid */
#define U2NET_MAX_ERODE_SIZE 1000
#define U2NET_MATTING_MAX_ITERATIONS 2000
/* Guided filter (He et al.) of p (floats) with guide's colours, computed on
 * a grid subsampled by `subsample` (1 = the plain filter; the fast filter
 * of He and Sun otherwise, a cell being the mean of its block over at most
 * 4 of its rows, evenly spread), into q (floats; p and q may not overlap).
 * radius and subsample 1..U2NET_GUIDED_MAX_RADIUS, eps in (0, 1]. */
int u2net_guided_filter(const u2net_image *guide, const float *p, int radius, float eps,
                        int subsample, float *q, u2net_error *err);
/* The radius and subsampling guided refinement uses for an image: radius
 * when > 0, else round(4 x longer side / net_side) (net_side 0 =
 * U2NET_GUIDED_DEFAULT_NET_SIDE), at least 2; subsample max(1, radius / 4,
 * ceil(sqrt(pixels / U2NET_GUIDED_GRID_PIXELS))). */
void u2net_guided_params(int width, int height, int net_side, int radius, int *radius_used,
                         int *subsample);
/* rembg's trimap of a prob map: 255 where prob > fg, 0 where prob < bg,
 * each region then eroded (scipy's binary_erosion) by an erode_size square
 * (offsets -size/2 .. size - 1 - size/2; the 3x3 cross for 0; outside the
 * map counts as background), 128 elsewhere. 0 <= bg <= fg <= 255. */
int u2net_trimap(const unsigned char *prob, int width, int height, int fg_threshold,
                 int bg_threshold, int erode_size, unsigned char *trimap, u2net_error *err);
/* Closed-form matting (Levin et al.; 3x3 windows, epsilon 1e-7): alpha 1
 * where the trimap is 255, 0 where it is 0, and the rest solved from the
 * image, starting from init (NULL: 0.5; from 65,536 unknown pixels on,
 * from the same problem solved at half the size), by preconditioned
 * conjugate gradients of at most U2NET_MATTING_MAX_ITERATIONS iterations
 * a solve. The result does not depend on the number of threads. With no
 * known or no unknown pixel the alpha is the trimap and init. */
int u2net_alpha_matting(const u2net_image *img, const unsigned char *trimap, const float *init,
                        float *alpha, u2net_error *err);
/* Multi-level foreground estimation (Germer et al., pymatting's
 * estimate_foreground_ml) from the image and its alpha (floats 0..1) into
 * foreground (width*height RGB float triples, 0..1). */
int u2net_estimate_foreground(const u2net_image *img, const float *alpha, float *foreground,
                              u2net_error *err);

typedef enum {
    U2NET_OUT_PROB = 0,   /* soft map, 1 channel */
    U2NET_OUT_MASK,       /* binary mask, 1 channel */
    U2NET_OUT_RGBA,       /* cutout, transparent background, 4 channels */
    U2NET_OUT_RGB,        /* cutout on black, 3 channels */
    U2NET_OUT_COMPOSITE,  /* subject over a colour or an image, 3 channels */
    U2NET_OUT_CROP,       /* the original cropped to the bbox + padding */
    U2NET_OUT_BBOX,       /* JSON text: see u2net_bbox_json */
    U2NET_OUT_HIGHLIGHT,  /* subject kept, background dimmed/greyed/blurred, 3 channels */
    U2NET_OUT_COUNT
} u2net_output_type;

typedef enum { U2NET_HIGHLIGHT_DIM = 0, U2NET_HIGHLIGHT_GRAY, U2NET_HIGHLIGHT_BLUR } u2net_highlight;

typedef struct {
    unsigned char background_rgb[3];  /* composite over this colour (white) */
    const u2net_image *background;    /* or over this image, scaled to cover and
                                         centred; NULL = the colour */
    int padding;                      /* crop: pixels added around the bbox (0) */
    u2net_highlight highlight;        /* (dim) */
} u2net_render_opts;
void u2net_render_opts_default(u2net_render_opts *o);

/* Renders one image output of img with its matte into out (free with
 * u2net_image_free). U2NET_OUT_BBOX is not an image: use u2net_bbox_json. */
int u2net_render(const u2net_image *img, const u2net_matte *m, u2net_output_type t,
                 const u2net_render_opts *o, u2net_image *out, u2net_error *err);
/* {"image": name, "width": .., "height": .., "bbox": {"x","y","w","h"} or null,
 *  "area": .., "area_fraction": .., "mean_probability": ..}, malloc'd, NUL-
 * terminated, ending in a newline; NULL when out of memory. name may be NULL. */
char *u2net_bbox_json(const u2net_matte *m, const char *name);
/* Writes len bytes to path through a hidden temporary file beside it, moved
 * into place when complete, so the path never holds a partial file. An
 * existing path is replaced when replace is non-zero; otherwise the call
 * fails with U2NET_EEXIST, even if the path appears while writing. */
int u2net_write_file(const char *path, const void *data, size_t len, int replace,
                     u2net_error *err);

/* "prob", "mask", ... for a type; and the type for a name, or -1. */
const char *u2net_output_name(u2net_output_type t);
int u2net_output_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif
