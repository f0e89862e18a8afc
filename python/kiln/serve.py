"""`kiln serve` / `python -m kiln.serve`: kiln engines behind Triton Inference Server (PyTriton).

Each model (a kiln engine, or an ONNX model built on start) becomes a Triton model: its inputs and
outputs are the engine's I/O tensors (names, dtypes, -1 for dynamic dims), max_batch_size comes
from the optimization profile (dim 0 dynamic in every I/O tensor, profile min batch 1), requests
are merged by Triton's dynamic batcher (--max-queue-delay-us), served by N instances (one
ExecutionContext each, on its own thread), over HTTP and gRPC (KServe v2: tritonclient works
unchanged). Triton itself answers requests with a wrong dtype/shape (400, naming the input) and
rejects requests beyond --max-queue-size (back-pressure); SIGINT/SIGTERM stop it after in-flight
requests finish (up to --exit-timeout s). Needs the packages of scripts/serve-lock.txt
(build/serve-env); the placement helpers (`placement`, `parse_devices`) need nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import signal
import sys
import threading
import time

ENGINE_SUFFIXES = (".engine", ".plan", ".kiln")
REPO_FILES = ("model.plan", "model.engine", "model.onnx")  # what a version folder holds (Triton's names)


class ServeError(Exception):
    """A model or option that cannot be served; the message says which and why."""


class InvalidInput(Exception):
    """A request kiln refuses (a shape outside the profile that Triton cannot check: dynamic dims
    besides the batch): answered as Triton's INVALID_ARG (HTTP 400), naming the input."""


InvalidInput.__module__ = "kiln.serve"   # the same name under `python -m kiln.serve` (see _FIXES)


# ---------------------------------------------------------------- placement (no GPU needed)

def parse_devices(text: str | None) -> list[int] | None:
    """'0,1,3' -> [0, 1, 3]; None/'' -> None (the engine's backend decides: CPU, or CUDA device 0)."""
    if text is None or text.strip() == "":
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ServeError(f"--devices={text}: '{part}' is not a device index (a list like 0,1,3)")
        d = int(part)
        if d in out:
            raise ServeError(f"--devices={text}: device {d} is listed twice")
        out.append(d)
    return out


def placement(instances_per_device: int, devices: list[int] | None, device_count: int | None = None) -> list[int | None]:
    """The device of each model instance: `instances_per_device` on each listed device, interleaved
    (0,1,0,1 for two devices, two each) so that Triton's first idle instances spread over the GPUs.
    devices None: all instances on the current device (None: CPU engines, or CUDA device 0).
    device_count: the devices present (checked when given)."""
    if instances_per_device < 1:
        raise ServeError(f"--instances={instances_per_device}: at least 1 instance per device")
    if devices is None:
        return [None] * instances_per_device
    if not devices:
        raise ServeError("--devices: the list is empty")
    if device_count is not None:
        bad = [d for d in devices if d >= device_count]
        if bad:
            raise ServeError(f"--devices: no CUDA device {bad[0]} on this machine ({device_count} found)")
    return [d for _ in range(instances_per_device) for d in devices]


# ---------------------------------------------------------------- model specs

@dataclasses.dataclass
class ModelSpec:
    name: str
    path: str                     # .onnx or an engine file
    version: int = 1
    instances: int = 1            # per device
    max_queue_delay_us: int = 100
    max_queue_size: int = 0       # 0: unbounded (Triton's default)
    max_batch_size: int | None = None   # ONNX with a dynamic dim 0 and no profile: profile (1, B, B)
    profile: dict | None = None   # {input: (min, opt, max)} for ONNX models
    fp16: bool = False
    devices: list[int] | None = None


