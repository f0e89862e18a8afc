"""PyTorch -> ONNX -> kiln -> run on torch CUDA tensors -> compare with PyTorch.

Exports a torchvision model (random weights) with the TorchScript exporter (dynamic batch),
builds a kiln CUDA engine in one call (kiln.build, FP16 by default), runs it with
context.infer() on torch CUDA tensors (zero-copy: the input is read where it is, the output is a
new torch tensor written on torch's current stream) and compares with PyTorch's FP32 output.
Needs a GPU: without PyTorch with CUDA (or a kiln built without CUDA) it prints SKIPPED and exits 0.

usage: torch_resnet.py [--model resnet18] [--batch 4] [--fp32] [--iterations 50]
"""
import argparse
import inspect
import os
import sys
import tempfile
import time


def skip(why):
    print(f"SKIPPED torch_resnet: {why}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18", help="a torchvision.models constructor (default resnet18)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--fp32", action="store_true", help="build in FP32 instead of FP16")
    ap.add_argument("--iterations", type=int, default=50, help="timed runs of kiln and PyTorch")
    args = ap.parse_args()
    try:
        import torch
        import torchvision
    except ImportError as e:
        return skip(f"needs torch and torchvision ({e})")
    if not torch.cuda.is_available():
        return skip(f"needs PyTorch with CUDA (torch {torch.__version__} sees no CUDA device)")
    import kiln
    if not kiln._kiln._cuda_device_available():
        return skip("this kiln module has no CUDA backend or sees no GPU")

    torch.backends.cuda.matmul.allow_tf32 = False  # an FP32 reference
    torch.backends.cudnn.allow_tf32 = False
    model = getattr(torchvision.models, args.model)(weights=None).eval().cuda()
    b = args.batch
    x = torch.randn(b, 3, 224, 224, device="cuda")

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{args.model}.onnx")
        kw = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        torch.onnx.export(model, (x[:2],), path, opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kw)
        t0 = time.perf_counter()
        engine = kiln.build(path, fp16=not args.fp32, backend="cuda",
                            profiles={"input": ((1, 3, 224, 224), (b, 3, 224, 224), (2 * b, 3, 224, 224))})
        print(f"built {args.model} ({'FP32' if args.fp32 else 'FP16'}) in {time.perf_counter() - t0:.1f} s")

    ctx = engine.create_execution_context()
    with torch.no_grad():
        ref = model(x)
        out = ctx.infer({"input": x})["output"]  # a torch tensor on x's device, written on torch's stream
    assert isinstance(out, torch.Tensor) and out.is_cuda and tuple(out.shape) == tuple(ref.shape)
    err = (torch.linalg.norm(out.float() - ref) / torch.linalg.norm(ref)).item()
    top1 = (out.argmax(1) == ref.argmax(1)).float().mean().item()
    bound = 1e-3 if args.fp32 else 1e-2
    print(f"{args.model} batch {b}: rel L2 error vs PyTorch FP32 {err:.2e} (bound {bound:.0e}), top-1 agreement {top1:.2f}")

    def timed(fn):
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.iterations):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / args.iterations

    y = torch.empty_like(ref)
    with torch.no_grad():
        kiln_ms = timed(lambda: ctx.infer({"input": x}, outputs={"output": y}))
        torch_ms = timed(lambda: model(x))
    print(f"mean ms per batch: kiln {kiln_ms:.3f}, PyTorch eager FP32 {torch_ms:.3f}")
    ok = err < bound
    print(f"&&&& {'PASSED' if ok else 'FAILED'} torch_resnet")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
