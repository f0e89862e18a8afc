"""CUDA engines from Python (skipped without a usable GPU; the torch tests also need PyTorch with
CUDA): infer() against the CPU backend, device pointers and streams, host pointers refused."""
import unittest

import numpy as np

import kiln
import models
from test_build_run import MLP_PROFILE, build

HAS_GPU = kiln._kiln._cuda_device_available()
try:
    import torch
    HAS_TORCH = HAS_GPU and torch.cuda.is_available()
except ImportError:
    HAS_TORCH = False


@unittest.skipUnless(HAS_GPU, "needs a CUDA device")
class CudaEngines(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = models.convnet()
        profile = [{"x": ((1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}]
        cls.cuda, _ = build(cls.model, profile, backend=kiln.Backend.CUDA)
        cls.cpu, _ = build(cls.model, profile, backend=kiln.Backend.CPU)

    def test_infer_matches_cpu_and_reference(self):
        self.assertEqual(self.cuda.backend, "cuda")
        ctx_gpu, ctx_cpu = self.cuda.create_execution_context(), self.cpu.create_execution_context()
        for batch in (1, 5, 8, 2):  # shapes change: the device buffers are reused or grown
            x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
            g, c = ctx_gpu.infer({"x": x})["y"], ctx_cpu.infer({"x": x})["y"]
            self.assertEqual(g.shape, (batch, 4))
            self.assertLess(models.rel_l2(g, c), 1e-3)
            self.assertLess(models.rel_l2(g, models.reference(self.model, {"x": x})["y"]), 1e-3)

    def test_host_pointer_refused(self):
        ctx = self.cuda.create_execution_context()
        x = np.ones((2, 3, 8, 8), np.float32)
        self.assertFalse(ctx.set_tensor_address("x", x.ctypes.data))
        self.assertEqual(ctx.infer({"x": x})["y"].shape, (2, 4))  # still usable

    def test_data_dependent_output(self):
        model = models.nonzero()
        engine, _ = build(model, [{"x": ((1,), (8,), (64,))}], backend=kiln.Backend.CUDA)
        ctx = engine.create_execution_context()
        for x in (np.array([0, 1, 0, 2], np.float32), np.arange(50, dtype=np.float32)):
            np.testing.assert_array_equal(ctx.infer({"x": x})["idx"], models.reference(model, {"x": x})["idx"])


@unittest.skipUnless(HAS_TORCH, "needs PyTorch with CUDA")
class TorchTensors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = models.mlp()
        cls.engine, _ = build(cls.model, [MLP_PROFILE], backend=kiln.Backend.CUDA)

    def test_device_pointers_and_stream(self):
        ctx = self.engine.create_execution_context()
        x = torch.randn(6, 4, device="cuda")
        y = torch.empty(6, 3, device="cuda")
        s = torch.empty(6, 3, device="cuda")
        stream = torch.cuda.Stream()
        self.assertTrue(ctx.set_input_shape("x", tuple(x.shape)))
        for name, t in (("x", x), ("y", y), ("s", s)):
            self.assertTrue(ctx.set_tensor_address(name, t.data_ptr()))
        torch.cuda.current_stream().synchronize()
        self.assertTrue(ctx.execute_async_v3(stream.cuda_stream))
        stream.synchronize()
        ref = models.reference(self.model, {"x": x.cpu().numpy()})
        self.assertLess(models.rel_l2(y.cpu().numpy(), ref["y"]), 1e-3)

    def test_infer_on_a_torch_stream(self):
        ctx = self.engine.create_execution_context()
        x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
        out = ctx.infer({"x": x}, stream=torch.cuda.Stream())
        self.assertLess(models.rel_l2(out["y"], models.reference(self.model, {"x": x})["y"]), 1e-3)

    def test_device_tensor_in_infer_is_not_supported_yet(self):
        ctx = self.engine.create_execution_context()
        with self.assertRaises(NotImplementedError):
            ctx.infer({"x": torch.ones(2, 4, device="cuda")})


if __name__ == "__main__":
    unittest.main()
