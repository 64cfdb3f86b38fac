"""PyTorch reference implementation of U2Net / U2NetP (and any network of the
same family), written from docs/u2net-architecture.md.

The network is described by a stage table, the same one docs/FORMAT.md stores:
a list of (kind, L, in_ch, mid_ch, out_ch, role), kind 1 = RSU-L (pooling),
kind 2 = RSU-F (dilated), role 0 = encoder, 1 = decoder; the n encoder stages
first (stage1..stagen), then the n-1 decoder stages deep to shallow
(stage{n-1}d..stage1d).

Module names follow the official checkpoints, so an official state dict loads
with strict=True into build(stages). build(stages, folded=True) is the same
network with BatchNorm replaced by identity (for BN-folded weights, e.g. the
project's .u2nc files: see load_u2nc).
"""
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The stage tables and the per-stage conv lists live in random_weights.py
# (numpy only) so that tests without torch share the same definitions.
from random_weights import (  # noqa: E402
    DECODER, ENCODER, RSU_F, RSU_L, STAGES, U2NET_STAGES, U2NETP_STAGES,
    side_channels, stage_convs, stage_names)

__all__ = ["RSU_L", "RSU_F", "ENCODER", "DECODER", "STAGES", "U2NET_STAGES", "U2NETP_STAGES",
           "stage_names", "stage_convs", "side_channels", "check_stages", "build", "u2net",
           "u2netp", "count_params", "load_state_dict", "fold_state_dict", "read_u2nc",
           "u2nc_to_folded_state_dict", "load_u2nc", "run", "as_float64", "U2Net", "RSU", "REBNCONV"]

DEFAULT_THREADS = 2


def check_stages(stages, in_ch=3):
    n = (len(stages) + 1) // 2
    assert n >= 1 and len(stages) == 2 * n - 1
    for k, (kind, L, cin, mid, out, role) in enumerate(stages):
        assert kind in (RSU_L, RSU_F) and L >= 2
        assert role == (ENCODER if k < n else DECODER)
    assert stages[0][2] == in_ch
    for k in range(1, n):
        assert stages[k][2] == stages[k - 1][4], "encoder chaining at stage%d" % (k + 1)
    if n > 1:
        assert stages[n][2] == stages[n - 1][4] + stages[n - 2][4]
    for j in range(n + 1, 2 * n - 1):
        k = 2 * n - 1 - j  # decoder stage index k (1-based): stagekd
        assert stages[j][2] == stages[j - 1][4] + stages[k - 1][4], "decoder chaining at stage%dd" % k


def _up(src, like):
    return F.interpolate(src, size=like.shape[2:], mode="bilinear", align_corners=False)


def _pool(x):
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class REBNCONV(nn.Module):
    def __init__(self, in_ch, out_ch, dirate=1, folded=False):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.Identity() if folded else nn.BatchNorm2d(out_ch, eps=1e-5)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """RSU-L (kind 1) or RSU-F (kind 2) of height L."""

    def __init__(self, kind, L, in_ch, mid, out, folded=False):
        super().__init__()
        self.kind, self.L = kind, L
        for name, cin, cout, d in stage_convs(kind, L, in_ch, mid, out):
            setattr(self, name, REBNCONV(cin, cout, d, folded))

    def forward(self, x):
        L = self.L
        hxin = self.rebnconvin(x)
        hx = [None, self.rebnconv1(hxin)]  # hx[i] = hx_i
        for i in range(2, L):
            inp = _pool(hx[i - 1]) if self.kind == RSU_L else hx[i - 1]
            hx.append(getattr(self, "rebnconv%d" % i)(inp))
        hx.append(getattr(self, "rebnconv%d" % L)(hx[L - 1]))
        d = hx[L]
        for i in range(L - 1, 0, -1):
            if i < L - 1 and self.kind == RSU_L:
                d = _up(d, hx[i])  # RSU-F keeps one size: no resampling
            d = getattr(self, "rebnconv%dd" % i)(torch.cat((d, hx[i]), 1))
        return d + hxin


class U2Net(nn.Module):
    def __init__(self, stages, folded=False, in_ch=3, out_ch=1):
        super().__init__()
        stages = [tuple(int(v) for v in s) for s in stages]
        check_stages(stages, in_ch)
        self.stages = stages
        self.n = (len(stages) + 1) // 2
        self.names = stage_names(stages)
        for name, (kind, L, cin, mid, out, _role) in zip(self.names, stages):
            setattr(self, name, RSU(kind, L, cin, mid, out, folded))
        for k, c in enumerate(side_channels(stages), 1):
            setattr(self, "side%d" % k, nn.Conv2d(c, out_ch, 3, padding=1))
        self.outconv = nn.Conv2d(self.n * out_ch, out_ch, 1)

    def forward(self, x):
        n = self.n
        enc = []
        hx = x
        for k in range(1, n + 1):
            if k > 1:
                hx = _pool(hx)
            hx = getattr(self, "stage%d" % k)(hx)
            enc.append(hx)
        feats = [None] * (n + 1)  # feats[k] feeds side k
        feats[n] = enc[n - 1]
        d = enc[n - 1]
        for k in range(n - 1, 0, -1):
            d = getattr(self, "stage%dd" % k)(torch.cat((_up(d, enc[k - 1]), enc[k - 1]), 1))
            feats[k] = d
        sides = [self.side1(feats[1])]
        for k in range(2, n + 1):
            sides.append(_up(getattr(self, "side%d" % k)(feats[k]), sides[0]))
        d0 = self.outconv(torch.cat(sides, 1))
        return tuple(torch.sigmoid(t) for t in [d0] + sides)


def build(stages, folded=False):
    return U2Net(stages, folded=folded).eval()


