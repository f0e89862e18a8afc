"""Exports a zoo model the way users do, and saves inputs and PyTorch's FP32 reference outputs.

  <work>/<model>/torchscript.onnx         TorchScript exporter, opset 17, dynamic batch axis
  <work>/<model>/dynamo/model.onnx(.data) dynamo exporter, opset 18, external weights, dynamic batch
  <work>/<model>/b<B>/<input>.bin          raw little-endian input (what kiln's --loadInputs reads)
  <work>/<model>/b<B>/ref_<output>.npy     PyTorch FP32 output, TF32 off

Both exports use a batch-2 example (batch 1 would be specialized away by torch.export).
"""
import os
import time
import traceback

EXPORT_BATCH = 2


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:300]


def export_torchscript(module, example, input_names, output_names, path):
    import torch
    import inspect
    dyn = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    kw = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(module, tuple(example), path, opset_version=17, input_names=list(input_names),
                      output_names=list(output_names), dynamic_axes=dyn, do_constant_folding=True, **kw)


def export_dynamo(module, example, input_names, output_names, path):
    import torch
    from torch.export import Dim
    batch = Dim("batch", min=1, max=4096)
    shapes = tuple({0: batch} for _ in example)
    torch.onnx.export(module, tuple(example), path, dynamo=True, opset_version=18, external_data=True,
                      input_names=list(input_names), output_names=list(output_names),
                      dynamic_shapes=shapes)


EXPORTERS = {"torchscript": ("torchscript.onnx", export_torchscript),
             "dynamo": (os.path.join("dynamo", "model.onnx"), export_dynamo)}


def export_model(spec, module, workdir, which=("torchscript", "dynamo"), log=print):
    """Exports `module` (FP32, eval, on any device) with each exporter in `which`.
    Returns {exporter: {"path", "seconds", "bytes"} or {"error"}}; an exporter's failure is recorded,
    not raised."""
    import torch
    dev = next(module.parameters()).device
    example = tuple(t.to(dev) for t in spec.make_inputs(EXPORT_BATCH))
    out = {}
    for name in which:
        rel, fn = EXPORTERS[name]
        path = os.path.join(workdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        t0 = time.perf_counter()
        try:
            # Not under no_grad: there nn.MultiheadAttention takes its fused fast path
            # (aten::_native_multi_head_attention), which the TorchScript exporter cannot export.
            fn(module, example, spec.input_names, spec.output_names, path)
            if not os.path.exists(path):
                raise RuntimeError(f"exporter wrote no {path}")
            size = sum(os.path.getsize(os.path.join(os.path.dirname(path), f))
                       for f in os.listdir(os.path.dirname(path))
                       if name == "dynamo" or f == os.path.basename(path))
            out[name] = {"path": path, "seconds": round(time.perf_counter() - t0, 2), "bytes": size}
            log(f"  export {name}: {out[name]['seconds']} s, {size / 2**20:.1f} MiB")
        except Exception as e:  # record and carry on: the other contenders don't need it
            out[name] = {"error": _short(e), "seconds": round(time.perf_counter() - t0, 2)}
            log(f"  export {name} FAILED: {out[name]['error']}")
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
    return out


def reference(module, inputs):
    """PyTorch's FP32 outputs with TF32 off (a tuple of tensors on the module's device)."""
    import torch
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            y = module(*inputs)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    return y if isinstance(y, (tuple, list)) else (y,)


def save_case(spec, inputs, refs, casedir):
    """Writes raw inputs (for --loadInputs) and reference outputs (.npy). Returns {input: path}."""
    import numpy as np
    os.makedirs(casedir, exist_ok=True)
    paths = {}
    for n, t in zip(spec.input_names, inputs):
        p = os.path.join(casedir, f"{n}.bin")
        t.detach().cpu().contiguous().numpy().tofile(p)  # x86-64: little-endian
        paths[n] = p
    for n, r in zip(spec.output_names, refs):
        np.save(os.path.join(casedir, f"ref_{n}.npy"), r.detach().float().cpu().numpy())
    return paths
