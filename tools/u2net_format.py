"""The u2net.c model file (docs/FORMAT.md): network descriptions, tensor
lists, BatchNorm folding, the version-2 writer and a verifying reader of
versions 1 and 2.

A network is described by a Network: the prelude (PreludeConv / PreludePool
layers), the stage table (6-tuples (kind, L, in, mid, out, role) as in
version 1), the side outputs (Side(source, resize_to)), whether a fuse
convolution follows, which output is the prediction and the processing
block. A plain list of stage tuples is accepted wherever a Network is and
means the U2Net layout around those stages (what version 1 stores).

numpy and the standard library only.
"""
import collections
import math
import os
import struct
import tempfile
import zlib

import numpy as np

MAGIC = b"U2NC"
VERSION = 2
HEADER_BYTES = 128
PROCESSING_BYTES = 64
LAYER_BYTES = 32
TENSOR_BYTES = 96
ALIGN = 64
NAME_BYTES = 32
TENSOR_NAME_BYTES = 56
LAYER_TABLE_OFFSET = HEADER_BYTES + PROCESSING_BYTES

# layer kinds
RSU_L = 1           # pooling U-block RSU-L
RSU_F = 2           # dilated U-block RSU-F (no pooling)
PRELUDE_CONV = 3
PRELUDE_POOL = 4
SIDE = 5
FUSE = 6
ENCODER = 0
DECODER = 1

DTYPES = {"f32": 0, "f16": 1}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
NP_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}

# limits of docs/FORMAT.md (Checks the engine makes)
MAX_PRELUDE = 8
MIN_STAGES, MAX_STAGES = 3, 29
MAX_HEIGHT = {RSU_L: 16, RSU_F: 8}
MAX_CHANNELS = 8192
MAX_SIDES = 16
MAX_OUTPUTS = 16
MAX_SIZE = 8192
MAX_DILATION = 16
MAX_LAYERS = MAX_PRELUDE + MAX_STAGES + MAX_SIDES + 1
MAX_TENSORS = 4096

SCALE_MAX, SCALE_255 = 0, 1
RESIZE_BACK_8BIT, RESIZE_BACK_FLOAT = 0, 1

PreludeConv = collections.namedtuple("PreludeConv", "cin cout stride dilation relu")
PreludePool = collections.namedtuple("PreludePool", "")
Side = collections.namedtuple("Side", "source resize_to")
Processing = collections.namedtuple("Processing", "width height mean std scale normalise resize_back")
Network = collections.namedtuple(
    "Network", "prelude stages sides fuse prediction processing in_channels out_channels")


def _f32(v):
    return float(np.float32(v))


def make_processing(width, height, mean, std, scale, normalise, resize_back):
    """A Processing with mean and std rounded to float32, as a file stores them."""
    return Processing(int(width), int(height), tuple(_f32(v) for v in mean),
                      tuple(_f32(v) for v in std), int(scale), int(normalise), int(resize_back))


# FORMAT.md, processing block: the U2Net row and the ISNet row
U2NET_PROCESSING = make_processing(320, 320, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                                   SCALE_MAX, 1, RESIZE_BACK_8BIT)
ISNET_PROCESSING = make_processing(1024, 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0),
                                   SCALE_255, 1, RESIZE_BACK_FLOAT)

# (kind, L, in, mid, out, role) in file order: stage1..stage6, stage5d..stage1d.
U2NET_STAGES = (
    (RSU_L, 7, 3, 32, 64, ENCODER),
    (RSU_L, 6, 64, 32, 128, ENCODER),
    (RSU_L, 5, 128, 64, 256, ENCODER),
    (RSU_L, 4, 256, 128, 512, ENCODER),
    (RSU_F, 4, 512, 256, 512, ENCODER),
    (RSU_F, 4, 512, 256, 512, ENCODER),
    (RSU_F, 4, 1024, 256, 512, DECODER),
    (RSU_L, 4, 1024, 128, 256, DECODER),
    (RSU_L, 5, 512, 64, 128, DECODER),
    (RSU_L, 6, 256, 32, 64, DECODER),
    (RSU_L, 7, 128, 16, 64, DECODER),
)

U2NETP_STAGES = (
    (RSU_L, 7, 3, 16, 64, ENCODER),
    (RSU_L, 6, 64, 16, 64, ENCODER),
    (RSU_L, 5, 64, 16, 64, ENCODER),
    (RSU_L, 4, 64, 16, 64, ENCODER),
    (RSU_F, 4, 64, 16, 64, ENCODER),
    (RSU_F, 4, 64, 16, 64, ENCODER),
    (RSU_F, 4, 128, 16, 64, DECODER),
    (RSU_L, 4, 128, 16, 64, DECODER),
    (RSU_L, 5, 128, 16, 64, DECODER),
    (RSU_L, 6, 128, 16, 64, DECODER),
    (RSU_L, 7, 128, 16, 64, DECODER),
)

