"""The engine's handling of bad model files and bad inputs, through
`build/u2net tensor`: every case must exit non-zero without a crash, print
exactly one stderr line (`u2net: MODEL_PATH: problem` for model problems) and
leave no output file behind. The wording of the messages is the engine's.

The models are derived from valid files written with tools/u2net_format.py
(a version-2 U2NetP of random weights; the committed version-1 fixture);
broken fields are rewritten with both CRCs recomputed where the point is
that only a later check can catch them, and broken layer tables come with
tensors that match them, so that only the layer-table check can. Every
broken file must also be refused by u2net_format.read_model, which makes
the same checks (docs/FORMAT.md, "Checks the engine makes").

The fuzz seeds in tests/fuzz/seeds/model are small valid files made here:
`/usr/bin/python3 tests/test_bad_model.py --write-seeds` rewrites them.
"""
import os
import struct
import sys

import numpy as np

import testlib

import u2net_format as F  # tools/ is on sys.path via testlib

H, W = 40, 56          # a small valid input size
V1_FIXTURE = os.path.join(testlib.ROOT, "tests", "fixtures", "v1_custom.u2nc")
SEEDS_DIR = os.path.join(testlib.ROOT, "tests", "fuzz", "seeds", "model")
PROC = F.HEADER_BYTES                 # the processing block
LT = F.LAYER_TABLE_OFFSET             # the layer table


# Scratch folders: each test's are removed when it passes or skips, kept (and
# named) when it fails.
wd, tidy = testlib.scratch_dir, testlib.tidy

_VALID = {}


need_engine = testlib.need_engine


def random_tensors(net, seed, layers=None):
    """Random float32 tensors for a description, or (broken files) for the
    convolutions a raw layer table implies."""
    rng = np.random.default_rng(seed)
    shapes = F.tensor_list(net) if layers is None else _tensor_list_of_layers(layers)
    out = []
    for name, shape in shapes:
        fan_in = max(1, int(np.prod(shape[1:]))) if len(shape) > 1 else 1
        out.append((name, (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)))
    return out


def _tensor_list_of_layers(rows):
    """The tensor list a layer table asks for, read the way the engine reads
    it (whatever the table's own consistency): prelude convs, stage convs,
    sides, fuse."""
    stages = [r[:6] for r in rows if r[0] in (F.RSU_L, F.RSU_F)]
    names = F.stage_names(stages) if len(stages) % 2 else ["stage%d" % (i + 1) for i in range(len(stages))]
    out = []
    for i, r in enumerate(rows, 1):
        if r[0] == F.PRELUDE_CONV:
            out += [("prelude%d.weight" % i, (r[2], r[1], 3, 3)), ("prelude%d.bias" % i, (r[2],))]
    for sname, st in zip(names, stages):
        for cname, ci, co, k, _d in F.stage_convs(st):
            out += [("%s.%s.weight" % (sname, cname), (co, ci, k, k)), ("%s.%s.bias" % (sname, cname), (co,))]
    sides = [r for r in rows if r[0] == F.SIDE]
    for k, r in enumerate(sides, 1):
        out += [("side%d.weight" % k, (r[3], r[2], 3, 3)), ("side%d.bias" % k, (r[3],))]
    for r in rows:
        if r[0] == F.FUSE:
            out += [("outconv.weight", (r[2], r[1], 1, 1)), ("outconv.bias", (r[2],))]
    return out


def valid_model_bytes():
    """A valid version-2 U2NetP model file (float32), random weights."""
    if "b" not in _VALID:
        try:
            import convert
            import random_weights as RW
            tensors = list(convert.convert_state_dict(RW.random_state_dict(F.U2NETP_STAGES, 5)).tensors.items())
        except ImportError:
            tensors = random_tensors(F.U2NETP, 5)
        _VALID["b"] = F.pack_model("u2netp", F.U2NETP, tensors)
    return _VALID["b"]


