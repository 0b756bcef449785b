#!/usr/bin/env bash
# The training fields of the refining stages (configs/recipes/default/09-15, data set sim_refine
# of the recipe), for GPU candidates run with scripts/train_gpu_candidates.sh:
# 100 fibroblast fields (48 ordinary, 6 with a mitotic central cell, 6 single cells, 40
# lipid-loaded with 20-60 droplets per cell) and the 10 usual validation fields, at
# 64 x 256 x 256, in DATA/manifest.csv. The seeds are those of every stage (scripts/make_sim_data.py),
# so no field of manifest_val18.csv or of a test set is among them. Files already there are kept.
#
# Usage: scripts/make_refine_data.sh [DATA]   (from the repository root; default runs/sim_refine_gpu)
set -euo pipefail
exec python3 scripts/make_sim_data.py "${1:-runs/sim_refine_gpu}" --cell-types fibroblast \
    --train 48 --val 4 --mitotic-train 6 --mitotic-val 2 --sparse-train 6 --sparse-val 4 \
    --lipid-train 40 --shape 64 256 256 --workers "$(nproc)"
