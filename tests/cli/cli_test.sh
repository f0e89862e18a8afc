#!/bin/bash
# CLI tests for kiln: round trip, every flag (accepted, mapped, or refused by name), the JSON
# exports, bad input (non-zero exit, one message, no engine file left), dynamic shapes.
# Usage: cli_test.sh <kiln binary> <work dir> [case ...]   (no case: all of them)
set -u
KILN=$1
WORK=$2
shift 2
NODE=/usr/share/libonnx-testdata/data/node
SOFTMAX=$NODE/test_softmax_example/model.onnx
GATHER=$NODE/test_gather_0/model.onnx
ADD=$NODE/test_add_bcast/model.onnx
Q="--duration=0 --warmUp=0 --iterations=2"
PY=/usr/bin/python3
FAILS=0

rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

fail() { echo "FAIL [$CASE]: $*"; FAILS=$((FAILS + 1)); }
# ok <args...>: kiln must exit 0 and print &&&& PASSED.
ok() {
  "$KILN" "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -ne 0 ] || ! grep -q '^&&&& PASSED kiln' out.txt; then
    fail "expected success: kiln $* (rc=$rc): $(cat err.txt)"; return 1
  fi
}
# bad <pattern> <args...>: kiln must exit non-zero, print &&&& FAILED, and one [E] line matching pattern.
bad() {
  local pattern=$1; shift
  "$KILN" "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -eq 0 ]; then fail "expected failure: kiln $*"; return 1; fi
  if ! grep -q '^&&&& FAILED kiln' out.txt; then fail "no &&&& FAILED line: kiln $*"; fi
  if [ "$(grep -c '^\[E\]' err.txt)" != 1 ]; then fail "expected one [E] line: kiln $*: $(cat err.txt)"; fi
  if ! grep -q -- "$pattern" err.txt; then fail "error for kiln $* does not match '$pattern': $(cat err.txt)"; fi
}
has() { grep -q -- "$1" out.txt || fail "output lacks '$1'"; }
no_engine() { ls "$WORK" | grep -q 'e\.engine' && fail "engine file left behind: $(ls "$WORK")"; rm -f "$WORK"/e.engine*; }
pyjson() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$1" || fail "JSON check failed on $1: $2"; }

make_dynamic_model() {
  "$PY" - <<'PYEOF'
import onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 4])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 4])
g = helper.make_graph([helper.make_node('Softmax', ['x'], ['y'], axis=1, name='sm')], 'dyn', [x], [y])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), 'dyn.onnx')
PYEOF
}

case_round_trip() {
  for m in "$SOFTMAX" "$GATHER" "$ADD"; do
    ok --onnx="$m" $Q --exportOutput=direct.json || continue
    ok --onnx="$m" --saveEngine=e.engine --skipInference || continue
    ok --loadEngine=e.engine $Q --exportOutput=loaded.json || continue
    cmp -s direct.json loaded.json || fail "outputs differ after save/load for $m"
    rm -f e.engine direct.json loaded.json
  done
}

case_load_inputs() {
  "$PY" -c "import struct; open('x.bin','wb').write(struct.pack('<3f', 1.0, 2.0, 3.0))"
  ok --onnx="$SOFTMAX" $Q --loadInputs=x:x.bin --exportOutput=o.json
  pyjson o.json "v=d[0]['values']; import math; e=[math.exp(i) for i in (1,2,3)]; assert all(abs(a-b/sum(e))<1e-6 for a,b in zip(v,e)), v"
  has "Input 'x': float 1x3, from 'x.bin'"
  ok --onnx="$SOFTMAX" $Q
  has "random values in \[-1, 1\]"
}

