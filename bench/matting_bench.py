"""Clean edges against pymatting (run by `make bench` after the main
benchmark; bench/README.md has the method and results).

    python3 bench/matting_bench.py --build build [--rounds 3] [--threads 2]

Per megapixel, on the same inputs in the same run, interleaved round by
round (engine, then pymatting, each round): closed-form alpha matting
(u2net_alpha_matting against estimate_alpha_cf on rembg's trimap of the
authors' U2NetP map) and foreground estimation (u2net_estimate_foreground
against estimate_foreground_ml, the map as the alpha), on the shared photos.
Each process makes a first call and then timed ones (CALLS, as the main
benchmark's warm-up and timed runs); a figure is the median over rounds of
the process's median timed call, and the ratio pymatting / engine of those
("warm"); the ratio of the first calls is printed beside it. Guided
refinement of a 12 MP photo (the shared bike.jpg scaled up), measured the
same way, against the network's own time at 320x320 (`u2net bench`,
U2NetP, also after a warm-up). Memory per megapixel: the peak resident
memory a process gains over its calls (its peak restarted at the current
size just before the first, /proc/self/clear_refs), over the input's
megapixels; the engine writes into an output the caller has made, pymatting
makes its own (4 or 12 bytes a pixel of its figure).
pymatting comes from PyPI into BUILD/matting-venv (made once; the rows say
why when it cannot be had). Threads: OMP_NUM_THREADS and NUMBA_NUM_THREADS
set to --threads for both sides.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import matting_ref  # noqa: E402

PHOTOS = ["horse.jpg", "0002-01.jpg", "vangogh.jpeg", "im_14.png", "bike.jpg"]
BIG_SIDE = (4243, 2828)  # 12.0 MP

# Calls a process makes: the first, then the timed ones; pymatting's
# closed-form solve of the 6 MP photo takes minutes: its first call only.
def calls_for(op, mp, side):
    if mp > 3:
        return 1 if (op == "alpha" and side == "pymatting") else 2
    return 5

# The engine side, run in a process of its own per measurement: loads the
# inputs, notes its peak RSS, runs the operation `calls` times, prints the
# seconds of each and the peak RSS gained.
ENGINE_CHILD = r"""
import ctypes as C, json, sys, time
import numpy as np
lib = C.CDLL(sys.argv[1]); op = sys.argv[2]; data = np.load(sys.argv[3]); calls = int(sys.argv[4])
class Img(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int), ("channels", C.c_int), ("data", C.c_void_p)]
rgb = np.ascontiguousarray(data["image"]); h, w = rgb.shape[:2]
img = Img(w, h, 3, rgb.ctypes.data)
FP = C.POINTER(C.c_float)
err = C.create_string_buffer(520)
def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
def mark():
    # the peak resident size restarts from the current one (Linux clear_refs 5)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_kb("VmRSS:")
if op == "alpha":
    tri = np.ascontiguousarray(data["trimap"]); init = np.ascontiguousarray(data["init"], np.float32)
    out = np.full((h, w), 0.5, np.float32)
    call = lambda: lib.u2net_alpha_matting(C.byref(img), C.c_void_p(tri.ctypes.data),
                                           init.ctypes.data_as(FP), out.ctypes.data_as(FP), err)
elif op == "foreground":
    alpha = np.ascontiguousarray(data["alpha"], np.float32)
    out = np.full((h, w, 3), 0.5, np.float32)
    call = lambda: lib.u2net_estimate_foreground(C.byref(img), alpha.ctypes.data_as(FP),
                                                 out.ctypes.data_as(FP), err)
else:
    p = np.ascontiguousarray(data["prob"], np.float32) * np.float32(1 / 255)
    r, s = C.c_int(), C.c_int()
    lib.u2net_guided_params(w, h, 320, 0, C.byref(r), C.byref(s))
    out = np.full((h, w), 0.5, np.float32)
    call = lambda: lib.u2net_guided_filter(C.byref(img), p.ctypes.data_as(FP), r, C.c_float(1e-4), s,
                                           out.ctypes.data_as(FP), err)
