"""Drives the `kiln` CLI (trtexec's flags and file formats) for one case: build, check, time.

Build:  kiln --onnx=M --saveEngine=E [--fp16] --minShapes=.. --optShapes=.. --maxShapes=..
             --skipInference --backend=cuda
Run:    kiln --loadEngine=E --shapes=.. --loadInputs=name:file,.. --exportOutput=O.json
             --exportTimes=T.json --iterations=N --warmUp=MS --duration=0 --useCudaGraph --backend=cuda
Reads:  O.json  [{"name", "dimensions" ("1x1000" or [1, 1000]), "values": [...]}]
        T.json  [{"computeMs" (else "latencyMs"), ...} per iteration]
        stdout  optional "Activation Memory: <bytes>" line (as trtexec prints it)
Every failure becomes a one-line reason ("n/a: ...") for the table; nothing is invented.
"""
import json
import os
import re
import shutil
import subprocess
import time

import timing

BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 600


def find_kiln(path=None):
    """The kiln binary: --kiln, else $KILN, else build/kiln beside bench/, else kiln on PATH."""
    cands = [path] if path else [os.environ.get("KILN"),
                                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "kiln"),
                                 shutil.which("kiln")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    return None


def dims_str(shape):
    return "x".join(str(int(d)) for d in shape)


def shapes_flag(names, shapes):
    return ",".join(f"{n}:{dims_str(s)}" for n, s in zip(names, shapes))


def build_cmd(kiln, onnx, engine, precision, names, shapes_min, shapes_opt, shapes_max, timing_cache=None):
    """The build command; with timing_cache, tuned (--builderOptimizationLevel=3, which CUDA engines
    tune only when given) through that timing cache file."""
    cmd = [kiln, f"--onnx={onnx}", f"--saveEngine={engine}"]
    if timing_cache:
        cmd += ["--builderOptimizationLevel=3", f"--timingCacheFile={timing_cache}"]
    if precision == "fp16":
        cmd.append("--fp16")
    elif precision == "fp32":
        cmd.append("--noTF32")
    cmd += [f"--minShapes={shapes_flag(names, shapes_min)}", f"--optShapes={shapes_flag(names, shapes_opt)}",
            f"--maxShapes={shapes_flag(names, shapes_max)}", "--skipInference", "--backend=cuda"]
    return cmd


def run_cmd(kiln, engine, names, shapes, input_files, out_json, times_json, iterations, warmup_ms):
    return [kiln, f"--loadEngine={engine}", f"--shapes={shapes_flag(names, shapes)}",
            "--loadInputs=" + ",".join(f"{n}:{input_files[n]}" for n in names),
            f"--exportOutput={out_json}", f"--exportTimes={times_json}",
            f"--iterations={iterations}", f"--warmUp={int(warmup_ms)}", "--duration=0",
            "--useCudaGraph", "--backend=cuda"]


def failure_reason(proc_out: str, rc) -> str:
    """One line for the table from a failed command's output: the last error-looking line."""
    lines = [l.strip() for l in (proc_out or "").splitlines() if l.strip()]
    pick = None
    for l in reversed(lines):
        if re.search(r"error|fail|unsupported|unknown|not built|cannot|invalid|n/a", l, re.I):
            pick = l
            break
    if pick is None and lines:
        pick = lines[-1]
    pick = re.sub(r"^\[[A-Z]\]\s*", "", pick or f"exit code {rc}, no output")
    return f"n/a: {pick}"[:160]


def parse_dims(d):
    if isinstance(d, str):
        return [int(x) for x in d.split("x")] if d else []
    return [int(x) for x in d]


def parse_outputs(doc):
    """{name: (dims, values)} from an --exportOutput JSON document."""
    if isinstance(doc, dict):
        doc = doc.get("outputs", [doc])
    out = {}
    for rec in doc:
        out[rec["name"]] = (parse_dims(rec.get("dimensions", [])), rec["values"])
    return out


def parse_activation_bytes(text: str):
    m = re.search(r"Activation Memory[^0-9]*([0-9][0-9.]*)\s*(bytes|B|KiB|MiB|GiB|MB|GB)?", text or "", re.I)
    if not m:
        return None
    v = float(m.group(1))
    unit = (m.group(2) or "bytes").lower()
    return v * {"bytes": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "mb": 1e6, "gb": 1e9}[unit]