# A node-suite case end to end: its input_*.pb as raw --loadInputs files, the exported output
# against output_0.pb. Reshape's target shape is an input: the output's shape is data-dependent.
case_node_data() {
  local dir=$NODE/test_reshape_reordered_all_dims
  "$PY" - "$dir" <<'PYEOF' || { fail "cannot convert the test data"; return; }
import onnx, onnx.numpy_helper as nh, sys
m = onnx.load(sys.argv[1] + '/model.onnx')
args = []
for i, inp in enumerate(m.graph.input):
    a = nh.to_array(onnx.load_tensor(f'{sys.argv[1]}/test_data_set_0/input_{i}.pb'))
    a.astype(a.dtype.newbyteorder('<')).tofile(inp.name + '.bin')
    args.append(f'{inp.name}:{inp.name}.bin')
open('load_inputs.txt', 'w').write(','.join(args))
PYEOF
  ok --onnx="$dir/model.onnx" $Q --loadInputs="$(cat load_inputs.txt)" --exportOutput=o.json --validate || return
  pyjson o.json "
import onnx, onnx.numpy_helper as nh, numpy as np
e = nh.to_array(onnx.load_tensor('$dir/test_data_set_0/output_0.pb'))
assert d[0]['dimensions'] == 'x'.join(map(str, e.shape)), d[0]['dimensions']
assert np.array_equal(np.array(d[0]['values'], dtype=e.dtype).reshape(e.shape), e)"
  has "max abs error = 0, max rel error = 0"
}

case_exports() {
  ok --onnx="$SOFTMAX" $Q --exportOutput=o.json --exportTimes=t.json --exportProfile=p.json --exportLayerInfo=l.json
  pyjson o.json "assert d[0]['name']=='y' and d[0]['dimensions']=='1x3' and len(d[0]['values'])==3"
  pyjson t.json "assert len(d)>=2 and sorted(d[0])==sorted(['startEnqMs','endEnqMs','startH2DMs','endH2DMs','startComputeMs','endComputeMs','startD2HMs','endD2HMs','h2dMs','computeMs','d2hMs','latencyMs','enqMs']) and d[0]['h2dMs']==0 and d[0]['computeMs']==d[0]['latencyMs']"
  pyjson p.json "assert d[0]['count']>=2 and all(k in d[1] for k in ('name','timeMs','averageMs','medianMs','percentage'))"
  pyjson l.json "L=d['Layers'][0]; assert L['LayerType']=='Softmax' and L['Inputs'][0]['Name']=='x' and L['Outputs'][0]['Name']=='y' and L['Precision'] and L['TacticName'] and d['Bindings']==['x','y']"
  ok --onnx="$SOFTMAX" --skipInference --exportLayerInfo=l2.json --profilingVerbosity=detailed
  pyjson l2.json "assert len(d['Layers'])==1"
}

case_report() {
  ok --onnx="$SOFTMAX" --duration=0 --warmUp=0 --iterations=25 --avgRuns=5 --percentile=50,99 --dumpProfile --dumpOutput --verbose
  for s in "=== Performance summary ===" "Throughput: " "Latency: min = " "Enqueue Time: " "H2D Latency: " \
           "GPU Compute Time: " "D2H Latency: " "Total Host Walltime: " "Total GPU Compute Time: " \
           "Total Activation Memory: " "Engine backend: cpu" "percentile(50%)" "percentile(99%)" "Average on 5 runs" "=== Profile (25 iterations ) ===" \
           "Softmax_0" "Output Tensors:" "pass fold_constants" "tactic cpu.reference.Softmax" "Build phase"; do
    has "$s"
  done
  [ "$(grep -c 'Average on 5 runs' out.txt)" = 5 ] || fail "--avgRuns=5 over 25 queries should give 5 trace lines"
  ok --onnx="$SOFTMAX" --duration=0.3 --warmUp=10 --iterations=1 --exportTimes=t.json
  pyjson t.json "assert d[-1]['endEnqMs']-d[0]['startEnqMs']>=250, (d[0], d[-1])"
  ok --onnx="$SOFTMAX" $Q --streams=3 --exportTimes=t.json
  has "(3 streams together)"
  pyjson t.json "assert len(d)>=6, len(d)"
  ok --onnx="$SOFTMAX" $Q --separateProfileRun --dumpProfile --exportProfile=p.json
  has "Profiling in a separate run"
  pyjson p.json "assert d[0]['count']==2"
}

