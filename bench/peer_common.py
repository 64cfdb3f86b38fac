"""What the Python peers of `u2net bench` share with it (src/cmd_bench.c): the
options, the input, the timing loop and the output lines, so that
run_bench.py reads every peer the same way.

numpy and the standard library only: ort_runner.py imports this from the
benchmark's own virtual environment, torch_runner.py from the system Python.
"""
import argparse
import math
import resource
import time

import numpy as np


def parse_size(text):
    """(width, height) from "S" or "WxH"."""
    w, _, h = text.partition("x")
    try:
        size = int(w), int(h or w)
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not S or WxH" % text)
    if min(size) < 1:
        raise argparse.ArgumentTypeError("'%s': sides must be at least 1" % text)
    return size


def arguments(description):
    """A parser with the options every peer takes."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--size", type=parse_size, default=(320, 320), help="S or WxH (320)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs (10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs before them (2)")
    ap.add_argument("--threads", type=int, default=2, help="threads (2)")
    return ap


def check(ap, a):
    if a.runs < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("--runs and --threads must be at least 1 and --warmup at least 0")


def pattern(h, w):
    """The benchmark input, 1x3xHxW: the formula of fill_pattern in src/cmd_bench.c."""
    u = (np.arange(w, dtype=np.float64)[None, :] + 0.5) / w
    v = (np.arange(h, dtype=np.float64)[:, None] + 0.5) / h
    two_pi = 2.0 * math.pi
    planes = [np.sin(two_pi * ((c + 1) * u + 2.0 * v)) + 0.5 * np.cos(two_pi * (3.0 * u - (c + 1) * v))
              for c in range(3)]
    return np.stack(planes)[None].astype(np.float32)


def quantile(sorted_values, q):
    """Linear interpolation between sorted neighbours, as cmd_bench.c."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def peak_vm_mb():
    """The process's peak address space (VmPeak), MB of 10^6 bytes; 0 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return 0.0


def measure(run, a, info):
    """Calls run() (one inference; returns the outputs, the prediction first)
    a.warmup + a.runs times, timing each call, and prints the lines of
    `u2net bench`: `run I ms=X`, the information line `info` with the mean of
    output 0 (d0_mean, the agreement check), then the summary."""
    times = []
    for i in range(a.warmup + a.runs):
        start = time.perf_counter()
        outputs = run()
        elapsed_ms = (time.perf_counter() - start) * 1e3
        if i >= a.warmup:
            times.append(elapsed_ms)
            print("run %d ms=%.2f" % (len(times), elapsed_ms), flush=True)
    d0_mean = float(np.asarray(outputs[0], dtype=np.float64).mean())
    print("%s d0_mean=%.10f" % (info, d0_mean))
    times.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux: KiB
    print("median_ms=%.2f p10_ms=%.2f p90_ms=%.2f peak_rss_mb=%.1f peak_vm_mb=%.1f"
          % (quantile(times, 0.5), quantile(times, 0.1), quantile(times, 0.9), rss_mb, peak_vm_mb()))
