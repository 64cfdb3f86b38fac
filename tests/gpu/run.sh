#!/bin/bash
# tests/gpu/run.sh OUT - the CUDA backend proved and measured on a machine
# with an NVIDIA GPU, in one run of a few minutes (tests/gpu/README.md):
# builds with CUDA=1, runs every model's goldens on the GPU, a
# compute-sanitizer memcheck run, and the GPU benchmark; the table and the
# logs go to OUT. Needs nvcc, a GPU, python3 with numpy and torch (CUDA).
set -u
OUT=${1:?usage: tests/gpu/run.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/../.."
exec > >(tee "$OUT/log.txt") 2>&1
PY=${PYTHON:-python3}
step() { echo "== $* ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc

step "make CUDA=1"
make -j"$(nproc)" CUDA=1 build/cuda/u2net >"$OUT/build.txt" 2>&1 || {
    tail -30 "$OUT/build.txt"; echo "FAIL: the CUDA build"; exit 1; }

step "goldens, memcheck and benchmark"
PYTHONUNBUFFERED=1 "$PY" tests/gpu/gpu_check.py --build build/cuda --out "$OUT"
rc=$?
step "done (exit $rc)"
exit $rc