def _run(cmd, timeout, log_path):
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or "") if isinstance(e.stdout, str) else "", "timeout"
        out += f"\nerror: timed out after {timeout} s"
    dt = time.perf_counter() - t0
    with open(log_path, "a") as f:
        f.write("$ " + " ".join(cmd) + f"\n{out}\n[rc={rc}, {dt:.2f} s]\n")
    return rc, out, dt


def parse_timed_layers(text):
    """(layers timed, layers with a choice) from the build's 'tactic timing: timed X of Y layers', or None."""
    m = re.search(r"tactic timing: timed (\d+) of (\d+) layers", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def build_and_run(kiln, onnx, casedir, precision, spec, batch, input_files, est_ms=None, tune=False):
    """Builds and runs one case. Returns a dict: ok, reason, build_s, engine_mib, outputs
    ({name: (dims, values)}), times (summarize()), time_field, act_bytes, commands. With tune, the
    build is tuned through a fresh timing cache (build_s: cold, timed_cold) and built again from
    that cache (build_warm_s, timed_warm: the layers the warm build still had to time)."""
    res = {"ok": False, "reason": None}
    if not kiln:
        res["reason"] = "n/a: kiln binary not found (give --kiln)"
        return res
    os.makedirs(casedir, exist_ok=True)
    log = os.path.join(casedir, "kiln.log")
    engine = os.path.join(casedir, f"kiln_{precision}.engine")
    shapes = [(batch,) + tuple(s) for s in _per_sample_shapes(spec)]
    shapes1 = [(1,) + tuple(s) for s in _per_sample_shapes(spec)]
    cache = os.path.join(casedir, "timing.cache") if tune else None
    if cache and os.path.exists(cache):
        os.remove(cache)  # cold: nothing timed before
    bc = build_cmd(kiln, onnx, engine, precision, spec.input_names, shapes1, shapes, shapes, cache)
    res["commands"] = [" ".join(bc)]
    rc, out, dt = _run(bc, BUILD_TIMEOUT_S, log)
    if rc != 0 or not os.path.exists(engine):
        res["reason"] = failure_reason(out, rc) if rc != 0 else "n/a: build wrote no engine"
        return res
    res["build_s"] = dt
    if tune:
        res["timed_cold"] = parse_timed_layers(out)
        warm = os.path.join(casedir, f"kiln_{precision}_warm.engine")
        wc = build_cmd(kiln, onnx, warm, precision, spec.input_names, shapes1, shapes, shapes, cache)
        res["commands"].append(" ".join(wc))
        rc, wout, wdt = _run(wc, BUILD_TIMEOUT_S, log)
        if rc == 0 and os.path.exists(warm):
            res["build_warm_s"] = wdt
            res["timed_warm"] = parse_timed_layers(wout)
            os.remove(warm)
    res["engine_mib"] = os.path.getsize(engine) / 2**20
    act = parse_activation_bytes(out)
    out_json, times_json = os.path.join(casedir, "kiln_out.json"), os.path.join(casedir, "kiln_times.json")
    for p in (out_json, times_json):
        if os.path.exists(p):
            os.remove(p)
    iters = timing.run_count(batch, est_ms or 1.0)
    rcmd = run_cmd(kiln, engine, spec.input_names, shapes, input_files, out_json, times_json, iters, timing.WARMUP_MS)
    res["commands"].append(" ".join(rcmd))
    rc, out, _ = _run(rcmd, RUN_TIMEOUT_S, log)
    if rc != 0:
        res["reason"] = failure_reason(out, rc)
        return res
    try:
        with open(out_json) as f:
            res["outputs"] = parse_outputs(json.load(f))
        with open(times_json) as f:
            samples, field = timing.times_from_trtexec(json.load(f))
        res["times"], res["time_field"] = timing.summarize(samples), field
    except Exception as e:
        res["reason"] = f"n/a: bad kiln output files: {type(e).__name__}: {e}"[:160]
        return res
    a2 = parse_activation_bytes(out)
    res["act_bytes"] = a2 if a2 is not None else act
    res["ok"] = True
    return res


def _per_sample_shapes(spec):
    """Per-input shapes without the batch dim, from the model's batch-1 inputs."""
    return [tuple(t.shape[1:]) for t in spec.make_inputs(1)]
