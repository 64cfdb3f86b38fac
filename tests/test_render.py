"""u2net_matte_from_prob and u2net_render (build/libu2net.so through ctypes)
against the numpy reference tests/reference/pipeline_ref.py.

Tolerances: exact equality for everything computed in integers (prob, mask,
refine, morphology, largest component, alpha_from_mask, bbox, area, crop,
rgba, rgb, composite over a colour); at most 1 grey level for what is
computed in floating point (feather, composite over an image, highlight).
"""
import ctypes as C
import json
import os

import numpy as np

import testlib
import pipeline_ref as ref

FLOAT_TOL = 1  # grey levels, for the floating-point outputs


class Error(C.Structure):
    _fields_ = [("code", C.c_int), ("msg", C.c_char * 512)]


class Image(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int), ("channels", C.c_int),
                ("data", C.POINTER(C.c_ubyte))]


class MaskOpts(C.Structure):
    _fields_ = [("net_width", C.c_int), ("net_height", C.c_int), ("mean", C.c_float * 3),
                ("std", C.c_float * 3), ("resize", C.c_int),
                ("threshold", C.c_float), ("refine", C.c_int), ("fg_threshold", C.c_int),
                ("bg_threshold", C.c_int), ("morph", C.c_int), ("morph_radius", C.c_int),
                ("largest_component", C.c_int), ("feather", C.c_float),
                ("alpha_from_mask", C.c_int), ("guided", C.c_int), ("guided_radius", C.c_int),
                ("guided_eps", C.c_float), ("alpha_matting", C.c_int),
                ("matting_fg_threshold", C.c_int), ("matting_bg_threshold", C.c_int),
                ("erode_size", C.c_int), ("foreground", C.c_int)]


class Matte(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int),
                ("prob", C.POINTER(C.c_ubyte)), ("alpha", C.POINTER(C.c_ubyte)),
                ("mask", C.POINTER(C.c_ubyte)),
                ("bbox_x", C.c_int), ("bbox_y", C.c_int), ("bbox_w", C.c_int), ("bbox_h", C.c_int),
                ("area", C.c_size_t), ("mean_prob", C.c_double),
                ("foreground", C.POINTER(C.c_ubyte))]


class RenderOpts(C.Structure):
    _fields_ = [("background_rgb", C.c_ubyte * 3), ("background", C.POINTER(Image)),
                ("padding", C.c_int), ("highlight", C.c_int)]


MORPH = {"none": 0, "open": 1, "close": 2, "open-close": 3}
HIGHLIGHT = {"dim": 0, "gray": 1, "blur": 2}
OUT = {name: k for k, name in enumerate(ref.OUTPUTS)}

_lib = None


def lib():
    global _lib
    if _lib is None:
        path = os.path.join(testlib.BUILD, "libu2net.so")
        if os.environ.get("U2NET_SANITIZE"):
            # an ASan library cannot be loaded into an unsanitized Python; under
            # make sanitize this code runs through the program's tests instead
            raise testlib.Skip("sanitizer build: ctypes cannot load it into Python")
        if not os.path.exists(path):
            raise AssertionError("missing %s (run make)" % path)
        L = C.CDLL(path)
        L.u2net_mask_opts_default.argtypes = [C.POINTER(MaskOpts)]
        L.u2net_mask_opts_default.restype = None
        L.u2net_matte_from_prob.argtypes = [C.c_void_p, C.c_int, C.c_int, C.POINTER(MaskOpts),
                                            C.POINTER(Matte), C.POINTER(Error)]
        L.u2net_matte_from_prob.restype = C.c_int
        L.u2net_matte_free.argtypes = [C.POINTER(Matte)]
        L.u2net_matte_free.restype = None
        L.u2net_render_opts_default.argtypes = [C.POINTER(RenderOpts)]
        L.u2net_render_opts_default.restype = None
        L.u2net_render.argtypes = [C.POINTER(Image), C.POINTER(Matte), C.c_int,
                                   C.POINTER(RenderOpts), C.POINTER(Image), C.POINTER(Error)]
        L.u2net_render.restype = C.c_int
        L.u2net_image_free.argtypes = [C.POINTER(Image)]
        L.u2net_image_free.restype = None
        L.u2net_bbox_json.argtypes = [C.POINTER(Matte), C.c_char_p]
        L.u2net_bbox_json.restype = C.c_void_p  # freed with libc free
        L.u2net_output_name.argtypes = [C.c_int]
        L.u2net_output_name.restype = C.c_char_p
        L.u2net_output_from_name.argtypes = [C.c_char_p]
        L.u2net_output_from_name.restype = C.c_int
        _lib = L
    return _lib


