"""`u2net serve`: the HTTP API against the image command, rembg's
parameters, the routes, every refusal (limits, hostile and broken requests,
slow and vanished clients) with the server serving on, back-pressure, the
drain on SIGTERM, a short load with its memory, a run under valgrind, and
the build without libmicrohttpd. The browser test is test_serve_browser.py;
the benchmark is bench/serve_bench.py.
"""
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import numpy as np

import testlib
from testlib import Skip
from serve_client import (ServeProcess, multipart, raw_exchange, status_of, load,
                          process_rss_kb)

SAMPLE = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")


def need_server():
    testlib.need_engine_and_pil()
    p = testlib.run([testlib.U2NET, "serve", "--help"], check=False)
    if p.returncode == 2 and "no HTTP server" in p.stderr_text:
        raise Skip("built without libmicrohttpd (apt-get install libmicrohttpd-dev, then make)")
    assert p.returncode == 0, p.stderr_text


def png_bytes(arr):
    from PIL import Image
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()


def decode(data):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)))


def small_photo(w=160, h=120):
    """The sample photo made smaller, as PNG bytes."""
    from PIL import Image
    im = Image.open(SAMPLE).convert("RGB").resize((w, h), Image.BILINEAR)
    return png_bytes(np.asarray(im))


def cli_output(image_bytes, args, ext="png"):
    d = testlib.scratch_dir("serve_cli")
    src = os.path.join(d, "in.png")
    with open(src, "wb") as f:
        f.write(image_bytes)
    out = os.path.join(d, "out." + ext)
    testlib.run([testlib.U2NET, src, "-o", out, "-q"] + args)
    with open(out, "rb") as f:
        return f.read()


@testlib.tidy
def test_api_matches_the_image_command():
    """Every output type and the post-processing options give the image
    command's bytes' pixels exactly, by multipart, raw body and query."""
    need_server()
    photo = small_photo()
    cases = [
        ({}, ["-t", "rgba"]),
        ({"type": "mask", "threshold": "0.3"}, ["-t", "mask", "--threshold", "0.3"]),
        ({"type": "prob"}, ["-t", "prob"]),
        ({"type": "composite", "background": "#3366aa"}, ["-t", "composite", "--background", "#3366aa"]),
        ({"type": "crop", "padding": "5"}, ["-t", "crop", "--padding", "5"]),
        ({"type": "highlight", "highlight": "blur"}, ["-t", "highlight", "--highlight", "blur"]),
        ({"type": "rgb", "refine": "true", "fg-threshold": "200"}, ["-t", "rgb", "--refine", "--fg-threshold", "200"]),
        ({"type": "mask", "morph": "open-close", "morph_radius": "2", "largest-component": "1"},
         ["-t", "mask", "--morph", "open-close", "--morph-radius", "2", "--largest-component"]),
        ({"feather": "2", "alpha": "soft"}, ["--feather", "2"]),
        ({"guided": "true"}, ["--guided"]),
    ]
    with ServeProcess(["--workers", "2"]) as s:
        for i, (fields, args) in enumerate(cases):
            via = i % 3
            if via == 0:
                status, headers, body = s.post_image(photo, fields)
            elif via == 1:
                status, headers, body = s.post_image(photo, query=fields, raw=True)
            else:
                status, headers, body = s.post_image(photo, {}, query=fields)
            assert status == 200, (fields, status, body[:300])
            assert headers["content-type"] == "image/png", headers
            want = decode(cli_output(photo, args))
            got = decode(body)
            assert got.shape == want.shape and np.array_equal(got, want), (fields, got.shape, want.shape)
        # JPEG and the bbox JSON
        status, headers, body = s.post_image(photo, {"type": "composite", "format": "jpg", "quality": "90"})
        assert status == 200 and headers["content-type"] == "image/jpeg", (status, headers)
        assert np.array_equal(decode(body), decode(cli_output(photo, ["-t", "composite", "--jpeg-quality", "90"], "jpg")))
        status, headers, body = s.post_image(photo, {"type": "bbox"})
        assert status == 200 and headers["content-type"] == "application/json", (status, headers)
        got = json.loads(body)
        want = json.loads(cli_output(photo, ["-t", "bbox"], "json"))
        got.pop("image"), want.pop("image")
        assert got == want, (got, want)
        assert s.stop() == 0, s.log


