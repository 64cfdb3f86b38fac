"""The Python package python/u2net over build/libu2net.so (README.md,
Python): its structs against engine/u2net.h (a C program prints every size
and offset); remove() on bytes, PIL images and numpy arrays against the
program's files bit for bit (rgba, mask, composite for bgcolor, alpha
matting, post_process_mask, guided) on generated images and the shared
photos, with rembg's return types; strided arrays; threads sharing a
Session; the matte, render and raw network against the program; files by
path; bad input, each a clear exception; a fork child; and `pip install`
of the package into a virtual environment (BUILD/python-venv, made once
from PyPI with the first python3 on PATH), whose installed copy, carrying
the library, gives the same bytes.

Run as `python tests/test_python.py installed WORK` it is the check the
virtual environment's interpreter runs on the installed package.
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np

import testlib
from testlib import Skip

PACKAGE_SOURCE = os.path.join(testlib.ROOT, "python")
LIBRARY = os.path.join(testlib.BUILD, "libu2net.so")
VENV = os.path.join(testlib.BUILD, "python-venv")
VENV_PACKAGES = ["numpy", "pillow", "setuptools>=61", "wheel"]
PHOTOS = ("rifle2.jpeg", "girl.png", "long.jpg")
# the generated images run at a small network size, to keep the test short
SMALL_NET = 96
BG_RGB = (0x33, 0x66, 0xaa)


def package():
    """The package of the tree on BUILD's library."""
    if testlib.SANITIZE:
        raise Skip("sanitizer build: ctypes cannot load it into Python")
    testlib.need_engine_and_pil()
    assert os.path.exists(LIBRARY), "missing %s (run make)" % LIBRARY
    os.environ["U2NET_LIBRARY"] = LIBRARY
    if PACKAGE_SOURCE not in sys.path:
        sys.path.insert(0, PACKAGE_SOURCE)
    import u2net
    assert os.path.dirname(u2net.__file__) == os.path.join(PACKAGE_SOURCE, "u2net"), u2net.__file__
    return u2net