# Small valid version-2 networks: the fuzz seeds, and the bases of the
# broken layer tables below.
TINY_STAGES = ((1, 2, 3, 2, 2, 0), (2, 2, 2, 2, 2, 0), (1, 2, 4, 2, 2, 1))
TINY = F.u2net_network(TINY_STAGES)
TINY_ISNET = F.isnet_network(((1, 3, 4, 2, 4, 0), (2, 2, 4, 2, 4, 0), (1, 3, 8, 2, 4, 1)))
# every prelude kind: conv (ReLU, dilation 2), pool, conv (stride 2); a fuse;
# the prediction is side 1; a processing block of other values
TINY_PRELUDE = F.Network(
    (F.PreludeConv(3, 4, 1, 2, 1), F.PreludePool(), F.PreludeConv(4, 4, 2, 1, 0)),
    ((1, 3, 4, 2, 4, 0), (2, 2, 4, 2, 4, 0), (1, 3, 8, 2, 4, 1)),
    (F.Side(2, 0), F.Side(1, 0)), True, 1,
    F.make_processing(64, 48, (0.5, 0.4, 0.3), (0.25, 0.5, 1.0), 1, 0, 1), 3, 1)

SEEDS = (("tiny_v2.u2nc", TINY, "f32"), ("tiny_v2_16.u2nc", TINY, "f16"),
         ("tiny_v2_isnet.u2nc", TINY_ISNET, "f32"), ("tiny_v2_prelude.u2nc", TINY_PRELUDE, "f32"))


def seed_bytes(net, dtype):
    return F.pack_model("tiny", net, random_tensors(net, 11), dtype)


class Case(object):
    def __init__(self, d, name):
        self.dir = d
        self.model = os.path.join(d, name + ".u2nc")
        self.inp = os.path.join(d, "in.f32")
        self.out = os.path.join(d, name + ".out.f32")


def _input(d, h=H, w=W, floats=None):
    p = os.path.join(d, "in_%dx%d_%s.f32" % (h, w, floats))
    n = 3 * h * w if floats is None else floats
    np.random.default_rng(0).standard_normal(n).astype("<f4").tofile(p)
    return p


def run_engine(model, inp, out, h=H, w=W, extra=()):
    args = [testlib.U2NET, "tensor", "-m", model, "-i", inp, "--height", str(h), "--width", str(w),
            "-o", out, "--sides"] + list(extra)
    return testlib.run(args, check=False, timeout=120)


def expect_failure(label, model, inp, out, h=H, w=W, names_model=True):
    if os.path.exists(out):
        os.unlink(out)
    p = run_engine(model, inp, out, h, w)
    err = p.stderr_text
    lines = err.strip("\n").splitlines()
    print("    %-34s rc %d: %s" % (label, p.returncode, err.strip()))
    problems = []
    if p.returncode < 0:
        problems.append("killed by signal %d" % -p.returncode)
    elif p.returncode == 0:
        problems.append("exit status 0")
    if p.returncode >= 128:
        problems.append("exit status %d looks like a crash" % p.returncode)
    if len(lines) != 1 or not err.endswith("\n"):
        problems.append("stderr is not exactly one line: %r" % err)
    elif names_model and not lines[0].startswith("u2net: %s: " % model):
        problems.append("message does not start with 'u2net: %s: ': %r" % (model, lines[0]))
    elif not lines[0].startswith("u2net: "):
        problems.append("message does not start with 'u2net: ': %r" % lines[0])
    if os.path.exists(out):
        problems.append("output file left behind")
    tmp = [f for f in os.listdir(os.path.dirname(out)) if ".tmp" in f or f.startswith(".u2net-")]
    if tmp:
        problems.append("temporary files left behind: %s" % tmp)
    return ["%s: %s" % (label, x) for x in problems]


def _write(d, name, data):
    p = os.path.join(d, name + ".u2nc")
    with open(p, "wb") as f:
        f.write(data)
    return p


def _tensor_entry(buf, i):
    tt = struct.unpack_from("<Q", buf, 48)[0]
    return tt + F.TENSOR_BYTES * i


def _edited(good, fn, fix=True):
    c = bytearray(good)
    fn(c)
    return F.fix_crcs(c) if fix else bytes(c)


