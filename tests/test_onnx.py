"""The C library's ONNX reader (engine/model/onnx.c) against tools/convert.py:
for every ONNX input the converter reads, the model file the library builds
in memory (written out by build/test_model_image) is the converter's file
byte for byte: the same network from the graph, BatchNorm folded to the
same bits, the same name and processing; float16 storage exactly when the
library keeps it (a float16 export with nothing to fold; the converter's
--fp16). Inputs: PyTorch's exports of U2NetP and of ISNet's structure (BN
folded, BatchNormalization nodes, float16 rewrites), hand-built graphs
(test_convert's, and this file's writer: weights as raw_data, float_data,
double_data, int32_data float16, bfloat16, Constant nodes, Cast chains,
packed and unpacked dims, official and numeric names), and the real
u2netp-fp16.onnx and isnet-fp16.onnx of ../shared. Graphs the converter
refuses, the library refuses too, with one line naming the file (and the
node). Then the program: -m FILE.onnx cuts out what -m FILE.u2nc does, and
U2Net-family networks of other stage tables (silueta, u2net_human_seg are
U2Net's layout) load from their graph's shapes and match PyTorch.

This file's writer needs numpy only; the exports need PyTorch and
python3-onnx (those tests skip without them).

`/usr/bin/python3 tests/test_onnx.py --write-seeds` rewrites the fuzz seeds
(tests/fuzz/seeds/onnx) that test_fuzz_seeds checks.
"""
import collections
import os
import struct
import sys

import numpy as np

import testlib
from testlib import Skip

import convert  # tools/ is on sys.path via testlib
import u2net_format as F

MODEL_IMAGE = os.path.join(testlib.BUILD, "test_model_image")
CONVERT = os.path.join(testlib.ROOT, "tools", "convert.py")
SEEDS_DIR = os.path.join(testlib.ROOT, "tests", "fuzz", "seeds", "onnx")
REAL_ISNET = os.path.join(testlib.SHARED, "weights", "isnet-fp16.onnx")

wd, tidy = testlib.scratch_dir, testlib.tidy


# ---------------------------------------------------------------- protobuf

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wire):
    return varint(num << 3 | wire)


def f_int(num, v):
    return key(num, 0) + varint(v)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return key(num, 2) + varint(len(b)) + b


def f_f32(num, x):
    return key(num, 5) + struct.pack("<f", x)


def f_packed(num, vals):
    return f_bytes(num, b"".join(varint(v) for v in vals))


# ONNX TensorProto data types
FLOAT, INT64, FLOAT16, DOUBLE, BFLOAT16 = 1, 7, 10, 11, 16


def tensor(name, a, dtype=FLOAT, style="raw", packed_dims=True):
    """A TensorProto of array a stored as dtype: raw_data, or the typed field
    (float_data, double_data, int32_data for float16 and bfloat16)."""
    a = np.asarray(a)
    dims = f_packed(1, a.shape) if packed_dims else b"".join(f_int(1, d) for d in a.shape)
    if dtype == FLOAT:
        v = a.astype("<f4")
    elif dtype == DOUBLE:
        v = a.astype("<f8")
    elif dtype == FLOAT16:
        v = a.astype("<f2")
    elif dtype == BFLOAT16:
        v = (a.astype("<f4").view("<u4") >> 16).astype("<u2")
    else:
        v = a.astype("<i8")
    body = dims + f_int(2, dtype) + f_bytes(8, name)
    if style == "raw":
        body += f_bytes(9, v.tobytes())
    elif dtype in (FLOAT16, BFLOAT16):
        body += f_packed(5, v.view("<u2").ravel().tolist())
    elif dtype == FLOAT:
        body += f_bytes(4, v.tobytes())
    elif dtype == DOUBLE:
        body += f_bytes(10, v.tobytes())
    else:
        body += f_packed(7, v.ravel().tolist())
    return body


def attr_ints(name, vals):
    return f_bytes(1, name) + f_packed(8, vals) + f_int(20, 7)


def attr_int(name, v):
    return f_bytes(1, name) + f_int(3, v) + f_int(20, 2)


def attr_float(name, x):
    return f_bytes(1, name) + f_f32(2, x) + f_int(20, 1)


