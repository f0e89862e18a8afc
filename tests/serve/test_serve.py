"""kiln serve (python/kiln/serve.py, issue 17) on the CPU backend: the server started on localhost
(free ports), asked with tritonclient over HTTP and gRPC; outputs equal the Python API's and the
CLI's for the same (fresh random) inputs; concurrent requests merged by dynamic batching (the
server's statistics); bad requests rejected naming the input; overload answered with errors and
the server alive; SIGTERM drains in-flight requests. Runs in build/serve-env (scripts/serve-lock.txt)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import kiln  # noqa: E402
import models  # noqa: E402  (tests/python/models.py)

tritonclient = pytest.importorskip("tritonclient")
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

MLP_PROFILE = {"x": ((1, 4), (8, 4), (16, 4))}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def kiln_cli():
    path = os.environ.get("KILN_CLI") or os.path.join(os.path.dirname(kiln.__file__), "..", "..", "kiln")
    return path if os.path.isfile(path) else None


class Server:
    def __init__(self, args, tmp, name, models=("mlp",)):
        self.http, self.grpc, self.metrics = free_ports(3)
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "w")
        cmd = [sys.executable, "-m", "kiln.serve", *args, f"--http-port={self.http}", f"--grpc-port={self.grpc}",
               f"--metrics-port={self.metrics}", "--exit-timeout=10"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        client = httpclient.InferenceServerClient(f"127.0.0.1:{self.http}")
        deadline = time.time() + 90
        while True:
            assert self.proc.poll() is None, f"server exited ({self.proc.returncode}):\n{self.output()}"
            try:
                # model readiness (KServe v2): PyTriton loads the models after Triton starts
                if all(client.is_model_ready(m) for m in models):
                    break
            except Exception:
                pass
            assert time.time() < deadline, f"server not ready in 90 s:\n{self.output()}"
            time.sleep(0.2)
        client.close()

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-6000:]

    def http_client(self, **kw):
        return httpclient.InferenceServerClient(f"127.0.0.1:{self.http}", **kw)

    def grpc_client(self):
        return grpcclient.InferenceServerClient(f"127.0.0.1:{self.grpc}")

    def stop(self, timeout=40):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("serve"))
    mlp_onnx = os.path.join(tmp, "mlp.onnx")
    with open(mlp_onnx, "wb") as f:
        f.write(models.mlp().SerializeToString())
    engine = kiln.build(mlp_onnx, backend="cpu", profiles=MLP_PROFILE)
    mlp_engine = os.path.join(tmp, "mlp.engine")
    with open(mlp_engine, "wb") as f:
        f.write(engine.serialize())
    conv_onnx = os.path.join(tmp, "conv.onnx")
    with open(conv_onnx, "wb") as f:
        f.write(models.convnet().SerializeToString())
    fixed_onnx = os.path.join(tmp, "fixed.onnx")   # static shapes: no batching (max_batch_size 0)
    with open(fixed_onnx, "wb") as f:
        f.write(models.mlp(batch=2).SerializeToString())
    # a dynamic dim besides the batch (Triton cannot check its range: kiln does)
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])])
    relu_engine = os.path.join(tmp, "relu.engine")
    with open(relu_engine, "wb") as f:
        f.write(kiln.build(models._model(g).SerializeToString(), backend="cpu",
                           profiles={"x": ((1, 1), (4, 4), (8, 8))}).serialize())
    return {"tmp": tmp, "mlp_onnx": mlp_onnx, "fixed_onnx": fixed_onnx, "relu_engine": relu_engine, "mlp_engine": mlp_engine, "conv_onnx": conv_onnx,
            "context": kiln.load(mlp_engine).create_execution_context()}


@pytest.fixture(scope="module")
def server(work):
    # a Triton-style model repository: the engine file (2 instances, 100 ms queue delay so that
    # concurrent requests meet), an ONNX model built on start (dynamic batch dim: profile 1..4),
    # one with static shapes (no batching), one with a dynamic dim besides the batch
    repo = os.path.join(work["tmp"], "repo")
    layout = {"mlp/1/model.plan": work["mlp_engine"], "small/2/model.plan": work["mlp_engine"],
              "conv/1/model.onnx": work["conv_onnx"],
              "fixed/1/model.onnx": work["fixed_onnx"], "relu/1/model.engine": work["relu_engine"]}
    for rel, src in layout.items():
        os.makedirs(os.path.dirname(os.path.join(repo, rel)), exist_ok=True)
        shutil.copy(src, os.path.join(repo, rel))
    # small: a queue of 2 requests and a long delay (1.5 s): overload, and a request still
    # waiting when SIGTERM comes
    configs = {"mlp": {"instances": 2, "max_queue_delay_us": 100000}, "conv": {"max_batch_size": 4},
               "small": {"max_queue_size": 2, "max_queue_delay_us": 1500000}}
    for model, cfg in configs.items():
        with open(os.path.join(repo, model, "kiln.json"), "w") as f:
            json.dump(cfg, f)
    s = Server([f"--model-repository={repo}", "--backend=cpu"], work["tmp"], "server",
               models=("mlp", "small", "conv", "fixed", "relu"))
    yield s
    assert s.stop() == 0, s.output()


def infer(module, client, model, arrays):
    """client.infer with {name: array} (module: tritonclient.http or tritonclient.grpc)."""
    ins = []
    for name, a in arrays.items():
        i = module.InferInput(name, list(a.shape), dtype_name(a))
        i.set_data_from_numpy(a)
        ins.append(i)
    return client.infer(model, ins)


def http_infer(client, model, arrays):
    return infer(httpclient, client, model, arrays)


def grpc_infer(client, model, arrays):
    return infer(grpcclient, client, model, arrays)


def dtype_name(a):
    from tritonclient.utils import np_to_triton_dtype
    return np_to_triton_dtype(a.dtype)


def concurrently(n, make_client, request):
    """n threads, each with its own client, send request(client, i) at once (a barrier); returns
    each one's result, or the InferenceServerException's text."""
    out = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        client = make_client()
        barrier.wait()
        try:
            out[i] = request(client, i)
        except InferenceServerException as e:
            out[i] = str(e)
        client.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def rand(shape, seed=None):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_ready_metadata_and_config(server):
    c = server.http_client()
    assert c.is_model_ready("mlp") and c.is_model_ready("conv")
    assert c.is_model_ready("small", "2") and not c.is_model_ready("small", "1")   # the repository's version
    md = c.get_model_metadata("mlp")
    assert [(t["name"], t["datatype"], t["shape"]) for t in md["inputs"]] == [("x", "FP32", [-1, 4])]
    assert sorted((t["name"], t["datatype"], tuple(t["shape"])) for t in md["outputs"]) == \
        [("s", "FP32", (-1, 3)), ("y", "FP32", (-1, 3))]
    cfg = c.get_model_config("mlp")
    assert cfg["max_batch_size"] == 16 and len(cfg["instance_group"]) >= 1
    assert sum(g["count"] for g in cfg["instance_group"]) == 2
    assert cfg["dynamic_batching"]["max_queue_delay_microseconds"] == 100000
    assert c.get_model_config("conv")["max_batch_size"] == 4
    c.close()


def test_http_and_grpc_equal_the_python_api(server, work):
    x = rand((3, 4))
    want = work["context"].infer({"x": x})
    h = server.http_client()
    r = http_infer(h, "mlp", {"x": x})
    g = server.grpc_client()
    rg = grpc_infer(g, "mlp", {"x": x})
    for name in ("y", "s"):
        np.testing.assert_array_equal(r.as_numpy(name), want[name], name)
        np.testing.assert_array_equal(rg.as_numpy(name), want[name], name)
    h.close()
    g.close()


def test_outputs_equal_the_cli(server, work):
    cli = kiln_cli()
    if cli is None:
        if os.environ.get("CI"):
            pytest.fail("the kiln CLI was not found next to the module (set KILN_CLI)")
        pytest.skip("the kiln CLI was not found next to the module (set KILN_CLI)")
    x = rand((5, 4))
    xbin = os.path.join(work["tmp"], "x.bin")
    x.tofile(xbin)
    out = os.path.join(work["tmp"], "cli.json")
    r = subprocess.run([cli, f"--loadEngine={work['mlp_engine']}", "--shapes=x:5x4", f"--loadInputs=x:{xbin}",
                        f"--exportOutput={out}", "--iterations=1", "--duration=0", "--warmUp=0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out) as f:
        cli_out = {o["name"]: np.array(o["values"], np.float32).reshape(5, 3) for o in json.load(f)}
    g = server.grpc_client()
    rg = grpc_infer(g, "mlp", {"x": x})
    for name in ("y", "s"):
        np.testing.assert_array_equal(rg.as_numpy(name), cli_out[name], name)
    g.close()


def test_onnx_model_built_on_start(server, work):
    x = rand((2, 3, 8, 8))
    want = kiln.build(work["conv_onnx"], backend="cpu",
                      profiles={"x": ((1, 3, 8, 8), (4, 3, 8, 8), (4, 3, 8, 8))}).create_execution_context().infer({"x": x})
    h = server.http_client()
    np.testing.assert_array_equal(http_infer(h, "conv", {"x": x}).as_numpy("y"), want["y"])
    ref = models.reference(models.convnet(), {"x": x})["y"]
    assert models.rel_l2(want["y"], ref) < 1e-5
    h.close()


def test_static_shapes_without_batching(server, work):
    h = server.http_client()
    assert h.get_model_config("fixed")["max_batch_size"] == 0
    md = h.get_model_metadata("fixed")
    assert [(t["name"], t["shape"]) for t in md["inputs"]] == [("x", [2, 4])]
    x = rand((2, 4))
    want = kiln.build(work["fixed_onnx"], backend="cpu").create_execution_context().infer({"x": x})
    g = server.grpc_client()
    np.testing.assert_array_equal(grpc_infer(g, "fixed", {"x": x}).as_numpy("s"), want["s"])
    expect_error(lambda: http_infer(h, "fixed", {"x": rand((3, 4))}), "'x'")
    h.close()
    g.close()


def model_stats(client, model):
    s = client.get_inference_statistics(model)["model_stats"][0]
    return int(s["inference_count"]), int(s["execution_count"])


def test_dynamic_batching_merges_concurrent_requests(server, work):
    c = server.http_client()
    inf0, exe0 = model_stats(c, "mlp")
    n = 8
    xs = [rand((1, 4)) for _ in range(n)]
    results = concurrently(n, server.http_client, lambda cl, i: http_infer(cl, "mlp", {"x": xs[i]}).as_numpy("y"))
    for i in range(n):
        np.testing.assert_array_equal(results[i], work["context"].infer({"x": xs[i]})["y"])
    inf1, exe1 = model_stats(c, "mlp")
    assert inf1 - inf0 == n
    assert exe1 - exe0 < n, f"{n} concurrent requests ran in {exe1 - exe0} executions: not batched"
    c.close()


def expect_error(fn, *names):
    with pytest.raises(InferenceServerException) as e:
        fn()
    msg = str(e.value)
    for n in names:
        assert n in msg, msg
    return e.value


def test_bad_requests_name_the_input(server):
    h = server.http_client()
    g = server.grpc_client()
    # wrong inner dim: Triton checks it against the model's shape [-1, 4]
    e = expect_error(lambda: http_infer(h, "mlp", {"x": rand((2, 5))}), "'x'")
    assert e.status() in ("400", 400), e.status()
    expect_error(lambda: grpc_infer(g, "mlp", {"x": rand((2, 5))}), "'x'")
    # wrong dtype
    e = expect_error(lambda: http_infer(h, "mlp", {"x": rand((2, 4)).astype(np.float64)}), "'x'", "FP64")
    assert e.status() in ("400", 400), e.status()
    # batch above the profile's max (16)
    expect_error(lambda: http_infer(h, "mlp", {"x": rand((17, 4))}), "batch")
    # unknown input name
    expect_error(lambda: http_infer(h, "mlp", {"z": rand((1, 4))}), "z")
    # a dynamic inner dim outside the profile (1..8): kiln's message, as INVALID_ARG
    e = expect_error(lambda: http_infer(h, "relu", {"x": rand((1, 9))}), "input 'x'", "outside optimization profile")
    assert e.status() in ("400", 400), e.status()
    assert "Traceback" not in str(e)
    expect_error(lambda: grpc_infer(g, "relu", {"x": rand((2, 9))}), "input 'x'", "outside optimization profile")
    np.testing.assert_array_equal(grpc_infer(g, "relu", {"x": rand((2, 7), 5)}).as_numpy("y"),
                                  np.maximum(rand((2, 7), 5), 0))
    # the server still answers
    np.testing.assert_equal(http_infer(h, "mlp", {"x": rand((1, 4))}).as_numpy("y").shape, (1, 3))
    h.close()
    g.close()


def test_overload_is_rejected_not_a_crash(server):
    s = server
    n = 24

    def request(cl, i):
        grpc_infer(cl, "small", {"x": rand((1, 4))})
        return "ok"

    outcome = concurrently(n, s.grpc_client, request)
    rejected = [o for o in outcome if o != "ok"]
    assert rejected, "no request rejected with a queue of 2"
    assert all("queue" in o.lower() for o in rejected), rejected[:3]
    print(f"overload: {len(rejected)} of {n} rejected: {rejected[0]}")
    assert outcome.count("ok") >= 1
    c = s.http_client()
    assert c.is_server_ready() and c.is_model_ready("small")
    c.close()


def test_cli_forwards_to_kiln_serve(work):
    cli = kiln_cli()
    if cli is None:
        pytest.skip("the kiln CLI was not found next to the module (set KILN_CLI)")
    env = dict(os.environ, KILN_SERVE_PYTHON=sys.executable)
    r = subprocess.run([cli, "serve", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "--model-repository" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([cli, "serve", os.path.join(work["tmp"], "missing.engine")], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 2 and "missing.engine: no such file" in r.stderr, r.stderr


def test_pytriton_fixes_apply():
    # kiln serve patches the copies of pytriton/proxy/*.py that the Triton stubs run
    # (serve._patch_pytriton): each replaced text is in the pinned PyTriton exactly once
    import pytriton.proxy
    from kiln import serve
    for name, fixes in serve._FIXES.items():
        path = os.path.join(os.path.dirname(pytriton.proxy.__file__), name)
        with open(path) as f:
            text = f.read()
        for old, new in fixes:
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        compile(text, path, "exec")


def test_sigterm_drains_in_flight_requests(server, work):
    # the last test of the module: it stops the server
    s = server
    x = rand((2, 4))
    result = {}

    def one():
        cl = s.grpc_client()
        try:
            result["y"] = grpc_infer(cl, "small", {"x": x}).as_numpy("y")
            result["done"] = time.time()
        except Exception as e:  # noqa: BLE001
            result["error"] = str(e)
        cl.close()

    t = threading.Thread(target=one)
    t.start()
    time.sleep(0.5)   # the request waits in the batcher's queue (1.5 s delay)
    signalled = time.time()
    s.proc.send_signal(signal.SIGTERM)
    t.join(30)
    rc = s.stop()
    assert "error" not in result, result.get("error", "") + s.output()
    assert result["done"] > signalled   # it was in flight when the signal came
    np.testing.assert_array_equal(result["y"], work["context"].infer({"x": x})["y"])
    assert rc == 0, s.output()
