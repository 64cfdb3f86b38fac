/* model.h - a loaded model: the network as the file describes it
 * (docs/FORMAT.md: prelude, stages, side outputs, fuse, prediction,
 * processing) and its weights. model.c fills it; graph/network.c turns it
 * into a graph for one input size. Read-only after loading. */
#ifndef U2NET_MODEL_H
#define U2NET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "u2net.h"

/* Limits on what a model file may describe, checked before anything is
 * allocated from its numbers. */
#define U2NET_MAX_STAGES 31          /* up to 16 encoder levels */
#define U2NET_MAX_HEIGHT 16          /* RSU height L */
#define U2NET_MAX_RSU_F_HEIGHT 8     /* RSU-F dilations reach 2^(L-1) */
#define U2NET_MAX_CHANNELS 8192
#define U2NET_MAX_PRELUDE 8
#define U2NET_MAX_PRELUDE_DILATION 16
#define U2NET_MAX_FILE_BYTES ((uint64_t)4 << 30)

/* One convolution with folded BatchNorm: weight [cout, cin, k, k], bias
 * [cout]; zero padding dilation * (k / 2). A float16 file's large weights
 * (more than MODEL_F32_MAX_VALUES) stay float16 in the mapped file, half
 * the memory of a float32 copy, and a backend converts them where it runs
 * them (weight NULL, weight_f16 set); everything else is float32. */
typedef struct {
    const float *weight;
    const uint16_t *weight_f16;
    const float *bias;
    int cin, cout, k, stride, dilation;
} conv_params;

#define MODEL_F32_MAX_VALUES 65536

/* Layer kinds, as the file's layer table numbers them. */
enum { LAYER_RSU = 1, LAYER_RSU_F = 2, LAYER_CONV = 3, LAYER_POOL = 4, LAYER_SIDE = 5,
       LAYER_FUSE = 6 };
enum { ROLE_ENCODER = 0, ROLE_DECODER = 1 };

/* A prelude layer: a 3x3 convolution (then ReLU when relu is set), or a 2x2
 * ceil-mode max pool. */
typedef struct {
    int kind;   /* LAYER_CONV or LAYER_POOL */
    int relu;
    conv_params conv;
} prelude_layer;

/* One RSU block. conv[] in file order: rebnconvin, rebnconv1..L,
 * rebnconv(L-1)d..rebnconv1d, i.e. conv[L + (L - i)] is rebnconv{i}d. */
typedef struct {
    int kind;   /* LAYER_RSU or LAYER_RSU_F */
    int height, in_ch, mid_ch, out_ch, role;
    conv_params *conv;  /* 2 * height entries */
} stage_desc;

/* Side output j: a 3x3 convolution (no ReLU) of stage `source`'s output,
 * resized to the input's size (resize_to 0) or to side resize_to's size. */
typedef struct {
    int source;     /* index into stages[] */
    int resize_to;
    conv_params conv;
} side_desc;

struct u2net_model {
    char name[33];
    int version;                /* of the file it came from */
    int in_channels, out_channels;
    u2net_processing processing;
    int n_prelude;
    prelude_layer prelude[U2NET_MAX_PRELUDE];
    int n_levels;               /* encoder stages n; decoder stages n-1 */
    int n_stages;               /* 2n - 1: encoders then decoders, deep to shallow */
    stage_desc stages[U2NET_MAX_STAGES];
    int n_sides;
    side_desc sides[U2NET_MAX_OUTPUTS];
    int has_fuse;
    conv_params fuse;           /* 1x1 over cat(side1..siden) */
    int prediction;             /* index into the outputs */
    size_t param_count;
    conv_params *conv_storage;  /* all stages' conv[] arrays */
    void *map;                  /* the model file's bytes: */
    int map_kind;               /* MODEL_MAPPED (mmapped), MODEL_HEAP (an ONNX file's
                                   conversion, malloc'd) or MODEL_BUILTIN (linked in) */
    size_t map_bytes;
    float *converted;           /* a float16 file's biases and small weights, as float32 */
    size_t converted_floats, converted_used;
};

enum { MODEL_MAPPED = 0, MODEL_HEAP = 1, MODEL_BUILTIN = 2 };

/* Outputs of the network: sigmoid(fuse) first when there is a fuse
 * convolution, then sigmoid(side1..siden). */
static inline int model_output_count(const u2net_model *m)
{
    return m->n_sides + m->has_fuse;
}

uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n);

/* The checks a model file's layer table gets (docs/FORMAT.md), on a
 * description filled in by another reader (onnx.c): counts, prelude,
 * stages, side outputs, fuse and prediction. 0, or -1 with err naming path
 * and the problem. */
int model_check_network(const u2net_model *m, const char *path, u2net_error *err);

#endif
