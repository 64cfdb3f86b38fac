"""numpy reference of the matte post-processing (u2net_matte_from_prob) and of
the output renderers (u2net_render), written from the specification in
engine/u2net.h and the project notes, not from the C.

Maps are uint8 [H, W]; images uint8 [H, W, C] with C = 1 (gray), 2 (gray +
alpha), 3 (RGB) or 4 (RGBA). Every rounding is floor(v + 0.5).
"""
import math
from collections import deque

import numpy as np

OUTPUTS = ("prob", "mask", "rgba", "rgb", "composite", "crop", "bbox", "highlight")
MORPHS = ("none", "open", "close", "open-close")
HIGHLIGHTS = ("dim", "gray", "blur")


def round_half_up(v):
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5)


def to_u8(v):
    return np.clip(round_half_up(v), 0, 255).astype(np.uint8)


# ---- post-processing ----

def refine_alpha(p, fg, bg):
    p = p.astype(np.int64)
    mid = round_half_up((p - bg) * 255.0 / (fg - bg))
    return np.where(p >= fg, 255, np.where(p <= bg, 0, mid)).astype(np.uint8)


def _extremum_1d(a, r, axis, op):
    """min/max over [i - r, i + r] along axis, the window clipped at the edges."""
    n = a.shape[axis]
    out = a.copy()
    for d in range(-r, r + 1):
        lo, hi = max(0, -d), min(n, n - d)  # out[i] sees a[i + d] for lo <= i < hi
        if lo >= hi:
            continue
        dst = [slice(None)] * a.ndim
        src = [slice(None)] * a.ndim
        dst[axis] = slice(lo, hi)
        src[axis] = slice(lo + d, hi + d)
        out[tuple(dst)] = op(out[tuple(dst)], a[tuple(src)])
    return out


def erode(a, r):
    return _extremum_1d(_extremum_1d(a, r, 1, np.minimum), r, 0, np.minimum)


def dilate(a, r):
    return _extremum_1d(_extremum_1d(a, r, 1, np.maximum), r, 0, np.maximum)


def apply_morph(a, op, r):
    if op == "open":
        return dilate(erode(a, r), r)
    if op == "close":
        return erode(dilate(a, r), r)
    if op == "open-close":
        return apply_morph(apply_morph(a, "open", r), "close", r)
    assert op == "none"
    return a


def label8(binary):
    """8-connected components of a bool map: labels [H, W] (0 = background,
    1.. numbered in raster order of each component's first pixel), sizes."""
    h, w = binary.shape
    labels = np.zeros((h, w), dtype=np.int64)
    sizes = [0]
    for y0, x0 in zip(*np.nonzero(binary)):
        if labels[y0, x0]:
            continue
        k = len(sizes)
        labels[y0, x0] = k
        queue = deque([(y0, x0)])
        count = 0
        while queue:
            y, x = queue.popleft()
            count += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and binary[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = k
                        queue.append((ny, nx))
        sizes.append(count)
    return labels, sizes


def keep_largest_component(alpha, mask):
    labels, sizes = label8(mask > 0)
    if len(sizes) == 1:
        return alpha, mask
    best = int(np.argmax(sizes[1:])) + 1  # argmax: the first of equal sizes
    kept = labels == best
    alpha_labels, _ = label8(alpha > 0)
    touching = np.unique(alpha_labels[kept & (alpha > 0)])
    keep_alpha = np.isin(alpha_labels, touching[touching > 0])
    return np.where(keep_alpha, alpha, 0).astype(np.uint8), np.where(kept, 255, 0).astype(np.uint8)


def gaussian_weights(sigma):
    radius = int(math.ceil(3.0 * sigma))
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-k * k / (2.0 * sigma * sigma))
    return (g / g.sum()).astype(np.float32), radius


def gaussian_blur(img, sigma):
    """Separable Gaussian of [H, W] or [H, W, C] data (edges clamped), rows
    then columns, each a float32 sum over the taps in order; float32 result."""
    weights, radius = gaussian_weights(sigma)
    a = np.asarray(img, dtype=np.float32)
    for axis in (1, 0):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(a, pad, mode="edge")
        n = a.shape[axis]
        acc = np.zeros_like(a)
        for k, wk in enumerate(weights):
            acc += wk * np.take(padded, np.arange(k, k + n), axis=axis)
        a = acc
    return a


