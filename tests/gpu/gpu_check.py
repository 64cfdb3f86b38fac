"""The CUDA backend on a GPU, in one run (tests/gpu/run.sh calls this after
building with CUDA=1; tests/gpu/README.md says what each part shows):

1. goldens: every model's committed goldens (random weights, tests/golden)
   on the GPU, one image and a batch of three (the golden input and two
   random ones), every output within 1e-4 of the golden and of the CPU
   engine on the same inputs; the fast mode (TF32) against the same, its
   bound reported;
2. compute-sanitizer memcheck on one small run, when the tool works there;
3. the benchmark: U2NetP and U2Net at 320x320 and ISNet at 1024x1024, batch
   1 and 16: this engine against PyTorch eager on the same weights (float32
   with TF32 off; and the fast mode beside PyTorch with TF32 and in
   float16), medians after warm-up, images per second, device memory, the
   CPU engine on this machine's cores beside it.

    python3 tests/gpu/gpu_check.py --build build/cuda --out OUT [--quick]
    python3 tests/gpu/gpu_check.py --build build --out OUT --smoke
        # the script's own check where there is no GPU: the CPU in its place,
        # U2NetP at 64x64, batches 1 and 2 (tests/test_gpu_script.py)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "reference"), os.path.join(ROOT, "tools")]
import make_goldens as MG  # noqa: E402
import random_weights as RW  # noqa: E402

TOL = 1e-4
FAST_TOL = 5e-2      # a gross-error guard for TF32; the measured bound is printed
MODELS = ("u2netp", "u2net", "isnet")
BENCH = (("u2netp", 320), ("u2net", 320), ("isnet", 1024))
BATCHES = (1, 16)


def log(*a):
    print(*a, flush=True)


def model_file(kind, d):
    """The converter's float32 file of the goldens' random weights."""
    import convert
    path = os.path.join(d, kind + ".u2nc")
    if not os.path.exists(path):
        convert.write_model(convert.convert_state_dict(MG.random_sd(kind)), path, dtype="f32")
    return path


def tensor(u2net, model, xs, device, work, extra=()):
    """`u2net tensor` on images xs [n, 3, h, w]: every output, [n, o, h, w]."""
    n, _, h, w = xs.shape
    inp, out = os.path.join(work, "in.f32"), os.path.join(work, "out.f32")
    np.ascontiguousarray(xs, "<f4").tofile(inp)
    args = [u2net, "tensor", "-m", model, "-i", inp, "-o", out, "--height", str(h), "--width",
            str(w), "--batch", str(n), "--sides", "--device", device] + list(extra)
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return np.fromfile(out, "<f4").reshape(n, -1, h, w)


def max_diff(a, b):
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(np.nanmax(d)) if np.all(np.isfinite(a)) else float("inf")


def check_goldens(u2net, models, work, device="cuda"):
    """Returns (rows, ok)."""
    rows, ok = [], True
    fast_flag = ("--fast",) if device == "cuda" else ()
    for kind in models:
        for h, w in MG.SIZES:
            x, y = MG.load_golden(kind, h, w)
            xs = np.stack([x, RW.random_input(h, w, 7001), RW.random_input(h, w, 7002)])
            cpu = tensor(u2net, models[kind], xs, "cpu", work)
            gpu1 = tensor(u2net, models[kind], xs[:1], device, work)
            gpu3 = tensor(u2net, models[kind], xs, device, work)
            fast = tensor(u2net, models[kind], xs, device, work, fast_flag)
            r = {"model": kind, "size": "%dx%d" % (h, w),
                 "gpu vs golden": max_diff(gpu1[0], y), "gpu vs cpu": max_diff(gpu1[0], cpu[0]),
                 "gpu batch 3 vs cpu": max_diff(gpu3, cpu),
                 "cpu vs golden": max_diff(cpu[0], y),
                 "fast vs golden": max_diff(fast[0], y), "fast batch 3 vs cpu": max_diff(fast, cpu)}
            good = (r["gpu vs cpu"] <= TOL and r["gpu batch 3 vs cpu"] <= TOL and
                    r["fast batch 3 vs cpu"] <= FAST_TOL)
            # the goldens were made with numpy's random weights of the
            # committer's machine: when this numpy makes other weights, the
            # CPU engine disagrees with them too, and only the CPU counts
            golden_comparable = r["cpu vs golden"] <= TOL
            if golden_comparable:
                good = good and r["gpu vs golden"] <= TOL
            r["ok"] = good
            ok = ok and good
            log("  %-6s %-8s gpu-golden %.2g  gpu-cpu %.2g  batch3-cpu %.2g  cpu-golden %.2g%s  "
                "fast-golden %.2g  fast-cpu %.2g  %s" % (
                    kind, r["size"], r["gpu vs golden"], r["gpu vs cpu"], r["gpu batch 3 vs cpu"],
                    r["cpu vs golden"], "" if golden_comparable else " (weights differ here)",
                    r["fast vs golden"], r["fast batch 3 vs cpu"], "ok" if good else "FAIL"))
            rows.append(r)
    return rows, ok


def memcheck(u2net, model, work, out, device="cuda"):
    tool = shutil.which("compute-sanitizer") or shutil.which(
        os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "compute-sanitizer"))
    if not tool or device != "cuda":
        return "not run: %s" % ("no GPU (smoke run)" if tool else "compute-sanitizer not on PATH")
    x = RW.random_input(48, 64, 11)[None]
    inp, res = os.path.join(work, "mc.f32"), os.path.join(work, "mc_out.f32")
    np.ascontiguousarray(np.concatenate([x, x]), "<f4").tofile(inp)
    args = [tool, "--tool", "memcheck", "--error-exitcode", "99", u2net, "tensor", "-m", model,
            "-i", inp, "-o", res, "--height", "48", "--width", "64", "--batch", "2", "--device",
            "cuda"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=240)
    with open(os.path.join(out, "memcheck.txt"), "w") as f:
        f.write(p.stdout + p.stderr)
    tail = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
    if p.returncode == 0:
        return "clean: %s" % tail[0]
    return "exit %d: %s" % (p.returncode, tail[0])


def engine_bench(u2net, model, size, batch, device, extra=(), runs=10, warmup=3):
    args = [u2net, "bench", "-m", model, "--size", str(size), "--batch", str(batch), "--runs",
            str(runs), "--warmup", str(warmup), "--device", device] + list(extra)
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip()}
    info = {}
    for line in p.stdout.splitlines():
        for kv in line.split():
            if "=" in kv:
                k, v = kv.split("=", 1)
                info[k] = v
    return {"ms": float(info["median_ms"]), "arena_mb": float(info.get("arena_mb", "nan"))}


def torch_bench(model_path, size, batch, mode, runs=10, warmup=3, device="cuda"):
    """PyTorch eager on the reference network with the same weights, timed
    with CUDA events: mode fp32 (TF32 off), tf32 or fp16. (On the CPU, for
    the smoke run: wall clock, float32.)"""
    import torch
    import u2net_ref
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.benchmark = True
    dt = torch.float16 if mode == "fp16" and device == "cuda" else torch.float32
    net = u2net_ref.load_u2nc(model_path).to(device).to(dt).eval()
    x = torch.randn(batch, 3, size, size, device=device, dtype=dt)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            if device == "cuda":
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                net(x)
                b.record()
                torch.cuda.synchronize()
                ms = a.elapsed_time(b)
            else:
                t0 = time.perf_counter()
                net(x)
                ms = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                times.append(ms)
    mem = torch.cuda.max_memory_allocated() / 1e6 if device == "cuda" else 0.0
    del net, x
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"ms": statistics.median(times), "mb": mem}


def benchmark(u2net, models, quick, bench=BENCH, batches=BATCHES, device="cuda"):
    rows = []
    cores = os.cpu_count() or 1
    fast_flag = ("--fast",) if device == "cuda" else ()
    for kind, size in bench:
        path = models[kind]
        params = None
        for batch in batches:
            runs, warmup = (3, 1) if quick else (10, 3)
            e = engine_bench(u2net, path, size, batch, device, runs=runs, warmup=warmup)
            ef = engine_bench(u2net, path, size, batch, device, fast_flag, runs=runs, warmup=warmup)
            t = torch_bench(path, size, batch, "fp32", runs, warmup, device)
            t32 = torch_bench(path, size, batch, "tf32", runs, warmup, device)
            t16 = torch_bench(path, size, batch, "fp16", runs, warmup, device)
            cpu = (engine_bench(u2net, path, size, 1, "cpu", ("--threads", str(cores)), runs=3,
                                warmup=1) if batch == 1 else {})
            if params is None:
                import u2net_format as fmt
                params = fmt.read_model(path).value_count
            r = {"model": kind, "size": size, "batch": batch, "engine": e, "engine_fast": ef,
                 "torch": t, "torch_tf32": t32, "torch_fp16": t16, "cpu": cpu,
                 "weights_mb": params * 4 / 1e6}
            rows.append(r)
            log("  %s %d batch %d: engine %s fast %s | torch %.2f tf32 %.2f fp16 %.2f ms | cpu %s" % (
                kind, size, batch, e.get("ms", e.get("error")), ef.get("ms", ef.get("error")),
                t["ms"], t32["ms"], t16["ms"], cpu.get("ms", "-")))
    return rows


def fmt_ms(v):
    return "%.2f" % v if isinstance(v, float) else "-"


def table(rows):
    lines = ["| model | size | batch | engine ms | torch ms | engine/torch | engine img/s | "
             "torch img/s | throughput x | engine fast ms | torch TF32 ms | torch fp16 ms | "
             "device MB engine | device MB torch | CPU engine ms |",
             "|" + "---|" * 15]
    for r in rows:
        e, t = r["engine"].get("ms"), r["torch"]["ms"]
        b = r["batch"]
        mb = r["engine"].get("arena_mb", 0) + r["weights_mb"] if e else None
        lines.append("| %s | %d | %d | %s | %.2f | %s | %s | %.1f | %s | %s | %.2f | %.2f | %s | %.0f | %s |" % (
            r["model"], r["size"], b, fmt_ms(e), t, "%.2f" % (e / t) if e else "-",
            "%.1f" % (1000 * b / e) if e else "-", 1000 * b / t,
            "%.2f" % (t / e) if e else "-", fmt_ms(r["engine_fast"].get("ms")), r["torch_tf32"]["ms"],
            r["torch_fp16"]["ms"], "%.0f" % mb if mb else "-", r["torch"]["mb"],
            fmt_ms(r["cpu"].get("ms"))))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "cuda"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="fewer benchmark runs")
    ap.add_argument("--bench-only", action="store_true",
                    help="the benchmark alone (make bench's GPU table)")
    ap.add_argument("--smoke", action="store_true",
                    help="no GPU: the CPU in its place, U2NetP only, 64x64, batches 1 and 2")
    a = ap.parse_args()
    device = "cpu" if a.smoke else "cuda"
    kinds = ("u2netp",) if a.smoke else MODELS
    bench = (("u2netp", 64),) if a.smoke else BENCH
    batches = (1, 2) if a.smoke else BATCHES
    u2net = os.path.join(a.build, "u2net")
    work = os.path.join(a.build, "gpu-check")
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    log("-- models (random weights of the goldens)")
    models = {k: model_file(k, work) for k in kinds}
    golden_rows, golden_ok, mc = [], True, "not run (--bench-only)"
    if not a.bench_only:
        log("-- goldens on the %s (tol %g; fast mode guard %g)" % (device, TOL, FAST_TOL))
        golden_rows, golden_ok = check_goldens(u2net, models, work, device)
        log("-- compute-sanitizer memcheck")
        mc = memcheck(u2net, models["u2netp"], work, a.out, device)
        log("  " + mc)
    log("-- benchmark")
    bench_rows = benchmark(u2net, models, a.quick or a.smoke, bench, batches, device)
    t = table(bench_rows)
    fast_bound = max([r["fast batch 3 vs cpu"] for r in golden_rows] or [float("nan")])
    goldens = ("goldens: not run (--bench-only)" if a.bench_only else
               "goldens: %s (every output within %g of the CPU engine%s); fast mode (TF32): "
               "within %.2g of the CPU engine" % (
                   "ok" if golden_ok else "FAILED", TOL,
                   " and of the goldens" if all(r["cpu vs golden"] <= TOL for r in golden_rows)
                   else "; the goldens' random weights differ under this numpy", fast_bound))
    summary = ["# GPU check" + (" (smoke run on the CPU: no GPU)" if a.smoke else ""), "", goldens,
               "", "memcheck: " + mc, "", t, "",
               "engine: wall clock around u2net_run_batch (input copy, run, outputs copy); "
               "torch: CUDA events around model(x) (no copies); medians.",
               "took %.0f s" % (time.time() - t0)]
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("\n".join(summary) + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"goldens": golden_rows, "memcheck": mc, "bench": bench_rows}, f, indent=1)
    log("\n".join(summary))
    return 0 if golden_ok else 1


if __name__ == "__main__":
    sys.exit(main())
