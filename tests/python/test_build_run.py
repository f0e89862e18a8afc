"""kiln's Python API: parse, build with profiles, serialize, load, run (CPU backend here; on a
GPU machine the auto backend makes the infer() tests run CUDA engines)."""
import gc
import os
import tempfile
import threading
import unittest
import warnings

import numpy as np

import kiln
import models


def build(model, profiles=(), fp16=False, backend=None, logger=None):
    logger = logger or kiln.Logger(kiln.Logger.WARNING)
    builder = kiln.Builder(logger)
    network = builder.create_network()
    parser = kiln.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.set_memory_pool_limit(kiln.MemoryPoolType.WORKSPACE, 64 << 20)
    if fp16:
        with warnings.catch_warnings():  # deprecated in TensorRT 10.12 (tested in test_errors_compat)
            warnings.simplefilter("ignore", DeprecationWarning)
            config.set_flag(kiln.BuilderFlag.FP16)
    if backend is not None:
        config.backend = backend
    for p in profiles:
        profile = builder.create_optimization_profile()
        for name, (mn, opt, mx) in p.items():
            profile.set_shape(name, mn, opt, mx)
        assert config.add_optimization_profile(profile) >= 0
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    engine = kiln.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None
    return engine, plan


MLP_PROFILE = {"x": ((1, 4), (4, 4), (16, 4))}


