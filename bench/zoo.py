#!/usr/bin/env python3
"""kiln model-zoo benchmark: kiln against PyTorch, side by side on one GPU, in one command.

    python3 bench/zoo.py --models resnet50,bert_base --batch 1,128 --precision fp16 --out results/

For each model and batch: export to ONNX (TorchScript opset 17 + dynamo opset 18), save inputs and
PyTorch's FP32 reference (TF32 off), build + check + time kiln through its CLI, time every PyTorch
contender with the same CUDA-event method, and report (results.md, results.json, speedup.png).
A case where kiln did not run or is over its error bound is FAILED and the exit code is 1.
The last line printed is the geometric-mean speedup of kiln over the best PyTorch contender.
See bench/README.md.
"""
import argparse
import copy
import datetime
import gc
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import models as zoo_models  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402

T0 = time.perf_counter()


def log(msg):
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="all", help="comma list of models, 'all' (the zoo, default) or 'outside' "
                   "(architectures kiln was not tuned on); known: "
                   + ", ".join(m.name for m in zoo_models.ZOO + zoo_models.OUTSIDE))
    p.add_argument("--batch", default="small,large",
                   help="comma list: integers, or 'small'/'large' = each model's defaults "
                        "(1 and 128; 64 for transformers). Default: small,large")
    p.add_argument("--precision", default="fp16", choices=["fp16", "fp32"])
    p.add_argument("--out", default="bench-results", help="folder for results.md/.json and speedup.png")
    p.add_argument("--work", default=None, help="folder for ONNX files, inputs, references, engines "
                   "(default: <out>/work)")
    p.add_argument("--tune", action="store_true", help="kiln: tuned builds (--builderOptimizationLevel=3) through a "
                   "fresh timing cache, then again from that cache: the table's build seconds cold / warm")
    p.add_argument("--autotune", action="store_true", help="also torch.compile mode max-autotune (minutes per model)")
    p.add_argument("--kiln", default=None, help="path to the kiln binary (default: $KILN, build/kiln, PATH)")
    p.add_argument("--skip-kiln", action="store_true", help="PyTorch contenders only; kiln column 'skipped'")
    p.add_argument("--onnx-from", default="torchscript", choices=["torchscript", "dynamo"],
                   help="which export kiln builds from (default torchscript)")
    p.add_argument("--exporters", default="torchscript,dynamo",
                   help="exporters to run, comma list of torchscript,dynamo, or 'none'")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile contenders")
    a = p.parse_args(argv)
    try:
        a.model_specs = zoo_models.select(a.models.split(","))
    except ValueError as e:
        p.error(f"--models: {e}")
    a.batch_tokens = [t for t in a.batch.split(",") if t.strip()]
    if not a.batch_tokens:
        p.error("--batch: empty")
    for m in a.model_specs:
        try:
            zoo_models.resolve_batches(m, a.batch_tokens)
        except ValueError as e:
            p.error(f"--batch: {e}")
    a.exporter_list = [] if a.exporters.strip() == "none" else [e.strip() for e in a.exporters.split(",") if e.strip()]
    bad = [e for e in a.exporter_list if e not in ("torchscript", "dynamo")]
    if bad:
        p.error(f"--exporters: unknown {', '.join(bad)}")
    if not a.skip_kiln and a.onnx_from not in a.exporter_list:
        a.exporter_list.append(a.onnx_from)
    if a.work is None:
        a.work = os.path.join(a.out, "work")
    return a


# ---------------------------------------------------------------- GPU helpers

def _short(e):
    lines = str(e).strip().splitlines()
    return f"n/a: {type(e).__name__}: {lines[0] if lines else ''}"[:120]


def measure_peak_tflops():
    """Dense FP16 matmul peak, measured once: 8192^3 torch.matmul on random data."""
    import torch
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    c = torch.empty(n, n, device="cuda", dtype=torch.float16)
    t = timing.cuda_time(lambda: torch.matmul(a, b, out=c), batch=2)
    del a, b, c
    return 2 * n ** 3 / (t["median_ms"] * 1e-3) / 1e12


def count_flops(module, inputs):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        module(*inputs)
    return fc.get_total_flops()


def cuda_graph(fn):
    """Captures fn() into a CUDA graph (after side-stream warm-up); returns a function that replays
    it and returns the graph's (static) outputs."""
    import torch
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn()
    torch.cuda.synchronize()

    def replay():
        g.replay()
        return out
    return replay


