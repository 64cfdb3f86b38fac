"""The u2net.c model file (docs/FORMAT.md, version 1): stage tables, tensor
lists, BatchNorm folding, writer and verifying reader.

numpy and the standard library only.
"""
import collections
import os
import struct
import tempfile
import zlib

import numpy as np

MAGIC = b"U2NC"
VERSION = 1
HEADER_BYTES = 128
STAGE_BYTES = 32
TENSOR_BYTES = 96
ALIGN = 64
NAME_BYTES = 32
TENSOR_NAME_BYTES = 56

RSU_L = 1       # pooling U-block RSU-L
RSU_F = 2       # dilated U-block RSU-LF (no pooling)
ENCODER = 0
DECODER = 1

DTYPES = {"f32": 0, "f16": 1}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
NP_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}

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

# Known networks, in the order a detector should try them.
NETWORKS = (("u2netp", U2NETP_STAGES), ("u2net", U2NET_STAGES))

_HEADER = struct.Struct("<4s9I5Q32sII8s")
_STAGE = struct.Struct("<6I2I")
_TENSOR = struct.Struct("<56sII4IQQ")
assert _HEADER.size == HEADER_BYTES and _STAGE.size == STAGE_BYTES and _TENSOR.size == TENSOR_BYTES


class FormatError(ValueError):
    """A model file or a model description that breaks docs/FORMAT.md."""


def _align(n, a=ALIGN):
    return (n + a - 1) // a * a


def check_stages(stages, in_channels=3):
    """Raise FormatError unless `stages` is a valid stage table (docs/FORMAT.md)."""
    stages = [tuple(int(v) for v in s) for s in stages]
    if not stages or len(stages) % 2 != 1:
        raise FormatError("stage count %d is not 2n-1" % len(stages))
    n = (len(stages) + 1) // 2
    for i, s in enumerate(stages):
        if len(s) != 6:
            raise FormatError("stage %d: expected 6 fields, got %d" % (i, len(s)))
        kind, L, cin, mid, cout, role = s
        want_role = ENCODER if i < n else DECODER
        if role != want_role:
            raise FormatError("stage %d: role %d, expected %d" % (i, role, want_role))
        if kind not in (RSU_L, RSU_F):
            raise FormatError("stage %d: unknown kind %d" % (i, kind))
        if L < 2 or L > 16:
            raise FormatError("stage %d: height %d out of range" % (i, L))
        if min(cin, mid, cout) < 1 or max(cin, mid, cout) > 65536:
            raise FormatError("stage %d: channel count out of range" % i)
    names = stage_names(stages)
    if stages[0][2] != in_channels:
        raise FormatError("stage1 in_ch %d != in_channels %d" % (stages[0][2], in_channels))
    for k in range(1, n):
        if stages[k][2] != stages[k - 1][4]:
            raise FormatError("%s in_ch %d != %s out_ch %d"
                              % (names[k], stages[k][2], names[k - 1], stages[k - 1][4]))
    # decoder j (index n + j) is stage{n-1-j}d; it takes up(deeper) + encoder skip
    for j in range(n - 1):
        k = n - 1 - j                       # stagekd, 1-based
        deeper = stages[n - 1] if j == 0 else stages[n + j - 1]
        skip = stages[k - 1]
        want = deeper[4] + skip[4]
        if stages[n + j][2] != want:
            raise FormatError("%s in_ch %d != %d + %d" % (names[n + j], stages[n + j][2], deeper[4], skip[4]))
    return stages


def stage_names(stages):
    """['stage1', ..., 'stagen', 'stage{n-1}d', ..., 'stage1d']."""
    count = len(stages)
    if count < 1 or count % 2 != 1:
        raise FormatError("stage count %d is not 2n-1" % count)
    n = (count + 1) // 2
    return ["stage%d" % k for k in range(1, n + 1)] + ["stage%dd" % k for k in range(n - 1, 0, -1)]


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


