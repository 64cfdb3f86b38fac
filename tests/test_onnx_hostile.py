"""Hostile ONNX files against the library's protobuf and ONNX readers
(engine/model/protobuf.c, onnx.c): truncated files, lengths past the end
and huge ones at every level of nesting, nested garbage, fields of the
wrong wire type, tensors of the wrong data type or impossible dims, and
graphs that loop. Each must be refused with one line naming the file and
no crash (make sanitize runs this under ASan + UBSan), fast, within a
capped address space, and through the program with exit status 1 and no
output. The converter must refuse the graph-level ones too
(test_onnx.test_broken_graphs_refused_by_both has more of those).

Most cases go through `build/test_model_image --each`, hundreds of files
in one process; a sample goes through the program. numpy only.
"""
import os
import random
import struct
import sys
import time

import testlib

import test_hostile as TH
import test_onnx as TO

wd, tidy = testlib.scratch_dir, testlib.tidy

# which fields of which message hold which message (onnx.proto)
SCHEMA = {"model": {7: "graph"}, "graph": {1: "node", 5: "tensor"}, "node": {5: "attr"},
          "attr": {5: "tensor"}, "tensor": {}}


class Field(object):
    """One field of a parsed message: number, wire type and value (an int,
    bytes, or a list of Fields for a nested message of `kind`)."""

    def __init__(self, num, wire, value, kind=None):
        self.num, self.wire, self.value, self.kind = num, wire, value, kind
        self.raw = None        # bytes that replace the whole field when set


def read_varint(buf, at):
    v, shift = 0, 0
    while True:
        b = buf[at]
        at += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, at


def parse(buf, kind="model"):
    out, at = [], 0
    while at < len(buf):
        k, at = read_varint(buf, at)
        num, wire = k >> 3, k & 7
        if wire == 0:
            v, at = read_varint(buf, at)
            out.append(Field(num, 0, v))
        elif wire == 2:
            n, at = read_varint(buf, at)
            payload = buf[at:at + n]
            at += n
            sub = SCHEMA[kind].get(num)
            out.append(Field(num, 2, parse(payload, sub) if sub else payload, sub))
        else:
            n = 4 if wire == 5 else 8
            out.append(Field(num, wire, buf[at:at + n]))
            at += n
    return out


def serialize(fields):
    out = bytearray()
    for f in fields:
        if f.raw is not None:
            out += f.raw
        elif f.wire == 0:
            out += TO.f_int(f.num, f.value)
        elif f.wire == 2:
            out += TO.f_bytes(f.num, serialize(f.value) if isinstance(f.value, list) else f.value)
        else:
            out += TO.key(f.num, f.wire) + f.value
    return bytes(out)


def walk(fields, path=()):
    """Every (path, field) of the tree, depth first."""
    for i, f in enumerate(fields):
        yield path + (i,), f
        if isinstance(f.value, list):
            for item in walk(f.value, path + (i,)):
                yield item


def field_at(fields, path):
    f = None
    for i in path:
        f = fields[i]
        fields = f.value if isinstance(f.value, list) else []
    return f


def sample_sites(tree, rng, per_kind=6):
    """Paths of a few fields of each message kind (all of the model's and
    the graph's own fields), so that every level is hit."""
    by_kind = {}
    for path, f in walk(tree):
        parent = "model" if len(path) == 1 else field_at(tree, path[:-1]).kind
        by_kind.setdefault(parent, []).append(path)
    sites = []
    for kind, paths in sorted(by_kind.items()):
        if kind in ("model",):
            sites += paths
        else:
            sites += rng.sample(paths, min(per_kind, len(paths)))
    return sites


def mutants(base, seed=1):
    """(label, bytes) of broken versions of an ONNX file."""
    rng = random.Random(seed)
    tree = parse(base)
    out = []
    # truncated: every cut in the first 64 bytes, then every 97th, and near the end
    cuts = sorted(set(list(range(0, 64)) + list(range(64, len(base), 97)) +
                      [len(base) - k for k in (1, 2, 3, 5, 9)]))
    out += [("truncated at %d" % c, base[:c]) for c in cuts]
    sites = sample_sites(tree, rng)
    for path in sites:
        t = parse(base)
        f = field_at(t, path)
        where = "field %d at %s" % (f.num, ".".join(map(str, path)))
        if f.wire == 2:
            payload = serialize(f.value) if isinstance(f.value, list) else f.value
            for name, length in (("length + 1", len(payload) + 1), ("length 2^31", 1 << 31),
                                 ("length 2^63", 1 << 63), ("length 2^64-1", (1 << 64) - 1)):
                f.raw = TO.key(f.num, 2) + TO.varint(length) + payload
                out.append(("%s: %s" % (where, name), serialize(t)))
            f.raw = TO.key(f.num, 2) + b"\xff" * 11 + payload
            out.append(("%s: an 11-byte length" % where, serialize(t)))
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            f.raw = TO.f_bytes(f.num, garbage)
            out.append(("%s: garbage inside" % where, serialize(t)))
        for wire in (0, 1, 2, 5, 3, 4, 6, 7):
            if wire == f.wire:
                continue
            body = {0: TO.varint(5), 1: b"\0" * 8, 2: TO.varint(2) + b"ab", 5: b"\0" * 4}.get(wire, b"")
            f.raw = TO.key(f.num, wire) + body
            out.append(("%s: wire type %d" % (where, wire), serialize(t)))
        f.raw = None
    return out


