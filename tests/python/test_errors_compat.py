"""Bad input gives clear Python exceptions (never a crash) and leaves objects usable; TensorRT's
removed names still work with a DeprecationWarning; unsupported names raise NotImplementedError;
INT8 calibrator subclasses are called through the C++ interface."""
import os
import tempfile
import struct
import unittest
import warnings

import numpy as np

import kiln
import models
from test_build_run import MLP_PROFILE, build


def quiet():
    return kiln.Logger(kiln.Logger.INTERNAL_ERROR)


class ParserErrors(unittest.TestCase):
    def test_malformed_bytes(self):
        network = kiln.Builder(quiet()).create_network()
        parser = kiln.OnnxParser(network, quiet())
        self.assertFalse(parser.parse(b"\x08\x07this is not a protobuf \xff\xff\xff"))
        self.assertGreaterEqual(parser.num_errors, 1)
        err = parser.get_error(0)
        self.assertTrue(err.desc())
        self.assertTrue(str(err))
        with self.assertRaises(IndexError):
            parser.get_error(parser.num_errors)
        parser.clear_errors()
        self.assertEqual(parser.num_errors, 0)
        with self.assertRaisesRegex(TypeError, "buffer protocol"):
            parser.parse(12345)

    def test_unsupported_operators_name_their_nodes(self):
        network = kiln.Builder(quiet()).create_network()
        parser = kiln.OnnxParser(network, quiet())
        self.assertFalse(parser.parse(models.unsupported().SerializeToString()))
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        by_op = {e.node_operator(): e for e in errors}
        self.assertIn("Frobnicate", by_op)
        self.assertIn("Twiddle", by_op)
        self.assertEqual(by_op["Frobnicate"].node_name(), "frob_1")
        self.assertEqual(by_op["Twiddle"].node_name(), "twiddle_7")
        self.assertIn("frob_1", str(by_op["Frobnicate"]))
        self.assertIn("unsupported operator", by_op["Twiddle"].desc())

    def test_missing_file(self):
        parser = kiln.OnnxParser(kiln.Builder(quiet()).create_network(), quiet())
        self.assertFalse(parser.parse_from_file("/nonexistent/model.onnx"))
        self.assertIn("/nonexistent/model.onnx", parser.get_error(0).desc())

    def test_kiln_build_raises_with_the_reason(self):
        with self.assertRaisesRegex(kiln.KilnError, "Frobnicate"):
            kiln.build(models.unsupported().SerializeToString(), logger=quiet())
        with self.assertRaisesRegex(kiln.KilnError, "dynamic shape"):
            kiln.build(models.mlp().SerializeToString(), logger=quiet())  # dynamic input, no profile


