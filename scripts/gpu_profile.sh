#!/usr/bin/env bash
# On the GPU machine, after scripts/gpu_bench.sh (its work folder /tmp/kiln_bench): every kiln
# engine the benchmark built is run again with a separate per-layer profiling run, and
# bench/profile_summary.py prints where the time goes (by layer type and tactic, then the slowest
# layers), plus the CLI's warnings (CPU fallbacks, CUDA graph). One file per case in $OUT/profile.
# Usage (device tool, carry [".gpu_carry"]): bash scripts/gpu_profile.sh [work-folder]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
c=/tmp/kiln_bundle
[ -x "$c/bin/kiln" ] || { mkdir -p "$c" && tar -C "$c" -xJf "$here/${KILN_BUNDLE:-.gpu_carry}/bundle.tar.xz"; }
export LD_LIBRARY_PATH="$c/lib:${LD_LIBRARY_PATH:-}"
work=${1:-/tmp/kiln_bench}
out=${OUT:-$here/gpu_out}/profile
mkdir -p "$out"
find "$work" -name kiln.log | sort | while read -r log; do
  dir=$(dirname "$log")
  case=$(echo "${dir#$work/}" | tr '/' '_')
  run=$(grep -m1 -- "--loadEngine=" "$log" | sed 's/^\$ //')
  [ -n "$run" ] || continue
  run=${run//--useCudaGraph/}
  $run --useCudaGraph --separateProfileRun --exportProfile=/tmp/prof.json --exportLayerInfo=/tmp/layers.json \
      > /tmp/prof_run.log 2>&1
  { grep -E "\[W\]|\[E\]|GPU Compute Time: (min|median)|Throughput" /tmp/prof_run.log | sort | uniq -c | head -20
    python3 "$here/bench/profile_summary.py" /tmp/prof.json /tmp/layers.json; } > "$out/$case.txt" 2>&1
  echo "== $case"; head -40 "$out/$case.txt"
done
