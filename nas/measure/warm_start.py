"""The warm start (``init: warm``): the unmodified base trained once per study, whose tensors every trial inherits;
and ``made_once``, the cache-under-lock that the warm base and the supernet share."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable
from pathlib import Path

from modules.ultralytics_adapter import ProxyTrainer

from ..config import StudyConfig
from ..errors import UserError
from .phase_progress import PhaseProgress, report_epochs
from .proxy import remove_run, train_proxy


def made_once(out: Path, make: Callable[[Path], None]) -> Path:
    """Return ``out``, calling ``make(partial)`` to write it first if it does not exist yet.

    Workers of one study on one host share ``out``'s folder: one makes the file under an exclusive lock on
    ``out.lock`` while the others wait, then reuse it. ``make`` writes ``partial`` (next to ``out``), which then
    replaces ``out`` atomically: a process killed while making it leaves no half-written ``out``.
    """
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.is_file():
            partial = out.with_suffix(".part")
            try:
                make(partial)
                partial.replace(out)
            finally:
                partial.unlink(missing_ok=True)
    return out


def warm_base_path(run_root: Path, epochs: int) -> Path:
    """Return where the study whose run folder is ``run_root`` keeps its warm-start base trained ``epochs``."""
    return run_root / f"warm_base_e{epochs}.pt"


def warm_start_weights(
    cfg: StudyConfig,
    run_root: Path,
    device: str,
    seed: int,
    epochs: int | None = None,
    log: Callable[[str], None] | None = None,
    progress: PhaseProgress | None = None,
) -> Path:
    """Return the study's warm-start checkpoint: the unmodified base trained ``epochs`` (default the preset's
    ``warm_epochs``) once, cached in ``run_root``; ``log`` is told when the training starts, ``progress`` follows
    its epochs (phase ``warm base``).

    The base is trained with the ``seed`` of the first run that needs it; later runs of the study reuse it
    whatever their ``seed``, so every trial of a study starts from the same weights.

    Raises:
        UserError: the base model's training failed.
    """
    epochs = epochs or cfg.warm_epochs
    out = warm_base_path(run_root, epochs)

    def train(partial: Path) -> None:
        if log:
            log(f"init: warm - training the unmodified base for {epochs} epochs, once for this study...")
        model_yaml = out.with_suffix(".yaml")
        model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        run_dir = out.with_suffix("")
        schedule = {**cfg.schedule, "epochs": epochs}

        def customize(trainer: ProxyTrainer) -> None:
            if progress:
                report_epochs(trainer, "warm base", progress)

        try:
            train_proxy(
                model_yaml, cfg.dataset.data_yaml(), schedule, run_dir, device, seed, save=True, customize=customize
            )
            shutil.copy2(run_dir / "weights" / "last.pt", partial)
        except (OSError, RuntimeError, FloatingPointError) as e:
            raise UserError(f"init: warm - training the base model failed: {e}") from e
        finally:
            remove_run(run_dir)

    return made_once(out, train)
