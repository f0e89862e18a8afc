"""Arrays and tensors passed zero-copy: DLPack (__dlpack__/__dlpack_device__), the buffer protocol
and __cuda_array_interface__, through context.infer() (inputs and outputs=) and
set_tensor_address(name, array). Without a GPU: numpy's own __dlpack__ (kDLCPU) on CPU engines,
and objects with a made-up __cuda_array_interface__ for every error path (they are refused before
any CUDA call). The CUDA paths with PyTorch tensors are in test_gpu.py."""
import unittest

import numpy as np

import kiln
import models
from test_build_run import MLP_PROFILE, build


class DLPackOnly:
    """Exposes an array through DLPack alone (no buffer protocol), as a framework's tensor does."""

    def __init__(self, array):
        self.array = array
        self.calls = []

    def __dlpack__(self, **kwargs):
        self.calls.append(kwargs)
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


class FakeCuda:
    """A __cuda_array_interface__ (v3) describing device memory that does not exist; kiln must
    refuse it by its description alone (dtype, layout, device) without touching the pointer."""

    def __init__(self, shape, typestr="<f4", strides=None, ptr=0xDEAD0000, readonly=False, **extra):
        self.__cuda_array_interface__ = dict(shape=tuple(shape), typestr=typestr, data=(ptr, readonly),
                                             strides=strides, version=3, stream=1, **extra)


def quiet():
    return kiln.Logger(kiln.Logger.INTERNAL_ERROR)