def model_cases(good):
    """(label, bytes or None for a missing file) of broken model files made
    from a valid version-2 file: header, processing block, tables, data."""
    b = bytearray(good)
    n_layers, n_t = struct.unpack_from("<II", b, 16)
    tt_off, data_off, data_bytes = struct.unpack_from("<QQQ", b, 48)
    cases = [("missing file", None), ("empty file", b"")]
    for label, cut in (("cut inside header", 50), ("cut after header", 128),
                       ("cut inside processing block", PROC + 20),
                       ("cut inside layer table", LT + 32 * 5 + 3),
                       ("cut inside tensor table", tt_off + 96 * 10 + 7),
                       ("cut at data start", data_off), ("cut inside data", data_off + 1000),
                       ("cut last byte", len(b) - 1)):
        cases.append((label, bytes(b[:cut])))
    cases.append(("trailing bytes", bytes(b) + b"\0" * 64))

    def edited(fn, fix=True):
        return _edited(good, fn, fix)

    def u32(off, v):
        return lambda c: struct.pack_into("<I", c, off, v)

    cases.append(("wrong magic", edited(lambda c: c.__setitem__(slice(0, 4), b"U2NX"), fix=False)))
    cases.append(("wrong magic, CRCs fixed", edited(lambda c: c.__setitem__(slice(0, 4), b"PK\x03\x04"))))
    cases.append(("version 3", edited(u32(4, 3))))
    cases.append(("version 0", edited(u32(4, 0))))
    cases.append(("version-2 file labelled version 1", edited(u32(4, 1))))
    cases.append(("header_bytes 64", edited(u32(8, 64))))
    cases.append(("flags set", edited(u32(12, 1))))
    cases.append(("unknown dtype", edited(u32(24, 7))))
    cases.append(("in_channels 4", edited(u32(28, 4))))
    cases.append(("out_channels 2", edited(u32(32, 2))))

    def flip(pos):
        return lambda c: c.__setitem__(pos, c[pos] ^ 0x10)
    cases.append(("corrupt data byte", edited(flip(len(b) - 100), fix=False)))
    cases.append(("corrupt processing byte", edited(flip(PROC + 9), fix=False)))
    cases.append(("corrupt layer table byte", edited(flip(LT + 32 * 3 + 8), fix=False)))
    cases.append(("corrupt tensor table byte", edited(flip(tt_off + 96 * 3 + 70), fix=False)))
    cases.append(("corrupt header byte", edited(flip(85), fix=False)))
    cases.append(("corrupt header CRC", edited(flip(117), fix=False)))

    # a weight whose dims do not fit the layer table (same byte count)
    e0 = _tensor_entry(b, 0)
    cases.append(("weight dims swapped", edited(lambda c: struct.pack_into("<4I", c, e0 + 64, 3, 64, 3, 3))))
    cases.append(("weight as 1x1 kernel", edited(lambda c: struct.pack_into("<4I", c, e0 + 64, 64, 27, 1, 1))))
    cases.append(("weight ndim 3", edited(lambda c: struct.pack_into("<I4I", c, e0 + 60, 3, 64, 27, 3, 0))))
    e1 = _tensor_entry(b, 1)
    cases.append(("bias ndim 2", edited(lambda c: struct.pack_into("<I4I", c, e1 + 60, 2, 64, 1, 0, 0))))
    cases.append(("tensor renamed", edited(lambda c: c.__setitem__(slice(e0, e0 + 8), b"stage9.r"))))
    cases.append(("tensor dtype f16", edited(u32(e0 + 56, 1))))
    cases.append(("nbytes too small", edited(lambda c: struct.pack_into("<Q", c, e0 + 88, 64 * 27 * 4 - 4))))
    last = _tensor_entry(b, n_t - 1)
    past = (data_bytes + 63) // 64 * 64 + 64
    cases.append(("offset past the end", edited(lambda c: struct.pack_into("<Q", c, last + 80, past))))
    cases.append(("offset 2^63", edited(lambda c: struct.pack_into("<Q", c, last + 80, 1 << 63))))
    cases.append(("offset misaligned", edited(lambda c: struct.pack_into("<Q", c, e1 + 80,
                                                                           struct.unpack_from("<Q", c, e1 + 80)[0] + 4))))
    cases.append(("huge tensor_count", edited(u32(20, 0xFFFFFFFF))))
    cases.append(("tensor_count - 2", edited(u32(20, n_t - 2))))
    cases.append(("huge layer_count", edited(u32(16, 0xFFFFFFFF))))
    cases.append(("layer_count 0", edited(u32(16, 0))))
    cases.append(("layer_count - 1", edited(u32(16, n_layers - 1))))
    cases.append(("layer_table_offset 128", edited(lambda c: struct.pack_into("<Q", c, 40, 128))))
    cases.append(("huge tensor_table_offset", edited(lambda c: struct.pack_into("<Q", c, 48, 1 << 62))))
    cases.append(("data_offset past end", edited(lambda c: struct.pack_into("<QQ", c, 56, len(b) + 64, 0))))
    cases.append(("file_bytes wrong", edited(lambda c: struct.pack_into("<Q", c, 72, len(b) + 64))))
    # the processing block
    cases.append(("input width 0", edited(u32(PROC, 0))))
    cases.append(("input height 0", edited(u32(PROC + 4, 0))))
    cases.append(("input width 9000", edited(u32(PROC, 9000))))
    cases.append(("input height 9000", edited(u32(PROC + 4, 9000))))
    for label, off, v in (("mean NaN", 8, float("nan")), ("mean inf", 16, float("inf")), ("std 0", 20, 0.0),
                          ("std NaN", 24, float("nan")), ("std negative", 28, -1.0), ("std -inf", 28, -float("inf"))):
        cases.append((label, edited(lambda c, off=off, v=v: struct.pack_into("<f", c, PROC + off, v))))
    for label, off in (("scale 2", 32), ("normalise 2", 36), ("resize_back 2", 40)):
        cases.append((label, edited(u32(PROC + off, 2))))
    cases.append(("processing reserved byte set", edited(lambda c: c.__setitem__(PROC + 63, 1))))
    # stage entries (the first stage is the first layer: U2NetP has no prelude)
    cases.append(("stage kind 7", edited(u32(LT, 7))))
    cases.append(("stage kind 0", edited(u32(LT, 0))))
    cases.append(("stage height 1", edited(u32(LT + 4, 1))))
    cases.append(("stage height 1000", edited(u32(LT + 4, 1000))))
    cases.append(("stage mid_ch 0", edited(u32(LT + 12, 0))))
    cases.append(("stage in_ch 2^31", edited(u32(LT + 8, 1 << 31))))
    cases.append(("encoder marked decoder", edited(u32(LT + 20, 1))))
    cases.append(("stage unused field set", edited(u32(LT + 24, 1))))
    side1 = LT + 32 * 11
    cases.append(("side unused field set", edited(u32(side1 + 20, 1))))
    cases.append(("fuse unused field set", edited(u32(LT + 32 * 17 + 12, 1))))
    cases.append(("prediction 7 of 7 outputs", edited(u32(36, 7))))
    cases.append(("prediction 2^32-1", edited(u32(36, 0xFFFFFFFF))))
    # stage tables whose channels do not chain, with tensors that match them
    st = list(F.U2NETP_STAGES)
    st[1] = (1, 6, 32, 16, 64, 0)               # stage2 reads 32 channels, stage1 gives 64
    net = F.u2net_network(st)
    cases.append(("stages do not chain", F.pack_model("u2netp", net, random_tensors(net, 1), check=False)))
    st = list(F.U2NETP_STAGES)
    st[6] = (2, 4, 96, 16, 64, 1)               # stage5d should read 64 + 64
    net = F.u2net_network(st)
    cases.append(("decoder does not chain", F.pack_model("u2netp", net, random_tensors(net, 2), check=False)))
    st = list(F.U2NETP_STAGES[:5]) + list(F.U2NETP_STAGES[6:])   # even stage count
    cases.append(("10 stages", F.pack_model("u2netp", F.u2net_network(st), random_tensors(F.U2NETP, 3),
                                            check=False)))
    return cases


