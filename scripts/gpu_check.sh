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
  # The zoo exported with the machine's PyTorch, both exporters (tests/models/export_zoo.py); each
  # export on kiln's CPU backend (1e-4), CUDA FP32 (1e-3) and FP16 (1e-2) against PyTorch FP32, and
  # tools/compare.py (kiln CPU vs ONNX Runtime). All in models.log; the figures in summary.txt.
  PYTHONUNBUFFERED=1 python3 "$here/tests/models/export_zoo.py" /tmp/kiln_zoo ${models//,/ } > "$out/export.log" 2>&1
  for run in "cpu 1e-4 fp32" "cuda 1e-3 fp32" "cuda 1e-2 fp16"; do
    set -- $run
    "$c/bin/kiln_run_suite" --suite=/tmp/kiln_zoo --via-engine=$1 --precision=$3 --metric=rel_l2 --rel-l2=$2 --jobs=1 \
        --name="zoo exports ($1 engines, $3, rel L2 <= $2)" --log=/tmp/models_$1_$3.log >/dev/null
    cat /tmp/models_$1_$3.log >> "$out/models.log"
    grep -E "^(PASS|FAIL|UNSUPPORTED|ERROR)" /tmp/models_$1_$3.log | cut -c1-160 >> "$out/summary.txt"
    tail -1 /tmp/models_$1_$3.log | tee -a "$out/summary.txt"
  done
  for m in /tmp/kiln_zoo/test_*/model.onnx; do
    echo "== compare.py $(basename "$(dirname "$m")")" >> "$out/models.log"
    python3 "$here/tools/compare.py" "$m" --kiln="$c/bin/kiln" >> "$out/models.log" 2>&1
    echo "compare.py $(basename "$(dirname "$m")"): $(tail -1 "$out/models.log")" | tee -a "$out/summary.txt"
  done
fi
