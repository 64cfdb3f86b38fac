"""`make install PREFIX=...` installs the library, header, program, pkg-config
file and default model; a C program builds against it with pkg-config and
gives the same cutout as the command line."""
import os
import shutil

import numpy as np

import testlib

MODEL = os.path.join(testlib.ROOT, "weights", "u2netp.u2nc")
SAMPLE = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")


def _install(prefix):
    testlib.run(["make", "-s", "-C", testlib.ROOT, "install", "PREFIX=" + prefix,
                 "BUILD=" + testlib.BUILD])


def test_install_and_build_against_it():
    testlib.need_engine()
    if shutil.which("pkg-config") is None:
        raise testlib.Skip("pkg-config not installed")
    d = testlib.workdir("install")
    try:
        prefix = os.path.join(d, "prefix")
        _install(prefix)
        for rel in ("bin/u2net", "lib/libu2net.a", "lib/libu2net.so", "include/u2net.h",
                    "lib/pkgconfig/u2net.pc"):
            assert os.path.exists(os.path.join(prefix, rel)), "not installed: " + rel
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        flags = testlib.run(["pkg-config", "--cflags", "--libs", "--static", "u2net"], env=env)
        flags = flags.stdout_text.split()
        print("    pkg-config:", " ".join(flags))
        exe = os.path.join(d, "api_example")
        # static link so the example does not need LD_LIBRARY_PATH
        testlib.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe,
                     os.path.join(testlib.ROOT, "tests", "api_example.c"), "-static-libgcc"]
                    + [f for f in flags if f != "-lu2net"]
                    + [os.path.join(prefix, "lib", "libu2net.a"), "-lm", "-fopenmp"]
                    # the link flags the library was built with (sanitizers under make sanitize)
                    + os.environ.get("U2NET_LDFLAGS", "").split())
        if not os.path.exists(MODEL):
            raise testlib.Skip("no weights/u2netp.u2nc (run make weights); install checked")
        installed_model = os.path.join(prefix, "share", "u2net", "u2netp.u2nc")
        assert os.path.exists(installed_model), "default model not installed"
        lib_out = os.path.join(d, "lib.png")
        testlib.run([exe, installed_model, SAMPLE, lib_out])
        cli_out = os.path.join(d, "cli.png")
        # the installed program finds the installed model by name
        env2 = dict(os.environ)
        env2.pop("U2NET_WEIGHTS", None)
        testlib.run([os.path.join(prefix, "bin", "u2net"), SAMPLE, "-o", cli_out, "-q"], env=env2)
        from PIL import Image
        a = np.asarray(Image.open(lib_out))
        b = np.asarray(Image.open(cli_out))
        assert a.shape == b.shape == (360, 480, 4), (a.shape, b.shape)
        assert np.array_equal(a, b), "library and program cutouts differ"
    finally:
        shutil.rmtree(d, ignore_errors=True)
