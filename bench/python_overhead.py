"""Python overhead of kiln's context.infer() per call at batch 1 on the GPU, against the C++ enqueue.

The issue's goal: under 10 us of host time above the C++ enqueue. For one engine (default: a
small MLP exported from PyTorch; or --onnx MODEL with --shape), measured on the host with
time.perf_counter_ns around each call, the GPU idle before each (synchronized outside the timed
window), median of --iterations calls after a warm-up:

  C++ enqueue          kiln --loadEngine --noDataTransfers: the CLI's "Enqueue Time" median
  execute_async_v3     the TensorRT call from Python, addresses set once (binding + C++ enqueue)
  infer, outputs=      context.infer({name: torch CUDA tensor}, outputs={name: torch tensor})
  infer                context.infer({name: torch CUDA tensor}) (outputs made with torch.empty)
  infer, numpy         numpy in and out: copies both ways and a wait (for reference only)

overhead = infer(outputs=) - C++ enqueue; also printed against execute_async_v3.
Needs PyTorch with CUDA and a kiln module with CUDA (run from the repository root with the module on
PYTHONPATH, e.g. PYTHONPATH=build/python).

usage: python_overhead.py [--kiln build/kiln] [--onnx model.onnx --shape 1x3x224x224] [--iterations 2000]
"""
import argparse
import inspect
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def median_us(fn, iterations, sync):
    for _ in range(max(50, iterations // 10)):
        fn()
    sync()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        fn()
        t1 = time.perf_counter_ns()
        sync()
        times.append((t1 - t0) / 1000.0)
    return statistics.median(times)


def cli_enqueue_us(kiln_cli, engine_path, name, shape, iterations):
    dims = "x".join(str(d) for d in shape)
    cmd = [kiln_cli, f"--loadEngine={engine_path}", f"--shapes={name}:{dims}", "--noDataTransfers",
           f"--iterations={iterations}", "--duration=1", "--warmUp=200"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"Enqueue Time: .*?median = ([0-9.eE+-]+) ms", r.stdout)
    if r.returncode != 0 or not m:
        print(f"kiln CLI failed ({' '.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return None
    return float(m.group(1)) * 1000.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kiln", default="build/kiln", help="the kiln CLI (for the C++ enqueue time)")
    ap.add_argument("--onnx", help="a model with one input (default: a small MLP exported here)")
    ap.add_argument("--shape", help="the input's shape at batch 1 with --onnx, e.g. 1x3x224x224")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cpu: the same measurement on a CPU engine with CPU tensors (to try the script without a GPU)")
    args = ap.parse_args()
    import numpy as np
    import torch
    import kiln
    cuda = args.device == "cuda"
    if cuda and (not torch.cuda.is_available() or not kiln._kiln._cuda_device_available()):
        sys.exit("needs PyTorch with CUDA and a kiln module with a CUDA backend (or --device cpu)")

    tmp = tempfile.TemporaryDirectory()
    if args.onnx:
        if not args.shape:
            sys.exit("--onnx needs --shape")
        path, shape = args.onnx, tuple(int(d) for d in args.shape.split("x"))
    else:
        path, shape = os.path.join(tmp.name, "mlp.onnx"), (1, 256)
        model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
        kw = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        torch.onnx.export(model, (torch.randn(*shape),), path, opset_version=17, input_names=["x"],
                          output_names=["y"], **kw)
    logger = kiln.Logger(kiln.Logger.ERROR)
    network = kiln.Builder(logger).create_network()
    if not kiln.OnnxParser(network, logger).parse_from_file(path):
        sys.exit(f"cannot parse {path}")
    inp = network.get_input(0)
    profiles = {inp.name: shape} if -1 in inp.shape else None
    engine = kiln.build(path, fp16=args.fp16, backend=args.device, profiles=profiles)
    name = inp.name
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    outputs = [n for n in names if engine.get_tensor_mode(n) == kiln.TensorIOMode.OUTPUT]
    engine_path = os.path.join(tmp.name, "model.engine")
    with open(engine_path, "wb") as f:
        f.write(engine.serialize())

    ctx = engine.create_execution_context()
    torch_dtype = {np.float32: torch.float32, np.float16: torch.float16, np.int64: torch.int64, np.int32: torch.int32}
    x = torch.randn(*shape, device=args.device).to(torch_dtype[kiln.nptype(engine.get_tensor_dtype(name))])
    ctx.set_input_shape(name, shape)
    outs = {o: torch.empty(tuple(ctx.get_tensor_shape(o)), device=args.device,
                           dtype=torch_dtype[kiln.nptype(engine.get_tensor_dtype(o))]) for o in outputs}
    stream = torch.cuda.current_stream() if cuda else None
    sync = stream.synchronize if cuda else (lambda: None)

    ctx_tr = engine.create_execution_context()  # TensorRT's way: addresses once, then enqueue
    ctx_tr.set_input_shape(name, shape)
    ctx_tr.set_tensor_address(name, x.data_ptr())
    for o, t in outs.items():
        ctx_tr.set_tensor_address(o, t.data_ptr())
    handle = stream.cuda_stream if cuda else 0
    x_np = x.cpu().numpy()
    rows = [
        ("execute_async_v3", median_us(lambda: ctx_tr.execute_async_v3(handle), args.iterations, sync)),
        ("infer, outputs=", median_us(lambda: ctx.infer({name: x}, outputs=outs), args.iterations, sync)),
        ("infer", median_us(lambda: ctx.infer({name: x}), args.iterations, sync)),
        ("infer, numpy", median_us(lambda: ctx.infer({name: x_np}), max(100, args.iterations // 10), sync)),
    ]
    cli = cli_enqueue_us(args.kiln, engine_path, name, shape, args.iterations) if os.path.isfile(args.kiln) else None
    print(f"model {os.path.basename(path)} input {name} {'x'.join(map(str, shape))}, "
          f"{torch.cuda.get_device_name() if cuda else 'CPU engine'}, Python {sys.version.split()[0]}, torch {torch.__version__}")
    print(f"{'call':<22}{'median host us per call':>26}")
    if cli is not None:
        print(f"{'C++ enqueue (CLI)':<22}{cli:>26.2f}")
    else:
        print(f"{'C++ enqueue (CLI)':<22}{'n/a (--kiln not found)':>26}")
    for label, us in rows:
        print(f"{label:<22}{us:>26.2f}")
    infer_us = rows[1][1]
    base = cli if cli is not None else rows[0][1]
    print(f"overhead of infer(outputs=) above {'the C++ enqueue' if cli is not None else 'execute_async_v3'}: "
          f"{infer_us - base:.2f} us (goal < 10 us); above execute_async_v3: {infer_us - rows[0][1]:.2f} us")


if __name__ == "__main__":
    main()