_libc = C.CDLL(None)
_libc.free.argtypes = [C.c_void_p]


# ---- wrappers ----

def mask_opts(**kw):
    o = MaskOpts()
    lib().u2net_mask_opts_default(C.byref(o))
    for k, v in kw.items():
        if k == "morph":
            v = MORPH.get(v, v)
        setattr(o, k, int(v) if isinstance(v, bool) else v)
    return o


def c_matte(prob, **kw):
    """u2net_matte_from_prob on a uint8 [H, W] map: (rc, Matte, Error); the
    caller frees the Matte."""
    prob = np.ascontiguousarray(prob, dtype=np.uint8)
    h, w = prob.shape
    m, err = Matte(), Error()
    rc = lib().u2net_matte_from_prob(prob.ctypes.data, w, h, C.byref(mask_opts(**kw)),
                                     C.byref(m), C.byref(err))
    return rc, m, err


def map_of(ptr, h, w):
    return np.ctypeslib.as_array(ptr, shape=(h, w)).copy()


def matte_dict(m):
    h, w = m.height, m.width
    return dict(prob=map_of(m.prob, h, w), alpha=map_of(m.alpha, h, w), mask=map_of(m.mask, h, w),
                bbox=(m.bbox_x, m.bbox_y, m.bbox_w, m.bbox_h), area=m.area, mean_prob=m.mean_prob)


def matte(prob, **kw):
    rc, m, err = c_matte(prob, **kw)
    assert rc == 0, "u2net_matte_from_prob(%s) = %d: %s" % (kw, rc, err.msg.decode())
    d = matte_dict(m)
    lib().u2net_matte_free(C.byref(m))
    assert not m.prob and m.width == 0, "u2net_matte_free did not zero the matte"
    return d