# ISNet (DIS, RMBG-1.4): U2Net's stages with stage 1 reading conv_in's 64 channels
ISNET_STAGES = ((RSU_L, 7, 64, 32, 64, ENCODER),) + U2NET_STAGES[1:]


class FormatError(ValueError):
    """A model file or a model description that breaks docs/FORMAT.md."""


def _align(n, a=ALIGN):
    return (n + a - 1) // a * a


def _stages(stages):
    return tuple(tuple(int(v) for v in s) for s in stages)


def u2net_network(stages, processing=U2NET_PROCESSING, in_channels=3, out_channels=1):
    """The U2Net layout around a stage table: no prelude; side k reads
    stagekd (stagen for k = n); side 1 at the input's size, the others resized
    to side 1's; a fuse convolution; the prediction is the fused map."""
    stages = _stages(stages)
    n = (len(stages) + 1) // 2
    sides = tuple(Side(2 * n - 1 - k, 0 if k == 1 else 1) for k in range(1, n + 1))
    return Network((), stages, sides, True, 0, processing, in_channels, out_channels)


def isnet_network(stages=ISNET_STAGES, processing=ISNET_PROCESSING, in_channels=3, out_channels=1):
    """The ISNet layout: a 3x3 stride-2 stem (conv_in, no ReLU) into stage 1,
    U2Net's side sources, every side resized to the input's size, no fuse;
    the prediction is side 1."""
    stages = _stages(stages)
    n = (len(stages) + 1) // 2
    prelude = (PreludeConv(in_channels, stages[0][2], 2, 1, 0),)
    sides = tuple(Side(2 * n - 1 - k, 0) for k in range(1, n + 1))
    return Network(prelude, stages, sides, False, 0, processing, in_channels, out_channels)


U2NET = u2net_network(U2NET_STAGES)
U2NETP = u2net_network(U2NETP_STAGES)
ISNET = isnet_network(ISNET_STAGES)

# The ready-made networks by their default model names.
NETWORKS = collections.OrderedDict((("u2net", U2NET), ("u2netp", U2NETP), ("isnet", ISNET)))
LABELS = {"u2net": "U2Net", "u2netp": "U2NetP", "isnet": "ISNet"}


def as_network(net):
    """A Network for a Network or a plain stage table (the U2Net layout)."""
    if isinstance(net, Network):
        return net
    return u2net_network(net)


def same_layers(a, b):
    """Whether two descriptions have the same layer table (processing aside)."""
    a, b = as_network(a), as_network(b)
    return (a.prelude, a.stages, a.sides, a.fuse, a.in_channels, a.out_channels) == \
        (b.prelude, b.stages, b.sides, b.fuse, b.in_channels, b.out_channels)


def known_name(net):
    """'u2net', 'u2netp' or 'isnet' when the layer table is a ready-made one, else None."""
    for name, known in NETWORKS.items():
        if same_layers(net, known):
            return name
    return None


def output_count(net):
    net = as_network(net)
    return len(net.sides) + (1 if net.fuse else 0)


def stage_names(stages):
    """['stage1', ..., 'stagen', 'stage{n-1}d', ..., 'stage1d']."""
    if isinstance(stages, Network):
        stages = stages.stages
    count = len(stages)
    if count < 1 or count % 2 != 1:
        raise FormatError("stage count %d is not 2n-1" % count)
    n = (count + 1) // 2
    return ["stage%d" % k for k in range(1, n + 1)] + ["stage%dd" % k for k in range(n - 1, 0, -1)]


def stage_level(index, count):
    """The level (1 = the input's resolution after the prelude) of stage `index`."""
    n = (count + 1) // 2
    return index + 1 if index < n else count - index


