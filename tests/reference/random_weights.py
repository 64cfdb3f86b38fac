"""Deterministic random U2Net / U2NetP / ISNet checkpoints and inputs (numpy
only: tests that run without PyTorch use this module).

random_state_dict(stages, seed) returns an official-style U2Net-family state
dict (BatchNorm not folded): an OrderedDict of checkpoint key -> numpy array;
random_isnet_state_dict(stages, seed) the same for the ISNet family (a
conv_in stem with bias and no BatchNorm, no outconv). The weights are scaled
so activations stay in a sane range through the whole network, every
BatchNorm has non-trivial statistics, and the sigmoid outputs are far from
saturation with visible spatial variation.

Descriptions of whole networks (what docs/FORMAT.md's layer table holds) are
Desc(prelude, stages, sides, fuse): prelude layers Conv(cin, cout, stride,
dilation, relu) or Pool(), sides Side(source stage index, resize_to).
u2net_desc(stages) and isnet_desc(stages) give the two layouts.

random_input(h, w, seed) returns a 3xHxW float32 image-like tensor (smooth
blobs plus noise, roughly ImageNet-normalised, values in about [-2, 2.5]).
"""
from collections import OrderedDict, namedtuple

import numpy as np

RSU_L, RSU_F = 1, 2
ENCODER, DECODER = 0, 1

# Stage tables: (kind, L, in, mid, out, role); kind 1 = RSU-L, 2 = RSU-F;
# role 0 = encoder, 1 = decoder; encoders stage1..stage6, then stage5d..stage1d.
U2NET_STAGES = [
    (1, 7, 3, 32, 64, 0),        # stage1
    (1, 6, 64, 32, 128, 0),      # stage2
    (1, 5, 128, 64, 256, 0),     # stage3
    (1, 4, 256, 128, 512, 0),    # stage4
    (2, 4, 512, 256, 512, 0),    # stage5
    (2, 4, 512, 256, 512, 0),    # stage6
    (2, 4, 1024, 256, 512, 1),   # stage5d
    (1, 4, 1024, 128, 256, 1),   # stage4d
    (1, 5, 512, 64, 128, 1),     # stage3d
    (1, 6, 256, 32, 64, 1),      # stage2d
    (1, 7, 128, 16, 64, 1),      # stage1d
]

U2NETP_STAGES = [
    (1, 7, 3, 16, 64, 0),
    (1, 6, 64, 16, 64, 0),
    (1, 5, 64, 16, 64, 0),
    (1, 4, 64, 16, 64, 0),
    (2, 4, 64, 16, 64, 0),
    (2, 4, 64, 16, 64, 0),
    (2, 4, 128, 16, 64, 1),
    (1, 4, 128, 16, 64, 1),
    (1, 5, 128, 16, 64, 1),
    (1, 6, 128, 16, 64, 1),
    (1, 7, 128, 16, 64, 1),
]

# ISNet (DIS isnet-general-use, RMBG-1.4): U2Net's stages, stage 1 reading
# the 64 channels of the conv_in stem.
ISNET_STAGES = [(1, 7, 64, 32, 64, 0)] + U2NET_STAGES[1:]

# The ISNet structure and key names with an eighth of the channels, for the
# tests that write one checkpoint in many formats.
ISNET_SLIM_STAGES = [
    (1, 7, 8, 4, 8, 0),
    (1, 6, 8, 4, 16, 0),
    (1, 5, 16, 8, 32, 0),
    (1, 4, 32, 16, 64, 0),
    (2, 4, 64, 32, 64, 0),
    (2, 4, 64, 32, 64, 0),
    (2, 4, 128, 32, 64, 1),
    (1, 4, 128, 16, 32, 1),
    (1, 5, 64, 8, 16, 1),
    (1, 6, 32, 4, 8, 1),
    (1, 7, 16, 2, 8, 1),
]

STAGES = {"u2net": U2NET_STAGES, "u2netp": U2NETP_STAGES, "isnet": ISNET_STAGES,
          "isnet_slim": ISNET_SLIM_STAGES}
ISNET_KINDS = ("isnet", "isnet_slim")

# The seeds of the committed goldens (and of the slim ISNet's checkpoints).
SEEDS = {"u2netp": 1, "u2net": 2, "isnet": 3, "isnet_slim": 4}

Desc = namedtuple("Desc", "prelude stages sides fuse")
Conv = namedtuple("Conv", "cin cout stride dilation relu")
Pool = namedtuple("Pool", "")
Side = namedtuple("Side", "source resize_to")


def u2net_desc(stages):
    """U2Net: no prelude; side k reads stagekd (side n stagen), side 1 stays at
    the input's size and the others are resized to it; a fuse convolution."""
    stages = [tuple(s) for s in stages]
    n = (len(stages) + 1) // 2
    return Desc((), stages, [Side(2 * n - 1 - k, 0 if k == 1 else 1) for k in range(1, n + 1)], True)


