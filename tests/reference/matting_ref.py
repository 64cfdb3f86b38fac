"""numpy references for the clean-edge algorithms (engine/image/guided_filter.c,
alpha_matting.c's trimap), synthetic composites whose alpha and foreground
are known, and the matting benchmarks' error measures.

Run as a program inside a virtual environment with pymatting (tests/
test_matting.py and bench/matting_bench.py make one), it is the pymatting
side of the comparisons:

    python matting_ref.py pymatting IN.npz OUT.npz

IN.npz holds, for each case NAME, NAME.image (H x W x 3 uint8) and
NAME.prob (H x W uint8) or NAME.trimap (H x W uint8, 0/128/255) and
optionally NAME.alpha (float, foreground only). OUT.npz gets NAME.trimap
(rembg's, from scipy), NAME.alpha (estimate_alpha_cf), NAME.foreground
(estimate_foreground_ml of NAME.alpha when given, else of the alpha just
estimated) and NAME.seconds_alpha / NAME.seconds_foreground.
"""
import sys
import time

import numpy as np


# ---------------------------------------------------------------- guided filter

def box_mean(a, r):
    """Mean over the (2r+1)^2 window clipped to the array, per channel
    (a: H x W or H x W x C), in float64."""
    a = np.asarray(a, np.float64)
    h, w = a.shape[:2]

    def along(x, axis, n):
        c = np.cumsum(x, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        idx = np.arange(n)
        hi = np.minimum(idx + r, n - 1) + 1
        lo = np.maximum(idx - r, 0)
        shape = [1] * x.ndim
        shape[axis] = n
        count = (hi - lo).reshape(shape)
        return (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / count

    return along(along(a, 0, h), 1, w)


def guided_params(width, height, net_side=0, radius=0):
    """The radius and subsampling of u2net_guided_params (engine/u2net.h)."""
    side = max(width, height)
    net = net_side if net_side > 0 else 320
    r = radius
    if r <= 0:
        r = min(max(int(np.floor(4.0 * side / net + 0.5)), 2), 1000)
    s = max(r // 4, int(np.ceil(np.sqrt(width * height / float(1 << 20)))), 1)
    return r, s


def guided_filter(image, p, radius, eps, s):
    """The guided filter of engine/image/guided_filter.c in float64: image
    H x W x C uint8 (gray replicated, alpha ignored), p H x W in 0..1;
    returns q, H x W."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    # colours as the C code has them: byte * (1 / 255) in float; on the
    # grid, the block's mean byte / 255
    rgb8 = (img[:, :, :3] if img.shape[2] >= 3 else np.repeat(img[:, :, :1], 3, 2)).astype(np.float64)
    rgb = (rgb8.astype(np.float32) * np.float32(1 / 255)).astype(np.float64)
    p = np.asarray(p, np.float64)
    H, W = p.shape
    hs, ws = -(-H // s), -(-W // s)
    rs = max(1, (radius + s // 2) // s)
    # grid: the mean of each s x s block, clipped at the edges, over n =
    # min(4, block height) of its rows, y0 + (2k + 1) bh // 2n for k < n
    rows = []
    for j in range(hs):
        y0, bh = j * s, min(s, H - j * s)
        n = min(4, bh)
        rows.append([y0 + (2 * k + 1) * bh // (2 * n) for k in range(n)])
    xs = np.arange(W) // s
    count_x = np.bincount(xs, minlength=ws).astype(np.float64)

    def block_mean(x):
        out = np.zeros((hs, ws) + x.shape[2:])
        for j, ys in enumerate(rows):
            sums = np.zeros((ws,) + x.shape[2:])
            np.add.at(sums, xs, x[ys].sum(0))
            out[j] = sums / (len(ys) * count_x).reshape((ws,) + (1,) * (x.ndim - 2))
        return out

    gi = (block_mean(rgb8) / 255.0).astype(np.float32).astype(np.float64)
    gp = block_mean(p).astype(np.float32).astype(np.float64)
    mi = box_mean(gi, rs)
    mp = box_mean(gp, rs)
    corr_ip = box_mean(gi * gp[:, :, None], rs)
    cov = corr_ip - mi * mp[:, :, None]
    corr_ii = box_mean(gi[:, :, :, None] * gi[:, :, None, :], rs)
    var = corr_ii - mi[:, :, :, None] * mi[:, :, None, :] + eps * np.eye(3)
    a = np.linalg.solve(var, cov[..., None])[..., 0]
    b = mp - (a * mi).sum(-1)
    ma = box_mean(a, rs)
    mb = box_mean(b, rs)

    def taps(n, grid_n):
        u = np.clip((np.arange(n) + 0.5) / s - 0.5, 0, grid_n - 1)
        lo = u.astype(int)
        return lo, np.minimum(lo + 1, grid_n - 1), u - lo

    y0, y1, fy = taps(H, hs)
    x0, x1, fx = taps(W, ws)

    def up(g):
        rows = g[y0] + fy.reshape((-1, 1) + (1,) * (g.ndim - 2)) * (g[y1] - g[y0])
        return rows[:, x0] + fx.reshape((1, -1) + (1,) * (g.ndim - 2)) * (rows[:, x1] - rows[:, x0])

    return (up(ma) * rgb).sum(-1) + up(mb)


# ---------------------------------------------------------------- trimap

def erode(mask, size, border):
    """scipy.ndimage.binary_erosion(mask, ones((size, size)), border_value=border)
    (the 3x3 cross when size is 0), in numpy."""
    m = np.asarray(mask, bool)
    if size == 0:
        p = np.pad(m, 1, constant_values=border)
        return m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    lo, hi = size // 2, size - 1 - size // 2
    zeros = np.pad((~m).astype(np.int64), ((lo, hi), (lo, hi)), constant_values=0 if border else 1)
    c = np.pad(zeros.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = m.shape
    window = c[size:size + h, size:size + w] - c[:h, size:size + w] - c[size:size + h, :w] + c[:h, :w]
    return window == 0


def trimap(prob, fg=240, bg=10, erode_size=10):
    """rembg's alpha_matting_cutout trimap of a uint8 map: 255 / 0 / 128."""
    prob = np.asarray(prob)
    is_fg = erode(prob > fg, erode_size, False)
    is_bg = erode(prob < bg, erode_size, True)
    t = np.full(prob.shape, 128, np.uint8)
    t[is_fg] = 255
    t[is_bg] = 0
    return t


# ---------------------------------------------------------------- synthetic composites

def synthetic_subject(h=240, w=320, seed=3):
    """A known foreground and alpha: a head-like blob with fine hair-like
    strands (alpha 0.15..1 along thin curves) and a soft shoulder. Returns
    (foreground H x W x 3 float 0..1, alpha H x W float 0..1)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy, rx, ry = 0.5 * w, 0.62 * h, 0.22 * w, 0.30 * h
    d = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    alpha = np.clip((1.0 - d) * 0.5 * min(rx, ry) / 1.5 + 0.5, 0, 1)
    alpha = np.maximum(alpha, np.clip((y - 0.86 * h) / 6.0, 0, 1))
    # strands: curves leaving the blob, a pixel or two wide, fading out
    for k in range(70):
        t0 = rng.uniform(-np.pi * 0.95, -np.pi * 0.05)
        length = rng.uniform(0.25, 0.55) * h
        curl = rng.uniform(-2.5, 2.5)
        width = rng.uniform(0.5, 1.3)
        ts = np.linspace(0, 1, 400)
        ang = t0 + curl * ts * 0.6
        px = cx + rx * np.cos(t0) * 0.9 + np.cumsum(np.cos(ang)) * length / 400
        py = cy + ry * np.sin(t0) * 0.9 + np.cumsum(np.sin(ang)) * length / 400
        strength = rng.uniform(0.5, 1.0) * (1 - ts) ** 0.7
        for sx, sy, st in zip(px[::3], py[::3], strength[::3]):
            x0, y0 = int(sx) - 3, int(sy) - 3
            if x0 < 0 or y0 < 0 or x0 + 7 > w or y0 + 7 > h:
                continue
            win = (slice(y0, y0 + 7), slice(x0, x0 + 7))
            r2 = (x[win] - sx) ** 2 + (y[win] - sy) ** 2
            alpha[win] = np.maximum(alpha[win], np.where(r2 < 9, st * np.exp(-r2 / (2 * width ** 2)), 0))
    alpha = np.clip(alpha, 0, 1)
    # the subject's colour: warm hair-brown, varying slowly, lighter tips
    base = np.stack([0.45 + 0.15 * np.sin(x / 37.0), 0.28 + 0.08 * np.cos(y / 29.0),
                     0.16 + 0.05 * np.sin((x + y) / 41.0)], -1)
    fg = np.clip(base + 0.25 * (1 - alpha[..., None]) * np.array([0.9, 0.7, 0.4]), 0, 1)
    return fg, alpha


def backgrounds(h=240, w=320, seed=5):
    """Several backgrounds (name, H x W x 3 float): flat blue sky, a green
    gradient, a grey-green texture (noise smoothed over a few pixels, like
    foliage out of focus), a red-white checker."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.broadcast_to(np.array([0.45, 0.65, 0.92]), (h, w, 3)).copy()
    grad = np.stack([0.1 + 0.3 * x / w, 0.5 + 0.4 * y / h, 0.2 + 0.1 * x / w], -1)
    noise = rng.standard_normal((h, w))
    for _ in range(3):  # smoothing: three passes of a 5x5 box
        noise = box_mean(noise, 2)
    noise /= noise.std()
    texture = np.clip(np.array([0.35, 0.5, 0.3]) + 0.12 * noise[..., None] * np.array([1.0, 1.2, 0.8]), 0, 1)
    checker = (((x // 16) + (y // 16)) % 2)[..., None] * np.array([0.0, 0.8, 0.8]) + np.array([0.9, 0.15, 0.15])
    return [("sky", sky), ("gradient", grad), ("texture", texture), ("checker", np.clip(checker, 0, 1))]


def composite(fg, alpha, bg):
    """uint8 image of fg over bg with alpha."""
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.floor(np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


NETWORK_SCALE = 3  # image pixels per network pixel in the synthetic set


def network_view(alpha, side=None):
    """What the network's map looks like: the true alpha seen on a side x
    side grid (area average; side = longer side / NETWORK_SCALE) and
    resized back bilinearly, uint8 -- soft, blurry edges that smear thin
    strands, the failure the clean edges fix."""
    h, w = alpha.shape
    side = side or max(h, w) // NETWORK_SCALE
    ys = (np.arange(side + 1) * h // side)
    xs = (np.arange(side + 1) * w // side)
    small = np.array([[alpha[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean() for j in range(side)]
                      for i in range(side)])
    u = np.clip((np.arange(h) + 0.5) * side / h - 0.5, 0, side - 1)
    v = np.clip((np.arange(w) + 0.5) * side / w - 0.5, 0, side - 1)
    u0, v0 = u.astype(int), v.astype(int)
    u1, v1 = np.minimum(u0 + 1, side - 1), np.minimum(v0 + 1, side - 1)
    fu, fv = (u - u0)[:, None], (v - v0)[None, :]
    rows0, rows1 = small[u0], small[u1]
    top = rows0[:, v0] * (1 - fv) + rows0[:, v1] * fv
    bottom = rows1[:, v0] * (1 - fv) + rows1[:, v1] * fv
    return np.floor((top * (1 - fu) + bottom * fu) * 255).astype(np.uint8)


# ---------------------------------------------------------------- error measures

def gaussian_gradient_magnitude(a, sigma=1.4):
    """|grad a| by first derivatives of a Gaussian (Rhemann et al.'s
    gradient error), edges replicated."""
    r = int(np.ceil(3 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    dg = -t / sigma ** 2 * g
    dg /= np.abs(dg).sum() / 2

    def conv(x, k, axis):
        p = np.pad(x, [(r, r) if ax == axis else (0, 0) for ax in range(2)], mode="edge")
        out = np.zeros_like(x)
        n = x.shape[axis]
        for i, kv in enumerate(k):
            out += kv * np.take(p, np.arange(i, i + n), axis=axis)
        return out

    gx = conv(conv(a, g, 0), dg, 1)
    gy = conv(conv(a, g, 1), dg, 0)
    return np.hypot(gx, gy)


def alpha_errors(alpha, truth):
    """SAD (sum of absolute differences / 1000), MSE and gradient error
    (sum of squared gradient-magnitude differences / 1000) of an alpha in
    0..1 against the truth, over the whole image."""
    a, t = np.asarray(alpha, np.float64), np.asarray(truth, np.float64)
    sad = np.abs(a - t).sum() / 1000.0
    mse = ((a - t) ** 2).mean()
    grad = ((gaussian_gradient_magnitude(a) - gaussian_gradient_magnitude(t)) ** 2).sum() / 1000.0
    return sad, mse, grad


# ---------------------------------------------------------------- pymatting side

PYMATTING_PACKAGES = ["pymatting"]  # brings numba and scipy


def pymatting_venv(venv, log=print):
    """(python, None) for the virtual environment `venv` with pymatting,
    made with the python3 on PATH and installed from PyPI when missing;
    (None, why not) when it cannot be had."""
    import os
    import shutil
    import subprocess
    python = os.path.join(venv, "bin", "python")

    def usable():
        return os.path.exists(python) and subprocess.run(
            [python, "-c", "import pymatting, scipy.ndimage"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0

    if usable():
        return python, None
    creator = shutil.which("python3")
    if not creator:
        return None, "no python3 on PATH to make %s with" % venv
    log("    making %s (pip install %s)" % (venv, " ".join(PYMATTING_PACKAGES)))
    for cmd in ([creator, "-m", "venv", "--clear", venv],
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                + PYMATTING_PACKAGES):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode != 0:
            last = (p.stdout.strip().splitlines() or ["no output"])[-1]
            return None, "cannot make %s (%s): %s" % (venv, " ".join(os.path.basename(c) for c in cmd[:3]), last)
    if not usable():
        return None, "%s cannot import pymatting" % python
    return python, None


def run_pymatting(in_path, out_path):
    from scipy.ndimage import binary_erosion
    from pymatting import estimate_alpha_cf, estimate_foreground_ml
    data = np.load(in_path)
    names = sorted({k.split(".")[0] for k in data.files})
    out = {}
    for name in names:
        image = data[name + ".image"] / 255.0
        if name + ".prob" in data.files:
            mask = data[name + ".prob"]
            # rembg's alpha_matting_cutout, defaults 240 / 10 / 10
            size = int(data[name + ".erode"]) if name + ".erode" in data.files else 10
            fg_t = int(data[name + ".fg"]) if name + ".fg" in data.files else 240
            bg_t = int(data[name + ".bg"]) if name + ".bg" in data.files else 10
            structure = np.ones((size, size), dtype=np.uint8) if size > 0 else None
            is_fg = binary_erosion(mask > fg_t, structure=structure)
            is_bg = binary_erosion(mask < bg_t, structure=structure, border_value=1)
            tri = np.full(mask.shape, 128, np.uint8)
            tri[is_fg] = 255
            tri[is_bg] = 0
        else:
            tri = data[name + ".trimap"]
        out[name + ".trimap"] = tri
        if name + ".alpha" in data.files:
            alpha = data[name + ".alpha"]
        else:
            t = time.perf_counter()
            alpha = estimate_alpha_cf(image, tri / 255.0)
            out[name + ".seconds_alpha"] = time.perf_counter() - t
            out[name + ".alpha"] = alpha
        t = time.perf_counter()
        out[name + ".foreground"] = estimate_foreground_ml(image, alpha)
        out[name + ".seconds_foreground"] = time.perf_counter() - t
    np.savez(out_path, **out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "pymatting":
        run_pymatting(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
