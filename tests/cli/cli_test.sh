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
  has "INT8: no calibrator and no calibration cache"
  printf 'TRT-8601-EntropyCalibration2\nx: 3c010a14\ny: 3c010a14\n' > calib.cache
  ok --onnx="$SOFTMAX" $Q --int8 --calib=calib.cache
  has "read 2 scales from calib.cache"
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
  bad "--fp8 is refused: no FP8 layers yet" --onnx="$SOFTMAX" --fp8
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

# INT8 calibration (issue 13): a small CNN, PNG/JPEG images made with Pillow, .npy data; the cache
# written once and read the next time; each bad input one error with no engine or cache file.
make_int8_inputs() {
  "$PY" - <<'PYEOF'
import os, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper as nh
from PIL import Image
rng = np.random.default_rng(0)
def model(path, inputs, nodes, inits, out):
    g = helper.make_graph(nodes, 'm', inputs, [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), path)
f = lambda a, n: nh.from_array(rng.uniform(-.5, .5, a).astype(np.float32), n)
model('m.onnx', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3, 16, 16])],
      [helper.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['c1'], ['r1']),
       helper.make_node('GlobalAveragePool', ['r1'], ['p']), helper.make_node('Flatten', ['p'], ['f']),
       helper.make_node('MatMul', ['f', 'wf'], ['y'])], [f((8, 3, 3, 3), 'w1'), f((8,), 'b1'), f((8, 10), 'wf')], 'y')
model('two.onnx', [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in 'ab'],
      [helper.make_node('Add', ['a', 'b'], ['s'])], [], 's')
for d in ('imgs', 'same', 'empty', 'badimgs', 'npy/a'): os.makedirs(d, exist_ok=True)
for i in range(5):
    Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save('imgs/im%d.png' % i)
Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save('imgs/im5.jpg', quality=90)
for i in range(2): Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save('same/s%d.png' % i)
Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save('badimgs/a.png')
open('badimgs/b.png', 'wb').write(open('badimgs/a.png', 'rb').read()[:40])
for i in range(4):  # one sample each; |x| at most 2 (file 3)
    x = rng.uniform(-1, 1, (3, 16, 16)).astype(np.float32); x[0, 0, 0] = 2.0 if i == 3 else x[0, 0, 0]
    np.save('npy/x%d.npy' % i, x)
np.save('npy/a/a0.npy', np.ones((1, 4), np.float32))
os.makedirs('npy4', exist_ok=True)
for i in range(6): np.save('npy4/s%d.npy' % i, rng.uniform(-1, 1, (4,)).astype(np.float32))
PYEOF
}

