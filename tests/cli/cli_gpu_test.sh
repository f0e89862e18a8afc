#!/bin/bash
# The kiln command on CUDA engines (needs a GPU; not in CTest, which runs without one). A model
# whose layers all have CUDA kernels (make_cuda_model.py): --backend=auto picks CUDA, trtexec's
# timing fields, --useCudaGraph captures, --noDataTransfers, --useSpinWait, --streams, profiles,
# --validate against the CPU reference, save/load, --device and --backend checks.
# Usage: cli_gpu_test.sh <kiln binary> <work dir>
set -u
KILN=$1
WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
Q="--duration=0 --warmUp=50 --iterations=50"
FAILS=0
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL [$CASE]: $*"; FAILS=$((FAILS + 1)); }
ok() {
  "$KILN" "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -ne 0 ] || ! grep -q '^&&&& PASSED kiln' out.txt; then
    fail "expected success: kiln $* (rc=$rc): $(cat err.txt)"; return 1
  fi
}
bad() {
  local pattern=$1; shift
  "$KILN" "$@" >out.txt 2>err.txt
  if [ $? -eq 0 ]; then fail "expected failure: kiln $*"; return 1; fi
  grep -q -- "$pattern" err.txt || fail "error for kiln $* does not match '$pattern': $(cat err.txt)"
}
has() { grep -q -- "$1" out.txt || fail "output lacks '$1'"; }
lacks() { grep -q -- "$1" out.txt && fail "output has '$1'"; }
pyjson() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$1" || fail "JSON check failed on $1: $2"; }
show() { grep -E "Throughput|Latency: min|GPU Compute Time: min|H2D Latency: min|Enqueue Time: min|useCudaGraph|Activation|max abs" out.txt | sed "s/^/  [$CASE] /"; }

"$PY" "$HERE/make_cuda_model.py" m.onnx || { echo "cannot make the model"; exit 1; }
M="--onnx=m.onnx --shapes=x:8x64x56x56"

CASE=auto
ok $M $Q --exportTimes=t.json --exportOutput=o.json --validate --dumpProfile && show
has "Engine backend: cuda"; has "Total Activation Memory: "; has "=== Profile (50 iterations ) ==="; has "relu2"
has "max abs error = 0,"
pyjson t.json "
assert len(d)>=50
for q in d:
  assert q['h2dMs']>0 and q['computeMs']>0 and q['d2hMs']>0, q
  assert abs(q['latencyMs']-(q['h2dMs']+q['computeMs']+q['d2hMs']))<1e-3, q
  assert q['startH2DMs']<=q['endH2DMs']<=q['startComputeMs']<=q['endComputeMs']<=q['startD2HMs']<=q['endD2HMs'], q
  assert q['enqMs']>=0 and q['startEnqMs']<=q['endEnqMs'], q"

CASE=graph
ok $M $Q --useCudaGraph --exportTimes=t.json --dumpProfile --exportOutput=og.json && show
has "--useCudaGraph: captured the enqueue into a CUDA graph"; lacks "capture failed"
has "Profiling in a separate run"
cmp -s o.json og.json || fail "graph replay outputs differ from plain enqueue"

CASE=no_transfers
ok $M $Q --noDataTransfers --useSpinWait --exportTimes=t.json && show
pyjson t.json "assert all(q['h2dMs']==0 and q['d2hMs']==0 and q['computeMs']>0 and q['latencyMs']==q['computeMs'] for q in d)"
has "H2D Latency: min = 0 ms, max = 0 ms"

CASE=streams
ok $M $Q --streams=2 --useCudaGraph --exportTimes=t.json --exportOutput=os.json && show
has "(2 streams together)"; has "captured the enqueue into a CUDA graph per stream"
pyjson t.json "assert len(d)>=100"
cmp -s o.json os.json || fail "--streams=2 outputs differ"

CASE=separate_profile
ok $M $Q --separateProfileRun --exportProfile=p.json
pyjson p.json "assert d[0]['count']==50 and len(d)>=7 and all(r['averageMs']>0 for r in d[1:])"

CASE=save_load
ok $M --backend=cuda --saveEngine=e.engine --skipInference
ok --loadEngine=e.engine --shapes=x:8x64x56x56 $Q --backend=cuda --exportOutput=ol.json
cmp -s o.json ol.json || fail "outputs differ after save/load"
bad "--backend=cpu: the engine from --loadEngine is a cuda engine" --loadEngine=e.engine --backend=cpu $Q
ok $M $Q --backend=cpu; has "Engine backend: cpu"

CASE=device
n=$(nvidia-smi -L | wc -l)
ok $M $Q --device=$((n - 1)); has "Engine backend: cuda"
bad "--device=$n: no CUDA device $n on this machine ($n found)" $M --device=$n

[ $FAILS -eq 0 ] && echo "all CUDA CLI tests passed" || { echo "$FAILS CUDA CLI check(s) failed"; exit 1; }
