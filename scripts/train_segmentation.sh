#!/usr/bin/env bash
# Rebuild the shipped segmentation models from simulated fibroblasts, in the background.
# Usage: bash scripts/train_segmentation.sh [ROOT] [MINUTES]   (log: ROOT/train_segmentation.log)
# One CPU thread per step so that a shared machine stays usable; see docs/segmentation.md.
set -euo pipefail
ROOT=${1:-runs/segment}
MINUTES=${2:-25}
cd "$(dirname "$0")/.."
mkdir -p "$ROOT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
nohup python scripts/train_segmentation.py all --root "$ROOT" --minutes "$MINUTES" \
    > "$ROOT/train_segmentation.log" 2>&1 &
echo "training in the background (pid $!); follow with: tail -f $ROOT/train_segmentation.log"
