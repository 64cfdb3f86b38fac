/* model.c - loading a model file (docs/FORMAT.md, versions 1 and 2): mmap,
 * check every field, describe the network (model.h) and bind each
 * convolution's weights. A file that fails any check is refused with one
 * line naming the file and the problem. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builtin_model.h"
#include "error.h"
#include "kernels.h"
#include "model.h"
#include "onnx.h"

enum {
    HEADER_BYTES = 128,
    PROCESSING_BYTES = 64,
    LAYER_ENTRY_BYTES = 32,
    TENSOR_ENTRY_BYTES = 96,
    TENSOR_NAME_BYTES = 56,
    DTYPE_F32 = 0,
    DTYPE_F16 = 1
};

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static float rdf32(const unsigned char *p)
{
    const uint32_t bits = rd32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The stage's name: encoder k is "stagek", decoder k is "stagekd". */
static void stage_name(const u2net_model *m, int s, char *buf, size_t n)
{
    if (s < m->n_levels)
        snprintf(buf, n, "stage%d", s + 1);
    else
        snprintf(buf, n, "stage%dd", m->n_stages - s);
}

/* The U-level of stage s: encoder k and decoder k are at level k. */
static int stage_level(const u2net_model *m, int s)
{
    return s < m->n_levels ? s + 1 : m->n_stages - s;
}

/* Fills in the shapes of a stage's 2L convolutions and their names
 * ("rebnconvin", "rebnconv3", "rebnconv2d"). */
static void stage_convs(const stage_desc *st, char names[][24])
{
    const int L = st->height, f = st->kind == LAYER_RSU_F;
    for (int j = 0; j < 2 * L; j++) {
        conv_params *c = &st->conv[j];
        c->k = 3, c->stride = 1;
        if (j == 0) {
            snprintf(names[j], 24, "rebnconvin");
            c->cin = st->in_ch, c->cout = st->out_ch, c->dilation = 1;
        } else if (j <= L) {
            snprintf(names[j], 24, "rebnconv%d", j);
            c->cin = j == 1 ? st->out_ch : st->mid_ch;
            c->cout = st->mid_ch;
            c->dilation = f ? 1 << (j - 1) : (j == L ? 2 : 1);
        } else {
            const int i = 2 * L - j; /* rebnconv{i}d, i = L-1 .. 1 */
            snprintf(names[j], 24, "rebnconv%dd", i);
            c->cin = 2 * st->mid_ch;
            c->cout = i == 1 ? st->out_ch : st->mid_ch;
            c->dilation = f ? 1 << (i - 1) : 1;
        }
    }
}

static int channels_ok(int c)
{
    return c >= 1 && c <= U2NET_MAX_CHANNELS;
}

/* The prelude: kinds, geometry and channel chaining. */
static int check_prelude(const u2net_model *m, const char *path, u2net_error *err)
{
    int ch = m->in_channels;
    for (int i = 0; i < m->n_prelude; i++) {
        const prelude_layer *p = &m->prelude[i];
        if (p->kind == LAYER_POOL)
            continue;
        const conv_params *c = &p->conv;
        if (c->cin != ch || !channels_ok(c->cout)) {
            set_error(err, U2NET_EFORMAT,
                      "%s: prelude%d is a %d -> %d convolution, but its input has %d channels "
                      "(and at most %d are allowed)",
                      path, i + 1, c->cin, c->cout, ch, U2NET_MAX_CHANNELS);
            return -1;
        }
        if (c->k != 3 || (c->stride != 1 && c->stride != 2) || c->dilation < 1 ||
            c->dilation > U2NET_MAX_PRELUDE_DILATION || (p->relu != 0 && p->relu != 1)) {
            set_error(err, U2NET_EFORMAT,
                      "%s: prelude%d has kernel %d, stride %d, dilation %d, relu %d (allowed: "
                      "kernel 3, stride 1 or 2, dilation 1..%d, relu 0 or 1)",
                      path, i + 1, c->k, c->stride, c->dilation, p->relu,
                      U2NET_MAX_PRELUDE_DILATION);
            return -1;
        }
        ch = c->cout;
    }
    return 0;
}

/* The channels stage 1 takes: the prelude's output, or the input's. */
static int prelude_channels(const u2net_model *m)
{
    int ch = m->in_channels;
    for (int i = 0; i < m->n_prelude; i++)
        if (m->prelude[i].kind == LAYER_CONV)
            ch = m->prelude[i].conv.cout;
    return ch;
}

/* Whether the prelude keeps the input's size (no stride, no pool). */
static int prelude_keeps_size(const u2net_model *m)
{
    for (int i = 0; i < m->n_prelude; i++)
        if (m->prelude[i].kind == LAYER_POOL || m->prelude[i].conv.stride != 1)
            return 0;
    return 1;
}

