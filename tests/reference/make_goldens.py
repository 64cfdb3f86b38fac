"""Reference outputs (goldens) and random checkpoints for the tests.

    /usr/bin/python3 tests/reference/make_goldens.py                 # rewrite tests/golden/*.npz
    /usr/bin/python3 tests/reference/make_goldens.py --models isnet  # only the ISNet goldens
    /usr/bin/python3 tests/reference/make_goldens.py --stats         # print output statistics only
    /usr/bin/python3 tests/reference/make_goldens.py --no-goldens --models isnet_slim \\
        --checkpoints DIR --formats zip,safetensors,onnx_fp16       # random checkpoints

Goldens: tests/golden/{model}_{H}x{W}.npz with `y` (the sigmoid outputs of
the PyTorch reference, float32: 7xHxW d0, d1..d6 for U2Net/U2NetP, 6xHxW
d1..d6 for ISNet) on random_input(H, W, input_seed(H, W)) with the random
weights of SEEDS[model], `seed` (input seed), `weight_seed` and `model`.

Checkpoints (write_checkpoints): the random weights of a model in the file
formats the converter reads, under their real key names (FORMATS below).
Everything here is numpy only except what needs torch (the reference, .pth
and ONNX export) or the onnx package (the float16 and quantized graphs).
"""
import argparse
import collections
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import random_weights as RW  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")
MODELS = ("u2netp", "u2net")          # U2Net-family goldens: 7 outputs
ISNET_MODELS = ("isnet",)             # ISNet goldens: 6 outputs
ALL_MODELS = MODELS + ISNET_MODELS
SIZES = ((320, 320), (203, 317), (97, 61))
THREADS = 2

# format -> file name under write_checkpoints' folder ({k}: the model)
FORMATS = collections.OrderedDict((
    ("zip", "{k}_zip.pth"),                    # torch.save, zip format (isnet-general-use.pth)
    ("legacy", "{k}_legacy.pth"),              # torch.save, pre-1.6 pickle sequence (u2net.pth)
    ("rmbg_pth", "{k}_hf/model.pth"),          # RMBG-1.4's state dict
    ("bin", "{k}_hf/pytorch_model.bin"),       # the zip format under the Hugging Face name
    ("safetensors", "{k}_hf/model.safetensors"),
    ("safetensors_f16", "{k}_hf/model_f16.safetensors"),
    ("safetensors_bf16", "{k}_hf/model_bf16.safetensors"),
    ("onnx", "{k}.onnx"),                      # torch.onnx.export, BN folded by the exporter
    ("onnx_bn", "{k}_bn.onnx"),                # BatchNormalization nodes kept
    ("onnx_fp16", "{k}_fp16.onnx"),            # folded, float16 inside, Cast nodes (IMG.LY's layout)
    ("onnx_bn_fp16", "{k}_bn_fp16.onnx"),      # BatchNormalization nodes, float16 inside
    ("onnx_quant", "{k}_quant.onnx"),          # 8-bit dynamic quantization (ConvInteger)
    ("onnx_qdq", "{k}_qdq.onnx"),              # QuantizeLinear/DequantizeLinear around each Conv
    ("onnx_qlinear", "{k}_qlinear.onnx"),      # QLinearConv
))

_models = {}


def is_isnet(kind):
    return kind in RW.ISNET_KINDS


def random_sd(kind):
    return RW.random_kind_state_dict(kind)


def output_names(kind):
    n = (len(RW.STAGES[kind]) + 1) // 2
    return ["d%d" % i for i in range(1, n + 1)] if is_isnet(kind) else ["d%d" % i for i in range(n + 1)]


def reference_model(kind):
    """The unfolded PyTorch reference with the random weights of `kind` (cached)."""
    import u2net_ref as R
    if kind not in _models:
        m = R.isnet(stages=RW.STAGES[kind]) if is_isnet(kind) else R.build(RW.STAGES[kind])
        R.load_state_dict(m, random_sd(kind), strict=True)
        _models[kind] = m.eval()
    return _models[kind]


def reference_outputs(kind, x, threads=THREADS):
    """OxHxW float32 outputs of the reference with the random weights on x (3xHxW)."""
    import u2net_ref as R
    return R.run(reference_model(kind), x, threads)


def golden_path(kind, h, w):
    return os.path.join(GOLDEN_DIR, "%s_%dx%d.npz" % (kind, h, w))


def golden_input(h, w):
    return RW.random_input(h, w, RW.input_seed(h, w))


def load_golden(kind, h, w):
    """(x, y): the regenerated input and the committed OxHxW outputs."""
    with np.load(golden_path(kind, h, w)) as z:
        y = z["y"]
        assert str(z["model"]) == kind and int(z["seed"]) == RW.input_seed(h, w)
    return golden_input(h, w), y


