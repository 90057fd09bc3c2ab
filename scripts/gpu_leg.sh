#!/usr/bin/env bash
# One GPU training leg: every stage warm-started from the bundled weights, trained in bf16 within one
# wall-clock budget, exported and evaluated; results in $OUT (docs/training.md, "A GPU leg").
#
#   scripts/gpu_leg.sh            on the device machine, with packs/gpu_leg carried (built here by
#                                 scripts/prepare_gpu_legs.sh, or oldphoto train pack)
#   scripts/gpu_leg.sh --smoke    the same leg on this CPU with tiny batches (about two minutes)
#
# Environment: OUT (results folder; default runs/gpu_leg_out), GPU_LEG_PACK (default packs/gpu_leg),
# GPU_LEG_BUDGET (seconds for the whole leg; default 540, smoke 60), PYTHON (default python3).
# Further arguments go to `oldphoto train leg` (e.g. --set lambda_vgg=1 --stages vae_a mapping_quality).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

smoke=()
if [[ "${1:-}" == "--smoke" ]]; then
    smoke=(--smoke)
    shift
fi
out="${OUT:-runs/gpu_leg_out}"
pack="${GPU_LEG_PACK:-packs/gpu_leg}"
python="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

budget=()
if [[ -n "${GPU_LEG_BUDGET:-}" ]]; then
    budget=(--budget "$GPU_LEG_BUDGET")
fi
nice_cmd=()
if [[ ${#smoke[@]} -gt 0 ]]; then
    nice_cmd=(nice -n 10)  # the CPU machine is shared
    export OMP_NUM_THREADS=1
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/[gpu] /'
    echo "[gpu] $(nproc) CPUs; /dev/shm: $(df -h /dev/shm 2>/dev/null | awk 'NR==2 {print $4 " free"}')"
fi

"${nice_cmd[@]}" "$python" -m oldphoto train leg "${smoke[@]}" --pack "$pack" --out "$out" "${budget[@]}" "$@" \
    2>&1 | tee "$out/leg.log"
status=${PIPESTATUS[0]}
ls -l "$out"
exit "$status"
