#!/usr/bin/env bash
# The activation arena the planner lays out must stay within 1.1x its lower bound (the largest
# sum of tensors live at one moment) on the model zoo, at batch 8.
set -uo pipefail
KILN=$1; MODELS=$2
rc=0
for m in "$MODELS"/test_*/model.onnx; do
  line=$("$KILN" --onnx="$m" --shapes=input:8x3x224x224 --skipInference 2>&1 | grep "Activation memory")
  ratio=$(echo "$line" | sed -n 's/.*ratio \([0-9.]*\)).*/\1/p')
  echo "$(basename "$(dirname "$m")"): ${line#*: }"
  if [ -z "$ratio" ] || ! awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }'; then echo "  FAIL: ratio '$ratio' above 1.1"; rc=1; fi
done
exit $rc
