"""The whole image pipeline through the command line: decoding, EXIF
orientation, pre-processing, the network, the prob map, post-processing and
every renderer, against independent references.

1. prob vs a PyTorch pipeline doing the same arithmetic (PIL decoding, torch
   bilinear align_corners=False resize, /max, ImageNet mean/std, the reference
   model from the same model file, sigmoid(d0) min-max, truncated to 8 bits,
   PIL bilinear back), real U2NetP; also --resize lanczos (PIL LANCZOS on the
   8-bit image) and --size 256 / 320x192.
2. every output type and the mask options vs tests/reference/pipeline_ref.py
   applied to the CLI's own prob output (PNG inputs: decoding is exact).
3. the real U2NetP on /work/shared/images/real vs the authors' U2NetP maps.
4. EXIF orientation 1..8 (and a big-endian EXIF) vs PIL's exif_transpose.
5. formats and channels: 16-bit PNG, gray, gray+alpha, RGBA, BMP, TGA, PNM,
   GIF and progressive JPEG give the prob of the equivalent 8-bit PNG.

Tolerances (grey levels of 255), from what was measured:
- prob vs the PyTorch pipeline: max 1, mean <= 0.01 (measured: max 1, mean
  <= 0.0008, at most 0.08% of pixels off by one; 0 on 1x1). Both pipelines
  truncate the normalised map to 8 bits at the network size, so a float32
  difference of the network (~1e-4 on d0) flips a pixel by one level where it
  sits on a level boundary; the resize back is bit-exact with PIL (22-bit
  fixed point, as PIL computes it).
- outputs vs pipeline_ref: exact for integer arithmetic (prob, mask, rgba,
  rgb, composite over a colour, crop, bbox), 1 for float arithmetic (feather,
  composite over an image, highlight).
- vs the authors' maps: mean abs error <= 0.005 over the set, IoU(0.5) >= 0.97
  on every image (measured: mean 0.0015, worst image 0.0031, worst IoU 0.988).
- EXIF: JPEGs written 4:4:4 with flat 8-aligned quadrants; stb_image vs
  libjpeg within JPEG_TOL = 3 levels (measured: identical).
- lossless formats: identical prob and pixels (measured: identical);
  progressive vs baseline JPEG: the same quantised coefficients, so the same
  pixels expected (measured: identical, vs PIL's libjpeg max 3), PROG_TOL 1.
"""
import atexit
import json
import os
import shutil
import struct
import zlib

import numpy as np

import testlib
from testlib import Skip
import pipeline_ref as ref

REAL_MODEL = os.path.join(testlib.ROOT, "weights", "u2netp.u2nc")
RESULTS = os.path.join(testlib.SHARED, "images", "u2netp_results")
FAST = ["--size", "64", "--threads", "1"]  # random-weight model runs

PROB_MAX_TOL = 1       # prob vs the torch pipeline, levels
PROB_MEAN_TOL = 0.01   # mean abs diff, levels
FLOAT_TOL = 1          # renderers computed in floating point
MAE_TOL = 0.005        # vs the authors' maps, over the set
IOU_MIN = 0.97
JPEG_TOL = 3           # stb_image vs libjpeg on flat 4:4:4 blocks
PROG_TOL = 1           # progressive vs baseline JPEG, decoded pixels

_state = {}


def _need_pil():
    testlib.need_engine()
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        raise Skip("Pillow not installed (python3-pil)")


def _scratch(name):
    d = testlib.workdir("pipeline_" + name)
    return d


def _random_model():
    """A U2NetP with random weights (enough for equality and post-processing
    tests), converted once per run; removed at exit."""
    if "random" not in _state:
        import convert
        import random_weights as RW
        d = _scratch("model")
        atexit.register(shutil.rmtree, d, True)
        path = os.path.join(d, "pipeline_u2netp_random.u2nc")
        convert.write_model(convert.convert_state_dict(RW.random_state_dict(RW.U2NETP_STAGES, 4321)),
                            path)
        _state["random"] = path
    return _state["random"]