def _layers_case(label, net, fn, seed=7):
    """A broken file: `net`'s layer table edited by fn(rows) (a list of
    8-lists), with tensors that match the edited table."""
    rows = [list(r) for r in F.layer_table(net)]
    fn(rows)
    return label, F.pack_model("tiny", net, random_tensors(net, seed, rows), check=False, layers=rows)


def _set(i, field, v):
    def fn(rows):
        rows[i][field] = v
    return fn


def layer_cases():
    """Broken version-2 layer tables (tiny networks; tensors match the table)."""
    cases = []
    add = cases.append
    # TINY_ISNET: 0 prelude conv, 1..3 stages, 4..5 sides
    # TINY_PRELUDE: 0 conv, 1 pool, 2 conv, 3..5 stages, 6..7 sides, 8 fuse
    # TINY: 0..2 stages, 3..4 sides, 5 fuse
    add(_layers_case("side reads stage 3 of 3", TINY_ISNET, _set(4, 1, 3)))
    add(_layers_case("side reads stage 2^31", TINY_ISNET, _set(5, 1, 1 << 31)))
    add(_layers_case("side in_ch != its stage's", TINY_ISNET, _set(4, 2, 5)))
    add(_layers_case("side out_ch 2", TINY_ISNET, _set(4, 3, 2)))
    add(_layers_case("side resize_to 3 of 2 sides", TINY, _set(4, 4, 3)))
    add(_layers_case("side resized to side 2 (level 2)", TINY, _set(3, 4, 2)))
    add(_layers_case("resize_to 1 after a stride-2 prelude", TINY_ISNET, _set(5, 4, 1)))
    add(_layers_case("prelude conv in_ch 4", TINY_ISNET, _set(0, 1, 4)))
    add(_layers_case("prelude does not chain", TINY_PRELUDE, _set(2, 1, 6)))
    add(_layers_case("stage1 in_ch != prelude out", TINY_ISNET, _set(0, 2, 6)))
    add(_layers_case("prelude out_ch 0", TINY_ISNET, _set(0, 2, 0)))
    add(_layers_case("prelude out_ch 9000", TINY_ISNET, _set(0, 2, 9000)))
    add(_layers_case("prelude kernel 5", TINY_ISNET, _set(0, 3, 5)))
    add(_layers_case("prelude kernel 0", TINY_ISNET, _set(0, 3, 0)))
    add(_layers_case("prelude stride 0", TINY_ISNET, _set(0, 4, 0)))
    add(_layers_case("prelude stride 3", TINY_ISNET, _set(0, 4, 3)))
    add(_layers_case("prelude dilation 0", TINY_ISNET, _set(0, 5, 0)))
    add(_layers_case("prelude dilation 17", TINY_ISNET, _set(0, 5, 17)))
    add(_layers_case("prelude relu 2", TINY_ISNET, _set(0, 6, 2)))
    add(_layers_case("prelude conv field 7 set", TINY_ISNET, _set(0, 7, 1)))
    add(_layers_case("prelude pool field set", TINY_PRELUDE, _set(1, 1, 2)))
    add(_layers_case("fuse in_ch 3 for 2 sides", TINY, _set(5, 1, 3)))
    add(_layers_case("fuse out_ch 2", TINY, _set(5, 2, 2)))
    for k in (0, 7, 255, 1 << 31):
        add(_layers_case("unknown kind %d" % k, TINY_PRELUDE, _set(1, 0, k)))
    add(_layers_case("prelude after the stages", TINY_ISNET, lambda r: r.insert(3, r.pop(0))))
    add(_layers_case("side before the stages", TINY_ISNET, lambda r: r.insert(1, r.pop(4))))
    add(_layers_case("fuse before the sides", TINY, lambda r: r.insert(3, r.pop(5))))
    add(_layers_case("two fuse convolutions", TINY, lambda r: r.append(list(r[5]))))
    add(_layers_case("stage after the sides", TINY, lambda r: r.insert(4, r.pop(2))))
    add(_layers_case("no sides", TINY, lambda r: (r.pop(3), r.pop(3), r.__setitem__(3, [6, 0, 1, 0, 0, 0, 0, 0]))))
    add(_layers_case("no stages", TINY_ISNET, lambda r: [r.pop(1) for _ in range(3)]))
    add(_layers_case("31 stages", TINY_ISNET, lambda r: [r.insert(2, list(r[2])) for _ in range(28)]))
    add(_layers_case("9 prelude layers", TINY_ISNET, lambda r: [r.insert(1, [4, 0, 0, 0, 0, 0, 0, 0])
                                                                for _ in range(8)]))
    add(_layers_case("17 sides", TINY_ISNET, lambda r: [r.append(list(r[4])) for _ in range(15)]))
    add(_layers_case("16 sides and a fuse (17 outputs)", TINY,
                     lambda r: ([r.insert(4, list(r[3])) for _ in range(14)], r[-1].__setitem__(1, 16))))
    # the description is valid, the prediction is not
    for label, net, pred in (("prediction 2 of 2 (ISNet-shaped)", TINY_ISNET, 2), ("prediction 3 of 3", TINY, 3)):
        add((label, F.pack_model("tiny", net._replace(prediction=pred), random_tensors(net, 3), check=False)))
    # tensor names that do not follow the layer table
    t = random_tensors(TINY_ISNET, 4)
    t[0], t[1] = ("conv_in.weight", t[0][1]), ("conv_in.bias", t[1][1])
    add(("prelude tensors named conv_in", F.pack_model("tiny", TINY_ISNET, t, check=False)))
    t = random_tensors(TINY_PRELUDE, 4)
    t[2], t[3] = ("prelude2.weight", t[2][1]), ("prelude2.bias", t[3][1])   # the pool takes number 2
    add(("second prelude conv named prelude2", F.pack_model("tiny", TINY_PRELUDE, t, check=False)))
    t = random_tensors(TINY, 4)
    add(("outconv tensors missing", F.pack_model("tiny", TINY, t[:-2], check=False)))
    return cases


