"""Hostile files against the documented limits (README.md, Limits): image
headers that claim enormous sizes, PNG chunks and zlib streams that claim
more data than they hold, model files that claim huge tensors or are larger
than any model. Each must fail with one clear line naming the file, within a
second, in a process whose address space is capped at 512 MiB, far below what
the files claim: an attempt to allocate that would fail and say "out of
memory" instead of the expected message.

Also checks that the patched stb_image (engine/stb/stb_image.h, patch 6)
still decodes interlaced PNGs exactly as plain ones.
"""
import os
import resource
import struct
import subprocess
import time
import zlib

import numpy as np

import testlib

ADDRESS_SPACE = 512 << 20  # RLIMIT_AS of the program under test (it needs about 256 MiB)
TIME_LIMIT = 1.0           # seconds, start to exit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _limit_address_space():
    # AddressSanitizer reserves terabytes of address space up front
    if not testlib.SANITIZE:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_limited(args):
    """Runs the program with its address space capped; returns (status,
    stderr text, seconds)."""
    # one thread each: OpenMP sizes its per-thread stacks by the number of
    # cores, which has nothing to do with the input
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, preexec_fn=_limit_address_space, env=env, timeout=60)
    return p.returncode, p.stderr.decode("utf-8", "replace"), time.monotonic() - t0


def expect_refused(label, args, path, want):
    """Runs args; returns problems unless it fails fast with one line
    'u2net: PATH: ...' containing want."""
    status, err, seconds = run_limited(args)
    lines = err.strip("\n").splitlines()
    print("    %-34s %.2f s: %s" % (label, seconds, lines[0] if lines else ""))
    problems = []
    if status != 1:
        problems.append("exit status %d" % status)
    if not lines or not lines[0].startswith("u2net: %s: " % path) or want not in lines[0]:
        problems.append("first line %r does not name %s with %r" % (lines[:1], path, want))
    if any(ln.startswith("u2net: ") for ln in lines[1:]):
        problems.append("more than one error line: %r" % err)
    if seconds > TIME_LIMIT and not testlib.SANITIZE:
        problems.append("took %.2f s" % seconds)
    return ["%s: %s" % (label, p) for p in problems]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width, height, depth=8, colour=2, interlace=0):
    return PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour,
                                                          0, 0, interlace))


def zeros_inflating_to(n_mib):
    """A zlib stream of n_mib MiB of zeros (about 1 KB per MiB), built from
    one full-flushed block repeated, with a correct Adler-32."""
    mib = b"\0" * (1 << 20)
    z = zlib.compressobj(9)
    first = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)
    again = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(n_mib):
        adler = zlib.adler32(mib, adler)
    # an empty final block with fixed codes, then the checksum
    return first + again * (n_mib - 1) + b"\x03\x00" + struct.pack(">I", adler)


def hostile_images(d):
    """(label, path, what the message must contain) of image files that claim
    far more than they hold."""
    cases = []

    def add(label, name, data, want):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        cases.append((label, path, want))

    over = "over the limit of 100000000"
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    add("PNG 100000x100000", "huge.png",
        png_header(100000, 100000) + idat + png_chunk(b"IEND", b""), "100000x100000 = 10000000000 pixels, " + over)
    add("PNG 2^31-1 x 2^31-1", "huger.png",
        png_header(0x7FFFFFFF, 0x7FFFFFFF) + idat + png_chunk(b"IEND", b""), over)
    add("PNG 16-bit RGBA 20000x20000", "deep.png",
        png_header(20000, 20000, 16, 6) + idat + png_chunk(b"IEND", b""), over)
    # SOF0 of a 65500x65500 3-component baseline JPEG, nothing after it
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 65500, 65500, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    add("JPEG 65500x65500", "huge.jpg", b"\xff\xd8" + sof + b"\xff\xd9", over)
    add("GIF 65535x65535", "huge.gif",
        b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0) + b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
        + b"\x02\x02\x44\x01\x00;", over)
    add("BMP 100000x100000", "huge.bmp",
        b"BM" + struct.pack("<IHHI", 1 << 30, 0, 0, 54) +
        struct.pack("<IiiHHIIiiII", 40, 100000, 100000, 1, 24, 0, 0, 2835, 2835, 0, 0), over)
    add("PPM 100000x100000", "huge.ppm", b"P6\n100000 100000\n255\n" + b"\0" * 64, over)
    add("PPM width past 2^31", "overflow.ppm", b"P6\n99999999999 2\n255\n" + b"\0" * 64, "header is corrupt")
    # a small PNG whose IDAT chunk says 2 GB follow
    add("PNG IDAT claiming 2 GB", "idat.png",
        png_header(8, 8, 8, 0) + struct.pack(">I", 0x7FFFFFF0) + b"IDAT" + b"\0" * 64, "outofdata")
    # 1000x1000 gray (1 MB of pixels) whose 1 MB of zlib data inflates to 1 GiB
    add("PNG zlib bomb, 1 MB -> 1 GiB", "bomb.png",
        png_header(1000, 1000, 8, 0) + png_chunk(b"IDAT", zeros_inflating_to(1024)) + png_chunk(b"IEND", b""),
        "cannot decode image (output buffer limit)")
    return cases