case_int8() {
  make_int8_inputs || { fail "cannot make the INT8 inputs (python3-onnx, Pillow)"; return; }
  local C="--onnx=m.onnx --int8 --backend=cpu --skipInference"
  ok $C --calibImages=imgs --calib=m.cache --saveEngine=e.engine
  has "calibrated 6 tensors over 3 batches (EntropyCalibration2, float32 on the CPU backend)"
  has "Calibration cache written to 'm.cache'"
  has "no INT8 kernels yet: on the CPU backend 2 Conv/MatMul/Gemm layers simulate INT8"
  [ "$(head -1 m.cache)" = "TRT-8601-EntropyCalibration2" ] || fail "cache header: $(head -1 m.cache)"
  [ "$(grep -c '^[a-z0-9]*: [0-9a-f]\{8\}$' m.cache)" = 6 ] || fail "cache lines: $(cat m.cache)"
  ls | grep -q 'kiln-' && fail "temporary file left: $(ls)"
  cp m.cache first.cache
  ok $C --calibImages=imgs --calib=m.cache
  has "read 6 scales from m.cache (EntropyCalibration2): no calibration"
  grep -q "calibrated .* tensors" out.txt && fail "calibrated although the cache exists"
  cmp -s m.cache first.cache || fail "the cache was rewritten"
  printf 'TRT-8601-EntropyCalibration2\nx: 3c010a14\n(Unnamed Layer* 0) [Convolution]_output: 3d8d7e4f\nc1: 3d8d7e4f\n' > trt.cache
  ok $C --calib=trt.cache
  has "read 2 scales from trt.cache"; has "1 tensors of the cache are not in the network"
  # Each algorithm, from .npy samples grouped into batches of 2; minmax of x is exactly 2 / 127.
  for a in minmax percentile mse entropy; do
    ok $C --calibData=npy --calibAlgo=$a --calib=$a.cache || continue
    has "over 2 batches"
  done
  [ "$(head -1 minmax.cache)" = "TRT-8601-MinMaxCalibration" ] || fail "minmax header: $(head -1 minmax.cache)"
  grep -q '^x: 3c810204$' minmax.cache || fail "minmax scale of x is not 2/127: $(grep '^x:' minmax.cache)"
  grep -q '^TRT-8601-PercentileCalibration$' percentile.cache || fail "percentile header"
  ok $C --calibData=npy --calibBatches=1 --calib=one.cache; has "over 1 batches"
  # The CPU engine simulates INT8 (quantize-dequantize of Conv/MatMul inputs, per-channel weights):
  # its output equals a numpy simulation with the cache's scales, and differs from float32.
  "$PY" -c "import numpy as np; np.random.default_rng(5).uniform(-1, 1, (2, 3, 16, 16)).astype('<f4').tofile('xin.bin')"
  ok --onnx=m.onnx --int8 --backend=cpu --calib=minmax.cache --loadInputs=x:xin.bin --exportOutput=q.json $Q
  has "2 Conv/MatMul/Gemm layers simulate INT8"
  ok --onnx=m.onnx --backend=cpu --loadInputs=x:xin.bin --exportOutput=f.json $Q
  "$PY" - <<'PYEOF' || fail "the INT8 CPU engine differs from the numpy simulation"
import json, struct, numpy as np, onnx
from onnx import numpy_helper as nh
W = {t.name: nh.to_array(t) for t in onnx.load('m.onnx').graph.initializer}
S = {l.split(': ')[0]: np.frombuffer(struct.pack('<I', int(l.split(': ')[1], 16)), '<f4')[0]
     for l in open('minmax.cache').read().splitlines()[1:]}
def qa(x, s): return (np.clip(np.rint(x / s), -128, 127) * s).astype(np.float32)
def qw(w, axis):
    a = np.abs(w).max(axis=tuple(k for k in range(w.ndim) if k != axis), keepdims=True)
    s = (a.astype(np.float64) / 127).astype(np.float32)
    return (np.clip(np.rint(w / s), -127, 127) * s).astype(np.float32)
def forward(x, quant):
    q = (lambda t, n: qa(t, S[n])) if quant else (lambda t, n: t)
    w1 = qw(W['w1'], 0) if quant else W['w1']
    wf = qw(W['wf'], 1) if quant else W['wf']
    xp = np.pad(q(x, 'x'), ((0, 0), (0, 0), (1, 1), (1, 1)))
    c = np.zeros((2, 8, 16, 16), np.float64)
    for i in range(3):
        for j in range(3):
            c += np.einsum('nchw,oc->nohw', xp[:, :, i:i + 16, j:j + 16], w1[:, :, i, j])
    f = np.maximum(c + W['b1'][None, :, None, None], 0).mean(axis=(2, 3)).astype(np.float32)
    return q(f, 'f').astype(np.float64) @ wf
x = np.fromfile('xin.bin', '<f4').reshape(2, 3, 16, 16)
got = np.array(json.load(open('q.json'))[0]['values'], np.float64).reshape(2, 10)
fp32 = np.array(json.load(open('f.json'))[0]['values'], np.float64).reshape(2, 10)
rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)
sim, ref = forward(x, True), forward(x, False)
print('INT8 CPU engine vs numpy INT8 simulation: rel L2 %.2e; vs float32: %.2e (numpy: %.2e)' % (rel(got, sim), rel(got, fp32), rel(sim, ref)))
assert rel(got, sim) < 1e-5 and rel(fp32, ref) < 1e-5 and rel(got, fp32) > 1e-4
PYEOF
  ok $C --calibImages=same --calibResize=none --calibLayout=nchw --calibChannels=bgr \
     --calibMean=0.485,0.456,0.406 --calibStd=0.229,0.224,0.225 --calib=same.cache
  has "over 1 batches"
  make_dynamic_model  # x [N,4]: calibrated at --optShapesCalib's batch of 3 (6 samples: 2 batches)
  ok --onnx=dyn.onnx --int8 --minShapes=x:1x4 --optShapes=x:4x4 --maxShapes=x:8x4 --optShapesCalib=x:3x4 \
     --calibData=npy4 --calib=dyn.cache --skipInference
  has "over 2 batches"
  # Bad input: one error, no engine, no cache.
  printf 'TRT-8601-EntropyCalibration2\ninput.1: 3c010a14\n' > other.cache
  bad "other.cache: the calibration cache names none of the network's tensors" $C --calib=other.cache --saveEngine=e2.engine
  bad "no image (png/jpg/jpeg) in directory 'empty'" $C --calibImages=empty --calib=n.cache --saveEngine=e2.engine
  bad "cannot read image 'badimgs/b.png': corrupt or undecodable PNG" $C --calibImages=badimgs \
      --calib=n.cache --saveEngine=e2.engine
  bad "image 'imgs/im0.png' is 24x20 (WxH) but input 'x' takes 16x16 and no resize rule is set" $C --calibImages=imgs \
      --calibResize=none --calib=n.cache --saveEngine=e2.engine
  bad "no directory 'npy/b' for input 'b' (a network of 2 inputs" --onnx=two.onnx --int8 --calibData=npy --calib=n.cache \
      --saveEngine=e2.engine --skipInference
  bad "calibration cache 'n.cache' does not exist and there is no calibration data" $C --calib=n.cache
  bad "need --int8" --onnx=m.onnx --calibImages=imgs
  bad "--calibAlgo: expected entropy, minmax, percentile or mse" $C --calibAlgo=kl
  ls | grep -q 'e2\.engine\|^n\.cache' && fail "engine or cache written after an error: $(ls)"
  rm -f e.engine
  # Per-layer precision and the INT8 accuracy guard (issue 13 items 6-7).
  ok $C --calib=minmax.cache --layerPrecisions='*:fp32' --precisionConstraints=obey --exportLayerInfo=li.json
  pyjson li.json "assert sum('not INT8: layer precision *:fp32' in l['Precision'] for l in d['Layers']) == 2, d"
  ok $C --calibData=npy --calib=g.cache --int8Tolerance=1e-6 --verbose
  has "INT8 output error (relative L2 against every layer in float, on 2 calibration batches)"
  has "the accuracy guard kept "
  bad "no layer named 'nope'" $C --calib=minmax.cache --layerPrecisions=nope:fp32 --saveEngine=e2.engine
  bad "--layerPrecisions: layer 'c1': type 'bf16' is not supported by kiln (fp32, fp16, int8)" $C --layerPrecisions=c1:bf16
  bad "would be ignored: use prefer or obey" $C --layerPrecisions='*:fp32' --precisionConstraints=none
  bad "fp16 needs the FP16 builder flag" $C --calib=minmax.cache --layerPrecisions='*:fp16' --saveEngine=e2.engine
  bad "--int8Tolerance needs --int8" --onnx=m.onnx --int8Tolerance=0.1
  ls | grep -q 'e2\.engine' && fail "engine written after an error: $(ls)"
}