def conv_list(stages, out_channels=1):
    """Every convolution in tensor-table order: (name_prefix, in_ch, out_ch, k, dilation).

    Body convs are 'stage1.rebnconvin' ...; then 'side1' .. 'siden' and 'outconv'.
    """
    names = stage_names(stages)
    n = (len(stages) + 1) // 2
    out = []
    for sname, st in zip(names, stages):
        for cname, ci, co, k, d in stage_convs(st):
            out.append(("%s.%s" % (sname, cname), ci, co, k, d))
    for k in range(1, n + 1):
        src = stages[n - 1] if k == n else stages[2 * n - 1 - k]   # stagen or stagekd
        out.append(("side%d" % k, int(src[4]), out_channels, 3, 1))
    out.append(("outconv", n * out_channels, out_channels, 1, 1))
    return out


def tensor_list(stages, out_channels=1):
    """Expected tensors in file order: list of (name, shape tuple)."""
    out = []
    for prefix, ci, co, k, _d in conv_list(stages, out_channels):
        out.append((prefix + ".weight", (co, ci, k, k)))
        out.append((prefix + ".bias", (co,)))
    return out


def count_values(stages, out_channels=1):
    return sum(int(np.prod(s)) for _n, s in tensor_list(stages, out_channels))


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


def pack_model(name, stages, tensors, dtype="f32", in_channels=3, out_channels=1,
               default_size=320, check=True):
    """Build the bytes of a model file.

    tensors: ordered list of (name, array). With check=True (the default) the
    stage table and every tensor name and shape are validated against
    conv_list(stages); check=False lets tests build deliberately broken files.
    """
    if dtype not in DTYPES:
        raise FormatError("dtype must be one of %s" % ", ".join(DTYPES))
    code = DTYPES[dtype]
    npdt = NP_DTYPES[code]
    stages = [tuple(int(v) for v in s) for s in stages]
    bname = _check_name(name) if check else (name.encode() if isinstance(name, str) else name)
    tensors = [(tn, np.asarray(a)) for tn, a in tensors]
    if check:
        check_stages(stages, in_channels)
        want = tensor_list(stages, out_channels)
        if len(tensors) != len(want):
            raise FormatError("%d tensors given, the stage table needs %d" % (len(tensors), len(want)))
        for (tn, a), (wn, ws) in zip(tensors, want):
            if tn != wn:
                raise FormatError("tensor %r where %r was expected" % (tn, wn))
            if tuple(a.shape) != ws:
                raise FormatError("tensor %s has shape %s, expected %s" % (tn, list(a.shape), list(ws)))
            if not np.all(np.isfinite(a)):
                raise FormatError("tensor %s has non-finite values" % tn)
    stage_table_offset = HEADER_BYTES
    tensor_table_offset = stage_table_offset + STAGE_BYTES * len(stages)
    data_offset = _align(tensor_table_offset + TENSOR_BYTES * len(tensors))

    table = bytearray()
    for s in stages:
        table += _STAGE.pack(*s, 0, 0)
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
        table += _TENSOR.pack(btn, code, a.ndim, *dims[:4], off, len(raw))
    table += b"\0" * (data_offset - HEADER_BYTES - len(table))
    body = bytes(table) + bytes(data)
    data_bytes = len(data)
    file_bytes = data_offset + data_bytes
    assert HEADER_BYTES + len(body) == file_bytes
    data_crc = zlib.crc32(body) & 0xFFFFFFFF
    header = make_header(stage_count=len(stages), tensor_count=len(tensors), dtype=code,
                         in_channels=in_channels, out_channels=out_channels,
                         default_size=default_size, tensor_table_offset=tensor_table_offset,
                         data_offset=data_offset, data_bytes=data_bytes, file_bytes=file_bytes,
                         name=bname, data_crc32=data_crc)
    return header + body


