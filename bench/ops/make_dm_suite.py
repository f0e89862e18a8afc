#!/usr/bin/env python3
"""Builds an ONNX-node-style suite (<case>/model.onnx + test_data_set_0) for the CUDA
data_movement kernels: (a) node-suite cases whose parameters (pads, starts, scales, ...) are
graph inputs, rewritten with those parameters as initializers so the output shapes are static
and the CUDA kernels run; (b) larger cases hitting the tiled transpose, widened copies and the
Resize/Pad/gather paths, with expected outputs from onnx.reference.
Usage: make_dm_suite.py NODE_DIR OUT_DIR"""
import os, re, sys, glob
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from onnx.reference import ReferenceEvaluator

node_dir, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)

def write_case(name, model, inputs, outputs):
    d = os.path.join(out_dir, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())

# (a) parameters -> initializers. Which input positions stay inputs, per op.
keep = {"OneHot": {0, 2}}
pat = re.compile(r"^test_(constant_pad|edge_pad|reflect_pad|wrap_pad|expand|onehot|resize|slice|split|tile)")
for case in sorted(os.listdir(node_dir)):
    if not pat.match(case) or case.endswith("_expanded"):
        continue
    m = onnx.load(os.path.join(node_dir, case, "model.onnx"))
    g = m.graph
    if len(g.node) != 1:
        continue
    node = g.node[0]
    ds = os.path.join(node_dir, case, "test_data_set_0")
    ins = []
    for k, vi in enumerate(g.input):
        t = onnx.TensorProto()
        with open(os.path.join(ds, f"input_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        ins.append((vi, numpy_helper.to_array(t)))
    stay = keep.get(node.op_type, {0})
    new_inputs, feed = [], []
    for vi, a in ins:
        pos = list(node.input).index(vi.name)
        if pos in stay:
            new_inputs.append(vi); feed.append((vi.name, a))
        else:
            g.initializer.append(numpy_helper.from_array(a, vi.name))
    del g.input[:]
    g.input.extend(new_inputs)
    outs = []
    for k, vo in enumerate(g.output):
        t = onnx.TensorProto()
        with open(os.path.join(ds, f"output_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        outs.append((vo.name, numpy_helper.to_array(t)))
    write_case("test_dmconst_" + case[5:], m, feed, outs)

# (b) larger cases; expected outputs from the reference evaluator.
rng = np.random.default_rng(0)
NP2ONNX = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16, np.int64: TensorProto.INT64,
           np.int32: TensorProto.INT32, np.bool_: TensorProto.BOOL, np.uint8: TensorProto.UINT8}

def arr(shape, dt):
    if dt == np.bool_: return rng.integers(0, 2, shape).astype(np.bool_)
    if dt in (np.int64, np.int32, np.uint8): return rng.integers(0, 100, shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)

def case(name, op, inputs, attrs=None, consts=None, n_out=1, opset=18):
    """inputs: list of (name, array) graph inputs; consts: list of (name, array) initializers,
    node inputs = inputs then consts in the order given by `order` (names)."""
    consts = consts or []
    order = [n for n, _ in inputs] + [n for n, _ in consts]
    return build(name, op, inputs, consts, order, attrs or {}, n_out, opset)

def build(name, op, inputs, consts, order, attrs, n_out, opset):
    outs = [f"y{k}" for k in range(n_out)]
    node = helper.make_node(op, order, outs, **attrs)
    g = helper.make_graph([node], name,
                          [helper.make_tensor_value_info(n, NP2ONNX[a.dtype.type], a.shape) for n, a in inputs],
                          [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
                          [numpy_helper.from_array(a, n) for n, a in consts])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    ref = ReferenceEvaluator(m)
    res = ref.run(None, {n: a for n, a in inputs})
    for k, o in enumerate(outs):
        g.output[k].CopyFrom(helper.make_tensor_value_info(o, NP2ONNX[res[k].dtype.type], res[k].shape))
    write_case("test_dmbig_" + name, m, inputs, list(zip(outs, res)))

I64 = lambda *v: np.array(v, dtype=np.int64)
case("transpose_last2_f32", "Transpose", [("x", arr((4, 64, 96), np.float32))], {"perm": [0, 2, 1]})
case("transpose_nchw_nhwc_f16", "Transpose", [("x", arr((2, 32, 24, 40), np.float16))], {"perm": [0, 2, 3, 1]})
case("transpose_nhwc_nchw_f32", "Transpose", [("x", arr((2, 24, 40, 32), np.float32))], {"perm": [0, 3, 1, 2]})
case("transpose_bshd_f16", "Transpose", [("x", arr((2, 16, 8, 64), np.float16))], {"perm": [0, 2, 1, 3]})
case("transpose_i64", "Transpose", [("x", arr((3, 40, 50), np.int64))], {"perm": [1, 0, 2]})
case("transpose_bool_2d", "Transpose", [("x", arr((17, 33), np.bool_))])
case("transpose_5d", "Transpose", [("x", arr((2, 3, 4, 5, 6), np.float32))], {"perm": [4, 2, 0, 3, 1]})
case("concat_f16", "Concat", [("a", arr((4, 3, 8), np.float16)), ("b", arr((4, 5, 8), np.float16)), ("c", arr((4, 1, 8), np.float16))], {"axis": 1})
case("concat_i64_neg", "Concat", [("a", arr((3, 7), np.int64)), ("b", arr((3, 2), np.int64))], {"axis": -1})
case("split_const", "Split", [("x", arr((6, 40), np.float32))], {"axis": 1}, [("s", I64(8, 24, 8))], n_out=3)
case("split_num_outputs", "Split", [("x", arr((6, 11), np.float16))], {"axis": 1, "num_outputs": 3}, n_out=3)
case("slice_neg_steps", "Slice", [("x", arr((20, 30, 10), np.float32))], {},
     [("st", I64(-1, 25, 0)), ("en", I64(-100, 2, 10)), ("ax", I64(0, 1, 2)), ("sp", I64(-2, -3, 1))])
case("slice_inner_f16", "Slice", [("x", arr((8, 64, 32), np.float16))], {}, [("st", I64(8)), ("en", I64(24)), ("ax", I64(2))])
case("gather_f16_rows", "Gather", [("x", arr((50, 64), np.float16)), ("i", np.array([[1, -1], [3, 4]], np.int32))])
case("gather_axis1_i64", "Gather", [("x", arr((5, 30, 7), np.int64)), ("i", np.array([0, 29, -3, 4], np.int64))], {"axis": 1})
case("gather_elements_big", "GatherElements", [("x", arr((10, 20, 6), np.float32)), ("i", rng.integers(-20, 20, (10, 15, 6)).astype(np.int64))], {"axis": 1})
case("gather_nd_batch", "GatherND", [("x", arr((4, 10, 6, 8), np.float16)), ("i", np.stack([rng.integers(0, 10, (4, 5)), rng.integers(0, 6, (4, 5))], -1).astype(np.int64))], {"batch_dims": 1})
perm = rng.permutation(30)[:12]
case("scatter_nd_rows", "ScatterND", [("x", arr((30, 16), np.float32)), ("i", perm.reshape(12, 1).astype(np.int64)), ("u", arr((12, 16), np.float32))])
idx = np.stack([rng.permutation(20)[:8] for _ in range(6)], 0).astype(np.int64)
case("scatter_elements_axis1", "ScatterElements", [("x", arr((6, 20), np.float16)), ("i", idx), ("u", arr((6, 8), np.float16))], {"axis": 1})
case("pad_reflect_f16", "Pad", [("x", arr((2, 3, 20, 20), np.float16))], {"mode": "reflect"}, [("p", I64(0, 0, 3, 2, 0, 0, 1, 4))])
case("pad_edge_i64", "Pad", [("x", arr((3, 17), np.int64))], {"mode": "edge"}, [("p", I64(2, 5, 1, 3))])
case("pad_constant_value", "Pad", [("x", arr((4, 9, 9), np.float32))], {}, [("p", I64(1, 0, 2, 0, 2, 1)), ("v", np.array(1.5, np.float32))])
case("expand_i64", "Expand", [("x", arr((3, 1, 5), np.int64))], {}, [("s", I64(2, 3, 40, 5))])
case("tile_f16", "Tile", [("x", arr((3, 4, 5), np.float16))], {}, [("r", I64(2, 3, 8))])
case("depthtospace_crd", "DepthToSpace", [("x", arr((2, 16, 5, 7), np.float32))], {"blocksize": 2, "mode": "CRD"})
case("depthtospace_dcr", "DepthToSpace", [("x", arr((2, 16, 5, 7), np.float16))], {"blocksize": 2})
case("spacetodepth", "SpaceToDepth", [("x", arr((2, 3, 8, 12), np.float32))], {"blocksize": 4})
case("trilu_upper_k", "Trilu", [("x", arr((3, 40, 50), np.float32))], {"upper": 1}, [("k", np.array(-3, np.int64))])
case("trilu_lower_i64", "Trilu", [("x", arr((40, 50), np.int64))], {"upper": 0}, [("k", np.array(5, np.int64))])

def graph_case(name, nodes, inputs, consts, out_names):
    """A small graph: the output shape comes from Shape/Size of an input, so the engine knows it."""
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info(n, NP2ONNX[a.dtype.type], a.shape) for n, a in inputs],
                          [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in out_names],
                          [numpy_helper.from_array(a, n) for n, a in consts])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    res = ReferenceEvaluator(m).run(None, {n: a for n, a in inputs})
    for k, o in enumerate(out_names):
        g.output[k].CopyFrom(helper.make_tensor_value_info(o, NP2ONNX[res[k].dtype.type], res[k].shape))
    write_case("test_dmbig_" + name, m, inputs, list(zip(out_names, res)))

graph_case("range_i64_from_size", [helper.make_node("Size", ["x"], ["n"]), helper.make_node("Range", ["s", "n", "d"], ["y"])],
           [("x", arr((40, 100), np.float32))], [("s", np.array(-7, np.int64)), ("d", np.array(3, np.int64))], ["y"])
graph_case("range_f32_from_size", [helper.make_node("Size", ["x"], ["n"]), helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
                                   helper.make_node("Range", ["s", "nf", "d"], ["y"])],
           [("x", arr((40, 100), np.float32))], [("s", np.array(2.5, np.float32)), ("d", np.array(0.25, np.float32))], ["y"])
graph_case("constantofshape_from_shape", [helper.make_node("Shape", ["x"], ["sh"]),
                                          helper.make_node("ConstantOfShape", ["sh"], ["y"], value=numpy_helper.from_array(np.array([7], np.int64)))],
           [("x", arr((40, 60), np.float32))], [], ["y"])
graph_case("constantofshape_f16_from_shape", [helper.make_node("Shape", ["x"], ["sh"]),
                                          helper.make_node("ConstantOfShape", ["sh"], ["y"], value=numpy_helper.from_array(np.array([1.5], np.float16)))],
           [("x", arr((33, 61), np.float32))], [], ["y"])
case("eyelike_big", "EyeLike", [("x", arr((50, 60), np.float32))], {"k": 3})
# OneHot's node inputs are indices, depth, values: depth is the initializer
build("onehot_order", "OneHot", [("i", rng.integers(-30, 30, (7, 9)).astype(np.int64)), ("v", np.array([0.5, 2.0], np.float32))],
      [("d", np.array(30, np.int64))], ["i", "d", "v"], {"axis": 1}, 1, 18)
for ctm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]:
    case(f"resize_linear_{ctm}", "Resize", [("x", arr((1, 3, 20, 30), np.float32))], {"mode": "linear", "coordinate_transformation_mode": ctm},
         [("roi", np.array([], np.float32)), ("sc", np.array([1, 1, 1.7, 0.6], np.float32))])
for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
    case(f"resize_nearest_{nm}", "Resize", [("x", arr((2, 3, 13, 17), np.float16))], {"mode": "nearest", "nearest_mode": nm},
         [("roi", np.array([], np.float32)), ("sc", np.array([], np.float32)), ("sz", I64(2, 3, 29, 9))])