def as_image(a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    img = Image(a.shape[1], a.shape[0], a.shape[2], a.ctypes.data_as(C.POINTER(C.c_ubyte)))
    img._keep = a
    return img


def c_render(img, m, type, background_rgb=(255, 255, 255), background=None, padding=0,
             highlight="dim"):
    """u2net_render: (rc, [H, W, C] array or None, message)."""
    o = RenderOpts()
    lib().u2net_render_opts_default(C.byref(o))
    o.background_rgb[:] = list(background_rgb)
    if background is not None:
        bg = as_image(background)
        o.background = C.pointer(bg)
    o.padding = padding
    o.highlight = HIGHLIGHT[highlight]
    out, err = Image(), Error()
    rc = lib().u2net_render(C.byref(as_image(img)), C.byref(m), OUT.get(type, type), C.byref(o),
                            C.byref(out), C.byref(err))
    if rc:
        assert not out.data
        return rc, None, err.msg.decode()
    a = np.ctypeslib.as_array(out.data, shape=(out.height, out.width, out.channels)).copy()
    lib().u2net_image_free(C.byref(out))
    return rc, a, ""


def bbox_json(m, name):
    p = lib().u2net_bbox_json(C.byref(m), None if name is None else name.encode())
    assert p, "u2net_bbox_json returned NULL"
    text = C.string_at(p).decode()
    _libc.free(p)
    return text


# ---- synthetic data ----

SIZES = [(1, 1), (37, 53), (200, 131)]  # (width, height)


def blobs(w, h, seed):
    """Two soft blobs of different size plus noise: uint8 [h, w]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    big = np.exp(-(((x - 0.3 * w) / (0.18 * w + 1)) ** 2 + ((y - 0.4 * h) / (0.2 * h + 1)) ** 2))
    small = 0.9 * np.exp(-(((x - 0.8 * w) / (0.07 * w + 1)) ** 2 + ((y - 0.75 * h) / (0.08 * h + 1)) ** 2))
    p = 255 * np.maximum(big, small) + rng.normal(0, 12, (h, w))
    return np.clip(np.rint(p), 0, 255).astype(np.uint8)


def speckle(w, h, seed):
    """Many small components of random values: uint8 [h, w]."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 256, (h, w))
    return np.where(rng.random((h, w)) < 0.45, p, 0).astype(np.uint8)


def prob_maps():
    maps = []
    for k, (w, h) in enumerate(SIZES):
        maps.append(("blobs%dx%d" % (w, h), blobs(w, h, k)))
        maps.append(("speckle%dx%d" % (w, h), speckle(w, h, 10 + k)))
    maps.append(("blobs613x29", blobs(613, 29, 9)))  # wider than the C's blocks of columns
    maps.append(("empty37x53", np.zeros((53, 37), np.uint8)))
    maps.append(("full37x53", np.full((53, 37), 255, np.uint8)))
    tie = np.zeros((40, 50), np.uint8)
    tie[25:30, 5:10] = 200   # 5x5, met second in raster order
    tie[5:10, 30:35] = 180   # 5x5, met first: kept on the tie
    tie[4:11, 29:36] = np.maximum(tie[4:11, 29:36], 60)  # a soft halo around the kept one
    maps.append(("tie", tie))
    return maps


def image_for(w, h, channels, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, channels)).astype(np.uint8)
    if channels in (2, 4):
        alpha = img[:, :, -1]
        alpha[rng.random((h, w)) < 0.2] = 0    # transparent pixels stay transparent
        alpha[rng.random((h, w)) < 0.2] = 255
    return img


def compare_matte(got, want, what, alpha_tol=0):
    for key in ("prob", "mask"):
        assert np.array_equal(got[key], want[key]), "%s: %s differs at %d pixels" % (
            what, key, int(np.count_nonzero(got[key] != want[key])))
    diff = np.abs(got["alpha"].astype(int) - want["alpha"].astype(int))
    assert diff.max(initial=0) <= alpha_tol, "%s: alpha off by %d (tol %d) at %d pixels" % (
        what, diff.max(), alpha_tol, int(np.count_nonzero(diff > alpha_tol)))
    assert got["bbox"] == want["bbox"], "%s: bbox %s != %s" % (what, got["bbox"], want["bbox"])
    assert got["area"] == want["area"], "%s: area %d != %d" % (what, got["area"], want["area"])
    assert abs(got["mean_prob"] - want["mean_prob"]) <= 1e-12, "%s: mean_prob %r != %r" % (
        what, got["mean_prob"], want["mean_prob"])


def check_options(option_sets, alpha_tol=0):
    count = 0
    for name, prob in prob_maps():
        for kw in option_sets:
            what = "%s %s" % (name, kw)
            compare_matte(matte(prob, **kw), ref.matte_from_prob(prob, **kw), what, alpha_tol)
            count += 1
    print("    %d maps x options agree (alpha tol %d)" % (count, alpha_tol))


# ---- tests ----

