"""Clean edges: guided refinement, alpha matting and foreground estimation
(engine/image/guided_filter.c, alpha_matting.c, foreground.c), through
build/libu2net.so (ctypes) and the program.

References: tests/reference/matting_ref.py (a numpy guided filter of the
same formula, rembg's trimap in numpy, synthetic composites whose alpha and
foreground are known, SAD / MSE / gradient error); and pymatting from PyPI
(estimate_alpha_cf, estimate_foreground_ml, and rembg's trimap with scipy)
in a virtual environment of these tests' own, BUILD/matting-venv, made on
first use with the `python3` on PATH and reused; the comparisons are
skipped, saying why, when it cannot be made.

Bounds: guided filter within 1e-5 of numpy; trimap exact; alpha within a
mean absolute error of 0.01 of pymatting's over the unknown pixels;
foreground within 0.01 over the pixels with alpha > 0.
"""
import ctypes as C
import os
import shutil
import time

import numpy as np

import testlib
import matting_ref as ref
import test_render as R

Skip = testlib.Skip
FP = C.POINTER(C.c_float)
UP = C.POINTER(C.c_ubyte)
GUIDED_TOL = 1e-5
ALPHA_TOL = 0.01
FOREGROUND_TOL = 0.01
FOREGROUND = {"auto": 0, "original": 1, "estimate": 2}

_lib = None


def lib():
    global _lib
    if _lib is None:
        L = R.lib()
        L.u2net_guided_filter.argtypes = [C.POINTER(R.Image), FP, C.c_int, C.c_float, C.c_int, FP,
                                          C.POINTER(R.Error)]
        L.u2net_guided_params.argtypes = [C.c_int, C.c_int, C.c_int, C.c_int,
                                          C.POINTER(C.c_int), C.POINTER(C.c_int)]
        L.u2net_guided_params.restype = None
        L.u2net_trimap.argtypes = [C.c_void_p, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int,
                                   C.c_void_p, C.POINTER(R.Error)]
        L.u2net_alpha_matting.argtypes = [C.POINTER(R.Image), C.c_void_p, FP, FP, C.POINTER(R.Error)]
        L.u2net_estimate_foreground.argtypes = [C.POINTER(R.Image), FP, FP, C.POINTER(R.Error)]
        L.u2net_matte_from_prob_image.argtypes = [C.c_void_p, C.POINTER(R.Image),
                                                  C.POINTER(R.MaskOpts), C.POINTER(R.Matte),
                                                  C.POINTER(R.Error)]
        _lib = L
    return _lib


