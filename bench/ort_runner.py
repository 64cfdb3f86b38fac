"""ONNX Runtime peer of `u2net bench`: a float32 ONNX export of the same
network and weights on ONNX Runtime's CPU execution provider, timed with the
same protocol and output lines.

    ort_runner.py --model M.onnx [--size S|WxH] [--runs N] [--warmup W]
                  [--threads T]

run_bench.py runs it with the Python of its own virtual environment, where it
installs onnxruntime and numpy from PyPI. Prints `run I ms=X` per timed run,
an information line, then `median_ms=X p10_ms=Y p90_ms=Z peak_rss_mb=R peak_vm_mb=V`
(ru_maxrss, MB of 10^6 bytes).
"""
import sys

import onnxruntime as ort

import peer_common


def main(argv=None):
    ap = peer_common.arguments(__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="ONNX file")
    a = ap.parse_args(argv)
    peer_common.check(ap, a)
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own classes for a bad or missing file
        sys.exit("ort_runner: %s: %s" % (a.model, str(e).strip().splitlines()[0]))
    w, h = a.size
    feeds = {session.get_inputs()[0].name: peer_common.pattern(h, w)}
    peer_common.measure(lambda: session.run(None, feeds), a,
                        "model=%s size=%dx%d threads=%d ort=%s" % (a.model, w, h, a.threads, ort.__version__))


if __name__ == "__main__":
    main()
