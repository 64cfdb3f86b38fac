"""tools/convert.py and tools/u2net_format.py: checkpoints (zip and legacy
torch.save formats), ONNX (BN folded or explicit BatchNormalization nodes,
float16/float_data/raw/Constant weights), the real u2netp-fp16.onnx, refusal
of malicious pickles, clean one-line errors, and no torch import.

Random checkpoints come from tests/reference (random_weights, make_goldens);
writing .pth/.onnx files needs PyTorch (and python3-onnx for the hand-built
graph): those tests skip without it.
"""
import collections
import io
import os
import pickle
import shutil
import struct
import sys
import zipfile

import numpy as np

import testlib
from testlib import Skip

import u2net_format as F  # tools/ is on sys.path via testlib

CONVERT = os.path.join(testlib.ROOT, "tools", "convert.py")
PY = sys.executable
LABEL = {"u2netp": "U2NetP", "u2net": "U2Net"}


# Scratch folders: each test's are removed when it passes or skips, kept (and
# named) when it fails.
wd, tidy = testlib.scratch_dir, testlib.tidy


def _convert_module():
    import convert
    return convert


def _rw():
    try:
        import random_weights
        return random_weights
    except ImportError:
        return None


def random_sd(kind, seed=None):
    """Official-key random state dict (BN unfolded), numpy."""
    rw = _rw()
    stages = dict(F.NETWORKS)[kind]
    if rw is not None:
        return rw.random_state_dict(stages, rw.SEEDS[kind] if seed is None else seed)
    rng = np.random.default_rng(1 if seed is None else seed)      # fallback until random_weights lands
    sd = collections.OrderedDict()
    for p, ci, co, k, _d in F.conv_list(stages):
        if p.startswith("stage"):
            sd[p + ".conv_s1.weight"] = (rng.standard_normal((co, ci, k, k)) * np.sqrt(2.0 / (9 * ci))).astype(np.float32)
            sd[p + ".conv_s1.bias"] = (rng.standard_normal(co) * 0.05).astype(np.float32)
            sd[p + ".bn_s1.weight"] = rng.uniform(0.6, 1.4, co).astype(np.float32)
            sd[p + ".bn_s1.bias"] = (rng.standard_normal(co) * 0.1).astype(np.float32)
            sd[p + ".bn_s1.running_mean"] = (rng.standard_normal(co) * 0.1).astype(np.float32)
            sd[p + ".bn_s1.running_var"] = rng.uniform(0.5, 2.0, co).astype(np.float32)
            sd[p + ".bn_s1.num_batches_tracked"] = np.array(17, dtype=np.int64)
        else:
            sd[p + ".weight"] = (rng.standard_normal((co, ci, k, k)) * 0.1).astype(np.float32)
            sd[p + ".bias"] = (rng.standard_normal(co) * 0.1).astype(np.float32)
    return sd


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


def checkpoints(kind, onnx=True):
    """{'zip', 'legacy'[, 'onnx']} paths of the random checkpoint of `kind` (cached per run)."""
    testlib.need_torch()
    key = (kind, onnx)
    if key in _CKPT and all(os.path.exists(p) for p in _CKPT[key].values()):
        return _CKPT[key]
    d = CKPT_DIR()
    try:
        import make_goldens
    except ImportError:
        make_goldens = None
    if make_goldens is not None:
        import inspect
        params = inspect.signature(make_goldens.write_checkpoints).parameters
        if onnx:
            paths = make_goldens.write_checkpoints(kind, d)
        elif "formats" in params:
            paths = make_goldens.write_checkpoints(kind, d, formats=("zip", "legacy"))
        elif "onnx" in params:
            paths = make_goldens.write_checkpoints(kind, d, onnx=False)
        else:
            paths = make_goldens.write_checkpoints(kind, d)
        missing = [f for f in (("zip", "legacy", "onnx") if onnx else ("zip", "legacy")) if f not in paths]
        if missing:
            raise Skip("make_goldens.write_checkpoints wrote no %s" % ", ".join(missing))
    else:
        if onnx:
            raise Skip("tests/reference/make_goldens.py not available (needed for the ONNX export)")
        sd = random_sd(kind)
        paths = {"zip": _torch_save(sd, os.path.join(d, kind + "_zip.pth")),
                 "legacy": _torch_save(sd, os.path.join(d, kind + "_legacy.pth"), legacy=True)}
    _CKPT[key] = paths
    return paths