class DLPackOnCpu(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = models.mlp()
        cls.engine, _ = build(cls.model, [MLP_PROFILE], backend=kiln.Backend.CPU, logger=quiet())

    def setUp(self):
        self.ctx = self.engine.create_execution_context()
        self.x = np.random.default_rng(11).standard_normal((5, 4)).astype(np.float32)
        self.ref = models.reference(self.model, {"x": self.x})

    def test_infer_reads_dlpack_inputs(self):
        src = DLPackOnly(self.x)
        self.assertFalse(hasattr(src, "__array_interface__"))
        out = self.ctx.infer({"x": src})
        self.assertTrue(src.calls, "__dlpack__ was not called")
        for k in ("y", "s"):
            self.assertLess(models.rel_l2(out[k], self.ref[k]), 1e-5)

    def test_infer_writes_into_given_outputs_in_place(self):
        y = np.full((5, 3), np.nan, np.float32)
        s = np.full((5, 3), np.nan, np.float32)
        out = self.ctx.infer({"x": self.x}, outputs={"y": DLPackOnly(y), "s": s})
        self.assertIs(out["s"], s)
        self.assertIsInstance(out["y"], DLPackOnly)
        self.assertLess(models.rel_l2(y, self.ref["y"]), 1e-5)  # written through DLPack: no copy
        self.assertLess(models.rel_l2(s, self.ref["s"]), 1e-5)
        # only some outputs given: the others are new arrays
        out = self.ctx.infer({"x": self.x}, outputs={"s": s})
        self.assertLess(models.rel_l2(out["y"], self.ref["y"]), 1e-5)

    def test_bad_outputs_then_still_usable(self):
        y = np.empty((5, 3), np.float32)
        ro = np.empty((5, 3), np.float32)
        ro.flags.writeable = False
        cases = [
            ({"y": np.empty((4, 3), np.float32)}, ValueError, "output 'y' has shape 4x3 but the context's shape of it is 5x3"),
            ({"y": np.empty((5, 3), np.float64)}, TypeError, "output 'y' has dtype float64"),
            ({"y": np.empty((3, 5), np.float32).T}, ValueError, "output 'y' is not C-contiguous"),
            ({"y": ro}, ValueError, "output 'y' is read-only"),
            ({"y": "not an array"}, TypeError, "output 'y' must be an array"),
            ({"x": y}, ValueError, "'x' is not an output"),
            ({"y": FakeCuda((5, 3))}, ValueError, "output 'y' is on a CUDA device but the engine runs on the CPU"),
        ]
        for outputs, exc, text in cases:
            with self.subTest(text=text):
                with self.assertRaisesRegex(exc, text):
                    self.ctx.infer({"x": self.x}, outputs=outputs)
        with self.assertRaisesRegex(TypeError, "outputs must be None or a dict"):
            self.ctx.infer({"x": self.x}, outputs=[y])
        self.assertLess(models.rel_l2(self.ctx.infer({"x": self.x})["y"], self.ref["y"]), 1e-5)

    def test_cuda_array_interface_errors_then_still_usable(self):
        cases = [
            (FakeCuda((5, 4)), ValueError, "input 'x' is on a CUDA device but the engine runs on the CPU"),
            (FakeCuda((5, 4), typestr="<f8"), TypeError, "input 'x' has dtype <f8 but the engine expects float"),
            (FakeCuda((5, 4), typestr="<c8"), TypeError, "typestr '<c8', which kiln has no type for"),
            (FakeCuda((5, 4), typestr=">f4"), TypeError, "typestr '>f4'"),
            (FakeCuda((5, 4), strides=(4, 20)), ValueError, "input 'x' is not C-contiguous"),
            (FakeCuda((5, 4), strides=(16, 4)), ValueError, "on a CUDA device"),  # C strides spelled out: fine
            (FakeCuda((5, 4), mask=object()), TypeError, "has a mask"),
            (FakeCuda(("a", 4)), TypeError, "malformed"),
        ]
        for obj, exc, text in cases:
            with self.subTest(text=text):
                with self.assertRaisesRegex(exc, text):
                    self.ctx.infer({"x": obj})
        self.assertLess(models.rel_l2(self.ctx.infer({"x": self.x})["y"], self.ref["y"]), 1e-5)

    def test_set_tensor_address_with_arrays(self):
        ctx = self.ctx
        self.assertTrue(ctx.set_input_shape("x", self.x.shape))
        y = np.empty((5, 3), np.float32)
        s = np.empty((5, 3), np.float32)
        self.assertTrue(ctx.set_tensor_address("x", DLPackOnly(self.x)))
        self.assertTrue(ctx.set_tensor_address("y", y))
        self.assertTrue(ctx.set_tensor_address("s", s))
        self.assertEqual(ctx.get_tensor_address("y"), y.ctypes.data)

        class Stream:  # any object with cuda_stream/handle/ptr is taken as a stream
            cuda_stream = 0

        self.assertTrue(ctx.execute_async_v3(Stream()))
        self.assertLess(models.rel_l2(y, self.ref["y"]), 1e-5)
        self.assertLess(models.rel_l2(s, self.ref["s"]), 1e-5)
        # a larger shape than the bound arrays hold: refused before running, naming the tensor
        self.assertTrue(ctx.set_input_shape("x", (8, 4)))
        with self.assertRaisesRegex(ValueError, "'x': the array given to set_tensor_address holds 80 bytes but the tensor needs 128"):
            ctx.execute_async_v3(0)
        with self.assertRaisesRegex(TypeError, "stream must be an int"):
            ctx.execute_async_v3("default")

    def test_set_tensor_address_bad_arrays(self):
        ctx = self.ctx
        ro = np.empty((5, 3), np.float32)
        ro.flags.writeable = False
        cases = [
            ("x", self.x.astype(np.float16), TypeError, r"set_tensor_address\('x'\) has dtype float16"),
            ("x", np.empty((4, 5), np.float32).T, ValueError, r"set_tensor_address\('x'\) is not C-contiguous"),
            ("y", ro, ValueError, r"set_tensor_address\('y'\) is read-only"),
            ("x", FakeCuda((5, 4)), ValueError, "is on a CUDA device but the engine runs on the CPU"),
            ("x", {"not": "an array"}, TypeError, "must be an array"),
        ]
        for name, obj, exc, text in cases:
            with self.subTest(text=text):
                with self.assertRaisesRegex(exc, text):
                    ctx.set_tensor_address(name, obj)
        self.assertFalse(ctx.set_tensor_address("nope", self.x))  # TensorRT's contract: False, logged
        out = ctx.infer({"x": self.x})  # still usable
        self.assertLess(models.rel_l2(out["y"], self.ref["y"]), 1e-5)

    def test_bound_arrays_stay_alive(self):
        import gc
        ctx = self.ctx
        self.assertTrue(ctx.set_input_shape("x", (5, 4)))
        self.assertTrue(ctx.set_tensor_address("x", self.x.copy()))  # the only reference is the context's
        y, s = np.empty((5, 3), np.float32), np.empty((5, 3), np.float32)
        ctx.set_tensor_address("y", y)
        ctx.set_tensor_address("s", s)
        gc.collect()
        self.assertTrue(ctx.execute_async_v3(0))
        self.assertLess(models.rel_l2(y, self.ref["y"]), 1e-5)


if __name__ == "__main__":
    unittest.main()
