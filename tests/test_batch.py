"""Long batch runs of the program (README.md: outputs, Limits): a thousand
images with corrupt, empty, hostile and unreadable ones mixed in; runs
killed midway (SIGKILL) or interrupted (SIGINT) and resumed with
--skip-existing; a full disk and folders that cannot be written.

The rules checked: every good image gets its outputs, every bad one is
reported on its own line by name, nothing else in the tree changes, the
exit status says whether all went well, and no output is ever seen partial
under its final name.

Everything is generated: tiny images and a U2NetP of random weights run at
--size 32 (a few ms an image).
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import time

import numpy as np

import testlib

FAST = ["--size", "32", "--threads", "1"]
SUMMARY = "done %d, failed %d, skipped %d"


def _model():
    return testlib.random_u2netp("batch_u2netp_random", 33)


def _command(args):
    return [testlib.U2NET, "-m", _model()] + FAST + list(args)


def _write_images(folder, count, seed, prefix="img", size=(8, 24)):
    """count small random images, PNG and JPEG alternating; returns
    {stem: (width, height)}."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {}
    for i in range(count):
        w, h = (int(v) for v in rng.integers(size[0], size[1], 2))
        stem = "%s%04d" % (prefix, i)
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(a).save(os.path.join(folder, stem + (".png" if i % 2 else ".jpg")))
        sizes[stem] = (w, h)
    return sizes


