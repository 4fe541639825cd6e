"""What a preset sets, as typed values with their defaults: the proxy schedule, the latency protocol, constraints.

Pure data: ``nas.config`` validates a preset into these, ``nas.measure`` reads them. Nothing here runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# Ultralytics train arguments a preset's `train:` section may set (anything else is rejected at load)
TRAIN_ARGS = MappingProxyType(
    {
        "epochs": int,
        "imgsz": int,
        "batch": int,
        "fraction": float,
        "warmup_epochs": float,
        "optimizer": str,
        "lr0": float,
        "lrf": float,
        "momentum": float,
        "weight_decay": float,
        "cos_lr": bool,
        "close_mosaic": int,
        "mosaic": float,
        "mixup": float,
        "fliplr": float,
        "flipud": float,
        "degrees": float,
        "translate": float,
        "scale": float,
        "hsv_h": float,
        "hsv_s": float,
        "hsv_v": float,
        "workers": int,
        "amp": bool,
        "cache": bool,
        "box": float,
        "cls": float,
        "dfl": float,
        "nbs": int,
        "rect": bool,
        "multi_scale": float,
        "patience": int,
    }
)
OPTIMIZERS = ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp", "MuSGD", "auto")
DEFAULT_SCHEDULE = MappingProxyType(
    {
        "epochs": 6,
        "imgsz": 128,
        "batch": 16,
        "nbs": 16,
        "optimizer": "AdamW",
        "lr0": 0.003,
        "lrf": 0.1,
        "warmup_epochs": 1.0,
    }
)


LATENCY_BACKENDS = ("onnxruntime", "torch", "tensorrt", "openvino")


@dataclass(frozen=True)
class LatencySettings:
    """How latency is measured (``nas.measure.latency``): the runtime (None: onnxruntime on a CPU; on CUDA tensorrt
    if installed, else torch), timed runs (raised to the device's minimum), warm-up runs, CPU threads (None:
    torch's current setting), fp16 on CUDA (None: yes for torch and tensorrt), and the largest IQR / median
    accepted before the measurement is repeated (up to 3 times, then recorded as noisy)."""

    runs: int = 20
    warmup: int = 5
    threads: int | None = None
    half: bool | None = None
    backend: str | None = None
    max_spread: float = 0.10


@dataclass(frozen=True)
class Constraints:
    """Upper bounds checked before training; None means unbounded."""

    max_gflops: float | None = None
    max_params: int | None = None
    max_latency_ms: float | None = None

    def violations(self, gflops: float, params: int, latency_ms: float) -> dict[str, float]:
        """Return {constraint: (value - bound) / bound} for the bounds set: > 0 violated, <= 0 satisfied.

        Relative, so that samplers summing violations weigh params, GFLOPs and milliseconds alike.
        """
        measured = {"max_gflops": gflops, "max_params": float(params), "max_latency_ms": latency_ms}
        bounds: dict[str, Any] = {
            "max_gflops": self.max_gflops,
            "max_params": self.max_params,
            "max_latency_ms": self.max_latency_ms,
        }
        return {name: (measured[name] - bound) / bound for name, bound in bounds.items() if bound is not None}
