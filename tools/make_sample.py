"""Draws the sample photos used by the README and `make demo`, generated here
so the project may ship them: a shaded ball and a cup on a textured table
(the default), or with --hair a furry subject, fine hair-like strands
against an out-of-focus background (the clean-edges pictures).

    python3 tools/make_sample.py -o docs/img/sample.jpg
    python3 tools/make_sample.py --hair -o docs/img/hair.jpg
"""
import argparse

import numpy as np
from PIL import Image


def render(w=480, h=360, seed=7):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    # wall and table: soft gradients with a wood-like grain on the table
    wall = np.stack([0.80 - 0.10 * y / h, 0.78 - 0.08 * y / h, 0.72 - 0.05 * y / h], -1)
    grain = 0.04 * np.sin(x / 7.0 + 3 * np.sin(y / 23.0)) + 0.02 * rng.standard_normal((h, w))
    table = np.stack([0.55 + grain, 0.38 + grain * 0.8, 0.22 + grain * 0.5], -1)
    horizon = 0.58 * h
    img = np.where((y < horizon)[..., None], wall, table)
    # soft shadow under the ball
    cx, cy, r = 0.42 * w, 0.60 * h, 0.19 * h
    shadow = np.exp(-(((x - cx - 0.3 * r) / (1.3 * r)) ** 2 + ((y - cy - 0.95 * r) / (0.25 * r)) ** 2))
    img *= (1 - 0.45 * shadow)[..., None]
    # the ball: Lambert shading plus a highlight
    d2 = ((x - cx) ** 2 + (y - cy) ** 2) / r ** 2
    inside = d2 <= 1
    nz = np.sqrt(np.clip(1 - d2, 0, 1))
    nx, ny = (x - cx) / r, (y - cy) / r
    light = np.clip(-0.5 * nx - 0.6 * ny + 0.62 * nz, 0, 1)
    spec = np.clip(-0.5 * nx - 0.6 * ny + 0.62 * nz, 0, 1) ** 40
    ball = np.stack([0.85 * light + 0.08, 0.12 * light + 0.03, 0.10 * light + 0.03], -1) + spec[..., None] * 0.8
    img = np.where(inside[..., None], ball, img)
    # a blue cup to the right
    left, right, top, bottom = 0.64 * w, 0.80 * w, 0.40 * h, 0.72 * h
    cup = (x >= left) & (x <= right) & (y >= top) & (y <= bottom)
    shade = 0.55 + 0.45 * np.cos((x - (left + right) / 2) / (right - left) * np.pi)
    cupc = np.stack([0.10 * shade, 0.25 * shade, 0.75 * shade], -1)
    img = np.where(cup[..., None], cupc, img)
    handle = (((x - right) ** 2 / (0.05 * w) ** 2 + (y - 0.55 * h) ** 2 / (0.08 * h) ** 2) <= 1) & \
             (((x - right) ** 2 / (0.03 * w) ** 2 + (y - 0.55 * h) ** 2 / (0.05 * h) ** 2) > 1) & (x > right)
    img = np.where(handle[..., None], cupc * 0.9, img)
    return Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))


def render_hair(w=480, h=360, seed=11, supersample=3):
    """A round furry subject: a brown head in a dense coat of thin, curling
    strands (lighter at their tips) against a blurred pale blue and green
    background with soft bokeh discs. Drawn supersample times larger and
    averaged down, so the strands are fractions of a pixel wide."""
    rng = np.random.default_rng(seed)
    W, H = w * supersample, h * supersample
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    bg = np.stack([0.55 + 0.20 * x / W, 0.72 + 0.12 * (1 - y / H), 0.80 + 0.15 * y / H], -1)
    for _ in range(14):
        bx, by, br = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.04, 0.10) * W
        d = np.sqrt((x - bx) ** 2 + (y - by) ** 2) / br
        bg += (np.clip(1.5 - d, 0, 1) * 0.18)[..., None] * rng.uniform(0.6, 1.0, 3)
    img = np.clip(bg, 0, 1)
    alpha = np.zeros((H, W))
    colour = np.zeros((H, W, 3))
    cx, cy, r = 0.5 * W, 0.58 * H, 0.22 * H
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / r
    head = np.clip((1 - d) * r / 2.0, 0, 1)
    shade = np.clip(0.55 - 0.35 * (x - cx) / r - 0.25 * (y - cy) / r, 0.15, 1)
    alpha = np.maximum(alpha, head)
    colour[:] = np.stack([0.42 * shade, 0.27 * shade, 0.15 * shade], -1)
    # strands: random walks out of the head's rim, drawn as short soft
    # segments into a coverage map; their colour lightens to the tip
    strands = np.zeros((H, W))
    tips = np.zeros((H, W))
    width = 0.55 * supersample
    for _ in range(2400):
        a = rng.uniform(0, 2 * np.pi)
        if np.sin(a) > 0.75:  # not out of the bottom
            continue
        px, py = cx + 0.95 * r * np.cos(a), cy + 0.95 * r * np.sin(a)
        heading, curl = a + rng.normal(0, 0.25), rng.normal(0, 0.012)
        steps = int(rng.uniform(0.25, 0.75) * r / supersample)
        for k in range(steps):
            heading += curl + rng.normal(0, 0.03)
            px += np.cos(heading) * supersample
            py += np.sin(heading) * supersample
            x0, y0 = int(px) - 3, int(py) - 3
            if x0 < 0 or y0 < 0 or x0 + 7 > W or y0 + 7 > H:
                break
            win = (slice(y0, y0 + 7), slice(x0, x0 + 7))
            cover = np.exp(-((x[win] - px) ** 2 + (y[win] - py) ** 2) / (2 * width ** 2))
            strands[win] = np.maximum(strands[win], cover)
            tips[win] = np.where(cover > 0.3, np.maximum(tips[win], k / steps), tips[win])
    hair_colour = np.stack([0.36 + 0.30 * tips, 0.22 + 0.22 * tips, 0.11 + 0.12 * tips], -1)
    colour = np.where((strands > head)[..., None], hair_colour, colour)
    alpha = np.maximum(alpha, strands)
    img = alpha[..., None] * colour + (1 - alpha[..., None]) * img
    small = img.reshape(h, supersample, w, supersample, 3).mean((1, 3))
    return Image.fromarray((np.clip(small, 0, 1) * 255 + 0.5).astype(np.uint8))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--hair", action="store_true", help="the furry subject of the clean-edges pictures")
    args = ap.parse_args()
    img = render_hair() if args.hair else render()
    img.save(args.output, quality=92) if args.output.lower().endswith((".jpg", ".jpeg")) else img.save(args.output)


if __name__ == "__main__":
    main()
