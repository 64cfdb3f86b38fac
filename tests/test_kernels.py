"""The C kernel unit tests (build/test_kernels): fast kernels against the
plain reference kernels, reference kernels against their definitions."""
import os

import testlib


def test_c_kernels():
    exe = os.path.join(testlib.BUILD, "test_kernels")
    p = testlib.run([exe], check=False)
    lines = p.stdout_text.strip().splitlines()
    for line in lines:
        if line.startswith("FAIL"):
            print("   ", line)
    print("   ", lines[-1] if lines else "(no output)")
    assert p.returncode == 0, "test_kernels exited %d" % p.returncode