def stage_convs(stage):
    """Convolutions of one stage: list of (conv_name, in_ch, out_ch, k, dilation)."""
    kind, L, cin, mid, cout = (int(v) for v in stage[:5])
    convs = [("rebnconvin", cin, cout, 3, 1), ("rebnconv1", cout, mid, 3, 1)]
    if kind == RSU_L:
        for i in range(2, L):
            convs.append(("rebnconv%d" % i, mid, mid, 3, 1))
        convs.append(("rebnconv%d" % L, mid, mid, 3, 2))
        for i in range(L - 1, 1, -1):
            convs.append(("rebnconv%dd" % i, 2 * mid, mid, 3, 1))
    elif kind == RSU_F:
        for i in range(2, L + 1):
            convs.append(("rebnconv%d" % i, mid, mid, 3, 2 ** (i - 1)))
        for i in range(L - 1, 1, -1):
            convs.append(("rebnconv%dd" % i, 2 * mid, mid, 3, 2 ** (i - 1)))
    else:
        raise FormatError("unknown stage kind %r" % (kind,))
    convs.append(("rebnconv1d", 2 * mid, cout, 3, 1))
    return convs


def _is_conv(layer):
    return isinstance(layer, PreludeConv)


def conv_list(net, out_channels=None):
    """Every convolution in tensor-table order: (name_prefix, in_ch, out_ch, k, dilation).

    'prelude{i}' (i counts every prelude layer from 1), 'stage1.rebnconvin' ...,
    'side1' .. 'sidem', then 'outconv' when there is a fuse convolution.
    `net` is a Network or a stage table (U2Net layout, out_channels 1 unless given).
    """
    if not isinstance(net, Network):
        net = u2net_network(net, out_channels=1 if out_channels is None else out_channels)
    out_ch = net.out_channels
    out = []
    for i, layer in enumerate(net.prelude, 1):
        if _is_conv(layer):
            out.append(("prelude%d" % i, int(layer.cin), int(layer.cout), 3, int(layer.dilation)))
    for sname, st in zip(stage_names(net.stages), net.stages):
        for cname, ci, co, k, d in stage_convs(st):
            out.append(("%s.%s" % (sname, cname), ci, co, k, d))
    for k, side in enumerate(net.sides, 1):
        src = side.source
        cin = net.stages[src][4] if 0 <= src < len(net.stages) else 0
        out.append(("side%d" % k, cin, out_ch, 3, 1))
    if net.fuse:
        out.append(("outconv", len(net.sides) * out_ch, out_ch, 1, 1))
    return out


def tensor_list(net, out_channels=None):
    """Expected tensors in file order: list of (name, shape tuple)."""
    out = []
    for prefix, ci, co, k, _d in conv_list(net, out_channels):
        out.append((prefix + ".weight", (co, ci, k, k)))
        out.append((prefix + ".bias", (co,)))
    return out


def count_values(net, out_channels=None):
    return sum(int(np.prod(s)) for _n, s in tensor_list(net, out_channels))


def layer_table(net):
    """The layer table of a description: a list of 8-tuples (kind, field 1..7).
    A side whose source is not a stage gets in_ch 0 (only broken test files
    have one)."""
    net = as_network(net)
    rows = []
    for layer in net.prelude:
        if _is_conv(layer):
            rows.append((PRELUDE_CONV, layer.cin, layer.cout, 3, layer.stride, layer.dilation, layer.relu, 0))
        else:
            rows.append((PRELUDE_POOL, 0, 0, 0, 0, 0, 0, 0))
    for kind, L, cin, mid, cout, role in net.stages:
        rows.append((kind, L, cin, mid, cout, role, 0, 0))
    for side in net.sides:
        src = side.source
        cin = net.stages[src][4] if 0 <= src < len(net.stages) else 0
        rows.append((SIDE, src, cin, net.out_channels, side.resize_to, 0, 0, 0))
    if net.fuse:
        rows.append((FUSE, len(net.sides) * net.out_channels, net.out_channels, 0, 0, 0, 0, 0))
    return [tuple(int(v) for v in r) for r in rows]


# ---------------------------------------------------------------------------
# checks (docs/FORMAT.md, "Checks the engine makes on the layer table")

def _channels_ok(*vals):
    return all(1 <= v <= MAX_CHANNELS for v in vals)


