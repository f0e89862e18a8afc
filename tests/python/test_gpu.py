"""CUDA engines from Python (skipped without a usable GPU; the torch tests also need PyTorch with
CUDA): infer() against the CPU backend, device pointers and streams, host pointers refused, torch
CUDA tensors zero-copy (inputs, outputs=, set_tensor_address) on their stream."""
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

    def test_infer_on_torch_cuda_tensors_zero_copy(self):
        ctx = self.engine.create_execution_context()
        for batch in (1, 7, 16):
            x = torch.randn(batch, 4, device="cuda")
            out = ctx.infer({"x": x})  # on torch's current stream, no wait: torch orders what follows
            self.assertIsInstance(out["y"], torch.Tensor)
            self.assertEqual(out["y"].device, x.device)
            self.assertEqual(tuple(out["y"].shape), (batch, 3))
            ref = models.reference(self.model, {"x": x.cpu().numpy()})
            self.assertLess(models.rel_l2(out["y"].cpu().numpy(), ref["y"]), 1e-3)
            self.assertLess(models.rel_l2(out["s"].cpu().numpy(), ref["s"]), 1e-3)

    def test_infer_on_a_side_stream_and_given_outputs(self):
        ctx = self.engine.create_execution_context()
        stream = torch.cuda.Stream()
        x = torch.randn(5, 4, device="cuda")
        y = torch.full((5, 3), float("nan"), device="cuda")
        torch.cuda.synchronize()  # made on the default stream; as for any torch op on a side stream
        with torch.cuda.stream(stream):  # the tensors' stream is now the side stream
            out = ctx.infer({"x": x}, outputs={"y": y})
            z = y * 2  # ordered after the engine on the same stream
        stream.synchronize()
        self.assertIs(out["y"], y)
        ref = models.reference(self.model, {"x": x.cpu().numpy()})
        self.assertLess(models.rel_l2(z.cpu().numpy() / 2, ref["y"]), 1e-3)
        y2 = torch.empty(5, 3, device="cuda")
        ctx.infer({"x": x}, stream=stream, outputs={"y": y2})  # an explicit stream= object
        stream.synchronize()
        self.assertLess(models.rel_l2(y2.cpu().numpy(), ref["y"]), 1e-3)

    def test_torch_errors_then_still_usable(self):
        ctx = self.engine.create_execution_context()
        x = torch.randn(4, 4, device="cuda")
        cases = [
            ({"x": x.double()}, TypeError, "dtype torch.float64"),
            ({"x": x.t()}, ValueError, "not C-contiguous"),
            ({"x": torch.randn(40, 4, device="cuda")}, ValueError, "outside optimization profile"),
        ]
        if torch.cuda.device_count() > 1:
            cases.append(({"x": x.to("cuda:1")}, ValueError, "is on cuda:1 but the engine's context runs on cuda:0"))
        for feed, exc, text in cases:
            with self.subTest(text=text):
                with self.assertRaisesRegex(exc, text):
                    ctx.infer(feed)
        with self.assertRaisesRegex(ValueError, "output 'y' has shape 4x2"):
            ctx.infer({"x": x}, outputs={"y": torch.empty(4, 2, device="cuda")})
        self.assertEqual(tuple(ctx.infer({"x": x})["y"].shape), (4, 3))

    def test_cpu_tensors_are_copied(self):
        ctx = self.engine.create_execution_context()
        x = torch.randn(3, 4)
        out = ctx.infer({"x": x})  # host memory for a CUDA engine: copied, outputs are numpy
        self.assertIsInstance(out["y"], np.ndarray)
        self.assertLess(models.rel_l2(out["y"], models.reference(self.model, {"x": x.numpy()})["y"]), 1e-3)

    def test_set_tensor_address_with_tensors(self):
        ctx = self.engine.create_execution_context()
        x = torch.randn(6, 4, device="cuda")
        y, s = torch.empty(6, 3, device="cuda"), torch.empty(6, 3, device="cuda")
        self.assertTrue(ctx.set_input_shape("x", (6, 4)))
        for name, t in (("x", x), ("y", y), ("s", s)):
            self.assertTrue(ctx.set_tensor_address(name, t))
        stream = torch.cuda.current_stream()
        self.assertTrue(ctx.execute_async_v3(stream))
        stream.synchronize()
        ref = models.reference(self.model, {"x": x.cpu().numpy()})
        self.assertLess(models.rel_l2(s.cpu().numpy(), ref["s"]), 1e-3)
        with self.assertRaisesRegex(ValueError, "host memory but the engine runs on CUDA"):
            ctx.set_tensor_address("x", x.cpu())
        self.assertTrue(ctx.set_input_shape("x", (9, 4)))
        with self.assertRaisesRegex(ValueError, "holds 96 bytes but the tensor needs 144"):
            ctx.execute_async_v3(stream)

    def test_data_dependent_output_on_the_device(self):
        model = models.nonzero()
        engine, _ = build(model, [{"x": ((1,), (8,), (64,))}], backend=kiln.Backend.CUDA)
        ctx = engine.create_execution_context()
        x = torch.tensor([0, 1, 0, 2, 5], dtype=torch.float32, device="cuda")
        idx = ctx.infer({"x": x})["idx"]
        self.assertIsInstance(idx, torch.Tensor)
        np.testing.assert_array_equal(idx.cpu().numpy(), models.reference(model, {"x": x.cpu().numpy()})["idx"])

