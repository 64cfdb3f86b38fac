#!/usr/bin/python3
"""Benchmark: u2net.c against ONNX Runtime and PyTorch on the same weights.

    run_bench.py [--build build] [--models u2netp,u2net] [--sizes 320,512,1024]
                 [--rounds 3] [--threads 2] [--runs N --warmup W]

(`make bench BENCH_ARGS="..."` runs it after building.) For every model the
weights are the seeded random ones of the tests (tests/reference/
random_weights.py), written three ways: a .u2nc for the engine, a state dict
for PyTorch and an fp32 ONNX export for ONNX Runtime. Each (model, size,
threads) is measured by `u2net bench`, bench/ort_runner.js and
bench/torch_runner.py as separate processes, interleaved, for several rounds;
a peer's figure is the median of its per-round medians. Tables go to stdout
and bench/out/results.md, raw figures to bench/out/results.json.
"""
import argparse
import datetime
import json
import os
import platform
import re
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
PEER_LABEL = {"engine": "engine", "ort": "ORT", "torch": "torch"}
# The scripts the benchmark models are made by: a model file older than any
# of them is made again.
MODEL_SOURCES = [os.path.join(REFERENCE_DIR, f) for f in ("random_weights.py", "u2net_ref.py", "make_goldens.py")] + \
    [os.path.join(TOOLS_DIR, f) for f in ("convert.py", "u2net_format.py")]
SUMMARY_RE = re.compile(r"^median_ms=([\d.]+) p10_ms=([\d.]+) p90_ms=([\d.]+) peak_rss_mb=([\d.]+)$")
D0_MEAN_RE = re.compile(r"\bd0_mean=([-\d.]+)")
VERSION_RE = re.compile(r"\b(ort|torch)=(\S+)")
# Peers run the same weights on the same input: their mean fused maps agree
# to float32 rounding. A larger gap means they are not comparing one network.
D0_MEAN_RELATIVE_TOLERANCE = 1e-3
D0_MEAN_ABSOLUTE_TOLERANCE = 1e-6
PROCESS_TIMEOUT_S = 1800


def default_schedule(pixels):
    """(warmup, runs) for one process at this many pixels: fewer runs where
    one run takes seconds (U2Net at 1024 takes 9 to 22 s a run on a 2-core
    machine), so that the default benchmark stays near 15 minutes."""
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
    stages = RW.STAGES[kind]
    n = (len(stages) + 1) // 2
    sizes = [(h, w)]  # sizes[k - 1]: the input size of encoder stage k
    for _ in range(1, n):
        sizes.append(_half(sizes[-1]))
    macs = 0
    for j, (skind, L, cin, mid, out, _role) in enumerate(stages):
        k = j + 1 if j < n else 2 * n - 1 - j  # decoder stage kd runs at stage k's size
        macs += _stage_macs(skind, L, cin, mid, out, sizes[k - 1])
    for k, c in enumerate(RW.side_channels(stages), 1):
        sh, sw = sizes[k - 1]
        macs += 9 * c * sh * sw
    macs += n * h * w  # outconv, 1x1 over the n side maps
    return 2 * macs


# ----------------------------------------------------------------- models

def _stale(path):
    return not os.path.exists(path) or any(os.path.getmtime(s) > os.path.getmtime(path) for s in MODEL_SOURCES)


def prepare_models(kinds, model_dir):
    """Write {kind}.u2nc, {kind}_zip.pth and {kind}.onnx for every model kind
    from the same seeded random weights; returns {kind: {peer: path}}."""
    import convert
    import make_goldens
    paths = {}
    os.makedirs(model_dir, exist_ok=True)
    for kind in kinds:
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
        paths[kind] = p
    return paths


# ----------------------------------------------------------------- running

def peer_command(peer, a, kind, model_path, size, threads, warmup, runs):
    common = ["--size", "%dx%d" % (size, size), "--runs", str(runs), "--warmup", str(warmup),
              "--threads", str(threads)]
    if peer == "engine":
        return [os.path.join(a.build, "u2net"), "bench", "-m", model_path] + common
    if peer == "ort":
        return [a.node, os.path.join(HERE, "ort_runner.js"), "--model", model_path] + common
    return [a.python, os.path.join(HERE, "torch_runner.py"), "--model", kind, "--checkpoint", model_path] + common


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
              "p90_ms": float(summary.group(3)), "peak_rss_mb": float(summary.group(4))}
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
        for peer in cfg["peers"]:
            ok = [r for r in results[cfg["key"]][peer] if "error" not in r]
            row[peer] = statistics.median(r["median_ms"] for r in ok) if ok else None
            row[peer + "_rss"] = max(r["peak_rss_mb"] for r in ok) if ok else None
            row[peer + "_rounds"] = [r["median_ms"] for r in ok]
        rows.append(row)
    return rows