# A small ResNet-ish CNN (x [2,3,16,16] -> y [2,10]): stem conv, two residual blocks, a
# depthwise conv, a strided conv, global pool, Gemm; weights from a fixed seed; x.bin its input.
make_resnetish_model() {
  "$PY" - <<'PYEOF'
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(15)
inits, nodes = [], []
def w(name, *shape, scale=0.3):
    inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)); return name
def conv(x, out, cin, cout, k=3, stride=1, group=1):
    nodes.append(helper.make_node('Conv', [x, w(out + '_w', cout, cin // group, k, k), w(out + '_b', cout)], [out],
                                  pads=[k // 2] * 4, strides=[stride] * 2, group=group, name=out))
    return out
def relu(x, out): nodes.append(helper.make_node('Relu', [x], [out], name=out)); return out
h = relu(conv('x', 'stem', 3, 16), 'stem_r')
for b in range(2):
    t = relu(conv(h, f'b{b}_c1', 16, 16), f'b{b}_r1')
    t = conv(t, f'b{b}_c2', 16, 16)
    nodes.append(helper.make_node('Add', [t, h], [f'b{b}_s'], name=f'b{b}_add'))
    h = relu(f'b{b}_s', f'b{b}_out')
h = relu(conv(h, 'dw', 16, 16, group=16), 'dw_r')
h = relu(conv(h, 'down', 16, 32, stride=2), 'down_r')
nodes.append(helper.make_node('GlobalAveragePool', [h], ['gap'], name='gap'))
nodes.append(helper.make_node('Flatten', ['gap'], ['flat'], name='flat'))
nodes.append(helper.make_node('Gemm', ['flat', w('fc_w', 10, 32), w('fc_b', 10)], ['y'], transB=1, name='fc'))
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3, 16, 16])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 10])
onnx.save(helper.make_model(helper.make_graph(nodes, 'resnetish', [x], [y], inits),
                            opset_imports=[helper.make_opsetid('', 17)]), 'r.onnx')
np.random.default_rng().standard_normal((2, 3, 16, 16)).astype(np.float32).tofile('x.bin')
PYEOF
}

