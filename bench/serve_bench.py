#!/usr/bin/python3
"""Benchmark of `u2net serve` under load, against rembg's own server.

    serve_bench.py [--build build] [--workers 1,2] [--clients 16,64] [--duration 30]
                   [--long 5000] [--rounds 2] [--no-rembg]

(`make bench-serve`, and the last step of `make bench`.) The same photos
(../shared/images/real, made at most 640 pixels a side, JPEG; or the
project's sample photo) are POSTed to /api/remove as multipart `file` by a
client of the benchmark's own (threads on keep-alive connections, on
loopback; tests/serve_client.py) for a fixed time per configuration:

- u2net serve with the built-in U2NetP, for each --workers and each number
  of clients;
- rembg's server (`rembg s`, PyPI rembg[cpu,cli], installed by this script
  into BUILD/serve-bench-venv, skipped in one line when it cannot be) on the
  same U2NetP weights, ../shared/weights/u2netp-fp16.onnx, as its
  u2net_custom session (a model file of its own: nothing is downloaded),
  for each number of clients.

Configurations are interleaved, peer after peer, for --rounds rounds; each
figure is the median over the rounds. Then one long run: --long requests to
u2net serve with the most workers and clients, its resident memory sampled
from /proc after the first tenth and at the end (at --long-size, 160 by
default: the run is about memory, and a smaller network makes it quick). Prints throughput, p50 and
p99 latency, failed requests and peak RSS (VmHWM) side by side, and the
ratios, and writes them to bench/out/serve.md and serve.json.
"""
import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from serve_client import ServeProcess, load, percentile, process_rss_kb  # noqa: E402

REMBG_PACKAGES = ("rembg[cpu,cli]",)
PIP_NETWORK_OPTIONS = ("--timeout", "30", "--retries", "1")
PHOTO_SIDE = 640
REMBG_START_TIMEOUT_S = 300
WARMUP_REQUESTS = 8


def photos(shared):
    """The benchmark's uploads: JPEG bytes of the shared photos, or of the
    sample photo when they are missing."""
    from PIL import Image
    folder = os.path.join(shared, "images", "real")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)) if os.path.isdir(folder) else []
    paths = [p for p in paths if p.lower().endswith((".jpg", ".jpeg", ".png"))] or \
        [os.path.join(ROOT, "docs", "img", "sample.jpg")]
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        im.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
        b = io.BytesIO()
        im.save(b, "JPEG", quality=90)
        out.append(b.getvalue())
    return out


def multipart_payloads(images, fields):
    from serve_client import multipart
    bodies, ctype = [], None
    for data in images:
        body, ct = multipart(data, fields, "photo.jpg")
        # one boundary for all, so one Content-Type fits every body
        if ctype is None:
            ctype, boundary = ct, ct.split("boundary=")[1]
        else:
            body = body.replace(ct.split("boundary=")[1].encode(), boundary.encode())
        bodies.append(body)
    return bodies, ctype


def rembg_venv(build, python):
    """The rembg command in BUILD/serve-bench-venv, installed on first use;
    None (said why) when it cannot be."""
    venv = os.path.join(build, "serve-bench-venv")
    rembg = os.path.join(venv, "bin", "rembg")
    if os.path.exists(rembg):
        return rembg
    print("serve bench: installing rembg into %s (once)" % venv, flush=True)
    try:
        subprocess.run([python, "-m", "venv", venv], check=True, capture_output=True)
        p = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q"] + list(PIP_NETWORK_OPTIONS)
                           + list(REMBG_PACKAGES), capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        print("serve bench: rembg skipped: cannot make a virtual environment: %s" % e)
        return None
    if p.returncode != 0 or not os.path.exists(rembg):
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        print("serve bench: rembg skipped: pip install %s failed: %s" % (" ".join(REMBG_PACKAGES), last))
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return rembg