def isnet_desc(stages, in_ch=3):
    """ISNet: a 3x3 stride-2 stem without BatchNorm or ReLU before stage 1,
    U2Net's side sources each resized to the input's size, no fuse."""
    stages = [tuple(s) for s in stages]
    n = (len(stages) + 1) // 2
    return Desc((Conv(in_ch, stages[0][2], 2, 1, 0),), stages,
                [Side(2 * n - 1 - k, 0) for k in range(1, n + 1)], False)


def description(kind):
    """The Desc of a named network (u2net, u2netp, isnet, isnet_slim)."""
    return (isnet_desc if kind in ISNET_KINDS else u2net_desc)(STAGES[kind])


def random_kind_state_dict(kind, seed=None):
    """The random official-key state dict of a named network (its SEEDS seed by default)."""
    seed = SEEDS[kind] if seed is None else seed
    if kind in ISNET_KINDS:
        return random_isnet_state_dict(STAGES[kind], seed)
    return random_state_dict(STAGES[kind], seed)
INPUT_SEEDS = {(320, 320): 101, (203, 317): 102, (97, 61): 103}


def input_seed(h, w):
    """The input seed for an HxW golden (100 + something per size)."""
    return INPUT_SEEDS.get((h, w), 100 + (h * 1009 + w) % 9973)


def stage_names(stages):
    """Module names of the stages, in stage-table order."""
    n = (len(stages) + 1) // 2
    assert len(stages) == 2 * n - 1, "stage table must have 2n-1 entries"
    return ["stage%d" % k for k in range(1, n + 1)] + ["stage%dd" % k for k in range(n - 1, 0, -1)]


def stage_convs(kind, L, in_ch, mid, out):
    """The convolutions of one stage in FORMAT.md order: (name, cin, cout, dilation)."""
    convs = [("rebnconvin", in_ch, out, 1), ("rebnconv1", out, mid, 1)]
    if kind == RSU_L:
        for i in range(2, L):
            convs.append(("rebnconv%d" % i, mid, mid, 1))
        convs.append(("rebnconv%d" % L, mid, mid, 2))
        for i in range(L - 1, 1, -1):
            convs.append(("rebnconv%dd" % i, 2 * mid, mid, 1))
    elif kind == RSU_F:
        for i in range(2, L + 1):
            convs.append(("rebnconv%d" % i, mid, mid, 2 ** (i - 1)))
        for i in range(L - 1, 1, -1):
            convs.append(("rebnconv%dd" % i, 2 * mid, mid, 2 ** (i - 1)))
    else:
        raise ValueError("unknown stage kind %r" % (kind,))
    convs.append(("rebnconv1d", 2 * mid, out, 1))
    return convs


def side_channels(stages):
    """Input channels of side1..siden (side k from stagekd, side n from stagen)."""
    n = (len(stages) + 1) // 2
    dec = stages[n:]  # stage{n-1}d .. stage1d
    return [dec[len(dec) - k][4] for k in range(1, n)] + [stages[n - 1][4]]


def prelude_channels(desc, in_ch=3):
    """Channels of the prelude's output (stage 1's input)."""
    for layer in desc.prelude:
        if getattr(layer, "cout", None) is not None:
            in_ch = layer.cout
    return in_ch


# Scale knobs (tuned on real runs, see make_goldens.py --stats).
RES_GAIN = 0.7       # rebnconvin and rebnconv1d gains: keep hx1d + hxin from growing
SIDE_GAINS = (10.0, 10.0, 8.0, 3.0, 3.0, 2.0)  # side1..side6 weight gains (the
                     # shallow side maps see finer, weaker spatial structure)
SIDE_DC_CUT = 0.97   # fraction of each side kernel's mean removed
FUSE_STD = 0.6       # outconv weights


# ISNet: every side is upsampled from its own level to the input's size, so
# the deep ones are smooth ramps; these gains keep d1..d6 unsaturated with
# visible structure (make_goldens.py --stats).
ISNET_SIDE_GAINS = (10.0, 10.0, 4.0, 3.0, 4.0, 3.0)


