/* model.c - loading a model file (docs/FORMAT.md): mmap, check every field,
 * bind each convolution's weights. A file that fails any check is refused
 * with one line naming the file and the problem. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

enum {
    HEADER_BYTES = 128,
    STAGE_ENTRY_BYTES = 32,
    TENSOR_ENTRY_BYTES = 96,
    TENSOR_NAME_BYTES = 56,
    FORMAT_VERSION = 1,
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

static float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
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

/* Fills in cin/cout/k/dilation of a stage's 2L convolutions and their names
 * ("rebnconvin", "rebnconv3", "rebnconv2d"). */
static void stage_convs(const stage_desc *st, char names[][24])
{
    const int L = st->height, f = st->kind == STAGE_RSU_F;
    for (int j = 0; j < 2 * L; j++) {
        conv_params *c = &st->conv[j];
        c->k = 3;
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

/* Checks the stage table's structure and channel chaining. */
static int check_stages(const u2net_model *m, const char *path, u2net_error *err)
{
    const int n = m->n_levels;
    for (int s = 0; s < m->n_stages; s++) {
        const stage_desc *st = &m->stages[s];
        char sn[24];
        stage_name(m, s, sn, sizeof sn);
        if (st->kind != STAGE_RSU && st->kind != STAGE_RSU_F) {
            set_error(err, U2NET_EFORMAT, "%s: %s has unknown kind %u", path, sn, (unsigned)st->kind);
            return -1;
        }
        const int max_h = st->kind == STAGE_RSU_F ? 8 : U2NET_MAX_HEIGHT;
        if (st->height < 2 || st->height > max_h) {
            set_error(err, U2NET_EFORMAT, "%s: %s has height %u (allowed 2..%d)", path, sn,
                      (unsigned)st->height, max_h);
            return -1;
        }
        if (st->in_ch < 1 || st->in_ch > U2NET_MAX_CHANNELS || st->mid_ch < 1 ||
            st->mid_ch > U2NET_MAX_CHANNELS || st->out_ch < 1 || st->out_ch > U2NET_MAX_CHANNELS) {
            set_error(err, U2NET_EFORMAT, "%s: %s has channels %u/%u/%u outside 1..%d", path, sn,
                      (unsigned)st->in_ch, (unsigned)st->mid_ch, (unsigned)st->out_ch,
                      U2NET_MAX_CHANNELS);
            return -1;
        }
        if (st->role != (s < n ? ROLE_ENCODER : ROLE_DECODER)) {
            set_error(err, U2NET_EFORMAT, "%s: %s should be %s (the table lists %d encoders then %d decoders)",
                      path, sn, s < n ? "an encoder" : "a decoder", n, n - 1);
            return -1;
        }
        int want;
        if (s == 0)
            want = m->in_channels;
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

/* Checks one tensor table entry against the expected name and shape, and
 * returns its data (float32, in the map or the converted copy). */
static const float *bind_tensor(u2net_model *m, const char *path, const unsigned char *e,
                                const char *name, const uint32_t *dims, uint32_t ndim,
                                uint32_t dtype, uint64_t data_offset, uint64_t data_bytes,
                                u2net_error *err)
{
    char got[TENSOR_NAME_BYTES + 1];
    memcpy(got, e, TENSOR_NAME_BYTES);
    got[TENSOR_NAME_BYTES] = 0;
    if (memchr(e, 0, TENSOR_NAME_BYTES) == NULL || strcmp(got, name) != 0) {
        set_error(err, U2NET_EFORMAT, "%s: tensor table has '%s' where '%s' belongs", path, got, name);
        return NULL;
    }
    const uint32_t t_dtype = rd32(e + 56), t_ndim = rd32(e + 60);
    uint32_t t_dims[4];
    for (int i = 0; i < 4; i++)
        t_dims[i] = rd32(e + 64 + 4 * i);
    const uint64_t off = rd64(e + 80), nbytes = rd64(e + 88);
    if (t_dtype != dtype) {
        set_error(err, U2NET_EFORMAT, "%s: tensor %s has dtype %u, the header says %u", path, name,
                  t_dtype, dtype);
        return NULL;
    }
    int shape_ok = t_ndim == ndim;
    for (uint32_t i = 0; i < 4; i++)
        shape_ok = shape_ok && t_dims[i] == (i < ndim ? dims[i] : 0);
    if (!shape_ok) {
        char got_s[64], want_s[64];
        format_shape(got_s, sizeof got_s, t_dims, t_ndim);
        format_shape(want_s, sizeof want_s, dims, ndim);
        set_error(err, U2NET_EFORMAT, "%s: tensor %s has shape %s, the stage table needs %s", path,
                  name, got_s, want_s);
        return NULL;
    }
    uint64_t count = 1;
    for (uint32_t i = 0; i < ndim; i++)
        count *= dims[i]; /* dims are bounded by U2NET_MAX_CHANNELS: no overflow */
    const uint64_t elem = dtype == DTYPE_F16 ? 2 : 4;
    if (nbytes != count * elem || off % 64 != 0 || off > data_bytes || nbytes > data_bytes - off) {
        set_error(err, U2NET_EFORMAT,
                  "%s: tensor %s: offset %llu, %llu bytes does not fit %llu bytes of data (or is misaligned)",
                  path, name, (unsigned long long)off, (unsigned long long)nbytes,
                  (unsigned long long)data_bytes);
        return NULL;
    }
    m->param_count += count;
    if (dtype == DTYPE_F16)
        return m->converted + off / 2;
    return (const float *)((const unsigned char *)m->map + data_offset + off);
}

static int bind_conv(u2net_model *m, const char *path, const unsigned char *table,
                     uint32_t tensor_count, uint32_t *next, const char *prefix, conv_params *c,
                     uint32_t dtype, uint64_t data_offset, uint64_t data_bytes, u2net_error *err)
{
    if (*next + 2 > tensor_count) {
        set_error(err, U2NET_EFORMAT, "%s: tensor table ends before %s", path, prefix);
        return -1;
    }
    char name[80];
    const uint32_t wd[4] = {(uint32_t)c->cout, (uint32_t)c->cin, (uint32_t)c->k, (uint32_t)c->k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    c->weight = bind_tensor(m, path, table + (size_t)*next * TENSOR_ENTRY_BYTES, name, wd, 4, dtype,
                            data_offset, data_bytes, err);
    if (!c->weight)
        return -1;
    const uint32_t bd[1] = {(uint32_t)c->cout};
    snprintf(name, sizeof name, "%s.bias", prefix);
    c->bias = bind_tensor(m, path, table + (size_t)(*next + 1) * TENSOR_ENTRY_BYTES, name, bd, 1,
                          dtype, data_offset, data_bytes, err);
    if (!c->bias)
        return -1;
    *next += 2;
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
                  "%s: not a u2net.c model file (bad magic); convert checkpoints with tools/convert.py", path);
        return -1;
    }
    const uint32_t version = rd32(f + 4);
    if (version != FORMAT_VERSION) {
        set_error(err, U2NET_EFORMAT, "%s: model format version %u, this build reads version %d",
                  path, version, FORMAT_VERSION);
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
    if (rd32(f + 8) != HEADER_BYTES || rd32(f + 12) != 0) {
        set_error(err, U2NET_EFORMAT, "%s: unexpected header size or flags", path);
        return -1;
    }
    if (crc32_update(0, f + HEADER_BYTES, size - HEADER_BYTES) != rd32(f + 112)) {
        set_error(err, U2NET_ECHECKSUM, "%s: data checksum mismatch: the file is corrupted", path);
        return -1;
    }
    const uint32_t stage_count = rd32(f + 16), tensor_count = rd32(f + 20), dtype = rd32(f + 24);
    const uint64_t stage_off = rd64(f + 40), tensor_off = rd64(f + 48);
    const uint64_t data_offset = rd64(f + 56), data_bytes = rd64(f + 64);
    m->in_channels = (int)rd32(f + 28);
    m->out_channels = (int)rd32(f + 32);
    m->default_size = (int)rd32(f + 36);
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
    if (m->default_size < 1 || m->default_size > U2NET_MAX_SIDE)
        m->default_size = 320;
    if (stage_count < 3 || stage_count > U2NET_MAX_STAGES || stage_count % 2 == 0 ||
        (stage_count + 1) / 2 + 1 > U2NET_MAX_OUTPUTS) {
        /* n levels give n + 1 outputs */
        set_error(err, U2NET_EFORMAT, "%s: stage count %u (must be odd, 3..%d)", path, stage_count,
                  2 * (U2NET_MAX_OUTPUTS - 1) - 1);
        return -1;
    }
    if (stage_off < HEADER_BYTES || stage_off > size ||
        (uint64_t)stage_count * STAGE_ENTRY_BYTES > size - stage_off ||
        tensor_off < HEADER_BYTES || tensor_off > size ||
        (uint64_t)tensor_count * TENSOR_ENTRY_BYTES > size - tensor_off ||
        data_offset % 64 != 0 || data_offset > size || data_bytes != size - data_offset) {
        set_error(err, U2NET_EFORMAT, "%s: table or data offsets lie outside the file", path);
        return -1;
    }
    m->n_stages = (int)stage_count;
    m->n_levels = ((int)stage_count + 1) / 2;
    size_t n_convs = 0;
    for (int s = 0; s < m->n_stages; s++) {
        const unsigned char *e = f + stage_off + (size_t)s * STAGE_ENTRY_BYTES;
        stage_desc *st = &m->stages[s];
        st->kind = (int)rd32(e);
        st->height = (int)rd32(e + 4);
        st->in_ch = (int)rd32(e + 8);
        st->mid_ch = (int)rd32(e + 12);
        st->out_ch = (int)rd32(e + 16);
        st->role = (int)rd32(e + 20);
        /* rd32 values above INT_MAX become negative and fail the range checks */
    }
    if (check_stages(m, path, err) != 0)
        return -1;
    for (int s = 0; s < m->n_stages; s++)
        n_convs += 2 * (size_t)m->stages[s].height;
    const uint64_t want_tensors = 2 * ((uint64_t)n_convs + m->n_levels + 1);
    if (tensor_count != want_tensors) {
        set_error(err, U2NET_EFORMAT, "%s: %u tensors, the stage table needs %llu", path,
                  tensor_count, (unsigned long long)want_tensors);
        return -1;
    }
    m->conv_storage = calloc(n_convs, sizeof(conv_params));
    if (!m->conv_storage) {
        set_error(err, U2NET_ENOMEM, "%s: out of memory", path);
        return -1;
    }
    if (dtype == DTYPE_F16) {
        m->converted = malloc(data_bytes / 2 * sizeof(float) + sizeof(float));
        if (!m->converted) {
            set_error(err, U2NET_ENOMEM, "%s: out of memory converting float16 weights", path);
            return -1;
        }
        const unsigned char *d = f + data_offset;
        for (uint64_t i = 0; i < data_bytes / 2; i++)
            m->converted[i] = half_to_float((uint16_t)(d[2 * i] | d[2 * i + 1] << 8));
    }
    const unsigned char *table = f + tensor_off;
    uint32_t next = 0;
    conv_params *cp = m->conv_storage;
    for (int s = 0; s < m->n_stages; s++) {
        stage_desc *st = &m->stages[s];
        char sn[24], names[2 * U2NET_MAX_HEIGHT][24], prefix[64];
        st->conv = cp;
        cp += 2 * st->height;
        stage_convs(st, names);
        stage_name(m, s, sn, sizeof sn);
        for (int j = 0; j < 2 * st->height; j++) {
            snprintf(prefix, sizeof prefix, "%s.%s", sn, names[j]);
            if (bind_conv(m, path, table, tensor_count, &next, prefix, &st->conv[j], dtype,
                          data_offset, data_bytes, err) != 0)
                return -1;
        }
    }
    const int n = m->n_levels;
    for (int k = 1; k <= n; k++) {
        conv_params *c = &m->side[k - 1];
        /* side k reads decoder k (stage index 2n-1-k), side n reads encoder n */
        c->cin = k < n ? m->stages[2 * n - 1 - k].out_ch : m->stages[n - 1].out_ch;
        c->cout = m->out_channels, c->k = 3, c->dilation = 1;
        char prefix[24];
        snprintf(prefix, sizeof prefix, "side%d", k);
        if (bind_conv(m, path, table, tensor_count, &next, prefix, c, dtype, data_offset,
                      data_bytes, err) != 0)
            return -1;
    }
    m->fuse.cin = n * m->out_channels, m->fuse.cout = m->out_channels;
    m->fuse.k = 1, m->fuse.dilation = 1;
    return bind_conv(m, path, table, tensor_count, &next, "outconv", &m->fuse, dtype, data_offset,
                     data_bytes, err);
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
    const uint64_t size = (uint64_t)sb.st_size;
    if (size > U2NET_MAX_FILE_BYTES) {
        set_error(err, U2NET_EFORMAT, "%s: %llu bytes is larger than any model (limit %llu)", path,
                  (unsigned long long)size, (unsigned long long)U2NET_MAX_FILE_BYTES);
        close(fd);
        free(m);
        return NULL;
    }
    if (size >= HEADER_BYTES) {
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
    if (m->map)
        munmap(m->map, m->map_bytes);
    free(m->converted);
    free(m->conv_storage);
    free(m);
}

const char *u2net_model_name(const u2net_model *m) { return m->name; }
int u2net_model_default_size(const u2net_model *m) { return m->default_size; }
int u2net_model_output_count(const u2net_model *m) { return m->n_levels + 1; }
size_t u2net_model_param_count(const u2net_model *m) { return m->param_count; }
