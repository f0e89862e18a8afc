"""kiln serve with CUDA engines (skipped without a GPU; for the GPU session): a CUDA engine served
with --devices listing every GPU and 2 instances on each, concurrent gRPC requests, outputs
against the CPU engine's (relative L2), and the instances' placement in the model config."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import kiln  # noqa: E402
import models  # noqa: E402
from test_serve import Server, concurrently, grpc_infer, rand  # noqa: E402

N_GPU = kiln._kiln._cuda_device_count()
pytestmark = pytest.mark.skipif(N_GPU == 0, reason="needs a CUDA device")
PROFILE = {"x": ((1, 3, 8, 8), (8, 3, 8, 8), (32, 3, 8, 8))}


def test_cuda_engine_on_every_device(tmp_path):
    onnx_path = str(tmp_path / "conv.onnx")
    with open(onnx_path, "wb") as f:
        f.write(models.convnet().SerializeToString())
    engine = str(tmp_path / "conv.engine")
    with open(engine, "wb") as f:
        f.write(kiln.build(onnx_path, backend="cuda", profiles=PROFILE).serialize())
    cpu = kiln.build(onnx_path, backend="cpu", profiles=PROFILE).create_execution_context()
    devices = ",".join(str(d) for d in range(N_GPU))
    s = Server([engine, f"--devices={devices}", "--instances=2", "--max-queue-delay-us=2000"], str(tmp_path), "gpu",
               models=("conv",))
    try:
        n = 16 * N_GPU
        xs = [rand((1 + i % 4, 3, 8, 8), i) for i in range(n)]
        out = concurrently(n, s.grpc_client, lambda c, i: grpc_infer(c, "conv", {"x": xs[i]}).as_numpy("y"))
        for i in range(n):
            assert models.rel_l2(out[i], cpu.infer({"x": xs[i]})["y"]) < 1e-3, i
        c = s.http_client()
        cfg = c.get_model_config("conv")
        assert sum(g["count"] for g in cfg["instance_group"]) == 2 * N_GPU
        c.close()
        assert f"CUDA {','.join([str(d) for d in range(N_GPU)] * 2)}" in s.output()
    finally:
        assert s.stop() == 0, s.output()