def run_convert(inp, out, *extra, check=True):
    p = testlib.run([PY, CONVERT, inp, "-o", out] + list(extra), check=False)
    if check and p.returncode != 0:
        raise AssertionError("convert.py %s failed (%d): %s" % (inp, p.returncode, p.stderr_text.strip()))
    return p


def assert_fails(inp, out, *extra, says=(), label=None):
    """convert.py must exit non-zero with one clean stderr line and leave no output."""
    existed = os.path.exists(out)
    before = open(out, "rb").read() if existed else None
    p = run_convert(inp, out, *extra, check=False)
    err = p.stderr_text
    lines = err.strip().splitlines()
    print("    %s -> rc %d: %s" % (label or os.path.basename(inp), p.returncode, err.strip()))
    assert p.returncode > 0, "expected a failure exit status, got %d" % p.returncode
    assert len(lines) == 1 and err.endswith("\n"), "expected one stderr line, got %r" % err
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
    if rel:
        print("    %s: worst relative error %.3g (tol %g)" % (what, worst, rel))


# ------------------------------------------------------------------ format

@tidy
def test_format_tables():
    assert len(F.conv_list(F.U2NETP_STAGES)) == 119 and len(F.conv_list(F.U2NET_STAGES)) == 119
    assert F.count_values(F.U2NETP_STAGES) == 1125485
    # documented parameter counts include BN gamma and beta of the 112 REBNCONVs
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
    rw = _rw()
    if rw is not None:   # the reference's tables must agree with ours
        assert [tuple(s) for s in rw.U2NET_STAGES] == list(F.U2NET_STAGES)
        assert [tuple(s) for s in rw.U2NETP_STAGES] == list(F.U2NETP_STAGES)
    for stages in (F.U2NET_STAGES, F.U2NETP_STAGES):
        F.check_stages(stages)
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


@tidy
def test_format_roundtrip():
    d = wd("convert_format")
    m = _convert_module().convert_state_dict(random_sd("u2netp"))
    items = list(m.tensors.items())
    for dtype in ("f32", "f16"):
        path = os.path.join(d, "m_%s.u2nc" % dtype)
        F.write_model(path, "u2netp", F.U2NETP_STAGES, items, dtype=dtype)
        r = F.read_model(path)
        assert r.dtype == dtype and r.name == "u2netp" and r.stages == list(F.U2NETP_STAGES)
        assert r.tensor_count == 238 and r.conv_count == 119 and r.value_count == 1125485
        assert r.data_offset % 64 == 0 and r.file_bytes == os.path.getsize(path)
        assert all(info[4] % 64 == 0 for info in r.tensor_info)
        for k, a in items:
            want = a if dtype == "f32" else a.astype(np.float16).astype(np.float32)
            assert np.array_equal(r.tensors[k], want), k
        buf = open(path, "rb").read()
        assert buf[:4] == b"U2NC" and struct.unpack_from("<I", buf, 4)[0] == 1
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
    # the reader notices damage
    buf = bytearray(open(os.path.join(d, "m_f32.u2nc"), "rb").read())
    for what, pos, says in (("data byte", len(buf) - 5, "data CRC"), ("header byte", 36, "header CRC"),
                            ("magic", 0, "magic")):
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
    # the writer validates names and shapes
    bad = list(items)
    bad[2] = (bad[2][0], bad[2][1][:, :8])
    for tensors in (bad, items[:-2], [(("x" + n), a) for n, a in items]):
        try:
            F.write_model(os.path.join(d, "bad.u2nc"), "x", F.U2NETP_STAGES, tensors)
            raise AssertionError("bad tensor list accepted")
        except F.FormatError:
            pass
    assert not os.path.exists(os.path.join(d, "bad.u2nc"))


