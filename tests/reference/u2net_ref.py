"""PyTorch reference implementation of U2Net / U2NetP, ISNet (DIS, RMBG-1.4)
and any network of the same family, written from
../shared/docs/u2net-architecture.md and isnet-architecture.md.

A network is what docs/FORMAT.md's layer table describes: a prelude (3x3
convolutions with a stride, a dilation and an optional ReLU, and 2x2
ceil-mode max pools), a stage table of (kind, L, in_ch, mid_ch, out_ch, role)
(kind 1 = RSU-L, pooling; kind 2 = RSU-F, dilated; role 0 = encoder, 1 =
decoder; the n encoder stages stage1..stagen, then the n-1 decoder stages
from deep to shallow, stage{n-1}d..stage1d), side outputs (a 3x3
convolution of one stage, resized to the input's size or to another side's
size) and an optional 1x1 fuse convolution. build() takes a plain stage table
(the U2Net layout) or a description: random_weights.Desc, or any object with
prelude, stages, sides and fuse (tools/u2net_format.py's Network too).

Module names follow the official checkpoints, so an official state dict loads
with strict=True into build(stages) (U2Net) or isnet(stages) (ISNet: conv_in,
pool_in, the stages, side1..side6). folded=True is the same network with
BatchNorm replaced by identity, for BN-folded weights such as the project's
.u2nc files (load_u2nc; there the prelude modules are prelude1, prelude2...).
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
# The stage tables, descriptions and per-stage conv lists live in
# random_weights.py (numpy only) so that tests without torch share them.
from random_weights import (  # noqa: E402
    DECODER, ENCODER, ISNET_SLIM_STAGES, ISNET_STAGES, RSU_F, RSU_L, STAGES, U2NET_STAGES,
    U2NETP_STAGES, Conv, Desc, Pool, Side, isnet_desc, prelude_channels, stage_convs,
    stage_names, u2net_desc)

__all__ = ["RSU_L", "RSU_F", "ENCODER", "DECODER", "STAGES", "U2NET_STAGES", "U2NETP_STAGES",
           "ISNET_STAGES", "ISNET_SLIM_STAGES", "stage_names", "stage_convs", "check_stages",
           "as_desc", "build", "u2net", "u2netp", "isnet", "count_params", "load_state_dict",
           "fold_state_dict", "read_u2nc", "u2nc_to_folded_state_dict", "load_u2nc", "run",
           "as_float64", "U2Net", "ISNet", "RSU", "REBNCONV"]

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


def as_desc(net):
    """A description for a description or a plain stage table (U2Net layout)."""
    if all(hasattr(net, a) for a in ("prelude", "stages", "sides", "fuse")):
        return net
    return u2net_desc(net)


def _is_conv(layer):
    return getattr(layer, "cout", None) is not None


class U2Net(nn.Module):
    """Any network of the family. `net`: a stage table (U2Net layout) or a
    description. prelude_names: module names of the prelude layers (default
    prelude1, prelude2, ..., the tensor names of a .u2nc file)."""

    def __init__(self, net, folded=False, in_ch=3, out_ch=1, prelude_names=None):
        super().__init__()
        desc = as_desc(net)
        stages = [tuple(int(v) for v in s) for s in desc.stages]
        check_stages(stages, prelude_channels(desc, in_ch))
        self.desc = desc
        self.stages = stages
        self.n = (len(stages) + 1) // 2
        self.names = stage_names(stages)
        self.prelude = []   # (module name, relu after it), in order
        for i, layer in enumerate(desc.prelude):
            pname = prelude_names[i] if prelude_names else "prelude%d" % (i + 1)
            if _is_conv(layer):
                d = int(layer.dilation)
                setattr(self, pname, nn.Conv2d(int(layer.cin), int(layer.cout), 3,
                                               stride=int(layer.stride), padding=d, dilation=d))
                self.prelude.append((pname, bool(layer.relu)))
            else:
                setattr(self, pname, nn.MaxPool2d(2, stride=2, ceil_mode=True))
                self.prelude.append((pname, False))
        for name, (kind, L, cin, mid, out, _role) in zip(self.names, stages):
            setattr(self, name, RSU(kind, L, cin, mid, out, folded))
        self.sides = [(int(s[0]), int(s[1])) for s in desc.sides]
        for k, (src, _to) in enumerate(self.sides, 1):
            setattr(self, "side%d" % k, nn.Conv2d(stages[src][4], out_ch, 3, padding=1))
        self.fuse = bool(desc.fuse)
        if self.fuse:
            self.outconv = nn.Conv2d(len(self.sides) * out_ch, out_ch, 1)

    def forward(self, x):
        n = self.n
        hx = x
        for pname, relu in self.prelude:
            hx = getattr(self, pname)(hx)
            if relu:
                hx = F.relu(hx)
        enc = []
        for k in range(1, n + 1):
            if k > 1:
                hx = _pool(hx)
            hx = getattr(self, "stage%d" % k)(hx)
            enc.append(hx)
        outs = list(enc)    # every stage's output, in stage-table order
        d = enc[n - 1]
        for k in range(n - 1, 0, -1):
            d = getattr(self, "stage%dd" % k)(torch.cat((_up(d, enc[k - 1]), enc[k - 1]), 1))
            outs.append(d)
        convs = [getattr(self, "side%d" % k)(outs[src]) for k, (src, _to) in enumerate(self.sides, 1)]
        sides = []
        for c, (_src, to) in zip(convs, self.sides):
            size = x.shape[2:] if to == 0 else convs[to - 1].shape[2:]
            # a resize to the size it already has is the identity
            sides.append(c if c.shape[2:] == size else
                         F.interpolate(c, size=size, mode="bilinear", align_corners=False))
        if self.fuse:
            sides = [self.outconv(torch.cat(sides, 1))] + sides
        return tuple(torch.sigmoid(t) for t in sides)


class ISNet(U2Net):
    """ISNet (DIS's ISNetDIS, BRIA's BriaRMBG) under the official module names,
    so that an official state dict loads with strict=True."""

    def __init__(self, stages=ISNET_STAGES, folded=False, in_ch=3, out_ch=1):
        super().__init__(isnet_desc(stages, in_ch), folded, in_ch, out_ch, prelude_names=("conv_in",))
        # ISNetDIS defines this pool and computes it in its forward, but stage 1
        # reads conv_in's output: it holds no weights and is never applied
        self.pool_in = nn.MaxPool2d(2, stride=2, ceil_mode=True)


def build(net, folded=False):
    return U2Net(net, folded=folded).eval()


def u2net(folded=False):
    return build(U2NET_STAGES, folded)


def u2netp(folded=False):
    return build(U2NETP_STAGES, folded)


def isnet(folded=False, stages=ISNET_STAGES):
    return ISNet(stages, folded=folded).eval()


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

def _desc_from_layers(rows):
    prelude, stages, sides, fuse = [], [], [], False
    for kind, f1, f2, f3, f4, f5, f6, _f7 in rows:
        if kind in (RSU_L, RSU_F):
            stages.append((kind, f1, f2, f3, f4, f5))
        elif kind == 3:
            prelude.append(Conv(f1, f2, f4, f5, f6))
        elif kind == 4:
            prelude.append(Pool())
        elif kind == 5:
            sides.append(Side(f1, f4))
        elif kind == 6:
            fuse = True
        else:
            raise ValueError("unknown layer kind %d" % kind)
    return Desc(tuple(prelude), stages, sides, fuse)


def read_u2nc(path):
    """Parse a project model file (docs/FORMAT.md, version 1 or 2). Returns a
    dict with version, name, desc (a Desc; version 1 gives the U2Net layout),
    stages, prediction, processing (a dict, None for version 1),
    default_size (version 1 only), dtype, in_ch, out_ch and tensors (an
    OrderedDict of file tensor name -> float32 numpy array)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 128 or buf[:4] != b"U2NC":
        raise ValueError("%s: not a U2NC model file" % path)
    (version, header_bytes, _flags, count, tensor_count, dtype, in_ch, out_ch,
     field36) = struct.unpack_from("<9I", buf, 4)
    table_off, tt_off, data_off, data_bytes, file_bytes = struct.unpack_from("<5Q", buf, 40)
    name = buf[80:112].split(b"\0", 1)[0].decode("ascii", "replace")
    if version not in (1, 2) or header_bytes != 128:
        raise ValueError("%s: unsupported version %d / header size %d" % (path, version, header_bytes))
    if file_bytes != len(buf) or data_off + data_bytes != file_bytes:
        raise ValueError("%s: size mismatch" % path)
    if dtype not in (0, 1):
        raise ValueError("%s: bad dtype %d" % (path, dtype))
    rows = [struct.unpack_from("<8I", buf, table_off + 32 * i) for i in range(count)]
    info = {"version": version, "name": name, "dtype": dtype, "in_ch": in_ch, "out_ch": out_ch}
    if version == 1:
        desc = u2net_desc([r[:6] for r in rows])
        info.update(prediction=0, processing=None, default_size=field36)
    else:
        desc = _desc_from_layers(rows)
        v = struct.unpack_from("<II3f3fIII", buf, 128)
        info.update(prediction=field36, default_size=None, processing={
            "width": v[0], "height": v[1], "mean": v[2:5], "std": v[5:8], "scale": v[8],
            "normalise": v[9], "resize_back": v[10]})
    tensors = OrderedDict()
    for i in range(tensor_count):
        e = tt_off + 96 * i
        tname = buf[e:e + 56].split(b"\0", 1)[0].decode("ascii")
        tdtype, ndim = struct.unpack_from("<2I", buf, e + 56)
        dims = struct.unpack_from("<4I", buf, e + 64)[:ndim]
        off, nbytes = struct.unpack_from("<2Q", buf, e + 80)
        np_dt = "<f4" if tdtype == 0 else "<f2"
        n = int(np.prod(dims))
        if n * np.dtype(np_dt).itemsize != nbytes:
            raise ValueError("%s: tensor %s size mismatch" % (path, tname))
        a = np.frombuffer(buf, dtype=np_dt, count=n, offset=data_off + off)
        tensors[tname] = a.astype(np.float32).reshape(dims)
    info.update(desc=desc, stages=list(desc.stages), tensors=tensors)
    return info


def u2nc_to_folded_state_dict(tensors):
    """Map file tensor names (stage1.rebnconvin.weight) to folded module keys
    (stage1.rebnconvin.conv_s1.weight); prelude, side and outconv names are
    the module names already."""
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
    model = build(info["desc"], folded=True)
    load_state_dict(model, u2nc_to_folded_state_dict(info["tensors"]), strict=True)
    model.u2nc_name = info["name"]
    model.u2nc_info = {k: v for k, v in info.items() if k != "tensors"}
    return model


# ---------------------------------------------------------------- running

def run(model, x, threads=DEFAULT_THREADS):
    """Run on a 3xHxW (or 1x3xHxW) numpy array; returns every output after the
    sigmoid as an OxHxW numpy array (U2Net: d0, d1..d6; ISNet: d1..d6).
    float32 normally; a model made float64 with as_float64() computes and
    returns float64."""
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