def mask_bbox(mask):
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def matte_from_prob(prob_u8, threshold=0.5, refine=False, fg_threshold=240, bg_threshold=15,
                    morph="none", morph_radius=1, largest_component=False, feather=0.0,
                    alpha_from_mask=False):
    prob = np.asarray(prob_u8, dtype=np.uint8)
    assert prob.ndim == 2
    alpha = prob.copy()
    if refine:
        assert 0 <= bg_threshold < fg_threshold <= 255
        alpha = refine_alpha(alpha, fg_threshold, bg_threshold)
    alpha = apply_morph(alpha, morph, morph_radius)
    # The threshold is a float32 times 255 in float32, rounded half away from zero.
    t = float(np.float32(threshold) * np.float32(255))
    level = int(math.floor(t + 0.5))
    mask = np.where(alpha >= level, 255, 0).astype(np.uint8)
    if largest_component:
        alpha, mask = keep_largest_component(alpha, mask)
    if alpha_from_mask:
        alpha = mask.copy()
    if feather > 0:
        sigma = float(np.float32(feather)) / 2.0
        alpha = to_u8(gaussian_blur(alpha, sigma))
    bbox = mask_bbox(mask)
    x, y, w, h = bbox
    mean_prob = float(prob[y:y + h, x:x + w].astype(np.float64).mean() / 255.0) if w else 0.0
    return dict(prob=prob, alpha=alpha, mask=mask, bbox=bbox, area=int(np.count_nonzero(mask)),
                mean_prob=mean_prob)


# ---- renderers ----

def colour_of(img):
    """[H, W, 3] colour (gray replicated, alpha dropped) as int64."""
    img = np.asarray(img)
    c = img.shape[2]
    rgb = img[:, :, :3] if c >= 3 else np.repeat(img[:, :, :1], 3, axis=2)
    return rgb.astype(np.int64)


def cutout_alpha(img, matte):
    a = np.asarray(matte["alpha"]).astype(np.int64)
    if img.shape[2] in (2, 4):
        a = round_half_up(a * img[:, :, -1].astype(np.int64) / 255.0).astype(np.int64)
    return a


def bilinear_resize(img, out_h, out_w):
    """align_corners=False bilinear of [h, w, C] to [out_h, out_w, C], float64."""
    h, w = img.shape[:2]

    def taps(n_out, n_in):
        s = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        s = np.maximum(s, 0.0)
        i0 = np.minimum(np.floor(s).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, s - i0

    y0, y1, ly = taps(out_h, h)
    x0, x1, lx = taps(out_w, w)
    f = img.astype(np.float64)
    lx = lx[None, :, None]
    top = (1 - lx) * f[y0][:, x0] + lx * f[y0][:, x1]
    bottom = (1 - lx) * f[y1][:, x0] + lx * f[y1][:, x1]
    return (1 - ly[:, None, None]) * top + ly[:, None, None] * bottom


def cover_background(bg, out_w, out_h):
    bh, bw = bg.shape[:2]
    scale = max(out_w / bw, out_h / bh)
    sw, sh = math.ceil(bw * scale), math.ceil(bh * scale)
    ox, oy = (sw - out_w) // 2, (sh - out_h) // 2
    scaled = bilinear_resize(colour_of(bg), sh, sw)
    return scaled[oy:oy + out_h, ox:ox + out_w]


def render(img, matte, type, background_rgb=(255, 255, 255), background=None, padding=0,
           highlight="dim"):
    img = np.asarray(img, dtype=np.uint8)
    assert img.ndim == 3 and img.shape[2] in (1, 2, 3, 4)
    H, W = img.shape[:2]
    if type == "prob":
        return matte["prob"][:, :, None].copy()
    if type == "mask":
        return matte["mask"][:, :, None].copy()
    if type == "crop":
        x, y, w, h = matte["bbox"]
        if w == 0:
            return img.copy()
        x0, y0 = max(0, x - padding), max(0, y - padding)
        x1, y1 = min(W, x + w + padding), min(H, y + h + padding)
        return img[y0:y1, x0:x1].copy()
    if type == "bbox":
        raise ValueError("bbox is JSON, not an image")
    rgb = colour_of(img)
    a = cutout_alpha(img, matte)[:, :, None]
    alpha = a / 255.0
    if type == "rgba":
        return np.concatenate([rgb, a], axis=2).astype(np.uint8)
    if type == "rgb":
        return to_u8(rgb * alpha)
    if type == "composite":
        if background is None:
            bg = np.array(background_rgb, dtype=np.float64)[None, None, :]
        else:
            bg = cover_background(np.asarray(background, dtype=np.uint8), W, H)
        return to_u8(rgb * alpha + bg * (1 - alpha))
    if type == "highlight":
        if highlight == "dim":
            e = rgb * 0.35
        elif highlight == "gray":
            luma = 0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]
            e = np.repeat(luma[:, :, None], 3, axis=2)
        else:
            sigma = max(2.0, math.sqrt(W * W + H * H) / 100.0)
            e = gaussian_blur(rgb.astype(np.uint8), sigma).astype(np.float64)
        return to_u8(rgb * alpha + e * (1 - alpha))
    raise ValueError("unknown output %r" % type)
