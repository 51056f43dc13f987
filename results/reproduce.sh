#!/usr/bin/env bash
# Runs the paper's protocol for the experiments in RESULTS.md, one after the other,
# keeps each run's results.json under results/ and regenerates RESULTS.md's table.
#   bash results/reproduce.sh [DATA_DIR] [RUNS_DIR]
# RUNS="caltech_hvae_standard caltech_hvae_vamp" picks some of them (e.g. to run two
# chains side by side on two cores).
# A run with results in RUNS_DIR is not run again; an interrupted one resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-../shared/data}
RUNS_DIR=${2:-runs}
STATIC_MNIST_EPOCHS=${STATIC_MNIST_EPOCHS:-40}  # a full static-MNIST run does not fit on a 2-core CPU

run() {  # run NAME [extra flags]
  local name=$1; shift
  if [ ! -f "$RUNS_DIR/$name/results.json" ]; then
    python -m trainers.train --flagfile="configs/$name.cfg" --data_dir="$DATA_DIR" \
      --output_dir="$RUNS_DIR/$name" --verbose=2 "$@" 2>&1 | tee -a "$RUNS_DIR/$name.log" | grep -v "^Epoch\|step -" || true
  fi
  # keep a small copy: everything but the per-epoch history
  python -c 'import json, sys; r = json.load(open(sys.argv[1])); r.pop("history", None); json.dump(r, open(sys.argv[2], "w"), indent=1)' \
    "$RUNS_DIR/$name/results.json" "results/$name.json"
}

mkdir -p "$RUNS_DIR"
for name in ${RUNS:-caltech_vae_standard caltech_vae_vamp freyfaces_vae_standard freyfaces_vae_vamp \
                   caltech_hvae_standard caltech_hvae_vamp static_mnist_vae_vamp}; do
  if [ "$name" = static_mnist_vae_vamp ]; then
    run "$name" --epochs="$STATIC_MNIST_EPOCHS"
  else
    run "$name"
  fi
done
python results/make_table.py