def image(a):
    """An R.Image over a uint8 H x W (x C) array (kept alive by the caller)."""
    a = np.ascontiguousarray(a, np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    return R.Image(w, h, c, a.ctypes.data_as(UP)), a


def c_guided(img, p, radius, eps, s):
    im, keep = image(img)
    p = np.ascontiguousarray(p, np.float32)
    q = np.zeros_like(p)
    err = R.Error()
    rc = lib().u2net_guided_filter(C.byref(im), p.ctypes.data_as(FP), radius, eps, s,
                                   q.ctypes.data_as(FP), C.byref(err))
    assert rc == 0, err.msg.decode()
    return q


def c_trimap(prob, fg=240, bg=10, erode=10):
    prob = np.ascontiguousarray(prob, np.uint8)
    h, w = prob.shape
    out = np.zeros_like(prob)
    err = R.Error()
    rc = lib().u2net_trimap(prob.ctypes.data, w, h, fg, bg, erode, out.ctypes.data, C.byref(err))
    return rc, out, err.msg.decode()


def c_matting(img, trimap, init=None):
    im, keep = image(img)
    trimap = np.ascontiguousarray(trimap, np.uint8)
    alpha = np.zeros(trimap.shape, np.float32)
    init = None if init is None else np.ascontiguousarray(init, np.float32)
    err = R.Error()
    rc = lib().u2net_alpha_matting(C.byref(im), trimap.ctypes.data,
                                   None if init is None else init.ctypes.data_as(FP),
                                   alpha.ctypes.data_as(FP), C.byref(err))
    assert rc == 0, err.msg.decode()
    return alpha


def c_foreground(img, alpha):
    im, keep = image(img)
    alpha = np.ascontiguousarray(alpha, np.float32)
    fg = np.zeros(alpha.shape + (3,), np.float32)
    err = R.Error()
    rc = lib().u2net_estimate_foreground(C.byref(im), alpha.ctypes.data_as(FP),
                                         fg.ctypes.data_as(FP), C.byref(err))
    assert rc == 0, err.msg.decode()
    return fg


def c_matte(prob, img, **kw):
    """u2net_matte_from_prob_image: (rc, dict of the matte or None, message)."""
    im, keep = image(img)
    prob = np.ascontiguousarray(prob, np.uint8)
    if "foreground" in kw:
        kw["foreground"] = FOREGROUND[kw["foreground"]]
    m, err = R.Matte(), R.Error()
    rc = lib().u2net_matte_from_prob_image(prob.ctypes.data, C.byref(im), C.byref(R.mask_opts(**kw)),
                                           C.byref(m), C.byref(err))
    if rc:
        return rc, None, err.msg.decode()
    d = R.matte_dict(m)
    d["foreground"] = (np.ctypeslib.as_array(m.foreground, shape=(m.height, m.width, 3)).copy()
                       if m.foreground else None)
    lib().u2net_matte_free(C.byref(m))
    return 0, d, ""


# ---------------------------------------------------------------- pymatting

_venv = {}


def pymatting_python():
    """The Python of BUILD/matting-venv with pymatting, made when missing;
    raises Skip saying why it cannot be had."""
    if "python" not in _venv and "why" not in _venv:
        python, why = ref.pymatting_venv(os.path.join(testlib.BUILD, "matting-venv"),
                                         lambda line: print(line, flush=True))
        _venv["python" if python else "why"] = python or "pymatting not available: " + why
    if "why" in _venv:
        raise Skip(_venv["why"])
    return _venv["python"]


def run_pymatting(cases):
    """cases: {name: {"image": .., "prob": ..} or {"image": .., "trimap": ..}
    (+ "alpha")}; returns {name: {"trimap", "alpha", "foreground",
    "seconds_alpha", "seconds_foreground"}} from pymatting."""
    python = pymatting_python()
    d = testlib.workdir("pymatting")
    inp, out = os.path.join(d, "in.npz"), os.path.join(d, "out.npz")
    np.savez(inp, **{"%s.%s" % (n, k): v for n, c in cases.items() for k, v in c.items()})
    script = os.path.join(testlib.ROOT, "tests", "reference", "matting_ref.py")
    testlib.run([python, script, "pymatting", inp, out], timeout=900)
    data = np.load(out)
    res = {}
    for key in data.files:
        name, what = key.split(".", 1)
        res.setdefault(name, {})[what] = data[key]
    shutil.rmtree(d, ignore_errors=True)
    return res


# ---------------------------------------------------------------- inputs

def synthetic_cases():
    """[(name, image uint8, network-like prob uint8, true alpha, true
    foreground)]; the map as a network of ref.NETWORK_SCALE times fewer
    pixels a side would see it (net_width/net_height below say so)."""
    fg, alpha = ref.synthetic_subject()
    prob = ref.network_view(alpha)
    return [("synthetic_" + n, ref.composite(fg, alpha, bg), prob, alpha, fg)
            for n, bg in ref.backgrounds()]


def large_synthetic_case():
    """(name, image, prob): a synthetic composite at 640x480, whose 160,000
    or so unknown pixels take the solver's half-size initial guess."""
    fg, alpha = ref.synthetic_subject(480, 640, seed=6)
    bg = ref.backgrounds(480, 640)[2][1]
    return "synthetic_640x480", ref.composite(fg, alpha, bg), ref.network_view(alpha)


# The smaller shared photos (bike.jpg and 0002-01.jpg are for the benchmark).
PHOTOS = ["girl.png", "im_14.png", "im_27.png", "rifle2.jpeg", "long.jpg", "horse.jpg",
          "vangogh.jpeg"]


def photo_cases():
    """[(name, image, prob)]: the shared photos with the authors' published
    U2NetP maps (../shared/images/u2netp_results) as the probability."""
    try:
        from PIL import Image
    except ImportError:
        raise Skip("Pillow not installed (python3-pil)")
    results = os.path.join(os.path.dirname(testlib.REAL_IMAGES), "u2netp_results")
    out = []
    for n in PHOTOS:
        path, mp = os.path.join(testlib.REAL_IMAGES, n), os.path.join(results, n.rsplit(".", 1)[0] + ".png")
        if os.path.exists(path) and os.path.exists(mp):
            with Image.open(path) as im, Image.open(mp) as pm:
                rgb = np.asarray(im.convert("RGB"))
                prob = np.asarray(pm.convert("L"))
            if prob.shape == rgb.shape[:2]:
                out.append((n.rsplit(".", 1)[0], rgb, prob))
    if not out:
        raise Skip("missing %s or %s" % (testlib.REAL_IMAGES, results))
    return out


# ---------------------------------------------------------------- tests

def test_guided_filter_against_numpy():
    """The guided filter, plain (s = 1) and fast (s > 1), RGB, gray and RGBA
    guides, odd sizes: within 1e-5 of the numpy formula."""
    rng = np.random.default_rng(11)
    fg, alpha = ref.synthetic_subject(97, 131, seed=4)
    rgb = ref.composite(fg, alpha, ref.backgrounds(97, 131)[2][1])
    p = ref.network_view(alpha, 24) / 255.0
    guides = {"rgb": rgb, "gray": rgb[:, :, 1], "rgba": np.dstack([rgb, rng.integers(0, 256, rgb.shape[:2])])}
    worst = 0.0
    for gname, g in guides.items():
        for radius, eps, s in [(1, 1e-3, 1), (2, 1e-3, 1), (6, 1e-2, 2), (9, 1e-4, 3), (4, 1e-3, 5),
                               (30, 1e-3, 1)]:
            got = c_guided(g, p, radius, eps, s)
            want = ref.guided_filter(g, p, radius, eps, s)
            err = float(np.abs(got - want).max())
            worst = max(worst, err)
            assert err <= GUIDED_TOL, "%s r %d eps %g s %d: max error %.3g" % (gname, radius, eps, s, err)
    print("    max error against numpy %.2g over %d cases" % (worst, 6 * len(guides)))
    for w, h, net, r in [(400, 300, 0, 0), (4000, 3000, 320, 0), (4000, 3000, 1024, 0), (5, 3, 0, 0),
                         (3000, 4000, 0, 3), (20000, 600, 0, 0)]:
        got_r, got_s = C.c_int(), C.c_int()
        lib().u2net_guided_params(w, h, net, r, C.byref(got_r), C.byref(got_s))
        assert (got_r.value, got_s.value) == ref.guided_params(w, h, net, r), (w, h, net, r)


def test_trimap_as_rembg():
    """The trimap against rembg's (numpy erosion of the same definition):
    thresholds, erode sizes 0, 1, 2, 3, 10, 25 (odd and even), sizes below
    and above the erode size, exactly."""
    rng = np.random.default_rng(5)
    _, alpha = ref.synthetic_subject(61, 83, seed=9)
    maps = [ref.network_view(alpha, 16), rng.integers(0, 256, (17, 9)).astype(np.uint8),
            np.full((7, 5), 255, np.uint8), np.zeros((3, 40), np.uint8), np.array([[250]], np.uint8)]
    n = 0
    for prob in maps:
        for fg, bg in [(240, 10), (128, 128), (200, 60), (255, 0)]:
            for er in [0, 1, 2, 3, 10, 25]:
                rc, got, msg = c_trimap(prob, fg, bg, er)
                assert rc == 0, msg
                want = ref.trimap(prob, fg, bg, er)
                assert np.array_equal(got, want), "%s fg %d bg %d erode %d: %d pixels differ" % (
                    prob.shape, fg, bg, er, int((got != want).sum()))
                n += 1
    print("    %d trimaps equal" % n)


_pm = {}


def _pymatting_results():
    """pymatting on the photos and the synthetic set, computed once a run."""
    if "res" not in _pm:
        cases = {}
        for name, img, prob in photo_cases():
            cases[name] = {"image": img, "prob": prob}
        for name, img, prob, _, _ in synthetic_cases():
            cases[name] = {"image": img, "prob": prob}
        name, img, prob = large_synthetic_case()
        cases[name] = {"image": img, "prob": prob}
        _pm["inputs"] = cases
        _pm["res"] = run_pymatting(cases)
    return _pm["inputs"], _pm["res"]


def test_alpha_against_pymatting():
    """Alpha matting of the shared photos (the authors' U2NetP maps) and the
    synthetic composites: rembg's trimap from scipy equals ours, and the
    alpha is within 0.01 mean absolute error of estimate_alpha_cf over the
    unknown pixels."""
    cases, res = _pymatting_results()
    worst = 0.0
    for name in sorted(cases):
        img, prob, pm = cases[name]["image"], cases[name]["prob"], res[name]
        rc, tri, msg = c_trimap(prob)
        assert rc == 0, msg
        assert np.array_equal(tri, pm["trimap"]), "%s: trimap differs from scipy's on %d pixels" % (
            name, int((tri != pm["trimap"]).sum()))
        unknown = tri == 128
        t = time.perf_counter()
        got = c_matting(img, tri, prob / 255.0)
        sec = time.perf_counter() - t
        diff = np.abs(got - pm["alpha"])
        mae = float(diff[unknown].mean()) if unknown.any() else 0.0
        worst = max(worst, mae)
        print("    %-18s %4dx%-4d unknown %6d  MAE %.5f  max %.3f  (%.2f s, pymatting %.2f s)" % (
            name, img.shape[1], img.shape[0], int(unknown.sum()), mae, float(diff.max()), sec,
            float(pm["seconds_alpha"])))
        assert mae <= ALPHA_TOL, "%s: alpha MAE %.4f over the unknown pixels" % (name, mae)


def _gomp():
    """libgomp, to set the library's thread count with (skips without it)."""
    for name in ("libgomp.so.1", "libgomp.so"):
        try:
            return C.CDLL(name)
        except OSError:
            pass
    raise Skip("no libgomp to set the thread count with")


def _default_threads(gomp):
    gomp.omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count() or 1)


