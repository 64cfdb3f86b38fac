"""Inputs the fuzzers (tests/fuzz, `make fuzz`) found crashing: each must now
give one clear error line, exit status 1, and no output."""
import os

import testlib

REGRESSIONS = os.path.join(testlib.ROOT, "tests", "fuzz", "regressions")


def test_fuzz_regressions():
    testlib.need_engine()
    names = sorted(os.listdir(REGRESSIONS))
    assert names, "no regression inputs in %s" % REGRESSIONS
    d = testlib.workdir("fuzz_regressions")
    # a model of random weights: the shared ones may be missing, and the
    # default model is not found beside the program of `make sanitize`
    model = testlib.random_u2netp("fuzz_regressions_u2netp_random", 3)
    for name in names:
        out = os.path.join(d, name + ".png")
        p = testlib.run([testlib.U2NET, "-m", model, "--size", "32", os.path.join(REGRESSIONS, name),
                         "-o", out, "-q"], check=False)
        lines = p.stderr_text.strip().splitlines()
        print("    %s: exit %d: %s" % (name, p.returncode, lines[0] if lines else ""))
        assert p.returncode == 1, "%s: exit status %d" % (name, p.returncode)
        assert len(lines) == 1 and name in lines[0], "%s: stderr %r" % (name, p.stderr_text)
        assert not os.path.exists(out), "%s: output written" % name
