"""tools/convert.py and tools/u2net_format.py: the version-2 file (layer
table, processing block) and the reading of version 1; every input the
converter takes (U2Net/U2NetP and ISNet/RMBG-1.4 checkpoints in both
torch.save formats, RMBG's model.pth and pytorch_model.bin, safetensors,
ONNX float32/float16 with BN folded or as BatchNormalization nodes, IMG.LY's
isnet-fp16.onnx and the real u2netp-fp16.onnx), the refusal of quantized
ONNX and malicious pickles, the processing options, clean one-line errors,
and no torch import.

The formats of one random checkpoint must give the same tensors (bit for
bit, or within the bound each test states), and a converted file loaded by
the PyTorch reference (u2net_ref.load_u2nc) must reproduce the reference's
outputs on the original checkpoint: that proves the converter without the
C engine. Random checkpoints come from tests/reference (random_weights,
make_goldens); the ISNet format tests use isnet_slim (ISNet's keys and
structure with an eighth of the channels), one test the full-size ISNet.
Writing .pth/.onnx files needs PyTorch (and python3-onnx for the rewritten
graphs): those tests skip without it; safetensors tests need numpy only.
"""
import collections
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import struct
import sys
import zipfile

import numpy as np

import testlib
from testlib import Skip

import convert  # tools/ and tests/reference are on sys.path via testlib
import make_goldens as MG
import random_weights as RW
import u2net_format as F

CONVERT = os.path.join(testlib.ROOT, "tools", "convert.py")
PY = sys.executable
REAL_ISNET = os.path.join(testlib.SHARED, "weights", "isnet-fp16.onnx")
V1_FIXTURE = os.path.join(testlib.ROOT, "tests", "fixtures", "v1_custom.u2nc")
V1_OUTPUTS = os.path.join(testlib.ROOT, "tests", "fixtures", "v1_custom_45x38.npz")
SEEDS_DIR = os.path.join(testlib.ROOT, "tests", "fuzz", "seeds", "model")
REF_TOL = 1e-5          # load_u2nc(converted) vs the unfolded reference (measured <= 2.4e-6)
FP16_REF_TOL = 5e-3     # the same for float16 weights (measured 1.2e-3 on isnet_slim)

SLIM = F.isnet_network(RW.ISNET_SLIM_STAGES)


# Scratch folders: each test's are removed when it passes or skips, kept (and
# named) when it fails.
wd, tidy = testlib.scratch_dir, testlib.tidy


def random_sd(kind, seed=None):
    """Official-key random state dict (BN unfolded), numpy."""
    return RW.random_kind_state_dict(kind, seed)


def need_onnx():
    if importlib.util.find_spec("onnx") is None:
        raise Skip("python3-onnx not installed")


def _torch_save(sd, path, legacy=False):
    import torch
    t = collections.OrderedDict((k, torch.from_numpy(np.array(v, order="C"))) for k, v in sd.items())
    if legacy:
        torch.save(t, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(t, path)
    return path


_CKPT = {}
_CKPT_DIR = []


def CKPT_DIR():
    """One scratch folder for the checkpoints shared by the tests of a run,
    removed when the run ends."""
    if not _CKPT_DIR:
        import atexit
        _CKPT_DIR.append(testlib.workdir("convert_ckpt"))
        atexit.register(testlib.remove_dirs, list(_CKPT_DIR))
    return _CKPT_DIR[0]


_NEEDS_ONNX_PACKAGE = ("onnx_fp16", "onnx_bn_fp16", "onnx_quant", "onnx_qdq", "onnx_qlinear")


def checkpoints(kind, formats=("zip", "legacy", "onnx")):
    """{format: path} of the random checkpoint of `kind` in make_goldens'
    formats, written once per run."""
    if any(not f.startswith("safetensors") for f in formats):
        testlib.need_torch()
    if any(f in _NEEDS_ONNX_PACKAGE for f in formats):
        need_onnx()
    todo = [f for f in formats if not os.path.exists(_CKPT.get((kind, f), ""))]
    if todo:
        for f, p in MG.write_checkpoints(kind, CKPT_DIR(), todo).items():
            _CKPT[(kind, f)] = p
    return collections.OrderedDict((f, _CKPT[(kind, f)]) for f in formats)


def drop_checkpoints(kind, formats):
    for f in formats:
        p = _CKPT.pop((kind, f), None)
        if p and os.path.exists(p):
            os.unlink(p)


def run_convert(inp, out, *extra, check=True):
    p = testlib.run([PY, CONVERT, inp, "-o", out] + list(extra), check=False)
    if check and p.returncode != 0:
        raise AssertionError("convert.py %s failed (%d): %s" % (inp, p.returncode, p.stderr_text.strip()))
    return p


def assert_fails(inp, out, *extra, says=(), label=None, status=1):
    """convert.py must exit with `status` with one clean stderr line and leave no output."""
    existed = os.path.exists(out)
    before = open(out, "rb").read() if existed else None
    p = run_convert(inp, out, *extra, check=False)
    err = p.stderr_text
    lines = err.strip().splitlines()
    print("    %s -> rc %d: %s" % (label or os.path.basename(inp), p.returncode, err.strip()))
    assert p.returncode == status, "expected exit status %d, got %d" % (status, p.returncode)
    assert len(lines) == 1 and err.endswith("\n"), "expected one stderr line, got %r" % err
    if status == 1:
        assert lines[0].startswith("convert.py: %s: " % inp), "message does not name the input: %r" % lines[0]
    assert "Traceback" not in err
    for s in says:
        assert s.lower() in lines[0].lower(), "message %r does not mention %r" % (lines[0], s)
    if existed:
        assert open(out, "rb").read() == before, "the existing output was modified"
    else:
        assert not os.path.exists(out), "output file left behind"
    leftovers = [f for f in os.listdir(os.path.dirname(out) or ".") if f.endswith(".tmp")]
    assert not leftovers, "temporary files left behind: %s" % leftovers
    return lines[0]


def assert_same_tensors(a, b, what, rel=0.0):
    """Same names and shapes; bit-identical values (rel 0) or each tensor's
    max abs difference within rel x its max abs value. Returns the worst ratio."""
    assert list(a.tensors) == list(b.tensors), "%s: tensor names differ" % what
    worst = 0.0
    for k in a.tensors:
        x, y = a.tensors[k], b.tensors[k]
        assert x.shape == y.shape, "%s: %s shape %s != %s" % (what, k, x.shape, y.shape)
        assert x.dtype == np.float32 and y.dtype == np.float32
        if rel == 0.0:
            assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), "%s: %s differs" % (what, k)
        else:
            scale = float(np.max(np.abs(y))) or 1.0
            e = float(np.max(np.abs(x.astype(np.float64) - y))) / scale
            worst = max(worst, e)
            assert e <= rel, "%s: %s relative error %.3g > %g" % (what, k, e, rel)
    print("    %s: %s" % (what, "worst relative error %.3g (tol %g)" % (worst, rel) if rel else "bit-identical"))
    return worst


def _out(d, name):
    return os.path.join(d, name + ".u2nc")


# ------------------------------------------------------------------ format