def v1_cases():
    """Broken version-1 files (the engine still reads version 1), from the
    committed fixture."""
    with open(V1_FIXTURE, "rb") as f:
        good = f.read()
    n_stages = struct.unpack_from("<I", good, 16)[0]

    def u32(off, v):
        return lambda c: struct.pack_into("<I", c, off, v)
    return [("v1: stage kind 3 (a prelude kind)", _edited(good, u32(128, 3))),
            ("v1: stage unused field set", _edited(good, u32(128 + 24, 1))),
            ("v1: stages do not chain", _edited(good, u32(128 + 32 + 8, 5))),
            ("v1: stage_count 4", _edited(good, u32(16, n_stages - 1))),
            ("v1: stage_table_offset 192", _edited(good, lambda c: struct.pack_into("<Q", c, 40, 192))),
            ("v1: in_channels 1", _edited(good, u32(28, 1))),
            ("v1: cut inside stage table", good[:128 + 40])]


def all_cases():
    return model_cases(valid_model_bytes()) + layer_cases() + v1_cases()


def reader_only_cases():
    """Files the Python reader refuses that FORMAT.md's list of engine checks
    does not name (the header's reserved bytes, which version 1 readers
    refused too)."""
    return [("header reserved byte set", _edited(valid_model_bytes(), lambda c: c.__setitem__(124, 1)))]