/* The stage table's structure and channel chaining. */
static int check_stages(const u2net_model *m, const char *path, u2net_error *err)
{
    const int n = m->n_levels;
    for (int s = 0; s < m->n_stages; s++) {
        const stage_desc *st = &m->stages[s];
        char sn[24];
        stage_name(m, s, sn, sizeof sn);
        const int max_h = st->kind == LAYER_RSU_F ? U2NET_MAX_RSU_F_HEIGHT : U2NET_MAX_HEIGHT;
        if (st->height < 2 || st->height > max_h) {
            set_error(err, U2NET_EFORMAT, "%s: %s has height %d (allowed 2..%d)", path, sn,
                      st->height, max_h);
            return -1;
        }
        if (!channels_ok(st->in_ch) || !channels_ok(st->mid_ch) || !channels_ok(st->out_ch)) {
            set_error(err, U2NET_EFORMAT, "%s: %s has channels %d/%d/%d outside 1..%d", path, sn,
                      st->in_ch, st->mid_ch, st->out_ch, U2NET_MAX_CHANNELS);
            return -1;
        }
        if (st->role != (s < n ? ROLE_ENCODER : ROLE_DECODER)) {
            set_error(err, U2NET_EFORMAT,
                      "%s: %s should be %s (the table lists %d encoders then %d decoders)", path,
                      sn, s < n ? "an encoder" : "a decoder", n, n - 1);
            return -1;
        }
        int want;
        if (s == 0)
            want = prelude_channels(m);
        else if (s < n)
            want = m->stages[s - 1].out_ch;
        else {
            const int k = m->n_stages - s;                   /* decoder k */
            const int deeper = s == n ? n - 1 : s - 1;       /* encoder n or decoder k+1 */
            want = m->stages[deeper].out_ch + m->stages[k - 1].out_ch;
        }
        if (st->in_ch != want) {
            set_error(err, U2NET_EFORMAT, "%s: %s takes %d input channels but its input has %d",
                      path, sn, st->in_ch, want);
            return -1;
        }
    }
    return 0;
}

/* Side outputs, the fuse convolution and the prediction. */
static int check_outputs(const u2net_model *m, const char *path, u2net_error *err)
{
    for (int j = 0; j < m->n_sides; j++) {
        const side_desc *sd = &m->sides[j];
        if (sd->source < 0 || sd->source >= m->n_stages) {
            set_error(err, U2NET_EFORMAT, "%s: side%d reads stage %d, but there are %d stages",
                      path, j + 1, sd->source, m->n_stages);
            return -1;
        }
        const int src_ch = m->stages[sd->source].out_ch;
        if (sd->conv.cin != src_ch || sd->conv.cout != m->out_channels) {
            set_error(err, U2NET_EFORMAT,
                      "%s: side%d is a %d -> %d convolution of a stage with %d channels (to %d)",
                      path, j + 1, sd->conv.cin, sd->conv.cout, src_ch, m->out_channels);
            return -1;
        }
        if (sd->resize_to < 0 || sd->resize_to > m->n_sides) {
            set_error(err, U2NET_EFORMAT, "%s: side%d is resized to the size of side %d of %d",
                      path, j + 1, sd->resize_to, m->n_sides);
            return -1;
        }
        if (sd->resize_to > 0) {
            const side_desc *to = &m->sides[sd->resize_to - 1];
            if (stage_level(m, to->source) != 1 || !prelude_keeps_size(m)) {
                set_error(err, U2NET_EFORMAT,
                          "%s: side%d is resized to side%d's size, which is not the input's",
                          path, j + 1, sd->resize_to);
                return -1;
            }
        }
    }
    if (m->has_fuse &&
        (m->fuse.cin != m->n_sides * m->out_channels || m->fuse.cout != m->out_channels)) {
        set_error(err, U2NET_EFORMAT,
                  "%s: the fuse convolution is %d -> %d, but %d side outputs give %d channels "
                  "(to %d)",
                  path, m->fuse.cin, m->fuse.cout, m->n_sides, m->n_sides * m->out_channels,
                  m->out_channels);
        return -1;
    }
    if (m->prediction < 0 || m->prediction >= model_output_count(m)) {
        set_error(err, U2NET_EFORMAT, "%s: prediction is output %d of %d", path, m->prediction,
                  model_output_count(m));
        return -1;
    }
    return 0;
}