class RembgServer:
    """`rembg s` on a free port, offline (U2NET_HOME in the venv, no model
    downloaded: requests name the u2net_custom session and its file)."""

    def __init__(self, rembg, model_path, threads):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        # BROWSER: its start-up opens a browser on the page, which here must do nothing
        home = os.path.join(os.path.dirname(os.path.dirname(rembg)), "u2net-home")
        # rembg takes a custom model only from inside its U2NET_HOME
        os.makedirs(home, exist_ok=True)
        model_copy = os.path.join(home, os.path.basename(model_path))
        shutil.copyfile(model_path, model_copy)
        env = dict(os.environ, U2NET_HOME=home, BROWSER="true")
        for k in list(env):
            if k.lower().endswith("_proxy"):
                del env[k]
        self.log = open(os.path.join(HERE, "out", "rembg-server.log"), "w")
        self.proc = subprocess.Popen([rembg, "s", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--threads", str(threads), "--no-ui", "--log_level", "warning"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        # rembg's POST takes the model as a form field and extras in the query
        from urllib.parse import quote
        self.query = "extras=" + quote(json.dumps({"model_path": model_copy}))
        import http.client
        t0 = time.time()
        while time.time() - t0 < REMBG_START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError("rembg s exited %d (bench/out/rembg-server.log)" % self.proc.returncode)
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/api")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                time.sleep(0.5)
        self.started_s = time.time() - t0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()


def peak_rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def first_response_s(port, path, body, ctype):
    import http.client
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.perf_counter() - t0


def measure(port, path, bodies, ctype, clients, duration):
    statuses, lat, wall = load(port, bodies, clients, duration_s=duration, path=path, content_type=ctype)
    ok = [l for s, l in zip(statuses, lat) if s == 200]
    return {"requests": len(statuses), "failed": len(statuses) - len(ok), "rps": len(ok) / wall,
            "p50_ms": 1000 * percentile(ok, 50), "p99_ms": 1000 * percentile(ok, 99)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--clients", default="16,64")
    ap.add_argument("--duration", type=float, default=30, help="seconds of load per configuration")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--long", type=int, default=5000, help="requests of the memory run (0: none)")
    ap.add_argument("--long-size", type=int, default=160,
                    help="the memory run's network size (--size; it measures memory, not speed)")
    ap.add_argument("--no-rembg", action="store_true")
    ap.add_argument("--venv-python", default=shutil.which("python3") or sys.executable)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    program = os.path.join(build, "u2net")
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    workers = [int(x) for x in a.workers.split(",")]
    clients = [int(x) for x in a.clients.split(",")]
    cores = os.cpu_count() or 1
    images = photos(a.shared)
    bodies, ctype = multipart_payloads(images, {})
    rembg_bodies, rembg_ctype = multipart_payloads(images, {"model": "u2net_custom"})
    onnx = os.path.abspath(os.path.join(a.shared, "weights", "u2netp-fp16.onnx"))
    rembg = None
    if a.no_rembg:
        print("serve bench: rembg skipped (--no-rembg)")
    elif not os.path.exists(onnx):
        print("serve bench: rembg skipped: missing %s" % onnx)
    else:
        rembg = rembg_venv(build, a.venv_python)
    probe = subprocess.run([program, "serve", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("serve bench: skipped: %s" % probe.stderr.strip())
        return 0
    print("serve bench: %d photos (at most %d px a side, JPEG, %d-%d KB), %d cores, %g s per configuration, "
          "%d rounds" % (len(bodies), PHOTO_SIDE, min(map(len, bodies)) // 1024, max(map(len, bodies)) // 1024,
                         cores, a.duration, a.rounds), flush=True)
    results = {}   # (peer, workers, clients) -> list of runs
    extra = {}
    for rnd in range(a.rounds):
        for w in workers:
            t0 = time.time()
            with ServeProcess(["--workers", str(w)], program=program) as s:
                started = time.time() - t0
                status, first = first_response_s(s.port, "/api/remove", bodies[0], ctype)
                extra.setdefault(("u2net", w), []).append((started, first, status))
                load(s.port, bodies, min(clients), requests=WARMUP_REQUESTS, content_type=ctype)
                for c in clients:
                    r = measure(s.port, "/api/remove", bodies, ctype, c, a.duration)
                    r["peak_rss_mb"] = peak_rss_mb(s.proc.pid)
                    results.setdefault(("u2net", w, c), []).append(r)
                    print("  round %d u2net serve --workers %d, %d clients: %.1f/s p50 %.0f p99 %.0f ms, "
                          "%d failed, peak %.0f MB" % (rnd + 1, w, c, r["rps"], r["p50_ms"], r["p99_ms"],
                                                        r["failed"], r["peak_rss_mb"]), flush=True)
                s.stop()
        if rembg:
            try:
                t0 = time.time()
                srv = RembgServer(rembg, onnx, cores)
            except RuntimeError as e:
                print("serve bench: rembg skipped: %s" % e)
                rembg = None
                continue
            try:
                path = "/api/remove?" + srv.query
                status, first = first_response_s(srv.port, path, rembg_bodies[0], rembg_ctype)
                extra.setdefault(("rembg", 1), []).append((time.time() - t0 - first, first, status))
                if status != 200:
                    print("serve bench: rembg skipped: its first request answered %d "
                          "(bench/out/rembg-server.log)" % status)
                    rembg = None
                    continue
                load(srv.port, rembg_bodies, min(clients), requests=WARMUP_REQUESTS, path=path,
                     content_type=rembg_ctype)
                for c in clients:
                    r = measure(srv.port, path, rembg_bodies, rembg_ctype, c, a.duration)
                    r["peak_rss_mb"] = peak_rss_mb(srv.proc.pid)
                    results.setdefault(("rembg", 1, c), []).append(r)
                    print("  round %d rembg s, %d clients: %.1f/s p50 %.0f p99 %.0f ms, %d failed, peak %.0f MB"
                          % (rnd + 1, c, r["rps"], r["p50_ms"], r["p99_ms"], r["failed"], r["peak_rss_mb"]),
                          flush=True)
            finally:
                srv.stop()
    long_run = None
    if a.long:
        w, c = max(workers), max(clients)
        with ServeProcess(["--workers", str(w), "--size", str(a.long_size)], program=program) as s:
            tenth = max(1, a.long // 10)
            st0, _, _ = load(s.port, bodies, c, requests=tenth, content_type=ctype)
            rss0 = process_rss_kb(s.proc.pid) / 1024.0
            st1, lat, wall = load(s.port, bodies, c, requests=a.long - tenth, content_type=ctype)
            rss1 = process_rss_kb(s.proc.pid) / 1024.0
            ok = [l for x, l in zip(st1, lat) if x == 200]
            long_run = {"workers": w, "clients": c, "size": a.long_size, "requests": len(st0) + len(st1),
                        "failed": sum(x != 200 for x in st0 + st1), "rss_after_tenth_mb": rss0,
                        "rss_end_mb": rss1, "peak_rss_mb": peak_rss_mb(s.proc.pid), "rps": len(ok) / wall,
                        "p50_ms": 1000 * percentile(ok, 50), "p99_ms": 1000 * percentile(ok, 99)}
            long_run["exit"] = s.stop()
    report(results, extra, long_run, workers, clients, a, cores)
    return 0


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def report(results, extra, long_run, workers, clients, a, cores):
    lines = ["## u2net serve against rembg s (U2NetP, %d-core machine, %g s per figure, median of %d rounds)"
             % (cores, a.duration, a.rounds), "",
             "| server | workers | clients | requests/s | p50 ms | p99 ms | failed | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for (peer, w, c), runs in sorted(results.items()):
        lines.append("| %s | %s | %d | %.1f | %.0f | %.0f | %d | %.0f |" % (
            "u2net serve" if peer == "u2net" else "rembg s", w if peer == "u2net" else "(threads %d)" % cores, c,
            med(runs, "rps"), med(runs, "p50_ms"), med(runs, "p99_ms"), sum(r["failed"] for r in runs),
            max(r["peak_rss_mb"] for r in runs)))
    lines.append("")
    for (peer, w), v in sorted(extra.items()):
        lines.append("- %s%s: ready to serve after %.1f s, first request %.0f ms (status %s)" % (
            "u2net serve --workers %d" % w if peer == "u2net" else "rembg s", "",
            statistics.median(x[0] for x in v), 1000 * statistics.median(x[1] for x in v), v[-1][2]))
    best = max(workers)
    for c in clients:
        u, r = results.get(("u2net", best, c)), results.get(("rembg", 1, c))
        if u and r:
            lines.append("- %d clients, u2net serve --workers %d / rembg s: throughput x%.2f, p99 x%.2f, "
                         "peak RSS x%.2f" % (c, best, med(u, "rps") / med(r, "rps"), med(u, "p99_ms") / med(r, "p99_ms"),
                                             max(x["peak_rss_mb"] for x in u) / max(x["peak_rss_mb"] for x in r)))
    if long_run:
        lines.append("- memory run: %(requests)d requests, --workers %(workers)d --size %(size)d, %(clients)d clients: "
                     "%(failed)d failed, %(rps).1f/s, p50 %(p50_ms).0f ms, p99 %(p99_ms).0f ms; RSS %(rss_after_tenth_mb).1f MB "
                     "after the first tenth, %(rss_end_mb).1f MB at the end, peak %(peak_rss_mb).1f MB; exit %(exit)d"
                     % long_run)
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    with open(os.path.join(HERE, "out", "serve.md"), "w") as f:
        f.write(text)
    with open(os.path.join(HERE, "out", "serve.json"), "w") as f:
        json.dump({"results": {"%s/%s/%d" % k: v for k, v in results.items()},
                   "startup": {"%s/%s" % k: v for k, v in extra.items()}, "long": long_run}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
