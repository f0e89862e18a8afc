#!/usr/bin/env bash
# ONNX 1.23's node suite: materialized from the pinned onnx package (build/pyenv, made by
# scripts/setup.sh) into OUT, then run like the Debian suite. Exit 77 (CTest: skipped) with a
# visible message when the package is missing.
set -uo pipefail
RUN_SUITE=$1; PYTHON=$2; OUT=$3; EXPECTED=$4; LOG=$5
if ! "$PYTHON" -c "import onnx" 2>/dev/null; then
  echo "SKIPPED: onnx 1.23 node conformance needs the pinned onnx package in build/pyenv (scripts/setup.sh)"
  [ "${CI:-}" = true ] && { echo "CI has every dependency: a skip is a failure"; exit 1; }
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
"$PYTHON" "$here/materialize_onnx_suite.py" "$OUT" || exit 1
exec "$RUN_SUITE" --suite="$OUT" --name="onnx 1.23 node conformance" --expected="$EXPECTED" --log="$LOG" --jobs=2