def to_precision(inputs, precision):
    import torch
    dt = torch.float16 if precision == "fp16" else torch.float32
    return tuple(t.to(dt) if t.is_floating_point() else t for t in inputs)


def as_tuple(y):
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def worst_rel_l2(spec, refs, outs):
    """{output: {rel_l2, max_abs}} of a contender's outputs against the FP32 reference."""
    return {n: report.compare(r.cpu().numpy(), o.float().cpu().numpy())
            for n, r, o in zip(spec.output_names, refs, as_tuple(outs))}


def pytorch_contenders(spec, model_p, inputs_p, refs, args, batch):
    """Times every PyTorch contender; returns ({name: timing + errors, or {'error'}}, act bytes).
    Each contender's outputs (first call) are checked against the reference, so a contender that
    skips work is seen."""
    import torch
    res, act = {}, None

    def timed(name, make):
        t0 = time.perf_counter()
        try:
            fn = make()
            outs = fn()  # first call (compiles, captures) outside the timing
            errs = worst_rel_l2(spec, refs, outs)
            res[name] = timing.cuda_time(fn, batch)
            res[name]["errors"] = errs
            res[name]["rel_l2"] = max(e["rel_l2"] for e in errs.values())
            res[name]["setup_s"] = round(time.perf_counter() - t0, 2)
            log(f"    {name:22s} {res[name]['median_ms']:8.3f} ms  ({res[name]['runs']} runs, setup {res[name]['setup_s']} s, rel L2 {res[name]['rel_l2']:.1e})")
        except Exception as e:
            res[name] = {"error": _short(e)}
            log(f"    {name:22s} FAILED: {res[name]['error']}")
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
            try:
                torch.cuda.synchronize()
            except Exception:
                pass

    with torch.inference_mode():
        # activation memory and outputs of eager PyTorch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        model_p(*inputs_p)
        torch.cuda.synchronize()
        act = torch.cuda.max_memory_allocated() - base

        timed("eager", lambda: (lambda: model_p(*inputs_p)))
        timed("eager+graph", lambda: cuda_graph(lambda: model_p(*inputs_p)))
        if spec.kind == "cnn":
            def make_cl():
                m_cl = copy.deepcopy(model_p).to(memory_format=torch.channels_last)
                x_cl = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs_p)
                return cuda_graph(lambda: m_cl(*x_cl))
            timed("cl+graph", make_cl)
        if not args.no_compile:
            modes = ["default"] + (["max-autotune"] if args.autotune else [])
            for mode in modes:
                def make_compiled(mode=mode):
                    torch._dynamo.reset()
                    cm = torch.compile(model_p, mode=mode, dynamic=False)
                    return lambda: cm(*inputs_p)
                timed("compile" if mode == "default" else "compile-max-autotune", make_compiled)
    torch._dynamo.reset()
    return res, act


def kiln_case(args, spec, exports, inputs, refs, workdir, batch, est_ms):
    """Builds/checks/times kiln for one case; returns (kiln dict, errors, top1)."""
    import export as ex
    import kilncli
    kiln = {"skipped": False}
    onnx = (exports.get(args.onnx_from) or {}).get("path")
    if not onnx:
        other = [v["path"] for v in exports.values() if v.get("path")]
        if not other:
            errs = "; ".join(f"{k}: {v.get('error')}" for k, v in exports.items())
            kiln.update(ok=False, reason=f"n/a: no ONNX export ({errs})"[:160])
            return kiln, {}, None
        onnx = other[0]
    casedir = os.path.join(workdir, f"b{batch}")
    files = ex.save_case(spec, inputs, refs, casedir)
    r = kilncli.build_and_run(args.kiln_path, onnx, os.path.join(casedir, args.precision), args.precision,
                              spec, batch, files, est_ms, tune=getattr(args, "tune", False))
    kiln.update({k: v for k, v in r.items() if k != "outputs"})
    kiln["onnx"] = onnx
    errors, top1 = {}, None
    if r.get("ok"):
        kiln["median_ms"] = r["times"]["median_ms"]
        outs = r["outputs"]
        for i, (name, ref) in enumerate(zip(spec.output_names, refs)):
            got = outs.get(name)
            if got is None and i < len(outs):
                got = list(outs.values())[i]
            if got is None:
                errors[name] = {"rel_l2": float("inf"), "max_abs": float("inf"), "missing": True}
                continue
            e = report.compare(ref.cpu().numpy(), got[1], classifier=spec.classifier)
            if "top1" in e:
                top1 = e.pop("top1")
            errors[name] = e
        log(f"    kiln {kiln['median_ms']:.3f} ms, build {kiln.get('build_s', 0):.1f} s")
    else:
        log(f"    kiln: {kiln.get('reason')}")
    return kiln, errors, top1