def tensor_cases():
    """(label, bytes): one conv weight of the wrong data type or dims."""
    base = TO.variant_bytes("u2net_raw")
    good = TO.tensor("w", TO.np.ones((1, 3, 3, 3), TO.np.float32))
    cases = []

    def with_weight(t, label):
        data = TO._add_nodes(base, [TO.node("Conv", ["input", "w"], ["zz"])], [t])
        cases.append((label, data))

    for dt in (0, 2, 7, 13, 14, 999, (1 << 64) - 1):
        with_weight(TO.tensor("w", TO.np.ones((1, 3, 3, 3), TO.np.float32)).replace(TO.f_int(2, 1), TO.f_int(2, dt)),
                    "data type %d" % dt)
    with_weight(good.replace(TO.f_packed(1, [1, 3, 3, 3]), TO.f_packed(1, [1, 3, 3, -3])), "a negative dim")
    with_weight(good.replace(TO.f_packed(1, [1, 3, 3, 3]), TO.f_packed(1, [1 << 40, 1 << 30, 3, 3])),
                "dims of 2^70 values")
    with_weight(good.replace(TO.f_packed(1, [1, 3, 3, 3]), TO.f_packed(1, [1 << 62, 4, 1, 1])),
                "dims whose product overflows")
    with_weight(good.replace(TO.f_packed(1, [1, 3, 3, 3]), TO.f_packed(1, [1, 3, 3, 4])), "more dims than raw_data")
    with_weight(good.replace(TO.f_packed(1, [1, 3, 3, 3]), TO.f_packed(1, [3, 3, 3])), "3-D")
    with_weight(TO.f_packed(1, [1, 3, 3, 3]) + TO.f_int(2, 1) + TO.f_bytes(8, "w") + TO.f_int(4, 5),
                "float_data as a varint")
    with_weight(TO.f_packed(1, [1, 3, 3, 3]) + TO.f_int(2, 1) + TO.f_bytes(8, "w") + TO.f_bytes(4, b"abc"),
                "float_data of 3 bytes")
    with_weight(TO.f_packed(1, [1, 3, 3, 3]) + TO.f_int(2, 10) + TO.f_bytes(8, "w") + TO.f_packed(5, [1] * 26),
                "float16 int32_data one short")
    with_weight(TO.f_packed(1, [1, 3, 3, 3]) + TO.f_int(2, 10) + TO.f_bytes(8, "w") + TO.f_bytes(5, b"\xff\xff"),
                "float16 int32_data truncated varint")
    with_weight(good + TO.f_bytes(13, TO.f_bytes(1, "location") + TO.f_bytes(2, "w.bin")), "external data")
    with_weight(TO.f_packed(1, [1, 3, 3, 3]) + TO.f_int(2, 1) + TO.f_bytes(8, "w") + TO.f_bytes(9, b""),
                "empty raw_data")
    sparse = TO.f_bytes(15, TO.f_bytes(1, good))
    head, graph, tail = TO._graph_of(base)
    cases.append(("a sparse initializer", head + TO.f_bytes(7, graph + sparse) + tail))
    return cases


def loop_cases():
    """(label, bytes) of graphs that loop or refer to themselves."""
    base = TO.variant_bytes("u2net_raw")
    N = TO.node
    cases = []
    # a weight behind a ring of Identity nodes
    cases.append(("weight behind an Identity ring", TO._add_nodes(base, [
        N("Identity", ["r2"], ["r1"]), N("Identity", ["r1"], ["r2"]), N("Conv", ["input", "r1"], ["zz"])])))
    # a conv whose output runs through an Identity ring back to itself
    cases.append(("conv output in an Identity ring", TO._add_nodes(base, [
        N("Conv", ["input", "w1"], ["c1"]), N("Identity", ["c1"], ["c2"]), N("Identity", ["c2"], ["c1"])],
        [TO.tensor("w1", TO.np.ones((1, 3, 3, 3), TO.np.float32))])))
    # a residual Add whose branches are one conv; an Add of two convs that read each other
    cases.append(("Add of convs reading each other", TO._add_nodes(base, [
        N("Conv", ["b", "w1"], ["a"]), N("Conv", ["a", "w1"], ["b"]), N("Add", ["a", "b"], ["s"])],
        [TO.tensor("w1", TO.np.ones((1, 1, 3, 3), TO.np.float32))])))
    # a Cast chain longer than the reader follows
    chain = [N("Cast", ["k%d" % (i + 1)], ["k%d" % i], attrs=[TO.attr_int("to", 1)]) for i in range(80)]
    cases.append(("80 Casts on a weight", TO._add_nodes(base, chain + [N("Conv", ["input", "k0"], ["zz"])],
                                                       [TO.tensor("k80", TO.np.ones((1, 3, 3, 3), TO.np.float32))])))
    return cases


