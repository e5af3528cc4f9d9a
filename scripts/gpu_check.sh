#!/usr/bin/env bash
# The GPU check in one go (a few minutes on one GPU): the GPU tests (`pytest -m gpu`: data on
# the device, bf16 mixed precision, model.compile, the data.on_device memory check, exact
# resume), the training-speed benchmark on the device, the speedrun over 5 seeds; then one table.
#
#   bash scripts/gpu_check.sh     # MNIST from $LITLAB_DATA_DIR, shared/data, ../shared/data or
#                                 # ./data (<dir>/MNIST/raw/, the IDX files or their .gz copies)
#
# Figures and logs go to $OUT (or $TMPDIR/litlab-gpu-check). Exit status 1 if any part failed.
# Each part has its own time limit; together at most 7.5 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-${TMPDIR:-/tmp}/litlab-gpu-check}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

for dir in "${LITLAB_DATA_DIR:-}" shared/data ../shared/data data; do
  if [ -n "$dir" ] && ls "$dir"/MNIST/raw/train-images-idx3-ubyte* >/dev/null 2>&1; then
    LITLAB_DATA_DIR="$(cd "$dir" && pwd)"
    export LITLAB_DATA_DIR
    break
  fi
done
echo "LITLAB_DATA_DIR=${LITLAB_DATA_DIR:-none (MNIST would be downloaded)}"
if ! python -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  echo "No CUDA GPU is visible: nothing to check." >&2
  exit 2
fi
python -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"

status=0
timeout 180 python -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
timeout 150 python scripts/bench.py --device cuda --epochs 3 --out "$out/bench_cuda.json" ||
  status=1
timeout 120 python scripts/bench.py --device cuda --speedrun --seeds 5 \
  --out "$out/speedrun_cuda.json" || status=1
python scripts/bench_table.py "$out/gpu_tests.log" "$out"/bench_cuda.json "$out"/speedrun_cuda.json
exit "$status"