def write_golden(kind, h, w, path=None):
    y = reference_outputs(kind, golden_input(h, w))
    path = path or golden_path(kind, h, w)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, y=y.astype(np.float32), seed=np.int64(RW.input_seed(h, w)),
                        weight_seed=np.int64(RW.SEEDS[kind]), model=np.array(kind))
    return path, y


# ---------------------------------------------------------------- safetensors

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4"}


def to_bfloat16_bits(a):
    """float32 -> bfloat16 bit patterns (uint16), rounded to nearest even."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bfloat16_bits(b):
    return (np.asarray(b, np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_state_dict(sd, float_dtype):
    """The state dict as a file storing its floats as F32, F16 or BF16 holds
    it, back in float32 (integers untouched)."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        v = np.asarray(v)
        if v.dtype.kind == "f" and float_dtype == "F16":
            v = v.astype(np.float16).astype(np.float32)
        elif v.dtype.kind == "f" and float_dtype == "BF16":
            v = from_bfloat16_bits(to_bfloat16_bits(v))
        out[k] = v
    return out


def safetensors_bytes(sd, float_dtype="F32", metadata=None):
    """A safetensors file: an 8-byte little-endian header length, a JSON
    header (dtype, shape, data_offsets per tensor, relative to the data that
    follows), the tensors' little-endian bytes back to back. Floats are
    stored as float_dtype, integers as I64."""
    header = collections.OrderedDict()
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    pos = 0
    for k, v in sd.items():
        v = np.asarray(v)
        if v.dtype.kind == "f":
            dt = float_dtype
            raw = to_bfloat16_bits(v) if dt == "BF16" else v.astype(_ST_DTYPES[dt])
        else:
            dt, raw = "I64", v.astype("<i8")
        b = np.ascontiguousarray(raw).tobytes()
        header[k] = {"dtype": dt, "shape": [int(s) for s in v.shape], "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)       # the data starts 8-aligned, as the reference writer does
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_safetensors(path, sd, float_dtype="F32", metadata=None):
    with open(path, "wb") as f:
        f.write(safetensors_bytes(sd, float_dtype, metadata))
    return path


# ---------------------------------------------------------------- ONNX

def export_onnx(model, path, size=320, bn=False, input_name=None, opset=None):
    """torch.onnx.export with dynamic H and W. U2Net kinds: opset 11, input
    `input.1` (as the U2Net exports); ISNet kinds: opset 15, input `input`
    (as IMG.LY's and BRIA's). bn=True keeps BatchNormalization nodes under
    their official initializer names (no constant folding)."""
    import torch
    isnet = hasattr(model, "pool_in")
    input_name = input_name or ("input" if isnet else "input.1")
    opset = opset or (15 if isnet else 11)
    outs = ["d%d" % i for i in range(1 if isnet else 0, model.n + 1)]
    dyn = {name: {2: "height", 3: "width"} for name in [input_name] + outs}
    x = torch.from_numpy(golden_input(size, size)[None])
    kw = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False} if bn else {}
    import warnings
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, path, opset_version=opset, input_names=[input_name],
                          output_names=outs, dynamic_axes=dyn, **kw)
    return path


def _stage_outputs(graph):
    """Names of the residual Add outputs (the stage outputs), in graph order."""
    return [n.output[0] for n in graph.node if n.op_type == "Add" and n.name.endswith("/Add")
            and n.name.count("/") == 2]


