"""kiln: an open inference optimizer with TensorRT's Python API.

``import kiln as trt`` runs TensorRT 8/10 style scripts: Logger, Builder, OnnxParser,
IBuilderConfig, optimization profiles, build_serialized_network, Runtime, ICudaEngine,
IExecutionContext. kiln's own additions: ``context.infer({name: array})`` and ``kiln.build()``.
See python/README.md for what is bound and what is not.
"""
from __future__ import annotations

import enum
import os
import warnings

from . import _kiln
from ._kiln import (  # noqa: F401  (re-exported)
    Backend,
    Builder,
    BuilderFlag,
    DataType,
    ICudaEngine,
    IBuilderConfig,
    IExecutionContext,
    ImageCalibrator,
    IHostMemory,
    IInt8Calibrator,
    ILogger,
    INetworkDefinition,
    IOptimizationProfile,
    IOutputAllocator,
    IProfiler,
    IProgressMonitor,
    ITensor,
    ITimingCache,
    Logger,
    MemoryPoolType,
    NetworkDefinitionCreationFlag,
    OnnxParser,
    ParserError,
    Profiler,
    Runtime,
    TacticSource,
    TensorFileCalibrator,
    TensorIOMode,
)

__version__ = _kiln.__version__


class KilnError(RuntimeError):
    """A build or load through kiln's Python helpers failed; the message has the logged errors."""


def nptype(dtype: DataType):
    """The numpy type of a DataType (numpy.float32 for DataType.FLOAT, ...), as trt.nptype."""
    import numpy as np

    table = {
        DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.DOUBLE: np.float64,
        DataType.INT8: np.int8, DataType.INT16: np.int16, DataType.INT32: np.int32, DataType.INT64: np.int64,
        DataType.UINT8: np.uint8, DataType.UINT16: np.uint16, DataType.UINT32: np.uint32,
        DataType.UINT64: np.uint64, DataType.BOOL: np.bool_,
    }
    if dtype in table:
        return table[dtype]
    if dtype == DataType.BF16:
        try:
            import ml_dtypes
        except ImportError as e:
            raise TypeError("DataType.BF16 has no numpy type without the ml_dtypes package") from e
        return ml_dtypes.bfloat16
    raise TypeError(f"no numpy type for {dtype!r}")


def volume(shape) -> int:
    """The number of elements of a shape (trt.volume)."""
    n = 1
    for d in shape:
        n *= d
    return n


def init_libnvinfer_plugins(logger=None, namespace: str = "") -> bool:
    """No-op, for scripts that call it: kiln has no plugin library, its operators are built in."""
    return True


def get_plugin_registry():
    raise NotImplementedError("kiln has no plugin registry: plugins (IPluginV2/V3) are not supported")


class CalibrationAlgoType(enum.IntEnum):
    LEGACY_CALIBRATION = 0
    ENTROPY_CALIBRATION = 1
    ENTROPY_CALIBRATION_2 = 2
    MINMAX_CALIBRATION = 3
    PERCENTILE_CALIBRATION = 100  # kiln's own: the get_quantile() percentile of |x| (99.99)
    MSE_CALIBRATION = 101  # kiln's own: the threshold of least mean squared quantization error


class IInt8LegacyCalibrator(IInt8Calibrator):
    """Calibrator interface of TensorRT's legacy (percentile + regression) algorithm."""

    def get_algorithm(self):
        return CalibrationAlgoType.LEGACY_CALIBRATION

    def get_quantile(self):
        return 0.9999

    def get_regression_cutoff(self):
        return 1.0


class IInt8EntropyCalibrator(IInt8Calibrator):
    """Calibrator interface of the entropy (KL divergence) algorithm."""

    def get_algorithm(self):
        return CalibrationAlgoType.ENTROPY_CALIBRATION


class IInt8EntropyCalibrator2(IInt8Calibrator):
    """Calibrator interface of the entropy algorithm, version 2 (TensorRT's recommended one)."""

    def get_algorithm(self):
        return CalibrationAlgoType.ENTROPY_CALIBRATION_2


class IInt8MinMaxCalibrator(IInt8Calibrator):
    """Calibrator interface of the min-max algorithm."""

    def get_algorithm(self):
        return CalibrationAlgoType.MINMAX_CALIBRATION


