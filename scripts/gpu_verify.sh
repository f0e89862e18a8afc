#!/usr/bin/env bash
# One device call that checks main on the GPU after a change to passes, kernels or the runtime
# (written 2026-12-08 after the first post-merge run found the BERT/ViT fusion regression):
# GPU tests (load, tactics, tuning), the CUDA node suite and Python on the GPU (FULL=1), the
# models' pass counters (fusions fired, CPU fallbacks), the zoo benchmark (ZOO=models, default all),
# python_overhead, --streams 1/2/4 and CUDA tuning cold/cold/warm on BERT-base b8 and ResNet-50 b32.
# Everything lands in /tmp/o, packed into $OUT/all.tgz (the device tool returns at most 8 files).
# Needs the bundle: KILN_PY_BUILD=build-py312 bash scripts/gpu_bundle.sh (into .gpu_carry, carried).
# Env: END (seconds the whole run may take, default 570), FULL (0: skip node suite and Python),
# XMODELS (models exported for the pass counters), ZOO, LOADS (KILN_LOAD_SECONDS for the load tests).
#   device run: END=570 bash scripts/gpu_verify.sh   (carry .gpu_carry, timeout 600)
set -uo pipefail
R=$(cd "$(dirname "$0")/.." && pwd); cd "$R"
FINAL=$OUT; O=/tmp/o; mkdir -p $O/g; S=$O/summary.txt
T0=$(date +%s); END=${END:-570}; el() { echo "[t+$(( $(date +%s) - T0 ))s] $*" | tee -a $S; }
pack() { cd /tmp && rm -f o/g/*.data; tar -czf $FINAL/all.tgz o; cp $S $FINAL/; }
trap pack EXIT
c=/tmp/kiln_bundle; mkdir -p $c && tar -C $c -xJf .gpu_carry/bundle.tar.xz; export LD_LIBRARY_PATH=$c/lib:${LD_LIBRARY_PATH:-}
k=$c/bin/kiln
( cd bench && PYTHONUNBUFFERED=1 timeout 240 python3 - > $O/export.log 2>&1 <<'PY'
import models, export, torch, onnx, os, time
for name in os.environ.get("XMODELS", "resnet50,bert_base,vit_b_16,gpt2,llama_like,t5_encoder,swin_t,convnext_tiny,yolo_like,densenet121").split(","):
    try:
        t=time.time(); spec=models.BY_NAME[name]; m=spec.build().eval(); ex=spec.make_inputs(2)
        p=f"/tmp/x/{name}.onnx"; os.makedirs("/tmp/x",exist_ok=True)
        export.export_torchscript(m, ex, spec.input_names, spec.output_names, p)
        mp=onnx.load(p); onnx.save_model(mp, f"/tmp/o/g/{name}.onnx", save_as_external_data=True, all_tensors_to_one_file=True, location=f"{name}.data", size_threshold=1024)
        open(f"/tmp/x/{name}.shapes","w").write(",".join(f"{n}:{'x'.join(map(str,e.shape))}" for n,e in zip(spec.input_names, ex)))
        print("exported", name, round(time.time()-t,1), flush=True)
    except Exception as e:
        print("FAILED", name, repr(e)[:300], flush=True)
PY
) &
ex=$!
KILN_LOAD_SECONDS=${LOADS:-8} timeout 100 $c/bin/kiln_gpu_tests --gtest_filter='CudaLoad.*:CudaTuning.*:CudaTactic*:CudaInt8*' > $O/gpu_tests.log 2>&1; el "gpu tests rc=$?"
grep -E "^\[  PASSED|^\[  FAILED|FAILED  \]|Which is|Failure|candidates|\[load\]" $O/gpu_tests.log | grep -v "^\[W\]" | head -40 | tee -a $S
if [ "${FULL:-1}" = 1 ]; then
mkdir -p /tmp/kiln_data && tar -C /tmp/kiln_data -xJf .gpu_carry/node.tar.xz
# KILN_CUDA_INT8=1: the Q/DQ and QLinear node cases check the CUDA integer kernels too (launch.h).
( KILN_CUDA_INT8=1 timeout 150 $c/bin/kiln_run_suite --suite=/tmp/kiln_data/node --via-engine=cuda --jobs=8 --name="onnx node conformance (CUDA engines)" --log=$O/node_cuda.log > $O/node_cuda.out 2>&1; echo "rc=$?" >> $O/node_cuda.out ) &
nodejob=$!
# Python on the GPU (issue 14): unit tests, the classic script on a CUDA engine, torch_resnet, overhead.
export PYTHONPATH=$c/python:${PYTHONPATH:-}
( cd tests/python && PYTHONPATH=$c/python:. KILN_CLI=$k timeout 100 python3 -m unittest -v test_gpu test_build_run test_tensors > $O/py_tests.log 2>&1; echo "rc=$?" >> $O/py_tests.log )
el "py tests: $(tail -1 $O/py_tests.log) $(grep -E '^(OK|FAILED)' $O/py_tests.log)"; grep -E "^(FAIL|ERROR):" $O/py_tests.log | head -10 | tee -a $S
python3 -c "import numpy as np; np.save('/tmp/in.npy', np.random.default_rng(0).standard_normal((4,3,224,224)).astype(np.float32))"
timeout 90 python3 examples/python/classic_onnx_fp16.py /tmp/x/resnet50.onnx /tmp/in.npy --engine /tmp/cl.engine --outputs /tmp/cl.npz > $O/classic.log 2>&1; el "classic script (CUDA) rc=$?: $(tail -2 $O/classic.log | tr '\n' ' ')"
timeout 90 python3 examples/python/torch_resnet.py --model resnet50 --batch 8 > $O/torch_resnet.log 2>&1; el "torch_resnet rc=$?: $(tail -3 $O/torch_resnet.log | tr '\n' ' ')"
wait $nodejob; el "node suite (CUDA): $(tail -2 $O/node_cuda.out | tr '\n' ' ')"
fi
wait $ex; el "exports done"; cat $O/export.log | grep -E "exported|FAILED" | tee -a $S
left() { echo $(( $1 - ($(date +%s) - T0) )); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
cd /tmp/x && for f in *.onnx; do
  timeout 60 $k --onnx=$f --fp16 --shapes=$(cat ${f%.onnx}.shapes) --skipInference --verbose > $O/build_${f%.onnx}.log 2>&1
  el "$f rc=$? $(grep -c -- '-> tactic cuda' $O/build_${f%.onnx}.log) cuda layers, $(grep -c 'runs on the CPU' $O/build_${f%.onnx}.log) cpu; $(grep -E 'pass (fuse_attention|fuse_mha|canonicalize_reshape):' $O/build_${f%.onnx}.log | sed 's/.*pass //' | tr '\n' ' ')"
done
cd "$R"
el "zoo gets $(left $((END-70)))s"
OUT=$O/zoo timeout $(left $((END-70))) bash scripts/gpu_bench.sh --no-compile --exporters torchscript --models ${ZOO:-all} > $O/zoo.txt 2>&1
el "zoo rc=$?"; tail -16 $O/zoo/bench/results.md >> $S
[ "${FULL:-1}" = 1 ] && PYTHONPATH=$c/python timeout 60 python3 bench/python_overhead.py --kiln $k > $O/overhead.log 2>&1; el "overhead rc=$?"; tail -12 $O/overhead.log | tee -a $S
unset PYTHONPATH
for spec in "bert_base input_ids:8x128,attention_mask:8x128" "resnet50 input:32x3x224x224"; do
  set -- $spec; n=$1; s=$2
  [ $(left $END) -lt 75 ] && { el "no time left for tuning $n"; continue; }
  [ -f /tmp/x/$n.onnx ] || continue
  timeout 60 $k --onnx=/tmp/x/$n.onnx --fp16 --shapes=$s --saveEngine=/tmp/${n}_def.engine --skipInference > $O/def_$n.log 2>&1
  for run in a b warm; do
    tc=/tmp/tc_${n}_$run; [ $run = warm ] && tc=/tmp/tc_${n}_a
    t=$(date +%s%N)
    timeout 120 $k --onnx=/tmp/x/$n.onnx --fp16 --shapes=$s --builderOptimizationLevel=3 --timingCacheFile=$tc \
      --saveEngine=/tmp/${n}_t$run.engine --exportLayerInfo=$O/li_${n}_$run.json --skipInference --verbose > $O/tune_${n}_$run.log 2>&1
    el "tune $n $run rc=$? build $(ms $t) ms; $(grep -m1 'tactic timing' $O/tune_${n}_$run.log)"
  done
  python3 - $O/li_${n}_a.json $O/li_${n}_b.json $O/li_${n}_warm.json <<'PY' 2>&1 | tee -a $S
import json,sys
def tac(p):
    L=json.load(open(p))["Layers"]
    return [(l.get("Name"),l.get("TacticName"),l.get("TacticTimeMs"),l.get("RunnerUp"),l.get("RunnerUpTimeMs")) for l in L]
a,b,w=(tac(p) for p in sys.argv[1:])
print("layers",len(a),"a==b",[x[:2] for x in a]==[x[:2] for x in b],"a==warm",[x[:2] for x in a]==[x[:2] for x in w], "tuned", sum(1 for x in a if x[3]))
for x,y in zip(a,b):
    if x[:2]!=y[:2]: print("  differs:",x,"|",y[1:])
PY
  # Host time per launch without a CUDA graph (KILN_HOST_TIMES, cuda_context.h): where the
  # enqueue's host overhead goes, per op and tactic family.
  KILN_HOST_TIMES=1 timeout 25 $k --loadEngine=/tmp/${n}_def.engine --shapes=$s --noDataTransfers --duration=1 --warmUp=200 \
    2>&1 | grep -A12 "KILN_HOST_TIMES" | tee -a $S
  for nst in 1 2 4; do
    echo -n "streams $n $s def graph=no n=$nst: " | tee -a $S
    timeout 25 $k --loadEngine=/tmp/${n}_def.engine --shapes=$s --streams=$nst --noDataTransfers --duration=2 --warmUp=300 2>&1 | grep -E "Throughput|\[E\]" | head -2 | tr '\n' ' ' | tee -a $S; echo | tee -a $S
  done
  for e in def ta tb twarm; do
    echo -n "speed $n $e: " | tee -a $S
    timeout 30 $k --loadEngine=/tmp/${n}_$e.engine --shapes=$s --noDataTransfers --useCudaGraph --duration=3 2>&1 | grep -E "GPU Compute Time|\[E\]" | tr '\n' ' ' | tee -a $S; echo | tee -a $S
  done
done
