"""Proxy training: a short Ultralytics training run of one architecture, validated once at the end.

Uses Ultralytics' own ``DetectionTrainer`` (no home-made loop) with the preset's schedule, through
``modules.ultralytics_adapter.ProxyTrainer``, which skips what a proxy does not need: checkpoints (unless asked
for) and the second validation of ``best.pt`` that Ultralytics runs after the final epoch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ultralytics.utils import LOGGER

from modules.ultralytics_adapter import ProxyTrainer

from ..errors import UserError
from .latency_lock import pausing_for_measurements
from .threads import training_threads


@dataclass(frozen=True)
class ProxyResult:
    """What a proxy run yields: the final validation mAPs and the time spent training and validating."""

    map50_95: float
    map50: float
    train_s: float  # the training epochs, validation excluded
    val_s: float
    epochs: int
    setup_s: float = 0.0  # the trainer's set-up before the first epoch (dataloaders, model, optimizer)
    threads: int = 0  # torch's CPU threads while it trained (results are reproducible for a seed and this count)


def train_proxy(
    model_yaml: Path,
    data_yaml: Path,
    schedule: dict[str, Any],
    run_dir: Path,
    device: str = "cpu",
    seed: int = 0,
    weights: Path | None = None,
    save: bool = False,
    quiet: bool = True,
    customize: Callable[[ProxyTrainer], None] | None = None,
) -> ProxyResult:
    """Train ``model_yaml`` on ``data_yaml`` with ``schedule`` and return its final validation metrics.

    ``weights``: a checkpoint whose tensors are copied wherever name and shape match (weight inheritance).
    ``save``: keep ``run_dir/weights/last.pt`` (used to train the warm-start base).
    ``customize``: called with the trainer before it trains (the supernet sets its model and callbacks there).
    On a CPU it trains with the threads ``threads.training_threads`` grants (the cores other trainings and
    processes leave free), not Ultralytics' ``cpu_count - 1``.

    Raises:
        FloatingPointError: the loss became NaN/inf (Ultralytics could not recover).
        RuntimeError: training failed (shape error, out of memory, ...), from the trainer.
    """
    run_dir = run_dir.resolve()  # Ultralytics would put a relative project under runs/detect/
    overrides = {
        "model": str(model_yaml),
        "data": str(data_yaml),
        "device": device,
        "seed": seed,
        "deterministic": True,
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
        "plots": False,
        "val": False,
        "save": save,
        "verbose": False,
        "workers": 0,
        "pretrained": str(weights) if weights else False,
        **schedule,
    }
    level = LOGGER.level
    t0 = time.perf_counter()
    try:
        if quiet:
            LOGGER.setLevel(logging.WARNING)
        quiet_output = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
        with quiet_output, training_threads(device) as threads:
            trainer = ProxyTrainer(overrides=overrides)
            trainer.save_checkpoints = save
            torch.set_num_threads(threads)  # select_device, in the trainer's __init__, set Ultralytics' count
            if customize:
                customize(trainer)
            with pausing_for_measurements(trainer):  # each batch holds the host's latency lock shared
                trainer.train()
    finally:
        LOGGER.setLevel(level)
    total = time.perf_counter() - t0
    metrics = trainer.metrics or {}
    map50_95 = float(metrics.get("metrics/mAP50-95(B)", math.nan))
    map50 = float(metrics.get("metrics/mAP50(B)", math.nan))
    losses = trainer.tloss.values() if isinstance(trainer.tloss, dict) else [trainer.tloss]
    if not math.isfinite(map50_95) or not all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in losses):
        raise FloatingPointError("training produced NaN/inf loss or metrics")
    val_s = trainer.val_seconds
    setup_s = (trainer.epochs_start or t0) - t0
    return ProxyResult(map50_95, map50, total - setup_s - val_s, val_s, int(trainer.epoch) + 1, setup_s, threads)


def remove_run(run_dir: Path) -> None:
    """Delete a trial's run folder (checkpoints, CSVs), ignoring a folder that is already gone."""
    shutil.rmtree(run_dir, ignore_errors=True)


def validate_weights(path: str | None) -> Path | None:
    """Return ``path`` as a local checkpoint path, or None.

    Raises:
        UserError: the file does not exist (Ultralytics would try to download it) or is not a .pt file.
    """
    if not path:
        return None
    p = Path(path)
    if p.suffix != ".pt":
        raise UserError(f"--weights {path}: expected a .pt checkpoint")
    if not p.is_file():
        raise UserError(f"--weights {path} does not exist; this tool never downloads weights")
    return p.resolve()
