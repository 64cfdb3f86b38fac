"""The engine's handling of bad model files and bad inputs, through
`build/u2net tensor`: every case must exit non-zero without a crash, print
exactly one stderr line (`u2net: MODEL_PATH: problem` for model problems) and
leave no output file behind.

The models are derived from a valid U2NetP file of random weights written with
tools/u2net_format.py; broken fields are rewritten with both CRCs recomputed
where the point is that only a later check can catch them.
"""
import os
import struct

import numpy as np

import testlib

import u2net_format as F  # tools/ is on sys.path via testlib

H, W = 40, 56          # a small valid input size


# Scratch folders: each test's are removed when it passes or skips, kept (and
# named) when it fails.
wd, tidy = testlib.scratch_dir, testlib.tidy

_VALID = {}


need_engine = testlib.need_engine


def valid_model_bytes():
    """A valid U2NetP model file (float32), random weights."""
    if "b" not in _VALID:
        try:
            import random_weights as RW
            sd = RW.random_state_dict(F.U2NETP_STAGES, 5)
            import convert
            tensors = list(convert.convert_state_dict(sd).tensors.items())
        except ImportError:
            tensors = _numpy_tensors(F.U2NETP_STAGES, 5)
        _VALID["b"] = F.pack_model("u2netp", F.U2NETP_STAGES, tensors)
    return _VALID["b"]


