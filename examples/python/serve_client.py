#!/usr/bin/env python3
"""A tritonclient script against `kiln serve` (unchanged Triton client code): asks the model's
metadata, sends a random batch over HTTP and over gRPC, prints the outputs' shapes and whether
both protocols agree. Run with build/serve-env/bin/python (tritonclient is in scripts/serve-lock.txt).

    kiln serve model.engine &                                  # HTTP :8000, gRPC :8001
    build/serve-env/bin/python examples/python/serve_client.py --model model [--batch 4]
"""
import argparse

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import triton_to_np_dtype


def inputs(module, metadata, batch, rng):
    out = []
    for t in metadata["inputs"]:
        shape = [batch if i == 0 and d == -1 else d for i, d in enumerate(int(x) for x in t["shape"])]
        if any(d < 0 for d in shape):
            raise SystemExit(f"input {t['name']} {t['shape']}: a dynamic dim besides the batch; set it here")
        a = rng.standard_normal(shape).astype(triton_to_np_dtype(t["datatype"]))
        i = module.InferInput(t["name"], shape, t["datatype"])
        i.set_data_from_numpy(a)
        out.append(i)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--batch", type=int, default=2)
    a = p.parse_args()
    http = httpclient.InferenceServerClient(f"{a.host}:{a.http_port}")
    grpc = grpcclient.InferenceServerClient(f"{a.host}:{a.grpc_port}")
    if not http.is_model_ready(a.model):
        raise SystemExit(f"model {a.model} is not ready")
    md = http.get_model_metadata(a.model)
    print("inputs:", [(t["name"], t["datatype"], t["shape"]) for t in md["inputs"]])
    print("outputs:", [(t["name"], t["datatype"], t["shape"]) for t in md["outputs"]])
    seed = int(np.random.default_rng().integers(1 << 31))   # fresh inputs, the same for both protocols
    h_in = inputs(httpclient, md, a.batch, np.random.default_rng(seed))
    g_in = inputs(grpcclient, md, a.batch, np.random.default_rng(seed))
    hr = http.infer(a.model, h_in)
    gr = grpc.infer(a.model, g_in)
    for t in md["outputs"]:
        x, y = hr.as_numpy(t["name"]), gr.as_numpy(t["name"])
        print(f"{t['name']}: shape {list(x.shape)}, HTTP == gRPC: {np.array_equal(x, y)}")
    http.close()
    grpc.close()


if __name__ == "__main__":
    main()