def smooth_image(rng, h, w, channels):
    """A lit disc over a gradient with some noise: a subject the network finds."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx, r = h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65), min(h, w) * 0.3
    disc = np.clip(r - np.hypot(y - cy, x - cx), 0, 1)[..., None]
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), np.full((h, w), 0.5)], -1) * 180
    subject = np.array(rng.uniform(120, 255, 3))
    rgb = base * (1 - disc) + subject * disc + rng.normal(0, 6, (h, w, 3))
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if channels == 1:
        return rgb.mean(-1).astype(np.uint8)
    if channels == 2:
        return np.dstack([rgb.mean(-1).astype(np.uint8), np.where(x < w * 0.9, 255, 40)
                          .astype(np.uint8)])
    if channels == 4:
        return np.dstack([rgb, np.where(y < h * 0.85, 255, 0).astype(np.uint8)])
    return rgb


def write_generated(folder):
    """Images of every channel count, PNG and JPEG (one with an EXIF
    rotation), 1x1 to 300x20; their names."""
    from PIL import Image
    rng = np.random.default_rng(17)
    os.makedirs(folder, exist_ok=True)
    specs = [("gray", 53, 37, 1), ("grayalpha", 40, 64, 2), ("rgb", 90, 120, 3),
             ("rgba", 75, 100, 4), ("tiny", 1, 1, 3), ("tall", 300, 20, 3)]
    names = []
    for name, h, w, c in specs:
        Image.fromarray(smooth_image(rng, h, w, c)).save(os.path.join(folder, name + ".png"))
        names.append(name + ".png")
    photo = Image.fromarray(smooth_image(rng, 61, 97, 3))
    photo.save(os.path.join(folder, "photo.jpg"), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    photo.save(os.path.join(folder, "rotated.jpg"), quality=90, exif=exif)
    return names + ["photo.jpg", "rotated.jpg"]


def run_cli(inputs, out, args):
    testlib.run([testlib.U2NET] + inputs + ["-o", out + "/", "-q"] + list(args))


def cli_bytes(out, name, kind):
    with open(os.path.join(out, "%s_%s.png" % (os.path.splitext(name)[0], kind)), "rb") as f:
        return f.read()


def over_formula(rgba, colour):
    """rembg's bgc as test_serve checks u2net serve's: the "over" formula."""
    cut = rgba.astype(np.int64)
    a, A = cut[..., 3], colour[3]
    below = A * (255 - a)
    total = a * 255 + below
    want = np.zeros_like(cut)
    for c in range(3):
        want[..., c] = np.where(total > 0, (cut[..., c] * a * 255 + colour[c] * below + total // 2)
                                // np.maximum(total, 1), 0)
    want[..., 3] = (total + 127) // 255
    return want.astype(np.uint8)


# ---- the structs ----

def test_struct_layouts():
    """Every size and offset of the package's ctypes structs is the header's."""
    u2net = package()
    from u2net import library as L
    import ctypes
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "u2net.h"',
             'int main(void) {']
    want = []
    for cname, struct in L.MIRRORS.items():
        lines.append('printf("%%s %%zu\\n", "%s", sizeof(%s));' % (cname, cname))
        want.append("%s %d" % (cname, ctypes.sizeof(struct)))
        for field, ftype in struct._fields_:
            lines.append('printf("%%s.%%s %%zu %%zu\\n", "%s", "%s", offsetof(%s, %s), '
                         'sizeof(((%s *)0)->%s));' % (cname, field, cname, field, cname, field))
            want.append("%s.%s %d %d" % (cname, field, getattr(struct, field).offset,
                                         ctypes.sizeof(ftype)))
    for enum in ("u2net_device", "u2net_isa", "u2net_scale", "u2net_resize_back",
                 "u2net_resize_filter", "u2net_morph", "u2net_foreground", "u2net_highlight",
                 "u2net_output_type", "u2net_file_format"):
        lines.append('printf("%%s %%zu\\n", "%s", sizeof(%s));' % (enum, enum))
        want.append("%s %d" % (enum, ctypes.sizeof(ctypes.c_int)))
    lines.append("return 0; }")
    d = testlib.scratch_dir("python_layout")
    src, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
    with open(src, "w") as f:
        f.write("\n".join(lines) + "\n")
    testlib.run(["cc", "-std=c11", "-Wall", "-Werror", "-I", os.path.join(testlib.ROOT, "engine"),
                 "-o", exe, src])
    got = testlib.run([exe]).stdout_text.split("\n")[:-1]
    bad = [(g, w) for g, w in zip(got, want) if g != w]
    assert len(got) == len(want) and not bad, "header (C) against ctypes: %s" % bad
    print("    %d sizes and offsets agree" % len(want))
    with open(os.path.join(testlib.ROOT, "engine", "u2net.h")) as f:
        header_version = [line.split('"')[1] for line in f if "U2NET_VERSION_STRING" in line][0]
    with open(os.path.join(PACKAGE_SOURCE, "pyproject.toml")) as f:
        project_version = [line.split('"')[1] for line in f if line.startswith("version")][0]
    assert u2net.__version__ == header_version == project_version, \
        (u2net.__version__, header_version, project_version)


# ---- against the program ----

def check_against_cli(u2net, folder, names, out, extra_cli, extra_py, alpha_matting_names):
    """remove() on each file's bytes against the program's outputs in out/."""
    from PIL import Image
    s = u2net.Session()
    rgba_cli = {}
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        want = cli_bytes(out["plain"], name, "rgba")
        assert u2net.remove(data, session=s, **extra_py) == want, name + ": rgba"
        assert u2net.remove(data, session=s, only_mask=True, **extra_py) == \
            cli_bytes(out["plain"], name, "mask"), name + ": only_mask"
        rgba_cli[name] = np.asarray(Image.open(io.BytesIO(want)))
        # bgcolor: opaque is the program's composite, alpha 255; else the over formula
        opaque = u2net.decode(u2net.remove(data, session=s, bgcolor=BG_RGB + (255,), **extra_py))
        composite = u2net.decode(cli_bytes(out["plain"], name, "composite"))
        assert np.array_equal(opaque[..., :3], composite) and (opaque[..., 3] == 255).all(), name
        half = u2net.remove(u2net.decode(data), session=s, bgcolor=(255, 0, 0, 128), **extra_py)
        assert np.array_equal(half, over_formula(rgba_cli[name], (255, 0, 0, 128))), name
        assert u2net.remove(data, session=s, post_process_mask=True, **extra_py) == \
            cli_bytes(out["ppm"], name, "rgba"), name + ": post_process_mask"
        assert u2net.remove(data, session=s, post_process_mask=True, only_mask=True,
                            **extra_py) == cli_bytes(out["ppm"], name, "mask"), name
        assert u2net.remove(data, session=s, guided=True, **extra_py) == \
            cli_bytes(out["guided"], name, "rgba"), name + ": guided"
    for name in alpha_matting_names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        got = u2net.remove(data, True, 230, 20, 5, s, **extra_py)  # rembg's positions
        assert got == cli_bytes(out["matting"], name, "rgba"), name + ": alpha matting"
    s.close()
    return rgba_cli


def cli_outputs(folder, names, d, extra, matting_names):
    out = {k: os.path.join(d, k) for k in ("plain", "ppm", "guided", "matting")}
    inputs = [os.path.join(folder, n) for n in names]
    run_cli(inputs, out["plain"], ["-t", "rgba,mask,composite", "--background",
                                   "#%02x%02x%02x" % BG_RGB] + extra)
    run_cli(inputs, out["ppm"], ["-t", "rgba,mask", "--morph", "open", "--alpha", "mask"] + extra)
    run_cli(inputs, out["guided"], ["--guided"] + extra)
    run_cli([os.path.join(folder, n) for n in matting_names], out["matting"],
            ["--alpha-matting", "--fg-threshold", "230", "--bg-threshold", "20", "--erode-size",
             "5"] + extra)
    return out


@testlib.tidy
def test_remove_against_cli_generated():
    """remove() on bytes of generated images (1-4 channels, PNG, JPEG, EXIF
    rotation, 1x1) gives the program's files byte for byte, every option."""
    u2net = package()
    d = testlib.scratch_dir("python_cli")
    folder = os.path.join(d, "in")
    names = write_generated(folder)
    extra = ["--size", str(SMALL_NET)]
    out = cli_outputs(folder, names, d, extra, ["rgb.png", "rgba.png", "rotated.jpg"])
    check_against_cli(u2net, folder, names, out, extra, {"size": SMALL_NET},
                      ["rgb.png", "rgba.png", "rotated.jpg"])
    print("    %d images, 8 outputs each" % len(names))