int model_check_network(const u2net_model *m, const char *path, u2net_error *err)
{
    if (m->n_prelude > U2NET_MAX_PRELUDE || m->n_stages < 3 || m->n_stages % 2 == 0 ||
        m->n_stages > U2NET_MAX_STAGES - 2 || m->n_sides < 1 ||
        model_output_count(m) > U2NET_MAX_OUTPUTS) {
        set_error(err, U2NET_EFORMAT,
                  "%s: %d prelude layers, %d stages, %d outputs (at most %d; an odd number, "
                  "3..%d; 1..%d)", path, m->n_prelude, m->n_stages, model_output_count(m),
                  U2NET_MAX_PRELUDE, U2NET_MAX_STAGES - 2, U2NET_MAX_OUTPUTS);
        return -1;
    }
    return check_prelude(m, path, err) != 0 || check_stages(m, path, err) != 0 ||
                   check_outputs(m, path, err) != 0
               ? -1
               : 0;
}

/* The processing block (version 2). */
static int read_processing(u2net_model *m, const char *path, const unsigned char *b,
                           u2net_error *err)
{
    u2net_processing *p = &m->processing;
    const uint32_t w = rd32(b), h = rd32(b + 4);
    for (int c = 0; c < 3; c++) {
        p->mean[c] = rdf32(b + 8 + 4 * c);
        p->std[c] = rdf32(b + 20 + 4 * c);
    }
    const uint32_t scale = rd32(b + 32), normalise = rd32(b + 36), back = rd32(b + 40);
    if (w < 1 || h < 1 || w > U2NET_MAX_SIDE || h > U2NET_MAX_SIDE) {
        set_error(err, U2NET_EFORMAT, "%s: input size %ux%u is outside 1..%d", path, w, h,
                  U2NET_MAX_SIDE);
        return -1;
    }
    for (int c = 0; c < 3; c++)
        if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || !(p->std[c] > 0.0f)) {
            set_error(err, U2NET_EFORMAT,
                      "%s: channel %d has mean %g and std %g (finite, and std > 0, needed)", path,
                      c, (double)p->mean[c], (double)p->std[c]);
            return -1;
        }
    if (scale > 1 || normalise > 1 || back > 1) {
        set_error(err, U2NET_EFORMAT, "%s: scale %u, normalise %u, resize_back %u (each 0 or 1)",
                  path, scale, normalise, back);
        return -1;
    }
    for (int i = 44; i < PROCESSING_BYTES; i++)
        if (b[i]) {
            set_error(err, U2NET_EFORMAT, "%s: reserved bytes of the processing block are not 0",
                      path);
            return -1;
        }
    p->width = (int)w, p->height = (int)h;
    p->scale = scale ? U2NET_SCALE_255 : U2NET_SCALE_MAX;
    p->normalise = (int)normalise;
    p->resize_back = back ? U2NET_RESIZE_BACK_FLOAT : U2NET_RESIZE_BACK_8BIT;
    return 0;
}

/* U2Net's authors' processing, which version-1 files imply. */
static void u2net_processing_at(u2net_model *m, int size)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    u2net_processing *p = &m->processing;
    p->width = p->height = size >= 1 && size <= U2NET_MAX_SIDE ? size : 320;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->scale = U2NET_SCALE_MAX;
    p->normalise = 1;
    p->resize_back = U2NET_RESIZE_BACK_8BIT;
}

static void read_stage(stage_desc *st, const unsigned char *e)
{
    /* rd32 values above INT_MAX become negative and fail the range checks */
    st->kind = (int)rd32(e);
    st->height = (int)rd32(e + 4);
    st->in_ch = (int)rd32(e + 8);
    st->mid_ch = (int)rd32(e + 12);
    st->out_ch = (int)rd32(e + 16);
    st->role = (int)rd32(e + 20);
}

/* Version 1: the stage table alone; sides and fuse are U2Net's. */
static int read_stage_table(u2net_model *m, const char *path, const unsigned char *table,
                            uint32_t count, u2net_error *err)
{
    for (uint32_t s = 0; s < count; s++) {
        const unsigned char *e = table + (size_t)s * LAYER_ENTRY_BYTES;
        read_stage(&m->stages[s], e);
        if ((m->stages[s].kind != LAYER_RSU && m->stages[s].kind != LAYER_RSU_F) || rd32(e + 24) ||
            rd32(e + 28)) {
            set_error(err, U2NET_EFORMAT, "%s: stage %u has kind %u (1 or 2) or reserved fields set",
                      path, s + 1, rd32(e));
            return -1;
        }
    }
    m->n_stages = (int)count;
    m->n_levels = ((int)count + 1) / 2;
    const int n = m->n_levels;
    m->n_sides = n;
    for (int k = 1; k <= n; k++) {
        /* side k reads decoder k (stage index 2n-1-k), side n reads encoder n */
        side_desc *sd = &m->sides[k - 1];
        sd->source = k < n ? 2 * n - 1 - k : n - 1;
        sd->resize_to = k == 1 ? 0 : 1;
        sd->conv.cin = m->stages[sd->source].out_ch;
        sd->conv.cout = m->out_channels;
    }
    m->has_fuse = 1;
    m->fuse.cin = n * m->out_channels;
    m->fuse.cout = m->out_channels;
    m->prediction = 0;
    return 0;
}

