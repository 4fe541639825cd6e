"""The runtimes latency is measured on, each behind one interface: ``prepared(...)`` yields a ``Runner`` whose
``step()`` runs the candidate once and returns its milliseconds.

- ``onnxruntime``: the ONNX export in ONNX Runtime, a fixed intra-op thread count, sequential execution (what
  Ultralytics' "CPU ONNX" column measures); the default on a CPU.
- ``torch``: the fused PyTorch model in eager mode (CUDA events on a GPU).
- ``tensorrt``: an engine built from the ONNX export (fp16 unless ``half: false``); the default on CUDA when the
  ``tensorrt`` package is importable, else ``torch`` in fp16, said once in the log.
- ``openvino``: the ONNX export compiled by OpenVINO for the CPU, if the package is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..settings import LATENCY_BACKENDS, LatencySettings
from .deploy_export import fused_copy, onnx_file

LOG = logging.getLogger(__name__)
PACKAGES = {"onnxruntime": "onnxruntime", "torch": "torch", "tensorrt": "tensorrt", "openvino": "openvino"}
TRT_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32,
              "INT64": torch.int64, "INT8": torch.int8, "BOOL": torch.bool}  # fmt: skip
_said: set[str] = set()


@dataclass
class Runner:
    """A candidate ready to run on one backend, and the conditions it runs under."""

    step: Callable[[], float]  # runs the candidate once; returns the milliseconds it took
    backend: str
    version: str
    provider: str  # the execution provider / device plugin that actually runs it
    dtype: str
    threads: int
    export_s: float | None  # seconds to export and build the runtime's model; None when nothing was exported


def available(backend: str) -> bool:
    """Return True when the package ``backend`` runs on can be imported here."""
    return importlib.util.find_spec(PACKAGES[backend]) is not None


def _version(package: str) -> str:
    """Return the installed version of ``package`` ('' if unknown)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        module = importlib.import_module(package)
        return str(getattr(module, "__version__", ""))


def choose_backend(name: str | None, device: torch.device) -> str:
    """Return the backend to measure on: ``name``, or the default for ``device`` (CPU: onnxruntime; CUDA: tensorrt
    when importable, else torch, logged once per process).

    Raises:
        UserError: an unknown backend, one whose package is not installed, or one that cannot run on ``device``.
    """
    if name is None:
        if device.type != "cuda":
            return "onnxruntime"
        if available("tensorrt"):
            return "tensorrt"
        if "tensorrt" not in _said:
            _said.add("tensorrt")
            LOG.warning("latency: tensorrt is not installed; measuring PyTorch fp16 on CUDA (pip install tensorrt)")
        return "torch"
    if name not in LATENCY_BACKENDS:
        raise UserError(f"unknown latency backend {name!r} (one of {', '.join(LATENCY_BACKENDS)})")
    if not available(name):
        raise UserError(f"latency backend {name} needs the {PACKAGES[name]} package: pip install {PACKAGES[name]}")
    if name == "tensorrt" and device.type != "cuda":
        raise UserError("latency backend tensorrt needs a CUDA device (--device cuda)")
    if name == "openvino" and device.type != "cpu":
        raise UserError("latency backend openvino measures on the CPU (--device cpu)")
    return name


def use_half(settings: LatencySettings, backend: str, device: torch.device) -> bool:
    """Return True when the measurement runs in fp16: on CUDA with torch or tensorrt, unless ``half: false``."""
    if device.type != "cuda" or backend not in ("torch", "tensorrt"):
        return False
    return settings.half is not False


def _cpu_threads(settings: LatencySettings) -> int:
    """Return the CPU thread count to measure with: the preset's, else torch's current setting."""
    return settings.threads or torch.get_num_threads()


def _wall_ms(run: Callable[[], object]) -> Callable[[], float]:
    """Return a step that calls ``run`` (synchronous) and returns its wall-clock milliseconds."""

    def step() -> float:
        t = time.perf_counter()
        run()
        return (time.perf_counter() - t) * 1e3

    return step


def _cuda_event_ms(run: Callable[[], object], stream: torch.cuda.Stream) -> Callable[[], float]:
    """Return a step that calls ``run`` (which enqueues work on ``stream``) between CUDA events; its milliseconds."""

    def step() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        run()
        end.record(stream)
        end.synchronize()
        return start.elapsed_time(end)

    return step


