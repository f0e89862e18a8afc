"""kiln.ImageCalibrator and kiln.TensorFileCalibrator (the C++ built-in calibration sources) as
IBuilderConfig.int8_calibrator: an INT8 build calibrates from a folder of PNG images or of .npy
samples and writes the cache file in TensorRT's text format; a second build reads the cache and
calibrates nothing (the data folder is gone by then); min-max of known data gives the known scale;
bad folders and options raise ValueError naming what is wrong."""
import os
import struct
import tempfile
import unittest
import warnings
import zlib

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import kiln
import models


def write_png(path, rgb):
    """An 8-bit RGB PNG of an [H, W, 3] uint8 array (no filter), written by hand."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def conv_model():
    """x [N, 3, 8, 8] -> Conv 3x3 (4 filters) -> y."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def build_int8(model, calibrator, shape):
    logger = models.Collect()
    builder = kiln.Builder(logger)
    network = builder.create_network()
    assert kiln.OnnxParser(network, logger).parse(model.SerializeToString())
    config = builder.create_builder_config()
    config.backend = kiln.Backend.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("x", shape, shape, shape)
    config.add_optimization_profile(profile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config.set_flag(kiln.BuilderFlag.INT8)
    config.int8_calibrator = calibrator
    plan = builder.build_serialized_network(network, config)
    return plan, [m for _, m in logger.seen]


class BuiltinCalibrators(unittest.TestCase):
    def test_image_folder_calibrates_writes_the_cache_and_the_cache_is_reused(self):
        with tempfile.TemporaryDirectory() as d:
            images = os.path.join(d, "images")
            os.makedirs(images)
            rng = np.random.default_rng(1)
            for i in range(4):
                write_png(os.path.join(images, f"{i}.png"), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
            cache = os.path.join(d, "conv.cache")
            calib = kiln.ImageCalibrator(images, "x", (2, 3, 8, 8), mean=(0.5,), std=(0.25,), cache_file=cache)
            self.assertEqual(calib.get_batch_size(), 2)
            self.assertEqual(calib.get_algorithm(), int(kiln.CalibrationAlgoType.ENTROPY_CALIBRATION_2))
            plan, log = build_int8(conv_model(), calib, (2, 3, 8, 8))
            self.assertIsNotNone(plan, log)
            self.assertEqual(calib.cache_write_error, "")
            with open(cache) as f:
                lines = f.read().splitlines()
            self.assertTrue(lines[0].startswith("TRT-") and lines[0].endswith("EntropyCalibration2"), lines[0])
            self.assertTrue(any(line.startswith("x: ") for line in lines), lines)
            # The images are now unreadable: a second build can only succeed from the cache.
            for name in os.listdir(images):
                with open(os.path.join(images, name), "wb") as f:
                    f.write(b"not a png")
            again = kiln.ImageCalibrator(images, "x", (2, 3, 8, 8), cache_file=cache)
            plan2, log2 = build_int8(conv_model(), again, (2, 3, 8, 8))
            self.assertIsNotNone(plan2, log2)
            # ... and without the cache the same folder fails, naming a file.
            os.remove(cache)
            plan3, log3 = build_int8(conv_model(), kiln.ImageCalibrator(images, "x", (2, 3, 8, 8), cache_file=cache),
                                     (2, 3, 8, 8))
            self.assertIsNone(plan3)
            self.assertTrue(any(".png" in m for m in log3), log3)
            self.assertFalse(os.path.exists(cache))

    def test_npy_samples_minmax_gives_the_known_scale(self):
        with tempfile.TemporaryDirectory() as d:
            for i in range(4):  # one sample a file; |x| at most 2 -> min-max scale 2/127
                x = np.full((3, 8, 8), 0.5, np.float32)
                x[0, 0, 0] = 2.0 if i == 2 else -1.0
                np.save(os.path.join(d, f"s{i}.npy"), x)
            calib = kiln.TensorFileCalibrator(d, [("x", (2, 3, 8, 8))], algorithm=kiln.CalibrationAlgoType.MINMAX_CALIBRATION,
                                              cache_file=os.path.join(d, "mm.cache"))
            plan, log = build_int8(conv_model(), calib, (2, 3, 8, 8))
            self.assertIsNotNone(plan, log)
            with open(os.path.join(d, "mm.cache")) as f:
                lines = f.read().splitlines()
            self.assertTrue(lines[0].endswith("MinMaxCalibration"), lines[0])
            self.assertIn("x: %08x" % struct.unpack("<I", struct.pack("<f", 2 / 127))[0], lines)

    def test_bad_folders_and_options(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ValueError, "ImageCalibrator"):
                kiln.ImageCalibrator(d, "x", (2, 3, 8, 8))  # empty folder
            with self.assertRaisesRegex(ValueError, "resize must be"):
                kiln.ImageCalibrator(d, "x", (2, 3, 8, 8), resize="stretch")
            with self.assertRaisesRegex(ValueError, "mean must have 1 or 3 values"):
                kiln.ImageCalibrator(d, "x", (2, 3, 8, 8), mean=(0.1, 0.2))
            with self.assertRaisesRegex(ValueError, "TensorFileCalibrator"):
                kiln.TensorFileCalibrator(os.path.join(d, "missing"), [("x", (2, 3, 8, 8))])
            with self.assertRaisesRegex(ValueError, "each input is"):
                kiln.TensorFileCalibrator(d, [("x",)])


if __name__ == "__main__":
    unittest.main()
