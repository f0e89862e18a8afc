"""TensorRT scripts run unchanged with `import kiln as trt` (as separate processes, on the CPU
backend: KILN_BACKEND=cpu, since their buffers are numpy arrays)."""
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import models

HERE = os.path.dirname(os.path.abspath(__file__))


def run_script(name, *args):
    env = dict(os.environ, KILN_BACKEND="cpu")
    return subprocess.run([sys.executable, os.path.join(HERE, "scripts", name), *args], env=env,
                          capture_output=True, text=True, timeout=300)


class ClassicScripts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = models.mlp()
        self.onnx = os.path.join(self.tmp.name, "mlp.onnx")
        with open(self.onnx, "wb") as f:
            f.write(self.model.SerializeToString())
        self.x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
        self.input = os.path.join(self.tmp.name, "x.npy")
        np.save(self.input, self.x)

    def tearDown(self):
        self.tmp.cleanup()

    def check_outputs(self, npz, tolerance):
        ref = models.reference(self.model, {"x": self.x})
        out = np.load(npz)
        self.assertEqual(set(out.files), {"y", "s"})
        for k in ("y", "s"):
            self.assertLess(models.rel_l2(out[k].reshape(ref[k].shape), ref[k]), tolerance, k)

    def test_tensorrt10_script(self):
        npz = os.path.join(self.tmp.name, "out.npz")
        r = run_script("trt10_classic.py", self.onnx, os.path.join(self.tmp.name, "mlp.engine"), self.input, npz)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("&&&& PASSED y(3, 3) s(3, 3)", r.stdout)
        self.assertTrue(os.path.getsize(os.path.join(self.tmp.name, "mlp.engine")) > 0)
        self.check_outputs(npz, 1e-2)  # FP16 where the machine has a GPU

    def test_tensorrt8_script(self):
        npz = os.path.join(self.tmp.name, "out.npz")
        r = run_script("trt8_classic.py", self.onnx, self.input, npz)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("&&&& PASSED", r.stdout)
        self.check_outputs(npz, 1e-5)
        warned = [line for line in r.stderr.splitlines() if "DeprecationWarning" in line]
        for name in ("EXPLICIT_BATCH", "max_workspace_size", "max_batch_size", "build_engine", "get_binding_shape"):
            self.assertTrue(any(name in line for line in warned), f"no deprecation line for {name}: {r.stderr}")


if __name__ == "__main__":
    unittest.main()
