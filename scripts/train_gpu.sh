#!/usr/bin/env bash
# The GPU stages of the shipped networks (configs/recipes/default/06_gpu.yaml: stage 6 of the
# default RI2FL model; configs/recipes/segment-default/05_gpu.yaml: stage 5 of segment-default),
# both trained at once on one GPU from their CPU stages, on 120 simulated fibroblast training
# fields. `ri2fl train --recipe default` (and segment-default) runs these stages in its chain,
# one after the other; this script runs the two side by side on one lent GPU, as for the
# shipped weights (5.75 minutes on one H100, benchmarks/gpu_session.sh). They start from the CPU
# stages, runs/recipe_default/05_droplet_weight/best.pt and
# runs/recipe_segment_default/04_mitosis/best.pt (`ri2fl train --recipe NAME --out DIR --until
# STAGE`), or from what DEFAULT_INIT / SEGMENT_INIT name.
#
# Usage: scripts/train_gpu.sh [MINUTES] [DATA]   (from the repository root)
set -euo pipefail
MINUTES="${1:-5.75}"
DATA="${2:-runs/sim_fibroblast_gpu}"
DEFAULT_INIT="${DEFAULT_INIT:-runs/recipe_default/05_droplet_weight/best.pt}"
SEGMENT_INIT="${SEGMENT_INIT:-runs/recipe_segment_default/04_mitosis/best.pt}"

export RI2FL_NO_PROGRESS=1
scripts/make_gpu_data.sh "$DATA"
ri2fl train configs/recipes/default/06_gpu.yaml --data "$DATA/manifest_mitosis.csv" \
    --out runs/default_gpu --finetune "$DEFAULT_INIT" --max-minutes "$MINUTES" \
    > runs/default_gpu.log 2>&1 &
first=$!
ri2fl train configs/recipes/segment-default/05_gpu.yaml --data "$DATA/manifest_mitosis.csv" \
    --out runs/segment_gpu --finetune "$SEGMENT_INIT" --max-minutes "$MINUTES" \
    > runs/segment_gpu.log 2>&1 &
second=$!
status=0
wait "$first" || status=$?
wait "$second" || status=$?
exit "$status"
