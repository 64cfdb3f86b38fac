"""The image command, `u2net [OPTIONS] INPUT... -o OUTPUT`: option checking,
input discovery, output naming and formats, the no-data-lost rules, batch
error handling, progress and summary, and the exit status.

Everything runs on small generated images and a U2NetP made from random
weights (tests/reference/random_weights.py), so no shared file is needed.
The network runs at --size 64 on one thread to keep the module fast.
"""
import io
import json
import os
import pty
import select
import subprocess
import time

import numpy as np

import testlib

MODELS_DIR = os.path.join(testlib.WORK, "models")
MODEL_NAME = "cli_u2netp_random"
FAST = ["--size", "64", "--threads", "1"]
USAGE = 2

_model = []


def _model_path():
    """A U2NetP with random weights, converted once per run."""
    if not _model:
        import convert
        import random_weights as RW
        os.makedirs(MODELS_DIR, exist_ok=True)
        path = os.path.join(MODELS_DIR, MODEL_NAME + ".u2nc")
        m = convert.convert_state_dict(RW.random_state_dict(RW.U2NETP_STAGES, 1234))
        convert.write_model(m, path)
        _model.append(path)
    return _model[0]


def _image(path, w=40, h=30, mode="RGB", seed=0, quality=90):
    """A random image of the given size and PIL mode, saved by extension."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    ch = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    a = rng.integers(0, 256, (h, w, ch), dtype=np.uint8)
    # a brighter block so the map has some structure
    a[h // 4:3 * h // 4, w // 4:3 * w // 4, :min(ch, 3)] //= 4
    img = Image.fromarray(a[:, :, 0] if ch == 1 else a, mode)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if path.lower().endswith((".jpg", ".jpeg")):
        img.save(path, quality=quality)
    else:
        img.save(path)
    return path


def _u2net(args, stdin=None, env=None, model=True, fast=True):
    """Runs the program; returns the CompletedProcess (never raises on status)."""
    # before the test's arguments, which may end in an option lacking its value
    cmd = [testlib.U2NET]
    if model:
        cmd += ["-m", _model_path()]
    if fast:
        cmd += FAST
    cmd += list(args)
    return testlib.run(cmd, check=False, stdin=stdin, env=env, timeout=300)


def _ok(p):
    assert p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr_text)
    return p


def _open(path):
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        return im.copy()


def _format(path):
    from PIL import Image
    with Image.open(path) as im:
        return im.format


def _files(root):
    """Every file below root, relative, sorted."""
    out = []
    for d, _dirs, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def _assert_no_temps(root):
    left = [f for f in _files(root) if os.path.basename(f).startswith(".u2net-") or ".tmp" in f]
    assert not left, "temporary files left behind: %s" % left


def test_help_and_version():
    testlib.need_engine_and_pil()
    p = _ok(_u2net(["--help"], model=False, fast=False))
    text = p.stdout_text
    for opt in ["-o, --output", "-t, --type", "--format", "--jpeg-quality", "--overwrite",
                "--skip-existing", "-r, --recursive", "-m, --model", "--size", "--resize",
                "--threads", "--device", "--threshold", "--refine", "--fg-threshold",
                "--bg-threshold", "--morph", "--morph-radius", "--largest-component",
                "--feather", "--alpha", "--background", "--padding", "--highlight",
                "--max-pixels", "-q, --quiet", "-v, --verbose", "-h, --help", "--version",
                "Examples:", "U2NET_WEIGHTS"]:
        assert opt in text, "--help does not mention %s" % opt
    for t in ["prob", "mask", "rgba", "rgb", "composite", "crop", "bbox", "highlight"]:
        assert "  %s " % t in text, "--help does not describe type %s" % t
    p = _ok(_u2net(["--version"], model=False, fast=False))
    assert p.stdout_text.startswith("u2net "), p.stdout_text
    p = _u2net([], model=False, fast=False)
    assert p.returncode == USAGE and "usage:" in p.stderr_text


def test_usage_errors():
    """Every bad command line exits 2 before any work, naming the option and
    the value."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_usage")
    a = _image(os.path.join(d, "a.png"))
    b = _image(os.path.join(d, "b.png"), seed=1)
    out = os.path.join(d, "out.png")
    cases = [
        (["--bogus", a, "-o", out], ["unknown option", "--bogus"]),
        (["-x", a, "-o", out], ["unknown option", "-x"]),
        ([a, "-o"], ["-o", "missing value"]),
        ([a, "-o", out, "--threshold"], ["--threshold", "missing value"]),
        ([a], ["no output"]),
        (["-o", out], ["no INPUT"]),
        ([a, "-o", out, "-o", out], ["-o", "twice"]),
        ([a, "-o", out, "--threshold", "1.5"], ["--threshold", "'1.5'"]),
        ([a, "-o", out, "--threshold", "0.5x"], ["--threshold", "'0.5x'"]),
        ([a, "-o", out, "--threshold", "nan"], ["--threshold", "'nan'"]),
        ([a, "-o", out, "--threshold", " 0.5"], ["--threshold", "' 0.5'"]),
        ([a, "-o", out, "--threshold", "0x1p-1"], ["--threshold", "'0x1p-1'"]),
        ([a, "-o", out, "--threads", "0"], ["--threads", "'0'"]),
        ([a, "-o", out, "--threads", "2x"], ["--threads", "'2x'"]),
        ([a, "-o", out, "--threads", ""], ["--threads", "''"]),
        ([a, "-o", out, "--jpeg-quality", "101"], ["--jpeg-quality", "'101'"]),
        ([a, "-o", out, "--fg-threshold", "256"], ["--fg-threshold", "'256'"]),
        ([a, "-o", out, "--bg-threshold", "-1"], ["--bg-threshold", "'-1'"]),
        ([a, "-o", out, "--fg-threshold", "100", "--bg-threshold", "200"],
         ["--bg-threshold 200", "--fg-threshold 100"]),
        ([a, "-o", out, "--padding", "-1"], ["--padding", "'-1'"]),
        ([a, "-o", out, "--padding", "99999999999999999999"], ["--padding", "'99999999999999999999'"]),
        ([a, "-o", out, "--max-pixels", "0"], ["--max-pixels", "'0'"]),
        ([a, "-o", out, "--feather", "-1"], ["--feather", "'-1'"]),
        ([a, "-o", out, "--feather", "inf"], ["--feather", "'inf'"]),
        ([a, "-o", out, "--morph-radius", "3"], ["--morph-radius", "--morph"]),
        ([a, "-o", out, "--morph", "erode"], ["--morph", "'erode'"]),
        ([a, "-o", out, "--morph", "open", "--morph-radius", "0"], ["--morph-radius", "'0'"]),
        ([a, "-o", out, "--resize", "cubic"], ["--resize", "'cubic'"]),
        ([a, "-o", out, "--alpha", "hard"], ["--alpha", "'hard'"]),
        ([a, "-o", out, "--highlight", "red"], ["--highlight", "'red'"]),
        ([a, "-o", out, "--format", "gif"], ["--format", "'gif'"]),
        ([a, "-o", out, "--size", "0"], ["--size", "'0'"]),
        ([a, "-o", out, "--size", "64x"], ["--size", "'64x'"]),
        ([a, "-o", out, "--size", "x64"], ["--size", "'x64'"]),
        ([a, "-o", out, "--size", "64x0"], ["--size", "'64x0'"]),
        ([a, "-o", out, "--size", "9000"], ["--size", "'9000'"]),
        ([a, "-o", out, "--size", "64*64"], ["--size", "'64*64'"]),
        ([a, "-o", out, "--size", "8192x8192"], ["--size", "'8192x8192'", "pixels"]),
        ([a, "-o", out, "--background", "#12345"], ["--background", "'#12345'"]),
        ([a, "-o", out, "--background", "#GGGGGG"], ["--background", "'#GGGGGG'"]),
        ([a, "-o", out, "--background", os.path.join(d, "nope.png")],
         ["--background", "nope.png"]),
        ([a, "-o", out, "-t", "bogus"], ["-t", "'bogus'"]),
        ([a, "-o", out, "--type", "rgba,"], ["--type", "'rgba,'"]),
        ([a, b, "-o", out], ["-o", out, "one input file", "folder"]),
        ([d, "-o", out], ["-o", out, "one input file"]),
        ([a, "-o", out, "-t", "rgba,mask"], ["-o", out, "one type"]),
        ([a, "-o", os.path.join(d, "x.jpg")], ["x.jpg", "JPEG cannot hold alpha"]),
        ([a, "-o", os.path.join(d, "x.JPEG"), "-t", "rgba"], ["x.JPEG", "JPEG cannot hold alpha"]),
        ([a, "-o", os.path.join(d, "x.webp")], ["x.webp", "unknown output extension"]),
        ([a, "-o", os.path.join(d, "noext")], ["noext", "unknown output extension"]),
        ([a, "-o", os.path.join(d, "x.png"), "-t", "bbox"], ["x.png", "JSON"]),
        ([a, "-o", os.path.join(d, "x.json"), "-t", "mask"], ["x.json", "bbox"]),
        ([a, b, "-o", "-"], ["-o -", "one input"]),
        ([a, "-o", "-", "-t", "mask,prob"], ["-o -", "one type"]),
        (["-", "-", "-o", os.path.join(d, "o/")], ["standard input", "once"]),
        ([a, "-o", out, "--device", "cuda"], ["--device cuda", "no CUDA support"]),
        ([a, "-o", out, "--device", "tpu"], ["--device", "'tpu'"]),
        ([a, "-o", out, "-q", "-v"], ["-q", "-v"]),
        ([a, "-o", out, "--overwrite", "--skip-existing"], ["--overwrite", "--skip-existing"]),
        ([a, "-o", out, "--quiet=yes"], ["--quiet", "'yes'"]),
    ]
    for args, want in cases:
        p = _u2net(args, stdin=b"", fast=False)
        assert p.returncode == USAGE, "%s: exit %d, expected 2: %s" % (args, p.returncode, p.stderr_text)
        err = p.stderr_text
        assert err.startswith("u2net: "), "%s: %r" % (args, err)
        assert err.count("\n") == 1, "%s: not one line: %r" % (args, err)
        for w in want:
            assert w in err, "%s: %r does not mention %r" % (args, err, w)
    assert not os.path.exists(out) and not os.path.exists(os.path.join(d, "o"))
    # --name=value works like --name value
    p = _ok(_u2net([a, "--output=" + out, "--type=mask", "--threshold=0.3"]))
    assert _open(out).mode == "L"


