#!/usr/bin/env python3
"""Exports the benchmark zoo (bench/models.py) with both of today's exporters, in the ONNX
backend-test layout, so kiln's suite runner can check each export against PyTorch:

    OUT/test_<model>_torchscript/model.onnx                 TorchScript exporter, opset 17
    OUT/test_<model>_dynamo/model.onnx, model.onnx.data     dynamo exporter, opset 18, external weights
    OUT/test_<model>_<exporter>/test_data_set_0/input_K.pb, output_K.pb   (PyTorch FP32 on the CPU)

Run it where PyTorch 2.x, torchvision and transformers are installed (the GPU machine; its CPUs do
the export and the reference). Usage:
    python3 tests/models/export_zoo.py OUT [model ...]        (default: the whole zoo)
BERT's attention mask masks the last 16 positions of each sequence, so the check covers masking.
Exits 3 (and says why) when torch is missing; 1 when an export failed (the others are still written).
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "bench"))

BATCH = 1


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    out_root = sys.argv[1]
    try:
        import numpy as np
        import torch
        from onnx import numpy_helper
        import export
        import models
    except ImportError as e:
        print(f"SKIP: cannot export the zoo: {e}")
        return 3
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rc = 0
    for spec in models.select(sys.argv[2:] or ["all"]):
        module = spec.build()
        inputs = list(spec.make_inputs(BATCH))
        if spec.name == "bert_base":
            inputs[1][:, -16:] = 0  # padding: the masked path must be right too
        refs = export.reference(module, tuple(inputs))
        assert all(float(r.float().std()) > 0 for r in refs), f"{spec.name}: constant reference output"
        for name in ("torchscript", "dynamo"):
            case = os.path.join(out_root, f"test_{spec.name}_{name}")
            data = os.path.join(case, "test_data_set_0")
            os.makedirs(data, exist_ok=True)
            tmp = os.path.join(case, "tmp")
            res = export.export_model(spec, module, tmp, which=(name,), log=lambda s: print(f"{spec.name}:{s}"))
            if "error" in res[name]:
                rc = 1
                continue
            src = res[name]["path"]
            for f in os.listdir(os.path.dirname(src)):  # the model and its external data, side by side
                dst = "model.onnx" if f == os.path.basename(src) else f
                os.replace(os.path.join(os.path.dirname(src), f), os.path.join(case, dst))
            os.rmdir(os.path.dirname(src))
            if os.path.dirname(src) != tmp:
                os.rmdir(tmp)
            for k, t in enumerate(inputs):
                with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(t.numpy(), spec.input_names[k]).SerializeToString())
            for k, r in enumerate(refs):
                with open(os.path.join(data, f"output_{k}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(r.float().numpy().astype(np.float32),
                                                    spec.output_names[k]).SerializeToString())
    return rc


if __name__ == "__main__":
    sys.exit(main())