@testlib.tidy
def test_remove_against_cli_photos():
    """The same on the shared photos at the model's own size."""
    u2net = package()
    folder = testlib.REAL_IMAGES
    names = [n for n in PHOTOS if os.path.exists(os.path.join(folder, n))]
    if not names:
        raise Skip("no shared photos in %s" % folder)
    d = testlib.scratch_dir("python_photos")
    out = cli_outputs(folder, names, d, [], names[:1])
    check_against_cli(u2net, folder, names, out, [], {}, names[:1])
    print("    %s" % ", ".join(names))


@testlib.tidy
def test_rembg_types():
    """bytes in, PNG bytes out; PIL in, PIL out (RGBA, L for the mask);
    numpy in, numpy out (HxWx4, HxW); force_return_bytes; new_session;
    the PIL path upright by EXIF as rembg; all the program's pixels."""
    u2net = package()
    from PIL import Image, ImageOps
    d = testlib.scratch_dir("python_types")
    folder = os.path.join(d, "in")
    names = write_generated(folder)
    run_cli([os.path.join(folder, n) for n in names], os.path.join(d, "out"),
            ["-t", "rgba,mask", "--size", str(SMALL_NET)])
    session = u2net.new_session("u2netp")
    for name in names:
        path = os.path.join(folder, name)
        want = u2net.decode(cli_bytes(os.path.join(d, "out"), name, "rgba"))
        want_mask = u2net.decode(cli_bytes(os.path.join(d, "out"), name, "mask"))
        pixels = u2net.decode(open(path, "rb").read())
        got = u2net.remove(pixels, session=session, size=SMALL_NET)
        assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and np.array_equal(got, want)
        got = u2net.remove(pixels, session=session, only_mask=True, size=SMALL_NET)
        assert got.shape == pixels.shape[:2] and np.array_equal(got, want_mask), name
        got = u2net.remove(pixels, session=session, size=SMALL_NET, force_return_bytes=True)
        assert got == cli_bytes(os.path.join(d, "out"), name, "rgba"), name
        if name.endswith(".png"):  # PIL decodes PNG as the library does
            pil = Image.open(path)
            got = u2net.remove(pil, session=session, size=SMALL_NET)
            assert isinstance(got, Image.Image) and got.mode == "RGBA", (name, got)
            assert np.array_equal(np.asarray(got), want), name
            got = u2net.remove(pil, session=session, only_mask=True, size=SMALL_NET)
            assert got.mode == "L" and np.array_equal(np.asarray(got), want_mask), name
    # PIL: upright by the EXIF orientation, as rembg's remove
    rotated = Image.open(os.path.join(folder, "rotated.jpg"))
    got = u2net.remove(rotated, session=session, size=SMALL_NET)
    upright = np.asarray(ImageOps.exif_transpose(rotated))
    assert got.size == (upright.shape[1], upright.shape[0]) == (61, 97), got.size
    assert np.array_equal(np.asarray(got), u2net.remove(upright, session=session, size=SMALL_NET))
    # other PIL modes are converted: P with and without transparency, 1, CMYK
    rgb = np.asarray(Image.open(os.path.join(folder, "rgb.png")))
    for mode, image in (("P", Image.fromarray(rgb).convert("P")),
                        ("1", Image.fromarray(rgb).convert("1")),
                        ("CMYK", Image.fromarray(rgb).convert("CMYK"))):
        got = u2net.remove(image, session=session, size=SMALL_NET)
        conv = image.convert("L" if mode == "1" else "RGB")
        assert np.array_equal(np.asarray(got), u2net.remove(np.asarray(conv), session=session,
                                                            size=SMALL_NET)), mode
    # bytes-like inputs, and the default session of the built-in model
    data = open(os.path.join(folder, "rgb.png"), "rb").read()
    assert u2net.remove(bytearray(data), size=SMALL_NET) == u2net.remove(memoryview(data),
                                                                         size=SMALL_NET)
    assert u2net.remove(data, size=SMALL_NET) == u2net.remove(data, session=session,
                                                              size=SMALL_NET)
    assert u2net.remove(data, putalpha=True, size=SMALL_NET) == u2net.remove(data, size=SMALL_NET)
    predicted = session.predict(Image.open(os.path.join(folder, "rgb.png")))
    assert len(predicted) == 1 and predicted[0].mode == "L"
    session.close()