/* Version 2: the layer table (FORMAT.md, "Layer table"). */
static int read_layer_table(u2net_model *m, const char *path, const unsigned char *table,
                            uint32_t count, u2net_error *err)
{
    enum { IN_PRELUDE, IN_STAGES, IN_SIDES, AFTER_FUSE } part = IN_PRELUDE;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e = table + (size_t)i * LAYER_ENTRY_BYTES;
        const uint32_t kind = rd32(e);
        uint32_t f[8];
        for (int j = 1; j < 8; j++)
            f[j] = rd32(e + 4 * j);
        int used = 0; /* fields of the kind; the rest must be 0 */
        const char *misplaced = NULL;
        switch (kind) {
        case LAYER_CONV:
        case LAYER_POOL: {
            if (part != IN_PRELUDE) {
                misplaced = "a prelude layer after the stages";
                break;
            }
            if (m->n_prelude == U2NET_MAX_PRELUDE) {
                set_error(err, U2NET_EFORMAT, "%s: more than %d prelude layers", path,
                          U2NET_MAX_PRELUDE);
                return -1;
            }
            prelude_layer *p = &m->prelude[m->n_prelude++];
            p->kind = (int)kind;
            if (kind == LAYER_CONV) {
                p->conv.cin = (int)f[1], p->conv.cout = (int)f[2], p->conv.k = (int)f[3];
                p->conv.stride = (int)f[4], p->conv.dilation = (int)f[5];
                p->relu = (int)f[6];
                used = 6;
            }
            break;
        }
        case LAYER_RSU:
        case LAYER_RSU_F:
            if (part > IN_STAGES) {
                misplaced = "a stage after the side outputs";
                break;
            }
            part = IN_STAGES;
            if (m->n_stages == U2NET_MAX_STAGES) {
                set_error(err, U2NET_EFORMAT, "%s: more than %d stages", path, U2NET_MAX_STAGES);
                return -1;
            }
            read_stage(&m->stages[m->n_stages++], e);
            used = 5;
            break;
        case LAYER_SIDE: {
            if (part == IN_PRELUDE || part == AFTER_FUSE) {
                misplaced = part == IN_PRELUDE ? "a side output before the stages"
                                               : "a side output after the fuse convolution";
                break;
            }
            part = IN_SIDES;
            if (m->n_sides == U2NET_MAX_OUTPUTS) {
                set_error(err, U2NET_EFORMAT, "%s: more than %d side outputs", path,
                          U2NET_MAX_OUTPUTS);
                return -1;
            }
            side_desc *sd = &m->sides[m->n_sides++];
            sd->source = (int)f[1];
            sd->conv.cin = (int)f[2], sd->conv.cout = (int)f[3];
            sd->resize_to = (int)f[4];
            used = 4;
            break;
        }
        case LAYER_FUSE:
            if (part != IN_SIDES) {
                misplaced = "a fuse convolution that does not follow the side outputs";
                break;
            }
            part = AFTER_FUSE;
            m->has_fuse = 1;
            m->fuse.cin = (int)f[1], m->fuse.cout = (int)f[2];
            used = 2;
            break;
        default:
            set_error(err, U2NET_EFORMAT, "%s: layer %u has unknown kind %u", path, i + 1, kind);
            return -1;
        }
        if (misplaced) {
            set_error(err, U2NET_EFORMAT, "%s: layer %u is %s", path, i + 1, misplaced);
            return -1;
        }
        for (int j = used + 1; j < 8; j++)
            if (f[j]) {
                set_error(err, U2NET_EFORMAT, "%s: layer %u (kind %u) has field %d set to %u, "
                          "which must be 0", path, i + 1, kind, j, f[j]);
                return -1;
            }
    }
    if (m->n_stages < 3 || m->n_stages % 2 == 0 || m->n_stages > U2NET_MAX_STAGES - 2) {
        set_error(err, U2NET_EFORMAT, "%s: %d stages (an odd number, 3..%d, needed)", path,
                  m->n_stages, U2NET_MAX_STAGES - 2);
        return -1;
    }
    if (m->n_sides < 1) {
        set_error(err, U2NET_EFORMAT, "%s: no side outputs", path);
        return -1;
    }
    if (model_output_count(m) > U2NET_MAX_OUTPUTS) {
        set_error(err, U2NET_EFORMAT, "%s: %d outputs, at most %d allowed", path,
                  model_output_count(m), U2NET_MAX_OUTPUTS);
        return -1;
    }
    m->n_levels = (m->n_stages + 1) / 2;
    return 0;
}

