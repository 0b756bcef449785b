#!/usr/bin/env bash
# The training fields of the GPU stages (configs/recipes/*/..._gpu.yaml, data set
# sim_fibroblast_gpu of their recipes, for scripts/train_gpu.sh and GPU candidates):
# 120 fibroblast fields (seeds 0..119), 12 with a mitotic central cell and 24 single cells,
# weight 4 for the mitotic ones, and the 10 validation fields of every earlier stage, at
# 64 x 256 x 256, in DATA/manifest_mitosis.csv. Files already there are kept.
#
# Usage: scripts/make_gpu_data.sh [DATA]   (from the repository root; default runs/sim_fibroblast_gpu)
set -euo pipefail
exec python3 scripts/make_sim_data.py "${1:-runs/sim_fibroblast_gpu}" --cell-types fibroblast \
    --train 120 --val 4 --mitotic-train 12 --mitotic-val 2 --sparse-train 24 --sparse-val 4 \
    --shape 64 256 256 --mitotic-weight 4 --manifest manifest_mitosis.csv --workers "$(nproc)"
