"""Inference latency of a model: eval mode, fused, batch 1, at the deployment image size, on the trial's device.

CUDA: cudnn.benchmark, warm-up, CUDA events around each run, >= 50 timed runs, optional fp16.
CPU: a fixed thread count, warm-up, >= 20 timed runs with ``perf_counter``.
Reported: the median in ms and the inter-quartile range, with the device, dtype, threads and torch version.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..settings import LatencySettings
from .device import device_name

MIN_RUNS = {"cuda": 50, "cpu": 20}


@dataclass(frozen=True)
class Latency:
    """A latency measurement and the conditions it was taken under."""

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

    def as_dict(self) -> dict:
        """Return the measurement as a JSON-ready dict."""
        return asdict(self)


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    """Return the first quartile, median and third quartile of ``samples`` (inclusive method)."""
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q2, q3


def measure_latency(
    model: nn.Module, imgsz: int, device: str | torch.device = "cpu", settings: LatencySettings | None = None
) -> Latency:
    """Return the batch-1 latency of a fused copy of ``model`` at ``imgsz`` x ``imgsz`` on ``device``.

    ``settings.runs`` is raised to the minimum for the device (50 CUDA, 20 CPU); ``settings.half`` applies on CUDA
    only; ``settings.threads`` sets torch's CPU threads for the measurement (restored afterwards).
    """
    device = torch.device(device)
    settings = settings or LatencySettings()
    runs = max(settings.runs, MIN_RUNS.get(device.type, 20))
    warmup, threads, half = settings.warmup, settings.threads, settings.half
    m = copy.deepcopy(model)
    if hasattr(m, "fuse"):
        m = m.fuse(verbose=False) if "verbose" in m.fuse.__code__.co_varnames else m.fuse()
    m = m.to(device).eval()
    dtype = torch.float16 if half and device.type == "cuda" else torch.float32
    m = m.to(dtype)
    x = torch.rand(1, 3, imgsz, imgsz, device=device, dtype=dtype)
    old_threads, old_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if threads and device.type == "cpu":
        torch.set_num_threads(threads)
    samples: list[float] = []
    try:
        with torch.inference_mode():
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True
                for _ in range(warmup):
                    m(x)
                torch.cuda.synchronize(device)
                for _ in range(runs):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    m(x)
                    end.record()
                    end.synchronize()
                    samples.append(start.elapsed_time(end))
            else:
                for _ in range(warmup):
                    m(x)
                for _ in range(runs):
                    t = time.perf_counter()
                    m(x)
                    samples.append((time.perf_counter() - t) * 1e3)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
        torch.backends.cudnn.benchmark = old_benchmark  # proxy training runs deterministic
    q1, med, q3 = quartiles(samples)
    return Latency(
        median_ms=med,
        iqr_ms=q3 - q1,
        runs=runs,
        warmup=warmup,
        device=str(device),
        device_name=device_name(device),
        dtype=str(dtype).removeprefix("torch."),
        threads=used_threads,
        imgsz=imgsz,
        torch_version=torch.__version__,
    )
