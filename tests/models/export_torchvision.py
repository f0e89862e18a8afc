#!/usr/bin/python3
"""Exports torchvision models to ONNX with random weights (fixed seed) in the ONNX backend-test
layout, so kiln's suite runner can check them:

    OUT/test_<model>/model.onnx
    OUT/test_<model>/test_data_set_0/input_0.pb, output_0.pb   (PyTorch's FP32 output)

Run with Debian's interpreter, /usr/bin/python3, whose python3-torch (1.13) and
python3-torchvision (0.14) do the export on the CPU. Usage:
    /usr/bin/python3 tests/models/export_torchvision.py OUT [model ...]
Exits 3 (and prints why) when torch/torchvision are missing, so the test can be skipped visibly.
"""
import inspect
import os
import sys

MODELS = {  # name -> (constructor name, input shape)
    "resnet50": ("resnet50", (1, 3, 224, 224)),
    "mobilenet_v2": ("mobilenet_v2", (1, 3, 224, 224)),
    "efficientnet_b0": ("efficientnet_b0", (1, 3, 224, 224)),
    "vit_b_16": ("vit_b_16", (1, 3, 224, 224)),
}
# Architectures kiln was not tuned on (exported only when named): they must run right too.
OUTSIDE_ZOO = {
    "convnext_tiny": ("convnext_tiny", (1, 3, 224, 224)),
    "swin_t": ("swin_t", (1, 3, 224, 224)),
    "densenet121": ("densenet121", (1, 3, 224, 224)),
    "inception_v3": ("inception_v3", (1, 3, 299, 299)),
    "resnext50_32x4d": ("resnext50_32x4d", (1, 3, 224, 224)),
    "regnet_y_400mf": ("regnet_y_400mf", (1, 3, 224, 224)),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", (1, 3, 224, 224)),
}


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    out_root = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    try:
        import numpy as np
        import torch
        import torchvision
        from onnx import numpy_helper
    except ImportError as e:
        print(f"SKIP: cannot export torchvision models: {e} (install python3-torch, python3-torchvision, python3-onnx)")
        return 3
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in names:
        if name not in MODELS and name not in OUTSIDE_ZOO:
            print(f"unknown model {name}; known: {', '.join(list(MODELS) + list(OUTSIDE_ZOO))}")
            return 2
        ctor, shape = MODELS.get(name) or OUTSIDE_ZOO[name]
        case = os.path.join(out_root, f"test_{name}")
        data = os.path.join(case, "test_data_set_0")
        if os.path.exists(os.path.join(data, "output_0.pb")):
            print(f"{name}: already exported")
            continue
        os.makedirs(data, exist_ok=True)
        torch.manual_seed(0)
        model = getattr(torchvision.models, ctor)(weights=None).eval()
        # Random weights from the fixed seed; re-draw BN statistics so they are not identity, and
        # parameters that torchvision initializes to zero (ViT's head) so the output is not constant.
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2 and not p.any():
                    p.normal_(0, 0.02)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            y = model(x)
        assert y.std() > 0, f"{name}: the reference output is constant; the check could not fail"
        tmp = os.path.join(case, "model.onnx.tmp")
        kwargs = {}
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False  # the TorchScript exporter (opset 17), as on Debian's torch 1.13
        torch.onnx.export(model, x, tmp, opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kwargs)
        for k, t in (("input_0", x), ("output_0", y)):
            with open(os.path.join(data, k + ".pb"), "wb") as f:
                f.write(numpy_helper.from_array(t.numpy().astype(np.float32), k).SerializeToString())
        os.replace(tmp, os.path.join(case, "model.onnx"))
        print(f"{name}: exported to {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
