"""The statically linked program of `make static` ($U2NET_STATIC, set by
`make test-static`; skipped without it): an ELF with no interpreter and no
dynamic section, the goldens through it (the same bits as the dynamic
program), and a cutout with its built-in model in an empty chroot, with an
empty environment (the same bytes as the dynamic program's)."""
import os
import shutil
import struct
import subprocess

import numpy as np

import testlib
from testlib import Skip

import make_goldens as MG
import test_e2e as E

STATIC = os.environ.get("U2NET_STATIC", "")
SAMPLE = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")
PT_DYNAMIC, PT_INTERP = 2, 3

wd, tidy = testlib.scratch_dir, testlib.tidy


def need_static():
    if not STATIC:
        raise Skip("run by make test-static (U2NET_STATIC names the program)")
    assert os.path.exists(STATIC), "static program not built: %s (make static)" % STATIC


def program_header_types(path):
    """The p_type of every program header of a 64-bit little-endian ELF."""
    with open(path, "rb") as f:
        head = f.read(64)
        assert head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1, "%s: not a 64-bit LE ELF" % path
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return [struct.unpack_from("<I", table, i * phentsize)[0] for i in range(phnum)]


def test_statically_linked():
    """No program interpreter (ld.so) and no dynamic section: nothing is
    loaded at run time; its size is printed."""
    need_static()
    types = program_header_types(STATIC)
    assert PT_INTERP not in types, "%s asks for a program interpreter" % STATIC
    assert PT_DYNAMIC not in types, "%s has a dynamic section" % STATIC
    print("    %s: %d bytes, %d program headers, none dynamic" % (STATIC, os.path.getsize(STATIC), len(types)))


def test_goldens():
    """U2NetP and ISNet at 97x61 against the goldens, and the same bits as
    the dynamic program."""
    need_static()
    testlib.need_engine()
    for kind in ("u2netp", "isnet"):
        x, y = MG.load_golden(kind, 97, 61)
        model = E.random_model_file(kind)
        got = run_tensor(STATIC, model, x)
        E.compare_outputs(got, y, E.TOL, "%s 97x61 static program vs golden" % kind)
        dynamic = testlib.run_tensor(model, x, threads=2)
        ndiff = int(np.count_nonzero(got.view(np.uint32) != dynamic.view(np.uint32)))
        print("    %s 97x61 static vs dynamic program: %d differing floats" % (kind, ndiff))
        assert ndiff == 0, "%s: the static and dynamic programs differ in %d floats" % (kind, ndiff)


def run_tensor(program, model, x):
    """testlib.run_tensor with another program."""
    h, w = x.shape[1:]
    d = wd("static_tensor")
    inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
    np.ascontiguousarray(x, "<f4").tofile(inp)
    testlib.run([program, "tensor", "-m", model, "-i", inp, "--height", str(h), "--width", str(w),
                 "-o", out, "--sides", "--threads", "2"])
    return np.fromfile(out, "<f4").reshape(-1, h, w)


@tidy
def test_bare_system():
    """The program and photos alone in an empty folder made the root
    (chroot, as root), with an empty environment: it cuts the photos out
    with its built-in model (the generated sample and, when ../shared has
    it, a real photo), the same bytes as the dynamic program."""
    need_static()
    testlib.need_engine()
    photos = [SAMPLE]
    real = os.path.join(testlib.REAL_IMAGES, "horse.jpg")
    if os.path.exists(real):
        photos.append(real)
    root = wd("static_root")
    shutil.copy(STATIC, os.path.join(root, "u2net"))
    want_dir = wd("static_want")
    chroot = shutil.which("chroot")
    inside = os.geteuid() == 0 and chroot
    where = "an empty chroot" if inside else "its own folder (no chroot: not root, or no chroot program)"
    for i, photo in enumerate(photos):
        name = "photo%d%s" % (i, os.path.splitext(photo)[1])
        shutil.copy(photo, os.path.join(root, name))
        want = os.path.join(want_dir, "mask%d.png" % i)
        testlib.run([testlib.U2NET, photo, "-o", want, "-t", "mask"])
        if inside:
            cmd = [chroot, root, "/u2net", "/" + name, "-o", "/mask.png", "-t", "mask", "--overwrite"]
        else:
            cmd = [os.path.join(root, "u2net"), os.path.join(root, name), "-o",
                   os.path.join(root, "mask.png"), "-t", "mask", "--overwrite"]
        p = subprocess.run(cmd, env={"LD_LIBRARY_PATH": "/nonexistent"}, capture_output=True,
                           timeout=300)
        assert p.returncode == 0, "%s in %s exited %d: %s" % (
            STATIC, where, p.returncode, p.stderr.decode("utf-8", "replace"))
        with open(os.path.join(root, "mask.png"), "rb") as f, open(want, "rb") as g:
            assert f.read() == g.read(), "%s: the static program's mask differs from build/u2net's" % photo
        print("    in %s, empty environment: the mask of %s, the same bytes as build/u2net's"
              % (where, os.path.relpath(photo, testlib.ROOT)))
