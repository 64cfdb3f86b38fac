#!/usr/bin/python3
"""PyTorch peer of `u2net bench`: the project's PyTorch reference network
(tests/reference/u2net_ref.py, BatchNorm unfolded as in the authors' code)
with a state dict, timed with the same protocol and output lines.

    torch_runner.py --model u2netp --checkpoint W.pth [--size S|WxH]
                    [--runs N] [--warmup W] [--threads T]

Prints `run I ms=X` per timed run, an information line, then
`median_ms=X p10_ms=Y p90_ms=Z peak_rss_mb=R` (ru_maxrss, MB of 10^6 bytes).
"""
import argparse
import math
import os
import resource
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import u2net_ref as R  # noqa: E402


def pattern(h, w):
    """The benchmark input, the formula of fill_pattern in src/cmd_bench.c."""
    u = (np.arange(w, dtype=np.float64)[None, :] + 0.5) / w
    v = (np.arange(h, dtype=np.float64)[:, None] + 0.5) / h
    two_pi = 2.0 * math.pi
    planes = [np.sin(two_pi * ((c + 1) * u + 2.0 * v)) + 0.5 * np.cos(two_pi * (3.0 * u - (c + 1) * v))
              for c in range(3)]
    return np.stack(planes).astype(np.float32)


def quantile(sorted_values, q):
    """Linear interpolation between sorted neighbours, as cmd_bench.c."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def parse_size(text):
    w, _, h = text.partition("x")
    return int(w), int(h or w)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, choices=sorted(R.STAGES))
    ap.add_argument("--checkpoint", required=True, help="state dict saved by torch.save")
    ap.add_argument("--size", default="320", help="S or WxH (320)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if a.runs < 1 or a.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    w, h = parse_size(a.size)
    torch.set_num_threads(a.threads)
    model = R.build(R.STAGES[a.model])
    model.load_state_dict(torch.load(a.checkpoint), strict=True)
    model.eval()
    x = torch.from_numpy(pattern(h, w)[None])
    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.runs):
            start = time.perf_counter()
            outputs = model(x)
            elapsed_ms = (time.perf_counter() - start) * 1e3
            if i >= a.warmup:
                times.append(elapsed_ms)
                print("run %d ms=%.2f" % (len(times), elapsed_ms), flush=True)
    d0_mean = float(outputs[0].double().mean())
    print("model=%s size=%dx%d threads=%d torch=%s d0_mean=%.6f"
          % (a.model, w, h, a.threads, torch.__version__, d0_mean))
    times.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    print("median_ms=%.2f p10_ms=%.2f p90_ms=%.2f peak_rss_mb=%.1f"
          % (quantile(times, 0.5), quantile(times, 0.1), quantile(times, 0.9), rss_mb))


if __name__ == "__main__":
    main()
