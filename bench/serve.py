#!/usr/bin/env python3
"""Load generator for `kiln serve` (or any KServe v2 server): closed-loop clients at each
concurrency level, like Triton's perf_analyzer: requests/s, inferences/s, p50/p90/p99 latency.

    build/serve-env/bin/python bench/serve.py --model mlp --concurrency 1,8,64 --duration 5
    build/serve-env/bin/python bench/serve.py --model resnet50 --protocol grpc --url 127.0.0.1:8001 --batch 1

Inputs are fresh random tensors (normal for floats, small ints otherwise) of the model's metadata
shapes: the batch dim (-1 first when max_batch_size > 0) is --batch, other -1 dims need --shape.
Each client has its own connection; errors are counted, not retried.
"""
import argparse
import json
import sys
import threading
import time

import numpy as np


def parse_shapes(text):
    out = {}
    for item in filter(None, (text or "").split(";")):
        name, _, dims = item.rpartition(":")
        out[name] = [int(d) for d in dims.split("x")]
    return out


def client_module(protocol):
    if protocol == "grpc":
        import tritonclient.grpc as m
    else:
        import tritonclient.http as m
    return m


def model_inputs(m, url, model, batch, shapes):
    c = m.InferenceServerClient(url)
    kw = {"as_json": True} if m.__name__.endswith("grpc") else {}
    md = c.get_model_metadata(model, **kw)
    cfg = c.get_model_config(model, **kw)
    cfg = cfg.get("config", cfg)
    batching = int(cfg.get("max_batch_size", 0)) > 0
    out = []
    for t in md["inputs"]:
        if t["name"] in shapes:
            shape = shapes[t["name"]]
        else:
            shape = [int(d) for d in t["shape"]]
            if batching:
                shape[0] = batch
            if any(d < 0 for d in shape):
                sys.exit(f"input '{t['name']}' {t['shape']}: give --shape {t['name']}:AxBx...")
        out.append((t["name"], t["datatype"], shape))
    c.close()
    return out


def make_inputs(m, specs, rng):
    from tritonclient.utils import triton_to_np_dtype
    ins = []
    for name, dt, shape in specs:
        npt = triton_to_np_dtype(dt)
        if np.issubdtype(npt, np.floating):
            a = rng.standard_normal(shape).astype(npt)
        elif npt == np.bool_:
            a = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            a = rng.integers(0, 8, shape).astype(npt)
        i = m.InferInput(name, shape, dt)
        i.set_data_from_numpy(a)
        ins.append(i)
    return ins


def run_level(m, url, model, specs, concurrency, duration, warmup):
    lat, errors, lock = [], [], threading.Lock()
    start = threading.Barrier(concurrency + 1)
    t_begin = [0.0]

    def worker(seed):
        c = m.InferenceServerClient(url)
        ins = make_inputs(m, specs, np.random.default_rng(seed))
        start.wait()
        end = t_begin[0] + warmup + duration
        mine, errs = [], 0
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            try:
                c.infer(model, ins)
                t1 = time.perf_counter()
                if t0 >= t_begin[0] + warmup:
                    mine.append(t1 - t0)
            except Exception as e:  # noqa: BLE001
                errs += 1
                if errs == 1:
                    with lock:
                        errors.append(str(e)[:200])
        with lock:
            lat.extend(mine)
            errors.extend([None] * (errs - 1 if errs else 0))
        c.close()

    threads = [threading.Thread(target=worker, args=(1000 + i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    t_begin[0] = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    lat_ms = np.array(lat) * 1e3
    n = len(lat_ms)
    return {
        "concurrency": concurrency, "requests": n, "errors": len(errors),
        "first_error": next((e for e in errors if e), None),
        "req_per_s": n / duration,
        "p50_ms": float(np.percentile(lat_ms, 50)) if n else None,
        "p90_ms": float(np.percentile(lat_ms, 90)) if n else None,
        "p99_ms": float(np.percentile(lat_ms, 99)) if n else None,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--protocol", choices=["http", "grpc"], default="http")
    p.add_argument("--url", help="host:port (default 127.0.0.1:8000 for HTTP, :8001 for gRPC)")
    p.add_argument("--concurrency", default="1,8,64", help="comma-separated levels")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first, per level")
    p.add_argument("--batch", type=int, default=1, help="batch size of each request")
    p.add_argument("--shape", help="input shapes for other dynamic dims: name:1x3x224x224;...")
    p.add_argument("--json", help="also write the results to this file")
    a = p.parse_args()
    url = a.url or ("127.0.0.1:8001" if a.protocol == "grpc" else "127.0.0.1:8000")
    m = client_module(a.protocol)
    specs = model_inputs(m, url, a.model, a.batch, parse_shapes(a.shape))
    rows = []
    print(f"model {a.model} over {a.protocol} {url}, batch {a.batch}, "
          + ", ".join(f"{n} {dt} {s}" for n, dt, s in specs))
    print(f"{'concurrency':>11} {'req/s':>9} {'infer/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for level in (int(x) for x in a.concurrency.split(",")):
        r = run_level(m, url, a.model, specs, level, a.duration, a.warmup)
        r["infer_per_s"] = r["req_per_s"] * a.batch
        rows.append(r)
        f = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"  # noqa: E731
        print(f"{level:>11} {r['req_per_s']:9.1f} {r['infer_per_s']:9.1f} {f(r['p50_ms'])} {f(r['p90_ms'])} "
              f"{f(r['p99_ms'])} {r['errors']:>6}", flush=True)
        if r["first_error"]:
            print(f"            first error: {r['first_error']}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"model": a.model, "protocol": a.protocol, "batch": a.batch, "levels": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
