"""A `u2net serve` process and a small HTTP client for it, for the serve
tests and bench/serve_bench.py (the standard library only).

    with ServeProcess(["--workers", "2"]) as s:
        status, headers, body = s.post_image(png_bytes, {"type": "mask"})
"""
import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

LISTENING_RE = re.compile(r"listening on http://(\S+?):(\d+)/")
START_TIMEOUT_S = 120


class ServeProcess:
    """`u2net serve --port 0 ARGS`, started and waited for (its models
    loaded, its workers warm). stderr is read by a thread into .log, so a
    busy server never blocks on a full pipe."""

    def __init__(self, args, program=None, wrapper=(), env=None, start_timeout=START_TIMEOUT_S):
        if program is None:
            import testlib
            program = testlib.U2NET
        self.cmd = list(wrapper) + [program, "serve", "--port", "0"] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        self.lines = []
        self.port = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(start_timeout) or self.port is None:
            self.kill()
            raise AssertionError("u2net serve did not start: %s\n%s" % (" ".join(self.cmd), self.log))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            m = LISTENING_RE.search(line)
            if m and self.port is None:
                self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def log(self):
        return "".join(self.lines)

    def connection(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers as a lower-case dict, body bytes) of one request
        on its own connection."""
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post_image(self, data, fields=None, query=None, filename="image.png", raw=False, **kw):
        """POST /api/remove with the image as the multipart field `file` (and
        fields as form fields) or, raw, as the body itself."""
        path = "/api/remove" + ("?" + encode_query(query) if query else "")
        if raw:
            return self.request("POST", path, body=data,
                                headers={"Content-Type": "application/octet-stream"}, **kw)
        body, ctype = multipart(data, fields or {}, filename)
        return self.request("POST", path, body=body, headers={"Content-Type": ctype}, **kw)

    def metrics(self):
        """/metrics as {name or name{labels}: float}."""
        status, _, body = self.get("/metrics")
        assert status == 200, status
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=120):
        """Sends sig and waits; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._reader.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def encode_query(query):
    from urllib.parse import urlencode
    return urlencode(query)


def multipart(data, fields, filename="image.png", file_field="file"):
    """A multipart/form-data body: fields, then the file; (body, Content-Type)."""
    boundary = "u2net" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                      % (boundary, k, v)).encode())
    parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                  'Content-Type: application/octet-stream\r\n\r\n' % (boundary, file_field, filename)).encode())
    parts.append(data)
    parts.append(("\r\n--%s--\r\n" % boundary).encode())
    return b"".join(parts), "multipart/form-data; boundary=%s" % boundary


def raw_exchange(port, data, read_timeout=30, pause_after_send=0.0):
    """Sends bytes on a new connection and returns what comes back until the
    server closes it or read_timeout passes (b"" when nothing came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(data)
        if pause_after_send:
            time.sleep(pause_after_send)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def status_of(response_bytes):
    """The status code of a raw HTTP response, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response_bytes)
    return int(m.group(1)) if m else None


def process_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    """The q-th percentile (0..100), linear between the sorted values."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def load(port, payloads, clients, duration_s=None, requests=None, path="/api/remove",
         content_type="application/octet-stream"):
    """clients threads, each on one keep-alive connection, POSTing payloads
    in turn until duration_s passes or requests are sent in all. Returns
    (statuses, latencies in seconds, wall seconds)."""
    lock = threading.Lock()
    statuses, latencies = [], []
    sent = [0]
    t_end = time.time() + duration_s if duration_s else None

    def next_index():
        with lock:
            if requests is not None and sent[0] >= requests:
                return None
            if t_end is not None and time.time() >= t_end:
                return None
            sent[0] += 1
            return sent[0]

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            i = next_index()
            if i is None:
                break
            body = payloads[(i + k) % len(payloads)]
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": content_type})
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            except (OSError, http.client.HTTPException) as e:
                status = "error: %s" % e
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            dt = time.perf_counter() - t0
            with lock:
                statuses.append(status)
                latencies.append(dt)
        conn.close()

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, latencies, time.time() - t0


def environment_without_proxy():
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            del env[k]
    return env
