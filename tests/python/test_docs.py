"""Docstrings and type stubs: help(kiln.Builder) and the others say what each member does, and the
generated stub (_kiln.pyi, built with the module) lists the API for editors."""
import os
import unittest

import kiln

CLASSES = [kiln.Builder, kiln.IBuilderConfig, kiln.INetworkDefinition, kiln.ITensor, kiln.OnnxParser,
           kiln.IOptimizationProfile, kiln.Runtime, kiln.ICudaEngine, kiln.IExecutionContext, kiln.ParserError,
           kiln.IProgressMonitor, kiln.IProfiler, kiln.IOutputAllocator, kiln.ILogger, kiln.Logger, kiln.ITimingCache,
           kiln.ImageCalibrator, kiln.TensorFileCalibrator]
# TensorRT 8 names kept with a DeprecationWarning; each says so when called
DEPRECATED = {"get_binding_index", "binding_is_input", "get_binding_shape", "get_binding_dtype", "execute_async_v2",
              "set_binding_shape"}


def described(name, member):
    doc = (getattr(member, "__doc__", None) or "").strip()
    lines = [line for line in doc.splitlines() if line.strip()]
    if lines and lines[0].startswith(name + "("):  # nanobind's signature line
        lines = lines[1:]
    return bool(lines)


class Docs(unittest.TestCase):
    def test_every_member_is_described(self):
        missing = [f"{cls.__name__}.{name}" for cls in CLASSES for name, member in vars(cls).items()
                   if not name.startswith("_") and name not in DEPRECATED and callable(member) and not described(name, member)]
        self.assertEqual(missing, [])
        for cls in CLASSES:
            self.assertTrue((cls.__doc__ or "").strip(), cls.__name__)

    def test_help_of_builder_and_context(self):
        import pydoc
        text = pydoc.render_doc(kiln.Builder, renderer=pydoc.plaintext)
        for words in ("build_serialized_network", "IHostMemory", "EXPLICIT_BATCH", "create_optimization_profile"):
            self.assertIn(words, text)
        text = pydoc.render_doc(kiln.IExecutionContext, renderer=pydoc.plaintext)
        for words in ("infer", "__cuda_array_interface__", "C-contiguous", "execute_async_v3"):
            self.assertIn(words, text)

    def test_stub(self):
        stub = os.path.join(os.path.dirname(kiln.__file__), "_kiln.pyi")
        if not os.path.exists(stub):
            self.skipTest("no _kiln.pyi next to the module (target kiln_python_stub not built)")
        with open(stub) as f:
            text = f.read()
        for name in ("class Builder", "class IExecutionContext", "def infer(", "def set_tensor_address(",
                     "class IProgressMonitor", "def build_serialized_network("):
            self.assertIn(name, text)
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(kiln.__file__), "py.typed")))


if __name__ == "__main__":
    unittest.main()