def test_alpha_threads():
    """Alpha matting gives the same bits on 1, 2 and 3 threads (the
    factorization and substitutions run as a wavefront of rows, the sums in
    fixed chunks), with and without the half-size initial guess."""
    gomp = _gomp()
    name, img, prob = large_synthetic_case()
    cases = [(name, img, prob), ("synthetic_320x240", img[::2, ::2], prob[::2, ::2])]
    try:
        for name, img, prob in cases:
            rc, tri, msg = c_trimap(prob)
            assert rc == 0, msg
            got = {}
            for threads in (1, 2, 3):
                gomp.omp_set_num_threads(threads)
                got[threads] = c_matting(img, tri, prob / 255.0)
            assert np.array_equal(got[1], got[2]) and np.array_equal(got[1], got[3]), \
                "%s: the thread count changes the alpha (max %.3g)" % (
                    name, float(np.abs(got[1] - got[2]).max()))
            print("    %-18s unknown %6d: 1, 2 and 3 threads equal" % (name, int((tri == 128).sum())))
    finally:
        _default_threads(gomp)


def test_foreground_threads():
    """Foreground estimation gives the same bits on 1, 2 and 3 threads (the
    bands of each level go to the threads in turn, each sweep a wavefront),
    on levels large enough to be threaded, with a last band of fewer than 8
    rows and a width that is no multiple of the vectors'."""
    gomp = _gomp()
    name, img, prob = large_synthetic_case()
    alpha = prob.astype(np.float32) / 255.0
    cases = [(name, img, alpha), ("synthetic_637x477", img[:477, :637], alpha[:477, :637])]
    try:
        for name, img, alpha in cases:
            got = {}
            for threads in (1, 2, 3):
                gomp.omp_set_num_threads(threads)
                got[threads] = c_foreground(img, alpha)
            assert np.array_equal(got[1], got[2]) and np.array_equal(got[1], got[3]), \
                "%s: the thread count changes the foreground (max %.3g)" % (
                    name, float(np.abs(got[1] - got[2]).max()))
            print("    %-18s 1, 2 and 3 threads equal" % name)
    finally:
        _default_threads(gomp)