@tidy
def test_python_reader_refuses():
    """u2net_format.read_model refuses every broken file below (no engine needed)."""
    problems = []
    for label, data in all_cases() + reader_only_cases():
        if data is None:
            continue
        try:
            F.read_model(data)
            problems.append("%s: the Python reader accepts it" % label)
        except F.FormatError as e:
            print("    %-34s %s" % (label, e))
    assert not problems, "\n".join(problems)


@tidy
def test_valid_models_run():
    """The bases of the cases below are valid and the engine runs them: the
    version-2 U2NetP, the tiny version-2 networks (the fuzz seeds: U2Net,
    ISNet-shaped, a prelude of every kind; float32 and float16) and the
    version-1 fixture; their outputs are the PyTorch reference's on the same
    file when PyTorch is here."""
    need_engine()
    d = wd("bad_model")
    inp = _input(d)
    x = np.fromfile(inp, "<f4").reshape(3, H, W)
    files = [("u2netp", valid_model_bytes(), 7), ("v1 fixture", open(V1_FIXTURE, "rb").read(), 4)]
    files += [(name, seed_bytes(net, dtype), F.output_count(net)) for name, net, dtype in SEEDS]
    for label, data, outputs in files:
        model = _write(d, label.replace(" ", "_"), data)
        F.read_model(model)
        out = os.path.join(d, "valid.out.f32")
        p = run_engine(model, inp, out)
        assert p.returncode == 0, "%s: %s" % (label, p.stderr_text)
        y = np.fromfile(out, dtype="<f4")
        assert y.size == outputs * H * W and np.all(np.isfinite(y)), "%s: %d floats" % (label, y.size)
        if testlib.have_torch():
            import u2net_ref as R
            testlib.assert_close(y.reshape(outputs, H, W), R.run(R.load_u2nc(model), x), 1e-4,
                                 "%s engine vs reference" % label)


