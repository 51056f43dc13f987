#!/usr/bin/env bash
# Runs the paper's protocol for the experiments in RESULTS.md, one run after the other,
# keeps each run's results.json (less its per-epoch history) under results/ and
# regenerates RESULTS.md's tables.
#   bash results/reproduce.sh [DATA_DIR] [RUNS_DIR]
# RUNS="caltech_vae_standard caltech_vae_vamp" picks configs, SEEDS="0 1 2" the seeds;
# INIT=glorot_uniform runs the initialiser ablation (the configs pin he_normal);
# ABLATION=clamp_bernoulli|k50|data_init|adam changes one more setting of the protocol
# (named in the run's file: CONFIG_INIT_ABLATION_seedN).
# Convolutional configs (RUNS="caltech_convhvae_standard caltech_convhvae_vamp") train for the
# fixed budget CONV_BUDGET (a full run takes days on 2 cores; RESULTS.md names the budget in
# the run's row); CONV_BUDGET= (empty) runs the full protocol, e.g. on a GPU.
# Static MNIST (RUNS="static_mnist_vae_standard static_mnist_vae_vamp") runs the full protocol
# too: hours to a day per run on 2 cores, resumable (results/record_progress.py RUNS_DIR
# records how far an unfinished run got, for RESULTS.md; with --with_checkpoints also its
# checkpoints, in results/unfinished/NAME/, from which this script resumes it on another machine).
# A run with results in RUNS_DIR is not run again; an interrupted one resumes. Each finished
# run's per-image test log-likelihoods are kept beside its results, in results/per_image/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-../shared/data}
RUNS_DIR=${2:-runs}
SEEDS=${SEEDS:-0 1 2}
INIT=${INIT:-he_normal}
ABLATION=${ABLATION:-}
CONV_BUDGET=${CONV_BUDGET---epochs=15 --warmup_epochs=10 --eval_samples=100}
declare -A SHORT=([he_normal]=he [glorot_uniform]=glorot)
declare -A ABLATION_FLAGS=([clamp_bernoulli]=--clamp_bernoulli [k50]=--num_components=50
                           [data_init]=--pseudo_inputs_init=data [adam]=--optimizer=adam)
if [ -n "$ABLATION" ] && [ -z "${ABLATION_FLAGS[$ABLATION]:-}" ]; then
  echo "Unknown ABLATION=$ABLATION; valid: ${!ABLATION_FLAGS[*]}" >&2; exit 2
fi

run() {  # run CONFIG SEED [extra flags]
  local config=$1 seed=$2; shift 2
  local name="${config}_${SHORT[$INIT]}${ABLATION:+_$ABLATION}_seed${seed}"
  if [ ! -f "$RUNS_DIR/$name/results.json" ]; then
    if [ ! -d "$RUNS_DIR/$name/checkpoints/state" ] && [ -d "results/unfinished/$name/checkpoints" ]; then
      mkdir -p "$RUNS_DIR/$name"  # a run carried over in the repository (record_progress.py --with_checkpoints)
      cp -r "results/unfinished/$name/." "$RUNS_DIR/$name/"
    fi
    python -m trainers.train --config="$config" --kernel_initializer="$INIT" --seed="$seed" \
      --data_dir="$DATA_DIR" --output_dir="$RUNS_DIR/$name" --verbose=2 \
      ${ABLATION:+${ABLATION_FLAGS[$ABLATION]}} "$@" > "$RUNS_DIR/$name.log" 2>&1
  fi
  python -c 'import json, sys; r = json.load(open(sys.argv[1])); r.pop("history", None); json.dump(r, open(sys.argv[2], "w"), indent=1)' \
    "$RUNS_DIR/$name/results.json" "results/$name.json"
  python results/keep_per_image.py "$RUNS_DIR/$name" "results/per_image/$name.npz"
}

mkdir -p "$RUNS_DIR"
for config in ${RUNS:-caltech_vae_standard caltech_vae_vamp freyfaces_vae_standard freyfaces_vae_vamp \
                     caltech_hvae_standard caltech_hvae_vamp}; do
  for seed in $SEEDS; do
    case "$config" in
      *convhvae*|*pixelhvae*) run "$config" "$seed" $CONV_BUDGET ;;
      *) run "$config" "$seed" ;;
    esac
  done
done
python results/make_table.py
python results/tail_figures.py