@testlib.tidy
def test_strided_arrays():
    """Views that are not C-contiguous (flipped, stepped, transposed,
    Fortran order, read-only) are copied, never misread; HxWx1 is HxW."""
    u2net = package()
    rng = np.random.default_rng(3)
    base = smooth_image(rng, 70, 90, 3)
    with u2net.Session() as s:
        def same(view, what):
            got = u2net.remove(view, session=s, size=SMALL_NET)
            want = u2net.remove(np.array(view, order="C"), session=s, size=SMALL_NET)
            assert np.array_equal(got, want), what
        same(base[:, ::-1], "flipped")
        same(base[::2, 1::3], "stepped")
        same(base.transpose(1, 0, 2), "transposed")
        same(np.asfortranarray(base), "Fortran order")
        same(np.dstack([base[..., 2], base[..., 1], base[..., 0]]), "channels from planes")
        same(base[..., ::-1], "channels reversed")
        frozen = base.copy()
        frozen.setflags(write=False)
        same(frozen, "read-only")
        gray = base.mean(-1).astype(np.uint8)
        assert np.array_equal(u2net.remove(gray[..., None], session=s, size=SMALL_NET),
                              u2net.remove(gray, session=s, size=SMALL_NET))


@testlib.tidy
def test_threads_share_a_session():
    """Six threads on one Session, images of different sizes, twice each:
    the results of sequential calls, bit for bit; a context per thread."""
    u2net = package()
    rng = np.random.default_rng(5)
    imgs = [smooth_image(rng, 30 + 11 * i, 45 + 7 * i, 3 if i % 2 else 4) for i in range(12)]
    with u2net.Session(threads=1) as s:
        want = [u2net.remove(a, session=s, size=SMALL_NET) for a in imgs]
        got = [None] * len(imgs)
        errors = []
        start = threading.Barrier(6)

        def work(k):
            try:
                start.wait()
                for rep in range(2):
                    for i in range(k, len(imgs), 6):
                        got[i] = u2net.remove(imgs[i], session=s, size=SMALL_NET)
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))
        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
        contexts = len(s._idle)
        print("    %d contexts made for 6 threads" % contexts)
        assert 1 < contexts <= 6, contexts


