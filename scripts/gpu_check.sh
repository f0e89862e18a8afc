#!/usr/bin/env bash
# Runs on the GPU machine, over the bundle scripts/gpu_bundle.sh made (.gpu_carry/): the unit
# tests, the ONNX node suite through CUDA engines (each case built, serialized, reloaded, run on
# the GPU, compared with ONNX's expected outputs), and torchvision models exported there with
# its PyTorch, through CUDA engines against PyTorch FP32. Logs go to $OUT.
# Usage (device tool, carry [".gpu_carry"]): bash scripts/gpu_check.sh [node-filter-regex] [models|none]
# KILN_BUNDLE=<folder> picks another bundle folder (what gpu_bundle.sh BUILD_DIR FOLDER made).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
c=/tmp/kiln_bundle
carry=$here/${KILN_BUNDLE:-.gpu_carry}
mkdir -p "$c" && tar -C "$c" -xJf "$carry/bundle.tar.xz"
out=${OUT:-$here/gpu_out}
mkdir -p "$out"
filter=${1:-.}
models=${2:-resnet50}
export LD_LIBRARY_PATH="$c/lib:${LD_LIBRARY_PATH:-}"
# The unit tests read their data from the source path they were built in.
[ -e /work/main ] || { mkdir -p /work && ln -s "$here" /work/main; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
mkdir -p /tmp/kiln_data && tar -C /tmp/kiln_data -xJf "$carry/node.tar.xz"
"$c/bin/kiln_unit_tests" --gtest_brief=1 > "$out/unit.log" 2>&1; tail -3 "$out/unit.log"
"$c/bin/kiln_gpu_tests" > "$out/gpu_tests.log" 2>&1; grep -E "OK|FAILED|PASSED|SKIPPED" "$out/gpu_tests.log" | tail -6
"$c/bin/kiln_run_suite" --suite=/tmp/kiln_data/node --via-engine=cuda --jobs=8 --filter="$filter" \
    --name="onnx node conformance (CUDA engines)" --log="$out/node_cuda.log" > /dev/null
tail -1 "$out/node_cuda.log" | tee "$out/summary.txt"
if [ "$models" != "none" ]; then
  python3 "$here/tests/models/export_torchvision.py" /tmp/kiln_models ${models//,/ } > "$out/export.log" 2>&1
  "$c/bin/kiln_run_suite" --suite=/tmp/kiln_models --via-engine=cuda --metric=rel_l2 --rel-l2=1e-3 --jobs=1 \
      --name="torchvision models (CUDA engines, rel L2 <= 1e-3)" --log="$out/models_cuda.log" >/dev/null
  cat "$out/models_cuda.log" | tee -a "$out/summary.txt"
  "$c/bin/kiln_run_suite" --suite=/tmp/kiln_models --via-engine=cuda --precision=fp16 --metric=rel_l2 --rel-l2=1e-2 \
      --jobs=1 --name="torchvision models (CUDA engines, FP16, rel L2 <= 1e-2)" --log="$out/models_cuda_fp16.log" >/dev/null
  cat "$out/models_cuda_fp16.log" | tee -a "$out/summary.txt"
fi