def float16_onnx(src, dst, features=True):
    """Rewrite a float32 export as a float16 graph the way IMG.LY's
    isnet-fp16.onnx is built: float16 initializers, the float32 input cast to
    float16 (graph_input_cast_0), every Resize computed in float32 between two
    Casts, each output cast back to float32 from graph_output_cast_i, and with
    `features` an extra float32 output per decoder stage and the deepest
    encoder (what the sides read)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    m = onnx.load(src)
    g = m.graph
    for i, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            g.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    nodes = list(g.node)
    inp = g.input[0].name
    for n in nodes:
        for j, x in enumerate(n.input):
            if x == inp:
                n.input[j] = "graph_input_cast_0"
    out = [helper.make_node("Cast", [inp], ["graph_input_cast_0"], name="graph_input_cast0", to=TensorProto.FLOAT16)]
    for n in nodes:
        if n.op_type == "Resize":
            x32, y32 = n.input[0] + "_f32", n.output[0] + "_f32"
            out.append(helper.make_node("Cast", [n.input[0]], [x32], name=n.name + "_cast_in", to=TensorProto.FLOAT))
            y16 = n.output[0]
            n.input[0], n.output[0] = x32, y32
            out.append(n)
            out.append(helper.make_node("Cast", [y32], [y16], name=n.name + "_cast_out", to=TensorProto.FLOAT16))
        else:
            out.append(n)
    renames = {o.name: "graph_output_cast_%d" % i for i, o in enumerate(g.output)}
    for n in out:
        for j, x in enumerate(n.output):
            n.output[j] = renames.get(x, x)
        for j, x in enumerate(n.input):
            n.input[j] = renames.get(x, x)
    for i, o in enumerate(g.output):
        out.append(helper.make_node("Cast", [renames[o.name]], [o.name], name="graph_output_cast%d" % i,
                                    to=TensorProto.FLOAT))
    if features:
        feats = _stage_outputs(g)
        n = (len(feats) + 1) // 2
        for j, t in enumerate(feats[n - 1:][::-1]):      # stage1d .. stage{n-1}d, then stagen
            name = "feature%d" % (j + 1)
            out.append(helper.make_node("Cast", [t], [name], name="feature_cast%d" % (j + 1), to=TensorProto.FLOAT))
            g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "channels", "height", "width"]))
    del g.node[:]
    g.node.extend(out)
    del g.value_info[:]
    onnx.save(m, dst)
    return dst


def quantized_onnx(src, dst, style="dynamic"):
    """An 8-bit version of a float32 export, built with the onnx package as
    quantization tools lay them out (per-tensor uint8 weights):
    dynamic: DynamicQuantizeLinear on each Conv's input, ConvInteger, then
             Cast, scale (Mul) and bias (Add) in float;
    qdq:     QuantizeLinear + DequantizeLinear on the input, DequantizeLinear
             on the weight, then the float Conv;
    qlinear: QuantizeLinear, QLinearConv, DequantizeLinear."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    out = []
    for n in g.node:
        if n.op_type != "Conv" or n.input[1] not in inits:
            out.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
        ws = (hi - lo) / 255.0 or 1.0
        wz = int(round(-lo / ws))
        wq = np.clip(np.round(w / ws) + wz, 0, 255).astype(np.uint8)
        p = n.name
        new = [numpy_helper.from_array(wq, p + "_W_quantized"),
               numpy_helper.from_array(np.array(ws, np.float32), p + "_W_scale"),
               numpy_helper.from_array(np.array(wz, np.uint8), p + "_W_zero_point")]
        g.initializer.extend(new)
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        x, y = n.input[0], n.output[0]
        bias = n.input[2] if len(n.input) > 2 else None
        if style == "dynamic":
            out.append(helper.make_node("DynamicQuantizeLinear", [x], [p + "_xq", p + "_xs", p + "_xz"],
                                        name=p + "_input_QuantizeLinear"))
            out.append(helper.make_node("ConvInteger", [p + "_xq", p + "_W_quantized", p + "_xz", p + "_W_zero_point"],
                                        [p + "_int"], name=p + "_quant", **attrs))
            out.append(helper.make_node("Cast", [p + "_int"], [p + "_f"], name=p + "_cast", to=TensorProto.FLOAT))
            out.append(helper.make_node("Mul", [p + "_xs", p + "_W_scale"], [p + "_s"], name=p + "_scale"))
            out.append(helper.make_node("Mul", [p + "_f", p + "_s"], [p + "_y" if bias else y], name=p + "_mul"))
            if bias:
                b = numpy_helper.to_array(inits[bias]).reshape(1, -1, 1, 1)
                g.initializer.append(numpy_helper.from_array(b, p + "_bias_reshaped"))
                out.append(helper.make_node("Add", [p + "_y", p + "_bias_reshaped"], [y], name=p + "_bias"))
        else:
            g.initializer.extend([numpy_helper.from_array(np.array(1.0 / 64, np.float32), p + "_x_scale"),
                                  numpy_helper.from_array(np.array(128, np.uint8), p + "_x_zero_point")])
            out.append(helper.make_node("QuantizeLinear", [x, p + "_x_scale", p + "_x_zero_point"], [p + "_xq"],
                                        name=p + "_input_QuantizeLinear"))
            if style == "qdq":
                out.append(helper.make_node("DequantizeLinear", [p + "_xq", p + "_x_scale", p + "_x_zero_point"],
                                            [p + "_xdq"], name=p + "_input_DequantizeLinear"))
                out.append(helper.make_node("DequantizeLinear", [p + "_W_quantized", p + "_W_scale", p + "_W_zero_point"],
                                            [p + "_Wdq"], name=p + "_W_DequantizeLinear"))
                out.append(helper.make_node("Conv", [p + "_xdq", p + "_Wdq"] + ([bias] if bias else []), [y],
                                            name=p, **attrs))
            else:
                if bias:
                    b = numpy_helper.to_array(inits[bias]) / (ws / 64)
                    g.initializer.append(numpy_helper.from_array(np.round(b).astype(np.int32), p + "_bias_int32"))
                out.append(helper.make_node(
                    "QLinearConv", [p + "_xq", p + "_x_scale", p + "_x_zero_point", p + "_W_quantized", p + "_W_scale",
                                    p + "_W_zero_point", p + "_x_scale", p + "_x_zero_point"]
                    + ([p + "_bias_int32"] if bias else []), [p + "_yq"], name=p + "_quant", **attrs))
                out.append(helper.make_node("DequantizeLinear", [p + "_yq", p + "_x_scale", p + "_x_zero_point"], [y],
                                            name=p + "_output_DequantizeLinear"))
    used = set(i for n in out for i in n.input)
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(out)
    del g.value_info[:]
    onnx.save(m, dst)
    return dst


