#!/usr/bin/env bash
# On the GPU machine, over the bundle gpu_bundle.sh made: the model-zoo benchmark (bench/zoo.py)
# with kiln's binary from the bundle. Extra arguments go to zoo.py (e.g. --models resnet50).
# Results (results.md/.json, speedup.png, log) go to $OUT/bench.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
c=/tmp/kiln_bundle
carry=$here/${KILN_BUNDLE:-.gpu_carry}
mkdir -p "$c" && tar -C "$c" -xJf "$carry/bundle.tar.xz"
export LD_LIBRARY_PATH="$c/lib:${LD_LIBRARY_PATH:-}"
out=${OUT:-$here/gpu_out}/bench
mkdir -p "$out"
cd "$here/bench" && PYTHONUNBUFFERED=1 python3 zoo.py --kiln="$c/bin/kiln" --out="$out" --work=/tmp/kiln_bench "$@" 2>&1 |
  tee "$out/log.txt" | grep -vE "^\s*$" | tail -40
