#!/usr/bin/python3
"""The u2net program against rembg's own command line, end to end.

    rembg_bench.py [--build build] [--rounds 1] [--venv build/rembg-venv]

Both cut out the same 20 photos with the same U2NetP weights: one process per
photo, then one process for the folder. Per tool: wall time, peak RSS of the
largest process, and how far the masks agree (IoU of the two prob maps
thresholded at 0.5, per photo). The rounds alternate which tool goes first,
and the table gives the ratios.

rembg is PyPI's `rembg[cpu,cli]`, installed on the first run into a virtual
environment of this script's own (--venv, made with the first `python3` on
PATH that has the venv module; --venv-python names another), and run
offline: its `u2net_custom` session on a local model file in a folder given
as U2NET_HOME, so it downloads nothing. When it cannot be installed, this
says so in one line and ends with status 0.

The model is the trained U2NetP (the built-in weights/u2netp.u2nc) exported
by the PyTorch reference as a float32 ONNX file: rembg runs it with ONNX
Runtime, the program reads the same file (-m FILE.onnx). The photos are
../shared/images/real (when present) and generated ones
(tools/make_sample.py's scene at other sizes and seeds), 20 in all.
Results go to bench/out/rembg.md and rembg.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

REMBG_PACKAGE = "rembg[cpu,cli]"
PHOTOS = 20
PROCESS_TIMEOUT_S = 600

# Peak RSS of a command, free of this process's pages: a child forked from
# this Python would start with all of them counted (Linux keeps ru_maxrss
# across exec), so a small Python forks the command from itself and writes
# the command's own ru_maxrss (KiB) to the file named first.
RSS_LAUNCHER = r"""
import os, sys
out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write("%d %d\n" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss))
sys.exit(0)
"""


def run_measured(cmd, env):
    """Runs cmd; returns (seconds, peak RSS in MB), or raises with its error."""
    fd, report = tempfile.mkstemp(prefix="rss-")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-S", "-c", RSS_LAUNCHER, report] + cmd, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=PROCESS_TIMEOUT_S)
        seconds = time.perf_counter() - t0
        with open(report) as f:
            status, kib = (int(v) for v in f.read().split())
    finally:
        os.unlink(report)
    if p.returncode != 0 or status != 0:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError("%s exited %d: %s" % (os.path.basename(cmd[0]), status, tail))
    return seconds, kib * 1024 / 1e6


def rembg_python(venv, venv_python):
    """The venv's Python with rembg's command line, installed when missing:
    (path of its rembg, None) or (None, why not)."""
    rembg = os.path.join(venv, "bin", "rembg")
    python = os.path.join(venv, "bin", "python")

    def usable():
        return os.path.exists(rembg) and subprocess.run(
            [python, "-c", "import rembg.cli, onnxruntime"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0

    if usable():
        return rembg, None
    creator = shutil.which(venv_python)
    if not creator:
        return None, "no %s on PATH to make its virtual environment with" % venv_python
    print("making %s for rembg (pip install %s; about 850 MB)" % (venv, REMBG_PACKAGE), flush=True)
    for cmd in ([creator, "-m", "venv", "--clear", venv],
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REMBG_PACKAGE]):
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        except OSError as e:
            return None, str(e)
        if p.returncode != 0:
            tail = ((p.stderr or p.stdout).strip().splitlines() or ["no output"])[-1]
            return None, "%s: %s" % (" ".join(os.path.basename(c) for c in cmd[:4]), tail)
    if not usable():
        return None, "%s cannot import rembg.cli and onnxruntime" % python
    return rembg, None


def export_model(u2nc, path):
    """The float32 ONNX export of the model file by the PyTorch reference
    (opset 11, dynamic height and width, outputs d0..d6), in a process of its
    own so that torch stays out of this one; None, or why it failed."""
    code = ("import sys; sys.path[:0] = %r\n"
            "import torch, warnings, u2net_ref as R\n"
            "m = R.load_u2nc(%r).eval()\n"
            "x = torch.zeros(1, 3, 320, 320)\n"
            "outs = ['d%%d' %% i for i in range(7)]\n"
            "dyn = {k: {2: 'h', 3: 'w'} for k in ['input.1'] + outs}\n"
            "with warnings.catch_warnings(), torch.no_grad():\n"
            "    warnings.simplefilter('ignore')\n"
            "    torch.onnx.export(m, x, %r, opset_version=11, input_names=['input.1'],\n"
            "                      output_names=outs, dynamic_axes=dyn)\n"
            % ([os.path.join(ROOT, "tests", "reference"), os.path.join(ROOT, "tools")], u2nc, path))
    p = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        return ((p.stderr or p.stdout).strip().splitlines() or ["no output"])[-1]
    return None


def make_photos(folder, shared):
    """20 photos in folder: the real ones of shared/images/real, then
    generated scenes; returns their names and what they are."""
    from PIL import Image
    import make_sample
    os.makedirs(folder, exist_ok=True)
    real = os.path.join(shared, "images", "real")
    names = []
    if os.path.isdir(real):
        for f in sorted(os.listdir(real)):
            if f.lower().endswith((".jpg", ".jpeg", ".png")) and len(names) < PHOTOS:
                img = Image.open(os.path.join(real, f)).convert("RGB")
                name = os.path.splitext(f)[0] + ".png"
                img.save(os.path.join(folder, name))
                names.append(name)
    n_real = len(names)
    sizes = [(480, 360), (640, 480), (800, 600), (1024, 768), (1280, 960), (720, 1280)]
    for i in range(PHOTOS - n_real):
        w, h = sizes[i % len(sizes)]
        img = make_sample.render(w, h, seed=100 + i)
        name = "scene%02d.jpg" % i
        img.save(os.path.join(folder, name), quality=92)
        names.append(name)
    return names, "%d photos from %s and %d generated" % (n_real, real, PHOTOS - n_real) if n_real \
        else "%d generated photos (no %s)" % (PHOTOS, real)


def mask_iou(a_path, b_path):
    from PIL import Image
    a = np.asarray(Image.open(a_path).convert("L")) >= 128
    b = np.asarray(Image.open(b_path).convert("L")) >= 128
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=1, help="rounds of each measurement (1)")
    ap.add_argument("--venv", default=None, help="rembg's virtual environment (BUILD/rembg-venv)")
    ap.add_argument("--venv-python", default="python3", help="the Python that makes it (python3)")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    a = ap.parse_args(argv)
    venv = a.venv or os.path.join(a.build, "rembg-venv")
    u2net = os.path.join(a.build, "u2net")
    rembg, why = rembg_python(venv, a.venv_python)
    if not rembg:
        print("rembg: skipped: %s" % why)
        return 0
    work = os.path.join(a.build, "rembg-bench")
    shutil.rmtree(work, ignore_errors=True)
    home = os.path.join(work, "home")
    photos_dir = os.path.join(work, "photos")
    os.makedirs(home)
    model = os.path.join(home, "u2netp.onnx")
    why = export_model(os.path.join(ROOT, "weights", "u2netp.u2nc"), model)
    if why:
        print("rembg: skipped: no ONNX export of the model (PyTorch, python3-torch): %s" % why)
        return 0
    names, photos_note = make_photos(photos_dir, a.shared)
    env = dict(os.environ, U2NET_HOME=home)
    extras = json.dumps({"model_path": model})
    stem = lambda n: os.path.splitext(n)[0]  # noqa: E731

    def per_photo(tool, out):
        os.makedirs(out, exist_ok=True)
        total, peak = 0.0, 0.0
        for n in names:
            src = os.path.join(photos_dir, n)
            if tool == "u2net":
                cmd = [u2net, src, "-o", os.path.join(out, stem(n) + ".png"), "-t", "prob", "-m", model,
                       "-q", "--overwrite"]
            else:
                cmd = [rembg, "i", "-m", "u2net_custom", "-x", extras, "-om", src,
                       os.path.join(out, stem(n) + ".png")]
            s, mb = run_measured(cmd, env)
            total, peak = total + s, max(peak, mb)
        return total, peak

    def folder(tool, out):
        os.makedirs(out, exist_ok=True)
        if tool == "u2net":
            cmd = [u2net, photos_dir, "-o", out, "-t", "prob", "-m", model, "-q", "--overwrite"]
        else:
            cmd = [rembg, "p", "-m", "u2net_custom", "-x", extras, "-om", photos_dir, out]
        return run_measured(cmd, env)

    results = {t: {"photo_s": [], "photo_rss": [], "folder_s": [], "folder_rss": []} for t in ("u2net", "rembg")}
    for r in range(a.rounds):
        order = ("rembg", "u2net") if r % 2 == 0 else ("u2net", "rembg")
        for tool in order:
            s, mb = per_photo(tool, os.path.join(work, "%s_photo" % tool))
            results[tool]["photo_s"].append(s)
            results[tool]["photo_rss"].append(mb)
            print("round %d: %s, a process per photo: %.1f s, peak RSS %.0f MB" % (r + 1, tool, s, mb),
                  flush=True)
        for tool in order:
            s, mb = folder(tool, os.path.join(work, "%s_folder" % tool))
            results[tool]["folder_s"].append(s)
            results[tool]["folder_rss"].append(mb)
            print("round %d: %s, one process for the folder: %.1f s, peak RSS %.0f MB" % (r + 1, tool, s, mb),
                  flush=True)
    ious = []
    for n in names:
        ours = os.path.join(work, "u2net_folder", stem(n) + "_prob.png")
        theirs = os.path.join(work, "rembg_folder", stem(n) + ".png")
        ious.append(mask_iou(ours, theirs))
    med = lambda v: float(np.median(v))  # noqa: E731
    rows = []
    for what, key in (("a process per photo (20 processes), total", "photo"), ("one process for the folder", "folder")):
        u, rb = med(results["u2net"][key + "_s"]), med(results["rembg"][key + "_s"])
        um, rm = max(results["u2net"][key + "_rss"]), max(results["rembg"][key + "_rss"])
        rows.append("| %s | %.1f s | %.1f s | %.2f | %.0f MB | %.0f MB |" % (what, u, rb, u / rb, um, rm))
    version = subprocess.run([rembg, "--version"], stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    md = ["## u2net against rembg's command line", "",
          "%s; U2NetP, the same float32 ONNX file for both (the built-in weights exported by the "
          "PyTorch reference); rembg: `%s`, `u2net_custom` session, `-om`; u2net: `-t prob -m FILE.onnx`; "
          "%d round(s), medians; ratio = u2net / rembg." % (photos_note, version, a.rounds), "",
          "| run | u2net | rembg | ratio | peak RSS u2net | peak RSS rembg |", "|---|---|---|---|---|---|"] + rows
    md += ["", "Mask agreement (IoU of the prob maps at 0.5, per photo): median %.4f, min %.4f (%s)."
           % (med(ious), min(ious), names[int(np.argmin(ious))])]
    text = "\n".join(md)
    print(text)
    out_dir = os.path.join(HERE, "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "rembg.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "rembg.json"), "w") as f:
        json.dump({"results": results, "iou": dict(zip(names, ious)), "photos": photos_note,
                   "rembg_version": version, "rounds": a.rounds}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
