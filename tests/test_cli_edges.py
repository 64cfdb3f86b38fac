"""The rough edges a tester found in the image command: outputs written
into the input folder are not taken as inputs by the next run (and
--skip-existing resumes it), two runs racing on one output folder with
--skip-existing both succeed, names with control characters stay on one
error line, a device or a stream that is no image is refused after its
first bytes, and an animated GIF says that only its first frame was used."""
import os
import subprocess
import time

import numpy as np

import testlib

FAST = ["--size", "32", "--threads", "1"]


def _png(path, seed=0, size=(40, 30)):
    from PIL import Image
    a = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8")
    Image.fromarray(a).save(path)


def _u2net(args, stdin=None):
    return testlib.run([testlib.U2NET] + args, check=False, stdin=stdin)


@testlib.tidy
def test_outputs_in_the_input_folder():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("edges_own")
    for i in range(3):
        _png(os.path.join(d, "p%d.png" % i), i)
    first = _u2net([d, "-o", d + "/", "-t", "mask,rgba"] + FAST)
    assert first.returncode == 0, first.stderr_text
    made = sorted(os.listdir(d))
    assert made == sorted(["p%d%s.png" % (i, s) for i in range(3) for s in ("", "_mask", "_rgba")]), made
    again = _u2net([d, "-o", d + "/", "-t", "mask,rgba", "--skip-existing"] + FAST)
    print("    second run: %s" % again.stderr_text.strip().replace("\n", " | "))
    assert again.returncode == 0, again.stderr_text
    assert "done 0, failed 0, skipped 3" in again.stderr_text, again.stderr_text
    notes = [ln for ln in again.stderr_text.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "6 files in the output folder" in notes[0], again.stderr_text
    assert sorted(os.listdir(d)) == made, "the second run wrote %s" % (set(os.listdir(d)) - set(made))
    # a folder of photos whose names only look like outputs, written elsewhere, is read as usual
    other = testlib.scratch_dir("edges_own_elsewhere")
    p = _u2net([d, "-o", other + "/", "-t", "mask"] + FAST)
    assert p.returncode == 0 and len(os.listdir(other)) == 9, p.stderr_text


@testlib.tidy
def test_racing_runs_with_skip_existing():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("edges_race")
    src, out = os.path.join(d, "in"), os.path.join(d, "out")
    os.makedirs(src)
    for i in range(12):
        _png(os.path.join(src, "p%02d.png" % i), i)
    for attempt in range(3):
        for f in os.listdir(out) if os.path.isdir(out) else []:
            os.remove(os.path.join(out, f))
        args = [testlib.U2NET, src, "-o", out + "/", "-t", "mask", "--skip-existing"] + FAST
        procs = [subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
        errs = [p.communicate(timeout=300)[1].decode() for p in procs]
        summaries = [e.strip().splitlines()[-1] for e in errs]
        print("    attempt %d: %s" % (attempt + 1, " / ".join(summaries)))
        for p, e in zip(procs, errs):
            assert p.returncode == 0, "a racing run failed:\n%s" % e
            assert "exists" not in e, e
        assert sorted(os.listdir(out)) == ["p%02d_mask.png" % i for i in range(12)]
        done = sum(int(s.split("done ")[1].split(",")[0]) for s in summaries)
        skipped = sum(int(s.split("skipped ")[1]) for s in summaries)
        assert done + skipped == 24 and done >= 12, summaries


@testlib.tidy
def test_control_characters_in_names():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("edges_names")
    bad = os.path.join(d, "two\nlines\t\x1b[31m.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not a real PNG")
    p = _u2net([bad, "-o", os.path.join(d, "out.png")] + FAST)
    lines = p.stderr_text.splitlines()
    print("    %s" % lines[0])
    assert p.returncode == 1
    assert lines[0].startswith("u2net: %s" % os.path.join(d, "two\\nlines\\t\\x1b[31m.png")), lines
    assert len([ln for ln in lines if ln.startswith("u2net: ")]) == 1 and len(lines) == 2, lines


def _refusal(args, feed=0):
    """Runs the program, writing up to `feed` random bytes to its standard
    input; returns (status, stderr, seconds, bytes it took before it closed
    its input)."""
    t0 = time.monotonic()
    p = subprocess.Popen([testlib.U2NET] + args, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    fed = 0
    if feed:
        chunk = np.random.default_rng(1).bytes(1 << 16)
        try:
            while fed < feed:
                p.stdin.write(chunk)
                p.stdin.flush()
                fed += len(chunk)
        except BrokenPipeError:
            pass
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
    err = p.stderr.read().decode("utf-8", "replace")
    p.wait(timeout=60)
    return p.returncode, err, time.monotonic() - t0, fed


@testlib.tidy
def test_no_image_refused_at_its_first_bytes():
    testlib.need_engine_and_pil()
    d = testlib.scratch_dir("edges_sniff")
    big = os.path.join(d, "big.png")
    with open(big, "wb") as f:
        f.write(np.random.default_rng(2).bytes(64 << 20))
    cases = [("/dev/urandom", ["/dev/urandom"], 0), ("/dev/zero", ["/dev/zero"], 0),
             ("a 64 MB random file", [big], 0), ("512 MB of random bytes on standard input", ["-"], 512 << 20)]
    problems = []
    for label, inputs, feed in cases:
        status, err, seconds, fed = _refusal(inputs + ["-o", os.path.join(d, "z.png")], feed=feed)
        first = (err.splitlines() or [""])[0]
        print("    %-42s exit %d in %.2f s%s: %s" % (label, status, seconds,
                                                    ", %d KB written to it" % (fed >> 10) if feed else "", first))
        if status != 1 or "not an image in a format this program reads" not in first:
            problems.append("%s: exit %d: %r" % (label, status, err))
        if seconds > 5 or fed > (16 << 20):
            problems.append("%s: read too much (%.1f s, %d MB taken)" % (label, seconds, fed >> 20))
    assert not problems, "\n".join(problems)
    assert not os.path.exists(os.path.join(d, "z.png"))


@testlib.tidy
def test_animated_gif_note():
    testlib.need_engine_and_pil()
    from PIL import Image
    d = testlib.scratch_dir("edges_gif")
    frames = [Image.fromarray(np.full((30, 40, 3), 60 * i, dtype="uint8")) for i in range(3)]
    anim, still = os.path.join(d, "anim.gif"), os.path.join(d, "still.gif")
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[1].save(still)
    p = _u2net([anim, "-o", os.path.join(d, "a.png")] + FAST)
    assert p.returncode == 0, p.stderr_text
    assert "note: %s: an animation of 3 frames; only the first is used" % anim in p.stderr_text, p.stderr_text
    p = _u2net([still, "-o", os.path.join(d, "s.png")] + FAST)
    assert p.returncode == 0 and "note" not in p.stderr_text, p.stderr_text
    p = _u2net([anim, "-o", os.path.join(d, "q.png"), "-q"] + FAST)
    assert p.returncode == 0 and p.stderr_text == "", p.stderr_text
    print("    %s" % "an animation of 3 frames: noted; one frame and -q: silent")