def check_stages(stages, in_channels=3):
    """Raise FormatError unless `stages` is a valid stage table whose first
    stage reads `in_channels`; returns it as tuples."""
    stages = [tuple(int(v) for v in s) for s in stages]
    if not MIN_STAGES <= len(stages) <= MAX_STAGES or len(stages) % 2 != 1:
        raise FormatError("stage count %d is not odd in %d..%d" % (len(stages), MIN_STAGES, MAX_STAGES))
    n = (len(stages) + 1) // 2
    names = stage_names(stages)
    for i, s in enumerate(stages):
        if len(s) != 6:
            raise FormatError("stage %d: expected 6 fields, got %d" % (i, len(s)))
        kind, L, cin, mid, cout, role = s
        want_role = ENCODER if i < n else DECODER
        if kind not in (RSU_L, RSU_F):
            raise FormatError("%s: unknown kind %d" % (names[i], kind))
        if role != want_role:
            raise FormatError("%s: role %d, expected %d (encoders then decoders)" % (names[i], role, want_role))
        if not 2 <= L <= MAX_HEIGHT[kind]:
            raise FormatError("%s: height %d outside 2..%d" % (names[i], L, MAX_HEIGHT[kind]))
        if not _channels_ok(cin, mid, cout):
            raise FormatError("%s: channels %d/%d/%d outside 1..%d" % (names[i], cin, mid, cout, MAX_CHANNELS))
    if stages[0][2] != in_channels:
        raise FormatError("stage1 in_ch %d != %d (its input's channels)" % (stages[0][2], in_channels))
    for k in range(1, n):
        if stages[k][2] != stages[k - 1][4]:
            raise FormatError("%s in_ch %d != %s out_ch %d"
                              % (names[k], stages[k][2], names[k - 1], stages[k - 1][4]))
    # decoder j (index n + j) is stage{n-1-j}d; it takes up(deeper) + encoder skip
    for j in range(n - 1):
        k = n - 1 - j
        deeper = stages[n - 1] if j == 0 else stages[n + j - 1]
        skip = stages[k - 1]
        want = deeper[4] + skip[4]
        if stages[n + j][2] != want:
            raise FormatError("%s in_ch %d != %d + %d" % (names[n + j], stages[n + j][2], deeper[4], skip[4]))
    return stages


def check_processing(p):
    """Raise FormatError unless the processing block's values are valid."""
    if not (1 <= p.width <= MAX_SIZE and 1 <= p.height <= MAX_SIZE):
        raise FormatError("processing: input size %dx%d outside 1..%d" % (p.width, p.height, MAX_SIZE))
    if len(p.mean) != 3 or len(p.std) != 3:
        raise FormatError("processing: mean and std need 3 values each")
    if not all(math.isfinite(v) for v in p.mean):
        raise FormatError("processing: mean %s is not finite" % (list(p.mean),))
    if not all(math.isfinite(v) and v > 0 for v in p.std):
        raise FormatError("processing: std %s is not finite and > 0" % (list(p.std),))
    for what in ("scale", "normalise", "resize_back"):
        if getattr(p, what) not in (0, 1):
            raise FormatError("processing: %s %d is not 0 or 1" % (what, getattr(p, what)))


def check_network(net):
    """Raise FormatError unless the description is a valid network; returns it."""
    net = as_network(net)
    if net.in_channels != 3 or net.out_channels != 1:
        raise FormatError("%d input / %d output channels (the format has 3 -> 1)"
                          % (net.in_channels, net.out_channels))
    if len(net.prelude) > MAX_PRELUDE:
        raise FormatError("%d prelude layers (at most %d)" % (len(net.prelude), MAX_PRELUDE))
    ch = net.in_channels
    keeps_size = True
    for i, layer in enumerate(net.prelude, 1):
        if isinstance(layer, PreludePool):
            keeps_size = False
            continue
        if not _is_conv(layer):
            raise FormatError("prelude layer %d is neither a convolution nor a pool" % i)
        if layer.cin != ch:
            raise FormatError("prelude%d in_ch %d != %d (its input's channels)" % (i, layer.cin, ch))
        if not _channels_ok(layer.cout):
            raise FormatError("prelude%d out_ch %d outside 1..%d" % (i, layer.cout, MAX_CHANNELS))
        if layer.stride not in (1, 2):
            raise FormatError("prelude%d stride %d is not 1 or 2" % (i, layer.stride))
        if not 1 <= layer.dilation <= MAX_DILATION:
            raise FormatError("prelude%d dilation %d outside 1..%d" % (i, layer.dilation, MAX_DILATION))
        if layer.relu not in (0, 1):
            raise FormatError("prelude%d relu %d is not 0 or 1" % (i, layer.relu))
        keeps_size = keeps_size and layer.stride == 1
        ch = layer.cout
    stages = check_stages(net.stages, ch)
    count = len(stages)
    m = len(net.sides)
    if not 1 <= m <= MAX_SIDES:
        raise FormatError("%d side outputs (1..%d)" % (m, MAX_SIDES))
    for k, side in enumerate(net.sides, 1):
        if not 0 <= side.source < count:
            raise FormatError("side%d reads stage %d, the network has stages 0..%d" % (k, side.source, count - 1))
        if not 0 <= side.resize_to <= m:
            raise FormatError("side%d resize_to %d outside 0..%d" % (k, side.resize_to, m))
        if side.resize_to:
            target = net.sides[side.resize_to - 1].source
            if not (keeps_size and 0 <= target < count and stage_level(target, count) == 1):
                raise FormatError("side%d is resized to side%d's size, which is not the input's size"
                                  % (k, side.resize_to))
    outputs = m + (1 if net.fuse else 0)
    if outputs > MAX_OUTPUTS:
        raise FormatError("%d outputs (at most %d)" % (outputs, MAX_OUTPUTS))
    if not 0 <= net.prediction < outputs:
        raise FormatError("prediction %d outside the %d outputs" % (net.prediction, outputs))
    check_processing(net.processing)
    return net