before = mark(); secs = []
for _ in range(calls):
    t = time.perf_counter(); rc = call(); secs.append(time.perf_counter() - t)
    assert rc == 0, err.raw[4:].split(b"\0")[0]
print(json.dumps({"seconds": secs, "rss_kb": status_kb("VmHWM:") - before}))
"""

# The pymatting side, the same way in the virtual environment.
PYMATTING_CHILD = r"""
import json, sys, time
import numpy as np
from pymatting import estimate_alpha_cf, estimate_foreground_ml
def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
def mark():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_kb("VmRSS:")
op = sys.argv[1]; data = np.load(sys.argv[2]); calls = int(sys.argv[3])
image = data["image"] / 255.0
if op == "alpha":
    tri = data["trimap"] / 255.0
    call = lambda: estimate_alpha_cf(image, tri)
else:
    alpha = data["alpha"]
    call = lambda: estimate_foreground_ml(image, alpha)
before = mark(); secs = []
for _ in range(calls):
    t = time.perf_counter(); call(); secs.append(time.perf_counter() - t)
print(json.dumps({"seconds": secs, "rss_kb": status_kb("VmHWM:") - before}))
"""


def load_inputs(shared, names):
    from PIL import Image
    out = []
    for n in names:
        stem = n.rsplit(".", 1)[0]
        path = os.path.join(shared, "images", "real", n)
        mp = os.path.join(shared, "images", "u2netp_results", stem + ".png")
        if os.path.exists(path) and os.path.exists(mp):
            with Image.open(path) as im, Image.open(mp) as pm:
                out.append((stem, np.asarray(im.convert("RGB")), np.asarray(pm.convert("L"))))
    return out


def warm(seconds):
    """a process's timed calls: the median after the first, or the first alone"""
    return statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]


def run_child(cmd, env):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
    if p.returncode != 0:
        raise RuntimeError((p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1])
    return json.loads(p.stdout.strip().splitlines()[-1])


