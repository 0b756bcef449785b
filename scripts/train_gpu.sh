#!/usr/bin/env bash
# The GPU stages of the shipped networks (configs/default_gpu.yaml: stage 6 of the default
# RI2FL model; configs/segment_gpu.yaml: stage 5 of segment-default), both trained at once on
# one GPU from their CPU stages, on 120 simulated fibroblast training fields (the recipe of
# scripts/train_default.sh with twice the fields). The shipped weights had 5.75 minutes on one
# H100 (benchmarks/gpu_session.sh); then scripts/ship_model.py with --tile-size 32 128 128
# (default) and 32 96 96 (segment-default). They start from the CPU stages,
# runs/default_stage5/best.pt (scripts/train_default.sh) and runs/segment_stage4/best.pt, or from
# what DEFAULT_INIT / SEGMENT_INIT name (e.g. the shipped `default` / `segment-default`, to
# train a further stage).
#
# Usage: scripts/train_gpu.sh [MINUTES] [DATA]   (from the repository root)
set -euo pipefail
MINUTES="${1:-5.75}"
DATA="${2:-runs/sim_fibroblast_gpu}"
DEFAULT_INIT="${DEFAULT_INIT:-runs/default_stage5/best.pt}"
SEGMENT_INIT="${SEGMENT_INIT:-runs/segment_stage4/best.pt}"

export RI2FL_NO_PROGRESS=1
scripts/make_gpu_data.sh "$DATA"
ri2fl train configs/default_gpu.yaml --data "$DATA/manifest_mitosis.csv" \
    --finetune "$DEFAULT_INIT" --max-minutes "$MINUTES" > runs/default_gpu.log 2>&1 &
first=$!
ri2fl train configs/segment_gpu.yaml --data "$DATA/manifest_mitosis.csv" \
    --finetune "$SEGMENT_INIT" --max-minutes "$MINUTES" > runs/segment_gpu.log 2>&1 &
second=$!
status=0
wait "$first" || status=$?
wait "$second" || status=$?
exit "$status"
