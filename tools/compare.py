#!/usr/bin/env python3
"""Runs an ONNX model on kiln's CPU backend (through the `kiln` command) and on ONNX Runtime
(CPU) with the same random inputs, and prints, per output, the relative L2 and max abs error:
the check to reach for when an engine disagrees with a framework.

    build/pyenv/bin/python tools/compare.py MODEL.onnx [--kiln build/kiln] [--shapes name:1x3x224x224,...]
                                            [--seed 0] [--tol 1e-4] [--max-abs X] [--ort-unoptimized]

Exits 1 if any output's relative L2 error is above --tol. Run it with the project's virtual
environment (scripts/setup.sh makes build/pyenv with onnx, onnxruntime and numpy pinned).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

NP_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
            10: np.float16, 11: np.float64}


def parse_shapes(text):
    out = {}
    for item in filter(None, (text or "").split(",")):
        name, dims = item.rsplit(":", 1)
        out[name] = [int(d) for d in dims.split("x")]
    return out


def random_input(vi, shapes, rng):
    tt = vi.type.tensor_type
    if tt.elem_type not in NP_TYPES:
        sys.exit(f"compare.py: input '{vi.name}' has element type {tt.elem_type}, which this tool does not generate")
    dims = shapes.get(vi.name) or [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
    dt = NP_TYPES[tt.elem_type]
    if np.issubdtype(dt, np.floating):
        return rng.standard_normal(dims).astype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, dims).astype(dt)
    return rng.integers(0, 4, dims).astype(dt)  # small ints: valid as indices, ids and masks


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--kiln", default=os.path.join(os.path.dirname(__file__), "..", "build", "kiln"))
    p.add_argument("--shapes", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--ort-unoptimized", action="store_true",
                   help="run ONNX Runtime with graph optimizations off: each Q/DQ op as written, the Q/DQ "
                        "graph's meaning (ORT's fused uint8 x int8 kernels saturate on x86 without VNNI)")
    p.add_argument("--max-abs", type=float, default=None,
                   help="also fail when any element differs by more than this (e.g. one quantum of an int8 output)")
    a = p.parse_args()
    model = onnx.load(a.model, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    rng = np.random.default_rng(a.seed)
    feeds = {vi.name: random_input(vi, parse_shapes(a.shapes), rng) for vi in inputs}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, x in feeds.items():
            files[name] = os.path.join(tmp, f"in{len(files)}.bin")
            x.tofile(files[name])
        out_json = os.path.join(tmp, "out.json")
        cmd = [a.kiln, f"--onnx={a.model}", "--backend=cpu", "--iterations=1", "--duration=0", "--warmUp=0",
               "--shapes=" + ",".join(f"{n}:{'x'.join(map(str, x.shape))}" for n, x in feeds.items()),
               "--loadInputs=" + ",".join(f"{n}:{f}" for n, f in files.items()), f"--exportOutput={out_json}"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"compare.py: kiln failed:\n{r.stderr.strip() or r.stdout[-2000:]}")
        kiln_out = {o["name"]: np.array(o["values"], dtype=np.float64) for o in json.load(open(out_json))}
    opts = ort.SessionOptions()
    if a.ort_unoptimized:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    worst = 0.0
    print(f"{'output':<32} {'shape':<18} {'rel L2':>10} {'max abs':>10}")
    for name, want in ref.items():
        want = np.asarray(want, dtype=np.float64).ravel()
        got = kiln_out.get(name)
        if got is None or got.size != want.size:
            print(f"{name:<32} kiln gave {'no output' if got is None else f'{got.size} values'}, ORT {want.size}")
            worst = float("inf")
            continue
        den = np.linalg.norm(want)
        rel = np.linalg.norm(got - want) / den if den > 0 else float(np.linalg.norm(got - want) > 0)
        worst = max(worst, rel)
        if a.max_abs is not None and np.max(np.abs(got - want)) > a.max_abs:
            print(f"{name}: max abs error {np.max(np.abs(got - want)):.3e} over --max-abs {a.max_abs:g}")
            worst = float("inf")
        print(f"{name:<32} {str(list(np.shape(ref[name]))):<18} {rel:10.3e} {np.max(np.abs(got - want)):10.3e}")
    print(f"kiln vs ONNX Runtime {ort.__version__}: worst relative L2 {worst:.3e} (tolerance {a.tol:g})")
    return 0 if worst <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
