"""-m NAME and `u2net models` (src/paths.c, src/cmd_models.c): the built-in
u2netp first, then NAME.u2nc and NAME.onnx in $U2NET_WEIGHTS, weights/
beside the program, share/u2net, rembg's folder ($U2NET_HOME, else
$XDG_DATA_HOME/.u2net, else ~/.u2net) and rembg's own layout
(~/.rembg/models/NAME/); the listing in that order with what
each model is, names found twice marked, files that are no model listed
with the reason."""
import os
import shutil

import testlib

import test_onnx as TO

SAMPLE = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")

wd, tidy = testlib.scratch_dir, testlib.tidy


def lone_program(d):
    """A copy of the program in d/bin, so that no weights/ is beside it."""
    exe = os.path.join(d, "bin", "u2net")
    os.makedirs(os.path.dirname(exe))
    shutil.copy2(testlib.U2NET, exe)
    return exe


def env_with(**kw):
    env = dict(os.environ)
    for k in ("U2NET_WEIGHTS", "U2NET_HOME", "XDG_DATA_HOME", "REMBG_HOME"):
        env.pop(k, None)
    env.update(kw)
    return env


def prob(exe, model, env, d, tag):
    out = os.path.join(d, tag + ".png")
    testlib.run([exe, "-m", model, SAMPLE, "-o", out, "-t", "prob", "--size", "48", "-q", "--overwrite"],
                env=env)
    with open(out, "rb") as f:
        return f.read()


@tidy
def test_rembg_folder():
    """-m NAME finds NAME.onnx in $U2NET_HOME, else in $XDG_DATA_HOME/.u2net,
    else in ~/.u2net, then in rembg's own layout (~/.rembg/models/NAME/,
    $REMBG_HOME/models/NAME/); NAME.u2nc before NAME.onnx in one folder; a
    folder of $U2NET_WEIGHTS before rembg's."""
    testlib.need_engine_and_pil()
    d = wd("lookup_rembg")
    exe = lone_program(d)
    a, b = TO.variant_bytes("u2net_raw", seed=1), TO.variant_bytes("u2net_raw", seed=2)
    dirs = {k: os.path.join(d, k) for k in ("u2net_home", "xdg/.u2net", "home/.u2net", "weights")}
    for p in dirs.values():
        os.makedirs(p)
    home, xdg, user = dirs["u2net_home"], dirs["xdg/.u2net"], dirs["home/.u2net"]
    want_a = prob(exe, TO.write(d, "a.onnx", a), env_with(), d, "want_a")
    want_b = prob(exe, TO.write(d, "b.onnx", b), env_with(), d, "want_b")
    assert want_a != want_b
    for folder, env in ((home, env_with(U2NET_HOME=home, HOME=os.path.join(d, "home"))),
                        (xdg, env_with(XDG_DATA_HOME=os.path.join(d, "xdg"), HOME=os.path.join(d, "home"))),
                        (user, env_with(HOME=os.path.join(d, "home")))):
        TO.write(folder, "net.onnx", a)
        assert prob(exe, "net", env, d, "x") == want_a, "not found in %s" % folder
        os.unlink(os.path.join(folder, "net.onnx"))
    # rembg's own layout, last: ~/.rembg/models/NAME/NAME.onnx, or below $REMBG_HOME
    for root, env in ((os.path.join(d, "home", ".rembg"), env_with(HOME=os.path.join(d, "home"))),
                      (os.path.join(d, "rembg_home"), env_with(REMBG_HOME=os.path.join(d, "rembg_home"),
                                                               HOME=os.path.join(d, "home")))):
        os.makedirs(os.path.join(root, "models", "net"))
        TO.write(os.path.join(root, "models", "net"), "net.onnx", b)
        assert prob(exe, "net", env, d, "r") == want_b, "not found below %s" % root
        TO.write(user, "net.onnx", a)
        assert prob(exe, "net", env, d, "r") == want_a, "~/.u2net is not searched before %s" % root
        os.unlink(os.path.join(user, "net.onnx"))
    # NAME.u2nc before NAME.onnx
    import convert
    TO.write(home, "net.onnx", a)
    convert.write_model(convert.convert_file(os.path.join(d, "b.onnx")), os.path.join(home, "net.u2nc"))
    env = env_with(U2NET_HOME=home)
    assert prob(exe, "net", env, d, "y") == want_b, "NAME.u2nc is not taken before NAME.onnx"
    # $U2NET_WEIGHTS before $U2NET_HOME
    TO.write(dirs["weights"], "other.onnx", b)
    TO.write(home, "other.onnx", a)
    env = env_with(U2NET_HOME=home, U2NET_WEIGHTS=dirs["weights"])
    assert prob(exe, "other", env, d, "z") == want_b, "$U2NET_WEIGHTS is not searched first"


@tidy
def test_models_listing():
    """u2net models: the built-in model first, then the folders in lookup
    order, each model with its network, architecture, parameters, input
    size, pre-processing, file and size; a second model of one name is
    marked as not used; a file that is no model says why; exit 0."""
    testlib.need_engine()
    d = wd("lookup_list")
    exe = lone_program(d)
    weights, home = os.path.join(d, "w"), os.path.join(d, "home")
    os.makedirs(weights)
    os.makedirs(home)
    TO.write(weights, "tiny.onnx", TO.variant_bytes("u2net_raw"))
    TO.write(home, "tiny.onnx", TO.variant_bytes("u2net_bn"))
    TO.write(home, "isnet-tiny.onnx", TO.variant_bytes("isnet_f16"))
    TO.write(home, "birefnet-general.onnx", b"\x08\x07" + b"\x3a\x05" + b"junk!")
    TO.write(home, "notes.txt", b"not listed")
    p = testlib.run([exe, "models"], env=env_with(U2NET_WEIGHTS=weights, U2NET_HOME=home))
    lines = p.stdout_text.splitlines()
    print("    " + "\n    ".join(lines))
    assert lines[0].split() == ["NAME", "NETWORK", "ARCHITECTURE", "PARAMS", "INPUT", "PRE-PROCESSING", "FILE"]
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == ["u2netp", "tiny", "birefnet-general", "isnet-tiny", "tiny"], names
    row = dict(zip(["u2netp", "tiny_w", "bire", "isnet", "tiny_h"], lines[1:]))
    assert "U2Net" in row["u2netp"] and "1,125,485" in row["u2netp"] and "320x320" in row["u2netp"]
    assert "built in (2.3 MB)" in row["u2netp"] and "/max, mean 0.485,0.456,0.406" in row["u2netp"]
    assert "ISNet" in row["isnet"] and "1024x1024" in row["isnet"] and "/255, mean 0.5,0.5,0.5, std 1,1,1" in row["isnet"]
    assert os.path.join(weights, "tiny.onnx") in row["tiny_w"] and "not used" not in row["tiny_w"]
    assert "not used" in row["tiny_h"]
    assert "not a model this program reads" in row["bire"]
    p = testlib.run([exe, "models", "extra"], check=False)
    assert p.returncode == 2 and p.stderr_text.count("\n") == 1, p.stderr_text
