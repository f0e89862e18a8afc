"""Small ONNX models for the Python API tests, written with onnx.helper, their reference outputs
from onnx.reference, and a logger that keeps what it is told."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import kiln

OPSET = 17
IR_VERSION = 8


def _model(graph):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(m)
    return m


def mlp(batch="N"):
    """x [batch, 4] -> MatMul(4x8) + bias -> Relu -> MatMul(8x3) -> y [batch, 3]; also s = Sigmoid(y)."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="bias1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu1"),
        helper.make_node("MatMul", ["h2", "w2"], ["y"], name="fc2"),
        helper.make_node("Sigmoid", ["y"], ["s"], name="sig"),
    ]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
                           helper.make_tensor_value_info("s", TensorProto.FLOAT, [batch, 3])],
                          initializer=[w1, b1, w2])
    return _model(g)


def convnet():
    """x [N, 3, 8, 8] -> Conv(4, 3x3, pad 1) + Relu -> GlobalAveragePool -> Flatten -> y [N, 4]."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array((0.3 * rng.standard_normal((4, 3, 3, 3))).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["y"], name="flatten"),
    ]
    g = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], initializer=[w, b])
    return _model(g)


def unsupported():
    """A Relu, then an operator no one knows (domain 'acme'), then another."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
        helper.make_node("Frobnicate", ["a"], ["b"], name="frob_1", domain="acme"),
        helper.make_node("Twiddle", ["b"], ["y"], name="twiddle_7", domain="acme"),
    ]
    g = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("acme", 1)],
                          ir_version=IR_VERSION)
    return m


def int_bool():
    """i [N] int64 -> i + 1 (int64 'j'); b [N] bool -> Not (bool 'nb')."""
    one = numpy_helper.from_array(np.array([1], dtype=np.int64), "one")
    nodes = [helper.make_node("Add", ["i", "one"], ["j"], name="inc"), helper.make_node("Not", ["b"], ["nb"], name="not")]
    g = helper.make_graph(nodes, "intbool",
                          [helper.make_tensor_value_info("i", TensorProto.INT64, ["N"]),
                           helper.make_tensor_value_info("b", TensorProto.BOOL, ["N"])],
                          [helper.make_tensor_value_info("j", TensorProto.INT64, ["N"]),
                           helper.make_tensor_value_info("nb", TensorProto.BOOL, ["N"])], initializer=[one])
    return _model(g)


def nonzero():
    """x [N] float -> NonZero -> idx [1, ?] int64 (a data-dependent shape)."""
    g = helper.make_graph([helper.make_node("NonZero", ["x"], ["idx"], name="nz")], "nonzero",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
                          [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "K"])])
    return _model(g)


class Collect(kiln.ILogger):
    """A logger that keeps every (severity, message) it is told in .seen."""

    def __init__(self):
        kiln.ILogger.__init__(self)
        self.seen = []

    def log(self, severity, msg):
        self.seen.append((severity, msg))


def reference(model, feeds):
    """Outputs of onnx.reference, by name."""
    sess = ReferenceEvaluator(model)
    names = [o.name for o in model.graph.output]
    return dict(zip(names, sess.run(None, feeds)))


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
