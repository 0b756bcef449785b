#!/usr/bin/env bash
# Candidate networks trained side by side on one lent GPU within a fixed deadline: the 120
# fibroblast training fields of scripts/train_gpu.sh are simulated on the machine's cores, then
# every CONFIG trains at once (each its own process and loader workers) until the deadline. The
# best checkpoint and log of each run are copied into OUT every 20 s, so a run cut short by
# the machine's time limit still returns what it had learnt.
#
# Usage: scripts/train_gpu_candidates.sh OUT TOTAL_SECONDS CONFIG...   (from the repository root)
# e.g.   scripts/train_gpu_candidates.sh "$OUT" 560 configs/candidate_a.yaml configs/candidate_b.yaml
# (each CONFIG names its own `out` and `finetune`; the rejected candidates of the history are in
# git, e.g. `git show 5d669c2:configs/wide_gpu.yaml`)
# On a bare GPU image run with PYTHONPATH=/tmp/site:$PWD/src after installing the carried wheels
# (benchmarks/gpu_session.sh says which). DATA names another manifest folder, MANIFEST the
# manifest in it (default manifest_mitosis.csv) and MAKE_DATA the script that simulates DATA when
# that manifest is missing (default scripts/make_gpu_data.sh); TRAIN_ARGS adds options to every
# `ri2fl train`; LOAD_SECONDS (default 120) is the time left for reading the fields before
# the first epoch.
set -uo pipefail
OUT="${1:?output folder}"
TOTAL="${2:?deadline in seconds}"
shift 2
START=$(date +%s)
DATA="${DATA:-runs/sim_fibroblast_gpu}"
MANIFEST="${MANIFEST:-manifest_mitosis.csv}"
MAKE_DATA="${MAKE_DATA:-scripts/make_gpu_data.sh}"
mkdir -p "$OUT" runs
exec > >(tee -a "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 RI2FL_NO_PROGRESS=1
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[$(elapsed) s] $*"; }
run_name() { python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['out'])" "$1"; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
log "training data"
[ -f "$DATA/$MANIFEST" ] || timeout 240 "$MAKE_DATA" "$DATA" | tail -1

# --max-minutes counts from the first epoch: reading the fields into memory comes before it
# (100-120 s for 110 fields of 64 x 256 x 256 read by two trainers at once on an H200 machine)
minutes=$(python3 -c "print(round(max(1.0, ($TOTAL - $(elapsed) - 50 - ${LOAD_SECONDS:-120}) / 60), 2))")
log "training ${minutes} min: $*"
pids=()
outs=()
for config in "$@"; do
  out=$(run_name "$config")
  outs+=("$out")
  python3 -m ri2fl.cli.main train "$config" --data "$DATA/$MANIFEST" \
      --max-minutes "$minutes" ${TRAIN_ARGS:-} > "$out.log" 2>&1 &
  pids+=($!)
done
collect() {
  for out in "${outs[@]}"; do
    name=$(basename "$out")
    cp "$out/best.pt" "$OUT/${name}_best.pt" 2>/dev/null
    cp "$out/log.csv" "$OUT/${name}_log.csv" 2>/dev/null
  done
}
( while sleep 20; do collect; done ) &
collector=$!
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
kill "$collector" 2>/dev/null
collect
for out in "${outs[@]}"; do tail -3 "$out.log"; done
log "done (exit $status)"
exit "$status"