def render(rows, peak, meta):
    out = []
    out.append("Date: %s. Machine: %s, %d cores, %s. Commit %s (working tree). %s, %s." % (
        meta["date"], meta["cpu"], meta["cores"], meta["python"], meta["commit"],
        "ONNX Runtime " + meta.get("ort", "?"), "PyTorch " + meta.get("torch", "?")))
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
               "| RSS engine MB | RSS ORT MB | RSS torch MB |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], r["size"], r["threads"], fmt(r.get("engine")), fmt(r.get("ort")), fmt(r.get("torch")),
            fmt(ratio(r.get("engine"), r.get("ort")), "%.2f"), fmt(ratio(r.get("engine"), r.get("torch")), "%.2f"),
            fmt(r.get("engine_rss")), fmt(r.get("ort_rss")), fmt(r.get("torch_rss"))))
    out.append("")
    out.append("| model | size | threads | GFLOP | engine GFLOP/s | engine % of peak | engine ms/MP "
               "| ORT ms/MP | torch ms/MP |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
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
               "RSS: peak resident memory of the whole process (getrusage ru_maxrss / Node maxRSS), "
               "MB of 10^6 bytes, the largest over rounds.")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- main

def int_list(text):
    return [int(v) for v in text.split(",") if v]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="folder of u2net and fma_peak (build)")
    ap.add_argument("--models", default="u2netp,u2net", help="u2netp,u2net")
    ap.add_argument("--sizes", type=int_list, default=[320, 512, 1024], help="square sizes (320,512,1024)")
    ap.add_argument("--threads", type=int, default=2, help="threads of every peer (2)")
    ap.add_argument("--single-thread-size", type=int, default=320,
                    help="also measure the engine on 1 thread at this size (320; 0: never)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    ap.add_argument("--runs", type=int, help="timed runs per process (default by size: 6 / 3 / 1)")
    ap.add_argument("--warmup", type=int, help="warm-up runs per process (default by size: 2 / 1 / 1)")
    ap.add_argument("--peers", default=",".join(PEERS), help="engine,ort,torch")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="results folder (bench/out)")
    ap.add_argument("--node", default="node")
    ap.add_argument("--python", default=sys.executable, help="interpreter for torch_runner.py")
    a = ap.parse_args(argv)
    a.build = os.path.abspath(a.build)
    kinds = [k for k in a.models.split(",") if k]
    peers = [p for p in a.peers.split(",") if p]
    for k in kinds:
        if k not in RW.STAGES:
            ap.error("unknown model %r (known: %s)" % (k, ", ".join(sorted(RW.STAGES))))
    for p in peers:
        if p not in PEERS:
            ap.error("unknown peer %r (known: %s)" % (p, ", ".join(PEERS)))
    if a.rounds < 1 or a.threads < 1 or not a.sizes or min(a.sizes) < 1:
        ap.error("--rounds, --threads and every size must be at least 1")
    if "engine" in peers and not os.path.exists(os.path.join(a.build, "u2net")):
        ap.error("no %s: build first (make bench does)" % os.path.join(a.build, "u2net"))

    paths = prepare_models(kinds, os.path.join(a.out, "models"))
    peak = measure_peak(os.path.join(a.build, "fma_peak"))

    configs = []
    for kind in kinds:
        for size in a.sizes:
            warmup, runs = default_schedule(size * size)
            warmup = warmup if a.warmup is None else a.warmup
            runs = runs if a.runs is None else a.runs
            base = {"model": kind, "size": size, "warmup": warmup, "runs": runs}
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
                cmd = peer_command(peer, a, cfg["model"], paths[cfg["model"]][peer], cfg["size"], cfg["threads"],
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

    # Same weights and input: the peers' fused maps must agree.
    for cfg in configs:
        means = {p: r["d0_mean"] for p, rs in results[cfg["key"]].items() for r in rs[:1] if "d0_mean" in r}
        if means and max(means.values()) - min(means.values()) > \
                D0_MEAN_ABSOLUTE_TOLERANCE + D0_MEAN_RELATIVE_TOLERANCE * max(means.values()):
            failures += 1
            print("WARNING %s: the peers' outputs differ (d0 means %s): not the same network?" % (cfg["key"], means))

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu_name(), "cores": os.cpu_count() or 0, "commit": commit,
            "python": "Python %s" % platform.python_version(), "rounds": a.rounds,
            "load": (load_before, os.getloadavg()[0]), "threads": a.threads,
            "minutes": (time.monotonic() - start) / 60,
            "schedule": ", ".join("%d: %d+%d" % (c["size"], c["warmup"], c["runs"])
                                  for c in configs if c["model"] == kinds[0] and c["threads"] == a.threads)}
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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
