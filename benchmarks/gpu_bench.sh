#!/usr/bin/env bash
# Issue #19's GPU rows in one bounded command (see benchmarks/gpu_bench.py): run from anywhere on a CUDA
# machine that has torch and the project's runtime dependencies; nothing is installed or downloaded.
#   OUT=/tmp/out bash benchmarks/gpu_bench.sh            # full run, about 8 minutes at most
#   OUT=/tmp/out bash benchmarks/gpu_bench.sh --smoke    # tiny sizes: does everything start?
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-gpu_bench_out}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
{ nvidia-smi || true; } > "$OUT/nvidia-smi.txt" 2>&1
# the Python side stops starting rows after --budget-s; the timeout is the last resort
timeout 470 "$PYTHON" benchmarks/gpu_bench.py --out "$OUT" --budget-s 420 "$@" 2>&1 | tee "$OUT/gpu_bench.log"
