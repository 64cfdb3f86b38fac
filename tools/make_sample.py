"""Draws the sample photo used by the README and `make demo`: a shaded ball
and a cup on a textured table, generated here so the project may ship it.

    python3 tools/make_sample.py -o docs/img/sample.jpg
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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    img = render()
    img.save(args.output, quality=92) if args.output.lower().endswith((".jpg", ".jpeg")) else img.save(args.output)


if __name__ == "__main__":
    main()