@tidy
def test_format_tables():
    """The ready-made descriptions are FORMAT.md's U2Net and ISNet rows."""
    for net in (F.U2NET, F.U2NETP, F.ISNET, F.U2NETP_STAGES):
        assert len(F.conv_list(net)) == 119
    assert F.count_values(F.U2NETP_STAGES) == 1125485 and F.count_values(F.U2NETP) == 1125485
    assert F.count_values(F.ISNET) == 44017990      # isnet-architecture.md, after folding
    # the documented U2Net parameter counts include BN gamma and beta of the 112 REBNCONVs
    for stages, want in ((F.U2NETP_STAGES, 1131181), (F.U2NET_STAGES, 44009869)):
        bn = sum(2 * co for p, _ci, co, _k, _d in F.conv_list(stages) if p.startswith("stage"))
        assert F.count_values(stages) + bn == want
    assert F.stage_names(F.U2NET_STAGES) == ["stage1", "stage2", "stage3", "stage4", "stage5", "stage6",
                                             "stage5d", "stage4d", "stage3d", "stage2d", "stage1d"]
    cl = F.conv_list(F.U2NET_STAGES)
    assert cl[0] == ("stage1.rebnconvin", 3, 64, 3, 1)
    assert cl[7] == ("stage1.rebnconv7", 32, 32, 3, 2)
    assert cl[13] == ("stage1.rebnconv1d", 64, 64, 3, 1)
    st5 = [c for c in cl if c[0].startswith("stage5.")]
    assert [c[4] for c in st5] == [1, 1, 2, 4, 8, 4, 2, 1]
    assert [c[0] for c in cl[-7:]] == ["side1", "side2", "side3", "side4", "side5", "side6", "outconv"]
    assert [c[1] for c in cl[-7:-1]] == [64, 64, 128, 256, 512, 512] and cl[-1] == ("outconv", 6, 1, 1, 1)
    ci = F.conv_list(F.ISNET)
    assert ci[0] == ("prelude1", 3, 64, 3, 1) and ci[1] == ("stage1.rebnconvin", 64, 64, 3, 1)
    assert [c[0] for c in ci[-6:]] == ["side%d" % k for k in range(1, 7)] and "outconv" not in [c[0] for c in ci]
    # the layer tables (FORMAT.md, "Layer table")
    for net in (F.U2NET, F.U2NETP):
        rows = F.layer_table(net)
        assert [r[0] for r in rows] == [1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1] + [5] * 6 + [6]
        assert [(r[1], r[4]) for r in rows if r[0] == F.SIDE] == [(10, 0), (9, 1), (8, 1), (7, 1), (6, 1), (5, 1)]
        assert rows[-1] == (6, 6, 1, 0, 0, 0, 0, 0)
        assert F.output_count(net) == 7 and net.prediction == 0
    rows = F.layer_table(F.ISNET)
    assert rows[0] == (3, 3, 64, 3, 2, 1, 0, 0)         # conv 3 -> 64, kernel 3, stride 2, d1, no ReLU
    assert [r[0] for r in rows] == [3] + [1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1] + [5] * 6
    assert [(r[1], r[2], r[4]) for r in rows if r[0] == F.SIDE] == [
        (10, 64, 0), (9, 64, 0), (8, 128, 0), (7, 256, 0), (6, 512, 0), (5, 512, 0)]
    assert F.output_count(F.ISNET) == 6 and F.ISNET.prediction == 0
    # the processing rows
    f32 = lambda v: tuple(float(np.float32(x)) for x in v)  # noqa: E731
    assert F.U2NET_PROCESSING == (320, 320, f32((0.485, 0.456, 0.406)), f32((0.229, 0.224, 0.225)), 0, 1, 0)
    assert F.ISNET_PROCESSING == (1024, 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), 1, 1, 1)
    assert F.U2NET.processing == F.U2NET_PROCESSING and F.ISNET.processing == F.ISNET_PROCESSING
    # the reference's tables must agree with ours
    assert [tuple(s) for s in RW.U2NET_STAGES] == list(F.U2NET_STAGES)
    assert [tuple(s) for s in RW.U2NETP_STAGES] == list(F.U2NETP_STAGES)
    assert [tuple(s) for s in RW.ISNET_STAGES] == list(F.ISNET_STAGES)
    for kind, net in (("u2net", F.U2NET), ("isnet", F.ISNET), ("isnet_slim", SLIM)):
        d = RW.description(kind)
        assert (tuple(tuple(p) for p in d.prelude), [tuple(s) for s in d.stages], [tuple(s) for s in d.sides],
                d.fuse) == (tuple(tuple(p) for p in net.prelude), list(net.stages), [tuple(s) for s in net.sides],
                            net.fuse), kind
    for net in (F.U2NET, F.U2NETP, F.ISNET, SLIM):
        F.check_network(net)
    bad = list(F.U2NETP_STAGES)
    bad[1] = (1, 6, 32, 16, 64, 0)
    try:
        F.check_stages(bad)
        raise AssertionError("non-chaining stage table accepted")
    except F.FormatError as e:
        assert "stage2" in str(e)


@tidy
def test_fold_bn():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    b, g, be, m = (rng.standard_normal(5).astype(np.float32) for _ in range(4))
    v = rng.uniform(0.1, 2, 5).astype(np.float32)
    W, B = F.fold_bn(w, b, g, be, m, v)
    assert W.dtype == np.float32 and B.dtype == np.float32
    s = g.astype(np.float64) / np.sqrt(v.astype(np.float64) + 1e-5)
    assert np.array_equal(W, (w * s[:, None, None, None]).astype(np.float32))
    assert np.array_equal(B, ((b - m.astype(np.float64)) * s + be).astype(np.float32))
    # conv(x) then BN == folded conv(x), on a 1x1 patch check
    x = rng.standard_normal((4, 3, 3))
    y = (np.sum(w * x, axis=(1, 2, 3)) + b - m) / np.sqrt(v + 1e-5) * g + be
    assert np.allclose(np.sum(W * x, axis=(1, 2, 3)) + B, y, rtol=1e-5, atol=1e-5)


def _random_tensors(net, seed):
    rng = np.random.default_rng(seed)
    return [(name, (rng.standard_normal(shape) * 0.1).astype(np.float32)) for name, shape in F.tensor_list(net)]


# A network with a prelude of every kind: conv (ReLU, dilation 2), pool,
# conv (stride 2); two levels, both sides resized to the input's size (after
# this prelude no side's convolution is at the input's size, so none can be
# a resize target), prediction 1.
CUSTOM = F.Network(
    (F.PreludeConv(3, 6, 1, 2, 1), F.PreludePool(), F.PreludeConv(6, 8, 2, 1, 0)),
    ((1, 3, 8, 4, 8, 0), (2, 2, 8, 4, 8, 0), (1, 2, 16, 4, 12, 1)),
    (F.Side(2, 0), F.Side(1, 0)), False, 1,
    F.make_processing(512, 384, (0.1, 0.2, 0.3), (0.5, 1.5, 2.5), 1, 0, 1), 3, 1)


@tidy
def test_format_roundtrip():
    """Version 2 written and read back: header, processing block, layer
    table, tensor table (names, 64-byte alignment), float32 and float16; the
    reader notices damage and the writer validates what it is given."""
    d = wd("convert_format")
    m = convert.convert_state_dict(random_sd("u2netp"))
    items = list(m.tensors.items())
    for dtype in ("f32", "f16"):
        path = os.path.join(d, "m_%s.u2nc" % dtype)
        F.write_model(path, "u2netp", F.U2NETP_STAGES, items, dtype=dtype)
        r = F.read_model(path)
        assert r.version == 2 and r.dtype == dtype and r.name == "u2netp" and r.stages == list(F.U2NETP_STAGES)
        assert r.net == F.U2NETP and r.processing == F.U2NET_PROCESSING and r.output_count == 7
        assert r.tensor_count == 238 and r.conv_count == 119 and r.value_count == 1125485
        assert len(r.layers) == 18 and r.tensor_table_offset == 192 + 32 * 18
        assert r.data_offset % 64 == 0 and r.file_bytes == os.path.getsize(path)
        assert all(info[4] % 64 == 0 for info in r.tensor_info)
        for k, a in items:
            want = a if dtype == "f32" else a.astype(np.float16).astype(np.float32)
            assert np.array_equal(r.tensors[k], want), k
        buf = open(path, "rb").read()
        assert buf[:4] == b"U2NC" and struct.unpack_from("<I", buf, 4)[0] == 2
        assert struct.unpack_from("<II3f3fIII", buf, 128) == (320, 320) + F.U2NET_PROCESSING.mean + \
            F.U2NET_PROCESSING.std + (0, 1, 0)
        assert buf[172:192] == b"\0" * 20
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
    # ISNet-shaped and a prelude of every kind
    for net, name in ((SLIM, "isnet"), (CUSTOM, "custom")):
        tensors = _random_tensors(net, 5)
        r = F.read_model(F.pack_model(name, net, tensors))
        assert r.net == net and r.name == name and list(r.tensors) == [t[0] for t in tensors]
        assert all(np.array_equal(r.tensors[k], a) for k, a in tensors)
    r = F.read_model(F.pack_model("custom", CUSTOM, _random_tensors(CUSTOM, 5)))
    assert [t for t in r.tensors][:4] == ["prelude1.weight", "prelude1.bias", "prelude3.weight", "prelude3.bias"]
    assert r.layers[:3] == [(3, 3, 6, 3, 1, 2, 1, 0), (4, 0, 0, 0, 0, 0, 0, 0), (3, 6, 8, 3, 2, 1, 0, 0)]
    assert r.prediction == 1 and r.processing == CUSTOM.processing and r.output_count == 2
    # the reader notices damage
    buf = bytearray(open(os.path.join(d, "m_f32.u2nc"), "rb").read())
    for what, pos, says in (("data byte", len(buf) - 5, "data CRC"), ("header byte", 36, "header CRC"),
                            ("processing byte", 130, "data CRC"), ("magic", 0, "magic")):
        b2 = bytearray(buf)
        b2[pos] ^= 0x40
        try:
            F.read_model(bytes(b2))
            raise AssertionError("corrupted %s accepted" % what)
        except F.FormatError as e:
            assert says in str(e), (what, str(e))
    try:
        F.read_model(bytes(buf[:-1]))
        raise AssertionError("truncated file accepted")
    except F.FormatError:
        pass
    # the writer validates names, shapes and the description
    bad = list(items)
    bad[2] = (bad[2][0], bad[2][1][:, :8])
    for net, tensors in ((F.U2NETP_STAGES, bad), (F.U2NETP_STAGES, items[:-2]),
                         (F.U2NETP_STAGES, [(("x" + n), a) for n, a in items]),
                         (F.U2NETP._replace(prediction=7), items),
                         (F.U2NETP._replace(processing=F.U2NET_PROCESSING._replace(width=0)), items),
                         (CUSTOM._replace(sides=(F.Side(2, 0), F.Side(1, 1))), _random_tensors(CUSTOM, 1))):
        try:
            F.write_model(os.path.join(d, "bad.u2nc"), "x", net, tensors)
            raise AssertionError("bad model accepted")
        except F.FormatError as e:
            print("    refused: %s" % e)
    assert not os.path.exists(os.path.join(d, "bad.u2nc"))


