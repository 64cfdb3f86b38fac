#!/usr/bin/python3
"""Convert a U2Net / U2NetP / ISNet / RMBG-1.4 checkpoint or ONNX model to the
u2net.c model file (docs/FORMAT.md, version 2).

    convert.py INPUT -o OUTPUT [--fp16] [--name NAME] [--force]
               [--size N|WxH] [--mean R,G,B] [--std R,G,B] [--scale max|255]
               [--normalise minmax|none] [--resize-back 8bit|float]

INPUT is one of
  - a PyTorch state dict in either torch.save format: the zip format
    (PyTorch >= 1.6, also under names like pytorch_model.bin) or the legacy
    pickle sequence (older files such as u2net.pth);
  - a safetensors file (model.safetensors);
  - an ONNX model, float32 or float16, with BatchNorm already folded into the
    convolutions or with explicit BatchNormalization nodes (8-bit quantized
    graphs are refused).
The network is read from the checkpoint's key names and shapes (or the ONNX
graph), see tools/README.md.

numpy and the standard library only: PyTorch and onnx are never imported.
Pickles are read by a restricted unpickler that only accepts the few globals a
state dict needs, so a malicious checkpoint cannot run code.
"""
import argparse
import collections
import io
import json
import math
import os
import pickle
import re
import struct
import sys
import zipfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import u2net_format as fmt  # noqa: E402

PROG = "convert.py"


class ConvertError(Exception):
    """A problem with the input; the message is one line."""


def network_label(net):
    """'U2Net', 'U2NetP', 'ISNet', or the layout for other channel counts."""
    known = fmt.known_name(net)
    if known:
        return fmt.LABELS[known]
    return "ISNet layout" if net.prelude and not net.fuse else "U2Net layout"


def default_name(net):
    known = fmt.known_name(net)
    if known:
        return known
    return "isnet" if net.prelude and not net.fuse else "u2net"


class Model(object):
    """A converted network: name, description (a u2net_format.Network) and
    folded tensors (OrderedDict format name -> float32 array, in file order)."""

    def __init__(self, name, net, tensors, source=None):
        self.name = name
        self.net = net
        self.tensors = tensors
        self.source = source

    @property
    def stages(self):
        return list(self.net.stages)

    @property
    def label(self):
        return network_label(self.net)

    @property
    def conv_count(self):
        return len(self.tensors) // 2

    @property
    def value_count(self):
        return sum(int(a.size) for a in self.tensors.values())

    def __repr__(self):
        return "<Model %s (%s): %d convs, %d values>" % (self.name, self.label, self.conv_count, self.value_count)


# ---------------------------------------------------------------------------
# restricted unpickling of PyTorch checkpoints

_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8",
}
_TORCH_DTYPES = {
    "float64": "float64", "double": "float64", "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64",
    "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "short": "int16",
    "int8": "int8", "uint8": "uint8", "bool": "bool",
}


def _np_dtype(name, byteorder="<"):
    if name == "bfloat16":
        return np.dtype(byteorder + "u2")
    if name in ("uint8", "int8", "bool"):
        return np.dtype(name)
    return np.dtype(byteorder + np.dtype(name).str[1:])


class _StorageType(object):
    """Stands for torch.FloatStorage & co: only a dtype marker."""

    def __init__(self, qualname, dtype):
        self.qualname, self.dtype = qualname, dtype

    def __call__(self, *a, **k):
        raise pickle.UnpicklingError("%s cannot be constructed here" % self.qualname)


class _DType(object):
    def __init__(self, name):
        self.name = name