def test_missing_model():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_model")
    a = _image(os.path.join(d, "a.png"))
    empty = os.path.join(d, "empty_weights")
    os.makedirs(empty)
    env = dict(os.environ, U2NET_WEIGHTS=empty)
    p = testlib.run([testlib.U2NET, "-m", "no_such_model", a, "-o", os.path.join(d, "o.png")],
                    check=False, env=env)
    assert p.returncode == 1, p.stderr_text
    err = p.stderr_text
    assert err.count("\n") == 1, err
    for w in ["no_such_model.u2nc", empty, "make weights", "tools/convert.py"]:
        assert w in err, "%r does not mention %r" % (err, w)
    p = testlib.run([testlib.U2NET, "-m", os.path.join(d, "gone.u2nc"), a, "-o",
                     os.path.join(d, "o.png")], check=False)
    assert p.returncode == 1 and "gone.u2nc" in p.stderr_text, p.stderr_text
    assert not os.path.exists(os.path.join(d, "o.png"))


def test_model_by_name():
    """-m NAME finds NAME.u2nc in $U2NET_WEIGHTS (after empty entries)."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_model_name")
    a = _image(os.path.join(d, "a.png"))
    env = dict(os.environ, U2NET_WEIGHTS=":" + os.path.join(d, "nothing") + ":" + MODELS_DIR)
    _model_path()
    p = testlib.run([testlib.U2NET, "-m", MODEL_NAME, a, "-o", os.path.join(d, "o.png")] + FAST,
                    check=False, env=env)
    _ok(p)
    assert _open(os.path.join(d, "o.png")).mode == "RGBA"


def test_input_missing():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_missing")
    a = _image(os.path.join(d, "a.png"))
    gone = os.path.join(d, "gone.png")
    p = _u2net([a, gone, "-o", os.path.join(d, "out")])
    assert p.returncode == 1, p.stderr_text
    assert "u2net: %s: No such file or directory" % gone in p.stderr_text, p.stderr_text
    assert "done 1, failed 1, skipped 0" in p.stderr_text, p.stderr_text
    assert _files(os.path.join(d, "out")) == ["a_rgba.png"]
    # one missing input alone: failed, with the summary
    p = _u2net([gone, "-o", os.path.join(d, "x.png")])
    assert p.returncode == 1 and "done 0, failed 1, skipped 0" in p.stderr_text, p.stderr_text


def test_output_folder_not_writable():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_unwritable")
    a = _image(os.path.join(d, "a.png"))
    blocker = os.path.join(d, "file")
    with open(blocker, "w") as f:
        f.write("not a folder")
    p = _u2net([a, "-o", os.path.join(blocker, "sub") + "/"])
    assert p.returncode == 1, p.stderr_text
    assert "cannot create the output folder" in p.stderr_text and blocker in p.stderr_text
    if os.geteuid() != 0:  # root writes anywhere: the mode test needs a user
        ro = os.path.join(d, "ro")
        os.makedirs(ro)
        os.chmod(ro, 0o555)
        try:
            p = _u2net([a, "-o", ro])
            assert p.returncode == 1 and "not writable" in p.stderr_text, p.stderr_text
            assert os.listdir(ro) == []
        finally:
            os.chmod(ro, 0o755)


def test_batch_with_bad_inputs():
    """Good images are done; a corrupt JPEG, an empty file and a text file
    named .png are each reported; exit 1 with a correct summary."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_batch")
    src = os.path.join(d, "in")
    _image(os.path.join(src, "good1.png"))
    _image(os.path.join(src, "good2.JPG"), w=33, h=21, seed=2)
    jpg = open(_image(os.path.join(d, "whole.jpg"), w=80, h=60, seed=3), "rb").read()
    with open(os.path.join(src, "corrupt.jpg"), "wb") as f:
        f.write(jpg[:len(jpg) // 2])
    open(os.path.join(src, "empty.png"), "wb").close()
    with open(os.path.join(src, "text.png"), "w") as f:
        f.write("this is not an image\n")
    with open(os.path.join(src, "notes.txt"), "w") as f:
        f.write("not an image name: not an input\n")
    out = os.path.join(d, "out")
    p = _u2net([src, "-o", out, "-t", "rgba,bbox"])
    assert p.returncode == 1, p.stderr_text
    err = p.stderr_text
    for bad in ["corrupt.jpg", "empty.png", "text.png"]:
        assert "u2net: %s: " % os.path.join(src, bad) in err, "%s not reported: %s" % (bad, err)
    assert "notes.txt" not in err
    assert err.strip().splitlines()[-1] == "done 2, failed 3, skipped 0", err
    assert _files(out) == ["good1_bbox.json", "good1_rgba.png", "good2_bbox.json",
                           "good2_rgba.png"], _files(out)
    assert _open(os.path.join(out, "good2_rgba.png")).size == (33, 21)
    _assert_no_temps(d)
    # -q: errors still printed, no summary
    p = _u2net([src, "-o", os.path.join(d, "out2"), "-q"])
    assert p.returncode == 1 and "empty.png" in p.stderr_text
    assert "done " not in p.stderr_text


def test_stdin_and_stdout():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_stdio")
    a = _image(os.path.join(d, "a.png"), w=45, h=31)
    data = open(a, "rb").read()
    p = _ok(_u2net(["-", "-o", "-", "-t", "mask"], stdin=data))
    assert p.stdout[:8] == b"\x89PNG\r\n\x1a\n", p.stdout[:16]
    from PIL import Image
    im = Image.open(io.BytesIO(p.stdout))
    assert im.size == (45, 31) and im.mode == "L"
    assert p.stderr_text == "", p.stderr_text  # one input, no failure: no summary
    # bbox to standard output is JSON, named after the input
    p = _ok(_u2net([a, "-o", "-", "-t", "bbox"]))
    box = json.loads(p.stdout_text)
    assert box["width"] == 45 and box["height"] == 31 and box["image"] == a
    # --format jpg on standard output
    p = _ok(_u2net(["-", "-o", "-", "-t", "composite", "--format", "jpg"], stdin=data))
    assert p.stdout[:2] == b"\xff\xd8"
    # standard input into a folder is named stdin_TYPE
    _ok(_u2net(["-", "-o", os.path.join(d, "out") + "/", "-t", "rgba,prob"], stdin=data))
    assert _files(os.path.join(d, "out")) == ["stdin_prob.png", "stdin_rgba.png"]
    # garbage on standard input is a failed input
    p = _u2net(["-", "-o", "-", "-t", "mask"], stdin=b"garbage")
    assert p.returncode == 1 and p.stdout == b"" and "u2net: -: " in p.stderr_text


def test_overwrite_and_refusals():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_overwrite")
    a = _image(os.path.join(d, "a.png"))
    out = os.path.join(d, "cut.png")
    _ok(_u2net([a, "-o", out]))
    first = open(out, "rb").read()
    with open(out, "wb") as f:
        f.write(b"precious")
    p = _u2net([a, "-o", out])
    assert p.returncode == 1 and "%s: exists (use --overwrite)" % out in p.stderr_text, p.stderr_text
    assert open(out, "rb").read() == b"precious"
    _ok(_u2net([a, "-o", out, "--overwrite"]))
    assert open(out, "rb").read() == first
    # an output that is the input: refused even with --overwrite
    before = open(a, "rb").read()
    p = _u2net([a, "-o", a, "--overwrite", "-t", "mask"])
    assert p.returncode == 1 and "is the input" in p.stderr_text, p.stderr_text
    assert open(a, "rb").read() == before
    # the same file by another name (a symbolic link)
    link = os.path.join(d, "link.png")
    os.symlink(a, link)
    p = _u2net([a, "-o", link, "--overwrite", "-t", "mask"])
    assert p.returncode == 1 and "is the input" in p.stderr_text, p.stderr_text
    assert open(a, "rb").read() == before
    # an output that is another input of the batch, named on the command line
    f = os.path.join(d, "f")
    x = _image(os.path.join(f, "x.png"))
    xr = _image(os.path.join(f, "x_rgba.png"), seed=5)
    xr_before = open(xr, "rb").read()
    p = _u2net([x, xr, "-o", f, "--overwrite"])
    assert p.returncode == 1 and "is the input %s" % xr in p.stderr_text, p.stderr_text
    assert open(xr, "rb").read() == xr_before
    assert _files(f) == ["x.png", "x_rgba.png", "x_rgba_rgba.png"], _files(f)
    assert os.path.exists(x)
    # found in the output folder, it is taken for x's earlier output: not an
    # input, and --overwrite replaces it
    os.remove(os.path.join(f, "x_rgba_rgba.png"))
    p = _u2net([f, "-o", f, "--overwrite"])
    assert p.returncode == 0 and "not taken as input" in p.stderr_text, p.stderr_text
    assert _files(f) == ["x.png", "x_rgba.png"] and open(xr, "rb").read() != xr_before, _files(f)
    _assert_no_temps(d)


def test_skip_existing():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_skip")
    src = os.path.join(d, "in")
    _image(os.path.join(src, "a.png"))
    _image(os.path.join(src, "b.png"), seed=1)
    out = os.path.join(d, "out")
    _ok(_u2net([src, "-o", out, "-t", "rgba,mask"]))
    a_rgba = open(os.path.join(out, "a_rgba.png"), "rb").read()
    os.remove(os.path.join(out, "b_mask.png"))
    p = _ok(_u2net([src, "-o", out, "-t", "rgba,mask", "--skip-existing", "-v"]))
    assert "done 1, failed 0, skipped 1" in p.stderr_text, p.stderr_text
    assert "skipped" in p.stderr_text.splitlines()[0], p.stderr_text
    assert _files(out) == ["a_mask.png", "a_rgba.png", "b_mask.png", "b_rgba.png"]
    assert open(os.path.join(out, "a_rgba.png"), "rb").read() == a_rgba
    # without it, the existing outputs fail the inputs
    p = _u2net([src, "-o", out, "-t", "rgba,mask"])
    assert p.returncode == 1 and "done 0, failed 2, skipped 0" in p.stderr_text, p.stderr_text


def test_recursive_folders():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_recursive")
    root = os.path.join(d, "photos")
    _image(os.path.join(root, "a.png"))
    _image(os.path.join(root, "sub", "b.PNG"), seed=1)
    _image(os.path.join(root, "sub", "deeper", "c.jpg"), seed=2)
    _image(os.path.join(root, "sub", "z.bmp"), seed=4)
    _image(os.path.join(root, ".hidden", "h.png"), seed=3)
    _image(os.path.join(root, ".dot.png"), seed=3)
    os.symlink(root, os.path.join(root, "sub", "loop"))  # a cycle: never followed
    os.symlink(os.path.join(root, "a.png"), os.path.join(root, "sub", "alias.png"))
    flat = os.path.join(d, "flat")
    p = _ok(_u2net([root, "-o", flat]))
    assert _files(flat) == ["a_rgba.png"], _files(flat)
    out = os.path.join(root, "out")  # below the input folder: not walked
    p = _ok(_u2net(["-r", root, "-o", out, "-v"]))
    want = ["a_rgba.png", "sub/alias_rgba.png", "sub/b_rgba.png", "sub/deeper/c_rgba.png",
            "sub/z_rgba.png"]
    assert _files(out) == want, _files(out)
    order = [line.split(":")[0] for line in p.stderr_text.splitlines() if " -> " in line]
    assert order == [os.path.join(root, n) for n in
                     ["a.png", "sub/alias.png", "sub/b.PNG", "sub/deeper/c.jpg", "sub/z.bmp"]], order
    assert "done 5, failed 0, skipped 0" in p.stderr_text
    # a second run does not take the first run's outputs as inputs
    p = _ok(_u2net(["-r", root, "-o", out, "--skip-existing"]))
    assert "done 0, failed 0, skipped 5" in p.stderr_text, p.stderr_text
    # a folder without images
    empty = os.path.join(d, "empty")
    os.makedirs(os.path.join(empty, "inner"))
    p = _u2net([empty, "-o", os.path.join(d, "o2")])
    assert p.returncode == 1 and "no image files" in p.stderr_text and "-r" in p.stderr_text
    _assert_no_temps(d)


def test_name_collision():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_collision")
    src = os.path.join(d, "in")
    jpg = _image(os.path.join(src, "x.jpg"))
    png = _image(os.path.join(src, "x.png"), seed=1)
    out = os.path.join(d, "out")
    p = _u2net([src, "-o", out])
    assert p.returncode == 1, p.stderr_text
    err = p.stderr_text
    line = [l for l in err.splitlines() if "would also be written" in l]
    assert len(line) == 1 and png in line[0] and jpg in line[0], err
    assert "done 1, failed 1, skipped 0" in err
    assert _files(out) == ["x_rgba.png"]
    # with --overwrite too: the later input never replaces the earlier one's
    p = _u2net([png, jpg, "-o", out, "--overwrite"])
    assert p.returncode == 1 and "would also be written from %s" % png in p.stderr_text, p.stderr_text
    _assert_no_temps(d)


def test_output_types():
    """Each type has the input's size (crop: the box) and the right channels."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_types")
    rgb = _image(os.path.join(d, "rgb.png"), w=50, h=37)
    rgba = _image(os.path.join(d, "alpha.png"), w=29, h=41, mode="RGBA", seed=1)
    gray = _image(os.path.join(d, "gray.pgm"), w=23, h=17, mode="L", seed=2)
    out = os.path.join(d, "out")
    types = "prob,mask,rgba,rgb,composite,crop,bbox,highlight"
    _ok(_u2net([rgb, rgba, gray, "-o", out, "-t", types]))
    for stem, (w, h), in_mode in [("rgb", (50, 37), "RGB"), ("alpha", (29, 41), "RGBA"),
                                  ("gray", (23, 17), "L")]:
        box = json.load(open(os.path.join(out, stem + "_bbox.json")))
        assert box["width"] == w and box["height"] == h, box
        modes = {"prob": "L", "mask": "L", "rgba": "RGBA", "rgb": "RGB", "composite": "RGB",
                 "highlight": "RGB"}
        for t, mode in modes.items():
            im = _open(os.path.join(out, "%s_%s.png" % (stem, t)))
            assert im.size == (w, h), (stem, t, im.size)
            assert im.mode == mode, (stem, t, im.mode)
        mask = np.asarray(_open(os.path.join(out, stem + "_mask.png")))
        assert set(np.unique(mask)) <= {0, 255}
        crop = _open(os.path.join(out, stem + "_crop.png"))
        b = box["bbox"]
        assert b is not None and crop.size == (b["w"], b["h"]), (crop.size, b)
        assert crop.mode == in_mode, (stem, crop.mode)
    # the rgba alpha is the soft map, the mask's box is the bbox
    alpha = np.asarray(_open(os.path.join(out, "rgb_rgba.png")))[:, :, 3]
    prob = np.asarray(_open(os.path.join(out, "rgb_prob.png")))
    assert np.array_equal(alpha, prob)
    # --format jpg: types without alpha become JPEG; rgba and crop of an
    # image with alpha stay PNG
    outj = os.path.join(d, "outj")
    _ok(_u2net([rgb, rgba, "-o", outj, "-t", types, "--format", "jpg", "--jpeg-quality", "80"]))
    names = _files(outj)
    for stem in ["rgb", "alpha"]:
        for t in ["prob", "mask", "rgb", "composite", "highlight"]:
            assert "%s_%s.jpg" % (stem, t) in names, names
            assert _format(os.path.join(outj, "%s_%s.jpg" % (stem, t))) == "JPEG"
        assert "%s_rgba.png" % stem in names and "%s_bbox.json" % stem in names
    assert "rgb_crop.jpg" in names and "alpha_crop.png" in names, names
    # a file output: the extension decides; JPEG crop of an image with alpha fails
    _ok(_u2net([rgb, "-o", os.path.join(d, "c.jpg"), "-t", "crop"]))
    assert _format(os.path.join(d, "c.jpg")) == "JPEG"
    p = _u2net([rgba, "-o", os.path.join(d, "c2.jpg"), "-t", "crop"])
    assert p.returncode == 1 and "JPEG cannot hold alpha" in p.stderr_text, p.stderr_text
    assert not os.path.exists(os.path.join(d, "c2.jpg"))
    _ok(_u2net([rgb, "-o", os.path.join(d, "box.json"), "-t", "bbox"]))
    assert json.load(open(os.path.join(d, "box.json")))["width"] == 50
    _assert_no_temps(d)


def test_options_reach_the_pipeline():
    """A few options whose effect is exact: --alpha mask with a background
    colour, --padding, --threshold."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_opts")
    a = _image(os.path.join(d, "a.png"), w=48, h=36)
    out = os.path.join(d, "out")
    _ok(_u2net([a, "-o", out, "-t", "mask,composite,crop,bbox", "--alpha", "mask",
                "--background", "#0f0", "--padding", "3"]))
    mask = np.asarray(_open(os.path.join(out, "a_mask.png")))
    comp = np.asarray(_open(os.path.join(out, "a_composite.png")))
    src = np.asarray(_open(a))
    assert np.array_equal(comp[mask == 0], np.tile([0, 255, 0], ((mask == 0).sum(), 1)))
    assert np.array_equal(comp[mask == 255], src[mask == 255])
    b = json.load(open(os.path.join(out, "a_bbox.json")))["bbox"]
    x0, y0 = max(b["x"] - 3, 0), max(b["y"] - 3, 0)
    x1, y1 = min(b["x"] + b["w"] + 3, 48), min(b["y"] + b["h"] + 3, 36)
    assert _open(os.path.join(out, "a_crop.png")).size == (x1 - x0, y1 - y0)
    # the mask grows as the threshold falls
    areas = []
    for t in ["0.9", "0.5", "0.1"]:
        p = _ok(_u2net([a, "-o", "-", "-t", "bbox", "--threshold", t]))
        areas.append(json.loads(p.stdout_text)["area"])
    assert areas[0] <= areas[1] <= areas[2] and areas[0] < areas[2], areas
    # an image background and the other mask options run
    bg = _image(os.path.join(d, "bg.jpg"), w=20, h=20, seed=9)
    _ok(_u2net([a, "-o", os.path.join(d, "o2"), "-t", "composite,highlight", "--background", bg,
                "--refine", "--fg-threshold", "200", "--morph", "open-close", "--morph-radius",
                "2", "--largest-component", "--feather", "1.5", "--resize", "lanczos",
                "--highlight", "blur", "--size", "48x32"]))
    assert _open(os.path.join(d, "o2", "a_composite.png")).size == (48, 36)


def test_max_pixels():
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_maxpix")
    a = _image(os.path.join(d, "a.png"), w=40, h=30)
    p = _u2net([a, "-o", os.path.join(d, "o.png"), "--max-pixels", "1000"])
    assert p.returncode == 1 and "u2net: %s: " % a in p.stderr_text, p.stderr_text
    _ok(_u2net([a, "-o", os.path.join(d, "o.png"), "--max-pixels", "1200"]))


def _run_on_terminal(args):
    """Runs with stderr on a pseudo-terminal; returns (status, what it showed)."""
    master, slave = pty.openpty()
    cmd = [testlib.U2NET] + args + ["-m", _model_path()] + FAST
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown = b""
    deadline = time.time() + 300
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the program closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=60), shown.decode("utf-8", "replace")


def test_progress_bar():
    """Drawn in place on a terminal, with count, rate and ETA; never on a
    pipe; not with -q."""
    testlib.need_engine_and_pil()
    d = testlib.workdir("cli_progress")
    a = _image(os.path.join(d, "a.png"))
    b = _image(os.path.join(d, "b.png"), seed=1)
    rc, shown = _run_on_terminal([a, b, "-o", os.path.join(d, "o1")])
    assert rc == 0, shown
    assert "\r" in shown and "0/2" in shown and "2/2" in shown and "img/s" in shown, repr(shown)
    assert "ETA" in shown and "done 2, failed 0, skipped 0" in shown, repr(shown)
    rc, shown = _run_on_terminal([a, b, "-o", os.path.join(d, "o2"), "-q"])
    assert rc == 0 and shown == "", repr(shown)
    p = _ok(_u2net([a, b, "-o", os.path.join(d, "o3")]))
    assert "\r" not in p.stderr_text and p.stderr_text == "done 2, failed 0, skipped 0\n"

