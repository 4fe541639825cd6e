"""One architecture to its numbers: cost, latency, proxy training, warm start, one trial's evaluation (no Optuna)."""

from .cost import Cost, architecture_cost, build_model, model_cost
from .device import device_name, resolve_device
from .evaluation import Evaluation, Runtime, evaluate
from .latency import Latency, measure_latency, quartiles
from .proxy import ProxyResult, remove_run, train_proxy, validate_weights
from .warm_start import warm_base_path, warm_start_weights

__all__ = [
    "Cost",
    "Evaluation",
    "Latency",
    "ProxyResult",
    "Runtime",
    "architecture_cost",
    "build_model",
    "device_name",
    "evaluate",
    "measure_latency",
    "model_cost",
    "quartiles",
    "remove_run",
    "resolve_device",
    "train_proxy",
    "validate_weights",
    "warm_base_path",
    "warm_start_weights",
]