case_build_flags() {
  ok --onnx="$SOFTMAX" $Q --fp16 --bf16 --int8 --best --noTF32 --memPoolSize=workspace:256 --timingCacheFile=tc.cache \
     --backend=cpu --device=0
  has "Timing cache: 'tc.cache'"
  echo "cache" > calib.cache
  ok --onnx="$SOFTMAX" $Q --int8 --calib=calib.cache
  grep -q "INT8 calibration is not implemented yet" out.txt || fail "--calib notice missing"
  bad "--calib needs --int8" --onnx="$SOFTMAX" --calib=calib.cache
  ok --onnx="$SOFTMAX" $Q --backend=auto
  has "building for the CPU reference backend"
  ok --onnx="$SOFTMAX" $Q --validate
  has "Output 'y' (1x3): max abs error = "
  ok --onnx="$SOFTMAX" --saveEngine=e.engine --skipInference && ok --loadEngine=e.engine --onnx="$SOFTMAX" $Q --validate
  has "max rel error"
  rm -f e.engine
  ok --help; has "--minShapes"
}

case_list_kernels() {
  ok --list-kernels
  for s in "cpu     ai.onnx    Conv " "cpu.reference.Conv" "kiln       ConvAct"; do has "$s"; done
}

case_deprecated() {
  make_dynamic_model
  ok --onnx=dyn.onnx $Q --maxBatch=4 --explicitBatch --workspace=64
  for s in "--maxBatch is deprecated" "--explicitBatch is deprecated" "--workspace is deprecated" "profile 0 \[1x4 .. 4x4\]"; do
    has "$s"
  done
}

# Flags for CUDA engines: ignored with a warning on a CPU engine; --device and --backend=cuda
# need a GPU (tests/cli/cli_gpu_test.sh runs them on one). Unsupported flags are refused by name.
case_refused() {
  ok --onnx="$SOFTMAX" $Q --backend=cpu --useCudaGraph --noDataTransfers --useSpinWait
  has "\[W\] --useCudaGraph, --noDataTransfers, --useSpinWait: ignored, the engine runs on the CPU backend"
  bad "--device=99: no CUDA device 99" --onnx="$SOFTMAX" --device=99
  if ! nvidia-smi -L >/dev/null 2>&1; then
    bad "engine build failed: .*\(--backend=cuda: no usable CUDA device\|CUDA backend is not available\)" \
        --onnx="$SOFTMAX" --backend=cuda
  fi
  ok --onnx="$SOFTMAX" --backend=cpu --saveEngine=e.engine --skipInference
  bad "--backend=cuda: the engine from --loadEngine is a cpu engine" --loadEngine=e.engine --backend=cuda $Q
  rm -f e.engine
  bad "--threads is refused" --onnx="$SOFTMAX" --threads
  bad "--memPoolSize: pool 'dlaSRAM' is not supported" --onnx="$SOFTMAX" --memPoolSize=dlaSRAM:1
}

