"""Shared helpers for the Python tests (numpy only; torch is optional).

A test module is tests/test_*.py; every function named test_* in it is a test.
A test passes by returning, fails by raising, and is skipped by raising Skip.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("U2NET_BUILD", os.path.join(ROOT, "build"))
U2NET = os.path.join(BUILD, "u2net")
SHARED = os.path.abspath(os.environ.get("U2NET_SHARED", os.path.join(ROOT, "..", "shared")))
REAL_ONNX = os.path.join(SHARED, "weights", "u2netp-fp16.onnx")
REAL_IMAGES = os.path.join(SHARED, "images", "real")
GOLDEN = os.path.join(ROOT, "tests", "golden")
WORK = os.environ.get("U2NET_TEST_WORK", os.path.join(BUILD, "testwork"))
# set by `make sanitize`: the program runs under AddressSanitizer, which
# reserves terabytes of address space and slows everything down
SANITIZE = bool(os.environ.get("U2NET_SANITIZE"))

sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))


class Skip(Exception):
    """Raised by a test that cannot run here; the message says why."""


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def need_torch():
    if not have_torch():
        raise Skip("PyTorch not installed (python3-torch)")


def need_engine():
    """The program is built by `make test` before the tests run: its absence
    is a failure, not a reason to skip."""
    assert os.path.exists(U2NET), "program not built: %s (run make)" % U2NET


def need_engine_and_pil():
    """The program, and Pillow to make and read the images of a test."""
    need_engine()
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        raise Skip("Pillow not installed (python3-pil)")


def need_shared_weights():
    if not os.path.exists(REAL_ONNX):
        raise Skip("missing %s" % REAL_ONNX)


def random_u2netp(name, seed):
    """The path of a U2NetP model file with random weights
    (tests/reference/random_weights.py), written once per run."""
    path = os.path.join(WORK, "models", name + ".u2nc")
    if not os.path.exists(path):
        import convert
        import random_weights as RW
        os.makedirs(os.path.dirname(path), exist_ok=True)
        convert.write_model(convert.convert_state_dict(RW.random_state_dict(RW.U2NETP_STAGES, seed)),
                            path)
    return path


def workdir(name):
    """A fresh scratch folder for one test, under build/testwork."""
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    return tempfile.mkdtemp(prefix="t", dir=d)


_scratch = []


def scratch_dir(name):
    """A workdir that the @tidy test which made it removes when it passes or
    skips (and keeps, naming it, when it fails)."""
    d = workdir(name)
    _scratch.append(d)
    return d


def tidy(fn):
    def run_tidy():
        n = len(_scratch)
        try:
            fn()
        except Skip:
            remove_dirs(_scratch[n:])
            raise
        except BaseException:
            if _scratch[n:]:
                print("    scratch kept: %s" % " ".join(_scratch[n:]))
            raise
        remove_dirs(_scratch[n:])
    run_tidy.__name__, run_tidy.__doc__ = fn.__name__, fn.__doc__
    # tests/run.py orders tests by their first line
    run_tidy.__code__ = run_tidy.__code__.replace(co_firstlineno=fn.__code__.co_firstlineno)
    return run_tidy


def remove_dirs(dirs):
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def run(args, check=True, stdin=None, timeout=600, env=None):
    """Run a command; returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=env)
    p.stdout_text = p.stdout.decode("utf-8", "replace") if isinstance(p.stdout, bytes) else p.stdout
    p.stderr_text = p.stderr.decode("utf-8", "replace") if isinstance(p.stderr, bytes) else p.stderr
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(map(str, args)), p.returncode, p.stderr_text.strip()))
    return p


def run_tensor(model, x, sides=True, threads=None, extra=()):
    """Run `u2net tensor` on a 3xHxW float32 array; returns an NxHxW array:
    every output with sides (7 for U2Net, 6 for ISNet), else the first."""
    x = np.ascontiguousarray(x, dtype="<f4")
    assert x.ndim == 3 and x.shape[0] == 3
    h, w = x.shape[1:]
    d = workdir("tensor")
    try:
        inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
        x.tofile(inp)
        args = [U2NET, "tensor", "-m", model, "-i", inp, "--height", str(h), "--width", str(w), "-o", out]
        if sides:
            args.append("--sides")
        if threads:
            args += ["--threads", str(threads)]
        run(args + list(extra))
        y = np.fromfile(out, dtype="<f4")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert y.size % (h * w) == 0 and (sides or y.size == h * w), \
        "output has %d floats, not a whole number of %dx%d maps" % (y.size, h, w)
    return y.reshape(-1, h, w)


def assert_close(got, want, tol, what=""):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, "%s: shape %s != %s" % (what, got.shape, want.shape)
    assert np.all(np.isfinite(got)), "%s: non-finite values" % what
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    print("    %s max abs diff %.3g (tol %g)" % (what, err, tol))
    assert err <= tol, "%s: max abs diff %.3g > %g" % (what, err, tol)
    return err
