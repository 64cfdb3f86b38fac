"""The program under valgrind's memcheck on a small batch (images of three
sizes in two formats, every output type, the post-processing options, a
background image, and one bad file): no leak of any kind, no memory error.

Skipped without valgrind, and under `make sanitize` (AddressSanitizer and
valgrind do not run together).
"""
import os
import re
import shutil

import numpy as np

import testlib
from testlib import Skip

LEAK_KINDS = ("definitely lost", "indirectly lost", "possibly lost")
VALGRIND_ERROR_STATUS = 99


def test_batch_under_valgrind():
    testlib.need_engine()
    if testlib.SANITIZE:
        raise Skip("the program is built with AddressSanitizer (make sanitize)")
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise Skip("valgrind not installed")
    try:
        from PIL import Image
    except ImportError:
        raise Skip("Pillow not installed (python3-pil)")
    d = testlib.workdir("valgrind")
    src = os.path.join(d, "in")
    os.makedirs(src)
    rng = np.random.default_rng(11)
    for name, (w, h) in (("a.png", (24, 18)), ("b.jpg", (31, 40)), ("c.png", (16, 16))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(os.path.join(src, name))
    with open(os.path.join(src, "bad.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really")
    background = os.path.join(d, "background.png")
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(background)
    out = os.path.join(d, "out")
    cmd = [valgrind, "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
           "--errors-for-leak-kinds=definite,indirect,possible",
           "--error-exitcode=%d" % VALGRIND_ERROR_STATUS,
           testlib.U2NET, "-m", testlib.random_u2netp("valgrind_u2netp_random", 9), "--size", "32",
           "--threads", "1", src, "-o", out, "-t", "prob,mask,rgba,rgb,composite,crop,bbox,highlight",
           "--background", background, "--highlight", "blur", "--refine", "--morph", "open",
           "--largest-component", "--feather", "1.5"]
    # one thread of each pool, so no thread is alive at exit with its stack;
    # and an OpenMP wait policy given, or the program runs itself again to
    # set its own (src/main.c), an exec valgrind does not follow
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    p = testlib.run(cmd, check=False, env=env, timeout=900)
    err = p.stderr_text
    found = {}
    for kind in LEAK_KINDS:
        m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" % kind, err)
        found[kind] = m.group(1) if m else "0 (no leak summary line)"
    errors = re.search(r"ERROR SUMMARY: ([\d,]+) errors", err)
    print("    exit %d; %s; errors %s" % (p.returncode, ", ".join("%s %s bytes" % kv for kv in found.items()),
                                         errors.group(1) if errors else "?"))
    assert p.returncode != VALGRIND_ERROR_STATUS, "valgrind found problems:\n%s" % err
    assert p.returncode == 1, "exit %d (the bad file should fail the run):\n%s" % (p.returncode, err)
    assert errors and errors.group(1) == "0", err
    assert all(v.startswith("0") for v in found.values()), err
    assert "u2net: %s: " % os.path.join(src, "bad.png") in err, err
    assert len(os.listdir(out)) == 3 * 8, sorted(os.listdir(out))