def test_defaults():
    o = mask_opts()
    assert (o.net_width, o.net_height, o.resize, o.refine) == (0, 0, 0, 0)
    assert abs(o.threshold - 0.5) < 1e-7 and o.feather == 0.0
    assert (o.fg_threshold, o.bg_threshold, o.morph, o.morph_radius) == (240, 15, 0, 1)
    assert (o.largest_component, o.alpha_from_mask) == (0, 0)
    r = RenderOpts()
    lib().u2net_render_opts_default(C.byref(r))
    assert list(r.background_rgb) == [255, 255, 255] and not r.background
    assert (r.padding, r.highlight) == (0, 0)
    for k, name in enumerate(ref.OUTPUTS):
        assert lib().u2net_output_name(k).decode() == name
        assert lib().u2net_output_from_name(name.encode()) == k
    assert lib().u2net_output_name(len(ref.OUTPUTS)) is None
    assert lib().u2net_output_from_name(b"png") == -1
    assert lib().u2net_output_from_name(None) == -1
    # NULL options mean the defaults
    prob = blobs(37, 53, 0)
    m, err = Matte(), Error()
    assert lib().u2net_matte_from_prob(prob.ctypes.data, 37, 53, None, C.byref(m), C.byref(err)) == 0
    compare_matte(matte_dict(m), ref.matte_from_prob(prob), "NULL options")
    lib().u2net_matte_free(C.byref(m))


def test_threshold():
    check_options([{}] + [dict(threshold=t) for t in (0.0, 0.3, 0.5, 0.501, 0.999, 1.0)])


def test_refine():
    check_options([dict(refine=True), dict(refine=True, bg_threshold=0, fg_threshold=255),
                   dict(refine=True, bg_threshold=100, fg_threshold=101),
                   dict(refine=True, bg_threshold=50, fg_threshold=53, threshold=0.3)])


def test_morphology():
    sets = [dict(morph=op, morph_radius=r) for op in ("open", "close", "open-close")
            for r in (1, 2, 5)]
    sets += [dict(morph="close", morph_radius=1000), dict(morph="open", morph_radius=60),
             dict(morph="open-close", morph_radius=3, refine=True)]
    check_options(sets)


def test_largest_component():
    check_options([dict(largest_component=True),
                   dict(largest_component=True, threshold=0.2),
                   dict(largest_component=True, threshold=0.0),
                   dict(largest_component=True, threshold=1.0),
                   dict(largest_component=True, refine=True, morph="open", morph_radius=1)])
    # The tie map: two 5x5 squares; the one met first in raster order stays
    # with its halo, the other goes.
    tie = dict(prob_maps())["tie"]
    got = matte(tie, largest_component=True)
    assert got["bbox"] == (30, 5, 5, 5), got["bbox"]
    assert np.all(got["alpha"][25:30, 5:10] == 0) and got["alpha"][4, 29] == 60


def test_alpha_from_mask():
    check_options([dict(alpha_from_mask=True), dict(alpha_from_mask=True, largest_component=True),
                   dict(alpha_from_mask=True, threshold=0.8, morph="close", morph_radius=2)])


def test_feather():
    check_options([dict(feather=f) for f in (0.01, 0.5, 1.0, 3.0, 7.5)] +
                  [dict(feather=2.0, alpha_from_mask=True, largest_component=True,
                        morph="open-close", morph_radius=1, refine=True)],
                  alpha_tol=FLOAT_TOL)


def render_cases():
    """(image, matte struct, matte dict) on every size and channel count."""
    for k, (w, h) in enumerate(SIZES):
        for channels in (1, 2, 3, 4):
            img = image_for(w, h, channels, 100 + 4 * k + channels)
            for kw in ({}, dict(largest_component=True, feather=1.5), dict(threshold=1.0)):
                rc, m, err = c_matte(blobs(w, h, k), **kw)
                assert rc == 0, err.msg.decode()
                yield "%dx%dx%d %s" % (w, h, channels, kw), img, m
                lib().u2net_matte_free(C.byref(m))


def compare_render(what, got, want, tol):
    assert got.shape == want.shape, "%s: shape %s != %s" % (what, got.shape, want.shape)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max(initial=0) <= tol, "%s: off by %d (tol %d) at %d values" % (
        what, diff.max(), tol, int(np.count_nonzero(diff > tol)))
    return int(diff.max(initial=0))