def test_hostile_image_headers():
    """Headers claiming 10^10 pixels, chunks claiming 2 GB, a zlib bomb: each
    refused in under a second without allocating what it claims."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("hostile_images")
    model = testlib.random_u2netp("hostile_u2netp_random", 21)
    problems = []
    for label, path, want in hostile_images(d):
        out = os.path.join(d, "out.png")
        problems += expect_refused(label, [testlib.U2NET, "-m", model, "--size", "32", "--threads", "1",
                                           path, "-o", out, "-q"], path, want)
        if os.path.exists(out):
            problems.append("%s: output written" % label)
    assert not problems, "\n".join(problems)


def _hostile_models(d, valid):
    """(label, path, what the message must contain) of model files."""
    import u2net_format as F
    cases = []

    def add(label, data, want):
        path = os.path.join(d, "m%02d.u2nc" % len(cases))
        with open(path, "wb") as f:
            f.write(data)
        cases.append((label, path, want))

    tt = struct.unpack_from("<Q", valid, 48)[0]
    # stage1 with 8192 middle channels: its rebnconv1 is then [8192, 64, 3, 3]
    # (18.9 MB); the tensor table agrees, the file holds none of it
    b = bytearray(valid)
    lt = F.LAYER_TABLE_OFFSET  # U2NetP has no prelude: stage1 is the first layer
    struct.pack_into("<I", b, lt + 12, 8192)
    entry = tt + 2 * F.TENSOR_BYTES
    struct.pack_into("<I4I", b, entry + 60, 4, 8192, 64, 3, 3)
    struct.pack_into("<Q", b, entry + 88, 8192 * 64 * 9 * 4)
    add("tensor claiming 8192 channels", F.fix_crcs(b), "does not fit")
    # every stage at the 8192-channel cap: a 150 GB model, by its tables
    b = bytearray(valid)
    n_layers = struct.unpack_from("<I", b, 16)[0]
    stages = [i for i in range(n_layers)
              if struct.unpack_from("<I", b, lt + 32 * i)[0] in (F.RSU_L, F.RSU_F)]
    for s in stages:
        struct.pack_into("<III", b, lt + 32 * s + 8, 8192 if s else 3, 8192, 8192)
    add("every stage 8192 channels", F.fix_crcs(b), "input channels")
    b = bytearray(valid)
    struct.pack_into("<I", b, 20, 0xFFFFFFFF)
    add("tensor_count 2^32-1", F.fix_crcs(b), "outside the file")
    b = bytearray(valid)
    struct.pack_into("<Q", b, tt + 88, 1 << 62)
    add("tensor nbytes 2^62", F.fix_crcs(b), "does not fit")
    return cases


def test_hostile_model_files():
    """Models whose tables claim huge tensors, and a 5 GB file: refused in
    under a second, nothing of the claimed size allocated."""
    testlib.need_engine()
    d = testlib.workdir("hostile_models")
    with open(testlib.random_u2netp("hostile_u2netp_random", 21), "rb") as f:
        valid = f.read()
    cases = _hostile_models(d, valid)
    big = os.path.join(d, "five_gb.u2nc")
    try:
        with open(big, "wb") as f:
            f.write(valid[:128])
            f.truncate(5 << 30)  # sparse: no disk space used
        cases.append(("5 GB file", big, "larger than any model"))
    except OSError as e:
        print("    (no sparse 5 GB file here: %s)" % e)
    img = os.path.join(d, "in.png")
    from PIL import Image
    Image.new("RGB", (20, 16), (90, 140, 30)).save(img)
    problems = []
    try:
        for label, path, want in cases:
            problems += expect_refused(label, [testlib.U2NET, "-m", path, "--size", "32", "--threads", "1",
                                               img, "-o", os.path.join(d, "out.png"), "-q"], path, want)
    finally:
        if os.path.exists(big):
            os.unlink(big)
    assert not os.path.exists(os.path.join(d, "out.png"))
    assert not problems, "\n".join(problems)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_file(pixels, interlace):
    """PNG bytes of an HxWxC uint8 or uint16 array, filter 0, optionally
    Adam7-interlaced (which PIL cannot write)."""
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    samples = pixels.astype(">u2") if depth == 16 else pixels

    def scanlines(a):
        return b"".join(b"\0" + row.tobytes() for row in a)
    if interlace:
        raw = b"".join(scanlines(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in ADAM7
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = scanlines(samples)
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (png_header(w, h, depth, colour, 1 if interlace else 0) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def test_interlaced_png_decodes_as_plain():
    """Adam7 PNGs of awkward sizes (1x1 up, every channel count, 8 and 16
    bit) give the same outputs as the same pixels not interlaced."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("interlaced")
    model = testlib.random_u2netp("hostile_u2netp_random", 21)
    src = os.path.join(d, "in")
    os.makedirs(src)
    rng = np.random.default_rng(7)
    stems = []
    for (w, h) in [(1, 1), (2, 3), (5, 1), (1, 9), (9, 17), (33, 20), (64, 64)]:
        for c in (1, 2, 3, 4):
            for dtype in (np.uint8, np.uint16):
                a = rng.integers(0, np.iinfo(dtype).max, (h, w, c), dtype=dtype, endpoint=True)
                stem = "%dx%d_c%d_%d" % (w, h, c, 16 if dtype == np.uint16 else 8)
                for interlace in (0, 1):
                    with open(os.path.join(src, "%s_%s.png" % (stem, "adam7" if interlace else "plain")), "wb") as f:
                        f.write(png_file(a, interlace))
                stems.append(stem)
    out = os.path.join(d, "out")
    testlib.run([testlib.U2NET, "-m", model, "--size", "32", "--threads", "1", src, "-o", out,
                 "-t", "rgba,prob", "-q"])
    differ = []
    for stem in stems:
        for t in ("rgba", "prob"):
            with open(os.path.join(out, "%s_plain_%s.png" % (stem, t)), "rb") as f:
                plain = f.read()
            with open(os.path.join(out, "%s_adam7_%s.png" % (stem, t)), "rb") as f:
                adam7 = f.read()
            if plain != adam7:
                differ.append("%s %s" % (stem, t))
    print("    %d images, each plain and interlaced" % len(stems))
    assert not differ, "interlaced PNGs decode differently: %s" % ", ".join(differ)
