"""One model, eight threads, each with its own context and input size:
network outputs and rgba cutouts (decode, matte, render, encode)
bit-identical to sequential runs (build/test_threads; `make tsan` runs it
under ThreadSanitizer)."""
import os

import testlib
import convert
import random_weights as RW
import u2net_format as F


def test_contexts_in_parallel_threads():
    exe = os.path.join(testlib.BUILD, "test_threads")
    assert os.path.exists(exe), "missing %s (run make test)" % exe
    d = testlib.workdir("threads")
    model = os.path.join(d, "u2netp.u2nc")
    convert.write_model(convert.convert_state_dict(RW.random_state_dict(F.U2NETP_STAGES, 1)), model)
    p = testlib.run([exe, model, "8"], check=False)
    print("   ", p.stdout_text.strip().replace("\n", "\n    "))
    assert p.returncode == 0, "test_threads exited %d: %s" % (p.returncode, p.stderr_text.strip())