@tidy
def test_v1_files():
    """Version-1 files (tests/fixtures/v1_custom.u2nc, written by the
    version-1 converter; the fuzz seeds) read as their version-2 equivalent:
    the U2Net sides and fuse, prediction 0, U2Net's processing at
    default_size; written again as version 2 they hold the same network and
    tensors, and the reference computes the same outputs from both."""
    m = F.read_model(V1_FIXTURE)
    assert m.version == 1 and m.default_size == 320 and m.name == "v1custom"
    assert m.net == F.u2net_network(m.stages) and m.prelude == () and m.fuse and m.prediction == 0
    assert m.processing == F.U2NET_PROCESSING and m.output_count == 4
    assert [tuple(s) for s in m.sides] == [(4, 0), (3, 1), (2, 1)]
    assert m.conv_count == 34 and len(m.layers) == 5
    v2 = F.pack_model(m.name, m.net, list(m.tensors.items()))
    m2 = F.read_model(v2)
    assert m2.version == 2 and m2.net == m.net and list(m2.tensors) == list(m.tensors)
    assert all(np.array_equal(m2.tensors[k], a) for k, a in m.tensors.items())
    for seed in ("tiny.u2nc", "tiny16.u2nc"):
        s = F.read_model(os.path.join(SEEDS_DIR, seed))
        assert s.version == 1 and s.net == F.u2net_network(s.stages)
    # a default_size the engine cannot use falls back to 320, as the engine does
    b = bytearray(open(V1_FIXTURE, "rb").read())
    struct.pack_into("<I", b, 36, 512)
    assert F.read_model(F.fix_crcs(b)).processing[:2] == (512, 512)
    struct.pack_into("<I", b, 36, 0)
    assert F.read_model(F.fix_crcs(b)).processing[:2] == (320, 320)
    if not testlib.have_torch():
        raise Skip("PyTorch not installed: the reference's outputs on the v1 fixture not checked")
    import u2net_ref as R
    d = wd("convert_v1")
    path2 = os.path.join(d, "v2.u2nc")
    with open(path2, "wb") as f:
        f.write(v2)
    with np.load(V1_OUTPUTS) as z:
        x, y = z["x"], z["y"]
    y1 = R.run(R.load_u2nc(V1_FIXTURE), x)
    y2 = R.run(R.load_u2nc(path2), x)
    testlib.assert_close(y1, y, REF_TOL, "load_u2nc(v1 fixture) vs its committed outputs")
    assert np.array_equal(y1, y2), "the version-1 file and its version-2 copy compute differently"
    assert R.read_u2nc(path2)["version"] == 2 and R.read_u2nc(V1_FIXTURE)["version"] == 1


# ------------------------------------------------------------------ U2Net checkpoints

def _zip_legacy(kind, onnx):
    paths = checkpoints(kind, ("zip", "legacy", "onnx") if onnx else ("zip", "legacy"))
    d = wd("convert_" + kind)
    outs = {}
    for what in ("zip", "legacy"):
        outs[what] = os.path.join(d, "%s_%s.u2nc" % (kind, what))
        p = run_convert(paths[what], outs[what])
        print("    " + p.stdout_text.strip())
    a, b = F.read_model(outs["zip"]), F.read_model(outs["legacy"])
    assert a.version == 2 and a.name == kind and a.net == F.NETWORKS[kind]
    assert a.conv_count == 119 and a.value_count == F.count_values(F.NETWORKS[kind])
    assert_same_tensors(a, b, "zip vs legacy")
    assert open(outs["zip"], "rb").read() == open(outs["legacy"], "rb").read(), "zip and legacy files differ"
    # and both equal the in-process conversion of the numpy state dict
    want = convert.convert_state_dict(random_sd(kind))
    assert_same_tensors(a, want, "file vs convert_state_dict")
    import u2net_ref  # the torch reference's folding must agree bit for bit
    folded = u2net_ref.fold_state_dict(random_sd(kind))
    for k, v in want.tensors.items():
        ref = folded[k.replace(".weight", ".conv_s1.weight").replace(".bias", ".conv_s1.bias")] \
            if k.startswith("stage") else folded[k]
        assert np.array_equal(v, np.asarray(ref, np.float32)), k
    return outs, d


@tidy
def test_checkpoints_u2netp():
    """zip and legacy .pth of U2NetP -> identical files; the ONNX export (BN
    folded by the exporter in float32) within 1e-6 of each tensor's largest value."""
    outs, d = _zip_legacy("u2netp", onnx=True)
    out = os.path.join(d, "u2netp_onnx.u2nc")
    run_convert(checkpoints("u2netp")["onnx"], out)
    assert_same_tensors(F.read_model(out), F.read_model(outs["zip"]), "onnx export vs checkpoint", rel=1e-6)


@tidy
def test_checkpoints_u2net():
    """The same for the full U2Net (176 MB checkpoints; zip and legacy only)."""
    outs, d = _zip_legacy("u2net", onnx=False)
    m = F.read_model(outs["zip"])
    assert m.value_count == 43981069
    # --fp16 stores exactly float16(float32 values), and the name option
    out16 = os.path.join(d, "u2net_f16.u2nc")
    run_convert(checkpoints("u2net", ("legacy",))["legacy"], out16, "--fp16", "--name", "human_seg")
    m16 = F.read_model(out16)
    assert m16.dtype == "f16" and m16.name == "human_seg"
    for k, a in m.tensors.items():
        assert np.array_equal(m16.tensors[k], a.astype(np.float16).astype(np.float32)), k
    for p in list(outs.values()) + [out16]:
        os.unlink(p)
    drop_checkpoints("u2net", ("zip", "legacy"))


@tidy
def test_checkpoint_variants():
    """Views with storage offsets, non-contiguous strides, 'module.' prefixes,
    _metadata, a wrapping {'state_dict': ...} dict, float16/float64 storages."""
    testlib.need_torch()
    import torch
    conv = convert
    sd = random_sd("u2netp")
    t = collections.OrderedDict((k, torch.from_numpy(v.copy())) for k, v in sd.items())
    big = torch.from_numpy(np.arange(1000, dtype=np.float32) / 1000)
    t["stage1.rebnconvin.conv_s1.bias"] = big[100:164]                      # storage offset
    sd["stage1.rebnconvin.conv_s1.bias"] = big[100:164].numpy().copy()
    tt = torch.from_numpy(sd["stage2.rebnconv1.conv_s1.weight"].transpose(1, 0, 2, 3).copy()).permute(1, 0, 2, 3)
    assert not tt.is_contiguous()
    t["stage2.rebnconv1.conv_s1.weight"] = tt                               # strides
    sh = torch.from_numpy(np.zeros((2, 16), np.float32))
    sh[1] = torch.from_numpy(sd["stage3.rebnconv2.bn_s1.running_var"])
    t["stage3.rebnconv2.bn_s1.running_var"] = sh[1]                         # shares a storage
    t["stage3.rebnconv2.bn_s1.running_mean"] = sh[0]
    sd["stage3.rebnconv2.bn_s1.running_mean"] = np.zeros(16, np.float32)
    t["side3.weight"] = t["side3.weight"].double()
    t["side4.weight"] = t["side4.weight"].half()
    sd["side4.weight"] = sd["side4.weight"].astype(np.float16)
    want = conv.convert_state_dict(sd)
    mod = collections.OrderedDict(("module." + k, v) for k, v in t.items())
    mod._metadata = collections.OrderedDict([("", {"version": 1})])
    d = wd("convert_variants")
    for i, obj in enumerate((t, mod, {"state_dict": mod, "epoch": 7, "lr": 0.001})):
        for legacy in (False, True):
            path = _torch_save_any(obj, os.path.join(d, "v%d_%d.pth" % (i, legacy)), legacy)
            got = conv.convert_file(path)
            assert_same_tensors(got, want, os.path.basename(path))


def _torch_save_any(obj, path, legacy):
    import torch
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


@tidy
def test_zip_other_archive_name():
    """The archive folder inside the zip can have any name (torch uses the file stem)."""
    testlib.need_torch()
    conv = convert
    sd = random_sd("u2netp")
    d = wd("convert_zipname")
    src = _torch_save(sd, os.path.join(d, "a.pth"))
    with zipfile.ZipFile(src) as zin:
        names = zin.namelist()
        top = names[0].split("/")[0]
        dst = os.path.join(d, "b.pth")
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
            for n in names:
                zout.writestr("my_weights_v2/" + n.split("/", 1)[1], zin.read(n))
    assert top != "my_weights_v2"
    assert_same_tensors(conv.convert_file(dst), conv.convert_state_dict(sd), "renamed archive")



# ------------------------------------------------------------------ U2Net ONNX

@tidy
def test_onnx_export_with_bn_nodes():
    """torch.onnx.export with BatchNormalization kept (official initializer
    names): folded here in float64 from the same float32 values as the
    checkpoint, so bit-identical to it."""
    need_onnx()
    import onnx
    path = checkpoints("u2netp", ("onnx_bn",))["onnx_bn"]
    ops = collections.Counter(n.op_type for n in onnx.load(path).graph.node)
    assert ops["BatchNormalization"] == 112, ops
    d = wd("convert_bn_onnx")
    out = os.path.join(d, "bn.u2nc")
    run_convert(path, out)
    m = F.read_model(out)
    assert m.net == F.U2NETP and m.name == "u2netp"
    assert_same_tensors(m, convert.convert_state_dict(random_sd("u2netp")), "onnx with BN")