def test_foreground_against_pymatting():
    """Foreground estimation on pymatting's own alpha of each case: within
    0.01 mean absolute error of estimate_foreground_ml over the pixels with
    alpha > 0 (where the colours show)."""
    cases, res = _pymatting_results()
    for name in sorted(cases):
        img, pm = cases[name]["image"], res[name]
        alpha = pm["alpha"].astype(np.float32)
        t = time.perf_counter()
        got = c_foreground(img, alpha)
        sec = time.perf_counter() - t
        diff = np.abs(got - pm["foreground"])
        seen = alpha > 0
        mae = float(diff[seen].mean())
        print("    %-18s MAE alpha>0 %.1e  all %.1e  alpha-weighted %.1e  max %.1e  (%.3f s, pymatting %.3f s)" % (
            name, mae, float(diff.mean()), float((diff * alpha[..., None]).sum() / (3 * alpha.sum())),
            float(diff.max()),
            sec, float(pm["seconds_foreground"])))
        assert mae <= FOREGROUND_TOL, "%s: foreground MAE %.4f where alpha > 0" % (name, mae)


def test_synthetic_quality():
    """On the synthetic composites (known alpha and foreground, four
    backgrounds), SAD, MSE and gradient error of the plain map, guided
    refinement and alpha matting against the truth: guided and matted both
    beat plain on each; estimated foreground colours are closer to the true
    ones than the composite's own where the alpha is soft."""
    rows = []
    for name, img, prob, alpha, fg in synthetic_cases():
        errs = {}
        net = max(img.shape[:2]) // ref.NETWORK_SCALE
        for mode, kw in [("plain", {}), ("guided", {"guided": 1}), ("matted", {"alpha_matting": 1})]:
            rc, m, msg = c_matte(prob, img, net_width=net, net_height=net, **kw)
            assert rc == 0, msg
            errs[mode] = ref.alpha_errors(m["alpha"] / 255.0, alpha)
            if mode == "matted":
                soft = (alpha > 0.05) & (alpha < 0.95)
                est = np.abs(m["foreground"] / 255.0 - fg)[soft].mean()
                orig = np.abs(img / 255.0 - fg)[soft].mean()
                errs["fg"] = (est, orig)
        rows.append((name, errs))
        print("    %-20s SAD plain %6.2f guided %6.2f matted %6.2f | MSE %.4f %.4f %.4f | "
              "grad %6.2f %6.2f %6.2f | fg error %.3f (original colours %.3f)" % (
                  (name,) + tuple(errs[k][0] for k in ("plain", "guided", "matted")) +
                  tuple(errs[k][1] for k in ("plain", "guided", "matted")) +
                  tuple(errs[k][2] for k in ("plain", "guided", "matted")) + errs["fg"]))
    for name, errs in rows:
        for k, what in enumerate(("SAD", "MSE", "gradient error")):
            for mode in ("guided", "matted"):
                assert errs[mode][k] < errs["plain"][k], "%s: %s %s %.4f not below plain %.4f" % (
                    name, mode, what, errs[mode][k], errs["plain"][k])
        assert errs["fg"][0] < errs["fg"][1], "%s: estimated foreground no closer to the truth" % name


