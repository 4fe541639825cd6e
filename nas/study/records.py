"""What a trial and a run record beside the objective values: the architecture, its model YAML, conditions,
versions, phases; and what of the run joins the study's fingerprint.

Short records are the trial's user attributes (what optuna-dashboard shows and filters by). The long ones
(``LONG_RECORDS``: the model YAML, the latency conditions, phases, versions, the choice per point) are system
attributes named ``nas:<name>``, which the dashboard does not lay out on the trial page; ``record`` reads either,
and the user attributes of trials stored by earlier versions, which kept everything there.
"""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from ..config import StudyConfig
from ..measure import Evaluation, Runtime, device_name
from ..measure.backends import choose_backend
from ..space import Architecture

SYSTEM_PREFIX = "nas:"
LONG_RECORDS = frozenset({"model_yaml", "latency", "phases", "versions", "architecture"})


def versions() -> dict[str, str | None]:
    """Return the versions of the packages whose behaviour affects a trial's numbers."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "ultralytics", "ultralytics-thop", "optuna"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def trial_attrs(arch: Architecture, cfg: StudyConfig, runtime: Runtime, ev: Evaluation) -> dict[str, Any]:
    """Return the user attributes of an evaluated trial (the objective values themselves are the trial's values).

    ``model_yaml`` is the one YAML the trial trained; export writes it unchanged.
    """
    attrs: dict[str, Any] = {
        "key": arch.key,
        "summary": arch.summary(),
        "architecture": arch.as_dict(),
        "operators": arch.operators(),
        "model_yaml": arch.to_yaml(cfg.dataset.nc),
        "imgsz": cfg.imgsz,
        "train_imgsz": cfg.schedule["imgsz"],
        "device": runtime.device,
        "versions": versions(),
        "trained": ev.proxy is not None,
        "feasible": ev.feasible,
        "init": cfg.init,
        "init_weights": str(runtime.supernet or runtime.weights) if (runtime.supernet or runtime.weights) else None,
        "phases": {k: round(v, 4) for k, v in ev.phases.items()},
    }
    if ev.cost:
        attrs["params"] = ev.cost.params
    if ev.latency:
        attrs["latency"] = ev.latency.as_dict()  # the conditions; the median is the latency_ms objective
        if ev.latency.noisy:
            attrs["latency_noisy"] = True  # IQR / median above the preset's max_spread after every repeat
    if ev.proxy:
        # results are reproducible for a seed and a CPU thread count (nas.measure.threads)
        attrs.update(map50=ev.proxy.map50, epochs=ev.proxy.epochs, train_threads=ev.proxy.threads)
    if ev.inherited_tensors is not None:
        attrs["inherited_tensors"] = ev.inherited_tensors
    if ev.violations:
        attrs["violations"] = ev.violations
    if ev.error:
        attrs["fail_reason"] = ev.error
    return attrs


def record(trial: FrozenTrial, name: str, default: Any = None) -> Any:
    """Return one of a trial's stored records by name (``model_yaml``, ``latency``, ``phases``, ``versions``, ...),
    wherever this or an earlier version stored it; ``default`` when the trial has none."""
    key = SYSTEM_PREFIX + name
    if key in trial.system_attrs:
        return trial.system_attrs[key]
    return trial.user_attrs.get(name, default)


def records(trial: FrozenTrial) -> dict[str, Any]:
    """Return all of a trial's records by name (its user attributes and its ``nas:`` system attributes)."""
    long = {k.removeprefix(SYSTEM_PREFIX): v for k, v in trial.system_attrs.items() if k.startswith(SYSTEM_PREFIX)}
    return {**trial.user_attrs, **long}


def set_attrs(trial: optuna.Trial, storage: BaseStorage, trial_id: int, attrs: dict[str, Any]) -> None:
    """Store ``attrs`` on the running ``trial`` (``trial_id`` in ``storage``): the ``LONG_RECORDS`` as system
    attributes, the rest as user attributes.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial is finished.
    """
    for k, v in attrs.items():
        if k in LONG_RECORDS:
            storage.set_trial_system_attr(trial_id, SYSTEM_PREFIX + k, v)
        else:
            trial.set_user_attr(k, v)


def file_digest(path: Path) -> str:
    """Return the first 16 hex digits of the SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def runtime_record(cfg: StudyConfig, device: str, weights: Path | None) -> dict[str, Any]:
    """Return what of the run joins the study fingerprint: device name, the latency backend it resolves to (so a
    study never mixes TensorRT with PyTorch milliseconds), initial weights' digest, init.

    Raises:
        UserError: the preset's latency backend is not installed or cannot run on ``device`` (said before any
            one-off training).
    """
    return {
        "device": device_name(device),
        "latency_backend": choose_backend(cfg.latency.backend, torch.device(device)),
        "weights": file_digest(weights) if weights else None,
        "init": cfg.init,
        "warm_epochs": cfg.warm_epochs,
        # only for supernet studies, so the fingerprints of studies made before the supernet stay the same
        **({"supernet_epochs": cfg.supernet_epochs} if cfg.init == "supernet" else {}),
        # only when not the default, so the fingerprints of studies made before each choice stay the same
        **({"supernet_kernels": cfg.supernet_kernels} if cfg.supernet_kernels != "separate" else {}),
        **({"supernet_sampling": cfg.supernet_sampling} if cfg.supernet_sampling != "uniform" else {}),
    }