class _StorageRef(object):
    """A storage named by a persistent id; data is attached after unpickling."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.root, self.view_offset = self, 0


class _LazyTensor(object):
    def __init__(self, storage, offset, size, stride, dtype=None):
        if not isinstance(storage, _StorageRef):
            raise pickle.UnpicklingError("tensor without a storage")
        for v in (offset,) + tuple(size) + tuple(stride):
            if not isinstance(v, int) or v < 0:
                raise pickle.UnpicklingError("bad tensor geometry")
        if len(size) != len(stride):
            raise pickle.UnpicklingError("bad tensor geometry")
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)
        self.dtype = dtype or storage.dtype


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, *rest):
    if not isinstance(dtype, _DType):
        raise pickle.UnpicklingError("bad dtype in _rebuild_tensor_v3")
    return _LazyTensor(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, *rest):
    if not isinstance(data, _LazyTensor):
        raise pickle.UnpicklingError("parameter without tensor data")
    return data


def _allowed_globals():
    g = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    }
    for mod in ("torch", "torch.cuda", "torch.storage"):
        for cls, dt in _STORAGE_DTYPES.items():
            g[(mod, cls)] = _StorageType("%s.%s" % (mod, cls), dt)
    for name, dt in _TORCH_DTYPES.items():
        g[("torch", name)] = _DType(dt)
    return g


_ALLOWED = _allowed_globals()


class _Unpickler(pickle.Unpickler):
    """Accepts only the globals a state dict needs; never imports anything."""

    def __init__(self, f, storages=None, legacy=False):
        super().__init__(f)
        self.storages = storages if storages is not None else {}
        self.legacy = legacy

    def find_class(self, module, name):
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise ConvertError("refusing to unpickle global %s.%s (not part of a state dict; for a pickled model save model.state_dict() instead)" % (module, name))
        return obj

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise ConvertError("unsupported persistent id in pickle")
        kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage":
            raise ConvertError("unsupported persistent id %r (a pickled module, not a state dict?)" % (kind,))
        if len(pid) < 5 or not isinstance(pid[1], _StorageType):
            raise ConvertError("malformed storage reference in pickle")
        stype, key, numel = pid[1], str(pid[2]), pid[4]    # pid[3]: device, unused
        if not isinstance(numel, int) or numel < 0:
            raise ConvertError("malformed storage size in pickle")
        ref = self.storages.get(key)
        if ref is None:
            ref = self.storages[key] = _StorageRef(key, stype.dtype, numel)
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            if not self.legacy or not isinstance(view, tuple) or len(view) != 3:
                raise ConvertError("malformed storage view in pickle")
            vkey, voff, vsize = str(view[0]), view[1], view[2]
            if not (isinstance(voff, int) and isinstance(vsize, int)) or voff < 0 or vsize < 0 \
                    or voff + vsize > ref.numel:
                raise ConvertError("storage view out of bounds")
            vref = _StorageRef(vkey, ref.dtype, vsize)
            vref.root, vref.view_offset = ref, voff
            return vref
        return ref


def _unpickle(f, storages=None, legacy=False):
    try:
        return _Unpickler(f, storages, legacy).load()
    except ConvertError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, OverflowError, UnicodeDecodeError, RecursionError) as e:
        raise ConvertError("truncated or corrupt pickle (%s)" % (str(e) or type(e).__name__))


def _materialize(obj, data, byteorder="<"):
    """Replace every _LazyTensor in a nested dict/list by a numpy array."""
    if isinstance(obj, _LazyTensor):
        root = obj.storage.root
        buf = data.get(root.key)
        if buf is None:
            raise ConvertError("storage %s has no data (truncated or corrupt checkpoint)" % root.key)
        dt = _np_dtype(root.dtype, byteorder)
        tdt = _np_dtype(obj.dtype, byteorder)
        if tdt == dt:
            base = obj.storage.view_offset          # in elements
        elif root.dtype == "uint8" and obj.storage.view_offset % tdt.itemsize == 0:
            base = obj.storage.view_offset // tdt.itemsize   # untyped (byte) storage
        else:
            raise ConvertError("tensor dtype %s does not match its storage %s" % (obj.dtype, root.dtype))
        total = len(buf) // tdt.itemsize
        start = base + obj.offset
        n = int(np.prod(obj.size)) if obj.size else 1
        if n == 0:
            return np.zeros(obj.size, dtype=_native(obj.dtype))
        last = start + sum((s - 1) * st for s, st in zip(obj.size, obj.stride))
        if last >= total:
            raise ConvertError("tensor data out of bounds of storage %s (truncated or corrupt checkpoint)" % root.key)
        arr = np.frombuffer(buf, dtype=tdt, count=last - start + 1, offset=start * tdt.itemsize)
        arr = np.lib.stride_tricks.as_strided(arr, shape=obj.size,
                                              strides=tuple(st * tdt.itemsize for st in obj.stride))
        arr = np.array(arr)
        if obj.dtype == "bfloat16":
            return (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.astype(_native(obj.dtype))
    if isinstance(obj, dict):
        out = collections.OrderedDict()
        for k, v in obj.items():
            out[k] = _materialize(v, data, byteorder)
        return out
    if isinstance(obj, (list, tuple)):
        return [_materialize(v, data, byteorder) for v in obj]
    return obj


def _native(name):
    return np.dtype("float32" if name == "bfloat16" else name)


def _collect_refs(obj, acc):
    if isinstance(obj, _LazyTensor):
        acc.append(obj.storage.root)
    elif isinstance(obj, dict):
        for v in obj.values():
            _collect_refs(v, acc)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect_refs(v, acc)
    return acc


def load_zip_checkpoint(buf):
    try:
        zf = zipfile.ZipFile(io.BytesIO(buf))
        names = zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise ConvertError("truncated or corrupt zip archive (%s)" % e)
    pkls = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    pkls = [n for n in pkls if n.count("/") <= 1]
    if len(pkls) != 1:
        raise ConvertError("zip archive has no data.pkl: not a PyTorch checkpoint")
    prefix = pkls[0][:-len("data.pkl")]
    try:
        byteorder = "<"
        if prefix + "byteorder" in names:
            bo = zf.read(prefix + "byteorder").strip()
            if bo not in (b"little", b"big"):
                raise ConvertError("unknown byteorder %r in checkpoint" % bo)
            byteorder = "<" if bo == b"little" else ">"
        storages = {}
        obj = _unpickle(io.BytesIO(zf.read(pkls[0])), storages)
        data = {}
        for ref in _collect_refs(obj, []):
            if ref.key in data:
                continue
            entry = prefix + "data/" + ref.key
            if entry not in names:
                raise ConvertError("storage %s missing from the archive (truncated or corrupt)" % entry)
            raw = zf.read(entry)
            isz = _np_dtype(ref.dtype).itemsize
            if len(raw) < ref.numel * isz:
                raise ConvertError("storage %s holds %d bytes, expected %d (truncated)" % (entry, len(raw), ref.numel * isz))
            data[ref.key] = raw
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as e:
        raise ConvertError("truncated or corrupt zip archive (%s)" % e)
    return _materialize(obj, data, byteorder)


LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001


def load_legacy_checkpoint(buf):
    f = io.BytesIO(buf)
    magic = _unpickle(f)
    if magic != LEGACY_MAGIC:
        raise ConvertError("pickle file is not a PyTorch checkpoint (no torch.save magic number)")
    proto = _unpickle(f)
    if proto != LEGACY_PROTOCOL:
        raise ConvertError("unsupported legacy checkpoint protocol %r" % (proto,))
    sys_info = _unpickle(f)
    if not isinstance(sys_info, dict):
        raise ConvertError("corrupt legacy checkpoint header")
    storages = {}
    obj = _unpickle(f, storages, legacy=True)
    keys = _unpickle(f)
    if not isinstance(keys, list):
        raise ConvertError("corrupt legacy checkpoint: bad storage key list")
    data = {}
    for key in keys:
        key = str(key)
        ref = storages.get(key)
        if ref is None:
            raise ConvertError("legacy checkpoint lists unknown storage %s" % key)
        head = f.read(8)
        if len(head) < 8:
            raise ConvertError("truncated legacy checkpoint (storage %s missing)" % key)
        numel = struct.unpack("<q", head)[0]
        if numel != ref.numel:
            raise ConvertError("legacy storage %s has %d elements, expected %d (corrupt)" % (key, numel, ref.numel))
        nbytes = numel * _np_dtype(ref.dtype).itemsize
        raw = f.read(nbytes)
        if len(raw) < nbytes:
            raise ConvertError("truncated legacy checkpoint (storage %s has %d of %d bytes)" % (key, len(raw), nbytes))
        data[key] = raw
    # legacy storage data is always little-endian
    return _materialize(obj, data, "<")


def _find_state_dict(obj):
    """The state dict in a loaded checkpoint (the object itself or a wrapped one)."""
    if not isinstance(obj, dict):
        raise ConvertError("checkpoint holds a %s, not a state dict" % type(obj).__name__)
    if obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        return obj
    for k in ("state_dict", "model_state_dict", "model", "net", "params", "weights"):
        v = obj.get(k)
        if isinstance(v, dict) and v and all(isinstance(x, np.ndarray) for x in v.values()):
            return v
    for k, v in obj.items():
        if not isinstance(v, np.ndarray):
            raise ConvertError("checkpoint entry %s is a %s, not a tensor" % (k, type(v).__name__))
    raise ConvertError("checkpoint holds no tensors")


# ---------------------------------------------------------------------------
# safetensors

SAFETENSORS_MAX_HEADER = 100 * 1000 * 1000     # the format's own limit
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4"}


def _no_duplicate_keys(pairs):
    out = collections.OrderedDict()
    for k, v in pairs:
        if k in out:
            raise ConvertError("corrupt safetensors header: key %s appears twice" % k)
        out[k] = v
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def load_safetensors(buf):
    """A safetensors file -> OrderedDict name -> numpy array. Every offset and
    length is checked against the header and the file; the tensors must fill
    the data exactly, without overlaps or gaps."""
    if len(buf) < 8:
        raise ConvertError("truncated safetensors file (%d bytes)" % len(buf))
    n = struct.unpack_from("<Q", buf, 0)[0]
    if n > SAFETENSORS_MAX_HEADER:
        raise ConvertError("corrupt safetensors file: header length %d is over the format's limit" % n)
    if n > len(buf) - 8:
        raise ConvertError("truncated safetensors file: the header needs %d bytes, %d follow the length"
                           % (n, len(buf) - 8))
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ConvertError("corrupt safetensors header (%s)" % e)
    if not isinstance(header, dict):
        raise ConvertError("corrupt safetensors header: not a JSON object")
    data = memoryview(buf)[8 + n:]
    spans = []
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if not isinstance(v, dict) or sorted(v) != ["data_offsets", "dtype", "shape"]:
            raise ConvertError("corrupt safetensors header: tensor %s needs exactly dtype, shape and data_offsets" % k)
        dt, shape, offs = v["dtype"], v["shape"], v["data_offsets"]
        if dt not in _ST_DTYPES:
            raise ConvertError("tensor %s has dtype %s, which is not supported (%s)"
                               % (k, dt, ", ".join(_ST_DTYPES)))
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise ConvertError("corrupt safetensors header: tensor %s has shape %s" % (k, json.dumps(shape)))
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)
                and 0 <= offs[0] <= offs[1] <= len(data)):
            raise ConvertError("corrupt or truncated safetensors file: tensor %s has data_offsets %s, the data is %d bytes"
                               % (k, json.dumps(offs), len(data)))
        need = int(np.prod(shape, dtype=object)) * np.dtype(_ST_DTYPES[dt]).itemsize
        if offs[1] - offs[0] != need:
            raise ConvertError("corrupt safetensors header: tensor %s (%s %s) needs %d bytes, data_offsets %s hold %d"
                               % (k, dt, _shape_str(shape), need, json.dumps(offs), offs[1] - offs[0]))
        spans.append((offs[0], offs[1], k))
    pos, last = 0, None
    for b, e, k in sorted(spans):
        if b < pos:
            raise ConvertError("corrupt safetensors file: tensor %s overlaps tensor %s" % (k, last))
        if b > pos:
            raise ConvertError("corrupt safetensors file: data bytes %d..%d belong to no tensor" % (pos, b))
        pos, last = e, k
    if pos != len(data):
        raise ConvertError("corrupt safetensors file: %d bytes after the last tensor" % (len(data) - pos))
    out = collections.OrderedDict()
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=_ST_DTYPES[v["dtype"]]).reshape(v["shape"])
        if v["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[k] = a
    if not out:
        raise ConvertError("safetensors file holds no tensors")
    return out


# ---------------------------------------------------------------------------
# state dict -> model

def _shape_str(s):
    return "[%s]" % ", ".join(str(int(v)) for v in s)


def _strip_prefix(sd):
    out = collections.OrderedDict()
    for k, v in sd.items():
        if not isinstance(k, str):
            raise ConvertError("state dict key %r is not a string" % (k,))
        k2 = k[len("module."):] if k.startswith("module.") else k
        if k2 in out:
            raise ConvertError("duplicate key %s after removing 'module.'" % k2)
        out[k2] = v
    return out


_KEY_RE = re.compile(r"^(stage(\d+)(d?))\.rebnconv(in|\d+d?)\.(conv_s1|bn_s1)\.")
_STEM = "conv_in"          # ISNet's stem, the one prelude layer a state dict has
_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def _deepest_two_levels(index, count):
    """The family rule for stages whose dilations a state dict does not show:
    stagen, stage{n-1} and stage{n-1}d are RSU-F, every other stage RSU-L."""
    return fmt.stage_level(index, count) >= (count + 1) // 2 - 1


def checkpoint_prefix(prefix):
    """The state-dict key prefix of a tensor-table conv: prelude1 is ISNet's conv_in."""
    return _STEM if prefix == "prelude1" else prefix