class BuildAndRun(unittest.TestCase):
    def test_dynamic_profile_serialize_deserialize_infer(self):
        model = models.mlp()
        engine, plan = build(model, [MLP_PROFILE])
        self.assertIsInstance(plan, kiln.IHostMemory)
        self.assertEqual(plan.nbytes, len(bytes(plan)))
        self.assertEqual(memoryview(plan).nbytes, plan.nbytes)
        # serialize() gives the same bytes back; a second load from plain bytes works
        self.assertEqual(bytes(engine.serialize()), bytes(plan))
        engine2 = kiln.Runtime(kiln.Logger()).deserialize_cuda_engine(bytes(plan))
        for eng in (engine, engine2):
            ctx = eng.create_execution_context()
            for batch in (1, 3, 16):
                x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
                out = ctx.infer({"x": x})
                ref = models.reference(model, {"x": x})
                self.assertEqual(set(out), {"y", "s"})
                for k in ("y", "s"):
                    self.assertEqual(out[k].shape, (batch, 3))
                    self.assertEqual(out[k].dtype, np.float32)
                    self.assertLess(models.rel_l2(out[k], ref[k]), 1e-5, k)

    def test_engine_introspection(self):
        engine, _ = build(models.mlp(), [MLP_PROFILE])
        self.assertEqual(engine.num_io_tensors, 3)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.assertEqual(names, ["x", "y", "s"])
        self.assertEqual(engine.get_tensor_mode("x"), kiln.TensorIOMode.INPUT)
        self.assertEqual(engine.get_tensor_mode("y"), kiln.TensorIOMode.OUTPUT)
        self.assertEqual(engine.get_tensor_mode("nope"), kiln.TensorIOMode.NONE)
        self.assertEqual(engine.get_tensor_dtype("x"), kiln.DataType.FLOAT)
        self.assertEqual(engine.get_tensor_shape("x"), (-1, 4))
        self.assertEqual(engine.num_optimization_profiles, 1)
        self.assertEqual(engine.get_tensor_profile_shape("x", 0), [(1, 4), (4, 4), (16, 4)])
        self.assertIn(engine.backend, ("cpu", "cuda"))
        self.assertGreater(engine.num_layers, 0)
        self.assertIn("tactic", engine.get_layer_info(0))
        ctx = engine.create_execution_context()
        self.assertIs(ctx.engine, engine)
        self.assertTrue(ctx.set_input_shape("x", (5, 4)))
        self.assertEqual(ctx.get_tensor_shape("y"), (5, 3))

    def test_network_tensors_and_fixed_shape(self):
        logger = kiln.Logger()
        builder = kiln.Builder(logger)
        network = builder.create_network()
        parser = kiln.OnnxParser(network, logger)
        self.assertTrue(parser.parse(models.mlp().SerializeToString()))
        self.assertEqual((network.num_inputs, network.num_outputs), (1, 2))
        x = network.get_input(0)
        self.assertEqual((x.name, x.shape, x.dtype), ("x", (-1, 4), kiln.DataType.FLOAT))
        self.assertEqual(network.get_output(0).name, "y")
        self.assertEqual(network.get_output(1).shape, (-1, 3))
        with self.assertRaises(IndexError):
            network.get_input(1)
        with self.assertRaisesRegex(ValueError, "fixed at 4"):
            x.shape = (2, 5)
        with self.assertRaisesRegex(ValueError, "rank 2"):
            x.shape = (2, 4, 1)
        x.shape = (2, 4)  # fixes the batch, as TensorRT: no profile needed, outputs become static
        self.assertEqual(network.get_input(0).shape, (2, 4))
        self.assertEqual(network.get_output(0).shape, (2, 3))
        plan = builder.build_serialized_network(network, builder.create_builder_config())
        engine = kiln.Runtime(logger).deserialize_cuda_engine(plan)
        self.assertEqual(engine.get_tensor_shape("x"), (2, 4))
        self.assertEqual(engine.get_tensor_shape("y"), (2, 3))
        out = engine.create_execution_context().infer({"x": np.ones((2, 4), np.float32)})
        self.assertEqual(out["y"].shape, (2, 3))

    def test_several_profiles(self):
        model = models.mlp()
        engine, _ = build(model, [{"x": ((1, 4), (2, 4), (4, 4))}, {"x": ((8, 4), (16, 4), (32, 4))}])
        self.assertEqual(engine.num_optimization_profiles, 2)
        self.assertEqual(engine.get_tensor_profile_shape("x", 1)[2], (32, 4))
        ctx = engine.create_execution_context()
        self.assertEqual(ctx.active_optimization_profile, 0)
        with self.assertRaisesRegex(ValueError, "outside optimization profile 0"):
            ctx.infer({"x": np.zeros((20, 4), np.float32)})
        self.assertTrue(ctx.set_optimization_profile_async(1, 0))
        x = np.random.default_rng(5).standard_normal((20, 4)).astype(np.float32)
        out = ctx.infer({"x": x})
        self.assertLess(models.rel_l2(out["y"], models.reference(model, {"x": x})["y"]), 1e-5)
        self.assertFalse(ctx.set_optimization_profile_async(2, 0))

    def test_tensorrt10_tensor_addresses(self):
        model = models.mlp()
        engine, _ = build(model, [MLP_PROFILE], backend=kiln.Backend.CPU)
        ctx = engine.create_execution_context()
        x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
        self.assertTrue(ctx.set_input_shape("x", x.shape))
        outs = {n: np.empty(ctx.get_tensor_shape(n), kiln.nptype(engine.get_tensor_dtype(n))) for n in ("y", "s")}
        self.assertTrue(ctx.set_tensor_address("x", x.ctypes.data))
        for n, a in outs.items():
            self.assertTrue(ctx.set_tensor_address(n, a.ctypes.data))
        self.assertEqual(ctx.get_tensor_address("x"), x.ctypes.data)
        self.assertTrue(ctx.execute_async_v3(0))
        ref = models.reference(model, {"x": x})
        self.assertLess(models.rel_l2(outs["y"], ref["y"]), 1e-5)
        # execute_v2: one address per I/O tensor in index order
        outs2 = [np.empty((3, 3), np.float32) for _ in range(2)]
        self.assertTrue(ctx.execute_v2([x.ctypes.data] + [o.ctypes.data for o in outs2]))
        self.assertLess(models.rel_l2(outs2[1], ref["s"]), 1e-5)
        self.assertFalse(ctx.execute_v2([x.ctypes.data]))  # wrong count: False, error logged

    def test_fp16_build(self):
        model = models.convnet()
        engine, _ = build(model, [{"x": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}], fp16=True)
        x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
        out = engine.create_execution_context().infer({"x": x})
        self.assertEqual(out["y"].dtype, np.float32)  # I/O keeps its type under FP16
        self.assertLess(models.rel_l2(out["y"], models.reference(model, {"x": x})["y"]), 1e-2)

    def test_int64_and_bool_io(self):
        model = models.int_bool()
        engine, _ = build(model, [{"i": ((1,), (4,), (8,)), "b": ((1,), (4,), (8,))}])
        self.assertEqual(engine.get_tensor_dtype("i"), kiln.DataType.INT64)
        self.assertEqual(kiln.nptype(engine.get_tensor_dtype("b")), np.bool_)
        i = np.arange(5, dtype=np.int64)
        b = np.array([True, False, True, True, False])
        out = engine.create_execution_context().infer({"i": i, "b": b})
        np.testing.assert_array_equal(out["j"], i + 1)
        np.testing.assert_array_equal(out["nb"], ~b)
        self.assertEqual(out["nb"].dtype, np.bool_)

    def test_data_dependent_output(self):
        model = models.nonzero()
        engine, _ = build(model, [{"x": ((1,), (8,), (64,))}])
        ctx = engine.create_execution_context()
        for x in (np.array([0, 1, 0, 2, 3], np.float32), np.zeros(7, np.float32), np.arange(40, dtype=np.float32)):
            out = ctx.infer({"x": x})
            np.testing.assert_array_equal(out["idx"], models.reference(model, {"x": x})["idx"])

    def test_kiln_build_helper_and_load(self):
        model = models.convnet()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "convnet.onnx")
            with open(path, "wb") as f:
                f.write(model.SerializeToString())
            engine = kiln.build(path, profiles={"x": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}, workspace=32 << 20)
            x = np.random.default_rng(4).standard_normal((3, 3, 8, 8)).astype(np.float32)
            out = engine.create_execution_context().infer({"x": x})
            self.assertLess(models.rel_l2(out["y"], models.reference(model, {"x": x})["y"]), 1e-5)
            epath = os.path.join(d, "convnet.engine")
            with open(epath, "wb") as f:
                f.write(engine.serialize())
            again = kiln.load(epath).create_execution_context().infer({"x": x})
            np.testing.assert_array_equal(again["y"], out["y"])
        # bytes and a fixed shape (min = opt = max) work too
        e2 = kiln.build(model.SerializeToString(), profiles=[{"x": (2, 3, 8, 8)}], backend="cpu")
        self.assertEqual(e2.get_tensor_profile_shape("x", 0), [(2, 3, 8, 8)] * 3)

    def test_contexts_on_threads(self):
        model = models.mlp()
        engine, _ = build(model, [MLP_PROFILE])
        errors = []

        def work(seed):
            try:
                ctx = engine.create_execution_context()
                rng = np.random.default_rng(seed)
                for _ in range(20):
                    x = rng.standard_normal((int(rng.integers(1, 17)), 4)).astype(np.float32)
                    y = ctx.infer({"x": x})["y"]
                    if models.rel_l2(y, models.reference(model, {"x": x})["y"]) > 1e-5:
                        errors.append("mismatch")
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_objects_outlive_their_parents(self):
        # The engine keeps the runtime and logger alive, the context the engine, the parser the network.
        model = models.mlp()
        engine, plan = build(model, [MLP_PROFILE])
        ctx = engine.create_execution_context()
        del engine, plan
        gc.collect()
        out = ctx.infer({"x": np.ones((2, 4), np.float32)})
        self.assertEqual(out["y"].shape, (2, 3))


