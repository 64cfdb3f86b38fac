"""python -m u2net.dask_folder (README.md, "Many machines") on a local Dask
cluster of worker processes (Debian's python3-distributed): 200 small
generated images cut out by 1 and by 2 workers, every output bit for bit
against the single-process program's folder run with the same options
(images per second printed for both); a resumed run keeps what exists; a
bad image among good ones is one failure, the rest finish, exit 1.
"""
import os
import re
import sys
import time

import numpy as np

import testlib
from testlib import Skip

PACKAGE_SOURCE = os.path.join(testlib.ROOT, "python")
LIBRARY = os.path.join(testlib.BUILD, "libu2net.so")
IMAGES = 200
# small images at a small network size keep 200 of them to a few seconds
SMALL_NET = "64"


def need_dask():
    if testlib.SANITIZE:
        raise Skip("sanitizer build: ctypes cannot load it into Python")
    testlib.need_engine_and_pil()
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise Skip("Dask distributed not installed (python3-distributed)")
    assert os.path.exists(LIBRARY), "missing %s (run make)" % LIBRARY


def write_images(folder, n, seed):
    """n PNGs of about 64x48 (a disc over a gradient, with noise), named
    img000.png ..."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        h, w = 48 + i % 5, 64 - i % 7
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        disc = np.clip(14 - np.hypot(y - h * rng.uniform(0.3, 0.7), x - w * rng.uniform(0.3, 0.7)),
                       0, 1)[..., None]
        base = np.stack([x / w, y / h, np.full((h, w), 0.5)], -1) * 180
        rgb = base * (1 - disc) + rng.uniform(120, 255, 3) * disc + rng.normal(0, 6, (h, w, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, "img%03d.png" % i))


def dask_folder(src, dst, *args):
    env = dict(os.environ, U2NET_LIBRARY=LIBRARY,
               PYTHONPATH=os.pathsep.join([PACKAGE_SOURCE] + [p for p in [os.environ.get(
                   "PYTHONPATH")] if p]))
    return testlib.run([sys.executable, "-m", "u2net.dask_folder", src, dst, *args],
                       check=False, env=env, timeout=300)


def counts(p):
    m = re.search(r"done (\d+), failed (\d+), skipped (\d+) in [0-9.]+ s \(([0-9.]+) images/s",
                  p.stdout_text)
    assert m, "no summary line: %r %r" % (p.stdout_text, p.stderr_text)
    return tuple(int(v) for v in m.groups()[:3]), float(m.group(4))


def assert_same_files(want_dir, got_dir):
    want = sorted(os.listdir(want_dir))
    assert sorted(os.listdir(got_dir)) == want, (got_dir, sorted(os.listdir(got_dir))[:5], want[:5])
    for name in want:
        with open(os.path.join(want_dir, name), "rb") as a, open(os.path.join(got_dir, name), "rb") as b:
            assert a.read() == b.read(), "%s differs from the program's" % os.path.join(got_dir, name)


@testlib.tidy
def test_dask_folder_matches_program():
    """200 images on 1 and on 2 workers, each output the program's bytes."""
    need_dask()
    d = testlib.scratch_dir("dask")
    src = os.path.join(d, "in")
    write_images(src, IMAGES, 17)
    options = ["--size", SMALL_NET, "--threads", "1", "-t", "mask"]
    t0 = time.perf_counter()
    testlib.run([testlib.U2NET, "-q", src, "-o", os.path.join(d, "program") + "/"] + options)
    program_rate = IMAGES / (time.perf_counter() - t0)
    print("    program, one process: %.1f images/s (its start included)" % program_rate)
    for workers in (1, 2):
        out = os.path.join(d, "dask%d" % workers)
        p = dask_folder(src, out, "--workers", str(workers), *options)
        assert p.returncode == 0, (p.returncode, p.stderr_text)
        got, rate = counts(p)
        assert got == (IMAGES, 0, 0), got
        print("    dask, %d worker%s: %.1f images/s" % (workers, "s" if workers > 1 else "", rate))
        assert_same_files(os.path.join(d, "program"), out)


@testlib.tidy
def test_dask_folder_resumes():
    """Outputs already there are kept (skipped), the others written."""
    need_dask()
    d = testlib.scratch_dir("dask")
    src, out = os.path.join(d, "in"), os.path.join(d, "out")
    write_images(src, 12, 18)
    os.makedirs(out)
    kept = {"img003_rgba.png": b"an earlier run's", "img007_rgba.png": b"left alone"}
    for name, data in kept.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    p = dask_folder(src, out, "--workers", "2", "--size", SMALL_NET, "--threads", "1",
                    "--chunk", "3")
    assert p.returncode == 0, (p.returncode, p.stderr_text)
    assert counts(p)[0] == (10, 0, 2), p.stdout_text
    for name, data in kept.items():
        with open(os.path.join(out, name), "rb") as f:
            assert f.read() == data, name
    testlib.run([testlib.U2NET, "-q", src, "-o", os.path.join(d, "program") + "/",
                 "--size", SMALL_NET, "--threads", "1"])
    for name in os.listdir(os.path.join(d, "program")):
        if name not in kept:
            with open(os.path.join(d, "program", name), "rb") as a, \
                    open(os.path.join(out, name), "rb") as b:
                assert a.read() == b.read(), name


@testlib.tidy
def test_dask_folder_bad_image():
    """A truncated PNG among good ones: one failure naming it, the rest
    done, exit status 1."""
    need_dask()
    d = testlib.scratch_dir("dask")
    src, out = os.path.join(d, "in"), os.path.join(d, "out")
    write_images(src, 9, 19)
    bad = os.path.join(src, "img004.png")
    with open(bad, "rb") as f:
        head = f.read(100)
    with open(bad, "wb") as f:
        f.write(head)
    p = dask_folder(src, out, "--workers", "2", "--size", SMALL_NET, "--threads", "1",
                    "--chunk", "4")
    assert p.returncode == 1, (p.returncode, p.stdout_text, p.stderr_text)
    assert counts(p)[0] == (8, 1, 0), p.stdout_text
    lines = [line for line in p.stderr_text.splitlines() if line.startswith("u2net: ")]
    assert len(lines) == 1 and bad in lines[0], p.stderr_text
    assert "Traceback" not in p.stderr_text, p.stderr_text
    assert sorted(os.listdir(out)) == ["img%03d_rgba.png" % i for i in range(9) if i != 4]