def _random_stages(rng, stages, sd):
    for sname, (kind, L, cin, mid, cout, _role) in zip(stage_names(stages), stages):
        for cname, ci, co, _d in stage_convs(kind, L, cin, mid, cout):
            p = "%s.%s" % (sname, cname)
            gain = RES_GAIN if cname in ("rebnconvin", "rebnconv1d") else 1.0
            # He scale for a conv followed by ReLU; BN then rescales by gamma/sqrt(var).
            std = gain * np.sqrt(2.0 / (ci * 9))
            w = rng.standard_normal((co, ci, 3, 3)) * std
            b = rng.standard_normal(co) * 0.05
            var = rng.uniform(0.5, 2.0, co)
            mean = rng.standard_normal(co) * 0.1
            gamma = rng.uniform(0.6, 1.4, co) * np.sqrt(var)  # BN scale ~ U(0.6, 1.4)
            beta = rng.standard_normal(co) * 0.1
            sd[p + ".conv_s1.weight"] = w.astype(np.float32)
            sd[p + ".conv_s1.bias"] = b.astype(np.float32)
            sd[p + ".bn_s1.weight"] = gamma.astype(np.float32)
            sd[p + ".bn_s1.bias"] = beta.astype(np.float32)
            sd[p + ".bn_s1.running_mean"] = mean.astype(np.float32)
            sd[p + ".bn_s1.running_var"] = var.astype(np.float32)
            sd[p + ".bn_s1.num_batches_tracked"] = np.array(int(rng.integers(1, 100000)), dtype=np.int64)


def _random_sides(rng, stages, sd, gains, out_ch):
    for k, c in enumerate(side_channels(stages), 1):
        w = rng.standard_normal((out_ch, c, 3, 3))
        # Take most of the DC out of each 3x3 kernel: the side maps then follow
        # the spatial structure of the features instead of their (large,
        # positive) channel means, which would only shift the sigmoid.
        w -= SIDE_DC_CUT * w.mean(axis=(2, 3), keepdims=True)
        w *= gains[min(k, len(gains)) - 1] / np.sqrt(c * 9)
        sd["side%d.weight" % k] = w.astype(np.float32)
        sd["side%d.bias" % k] = (rng.standard_normal(out_ch) * 0.1).astype(np.float32)


def random_state_dict(stages, seed, out_ch=1):
    """Official-layout U2Net-family state dict (BN unfolded) of random weights,
    float32 (num_batches_tracked: int64 scalars), from numpy.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    sd = OrderedDict()
    _random_stages(rng, stages, sd)
    _random_sides(rng, stages, sd, SIDE_GAINS, out_ch)
    n = (len(stages) + 1) // 2
    w = rng.standard_normal((out_ch, n * out_ch, 1, 1)) * FUSE_STD
    sd["outconv.weight"] = w.astype(np.float32)
    sd["outconv.bias"] = (rng.standard_normal(out_ch) * 0.1).astype(np.float32)
    return sd


def random_isnet_state_dict(stages, seed, out_ch=1, in_ch=3):
    """Official-layout ISNet-family state dict (BN unfolded) of random weights:
    conv_in (a plain convolution with bias: no BatchNorm, no ReLU follows it),
    the stages, side1..siden; no outconv."""
    rng = np.random.default_rng(seed)
    sd = OrderedDict()
    c0 = stages[0][2]
    # no ReLU after the stem: a unit-gain (not He) scale keeps its output O(1)
    w = rng.standard_normal((c0, in_ch, 3, 3)) / np.sqrt(in_ch * 9)
    sd["conv_in.weight"] = w.astype(np.float32)
    sd["conv_in.bias"] = (rng.standard_normal(c0) * 0.1).astype(np.float32)
    _random_stages(rng, stages, sd)
    _random_sides(rng, stages, sd, ISNET_SIDE_GAINS, out_ch)
    return sd


def random_input(h, w, seed):
    """3xHxW float32: soft-edged ellipses ("objects", positions relative to
    the size) over a smooth gradient, plus mild pixel noise; about [-2, 2.5]."""
    rng = np.random.default_rng(seed)
    yy = (np.arange(h, dtype=np.float64)[:, None] + 0.5) / h
    xx = (np.arange(w, dtype=np.float64)[None, :] + 0.5) / w
    x = np.empty((3, h, w), dtype=np.float64)
    nobj = 8
    cy, cx = rng.uniform(0.1, 0.9, nobj), rng.uniform(0.1, 0.9, nobj)
    ry, rx = rng.uniform(0.08, 0.35, nobj), rng.uniform(0.08, 0.35, nobj)
    edge = rng.uniform(0.03, 0.15, nobj)
    amp = rng.uniform(-1.6, 1.6, (3, nobj))
    g = rng.uniform(-0.8, 0.8, (3, 2))
    base = rng.uniform(-0.5, 0.5, 3)
    objs = []
    for i in range(nobj):
        r = np.sqrt(((yy - cy[i]) / ry[i]) ** 2 + ((xx - cx[i]) / rx[i]) ** 2)
        objs.append(1.0 / (1.0 + np.exp((r - 1.0) / edge[i])))
    for c in range(3):
        v = base[c] + g[c, 0] * (yy - 0.5) + g[c, 1] * (xx - 0.5)
        for i in range(nobj):
            v = v + amp[c, i] * objs[i]
        x[c] = v
    x += rng.standard_normal((3, h, w)) * 0.08
    return np.clip(x, -2.0, 2.5).astype(np.float32)
