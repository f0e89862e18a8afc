#!/usr/bin/env bash
# On the GPU machine, over the bundle gpu_bundle.sh made: the --streams figure of issue 4.
# Builds a ResNet-50 FP16 engine at batch 8 and runs it with --streams=1,2,4 (one context per
# stream over one engine, CUDA graphs), printing the throughput line of each run.
# Usage: bash scripts/gpu_streams.sh MODEL.onnx [batch]   (MODEL's input is named "input")
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
c=/tmp/kiln_bundle
[ -x "$c/bin/kiln" ] || { mkdir -p "$c" && tar -C "$c" -xJf "$here/${KILN_BUNDLE:-.gpu_carry}/bundle.tar.xz"; }
export LD_LIBRARY_PATH="$c/lib:${LD_LIBRARY_PATH:-}"
onnx=$1; b=${2:-8}
shape=input:${b}x3x224x224
"$c/bin/kiln" --onnx="$onnx" --fp16 --shapes=$shape --saveEngine=/tmp/streams.engine --skipInference >/dev/null || exit 1
for n in 1 2 4; do
  echo "== --streams=$n, batch $b, FP16, CUDA graphs"
  "$c/bin/kiln" --loadEngine=/tmp/streams.engine --shapes=$shape --streams=$n --useCudaGraph --noDataTransfers \
      --duration=3 --warmUp=500 2>&1 | grep -E "Throughput|GPU Compute Time: min|FAILED|\[E\]"
done
