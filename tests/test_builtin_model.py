"""The model built into the library (weights/u2netp.u2nc, linked in by
engine/model/builtin_model.c): its bytes are what tools/convert.py makes of
../shared/weights/u2netp-fp16.onnx with --fp16 today, its licence is beside
it, the program cuts out with it where no model file is at hand (a copy of
the program alone in a folder, no $U2NET_WEIGHTS, an empty $U2NET_HOME),
and `make BUILTIN_MODEL=0` builds a program without it that says so."""
import os
import shutil
import subprocess
import sys

import testlib
from testlib import Skip

import test_onnx as TO

WEIGHTS = os.path.join(testlib.ROOT, "weights")
COMMITTED = os.path.join(WEIGHTS, "u2netp.u2nc")
SAMPLE = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")

wd, tidy = testlib.scratch_dir, testlib.tidy


def builtin_bytes():
    d = wd("builtin_bytes")
    out = os.path.join(d, "builtin.u2nc")
    testlib.run([TO.MODEL_IMAGE, "builtin", out])
    with open(out, "rb") as f:
        return f.read()


@tidy
def test_builtin_is_the_converters_file():
    """The linked-in bytes are weights/u2netp.u2nc, which is what the
    converter makes of the shared u2netp-fp16.onnx with --fp16; the weights'
    Apache-2.0 licence is beside it."""
    testlib.need_engine()
    with open(COMMITTED, "rb") as f:
        committed = f.read()
    assert builtin_bytes() == committed, "the library's built-in model is not weights/u2netp.u2nc"
    with open(os.path.join(WEIGHTS, "LICENSE-U2Net-weights.txt")) as f:
        assert "Apache License" in f.read()
    import u2net_format as F
    m = F.read_model(committed)
    assert m.name == "u2netp" and m.dtype == "f16" and m.net == F.U2NETP, m
    testlib.need_shared_weights()
    d = wd("builtin_convert")
    out = os.path.join(d, "u2netp.u2nc")
    testlib.run([sys.executable, os.path.join(testlib.ROOT, "tools", "convert.py"), testlib.REAL_ONNX,
                 "-o", out, "--fp16"])
    with open(out, "rb") as f:
        assert f.read() == committed, "convert.py --fp16 of %s is not weights/u2netp.u2nc" % testlib.REAL_ONNX
    print("    %d bytes: linked in = weights/u2netp.u2nc = convert.py --fp16 of the shared file" % len(committed))


def alone_env(home):
    """An environment where the program finds no model file: no
    $U2NET_WEIGHTS, an empty $U2NET_HOME."""
    env = dict(os.environ, U2NET_HOME=home, HOME=home)
    env.pop("U2NET_WEIGHTS", None)
    env.pop("XDG_DATA_HOME", None)
    env.pop("REMBG_HOME", None)
    return env


@tidy
def test_program_alone_uses_builtin():
    """A copy of the program in an empty folder tree cuts out the sample with
    no -m, and -m u2netp is the same model: the cutout equals that of
    -m weights/u2netp.u2nc; `u2net models` lists it first."""
    testlib.need_engine_and_pil()
    d = wd("builtin_alone")
    bindir = os.path.join(d, "opt", "bin")
    os.makedirs(bindir)
    exe = os.path.join(bindir, "u2net")
    shutil.copy2(testlib.U2NET, exe)
    home = os.path.join(d, "home")
    os.makedirs(home)
    env = alone_env(home)
    outs = []
    for extra in ([], ["-m", "u2netp"]):
        out = os.path.join(d, "cut%d.png" % len(outs))
        testlib.run([exe, SAMPLE, "-o", out, "-q"] + extra, env=env)
        outs.append(open(out, "rb").read())
    ref = os.path.join(d, "ref.png")
    testlib.run([testlib.U2NET, SAMPLE, "-o", ref, "-q", "-m", COMMITTED])
    assert outs[0] == outs[1] == open(ref, "rb").read(), "the built-in model cuts out differently"
    p = testlib.run([exe, "models"], env=env)
    lines = p.stdout_text.splitlines()
    print("    " + "\n    ".join(lines))
    assert lines[0].startswith("NAME") and lines[1].startswith("u2netp ") and "built in" in lines[1]
    assert len(lines) == 2, "models found beside a lone program: %r" % lines


def _build_without(dest):
    """build/ without the built-in model, into dest: the objects of the
    normal build copied, so only the model's object and the links are
    made again."""
    for sub in ("engine", "kernels", "src"):
        src = os.path.join(testlib.BUILD, sub)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, sub), copy_function=shutil.copy2)
    p = subprocess.run(["make", "-s", "-C", testlib.ROOT, "BUILD=" + dest, "BUILTIN_MODEL=0",
                        os.path.join(dest, "u2net")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, "make BUILTIN_MODEL=0 failed: %s" % p.stderr[-2000:]
    return os.path.join(dest, "u2net")


@tidy
def test_build_without_builtin():
    """make BUILTIN_MODEL=0: the program is smaller by about the model's
    size, lists no built-in model, and with no model file says in one line
    that it found none (exit 1, no output); given -m FILE it works."""
    testlib.need_engine_and_pil()
    if testlib.SANITIZE:
        raise Skip("the sanitizer build's flags are not passed to a second build")
    d = wd("builtin_without")
    exe = _build_without(os.path.join(d, "build"))
    lone = os.path.join(d, "bin", "u2net")
    os.makedirs(os.path.dirname(lone))
    shutil.copy2(exe, lone)
    with_size, without_size = os.path.getsize(testlib.U2NET), os.path.getsize(exe)
    model = os.path.getsize(COMMITTED)
    print("    program %d bytes with the built-in model, %d without (model file %d bytes)"
          % (with_size, without_size, model))
    assert model * 0.95 < with_size - without_size < model * 1.2 + 65536, (with_size, without_size)
    home = os.path.join(d, "home")
    os.makedirs(home)
    env = alone_env(home)
    p = testlib.run([lone, "models"], env=env)
    assert "built in" not in p.stdout_text and len(p.stdout_text.splitlines()) == 1, p.stdout_text
    out = os.path.join(d, "cut.png")
    p = testlib.run([lone, SAMPLE, "-o", out], check=False, env=env)
    lines = p.stderr_text.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and "model 'u2netp' not found" in lines[0], p.stderr_text
    assert not os.path.exists(out)
    testlib.run([lone, SAMPLE, "-o", out, "-q", "-m", COMMITTED], env=env)
    assert os.path.exists(out)
