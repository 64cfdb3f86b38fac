#!/usr/bin/python3
"""The Python package's overhead per image over the C library's own time,
with the built-in U2NetP at 320x320 (target: under 5%).

    python_bench.py [--build build] [--shared ../shared] [--images 8] [--rounds 5] [--threads 1]

Two comparisons, interleaved in rounds (the order alternating), medians
over the rounds:

  network     Session.run() on a 1x3x320x320 float32 array (ctypes, the
              output array, the context taken and given back) against
              `u2net bench -m u2netp --size 320`'s median of the same call,
              u2net_run_batch, timed in C
  remove      u2net.remove(png_bytes, session=s) on 320x320 PNGs (the
              photos of ../shared/images/real scaled to cover and cropped,
              or generated scenes without them) against the program on a
              folder of the same PNGs, per image: (t(all) - t(first
              alone)) / (images - 1), which leaves out the program's start
              and model load as the Session leaves out its own

Both sides use the same threads (--threads, 1 by default: the least noise
on a shared machine). Results: a table on stdout and bench/out/python.md.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIDE = 320
TARGET = 1.05


def write_images(folder, shared, n):
    """n 320x320 PNGs; what they are, in words."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    real = os.path.join(shared, "images", "real")
    photos = sorted(os.listdir(real)) if os.path.isdir(real) else []
    rng = np.random.default_rng(5)
    for i in range(n):
        if photos:
            img = Image.open(os.path.join(real, photos[i % len(photos)])).convert("RGB")
            s = SIDE / min(img.width, img.height)
            img = img.resize((max(SIDE, round(img.width * s)), max(SIDE, round(img.height * s))),
                             Image.BILINEAR)
            left, top = (img.width - SIDE) // 2, (img.height - SIDE) // 2
            img = img.crop((left, top, left + SIDE, top + SIDE))
        else:
            y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
            disc = np.clip(90 - np.hypot(y - 160, x - rng.uniform(110, 210)), 0, 1)[..., None]
            rgb = np.stack([x, y, np.full_like(x, 160)], -1) * 0.6 * (1 - disc) + \
                rng.uniform(120, 255, 3) * disc + rng.normal(0, 6, (SIDE, SIDE, 3))
            img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        img.save(os.path.join(folder, "img%02d.png" % i))
    return ("%d photos of %s, scaled and cropped" % (n, real) if photos
            else "%d generated scenes (no %s)" % (n, real))


def c_network_ms(u2net, threads, runs):
    out = subprocess.run([u2net, "bench", "-m", "u2netp", "--size", str(SIDE), "--runs", str(runs),
                          "--warmup", "1", "--threads", str(threads)],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"median_ms=([0-9.]+)", out).group(1))


def python_network_ms(session, runs):
    x = np.random.default_rng(1).random((1, 3, SIDE, SIDE), dtype=np.float32)
    session.run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def program_seconds(u2net, inputs, out, threads):
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([u2net, "-q", "--threads", str(threads), "-t", "rgba", *inputs, "-o", out + "/"],
                   check=True)
    return time.perf_counter() - t0


def c_remove_ms(u2net, files, out, threads):
    whole = program_seconds(u2net, files, out, threads)
    first = program_seconds(u2net, files[:1], out, threads)
    return (whole - first) / (len(files) - 1) * 1000


def python_remove_ms(u2net_pkg, session, data):
    u2net_pkg.remove(data[0], session=session)
    t0 = time.perf_counter()
    for d in data:
        u2net_pkg.remove(d, session=session)
    return (time.perf_counter() - t0) / len(data) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.images < 2 or a.rounds < 1 or a.threads < 1:
        ap.error("--images at least 2, --rounds and --threads at least 1")
    build = os.path.abspath(a.build)
    u2net_prog = os.path.join(build, "u2net")
    os.environ["U2NET_LIBRARY"] = os.path.join(build, "libu2net.so")
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import u2net

    work = os.path.join(build, "python-bench")
    shutil.rmtree(work, ignore_errors=True)
    folder = os.path.join(work, "in")
    what = write_images(folder, a.shared, a.images)
    files = [os.path.join(folder, n) for n in sorted(os.listdir(folder))]
    data = [open(f, "rb").read() for f in files]
    out = os.path.join(work, "out")
    runs = a.images
    results = {"c network": [], "python network": [], "c remove": [], "python remove": []}
    with u2net.Session("u2netp", threads=a.threads) as session:
        for r in range(a.rounds):
            steps = [("c network", lambda: c_network_ms(u2net_prog, a.threads, runs)),
                     ("python network", lambda: python_network_ms(session, runs)),
                     ("c remove", lambda: c_remove_ms(u2net_prog, files, out, a.threads)),
                     ("python remove", lambda: python_remove_ms(u2net, session, data))]
            for name, step in (steps if r % 2 == 0 else steps[::-1]):
                results[name].append(step())
                print("round %d: %-14s %7.2f ms" % (r + 1, name, results[name][-1]), flush=True)
    med = {k: float(np.median(v)) for k, v in results.items()}
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    md = ["## The Python package's overhead", "",
          "U2NetP (built in) at %dx%d, --threads %d, %s; %d rounds, interleaved, medians; load "
          "average %s at the end." % (SIDE, SIDE, a.threads, what, a.rounds, load), "",
          "| path | C, ms an image | Python, ms an image | Python / C | target |",
          "|---|---|---|---|---|"]
    for key, label in (("network", "the network: `Session.run()` against `u2net bench`"),
                       ("remove", "PNG bytes to PNG bytes: `u2net.remove()` against the program")):
        c, p = med["c " + key], med["python " + key]
        md.append("| %s | %.2f | %.2f | %.3f | %s |" % (label, c, p, p / c,
                                                          "met" if p / c < TARGET else "missed"))
    text = "\n".join(md) + "\n"
    print("\n" + text)
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "python.md"), "w") as f:
        f.write(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