def attr_tensor(name, t):
    return f_bytes(1, name) + f_bytes(5, t) + f_int(20, 4)


def node(op, inputs, outputs, name="", attrs=()):
    b = b"".join(f_bytes(1, i) for i in inputs) + b"".join(f_bytes(2, o) for o in outputs)
    if name:
        b += f_bytes(3, name)
    b += f_bytes(4, op)
    for a in attrs:
        b += f_bytes(5, a)
    return b


def value_info(name):
    return f_bytes(1, name)


def model_bytes(nodes, inits, inputs=("input",), outputs=("d0",), opset=11):
    graph = b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, "g")
    graph += b"".join(f_bytes(5, t) for t in inits)
    graph += b"".join(f_bytes(11, value_info(i)) for i in inputs)
    graph += b"".join(f_bytes(12, value_info(o)) for o in outputs)
    return f_int(1, 7) + f_bytes(2, "test_onnx") + f_bytes(7, graph) + f_bytes(8, f_int(2, opset))


# ------------------------------------------------------ networks as graphs

# Tiny stage tables: U2Net's layout (n = 2 and n = 3 levels) and ISNet's.
TINY_U2NET = ((F.RSU_L, 3, 3, 2, 3, F.ENCODER), (F.RSU_F, 2, 3, 2, 3, F.ENCODER),
              (F.RSU_F, 2, 6, 2, 3, F.DECODER))
TINY_ISNET = ((F.RSU_L, 3, 4, 2, 3, F.ENCODER), (F.RSU_F, 2, 3, 2, 3, F.ENCODER),
              (F.RSU_F, 2, 6, 2, 3, F.DECODER))
SMALL_U2NET = ((F.RSU_L, 4, 3, 4, 8, F.ENCODER), (F.RSU_F, 3, 8, 4, 8, F.ENCODER),
               (F.RSU_F, 3, 8, 4, 8, F.ENCODER), (F.RSU_F, 3, 16, 4, 8, F.DECODER),
               (F.RSU_L, 4, 16, 4, 8, F.DECODER))


def tiny_network(kind):
    if kind == "u2net":
        return F.u2net_network(TINY_U2NET)
    if kind == "u2net3":
        return F.u2net_network(SMALL_U2NET)
    return F.isnet_network(TINY_ISNET)


def random_weights(net, seed):
    """{prefix: (W, b)} for every conv of the network, float32."""
    rng = np.random.RandomState(seed)
    out = collections.OrderedDict()
    for prefix, ci, co, k, _d in F.conv_list(net):
        w = rng.standard_normal((co, ci, k, k)) * (0.5 / np.sqrt(ci * k * k))
        out[prefix] = (w.astype(np.float32), (rng.standard_normal(co) * 0.1).astype(np.float32))
    return out