def network_ms(build, model, threads, runs):
    p = subprocess.run([os.path.join(build, "u2net"), "bench", "-m", model, "--size", "320x320",
                        "--runs", str(runs), "--warmup", "1", "--threads", str(threads)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    for line in p.stdout.splitlines():
        if line.startswith("median_ms="):
            return float(line.split()[0].split("=")[1])
    raise RuntimeError("u2net bench: " + (p.stdout.strip().splitlines() or ["no output"])[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--model", default=os.path.join(ROOT, "weights", "u2netp.u2nc"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photos", default=",".join(PHOTOS))
    a = ap.parse_args()
    lib = os.path.join(os.path.abspath(a.build), "libu2net.so")
    if not os.path.exists(lib):
        sys.exit("missing %s (run make)" % lib)
    inputs = load_inputs(a.shared, a.photos.split(","))
    if not inputs:
        print("matting bench: skipped: no photos with U2NetP maps in %s/images" % a.shared)
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), NUMBA_NUM_THREADS=str(a.threads),
               GOMP_SPINCOUNT=os.environ.get("GOMP_SPINCOUNT", "2000"))
    python, why = matting_ref.pymatting_venv(os.path.join(os.path.abspath(a.build), "matting-venv"))
    tmp = tempfile.mkdtemp(prefix="matting-bench-")
    files = {}
    for stem, rgb, prob in inputs:
        tri = matting_ref.trimap(prob)
        path = os.path.join(tmp, stem + ".npz")
        np.savez(path, image=rgb, trimap=tri, init=prob / 255.0, prob=prob,
                 alpha=(prob / 255.0).astype(np.float32))
        files[stem] = (path, rgb.shape[0] * rgb.shape[1] / 1e6, int((tri == 128).sum()))
    results = {}
    for r in range(a.rounds):
        for stem, (path, mp, unknown) in files.items():
            for op in ("alpha", "foreground"):
                # the 6 MP photo's closed-form solve in pymatting takes minutes: one round
                if op == "alpha" and mp > 3 and r > 0:
                    continue
                row = results.setdefault((op, stem), {"mp": mp, "unknown": unknown, "engine": [],
                                                       "engine_first": [], "pymatting": [],
                                                       "pymatting_first": [], "engine_kb": 0,
                                                       "pymatting_kb": 0})
                e = run_child([sys.executable, "-c", ENGINE_CHILD, lib, op, path,
                               str(calls_for(op, mp, "engine"))], env)
                row["engine_first"].append(e["seconds"][0])
                row["engine"].append(warm(e["seconds"]))
                row["engine_kb"] = max(row["engine_kb"], e["rss_kb"])
                if python:
                    try:
                        p = run_child([python, "-c", PYMATTING_CHILD, op, path,
                                       str(calls_for(op, mp, "pymatting"))], env)
                        row["pymatting_first"].append(p["seconds"][0])
                        row["pymatting"].append(warm(p["seconds"]))
                        row["pymatting_kb"] = max(row["pymatting_kb"], p["rss_kb"])
                    except RuntimeError as ex:
                        row["pymatting_error"] = str(ex)
    print("\nclean edges, %d threads, median of %d rounds (interleaved), per megapixel of the photo;"
          " warm: a process's median call after its first" % (a.threads, a.rounds))
    print("%-11s %-9s %6s %8s %12s %12s %7s %7s %12s %12s" % (
        "op", "photo", "MP", "unknown", "engine s/MP", "pymatting", "ratio", "first", "engine MB/MP",
        "pymatting"))
    for (op, stem), row in sorted(results.items()):
        e = statistics.median(row["engine"]) / row["mp"]
        if row["pymatting"]:
            p = statistics.median(row["pymatting"]) / row["mp"]
            first = statistics.median(row["pymatting_first"]) / statistics.median(row["engine_first"])
            ps, ratio, pm = "%12.3f" % p, "%7.1f %7.1f" % (p / e, first), \
                "%12.0f" % (row["pymatting_kb"] / 1e3 / row["mp"])
        else:
            ps, ratio, pm = "%12s" % "-", "%7s %7s" % ("-", "-"), \
                "%12s" % (row.get("pymatting_error") or why or "-")[:40]
        print("%-11s %-9s %6.2f %8d %12.3f %s %s %12.1f %s" % (op, stem, row["mp"], row["unknown"], e, ps,
                                                             ratio, row["engine_kb"] / 1e3 / row["mp"], pm))
    # guided refinement of a 12 MP photo against the network at 320
    big = [x for x in inputs if x[0] == "bike"]
    if big:
        from PIL import Image
        _, rgb, prob = big[0]
        rgb12 = np.asarray(Image.fromarray(rgb).resize(BIG_SIDE, Image.BILINEAR))
        prob12 = np.asarray(Image.fromarray(prob).resize(BIG_SIDE, Image.BILINEAR))
        path = os.path.join(tmp, "big.npz")
        np.savez(path, image=rgb12, prob=prob12)
        mp = BIG_SIDE[0] * BIG_SIDE[1] / 1e6
        guided, guided_first, net, kb = [], [], [], 0
        have_model = os.path.exists(a.model)
        for r in range(a.rounds):
            g = run_child([sys.executable, "-c", ENGINE_CHILD, lib, "guided", path, "5"], env)
            guided.append(warm(g["seconds"]) * 1e3)
            guided_first.append(g["seconds"][0] * 1e3)
            kb = max(kb, g["rss_kb"])
            if have_model:
                net.append(network_ms(a.build, a.model, a.threads, 5))
        gm, gf = statistics.median(guided), statistics.median(guided_first)
        print("\nguided refinement of a %dx%d (%.1f MP) photo: %.1f ms warm (%.1f ms/MP), first call %.1f ms,"
              " %.1f MB/MP" % (BIG_SIDE[0], BIG_SIDE[1], mp, gm, gm / mp, gf, kb / 1e3 / mp))
        if net:
            nm = statistics.median(net)
            print("U2NetP at 320x320 (u2net bench): %.1f ms; guided / network = %.1f%% (first call %.1f%%)" % (
                nm, 100 * gm / nm, 100 * gf / nm))
        else:
            print("no %s: the network's time is not measured" % a.model)
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