/* "[64,3,3,3]": the first ndim dims (all four when ndim is out of range). */
static void format_shape(char *buf, size_t n, const uint32_t *dims, uint32_t ndim)
{
    if (ndim < 1 || ndim > 4)
        ndim = 4;
    size_t at = (size_t)snprintf(buf, n, "[%u", dims[0]);
    for (uint32_t i = 1; i < ndim && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, ",%u", dims[i]);
    if (at < n)
        snprintf(buf + at, n - at, "]");
}

/* Where the tensor table and data are, for binding. */
typedef struct {
    const char *path;
    const unsigned char *table;
    uint32_t count, next;       /* entries, and the next one to bind */
    uint32_t dtype;
    uint64_t data_offset, data_bytes;
} tensor_reader;

/* Checks the next tensor table entry against the expected name and shape,
 * and points *f32 at its data as float32 (in the map, or converted), or,
 * for a large weight of a float16 file, *f16 at it in the map. */
static int bind_tensor(u2net_model *m, tensor_reader *r, const char *name, const uint32_t *dims,
                       uint32_t ndim, const float **f32, const uint16_t **f16, u2net_error *err)
{
    if (r->next >= r->count) {
        set_error(err, U2NET_EFORMAT, "%s: the tensor table ends before %s", r->path, name);
        return -1;
    }
    const unsigned char *e = r->table + (size_t)r->next++ * TENSOR_ENTRY_BYTES;
    char got[TENSOR_NAME_BYTES + 1];
    memcpy(got, e, TENSOR_NAME_BYTES);
    got[TENSOR_NAME_BYTES] = 0;
    if (memchr(e, 0, TENSOR_NAME_BYTES) == NULL || strcmp(got, name) != 0) {
        set_error(err, U2NET_EFORMAT, "%s: tensor table has '%s' where '%s' belongs", r->path, got,
                  name);
        return -1;
    }
    const uint32_t t_dtype = rd32(e + 56), t_ndim = rd32(e + 60);
    uint32_t t_dims[4];
    for (int i = 0; i < 4; i++)
        t_dims[i] = rd32(e + 64 + 4 * i);
    const uint64_t off = rd64(e + 80), nbytes = rd64(e + 88);
    if (t_dtype != r->dtype) {
        set_error(err, U2NET_EFORMAT, "%s: tensor %s has dtype %u, the header says %u", r->path,
                  name, t_dtype, r->dtype);
        return -1;
    }
    int shape_ok = t_ndim == ndim;
    for (uint32_t i = 0; i < 4; i++)
        shape_ok = shape_ok && t_dims[i] == (i < ndim ? dims[i] : 0);
    if (!shape_ok) {
        char got_s[64], want_s[64];
        format_shape(got_s, sizeof got_s, t_dims, t_ndim);
        format_shape(want_s, sizeof want_s, dims, ndim);
        set_error(err, U2NET_EFORMAT, "%s: tensor %s has shape %s, the layer table needs %s",
                  r->path, name, got_s, want_s);
        return -1;
    }
    uint64_t count = 1;
    for (uint32_t i = 0; i < ndim; i++)
        count *= dims[i]; /* dims are bounded by U2NET_MAX_CHANNELS: no overflow */
    const uint64_t elem = r->dtype == DTYPE_F16 ? 2 : 4;
    if (nbytes != count * elem || off % 64 != 0 || off > r->data_bytes ||
        nbytes > r->data_bytes - off) {
        set_error(err, U2NET_EFORMAT,
                  "%s: tensor %s: offset %llu, %llu bytes does not fit %llu bytes of data (or is "
                  "misaligned)",
                  r->path, name, (unsigned long long)off, (unsigned long long)nbytes,
                  (unsigned long long)r->data_bytes);
        return -1;
    }
    m->param_count += count;
    const unsigned char *data = (const unsigned char *)m->map + r->data_offset + off;
    *f32 = NULL;
    if (f16)
        *f16 = NULL;
    if (r->dtype == DTYPE_F32) {
        *f32 = (const float *)data;
    } else if (f16 && count > MODEL_F32_MAX_VALUES) {
        *f16 = (const uint16_t *)data;
    } else {
        if (count > m->converted_floats - m->converted_used) {
            set_error(err, U2NET_EFORMAT, "%s: tensor %s: more small tensors than the table listed",
                      r->path, name);
            return -1;
        }
        float *dst = m->converted + m->converted_used;
        half_to_float_n(KERNEL_ISA_PORTABLE, (const uint16_t *)data, dst, count, 1);
        m->converted_used += count;
        *f32 = dst;
    }
    return 0;
}

