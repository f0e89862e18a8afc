"""TensorRT scripts run unchanged with `import kiln as trt` (as separate processes, on the CPU
backend: KILN_BACKEND=cpu, since their buffers are host memory here): examples/python's classic
ONNX -> FP16 engine script, whose outputs must equal the C++ CLI's (`kiln --exportOutput`) for the
same model, input and build options, and a TensorRT 7/8 script with the names 10/11 removed."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import kiln
import models

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLASSIC = os.path.join(ROOT, "examples", "python", "classic_onnx_fp16.py")


def run_python(script, *args):
    env = dict(os.environ, KILN_BACKEND="cpu")
    return subprocess.run([sys.executable, script, *args], env=env, capture_output=True, text=True, timeout=300)


def kiln_cli():
    """build/kiln next to the module's build/python/kiln (or $KILN_CLI)."""
    path = os.environ.get("KILN_CLI") or os.path.join(os.path.dirname(kiln.__file__), "..", "..", "kiln")
    return os.path.abspath(path) if os.path.isfile(path) else None


class ClassicScripts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def save_model(self, model, x):
        with open(self.path("model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        np.save(self.path("x.npy"), x)
        x.tofile(self.path("x.bin"))

    def run_classic(self):
        r = run_python(CLASSIC, self.path("model.onnx"), self.path("x.npy"), "--engine", self.path("model.engine"),
                       "--outputs", self.path("out.npz"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("&&&& PASSED classic_onnx_fp16", r.stdout)
        self.assertGreater(os.path.getsize(self.path("model.engine")), 0)
        # one line for the flag TensorRT 11 removed, nothing else on stderr
        self.assertIn("BuilderFlag.FP16 is deprecated", r.stderr)
        return np.load(self.path("out.npz"))

    def test_classic_fp16_script_matches_the_cli(self):
        cli = kiln_cli()
        if cli is None:
            if os.environ.get("CI"):
                self.fail("the kiln CLI was not found next to the module (set KILN_CLI)")
            self.skipTest("the kiln CLI was not found next to the module (set KILN_CLI)")
        model = models.convnet()
        x = np.random.default_rng(17).standard_normal((2, 3, 8, 8)).astype(np.float32)
        self.save_model(model, x)
        out = self.run_classic()
        # the same build with the C++ CLI: FP16, the script's profile (batch 1 .. 2x, opt = the input's)
        r = subprocess.run([cli, f"--onnx={self.path('model.onnx')}", "--fp16", "--backend=cpu",
                            "--minShapes=x:1x3x8x8", "--optShapes=x:2x3x8x8", "--maxShapes=x:4x3x8x8",
                            "--shapes=x:2x3x8x8", f"--loadInputs=x:{self.path('x.bin')}",
                            f"--exportOutput={self.path('cli.json')}", "--iterations=1", "--duration=0", "--warmUp=0"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.path("cli.json")) as f:
            cli_out = {o["name"]: o for o in json.load(f)}
        self.assertEqual(set(cli_out), set(out.files))
        for name, o in cli_out.items():
            dims = tuple(int(d) for d in o["dimensions"].split("x"))
            self.assertEqual(out[name].shape, dims)
            np.testing.assert_array_equal(out[name], np.array(o["values"], np.float32).reshape(dims), name)
        ref = models.reference(model, {"x": x})["y"]
        self.assertLess(models.rel_l2(out["y"], ref), 1e-2)  # FP16 against the float reference

    def test_classic_script_on_a_two_output_model(self):
        model = models.mlp()
        x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
        self.save_model(model, x)
        out = self.run_classic()
        ref = models.reference(model, {"x": x})
        self.assertEqual(set(out.files), {"y", "s"})
        for k in ("y", "s"):
            self.assertLess(models.rel_l2(out[k], ref[k]), 1e-2, k)

    def test_tensorrt8_script(self):
        model = models.mlp()
        x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
        self.save_model(model, x)
        r = run_python(os.path.join(HERE, "scripts", "trt8_classic.py"), self.path("model.onnx"), self.path("x.npy"),
                       self.path("out.npz"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("&&&& PASSED", r.stdout)
        out = np.load(self.path("out.npz"))
        ref = models.reference(model, {"x": x})
        for k in ("y", "s"):
            self.assertLess(models.rel_l2(out[k].reshape(ref[k].shape), ref[k]), 1e-5, k)
        warned = [line for line in r.stderr.splitlines() if "DeprecationWarning" in line]
        for name in ("EXPLICIT_BATCH", "max_workspace_size", "max_batch_size", "build_engine", "get_binding_shape"):
            self.assertTrue(any(name in line for line in warned), f"no deprecation line for {name}: {r.stderr}")


if __name__ == "__main__":
    unittest.main()