def expected_keys(net):
    """Official keys of a description: OrderedDict key -> shape, and the set
    of optional keys (num_batches_tracked)."""
    want = collections.OrderedDict()
    optional = set()
    for prefix, ci, co, k, _d in fmt.conv_list(net):
        if prefix.startswith("stage"):
            want[prefix + ".conv_s1.weight"] = (co, ci, k, k)
            want[prefix + ".conv_s1.bias"] = (co,)
            for f in _BN_FIELDS:
                want[prefix + ".bn_s1." + f] = (co,)
            nbt = prefix + ".bn_s1.num_batches_tracked"
            want[nbt] = ()
            optional.add(nbt)
        else:
            p = checkpoint_prefix(prefix)
            want[p + ".weight"] = (co, ci, k, k)
            want[p + ".bias"] = (co,)
    return want, optional


def _conv_shape(shapes, key):
    if key not in shapes:
        raise ConvertError("missing key %s" % key)
    if len(shapes[key]) != 4:
        raise ConvertError("%s has shape %s, expected a 4-D convolution weight" % (key, _shape_str(shapes[key])))
    return shapes[key]


def describe_state_dict(shapes):
    """The network a state dict holds, from its key names and shapes: stage
    names and heights from the keys, channels from the weights' shapes (each
    stage's input channels follow from the stages before it), RSU-F for the
    two deepest levels; ISNet if it has conv_in and no outconv, U2Net if it
    has outconv and no conv_in."""
    enc, dec, height = set(), set(), collections.Counter()
    for k in shapes:
        m = _KEY_RE.match(k)
        if not m:
            continue
        (dec if m.group(3) else enc).add(int(m.group(2)))
        conv = m.group(4)
        if conv != "in" and not conv.endswith("d"):
            height[m.group(1)] = max(height[m.group(1)], int(conv))
    if not enc:
        example = next(iter(shapes), "none")
        raise ConvertError("unknown network: not a U2Net/ISNet-family state dict (%d keys, first %s)"
                           % (len(shapes), example))
    n = max(enc)
    if n < 2:
        raise ConvertError("unknown network: only stage1 (a U2Net/ISNet-family network has stage1..stagen, n >= 2)")
    names = ["stage%d" % k for k in range(1, n + 1)] + ["stage%dd" % k for k in range(n - 1, 0, -1)]
    count = len(names)
    has_stem = _STEM + ".weight" in shapes
    has_fuse = "outconv.weight" in shapes
    if has_stem and has_fuse:
        raise ConvertError("conv_in and outconv both present: neither the U2Net layout (outconv, no conv_in) "
                           "nor ISNet's (conv_in, no outconv)")
    if not has_stem and not has_fuse:
        raise ConvertError("missing key outconv.weight (U2Net) or conv_in.weight (ISNet)")
    cin = _conv_shape(shapes, _STEM + ".weight")[0] if has_stem else 3
    outs = []
    stages = []
    for i, sname in enumerate(names):
        w_in = _conv_shape(shapes, sname + ".rebnconvin.conv_s1.weight")
        mid = _conv_shape(shapes, sname + ".rebnconv1.conv_s1.weight")[0]
        L = height[sname]
        if L < 2:
            raise ConvertError("missing key %s.rebnconv2.conv_s1.weight (an RSU block has rebnconv1..rebnconvL, L >= 2)"
                               % sname)
        if i == 0:
            ci = cin
        elif i < n:
            ci = outs[i - 1]
        else:
            k = count - i                     # decoder stagekd: up(deeper) + encoder k
            ci = outs[i - 1] + outs[k - 1]
        kind = fmt.RSU_F if _deepest_two_levels(i, count) else fmt.RSU_L
        stages.append((kind, L, ci, mid, w_in[0], fmt.ENCODER if i < n else fmt.DECODER))
        outs.append(w_in[0])
    net = fmt.isnet_network(stages) if has_stem else fmt.u2net_network(stages)
    try:
        fmt.check_network(net)
    except fmt.FormatError as e:
        raise ConvertError("not a network the model file can hold: %s" % e)
    return net


