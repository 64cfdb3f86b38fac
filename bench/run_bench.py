#!/usr/bin/python3
"""Benchmark: u2net.c against ONNX Runtime and PyTorch on the same weights.

    run_bench.py [--build build] [--models u2netp,u2net,isnet] [--sizes 320,512,1024]
                 [--isnet-sizes 1024] [--rounds 3] [--threads 2] [--runs N --warmup W]

(`make bench BENCH_ARGS="..."` runs it after building.) U2NetP and U2Net run
on the seeded random weights of the tests (tests/reference/random_weights.py),
written three ways: a .u2nc for the engine, a state dict for PyTorch and an
fp32 ONNX export for ONNX Runtime. ISNet runs on the real weights
(../shared/weights/isnet-fp16.onnx): converted with --fp16 for the engine, the
reference built from that file for PyTorch, and its float32 ONNX export for
ONNX Runtime. ONNX Runtime comes from PyPI into a virtual environment of the
benchmark's own (build/bench-venv). Each (model, size, threads) is measured by
`u2net bench`, bench/ort_runner.py and bench/torch_runner.py as separate
processes, interleaved, for several rounds; a peer's figure is the median of
its per-round medians. Tables go to stdout and bench/out/results.md, raw
figures to bench/out/results.json.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE_DIR = os.path.join(ROOT, "tests", "reference")
TOOLS_DIR = os.path.join(ROOT, "tools")
sys.path.insert(0, REFERENCE_DIR)
sys.path.insert(0, TOOLS_DIR)
import random_weights as RW  # noqa: E402

PEERS = ("engine", "ort", "torch")
RANDOM_KINDS = ("u2netp", "u2net")  # the tests' seeded random weights
ISNET = "isnet"                     # the real ISNet weights
KINDS = RANDOM_KINDS + (ISNET,)
ISNET_NOTE = ("isnet: the real ISNet weights (isnet-fp16.onnx); the engine runs them converted with --fp16 "
              "(float16 weights, float32 arithmetic), ORT a float32 export of the same weights, torch the "
              "reference built from the converted file (BatchNorm folded).")
# The scripts the benchmark models are made by: a model file older than any
# of them is made again.
MODEL_SOURCES = [os.path.join(REFERENCE_DIR, f) for f in ("random_weights.py", "u2net_ref.py", "make_goldens.py")] + \
    [os.path.join(TOOLS_DIR, f) for f in ("convert.py", "u2net_format.py")]
SUMMARY_RE = re.compile(r"^median_ms=([\d.]+) p10_ms=([\d.]+) p90_ms=([\d.]+) peak_rss_mb=([\d.]+)"
                        r" peak_vm_mb=([\d.]+)$")
D0_MEAN_RE = re.compile(r"\bd0_mean=([-\d.]+)")
VERSION_RE = re.compile(r"\b(ort|torch)=(\S+)")
# Peers run the same weights on the same input: the means of their output 0
# (U2Net's fused map d0, ISNet's d1) agree to float32 rounding. A larger gap
# means they are not comparing one network.
D0_MEAN_RELATIVE_TOLERANCE = 1e-3
D0_MEAN_ABSOLUTE_TOLERANCE = 1e-6
PROCESS_TIMEOUT_S = 1800
ORT_PACKAGES = ("onnxruntime", "numpy")
# An unreachable index makes pip retry for many minutes at its default
# timeout: a short one makes the ORT peer's skip quick.
PIP_NETWORK_OPTIONS = ("--timeout", "30", "--retries", "1")
# ISNet's export: opset 15 as the published ISNet exports, traced at the size
# ISNet is trained and used at.
ISNET_ONNX_OPSET = 15
ISNET_TRACE_SIZE = 1024


def default_schedule(pixels):
    """(warmup, runs) for one process at this many pixels: fewer runs where
    one run takes seconds (U2Net at 1024 takes 9 to 22 s a run on a 2-core
    machine), so that the default benchmark stays near 20 minutes."""
    if pixels <= 400 * 400:
        return 2, 6
    if pixels <= 640 * 640:
        return 1, 3
    return 1, 1


# ----------------------------------------------------------------- FLOPs

def _half(size):
    return tuple((s + 1) // 2 for s in size)  # 2x2 max pool, ceil mode


def _stage_macs(kind, L, cin, mid, out, size):
    """Multiply-adds of the convolutions of one RSU stage at input size (h, w)."""
    levels = [size]  # levels[i - 1]: the size of encoder level i
    for _ in range(1, L):
        levels.append(_half(levels[-1]))
    macs = 0
    for name, ci, co, _d in RW.stage_convs(kind, L, cin, mid, out):
        level = 1
        if kind == RW.RSU_L:
            digits = re.match(r"rebnconv(\d+)", name)
            if digits:
                level = min(int(digits.group(1)), L - 1)  # rebnconvL runs at level L-1
        h, w = levels[level - 1]
        macs += 9 * ci * co * h * w
    return macs


def conv_flops(kind, h, w):
    """2 x the multiply-adds of every convolution of the network at h x w
    (pooling, resampling, additions and sigmoids not counted)."""
    desc = RW.description(kind)
    size = (h, w)
    macs = 0
    for layer in desc.prelude:
        if getattr(layer, "cout", None) is None:  # a 2x2 max pool
            size = _half(size)
        else:
            size = tuple((s - 1) // layer.stride + 1 for s in size)
            macs += 9 * layer.cin * layer.cout * size[0] * size[1]
    stages = desc.stages
    n = (len(stages) + 1) // 2
    sizes = [size]  # sizes[k - 1]: the input size of encoder stage k
    for _ in range(1, n):
        sizes.append(_half(sizes[-1]))
    out_sizes = []  # per stage in table order: its input size, which it keeps
    for j, (skind, L, cin, mid, out, _role) in enumerate(stages):
        k = j + 1 if j < n else 2 * n - 1 - j  # decoder stage kd runs at stage k's size
        macs += _stage_macs(skind, L, cin, mid, out, sizes[k - 1])
        out_sizes.append(sizes[k - 1])
    for source, _resize_to in desc.sides:
        sh, sw = out_sizes[source]
        macs += 9 * stages[source][4] * sh * sw
    if desc.fuse:
        macs += len(desc.sides) * h * w  # 1x1 over the side maps
    return 2 * macs


# ----------------------------------------------------------------- models

def _stale(path, sources=()):
    """True when path is missing or older than any of the scripts that make
    models or any of `sources`."""
    return not os.path.exists(path) or any(
        os.path.getmtime(s) > os.path.getmtime(path) for s in MODEL_SOURCES + list(sources))


def prepare_random_models(kind, model_dir):
    """Write {kind}.u2nc, {kind}_zip.pth and {kind}.onnx from the same seeded
    random weights; returns {peer: the peer's model arguments}."""
    import convert
    import make_goldens
    p = {"engine": os.path.join(model_dir, "%s.u2nc" % kind),
         "torch": os.path.join(model_dir, "%s_zip.pth" % kind),
         "ort": os.path.join(model_dir, "%s.onnx" % kind)}
    if _stale(p["engine"]):
        print("writing %s" % os.path.relpath(p["engine"], ROOT), flush=True)
        model = convert.convert_state_dict(make_goldens.random_sd(kind), name=kind)
        convert.write_model(model, p["engine"])
    if _stale(p["torch"]) or _stale(p["ort"]):
        print("writing %s and %s" % (os.path.relpath(p["torch"], ROOT), os.path.relpath(p["ort"], ROOT)),
              flush=True)
        make_goldens.write_checkpoints(kind, model_dir, formats=("zip", "onnx"))
    return {"engine": ["-m", p["engine"]], "ort": ["--model", p["ort"]],
            "torch": ["--model", kind, "--checkpoint", p["torch"]]}


def _export_isnet_onnx(u2nc, path):
    """A float32 ONNX export, with dynamic height and width like the U2Net
    ones, of the reference built from the converted ISNet file: the engine's
    network and weights, in float32. (In a check at 1024x1024 on 2 threads
    ONNX Runtime ran a fixed-size export slower and larger: 3.6 against 2.9 s,
    1.75 against 1.27 GB.)"""
    import warnings
    import torch
    import make_goldens
    import u2net_ref
    model = u2net_ref.load_u2nc(u2nc)
    names = ["input"] + make_goldens.output_names(ISNET)
    tmp = path + ".tmp"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic
        torch.onnx.export(model, torch.zeros(1, 3, ISNET_TRACE_SIZE, ISNET_TRACE_SIZE), tmp,
                          opset_version=ISNET_ONNX_OPSET, input_names=names[:1], output_names=names[1:],
                          dynamic_axes={n: {2: "height", 3: "width"} for n in names})
    os.replace(tmp, path)


def prepare_isnet_models(source, model_dir):
    """isnet.u2nc, converted from `source` with --fp16, and isnet.onnx;
    returns ({peer: model arguments}, None), or (None, why not)."""
    if not os.path.exists(source):
        return None, "no %s" % source
    u2nc = os.path.join(model_dir, "isnet.u2nc")
    onnx_path = os.path.join(model_dir, "isnet.onnx")
    if _stale(u2nc, [source]):
        print("writing %s (tools/convert.py %s --fp16)" % (os.path.relpath(u2nc, ROOT), source), flush=True)
        tmp = u2nc + ".tmp"
        proc = subprocess.run([sys.executable, os.path.join(TOOLS_DIR, "convert.py"), source, "-o", tmp,
                               "--fp16", "--force"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        if proc.returncode != 0:
            return None, "tools/convert.py failed: %s" % (proc.stderr.strip().splitlines() or ["no output"])[-1]
        os.replace(tmp, u2nc)
    if _stale(onnx_path, [u2nc, os.path.abspath(__file__)]):
        print("writing %s (float32 export)" % os.path.relpath(onnx_path, ROOT), flush=True)
        try:
            _export_isnet_onnx(u2nc, onnx_path)
        except Exception as e:  # the reader and the exporter raise many kinds; the row says which
            return None, "float32 export of %s failed: %s" % (u2nc, (str(e).strip().splitlines() or [repr(e)])[0])
    return {"engine": ["-m", u2nc], "ort": ["--model", onnx_path], "torch": ["--u2nc", u2nc]}, None


def ort_python(venv, venv_python):
    """The Python of the virtual environment `venv` with onnxruntime and numpy,
    made with `venv_python` and installed from PyPI when missing; returns
    (path, None), or (None, why not)."""
    python = os.path.join(venv, "bin", "python")
    check = [python, "-c", "import " + ", ".join(ORT_PACKAGES)]

    def usable():
        return os.path.exists(python) and subprocess.run(check, stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL).returncode == 0

    def last_line(proc):
        return ((proc.stderr or "").strip() or (proc.stdout or "").strip() or "no output").splitlines()[-1]

    if usable():
        return python, None
    creator = shutil.which(venv_python)
    if not creator:
        return None, "no %s on PATH to make it with" % venv_python
    print("making %s for the ORT peer (pip install %s)" % (venv, " ".join(ORT_PACKAGES)), flush=True)
    # --clear: a folder left by an interrupted or moved environment is made anew
    steps = [[creator, "-m", "venv", "--clear", venv],
             [python, "-m", "pip", "install", "--quiet"] + list(PIP_NETWORK_OPTIONS) + list(ORT_PACKAGES)]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        except OSError as e:
            return None, str(e)
        if proc.returncode != 0:
            return None, "%s: %s" % (" ".join(os.path.basename(c) for c in cmd[:3]), last_line(proc))
    if not usable():
        return None, "%s still cannot import %s" % (python, ", ".join(ORT_PACKAGES))
    return python, None


# ----------------------------------------------------------------- running

def peer_command(peer, a, model_args, size, threads, warmup, runs):
    common = ["--size", "%dx%d" % (size, size), "--runs", str(runs), "--warmup", str(warmup),
              "--threads", str(threads)]
    if peer == "engine":
        return [os.path.join(a.build, "u2net"), "bench"] + model_args + common
    if peer == "ort":
        return [a.ort_python, os.path.join(HERE, "ort_runner.py")] + model_args + common
    return [a.python, os.path.join(HERE, "torch_runner.py")] + model_args + common


# Linux keeps a process's ru_maxrss across exec, and a forked child starts
# with its parent's resident pages: a peer started straight from this Python
# process would report at least this process's size (600+ MB once torch has
# made the models). A small shell in between forks the peer from itself, so
# the peer's ru_maxrss is its own.
CLEAN_RSS_LAUNCHER = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]


def run_peer(cmd):
    """Runs one benchmark process; returns a dict of its figures, or of its error."""
    try:
        proc = subprocess.run(CLEAN_RSS_LAUNCHER + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=PROCESS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    lines = proc.stdout.strip().splitlines()
    summary = SUMMARY_RE.match(lines[-1]) if lines else None
    if proc.returncode != 0 or not summary:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        return {"error": "exit %d: %s" % (proc.returncode, tail[0])}
    result = {"median_ms": float(summary.group(1)), "p10_ms": float(summary.group(2)),
              "p90_ms": float(summary.group(3)), "peak_rss_mb": float(summary.group(4)),
              "peak_vm_mb": float(summary.group(5))}
    info = "\n".join(lines[:-1])
    d0 = D0_MEAN_RE.search(info)
    if d0:
        result["d0_mean"] = float(d0.group(1))
    version = VERSION_RE.search(info)
    if version:
        result["version"] = version.group(2)
    return result


def measure_peak(path):
    """{'single': GFLOP/s, 'all': GFLOP/s, 'isa': ..., 'threads': n} from fma_peak, or None."""
    if not os.path.exists(path):
        print("no %s: peak GFLOP/s not measured (make bench builds it)" % path, flush=True)
        return None
    out = subprocess.run([path], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split())
    return {"isa": fields["isa"], "threads": int(fields["threads"]),
            "single": float(fields["single_core_gflops"]), "all": float(fields["all_core_gflops"])}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit():
    try:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


# ----------------------------------------------------------------- report

def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def ratio(a, b):
    return None if a is None or b is None else a / b


def summarise(configs, results):
    """Per config and peer: median of the per-round medians and max peak RSS."""
    rows = []
    for cfg in configs:
        row = dict(cfg)
        if "skipped" in cfg:
            rows.append(row)
            continue
        for peer in cfg["peers"]:
            ok = [r for r in results[cfg["key"]][peer] if "error" not in r]
            row[peer] = statistics.median(r["median_ms"] for r in ok) if ok else None
            row[peer + "_rss"] = max(r["peak_rss_mb"] for r in ok) if ok else None
            row[peer + "_vm"] = max(r["peak_vm_mb"] for r in ok) if ok else None
            row[peer + "_rounds"] = [r["median_ms"] for r in ok]
        rows.append(row)
    return rows


def render(rows, peak, meta):
    out = []
    out.append("Date: %s. Machine: %s, %d cores, %s. Commit %s (working tree). %s, %s." % (
        meta["date"], meta["cpu"], meta["cores"], meta["python"], meta["commit"],
        "ONNX Runtime %s (PyPI)" % meta["ort"] if "ort" in meta else "ONNX Runtime not measured",
        "PyTorch " + meta.get("torch", "?")))
    if "ort_skipped" in meta:
        out.append("ORT not measured: %s." % meta["ort_skipped"])
    out.append("Protocol: %d round(s), each peer a separate process per round, interleaved engine, ORT, "
               "torch; a figure is the median over rounds of the per-process median run time. "
               "Runs per process (warmup + timed): %s. Measuring took %.0f min. Load average (1 min) %.1f before, %.1f at the end; "
               "the benchmark itself adds about %d, more is other work on the machine and inflates the times."
               % (meta["rounds"], meta["schedule"], meta["minutes"], meta["load"][0], meta["load"][1], meta["threads"]))
    if peak:
        out.append("Measured FMA peak (bench/fma_peak.c, %s): %.1f GFLOP/s single core, %.1f GFLOP/s on all %d cores."
                   % (peak["isa"], peak["single"], peak["all"], peak["threads"]))
        if peak["all"] < 0.75 * peak["single"] * peak["threads"]:
            out.append("Warning: the all-core peak is well under %d x the single-core one: other work held "
                       "cores while it was measured, and the timings below suffer from it too." % peak["threads"])
    out.append("")
    out.append("| model | size | threads | engine ms | ORT ms | torch ms | engine/ORT | engine/torch "
               "| RSS engine MB | RSS ORT MB | RSS torch MB | VM engine MB | VM ORT MB |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            out.append("| %s | %d | %d | skipped: %s |%s" % (r["model"], r["size"], r["threads"], r["skipped"],
                                                            " - |" * 9))
            continue
        out.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], r["size"], r["threads"], fmt(r.get("engine")), fmt(r.get("ort")), fmt(r.get("torch")),
            fmt(ratio(r.get("engine"), r.get("ort")), "%.2f"), fmt(ratio(r.get("engine"), r.get("torch")), "%.2f"),
            fmt(r.get("engine_rss")), fmt(r.get("ort_rss")), fmt(r.get("torch_rss")),
            fmt(r.get("engine_vm")), fmt(r.get("ort_vm"))))
    out.append("")
    out.append("| model | size | threads | GFLOP | engine GFLOP/s | engine % of peak | engine ms/MP "
               "| ORT ms/MP | torch ms/MP |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            continue
        mp = r["size"] * r["size"] / 1e6
        gflop = conv_flops(r["model"], r["size"], r["size"]) / 1e9
        rate = gflop / (r["engine"] / 1e3) if r.get("engine") else None
        ceiling = None
        if peak:
            ceiling = peak["single"] if r["threads"] == 1 else (
                peak["all"] if r["threads"] >= peak["threads"] else peak["single"] * r["threads"])
        per_mp = {p: (r[p] / mp if r.get(p) else None) for p in PEERS}
        out.append("| %s | %d | %d | %.1f | %s | %s | %s | %s | %s |" % (
            r["model"], r["size"], r["threads"], gflop, fmt(rate, "%.1f"),
            fmt(rate / ceiling * 100 if rate and ceiling else None, "%.0f%%"),
            fmt(per_mp["engine"]), fmt(per_mp["ort"]), fmt(per_mp["torch"])))
    out.append("")
    out.append("GFLOP: 2 x multiply-adds of every convolution (pooling, resampling and additions not counted); "
               "% of peak is against the measured FMA peak for that many threads. "
               "ms/MP: median time per megapixel of input; constant across sizes means cost linear in pixels. "
               "RSS: peak resident memory of the whole process (getrusage ru_maxrss), "
               "VM: its peak address space (VmPeak, what ulimit -v limits), "
               "MB of 10^6 bytes, the largest over rounds.")
    if any(r["model"] == ISNET and "skipped" not in r for r in rows):
        out.append(ISNET_NOTE)
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- main

def int_list(text):
    return [int(v) for v in text.split(",") if v]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="folder of u2net and fma_peak (build)")
    ap.add_argument("--models", default=",".join(KINDS), help=",".join(KINDS))
    ap.add_argument("--sizes", type=int_list, default=[320, 512, 1024],
                    help="square sizes of u2netp and u2net (320,512,1024)")
    ap.add_argument("--isnet-sizes", type=int_list, default=[1024], help="square sizes of isnet (1024)")
    ap.add_argument("--isnet-weights", default=os.path.join(os.path.dirname(ROOT), "shared", "weights",
                                                           "isnet-fp16.onnx"),
                    help="the real ISNet (../shared/weights/isnet-fp16.onnx)")
    ap.add_argument("--threads", type=int, default=2, help="threads of every peer (2)")
    ap.add_argument("--single-thread-size", type=int, default=320,
                    help="also measure the engine on 1 thread at this size (320; 0: never)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    ap.add_argument("--runs", type=int, help="timed runs per process (default by size: 6 / 3 / 1)")
    ap.add_argument("--warmup", type=int, help="warm-up runs per process (default by size: 2 / 1 / 1)")
    ap.add_argument("--peers", default=",".join(PEERS), help="engine,ort,torch")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="results folder (bench/out)")
    ap.add_argument("--ort-venv", help="virtual environment of the ORT peer (BUILD/bench-venv)")
    ap.add_argument("--venv-python", default="python3",
                    help="interpreter that makes that environment (python3, the first on PATH)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for torch_runner.py")
    a = ap.parse_args(argv)
    a.build = os.path.abspath(a.build)
    kinds = [k for k in a.models.split(",") if k]
    peers = [p for p in a.peers.split(",") if p]
    for k in kinds:
        if k not in KINDS:
            ap.error("unknown model %r (known: %s)" % (k, ", ".join(KINDS)))
    for p in peers:
        if p not in PEERS:
            ap.error("unknown peer %r (known: %s)" % (p, ", ".join(PEERS)))
    if a.rounds < 1 or a.threads < 1 or not a.sizes or not a.isnet_sizes or min(a.sizes + a.isnet_sizes) < 1:
        ap.error("--rounds, --threads and every size must be at least 1")
    if "engine" in peers and not os.path.exists(os.path.join(a.build, "u2net")):
        ap.error("no %s: build first (make bench does)" % os.path.join(a.build, "u2net"))

    meta_notes = {}
    if "ort" in peers:
        venv = a.ort_venv or os.path.join(a.build, "bench-venv")
        a.ort_python, why = ort_python(venv, a.venv_python)
        if why:
            print("ORT peer skipped: cannot install %s into %s: %s" % (" and ".join(ORT_PACKAGES), venv, why),
                  flush=True)
            meta_notes["ort_skipped"] = "%s could not be installed (%s)" % (" and ".join(ORT_PACKAGES), why)
            peers.remove("ort")

    model_dir = os.path.join(a.out, "models")
    os.makedirs(model_dir, exist_ok=True)
    files, skipped = {}, {}  # files[kind]: {peer: model arguments}; skipped[kind]: why
    for kind in kinds:
        if kind == ISNET:
            files[kind], why = prepare_isnet_models(a.isnet_weights, model_dir)
            if why:
                print("isnet skipped: %s" % why, flush=True)
                skipped[kind] = why
        else:
            files[kind] = prepare_random_models(kind, model_dir)
    peak = measure_peak(os.path.join(a.build, "fma_peak"))

    configs = []
    for kind in kinds:
        for size in (a.isnet_sizes if kind == ISNET else a.sizes):
            warmup, runs = default_schedule(size * size)
            warmup = warmup if a.warmup is None else a.warmup
            runs = runs if a.runs is None else a.runs
            base = {"model": kind, "size": size, "warmup": warmup, "runs": runs}
            if kind in skipped:
                configs.append(dict(base, threads=a.threads, peers=[], skipped=skipped[kind]))
                continue
            configs.append(dict(base, threads=a.threads, peers=peers))
            if size == a.single_thread_size and a.threads != 1 and "engine" in peers:
                configs.append(dict(base, threads=1, peers=["engine"]))
    for cfg in configs:
        cfg["key"] = "%s/%d/t%d" % (cfg["model"], cfg["size"], cfg["threads"])
    results = {cfg["key"]: {p: [] for p in cfg["peers"]} for cfg in configs}

    commit = git_commit()  # before measuring: the tree may move on meanwhile
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    failures = 0
    for rnd in range(1, a.rounds + 1):
        for cfg in configs:
            for peer in cfg["peers"]:
                cmd = peer_command(peer, a, files[cfg["model"]][peer], cfg["size"], cfg["threads"],
                                   cfg["warmup"], cfg["runs"])
                r = run_peer(cmd)
                results[cfg["key"]][peer].append(r)
                if "error" in r:
                    failures += 1
                    print("[round %d/%d] %s %s: FAILED %s" % (rnd, a.rounds, cfg["key"], peer, r["error"]),
                          flush=True)
                else:
                    print("[round %d/%d] %s %-6s median %8.1f ms  p10 %8.1f  p90 %8.1f  rss %6.0f MB  d0_mean %s"
                          % (rnd, a.rounds, cfg["key"], peer, r["median_ms"], r["p10_ms"], r["p90_ms"],
                             r["peak_rss_mb"], r.get("d0_mean", "?")), flush=True)

    # Same weights and input: the peers' output 0 must agree.
    for cfg in configs:
        means = {p: r["d0_mean"] for p, rs in results[cfg["key"]].items() for r in rs[:1] if "d0_mean" in r}
        if means and max(means.values()) - min(means.values()) > \
                D0_MEAN_ABSOLUTE_TOLERANCE + D0_MEAN_RELATIVE_TOLERANCE * max(means.values()):
            failures += 1
            print("WARNING %s: the peers' outputs differ (means of output 0: %s): not the same network?"
                  % (cfg["key"], means))

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu_name(), "cores": os.cpu_count() or 0, "commit": commit,
            "python": "Python %s" % platform.python_version(), "rounds": a.rounds,
            "load": (load_before, os.getloadavg()[0]), "threads": a.threads,
            "minutes": (time.monotonic() - start) / 60,
            "schedule": ", ".join("%d: %d+%d" % k for k in sorted({(c["size"], c["warmup"], c["runs"])
                                                                     for c in configs}))}
    meta.update(meta_notes)
    for peer in ("ort", "torch"):
        for rs in results.values():
            for r in rs.get(peer, []):
                if "version" in r:
                    meta[peer] = r["version"]
    rows = summarise(configs, results)
    report = render(rows, peak, meta)
    print()
    print(report, end="")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(report)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "peak": peak, "configs": configs, "results": results}, f, indent=1)
    print("wrote %s and results.json" % os.path.relpath(os.path.join(a.out, "results.md"), os.getcwd()))
    gpu_comparison(a.out)
    return 1 if failures else 0


def gpu_comparison(out):
    """The CPU-vs-GPU table of tests/gpu/gpu_check.py (the engine on the GPU
    against PyTorch there, the CPU engine beside it) when this machine has
    an NVIDIA GPU and a CUDA build; otherwise one line saying why not."""
    u2net = os.path.join(ROOT, "build", "cuda", "u2net")
    smi = shutil.which("nvidia-smi")
    gpus = subprocess.run([smi, "-L"], capture_output=True, text=True) if smi else None
    if not gpus or gpus.returncode != 0 or "GPU" not in gpus.stdout:
        print("CPU vs GPU: not measured: no NVIDIA GPU here (tests/gpu/run.sh measures it on one)")
        return
    if not os.path.exists(u2net):
        print("CPU vs GPU: not measured: no CUDA build (make CUDA=1)")
        return
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "gpu", "gpu_check.py"), "--build",
                    os.path.dirname(u2net), "--out", os.path.join(out, "gpu"), "--bench-only"])


if __name__ == "__main__":
    sys.exit(main())