def write_results(args, meta, cases, peak, plot=False):
    """results.md and results.json (and speedup.png at the end) from the cases measured so far."""
    meta["wall_s"] = round(time.perf_counter() - T0, 1)
    table = report.markdown_table(cases, peak)
    header = (f"{meta['device']}, {meta['date']}, torch {meta['torch']}, {args.precision}; "
              f"peak dense FP16 matmul {peak:.0f} TFLOP/s (measured); median ms")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(header + "\n\n" + table + "\n\n" + report.summary_line(cases) + "\n")
    report.write_json(os.path.join(args.out, "results.json"), meta, cases)
    if plot:
        try:
            report.plot(os.path.join(args.out, "speedup.png"), cases, title=header)
        except Exception as e:
            log(f"plot failed: {_short(e)}")
    return header, table


def run(args):
    import torch
    import export as ex
    import kilncli
    if not torch.cuda.is_available():
        print("error: no CUDA device: the zoo benchmark times on the GPU", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    args.kiln_path = None if args.skip_kiln else kilncli.find_kiln(args.kiln)
    if not args.skip_kiln:
        log(f"kiln binary: {args.kiln_path or 'NOT FOUND'}")
    torch.backends.cudnn.benchmark = True
    if args.precision == "fp32":  # strict FP32 for every contender (kiln gets --noTF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dev = torch.cuda.get_device_name()
    peak = measure_peak_tflops()
    log(f"device {dev}; torch {torch.__version__}; measured dense FP16 matmul peak {peak:.0f} TFLOP/s")
    meta = {"device": dev, "torch": torch.__version__, "cuda": torch.version.cuda,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "peak_fp16_tflops": peak, "precision": args.precision, "argv": sys.argv[1:],
            "contenders": report.CONTENDER_HELP, "timing": "CUDA events per run, warm-up "
            f"{timing.WARMUP_MS:.0f} ms, median of >= 100 runs (batch 1) / >= 30 (larger)"}
    cases = []
    for spec in args.model_specs:
        log(f"== {spec.name}")
        workdir = os.path.join(args.work, spec.name)
        model = spec.build().cuda()
        flops1 = None
        try:
            flops1 = count_flops(model, tuple(t.cuda() for t in spec.make_inputs(1)))
        except Exception as e:
            log(f"  flop count failed: {_short(e)}")
        exports = ex.export_model(spec, model, workdir, args.exporter_list, log=lambda m: log(m)) \
            if args.exporter_list else {}
        model_p = copy.deepcopy(model).half() if args.precision == "fp16" else model
        for batch in zoo_models.resolve_batches(spec, args.batch_tokens):
            log(f"  -- {spec.name} batch {batch}")
            inputs = tuple(t.cuda() for t in spec.make_inputs(batch))
            refs = tuple(r.float() for r in ex.reference(model, inputs))
            inputs_p = to_precision(inputs, args.precision)
            case = {"model": spec.name, "batch": batch, "precision": args.precision, "kind": spec.kind,
                    "flops": flops1 * batch if flops1 else None,
                    "exports": {k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in exports.items()}}
            contenders, act = pytorch_contenders(spec, model_p, inputs_p, refs, args, batch)
            case["contenders"], case["pt_act_bytes"] = contenders, act
            if args.skip_kiln:
                case["kiln"] = {"skipped": True}
            else:
                _, best = report.best_pytorch(contenders)
                case["kiln"], case["errors"], case["top1"] = kiln_case(args, spec, exports, inputs, refs,
                                                                       workdir, batch, best)
            report.finalize_case(case)
            cases.append(case)
            write_results(args, meta, cases, peak)  # after every case: a run cut short keeps what it measured
            del inputs, inputs_p, refs
        del model, model_p
        gc.collect()
        torch.cuda.empty_cache()
    header, table = write_results(args, meta, cases, peak, plot=True)
    print("\n" + header + "\n\n" + table + "\n")
    for c in cases:
        for r in c.get("fail_reasons", []):
            print(f"FAILED {c['model']} b{c['batch']}: {r}")
    log(f"done in {meta['wall_s']} s; results in {args.out}")
    print(report.summary_line(cases))
    return report.exit_code(cases)


def main(argv=None):
    args = parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