def convert_state_dict(sd, name=None):
    """Official-key state dict (numpy arrays, BatchNorm unfolded) -> Model."""
    if not isinstance(sd, dict) or not sd:
        raise ConvertError("empty or invalid state dict")
    sd = _strip_prefix(sd)
    for k, v in sd.items():
        if not isinstance(v, np.ndarray):
            try:
                sd[k] = np.asarray(v)
            except Exception:
                raise ConvertError("state dict entry %s is not an array" % k)
    shapes = collections.OrderedDict((k, tuple(v.shape)) for k, v in sd.items())
    net = describe_state_dict(shapes)
    label = network_label(net)
    want, optional = expected_keys(net)
    for k, s in want.items():
        if k not in sd:
            if k in optional:
                continue
            raise ConvertError("missing key %s (%s)" % (k, label))
        if shapes[k] != s:
            raise ConvertError("%s has shape %s, expected %s (%s)" % (k, _shape_str(shapes[k]), _shape_str(s), label))
    for k in sd:
        if k not in want:
            raise ConvertError("unexpected key %s (%s)" % (k, label))
    for k in want:
        if k in sd and k not in optional:
            a = sd[k]
            if a.dtype.kind not in "fiu":
                raise ConvertError("%s has dtype %s, expected floating point" % (k, a.dtype))
            if not np.all(np.isfinite(a.astype(np.float64))):
                raise ConvertError("%s has non-finite values" % k)
    tensors = collections.OrderedDict()
    for prefix, _ci, _co, _k, _d in fmt.conv_list(net):
        if prefix.startswith("stage"):
            g = lambda f: sd[prefix + f]  # noqa: E731
            var = g(".bn_s1.running_var")
            if np.any(var.astype(np.float64) < 0):
                raise ConvertError("%s.bn_s1.running_var has negative values" % prefix)
            w, b = fmt.fold_bn(g(".conv_s1.weight"), g(".conv_s1.bias"), g(".bn_s1.weight"),
                               g(".bn_s1.bias"), g(".bn_s1.running_mean"), var)
        else:
            p = checkpoint_prefix(prefix)
            w = sd[p + ".weight"].astype(np.float32)
            b = sd[p + ".bias"].astype(np.float32)
        _check_finite(prefix, w, b)
        tensors[prefix + ".weight"] = w
        tensors[prefix + ".bias"] = b
    return Model(name or default_name(net), net, tensors, "state_dict")


def _check_finite(prefix, w, b):
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise ConvertError("%s: folded weights are not finite (bad BatchNorm statistics?)" % prefix)


# ---------------------------------------------------------------------------
# a minimal protobuf reader for ONNX

class _PB(object):
    """Decoded protobuf message: {field_number: [values]} with raw spans for
    length-delimited fields (memoryview)."""

    __slots__ = ("fields",)

    def __init__(self, buf):
        self.fields = _pb_fields(buf)

    def get(self, num, default=None):
        v = self.fields.get(num)
        return v[-1][1] if v else default

    def all(self, num):
        return [v for _wt, v in self.fields.get(num, ())]

    def raw(self, num):
        return self.fields.get(num, ())

    def string(self, num, default=""):
        v = self.get(num)
        if v is None:
            return default
        return bytes(v).decode("utf-8", "replace")

    def strings(self, num):
        return [bytes(v).decode("utf-8", "replace") for v in self.all(num)]


