"""The TensorRT 7/8 workflow as users wrote it (names TensorRT 10 removed: EXPLICIT_BATCH,
max_workspace_size, max_batch_size, build_engine, binding indices, execute_v2 with a binding
list). The only change from a TensorRT script is the import line; kiln prints one deprecation line
for each removed name. Host buffers are valid addresses on the CPU backend (KILN_BACKEND=cpu).
usage: trt8_classic.py model.onnx input.npy outputs.npz"""
import sys

import numpy as np

import kiln as trt

onnx_path, input_path, output_path = sys.argv[1:4]
TRT_LOGGER = trt.Logger(trt.Logger.WARNING)
EXPLICIT_BATCH = 1 << (int)(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
x = np.load(input_path)

trt.init_libnvinfer_plugins(TRT_LOGGER, "")
with trt.Builder(TRT_LOGGER) as builder, builder.create_network(EXPLICIT_BATCH) as network, \
        builder.create_builder_config() as config, trt.OnnxParser(network, TRT_LOGGER) as parser:
    config.max_workspace_size = 1 << 28
    builder.max_batch_size = 1
    with open(onnx_path, "rb") as model:
        if not parser.parse(model.read()):
            for error in range(parser.num_errors):
                print(parser.get_error(error))
            sys.exit(1)
    network.get_input(0).shape = list(x.shape)
    engine = builder.build_engine(network, config)

with engine.create_execution_context() as context:
    bindings, outputs = [], {}
    for binding in engine:
        size = trt.volume(engine.get_binding_shape(binding)) * engine.max_batch_size
        dtype = trt.nptype(engine.get_binding_dtype(binding))
        if engine.binding_is_input(binding):
            host = np.ascontiguousarray(x.astype(dtype))
        else:
            host = np.empty(size, dtype)
            outputs[binding] = host
        bindings.append(int(host.ctypes.data))
    if not context.execute_v2(bindings=bindings):
        sys.exit("ERROR: inference failed")
    np.savez(output_path, **outputs)
print("&&&& PASSED")
