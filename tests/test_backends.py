"""Every backend held to the plain forward pass (build/test_backends, C, no
PyTorch): U2NetP, U2Net, ISNet (float32 and float16 files), the other stage
tables of test_e2e, the committed version-1 file and, when ../shared has it,
the real ISNet; the CPU backend and the CUDA backend's plan run on the CPU
(no GPU needed); and the CUDA backend's element bodies against the CPU
reference kernels (build/test_gpu_bodies). The models have random weights written by the converter's
numpy code; sizes are small and odd, and the test also runs every pipeline
in many bands (tests/test_backends.c says what it compares)."""
import os

import numpy as np

import testlib
from testlib import Skip

EXE = os.path.join(testlib.BUILD, "test_backends")
MODELS_DIR = os.path.join(testlib.WORK, "models")


def _model(name, make):
    path = os.path.join(MODELS_DIR, name)
    if not os.path.exists(path):
        os.makedirs(MODELS_DIR, exist_ok=True)
        tmp = "%s.tmp%d" % (path, os.getpid())
        make(tmp)
        os.replace(tmp, path)
    return path


def random_model(kind, dtype="f32"):
    """The converter's file of make_goldens' random weights of kind."""
    def make(tmp):
        import convert
        import make_goldens as MG
        convert.write_model(convert.convert_state_dict(MG.random_sd(kind)), tmp, dtype=dtype)
    return _model("%s_random_%s.u2nc" % (kind, dtype), make)


def _run(model, *sizes):
    args = [EXE, model]
    for h, w in sizes:
        args += [str(h), str(w)]
    p = testlib.run(args, check=False, timeout=900)
    lines = p.stdout_text.strip().splitlines()
    for line in lines:
        if line.startswith("FAIL") or " cpu (" in line or "lean top level" in line:
            print("   ", line)
    print("   ", lines[-1] if lines else "(no output) " + p.stderr_text.strip())
    assert p.returncode == 0, "test_backends %s exited %d" % (os.path.basename(model), p.returncode)


def test_gpu_bodies():
    """The CUDA backend's element bodies on the CPU against the CPU reference
    kernels (build/test_gpu_bodies)."""
    p = testlib.run([os.path.join(testlib.BUILD, "test_gpu_bodies")], check=False)
    lines = p.stdout_text.strip().splitlines()
    for line in lines:
        if line.startswith("FAIL"):
            print("   ", line)
    print("   ", lines[-1] if lines else "(no output) " + p.stderr_text.strip())
    assert p.returncode == 0, "test_gpu_bodies exited %d" % p.returncode


def test_u2netp():
    _run(random_model("u2netp"), (61, 47), (97, 61), (33, 100))


def test_u2net():
    _run(random_model("u2net"), (45, 38))


def test_isnet():
    _run(random_model("isnet"), (64, 48), (37, 29))


def test_isnet_float16():
    """Float16 weights stay float16 and are converted by the backends."""
    _run(random_model("isnet", "f16"), (53, 41))


def test_isnet_slim():
    """ISNet's layout with fewer channels (the converter reads channels from
    the shapes), at a size whose every level is odd."""
    _run(random_model("isnet_slim"), (99, 67), (15, 9))


def test_other_stage_tables():
    import test_e2e
    for label, stages in test_e2e.OTHER_STAGES.items():
        _run(test_e2e.other_model_file(label, stages), (45, 38), (64, 50))


def test_version1_file():
    _run(os.path.join(testlib.ROOT, "tests", "fixtures", "v1_custom.u2nc"), (45, 38))


def test_real_isnet():
    import test_e2e
    _run(test_e2e.real_isnet_file(), (65, 40))