# ------------------------------------------------------------------ checkpoints

def _zip_legacy(kind, onnx):
    conv = _convert_module()
    paths = checkpoints(kind, onnx=onnx)
    d = wd("convert_" + kind)
    outs = {}
    for what in ("zip", "legacy"):
        outs[what] = os.path.join(d, "%s_%s.u2nc" % (kind, what))
        p = run_convert(paths[what], outs[what])
        print("    " + p.stdout_text.strip())
    a, b = F.read_model(outs["zip"]), F.read_model(outs["legacy"])
    assert a.name == kind and a.stages == list(dict(F.NETWORKS)[kind])
    assert a.conv_count == 119 and a.value_count == F.count_values(dict(F.NETWORKS)[kind])
    assert_same_tensors(a, b, "zip vs legacy")
    assert open(outs["zip"], "rb").read() == open(outs["legacy"], "rb").read(), "zip and legacy files differ"
    # and both equal the in-process conversion of the numpy state dict
    want = conv.convert_state_dict(random_sd(kind))
    assert_same_tensors(a, want, "file vs convert_state_dict")
    try:
        import u2net_ref  # noqa: F401  (torch reference: its folding must agree bit for bit)
        folded = u2net_ref.fold_state_dict(random_sd(kind))
        for k, v in want.tensors.items():
            ref = folded[k.replace(".weight", ".conv_s1.weight").replace(".bias", ".conv_s1.bias")] \
                if k.startswith("stage") else folded[k]
            assert np.array_equal(v, np.asarray(ref, np.float32)), k
    except ImportError:
        pass
    return outs, d


@tidy
def test_checkpoints_u2netp():
    """zip and legacy .pth of U2NetP -> identical files; ONNX export within 1e-5."""
    outs, d = _zip_legacy("u2netp", onnx=True)
    onnx_path = checkpoints("u2netp", onnx=True)["onnx"]
    out = os.path.join(d, "u2netp_onnx.u2nc")
    run_convert(onnx_path, out)
    assert_same_tensors(F.read_model(out), F.read_model(outs["zip"]), "onnx export vs checkpoint", rel=1e-5)


@tidy
def test_checkpoints_u2net():
    """The same for the full U2Net (176 MB checkpoints; zip and legacy only)."""
    outs, d = _zip_legacy("u2net", onnx=False)
    m = F.read_model(outs["zip"])
    assert m.value_count == 43981069
    # --fp16 stores exactly float16(float32 values), and the name option
    out16 = os.path.join(d, "u2net_f16.u2nc")
    run_convert(checkpoints("u2net", onnx=False)["legacy"], out16, "--fp16", "--name", "human_seg")
    m16 = F.read_model(out16)
    assert m16.dtype == "f16" and m16.name == "human_seg"
    for k, a in m.tensors.items():
        assert np.array_equal(m16.tensors[k], a.astype(np.float16).astype(np.float32)), k
    for p in list(outs.values()) + [out16]:
        os.unlink(p)
    shutil.rmtree(os.path.dirname(checkpoints("u2net", onnx=False)["zip"]), ignore_errors=True)
    _CKPT.pop(("u2net", False), None)


@tidy
def test_checkpoint_variants():
    """Views with storage offsets, non-contiguous strides, 'module.' prefixes,
    _metadata, a wrapping {'state_dict': ...} dict, float16/float64 storages."""
    testlib.need_torch()
    import torch
    conv = _convert_module()
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
    import torch
    conv = _convert_module()
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
    del torch


# ------------------------------------------------------------------ ONNX