def _need_real_model():
    if not os.path.exists(REAL_MODEL):
        raise Skip("missing %s (run make weights)" % REAL_MODEL)
    return REAL_MODEL


def _cli(model, args, fast=False):
    cmd = [testlib.U2NET, "-m", model, "-q"] + (FAST if fast else []) + list(args)
    return testlib.run(cmd, timeout=600)


def _read(path):
    """Image file -> uint8 [H, W, C] (C = 1 for L)."""
    from PIL import Image
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    return a


def _save(a, path, **kw):
    from PIL import Image
    a = np.asarray(a, dtype=np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    Image.fromarray(a[:, :, 0] if mode == "L" else a, mode).save(path, **kw)
    return path


def _scene(w, h, seed=0):
    """A synthetic photo-like RGB image: a few soft coloured ellipses over a
    gradient, a little noise."""
    rng = np.random.default_rng(seed)
    yy = (np.arange(h)[:, None] + 0.5) / h
    xx = (np.arange(w)[None, :] + 0.5) / w
    img = np.empty((h, w, 3))
    for c in range(3):
        img[:, :, c] = 60 + 80 * rng.uniform() * yy + 60 * rng.uniform() * xx
    for _ in range(4):
        cy, cx = rng.uniform(0.25, 0.75, 2)
        ry, rx = rng.uniform(0.1, 0.3, 2)
        r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        wgt = np.clip((1.2 - r) / 0.3, 0, 1)[:, :, None]
        img = img * (1 - wgt) + rng.uniform(0, 255, 3)[None, None, :] * wgt
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _diff_stats(got, want):
    d = np.abs(got.astype(np.int64) - want.astype(np.int64))
    return int(d.max()) if d.size else 0, float(d.mean()) if d.size else 0.0, \
        float(np.count_nonzero(d)) / max(1, d.size)


def _assert_equal(got, want, what, tol=0):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, "%s: shape %s != %s" % (what, got.shape, want.shape)
    mx, mean, frac = _diff_stats(got, want)
    print("    %-34s max %d mean %.4f differing %.4f%% (tol %d)" % (what, mx, mean, 100 * frac, tol))
    assert mx <= tol, "%s: max diff %d > %d" % (what, mx, tol)


# ------------------------------------------------------------------ 1. prob vs torch

def _torch_probs(model, images, nh, nw, lanczos=False):
    """The authors' arithmetic in PyTorch/PIL: images uint8 [H, W, 3] -> prob
    maps uint8 [H, W] at each image's size (one batch)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image
    torch.set_num_threads(2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    xs = []
    for a in images:
        if lanczos:
            r = np.asarray(Image.fromarray(a).resize((nw, nh), Image.LANCZOS))
            t = torch.from_numpy(r.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        else:
            t = torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
            t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False)
        t = t / t.max()
        xs.append((t - mean) / std)
    model.eval()
    with torch.no_grad():
        d0 = model(torch.cat(xs).contiguous())[0][:, 0]  # sigmoid(d0)
    out = []
    for a, d in zip(images, d0):
        n = (d - d.min()) / (d.max() - d.min())
        u8 = torch.clamp(torch.floor(n * 255.0), 0, 255).numpy().astype(np.uint8)
        h, w = a.shape[:2]
        out.append(np.asarray(Image.fromarray(u8, "L").resize((w, h), Image.BILINEAR)))
    return out


def _torch_probs_isnet(model, images, nh, nw, mean=(0.5, 0.5, 0.5), std=(1.0, 1.0, 1.0)):
    """DIS's and RMBG's arithmetic in PyTorch: images uint8 [H, W, 3] -> RGB
    0..255 as float, bilinear resize to nh x nw, / 255, (x - mean) / std;
    sigmoid(d1) resized in float to each image's size, min-max normalised,
    floor(v * 255) -> prob maps uint8 [H, W]."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(2)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    model.eval()
    for a in images:
        t = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False)
        with torch.no_grad():
            d1 = model(((t / 255.0 - m) / s).contiguous())[0]
        h, w = a.shape[:2]
        r = F.interpolate(d1, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        n = (r - r.min()) / (r.max() - r.min())
        out.append(torch.clamp(torch.floor(n * 255.0), 0, 255).numpy().astype(np.uint8))
    return out


def _test_images(sizes):
    """uint8 RGB images of the given (w, h): real photos resized when the
    shared images are there, synthetic scenes otherwise."""
    from PIL import Image
    photos = sorted(os.listdir(testlib.REAL_IMAGES)) if os.path.isdir(testlib.REAL_IMAGES) else []
    out = []
    for k, (w, h) in enumerate(sizes):
        if photos:
            with Image.open(os.path.join(testlib.REAL_IMAGES, photos[k % len(photos)])) as im:
                out.append(np.asarray(im.convert("RGB").resize((w, h), Image.LANCZOS)))
        else:
            out.append(_scene(w, h, seed=k))
    return out


def _prob_case(model_path, model, d, label, images, nh, nw, extra):
    """Runs the CLI on the images (saved as PNG) and compares with torch."""
    ind = os.path.join(d, label)
    os.makedirs(ind)
    for k, a in enumerate(images):
        _save(a, os.path.join(ind, "img%d.png" % k))
    outd = os.path.join(d, label + "_out")
    _cli(model_path, [ind, "-o", outd + "/", "-t", "prob"] + extra)
    want = _torch_probs(model, images, nh, nw, lanczos="lanczos" in extra)
    worst = []
    for k, (a, w) in enumerate(zip(images, want)):
        got = _read(os.path.join(outd, "img%d_prob.png" % k))[:, :, 0]
        assert got.shape == a.shape[:2], "%s: prob is %s, image %s" % (label, got.shape, a.shape)
        mx, mean, frac = _diff_stats(got, w)
        print("    %-10s %4dx%-4d net %dx%d: max %d mean %.4f differing %.3f%%"
              % (label, a.shape[1], a.shape[0], nw, nh, mx, mean, 100 * frac))
        worst.append((mx, mean))
        assert mx <= PROB_MAX_TOL, "%s image %d: max diff %d > %d" % (label, k, mx, PROB_MAX_TOL)
        assert mean <= PROB_MEAN_TOL, "%s image %d: mean diff %.4f > %g" % (label, k, mean, PROB_MEAN_TOL)
    return worst


def _need_torch_model():
    _need_pil()
    path = _need_real_model()
    testlib.need_torch()
    import u2net_ref
    if "torch_model" not in _state:
        _state["torch_model"] = u2net_ref.load_u2nc(path)
    return path, _state["torch_model"]


def test_prob_vs_torch_bilinear():
    """Default pipeline (bilinear, 320x320) on odd sizes, 1x1 and > 1000 px."""
    path, model = _need_torch_model()
    d = _scratch("torch")
    try:
        sizes = [(203, 97), (640, 480), (50, 700), (1, 1), (1200, 900)]
        _prob_case(path, model, d, "bilinear", _test_images(sizes), 320, 320, [])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_prob_isnet_vs_torch():
    """ISNet's own processing (docs/FORMAT.md, ISNet row) on an enlarged and a
    reduced photo at 1024x1024, --size 512x384, and --mean/--std replacing
    the model's (as for a retrained model), against the same arithmetic in
    PyTorch with the same weights."""
    _need_pil()
    testlib.need_torch()
    import test_e2e
    import u2net_ref
    path = test_e2e.real_isnet_file()
    model = u2net_ref.load_u2nc(path)
    d = _scratch("torch_isnet")
    try:
        cases = [("isnet", [(1200, 900), (203, 97)], 1024, 1024, [], {}),
                 ("isnet512x384", [(640, 480)], 384, 512, ["--size", "512x384"], {}),
                 ("isnet_norm", [(300, 200)], 512, 512,
                  ["--size", "512", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"],
                  {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)})]
        for label, sizes, nh, nw, extra, norm in cases:
            images = _test_images(sizes)
            ind, outd = os.path.join(d, label), os.path.join(d, label + "_out")
            os.makedirs(ind)
            for k, a in enumerate(images):
                _save(a, os.path.join(ind, "img%d.png" % k))
            _cli(path, [ind, "-o", outd + "/", "-t", "prob"] + extra)
            for k, (a, want) in enumerate(zip(images, _torch_probs_isnet(model, images, nh, nw,
                                                                         **norm))):
                got = _read(os.path.join(outd, "img%d_prob.png" % k))[:, :, 0]
                mx, mean, frac = _diff_stats(got, want)
                print("    %-12s %4dx%-4d net %dx%d: max %d mean %.4f differing %.3f%%"
                      % (label, a.shape[1], a.shape[0], nw, nh, mx, mean, 100 * frac))
                assert mx <= PROB_MAX_TOL and mean <= PROB_MEAN_TOL, \
                    "%s image %d: max diff %d, mean %.4f" % (label, k, mx, mean)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_prob_vs_torch_options():
    """--resize lanczos (PIL LANCZOS pre-processing), --size 256, --size 320x192."""
    path, model = _need_torch_model()
    d = _scratch("torch_opts")
    try:
        a, b, c = _test_images([(640, 480), (203, 97), (50, 700)])
        _prob_case(path, model, d, "lanczos", [a], 320, 320, ["--resize", "lanczos"])
        _prob_case(path, model, d, "size256", [b], 256, 256, ["--size", "256"])
        _prob_case(path, model, d, "size320x192", [c, a], 192, 320, ["--size", "320x192"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 2. renderers

def _outputs(d, stem):
    return lambda t: os.path.join(d, "%s_%s.%s" % (stem, t, "json" if t == "bbox" else "png"))


def _check_outputs(img, name, out, opts, render_kw, float_alpha):
    """Compares every output of one CLI run with pipeline_ref applied to the
    run's own prob map."""
    prob = _read(out("prob"))[:, :, 0]
    assert prob.shape == img.shape[:2]
    m = ref.matte_from_prob(prob, **opts)
    _assert_equal(_read(out("mask")), ref.render(img, m, "mask"), "mask")
    alpha_tol = FLOAT_TOL if float_alpha else 0
    _assert_equal(_read(out("rgba")), ref.render(img, m, "rgba"), "rgba", alpha_tol)
    _assert_equal(_read(out("rgb")), ref.render(img, m, "rgb"), "rgb", alpha_tol)
    comp_tol = FLOAT_TOL if (float_alpha or render_kw.get("background") is not None) else 0
    _assert_equal(_read(out("composite")), ref.render(img, m, "composite", **render_kw),
                  "composite" + (" over image" if render_kw.get("background") is not None else ""),
                  comp_tol)
    _assert_equal(_read(out("crop")), ref.render(img, m, "crop", **render_kw),
                  "crop padding %d" % render_kw.get("padding", 0))
    _assert_equal(_read(out("highlight")), ref.render(img, m, "highlight", **render_kw),
                  "highlight %s" % render_kw.get("highlight", "dim"), FLOAT_TOL)
    with open(out("bbox")) as f:
        j = json.load(f)
    H, W = prob.shape
    x, y, w, h = m["bbox"]
    want_box = {"x": x, "y": y, "w": w, "h": h} if w else None
    print("    bbox %s area %d mean_prob %.6f" % (j["bbox"], j["area"], j["mean_probability"]))
    assert j["image"] == name, j
    assert (j["width"], j["height"]) == (W, H), j
    assert j["bbox"] == want_box, (j["bbox"], want_box)
    assert j["area"] == m["area"], (j["area"], m["area"])
    assert abs(j["area_fraction"] - m["area"] / (W * H)) <= 5e-7, j
    assert abs(j["mean_probability"] - m["mean_prob"]) <= 5e-7, (j, m["mean_prob"])
    return m


def test_outputs_vs_reference():
    """Every output type, with and without the mask options."""
    _need_pil()
    model = _random_model()
    d = _scratch("render")
    try:
        img = _scene(97, 73, seed=7)
        src = _save(img, os.path.join(d, "in.png"))
        bg = _scene(50, 41, seed=8)
        bg_path = _save(bg, os.path.join(d, "bg.png"))
        all_types = "prob,mask,rgba,rgb,composite,crop,bbox,highlight"
        cases = [
            ("defaults", [], {},
             dict(background_rgb=(0x33, 0xaa, 0x77), padding=5, highlight="dim"),
             ["--background", "#3a7", "--padding", "5"], False),
            ("options",
             ["--threshold", "0.35", "--refine", "--fg-threshold", "200", "--bg-threshold", "30",
              "--morph", "open-close", "--morph-radius", "2", "--largest-component",
              "--feather", "3"],
             dict(threshold=0.35, refine=True, fg_threshold=200, bg_threshold=30,
                  morph="open-close", morph_radius=2, largest_component=True, feather=3.0),
             dict(background=bg, padding=3, highlight="gray"),
             ["--background", bg_path, "--padding", "3", "--highlight", "gray"], True),
            ("alphamask",
             ["--threshold", "0.6", "--alpha", "mask", "--morph", "close", "--largest-component"],
             dict(threshold=0.6, alpha_from_mask=True, morph="close", largest_component=True),
             dict(background_rgb=(0x12, 0x34, 0x56), padding=1000, highlight="blur"),
             ["--background", "#123456", "--padding", "1000", "--highlight", "blur"], False),
            ("refine",
             ["--fg-threshold", "180", "--morph", "open", "--morph-radius", "3"],
             dict(refine=True, fg_threshold=180, morph="open", morph_radius=3),
             dict(padding=0, highlight="dim"), [], False),
        ]
        for label, mopts, opts, rkw, rargs, float_alpha in cases:
            print("  %s: %s" % (label, " ".join(mopts + rargs)))
            outd = os.path.join(d, label)
            _cli(model, [src, "-o", outd + "/", "-t", all_types] + mopts + rargs, fast=True)
            m = _check_outputs(img, src, _outputs(outd, "in"), opts, rkw, float_alpha)
            area = m["area"]
            assert 0 < area < img.shape[0] * img.shape[1], "%s: degenerate mask (area %d)" % (label, area)
            if opts.get("largest_component"):
                _, sizes = ref.label8(ref.matte_from_prob(m["prob"], threshold=opts["threshold"])["mask"] > 0)
                print("    components before largest-component: %d" % (len(sizes) - 1))
        # gray + alpha input: colour replicated, alpha multiplied in
        la = np.concatenate([img[:, :, 1:2], np.linspace(0, 255, img.shape[1])[None, :, None]
                             .repeat(img.shape[0], 0).astype(np.uint8)], axis=2)
        src = _save(la, os.path.join(d, "la.png"))
        print("  gray+alpha input")
        outd = os.path.join(d, "la")
        _cli(model, [src, "-o", outd + "/", "-t", all_types, "--padding", "2"], fast=True)
        _check_outputs(la, src, _outputs(outd, "la"), {}, dict(padding=2), False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 3. real photos

def test_real_photos_vs_authors():
    _need_pil()
    path = _need_real_model()
    if not os.path.isdir(testlib.REAL_IMAGES) or not os.path.isdir(RESULTS):
        raise Skip("missing %s or %s" % (testlib.REAL_IMAGES, RESULTS))
    names = sorted(n for n in os.listdir(testlib.REAL_IMAGES) if not n.startswith("."))
    if not names:
        raise Skip("no images in %s" % testlib.REAL_IMAGES)
    d = _scratch("real")
    try:
        _cli(path, [testlib.REAL_IMAGES, "-o", d + "/", "-t", "prob"])
        errs, bad = [], []
        for n in names:
            stem = os.path.splitext(n)[0]
            want_path = os.path.join(RESULTS, stem + ".png")
            if not os.path.exists(want_path):
                raise Skip("missing %s" % want_path)
            got = _read(os.path.join(d, stem + "_prob.png"))[:, :, 0].astype(np.float64) / 255
            want = _read(want_path)[:, :, 0].astype(np.float64) / 255
            assert got.shape == want.shape, "%s: %s != %s" % (n, got.shape, want.shape)
            mae = float(np.abs(got - want).mean())
            g, w = got >= 0.5, want >= 0.5
            iou = float((g & w).sum()) / max(1, int((g | w).sum()))
            print("    %-14s %4dx%-4d mae %.5f max %.3f IoU %.4f"
                  % (n, got.shape[1], got.shape[0], mae, float(np.abs(got - want).max()), iou))
            errs.append(mae)
            if iou < IOU_MIN:
                bad.append("%s IoU %.4f" % (n, iou))
        mean = float(np.mean(errs))
        print("    mean abs error over %d images %.5f (tol %g), worst image %.5f"
              % (len(errs), mean, MAE_TOL, max(errs)))
        assert mean <= MAE_TOL, "mean abs error %.5f > %g" % (mean, MAE_TOL)
        assert not bad, "IoU below %g: %s" % (IOU_MIN, ", ".join(bad))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 4. EXIF

def _quadrants(w=64, h=32):
    """Distinct flat colours per quadrant (8-aligned, so JPEG keeps them flat)
    plus a small 8x8 mark in one corner."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[:h // 2, :w // 2] = (220, 40, 40)
    a[:h // 2, w // 2:] = (40, 200, 60)
    a[h // 2:, :w // 2] = (40, 60, 210)
    a[h // 2:, w // 2:] = (230, 220, 50)
    a[:8, :8] = (255, 255, 255)
    return a


def _jpeg_with_app1(jpeg, app1_payload):
    """Inserts an APP1 segment right after SOI (and after a JFIF APP0)."""
    assert jpeg[:2] == b"\xff\xd8"
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", jpeg[4:6])[0]
    seg = b"\xff\xe1" + struct.pack(">H", len(app1_payload) + 2) + app1_payload
    return jpeg[:pos] + seg + jpeg[pos:]


def _exif_big_endian(orientation):
    """A Motorola-order EXIF with Make before Orientation in IFD0."""
    entries = [struct.pack(">HHII", 0x010F, 2, 6, 8 + 2 + 2 * 12 + 4),
               struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)]
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", len(entries)) + \
        b"".join(entries) + struct.pack(">I", 0) + b"Canon\x00"
    return b"Exif\x00\x00" + tiff


def test_exif_orientation():
    _need_pil()
    from PIL import Image, ImageOps
    model = _random_model()
    d = _scratch("exif")
    try:
        base = _quadrants()
        im = Image.fromarray(base)
        files = []
        for o in range(1, 9):
            ex = Image.Exif()
            ex[0x0112] = o
            p = os.path.join(d, "o%d.jpg" % o)
            im.save(p, quality=95, subsampling=0, exif=ex.tobytes())
            files.append((p, o))
        plain = os.path.join(d, "plain.jpg")
        im.save(plain, quality=95, subsampling=0)
        with open(plain, "rb") as f:
            jpeg = f.read()
        for o in (3, 6, 8):
            p = os.path.join(d, "mm%d.jpg" % o)
            with open(p, "wb") as f:
                f.write(_jpeg_with_app1(jpeg, _exif_big_endian(o)))
            files.append((p, o))
        outd = os.path.join(d, "out")
        _cli(model, [d, "-o", outd + "/", "-t", "rgba"], fast=True)
        worst = 0
        for p, o in files:
            with Image.open(p) as src:
                assert src.getexif().get(0x0112) == o, "PIL does not see orientation %d in %s" % (o, p)
                want = np.asarray(ImageOps.exif_transpose(src).convert("RGB"))
            stem = os.path.splitext(os.path.basename(p))[0]
            got = _read(os.path.join(outd, stem + "_rgba.png"))
            assert got.shape[2] == 4
            h, w = base.shape[:2]
            exp = (w, h) if o >= 5 else (h, w)
            assert got.shape[:2] == exp, "%s: size %s, expected %s" % (stem, got.shape[:2], exp)
            mx, mean, _ = _diff_stats(got[:, :, :3], want)
            print("    %-4s orientation %d: %dx%d max %d mean %.3f"
                  % (stem, o, got.shape[1], got.shape[0], mx, mean))
            worst = max(worst, mx)
            assert mx <= JPEG_TOL, "%s: colours differ from exif_transpose by %d > %d" % (stem, mx, JPEG_TOL)
        print("    worst %d (tol %d)" % (worst, JPEG_TOL))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 5. formats

def _png16(path, a16):
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA from the channel count)
    written here with zlib and struct; rows alternate filters None and Sub."""
    a16 = np.asarray(a16, dtype=np.uint16)
    h, w, c = a16.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = 2 * c
    rows = []
    for y in range(h):
        raw = np.frombuffer(a16[y].astype(">u2").tobytes(), dtype=np.uint8)
        if y % 2:
            sub = raw.copy()
            sub[bpp:] = (raw[bpp:].astype(np.int64) - raw[:-bpp]) % 256
            rows.append(b"\x01" + sub.tobytes())
        else:
            rows.append(b"\x00" + raw.tobytes())

    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)
    return path


def test_formats_and_channels():
    _need_pil()
    from PIL import Image
    model = _random_model()
    d = _scratch("formats")
    try:
        # 216 colours (a 6x6x6 cube) so that a GIF holds the image exactly
        rgb = (_scene(45, 37, seed=3).astype(np.int64) + 25) // 51 * 51
        rgb = rgb.astype(np.uint8)
        gray = rgb[:, :, 1:2]
        h, w = gray.shape[:2]
        ramp = np.tile(np.linspace(0, 255, w).astype(np.uint8)[None, :, None], (h, 1, 1))
        ind = os.path.join(d, "in")
        os.makedirs(ind)
        P = lambda n: os.path.join(ind, n)  # noqa: E731
        groups = {}  # stem -> the stem whose prob it must equal
        _save(rgb, P("rgb8.png"))
        _save(gray, P("gray8.png"))
        # gray as RGB gives the gray prob
        _save(np.repeat(gray, 3, axis=2), P("gray_as_rgb.png"))
        groups["gray_as_rgb"] = "gray8"
        # 16-bit: PIL I;16 gray, own encoder for RGB, gray+alpha and RGBA
        Image.fromarray(gray[:, :, 0].astype(np.uint16) * 257).save(P("gray16.png"))
        with Image.open(P("gray16.png")) as im:
            assert im.mode in ("I;16", "I"), im.mode
        groups["gray16"] = "gray8"
        _png16(P("rgb16.png"), rgb.astype(np.uint16) * 257)
        groups["rgb16"] = "rgb8"
        la = np.concatenate([gray, ramp], axis=2)
        rgba = np.concatenate([rgb, ramp[::-1, ::-1]], axis=2)
        _png16(P("la16.png"), la.astype(np.uint16) * 257)
        groups["la16"] = "gray8"
        _png16(P("rgba16.png"), rgba.astype(np.uint16) * 257)
        groups["rgba16"] = "rgb8"
        # alpha channels: ignored by the network, applied to the cutout
        _save(la, P("la8.png"))
        groups["la8"] = "gray8"
        _save(rgba, P("rgba8.png"))
        groups["rgba8"] = "rgb8"
        # other containers
        Image.fromarray(rgb).save(P("rgb_bmp.bmp"))
        Image.fromarray(gray[:, :, 0]).save(P("gray_bmp.bmp"))
        Image.fromarray(rgb).save(P("rgb_tga.tga"))
        Image.fromarray(rgb).save(P("rgbrle_tga.tga"), compression="tga_rle")
        Image.fromarray(gray[:, :, 0]).save(P("gray_tga.tga"))
        Image.fromarray(rgb).save(P("rgb_ppm.ppm"))
        Image.fromarray(gray[:, :, 0]).save(P("gray_pgm.pgm"))
        groups.update({"rgb_bmp": "rgb8", "gray_bmp": "gray8", "rgb_tga": "rgb8",
                       "rgbrle_tga": "rgb8", "gray_tga": "gray8", "rgb_ppm": "rgb8",
                       "gray_pgm": "gray8"})
        # GIF: two frames from a 6x6x6 palette; the first one counts
        cube = np.array([(r, g, b) for r in range(0, 256, 51) for g in range(0, 256, 51)
                         for b in range(0, 256, 51)], dtype=np.uint8)
        idx = (rgb[:, :, 0] // 51).astype(np.int64) * 36 + (rgb[:, :, 1] // 51) * 6 + rgb[:, :, 2] // 51
        f0 = Image.fromarray(idx.astype(np.uint8), "P")
        f0.putpalette(cube.tobytes())
        f1 = Image.fromarray((215 - idx).astype(np.uint8), "P")
        f1.putpalette(cube.tobytes())
        f0.save(P("anim.gif"), save_all=True, append_images=[f1], optimize=False, duration=100, loop=0)
        with Image.open(P("anim.gif")) as im:
            assert getattr(im, "n_frames", 1) == 2
            first = np.asarray(im.convert("RGB"))
        assert np.array_equal(first, rgb), "PIL wrote a GIF whose first frame is not the image"
        groups["anim"] = "rgb8"
        # JPEG: baseline and progressive of the same image
        Image.fromarray(rgb).save(P("jpg_base.jpg"), quality=90)
        Image.fromarray(rgb).save(P("jpg_prog.jpg"), quality=90, progressive=True)
        with open(P("jpg_prog.jpg"), "rb") as f:
            assert b"\xff\xc2" in f.read(), "PIL did not write a progressive JPEG"

        outd = os.path.join(d, "out")
        _cli(model, [ind, "-o", outd + "/", "-t", "prob,rgba"], fast=True)
        prob = lambda s: _read(os.path.join(outd, s + "_prob.png"))[:, :, 0]  # noqa: E731
        cut = lambda s: _read(os.path.join(outd, s + "_rgba.png"))  # noqa: E731
        assert not np.array_equal(prob("rgb8"), prob("gray8")), "gray and colour give the same map"
        for stem, want in sorted(groups.items()):
            if stem != want:
                _assert_equal(prob(stem), prob(want), "prob %s = %s" % (stem, want))
        # decoded pixels, seen through the rgba output's colour channels
        for stem, src in [("rgb8", rgb), ("gray8", gray), ("rgb16", rgb), ("anim", rgb),
                          ("rgb_bmp", rgb), ("rgbrle_tga", rgb), ("gray_pgm", gray), ("la16", la),
                          ("rgba16", rgba)]:
            _assert_equal(cut(stem)[:, :, :3], ref.colour_of(src), "pixels %s" % stem)
        # rgba output alpha: round(prob * src_alpha / 255)
        for stem, src in [("la8", la), ("rgba8", rgba), ("la16", la), ("rgba16", rgba)]:
            m = ref.matte_from_prob(prob(stem))
            _assert_equal(cut(stem), ref.render(src, m, "rgba"), "rgba %s (alpha applied)" % stem)
        # progressive vs baseline JPEG, and vs PIL's decoding
        _assert_equal(cut("jpg_prog")[:, :, :3], cut("jpg_base")[:, :, :3],
                      "pixels progressive vs baseline", PROG_TOL)
        _assert_equal(prob("jpg_prog"), prob("jpg_base"), "prob progressive vs baseline", PROG_TOL)
        for stem in ("jpg_base", "jpg_prog"):
            pil = np.asarray(Image.open(P(stem + ".jpg")).convert("RGB"))
            mx, mean, _ = _diff_stats(cut(stem)[:, :, :3], pil)
            print("    %-34s max %d mean %.4f (vs PIL/libjpeg, informative)" % ("pixels " + stem, mx, mean))
    finally:
        shutil.rmtree(d, ignore_errors=True)