@testlib.tidy
def test_rembg_parameters():
    """rembg's om, a/af/ab/ae, ppm and bgc, as rembg's clients send them."""
    need_server()
    photo = small_photo(120, 90)
    with ServeProcess(["--workers", "1"]) as s:
        status, _, body = s.post_image(photo, {"om": "true"})
        assert status == 200 and np.array_equal(decode(body), decode(cli_output(photo, ["-t", "mask"])))
        status, _, body = s.post_image(photo, {"a": "true", "af": "230", "ab": "20", "ae": "5"})
        assert status == 200, body
        want = cli_output(photo, ["--alpha-matting", "--fg-threshold", "230", "--bg-threshold", "20",
                                  "--erode-size", "5"])
        assert np.array_equal(decode(body), decode(want))
        # af/ab/ae without a=true change nothing, as in rembg
        status, _, body = s.post_image(photo, {"a": "false", "af": "240", "ab": "10", "ae": "10"})
        assert status == 200 and np.array_equal(decode(body), decode(cli_output(photo, [])))
        status, _, body = s.post_image(photo, {"ppm": "true"})
        assert status == 200
        assert np.array_equal(decode(body), decode(cli_output(photo, ["--morph", "open", "--alpha", "mask"])))
        status, _, body = s.post_image(photo, {"bgc": "255,0,0,128"})
        assert status == 200
        got = decode(body).astype(np.int64)
        cut = decode(cli_output(photo, [])).astype(np.int64)
        a, A = cut[..., 3], 128
        below = A * (255 - a)
        out = a * 255 + below
        safe = np.maximum(out, 1)
        want = np.zeros_like(cut)
        for c, bg in enumerate((255, 0, 0)):
            want[..., c] = np.where(out > 0, (cut[..., c] * a * 255 + bg * below + out // 2) // safe, 0)
        want[..., 3] = (out + 127) // 255
        assert np.array_equal(got, want), np.abs(got - want).max()
        # om with bgc: the mask, as rembg leaves bgc out of only-mask replies
        status, _, body = s.post_image(photo, {"om": "true", "bgc": "0,0,0,255"})
        assert status == 200 and decode(body).ndim == 2
        assert s.stop() == 0, s.log


@testlib.tidy
def test_routes():
    """The page, /api/models, /health, /metrics; 404, 405; url and extras
    refused; unknown parameters and models named."""
    need_server()
    with ServeProcess(["--workers", "1", "--size", "64"]) as s:
        status, headers, body = s.get("/")
        assert status == 200 and headers["content-type"].startswith("text/html"), (status, headers)
        with open(os.path.join(testlib.ROOT, "src", "serve_page.html"), "rb") as f:
            assert body == f.read()
        assert "default-src 'none'" in headers["content-security-policy"]
        status, _, body = s.get("/api/models")
        models = json.loads(body)["models"]
        assert status == 200 and models[0]["name"] == "u2netp" and models[0]["default"], models
        status, _, body = s.get("/health")
        h = json.loads(body)
        assert status == 200 and h["status"] == "ok" and h["workers"] == 1 and h["models"] == ["u2netp"], h
        m = s.metrics()
        assert m['u2net_requests_total{path="/health",code="200"}'] == 1, m
        assert m["u2net_workers"] == 1 and m["process_resident_memory_bytes"] > 0, m
        for path, want in (("/nothing", 404), ("/api/remove/x", 404)):
            assert s.get(path)[0] == want, path
        status, headers, _ = s.get("/api/remove")
        assert status == 405 and headers["allow"] == "POST", (status, headers)
        status, headers, _ = s.request("POST", "/health", body=b"x")
        assert status == 405 and "GET" in headers["allow"], status
        status, _, body = s.get("/api/remove?url=http://169.254.169.254/latest/meta-data")
        assert status == 400 and b"fetches no URL" in body, body
        photo = small_photo(40, 30)
        refusals = [
            ({"url": "http://example.com/a.png"}, b"fetches no URL"),
            ({"extras": '{"model_path": "/etc/passwd"}'}, b"reads no file"),
            ({"model": "u2net"}, b"unknown model 'u2net' (this server has: u2netp)"),
            ({"colour": "red"}, b"unknown parameter 'colour'"),
            ({"size": "1024"}, b"set for the whole server"),
            ({"type": "rgba", "format": "jpg"}, b"cannot hold type rgba"),
            ({"threshold": "2"}, b"is not a threshold"),
            ({"bgc": "1,2,3"}, b"R,G,B,A"),
            ({"refine": "true", "a": "true"}, b"give one"),
            ({"background": "/etc/passwd"}, b"no background image"),
        ]
        for fields, text in refusals:
            status, headers, body = s.post_image(photo, fields)
            assert status == 400 and headers["content-type"] == "application/json", (fields, status)
            err = json.loads(body)
            assert err["status"] == 400 and text in err["error"].encode(), (fields, err)
        assert s.stop() == 0, s.log


def slow_upload(port, total_bytes, interval):
    """A client that sends a request one byte at a time; returns its status."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(b"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: %d\r\n\r\n" % total_bytes)
        for _ in range(total_bytes):
            s.sendall(b"\x89")
            time.sleep(interval)
            s.setblocking(False)
            try:
                got = s.recv(65536)
                if got:
                    return status_of(got)
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
        return status_of(s.recv(65536))
    except (BrokenPipeError, ConnectionResetError):
        return "closed"
    finally:
        s.close()


@testlib.tidy
def test_hostile_requests():
    """Each hostile or broken request gets its status (or, for a client that
    goes away, nothing) while the server keeps serving others: bodies over
    --max-body (answered before they are read), truncated uploads, a slow
    client that holds no worker, malformed multipart, a PNG bomb, WebP,
    other content types, 1,000 connections opened and dropped."""
    need_server()
    photo = small_photo(64, 48)
    args = ["--workers", "1", "--size", "64", "--max-body", "1", "--timeout", "3",
            "--max-pixels", "1000000"]
    with ServeProcess(args) as s:
        port = s.port
        # a Content-Length over the limit: 413 on the headers, the body never sent
        t0 = time.time()
        got = raw_exchange(port, b"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                 b"Content-Length: 1000000000\r\n\r\n", read_timeout=10)
        assert status_of(got) == 413 and time.time() - t0 < 5, got[:200]
        # curl's way: Expect: 100-continue, refused before continuing
        got = raw_exchange(port, b"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                 b"Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n", read_timeout=10)
        assert status_of(got) == 413, got[:200]
        # chunked, no length, past the limit: cut off once past it (an
        # answer can only come on the headers or after the whole body)
        chunk = b"%x\r\n%s\r\n" % (65536, b"\0" * 65536)
        got = raw_exchange(port, b"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 20, read_timeout=10)
        assert got == b"", got[:200]
        # a PNG bomb (100000 x 100000 in its header), over the pixels limit
        bomb = bytearray(png_bytes(np.zeros((8, 8, 3), np.uint8)))
        bomb[16:24] = (100000).to_bytes(4, "big") * 2
        status, _, body = s.post_image(bytes(bomb))
        assert status == 413 and b"over the limit" in body, (status, body)
        # a 1 MB zlib bomb within the pixel limit: a corrupt image, 400
        import zlib
        w = h = 1000
        raw = zlib.compress(b"\0" * (w * 3 + 1) * h * 4, 9)
        def chunk_png(kind, data):
            c = kind + data
            return len(data).to_bytes(4, "big") + c + zlib.crc32(c).to_bytes(4, "big")
        zbomb = (b"\x89PNG\r\n\x1a\n" + chunk_png(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + b"\x08\x02\0\0\0")
                 + chunk_png(b"IDAT", raw) + chunk_png(b"IEND", b""))
        status, _, body = s.post_image(zbomb)
        assert status in (200, 400), (status, body[:200])
        # not an image, an empty upload, a truncated PNG
        assert s.post_image(b"hello, world")[0] == 400
        assert s.post_image(b"")[0] == 400
        assert s.post_image(photo[:len(photo) // 2])[0] == 400
        # WebP and other types
        status, _, body = s.post_image(b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 32)
        assert status == 415 and b"WebP" in body, body
        status, _, _ = s.request("POST", "/api/remove", body=b"{}", headers={"Content-Type": "application/json"})
        assert status == 415
        # malformed multipart: no boundary; a broken body; a missing end
        status, _, _ = s.request("POST", "/api/remove", body=b"x", headers={"Content-Type": "multipart/form-data"})
        assert status == 400
        status, _, body = s.request("POST", "/api/remove", body=b"garbage\r\n\r\n--",
                                    headers={"Content-Type": "multipart/form-data; boundary=XYZ"})
        assert status == 400, (status, body)
        body, ctype = multipart(photo, {})
        status, _, _ = s.request("POST", "/api/remove", body=body[:-40], headers={"Content-Type": ctype})
        assert status == 400
        part = (b'--BB12\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + photo
                + b"\r\n")
        two, ctype2 = part + part + b"--BB12--\r\n", "multipart/form-data; boundary=BB12"
        status, _, body = s.request("POST", "/api/remove", body=two, headers={"Content-Type": ctype2})
        assert status == 400 and b"one image per request" in body, (status, body)
        # a truncated upload: the client sends half its body and goes away
        for _ in range(5):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(photo)
                      + photo[:len(photo) // 2])
            c.close()
        # a slow client (a byte every 0.2 s) holds no worker: with one worker,
        # other requests are served meanwhile; it is cut off at --timeout
        result = {}
        slow = threading.Thread(target=lambda: result.setdefault("status", slow_upload(port, 100, 0.2)))
        slow.start()
        time.sleep(0.5)
        t0 = time.time()
        for _ in range(3):
            status, _, _ = s.post_image(photo)
            assert status == 200
        assert time.time() - t0 < 2.5, "requests waited for the slow client"
        slow.join()
        assert result["status"] in ("closed", None), result
        # 1,000 connections opened and dropped, some with half a request line
        for i in range(1000):
            c = socket.create_connection(("127.0.0.1", port))
            if i % 3 == 0:
                c.sendall(b"POST /api/rem")
            c.close()
        # the server serves on, and nothing is left in flight
        status, _, body = s.post_image(photo)
        assert status == 200 and decode(body).shape == (48, 64, 4)
        deadline = time.time() + 10
        while True:
            m = s.metrics()
            # the /metrics request itself is in flight
            if m["u2net_requests_in_flight"] == 1 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert m["u2net_requests_in_flight"] == 1, m
        counts = {re.search(r'path="([^"]*)",code="([^"]*)"', k).groups(): int(v)
                  for k, v in m.items() if k.startswith("u2net_requests_total")}
        print("    answered: %s; dropped %d" % (", ".join("%s %s: %d" % (p, c, n) for (p, c), n in sorted(counts.items())),
                                                m["u2net_requests_dropped_total"]))
        assert s.stop() == 0, s.log


@testlib.tidy
def test_queue_full_and_timeout():
    """A full queue answers 503 with Retry-After at once, the others 200;
    a request whose --timeout passes in the queue answers 504."""
    need_server()
    photo = small_photo(320, 240)
    with ServeProcess(["--workers", "1", "--threads", "1", "--queue", "1"]) as s:
        statuses, _, _ = load(s.port, [photo], clients=8, requests=8)
        print("    8 at once, queue 1: %s" % sorted(statuses, key=str))
        assert set(statuses) <= {200, 503}, statuses
        # at least the first is taken; how many find the one queue slot free
        # depends on when the worker takes the first
        assert statuses.count(503) >= 1 and statuses.count(200) >= 1, statuses
        status, headers, _ = s.get("/health")
        assert status == 200
        assert s.stop() == 0
    with ServeProcess(["--workers", "1", "--threads", "1", "--timeout", "1", "--queue", "16"]) as s:
        big = small_photo(1200, 900)
        statuses, _, _ = load(s.port, [big], clients=10, requests=10)
        print("    10 at once, timeout 1 s: %s" % sorted(statuses, key=str))
        assert set(statuses) <= {200, 504} and 504 in statuses, statuses
        assert s.stop() == 0


@testlib.tidy
def test_sigterm_drains():
    """SIGTERM with requests in flight: each is answered 200, new
    connections are refused, the server exits 0."""
    need_server()
    photo = small_photo(320, 240)
    with ServeProcess(["--workers", "1", "--threads", "1"]) as s:
        results = []
        threads = [threading.Thread(target=lambda: results.append(s.post_image(photo)[0])) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 20
        while json.loads(s.get("/health")[2])["in_flight"] < 5 and time.time() < deadline:
            time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        rc = s.proc.wait(60)
        assert results == [200] * 4, results
        assert rc == 0, (rc, s.log)
        assert "SIGTERM: finishing" in s.log and "stopped" in s.log, s.log
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
            refused = False
        except OSError:
            refused = True
        assert refused


@testlib.tidy
def test_load_and_memory():
    """16 clients on keep-alive connections, 750 requests: none fails, and
    the resident memory after the first 150 stays within 6 MB to the end
    (under make sanitize, 250 requests and no memory bound: AddressSanitizer
    keeps freed memory in quarantine)."""
    need_server()
    rng = np.random.default_rng(5)
    from PIL import Image
    base = np.asarray(Image.open(SAMPLE).convert("RGB"))
    payloads = []
    for k in range(6):
        w, h = int(rng.integers(40, 200)), int(rng.integers(40, 200))
        payloads.append(png_bytes(np.asarray(Image.fromarray(base).resize((w, h)))))
    with ServeProcess(["--workers", "2", "--size", "96"]) as s:
        statuses, _, _ = load(s.port, payloads, clients=16, requests=150)
        assert statuses == [200] * 150, set(map(str, statuses))
        rss0 = process_rss_kb(s.proc.pid)
        n = 100 if testlib.SANITIZE else 600
        statuses, lat, wall = load(s.port, payloads, clients=16, requests=n)
        rss1 = process_rss_kb(s.proc.pid)
        failures = [x for x in statuses if x != 200]
        print("    %d requests, 16 clients: %.0f/s, p50 %.0f ms, p99 %.0f ms; RSS %d -> %d kB"
              % (n, n / wall, 1000 * np.percentile(lat, 50), 1000 * np.percentile(lat, 99), rss0, rss1))
        assert not failures, failures[:5]
        assert testlib.SANITIZE or rss1 - rss0 < 6 * 1024, (rss0, rss1)
        assert s.stop() == 0, s.log


@testlib.tidy
def test_server_under_valgrind():
    """The server under valgrind's memcheck over good and hostile requests
    and a SIGTERM: no leak of any kind, no memory error, exit 0."""
    need_server()
    if testlib.SANITIZE:
        raise Skip("the program is built with AddressSanitizer (make sanitize)")
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise Skip("valgrind not installed")
    model = testlib.random_u2netp("serve_valgrind_random", 3)
    wrapper = [valgrind, "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
               "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    photo = small_photo(40, 30)
    with ServeProcess(["-m", model, "--size", "32", "--workers", "2", "--threads", "1", "--max-body", "1",
                       "--timeout", "20"], wrapper=wrapper, env=env, start_timeout=300) as s:
        port = s.port
        assert s.post_image(photo, {"type": "mask"})[0] == 200
        assert s.post_image(photo, query={"type": "bbox"}, raw=True)[0] == 200
        assert s.post_image(photo, {"a": "true", "bgc": "0,0,255,255"})[0] == 200
        assert s.post_image(b"not an image")[0] == 400
        assert s.post_image(photo, {"model": "nope"})[0] == 400
        assert status_of(raw_exchange(port, b"POST /api/remove HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Length: 999999999\r\n\r\n")) == 413
        raw_exchange(port, b"POST /api/remove HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + (b"10000\r\n" + b"\0" * 65536 + b"\r\n") * 20)
        assert s.request("POST", "/api/remove", body=b"--", headers={"Content-Type": "multipart/form-data; boundary=q"})[0] == 400
        for i in range(50):
            c = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                c.sendall(b"POST /api/remove HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
            c.close()
        for path in ("/", "/health", "/metrics", "/api/models", "/x"):
            s.get(path)
        rc = s.stop(timeout=300)
        log = s.log
    leaks = {k: re.search(r"%s: ([\d,]+) bytes" % k, log) for k in ("definitely lost", "indirectly lost", "possibly lost")}
    errors = re.search(r"ERROR SUMMARY: ([\d,]+) errors", log)
    print("    exit %d; %s; errors %s" % (rc, ", ".join("%s %s" % (k, m.group(1) if m else "0")
                                                    for k, m in leaks.items()), errors.group(1) if errors else "?"))
    assert rc == 0, log[-4000:]
    assert errors and errors.group(1) == "0", log[-4000:]
    assert all(m is None or m.group(1) == "0" for m in leaks.values()), log[-4000:]


@testlib.tidy
def test_build_without_libmicrohttpd():
    """make HTTP=0 builds the program; its serve says in one line how to
    get the server, exit 2, and the image command still works."""
    need_server()
    if testlib.SANITIZE:
        raise Skip("under make sanitize the plain build is tested")
    d = testlib.scratch_dir("serve_nohttp")
    build = os.path.join(d, "build")
    # the library's objects copied with their times, so only the program is compiled again
    shutil.copytree(testlib.BUILD, build, symlinks=True,
                    ignore=shutil.ignore_patterns("src", "u2net", "testwork", "*venv*", "san", "tsan",
                                                  "fuzz", "cuda", "bench*", "gpu*", "demo"))
    p = testlib.run(["make", "-C", testlib.ROOT, "-s", "BUILD=" + build, "HTTP=0", build + "/u2net"],
                    check=False, timeout=900)
    assert p.returncode == 0, p.stderr_text[-3000:]
    p = testlib.run([build + "/u2net", "serve", "--port", "0"], check=False)
    lines = p.stderr_text.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "libmicrohttpd-dev" in lines[0], p.stderr_text
    out = os.path.join(d, "mask.png")
    testlib.run([build + "/u2net", SAMPLE, "-o", out, "-t", "mask", "--size", "64", "-q"])
    assert decode(open(out, "rb").read()).ndim == 2