@testlib.tidy
def test_matte_render_and_network():
    """Session.matte's maps and box are the program's prob, mask and bbox;
    render() is its composite and highlight; Session.run is u2net tensor's
    outputs bit for bit, one image and a batch."""
    u2net = package()
    d = testlib.scratch_dir("python_matte")
    folder = os.path.join(d, "in")
    names = write_generated(folder)[:4]
    run_cli([os.path.join(folder, n) for n in names], os.path.join(d, "out"),
            ["-t", "prob,mask,bbox,composite,highlight", "--background", "#%02x%02x%02x" % BG_RGB,
             "--highlight", "blur", "--size", str(SMALL_NET)])
    out = os.path.join(d, "out")
    with u2net.Session() as s:
        for name in names:
            data = open(os.path.join(folder, name), "rb").read()
            m = s.matte(data, size=SMALL_NET)
            stem = os.path.splitext(name)[0]
            assert np.array_equal(m.prob, u2net.decode(cli_bytes(out, name, "prob"))), name
            assert np.array_equal(m.mask, u2net.decode(cli_bytes(out, name, "mask"))), name
            box = json.load(open(os.path.join(out, stem + "_bbox.json")))
            want = box["bbox"] and (box["bbox"]["x"], box["bbox"]["y"], box["bbox"]["w"],
                                    box["bbox"]["h"])
            assert m.bbox == (want or None) and m.area == box["area"], (name, m.bbox, box)
            assert np.array_equal(u2net.render(data, m, "composite", background=BG_RGB),
                                  u2net.decode(cli_bytes(out, name, "composite"))), name
            assert np.array_equal(u2net.render(data, m, "highlight", highlight="blur"),
                                  u2net.decode(cli_bytes(out, name, "highlight"))), name
        assert s.matte(data, size=SMALL_NET, alpha_matting=True).foreground is not None
        x = np.random.default_rng(9).normal(0, 1, (2, 3, 37, 29)).astype(np.float32)
        y = s.run(x)
        assert y.shape == (2, s.info["outputs"], 37, 29) and y.dtype == np.float32
        assert np.array_equal(s.run(x[1]), y[1])
        want = testlib.run_tensor("u2netp", x[0])
        assert np.array_equal(y[0], want), np.abs(y[0] - want).max()