class BuildErrors(unittest.TestCase):
    def test_profile_errors(self):
        builder = kiln.Builder(quiet())
        profile = builder.create_optimization_profile()
        with self.assertRaisesRegex(ValueError, "min <= opt <= max"):
            profile.set_shape("x", (4, 4), (2, 4), (8, 4))
        with self.assertRaisesRegex(ValueError, "different ranks"):
            profile.set_shape("x", (1, 4), (2, 4), (8,))
        with self.assertRaisesRegex(TypeError, "sequence of ints"):
            profile.set_shape("x", "abc", (2, 4), (8, 4))
        with self.assertRaises(NotImplementedError):
            profile.set_shape_input("x", (1,), (1,), (1,))

    def test_profile_naming_an_unknown_input_fails_the_build(self):
        logger = quiet()
        builder = kiln.Builder(logger)
        network = builder.create_network()
        kiln.OnnxParser(network, logger).parse(models.mlp().SerializeToString())
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        profile.set_shape("not_an_input", (1,), (1,), (1,))
        config.add_optimization_profile(profile)
        self.assertIsNone(builder.build_serialized_network(network, config))

    def test_unsupported_names_raise_not_implemented(self):
        builder = kiln.Builder(quiet())
        config = builder.create_builder_config()
        for flag in (kiln.BuilderFlag.FP8, kiln.BuilderFlag.INT4, kiln.BuilderFlag.REFIT, kiln.BuilderFlag.SPARSE_WEIGHTS):
            with self.assertRaisesRegex(NotImplementedError, flag.name):
                config.set_flag(flag)
            self.assertFalse(config.get_flag(flag))
        with self.assertRaises(NotImplementedError):
            config.set_memory_pool_limit(kiln.MemoryPoolType.DLA_MANAGED_SRAM, 1)
        with self.assertRaisesRegex(NotImplementedError, "STRONGLY_TYPED"):
            builder.create_network(1 << int(kiln.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        with self.assertRaises(NotImplementedError):
            kiln.get_plugin_registry()

    def test_flags(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # FP16/BF16/INT8: tested in Deprecated
            self.check_flags()

    def check_flags(self):
        config = kiln.Builder(quiet()).create_builder_config()
        self.assertTrue(config.get_flag(kiln.BuilderFlag.TF32))  # on by default, as TensorRT
        for f in (kiln.BuilderFlag.FP16, kiln.BuilderFlag.BF16, kiln.BuilderFlag.INT8, kiln.BuilderFlag.GPU_FALLBACK,
                  kiln.BuilderFlag.OBEY_PRECISION_CONSTRAINTS):
            config.set_flag(f)
            self.assertTrue(config.get_flag(f))
            config.clear_flag(f)
            self.assertFalse(config.get_flag(f))
        config.flags = 1 << int(kiln.BuilderFlag.FP16)
        self.assertTrue(config.get_flag(kiln.BuilderFlag.FP16))
        self.assertFalse(config.get_flag(kiln.BuilderFlag.TF32))
        config.set_memory_pool_limit(kiln.MemoryPoolType.WORKSPACE, 1 << 20)
        self.assertEqual(config.get_memory_pool_limit(kiln.MemoryPoolType.WORKSPACE), 1 << 20)


class RunErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.engine, _ = build(models.mlp(), [MLP_PROFILE], logger=quiet())

    def test_bad_engine_bytes(self):
        runtime = kiln.Runtime(quiet())
        self.assertIsNone(runtime.deserialize_cuda_engine(b"not an engine at all"))
        good = bytes(self.engine.serialize())
        self.assertIsNone(runtime.deserialize_cuda_engine(good[: len(good) // 2]))
        flipped = bytearray(good)
        flipped[len(flipped) // 2] ^= 0xFF
        self.assertIsNone(runtime.deserialize_cuda_engine(flipped))
        with self.assertRaises(TypeError):
            runtime.deserialize_cuda_engine(3.5)
        with self.assertRaisesRegex(kiln.KilnError, "kiln.load"):
            kiln.load(b"\x00" * 64, logger=quiet())

    def test_infer_bad_inputs_then_still_usable(self):
        ctx = self.engine.create_execution_context()
        x = np.ones((2, 4), np.float32)
        cases = [
            ({"x": x.astype(np.float64)}, TypeError, "dtype float64 but the engine expects float"),
            ({"x": np.ones((40, 4), np.float32)}, ValueError, "outside optimization profile 0"),
            ({"x": np.ones((2, 5), np.float32)}, ValueError, "input 'x' of shape 2x5"),
            ({"x": np.ones((2, 4, 1), np.float32)}, ValueError, "input 'x' of shape 2x4x1"),
            ({}, ValueError, "missing input 'x'"),
            ({"x": x, "extra": x}, ValueError, "'extra' is not an input"),
            ({"x": np.ones((2, 8), np.float32)[:, ::2]}, ValueError, "not C-contiguous"),
            ({"x": [[1.0] * 4] * 2}, TypeError, "input .x. must be an array"),
        ]
        for feed, exc, text in cases:
            with self.subTest(text=text):
                with self.assertRaisesRegex(exc, text):
                    ctx.infer(feed)
        with self.assertRaisesRegex(TypeError, "dict"):
            ctx.infer([x])
        out = ctx.infer({"x": x})  # the context still works
        self.assertEqual(out["y"].shape, (2, 3))

    def test_tensorrt_calls_report_false(self):
        ctx = self.engine.create_execution_context()
        self.assertFalse(ctx.set_input_shape("x", (99, 4)))  # outside the profile
        self.assertFalse(ctx.set_input_shape("y", (1, 3)))   # not an input
        self.assertFalse(ctx.set_tensor_address("nope", 0))
        self.assertFalse(ctx.execute_async_v3(0))            # no shapes or addresses yet
        with self.assertRaises(IndexError):
            self.engine.get_tensor_name(3)
        with self.assertRaises(ValueError):
            self.engine.get_tensor_shape("nope")


class Deprecated(unittest.TestCase):
    def assertDeprecated(self, fn, text):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            result = fn()
        msgs = [str(x.message) for x in w if issubclass(x.category, DeprecationWarning)]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn(text, msgs[0])
        self.assertNotIn("\n", msgs[0])
        return result

    def test_builder_and_config(self):
        logger = quiet()
        builder = kiln.Builder(logger)
        network = self.assertDeprecated(
            lambda: builder.create_network(1 << int(kiln.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)), "EXPLICIT_BATCH")
        kiln.OnnxParser(network, logger).parse(models.mlp().SerializeToString())
        config = builder.create_builder_config()
        self.assertDeprecated(lambda: setattr(config, "max_workspace_size", 1 << 25), "max_workspace_size")
        self.assertEqual(config.get_memory_pool_limit(kiln.MemoryPoolType.WORKSPACE), 1 << 25)
        self.assertEqual(self.assertDeprecated(lambda: config.max_workspace_size, "get_memory_pool_limit"), 1 << 25)
        self.assertDeprecated(lambda: setattr(builder, "max_batch_size", 8), "max_batch_size")
        self.assertDeprecated(lambda: config.set_flag(kiln.BuilderFlag.STRICT_TYPES), "STRICT_TYPES")
        for flag in (kiln.BuilderFlag.FP16, kiln.BuilderFlag.BF16, kiln.BuilderFlag.INT8):  # removed in TensorRT 11
            self.assertDeprecated(lambda: config.set_flag(flag), f"BuilderFlag.{flag.name} is deprecated")
            self.assertTrue(config.get_flag(flag))
            config.clear_flag(flag)
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4), (2, 4), (4, 4))
        config.add_optimization_profile(profile)
        engine = self.assertDeprecated(lambda: builder.build_engine(network, config), "build_engine")
        self.assertIsInstance(engine, kiln.ICudaEngine)
        self.assertEqual(engine.create_execution_context().infer({"x": np.ones((3, 4), np.float32)})["y"].shape, (3, 3))

    def test_binding_names(self):
        engine, _ = build(models.mlp(), [MLP_PROFILE], backend=kiln.Backend.CPU, logger=quiet())
        self.assertEqual(self.assertDeprecated(lambda: engine.num_bindings, "num_io_tensors"), 3)
        self.assertEqual(self.assertDeprecated(lambda: engine.get_binding_name(1), "get_tensor_name"), "y")
        self.assertEqual(self.assertDeprecated(lambda: engine.get_binding_index("s"), "get_binding_index"), 2)
        self.assertTrue(self.assertDeprecated(lambda: engine.binding_is_input(0), "get_tensor_mode"))
        self.assertEqual(self.assertDeprecated(lambda: engine.get_binding_shape("x"), "get_tensor_shape"), (-1, 4))
        self.assertEqual(self.assertDeprecated(lambda: engine.get_binding_dtype(0), "get_tensor_dtype"), kiln.DataType.FLOAT)
        self.assertEqual(self.assertDeprecated(lambda: engine.max_batch_size, "max_batch_size"), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.assertEqual(list(engine), ["x", "y", "s"])
        ctx = engine.create_execution_context()
        self.assertTrue(self.assertDeprecated(lambda: ctx.set_binding_shape(0, (2, 4)), "set_input_shape"))
        self.assertEqual(self.assertDeprecated(lambda: ctx.get_binding_shape(1), "get_tensor_shape"), (2, 3))
        x = np.ones((2, 4), np.float32)
        y, s = np.empty((2, 3), np.float32), np.empty((2, 3), np.float32)
        ok = self.assertDeprecated(lambda: ctx.execute_async_v2([x.ctypes.data, y.ctypes.data, s.ctypes.data], 0), "execute_async_v3")
        self.assertTrue(ok)
        self.assertLess(models.rel_l2(y, models.reference(models.mlp(), {"x": x})["y"]), 1e-5)


class Calibrators(unittest.TestCase):
    def make(self, base, fail=None):
        class Calib(base):
            def __init__(self):
                base.__init__(self)
                self.batches = [np.full((2, 4), k, np.float32) for k in range(3)]
                self.written = None

            def get_batch_size(self):
                return 2

            def get_batch(self, names):
                if fail == "get_batch":
                    raise ValueError("no data today")
                if not self.batches:
                    return None
                self.current = self.batches.pop(0)
                return [self.current]

            def read_calibration_cache(self):
                return b"TRT-8601-EntropyCalibration2\nx: 3c000000\n"

            def write_calibration_cache(self, cache):
                self.written = bytes(cache)

        return Calib()

    def test_subclasses_are_called_through_the_cpp_interface(self):
        for base, algo in ((kiln.IInt8EntropyCalibrator2, kiln.CalibrationAlgoType.ENTROPY_CALIBRATION_2),
                           (kiln.IInt8MinMaxCalibrator, kiln.CalibrationAlgoType.MINMAX_CALIBRATION),
                           (kiln.IInt8EntropyCalibrator, kiln.CalibrationAlgoType.ENTROPY_CALIBRATION),
                           (kiln.IInt8LegacyCalibrator, kiln.CalibrationAlgoType.LEGACY_CALIBRATION)):
            calib = self.make(base)
            self.assertEqual(calib.get_algorithm(), algo)
            r = kiln._kiln._drive_calibrator(calib, ["x"], b"new cache")
            self.assertEqual(r["batch_size"], 2)
            self.assertEqual(r["algorithm"], int(algo))  # get_algorithm reaches the C++ interface
            self.assertEqual(len(r["batches"]), 3)
            self.assertTrue(all(b[0] != 0 for b in r["batches"]))
            self.assertTrue(r["cache"].startswith(b"TRT-8601"))
            self.assertEqual(calib.written, b"new cache")

    def test_builder_calibrates_through_a_python_calibrator(self):
        # x [N,4] at profile (2,4): three batches of 0, 1, 2; min-max gives x the scale 2 / 127.
        logger = quiet()
        builder = kiln.Builder(logger)
        network = builder.create_network()
        self.assertTrue(kiln.OnnxParser(network, logger).parse(models.mlp().SerializeToString()))
        config = builder.create_builder_config()
        config.backend = kiln.Backend.CPU
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4), (2, 4), (4, 4))
        config.add_optimization_profile(profile)
        with warnings.catch_warnings():  # deprecated in TensorRT 10.12 (tested in Deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            config.set_flag(kiln.BuilderFlag.INT8)
        calib = self.make(kiln.IInt8MinMaxCalibrator)
        calib.read_calibration_cache = lambda: None
        config.int8_calibrator = calib
        self.assertIsNotNone(builder.build_serialized_network(network, config))
        lines = calib.written.decode().splitlines()
        self.assertEqual(lines[0], "TRT-8601-MinMaxCalibration")
        self.assertIn("x: %08x" % struct.unpack("<I", struct.pack("<f", 2 / 127))[0], lines)

    def test_exception_in_calibrator_is_raised(self):
        with self.assertRaisesRegex(ValueError, "no data today"):
            kiln._kiln._drive_calibrator(self.make(kiln.IInt8EntropyCalibrator2, fail="get_batch"), ["x"], b"")

    def test_config_slot(self):
        logger = quiet()
        builder = kiln.Builder(logger)
        config = builder.create_builder_config()
        calib = self.make(kiln.IInt8EntropyCalibrator2)
        config.int8_calibrator = calib
        self.assertIs(config.int8_calibrator, calib)
        with self.assertRaisesRegex(TypeError, "IInt8Calibrator"):
            config.int8_calibrator = object()
        config.int8_calibrator = None
        self.assertIsNone(config.int8_calibrator)

    def test_kiln_build_with_a_calibrator(self):
        calib = self.make(kiln.IInt8MinMaxCalibrator)
        calib.read_calibration_cache = lambda: None
        engine = kiln.build(models.mlp().SerializeToString(), calibrator=calib, backend="cpu", logger=quiet(),
                            profiles={"x": ((1, 4), (2, 4), (4, 4))})
        self.assertIsNotNone(engine)
        self.assertTrue(calib.written.startswith(b"TRT-8601-MinMaxCalibration"))
        failing = self.make(kiln.IInt8EntropyCalibrator2, fail="get_batch")
        failing.read_calibration_cache = lambda: None  # no cache: the builder asks for batches
        with self.assertRaisesRegex(ValueError, "no data today"):  # what the calibrator raised
            kiln.build(models.mlp().SerializeToString(), int8=True, backend="cpu", logger=quiet(), calibrator=failing,
                       profiles={"x": ((1, 4), (2, 4), (4, 4))})


if __name__ == "__main__":
    unittest.main()
