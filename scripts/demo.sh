#!/usr/bin/env bash
# The main job: export a torchvision ResNet-50 (random weights, fixed seed) with Debian's
# /usr/bin/python3 + python3-torch, then run it with kiln (CPU backend when no GPU is usable)
# and compare kiln's output with PyTorch's.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
models="$here/build/models"
/usr/bin/python3 "$here/tests/models/export_torchvision.py" "$models" resnet50
data="$models/test_resnet50/test_data_set_0"
/usr/bin/python3 - "$data/input_0.pb" "$data/input.bin" <<'PY'
import sys, onnx
from onnx import numpy_helper
numpy_helper.to_array(onnx.load_tensor(sys.argv[1])).astype("float32").tofile(sys.argv[2])
PY
# Build once and save the engine, then load it and run it (as a serving process would).
"$here/build/kiln" --onnx="$models/test_resnet50/model.onnx" --shapes=input:1x3x224x224 \
  --saveEngine="$models/resnet50.engine" --skipInference
"$here/build/kiln" --loadEngine="$models/resnet50.engine" --loadInputs=input:"$data/input.bin" \
  --exportOutput="$models/resnet50_out.json" --iterations=5 --duration=0
/usr/bin/python3 - "$models/resnet50_out.json" "$data/output_0.pb" <<'PY'
import json, sys, numpy as np, onnx
from onnx import numpy_helper
got = np.array(json.load(open(sys.argv[1]))[0]["values"])
want = numpy_helper.to_array(onnx.load_tensor(sys.argv[2])).ravel()
rel = np.linalg.norm(got - want) / np.linalg.norm(want)
print(f"kiln vs PyTorch (resnet50, batch 1): relative L2 error {rel:.2e}, top-1 {'agrees' if got.argmax() == want.argmax() else 'DIFFERS'}")
sys.exit(0 if rel <= 1e-4 else 1)
PY