def test_matte_options():
    """u2net_matte_from_prob_image: guided and matted alphas are the
    algorithms' outputs rounded; the estimated foreground is there by
    default with them and with --foreground estimate, not otherwise; the
    cutouts use it; without the image those options are refused."""
    name, img, prob, _, _ = synthetic_cases()[0]
    img, prob = img[:80, :100], prob[:80, :100]
    h, w = prob.shape
    r, s = ref.guided_params(w, h)
    rc, m, msg = c_matte(prob, img, guided=1)
    assert rc == 0, msg
    q = c_guided(img, prob.astype(np.float32) * np.float32(1 / 255), r, np.float32(1e-4), s)
    want = np.clip(np.floor(q * np.float32(255) + np.float32(0.5)), 0, 255)
    assert np.array_equal(m["alpha"], want.astype(np.uint8)), "guided alpha"
    assert m["foreground"] is not None and np.array_equal(m["prob"], prob)
    rc, m, msg = c_matte(prob, img, alpha_matting=1, matting_bg_threshold=20, erode_size=3)
    assert rc == 0, msg
    _, tri, _ = c_trimap(prob, 240, 20, 3)
    a = c_matting(img, tri, prob.astype(np.float32) * np.float32(1 / 255))
    assert np.array_equal(m["alpha"], np.clip(np.floor(a * np.float32(255) + np.float32(0.5)), 0, 255)
                          .astype(np.uint8)), "matted alpha"
    assert m["foreground"] is not None
    rc, m0, _ = c_matte(prob, img)
    assert m0["foreground"] is None, "foreground estimated without being asked"
    rc, m1, _ = c_matte(prob, img, guided=1, foreground="original")
    assert m1["foreground"] is None
    rc, m2, _ = c_matte(prob, img, foreground="estimate")
    assert m2["foreground"] is not None and np.array_equal(m2["alpha"], m0["alpha"])
    want_fg = c_foreground(img, m2["alpha"].astype(np.float32) * np.float32(1 / 255))
    assert np.array_equal(m2["foreground"],
                          np.clip(np.floor(want_fg * np.float32(255) + np.float32(0.5)), 0, 255).astype(np.uint8))
    # the rgba cutout's colours are the estimated ones
    m, err = R.Matte(), R.Error()
    im, keep = image(img)
    o = R.mask_opts(foreground=FOREGROUND["estimate"])
    p8 = np.ascontiguousarray(prob)
    assert lib().u2net_matte_from_prob_image(p8.ctypes.data, C.byref(im), C.byref(o), C.byref(m),
                                             C.byref(err)) == 0, err.msg.decode()
    out = R.Image()
    assert lib().u2net_render(C.byref(im), C.byref(m), R.OUT["rgba"], None, C.byref(out),
                              C.byref(err)) == 0, err.msg.decode()
    rgba = np.ctypeslib.as_array(out.data, shape=(h, w, 4)).copy()
    lib().u2net_image_free(C.byref(out))
    lib().u2net_matte_free(C.byref(m))
    assert np.array_equal(rgba[:, :, :3], m2["foreground"]) and np.array_equal(rgba[:, :, 3], m2["alpha"])
    # no image: refused with one line
    for kw in ({"guided": 1}, {"alpha_matting": 1}, {"foreground": 2}):
        rc, m, err = R.c_matte(prob, **kw)
        assert rc == 4 and "need the image" in err.msg.decode(), (kw, rc, err.msg)
        lib().u2net_matte_free(C.byref(m))


