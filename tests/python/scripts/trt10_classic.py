"""The TensorRT 10 workflow as users write it: ONNX -> engine with a workspace, FP16 where the
platform has it and an optimization profile; saved, loaded and run with tensor addresses. The only
change from a TensorRT script is the import line. Host buffers (numpy) are valid addresses on
kiln's CPU backend (KILN_BACKEND=cpu); on a GPU they would be device allocations.
usage: trt10_classic.py model.onnx model.engine input.npy outputs.npz"""
import sys

import numpy as np

import kiln as trt

onnx_path, engine_path, input_path, output_path = sys.argv[1:5]
TRT_LOGGER = trt.Logger(trt.Logger.WARNING)


def build_engine(onnx_file_path, engine_file_path):
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, TRT_LOGGER)
    with open(onnx_file_path, "rb") as model:
        if not parser.parse(model.read()):
            for error in range(parser.num_errors):
                print(parser.get_error(error))
            return None
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    if builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    inp = network.get_input(0)
    profile.set_shape(inp.name, (1, 4), (4, 4), (16, 4))
    config.add_optimization_profile(profile)
    serialized_engine = builder.build_serialized_network(network, config)
    if serialized_engine is None:
        return None
    with open(engine_file_path, "wb") as f:
        f.write(serialized_engine)
    return serialized_engine


if build_engine(onnx_path, engine_path) is None:
    sys.exit("ERROR: failed to build the engine")
runtime = trt.Runtime(TRT_LOGGER)
with open(engine_path, "rb") as f:
    engine = runtime.deserialize_cuda_engine(f.read())
context = engine.create_execution_context()

x = np.load(input_path)
for i in range(engine.num_io_tensors):
    name = engine.get_tensor_name(i)
    if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
        context.set_input_shape(name, x.shape)
buffers = {}
for i in range(engine.num_io_tensors):
    name = engine.get_tensor_name(i)
    shape = context.get_tensor_shape(name)
    dtype = trt.nptype(engine.get_tensor_dtype(name))
    if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
        buffers[name] = np.ascontiguousarray(x.astype(dtype))
    else:
        buffers[name] = np.empty(trt.volume(shape), dtype=dtype).reshape(shape)
    context.set_tensor_address(name, buffers[name].ctypes.data)
stream = 0
if not context.execute_async_v3(stream_handle=stream):
    sys.exit("ERROR: inference failed")
outputs = {n: b for n, b in buffers.items() if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT}
np.savez(output_path, **outputs)
print("&&&& PASSED", " ".join(f"{n}{tuple(b.shape)}" for n, b in outputs.items()))