@tidy
def test_bad_model_files():
    need_engine()
    d = wd("bad_model")
    inp = _input(d)
    problems = []
    for i, (label, data) in enumerate(all_cases()):
        name = "case%03d" % i
        model = os.path.join(d, name + ".u2nc")
        if data is not None:
            model = _write(d, name, data)
        problems += expect_failure(label, model, inp, os.path.join(d, name + ".out.f32"))
    assert not problems, "\n".join(problems)


@tidy
def test_fuzz_seeds():
    """tests/fuzz/seeds/model holds the version-1 seeds and this file's
    version-2 seeds, byte for byte as made here, each valid."""
    for name, net, dtype in SEEDS:
        path = os.path.join(SEEDS_DIR, name)
        assert os.path.exists(path), "missing seed %s (run: /usr/bin/python3 tests/test_bad_model.py --write-seeds)" % path
        with open(path, "rb") as f:
            data = f.read()
        assert data == seed_bytes(net, dtype), "%s differs from what test_bad_model.py makes" % path
        m = F.read_model(data)
        assert m.version == 2 and m.net == net and m.dtype == dtype
    for name in ("tiny.u2nc", "tiny16.u2nc"):
        assert F.read_model(os.path.join(SEEDS_DIR, name)).version == 1


@tidy
def test_bad_inputs():
    """Input sizes outside 1..8192 per side / 16777216 pixels, short and missing inputs."""
    need_engine()
    d = wd("bad_input")
    model = _write(d, "valid", valid_model_bytes())
    small = _input(d, 8, 8)
    problems = []
    for label, h, w in (("height 0", 0, W), ("width 0", H, 0), ("100000 x 100000", 100000, 100000),
                        ("height 8193", 8193, 8), ("width 8193", 8, 8193),
                        ("4097 x 4097 pixels", 4097, 4097), ("height -1", -1, W)):
        problems += expect_failure(label, model, small, os.path.join(d, "o.f32"), h, w, names_model=False)
    problems += expect_failure("input one float short", model, _input(d, H, W, 3 * H * W - 1),
                               os.path.join(d, "o.f32"), names_model=False)
    problems += expect_failure("input one float long", model, _input(d, H, W, 3 * H * W + 1),
                               os.path.join(d, "o.f32"), names_model=False)
    problems += expect_failure("empty input", model, _input(d, H, W, 0), os.path.join(d, "o.f32"),
                               names_model=False)
    problems += expect_failure("missing input", model, os.path.join(d, "nope.f32"), os.path.join(d, "o.f32"),
                               names_model=False)
    # the output goes to a folder that does not exist: one line, nothing written
    out = os.path.join(d, "missing_dir", "o.f32")
    p = run_engine(model, _input(d), out)
    print("    %-34s rc %d: %s" % ("output folder missing", p.returncode, p.stderr_text.strip()))
    if not (p.returncode > 0 and len(p.stderr_text.strip().splitlines()) == 1 and not os.path.exists(out)):
        problems.append("output folder missing: rc %d stderr %r" % (p.returncode, p.stderr_text))
    assert not problems, "\n".join(problems)


def write_seeds():
    for name, net, dtype in SEEDS:
        path = os.path.join(SEEDS_DIR, name)
        F.atomic_write(path, seed_bytes(net, dtype))
        print("wrote %s" % os.path.relpath(path, testlib.ROOT))


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-seeds"]:
        write_seeds()
    else:
        sys.exit("usage: %s --write-seeds   (the tests run through tests/run.py)" % sys.argv[0])