def test_bad_input():
    """Thresholds out of range or inverted, erode sizes out of range: one
    clear error. An erode size larger than the image, an all-foreground or
    all-background map (no unknown pixel), 1-pixel-wide and 1x1 images, a
    checkerboard trimap: defined results, within the iteration bound."""
    name, img, prob, _, _ = synthetic_cases()[1]
    img, prob = img[:60, :70], prob[:60, :70]
    for kw, words in [({"alpha_matting": 1, "matting_fg_threshold": 300}, "alpha matting needs"),
                      ({"alpha_matting": 1, "matting_bg_threshold": -1}, "alpha matting needs"),
                      ({"alpha_matting": 1, "matting_fg_threshold": 20, "matting_bg_threshold": 30},
                       "alpha matting needs"),
                      ({"alpha_matting": 1, "erode_size": 5000}, "erode size"),
                      ({"guided": 1, "guided_radius": -2}, "guided refinement needs"),
                      ({"guided": 1, "guided_eps": 0.0}, "guided refinement needs"),
                      ({"guided": 1, "guided_radius": 1001}, "guided refinement needs"),
                      ({"foreground": 7}, "unknown foreground")]:
        if kw.get("foreground") == 7:
            kw = dict(kw)
            im, keep = image(img)
            m, err = R.Matte(), R.Error()
            o = R.mask_opts(**kw)
            rc = lib().u2net_matte_from_prob_image(np.ascontiguousarray(prob).ctypes.data, C.byref(im),
                                                   C.byref(o), C.byref(m), C.byref(err))
            msg = err.msg.decode()
        else:
            rc, _, msg = c_matte(prob, img, **kw)
        assert rc == 4 and words in msg and "\n" not in msg, (kw, rc, msg)
        print("    %s -> %s" % (kw, msg))
    rc, _, msg = c_trimap(prob, 10, 20, 3)
    assert rc == 4 and "bg <= fg" in msg, msg
    # defined results
    for what, p in [("all foreground", np.full_like(prob, 255)), ("all background", np.zeros_like(prob))]:
        rc, m, msg = c_matte(p, img, alpha_matting=1)
        assert rc == 0, msg
        assert np.array_equal(m["alpha"], p), what
    rc, m, msg = c_matte(prob, img, alpha_matting=1, erode_size=200)
    assert rc == 0, msg
    assert np.array_equal(m["alpha"], prob), \
        "erode 200 on 70x60 leaves no known pixel: the map is kept as it is"
    for shape in [(1, 50), (50, 1), (1, 1), (2, 2), (3, 1)]:
        sub = np.ascontiguousarray(np.resize(img, shape + (3,)))
        p = np.ascontiguousarray(np.resize(prob, shape))
        for kw in ({"guided": 1}, {"alpha_matting": 1, "erode_size": 0}, {"foreground": "estimate"}):
            rc, m, msg = c_matte(p, sub, **kw)
            assert rc == 0, (shape, kw, msg)
    # a 1-pixel-wide band of unknowns has no window: it keeps its start
    tri = np.array([[0, 128, 255]] * 1, np.uint8)
    a = c_matting(np.zeros((1, 3, 3), np.uint8), tri, np.array([[0, 0.3, 1]], np.float32))
    assert np.allclose(a, [[0, 0.3, 1]]), a
    # adversarial trimaps: checkerboards of unknowns between known pixels,
    # on noise (at 400x400 with the half-size initial guess, whose own
    # trimap has no known pixel for the 1-pixel board); the solver stops at
    # its iteration bound
    rng = np.random.default_rng(2)
    for side in (120, 400):
        noise = rng.integers(0, 256, (side, side, 3)).astype(np.uint8)
        y, x = np.mgrid[0:side, 0:side]
        for what, tri in [("checkerboard 1", np.where((x + y) % 2 == 0, 128, np.where(x < side // 2, 0, 255))),
                          ("checkerboard 8", np.where(((x // 8) + (y // 8)) % 2 == 0, 128,
                                                      np.where((x // 8) % 4 == 1, 255, 0))),
                          ("one known", np.where((x == 0) & (y == 0), 255, 128))]:
            what = "%s, %dx%d," % (what, side, side)
            t = time.perf_counter()
            a = c_matting(noise, tri.astype(np.uint8))
            sec = time.perf_counter() - t
            assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1, what
            print("    %s on noise: %.2f s" % (what, sec))
            assert sec < 60, "%s: %.1f s" % (what, sec)


def test_program_options():
    """The program: --guided, --alpha-matting (with --fg/--bg-threshold
    and --erode-size) and --foreground write their outputs; the same bytes
    with 1 and 2 threads; usage errors exit 2 with one line; --fg-threshold
    without --alpha-matting is still --refine's."""
    testlib.need_engine_and_pil()
    from PIL import Image
    d = testlib.scratch_dir("matting_cli")
    model = testlib.random_u2netp("matting", 17)
    src = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")
    runs = {"plain": [], "guided": ["--guided", "--guided-radius", "6"],
            "matted": ["--alpha-matting", "--bg-threshold", "20", "--erode-size", "3"],
            "original": ["--alpha-matting", "--foreground", "original"]}
    got = {}
    for name, extra in runs.items():
        for threads in ("1", "2") if name in ("guided", "matted") else ("2",):
            out = os.path.join(d, name + threads) + "/"
            env = dict(os.environ, OMP_NUM_THREADS=threads)
            testlib.run([testlib.U2NET, "-m", model, "--size", "64", src, "-o", out, "-t", "rgba,mask",
                         "-q"] + extra, env=env)
            got[name, threads] = [np.asarray(Image.open(os.path.join(out, "sample_%s.png" % t)))
                                  for t in ("rgba", "mask")]
        for a, b in zip(got.get((name, "1"), got[name, "2"]), got[name, "2"]):
            assert np.array_equal(a, b), "%s: 1 and 2 threads differ" % name
    plain, matted, original = got["plain", "2"][0], got["matted", "2"][0], got["original", "2"][0]
    assert np.array_equal(original[:, :, :3], plain[:, :, :3]), \
        "--foreground original keeps the photo's colours"
    soft = (matted[:, :, 3] > 0) & (matted[:, :, 3] < 255)
    assert soft.any() and not np.array_equal(matted[:, :, :3][soft], plain[:, :, :3][soft]), \
        "--alpha-matting: estimated colours at soft edges"
    for args, words in [(["--alpha-matting", "--bg-threshold", "250"], "--bg-threshold 250 must not be above"),
                        (["--refine", "--alpha-matting"], "give one"),
                        (["--guided-radius", "0"], "--guided-radius: '0' is not a radius"),
                        (["--erode-size", "1001"], "--erode-size: '1001'"),
                        (["--guided-eps", "2"], "--guided-eps: '2'"),
                        (["--foreground", "blue"], "--foreground: unknown value 'blue'"),
                        (["--bg-threshold", "250"], "--bg-threshold 250 must be below")]:
        p = testlib.run([testlib.U2NET, "-m", model, src, "-o", os.path.join(d, "x.png")] + args,
                        check=False)
        lines = p.stderr_text.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and words in lines[0], (args, p.returncode, lines)