static int bind_conv(u2net_model *m, tensor_reader *r, const char *prefix, conv_params *c,
                     u2net_error *err)
{
    char name[80];
    const uint32_t wd[4] = {(uint32_t)c->cout, (uint32_t)c->cin, (uint32_t)c->k, (uint32_t)c->k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (bind_tensor(m, r, name, wd, 4, &c->weight, c->k == 3 ? &c->weight_f16 : NULL, err) != 0)
        return -1;
    const uint32_t bd[1] = {(uint32_t)c->cout};
    snprintf(name, sizeof name, "%s.bias", prefix);
    return bind_tensor(m, r, name, bd, 1, &c->bias, NULL, err);
}

/* Binds every convolution in tensor-table order: prelude, stages, sides,
 * fuse; the table must hold exactly those. */
static int bind_all(u2net_model *m, tensor_reader *r, u2net_error *err)
{
    size_t n_convs = 0;
    for (int i = 0; i < m->n_prelude; i++)
        n_convs += m->prelude[i].kind == LAYER_CONV;
    for (int s = 0; s < m->n_stages; s++)
        n_convs += 2 * (size_t)m->stages[s].height;
    n_convs += (size_t)m->n_sides + (size_t)m->has_fuse;
    if (r->count != 2 * n_convs) {
        set_error(err, U2NET_EFORMAT, "%s: %u tensors, the layer table needs %zu", r->path,
                  r->count, 2 * n_convs);
        return -1;
    }
    m->conv_storage = calloc(n_convs, sizeof(conv_params));
    if (!m->conv_storage) {
        set_error(err, U2NET_ENOMEM, "%s: out of memory", r->path);
        return -1;
    }
    char prefix[64];
    for (int i = 0; i < m->n_prelude; i++) {
        if (m->prelude[i].kind != LAYER_CONV)
            continue;
        snprintf(prefix, sizeof prefix, "prelude%d", i + 1);
        if (bind_conv(m, r, prefix, &m->prelude[i].conv, err) != 0)
            return -1;
    }
    conv_params *cp = m->conv_storage;
    for (int s = 0; s < m->n_stages; s++) {
        stage_desc *st = &m->stages[s];
        char sn[24], names[2 * U2NET_MAX_HEIGHT][24];
        st->conv = cp;
        cp += 2 * st->height;
        stage_convs(st, names);
        stage_name(m, s, sn, sizeof sn);
        for (int j = 0; j < 2 * st->height; j++) {
            snprintf(prefix, sizeof prefix, "%.23s.%.23s", sn, names[j]);
            if (bind_conv(m, r, prefix, &st->conv[j], err) != 0)
                return -1;
        }
    }
    for (int j = 0; j < m->n_sides; j++) {
        conv_params *c = &m->sides[j].conv;
        c->k = 3, c->stride = 1, c->dilation = 1;
        snprintf(prefix, sizeof prefix, "side%d", j + 1);
        if (bind_conv(m, r, prefix, c, err) != 0)
            return -1;
    }
    if (m->has_fuse) {
        m->fuse.k = 1, m->fuse.stride = 1, m->fuse.dilation = 1;
        if (bind_conv(m, r, "outconv", &m->fuse, err) != 0)
            return -1;
    }
    return 0;
}

/* A float16 file's float32 space: the biases and small weights its tensor
 * table lists (an entry the binding will refuse counts no more than the
 * data it could hold). */
static int alloc_converted(u2net_model *m, const tensor_reader *r, u2net_error *err)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        const unsigned char *e = r->table + (size_t)i * TENSOR_ENTRY_BYTES;
        const uint32_t ndim = rd32(e + 60);
        uint64_t count = 1;
        for (uint32_t d = 0; d < ndim && d < 4; d++) {
            const uint32_t dim = rd32(e + 64 + 4 * d);
            count = dim > U2NET_MAX_CHANNELS ? r->data_bytes : count * dim;
            if (count > r->data_bytes)
                count = r->data_bytes;
        }
        if (ndim == 1 || count <= MODEL_F32_MAX_VALUES)
            total += count;
    }
    if (total > r->data_bytes / 2)
        total = r->data_bytes / 2;
    m->converted_floats = (size_t)total;
    m->converted = malloc(sizeof(float) * (m->converted_floats ? m->converted_floats : 1));
    if (!m->converted) {
        set_error(err, U2NET_ENOMEM, "%s: out of memory converting float16 weights", r->path);
        return -1;
    }
    return 0;
}

