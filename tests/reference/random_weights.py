"""Deterministic random U2Net / U2NetP checkpoints and inputs (numpy only:
tests that run without PyTorch use this module).

random_state_dict(stages, seed) returns an official-style (BatchNorm not
folded) state dict: an OrderedDict of checkpoint key -> numpy array. The
weights are scaled so activations stay in a sane range through the whole
network, every BatchNorm has non-trivial statistics, and the seven sigmoid
outputs are far from saturation with visible spatial variation.

random_input(h, w, seed) returns a 3xHxW float32 image-like tensor (smooth
blobs plus noise, roughly ImageNet-normalised, values in about [-2, 2.5]).
"""
from collections import OrderedDict

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

STAGES = {"u2net": U2NET_STAGES, "u2netp": U2NETP_STAGES}

# The seeds of the committed goldens.
SEEDS = {"u2netp": 1, "u2net": 2}
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


# Scale knobs (tuned on real runs, see make_goldens.py --stats).
RES_GAIN = 0.7       # rebnconvin and rebnconv1d gains: keep hx1d + hxin from growing
SIDE_GAINS = (10.0, 10.0, 8.0, 3.0, 3.0, 2.0)  # side1..side6 weight gains (the
                     # shallow side maps see finer, weaker spatial structure)
SIDE_DC_CUT = 0.97   # fraction of each side kernel's mean removed
FUSE_STD = 0.6       # outconv weights


def random_state_dict(stages, seed, out_ch=1):
    """Official-layout state dict (BN unfolded) of random weights, float32
    (num_batches_tracked: int64 scalars), from numpy.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    sd = OrderedDict()
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
    n = (len(stages) + 1) // 2
    for k, c in enumerate(side_channels(stages), 1):
        w = rng.standard_normal((out_ch, c, 3, 3))
        # Take most of the DC out of each 3x3 kernel: the side maps then follow
        # the spatial structure of the features instead of their (large,
        # positive) channel means, which would only shift the sigmoid.
        w -= SIDE_DC_CUT * w.mean(axis=(2, 3), keepdims=True)
        w *= SIDE_GAINS[min(k, len(SIDE_GAINS)) - 1] / np.sqrt(c * 9)
        sd["side%d.weight" % k] = w.astype(np.float32)
        sd["side%d.bias" % k] = (rng.standard_normal(out_ch) * 0.1).astype(np.float32)
    w = rng.standard_normal((out_ch, n * out_ch, 1, 1)) * FUSE_STD
    sd["outconv.weight"] = w.astype(np.float32)
    sd["outconv.bias"] = (rng.standard_normal(out_ch) * 0.1).astype(np.float32)
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
