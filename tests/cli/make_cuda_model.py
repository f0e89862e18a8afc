"""Writes a small ONNX model whose every layer has a CUDA kernel (Add, Relu, Mul, Reshape), for
the kiln command's CUDA tests: CUDA graph capture succeeds on it. Usage: make_cuda_model.py OUT.onnx"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C, H, W = 64, 56, 56
rng = np.random.default_rng(0)
inits = [numpy_helper.from_array(rng.standard_normal((1, C, 1, 1)).astype(np.float32), "b1"),
         numpy_helper.from_array(rng.standard_normal((1, C, 1, 1)).astype(np.float32), "s1"),
         numpy_helper.from_array(rng.standard_normal((1, C, 1, 1)).astype(np.float32), "b2"),
         numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat")]
nodes = [helper.make_node("Add", ["x", "b1"], ["a1"], name="add1"),
         helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
         helper.make_node("Mul", ["r1", "s1"], ["m1"], name="mul1"),
         helper.make_node("Add", ["m1", "x"], ["a2"], name="residual"),
         helper.make_node("Add", ["a2", "b2"], ["a3"], name="add2"),
         helper.make_node("Relu", ["a3"], ["r2"], name="relu2"),
         helper.make_node("Reshape", ["r2", "flat"], ["y"], name="flatten")]
g = helper.make_graph(nodes, "cuda_eltwise",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C, H, W])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", C * H * W])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8  # kiln reads IR 3 to 10; newer onnx writes higher by default
onnx.save(m, sys.argv[1])
