#!/usr/bin/python3
"""Frames per second of `u2net stream` at 1280x720, and --temporal's flicker.

    stream_bench.py [--build build] [--shared ../shared] [--frames 20] [--rounds 3]

Speed: the same frames (the photos of ../shared/images/real, or generated
scenes without it, each scaled to cover 1280x720 and cropped) cut out to
rgba with the built-in U2NetP at 320x320, four ways, interleaved in rounds
(each round in another order), medians over the rounds:

  stream      `cat frames.rgb | u2net stream 1280 720 -t rgba > /dev/null`:
              one process, raw frames through pipes
  per frame   `u2net fNNN.png -o out/fNNN.png -t rgba`: a process, a PNG
              decode and a PNG encode per frame (what a script calling the
              image command per frame pays)
  folder      `u2net png/ -o out/ -t rgba`: one process, a PNG each way
  recipe      the README's transparent-WebM recipe on an H.264 clip of the
              frames: ffmpeg decode | u2net stream | ffmpeg VP9 with alpha
  ffmpeg      the same decode | encode without u2net stream, for ffmpeg's
              share of the recipe

Without ffmpeg the last two are left out, saying so.

Flicker: the mean absolute change of the alpha (0..255) from one frame to
the next, over all pixels and over the edge (pixels whose mean alpha is
between 5 and 250), on a still scene with camera noise (a photo plus
Gaussian noise of sigma 4 levels, new each frame), with and without
--temporal; and on a moving one (the photo's subject, cut out by the
image command, moving 1% of the width a frame over another photo, with
the same noise) the lag: how far --temporal's alpha is from the plain
one, on average and in the worst frame, and how far its horizontal
centre of mass trails, in pixels.

Results: a table on stdout, bench/out/stream.md and bench/out/stream.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

W, H, RATE = 1280, 720, 25
NOISE_SIGMA = 4.0
MOVE_PER_FRAME = 0.01  # of the width


def cover(img, w, h):
    """img scaled to cover w x h and centred, as RGB."""
    from PIL import Image
    img = img.convert("RGB")
    scale = max(w / img.width, h / img.height)
    sw, sh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    img = img.resize((sw, sh), Image.BILINEAR)
    left, top = (sw - w) // 2, (sh - h) // 2
    return img.crop((left, top, left + w, top + h))


def make_frames(n, shared):
    """n frames of W x H (uint8 RGB) and what they are."""
    from PIL import Image
    import make_sample
    real = os.path.join(shared, "images", "real")
    photos = []
    if os.path.isdir(real):
        photos = [os.path.join(real, f) for f in sorted(os.listdir(real))
                  if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    frames = []
    for i in range(n):
        if photos:
            img = cover(Image.open(photos[i % len(photos)]), W, H)
        else:
            img = make_sample.render(W, H, seed=100 + i)
        frames.append(np.asarray(img))
    what = ("%d photos of %s, in turn" % (len(photos), real)) if photos else "generated scenes (no %s)" % real
    return frames, what


def timed(cmd, shell=False):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       universal_newlines=True, executable="/bin/bash" if shell else None)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError("%s exited %d: %s" % (cmd if shell else " ".join(cmd), p.returncode, tail))
    return seconds


def stream_alphas(u2net, frames, extra):
    h, w = frames[0].shape[:2]
    p = subprocess.run([u2net, "stream", str(w), str(h), "-t", "rgba", "-q"] + extra,
                       input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("u2net stream: %s" % p.stderr.decode().strip())
    return np.frombuffer(p.stdout, np.uint8).reshape(len(frames), h, w, 4)[..., 3].astype(np.float64)


def flicker(u2net, work, frames, n, threads):
    """The still and moving scenes' figures, with and without --temporal."""
    from PIL import Image
    rng = np.random.default_rng(17)
    photo = frames[0].astype(np.float64)
    noisy = lambda a: np.clip(np.rint(a + rng.normal(0, NOISE_SIGMA, a.shape)), 0, 255).astype(np.uint8)  # noqa
    still = [noisy(photo) for _ in range(n)]
    Image.fromarray(frames[0]).save(os.path.join(work, "subject.png"))
    subprocess.run([u2net, os.path.join(work, "subject.png"), "-o", os.path.join(work, "subject_rgba.png"),
                    "-t", "rgba", "-q", "--overwrite"] + threads, check=True)
    alpha = np.asarray(Image.open(os.path.join(work, "subject_rgba.png")))[..., 3:].astype(np.float64) / 255
    background = frames[len(frames) // 2].astype(np.float64)
    moving = []
    for t in range(n):
        dx = int(round(t * W * MOVE_PER_FRAME))
        a = np.roll(alpha, dx, axis=1)
        moving.append(noisy(np.roll(photo, dx, axis=1) * a + background * (1 - a)))
    out = {}
    xs = np.arange(W)
    centre = lambda a: (a * xs).sum(axis=(1, 2)) / np.maximum(a.sum(axis=(1, 2)), 1)  # noqa: E731
    plain_still = stream_alphas(u2net, still, threads)
    edge = (plain_still.mean(0) > 5) & (plain_still.mean(0) < 250)
    plain_moving = stream_alphas(u2net, moving, threads)
    for name, extra in (("plain", []), ("temporal", ["--temporal"])):
        s = plain_still if not extra else stream_alphas(u2net, still, threads + extra)
        m = plain_moving if not extra else stream_alphas(u2net, moving, threads + extra)
        change = np.abs(np.diff(s, axis=0))
        off = np.abs(m - plain_moving)
        trail = np.abs(centre(m) - centre(plain_moving))
        out[name] = {"still_flicker": float(change.mean()), "still_edge_flicker": float(change[:, edge].mean()),
                     "moving_flicker": float(np.abs(np.diff(m, axis=0)).mean()),
                     "lag_mean": float(off.mean()), "lag_worst_frame": float(off.mean(axis=(1, 2)).max()),
                     "centre_lag_px": float(trail.mean()), "centre_lag_px_max": float(trail.max())}
    out["edge_pixels"] = int(edge.sum())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--frames", type=int, default=20, help="frames of the speed runs (20)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the speed runs (3)")
    ap.add_argument("--flicker-frames", type=int, default=20, help="frames of the flicker runs (20; 0: none)")
    ap.add_argument("--threads", type=int, default=0, help="u2net's --threads (0: its default, all cores)")
    a = ap.parse_args(argv)
    u2net = os.path.join(a.build, "u2net")
    threads = ["--threads", str(a.threads)] if a.threads else []
    work = os.path.join(a.build, "stream-bench")
    shutil.rmtree(work, ignore_errors=True)
    png_dir, out_dir = os.path.join(work, "png"), os.path.join(work, "out")
    os.makedirs(png_dir)
    os.makedirs(out_dir)
    from PIL import Image
    frames, what = make_frames(a.frames, a.shared)
    raw = os.path.join(work, "frames.rgb")
    with open(raw, "wb") as f:
        for fr in frames:
            f.write(fr.tobytes())
    names = []
    for i, fr in enumerate(frames):
        names.append("f%03d" % (i + 1))
        Image.fromarray(fr).save(os.path.join(png_dir, names[-1] + ".png"))
    have_ffmpeg = bool(shutil.which("ffmpeg"))
    clip = os.path.join(work, "clip.mp4")
    if have_ffmpeg:
        subprocess.run(["ffmpeg", "-v", "error", "-framerate", str(RATE), "-i", os.path.join(png_dir, "f%03d.png"),
                        "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", clip], check=True)
    else:
        print("recipe and ffmpeg: skipped: no ffmpeg (apt-get install ffmpeg)")

    u2 = " ".join([u2net] + threads)
    webm = os.path.join(work, "out.webm")
    encode = ("ffmpeg -v error -y -f rawvideo -pix_fmt rgba -s %dx%d -r %d -i - -c:v libvpx-vp9 "
              "-pix_fmt yuva420p -crf 30 -b:v 0 '%s'" % (W, H, RATE, webm))
    ways = {
        "stream": lambda: timed("cat '%s' | %s stream %d %d -t rgba -q > /dev/null" % (raw, u2, W, H), shell=True),
        "per frame": lambda: sum(timed([u2net, os.path.join(png_dir, n + ".png"), "-o",
                                        os.path.join(out_dir, n + ".png"), "-t", "rgba", "-q", "--overwrite"]
                                       + threads) for n in names),
        "folder": lambda: timed([u2net, png_dir, "-o", out_dir + "/", "-t", "rgba", "-q", "--overwrite"] + threads),
    }
    if have_ffmpeg:
        decode = "ffmpeg -v error -i '%s' -f rawvideo -pix_fmt %%s - | " % clip
        ways["recipe"] = lambda: timed(decode % "rgb24" + "%s stream %d %d -t rgba -q | " % (u2, W, H) + encode,
                                       shell=True)
        ways["ffmpeg"] = lambda: timed(decode % "rgba" + encode, shell=True)
    seconds = {k: [] for k in ways}
    order = list(ways)
    for r in range(a.rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            s = ways[k]()
            seconds[k].append(s)
            print("round %d: %-9s %6.2f s  %5.2f frames/s" % (r + 1, k, s, a.frames / s), flush=True)
    med = {k: float(np.median(v)) for k, v in seconds.items()}
    fps = {k: a.frames / v for k, v in med.items()}
    rows = [("stream", "`u2net stream`, raw frames through pipes, one process"),
            ("per frame", "the image command, a process and a PNG each way per frame"),
            ("folder", "the image command, one process for the folder of PNGs"),
            ("recipe", "ffmpeg H.264 decode \\| `u2net stream` \\| ffmpeg VP9 with alpha"),
            ("ffmpeg", "the recipe's ffmpeg alone (decode \\| VP9 encode)")]
    md = ["## u2net stream at %dx%d" % (W, H), "",
          "%d frames (%s), U2NetP at 320x320 (built in), `-t rgba`, %s; %d rounds, interleaved, medians; "
          "load average %s at the end." % (a.frames, what, "--threads %d" % a.threads if a.threads else
                                          "all cores", a.rounds, " ".join(open("/proc/loadavg").read().split()[:3])),
          "", "| run | seconds | frames/s | stream / it |", "|---|---|---|---|"]
    for k, label in rows:
        if k in med:
            md.append("| %s | %.2f | %.2f | %.2f |" % (label, med[k], fps[k], fps["stream"] / fps[k]))
    result = {"frames": a.frames, "rounds": a.rounds, "seconds": seconds, "median_s": med, "fps": fps,
              "frames_from": what}
    if a.flicker_frames:
        fl = flicker(u2net, work, frames, a.flicker_frames, threads)
        result["flicker"] = fl
        p, t = fl["plain"], fl["temporal"]
        md += ["", "Flicker and lag at %dx%d, %d frames, noise sigma %g (alpha levels 0..255; %d edge pixels):"
               % (W, H, a.flicker_frames, NOISE_SIGMA, fl["edge_pixels"]), "",
               "| measured | plain | `--temporal` | plain / temporal |", "|---|---|---|---|",
               "| still scene: mean change a frame, all pixels | %.3f | %.3f | %.1f |"
               % (p["still_flicker"], t["still_flicker"], p["still_flicker"] / t["still_flicker"]),
               "| still scene: mean change a frame, edge pixels | %.2f | %.2f | %.1f |"
               % (p["still_edge_flicker"], t["still_edge_flicker"], p["still_edge_flicker"] / t["still_edge_flicker"]),
               "| moving subject (%d px a frame): mean change a frame | %.2f | %.2f | |"
               % (round(W * MOVE_PER_FRAME), p["moving_flicker"], t["moving_flicker"]),
               "| moving subject: alpha's distance from the plain one, mean / worst frame | 0 | %.2f / %.2f | |"
               % (t["lag_mean"], t["lag_worst_frame"]),
               "| moving subject: centre of mass behind the plain one, px, mean / most | 0 | %.2f / %.2f | |"
               % (t["centre_lag_px"], t["centre_lag_px_max"])]
    text = "\n".join(md)
    print()
    print(text)
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "stream.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(HERE, "out", "stream.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
