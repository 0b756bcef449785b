#!/usr/bin/env bash
# Experiment (b) models (spec section 5): RI2FL, BF2FL and DIC2FL trained with the default
# model's network and recipe (configs/default_coarse.yaml) on the same simulated fibroblast
# phantoms, for the same number of steps, so that only the input contrast differs. The
# brightfield and DIC z-stacks are synthesised by Fourier optics (Abbe) from each phantom.
# They are not shipped; experiment (b) compares them on new held-out FOVs:
#   python scripts/experiments/b_contrasts.py --ri runs/ri2fl_compare --bf runs/bf2fl --dic runs/dic2fl
#
# Usage (from the repository root): scripts/train_baselines.sh [N_TRAIN_FOVS]
set -euo pipefail
N_TRAIN="${1:-6}"
DATA=runs/sim_fibroblast_bfdic

export OMP_NUM_THREADS=1 RI2FL_NO_PROGRESS=1
[ -f "$DATA/manifest.csv" ] || python scripts/make_sim_data.py "$DATA" --cell-types fibroblast \
    --train "$N_TRAIN" --val 1 --shape 64 256 256 --modalities bf dic
for config in compare_ri baseline_bf baseline_dic; do
    out=$(python -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['out'])" "configs/$config.yaml")
    resume=()
    [ -f "$out/last.pt" ] && resume=(--resume)
    ri2fl train "configs/$config.yaml" --data "$DATA" --out "$out" "${resume[@]}"
done