@tidy
def test_onnx_export_with_bn_nodes():
    """torch.onnx.export with BatchNormalization kept (official initializer names)."""
    testlib.need_torch()
    try:
        import make_goldens
        import onnx
    except ImportError as e:
        raise Skip("needs tests/reference/make_goldens.py and python3-onnx (%s)" % e)
    import torch
    conv = _convert_module()
    d = wd("convert_bn_onnx")
    path = os.path.join(d, "bn.onnx")
    model = make_goldens.reference_model("u2netp")
    x = torch.from_numpy(make_goldens.golden_input(64, 48)[None])
    import warnings
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, path, opset_version=11, input_names=["input.1"],
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    ops = collections.Counter(n.op_type for n in onnx.load(path).graph.node)
    assert ops["BatchNormalization"] == 112, ops
    out = os.path.join(d, "bn.u2nc")
    run_convert(path, out)
    assert_same_tensors(F.read_model(out), conv.convert_state_dict(random_sd("u2netp")), "onnx with BN", rel=1e-6)


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
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise Skip("python3-onnx not installed")
    conv = _convert_module()
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
    assert_same_tensors(F.read_model(out), conv.convert_state_dict(sd), "helper onnx", rel=1e-6)
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
    assert m.name == "u2netp" and m.dtype == "f32" and m.stages == list(F.U2NETP_STAGES)
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
    conv = _convert_module()
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
    m = _convert_module().convert_state_dict(random_sd("u2netp"))
    u2nc = os.path.join(d, "model.u2nc")
    F.write_model(u2nc, "u2netp", m.stages, list(m.tensors.items()))
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
    # the U2Net key set with other widths is an unknown network too
    s = collections.OrderedDict((kk, np.zeros(tuple(2 * x for x in v.shape), np.float32) if v.ndim else v)
                                for kk, v in sd.items())
    assert_fails(_save_or_skip(s, os.path.join(d, "wide.pth")), out, says=("unknown network",), label="other widths")
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
        paths = checkpoints("u2netp", onnx=True)
        jobs += [(paths["zip"], "z.u2nc"), (paths["legacy"], "l.u2nc"), (paths["onnx"], "o.u2nc")]
    except Skip:
        pass
    if os.path.exists(testlib.REAL_ONNX):
        jobs.append((testlib.REAL_ONNX, "r.u2nc"))
    if not jobs:
        raise Skip("no checkpoint to convert (needs PyTorch or the shared weights)")
    args = []
    for inp, out in jobs:
        args += [inp, os.path.join(d, out)]
    p = testlib.run([PY, "-c", _NO_TORCH % CONVERT] + args, check=False)
    print("    " + p.stdout_text.strip().splitlines()[-1])
    assert p.returncode == 0, "converter failed or tried to import torch/onnx: %s %s" % (p.stdout_text, p.stderr_text)
    for _inp, out in jobs:
        F.read_model(os.path.join(d, out))
    # and the module itself imports nothing of the kind
    src = open(CONVERT).read() + open(os.path.join(testlib.ROOT, "tools", "u2net_format.py")).read()
    for line in src.splitlines():
        s = line.strip()
        if s.startswith(("import ", "from ")):
            assert "torch" not in s and "onnx" not in s, s


# ------------------------------------------------------------------ through the engine

@tidy
def test_engine_runs_converted():
    """The engine's outputs on files converted from zip, legacy and ONNX agree
    with the PyTorch reference (needs build/u2net and PyTorch)."""
    testlib.need_engine()
    testlib.need_torch()
    try:
        import make_goldens
    except ImportError:
        raise Skip("tests/reference/make_goldens.py not available")
    paths = checkpoints("u2netp", onnx=True)
    d = wd("convert_engine")
    x = make_goldens.golden_input(67, 45)
    want = make_goldens.reference_outputs("u2netp", x)
    for what, src in sorted(paths.items()):
        out = os.path.join(d, what + ".u2nc")
        run_convert(src, out)
        y = testlib.run_tensor(out, x)
        testlib.assert_close(y, want, 2e-4, "engine on %s conversion" % what)