static int parse(u2net_model *m, const char *path, const unsigned char *f, uint64_t size,
                 u2net_error *err)
{
    if (size < HEADER_BYTES) {
        set_error(err, U2NET_EFORMAT, "%s: %s (%llu bytes): not a u2net.c model file", path,
                  size == 0 ? "empty file" : "too short", (unsigned long long)size);
        return -1;
    }
    if (memcmp(f, "U2NC", 4) != 0) {
        set_error(err, U2NET_EFORMAT,
                  "%s: neither a u2net.c model file nor an ONNX model; convert checkpoints with "
                  "tools/convert.py", path);
        return -1;
    }
    const uint32_t version = rd32(f + 4);
    if (version != 1 && version != 2) {
        set_error(err, U2NET_EFORMAT, "%s: model format version %u, this build reads versions 1 and 2",
                  path, version);
        return -1;
    }
    if (crc32_update(0, f, 116) != rd32(f + 116)) {
        set_error(err, U2NET_ECHECKSUM, "%s: header checksum mismatch: the file is corrupted", path);
        return -1;
    }
    const uint64_t file_bytes = rd64(f + 72);
    if (file_bytes != size) {
        set_error(err, U2NET_EFORMAT, "%s: %s: the header says %llu bytes, the file has %llu", path,
                  size < file_bytes ? "truncated" : "trailing bytes",
                  (unsigned long long)file_bytes, (unsigned long long)size);
        return -1;
    }
    if (rd32(f + 8) != HEADER_BYTES || rd32(f + 12) != 0 || rd64(f + 120) != 0) {
        set_error(err, U2NET_EFORMAT, "%s: unexpected header size, flags or reserved bytes", path);
        return -1;
    }
    if (crc32_update(0, f + HEADER_BYTES, size - HEADER_BYTES) != rd32(f + 112)) {
        set_error(err, U2NET_ECHECKSUM, "%s: data checksum mismatch: the file is corrupted", path);
        return -1;
    }
    const uint32_t layer_count = rd32(f + 16), tensor_count = rd32(f + 20), dtype = rd32(f + 24);
    const uint64_t layer_off = rd64(f + 40), tensor_off = rd64(f + 48);
    const uint64_t data_offset = rd64(f + 56), data_bytes = rd64(f + 64);
    m->version = (int)version;
    m->in_channels = (int)rd32(f + 28);
    m->out_channels = (int)rd32(f + 32);
    memcpy(m->name, f + 80, 32);
    m->name[32] = 0;
    if (dtype != DTYPE_F32 && dtype != DTYPE_F16) {
        set_error(err, U2NET_EFORMAT, "%s: unknown dtype %u", path, dtype);
        return -1;
    }
    if (m->in_channels != 3 || m->out_channels != 1) {
        set_error(err, U2NET_EFORMAT, "%s: %d input / %d output channels; the engine runs 3 -> 1",
                  path, m->in_channels, m->out_channels);
        return -1;
    }
    const uint64_t want_layer_off = version == 1 ? HEADER_BYTES : HEADER_BYTES + PROCESSING_BYTES;
    const uint32_t max_layers = version == 1 ? U2NET_MAX_STAGES
                                             : U2NET_MAX_PRELUDE + U2NET_MAX_STAGES + U2NET_MAX_OUTPUTS + 1;
    if (layer_count > max_layers ||
        (version == 1 && (layer_count < 3 || layer_count % 2 == 0 ||
                          (layer_count + 1) / 2 + 1 > U2NET_MAX_OUTPUTS))) {
        if (version == 1)
            set_error(err, U2NET_EFORMAT, "%s: stage count %u (must be odd, 3..%d)", path,
                      layer_count, 2 * (U2NET_MAX_OUTPUTS - 1) - 1);
        else
            set_error(err, U2NET_EFORMAT, "%s: %u layers (at most %u)", path, layer_count,
                      max_layers);
        return -1;
    }
    if (layer_off != want_layer_off || (uint64_t)layer_count * LAYER_ENTRY_BYTES > size - layer_off ||
        tensor_off < layer_off + (uint64_t)layer_count * LAYER_ENTRY_BYTES || tensor_off > size ||
        (uint64_t)tensor_count * TENSOR_ENTRY_BYTES > size - tensor_off ||
        data_offset % 64 != 0 || data_offset > size || data_bytes != size - data_offset) {
        set_error(err, U2NET_EFORMAT, "%s: table or data offsets lie outside the file", path);
        return -1;
    }
    if (version == 1) {
        u2net_processing_at(m, (int)rd32(f + 36));
        if (read_stage_table(m, path, f + layer_off, layer_count, err) != 0)
            return -1;
    } else {
        m->prediction = (int)rd32(f + 36);
        if (read_processing(m, path, f + HEADER_BYTES, err) != 0 ||
            read_layer_table(m, path, f + layer_off, layer_count, err) != 0)
            return -1;
    }
    if (check_prelude(m, path, err) != 0 || check_stages(m, path, err) != 0 ||
        check_outputs(m, path, err) != 0)
        return -1;
    tensor_reader r = {path, f + tensor_off, tensor_count, 0, dtype, data_offset, data_bytes};
    if (dtype == DTYPE_F16 && alloc_converted(m, &r, err) != 0)
        return -1;
    return bind_all(m, &r, err);
}