def _network_from_layers(rows, in_channels, out_channels, prediction, processing):
    """Parse a version-2 layer table (list of 8-tuples) into a Network,
    checking what the Network itself cannot carry (order, unused fields,
    stored channels of sides and fuse); check_network does the rest."""
    prelude, stages, sides, fuse = [], [], [], False
    order = ((PRELUDE_CONV, PRELUDE_POOL), (RSU_L, RSU_F), (SIDE,), (FUSE,))
    section = 0
    for i, r in enumerate(rows):
        kind = r[0]
        if kind not in (RSU_L, RSU_F, PRELUDE_CONV, PRELUDE_POOL, SIDE, FUSE):
            raise FormatError("layer %d: unknown kind %d" % (i, kind))
        while section < len(order) and kind not in order[section]:
            section += 1
        if section == len(order) or (kind == FUSE and fuse):
            raise FormatError("layer %d: kind %d out of order (prelude, stages, sides, fuse)" % (i, kind))
        used = {PRELUDE_CONV: 6, PRELUDE_POOL: 0, RSU_L: 5, RSU_F: 5, SIDE: 4, FUSE: 2}[kind]
        if any(r[1 + used:]):
            raise FormatError("layer %d (kind %d): unused fields are not 0" % (i, kind))
        if kind == PRELUDE_CONV:
            cin, cout, ksize, stride, dil, relu = r[1:7]
            if ksize != 3:
                raise FormatError("layer %d: prelude kernel %d is not 3" % (i, ksize))
            prelude.append(PreludeConv(cin, cout, stride, dil, relu))
        elif kind == PRELUDE_POOL:
            prelude.append(PreludePool())
        elif kind in (RSU_L, RSU_F):
            stages.append(tuple(r[:6]))
        elif kind == SIDE:
            source, cin, cout, resize_to = r[1:5]
            k = len(sides) + 1
            if source < len(stages) and cin != stages[source][4]:
                raise FormatError("side%d in_ch %d != stage %d's out_ch %d" % (k, cin, source, stages[source][4]))
            if cout != out_channels:
                raise FormatError("side%d out_ch %d != out_channels %d" % (k, cout, out_channels))
            sides.append(Side(source, resize_to))
        else:
            fuse = True
            if r[1] != len(sides) * out_channels or r[2] != out_channels:
                raise FormatError("fuse %d -> %d, expected %d -> %d"
                                  % (r[1], r[2], len(sides) * out_channels, out_channels))
    if not stages:
        raise FormatError("the layer table has no stages")
    net = Network(tuple(prelude), tuple(stages), tuple(sides), fuse, prediction, processing,
                  in_channels, out_channels)
    return check_network(net)


