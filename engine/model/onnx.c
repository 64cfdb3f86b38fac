/* onnx.c - an ONNX export of a U2Net-family network (U2Net, U2NetP,
 * u2net_human_seg, silueta, ISNet, RMBG-1.4; float32 or float16; Conv +
 * BatchNormalization or folded) read into the version-2 model file that
 * tools/convert.py writes from it (onnx.h).
 *
 * The network is found in the graph as the converter finds it (its
 * describe_onnx and the helpers around it, which this file follows step by
 * step): the stages are the residual blocks, an Add of two convolutions'
 * outputs (through Relu, BatchNormalization, Cast, Identity), in graph
 * order; a stage's convolutions are everything its last one depends on back
 * to its first; RSU-F or RSU-L from rebnconv2's dilation; the prelude is
 * what lies between the graph input and stage 1; a side output is a 3x3
 * convolution reading a stage's Add, the fuse convolution the 1x1 one. The
 * shapes then give the channels, so other networks of the family (silueta,
 * retrained ones) need nothing here. BatchNorm is folded in double and
 * rounded to float32 once, as the converter's fold_bn does, so the two
 * paths give the same bits. Anything unexpected is one line naming the file
 * and the node. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "onnx.h"
#include "protobuf.h"

/* fold_bn's arithmetic is the converter's, one rounding per operation: no
 * fused multiply-adds (GCC contracts none in ISO C mode, -std=c11) */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* ONNX TensorProto.DataType values this file names. */
enum {
    ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT8 = 3, ONNX_UINT16 = 4, ONNX_INT16 = 5,
    ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_BOOL = 9, ONNX_FLOAT16 = 10, ONNX_DOUBLE = 11,
    ONNX_UINT32 = 12, ONNX_UINT64 = 13, ONNX_BFLOAT16 = 16
};

/* Field numbers of the ONNX messages read here (onnx.proto). */
enum { MODEL_GRAPH = 7 };
enum { GRAPH_NODE = 1, GRAPH_INITIALIZER = 5, GRAPH_SPARSE_INITIALIZER = 15 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTRIBUTE = 5,
       NODE_DOMAIN = 7 };
enum { ATTR_NAME = 1, ATTR_FLOAT = 2, ATTR_INT = 3, ATTR_TENSOR = 5, ATTR_INTS = 8 };
enum { TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_FLOATS = 4, TENSOR_INT32S = 5,
       TENSOR_INT64S = 7, TENSOR_NAME = 8, TENSOR_RAW = 9, TENSOR_DOUBLES = 10,
       TENSOR_EXTERNAL = 13, TENSOR_LOCATION = 14 };

#define MAX_DIMS 8        /* kept of a tensor's dims; more only make it no weight */
#define LABEL_BYTES 100   /* a name as a message shows it */

/* The file's names (of tensors) as numbers: every input and output of
 * every node and every initializer's name. */
typedef struct {
    pb_bytes *names;
    int count, cap;
    int *slots;          /* open addressing: name id + 1, 0 when empty */
    size_t slot_count;   /* a power of two, at least twice count */
} name_table;

typedef struct {
    pb_bytes name;
    pb_bytes message;    /* the AttributeProto */
} node_attr;

typedef struct {
    int index;
    pb_bytes name, op, domain;
    int *inputs, *outputs;  /* name ids */
    int n_inputs, n_outputs;
    node_attr *attrs;
    int n_attrs;
} onnx_node;

/* A list of integers from an attribute, as the comparisons below need it. */
typedef struct {
    int present;         /* the attribute exists */
    size_t count;
    int64_t v[4];        /* the first four */
    int all_equal, any_nonzero;
} int_list;

/* How a tensor's elements are stored (little-endian), and so what numpy
 * type the converter gives it: float16 stays float16; bfloat16 becomes
 * float32 (its bits shifted up); float32 and float64 stay. */
enum { STORE_F16, STORE_BF16, STORE_F32, STORE_F64 };
enum { KIND_F16, KIND_F32, KIND_F64 };

typedef struct {
    int store, kind;
    int ndim;                 /* may exceed MAX_DIMS */
    int64_t dims[MAX_DIMS];
    size_t count;
    const unsigned char *data;
} tensor_value;

/* A Conv node with its constant weights and the BatchNormalization folded
 * into it, if any. */
typedef struct {
    int node;
    int weight_name;                  /* name id of its weight input */
    const tensor_value *w, *b;        /* b NULL: no bias */
    int bn;                           /* node index, or -1 */
    const tensor_value *gamma, *beta, *mean, *var;
    double eps;
    int_list dil, pads, strides;
} conv_rec;

typedef struct {
    const char *path;
    u2net_error *err;
    int n_nodes;
    onnx_node *nodes;
    name_table names;
    int *producer;            /* per name: the last node writing it, or -1 */
    int *consumer_start;      /* per name + 1: where its readers start in consumers */
    int *consumers;           /* node indices, one per reading input */
    size_t n_inputs;          /* inputs of all nodes, empty ones too */
    pb_bytes *initializer;    /* per name: the TensorProto, data NULL when none */
    tensor_value **constant;  /* per name: the value const_value found, once found */
    int *conv_of_node;        /* per node: index into convs, or -1 */
    conv_rec *convs;
    int n_convs;
    int *seen;                /* per name: the block that last visited it */
    int *expanded;            /* per node: the block that last followed its inputs */
    void **owned;             /* every allocation made for values */
    size_t n_owned, cap_owned;
} onnx_graph;

/* ---- messages ---- */

/* s as a message shows it: printable ASCII, other bytes '?', cut short. */
static const char *show(char *buf, pb_bytes s)
{
    size_t n = s.len < LABEL_BYTES - 4 ? s.len : LABEL_BYTES - 4;
    for (size_t i = 0; i < n; i++)
        buf[i] = s.data[i] >= 0x20 && s.data[i] < 0x7f ? (char)s.data[i] : '?';
    if (n < s.len)
        memcpy(buf + n, "...", 3), n += 3;
    buf[n] = 0;
    return buf;
}