/* The built-in model: its linked-in bytes are the map. */
static u2net_model *load_builtin(u2net_model *m, u2net_error *err)
{
    size_t size;
    const unsigned char *bytes = builtin_model(&size);
    if (!bytes) {
        set_error(err, U2NET_EIO, "%s: this library was built without the built-in model "
                  "(make BUILTIN_MODEL=0)", U2NET_BUILTIN_MODEL);
        free(m);
        return NULL;
    }
    m->map = (void *)bytes, m->map_bytes = size, m->map_kind = MODEL_BUILTIN;
    if (parse(m, U2NET_BUILTIN_MODEL, bytes, size, err) != 0) {
        u2net_model_free(m);
        return NULL;
    }
    return m;
}

int u2net_has_builtin_model(void)
{
    size_t size;
    return builtin_model(&size) != NULL;
}

u2net_model *u2net_model_load(const char *path, u2net_error *err)
{
    if (err)
        err->code = 0, err->msg[0] = 0;
    u2net_model *m = calloc(1, sizeof *m);
    if (!m) {
        set_error(err, U2NET_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (!strcmp(path, U2NET_BUILTIN_MODEL))
        return load_builtin(m, err);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_error(err, U2NET_EIO, "%s: cannot open model: %s", path, strerror(errno));
        free(m);
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_error(err, U2NET_EIO, "%s: not a regular file", path);
        close(fd);
        free(m);
        return NULL;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size > U2NET_MAX_FILE_BYTES) {
        set_error(err, U2NET_EFORMAT, "%s: %llu bytes is larger than any model (limit %llu)", path,
                  (unsigned long long)size, (unsigned long long)U2NET_MAX_FILE_BYTES);
        close(fd);
        free(m);
        return NULL;
    }
    if (size > 0) {
        m->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m->map == MAP_FAILED) {
            set_error(err, U2NET_EIO, "%s: cannot map model: %s", path, strerror(errno));
            m->map = NULL;
            close(fd);
            free(m);
            return NULL;
        }
        m->map_bytes = size;
    }
    close(fd);
    /* an ONNX file becomes the model file the converter would make of it */
    if ((size < 4 || memcmp(m->map, "U2NC", 4) != 0) && onnx_sniff(m->map, size)) {
        unsigned char *image;
        size_t image_bytes;
        const int rc = onnx_model_image(path, m->map, size, &image, &image_bytes, err);
        munmap(m->map, m->map_bytes);
        m->map = NULL;
        if (rc != 0) {
            free(m);
            return NULL;
        }
        m->map = image, m->map_bytes = size = image_bytes, m->map_kind = MODEL_HEAP;
    }
    if (parse(m, path, m->map, size, err) != 0) {
        u2net_model_free(m);
        return NULL;
    }
    return m;
}

void u2net_model_free(u2net_model *m)
{
    if (!m)
        return;
    if (m->map && m->map_kind == MODEL_MAPPED)
        munmap(m->map, m->map_bytes);
    else if (m->map_kind == MODEL_HEAP)
        free(m->map);
    free(m->converted);
    free(m->conv_storage);
    free(m);
}

static const char *architecture(const u2net_model *m)
{
    if (m->n_prelude == 0 && m->has_fuse)
        return "U2Net";
    if (m->n_prelude == 1 && m->prelude[0].kind == LAYER_CONV && m->prelude[0].conv.stride == 2 &&
        !m->has_fuse)
        return "ISNet";
    return "RSU network";
}

void u2net_model_get_info(const u2net_model *m, u2net_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->name = m->name;
    info->architecture = architecture(m);
    info->format_version = m->version;
    info->params = m->param_count;
    info->outputs = model_output_count(m);
    info->prediction = m->prediction;
    info->processing = m->processing;
    info->file_bytes = m->map_bytes;
}

const char *u2net_model_name(const u2net_model *m) { return m->name; }
int u2net_model_default_size(const u2net_model *m) { return m->processing.width; }
int u2net_model_output_count(const u2net_model *m) { return model_output_count(m); }
size_t u2net_model_param_count(const u2net_model *m) { return m->param_count; }