class Python(unittest.TestCase):
    def test_nptype_and_volume(self):
        self.assertIs(kiln.nptype(kiln.DataType.FLOAT), np.float32)
        self.assertIs(kiln.nptype(kiln.DataType.HALF), np.float16)
        self.assertIs(kiln.nptype(kiln.DataType.INT32), np.int32)
        self.assertIs(kiln.nptype(kiln.DataType.INT8), np.int8)
        self.assertEqual(kiln.volume((2, 3, 4)), 24)

    def test_python_logger_receives_messages(self):
        logger = models.Collect()
        build(models.mlp(), [MLP_PROFILE], logger=logger)
        self.assertTrue(logger.seen, "the Python logger was never called")
        self.assertTrue(all(isinstance(s, kiln.ILogger.Severity) and isinstance(m, str) for s, m in logger.seen))
        self.assertTrue(any(s == kiln.Logger.INFO for s, _ in logger.seen))

    def test_logger_that_raises_does_not_break_the_build(self):
        class Broken(kiln.ILogger):
            def __init__(self):
                kiln.ILogger.__init__(self)

            def log(self, severity, msg):
                raise RuntimeError("logger bug")

        import sys
        seen = []
        old = sys.unraisablehook
        sys.unraisablehook = lambda u: seen.append(u.exc_value)
        try:
            engine, _ = build(models.mlp(), [MLP_PROFILE], logger=Broken())
        finally:
            sys.unraisablehook = old
        self.assertIsNotNone(engine)
        self.assertTrue(any("logger bug" in str(e) for e in seen))


if __name__ == "__main__":
    unittest.main()