case_bad_input() {
  make_dynamic_model
  head -c 8 /dev/zero > short.bin
  bad "unknown flag --frobnicate" --onnx="$SOFTMAX" --saveEngine=e.engine --frobnicate; no_engine
  bad "--shapes: malformed shape 'x:1xx3'" --onnx="$SOFTMAX" --saveEngine=e.engine --shapes=x:1xx3; no_engine
  bad "--minShapes: malformed shape 'x'" --onnx=dyn.onnx --saveEngine=e.engine --minShapes=x; no_engine
  bad "--shapes: the model has no input named 'nope'" --onnx="$SOFTMAX" --saveEngine=e.engine --shapes=nope:1x3; no_engine
  bad "--loadInputs: the model has no input named 'nope'" --onnx="$SOFTMAX" --saveEngine=e.engine --loadInputs=nope:short.bin; no_engine
  bad "--loadInputs: 'short.bin' has 8 bytes but input 'x' (float 1x3) needs 12" \
      --onnx="$SOFTMAX" --saveEngine=e.engine --loadInputs=x:short.bin; no_engine
  bad "cannot write --exportOutput file '/nonexistent/o.json'" --onnx="$SOFTMAX" --saveEngine=e.engine --exportOutput=/nonexistent/o.json; no_engine
  bad "cannot write --saveEngine file '/nonexistent/e.engine'" --onnx="$SOFTMAX" --saveEngine=/nonexistent/e.engine
  bad "cannot read model 'missing.onnx'" --onnx=missing.onnx --saveEngine=e.engine; no_engine
  bad "--iterations: expected an integer >= 1, got 'ten'" --onnx="$SOFTMAX" --iterations=ten
  bad "--fp16 takes no value" --onnx="$SOFTMAX" --fp16=1
  bad "--onnx needs a value" --onnx
  bad "no model given" --fp16
  echo "not an engine" > junk.engine
  bad "cannot load engine 'junk.engine'" --loadEngine=junk.engine
  bad "--loadEngine: .*missing.engine" --loadEngine=missing.engine
}

case_dynamic() {
  make_dynamic_model
  bad "input 'x' has dynamic shape \[N,4\]: give its range with --minShapes" --onnx=dyn.onnx --saveEngine=e.engine $Q; no_engine
  bad "shape 9x4 of input 'x' is outside optimization profile 0: min 1x4, max 8x4" \
      --onnx=dyn.onnx --minShapes=x:1x4 --optShapes=x:2x4 --maxShapes=x:8x4 --shapes=x:9x4 --saveEngine=e.engine $Q; no_engine
  ok --onnx=dyn.onnx --minShapes=x:1x4 --optShapes=x:2x4 --maxShapes=x:8x4 --saveEngine=e.engine --exportOutput=o.json $Q
  pyjson o.json "assert d[0]['dimensions']=='2x4'"
  ok --loadEngine=e.engine --shapes=x:5x4 --exportOutput=o.json $Q
  pyjson o.json "assert d[0]['dimensions']=='5x4'"
  bad "shape 9x4 of input 'x' is outside optimization profile 0: min 1x4, max 8x4" --loadEngine=e.engine --shapes=x:9x4 $Q
  rm -f e.engine
  # Two profiles (the i-th --minShapes/--optShapes/--maxShapes of each), chosen with --profile.
  ok --onnx=dyn.onnx --minShapes=x:1x4 --optShapes=x:2x4 --maxShapes=x:4x4 \
     --minShapes=x:8x4 --optShapes=x:10x4 --maxShapes=x:16x4 --profile=1 --exportOutput=o.json $Q
  has "profile 1 \[8x4 .. 16x4\]"
  pyjson o.json "assert d[0]['dimensions']=='10x4'"
  bad "--profile=2: the engine has 2 optimization profile(s)" --onnx=dyn.onnx --minShapes=x:1x4 --maxShapes=x:4x4 \
      --minShapes=x:8x4 --maxShapes=x:16x4 --profile=2 $Q
  bad "needs min <= opt <= max" --onnx=dyn.onnx --minShapes=x:4x4 --maxShapes=x:2x4 $Q
}

CASES=${*:-round_trip load_inputs node_data exports report build_flags list_kernels deprecated refused bad_input dynamic}
for CASE in $CASES; do
  before=$FAILS
  "case_$CASE"
  [ $FAILS -eq $before ] && echo "ok   $CASE" || echo "FAIL $CASE"
done
[ $FAILS -eq 0 ] && echo "all CLI tests passed" || { echo "$FAILS CLI check(s) failed"; exit 1; }