def _snapshot(root, leave_out=None):
    """{relative path: (kind, size, mtime_ns)} of everything below root (links
    not followed), less the folder leave_out."""
    snap = {}
    for d, dirs, names in os.walk(root):
        if leave_out is not None:
            dirs[:] = [x for x in dirs if os.path.join(d, x) != leave_out]
        for n in dirs + names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            snap[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    snap["."] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return snap


def _check_png(path, size):
    """The file is a whole PNG of the given size."""
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size == size, "%s: %s %s" % (path, im.format, im.size)


def _bad_files(folder):
    """Writes the bad inputs; returns their paths."""
    import test_hostile as H
    from PIL import Image
    bad = []

    def put(name, data):
        p = os.path.join(folder, name)
        with open(p, "wb") as f:
            f.write(data)
        bad.append(p)
    rng = np.random.default_rng(5)
    for i in range(4):
        whole = os.path.join(folder, "whole.tmp")
        a = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(a).save(whole, format="JPEG" if i % 2 else "PNG")
        with open(whole, "rb") as f:
            data = f.read()
        os.unlink(whole)
        put("img%04d_truncated.%s" % (100 + 200 * i, "jpg" if i % 2 else "png"), data[:len(data) // 2])
    for i in range(3):
        put("img%04d_empty.png" % (150 + 300 * i), b"")
    put("img0250_noise.png", rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    put("img0650_text.jpg", b"not an image, whatever the name says\n")
    idat = H.png_chunk(b"IDAT", b"x\x9c\x03\x00\x00\x00\x00\x01")
    put("img0350_huge_header.png", H.png_header(100000, 100000) + idat + H.png_chunk(b"IEND", b""))
    put("img0850_huge_header.png", H.png_header(65535, 65535, 16, 6) + idat + H.png_chunk(b"IEND", b""))
    put("img0450_bomb.png", H.png_header(500, 500, 8, 0) + H.png_chunk(b"IDAT", H.zeros_inflating_to(256))
        + H.png_chunk(b"IEND", b""))
    regressions = os.path.join(testlib.ROOT, "tests", "fuzz", "regressions")
    for i, name in enumerate(sorted(os.listdir(regressions))):
        with open(os.path.join(regressions, name), "rb") as f:
            put("img%04d_fuzz_%s" % (520 + 40 * i, name), f.read())
    # unreadable, even by root: a link to nothing, a link to itself
    gone = os.path.join(folder, "img0700_gone.png")
    os.symlink("no-such-file.png", gone)
    loop = os.path.join(folder, "img0750_loop.png")
    os.symlink(os.path.basename(loop), loop)
    bad += [gone, loop]
    if os.geteuid() != 0:  # root reads any file whatever its mode
        secret = os.path.join(folder, "img0950_unreadable.png")
        Image.new("RGB", (9, 9)).save(secret)
        os.chmod(secret, 0)
        bad.append(secret)
    return bad


@testlib.tidy
def test_thousand_images_with_bad_ones():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("batch_1000")
    src = os.path.join(d, "in")
    good = _write_images(src, 1000, seed=1)
    bad = _bad_files(src)
    with open(os.path.join(src, "notes.txt"), "w") as f:
        f.write("not an image name: not an input\n")
    _write_images(os.path.join(src, "sub"), 2, seed=2)   # not walked without -r
    out = os.path.join(d, "out")
    before = _snapshot(d)
    t0 = time.monotonic()
    p = testlib.run(_command([src, "-o", out, "-t", "mask,bbox"]), check=False)
    seconds = time.monotonic() - t0
    err = p.stderr_text.strip().splitlines()
    print("    %d good + %d bad inputs: %.1f s, exit %d, %s" % (len(good), len(bad), seconds,
                                                               p.returncode, err[-1] if err else ""))
    after = _snapshot(d, leave_out=out)
    if os.geteuid() != 0:
        os.chmod(os.path.join(src, "img0950_unreadable.png"), 0o644)
    assert p.returncode == 1, "exit status %d" % p.returncode
    assert err[-1] == SUMMARY % (len(good), len(bad), 0), err[-1]
    problems = err[:-1]
    assert len(problems) == len(bad), "%d error lines for %d bad inputs:\n%s" % (
        len(problems), len(bad), "\n".join(problems))
    for path in bad:
        mine = [ln for ln in problems if ln.startswith("u2net: %s: " % path)]
        assert len(mine) == 1, "%s: reported %d times" % (path, len(mine))
    # the folder holding the new output folder is the only change
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == ["."], "changed outside the output folder: %s" % changed[:20]
    want = sorted(["%s_mask.png" % s for s in good] + ["%s_bbox.json" % s for s in good])
    got = sorted(os.listdir(out))
    assert got == want, "outputs differ: extra %s, missing %s" % (
        sorted(set(got) - set(want))[:10], sorted(set(want) - set(got))[:10])
    for stem, size in good.items():
        _check_png(os.path.join(out, stem + "_mask.png"), size)
        with open(os.path.join(out, stem + "_bbox.json")) as f:
            box = json.load(f)
        assert (box["width"], box["height"]) == size, "%s: %s" % (stem, box)


def _stop_midway(cmd, out, sig, at_least):
    """Starts cmd, sends sig once at_least outputs exist; returns (status,
    stderr, seconds from the signal to the exit)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline:
        if os.path.isdir(out) and len(os.listdir(out)) >= at_least:
            break
        time.sleep(0.005)
    assert p.poll() is None, "the run ended before it could be stopped: %s" % p.stderr.read()
    t0 = time.monotonic()
    p.send_signal(sig)
    err = p.communicate(timeout=60)[1].decode("utf-8", "replace")
    return p.returncode, err, time.monotonic() - t0


def _outputs(out):
    """{name: (size, mtime_ns)} of the outputs under their final names, and
    the names of temporary files."""
    final, temp = {}, []
    for n in os.listdir(out):
        if n.startswith(".u2net-"):
            temp.append(n)
        else:
            st = os.stat(os.path.join(out, n))
            final[n] = (st.st_size, st.st_mtime_ns)
    return final, temp


def _stop_and_resume(sig):
    d = testlib.scratch_dir("batch_stop")
    src = os.path.join(d, "in")
    sizes = _write_images(src, 400, seed=3, size=(16, 48))
    out = os.path.join(d, "out")
    cmd = _command([src, "-o", out, "-t", "mask,rgba"])
    status, err, seconds = _stop_midway(cmd, out, sig, 60)
    final, temp = _outputs(out)
    name = signal.Signals(sig).name
    print("    %s after %d outputs: exit %d %.2f s after the signal; %s" % (
        name, len(final), status, seconds, err.strip().replace("\n", " | ")))
    if sig == signal.SIGKILL:
        assert status == -signal.SIGKILL, "exit %d" % status
        # only the one file being written, under its hidden temporary name
        assert len(temp) <= 1, temp
    else:
        assert status == 128 + sig, "exit %d: %s" % (status, err)
        assert seconds < 2.0, "took %.2f s to stop" % seconds
        assert not temp, "temporary files left: %s" % temp
        lines = err.strip().splitlines()
        assert lines[0].startswith("u2net: interrupted by %s: " % name), err
        assert lines[-1].startswith("done "), err
        done = int(lines[-1].split()[1].rstrip(","))
        assert done * 2 == len(final), "done %d but %d outputs" % (done, len(final))
    assert 0 < len(final) < 800, "%d outputs" % len(final)
    for n in final:
        stem = n.rsplit("_", 1)[0]
        _check_png(os.path.join(out, n), sizes[stem])
    complete = sum(1 for s in sizes if "%s_mask.png" % s in final and "%s_rgba.png" % s in final)
    p = testlib.run(cmd + ["--skip-existing"], check=False)
    lines = p.stderr_text.strip().splitlines()
    print("    resumed: exit %d, %s" % (p.returncode, lines[-1] if lines else ""))
    assert p.returncode == 0, p.stderr_text
    assert lines == [SUMMARY % (400 - complete, 0, complete)], lines
    resumed, temp_after = _outputs(out)
    assert sorted(temp_after) == sorted(temp), temp_after
    assert len(resumed) == 800, len(resumed)
    touched = [n for n in final if resumed[n] != final[n]]
    assert not touched, "finished outputs rewritten: %s" % touched[:10]
    for n in resumed:
        _check_png(os.path.join(out, n), sizes[n.rsplit("_", 1)[0]])


@testlib.tidy
def test_killed_run_resumes():
    """SIGKILL midway: every output under its final name is whole; at most a
    hidden temporary file remains; --skip-existing finishes the rest without
    touching what was done."""
    testlib.need_engine_and_pil()
    _stop_and_resume(signal.SIGKILL)


@testlib.tidy
def test_interrupted_run_resumes():
    """SIGINT midway: the run stops within a step, removes nothing it
    finished, leaves no temporary file, says how many inputs it did not do,
    exits 130; --skip-existing finishes the rest."""
    testlib.need_engine_and_pil()
    _stop_and_resume(signal.SIGINT)


def _file_size_limit(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        # a write past the limit then fails with EFBIG instead of killing
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return apply


@testlib.tidy
def test_disk_full():
    """Writes that fail for space (a file size limit; /dev/full) are reported
    per output and the batch goes on."""
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("batch_full")
    src = os.path.join(d, "in")
    small = _write_images(src, 6, seed=4, prefix="small", size=(4, 6))
    big = _write_images(src, 4, seed=5, prefix="big", size=(60, 70))
    out = os.path.join(d, "out")
    # random pixels do not compress: the big cutouts are over 10 KB, the
    # small ones well under 4 KB
    p = subprocess.run(_command([src, "-o", out, "-t", "rgba"]), capture_output=True,
                       preexec_fn=_file_size_limit(4096))
    err = p.stderr.decode().strip().splitlines()
    print("    file size limit 4096: exit %d, %s" % (p.returncode, " | ".join(err)))
    assert p.returncode == 1
    assert err[-1] == SUMMARY % (len(small), len(big), 0), err
    for stem in big:
        path = os.path.join(out, stem + "_rgba.png")
        assert "u2net: %s: cannot write: File too large" % path in err, (stem, err)
        assert not os.path.exists(path)
    for stem, size in small.items():
        _check_png(os.path.join(out, stem + "_rgba.png"), size)
    assert not [n for n in os.listdir(out) if n.startswith(".u2net-")], os.listdir(out)
    if os.path.exists("/dev/full"):
        one = os.path.join(src, "small0000.jpg")
        with open("/dev/full", "wb") as full:
            p = subprocess.run(_command([one, "-o", "-", "-t", "mask"]), stdout=full, stderr=subprocess.PIPE)
        err = p.stderr.decode().strip()
        print("    -o - to /dev/full: exit %d, %s" % (p.returncode, err.replace("\n", " | ")))
        assert p.returncode == 1
        assert "u2net: -: cannot write to standard output: No space left on device" in err, err


@testlib.tidy
def test_unwritable_output_folders():
    """A sub-folder of the output that is a file (ENOTDIR, which root meets
    too) and, when not root, one without write permission: each output that
    cannot be written is reported and the others are written."""
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("batch_perm")
    src = os.path.join(d, "in")
    ok = _write_images(os.path.join(src, "a"), 2, seed=6, prefix="a")
    blocked = _write_images(os.path.join(src, "b"), 2, seed=7, prefix="b")
    out = os.path.join(d, "out")
    os.makedirs(out)
    with open(os.path.join(out, "b"), "w") as f:
        f.write("a file where the folder b would go\n")
    locked = {}
    if os.geteuid() != 0:
        locked = _write_images(os.path.join(src, "c"), 2, seed=8, prefix="c")
        os.makedirs(os.path.join(out, "c"))
        os.chmod(os.path.join(out, "c"), 0o555)
    try:
        p = testlib.run(_command(["-r", src, "-o", out, "-t", "mask"]), check=False)
    finally:
        if locked:
            os.chmod(os.path.join(out, "c"), 0o755)
    err = p.stderr_text.strip().splitlines()
    print("    exit %d: %s" % (p.returncode, " | ".join(err)))
    assert p.returncode == 1
    assert err[-1] == SUMMARY % (len(ok), len(blocked) + len(locked), 0), err
    for stem in blocked:
        path = os.path.join(out, "b", stem + "_mask.png")
        assert "u2net: %s: cannot create its folder %s: Not a directory" % (
            path, os.path.join(out, "b")) in err, (stem, err)
    for stem in locked:
        path = os.path.join(out, "c", stem + "_mask.png")
        assert "u2net: %s: cannot write: Permission denied" % path in err, (stem, err)
    for stem, size in ok.items():
        _check_png(os.path.join(out, "a", stem + "_mask.png"), size)
    if not locked:
        print("    (running as root: the read-only folder case needs a user)")
    shutil.rmtree(out)
