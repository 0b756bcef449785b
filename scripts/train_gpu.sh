#!/usr/bin/env bash
# A further stage of the default RI2FL model and of the organelle segmentation network on one
# GPU (configs/default_gpu.yaml, configs/segment_gpu.yaml; not run yet): both
# fine-tuned from the shipped weights at once, on the same simulated fibroblast fields (the
# recipe of scripts/train_default.sh with 120 training fields instead of 60).
#
# Usage: scripts/train_gpu.sh [MINUTES] [DATA]   (from the repository root)
set -euo pipefail
MINUTES="${1:-5}"
DATA="${2:-runs/sim_fibroblast_gpu}"
WORKERS="$(nproc)"

export RI2FL_NO_PROGRESS=1
python scripts/make_sim_data.py "$DATA" --cell-types fibroblast --train 120 --val 4 \
    --mitotic-train 12 --mitotic-val 2 --sparse-train 24 --sparse-val 4 --shape 64 256 256 \
    --mitotic-weight 4 --manifest manifest_mitosis.csv --workers "$WORKERS"
ri2fl train configs/default_gpu.yaml --data "$DATA/manifest_mitosis.csv" \
    --max-minutes "$MINUTES" > runs/default_gpu.log 2>&1 &
first=$!
ri2fl train configs/segment_gpu.yaml --data "$DATA/manifest_mitosis.csv" \
    --max-minutes "$MINUTES" > runs/segment_gpu.log 2>&1 &
second=$!
status=0
wait "$first" || status=$?
wait "$second" || status=$?
exit "$status"