@testlib.tidy
def test_files_by_path():
    """remove_file: the program's bytes, done / skipped / exists / overwrite,
    never over its input, new folders, JPEG for the mask only, bad files
    named; remove_many reports each file and goes on."""
    u2net = package()
    d = testlib.scratch_dir("python_files")
    folder = os.path.join(d, "in")
    names = write_generated(folder)[:3]
    run_cli([os.path.join(folder, n) for n in names], os.path.join(d, "cli"),
            ["-t", "rgba,mask", "--size", str(SMALL_NET)])
    opts = dict(threads=1, size=SMALL_NET)
    for name in names:
        src = os.path.join(folder, name)
        dst = os.path.join(d, "py", "sub", name + ".png")
        assert u2net.remove_file(src, dst, **opts) == "done"
        assert open(dst, "rb").read() == cli_bytes(os.path.join(d, "cli"), name, "rgba"), name
        assert u2net.remove_file(src, dst, skip_existing=True, **opts) == "skipped"
        try:
            u2net.remove_file(src, dst, **opts)
            raise AssertionError("an existing output was replaced")
        except u2net.U2netError as e:
            assert "exists" in str(e) and dst in str(e), e
        mask = os.path.join(d, "py", name + ".mask.png")
        assert u2net.remove_file(src, mask, only_mask=True, **opts) == "done"
        assert u2net.remove_file(src, mask, only_mask=True, overwrite=True, **opts) == "done"
        assert open(mask, "rb").read() == cli_bytes(os.path.join(d, "cli"), name, "mask"), name
    src = os.path.join(folder, names[0])
    before = open(src, "rb").read()
    for dst, why in ((src, "is the input"), (os.path.join(d, "x.jpg"), "JPEG cannot hold alpha"),
                     (os.path.join(d, "x.tif"), "unknown image extension")):
        try:
            u2net.remove_file(src, dst, overwrite=True, **opts)
            raise AssertionError("%s: written" % dst)
        except u2net.U2netError as e:
            assert why in str(e) and dst in str(e), e
    assert open(src, "rb").read() == before
    assert u2net.remove_file(src, os.path.join(d, "m.jpg"), only_mask=True, **opts) == "done"
    bad = {"empty.png": b"", "text.png": b"not an image at all\n" * 10,
           "cut.png": before[:len(before) // 2]}
    for name, data in bad.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    jobs = [(os.path.join(d, n), os.path.join(d, "many", n)) for n in bad]
    jobs += [(os.path.join(folder, names[1]), os.path.join(d, "many", "good.png")),
             (os.path.join(d, "missing.png"), os.path.join(d, "many", "missing.png"))]
    results = u2net.remove_many(jobs, **opts)
    for (src, dst, result, message), want in zip(results, ("empty file", "not an image",
                                                           "cannot decode", "", "cannot read")):
        assert (result == "done") == (want == "") and want in message and (
            not message or src in message), (src, result, message)
        assert os.path.exists(dst) == (result == "done"), dst
    leftovers = [n for n in os.listdir(os.path.join(d, "many")) if n.startswith(".")]
    assert not leftovers, leftovers


def expect(exc_type, words, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc_type as e:
        msg = str(e)
        assert all(w in msg for w in words) and "\n" not in msg, (words, msg)
        return msg
    raise AssertionError("no %s for %r" % (exc_type.__name__, words))


def test_bad_input():
    """Arrays of the wrong dtype, shape or size, bad bytes, unknown options
    and bad values, a closed Session, an unknown model: each a clear
    exception of one line, and the session still works after them."""
    u2net = package()
    s = u2net.Session()
    ok = np.zeros((20, 30, 3), np.uint8)
    remove = u2net.remove
    for a, words in ((ok.astype(np.float32), ["float32", "uint8"]),
                     (ok.astype(np.int16), ["int16"]), (ok.astype(bool), ["bool"]),
                     (ok.astype(np.uint16), ["uint16"])):
        expect(TypeError, words, remove, a, session=s)
    for a in (np.zeros((20, 30, 5), np.uint8), np.zeros(30, np.uint8),
              np.zeros((2, 20, 30, 3), np.uint8), np.zeros((20, 30, 0), np.uint8)):
        expect(ValueError, ["shape %s" % (a.shape,)], remove, a, session=s)
    expect(ValueError, ["empty", "0x20"], remove, np.zeros((20, 0, 3), np.uint8), session=s)
    expect(ValueError, ["over the limit"], remove, np.lib.stride_tricks.as_strided(
        np.zeros(1, np.uint8), (70000, 2), (0, 0)), session=s)
    expect(TypeError, ["list"], remove, [[1, 2], [3, 4]], session=s)
    expect(TypeError, ["str"], remove, "photo.jpg", session=s)
    expect(u2net.U2netError, ["empty"], remove, b"", session=s)
    expect(u2net.U2netError, ["not an image"], remove, b"plain text, no picture" * 3, session=s)
    expect(u2net.U2netError, ["8255x28526", "over the limit"], remove, b"GIF89a? no" * 3, session=s)
    png = u2net.encode(smooth_image(np.random.default_rng(1), 40, 40, 3))
    expect(u2net.U2netError, ["cannot decode"], remove, png[:60], session=s)
    expect(TypeError, ["unknown option 'providers'", "size"], remove, ok, session=s,
           providers=["CPU"])
    expect(TypeError, ["unknown option 'alpha_matting_foo'"], remove, ok, alpha_matting_foo=1)
    expect(TypeError, ["unknown option 'matting_fg_threshold'"], remove, ok,
           matting_fg_threshold=200)
    expect(TypeError, ["positional"], remove, ok, False, 240, 10, 10, s, False, False, None,
           False, "extra")
    expect(ValueError, ["alpha_matting_foreground_threshold 300", "0..255"], remove, ok,
           alpha_matting=True, alpha_matting_foreground_threshold=300, session=s)
    expect(ValueError, ["alpha_matting_erode_size"], remove, ok, alpha_matting=True,
           alpha_matting_erode_size=2 ** 40, session=s)
    expect(u2net.U2netError, ["erode"], remove, ok, alpha_matting=True,
           alpha_matting_erode_size=5000, session=s)
    expect(u2net.U2netError, ["bg <= fg"], remove, ok, alpha_matting=True,
           alpha_matting_foreground_threshold=10, alpha_matting_background_threshold=200,
           session=s)
    expect(TypeError, ["alpha_matting", "True or False"], remove, ok, alpha_matting="false")
    expect(TypeError, ["bgcolor"], remove, ok, bgcolor="white", session=s)
    expect(ValueError, ["bgcolor 256"], remove, ok, bgcolor=(256, 0, 0, 0), session=s)
    expect(TypeError, ["size"], remove, ok, size=(1, 2, 3), session=s)
    expect(ValueError, ["size 0"], remove, ok, size=0, session=s)
    expect(ValueError, ["threshold", "finite"], remove, ok, threshold=float("nan"), session=s)
    expect(u2net.U2netError, ["threshold 2"], remove, ok, threshold=2.0, session=s)
    expect(ValueError, ["morph", "open-close"], remove, ok, morph="erode", session=s)
    expect(ValueError, ["post_process_mask"], remove, ok, post_process_mask=True, morph="close",
           session=s)
    expect(ValueError, ["mean and std"], remove, ok, mean=(0.5, 0.5, 0.5), session=s)
    expect(TypeError, ["session", "str"], remove, ok, session="u2netp")
    expect(ValueError, ["not the session's"], remove, ok, session=s, model="other.onnx")
    expect(u2net.U2netError, ["'nosuchmodel' not found", "nosuchmodel.onnx"], u2net.Session,
           "nosuchmodel")
    expect(u2net.U2netError, ["/nonexistent/m.onnx"], u2net.Session, "/nonexistent/m.onnx")
    expect(ValueError, ["threads 2000"], u2net.Session, threads=2000)
    expect(ValueError, ["device", "cuda"], u2net.Session, device="tpu")
    expect(TypeError, ["float64", "float32"], s.run, np.zeros((3, 8, 8)))
    expect(ValueError, ["shape (4, 8, 8)"], s.run, np.zeros((4, 8, 8), np.float32))
    expect(ValueError, ["shape (3, 0, 8)"], s.run, np.zeros((3, 0, 8), np.float32))
    expect(u2net.U2netError, ["9000"], s.run, np.zeros((3, 9000, 1), np.float32))
    m = s.matte(ok)
    expect(ValueError, ["type 'bbox'"], u2net.render, ok, m, "bbox")
    expect(ValueError, ["alpha", "(20, 30)"], u2net.render, ok, m._replace(alpha=m.alpha[:5]))
    expect(ValueError, ["highlight"], u2net.render, ok, m, "highlight", highlight="sepia")
    expect(ValueError, ["format"], u2net.encode, ok, "webp")
    expect(u2net.U2netError, ["JPEG cannot hold alpha"], u2net.encode,
           np.zeros((4, 4, 4), np.uint8), "jpg")
    assert u2net.remove(ok, session=s).shape == (20, 30, 4)
    s.close()
    s.close()
    for fn, args in ((remove, (ok,)), (s.matte, (ok,)), (s.run, (np.zeros((3, 8, 8), np.float32),)),
                     (s.predict, (ok,)), (lambda: s.threads, ())):
        kw = {"session": s} if fn is remove else {}
        expect(ValueError, ["closed"], fn, *args, **kw)


def test_close_while_running():
    """close() from another thread while a call runs: the call finishes,
    later calls raise, the model is freed once the call returns."""
    u2net = package()
    s = u2net.Session(threads=1)
    big = smooth_image(np.random.default_rng(2), 300, 300, 3)
    result = {}

    def work():
        result["mask"] = u2net.remove(big, session=s, size=640, only_mask=True)
    t = threading.Thread(target=work)
    t.start()
    while s._busy == 0 and t.is_alive():
        pass
    s.close()
    t.join()
    assert result["mask"].shape == (300, 300)
    assert s._model is None and not s._idle
    expect(ValueError, ["closed"], u2net.remove, big, session=s)


def test_fork_child():
    """A process forked after the library's threads ran: its runs use one
    thread (libgomp cannot start threads there; the child would hang) with
    one warning, and give the parent's results; no hang."""
    package()
    script = (
        "import os, sys, warnings, numpy as np\n"
        "import u2net\n"
        "a = np.zeros((40, 50, 3), np.uint8); a[10:30, 15:35] = 200\n"
        "s = u2net.Session(threads=2)\n"
        "want = u2net.remove(a, session=s)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    with warnings.catch_warnings(record=True) as w:\n"
        "        warnings.simplefilter('always')\n"
        "        ok = np.array_equal(u2net.remove(a, session=s), want)\n"
        "        ok = ok and np.array_equal(u2net.remove(a, session=u2net.Session()), want)\n"
        "        ok = ok and s.threads == 1 and len(w) == 1 and 'forked' in str(w[0].message)\n"
        "    os._exit(0 if ok else 3)\n"
        "print('child exit', os.waitpid(pid, 0)[1] >> 8)\n")
    env = dict(os.environ, PYTHONPATH=PACKAGE_SOURCE, U2NET_LIBRARY=LIBRARY)
    p = testlib.run([sys.executable, "-c", script], env=env, timeout=120)
    assert p.stdout_text.strip() == "child exit 0", p.stdout_text + p.stderr_text


def test_library_lookup():
    """U2NET_LIBRARY that cannot be loaded is one clear error, no fallback;
    without it the tree's package finds the tree's build (when BUILD is it)."""
    package()
    env = dict(os.environ, PYTHONPATH=PACKAGE_SOURCE, U2NET_LIBRARY="/nonexistent/libu2net.so")
    p = testlib.run([sys.executable, "-c", "import u2net; u2net.Session()"], env=env, check=False)
    last = p.stderr_text.strip().splitlines()[-1]
    assert p.returncode == 1 and "LibraryNotFound: U2NET_LIBRARY=/nonexistent/libu2net.so" \
        in last, p.stderr_text
    if os.path.realpath(testlib.BUILD) == os.path.realpath(os.path.join(testlib.ROOT, "build")):
        env.pop("U2NET_LIBRARY")
        p = testlib.run([sys.executable, "-c", "import u2net; print(u2net.library_path())"],
                        env=env)
        assert os.path.realpath(p.stdout_text.strip()) == os.path.realpath(LIBRARY), p.stdout_text


# ---- the installed package ----

def venv_python():
    """(BUILD/python-venv's Python with numpy, Pillow and setuptools, made
    when missing from PyPI with the first python3 on PATH; whether it was
    made now)."""
    python = os.path.join(VENV, "bin", "python")

    def usable():
        return os.path.exists(python) and subprocess.run(
            [python, "-c", "import numpy, PIL, setuptools"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0
    if usable():
        return python, False
    creator = shutil.which("python3")
    if not creator:
        raise Skip("no python3 on PATH to make %s with" % VENV)
    print("    making %s (pip install %s)" % (VENV, " ".join(VENV_PACKAGES)), flush=True)
    for cmd in ([creator, "-m", "venv", "--clear", VENV],
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                + VENV_PACKAGES):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        if p.returncode != 0:
            last = (p.stdout.strip().splitlines() or ["no output"])[-1]
            raise Skip("cannot make %s (%s): %s" % (VENV, " ".join(os.path.basename(c)
                                                                  for c in cmd[:3]), last))
    if not usable():
        raise Skip("%s cannot import numpy, PIL and setuptools" % VENV)
    return python, True


def source_digest():
    """Of the package's sources and the library: what the venv holds."""
    h = hashlib.sha256()
    for folder, dirs, files in os.walk(PACKAGE_SOURCE):
        dirs[:] = sorted(x for x in dirs if x not in ("build", "__pycache__")
                         and not x.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".py", ".toml")):
                h.update(name.encode())
                h.update(open(os.path.join(folder, name), "rb").read())
    h.update(open(LIBRARY, "rb").read())
    return h.hexdigest()


@testlib.tidy
def test_installed_package():
    """pip install of python/ with the library copied in (as `make python`
    does) into BUILD/python-venv; the installed package, with no
    U2NET_LIBRARY, loads its own copy and gives the program's bytes, PIL
    and numpy results."""
    package()
    python, fresh = venv_python()
    marker = os.path.join(VENV, "u2net-installed.sha256")
    digest = source_digest()
    if fresh or not os.path.exists(marker) or open(marker).read() != digest:
        stage = os.path.join(testlib.scratch_dir("python_stage"), "python")
        shutil.copytree(PACKAGE_SOURCE, stage, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__", "libu2net.so"))
        shutil.copy(LIBRARY, os.path.join(stage, "u2net", "libu2net.so"))
        # a new venv gets the plain `pip install ./python`; a reinstall uses the
        # build backend already in the venv, so that it needs no network
        again = [] if fresh else ["--no-build-isolation", "--no-deps", "--force-reinstall"]
        testlib.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                    + again + [stage])
        with open(marker, "w") as f:
            f.write(digest)
    d = testlib.scratch_dir("python_installed")
    folder = os.path.join(d, "in")
    names = write_generated(folder)
    run_cli([os.path.join(folder, n) for n in names], os.path.join(d, "out"),
            ["-t", "rgba,mask", "--size", str(SMALL_NET)])
    env = {k: v for k, v in os.environ.items() if k not in ("U2NET_LIBRARY", "PYTHONPATH")}
    p = testlib.run([python, os.path.abspath(__file__), "installed", d], env=env, timeout=300)
    print("    " + p.stdout_text.strip().replace("\n", "\n    "))


def installed_check(d):
    """In the venv: the installed package against the program's files in d."""
    import u2net
    from PIL import Image
    here = os.path.dirname(os.path.abspath(u2net.__file__))
    assert "site-packages" in here, here
    assert u2net.library_path() == os.path.join(here, "libu2net.so"), u2net.library_path()
    folder, out = os.path.join(d, "in"), os.path.join(d, "out")
    names = sorted(n for n in os.listdir(folder))
    for name in names:
        data = open(os.path.join(folder, name), "rb").read()
        assert u2net.remove(data, size=SMALL_NET) == cli_bytes(out, name, "rgba"), name
        assert u2net.remove(data, only_mask=True, size=SMALL_NET) == cli_bytes(out, name, "mask")
        want = np.asarray(Image.open(io.BytesIO(cli_bytes(out, name, "rgba"))))
        assert np.array_equal(u2net.remove(u2net.decode(data), size=SMALL_NET), want), name
        if name.endswith(".png"):
            got = u2net.remove(Image.open(os.path.join(folder, name)), size=SMALL_NET)
            assert got.mode == "RGBA" and np.array_equal(np.asarray(got), want), name
    print("installed %s, library %s: %d images as the program" % (here, u2net.library_path(),
                                                                  len(names)))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "installed":
        installed_check(sys.argv[2])
    else:
        sys.exit("usage: test_python.py installed WORK (tests/run.py runs the tests)")