def _make_helper_onnx(sd, stages, path, reverse_sides=True, swap_sides=False):
    """A graph built with onnx.helper: Conv -> BatchNormalization -> Relu per
    REBNCONV, residual Adds, side convs from the stage outputs (in reverse
    order, numeric names), weights as raw/float_data/float16 int32_data/
    Constant+Cast. Shapes of the activations are not meant to be consistent:
    only the converter reads it."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = [], []
    counter = [0]

    def fresh():
        counter[0] += 1
        return str(1000 + counter[0])

    def put(name, arr, style):
        arr = np.asarray(arr)
        if style == "raw":
            inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
            return name
        if style == "float_data":
            inits.append(helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.astype(np.float32).ravel().tolist()))
            return name
        if style == "f16_const":   # Constant float16 (int32_data) -> Cast to float
            h = arr.astype(np.float16)
            t = helper.make_tensor(name + "_h", TensorProto.FLOAT16, h.shape, h.ravel())
            nodes.append(helper.make_node("Constant", [], [name + "_h"], value=t))
            nodes.append(helper.make_node("Cast", [name + "_h"], [name], to=TensorProto.FLOAT))
            return name
        raise ValueError(style)

    styles = ("raw", "float_data", "f16_const")
    x = "input.1"
    n = (len(stages) + 1) // 2
    stage_out = {}
    prev = x
    ci = 0
    for sname, st in zip(F.stage_names(stages), stages):
        relu_in = relu_1d = None
        for cname, _i, _o, _k, dil in F.stage_convs(st):
            p = "%s.%s" % (sname, cname)
            style = styles[ci % 3]
            ci += 1
            official = ci % 2 == 0
            wn = put(p + ".conv_s1.weight" if official else fresh(), sd[p + ".conv_s1.weight"], style)
            bn_ = put(p + ".conv_s1.bias" if official else fresh(), sd[p + ".conv_s1.bias"], style)
            bnp = [put(fresh(), sd[p + ".bn_s1." + f], style) for f in ("weight", "bias", "running_mean", "running_var")]
            c_out, b_out, r_out = fresh(), fresh(), fresh()
            nodes.append(helper.make_node("Conv", [prev, wn, bn_], [c_out], kernel_shape=[3, 3],
                                          dilations=[dil, dil], pads=[dil] * 4, strides=[1, 1], group=1))
            kw = {"epsilon": 1e-5} if ci % 4 else {}
            nodes.append(helper.make_node("BatchNormalization", [c_out] + bnp, [b_out], **kw))
            nodes.append(helper.make_node("Relu", [b_out], [r_out]))
            if cname == "rebnconvin":
                relu_in = r_out
            if cname == "rebnconv1d":
                relu_1d = r_out
            prev = r_out
        a_out = fresh()
        nodes.append(helper.make_node("Add", [relu_1d, relu_in], [a_out]))
        stage_out[sname] = a_out
        prev = a_out
    order = list(range(n, 0, -1)) if reverse_sides else list(range(1, n + 1))
    side_outs = {}
    for k in order:
        src = stage_out["stage%d" % k if k == n else "stage%dd" % k]
        wname = "side%d.weight" % (k % n + 1) if swap_sides else fresh()   # swap: a name that lies
        wn = put(wname, sd["side%d.weight" % k], "raw")
        bn_ = put(fresh(), sd["side%d.bias" % k], "float_data")
        o = fresh()
        nodes.append(helper.make_node("Conv", [src, wn, bn_], [o], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        side_outs[k] = o
    cat = fresh()
    nodes.append(helper.make_node("Concat", [side_outs[k] for k in range(1, n + 1)], [cat], axis=1))
    wn = put("outconv.weight", sd["outconv.weight"], "raw")
    bn_ = put("outconv.bias", sd["outconv.bias"], "raw")
    nodes.append(helper.make_node("Conv", [cat, wn, bn_], ["d0pre"], kernel_shape=[1, 1]))
    nodes.append(helper.make_node("Sigmoid", ["d0pre"], ["d0"]))
    graph = helper.make_graph(nodes, "u2net_helper",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, 64, 64])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


@tidy
def test_onnx_helper_bn_nodes():
    """A hand-built ONNX with explicit BatchNormalization nodes folds correctly."""
    need_onnx()
    import onnx
    conv = convert
    sd = random_sd("u2netp")
    # values stored as float16 in the graph: round them in the reference too
    ci = 0
    for p, _i, _o, _k, _d in F.conv_list(F.U2NETP_STAGES):
        if not p.startswith("stage"):
            continue
        ci += 1
        if ci % 3 == 0:
            for f in (".conv_s1.weight", ".conv_s1.bias", ".bn_s1.weight", ".bn_s1.bias",
                      ".bn_s1.running_mean", ".bn_s1.running_var"):
                sd[p + f] = sd[p + f].astype(np.float16).astype(np.float32)
    d = wd("convert_helper_onnx")
    path = _make_helper_onnx(sd, F.U2NETP_STAGES, os.path.join(d, "helper.onnx"))
    out = os.path.join(d, "helper.u2nc")
    run_convert(path, out)
    assert_same_tensors(F.read_model(out), conv.convert_state_dict(sd), "helper onnx")
    # a graph whose side names contradict where the sides read from is refused
    bad = _make_helper_onnx(sd, F.U2NETP_STAGES, os.path.join(d, "swapped.onnx"), swap_sides=True)
    assert_fails(bad, os.path.join(d, "swapped.u2nc"), says=("side",))
    # a wrong weight shape names the conv, both shapes and the slot it sits in
    s2 = collections.OrderedDict(sd)
    s2["stage2.rebnconv3.conv_s1.weight"] = np.zeros((16, 8, 3, 3), np.float32)
    bad = _make_helper_onnx(s2, F.U2NETP_STAGES, os.path.join(d, "shape.onnx"))
    assert_fails(bad, os.path.join(d, "shape.u2nc"), says=("[16, 8, 3, 3]", "[16, 16, 3, 3]", "stage2.rebnconv3"))
    # a weight that is not a constant (initializer removed)
    m = onnx.load(path)
    init_names = set(i.name for i in m.graph.initializer)
    victim = [n.input[1] for n in m.graph.node if n.op_type == "Conv" and n.input[1] in init_names][5]
    keep = [i for i in m.graph.initializer if i.name != victim]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    bad = os.path.join(d, "noweight.onnx")
    onnx.save(m, bad)
    assert_fails(bad, os.path.join(d, "noweight.u2nc"), says=(victim, "not a constant"))
    # a graph that is no U2Net at all
    from onnx import TensorProto, helper, numpy_helper
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
                          initializer=[numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")])
    bad = os.path.join(d, "tiny.onnx")
    onnx.save(helper.make_model(g), bad)
    assert_fails(bad, os.path.join(d, "tiny.u2nc"), says=("unknown network",))




def _onnx_initializers(path):
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    return g, {i.name: numpy_helper.to_array(i) for i in g.initializer}


@tidy
def test_real_onnx():
    """../shared/weights/u2netp-fp16.onnx: 119 convs, 1,125,485 values, exact."""
    testlib.need_shared_weights()
    d = wd("convert_real")
    out = os.path.join(d, "u2netp.u2nc")
    # as the Makefile runs it: the script itself (shebang), with --force
    if os.access(CONVERT, os.X_OK) and os.path.exists("/usr/bin/python3"):
        p = testlib.run([CONVERT, testlib.REAL_ONNX, "-o", out, "--force"], check=False)
    else:
        p = run_convert(testlib.REAL_ONNX, out, "--force")
    assert p.returncode == 0, p.stderr_text
    print("    " + p.stdout_text.strip())
    m = F.read_model(out)
    assert m.name == "u2netp" and m.dtype == "f32" and m.net == F.U2NETP
    assert m.conv_count == 119 and m.tensor_count == 238 and m.value_count == 1125485
    out16 = os.path.join(d, "u2netp16.u2nc")
    run_convert(testlib.REAL_ONNX, out16, "--fp16")
    m16 = F.read_model(out16)
    assert m16.dtype == "f16"
    for k in m.tensors:
        assert np.array_equal(m.tensors[k], m16.tensors[k]), "fp16 source values must convert exactly: %s" % k
    try:
        g, inits = _onnx_initializers(testlib.REAL_ONNX)
    except ImportError:
        return
    convs = [n for n in g.node if n.op_type == "Conv"]
    body = [n for n in convs if n.input[1][0].isdigit()]
    names = [c[0] for c in F.conv_list(F.U2NETP_STAGES)]
    assert len(body) == 112
    for n, prefix in zip(body, names[:112]):
        assert np.array_equal(m.tensors[prefix + ".weight"], inits[n.input[1]].astype(np.float32)), prefix
        assert np.array_equal(m.tensors[prefix + ".bias"], inits[n.input[2]].astype(np.float32)), prefix
    for k in range(1, 7):
        assert np.array_equal(m.tensors["side%d.weight" % k], inits["side%d.weight" % k].astype(np.float32))
    assert np.array_equal(m.tensors["outconv.weight"], inits["outconv.weight"].astype(np.float32))


# ------------------------------------------------------------------ ISNet / RMBG-1.4

SLIM_FORMATS = ("zip", "legacy", "rmbg_pth", "bin", "safetensors", "safetensors_f16", "safetensors_bf16",
                "onnx", "onnx_bn", "onnx_fp16", "onnx_bn_fp16")


def _slim_want(float_dtype="F32"):
    return convert.convert_state_dict(MG.round_state_dict(random_sd("isnet_slim"), float_dtype))


@tidy
def test_isnet_formats():
    """One random ISNet checkpoint (isnet_slim) in every format the converter
    reads: DIS-style zip and legacy .pth, RMBG's model.pth, pytorch_model.bin,
    model.safetensors (float32, float16, bfloat16), ONNX export with BN
    folded by the exporter or kept as BatchNormalization nodes, and the
    float16 graphs with Cast nodes in IMG.LY's layout. Each gives the ISNet
    layer table with ISNet's processing; bit-identical tensors where the
    values are the same, else within the bound stated."""
    need_onnx()
    paths = checkpoints("isnet_slim", SLIM_FORMATS)
    d = wd("convert_isnet")
    got = {}
    for f, src in paths.items():
        out = _out(d, f)
        p = run_convert(src, out)
        print("    %-16s %s" % (f, p.stdout_text.strip()))
        got[f] = F.read_model(out)
        assert got[f].net == SLIM and got[f].name == "isnet" and got[f].processing == F.ISNET_PROCESSING, f
        assert "(ISNet layout)" in p.stdout_text
    want = _slim_want()
    # the same float32 values, folded here in float64: the same files
    for f in ("zip", "legacy", "rmbg_pth", "bin", "safetensors", "onnx_bn"):
        assert_same_tensors(got[f], want, "%s vs convert_state_dict" % f)
        assert open(_out(d, f), "rb").read() == open(_out(d, "zip"), "rb").read(), f
    # float16 / bfloat16 storage: exactly the conversion of the rounded values
    assert_same_tensors(got["safetensors_f16"], _slim_want("F16"), "safetensors F16 vs rounded state dict")
    assert_same_tensors(got["onnx_bn_fp16"], _slim_want("F16"), "float16 ONNX with BN vs rounded state dict")
    assert_same_tensors(got["safetensors_bf16"], _slim_want("BF16"), "safetensors BF16 vs rounded state dict")
    # the exporter folds BN in float32: rounding apart, the same weights
    assert_same_tensors(got["onnx"], want, "onnx (exporter-folded) vs checkpoint", rel=1e-6)
    # IMG.LY's layout: float16 of the exporter's folded float32 weights, exactly
    for k, a in got["onnx"].tensors.items():
        assert np.array_equal(got["onnx_fp16"].tensors[k], a.astype(np.float16).astype(np.float32)), k
    assert_same_tensors(got["onnx_fp16"], want, "float16 ONNX vs checkpoint", rel=2.0 ** -11)


@tidy
def test_isnet_reference_reproduces():
    """Converted ISNet files loaded by the PyTorch reference (load_u2nc, a
    model built from the file's layer table) give the outputs of the
    reference ISNet (official module names, strict loading) on the original
    checkpoint: d1..d6 at an odd, non-square size."""
    need_onnx()
    import u2net_ref as R
    paths = checkpoints("isnet_slim", ("zip", "safetensors_bf16", "onnx", "onnx_fp16"))
    d = wd("convert_isnet_ref")
    x = MG.golden_input(67, 45)
    want = MG.reference_outputs("isnet_slim", x)
    assert want.shape == (6, 67, 45)
    bf16_ref = R.isnet(stages=RW.ISNET_SLIM_STAGES)
    R.load_state_dict(bf16_ref, MG.round_state_dict(random_sd("isnet_slim"), "BF16"), strict=True)
    for f, ref, tol in (("zip", want, REF_TOL), ("onnx", want, REF_TOL),
                        ("safetensors_bf16", R.run(bf16_ref, x), REF_TOL), ("onnx_fp16", want, FP16_REF_TOL)):
        out = _out(d, f)
        run_convert(paths[f], out)
        model = R.load_u2nc(out)
        assert [n for n, _ in model.named_children()][:2] == ["prelude1", "stage1"]
        testlib.assert_close(R.run(model, x), ref, tol, "isnet_slim %s: load_u2nc vs reference" % f)


@tidy
def test_isnet_full_size():
    """The full-size ISNet (44,017,990 values): a zip checkpoint like
    isnet-general-use.pth converts to FORMAT.md's ISNet row, bit-identical to
    the in-process conversion, and the reference on the converted file
    reproduces the committed golden isnet_97x61."""
    testlib.need_torch()
    import u2net_ref as R
    d = wd("convert_isnet_full")
    src = checkpoints("isnet", ("zip",))["zip"]
    out = _out(d, "isnet")
    try:
        p = run_convert(src, out)
        print("    " + p.stdout_text.strip())
        m = F.read_model(out)
        assert m.net == F.ISNET and m.name == "isnet" and "(ISNet)" in p.stdout_text
        assert m.value_count == 44017990 and m.conv_count == 119 and m.output_count == 6
        assert_same_tensors(m, convert.convert_state_dict(random_sd("isnet")), "full ISNet file vs convert_state_dict")
        del m
        x, y = MG.load_golden("isnet", 97, 61)
        testlib.assert_close(R.run(R.load_u2nc(out), x), y, REF_TOL, "isnet 97x61 load_u2nc(converted) vs golden")
    finally:
        drop_checkpoints("isnet", ("zip",))
        if os.path.exists(out):
            os.unlink(out)


# IMG.LY's Conv nodes carry their module paths
_CONV_NODE = re.compile(r"^/(?:(stage\d+d?)/(rebnconv(?:in|\d+d?))/conv_s1|(conv_in)|(side\d+))/Conv$")


@tidy
def test_real_isnet_onnx():
    """../shared/weights/isnet-fp16.onnx (IMG.LY's folded float16 ISNet):
    FORMAT.md's ISNet row, 44,017,990 values, each tensor exactly its
    initializer (matched by the Conv nodes' module-path names)."""
    if not os.path.exists(REAL_ISNET):
        raise Skip("missing %s" % REAL_ISNET)
    d = wd("convert_real_isnet")
    out = _out(d, "isnet")
    try:
        p = run_convert(REAL_ISNET, out)
        print("    " + p.stdout_text.strip())
        m = F.read_model(out)
        assert m.name == "isnet" and m.dtype == "f32" and m.net == F.ISNET
        assert m.processing == F.ISNET_PROCESSING and m.prediction == 0 and m.output_count == 6
        assert m.conv_count == 119 and m.value_count == 44017990
        for k, a in m.tensors.items():     # float16 sources convert exactly (--fp16 loses nothing)
            assert np.array_equal(a.astype(np.float16).astype(np.float32), a), k
        try:
            g, inits = _onnx_initializers(REAL_ISNET)
        except ImportError:
            return
        seen = 0
        for n in g.node:
            if n.op_type != "Conv":
                continue
            mm = _CONV_NODE.match(n.name)
            assert mm, n.name
            stage, conv, stem, side = mm.groups()
            prefix = "%s.%s" % (stage, conv) if stage else "prelude1" if stem else side
            assert np.array_equal(m.tensors[prefix + ".weight"], inits[n.input[1]].astype(np.float32)), prefix
            assert np.array_equal(m.tensors[prefix + ".bias"], inits[n.input[2]].astype(np.float32)), prefix
            seen += 1
        assert seen == 119
    finally:
        if os.path.exists(out):
            os.unlink(out)


@tidy
def test_quantized_onnx_refused():
    """8-bit ONNX (dynamic ConvInteger, QDQ, QLinearConv, and any graph with
    a MatMulInteger, ConvInteger, QuantizeLinear or DequantizeLinear node)
    is refused in one line naming the operator and the node; nothing is
    dequantized."""
    need_onnx()
    import onnx
    from onnx import helper
    paths = checkpoints("isnet_slim", ("onnx", "onnx_quant", "onnx_qdq", "onnx_qlinear"))
    d = wd("convert_quant")
    out = _out(d, "q")
    for f, op in (("onnx_quant", "DynamicQuantizeLinear"), ("onnx_qdq", "QuantizeLinear"),
                  ("onnx_qlinear", "QuantizeLinear")):
        assert_fails(paths[f], out, says=("quantized", "%s node /conv_in/Conv_input_QuantizeLinear" % op), label=f)
    for op in ("MatMulInteger", "ConvInteger", "QLinearConv", "QuantizeLinear", "DequantizeLinear"):
        m = onnx.load(paths["onnx"])
        node = helper.make_node(op, [m.graph.node[20].output[0]], ["unused_" + op], name="/stage3/odd_" + op)
        m.graph.node.insert(21, node)
        bad = os.path.join(d, op + ".onnx")
        onnx.save(m, bad)
        assert_fails(bad, out, says=("quantized", "%s node /stage3/odd_%s" % (op, op)), label=op)


@tidy
def test_isnet_onnx_errors():
    """Truncated and structurally broken ISNet ONNX files: one line each."""
    need_onnx()
    import onnx
    src = checkpoints("isnet_slim", ("onnx",))["onnx"]
    d = wd("convert_isnet_onnx_errors")
    out = _out(d, "x")
    raw = open(src, "rb").read()
    for cut in (100, len(raw) // 3, len(raw) - 10):
        p = os.path.join(d, "cut%d.onnx" % cut)
        with open(p, "wb") as f:
            f.write(raw[:cut])
        assert_fails(p, out, says=("truncated",), label="cut at %d" % cut)

    def edited(name, fn):
        m = onnx.load(src)
        fn(m.graph)
        p = os.path.join(d, name + ".onnx")
        onnx.save(m, p)
        return p

    def node(g, name):
        return next(n for n in g.node if n.name == name)

    def attr(n, name, values):
        a = next(a for a in n.attribute if a.name == name)
        del a.ints[:]
        a.ints.extend(values)

    def no_stem(g):                      # stage 1 reads the input: no prelude, no fuse
        stem = node(g, "/conv_in/Conv")
        node(g, "/stage1/rebnconvin/conv_s1/Conv").input[0] = stem.input[0]
        g.node.remove(stem)

    def no_side(g):
        g.node.remove(node(g, "/side3/Conv"))

    def stem_pads(g):
        attr(node(g, "/conv_in/Conv"), "pads", [0, 0, 0, 0])

    def stem_stride(g):
        attr(node(g, "/conv_in/Conv"), "strides", [3, 3])

    def rsu_dilation(g):
        attr(node(g, "/stage2/rebnconv3/conv_s1/Conv"), "dilations", [2, 2])
        attr(node(g, "/stage2/rebnconv3/conv_s1/Conv"), "pads", [2, 2, 2, 2])

    for name, fn, says in (("no_stem", no_stem, ("prelude",)), ("no_side3", no_side, ("side3", "stage3d")),
                           ("stem_pads", stem_pads, ("/conv_in/Conv", "pads")),
                           ("stem_stride", stem_stride, ("stride",)),
                           ("rsu_dilation", rsu_dilation, ("stage2.rebnconv3", "dilation"))):
        assert_fails(edited(name, fn), out, says=says, label=name)


@tidy
def test_isnet_state_dict_errors():
    """ISNet state dicts with a key missing, extra or misshapen, or with both
    conv_in and outconv: one-line errors naming the key (numpy only, through
    safetensors files)."""
    d = wd("convert_isnet_sd_errors")
    out = _out(d, "x")
    sd = random_sd("isnet_slim")

    def case(name, fn, says):
        s = collections.OrderedDict(sd)
        fn(s)
        p = MG.write_safetensors(os.path.join(d, name + ".safetensors"), s)
        assert_fails(p, out, says=says, label=name)

    case("both", lambda s: s.update({"outconv.weight": np.zeros((1, 6, 1, 1), np.float32),
                                     "outconv.bias": np.zeros(1, np.float32)}), ("conv_in and outconv",))
    case("no_stem_bias", lambda s: s.pop("conv_in.bias"), ("missing key conv_in.bias",))
    case("no_side6", lambda s: (s.pop("side6.weight"), s.pop("side6.bias")), ("missing key side6.weight",))
    case("stem_4ch", lambda s: s.update({"conv_in.weight": np.zeros((8, 4, 3, 3), np.float32)}),
         ("conv_in.weight", "[8, 4, 3, 3]", "[8, 3, 3, 3]"))
    case("pool_in", lambda s: s.update({"pool_in.weight": np.zeros(1, np.float32)}), ("unexpected key pool_in.weight",))
    case("side7", lambda s: s.update({"side7.weight": np.zeros((1, 8, 3, 3), np.float32)}),
         ("unexpected key side7.weight",))
    case("stage_missing", lambda s: [s.pop(k) for k in list(s) if k.startswith("stage3d.")],
         ("missing key stage3d.rebnconvin.conv_s1.weight",))
    case("mid_mismatch", lambda s: s.update({"stage2.rebnconv4.conv_s1.weight": np.zeros((4, 8, 3, 3), np.float32)}),
         ("stage2.rebnconv4.conv_s1.weight", "[4, 8, 3, 3]", "[4, 4, 3, 3]"))
    # the deepest levels are RSU-F by the family rule: an RSU-F taller than 8 cannot be stored
    case("tall_rsu_f", lambda s: s.update({"stage6.rebnconv9.conv_s1.weight": np.zeros((32, 32, 3, 3), np.float32)}),
         ("stage6", "height 9"))


# ------------------------------------------------------------------ processing options

@tidy
def test_processing_options():
    """Defaults per network (U2Net row 320, ISNet row 1024), each option
    stored as given, the recipe for IMG.LY's own normalisation, and one-line
    errors for bad values (numpy only, through safetensors files)."""
    d = wd("convert_options")
    isnet = MG.write_safetensors(os.path.join(d, "isnet.safetensors"), random_sd("isnet_slim"))
    u2netp = MG.write_safetensors(os.path.join(d, "u2netp.safetensors"), random_sd("u2netp"))
    out = _out(d, "o")

    def processing(src, *opts):
        run_convert(src, out, *opts)
        return F.read_model(out).processing

    assert processing(isnet) == F.ISNET_PROCESSING
    assert processing(u2netp) == F.U2NET_PROCESSING
    f32 = lambda *v: tuple(float(np.float32(x)) for x in v)  # noqa: E731
    for opts, want in ((("--size", "512"), dict(width=512, height=512)),
                       (("--size", "640x480"), dict(width=640, height=480)),
                       (("--size", "1x8192"), dict(width=1, height=8192)),
                       (("--mean", "0.1,0.2,0.3"), dict(mean=f32(0.1, 0.2, 0.3))),
                       (("--mean=-1,0,1e3",), dict(mean=f32(-1, 0, 1e3))),
                       (("--std", "1,2,3.5"), dict(std=f32(1, 2, 3.5))),
                       (("--scale", "max"), dict(scale=0)), (("--scale", "255"), dict(scale=1)),
                       (("--normalise", "none"), dict(normalise=0)), (("--normalise", "minmax"), dict(normalise=1)),
                       (("--resize-back", "8bit"), dict(resize_back=0)),
                       (("--resize-back", "float"), dict(resize_back=1))):
        for src, base in ((isnet, F.ISNET_PROCESSING), (u2netp, F.U2NET_PROCESSING)):
            assert processing(src, *opts) == base._replace(**want), opts
    # tools/README.md: IMG.LY's package computes (v - 128) / 256 on 0..255 values, no min-max
    p = processing(isnet, "--mean", "0.50196078,0.50196078,0.50196078", "--std", "1.00392157,1.00392157,1.00392157",
                   "--normalise", "none")
    v = np.arange(256, dtype=np.float64)
    for c in range(3):
        assert np.max(np.abs((v / 255 - p.mean[c]) / p.std[c] - (v - 128) / 256)) < 1e-6
    assert p.scale == 1 and p.normalise == 0 and p.resize_back == 1
    os.unlink(out)
    for opts, says in ((("--size", "0"), "--size"), (("--size", "9000"), "--size"), (("--size", "512x0"), "--size"),
                       (("--size", "abc"), "--size"), (("--size", "3x"), "--size"), (("--size", "-5"), "--size"),
                       (("--mean", "1,2"), "--mean"), (("--mean", "nan,0,0"), "--mean"), (("--mean", "1e39,0,0"), "--mean"),
                       (("--mean", "a,b,c"), "--mean"), (("--std", "0,1,1"), "--std"), (("--std", "1,1,inf"), "--std"),
                       (("--std=-1,1,1",), "--std"), (("--std", "1,1,nan"), "--std"),
                       (("--scale", "256"), "--scale"), (("--normalise", "yes"), "--normalise"),
                       (("--resize-back", "16bit"), "--resize-back")):
        assert_fails(isnet, out, *opts, says=(says,), label=" ".join(opts))
    # a missing value is a usage error (exit status 2)
    assert_fails(isnet, out, "--scale", says=("--scale",), label="--scale without a value", status=2)


# ------------------------------------------------------------------ safetensors

@tidy
def test_safetensors():
    """model.safetensors (numpy writer, Hugging Face layout): F32, F16,
    BF16 and F64 storage, __metadata__, 'module.' prefixes, any key order;
    the same tensors as the state dict it holds (numpy only)."""
    d = wd("convert_safetensors")
    for kind in ("u2netp", "isnet_slim"):
        sd = random_sd(kind)
        for dt in ("F32", "F16", "BF16"):
            p = MG.write_safetensors(os.path.join(d, "%s_%s.safetensors" % (kind, dt)), sd, dt, {"format": "pt"})
            got = convert.convert_file(p)
            assert got.net == (SLIM if kind == "isnet_slim" else F.U2NETP)
            assert_same_tensors(got, convert.convert_state_dict(MG.round_state_dict(sd, dt)),
                                "%s %s safetensors" % (kind, dt))
    sd = random_sd("isnet_slim")
    sd64 = collections.OrderedDict(("module." + k, v.astype(np.float64) if v.dtype.kind == "f" else v)
                                   for k, v in reversed(list(sd.items())))
    p = MG.write_safetensors(os.path.join(d, "f64.safetensors"), sd64, "F64")
    assert_same_tensors(convert.convert_file(p), convert.convert_state_dict(sd64), "F64, module., reversed order")
    # num_batches_tracked as I32 and without it at all
    s = collections.OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    p = MG.write_safetensors(os.path.join(d, "no_nbt.safetensors"), s)
    assert_same_tensors(convert.convert_file(p), convert.convert_state_dict(sd), "without num_batches_tracked")


def _st_parts(buf):
    n = struct.unpack_from("<Q", buf)[0]
    return json.loads(buf[8:8 + n].decode(), object_pairs_hook=collections.OrderedDict), buf[8 + n:]


def _st_join(header, data):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


@tidy
def test_safetensors_errors():
    """Truncated and corrupt safetensors files: one line each, naming the
    problem (offsets, lengths, dtypes, overlaps, gaps are all checked)."""
    d = wd("convert_safetensors_errors")
    out = _out(d, "x")
    good = MG.safetensors_bytes(random_sd("isnet_slim"), metadata={"format": "pt"})
    header, data = _st_parts(good)
    names = [k for k in header if k != "__metadata__"]
    first, second = names[0], names[1]
    hlen = struct.unpack_from("<Q", good)[0]
    cases = [("cut in header", good[:9 + hlen // 2], ("truncated",)),
             ("cut after header", good[:8 + hlen], ("truncated",)),
             ("cut in data", good[:8 + hlen + len(data) // 2], ("truncated",)),
             ("last byte missing", good[:-1], ("truncated",)),
             ("header length too big", struct.pack("<Q", 1 << 40) + good[8:], ("header length",)),
             ("header not JSON", good[:8] + b"{" + b"x" * (hlen - 1) + good[8 + hlen:], ("corrupt safetensors header",))]

    def edit(label, fn, says):
        h = json.loads(json.dumps(header), object_pairs_hook=collections.OrderedDict)
        dd = fn(h)
        cases.append((label, _st_join(h, dd if isinstance(dd, bytes) else data), says))

    edit("no shape", lambda h: h[first].pop("shape"), ("needs exactly dtype, shape and data_offsets", first))
    edit("extra field", lambda h: h[first].update(extra=1), ("needs exactly", first))
    edit("dtype I8", lambda h: h[first].update(dtype="I8"), ("dtype I8", first, "not supported"))
    edit("dtype F8_E4M3", lambda h: h[second].update(dtype="F8_E4M3"), ("F8_E4M3", second))
    edit("shape too big", lambda h: h[first]["shape"].__setitem__(0, 9), ("needs", first))
    edit("negative shape", lambda h: h[first]["shape"].__setitem__(0, -1), ("shape", first))
    edit("offsets past the data", lambda h: h[names[-1]].update(
        data_offsets=[h[names[-1]]["data_offsets"][0], len(data) + 4]), ("data_offsets", names[-1]))
    edit("offsets reversed", lambda h: h[first].update(data_offsets=h[first]["data_offsets"][::-1]),
         ("data_offsets", first))
    edit("float offsets", lambda h: h[first].update(data_offsets=[float(x) for x in h[first]["data_offsets"]]),
         ("data_offsets", first))

    def overlap(h):
        b, e = h[second]["data_offsets"]
        h[second]["data_offsets"] = [b - 4, e - 4]
    edit("overlapping tensors", overlap, ("overlaps",))

    def gap(h):
        for k in names[1:]:
            b, e = h[k]["data_offsets"]
            h[k]["data_offsets"] = [b + 8, e + 8]
        return data[:h[first]["data_offsets"][1]] + b"\0" * 8 + data[h[first]["data_offsets"][1]:]
    edit("gap between tensors", gap, ("belong to no tensor",))
    edit("trailing bytes", lambda h: data + b"\0" * 16, ("after the last tensor",))

    def empty(h):
        for k in names:
            h.pop(k)
        return b""
    edit("no tensors", empty, ("no tensors",))
    cases.append(("duplicate key", _st_join_raw(header, data, duplicate=first), ("appears twice", first)))
    for i, (label, buf, says) in enumerate(cases):
        p = os.path.join(d, "case%02d.safetensors" % i)
        with open(p, "wb") as f:
            f.write(buf)
        assert_fails(p, out, says=says, label=label)
    # the state dict inside is checked like any other
    s = random_sd("isnet_slim")
    s["stage1.rebnconv1.conv_s1.weight"] = s["stage1.rebnconv1.conv_s1.weight"][:, :, :2]
    p = MG.write_safetensors(os.path.join(d, "shape.safetensors"), s)
    assert_fails(p, out, says=("stage1.rebnconv1.conv_s1.weight", "[4, 8, 2, 3]", "[4, 8, 3, 3]"), label="bad shape")


def _st_join_raw(header, data, duplicate):
    """A header whose JSON names `duplicate` twice (json.dumps cannot write one)."""
    body = json.dumps(header)[1:]
    entry = json.dumps({duplicate: header[duplicate]})[1:-1]
    h = ("{" + entry + "," + body).encode()
    return struct.pack("<Q", len(h)) + h + data


# ------------------------------------------------------------------ safety and errors

class _Evil(object):
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _evil_payloads(marker):
    import builtins
    return {"os_system": _Evil(os.system, "touch %s" % marker),
            "eval": _Evil(builtins.eval, "open(%r, 'w').close()" % marker),
            "exec_in_dict": collections.OrderedDict([("stage1.x", _Evil(builtins.exec, "open(%r, 'w').close()" % marker))])}


def _zip_ckpt(obj_bytes, path, folder="archive"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(folder + "/data.pkl", obj_bytes)
        z.writestr(folder + "/byteorder", "little")
        z.writestr(folder + "/version", "3\n")
    return path


def _legacy_ckpt(obj_bytes, path, where="object"):
    f = io.BytesIO()
    magic = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
    proto = pickle.dumps(1001, protocol=2)
    info = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    if where == "sys_info":
        info, obj_bytes = obj_bytes, pickle.dumps(collections.OrderedDict(), protocol=2)
    f.write(magic + proto + info + obj_bytes + pickle.dumps([], protocol=2))
    with open(path, "wb") as fh:
        fh.write(f.getvalue())
    return path


@tidy
def test_malicious_pickle():
    """Checkpoints whose pickle calls os.system / eval / exec are refused, nothing runs."""
    conv = convert
    d = wd("convert_evil")
    marker = os.path.join(d, "PWNED")
    cases = []
    for name, obj in _evil_payloads(marker).items():
        data = pickle.dumps(obj, protocol=2)
        cases.append((_zip_ckpt(data, os.path.join(d, name + "_zip.pth")), name))
        cases.append((_legacy_ckpt(data, os.path.join(d, name + "_legacy.pth")), name))
        cases.append((_legacy_ckpt(data, os.path.join(d, name + "_sysinfo.pth"), "sys_info"), name))
        raw = os.path.join(d, name + "_raw.pkl")
        with open(raw, "wb") as f:
            f.write(data)
        cases.append((raw, name))
    for path, name in cases:
        msg = assert_fails(path, os.path.join(d, "out.u2nc"), says=("refusing",))
        assert ("system" in msg) if name == "os_system" else (name.split("_")[0] in msg), msg
        try:
            conv.convert_file(path)
            raise AssertionError("%s accepted in-process" % path)
        except conv.ConvertError:
            pass
        assert not os.path.exists(marker), "the payload of %s ran" % path




def _save_or_skip(sd, path, legacy=False):
    testlib.need_torch()
    return _torch_save(sd, path, legacy)


@tidy
def test_error_messages():
    """Bad input files: non-zero exit, one stderr line naming the input, no output."""
    d = wd("convert_errors")
    out = os.path.join(d, "out.u2nc")
    assert_fails(os.path.join(d, "does_not_exist.pth"), out, says=("no such file",), label="missing file")
    empty = os.path.join(d, "empty.pth")
    open(empty, "wb").close()
    assert_fails(empty, out, says=("empty",), label="empty file")
    for seed in range(4):
        rnd = os.path.join(d, "random%d.bin" % seed)
        with open(rnd, "wb") as f:
            f.write(np.random.default_rng(seed).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        assert_fails(rnd, out, label="random bytes %d" % seed)
    text = os.path.join(d, "notes.txt")
    with open(text, "w") as f:
        f.write("these are not weights\n" * 20)
    assert_fails(text, out, label="text file")
    assert_fails(d, out, label="directory")
    # truncated ONNX
    if os.path.exists(testlib.REAL_ONNX):
        ob = open(testlib.REAL_ONNX, "rb").read()
        for cut in (100, len(ob) // 2):
            p = os.path.join(d, "trunc_%d.onnx" % cut)
            with open(p, "wb") as f:
                f.write(ob[:cut])
            assert_fails(p, out, says=("truncated",), label="truncated onnx at %d" % cut)
    # a model file as input
    m = convert.convert_state_dict(random_sd("u2netp"))
    u2nc = os.path.join(d, "model.u2nc")
    F.write_model(u2nc, "u2netp", m.net, list(m.tensors.items()))
    assert_fails(u2nc, out, says=("already",), label="u2nc input")
    assert_fails(u2nc, u2nc, says=("input",), label="output is the input")
    F.read_model(u2nc)


@tidy
def test_error_messages_checkpoints():
    """Bad checkpoints: non-zero exit, one stderr line naming the input, no output."""
    testlib.need_torch()
    d = wd("convert_errors")
    out = os.path.join(d, "out.u2nc")
    sd = random_sd("u2netp")
    zp = _save_or_skip(sd, os.path.join(d, "ok_zip.pth"))
    lg = _save_or_skip(sd, os.path.join(d, "ok_legacy.pth"), legacy=True)
    zbuf, lbuf = open(zp, "rb").read(), open(lg, "rb").read()
    for frac in (0.02, 0.5, 0.98):
        p = os.path.join(d, "trunc_zip_%d.pth" % int(frac * 100))
        with open(p, "wb") as f:
            f.write(zbuf[:int(len(zbuf) * frac)])
        assert_fails(p, out, says=("truncated",), label="truncated zip %.2f" % frac)
    for cut in (10, 300, len(lbuf) // 2, len(lbuf) - 3):
        p = os.path.join(d, "trunc_legacy_%d.pth" % cut)
        with open(p, "wb") as f:
            f.write(lbuf[:cut])
        assert_fails(p, out, says=("truncated",), label="truncated legacy at %d" % cut)
    # a zip whose storage bytes are corrupted: zip CRC catches it
    with zipfile.ZipFile(zp) as z:
        big = max(z.infolist(), key=lambda i: i.file_size)
    nlen, xlen = struct.unpack_from("<HH", zbuf, big.header_offset + 26)   # local header
    start = big.header_offset + 30 + nlen + xlen
    bad = bytearray(zbuf)
    bad[start + big.file_size // 2] ^= 0xFF
    p = os.path.join(d, "corrupt_zip.pth")
    with open(p, "wb") as f:
        f.write(bad)
    assert_fails(p, out, says=("corrupt",), label="corrupt zip data")

    k = "stage2.rebnconv3.conv_s1.weight"
    s = dict(sd)
    s[k] = np.zeros((16, 8, 3, 3), np.float32)
    assert_fails(_save_or_skip(s, os.path.join(d, "shape.pth")), out, says=(k, "[16, 8, 3, 3]", "[16, 16, 3, 3]"),
                       label="wrong shape")
    s = collections.OrderedDict((kk, v) for kk, v in sd.items() if kk != "stage4d.rebnconv2d.bn_s1.running_var")
    assert_fails(_save_or_skip(s, os.path.join(d, "missing.pth"), legacy=True), out,
                 says=("missing", "stage4d.rebnconv2d.bn_s1.running_var"), label="missing key")
    s = collections.OrderedDict(sd)
    s["stage1.extra_head.weight"] = np.zeros((3,), np.float32)
    assert_fails(_save_or_skip(s, os.path.join(d, "extra.pth")), out, says=("unexpected", "stage1.extra_head.weight"),
                 label="extra key")
    s = collections.OrderedDict([("conv1.weight", np.zeros((64, 3, 7, 7), np.float32)),
                                 ("fc.bias", np.zeros((1000,), np.float32))])
    assert_fails(_save_or_skip(s, os.path.join(d, "resnet.pth")), out, says=("unknown network",), label="unknown network")
    # channels come from the shapes, but every shape must fit the others:
    # doubling every dimension breaks stage 1's input (3 channels) and the kernels
    s = collections.OrderedDict((kk, np.zeros(tuple(2 * x for x in v.shape), np.float32) if v.ndim else v)
                                for kk, v in sd.items())
    assert_fails(_save_or_skip(s, os.path.join(d, "wide.pth")), out,
                 says=("stage1.rebnconvin.conv_s1.weight", "[128, 6, 6, 6]", "[128, 3, 3, 3]"), label="other widths")
    # other widths that fit together are a U2Net-layout network of their own
    s = convert.convert_state_dict(RW.random_state_dict(
        [(k, L, ci * 2 if ci != 3 else 3, mid, co * 2, r) for k, L, ci, mid, co, r in RW.U2NETP_STAGES], 3))
    assert s.name == "u2net" and s.label == "U2Net layout" and s.net.stages[0] == (1, 7, 3, 16, 128, 0)
    # not a state dict at all
    assert_fails(_save_or_skip_obj([1, 2, 3], os.path.join(d, "list.pth")), out, says=("not a state dict",),
                 label="a list")
    # output == input, output that is not a model
    good = os.path.join(d, "good.u2nc")
    run_convert(zp, good)
    assert_fails(zp, zp, says=("input",), label="output is the input")
    assert open(zp, "rb").read() == zbuf
    precious = os.path.join(d, "precious.txt")
    with open(precious, "w") as f:
        f.write("keep me\n")
    assert_fails(zp, precious, says=("--force",), label="output not a model")
    run_convert(zp, good)               # an existing model file is replaced
    run_convert(zp, precious, "--force")
    F.read_model(precious)
    assert_fails(zp, os.path.join(d, "n.u2nc"), "--name", "has space", says=("name",), label="bad name")


def _save_or_skip_obj(obj, path):
    testlib.need_torch()
    import torch
    torch.save(obj, path)
    return path


_NO_TORCH = r"""
import sys, runpy
tried = []
class Block(object):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'caffe2'):
            tried.append(name)
            raise ImportError('blocked ' + name)
        return None
sys.meta_path.insert(0, Block())
for m in [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')]:
    del sys.modules[m]
code = 0
for inp, out in zip(sys.argv[1::2], sys.argv[2::2]):
    sys.argv = ['convert.py', inp, '-o', out]
    try:
        runpy.run_path(%r, run_name='__main__')
    except SystemExit as e:
        code = code or e.code
loaded = [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')]
print('TRIED %%r LOADED %%r' %% (tried, loaded))
sys.exit(code or (3 if tried or loaded else 0))
"""




@tidy
def test_converter_never_imports_torch():
    d = wd("convert_notorch")
    jobs = []
    try:
        paths = checkpoints("u2netp")
        jobs += [(paths["zip"], "z.u2nc"), (paths["legacy"], "l.u2nc"), (paths["onnx"], "o.u2nc")]
        need_onnx()
        paths = checkpoints("isnet_slim", ("bin", "onnx_bn", "onnx_fp16"))
        jobs += [(paths["bin"], "ib.u2nc"), (paths["onnx_bn"], "io.u2nc"), (paths["onnx_fp16"], "if.u2nc")]
    except Skip:
        pass
    jobs.append((checkpoints("isnet_slim", ("safetensors",))["safetensors"], "is.u2nc"))
    if os.path.exists(testlib.REAL_ONNX):
        jobs.append((testlib.REAL_ONNX, "r.u2nc"))
    args = []
    for inp, out in jobs:
        args += [inp, os.path.join(d, out)]
    p = testlib.run([PY, "-c", _NO_TORCH % CONVERT] + args, check=False)
    print("    %d conversions: %s" % (len(jobs), p.stdout_text.strip().splitlines()[-1]))
    assert p.returncode == 0, "converter failed or tried to import torch/onnx: %s %s" % (p.stdout_text, p.stderr_text)
    for _inp, out in jobs:
        F.read_model(os.path.join(d, out))
    # and the modules themselves import nothing of the kind
    src = open(CONVERT).read() + open(os.path.join(testlib.ROOT, "tools", "u2net_format.py")).read()
    for line in src.splitlines():
        s = line.strip()
        if s.startswith(("import ", "from ")):
            assert "torch" not in s and "onnx" not in s, s


# ------------------------------------------------------------------ through the engine

def _engine_outputs(model, x):
    """Every output of `u2net tensor --sides` on a 3xHxW input, as an OxHxW array."""
    h, w = x.shape[1:]
    d = testlib.workdir("tensor")
    try:
        inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
        np.ascontiguousarray(x, "<f4").tofile(inp)
        testlib.run([testlib.U2NET, "tensor", "-m", model, "-i", inp, "--height", str(h), "--width", str(w),
                     "-o", out, "--sides", "--threads", "2"])
        y = np.fromfile(out, "<f4")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert y.size % (h * w) == 0, "%d floats is no whole number of %dx%d maps" % (y.size, h, w)
    return y.reshape(-1, h, w)


@tidy
def test_engine_runs_converted():
    """The engine's outputs on files converted from zip, legacy and ONNX
    (U2NetP), and from the ISNet formats (zip, safetensors, ONNX float32 and
    IMG.LY-style float16), agree with the PyTorch reference on the original
    checkpoint (needs build/u2net and PyTorch)."""
    testlib.need_engine()
    testlib.need_torch()
    need_onnx()
    d = wd("convert_engine")
    x = MG.golden_input(67, 45)
    for kind, formats, tol in (("u2netp", ("zip", "legacy", "onnx"), 2e-4),
                               ("isnet_slim", ("zip", "safetensors", "onnx", "onnx_fp16"), 2e-4)):
        want = MG.reference_outputs(kind, x)
        for what, src in checkpoints(kind, formats).items():
            out = os.path.join(d, "%s_%s.u2nc" % (kind, what))
            run_convert(src, out)
            # float16 weights: against the reference on the file itself
            ref = want
            if what == "onnx_fp16":
                import u2net_ref as R
                ref = R.run(R.load_u2nc(out), x)
            testlib.assert_close(_engine_outputs(out, x), ref, tol, "engine on %s %s conversion" % (kind, what))
