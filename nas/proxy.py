"""Proxy training: a short Ultralytics training run of one architecture, validated once at the end.

Uses Ultralytics' own ``DetectionTrainer`` (no home-made loop) with the preset's schedule. The trainer is
subclassed only to skip what a proxy does not need: checkpoints (unless asked for) and the second
validation of ``best.pt`` that Ultralytics runs after the final epoch, whose metrics are already known.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import LOGGER

from .errors import UserError

# Ultralytics train arguments a preset's `train:` section may set (anything else is rejected at load)
TRAIN_ARGS = {
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
OPTIMIZERS = ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp", "MuSGD", "auto")


@dataclass(frozen=True)
class ProxyResult:
    """What a proxy run yields: the final validation mAPs and the time spent training and validating."""

    map50_95: float
    map50: float
    train_s: float  # the training epochs, validation excluded
    val_s: float
    epochs: int
    setup_s: float = 0.0  # the trainer's set-up before the first epoch (dataloaders, model, optimizer)


class _ProxyTrainer(DetectionTrainer):
    """DetectionTrainer that saves only when asked and skips the re-validation of best.pt, timing validation.

    With ``val=False`` Ultralytics validates at the final epoch (and at an epoch where early stopping could
    trigger, which a proxy's ``patience`` larger than its epochs rules out).
    """

    save_checkpoints = False

    def save_model(self) -> bool:
        """Save only when checkpoints are wanted (the warm-start base)."""
        return super().save_model() if self.save_checkpoints else False

    def final_eval(self) -> None:
        """Skip Ultralytics' re-validation of best.pt: the final epoch's validation already gave the metrics."""

    def validate(self) -> tuple[dict | None, float | None]:
        """Validate as Ultralytics does, accumulating the time spent."""
        t = time.perf_counter()
        try:
            return super().validate()
        finally:
            self.val_seconds = getattr(self, "val_seconds", 0.0) + time.perf_counter() - t


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
) -> ProxyResult:
    """Train ``model_yaml`` on ``data_yaml`` with ``schedule`` and return its final validation metrics.

    ``weights``: a checkpoint whose tensors are copied wherever name and shape match (weight inheritance).
    ``save``: keep ``run_dir/weights/last.pt`` (used to train the warm-start base).

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
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            trainer = _ProxyTrainer(overrides=overrides)
            trainer.save_checkpoints = save
            trainer.add_callback("on_train_start", _mark_epochs_start)
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
    val_s = getattr(trainer, "val_seconds", 0.0)
    setup_s = getattr(trainer, "epochs_start", t0) - t0
    return ProxyResult(map50_95, map50, total - setup_s - val_s, val_s, int(trainer.epoch) + 1, setup_s)


def _mark_epochs_start(trainer: DetectionTrainer) -> None:
    """Ultralytics callback at the end of the trainer's set-up, just before the first epoch."""
    trainer.epochs_start = time.perf_counter()


def train_warm_base(
    model_yaml: Path, data_yaml: Path, schedule: dict[str, Any], epochs: int, out: Path, device: str, seed: int
) -> Path:
    """Train the unmodified base ``epochs`` epochs (else ``schedule``), save its weights to ``out``; return ``out``.

    An existing ``out`` is reused (the warm start is trained once per study). The run folder is removed.

    Raises:
        UserError: the training failed.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    # workers of one study on one host share the run folder: one trains the base, the others wait for it
    with out.with_suffix(".lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out
        run_dir = out.with_suffix("")
        try:
            train_proxy(model_yaml, data_yaml, {**schedule, "epochs": epochs}, run_dir, device, seed, save=True)
            partial = out.with_suffix(".part")
            shutil.copy2(run_dir / "weights" / "last.pt", partial)
            partial.replace(out)  # atomic: a reader never sees half a checkpoint
        except (OSError, RuntimeError, FloatingPointError) as e:
            raise UserError(f"init: warm - training the base model failed: {e}") from e
        finally:
            remove_run(run_dir)
    return out


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
