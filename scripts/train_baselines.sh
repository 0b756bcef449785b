#!/usr/bin/env bash
# BF2FL and DIC2FL baselines (spec section 5): the default model's network and recipe, fed
# brightfield or DIC z-stacks synthesised by Fourier optics from the same simulated
# fibroblast phantoms (same seeds and shapes as scripts/train_default.sh).
# They are not shipped; the evaluation part compares them with RI2FL:
#   ri2fl evaluate ... --model default --model runs/bf2fl/best.pt --model runs/dic2fl/best.pt
#
# Usage (from the repository root): scripts/train_baselines.sh [MAX_MINUTES_EACH] [N_TRAIN_FOVS]
set -euo pipefail
MAX_MINUTES="${1:-30}"
N_TRAIN="${2:-6}"   # training FOVs (the default model used 10; fewer here for the shared CPU)
DATA=runs/sim_fibroblast_bfdic

export OMP_NUM_THREADS=1 RI2FL_NO_PROGRESS=1
python scripts/make_sim_data.py "$DATA" --cell-types fibroblast --train "$N_TRAIN" --val 1 \
    --shape 64 256 256 --modalities bf dic
for kind in bf dic; do
    out="runs/${kind}2fl"
    resume=()
    [ -f "$out/last.pt" ] && resume=(--resume)
    ri2fl train "configs/baseline_${kind}.yaml" --data "$DATA" --out "$out" \
        --max-minutes "$MAX_MINUTES" "${resume[@]}"
done