def u2net(folded=False):
    return build(U2NET_STAGES, folded)


def u2netp(folded=False):
    return build(U2NETP_STAGES, folded)


def count_params(model):
    """Conv weights + biases and BN gamma + beta (running statistics not counted)."""
    return sum(p.numel() for p in model.parameters())


def load_state_dict(model, sd, strict=True):
    """Load a dict of name -> numpy array / tensor into model."""
    t = OrderedDict((k, torch.as_tensor(np.asarray(v))) for k, v in sd.items())
    model.load_state_dict(t, strict=strict)
    return model


def fold_state_dict(sd, eps=1e-5):
    """BN-fold an official (unfolded) state dict (numpy), in float64, returning
    float32 arrays under the folded model's keys (conv_s1 only, no bn_s1)."""
    out = OrderedDict()
    for k, v in sd.items():
        if ".bn_s1." in k:
            continue
        if k.endswith(".conv_s1.weight"):
            p = k[: -len(".conv_s1.weight")]
            g = np.asarray(sd[p + ".bn_s1.weight"], np.float64)
            b = np.asarray(sd[p + ".bn_s1.bias"], np.float64)
            m = np.asarray(sd[p + ".bn_s1.running_mean"], np.float64)
            var = np.asarray(sd[p + ".bn_s1.running_var"], np.float64)
            s = g / np.sqrt(var + eps)
            out[k] = (np.asarray(v, np.float64) * s[:, None, None, None]).astype(np.float32)
            cb = np.asarray(sd[p + ".conv_s1.bias"], np.float64)
            out[p + ".conv_s1.bias"] = ((cb - m) * s + b).astype(np.float32)
        elif k.endswith(".conv_s1.bias"):
            continue
        else:
            out[k] = np.asarray(v)
    return out


# ---------------------------------------------------------------- .u2nc reader

def read_u2nc(path):
    """Parse a project model file (docs/FORMAT.md). Returns a dict with
    name, stages, dtype, in_ch, out_ch, default_size and tensors (an
    OrderedDict of file tensor name -> float32 numpy array)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 128 or buf[:4] != b"U2NC":
        raise ValueError("%s: not a U2NC model file" % path)
    (version, header_bytes, flags, stage_count, tensor_count, dtype, in_ch, out_ch,
     default_size) = struct.unpack_from("<9I", buf, 4)
    st_off, tt_off, data_off, data_bytes, file_bytes = struct.unpack_from("<5Q", buf, 40)
    name = buf[80:112].split(b"\0", 1)[0].decode("ascii", "replace")
    if version != 1 or header_bytes != 128:
        raise ValueError("%s: unsupported version %d / header size %d" % (path, version, header_bytes))
    if file_bytes != len(buf) or data_off + data_bytes != file_bytes:
        raise ValueError("%s: size mismatch" % path)
    if dtype not in (0, 1):
        raise ValueError("%s: bad dtype %d" % (path, dtype))
    stages = []
    for i in range(stage_count):
        kind, L, cin, mid, out, role = struct.unpack_from("<6I", buf, st_off + 32 * i)
        stages.append((kind, L, cin, mid, out, role))
    tensors = OrderedDict()
    for i in range(tensor_count):
        e = tt_off + 96 * i
        tname = buf[e:e + 56].split(b"\0", 1)[0].decode("ascii")
        tdtype, ndim = struct.unpack_from("<2I", buf, e + 56)
        dims = struct.unpack_from("<4I", buf, e + 64)[:ndim]
        off, nbytes = struct.unpack_from("<2Q", buf, e + 80)
        np_dt = "<f4" if tdtype == 0 else "<f2"
        count = int(np.prod(dims))
        if count * np.dtype(np_dt).itemsize != nbytes:
            raise ValueError("%s: tensor %s size mismatch" % (path, tname))
        a = np.frombuffer(buf, dtype=np_dt, count=count, offset=data_off + off)
        tensors[tname] = a.astype(np.float32).reshape(dims)
    return {"name": name, "stages": stages, "dtype": dtype, "in_ch": in_ch,
            "out_ch": out_ch, "default_size": default_size, "tensors": tensors}


def u2nc_to_folded_state_dict(tensors):
    """Map file tensor names (stage1.rebnconvin.weight) to folded module keys
    (stage1.rebnconvin.conv_s1.weight)."""
    sd = OrderedDict()
    for k, v in tensors.items():
        if k.startswith("stage"):
            p, leaf = k.rsplit(".", 1)
            sd[p + ".conv_s1." + leaf] = v
        else:
            sd[k] = v
    return sd


def load_u2nc(path):
    """Build the folded reference model from a .u2nc file (weights as float32)."""
    info = read_u2nc(path)
    model = build(info["stages"], folded=True)
    load_state_dict(model, u2nc_to_folded_state_dict(info["tensors"]), strict=True)
    model.u2nc_name = info["name"]
    return model


# ---------------------------------------------------------------- running

def run(model, x, threads=DEFAULT_THREADS):
    """Run on a 3xHxW (or 1x3xHxW) numpy array; returns a 7xHxW numpy array
    (d0, d1, ..., dn after sigmoid). float32 normally; a model made float64
    with as_float64() computes and returns float64."""
    if threads:
        torch.set_num_threads(int(threads))
    dt = next(model.parameters()).dtype
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    model.eval()
    with torch.no_grad():
        ys = model(torch.from_numpy(np.ascontiguousarray(x)).to(dt))
    out = np.stack([y[0, 0].numpy() for y in ys])
    return out if dt == torch.float64 else out.astype(np.float32)


def as_float64(model):
    """A float64 copy of the model: the same weights, computed in double
    (for measuring the float32 rounding error of an implementation)."""
    import copy
    return copy.deepcopy(model).double().eval()
