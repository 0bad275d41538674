#!/usr/bin/env bash
# The GPU suite: one script, at most 8 minutes on one CUDA GPU, three measurements:
#   1. time to 94 % held-out accuracy of the cifar-fast recipe (benchmarks/time_to_accuracy.py)
#      on a class-folder CIFAR-10 copy, 10 % held out;
#   2. resnetv2_50 training img/s against timm's, bf16 autocast + channels_last, without and
#      with torch.compile (benchmarks/gpu_throughput.py);
#   3. preact ResNet-164 training img/s against pytorchcv's, same settings (same script).
#
#   bash benchmarks/gpu_suite.sh DATA_DIR            # on a CUDA machine; results in $OUT
#   bash benchmarks/gpu_suite.sh --smoke DATA_DIR    # a few seconds on a CPU: checks the script
#
# DATA_DIR holds one folder per class (e.g. the CIFAR-10 training JPEGs). Environment: OUT
# (default gpu-suite/), PYTHON (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
data=${1:?usage: gpu_suite.sh [--smoke] DATA_DIR (one folder per class)}
out=${OUT:-gpu-suite}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if [ "$smoke" = 1 ]; then
  # Same commands, tiny: one epoch of a depth-10 net with 8 channels on the CPU.
  train_args="--recipe cifar-fast --device cpu --epochs 1 --depth 10 --widths 8,8,8,8 --stem-width 8 --batch-size 16"
  throughput_args="--smoke"
  budget=300
else
  python_has_cuda=$("$py" -c 'import torch; print(int(torch.cuda.is_available()))')
  if [ "$python_has_cuda" != 1 ]; then
    echo "gpu_suite.sh: no CUDA device is visible to $py; use --smoke to check the script on a CPU" >&2
    exit 2
  fi
  train_args="--recipe cifar-fast --device cuda"
  throughput_args="--device cuda --compile both"
  budget=270
fi

echo "== 1/2: cifar-fast, time to 94 % held-out (budget ${budget} s)"
timeout "$budget" "$py" benchmarks/time_to_accuracy.py --data "$data" --val-split 0.1 \
  --target 0.94 --out "$out/time-to-accuracy" --run "cifar-fast=$train_args" \
  | tee "$out/time_to_accuracy.txt"

echo "== 2/2: training img/s against timm and pytorchcv (budget ${budget} s)"
timeout "$budget" "$py" benchmarks/gpu_throughput.py $throughput_args | tee "$out/throughput.txt"
echo "gpu_suite.sh: done; results in $out/"
