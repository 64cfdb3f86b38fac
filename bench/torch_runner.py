#!/usr/bin/python3
"""PyTorch peer of `u2net bench`: the project's PyTorch reference network
(tests/reference/u2net_ref.py), timed with the same protocol and output lines.

    torch_runner.py --model u2netp --checkpoint W.pth [--size S|WxH]
                    [--runs N] [--warmup W] [--threads T]
    torch_runner.py --u2nc M.u2nc [...]

--model with --checkpoint: the named network with an official-style state
dict, BatchNorm unfolded as in the authors' code. --u2nc: the network and
weights of a project model file (BatchNorm folded, as the file holds them;
float16 weights made float32). Prints `run I ms=X` per timed run, an
information line, then `median_ms=X p10_ms=Y p90_ms=Z peak_rss_mb=R peak_vm_mb=V`
(ru_maxrss, MB of 10^6 bytes).
"""
import os
import sys

import torch

import peer_common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import u2net_ref as R  # noqa: E402


def main(argv=None):
    ap = peer_common.arguments(__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(R.STAGES), help="network of --checkpoint")
    ap.add_argument("--checkpoint", help="state dict saved by torch.save")
    ap.add_argument("--u2nc", help="project model file, instead of --model and --checkpoint")
    a = ap.parse_args(argv)
    peer_common.check(ap, a)
    if bool(a.u2nc) == bool(a.model and a.checkpoint):
        ap.error("give either --model and --checkpoint, or --u2nc")
    torch.set_num_threads(a.threads)
    if a.u2nc:
        model = R.load_u2nc(a.u2nc)
        name = model.u2nc_name
    else:
        model = R.build(R.STAGES[a.model])
        model.load_state_dict(torch.load(a.checkpoint), strict=True)
        name = a.model
    model.eval()
    w, h = a.size
    x = torch.from_numpy(peer_common.pattern(h, w))
    with torch.no_grad():
        peer_common.measure(lambda: model(x), a,
                            "model=%s size=%dx%d threads=%d torch=%s" % (name, w, h, a.threads, torch.__version__))


if __name__ == "__main__":
    main()
