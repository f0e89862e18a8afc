#!/usr/bin/env bash
# Device run for issue 19 items 4-5 (branch tactics), over the bundle gpu_bundle.sh made into
# .gpu_carry_tactics (KILN_BUNDLE), with main's kiln as kiln_main.xz beside it: kiln_gpu_tests, the ONNX node suite through CUDA engines, --streams 1/2/4 on
# ResNet-50 and BERT-base b8 FP16 without CUDA graphs, and whether a loaded engine calls cudnnFind.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
carry=$here/${KILN_BUNDLE:-.gpu_carry_tactics}
c=/tmp/kiln_bundle
mkdir -p "$c" && tar -C "$c" -xJf "$carry/bundle.tar.xz"
export LD_LIBRARY_PATH="$c/lib:${LD_LIBRARY_PATH:-}"
out=${OUT:-/tmp/out}; mkdir -p "$out"
[ -e /work/main ] || { mkdir -p /work && ln -s "$here" /work/main; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
steps=${1:-gpu,node,streams,find}
t0=$(date +%s); el() { echo "[t+$(( $(date +%s) - t0 ))s] $*"; }

# Models first, in the background (CPU work while the GPU tests run).
( cd "$here/bench" && timeout 200 python3 - > "$out/export.log" 2>&1 <<'PY'
import models, export, torch
for name in ("resnet50", "bert_base"):
    spec = models.BY_NAME[name]
    m = spec.build()
    ex = spec.make_inputs(2)
    export.export_torchscript(m, ex, spec.input_names, spec.output_names, f"/tmp/{name}.onnx")
    print("exported", name, flush=True)
PY
) &
exp=$!

# Correctness first, the node suite and the GPU tests side by side (no timing in either).
if [[ $steps == *node* ]]; then
  mkdir -p /tmp/kiln_data && tar -C /tmp/kiln_data -xJf "$carry/node.tar.xz"
  ( timeout 150 "$c/bin/kiln_run_suite" --suite=/tmp/kiln_data/node --via-engine=cuda --jobs=8 \
      --name="onnx node conformance (CUDA engines)" --log="$out/node_cuda.log" > /dev/null 2>&1; echo "node suite rc=$?" > "$out/node_rc" ) &
  node=$!
fi
if [[ $steps == *gpu* ]]; then
  KILN_LOAD_SECONDS=3 timeout 150 "$c/bin/kiln_gpu_tests" > "$out/gpu_tests.log" 2>&1; el "kiln_gpu_tests rc=$?"
  grep -E "^\[  PASSED|^\[  FAILED|FAILED  \]|  layer |loaded engine" "$out/gpu_tests.log" | head -30
fi
if [[ $steps == *node* ]]; then
  wait $node; el "$(cat "$out/node_rc")"; tail -1 "$out/node_cuda.log"
fi
wait $exp; el "export: $(grep -c exported "$out/export.log") models"; tail -2 "$out/export.log"
k=$c/bin/kiln
if [[ $steps == *streams* ]]; then
  # This branch's kiln, then main's (kiln_main.xz: the baseline, same machine), each building its own engines.
  xz -dc "$carry/kiln_main.xz" > /tmp/kiln_main && chmod +x /tmp/kiln_main
  for bin in "$k" /tmp/kiln_main; do
    tag=$([ "$bin" = "$k" ] && echo tactics || echo main)
    for spec in "resnet50 input:8x3x224x224" "bert_base input_ids:8x128,attention_mask:8x128"; do
      set -- $spec
      timeout 60 "$bin" --onnx=/tmp/$1.onnx --fp16 --shapes=$2 --saveEngine=/tmp/$1_$tag.engine --skipInference --verbose > "$out/build_${1}_$tag.log" 2>&1
      el "$tag built $1 rc=$? ($(grep -c -- '-> tactic cuda' "$out/build_${1}_$tag.log") layers on CUDA, $(grep -c 'runs on the CPU' "$out/build_${1}_$tag.log") fallback, $(grep -c 'differs from the heuristic' "$out/build_${1}_$tag.log") cuBLASLt algos not rebuilt exactly)"
      [ $tag = tactics ] && grep -- '-> tactic cuda' "$out/build_${1}_$tag.log" | sed 's/.*-> tactic //' | sort | uniq -c | sort -rn | head -5
      for n in 1 2 4; do
        echo -n "streams $1 b8 $tag graph=no n=$n: "
        timeout 25 "$bin" --loadEngine=/tmp/$1_$tag.engine --shapes=$2 --streams=$n --noDataTransfers --duration=2 --warmUp=300 2>&1 |
          grep -E "Throughput|FAILED|\[E\]|cannot run here" | head -3
      done
    done
  done
fi
if [[ $steps == *find* ]]; then
  # ResNet-50 FP16 b32: channels-last, so its convolutions are on cuDNN NHWC, whose algorithm
  # cudnnFind times (before this branch: at each context's first execute; now: at build).
  s=input:32x3x224x224
  export CUDNN_LOGDEST_DBG=/tmp/cudnn_build.log CUDNN_LOGLEVEL_DBG=3
  timeout 90 "$k" --onnx=/tmp/resnet50.onnx --fp16 --shapes=$s --saveEngine=/tmp/r50b32.engine --skipInference > "$out/build_r50b32.log" 2>&1
  el "built r50 b32 rc=$?: cudnnFindConvolutionForwardAlgorithmEx calls at build: $(grep -c 'cudnnFindConvolutionForwardAlgorithmEx' /tmp/cudnn_build.log)"
  export CUDNN_LOGDEST_DBG=/tmp/cudnn_load.log
  timeout 60 "$k" --loadEngine=/tmp/r50b32.engine --shapes=$s --iterations=5 --duration=0 --warmUp=0 --noDataTransfers > "$out/load_r50b32.log" 2>&1
  el "loaded+ran r50 b32 rc=$?: cudnnFind calls: $(grep -c 'cudnnFind' /tmp/cudnn_load.log), cudnnConvolutionForward/BiasActivation calls: $(grep -cE 'cudnnConvolution(Forward|BiasActivationForward)\b' /tmp/cudnn_load.log)"
  unset CUDNN_LOGDEST_DBG CUDNN_LOGLEVEL_DBG
  timeout 60 "$k" --loadEngine=/tmp/r50b32.engine --shapes=$s --iterations=5 --duration=0 --warmUp=0 --noDataTransfers \
      --exportTimes=/tmp/t.json > /dev/null 2>&1
  python3 -c "import json; q=json.load(open('/tmp/t.json')); print('r50 b32 loaded, per-query latency ms (first query first):', [round(x['latencyMs'],2) for x in q[:6]])"
  timeout 60 "$k" --loadEngine=/tmp/r50b32.engine --shapes=$s --verbose --iterations=1 --duration=0 --warmUp=0 2>&1 | grep -m4 -- "-> tactic cuda.conv"
fi
el done