def make_header(stage_count, tensor_count, dtype, in_channels, out_channels, default_size,
                tensor_table_offset, data_offset, data_bytes, file_bytes, name, data_crc32,
                magic=MAGIC, version=VERSION, header_bytes=HEADER_BYTES, flags=0,
                stage_table_offset=HEADER_BYTES, header_crc32=None):
    """Pack a 128-byte header; header_crc32=None computes it."""
    fields = [magic, version, header_bytes, flags, stage_count, tensor_count, dtype,
              in_channels, out_channels, default_size, stage_table_offset,
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


def write_model(path, name, stages, tensors, dtype="f32", in_channels=3, out_channels=1,
                default_size=320, protect=()):
    """Validate and write a model file atomically.

    tensors: ordered list of (name, array) matching tensor_list(stages).
    protect: paths that must never be overwritten (e.g. the converter's input).
    """
    for p in protect:
        if _same_file(path, p):
            raise FormatError("refusing to overwrite the input file %s" % p)
    data = pack_model(name, stages, tensors, dtype, in_channels, out_channels, default_size)
    atomic_write(path, data)
    return len(data)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class ModelFile(object):
    """What read_model returns: header fields, stages, tensors (name -> float32)."""

    def __repr__(self):
        return "<ModelFile %s %s: %d stages, %d tensors, %d bytes>" % (
            self.name, self.dtype, self.stage_count, self.tensor_count, self.file_bytes)

    @property
    def conv_count(self):
        return self.tensor_count // 2

    @property
    def value_count(self):
        return sum(int(a.size) for a in self.tensors.values())


def read_model(path_or_bytes):
    """Read and verify a model file; raises FormatError naming the problem."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        buf = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            buf = f.read()
    size = len(buf)
    if size < HEADER_BYTES:
        raise FormatError("file too short for a header (%d bytes)" % size)
    h = _HEADER.unpack_from(buf, 0)
    m = ModelFile()
    (m.magic, m.version, m.header_bytes, m.flags, m.stage_count, m.tensor_count, m.dtype_code,
     m.in_channels, m.out_channels, m.default_size, m.stage_table_offset, m.tensor_table_offset,
     m.data_offset, m.data_bytes, m.file_bytes, rawname, m.data_crc32, m.header_crc32, _r) = h
    if m.magic != MAGIC:
        raise FormatError("bad magic %r (not a u2net.c model file)" % m.magic)
    if m.version != VERSION:
        raise FormatError("unsupported version %d (expected %d)" % (m.version, VERSION))
    if zlib.crc32(buf[:116]) & 0xFFFFFFFF != m.header_crc32:
        raise FormatError("header CRC mismatch")
    if m.header_bytes != HEADER_BYTES:
        raise FormatError("header_bytes %d != %d" % (m.header_bytes, HEADER_BYTES))
    if m.flags != 0 or _r != b"\0" * 8:
        raise FormatError("reserved header fields are not zero")
    if m.file_bytes != size:
        raise FormatError("file is %d bytes, header says %d" % (size, m.file_bytes))
    if m.dtype_code not in DTYPE_NAMES:
        raise FormatError("unknown dtype %d" % m.dtype_code)
    m.dtype = DTYPE_NAMES[m.dtype_code]
    m.name = rawname.rstrip(b"\0").decode("ascii", "replace")
    if m.stage_count < 1 or m.stage_count % 2 != 1 or m.stage_count > 255:
        raise FormatError("bad stage_count %d" % m.stage_count)
    if m.stage_table_offset != HEADER_BYTES:
        raise FormatError("stage_table_offset %d != %d" % (m.stage_table_offset, HEADER_BYTES))
    if m.tensor_table_offset != m.stage_table_offset + STAGE_BYTES * m.stage_count:
        raise FormatError("bad tensor_table_offset %d" % m.tensor_table_offset)
    if m.tensor_count > 4096 or m.tensor_count % 2:
        raise FormatError("bad tensor_count %d" % m.tensor_count)
    table_end = m.tensor_table_offset + TENSOR_BYTES * m.tensor_count
    if m.data_offset % ALIGN or m.data_offset < table_end or m.data_offset - table_end >= ALIGN:
        raise FormatError("bad data_offset %d" % m.data_offset)
    if m.data_offset + m.data_bytes != m.file_bytes:
        raise FormatError("data_offset + data_bytes != file_bytes")
    if zlib.crc32(buf[HEADER_BYTES:]) & 0xFFFFFFFF != m.data_crc32:
        raise FormatError("data CRC mismatch")
    m.stages = []
    for i in range(m.stage_count):
        v = _STAGE.unpack_from(buf, m.stage_table_offset + STAGE_BYTES * i)
        if v[6] or v[7]:
            raise FormatError("stage %d: reserved fields not zero" % i)
        m.stages.append(tuple(v[:6]))
    check_stages(m.stages, m.in_channels)
    want = tensor_list(m.stages, m.out_channels)
    if m.tensor_count != len(want):
        raise FormatError("tensor_count %d, the stage table needs %d" % (m.tensor_count, len(want)))
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