def _numpy_tensors(stages, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name, shape in F.tensor_list(stages):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        out.append((name, (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)))
    return out


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
    print("    %-28s rc %d: %s" % (label, p.returncode, err.strip()))
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


def model_cases(good):
    """(label, bytes or None for a missing file) of broken model files."""
    b = bytearray(good)
    n_st, n_t = struct.unpack_from("<II", b, 16)
    tt_off, data_off, data_bytes = struct.unpack_from("<QQQ", b, 48)
    cases = [("missing file", None), ("empty file", b"")]
    for label, cut in (("cut inside header", 50), ("cut after header", 128),
                       ("cut inside stage table", 128 + 32 * 5 + 3),
                       ("cut inside tensor table", tt_off + 96 * 10 + 7),
                       ("cut at data start", data_off), ("cut inside data", data_off + 1000),
                       ("cut last byte", len(b) - 1)):
        cases.append((label, bytes(b[:cut])))
    cases.append(("trailing bytes", bytes(b) + b"\0" * 64))

    def edited(fn, fix=True):
        c = bytearray(good)
        fn(c)
        return F.fix_crcs(c) if fix else bytes(c)

    cases.append(("wrong magic", edited(lambda c: c.__setitem__(slice(0, 4), b"U2NX"), fix=False)))
    cases.append(("wrong magic, CRCs fixed", edited(lambda c: c.__setitem__(slice(0, 4), b"PK\x03\x04"))))
    cases.append(("wrong version", edited(lambda c: struct.pack_into("<I", c, 4, 2))))
    cases.append(("header_bytes 64", edited(lambda c: struct.pack_into("<I", c, 8, 64))))
    cases.append(("flags set", edited(lambda c: struct.pack_into("<I", c, 12, 1))))
    cases.append(("unknown dtype", edited(lambda c: struct.pack_into("<I", c, 24, 7))))

    def flip(pos):
        return lambda c: c.__setitem__(pos, c[pos] ^ 0x10)
    cases.append(("corrupt data byte", edited(flip(len(b) - 100), fix=False)))
    cases.append(("corrupt tensor table byte", edited(flip(tt_off + 96 * 3 + 70), fix=False)))
    cases.append(("corrupt header byte", edited(flip(85), fix=False)))
    cases.append(("corrupt header CRC", edited(flip(117), fix=False)))

    # a weight whose dims do not fit the stage table (same byte count)
    e0 = _tensor_entry(b, 0)
    cases.append(("weight dims swapped", edited(lambda c: struct.pack_into("<4I", c, e0 + 64, 3, 64, 3, 3))))
    cases.append(("weight as 1x1 kernel", edited(lambda c: struct.pack_into("<4I", c, e0 + 64, 64, 27, 1, 1))))
    cases.append(("weight ndim 3", edited(lambda c: struct.pack_into("<I4I", c, e0 + 60, 3, 64, 27, 3, 0))))
    e1 = _tensor_entry(b, 1)
    cases.append(("bias ndim 2", edited(lambda c: struct.pack_into("<I4I", c, e1 + 60, 2, 64, 1, 0, 0))))
    cases.append(("tensor renamed", edited(lambda c: c.__setitem__(slice(e0, e0 + 8), b"stage9.r"))))
    cases.append(("tensor dtype f16", edited(lambda c: struct.pack_into("<I", c, e0 + 56, 1))))
    cases.append(("nbytes too small", edited(lambda c: struct.pack_into("<Q", c, e0 + 88, 64 * 27 * 4 - 4))))
    last = _tensor_entry(b, n_t - 1)
    past = (data_bytes + 63) // 64 * 64 + 64
    cases.append(("offset past the end", edited(lambda c: struct.pack_into("<Q", c, last + 80, past))))
    cases.append(("offset 2^63", edited(lambda c: struct.pack_into("<Q", c, last + 80, 1 << 63))))
    cases.append(("offset misaligned", edited(lambda c: struct.pack_into("<Q", c, e1 + 80,
                                                                           struct.unpack_from("<Q", c, e1 + 80)[0] + 4))))
    cases.append(("huge tensor_count", edited(lambda c: struct.pack_into("<I", c, 20, 0xFFFFFFFF))))
    cases.append(("tensor_count - 2", edited(lambda c: struct.pack_into("<I", c, 20, n_t - 2))))
    cases.append(("huge stage_count", edited(lambda c: struct.pack_into("<I", c, 16, 0xFFFFFFFF))))
    cases.append(("stage_count 0", edited(lambda c: struct.pack_into("<I", c, 16, 0))))
    cases.append(("huge tensor_table_offset", edited(lambda c: struct.pack_into("<Q", c, 48, 1 << 62))))
    cases.append(("data_offset past end", edited(lambda c: struct.pack_into("<QQ", c, 56, len(b) + 64, 0))))
    cases.append(("file_bytes wrong", edited(lambda c: struct.pack_into("<Q", c, 72, len(b) + 64))))
    cases.append(("stage kind 3", edited(lambda c: struct.pack_into("<I", c, 128, 3))))
    cases.append(("stage height 1", edited(lambda c: struct.pack_into("<I", c, 128 + 4, 1))))
    cases.append(("stage height 1000", edited(lambda c: struct.pack_into("<I", c, 128 + 4, 1000))))
    cases.append(("stage mid_ch 0", edited(lambda c: struct.pack_into("<I", c, 128 + 12, 0))))
    cases.append(("stage in_ch 2^31", edited(lambda c: struct.pack_into("<I", c, 128 + 8, 1 << 31))))
    cases.append(("encoder marked decoder", edited(lambda c: struct.pack_into("<I", c, 128 + 20, 1))))
    cases.append(("in_channels 4", edited(lambda c: struct.pack_into("<I", c, 28, 4))))
    # a stage table whose channels do not chain, with tensors that match it
    # (so that only the chaining check can catch it)
    st = list(F.U2NETP_STAGES)
    st[1] = (1, 6, 32, 16, 64, 0)               # stage2 reads 32 channels, stage1 gives 64
    cases.append(("stages do not chain", F.pack_model("u2netp", st, _numpy_tensors(st, 1), check=False)))
    st = list(F.U2NETP_STAGES)
    st[6] = (2, 4, 96, 16, 64, 1)               # stage5d should read 64 + 64
    cases.append(("decoder does not chain", F.pack_model("u2netp", st, _numpy_tensors(st, 2), check=False)))
    st = list(F.U2NETP_STAGES[:5]) + list(F.U2NETP_STAGES[6:])   # even stage count
    cases.append(("10 stages", F.pack_model("u2netp", st, _numpy_tensors(F.U2NETP_STAGES, 3), check=False)))
    return cases


@tidy
def test_valid_model_runs():
    """The base file of the cases below is valid: the engine runs it."""
    need_engine()
    d = wd("bad_model")
    model = _write(d, "valid", valid_model_bytes())
    F.read_model(model)
    out = os.path.join(d, "valid.out.f32")
    p = run_engine(model, _input(d), out)
    assert p.returncode == 0, p.stderr_text
    y = np.fromfile(out, dtype="<f4")
    assert y.size == 7 * H * W and np.all(np.isfinite(y))


@tidy
def test_bad_model_files():
    need_engine()
    d = wd("bad_model")
    inp = _input(d)
    problems = []
    for i, (label, data) in enumerate(model_cases(valid_model_bytes())):
        name = "case%02d" % i
        model = os.path.join(d, name + ".u2nc")
        if data is not None:
            model = _write(d, name, data)
            try:
                F.read_model(model)
                problems.append("%s: the Python reader accepts it (bad test case)" % label)
            except F.FormatError:
                pass
        problems += expect_failure(label, model, inp, os.path.join(d, name + ".out.f32"))
    assert not problems, "\n".join(problems)


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
    print("    %-28s rc %d: %s" % ("output folder missing", p.returncode, p.stderr_text.strip()))
    if not (p.returncode > 0 and len(p.stderr_text.strip().splitlines()) == 1 and not os.path.exists(out)):
        problems.append("output folder missing: rc %d stderr %r" % (p.returncode, p.stderr_text))
    assert not problems, "\n".join(problems)

