"""The classic TensorRT Python workflow: parse an ONNX model, build an FP16 engine with a workspace
limit and an optimization profile, save it, load it, run it. Written as for TensorRT 10; the only
change for kiln is the import line (`import tensorrt as trt` -> `import kiln as trt`).

usage: classic_onnx_fp16.py model.onnx input.npy [--engine model.engine] [--outputs out.npz]

The input's first dimension is the batch: the profile spans batch 1 .. 2x the input's batch, with
the input's batch as the optimum. Buffers: device memory through cuda-python (as TensorRT's
samples) or PyTorch when either has a GPU, else host memory, which is what kiln's CPU backend
(KILN_BACKEND=cpu, or no GPU) reads and writes.
"""
import argparse
import sys

import numpy as np

import kiln as trt

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)


def build_engine(onnx_path, input_shape, engine_path):
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, TRT_LOGGER)
    with open(onnx_path, "rb") as model:
        if not parser.parse(model.read()):
            for i in range(parser.num_errors):
                print(parser.get_error(i))
            return None
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)  # 1 GiB
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    batch, rest = input_shape[0], tuple(input_shape[1:])
    inp = network.get_input(0)
    profile.set_shape(inp.name, (1,) + rest, (batch,) + rest, (2 * batch,) + rest)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        return None
    with open(engine_path, "wb") as f:
        f.write(serialized)
    return serialized


class Buffers:
    """Device buffers with host copies, through cuda-python or PyTorch; plain host memory when
    neither has a GPU (kiln's CPU backend runs on it)."""

    def __init__(self):
        self.cudart = self.torch = None
        try:
            from cuda.bindings import runtime as cudart
            if cudart.cudaGetDeviceCount()[1] > 0:
                self.cudart = cudart
        except ImportError:
            pass
        if self.cudart is None:
            try:
                import torch
                if torch.cuda.is_available():
                    self.torch = torch
            except ImportError:
                pass
        self.device = {}

    def alloc(self, name, host):
        """The address the engine reads `host`'s tensor from / writes it to."""
        if self.cudart:
            err, ptr = self.cudart.cudaMalloc(host.nbytes)
            self.device[name] = ptr
            return ptr
        if self.torch:
            t = self.torch.empty(host.nbytes, dtype=self.torch.uint8, device="cuda")
            self.device[name] = t
            return t.data_ptr()
        return host.ctypes.data

    def to_device(self, name, host):
        if self.cudart:
            self.cudart.cudaMemcpy(self.device[name], host.ctypes.data, host.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
        elif self.torch:
            self.device[name].copy_(self.torch.from_numpy(host.reshape(-1).view(np.uint8)))

    def to_host(self, name, host):
        if self.cudart:
            self.cudart.cudaMemcpy(host.ctypes.data, self.device[name], host.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
        elif self.torch:
            host.reshape(-1).view(np.uint8)[:] = self.device[name].cpu().numpy()

    def synchronize(self):
        if self.cudart:
            self.cudart.cudaDeviceSynchronize()
        elif self.torch:
            self.torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx")
    ap.add_argument("input", help=".npy file of the network's (first) input")
    ap.add_argument("--engine", default="model.engine")
    ap.add_argument("--outputs", help=".npz file to write the outputs to")
    args = ap.parse_args()
    x = np.load(args.input)

    if build_engine(args.onnx, x.shape, args.engine) is None:
        sys.exit("ERROR: failed to build the engine")
    runtime = trt.Runtime(TRT_LOGGER)
    with open(args.engine, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    context = engine.create_execution_context()

    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    context.set_input_shape(inputs[0], x.shape)
    buffers, host = Buffers(), {}
    for name in names:
        shape = context.get_tensor_shape(name)
        dtype = trt.nptype(engine.get_tensor_dtype(name))
        if name in inputs:
            host[name] = np.ascontiguousarray(x.astype(dtype))
        else:
            host[name] = np.empty(trt.volume(shape), dtype=dtype).reshape(shape)
        context.set_tensor_address(name, buffers.alloc(name, host[name]))
    for name in inputs:
        buffers.to_device(name, host[name])
    stream = 0
    if not context.execute_async_v3(stream_handle=stream):
        sys.exit("ERROR: inference failed")
    buffers.synchronize()
    outputs = {}
    for name in names:
        if name not in inputs:
            buffers.to_host(name, host[name])
            outputs[name] = host[name]
    if args.outputs:
        np.savez(args.outputs, **outputs)
    for name, value in outputs.items():
        print(f"{name}: shape {value.shape}, mean {float(np.mean(value)):.6f}")
    print("&&&& PASSED classic_onnx_fp16")


if __name__ == "__main__":
    main()