def fold_bn(w, b, gamma, beta, mean, var, eps=1e-5):
    """Fold inference BatchNorm into a conv: returns (W', b') as float32.

    s = gamma / sqrt(var + eps); W' = W * s (per output channel); b' = (b - mean) * s + beta.
    Computed in float64. `b` may be None (conv without bias).
    """
    w = np.asarray(w, dtype=np.float64)
    cout = w.shape[0]
    b = np.zeros(cout) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
    gamma, beta, mean, var = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (gamma, beta, mean, var))
    for what, a in (("bias", b), ("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if a.shape != (cout,):
            raise FormatError("fold_bn: %s has %d values, conv has %d output channels" % (what, a.size, cout))
    s = gamma / np.sqrt(var + float(eps))
    w2 = w * s.reshape((cout,) + (1,) * (w.ndim - 1))
    b2 = (b - mean) * s + beta
    return w2.astype(np.float32), b2.astype(np.float32)


def _check_name(name):
    if isinstance(name, str):
        name = name.encode("ascii", "replace")
    if not name or len(name) >= NAME_BYTES or b"\0" in name:
        raise FormatError("model name must be 1..%d ASCII characters" % (NAME_BYTES - 1))
    if any(c < 0x21 or c > 0x7E for c in name):
        raise FormatError("model name %r must be printable ASCII without spaces" % name.decode("ascii", "replace"))
    return name


# ---------------------------------------------------------------------------
# writing

_HEADER = struct.Struct("<4s9I5Q32sII8s")
_PROCESSING = struct.Struct("<II3f3fIII20s")
_LAYER = struct.Struct("<8I")
_TENSOR = struct.Struct("<56sII4IQQ")
assert _HEADER.size == HEADER_BYTES and _PROCESSING.size == PROCESSING_BYTES
assert _LAYER.size == LAYER_BYTES and _TENSOR.size == TENSOR_BYTES


def pack_processing(p, reserved=b""):
    return _PROCESSING.pack(p.width, p.height, *p.mean, *p.std, p.scale, p.normalise, p.resize_back,
                            reserved)


def pack_model(name, net, tensors, dtype="f32", check=True, layers=None):
    """Build the bytes of a version-2 model file.

    net: a Network (or a stage table: the U2Net layout). tensors: ordered
    list of (name, array). With check=True (the default) the description and
    every tensor name and shape are validated against conv_list(net);
    check=False lets tests build deliberately broken files, and `layers` (a
    list of 8-tuples) then replaces the layer table made from `net`.
    """
    if dtype not in DTYPES:
        raise FormatError("dtype must be one of %s" % ", ".join(DTYPES))
    code = DTYPES[dtype]
    npdt = NP_DTYPES[code]
    net = as_network(net)
    bname = _check_name(name) if check else (name.encode() if isinstance(name, str) else name)
    tensors = [(tn, np.asarray(a)) for tn, a in tensors]
    if check:
        if layers is not None:
            raise FormatError("a layer table is only given for broken test files (check=False)")
        check_network(net)
        want = tensor_list(net)
        if len(tensors) != len(want):
            raise FormatError("%d tensors given, the layer table needs %d" % (len(tensors), len(want)))
        for (tn, a), (wn, ws) in zip(tensors, want):
            if tn != wn:
                raise FormatError("tensor %r where %r was expected" % (tn, wn))
            if tuple(a.shape) != ws:
                raise FormatError("tensor %s has shape %s, expected %s" % (tn, list(a.shape), list(ws)))
            if not np.all(np.isfinite(a)):
                raise FormatError("tensor %s has non-finite values" % tn)
    rows = layer_table(net) if layers is None else [tuple(int(v) for v in r) for r in layers]
    tensor_table_offset = LAYER_TABLE_OFFSET + LAYER_BYTES * len(rows)
    data_offset = _align(tensor_table_offset + TENSOR_BYTES * len(tensors))

    body = bytearray(pack_processing(net.processing))
    for r in rows:
        body += _LAYER.pack(*r)
    data = bytearray()
    for tn, a in tensors:
        conv = a.astype(npdt)
        if check and not np.all(np.isfinite(conv)):
            raise FormatError("tensor %s does not fit in %s (overflow)" % (tn, dtype))
        raw = np.ascontiguousarray(conv).tobytes()
        data += b"\0" * (_align(len(data)) - len(data))
        off = len(data)
        data += raw
        dims = list(a.shape) + [0] * (4 - a.ndim)
        btn = tn.encode("ascii")
        if check and len(btn) >= TENSOR_NAME_BYTES:
            raise FormatError("tensor name %r too long" % tn)
        body += _TENSOR.pack(btn, code, a.ndim, *dims[:4], off, len(raw))
    body += b"\0" * (data_offset - HEADER_BYTES - len(body))
    body += data
    file_bytes = data_offset + len(data)
    assert HEADER_BYTES + len(body) == file_bytes
    header = make_header(layer_count=len(rows), tensor_count=len(tensors), dtype=code,
                         in_channels=net.in_channels, out_channels=net.out_channels,
                         prediction=net.prediction, tensor_table_offset=tensor_table_offset,
                         data_offset=data_offset, data_bytes=len(data), file_bytes=file_bytes,
                         name=bname, data_crc32=zlib.crc32(body) & 0xFFFFFFFF)
    return header + bytes(body)


def make_header(layer_count, tensor_count, dtype, in_channels, out_channels, prediction,
                tensor_table_offset, data_offset, data_bytes, file_bytes, name, data_crc32,
                magic=MAGIC, version=VERSION, header_bytes=HEADER_BYTES, flags=0,
                layer_table_offset=LAYER_TABLE_OFFSET, header_crc32=None):
    """Pack a 128-byte version-2 header; header_crc32=None computes it."""
    fields = [magic, version, header_bytes, flags, layer_count, tensor_count, dtype,
              in_channels, out_channels, prediction, layer_table_offset,
              tensor_table_offset, data_offset, data_bytes, file_bytes, name,
              data_crc32, 0, b"\0" * 8]
    raw = _HEADER.pack(*fields)
    if header_crc32 is None:
        header_crc32 = zlib.crc32(raw[:116]) & 0xFFFFFFFF
    fields[17] = header_crc32
    return _HEADER.pack(*fields)


def fix_crcs(buf):
    """Recompute both CRCs of a (possibly edited) model file image; returns bytes."""
    buf = bytearray(buf)
    struct.pack_into("<I", buf, 112, zlib.crc32(bytes(buf[HEADER_BYTES:])) & 0xFFFFFFFF)
    struct.pack_into("<I", buf, 116, zlib.crc32(bytes(buf[:116])) & 0xFFFFFFFF)
    return bytes(buf)


def atomic_write(path, data, overwrite=True):
    """Write bytes to `path` through a temp file in the same folder + os.replace."""
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError("%s exists" % path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def write_model(path, name, net, tensors, dtype="f32", protect=()):
    """Validate and write a model file atomically.

    net: a Network or a stage table (U2Net layout and processing).
    tensors: ordered list of (name, array) matching tensor_list(net).
    protect: paths that must never be overwritten (e.g. the converter's input).
    """
    for p in protect:
        if _same_file(path, p):
            raise FormatError("refusing to overwrite the input file %s" % p)
    data = pack_model(name, net, tensors, dtype)
    atomic_write(path, data)
    return len(data)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


# ---------------------------------------------------------------------------
# reading

class ModelFile(object):
    """What read_model returns: header fields, the network description
    (`net`, and its parts `prelude`, `stages`, `sides`, `fuse`, `prediction`,
    `processing`) and the tensors (name -> float32 array)."""

    def __repr__(self):
        return "<ModelFile v%d %s %s: %d layers, %d tensors, %d bytes>" % (
            self.version, self.name, self.dtype, len(self.layers), self.tensor_count, self.file_bytes)

    @property
    def conv_count(self):
        return self.tensor_count // 2

    @property
    def value_count(self):
        return sum(int(a.size) for a in self.tensors.values())

    @property
    def output_count(self):
        return output_count(self.net)


def read_model(path_or_bytes):
    """Read and verify a model file (version 2, or version 1 read as its
    version-2 equivalent); raises FormatError naming the problem."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        buf = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            buf = f.read()
    size = len(buf)
    if size < HEADER_BYTES:
        raise FormatError("file too short for a header (%d bytes)" % size)
    m = ModelFile()
    (m.magic, m.version, m.header_bytes, m.flags, count, m.tensor_count, m.dtype_code,
     m.in_channels, m.out_channels, field36, table_offset, m.tensor_table_offset,
     m.data_offset, m.data_bytes, m.file_bytes, rawname, m.data_crc32, m.header_crc32,
     reserved) = _HEADER.unpack_from(buf, 0)
    if m.magic != MAGIC:
        raise FormatError("bad magic %r (not a u2net.c model file)" % m.magic)
    if m.version not in (1, 2):
        raise FormatError("unsupported version %d (this reader reads 1 and 2)" % m.version)
    if zlib.crc32(buf[:116]) & 0xFFFFFFFF != m.header_crc32:
        raise FormatError("header CRC mismatch")
    if m.header_bytes != HEADER_BYTES:
        raise FormatError("header_bytes %d != %d" % (m.header_bytes, HEADER_BYTES))
    if m.flags != 0 or reserved != b"\0" * 8:
        raise FormatError("reserved header fields are not zero")
    if m.file_bytes != size:
        raise FormatError("file is %d bytes, header says %d" % (size, m.file_bytes))
    if m.dtype_code not in DTYPE_NAMES:
        raise FormatError("unknown dtype %d" % m.dtype_code)
    m.dtype = DTYPE_NAMES[m.dtype_code]
    m.name = rawname.rstrip(b"\0").decode("ascii", "replace")
    if m.in_channels != 3 or m.out_channels != 1:
        raise FormatError("%d input / %d output channels (the format has 3 -> 1)" % (m.in_channels, m.out_channels))
    if m.version == 1:
        first_table, max_rows = HEADER_BYTES, MAX_STAGES
    else:
        first_table, max_rows = LAYER_TABLE_OFFSET, MAX_LAYERS
    if not 1 <= count <= max_rows:
        raise FormatError("bad %s %d" % ("stage_count" if m.version == 1 else "layer_count", count))
    if table_offset != first_table:
        raise FormatError("table offset %d != %d" % (table_offset, first_table))
    if m.tensor_table_offset != table_offset + LAYER_BYTES * count:
        raise FormatError("bad tensor_table_offset %d" % m.tensor_table_offset)
    if m.tensor_count > MAX_TENSORS or m.tensor_count % 2:
        raise FormatError("bad tensor_count %d" % m.tensor_count)
    table_end = m.tensor_table_offset + TENSOR_BYTES * m.tensor_count
    if m.data_offset % ALIGN or m.data_offset < table_end or m.data_offset - table_end >= ALIGN:
        raise FormatError("bad data_offset %d" % m.data_offset)
    if m.data_offset + m.data_bytes != m.file_bytes:
        raise FormatError("data_offset + data_bytes != file_bytes")
    if zlib.crc32(buf[HEADER_BYTES:]) & 0xFFFFFFFF != m.data_crc32:
        raise FormatError("data CRC mismatch")
    m.layers = [_LAYER.unpack_from(buf, table_offset + LAYER_BYTES * i) for i in range(count)]
    if m.version == 1:
        m.default_size = field36
        for i, r in enumerate(m.layers):
            if r[0] not in (RSU_L, RSU_F):
                raise FormatError("stage %d: unknown kind %d" % (i, r[0]))
            if r[6] or r[7]:
                raise FormatError("stage %d: reserved fields not zero" % i)
        # the engine falls back to 320 for a size it cannot use
        side = field36 if 1 <= field36 <= MAX_SIZE else 320
        proc = U2NET_PROCESSING._replace(width=side, height=side)
        net = u2net_network([r[:6] for r in m.layers], proc, m.in_channels, m.out_channels)
        m.net = check_network(net)
    else:
        m.default_size = None
        v = _PROCESSING.unpack_from(buf, HEADER_BYTES)
        if v[11] != b"\0" * 20:
            raise FormatError("processing: reserved bytes are not zero")
        proc = Processing(v[0], v[1], tuple(v[2:5]), tuple(v[5:8]), v[8], v[9], v[10])
        m.net = _network_from_layers(m.layers, m.in_channels, m.out_channels, field36, proc)
    (m.prelude, m.stages, m.sides, m.fuse, m.prediction, m.processing) = (
        m.net.prelude, list(m.net.stages), m.net.sides, m.net.fuse, m.net.prediction, m.net.processing)
    want = tensor_list(m.net)
    if m.tensor_count != len(want):
        raise FormatError("tensor_count %d, the layer table needs %d" % (m.tensor_count, len(want)))
    esize = NP_DTYPES[m.dtype_code].itemsize
    m.tensors = collections.OrderedDict()
    m.tensor_info = []
    for i, (wname, wshape) in enumerate(want):
        tn, tdt, ndim, d0, d1, d2, d3, off, nbytes = _TENSOR.unpack_from(buf, m.tensor_table_offset + TENSOR_BYTES * i)
        name = tn.rstrip(b"\0").decode("ascii", "replace")
        dims = (d0, d1, d2, d3)
        m.tensor_info.append((name, tdt, ndim, dims, off, nbytes))
        if name != wname:
            raise FormatError("tensor %d is %r, expected %r" % (i, name, wname))
        if tdt != m.dtype_code:
            raise FormatError("tensor %s: dtype %d != header dtype %d" % (name, tdt, m.dtype_code))
        shape = tuple(dims[:ndim]) if ndim <= 4 else None
        if shape != wshape or any(dims[ndim:]):
            raise FormatError("tensor %s: dims %s, expected %s" % (name, list(dims[:max(0, min(ndim, 4))]), list(wshape)))
        if nbytes != int(np.prod(wshape)) * esize:
            raise FormatError("tensor %s: nbytes %d, expected %d" % (name, nbytes, int(np.prod(wshape)) * esize))
        if off % ALIGN or off + nbytes > m.data_bytes:
            raise FormatError("tensor %s: bad offset %d" % (name, off))
        a = np.frombuffer(buf, dtype=NP_DTYPES[m.dtype_code], count=nbytes // esize,
                          offset=m.data_offset + off).reshape(wshape)
        m.tensors[name] = a.astype(np.float32)
    return m