def test_render_exact_outputs():
    count = 0
    for what, img, m in render_cases():
        md = matte_dict(m)
        cases = [("prob", {}), ("mask", {}), ("rgba", {}), ("rgb", {}), ("composite", {}),
                 ("composite", dict(background_rgb=(0, 128, 7))),
                 ("crop", {}), ("crop", dict(padding=3)), ("crop", dict(padding=100000))]
        for type, kw in cases:
            rc, got, msg = c_render(img, m, type, **kw)
            assert rc == 0, "%s %s: %s" % (what, type, msg)
            compare_render("%s %s %s" % (what, type, kw), got, ref.render(img, md, type, **kw), 0)
            count += 1
        if img.shape[2] in (2, 4):  # input transparency carries into the cutout
            rc, rgba, _ = c_render(img, m, "rgba")
            assert np.all(rgba[:, :, 3][img[:, :, -1] == 0] == 0)
    print("    %d renders exact" % count)


def test_render_composite_over_image():
    worst = 0
    backgrounds = [(1, 1, 3), (64, 20, 3), (20, 64, 4), (333, 250, 1), (7, 5, 2), (200, 131, 3)]
    for bi, (bw, bh, bc) in enumerate(backgrounds):
        bg = image_for(bw, bh, bc, 500 + bi)
        for what, img, m in render_cases():
            rc, got, msg = c_render(img, m, "composite", background=bg)
            assert rc == 0, msg
            want = ref.render(img, matte_dict(m), "composite", background=bg)
            worst = max(worst, compare_render("%s over %dx%dx%d" % (what, bw, bh, bc), got, want,
                                              FLOAT_TOL))
    print("    composite over an image: max diff %d (tol %d)" % (worst, FLOAT_TOL))