def check_each(d, cases):
    """Writes each case, reads them all in one test_model_image process;
    returns the problems."""
    paths = []
    for i, (label, data) in enumerate(cases):
        paths.append(TO.write(d, "c%04d.onnx" % i, data))
    problems = []
    lines = []
    for k in range(0, len(paths), 200):
        p = testlib.run([TO.MODEL_IMAGE, "--each"] + paths[k:k + 200], check=False, timeout=300)
        assert p.returncode == 0, "test_model_image --each failed (%d): %s" % (p.returncode, p.stderr_text[-2000:])
        lines += p.stdout_text.splitlines()
    assert len(lines) == len(paths), "%d lines for %d files" % (len(lines), len(paths))
    for (label, _data), path, line in zip(cases, paths, lines):
        if not line.startswith(path + ": ") or line.endswith(": accepted"):
            problems.append("%s: %s" % (label, line))
    return problems


@tidy
def test_damaged_protobuf():
    """Truncations, lengths past the end and huge (at every level: model,
    graph, node, attribute, initializer), 11-byte lengths, garbage inside a
    field, every other wire type: each refused with its one line."""
    testlib.need_engine()
    d = wd("onnx_damaged")
    cases = []
    for name in ("u2net_bn", "isnet_f16", "u2net_casts"):
        cases += [("%s %s" % (name, label), data) for label, data in mutants(TO.variant_bytes(name))]
    # mutants that happen to stay valid files are no failure; count them
    t0 = time.monotonic()
    problems = check_each(d, cases)
    seconds = time.monotonic() - t0
    accepted = [p for p in problems if p.endswith(": accepted")]
    wrong = [p for p in problems if not p.endswith(": accepted")]
    print("    %d damaged files read in %.1f s; %d still valid (damage that leaves a valid file: an "
          "unknown field, a name)" % (len(cases), seconds, len(accepted)))
    assert not wrong, "\n".join(wrong[:20])
    assert len(accepted) < len(cases) // 10, "\n".join(accepted[:20])


@tidy
def test_wrong_tensors():
    """Weights of integer, unknown and out-of-range data types, negative,
    overflowing or mismatched dims, typed fields of the wrong wire type or
    length, external data, sparse initializers: refused."""
    d = wd("onnx_tensors")
    cases = tensor_cases()
    problems = check_each(d, cases)
    assert not problems, "\n".join(problems)
    print("    %d cases refused" % len(cases))


@tidy
def test_loops_refused():
    """Identity rings (behind a weight, after a conv: the converter never
    ends on that one), convs that read each other, an 80-Cast chain: refused
    at once."""
    d = wd("onnx_loops")
    cases = loop_cases()
    t0 = time.monotonic()
    problems = check_each(d, cases)
    assert not problems, "\n".join(problems)
    assert time.monotonic() - t0 < 10, "took %.1f s" % (time.monotonic() - t0)


@tidy
def test_program_refuses_hostile_onnx():
    """Through the program, in a 512 MiB address space: one error line naming
    the model, exit status 1, no output, within a second."""
    testlib.need_engine_and_pil()
    d = wd("onnx_program_hostile")
    sample = os.path.join(testlib.ROOT, "docs", "img", "sample.jpg")
    base = TO.variant_bytes("u2net_bn")
    picks = [("truncated", base[:len(base) // 2]), ("empty", b""), ("one byte", b"\x08")]
    picks += [c for c in tensor_cases() if "2^70" in c[0] or "overflows" in c[0]]
    picks += loop_cases()[:2]
    tree = parse(base)
    graph = tree[[f.num for f in tree].index(7)]
    graph.raw = TO.key(7, 2) + TO.varint((1 << 63) + 5) + serialize(graph.value)
    picks.append(("graph length 2^63", serialize(tree)))
    problems = []
    for i, (label, data) in enumerate(picks):
        path = TO.write(d, "h%d.onnx" % i, data)
        out = os.path.join(d, "out%d.png" % i)
        problems += TH.expect_refused(label, [testlib.U2NET, "-m", path, sample, "-o", out], path, "")
        if os.path.exists(out):
            problems.append("%s: wrote %s" % (label, out))
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    sys.exit("the tests run through tests/run.py")