static int fail(onnx_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(onnx_graph *g, const char *fmt, ...)
{
    char msg[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(g->err, U2NET_EFORMAT, "%s: %s", g->path, msg);
    return -1;
}

static int out_of_memory(onnx_graph *g)
{
    set_error(g->err, U2NET_ENOMEM, "%s: out of memory reading the ONNX model", g->path);
    return -1;
}

/* "Conv node /stage1/rebnconvin/conv_s1/Conv", or "Conv node #12" when the
 * node has no name, as the converter labels nodes. */
typedef char label_buf[2 * LABEL_BYTES + 8];
static const char *label(label_buf buf, const onnx_node *n)
{
    char op[LABEL_BYTES], name[LABEL_BYTES];
    show(op, n->op);
    if (n->name.len)
        snprintf(buf, sizeof(label_buf), "%s node %s", op, show(name, n->name));
    else
        snprintf(buf, sizeof(label_buf), "%s node #%d", op, n->index);
    return buf;
}

static const char *tensor_name(const onnx_graph *g, char *buf, int id)
{
    return show(buf, g->names.names[id]);
}

static int is(pb_bytes s, const char *text)
{
    const size_t n = strlen(text);
    return s.len == n && memcmp(s.data, text, n) == 0;
}

/* ---- names ---- */

static size_t name_hash(pb_bytes s)
{
    uint64_t h = 0xCBF29CE484222325u;  /* FNV-1a */
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ s.data[i]) * 0x100000001B3u;
    return (size_t)(h ^ h >> 29);
}

static int same_name(pb_bytes a, pb_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* The id of a name, added when new; -1 when out of memory. */
static int name_id(name_table *t, pb_bytes s)
{
    if ((size_t)(t->count + 1) * 2 > t->slot_count) {
        if (t->count >= INT_MAX / 4)
            return -1;
        const size_t cap = t->slot_count ? t->slot_count * 2 : 256;
        int *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (int id = 0; id < t->count; id++) {
            size_t i = name_hash(t->names[id]) & (cap - 1);
            while (slots[i])
                i = (i + 1) & (cap - 1);
            slots[i] = id + 1;
        }
        free(t->slots);
        t->slots = slots, t->slot_count = cap;
    }
    size_t i = name_hash(s) & (t->slot_count - 1);
    for (; t->slots[i]; i = (i + 1) & (t->slot_count - 1))
        if (same_name(t->names[t->slots[i] - 1], s))
            return t->slots[i] - 1;
    if (t->count == t->cap) {
        const int cap = t->cap ? t->cap * 2 : 256;
        pb_bytes *names = realloc(t->names, (size_t)cap * sizeof *names);
        if (!names)
            return -1;
        t->names = names, t->cap = cap;
    }
    t->names[t->count] = s;
    t->slots[i] = t->count + 1;
    return t->count++;
}

/* ---- reading the messages ---- */

/* A malformed message: what the reader found, in which message. */
static int corrupt(onnx_graph *g, const pb_reader *r, const char *where)
{
    return fail(g, "truncated or corrupt ONNX model: %s (in %s)", r->error, where);
}

static int wrong_type(onnx_graph *g, const char *field, const char *where)
{
    return fail(g, "corrupt ONNX model: %s has the wrong wire type (in %s)", field, where);
}

static void *remember(onnx_graph *g, void *p)
{
    if (!p)
        return NULL;
    if (g->n_owned == g->cap_owned) {
        const size_t cap = g->cap_owned ? g->cap_owned * 2 : 64;
        void **owned = realloc(g->owned, cap * sizeof *owned);
        if (!owned) {
            free(p);
            return NULL;
        }
        g->owned = owned, g->cap_owned = cap;
    }
    return g->owned[g->n_owned++] = p;
}

/* Counts the fields number of a message of wire type PB_BYTES; -1 when it
 * is malformed or one has another wire type. */
static int count_strings(onnx_graph *g, pb_bytes msg, uint64_t number, const char *what,
                         const char *where, int *count)
{
    pb_reader r;
    pb_field f;
    int rc;
    *count = 0;
    pb_reader_init(&r, msg);
    while ((rc = pb_next(&r, &f)) == 1)
        if (f.number == number) {
            if (f.wire != PB_BYTES)
                return wrong_type(g, what, where);
            if (*count == INT_MAX)
                return fail(g, "too many %ss (in %s)", what, where);
            (*count)++;
        }
    return rc < 0 ? corrupt(g, &r, where) : 0;
}

/* A NodeProto: its strings and attributes. */
static int read_node(onnx_graph *g, onnx_node *n, pb_bytes msg)
{
    char where[48];
    snprintf(where, sizeof where, "node #%d", n->index);
    if (count_strings(g, msg, NODE_INPUT, "input", where, &n->n_inputs) != 0 ||
        count_strings(g, msg, NODE_OUTPUT, "output", where, &n->n_outputs) != 0 ||
        count_strings(g, msg, NODE_ATTRIBUTE, "attribute", where, &n->n_attrs) != 0)
        return -1;
    n->inputs = remember(g, malloc(sizeof(int) * (size_t)(n->n_inputs + 1)));
    n->outputs = remember(g, malloc(sizeof(int) * (size_t)(n->n_outputs + 1)));
    n->attrs = remember(g, calloc((size_t)n->n_attrs + 1, sizeof *n->attrs));
    if (!n->inputs || !n->outputs || !n->attrs)
        return out_of_memory(g);
    pb_reader r;
    pb_field f;
    int ni = 0, no = 0, na = 0;
    pb_reader_init(&r, msg);
    while (pb_next(&r, &f) == 1) {
        if (f.number == NODE_INPUT || f.number == NODE_OUTPUT) {
            const int id = name_id(&g->names, f.bytes);
            if (id < 0)
                return out_of_memory(g);
            if (f.number == NODE_INPUT)
                n->inputs[ni++] = id;
            else
                n->outputs[no++] = id;
        } else if (f.number == NODE_NAME || f.number == NODE_OP || f.number == NODE_DOMAIN) {
            if (f.wire != PB_BYTES)
                return wrong_type(g, f.number == NODE_NAME ? "name" : f.number == NODE_OP
                                  ? "op_type" : "domain", where);
            *(f.number == NODE_NAME ? &n->name : f.number == NODE_OP ? &n->op : &n->domain) =
                f.bytes;
        } else if (f.number == NODE_ATTRIBUTE) {
            node_attr *a = &n->attrs[na++];
            a->message = f.bytes;
            pb_reader ar;
            pb_field af;
            int rc;
            pb_reader_init(&ar, f.bytes);
            while ((rc = pb_next(&ar, &af)) == 1)
                if (af.number == ATTR_NAME) {
                    if (af.wire != PB_BYTES)
                        return wrong_type(g, "an attribute's name", where);
                    a->name = af.bytes;
                }
            if (rc < 0)
                return corrupt(g, &ar, where);
        }
    }
    return 0;
}

/* The last field `number` of a message, or none (0). */
static int last_field(pb_bytes msg, uint64_t number, pb_field *out)
{
    pb_reader r;
    pb_field f;
    int found = 0;
    pb_reader_init(&r, msg);
    while (pb_next(&r, &f) == 1)
        if (f.number == number)
            *out = f, found = 1;
    return found;
}

/* The attribute called name (the last one, as a dict keeps it), or NULL. */
static const node_attr *attr(const onnx_node *n, const char *name)
{
    for (int i = n->n_attrs - 1; i >= 0; i--)
        if (is(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

/* An integer attribute, or def when it or its value is missing. */
static int attr_int(onnx_graph *g, const onnx_node *n, const char *name, int64_t def,
                    int64_t *out)
{
    const node_attr *a = attr(n, name);
    pb_field f;
    *out = def;
    if (!a || !last_field(a->message, ATTR_INT, &f))
        return 0;
    if (f.wire != PB_VARINT) {
        label_buf lb;
        return fail(g, "%s: attribute %s is not an integer", label(lb, n), name);
    }
    *out = (int64_t)f.varint;
    return 0;
}

static int attr_float(onnx_graph *g, const onnx_node *n, const char *name, float def,
                      float *out)
{
    const node_attr *a = attr(n, name);
    pb_field f;
    *out = def;
    if (!a || !last_field(a->message, ATTR_FLOAT, &f))
        return 0;
    if (f.wire != PB_FIXED32) {
        label_buf lb;
        return fail(g, "%s: attribute %s is not a float", label(lb, n), name);
    }
    const uint32_t bits = pb_le32(f.bytes.data);
    memcpy(out, &bits, sizeof *out);
    return 0;
}

static void list_add(int_list *l, int64_t v)
{
    if (l->count < 4)
        l->v[l->count] = v;
    l->all_equal = l->count == 0 || (l->all_equal && v == l->v[0]);
    l->any_nonzero |= v != 0;
    l->count++;
}

/* The integers of a repeated field of a message, packed or not, one at a
 * time (the converter's _pb_ints). */
typedef struct {
    pb_reader r;
    uint64_t number;
    const unsigned char *at, *end;   /* the packed run being read */
} int_iter;

static void int_iter_init(int_iter *it, pb_bytes msg, uint64_t number)
{
    pb_reader_init(&it->r, msg);
    it->number = number;
    it->at = it->end = NULL;
}

/* 1 with *v the next integer, 0 at the end, -1 when malformed (*why says
 * how). */
static int int_iter_next(int_iter *it, int64_t *v, const char **why)
{
    for (;;) {
        uint64_t u;
        if (it->at < it->end) {
            if (pb_read_varint(&it->at, it->end, &u) != 0) {
                *why = "packed integers are truncated";
                return -1;
            }
            *v = (int64_t)u;
            return 1;
        }
        pb_field f;
        const int rc = pb_next(&it->r, &f);
        if (rc <= 0) {
            *why = it->r.error;
            return rc;
        }
        if (f.number != it->number)
            continue;
        if (f.wire == PB_VARINT) {
            *v = (int64_t)f.varint;
            return 1;
        }
        if (f.wire != PB_BYTES) {
            *why = "an integer list has the wrong wire type";
            return -1;
        }
        it->at = f.bytes.data, it->end = f.bytes.data + f.bytes.len;
    }
}

/* The integers of a repeated field into l (what names the message). */
static int read_ints(onnx_graph *g, pb_bytes msg, uint64_t number, int_list *l,
                     const char *what)
{
    int_iter it;
    int64_t v;
    const char *why = NULL;
    int rc;
    int_iter_init(&it, msg, number);
    while ((rc = int_iter_next(&it, &v, &why)) == 1)
        list_add(l, v);
    if (rc < 0)
        return fail(g, "truncated or corrupt ONNX model: %s (in %s)", why, what);
    return 0;
}

/* An integer-list attribute: l->present is 0 when it is missing. */
static int attr_ints(onnx_graph *g, const onnx_node *n, const char *name, int_list *l)
{
    memset(l, 0, sizeof *l);
    const node_attr *a = attr(n, name);
    if (!a)
        return 0;
    l->present = 1;
    label_buf lb;
    return read_ints(g, a->message, ATTR_INTS, l, label(lb, n));
}

/* attr_ints with the converter's `or default`: missing or empty gives
 * `count` copies of def. */
static int attr_ints_or(onnx_graph *g, const onnx_node *n, const char *name, size_t count,
                        int64_t def, int_list *l)
{
    if (attr_ints(g, n, name, l) != 0)
        return -1;
    if (l->count == 0) {
        memset(l, 0, sizeof *l);
        for (size_t i = 0; i < count; i++)
            list_add(l, def);
    }
    return 0;
}

/* Whether l is exactly count copies of v. */
static int list_is(const int_list *l, size_t count, int64_t v)
{
    return l->count == count && (count == 0 || (l->all_equal && l->v[0] == v));
}

static const char *format_list(char *buf, size_t n, const int_list *l)
{
    size_t at = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < l->count && i < 4 && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? ", " : "", (long long)l->v[i]);
    if (at < n)
        snprintf(buf + at, n - at, "%s]", l->count > 4 ? ", ..." : "");
    return buf;
}

/* ---- tensors ---- */

static const char *format_dims(char *buf, size_t n, const tensor_value *v)
{
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < v->ndim && i < MAX_DIMS && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? ", " : "", (long long)v->dims[i]);
    if (at < n)
        snprintf(buf + at, n - at, "%s]", v->ndim > MAX_DIMS ? ", ..." : "");
    return buf;
}

static double half_bits_to_double(uint16_t h)
{
    const int e = h >> 10 & 0x1f, mant = h & 0x3ff;
    double v;
    if (e == 0x1f)
        v = mant ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(mant, -24);
    else
        v = ldexp(mant + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

/* Element i, exactly (every stored type is exact in double). */
static double value_at(const tensor_value *v, size_t i)
{
    const unsigned char *p = v->data;
    switch (v->store) {
    case STORE_F16:
        return half_bits_to_double((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    case STORE_BF16: {
        const uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    case STORE_F32: {
        const uint32_t bits = pb_le32(p + 4 * i);
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    default: {
        const uint64_t bits = pb_le64(p + 8 * i);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    }
}

/* float16 bits nearest to d, ties to even (numpy's astype(float16)). */
static uint16_t double_to_half(double d)
{
    const uint16_t sign = signbit(d) ? 0x8000 : 0;
    const double a = fabs(d);
    if (isnan(d))
        return sign | 0x7e00;
    if (a >= 65520.0)  /* half way from 65504 to 2^16 and beyond */
        return sign | 0x7c00;
    if (a < 0x1p-14) /* subnormal: a multiple of 2^-24, rounded */
        return sign | (uint16_t)nearbyint(ldexp(a, 24));
    int e;
    frexp(a, &e);                    /* a = f 2^e, f in [0.5, 1) */
    double m = nearbyint(ldexp(a, 11 - e));  /* 1024..2048 */
    int exponent = e - 1 + 15;
    if (m >= 2048.0)
        m = 1024.0, exponent++;
    if (exponent >= 31)
        return sign | 0x7c00;
    return sign | (uint16_t)(exponent << 10 | ((int)m - 1024));
}

static size_t store_bytes(int store)
{
    return store == STORE_F64 ? 8 : store == STORE_F32 ? 4 : 2;
}

/* The elements of float_data (4 bytes each) or double_data (8): packed
 * runs and single values, gathered when there is more than one. */
static int float_fields(onnx_graph *g, pb_bytes msg, uint64_t number, size_t esize,
                        const char *name, tensor_value *v)
{
    pb_reader r;
    pb_field f;
    size_t total = 0, parts = 0;
    const unsigned char *first = NULL;
    pb_reader_init(&r, msg);
    while (pb_next(&r, &f) == 1) {
        if (f.number != number)
            continue;
        const int ok = f.wire == PB_BYTES || f.wire == PB_FIXED64 ||
                       (f.wire == PB_FIXED32 && esize == 4);
        if (!ok || f.bytes.len % esize)
            return fail(g, "tensor %s: corrupt %s field", name, esize == 4 ? "float" : "double");
        total += f.bytes.len;
        first = f.bytes.data;
        parts++;
    }
    v->count = total / esize;
    if (parts <= 1) {
        v->data = first;
        return 0;
    }
    unsigned char *buf = remember(g, malloc(total));
    if (!buf)
        return out_of_memory(g);
    size_t at = 0;
    pb_reader_init(&r, msg);
    while (pb_next(&r, &f) == 1)
        if (f.number == number) {
            memcpy(buf + at, f.bytes.data, f.bytes.len);
            at += f.bytes.len;
        }
    v->data = buf;
    return 0;
}

/* float16 or bfloat16 elements in int32_data, one varint each: their low
 * 16 bits. */
static int half_fields(onnx_graph *g, pb_bytes msg, const char *name, tensor_value *v)
{
    int_list l = {0};
    if (read_ints(g, msg, TENSOR_INT32S, &l, name) != 0)
        return -1;
    unsigned char *buf = remember(g, malloc(2 * l.count + 1));
    if (!buf)
        return out_of_memory(g);
    int_iter it;
    int64_t x;
    const char *why;
    size_t at = 0;
    int_iter_init(&it, msg, TENSOR_INT32S);
    while (at < 2 * l.count && int_iter_next(&it, &x, &why) == 1) {
        buf[at++] = (unsigned char)x;
        buf[at++] = (unsigned char)((uint64_t)x >> 8);
    }
    v->count = l.count;
    v->data = buf;
    return 0;
}

/* Decodes a TensorProto (the converter's onnx_tensor): a floating-point
 * tensor kept in place where it can be. what names it when it has no name;
 * user is the node it feeds, for messages. */
static int decode_tensor(onnx_graph *g, pb_bytes msg, const char *what, const onnx_node *user,
                         tensor_value **out)
{
    char nb[LABEL_BYTES];
    pb_field f;
    const char *name = last_field(msg, TENSOR_NAME, &f) && f.wire == PB_BYTES && f.bytes.len
                       ? show(nb, f.bytes) : what;
    int64_t type = 0;
    if (last_field(msg, TENSOR_TYPE, &f)) {
        if (f.wire != PB_VARINT)
            return wrong_type(g, "data_type", name);
        type = (int64_t)f.varint;
    }
    if ((last_field(msg, TENSOR_LOCATION, &f) && f.wire == PB_VARINT && f.varint == 1) ||
        last_field(msg, TENSOR_EXTERNAL, &f))
        return fail(g, "tensor %s uses external data, which is not supported (save the model "
                    "with its weights inside)", name);
    tensor_value *v = remember(g, calloc(1, sizeof *v));
    if (!v)
        return out_of_memory(g);
    /* the dims: the shape (its first MAX_DIMS) and the element count */
    int_iter it;
    int64_t d;
    const char *why = NULL;
    uint64_t count = 1;
    int overflow = 0, rc;
    int_iter_init(&it, msg, TENSOR_DIMS);
    while ((rc = int_iter_next(&it, &d, &why)) == 1) {
        if (d < 0)
            return fail(g, "tensor %s has negative dims", name);
        if (v->ndim < MAX_DIMS)
            v->dims[v->ndim] = d;
        if (v->ndim < INT_MAX)
            v->ndim++;
        if (d && count > UINT64_MAX / (uint64_t)d)
            overflow = 1;
        count *= (uint64_t)d;
    }
    if (rc < 0)
        return fail(g, "truncated or corrupt ONNX model: %s (in tensor %s)", why, name);
    switch (type) {
    case ONNX_FLOAT: v->store = STORE_F32, v->kind = KIND_F32; break;
    case ONNX_FLOAT16: v->store = STORE_F16, v->kind = KIND_F16; break;
    case ONNX_DOUBLE: v->store = STORE_F64, v->kind = KIND_F64; break;
    case ONNX_BFLOAT16: v->store = STORE_BF16, v->kind = KIND_F32; break;
    case ONNX_UINT8: case ONNX_INT8: case ONNX_UINT16: case ONNX_INT16: case ONNX_INT32:
    case ONNX_INT64: case ONNX_BOOL: case ONNX_UINT32: case ONNX_UINT64: {
        label_buf lb;
        return fail(g, "%s: weight %s has data type %lld, not floating point (quantized?)",
                    label(lb, user), name, (long long)type);
    }
    default:
        return fail(g, "tensor %s has unsupported data type %lld", name, (long long)type);
    }
    const size_t esize = store_bytes(v->store);
    if (overflow || count > SIZE_MAX / 8)
        return fail(g, "tensor %s: its dims claim more values than any file holds", name);
    if (last_field(msg, TENSOR_RAW, &f)) {
        if (f.wire != PB_BYTES)
            return wrong_type(g, "raw_data", name);
        if (f.bytes.len != count * esize)
            return fail(g, "tensor %s: raw_data has %zu bytes, its dims need %llu", name,
                        f.bytes.len, (unsigned long long)(count * esize));
        v->data = f.bytes.data;
        v->count = (size_t)count;
    } else if (type == ONNX_FLOAT || type == ONNX_DOUBLE) {
        if (float_fields(g, msg, type == ONNX_FLOAT ? TENSOR_FLOATS : TENSOR_DOUBLES, esize, name,
                         v) != 0)
            return -1;
    } else if (half_fields(g, msg, name, v) != 0) {
        return -1;
    }
    if (v->count != count)
        return fail(g, "tensor %s holds %zu values, its dims need %llu", name, v->count,
                    (unsigned long long)count);
    *out = v;
    return 0;
}

/* A copy of v in the numpy type kind (astype), rounding once. */
static tensor_value *cast_value(onnx_graph *g, const tensor_value *v, int kind)
{
    tensor_value *c = remember(g, malloc(sizeof *c));
    if (!c)
        return NULL;
    *c = *v;
    if (kind == v->kind)
        return c;
    const int store = kind == KIND_F16 ? STORE_F16 : kind == KIND_F32 ? STORE_F32 : STORE_F64;
    const size_t esize = store_bytes(store);
    unsigned char *buf = remember(g, malloc(v->count * esize + 1));
    if (!buf)
        return NULL;
    for (size_t i = 0; i < v->count; i++) {
        const double d = value_at(v, i);
        if (store == STORE_F16) {
            const uint16_t h = double_to_half(d);
            buf[2 * i] = (unsigned char)h, buf[2 * i + 1] = (unsigned char)(h >> 8);
        } else if (store == STORE_F32) {
            const float f = (float)d;
            memcpy(buf + 4 * i, &f, 4);
        } else {
            memcpy(buf + 8 * i, &d, 8);
        }
    }
    c->store = store, c->kind = kind, c->data = buf;
    return c;
}

/* The value of the constant tensor `id` feeding node `user`: an
 * initializer, a Constant node's value, or either through Identity and
 * Cast nodes (the converter's const). */
static int const_value(onnx_graph *g, int id, const onnx_node *user, const tensor_value **out)
{
    label_buf lb;
    char tb[LABEL_BYTES];
    if (g->constant[id]) {
        *out = g->constant[id];
        return 0;
    }
    /* follow Identity and Cast back to the value, remembering the casts */
    int chain[64], n_chain = 0, t = id;
    tensor_value *v = NULL;
    for (int steps = 0;; steps++) {
        if (steps > g->n_nodes + 1)
            return fail(g, "cycle in the ONNX graph");
        if (g->constant[t]) {
            v = g->constant[t];
            break;
        }
        if (g->initializer[t].data) {
            if (decode_tensor(g, g->initializer[t], tensor_name(g, tb, t), user, &v) != 0)
                return -1;
            break;
        }
        const int p = g->producer[t];
        const onnx_node *pn = p >= 0 ? &g->nodes[p] : NULL;
        if (pn && is(pn->op, "Constant")) {
            const node_attr *a = attr(pn, "value");
            pb_field f;
            if (!a || !last_field(a->message, ATTR_TENSOR, &f))
                return fail(g, "%s: unsupported Constant form", label(lb, pn));
            if (f.wire != PB_BYTES)
                return wrong_type(g, "a Constant's value", label(lb, pn));
            if (decode_tensor(g, f.bytes, tensor_name(g, tb, t), user, &v) != 0)
                return -1;
            break;
        }
        if (pn && (is(pn->op, "Identity") || is(pn->op, "Cast")) && pn->n_inputs > 0) {
            if (is(pn->op, "Cast")) {
                if (n_chain == (int)(sizeof chain / sizeof *chain))
                    return fail(g, "%s: more than %d Casts on one weight", label(lb, pn),
                                n_chain);
                chain[n_chain++] = p;
            }
            t = pn->inputs[0];
            continue;
        }
        return fail(g, "%s: input %s is not a constant weight", label(lb, user),
                    tensor_name(g, tb, t));
    }
    for (int i = n_chain - 1; i >= 0; i--) {
        const onnx_node *cast = &g->nodes[chain[i]];
        int64_t to;
        if (attr_int(g, cast, "to", ONNX_FLOAT, &to) != 0)
            return -1;
        if (to != ONNX_FLOAT && to != ONNX_FLOAT16 && to != ONNX_DOUBLE)
            return fail(g, "%s casts a weight to type %lld", label(lb, cast), (long long)to);
        v = cast_value(g, v, to == ONNX_FLOAT ? KIND_F32 : to == ONNX_FLOAT16 ? KIND_F16 : KIND_F64);
        if (!v)
            return out_of_memory(g);
    }
    g->constant[id] = v;
    *out = v;
    return 0;
}

/* ---- the graph ---- */

static void graph_free(onnx_graph *g)
{
    for (size_t i = 0; i < g->n_owned; i++)
        free(g->owned[i]);
    free(g->owned);
    free(g->nodes);
    free(g->names.names);
    free(g->names.slots);
    free(g->producer);
    free(g->consumer_start);
    free(g->consumers);
    free(g->initializer);
    free(g->constant);
    free(g->conv_of_node);
    free(g->convs);
    free(g->seen);
    free(g->expanded);
}

/* The ModelProto's graph: nodes, initializers, producers and consumers
 * (the converter's parse_onnx and _Graph). */
static int read_graph(onnx_graph *g, const unsigned char *file, size_t size)
{
    pb_reader r;
    pb_field f;
    int rc;
    pb_bytes graph = {NULL, 0};
    int have_graph = 0;
    pb_reader_init(&r, (pb_bytes){file, size});
    while ((rc = pb_next(&r, &f)) == 1)
        if (f.number == MODEL_GRAPH)
            graph = f.bytes, have_graph = f.wire == PB_BYTES;
    if (rc < 0)
        return corrupt(g, &r, "the ModelProto");
    if (!have_graph)
        return fail(g, "not an ONNX model (no graph)");
    int n_inits = 0, sparse = 0;
    if (count_strings(g, graph, GRAPH_NODE, "node", "the graph", &g->n_nodes) != 0 ||
        count_strings(g, graph, GRAPH_INITIALIZER, "initializer", "the graph", &n_inits) != 0)
        return -1;
    pb_reader_init(&r, graph);
    while (pb_next(&r, &f) == 1)
        sparse |= f.number == GRAPH_SPARSE_INITIALIZER;
    g->nodes = calloc((size_t)g->n_nodes + 1, sizeof *g->nodes);
    if (!g->nodes)
        return out_of_memory(g);
    int i = 0;
    pb_reader_init(&r, graph);
    while (pb_next(&r, &f) == 1)
        if (f.number == GRAPH_NODE) {
            g->nodes[i].index = i;
            if (read_node(g, &g->nodes[i], f.bytes) != 0)
                return -1;
            i++;
        }
    /* the initializers' names, checked as the converter reads them */
    pb_bytes *init_msgs = remember(g, malloc(sizeof *init_msgs * ((size_t)n_inits + 1)));
    int *init_ids = remember(g, malloc(sizeof *init_ids * ((size_t)n_inits + 1)));
    if (!init_msgs || !init_ids)
        return out_of_memory(g);
    i = 0;
    pb_reader_init(&r, graph);
    while (pb_next(&r, &f) == 1)
        if (f.number == GRAPH_INITIALIZER) {
            pb_reader tr;
            pb_field tf;
            pb_bytes name = {f.bytes.data, 0};
            char where[48];
            snprintf(where, sizeof where, "initializer #%d", i);
            pb_reader_init(&tr, f.bytes);
            while ((rc = pb_next(&tr, &tf)) == 1)
                if (tf.number == TENSOR_NAME) {
                    if (tf.wire != PB_BYTES)
                        return wrong_type(g, "a tensor's name", where);
                    name = tf.bytes;
                }
            if (rc < 0)
                return corrupt(g, &tr, where);
            init_msgs[i] = f.bytes;
            if ((init_ids[i] = name_id(&g->names, name)) < 0)
                return out_of_memory(g);
            i++;
        }
    if (sparse)
        return fail(g, "sparse initializers are not supported");
    if (g->n_nodes == 0)
        return fail(g, "ONNX graph has no nodes");
    const size_t names = (size_t)g->names.count;
    g->producer = malloc(sizeof(int) * names + 1);
    g->consumer_start = calloc(names + 1, sizeof(int));
    g->initializer = calloc(names + 1, sizeof *g->initializer);
    g->constant = calloc(names + 1, sizeof *g->constant);
    g->seen = malloc(sizeof(int) * names + 1);
    g->conv_of_node = malloc(sizeof(int) * (size_t)g->n_nodes);
    g->expanded = malloc(sizeof(int) * (size_t)g->n_nodes);
    if (!g->producer || !g->consumer_start || !g->initializer || !g->constant || !g->seen ||
        !g->conv_of_node || !g->expanded)
        return out_of_memory(g);
    for (size_t t = 0; t < names; t++)
        g->producer[t] = -1, g->seen[t] = -1;
    for (i = 0; i < n_inits; i++)
        g->initializer[init_ids[i]] = init_msgs[i];
    /* readers of each name, in node order, one entry per reading input */
    size_t n_reads = 0;
    for (i = 0; i < g->n_nodes; i++) {
        const onnx_node *n = &g->nodes[i];
        g->conv_of_node[i] = -1;
        g->expanded[i] = -1;
        g->n_inputs += (size_t)n->n_inputs;
        for (int o = 0; o < n->n_outputs; o++)
            if (g->names.names[n->outputs[o]].len)
                g->producer[n->outputs[o]] = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (g->names.names[n->inputs[k]].len) {
                g->consumer_start[n->inputs[k] + 1]++;
                n_reads++;
            }
    }
    for (size_t t = 0; t < names; t++)
        g->consumer_start[t + 1] += g->consumer_start[t];
    g->consumers = malloc(sizeof(int) * n_reads + 1);
    int *fill = remember(g, malloc(sizeof(int) * names + 1));
    if (!g->consumers || !fill)
        return out_of_memory(g);
    memcpy(fill, g->consumer_start, sizeof(int) * names);
    for (i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            const int t = g->nodes[i].inputs[k];
            if (g->names.names[t].len)
                g->consumers[fill[t]++] = i;
        }
    return 0;
}

static int is_pass(const onnx_node *n)
{
    return is(n->op, "Identity") || is(n->op, "Cast");
}

/* ONNX's and ONNX Runtime's 8-bit operators (the converter's
 * _is_quantized_op): ConvInteger, QuantizeLinear, QLinearConv, QGemm, ... */
static int is_quantized_op(pb_bytes op)
{
    static const char *const needles[] = {"quantize", "integer"};
    for (int k = 0; k < 2; k++) {
        const size_t m = strlen(needles[k]);
        for (size_t i = 0; i + m <= op.len; i++) {
            size_t j = 0;
            while (j < m && (op.data[i + j] | 0x20) == needles[k][j] &&
                   ((op.data[i + j] >= 'A' && op.data[i + j] <= 'Z') ||
                    (op.data[i + j] >= 'a' && op.data[i + j] <= 'z')))
                j++;
            if (j == m)
                return 1;
        }
    }
    return (op.len >= 7 && memcmp(op.data, "QLinear", 7) == 0) || is(op, "QGemm") ||
           is(op, "QAttention");
}

/* What the graph tensor t comes from once the skipped ops are passed:
 * *t_out and its producer (-1 for none); -1 on a cycle. skip: Identity and
 * Cast, plus Relu and BatchNormalization (through_act) or Resize. */
enum { SKIP_PASS, SKIP_ACT, SKIP_RESIZE };
static int through(onnx_graph *g, int t, int skip, int *t_out, int *node_out)
{
    for (int steps = 0; steps < g->n_nodes + 1; steps++) {
        const int p = t >= 0 && g->names.names[t].len ? g->producer[t] : -1;
        const onnx_node *n = p >= 0 ? &g->nodes[p] : NULL;
        const int skipped = n && (is_pass(n) ||
                                  (skip == SKIP_ACT && (is(n->op, "Relu") ||
                                                        is(n->op, "BatchNormalization"))) ||
                                  (skip == SKIP_RESIZE && is(n->op, "Resize")));
        if (!skipped || n->n_inputs == 0) {
            *t_out = t, *node_out = p;
            return 0;
        }
        t = n->inputs[0];
    }
    return fail(g, "cycle in the ONNX graph");
}

/* The conv whose output t is (after Relu, BatchNormalization, Cast,
 * Identity), or -1. */
static int conv_before(onnx_graph *g, int t, int *conv)
{
    int t2, p = -1;
    if (through(g, t, SKIP_ACT, &t2, &p) != 0)
        return -1;
    *conv = p >= 0 ? g->conv_of_node[p] : -1;
    return 0;
}

static int shape_is(const tensor_value *v, int ndim, const int64_t *dims)
{
    if (v->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (v->dims[i] != dims[i])
            return 0;
    return 1;
}

/* Every Conv node with its constant weights and a BatchNormalization that
 * follows it (the converter's _collect_convs); a BatchNormalization that
 * follows no Conv is an error. */
static int collect_convs(onnx_graph *g)
{
    label_buf lb;
    char tb[LABEL_BYTES], sb[96], sb2[96];
    g->convs = calloc((size_t)g->n_nodes + 1, sizeof *g->convs);
    unsigned char *folded = remember(g, calloc((size_t)g->n_nodes + 1, 1));
    if (!g->convs || !folded)
        return out_of_memory(g);
    for (int i = 0; i < g->n_nodes; i++) {
        const onnx_node *n = &g->nodes[i];
        if (!is(n->op, "Conv") || !(n->domain.len == 0 || is(n->domain, "ai.onnx")))
            continue;
        conv_rec *c = &g->convs[g->n_convs];
        memset(c, 0, sizeof *c);
        c->node = i, c->bn = -1;
        if (n->n_inputs < 2)
            return fail(g, "%s has no weight input", label(lb, n));
        c->weight_name = n->inputs[1];
        if (const_value(g, n->inputs[1], n, &c->w) != 0)
            return -1;
        if (c->w->ndim != 4)
            return fail(g, "%s: weight %s has shape %s, expected 4-D", label(lb, n),
                        tensor_name(g, tb, n->inputs[1]), format_dims(sb, sizeof sb, c->w));
        if (n->n_inputs > 2 && g->names.names[n->inputs[2]].len) {
            if (const_value(g, n->inputs[2], n, &c->b) != 0)
                return -1;
            if (!shape_is(c->b, 1, c->w->dims))
                return fail(g, "%s: bias %s has shape %s, expected [%lld]", label(lb, n),
                            tensor_name(g, tb, n->inputs[2]), format_dims(sb, sizeof sb, c->b),
                            (long long)c->w->dims[0]);
        }
        int64_t group;
        if (attr_int(g, n, "group", 1, &group) != 0)
            return -1;
        if (group != 1)
            return fail(g, "%s: group %lld is not a U2Net/ISNet convolution", label(lb, n),
                        (long long)group);
        /* follow Identity/Cast to a BatchNormalization that is the only reader */
        if (n->n_outputs < 1)
            return fail(g, "%s has no output", label(lb, n));
        int t = n->outputs[0];
        for (int steps = 0;; steps++) {
            if (steps > g->n_nodes)
                return fail(g, "cycle in the ONNX graph");
            const int from = g->names.names[t].len ? g->consumer_start[t] : 0;
            const int to = g->names.names[t].len ? g->consumer_start[t + 1] : 0;
            if (to - from != 1)
                break;
            const onnx_node *u = &g->nodes[g->consumers[from]];
            if (is_pass(u) && u->inputs[0] == t) {
                if (u->n_outputs < 1)
                    return fail(g, "%s has no output", label(lb, u));
                t = u->outputs[0];
                continue;
            }
            if (is(u->op, "BatchNormalization") && u->inputs[0] == t)
                c->bn = u->index;
            break;
        }
        if (c->bn >= 0) {
            const onnx_node *bn = &g->nodes[c->bn];
            if (bn->n_inputs < 5)
                return fail(g, "%s has too few inputs", label(lb, bn));
            int64_t training;
            if (attr_int(g, bn, "training_mode", 0, &training) != 0)
                return -1;
            if (training)
                return fail(g, "%s is in training mode", label(lb, bn));
            const tensor_value **params[4] = {&c->gamma, &c->beta, &c->mean, &c->var};
            for (int k = 0; k < 4; k++)
                if (const_value(g, bn->inputs[1 + k], bn, params[k]) != 0)
                    return -1;
            float eps32;
            if (attr_float(g, bn, "epsilon", 1e-5f, &eps32) != 0)
                return -1;
            /* epsilon is stored as float32: the shortest decimal that rounds to
             * it (1e-05 for PyTorch's default) is what the exporter meant */
            char digits[32];
            for (int prec = 1; prec <= 9; prec++) {
                snprintf(digits, sizeof digits, "%.*g", prec, (double)eps32);
                if (strtof(digits, NULL) == eps32 || isnan(eps32))
                    break;
            }
            c->eps = strtod(digits, NULL);
            for (int k = 0; k < 4; k++)
                if (!shape_is(*params[k], 1, c->w->dims))
                    return fail(g, "%s: %s has shape %s, expected [%lld]", label(lb, bn),
                                tensor_name(g, tb, bn->inputs[1 + k]),
                                format_dims(sb2, sizeof sb2, *params[k]),
                                (long long)c->w->dims[0]);
            for (size_t k = 0; k < c->var->count; k++)
                if (value_at(c->var, k) < 0)
                    return fail(g, "%s: negative variance", label(lb, bn));
            folded[c->bn] = 1;
        }
        if (attr_ints_or(g, n, "dilations", 2, 1, &c->dil) != 0 ||
            attr_ints_or(g, n, "pads", 4, 0, &c->pads) != 0 ||
            attr_ints_or(g, n, "strides", 2, 1, &c->strides) != 0)
            return -1;
        g->conv_of_node[i] = g->n_convs++;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (is(g->nodes[i].op, "BatchNormalization") && !folded[i])
            return fail(g, "%s does not directly follow a Conv: unexpected graph",
                        label(lb, &g->nodes[i]));
    return 0;
}

/* ---- the network ---- */

/* A stage: its Add, and its convolutions in graph order. */
typedef struct {
    int add;
    int first, last;     /* conv indices */
    int *members;
    int n_members;
} block;

/* A prelude layer: a conv (index) or a pool (-1). */
typedef struct {
    int conv;
    int relu;
} prelude_entry;

typedef struct {
    block *blocks;
    int n_blocks;
    prelude_entry prelude[U2NET_MAX_PRELUDE + 2];
    int n_prelude;
    int sides[U2NET_MAX_STAGES + 1];  /* conv index of side k at [k - 1] */
    int fuse;                         /* conv index, or -1 */
} network_convs;

/* Blocks by their first conv; blocks were found in the order of their Add
 * nodes, which breaks ties as a stable sort would. */
static int cmp_blocks(const void *a, const void *b)
{
    const block *x = a, *y = b;
    if (x->first != y->first)
        return (x->first > y->first) - (x->first < y->first);
    return (x->add > y->add) - (x->add < y->add);
}

static int node_of(const onnx_graph *g, int conv)
{
    return g->convs[conv].node;
}

/* The convs of the block from first (rebnconvin) to last (rebnconv1d):
 * everything last depends on back to first, sorted by node (the
 * converter's _stage_members). stamp marks the names this block visited. */
static int stage_members(onnx_graph *g, block *b, int stamp)
{
    label_buf lb, lb2;
    const onnx_node *last = &g->nodes[node_of(g, b->last)];
    const int first_node = node_of(g, b->first);
    /* a node's inputs are pushed once (the names they reach are the same
     * however often it is met): the stack holds at most every input of
     * every node, plus the start */
    int *todo = remember(g, malloc(sizeof(int) * (g->n_inputs + 1)));
    b->members = remember(g, malloc(sizeof(int) * ((size_t)g->n_convs + 2)));
    unsigned char *member = remember(g, calloc((size_t)g->n_convs + 1, 1));
    if (!todo || !b->members || !member)
        return out_of_memory(g);
    member[b->first] = member[b->last] = 1;
    size_t n_todo = 0;
    const long max_steps = 4L * g->n_nodes + 16;
    long steps = 0;
    todo[n_todo++] = last->inputs[0];
    while (n_todo) {
        const int t = todo[--n_todo];
        if (g->seen[t] == stamp || !g->names.names[t].len)
            continue;
        g->seen[t] = stamp;
        if (++steps > max_steps)
            return fail(g, "cycle in the ONNX graph");
        const int p = g->producer[t];
        if (p < 0) {
            if (g->initializer[t].data)
                continue;
            return fail(g, "%s: the block it ends reaches the graph input without passing %s: "
                        "unexpected graph", label(lb, last),
                        label(lb2, &g->nodes[first_node]));
        }
        const onnx_node *pn = &g->nodes[p];
        if (p == first_node || is(pn->op, "Constant"))
            continue;
        const int c = g->conv_of_node[p];
        if (c >= 0)
            member[c] = 1;
        if (g->expanded[p] == stamp)
            continue;
        g->expanded[p] = stamp;
        /* a conv or a BatchNormalization: its data input; anything else: all */
        const int n_in = c >= 0 || is(pn->op, "BatchNormalization") ? 1 : pn->n_inputs;
        for (int k = 0; k < n_in && k < pn->n_inputs; k++)
            todo[n_todo++] = pn->inputs[k];
    }
    b->n_members = 0;
    for (int c = 0; c < g->n_convs; c++)  /* conv indices follow node order */
        if (member[c])
            b->members[b->n_members++] = c;
    return 0;
}

/* The layers between the graph input and stage 1, in order (the
 * converter's _read_prelude). */
static int read_prelude(onnx_graph *g, network_convs *nc, int stage1_first)
{
    label_buf lb;
    char tb[LABEL_BYTES], b1[64], b2[64], b3[64];
    int relu = 0, count = 0;
    prelude_entry rev[U2NET_MAX_PRELUDE + 2];
    int t = g->nodes[node_of(g, stage1_first)].inputs[0];
    for (;;) {
        int p;
        if (through(g, t, SKIP_PASS, &t, &p) != 0)
            return -1;
        if (p < 0) {
            if (t >= 0 && g->initializer[t].data)
                return fail(g, "stage1's input %s is a constant", tensor_name(g, tb, t));
            break;
        }
        if (count > U2NET_MAX_PRELUDE)
            return fail(g, "more than %d layers between the graph input and stage1",
                        U2NET_MAX_PRELUDE);
        const onnx_node *n = &g->nodes[p];
        const int c = g->conv_of_node[p];
        if (n->n_inputs < 1)
            return fail(g, "%s has no input", label(lb, n));
        if (is(n->op, "Relu") && !relu) {
            relu = 1;
        } else if (is(n->op, "BatchNormalization")) {
            /* folded into the conv before it */
        } else if (c >= 0) {
            const conv_rec *cr = &g->convs[c];
            const int_list *s = &cr->strides, *d = &cr->dil;
            if (cr->w->dims[2] != 3 || cr->w->dims[3] != 3 || !s->all_equal || !d->all_equal ||
                !list_is(&cr->pads, 4, d->v[0])) {
                char kb[48];
                snprintf(kb, sizeof kb, "[%lld, %lld]", (long long)cr->w->dims[2],
                         (long long)cr->w->dims[3]);
                return fail(g, "%s (%s): kernel %s strides %s dilations %s pads %s: a prelude "
                            "convolution is 3x3 with padding = dilation", label(lb, n),
                            tensor_name(g, tb, cr->weight_name), kb,
                            format_list(b1, sizeof b1, s), format_list(b2, sizeof b2, d),
                            format_list(b3, sizeof b3, &cr->pads));
            }
            rev[count].conv = c, rev[count].relu = relu;
            count++;
            relu = 0;
        } else if (is(n->op, "MaxPool") && !relu) {
            int_list ks, st, pads, dil;
            int64_t ceil;
            if (attr_ints(g, n, "kernel_shape", &ks) != 0 || attr_ints(g, n, "strides", &st) != 0 ||
                attr_ints(g, n, "pads", &pads) != 0 || attr_ints(g, n, "dilations", &dil) != 0 ||
                attr_int(g, n, "ceil_mode", 0, &ceil) != 0)
                return -1;
            if (!ks.present || !list_is(&ks, 2, 2) || !st.present || !list_is(&st, 2, 2) ||
                ceil != 1 || pads.any_nonzero ||
                (dil.count && !(dil.all_equal && dil.v[0] == 1)))
                return fail(g, "%s: a prelude pool is 2x2, stride 2, ceil mode, no padding",
                            label(lb, n));
            rev[count].conv = -1, rev[count].relu = 0;
            count++;
        } else {
            return fail(g, "%s between the graph input and stage1: not a U2Net/ISNet-family "
                        "prelude", label(lb, n));
        }
        t = n->inputs[0];
    }
    if (relu)
        return fail(g, "a Relu between the graph input and stage1 follows no convolution");
    nc->n_prelude = count;
    for (int i = 0; i < count; i++)
        nc->prelude[i] = rev[count - 1 - i];
    return 0;
}

/* The first "side<digits>" in s that stands between '.', '/', '_' or the
 * ends (the converter's _SIDE_RE): its number, or -1 for none. */
static long side_number(pb_bytes s)
{
    for (size_t i = 0; i + 5 <= s.len; i++) {
        if ((i > 0 && s.data[i - 1] != '.' && s.data[i - 1] != '/' && s.data[i - 1] != '_') ||
            memcmp(s.data + i, "side", 4) != 0)
            continue;
        size_t j = i + 4;
        long k = 0;
        while (j < s.len && s.data[j] >= '0' && s.data[j] <= '9') {
            k = k < 100000000 ? k * 10 + (s.data[j] - '0') : k;
            j++;
        }
        if (j == i + 4)
            continue;
        if (j == s.len || s.data[j] == '.' || s.data[j] == '/' || s.data[j] == '_')
            return k;
    }
    return -1;
}

/* Matches "stage<digits>[d]" at s[*i], advancing *i. */
static int match_stage(pb_bytes s, size_t *i)
{
    size_t j = *i;
    if (s.len - j < 6 || memcmp(s.data + j, "stage", 5) != 0)
        return 0;
    j += 5;
    const size_t d0 = j;
    while (j < s.len && s.data[j] >= '0' && s.data[j] <= '9')
        j++;
    if (j == d0)
        return 0;
    if (j < s.len && s.data[j] == 'd')
        j++;
    *i = j;
    return 1;
}

/* Matches "rebnconv" then "in" or "<digits>[d]" at s[*i], advancing *i. */
static int match_conv(pb_bytes s, size_t *i)
{
    size_t j = *i;
    if (s.len - j < 10 || memcmp(s.data + j, "rebnconv", 8) != 0)
        return 0;
    j += 8;
    if (s.len - j >= 2 && memcmp(s.data + j, "in", 2) == 0) {
        *i = j + 2;
        return 1;
    }
    const size_t d0 = j;
    while (j < s.len && s.data[j] >= '0' && s.data[j] <= '9')
        j++;
    if (j == d0)
        return 0;
    if (j < s.len && s.data[j] == 'd')
        j++;
    *i = j;
    return 1;
}

static int match_text(pb_bytes s, size_t *i, const char *text)
{
    const size_t n = strlen(text);
    if (s.len - *i < n || memcmp(s.data + *i, text, n) != 0)
        return 0;
    *i += n;
    return 1;
}

/* The official "stageX.rebnconvY" a weight's or a node's name claims (the
 * converter's _BODY_RE on "...stage1.rebnconvin.conv_s1.weight" and
 * _BODY_NODE_RE on "/stage1/rebnconvin/conv_s1/Conv[_N]"), into out; 0
 * when it claims none. */
static int claimed_prefix(pb_bytes s, int node_name, char *out, size_t n)
{
    for (size_t start = 0; start <= s.len; start++) {
        size_t i = start, st0, st1, cv0, cv1;
        if (node_name) {
            if (start > 0 || !match_text(s, &i, "/"))
                return 0;
        } else if (start > 0 && s.data[start - 1] != '.') {
            continue;
        }
        st0 = i;
        if (!match_stage(s, &i))
            goto next;
        st1 = i;
        if (!match_text(s, &i, node_name ? "/" : "."))
            goto next;
        cv0 = i;
        if (!match_conv(s, &i))
            goto next;
        cv1 = i;
        if (node_name) {
            if (!match_text(s, &i, "/conv_s1/Conv"))
                return 0;
            if (i < s.len) {
                size_t d0 = i + 1;
                if (s.data[i] != '_' || d0 == s.len)
                    return 0;
                for (i = d0; i < s.len; i++)
                    if (s.data[i] < '0' || s.data[i] > '9')
                        return 0;
            }
        } else if (!match_text(s, &i, ".conv_s1.weight") || i != s.len) {
            goto next;
        }
        snprintf(out, n, "%.*s.%.*s", (int)(st1 - st0), (const char *)s.data + st0,
                 (int)(cv1 - cv0), (const char *)s.data + cv0);
        return 1;
    next:
        if (node_name)
            return 0;
    }
    return 0;
}

/* The fuse conv must read cat(side1, ..., siden), each possibly resized. */
static int check_fuse_order(onnx_graph *g, const network_convs *nc, int n_sides)
{
    label_buf lb;
    char tb[LABEL_BYTES];
    const onnx_node *fuse = &g->nodes[node_of(g, nc->fuse)];
    int t, cat, ok = 0;
    if (through(g, fuse->inputs[0], SKIP_PASS, &t, &cat) != 0)
        return -1;
    if (cat >= 0 && is(g->nodes[cat].op, "Concat") && g->nodes[cat].n_inputs == n_sides) {
        ok = 1;
        for (int k = 0; k < n_sides && ok; k++) {
            int t2, p = -1;
            if (through(g, g->nodes[cat].inputs[k], SKIP_RESIZE, &t2, &p) != 0)
                return -1;
            ok = p >= 0 && p == node_of(g, nc->sides[k]);
        }
    }
    if (!ok)
        return fail(g, "%s (%s) does not read the side outputs concatenated in order "
                    "side1..side%d", label(lb, fuse),
                    tensor_name(g, tb, g->convs[nc->fuse].weight_name), n_sides);
    return 0;
}

/* The network the graph computes, as a model description (the converter's
 * describe_onnx), and which conv is which. m's stages, prelude, sides and
 * fuse are filled in; model_check_network has checked them. */
static int describe(onnx_graph *g, u2net_model *m, network_convs *nc)
{
    label_buf lb, lb2;
    char tb[LABEL_BYTES];
    nc->blocks = remember(g, calloc((size_t)g->n_nodes + 1, sizeof *nc->blocks));
    if (!nc->blocks)
        return out_of_memory(g);
    for (int i = 0; i < g->n_nodes; i++) {
        const onnx_node *n = &g->nodes[i];
        if (!is(n->op, "Add") || n->n_inputs != 2)
            continue;
        int a, b;
        if (conv_before(g, n->inputs[0], &a) != 0 || conv_before(g, n->inputs[1], &b) != 0)
            return -1;
        if (a >= 0 && b >= 0 && a != b) {
            block *bl = &nc->blocks[nc->n_blocks++];
            bl->add = i;
            bl->first = a < b ? a : b;
            bl->last = a < b ? b : a;
        }
    }
    if (nc->n_blocks == 0)
        return fail(g, "unknown network: no U2Net/ISNet residual (RSU) block in the ONNX graph "
                    "(%d Conv nodes)", g->n_convs);
    qsort(nc->blocks, (size_t)nc->n_blocks, sizeof *nc->blocks, cmp_blocks);
    const int count = nc->n_blocks;
    if (count < 3 || count % 2 != 1)
        return fail(g, "unknown network: %d residual (RSU) blocks, a U2Net/ISNet-family network "
                    "has 2n-1, n >= 2", count);
    if (count > U2NET_MAX_STAGES - 2)
        return fail(g, "not a network the model file can hold: %d stages (at most %d)", count,
                    U2NET_MAX_STAGES - 2);
    const int n = (count + 1) / 2;
    m->n_stages = count, m->n_levels = n;
    int *owner = remember(g, malloc(sizeof(int) * ((size_t)g->n_convs + 1)));
    int *stage_of_add = remember(g, malloc(sizeof(int) * ((size_t)g->n_nodes + 1)));
    if (!owner || !stage_of_add)
        return out_of_memory(g);
    for (int c = 0; c < g->n_convs; c++)
        owner[c] = -1;
    for (int i = 0; i < g->n_nodes; i++)
        stage_of_add[i] = -1;
    char names[U2NET_MAX_STAGES][24];
    for (int i = 0; i < count; i++) {
        if (i < n)
            snprintf(names[i], sizeof names[i], "stage%d", i + 1);
        else
            snprintf(names[i], sizeof names[i], "stage%dd", count - i);
    }
    for (int i = 0; i < count; i++) {
        block *b = &nc->blocks[i];
        if (stage_members(g, b, i) != 0)
            return -1;
        for (int k = 0; k < b->n_members; k++) {
            const int c = b->members[k];
            if (owner[c] >= 0)
                return fail(g, "%s belongs to two residual blocks: unexpected graph",
                            label(lb, &g->nodes[node_of(g, c)]));
            owner[c] = i;
        }
        if (b->members[0] != b->first || b->n_members % 2 || b->n_members < 4)
            return fail(g, "%s: the block ending at %s has %d convolutions, not an RSU block",
                        names[i], label(lb, &g->nodes[b->add]), b->n_members);
        const int L = b->n_members / 2;
        int kind;
        if (L >= 3)
            kind = list_is(&g->convs[b->members[2]].dil, 2, 1) ? LAYER_RSU : LAYER_RSU_F;
        else  /* RSU-L and RSU-F of height 2 are the same convolutions: the family rule */
            kind = (i < n ? i + 1 : count - i) >= n - 1 ? LAYER_RSU_F : LAYER_RSU;
        const tensor_value *w0 = g->convs[b->first].w, *w1 = g->convs[b->members[1]].w;
        stage_desc *st = &m->stages[i];
        st->kind = kind, st->height = L;
        st->in_ch = w0->dims[1] <= INT_MAX ? (int)w0->dims[1] : -1;
        st->mid_ch = w1->dims[0] <= INT_MAX ? (int)w1->dims[0] : -1;
        st->out_ch = w0->dims[0] <= INT_MAX ? (int)w0->dims[0] : -1;
        st->role = i < n ? ROLE_ENCODER : ROLE_DECODER;
        stage_of_add[b->add] = i;
    }
    if (read_prelude(g, nc, nc->blocks[0].first) != 0)
        return -1;
    if (nc->n_prelude > U2NET_MAX_PRELUDE)
        return fail(g, "not a network the model file can hold: %d prelude layers (at most %d)",
                    nc->n_prelude, U2NET_MAX_PRELUDE);
    for (int i = 0; i < nc->n_prelude; i++)
        if (nc->prelude[i].conv >= 0)
            owner[nc->prelude[i].conv] = count;
    for (int k = 0; k < n; k++)
        nc->sides[k] = -1;
    nc->fuse = -1;
    int n_fuses = 0;
    char fuse_labels[3 * sizeof(label_buf)] = "";
    for (int c = 0; c < g->n_convs; c++) {
        if (owner[c] >= 0)
            continue;
        const conv_rec *cr = &g->convs[c];
        const onnx_node *cn = &g->nodes[cr->node];
        if (cr->w->dims[2] == 1 && cr->w->dims[3] == 1) {
            if (n_fuses < 3) {
                const size_t at = strlen(fuse_labels);
                snprintf(fuse_labels + at, sizeof fuse_labels - at, "%s%s", n_fuses ? ", " : "",
                         label(lb, cn));
            }
            if (n_fuses++ == 0)
                nc->fuse = c;
            continue;
        }
        int t, p;
        if (through(g, cn->inputs[0], SKIP_PASS, &t, &p) != 0)
            return -1;
        const int s = p >= 0 ? stage_of_add[p] : -1;
        if (s < 0)
            return fail(g, "%s (%s) reads no stage's output: not part of a U2Net/ISNet-family "
                        "network", label(lb, cn), tensor_name(g, tb, cr->weight_name));
        int k;
        if (s == n - 1)
            k = n;
        else if (s >= n)
            k = count - s;
        else
            return fail(g, "%s (%s) reads %s, which feeds no side output in the U2Net/ISNet "
                        "family", label(lb, cn), tensor_name(g, tb, cr->weight_name), names[s]);
        const pb_bytes labels[2] = {g->names.names[cr->weight_name], cn->name};
        for (int j = 0; j < 2; j++) {
            const long claimed = side_number(labels[j]);
            if (claimed >= 0 && claimed != k)
                return fail(g, "%s (%s) reads %s's output, which feeds side%d", label(lb, cn),
                            tensor_name(g, tb, cr->weight_name), names[s], k);
        }
        if (nc->sides[k - 1] >= 0)
            return fail(g, "%s and %s both read %s",
                        label(lb, &g->nodes[node_of(g, nc->sides[k - 1])]), label(lb2, cn),
                        names[s]);
        nc->sides[k - 1] = c;
    }
    for (int k = 1; k <= n; k++)
        if (nc->sides[k - 1] < 0)
            return fail(g, "no side convolution reads %s (side%d)", names[2 * n - 1 - k], k);
    if (n_fuses > 1)
        return fail(g, "%d 1x1 convolutions (%s%s): a U2Net-family network has one fuse "
                    "convolution", n_fuses, fuse_labels, n_fuses > 3 ? ", ..." : "");
    if (nc->n_prelude && nc->fuse >= 0)
        return fail(g, "a prelude before stage1 and a fuse convolution: neither the U2Net layout "
                    "(outconv, no prelude) nor ISNet's (conv_in, no outconv)");
    if (!nc->n_prelude && nc->fuse < 0)
        return fail(g, "no fuse convolution and no prelude before stage1: neither the U2Net "
                    "layout (outconv) nor ISNet's (conv_in)");
    if (nc->fuse >= 0 && check_fuse_order(g, nc, n) != 0)
        return -1;
    /* the layout: U2Net's (fuse; side k>1 resized to side 1's size) or ISNet's */
    m->in_channels = 3, m->out_channels = 1;
    m->n_prelude = nc->n_prelude;
    for (int i = 0; i < nc->n_prelude; i++) {
        prelude_layer *pl = &m->prelude[i];
        if (nc->prelude[i].conv < 0) {
            pl->kind = LAYER_POOL;
            continue;
        }
        const conv_rec *cr = &g->convs[nc->prelude[i].conv];
        pl->kind = LAYER_CONV, pl->relu = nc->prelude[i].relu;
        pl->conv.cin = cr->w->dims[1] <= INT_MAX ? (int)cr->w->dims[1] : -1;
        pl->conv.cout = cr->w->dims[0] <= INT_MAX ? (int)cr->w->dims[0] : -1;
        pl->conv.k = 3;
        pl->conv.stride = cr->strides.v[0] >= 0 && cr->strides.v[0] <= 64 ? (int)cr->strides.v[0] : -1;
        pl->conv.dilation = cr->dil.v[0] >= 0 && cr->dil.v[0] <= 64 ? (int)cr->dil.v[0] : -1;
    }
    m->n_sides = n;
    for (int k = 1; k <= n; k++) {
        side_desc *sd = &m->sides[k - 1];
        sd->source = 2 * n - 1 - k;
        sd->resize_to = nc->fuse >= 0 && k > 1 ? 1 : 0;
        sd->conv.cin = m->stages[sd->source].out_ch;
        sd->conv.cout = 1;
    }
    m->has_fuse = nc->fuse >= 0;
    m->fuse.cin = n, m->fuse.cout = 1;
    m->prediction = 0;
    return model_check_network(m, g->path, g->err);
}

/* ---- the model file ---- */

/* The convs in tensor-table order (docs/FORMAT.md) with their prefix,
 * shape, dilation and stride. */
typedef struct {
    char prefix[64];
    int conv;
    int cin, cout, k, dilation, stride;
} table_conv;

static int table_convs(const u2net_model *m, const network_convs *nc, table_conv *out)
{
    int n = 0;
    for (int i = 0; i < m->n_prelude; i++) {
        if (m->prelude[i].kind != LAYER_CONV)
            continue;
        table_conv *t = &out[n++];
        snprintf(t->prefix, sizeof t->prefix, "prelude%d", i + 1);
        t->conv = nc->prelude[i].conv;
        t->cin = m->prelude[i].conv.cin, t->cout = m->prelude[i].conv.cout, t->k = 3;
        t->dilation = m->prelude[i].conv.dilation, t->stride = m->prelude[i].conv.stride;
    }
    for (int s = 0; s < m->n_stages; s++) {
        const stage_desc *st = &m->stages[s];
        const int L = st->height, f = st->kind == LAYER_RSU_F;
        char sn[24];
        if (s < m->n_levels)
            snprintf(sn, sizeof sn, "stage%d", s + 1);
        else
            snprintf(sn, sizeof sn, "stage%dd", m->n_stages - s);
        for (int j = 0; j < 2 * L; j++) {
            table_conv *t = &out[n++];
            t->conv = nc->blocks[s].members[j];
            t->k = 3, t->stride = 1;
            if (j == 0) {
                snprintf(t->prefix, sizeof t->prefix, "%s.rebnconvin", sn);
                t->cin = st->in_ch, t->cout = st->out_ch, t->dilation = 1;
            } else if (j <= L) {
                snprintf(t->prefix, sizeof t->prefix, "%s.rebnconv%d", sn, j);
                t->cin = j == 1 ? st->out_ch : st->mid_ch, t->cout = st->mid_ch;
                t->dilation = f ? 1 << (j - 1) : (j == L ? 2 : 1);
            } else {
                const int i = 2 * L - j;
                snprintf(t->prefix, sizeof t->prefix, "%s.rebnconv%dd", sn, i);
                t->cin = 2 * st->mid_ch, t->cout = i == 1 ? st->out_ch : st->mid_ch;
                t->dilation = f ? 1 << (i - 1) : 1;
            }
        }
    }
    for (int k = 0; k < m->n_sides; k++) {
        table_conv *t = &out[n++];
        snprintf(t->prefix, sizeof t->prefix, "side%d", k + 1);
        t->conv = nc->sides[k];
        t->cin = m->sides[k].conv.cin, t->cout = 1, t->k = 3, t->dilation = 1, t->stride = 1;
    }
    if (m->has_fuse) {
        table_conv *t = &out[n++];
        snprintf(t->prefix, sizeof t->prefix, "outconv");
        t->conv = nc->fuse;
        t->cin = m->n_sides, t->cout = 1, t->k = 1, t->dilation = 1, t->stride = 1;
    }
    return n;
}

/* Each conv against the slot it fills: shape, what its names claim, and
 * geometry (the converter's checks in convert_onnx_bytes). */
static int check_slots(onnx_graph *g, const table_conv *tc, int n)
{
    label_buf lb;
    char tb[LABEL_BYTES], b1[64], b2[64], b3[64], claim[96];
    for (int i = 0; i < n; i++) {
        const table_conv *t = &tc[i];
        const conv_rec *c = &g->convs[t->conv];
        const onnx_node *node = &g->nodes[c->node];
        const int64_t want[4] = {t->cout, t->cin, t->k, t->k};
        if (!shape_is(c->w, 4, want))
            return fail(g, "%s weight %s has shape %s, expected [%d, %d, %d, %d] for %s.weight",
                        label(lb, node), tensor_name(g, tb, c->weight_name),
                        format_dims(b1, sizeof b1, c->w), t->cout, t->cin, t->k, t->k, t->prefix);
        for (int j = 0; j < 2; j++)
            if (claimed_prefix(j ? node->name : g->names.names[c->weight_name], j, claim,
                               sizeof claim) && strcmp(claim, t->prefix) != 0)
                return fail(g, "%s (%s) sits where %s belongs: unexpected graph order",
                            label(lb, node), tensor_name(g, tb, c->weight_name), t->prefix);
        const int p = t->dilation * (t->k / 2);
        if (!list_is(&c->dil, 2, t->dilation) || !list_is(&c->pads, 4, p) ||
            !list_is(&c->strides, 2, t->stride))
            return fail(g, "%s (%s, %s): dilations %s pads %s strides %s, expected dilation %d "
                        "padding %d stride %d", label(lb, node), tensor_name(g, tb, c->weight_name),
                        t->prefix, format_list(b1, sizeof b1, &c->dil),
                        format_list(b2, sizeof b2, &c->pads),
                        format_list(b3, sizeof b3, &c->strides), t->dilation, p, t->stride);
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void putf32(unsigned char *p, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put32(p, bits);
}

static uint64_t align64(uint64_t n)
{
    return (n + 63) / 64 * 64;
}

/* Whether the stages are U2NetP's (the converter's known_name). */
static int is_u2netp(const u2net_model *m)
{
    static const int stages[11][6] = {
        {1, 7, 3, 16, 64, 0},   {1, 6, 64, 16, 64, 0},  {1, 5, 64, 16, 64, 0},
        {1, 4, 64, 16, 64, 0},  {2, 4, 64, 16, 64, 0},  {2, 4, 64, 16, 64, 0},
        {2, 4, 128, 16, 64, 1}, {1, 4, 128, 16, 64, 1}, {1, 5, 128, 16, 64, 1},
        {1, 6, 128, 16, 64, 1}, {1, 7, 128, 16, 64, 1}};
    if (m->n_prelude || !m->has_fuse || m->n_stages != 11)
        return 0;
    for (int s = 0; s < 11; s++) {
        const stage_desc *st = &m->stages[s];
        const int got[6] = {st->kind, st->height, st->in_ch, st->mid_ch, st->out_ch, st->role};
        if (memcmp(got, stages[s], sizeof got) != 0)
            return 0;
    }
    return 1;
}

/* One conv's folded weight and bias into the image at w and b, float16
 * bits or float32; -1 when a value is not finite. */
static int write_conv(onnx_graph *g, const conv_rec *c, int f16, unsigned char *w,
                      unsigned char *b, const char *prefix)
{
    const size_t cout = (size_t)c->w->dims[0], per = c->w->count / (cout ? cout : 1);
    int finite = 1;
    if (f16) {
        /* float16 values in, float16 bits out: exact */
        for (size_t i = 0; i < c->w->count; i++) {
            memcpy(w + 2 * i, c->w->data + 2 * i, 2);
            finite &= (c->w->data[2 * i + 1] & 0x7c) != 0x7c;
        }
        for (size_t o = 0; o < cout; o++) {
            if (c->b) {
                memcpy(b + 2 * o, c->b->data + 2 * o, 2);
                finite &= (c->b->data[2 * o + 1] & 0x7c) != 0x7c;
            } else {
                b[2 * o] = b[2 * o + 1] = 0;
            }
        }
    } else {
        for (size_t o = 0; o < cout; o++) {
            double s = 1.0, shift = 0.0;
            const double bias = c->b ? value_at(c->b, o) : 0.0;
            if (c->bn >= 0) {
                /* s = gamma / sqrt(var + eps); W' = W s; b' = (b - mean) s + beta */
                s = value_at(c->gamma, o) / sqrt(value_at(c->var, o) + c->eps);
                shift = value_at(c->beta, o);
            }
            for (size_t i = o * per; i < (o + 1) * per; i++) {
                const float v = c->bn >= 0 ? (float)(value_at(c->w, i) * s) : (float)value_at(c->w, i);
                finite &= isfinite(v) != 0;
                putf32(w + 4 * i, v);
            }
            const float bv = c->bn >= 0 ? (float)((bias - value_at(c->mean, o)) * s + shift)
                                        : (float)bias;
            finite &= isfinite(bv) != 0;
            putf32(b + 4 * o, bv);
        }
    }
    if (!finite) {
        char tb[LABEL_BYTES];
        return fail(g, "%s (%s): folded weights are not finite (bad BatchNorm statistics?)",
                    prefix, tensor_name(g, tb, c->weight_name));
    }
    return 0;
}

/* The version-2 file of the description and its convs, as pack_model
 * writes it (tools/u2net_format.py). */
static int write_image(onnx_graph *g, const u2net_model *m, const table_conv *tc, int n_convs,
                       unsigned char **image, size_t *image_bytes)
{
    int f16 = 1;
    for (int i = 0; i < n_convs; i++) {
        const conv_rec *c = &g->convs[tc[i].conv];
        f16 &= c->bn < 0 && c->w->store == STORE_F16 && (!c->b || c->b->store == STORE_F16);
    }
    const uint64_t esize = f16 ? 2 : 4;
    const int layers = m->n_prelude + m->n_stages + m->n_sides + m->has_fuse;
    const uint64_t layer_off = 192, tensor_off = layer_off + 32 * (uint64_t)layers;
    const uint64_t data_off = align64(tensor_off + 96 * 2 * (uint64_t)n_convs);
    uint64_t data_bytes = 0;
    for (int i = 0; i < n_convs; i++) {
        const uint64_t wn = (uint64_t)tc[i].cout * (uint64_t)tc[i].cin * (uint64_t)(tc[i].k * tc[i].k);
        data_bytes = align64(data_bytes) + wn * esize;
        data_bytes = align64(data_bytes) + (uint64_t)tc[i].cout * esize;
    }
    const uint64_t total = data_off + data_bytes;
    if (total > U2NET_MAX_FILE_BYTES)
        return fail(g, "the network's weights (%llu bytes) are larger than any model",
                    (unsigned long long)total);
    unsigned char *f = NULL;
    if (posix_memalign((void **)&f, 64, (size_t)total) != 0)
        return out_of_memory(g);
    memset(f, 0, (size_t)data_off);
    /* processing: U2Net's authors' for the U2Net layout, DIS's for ISNet's */
    unsigned char *p = f + 128;
    if (m->has_fuse) {
        const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
        put32(p, 320), put32(p + 4, 320);
        for (int c = 0; c < 3; c++)
            putf32(p + 8 + 4 * c, (float)mean[c]), putf32(p + 20 + 4 * c, (float)std[c]);
        put32(p + 32, 0), put32(p + 36, 1), put32(p + 40, 0);
    } else {
        put32(p, 1024), put32(p + 4, 1024);
        for (int c = 0; c < 3; c++)
            putf32(p + 8 + 4 * c, 0.5f), putf32(p + 20 + 4 * c, 1.0f);
        put32(p + 32, 1), put32(p + 36, 1), put32(p + 40, 1);
    }
    /* the layer table */
    unsigned char *row = f + layer_off;
    for (int i = 0; i < m->n_prelude; i++, row += 32) {
        const prelude_layer *pl = &m->prelude[i];
        put32(row, (uint32_t)pl->kind);
        if (pl->kind == LAYER_CONV) {
            const uint32_t v[6] = {(uint32_t)pl->conv.cin, (uint32_t)pl->conv.cout, 3,
                                   (uint32_t)pl->conv.stride, (uint32_t)pl->conv.dilation,
                                   (uint32_t)pl->relu};
            for (int j = 0; j < 6; j++)
                put32(row + 4 + 4 * j, v[j]);
        }
    }
    for (int s = 0; s < m->n_stages; s++, row += 32) {
        const stage_desc *st = &m->stages[s];
        const uint32_t v[6] = {(uint32_t)st->kind, (uint32_t)st->height, (uint32_t)st->in_ch,
                               (uint32_t)st->mid_ch, (uint32_t)st->out_ch, (uint32_t)st->role};
        for (int j = 0; j < 6; j++)
            put32(row + 4 * j, v[j]);
    }
    for (int k = 0; k < m->n_sides; k++, row += 32) {
        const side_desc *sd = &m->sides[k];
        put32(row, LAYER_SIDE), put32(row + 4, (uint32_t)sd->source);
        put32(row + 8, (uint32_t)sd->conv.cin), put32(row + 12, 1);
        put32(row + 16, (uint32_t)sd->resize_to);
    }
    if (m->has_fuse)
        put32(row, LAYER_FUSE), put32(row + 4, (uint32_t)m->n_sides), put32(row + 8, 1);
    /* the tensor table and the data */
    uint64_t at = 0;
    unsigned char *entry = f + tensor_off;
    for (int i = 0; i < n_convs; i++) {
        const table_conv *t = &tc[i];
        const uint64_t wn = (uint64_t)t->cout * (uint64_t)t->cin * (uint64_t)(t->k * t->k);
        unsigned char *w = NULL, *b = NULL;
        for (int j = 0; j < 2; j++, entry += 96) {
            const uint64_t start = align64(at), nbytes = (j ? (uint64_t)t->cout : wn) * esize;
            memset(f + data_off + at, 0, (size_t)(start - at));
            snprintf((char *)entry, 56, "%.48s.%s", t->prefix, j ? "bias" : "weight");
            put32(entry + 56, f16 ? 1 : 0);
            put32(entry + 60, j ? 1 : 4);
            put32(entry + 64, (uint32_t)t->cout);
            if (!j) {
                put32(entry + 68, (uint32_t)t->cin);
                put32(entry + 72, (uint32_t)t->k), put32(entry + 76, (uint32_t)t->k);
            }
            put64(entry + 80, start), put64(entry + 88, nbytes);
            *(j ? &b : &w) = f + data_off + start;
            at = start + nbytes;
        }
        if (write_conv(g, &g->convs[t->conv], f16, w, b, t->prefix) != 0) {
            free(f);
            return -1;
        }
    }
    /* the header */
    memcpy(f, "U2NC", 4);
    const uint32_t h32[9] = {2, 128, 0, (uint32_t)layers, 2 * (uint32_t)n_convs, f16 ? 1u : 0u,
                             3, 1, 0};
    for (int j = 0; j < 9; j++)
        put32(f + 4 + 4 * j, h32[j]);
    put64(f + 40, layer_off), put64(f + 48, tensor_off), put64(f + 56, data_off);
    put64(f + 64, data_bytes), put64(f + 72, total);
    snprintf((char *)f + 80, 32, "%s",
             !m->has_fuse ? "isnet" : is_u2netp(m) ? "u2netp" : "u2net");
    put32(f + 112, crc32_update(0, f + 128, (size_t)(total - 128)));
    put32(f + 116, crc32_update(0, f, 116));
    *image = f;
    *image_bytes = (size_t)total;
    return 0;
}

int onnx_sniff(const unsigned char *file, size_t size)
{
    return size >= 2 && file[0] == 0x08;
}

int onnx_model_image(const char *path, const unsigned char *file, size_t size,
                     unsigned char **image, size_t *image_bytes, u2net_error *err)
{
    onnx_graph g;
    memset(&g, 0, sizeof g);
    g.path = path, g.err = err;
    u2net_model *m = calloc(1, sizeof *m);
    network_convs nc;
    memset(&nc, 0, sizeof nc);
    int rc = -1;
    if (!m) {
        out_of_memory(&g);
        goto done;
    }
    if (read_graph(&g, file, size) != 0)
        goto done;
    for (int i = 0; i < g.n_nodes; i++)
        if (is_quantized_op(g.nodes[i].op)) {
            label_buf lb;
            fail(&g, "quantized ONNX model (%s): 8-bit weights are not supported; use the float32 "
                 "or float16 model", label(lb, &g.nodes[i]));
            goto done;
        }
    if (collect_convs(&g) != 0)
        goto done;
    if (g.n_convs == 0) {
        fail(&g, "ONNX graph has no Conv nodes: unknown network");
        goto done;
    }
    if (describe(&g, m, &nc) != 0)
        goto done;
    const size_t max_convs = (size_t)m->n_prelude + 2u * U2NET_MAX_HEIGHT * (size_t)m->n_stages +
                             (size_t)m->n_sides + 1;
    table_conv *tc = remember(&g, malloc(max_convs * sizeof *tc));
    if (!tc) {
        out_of_memory(&g);
        goto done;
    }
    const int n_convs = table_convs(m, &nc, tc);
    if (check_slots(&g, tc, n_convs) != 0 || write_image(&g, m, tc, n_convs, image, image_bytes) != 0)
        goto done;
    rc = 0;
done:
    free(m);
    graph_free(&g);
    return rc;
}