def test_reference_cover_matches_torch():
    """The reference's cover resize is torch's bilinear (align_corners=False)."""
    testlib.need_torch()
    import torch
    import torch.nn.functional as F
    bg = image_for(23, 17, 3, 7)
    for sh, sw in ((40, 61), (17, 23), (5, 9), (1, 1)):
        want = F.interpolate(torch.from_numpy(bg.astype(np.float64)).permute(2, 0, 1)[None],
                             size=(sh, sw), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
        testlib.assert_close(ref.bilinear_resize(bg, sh, sw), want.numpy(), 1e-9, "%dx%d" % (sw, sh))


def test_render_highlight():
    worst = 0
    for what, img, m in render_cases():
        for mode in ("dim", "gray", "blur"):
            rc, got, msg = c_render(img, m, "highlight", highlight=mode)
            assert rc == 0, msg
            want = ref.render(img, matte_dict(m), "highlight", highlight=mode)
            worst = max(worst, compare_render("%s highlight %s" % (what, mode), got, want, FLOAT_TOL))
    print("    highlight: max diff %d (tol %d)" % (worst, FLOAT_TOL))


def expect_error(rc, msg, what):
    assert rc != 0, "%s: accepted" % what
    assert msg, "%s: no message" % what
    print("    %s -> %d: %s" % (what, rc, msg))


def test_errors():
    prob = blobs(37, 53, 0)
    bad = [dict(threshold=2.0), dict(threshold=-0.1), dict(threshold=float("nan")),
           dict(refine=True, bg_threshold=200, fg_threshold=200),
           dict(refine=True, bg_threshold=-1, fg_threshold=100),
           dict(refine=True, bg_threshold=0, fg_threshold=256),
           dict(morph="open", morph_radius=0), dict(morph="close", morph_radius=1001),
           dict(morph=7), dict(feather=1000.5), dict(feather=-1.0)]
    for kw in bad:
        rc, m, err = c_matte(prob, **kw)
        expect_error(rc, err.msg.decode(), str(kw))
        assert err.code == rc and not m.prob
    # bg >= fg without refine is not an error: the thresholds are unused
    rc, m, err = c_matte(prob, bg_threshold=200, fg_threshold=100)
    assert rc == 0
    lib().u2net_matte_free(C.byref(m))
    for w, h in ((0, 5), (5, 0), (65536, 1), (-3, 4)):
        m, err = Matte(), Error()
        rc = lib().u2net_matte_from_prob(prob.ctypes.data, w, h, None, C.byref(m), C.byref(err))
        expect_error(rc, err.msg.decode(), "size %dx%d" % (w, h))
    m, err = Matte(), Error()
    rc = lib().u2net_matte_from_prob(None, 4, 4, None, C.byref(m), C.byref(err))
    expect_error(rc, err.msg.decode(), "NULL prob")

    rc, m, err = c_matte(prob)
    assert rc == 0
    img = image_for(37, 53, 3, 1)
    rc2, _, msg = c_render(image_for(53, 37, 3, 1), m, "rgba")
    expect_error(rc2, msg, "image/matte size mismatch")
    rc2, _, msg = c_render(img, m, OUT["bbox"])
    expect_error(rc2, msg, "bbox through u2net_render")
    assert "u2net_bbox_json" in msg
    for t in (-1, len(ref.OUTPUTS), 99):
        rc2, _, msg = c_render(img, m, t)
        expect_error(rc2, msg, "output type %d" % t)
    rc2, _, msg = c_render(img, m, "crop", padding=-1)
    expect_error(rc2, msg, "negative padding")
    rc2, _, msg = c_render(image_for(37, 53, 3, 1)[:, :, :0].reshape(53, 37, 0), m, "rgb")
    expect_error(rc2, msg, "0 channels")
    m.bbox_x += 30  # a hand-made matte whose bbox leaves the image
    rc2, _, msg = c_render(img, m, "crop")
    expect_error(rc2, msg, "bbox outside the matte")
    m.bbox_x -= 30
    bad_bg = Image(0, 0, 3, None)
    o = RenderOpts()
    lib().u2net_render_opts_default(C.byref(o))
    o.background = C.pointer(bad_bg)
    out, err = Image(), Error()
    rc2 = lib().u2net_render(C.byref(as_image(img)), C.byref(m), OUT["composite"], C.byref(o),
                             C.byref(out), C.byref(err))
    expect_error(rc2, err.msg.decode(), "empty background image")
    err = Error()
    rc2 = lib().u2net_render(C.byref(as_image(img)), None, 0, None, C.byref(out), C.byref(err))
    expect_error(rc2, err.msg.decode(), "NULL matte")
    lib().u2net_matte_free(C.byref(m))


def test_bbox_json():
    prob = blobs(200, 131, 2)
    rc, m, err = c_matte(prob, largest_component=True)
    assert rc == 0
    want = ref.matte_from_prob(prob, largest_component=True)
    text = bbox_json(m, "photo.jpg")
    assert text.endswith("}\n") and text.count("\n") == 1
    j = json.loads(text)
    assert list(j) == ["image", "width", "height", "bbox", "area", "area_fraction",
                       "mean_probability"], list(j)
    x, y, w, h = want["bbox"]
    assert j["image"] == "photo.jpg" and (j["width"], j["height"]) == (200, 131)
    assert j["bbox"] == {"x": x, "y": y, "w": w, "h": h} and w > 0
    assert j["area"] == want["area"]
    assert j["area_fraction"] == float("%.6f" % (want["area"] / (200 * 131)))
    assert j["mean_probability"] == float("%.6f" % want["mean_prob"])
    tricky = 'a "quoted" \\ name\twith\nnewline\x01\x1f and é'
    j = json.loads(bbox_json(m, tricky))
    assert j["image"] == tricky, j["image"]
    assert json.loads(bbox_json(m, None))["image"] is None
    lib().u2net_matte_free(C.byref(m))

    rc, m, err = c_matte(np.zeros((53, 37), np.uint8))
    assert rc == 0
    j = json.loads(bbox_json(m, ""))
    assert j == {"image": "", "width": 37, "height": 53, "bbox": None, "area": 0,
                 "area_fraction": 0.0, "mean_probability": 0.0}, j
    lib().u2net_matte_free(C.byref(m))