@unittest.skipUnless(HAS_TORCH, "needs PyTorch with CUDA")
class TorchExample(unittest.TestCase):
    def test_torch_resnet_example(self):
        import os
        import subprocess
        import sys
        script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "torch_resnet.py")
        r = subprocess.run([sys.executable, script, "--iterations", "5"], capture_output=True, text=True, timeout=600)
        if "SKIPPED" in r.stdout:
            self.skipTest(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("&&&& PASSED torch_resnet", r.stdout)

    def test_cpu_engine_refuses_device_pointers(self):
        engine, _ = build(models.mlp(), [MLP_PROFILE], backend=kiln.Backend.CPU)
        ctx = engine.create_execution_context()
        x = torch.randn(2, 4, device="cuda")
        self.assertFalse(ctx.set_tensor_address("x", x.data_ptr()))
        with self.assertRaisesRegex(ValueError, "is on cuda:0 but the engine runs on the CPU"):
            ctx.infer({"x": x})


if __name__ == "__main__":
    unittest.main()


class CudaDeviceSelection(unittest.TestCase):
    """kiln._kiln._cuda_device_count / _cuda_set_device (kiln serve's placement, issue 17)."""

    def test_count_and_bad_index(self):
        n = kiln._kiln._cuda_device_count()
        self.assertEqual(n > 0, HAS_GPU)
        with self.assertRaisesRegex(ValueError, f"no CUDA device {n} \\({n} found\\)"):
            kiln._kiln._cuda_set_device(n)
        with self.assertRaisesRegex(ValueError, "no CUDA device -1"):
            kiln._kiln._cuda_set_device(-1)

    @unittest.skipUnless(HAS_GPU, "needs a CUDA device")
    def test_engine_on_each_device(self):
        # an engine loaded and run on each device (the thread's current device) matches the CPU's
        model = models.convnet()
        profile = [{"x": ((1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}]
        cpu, _ = build(model, profile, backend=kiln.Backend.CPU)
        x = np.random.default_rng(3).standard_normal((3, 3, 8, 8)).astype(np.float32)
        want = cpu.create_execution_context().infer({"x": x})["y"]
        for d in range(kiln._kiln._cuda_device_count()):
            kiln._kiln._cuda_set_device(d)
            engine, _ = build(model, profile, backend=kiln.Backend.CUDA)
            got = engine.create_execution_context().infer({"x": x})["y"]
            self.assertLess(models.rel_l2(got, want), 1e-3, f"device {d}")
        kiln._kiln._cuda_set_device(0)