# Tactic timing (issue 15) on the CPU: a cold build times every layer with a choice and writes the
# cache; a warm one times nothing and picks the same tactics; a corrupted cache warns once and is
# re-timed; an unwritable path warns and the engine is built; the tuned engine computes what the
# untuned one (level 0) does; the flags' bad values are one error each.
case_tuning() {
  make_resnetish_model || { fail "cannot write the model"; return; }
  local R="--onnx=r.onnx --loadInputs=x:x.bin --duration=0 --warmUp=0 --iterations=1"
  ok $R --timingCacheFile=tc.cache --exportLayerInfo=cold.json --exportOutput=cold_out.json || return
  # Layers of one signature (the blocks' equal convs) are timed once: the first fills the cache.
  local line n t
  line=$(grep -o 'tactic timing: timed [0-9]* of [0-9]* layers' out.txt)
  t=$(echo "$line" | awk '{print $4}')
  n=$(echo "$line" | awk '{print $6}')
  [ -n "$n" ] && [ "$t" -ge 3 ] && [ "$t" -le "$n" ] || fail "cold build: '$line'"
  [ -s tc.cache ] || fail "the cold build wrote no timing cache"
  pyjson cold.json "T=[l for l in d['Layers'] if 'TacticCandidates' in l]; assert len(T)==$n and all(l['TacticTimeMs']>=0 and l['RunnerUpTimeMs']>=0 and l['RunnerUp'] for l in T), T"
  ok $R --timingCacheFile=tc.cache --exportLayerInfo=warm.json --exportOutput=warm_out.json --verbose --dumpTactics
  has "tactic timing: timed 0 of $n layers"
  has "runner-up"
  # --dumpTactics: one row per tuned layer (chosen vs the heuristic pick), then the total; the
  # heuristic pick is what level 0 runs, the chosen tactic what --exportLayerInfo names.
  has "=== Tactics ($n layers with a choice; times at the opt shapes) ==="
  [ "$(grep -c '^\[I\] *[0-9.]* *[0-9.]* *-\?[0-9.]* *[^ ]*: cpu\.' out.txt)" = "$n" ] || fail "--dumpTactics: not one row per tuned layer"
  has "Total: "
  pyjson warm.json "T=[l for l in d['Layers'] if 'TacticCandidates' in l]; assert len(T)==$n and all(l['HeuristicTactic'].startswith('cpu.') and l['HeuristicTimeMs']>=0 and l['HeuristicTactic'] in (l['TacticName'], l['RunnerUp']) for l in T), T"
  "$PY" -c "import json; a,b=[[l['TacticName'] for l in json.load(open(f))['Layers']] for f in ('cold.json','warm.json')]; assert a==b, (a,b)" \
    || fail "the warm build picked other tactics"
  cmp -s cold_out.json warm_out.json || fail "the warm engine's output differs from the cold one's"
  # The untuned engine (level 0: no passes, no timing) computes the same outputs.
  ok $R --builderOptimizationLevel=0 --exportOutput=ref_out.json --exportLayerInfo=ref.json --dumpTactics
  has "no tactic timing"
  has "no layer was tuned"
  pyjson ref.json "assert not any('.loops' in l['TacticName'] or 'TacticCandidates' in l for l in d['Layers'])"
  close() { "$PY" -c "
import json, math, sys
a, b = [json.load(open(f))[0]['values'] for f in sys.argv[1:3]]
e = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)) / sum(y * y for y in b))
assert len(a) == len(b) == 20 and e < 1e-5, e" "$1" "$2" || fail "$1 differs from $2"; }
  close cold_out.json ref_out.json
  # Corrupted (truncated) cache: one warning, every layer timed again, the file rewritten whole.
  head -c 100 tc.cache > tc2 && mv tc2 tc.cache
  ok $R --timingCacheFile=tc.cache --exportOutput=corrupt_out.json
  [ "$(grep -c '^\[W\].*timing cache ignored' out.txt)" = 1 ] || fail "a truncated cache should give one warning: $(grep '^\[W\]' out.txt)"
  has "tactic timing: timed $t of $n layers"
  close corrupt_out.json ref_out.json
  ok $R --timingCacheFile=tc.cache --skipInference
  has "tactic timing: timed 0 of $n layers"
  # Unwritable path: a warning, the engine still built.
  ok $R --timingCacheFile=no_such_dir/tc.cache --saveEngine=u.engine
  grep -q '^\[W\] cannot write timing cache .no_such_dir/tc.cache' out.txt || fail "no warning for an unwritable cache: $(grep '^\[W\]' out.txt)"
  [ -s u.engine ] || fail "no engine after an unwritable cache path"
  # --noBuilderCache: neither read nor written; --tacticSources; --avgTiming.
  ok $R --timingCacheFile=nb.cache --noBuilderCache
  has "is neither read nor written"
  [ -e nb.cache ] && fail "--noBuilderCache wrote the cache"
  ok $R --tacticSources=-OPENBLAS --exportLayerInfo=loops.json --exportOutput=loops_out.json --avgTiming=2
  pyjson loops.json "L=[l['TacticName'] for l in d['Layers'] if l['TacticName'].endswith('.loops')]; assert len(L)>=$n, L"
  close loops_out.json ref_out.json
  ok $R --tacticSources=-cublas
  has "kiln has no cuBLAS (non-Lt) tactics"
  bad "--tacticSources: unknown source 'FOO'" $R --tacticSources=+FOO
  bad "--tacticSources: expected a list of +NAME / -NAME" $R --tacticSources=CUDNN
  bad "--builderOptimizationLevel: expected 0..5" $R --builderOptimizationLevel=6
  bad "--avgTiming: expected an integer >= 1" $R --avgTiming=0
}

CASES=${*:-round_trip load_inputs node_data exports report build_flags list_kernels deprecated refused bad_input dynamic int8 tuning}
for CASE in $CASES; do
  before=$FAILS
  "case_$CASE"
  [ $FAILS -eq $before ] && echo "ok   $CASE" || echo "FAIL $CASE"
done
[ $FAILS -eq 0 ] && echo "all CLI tests passed" || { echo "$FAILS CLI check(s) failed"; exit 1; }
