#!/usr/bin/env bash
# Reproduce the shipped default RI2FL model (src/ri2fl/models/weights/default.pt).
#
# Data recipe: 10 training + 2 validation simulated FIBROBLAST fields of view only,
# 64 x 256 x 256 voxels on the canonical 0.2 x 0.15 x 0.15 µm grid, fast tomograph model,
# seeds 0..9 (train) and 10000..10001 (val); all six targets in one network.
# Training: configs/default_coarse.yaml (UNet3D features 12, depth 3, multiplier 2, z pooled at
# the first level, on a 0.4 x 0.3 x 0.3 µm grid the data are resampled to; MSE + 3D-Sobel GDL;
# Adam 1e-3, /5 after an 8-epoch plateau of the validation PCC; 24 x 64 x 64 patches, batch 4,
# 25 steps per epoch; one CPU thread), stopped after MAX_MINUTES of training (resumed runs add
# up: the shipped weights: 48 + 31 = 79 epochs, best at epoch 69). The best checkpoint by validation PCC is stored in
# float16 and shipped with its sha256 sidecar.
#
# Usage: scripts/train_default.sh [MAX_MINUTES]   (run from the repository root)
set -euo pipefail
MAX_MINUTES="${1:-60}"
DATA=runs/sim_fibroblast
OUT=runs/default_coarse

export OMP_NUM_THREADS=1 RI2FL_NO_PROGRESS=1
python scripts/make_sim_data.py "$DATA" --cell-types fibroblast --train 10 --val 2 \
    --shape 64 256 256
resume=()
[ -f "$OUT/last.pt" ] && resume=(--resume)
ri2fl train configs/default_coarse.yaml --data "$DATA" --out "$OUT" --max-minutes "$MAX_MINUTES" \
    "${resume[@]}"
python scripts/ship_model.py "$OUT/best.pt" default
