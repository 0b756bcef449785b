#!/usr/bin/env bash
# Everything measured on a lent GPU in one go (the figures of BENCHMARKS.md's GPU rows):
# inference throughput (ours vs MONAI, fp32 and bf16), training throughput (fp32 vs bf16),
# a one-process torchrun (NCCL) smoke run of `ri2fl train`, then the GPU stages of the default and
# segmentation networks (scripts/train_gpu.sh; the recipes' 06_gpu and 05_gpu) in the time left.
#
# Usage: benchmarks/gpu_session.sh OUT_DIR [TOTAL_SECONDS]   (from the repository root)
# On a GPU image without ri2fl's extra dependencies, carry wheels of zarr, numcodecs, donfig,
# google-crc32c and monai, install them with `pip install --no-deps --target /tmp/site` and
# run with PYTHONPATH=/tmp/site:$PWD/src (dask, partd, locket and hdf5plugin too for training).
# The GPU stages start from runs/recipe_default/05_droplet_weight/best.pt and
# runs/recipe_segment_default/04_mitosis/best.pt (`ri2fl train --recipe ... --until ...`; carry
# them), or from DEFAULT_INIT / SEGMENT_INIT (scripts/train_gpu.sh). SKIP_BENCH=1: training only.
set -uo pipefail
OUT="${1:?output folder}"
TOTAL="${2:-570}"
START=$(date +%s)
mkdir -p "$OUT" runs
# everything also lands in OUT as it is printed: a step that hangs still leaves the log
exec > >(tee -a "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 RI2FL_NO_PROGRESS=1
# a bare GPU image may have python3 only and ri2fl uninstalled (PYTHONPATH=src): add shims
# (scripts, not links: a link to a venv's python3 loses the venv)
mkdir -p /tmp/ri2fl-bin
command -v python > /dev/null || printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" \
    > /tmp/ri2fl-bin/python
command -v ri2fl > /dev/null || printf '#!/bin/sh\nexec python3 -m ri2fl.cli.main "$@"\n' \
    > /tmp/ri2fl-bin/ri2fl
chmod +x /tmp/ri2fl-bin/* 2> /dev/null
export PATH="$PATH:/tmp/ri2fl-bin"
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[$(elapsed) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
log "imports"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
timeout 120 python -X importtime -c "import torch, ri2fl.train.engine, monai, zarr" \
    2> /tmp/importtime.txt || { tail -30 /tmp/importtime.txt; log "imports failed"; exit 3; }
if [ -z "${SKIP_BENCH:-}" ]; then
  log "training throughput"
  timeout 150 bash -c '
    python benchmarks/bench_train.py --config configs/recipes/default/04_mitosis.yaml --device cuda \
        --batch-size 4 --steps 30 --warmup 5 --json
    python benchmarks/bench_train.py --config configs/recipes/default/04_mitosis.yaml --device cuda \
        --batch-size 16 --steps 30 --warmup 5 --json
    python benchmarks/bench_train.py --device cuda --batch-size 2 --patch-size 64 256 256 \
        --steps 10 --warmup 3 --json
    python benchmarks/bench_train.py --config configs/recipes/default/04_mitosis.yaml --threads 16 \
        --batch-size 4 --steps 5 --warmup 1 --json' > "$OUT/bench_train.jsonl"
  cat "$OUT/bench_train.jsonl"

  log "inference"
  timeout 150 python benchmarks/bench_infer.py throughput --device cuda --threads 8 \
      --methods ours-bf16 ours-fp32 monai-bf16 \
      --sizes 64x512x512 128x1024x1024 --json "$OUT/bench_infer_cuda.json"
fi

log "training data"
DATA=runs/sim_fibroblast_gpu
# at most 4 minutes, and leave 90 s for training
budget=$(( TOTAL - $(elapsed) - 90 )); (( budget > 240 )) && budget=240; (( budget < 30 )) && budget=30
timeout "$budget" scripts/make_gpu_data.sh "$DATA"
log "torchrun smoke run"
head -5 "$DATA/manifest_mitosis.csv" > "$DATA/manifest_small.csv"
grep ",val," "$DATA/manifest_mitosis.csv" | head -1 >> "$DATA/manifest_small.csv"
log "training (deadline $TOTAL s)"
MINUTES=$(python -c "print(max(1.0, ($TOTAL - $(elapsed) - 75) / 60))")
left=$(( TOTAL - $(elapsed) - 10 )); (( left < 60 )) && left=60
timeout "$left" scripts/train_gpu.sh "$MINUTES" "$DATA" &
gpu_stages=$!
timeout 120 python -m torch.distributed.run --nproc-per-node 1 -m ri2fl.cli.main train configs/recipes/default/06_gpu.yaml \
    --data "$DATA/manifest_small.csv" --epochs 2 --steps-per-epoch 5 -o runs/ddp_smoke \
    > "$OUT/torchrun_smoke.log" 2>&1
log "torchrun exit $?"
wait $gpu_stages
log "GPU stages exit $?"
for run in default_gpu segment_gpu; do
  cp "runs/$run/best.pt" "$OUT/${run}_best.pt" 2>/dev/null
  cp "runs/$run/log.csv" "$OUT/${run}_log.csv" 2>/dev/null
  tail -5 "runs/$run.log"
done
log "done"