def parse_profile(text: str) -> dict:
    """'x:1x4,8x4,32x4;y:...' -> {'x': ((1,4),(8,4),(32,4))} (min,opt,max; one shape = fixed)."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        name, sep, shapes = item.rpartition(":")
        if not sep or not name:
            raise ServeError(f"--profile '{item}': expected name:MINxDIMS,OPTxDIMS,MAXxDIMS")
        try:
            dims = [tuple(int(d) for d in s.split("x")) for s in shapes.split(",")]
        except ValueError:
            raise ServeError(f"--profile '{item}': shapes are like 1x3x224x224") from None
        if len(dims) == 1:
            dims = dims * 3
        if len(dims) != 3:
            raise ServeError(f"--profile '{item}': one shape or three (min,opt,max)")
        out[name] = tuple(dims)
    return out


def _latest_version(model_dir: pathlib.Path) -> tuple[int, pathlib.Path]:
    versions = sorted((int(p.name), p) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        raise ServeError(f"{model_dir}: no numeric version folder (1/, 2/, ...)")
    v, d = versions[-1]
    files = [d / f for f in REPO_FILES if (d / f).is_file()]
    if len(files) != 1:
        raise ServeError(f"{d}: expected exactly one of {', '.join(REPO_FILES)}, found {len(files)}")
    return v, files[0]


def repository_specs(repo: str) -> list[ModelSpec]:
    """A Triton-style model repository: repo/<model>/<version>/model.{plan,engine,onnx}, plus an
    optional repo/<model>/kiln.json with ModelSpec's fields (instances, max_queue_delay_us,
    max_queue_size, max_batch_size, profile {name: [min,opt,max]}, fp16, devices [..]). The highest
    version is served (Triton's default version policy, latest 1). Triton's config.pbtxt is not
    read: a model folder that has one is refused, rather than its settings silently ignored."""
    root = pathlib.Path(repo)
    if not root.is_dir():
        raise ServeError(f"--model-repository={repo}: not a directory")
    specs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if (d / "config.pbtxt").exists():
            raise ServeError(f"{d}/config.pbtxt: kiln serve does not read Triton's config.pbtxt; "
                             "put its settings into kiln.json (see python/kiln/serve.py)")
        version, path = _latest_version(d)
        spec = ModelSpec(name=d.name, path=str(path), version=version)
        cfg = d / "kiln.json"
        if cfg.exists():
            try:
                data = json.loads(cfg.read_text())
            except json.JSONDecodeError as e:
                raise ServeError(f"{cfg}: not valid JSON ({e})") from None
            fields = {f.name for f in dataclasses.fields(ModelSpec)} - {"name", "path", "version"}
            unknown = set(data) - fields
            if unknown:
                raise ServeError(f"{cfg}: unknown key(s) {sorted(unknown)} (known: {sorted(fields)})")
            if "profile" in data:
                data["profile"] = {k: tuple(tuple(s) for s in v) for k, v in data["profile"].items()}
            spec = dataclasses.replace(spec, **data)
        specs.append(spec)
    if not specs:
        raise ServeError(f"--model-repository={repo}: no model folders")
    return specs


# ---------------------------------------------------------------- engines -> Triton models

def _cuda_device_count() -> int:
    from . import _kiln
    return _kiln._cuda_device_count()


def _set_device(device):
    if device is not None:
        from . import _kiln
        _kiln._cuda_set_device(device)


def load_engine(spec: ModelSpec, backend: str, log):
    """The engine of a spec: an engine file loaded, or the ONNX model built (kiln.build)."""
    import kiln
    if not os.path.isfile(spec.path):
        raise ServeError(f"model '{spec.name}': {spec.path}: no such file")
    if not spec.path.endswith(".onnx"):
        return kiln.load(spec.path)
    profile = spec.profile
    if profile is None:
        profile = _default_profile(spec, log)
    t0 = time.perf_counter()
    engine = kiln.build(spec.path, fp16=spec.fp16, profiles=profile or None, backend=backend)
    log(f"model '{spec.name}': built {spec.path} in {time.perf_counter() - t0:.2f} s")
    return engine


def _default_profile(spec: ModelSpec, log) -> dict:
    """ONNX inputs whose only dynamic dim is dim 0 get (1, B, B) with B = max_batch_size; other
    dynamic dims need --profile."""
    import kiln
    logger = kiln.Logger(kiln.Logger.ERROR)
    network = kiln.Builder(logger).create_network()
    if not kiln.OnnxParser(network, logger).parse_from_file(spec.path):
        return {}  # kiln.build reports the parse errors
    out = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(t.shape)
        if all(d >= 0 for d in shape):
            continue
        if any(d < 0 for d in shape[1:]):
            raise ServeError(f"model '{spec.name}': input '{t.name}' {list(shape)} has dynamic dims "
                             "beyond the batch dim: give --profile")
        if spec.max_batch_size is None:
            raise ServeError(f"model '{spec.name}': input '{t.name}' has a dynamic batch dim: give "
                             "--max-batch-size (profile 1..B) or --profile")
        b = spec.max_batch_size
        out[t.name] = ((1,) + shape[1:], (b,) + shape[1:], (b,) + shape[1:])
    if out:
        log(f"model '{spec.name}': profile {out}")
    return out


@dataclasses.dataclass
class TensorInfo:
    name: str
    dtype: object      # numpy type
    shape: tuple       # without the batch dim when batching


@dataclasses.dataclass
class ModelIO:
    inputs: list
    outputs: list
    max_batch_size: int   # 0: no batching (Triton's convention)


def model_io(engine, name: str) -> ModelIO:
    """Triton's view of an engine: batching when dim 0 is dynamic in every I/O tensor and each
    input's profile allows batch 1; max_batch_size is the smallest profile max of dim 0."""
    import kiln
    ins, outs, max_b, batching = [], [], None, True
    tensors = []
    for i in range(engine.num_io_tensors):
        n = engine.get_tensor_name(i)
        dt = engine.get_tensor_dtype(n)
        try:
            np_t = kiln.nptype(dt)
        except TypeError as e:
            raise ServeError(f"model '{name}': tensor '{n}' is {dt}, which Triton/numpy cannot carry ({e})") from None
        shape = tuple(engine.get_tensor_shape(n))
        is_in = engine.get_tensor_mode(n) == kiln.TensorIOMode.INPUT
        tensors.append((n, np_t, shape, is_in))
        if not shape or shape[0] != -1:
            batching = False
        if is_in and batching:
            mn, _, mx = engine.get_tensor_profile_shape(n, 0)
            if mn[0] != 1:
                batching = False
            max_b = mx[0] if max_b is None else min(max_b, mx[0])
    if batching and max_b is None:
        batching = False
    for n, np_t, shape, is_in in tensors:
        t = TensorInfo(n, np_t, shape[1:] if batching else shape)
        (ins if is_in else outs).append(t)
    return ModelIO(ins, outs, max_b if batching else 0)


def make_infer_func(context, io: ModelIO, device, lock=None):
    """A PyTriton inference callable over one ExecutionContext (one instance). Requests arrive
    merged along dim 0 (pytriton.decorators.batch); outputs are split back per request."""
    import numpy as np
    from pytriton.decorators import batch
    state = threading.local()
    in_names = [t.name for t in io.inputs]

    def run(**inputs):
        if device is not None and not getattr(state, "device_set", False):
            _set_device(device)   # the CUDA engine's device, for this instance's thread
            state.device_set = True
        feed = {n: np.ascontiguousarray(inputs[n]) for n in in_names}
        try:
            return context.infer(feed)
        except (ValueError, TypeError) as e:   # kiln names the tensor
            raise InvalidInput(str(e)) from None

    return batch(run) if io.max_batch_size > 0 else _unbatched(run)


def _unbatched(run):
    def infer(requests):
        return [run(**{k: v for k, v in r.items()}) for r in requests]
    return infer


@dataclasses.dataclass
class Served:
    spec: ModelSpec
    io: ModelIO
    engines: dict          # device -> engine (one engine loaded per device)
    contexts: list         # one per instance
    devices: list


def prepare(spec: ModelSpec, backend: str, log) -> Served:
    """Loads/builds the model (once per device) and makes one ExecutionContext per instance."""
    devices = spec.devices
    count = None
    if devices is not None:
        count = _cuda_device_count()
        if count == 0:
            raise ServeError(f"model '{spec.name}': --devices={','.join(map(str, devices))} needs CUDA "
                             "devices; this machine has none (or kiln was built without CUDA)")
    places = placement(spec.instances, devices, count)
    engines = {}
    for d in dict.fromkeys(places):
        _set_device(d)
        engines[d] = load_engine(spec, backend, log)
        if d is not None and str(engines[d].backend).lower().endswith("cpu"):
            raise ServeError(f"model '{spec.name}': --devices given but the engine is a CPU engine")
    io = model_io(next(iter(engines.values())), spec.name)
    contexts = []
    for d in places:
        _set_device(d)
        contexts.append(engines[d].create_execution_context())
    log(f"model '{spec.name}' v{spec.version}: {len(contexts)} instance(s) on "
        f"{'CPU/current device' if devices is None else 'CUDA ' + ','.join(map(str, places))}, "
        f"max_batch_size {io.max_batch_size}, inputs "
        + ", ".join(f"{t.name} {t.dtype.__name__} {list(t.shape)}" for t in io.inputs) + ", outputs "
        + ", ".join(f"{t.name} {t.dtype.__name__} {list(t.shape)}" for t in io.outputs))
    return Served(spec, io, engines, contexts, places)


def _python_libdir_env():
    """The Python backend stub PyTriton starts links libpython3.x.so; point it at this
    interpreter's (a different patch release's libpython from the system would be picked else)."""
    import sysconfig
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and os.path.isdir(libdir):
        cur = os.environ.get("LD_LIBRARY_PATH", "")
        if libdir not in cur.split(":"):
            os.environ["LD_LIBRARY_PATH"] = libdir + (":" + cur if cur else "")


_FIXES = {}  # proxy file of pytriton 0.7.0 -> ((text, replacement), ...); see _patch_pytriton
_FIXES["communication.py"] = (
    ("def get_config_from_handshake_server(socket_path: pathlib.Path, timeout_s: float = 1.0)",
     "def get_config_from_handshake_server(socket_path: pathlib.Path, timeout_s: float = 60.0)"),
    ("        sock.connect(socket_path.as_posix())\n",
     "        while True:  # kiln serve: the socket file exists before its server listens\n"
     "            try:\n"
     "                sock.connect(socket_path.as_posix())\n"
     "                break\n"
     "            except ConnectionRefusedError:\n"
     "                if time.time() >= should_stop_before_s:\n"
     "                    raise\n"
     "                time.sleep(0.01)\n"),
)
_FIXES["model.py"] = ((
    "                    triton_responses_or_error = pb_utils.TritonModelException(  # pytype: disable=module-attr\n"
    "                        responses_payload.decode(\"utf-8\")\n"
    "                    )\n",
    "                    _text = responses_payload.decode(\"utf-8\")\n"
    "                    _marker = \"kiln.serve.InvalidInput: \"  # kiln serve: a bad request is INVALID_ARG (400)\n"
    "                    if _marker in _text:\n"
    "                        _err = pb_utils.TritonError(_text.rsplit(_marker, 1)[1].strip(), pb_utils.TritonError.INVALID_ARG)\n"
    "                        triton_responses_or_error = [pb_utils.InferenceResponse(error=_err) for _ in triton_requests]\n"
    "                    else:\n"
    "                        triton_responses_or_error = pb_utils.TritonModelException(_text)\n"),
)


def _patch_pytriton():
    """Two fixes to the Python backend code of PyTriton 0.7.0. The Triton stubs run copies of
    pytriton/proxy/*.py that PyTriton sends to Triton with each model's load request
    (Model.get_proxy_model_files); the copies are patched, not the installed package:
    - communication.py: with several instances, instance 0's stub makes a Unix socket for the
      others to read the config from; they connect as soon as the file exists (before it listens:
      ConnectionRefusedError) and give up after 1 s (a loaded machine needs more), and the model
      then fails to load now and then. Retried for up to 60 s.
    - model.py: an exception of the inference callable becomes a TritonModelException (HTTP 500,
      with the Python traceback); kiln's InvalidInput becomes Triton's INVALID_ARG (HTTP 400) with
      kiln's message, which names the input.
    Refuses to start if a text is not found (another PyTriton than scripts/serve-lock.txt's)."""
    from pytriton.models import model as pt_model
    if getattr(pt_model.Model.get_proxy_model_files, "_kiln_patched", False):
        return
    original = pt_model.Model.get_proxy_model_files

    def get_proxy_model_files(self):
        files = original(self)
        for name, fixes in _FIXES.items():
            keys = [k for k in files if k.endswith("/" + name)]
            if len(keys) != 1:
                raise ServeError(f"PyTriton's model files have no {name}: this PyTriton differs from 0.7.0")
            text = files[keys[0]].decode()
            for old, new in fixes:
                if text.count(old) != 1:
                    raise ServeError(f"PyTriton's {name} differs from 0.7.0's (scripts/serve-lock.txt): "
                                     "kiln serve's fixes to it do not apply")
                text = text.replace(old, new, 1)
            files[keys[0]] = text.encode()
        return files

    get_proxy_model_files._kiln_patched = True
    pt_model.Model.get_proxy_model_files = get_proxy_model_files


def bind(triton, served: Served):
    import numpy as np  # noqa: F401
    from pytriton.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor
    s, io = served.spec, served.io
    funcs = [make_infer_func(c, io, d) for c, d in zip(served.contexts, served.devices)]
    policy = QueuePolicy(max_queue_size=s.max_queue_size) if s.max_queue_size > 0 else None
    batching = io.max_batch_size > 0
    config = ModelConfig(batching=batching, max_batch_size=io.max_batch_size if batching else 0,
                         batcher=DynamicBatcher(max_queue_delay_microseconds=s.max_queue_delay_us,
                                                default_queue_policy=policy))
    triton.bind(model_name=s.name, model_version=s.version, infer_func=funcs,
                inputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.shape) for t in io.inputs],
                outputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.shape) for t in io.outputs],
                config=config, strict=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="kiln serve", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help="engine files (.engine/.plan) or ONNX models (.onnx, built on start)")
    p.add_argument("--model-repository", help="a Triton-style repository: <model>/<version>/model.{plan,engine,onnx} (+ kiln.json)")
    p.add_argument("--name", action="append", default=[], help="model name (one per model; default: the file's stem)")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--instances", type=int, default=1, help="instances (execution contexts) per device")
    p.add_argument("--devices", help="CUDA devices, e.g. 0,1: --instances on each (one engine loaded per device)")
    p.add_argument("--max-queue-delay-us", type=int, default=100, help="dynamic batching: how long a request may wait for others")
    p.add_argument("--max-queue-size", type=int, default=0, help="requests queued beyond this are rejected (0: unbounded)")
    p.add_argument("--max-batch-size", type=int, help="ONNX models with a dynamic batch dim: profile 1..B")
    p.add_argument("--profile", help="ONNX models: name:MIN,OPT,MAX shapes (1x4,8x4,32x4); several separated by ;")
    p.add_argument("--fp16", action="store_true", help="ONNX models: build with FP16")
    p.add_argument("--backend", default=os.environ.get("KILN_BACKEND", "auto"), choices=["auto", "cpu", "cuda"],
                   help="ONNX models: the engine's backend")
    p.add_argument("--exit-timeout", type=int, default=30, help="seconds to wait for in-flight requests on shutdown")
    p.add_argument("--access-token", default=os.environ.get("KILN_SERVE_ACCESS_TOKEN"),
                   help="token for the restricted endpoints (model-repository, shared-memory); random if not given")
    p.add_argument("--verbose", action="store_true", help="Triton's verbose log")
    return p.parse_args(argv)


