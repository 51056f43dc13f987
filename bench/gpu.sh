#!/usr/bin/env bash
# The GPU check of issue 12, on a machine with one GPU, in under 8 minutes:
#
#   bash bench/gpu.sh [OUTPUT_DIR]        # default: $OUT or /tmp/tfvamp-gpu
#
# 1. TensorFlow sees the GPU (else it stops here);
# 2. trains the convHVAE + VampPrior on Caltech for 3 epochs as a user would
#    (python -m trainers.train, --strategy=auto, XLA, bfloat16) while nvidia-smi
#    samples the GPU's utilisation; prints the step time (epoch seconds / 41 steps);
# 3. times the PixelHVAE's importance-sampled evaluation (S=5000) on 300 test images;
# 4. runs the GPU-marked tests.
# Every step has its own time limit; the log of each is kept in OUTPUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/tfvamp-gpu}}
mkdir -p "$out"
export PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2
status=0

echo "== 1. GPU visible to TensorFlow"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  echo "nvidia-smi not found: no utilisation figures"
fi
if ! timeout 120 python -c "
import tensorflow as tf, sys
gpus = tf.config.list_physical_devices('GPU')
print('TensorFlow', tf.__version__, 'GPUs:', gpus)
sys.exit(0 if gpus else 1)"; then
  echo "TensorFlow sees no GPU: stopping."; exit 1
fi

echo "== 2. convHVAE + VampPrior, Caltech, 3 epochs, --strategy=auto, XLA, bfloat16"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
  > "$out/utilisation.csv" 2>/dev/null &
smi=$!
rm -rf "$out/convhvae"
timeout 200 python -m trainers.train --dataset=caltech --model=convhvae --prior=vamp --epochs=3 \
  --strategy=auto --jit_compile --precision=bfloat16 --eval_samples=1 --sample_every=0 \
  --output_dir="$out/convhvae" > "$out/train.log" 2>&1 || { echo "training failed:"; status=1; }
kill $smi 2>/dev/null
cat "$out/train.log"
python - "$out" <<'PY'
import re, sys
out = sys.argv[1]
seconds = [float(s) for s in re.findall(r", ([0-9.]+) s, best", open(f"{out}/train.log").read())]
if seconds:
    print(f"epoch seconds {seconds}; after the first (compilation): "
          f"{1e3 * min(seconds[1:] or seconds) / 41:.1f} ms per step (41 steps of 100 images)")
rows = [line.split(",") for line in open(f"{out}/utilisation.csv") if line.strip()]
busy = [float(r[0]) for r in rows if r[0].strip().isdigit()]
if busy:
    print(f"GPU utilisation during the run: median {sorted(busy)[len(busy) // 2]:.0f}%, "
          f"max {max(busy):.0f}% over {len(busy)} samples; memory up to {max(float(r[1]) for r in rows):.0f} MiB")
PY

echo "== 3. PixelHVAE IS evaluation, S=5000, 300 Caltech test images"
timeout 150 python bench/eval_time.py --model=pixelhvae --prior=vamp --images=300 --samples=5000 \
  || { echo "evaluation failed or ran out of time"; status=1; }

echo "== 4. GPU-marked tests"
timeout 120 python -m pytest -m gpu -q -p no:cacheprovider || status=1
exit $status
