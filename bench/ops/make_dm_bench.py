#!/usr/bin/env python3
"""Writes one-op ONNX models with large shapes for dm_bench (CUDA data_movement timings) and
bench_torch.py (the same ops in PyTorch). Usage: make_dm_bench.py OUT_DIR"""
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto as TP

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

def model(name, op, inputs, consts=(), attrs=None, n_out=1, order=None):
    outs = [f"y{k}" for k in range(n_out)]
    order = order or [n for n, _, _ in inputs] + [n for n, _ in consts]
    g = helper.make_graph([helper.make_node(op, order, outs, **(attrs or {}))], name,
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(o, TP.UNDEFINED, None) for o in outs],
                          [numpy_helper.from_array(a, n) for n, a in consts])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    m = onnx.shape_inference.infer_shapes(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))

I64 = lambda *v: np.array(v, np.int64)
model("transpose_last2_f32", "Transpose", [("x", TP.FLOAT, [64, 512, 512])], attrs={"perm": [0, 2, 1]})
model("transpose_nchw_nhwc_f16", "Transpose", [("x", TP.FLOAT16, [32, 256, 56, 56])], attrs={"perm": [0, 2, 3, 1]})
model("transpose_nhwc_nchw_f16", "Transpose", [("x", TP.FLOAT16, [32, 56, 56, 256])], attrs={"perm": [0, 3, 1, 2]})
model("transpose_bshd_f16", "Transpose", [("x", TP.FLOAT16, [16, 512, 16, 64])], attrs={"perm": [0, 2, 1, 3]})
model("concat_f16", "Concat", [("a", TP.FLOAT16, [32, 128, 56, 56]), ("b", TP.FLOAT16, [32, 128, 56, 56])], attrs={"axis": 1})
model("split_f16", "Split", [("x", TP.FLOAT16, [16, 512, 3072])], [("s", I64(1024, 1024, 1024))], {"axis": 2}, n_out=3)
model("slice_f16", "Slice", [("x", TP.FLOAT16, [32, 256, 56, 56])], [("st", I64(1, 1)), ("en", I64(55, 55)), ("ax", I64(2, 3))])
model("gather_emb_f16", "Gather", [("w", TP.FLOAT16, [50000, 1024]), ("i", TP.INT64, [16, 512])])
model("expand_f16", "Expand", [("x", TP.FLOAT16, [1, 512, 1024])], [("s", I64(32, 512, 1024))])
model("pad_reflect_f16", "Pad", [("x", TP.FLOAT16, [32, 64, 112, 112])], [("p", I64(0, 0, 3, 3, 0, 0, 3, 3))], {"mode": "reflect"})
model("resize_linear_2x_f16", "Resize", [("x", TP.FLOAT16, [16, 64, 128, 128])],
      [("roi", np.array([], np.float32)), ("sc", np.array([1, 1, 2, 2], np.float32))], {"mode": "linear"})
model("resize_nearest_2x_f16", "Resize", [("x", TP.FLOAT16, [16, 64, 128, 128])],
      [("roi", np.array([], np.float32)), ("sc", np.array([1, 1, 2, 2], np.float32))], {"mode": "nearest"})
