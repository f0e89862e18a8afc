#!/usr/bin/env bash
# tools/compare.py on the exported model zoo: kiln's CPU backend against ONNX Runtime on the
# same random inputs, relative L2 <= 1e-4 per output. Skipped (77) without build/pyenv.
set -uo pipefail
PYTHON=$1; KILN=$2; MODELS=$3
"$PYTHON" -c "import onnxruntime" 2>/dev/null || { echo "SKIPPED: needs onnxruntime in build/pyenv (scripts/setup.sh)"; [ "${CI:-}" = true ] && { echo "CI has every dependency: a skip is a failure"; exit 1; }; exit 77; }
here=$(cd "$(dirname "$0")/../.." && pwd)
rc=0
for m in "$MODELS"/test_*/model.onnx; do
  echo "== $(basename "$(dirname "$m")")"
  "$PYTHON" "$here/tools/compare.py" "$m" --kiln="$KILN" --shapes=input:1x3x224x224 || rc=1
done
exit $rc
