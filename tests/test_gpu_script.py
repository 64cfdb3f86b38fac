"""The GPU device script's driver (tests/gpu/gpu_check.py) run where there
is no GPU, with the CPU in the GPU's place (--smoke): its goldens check,
benchmark and table, so that the script that runs on a lent GPU machine
does not rot between the sessions that have one."""
import os
import sys

import testlib


def test_gpu_check_smoke():
    testlib.need_engine()
    testlib.need_torch()
    out = testlib.scratch_dir("gpu_smoke")
    p = testlib.run([sys.executable, os.path.join(testlib.ROOT, "tests", "gpu", "gpu_check.py"),
                     "--build", testlib.BUILD, "--out", out, "--smoke"], timeout=600)
    with open(os.path.join(out, "table.md")) as f:
        table = f.read()
    print("   ", p.stdout_text.strip().splitlines()[-1])
    assert "goldens: ok" in table, table
    assert "| u2netp | 64 | 2 |" in table, table
