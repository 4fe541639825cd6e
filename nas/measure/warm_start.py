"""The warm start (``init: warm``): the unmodified base trained once per study, whose tensors every trial inherits."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable
from pathlib import Path

from ..config import StudyConfig
from ..errors import UserError
from .proxy import remove_run, train_proxy


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
) -> Path:
    """Return the study's warm-start checkpoint: the unmodified base trained ``epochs`` (default the preset's
    ``warm_epochs``) once, cached in ``run_root``; ``log`` is told when the training starts.

    The base is trained with the ``seed`` of the first run that needs it; later runs of the study reuse it
    whatever their ``seed``, so every trial of a study starts from the same weights. Workers of one study on one
    host share ``run_root``: one trains the base under a file lock, the others wait for it.

    Raises:
        UserError: the base model's training failed.
    """
    epochs = epochs or cfg.warm_epochs
    out = warm_base_path(run_root, epochs)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out
        if log:
            log(f"init: warm - training the unmodified base for {epochs} epochs, once for this study...")
        model_yaml = out.with_suffix(".yaml")
        model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        run_dir = out.with_suffix("")
        schedule = {**cfg.schedule, "epochs": epochs}
        try:
            train_proxy(model_yaml, cfg.dataset.data_yaml(), schedule, run_dir, device, seed, save=True)
            partial = out.with_suffix(".part")
            shutil.copy2(run_dir / "weights" / "last.pt", partial)
            partial.replace(out)  # atomic: a reader never sees half a checkpoint
        except (OSError, RuntimeError, FloatingPointError) as e:
            raise UserError(f"init: warm - training the base model failed: {e}") from e
        finally:
            remove_run(run_dir)
    return out