# ---------------------------------------------------------------- checkpoints

def write_checkpoints(kind, outdir, formats=("zip", "legacy", "onnx")):
    """Write the random checkpoint of `kind` in each of `formats` (keys of
    FORMATS) under outdir; returns {format: path}. The .pth files hold the
    official state dict; safetensors files are this module's own writer's;
    the ONNX files are torch.onnx.export's, rewritten with the onnx package
    for the float16 and quantized ones."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError("unknown checkpoint formats %s" % ", ".join(unknown))
    paths = collections.OrderedDict()
    for f in formats:
        paths[f] = os.path.join(outdir, FORMATS[f].format(k=kind))
        os.makedirs(os.path.dirname(paths[f]), exist_ok=True)
    torch_sd = None
    if any(f in ("zip", "legacy", "rmbg_pth", "bin") for f in formats):
        import torch
        torch_sd = collections.OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in random_sd(kind).items())
    for f in formats:
        p = paths[f]
        if f in ("zip", "rmbg_pth", "bin"):
            import torch
            torch.save(torch_sd, p)
        elif f == "legacy":
            import torch
            torch.save(torch_sd, p, _use_new_zipfile_serialization=False)
        elif f.startswith("safetensors"):
            dt = {"safetensors": "F32", "safetensors_f16": "F16", "safetensors_bf16": "BF16"}[f]
            write_safetensors(p, random_sd(kind), dt, {"format": "pt"})
    onnx_formats = [f for f in formats if f.startswith("onnx")]
    if onnx_formats:
        # one export with BN folded, one with BN kept; the float16 and 8-bit
        # files are rewritten from them
        model = reference_model(kind)
        size = 64 if is_isnet(kind) else 320
        exported = {}
        try:
            for bn in (False, True):
                derived = [f for f in onnx_formats if ("_bn" in f) == bn]
                if not derived:
                    continue
                base = "onnx_bn" if bn else "onnx"
                exported[bn] = paths[base] if base in paths else paths[derived[0]] + ".f32.onnx"
                export_onnx(model, exported[bn], size, bn=bn)
                for f in derived:
                    if f in ("onnx_fp16", "onnx_bn_fp16"):
                        float16_onnx(exported[bn], paths[f])
                    elif f != base:
                        quantized_onnx(exported[bn], paths[f],
                                       {"onnx_quant": "dynamic", "onnx_qdq": "qdq", "onnx_qlinear": "qlinear"}[f])
        finally:
            for p in exported.values():
                if p not in paths.values() and os.path.exists(p):
                    os.remove(p)
    return paths


def describe(kind, h, w, y):
    parts = []
    for name, v in zip(output_names(kind), y):
        inside = float(np.mean((v > 0.02) & (v < 0.98)))
        parts.append("%s [%.3f, %.3f] std %.3f in %.2f" % (name, v.min(), v.max(), v.std(), inside))
    return "%s %dx%d: %s" % (kind, h, w, "; ".join(parts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--stats", action="store_true", help="print statistics, write nothing")
    ap.add_argument("--checkpoints", metavar="DIR", help="also write the random checkpoints here")
    ap.add_argument("--formats", default="zip,legacy,onnx", help="checkpoint formats: %s" % ",".join(FORMATS))
    ap.add_argument("--no-goldens", action="store_true")
    a = ap.parse_args(argv)
    kinds = a.models.split(",")
    if not a.no_goldens:
        for kind in kinds:
            for h, w in SIZES:
                if a.stats:
                    y = reference_outputs(kind, golden_input(h, w))
                else:
                    path, y = write_golden(kind, h, w)
                    print("wrote %s (%d bytes)" % (os.path.relpath(path, ROOT), os.path.getsize(path)))
                print(describe(kind, h, w, y), flush=True)
    if a.checkpoints:
        for kind in kinds:
            for what, p in write_checkpoints(kind, a.checkpoints, a.formats.split(",")).items():
                print("wrote %s (%s, %d bytes)" % (p, what, os.path.getsize(p)))


if __name__ == "__main__":
    main()
