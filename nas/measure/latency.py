"""Inference latency of a model as deployed: fused, batch 1, static shape, at the deployment image size, on the
preset's backend (``nas.measure.backends``: ONNX Runtime on a CPU by default, TensorRT or PyTorch fp16 on CUDA).

Protocol: warm-up runs, then >= 20 timed runs on a CPU (>= 50 on CUDA); the median in ms and the inter-quartile
range are reported. The export happens outside the timing; the warm-up and the timed runs hold the host's latency
lock (``latency_lock``): one measurement at a time on a host, and trainings pause between batches meanwhile. A
measurement whose IQR / median exceeds ``max_spread`` is repeated (up to 3 times); the steadiest attempt is kept,
and still too spread it is recorded as ``noisy``.
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..settings import LatencySettings
from .backends import Runner, choose_backend, prepared
from .device import device_name
from .latency_lock import measuring

MIN_RUNS = {"cuda": 50, "cpu": 20}
MAX_REPEATS = 3


@dataclass(frozen=True)
class Latency:
    """A latency measurement and the conditions it was taken under (the fields after ``torch_version`` are newer
    than the first stored studies: their records lack them)."""

    median_ms: float
    iqr_ms: float
    runs: int
    warmup: int
    device: str
    device_name: str
    dtype: str
    threads: int
    imgsz: int
    torch_version: str
    backend: str = "torch"
    backend_version: str = ""
    provider: str = ""  # the execution provider that ran it (a CPU fallback of onnxruntime-gpu shows here)
    export_s: float | None = None  # ONNX export plus the runtime's model build; None for torch (nothing exported)
    attempts: int = 1  # measurements taken: more than one when the first were too spread
    noisy: bool = False  # IQR / median stayed above the preset's max_spread after every repeat
    wait_s: float = 0.0  # seconds waited for the host's latency lock (other measurements, running batches)

    def as_dict(self) -> dict:
        """Return the measurement as a JSON-ready dict."""
        return asdict(self)


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    """Return the first quartile, median and third quartile of ``samples`` (inclusive method)."""
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q2, q3


def _spread(q1: float, median: float, q3: float) -> float:
    """Return IQR / median (infinite for a zero median: never steady)."""
    return (q3 - q1) / median if median > 0 else float("inf")


def _timed(runner: Runner, warmup: int, runs: int, serialise: bool) -> tuple[list[float], float]:
    """Return the milliseconds of ``runs`` runs after ``warmup`` discarded ones, and the seconds waited for the
    host's latency lock (0.0 with ``serialise`` False)."""
    with measuring() if serialise else contextlib.nullcontext(0.0) as waited:
        for _ in range(warmup):
            runner.step()
        return [runner.step() for _ in range(runs)], waited


def measure_latency(
    model: nn.Module,
    imgsz: int,
    device: str | torch.device = "cpu",
    settings: LatencySettings | None = None,
    serialise: bool = True,
) -> Latency:
    """Return the batch-1 latency of the deployed ``model`` at ``imgsz`` x ``imgsz`` on ``device``.

    ``settings.backend`` picks the runtime (None: the device's default); ``settings.runs`` is raised to the minimum
    for the device (50 CUDA, 20 CPU); ``settings.threads`` fixes the CPU threads (torch's count is restored
    afterwards). ``serialise`` False skips the host's latency lock (to show what it prevents). ``model`` itself is
    left unchanged (a fused copy is measured).

    Raises:
        UserError: the backend's package is not installed, the backend cannot run on ``device``, or the cache
            folder cannot hold the latency lock.
        Exception: the candidate does not export or run on the backend (its own failure).
    """
    device = torch.device(device)
    settings = settings or LatencySettings()
    backend = choose_backend(settings.backend, device)
    runs = max(settings.runs, MIN_RUNS.get(device.type, 20))
    with prepared(model, imgsz, device, backend, settings) as runner:
        best: tuple[float, float, float] | None = None
        waited, attempts = 0.0, 0
        while attempts <= MAX_REPEATS:
            samples, wait = _timed(runner, settings.warmup, runs, serialise)
            attempts, waited = attempts + 1, waited + wait
            q1, med, q3 = quartiles(samples)
            if best is None or _spread(q1, med, q3) < _spread(*best):
                best = (q1, med, q3)
            if _spread(*best) <= settings.max_spread:
                break
    assert best is not None
    q1, med, q3 = best
    return Latency(
        median_ms=med,
        iqr_ms=q3 - q1,
        runs=runs,
        warmup=settings.warmup,
        device=str(device),
        device_name=device_name(device),
        dtype=runner.dtype,
        threads=runner.threads,
        imgsz=imgsz,
        torch_version=torch.__version__,
        backend=backend,
        backend_version=runner.version,
        provider=runner.provider,
        export_s=runner.export_s,
        attempts=attempts,
        noisy=_spread(q1, med, q3) > settings.max_spread,
        wait_s=waited,
    )
