"""`u2net stream`: raw frames (rgb24, rgba, gray) and Y4M from standard
input, each frame's output as a raw frame or a numbered file, byte for byte
the image command's output for the same pixels; a stream cut short, bad
command lines, a closed standard output and signals; --temporal's flicker,
lag and cuts. The built-in U2NetP at --size 64 on small frames."""
import os
import signal
import subprocess
import threading
import time

import numpy as np

import testlib

FAST = ["--size", "64", "--threads", "1"]
STREAM_TYPES = ["prob", "mask", "rgba", "rgb", "composite", "highlight"]
PIX_FMTS = {"rgb24": ("RGB", 3), "rgba": ("RGBA", 4), "gray": ("L", 1)}


def _u2net(args, stdin=b"", timeout=120):
    return testlib.run([testlib.U2NET] + args, check=False, stdin=stdin, timeout=timeout)


def _scenes(w, h, n):
    """n different RGB frames of w x h, uint8: the sample scene at other
    seeds and positions, or noise when too small to draw."""
    import make_sample
    frames = []
    for i in range(n):
        if w >= 16 and h >= 16:
            a = np.asarray(make_sample.render(w, h, seed=7 + i))
            a = np.roll(a, i * w // 7, axis=1)
        else:
            a = (np.random.default_rng(i).random((h, w, 3)) * 255).astype(np.uint8)
        frames.append(np.ascontiguousarray(a))
    return frames


def _as_pix_fmt(rgb, pix_fmt):
    """A frame in a pixel format: rgba with an alpha ramp, so that
    transparency is carried; gray as PIL makes it."""
    from PIL import Image
    if pix_fmt == "rgb24":
        return rgb
    if pix_fmt == "gray":
        return np.asarray(Image.fromarray(rgb).convert("L"))
    h, w = rgb.shape[:2]
    alpha = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    return np.dstack([rgb, alpha])


def _one_error_line(p, code):
    lines = p.stderr_text.strip().splitlines()
    assert p.returncode == code, "exit %d, not %d: %s" % (p.returncode, code, p.stderr_text)
    assert len(lines) == 1, "not one line: %r" % p.stderr_text
    return lines[0]


def _frames_of(data, n, h, w, c):
    assert len(data) == n * h * w * c, "%d bytes, not %d frames of %dx%dx%d" % (len(data), n, w, h, c)
    return np.frombuffer(data, np.uint8).reshape(n, h, w, c)


def _channels(t):
    return {"prob": 1, "mask": 1, "rgba": 4}.get(t, 3)


@testlib.tidy
def test_frames_are_the_image_commands_outputs():
    """Every type and pixel format, frames of 96x72, 33x17 and 1x1: each raw
    frame is the image command's output of the same pixels as a PNG."""
    testlib.need_engine_and_pil()
    from PIL import Image
    d = testlib.scratch_dir("stream_frames")
    cases = [(96, 72, list(PIX_FMTS), STREAM_TYPES), (33, 17, ["rgb24"], ["mask", "rgba"]),
             (1, 1, ["rgb24", "gray"], ["prob", "composite"])]
    render = ["--background", "#3366aa", "--highlight", "blur"]
    for w, h, pix_fmts, types in cases:
        rgb = _scenes(w, h, 3)
        for pix_fmt in pix_fmts:
            mode, c = PIX_FMTS[pix_fmt]
            frames = [_as_pix_fmt(f, pix_fmt) for f in rgb]
            folder = os.path.join(d, "%dx%d-%s" % (w, h, pix_fmt))
            os.makedirs(folder)
            for i, f in enumerate(frames):
                Image.fromarray(f, mode).save(os.path.join(folder, "f%d.png" % i))
            out = folder + "-out/"
            testlib.run([testlib.U2NET, folder, "-o", out, "-t", ",".join(types), "-q"] + FAST + render)
            data = b"".join(f.tobytes() for f in frames)
            for t in types:
                p = _u2net(["stream", str(w), str(h), "--pix-fmt", pix_fmt, "-t", t, "-q"] + FAST + render,
                           stdin=data)
                assert p.returncode == 0 and not p.stderr, "%s %s: %s" % (pix_fmt, t, p.stderr_text)
                got = _frames_of(p.stdout, 3, h, w, _channels(t))
                for i in range(3):
                    want = np.asarray(Image.open(os.path.join(out, "f%d_%s.png" % (i, t))))
                    want = want.reshape(h, w, -1)
                    assert want.shape == got[i].shape and np.array_equal(got[i], want), \
                        "%dx%d %s -t %s frame %d: not the image command's (%d bytes differ)" % (
                            w, h, pix_fmt, t, i + 1, int(np.sum(got[i] != want)) if want.shape == got[i].shape else -1)
        print("    %dx%d: %s x %s, bit for bit" % (w, h, "/".join(pix_fmts), "/".join(types)))


@testlib.tidy
def test_numbered_files():
    """-o PATTERN: PNG and JPEG files, byte for byte the image command's;
    the pattern's folder made; %% and %3d; an existing file stops the
    stream unless --overwrite; the input is never written over."""
    testlib.need_engine_and_pil()
    from PIL import Image
    d = testlib.scratch_dir("stream_files")
    frames = _scenes(80, 60, 3)
    data = b"".join(f.tobytes() for f in frames)
    src = os.path.join(d, "src")
    os.makedirs(src)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(os.path.join(src, "f%d.png" % (i + 1)))
    ref = os.path.join(d, "ref") + "/"
    testlib.run([testlib.U2NET, src, "-o", ref, "-t", "mask", "-q"] + FAST)
    testlib.run([testlib.U2NET, src, "-o", ref, "-t", "composite", "--format", "jpg", "--jpeg-quality", "80",
                 "-q"] + FAST)
    pattern = os.path.join(d, "new", "sub", "m-%05d.png")
    p = _u2net(["stream", "80", "60", "-t", "mask", "-o", pattern] + FAST, stdin=data)
    assert p.returncode == 0 and "done 3 frames" in p.stderr_text, p.stderr_text
    jpeg = os.path.join(d, "j%%x-%3d.jpg")
    p = _u2net(["stream", "80", "60", "-t", "composite", "-o", jpeg, "--jpeg-quality", "80", "-q"] + FAST, stdin=data)
    assert p.returncode == 0, p.stderr_text
    for n in (1, 2, 3):
        with open(pattern % n, "rb") as a, open(os.path.join(ref, "f%d_mask.png" % n), "rb") as b:
            assert a.read() == b.read(), "frame %d's PNG is not the image command's" % n
        with open(os.path.join(d, "j%%x-%3d.jpg" % n), "rb") as a, \
                open(os.path.join(ref, "f%d_composite.jpg" % n), "rb") as b:
            assert a.read() == b.read(), "frame %d's JPEG is not the image command's" % n
    assert not os.path.exists(pattern % 4)
    before = {n: os.stat(pattern % n).st_mtime_ns for n in (1, 2, 3)}
    p = _u2net(["stream", "80", "60", "-t", "mask", "-o", pattern] + FAST, stdin=data)
    line = _one_error_line(p, 1)
    assert "m-00001.png: exists (use --overwrite)" in line, line
    assert {n: os.stat(pattern % n).st_mtime_ns for n in (1, 2, 3)} == before
    p = _u2net(["stream", "80", "60", "-t", "mask", "-o", pattern, "--overwrite", "-q"] + FAST, stdin=data)
    assert p.returncode == 0, p.stderr_text
    # standard input read from a file the pattern names: refused, kept
    victim = os.path.join(d, "in-1.png")
    with open(victim, "wb") as f:
        f.write(data)
    with open(victim, "rb") as f:
        p = subprocess.run([testlib.U2NET, "stream", "80", "60", "-o", os.path.join(d, "in-%d.png"), "--overwrite"]
                           + FAST, stdin=f, capture_output=True, timeout=60)
    p.stderr_text = p.stderr.decode()
    line = _one_error_line(p, 1)
    assert "is the stream's input" in line, line
    with open(victim, "rb") as f:
        assert f.read() == data
    leftovers = [n for _, _, names in os.walk(d) for n in names if n.startswith(".u2net-")]
    assert not leftovers, leftovers


@testlib.tidy
def test_stream_ends_mid_frame():
    """A stream cut part way through frame 3: one line naming frame 3,
    exit 1, frames 1 and 2 written whole (standard output and files);
    the end of the stream between frames is the normal end, none at all
    included."""
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("stream_short")
    w, h = 64, 48
    frames = _scenes(w, h, 3)
    whole = b"".join(f.tobytes() for f in frames)
    full = _u2net(["stream", str(w), str(h), "-t", "mask", "-q"] + FAST, stdin=whole)
    assert full.returncode == 0, full.stderr_text
    cut = whole[:2 * w * h * 3 + 1000]
    p = _u2net(["stream", str(w), str(h), "-t", "mask"] + FAST, stdin=cut)
    line = _one_error_line(p, 1)
    assert "frame 3 is cut short" in line and "1000 of its 9216 bytes" in line and "2 frames" in line, line
    assert p.stdout == full.stdout[:2 * w * h], "the two whole frames are not what a whole stream gives"
    pattern = os.path.join(d, "f%d.png")
    p = _u2net(["stream", str(w), str(h), "-t", "mask", "-o", pattern] + FAST, stdin=cut)
    _one_error_line(p, 1)
    assert sorted(os.listdir(d)) == ["f1.png", "f2.png"], os.listdir(d)
    p = _u2net(["stream", str(w), str(h), "-t", "mask"] + FAST, stdin=whole[:100])
    assert "frame 1 is cut short" in _one_error_line(p, 1) and not p.stdout
    p = _u2net(["stream", str(w), str(h), "-t", "mask"] + FAST, stdin=b"")
    assert p.returncode == 0 and not p.stdout and "done 0 frames" in p.stderr_text, p.stderr_text


def test_bad_command_lines():
    """Each bad command line: one line naming the argument, exit 2, no
    output, before any model is loaded."""
    testlib.need_engine()
    cases = [
        (["0", "48"], "WIDTH: '0' is not a frame width"),
        (["-5", "48"], "WIDTH: '-5' is not a frame width"),
        (["64", "70000"], "HEIGHT: '70000' is not a frame height"),
        (["99999999999", "1"], "WIDTH: '99999999999'"),
        (["64", "x"], "HEIGHT: 'x'"),
        (["65535", "65535"], "over --max-pixels 100000000"),
        (["64", "48", "--max-pixels", "1000"], "over --max-pixels 1000"),
        ([], "give the frame size"),
        (["64"], "give the frame size"),
        (["64", "48", "32"], "unexpected argument '32'"),
        (["64", "48", "-o", "out.png"], "no frame number in the pattern"),
        (["64", "48", "-o", "out-%s.png"], "'%s' is not a frame number"),
        (["64", "48", "-o", "out-%d-%d.png"], "more than one frame number"),
        (["64", "48", "-o", "out-%d.gif"], "unknown image extension 'gif'"),
        (["64", "48", "-o", "out-%d.jpg", "-t", "rgba"], "JPEG cannot hold alpha"),
        (["64", "48", "--pix-fmt", "yuv420p"], "--pix-fmt: unknown pixel format 'yuv420p'"),
        (["64", "48", "--pix-fmt"], "--pix-fmt: missing value"),
        (["64", "48", "-t", "bogus"], "unknown type 'bogus'"),
        (["64", "48", "-t", "crop"], "-t crop: not a frame of the stream's size"),
        (["64", "48", "-t", "bbox"], "-t bbox: not a frame"),
        (["64", "48", "-t", "mask,rgba"], "a stream writes one type"),
        (["64", "48", "-r"], "-r is not an option of u2net stream"),
        (["64", "48", "--padding", "3"], "--padding is not an option"),
        (["64", "48", "--bogus"], "unknown option '--bogus' (see u2net stream --help)"),
        (["64", "48", "--temporal-weight", "0"], "--temporal-weight: '0' is not a weight"),
        (["64", "48", "--temporal-motion", "300"], "--temporal-motion: '300' is not a level"),
        (["64", "48", "--temporal=1"], "--temporal takes no value"),
        (["64", "48", "--threads", "0"], "--threads: '0'"),
        (["--y4m", "64", "48"], "--y4m: the frame size is the stream's header's"),
        (["--y4m", "--pix-fmt", "gray"], "a Y4M stream says its own pixel format"),
    ]
    for args, want in cases:
        t0 = time.time()
        p = _u2net(["stream"] + args, stdin=b"\0" * 64, timeout=30)
        line = _one_error_line(p, 2)
        assert want in line and line.startswith("u2net: stream: "), "%s: %r lacks %r" % (args, line, want)
        assert not p.stdout and time.time() - t0 < 10, args
    help_text = _u2net(["stream", "--help"]).stdout_text
    assert "--temporal" in help_text and "--pix-fmt" in help_text and "--y4m" in help_text
    print("    %d command lines refused" % len(cases))


def test_closed_standard_output():
    """A reader that stops after one frame: the stream ends with one line
    saying so and exit 1, at once (no hang on the frames still coming)."""
    testlib.need_engine_and_pil()
    w, h = 64, 48
    frame = _scenes(w, h, 1)[0].tobytes()
    p = subprocess.Popen([testlib.U2NET, "stream", str(w), str(h), "-t", "mask"] + FAST,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = threading.Thread(target=_feed, args=(p.stdin, frame, 400))
    feeder.start()
    got = p.stdout.read(w * h)
    assert len(got) == w * h
    p.stdout.close()
    t0 = time.time()
    err = p.stderr.read().decode()
    rc = p.wait(timeout=60)
    feeder.join(timeout=60)
    lines = err.strip().splitlines()
    print("    %s (%.2f s after the close)" % (lines[-1] if lines else "", time.time() - t0))
    assert rc == 1 and len(lines) == 1 and "standard output was closed by its reader" in lines[0], (rc, err)


def _feed(pipe, frame, n):
    try:
        for _ in range(n):
            pipe.write(frame)
        pipe.close()
    except (BrokenPipeError, ValueError):
        pass


@testlib.tidy
def test_signals_stop_between_frames():
    """SIGINT while waiting for a frame, SIGTERM while one is computed: exit
    130 and 143 within 2 s, one line, whole frames only, no temporary file."""
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("stream_signals")
    w, h = 64, 48
    frame = _scenes(w, h, 1)[0].tobytes()
    p = subprocess.Popen([testlib.U2NET, "stream", str(w), str(h), "-t", "mask"] + FAST,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(frame)
    p.stdin.flush()
    assert len(p.stdout.read(w * h)) == w * h
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    waited = time.time() - t0
    err = err.decode().strip()
    print("    waiting: %s (%.3f s)" % (err, waited))
    assert p.returncode == 130 and waited < 2 and not out, (p.returncode, waited, len(out))
    assert err == "u2net: interrupted by SIGINT after 1 frame (no frame is written in part)", err
    # a large network so that the signal finds a frame being computed
    W, H = 512, 384
    big = _scenes(W, H, 1)[0].tobytes()
    pattern = os.path.join(d, "f%03d.png")
    p = subprocess.Popen([testlib.U2NET, "stream", str(W), str(H), "-t", "rgba", "--size", "1024", "-o", pattern],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = threading.Thread(target=_feed, args=(p.stdin, big, 3))
    feeder.start()
    time.sleep(0.8)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    waited = time.time() - t0
    feeder.join(timeout=30)
    err = err.decode().strip()
    print("    computing: %s (%.3f s)" % (err, waited))
    assert p.returncode == 143 and waited < 2, (p.returncode, waited, err)
    assert len(err.splitlines()) == 1 and err.startswith("u2net: interrupted by SIGTERM after "), err
    from PIL import Image
    names = sorted(os.listdir(d))
    written = int(err.split("after ")[1].split(" ")[0])
    assert names == ["f%03d.png" % (i + 1) for i in range(written)], (names, err)
    for n in names:
        assert Image.open(os.path.join(d, n)).size == (W, H)


def _noisy(frame, sigma, rng):
    return np.clip(np.rint(frame + rng.normal(0, sigma, frame.shape)), 0, 255).astype(np.uint8)


def _alphas(frames, extra):
    h, w = frames[0].shape[:2]
    p = _u2net(["stream", str(w), str(h), "-t", "rgba", "-q"] + FAST + extra,
               stdin=b"".join(f.tobytes() for f in frames))
    assert p.returncode == 0, p.stderr_text
    return _frames_of(p.stdout, len(frames), h, w, 4)


def test_temporal():
    """--temporal on a still scene with camera noise flickers less than
    half as much; follows a moving subject within a pixel; starts again at
    a cut (the frame after it is the plain one, bit for bit); its first
    frame is the plain one; --temporal-weight 1 is no smoothing at all,
    whatever post-processing follows."""
    testlib.need_engine_and_pil()
    import make_sample
    w, h = 96, 72
    rng = np.random.default_rng(5)
    scene = np.asarray(make_sample.render(w, h)).astype(np.float64)
    still = [_noisy(scene, 6, rng) for _ in range(12)]
    plain = _alphas(still, [])[..., 3].astype(np.float64)
    smooth = _alphas(still, ["--temporal"])[..., 3].astype(np.float64)
    flicker = np.abs(np.diff(plain, axis=0)).mean()
    flicker_t = np.abs(np.diff(smooth, axis=0)).mean()
    print("    still scene, noise sigma 6: flicker %.3f levels, %.3f with --temporal (%.1fx less)"
          % (flicker, flicker_t, flicker / max(flicker_t, 1e-9)))
    assert np.array_equal(plain[0], smooth[0])
    assert flicker > 0 and flicker_t < 0.5 * flicker
    # the scene moving 2 pixels a frame, then a cut to another picture
    moving = [_noisy(np.roll(scene, 2 * t, axis=1), 2, rng) for t in range(8)]
    other = np.asarray(make_sample.render_hair(w, h)).astype(np.float64)
    frames = moving + [_noisy(other, 2, rng) for _ in range(2)]
    plain = _alphas(frames, [])
    smooth = _alphas(frames, ["--temporal"])
    xs = np.arange(w)
    centre = lambda a: (a * xs).sum(axis=(1, 2)) / a.sum(axis=(1, 2))
    pa, sa = plain[:8, ..., 3].astype(np.float64), smooth[:8, ..., 3].astype(np.float64)
    lag = np.abs(centre(sa) - centre(pa))
    print("    moving 2 px a frame: alpha %.2f levels from the plain one's, centre %.3f px behind (most %.3f)"
          % (np.abs(sa - pa).mean(), lag.mean(), lag.max()))
    assert lag.max() < 1.0 and np.abs(sa - pa).mean() < 4
    assert np.array_equal(plain[8], smooth[8]), "the frame after the cut is smoothed with the old scene"
    post = ["--refine", "--morph", "open", "--largest-component", "--feather", "2"]
    assert np.array_equal(_alphas(frames, post), _alphas(frames, post + ["--temporal-weight", "1"]))


def _y4m(frames, chroma, full_range=False):
    """A Y4M stream of RGB frames (BT.601, chroma as the mean of the pixels
    it covers) and the RGB the stream's YUV stands for (chroma repeated
    over its pixels), in float."""
    h, w = frames[0].shape[:2]
    header = "YUV4MPEG2 W%d H%d F25:1 Ip A1:1 C%s%s\n" % (w, h, chroma,
                                                       " XCOLORRANGE=FULL" if full_range else "")
    body, want = [], []
    cw, ch = {"420jpeg": ((w + 1) // 2, (h + 1) // 2), "422": ((w + 1) // 2, h), "444": (w, h),
              "mono": (0, 0)}[chroma]
    for f in frames:
        rgb = f.astype(np.float64)
        yf = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        cb = (rgb[..., 2] - yf) / 1.772
        cr = (rgb[..., 0] - yf) / 1.402
        ys, cs, yo = (1.0, 1.0, 0) if full_range else (219 / 255, 224 / 255, 16)
        Y = np.clip(np.rint(yf * ys + yo), 0, 255).astype(np.uint8)
        planes = [Y]
        if cw:
            ry, rx = (2 if ch < h else 1), (2 if cw < w else 1)
            pad = np.pad(np.dstack([cb, cr]), ((0, ch * ry - h), (0, cw * rx - w), (0, 0)), mode="edge")
            sub = pad.reshape(ch, ry, cw, rx, 2).mean(axis=(1, 3))
            C = np.clip(np.rint(sub * cs + 128), 0, 255).astype(np.uint8)
            planes += [C[..., 0], C[..., 1]]
            up = np.repeat(np.repeat(C.astype(np.float64), ry, 0), rx, 1)[:h, :w]
            ucb, ucr = (up[..., 0] - 128) / cs, (up[..., 1] - 128) / cs
        else:
            ucb = ucr = np.zeros((h, w))
        ly = (Y.astype(np.float64) - yo) / ys
        want.append(np.stack([ly + 1.402 * ucr, ly - 0.344136 * ucb - 0.714136 * ucr, ly + 1.772 * ucb], -1))
        body.append(b"FRAME\n" + b"".join(np.ascontiguousarray(p).tobytes() for p in planes))
    return header.encode() + b"".join(body), [np.clip(np.floor(x + 0.5), 0, 255) for x in want]


def test_y4m_input():
    """--y4m: 4:2:0 at an odd size, 4:2:2, 4:4:4, mono and full range: the
    colours within a level of BT.601 (the rgba cutout's colour channels),
    and the alpha exactly that of the same RGB as raw frames; broken
    streams refused in one line."""
    testlib.need_engine_and_pil()
    w, h = 97, 61
    frames = _scenes(w, h, 2)
    for chroma, full in [("420jpeg", False), ("422", False), ("444", False), ("mono", False), ("420jpeg", True)]:
        data, want = _y4m(frames, chroma, full)
        p = _u2net(["stream", "--y4m", "-t", "rgba", "-q"] + FAST, stdin=data)
        assert p.returncode == 0, p.stderr_text
        got = _frames_of(p.stdout, 2, h, w, 4)
        err = max(float(np.abs(got[i, ..., :3] - want[i]).max()) for i in range(2))
        raw = _u2net(["stream", str(w), str(h), "-t", "rgba", "-q"] + FAST,
                     stdin=np.ascontiguousarray(got[..., :3]).tobytes())
        same = np.array_equal(_frames_of(raw.stdout, 2, h, w, 4)[..., 3], got[..., 3])
        print("    C%s%s: colours within %g of BT.601, alpha as raw frames: %s"
              % (chroma, " full range" if full else "", err, same))
        assert err <= 1 and same
    data, _ = _y4m(frames, "420jpeg")
    header_end = data.index(b"\n") + 1
    frame_bytes = 6 + w * h + 2 * 49 * 31
    cases = [
        (b"\0" * 5000, "not a Y4M stream: it does not start with 'YUV4MPEG2'"),
        (b"", "empty stream"),
        (b"YUV4MPEG2 W0 H10 C420jpeg\n", "width '0' is not a frame width"),
        (b"YUV4MPEG2 W64 C420jpeg\n", "no frame height"),
        (b"YUV4MPEG2 W64 H48 C420p10\n", "colour space C420p10 is not read"),
        (b"YUV4MPEG2 W64 H48 " + b"X" * 2000, "Y4M header: over 1023 bytes"),
        (b"YUV4MPEG2 W64 H48", "Y4M header: the stream ends inside it"),
        (data[:header_end] + b"FRAMX\n" + data[header_end + 6:], "frame 1: 'FRAMX' is not a Y4M frame header"),
        (data[:header_end + frame_bytes + 100], "frame 2 is cut short: the stream ends after 94 of its"),
        (data[:header_end + frame_bytes + 3], "frame 2: the stream ends inside its FRAME header"),
        (data[:header_end + frame_bytes + 6], "frame 2 is cut short: the stream ends after 0 of"),
    ]
    for stream, want in cases:
        p = _u2net(["stream", "--y4m", "-t", "mask"] + FAST, stdin=stream)
        line = _one_error_line(p, 1)
        assert want in line, "%r: %r lacks %r" % (stream[:30], line, want)
        assert len(p.stdout) == (w * h if "frame 2" in want else 0), (want, len(p.stdout))