class _CollectingLogger(ILogger):
    """Forwards to another logger and keeps the errors, for the helpers' exceptions."""

    def __init__(self, forward):
        ILogger.__init__(self)
        self.forward = forward
        self.errors = []

    def log(self, severity, msg):
        if severity <= ILogger.Severity.ERROR:
            self.errors.append(msg)
        self.forward.log(severity, msg)


def _profile_entries(profile: dict):
    for name, value in profile.items():
        value = tuple(tuple(v) if not isinstance(v, int) else v for v in value)
        if value and all(isinstance(v, tuple) for v in value):
            if len(value) != 3:
                raise ValueError(f"profile entry '{name}': expected (min, opt, max) shapes or one shape, got {value}")
            yield name, value
        else:
            yield name, (value, value, value)


def build(onnx, *, fp16: bool = False, bf16: bool = False, tf32: bool = True, strict: bool = False,
          profiles=None, workspace: int | None = None, backend: Backend | str | None = None,
          optimization_level: int | None = None, int8: bool = False, calibrator=None,
          logger: ILogger | None = None) -> ICudaEngine:
    """Parses an ONNX model (a path or its bytes), builds and loads the engine, in one call.

    profiles: a dict {input name: (min, opt, max)} or {input name: shape} (min = opt = max), or a
    list of such dicts (one optimization profile each). workspace: bytes of MemoryPoolType.WORKSPACE.
    backend: Backend.CPU/CUDA/AUTO or 'cpu'/'cuda'/'auto'. int8=True (implied by calibrator=, an
    IInt8Calibrator subclass) builds INT8 as `kiln --int8` does: the calibrator's batches give the
    scales (a model with Q/DQ nodes needs none); CPU engines simulate INT8, CUDA engines compute in
    float for now. Raises KilnError with the logged errors on failure, and what a Python calibrator
    raised.
    """
    log = _CollectingLogger(logger if logger is not None else Logger(Logger.WARNING))
    builder = Builder(log)
    network = builder.create_network()
    parser = OnnxParser(network, log)
    if isinstance(onnx, (str, os.PathLike)):
        ok = parser.parse_from_file(os.fspath(onnx))
    else:
        ok = parser.parse(onnx)
    if not ok:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise KilnError("kiln.build: the ONNX model could not be parsed: " + "; ".join(errors or log.errors))
    config = builder.create_builder_config()
    with warnings.catch_warnings():  # fp16=/bf16= are kiln's own arguments, not TensorRT's deprecated flags
        warnings.simplefilter("ignore", DeprecationWarning)
        for on, flag in ((fp16, BuilderFlag.FP16), (bf16, BuilderFlag.BF16), (int8 or calibrator is not None, BuilderFlag.INT8),
                         (strict, BuilderFlag.OBEY_PRECISION_CONSTRAINTS)):
            if on:
                config.set_flag(flag)
    if calibrator is not None:
        config.int8_calibrator = calibrator
    if not tf32:
        config.clear_flag(BuilderFlag.TF32)
    if workspace is not None:
        config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, workspace)
    if isinstance(backend, str):
        backend = {"auto": Backend.AUTO, "cpu": Backend.CPU, "cuda": Backend.CUDA}[backend.lower()]
    if backend is not None:
        config.backend = backend
    if optimization_level is not None:
        config.builder_optimization_level = optimization_level
    if isinstance(profiles, dict):
        profiles = [profiles]
    for i, p in enumerate(profiles or []):
        profile = builder.create_optimization_profile()
        for name, (mn, opt, mx) in _profile_entries(p):
            profile.set_shape(name, mn, opt, mx)
        if config.add_optimization_profile(profile) < 0:
            raise ValueError(f"kiln.build: optimization profile {i} is invalid")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise KilnError("kiln.build: the build failed: " + "; ".join(log.errors or ["no reason was logged"]))
    engine = Runtime(log).deserialize_cuda_engine(plan)
    if engine is None:
        raise KilnError("kiln.build: the built engine could not be loaded: " + "; ".join(log.errors))
    return engine


def load(engine, logger: ILogger | None = None) -> ICudaEngine:
    """Loads a serialized engine from a path or bytes; raises KilnError (with the reason) if invalid."""
    log = _CollectingLogger(logger if logger is not None else Logger(Logger.WARNING))
    if isinstance(engine, (str, os.PathLike)):
        with open(engine, "rb") as f:
            engine = f.read()
    e = Runtime(log).deserialize_cuda_engine(engine)
    if e is None:
        raise KilnError("kiln.load: " + "; ".join(log.errors or ["not a valid engine"]))
    return e