@contextlib.contextmanager
def _torch(model: nn.Module, imgsz: int, device: torch.device, settings: LatencySettings) -> Iterator[Runner]:
    half = use_half(settings, "torch", device)
    dtype = torch.float16 if half else torch.float32
    m = fused_copy(model).to(device).to(dtype)
    x = torch.rand(1, 3, imgsz, imgsz, device=device, dtype=dtype)
    old_threads, old_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if settings.threads and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    try:
        with torch.inference_mode():
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True
                step = _cuda_event_ms(lambda: m(x), torch.cuda.current_stream(device))
                provider = "cuda"
            else:
                step, provider = _wall_ms(lambda: m(x)), "cpu"
            yield Runner(step, "torch", torch.__version__, provider, str(dtype).removeprefix("torch."),
                         torch.get_num_threads(), None)  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)
        torch.backends.cudnn.benchmark = old_benchmark  # proxy training runs deterministic


@contextlib.contextmanager
def _onnxruntime(model: nn.Module, imgsz: int, device: torch.device, settings: LatencySettings) -> Iterator[Runner]:
    import numpy as np
    import onnxruntime as ort

    threads = _cpu_threads(settings)
    want = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    options = {"device_id": device.index or 0} if device.type == "cuda" else {}
    with onnx_file(model, imgsz) as (path, export_s):
        t = time.perf_counter()
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        session = ort.InferenceSession(str(path), so, providers=[(want, options)])
        export_s += time.perf_counter() - t
    ran = session.get_providers()[0]
    if ran != want:  # a mismatched onnxruntime-gpu build falls back to the CPU without a word
        raise UserError(
            f"onnxruntime runs on {ran}, not {want} (its providers: {', '.join(ort.get_available_providers())}); "
            f"pip install onnxruntime-gpu matching CUDA {torch.version.cuda}, or measure with latency.backend: torch"
        )
    feed = {"images": np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)}
    yield Runner(_wall_ms(lambda: session.run(None, feed)), "onnxruntime", ort.__version__, ran, "float32", threads,
                 export_s)  # fmt: skip


@contextlib.contextmanager
def _openvino(model: nn.Module, imgsz: int, device: torch.device, settings: LatencySettings) -> Iterator[Runner]:
    import numpy as np
    import openvino as ov

    threads = _cpu_threads(settings)
    with onnx_file(model, imgsz) as (path, export_s):
        t = time.perf_counter()
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        export_s += time.perf_counter() - t
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    yield Runner(_wall_ms(lambda: request.infer({0: x})), "openvino", _version("openvino"), "CPU", "float32",
                 threads, export_s)  # fmt: skip


def _trt_engine(path: Path, half: bool) -> Any:  # a tensorrt.ICudaEngine (the package is optional)
    """Return a TensorRT engine built from the ONNX file ``path`` (fp16 kernels allowed when ``half``).

    Raises:
        RuntimeError: the ONNX parser or the builder failed (their messages joined).
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    legacy = int(trt.__version__.split(".")[0]) < 10  # TensorRT 8.x needs explicit batch asked for
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if legacy else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse the export: {errors}")
    config = builder.create_builder_config()
    if half and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT could not build an engine for the export")
    return trt.Runtime(logger).deserialize_cuda_engine(serialized)


@contextlib.contextmanager
def _tensorrt(model: nn.Module, imgsz: int, device: torch.device, settings: LatencySettings) -> Iterator[Runner]:
    import tensorrt as trt

    half = use_half(settings, "tensorrt", device)
    with torch.cuda.device(device):
        with onnx_file(model, imgsz) as (path, export_s):
            t = time.perf_counter()
            engine = _trt_engine(path, half)
            export_s += time.perf_counter() - t
        context = engine.create_execution_context()
        buffers = []  # kept alive while the engine reads and writes them
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = TRT_DTYPES[engine.get_tensor_dtype(name).name]
            buffers.append(torch.rand(tuple(engine.get_tensor_shape(name)), device=device).to(dtype))
            context.set_tensor_address(name, buffers[-1].data_ptr())
        stream = torch.cuda.Stream(device)
        step = _cuda_event_ms(lambda: context.execute_async_v3(stream.cuda_stream), stream)
        yield Runner(step, "tensorrt", trt.__version__, "cuda", "float16" if half else "float32",
                     torch.get_num_threads(), export_s)  # fmt: skip


_BACKENDS = {"onnxruntime": _onnxruntime, "torch": _torch, "tensorrt": _tensorrt, "openvino": _openvino}


def prepared(
    model: nn.Module, imgsz: int, device: torch.device, backend: str, settings: LatencySettings
) -> contextlib.AbstractContextManager[Runner]:
    """Return a context yielding ``model`` ready to run on ``backend`` at batch 1, ``imgsz`` x ``imgsz``, on
    ``device`` (exports go to a temporary file removed before the block is entered; torch's thread count and cuDNN
    settings are restored on exit).

    Raises:
        UserError: onnxruntime cannot run on the asked device (a CPU-only build for CUDA).
        Exception: the candidate does not export or build on the backend (its own failure).
    """
    return _BACKENDS[backend](model, imgsz, device, settings)