def network_onnx(net, weights, dtype=FLOAT, bn=False, styles=("raw",), official_names=False,
                 constants=False, casts=False, packed_dims=True, node_names=False, seed=0):
    """The ONNX bytes of a network: per REBNCONV a Conv (then, with bn, a
    BatchNormalization of random statistics) and a Relu; each stage's
    residual Add; side convs on the stage outputs; U2Net's fuse over
    Concat(sides), or ISNet's stride-2 stem. Weights cycle through styles
    (raw, typed) and, with constants, every third is a Constant node, with
    casts behind a Cast (from float16) to dtype. Activations' shapes are not
    consistent: only the readers read it."""
    rng = np.random.RandomState(seed + 1)
    nodes, inits = [], []
    counter = [0]

    def fresh():
        counter[0] += 1
        return str(100 + counter[0])

    def put(name, a):
        i = counter[0]
        style = styles[i % len(styles)]
        if casts and i % 4 == 1:
            h = name + "_f16"
            inits.append(tensor(h, a, FLOAT16, style, packed_dims))
            nodes.append(node("Cast", [h], [name], attrs=[attr_int("to", dtype)]))
        elif constants and i % 3 == 2:
            nodes.append(node("Constant", [], [name],
                              attrs=[attr_tensor("value", tensor(name, a, dtype, style, packed_dims))]))
        else:
            inits.append(tensor(name, a, dtype, style, packed_dims))
        counter[0] += 1
        return name

    def conv(x, prefix, d, stride=1, relu=True, k=3):
        w, b = weights[prefix]
        official = official_names and prefix.startswith("stage")
        wn = put(prefix + ".conv_s1.weight" if official else fresh(), w)
        bname = put(prefix + ".conv_s1.bias" if official else fresh(), b)
        out = fresh()
        p = d * (k // 2)
        nm = "/%s/conv_s1/Conv" % prefix.replace(".", "/") if node_names and official else ""
        nodes.append(node("Conv", [x, wn, bname], [out], name=nm,
                          attrs=[attr_ints("dilations", [d, d]), attr_int("group", 1),
                                 attr_ints("kernel_shape", [k, k]), attr_ints("pads", [p] * 4),
                                 attr_ints("strides", [stride, stride])]))
        if bn and prefix.startswith("stage"):
            co = w.shape[0]
            params = [rng.uniform(0.5, 1.5, co), rng.standard_normal(co) * 0.1,
                      rng.standard_normal(co) * 0.1, rng.uniform(0.5, 2.0, co)]
            names = [put(fresh(), p_.astype(np.float32)) for p_ in params]
            o2 = fresh()
            nodes.append(node("BatchNormalization", [out] + names, [o2],
                              attrs=[attr_float("epsilon", 1e-5)] if counter[0] % 2 else []))
            out = o2
        if relu:
            o3 = fresh()
            nodes.append(node("Relu", [out], [o3]))
            out = o3
        return out

    x = "input"
    for i, layer in enumerate(net.prelude, 1):
        x = conv(x, "prelude%d" % i, layer.dilation, layer.stride, relu=bool(layer.relu))
    stage_out = []
    for sname, st in zip(F.stage_names(net.stages), net.stages):
        first = last = None
        for cname, _ci, _co, _k, d in F.stage_convs(st):
            x = conv(x, "%s.%s" % (sname, cname), d)
            first = first or x
            last = x
        a = fresh()
        nodes.append(node("Add", [last, first], [a]))
        stage_out.append(a)
        x = a
    side_outs = []
    outputs = []
    for k, side in enumerate(net.sides, 1):
        o = conv(stage_out[side.source], "side%d" % k, 1, relu=False)
        side_outs.append(o)
    if net.fuse:
        cat = fresh()
        nodes.append(node("Concat", side_outs, [cat], attrs=[attr_int("axis", 1)]))
        fused = conv(cat, "outconv", 1, relu=False, k=1)
        nodes.append(node("Sigmoid", [fused], ["d0"]))
        outputs.append("d0")
    for k, o in enumerate(side_outs, 1):
        nodes.append(node("Sigmoid", [o], ["d%d" % k]))
        outputs.append("d%d" % k)
    return model_bytes(nodes, inits, outputs=outputs)


# Graphs this writer makes, each a variant of what exporters write.
VARIANTS = collections.OrderedDict([
    ("u2net_raw", dict(kind="u2net")),
    ("u2net_typed_unpacked", dict(kind="u2net", styles=("typed", "raw"), packed_dims=False)),
    ("u2net_bn", dict(kind="u2net", bn=True, official_names=True, node_names=True)),
    ("u2net_bn_f64", dict(kind="u2net", bn=True, dtype=DOUBLE, styles=("raw", "typed"))),
    ("u2net_f16", dict(kind="u2net", dtype=FLOAT16)),
    ("u2net_f16_typed", dict(kind="u2net", dtype=FLOAT16, styles=("typed",), constants=True)),
    ("u2net_bf16", dict(kind="u2net", dtype=BFLOAT16, styles=("raw", "typed"))),
    ("u2net_casts", dict(kind="u2net", casts=True, constants=True)),
    ("u2net3_bn_f16", dict(kind="u2net3", bn=True, dtype=FLOAT16, casts=True)),
    ("isnet_raw", dict(kind="isnet")),
    ("isnet_bn", dict(kind="isnet", bn=True, official_names=True)),
    ("isnet_f16", dict(kind="isnet", dtype=FLOAT16)),
])


def variant_bytes(name, seed=7):
    opts = dict(VARIANTS[name])
    net = tiny_network(opts.pop("kind"))
    return network_onnx(net, random_weights(net, seed), seed=seed, **opts)


# ---------------------------------------------------------------- helpers

def library_image(path):
    """(returncode, model file bytes or None, stderr) of the library's reader."""
    out = path + ".c.u2nc"
    p = testlib.run([MODEL_IMAGE, path, out], check=False)
    data = None
    if p.returncode == 0:
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
    return p.returncode, data, p.stderr_text


def converter_image(path, fp16):
    """(returncode, model file bytes or None, stderr) of tools/convert.py."""
    out = path + ".py.u2nc"
    p = testlib.run([sys.executable, CONVERT, path, "-o", out, "--force"] + (["--fp16"] if fp16 else []),
                    check=False)
    data = None
    if p.returncode == 0:
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
    return p.returncode, data, p.stderr_text


def assert_same_as_converter(path, want_dtype=None, label=None):
    """The library's model file of path is the converter's, byte for byte
    (with --fp16 when the library stored float16); returns it."""
    assert os.path.exists(MODEL_IMAGE), "not built: %s (run make test)" % MODEL_IMAGE
    rc, mine, err = library_image(path)
    assert rc == 0, "the library refused %s: %s" % (path, err.strip())
    dtype = "f16" if struct.unpack_from("<I", mine, 24)[0] == 1 else "f32"
    if want_dtype:
        assert dtype == want_dtype, "%s: stored as %s, expected %s" % (path, dtype, want_dtype)
    prc, theirs, perr = converter_image(path, dtype == "f16")
    assert prc == 0, "convert.py refused %s: %s" % (path, perr.strip())
    assert len(mine) == len(theirs), "%s: %d bytes, the converter's %d" % (path, len(mine), len(theirs))
    if mine != theirs:
        diff = next(i for i in range(len(mine)) if mine[i] != theirs[i])
        raise AssertionError("%s: differs from the converter's file at byte %d" % (path, diff))
    m = F.read_model(mine)
    print("    %s: %s %s, %d convs, %d bytes, same bytes as convert.py%s"
          % (label or os.path.basename(path), m.name, dtype, m.conv_count, len(mine),
             " --fp16" if dtype == "f16" else ""))
    return mine


def assert_both_refuse(path, says=()):
    """Library and converter both refuse path; the library in one line
    naming the file (and mentioning each of `says`)."""
    rc, _data, err = library_image(path)
    lines = err.strip().splitlines()
    assert rc == 1, "the library accepted %s (rc %d: %s)" % (path, rc, err)
    assert len(lines) == 1 and lines[0].startswith(path + ": "), "not one line naming the file: %r" % err
    for s in says:
        assert s.lower() in lines[0].lower(), "%r does not mention %r" % (lines[0], s)
    prc, _d, perr = converter_image(path, False)
    assert prc == 1, "convert.py accepted what the library refuses: %s" % path
    print("    %s: %s" % (os.path.basename(path), lines[0][len(path) + 2:]))
    print("      convert.py: %s" % perr.strip().split(": ", 2)[-1])


def write(d, name, data):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ------------------------------------------------------------------ tests

@tidy
def test_written_graphs_bit_identical():
    """This file's graphs (every storage form, BN folded or not, U2Net and
    ISNet layouts) give the converter's bytes; float16 kept as float16 only
    when nothing is folded and everything is float16."""
    d = wd("onnx_written")
    for name, opts in VARIANTS.items():
        path = write(d, name + ".onnx", variant_bytes(name))
        f16 = opts.get("dtype") == FLOAT16 and not opts.get("bn") and not opts.get("casts")
        assert_same_as_converter(path, "f16" if f16 else "f32")


@tidy
def test_exports_bit_identical():
    """torch.onnx.export of U2NetP and of ISNet's structure (isnet_slim):
    BN folded by the exporter, BatchNormalization nodes, and their float16
    rewrites (IMG.LY's layout, Cast nodes around Resize)."""
    import test_convert as TC
    TC.need_onnx()
    forms = ("onnx", "onnx_bn", "onnx_fp16", "onnx_bn_fp16")
    for kind in ("u2netp", "isnet_slim"):
        paths = TC.checkpoints(kind, forms)
        for form, path in paths.items():
            assert_same_as_converter(path, "f16" if form == "onnx_fp16" else "f32", "%s %s" % (kind, form))


@tidy
def test_hand_built_graphs():
    """test_convert's onnx.helper graph (BatchNormalization nodes, weights as
    raw, float_data and Constant float16 + Cast) is read the same; its broken
    versions (side names that lie, a wrong weight shape, a weight that is not
    a constant, a graph that is no U2Net) are refused by both."""
    import test_convert as TC
    TC.need_onnx()
    import onnx
    import random_weights as RW
    d = wd("onnx_helper")
    sd = RW.random_kind_state_dict("u2netp", None)
    good = TC._make_helper_onnx(sd, F.U2NETP_STAGES, os.path.join(d, "helper.onnx"))
    assert_same_as_converter(good, "f32")
    bad = TC._make_helper_onnx(sd, F.U2NETP_STAGES, os.path.join(d, "swapped.onnx"), swap_sides=True)
    assert_both_refuse(bad, ("side",))
    s2 = collections.OrderedDict(sd)
    s2["stage2.rebnconv3.conv_s1.weight"] = np.zeros((16, 8, 3, 3), np.float32)
    bad = TC._make_helper_onnx(s2, F.U2NETP_STAGES, os.path.join(d, "shape.onnx"))
    assert_both_refuse(bad, ("[16, 8, 3, 3]", "[16, 16, 3, 3]", "stage2.rebnconv3", "Conv node"))
    m = onnx.load(good)
    inits = set(i.name for i in m.graph.initializer)
    victim = [n.input[1] for n in m.graph.node if n.op_type == "Conv" and n.input[1] in inits][5]
    keep = [i for i in m.graph.initializer if i.name != victim]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    bad = os.path.join(d, "noweight.onnx")
    onnx.save(m, bad)
    assert_both_refuse(bad, (victim, "not a constant"))


@tidy
def test_quantized_refused():
    """8-bit graphs (ConvInteger, QDQ, QLinearConv) are refused by both,
    naming the first 8-bit node."""
    import test_convert as TC
    TC.need_onnx()
    for form, op in (("onnx_quant", "DynamicQuantizeLinear"), ("onnx_qdq", "QuantizeLinear"),
                     ("onnx_qlinear", "QuantizeLinear")):
        path = TC.checkpoints("isnet_slim", (form,))[form]
        assert_both_refuse(path, ("quantized", op))


@tidy
def test_real_onnx_files():
    """../shared/weights/u2netp-fp16.onnx and isnet-fp16.onnx: float16 kept,
    the converter's --fp16 file byte for byte."""
    testlib.need_shared_weights()
    assert_same_as_converter(testlib.REAL_ONNX, "f16")
    if os.path.exists(REAL_ISNET):
        assert_same_as_converter(REAL_ISNET, "f16")


def _structural_cases():
    """(name, ONNX bytes, words the library's message has) of graphs both
    readers must refuse: built from a good tiny U2Net by changing one thing."""
    net = tiny_network("u2net")
    w = random_weights(net, 3)
    cases = []
    # a side conv's weight of the wrong shape
    w2 = collections.OrderedDict(w)
    w2["side2"] = (np.zeros((1, 5, 3, 3), np.float32), w["side2"][1])
    cases.append(("side_shape", network_onnx(net, w2), ("[1, 5, 3, 3]", "side2")))
    # the fuse conv missing: neither U2Net's layout nor ISNet's
    good = network_onnx(net, w)
    cases.append(("no_fuse", _drop_op(good, "Conv", last=True), ("fuse",)))
    # a BatchNormalization that follows no Conv
    cases.append(("stray_bn", _add_nodes(good, [node("BatchNormalization", ["input", "a", "b", "c", "d"], ["zz"])]),
                  ("BatchNormalization", "does not directly follow a Conv")))
    # an extra 1x1 conv
    cases.append(("two_fuses", _add_nodes(good, [node("Conv", ["d0", "extra_w"], ["zz"])],
                                          [tensor("extra_w", np.ones((1, 1, 1, 1), np.float32))]),
                  ("1x1",)))
    # a grouped conv
    cases.append(("group", network_onnx(net, w).replace(attr_int("group", 1), attr_int("group", 2), 1),
                  ("group 2",)))
    # a conv weight of integers
    cases.append(("int_weight", _add_nodes(good, [node("Conv", ["input", "iw"], ["zz"])],
                                           [tensor("iw", np.ones((1, 3, 3, 3)), INT64)]),
                  ("not floating point",)))
    # external data
    ext = tensor("ew", np.ones((1, 3, 3, 3), np.float32)) + f_int(14, 1)
    cases.append(("external", _add_nodes(good, [node("Conv", ["input", "ew"], ["zz"])], [ext]),
                  ("external data",)))
    # a non-finite folded weight
    w3 = collections.OrderedDict(w)
    bad_w = w["stage1.rebnconv1"][0].copy()
    bad_w.flat[0] = np.inf
    w3["stage1.rebnconv1"] = (bad_w, w["stage1.rebnconv1"][1])
    cases.append(("inf_weight", network_onnx(net, w3), ("not finite",)))
    # ISNet's stem with a stride of 3
    isn = tiny_network("isnet")
    wi = random_weights(isn, 4)
    bad = network_onnx(isn, wi).replace(attr_ints("strides", [2, 2]), attr_ints("strides", [3, 3]), 1)
    cases.append(("stem_stride", bad, ("stride",)))
    # a cast of a weight to an integer type
    cases.append(("cast_int", network_onnx(net, w, casts=True).replace(attr_int("to", FLOAT), attr_int("to", INT64), 1),
                  ("casts a weight",)))
    # a Constant without a value
    cases.append(("constant_form", _add_nodes(good, [node("Constant", [], ["cw"]), node("Conv", ["input", "cw"], ["zz"])]),
                  ("unsupported Constant form",)))
    return cases


def _graph_of(model):
    """(prefix, graph bytes, suffix) of a model made by model_bytes."""
    i = model.index(key(7, 2))
    at = i + 1
    n, shift = 0, 0
    while True:
        b = model[at]
        at += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    return model[:i], model[at:at + n], model[at + n:]


def _add_nodes(model, nodes, inits=()):
    head, graph, tail = _graph_of(model)
    graph = b"".join(f_bytes(1, n) for n in nodes) + graph + b"".join(f_bytes(5, t) for t in inits)
    return head + f_bytes(7, graph) + tail


def _fields(buf):
    """(number, wire, whole field bytes, payload) of each field of a message."""
    out, at = [], 0
    while at < len(buf):
        start = at
        k, shift = 0, 0
        while True:
            b = buf[at]
            at += 1
            k |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        num, wire = k >> 3, k & 7
        if wire == 0:
            while buf[at] >= 0x80:
                at += 1
            at += 1
            payload = None
        elif wire == 2:
            n, shift = 0, 0
            while True:
                b = buf[at]
                at += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            payload = buf[at:at + n]
            at += n
        else:
            at += 4 if wire == 5 else 8
            payload = None
        out.append((num, wire, buf[start:at], payload))
    return out


def _drop_op(model, op, last=False):
    """The model without its first (or last) node of type op."""
    head, graph, tail = _graph_of(model)
    fields = _fields(graph)
    idx = [i for i, (num, _w, _b, p) in enumerate(fields)
           if num == 1 and any(n == 4 and pp == op.encode() for n, _ww, _bb, pp in _fields(p))]
    drop = idx[-1] if last else idx[0]
    graph = b"".join(f[2] for i, f in enumerate(fields) if i != drop)
    return head + f_bytes(7, graph) + tail


@tidy
def test_broken_graphs_refused_by_both():
    """Graphs that break one rule (shapes, layout, stray or grouped convs,
    integer or external weights, non-finite values, a stem stride, a cast to
    an integer, a Constant without a value): the library refuses each in one
    line naming the file and what is wrong, and so does the converter."""
    d = wd("onnx_broken")
    for name, data, says in _structural_cases():
        assert_both_refuse(write(d, name + ".onnx", data), says)


@tidy
def test_program_reads_onnx():
    """-m FILE.onnx cuts out exactly what -m of the converted file does, and
    u2net tensor gives the same bits; a rembg-style folder ($U2NET_HOME)
    serves -m NAME."""
    testlib.need_engine_and_pil()
    d = wd("onnx_program")
    sample = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")
    for name in ("u2net_bn", "isnet_f16"):
        onnx_path = write(d, name + ".onnx", variant_bytes(name))
        conv_path = os.path.join(d, name + ".u2nc")
        m = convert.convert_file(onnx_path)
        convert.write_model(m, conv_path, "f16" if name.endswith("f16") else "f32")
        outs = []
        for model in (onnx_path, conv_path):
            out = os.path.join(d, "%s_%s.png" % (name, os.path.basename(model).replace(".", "_")))
            testlib.run([testlib.U2NET, "-m", model, sample, "-o", out, "-t", "prob", "--size", "64", "-q"])
            with open(out, "rb") as f:
                outs.append(f.read())
        assert outs[0] == outs[1], "%s: the ONNX file and its conversion cut out differently" % name
        x = np.random.RandomState(5).standard_normal((3, 37, 45)).astype(np.float32)
        a = testlib.run_tensor(onnx_path, x)
        b = testlib.run_tensor(conv_path, x)
        assert np.array_equal(a, b), "%s: raw outputs differ" % name
        home = os.path.join(d, "home_" + name)
        os.makedirs(home)
        os.rename(onnx_path, os.path.join(home, "rembg_model.onnx"))
        env = dict(os.environ, U2NET_HOME=home)
        env.pop("U2NET_WEIGHTS", None)
        out = os.path.join(d, name + "_home.png")
        testlib.run([testlib.U2NET, "-m", "rembg_model", sample, "-o", out, "-t", "prob", "--size", "64",
                     "-q"], env=env)
        with open(out, "rb") as f:
            assert f.read() == outs[0], "-m NAME from $U2NET_HOME differs"
        print("    %s: -m .onnx, -m .u2nc and -m NAME ($U2NET_HOME) give the same prob map and raw outputs" % name)


@tidy
def test_other_stage_tables_from_shapes():
    """U2Net-layout networks of other channels and heights (as silueta's and
    u2net_human_seg's exports are U2Net's layout): exported by PyTorch, read
    by the library from the graph's shapes, the network matches the
    PyTorch reference."""
    testlib.need_torch()
    testlib.need_engine()
    import make_goldens as MG
    import u2net_ref as R
    d = wd("onnx_tables")
    stages = ((F.RSU_L, 5, 3, 8, 16, F.ENCODER), (F.RSU_L, 4, 16, 8, 16, F.ENCODER),
              (F.RSU_F, 4, 16, 8, 16, F.ENCODER), (F.RSU_F, 4, 32, 8, 16, F.DECODER),
              (F.RSU_L, 4, 32, 8, 16, F.DECODER))
    import random_weights as RW
    model = R.build(stages)
    R.load_state_dict(model, RW.random_state_dict(stages, 11), strict=True)
    model.eval()
    path = MG.export_onnx(model, os.path.join(d, "silueta_like.onnx"), size=64)
    x = MG.golden_input(61, 47)
    want = R.run(model, x)
    got = testlib.run_tensor(path, x)
    testlib.assert_close(got, want, 1e-4, "silueta-like export vs PyTorch (7 outputs)")


# ------------------------------------------------------------ fuzz seeds

SEEDS = ("u2net_raw", "u2net_bn", "u2net_f16_typed", "u2net_casts", "isnet_raw", "isnet_bn")


def write_seeds():
    os.makedirs(SEEDS_DIR, exist_ok=True)
    for name in SEEDS:
        with open(os.path.join(SEEDS_DIR, name + ".onnx"), "wb") as f:
            f.write(variant_bytes(name))


def test_fuzz_seeds():
    """tests/fuzz/seeds/onnx holds this file's tiny graphs, byte for byte,
    each small and read by the library."""
    for name in SEEDS:
        path = os.path.join(SEEDS_DIR, name + ".onnx")
        assert os.path.exists(path), "missing seed %s (run: /usr/bin/python3 tests/test_onnx.py --write-seeds)" % path
        with open(path, "rb") as f:
            data = f.read()
        assert data == variant_bytes(name), "%s differs from what test_onnx.py makes" % path
        assert len(data) < 16384, "%s: %d bytes, too large for a seed" % (path, len(data))
        rc, _img, err = library_image(path)
        assert rc == 0, err


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-seeds"]:
        write_seeds()
    else:
        sys.exit("usage: %s --write-seeds   (the tests run through tests/run.py)" % sys.argv[0])
