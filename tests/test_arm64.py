"""The ARM64 build (make CROSS=aarch64-linux-gnu-) under qemu-aarch64, run by
`make test-arm64` ($U2NET_ARM64_BUILD names the build, $U2NET_ARM64_SYSROOT
the cross compiler's libraries; skipped without them): test_kernels (every
kernel's NEON and portable loops against the reference kernels),
test_backends (the CPU backend against the plain forward pass, U2NetP at
a small size: qemu runs some 20-50x slower than the machine), the goldens
through `u2net tensor` with NEON and the portable loops, NEON against this
machine's AVX2 bit for bit, and the static ARM64 program with its built-in
model and no libraries at all."""
import os
import shutil
import subprocess

import numpy as np

import testlib
from testlib import Skip

import make_goldens as MG
import test_backends as TB
import test_e2e as E
import test_static as TS

ARM = os.environ.get("U2NET_ARM64_BUILD", "")
SYSROOT = os.environ.get("U2NET_ARM64_SYSROOT", "/usr/aarch64-linux-gnu")
EM_AARCH64 = 183

wd, tidy = testlib.scratch_dir, testlib.tidy


def qemu():
    """The command prefix that runs an ARM64 program of the dynamic build."""
    if not ARM:
        raise Skip("run by make test-arm64 (U2NET_ARM64_BUILD names the ARM64 build)")
    q = shutil.which("qemu-aarch64")
    if not q:
        raise Skip("no qemu-aarch64 (Debian: qemu-user)")
    assert os.path.isdir(os.path.join(SYSROOT, "lib")), "no ARM64 libraries in %s" % SYSROOT
    return [q, "-L", SYSROOT]


def run_c_test(args, timeout):
    p = testlib.run(qemu() + args, check=False, timeout=timeout)
    lines = p.stdout_text.strip().splitlines()
    for line in lines:
        if line.startswith("FAIL") or line.startswith("worst") or " cpu (" in line:
            print("   ", line.replace(testlib.WORK + "/", ""))
    print("   ", lines[-1] if lines else "(no output) " + p.stderr_text.strip())
    assert p.returncode == 0, "%s exited %d under qemu" % (os.path.basename(args[0]), p.returncode)


def test_kernels():
    """test_kernels: NEON and portable loops against the reference kernels."""
    run_c_test([os.path.join(ARM, "test_kernels")], timeout=1200)


def test_backends():
    """test_backends on U2NetP at a size whose levels are odd (NEON's
    float16 conversion, the one step a float16 model adds, is in
    test_kernels)."""
    qemu()
    run_c_test([os.path.join(ARM, "test_backends"), TB.random_model("u2netp"), "33", "25"],
               timeout=1200)


def arm_tensor(model, x, isa):
    h, w = x.shape[1:]
    d = wd("arm64_tensor")
    inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
    np.ascontiguousarray(x, "<f4").tofile(inp)
    testlib.run(qemu() + [os.path.join(ARM, "u2net"), "tensor", "-m", model, "-i", inp,
                          "--height", str(h), "--width", str(w), "-o", out, "--sides",
                          "--threads", "2", "--isa", isa], timeout=1200)
    return np.fromfile(out, "<f4").reshape(-1, h, w)


def host_avx2(model, x):
    """This machine's AVX2 result, or None where it has no AVX2."""
    try:
        return testlib.run_tensor(model, x, threads=2, extra=("--isa", "avx2"))
    except AssertionError as e:
        if "this CPU runs at most" in str(e):
            return None
        raise


@tidy
def test_goldens():
    """U2NetP, U2Net and ISNet at 97x61 with NEON against the goldens (and
    U2NetP with the portable loops); NEON does AVX2's operations in AVX2's
    order, so where this machine has AVX2 the two give the same bits."""
    qemu()
    testlib.need_engine()
    for kind in MG.MODELS + ("isnet",):
        x, y = MG.load_golden(kind, 97, 61)
        model = E.random_model_file(kind)
        got = arm_tensor(model, x, "neon")
        E.compare_outputs(got, y, E.TOL, "%s 97x61 arm64 neon vs golden" % kind)
        if kind == "u2netp":
            E.compare_outputs(arm_tensor(model, x, "portable"), y, E.TOL,
                              "%s 97x61 arm64 portable vs golden" % kind)
        avx2 = host_avx2(model, x)
        if avx2 is None:
            print("    %s: this machine has no AVX2 to compare with" % kind)
            continue
        ndiff = int(np.count_nonzero(got.view(np.uint32) != avx2.view(np.uint32)))
        print("    %s 97x61 arm64 neon vs this machine's avx2: %d differing floats" % (kind, ndiff))
        assert ndiff == 0, "%s: neon and avx2 differ in %d floats" % (kind, ndiff)


@tidy
def test_static_program():
    """The static ARM64 program (make static CROSS=...): an ARM64 ELF with
    no interpreter and no dynamic section, run by qemu with no libraries
    (no -L) and an empty environment, cuts out the sample photo with its
    built-in model (at --size 160, for time); the mask is the bytes of this
    machine's run where it has AVX2 or AVX-512 (the same bits as NEON)."""
    qemu()
    testlib.need_engine()
    static = os.path.join(ARM, "static", "u2net")
    assert os.path.exists(static), "not built: %s (make static CROSS=aarch64-linux-gnu-)" % static
    with open(static, "rb") as f:
        head = f.read(20)
    assert int.from_bytes(head[18:20], "little") == EM_AARCH64, "%s is not an ARM64 ELF" % static
    types = TS.program_header_types(static)
    assert TS.PT_INTERP not in types and TS.PT_DYNAMIC not in types, "%s is not static" % static
    d = wd("arm64_static")
    got, want = os.path.join(d, "arm.png"), os.path.join(d, "host.png")
    args = [TS.SAMPLE, "-t", "mask", "--size", "160", "-o"]
    p = subprocess.run([shutil.which("qemu-aarch64"), static] + args + [got], env={},
                       capture_output=True, timeout=1200)
    assert p.returncode == 0, "static arm64 program exited %d: %s" % (
        p.returncode, p.stderr.decode("utf-8", "replace"))
    compare = host_avx2_runs()
    testlib.run([testlib.U2NET] + args + [want])
    with open(got, "rb") as f, open(want, "rb") as g:
        same = f.read() == g.read()
    print("    %s: %d bytes; the sample's mask under qemu with no libraries%s" % (
        os.path.relpath(static, testlib.ROOT), os.path.getsize(static),
        ", the same bytes as this machine's run" if compare and same else ""))
    if compare:
        assert same, "the arm64 mask differs from this machine's"


def host_avx2_runs():
    x = np.zeros((3, 8, 8), np.float32)
    return host_avx2(E.random_model_file("u2netp"), x) is not None