def _varint(buf, pos, end):
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ConvertError("truncated or corrupt protobuf (varint)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ConvertError("corrupt protobuf (varint too long)")


def _pb_fields(buf):
    fields = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ConvertError("corrupt protobuf (field number 0)")
        if wt == 0:
            val, pos = _varint(buf, pos, end)
        elif wt == 1:
            if pos + 8 > end:
                raise ConvertError("truncated or corrupt protobuf")
            val = bytes(buf[pos:pos + 8])
            pos += 8
        elif wt == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ConvertError("truncated or corrupt protobuf (field %d wants %d bytes, %d left)" % (num, n, end - pos))
            val = buf[pos:pos + n]
            pos += n
        elif wt == 5:
            if pos + 4 > end:
                raise ConvertError("truncated or corrupt protobuf")
            val = bytes(buf[pos:pos + 4])
            pos += 4
        else:
            raise ConvertError("corrupt protobuf (wire type %d)" % wt)
        fields.setdefault(num, []).append((wt, val))
    return fields


def _varints_np(buf):
    """Decode a packed run of varints with numpy; returns uint64 array."""
    b = np.frombuffer(buf, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if b[-1] >= 0x80:
        raise ConvertError("truncated or corrupt protobuf (packed varints)")
    ends = np.flatnonzero(b < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    if np.any(ends - starts > 9):
        raise ConvertError("corrupt protobuf (varint too long)")
    group_start = np.repeat(starts, ends - starts + 1)
    shift = (np.arange(b.size) - group_start).astype(np.uint64) * np.uint64(7)
    vals = (b & 0x7F).astype(np.uint64) << shift
    return np.add.reduceat(vals, starts)


def _pb_ints(msg, num):
    """A repeated integer field, packed or not; returns a list of Python ints (int64)."""
    out = []
    for wt, v in msg.raw(num):
        if wt == 0:
            out.append(v)
        elif wt == 2:
            out.extend(int(x) for x in _varints_np(v))
        else:
            raise ConvertError("corrupt protobuf (integer field %d)" % num)
    return [x - (1 << 64) if x >= (1 << 63) else x for x in out]


# ONNX TensorProto.DataType
_ONNX_FLOAT, _ONNX_INT32, _ONNX_INT64, _ONNX_FLOAT16, _ONNX_DOUBLE, _ONNX_BFLOAT16 = 1, 6, 7, 10, 11, 16
_ONNX_RAW = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "u1",
             10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8", 16: "<u2"}


def onnx_tensor(t, what="tensor"):
    """Decode a TensorProto (as _PB) into a numpy array (float tensors -> float32/float64)."""
    dims = _pb_ints(t, 1)
    dt = t.get(2, 0)
    name = t.string(8) or what
    if t.get(14, 0) == 1 or t.raw(13):
        raise ConvertError("tensor %s uses external data, which is not supported (save the model with its weights inside)" % name)
    if any(d < 0 for d in dims):
        raise ConvertError("tensor %s has negative dims" % name)
    n = int(np.prod(dims)) if dims else 1
    if dt not in _ONNX_RAW:
        raise ConvertError("tensor %s has unsupported data type %d" % (name, dt))
    raw = t.get(9)
    if raw is not None:
        npdt = np.dtype(_ONNX_RAW[dt])
        if len(raw) != n * npdt.itemsize:
            raise ConvertError("tensor %s: raw_data has %d bytes, dims %s need %d"
                               % (name, len(raw), _shape_str(dims), n * npdt.itemsize))
        a = np.frombuffer(raw, dtype=npdt).copy()
    elif dt == _ONNX_FLOAT:
        a = _pb_floats(t, 4, "<f4")
    elif dt == _ONNX_DOUBLE:
        a = _pb_floats(t, 10, "<f8")
    elif dt in (_ONNX_FLOAT16, _ONNX_BFLOAT16):
        a = np.array(_pb_ints(t, 5), dtype=np.int64).astype(np.uint16)
    elif dt == _ONNX_INT64:
        a = np.array(_pb_ints(t, 7), dtype=np.int64)
    elif dt in (2, 3, 4, 5, 6, 9):
        a = np.array(_pb_ints(t, 5), dtype=np.int64)
    else:
        a = np.zeros(0)
    if a.size != n:
        raise ConvertError("tensor %s holds %d values, dims %s need %d" % (name, a.size, _shape_str(dims), n))
    if dt == _ONNX_FLOAT16:
        a = a.view(np.float16) if a.dtype == np.uint16 else a.astype(np.float16)
    elif dt == _ONNX_BFLOAT16:
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a.reshape(dims)


def _pb_floats(t, num, dt):
    parts = []
    for wt, v in t.raw(num):
        if wt == 2:
            if len(v) % np.dtype(dt).itemsize:
                raise ConvertError("corrupt packed float field")
            parts.append(np.frombuffer(v, dtype=dt))
        elif wt in (1, 5):
            parts.append(np.frombuffer(v, dtype=dt))
        else:
            raise ConvertError("corrupt float field")
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dt)


class _Node(object):
    def __init__(self, pb, index):
        self.index = index
        self.inputs = pb.strings(1)
        self.outputs = pb.strings(2)
        self.name = pb.string(3) or "#%d" % index
        self.op = pb.string(4)
        self.domain = pb.string(7)
        self.attrs = {}
        for a in pb.all(5):
            a = _PB(a)
            self.attrs[a.string(1)] = a

    def attr_ints(self, name, default=None):
        a = self.attrs.get(name)
        return default if a is None else _pb_ints(a, 8)

    def attr_int(self, name, default=None):
        a = self.attrs.get(name)
        if a is None or a.get(3) is None:
            return default
        v = a.get(3)
        return v - (1 << 64) if v >= (1 << 63) else v

    def attr_float(self, name, default=None):
        a = self.attrs.get(name)
        if a is None or a.get(2) is None:
            return default
        return struct.unpack("<f", a.get(2))[0]

    def label(self):
        return "%s node %s" % (self.op, self.name)


def parse_onnx(buf):
    """ModelProto bytes -> (nodes, initializers {name: TensorProto _PB})."""
    model = _PB(memoryview(buf))
    if model.get(7) is None or not isinstance(model.get(7), memoryview):
        raise ConvertError("not an ONNX model (no graph)")
    graph = _PB(model.get(7))
    nodes = [_Node(_PB(n), i) for i, n in enumerate(graph.all(1))]
    inits = collections.OrderedDict()
    for t in graph.all(5):
        t = _PB(t)
        inits[t.string(8)] = t
    if graph.raw(15):
        raise ConvertError("sparse initializers are not supported")
    if not nodes:
        raise ConvertError("ONNX graph has no nodes")
    return nodes, inits


_PASS = ("Identity", "Cast")
_SIDE_RE = re.compile(r"(?:^|[./_])side(\d+)(?:[./_]|$)")
_BODY_RE = re.compile(r"(?:^|\.)(stage\d+d?)\.(rebnconv(?:in|\d+d?))\.conv_s1\.weight$")
_BODY_NODE_RE = re.compile(r"^/(stage\d+d?)/(rebnconv(?:in|\d+d?))/conv_s1/Conv(?:_\d+)?$")


def _is_quantized_op(op):
    """ONNX's 8-bit operators (ConvInteger, MatMulInteger, QLinearConv,
    QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, ...) and ONNX
    Runtime's contrib ones (QLinearAdd, QGemm, DynamicQuantizeMatMul, ...)."""
    low = op.lower()
    return "quantize" in low or "integer" in low or op.startswith("QLinear") or op in ("QGemm", "QAttention")


def _refuse_quantized(nodes):
    for n in nodes:
        if _is_quantized_op(n.op):
            raise ConvertError("quantized ONNX model (%s): 8-bit weights are not supported; convert the "
                               "float32 or float16 model instead" % n.label())


def _collect_convs(nodes, inits, producer, consumers):
    """Every Conv node with its constant weights (a BatchNormalization that
    follows it folded in): dicts node, wname, W, b, dil, pads, strides. A
    BatchNormalization that follows no Conv is an error."""
    cache = {}

    def const(tname, user):
        """Value of a constant tensor feeding `user` (initializer, Constant, via Identity/Cast)."""
        if tname in cache:
            return cache[tname]
        if tname in inits:
            v = onnx_tensor(inits[tname], tname)
        elif tname in producer and producer[tname].op == "Constant":
            c = producer[tname]
            if "value" not in c.attrs or c.attrs["value"].get(5) is None:
                raise ConvertError("%s: unsupported Constant form" % c.label())
            v = onnx_tensor(_PB(c.attrs["value"].get(5)), tname)
        elif tname in producer and producer[tname].op in _PASS and producer[tname].inputs:
            v = const(producer[tname].inputs[0], user)
            if producer[tname].op == "Cast":
                to = producer[tname].attr_int("to", _ONNX_FLOAT)
                if to not in (_ONNX_FLOAT, _ONNX_FLOAT16, _ONNX_DOUBLE):
                    raise ConvertError("%s casts a weight to type %d" % (producer[tname].label(), to))
                v = v.astype({_ONNX_FLOAT: np.float32, _ONNX_FLOAT16: np.float16, _ONNX_DOUBLE: np.float64}[to])
        else:
            raise ConvertError("%s: input %s is not a constant weight" % (user.label(), tname))
        if v.dtype.kind != "f":
            raise ConvertError("%s: weight %s has type %s, not floating point (quantized?)" % (user.label(), tname, v.dtype))
        cache[tname] = v
        return v

    convs = []
    folded_bn = set()
    for n in nodes:
        if n.op != "Conv" or n.domain not in ("", "ai.onnx"):
            continue
        if len(n.inputs) < 2:
            raise ConvertError("%s has no weight input" % n.label())
        w = const(n.inputs[1], n)
        if w.ndim != 4:
            raise ConvertError("%s: weight %s has shape %s, expected 4-D" % (n.label(), n.inputs[1], _shape_str(w.shape)))
        b = const(n.inputs[2], n) if len(n.inputs) > 2 and n.inputs[2] else None
        if b is not None and b.shape != (w.shape[0],):
            raise ConvertError("%s: bias %s has shape %s, expected [%d]" % (n.label(), n.inputs[2], _shape_str(b.shape), w.shape[0]))
        if n.attr_int("group", 1) != 1:
            raise ConvertError("%s: group %d is not a U2Net/ISNet convolution" % (n.label(), n.attr_int("group", 1)))
        # follow Identity/Cast to a BatchNormalization that is the only consumer
        bn = None
        t = n.outputs[0]
        while True:
            users = consumers.get(t, [])
            if len(users) != 1:
                break
            u = users[0]
            if u.op in _PASS and u.inputs[0] == t:
                t = u.outputs[0]
                continue
            if u.op == "BatchNormalization" and u.inputs[0] == t:
                bn = u
            break
        W = w.astype(np.float64)
        B = None if b is None else b.astype(np.float64)
        if bn is not None:
            if len(bn.inputs) < 5:
                raise ConvertError("%s has too few inputs" % bn.label())
            if bn.attr_int("training_mode", 0):
                raise ConvertError("%s is in training mode" % bn.label())
            gamma, beta, mean, var = (const(x, bn).astype(np.float64) for x in bn.inputs[1:5])
            # epsilon is stored as float32: take the shortest decimal that
            # rounds to it (1e-05 for PyTorch's default), as the exporter meant
            eps = float(str(np.float32(bn.attr_float("epsilon", 1e-5))))
            for nm, arr in zip(bn.inputs[1:5], (gamma, beta, mean, var)):
                if arr.shape != (w.shape[0],):
                    raise ConvertError("%s: %s has shape %s, expected [%d]" % (bn.label(), nm, _shape_str(arr.shape), w.shape[0]))
            if np.any(var < 0):
                raise ConvertError("%s: negative variance" % bn.label())
            Wf, Bf = fmt.fold_bn(W, B, gamma, beta, mean, var, eps)
            folded_bn.add(bn.index)
        else:
            Wf = W.astype(np.float32)
            Bf = np.zeros(w.shape[0], np.float32) if B is None else B.astype(np.float32)
        _check_finite("%s (%s)" % (n.label(), n.inputs[1]), Wf, Bf)
        convs.append({"node": n, "wname": n.inputs[1], "W": Wf, "b": Bf,
                      "dil": list(n.attr_ints("dilations") or [1, 1]),
                      "pads": list(n.attr_ints("pads") or [0, 0, 0, 0]),
                      "strides": list(n.attr_ints("strides") or [1, 1])})
    for n in nodes:
        if n.op == "BatchNormalization" and n.index not in folded_bn:
            raise ConvertError("%s does not directly follow a Conv: unexpected graph" % n.label())
    return convs


class _Graph(object):
    """Producers and consumers of an ONNX graph's tensors, and its convs."""

    def __init__(self, nodes, inits):
        self.nodes, self.inits = nodes, inits
        self.producer = {}
        self.consumers = collections.defaultdict(list)
        for n in nodes:
            for o in n.outputs:
                if o:
                    self.producer[o] = n
            for i in n.inputs:
                if i:
                    self.consumers[i].append(n)
        self.convs = _collect_convs(nodes, inits, self.producer, self.consumers)
        self.conv_of_node = {id(c["node"]): c for c in self.convs}

    def through(self, t, ops=_PASS):
        """The tensor `t` comes from once Identity/Cast (or `ops`) are skipped, and its producer."""
        for _ in range(len(self.nodes) + 1):
            p = self.producer.get(t)
            if p is None or p.op not in ops or not p.inputs:
                return t, p
            t = p.inputs[0]
        raise ConvertError("cycle in the ONNX graph")

    def conv_before(self, t):
        """The conv whose output `t` is after ReLU / BatchNorm / Cast / Identity, or None."""
        _t, p = self.through(t, _PASS + ("Relu", "BatchNormalization"))
        return self.conv_of_node.get(id(p)) if p is not None else None


def _stage_members(g, first, last):
    """The convs of the RSU block from `first` (rebnconvin) to `last`
    (rebnconv1d): everything `last` depends on back to `first`, in graph order."""
    members = {id(first["node"]): first, id(last["node"]): last}
    seen = set()
    todo = [last["node"].inputs[0]]
    steps = 0
    while todo:
        t = todo.pop()
        if t in seen or not t:
            continue
        seen.add(t)
        steps += 1
        if steps > 4 * len(g.nodes) + 16:
            raise ConvertError("cycle in the ONNX graph")
        p = g.producer.get(t)
        if p is None:
            if t in g.inits:
                continue
            raise ConvertError("%s: the block it ends reaches the graph input without passing %s: unexpected graph"
                               % (last["node"].label(), first["node"].label()))
        if p is first["node"] or p.op == "Constant":
            continue
        c = g.conv_of_node.get(id(p))
        if c is not None:
            members[id(p)] = c
            todo.append(p.inputs[0])
        elif p.op == "BatchNormalization":
            todo.append(p.inputs[0])
        else:
            todo.extend(p.inputs)
    return sorted(members.values(), key=lambda c: c["node"].index)


def _read_prelude(g, stage1):
    """The layers between the graph input and stage 1: (PreludeConv or
    PreludePool, conv dict or None) in order."""
    layers = []
    relu = False
    t = stage1["node"].inputs[0]
    while True:
        t, p = g.through(t)
        if p is None:
            if t in g.inits:
                raise ConvertError("stage1's input %s is a constant" % t)
            break
        if len(layers) > fmt.MAX_PRELUDE:
            raise ConvertError("more than %d layers between the graph input and stage1" % fmt.MAX_PRELUDE)
        c = g.conv_of_node.get(id(p))
        if p.op == "Relu" and not relu:
            relu = True
            t = p.inputs[0]
        elif p.op == "BatchNormalization":
            t = p.inputs[0]          # folded into the conv before it
        elif c is not None:
            s, d = c["strides"], c["dil"]
            if c["W"].shape[2:] != (3, 3) or len(set(s)) != 1 or len(set(d)) != 1 or c["pads"] != [d[0]] * 4:
                raise ConvertError("%s (%s): kernel %s strides %s dilations %s pads %s: a prelude convolution is 3x3 "
                                   "with padding = dilation" % (p.label(), c["wname"], _shape_str(c["W"].shape[2:]),
                                                                s, d, c["pads"]))
            layers.append((fmt.PreludeConv(int(c["W"].shape[1]), int(c["W"].shape[0]), s[0], d[0], int(relu)), c))
            relu = False
            t = p.inputs[0]
        elif p.op == "MaxPool" and not relu:
            if (p.attr_ints("kernel_shape") != [2, 2] or p.attr_ints("strides") != [2, 2]
                    or p.attr_int("ceil_mode", 0) != 1 or any(p.attr_ints("pads") or [])
                    or any(v != 1 for v in (p.attr_ints("dilations") or []))):
                raise ConvertError("%s: a prelude pool is 2x2, stride 2, ceil mode, no padding" % p.label())
            layers.append((fmt.PreludePool(), None))
            t = p.inputs[0]
        else:
            raise ConvertError("%s between the graph input and stage1: not a U2Net/ISNet-family prelude" % p.label())
    if relu:
        raise ConvertError("a Relu between the graph input and stage1 follows no convolution")
    return layers[::-1]


def describe_onnx(g):
    """The network an ONNX graph computes and the conv of each tensor-table
    entry: (Network, {prefix: conv dict}). Stages are the residual (RSU)
    blocks, each ending in an Add of its rebnconv1d and rebnconvin, in graph
    order; RSU-F vs RSU-L from rebnconv2's dilation; the prelude is what lies
    between the graph input and stage 1; a side is a 3x3 conv reading a
    stage's output, the fuse conv the 1x1 one."""
    blocks = []
    for n in g.nodes:
        if n.op == "Add" and len(n.inputs) == 2:
            a, b = g.conv_before(n.inputs[0]), g.conv_before(n.inputs[1])
            if a is not None and b is not None and a is not b:
                first, last = sorted((a, b), key=lambda c: c["node"].index)
                blocks.append((n, first, last))
    if not blocks:
        raise ConvertError("unknown network: no U2Net/ISNet residual (RSU) block in the ONNX graph (%d Conv nodes)"
                           % len(g.convs))
    blocks.sort(key=lambda blk: blk[1]["node"].index)
    count = len(blocks)
    if count < fmt.MIN_STAGES or count % 2 != 1:
        raise ConvertError("unknown network: %d residual (RSU) blocks, a U2Net/ISNet-family network has 2n-1, n >= 2"
                           % count)
    n = (count + 1) // 2
    names = fmt.stage_names([None] * count)
    owner = {}
    stage_of_add = {}
    stages = []
    members = []
    for i, (add, first, last) in enumerate(blocks):
        mem = _stage_members(g, first, last)
        for c in mem:
            if id(c["node"]) in owner:
                raise ConvertError("%s belongs to two residual blocks: unexpected graph" % c["node"].label())
            owner[id(c["node"])] = i
        if mem[0] is not first or len(mem) % 2 or len(mem) < 4:
            raise ConvertError("%s: the block ending at %s has %d convolutions, not an RSU block"
                               % (names[i], add.label(), len(mem)))
        L = len(mem) // 2
        if L >= 3:
            kind = fmt.RSU_F if mem[2]["dil"] != [1, 1] else fmt.RSU_L
        else:         # RSU-L and RSU-F of height 2 are the same convolutions
            kind = fmt.RSU_F if _deepest_two_levels(i, count) else fmt.RSU_L
        W0 = first["W"]
        stages.append((kind, L, int(W0.shape[1]), int(mem[1]["W"].shape[0]), int(W0.shape[0]),
                       fmt.ENCODER if i < n else fmt.DECODER))
        stage_of_add[id(add)] = i
        members.append(mem)
    prelude = _read_prelude(g, blocks[0][1])
    used = set(owner) | set(id(c["node"]) for _l, c in prelude if c is not None)
    sides, fuses = {}, []
    for c in g.convs:
        if id(c["node"]) in used:
            continue
        if c["W"].shape[2:] == (1, 1):
            fuses.append(c)
            continue
        _t, p = g.through(c["node"].inputs[0])
        s = stage_of_add.get(id(p)) if p is not None else None
        if s is None:
            raise ConvertError("%s (%s) reads no stage's output: not part of a U2Net/ISNet-family network"
                               % (c["node"].label(), c["wname"]))
        if s == n - 1:
            k = n
        elif s >= n:
            k = count - s
        else:
            raise ConvertError("%s (%s) reads %s, which feeds no side output in the U2Net/ISNet family"
                               % (c["node"].label(), c["wname"], names[s]))
        for label in (c["wname"], c["node"].name):
            m = _SIDE_RE.search(label)
            if m and int(m.group(1)) != k:
                raise ConvertError("%s (%s) reads %s's output, which feeds side%d" % (c["node"].label(), c["wname"], names[s], k))
        if k in sides:
            raise ConvertError("%s and %s both read %s" % (sides[k]["node"].label(), c["node"].label(), names[s]))
        sides[k] = c
    for k in range(1, n + 1):
        if k not in sides:
            raise ConvertError("no side convolution reads %s (side%d)" % (names[n - 1] if k == n else "stage%dd" % k, k))
    if len(fuses) > 1:
        raise ConvertError("%d 1x1 convolutions (%s): a U2Net-family network has one fuse convolution"
                           % (len(fuses), ", ".join(c["node"].label() for c in fuses)))
    if prelude and fuses:
        raise ConvertError("a prelude before stage1 and a fuse convolution: neither the U2Net layout (outconv, no "
                           "prelude) nor ISNet's (conv_in, no outconv)")
    if not prelude and not fuses:
        raise ConvertError("no fuse convolution and no prelude before stage1: neither the U2Net layout (outconv) "
                           "nor ISNet's (conv_in)")
    if fuses:
        _check_fuse_order(g, fuses[0], sides)
        net = fmt.u2net_network(stages)
    else:
        net = fmt.Network(tuple(l for l, _c in prelude), tuple(stages),
                          tuple(fmt.Side(2 * n - 1 - k, 0) for k in range(1, n + 1)), False, 0,
                          fmt.ISNET_PROCESSING, 3, 1)
    try:
        fmt.check_network(net)
    except fmt.FormatError as e:
        raise ConvertError("not a network the model file can hold: %s" % e)
    where = collections.OrderedDict()
    for i, (layer, c) in enumerate(prelude, 1):
        if c is not None:
            where["prelude%d" % i] = c
    for i, (sname, mem) in enumerate(zip(names, members)):
        for (cname, _ci, _co, _k, _d), c in zip(fmt.stage_convs(stages[i]), mem):
            where["%s.%s" % (sname, cname)] = c
    for k in range(1, n + 1):
        where["side%d" % k] = sides[k]
    if fuses:
        where["outconv"] = fuses[0]
    return net, where


def _check_fuse_order(g, fuse, sides):
    """The fuse conv must read cat(side1, ..., siden), each side possibly resized."""
    _t, cat = g.through(fuse["node"].inputs[0])
    got = []
    if cat is not None and cat.op == "Concat":
        for t in cat.inputs:
            _t, p = g.through(t, _PASS + ("Resize",))
            got.append(next((k for k, c in sides.items() if p is c["node"]), None))
    if got != list(range(1, len(sides) + 1)):
        raise ConvertError("%s (%s) does not read the side outputs concatenated in order side1..side%d"
                           % (fuse["node"].label(), fuse["wname"], len(sides)))


def _check_geometry(c, e, stride=1):
    prefix, _ci, _co, k, d = e
    p = d * (k // 2)
    if c["dil"] != [d, d] or c["pads"] != [p, p, p, p] or c["strides"] != [stride, stride]:
        raise ConvertError("%s (%s, %s): dilations %s pads %s strides %s, expected dilation %d padding %d stride %d"
                           % (c["node"].label(), c["wname"], prefix, c["dil"], c["pads"], c["strides"], d, p, stride))


def convert_onnx_bytes(buf, name=None):
    nodes, inits = parse_onnx(buf)
    _refuse_quantized(nodes)
    g = _Graph(nodes, inits)
    if not g.convs:
        raise ConvertError("ONNX graph has no Conv nodes: unknown network")
    net, where = describe_onnx(g)
    label = network_label(net)
    strides = {"prelude%d" % i: layer.stride for i, layer in enumerate(net.prelude, 1)
               if isinstance(layer, fmt.PreludeConv)}
    tensors = collections.OrderedDict()
    for e in fmt.conv_list(net):
        prefix, ci, co, ks, _d = e
        c = where[prefix]
        want_shape = (co, ci, ks, ks)
        if c["W"].shape != want_shape:
            raise ConvertError("%s weight %s has shape %s, expected %s for %s.weight (%s)" % (
                c["node"].label(), c["wname"], _shape_str(c["W"].shape), _shape_str(want_shape), prefix, label))
        # names in the graph, when they are official keys or module paths, must agree with the order
        for regex, text in ((_BODY_RE, c["wname"]), (_BODY_NODE_RE, c["node"].name)):
            m = regex.search(text)
            if m and "%s.%s" % m.groups() != prefix:
                raise ConvertError("%s (%s) sits where %s belongs: unexpected graph order"
                                   % (c["node"].label(), c["wname"], prefix))
        _check_geometry(c, e, strides.get(prefix, 1))
        tensors[prefix + ".weight"] = c["W"]
        tensors[prefix + ".bias"] = c["b"]
    return Model(name or default_name(net), net, tensors, "onnx")


# ---------------------------------------------------------------------------
# files

def sniff(buf):
    if not buf:
        return "empty"
    if buf[:4] == b"PK\x03\x04" or buf[:4] == b"PK\x05\x06":
        return "zip"
    if buf[:4] == fmt.MAGIC:
        return "u2nc"
    # safetensors: a little-endian header length, then the JSON header: '{'
    # and, unless the length is plausible, the '"' of its first key
    if len(buf) >= 9 and buf[8:9] == b"{" and (struct.unpack_from("<Q", buf, 0)[0] <= SAFETENSORS_MAX_HEADER
                                              or buf[9:10] == b'"'):
        return "safetensors"
    if buf[0] == 0x80 and len(buf) > 1 and buf[1] <= 5:
        return "pickle"
    if len(buf) > 262 and buf[257:262] == b"ustar":
        return "tar"
    return "onnx"


def load_checkpoint_bytes(buf):
    kind = sniff(buf)
    if kind == "zip":
        return load_zip_checkpoint(buf)
    if kind == "pickle":
        return load_legacy_checkpoint(buf)
    raise ConvertError("not a PyTorch checkpoint")


def convert_bytes(buf, name=None):
    kind = sniff(buf)
    if kind == "empty":
        raise ConvertError("empty file")
    if kind == "u2nc":
        raise ConvertError("already a u2net.c model file")
    if kind == "tar":
        raise ConvertError("tar-format checkpoint (PyTorch < 0.1.10) is not supported")
    if kind in ("zip", "pickle"):
        obj = load_checkpoint_bytes(buf)
        return convert_state_dict(_find_state_dict(obj), name)
    if kind == "safetensors":
        return convert_state_dict(load_safetensors(buf), name)
    try:
        return convert_onnx_bytes(buf, name)
    except ConvertError as e:
        if str(e).startswith(("truncated or corrupt protobuf", "corrupt protobuf", "not an ONNX model")):
            if buf[:1] == b"\x08":     # ModelProto.ir_version comes first in every ONNX file
                raise ConvertError("truncated or corrupt ONNX model (%s)" % e)
            raise ConvertError("not a PyTorch checkpoint, safetensors file or ONNX model (%s)" % e)
        raise


def convert_file(path, name=None):
    """Read a checkpoint, safetensors or ONNX file and return a Model."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except IsADirectoryError:
        raise ConvertError("is a directory")
    except OSError as e:
        raise ConvertError("cannot read: %s" % (e.strerror or e))
    m = convert_bytes(buf, name)
    m.source = path
    return m


def write_model(model, path, dtype="f32", protect=()):
    """Write a Model to a u2net.c model file (atomically)."""
    return fmt.write_model(path, model.name, model.net, list(model.tensors.items()), dtype=dtype,
                           protect=protect)


# ---------------------------------------------------------------------------
# processing options

def parse_size(text):
    """'N' or 'WxH' -> (width, height), each 1..8192."""
    m = re.match(r"^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$", text)
    if m:
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
        if 1 <= w <= fmt.MAX_SIZE and 1 <= h <= fmt.MAX_SIZE:
            return w, h
    raise ConvertError("bad --size %r: expected N or WxH, sides 1..%d" % (text, fmt.MAX_SIZE))


def parse_triple(text, what, positive=False):
    """'R,G,B' -> three float32 values, finite (and > 0 with `positive`)."""
    parts = text.split(",")
    try:
        with np.errstate(over="ignore"):       # too large for float32 is refused below
            vals = [float(np.float32(float(p))) for p in parts] if len(parts) == 3 else None
    except ValueError:
        vals = None
    if vals is None or not all(math.isfinite(v) and (v > 0 or not positive) for v in vals):
        raise ConvertError("bad --%s %r: expected R,G,B, three finite numbers%s"
                           % (what, text, " > 0" if positive else ""))
    return tuple(vals)


_CHOICES = {
    "scale": {"max": fmt.SCALE_MAX, "255": fmt.SCALE_255},
    "normalise": {"minmax": 1, "none": 0},
    "resize_back": {"8bit": fmt.RESIZE_BACK_8BIT, "float": fmt.RESIZE_BACK_FLOAT},
}


def parse_choice(text, what):
    table = _CHOICES[what]
    if text not in table:
        raise ConvertError("bad --%s %r: expected %s" % (what.replace("_", "-"), text, " or ".join(table)))
    return table[text]


def processing_options(args):
    """The processing fields the command line sets: {field: value}."""
    out = {}
    if args.size is not None:
        out["width"], out["height"] = parse_size(args.size)
    if args.mean is not None:
        out["mean"] = parse_triple(args.mean, "mean")
    if args.std is not None:
        out["std"] = parse_triple(args.std, "std", positive=True)
    for what in ("scale", "normalise", "resize_back"):
        v = getattr(args, what)
        if v is not None:
            out[what] = parse_choice(v, what)
    return out


def _main(argv):
    class Parser(argparse.ArgumentParser):
        def error(self, message):
            sys.stderr.write("%s: %s\n" % (PROG, message))
            sys.exit(2)

    ap = Parser(prog=PROG, description="Convert a U2Net/U2NetP/ISNet/RMBG-1.4 checkpoint (.pth, .bin, "
                "safetensors) or ONNX model to a u2net.c model file.")
    ap.add_argument("input")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--fp16", action="store_true", help="store float16 weights (default float32)")
    ap.add_argument("--name", help="model name stored in the file (default u2net, u2netp or isnet)")
    ap.add_argument("--force", action="store_true",
                    help="overwrite OUTPUT even if it is not a u2net.c model file")
    pg = ap.add_argument_group("image processing stored in the file (defaults: the network's own, "
                               "docs/FORMAT.md)")
    pg.add_argument("--size", metavar="N|WxH", help="network input size the model was trained at")
    pg.add_argument("--mean", metavar="R,G,B", help="per-channel mean subtracted after scaling")
    pg.add_argument("--std", metavar="R,G,B", help="per-channel divisor after the mean")
    pg.add_argument("--scale", metavar="max|255", help="divide the resized image by its maximum or by 255")
    pg.add_argument("--normalise", metavar="minmax|none", help="min-max normalise the prediction or not")
    pg.add_argument("--resize-back", dest="resize_back", metavar="8bit|float",
                    help="resize the map back after quantising to 8 bits (U2Net) or in float (DIS, RMBG)")
    args = ap.parse_args(argv)
    src = args.input
    try:
        if args.name is not None:
            try:
                fmt._check_name(args.name)
            except fmt.FormatError as e:
                raise ConvertError("bad --name: %s" % e)
        overrides = processing_options(args)
        out = args.output
        if os.path.isdir(out):
            raise ConvertError("output %s is a directory" % out)
        if os.path.exists(src) and os.path.exists(out) and fmt._same_file(src, out):
            raise ConvertError("output %s is the input file" % out)
        if os.path.exists(out) and not args.force:
            with open(out, "rb") as f:
                if f.read(4) != fmt.MAGIC:
                    raise ConvertError("output %s exists and is not a u2net.c model file (use --force)" % out)
        model = convert_file(src, args.name)
        model.net = model.net._replace(processing=model.net.processing._replace(**overrides))
        d = os.path.dirname(os.path.abspath(out))
        os.makedirs(d, exist_ok=True)
        nbytes = write_model(model, out, "f16" if args.fp16 else "f32", protect=(src,))
    except (ConvertError, fmt.FormatError) as e:
        sys.stderr.write("%s: %s: %s\n" % (PROG, src, _one_line(e)))
        return 1
    except OSError as e:
        sys.stderr.write("%s: %s: %s\n" % (PROG, src, _one_line(e.strerror and "%s: %s" % (e.filename or "", e.strerror) or e)))
        return 1
    except MemoryError:
        sys.stderr.write("%s: %s: out of memory\n" % (PROG, src))
        return 1
    except Exception as e:  # a bug or an input nothing above foresaw: still one line
        sys.stderr.write("%s: %s: unexpected error: %s: %s\n" % (PROG, src, type(e).__name__, _one_line(e)))
        return 1
    print("%s: %s (%s), %d convs, %d values, %s, %d bytes" % (
        out, model.name, model.label, model.conv_count, model.value_count,
        "float16" if args.fp16 else "float32", nbytes))
    return 0


def _one_line(e):
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