def specs_from_args(a) -> list[ModelSpec]:
    if bool(a.models) == bool(a.model_repository):
        raise ServeError("give model files or --model-repository (one of the two)")
    devices = parse_devices(a.devices)
    common = dict(instances=a.instances, max_queue_delay_us=a.max_queue_delay_us, max_queue_size=a.max_queue_size,
                  max_batch_size=a.max_batch_size, profile=parse_profile(a.profile) if a.profile else None,
                  fp16=a.fp16, devices=devices)
    if a.model_repository:
        given = [k for k, v in (("--name", a.name), ("--profile", a.profile), ("--max-batch-size", a.max_batch_size),
                                ("--fp16", a.fp16)) if v]
        if given:
            raise ServeError(f"{', '.join(given)}: per-model settings of a repository go into its kiln.json")
        specs = repository_specs(a.model_repository)
        return [dataclasses.replace(s, **{k: v for k, v in common.items()
                                          if k in ("max_queue_delay_us", "max_queue_size", "instances", "devices")
                                          and getattr(s, k) == getattr(ModelSpec, k, None)}) for s in specs]
    if a.name and len(a.name) != len(a.models):
        raise ServeError(f"--name given {len(a.name)} time(s) for {len(a.models)} model(s)")
    names = a.name or [pathlib.Path(m).stem for m in a.models]
    if len(set(names)) != len(names):
        raise ServeError(f"model names {names} repeat: give --name for each")
    for m in a.models:
        if not (m.endswith(".onnx") or m.endswith(ENGINE_SUFFIXES)):
            raise ServeError(f"{m}: expected an engine (.engine/.plan/.kiln) or an ONNX model (.onnx)")
    return [ModelSpec(name=n, path=m, **common) for n, m in zip(names, a.models)]


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)

    def log(msg):
        print(f"kiln serve: {msg}", file=sys.stderr, flush=True)

    try:
        specs = specs_from_args(a)
        served = [prepare(s, a.backend, log) for s in specs]   # engines load before the server starts
    except ServeError as e:
        log(f"error: {e}")
        return 2
    except Exception as e:  # kiln.KilnError, OSError: one clear line
        log(f"error: {type(e).__name__}: {e}")
        return 2
    _python_libdir_env()
    try:
        from pytriton.triton import Triton, TritonConfig
    except ImportError as e:
        log(f"error: PyTriton is not installed ({e}); scripts/setup.sh makes build/serve-env with it")
        return 2
    _patch_pytriton()
    config = TritonConfig(http_port=a.http_port, grpc_port=a.grpc_port, metrics_port=a.metrics_port,
                          exit_timeout_secs=a.exit_timeout, log_verbose=1 if a.verbose else 0)
    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"signal {signum}: draining in-flight requests (up to {a.exit_timeout} s), then exiting")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # PyTriton restricts some endpoints to holders of a token (random unless given): the model
    # repository API (which could unload its models) and shared memory stay restricted;
    # statistics are read-only and open, as in Triton's own default.
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, TritonSecurityConfig
    security = TritonSecurityConfig(access_token=a.access_token or None,
                                    restricted_endpoints=[e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    with Triton(config=config, security_config=security) as triton:
        try:
            for s in served:
                bind(triton, s)
            triton.run()   # returns once every model is loaded: the server is ready
        except Exception as e:  # a model Triton could not load, a port in use: one clear line
            log(f"error: the server did not start: {type(e).__name__}: {e}")
            return 1
        log(f"ready: HTTP :{a.http_port}, gRPC :{a.grpc_port}, metrics :{a.metrics_port}; "
            f"models {', '.join(s.spec.name for s in served)}")
        while not stop.is_set() and triton.is_alive():
            stop.wait(0.5)
        if not stop.is_set():
            log("error: Triton Inference Server exited")
            return 1
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
