"""Reference outputs (goldens) and random checkpoints for the tests.

    /usr/bin/python3 tests/reference/make_goldens.py            # rewrite tests/golden/*.npz
    /usr/bin/python3 tests/reference/make_goldens.py --stats    # print output statistics only
    /usr/bin/python3 tests/reference/make_goldens.py --checkpoints DIR
        # also write DIR/{model}_zip.pth, DIR/{model}_legacy.pth, DIR/{model}.onnx

Goldens: tests/golden/{model}_{H}x{W}.npz with `y` (7xHxW float32: sigmoid
d0, d1..d6 of the PyTorch reference on random_input(H, W, input_seed(H, W))
with random_state_dict(stages, SEEDS[model])), `seed` (input seed),
`weight_seed` and `model`.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import random_weights as RW  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")
MODELS = ("u2netp", "u2net")
SIZES = ((320, 320), (203, 317), (97, 61))
THREADS = 2

_models = {}


def random_sd(kind):
    return RW.random_state_dict(RW.STAGES[kind], RW.SEEDS[kind])


def reference_model(kind):
    """The unfolded PyTorch reference with the random weights of `kind` (cached)."""
    import u2net_ref as R
    if kind not in _models:
        m = R.build(RW.STAGES[kind])
        R.load_state_dict(m, random_sd(kind), strict=True)
        _models[kind] = m.eval()
    return _models[kind]


def reference_outputs(kind, x, threads=THREADS):
    """7xHxW float32 outputs of the reference with the random weights on x (3xHxW)."""
    import u2net_ref as R
    return R.run(reference_model(kind), x, threads)


def golden_path(kind, h, w):
    return os.path.join(GOLDEN_DIR, "%s_%dx%d.npz" % (kind, h, w))


def golden_input(h, w):
    return RW.random_input(h, w, RW.input_seed(h, w))


def load_golden(kind, h, w):
    """(x, y): the regenerated input and the committed 7xHxW outputs."""
    with np.load(golden_path(kind, h, w)) as z:
        y = z["y"]
        assert str(z["model"]) == kind and int(z["seed"]) == RW.input_seed(h, w)
    return golden_input(h, w), y


def write_golden(kind, h, w, path=None):
    y = reference_outputs(kind, golden_input(h, w))
    path = path or golden_path(kind, h, w)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, y=y.astype(np.float32), seed=np.int64(RW.input_seed(h, w)),
                        weight_seed=np.int64(RW.SEEDS[kind]), model=np.array(kind))
    return path, y


def write_checkpoints(kind, outdir, formats=("zip", "legacy", "onnx")):
    """Write the random checkpoint of `kind` as DIR/{kind}_zip.pth (torch.save
    default zip format), DIR/{kind}_legacy.pth (pre-1.6 legacy pickle format)
    and DIR/{kind}.onnx (torch.onnx.export, opset 11; the exporter folds BN).
    Returns {format: path} for the formats written."""
    import torch
    os.makedirs(outdir, exist_ok=True)
    m = reference_model(kind)
    sd = m.state_dict()
    paths = {}
    if "zip" in formats:
        paths["zip"] = os.path.join(outdir, "%s_zip.pth" % kind)
        torch.save(sd, paths["zip"])
    if "legacy" in formats:
        paths["legacy"] = os.path.join(outdir, "%s_legacy.pth" % kind)
        torch.save(sd, paths["legacy"], _use_new_zipfile_serialization=False)
    if "onnx" in formats:
        paths["onnx"] = os.path.join(outdir, "%s.onnx" % kind)
        export_onnx(m, paths["onnx"])
    return paths


def export_onnx(model, path, size=320):
    import torch
    outs = ["d%d" % i for i in range(model.n + 1)]
    dyn = {name: {2: "height", 3: "width"} for name in ["input.1"] + outs}
    x = torch.from_numpy(golden_input(size, size)[None])
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=11, input_names=["input.1"],
                          output_names=outs, dynamic_axes=dyn)
    return path


def describe(kind, h, w, y):
    parts = []
    for i in range(y.shape[0]):
        v = y[i]
        inside = float(np.mean((v > 0.02) & (v < 0.98)))
        parts.append("d%d [%.3f, %.3f] std %.3f in %.2f" % (i, v.min(), v.max(), v.std(), inside))
    return "%s %dx%d: %s" % (kind, h, w, "; ".join(parts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--stats", action="store_true", help="print statistics, write nothing")
    ap.add_argument("--checkpoints", metavar="DIR", help="also write the random checkpoints here")
    ap.add_argument("--no-goldens", action="store_true")
    a = ap.parse_args(argv)
    kinds = a.models.split(",")
    if not a.no_goldens:
        for kind in kinds:
            for h, w in SIZES:
                if a.stats:
                    y = reference_outputs(kind, golden_input(h, w))
                else:
                    path, y = write_golden(kind, h, w)
                    print("wrote %s (%d bytes)" % (os.path.relpath(path, ROOT), os.path.getsize(path)))
                print(describe(kind, h, w, y), flush=True)
    if a.checkpoints:
        for kind in kinds:
            for what, p in write_checkpoints(kind, a.checkpoints).items():
                print("wrote %s (%s, %d bytes)" % (p, what, os.path.getsize(p)))


if __name__ == "__main__":
    main()
