#!/usr/bin/env python3
"""Explicit quantization against ONNX Runtime: a small CNN (Conv+Relu, Conv + residual Add + Relu,
MaxPool, Flatten, MatMul + bias) quantized by ONNX Runtime's quantize_static in QDQ format
(per-channel int8 weights; int8 and uint8 activations), run by kiln's CPU engine (fuse_qdq folds
the Q/DQ pairs into QLinearConv/QLinearMatMul) and by ONNX Runtime on fresh random inputs, with
ORT's graph optimizations off: each Q/DQ op as written, the Q/DQ graph's meaning. (Optimized, ORT
runs uint8 x int8 layers on kernels that saturate on x86 without VNNI: 7% rel L2 off the
unoptimized result on this model, while kiln equals the unoptimized one exactly.)

    build/pyenv/bin/python tests/models/qdq_vs_onnxruntime.py KILN WORKDIR

Fails if fuse_qdq did not fold the three layers, the MaxPool and the Flatten (int8) or if an output differs by more than one output
quantum from ONNX Runtime's (tools/compare.py prints the relative L2).

Then a residual model (ResNet's two-branch block: Conv 3x3 and Conv 1x1 summed by Add, Relu, a
Mul of two quantized tensors, a Concat, a 1x1 Conv), quantized the same way (int8 activations):
fuse_qdq must fold DQ -> Add -> Q and DQ -> Mul -> Q into QLinearAdd/QLinearMul and the Concat of
differently scaled inputs into QLinearConcat (com.microsoft, as ONNX Runtime's QDQ transformer
does), and kiln must equal ONNX Runtime *with* its graph optimizations (which runs those same
ops) within one output quantum.

Last, QLinearConcat as ONNX Runtime's QOperator format writes it (three inputs: two requantized,
one with the output's own scale and zero point, copied), int8 and uint8: kiln's CPU kernel must
give ONNX Runtime's bytes exactly.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

kiln, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng()


def weight(name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)


def float_model(path):
    inits = [weight("w1", 8, 3, 3, 3), weight("b1", 8), weight("w2", 8, 8, 3, 3), weight("b2", 8),
             weight("wf", 8 * 4 * 4, 10), weight("bf", 10)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("MatMul", ["f", "wf"], ["mm"]),
        helper.make_node("Add", ["mm", "bf"], ["y"]),
    ]
    g = helper.make_graph(nodes, "small_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


class Batches(CalibrationDataReader):
    def __init__(self):
        self.left = 8

    def get_next(self):
        self.left -= 1
        return {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)} if self.left >= 0 else None


def residual_model(path):
    inits = [weight("w1", 8, 3, 3, 3), weight("b1", 8), weight("w2", 8, 8, 3, 3), weight("b2", 8),
             weight("w3", 8, 8, 1, 1), weight("b3", 8), weight("w4", 4, 16, 1, 1), weight("b4", 4)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["r1", "w3", "b3"], ["c3"]),
        helper.make_node("Add", ["c2", "c3"], ["a"]),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Mul", ["ra", "r1"], ["m"]),
        helper.make_node("Concat", ["m", "r1"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w4", "b4"], ["y"]),
    ]
    g = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8, 8])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


rc = 0
fp32 = os.path.join(work, "small_cnn.onnx")
float_model(fp32)
for act in (QuantType.QInt8, QuantType.QUInt8):
    qdq = os.path.join(work, f"small_cnn_qdq_{act.name}.onnx")
    quantize_static(fp32, qdq, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=act, weight_type=QuantType.QInt8)
    log = subprocess.run([kiln, f"--onnx={qdq}", "--backend=cpu", "--verbose", "--skipInference"],
                         capture_output=True, text=True)
    fused = [l for l in log.stdout.splitlines() if "fuse_qdq.fused" in l]
    print(f"== {os.path.basename(qdq)}: {fused[0].strip() if fused else 'fuse_qdq did not fire'}")
    if log.returncode != 0 or not fused or not fused[0].strip().endswith("= 5"):
        print(log.stdout[-2000:], log.stderr[-2000:])
        rc = 1
    # The output is the DequantizeLinear of an int8 tensor: one quantum is its scale.
    scale = [float(numpy_helper.to_array(i)) for i in onnx.load(qdq).graph.initializer if i.name == "y_scale"][0]
    r = subprocess.run([sys.executable, os.path.join(here, "..", "..", "tools", "compare.py"), qdq, f"--kiln={kiln}",
                        f"--seed={int(rng.integers(1 << 30))}", "--tol=0.02", f"--max-abs={scale * 1.001}", "--ort-unoptimized"])
    rc |= r.returncode

res = os.path.join(work, "residual.onnx")
residual_model(res)
qdq = os.path.join(work, "residual_qdq_QInt8.onnx")
quantize_static(res, qdq, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
log = subprocess.run([kiln, f"--onnx={qdq}", "--backend=cpu", "--verbose", "--skipInference"], capture_output=True, text=True)
counters = {l.split("=")[0].split()[-1]: l.split("=")[1].strip() for l in log.stdout.splitlines() if "fuse_qdq.fused" in l}
print(f"== {os.path.basename(qdq)}: {counters}")
if log.returncode != 0 or counters.get("fuse_qdq.fused_elementwise") != "2" or counters.get("fuse_qdq.fused_concat") != "1":
    print(log.stdout[-2000:], log.stderr[-2000:])
    rc = 1
scale = [float(numpy_helper.to_array(i)) for i in onnx.load(qdq).graph.initializer if i.name == "y_scale"][0]
for unoptimized in (False, True):
    r = subprocess.run([sys.executable, os.path.join(here, "..", "..", "tools", "compare.py"), qdq, f"--kiln={kiln}",
                        f"--seed={int(rng.integers(1 << 30))}", "--tol=0.02", f"--max-abs={scale * 1.001}"] +
                       (["--ort-unoptimized"] if unoptimized else []))
    print(f"   (ONNX Runtime {'unoptimized: each Q/DQ op as written' if unoptimized else 'optimized: QLinearAdd/QLinearMul'})")
    rc |= r.returncode if not unoptimized else 0  # the unoptimized figure is for information


def qlinear_concat_model(path, qtype):
    np_t, onnx_t = (np.int8, TensorProto.INT8) if qtype == "int8" else (np.uint8, TensorProto.UINT8)
    zero = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np_t), name)
    scale = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)
    zs = (-7, 3, 11) if qtype == "int8" else (121, 140, 128)
    inits = [scale("sa", 0.031), zero("za", zs[0]), scale("sb", 0.0123), zero("zb", zs[1]),
             scale("sy", 0.02), zero("zy", zs[2])]
    nodes = [
        helper.make_node("QuantizeLinear", ["a", "sa", "za"], ["aq"]),
        helper.make_node("QuantizeLinear", ["b", "sb", "zb"], ["bq"]),
        helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["cq"]),  # the output's parameters: copied
        helper.make_node("QLinearConcat", ["sy", "zy", "aq", "sa", "za", "bq", "sb", "zb", "cq", "sy", "zy"], ["yq"],
                         domain="com.microsoft", axis=1),
        helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"]),
    ]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, c, 3, 5]) for n, c in (("a", 4), ("b", 2), ("c", 3))]
    g = helper.make_graph(nodes, "qlinear_concat", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 9, 3, 5])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    onnx.save(m, path)


for qtype in ("int8", "uint8"):
    path = os.path.join(work, f"qlinear_concat_{qtype}.onnx")
    qlinear_concat_model(path, qtype)
    print(f"== {os.path.basename(path)} (QOperator format, against ONNX Runtime: equal bytes)")
    r = subprocess.run([sys.executable, os.path.join(here, "..", "..", "tools", "compare.py"), path, f"--kiln={kiln}",
                        f"--seed={int(rng.integers(1 << 30))}", "--tol=1e-9", "--max-abs=0"])
    rc |= r.returncode
sys.exit(rc)
